/* test_engine.c: the event loop and scheduler on hand-computed scenarios.
 *
 * A test backend returns a step duration from a formula of the batch
 * (5 ms + 1 ms per prefill token + 10 ms when any sequence decodes), so
 * TTFT, TPOT and finish times can be worked out by hand and compared
 * exactly (to the nanosecond). Also: chunked prefill, batching of a late
 * arrival, preemption under a tiny KV pool with invariant checks after
 * every step, each rejection reason, closed-loop follow-ups, determinism,
 * conservation, and every allocation failing in turn. */
#include "config.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_statistics_double.h>

#include "engine.h"
#include "mem.h"
#include "rng.h"
#include "t.h"

/* ---- a backend with known step times ---- */

static double formula_s(const sched_batch *b) {
    return 0.005 + 0.001 * (double)b->agg.prefill_tokens + (b->n_decode > 0 ? 0.010 : 0.0);
}

static int fx_open(void **ctx, const be_args *a, sim_err *err) {
    (void)a;
    (void)err;
    *ctx = NULL;
    return SIM_OK;
}

static int fx_step(void *ctx, int replica, const sched *s, const sched_batch *b, be_result *out,
                   sim_err *err) {
    (void)ctx;
    (void)replica;
    (void)s;
    (void)err;
    out->dur_s = formula_s(b);
    return SIM_OK;
}

static void fx_close(void *ctx) {
    (void)ctx;
}

/* A backend that checks, at every step, what a real executor would read:
 * the decode list matches the batch's count and summed context, and every
 * sequence's block table holds exactly its tokens (lazy bookkeeping against
 * a per-sequence walk). */
static int64_t checked_steps;

static int chk_step(void *ctx, int replica, const sched *s, const sched_batch *b, be_result *out,
                    sim_err *err) {
    static sched_seq *list[4096];
    int n = sched_decode_list(s, list, 4096), i;
    int64_t sum = 0;
    T_EQ_I(n, b->n_decode);
    for (i = 0; i < n; i++) {
        int64_t kv = sched_seq_kv_tokens(s, list[i]);
        sum += kv;
        T_EQ_I(list[i]->n_blocks, (kv + 3) / 4); /* block_tokens 4 in these tests */
        T_ASSERT(sched_seq_generated(s, list[i]) <=
                 list[i]->req.output_tokens); /* after the step */
    }
    T_EQ_I(sum, b->agg.decode_ctx);
    for (i = 0; i < b->n_chunks; i++) {
        const sched_chunk *c = &b->chunks[i];
        T_EQ_I(c->seq->n_blocks, (c->cached + c->tokens + 3) / 4);
    }
    checked_steps++;
    return fx_step(ctx, replica, s, b, out, err);
}

static const struct be_ops chk_ops = {
    .version = BE_VERSION, .name = "check", .open = fx_open, .step = chk_step, .close = fx_close};

static const struct be_ops fx_ops = {
    .version = BE_VERSION, .name = "fixed", .open = fx_open, .step = fx_step, .close = fx_close};

/* ---- an array source, optionally closed-loop ---- */

typedef struct arr_src {
    sim_req *r;
    int n, next;
    int closed_total; /* >0: closed loop, each end releases one more until this many */
    int emitted;
} arr_src;

static int arr_next(void *ctx, sim_req *out, sim_err *err) {
    arr_src *a = ctx;
    (void)err;
    if (a->next >= a->n)
        return 0;
    *out = a->r[a->next++];
    a->emitted++;
    return 1;
}

static int arr_on_end(void *ctx, const sim_req *r, sim_time end, int rejected, sim_req *out) {
    arr_src *a = ctx;
    (void)rejected;
    if (a->closed_total == 0 || a->emitted >= a->closed_total)
        return 0;
    *out = *r;
    out->id = (uint64_t)a->emitted++;
    out->arrival_ns = end;
    return 1;
}

/* ---- a sink that keeps request rows ---- */

typedef struct rows {
    met_request r[4096];
    int n;
    int64_t steps;
} rows;

static int keep_request(void *ctx, const met_request *r) {
    rows *k = ctx;
    if (k->n < 4096)
        k->r[k->n++] = *r;
    return SIM_OK;
}

static int count_step(void *ctx, const met_step *s) {
    rows *k = ctx;
    T_ASSERT(s->kv_blocks_used <= s->kv_blocks_total); /* no tier over capacity */
    k->steps++;
    return SIM_OK;
}

static const met_request *row_of(const rows *k, uint64_t id) {
    int i;
    for (i = 0; i < k->n; i++)
        if (k->r[i].id == id)
            return &k->r[i];
    T_FAIL_("no row for request %llu", (unsigned long long)id);
    return NULL;
}

/* ---- fixtures ---- */

static perf_ctx pctx;

static void setup_perf(void) {
    sim_model m;
    sim_gpu g;
    perf_calib c;
    sim_err err;
    memset(&m, 0, sizeof m);
    memset(&g, 0, sizeof g);
    snprintf(m.name, sizeof m.name, "test-model");
    m.n_layers = 2;
    m.hidden = 256;
    m.n_heads = 4;
    m.n_kv_heads = 2;
    m.head_dim = 64;
    m.intermediate = 512;
    m.vocab = 1024;
    m.max_ctx = 128;
    m.w_dtype = SIM_DT_BF16;
    m.kv_dtype = SIM_DT_BF16;
    snprintf(g.name, sizeof g.name, "test-gpu");
    g.hbm_bytes = 80e9;
    g.hbm_bw = 3.35e12;
    g.flops_bf16 = 989e12;
    g.flops_fp8 = 1979e12;
    g.n_sm = 132;
    g.pcie_bw = 64e9;
    g.nvlink_bw = 450e9;
    g.gpus_per_node = 8;
    g.host_mem_bytes = 2e12;
    perf_calib_default(&c, &g);
    T_EQ_I(perf_ctx_init(&pctx, &m, &g, &c, 1, &err), SIM_OK);
}

static eng_config base_config(void) {
    eng_config c;
    memset(&c, 0, sizeof c);
    c.perf = &pctx;
    c.replicas = 1;
    c.sched.max_num_seqs = 64;
    c.sched.max_batched_tokens = 4096;
    c.sched.block_tokens = 4;
    c.sched.kv_blocks = 1000;
    c.sched.chunked_prefill = 1;
    c.sched.watermark = 0;
    c.sched.max_ctx = 128;
    c.steps_sample = 1;
    c.timeline_s = 0.05;
    c.check = 1;
    return c;
}

/* LRU prefix caching on 4-token blocks, trace hashes of 512 tokens. */
static void use_lru4(eng_config *c) {
    evict_params ep;
    sim_err err;
    T_EQ_I(evict_spec_parse("lru", &c->sched.policy, &ep, &err), SIM_OK);
    ep.block_tokens = 4;
    c->sched.policy_params = ep;
    c->sched.hash_block_tokens = 512;
}

static sim_req req(uint64_t id, double t, int p, int o) {
    sim_req r;
    memset(&r, 0, sizeof r);
    r.id = id;
    r.arrival_ns = sim_time_from_s(t);
    r.prompt_tokens = p;
    r.new_tokens = p;
    r.output_tokens = o;
    r.session_id = -1;
    return r;
}

static int run_on(const struct be_ops *ops, const eng_config *c, sim_req *r, int n,
                  int closed_total, rows *k, met_summary *s) {
    arr_src a = {r, n, 0, closed_total, 0};
    eng_source src = {&a, arr_next, arr_on_end};
    met_sink sink = {k, keep_request, count_step, NULL};
    be b;
    sim_err err;
    int rc;
    sim_err_clear(&err);
    T_EQ_I(be_open(&b, ops, &(be_args){0}, &err), SIM_OK);
    memset(k, 0, sizeof *k);
    rc = eng_run(c, &src, &b, &sink, s, &err);
    if (rc != SIM_OK && getenv("T_VERBOSE"))
        fprintf(stderr, "eng_run: %s\n", err.msg);
    be_close(&b);
    if (rc == SIM_OK) {
        T_EQ_I(s->completed + s->rejected, s->requests); /* conservation */
        T_EQ_I(k->n, s->requests);                       /* every request ends exactly once */
    }
    return rc;
}

static int run(const eng_config *c, sim_req *r, int n, int closed_total, rows *k, met_summary *s) {
    return run_on(&fx_ops, c, r, n, closed_total, k, s);
}

static void random_requests(sim_req *r, int n, uint64_t seed);
static void run_ff_pair(eng_config *c, sim_req *r, int n, rows *k1, met_summary *s1, rows *k2,
                        met_summary *s2);

/* ---- scenarios ---- */

static void test_one_request(void) {
    eng_config c = base_config();
    sim_req r[1] = {req(0, 0.0, 100, 10)};
    rows k;
    met_summary s;
    const met_request *x;
    T_EQ_I(run(&c, r, 1, 0, &k, &s), SIM_OK);
    x = row_of(&k, 0);
    /* step 0: prefill 100 tokens = 5 + 100 ms; then 9 decode steps of 15 ms */
    T_NEAR(x->first_token_s, 0.105, 1e-9);
    T_NEAR(x->finish_s, 0.105 + 9 * 0.015, 1e-9);
    T_NEAR(s.ttft_p50_s, 0.105, 1e-9);
    T_NEAR(s.tpot_p50_s, 0.015, 1e-9);
    T_NEAR(s.e2e_p99_s, 0.24, 1e-9);
    T_EQ_I(s.steps, 10);
    T_EQ_I(k.steps, 10);
    T_EQ_I(s.output_tokens, 10);
    T_NEAR(s.output_tokens_per_s, 10 / 0.24, 1e-6);
    T_NEAR(s.mean_batch_size, 1.0, 1e-12);
    T_EQ_I(s.preemptions, 0);
}

static void test_chunked_prefill(void) {
    eng_config c = base_config();
    sim_req r[1] = {req(0, 0.0, 100, 10)};
    rows k;
    met_summary s;
    c.sched.max_batched_tokens = 32;
    c.sched.max_num_seqs = 32;
    T_EQ_I(run(&c, r, 1, 0, &k, &s), SIM_OK);
    /* chunks 32, 32, 32, 4: four steps of 5 ms overhead + 100 ms of tokens */
    T_NEAR(row_of(&k, 0)->first_token_s, 4 * 0.005 + 0.100, 1e-9);
    T_EQ_I(s.steps, 4 + 9);
    /* without chunking the prompt waits for a budget it can never get in one go */
    c.sched.chunked_prefill = 0;
    c.sched.max_batched_tokens = 128;
    T_EQ_I(run(&c, r, 1, 0, &k, &s), SIM_OK);
    T_NEAR(row_of(&k, 0)->first_token_s, 0.105, 1e-9);
}

static void test_two_requests(void) {
    eng_config c = base_config();
    sim_req r[2] = {req(0, 0.0, 100, 3), req(1, 0.05, 50, 2)};
    rows k;
    met_summary s;
    T_EQ_I(run(&c, r, 2, 0, &k, &s), SIM_OK);
    /* step 0 [0, .105): prefill R0. step 1 [.105, .170): decode R0 + prefill R1 (50).
     * step 2 [.170, .185): decode both; R0 ends (3 tokens), R1 ends (2 tokens). */
    T_NEAR(row_of(&k, 0)->first_token_s, 0.105, 1e-9);
    T_NEAR(row_of(&k, 1)->first_token_s, 0.170, 1e-9);
    T_NEAR(row_of(&k, 0)->finish_s, 0.185, 1e-9);
    T_NEAR(row_of(&k, 1)->finish_s, 0.185, 1e-9);
    T_EQ_I(s.steps, 3);
    /* time-weighted batch: (1 x .105 + 2 x .065 + 2 x .015) / .185 */
    T_NEAR(s.mean_batch_size, (0.105 + 2 * 0.065 + 2 * 0.015) / 0.185, 1e-9);
}

static void test_preemption(void) {
    eng_config c = base_config();
    sim_req r[3] = {req(0, 0.0, 12, 20), req(1, 0.0, 12, 20), req(2, 0.0, 12, 20)};
    rows k;
    met_summary s;
    /* 10 blocks of 4 tokens: three sequences that grow to 31 tokens cannot all stay */
    c.sched.kv_blocks = 10;
    T_EQ_I(run(&c, r, 3, 0, &k, &s), SIM_OK);
    T_EQ_I(s.completed, 3);
    T_ASSERT(s.preemptions > 0);
    T_ASSERT(s.recomputed_tokens > 0);
    T_EQ_I(row_of(&k, 0)->preemptions, 0); /* the oldest is never the victim */
    T_ASSERT(row_of(&k, 2)->preemptions > 0);
    T_EQ_I(row_of(&k, 2)->output_tokens, 20);
    /* preemption by swap: the victims' KV goes to host swap space and comes
     * back over PCIe; nothing is recomputed */
    c.sched.preempt_swap = 1;
    c.sched.swap_blocks = 1000;
    c.sched.block_bytes = 1e6;
    c.sched.pcie_bw = 1e9;
    c.sched.pcie_latency_s = 0.001;
    c.sched.copies_per_block = 1;
    T_EQ_I(run(&c, r, 3, 0, &k, &s), SIM_OK);
    T_EQ_I(s.completed, 3);
    T_ASSERT(s.preemptions > 0);
    T_EQ_I(s.preemptions_swapped, s.preemptions);
    T_EQ_I(s.recomputed_tokens, 0);
    T_ASSERT(s.pcie_bytes_d2h > 0 && s.pcie_bytes_h2d > 0);
    T_ASSERT(s.pcie_bytes_h2d <= s.pcie_bytes_d2h); /* back at most what went out */
    /* no swap space: it falls back to recompute */
    c.sched.swap_blocks = 0;
    T_EQ_I(run(&c, r, 3, 0, &k, &s), SIM_OK);
    T_EQ_I(s.preemptions_swapped, 0);
    T_ASSERT(s.recomputed_tokens > 0);
    c.sched.preempt_swap = 0;
    /* with room for everyone, nothing is preempted */
    c.sched.kv_blocks = 100;
    T_EQ_I(run(&c, r, 3, 0, &k, &s), SIM_OK);
    T_EQ_I(s.preemptions, 0);
}

static void test_rejections(void) {
    eng_config c = base_config();
    rows k;
    met_summary s;
    sim_req r[4];
    /* context: 100 + 50 > 128; KV: (30 + 20 - 1) / 4 = 13 blocks > 10 */
    c.sched.kv_blocks = 10;
    r[0] = req(0, 0.0, 100, 50);
    r[1] = req(1, 0.0, 30, 20);
    r[2] = req(2, 0.0, 10, 2);
    T_EQ_I(run(&c, r, 3, 0, &k, &s), SIM_OK);
    T_EQ_I(row_of(&k, 0)->reject, MET_REJECT_CONTEXT);
    T_EQ_I(row_of(&k, 1)->reject, MET_REJECT_KV_CAPACITY);
    T_EQ_I(row_of(&k, 2)->reject, MET_REJECT_NONE);
    T_EQ_I(s.rejected_context, 1);
    T_EQ_I(s.rejected_kv_capacity, 1);
    T_EQ_I(s.completed, 1);
    /* queue full: the queue holds one request; three arrive together */
    c = base_config();
    c.sched.max_queue = 1;
    r[0] = req(0, 0.0, 10, 2);
    r[1] = req(1, 0.0, 10, 2);
    r[2] = req(2, 0.0, 10, 2);
    T_EQ_I(run(&c, r, 3, 0, &k, &s), SIM_OK);
    T_EQ_I(s.rejected_queue_full, 2);
    T_EQ_I(row_of(&k, 1)->reject, MET_REJECT_QUEUE_FULL);
    T_ASSERT(isnan(row_of(&k, 1)->first_token_s));
    /* timeout: one sequence at a time; the second waits past 50 ms */
    c = base_config();
    c.sched.max_num_seqs = 1;
    c.sched.max_queue_ns = sim_time_from_s(0.05);
    r[0] = req(0, 0.0, 100, 10);
    r[1] = req(1, 0.01, 10, 2);
    T_EQ_I(run(&c, r, 2, 0, &k, &s), SIM_OK);
    T_EQ_I(row_of(&k, 1)->reject, MET_REJECT_QUEUE_TIMEOUT);
    T_NEAR(row_of(&k, 1)->finish_s, 0.105, 1e-9); /* noticed when the next step forms */
    T_EQ_I(s.rejected_queue_timeout, 1);
}

/* Without chunked prefill: a prompt beyond the token budget can never be
 * scheduled and is rejected at arrival; a preempted request whose prompt and
 * generated tokens outgrew the budget still resumes (its recompute chunks). */
static void test_unchunked(void) {
    eng_config c = base_config();
    rows k;
    met_summary s;
    sim_req r[3] = {req(0, 0.0, 70, 5), req(1, 0.0, 20, 40), req(2, 0.0, 20, 40)};
    c.sched.chunked_prefill = 0;
    c.sched.max_batched_tokens = 64;
    c.sched.max_num_seqs = 8;
    c.sched.kv_blocks = 20; /* two sequences growing to 59 tokens cannot both stay */
    T_EQ_I(run(&c, r, 3, 0, &k, &s), SIM_OK);
    T_EQ_I(row_of(&k, 0)->reject, MET_REJECT_BATCH_BUDGET);
    T_EQ_I(s.rejected_batch_budget, 1);
    T_EQ_I(s.completed, 2);
    T_ASSERT(s.preemptions > 0);
    T_EQ_I(row_of(&k, 2)->output_tokens, 40);
}

/* Without chunked prefill a preempted request's recompute is split only
 * when it could never fit the budget (vLLM refuses such a budget; kvfleet
 * lets it resume): one that fits waits, as vLLM's waiting loop does, for a
 * step with room for all of it. Here every recompute (at most 24 + 27
 * tokens) fits the 56-token budget, so no chunk may be partial; decodes
 * take part of it, so the old rule split recomputes. */
static int64_t partial_chunks;

static int whole_step(void *ctx, int replica, const sched *s, const sched_batch *b, be_result *out,
                      sim_err *err) {
    int i;
    for (i = 0; i < b->n_chunks; i++)
        partial_chunks += !b->chunks[i].samples;
    return chk_step(ctx, replica, s, b, out, err);
}

static const struct be_ops whole_ops = {
    .version = BE_VERSION, .name = "whole", .open = fx_open, .step = whole_step, .close = fx_close};

static void test_unchunked_resume(void) {
    static sim_req r[300];
    static rows k1, k2;
    eng_config c = base_config();
    met_summary s1, s2;
    int i;
    c.sched.chunked_prefill = 0;
    c.sched.max_batched_tokens = 56;
    c.sched.max_num_seqs = 16;
    c.sched.kv_blocks = 60;
    for (i = 0; i < 300; i++)
        r[i] = req((uint64_t)i, 0.002 * i, 16 + i % 9, 12 + i % 17);
    partial_chunks = 0;
    T_EQ_I(run_on(&whole_ops, &c, r, 300, 0, &k1, &s1), SIM_OK);
    T_EQ_I(s1.completed, 300);
    T_ASSERT(s1.preemptions > 0);
    T_EQ_I(partial_chunks, 0);
    run_ff_pair(&c, r, 300, &k1, &s1, &k2, &s2); /* decode runs see the same rule */
}

/* Prefix caching, hand-computed: turn 1 (40 prompt, 10 output tokens)
 * leaves 49 tokens of KV, 12 full blocks of 4, cached when it finishes.
 * Turn 2 (prompt 70 = 40 + 10 + 20 new) finds those 48 tokens and computes
 * only 22: TTFT = 5 ms + 22 ms. Of the 2 context tokens of the partial
 * block, the first was computed in turn 1 and is recomputed; the second,
 * turn 1's last output token, was never fed back, so it is new. Without a
 * cache it computes all 70 and recomputes 49. */
static void test_prefix_cache(void) {
    eng_config c = base_config();
    rows k;
    met_summary s;
    sim_req r[2] = {req(0, 0.0, 40, 10), req(1, 1.0, 70, 3)};
    evict_params ep;
    sim_err err;
    r[0].session_id = r[1].session_id = 7;
    r[0].turn = 1;
    r[1].turn = 2;
    r[1].new_tokens = 20;
    use_lru4(&c);
    T_EQ_I(run(&c, r, 2, 0, &k, &s), SIM_OK);
    T_EQ_I(row_of(&k, 1)->hit_tokens, 48);
    T_NEAR(row_of(&k, 1)->first_token_s - 1.0, 0.005 + 0.022, 1e-9);
    T_EQ_I(row_of(&k, 1)->recomputed_tokens, 1);
    T_NEAR(s.prefix_hit_rate_tokens, 48.0 / 110.0, 1e-12);
    T_NEAR(s.prefix_hit_rate_requests, 0.5, 1e-12);
    /* idle TTL shorter than the gap between the turns: turn 1's blocks have
     * expired when turn 2 is scheduled (the full simulator expires them at
     * every step) */
    T_EQ_I(evict_spec_parse("ttl:idle=0.5s", &c.sched.policy, &ep, &err), SIM_OK);
    ep.block_tokens = 4;
    c.sched.policy_params = ep;
    T_EQ_I(run(&c, r, 2, 0, &k, &s), SIM_OK);
    T_EQ_I(row_of(&k, 1)->hit_tokens, 0);
    T_EQ_I(s.evictions, 12);
    /* prefix caching off: everything turn 1 computed (49 tokens) is computed again */
    c.sched.policy = NULL;
    T_EQ_I(run(&c, r, 2, 0, &k, &s), SIM_OK);
    T_EQ_I(row_of(&k, 1)->hit_tokens, 0);
    T_EQ_I(row_of(&k, 1)->recomputed_tokens, 49);
    T_NEAR(row_of(&k, 1)->first_token_s - 1.0, 0.005 + 0.070, 1e-9);
}

/* The host tier: turn 1 of session 7 leaves 12 cached blocks; a request of
 * another session then needs most of the 20-block pool, so turn 1's
 * deepest blocks are evicted to the host tier (copied over PCIe). Turn 2
 * finds its first blocks in HBM and the rest in the host: with --miss swap
 * they come back over PCIe (1 ms latency + 1 ms a block here) before its
 * 22-token prefill; with recompute (and with cheaper, since this tiny
 * model recomputes in microseconds) only the HBM blocks count. */
static void test_host_tier(void) {
    eng_config c = base_config();
    rows k;
    met_summary s;
    sim_req r[3] = {req(0, 0.0, 40, 10), req(1, 1.0, 60, 2), req(2, 2.0, 70, 3)};
    int64_t hh, hbm;
    double ttft_swap;
    r[0].session_id = r[2].session_id = 7;
    r[1].session_id = 8;
    r[0].turn = 1;
    r[2].turn = 2;
    r[2].new_tokens = 20;
    use_lru4(&c);
    c.sched.kv_blocks = 20;
    c.sched.host_blocks = 100;
    c.sched.block_bytes = 1e6;
    c.sched.pcie_bw = 1e9;
    c.sched.pcie_latency_s = 0.001;
    c.sched.miss = SCHED_MISS_SWAP;
    T_EQ_I(run(&c, r, 3, 0, &k, &s), SIM_OK);
    hh = s.swapped_in_tokens / 4;
    hbm = 12 - hh;
    T_ASSERT(hh > 0 && hbm > 0);
    T_EQ_I(row_of(&k, 2)->hit_tokens, 48);
    T_EQ_I(s.pcie_bytes_h2d, hh * 1000000);
    T_ASSERT(s.pcie_bytes_d2h >= hh * 1000000); /* demoted at least what came back */
    ttft_swap = 0.001 + 0.001 * (double)hh + 0.005 + 0.022;
    T_NEAR(row_of(&k, 2)->first_token_s - 2.0, ttft_swap, 1e-9);
    T_NEAR(s.pcie_busy_h2d_s, 0.001 + 0.001 * (double)hh, 1e-9);
    /* recompute: only the HBM blocks are hits */
    c.sched.miss = SCHED_MISS_RECOMPUTE;
    T_EQ_I(run(&c, r, 3, 0, &k, &s), SIM_OK);
    T_EQ_I(row_of(&k, 2)->hit_tokens, hbm * 4);
    T_EQ_I(s.pcie_bytes_h2d, 0);
    T_NEAR(row_of(&k, 2)->first_token_s - 2.0, 0.005 + 0.001 * (double)(70 - hbm * 4), 1e-9);
    /* cheaper: the perf model recomputes this tiny model faster than PCIe */
    c.sched.miss = SCHED_MISS_CHEAPER;
    T_EQ_I(run(&c, r, 3, 0, &k, &s), SIM_OK);
    T_EQ_I(s.pcie_bytes_h2d, 0);
}

/* Many sessions through a small pool with every policy: invariants are
 * checked after every step (the cache's own included), every request ends,
 * and the blocks left in use at the end are exactly the cached ones. */
static void test_prefix_cache_policies(void) {
    static sim_req r[1200];
    static rows k;
    eng_config c = base_config();
    met_summary s;
    size_t i;
    int j;
    random_requests(r, 1200, 9);
    for (j = 0; j < 1200; j++) { /* 30 sessions of 40 turns, contexts growing in cycles */
        r[j].session_id = j % 30;
        r[j].turn = j / 30 + 1;
        r[j].prompt_tokens = 20 + 8 * ((j / 30) % 10);
        r[j].new_tokens = 8;
        r[j].output_tokens = 1 + r[j].output_tokens % 30;
    }
    c.sched.kv_blocks = 200;
    c.sched.max_num_seqs = 16;
    for (i = 0; i < evict_count(); i++) {
        evict_params ep;
        sim_err err;
        if (strcmp(evict_at(i)->name, "belady") == 0)
            continue; /* needs the trace ahead: cache-replay only */
        T_EQ_I(evict_spec_parse(evict_at(i)->name, &c.sched.policy, &ep, &err), SIM_OK);
        ep.block_tokens = 4;
        c.sched.policy_params = ep;
        T_EQ_I(run(&c, r, 1200, 0, &k, &s), SIM_OK);
        T_EQ_I(s.completed + s.rejected, 1200);
        T_ASSERT(s.prefix_hit_rate_tokens > 0);
        T_ASSERT(s.evictions > 0);
    }
}

static void test_closed_loop(void) {
    eng_config c = base_config();
    sim_req r[2] = {req(0, 0.0, 20, 5), req(1, 0.0, 20, 5)};
    rows k;
    met_summary s;
    int i;
    T_EQ_I(run(&c, r, 2, 10, &k, &s), SIM_OK);
    T_EQ_I(s.requests, 10);
    T_EQ_I(s.completed, 10);
    /* each follow-up arrives exactly when the request that released it ended */
    for (i = 2; i < 10; i++) {
        const met_request *x = row_of(&k, (uint64_t)i);
        int j, found = 0;
        for (j = 0; j < k.n; j++)
            if (k.r[j].id < x->id && fabs(k.r[j].finish_s - x->arrival_s) < 1e-12)
                found = 1;
        T_ASSERT(found);
    }
}

static void random_requests(sim_req *r, int n, uint64_t seed) {
    gsl_rng *g = sim_rng_create(seed, 1);
    double t = 0;
    int i;
    for (i = 0; i < n; i++) {
        t += gsl_ran_exponential(g, 0.02);
        r[i] = req((uint64_t)i, t, 1 + (int)gsl_rng_uniform_int(g, 80),
                   1 + (int)gsl_rng_uniform_int(g, 40));
    }
    sim_rng_destroy(g);
}

static void test_determinism(void) {
    static sim_req r[3000];
    eng_config c = base_config();
    static rows k1, k2;
    met_summary s1, s2;
    c.sched.kv_blocks = 60; /* contention: preemptions happen */
    c.sched.max_num_seqs = 16;
    c.sched.max_batched_tokens = 64;
    c.check = 0;
    random_requests(r, 3000, 42);
    T_EQ_I(run(&c, r, 3000, 0, &k1, &s1), SIM_OK);
    T_EQ_I(run(&c, r, 3000, 0, &k2, &s2), SIM_OK);
    T_ASSERT(memcmp(&s1, &s2, sizeof s1) == 0);
    T_ASSERT(memcmp(k1.r, k2.r, sizeof k1.r) == 0);
    T_ASSERT(s1.preemptions > 0);
    T_EQ_I(s1.completed + s1.rejected, 3000);
    /* the same with invariant checks after every step */
    c.check = 1;
    T_EQ_I(run(&c, r, 3000, 0, &k2, &s2), SIM_OK);
    T_ASSERT(memcmp(&s1, &s2, sizeof s1) == 0);
    /* the same with the latencies spilled to a temporary file 7 at a time */
    c.check = 0;
    c.quantile_mem = 7;
    T_EQ_I(run(&c, r, 3000, 0, &k2, &s2), SIM_OK);
    T_ASSERT(memcmp(&s1, &s2, sizeof s1) == 0);
    c.quantile_mem = 0;
    /* two replicas split the work round robin */
    c.replicas = 2;
    T_EQ_I(run(&c, r, 3000, 0, &k2, &s2), SIM_OK);
    T_EQ_I(s2.completed + s2.rejected, 3000);
    T_EQ_I(row_of(&k2, 0)->replica, 0);
    T_EQ_I(row_of(&k2, 1)->replica, 1);
}

/* Runs r on the simulator twice, one step at a time (k1, s1) and with decode
 * runs (k2, s2): the same request rows and steps, in fewer events. */
static void run_ff_pair(eng_config *c, sim_req *r, int n, rows *k1, met_summary *s1, rows *k2,
                        met_summary *s2) {
    c->fast_forward = 0;
    T_EQ_I(run_on(&be_sim_ops, c, r, n, 0, k1, s1), SIM_OK);
    c->fast_forward = 1;
    T_EQ_I(run_on(&be_sim_ops, c, r, n, 0, k2, s2), SIM_OK);
    T_ASSERT(memcmp(k1->r, k2->r, sizeof k1->r) == 0);
    T_EQ_I(s1->steps, s2->steps);
    T_ASSERT(s2->sim_events < s1->sim_events);
}

/* Admission keeps the watermark free, so a request whose blocks fit the
 * pool but not the pool less the watermark could never be admitted: it is
 * rejected at arrival (kv_capacity) rather than left waiting for ever (the
 * run used to end with it still live). One that fits under the watermark
 * completes. */
static void test_watermark_never_fits(void) {
    eng_config c = base_config();
    /* 4-token blocks: 109 + 1 - 1 tokens need 28 blocks, 100 + 5 - 1 need 26 */
    sim_req r[2] = {req(0, 0.0, 109, 1), req(1, 0.0, 100, 5)};
    rows k;
    met_summary s;
    c.sched.kv_blocks = 30;
    c.sched.watermark = 0.1; /* 3 blocks kept free: 27 admissible */
    T_EQ_I(run(&c, r, 2, 0, &k, &s), SIM_OK);
    T_EQ_I(s.completed, 1);
    T_EQ_I(s.rejected_kv_capacity, 1);
    T_EQ_I(row_of(&k, 0)->reject, MET_REJECT_KV_CAPACITY);
    T_EQ_I(row_of(&k, 1)->reject, MET_REJECT_NONE);
}

/* Decode runs (fast-forward) change the events, never the results: request
 * rows are identical to the nanosecond, and every summary figure to the bit. */
static void test_fast_forward(void) {
    static sim_req r[4000];
    static rows k1, k2;
    eng_config c = base_config();
    met_summary s1, s2;
    int rep, i, quiet;
    /* quiet: no step rows, so decode runs take run_apply_quiet's path;
     * otherwise every step's row is written */
    for (quiet = 0; quiet <= 1; quiet++)
        for (rep = 1; rep <= 3; rep += 2) {
            c = base_config();
            c.check = 1;
            c.steps_sample = quiet ? 0 : 1;
            c.replicas = rep;
            c.sched.kv_blocks = 36 * rep;
            c.sched.max_num_seqs = 12;
            c.sched.max_batched_tokens = 96;
            c.sched.max_queue_ns = sim_time_from_s(0.5);
            random_requests(r, 4000, 11);
            for (i = 0; i < 4000; i++) { /* longer outputs, arrivals as dense as the steps */
                r[i].output_tokens = 1 + (r[i].output_tokens * 7) % 47;
                r[i].arrival_ns /= 400;
            }
            run_ff_pair(&c, r, 4000, &k1, &s1, &k2, &s2);
            T_EQ_I(k1.steps, k2.steps);
            T_EQ_I(k1.steps, quiet ? 0 : s1.steps);
            T_EQ_I(s1.preemptions, s2.preemptions);
            T_ASSERT(s1.preemptions > 0 || rep > 1);
            T_EQ_I(s1.rejected_queue_timeout, s2.rejected_queue_timeout);
            T_ASSERT(s1.ttft_p99_s == s2.ttft_p99_s && s1.tpot_p50_s == s2.tpot_p50_s);
            T_ASSERT(s1.e2e_p99_s == s2.e2e_p99_s);
            /* each replica's sums are its own, added up in replica order at
             * the end: the same bits */
            T_ASSERT(s1.mean_batch_size == s2.mean_batch_size);
            T_ASSERT(s1.kv_util_peak == s2.kv_util_peak);
            T_ASSERT(s1.kv_util_mean == s2.kv_util_mean);
            T_ASSERT(s1.mfu_mean == s2.mfu_mean);
            T_ASSERT(s1.mbu_mean == s2.mbu_mean);
        }
}

/* Decode runs with the prefix cache on: sessions sharing context, a pool
 * small enough to evict; rows identical with runs on and off. */
static void test_fast_forward_cached(void) {
    static sim_req r[2000];
    static rows k1, k2;
    eng_config c = base_config();
    met_summary s1, s2;
    int j;
    random_requests(r, 2000, 21);
    for (j = 0; j < 2000; j++) {
        r[j].session_id = j % 12;
        r[j].turn = j / 12 + 1;
        r[j].prompt_tokens = 16 + 4 * ((j / 12) % 12);
        r[j].new_tokens = 4;
        r[j].output_tokens = 1 + (r[j].output_tokens * 7) % 47;
        r[j].arrival_ns /= 200;
    }
    use_lru4(&c);
    c.sched.kv_blocks = 100;
    c.sched.max_num_seqs = 12;
    run_ff_pair(&c, r, 2000, &k1, &s1, &k2, &s2);
    T_EQ_I(s1.evictions, s2.evictions);
    T_ASSERT(s1.prefix_hit_rate_tokens == s2.prefix_hit_rate_tokens);
    T_ASSERT(s1.evictions > 0 && s1.prefix_hit_rate_tokens > 0);
}

/* Decode runs of uncached sequences (anonymous blocks, taken as one count
 * per run when the free blocks cover the run) next to cached ones (a tenth
 * in sessions) that fill the pool: some runs then evict, and go step by
 * step. Without step rows (steps_sample 0) a run applies its steps at
 * once (sched_decode_advance_n). Rows identical with runs on and off. */
static void test_fast_forward_mixed(void) {
    static sim_req r[2000];
    static rows k1, k2;
    met_summary s1, s2;
    int j, v;
    for (v = 0; v < 2; v++) {
        eng_config c = base_config();
        random_requests(r, 2000, 41 + (uint64_t)v);
        for (j = 0; j < 2000; j++) {
            if (j % 10 == 0) {
                r[j].session_id = j % 9;
                r[j].turn = j / 9 + 1;
            }
            r[j].output_tokens = 1 + (r[j].output_tokens * 7) % 47;
            r[j].arrival_ns /= 40;
        }
        use_lru4(&c);
        c.sched.kv_blocks = v == 0 ? 80 : 200;
        c.sched.max_num_seqs = 12;
        c.steps_sample = 0;
        c.check = 1;
        run_ff_pair(&c, r, 2000, &k1, &s1, &k2, &s2);
        T_EQ_I(s1.evictions, s2.evictions);
        T_EQ_I(s1.preemptions, s2.preemptions);
        T_ASSERT(s1.kv_util_peak == s2.kv_util_peak);
        T_ASSERT(s1.evictions > 0);
    }
}

static void test_decode_view(void) {
    static sim_req r[1500];
    static rows k;
    eng_config c = base_config();
    met_summary s;
    c.sched.kv_blocks = 50; /* preemptions */
    c.sched.max_num_seqs = 16;
    c.sched.max_batched_tokens = 64;
    random_requests(r, 1500, 5);
    checked_steps = 0;
    T_EQ_I(run_on(&chk_ops, &c, r, 1500, 0, &k, &s), SIM_OK);
    T_EQ_I(checked_steps, s.steps);
    T_ASSERT(s.preemptions > 0);
}

/* Anonymous blocks (sched_config.anon_blocks, on for the sim backend only)
 * change nothing but block ids: a backend that is the sim backend under
 * another name gets ids for every block, and gives the same rows and
 * summary, with invariant checks after every step. Under each engine
 * family: uncached sequences alone, mixed with cached ones (sessions)
 * in a pool small enough to preempt and evict, with a host tier, and with
 * preemption to swap space. */
static int sim_ids_step(void *ctx, int replica, const sched *s, const sched_batch *b,
                        be_result *out, sim_err *err) {
    return be_sim_ops.step(ctx, replica, s, b, out, err);
}

static void test_anon_blocks(void) {
    static sim_req r[1500];
    static rows k1, k2;
    struct be_ops ids_ops = be_sim_ops;
    met_summary s1, s2;
    int pol, v, j, swapped = 0;
    int64_t preempted = 0, evicted = 0;
    ids_ops.name = "sim-ids";
    ids_ops.step = sim_ids_step; /* not be_sim_ops: every block gets an id */
    for (pol = SCHED_POLICY_VLLM; pol <= SCHED_POLICY_TRTLLM; pol++)
        for (v = 0; v < 4; v++) {
            eng_config c = base_config();
            random_requests(r, 1500, 31 + (uint64_t)v);
            for (j = 0; j < 1500; j++) {
                r[j].output_tokens = 1 + (r[j].output_tokens * 7) % 47;
                r[j].arrival_ns /= 100;
                if (v > 0 && j % 3 == 0) { /* a third in sessions: cached */
                    r[j].session_id = j % 9;
                    r[j].turn = j / 9 + 1;
                }
            }
            c.sched.sched_policy = pol;
            c.sched.kv_blocks = 60; /* preemptions, evictions */
            c.sched.max_num_seqs = 16;
            c.sched.max_batched_tokens = 64;
            c.fast_forward = 0; /* decode runs need be_sim_ops */
            if (v > 0) {
                use_lru4(&c);
            }
            if (v >= 2) {
                c.sched.block_bytes = 1e6;
                c.sched.pcie_bw = 1e9;
                c.sched.pcie_latency_s = 0.001;
            }
            if (v == 2) {
                c.sched.host_blocks = 100;
                c.sched.miss = SCHED_MISS_SWAP;
            }
            if (v == 3) {
                c.sched.preempt_swap = 1;
                c.sched.swap_blocks = 40;
            }
            T_EQ_I(run_on(&be_sim_ops, &c, r, 1500, 0, &k1, &s1), SIM_OK);
            T_EQ_I(run_on(&ids_ops, &c, r, 1500, 0, &k2, &s2), SIM_OK);
            T_ASSERT(memcmp(k1.r, k2.r, sizeof k1.r) == 0);
            T_EQ_I(k1.steps, k2.steps);
            T_ASSERT(memcmp(&s1, &s2, sizeof s1) == 0);
            preempted += s1.preemptions;
            evicted += s1.evictions;
            swapped += v == 3 && s1.preemptions > 0;
        }
    T_ASSERT(preempted > 0 && evicted > 0 && swapped > 0); /* the paths ran */
}

/* SGLANG: prompt chunks run in steps of their own; the decoders wait. The
 * scenario of test_two_requests: R1 arrives while R0's prefill runs. */
static void test_policy_sglang(void) {
    eng_config c = base_config();
    sim_req r[2] = {req(0, 0.0, 100, 3), req(1, 0.05, 50, 2)};
    rows k;
    met_summary s;
    c.sched.sched_policy = SCHED_POLICY_SGLANG;
    T_EQ_I(run(&c, r, 2, 0, &k, &s), SIM_OK);
    /* step 0 [0, .105): prefill R0. step 1 [.105, .160): prefill R1 alone (5 + 50 ms),
     * R0 waits. step 2 [.160, .175): decode both; R1 ends (2 tokens). step 3
     * [.175, .190): decode R0, which ends (3 tokens). */
    T_NEAR(row_of(&k, 0)->first_token_s, 0.105, 1e-9);
    T_NEAR(row_of(&k, 1)->first_token_s, 0.160, 1e-9);
    T_NEAR(row_of(&k, 1)->finish_s, 0.175, 1e-9);
    T_NEAR(row_of(&k, 0)->finish_s, 0.190, 1e-9);
    T_EQ_I(s.steps, 4);
    /* a prompt longer than the budget: chunks 32, 32, 32, 4 in four prefill
     * steps; R1 (arriving at .05) shares the last one (4 + 28 of its 50
     * tokens) and ends its prompt in the next; only then does anyone decode */
    c.sched.max_batched_tokens = 32;
    c.sched.max_num_seqs = 32;
    T_EQ_I(run(&c, r, 2, 0, &k, &s), SIM_OK);
    /* steps: [0,.037) [.037,.074) [.074,.111) [.111,.148) R0 ends its prompt,
     * [.148,.175) R1's last 22, then decode [.175,.190) both, [.190,.205) R0 */
    T_NEAR(row_of(&k, 0)->first_token_s, 0.148, 1e-9);
    T_NEAR(row_of(&k, 1)->first_token_s, 0.175, 1e-9);
    T_NEAR(row_of(&k, 1)->finish_s, 0.190, 1e-9);
    T_NEAR(row_of(&k, 0)->finish_s, 0.205, 1e-9);
    T_EQ_I(s.steps, 7);
}

/* TRTLLM: a request is admitted only with room for its whole sequence, so
 * the pool that makes test_preemption preempt serves the two one at a time. */
static void test_policy_trtllm(void) {
    eng_config c = base_config();
    sim_req r[2] = {req(0, 0.0, 12, 20), req(1, 0.0, 12, 20)};
    rows k;
    met_summary s;
    c.sched.kv_blocks = 10; /* 40 tokens; each sequence grows to 31 tokens = 8 blocks */
    T_EQ_I(run(&c, r, 2, 0, &k, &s), SIM_OK);
    T_ASSERT(s.preemptions > 0); /* vllm: both admitted, one preempted */
    c.sched.sched_policy = SCHED_POLICY_TRTLLM;
    T_EQ_I(run(&c, r, 2, 0, &k, &s), SIM_OK);
    T_EQ_I(s.preemptions, 0);
    /* R0: prefill 12 tokens [0, .017), 19 decode steps of 15 ms, ends .302;
     * R1 is admitted in the next step: prefill [.302, .319), ends .604 */
    T_NEAR(row_of(&k, 0)->first_token_s, 0.017, 1e-9);
    T_NEAR(row_of(&k, 0)->finish_s, 0.302, 1e-9);
    T_NEAR(row_of(&k, 1)->first_token_s, 0.319, 1e-9);
    T_NEAR(row_of(&k, 1)->finish_s, 0.604, 1e-9);
    T_EQ_I(s.steps, 40);
    /* the reservation is TensorRT-LLM's: ceil((prompt + max tokens) / block),
     * 33 tokens = 9 blocks, though the last token's KV is never stored (8
     * blocks). With 17 blocks, R0's prompt holding 3 and reserving 6 more
     * leaves 8 obtainable: R1 (9) waits for R0's end */
    r[0] = req(0, 0.0, 12, 21);
    r[1] = req(1, 0.0, 12, 21);
    c.sched.kv_blocks = 17;
    T_EQ_I(run(&c, r, 2, 0, &k, &s), SIM_OK);
    T_EQ_I(s.preemptions, 0);
    T_NEAR(row_of(&k, 1)->first_token_s, row_of(&k, 0)->finish_s + 0.017, 1e-9);
    /* a sequence whose reservation exceeds the pool could never start */
    c.sched.kv_blocks = 8;
    T_EQ_I(run(&c, r, 1, 0, &k, &s), SIM_OK);
    T_EQ_I(row_of(&k, 0)->reject, MET_REJECT_KV_CAPACITY);
}

/* Every policy under load: the executor's view (decode list, block tables)
 * matches each batch, invariants hold after every step, and decode runs
 * give the same rows as single steps. */
static void test_policy_views(void) {
    static sim_req r[1500];
    static rows k1, k2;
    eng_config c;
    met_summary s1, s2;
    int pol, i;
    for (pol = SCHED_POLICY_SGLANG; pol <= SCHED_POLICY_TRTLLM; pol++) {
        c = base_config();
        c.sched.sched_policy = pol;
        c.sched.kv_blocks = 50;
        c.sched.max_num_seqs = 16;
        c.sched.max_batched_tokens = 64;
        random_requests(r, 1500, 5);
        checked_steps = 0;
        T_EQ_I(run_on(&chk_ops, &c, r, 1500, 0, &k1, &s1), SIM_OK);
        T_EQ_I(checked_steps, s1.steps);
        T_ASSERT(pol != SCHED_POLICY_SGLANG || s1.preemptions > 0);
        for (i = 0; i < 1500; i++) { /* longer outputs, dense arrivals: decode runs */
            r[i].output_tokens = 1 + (r[i].output_tokens * 7) % 47;
            r[i].arrival_ns /= 400;
        }
        run_ff_pair(&c, r, 1500, &k1, &s1, &k2, &s2);
    }
}

static void test_oom(void) {
    static sim_req r[50];
    eng_config c = base_config();
    static rows k;
    met_summary s;
    uint64_t n;
    size_t base = sim_mem_current();
    random_requests(r, 50, 3);
    c.check = 0; /* the validator allocates; a failure there is not the engine's */
    for (n = 1;; n++) {
        int rc;
        sim_mem_fail_at(n);
        rc = run(&c, r, 50, 0, &k, &s);
        sim_mem_fail_at(0);
        T_EQ_I(sim_mem_current(), base); /* nothing leaked */
        if (rc == SIM_OK)
            break;
        T_EQ_I(rc, SIM_ENOMEM);
    }
    T_ASSERT(n > 3);
}

/* The exact quantiles and means of a run larger than the sort's cut-over
 * (2,048 values: a radix sort above it) equal an independent qsort and
 * GSL's interpolation over the request rows. */
static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_quantiles_large(void) {
    static sim_req r[3000];
    static rows k;
    static double v[4096];
    eng_config c = base_config();
    met_summary s;
    int i, n = 0;
    double sum = 0;
    random_requests(r, 3000, 21);
    c.check = 0;
    c.sched.kv_blocks = 4000;
    T_EQ_I(run(&c, r, 3000, 0, &k, &s), SIM_OK);
    for (i = 0; i < k.n; i++)
        if (!k.r[i].reject)
            v[n++] = k.r[i].first_token_s - k.r[i].arrival_s;
    T_ASSERT(n > 2048);
    T_EQ_I(n, s.completed);
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    T_NEAR(s.ttft_p50_s, gsl_stats_quantile_from_sorted_data(v, 1, (size_t)n, 0.50), 1e-12);
    T_NEAR(s.ttft_p99_s, gsl_stats_quantile_from_sorted_data(v, 1, (size_t)n, 0.99), 1e-12);
    for (i = 0; i < n; i++)
        sum += v[i];
    T_NEAR(s.ttft_mean_s, sum / n, 1e-12);
}

int main(void) {
    setup_perf();
    test_quantiles_large();
    test_one_request();
    test_chunked_prefill();
    test_two_requests();
    test_preemption();
    test_rejections();
    test_unchunked();
    test_unchunked_resume();
    test_prefix_cache();
    test_prefix_cache_policies();
    test_host_tier();
    test_closed_loop();
    test_determinism();
    test_watermark_never_fits();
    test_fast_forward();
    test_fast_forward_cached();
    test_fast_forward_mixed();
    test_decode_view();
    test_anon_blocks();
    test_policy_sglang();
    test_policy_trtllm();
    test_policy_views();
    test_oom();
    printf("test_engine: ok\n");
    return 0;
}
