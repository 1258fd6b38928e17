/* evict_lru.c: least recently used, leaf first.
 *
 * Rule: the victim is the evictable block whose last access is oldest, in
 * ticks (every access has its own tick, so there are no ties). Only leaves
 * are offered, and a block is accessed before its child within a request,
 * so a finished request's chain is eaten from its last block back.
 * Structure: a min-heap on the last-access tick. A block's key is fixed
 * while it is offered (hits happen only to held blocks), so each offer and
 * withdrawal is one O(log n) heap operation; inner blocks of a chain are
 * never offered, which keeps the heap at the number of leaves.
 * Reference: the classic LRU; vLLM's prefix cache frees a finished
 * request's blocks in reverse order for the same leaf-first effect. */
#include "config.h"

#include "evict.h"
#include "evict_int.h"
#include "mem.h"
#include "pcache.h"

typedef struct lru {
    evict__heap h; /* offered blocks by last-access tick */
} lru;

static int lru_create(const evict_params *p, void **st, sim_err *err) {
    (void)p;
    (void)err;
    *st = SIM_NEW(lru);
    return *st ? SIM_OK : SIM_ENOMEM;
}

static void lru_destroy(void *st) {
    lru *s = st;
    if (s == NULL)
        return;
    evict__heap_fini(&s->h);
    sim_free(s);
}

static int lru_reserve(void *st, int64_t n) {
    return evict__heap_reserve(&((lru *)st)->h, n);
}

static void lru_on_evictable(void *st, pcache_block *b, sim_time now) {
    (void)now;
    b->ev.k1 = (int64_t)b->seq_access;
    b->ev.k2 = 0;
    evict__heap_push(&((lru *)st)->h, b);
}

static void lru_on_pinned(void *st, pcache_block *b) {
    evict__heap_remove(&((lru *)st)->h, b);
}

static pcache_block *lru_pick_victim(void *st, uint64_t key_in, sim_time now) {
    (void)key_in;
    (void)now;
    return evict__heap_pop(&((lru *)st)->h);
}

static int lru_check(const void *st, int64_t n_evictable) {
    const lru *s = st;
    if (s->h.n != n_evictable)
        return -1;
    return evict__heap_check(&s->h);
}

const struct evict_ops evict_lru_ops = {
    .name = "lru",
    .help = "least recently used leaf first (no parameters)",
    .param_keys = NULL,
    .create = lru_create,
    .destroy = lru_destroy,
    .reserve = lru_reserve,
    .on_insert = NULL,
    .on_access = NULL,
    .on_evictable = lru_on_evictable,
    .on_pinned = lru_on_pinned,
    .pick_victim = lru_pick_victim,
    .pick_expired = NULL,
    .check = lru_check,
};
