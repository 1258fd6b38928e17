/* backends.h: the executors the runtime can open, by name.
 *
 * sim (sim/be_sim.c) is always built; cpu (be_cpu.c) and replay
 * (be_replay.c) too; cuda (be_cuda.c) only when configure found CUDA
 * (config.h defines KV_HAVE_CUDA). docs/backends.md describes each. */
#ifndef RT_BACKENDS_H
#define RT_BACKENDS_H

#include <stddef.h>
#include <stdint.h>

#include "be.h"
#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The replay executor (always built): option "DB:RUN_ID". */
extern const struct be_ops be_replay_ops;
/* The CUDA executor; defined only in CUDA builds. */
extern const struct be_ops be_cuda_ops;

/* The executor called name, or NULL when there is none in this build. */
const struct be_ops *rt_backend_find(const char *name);
/* Writes the names of this build's executors, comma separated, into buf. */
void rt_backend_list(char *buf, size_t n);
/* Whether name is an executor of kvfleet at all (built here or not). */
int rt_backend_known(const char *name);
/* Whether the executor measures its steps (cpu, cuda): its runs are exempt
 * from bit-for-bit determinism. */
int rt_backend_measured(const struct be_ops *ops);

/* Splits a replay option "DB:RUN_ID" at its last ':' into db (n bytes) and
 * *run_id. SIM_OK or SIM_EINVAL with *err set. */
int be_replay_parse(const char *option, char *db, size_t db_n, int64_t *run_id, sim_err *err);
/* KV blocks per replica of the run a replay option names (its first steps
 * row). SIM_OK, or the store's error. */
int be_replay_kv_blocks(const char *option, int64_t *kv_blocks /* OUT */, sim_err *err);

#ifdef __cplusplus
}
#endif
#endif /* RT_BACKENDS_H */
