/* qstore.c: exact quantiles of a stream of doubles in bounded memory
 * (qstore.h). */
#include "config.h"

#include "qstore.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "mem.h"
#include "num.h"

#define QSTORE_BLOCK  65536 /* values read back from the spill file at a time */
#define QSTORE_DIGITS 65536
/* Up to this many values, all in memory, the quantiles come from a copy by
 * quickselect instead of the radix passes, whose 512 KiB histograms alone
 * cost more to clear: three quantiles of lognormal values took 0.004 ms
 * against 0.42 for 1,000 values, 0.063 against 0.52 for 16,384 and 0.47
 * against 0.66 for 32,768 (bench/qstore, and the same program built with
 * the radix-only sim/qstore.c of 63ca358; docs/BENCHMARKS.md). */
#define QSTORE_SMALL 32768

void qstore_init(qstore *q, size_t mem_max) {
    memset(q, 0, sizeof *q);
    q->mem_max = mem_max > 0 ? mem_max : QSTORE_MEM_DEFAULT;
}

/* The unlinked temporary file the values go to: in $TMPDIR, else /tmp. */
static FILE *spill_open(sim_err *err) {
    const char *dir = sim_tmpdir();
    char path[4096];
    int fd, n;
    FILE *f;
    n = snprintf(path, sizeof path, "%s/kvfleet-latencies.XXXXXX", dir);
    if (n < 0 || (size_t)n >= sizeof path) {
        sim_err_set(err, "", 0, 0, "recording latencies: TMPDIR: expected a shorter path");
        return NULL;
    }
    fd = mkstemp(path);
    if (fd < 0) {
        sim_err_set(err, "", 0, 0, "recording latencies: cannot make a temporary file in %s: %s",
                    dir, strerror(errno));
        return NULL;
    }
    (void)unlink(path); /* gone when closed, whatever happens to the run */
    f = fdopen(fd, "w+b");
    if (f == NULL) {
        sim_err_set(err, "", 0, 0, "recording latencies: %s: %s", path, strerror(errno));
        close(fd);
    }
    return f;
}

/* Moves the values held in memory to the spill file. */
static int spill(qstore *q, sim_err *err) {
    if (q->spill == NULL && (q->spill = spill_open(err)) == NULL)
        return SIM_EIO;
    if (fwrite(q->v, sizeof *q->v, q->n, q->spill) != q->n) {
        sim_err_set(err, "", 0, 0, "recording latencies: writing the temporary file: %s",
                    strerror(errno));
        return SIM_EIO;
    }
    q->spilled += q->n;
    q->n = 0;
    return SIM_OK;
}

int qstore_push(qstore *q, double x, sim_err *err) {
    if (q->n == q->cap) {
        if (q->cap == q->mem_max) {
            int rc = spill(q, err);
            if (rc != SIM_OK)
                return rc;
        } else {
            size_t ncap = q->cap ? 2 * q->cap : 1024;
            double *nv;
            if (ncap > q->mem_max)
                ncap = q->mem_max;
            nv = sim_realloc(q->v, ncap * sizeof *nv);
            if (nv == NULL) {
                sim_err_set(err, "", 0, 0, "recording latencies: %s", sim_strerror(SIM_ENOMEM));
                return SIM_ENOMEM;
            }
            q->v = nv;
            q->cap = ncap;
        }
    }
    q->v[q->n++] = x;
    q->total++;
    q->sum += x;
    return SIM_OK;
}

size_t qstore_count(const qstore *q) {
    return q->total;
}

double qstore_mean(const qstore *q) {
    return q->total > 0 ? q->sum / (double)q->total : NAN;
}

/* The order-preserving map of a double's bits to an unsigned key (flip
 * every bit of a negative, the sign bit of the rest), and back. */
static uint64_t key_of(double x) {
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return (u >> 63) ? ~u : u ^ 0x8000000000000000ULL;
}

static double value_of(uint64_t k) {
    uint64_t u = (k >> 63) ? k ^ 0x8000000000000000ULL : ~k;
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* One selection pass: the targets still to place, grouped by the digits
 * found so far (equal prefixes share a histogram). */
typedef struct sel_pass {
    int shift;                         /* the digit's place */
    int ng;                            /* groups */
    uint64_t prefix[2 * QSTORE_MAX_Q]; /* each group's digits above shift */
    size_t *hist[2 * QSTORE_MAX_Q];    /* each group's counts by digit */
} sel_pass;

static void sel_count(sel_pass *p, const double *v, size_t n) {
    size_t i;
    int g, sh = p->shift;
    if (sh == 48) { /* the first digit: one group, every value in it */
        size_t *h = p->hist[0];
        for (i = 0; i < n; i++)
            h[key_of(v[i]) >> 48]++;
        return;
    }
    for (i = 0; i < n; i++) {
        uint64_t k = key_of(v[i]), top = k >> (sh + 16);
        for (g = 0; g < p->ng; g++)
            if (top == p->prefix[g]) {
                p->hist[g][(k >> sh) & 0xffff]++;
                break;
            }
    }
}

/* Feeds every value, the spilled ones first, to one pass. */
static int sel_scan(qstore *q, sel_pass *p, double *block, sim_err *err) {
    size_t left = q->spilled;
    if (left > 0) {
        if (fflush(q->spill) != 0 || fseek(q->spill, 0L, SEEK_SET) != 0) {
            sim_err_set(err, "", 0, 0, "recording latencies: reading the temporary file: %s",
                        strerror(errno));
            return SIM_EIO;
        }
        while (left > 0) {
            size_t want = left < QSTORE_BLOCK ? left : QSTORE_BLOCK;
            if (fread(block, sizeof *block, want, q->spill) != want) {
                sim_err_set(err, "", 0, 0,
                            "recording latencies: reading the temporary file: short read");
                return SIM_EIO;
            }
            sel_count(p, block, want);
            left -= want;
        }
        if (fseek(q->spill, 0L, SEEK_END) != 0) { /* later pushes append */
            sim_err_set(err, "", 0, 0, "recording latencies: temporary file: %s", strerror(errno));
            return SIM_EIO;
        }
    }
    sel_count(p, q->v, q->n);
    return SIM_OK;
}

/* The values of ranks rank[0..nr) (0-based, ascending order) into val[]. */
static int select_ranks(qstore *q, const size_t *rank, int nr, double *val, sim_err *err) {
    uint64_t prefix[2 * QSTORE_MAX_Q];
    size_t left[2 * QSTORE_MAX_Q]; /* the rank within the values of its prefix */
    double *block = NULL;
    size_t *hist;
    sel_pass p;
    int j, g, pass, rc = SIM_OK;
    /* each group's histogram is cleared when the group is made */
    hist = sim_malloc((size_t)nr * QSTORE_DIGITS * sizeof *hist);
    if (q->spilled > 0)
        block = sim_malloc(QSTORE_BLOCK * sizeof *block);
    if (hist == NULL || (q->spilled > 0 && block == NULL)) {
        sim_err_set(err, "", 0, 0, "recording latencies: %s", sim_strerror(SIM_ENOMEM));
        sim_free(hist);
        sim_free(block);
        return SIM_ENOMEM;
    }
    for (j = 0; j < nr; j++) {
        prefix[j] = 0;
        left[j] = rank[j];
    }
    for (pass = 0; pass < 4 && rc == SIM_OK; pass++) {
        int grp[2 * QSTORE_MAX_Q];
        p.shift = 48 - 16 * pass;
        p.ng = 0;
        for (j = 0; j < nr; j++) {
            for (g = 0; g < p.ng && p.prefix[g] != prefix[j]; g++)
                ;
            if (g == p.ng) {
                p.prefix[g] = prefix[j];
                p.hist[g] = hist + (size_t)g * QSTORE_DIGITS;
                memset(p.hist[g], 0, QSTORE_DIGITS * sizeof *hist);
                p.ng++;
            }
            grp[j] = g;
        }
        rc = sel_scan(q, &p, block, err);
        for (j = 0; j < nr && rc == SIM_OK; j++) {
            const size_t *h = p.hist[grp[j]];
            size_t d = 0;
            while (left[j] >= h[d]) { /* the target is in the group: d stays < 65536 */
                left[j] -= h[d];
                d++;
            }
            prefix[j] = (prefix[j] << 16) | d;
        }
    }
    for (j = 0; j < nr && rc == SIM_OK; j++)
        val[j] = value_of(prefix[j]);
    sim_free(hist);
    sim_free(block);
    return rc;
}

static void swap_d(double *a, size_t i, size_t j) {
    double t = a[i];
    a[i] = a[j];
    a[j] = t;
}

/* Puts the value of rank k (0-based, ascending) of a[lo, hi) at a[k], the
 * values before it no larger and those after no smaller: quickselect with
 * median-of-three pivots and Hoare's partition; after 64 rounds the rest is
 * sorted, so the worst case stays n log n. */
static void select_k(double *a, size_t lo, size_t hi, size_t k) {
    int rounds = 0;
    while (hi - lo > 16) {
        size_t i = lo, j = hi - 1, mid = lo + (hi - lo - 1) / 2;
        double piv;
        if (++rounds > 64)
            break;
        if (a[mid] < a[lo])
            swap_d(a, lo, mid);
        if (a[hi - 1] < a[lo])
            swap_d(a, lo, hi - 1);
        if (a[hi - 1] < a[mid])
            swap_d(a, mid, hi - 1);
        piv = a[mid]; /* a[lo] <= piv <= a[hi - 1] stop both scans */
        for (;;) {
            while (a[i] < piv)
                i++;
            while (piv < a[j])
                j--;
            if (i >= j)
                break;
            swap_d(a, i, j);
            i++;
            j--;
        }
        /* a[lo, j] <= piv <= a(j, hi), with lo <= j < hi - 1 */
        if (k <= j)
            hi = j + 1;
        else
            lo = j + 1;
    }
    qsort(a + lo, hi - lo, sizeof *a, sim_cmp_double);
}

/* select_ranks for a few values, all in memory: quickselect on a copy (the
 * same order statistics, so the same bits), ranks in ascending order, each
 * searched above the one before. */
static int select_copy(const qstore *q, const size_t *rank, int nr, double *val, sim_err *err) {
    double *c = sim_malloc((q->n > 0 ? q->n : 1) * sizeof *c);
    size_t order[2 * QSTORE_MAX_Q], lo = 0;
    int i, j;
    if (c == NULL) {
        sim_err_set(err, "", 0, 0, "recording latencies: %s", sim_strerror(SIM_ENOMEM));
        return SIM_ENOMEM;
    }
    memcpy(c, q->v, q->n * sizeof *c);
    for (i = 0; i < nr; i++) { /* the ranks, ascending (insertion sort) */
        for (j = i; j > 0 && order[j - 1] > rank[i]; j--)
            order[j] = order[j - 1];
        order[j] = rank[i];
    }
    for (i = 0; i < nr; i++) {
        select_k(c, lo, q->n, order[i]);
        lo = order[i] + 1;
    }
    for (j = 0; j < nr; j++)
        val[j] = c[rank[j]];
    sim_free(c);
    return SIM_OK;
}

int qstore_quantiles(qstore *q, const double *f, int nf, double *out, sim_err *err) {
    size_t rank[2 * QSTORE_MAX_Q], lhs[QSTORE_MAX_Q];
    double delta[QSTORE_MAX_Q], val[2 * QSTORE_MAX_Q];
    int i, j, nr = 0, rc;
    SIM_ASSERT(nf >= 0 && nf <= QSTORE_MAX_Q);
    if (q->total == 0) {
        for (i = 0; i < nf; i++)
            out[i] = NAN;
        return SIM_OK;
    }
    /* gsl_stats_quantile_from_sorted_data: index = f (n - 1), the values of
     * ranks lhs and lhs + 1, weighted by the fraction */
    for (i = 0; i < nf; i++) {
        double index = f[i] * (double)(q->total - 1);
        lhs[i] = (size_t)index;
        delta[i] = index - (double)lhs[i];
        for (j = 0; j < 2; j++) {
            size_t r = lhs[i] + (size_t)j;
            int k;
            if (r >= q->total)
                continue;
            for (k = 0; k < nr && rank[k] != r; k++)
                ;
            if (k == nr)
                rank[nr++] = r;
        }
    }
    if (q->spilled == 0 && q->n <= QSTORE_SMALL)
        rc = select_copy(q, rank, nr, val, err);
    else
        rc = select_ranks(q, rank, nr, val, err);
    if (rc != SIM_OK)
        return rc;
    for (i = 0; i < nf; i++) {
        double lo = 0.0, hi = 0.0;
        for (j = 0; j < nr; j++) {
            if (rank[j] == lhs[i])
                lo = val[j];
            if (rank[j] == lhs[i] + 1)
                hi = val[j];
        }
        out[i] = lhs[i] == q->total - 1 ? lo : (1 - delta[i]) * lo + delta[i] * hi;
    }
    return SIM_OK;
}

void qstore_free(qstore *q) {
    sim_free(q->v);
    if (q->spill)
        fclose(q->spill);
    memset(q, 0, sizeof *q);
}
