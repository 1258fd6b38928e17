/* engine.h: the discrete-event loop: a request source, a router, replicas
 * (each one scheduler and one KV pool) and an executor.
 *
 * Time advances by the executor's step durations; arrivals, step ends and
 * scheduling decisions are events ordered by (time, class, sequence), with
 * arrivals before step ends before scheduling at equal times, so a
 * scheduling decision at t sees every request that arrived by t; steps of
 * several replicas ending at the same t complete in replica order. */
#ifndef SIM_ENGINE_H
#define SIM_ENGINE_H

#include <stddef.h>
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

/* ---- fleets (docs/fleet.md) ----
 * A fleet is pools of identical replicas; a pool serves one model on one
 * GPU kind in one region. Users come from populations, each with a
 * round-trip time to every region; a request's population and model are
 * drawn from the weights by a hash of its session (or id) and the seed, so
 * every turn of a conversation comes from the same place for the same
 * model. The router picks a replica among the pools serving the request's
 * model: in the nearest region that has room (ENG_SCOPE_NEAREST, spilling
 * to the next nearest when all are full) or anywhere (ENG_SCOPE_GLOBAL). A
 * replica is full when its waiting queue (plus requests on their way to
 * it) reaches max_queue; when every candidate is full the request is
 * rejected at the edge, "at capacity" (reason queue_full). */

enum eng_router {
    ENG_ROUTE_RR = 0,  /* round robin */
    ENG_ROUTE_LOT,     /* least outstanding tokens (sched_outstanding_tokens + in flight) */
    ENG_ROUTE_KVU,     /* least KV utilisation */
    ENG_ROUTE_SESSION, /* a conversation's next turn goes where its last went */
    ENG_ROUTE_PREFIX   /* longest cached prefix, then least outstanding tokens */
};
enum eng_scope { ENG_SCOPE_NEAREST = 0, ENG_SCOPE_GLOBAL };
/* What a pool's replicas do with a request. A model served by prefill
 * pools is disaggregated: its requests are prefilled there (up to their
 * first token), their KV (prompt tokens) is sent to a replica of a decode
 * pool of the same model (the same region first), and they decode there. */
enum eng_role { ENG_ROLE_BOTH = 0, ENG_ROLE_PREFILL, ENG_ROLE_DECODE };

typedef struct eng_pool {
    const char *name;        /* for messages and reports (borrowed) */
    const perf_ctx *perf;    /* model, GPU, calibration, TP (borrowed) */
    sched_config sched;      /* per replica; kv_blocks resolved */
    be *b;                   /* its executor (borrowed; NULL: the run's) */
    int model;               /* index into eng_fleet.model_weight */
    int region;              /* index into the regions */
    int supply;              /* index into eng_fleet.supply (GPUs of its kind in its region) */
    int replicas;            /* at the start, >= 0 */
    int min_replicas;        /* the autoscaler keeps at least this many */
    int max_replicas;        /* the autoscaler's cap (>= replicas) */
    int gpus_per_replica;    /* TP: a pipelined replica is PP replicas here, of TP GPUs each */
    double usd_per_gpu_hour; /* NAN: no price */
    int role;                /* enum eng_role */
    double kv_link_bw;       /* bytes/s a replica sends or receives KV at (disaggregated) */
    double kv_link_latency_s;
    double kv_bytes_per_token; /* the whole model's KV of one token (all its GPUs) */
} eng_pool;

typedef struct eng_autoscale {
    int on;             /* 0: the fleet is fixed */
    double interval_s;  /* decisions every interval */
    double provision_s; /* a new replica serves this long after it is asked for */
    double up, down;    /* outstanding requests per sequence slot above which a pool
                           grows, below which it shrinks */
} eng_autoscale;

typedef struct eng_fleet {
    int n_pools;
    const eng_pool *pools;
    int n_regions;
    int n_pops;               /* user populations, >= 1 */
    const double *pop_weight; /* [n_pops], relative */
    const double *rtt_s;      /* [n_pops x n_regions]: round trip, s */
    int n_models;
    const double *model_weight; /* [n_models], relative */
    int n_supply;
    const int64_t *supply; /* [n_supply]: GPUs that can ever run (autoscaler cap) */
    int router;            /* enum eng_router */
    int scope;             /* enum eng_scope */
    eng_autoscale autoscale;
} eng_fleet;

typedef struct eng_config {
    const perf_ctx *perf;    /* model, GPU, calibration, TP (borrowed); ignored with a fleet */
    int replicas;            /* identical replicas behind a round-robin router, >= 1 */
    sched_config sched;      /* per replica; kv_blocks resolved */
    const eng_fleet *fleet;  /* NULL: one pool of the fields above, round robin */
    double usd_per_gpu_hour; /* price without a fleet (NAN or 0: none) */
    uint64_t seed;           /* draws of populations and models */
    int router;              /* enum eng_router, without a fleet */
    int64_t steps_sample;    /* 1: every step row, N: one in N, 0: none */
    double timeline_s;       /* timeline interval, s (0: none) */
    double slo_ttft_s;       /* goodput SLO on TTFT, s (0: none) */
    double slo_tpot_s;       /* goodput SLO on TPOT, s (0: none) */
    int check;               /* 1: run sched_check after every step (tests) */
    int fast_forward;        /* 1: plan pure-decode runs as one event (sim backend only) */
    size_t quantile_mem;     /* latencies kept in memory per figure, then spilled to a
                                temporary file (0: QSTORE_MEM_DEFAULT; qstore.h) */
    eng_progress_fn progress;
    void *progress_ctx;
} eng_config;

/* Replays src through the fleet on backend b; rows go to sink (may be NULL);
 * fills *sum. Returns SIM_OK, or the first error (source, backend, sink,
 * memory) with *err filled. */
int eng_run(const eng_config *c, const eng_source *src, be *b, const met_sink *sink,
            met_summary *sum, sim_err *err);

/* KV blocks of one replica's pool for a GPU, model and TP: HBM x mem_util,
 * less weights and an activation reserve, over the bytes of one block
 * (with pipeline stages: one stage's share of both, divided among the pp
 * virtual engines).
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
