/* pcache.h: the KV prefix cache: chained block keys, reference counts, and
 * leaf-first eviction through a policy (sim/evict.h).
 *
 * A block is identified by a 64-bit chained key: each block's key covers
 * its parent's key and its own content (pcache_key_chain), so a later turn
 * of a conversation, or any request sharing a system prompt, finds the
 * blocks already computed. The cache maps keys to block entries that form a
 * forest: a cached block's parent is always cached (it is evicted only once
 * it has no cached child), so the blocks of a request present in the cache
 * are exactly its longest cached prefix.
 *
 * Holders (running requests) take and drop references. A block with no
 * holder and no cached child is evictable and is offered to the policy; the
 * cache never evicts anything else, so a block in use is never evicted and
 * the deepest block of a chain goes before its parents. Inserting into a
 * full cache asks the policy for a victim; when nothing is evictable the
 * insertion fails and the caller decides (cache-replay leaves the rest of
 * that request uncached).
 *
 * Sizes: up to millions of blocks; the access mix is a lookup or an insert
 * per block of every request, with evictions in steady state. Every
 * operation is O(1) expected time plus the policy's cost (O(log n) at most
 * for the shipped ones). Storage grows geometrically up to the capacity and
 * pcache_reserve() can allocate it all up front, after which nothing
 * allocates. Non-goals: tiers (each tier is its own cache), block contents. */
#ifndef SIM_PCACHE_H
#define SIM_PCACHE_H

#include <stdint.h>

#include "err.h"
#include "evict.h"
#include "req.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pcache pcache;

/* A cached block. Fields other than ev are the cache's: policies read them. */
struct pcache_block {
    /* what every access touches, first */
    uint64_t key;         /* chained key */
    pcache_block *parent; /* the previous block of the chain; NULL for a root */
    uint64_t seq_access;  /* tick of the last access (insertion counts) */
    sim_time t_access_ns; /* time of the last access (insertion counts) */
    uint32_t refs;        /* holders (running requests) */
    uint32_t n_children;  /* cached children */
    uint32_t n_access;    /* accesses since insertion, the insertion included (>= 1) */
    int32_t depth;        /* position in the chain, 0 for a root */
    int32_t tokens;       /* tokens held, 1..block_tokens */
    uint8_t evictable;    /* 1 while offered to the policy (refs == 0 && n_children == 0) */
    uint8_t resume;       /* 1: released by a preempted request, not accessed since */
    int32_t user;         /* the caller's (the scheduler: the physical KV block id) */
    /* then */
    uint64_t seq_insert; /* tick of insertion (unique among cached blocks) */
    int64_t session;     /* owning session (set at insertion), -1 when none */
    evict_fields ev;     /* the policy's */
};

/* Called with each block the cache evicts, before it is freed. */
typedef void (*pcache_evict_fn)(void *ctx, const pcache_block *b);

/* Key of the block after prev holding content id (prev = PCACHE_KEY_ROOT
 * for the first block of a chain). A 64-bit mix: collisions are ignored. */
#define PCACHE_KEY_ROOT 0x6b7666c3a5e1d2b9ULL
static inline uint64_t pcache_key_chain(uint64_t prev, uint64_t id) {
    uint64_t x = prev ^ (id * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL + (prev << 6));
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* Creates a cache of capacity_blocks blocks (>= 1, or EVICT_UNLIMITED)
 * evicting through ops, created from *p (copied; its capacity is set
 * here). Returns SIM_OK and an owned *out, SIM_EINVAL with *err (capacity
 * below 1, or the policy's parameter error), or SIM_ENOMEM. */
int pcache_create(int64_t capacity_blocks, const struct evict_ops *ops, const evict_params *p,
                  pcache **out, sim_err *err);
/* Frees the cache and its policy; NULL is a no-op. */
void pcache_destroy(pcache *c);
/* Allocates room for n_blocks blocks (capped at the capacity) now, so that
 * later operations never allocate. Returns SIM_OK or SIM_ENOMEM. */
int pcache_reserve(pcache *c, int64_t n_blocks);
/* Sets the eviction observer (fn NULL: none); ctx is borrowed. */
void pcache_set_observer(pcache *c, pcache_evict_fn fn, void *ctx);

/* The cached block with key, or NULL. Borrowed until it is evicted. */
pcache_block *pcache_find(const pcache *c, uint64_t key);
/* Takes a reference (a holder): b is no longer evictable. */
void pcache_ref(pcache *c, pcache_block *b);
/* Drops a reference; b becomes evictable when it has no holder and no
 * child. Asserts the count is positive. */
void pcache_unref(pcache *c, pcache_block *b, sim_time now);
/* pcache_unref by a preempted request, which will want b back when it
 * resumes: b->resume is set until b's next access (Belady keeps such a
 * block as one whose next use is due). */
void pcache_unref_resume(pcache *c, pcache_block *b, sim_time now);
/* Records a hit on b, which the caller holds: one tick. */
void pcache_access(pcache *c, pcache_block *b, sim_time now);
/* Inserts key under parent (NULL for a root; otherwise cached and held by
 * the caller) with tokens tokens, owned by session; one tick. When the
 * cache is full the policy names a victim first. Returns 1 with *out the
 * new block holding one reference (the caller's), 0 when nothing is
 * evictable (nothing inserted, *out NULL), or SIM_ENOMEM. The key must not
 * be cached. */
int pcache_insert(pcache *c, uint64_t key, pcache_block *parent, int32_t tokens, int64_t session,
                  sim_time now, pcache_block **out);
/* Counts an access to a block that cannot be cached (its parent was not
 * cached): one tick, so ticks stay aligned with an oracle's ordinals. */
void pcache_skip(pcache *c);
/* Evicts one block the policy chooses (as if the cache were full), for a
 * caller that needs the block's storage back. Returns 1, or 0 when nothing
 * is evictable. */
int pcache_evict_one(pcache *c, sim_time now);
/* Evicts what the policy says has expired by now (idle TTL). Returns the
 * number of blocks evicted. */
int64_t pcache_expire(pcache *c, sim_time now);

/* Blocks with at least one holder. When holders always hold whole chains
 * (every ancestor of a held block is held, as in the scheduler), the
 * unheld blocks, pcache_size() - pcache_n_held(), can all be evicted one
 * leaf after another. */
int64_t pcache_n_held(const pcache *c);
/* Blocks cached, capacity, blocks evictable, blocks evicted since creation. */
int64_t pcache_size(const pcache *c);
/* 1 when the policy expires blocks by time (pcache_expire can evict), else 0. */
int pcache_has_expiry(const pcache *c);
int64_t pcache_capacity(const pcache *c);
int64_t pcache_n_evictable(const pcache *c);
int64_t pcache_evictions(const pcache *c);
/* Ticks so far: accesses, insertions (failed ones too) and skips. */
uint64_t pcache_tick(const pcache *c);
/* The policy's name. */
const char *pcache_policy_name(const pcache *c);
/* Walks every block and checks the invariants (size within capacity,
 * parents cached, child counts exact, evictable flag = no holder and no
 * child, the policy's own check). Returns 0 when sound, or a negative
 * number naming the first broken rule. O(n). */
int pcache_check(const pcache *c);

#ifdef __cplusplus
}
#endif
#endif /* SIM_PCACHE_H */
