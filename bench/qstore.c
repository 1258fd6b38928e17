/* qstore.c: the cost of the exact latency quantiles (sim/qstore.c) by the
 * number of values (make bench). For each size, fills a store that keeps
 * everything in memory with lognormal values (fixed seed), then times
 * qstore_quantiles for the three figures a run reports (p50, p90, p99):
 * the best of ROUNDS calls, in ms. Prints figures; asserts nothing.
 *
 * usage: qstore [N ...]  (default 1000 8192 16384 32768 65536 131072 1000000) */
#include "config.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "qstore.h"
#include "rng.h"

#define ROUNDS 20

int main(int argc, char **argv) {
    static const size_t def[] = {1000, 8192, 16384, 32768, 65536, 131072, 1000000};
    static const double f[3] = {0.5, 0.9, 0.99};
    int n_sizes = argc > 1 ? argc - 1 : (int)(sizeof def / sizeof def[0]), a;
    gsl_rng *g = sim_rng_create(1, 1);
    if (g == NULL)
        return 1;
    printf("%10s %12s\n", "values", "ms/call");
    for (a = 0; a < n_sizes; a++) {
        size_t n = argc > 1 ? strtoul(argv[a + 1], NULL, 10) : def[a], i;
        double best = 0.0, out[3];
        qstore q;
        int r;
        if (n == 0) {
            fprintf(stderr, "qstore: N: expected a positive integer, got '%s'\n", argv[a + 1]);
            return 2;
        }
        qstore_init(&q, n); /* everything in memory */
        for (i = 0; i < n; i++)
            if (qstore_push(&q, gsl_ran_lognormal(g, -3.0, 1.0), NULL) != 0)
                return 1;
        for (r = 0; r < ROUNDS; r++) {
            double t0 = rt_now_s(), dt;
            if (qstore_quantiles(&q, f, 3, out, NULL) != 0)
                return 1;
            dt = rt_now_s() - t0;
            if (r == 0 || dt < best)
                best = dt;
        }
        printf("%10zu %12.3f\n", n, best * 1e3);
        qstore_free(&q);
    }
    sim_rng_destroy(g);
    return 0;
}
