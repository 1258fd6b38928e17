/* test_qstore.c: exact quantiles in bounded memory (sim/qstore.c).
 *
 * Fresh random values (lognormal latencies, with ties, zeros and
 * negatives, and the same sorted up or down), pushed into stores that keep
 * everything in memory (up to 32,768 values selected from a copy, more by
 * the radix passes) or spill to a temporary file a few values at a time:
 * every quantile equals, bit
 * for bit, gsl_stats_quantile_from_sorted_data on the sorted values, and
 * the mean the sum in push order. A TMPDIR that does not exist fails the
 * spill with a message naming it. */
#include "config.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "mem.h"
#include "qstore.h"
#include "rng.h"
#include "t.h"

static const double fs[QSTORE_MAX_Q] = {0.0, 0.5, 0.9, 0.99, 0.999, 1.0, 0.25, 0.123456789};

/* One case: n values of the given kind, kept at most mem_max at a time. */
static void check(gsl_rng *g, size_t n, size_t mem_max, int kind) {
    double *v = sim_malloc((n ? n : 1) * sizeof *v), got[QSTORE_MAX_Q], sum = 0.0;
    qstore q;
    sim_err err;
    size_t i;
    int j;
    T_ASSERT(v != NULL);
    qstore_init(&q, mem_max);
    for (i = 0; i < n; i++) {
        double x = gsl_ran_lognormal(g, -3.0, 1.0);
        if (kind == 1) /* many ties: a few distinct values */
            x = (double)gsl_rng_uniform_int(g, 5) * 0.25;
        else if (kind == 2) /* signs mixed, zeros of both signs */
            x = gsl_rng_uniform_int(g, 10) == 0 ? (i % 2 ? 0.0 : -0.0) : gsl_ran_gaussian(g, 2.0);
        else if (kind == 3) /* ascending: quickselect's classic worst case */
            x = (double)i * 1e-3;
        else if (kind == 4) /* descending, with ties */
            x = (double)((n - i) / 3) * 1e-3;
        v[i] = x;
        sum += x;
        T_EQ_I(qstore_push(&q, x, &err), SIM_OK);
    }
    T_EQ_I(qstore_count(&q), n);
    if (mem_max > 0 && n > mem_max)
        T_ASSERT(q.spilled > 0 && q.n <= mem_max);
    T_EQ_I(qstore_quantiles(&q, fs, QSTORE_MAX_Q, got, &err), SIM_OK);
    gsl_sort(v, 1, n);
    for (j = 0; j < QSTORE_MAX_Q; j++) {
        if (n == 0) {
            T_ASSERT(isnan(got[j]));
            continue;
        }
        {
            double want = gsl_stats_quantile_from_sorted_data(v, 1, n, fs[j]);
            if (memcmp(&want, &got[j], sizeof want) != 0 && !(want == 0.0 && got[j] == 0.0))
                T_FAIL_("n %zu mem %zu kind %d f %g: %.17g, want %.17g", n, mem_max, kind, fs[j],
                        got[j], want);
        }
    }
    if (n > 0)
        T_ASSERT(qstore_mean(&q) == sum / (double)n);
    else
        T_ASSERT(isnan(qstore_mean(&q)));
    /* pushing after the quantiles were read goes on from where it was */
    T_EQ_I(qstore_push(&q, 1.0, &err), SIM_OK);
    T_EQ_I(qstore_count(&q), n + 1);
    qstore_free(&q);
    sim_free(v);
}

static void test_exact(void) {
    static const size_t ns[] = {0, 1, 2, 3, 17, 1000, 4097, 32768, 32769, 100000};
    static const size_t mems[] = {0, 1, 7, 1024};
    uint64_t seed = (uint64_t)time(NULL); /* fresh values each run */
    gsl_rng *g = sim_rng_create(seed, 1);
    size_t a, b;
    int kind;
    printf("test_qstore: seed %llu\n", (unsigned long long)seed);
    for (a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (b = 0; b < sizeof mems / sizeof mems[0]; b++)
            for (kind = 0; kind < 5; kind++)
                check(g, ns[a], mems[b], kind);
    sim_rng_destroy(g);
}

static void test_spill_error(void) {
    qstore q;
    sim_err err;
    int i, rc = SIM_OK;
    T_EQ_I(setenv("TMPDIR", "/nonexistent/kvfleet-test", 1), 0);
    qstore_init(&q, 4);
    sim_err_clear(&err);
    for (i = 0; i < 5 && rc == SIM_OK; i++)
        rc = qstore_push(&q, (double)i, &err);
    T_EQ_I(rc, SIM_EIO);
    T_EQ_I(i, 5); /* the fifth value found memory full */
    T_ASSERT(strstr(err.msg, "/nonexistent/kvfleet-test") != NULL);
    qstore_free(&q);
    T_EQ_I(unsetenv("TMPDIR"), 0);
}

int main(void) {
    test_exact();
    test_spill_error();
    printf("test_qstore: ok\n");
    return 0;
}
