/* evict_arc.c: Adaptive Replacement Cache (Megiddo and Modha, "ARC: a
 * self-tuning, low overhead replacement cache", FAST 2003).
 *
 * Rule: T1 holds blocks seen once since they entered, T2 blocks hit at
 * least once (a hit moves a block to T2's most recent end); ghost lists B1
 * and B2 remember keys recently evicted from T1 and T2. A target p for
 * |T1| adapts: a miss whose key is in B1 grows p by max(1, |B2|/|B1|), one
 * in B2 shrinks it by max(1, |B1|/|B2|), and such a block enters T2. A new
 * key enters T1; the directory is trimmed as in the paper's case IV (when
 * |T1|+|B1| reaches c, B1's oldest key goes, or T1's least recent block
 * itself when T1 fills the cache; when the whole directory reaches 2c, B2's
 * oldest key goes). REPLACE evicts T1's least recent block into B1 when
 * |T1| > p (or = p and the key came from B2), else T2's least recent into
 * B2. The paper's code is followed step by step, with p a real number.
 * Leaf constraint: "least recent of T1 (T2)" means the least recent
 * evictable block of that list; when a list has none the other one gives
 * the victim. |T1| and |T2| count every cached block of the list, held or
 * not. Each list's order is by the tick of the block's last access (its
 * insertion for T1), kept in a heap of the list's evictable blocks.
 * The miss bookkeeping needs the key before room is made: pick_victim
 * receives it, and on_insert does it when no eviction was needed. An
 * eviction for storage alone (EVICT_NO_KEY) is a plain REPLACE.
 * Parameters: none. Cost: O(log n) per offer, withdrawal and eviction;
 * O(1) amortized for the ghosts. */
#include "config.h"

#include "evict.h"
#include "evict_int.h"
#include "mem.h"
#include "pcache.h"

enum { Q_T1 = 1, Q_T2 = 2 };

typedef struct arc {
    evict__heap t1, t2; /* offered blocks of T1, T2 by last-access tick */
    int64_t n_t1, n_t2; /* cached blocks of T1, T2, held ones included */
    evict__ghost b1, b2;
    double p; /* target size of T1, 0..c */
    double c; /* capacity in blocks */
    /* the miss being handled (between pick_victim and on_insert) */
    uint64_t miss_key;
    int miss_done;    /* miss_key's bookkeeping is done */
    int miss_to_t2;   /* it was a ghost hit: the block enters T2 */
    int miss_in_b2;   /* it was in B2 (REPLACE's tie rule) */
    int miss_drop_t1; /* case IV.A with |T1| = c: evict T1's least recent, no ghost */
} arc;

static int arc_create(const evict_params *p, void **st, sim_err *err) {
    arc *s;
    int64_t bound = p->capacity_blocks;
    (void)err;
    *st = NULL;
    s = SIM_NEW(arc);
    if (s == NULL)
        return SIM_ENOMEM;
    s->c = (double)p->capacity_blocks;
    evict__ghost_init(&s->b1, bound);
    evict__ghost_init(&s->b2, bound);
    *st = s;
    return SIM_OK;
}

static void arc_destroy(void *st) {
    arc *s = st;
    if (s == NULL)
        return;
    evict__heap_fini(&s->t1);
    evict__heap_fini(&s->t2);
    evict__ghost_fini(&s->b1);
    evict__ghost_fini(&s->b2);
    sim_free(s);
}

static int arc_reserve(void *st, int64_t n) {
    arc *s = st;
    if (evict__heap_reserve(&s->t1, n) != SIM_OK || evict__heap_reserve(&s->t2, n) != SIM_OK ||
        evict__ghost_reserve(&s->b1, n) != SIM_OK || evict__ghost_reserve(&s->b2, n) != SIM_OK)
        return SIM_ENOMEM;
    return SIM_OK;
}

/* The paper's cases II, III and IV for a key about to be inserted. */
static void arc_miss(arc *s, uint64_t x) {
    double nb1 = (double)evict__ghost_size(&s->b1), nb2 = (double)evict__ghost_size(&s->b2);
    double l1, l2;
    if (s->miss_done && s->miss_key == x)
        return;
    s->miss_key = x;
    s->miss_done = 1;
    s->miss_to_t2 = s->miss_in_b2 = s->miss_drop_t1 = 0;
    if (evict__ghost_take(&s->b1, x, NULL)) { /* case II */
        double d = nb1 >= nb2 ? 1 : nb2 / nb1;
        s->p = s->p + d < s->c ? s->p + d : s->c;
        s->miss_to_t2 = 1;
        return;
    }
    if (evict__ghost_take(&s->b2, x, NULL)) { /* case III */
        double d = nb2 >= nb1 ? 1 : nb1 / nb2;
        s->p = s->p - d > 0 ? s->p - d : 0;
        s->miss_to_t2 = s->miss_in_b2 = 1;
        return;
    }
    l1 = (double)s->n_t1 + nb1; /* case IV */
    l2 = (double)s->n_t2 + nb2;
    if (l1 >= s->c) {
        if ((double)s->n_t1 < s->c)
            evict__ghost_drop_oldest(&s->b1);
        else
            s->miss_drop_t1 = 1;
    } else if (l1 + l2 >= 2 * s->c) {
        evict__ghost_drop_oldest(&s->b2);
    }
}

static void arc_on_insert(void *st, pcache_block *b, sim_time now) {
    arc *s = st;
    (void)now;
    arc_miss(s, b->key);
    if (s->miss_to_t2) {
        b->ev.queue = Q_T2;
        s->n_t2++;
    } else {
        b->ev.queue = Q_T1;
        s->n_t1++;
    }
    s->miss_done = 0;
}

static void arc_on_access(void *st, pcache_block *b, sim_time now) {
    arc *s = st;
    (void)now;
    if (b->ev.queue == Q_T1) { /* case I: to T2's most recent end */
        b->ev.queue = Q_T2;
        s->n_t1--;
        s->n_t2++;
    }
}

static void arc_on_evictable(void *st, pcache_block *b, sim_time now) {
    arc *s = st;
    (void)now;
    b->ev.k1 = (int64_t)b->seq_access;
    evict__heap_push(b->ev.queue == Q_T1 ? &s->t1 : &s->t2, b);
}

static void arc_on_pinned(void *st, pcache_block *b) {
    arc *s = st;
    evict__heap_remove(b->ev.queue == Q_T1 ? &s->t1 : &s->t2, b);
}

static pcache_block *arc_pick_victim(void *st, uint64_t key_in, sim_time now) {
    arc *s = st;
    pcache_block *b;
    double t1 = (double)s->n_t1;
    (void)now;
    if (key_in == EVICT_NO_KEY) /* storage wanted back: a plain REPLACE */
        s->miss_done = s->miss_to_t2 = s->miss_in_b2 = s->miss_drop_t1 = 0;
    else
        arc_miss(s, key_in);
    if (s->miss_drop_t1 && s->t1.n > 0) {
        b = evict__heap_pop(&s->t1);
        s->n_t1--;
        return b;
    }
    /* REPLACE */
    if (s->t1.n > 0 && (s->t2.n == 0 || t1 > s->p || (s->miss_in_b2 && t1 == s->p))) {
        b = evict__heap_pop(&s->t1);
        s->n_t1--;
        evict__ghost_push(&s->b1, b->key, 0);
        return b;
    }
    b = evict__heap_pop(&s->t2);
    if (b != NULL) {
        s->n_t2--;
        evict__ghost_push(&s->b2, b->key, 0);
    }
    return b;
}

static int arc_check(const void *st, int64_t n_evictable) {
    const arc *s = st;
    int64_t i;
    if (s->t1.n + s->t2.n != n_evictable)
        return -1;
    if (s->t1.n > s->n_t1 || s->t2.n > s->n_t2)
        return -2;
    if (evict__heap_check(&s->t1) != 0 || evict__heap_check(&s->t2) != 0)
        return -3;
    for (i = 0; i < s->t1.n; i++)
        if (s->t1.a[i].b->ev.queue != Q_T1)
            return -4;
    for (i = 0; i < s->t2.n; i++)
        if (s->t2.a[i].b->ev.queue != Q_T2)
            return -4;
    if (s->p < 0 || s->p > s->c)
        return -5;
    return 0;
}

const struct evict_ops evict_arc_ops = {
    .name = "arc",
    .help = "adaptive recency/frequency lists with ghosts (FAST'03; no parameters)",
    .param_keys = NULL,
    .create = arc_create,
    .destroy = arc_destroy,
    .reserve = arc_reserve,
    .on_insert = arc_on_insert,
    .on_access = arc_on_access,
    .on_evictable = arc_on_evictable,
    .on_pinned = arc_on_pinned,
    .pick_victim = arc_pick_victim,
    .pick_expired = NULL,
    .check = arc_check,
};
