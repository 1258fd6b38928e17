/* evict_fifo.c: first in, first out, leaf first.
 *
 * Rule: the victim is the evictable block inserted longest ago (by its
 * insertion tick). Hits change nothing. A parent is always older than its
 * children, so when a chain's leaf goes the parent becomes the oldest
 * offered block of its chain, and FIFO keeps eating that chain only if it
 * is also the oldest overall.
 * Structure: a min-heap on the insertion tick (blocks return to the
 * offered set out of insertion order, after a hit or when a child goes, so
 * a plain queue would need a scan); O(log n) per offer, withdrawal or
 * eviction. */
#include "config.h"

#include "evict.h"
#include "evict_int.h"
#include "mem.h"
#include "pcache.h"

typedef struct fifo {
    evict__heap h; /* offered blocks by insertion tick */
} fifo;

static int fifo_create(const evict_params *p, void **st, sim_err *err) {
    (void)p;
    (void)err;
    *st = SIM_NEW(fifo);
    return *st ? SIM_OK : SIM_ENOMEM;
}

static void fifo_destroy(void *st) {
    fifo *s = st;
    if (s == NULL)
        return;
    evict__heap_fini(&s->h);
    sim_free(s);
}

static int fifo_reserve(void *st, int64_t n) {
    return evict__heap_reserve(&((fifo *)st)->h, n);
}

static void fifo_on_evictable(void *st, pcache_block *b, sim_time now) {
    (void)now;
    b->ev.k1 = (int64_t)b->seq_insert;
    b->ev.k2 = 0;
    evict__heap_push(&((fifo *)st)->h, b);
}

static void fifo_on_pinned(void *st, pcache_block *b) {
    evict__heap_remove(&((fifo *)st)->h, b);
}

static pcache_block *fifo_pick_victim(void *st, uint64_t key_in, sim_time now) {
    (void)key_in;
    (void)now;
    return evict__heap_pop(&((fifo *)st)->h);
}

static int fifo_check(const void *st, int64_t n_evictable) {
    const fifo *s = st;
    if (s->h.n != n_evictable)
        return -1;
    return evict__heap_check(&s->h);
}

const struct evict_ops evict_fifo_ops = {
    .name = "fifo",
    .help = "oldest inserted leaf first (no parameters)",
    .param_keys = NULL,
    .create = fifo_create,
    .destroy = fifo_destroy,
    .reserve = fifo_reserve,
    .on_insert = NULL,
    .on_access = NULL,
    .on_evictable = fifo_on_evictable,
    .on_pinned = fifo_on_pinned,
    .pick_victim = fifo_pick_victim,
    .pick_expired = NULL,
    .check = fifo_check,
};
