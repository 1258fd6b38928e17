/* qstore.h: exact quantiles of a stream of doubles in bounded memory.
 *
 * A run's latency quantiles are exact over every completed request
 * (docs/metrics.md), so every value is kept. Up to mem_max of them stay in
 * memory; beyond that they go, mem_max at a time, to a temporary file that
 * is unlinked as soon as it is made (in $TMPDIR, else /tmp), so memory stays
 * bounded whatever the trace's length. The quantiles are order statistics
 * found by a radix selection over the values' bits (four passes of 16-bit
 * digits, reading the file again at each; up to 32,768 values, all in
 * memory, by quickselect on a copy), interpolated as
 * gsl_stats_quantile_from_sorted_data does: the same bits whether or not
 * anything was spilled. Values must not be NaN. */
#ifndef SIM_QSTORE_H
#define SIM_QSTORE_H

#include <stddef.h>
#include <stdio.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Values held in memory before spilling, by default: 16 MiB of doubles. */
#define QSTORE_MEM_DEFAULT ((size_t)1 << 21)

typedef struct qstore {
    double *v;      /* the values not yet spilled */
    size_t n, cap;  /* in v */
    size_t mem_max; /* the most values v holds; then they are spilled */
    size_t total;   /* every value pushed */
    double sum;     /* their sum, in push order */
    FILE *spill;    /* the unlinked temporary file (NULL: nothing spilled) */
    size_t spilled; /* values in it */
} qstore;

/* An empty store keeping at most mem_max values in memory (0: the default). */
void qstore_init(qstore *q, size_t mem_max);
/* Adds x; SIM_OK, or SIM_ENOMEM / SIM_EIO with *err set (err may be NULL). */
int qstore_push(qstore *q, double x, sim_err *err);
/* The number of values pushed, and their mean (NaN when none). */
size_t qstore_count(const qstore *q);
double qstore_mean(const qstore *q);
/* out[i] = the f[i]-quantile (0 <= f[i] <= 1) of every value pushed, as
 * gsl_stats_quantile_from_sorted_data gives it on the sorted values; NaN for
 * all when nothing was pushed. nf <= QSTORE_MAX_Q. SIM_OK, or SIM_ENOMEM /
 * SIM_EIO with *err set. */
#define QSTORE_MAX_Q 8
int qstore_quantiles(qstore *q, const double *f, int nf, double *out, sim_err *err);
/* Frees the memory and closes (so removes) the spill file. */
void qstore_free(qstore *q);

#ifdef __cplusplus
}
#endif
#endif /* SIM_QSTORE_H */
