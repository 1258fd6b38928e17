/* sessionize.c: a made-up session structure for traces without conversations
 * (--sessionize SPEC; the model is specified in docs/traces.md, "Session
 * model for traces without conversations (made-up structure)").
 *
 * Azure and Vidur traces carry arrival times and lengths, no content, so a
 * prefix cache finds nothing to reuse in them. This wrapper keeps the inner
 * source's arrival process exactly (open loop: same requests, same times,
 * same ids) and adds a conversation structure on top: some requests become
 * later turns of earlier sessions, whose prompt then starts with that
 * session's whole context. Hit rates measured on the result describe this
 * model, not the trace: they are a sensitivity study of share, gap, ...
 *
 * The rule, per request r of the inner source, in arrival order:
 *   1. Draw u ~ U[0,1) from the SIM_RNG_SESSIONS stream (one draw per request).
 *   2. If u < share and the pool holds a ready session (ready_ns <= r's
 *      arrival), take the one that became ready last (largest ready_ns,
 *      then largest session id) out of the pool. If its context + r's
 *      prompt + r's output fits max_ctx, r becomes its next turn: prompt =
 *      context + r's prompt, new_tokens = r's prompt. Otherwise that
 *      session is retired (the user starts a new conversation) and r
 *      starts one.
 *   3. Otherwise r starts a new session: turn 1, ids 0, 1, 2, ... in start order.
 * When a turn ends (trace_on_end) and was not rejected, had turn <
 * max_turns and left room for one more token of prompt and one of output
 * (context + 2 <= max_ctx), its session enters the pool with ready_ns = end
 * + G, G drawn from the gap distribution on the same stream. A pool that
 * already holds keep sessions first drops the one that entered it earliest.
 * A rejected turn ends its session. on_end never hands back a follow-up.
 * Taking the latest-ready session keeps the realised idle gap (arrival -
 * end) close to the drawn G; sessions passed over age out through keep.
 *
 * Data structure: keep slots preallocated at open (on_end, called from the
 * event loop, never allocates), split between two binary heaps on (ready_ns,
 * id): a min-heap of sessions not ready yet and a max-heap of ready ones.
 * Each request first moves the sessions that became ready to the max-heap,
 * whose top is the pick. An intrusive list in pool-entry order gives the
 * session to drop (O(1)). A session with a turn in flight is not stored: the
 * ended request carries its id, turn and context. Memory is O(keep) (48
 * bytes a slot), never O(trace); each request costs O(log keep).
 *
 * Determinism: the structure depends on the seed and on the order and times
 * of trace_on_end calls, i.e. on the simulated fleet (as closed-loop
 * sessions do). Same trace + spec + seed + fleet: same requests.
 * Non-goals: sources that already have content structure (sessions, closed
 * loop, Mooncake hash ids) are refused, not restructured. */
#include "config.h"
#include "trace.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "mem.h"
#include "rng.h"
#include "trace_int.h"

#define SRC       "--sessionize"
#define MAX_ITEMS 8       /* key=value pairs in one spec (5 keys exist) */
#define MAX_KEEP  1000000 /* sessions the pool may hold */
#define MAX_TURNS 1000000 /* max_turns upper bound */
#define MAX_GAP_S 1e9     /* gap parameters, seconds */
#define KEYS      "share, gap, max_turns, keep, max_ctx"
#define GAP_WHAT  "seconds >= 0, exp(mean=S) or lognormal(mean=S;sigma=X)"

enum gap_kind { GAP_FIXED, GAP_EXP, GAP_LOGNORMAL };

/* A session in the pool: its last turn ended, the next may come. */
typedef struct sz_entry {
    int64_t sid;       /* session id, >= 0 */
    sim_time ready_ns; /* end of its last turn + drawn gap: may be continued from then on */
    int32_t turn;      /* turns so far, 1..max_turns-1 */
    int32_t context;   /* prompt + output of its last turn, tokens, <= max_ctx - 2 */
    int32_t heap;      /* H_WAIT or H_READY: the heap holding it */
    int32_t pos;       /* index in that heap */
    int32_t newer;     /* next slot in pool-entry order (or free-list link), -1 none */
    int32_t older;     /* previous slot in pool-entry order, -1 none */
} sz_entry;

enum { H_WAIT, H_READY };

/* A binary heap of slot indices. H_WAIT is a min-heap on (ready_ns, sid)
 * (sessions not ready yet, the next to become ready on top); H_READY is a
 * max-heap on (ready_ns, sid) (ready sessions, the latest ready on top). */
typedef struct sz_heap {
    int32_t *slot; /* keep entries, owned */
    int32_t n;     /* entries in use */
} sz_heap;

typedef struct sz {
    trace_src *inner; /* owned, open loop */
    /* the model (docs/traces.md) */
    double share;           /* probability that a request tries to continue, [0, 1] */
    enum gap_kind gap_kind; /* idle gap distribution after a turn ends */
    double gap_s;           /* GAP_FIXED: seconds; GAP_EXP, GAP_LOGNORMAL: mean, s */
    double gap_mu;          /* GAP_LOGNORMAL: ln(mean) - sigma^2/2 */
    double gap_sigma;       /* GAP_LOGNORMAL: sigma, [0, 10] */
    int32_t max_turns;      /* turns per session, [1, MAX_TURNS] */
    int32_t keep;           /* pool capacity, sessions, [1, MAX_KEEP] */
    int32_t max_ctx;        /* prompt + output of a continued turn, tokens, >= 2 */
    /* state */
    gsl_rng *rng;       /* SIM_RNG_SESSIONS */
    sz_entry *ent;      /* keep slots, owned */
    sz_heap h[2];       /* H_WAIT, H_READY; together they hold the pool */
    int32_t free_head;  /* first free slot, -1 when the pool is full */
    int32_t oldest;     /* slot that entered the pool first, -1 when empty */
    int32_t newest;     /* slot that entered the pool last, -1 when empty */
    int64_t n_sessions; /* sessions started (next session id) */
    int ended;          /* 1 once the inner source ran out */
} sz;

/* ---- the two heaps ---- */

/* 1 if slot a belongs above slot b in heap k. */
static int above(const sz *s, int k, int32_t a, int32_t b) {
    const sz_entry *x = &s->ent[a], *y = &s->ent[b];
    int lt = x->ready_ns < y->ready_ns || (x->ready_ns == y->ready_ns && x->sid < y->sid);
    return k == H_WAIT ? lt : !lt && a != b;
}

static void heap_set(sz *s, int k, int32_t pos, int32_t slot) {
    s->h[k].slot[pos] = slot;
    s->ent[slot].heap = k;
    s->ent[slot].pos = pos;
}

static void sift_up(sz *s, int k, int32_t pos) {
    int32_t slot = s->h[k].slot[pos];
    while (pos > 0) {
        int32_t parent = (pos - 1) / 2;
        if (!above(s, k, slot, s->h[k].slot[parent]))
            break;
        heap_set(s, k, pos, s->h[k].slot[parent]);
        pos = parent;
    }
    heap_set(s, k, pos, slot);
}

static void sift_down(sz *s, int k, int32_t pos) {
    sz_heap *h = &s->h[k];
    int32_t slot = h->slot[pos];
    for (;;) {
        int32_t c = 2 * pos + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && above(s, k, h->slot[c + 1], h->slot[c]))
            c++;
        if (!above(s, k, h->slot[c], slot))
            break;
        heap_set(s, k, pos, h->slot[c]);
        pos = c;
    }
    heap_set(s, k, pos, slot);
}

static void heap_push(sz *s, int k, int32_t slot) {
    s->h[k].slot[s->h[k].n++] = slot;
    sift_up(s, k, s->h[k].n - 1);
}

/* Takes slot out of whichever heap holds it. */
static void heap_remove(sz *s, int32_t slot) {
    int k = s->ent[slot].heap;
    sz_heap *h = &s->h[k];
    int32_t pos = s->ent[slot].pos, last = h->slot[--h->n];
    if (pos < h->n) {
        heap_set(s, k, pos, last);
        sift_up(s, k, pos);
        sift_down(s, k, s->ent[last].pos);
    }
}

/* ---- the pool ---- */

/* Takes slot out of the pool: its heap, the entry-order list, then back
 * to the free list. */
static void pool_remove(sz *s, int32_t slot) {
    sz_entry *e = &s->ent[slot];
    heap_remove(s, slot);
    if (e->older >= 0)
        s->ent[e->older].newer = e->newer;
    else
        s->oldest = e->newer;
    if (e->newer >= 0)
        s->ent[e->newer].older = e->older;
    else
        s->newest = e->older;
    e->newer = s->free_head;
    s->free_head = slot;
}

/* Puts a session into the pool (waiting until ready_ns); drops the session
 * that entered first when the pool already holds keep. */
static void pool_add(sz *s, int64_t sid, int32_t turn, int32_t context, sim_time ready_ns) {
    int32_t slot;
    sz_entry *e;

    if (s->h[H_WAIT].n + s->h[H_READY].n == s->keep)
        pool_remove(s, s->oldest);
    slot = s->free_head;
    SIM_ASSERT(slot >= 0);
    e = &s->ent[slot];
    s->free_head = e->newer;
    e->sid = sid;
    e->turn = turn;
    e->context = context;
    e->ready_ns = ready_ns;
    e->newer = -1;
    e->older = s->newest;
    if (s->newest >= 0)
        s->ent[s->newest].newer = slot;
    else
        s->oldest = slot;
    s->newest = slot;
    heap_push(s, H_WAIT, slot);
}

/* The ready session with the latest ready time (ready_ns <= now_ns; ties:
 * the larger id), or -1. Moves sessions that became ready meanwhile from
 * H_WAIT to H_READY first. */
static int32_t pool_pick(sz *s, sim_time now_ns) {
    while (s->h[H_WAIT].n > 0 && s->ent[s->h[H_WAIT].slot[0]].ready_ns <= now_ns) {
        int32_t slot = s->h[H_WAIT].slot[0];
        heap_remove(s, slot);
        heap_push(s, H_READY, slot);
    }
    return s->h[H_READY].n > 0 ? s->h[H_READY].slot[0] : -1;
}

/* ---- the source ---- */

static sim_time draw_gap_ns(sz *s) {
    double g = s->gap_s;
    if (s->gap_kind == GAP_EXP)
        g = s->gap_s > 0 ? gsl_ran_exponential(s->rng, s->gap_s) : 0;
    else if (s->gap_kind == GAP_LOGNORMAL)
        g = gsl_ran_lognormal(s->rng, s->gap_mu, s->gap_sigma);
    return sim_time_from_s(fmin(g, 9.2e9));
}

static int sz_next(void *state, sim_req *out, sim_err *err) {
    sz *s = state;
    int32_t slot;
    double u;
    int rc;

    rc = trace_next(s->inner, out, err);
    if (rc != 1) {
        s->ended |= rc == 0;
        return rc;
    }
    if (NEVER(out->session_id >= 0 || out->n_hash_ids > 0)) {
        /* Refused at open; a source that still yields structure is a bug. */
        sim_err_set(err, SRC, 0, 0,
                    "request %llu: expected a request without a session or hash ids, got "
                    "session %lld with %d hash ids",
                    (unsigned long long)out->id, (long long)out->session_id, out->n_hash_ids);
        return SIM_EINVAL;
    }
    u = gsl_rng_uniform(s->rng);
    slot = pool_pick(s, out->arrival_ns);
    if (u < s->share && slot >= 0) {
        sz_entry e = s->ent[slot];
        pool_remove(s, slot);
        if ((int64_t)e.context + out->prompt_tokens + out->output_tokens <= s->max_ctx) {
            out->new_tokens = out->prompt_tokens;
            out->prompt_tokens += e.context;
            out->session_id = e.sid;
            out->turn = e.turn + 1;
            return 1;
        }
        /* Too long for the session: it is retired, r starts a new one. */
    }
    out->new_tokens = out->prompt_tokens;
    out->session_id = s->n_sessions++;
    out->turn = 1;
    return 1;
}

static int sz_on_end(void *state, const sim_req *r, sim_time end_ns, int rejected, sim_req *out) {
    sz *s = state;
    int64_t context = (int64_t)r->prompt_tokens + r->output_tokens;
    sim_time gap;

    (void)out;
    if (r->session_id < 0 || rejected || s->ended || r->turn >= s->max_turns ||
        context + 2 > s->max_ctx)
        return 0;
    gap = draw_gap_ns(s);
    pool_add(s, r->session_id, r->turn, (int32_t)context,
             end_ns > SIM_TIME_MAX - gap ? SIM_TIME_MAX : end_ns + gap);
    return 0;
}

static void sz_destroy(void *state) {
    sz *s = state;
    if (s == NULL)
        return;
    trace_close(s->inner);
    sim_rng_destroy(s->rng);
    sim_free(s->ent);
    sim_free(s->h[H_WAIT].slot);
    sim_free(s->h[H_READY].slot);
    sim_free(s);
}

static const trace__src_ops sz_ops = {
    .next = sz_next,
    .on_end = sz_on_end,
    .destroy = sz_destroy,
};

/* ---- spec parsing ---- */

static int spec_err(sim_err *err, const char *key, const char *what, const char *got) {
    sim_err_set(err, SRC, 0, 0, "%s: expected %s, got '%.80s'", key, what, got);
    return SIM_EINVAL;
}

/* trace__spec_int for an int32_t field (lo and hi within its range). */
static int parse_int(const char *s, double lo, double hi, int32_t *out) {
    int64_t v;
    if (trace__spec_int(s, lo, hi, &v) != 0)
        return -1;
    *out = (int32_t)v;
    return 0;
}

/* gap: S, exp(mean=S) or lognormal(mean=S;sigma=X) (';' or ',' between
 * parameters). Parses val in place. */
static int parse_gap(sz *s, char *val, sim_err *err) {
    char *open = strchr(val, '('), *close = val + strlen(val), *p, *name;
    int have_mean = 0, have_sigma = 0;
    double mean = 0, sigma = 0;

    if (trace__spec_num(val, &s->gap_s) == 0) {
        if (s->gap_s < 0 || s->gap_s > MAX_GAP_S)
            return spec_err(err, "gap", GAP_WHAT, val);
        s->gap_kind = GAP_FIXED;
        return SIM_OK;
    }
    if (open == NULL || close == val || close[-1] != ')')
        return spec_err(err, "gap", GAP_WHAT, val);
    close[-1] = '\0';
    *open = '\0';
    name = trace__trim(val);
    if (strcmp(name, "exp") == 0)
        s->gap_kind = GAP_EXP;
    else if (strcmp(name, "lognormal") == 0)
        s->gap_kind = GAP_LOGNORMAL;
    else
        return spec_err(err, "gap", GAP_WHAT, name);
    for (p = open + 1; p != NULL;) {
        char *sep = strpbrk(p, ";,"), *eq, *k, *v;
        if (sep)
            *sep = '\0';
        eq = strchr(p, '=');
        if (eq == NULL)
            return spec_err(err, "gap", "parameters of the form name=value", trace__trim(p));
        *eq = '\0';
        k = trace__trim(p);
        v = trace__trim(eq + 1);
        if (strcmp(k, "mean") == 0 && !have_mean) {
            have_mean = 1;
            if (trace__spec_num(v, &mean) != 0 || mean < 0 || mean > MAX_GAP_S ||
                (s->gap_kind == GAP_LOGNORMAL && mean == 0))
                return spec_err(
                    err, "gap.mean",
                    s->gap_kind == GAP_EXP ? "seconds in [0, 1e9]" : "seconds in (0, 1e9]", v);
        } else if (strcmp(k, "sigma") == 0 && s->gap_kind == GAP_LOGNORMAL && !have_sigma) {
            have_sigma = 1;
            if (trace__spec_num(v, &sigma) != 0 || sigma < 0 || sigma > 10)
                return spec_err(err, "gap.sigma", "a number in [0, 10]", v);
        } else {
            return spec_err(err, "gap",
                            s->gap_kind == GAP_EXP ? "a parameter of exp(mean), once"
                                                   : "a parameter of lognormal(mean;sigma), once",
                            k);
        }
        p = sep ? sep + 1 : NULL;
    }
    if (!have_mean || (s->gap_kind == GAP_LOGNORMAL && !have_sigma)) {
        sim_err_set(err, SRC, 0, 0, "%s: expected a value (the parameter is required), got nothing",
                    have_mean ? "gap.sigma" : "gap.mean");
        return SIM_EINVAL;
    }
    s->gap_s = mean;
    s->gap_sigma = sigma;
    s->gap_mu = s->gap_kind == GAP_LOGNORMAL ? log(mean) - 0.5 * sigma * sigma : 0;
    return SIM_OK;
}

/* Splits copy at commas outside parentheses and reads every key. */
static int parse_spec(sz *s, char *copy, sim_err *err) {
    char *parts[MAX_ITEMS], *keys[MAX_ITEMS], *p;
    int n = 0, depth = 0, i, j, have_share = 0, rc;

    /* defaults (docs/traces.md) */
    s->gap_kind = GAP_EXP;
    s->gap_s = 60;
    s->max_turns = 8;
    s->keep = 1000;
    s->max_ctx = 32768;

    if (*trace__trim(copy) != '\0') {
        parts[n++] = copy;
        for (p = copy; *p; p++) {
            if (*p == '(')
                depth++;
            else if (*p == ')' && --depth < 0)
                break;
            else if (depth == 0 && *p == ',') {
                if (n == MAX_ITEMS)
                    break;
                *p = '\0';
                parts[n++] = p + 1;
            }
        }
        if (*p != '\0' || depth != 0)
            return spec_err(err, "spec",
                            "key=value,... with balanced parentheses and at most 8 keys", copy);
    }
    for (i = 0; i < n; i++) {
        char *eq = strchr(parts[i], '='), *k, *v;
        if (eq == NULL)
            return spec_err(err, "spec", "key=value", trace__trim(parts[i]));
        *eq = '\0';
        k = keys[i] = trace__trim(parts[i]);
        v = trace__trim(eq + 1);
        for (j = 0; j < i; j++) {
            if (strcmp(keys[j], k) == 0)
                return spec_err(err, k, "each key once", "a second value");
        }
        if (strcmp(k, "share") == 0) {
            have_share = 1;
            if (trace__spec_num(v, &s->share) != 0 || s->share < 0 || s->share > 1)
                return spec_err(err, k, "a number in [0, 1]", v);
        } else if (strcmp(k, "gap") == 0) {
            if ((rc = parse_gap(s, v, err)) != SIM_OK)
                return rc;
        } else if (strcmp(k, "max_turns") == 0) {
            if (parse_int(v, 1, MAX_TURNS, &s->max_turns) != 0)
                return spec_err(err, k, "an integer in [1, 1000000]", v);
        } else if (strcmp(k, "keep") == 0) {
            if (parse_int(v, 1, MAX_KEEP, &s->keep) != 0)
                return spec_err(err, k, "an integer in [1, 1000000] (sessions)", v);
        } else if (strcmp(k, "max_ctx") == 0) {
            if (parse_int(v, 2, INT32_MAX, &s->max_ctx) != 0)
                return spec_err(err, k, "an integer in [2, 2147483647] (tokens)", v);
        } else {
            return spec_err(err, k, "a key of " SRC " (" KEYS ")", k);
        }
    }
    if (!have_share) {
        sim_err_set(err, SRC, 0, 0, "share: expected a number in [0, 1] (required), got nothing");
        return SIM_EINVAL;
    }
    return SIM_OK;
}

/* ---- open ---- */

/* Wraps inner (taking ownership) into a source whose requests carry the
 * made-up session structure described at the top of this file. Returns
 * SIM_OK and an owned *out; on failure inner is closed, *out is NULL and
 * err names the key: SIM_EINVAL for a bad spec or a source that already has
 * content structure, SIM_ENOMEM. out may point at the caller's variable
 * holding inner (the result replaces it). */
int trace_sessionize(trace_src *inner, const char *spec, uint64_t seed, trace_src **out,
                     sim_err *err) {
    trace__impl impl;
    trace_opts o;
    char *copy = NULL;
    sz *s;
    int32_t i;
    int rc;

    *out = NULL;
    s = SIM_NEW(sz);
    if (s == NULL) {
        trace_close(inner);
        sim_err_set(err, SRC, 0, 0, "out of memory");
        return SIM_ENOMEM;
    }
    s->inner = inner;
    if (trace_has_followups(inner) || trace_src_format(inner) == TRACE_FMT_MOONCAKE) {
        sim_err_set(err, SRC, 0, 0,
                    "source: expected an open-loop trace without conversations (azure, vidur, "
                    "poisson, gamma), got %s",
                    trace_src_format(inner) == TRACE_FMT_MOONCAKE
                        ? "mooncake (its hash_ids already give the content structure)"
                        : "a source with sessions or a closed loop");
        rc = SIM_EINVAL;
        goto err;
    }
    if ((copy = sim_strdup(spec)) == NULL) {
        sim_err_set(err, SRC, 0, 0, "out of memory");
        rc = SIM_ENOMEM;
        goto err;
    }
    if ((rc = parse_spec(s, copy, err)) != SIM_OK)
        goto err;
    s->rng = sim_rng_create(seed, SIM_RNG_SESSIONS);
    s->ent = SIM_NEW_ARRAY(sz_entry, (size_t)s->keep);
    s->h[H_WAIT].slot = SIM_NEW_ARRAY(int32_t, (size_t)s->keep);
    s->h[H_READY].slot = SIM_NEW_ARRAY(int32_t, (size_t)s->keep);
    if (s->rng == NULL || s->ent == NULL || s->h[H_WAIT].slot == NULL ||
        s->h[H_READY].slot == NULL) {
        sim_err_set(err, SRC, 0, 0, "pool of %d sessions: out of memory", (int)s->keep);
        rc = SIM_ENOMEM;
        goto err;
    }
    for (i = 0; i < s->keep; i++)
        s->ent[i].newer = i + 1 < s->keep ? i + 1 : -1;
    s->free_head = 0;
    s->oldest = s->newest = -1;
    sim_free(copy);

    /* The outer source renumbers ids and shifts arrivals exactly as the inner
     * one already did (first arrival 0, no scale, no limit): both identities. */
    trace_opts_default(&o);
    o.seed = seed;
    impl.ops = &sz_ops;
    impl.state = s;
    return trace__src_wrap(&impl, trace_src_format(inner), &o, out, err);

err:
    sim_free(copy);
    sz_destroy(s);
    return rc;
}
