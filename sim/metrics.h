/* metrics.h: what a run measures, and the sink through which it leaves sim/.
 *
 * Per request, per step and per timeline interval, rows are handed to a
 * sink (the SQLite store in runtime/, or nothing); sim/ itself never touches
 * SQLite. The run summary is one struct whose fields are listed once, in
 * MET_SUMMARY_MAP, so the JSON output and the `summary` table columns are
 * generated from the same list and cannot drift apart.
 *
 * Definitions (docs/metrics.md): TTFT = first output token - arrival,
 * queueing included; TPOT of a request = (finish - first token) /
 * (output tokens - 1), for requests with >= 2 output tokens, quantiles over
 * requests; throughput = output tokens / (last finish - first arrival);
 * quantiles are exact over all completed requests. Times are seconds and
 * rates are fractions in 0..1; an undefined figure is NAN (SQL NULL, JSON
 * null). */
#ifndef SIM_METRICS_H
#define SIM_METRICS_H

#include <stdint.h>

#include "req.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Why a request was rejected (names are a contract: the reject_reason column). */
#define MET_REJECT_MAP(XX)                                                                         \
    XX(NONE, "")                                                                                   \
    XX(CONTEXT, "context_length")      /* prompt + max_tokens beyond the model's context */        \
    XX(KV_CAPACITY, "kv_capacity")     /* can never fit the replica's KV pool */                   \
    XX(QUEUE_FULL, "queue_full")       /* at capacity: waiting queue full */                       \
    XX(QUEUE_TIMEOUT, "queue_timeout") /* waited longer than the maximum queue time */             \
    XX(BATCH_BUDGET, "batch_budget")   /* prompt beyond max-batched-tokens, chunking off */

enum met_reject {
#define MET_XX_ENUM(id, name) MET_REJECT_##id,
    MET_REJECT_MAP(MET_XX_ENUM)
#undef MET_XX_ENUM
        MET_N_REJECT
};
/* Reason name ("" for NONE). */
const char *met_reject_name(enum met_reject r);

/* One request, written when it ends (completed or rejected). */
typedef struct met_request {
    uint64_t id;               /* request id (source order) */
    int replica;               /* replica that served or rejected it (-1: rejected at the edge) */
    double arrival_s;          /* arrival, s */
    double first_token_s;      /* first output token, s (NAN if rejected) */
    double finish_s;           /* last token or rejection time, s */
    int32_t prompt_tokens;     /* whole input */
    int32_t new_tokens;        /* new in this turn */
    int32_t output_tokens;     /* tokens produced (0 if rejected) */
    int32_t preemptions;       /* times preempted */
    int64_t recomputed_tokens; /* tokens prefilled again after a preemption */
    int64_t hit_tokens;        /* prompt tokens found in the prefix cache */
    int64_t session_id;        /* -1 when none */
    int32_t turn;              /* 0 when none */
    enum met_reject reject;    /* MET_REJECT_NONE when completed */
} met_request;

/* One engine step of one replica. */
typedef struct met_step {
    int64_t step; /* step index within the replica, from 0 */
    int replica;
    double start_s; /* step start, s */
    double dur_s;   /* duration the event loop advanced by, s */
    double pred_s;  /* perf model prediction, s */
    double meas_s;  /* measured duration, s (NAN on the sim backend) */
    int batch_size; /* sequences in the step */
    int n_prefill;  /* sequences with a prefill chunk */
    int n_decode;   /* sequences decoding */
    int64_t prefill_tokens;
    int64_t decode_tokens;
    int64_t kv_blocks_used; /* after the step's allocations */
    int64_t kv_blocks_total;
    int waiting;      /* requests waiting after the step was formed */
    double flops;     /* one GPU, FLOP */
    double bytes;     /* one GPU, HBM bytes */
    double intensity; /* flops / bytes, FLOP/byte */
    double balance;   /* the GPU's peak / bandwidth, FLOP/byte */
    int bound;        /* enum perf_bound */
} met_step;

/* One timeline interval of one replica (time-weighted means over it). */
typedef struct met_timeline {
    int replica;
    double t_s;          /* interval start, s */
    double dt_s;         /* interval length, s */
    double batch_mean;   /* mean sequences in flight on the GPU */
    double waiting_mean; /* mean waiting requests */
    double kv_util_mean; /* mean KV blocks used / total */
    double busy_frac;    /* fraction of the interval the GPU was in a step */
    int64_t arrivals;    /* requests routed to the replica in the interval */
    int64_t completions;
    int64_t rejections;
    int64_t output_tokens;
} met_timeline;

/* The summary fields: XX(name, kind) with kind I (int64) or D (double, NAN = null).
 * Names are a contract: JSON keys of `kvfleet run --json` and `summary` columns. */
#define MET_SUMMARY_MAP(XX)                                                                        \
    XX(requests, I)                                                                                \
    XX(completed, I)                                                                               \
    XX(rejected, I)                                                                                \
    XX(rejected_context, I)                                                                        \
    XX(rejected_kv_capacity, I)                                                                    \
    XX(rejected_queue_full, I)                                                                     \
    XX(rejected_queue_timeout, I)                                                                  \
    XX(rejected_batch_budget, I)                                                                   \
    XX(preemptions, I)                                                                             \
    XX(preemptions_swapped, I)                                                                     \
    XX(recomputed_tokens, I)                                                                       \
    XX(prefix_hit_rate_tokens, D)                                                                  \
    XX(prefix_hit_rate_requests, D)                                                                \
    XX(evictions, I)                                                                               \
    XX(swapped_in_tokens, I)                                                                       \
    XX(pcie_bytes_h2d, I)                                                                          \
    XX(pcie_bytes_d2h, I)                                                                          \
    XX(pcie_busy_h2d_s, D)                                                                         \
    XX(pcie_busy_d2h_s, D)                                                                         \
    XX(prompt_tokens, I)                                                                           \
    XX(output_tokens, I)                                                                           \
    XX(steps, I)                                                                                   \
    XX(ttft_p50_s, D)                                                                              \
    XX(ttft_p90_s, D)                                                                              \
    XX(ttft_p99_s, D)                                                                              \
    XX(ttft_mean_s, D)                                                                             \
    XX(tpot_p50_s, D)                                                                              \
    XX(tpot_p90_s, D)                                                                              \
    XX(tpot_p99_s, D)                                                                              \
    XX(tpot_mean_s, D)                                                                             \
    XX(e2e_p50_s, D)                                                                               \
    XX(e2e_p90_s, D)                                                                               \
    XX(e2e_p99_s, D)                                                                               \
    XX(queue_p50_s, D)                                                                             \
    XX(queue_p99_s, D)                                                                             \
    XX(output_tokens_per_s, D)                                                                     \
    XX(offered_rps, D)                                                                             \
    XX(requests_per_s, D)                                                                          \
    XX(goodput_requests_per_s, D)                                                                  \
    XX(slo_attainment, D)                                                                          \
    XX(mean_batch_size, D)                                                                         \
    XX(kv_util_mean, D)                                                                            \
    XX(kv_util_peak, D)                                                                            \
    XX(mfu_mean, D)                                                                                \
    XX(mbu_mean, D)                                                                                \
    XX(busy_frac, D)                                                                               \
    XX(remote_bytes_in, I)                                                                         \
    XX(remote_bytes_out, I)                                                                        \
    XX(remote_hit_tokens, I)                                                                       \
    XX(kv_xfer_bytes, I)                                                                           \
    XX(kv_xfer_mean_s, D)                                                                          \
    XX(gpu_hours, D)                                                                               \
    XX(cost_usd, D)                                                                                \
    XX(first_arrival_s, D)                                                                         \
    XX(last_finish_s, D)                                                                           \
    XX(sim_time_s, D)                                                                              \
    XX(sim_events, I)                                                                              \
    XX(wall_s, D)                                                                                  \
    XX(peak_mem_bytes, I)

typedef struct met_summary {
#define MET_XX_FIELD_I           int64_t
#define MET_XX_FIELD_D           double
#define MET_XX_FIELD(name, kind) MET_XX_FIELD_##kind name;
    MET_SUMMARY_MAP(MET_XX_FIELD)
#undef MET_XX_FIELD
} met_summary;

/* The sink: where rows go. Every member is optional (NULL: rows dropped).
 * A member returns SIM_OK or a negative code, which stops the run. */
typedef struct met_sink {
    void *ctx;
    int (*on_request)(void *ctx, const met_request *r);   /* (optional: NULL drops requests rows) */
    int (*on_step)(void *ctx, const met_step *s);         /* (optional: NULL drops step rows) */
    int (*on_timeline)(void *ctx, const met_timeline *t); /* (optional: NULL drops the timeline) */
} met_sink;

#ifdef __cplusplus
}
#endif
#endif /* SIM_METRICS_H */
