/* store_steps.h: reading a stored run's steps back (for the replay executor
 * and kvfleet validate).
 *
 * store.c writes rows and reads only configs and summaries; this module
 * reads the steps table of one run, whole, in (replica, step) order. Runs
 * that need it are small (measured backends): the rows sit in memory. */
#ifndef RT_STORE_STEPS_H
#define RT_STORE_STEPS_H

#include <stdint.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One steps row (the columns the replay and validation read). */
typedef struct store_step_rec {
    int replica;
    int64_t step;
    double dur_s;  /* duration the event loop advanced by, s */
    double pred_s; /* perf model prediction, s (NAN when NULL) */
    double meas_s; /* measured duration, s (NAN when NULL) */
    int batch_size, n_prefill, n_decode;
    int64_t prefill_tokens, decode_tokens;
    int64_t kv_blocks_total;
} store_step_rec;

/* What the runs and summary tables say about a run. */
typedef struct store_run_meta {
    char status[16];   /* 'running', 'done' or 'failed' */
    char backend[32];  /* executor name ("" when NULL) */
    char kind[32];     /* 'run', 'validate', ... */
    int64_t steps;     /* summary.steps (-1 without a summary) */
    int64_t n_rows;    /* steps rows stored */
    int64_t n_replica; /* distinct replicas in the steps rows */
    int64_t kv_blocks; /* kv_blocks_total of the first steps row (0: no rows) */
} store_run_meta;

/* Reads run_id of the results file at db_path: its metadata into *meta and,
 * when rows is not NULL, its steps rows in (replica, step) order into *rows
 * (owned; free with sim_free) and their count into *n. Returns SIM_OK,
 * SIM_ENOENT (no such file or run), SIM_EINVAL (not a kvfleet results file),
 * SIM_ENOMEM or SIM_EDB, with *err set. */
int store_steps_read(const char *db_path, int64_t run_id, store_run_meta *meta /* OUT */,
                     store_step_rec **rows /* OUT */, int64_t *n /* OUT */, sim_err *err);

#ifdef __cplusplus
}
#endif
#endif /* RT_STORE_STEPS_H */
