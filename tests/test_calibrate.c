/* test_calibrate.c: `kvfleet calibrate`'s fit (runtime/calibrate.c).
 *
 * Writes a synthetic profile folder whose latencies come from known
 * efficiency curves and overheads through perf.c itself (GEMMs, both
 * attentions, the Vidur-style elementwise operators, all-reduces, the
 * engine overhead), runs calib_fit on it and checks that the fit finds
 * the truth back: near-zero held-out error, the efficiencies where their
 * term binds (as predictions use them: times the GEMMs' shape factor and
 * unaligned factor, which the truth has too), the overheads and the
 * linear step overhead with its tp > 1 term. Also fails
 * every allocation of a fit in turn, and checks that bad profile rows are
 * reported with file, line and column. Files go
 * to ./test_calibrate.tmp/ and are removed. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "calibrate.h"
#include "mem.h"
#include "perf.h"
#include "fixtures.h"
#include "t.h"

#define DIR "test_calibrate.tmp"

static void set_curve(perf_curve *c, int n, const double *x, const double *y) {
    int i;
    c->n = n;
    for (i = 0; i < n; i++) {
        c->x[i] = x[i];
        c->y[i] = y[i];
    }
}

/* The truth: knots on the fitter's 0.5 grid so that it can represent them. */
static void truth_calib(perf_calib *c, const sim_gpu *g) {
    static const double gx_c[] = {0, 6, 10, 15}, gy_c[] = {0.3, 0.5, 0.8, 0.75};
    static const double gx_m[] = {0, 8, 15}, gy_m[] = {0.9, 0.8, 0.6};
    static const double ax[] = {0, 6, 13}, ac[] = {0.2, 0.45, 0.7}, am[] = {0.3, 0.6, 0.85};
    /* decode attention: a work factor (small launches slower) */
    static const double wx[] = {4, 12, 20}, wy[] = {0.6, 0.9, 1.0};
    static const double ex[] = {0, 6, 12}, ey[] = {0.2, 0.5, 0.8};
    static const double rx[] = {-2, 10, 20}, ry[] = {0.05, 0.5, 0.9};
    /* GEMM shape factor in log2(N K) (llama-3-8b's qkv_proj: 21.6 at TP 8
     * to 24.6 at TP 1) and a slower unaligned M */
    static const double sx[] = {21.5, 24.5}, sy[] = {0.8, 1.05};
    static const double ux[] = {0, 10, 15}, uy[] = {1.0, 0.8, 0.9};
    int op;
    perf_calib_default(c, g);
    for (op = 0; op < PERF_N_OPS; op++) {
        perf_op_calib *oc = &c->op[op];
        switch (op) {
            case PERF_OP_QKV_PROJ:
            case PERF_OP_O_PROJ:
            case PERF_OP_MLP_UP:
            case PERF_OP_MLP_DOWN:
            case PERF_OP_LM_HEAD:
                set_curve(&oc->eff_c, 4, gx_c, gy_c);
                set_curve(&oc->eff_m, 3, gx_m, gy_m);
                if (op == PERF_OP_QKV_PROJ) {
                    set_curve(&oc->shape_c, 2, sx, sy);
                    set_curve(&oc->shape_m, 2, sx, sy);
                }
                set_curve(&oc->unal, 3, ux, uy);
                oc->overhead_s = 3e-6;
                break;
            case PERF_OP_ATTN_PREFILL:
            case PERF_OP_ATTN_DECODE:
                set_curve(&oc->eff_c, 3, ax, ac);
                set_curve(&oc->eff_m, 3, ax, am);
                if (op == PERF_OP_ATTN_DECODE)
                    set_curve(&oc->work_m, 3, wx, wy);
                oc->overhead_s = 8e-6;
                break;
            case PERF_OP_MLP_ACT:
            case PERF_OP_NORM:
            case PERF_OP_ROPE:
            case PERF_OP_EMBED:
                set_curve(&oc->eff_m, 3, ex, ey);
                oc->overhead_s = 2e-6;
                break;
            case PERF_OP_ALLREDUCE:
                set_curve(&oc->eff_m, 3, rx, ry);
                oc->overhead_s = 5e-6;
                break;
            default:
                break;
        }
    }
}

static FILE *open_out(const char *name) {
    char path[256];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", DIR, name);
    f = fopen(path, "w");
    T_ASSERT(f != NULL);
    return f;
}

/* Writes every profile file of the synthetic GPU. */
static void write_profiles(const perf_calib *t, const sim_gpu *g, const sim_model *m) {
    static const int tps[] = {1, 2, 4, 8};
    static const int heads[][2] = {{32, 8}, {16, 4}, {8, 2}, {4, 1}};
    static const int ms[] = {1,    2,     3,     5,     8,     12,    16,   24,   32,   48,
                             64,   96,    128,   129,   192,   256,   257,  384,  512,  768,
                             1024, 1025,  1536,  2048,  2049,  3072,  4096, 4097, 6144, 8192,
                             8193, 12288, 16384, 16385, 24576, 32768, 32769};
    perf_calib ds;
    FILE *f;
    int i, j, k, ti;

    perf_calib_default(&ds, g);
    /* GEMMs: the model's own shapes at TP 1/2/4/8 (then the only grid values). */
    f = open_out("gemm.csv");
    fprintf(f, "gemm_dtype,m,n,k,latency\n");
    for (ti = 0; ti < 4; ti++) {
        double tp = tps[ti], q = 4096.0 / tp, kv = (8.0 / tp) * 128, ffn = 14336.0 / tp;
        double nk[5][2] = {{q + 2 * kv, 4096},
                           {4096, q},
                           {2 * ffn, 4096},
                           {4096, ffn},
                           {ceil(128256.0 / tp), 4096}};
        static const enum perf_op ops[5] = {PERF_OP_QKV_PROJ, PERF_OP_O_PROJ, PERF_OP_MLP_UP,
                                            PERF_OP_MLP_DOWN, PERF_OP_LM_HEAD};
        for (k = 0; k < 5; k++) {
            perf_op_calib at;
            perf_op_at_shape(&t->op[ops[k]], perf_gemm_shape(nk[k][0], nk[k][1]),
                             perf_gemm_aspect(nk[k][0], nk[k][1]), &at);
            for (i = 0; i < (int)(sizeof ms / sizeof ms[0]); i++) {
                double fl, by;
                perf_gemm_cost(ms[i], nk[k][0], nk[k][1], 2, &fl, &by);
                fprintf(f, "bfloat16,%d,%.0f,%.0f,%.17g\n", ms[i], nk[k][0], nk[k][1],
                        1e3 * perf_roofline_s(&at, g->flops_bf16, g->hbm_bw, fl, by, ms[i]));
            }
        }
    }
    fclose(f);

    /* Attention: perf.c's own attention costs (plus the datasheet kv_save
     * inside the prefill measurement). */
    for (k = 0; k < 2; k++) {
        f = open_out(k == 0 ? "context_attention.csv" : "generation_attention.csv");
        fprintf(f, "batch_size,%s,num_heads,num_key_value_heads,head_dim,kv_cache_dtype,latency\n",
                k == 0 ? "isl" : "step");
        for (i = 0; i < 4; i++) {
            static const int bss[] = {1, 2, 8, 32, 128};
            static const int lens[] = {1, 16, 64, 256, 1024, 2048, 4096, 8192};
            for (j = 0; j < 5; j++) {
                int l;
                for (l = 0; l < 8; l++) {
                    sim_model am;
                    perf_ctx ctx, dctx;
                    perf_batch b;
                    sim_err err;
                    double lat;
                    int s;
                    memset(&am, 0, sizeof am);
                    am.n_layers = 1;
                    am.n_heads = heads[i][0];
                    am.n_kv_heads = heads[i][1];
                    am.head_dim = 128;
                    am.hidden = heads[i][0] * 128;
                    am.intermediate = am.vocab = 1;
                    T_EQ_I(perf_ctx_init(&ctx, &am, g, t, 1, &err), SIM_OK);
                    T_EQ_I(perf_ctx_init(&dctx, &am, g, &ds, 1, &err), SIM_OK);
                    memset(&b, 0, sizeof b);
                    for (s = 0; s < bss[j]; s++) {
                        if (k == 0)
                            perf_batch_add_prefill(&b, lens[l], 0, 1);
                        else
                            perf_batch_add_decode(&b, lens[l] + 1);
                    }
                    lat = k == 0 ? perf_op_call_s(&ctx, PERF_OP_ATTN_PREFILL, &b) +
                                       perf_op_call_s(&dctx, PERF_OP_KV_SAVE, &b)
                                 : perf_op_call_s(&ctx, PERF_OP_ATTN_DECODE, &b);
                    fprintf(f, "%d,%d,%d,%d,128,bfloat16,%.17g\n", bss[j], lens[l], heads[i][0],
                            heads[i][1], 1e3 * lat);
                }
            }
        }
        fclose(f);
    }

    /* Vidur-style per-layer operators of a Llama-2-7B-shaped layer. */
    f = open_out("vidur_layer_ops.csv");
    fprintf(f, "model,n_head,n_kv_head,n_embd,n_expanded_embd,vocab_size,num_tokens,"
               "num_tensor_parallel_workers,time_stats.emb.median,"
               "time_stats.input_layernorm.median,time_stats.post_attention_layernorm.median,"
               "time_stats.attn_rope.median,time_stats.mlp_act.median\n");
    for (ti = 0; ti < 4; ti++) {
        for (i = 1; i <= 4096; i = i < 16 ? i + 1 : i + i / 4) {
            sim_model vm = *m;
            perf_ctx ctx;
            perf_batch b;
            sim_err err;
            vm.n_kv_heads = 32;
            vm.intermediate = 11008;
            vm.vocab = 32768;
            T_EQ_I(perf_ctx_init(&ctx, &vm, g, t, tps[ti], &err), SIM_OK);
            memset(&b, 0, sizeof b);
            perf_batch_add_prefill(&b, i, 0, 0);
            fprintf(f,
                    "meta-llama/"
                    "Llama-2-7b-hf,32,32,4096,11008,32768,%d,%d,%.17g,%.17g,%.17g,%.17g,%.17g\n",
                    i, tps[ti], 1e3 * perf_op_call_s(&ctx, PERF_OP_EMBED, &b),
                    0.5e3 * perf_op_call_s(&ctx, PERF_OP_NORM, &b),
                    0.5e3 * perf_op_call_s(&ctx, PERF_OP_NORM, &b),
                    1e3 * perf_op_call_s(&ctx, PERF_OP_ROPE, &b),
                    1e3 * perf_op_call_s(&ctx, PERF_OP_MLP_ACT, &b));
        }
    }
    fclose(f);

    /* All-reduces: message_size bf16 elements among 2, 4, 8 GPUs. */
    f = open_out("allreduce.csv");
    fprintf(f, "num_gpus,message_size,latency\n");
    for (ti = 1; ti < 4; ti++) {
        double e;
        for (e = 128; e <= 536870912; e *= 2) {
            double by = 2.0 * (tps[ti] - 1.0) / tps[ti] * e * 2;
            fprintf(f, "%d,%.0f,%.17g\n", tps[ti], e,
                    1e3 * perf_roofline_s(&t->op[PERF_OP_ALLREDUCE], 1, g->nvlink_bw, 0, by,
                                          e * 2 / 1024));
        }
    }
    fclose(f);

    /* Engine overhead: 0.8 ms + 40 us per sequence, 0.5 ms more at tp 2,
     * split over the columns. */
    f = open_out("cpu_overheads_a100.csv");
    fprintf(f, "model_name,batch_size,tensor_parallel_degree,schedule_median,sampler_e2e_median,"
               "prepare_inputs_e2e_median,process_model_outputs_median\n");
    for (ti = 1; ti <= 2; ti++) {
        for (i = 8; i <= 128; i += 8) {
            double ms_ = 0.8 + 0.04 * i + (ti > 1 ? 0.5 : 0.0);
            fprintf(f, "x,%d,%d,%.17g,%.17g,%.17g,0\n", i, ti, ms_ / 2, ms_ / 4, ms_ / 4);
        }
    }
    fclose(f);
}

static void cleanup(void) {
    static const char *const files[] = {
        "gemm.csv",      "context_attention.csv", "generation_attention.csv", "vidur_layer_ops.csv",
        "allreduce.csv", "cpu_overheads_a100.csv"};
    char path[256];
    size_t i;
    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", DIR, files[i]);
        remove(path);
    }
    remove(DIR);
}

/* |fit / truth - 1| of the compute (c = 1) or memory efficiency a GEMM's
 * prediction uses at shape index sh and M = rows: the curve times the
 * shape factor, times the unaligned factor when rows is not a multiple of
 * PERF_ALIGN_ROWS. */
static void expect_gemm(const perf_op_calib *fit, const perf_op_calib *truth, double sh, double asp,
                        double rows, int c, double tol, const char *what) {
    perf_op_calib f, t;
    double x = log2(rows), a, b;
    int un = fmod(rows, PERF_ALIGN_ROWS) != 0.0;
    perf_op_at_shape(fit, sh, asp, &f);
    perf_op_at_shape(truth, sh, asp, &t);
    a = perf_curve_eval(c ? &f.eff_c : &f.eff_m, x) * (un ? perf_curve_eval(&f.unal, x) : 1.0);
    b = perf_curve_eval(c ? &t.eff_c : &t.eff_m, x) * (un ? perf_curve_eval(&t.unal, x) : 1.0);
    if (!(fabs(a / b - 1) <= tol))
        T_FAIL_("%s at shape %g, rows %g: fitted %s efficiency %g, truth %g (tol %g)", what, sh,
                rows, c ? "compute" : "memory", a, b, tol);
}

/* |fit / truth - 1| of the time of one call of attention op for bs
 * sequences of len tokens (prefill) or context (decode), heads / kv_heads
 * per GPU: the curves, shape and work factors together, which trade
 * scale among themselves where the rows leave it free. */
static void expect_attn(const perf_calib *fit, const perf_calib *truth, const sim_gpu *g,
                        enum perf_op op, int heads, int kv_heads, int bs, int len, double tol) {
    sim_model am;
    perf_ctx cf, ct;
    perf_batch b;
    sim_err err;
    double a, t;
    int s;
    memset(&am, 0, sizeof am);
    am.n_layers = 1;
    am.n_heads = heads;
    am.n_kv_heads = kv_heads;
    am.head_dim = 128;
    am.hidden = heads * 128;
    am.intermediate = am.vocab = 1;
    T_EQ_I(perf_ctx_init(&cf, &am, g, fit, 1, &err), SIM_OK);
    T_EQ_I(perf_ctx_init(&ct, &am, g, truth, 1, &err), SIM_OK);
    memset(&b, 0, sizeof b);
    for (s = 0; s < bs; s++) {
        if (op == PERF_OP_ATTN_PREFILL)
            perf_batch_add_prefill(&b, len, 0, 1);
        else
            perf_batch_add_decode(&b, len);
    }
    a = perf_op_call_s(&cf, op, &b);
    t = perf_op_call_s(&ct, op, &b);
    if (!(fabs(a / t - 1) <= tol))
        T_FAIL_("%s, %d x %d tokens, %d/%d heads: fitted %g s, truth %g s (tol %g)",
                perf_op_name(op), bs, len, heads, kv_heads, a, t, tol);
}

/* |fit / truth - 1| at x for the term that binds there. */
static void expect_eff(const perf_curve *fit, const perf_curve *truth, double x, double tol,
                       const char *what) {
    double a = perf_curve_eval(fit, x), b = perf_curve_eval(truth, x);
    if (!(fabs(a / b - 1) <= tol))
        T_FAIL_("%s at log2 rows %g: fitted %g, truth %g (tol %g)", what, x, a, b, tol);
}

static void test_recovery(void) {
    sim_gpu g = t_h100(4e-6);
    sim_model m = t_llama3_8b();
    perf_calib truth, fit;
    calib_report rep;
    calib_opts o;
    sim_err err;
    int op, rc;

    truth_calib(&truth, &g);
    mkdir(DIR, 0777);
    write_profiles(&truth, &g, &m);
    memset(&o, 0, sizeof o);
    o.gpu = &g;
    o.models = &m;
    o.n_models = 1;
    o.profiles_dir = DIR;
    o.holdout_every = 5;
    rc = calib_fit(&o, &fit, &rep, &err);
    if (rc != SIM_OK)
        T_FAIL_("calib_fit: %s: %s", err.src, err.msg);
    T_STREQ(fit.gpu, "h100-sxm");
    for (op = 0; op < PERF_N_OPS; op++) {
        if (op == PERF_OP_KV_SAVE || op == PERF_OP_SAMPLE) {
            T_EQ_I(rep.op[op].fitted, 0);
            T_NEAR(fit.op[op].overhead_s, g.launch_overhead_s, 0);
            continue;
        }
        T_EQ_I(rep.op[op].fitted, 1);
        T_ASSERT(rep.op[op].n_test > 0 && rep.op[op].n_train >= 4 * rep.op[op].n_test - 4);
        if (!(rep.op[op].median_ape < 0.5 && rep.op[op].p95_ape < 3.0))
            T_FAIL_("%s: held-out median %.3f%%, p95 %.3f%% on noise-free data",
                    perf_op_name((enum perf_op)op), rep.op[op].median_ape, rep.op[op].p95_ape);
    }
    /* GEMMs: memory-bound at M = 1..16, compute-bound from M = 4096. */
    for (op = PERF_OP_QKV_PROJ; op <= PERF_OP_LM_HEAD; op++) {
        const char *name = perf_op_name((enum perf_op)op);
        if (op != PERF_OP_QKV_PROJ && op != PERF_OP_O_PROJ && op != PERF_OP_MLP_UP &&
            op != PERF_OP_MLP_DOWN && op != PERF_OP_LM_HEAD)
            continue;
        int ti;
        for (ti = 1; ti <= 8; ti *= 8) {
            perf_ctx ctx;
            double sh, asp;
            T_EQ_I(perf_ctx_init(&ctx, &m, &g, NULL, ti, &err), SIM_OK);
            sh = perf_op_shape(&ctx, (enum perf_op)op);
            asp = perf_op_aspect(&ctx, (enum perf_op)op);
            expect_gemm(&fit.op[op], &truth.op[op], sh, asp, 1, 0, 0.03, name);
            expect_gemm(&fit.op[op], &truth.op[op], sh, asp, 8, 0, 0.03, name);
            expect_gemm(&fit.op[op], &truth.op[op], sh, asp, 16, 0, 0.03, name);
            expect_gemm(&fit.op[op], &truth.op[op], sh, asp, 8192, 1, 0.03, name);
            expect_gemm(&fit.op[op], &truth.op[op], sh, asp, 8193, 1, 0.03, name);
            expect_gemm(&fit.op[op], &truth.op[op], sh, asp, 32768, 1, 0.03, name);
        }
        /* the shape factor is fitted where the truth has one; the aspect
         * factor always (one model's GEMMs at TP 1..8 have 4 aspects), and
         * with a truth without one, the efficiencies above still come back
         * (at one model shape and aspect both follow the TP, so only their
         * product is tested) */
        if (op == PERF_OP_QKV_PROJ)
            T_ASSERT(fit.op[op].shape_c.n > 0 && fit.op[op].shape_m.n > 0);
        T_ASSERT(fit.op[op].aspect_c.n > 0 && fit.op[op].aspect_m.n > 0);
        T_EQ_I(rep.op[op].n_aspect_knots, fit.op[op].aspect_c.n);
        T_ASSERT(fit.op[op].unal.n > 0);
        T_REL(fit.op[op].overhead_s, 3e-6, 0.15);
    }
    /* Attention: the calls the rows cover, short and long, small and large
     * batches; the work factor is fitted where the truth has one (decode) */
    {
        static const int cases[][3] = {{1, 4096}, {8, 4096}, {32, 1024}, {128, 256}, {2, 8192}};
        size_t k;
        for (k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            expect_attn(&fit, &truth, &g, PERF_OP_ATTN_PREFILL, 32, 8, cases[k][0], cases[k][1],
                        0.03);
            expect_attn(&fit, &truth, &g, PERF_OP_ATTN_DECODE, 32, 8, cases[k][0], cases[k][1] + 1,
                        0.03);
        }
        T_ASSERT(fit.op[PERF_OP_ATTN_DECODE].work_m.n > 0);
        T_EQ_I(rep.op[PERF_OP_ATTN_DECODE].n_work_knots, fit.op[PERF_OP_ATTN_DECODE].work_m.n);
        T_EQ_I(rep.op[PERF_OP_NORM].n_work_knots, 0);
        T_EQ_I(fit.op[PERF_OP_NORM].work_m.n, 0);
        T_ASSERT(rep.op[PERF_OP_ATTN_DECODE].median_ape < 0.5);
    }
    T_REL(fit.op[PERF_OP_ATTN_DECODE].overhead_s, 8e-6, 0.1);
    for (op = PERF_OP_MLP_ACT; op <= PERF_OP_EMBED; op++) {
        if (op != PERF_OP_MLP_ACT && op != PERF_OP_NORM && op != PERF_OP_ROPE &&
            op != PERF_OP_EMBED)
            continue;
        T_EQ_I(fit.op[op].eff_c.n, 0); /* no FLOPs: no compute curve */
        expect_eff(&fit.op[op].eff_m, &truth.op[op].eff_m, 12, 0.03,
                   perf_op_name((enum perf_op)op));
        expect_eff(&fit.op[op].eff_m, &truth.op[op].eff_m, 8, 0.05, perf_op_name((enum perf_op)op));
    }
    expect_eff(&fit.op[PERF_OP_ALLREDUCE].eff_m, &truth.op[PERF_OP_ALLREDUCE].eff_m, 18, 0.03,
               "allreduce");
    T_REL(fit.op[PERF_OP_ALLREDUCE].overhead_s, 5e-6, 0.1);
    /* The engine overhead is exactly linear. */
    T_REL(fit.step_base_s, 0.8e-3, 1e-3);
    T_REL(fit.step_per_seq_s, 40e-6, 1e-3);
    T_REL(fit.step_tp_s, 0.5e-3, 1e-3);
    T_ASSERT(rep.step.median_ape < 0.1);
    /* The file written round-trips. */
    {
        perf_calib back;
        T_EQ_I(perf_calib_save(&fit, DIR "/fit.json", &err), SIM_OK);
        T_EQ_I(perf_calib_load(DIR "/fit.json", &back, &err), SIM_OK);
        T_ASSERT(memcmp(&back, &fit, sizeof fit) == 0);
        remove(DIR "/fit.json");
    }
}

/* Every allocation of a fit fails in turn: SIM_ENOMEM, nothing leaked
 * (the profiles written by test_recovery are still there). */
static void test_chaos(void) {
    sim_gpu g = t_h100(4e-6);
    sim_model m = t_llama3_8b();
    perf_calib fit;
    calib_report rep;
    calib_opts o;
    sim_err err;
    uint64_t k, n0, n_allocs;
    size_t base = sim_mem_current();

    memset(&o, 0, sizeof o);
    o.gpu = &g;
    o.models = &m;
    o.n_models = 1;
    o.profiles_dir = DIR;
    o.holdout_every = 5;
    n0 = sim_mem_count();
    T_EQ_I(calib_fit(&o, &fit, &rep, &err), SIM_OK);
    n_allocs = sim_mem_count() - n0;
    T_ASSERT(n_allocs > 0);
    T_EQ_I(sim_mem_current(), base);
    for (k = 1; k <= n_allocs; k++) {
        int rc;
        sim_mem_fail_at(k);
        rc = calib_fit(&o, &fit, &rep, &err);
        sim_mem_fail_at(0);
        if (rc != SIM_ENOMEM)
            T_FAIL_("allocation %llu of %llu failed: got %d (%s), expected SIM_ENOMEM",
                    (unsigned long long)k, (unsigned long long)n_allocs, rc, err.msg);
        T_EQ_I(sim_mem_current(), base);
    }
}

static void test_bad_rows(void) {
    sim_gpu g = t_h100(4e-6);
    sim_model m = t_llama3_8b();
    perf_calib fit;
    calib_report rep;
    calib_opts o;
    sim_err err;
    char msg[1200];
    FILE *f;

    cleanup();
    mkdir(DIR, 0777);
    memset(&o, 0, sizeof o);
    o.gpu = &g;
    o.models = &m;
    o.n_models = 1;
    o.profiles_dir = DIR;
    o.holdout_every = 5;
    /* No profile at all. */
    T_EQ_I(calib_fit(&o, &fit, &rep, &err), SIM_ENOENT);
    T_CONTAINS(err.msg, "expected profiles");
    /* A bad latency: file, line and column. */
    f = open_out("allreduce.csv");
    fprintf(f, "num_gpus,message_size,latency\n2,1024,0.01\n2,2048,fast\n");
    fclose(f);
    T_EQ_I(calib_fit(&o, &fit, &rep, &err), SIM_EPARSE);
    sim_err_format(&err, msg, sizeof msg);
    T_STREQ(msg, DIR "/allreduce.csv:3:3: latency: expected a number > 0, got 'fast'");
    /* A missing column. */
    f = open_out("allreduce.csv");
    fprintf(f, "num_gpus,size,latency\n2,1024,0.01\n");
    fclose(f);
    T_EQ_I(calib_fit(&o, &fit, &rep, &err), SIM_EPARSE);
    sim_err_format(&err, msg, sizeof msg);
    T_STREQ(msg, DIR "/allreduce.csv:1: header: expected a column 'message_size'");
    /* Too few rows to fit. */
    f = open_out("allreduce.csv");
    fprintf(f, "num_gpus,message_size,latency\n2,1024,0.01\n");
    fclose(f);
    T_EQ_I(calib_fit(&o, &fit, &rep, &err), SIM_EINVAL);
    T_CONTAINS(err.msg, "expected at least 4 rows to fit, got 1");
    /* Options. */
    o.holdout_every = 1;
    T_EQ_I(calib_fit(&o, &fit, &rep, &err), SIM_EINVAL);
    o.holdout_every = 5;
    cleanup();
    mkdir(DIR, 0777);
    /* GEMM sizes are whole integers of a real shape: no exponent, no
     * fraction, nothing beyond 2^31 - 1 (1e300 once gave a knot at
     * log2_rows 996.5). */
    {
        static const char *const bad[] = {"1e300", "1.5", "2147483648", "0", "-4"};
        size_t i;
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            char want[300];
            f = open_out("gemm.csv");
            fprintf(f,
                    "gemm_dtype,m,n,k,latency\nbfloat16,1,512,256,0.05\nbfloat16,%s,512,256,0.05\n",
                    bad[i]);
            fclose(f);
            T_EQ_I(calib_fit(&o, &fit, &rep, &err), SIM_EPARSE);
            sim_err_format(&err, msg, sizeof msg);
            snprintf(want, sizeof want,
                     DIR "/gemm.csv:3:2: m: expected an integer in 1..2147483647, got '%s'",
                     bad[i]);
            T_STREQ(msg, want);
        }
        /* n and k, and the other files' integer columns, alike */
        f = open_out("gemm.csv");
        fprintf(f, "gemm_dtype,m,n,k,latency\nbfloat16,1,512,256.0,0.05\n");
        fclose(f);
        T_EQ_I(calib_fit(&o, &fit, &rep, &err), SIM_EPARSE);
        sim_err_format(&err, msg, sizeof msg);
        T_STREQ(msg, DIR "/gemm.csv:2:4: k: expected an integer in 1..2147483647, got '256.0'");
        remove(DIR "/gemm.csv");
        f = open_out("allreduce.csv");
        fprintf(f, "num_gpus,message_size,latency\n2,1e3,0.01\n");
        fclose(f);
        T_EQ_I(calib_fit(&o, &fit, &rep, &err), SIM_EPARSE);
        sim_err_format(&err, msg, sizeof msg);
        T_STREQ(msg, DIR "/allreduce.csv:2:2: message_size: expected an integer in "
                         "1..9007199254740992, got '1e3'");
        remove(DIR "/allreduce.csv");
    }
    /* A NUL byte is named as such, not as an over-long line. */
    f = open_out("gemm.csv");
    fprintf(f, "gemm_dtype,m,n,k,latency\nbfloat16,1,512,256,0.05\n");
    fwrite("bfloat16,1,2\0,256,1\n", 1, 21, f);
    fclose(f);
    T_EQ_I(calib_fit(&o, &fit, &rep, &err), SIM_EPARSE);
    sim_err_format(&err, msg, sizeof msg);
    T_STREQ(msg, DIR "/gemm.csv:3:13: expected a text line, got a NUL byte");
    remove(DIR "/gemm.csv");
    /* A folder where a profile is expected is named a folder. */
    T_ASSERT(mkdir(DIR "/gemm.csv", 0777) == 0);
    T_EQ_I(calib_fit(&o, &fit, &rep, &err), SIM_EPARSE);
    sim_err_format(&err, msg, sizeof msg);
    T_STREQ(msg, DIR "/gemm.csv: expected a CSV file, got a folder");
    cleanup();
}

int main(void) {
    cleanup();
    test_recovery();
    test_chaos();
    test_bad_rows();
    printf("test_calibrate: ok\n");
    return 0;
}
