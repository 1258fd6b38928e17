/* evict_lfu.c: least frequently used, leaf first.
 *
 * Rule: the victim is the evictable block with the fewest accesses since it
 * was inserted (the insertion counts as one), ties to the least recently
 * used. Counts restart when a block is evicted and inserted again (no
 * history is kept), and never age, so a block that was popular long ago
 * stays: that pollution is LFU's known weakness, which GDSF's inflation and
 * ARC's adaptation address. A parent is accessed at least as often as any
 * child, so the leaf-first rule and LFU agree.
 * Structure: a min-heap on (accesses, last-access tick); counts change only
 * on hits, which happen to held (not offered) blocks, so a key is fixed
 * while the block is in the heap. O(log n) per offer, withdrawal, eviction.
 * Reference: e.g. Karakostas and Serpanos, "Exploitation of different types
 * of locality for web caches", ISCC 2002 (LFU variants). */
#include "config.h"

#include "evict.h"
#include "evict_int.h"
#include "mem.h"
#include "pcache.h"

typedef struct lfu {
    evict__heap h; /* offered blocks by (accesses, last-access tick) */
} lfu;

static int lfu_create(const evict_params *p, void **st, sim_err *err) {
    (void)p;
    (void)err;
    *st = SIM_NEW(lfu);
    return *st ? SIM_OK : SIM_ENOMEM;
}

static void lfu_destroy(void *st) {
    lfu *s = st;
    if (s == NULL)
        return;
    evict__heap_fini(&s->h);
    sim_free(s);
}

static int lfu_reserve(void *st, int64_t n) {
    return evict__heap_reserve(&((lfu *)st)->h, n);
}

static void lfu_on_evictable(void *st, pcache_block *b, sim_time now) {
    (void)now;
    b->ev.k1 = (int64_t)b->n_access;
    b->ev.k2 = (int64_t)b->seq_access;
    evict__heap_push(&((lfu *)st)->h, b);
}

static void lfu_on_pinned(void *st, pcache_block *b) {
    evict__heap_remove(&((lfu *)st)->h, b);
}

static pcache_block *lfu_pick_victim(void *st, uint64_t key_in, sim_time now) {
    (void)key_in;
    (void)now;
    return evict__heap_pop(&((lfu *)st)->h);
}

static int lfu_check(const void *st, int64_t n_evictable) {
    const lfu *s = st;
    if (s->h.n != n_evictable)
        return -1;
    return evict__heap_check(&s->h);
}

const struct evict_ops evict_lfu_ops = {
    .name = "lfu",
    .help = "fewest accesses first, ties least recently used (no parameters)",
    .param_keys = NULL,
    .create = lfu_create,
    .destroy = lfu_destroy,
    .reserve = lfu_reserve,
    .on_insert = NULL,
    .on_access = NULL,
    .on_evictable = lfu_on_evictable,
    .on_pinned = lfu_on_pinned,
    .pick_victim = lfu_pick_victim,
    .pick_expired = NULL,
    .check = lfu_check,
};
