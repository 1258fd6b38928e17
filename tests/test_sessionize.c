/* test_sessionize.c: the made-up session model (--sessionize, traces/sessionize.c).
 *
 * A small "engine" in this file plays a source: it pulls requests in arrival
 * order, ends each one at arrival + a service time chosen by the test, and
 * reports ends through trace_on_end in time order before pulling the next
 * request (as sim/engine.c does: request j+1 is read at request j's
 * arrival). On top of it: exact turns on a 6-request fixture (context
 * accumulation, the max_ctx boundary, max_turns, the gap, the ready-first
 * pick, keep, rejections); a differential run against a naive model (a flat
 * array scanned linearly) on the shipped Azure trace, which also checks that
 * share=1 continues whenever a session is ready; share=0 leaving the trace
 * as it was; determinism; memory bounded by keep; spec errors with the exact
 * message; refused sources; fault injection for every k; and, when the
 * harness exports KVFLEET, the command end to end. */
#include "config.h"
#include "trace.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <jansson.h>

#include "mem.h"
#include "rng.h"
#include "t.h"

#define DATA  KV_TEST_DATADIR "/"
#define SMALL DATA "sessionize_small.csv"
#define AZURE KV_TEST_DATADIR "/../../data/traces/azure_conv_2023.csv"
#define MAXR  20000

/* ---- a tiny engine ---- */

typedef struct play_cfg {
    const double *svc_s; /* per request id: service time, s (NULL: svc_fixed) */
    double svc_fixed;    /* service time when svc_s is NULL, s */
    double svc_per_tok;  /* plus this many s per prompt + output token */
    const int *reject;   /* per request id: 1 = rejected at its end (NULL: none) */
    int reject_over;     /* reject when prompt + output > this (0: never) */
    int upto_next;       /* 1: before reading request j, deliver ends <= j seconds
                          * (the fixture's arrivals), as if nothing were read ahead */
    size_t *peak_mem;    /* if not NULL: highest sim_mem_current() seen */
    /* naive reference (NULL: none): called around each trace call */
    void (*ref_next)(void *ctx, const sim_req *got);
    void (*ref_end)(void *ctx, const sim_req *r, sim_time end, int rejected);
    void *ref_ctx;
} play_cfg;

typedef struct pend {
    sim_req r;
    sim_time end;
    int rejected;
} pend;

static pend pending[MAXR];

/* Delivers pending ends up to time `upto` in (end, id) order. */
static void deliver(trace_src *t, const play_cfg *c, int *n_pend, sim_time upto) {
    for (;;) {
        int i, best = -1;
        sim_req none;
        for (i = 0; i < *n_pend; i++) {
            if (pending[i].end > upto)
                continue;
            if (best < 0 || pending[i].end < pending[best].end ||
                (pending[i].end == pending[best].end && pending[i].r.id < pending[best].r.id))
                best = i;
        }
        if (best < 0)
            return;
        if (c->ref_end)
            c->ref_end(c->ref_ctx, &pending[best].r, pending[best].end, pending[best].rejected);
        T_EQ_I(trace_on_end(t, &pending[best].r, pending[best].end, pending[best].rejected, &none),
               0);
        pending[best] = pending[--*n_pend];
        if (c->peak_mem && sim_mem_current() > *c->peak_mem)
            *c->peak_mem = sim_mem_current();
    }
}

/* Plays t to its end; fills out[] (at most max) and returns the count, or a
 * negative code from trace_next. */
static int play_rc(trace_src *t, const play_cfg *c, sim_req *out, int max) {
    int n = 0, n_pend = 0, rc;
    sim_req r;
    sim_err e;
    for (;;) {
        if (c->upto_next)
            deliver(t, c, &n_pend, (sim_time)n * SIM_NS_PER_S);
        rc = trace_next(t, &r, &e);
        if (rc < 0)
            return rc;
        if (rc == 0)
            break;
        if (c->ref_next)
            c->ref_next(c->ref_ctx, &r);
        if (c->peak_mem && sim_mem_current() > *c->peak_mem)
            *c->peak_mem = sim_mem_current();
        T_ASSERT(n < max && n < MAXR);
        out[n] = r;
        pending[n_pend].r = r;
        pending[n_pend].end =
            r.arrival_ns +
            sim_time_from_s((c->svc_s ? c->svc_s[r.id] : c->svc_fixed) +
                            c->svc_per_tok * ((double)r.prompt_tokens + r.output_tokens));
        pending[n_pend].rejected =
            (c->reject && c->reject[r.id]) ||
            (c->reject_over > 0 && (int64_t)r.prompt_tokens + r.output_tokens > c->reject_over);
        n_pend++;
        n++;
        deliver(t, c, &n_pend, r.arrival_ns);
    }
    deliver(t, c, &n_pend, SIM_TIME_MAX); /* after the end: ignored */
    return n;
}

static int play(trace_src *t, const play_cfg *c, sim_req *out, int max) {
    int n = play_rc(t, c, out, max);
    T_ASSERT(n >= 0);
    return n;
}

static trace_src *open_sz(const char *path, int64_t limit, const char *spec, uint64_t seed) {
    trace_src *t = NULL;
    trace_opts o;
    sim_err e;
    char buf[1200];
    int rc;
    trace_opts_default(&o);
    o.limit = limit;
    o.seed = seed;
    if ((rc = trace_open_file(path, TRACE_FMT_AUTO, &o, &t, &e)) == SIM_OK)
        rc = trace_sessionize(t, spec, seed, &t, &e);
    if (rc != SIM_OK) {
        sim_err_format(&e, buf, sizeof buf);
        T_FAIL_("sessionize %s with '%s': %d %s", path, spec, rc, buf);
    }
    return t;
}

static void expect_turn(const sim_req *r, uint64_t id, int64_t sid, int turn, int prompt,
                        int new_tokens, int output) {
    T_EQ_I(r->id, id);
    T_EQ_I(r->arrival_ns, (int64_t)id * SIM_NS_PER_S);
    T_EQ_I(r->session_id, sid);
    T_EQ_I(r->turn, turn);
    T_EQ_I(r->prompt_tokens, prompt);
    T_EQ_I(r->new_tokens, new_tokens);
    T_EQ_I(r->output_tokens, output);
}

static sim_req got[MAXR], want[MAXR];

/* ---- exact turns on the fixture ---- */

static int run_small(const char *spec, const play_cfg *c) {
    trace_src *t = open_sz(SMALL, 0, spec, 1);
    int n = play(t, c, got, MAXR);
    trace_close(t);
    T_EQ_I(n, 6);
    return n;
}

static void test_context(void) {
    play_cfg c = {.svc_fixed = 0.5, .upto_next = 1};
    /* prompt_k = prompt_{k-1} + output_{k-1} + new_k, every turn one session */
    run_small("share=1,gap=0", &c);
    expect_turn(&got[0], 0, 0, 1, 100, 100, 10);
    expect_turn(&got[1], 1, 0, 2, 130, 20, 5);
    expect_turn(&got[2], 2, 0, 3, 165, 30, 6);
    expect_turn(&got[3], 3, 0, 4, 211, 40, 7);
    expect_turn(&got[4], 4, 0, 5, 268, 50, 8);
    expect_turn(&got[5], 5, 0, 6, 336, 60, 9);
}

static void test_max_ctx(void) {
    play_cfg c = {.svc_fixed = 0.5, .upto_next = 1};
    /* 135 + 30 + 6 = 171 fits exactly; then 171 + 2 > 171 leaves no room, so
     * session 0 ends; session 1 grows to 105, and 105 + 60 + 9 = 174 > 171
     * retires it: request 5 starts session 2. */
    run_small("share=1,gap=0,max_ctx=171", &c);
    expect_turn(&got[2], 2, 0, 3, 165, 30, 6);
    expect_turn(&got[3], 3, 1, 1, 40, 40, 7);
    expect_turn(&got[4], 4, 1, 2, 97, 50, 8);
    expect_turn(&got[5], 5, 2, 1, 60, 60, 9);
}

static void test_max_turns(void) {
    play_cfg c = {.svc_fixed = 0.5, .upto_next = 1};
    run_small("share=1,gap=0,max_turns=2", &c);
    expect_turn(&got[0], 0, 0, 1, 100, 100, 10);
    expect_turn(&got[1], 1, 0, 2, 130, 20, 5);
    expect_turn(&got[2], 2, 1, 1, 30, 30, 6);
    expect_turn(&got[3], 3, 1, 2, 76, 40, 7);
    expect_turn(&got[4], 4, 2, 1, 50, 50, 8);
    expect_turn(&got[5], 5, 2, 2, 118, 60, 9);
    /* max_turns=1: nothing continues */
    run_small("share=1,gap=0,max_turns=1", &c);
    expect_turn(&got[5], 5, 5, 1, 60, 60, 9);
}

static void test_gap(void) {
    play_cfg c = {.svc_fixed = 0.5, .upto_next = 1};
    /* ready = end + 1.5: request 1 (t=1) finds session 0 not ready (2.0),
     * request 2 (t=2) finds it ready exactly; sessions alternate. */
    run_small("share=1,gap=1.5", &c);
    expect_turn(&got[1], 1, 1, 1, 20, 20, 5);
    expect_turn(&got[2], 2, 0, 2, 140, 30, 6);
    expect_turn(&got[3], 3, 1, 2, 65, 40, 7);
    expect_turn(&got[4], 4, 0, 3, 196, 50, 8);
    expect_turn(&got[5], 5, 1, 3, 132, 60, 9);
}

/* As the engine plays it: request j+1 is read when request j arrives, so
 * request j's own end is never known in time for request j+1. With ends
 * 0.5 s after arrival, two sessions alternate. */
static void test_read_ahead(void) {
    play_cfg c = {.svc_fixed = 0.5};
    run_small("share=1,gap=0", &c);
    expect_turn(&got[0], 0, 0, 1, 100, 100, 10);
    expect_turn(&got[1], 1, 1, 1, 20, 20, 5);
    expect_turn(&got[2], 2, 0, 2, 140, 30, 6);
    expect_turn(&got[3], 3, 1, 2, 65, 40, 7);
    expect_turn(&got[4], 4, 0, 3, 196, 50, 8);
    expect_turn(&got[5], 5, 1, 3, 132, 60, 9);
}

static void test_pick_keep_reject(void) {
    /* Request 0 ends at 1.8, request 1 at 1.2, request 2 runs until 7. */
    static const double svc[6] = {1.8, 0.2, 5, 0.5, 0.5, 0.5};
    static const int rej[6] = {0, 0, 0, 1, 0, 0};
    play_cfg c = {.svc_s = svc, .upto_next = 1};
    /* At t=2 both are ready: the one ready last (session 0, 1.8) goes
     * first; session 1 (ready since 1.2) waits for request 3. */
    run_small("share=1,gap=0", &c);
    expect_turn(&got[2], 2, 0, 2, 140, 30, 6);
    expect_turn(&got[3], 3, 1, 2, 65, 40, 7);
    /* keep=1: session 1 entered first and is dropped when session 0 enters. */
    run_small("share=1,gap=0,keep=1", &c);
    expect_turn(&got[2], 2, 0, 2, 140, 30, 6);
    expect_turn(&got[3], 3, 2, 1, 40, 40, 7);
    /* A rejected turn ends its session: request 3's session 1 never returns. */
    c.reject = rej;
    run_small("share=1,gap=0", &c);
    expect_turn(&got[3], 3, 1, 2, 65, 40, 7);
    expect_turn(&got[4], 4, 2, 1, 50, 50, 8);
    expect_turn(&got[5], 5, 2, 2, 118, 60, 9);
}

/* ---- a naive reference model ---- */

typedef struct nv_ent {
    int64_t sid;
    sim_time ready;
    int32_t turn, ctx;
    uint64_t order; /* entry order into the pool */
} nv_ent;

typedef struct naive {
    double share, gap_mean;
    int keep, max_turns, max_ctx;
    gsl_rng *rng;
    nv_ent pool[1024];
    int n;
    uint64_t order;
    int64_t n_sessions;
    /* counters */
    long continued, started, retired, dropped, n_req;
} naive;

static void nv_remove(naive *m, int i) {
    memmove(&m->pool[i], &m->pool[i + 1], (size_t)(m->n - i - 1) * sizeof m->pool[0]);
    m->n--;
}

static void nv_next(void *ctx, const sim_req *g) {
    naive *m = ctx;
    double u = gsl_rng_uniform(m->rng);
    int i, best = -1;
    m->n_req++;
    if (u < m->share) {
        for (i = 0; i < m->n; i++) {
            if (m->pool[i].ready > g->arrival_ns)
                continue;
            if (best < 0 || m->pool[i].ready > m->pool[best].ready ||
                (m->pool[i].ready == m->pool[best].ready && m->pool[i].sid > m->pool[best].sid))
                best = i;
        }
    }
    if (best >= 0) {
        nv_ent e = m->pool[best];
        nv_remove(m, best);
        if ((int64_t)e.ctx + g->new_tokens + g->output_tokens <= m->max_ctx) {
            /* continued: the source must agree */
            T_EQ_I(g->session_id, e.sid);
            T_EQ_I(g->turn, e.turn + 1);
            T_EQ_I(g->prompt_tokens, e.ctx + g->new_tokens);
            m->continued++;
            return;
        }
        m->retired++;
    }
    T_EQ_I(g->session_id, m->n_sessions);
    T_EQ_I(g->turn, 1);
    T_EQ_I(g->prompt_tokens, g->new_tokens);
    m->n_sessions++;
    m->started++;
}

static void nv_end(void *ctx, const sim_req *r, sim_time end, int rejected) {
    naive *m = ctx;
    int64_t c = (int64_t)r->prompt_tokens + r->output_tokens;
    double g;
    int i, old = 0;
    if (rejected || r->turn >= m->max_turns || c + 2 > m->max_ctx)
        return;
    g = m->gap_mean > 0 ? gsl_ran_exponential(m->rng, m->gap_mean) : 0;
    if (m->n == m->keep) {
        for (i = 1; i < m->n; i++)
            if (m->pool[i].order < m->pool[old].order)
                old = i;
        nv_remove(m, old);
        m->dropped++;
    }
    T_ASSERT(m->n < (int)(sizeof m->pool / sizeof m->pool[0]));
    m->pool[m->n].sid = r->session_id;
    m->pool[m->n].ready = end + sim_time_from_s(g);
    m->pool[m->n].turn = r->turn;
    m->pool[m->n].ctx = (int32_t)c;
    m->pool[m->n].order = m->order++;
    m->n++;
}

/* Plays the Azure trace through the source and the naive model together. */
static naive *differential(double share, double gap_mean, int keep, int max_turns, int max_ctx,
                           int limit, uint64_t seed) {
    static naive m;
    char spec[256];
    play_cfg c = {.svc_fixed = 0.2, .svc_per_tok = 5e-4, .reject_over = 7000};
    trace_src *t;
    int n;

    memset(&m, 0, sizeof m);
    m.share = share;
    m.gap_mean = gap_mean;
    m.keep = keep;
    m.max_turns = max_turns;
    m.max_ctx = max_ctx;
    m.rng = sim_rng_create(seed, SIM_RNG_SESSIONS);
    T_ASSERT(m.rng != NULL);
    snprintf(spec, sizeof spec, "share=%g, gap=exp(mean=%g), keep=%d, max_turns=%d, max_ctx=%d",
             share, gap_mean, keep, max_turns, max_ctx);
    t = open_sz(AZURE, limit, spec, seed);
    c.ref_next = nv_next;
    c.ref_end = nv_end;
    c.ref_ctx = &m;
    n = play(t, &c, got, MAXR);
    trace_close(t);
    sim_rng_destroy(m.rng);
    m.rng = NULL;
    T_EQ_I(n, limit);
    T_EQ_I(m.n_req, n);
    printf("  share=%g gap=%g keep=%d: %ld continued, %ld started, %ld retired, %ld dropped\n",
           share, gap_mean, keep, m.continued, m.started, m.retired, m.dropped);
    return &m;
}

static void test_differential(void) {
    naive *m;
    m = differential(0.6, 3, 8, 4, 8192, 5000, 7);
    T_ASSERT(m->continued > 500 && m->dropped > 100);
    m = differential(0.6, 3, 1000, 4, 8192, 5000, 7);
    T_ASSERT(m->continued > 500 && m->dropped > 0);
    m = differential(0.3, 30, 64, 8, 4096, 5000, 3);
    T_ASSERT(m->continued > 500 && m->retired > 50);
    /* share=1: the naive model continues whenever a ready session fits, and
     * the source agreed on every request. */
    m = differential(1, 1, 1000, 1000000, 2147483647, 5000, 1);
    T_ASSERT(m->continued > 4000);
}

/* ---- share=0, determinism, memory ---- */

static void test_share0(void) {
    play_cfg c = {.svc_fixed = 0.2, .svc_per_tok = 5e-4};
    trace_src *t = NULL;
    int n, m, i;
    sim_err e;

    T_EQ_I(trace_open_file(AZURE, TRACE_FMT_AUTO, NULL, &t, &e), SIM_OK);
    n = play(t, &c, want, MAXR);
    trace_close(t);
    t = open_sz(AZURE, 0, "share=0", 1);
    m = play(t, &c, got, MAXR);
    trace_close(t);
    T_EQ_I(n, 19366);
    T_EQ_I(m, n);
    for (i = 0; i < n; i++) {
        T_EQ_I(got[i].id, want[i].id);
        T_EQ_I(got[i].arrival_ns, want[i].arrival_ns);
        T_EQ_I(got[i].prompt_tokens, want[i].prompt_tokens);
        T_EQ_I(got[i].new_tokens, want[i].new_tokens);
        T_EQ_I(got[i].output_tokens, want[i].output_tokens);
        T_EQ_I(got[i].session_id, i); /* every request its own session */
        T_EQ_I(got[i].turn, 1);
    }
}

static int same(const sim_req *a, const sim_req *b, int n) {
    int i;
    for (i = 0; i < n; i++) {
        if (a[i].id != b[i].id || a[i].arrival_ns != b[i].arrival_ns ||
            a[i].prompt_tokens != b[i].prompt_tokens || a[i].new_tokens != b[i].new_tokens ||
            a[i].output_tokens != b[i].output_tokens || a[i].session_id != b[i].session_id ||
            a[i].turn != b[i].turn)
            return 0;
    }
    return 1;
}

static void test_determinism(void) {
    static const char *spec = "share=0.5,gap=lognormal(mean=5;sigma=1),keep=50,max_ctx=8192";
    play_cfg c = {.svc_fixed = 0.2, .svc_per_tok = 5e-4};
    trace_src *t;
    int n, m;

    t = open_sz(AZURE, 3000, spec, 42);
    n = play(t, &c, want, MAXR);
    trace_close(t);
    t = open_sz(AZURE, 3000, spec, 42);
    m = play(t, &c, got, MAXR);
    trace_close(t);
    T_EQ_I(m, n);
    T_ASSERT(same(got, want, n));
    t = open_sz(AZURE, 3000, spec, 43);
    m = play(t, &c, got, MAXR);
    trace_close(t);
    T_EQ_I(m, n);
    T_ASSERT(!same(got, want, n));
}

static void test_memory(void) {
    play_cfg c = {.svc_fixed = 0.2, .svc_per_tok = 5e-4};
    size_t base, opened, peak = 0, opened_big;
    trace_src *t;

    /* keep=16 over the whole trace: nothing grows after the open beyond the
     * reader's line buffer. */
    base = sim_mem_current();
    t = open_sz(AZURE, 0, "share=0.9,gap=exp(mean=1),keep=16,max_turns=1000", 1);
    opened = sim_mem_current() - base;
    c.peak_mem = &peak;
    T_EQ_I(play(t, &c, got, MAXR), 19366);
    trace_close(t);
    T_LE_I(peak - base, opened + 256);
    /* The pool is preallocated: keep=10000 costs its slots up front. */
    t = open_sz(AZURE, 0, "share=0.9,keep=10000", 1);
    opened_big = sim_mem_current() - base;
    trace_close(t);
    T_LE_I(opened + (10000 - 16) * 40, opened_big);
    T_LE_I(opened_big, opened + (10000 - 16) * 64);
}

/* ---- errors ---- */

static void expect_spec_error(const char *spec, int want_rc, const char *want_msg) {
    size_t base = sim_mem_current();
    trace_src *t = NULL;
    sim_err e;
    char buf[1200];
    int rc;
    T_EQ_I(trace_open_file(SMALL, TRACE_FMT_AUTO, NULL, &t, &e), SIM_OK);
    sim_err_clear(&e);
    rc = trace_sessionize(t, spec, 1, &t, &e); /* out aliases inner */
    T_EQ_I(rc, want_rc);
    T_ASSERT(t == NULL);
    T_EQ_I(sim_mem_current(), base); /* inner freed exactly once */
    sim_err_format(&e, buf, sizeof buf);
    T_STREQ(buf, want_msg);
}

static void test_spec_errors(void) {
    static const struct {
        const char *spec, *msg;
    } cases[] = {
        {"", "--sessionize: share: expected a number in [0, 1] (required), got nothing"},
        {"gap=5", "--sessionize: share: expected a number in [0, 1] (required), got nothing"},
        {"share=1.5", "--sessionize: share: expected a number in [0, 1], got '1.5'"},
        {"share=-0.1", "--sessionize: share: expected a number in [0, 1], got '-0.1'"},
        {"share=abc", "--sessionize: share: expected a number in [0, 1], got 'abc'"},
        {"share=0.3,share=0.4",
         "--sessionize: share: expected each key once, got 'a second value'"},
        {"share=0.3,bogus=1", "--sessionize: bogus: expected a key of --sessionize (share, gap, "
                              "max_turns, keep, max_ctx), got 'bogus'"},
        {"share=0.3,max_turns", "--sessionize: spec: expected key=value, got 'max_turns'"},
        {"share=0.3,gap=exp(mean=1", "--sessionize: spec: expected key=value,... with balanced "
                                     "parentheses and at most 8 keys, got 'share=0.3'"},
        {"share=0.3,gap=-1", "--sessionize: gap: expected seconds >= 0, exp(mean=S) or "
                             "lognormal(mean=S;sigma=X), got '-1'"},
        {"share=0.3,gap=uniform(a=1)", "--sessionize: gap: expected seconds >= 0, exp(mean=S) or "
                                       "lognormal(mean=S;sigma=X), got 'uniform'"},
        {"share=0.3,gap=exp(mean=-1)", "--sessionize: gap.mean: expected seconds in [0, 1e9], "
                                       "got '-1'"},
        {"share=0.3,gap=exp(rate=1)", "--sessionize: gap: expected a parameter of exp(mean), "
                                      "once, got 'rate'"},
        {"share=0.3,gap=exp(mean=1;mean=2)", "--sessionize: gap: expected a parameter of "
                                             "exp(mean), once, got 'mean'"},
        {"share=0.3,gap=lognormal(mean=0;sigma=1)", "--sessionize: gap.mean: expected seconds in "
                                                    "(0, 1e9], got '0'"},
        {"share=0.3,gap=lognormal(mean=5)", "--sessionize: gap.sigma: expected a value (the "
                                            "parameter is required), got nothing"},
        {"share=0.3,gap=lognormal(mean=5;sigma=11)", "--sessionize: gap.sigma: expected a number "
                                                     "in [0, 10], got '11'"},
        {"share=0.3,max_turns=0", "--sessionize: max_turns: expected an integer in [1, 1000000], "
                                  "got '0'"},
        {"share=0.3,max_turns=2.5", "--sessionize: max_turns: expected an integer in [1, "
                                    "1000000], got '2.5'"},
        {"share=0.3,keep=0", "--sessionize: keep: expected an integer in [1, 1000000] "
                             "(sessions), got '0'"},
        {"share=0.3,keep=2e6", "--sessionize: keep: expected an integer in [1, 1000000] "
                               "(sessions), got '2e6'"},
        {"share=0.3,max_ctx=1", "--sessionize: max_ctx: expected an integer in [2, 2147483647] "
                                "(tokens), got '1'"},
        {"share=0.3,max_ctx=3000000000", "--sessionize: max_ctx: expected an integer in [2, "
                                         "2147483647] (tokens), got '3000000000'"},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_spec_error(cases[i].spec, SIM_EINVAL, cases[i].msg);
}

static void expect_refused(trace_src *t, const char *want_msg) {
    sim_err e;
    char buf[1200];
    T_EQ_I(trace_sessionize(t, "share=0.5", 1, &t, &e), SIM_EINVAL);
    T_ASSERT(t == NULL);
    sim_err_format(&e, buf, sizeof buf);
    T_STREQ(buf, want_msg);
}

static void test_refused(void) {
    static const char *closed = "--sessionize: source: expected an open-loop trace without "
                                "conversations (azure, vidur, poisson, gamma), got a source with "
                                "sessions or a closed loop";
    trace_src *t = NULL;
    trace_opts o;
    sim_err e;
    sim_req r;

    trace_opts_default(&o);
    T_EQ_I(trace_open_file(DATA "sessions_small.csv", TRACE_FMT_AUTO, NULL, &t, &e), SIM_OK);
    expect_refused(t, closed);
    T_EQ_I(trace_open_synthetic("closed,concurrency=2,isl=5,osl=5,requests=9", &o, &t, &e), SIM_OK);
    expect_refused(t, closed);
    T_EQ_I(
        trace_open_synthetic("sessions,rate=1,turns=2,think=1,isl=5,osl=5,sessions=3", &o, &t, &e),
        SIM_OK);
    expect_refused(t, closed);
    T_EQ_I(trace_open_file(DATA "mooncake_small.jsonl", TRACE_FMT_AUTO, NULL, &t, &e), SIM_OK);
    expect_refused(t, "--sessionize: source: expected an open-loop trace without conversations "
                      "(azure, vidur, poisson, gamma), got mooncake (its hash_ids already give "
                      "the content structure)");
    /* twice: a sessionized source has sessions */
    t = open_sz(SMALL, 0, "share=0.5", 1);
    expect_refused(t, closed);

    /* a synthetic open-loop source works, and vidur reports its format */
    T_EQ_I(trace_open_synthetic("poisson,rate=5,requests=10,isl=5,osl=5", &o, &t, &e), SIM_OK);
    T_EQ_I(trace_sessionize(t, "share=0.5", 1, &t, &e), SIM_OK);
    T_EQ_I(trace_src_format(t), TRACE_FMT_AUTO);
    T_EQ_I(trace_next(t, &r, &e), 1);
    T_EQ_I(r.session_id, 0);
    /* an end the wrapper never produced is ignored */
    r.session_id = -1;
    T_EQ_I(trace_on_end(t, &r, r.arrival_ns, 0, &r), 0);
    trace_close(t);
    T_EQ_I(trace_open_file(DATA "vidur_small.csv", TRACE_FMT_AUTO, NULL, &t, &e), SIM_OK);
    T_EQ_I(trace_sessionize(t, "share=0.5", 1, &t, &e), SIM_OK);
    T_EQ_I(trace_src_format(t), TRACE_FMT_VIDUR);
    trace_close(t);
}

/* ---- fault injection ---- */

static char last_msg[1200];

static int chaos_run(const char *path, const char *spec) {
    play_cfg c = {.svc_fixed = 0.5};
    trace_src *t = NULL;
    sim_err e;
    int rc;
    sim_err_clear(&e);
    if ((rc = trace_open_file(path, TRACE_FMT_AUTO, NULL, &t, &e)) == SIM_OK &&
        (rc = trace_sessionize(t, spec, 1, &t, &e)) == SIM_OK) {
        rc = play_rc(t, &c, got, MAXR);
        if (rc > 0)
            rc = SIM_OK;
        else if (rc < 0)
            T_EQ_I(trace_next(t, &got[0], &e), rc); /* sticky */
    }
    trace_close(t);
    sim_err_format(&e, last_msg, sizeof last_msg);
    if (rc < 0 && e.msg[0] == '\0')
        T_FAIL_("error %d without a message", rc);
    return rc;
}

static void chaos(const char *path, const char *spec) {
    uint64_t k;
    for (k = 1;; k++) {
        size_t base = sim_mem_current();
        int rc;
        sim_mem_fail_at(k);
        rc = chaos_run(path, spec);
        sim_mem_fail_at(0);
        T_EQ_I(sim_mem_current(), base);
        if (rc == SIM_OK)
            break;
        if (rc != SIM_ENOMEM)
            T_FAIL_("%s: allocation %llu failed: got %d, want SIM_ENOMEM (%s)", spec,
                    (unsigned long long)k, rc, last_msg);
        T_ASSERT(k < 10000);
    }
    T_ASSERT(k > 3);
}

static void test_fault_injection(void) {
    chaos(SMALL, "share=1,gap=0");
    chaos(DATA "azure_small.csv", "share=0.5,gap=exp(mean=1),keep=3");
    chaos(DATA "vidur_small.csv", "share=0.5");
}

/* ---- the command, end to end ---- */

/* Runs kvfleet on the first 2000 requests of the shipped trace and returns
 * prefix_hit_rate_tokens. */
static double cli_hit_rate(const char *kv, const char *extra) {
    char cmd[2048];
    json_t *root, *v;
    json_error_t je;
    FILE *p;
    double rate;
    snprintf(cmd, sizeof cmd, "'%s' run --trace '%s' --limit 2000 %s --no-db --json 2>/dev/null",
             kv, AZURE, extra);
    p = popen(cmd, "r");
    T_ASSERT(p != NULL);
    root = json_loadf(p, 0, &je);
    T_EQ_I(pclose(p), 0);
    if (root == NULL)
        T_FAIL_("%s: no JSON: %s", cmd, je.text);
    v = json_object_get(root, "prefix_hit_rate_tokens");
    T_ASSERT(json_is_number(v));
    rate = json_number_value(v);
    T_EQ_I(json_integer_value(json_object_get(root, "requests")), 2000);
    json_decref(root);
    printf("  %s: prefix_hit_rate_tokens %.4f\n", extra[0] ? extra : "(no --sessionize)", rate);
    return rate;
}

static void test_cli(void) {
    const char *kv = getenv("KVFLEET");
    char cmd[1200];
    if (kv == NULL || kv[0] == '\0') {
        printf("  KVFLEET not set: end-to-end part skipped\n");
        return;
    }
    T_EQ_I(cli_hit_rate(kv, ""), 0);
    T_ASSERT(cli_hit_rate(kv, "--sessionize 'share=0.5,gap=exp(mean=60),max_turns=8,keep=1000,"
                              "max_ctx=8192'") > 0);
    /* a bad spec fails the run with the message */
    snprintf(cmd, sizeof cmd,
             "'%s' run --trace '%s' --limit 10 --sessionize share=2 --no-db 2>&1 | grep -q "
             "\"share: expected a number in \\[0, 1\\], got '2'\"",
             kv, AZURE);
    T_EQ_I(system(cmd), 0);
}

/* ---- main ---- */

static void run(const char *name, void (*fn)(void)) {
    size_t base = sim_mem_current();
    printf("test_sessionize: %s\n", name);
    fflush(stdout);
    fn();
    T_EQ_I(sim_mem_current(), base);
}

int main(void) {
    run("context accumulation", test_context);
    run("max_ctx", test_max_ctx);
    run("max_turns", test_max_turns);
    run("gap", test_gap);
    run("pick order, keep, rejection", test_pick_keep_reject);
    run("read one ahead", test_read_ahead);
    run("naive model", test_differential);
    run("share=0", test_share0);
    run("determinism", test_determinism);
    run("bounded memory", test_memory);
    run("spec errors", test_spec_errors);
    run("refused sources", test_refused);
    run("fault injection", test_fault_injection);
    run("kvfleet run", test_cli);
    printf("test_sessionize: all passed\n");
    return 0;
}
