/* evict_util.c: the map, pool, heap and ghost queue of evict_int.h.
 *
 * map: open addressing with linear probing at load <= 1/2, Fibonacci
 * hashing of the key (the multiplication spreads sequential session ids as
 * well as already-mixed block keys), and backward-shift deletion, so there
 * are no tombstones and lookups stay short under churn.
 * pool: chunks of items threaded on a free list; addresses never move.
 * heap: a binary min-heap of block pointers; each block remembers its slot
 * (ev.pos), which makes removal from the middle O(log n).
 * ghost: a ring of keys plus a map from key to append number (see the
 * header); the oldest live key is found by skipping dead slots, each at
 * most once. */
#include "config.h"
#include "evict_int.h"

#include <string.h>

#include "mem.h"

/* ---- map ---- */

#define GOLDEN 0x9e3779b97f4a7c15ULL

static inline uint64_t home(const evict__map *m, uint64_t key) {
    return (key * GOLDEN) >> m->shift;
}

int evict__map_reserve(evict__map *m, int64_t n) {
    uint64_t cap = 16, i, old_cap = m->mask ? m->mask + 1 : 0;
    int shift = 60;
    evict__slot *slots, *old = m->s;
    if (n <= m->room && m->mask != 0)
        return SIM_OK;
    while ((int64_t)(cap / 2) < n) {
        if (cap > (UINT64_MAX >> 2) || cap > (uint64_t)SIZE_MAX / (2 * sizeof *slots))
            return SIM_ENOMEM;
        cap *= 2;
        shift--;
    }
    slots = sim_malloc(cap * sizeof *slots);
    if (slots == NULL)
        return SIM_ENOMEM;
    memset(slots, 0xff, cap * sizeof *slots);
    m->s = slots;
    m->mask = cap - 1;
    m->shift = shift;
    m->n = 0;
    m->room = (int64_t)(cap / 2);
    for (i = 0; i < old_cap; i++)
        if (old[i].val != EVICT_MAP_EMPTY)
            evict__map_put(m, old[i].key, old[i].val);
    sim_free(old);
    return SIM_OK;
}

void evict__map_fini(evict__map *m) {
    sim_free(m->s);
    memset(m, 0, sizeof *m);
}

uint64_t evict__map_get(const evict__map *m, uint64_t key) {
    uint64_t i;
    if (m->mask == 0)
        return EVICT_MAP_EMPTY;
    for (i = home(m, key);; i = (i + 1) & m->mask) {
        if (m->s[i].val == EVICT_MAP_EMPTY)
            return EVICT_MAP_EMPTY;
        if (m->s[i].key == key)
            return m->s[i].val;
    }
}

int evict__map_put(evict__map *m, uint64_t key, uint64_t val) {
    uint64_t i;
    SIM_ASSERT(m->mask != 0 && val != EVICT_MAP_EMPTY);
    for (i = home(m, key);; i = (i + 1) & m->mask) {
        if (m->s[i].val == EVICT_MAP_EMPTY) {
            SIM_ASSERT(m->n < m->room);
            m->s[i].key = key;
            m->s[i].val = val;
            m->n++;
            return 1;
        }
        if (m->s[i].key == key) {
            m->s[i].val = val;
            return 0;
        }
    }
}

/* Finds key's slot: its index, or the mask + 1 when absent. */
static uint64_t find_slot(const evict__map *m, uint64_t key) {
    uint64_t i;
    if (m->mask == 0)
        return 1;
    for (i = home(m, key);; i = (i + 1) & m->mask) {
        if (m->s[i].val == EVICT_MAP_EMPTY)
            return m->mask + 1;
        if (m->s[i].key == key)
            return i;
    }
}

/* Empties slot i, pulling later entries of its probe run into the hole
 * unless their home lies cyclically in (hole, j] (backward shift). */
static void del_slot(evict__map *m, uint64_t i) {
    uint64_t j, k;
    for (j = (i + 1) & m->mask; m->s[j].val != EVICT_MAP_EMPTY; j = (j + 1) & m->mask) {
        k = home(m, m->s[j].key);
        if (((j - k) & m->mask) >= ((j - i) & m->mask)) {
            m->s[i] = m->s[j];
            i = j;
        }
    }
    m->s[i].val = EVICT_MAP_EMPTY;
    m->n--;
}

uint64_t evict__map_del(evict__map *m, uint64_t key) {
    uint64_t i = find_slot(m, key), val;
    if (i > m->mask)
        return EVICT_MAP_EMPTY;
    val = m->s[i].val;
    del_slot(m, i);
    return val;
}

int evict__map_del_if(evict__map *m, uint64_t key, uint64_t val) {
    uint64_t i = find_slot(m, key);
    if (i > m->mask || m->s[i].val != val)
        return 0;
    del_slot(m, i);
    return 1;
}

/* ---- pool ---- */

void evict__pool_init(evict__pool *p, size_t item_bytes) {
    memset(p, 0, sizeof *p);
    p->item_bytes = (item_bytes + 7) & ~(size_t)7; /* items need 8-byte alignment at most */
}

int evict__pool_reserve(evict__pool *p, int64_t n) {
    int64_t add = n - p->n_items, i;
    unsigned char *chunk;
    if (add <= 0)
        return SIM_OK;
    if ((uint64_t)add > SIZE_MAX / p->item_bytes)
        return SIM_ENOMEM;
    if (p->n_chunks == p->cap_chunks) {
        int64_t cap = p->cap_chunks ? 2 * p->cap_chunks : 8;
        void **c = sim_realloc(p->chunks, (size_t)cap * sizeof *c);
        if (c == NULL)
            return SIM_ENOMEM;
        p->chunks = c;
        p->cap_chunks = cap;
    }
    chunk = sim_malloc((size_t)add * p->item_bytes);
    if (chunk == NULL)
        return SIM_ENOMEM;
    p->chunks[p->n_chunks++] = chunk;
    /* thread in reverse so items are taken in address order */
    for (i = add - 1; i >= 0; i--) {
        void *item = chunk + (size_t)i * p->item_bytes;
        memcpy(item, &p->free, sizeof(void *));
        p->free = item;
    }
    p->n_items = n;
    return SIM_OK;
}

void *evict__pool_take(evict__pool *p) {
    void *item = p->free;
    if (item == NULL)
        return NULL;
    memcpy(&p->free, item, sizeof(void *));
    memset(item, 0, p->item_bytes);
    return item;
}

void evict__pool_give(evict__pool *p, void *item) {
    memcpy(item, &p->free, sizeof(void *));
    p->free = item;
}

void evict__pool_fini(evict__pool *p) {
    int64_t i;
    for (i = 0; i < p->n_chunks; i++)
        sim_free(p->chunks[i]);
    sim_free(p->chunks);
    evict__pool_init(p, p->item_bytes);
}

/* ---- heap ---- */

static inline int less(const evict__hent *a, const evict__hent *b) {
    if (a->k1 != b->k1)
        return a->k1 < b->k1;
    if (a->k2 != b->k2)
        return a->k2 < b->k2;
    return a->tie < b->tie;
}

int evict__heap_reserve(evict__heap *h, int64_t n) {
    evict__hent *a;
    if (n <= h->cap)
        return SIM_OK;
    if (n > INT32_MAX || (uint64_t)n > SIZE_MAX / sizeof *a)
        return SIM_ENOMEM; /* slots are int32 in the blocks */
    a = sim_realloc(h->a, (size_t)n * sizeof *a);
    if (a == NULL)
        return SIM_ENOMEM;
    h->a = a;
    h->cap = n;
    return SIM_OK;
}

void evict__heap_fini(evict__heap *h) {
    sim_free(h->a);
    memset(h, 0, sizeof *h);
}

/* Moves e up from slot i to its place. */
static void sift_up(evict__heap *h, int64_t i, evict__hent e) {
    while (i > 0) {
        int64_t up = (i - 1) / 2;
        if (!less(&e, &h->a[up]))
            break;
        h->a[i] = h->a[up];
        h->a[i].b->ev.pos = (int32_t)i;
        i = up;
    }
    h->a[i] = e;
    e.b->ev.pos = (int32_t)i;
}

/* Moves e down from slot i to its place. */
static void sift_down(evict__heap *h, int64_t i, evict__hent e) {
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && less(&h->a[c + 1], &h->a[c]))
            c++;
        if (!less(&h->a[c], &e))
            break;
        h->a[i] = h->a[c];
        h->a[i].b->ev.pos = (int32_t)i;
        i = c;
    }
    h->a[i] = e;
    e.b->ev.pos = (int32_t)i;
}

void evict__heap_push(evict__heap *h, pcache_block *b) {
    evict__hent e;
    SIM_ASSERT(h->n < h->cap && b->ev.pos == -1);
    e.k1 = b->ev.k1;
    e.k2 = b->ev.k2;
    e.tie = b->seq_insert;
    e.b = b;
    sift_up(h, h->n++, e);
}

void evict__heap_remove(evict__heap *h, pcache_block *b) {
    int64_t i = b->ev.pos;
    evict__hent last;
    SIM_ASSERT(i >= 0 && i < h->n && h->a[i].b == b);
    b->ev.pos = -1;
    if (i == --h->n)
        return;
    last = h->a[h->n];
    if (i > 0 && less(&last, &h->a[(i - 1) / 2]))
        sift_up(h, i, last);
    else
        sift_down(h, i, last);
}

void evict__heap_fix(evict__heap *h, pcache_block *b) {
    int64_t i = b->ev.pos;
    evict__hent e;
    SIM_ASSERT(i >= 0 && i < h->n && h->a[i].b == b);
    e.k1 = b->ev.k1;
    e.k2 = b->ev.k2;
    e.tie = b->seq_insert;
    e.b = b;
    if (i > 0 && less(&e, &h->a[(i - 1) / 2]))
        sift_up(h, i, e);
    else
        sift_down(h, i, e);
}

pcache_block *evict__heap_pop(evict__heap *h) {
    pcache_block *b = evict__heap_top(h);
    if (b != NULL)
        evict__heap_remove(h, b);
    return b;
}

int evict__heap_check(const evict__heap *h) {
    int64_t i;
    for (i = 0; i < h->n; i++) {
        const evict__hent *e = &h->a[i];
        if (e->b->ev.pos != i)
            return -1;
        if (e->k1 != e->b->ev.k1 || e->k2 != e->b->ev.k2 || e->tie != e->b->seq_insert)
            return -2; /* keys changed behind the heap's back */
        if (i > 0 && less(e, &h->a[(i - 1) / 2]))
            return -3;
    }
    return 0;
}

/* ---- ghost ---- */

void evict__ghost_init(evict__ghost *g, int64_t bound) {
    memset(g, 0, sizeof *g);
    g->want = bound > 0 ? bound : 0;
}

static inline int64_t slot(const evict__ghost *g, uint64_t s) {
    return (int64_t)(s % (uint64_t)g->ring);
}

/* Moves the live keys to the front of the ring, oldest first, renumbering
 * them from tail (in place: the write position never passes the read). */
static void compact(evict__ghost *g) {
    uint64_t s, w = g->tail;
    for (s = g->tail; s != g->head; s++) {
        int64_t from = slot(g, s), to;
        uint64_t key = g->keys[from];
        if (evict__map_get(&g->where, key) != s)
            continue;
        to = slot(g, w);
        g->keys[to] = key;
        g->vals[to] = g->vals[from];
        evict__map_put(&g->where, key, w);
        w++;
    }
    g->head = w;
}

int evict__ghost_reserve(evict__ghost *g, int64_t n) {
    int64_t bound = n < g->want ? n : g->want, ring = 2 * bound, j = 0;
    uint64_t *keys, *vals, s;
    if (ring <= g->ring)
        return SIM_OK;
    if ((uint64_t)ring > SIZE_MAX / sizeof *keys)
        return SIM_ENOMEM;
    if (evict__map_reserve(&g->where, bound) != SIM_OK)
        return SIM_ENOMEM;
    keys = sim_malloc((size_t)ring * sizeof *keys);
    vals = sim_malloc((size_t)ring * sizeof *vals);
    if (keys == NULL || vals == NULL) {
        sim_free(keys);
        sim_free(vals);
        return SIM_ENOMEM;
    }
    /* copy the live keys in order, renumbered from 0 */
    for (s = g->tail; g->ring > 0 && s != g->head; s++) {
        int64_t from = slot(g, s);
        if (evict__map_get(&g->where, g->keys[from]) != s)
            continue;
        keys[j] = g->keys[from];
        vals[j] = g->vals[from];
        evict__map_put(&g->where, keys[j], (uint64_t)j);
        j++;
    }
    sim_free(g->keys);
    sim_free(g->vals);
    g->keys = keys;
    g->vals = vals;
    g->ring = ring;
    g->tail = 0;
    g->head = (uint64_t)j;
    g->bound = bound;
    return SIM_OK;
}

void evict__ghost_fini(evict__ghost *g) {
    sim_free(g->keys);
    sim_free(g->vals);
    evict__map_fini(&g->where);
    evict__ghost_init(g, g->want);
}

int evict__ghost_drop_oldest(evict__ghost *g) {
    while (g->tail != g->head) {
        uint64_t s = g->tail++;
        if (evict__map_del_if(&g->where, g->keys[slot(g, s)], s))
            return 1;
    }
    return 0;
}

void evict__ghost_push(evict__ghost *g, uint64_t key, uint64_t val) {
    int64_t at;
    if (g->bound == 0)
        return;
    SIM_DASSERT(evict__map_get(&g->where, key) == EVICT_MAP_EMPTY);
    if (evict__ghost_size(g) >= g->bound)
        evict__ghost_drop_oldest(g);
    if ((int64_t)(g->head - g->tail) == g->ring)
        compact(g);
    SIM_ASSERT((int64_t)(g->head - g->tail) < g->ring);
    at = slot(g, g->head);
    g->keys[at] = key;
    g->vals[at] = val;
    evict__map_put(&g->where, key, g->head);
    g->head++;
}

int evict__ghost_take(evict__ghost *g, uint64_t key, uint64_t *val) {
    uint64_t s = evict__map_del(&g->where, key);
    if (s == EVICT_MAP_EMPTY)
        return 0;
    if (val != NULL)
        *val = g->vals[slot(g, s)];
    return 1;
}

int evict__ghost_has(const evict__ghost *g, uint64_t key) {
    return evict__map_get(&g->where, key) != EVICT_MAP_EMPTY;
}
