/* cache_replay.h: `kvfleet cache-replay`, a replay of the prefix cache alone.
 *
 * No timing, no scheduler: for each request in arrival order, the hit is
 * the longest prefix of its block list present in the cache; then all its
 * blocks are looked up or inserted in order (the request holds them while
 * it is processed) and released, evicting as the policy says when full.
 * The trace's arrival times are the policy's clock (idle TTL and the
 * session policy use real gaps). The replay core is a library so that
 * tests and bench/evict.c drive exactly what the command runs. */
#ifndef RT_CACHE_REPLAY_H
#define RT_CACHE_REPLAY_H

#include <stdint.h>

#include "err.h"
#include "evict.h"
#include "pcache.h"
#include "req.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Counters of a replay. */
typedef struct rt_creplay_stats {
    int64_t requests;        /* requests replayed */
    int64_t blocks;          /* block accesses: every listed block, a final partial one too */
    int64_t hit_blocks;      /* blocks of the requests' cached prefixes */
    int64_t tokens;          /* tokens of all listed blocks */
    int64_t hit_tokens;      /* tokens of the hit blocks */
    int64_t evictions;       /* blocks evicted (expired ones included) */
    int64_t unique_blocks;   /* distinct block keys seen */
    int64_t uncached_blocks; /* blocks left uncached: no evictable block to make room */
} rt_creplay_stats;

typedef struct rt_creplay rt_creplay;

/* Creates a replay of a cache of capacity blocks (>= 1 or EVICT_UNLIMITED)
 * evicting by the --policy text spec, block_tokens tokens per full block;
 * oracle (borrowed, may be NULL) is the future for belady. Returns SIM_OK
 * and an owned *out, SIM_EINVAL with *err (unknown policy, bad parameter,
 * capacity below 1), or SIM_ENOMEM. */
int rt_creplay_create(const char *spec, int64_t capacity, int32_t block_tokens,
                      const evict_oracle *oracle, rt_creplay **out, sim_err *err);
/* Frees; NULL is a no-op. */
void rt_creplay_destroy(rt_creplay *r);
/* Replays one request of n block hashes (n >= 1) and prompt_tokens tokens,
 * arriving at now (non-decreasing from call to call), of session (-1: none,
 * the session policy then uses the chain's root). salt != 0 gives the
 * request fresh keys (the k-th repetition of a trace). Returns SIM_OK or
 * SIM_ENOMEM. */
int rt_creplay_request(rt_creplay *r, const uint32_t *hash_ids, int32_t n, int32_t prompt_tokens,
                       int64_t session, sim_time now, uint64_t salt);
/* Turns counting distinct keys off (on = 0) or on (the default). Off,
 * unique_blocks stays 0 and the replay skips a set that grows with the
 * trace: benchmarks of the cache and its policy alone use it. */
void rt_creplay_count_unique(rt_creplay *r, int on);
/* The counters so far. */
void rt_creplay_stats_get(const rt_creplay *r, rt_creplay_stats *out);
/* The cache (borrowed; for tests). */
pcache *rt_creplay_cache(rt_creplay *r);
/* Appends a request's block keys to an oracle (Belady's first pass), in the
 * order rt_creplay_request accesses them. Returns SIM_OK or SIM_ENOMEM. */
int rt_creplay_oracle_add(evict_oracle *o, const uint32_t *hash_ids, int32_t n, uint64_t salt);

/* The subcommand: argv[0] is "cache-replay". Returns the exit code: 0 ok,
 * 1 bad input (unknown policy, capacity 0, a trace without block hashes,
 * a malformed file), 2 usage, 3 out of memory. */
int rt_main_cache_replay(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif /* RT_CACHE_REPLAY_H */
