/* pcache.c: the KV prefix cache (see pcache.h).
 *
 * Blocks live in a pool with stable addresses (policies keep pointers to
 * them) and are found through a hash map from key to block. The cache keeps
 * one invariant for the policy's sake: a block is offered (evictable = 1,
 * on_evictable called once) exactly while it has no holder and no cached
 * child, and is withdrawn (on_pinned) the moment either changes. Every
 * transition goes through offer() and withdraw() below, so the count of
 * offered blocks and the flag never disagree with the policy.
 *
 * Ticks order every access (hits, insertions, failed insertions and skips)
 * with a single counter; blocks record the tick of their insertion and of
 * their last access, which gives policies a unique, time-independent order
 * and gives Belady's oracle its access ordinals. */
#include "config.h"
#include "pcache.h"

#include <string.h>

#include "evict_int.h"
#include "mem.h"

/* Blocks allocated at creation when the capacity allows (then doubling). */
#define PCACHE_FIRST_RESERVE 1024

struct pcache {
    const struct evict_ops *ops; /* the policy */
    void *st;                    /* its state; owned */
    evict_params params;         /* what it was created with */
    int64_t cap;                 /* capacity in blocks, >= 1 or EVICT_UNLIMITED */
    int64_t n;                   /* blocks cached */
    int64_t n_evictable;         /* blocks offered to the policy */
    int64_t n_held;              /* blocks with at least one holder */
    int64_t evictions;           /* blocks evicted (expired ones included) */
    int64_t reserved;            /* blocks with storage everywhere (pool, map, policy) */
    uint64_t tick;               /* accesses so far */
    evict__map map;              /* key -> (uintptr_t) block */
    evict__pool pool;            /* block storage */
    pcache_evict_fn obs;         /* eviction observer, or NULL */
    void *obs_ctx;               /* its context; borrowed */
};

/* ---- offered or not ---- */

static void offer(pcache *c, pcache_block *b, sim_time now) {
    SIM_DASSERT(!b->evictable && b->refs == 0 && b->n_children == 0);
    b->evictable = 1;
    c->n_evictable++;
    c->ops->on_evictable(c->st, b, now);
}

static void withdraw(pcache *c, pcache_block *b) {
    SIM_DASSERT(b->evictable);
    b->evictable = 0;
    c->n_evictable--;
    c->ops->on_pinned(c->st, b);
}

/* Removes v (returned by the policy, so already out of its structures):
 * the parent loses a child and is offered when that was its last one. */
static void evict_block(pcache *c, pcache_block *v, sim_time now) {
    pcache_block *parent = v->parent;
    SIM_ASSERT(v->evictable && v->refs == 0 && v->n_children == 0);
    v->evictable = 0;
    c->n_evictable--;
    if (c->obs != NULL)
        c->obs(c->obs_ctx, v);
    if (ALWAYS(evict__map_del(&c->map, v->key) == (uint64_t)(uintptr_t)v))
        c->n--;
    evict__pool_give(&c->pool, v);
    c->evictions++;
    if (parent != NULL) {
        SIM_ASSERT(parent->n_children > 0);
        if (--parent->n_children == 0 && parent->refs == 0)
            offer(c, parent, now);
    }
}

/* ---- life cycle ---- */

int pcache_create(int64_t capacity_blocks, const struct evict_ops *ops, const evict_params *p,
                  pcache **out, sim_err *err) {
    pcache *c;
    int rc;
    *out = NULL;
    if (capacity_blocks < 1) {
        sim_err_set(err, "pcache", 0, 0, "capacity_blocks: expected an integer >= 1, got '%lld'",
                    (long long)capacity_blocks);
        return SIM_EINVAL;
    }
    SIM_ASSERT(ops != NULL && ops->create && ops->destroy && ops->on_evictable && ops->on_pinned &&
               ops->pick_victim);
    c = SIM_NEW(pcache);
    if (c == NULL)
        return SIM_ENOMEM;
    c->ops = ops;
    c->params = *p;
    c->params.capacity_blocks = capacity_blocks;
    c->cap = capacity_blocks;
    evict__pool_init(&c->pool, sizeof(pcache_block));
    rc = ops->create(&c->params, &c->st, err);
    if (rc != SIM_OK) {
        c->st = NULL;
        pcache_destroy(c);
        return rc;
    }
    /* nothing reserved yet: the first insert reserves PCACHE_FIRST_RESERVE
     * blocks, so an idle replica's cache costs no block memory (it cost
     * about 190 KB: 10,000 idle replicas took 1.8 GiB, now 0.3 GiB) */
    *out = c;
    return SIM_OK;
}

void pcache_destroy(pcache *c) {
    if (c == NULL)
        return;
    if (c->st != NULL)
        c->ops->destroy(c->st);
    evict__map_fini(&c->map);
    evict__pool_fini(&c->pool);
    sim_free(c);
}

int pcache_reserve(pcache *c, int64_t n_blocks) {
    int64_t n = n_blocks < c->cap ? n_blocks : c->cap;
    if (n <= c->reserved)
        return SIM_OK;
    if (evict__pool_reserve(&c->pool, n) != SIM_OK || evict__map_reserve(&c->map, n) != SIM_OK)
        return SIM_ENOMEM;
    if (c->ops->reserve != NULL && c->ops->reserve(c->st, n) != SIM_OK)
        return SIM_ENOMEM;
    c->reserved = n;
    return SIM_OK;
}

void pcache_set_observer(pcache *c, pcache_evict_fn fn, void *ctx) {
    c->obs = fn;
    c->obs_ctx = ctx;
}

/* ---- operations ---- */

pcache_block *pcache_find(const pcache *c, uint64_t key) {
    uint64_t v = evict__map_get(&c->map, key);
    return v == EVICT_MAP_EMPTY ? NULL : (pcache_block *)(uintptr_t)v;
}

void pcache_ref(pcache *c, pcache_block *b) {
    SIM_ASSERT(b->refs < UINT32_MAX);
    if (b->evictable)
        withdraw(c, b);
    if (b->refs++ == 0)
        c->n_held++;
}

void pcache_unref(pcache *c, pcache_block *b, sim_time now) {
    SIM_ASSERT(b->refs > 0); /* a reference count never goes negative */
    if (--b->refs == 0) {
        c->n_held--;
        if (b->n_children == 0)
            offer(c, b, now);
    }
}

void pcache_unref_resume(pcache *c, pcache_block *b, sim_time now) {
    b->resume = 1;
    pcache_unref(c, b, now);
}

void pcache_access(pcache *c, pcache_block *b, sim_time now) {
    SIM_ASSERT(b->refs > 0 && !b->evictable);
    b->resume = 0;
    b->t_access_ns = now;
    b->seq_access = c->tick++;
    if (b->n_access < UINT32_MAX)
        b->n_access++;
    if (c->ops->on_access != NULL)
        c->ops->on_access(c->st, b, now);
}

int pcache_insert(pcache *c, uint64_t key, pcache_block *parent, int32_t tokens, int64_t session,
                  sim_time now, pcache_block **out) {
    uint64_t tick = c->tick++;
    pcache_block *b;
    *out = NULL;
    SIM_ASSERT(tokens >= 1);
    SIM_ASSERT(parent == NULL || parent->refs > 0); /* the caller holds the chain */
    SIM_DASSERT(pcache_find(c, key) == NULL);
    if (c->n >= c->cap) {
        pcache_block *v = c->ops->pick_victim(c->st, key, now);
        if (v == NULL)
            return 0;
        evict_block(c, v, now);
    }
    if (c->n >= c->reserved) {
        int64_t want =
            c->reserved < PCACHE_FIRST_RESERVE / 2 ? PCACHE_FIRST_RESERVE : 2 * c->reserved;
        if (pcache_reserve(c, want) != SIM_OK)
            return SIM_ENOMEM;
    }
    b = evict__pool_take(&c->pool);
    SIM_ASSERT(b != NULL);
    b->key = key;
    b->parent = parent;
    b->session = session;
    b->t_access_ns = now;
    b->seq_insert = b->seq_access = tick;
    b->depth = parent ? parent->depth + 1 : 0;
    b->tokens = tokens;
    b->refs = 1;
    c->n_held++;
    b->n_access = 1;
    b->ev.pos = -1;
    evict__map_put(&c->map, key, (uint64_t)(uintptr_t)b);
    c->n++;
    if (parent != NULL)
        parent->n_children++; /* held, so it was not offered */
    if (c->ops->on_insert != NULL)
        c->ops->on_insert(c->st, b, now);
    *out = b;
    return 1;
}

int pcache_evict_one(pcache *c, sim_time now) {
    pcache_block *v = c->ops->pick_victim(c->st, EVICT_NO_KEY, now);
    if (v == NULL)
        return 0;
    evict_block(c, v, now);
    return 1;
}

void pcache_skip(pcache *c) {
    c->tick++;
}

int64_t pcache_expire(pcache *c, sim_time now) {
    int64_t n = 0;
    pcache_block *v;
    if (c->ops->pick_expired == NULL)
        return 0;
    while ((v = c->ops->pick_expired(c->st, now)) != NULL) {
        evict_block(c, v, now);
        n++;
    }
    return n;
}

/* ---- queries ---- */

int pcache_has_expiry(const pcache *c) {
    return c->ops->pick_expired != NULL;
}

int64_t pcache_size(const pcache *c) {
    return c->n;
}

int64_t pcache_capacity(const pcache *c) {
    return c->cap;
}

int64_t pcache_n_held(const pcache *c) {
    return c->n_held;
}

int64_t pcache_n_evictable(const pcache *c) {
    return c->n_evictable;
}

int64_t pcache_evictions(const pcache *c) {
    return c->evictions;
}

uint64_t pcache_tick(const pcache *c) {
    return c->tick;
}

const char *pcache_policy_name(const pcache *c) {
    return c->ops->name;
}

int pcache_check(const pcache *c) {
    evict__map kids;
    uint64_t i;
    int64_t n = 0, n_ev = 0, n_held = 0;
    int rc = 0;
    if (c->n > c->cap || c->n > c->reserved)
        return -1;
    if (c->map.n != c->n)
        return -2;
    memset(&kids, 0, sizeof kids);
    if (evict__map_reserve(&kids, c->n + 1) != SIM_OK)
        return -99;
    /* pass 1: each block's own fields and its parent; count children */
    for (i = 0; c->map.mask != 0 && i <= c->map.mask && rc == 0; i++) {
        const pcache_block *b = (const pcache_block *)(uintptr_t)c->map.s[i].val;
        if (c->map.s[i].val == EVICT_MAP_EMPTY)
            continue;
        n++;
        if (b->key != c->map.s[i].key)
            rc = -3;
        else if (b->parent != NULL && pcache_find(c, b->parent->key) != b->parent)
            rc = -4; /* a cached block's parent is cached */
        else if (b->depth != (b->parent ? b->parent->depth + 1 : 0))
            rc = -5;
        else if (b->evictable != (b->refs == 0 && b->n_children == 0))
            rc = -6; /* offered iff no holder and no child */
        else if (b->tokens < 1 || b->n_access < 1 || b->seq_access < b->seq_insert ||
                 b->seq_access >= c->tick)
            rc = -7;
        else if (b->parent != NULL) {
            uint64_t k = (uint64_t)(uintptr_t)b->parent, v = evict__map_get(&kids, k);
            evict__map_put(&kids, k, v == EVICT_MAP_EMPTY ? 1 : v + 1);
        }
        n_ev += b->evictable;
        n_held += b->refs > 0;
    }
    /* pass 2: child counts */
    for (i = 0; rc == 0 && c->map.mask != 0 && i <= c->map.mask; i++) {
        const pcache_block *b = (const pcache_block *)(uintptr_t)c->map.s[i].val;
        uint64_t v;
        if (c->map.s[i].val == EVICT_MAP_EMPTY)
            continue;
        v = evict__map_get(&kids, (uint64_t)(uintptr_t)b);
        if (b->n_children != (v == EVICT_MAP_EMPTY ? 0 : v))
            rc = -8;
    }
    evict__map_fini(&kids);
    if (rc != 0)
        return rc;
    if (n != c->n)
        return -2;
    if (n_ev != c->n_evictable)
        return -9;
    if (n_held != c->n_held)
        return -11;
    if (c->ops->check != NULL && c->ops->check(c->st, c->n_evictable) != 0)
        return -10;
    return 0;
}
