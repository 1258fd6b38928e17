/* evict_belady.c: Belady's optimal replacement (offline upper bound).
 *
 * Rule (Belady, "A study of replacement algorithms for a virtual-storage
 * computer", IBM Systems Journal 5(2), 1966): evict the block whose next
 * use lies farthest in the future; blocks never used again go first; ties
 * go to the deepest block (then the oldest insertion). Under chained keys a
 * parent is used whenever any descendant is, and earlier in the same
 * request, so its next use is never later than its children's: the
 * farthest next use is always found at a leaf, and the leaf-first rule
 * costs Belady nothing.
 * The future comes from an evict_oracle built by a first pass over the same
 * access sequence (cache-replay reads the trace twice): next_use[i] is the
 * ordinal of the next access to the key accessed at ordinal i, and the
 * cache's tick is that ordinal. This is the one policy whose memory grows
 * with the trace: 8 bytes per block access, plus a key map while building.
 * Structure: a min-heap on (-next use, -depth); O(log n) per offer,
 * withdrawal and eviction. */
#include "config.h"

#include <string.h>

#include "evict.h"
#include "evict_int.h"
#include "mem.h"
#include "pcache.h"

typedef struct belady {
    evict__heap h;              /* offered blocks by (-next use, -depth) */
    const evict_oracle *oracle; /* borrowed */
} belady;

static int belady_create(const evict_params *p, void **st, sim_err *err) {
    belady *s;
    *st = NULL;
    if (p->oracle == NULL) {
        sim_err_set(err, "--policy", 0, 0,
                    "belady: expected the trace ahead (an oracle), got none: only an offline "
                    "replay (kvfleet cache-replay) can run Belady's policy");
        return SIM_EINVAL;
    }
    s = SIM_NEW(belady);
    if (s == NULL)
        return SIM_ENOMEM;
    s->oracle = p->oracle;
    *st = s;
    return SIM_OK;
}

static void belady_destroy(void *st) {
    belady *s = st;
    if (s == NULL)
        return;
    evict__heap_fini(&s->h);
    sim_free(s);
}

static int belady_reserve(void *st, int64_t n) {
    return evict__heap_reserve(&((belady *)st)->h, n);
}

static void belady_on_evictable(void *st, pcache_block *b, sim_time now) {
    belady *s = st;
    int64_t next = INT64_MAX; /* beyond the oracle: treated as never used */
    (void)now;
    if (b->seq_access < (uint64_t)s->oracle->n)
        next = s->oracle->next_use[b->seq_access];
    b->ev.k1 = -next;
    b->ev.k2 = -(int64_t)b->depth;
    evict__heap_push(&s->h, b);
}

static void belady_on_pinned(void *st, pcache_block *b) {
    evict__heap_remove(&((belady *)st)->h, b);
}

static pcache_block *belady_pick_victim(void *st, uint64_t key_in, sim_time now) {
    (void)key_in;
    (void)now;
    return evict__heap_pop(&((belady *)st)->h);
}

static int belady_check(const void *st, int64_t n_evictable) {
    const belady *s = st;
    if (s->h.n != n_evictable)
        return -1;
    return evict__heap_check(&s->h);
}

const struct evict_ops evict_belady_ops = {
    .name = "belady",
    .help = "farthest next use first, ties deepest (offline: needs the trace ahead)",
    .param_keys = NULL,
    .create = belady_create,
    .destroy = belady_destroy,
    .reserve = belady_reserve,
    .on_insert = NULL,
    .on_access = NULL,
    .on_evictable = belady_on_evictable,
    .on_pinned = belady_on_pinned,
    .pick_victim = belady_pick_victim,
    .pick_expired = NULL,
    .check = belady_check,
};

/* ---- the oracle ---- */

evict_oracle *evict_oracle_create(void) {
    evict_oracle *o = SIM_NEW(evict_oracle);
    evict__map *m = SIM_NEW(evict__map);
    if (o == NULL || m == NULL || evict__map_reserve(m, 1024) != SIM_OK) {
        sim_free(o);
        sim_free(m);
        return NULL;
    }
    o->last = m;
    return o;
}

int evict_oracle_add(evict_oracle *o, uint64_t key) {
    evict__map *m = o->last;
    uint64_t prev;
    SIM_ASSERT(m != NULL);
    if (o->n == o->cap) {
        int64_t cap = o->cap ? 2 * o->cap : 4096;
        int64_t *a = sim_realloc(o->next_use, (size_t)cap * sizeof *a);
        if (a == NULL)
            return SIM_ENOMEM;
        o->next_use = a;
        o->cap = cap;
    }
    if (evict__map_reserve(m, m->n + 1) != SIM_OK)
        return SIM_ENOMEM;
    prev = evict__map_get(m, key);
    if (prev != EVICT_MAP_EMPTY)
        o->next_use[prev] = o->n;
    o->next_use[o->n] = INT64_MAX;
    evict__map_put(m, key, (uint64_t)o->n);
    o->n++;
    return SIM_OK;
}

void evict_oracle_finish(evict_oracle *o) {
    evict__map *m = o->last;
    if (m != NULL) {
        evict__map_fini(m);
        sim_free(m);
        o->last = NULL;
    }
}

void evict_oracle_destroy(evict_oracle *o) {
    if (o == NULL)
        return;
    evict_oracle_finish(o);
    sim_free(o->next_use);
    sim_free(o);
}
