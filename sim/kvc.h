/* kvc.h: a paged KV block pool (one per tier per replica).
 *
 * Blocks of block_tokens tokens are identified by int32 ids 0..n-1. Each
 * block has a reference count: alloc hands out a block with count 1, ref
 * adds a holder, unref drops one and returns the block to the free list at
 * zero. alloc and unref are O(1) (a free stack). Counters of blocks ever
 * allocated and freed let tests check conservation at the end of a run.
 *
 * Anonymous blocks are blocks in use that have no id: a holder that never
 * shares its blocks nor names them (a sequence whose KV is never cached,
 * under an executor that reads no block tables) takes and returns a count,
 * in O(1) whatever the count. They are free blocks the id stack still holds
 * but may not hand out, so free, used, peak and the alloc/freed counters
 * are the same whether a block is taken with an id or without. */
#ifndef SIM_KVC_H
#define SIM_KVC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kvc_pool kvc_pool;

/* Creates a pool of n_blocks blocks (>= 1); returns owned or NULL. */
kvc_pool *kvc_pool_create(int64_t n_blocks);
/* Frees the pool; NULL is a no-op. */
void kvc_pool_destroy(kvc_pool *p);
/* Takes a free block (ref count 1); returns its id, or -1 when none is free. */
int32_t kvc_block_alloc(kvc_pool *p);
/* Takes up to n free blocks at once into ids, in the order n calls of
 * kvc_block_alloc would give them; returns how many (fewer when the pool
 * runs out). */
int32_t kvc_block_alloc_n(kvc_pool *p, int32_t *ids, int32_t n);
/* Adds a reference to an allocated block. */
void kvc_block_ref(kvc_pool *p, int32_t id);
/* Drops a reference; the block returns to the free list at zero. */
void kvc_block_unref(kvc_pool *p, int32_t id);
/* kvc_block_unref on ids[n-1], ids[n-2], ..., ids[0], in that order. */
void kvc_block_unref_n(kvc_pool *p, const int32_t *ids, int32_t n);
/* Takes up to n (>= 0) free blocks without ids; returns how many (fewer
 * when the pool runs out). Counts as that many allocations. */
int64_t kvc_anon_alloc(kvc_pool *p, int64_t n);
/* Returns n anonymous blocks (at most those in use) to the pool. */
void kvc_anon_release(kvc_pool *p, int64_t n);
/* Anonymous blocks in use. */
int64_t kvc_n_anon(const kvc_pool *p);
/* Reference count of a block (0 = free). */
uint32_t kvc_block_refs(const kvc_pool *p, int32_t id);
/* Blocks in the pool, free, and in use. */
int64_t kvc_total(const kvc_pool *p);
int64_t kvc_free(const kvc_pool *p);
int64_t kvc_used(const kvc_pool *p);
/* Peak blocks in use since creation. */
int64_t kvc_peak_used(const kvc_pool *p);
/* Allocations and frees (to the free list) since creation. */
int64_t kvc_n_alloc(const kvc_pool *p);
int64_t kvc_n_freed(const kvc_pool *p);
/* 1 once growing the pool's id arrays failed (an alloc then returned -1 or
 * fewer ids for want of memory, not of blocks). */
int kvc_oom(const kvc_pool *p);
/* Ids the pool keeps arrays for (grows with the ids handed out, not n). */
int64_t kvc_ids_held(const kvc_pool *p);
/* Walks the pool and checks every invariant (free list holds exactly the
 * zero-count blocks, once each, and at least the anonymous blocks in use;
 * counters agree). Returns 0 when sound, or a
 * negative number identifying the first broken invariant. O(n). */
int kvc_check(const kvc_pool *p);

#ifdef __cplusplus
}
#endif
#endif /* SIM_KVC_H */
