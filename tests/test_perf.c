/* test_perf.c: the perf model v1 (sim/perf.c).
 *
 * Hand-computed roofline cases (every operator of a pure-decode step and a
 * prefill chunk, with the arithmetic written out independently of perf.c),
 * monotonicity in context, decode attention over each sequence's own
 * context, tensor parallelism, fp8 refusal, bit-identity of perf_step_s
 * and perf_predict on random batches, perf_step_cached's count tables
 * (growth, the cap, sharing, failed allocations), curve evaluation, the GEMMs' fp8
 * curve sets (used for fp8 weights only, absent sets falling back to the
 * bf16 ones), and calibration files: a save/load round trip and malformed
 * files with their exact messages. Temporary files are written in the current directory and
 * removed. */
#include "config.h"

#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "perf.h"
#include "engine.h"
#include "fixtures.h"
#include "mem.h"
#include "t.h"

/* ---- fixtures: Llama-3-8B and H100 SXM / A100 SXM by hand ---- */

static sim_gpu a100(void) {
    sim_gpu g = t_h100(0.0);
    snprintf(g.name, sizeof g.name, "a100-sxm");
    g.hbm_bw = 2.039e12;
    g.flops_bf16 = 312e12;
    g.flops_fp8 = 0.0;
    g.nvlink_bw = 300e9;
    return g;
}

static void ctx_for(perf_ctx *ctx, const sim_model *m, const sim_gpu *g, const perf_calib *c,
                    int tp) {
    sim_err err;
    int rc = perf_ctx_init(ctx, m, g, c, tp, &err);
    if (rc != SIM_OK)
        T_FAIL_("perf_ctx_init: %s", err.msg);
}

static double mx(double a, double b) {
    return a > b ? a : b;
}

/* ---- a pure-decode step on the datasheet roofline, by hand ---- */

static void test_decode_by_hand(void) {
    sim_model m = t_llama3_8b();
    sim_gpu g = t_h100(0.0);
    perf_ctx ctx;
    perf_batch b;
    perf_result r;
    double P = 989.4e12, W = 3.35e12, L = 32, e[PERF_N_OPS], sum = 0;
    int i;

    ctx_for(&ctx, &m, &g, NULL, 1);
    memset(&b, 0, sizeof b);
    perf_batch_add_decode(&b, 100);
    perf_batch_add_decode(&b, 2000);
    perf_batch_add_decode(&b, 513);
    T_EQ_I(b.n_decode, 3);
    T_EQ_I(b.n_sample, 3);
    T_EQ_I(b.decode_ctx, 2613);
    perf_predict(&ctx, &b, &r);

    /* T = 3 tokens; q = 4096, kv = 8 x 128 = 1024, I = 14336, V = 128256. */
    e[PERF_OP_QKV_PROJ] =
        L * mx(2.0 * 3 * 6144 * 4096 / P, (6144.0 * 4096 * 2 + (3.0 * 4096 + 3.0 * 6144) * 2) / W);
    e[PERF_OP_O_PROJ] =
        L * mx(2.0 * 3 * 4096 * 4096 / P, (4096.0 * 4096 * 2 + (3.0 * 4096 + 3.0 * 4096) * 2) / W);
    e[PERF_OP_MLP_UP] = L * mx(2.0 * 3 * 28672 * 4096 / P,
                               (28672.0 * 4096 * 2 + (3.0 * 4096 + 3.0 * 28672) * 2) / W);
    e[PERF_OP_MLP_ACT] = L * (3.0 * 3 * 14336 * 2) / W;
    e[PERF_OP_MLP_DOWN] = L * mx(2.0 * 3 * 4096 * 14336 / P,
                                 (4096.0 * 14336 * 2 + (3.0 * 14336 + 3.0 * 4096) * 2) / W);
    e[PERF_OP_NORM] = L * (2 * 2 * 3.0 * 4096 * 2) / W;
    e[PERF_OP_ROPE] = L * (2 * 3.0 * (4096 + 1024) * 2) / W;
    e[PERF_OP_ATTN_PREFILL] = 0;
    e[PERF_OP_ATTN_DECODE] =
        L * mx(4.0 * 4096 * 2613 / P, (2613.0 * 2 * 1024 * 2 + 3.0 * 4096 * 2 * 2) / W);
    e[PERF_OP_KV_SAVE] = L * (2 * 3.0 * 2 * 1024 * 2) / W;
    e[PERF_OP_EMBED] = 3.0 * 4096 * 2 / W;
    e[PERF_OP_LM_HEAD] = mx(2.0 * 3 * 128256 * 4096 / P,
                            (128256.0 * 4096 * 2 + (3.0 * 4096 + 3.0 * 128256) * 2) / W);
    e[PERF_OP_SAMPLE] = 3.0 * 128256 * 4 / W;
    e[PERF_OP_ALLREDUCE] = 0;
    for (i = 0; i < PERF_N_OPS; i++) {
        if (e[i] == 0)
            T_NEAR(r.op_s[i], 0, 0);
        else
            T_REL(r.op_s[i], e[i], 1e-12);
        sum += e[i];
    }
    T_REL(r.step_s, sum, 1e-12);
    T_REL(perf_step_s(&ctx, &b), sum, 1e-12);
    /* Every operator of a 3-token decode is memory-bound. */
    T_NEAR(r.t_compute, 0, 0);
    T_REL(r.t_hbm, sum, 1e-12);
    T_NEAR(r.t_overhead, 0, 0);
    T_NEAR(r.t_link, 0, 0);
    T_EQ_I(r.bound, PERF_BOUND_HBM);
    T_STREQ(perf_bound_name(r.bound), "hbm");
    T_REL(r.flops,
          L * 2.0 * 3 * 4096 * (6144 + 4096 + 28672 + 14336) + L * 4.0 * 4096 * 2613 +
              2.0 * 3 * 128256 * 4096,
          1e-12);
}

/* ---- a prefill chunk's attention by hand ---- */

static void test_prefill_by_hand(void) {
    sim_model m = t_llama3_8b();
    sim_gpu g = t_h100(0.0);
    perf_ctx ctx;
    perf_batch b;
    perf_result r;
    double fl, by, rows, P = 989.4e12, W = 3.35e12;

    ctx_for(&ctx, &m, &g, NULL, 1);
    memset(&b, 0, sizeof b);
    perf_batch_add_prefill(&b, 100, 50, 0); /* 100 new tokens after 50 cached */
    T_EQ_I(b.n_prefill, 1);
    T_EQ_I(b.n_sample, 0);
    T_EQ_I(b.prefill_tokens, 100);
    T_EQ_I(b.prefill_kv_tokens, 150);
    T_NEAR(b.prefill_pairs, 100.0 * 50 + 100.0 * 101 / 2, 0);
    perf_op_cost(&ctx, PERF_OP_ATTN_PREFILL, &b, &fl, &by, &rows);
    T_NEAR(fl, 4.0 * 4096 * 10050, 0);
    T_NEAR(by, 150.0 * 2 * 1024 * 2 + 100.0 * 4096 * 2 * 2, 0);
    T_NEAR(rows, 10050.0 / 100, 1e-12); /* keys per query */
    perf_predict(&ctx, &b, &r);
    T_REL(r.op_s[PERF_OP_ATTN_PREFILL], 32 * mx(4.0 * 4096 * 10050 / P, by / W), 1e-12);
    /* No sequence samples: lm_head and sample cost nothing. */
    T_NEAR(r.op_s[PERF_OP_LM_HEAD], 0, 0);
    T_NEAR(r.op_s[PERF_OP_SAMPLE], 0, 0);
    T_NEAR(r.op_s[PERF_OP_ATTN_DECODE], 0, 0);
    /* A 100-token qkv GEMM: 2 x 100 x 6144 x 4096 FLOPs, rows = M. */
    perf_op_cost(&ctx, PERF_OP_QKV_PROJ, &b, &fl, &by, &rows);
    T_NEAR(fl, 2.0 * 100 * 6144 * 4096, 0);
    T_NEAR(rows, 100, 0);
    /* A long prompt makes the step compute-bound. */
    memset(&b, 0, sizeof b);
    perf_batch_add_prefill(&b, 8192, 0, 1);
    perf_predict(&ctx, &b, &r);
    T_EQ_I(r.bound, PERF_BOUND_COMPUTE);
}

/* ---- empty batches, zero-work operators and the step overhead ---- */

static void test_overheads(void) {
    sim_model m = t_llama3_8b();
    sim_gpu g = t_h100(0.0);
    perf_calib c;
    perf_ctx ctx;
    perf_batch b;
    perf_result r;
    double sum = 0;
    int i;

    g.launch_overhead_s = 5e-6;
    perf_calib_default(&c, &g);
    T_STREQ(c.gpu, "");
    for (i = 0; i < PERF_N_OPS; i++)
        T_NEAR(c.op[i].overhead_s, 5e-6, 0);
    c.step_base_s = 1e-2;
    c.step_per_seq_s = 2e-5;
    ctx_for(&ctx, &m, &g, &c, 1);

    memset(&b, 0, sizeof b);
    perf_predict(&ctx, &b, &r);
    T_NEAR(r.step_s, 0, 0);
    T_NEAR(perf_step_s(&ctx, &b), 0, 0);
    for (i = 0; i < PERF_N_OPS; i++)
        T_NEAR(r.op_s[i], 0, 0);

    perf_batch_add_decode(&b, 10);
    perf_batch_add_decode(&b, 20);
    perf_predict(&ctx, &b, &r);
    T_NEAR(r.op_s[PERF_OP_ATTN_PREFILL], 0, 0); /* no prefill: not even its overhead */
    T_NEAR(r.op_s[PERF_OP_ALLREDUCE], 0, 0);    /* TP 1 */
    for (i = 0; i < PERF_N_OPS; i++)
        sum += r.op_s[i];
    T_REL(r.step_s - sum, 1e-2 + 2 * 2e-5, 1e-9);
    /* Overhead: the 9 per-layer operators with work (not attn_prefill nor
     * the all-reduce) x 32 layers, embed, lm_head and sample, and the step's. */
    T_REL(r.t_overhead, (9 * 32 + 3) * 5e-6 + 1e-2 + 2 * 2e-5, 1e-12);
    T_EQ_I(r.bound, PERF_BOUND_OVERHEAD); /* 10 ms of engine overhead beats 5 ms of weights */
    T_ASSERT(r.t_hbm > 4e-3);
}

/* ---- monotonicity and each sequence's own context ---- */

static void synthetic_calib(perf_calib *c, const sim_gpu *g, double overhead) {
    int i, j;
    perf_calib_default(c, g);
    for (i = 0; i < PERF_N_OPS; i++) {
        c->op[i].overhead_s = overhead;
        c->op[i].eff_c.n = c->op[i].eff_m.n = 4;
        for (j = 0; j < 4; j++) {
            c->op[i].eff_c.x[j] = c->op[i].eff_m.x[j] = 5.0 * j;
            c->op[i].eff_c.y[j] = 0.2 + 0.2 * j;
            c->op[i].eff_m.y[j] = 0.3 + 0.2 * j;
        }
    }
}

static void test_decode_context(void) {
    sim_model m = t_llama3_8b();
    sim_gpu g = t_h100(0.0);
    perf_calib c;
    perf_ctx ctx;
    perf_batch a, b2, d, e;
    perf_result ra, rb, rd, re;
    double prev = 0;
    int64_t n;

    synthetic_calib(&c, &g, 0.0);
    ctx_for(&ctx, &m, &g, &c, 1);
    /* More context, more decode attention time. */
    for (n = 1; n <= 200000; n += n / 3 + 1) {
        perf_batch x;
        perf_result rx;
        memset(&x, 0, sizeof x);
        perf_batch_add_decode(&x, n);
        perf_batch_add_decode(&x, 2 * n);
        perf_predict(&ctx, &x, &rx);
        T_ASSERT(rx.op_s[PERF_OP_ATTN_DECODE] > prev);
        prev = rx.op_s[PERF_OP_ATTN_DECODE];
    }
    /* Equal mean context, different contexts: the same time; twice the
     * sequences at that mean: twice the time (zero overhead). */
    memset(&a, 0, sizeof a);
    memset(&b2, 0, sizeof b2);
    memset(&d, 0, sizeof d);
    perf_batch_add_decode(&a, 1000);
    perf_batch_add_decode(&a, 1000);
    perf_batch_add_decode(&b2, 10);
    perf_batch_add_decode(&b2, 1990);
    perf_batch_add_decode(&d, 1000);
    perf_batch_add_decode(&d, 1000);
    perf_batch_add_decode(&d, 10);
    perf_batch_add_decode(&d, 1990);
    perf_predict(&ctx, &a, &ra);
    perf_predict(&ctx, &b2, &rb);
    perf_predict(&ctx, &d, &rd);
    T_REL(ra.op_s[PERF_OP_ATTN_DECODE], rb.op_s[PERF_OP_ATTN_DECODE], 1e-15);
    T_REL(rd.op_s[PERF_OP_ATTN_DECODE], 2 * ra.op_s[PERF_OP_ATTN_DECODE], 1e-12);
    /* On the datasheet roofline the KV part is linear in the summed context. */
    ctx_for(&ctx, &m, &g, NULL, 1);
    memset(&e, 0, sizeof e);
    perf_batch_add_decode(&e, 3000);
    perf_batch_add_decode(&e, 3000);
    perf_predict(&ctx, &a, &ra);
    perf_predict(&ctx, &e, &re);
    T_REL(re.op_s[PERF_OP_ATTN_DECODE] - ra.op_s[PERF_OP_ATTN_DECODE],
          32 * (6000.0 - 2000.0) * 2 * 1024 * 2 / 3.35e12, 1e-9);
}

/* ---- tensor parallelism ---- */

static void test_tp(void) {
    sim_model m = t_llama3_8b();
    sim_gpu g = t_h100(0.0);
    perf_ctx c1, c2, c16;
    perf_batch b;
    perf_result r1, r2;
    double f1, f2, by, rows;

    ctx_for(&c1, &m, &g, NULL, 1);
    ctx_for(&c2, &m, &g, NULL, 2);
    memset(&b, 0, sizeof b);
    perf_batch_add_prefill(&b, 512, 0, 1);
    perf_batch_add_decode(&b, 700);
    perf_op_cost(&c1, PERF_OP_QKV_PROJ, &b, &f1, &by, &rows);
    perf_op_cost(&c2, PERF_OP_QKV_PROJ, &b, &f2, &by, &rows);
    T_REL(f2, f1 / 2, 1e-15);
    perf_op_cost(&c1, PERF_OP_MLP_DOWN, &b, &f1, &by, &rows);
    perf_op_cost(&c2, PERF_OP_MLP_DOWN, &b, &f2, &by, &rows);
    T_REL(f2, f1 / 2, 1e-15);
    perf_op_cost(&c1, PERF_OP_LM_HEAD, &b, &f1, &by, &rows);
    perf_op_cost(&c2, PERF_OP_LM_HEAD, &b, &f2, &by, &rows);
    T_REL(f2, f1 / 2, 1e-15);
    perf_predict(&c1, &b, &r1);
    perf_predict(&c2, &b, &r2);
    T_NEAR(r1.op_s[PERF_OP_ALLREDUCE], 0, 0);
    T_NEAR(r1.link_bytes, 0, 0);
    T_ASSERT(r2.op_s[PERF_OP_ALLREDUCE] > 0);
    /* 2 all-reduces per layer of 513 tokens x 4096 x 2 bytes; a ring sends 2(t-1)/t of it. */
    T_REL(r2.link_bytes, 32 * 2 * (2.0 * 1 / 2) * 513 * 4096 * 2, 1e-15);
    T_REL(r2.t_link, 32 * 2 * (513.0 * 4096 * 2) / 450e9, 1e-12);
    T_ASSERT(r2.flops < r1.flops);
    T_ASSERT(r2.op_s[PERF_OP_MLP_UP] < r1.op_s[PERF_OP_MLP_UP]);
    /* TP 16 > 8 KV heads: KV heads are replicated, one per GPU. */
    ctx_for(&c16, &m, &g, NULL, 16);
    perf_op_cost(&c16, PERF_OP_QKV_PROJ, &b, &f1, &by, &rows);
    T_NEAR(f1, 2.0 * 513 * (4096.0 / 16 + 2 * 128) * 4096, 0);
}

/* TP across nodes: the all-reduce is the hierarchical collective model
 * (NVLink inside a node, InfiniBand between), called with the message of
 * one all-reduce; a GPU without an inter-node link refuses it. */
static void test_tp_nodes(void) {
    sim_model m = t_llama3_8b();
    sim_gpu g = t_h100(0.0);
    perf_ctx c16;
    perf_batch b;
    perf_result r;
    coll_topo topo;
    coll_calib cc;
    double t_ar;
    coll_algo algo;
    sim_err err;
    g.gpus_per_node = 8;
    g.ib_bw = 50e9;
    g.ib_latency_s = 5e-6;
    ctx_for(&c16, &m, &g, NULL, 16);
    T_ASSERT(c16.tp_nodes == 2);
    memset(&b, 0, sizeof b);
    perf_batch_add_prefill(&b, 512, 0, 1);
    perf_batch_add_decode(&b, 700);
    perf_predict(&c16, &b, &r);
    coll_topo_from_gpu(&g, &topo);
    coll_calib_default(&topo, &cc);
    T_ASSERT(coll_time(COLL_ALLREDUCE, 513.0 * 4096 * 2, 16, 2, &topo, &cc, &t_ar, &algo, &err) ==
             SIM_OK);
    T_REL(r.op_s[PERF_OP_ALLREDUCE], 2.0 * 32 * t_ar, 1e-12);
    T_REL(r.t_link, 2.0 * 32 * t_ar, 1e-12);
    /* the same step, cached, is bit for bit the uncached one */
    {
        perf_cache pc;
        memset(&pc, 0, sizeof pc);
        T_ASSERT(perf_step_s_cached(&c16, &pc, &b) == perf_step_s(&c16, &b));
    }
    /* With launch overheads, the four sums the bound is picked from still
     * add up to the step: the collective model's time has no operator
     * launch on top, so the all-reduce adds none to t_overhead either */
    g.launch_overhead_s = 5e-6;
    ctx_for(&c16, &m, &g, NULL, 16);
    perf_predict(&c16, &b, &r);
    T_REL(r.t_compute + r.t_hbm + r.t_link + r.t_overhead, r.step_s, 1e-12);
    T_REL(r.t_link, r.op_s[PERF_OP_ALLREDUCE], 1e-12);
    g.launch_overhead_s = 0;
    g.ib_bw = 0;
    T_ASSERT(perf_ctx_init(&c16, &m, &g, NULL, 16, &err) == SIM_EINFEASIBLE);
    T_ASSERT(strstr(err.msg, "inter-node link") != NULL);
    g.ib_bw = 50e9;
    g.gpus_per_node = 6;
    T_ASSERT(perf_ctx_init(&c16, &m, &g, NULL, 8, &err) == SIM_EINFEASIBLE);
}

/* Pipeline stages: the step is the whole model's plus (pp - 1) trips of
 * the step's activations, over NVLink inside a node and InfiniBand beyond;
 * the KV pool is one stage's, shared by pp virtual engines. */
static void test_pp(void) {
    sim_model m = t_llama3_8b();
    sim_gpu g = t_h100(0.0);
    perf_ctx c1, c4, c16;
    perf_batch b;
    perf_result r1, r4;
    sim_err err;
    double T = 513.0;
    g.gpus_per_node = 8;
    g.ib_bw = 50e9;
    g.ib_latency_s = 5e-6;
    g.nvlink_latency_s = 3e-6;
    ctx_for(&c1, &m, &g, NULL, 2);
    ctx_for(&c4, &m, &g, NULL, 2);
    T_ASSERT(perf_ctx_set_pp(&c4, 4, &err) == SIM_OK);
    memset(&b, 0, sizeof b);
    perf_batch_add_prefill(&b, 512, 0, 1);
    perf_batch_add_decode(&b, 700);
    perf_predict(&c1, &b, &r1);
    perf_predict(&c4, &b, &r4);
    T_REL(r4.step_s - r1.step_s, 3 * (3e-6 + T * 4096 * 2 / 450e9), 1e-9);
    T_NEAR(perf_step_s(&c4, &b), r4.step_s, 0);
    /* TP2 x PP8 = 16 GPUs: stages cross nodes over InfiniBand */
    ctx_for(&c16, &m, &g, NULL, 2);
    T_ASSERT(perf_ctx_set_pp(&c16, 8, &err) == SIM_OK);
    T_NEAR(c16.pp_bw, 50e9, 0);
    g.ib_bw = 0;
    ctx_for(&c16, &m, &g, NULL, 2);
    T_ASSERT(perf_ctx_set_pp(&c16, 8, &err) == SIM_EINFEASIBLE);
    T_ASSERT(perf_ctx_set_pp(&c16, 33, &err) == SIM_EINVAL); /* more stages than layers */
    /* 2^30 x 2 GPUs span nodes (their product is no int): InfiniBand */
    g.ib_bw = 50e9;
    ctx_for(&c16, &m, &g, NULL, 2);
    c16.tp = 1 << 30;
    T_ASSERT(perf_ctx_set_pp(&c16, 2, &err) == SIM_OK);
    T_NEAR(c16.pp_bw, 50e9, 0);
    /* KV blocks: a stage holds a quarter of the weights and of each token's
     * KV; four virtual engines share its blocks */
    {
        int64_t b1 = eng_kv_blocks(&c1, 16, 0.9, 256, 8192, NULL, 0);
        int64_t b4 = eng_kv_blocks(&c4, 16, 0.9, 256, 8192, NULL, 0);
        double w = sim_model_weight_bytes(&m, 2), kvb = sim_model_kv_bytes_per_token(&m, 2) * 16;
        /* the activation reserve, the same in both: what b1 leaves of HBM */
        double reserve = 80e9 * 0.9 - w - (double)b1 * kvb;
        T_ASSERT(b4 > b1 / 4); /* the freed weights hold more KV */
        T_ASSERT(llabs(b4 * 4 - (int64_t)((80e9 * 0.9 - w / 4 - reserve) / (kvb / 4))) <= 8);
    }
}

/* ---- dtypes and refusals ---- */

static void test_dtypes(void) {
    sim_model m = t_llama3_8b();
    sim_gpu g = a100(), h = t_h100(0.0);
    perf_ctx ctx;
    sim_err err;
    perf_calib c;

    m.w_dtype = SIM_DT_FP8;
    T_EQ_I(perf_ctx_init(&ctx, &m, &g, NULL, 1, &err), SIM_EINVAL);
    T_STREQ(err.msg, "fp8 weights (--dtype fp8, or the dtype of llama-3-8b's config): the GPU "
                     "a100-sxm has no fp8 tensor cores");
    m.w_dtype = SIM_DT_BF16;
    m.kv_dtype = SIM_DT_FP8;
    T_EQ_I(perf_ctx_init(&ctx, &m, &g, NULL, 1, &err), SIM_EINVAL);
    T_STREQ(err.msg, "fp8 KV cache (--kv-dtype fp8, or the dtype of llama-3-8b's config): the "
                     "GPU a100-sxm has no fp8 tensor cores");
    m.kv_dtype = SIM_DT_BF16;
    T_EQ_I(perf_ctx_init(&ctx, &m, &g, NULL, 0, &err), SIM_EINVAL);
    T_STREQ(err.msg, "--tp: expected an integer >= 1, got '0'");
    T_EQ_I(perf_ctx_init(&ctx, &m, &g, NULL, 3, &err), SIM_EINFEASIBLE);
    T_STREQ(err.msg, "--tp: expected a divisor of the 32 attention heads of llama-3-8b, got '3'");
    T_EQ_I(perf_ctx_init(&ctx, &m, &g, NULL, 1, &err), SIM_OK);
    T_NEAR(ctx.peak, 312e12, 0);

    /* H100: fp8 weights use the fp8 peak; attention stays bf16 unless the KV is fp8. */
    m.w_dtype = SIM_DT_FP8;
    T_EQ_I(perf_ctx_init(&ctx, &m, &h, NULL, 1, &err), SIM_OK);
    T_NEAR(ctx.peak, 1978.9e12, 0);
    T_NEAR(ctx.peak_attn, 989.4e12, 0);
    m.kv_dtype = SIM_DT_FP8;
    T_EQ_I(perf_ctx_init(&ctx, &m, &h, NULL, 1, &err), SIM_OK);
    T_NEAR(ctx.peak_attn, 1978.9e12, 0);
    {
        /* fp8 halves the weight bytes of a decode GEMM. */
        perf_batch b;
        double fl, b8, b16, rows;
        perf_ctx c16;
        sim_model m16 = t_llama3_8b();
        memset(&b, 0, sizeof b);
        perf_batch_add_decode(&b, 10);
        perf_op_cost(&ctx, PERF_OP_O_PROJ, &b, &fl, &b8, &rows);
        ctx_for(&c16, &m16, &h, NULL, 1);
        perf_op_cost(&c16, PERF_OP_O_PROJ, &b, &fl, &b16, &rows);
        T_NEAR(b16 - b8, 4096.0 * 4096, 0);
    }
    /* A calibration for another GPU is refused. */
    perf_calib_default(&c, &h);
    snprintf(c.gpu, sizeof c.gpu, "h100-sxm");
    m = t_llama3_8b();
    T_EQ_I(perf_ctx_init(&ctx, &m, &g, &c, 1, &err), SIM_EINVAL);
    T_STREQ(err.msg, "calibration: expected one fitted for GPU a100-sxm, got 'h100-sxm'");
}

/* ---- perf_step_s == perf_predict().step_s, bit for bit ---- */

static void random_calib(perf_calib *c, const sim_gpu *g, gsl_rng *r) {
    int i, j;
    perf_calib_default(c, g);
    snprintf(c->gpu, sizeof c->gpu, "%s", g->name);
    snprintf(c->source, sizeof c->source, "random \"test\" calibration\\n");
    c->step_base_s = gsl_rng_uniform(r) * 1e-3;
    c->step_per_seq_s = gsl_rng_uniform(r) * 1e-4;
    c->step_tp_s = gsl_rng_uniform(r) < 0.5 ? gsl_rng_uniform(r) * 1e-3 : 0.0;
    for (i = 0; i < 2 * PERF_N_OPS; i++) {
        /* i >= PERF_N_OPS: the fp8 set of a GEMM operator, for about half */
        int op = i % PERF_N_OPS;
        perf_op_calib *oc = i < PERF_N_OPS ? &c->op[op] : &c->op_fp8[op];
        perf_curve *cv[9] = {&oc->eff_c,  &oc->eff_m,  &oc->shape_c,  &oc->shape_m, &oc->unal,
                             &oc->work_c, &oc->work_m, &oc->aspect_c, &oc->aspect_m};
        if (i >= PERF_N_OPS && (!PERF_OP_IS_GEMM(op) || gsl_rng_uniform(r) < 0.5))
            continue;
        if (i >= PERF_N_OPS)
            c->has_fp8[op] = 1;
        oc->overhead_s = gsl_rng_uniform(r) * 1e-5;
        for (j = 0; j < 9; j++) {
            /* factor curves (j >= 2) on about half the operators, around
             * the shape and work indices (log2 of 1..2^30) and aspects */
            int k, n = (int)gsl_rng_uniform_int(r, PERF_MAX_KNOTS + 1);
            double x = j == 2 || j == 3 || j == 5 || j == 6 ? gsl_rng_uniform(r) * 20
                       : j >= 7                             ? -6 + gsl_rng_uniform(r)
                                                            : -3 + gsl_rng_uniform(r);
            if (j >= 2 && gsl_rng_uniform(r) < 0.5)
                n = 0;
            if (j == 4 && !PERF_OP_IS_GEMM(op))
                n = 0; /* GEMMs only */
            if ((j == 5 || j == 6) && !PERF_OP_HAS_WORK(op))
                n = 0; /* the attentions only */
            if (j >= 7 && !PERF_OP_IS_GEMM(op))
                n = 0; /* GEMMs only */
            cv[j]->n = n;
            for (k = 0; k < n; k++) {
                x += 0.01 + gsl_rng_uniform(r);
                cv[j]->x[k] = x;
                cv[j]->y[k] = j < 2 ? 0.01 + 1.49 * gsl_rng_uniform(r) : 0.25 + gsl_rng_uniform(r);
            }
        }
    }
}

static void test_bit_identity(void) {
    static const int tps[] = {1, 2, 4, 8};
    sim_model m = t_llama3_8b();
    sim_gpu g = t_h100(0.0);
    perf_calib c;
    perf_ctx ctx;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    int it;
    perf_cache cache;

    T_EQ_I(perf_cache_init(&cache, 0, 0), SIM_OK); /* tables sized lazily */
    gsl_rng_set(r, 20240531);
    for (it = 0; it < 20000; it++) {
        perf_batch b;
        perf_result res;
        double s;
        int k, np = (int)gsl_rng_uniform_int(r, 5), nd = (int)gsl_rng_uniform_int(r, 300);
        if (it % 500 == 0) {
            random_calib(&c, &g, r);
            m.w_dtype = (it / 500) % 2 ? SIM_DT_FP8 : SIM_DT_BF16; /* fp8: the GEMMs' fp8 sets */
            ctx_for(&ctx, &m, &g, &c, tps[gsl_rng_uniform_int(r, 4)]);
            perf_cache_reset(&cache); /* the context changed in place */
        }
        memset(&b, 0, sizeof b);
        for (k = 0; k < np; k++)
            perf_batch_add_prefill(&b, 1 + (int64_t)gsl_rng_uniform_int(r, 8192),
                                   (int64_t)gsl_rng_uniform_int(r, 30000),
                                   (int)gsl_rng_uniform_int(r, 2));
        for (k = 0; k < nd; k++)
            perf_batch_add_decode(&b, 1 + (int64_t)gsl_rng_uniform_int(r, 100000));
        perf_predict(&ctx, &b, &res);
        s = perf_step_s(&ctx, &b);
        if (memcmp(&s, &res.step_s, sizeof s) != 0)
            T_FAIL_("iteration %d: perf_step_s %.17g != perf_predict %.17g", it, s, res.step_s);
        /* the cached path: a miss, then hits with the same counts and other contexts */
        for (k = 0; k < 3; k++) {
            double sc = perf_step_s_cached(&ctx, &cache, &b);
            s = perf_step_s(&ctx, &b);
            if (memcmp(&s, &sc, sizeof s) != 0)
                T_FAIL_("iteration %d: perf_step_s_cached %.17g != perf_step_s %.17g", it, sc, s);
            b.decode_ctx += b.n_decode; /* the next decode step: same tokens and samples */
        }
        T_ASSERT(res.step_s >= 0);
    }
    perf_cache_fini(&cache);
    gsl_rng_free(r);
}

/* ---- curves ---- */

/* A decode stretch's stepper gives perf_step_s_cached's bits at every
 * summed context, on random calibrations (curves with knots) and shapes;
 * so do the later stretches perf_dstep_next starts on the same stepper
 * (other sizes and contexts, the segments of earlier ones kept), those at a
 * size the cache has seen (its figures kept in the token table) and a
 * stepper on a cache without tables. */
static void test_dstep(void) {
    sim_model m = t_llama3_8b();
    sim_gpu g = t_h100(2e-6);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    int trial, n_bound[2] = {0, 0};
    gsl_rng_set(r, 77);
    for (trial = 0; trial < 200; trial++) {
        perf_calib cal;
        perf_ctx ctx;
        perf_cache c1, c2;
        perf_dstep d, d1;
        int n = 1 + (int)gsl_rng_uniform_int(r, 256), n_first = n, i;
        int64_t ctx0 = n * (int64_t)(1 + gsl_rng_uniform_int(r, 30000));
        random_calib(&cal, &g, r);
        if (trial % 3 == 1) { /* slow compute: the decode attention's compute term can win */
            perf_curve *ec = &cal.op[PERF_OP_ATTN_DECODE].eff_c;
            int k;
            for (k = 0; k < ec->n; k++)
                ec->y[k] *= trial % 2 ? 1e-3 : 1e-2;
        }
        m.kv_dtype = trial % 3 == 0 ? SIM_DT_FP8 : SIM_DT_BF16;
        m.w_dtype = trial % 5 < 2 ? SIM_DT_FP8 : SIM_DT_BF16;
        ctx_for(&ctx, &m, &g, &cal, trial % 4 == 0 ? 2 : 1);
        memset(&c1, 0, sizeof c1); /* no tables: every call computes */
        T_EQ_I(perf_cache_init(&c2, 64, 16), SIM_OK);
        perf_dstep_init(&d, &ctx, &c2, n, ctx0);
        perf_dstep_init(&d1, &ctx, &c1, n, ctx0);
        for (i = 0; i < 200; i++) {
            if (i % 50 == 0 && i > 0) { /* another stretch, anywhere on the curves */
                /* the second time at the first size: from the table */
                n = i == 100 ? n_first : 1 + (int)gsl_rng_uniform_int(r, 256);
                ctx0 = n * (int64_t)(1 + gsl_rng_uniform_int(r, 30000)) - (int64_t)n * i;
                perf_dstep_next(&d, n, ctx0 + (int64_t)n * i);
                perf_dstep_next(&d1, n, ctx0 + (int64_t)n * i);
            }
            perf_batch b;
            memset(&b, 0, sizeof b);
            b.n_decode = b.n_sample = n;
            b.decode_ctx = ctx0 + (int64_t)n * i;
            {
                /* which roofline term of the decode attention binds here */
                const perf_op_calib *oc = &ctx.op[PERF_OP_ATTN_DECODE];
                double fl, by, rows, tc, tm;
                perf_op_cost(&ctx, PERF_OP_ATTN_DECODE, &b, &fl, &by, &rows);
                double w = perf_op_work(&ctx, PERF_OP_ATTN_DECODE, &b);
                double wc = oc->work_c.n > 0 ? perf_curve_eval(&oc->work_c, w) : 1.0;
                double wm = oc->work_m.n > 0 ? perf_curve_eval(&oc->work_m, w) : 1.0;
                tc = fl / (ctx.peak_attn * perf_curve_eval(&oc->eff_c, log2(rows)) * wc);
                tm = by / (ctx.gpu.hbm_bw * perf_curve_eval(&oc->eff_m, log2(rows)) * wm);
                n_bound[tc > tm]++;
            }
            T_ASSERT(perf_dstep_time(&d, b.decode_ctx) == perf_step_s_cached(&ctx, &c1, &b));
            T_ASSERT(perf_dstep_time(&d1, b.decode_ctx) == perf_step_s_cached(&ctx, &c1, &b));
            {
                double fw, bw, fd, bd;
                perf_work(&ctx, &b, &fw, &bw);
                perf_dstep_work(&d, b.decode_ctx, &fd, &bd);
                T_ASSERT(memcmp(&fw, &fd, sizeof fw) == 0 && memcmp(&bw, &bd, sizeof bw) == 0);
            }
            T_ASSERT(perf_dstep_time(&d, b.decode_ctx) == perf_step_s(&ctx, &b));
            T_ASSERT(perf_step_s_cached(&ctx, &c2, &b) == perf_step_s(&ctx, &b));
        }
        perf_cache_fini(&c2);
    }
    gsl_rng_free(r);
    /* both terms bound some steps: the stepper's shortcut (it skips the
     * compute term when it cannot win) and its full path are both checked */
    T_ASSERT(n_bound[0] > 100 && n_bound[1] > 100);
}

/* ---- the count tables of perf_step_cached ---- */

/* Checks perf_step_cached on c against perf_step_s and perf_work, bit for
 * bit (time, FLOPs, bytes), twice: a fill, then a hit. */
static void check_cached(const perf_ctx *ctx, perf_cache *c, const perf_batch *b, int it) {
    double t = perf_step_s(ctx, b), f, by;
    int k;
    perf_work(ctx, b, &f, &by);
    for (k = 0; k < 2; k++) {
        double tc, fc, bc;
        tc = perf_step_cached(ctx, c, b, &fc, &bc);
        if (memcmp(&tc, &t, sizeof t) != 0 || memcmp(&fc, &f, sizeof f) != 0 ||
            memcmp(&bc, &by, sizeof by) != 0)
            T_FAIL_("batch %d, call %d: cached (%.17g s, %.17g FLOPs, %.17g B) != "
                    "(%.17g s, %.17g FLOPs, %.17g B)",
                    it, k, tc, fc, bc, t, f, by);
    }
}

/* Random batches of many distinct token and sample counts, beyond the
 * tables' first size (so they grow) and beyond PERF_CACHE_MAX (computed
 * directly), on random calibrations, fp8, TP 1..16 (across nodes at 16),
 * one cache shared by two contexts in turn, a zeroed cache (no tables) and
 * failed allocations: the cached step equals perf_step_s and perf_work bit
 * for bit, and fini frees everything. */
static void test_count_tables(void) {
    static const int tps[] = {1, 2, 4, 8, 16};
    sim_model m = t_llama3_8b();
    sim_gpu g = t_h100(1e-6);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    size_t base = sim_mem_current();
    perf_cache c, c0;
    perf_calib cal;
    perf_ctx ctx[2];
    perf_batch b;
    int it;

    g.gpus_per_node = 8;
    g.ib_bw = 50e9;
    g.ib_latency_s = 5e-6;
    gsl_rng_set(r, 4242);
    memset(&c0, 0, sizeof c0);
    T_EQ_I(perf_cache_init(&c, 100, 8), SIM_OK);
    T_EQ_I(c.n_tok, 101);
    T_EQ_I(c.n_smp, 9);
    for (it = 0; it < 6000; it++) {
        perf_ctx *x = &ctx[it % 2];
        int k, np = (int)gsl_rng_uniform_int(r, 6), nd = (int)gsl_rng_uniform_int(r, 400);
        if (it % 1000 < 2) { /* new contexts, changed in place */
            random_calib(&cal, &g, r);
            m.w_dtype = (it / 1000) % 2 ? SIM_DT_FP8 : SIM_DT_BF16;
            m.kv_dtype = (it / 2000) % 2 ? SIM_DT_FP8 : SIM_DT_BF16;
            ctx_for(x, &m, &g, &cal, tps[gsl_rng_uniform_int(r, 5)]);
            perf_cache_reset(&c);
        }
        memset(&b, 0, sizeof b);
        for (k = 0; k < np; k++)
            perf_batch_add_prefill(&b, 1 + (int64_t)gsl_rng_uniform_int(r, 12000),
                                   (int64_t)gsl_rng_uniform_int(r, 30000),
                                   (int)gsl_rng_uniform_int(r, 2));
        for (k = 0; k < nd; k++)
            perf_batch_add_decode(&b, 1 + (int64_t)gsl_rng_uniform_int(r, 100000));
        check_cached(x, &c, &b, it);
        check_cached(x, &c0, &b, it);
    }
    T_ASSERT(c.n_tok > 101 && c.n_tok <= PERF_CACHE_MAX);
    T_ASSERT(c.n_smp > 9);
    T_ASSERT(c0.tok == NULL && c0.n_tok == 0); /* a zeroed cache never allocates */

    /* counts at and above PERF_CACHE_MAX: computed directly */
    memset(&b, 0, sizeof b);
    perf_batch_add_prefill(&b, PERF_CACHE_MAX - 3, 0, 1);
    perf_batch_add_decode(&b, 10);
    perf_batch_add_decode(&b, 20);
    perf_batch_add_decode(&b, 30);
    check_cached(&ctx[0], &c, &b, -1);
    T_ASSERT(c.n_tok <= PERF_CACHE_MAX);

    /* a failed growth computes directly and keeps the table */
    {
        int64_t n = c.n_tok;
        memset(&b, 0, sizeof b);
        perf_batch_add_prefill(&b, n + 5, 0, 1);
        double t;
        sim_mem_fail_at(1);
        t = perf_step_s_cached(&ctx[1], &c, &b);
        sim_mem_fail_at(0);
        T_ASSERT(t == perf_step_s(&ctx[1], &b));
        T_EQ_I(c.n_tok, n);
        check_cached(&ctx[1], &c, &b, -3); /* now it grows */
        T_ASSERT(c.n_tok > n);
    }
    perf_cache_fini(&c);
    T_ASSERT(c.tok == NULL && c.smp == NULL && c.n_tok == 0 && !c.on);
    perf_cache_fini(&c); /* a zeroed cache: no-op */
    T_EQ_I(sim_mem_current(), base);

    /* a failed init leaves a zeroed cache that still works */
    sim_mem_fail_at(1);
    T_EQ_I(perf_cache_init(&c, 5000, 64), SIM_ENOMEM);
    sim_mem_fail_at(0);
    T_ASSERT(c.tok == NULL && c.smp == NULL && !c.on);
    sim_mem_fail_at(2);
    T_EQ_I(perf_cache_init(&c, 5000, 64), SIM_ENOMEM);
    sim_mem_fail_at(0);
    T_ASSERT(c.tok == NULL && c.smp == NULL && !c.on);
    T_EQ_I(sim_mem_current(), base);
    check_cached(&ctx[0], &c, &b, -4);
    T_EQ_I(sim_mem_current(), base);
    gsl_rng_free(r);
}

/* ---- fp8 curve sets ---- */

/* A GEMM operator's fp8 set is used for fp8 weights and only then; a GEMM
 * without one runs on its bf16 set at the fp8 peak (older files), and the
 * other operators never take one. */
static void test_fp8_curves(void) {
    sim_model m = t_llama3_8b(), m8;
    sim_gpu g = t_h100(0.0);
    perf_calib c, plain;
    perf_ctx ctx, ctx8, ctx_plain, ctx8_plain;
    perf_batch b;
    perf_result r, r8;
    double fl, by, rows, want;
    int op, j;

    synthetic_calib(&c, &g, 2e-6);
    for (op = 0; op < PERF_N_OPS; op++) {
        if (op == PERF_OP_O_PROJ)
            continue;      /* o_proj keeps no fp8 set */
        c.has_fp8[op] = 1; /* set on norm too: ignored, norm is no GEMM */
        c.op_fp8[op].overhead_s = 7e-6;
        c.op_fp8[op].eff_c.n = c.op_fp8[op].eff_m.n = 2;
        for (j = 0; j < 2; j++) {
            c.op_fp8[op].eff_c.x[j] = c.op_fp8[op].eff_m.x[j] = 10.0 * j;
            c.op_fp8[op].eff_c.y[j] = 0.3 + 0.1 * j;
            c.op_fp8[op].eff_m.y[j] = 0.5 + 0.1 * j;
        }
    }
    plain = c;
    memset(plain.has_fp8, 0, sizeof plain.has_fp8);
    m8 = m;
    m8.w_dtype = SIM_DT_FP8;
    ctx_for(&ctx, &m, &g, &c, 2);
    ctx_for(&ctx8, &m8, &g, &c, 2);
    ctx_for(&ctx_plain, &m, &g, &plain, 2);
    ctx_for(&ctx8_plain, &m8, &g, &plain, 2);
    memset(&b, 0, sizeof b);
    perf_batch_add_prefill(&b, 700, 100, 1);
    for (j = 0; j < 37; j++)
        perf_batch_add_decode(&b, 1000 + 10 * j);

    T_ASSERT(perf_calib_op(&c, PERF_OP_QKV_PROJ, SIM_DT_FP8) == &c.op_fp8[PERF_OP_QKV_PROJ]);
    T_ASSERT(perf_calib_op(&c, PERF_OP_QKV_PROJ, SIM_DT_BF16) == &c.op[PERF_OP_QKV_PROJ]);
    T_ASSERT(perf_calib_op(&c, PERF_OP_O_PROJ, SIM_DT_FP8) == &c.op[PERF_OP_O_PROJ]);
    T_ASSERT(perf_calib_op(&c, PERF_OP_NORM, SIM_DT_FP8) == &c.op[PERF_OP_NORM]);
    for (op = 0; op < PERF_N_OPS; op++) {
        const char *name = perf_op_name((enum perf_op)op);
        int fp8_set = PERF_OP_IS_GEMM(op) && op != PERF_OP_O_PROJ;
        /* bf16 weights: the bf16 set at the bf16 peak, fp8 sets or not */
        perf_op_cost(&ctx, (enum perf_op)op, &b, &fl, &by, &rows);
        if (op != PERF_OP_ALLREDUCE && op != PERF_OP_ATTN_PREFILL && op != PERF_OP_ATTN_DECODE) {
            want = perf_roofline_s(&c.op[op], g.flops_bf16, g.hbm_bw, fl, by, rows);
            if (perf_op_call_s(&ctx, (enum perf_op)op, &b) != want)
                T_FAIL_("%s, bf16 weights: not the bf16 set", name);
        }
        T_ASSERT(perf_op_call_s(&ctx, (enum perf_op)op, &b) ==
                 perf_op_call_s(&ctx_plain, (enum perf_op)op, &b));
        /* fp8 weights: the fp8 set where there is one, else the bf16 set,
         * at the fp8 peak */
        perf_op_cost(&ctx8, (enum perf_op)op, &b, &fl, &by, &rows);
        if (PERF_OP_IS_GEMM(op)) {
            want = perf_roofline_s(fp8_set ? &c.op_fp8[op] : &c.op[op], g.flops_fp8, g.hbm_bw, fl,
                                   by, rows);
            if (perf_op_call_s(&ctx8, (enum perf_op)op, &b) != want)
                T_FAIL_("%s, fp8 weights: not the %s set", name, fp8_set ? "fp8" : "bf16");
            want = perf_roofline_s(&c.op[op], g.flops_fp8, g.hbm_bw, fl, by, rows);
            T_ASSERT(perf_op_call_s(&ctx8_plain, (enum perf_op)op, &b) == want);
            T_ASSERT((perf_op_call_s(&ctx8, (enum perf_op)op, &b) != want) == fp8_set);
        } else {
            T_ASSERT(perf_op_call_s(&ctx8, (enum perf_op)op, &b) ==
                     perf_op_call_s(&ctx8_plain, (enum perf_op)op, &b));
        }
    }
    /* whole steps: bf16 unchanged bit for bit by fp8 sets, fp8 slower with
     * these (lower) fp8 efficiencies, the split and perf_step_s agreeing */
    perf_predict(&ctx, &b, &r);
    T_ASSERT(r.step_s == perf_step_s(&ctx_plain, &b));
    perf_predict(&ctx8, &b, &r8);
    T_ASSERT(r8.step_s == perf_step_s(&ctx8, &b));
    T_ASSERT(r8.step_s > perf_step_s(&ctx8_plain, &b));
    T_ASSERT(r8.op_s[PERF_OP_QKV_PROJ] == m.n_layers * perf_op_call_s(&ctx8, PERF_OP_QKV_PROJ, &b));
    T_ASSERT(r8.op_s[PERF_OP_NORM] == r.op_s[PERF_OP_NORM]);
}

static void test_curves(void) {
    perf_curve c;
    memset(&c, 0, sizeof c);
    T_NEAR(perf_curve_eval(&c, 3.0), 1.0, 0);
    c.n = 3;
    c.x[0] = 0;
    c.x[1] = 2;
    c.x[2] = 4;
    c.y[0] = 0.2;
    c.y[1] = 0.6;
    c.y[2] = 1.0;
    T_NEAR(perf_curve_eval(&c, -1.0), 0.2, 0);
    T_NEAR(perf_curve_eval(&c, 0.0), 0.2, 0);
    T_NEAR(perf_curve_eval(&c, 1.0), 0.4, 1e-15);
    T_NEAR(perf_curve_eval(&c, 2.0), 0.6, 0);
    T_NEAR(perf_curve_eval(&c, 3.5), 0.9, 1e-15);
    T_NEAR(perf_curve_eval(&c, 4.0), 1.0, 0);
    T_NEAR(perf_curve_eval(&c, 40.0), 1.0, 0);
    c.n = 1;
    T_NEAR(perf_curve_eval(&c, -5.0), 0.2, 0);
    T_NEAR(perf_curve_eval(&c, 5.0), 0.2, 0);
    T_EQ_I(perf_op_from_name("attn_decode"), PERF_OP_ATTN_DECODE);
    T_EQ_I(perf_op_from_name("attention"), -1);
    T_STREQ(perf_op_name(PERF_OP_ALLREDUCE), "allreduce");
}

/* perf_curve_eval against a scan for the segment, on random uneven knots
 * (clustered, so a lookup's first guess is often far off), at random points,
 * at and beside every knot, and beyond the ends: the same bits. */
static void test_curves_uneven(void) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    int trial, n_far = 0;
    gsl_rng_set(r, 4242);
    for (trial = 0; trial < 2000; trial++) {
        perf_curve c;
        int k, j;
        memset(&c, 0, sizeof c);
        c.n = 2 + (int)gsl_rng_uniform_int(r, PERF_MAX_KNOTS - 1);
        c.x[0] = -10 + 20 * gsl_rng_uniform(r);
        c.y[0] = 0.01 + gsl_rng_uniform(r);
        for (k = 1; k < c.n; k++) { /* gaps of 1e-3 to 100, mixed */
            c.x[k] = c.x[k - 1] + pow(10.0, -3.0 + 5.0 * gsl_rng_uniform(r));
            c.y[k] = 0.01 + gsl_rng_uniform(r);
        }
        for (j = 0; j < 4 * c.n + 20; j++) {
            double x, want, got;
            int l = 0;
            if (j < 3 * c.n) { /* a knot, or the doubles either side of it */
                x = c.x[j / 3];
                x = j % 3 == 0 ? x : nextafter(x, j % 3 == 1 ? -INFINITY : INFINITY);
            } else {
                x = c.x[0] - 1 + (c.x[c.n - 1] - c.x[0] + 2) * gsl_rng_uniform(r);
            }
            if (!(x > c.x[0])) {
                want = c.y[0];
            } else if (x >= c.x[c.n - 1]) {
                want = c.y[c.n - 1];
            } else {
                while (c.x[l + 1] <= x)
                    l++;
                want = c.y[l] + (x - c.x[l]) / (c.x[l + 1] - c.x[l]) * (c.y[l + 1] - c.y[l]);
                /* where evenly spaced knots would put x, against where it is */
                n_far += abs((int)((x - c.x[0]) / (c.x[c.n - 1] - c.x[0]) * (c.n - 1)) - l) > 3;
            }
            got = perf_curve_eval(&c, x);
            T_ASSERT(memcmp(&got, &want, sizeof got) == 0);
        }
    }
    gsl_rng_free(r);
    T_ASSERT(n_far > 1000); /* the walk went a long way, often */
}

/* ---- calibration files ---- */

static const char *tmp_path = "test_perf_calib.tmp.json";

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    T_ASSERT(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* Shape factors, the unaligned factor and the tp > 1 step overhead: each
 * scales what it should, and leaves everything as it was when absent. */
static void test_shape_factors(void) {
    sim_gpu g = t_h100(4e-6);
    sim_model m = t_llama3_8b();
    perf_calib c, s;
    perf_ctx c1, s1;
    perf_op_calib a;
    perf_batch b;
    sim_err err;
    double base, sh;
    int op;

    perf_calib_default(&c, &g);
    snprintf(c.gpu, sizeof c.gpu, "%s", g.name);
    for (op = 0; op < PERF_N_OPS; op++) {
        c.op[op].eff_c.n = c.op[op].eff_m.n = 2;
        c.op[op].eff_c.x[1] = c.op[op].eff_m.x[1] = 12;
        c.op[op].eff_c.y[0] = 0.4;
        c.op[op].eff_c.y[1] = 0.8;
        c.op[op].eff_m.y[0] = c.op[op].eff_m.y[1] = 0.9;
    }
    /* no factor curves: perf_op_at_shape copies, bit for bit */
    perf_op_at_shape(&c.op[PERF_OP_MLP_UP], 25.0, 1.0, &a);
    T_ASSERT(memcmp(&a, &c.op[PERF_OP_MLP_UP], sizeof a) == 0);

    /* a shape_c factor of 0.5 at mlp_up's shape doubles its compute time */
    T_EQ_I(perf_ctx_init(&c1, &m, &g, &c, 1, &err), SIM_OK);
    sh = perf_op_shape(&c1, PERF_OP_MLP_UP);
    T_NEAR(sh, log2(2.0 * 14336 * 4096), 1e-12);
    T_NEAR(perf_gemm_shape(2.0 * 14336, 4096), sh, 0);
    s = c;
    s.op[PERF_OP_MLP_UP].shape_c.n = 2;
    s.op[PERF_OP_MLP_UP].shape_c.x[0] = sh - 1;
    s.op[PERF_OP_MLP_UP].shape_c.x[1] = sh + 1;
    s.op[PERF_OP_MLP_UP].shape_c.y[0] = 0.25;
    s.op[PERF_OP_MLP_UP].shape_c.y[1] = 0.75;
    T_EQ_I(perf_ctx_init(&s1, &m, &g, &s, 1, &err), SIM_OK);
    T_NEAR(perf_curve_eval(&s1.op[PERF_OP_MLP_UP].eff_c, 12), 0.8 * 0.5, 1e-15);
    T_EQ_I(s1.op[PERF_OP_MLP_UP].shape_c.n, 0);
    memset(&b, 0, sizeof b);
    perf_batch_add_prefill(&b, 8192, 0, 1);
    base = perf_op_call_s(&c1, PERF_OP_MLP_UP, &b) - c.op[PERF_OP_MLP_UP].overhead_s;
    T_REL(perf_op_call_s(&s1, PERF_OP_MLP_UP, &b) - c.op[PERF_OP_MLP_UP].overhead_s, 2 * base,
          1e-12);
    /* ... and nothing else: another operator, and a model of another shape
     * outside the curve's knots takes the end value */
    T_NEAR(perf_op_call_s(&s1, PERF_OP_O_PROJ, &b), perf_op_call_s(&c1, PERF_OP_O_PROJ, &b), 0);

    /* the unaligned factor: M = 8192 unchanged, M = 8193 at half the
     * efficiency (twice the roofline time) */
    s = c;
    s.op[PERF_OP_QKV_PROJ].unal.n = 1;
    s.op[PERF_OP_QKV_PROJ].unal.y[0] = 0.5;
    T_EQ_I(perf_ctx_init(&s1, &m, &g, &s, 1, &err), SIM_OK);
    T_NEAR(perf_op_call_s(&s1, PERF_OP_QKV_PROJ, &b), perf_op_call_s(&c1, PERF_OP_QKV_PROJ, &b), 0);
    memset(&b, 0, sizeof b);
    perf_batch_add_prefill(&b, 8193, 0, 1);
    base = perf_op_call_s(&c1, PERF_OP_QKV_PROJ, &b) - c.op[PERF_OP_QKV_PROJ].overhead_s;
    T_REL(perf_op_call_s(&s1, PERF_OP_QKV_PROJ, &b) - c.op[PERF_OP_QKV_PROJ].overhead_s, 2 * base,
          1e-12);
    /* decode batches of 8193 sequences too (the step tables by T) */
    T_ASSERT(perf_step_s(&s1, &b) > perf_step_s(&c1, &b));

    /* aspect factors: weight GEMMs only, read at log2(N / K) of the weight
     * on one GPU (llama-3-8b mlp_down: N 4096, K 14336 at TP 1, 7168 at
     * TP 2), applied with the shape factor once per context */
    T_EQ_I(perf_ctx_init(&c1, &m, &g, &c, 1, &err), SIM_OK);
    T_NEAR(perf_op_aspect(&c1, PERF_OP_MLP_DOWN), log2(4096.0 / 14336), 1e-12);
    T_NEAR(perf_gemm_aspect(4096, 14336), perf_op_aspect(&c1, PERF_OP_MLP_DOWN), 0);
    T_ASSERT(isnan(perf_op_aspect(&c1, PERF_OP_ROPE)));
    s = c;
    s.op[PERF_OP_MLP_DOWN].aspect_c.n = 2; /* 0.5 at TP 1's aspect (-1.81), 1 at TP 2's (-0.81) */
    s.op[PERF_OP_MLP_DOWN].aspect_c.x[0] = log2(4096.0 / 14336);
    s.op[PERF_OP_MLP_DOWN].aspect_c.x[1] = log2(4096.0 / 7168);
    s.op[PERF_OP_MLP_DOWN].aspect_c.y[0] = 0.5;
    s.op[PERF_OP_MLP_DOWN].aspect_c.y[1] = 1.0;
    s.op[PERF_OP_ROPE].aspect_c = s.op[PERF_OP_MLP_DOWN].aspect_c; /* ignored: not a GEMM */
    T_EQ_I(perf_ctx_init(&s1, &m, &g, &s, 1, &err), SIM_OK);
    T_EQ_I(s1.op[PERF_OP_MLP_DOWN].aspect_c.n, 0); /* applied, then cleared */
    memset(&b, 0, sizeof b);
    perf_batch_add_prefill(&b, 8192, 0, 1); /* compute-bound */
    base = perf_op_call_s(&c1, PERF_OP_MLP_DOWN, &b) - c.op[PERF_OP_MLP_DOWN].overhead_s;
    T_REL(perf_op_call_s(&s1, PERF_OP_MLP_DOWN, &b) - c.op[PERF_OP_MLP_DOWN].overhead_s, 2 * base,
          1e-12);
    T_NEAR(perf_op_call_s(&s1, PERF_OP_ROPE, &b), perf_op_call_s(&c1, PERF_OP_ROPE, &b), 0);
    T_EQ_I(perf_ctx_init(&c1, &m, &g, &c, 2, &err), SIM_OK);
    T_EQ_I(perf_ctx_init(&s1, &m, &g, &s, 2, &err), SIM_OK);
    T_NEAR(perf_op_call_s(&s1, PERF_OP_MLP_DOWN, &b), perf_op_call_s(&c1, PERF_OP_MLP_DOWN, &b), 0);
    T_EQ_I(perf_ctx_init(&c1, &m, &g, &c, 1, &err), SIM_OK);

    /* work factors: the attentions only, read at log2(query heads per GPU
     * x prefill tokens) for attn_prefill and log2(KV heads per GPU x summed
     * context) for attn_decode (llama-3-8b: 32 and 8 heads at TP 1, 16 and
     * 4 at TP 2) */
    memset(&b, 0, sizeof b);
    perf_batch_add_prefill(&b, 3000, 0, 1);
    perf_batch_add_prefill(&b, 1000, 500, 1);
    perf_batch_add_decode(&b, 900);
    perf_batch_add_decode(&b, 1300);
    T_NEAR(perf_op_work(&c1, PERF_OP_ATTN_PREFILL, &b), log2(4000.0 * 32), 1e-12);
    T_NEAR(perf_op_work(&c1, PERF_OP_ATTN_DECODE, &b), log2(2200.0 * 8), 1e-12);
    T_ASSERT(isnan(perf_op_work(&c1, PERF_OP_NORM, &b)));
    T_EQ_I(perf_ctx_init(&s1, &m, &g, &c, 2, &err), SIM_OK);
    T_NEAR(perf_op_work(&s1, PERF_OP_ATTN_DECODE, &b), log2(2200.0 * 4), 1e-12);
    T_NEAR(perf_op_work(&s1, PERF_OP_ATTN_PREFILL, &b), log2(4000.0 * 16), 1e-12);
    s = c;
    for (op = 0; op < PERF_N_OPS; op++) { /* a factor of 0.5 below work 2^14, 1 above 2^17 */
        perf_curve *w[2] = {&s.op[op].work_c, &s.op[op].work_m};
        int j;
        for (j = 0; j < 2; j++) {
            w[j]->n = 2;
            w[j]->x[0] = 14;
            w[j]->x[1] = 17;
            w[j]->y[0] = 0.5;
            w[j]->y[1] = 1.0;
        }
    }
    T_EQ_I(perf_ctx_init(&s1, &m, &g, &s, 1, &err), SIM_OK);
    T_EQ_I(s1.op[PERF_OP_NORM].work_m.n, 0); /* cleared where it has no index */
    T_EQ_I(s1.op[PERF_OP_ATTN_DECODE].work_m.n, 2);
    T_EQ_I(perf_ctx_init(&c1, &m, &g, &c, 1, &err), SIM_OK);
    for (op = PERF_OP_ATTN_PREFILL; op <= PERF_OP_ATTN_DECODE; op++) {
        /* both between the knots: prefill 4,000 tokens x 32 heads =
         * 128,000 (just under 2^17), decode 2,200 x 8 = 17,600 */
        double w = perf_op_work(&c1, (enum perf_op)op, &b);
        double f = 0.5 + (w - 14) / 3 * 0.5;
        T_ASSERT(w > 14 && w < 17);
        base = perf_op_call_s(&c1, (enum perf_op)op, &b) - c.op[op].overhead_s;
        T_REL(perf_op_call_s(&s1, (enum perf_op)op, &b) - c.op[op].overhead_s, base / f, 1e-12);
    }
    T_NEAR(perf_op_call_s(&s1, PERF_OP_NORM, &b), perf_op_call_s(&c1, PERF_OP_NORM, &b), 0);
    T_ASSERT(perf_step_s(&s1, &b) > perf_step_s(&c1, &b));

    /* step_tp_s: added at tp > 1 only */
    s = c;
    s.step_base_s = 1e-3;
    s.step_tp_s = 5e-4;
    c.step_base_s = 1e-3;
    memset(&b, 0, sizeof b);
    perf_batch_add_decode(&b, 100);
    T_EQ_I(perf_ctx_init(&c1, &m, &g, &c, 1, &err), SIM_OK);
    T_EQ_I(perf_ctx_init(&s1, &m, &g, &s, 1, &err), SIM_OK);
    T_NEAR(perf_step_s(&s1, &b), perf_step_s(&c1, &b), 0);
    T_EQ_I(perf_ctx_init(&c1, &m, &g, &c, 2, &err), SIM_OK);
    T_EQ_I(perf_ctx_init(&s1, &m, &g, &s, 2, &err), SIM_OK);
    T_NEAR(perf_step_s(&s1, &b) - perf_step_s(&c1, &b), 5e-4, 1e-15);
}

static void test_round_trip(void) {
    sim_gpu g = t_h100(0.0);
    perf_calib c, d;
    sim_err err;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    int it;

    gsl_rng_set(r, 7);
    for (it = 0; it < 20; it++) {
        memset(&c, 0, sizeof c);
        random_calib(&c, &g, r);
        T_EQ_I(perf_calib_save(&c, tmp_path, &err), SIM_OK);
        memset(&d, 0xff, sizeof d);
        if (perf_calib_load(tmp_path, &d, &err) != SIM_OK)
            T_FAIL_("load after save: %s", err.msg);
        T_STREQ(d.gpu, c.gpu);
        T_STREQ(d.source, c.source);
        T_ASSERT(memcmp(&c, &d, sizeof c) == 0);
    }
    gsl_rng_free(r);
    /* The datasheet default round-trips too (empty curves). */
    perf_calib_default(&c, &g);
    T_EQ_I(perf_calib_save(&c, tmp_path, &err), SIM_OK);
    memset(&d, 0xff, sizeof d);
    T_EQ_I(perf_calib_load(tmp_path, &d, &err), SIM_OK);
    T_ASSERT(memcmp(&c, &d, sizeof c) == 0);
    T_EQ_I(perf_calib_save(&c, "no-such-dir/x.json", &err), SIM_EIO);
    /* a number JSON cannot spell (an overhead fitted to inf once) is refused,
     * and the file there is left as it was */
    {
        perf_calib bad = c;
        bad.op[PERF_OP_QKV_PROJ].overhead_s = INFINITY;
        T_EQ_I(perf_calib_save(&bad, tmp_path, &err), SIM_EINVAL);
        T_STREQ(err.msg, "ops.qkv_proj.overhead_s: expected finite numbers, got one that is not; "
                         "not written");
        T_EQ_I(perf_calib_load(tmp_path, &d, &err), SIM_OK);
        T_ASSERT(memcmp(&c, &d, sizeof c) == 0);
    }
    /* over an existing file: written beside it and renamed, nothing left
     * over, the file's permissions kept */
    T_ASSERT(chmod(tmp_path, 0600) == 0);
    T_EQ_I(perf_calib_save(&c, tmp_path, &err), SIM_OK);
    {
        struct stat st;
        T_ASSERT(stat(tmp_path, &st) == 0 && (st.st_mode & 0777) == 0600);
    }
    {
        char side[256];
        FILE *f;
        snprintf(side, sizeof side, "%s.tmp", tmp_path);
        f = fopen(side, "r");
        T_ASSERT(f == NULL);
        if (f != NULL)
            fclose(f);
    }
    remove(tmp_path);
}

/* A complete file whose operator `op` has body `body` (NULL: left out),
 * with `extra` (NULL: none) added to the ops and `top` to the top level. */
static void calib_text(char *buf, size_t n, const char *top, const char *op, const char *body,
                       const char *extra) {
    size_t used;
    int i, first = 1;
    used = (size_t)snprintf(buf, n, "{\"gpu\": \"h100-sxm\", %s\"ops\": {", top ? top : "");
    for (i = 0; i < PERF_N_OPS; i++) {
        const char *name = perf_op_name((enum perf_op)i);
        const char *b = "{\"overhead_s\": 1e-6}";
        if (op != NULL && strcmp(op, name) == 0) {
            if (body == NULL)
                continue;
            b = body;
        }
        used += (size_t)snprintf(buf + used, n - used, "%s\"%s\": %s", first ? "" : ", ", name, b);
        first = 0;
    }
    if (extra != NULL)
        used += (size_t)snprintf(buf + used, n - used, ", %s", extra);
    snprintf(buf + used, n - used, "}}\n");
}

static void expect_bad(const char *text, int code, const char *msg) {
    perf_calib c;
    sim_err err;
    write_file(tmp_path, text);
    T_EQ_I(perf_calib_load(tmp_path, &c, &err), code);
    T_STREQ(err.src, tmp_path);
    T_STREQ(err.msg, msg);
}

static void test_malformed(void) {
    char buf[8192];
    perf_calib c;
    sim_err err;

    calib_text(buf, sizeof buf, "\"step_base_s\": 0.001, ", NULL, NULL, NULL);
    write_file(tmp_path, buf);
    T_EQ_I(perf_calib_load(tmp_path, &c, &err), SIM_OK);
    T_STREQ(c.gpu, "h100-sxm");
    T_NEAR(c.step_base_s, 0.001, 0);
    T_NEAR(c.op[PERF_OP_SAMPLE].overhead_s, 1e-6, 0);
    T_EQ_I(c.op[PERF_OP_SAMPLE].eff_m.n, 0);

    calib_text(buf, sizeof buf, NULL, NULL, NULL, "\"qkv\": {\"overhead_s\": 0}");
    expect_bad(buf, SIM_EPARSE,
               "ops: unknown operator 'qkv', expected one of qkv_proj, o_proj, mlp_up, mlp_act, "
               "mlp_down, norm, rope, attn_prefill, attn_decode, kv_save, embed, lm_head, sample, "
               "allreduce");
    calib_text(buf, sizeof buf, NULL, "allreduce", NULL, NULL);
    expect_bad(buf, SIM_EPARSE, "ops: missing operator 'allreduce'");
    calib_text(buf, sizeof buf, NULL, "qkv_proj",
               "{\"overhead_s\": 0, \"eff_c\": {\"log2_rows\": [1, 0.5], \"eff\": [0.5, 0.6]}}",
               NULL);
    expect_bad(buf, SIM_EPARSE,
               "ops.qkv_proj.eff_c.log2_rows[1]: expected a finite number above the previous "
               "knot, got '0.5'");
    calib_text(buf, sizeof buf, NULL, "norm",
               "{\"overhead_s\": 0, \"eff_m\": {\"log2_rows\": [0, 1], \"eff\": [1.75, 0.6]}}",
               NULL);
    expect_bad(buf, SIM_EPARSE,
               "ops.norm.eff_m.eff[0]: expected an efficiency in [0.0001, 1.5], got '1.75'");
    calib_text(buf, sizeof buf, NULL, "norm",
               "{\"overhead_s\": 0, \"eff_m\": {\"log2_rows\": [0, 1], \"eff\": [0, 0.6]}}", NULL);
    expect_bad(buf, SIM_EPARSE,
               "ops.norm.eff_m.eff[0]: expected an efficiency in [0.0001, 1.5], got '0'");
    /* below the range calibrate fits in: a step would take forever */
    calib_text(buf, sizeof buf, NULL, "norm",
               "{\"overhead_s\": 0, \"eff_m\": {\"log2_rows\": [0, 1], \"eff\": [0.6, 5e-324]}}",
               NULL);
    expect_bad(buf, SIM_EPARSE,
               "ops.norm.eff_m.eff[1]: expected an efficiency in [0.0001, 1.5], got "
               "'4.94065645841247e-324'");
    calib_text(buf, sizeof buf, NULL, "norm",
               "{\"overhead_s\": 0, \"eff_m\": {\"log2_rows\": [0, 1], \"eff\": [0.6]}}", NULL);
    expect_bad(buf, SIM_EPARSE,
               "ops.norm.eff_m.eff: expected as many values as log2_rows knots (2), got 1");
    calib_text(buf, sizeof buf, NULL, "rope", "{\"overhead_s\": -1}", NULL);
    expect_bad(buf, SIM_EPARSE,
               "ops.rope.overhead_s: expected a number of seconds in [0, 1], got '-1'");
    calib_text(buf, sizeof buf, NULL, "rope", "{\"overhead\": 1}", NULL);
    expect_bad(buf, SIM_EPARSE,
               "ops.rope: unknown key 'overhead', expected overhead_s, eff_c, eff_m, shape_c, "
               "shape_m, unaligned, aspect_c, aspect_m, work_c or work_m");
    calib_text(buf, sizeof buf, NULL, "rope", "{}", NULL);
    expect_bad(buf, SIM_EPARSE, "ops.rope.overhead_s: missing");
    /* fp8 sets: GEMM operators only, same keys, not nested */
    calib_text(buf, sizeof buf, NULL, "mlp_up",
               "{\"overhead_s\": 1e-6, \"fp8\": {\"overhead_s\": 2e-6, \"eff_c\": "
               "{\"log2_rows\": [0, 4], \"eff\": [0.4, 0.5]}}}",
               NULL);
    write_file(tmp_path, buf);
    T_EQ_I(perf_calib_load(tmp_path, &c, &err), SIM_OK);
    T_EQ_I(c.has_fp8[PERF_OP_MLP_UP], 1);
    T_EQ_I(c.has_fp8[PERF_OP_MLP_DOWN], 0);
    T_NEAR(c.op_fp8[PERF_OP_MLP_UP].overhead_s, 2e-6, 0);
    T_NEAR(c.op_fp8[PERF_OP_MLP_UP].eff_c.y[1], 0.5, 0);
    T_EQ_I(c.op_fp8[PERF_OP_MLP_UP].eff_m.n, 0);
    T_NEAR(c.op[PERF_OP_MLP_UP].overhead_s, 1e-6, 0);
    calib_text(buf, sizeof buf, NULL, "norm", "{\"overhead_s\": 0, \"fp8\": {\"overhead_s\": 0}}",
               NULL);
    expect_bad(buf, SIM_EPARSE,
               "ops.norm: unknown key 'fp8', expected overhead_s, eff_c, eff_m, shape_c, shape_m, "
               "unaligned, aspect_c, aspect_m, work_c or work_m");
    calib_text(buf, sizeof buf, NULL, "qkv_proj", "{\"overhead_s\": 0, \"eff\": 1}", NULL);
    expect_bad(buf, SIM_EPARSE,
               "ops.qkv_proj: unknown key 'eff', expected overhead_s, eff_c, eff_m, shape_c, "
               "shape_m, unaligned, aspect_c, aspect_m, work_c, work_m or fp8");
    calib_text(buf, sizeof buf, NULL, "lm_head",
               "{\"overhead_s\": 0, \"fp8\": {\"overhead_s\": 0, \"fp8\": {}}}", NULL);
    expect_bad(buf, SIM_EPARSE,
               "ops.lm_head.fp8: unknown key 'fp8', expected overhead_s, eff_c, eff_m, shape_c, "
               "shape_m, unaligned, aspect_c, aspect_m, work_c or work_m");
    calib_text(buf, sizeof buf, NULL, "lm_head", "{\"overhead_s\": 0, \"fp8\": {}}", NULL);
    expect_bad(buf, SIM_EPARSE, "ops.lm_head.fp8.overhead_s: missing");
    calib_text(buf, sizeof buf, NULL, "o_proj", "{\"overhead_s\": 0, \"fp8\": [1]}", NULL);
    expect_bad(buf, SIM_EPARSE, "ops.o_proj.fp8: expected an object, got '[1]'");
    calib_text(buf, sizeof buf, NULL, "o_proj",
               "{\"overhead_s\": 0, \"fp8\": {\"overhead_s\": 0, \"eff_m\": "
               "{\"log2_rows\": [0], \"eff\": [2]}}}",
               NULL);
    expect_bad(buf, SIM_EPARSE,
               "ops.o_proj.fp8.eff_m.eff[0]: expected an efficiency in [0.0001, 1.5], got '2'");
    calib_text(buf, sizeof buf, "\"step_base\": 1, ", NULL, NULL, NULL);
    expect_bad(buf, SIM_EPARSE,
               "unknown key 'step_base', expected gpu, source, fitted_at_version, step_base_s, "
               "step_per_seq_s, step_tp_s or ops");
    calib_text(buf, sizeof buf, "\"step_tp_s\": -1, ", NULL, NULL, NULL);
    expect_bad(buf, SIM_EPARSE, "step_tp_s: expected a number of seconds in [0, 1], got '-1'");
    /* a second or more per step: another unit, or a file that makes predict's steps absurd */
    calib_text(buf, sizeof buf, "\"step_tp_s\": 1e300, ", NULL, NULL, NULL);
    expect_bad(buf, SIM_EPARSE, "step_tp_s: expected a number of seconds in [0, 1], got '1e300'");
    calib_text(buf, sizeof buf, NULL, "rope", "{\"overhead_s\": 2}", NULL);
    expect_bad(buf, SIM_EPARSE,
               "ops.rope.overhead_s: expected a number of seconds in [0, 1], got '2'");
    /* shape, unaligned and work factors: their own key names, factors in [1e-3, 4],
     * unaligned on weight GEMMs only, work on the attentions only */
    {
        static const char *const cases[][3] = {
            {"mlp_up",
             "{\"overhead_s\": 0, \"shape_c\": {\"log2_shape\": [20, 24], \"factor\": [0.5, 5]}}",
             "ops.mlp_up.shape_c.factor[1]: expected a factor in [0.001, 4], got '5'"},
            {"mlp_up",
             "{\"overhead_s\": 0, \"shape_c\": {\"log2_shape\": [20, 24], \"factor\": [0.5, "
             "1e-9]}}",
             "ops.mlp_up.shape_c.factor[1]: expected a factor in [0.001, 4], got '1e-9'"},
            {"mlp_up", "{\"overhead_s\": 0, \"shape_m\": {\"log2_rows\": [20], \"factor\": [0.5]}}",
             "ops.mlp_up.shape_m: unknown key 'log2_rows', expected log2_shape or factor"},
            {"o_proj",
             "{\"overhead_s\": 0, \"unaligned\": {\"log2_rows\": [0, 12], \"eff\": [1, 1]}}",
             "ops.o_proj.unaligned: unknown key 'eff', expected log2_rows or factor"},
            {"norm", "{\"overhead_s\": 0, \"unaligned\": {\"log2_rows\": [0], \"factor\": [1]}}",
             "ops.norm: unknown key 'unaligned' (weight GEMM operators only)"},
            {"mlp_up", "{\"overhead_s\": 0, \"work_m\": {\"log2_work\": [0], \"factor\": [1]}}",
             "ops.mlp_up: unknown key 'work_m' (attn_prefill and attn_decode only)"},
            {"attn_decode",
             "{\"overhead_s\": 0, \"aspect_c\": {\"log2_aspect\": [0], \"factor\": [1]}}",
             "ops.attn_decode: unknown key 'aspect_c' (weight GEMM operators only)"},
            {"lm_head", "{\"overhead_s\": 0, \"aspect_m\": {\"log2_shape\": [0], \"factor\": [1]}}",
             "ops.lm_head.aspect_m: unknown key 'log2_shape', expected log2_aspect or factor"},
            {"attn_decode",
             "{\"overhead_s\": 0, \"work_c\": {\"log2_rows\": [0], \"factor\": [1]}}",
             "ops.attn_decode.work_c: unknown key 'log2_rows', expected log2_work or factor"},
            /* rope's shape curves are by its query width, keyed log2_q_shape: a
             * file fitted when the index was log2(q + kv) is refused */
            {"rope", "{\"overhead_s\": 0, \"shape_m\": {\"log2_shape\": [10], \"factor\": [1]}}",
             "ops.rope.shape_m: unknown key 'log2_shape', expected log2_q_shape or factor"},
            {"attn_prefill",
             "{\"overhead_s\": 0, \"work_m\": {\"log2_work\": [3, 2], \"factor\": [1, 1]}}",
             "ops.attn_prefill.work_m.log2_work[1]: expected a finite number above the previous "
             "knot, got '2'"}};
        size_t k;
        for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            calib_text(buf, sizeof buf, NULL, cases[k][0], cases[k][1], NULL);
            expect_bad(buf, SIM_EPARSE, cases[k][2]);
        }
    }
    calib_text(buf, sizeof buf, "\"step_per_seq_s\": \"fast\", ", NULL, NULL, NULL);
    expect_bad(buf, SIM_EPARSE,
               "step_per_seq_s: expected a number of seconds in [0, 1], got '\"fast\"'");
    expect_bad("[1, 2]\n", SIM_EPARSE, "expected a JSON object at the top");
    expect_bad("{\"gpu\": \"h100-sxm\", \"ops\": {}}\n", SIM_EPARSE,
               "ops: missing operator 'qkv_proj'");

    /* A syntax error carries its line. */
    write_file(tmp_path, "{\"gpu\": \"h100-sxm\",\n \"ops\": {,}}\n");
    T_EQ_I(perf_calib_load(tmp_path, &c, &err), SIM_EPARSE);
    T_EQ_I(err.line, 2);
    remove(tmp_path);
    T_EQ_I(perf_calib_load(tmp_path, &c, &err), SIM_ENOENT);
    T_CONTAINS(err.msg, "calibration file: unable to open ");
    /* a folder is named as one, not read as an empty file */
    T_EQ_I(perf_calib_load(".", &c, &err), SIM_EINVAL);
    T_CONTAINS(err.msg, "calibration file: expected a file, got a folder");
}

static void test_load_for_gpu(void) {
    sim_gpu g = t_h100(0.0);
    perf_calib c, d;
    sim_err err;
    int found = -1;

    mkdir("test_perf_data.tmp", 0777);
    mkdir("test_perf_data.tmp/calib", 0777);
    remove("test_perf_data.tmp/calib/h100-sxm.json");
    g.launch_overhead_s = 3e-6;
    T_EQ_I(perf_calib_load_for_gpu(&g, "test_perf_data.tmp", &c, &found, &err), SIM_OK);
    T_EQ_I(found, 0);
    T_NEAR(c.op[PERF_OP_NORM].overhead_s, 3e-6, 0);
    memset(&d, 0, sizeof d);
    synthetic_calib(&d, &g, 1e-6);
    snprintf(d.gpu, sizeof d.gpu, "h100-sxm");
    T_EQ_I(perf_calib_save(&d, "test_perf_data.tmp/calib/h100-sxm.json", &err), SIM_OK);
    T_EQ_I(perf_calib_load_for_gpu(&g, "test_perf_data.tmp", &c, &found, &err), SIM_OK);
    T_EQ_I(found, 1);
    T_ASSERT(memcmp(&c, &d, sizeof c) == 0);
    /* A file under another GPU's name is refused. */
    snprintf(g.name, sizeof g.name, "h200");
    rename("test_perf_data.tmp/calib/h100-sxm.json", "test_perf_data.tmp/calib/h200.json");
    T_EQ_I(perf_calib_load_for_gpu(&g, "test_perf_data.tmp", &c, &found, &err), SIM_EPARSE);
    T_STREQ(err.msg, "gpu: expected 'h200' (the file's name), got 'h100-sxm'");
    remove("test_perf_data.tmp/calib/h200.json");
    remove("test_perf_data.tmp/calib");
    remove("test_perf_data.tmp");
}

int main(void) {
    test_decode_by_hand();
    test_prefill_by_hand();
    test_overheads();
    test_decode_context();
    test_tp();
    test_tp_nodes();
    test_pp();
    test_dtypes();
    test_bit_identity();
    test_dstep();
    test_count_tables();
    test_fp8_curves();
    test_curves();
    test_curves_uneven();
    test_shape_factors();
    test_round_trip();
    test_malformed();
    test_load_for_gpu();
    printf("test_perf: ok\n");
    return 0;
}
