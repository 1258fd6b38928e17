/* engine.h: the discrete-event loop: a request source, a router, replicas
 * (each one scheduler and one KV pool) and an executor.
 *
 * Time advances by the executor's step durations; arrivals, step ends and
 * scheduling decisions are events ordered by (time, class, sequence), with
 * arrivals before step ends before scheduling at equal times, so a
 * scheduling decision at t sees every request that arrived by t. */
#ifndef SIM_ENGINE_H
#define SIM_ENGINE_H

#include <stdint.h>

#include "be.h"
#include "err.h"
#include "metrics.h"
#include "perf.h"
#include "req.h"
#include "sched.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Where requests come from (the runtime adapts a trace_src). */
typedef struct eng_source {
    void *ctx;
    /* Next open-loop request: 1 and *out, 0 at the end, < 0 on error. (required) */
    int (*next)(void *ctx, sim_req *out, sim_err *err);
    /* A request ended (completed, or rejected != 0): 1 and *out when that
     * releases a follow-up request, else 0. (optional: NULL means none) */
    int (*on_end)(void *ctx, const sim_req *r, sim_time end, int rejected, sim_req *out);
} eng_source;

/* Called from time to time with the simulated time and requests ended. */
typedef void (*eng_progress_fn)(void *ctx, double sim_s, int64_t ended, uint64_t events);

typedef struct eng_config {
    const perf_ctx *perf; /* model, GPU, calibration, TP (borrowed) */
    int replicas;         /* identical replicas behind a round-robin router, >= 1 */
    sched_config sched;   /* per replica; kv_blocks resolved */
    int64_t steps_sample; /* 1: every step row, N: one in N, 0: none */
    double timeline_s;    /* timeline interval, s (0: none) */
    double slo_ttft_s;    /* goodput SLO on TTFT, s (0: none) */
    double slo_tpot_s;    /* goodput SLO on TPOT, s (0: none) */
    int check;            /* 1: run sched_check after every step (tests) */
    int fast_forward;     /* 1: plan pure-decode runs as one event (sim backend only) */
    eng_progress_fn progress;
    void *progress_ctx;
} eng_config;

/* Replays src through the fleet on backend b; rows go to sink (may be NULL);
 * fills *sum. Returns SIM_OK, or the first error (source, backend, sink,
 * memory) with *err filled. */
int eng_run(const eng_config *c, const eng_source *src, be *b, const met_sink *sink,
            met_summary *sum, sim_err *err);

/* KV blocks of one replica's pool for a GPU, model and TP: HBM x mem_util,
 * less weights and an activation reserve, over the bytes of one block.
 * Returns the count (may be <= 0 when nothing fits) and the parts in *why
 * (may be NULL) as a sentence for error messages. */
int64_t eng_kv_blocks(const perf_ctx *p, int block_tokens, double mem_util, int max_num_seqs,
                      int64_t max_batched_tokens, char *why, size_t why_n);

/* Sets every summary figure to its "undefined" value (counts 0, doubles NAN). */
void met_summary_init(met_summary *s);
/* The q-quantile (0..1) of n sorted values (GSL's interpolation); NAN when n = 0. */
double met_quantile_sorted(const double *v, size_t n, double q);

#ifdef __cplusplus
}
#endif
#endif /* SIM_ENGINE_H */
