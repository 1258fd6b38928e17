/* cache_replay.c: `kvfleet cache-replay` (see cache_replay.h).
 *
 * Keys: a Mooncake trace lists each request's block hashes (hash_ids, 512
 * tokens per block, the last usually partial); the block key is chained,
 * key_i = mix(key_i-1, hash_id_i), so equal ids under different prefixes
 * stay distinct. Each listed block counts as one block of capacity and one
 * access, a final partial block too (the trace's own convention); block i
 * holds min(B, prompt - i B) tokens (at least 1), which weighs the token
 * hit rate. Traces without block hashes (Azure, Vidur, sessions) have no
 * content to key on and are refused.
 *
 * Per request: the hit is the run of leading blocks found in the cache
 * (the cache's blocks form a prefix-closed forest, so this is the longest
 * cached prefix); each hit is held and counted as an access; the remaining
 * blocks are inserted in order under the previous one. When the cache is
 * full and nothing is evictable (every cached block held by this request:
 * a capacity smaller than the request), that block and the rest of the
 * request are not cached (uncached_blocks; their ticks still count, so
 * Belady's oracle stays aligned). Then the request releases its blocks,
 * deepest first; its last block becomes evictable.
 *
 * Memory: the cache (capacity-bound) plus a set of the keys seen, for
 * unique_blocks (16 bytes per distinct block at most 1/2 load), plus, for
 * belady only, the oracle (8 bytes per block access). Speed: a hash lookup
 * or insertion per block plus the policy's O(log n) offers and evictions. */
#include "config.h"
#include "cache_replay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "mem.h"
#include "oracle.h"
#include "trace.h"

/* ---- a set of keys (unique_blocks) ---- */

typedef struct keyset {
    uint64_t *slots; /* 0 = empty; key 0 is kept in has_zero */
    uint64_t mask;   /* slots - 1 */
    int64_t n;       /* keys, has_zero included */
    int has_zero;
} keyset;

static int keyset_grow(keyset *s) {
    uint64_t cap = s->slots ? 2 * (s->mask + 1) : 4096, i, *old = s->slots, old_cap = s->mask + 1;
    uint64_t *slots = sim_calloc(cap, sizeof *slots);
    if (slots == NULL)
        return SIM_ENOMEM;
    s->slots = slots;
    s->mask = cap - 1;
    for (i = 0; old != NULL && i < old_cap; i++)
        if (old[i] != 0) {
            uint64_t j = (old[i] * 0x9e3779b97f4a7c15ULL) & s->mask;
            while (slots[j] != 0)
                j = (j + 1) & s->mask;
            slots[j] = old[i];
        }
    sim_free(old);
    return SIM_OK;
}

/* Adds key: 1 if new, 0 if present, SIM_ENOMEM. */
static int keyset_add(keyset *s, uint64_t key) {
    uint64_t j;
    if (key == 0) {
        if (s->has_zero)
            return 0;
        s->has_zero = 1;
        s->n++;
        return 1;
    }
    if ((s->slots == NULL || (uint64_t)(s->n + 1) * 2 > s->mask + 1) && keyset_grow(s) != SIM_OK)
        return SIM_ENOMEM;
    for (j = (key * 0x9e3779b97f4a7c15ULL) & s->mask; s->slots[j] != 0; j = (j + 1) & s->mask)
        if (s->slots[j] == key)
            return 0;
    s->slots[j] = key;
    s->n++;
    return 1;
}

/* ---- the replay core ---- */

struct rt_creplay {
    pcache *cache;        /* owned */
    int32_t block_tokens; /* tokens per full block */
    pcache_block **held;  /* blocks the current request holds, [held_cap] */
    int32_t held_cap;
    keyset seen;      /* keys seen */
    int count_unique; /* maintain seen (1, the default) or not */
    rt_creplay_stats st;
};

int rt_creplay_create(const char *spec, int64_t capacity, int32_t block_tokens,
                      const evict_oracle *oracle, rt_creplay **out, sim_err *err) {
    const struct evict_ops *ops;
    evict_params p;
    rt_creplay *r;
    int rc;
    *out = NULL;
    if ((rc = evict_spec_parse(spec, &ops, &p, err)) != SIM_OK)
        return rc;
    p.block_tokens = block_tokens;
    p.oracle = oracle;
    r = SIM_NEW(rt_creplay);
    if (r == NULL)
        return SIM_ENOMEM;
    r->block_tokens = block_tokens;
    r->count_unique = 1;
    if ((rc = pcache_create(capacity, ops, &p, &r->cache, err)) != SIM_OK) {
        rt_creplay_destroy(r);
        return rc;
    }
    *out = r;
    return SIM_OK;
}

void rt_creplay_destroy(rt_creplay *r) {
    if (r == NULL)
        return;
    pcache_destroy(r->cache);
    sim_free(r->held);
    sim_free(r->seen.slots);
    sim_free(r);
}

/* Root of a request's chain: the plain root, or a salted one. */
static uint64_t chain_root(uint64_t salt) {
    return salt ? pcache_key_chain(PCACHE_KEY_ROOT, salt) : PCACHE_KEY_ROOT;
}

/* Tokens in block i of a prompt of prompt tokens (1..B). */
static int32_t block_tokens_at(int32_t i, int32_t prompt, int32_t b) {
    int64_t left = (int64_t)prompt - (int64_t)i * b;
    return left >= b ? b : left >= 1 ? (int32_t)left : 1;
}

int rt_creplay_request(rt_creplay *r, const uint32_t *hash_ids, int32_t n, int32_t prompt_tokens,
                       int64_t session, sim_time now, uint64_t salt) {
    pcache *c = r->cache;
    uint64_t key = chain_root(salt);
    int32_t i = 0, n_held = 0, t;
    int rc = SIM_OK, full = 0;

    if (n > r->held_cap) {
        int32_t cap = n > 2 * r->held_cap ? n : 2 * r->held_cap;
        pcache_block **h = sim_realloc(r->held, (size_t)cap * sizeof *h);
        if (h == NULL)
            return SIM_ENOMEM;
        r->held = h;
        r->held_cap = cap;
    }
    pcache_expire(c, now);
    /* the hit: the cached prefix */
    for (; i < n; i++) {
        uint64_t k = pcache_key_chain(key, hash_ids[i]);
        pcache_block *b = pcache_find(c, k);
        if (b == NULL)
            break;
        key = k;
        pcache_ref(c, b);
        pcache_access(c, b, now);
        r->held[n_held++] = b;
        t = block_tokens_at(i, prompt_tokens, r->block_tokens);
        r->st.hit_blocks++;
        r->st.hit_tokens += t;
        r->st.tokens += t;
    }
    /* the rest: inserted under the previous block */
    for (; i < n; i++) {
        pcache_block *b;
        int added;
        key = pcache_key_chain(key, hash_ids[i]);
        t = block_tokens_at(i, prompt_tokens, r->block_tokens);
        r->st.tokens += t;
        if (r->count_unique) {
            if ((added = keyset_add(&r->seen, key)) < 0) {
                rc = added;
                break;
            }
            r->st.unique_blocks += added;
        }
        if (!full) {
            rc = pcache_insert(c, key, n_held ? r->held[n_held - 1] : NULL, t, session, now, &b);
            if (rc < 0)
                break;
            if (rc == 1) {
                r->held[n_held++] = b;
                rc = SIM_OK;
                continue;
            }
            full = 1;
            rc = SIM_OK;
        } else {
            pcache_skip(c);
        }
        r->st.uncached_blocks++;
    }
    while (n_held > 0)
        pcache_unref(c, r->held[--n_held], now);
    if (rc != SIM_OK)
        return rc;
    r->st.requests++;
    r->st.blocks += n;
    return SIM_OK;
}

void rt_creplay_count_unique(rt_creplay *r, int on) {
    r->count_unique = on != 0;
}

void rt_creplay_stats_get(const rt_creplay *r, rt_creplay_stats *out) {
    *out = r->st;
    out->evictions = pcache_evictions(r->cache);
}

pcache *rt_creplay_cache(rt_creplay *r) {
    return r->cache;
}

int rt_creplay_oracle_add(evict_oracle *o, const uint32_t *hash_ids, int32_t n, uint64_t salt) {
    uint64_t key = chain_root(salt);
    int32_t i;
    for (i = 0; i < n; i++) {
        key = pcache_key_chain(key, hash_ids[i]);
        if (evict_oracle_add(o, key) != SIM_OK)
            return SIM_ENOMEM;
    }
    return SIM_OK;
}

/* ---- the command ---- */

typedef struct cr_opts {
    const char *trace;
    enum trace_format fmt;
    const char *policy;
    int64_t capacity; /* EVICT_UNLIMITED for "unlimited" */
    int32_t block_tokens;
    int64_t limit;  /* requests per pass, 0 = all */
    int64_t repeat; /* passes over the trace, >= 1 */
    int json;
} cr_opts;

static void usage(FILE *f) {
    char names[256];
    evict_names(names, sizeof names);
    fprintf(f,
            "usage: kvfleet cache-replay --trace FILE [--trace-format F] --policy P[:K=V,...]\n"
            "                            --capacity-blocks N|unlimited [--block-tokens B]\n"
            "                            [--limit N] [--repeat N] [--json]\n\n"
            "Replays only the prefix cache (no timing): per request in arrival order, the hit\n"
            "is the longest cached prefix of its block list; then its blocks are inserted or\n"
            "touched in order, evicting as the policy says. Only traces with block hashes\n"
            "(Mooncake JSONL, hash_ids) can be cache-replayed.\n\n"
            "  --trace FILE            Mooncake JSONL trace\n"
            "  --trace-format F        mooncake|auto (default auto)\n"
            "  --policy P[:K=V,...]    %s\n"
            "  --capacity-blocks N     cache size in blocks (each listed block counts one,\n"
            "                          a final partial block too), or 'unlimited'\n"
            "  --block-tokens B        tokens per full block (default 512, Mooncake's)\n"
            "  --limit N               replay only the first N requests (default all)\n"
            "  --repeat N              replay the trace N times back to back, each time with\n"
            "                          fresh block keys (a longer trace of the same shape)\n"
            "  --json                  one JSON object: policy, capacity_blocks, requests,\n"
            "                          blocks, hit_blocks, hit_rate_blocks, hit_tokens,\n"
            "                          hit_rate_tokens, evictions, unique_blocks,\n"
            "                          uncached_blocks (deterministic: no wall_s)\n\n"
            "policies:\n",
            names);
    {
        size_t i;
        for (i = 0; i < evict_count(); i++)
            fprintf(f, "  %-8s %s\n", evict_at(i)->name, evict_at(i)->help);
    }
    fprintf(f, "\nexit: 0 ok, 1 bad input, 2 usage, 3 out of memory. docs/eviction.md has more.\n");
}

/* The largest --capacity-blocks number: far beyond any real cache, and
 * below EVICT_UNLIMITED (INT64_MAX), which stands for 'unlimited'. */
#define CR_MAX_CAPACITY_BLOCKS 1000000000000000000LL

/* Parses argv into *o: RT_EXIT_OK, or an exit code after printing why
 * (-1: --help was printed, exit 0). */
static int parse_args(int argc, char **argv, cr_opts *o) {
    const char *cap_s = NULL, *fmt_s = "auto";
    int i;
    memset(o, 0, sizeof *o);
    o->block_tokens = 512;
    o->repeat = 1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return -1;
        }
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || !rt_has_value(argc, argv, i)) {
            fprintf(stderr, "kvfleet cache-replay: %s '%s'\n",
                    strncmp(a, "--", 2) == 0 ? "missing value after" : "unexpected argument", a);
            return RT_EXIT_USAGE;
        }
        v = argv[++i];
        if (strcmp(a, "--trace") == 0)
            o->trace = v;
        else if (strcmp(a, "--trace-format") == 0)
            fmt_s = v;
        else if (strcmp(a, "--policy") == 0)
            o->policy = v;
        else if (strcmp(a, "--capacity-blocks") == 0)
            cap_s = v;
        else if (strcmp(a, "--block-tokens") == 0 || strcmp(a, "--limit") == 0 ||
                 strcmp(a, "--repeat") == 0) {
            long long lo = strcmp(a, "--limit") == 0 ? 0 : 1, x = 0;
            int prc = rt_parse_int(v, lo, INT32_MAX, &x);
            if (prc != 0) {
                fprintf(stderr,
                        "kvfleet cache-replay: %s: expected an integer in [%lld, %d], got '%s'\n",
                        a, lo, INT32_MAX, v);
                return rt_value_exit(prc);
            }
            if (strcmp(a, "--block-tokens") == 0)
                o->block_tokens = (int32_t)x;
            else if (strcmp(a, "--limit") == 0)
                o->limit = x;
            else
                o->repeat = x;
        } else {
            fprintf(stderr, "kvfleet cache-replay: unknown option '%s' (see --help)\n", a);
            return RT_EXIT_USAGE;
        }
    }
    if (o->trace == NULL || o->policy == NULL || cap_s == NULL) {
        fprintf(stderr, "kvfleet cache-replay: --trace, --policy and --capacity-blocks are "
                        "required (see --help)\n");
        return RT_EXIT_USAGE;
    }
    if (trace_format_parse(fmt_s, &o->fmt) != SIM_OK) {
        fprintf(stderr, "kvfleet cache-replay: --trace-format: expected mooncake|auto, got '%s'\n",
                fmt_s);
        return RT_EXIT_INPUT; /* an unknown name: bad input, as in run */
    }
    if (strcmp(cap_s, "unlimited") == 0) {
        o->capacity = EVICT_UNLIMITED;
    } else {
        long long x;
        int prc = rt_parse_int(cap_s, 1, CR_MAX_CAPACITY_BLOCKS, &x);
        if (prc != 0) {
            fprintf(stderr,
                    "kvfleet cache-replay: --capacity-blocks: expected an integer from 1 to %lld "
                    "or 'unlimited', got '%s'%s\n",
                    CR_MAX_CAPACITY_BLOCKS, cap_s,
                    rt_parse_int(cap_s, INT64_MIN, 0, &x) == 0
                        ? " (a cache of no block caches nothing)"
                        : "");
            return rt_value_exit(prc);
        }
        o->capacity = x;
    }
    return RT_EXIT_OK;
}

/* One pass over the trace (repeat times): feeds each request to the
 * replay (r != NULL) or to the oracle (o != NULL). Returns SIM_OK or a
 * negative code with *err filled. */
static int pass(const cr_opts *opt, rt_creplay *r, evict_oracle *o, sim_err *err) {
    sim_time offset = 0, last = 0;
    int64_t rep;
    int rc = SIM_OK;
    for (rep = 0; rep < opt->repeat && rc == SIM_OK; rep++) {
        trace_src *t = NULL;
        trace_opts to;
        sim_req q;
        trace_opts_default(&to);
        to.limit = opt->limit;
        to.hash_block_tokens = opt->block_tokens;
        if ((rc = trace_open_file(opt->trace, opt->fmt, &to, &t, err)) != SIM_OK)
            break;
        if (trace_src_format(t) != TRACE_FMT_MOONCAKE) {
            sim_err_set(err, opt->trace, 0, 0,
                        "trace format: expected a trace with block hashes (Mooncake JSONL with "
                        "hash_ids; only those can be cache-replayed for now), got %s",
                        trace_format_name(trace_src_format(t)));
            trace_close(t);
            rc = SIM_EINVAL;
            break;
        }
        while ((rc = trace_next(t, &q, err)) == 1) {
            if (q.n_hash_ids < 1) {
                sim_err_set(err, opt->trace, trace_src_line(t), 0,
                            "hash_ids: expected a non-empty list of block hashes (cache-replay "
                            "keys blocks on them), got none");
                rc = SIM_EINVAL;
                break;
            }
            if (q.arrival_ns > SIM_HORIZON_NS - offset) {
                sim_err_set(err, opt->trace, 0, 0,
                            "--repeat: expected repetitions within %g s of simulated time, got "
                            "repetition %d reaching past it (a span of %g s per repetition)",
                            SIM_HORIZON_S, (int)(rep + 1), sim_time_to_s(q.arrival_ns));
                rc = SIM_EINVAL;
                break;
            }
            last = offset + q.arrival_ns;
            if (r != NULL)
                rc = rt_creplay_request(r, q.hash_ids, q.n_hash_ids, q.prompt_tokens, q.session_id,
                                        last, (uint64_t)rep);
            else
                rc = rt_creplay_oracle_add(o, q.hash_ids, q.n_hash_ids, (uint64_t)rep);
            if (rc != SIM_OK) {
                sim_err_set(err, opt->trace, 0, 0, "cache-replay: out of memory");
                break;
            }
        }
        trace_close(t);
        offset = last + SIM_NS_PER_S; /* the next repetition starts a second later */
        if (rep == 0 && rc >= 0 && opt->repeat > 1) {
            /* Every pass spans the first's (last, the same rows) plus the
             * second between passes, so the repetition that would reach past
             * the horizon is known now: refuse it at once, with the message
             * the loop would give, not after hours of passes (--repeat
             * 2147483647 over a trace of seconds ran about 10^9 of them). */
            int64_t step = last + SIM_NS_PER_S;
            int64_t fits = (SIM_HORIZON_NS - last) / step; /* later passes that fit */
            if (opt->repeat - 1 > fits) {
                sim_err_set(err, opt->trace, 0, 0,
                            "--repeat: expected repetitions within %g s of simulated time, got "
                            "repetition %d reaching past it (a span of %g s per repetition)",
                            SIM_HORIZON_S, (int)(fits + 2), sim_time_to_s(last));
                rc = SIM_EINVAL;
            }
        }
    }
    return rc < 0 ? rc : SIM_OK;
}

static double ratio(int64_t a, int64_t b) {
    return b > 0 ? (double)a / (double)b : 0.0;
}

static int print_json(const cr_opts *o, const rt_creplay_stats *s) {
    json_t *j = json_object();
    int bad = j == NULL;
    if (!bad) {
        bad |= json_object_set_new(j, "policy", json_string(o->policy));
        bad |= json_object_set_new(j, "capacity_blocks",
                                   o->capacity == EVICT_UNLIMITED
                                       ? json_string("unlimited")
                                       : json_integer((json_int_t)o->capacity));
        bad |= json_object_set_new(j, "requests", json_integer(s->requests));
        bad |= json_object_set_new(j, "blocks", json_integer(s->blocks));
        bad |= json_object_set_new(j, "hit_blocks", json_integer(s->hit_blocks));
        bad |=
            json_object_set_new(j, "hit_rate_blocks", json_real(ratio(s->hit_blocks, s->blocks)));
        bad |= json_object_set_new(j, "hit_tokens", json_integer(s->hit_tokens));
        bad |=
            json_object_set_new(j, "hit_rate_tokens", json_real(ratio(s->hit_tokens, s->tokens)));
        bad |= json_object_set_new(j, "evictions", json_integer(s->evictions));
        bad |= json_object_set_new(j, "unique_blocks", json_integer(s->unique_blocks));
        bad |= json_object_set_new(j, "uncached_blocks", json_integer(s->uncached_blocks));
    }
    if (!bad)
        bad = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(j);
    if (bad)
        return -1;
    putchar('\n');
    return 0;
}

static void print_text(const cr_opts *o, const rt_creplay_stats *s, double wall_s) {
    printf("%-17s %s\n", "policy", o->policy);
    if (o->capacity == EVICT_UNLIMITED)
        printf("%-17s %s\n", "capacity_blocks", "unlimited");
    else
        printf("%-17s %lld\n", "capacity_blocks", (long long)o->capacity);
    printf("%-17s %lld\n", "requests", (long long)s->requests);
    printf("%-17s %lld\n", "blocks", (long long)s->blocks);
    printf("%-17s %lld\n", "hit_blocks", (long long)s->hit_blocks);
    printf("%-17s %.6f\n", "hit_rate_blocks", ratio(s->hit_blocks, s->blocks));
    printf("%-17s %lld\n", "hit_tokens", (long long)s->hit_tokens);
    printf("%-17s %.6f\n", "hit_rate_tokens", ratio(s->hit_tokens, s->tokens));
    printf("%-17s %lld\n", "evictions", (long long)s->evictions);
    printf("%-17s %lld\n", "unique_blocks", (long long)s->unique_blocks);
    printf("%-17s %lld  (could not be cached: every cached block was in use)\n", "uncached_blocks",
           (long long)s->uncached_blocks);
    printf("%-17s %.3f  (%.2f M block accesses/s, trace parsing included)\n", "wall_s", wall_s,
           wall_s > 0 ? (double)s->blocks / wall_s / 1e6 : 0.0);
}

int rt_main_cache_replay(int argc, char **argv) {
    cr_opts o;
    const struct evict_ops *ops;
    evict_params p;
    evict_oracle *oracle = NULL;
    rt_creplay *r = NULL;
    rt_creplay_stats s;
    sim_err err;
    double t0 = rt_now_s();
    int rc, code;

    sim_err_clear(&err);
    code = parse_args(argc, argv, &o);
    if (code != RT_EXIT_OK)
        return code < 0 ? RT_EXIT_OK : code;
    /* the policy's name first: Belady's first pass is only worth it when
     * the rest of the text is sound */
    if ((rc = evict_spec_parse(o.policy, &ops, &p, &err)) != SIM_OK)
        goto fail;
    /* a trace read more than once must be there each time: refused before
     * the first pass, not reported as empty at the second */
    {
        char what[128] = "";
        long long n = (long long)o.repeat;
        if (strcmp(ops->name, "belady") == 0 && n == 1)
            snprintf(what, sizeof what, "%s", RT_BELADY_REREAD);
        else if (strcmp(ops->name, "belady") == 0)
            snprintf(what, sizeof what,
                     "--policy belady with --repeat %lld reads the trace %lld times (%lld ahead, "
                     "for the oracle)",
                     n, 2 * n, n);
        else if (n > 1)
            snprintf(what, sizeof what, "--repeat %lld reads the trace %lld times", n, n);
        if (what[0] && (rc = rt_trace_check_rereadable(o.trace, what, &err)) != SIM_OK)
            goto fail;
    }
    if (strcmp(ops->name, "belady") == 0) {
        oracle = evict_oracle_create();
        if (oracle == NULL) {
            rc = SIM_ENOMEM;
            goto fail;
        }
        if ((rc = pass(&o, NULL, oracle, &err)) != SIM_OK)
            goto fail;
        evict_oracle_finish(oracle);
    }
    if ((rc = rt_creplay_create(o.policy, o.capacity, o.block_tokens, oracle, &r, &err)) != SIM_OK)
        goto fail;
    if ((rc = pass(&o, r, NULL, &err)) != SIM_OK)
        goto fail;
    rt_creplay_stats_get(r, &s);
    if (o.json) {
        if (print_json(&o, &s) != 0) {
            sim_err_set(&err, "", 0, 0, "cannot write the JSON summary");
            rc = SIM_EIO;
            goto fail;
        }
    } else {
        print_text(&o, &s, rt_now_s() - t0);
    }
    rt_creplay_destroy(r);
    evict_oracle_destroy(oracle);
    return RT_EXIT_OK;

fail:
    code = rt_report_err("cache-replay", &err, rc);
    rt_creplay_destroy(r);
    evict_oracle_destroy(oracle);
    return code;
}
