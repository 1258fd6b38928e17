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
 * children are out of the queues' evictable heaps and keep their stamp, so
 * "oldest evictable in S" is the top of S's heap. |S| and |M| count every
 * cached block of the queue, held or not, as the paper's sizes do.
 * Parameters: small=F (0.1), ghost=F (0.9, of capacity), move=N (2: the
 *   paper's "accessed more than once"; 1 is the pre-2023 default).
 * Cost: O(log n) per offer and withdrawal; a victim search moves or
 * reinserts blocks, each move paid for by an earlier hit, so O(log n)
 * amortized. */
#include "config.h"

#include <math.h>

#include "evict.h"
#include "evict_int.h"
#include "mem.h"
#include "pcache.h"

enum { Q_SMALL = 1, Q_MAIN = 2 };

typedef struct s3fifo {
    evict__heap small, main; /* offered blocks of S and M, by queue stamp */
    int64_t n_small, n_main; /* cached blocks in S and M, held ones included */
    int64_t small_target;    /* S's share, >= 1 block */
    uint32_t move;           /* hits in S that promote to M, 1..3 */
    int64_t stamp;           /* queue positions handed out */
    evict__ghost ghost;      /* keys evicted from S */
} s3fifo;

static const char *const s3fifo_keys[] = {"small", "ghost", "move", NULL};

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
        evict__ghost_init(&s->ghost, INT64_MAX);
    } else {
        s->small_target = (int64_t)(small * cap) > 1 ? (int64_t)(small * cap) : 1;
        evict__ghost_init(&s->ghost, (int64_t)(ghost * cap));
    }
    s->move = (uint32_t)move;
    *st = s;
    return SIM_OK;
}

static void s3fifo_destroy(void *st) {
    s3fifo *s = st;
    if (s == NULL)
        return;
    evict__heap_fini(&s->small);
    evict__heap_fini(&s->main);
    evict__ghost_fini(&s->ghost);
    sim_free(s);
}

static int s3fifo_reserve(void *st, int64_t n) {
    s3fifo *s = st;
    if (evict__heap_reserve(&s->small, n) != SIM_OK || evict__heap_reserve(&s->main, n) != SIM_OK ||
        evict__ghost_reserve(&s->ghost, n) != SIM_OK)
        return SIM_ENOMEM;
    return SIM_OK;
}

static void s3fifo_on_insert(void *st, pcache_block *b, sim_time now) {
    s3fifo *s = st;
    (void)now;
    if (evict__ghost_take(&s->ghost, b->key, NULL)) {
        b->ev.queue = Q_MAIN;
        s->n_main++;
    } else {
        b->ev.queue = Q_SMALL;
        s->n_small++;
    }
    b->ev.k1 = ++s->stamp;
    b->ev.count = 0;
}

static void s3fifo_on_access(void *st, pcache_block *b, sim_time now) {
    (void)st;
    (void)now;
    if (b->ev.count < 3)
        b->ev.count++;
}

static void s3fifo_on_evictable(void *st, pcache_block *b, sim_time now) {
    s3fifo *s = st;
    (void)now;
    evict__heap_push(b->ev.queue == Q_SMALL ? &s->small : &s->main, b);
}

static void s3fifo_on_pinned(void *st, pcache_block *b) {
    s3fifo *s = st;
    evict__heap_remove(b->ev.queue == Q_SMALL ? &s->small : &s->main, b);
}

static pcache_block *s3fifo_pick_victim(void *st, uint64_t key_in, sim_time now) {
    s3fifo *s = st;
    pcache_block *b;
    (void)key_in;
    (void)now;
    for (;;) {
        if (s->small.n > 0 && (s->n_small >= s->small_target || s->main.n == 0)) {
            b = evict__heap_pop(&s->small);
            s->n_small--;
            if (b->ev.count >= s->move) { /* promote to M */
                b->ev.queue = Q_MAIN;
                b->ev.count = 0;
                b->ev.k1 = ++s->stamp;
                s->n_main++;
                evict__heap_push(&s->main, b);
                continue;
            }
            evict__ghost_push(&s->ghost, b->key, 0);
            return b;
        }
        b = evict__heap_top(&s->main);
        if (b == NULL)
            return NULL;
        if (b->ev.count > 0) { /* reinsert at the new end with one hit less */
            b->ev.count--;
            b->ev.k1 = ++s->stamp;
            evict__heap_fix(&s->main, b);
            continue;
        }
        evict__heap_remove(&s->main, b);
        s->n_main--;
        return b;
    }
}

static int s3fifo_check(const void *st, int64_t n_evictable) {
    const s3fifo *s = st;
    int64_t i;
    if (s->small.n + s->main.n != n_evictable)
        return -1;
    if (s->small.n > s->n_small || s->main.n > s->n_main)
        return -2;
    if (evict__heap_check(&s->small) != 0 || evict__heap_check(&s->main) != 0)
        return -3;
    for (i = 0; i < s->small.n; i++)
        if (s->small.a[i].b->ev.queue != Q_SMALL)
            return -4;
    for (i = 0; i < s->main.n; i++)
        if (s->main.a[i].b->ev.queue != Q_MAIN || s->main.a[i].b->ev.count > 3)
            return -4;
    if (s->ghost.bound > 0 && evict__ghost_size(&s->ghost) > s->ghost.bound)
        return -5;
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
