/* req.h: the request as traces yield it and the simulator replays it.
 *
 * A request is what a client sends: an arrival time, a prompt, and (in a
 * trace) the number of tokens the model produced before stopping. The
 * scheduler never reads output_tokens to make a decision: as in a real
 * engine, a request's KV grows step by step and it finishes when the model
 * (the engine's oracle) emits its last token. output_tokens is also the
 * request's max_tokens, which real engines check against the context length
 * at admission. */
#ifndef SIM_REQ_H
#define SIM_REQ_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Simulated time: integer nanoseconds since the first arrival. */
typedef int64_t sim_time;
#define SIM_NS_PER_S 1000000000LL
#define SIM_TIME_MAX INT64_MAX
/* The simulator's horizon: no arrival and no step lasts beyond 1e9 s (about
 * 31.7 years), and a run stops with an error once it passes twice that, so
 * that sums of times stay far inside int64 nanoseconds. */
#define SIM_HORIZON_NS 1000000000000000000LL
#define SIM_HORIZON_S  1e9

/* Seconds (double) to sim_time, rounded to the nearest ns. */
static inline sim_time sim_time_from_s(double s) {
    if (!(s < 9.2e9)) /* beyond int64 nanoseconds (or NaN): saturated, never undefined */
        return SIM_TIME_MAX;
    if (s <= -9.2e9)
        return -SIM_TIME_MAX;
    return (sim_time)(s * 1e9 + (s >= 0 ? 0.5 : -0.5));
}
/* sim_time to seconds. */
static inline double sim_time_to_s(sim_time t) {
    return (double)t * 1e-9;
}

typedef struct sim_req {
    uint64_t id;              /* 0-based, in the order the source emitted it */
    sim_time arrival_ns;      /* arrival at the fleet, >= 0 */
    int32_t prompt_tokens;    /* whole input, earlier turns of a session included, >= 1 */
    int32_t new_tokens;       /* tokens new in this turn (= prompt_tokens without sessions) */
    int32_t output_tokens;    /* tokens generated before stop (the oracle; also max_tokens), >= 1 */
    int64_t session_id;       /* conversation id, -1 when the request stands alone */
    uint64_t session_key;     /* which conversation of that id, for the prefix cache: every
                                 session started under an id (turn 1) has a key of its own,
                                 while the id's earlier one is live too (0: the id alone) */
    int32_t turn;             /* 1-based turn within its session, 0 when none */
    int32_t n_hash_ids;       /* Mooncake block hashes carried (0 when none) */
    const uint32_t *hash_ids; /* borrowed from the source until the next trace call; may be NULL */
    /* set by the fleet's router (sources leave them 0): */
    int32_t origin;  /* user population */
    int32_t model;   /* model index in the fleet */
    sim_time net_ns; /* one-way delay user <-> replica; arrival_ns is then the
                        arrival at the replica, and the user's is net_ns earlier */
    /* disaggregated prefill and decode (set by the engine; 0 otherwise): */
    int32_t kv_ready;  /* prompt tokens whose KV arrives with the request (the prefill
                          replica's), allocated at admission and never computed */
    int32_t out_total; /* on a prefill replica: the request's real output tokens
                          (output_tokens is then 1: it stops at its first token) */
    sim_time user_arrival_ns, user_first_ns; /* on a decode replica: the user's arrival
                                                and first token, from the prefill side */
    sim_time queue_ns;       /* on a decode replica: the wait before the prefill admitted it */
    int64_t pre_hit_tokens;  /* on a decode replica: the prefill's prefix-cache hits */
    int64_t pre_recomputed;  /* and its recomputed tokens */
    int32_t pre_preemptions; /* and the times the prefill replica preempted it */
} sim_req;

#ifdef __cplusplus
}
#endif
#endif /* SIM_REQ_H */
