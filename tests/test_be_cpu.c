/* test_be_cpu.c: the cpu executor's whole-model output against a dense
 * (non-paged) forward pass written plainly here.
 *
 * The scheduler drives the executor as the engine would: several requests
 * of different lengths, chunked prefill over several steps (a small token
 * budget), decode steps, and, in the second case, a KV pool small enough to
 * preempt and recompute. For every sampled row the executor reports (the
 * request, the position, the argmax token and the final-normed hidden
 * state), the dense reference computes the same request's hidden states at
 * every position in one causal pass over contiguous K and V, from the
 * executor's own random weights, and the two must agree:
 *
 *     |h_cpu - h_dense| <= 1e-4 * max_i |h_dense[i]|     (every element)
 *
 * fp32 throughout; the two sides sum in different orders (a paged pool
 * against contiguous rows, table RoPE against direct angles), so a few ulps
 * of difference are expected and 1e-4 of the row's scale leaves room for
 * two layers of them. The argmax must match wherever the dense logits'
 * top two differ by more than 1e-3 (closer calls are counted, not failed).
 * The open() refusals (a model too large, a pool too large) are checked
 * too. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "be.h"
#include "be_cpu.h"
#include "mem.h"
#include "model.h"
#include "perf.h"
#include "sched.h"
#include "t.h"

#define TOL_REL  1e-4
#define GAP_MIN  1e-3
#define MAX_REQS 8

/* ---- the dense reference ---- */

/* y (M, N) = x (M, K) . w (N, K)^T */
static void matmul(float *y, const float *x, const float *w, int m, int n, int k) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int kk = 0; kk < k; kk++)
                acc += (double)x[(size_t)i * k + kk] * w[(size_t)j * k + kk];
            y[(size_t)i * n + j] = (float)acc;
        }
}

/* The model's RMSNorm epsilon and RoPE base, read from the config by the
 * test (not from the executor), set by run_case. */
static double g_eps, g_theta;

static void rmsnorm(float *y, const float *x, const float *w, int m, int n) {
    for (int i = 0; i < m; i++) {
        double ss = 0;
        for (int j = 0; j < n; j++)
            ss += (double)x[(size_t)i * n + j] * x[(size_t)i * n + j];
        double r = 1.0 / sqrt(ss / n + g_eps);
        for (int j = 0; j < n; j++)
            y[(size_t)i * n + j] = (float)(x[(size_t)i * n + j] * r * w[j]);
    }
}

/* NeoX rotation of one head vector v (D) at position p, angles in double. */
static void rotate(float *v, int D, int p) {
    for (int i = 0; i < D / 2; i++) {
        double a = p * pow(g_theta, -2.0 * i / D);
        double x1 = v[i], x2 = v[D / 2 + i];
        v[i] = (float)(x1 * cos(a) - x2 * sin(a));
        v[D / 2 + i] = (float)(x2 * cos(a) + x1 * sin(a));
    }
}

/* Hidden states after the final norm, (len, hidden), of request id's
 * tokens 0 .. len - 1, attention causal over contiguous K and V. */
static float *dense_forward(const be_cpu_weights *w, uint64_t id, int len) {
    const int h = w->hidden, H = w->n_heads, Hkv = w->n_kv_heads, D = w->head_dim;
    const int G = H / Hkv, qd = (H + 2 * Hkv) * D, I = w->inter;
    float *x = calloc((size_t)len * h, sizeof *x), *xn = calloc((size_t)len * h, sizeof *xn);
    float *qkv = calloc((size_t)len * qd, sizeof *qkv), *a = calloc((size_t)len * H * D, 4);
    float *pr = calloc((size_t)len * h, sizeof *pr), *gu = calloc((size_t)len * 2 * I, 4);
    float *act = calloc((size_t)len * I, sizeof *act), *out = calloc((size_t)len * h, 4);
    double *sc = calloc((size_t)len, sizeof *sc);
    T_ASSERT(x && xn && qkv && a && pr && gu && act && out && sc);
    for (int t = 0; t < len; t++)
        memcpy(x + (size_t)t * h, w->embed + (size_t)be_cpu_token(id, t, w->vocab) * h,
               (size_t)h * sizeof *x);
    for (int l = 0; l < w->n_layers; l++) {
        const be_cpu_layer *L = &w->layer[l];
        rmsnorm(xn, x, L->attn_norm, len, h);
        matmul(qkv, xn, L->wqkv, len, qd, h);
        for (int t = 0; t < len; t++)
            for (int hh = 0; hh < H + Hkv; hh++) /* q heads, then k heads */
                rotate(qkv + (size_t)t * qd + (size_t)hh * D, D, t);
        for (int t = 0; t < len; t++)
            for (int hh = 0; hh < H; hh++) {
                const float *q = qkv + (size_t)t * qd + (size_t)hh * D;
                int kh = hh / G;
                double m = -INFINITY, l_sum = 0;
                for (int j = 0; j <= t; j++) {
                    const float *k = qkv + (size_t)j * qd + (size_t)(H + kh) * D;
                    double dot = 0;
                    for (int d = 0; d < D; d++)
                        dot += (double)q[d] * k[d];
                    sc[j] = dot / sqrt((double)D);
                    if (sc[j] > m)
                        m = sc[j];
                }
                for (int d = 0; d < D; d++) {
                    double acc = 0;
                    l_sum = 0;
                    for (int j = 0; j <= t; j++) {
                        double p = exp(sc[j] - m);
                        l_sum += p;
                        acc += p * qkv[(size_t)j * qd + (size_t)(H + Hkv + kh) * D + d];
                    }
                    a[((size_t)t * H + hh) * D + d] = (float)(acc / l_sum);
                }
            }
        matmul(pr, a, L->wo, len, h, H * D);
        for (size_t i = 0; i < (size_t)len * h; i++)
            x[i] += pr[i];
        rmsnorm(xn, x, L->mlp_norm, len, h);
        matmul(gu, xn, L->w_gate_up, len, 2 * I, h);
        for (int t = 0; t < len; t++)
            for (int i = 0; i < I; i++) {
                double g = gu[(size_t)t * 2 * I + i], u = gu[(size_t)t * 2 * I + I + i];
                act[(size_t)t * I + i] = (float)(g / (1.0 + exp(-g)) * u);
            }
        matmul(pr, act, L->w_down, len, h, I);
        for (size_t i = 0; i < (size_t)len * h; i++)
            x[i] += pr[i];
    }
    rmsnorm(out, x, w->final_norm, len, h);
    free(x);
    free(xn);
    free(qkv);
    free(a);
    free(pr);
    free(gu);
    free(act);
    free(sc);
    return out;
}

/* ---- driving the executor with the scheduler ---- */

typedef struct run_state {
    int finished, rejected;
} run_state;

static void on_reject(void *ctx, const sim_req *r, enum met_reject why, sim_time t) {
    (void)r;
    (void)why;
    (void)t;
    ((run_state *)ctx)->rejected++;
}

static void on_first(void *ctx, sched_seq *s, sim_time t) {
    (void)ctx;
    (void)s;
    (void)t;
}

static void on_finish(void *ctx, sched_seq *s, sim_time t) {
    (void)s;
    (void)t;
    ((run_state *)ctx)->finished++;
}

typedef struct case_stats {
    int64_t samples, argmax_checked, argmax_close, steps, mixed_steps, preemptions;
    int max_chunks;
    double max_err; /* largest |h_cpu - h_dense| / scale seen */
} case_stats;

/* Runs n requests (prompt[i], output[i]) through the scheduler and the cpu
 * executor and checks every sampled row against the dense reference. */
static void run_case(const char *name, const perf_ctx *pc, int64_t kv_blocks, int block_tokens,
                     int64_t budget, int n, const int *prompt, const int *output, case_stats *st) {
    sched_config sc;
    sched_cb cb;
    sched *s = NULL;
    run_state rs = {0, 0};
    be b = {NULL, NULL};
    be_args ba;
    sim_err err;
    float *dense[MAX_REQS];
    int64_t seen[MAX_REQS];
    const be_cpu_weights *w;
    sim_time t = 0;
    g_eps = (float)sim_model_norm_eps(&pc->model); /* the executor's fp32 epsilon */
    g_theta = sim_model_rope_theta(&pc->model);
    T_ASSERT(n <= MAX_REQS);
    memset(st, 0, sizeof *st);
    memset(&sc, 0, sizeof sc);
    sc.max_num_seqs = 8;
    sc.max_batched_tokens = budget;
    sc.block_tokens = block_tokens;
    sc.kv_blocks = kv_blocks;
    sc.chunked_prefill = 1;
    sc.watermark = 0;
    sc.max_ctx = pc->model.max_ctx;
    cb.ctx = &rs;
    cb.on_reject = on_reject;
    cb.on_first_token = on_first;
    cb.on_finish = on_finish;
    T_EQ_I(sched_create(&sc, &cb, &s), SIM_OK);
    memset(&ba, 0, sizeof ba);
    ba.perf = pc;
    ba.kv_blocks = kv_blocks;
    ba.block_tokens = block_tokens;
    ba.replicas = 1;
    ba.seed = 7;
    ba.max_num_seqs = sc.max_num_seqs;
    ba.max_batched_tokens = budget;
    sim_err_clear(&err);
    T_EQ_I(be_open(&b, &be_cpu_ops, &ba, &err), SIM_OK);
    w = be_cpu_weights_get(b.ctx);
    for (int i = 0; i < n; i++) {
        sim_req r;
        memset(&r, 0, sizeof r);
        r.id = (uint64_t)(100 + i);
        r.arrival_ns = 0;
        r.prompt_tokens = prompt[i];
        r.new_tokens = prompt[i];
        r.output_tokens = output[i];
        r.session_id = -1;
        T_EQ_I(sched_add(s, &r, 0), SIM_OK);
        dense[i] = dense_forward(w, r.id, prompt[i] + output[i]);
        seen[i] = 0;
    }
    while (rs.finished + rs.rejected < n) {
        sched_batch batch;
        be_result res;
        const be_cpu_sample *smp;
        const float *hid;
        int got = sched_step(s, t, &batch), ns;
        T_ASSERT(got > 0);
        st->steps++;
        st->preemptions += batch.n_preempted;
        if (batch.n_chunks > 0 && batch.n_decode > 0)
            st->mixed_steps++;
        if (batch.n_chunks > st->max_chunks)
            st->max_chunks = batch.n_chunks;
        res.pred_s = 0;
        T_EQ_I(be_step(&b, 0, s, &batch, &res, &err), SIM_OK);
        T_ASSERT(res.dur_s >= 0 && res.meas_s >= 0 && res.host_s >= 0);
        ns = be_cpu_last_samples(b.ctx, &smp, &hid);
        for (int i = 0; i < ns; i++) {
            int r = (int)(smp[i].req_id - 100);
            const float *ref, *got_h = hid + (size_t)i * w->hidden;
            double scale = 0, best = -INFINITY, second = -INFINITY;
            int arg = 0;
            T_ASSERT(r >= 0 && r < n);
            T_ASSERT(smp[i].pos >= 0 && smp[i].pos < prompt[r] + output[r] - 1);
            ref = dense[r] + (size_t)smp[i].pos * w->hidden;
            for (int d = 0; d < w->hidden; d++)
                scale = fmax(scale, fabs(ref[d]));
            for (int d = 0; d < w->hidden; d++) {
                st->max_err = fmax(st->max_err, fabs(got_h[d] - ref[d]) / scale);
                if (!(fabs(got_h[d] - ref[d]) <= TOL_REL * scale))
                    T_FAIL_("%s: request %d position %lld dim %d: cpu %.9g, dense %.9g (tol %g)",
                            name, r, (long long)smp[i].pos, d, got_h[d], ref[d], TOL_REL * scale);
            }
            for (int v = 0; v < w->vocab; v++) { /* dense logits of this row */
                double z = 0;
                for (int d = 0; d < w->hidden; d++)
                    z += (double)ref[d] * w->lm_head[(size_t)v * w->hidden + d];
                if (z > best) {
                    second = best;
                    best = z;
                    arg = v;
                } else if (z > second)
                    second = z;
            }
            if (best - second > GAP_MIN) {
                T_EQ_I(smp[i].token, arg);
                st->argmax_checked++;
            } else
                st->argmax_close++;
            seen[r]++;
            st->samples++;
        }
        T_EQ_I(sched_step_done(s, &batch, t + 1000), SIM_OK);
        t += 1000;
    }
    T_EQ_I(rs.rejected, 0);
    for (int i = 0; i < n; i++) {
        T_ASSERT(seen[i] >= output[i]); /* one per token, more after a recompute */
        free(dense[i]);
    }
    printf("%s: %lld steps (%lld mixed, up to %d chunks), %lld preemptions, %lld sampled rows, "
           "%lld argmax checked, %lld too close to call; max error %.2g of the row scale\n",
           name, (long long)st->steps, (long long)st->mixed_steps, st->max_chunks,
           (long long)st->preemptions, (long long)st->samples, (long long)st->argmax_checked,
           (long long)st->argmax_close, st->max_err);
    be_close(&b);
    sched_destroy(s);
}

/* The source tree's data/, or $KVFLEET_DATA where set: on a GPU host the
 * test programs travel without the tree they were built in (docs/gpu.md). */
static void load_perf(const char *model, perf_ctx *pc) {
    sim_err err;
    const char *dd = getenv("KVFLEET_DATA");
    memset(pc, 0, sizeof *pc);
    T_EQ_I(sim_model_load(model, dd != NULL && *dd ? dd : KV_SRCDATADIR, &pc->model, &err), SIM_OK);
    pc->tp = 1;
}

int main(void) {
    perf_ctx pc;
    case_stats st;
    static const int prompt[5] = {5, 13, 30, 47, 9}, output[5] = {6, 3, 10, 4, 8};

    load_perf("tiny", &pc);
    pc.model.max_ctx = 256; /* a smaller RoPE table; positions stay below it */
    T_EQ_I(be_cpu_token(3, 4, 1024), be_cpu_token(3, 4, 1024));
    T_ASSERT(be_cpu_token(3, 4, 1024) != be_cpu_token(4, 3, 1024) ||
             be_cpu_token(3, 5, 1024) != be_cpu_token(5, 3, 1024));

    /* a roomy pool: chunked prefill (budget 24) alongside decode steps */
    run_case("tiny, 5 requests", &pc, 64, 4, 24, 5, prompt, output, &st);
    T_ASSERT(st.mixed_steps > 0 && st.max_chunks >= 2 && st.preemptions == 0);
    T_ASSERT(st.argmax_checked >= st.samples / 2);

    /* a pool of 22 blocks of 4 tokens: the newest sequences are preempted
     * and recompute into fresh blocks */
    run_case("tiny, preempting pool", &pc, 22, 4, 32, 5, prompt, output, &st);
    T_ASSERT(st.preemptions > 0);

    /* the config's rms_norm_eps and rope_theta, far from tiny.json's (1e-5,
     * 10000), reach the executor: its output still matches the reference
     * computed with them */
    T_ASSERT(pc.model.norm_eps == 1e-5 && pc.model.rope_theta == 10000.0);
    pc.model.norm_eps = 0.05;
    pc.model.rope_theta = 37.0;
    run_case("tiny, rms_norm_eps 0.05, rope_theta 37", &pc, 64, 4, 24, 5, prompt, output, &st);
    pc.model.norm_eps = 1e-5;
    pc.model.rope_theta = 10000.0;

    /* refusals: a model too large, a pool too large */
    {
        perf_ctx big;
        be b = {NULL, NULL};
        be_args ba;
        sim_err err;
        load_perf("llama-3-8b", &big);
        memset(&ba, 0, sizeof ba);
        ba.perf = &big;
        ba.kv_blocks = 16;
        ba.block_tokens = 16;
        ba.replicas = 1;
        sim_err_clear(&err);
        T_EQ_I(be_open(&b, &be_cpu_ops, &ba, &err), SIM_EINVAL);
        T_CONTAINS(err.msg, "use --model tiny");
        ba.perf = &pc;
        ba.kv_blocks = be_cpu_kv_blocks_max(&pc.model, 16) + 1;
        sim_err_clear(&err);
        T_EQ_I(be_open(&b, &be_cpu_ops, &ba, &err), SIM_EINFEASIBLE);
        T_CONTAINS(err.msg, "--kv-blocks");
        T_ASSERT(b.ops == NULL);
    }
    T_EQ_I(sim_mem_current(), 0);
    printf("ok\n");
    return 0;
}
