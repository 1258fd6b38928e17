/* evict_ttl.c: idle time-to-live.
 *
 * Rule: a block idle for longer than `idle` (now - last access > idle, in
 * the trace's time) is dropped at the next pcache_expire(), even when the
 * cache is not full: the seed case is a serving system that forgets a
 * conversation idle longer than T. When the cache is full before anything
 * has expired, the least recently used evictable block goes (by last access
 * time, then tick). All blocks of a conversation are touched on each of its
 * turns, so a conversation expires as a whole, leaf first.
 * Parameter: idle=DURATION (default 300s; 300ms, 5m, plain seconds ...).
 * Structure: a min-heap on (last access time, tick); expiry pops from the
 * top while the top is too old. O(log n) per offer, withdrawal, eviction.
 * With unlimited capacity this policy still drops blocks, so its hit rate
 * is below the trace's ideal reuse by design. */
#include "config.h"

#include "evict.h"
#include "evict_int.h"
#include "mem.h"
#include "pcache.h"

typedef struct ttl {
    evict__heap h; /* offered blocks by (last access ns, tick) */
    sim_time idle; /* ns, > 0 */
} ttl;

static const char *const ttl_keys[] = {"idle", NULL};

static int ttl_create(const evict_params *p, void **st, sim_err *err) {
    ttl *s;
    sim_time idle;
    int rc = evict_param_duration(p, "idle", 300 * SIM_NS_PER_S, &idle, err);
    *st = NULL;
    if (rc != SIM_OK)
        return rc;
    s = SIM_NEW(ttl);
    if (s == NULL)
        return SIM_ENOMEM;
    s->idle = idle;
    *st = s;
    return SIM_OK;
}

static void ttl_destroy(void *st) {
    ttl *s = st;
    if (s == NULL)
        return;
    evict__heap_fini(&s->h);
    sim_free(s);
}

static int ttl_reserve(void *st, int64_t n) {
    return evict__heap_reserve(&((ttl *)st)->h, n);
}

static void ttl_on_evictable(void *st, pcache_block *b, sim_time now) {
    (void)now;
    b->ev.k1 = b->t_access_ns;
    b->ev.k2 = (int64_t)b->seq_access;
    evict__heap_push(&((ttl *)st)->h, b);
}

static void ttl_on_pinned(void *st, pcache_block *b) {
    evict__heap_remove(&((ttl *)st)->h, b);
}

static pcache_block *ttl_pick_victim(void *st, uint64_t key_in, sim_time now) {
    (void)key_in;
    (void)now;
    return evict__heap_pop(&((ttl *)st)->h);
}

static pcache_block *ttl_pick_expired(void *st, sim_time now) {
    ttl *s = st;
    pcache_block *b = evict__heap_top(&s->h);
    if (b == NULL || now - b->t_access_ns <= s->idle)
        return NULL;
    return evict__heap_pop(&s->h);
}

static int ttl_check(const void *st, int64_t n_evictable) {
    const ttl *s = st;
    if (s->h.n != n_evictable)
        return -1;
    return evict__heap_check(&s->h);
}

const struct evict_ops evict_ttl_ops = {
    .name = "ttl",
    .help = "drop blocks idle longer than idle=DURATION (300s); when full, LRU",
    .param_keys = ttl_keys,
    .create = ttl_create,
    .destroy = ttl_destroy,
    .reserve = ttl_reserve,
    .on_insert = NULL,
    .on_access = NULL,
    .on_evictable = ttl_on_evictable,
    .on_pinned = ttl_on_pinned,
    .pick_victim = ttl_pick_victim,
    .pick_expired = ttl_pick_expired,
    .check = ttl_check,
};
