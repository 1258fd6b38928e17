/* evict_int.h: helpers shared inside the prefix cache and its policies.
 *
 * Not part of the public contract (sim/pcache.h, sim/evict.h): a hash map
 * from 64-bit keys to 64-bit values, a pool of fixed-size items with stable
 * addresses, an intrusive binary min-heap of blocks, and a bounded ghost
 * queue of keys. Each is O(1) or O(log n) per operation and allocates only
 * in its _reserve/_init functions, which is what lets the cache promise
 * that nothing allocates once storage is reserved. */
#ifndef SIM_EVICT_INT_H
#define SIM_EVICT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "evict.h"
#include "pcache.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the shipped policies (one file each; listed in evict_registry.c) ---- */

extern const struct evict_ops evict_lru_ops;
extern const struct evict_ops evict_lfu_ops;
extern const struct evict_ops evict_fifo_ops;
extern const struct evict_ops evict_ttl_ops;
extern const struct evict_ops evict_gdsf_ops;
extern const struct evict_ops evict_s3fifo_ops;
extern const struct evict_ops evict_arc_ops;
extern const struct evict_ops evict_session_ops;
extern const struct evict_ops evict_belady_ops;

/* ---- map: uint64 key -> uint64 value (open addressing, linear probing) ---- */

/* Value marking an empty slot; never stored. */
#define EVICT_MAP_EMPTY UINT64_MAX

typedef struct evict__slot {
    uint64_t key;
    uint64_t val; /* EVICT_MAP_EMPTY marks a free slot */
} evict__slot;

typedef struct evict__map {
    evict__slot *s; /* [cap]: a key and its value share a cache line */
    uint64_t mask;  /* cap - 1 (cap a power of two), 0 before the first reserve */
    int shift;      /* 64 - log2(cap): a key's home slot is (key * golden) >> shift */
    int64_t n;      /* entries */
    int64_t room;   /* entries allowed before a rehash (cap / 2) */
} evict__map;

/* Makes room for n entries (rehashing; never shrinks). SIM_OK or SIM_ENOMEM. */
int evict__map_reserve(evict__map *m, int64_t n);
/* Frees the arrays. */
void evict__map_fini(evict__map *m);
/* The value for key, or EVICT_MAP_EMPTY. */
uint64_t evict__map_get(const evict__map *m, uint64_t key);
/* Sets key to val (val != EVICT_MAP_EMPTY); there must be room. Returns
 * 1 when key was new, 0 when it was replaced. */
int evict__map_put(evict__map *m, uint64_t key, uint64_t val);
/* Removes key; returns its value, or EVICT_MAP_EMPTY when absent. */
uint64_t evict__map_del(evict__map *m, uint64_t key);
/* Removes key only if its value is val; returns 1 when removed. */
int evict__map_del_if(evict__map *m, uint64_t key, uint64_t val);

/* ---- pool: fixed-size items with stable addresses ---- */

typedef struct evict__pool {
    size_t item_bytes;  /* >= sizeof(void *) */
    void *free;         /* free items, linked through their first word */
    void **chunks;      /* allocated chunks */
    int64_t n_chunks;   /* chunks used */
    int64_t cap_chunks; /* slots in chunks */
    int64_t n_items;    /* items allocated in all chunks */
} evict__pool;

/* Sets up an empty pool of item_bytes items. */
void evict__pool_init(evict__pool *p, size_t item_bytes);
/* Allocates items until n_items >= n. SIM_OK or SIM_ENOMEM. */
int evict__pool_reserve(evict__pool *p, int64_t n);
/* Takes a zeroed item, or NULL when none is reserved. */
void *evict__pool_take(evict__pool *p);
/* Returns an item. */
void evict__pool_give(evict__pool *p, void *item);
/* Frees every chunk. */
void evict__pool_fini(evict__pool *p);

/* ---- heap: blocks ordered by (ev.k1, ev.k2, seq_insert), smallest on top ---- */

/* A heap slot keeps a copy of its block's keys, so comparisons never touch
 * the blocks; a block's keys must not change while it is in a heap. */
typedef struct evict__hent {
    int64_t k1, k2; /* the block's ev.k1, ev.k2 */
    uint64_t tie;   /* its seq_insert */
    pcache_block *b;
} evict__hent;

typedef struct evict__heap {
    evict__hent *a; /* [cap] */
    int64_t n;      /* blocks in the heap */
    int64_t cap;    /* slots */
} evict__heap;

/* Makes room for n blocks. SIM_OK or SIM_ENOMEM. */
int evict__heap_reserve(evict__heap *h, int64_t n);
/* Frees the array. */
void evict__heap_fini(evict__heap *h);
/* Adds b (its keys set, b->ev.pos == -1); there must be room. */
void evict__heap_push(evict__heap *h, pcache_block *b);
/* Removes b, which is in h. */
void evict__heap_remove(evict__heap *h, pcache_block *b);
/* Restores the order after b's keys changed (b is in h). */
void evict__heap_fix(evict__heap *h, pcache_block *b);
/* Removes and returns the smallest block, or NULL when empty. */
pcache_block *evict__heap_pop(evict__heap *h);
/* The smallest block, or NULL when empty. */
static inline pcache_block *evict__heap_top(const evict__heap *h) {
    return h->n > 0 ? h->a[0].b : NULL;
}
/* Checks heap order, slot indices and the copied keys: 0 or negative. */
int evict__heap_check(const evict__heap *h);

/* ---- ghost: a bounded queue of recently evicted keys with a value each ---- */

/* Keys are appended at the new end; when more than bound keys are live the
 * oldest is dropped. A key can be removed from anywhere (a ghost hit): the
 * map forgets it and its slot is skipped later (a slot with append number s
 * is live iff the map says s for its key). When the ring fills with skipped
 * slots it is compacted in place; with twice the bound in slots that costs
 * O(1) amortized per append. */
typedef struct evict__ghost {
    uint64_t *keys;   /* ring of appended keys, [ring] */
    uint64_t *vals;   /* their values, [ring] */
    int64_t ring;     /* slots (2 x the reserved bound, or 0) */
    uint64_t head;    /* append number of the next key */
    uint64_t tail;    /* append number of the oldest slot not yet dropped */
    int64_t bound;    /* live keys allowed (the policy's bound, capped by reserve) */
    int64_t want;     /* the policy's bound */
    evict__map where; /* key -> append number */
} evict__ghost;

/* Sets up an empty ghost that will hold up to bound keys once reserved. */
void evict__ghost_init(evict__ghost *g, int64_t bound);
/* Makes room for min(n, bound) keys. SIM_OK or SIM_ENOMEM. */
int evict__ghost_reserve(evict__ghost *g, int64_t n);
/* Frees. */
void evict__ghost_fini(evict__ghost *g);
/* Appends key (not present) with val, dropping the oldest when over the
 * bound. No-op when nothing is reserved (an unlimited cache never evicts). */
void evict__ghost_push(evict__ghost *g, uint64_t key, uint64_t val);
/* Removes key if present: returns 1 and sets *val (may be NULL), else 0. */
int evict__ghost_take(evict__ghost *g, uint64_t key, uint64_t *val);
/* Whether key is present. */
int evict__ghost_has(const evict__ghost *g, uint64_t key);
/* Removes the oldest key: returns 1, or 0 when empty. */
int evict__ghost_drop_oldest(evict__ghost *g);
/* Live keys. */
static inline int64_t evict__ghost_size(const evict__ghost *g) {
    return g->where.n;
}

/* ---- the session policy's gap model (shared with its test reference) ---- */

/* Bins of idle ages and of gaps between turns: bin 0 is [0, 1 ms), bin k
 * (1..36) is [e_k, e_k+1) with e_k = 1 ms x 10^((k-1)/4), bin 37 is
 * [1e6 s, infinity). */
#define EVICT_SESS_BINS 38

/* Lower edge of bin k in ns (0 for bin 0). */
sim_time evict__sess_edge(int k);
/* The bin of an age or gap (ns; negative counts as 0). */
int evict__sess_bin(sim_time age_ns);
/* prob[k] = P(a session idle for e_k returns within horizon), from the
 * histogram of observed gaps (hist[EVICT_SESS_BINS], total = its sum):
 * (F(e_k + horizon) - F(e_k)) / (1 - F(e_k)), F the gaps' CDF, linear
 * within a bin, the last bin's mass beyond any finite time; 0 when no gap
 * was ever seen past e_k (or none at all). */
void evict__sess_probs(const double *hist, double total, sim_time horizon, double *prob);

/* Order-preserving int64 image of a double >= 0 (for heap keys). */
static inline int64_t evict__key_of_double(double x) {
    union {
        double d;
        int64_t i;
    } u;
    u.d = x > 0 ? x : 0.0;
    return u.i;
}

#ifdef __cplusplus
}
#endif
#endif /* SIM_EVICT_INT_H */
