/* evict_gdsf.c: Greedy-Dual-Size-Frequency with the cost of recomputing a
 * block's prefill.
 *
 * Rule (Cherkasova, "Improving WWW proxies performance with Greedy-Dual-
 * Size-Frequency caching policy", HP Labs TR 98-69, 1998): each block has a
 * value
 *     H = L + frequency x cost / size
 * fixed when it becomes evictable, and the victim is the evictable block
 * with the smallest H (ties: least recently used). L, the inflation value,
 * starts at 0 and becomes the H of each victim, so blocks that stop being
 * used age out however valuable they were.
 *   - frequency: accesses since insertion (the insertion counts).
 *   - size: 1 (every block takes one slot of the capacity).
 *   - cost: the prefill work to rebuild the block, for t tokens at depth d
 *     with B tokens per full block:
 *         cost = t x (d x B + t / 2)  +  linear x t
 *     The first term is attention (each of the t tokens attends to the d x B
 *     tokens before the block and, causally, half the block's own); the
 *     second is everything linear in tokens (QKV/O projections, MLP), in the
 *     same unit of one query-key pair. linear = 2 P / (4 L D) for a model of
 *     P non-embedding parameters, L layers and model width D: 26600 for
 *     Llama-3-8B (2 x 6.98e9 / (4 x 32 x 4096)). Deep blocks of long contexts
 *     are thus worth more, quadratically, than early ones.
 * Parameter: linear=TOKENS (default 26600; 0 for attention only).
 * Structure: a min-heap on (H as an order-preserving integer, last-access
 * tick). O(log n) per offer, withdrawal and eviction. */
#include "config.h"

#include "evict.h"
#include "evict_int.h"
#include "mem.h"
#include "pcache.h"

typedef struct gdsf {
    evict__heap h; /* offered blocks by (H, last-access tick) */
    double L;      /* inflation: H of the last victim */
    double linear; /* linear cost per token, in query-key pairs */
    double block_tokens;
} gdsf;

static const char *const gdsf_keys[] = {"linear", NULL};

static int gdsf_create(const evict_params *p, void **st, sim_err *err) {
    gdsf *s;
    double linear;
    int rc = evict_param_number(p, "linear", 26600, 0, 1e12, &linear, err);
    *st = NULL;
    if (rc != SIM_OK)
        return rc;
    s = SIM_NEW(gdsf);
    if (s == NULL)
        return SIM_ENOMEM;
    s->linear = linear;
    s->block_tokens = p->block_tokens > 0 ? p->block_tokens : 16;
    *st = s;
    return SIM_OK;
}

static void gdsf_destroy(void *st) {
    gdsf *s = st;
    if (s == NULL)
        return;
    evict__heap_fini(&s->h);
    sim_free(s);
}

static int gdsf_reserve(void *st, int64_t n) {
    return evict__heap_reserve(&((gdsf *)st)->h, n);
}

/* The GDSF value of b now (see the file comment). */
static double gdsf_value(const gdsf *s, const pcache_block *b) {
    double t = b->tokens, d = b->depth;
    double cost = t * (d * s->block_tokens + t / 2) + s->linear * t;
    return s->L + (double)b->n_access * cost;
}

static void gdsf_on_evictable(void *st, pcache_block *b, sim_time now) {
    gdsf *s = st;
    (void)now;
    b->ev.k1 = evict__key_of_double(gdsf_value(s, b));
    b->ev.k2 = (int64_t)b->seq_access;
    evict__heap_push(&s->h, b);
}

static void gdsf_on_pinned(void *st, pcache_block *b) {
    evict__heap_remove(&((gdsf *)st)->h, b);
}

static pcache_block *gdsf_pick_victim(void *st, uint64_t key_in, sim_time now) {
    gdsf *s = st;
    pcache_block *b = evict__heap_pop(&s->h);
    union {
        int64_t i;
        double d;
    } u;
    (void)key_in;
    (void)now;
    if (b != NULL) {
        u.i = b->ev.k1;
        s->L = u.d;
    }
    return b;
}

static int gdsf_check(const void *st, int64_t n_evictable) {
    const gdsf *s = st;
    if (s->h.n != n_evictable)
        return -1;
    return evict__heap_check(&s->h);
}

const struct evict_ops evict_gdsf_ops = {
    .name = "gdsf",
    .help = "smallest L + accesses x recompute cost first; linear=TOKENS (26600)",
    .param_keys = gdsf_keys,
    .create = gdsf_create,
    .destroy = gdsf_destroy,
    .reserve = gdsf_reserve,
    .on_insert = NULL,
    .on_access = NULL,
    .on_evictable = gdsf_on_evictable,
    .on_pinned = gdsf_on_pinned,
    .pick_victim = gdsf_pick_victim,
    .pick_expired = NULL,
    .check = gdsf_check,
};
