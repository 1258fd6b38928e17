/* test_belady_sim.c: Belady's policy in the full simulator (time oracle).
 *
 *   1. keys: the first pass (runtime/oracle.c) names exactly the blocks a
 *      finished request leaves in a replica's prefix cache (hash ids and
 *      sessions), checked against the scheduler's cache and two keys by hand.
 *   2. the rule: on random scripts of overlapping requests driven straight
 *      into a prefix cache, every victim has the farthest next use (ties the
 *      deepest, then the oldest insertion) over all evictable blocks, with
 *      the next uses from a naive model of the use matching (a plain scan
 *      of each key's uses with served flags), including requests that never
 *      come and accesses the oracle does not list. Sabotage: a model without
 *      the stale-use rule disagrees.
 *   3. the full simulator (`kvfleet run`'s rt_run_exec) on small random
 *      Mooncake-style traces and synthetic sessions, one replica, a closed
 *      set of requests: Belady's prefix hit rate (tokens) is at least every
 *      other policy's at the same KV size, and two runs give the same
 *      summary.
 *   4. a preempted request's released blocks are kept as due (by hand).
 * Correctness only: no wall time is asserted. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"
#include "evict.h"
#include "mem.h"
#include "oracle.h"
#include "pcache.h"
#include "sched.h"
#include "t.h"

/* ---- a small deterministic RNG (tests only) ---- */

static uint64_t rng_state = 1;

static uint64_t rnd(void) {
    uint64_t x = rng_state += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static int64_t rnd_in(int64_t lo, int64_t hi) { /* [lo, hi] */
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* ---- 1. keys ---- */

static void base_config(sched_config *c) {
    memset(c, 0, sizeof *c);
    c->max_num_seqs = 4;
    c->max_batched_tokens = 256;
    c->block_tokens = 16;
    c->kv_blocks = 1000;
    c->chunked_prefill = 1;
    c->watermark = 0;
    c->max_ctx = 100000;
    c->hash_block_tokens = 64;
    c->copies_per_block = 1;
}

static void noop_reject(void *ctx, const sim_req *r, enum met_reject why, sim_time t) {
    (void)ctx;
    (void)r;
    (void)why;
    (void)t;
    T_FAIL_("unexpected rejection");
}

static void noop_seq(void *ctx, sched_seq *s, sim_time t) {
    (void)ctx;
    (void)s;
    (void)t;
}

/* Serves r alone on a fresh replica: its cache must hold exactly the full
 * blocks of prompt + output - 1 tokens as sched_block_keys names them, and
 * the oracle must list a use (at r's arrival) for exactly the blocks r is
 * bound to access: j < (prompt - 1) / 16, and output blocks j >= prompt / 16
 * not named by a hash id (the first n_hashed_out of them are). Returns the
 * number of uses listed. */
static int64_t serve_and_compare(const sim_req *r, int64_t n_hashed_out) {
    sched_config c;
    sched_cb cb = {NULL, noop_reject, noop_seq, noop_seq};
    sched *s;
    sched_batch b;
    sim_err err;
    evict_oracle *o = evict_oracle_times_create();
    uint64_t *keys = NULL, all[64];
    int64_t cap = 0, n, n_all, j, listed = 0;
    sim_time now = r->arrival_ns;
    sim_req q = *r;
    const sim_time *uses;

    base_config(&c);
    T_EQ_I(evict_spec_parse("lru", &c.policy, &c.policy_params, &err), SIM_OK);
    T_EQ_I(sched_config_check(&c, &err), SIM_OK);
    T_ASSERT(o != NULL);
    n = rt_oracle_add_request(o, &c, r, &keys, &cap);
    T_ASSERT(n > 0);
    T_EQ_I(evict_oracle_times_finish(o), SIM_OK);
    T_EQ_I(sched_create(&c, &cb, &s), SIM_OK);
    T_EQ_I(sched_add(s, r, now), SIM_OK);
    while (sched_step(s, now, &b) > 0) {
        now += 1000000;
        T_EQ_I(sched_step_done(s, &b, now), SIM_OK);
    }
    T_EQ_I(sched_n_running(s), 0);
    q.prompt_tokens = r->prompt_tokens + r->output_tokens - 1;
    n_all = sched_block_keys(&c, &q, all, 64);
    T_EQ_I(pcache_size(sched_cache(s)), n_all);
    for (j = 0; j < n_all; j++) {
        int64_t want = j < (r->prompt_tokens - 1) / 16 || j >= r->prompt_tokens / 16 + n_hashed_out;
        T_ASSERT(pcache_find(sched_cache(s), all[j]) != NULL);
        T_EQ_I(evict_oracle_key_uses(o, all[j], &uses), want);
        if (want)
            T_EQ_I(uses[0], r->arrival_ns);
        listed += want;
    }
    T_EQ_I(listed, n);
    /* the prompt's blocks are what sched_block_keys names for r itself */
    {
        uint64_t pk[64];
        int64_t np = sched_block_keys(&c, r, pk, 64);
        T_EQ_I(np, r->prompt_tokens / 16);
        for (j = 0; j < np; j++)
            T_EQ_I(pk[j], all[j]);
    }
    sched_destroy(s);
    evict_oracle_destroy(o);
    sim_free(keys);
    return n;
}

static void test_keys(void) {
    static const uint32_t h[3] = {7, 11, 13};
    sim_req r;
    sched_config c;
    uint64_t *keys = NULL, k0, k5;
    int64_t cap = 0;
    evict_oracle *o;
    const sim_time *uses;

    /* Mooncake style: 150 prompt tokens, 3 hash ids of 64 tokens, 40 output
     * tokens: 189 tokens of KV at the end, 11 full blocks of 16; uses for
     * blocks 0..8 (the hit candidates, (150 - 1) / 16 = 9), not for 9 and
     * 10 (output blocks in hash block 2, which covers tokens 128..191) */
    memset(&r, 0, sizeof r);
    r.id = 3;
    r.arrival_ns = 5000;
    r.prompt_tokens = 150;
    r.new_tokens = 150;
    r.output_tokens = 40;
    r.session_id = -1;
    r.n_hash_ids = 3;
    r.hash_ids = h;
    T_EQ_I(serve_and_compare(&r, 2), 9);
    /* by hand: block j's content is (hash id << 20) ^ (its offset in the hash block + 1) */
    base_config(&c);
    o = evict_oracle_times_create();
    T_EQ_I(rt_oracle_add_request(o, &c, &r, &keys, &cap), 9);
    k0 = pcache_key_chain(PCACHE_KEY_ROOT, ((uint64_t)7 << 20) ^ 1);
    T_EQ_I(keys[0], k0);
    k5 = k0;
    {
        int j;
        for (j = 1; j <= 5; j++) {
            int tok = 16 * j;
            k5 = pcache_key_chain(k5, ((uint64_t)h[tok / 64] << 20) ^ (uint64_t)(tok % 64 + 1));
        }
    }
    T_EQ_I(keys[5], k5); /* tokens 80..95: hash id 11, offset 16 */
    T_EQ_I(evict_oracle_times_finish(o), SIM_OK);
    T_EQ_I(evict_oracle_key_uses(o, k5, &uses), 1);
    T_EQ_I(uses[0], 5000);
    T_EQ_I(evict_oracle_key_uses(o, 12345, &uses), 0);
    evict_oracle_destroy(o);
    /* a prompt of a whole number of blocks (160 = 10 x 16) and output past
     * the hash ids (3 x 64 = 192 tokens), 223 tokens of KV, 13 full blocks:
     * block 9 is not a hit candidate, blocks 10 and 11 (tokens 160..191)
     * are hash-keyed, block 12 is the request's own */
    r.prompt_tokens = 160;
    r.new_tokens = 160;
    r.output_tokens = 64;
    T_EQ_I(serve_and_compare(&r, 2), 9 + 1);

    /* a session turn: 100 prompt + 50 output tokens, 9 full blocks, all
     * listed: 6 hit candidates and 3 output blocks of the session */
    memset(&r, 0, sizeof r);
    r.id = 4;
    r.arrival_ns = 7000;
    r.prompt_tokens = 100;
    r.new_tokens = 100;
    r.output_tokens = 50;
    r.session_id = 9;
    r.turn = 1;
    T_EQ_I(serve_and_compare(&r, 0), 9);
    o = evict_oracle_times_create();
    T_EQ_I(rt_oracle_add_request(o, &c, &r, &keys, &cap), 9);
    T_EQ_I(keys[0], pcache_key_chain(PCACHE_KEY_ROOT, pcache_key_chain(0x5e55ULL + 9, 0)));
    /* a request that can never be admitted (over the context) leaves no use */
    r.prompt_tokens = 99990;
    r.output_tokens = 20;
    T_EQ_I(rt_oracle_add_request(o, &c, &r, &keys, &cap), 0);
    /* nor one with neither hash ids nor a session */
    r.prompt_tokens = 100;
    r.session_id = -1;
    T_EQ_I(rt_oracle_add_request(o, &c, &r, &keys, &cap), 0);
    /* nor one that fits a 10-block pool but not the pool less its 1-block
     * watermark (10 blocks of KV: the scheduler rejects it, kv_capacity) */
    r.session_id = 9;
    r.output_tokens = 50;
    c.kv_blocks = 10;
    T_ASSERT(rt_oracle_add_request(o, &c, &r, &keys, &cap) > 0); /* admitted: uses */
    c.watermark = 0.1;
    T_EQ_I(rt_oracle_add_request(o, &c, &r, &keys, &cap), 0);
    evict_oracle_destroy(o);
    sim_free(keys);
    printf("ok 1 - oracle keys are the cache's keys\n");
}

/* ---- 2. the rule against a naive model ---- */

#define R_DOCS  6
#define R_DEPTH 8
#define R_REQS  120

/* A planned request: document d, its first len blocks, at time t. */
typedef struct rplan {
    int d, len;
    sim_time t;
    int shows; /* 0: in the oracle but never comes */
    int extra; /* 1: comes but is not in the oracle (an unlisted access) */
} rplan;

static uint64_t doc_key(int d, int j) {
    uint64_t k = PCACHE_KEY_ROOT;
    int i;
    for (i = 0; i <= j; i++)
        k = pcache_key_chain(k, (uint64_t)(d * 100 + i + 1));
    return k;
}

/* the naive model: per key, its uses and a served flag each */
typedef struct nkey {
    uint64_t key;
    int n;
    sim_time t[R_REQS];
    int served[R_REQS];
    sim_time prev; /* last access, -1 before any */
} nkey;

static nkey nk[R_DOCS * R_DEPTH];
static int n_nk;
static int sabotage;

static nkey *nk_find(uint64_t key) {
    int i;
    for (i = 0; i < n_nk; i++)
        if (nk[i].key == key)
            return &nk[i];
    return NULL;
}

static void nk_touch(uint64_t key, sim_time now) {
    nkey *k = nk_find(key);
    int i;
    if (k == NULL)
        return;
    for (i = 0; i < k->n; i++) /* the first unserved use, if due */
        if (!k->served[i]) {
            if (k->t[i] <= now)
                k->served[i] = 1;
            break;
        }
    for (i = 0; i < k->n && !sabotage; i++) /* drop what was due at the previous access */
        if (!k->served[i] && k->t[i] < k->prev)
            k->served[i] = 1;
        else if (!k->served[i])
            break;
    k->prev = now;
}

static int64_t nk_next(uint64_t key) {
    nkey *k = nk_find(key);
    int i;
    if (k == NULL)
        return INT64_MAX;
    for (i = 0; i < k->n; i++)
        if (!k->served[i])
            return k->t[i];
    return INT64_MAX;
}

/* cached blocks as the script saw them (insertions minus evictions) */
static pcache_block *mirror[R_DOCS * R_DEPTH];
static int n_mirror;
static int64_t victims_checked, mismatches;

static void on_evict(void *ctx, const pcache_block *v) {
    int i, best = -1;
    int64_t bn = 0;
    (void)ctx;
    for (i = 0; i < n_mirror; i++) {
        pcache_block *b = mirror[i];
        int64_t n;
        if (!b->evictable && b != v)
            continue;
        n = nk_next(b->key);
        if (best < 0 || n > bn || (n == bn && b->depth > mirror[best]->depth) ||
            (n == bn && b->depth == mirror[best]->depth &&
             b->seq_insert < mirror[best]->seq_insert)) {
            best = i;
            bn = n;
        }
    }
    T_ASSERT(best >= 0);
    victims_checked++;
    if (mirror[best] != v)
        mismatches++;
    for (i = 0; i < n_mirror; i++)
        if (mirror[i] == v) {
            mirror[i] = mirror[--n_mirror];
            return;
        }
    T_FAIL_("evicted a block the script never inserted");
}

typedef struct held {
    pcache_block *b[R_DEPTH];
    int n;
    sim_time until;
} held;

static void release(pcache *c, held *h, sim_time now) {
    while (h->n > 0)
        pcache_unref(c, h->b[--h->n], now);
}

static void rule_script(uint64_t seed, int64_t cap) {
    rplan plan[R_REQS];
    held live[4];
    evict_oracle *o = evict_oracle_times_create();
    const struct evict_ops *ops;
    evict_params p;
    pcache *c;
    sim_err err;
    sim_time t = 0;
    int i, j;

    rng_state = seed;
    memset(live, 0, sizeof live);
    n_nk = 0;
    n_mirror = 0;
    for (i = 0; i < R_REQS; i++) {
        t += rnd_in(0, 3) * 1000;
        plan[i].d = (int)rnd_in(0, R_DOCS - 1);
        plan[i].len = (int)rnd_in(1, R_DEPTH);
        plan[i].t = t;
        plan[i].shows = rnd() % 10 != 0;
        plan[i].extra = rnd() % 12 == 0;
        if (plan[i].extra)
            continue;
        for (j = 0; j < plan[i].len; j++) {
            uint64_t key = doc_key(plan[i].d, j);
            nkey *k = nk_find(key);
            if (k == NULL) {
                k = &nk[n_nk++];
                memset(k, 0, sizeof *k);
                k->key = key;
                k->prev = -1;
            }
            k->t[k->n++] = t;
            T_EQ_I(evict_oracle_add_use(o, key, t), SIM_OK);
        }
    }
    T_EQ_I(evict_oracle_times_finish(o), SIM_OK);
    T_EQ_I(evict_spec_parse("belady", &ops, &p, &err), SIM_OK);
    p.oracle = o;
    T_EQ_I(pcache_create(cap, ops, &p, &c, &err), SIM_OK);
    pcache_set_observer(c, on_evict, NULL);

    for (i = 0; i < R_REQS; i++) {
        /* a request arrives some time after its oracle time (queueing) */
        sim_time now = plan[i].t + rnd_in(0, 4) * 1000;
        held *h = NULL;
        pcache_block *parent = NULL;
        if (now < t)
            now = t;
        t = now;
        for (j = 0; j < 4; j++) /* requests in flight end */
            if (live[j].n > 0 && live[j].until <= now)
                release(c, &live[j], now);
        if (!plan[i].shows)
            continue;
        for (j = 0; j < 4 && h == NULL; j++)
            if (live[j].n == 0)
                h = &live[j];
        if (h == NULL) { /* all slots busy: the oldest ends now */
            h = &live[0];
            release(c, h, now);
        }
        h->until = now + rnd_in(0, 6) * 1000;
        for (j = 0; j < plan[i].len; j++) {
            uint64_t key = doc_key(plan[i].d, j);
            pcache_block *b = pcache_find(c, key);
            if (b != NULL) {
                pcache_ref(c, b);
                pcache_access(c, b, now);
            } else {
                int rc = pcache_insert(c, key, parent, 16, -1, now, &b);
                T_ASSERT(rc >= 0);
                if (rc == 0)
                    break; /* nothing evictable: the rest stays uncached */
                mirror[n_mirror++] = b;
            }
            nk_touch(key, now);
            h->b[h->n++] = b;
            parent = b;
        }
        T_EQ_I(pcache_check(c), 0);
    }
    for (j = 0; j < 4; j++)
        release(c, &live[j], t);
    pcache_destroy(c);
    evict_oracle_destroy(o);
}

static void test_rule(void) {
    uint64_t seed;
    int64_t cap;
    victims_checked = mismatches = 0;
    sabotage = 0;
    for (seed = 1; seed <= 40; seed++)
        for (cap = 2; cap <= 40; cap += 7)
            rule_script(seed, cap);
    T_ASSERT(victims_checked > 1000);
    T_EQ_I(mismatches, 0);
    /* sabotage: a model that never drops stale uses must disagree somewhere */
    victims_checked = mismatches = 0;
    sabotage = 1;
    for (seed = 1; seed <= 40; seed++)
        rule_script(seed, 9);
    sabotage = 0;
    T_ASSERT(mismatches > 0);
    printf("ok 2 - every victim has the farthest next use (naive scan)\n");
}

/* ---- 3. the full simulator ---- */

/* Writes a random Mooncake-style trace (64-token hash blocks) to path. */
static void write_trace(const char *path, uint64_t seed, int n) {
    FILE *f = fopen(path, "w");
    double t_ms = 0;
    int i, j;
    T_ASSERT(f != NULL);
    rng_state = seed;
    for (i = 0; i < n; i++) {
        int d = (int)rnd_in(0, 5), m = (int)rnd_in(1, 8), tail = (int)rnd_in(0, 1);
        int in = (m + tail - 1) * 64 + (int)rnd_in(1, 64), out = (int)rnd_in(1, 60);
        t_ms += rnd() % 4 == 0 ? (double)rnd_in(0, 50) : (double)rnd_in(100, 3000);
        fprintf(f,
                "{\"timestamp\": %.0f, \"input_length\": %d, \"output_length\": %d, "
                "\"hash_ids\": [",
                t_ms, in, out);
        for (j = 0; j < m; j++)
            fprintf(f, "%s%d", j ? ", " : "", d * 100 + j);
        if (tail)
            fprintf(f, ", %d", 100000 + i); /* a suffix of its own */
        fprintf(f, "]}\n");
    }
    fclose(f);
}

static json_t *base_cfg(const char *policy, long long kv_blocks) {
    json_t *cfg = json_object();
    json_object_set_new(cfg, "model", json_string("llama-3.1-8b"));
    json_object_set_new(cfg, "gpu", json_string("h100-sxm"));
    json_object_set_new(cfg, "policy", json_string(policy));
    json_object_set_new(cfg, "kv-blocks", json_integer(kv_blocks));
    json_object_set_new(cfg, "db", json_string(""));
    json_object_set_new(cfg, "steps-sample", json_integer(0));
    json_object_set_new(cfg, "timeline-s", json_real(0));
    json_object_set_new(cfg, "check", json_true());
    return cfg;
}

static void run_one(json_t *cfg, met_summary *sum) {
    json_t *info = NULL;
    sim_err err;
    int rc;
    sim_err_clear(&err);
    rc = rt_run_exec(cfg, "run", "test_belady_sim", sum, &info, &err);
    if (rc != SIM_OK) {
        char buf[1200];
        sim_err_format(&err, buf, sizeof buf);
        T_FAIL_("run failed: %s", buf);
    }
    json_decref(info);
}

/* Belady against every other policy on one source (set_src fills it). */
static int64_t compare_policies(void (*set_src)(json_t *cfg, void *ctx), void *ctx,
                                long long kv_blocks, const char *what) {
    size_t i;
    met_summary bel, again, other;
    json_t *cfg = base_cfg("belady", kv_blocks);
    int64_t strictly = 0;
    set_src(cfg, ctx);
    run_one(cfg, &bel);
    json_decref(cfg);
    cfg = base_cfg("belady", kv_blocks);
    set_src(cfg, ctx);
    run_one(cfg, &again);
    json_decref(cfg);
    /* determinism: every figure but the wall-time ones */
    bel.wall_s = again.wall_s = 0;
    bel.peak_mem_bytes = again.peak_mem_bytes = 0;
    T_ASSERT(memcmp(&bel, &again, sizeof bel) == 0);
    T_ASSERT(bel.completed > 0);
    for (i = 0; i < evict_count(); i++) {
        const char *name = evict_at(i)->name;
        if (strcmp(name, "belady") == 0)
            continue;
        cfg = base_cfg(name, kv_blocks);
        set_src(cfg, ctx);
        run_one(cfg, &other);
        json_decref(cfg);
        T_EQ_I(other.completed, bel.completed);
        if (bel.prefix_hit_rate_tokens < other.prefix_hit_rate_tokens)
            T_FAIL_("%s, %lld blocks: belady %.6f < %s %.6f", what, kv_blocks,
                    bel.prefix_hit_rate_tokens, name, other.prefix_hit_rate_tokens);
        strictly += bel.prefix_hit_rate_tokens > other.prefix_hit_rate_tokens;
    }
    return strictly;
}

static void set_trace(json_t *cfg, void *ctx) {
    json_object_set_new(cfg, "trace", json_string((const char *)ctx));
    json_object_set_new(cfg, "hash-block-tokens", json_integer(64));
}

static void set_sessions(json_t *cfg, void *ctx) {
    json_object_set_new(cfg, "synthetic",
                        json_string("sessions,rate=0.5,turns=geometric(mean=4),"
                                    "think=lognormal(mean=5;sigma=1),isl=lognormal(mean=120;"
                                    "sigma=1),osl=lognormal(mean=60;sigma=0.7),sessions=25,"
                                    "system=64"));
    json_object_set_new(cfg, "seed", json_integer(*(const long long *)ctx));
}

static void test_full_sim(void) {
    char path[] = "/tmp/kvfleet_belady_XXXXXX";
    int fd = mkstemp(path), s, runs = 0;
    int64_t strictly = 0;
    static const long long sizes[] = {48, 80, 160};
    T_ASSERT(fd >= 0);
    close(fd);
    for (s = 1; s <= 4; s++) {
        size_t k;
        write_trace(path, (uint64_t)s, 80);
        for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++, runs++)
            strictly += compare_policies(set_trace, path, sizes[k], "trace");
    }
    remove(path);
    for (s = 1; s <= 3; s++) {
        long long seed = s;
        size_t k;
        for (k = 0; k < sizeof sizes / sizeof sizes[0]; k++, runs++)
            strictly += compare_policies(set_sessions, &seed, sizes[k], "sessions");
    }
    T_ASSERT(strictly > 0); /* not all ties: the traces do exercise eviction */
    printf("ok 3 - full simulator: belady >= every policy in %d runs (%lld strictly better)\n",
           runs, (long long)strictly);
}

/* ---- 4. a preempted request's blocks ----
 * A's uses are at 10 and 1000, B's at 20 and 500. Both are inserted at their
 * first use and released at 30: B by a finished request, A by a preempted
 * one (it resumes and wants A back). Without the mark A's next use (1000) is
 * the farther and A would go first; with it A is due, and B goes. */

static uint64_t last_victim;

static void note_victim(void *ctx, const pcache_block *v) {
    (void)ctx;
    last_victim = v->key;
}

static void test_preempted(void) {
    evict_oracle *o;
    const struct evict_ops *ops;
    evict_params p;
    pcache *c;
    pcache_block *a, *b, *x;
    sim_err err;
    int resume;
    for (resume = 0; resume <= 1; resume++) {
        o = evict_oracle_times_create();
        T_EQ_I(evict_oracle_add_use(o, 0xA, 10), SIM_OK);
        T_EQ_I(evict_oracle_add_use(o, 0xB, 20), SIM_OK);
        T_EQ_I(evict_oracle_add_use(o, 0xB, 500), SIM_OK);
        T_EQ_I(evict_oracle_add_use(o, 0xA, 1000), SIM_OK);
        T_EQ_I(evict_oracle_times_finish(o), SIM_OK);
        T_EQ_I(evict_spec_parse("belady", &ops, &p, &err), SIM_OK);
        p.oracle = o;
        T_EQ_I(pcache_create(2, ops, &p, &c, &err), SIM_OK);
        pcache_set_observer(c, note_victim, NULL);
        T_EQ_I(pcache_insert(c, 0xA, NULL, 16, -1, 10, &a), 1);
        T_EQ_I(pcache_insert(c, 0xB, NULL, 16, -1, 20, &b), 1);
        pcache_unref(c, b, 30);
        if (resume)
            pcache_unref_resume(c, a, 30);
        else
            pcache_unref(c, a, 30);
        T_EQ_I(pcache_insert(c, 0xC, NULL, 16, -1, 40, &x), 1);
        T_EQ_I(last_victim, resume ? 0xB : 0xA);
        /* the mark lasts until the block's next access */
        if (resume) {
            T_EQ_I(a->resume, 1);
            pcache_ref(c, a);
            pcache_access(c, a, 50);
            T_EQ_I(a->resume, 0);
            pcache_unref(c, a, 50);
        }
        pcache_unref(c, x, 40);
        T_EQ_I(pcache_check(c), 0);
        pcache_destroy(c);
        evict_oracle_destroy(o);
    }
    printf("ok 4 - a preempted request's blocks are kept as due\n");
}

int main(void) {
    printf("1..4\n");
    test_keys();
    test_rule();
    test_full_sim();
    test_preempted();
    return 0;
}
