/* be.h: the executor interface: the one call the event loop makes to turn
 * a batch into a duration.
 *
 * `sim` (be_sim.c) returns the perf model's prediction; `cpu`, `cuda` and
 * `replay` (runtime/) run or replay the batch and return measured seconds.
 * Backends report through be_result and never call back into the scheduler.
 * Implementations fill a static const struct be_ops with designated
 * initialisers; callers use the be_* wrappers, never ops directly. */
#ifndef SIM_BE_H
#define SIM_BE_H

#include <stdint.h>

#include "err.h"
#include "perf.h"
#include "sched.h"

#ifdef __cplusplus
extern "C" {
#endif

#define BE_VERSION 1

/* What a backend is opened with (borrowed for the backend's lifetime). */
typedef struct be_args {
    const perf_ctx *perf; /* model, GPU, calibration, TP */
    int64_t kv_blocks;    /* blocks in one replica's pool */
    int block_tokens;
    int replicas;
    uint64_t seed;
    const char *option; /* backend-specific option string (e.g. replay's DB:RUN), may be NULL */
    int max_num_seqs;   /* most sequences in one step (0: unknown) */
    int64_t max_batched_tokens; /* most new tokens in one step (0: unknown) */
} be_args;

/* One step's outcome. pred_s is filled by the engine before the call. */
typedef struct be_result {
    double pred_s; /* perf model prediction, s (input) */
    double dur_s;  /* what the event loop advances by, s (output) */
    double meas_s; /* measured device time, s (NAN when not measured) */
    double host_s; /* host preparation time, s (NAN when not measured) */
} be_result;

struct be_ops {
    int version;      /* BE_VERSION (required) */
    const char *name; /* "sim", "cpu", "cuda", "replay" (required) */
    /* Opens the backend: allocates everything step() needs (required). */
    int (*open)(void **ctx, const be_args *a, sim_err *err);
    /* Executes replica r's batch; fills out->dur_s (required). */
    int (*step)(void *ctx, int replica, const sched *s, const sched_batch *b, be_result *out,
                sim_err *err);
    /* Copies KV blocks between tiers (optional: NULL means copies are modelled, not run). */
    int (*kv_copy)(void *ctx, int replica, const int32_t *src, const int32_t *dst, int n,
                   int direction, sim_err *err);
    /* Waits for outstanding work (optional: NULL means step() is synchronous). */
    int (*sync)(void *ctx, sim_err *err);
    /* Says whether a feature ("fp8", "tp>1", ...) is supported (optional: NULL means all). */
    int (*supports)(void *ctx, const char *feature);
    /* Frees everything (required; NULL ctx is a no-op). */
    void (*close)(void *ctx);
};

typedef struct be {
    const struct be_ops *ops;
    void *ctx;
} be;

/* The simulator backend (always built). */
extern const struct be_ops be_sim_ops;

/* Opens b with ops; SIM_OK or the backend's error. */
int be_open(be *b, const struct be_ops *ops, const be_args *a, sim_err *err);
/* Runs one step (see be_ops.step). */
int be_step(be *b, int replica, const sched *s, const sched_batch *batch, be_result *out,
            sim_err *err);
/* Waits for the backend (no-op when it has no sync). */
int be_sync(be *b, sim_err *err);
/* Whether the backend supports a feature (1 when it has no supports). */
int be_supports(be *b, const char *feature);
/* Closes the backend; safe on a zeroed or closed be. */
void be_close(be *b);

#ifdef __cplusplus
}
#endif
#endif /* SIM_BE_H */
