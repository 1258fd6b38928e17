/* oracle.h: the first pass of Belady's policy in the full simulator.
 *
 * `kvfleet run --policy belady` reads its request source twice: this pass
 * streams the source the run will read (same trace or synthetic spec, same
 * --limit, --load-scale, --seed and --sessionize) and records, for every
 * block key a replica's prefix cache will name, the times at which
 * requests use it (sim/evict.h, EVICT_ORACLE_TIMES). Memory grows with the
 * trace (its uses and distinct keys): acceptable for belady only. */
#ifndef RT_ORACLE_H
#define RT_ORACLE_H

#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "evict.h"
#include "req.h"
#include "sched.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Counts of a first pass (for tests and notes). */
typedef struct rt_oracle_stats {
    int64_t requests; /* requests read, session follow-ups included */
    int64_t skipped;  /* of them never admitted whatever happens (context, KV capacity, batch
                         budget), whose uses are left out */
    int64_t uses;     /* block uses recorded */
    int64_t keys;     /* distinct keys */
} rt_oracle_stats;

/* Builds the time oracle of the run a resolved config describes (cfg as
 * rt_run_resolve leaves it; borrowed) for replicas configured as sc
 * (block_tokens, hash_block_tokens, max_ctx, kv_blocks, chunked_prefill,
 * max_batched_tokens are read). Returns SIM_OK and an owned, finished
 * *out (free with evict_oracle_destroy), or an error status with *err set
 * (the source's own errors, SIM_ENOMEM). st may be NULL. */
int rt_oracle_build(json_t *cfg, const sched_config *sc, evict_oracle **out,
                    rt_oracle_stats *st /* OUT */, sim_err *err);

/* Records one request's uses into a time oracle being built, each at the
 * request's arrival: the blocks the request will access whatever the
 * cache holds (its prompt's hit candidates, and its output blocks not
 * named by a trace hash id), keyed as sched_block_keys() names them
 * (runtime/oracle.c says which and why). keys/cap are a scratch buffer the
 * function grows (may start NULL/0). Returns the number of uses recorded
 * (0: the request is not cacheable or can never be admitted), or
 * SIM_ENOMEM. */
int64_t rt_oracle_add_request(evict_oracle *o, const sched_config *sc, const sim_req *r,
                              uint64_t **keys, int64_t *cap);

/* Checks that the trace at path can be read more than once (what: the
 * mode that does, e.g. "--repeat 2 reads the trace 2 times"): SIM_OK, or
 * SIM_EINVAL with *err set for a pipe, a terminal or a socket. */
int rt_trace_check_rereadable(const char *path, const char *what, sim_err *err);
/* rt_trace_check_rereadable's `what` for the belady oracle's first pass. */
#define RT_BELADY_REREAD "--policy belady reads the trace twice (once ahead, for the oracle)"

#ifdef __cplusplus
}
#endif
#endif /* RT_ORACLE_H */
