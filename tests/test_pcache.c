/* test_pcache.c: the prefix cache's invariants, its helpers, the policy
 * registry and --policy parsing, and allocation failures.
 *
 * - Random scripts of overlapping requests under every policy, with
 *   pcache_check after every request: capacity never exceeded, reference
 *   counts equal to the script's own count of holders (so never negative),
 *   a held block never evicted and only leaves evicted (the eviction
 *   observer checks each victim against the script's holders), parents and
 *   child counts consistent.
 * - Sabotage: corruptions smuggled past the API (a wrong child count, a
 *   held block flagged evictable, a policy heap out of order) that
 *   pcache_check must catch.
 * - The hash map (deletion included), the ghost queue and the heap against
 *   plain arrays.
 * - --policy parsing: exact messages for unknown names, keys and values.
 * - Fault injection: the k-th allocation fails, for every k, in cache and
 *   policy creation and in a growing cache; nothing leaks and the cache
 *   stays sound. */
#include "config.h"

#include <gsl/gsl_rng.h>

#include "cache_replay.h"
#include "err.h"
#include "evict.h"
#include "evict_int.h"
#include "mem.h"
#include "pcache.h"
#include "rng.h"
#include "t.h"

static const char *const all_policies[] = {"lru",    "lfu", "fifo",    "ttl:idle=5s", "gdsf",
                                           "s3fifo", "arc", "session", "belady"};
#define N_ALL (sizeof all_policies / sizeof all_policies[0])

/* ---- random scripts with a holder model ---- */

#define FLIGHT 4
#define CHAIN  16

typedef struct holders {
    uint64_t key[4096];
    int n[4096];
    int used;
} holders;

static int *holder_slot(holders *h, uint64_t key, int add) {
    int i;
    for (i = 0; i < h->used; i++)
        if (h->key[i] == key)
            return &h->n[i];
    if (!add)
        return NULL;
    T_ASSERT(h->used < 4096);
    h->key[h->used] = key;
    h->n[h->used] = 0;
    return &h->n[h->used++];
}

static void observe(void *ctx, const pcache_block *b) {
    holders *h = ctx;
    int *n = holder_slot(h, b->key, 0);
    T_EQ_I(b->refs, 0);
    T_EQ_I(b->n_children, 0);       /* only leaves */
    T_ASSERT(n == NULL || *n == 0); /* never a block a request holds */
}

/* A request's chain: one of 5 roots, then few distinct ids per depth
 * (heavy sharing). */
static void script_ids(gsl_rng *r, uint32_t *ids, int *n) {
    int k, len = 1 + (int)gsl_rng_uniform_int(r, CHAIN);
    ids[0] = (uint32_t)gsl_rng_uniform_int(r, 5);
    for (k = 1; k < len; k++)
        ids[k] = (uint32_t)(k * 10 + gsl_rng_uniform_int(r, 3));
    *n = len;
}

enum { S_EVICT = 1, S_END = 2, S_START = 3 };

typedef struct sop {
    int type;
    int slot; /* S_END: which in-flight request ends */
    int n;    /* S_START: blocks */
    uint32_t ids[CHAIN];
    sim_time now;
} sop;

static void run_script(const char *pol, int64_t cap, uint64_t seed, int n_ops) {
    const struct evict_ops *ops;
    evict_params p;
    evict_oracle *o = evict_oracle_create();
    sim_err err;
    pcache *c;
    gsl_rng *r = sim_rng_create(seed, 11);
    sop *script = SIM_NEW_ARRAY(sop, (size_t)n_ops);
    static holders h;
    pcache_block *held[FLIGHT][CHAIN];
    int n_held[FLIGHT] = {0}, i, k, s;
    sim_time now = 0;

    /* the script first, so that Belady's oracle sees its exact accesses */
    T_ASSERT(o != NULL && script != NULL);
    for (i = 0; i < n_ops; i++) {
        sop *x = &script[i];
        double u = gsl_rng_uniform(r);
        now += (sim_time)gsl_rng_uniform_int(r, 2000) * 1000000;
        x->now = now;
        if (u < 0.05) {
            x->type = S_EVICT; /* a block wanted back for its storage */
        } else if (u < 0.5) {
            x->type = S_END;
            x->slot = (int)gsl_rng_uniform_int(r, FLIGHT);
        } else {
            x->type = S_START;
            script_ids(r, x->ids, &x->n);
            T_EQ_I(rt_creplay_oracle_add(o, x->ids, x->n, 0), SIM_OK);
        }
    }
    evict_oracle_finish(o);

    T_EQ_I(evict_spec_parse(pol, &ops, &p, &err), SIM_OK);
    p.oracle = o;
    T_EQ_I(pcache_create(cap, ops, &p, &c, &err), SIM_OK);
    memset(&h, 0, sizeof h);
    pcache_set_observer(c, observe, &h);
    for (i = 0; i < n_ops; i++) {
        const sop *x = &script[i];
        if (x->type == S_EVICT) {
            int64_t n0 = pcache_size(c), ev = pcache_n_evictable(c);
            T_EQ_I(pcache_evict_one(c, x->now), ev > 0);
            T_EQ_I(pcache_size(c), n0 - (ev > 0));
        } else if (x->type == S_END) {
            s = x->slot;
            while (n_held[s] > 0) {
                pcache_block *b = held[s][--n_held[s]];
                (*holder_slot(&h, b->key, 0))--;
                pcache_unref(c, b, x->now);
            }
        } else { /* starts in a free slot, or only ticks when none is free */
            uint64_t key = PCACHE_KEY_ROOT;
            int full = 0;
            for (s = 0; s < FLIGHT && n_held[s] > 0; s++)
                ;
            pcache_expire(c, x->now);
            for (k = 0; k < x->n; k++) {
                pcache_block *b;
                key = pcache_key_chain(key, x->ids[k]);
                if (s == FLIGHT || full) {
                    pcache_skip(c);
                    continue;
                }
                b = pcache_find(c, key);
                if (b != NULL) {
                    pcache_ref(c, b);
                    pcache_access(c, b, x->now);
                } else {
                    int rc = pcache_insert(c, key, n_held[s] ? held[s][n_held[s] - 1] : NULL, 16,
                                           -1, x->now, &b);
                    T_ASSERT(rc >= 0);
                    if (rc == 0) {
                        full = 1;
                        continue;
                    }
                }
                held[s][n_held[s]++] = b;
                (*holder_slot(&h, key, 1))++;
            }
        }
        T_LE_I(pcache_size(c), cap);
        T_EQ_I(pcache_check(c), 0);
        for (s = 0; s < FLIGHT; s++) /* reference counts = holders */
            for (k = 0; k < n_held[s]; k++)
                T_EQ_I(held[s][k]->refs, *holder_slot(&h, held[s][k]->key, 0));
    }
    T_EQ_I(pcache_tick(c), o->n); /* the oracle saw every access */
    for (s = 0; s < FLIGHT; s++)
        while (n_held[s] > 0)
            pcache_unref(c, held[s][--n_held[s]], now);
    T_EQ_I(pcache_check(c), 0);
    T_EQ_I(pcache_n_held(c), 0);
    T_EQ_I(pcache_n_evictable(c) <= pcache_size(c), 1);
    sim_rng_destroy(r);
    sim_free(script);
    pcache_destroy(c);
    evict_oracle_destroy(o);
}

static void test_scripts(void) {
    static const int64_t caps[] = {1, 2, 5, 16, 40, 200};
    size_t i, j;
    for (i = 0; i < N_ALL; i++)
        for (j = 0; j < sizeof caps / sizeof caps[0]; j++)
            run_script(all_policies[i], caps[j], 1 + j, 1500);
}

/* ---- sabotage ---- */

static void test_sabotage(void) {
    const struct evict_ops *ops;
    evict_params p;
    sim_err err;
    pcache *c;
    pcache_block *a, *b, *d;
    T_EQ_I(evict_spec_parse("lru", &ops, &p, &err), SIM_OK);
    T_EQ_I(pcache_create(8, ops, &p, &c, &err), SIM_OK);
    /* chain a-b, and a second root d */
    T_EQ_I(pcache_insert(c, 1, NULL, 16, -1, 0, &a), 1);
    T_EQ_I(pcache_insert(c, 2, a, 16, -1, 0, &b), 1);
    T_EQ_I(pcache_insert(c, 3, NULL, 16, -1, 0, &d), 1);
    pcache_unref(c, b, 1);
    pcache_unref(c, a, 1);
    pcache_unref(c, d, 1);
    T_EQ_I(pcache_check(c), 0);
    T_EQ_I(pcache_n_evictable(c), 2); /* b and d; a has a child */

    a->n_children++; /* a child count that lies */
    T_EQ_I(pcache_check(c), -8);
    a->n_children--;
    T_EQ_I(pcache_check(c), 0);

    b->refs = 1; /* a holder the cache was not told about: b is offered yet held */
    T_EQ_I(pcache_check(c), -6);
    b->refs = 0;
    T_EQ_I(pcache_check(c), 0);

    T_EQ_I(pcache_n_held(c), 0);
    a->refs = 1; /* a holder the cache was not told about, on an inner block */
    T_EQ_I(pcache_check(c), -11);
    a->refs = 0;
    T_EQ_I(pcache_check(c), 0);

    a->depth = 5; /* a chain position that does not follow its parent */
    T_EQ_I(pcache_check(c), -5);
    a->depth = 0;
    T_EQ_I(pcache_check(c), 0);

    /* the policy's heap out of order: b (tick 1) is on top of d (tick 2) */
    T_EQ_I(b->ev.pos, 0);
    b->ev.k1 = 100;
    T_EQ_I(pcache_check(c), -10);
    b->ev.k1 = (int64_t)b->seq_access;
    T_EQ_I(pcache_check(c), 0);
    pcache_destroy(c);
}

/* ---- helpers against plain arrays ---- */

static void test_map(void) {
    gsl_rng *r = sim_rng_create(3, 12);
    evict__map m;
    uint64_t keys[300], vals[300];
    int n = 0, i, j;
    memset(&m, 0, sizeof m);
    T_EQ_I(evict__map_reserve(&m, 300), SIM_OK);
    for (i = 0; i < 200000; i++) {
        /* few distinct keys, including ones that hash close together */
        uint64_t k = gsl_rng_uniform_int(r, 400) * (i % 2 ? 1 : 0x100000000ULL);
        int at = -1;
        for (j = 0; j < n; j++)
            if (keys[j] == k)
                at = j;
        if (gsl_rng_uniform(r) < 0.5 && n < 300) {
            uint64_t v = gsl_rng_uniform_int(r, 1000);
            T_EQ_I(evict__map_put(&m, k, v), at < 0);
            if (at < 0) {
                keys[n] = k;
                vals[n++] = v;
            } else {
                vals[at] = v;
            }
        } else {
            uint64_t got = evict__map_del(&m, k);
            if (at < 0) {
                T_ASSERT(got == EVICT_MAP_EMPTY);
            } else {
                T_EQ_I(got, vals[at]);
                keys[at] = keys[--n];
                vals[at] = vals[n];
            }
        }
        T_EQ_I(m.n, n);
        if (i % 1000 == 0)
            for (j = 0; j < n; j++)
                T_EQ_I(evict__map_get(&m, keys[j]), vals[j]);
    }
    evict__map_fini(&m);
    sim_rng_destroy(r);
}

static void test_ghost(void) {
    gsl_rng *r = sim_rng_create(4, 12);
    evict__ghost g;
    uint64_t model[64];
    int n = 0, i, j, bound = 20;
    evict__ghost_init(&g, bound);
    evict__ghost_push(&g, 1, 0); /* nothing reserved: a no-op */
    T_EQ_I(evict__ghost_size(&g), 0);
    T_EQ_I(evict__ghost_reserve(&g, 5), SIM_OK); /* bound 5 for now */
    for (i = 0; i < 50000; i++) {
        uint64_t k = gsl_rng_uniform_int(r, 60), v;
        int at = -1;
        if (i == 20000) { /* the cache grew: the full bound */
            T_EQ_I(evict__ghost_reserve(&g, 1000), SIM_OK);
        }
        for (j = 0; j < n; j++)
            if (model[j] == k)
                at = j;
        if (gsl_rng_uniform(r) < 0.6) {
            if (at >= 0)
                continue;
            evict__ghost_push(&g, k, k * 7);
            if (n == (i < 20000 ? 5 : bound)) {
                memmove(model, model + 1, (size_t)(n - 1) * sizeof model[0]);
                n--;
            }
            model[n++] = k;
        } else if (gsl_rng_uniform(r) < 0.8) {
            T_EQ_I(evict__ghost_take(&g, k, &v), at >= 0);
            if (at >= 0) {
                T_EQ_I(v, k * 7);
                memmove(model + at, model + at + 1, (size_t)(n - at - 1) * sizeof model[0]);
                n--;
            }
        } else {
            T_EQ_I(evict__ghost_drop_oldest(&g), n > 0);
            if (n > 0) {
                memmove(model, model + 1, (size_t)(n - 1) * sizeof model[0]);
                n--;
            }
        }
        T_EQ_I(evict__ghost_size(&g), n);
        for (j = 0; j < n; j++)
            T_ASSERT(evict__ghost_has(&g, model[j]));
    }
    evict__ghost_fini(&g);
    sim_rng_destroy(r);
}

static void test_heap(void) {
    gsl_rng *r = sim_rng_create(5, 12);
    evict__heap h;
    static pcache_block blk[500];
    int in[500] = {0}, i, j;
    memset(&h, 0, sizeof h);
    T_EQ_I(evict__heap_reserve(&h, 500), SIM_OK);
    for (i = 0; i < 500; i++) {
        blk[i].ev.pos = -1;
        blk[i].seq_insert = (uint64_t)i;
    }
    for (i = 0; i < 100000; i++) {
        int b = (int)gsl_rng_uniform_int(r, 500);
        double u = gsl_rng_uniform(r);
        if (!in[b] && u < 0.5) {
            blk[b].ev.k1 = (int64_t)gsl_rng_uniform_int(r, 50); /* many ties */
            blk[b].ev.k2 = (int64_t)gsl_rng_uniform_int(r, 3);
            evict__heap_push(&h, &blk[b]);
            in[b] = 1;
        } else if (in[b] && u < 0.8) {
            evict__heap_remove(&h, &blk[b]);
            in[b] = 0;
        } else if (h.n > 0) {
            int best = -1;
            pcache_block *top;
            for (j = 0; j < 500; j++)
                if (in[j] && (best < 0 || blk[j].ev.k1 < blk[best].ev.k1 ||
                              (blk[j].ev.k1 == blk[best].ev.k1 &&
                               (blk[j].ev.k2 < blk[best].ev.k2 ||
                                (blk[j].ev.k2 == blk[best].ev.k2 && j < best)))))
                    best = j;
            top = evict__heap_pop(&h);
            T_ASSERT(top == &blk[best]);
            in[best] = 0;
        }
        if (i % 100 == 0)
            T_EQ_I(evict__heap_check(&h), 0);
    }
    evict__heap_fini(&h);
    sim_rng_destroy(r);
}

/* ---- the registry and --policy ---- */

static void expect_spec_error(const char *spec, const char *msg) {
    const struct evict_ops *ops;
    evict_params p;
    sim_err err;
    char buf[1200];
    sim_err_clear(&err);
    T_EQ_I(evict_spec_parse(spec, &ops, &p, &err), SIM_EINVAL);
    sim_err_format(&err, buf, sizeof buf);
    T_STREQ(buf, msg);
}

static void expect_create_error(const char *spec, const char *msg) {
    const struct evict_ops *ops;
    evict_params p;
    sim_err err;
    pcache *c = (pcache *)&p;
    char buf[1200];
    sim_err_clear(&err);
    T_EQ_I(evict_spec_parse(spec, &ops, &p, &err), SIM_OK);
    T_EQ_I(pcache_create(10, ops, &p, &c, &err), SIM_EINVAL);
    T_ASSERT(c == NULL);
    sim_err_format(&err, buf, sizeof buf);
    T_STREQ(buf, msg);
}

static sim_time duration_of(const char *spec) {
    const struct evict_ops *ops;
    evict_params p;
    sim_err err;
    sim_time t = -1;
    T_EQ_I(evict_spec_parse(spec, &ops, &p, &err), SIM_OK);
    T_EQ_I(evict_param_duration(&p, "idle", 7, &t, &err), SIM_OK);
    return t;
}

static void test_params(void) {
    const struct evict_ops *ops;
    evict_params p;
    sim_err err;
    char names[256];
    double x;
    size_t i;

    evict_names(names, sizeof names);
    T_STREQ(names, "lru, lfu, fifo, ttl, gdsf, s3fifo, arc, session, belady");
    T_EQ_I(evict_count(), 9);
    for (i = 0; i < evict_count(); i++) {
        const struct evict_ops *o = evict_at(i);
        T_ASSERT(o == evict_find(o->name));
        T_ASSERT(o->help != NULL && o->create && o->destroy && o->on_evictable && o->on_pinned &&
                 o->pick_victim);
    }
    T_ASSERT(evict_at(9) == NULL && evict_find("LRU") == NULL);

    expect_spec_error("nope", "--policy: policy: expected one of lru, lfu, fifo, ttl, gdsf, "
                              "s3fifo, arc, session, belady, got 'nope'");
    expect_spec_error("", "--policy: policy: expected one of lru, lfu, fifo, ttl, gdsf, s3fifo, "
                          "arc, session, belady, got ''");
    expect_spec_error("ttl:foo=1", "--policy: ttl: parameter: expected one of idle, got 'foo'");
    expect_spec_error("ttl:idle", "--policy: ttl: parameter: expected KEY=VALUE with KEY one of "
                                  "idle, got 'idle'");
    expect_spec_error("ttl:", "--policy: ttl: parameter: expected KEY=VALUE with KEY one of "
                              "idle, got ''");
    expect_spec_error("ttl:idle=5,", "--policy: ttl: parameter: expected KEY=VALUE with KEY one "
                                     "of idle, got ''");
    expect_spec_error("lru:", "--policy: lru: parameter: expected none (lru takes no "
                              "parameters), got ''");
    expect_spec_error("lru:x=1", "--policy: lru: parameter: expected none (lru takes no "
                                 "parameters), got 'x'");
    /* run's --policy also takes none (no prefix cache), and lists it:
     * "none:x=1" listed every name but none */
    {
        char buf[512];
        sim_err_clear(&err);
        T_EQ_I(evict_spec_parse_or_none("none", &ops, &p, &err), SIM_OK);
        T_ASSERT(ops == NULL);
        T_EQ_I(evict_spec_parse_or_none("lru", &ops, &p, &err), SIM_OK);
        T_ASSERT(ops == evict_find("lru"));
        T_EQ_I(evict_spec_parse_or_none("none:x=1", &ops, &p, &err), SIM_EINVAL);
        T_ASSERT(ops == NULL);
        sim_err_format(&err, buf, sizeof buf);
        T_STREQ(buf, "--policy: none: parameter: expected none (none takes no parameters), got "
                     "'x'");
        sim_err_clear(&err);
        T_EQ_I(evict_spec_parse_or_none("nonex", &ops, &p, &err), SIM_EINVAL);
        sim_err_format(&err, buf, sizeof buf);
        T_STREQ(buf, "--policy: policy: expected one of none, lru, lfu, fifo, ttl, gdsf, s3fifo, "
                     "arc, session, belady, got 'nonex'");
    }
    expect_spec_error("none",
                      "--policy: policy: expected one of lru, lfu, fifo, ttl, gdsf, s3fifo, "
                      "arc, session, belady, got 'none'");
    expect_spec_error("s3fifo:small=0.1,bogus=2",
                      "--policy: s3fifo: parameter: expected one of small, ghost, move, got "
                      "'bogus'");
    expect_create_error("ttl:idle=abc",
                        "--policy: ttl:idle: expected a duration from 1ns to 9.2e9s (300s, "
                        "300ms, 5m, 1h, or plain seconds), got 'abc'");
    expect_create_error("ttl:idle=0",
                        "--policy: ttl:idle: expected a duration from 1ns to 9.2e9s (300s, "
                        "300ms, 5m, 1h, or plain seconds), got '0'");
    expect_create_error("ttl:idle=5x",
                        "--policy: ttl:idle: expected a duration from 1ns to 9.2e9s (300s, "
                        "300ms, 5m, 1h, or plain seconds), got '5x'");
    /* of the right sign but out of range: the message gave "> 0" alone */
    expect_create_error("ttl:idle=1e-10", "--policy: ttl:idle: expected a duration from 1ns to "
                                          "9.2e9s (300s, 300ms, 5m, 1h, or plain seconds), got "
                                          "'1e-10'");
    expect_create_error("session:horizon=1e10",
                        "--policy: session:horizon: expected a duration from 1ns to 9.2e9s (300s, "
                        "300ms, 5m, 1h, or plain seconds), got '1e10'");
    expect_create_error("s3fifo:small=2",
                        "--policy: s3fifo:small: expected a number in [0.001, 0.999], got '2'");
    expect_create_error("s3fifo:move=1.5",
                        "--policy: s3fifo:move: expected an integer in [1, 3], got '1.5'");
    expect_create_error("gdsf:linear=-1",
                        "--policy: gdsf:linear: expected a number in [0, 1e+12], got '-1'");
    expect_create_error("belady", "--policy: belady: expected the trace ahead (an oracle), got "
                                  "none: only an offline replay (kvfleet cache-replay) can run "
                                  "Belady's policy");
    expect_create_error(
        "session:horizon=-3s",
        "--policy: session:horizon: expected a duration from 1ns to 9.2e9s (300s, 300ms, 5m, "
        "1h, or plain seconds), got '-3s'");

    T_EQ_I(duration_of("ttl:idle=300s"), 300 * SIM_NS_PER_S);
    T_EQ_I(duration_of("ttl:idle=300ms"), 300000000);
    T_EQ_I(duration_of("ttl:idle=300"), 300 * SIM_NS_PER_S);
    T_EQ_I(duration_of("ttl:idle=2.5"), 2500000000LL);
    T_EQ_I(duration_of("ttl:idle=5m"), 300 * SIM_NS_PER_S);
    T_EQ_I(duration_of("ttl:idle=1h"), 3600 * SIM_NS_PER_S);
    T_EQ_I(duration_of("ttl:idle=10us"), 10000);
    T_EQ_I(duration_of("ttl:idle=7ns"), 7);
    T_EQ_I(duration_of("ttl"), 7); /* absent: the default */
    { /* a key given twice is refused (the last used to win silently) */
        const struct evict_ops *o2;
        evict_params p2;
        sim_err e2;
        sim_err_clear(&e2);
        T_EQ_I(evict_spec_parse("ttl:idle=1s,idle=2s", &o2, &p2, &e2), SIM_EINVAL);
        T_ASSERT(strstr(e2.msg, "got 'idle' twice") != NULL);
    }

    T_EQ_I(evict_spec_parse("s3fifo:small=0.25,ghost=0.5", &ops, &p, &err), SIM_OK);
    T_STREQ(ops->name, "s3fifo");
    T_EQ_I(p.n_kv, 2);
    T_EQ_I(evict_param_number(&p, "small", 0.1, 0, 1, &x, &err), SIM_OK);
    T_NEAR(x, 0.25, 0);
    T_EQ_I(evict_param_number(&p, "move", 2, 1, 3, &x, &err), SIM_OK);
    T_NEAR(x, 2, 0);

    { /* capacity 0 is refused */
        pcache *c;
        char buf[512];
        T_EQ_I(evict_spec_parse("lru", &ops, &p, &err), SIM_OK);
        T_EQ_I(pcache_create(0, ops, &p, &c, &err), SIM_EINVAL);
        sim_err_format(&err, buf, sizeof buf);
        T_STREQ(buf, "pcache: capacity_blocks: expected an integer >= 1, got '0'");
    }
}

/* Chained keys: the same id under different prefixes gives different keys. */
static void test_keys(void) {
    uint64_t a = pcache_key_chain(PCACHE_KEY_ROOT, 1), b = pcache_key_chain(PCACHE_KEY_ROOT, 2);
    T_ASSERT(a != b);
    T_ASSERT(pcache_key_chain(a, 7) != pcache_key_chain(b, 7));
    T_ASSERT(pcache_key_chain(a, 7) == pcache_key_chain(a, 7));
    T_ASSERT(pcache_key_chain(pcache_key_chain(a, 7), 7) != pcache_key_chain(a, 7));
}

/* ---- fault injection ---- */

static void test_oom_create(void) {
    evict_oracle *o = evict_oracle_create();
    size_t i;
    T_ASSERT(o != NULL);
    T_EQ_I(evict_oracle_add(o, 1), SIM_OK);
    evict_oracle_finish(o);
    for (i = 0; i < N_ALL; i++) {
        const struct evict_ops *ops;
        evict_params p;
        sim_err err;
        size_t base = sim_mem_current();
        uint64_t k;
        T_EQ_I(evict_spec_parse(all_policies[i], &ops, &p, &err), SIM_OK);
        p.oracle = o;
        for (k = 1;; k++) {
            pcache *c;
            int rc;
            sim_mem_fail_at(k);
            rc = pcache_create(5000, ops, &p, &c, &err);
            sim_mem_fail_at(0);
            if (rc == SIM_OK) {
                T_EQ_I(pcache_check(c), 0);
                pcache_destroy(c);
                break;
            }
            T_EQ_I(rc, SIM_ENOMEM);
            T_EQ_I(sim_mem_current(), base); /* nothing leaked on the failure path */
        }
        T_ASSERT(k > 2);
        T_EQ_I(sim_mem_current(), base);
    }
    { /* the replay core, and the oracle itself */
        size_t base = sim_mem_current();
        uint64_t k;
        for (k = 1;; k++) {
            rt_creplay *r;
            sim_err err;
            int rc;
            sim_mem_fail_at(k);
            rc = rt_creplay_create("s3fifo", 100, 16, NULL, &r, &err);
            sim_mem_fail_at(0);
            if (rc == SIM_OK) {
                rt_creplay_destroy(r);
                break;
            }
            T_EQ_I(rc, SIM_ENOMEM);
            T_EQ_I(sim_mem_current(), base);
        }
        for (k = 1;; k++) {
            evict_oracle *x;
            sim_mem_fail_at(k);
            x = evict_oracle_create();
            sim_mem_fail_at(0);
            if (x != NULL) {
                evict_oracle_destroy(x);
                break;
            }
            T_EQ_I(sim_mem_current(), base);
        }
    }
    evict_oracle_destroy(o);
}

/* A cache that grows (unlimited capacity) meets a failing allocation at
 * every possible point: the insertion reports SIM_ENOMEM, the cache stays
 * sound and usable, and destroying it frees everything. */
static void test_oom_grow(void) {
    size_t i;
    for (i = 0; i < N_ALL; i++) {
        const struct evict_ops *ops;
        evict_params p;
        sim_err err;
        evict_oracle *o = evict_oracle_create();
        size_t base;
        uint64_t k;
        int failed_any = 0;
        T_ASSERT(o != NULL);
        evict_oracle_finish(o);
        base = sim_mem_current();
        T_EQ_I(evict_spec_parse(all_policies[i], &ops, &p, &err), SIM_OK);
        p.oracle = o;
        for (k = 1; k < 40; k++) {
            pcache *c;
            pcache_block *b;
            uint64_t j;
            int rc = SIM_OK;
            T_EQ_I(pcache_create(EVICT_UNLIMITED, ops, &p, &c, &err), SIM_OK);
            sim_mem_fail_at(k);
            for (j = 0; j < 5000 && rc >= 0; j++) {
                rc = pcache_insert(c, pcache_key_chain(PCACHE_KEY_ROOT, j), NULL, 16, -1,
                                   (sim_time)j, &b);
                if (rc == 1)
                    pcache_unref(c, b, (sim_time)j);
            }
            sim_mem_fail_at(0);
            if (rc < 0) {
                T_EQ_I(rc, SIM_ENOMEM);
                failed_any = 1;
            }
            T_EQ_I(pcache_check(c), 0);
            /* still usable after the failure */
            T_EQ_I(pcache_insert(c, 99, NULL, 16, -1, 9999, &b), 1);
            pcache_unref(c, b, 9999);
            T_EQ_I(pcache_check(c), 0);
            pcache_destroy(c);
            T_EQ_I(sim_mem_current(), base);
        }
        T_ASSERT(failed_any);
        evict_oracle_destroy(o);
    }
}

int main(void) {
    size_t base = sim_mem_current();
    test_keys();
    test_map();
    test_ghost();
    test_heap();
    printf("ok 1 - map, ghost and heap match plain arrays\n");
    test_scripts();
    printf("ok 2 - invariants under random scripts, every policy\n");
    test_sabotage();
    printf("ok 3 - the validator catches sabotage\n");
    test_params();
    printf("ok 4 - registry and --policy messages\n");
    test_oom_create();
    test_oom_grow();
    printf("ok 5 - allocation failures at every point\n");
    T_EQ_I(sim_mem_current(), base);
    printf("test_pcache: ok\n");
    return 0;
}
