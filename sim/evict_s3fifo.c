/* evict_s3fifo.c: S3-FIFO (Yang et al., "FIFO queues are all you need for
 * cache eviction", SOSP 2023).
 *
 * Rule: three queues. New blocks enter the small queue S, unless their key
 * is in the ghost queue G (recently evicted from S), in which case they
 * enter the main queue M. Each block counts its hits (capped at 3, the
 * paper's two bits). To make room:
 *   - while S holds at least small x capacity blocks (or M has nothing
 *     evictable), look at S's oldest evictable block: with at least `move`
 *     hits it moves to M (count cleared) and the search goes on; otherwise
 *     it is evicted and its key remembered in G;
 *   - otherwise look at M's oldest evictable block: with hits left it is
 *     reinserted at M's new end with one hit less; otherwise it is evicted.
 * G keeps the last ghost x capacity keys evicted from S. As in
 * libCacheSim's S3FIFO, S is served while it is at or over its share.
 * Leaf constraint: a queue's order is by the stamp a block got when it
 * entered (or was reinserted into) that queue; blocks that are held or have
 * children cannot be evicted but keep their stamp, so "oldest evictable in
 * S" is the evictable block of S with the smallest stamp. |S| and |M| count
 * every cached block of the queue, held or not, as the paper's sizes do.
 * Parameters: small=F (0.1), ghost=F (0.9, of capacity), move=N (2: the
 *   paper's "accessed more than once"; 1 is the pre-2023 default).
 *
 * Structure. A block changes queue position only when it gets a stamp
 * (entering S or M, or being reinserted), and it leaves a queue only as
 * that queue's oldest evictable block. So each queue is a ring of block
 * pointers in stamp order: stamping appends at the tail, and the oldest
 * evictable block is found from the head. A block that reaches the head
 * while it cannot be evicted (held, or a parent) is "parked": taken off the
 * ring, flagged, and left out of every structure. Every parked block is
 * older than every block still on the ring, so when a parked block becomes
 * evictable again it is older than anything on the ring; those blocks wait
 * in a small heap by stamp ("late"), and the oldest evictable block of the
 * queue is the top of late if late is not empty, else the first evictable
 * block on the ring. Offers and withdrawals of blocks on the ring cost
 * nothing but a counter. G is a ring of keys with a flag per slot (taken)
 * and an open-addressing table from key to append number; dropping the
 * oldest key only moves the ring's tail (its table entry goes stale), and
 * the table is rebuilt from the ring when stale entries fill it.
 *
 * Cost: an insertion, a hit, an offer or a withdrawal of a block on the
 * ring, and a ghost push or lookup are O(1) (amortized: each block is
 * parked at most once per stamp, each ghost key rebuilt into the table at
 * most a constant number of times); a victim search moves or reinserts
 * blocks, each move paid for by an earlier hit. Only parked blocks that are
 * evictable pay O(log k) heap operations, k the number of such blocks
 * (blocks that were held or had a child when their turn came: few in
 * practice). Memory per reserved block: 8 bytes a queue ring, 32 a late
 * heap slot (allocated, rarely touched), about 30 for G at the default
 * ghost=0.9.
 *
 * Non-goals: approximate ghosts (fingerprints, bloom filters): every key is
 * kept whole, so decisions are exactly those of the rule above. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "evict.h"
#include "evict_int.h"
#include "mem.h"
#include "pcache.h"

/* ev.queue bits */
enum { Q_SMALL = 1, Q_MAIN = 2, Q_WHICH = 3, Q_PARKED = 4, Q_OFFERED = 8 };

/* ---- one queue ---- */

typedef struct s3q {
    pcache_block **ring; /* [cap]: the queue's unparked blocks in stamp order */
    uint64_t head, tail; /* ring positions: the oldest is ring[head & mask], tail is next */
    uint64_t mask;       /* cap - 1; cap a power of two (0 slots before reserve) */
    int64_t cap;         /* slots */
    evict__heap late;    /* parked blocks that are offered, by stamp */
    int64_t n;           /* cached blocks in the queue, held ones included (|S| or |M|) */
    int64_t n_offered;   /* of which offered (evictable) */
} s3q;

/* ---- the ghost: keys recently evicted from S ---- */

typedef struct s3gent {
    uint64_t key; /* a ghost key (possibly stale) */
    uint64_t num; /* its append number; UINT64_MAX marks an empty slot */
} s3gent;

typedef struct s3ghost {
    uint64_t *keys;      /* [ring]: appended keys, by append number modulo ring */
    uint8_t *taken;      /* [ring]: 1 once the key was taken (a ghost hit) */
    uint64_t rmask;      /* ring - 1; ring a power of two >= 2 x bound (0: none) */
    uint64_t head, tail; /* append numbers: [tail, head) are not dropped */
    int64_t n;           /* live keys: in [tail, head) and not taken */
    s3gent *tab;         /* [tmask + 1]: key -> append number, stale entries included */
    uint64_t tmask;      /* table slots - 1; slots a power of two >= 3 x bound */
    int shift;           /* 64 - log2(table slots) */
    int64_t t_n;         /* entries in the table */
    int64_t t_room;      /* entries allowed before a rebuild (half the slots) */
    int64_t bound;       /* live keys kept (the policy's bound, capped by reserve) */
    int64_t want;        /* the policy's bound */
} s3ghost;

typedef struct s3fifo {
    s3q q[3];             /* q[Q_SMALL], q[Q_MAIN]; q[0] unused */
    int64_t small_target; /* S's share, >= 1 block */
    uint32_t move;        /* hits in S that promote to M, 1..3 */
    int64_t stamp;        /* queue positions handed out */
    s3ghost ghost;        /* keys evicted from S */
} s3fifo;

static const char *const s3fifo_keys[] = {"small", "ghost", "move", NULL};

/* Smallest power of two >= n (n >= 1), or 0 when too large. */
static uint64_t pow2_at_least(uint64_t n) {
    uint64_t p = 1;
    while (p < n) {
        if (p > (UINT64_MAX >> 2))
            return 0;
        p *= 2;
    }
    return p;
}

/* ---- queue ---- */

/* Makes room for n blocks on the ring (order kept) and in the late heap. */
static int q_reserve(s3q *q, int64_t n) {
    uint64_t cap, i, used = q->tail - q->head;
    pcache_block **ring;
    if (evict__heap_reserve(&q->late, n) != SIM_OK)
        return SIM_ENOMEM;
    if (n <= q->cap)
        return SIM_OK;
    cap = pow2_at_least((uint64_t)n);
    if (cap == 0 || cap > SIZE_MAX / sizeof *ring)
        return SIM_ENOMEM;
    ring = sim_malloc((size_t)cap * sizeof *ring);
    if (ring == NULL)
        return SIM_ENOMEM;
    for (i = 0; i < used; i++)
        ring[i] = q->ring[(q->head + i) & q->mask];
    sim_free(q->ring);
    q->ring = ring;
    q->cap = (int64_t)cap;
    q->mask = cap - 1;
    q->head = 0;
    q->tail = used;
    return SIM_OK;
}

static void q_fini(s3q *q) {
    sim_free(q->ring);
    evict__heap_fini(&q->late);
    memset(q, 0, sizeof *q);
}

/* Appends b (which the caller just stamped) at the ring's tail. */
static void q_append(s3q *q, pcache_block *b) {
    SIM_ASSERT((int64_t)(q->tail - q->head) < q->cap);
    q->ring[q->tail++ & q->mask] = b;
    q->n++;
    if (b->ev.queue & Q_OFFERED)
        q->n_offered++;
}

/* The queue's oldest offered block (there is one), parking the held and
 * inner blocks it passes on the ring. */
static pcache_block *q_front(s3q *q) {
    SIM_ASSERT(q->n_offered > 0);
    if (q->late.n > 0)
        return q->late.a[0].b; /* parked blocks are older than the ring's */
    for (;;) {
        pcache_block *b;
        SIM_ASSERT(q->head != q->tail);
        b = q->ring[q->head & q->mask];
#if defined(__GNUC__)
        if (q->tail - q->head > 2) /* a hint: a block looked at soon */
            __builtin_prefetch(q->ring[(q->head + 2) & q->mask]);
#endif
        if (b->ev.queue & Q_OFFERED)
            return b;
        b->ev.queue |= Q_PARKED;
        q->head++;
    }
}

/* Removes b, just returned by q_front, from the queue. */
static void q_take(s3q *q, pcache_block *b) {
    if (b->ev.queue & Q_PARKED) {
        evict__heap_remove(&q->late, b);
        b->ev.queue &= (uint8_t)~Q_PARKED;
    } else {
        SIM_ASSERT(q->ring[q->head & q->mask] == b);
        q->head++;
    }
    q->n--;
    q->n_offered--;
}

/* ---- ghost ---- */

static void ghost_init(s3ghost *g, int64_t bound) {
    memset(g, 0, sizeof *g);
    g->want = bound > 0 ? bound : 0;
}

static void ghost_fini(s3ghost *g) {
    sim_free(g->keys);
    sim_free(g->taken);
    sim_free(g->tab);
    ghost_init(g, g->want);
}

static inline uint64_t ghost_home(const s3ghost *g, uint64_t key) {
    return (key * 0x9e3779b97f4a7c15ULL) >> g->shift; /* Fibonacci hashing */
}

/* Sets key's entry to num (adding it when absent); there is room. */
static void ghost_tab_put(s3ghost *g, uint64_t key, uint64_t num) {
    uint64_t i;
    for (i = ghost_home(g, key);; i = (i + 1) & g->tmask) {
        if (g->tab[i].num == UINT64_MAX) {
            g->tab[i].key = key;
            g->tab[i].num = num;
            g->t_n++;
            return;
        }
        if (g->tab[i].key == key) {
            g->tab[i].num = num;
            return;
        }
    }
}

/* Moves the live keys of g's ring into keys/taken (ring slots rmask + 1),
 * oldest first, and fills an emptied table tab of tmask + 1 slots with
 * them. In place (keys == g->keys) they are renumbered from the tail, so
 * the write slot trails the read slot; into new arrays, from 0. Stale and
 * taken entries are gone after it. */
static void ghost_rebuild(s3ghost *g, uint64_t *keys, uint8_t *taken, uint64_t rmask, s3gent *tab,
                          uint64_t tmask) {
    uint64_t s, w0 = keys == g->keys ? g->tail : 0, w = w0;
    int shift = 64;
    for (s = tmask + 1; s > 1; s >>= 1)
        shift--;
    for (s = g->tail; s != g->head; s++) {
        uint64_t at = s & g->rmask;
        if (g->taken[at])
            continue;
        keys[w & rmask] = g->keys[at];
        taken[w & rmask] = 0;
        w++;
    }
    memset(tab, 0xff, (size_t)(tmask + 1) * sizeof *tab);
    g->keys = keys;
    g->taken = taken;
    g->rmask = rmask;
    g->tab = tab;
    g->tmask = tmask;
    g->shift = shift;
    g->t_n = 0;
    g->t_room = (int64_t)((tmask + 1) / 2);
    g->tail = w0;
    g->head = w;
    for (s = w0; s != w; s++)
        ghost_tab_put(g, keys[s & rmask], s);
}

/* Room for min(n, want) live keys: a ring of at least twice that many
 * slots and a table of at least three times. State unchanged on failure. */
static int ghost_reserve(s3ghost *g, int64_t n) {
    int64_t bound = n < g->want ? n : g->want;
    uint64_t ring, slots;
    uint64_t *keys;
    uint8_t *taken;
    s3gent *tab;
    if (bound <= g->bound)
        return SIM_OK;
    ring = pow2_at_least(2 * (uint64_t)bound);
    slots = pow2_at_least(3 * (uint64_t)bound);
    if (ring == 0 || slots == 0 || ring > SIZE_MAX / sizeof *keys || slots > SIZE_MAX / sizeof *tab)
        return SIM_ENOMEM;
    keys = sim_malloc((size_t)ring * sizeof *keys);
    taken = sim_malloc((size_t)ring);
    tab = sim_malloc((size_t)slots * sizeof *tab);
    if (keys == NULL || taken == NULL || tab == NULL) {
        sim_free(keys);
        sim_free(taken);
        sim_free(tab);
        return SIM_ENOMEM;
    }
    if (g->keys == NULL) { /* nothing to carry over */
        g->keys = keys;
        g->taken = taken;
        g->rmask = ring - 1;
    }
    {
        uint64_t *ok = g->keys;
        uint8_t *ot = g->taken;
        s3gent *otab = g->tab;
        ghost_rebuild(g, keys, taken, ring - 1, tab, slots - 1);
        if (ok != keys) {
            sim_free(ok);
            sim_free(ot);
        }
        sim_free(otab);
    }
    g->bound = bound;
    return SIM_OK;
}

/* Append number of a live key, or UINT64_MAX. */
static uint64_t ghost_find(const s3ghost *g, uint64_t key) {
    uint64_t i;
    if (g->tab == NULL)
        return UINT64_MAX;
    for (i = ghost_home(g, key);; i = (i + 1) & g->tmask) {
        const s3gent *e = &g->tab[i];
        if (e->num == UINT64_MAX)
            return UINT64_MAX;
        if (e->key == key)
            return e->num >= g->tail && !g->taken[e->num & g->rmask] ? e->num : UINT64_MAX;
    }
}

/* Starts loading key's home slot (a hint; no effect on results). */
static inline void ghost_prefetch(const s3ghost *g, uint64_t key) {
#if defined(__GNUC__)
    if (g->tab != NULL)
        __builtin_prefetch(&g->tab[ghost_home(g, key)]);
#else
    (void)g;
    (void)key;
#endif
}

/* Removes key if present (a ghost hit): 1, else 0. Its table entry stays,
 * dead, until the next rebuild. */
static int ghost_take(s3ghost *g, uint64_t key) {
    uint64_t s = ghost_find(g, key);
    if (s == UINT64_MAX)
        return 0;
    g->taken[s & g->rmask] = 1;
    g->n--;
    return 1;
}

/* Appends key (not live), dropping the oldest live key when bound are
 * live. No-op when nothing is reserved. */
static void ghost_push(s3ghost *g, uint64_t key) {
    if (g->bound == 0)
        return;
    if (g->n >= g->bound) { /* drop the oldest: only the tail moves */
        while (g->taken[g->tail & g->rmask])
            g->tail++;
        g->tail++;
        g->n--;
    }
    if (g->head - g->tail > g->rmask || g->t_n >= g->t_room)
        ghost_rebuild(g, g->keys, g->taken, g->rmask, g->tab, g->tmask);
    g->keys[g->head & g->rmask] = key;
    g->taken[g->head & g->rmask] = 0;
    ghost_tab_put(g, key, g->head);
    g->head++;
    g->n++;
}

/* ---- the policy ---- */

static int s3fifo_create(const evict_params *p, void **st, sim_err *err) {
    s3fifo *s;
    double small, ghost, move, cap = (double)p->capacity_blocks;
    int rc;
    *st = NULL;
    if ((rc = evict_param_number(p, "small", 0.1, 0.001, 0.999, &small, err)) != SIM_OK ||
        (rc = evict_param_number(p, "ghost", 0.9, 0, 10, &ghost, err)) != SIM_OK ||
        (rc = evict_param_number(p, "move", 2, 1, 3, &move, err)) != SIM_OK)
        return rc;
    if (move != floor(move)) {
        sim_err_set(err, "--policy", 0, 0, "%s:move: expected an integer in [1, 3], got '%s'",
                    p->name, evict_param_get(p, "move"));
        return SIM_EINVAL;
    }
    s = SIM_NEW(s3fifo);
    if (s == NULL)
        return SIM_ENOMEM;
    if (p->capacity_blocks == EVICT_UNLIMITED) {
        s->small_target = INT64_MAX;
        ghost_init(&s->ghost, INT64_MAX);
    } else {
        s->small_target = (int64_t)(small * cap) > 1 ? (int64_t)(small * cap) : 1;
        ghost_init(&s->ghost, (int64_t)(ghost * cap));
    }
    s->move = (uint32_t)move;
    *st = s;
    return SIM_OK;
}

static void s3fifo_destroy(void *st) {
    s3fifo *s = st;
    if (s == NULL)
        return;
    q_fini(&s->q[Q_SMALL]);
    q_fini(&s->q[Q_MAIN]);
    ghost_fini(&s->ghost);
    sim_free(s);
}

static int s3fifo_reserve(void *st, int64_t n) {
    s3fifo *s = st;
    if (q_reserve(&s->q[Q_SMALL], n) != SIM_OK || q_reserve(&s->q[Q_MAIN], n) != SIM_OK ||
        ghost_reserve(&s->ghost, n) != SIM_OK)
        return SIM_ENOMEM;
    return SIM_OK;
}

static void s3fifo_on_insert(void *st, pcache_block *b, sim_time now) {
    s3fifo *s = st;
    (void)now;
    b->ev.queue = ghost_take(&s->ghost, b->key) ? Q_MAIN : Q_SMALL;
    b->ev.k1 = ++s->stamp;
    b->ev.k2 = 0;
    b->ev.count = 0;
    q_append(&s->q[b->ev.queue], b);
}

static void s3fifo_on_access(void *st, pcache_block *b, sim_time now) {
    (void)st;
    (void)now;
    if (b->ev.count < 3)
        b->ev.count++;
}

static void s3fifo_on_evictable(void *st, pcache_block *b, sim_time now) {
    s3fifo *s = st;
    s3q *q = &s->q[b->ev.queue & Q_WHICH];
    (void)now;
    b->ev.queue |= Q_OFFERED;
    q->n_offered++;
    if (b->ev.queue & Q_PARKED)
        evict__heap_push(&q->late, b);
}

static void s3fifo_on_pinned(void *st, pcache_block *b) {
    s3fifo *s = st;
    s3q *q = &s->q[b->ev.queue & Q_WHICH];
    b->ev.queue &= (uint8_t)~Q_OFFERED;
    q->n_offered--;
    if (b->ev.queue & Q_PARKED)
        evict__heap_remove(&q->late, b);
}

static pcache_block *s3fifo_pick_victim(void *st, uint64_t key_in, sim_time now) {
    s3fifo *s = st;
    s3q *S = &s->q[Q_SMALL], *M = &s->q[Q_MAIN];
    pcache_block *b;
    (void)now;
    if (key_in != EVICT_NO_KEY)
        ghost_prefetch(&s->ghost, key_in); /* on_insert looks it up next */
    for (;;) {
        if (S->n_offered > 0 && (S->n >= s->small_target || M->n_offered == 0)) {
            b = q_front(S);
            q_take(S, b);
            if (b->ev.count >= s->move) { /* promote to M */
                b->ev.queue = Q_MAIN | Q_OFFERED;
                b->ev.count = 0;
                b->ev.k1 = ++s->stamp;
                q_append(M, b);
                continue;
            }
            b->ev.queue &= (uint8_t)~Q_OFFERED;
            ghost_push(&s->ghost, b->key);
            return b;
        }
        if (M->n_offered == 0)
            return NULL;
        b = q_front(M);
        q_take(M, b);
        if (b->ev.count > 0) { /* reinsert at the new end with one hit less */
            b->ev.count--;
            b->ev.k1 = ++s->stamp;
            q_append(M, b);
            continue;
        }
        b->ev.queue &= (uint8_t)~Q_OFFERED;
        return b;
    }
}

/* Checks one queue: ring in stamp order with no parked block, late sound
 * and older than the ring, counts. Returns the offered blocks, or -1. */
static int64_t q_check(const s3q *q, int which) {
    uint64_t i;
    int64_t offered = q->late.n, prev = INT64_MIN;
    if (evict__heap_check(&q->late) != 0)
        return -1;
    for (i = 0; i < (uint64_t)q->late.n; i++) {
        const pcache_block *b = q->late.a[i].b;
        if (b->ev.queue != (which | Q_PARKED | Q_OFFERED) || b->ev.count > 3)
            return -1;
        if (b->ev.k1 > prev)
            prev = b->ev.k1; /* the newest late block */
    }
    for (i = q->head; i != q->tail; i++) {
        const pcache_block *b = q->ring[i & q->mask];
        if ((b->ev.queue & (Q_WHICH | Q_PARKED)) != which || b->ev.count > 3 || b->ev.k1 <= prev)
            return -1;
        prev = b->ev.k1;
        offered += (b->ev.queue & Q_OFFERED) != 0;
    }
    if (offered != q->n_offered || q->n_offered > q->n || (int64_t)(q->tail - q->head) > q->n)
        return -1;
    return offered;
}

static int s3fifo_check(const void *st, int64_t n_evictable) {
    const s3fifo *s = st;
    const s3ghost *g = &s->ghost;
    int64_t os = q_check(&s->q[Q_SMALL], Q_SMALL), om = q_check(&s->q[Q_MAIN], Q_MAIN), live = 0;
    uint64_t i;
    if (os < 0 || om < 0)
        return -4;
    if (os + om != n_evictable)
        return -1;
    if (g->bound > 0) {
        for (i = g->tail; i != g->head; i++)
            if (!g->taken[i & g->rmask]) {
                live++;
                if (ghost_find(g, g->keys[i & g->rmask]) != i)
                    return -6;
            }
        if (live != g->n || g->n > g->bound || g->head - g->tail > g->rmask + 1)
            return -5;
    }
    return 0;
}

const struct evict_ops evict_s3fifo_ops = {
    .name = "s3fifo",
    .help = "small/main/ghost FIFOs (SOSP'23); small=F (0.1), ghost=F (0.9), move=N (2)",
    .param_keys = s3fifo_keys,
    .create = s3fifo_create,
    .destroy = s3fifo_destroy,
    .reserve = s3fifo_reserve,
    .on_insert = s3fifo_on_insert,
    .on_access = s3fifo_on_access,
    .on_evictable = s3fifo_on_evictable,
    .on_pinned = s3fifo_on_pinned,
    .pick_victim = s3fifo_pick_victim,
    .pick_expired = NULL,
    .check = s3fifo_check,
};
