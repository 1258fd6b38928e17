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
 *
 * The future comes from an evict_oracle built by a first pass, of one of
 * two kinds (sim/evict.h):
 *
 *   - Ticks (kvfleet cache-replay reads the trace twice): next_use[i] is the
 *     ordinal of the next access to the key accessed at ordinal i, and the
 *     cache's tick is that ordinal. Exact: the replay's accesses are the
 *     first pass's, one for one.
 *   - Times (kvfleet run): every key's uses, as the times of the requests
 *     that will use it (their arrivals; for session traces the times the
 *     turns would arrive with zero service time). In the simulator the
 *     accesses happen later than those times (queueing, prefill, decode) by
 *     amounts the first pass cannot know, so each instance of the policy
 *     keeps, per key, a cursor into the key's uses: the uses its accesses
 *     have served so far. An access (a hit, or the insertion of a block) at
 *     time now serves the key's first pending use if that use's time is
 *     <= now (it is the accessing request's own use, or an earlier one's
 *     whose access never came); then the uses that were already due at the
 *     key's previous access here are dropped as stale (their requests were
 *     rejected, served by another replica, or found the block cached by a
 *     sequence still in flight without touching it). A block's next use is
 *     its key's first pending use: possibly already due (a request that
 *     has arrived and waits to be admitted), which keeps it longest. The
 *     order of a key's uses is exact; the times compared across keys are
 *     the trace's, not the simulator's (docs/eviction.md, caveats).
 *     Per instance: 12 bytes per distinct key of the trace (cursor and time
 *     of the previous access), allocated at creation.
 *
 * This is the one policy whose memory grows with the trace. Structure: a
 * min-heap on (-next use, -depth); O(log n) per offer, withdrawal and
 * eviction, plus an O(1) expected key lookup per insertion (times). The
 * heap key is fixed when a block is offered: a key's pending uses change
 * only on an access to its block, which withdraws the block first. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "evict.h"
#include "evict_int.h"
#include "mem.h"
#include "pcache.h"

typedef struct belady {
    evict__heap h;              /* offered blocks by (-next use, -depth) */
    const evict_oracle *oracle; /* borrowed */
    /* time oracles only: per key index of the oracle */
    uint32_t *cur;  /* [n_keys] uses of the key served so far (pending: cur..) */
    sim_time *prev; /* [n_keys] time of the key's last access here, -1 before any */
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
    if (p->oracle->kind == EVICT_ORACLE_TIMES && p->oracle->n_keys > 0) {
        int64_t i, n = p->oracle->n_keys;
        SIM_ASSERT(p->oracle->use_off != NULL); /* finished */
        s->cur = SIM_NEW_ARRAY(uint32_t, (size_t)n);
        s->prev = SIM_NEW_ARRAY(sim_time, (size_t)n);
        if (s->cur == NULL || s->prev == NULL) {
            sim_free(s->cur);
            sim_free(s->prev);
            sim_free(s);
            return SIM_ENOMEM;
        }
        for (i = 0; i < n; i++)
            s->prev[i] = -1;
    }
    *st = s;
    return SIM_OK;
}

static void belady_destroy(void *st) {
    belady *s = st;
    if (s == NULL)
        return;
    evict__heap_fini(&s->h);
    sim_free(s->cur);
    sim_free(s->prev);
    sim_free(s);
}

static int belady_reserve(void *st, int64_t n) {
    return evict__heap_reserve(&((belady *)st)->h, n);
}

/* ---- time oracles: matching accesses to uses ---- */

/* An access to the block whose key has index i (ev.count - 1) at now: serve
 * the first pending use if it is due, then drop the uses that were due at
 * the key's previous access (stale). */
static void times_touch(belady *s, uint32_t i, sim_time now) {
    const evict_oracle *o = s->oracle;
    const sim_time *t = o->use_ns + o->use_off[i];
    uint32_t c = s->cur[i], n = (uint32_t)(o->use_off[i + 1] - o->use_off[i]);
    if (c < n && t[c] <= now)
        c++;
    while (c < n && t[c] < s->prev[i])
        c++;
    s->cur[i] = c;
    s->prev[i] = now;
}

static void belady_on_insert(void *st, pcache_block *b, sim_time now) {
    belady *s = st;
    uint64_t i;
    if (s->oracle->kind != EVICT_ORACLE_TIMES || s->oracle->ids == NULL)
        return;
    i = evict__map_get(s->oracle->ids, b->key);
    if (i == EVICT_MAP_EMPTY)
        return; /* a key no request of the trace uses: ev.count stays 0, never used */
    b->ev.count = (uint32_t)i + 1;
    times_touch(s, (uint32_t)i, now);
}

static void belady_on_access(void *st, pcache_block *b, sim_time now) {
    belady *s = st;
    if (b->ev.count > 0)
        times_touch(s, b->ev.count - 1, now);
}

/* The next use of b (ns or ordinal), INT64_MAX when none is known. */
static int64_t next_use(const belady *s, const pcache_block *b) {
    const evict_oracle *o = s->oracle;
    if (o->kind == EVICT_ORACLE_TIMES) {
        uint32_t i;
        int64_t u;
        if (b->ev.count == 0)
            return INT64_MAX;
        i = b->ev.count - 1;
        u = o->use_off[i] + s->cur[i];
        return u < o->use_off[i + 1] ? o->use_ns[u] : INT64_MAX;
    }
    if (b->seq_access < (uint64_t)o->n)
        return o->next_use[b->seq_access];
    return INT64_MAX; /* beyond the oracle: treated as never used */
}

static void belady_on_evictable(void *st, pcache_block *b, sim_time now) {
    belady *s = st;
    /* a preempted request's block: it comes back when the request resumes,
     * a use already due (the oracle's use of it was served at admission) */
    int64_t next = b->resume ? now : next_use(s, b);
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
    .help = "farthest next use first, ties deepest (offline: reads the trace ahead)",
    .param_keys = NULL,
    .create = belady_create,
    .destroy = belady_destroy,
    .reserve = belady_reserve,
    .on_insert = belady_on_insert,
    .on_access = belady_on_access,
    .on_evictable = belady_on_evictable,
    .on_pinned = belady_on_pinned,
    .pick_victim = belady_pick_victim,
    .pick_expired = NULL,
    .check = belady_check,
};

/* ---- the oracle ---- */

/* An empty oracle of kind (EVICT_ORACLE_*) with its key map (room for
 * 1024 keys): the tick oracle's last-use map, the time oracle's key ids.
 * Returns owned, or NULL when out of memory. */
static evict_oracle *oracle_new(int kind) {
    evict_oracle *o = SIM_NEW(evict_oracle);
    evict__map *m = SIM_NEW(evict__map);
    if (o == NULL || m == NULL || evict__map_reserve(m, 1024) != SIM_OK) {
        sim_free(o);
        sim_free(m);
        return NULL;
    }
    o->kind = kind;
    if (kind == EVICT_ORACLE_TIMES)
        o->ids = m;
    else
        o->last = m;
    return o;
}

evict_oracle *evict_oracle_create(void) {
    return oracle_new(EVICT_ORACLE_TICKS);
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
    if (o->ids != NULL) {
        evict__map_fini(o->ids);
        sim_free(o->ids);
    }
    sim_free(o->use_ns);
    sim_free(o->use_key);
    sim_free(o->use_off);
    sim_free(o);
}

/* ---- the time oracle ----
 * While building: one (key index, time) pair per use, in recording order,
 * and the key -> index map. finish() counts the uses per key, places them
 * by a stable counting sort (so a key's uses stay in recording order, which
 * is time order for a source read in arrival order) and sorts each key's
 * times in case they were not (session follow-ups, recorded out of
 * order). */

evict_oracle *evict_oracle_times_create(void) {
    return oracle_new(EVICT_ORACLE_TIMES);
}

int evict_oracle_add_use(evict_oracle *o, uint64_t key, sim_time t_ns) {
    evict__map *m = o->ids;
    uint64_t i;
    SIM_ASSERT(o->kind == EVICT_ORACLE_TIMES && o->use_off == NULL && t_ns >= 0);
    if (o->n_uses >= (int64_t)UINT32_MAX) /* a key's cursor is 32 bits */
        return SIM_ENOMEM;
    if (o->n_uses == o->cap_uses) {
        int64_t cap = o->cap_uses ? 2 * o->cap_uses : 4096;
        sim_time *t = sim_realloc(o->use_ns, (size_t)cap * sizeof *t);
        uint32_t *k;
        if (t == NULL)
            return SIM_ENOMEM;
        o->use_ns = t;
        k = sim_realloc(o->use_key, (size_t)cap * sizeof *k);
        if (k == NULL)
            return SIM_ENOMEM;
        o->use_key = k;
        o->cap_uses = cap;
    }
    i = evict__map_get(m, key);
    if (i == EVICT_MAP_EMPTY) {
        if (o->n_keys >= (int64_t)UINT32_MAX - 1 || evict__map_reserve(m, m->n + 1) != SIM_OK)
            return SIM_ENOMEM;
        i = (uint64_t)o->n_keys++;
        evict__map_put(m, key, i);
    }
    o->use_key[o->n_uses] = (uint32_t)i;
    o->use_ns[o->n_uses] = t_ns;
    o->n_uses++;
    return SIM_OK;
}

static int cmp_time(const void *a, const void *b) {
    sim_time x = *(const sim_time *)a, y = *(const sim_time *)b;
    return (x > y) - (x < y);
}

int evict_oracle_times_finish(evict_oracle *o) {
    int64_t i, k, *off, *fill;
    sim_time *t;
    SIM_ASSERT(o->kind == EVICT_ORACLE_TIMES && o->use_off == NULL);
    off = SIM_NEW_ARRAY(int64_t, (size_t)o->n_keys + 1);
    fill = SIM_NEW_ARRAY(int64_t, (size_t)o->n_keys + 1);
    t = sim_malloc((size_t)(o->n_uses > 0 ? o->n_uses : 1) * sizeof *t);
    if (off == NULL || fill == NULL || t == NULL) {
        sim_free(off);
        sim_free(fill);
        sim_free(t);
        return SIM_ENOMEM;
    }
    for (i = 0; i < o->n_uses; i++)
        off[o->use_key[i] + 1]++;
    for (k = 0; k < o->n_keys; k++) {
        off[k + 1] += off[k];
        fill[k] = off[k];
    }
    for (i = 0; i < o->n_uses; i++)
        t[fill[o->use_key[i]]++] = o->use_ns[i];
    for (k = 0; k < o->n_keys; k++) {
        int64_t a = off[k], n = off[k + 1] - off[k], j;
        for (j = 1; j < n && t[a + j - 1] <= t[a + j]; j++)
            ;
        if (j < n) /* not in order: sort this key's times */
            qsort(t + a, (size_t)n, sizeof *t, cmp_time);
    }
    sim_free(fill);
    sim_free(o->use_ns);
    sim_free(o->use_key);
    o->use_ns = t;
    o->use_key = NULL;
    o->use_off = off;
    o->cap_uses = o->n_uses;
    return SIM_OK;
}

int64_t evict_oracle_key_uses(const evict_oracle *o, uint64_t key, const sim_time **uses_ns) {
    uint64_t i;
    *uses_ns = NULL;
    if (o->kind != EVICT_ORACLE_TIMES || o->use_off == NULL)
        return 0;
    i = evict__map_get(o->ids, key);
    if (i == EVICT_MAP_EMPTY)
        return 0;
    *uses_ns = o->use_ns + o->use_off[i];
    return o->use_off[i + 1] - o->use_off[i];
}
