/* perf.c: the step-time predictor (perf model v1), a per-operator roofline.
 *
 * Design. A step runs every operator of the model once per layer (the
 * GEMMs, the elementwise kernels, the two attentions, the KV write and the
 * tensor-parallel all-reduces) plus a few operators once per step (embed,
 * lm_head, sample). Each operator call costs
 *
 *     t = max(flops / (peak x eff_c(x)), bytes / (bw x eff_m(x))) + overhead_s
 *
 * where x = log2(rows), rows being the GEMM's M, the tokens of an
 * elementwise kernel, for attention the mean number of keys a query
 * attends to (prefill_pairs / prefill_tokens, decode_ctx / n_decode) and
 * for the all-reduce its message in KiB, and eff_c, eff_m are the piecewise-linear
 * efficiency curves of the calibration (docs/calibration.md); with fp8
 * weights, the GEMMs (qkv_proj, o_proj, mlp_up, mlp_down, lm_head) take
 * their fp8 set where the calibration has one (ctx->op, perf_calib_op).
 * An operator with no rows costs nothing, not even its overhead. The step adds an
 * engine overhead step_base_s + step_per_seq_s x sequences. This is the
 * roofline model of Williams, Waterman and Patterson (CACM 2009) with
 * measured efficiencies, as in Vidur (MLSys 2024) and NVIDIA's
 * AIConfigurator, but over linear batch aggregates (perf_batch) so that a
 * step costs O(1) whatever its batch size.
 *
 * Shapes on one GPU at tensor-parallel degree t: q = heads x head_dim / t,
 * kv = kv_heads_per_gpu x head_dim (kv_heads / t, or 1 when t > kv_heads:
 * KV heads are replicated), I = intermediate / t, the lm_head's N = vocab / t.
 * Weights take sim_dtype bytes of w_dtype, activations 2 bytes, the KV cache
 * the bytes of kv_dtype. The final RMSNorm before lm_head is not charged
 * (it is 1/(2 x layers) of the norm time); residual adds are assumed fused
 * into the norms, as vLLM does.
 *
 * Invariants: perf_step_s and perf_predict run the same code (step_eval),
 * so their step times are equal bit for bit. Neither allocates; only
 * perf_step_cached's tables do (perf_cache, "the count tables" below), and
 * they give the same bits as perf_step_s.
 *
 * Non-goals: pipeline parallelism, MoE, overlap of communication with
 * compute, and the cost of CUDA graph capture. */
#include "config.h"
#include "kv_version.h"
#include "perf.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <stddef.h>

#include "fileio.h"
#include "json_util.h"
#include "mem.h"

/* ---- names ---- */

static const char *const op_names[PERF_N_OPS] = {
#define PERF_XX_NAME(id, name) name,
    PERF_OP_MAP(PERF_XX_NAME)
#undef PERF_XX_NAME
};

const char *perf_op_name(enum perf_op op) {
    if ((int)op < 0 || op >= PERF_N_OPS)
        return "?";
    return op_names[op];
}

int perf_op_from_name(const char *name) {
    int i;
    if (name == NULL)
        return -1;
    for (i = 0; i < PERF_N_OPS; i++)
        if (strcmp(name, op_names[i]) == 0)
            return i;
    return -1;
}

const char *perf_bound_name(enum perf_bound b) {
    switch (b) {
        case PERF_BOUND_COMPUTE:
            return "compute";
        case PERF_BOUND_HBM:
            return "hbm";
        case PERF_BOUND_LINK:
            return "link";
        case PERF_BOUND_OVERHEAD:
            return "overhead";
    }
    return "?";
}

/* Bytes per element of a weight or KV dtype. Kept here rather than calling
 * model.c's sim_dtype_bytes so that the hot path makes no outside call. */
static double dtype_bytes(enum sim_dtype d) {
    switch (d) {
        case SIM_DT_FP8:
            return 1.0;
        case SIM_DT_FP32:
            return 4.0;
        case SIM_DT_BF16:
        case SIM_DT_FP16:
            return 2.0;
    }
    return 2.0;
}

/* ---- curves ---- */

/* Evaluates a curve at x = log2(rows): 1 for an empty curve, the knots'
 * values beyond the ends, else linear on the segment [x[l], x[l+1]]
 * holding x (the one l with x[l] <= x < x[l+1]), found by walking from
 * where evenly spaced knots would put it (the fitted curves' knots are
 * evenly spaced: no step is taken); *seg is set to l there. At most
 * PERF_MAX_KNOTS knots; no allocation. */
static inline double curve_find(const perf_curve *c, double x, int *seg) {
    int l, last = c->n - 1;
    double f;
    if (c->n <= 0)
        return 1.0;
    if (!(x > c->x[0]))
        return c->y[0];
    if (x >= c->x[last])
        return c->y[last];
    /* x[0] < x < x[last]: a first guess in [0, last - 1] */
    l = (int)((x - c->x[0]) / (c->x[last] - c->x[0]) * (double)last);
    if (l > last - 1)
        l = last - 1;
    while (l > 0 && c->x[l] > x)
        l--;
    while (l + 1 < last && c->x[l + 1] <= x)
        l++;
    *seg = l;
    f = (x - c->x[l]) / (c->x[l + 1] - c->x[l]);
    return c->y[l] + f * (c->y[l + 1] - c->y[l]);
}

double perf_curve_eval(const perf_curve *c, double x) {
    int seg;
    return curve_find(c, x, &seg);
}

/* Multiplies every value of curve c by f; an empty curve (efficiency 1)
 * becomes the constant f. f == 1 leaves c as it is. */
static void curve_scale(perf_curve *c, double f) {
    int i;
    if (f == 1.0)
        return;
    if (c->n == 0) {
        c->n = 1;
        c->x[0] = 0.0;
        c->y[0] = 1.0;
    }
    for (i = 0; i < c->n; i++)
        c->y[i] *= f;
}

void perf_op_at_shape(const perf_op_calib *in, double s, double a, perf_op_calib *out) {
    *out = *in;
    curve_scale(&out->eff_c, perf_curve_eval(&in->shape_c, s));
    curve_scale(&out->eff_m, perf_curve_eval(&in->shape_m, s));
    if (!isnan(a)) {
        curve_scale(&out->eff_c, perf_curve_eval(&in->aspect_c, a));
        curve_scale(&out->eff_m, perf_curve_eval(&in->aspect_m, a));
    }
    memset(&out->shape_c, 0, sizeof out->shape_c);
    memset(&out->shape_m, 0, sizeof out->shape_m);
    memset(&out->aspect_c, 0, sizeof out->aspect_c);
    memset(&out->aspect_m, 0, sizeof out->aspect_m);
}

double perf_calib_step_base_s(const perf_calib *c, int tp) {
    return c->step_base_s + (tp > 1 ? c->step_tp_s : 0.0);
}

double perf_gemm_shape(double n, double k) {
    return log2(n * k);
}

double perf_gemm_aspect(double n, double k) {
    return log2(n / k);
}

/* A work factor curve at work index w: 1 without the curve or without an
 * index (NAN). */
static inline double work_factor(const perf_curve *c, double w) {
    return c->n > 0 && !isnan(w) ? perf_curve_eval(c, w) : 1.0;
}

/* The two roofline terms of one call, without overhead: tc = flops /
 * (peak x eff_c(x) x work_c(w)), tm = bytes / (bw x eff_m(x) x work_m(w)),
 * x = log2(rows), w the work index (NAN: none); both efficiencies times
 * unal(x) when rows is not a multiple of PERF_ALIGN_ROWS and the operator
 * has that curve. A factor of 1 leaves the bits as they were without it. */
static void roof_terms(const perf_op_calib *oc, double peak, double bw, double flops, double bytes,
                       double rows, double x, double w, double *tc, double *tm) {
    double u = 1.0;
    if (oc->unal.n > 0 && PERF_ROWS_UNALIGNED(rows))
        u = perf_curve_eval(&oc->unal, x);
    *tc = flops > 0
              ? flops / (peak * (perf_curve_eval(&oc->eff_c, x) * work_factor(&oc->work_c, w)) * u)
              : 0.0;
    *tm = bytes > 0
              ? bytes / (bw * (perf_curve_eval(&oc->eff_m, x) * work_factor(&oc->work_m, w)) * u)
              : 0.0;
}

/* Time of one operator call with the given work, in seconds:
 * max(flops / (peak x eff_c), bytes / (bw x eff_m)) + overhead_s, with the
 * curves read at log2(rows); 0 when rows <= 0 or there is no work. This is
 * the function perf_predict charges every call with, exported so that the
 * calibration fits exactly what is predicted. */
double perf_roofline_work_s(const perf_op_calib *oc, double peak, double bw, double flops,
                            double bytes, double rows, double w) {
    double tc, tm;
    if (!(rows > 0) || (flops <= 0 && bytes <= 0))
        return 0.0;
    roof_terms(oc, peak, bw, flops, bytes, rows, log2(rows), w, &tc, &tm);
    return (tc > tm ? tc : tm) + oc->overhead_s;
}

double perf_roofline_s(const perf_op_calib *oc, double peak, double bw, double flops, double bytes,
                       double rows) {
    return perf_roofline_work_s(oc, peak, bw, flops, bytes, rows, NAN);
}

/* FLOPs and HBM bytes of y[m x n] = x[m x k] W^T with W of n x k in
 * wbytes-byte elements and bf16 activations: 2mnk FLOPs, n k wbytes +
 * (m k + m n) x 2 bytes. */
void perf_gemm_cost(double m, double n, double k, double wbytes, double *flops, double *bytes) {
    *flops = 2.0 * m * n * k;
    *bytes = n * k * wbytes + (m * k + m * n) * 2.0;
}

/* ---- operator costs ---- */

/* Per-GPU shape, derived once per call from the model and tp. */
typedef struct shape {
    double h;   /* hidden */
    double q;   /* query width on this GPU: heads x head_dim / tp */
    double kv;  /* K (or V) width on this GPU: kv heads per GPU x head_dim */
    double ffn; /* intermediate / tp */
    double voc; /* vocab / tp */
    double wb;  /* weight bytes per element */
    double kvb; /* KV bytes per element */
    double kvh; /* KV heads per GPU */
    double qh;  /* query heads per GPU */
} shape;

static void shape_of(const perf_ctx *ctx, shape *s) {
    const sim_model *m = &ctx->model;
    double t = (double)ctx->tp;
    double kvh = m->n_kv_heads >= ctx->tp ? (double)m->n_kv_heads / t : 1.0;
    s->h = (double)m->hidden;
    s->q = (double)m->n_heads * (double)m->head_dim / t;
    s->kv = kvh * (double)m->head_dim;
    s->kvh = kvh;
    s->qh = (double)m->n_heads / t;
    s->ffn = (double)m->intermediate / t;
    s->voc = (double)m->vocab / t;
    s->wb = dtype_bytes(m->w_dtype);
    s->kvb = dtype_bytes(m->kv_dtype);
}

/* Which batch count an operator's curves are indexed by: tokens, sampled
 * sequences, (attention) the mean keys per query of prefill or decode, or
 * (all-reduce) the message size in KiB. */
enum rows_kind {
    ROWS_TOKENS = 0,
    ROWS_SAMPLES,
    ROWS_PREFILL,
    ROWS_DECODE,
    ROWS_MSG_KIB,
    N_ROWS_KIND
};

/* The rows of each kind for batch b. Attention efficiency follows the
 * keys each query reads (the KV length a kernel tile streams), not the
 * token count: FlashAttention reaches 600+ TFLOP/s on H100 at 16k-token
 * prompts and under 100 at 128-token ones, whatever the batch. An
 * all-reduce's follows its message size, whatever the model. */
static void rows_of(const shape *s, const perf_batch *b, double *r) {
    r[ROWS_TOKENS] = (double)b->prefill_tokens + (double)b->n_decode;
    r[ROWS_SAMPLES] = (double)b->n_sample;
    r[ROWS_PREFILL] = b->prefill_tokens > 0 ? b->prefill_pairs / (double)b->prefill_tokens : 0.0;
    r[ROWS_DECODE] = b->n_decode > 0 ? (double)b->decode_ctx / (double)b->n_decode : 0.0;
    r[ROWS_MSG_KIB] = r[ROWS_TOKENS] * s->h * 2.0 / 1024.0;
}

/* The work index of an attention (perf_op_work) from the batch and its
 * rows' logs: log2(P x query heads) for prefill; for decode
 * log2(decode_ctx / n_decode) + log2(n_decode x kvh), which the decode
 * stepper gets with one addition per step. NAN for other operators or no
 * rows. */
static double work_index(const shape *s, enum perf_op op, const perf_batch *b, const double *lg) {
    if (op == PERF_OP_ATTN_PREFILL && b->prefill_tokens > 0)
        return log2((double)b->prefill_tokens * s->qh);
    if (op == PERF_OP_ATTN_DECODE && b->n_decode > 0 && b->decode_ctx > 0)
        return lg[ROWS_DECODE] + log2((double)b->n_decode * s->kvh);
    return NAN;
}

/* N and K of a weight GEMM operator's weight on one GPU. */
static void gemm_nk(const shape *s, enum perf_op op, double *n, double *k) {
    switch (op) {
        case PERF_OP_QKV_PROJ:
            *n = s->q + 2.0 * s->kv;
            *k = s->h;
            return;
        case PERF_OP_O_PROJ:
            *n = s->h;
            *k = s->q;
            return;
        case PERF_OP_MLP_UP:
            *n = 2.0 * s->ffn;
            *k = s->h;
            return;
        case PERF_OP_MLP_DOWN:
            *n = s->h;
            *k = s->ffn;
            return;
        default:
            SIM_ASSERT(op == PERF_OP_LM_HEAD);
            *n = s->voc;
            *k = s->h;
            return;
    }
}

/* FLOPs and HBM (or, for the all-reduce, link) bytes of one call of op,
 * and which count its rows are. */
static enum rows_kind op_cost(const perf_ctx *ctx, const shape *s, enum perf_op op,
                              const perf_batch *b, double *flops, double *bytes) {
    double T = (double)b->prefill_tokens + (double)b->n_decode;
    double S = (double)b->n_sample;
    double P = (double)b->prefill_tokens;
    double D = (double)b->n_decode;
    double t = (double)ctx->tp, n, k;
    *flops = 0.0;
    *bytes = 0.0;
    switch (op) {
        case PERF_OP_QKV_PROJ:
        case PERF_OP_O_PROJ:
        case PERF_OP_MLP_UP:
        case PERF_OP_MLP_DOWN:
            gemm_nk(s, op, &n, &k);
            perf_gemm_cost(T, n, k, s->wb, flops, bytes);
            return ROWS_TOKENS;
        case PERF_OP_MLP_ACT:
            *bytes = 3.0 * T * s->ffn * 2.0;
            return ROWS_TOKENS;
        case PERF_OP_NORM:
            *bytes = 2.0 * (2.0 * T * s->h * 2.0);
            return ROWS_TOKENS;
        case PERF_OP_ROPE:
            *bytes = 2.0 * T * (s->q + s->kv) * 2.0;
            return ROWS_TOKENS;
        case PERF_OP_ATTN_PREFILL:
            *flops = 4.0 * s->q * b->prefill_pairs;
            *bytes = (double)b->prefill_kv_tokens * 2.0 * s->kv * s->kvb + P * s->q * 2.0 * 2.0;
            return ROWS_PREFILL;
        case PERF_OP_ATTN_DECODE:
            *flops = 4.0 * s->q * (double)b->decode_ctx;
            *bytes = (double)b->decode_ctx * 2.0 * s->kv * s->kvb + D * s->q * 2.0 * 2.0;
            return ROWS_DECODE;
        case PERF_OP_KV_SAVE:
            *bytes = 2.0 * T * 2.0 * s->kv * s->kvb;
            return ROWS_TOKENS;
        case PERF_OP_EMBED:
            *bytes = T * s->h * 2.0;
            return ROWS_TOKENS;
        case PERF_OP_LM_HEAD:
            gemm_nk(s, op, &n, &k);
            perf_gemm_cost(S, n, k, s->wb, flops, bytes);
            return ROWS_SAMPLES;
        case PERF_OP_SAMPLE:
            *bytes = S * s->voc * 4.0;
            return ROWS_SAMPLES;
        case PERF_OP_ALLREDUCE:
            if (ctx->tp > 1)
                *bytes = 2.0 * (t - 1.0) / t * (T * s->h * 2.0);
            return ROWS_MSG_KIB;
        case PERF_N_OPS:
            break;
    }
    return ROWS_TOKENS;
}

/* What an operator's efficiency depends on besides its rows, fixed for a
 * model and tp: the weight's size for a GEMM (a small weight cannot keep
 * HBM busy, a narrow one fills few tiles), the row width for an
 * elementwise operator (threads per token), for rope the query width
 * alone (its kernel runs one thread block per token, as wide as the query
 * heads' rotary pairs, and passes the keys with the same threads: with GQA
 * the keys add little; log2(q + kv) left 5.1% held out, log2(q) 4.7%), the
 * KV heads per GPU for attention (the K/V tiles a query head group
 * streams; MHA differs from GQA at equal keys per query). The all-reduce
 * has one shape: a factor per GPU count overfits its 56 profile rows
 * (held-out error 4.6% -> 7.7%). */
double perf_op_shape(const perf_ctx *ctx, enum perf_op op) {
    shape s;
    double n, k;
    shape_of(ctx, &s);
    switch (op) {
        case PERF_OP_QKV_PROJ:
        case PERF_OP_O_PROJ:
        case PERF_OP_MLP_UP:
        case PERF_OP_MLP_DOWN:
        case PERF_OP_LM_HEAD:
            gemm_nk(&s, op, &n, &k);
            return perf_gemm_shape(n, k);
        case PERF_OP_MLP_ACT:
            return log2(s.ffn);
        case PERF_OP_NORM:
        case PERF_OP_EMBED:
            return log2(s.h);
        case PERF_OP_ROPE:
            return log2(s.q);
        case PERF_OP_ATTN_PREFILL:
        case PERF_OP_ATTN_DECODE:
            return log2(s.kv / (double)ctx->model.head_dim);
        case PERF_OP_KV_SAVE:
            return log2(s.kv);
        case PERF_OP_SAMPLE:
            return log2(s.voc);
        case PERF_OP_ALLREDUCE:
            return 0.0; /* one curve for every GPU count (docs/calibration.md) */
        case PERF_N_OPS:
            break;
    }
    return 0.0;
}

/* A weight GEMM's second index: log2(N / K) of its weight, which N x K
 * alone does not tell (at equal size the kernels differ with the split). */
double perf_op_aspect(const perf_ctx *ctx, enum perf_op op) {
    shape s;
    double n, k;
    if (!PERF_OP_IS_GEMM(op))
        return NAN;
    shape_of(ctx, &s);
    gemm_nk(&s, op, &n, &k);
    return perf_gemm_aspect(n, k);
}

/* Calls of op per step: per layer (twice for the all-reduce) or once. */
static double op_calls(const perf_ctx *ctx, enum perf_op op) {
    switch (op) {
        case PERF_OP_EMBED:
        case PERF_OP_LM_HEAD:
        case PERF_OP_SAMPLE:
            return 1.0;
        case PERF_OP_ALLREDUCE:
            return 2.0 * (double)ctx->model.n_layers;
        default:
            return (double)ctx->model.n_layers;
    }
}

static double op_peak(const perf_ctx *ctx, enum perf_op op) {
    if (op == PERF_OP_ATTN_PREFILL || op == PERF_OP_ATTN_DECODE)
        return ctx->peak_attn;
    return ctx->peak;
}

/* Link bandwidth of the all-reduce: NVLink, or PCIe on a GPU without it. */
static double link_bw(const perf_ctx *ctx) {
    return ctx->gpu.nvlink_bw > 0 ? ctx->gpu.nvlink_bw : ctx->gpu.pcie_bw;
}

static double op_bw(const perf_ctx *ctx, enum perf_op op) {
    return op == PERF_OP_ALLREDUCE ? link_bw(ctx) : ctx->gpu.hbm_bw;
}

/* FLOPs and bytes of one call of op for batch b (one layer for per-layer
 * operators), and its rows. For the all-reduce, bytes are what one call
 * sends over the link per GPU, 2(t-1)/t x T x hidden x 2, and perf_predict
 * charges two calls per layer. */
void perf_op_cost(const perf_ctx *ctx, enum perf_op op, const perf_batch *b, double *flops,
                  double *bytes, double *rows) {
    shape s;
    double r[N_ROWS_KIND];
    enum rows_kind k;
    SIM_ASSERT(op >= 0 && op < PERF_N_OPS);
    shape_of(ctx, &s);
    k = op_cost(ctx, &s, op, b, flops, bytes);
    rows_of(&s, b, r);
    *rows = r[k];
}

/* Time of one call of op for batch b, overhead included, in seconds (one
 * layer for per-layer operators, one of the two all-reduces of a layer). */
double perf_op_call_s(const perf_ctx *ctx, enum perf_op op, const perf_batch *b) {
    double flops, bytes, rows;
    perf_op_cost(ctx, op, b, &flops, &bytes, &rows);
    return perf_roofline_work_s(&ctx->op[op], op_peak(ctx, op), op_bw(ctx, op), flops, bytes, rows,
                                perf_op_work(ctx, op, b));
}

/* ---- the step ---- */

/* Whether op's time comes from the collective model (the all-reduce of a
 * replica spanning nodes): no roofline and no launch overhead on top. */
static int op_is_collective(const perf_ctx *ctx, enum perf_op op) {
    return op == PERF_OP_ALLREDUCE && ctx->tp_nodes > 1;
}

/* Time of op in batch b, all its calls (0 when it has no work), with its
 * FLOPs, bytes and roofline terms of one call. rows/lg are the batch's rows
 * and their log2 by kind. The one place a step's operator time is computed:
 * step_eval and perf_step_s_cached both call it, so they agree bit for bit. */
static double op_eval(const perf_ctx *ctx, const shape *s, enum perf_op op, const perf_batch *b,
                      const double *rows, const double *lg, double *flops, double *bytes,
                      double *tc, double *tm) {
    const perf_op_calib *oc = &ctx->op[op];
    enum rows_kind rk = op_cost(ctx, s, op, b, flops, bytes);
    *tc = *tm = 0.0;
    if (!(rows[rk] > 0) || (*flops <= 0 && *bytes <= 0))
        return 0.0;
    if (op_is_collective(ctx, op)) {
        /* across nodes: the hierarchical collective model, by message size
         * (ring traffic 2(t-1)/t of it, as op_cost counts) */
        double t = (double)ctx->tp;
        *tm = coll_plan_time(&ctx->ar, *bytes * t / (2.0 * (t - 1.0)), NULL);
        return op_calls(ctx, op) * *tm;
    }
    roof_terms(oc, op_peak(ctx, op), op_bw(ctx, op), *flops, *bytes, rows[rk], lg[rk],
               oc->work_c.n > 0 || oc->work_m.n > 0 ? work_index(s, op, b, lg) : NAN, tc, tm);
    return op_calls(ctx, op) * ((*tc > *tm ? *tc : *tm) + oc->overhead_s);
}

static void rows_and_logs(const shape *s, const perf_batch *b, double *rows, double *lg) {
    int k;
    rows_of(s, b, rows);
    for (k = 0; k < N_ROWS_KIND; k++)
        lg[k] = rows[k] > 0 ? log2(rows[k]) : 0.0;
}

double perf_op_work(const perf_ctx *ctx, enum perf_op op, const perf_batch *b) {
    shape s;
    double rows[N_ROWS_KIND], lg[N_ROWS_KIND];
    if (!PERF_OP_HAS_WORK(op))
        return NAN;
    shape_of(ctx, &s);
    rows_and_logs(&s, b, rows, lg);
    return work_index(&s, op, b, lg);
}

/* Pipeline parallelism: the activations of the step's T tokens cross pp - 1
 * stage boundaries (0 s at pp = 1). */
static double pp_send_s(const perf_ctx *ctx, double T) {
    if (ctx->pp <= 1)
        return 0.0;
    return (double)(ctx->pp - 1) * (ctx->pp_latency_s + T * ctx->model.hidden * 2.0 / ctx->pp_bw);
}

/* The order every sum over operators follows (times, FLOPs, bytes): those
 * whose cost depends only on the step's token count first, then those of
 * its sample count, the all-reduce (tokens again), the two attentions last,
 * so that perf_step_cached can take the first part's sums from tables by
 * count and still give the same bits. */
static const enum perf_op op_order[PERF_N_OPS] = {
    PERF_OP_QKV_PROJ, PERF_OP_O_PROJ,    PERF_OP_MLP_UP,       PERF_OP_MLP_ACT,    PERF_OP_MLP_DOWN,
    PERF_OP_NORM,     PERF_OP_ROPE,      PERF_OP_KV_SAVE,      PERF_OP_EMBED,      PERF_OP_LM_HEAD,
    PERF_OP_SAMPLE,   PERF_OP_ALLREDUCE, PERF_OP_ATTN_PREFILL, PERF_OP_ATTN_DECODE};
#define N_COUNT_OPS (PERF_N_OPS - 2) /* op_order[0, N_COUNT_OPS): by counts alone */

/* Predicts one step. Shared by perf_predict (out != NULL) and perf_step_s
 * (out == NULL) so that both give the same bits. */
static double step_eval(const perf_ctx *ctx, const perf_batch *b, perf_result *out) {
    shape s;
    double rows[N_ROWS_KIND], lg[N_ROWS_KIND];
    double step = 0.0, n_seq;
    int i;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    n_seq = (double)b->n_prefill + (double)b->n_decode;
    if (!(n_seq > 0)) {
        if (out != NULL)
            out->bound = PERF_BOUND_OVERHEAD;
        return 0.0;
    }
    shape_of(ctx, &s);
    rows_and_logs(&s, b, rows, lg);

    for (i = 0; i < PERF_N_OPS; i++) {
        double flops, bytes, tc, tm, calls;
        enum perf_op op = op_order[i];
        double t_op = op_eval(ctx, &s, op, b, rows, lg, &flops, &bytes, &tc, &tm);
        if (t_op == 0.0)
            continue;
        step += t_op;
        if (out == NULL)
            continue;
        calls = op_calls(ctx, (enum perf_op)op);
        out->op_s[op] = t_op;
        out->flops += calls * flops;
        if (!op_is_collective(ctx, op))
            out->t_overhead += calls * ctx->op[op].overhead_s;
        if (op == PERF_OP_ALLREDUCE) {
            out->link_bytes += calls * bytes;
            out->t_link += calls * tm;
        } else {
            out->bytes += calls * bytes;
            if (tc >= tm)
                out->t_compute += calls * tc;
            else
                out->t_hbm += calls * tm;
        }
    }
    step += ctx->step_base_s + ctx->calib.step_per_seq_s * n_seq;
    step += pp_send_s(ctx, (double)b->prefill_tokens + (double)b->n_decode);
    if (out != NULL) {
        double best;
        out->step_s = step;
        out->t_link += pp_send_s(ctx, (double)b->prefill_tokens + (double)b->n_decode);
        out->link_bytes += (double)(ctx->pp - 1) *
                           ((double)b->prefill_tokens + (double)b->n_decode) * ctx->model.hidden *
                           2.0;
        out->t_overhead += ctx->step_base_s + ctx->calib.step_per_seq_s * n_seq;
        out->bound = PERF_BOUND_COMPUTE;
        best = out->t_compute;
        if (out->t_hbm > best) {
            best = out->t_hbm;
            out->bound = PERF_BOUND_HBM;
        }
        if (out->t_link > best) {
            best = out->t_link;
            out->bound = PERF_BOUND_LINK;
        }
        if (out->t_overhead > best)
            out->bound = PERF_BOUND_OVERHEAD;
    }
    return step;
}

/* Adds one operator's FLOPs and HBM bytes (all calls) to the sums. */
static void work_add(const perf_ctx *ctx, const shape *s, enum perf_op op, const perf_batch *b,
                     const double *rows, double *flops_out, double *bytes_out) {
    double flops, bytes, calls;
    enum rows_kind rk = op_cost(ctx, s, op, b, &flops, &bytes);
    if (!(rows[rk] > 0) || (flops <= 0 && bytes <= 0))
        return;
    calls = op_calls(ctx, op);
    *flops_out += calls * flops;
    if (op != PERF_OP_ALLREDUCE)
        *bytes_out += calls * bytes;
}

/* The FLOPs and HBM bytes of batch b on one GPU, without the times: the
 * same sums, in the same order, as perf_predict's flops and bytes, at the
 * cost of the operator arithmetic alone (no efficiency curves). */
void perf_work(const perf_ctx *ctx, const perf_batch *b, double *flops_out, double *bytes_out) {
    shape s;
    double rows[N_ROWS_KIND];
    int i;
    *flops_out = 0.0;
    *bytes_out = 0.0;
    if (!((double)b->n_prefill + (double)b->n_decode > 0))
        return;
    shape_of(ctx, &s);
    rows_of(&s, b, rows);
    for (i = 0; i < PERF_N_OPS; i++)
        work_add(ctx, &s, op_order[i], b, rows, flops_out, bytes_out);
}

/* ---- the count tables ---- */

/* Design. Every operator but the two attentions costs what the step's
 * token count T (qkv_proj .. embed, op_order[0, N_TOK_OPS), and the
 * all-reduce) or sample count S (lm_head, sample) makes it cost, so
 * perf_cache keeps, per T, the sum of the first N_TOK_OPS operators' times
 * (summed in op_order, skipping zeros, as step_eval does) and the
 * all-reduce's time, and per S the lm_head's and the sample's; likewise
 * their FLOPs and HBM bytes (work_add's sums). A step's sum of those
 * operators is then (((tok[T] + lm_head[S]) + sample[S]) + allreduce[T]),
 * the very additions, in the very order, of step_eval over op_order, so
 * the cached and uncached paths agree bit for bit. The all-reduce moves
 * link bytes only (no FLOPs, no HBM bytes: op_cost, work_add), so its
 * entry holds a time alone.
 *
 * The tables are dense arrays indexed by the count, filled lazily (a NaN
 * time marks an entry not filled yet; an operator whose time is NaN is
 * recomputed every call, which gives the same bits) and grown on demand to
 * the next power of two, up to PERF_CACHE_MAX entries; counts beyond that,
 * or a failed allocation, are computed directly. Sizes: T reaches
 * max_batched_tokens (thousands to tens of thousands), S max_num_seqs
 * (hundreds). Prefill steps seldom repeat their (T, S) pair but soon
 * repeat each count, which is why the two are kept apart. */

#define N_TOK_OPS   9 /* op_order[0, N_TOK_OPS): by tokens alone */
#define MIN_ENTRIES 64

struct perf_cache_tok {
    double t_ops;        /* op_order[0, N_TOK_OPS)'s time, s (NaN: not filled) */
    double f_ops, b_ops; /* their FLOPs and HBM bytes */
    double t_ar;         /* the all-reduce's time, s */
    /* a pure-decode stretch of this many sequences: the figures
     * perf_dstep_next reads (NaN d_t: not filled) */
    double d_t, d_f, d_b, d_pp, d_wconst;
};

struct perf_cache_smp {
    double t_lm, f_lm, b_lm;    /* lm_head's time (s, NaN: not filled), FLOPs, bytes */
    double t_smp, f_smp, b_smp; /* sample's time (s), FLOPs, bytes */
};

/* The sums of the count operators for one (T, S), as step_eval forms them. */
typedef struct count_sums {
    double t, f, b;
} count_sums;

static void tok_clear(struct perf_cache_tok *e, int64_t n) {
    int64_t i;
    for (i = 0; i < n; i++)
        e[i].t_ops = e[i].d_t = NAN;
}

static void smp_clear(struct perf_cache_smp *e, int64_t n) {
    int64_t i;
    for (i = 0; i < n; i++)
        e[i].t_lm = NAN;
}

/* The smallest power of two above k, at least MIN_ENTRIES, at most
 * PERF_CACHE_MAX (for 0 <= k < PERF_CACHE_MAX). */
static int64_t table_size(int64_t k) {
    int64_t n = MIN_ENTRIES;
    while (n <= k)
        n *= 2;
    return n < PERF_CACHE_MAX ? n : PERF_CACHE_MAX;
}

/* Grows c's token table to n > c->n_tok entries, the new ones not filled;
 * 1, or 0 when out of memory (c unchanged). Invalidates c->tok. */
static int tok_grow(perf_cache *c, int64_t n) {
    struct perf_cache_tok *t = sim_realloc(c->tok, (size_t)n * sizeof *t);
    if (t == NULL)
        return 0;
    tok_clear(t + c->n_tok, n - c->n_tok);
    c->tok = t;
    c->n_tok = n;
    return 1;
}

/* tok_grow for the sample table; invalidates c->smp. */
static int smp_grow(perf_cache *c, int64_t n) {
    struct perf_cache_smp *t = sim_realloc(c->smp, (size_t)n * sizeof *t);
    if (t == NULL)
        return 0;
    smp_clear(t + c->n_smp, n - c->n_smp);
    c->smp = t;
    c->n_smp = n;
    return 1;
}

/* 1 when c->tok[k] exists, growing the table to hold it if c is enabled
 * and k < PERF_CACHE_MAX; 0 when the count is to be computed directly. */
static int tok_reserve(perf_cache *c, int64_t k) {
    if (k < c->n_tok)
        return k >= 0;
    return c->on && k < PERF_CACHE_MAX && tok_grow(c, table_size(k));
}

/* tok_reserve for the sample table. */
static int smp_reserve(perf_cache *c, int64_t k) {
    if (k < c->n_smp)
        return k >= 0;
    return c->on && k < PERF_CACHE_MAX && smp_grow(c, table_size(k));
}

/* Zeroes c and enables its tables, allocated for counts up to max_tokens
 * tokens and max_samples samples when these are positive (the event loop
 * then need not allocate: a table grows, to powers of two, only for a
 * larger count). SIM_OK, or SIM_ENOMEM with c zeroed. */
int perf_cache_init(perf_cache *c, int64_t max_tokens, int max_samples) {
    memset(c, 0, sizeof *c);
    c->on = 1;
    if ((max_tokens > 0 &&
         !tok_grow(c, max_tokens < PERF_CACHE_MAX ? max_tokens + 1 : PERF_CACHE_MAX)) ||
        (max_samples > 0 &&
         !smp_grow(c, max_samples < PERF_CACHE_MAX ? (int64_t)max_samples + 1 : PERF_CACHE_MAX))) {
        perf_cache_fini(c);
        return SIM_ENOMEM;
    }
    return SIM_OK;
}

/* Frees c's tables and zeroes c (which then caches nothing). */
void perf_cache_fini(perf_cache *c) {
    sim_free(c->tok);
    sim_free(c->smp);
    memset(c, 0, sizeof *c);
}

/* Forgets every entry; the next call refills what it needs. */
void perf_cache_reset(perf_cache *c) {
    tok_clear(c->tok, c->n_tok);
    smp_clear(c->smp, c->n_smp);
}

/* Fills *e for b's token count: the times, FLOPs and bytes of
 * op_order[0, N_TOK_OPS), summed as step_eval and perf_work sum them, and
 * the all-reduce's time. */
static void tok_fill(const perf_ctx *ctx, const shape *s, const perf_batch *b, const double *rows,
                     const double *lg, struct perf_cache_tok *e) {
    double flops, bytes, tc, tm, t = 0.0, f = 0.0, by = 0.0;
    int i;
    /* the order the tables assume (constant: folded away) */
    SIM_ASSERT(op_order[N_TOK_OPS - 1] == PERF_OP_EMBED && op_order[N_TOK_OPS] == PERF_OP_LM_HEAD &&
               op_order[N_TOK_OPS + 1] == PERF_OP_SAMPLE &&
               op_order[N_TOK_OPS + 2] == PERF_OP_ALLREDUCE && N_TOK_OPS + 3 == N_COUNT_OPS);
    for (i = 0; i < N_TOK_OPS; i++) {
        double t_op = op_eval(ctx, s, op_order[i], b, rows, lg, &flops, &bytes, &tc, &tm);
        if (t_op != 0.0)
            t += t_op;
        work_add(ctx, s, op_order[i], b, rows, &f, &by);
    }
    e->f_ops = f;
    e->b_ops = by;
    e->t_ar = op_eval(ctx, s, PERF_OP_ALLREDUCE, b, rows, lg, &flops, &bytes, &tc, &tm);
    e->t_ops = t; /* last: a filled entry is whole */
}

/* Fills *e for b's sample count: lm_head's and sample's times, FLOPs and
 * bytes (work_add's terms: 0 for an operator with no work). */
static void smp_fill(const perf_ctx *ctx, const shape *s, const perf_batch *b, const double *rows,
                     const double *lg, struct perf_cache_smp *e) {
    double flops, bytes, tc, tm;
    e->f_lm = e->b_lm = e->f_smp = e->b_smp = 0.0;
    work_add(ctx, s, PERF_OP_LM_HEAD, b, rows, &e->f_lm, &e->b_lm);
    work_add(ctx, s, PERF_OP_SAMPLE, b, rows, &e->f_smp, &e->b_smp);
    e->t_smp = op_eval(ctx, s, PERF_OP_SAMPLE, b, rows, lg, &flops, &bytes, &tc, &tm);
    e->t_lm = op_eval(ctx, s, PERF_OP_LM_HEAD, b, rows, lg, &flops, &bytes, &tc, &tm);
}

/* The summed time, FLOPs and HBM bytes of op_order[0, N_COUNT_OPS) for
 * batch b (non-empty), from c's tables where it can (filling them), else
 * computed: in both cases the additions of step_eval and perf_work, in
 * their order. The FLOPs and bytes terms of lm_head and sample are added
 * even when 0 (work_add skips them): the sums are never -0, and x + 0 is x
 * for every other x. */
static void count_sums_of(const perf_ctx *ctx, perf_cache *c, const shape *s, const perf_batch *b,
                          count_sums *out) {
    struct perf_cache_tok tok_here, *et = &tok_here;
    struct perf_cache_smp smp_here, *es = &smp_here;
    double rows[N_ROWS_KIND], lg[N_ROWS_KIND];
    int64_t T = b->prefill_tokens + (int64_t)b->n_decode;
    int fill_tok, fill_smp;
    if (c->ctx != ctx) {
        perf_cache_reset(c);
        c->ctx = ctx;
    }
    if (tok_reserve(c, T))
        et = &c->tok[T];
    if (smp_reserve(c, b->n_sample))
        es = &c->smp[b->n_sample];
    fill_tok = et == &tok_here || isnan(et->t_ops);
    fill_smp = es == &smp_here || isnan(es->t_lm);
    if (fill_tok || fill_smp)
        rows_and_logs(s, b, rows, lg);
    if (fill_tok)
        tok_fill(ctx, s, b, rows, lg, et);
    if (fill_smp)
        smp_fill(ctx, s, b, rows, lg, es);
    out->t = et->t_ops;
    if (es->t_lm != 0.0)
        out->t += es->t_lm;
    if (es->t_smp != 0.0)
        out->t += es->t_smp;
    if (et->t_ar != 0.0)
        out->t += et->t_ar;
    out->f = et->f_ops + es->f_lm + es->f_smp;
    out->b = et->b_ops + es->b_lm + es->b_smp;
}

/* ---- the cached step ---- */

/* perf_step_s with a cache: every operator but the two attentions depends
 * only on the step's token and sample counts, so their sums come from c's
 * tables by count (see above). Same per-operator values, same summation
 * order: equal bit for bit to perf_step_s. */
double perf_step_s_cached(const perf_ctx *ctx, perf_cache *c, const perf_batch *b) {
    return perf_step_cached(ctx, c, b, NULL, NULL);
}

/* perf_step_s_cached that also gives the step's FLOPs and HBM bytes on one
 * GPU (flops_out and bytes_out may be NULL), equal bit for bit to
 * perf_work's. */
double perf_step_cached(const perf_ctx *ctx, perf_cache *c, const perf_batch *b, double *flops_out,
                        double *bytes_out) {
    double rows[N_ROWS_KIND], lg[N_ROWS_KIND];
    double step, n_seq, T, flops, bytes, tc, tm;
    count_sums cs;
    shape s;
    int i;
    n_seq = (double)b->n_prefill + (double)b->n_decode;
    if (!(n_seq > 0)) {
        if (flops_out) {
            *flops_out = 0.0;
            *bytes_out = 0.0;
        }
        return 0.0;
    }
    T = (double)b->prefill_tokens + (double)b->n_decode;
    shape_of(ctx, &s);
    count_sums_of(ctx, c, &s, b, &cs);
    /* the attentions: their rows and logarithms only */
    rows_of(&s, b, rows);
    lg[ROWS_PREFILL] = rows[ROWS_PREFILL] > 0 ? log2(rows[ROWS_PREFILL]) : 0.0;
    lg[ROWS_DECODE] = rows[ROWS_DECODE] > 0 ? log2(rows[ROWS_DECODE]) : 0.0;
    step = cs.t;
    for (i = N_COUNT_OPS; i < PERF_N_OPS; i++) {
        double t_op = op_eval(ctx, &s, op_order[i], b, rows, lg, &flops, &bytes, &tc, &tm);
        if (t_op != 0.0)
            step += t_op;
    }
    if (flops_out) {
        *flops_out = cs.f;
        *bytes_out = cs.b;
        for (i = N_COUNT_OPS; i < PERF_N_OPS; i++)
            work_add(ctx, &s, op_order[i], b, rows, flops_out, bytes_out);
    }
    step += ctx->step_base_s + ctx->calib.step_per_seq_s * n_seq;
    return step + pp_send_s(ctx, T);
}

/* Predicts one step of batch b on ctx into *out: the step time, each
 * operator's share (all layers, one GPU), the FLOPs, HBM and link bytes,
 * and the split of the time into compute-, memory-, link-bound and
 * overhead. An empty batch (no sequences) gives all zeros. */
void perf_predict(const perf_ctx *ctx, const perf_batch *b, perf_result *out) {
    (void)step_eval(ctx, b, out);
}

/* The step time alone, in seconds: the hot path, called once per simulated
 * step. Equal bit for bit to perf_predict's step_s. */
double perf_step_s(const perf_ctx *ctx, const perf_batch *b) {
    return step_eval(ctx, b, NULL);
}

/* ---- batches ---- */

/* Adds a prefill chunk of c new tokens after p cached tokens; samples is 1
 * when the chunk ends the prompt (the sequence then emits a token). */
void perf_batch_add_prefill(perf_batch *b, int64_t c, int64_t p, int samples) {
    double dc = (double)c;
    SIM_ASSERT(c >= 0 && p >= 0);
    b->n_prefill++;
    b->n_sample += samples;
    b->prefill_tokens += c;
    b->prefill_pairs += dc * (double)p + dc * (dc + 1.0) / 2.0;
    b->prefill_kv_tokens += p + c;
}

/* Adds a decode sequence whose context is n tokens, its new one included. */
void perf_batch_add_decode(perf_batch *b, int64_t n) {
    SIM_ASSERT(n >= 1);
    b->n_decode++;
    b->n_sample++;
    b->decode_ctx += n;
}

/* ---- context ---- */

/* ---- the operators' curves ---- */

/* The kinds of curve a file holds: an efficiency by log2(rows), and
 * factors on an efficiency by the shape, the unaligned rows, the aspect or
 * the work index. */
typedef struct curve_kind {
    const char *xkey, *ykey, *what;
    double ymin, ymax; /* the range calibrate clamps its fits to */
} curve_kind;
static const curve_kind kind_eff = {"log2_rows", "eff", "an efficiency", 1e-4, 1.5};
static const curve_kind kind_shape = {"log2_shape", "factor", "a factor", 1e-3, 4.0};
static const curve_kind kind_unal = {"log2_rows", "factor", "a factor", 1e-3, 4.0};
static const curve_kind kind_work = {"log2_work", "factor", "a factor", 1e-3, 4.0};
static const curve_kind kind_aspect = {"log2_aspect", "factor", "a factor", 1e-3, 4.0};
/* rope's shape factors, by its query width (perf_op_shape): a key of their
 * own, so that a file fitted when rope's index was log2(q + kv) is refused
 * rather than read on the wrong axis */
static const curve_kind kind_shape_q = {"log2_q_shape", "factor", "a factor", 1e-3, 4.0};

/* The curves an operator's object may hold, in the order files list them:
 * key, kind, place in perf_op_calib and the operators allowed to have it
 * (0: all, 'g': weight GEMMs, 'a': the attentions). */
typedef struct op_curve {
    const char *key;
    const curve_kind *kind;
    size_t off;
    char only;
} op_curve;
static const op_curve op_curves[] = {
    {"eff_c", &kind_eff, offsetof(perf_op_calib, eff_c), 0},
    {"eff_m", &kind_eff, offsetof(perf_op_calib, eff_m), 0},
    {"shape_c", &kind_shape, offsetof(perf_op_calib, shape_c), 0},
    {"shape_m", &kind_shape, offsetof(perf_op_calib, shape_m), 0},
    {"unaligned", &kind_unal, offsetof(perf_op_calib, unal), 'g'},
    {"aspect_c", &kind_aspect, offsetof(perf_op_calib, aspect_c), 'g'},
    {"aspect_m", &kind_aspect, offsetof(perf_op_calib, aspect_m), 'g'},
    {"work_c", &kind_work, offsetof(perf_op_calib, work_c), 'a'},
    {"work_m", &kind_work, offsetof(perf_op_calib, work_m), 'a'}};
#define N_OP_CURVES ((int)(sizeof op_curves / sizeof op_curves[0]))

/* Whether operator op may hold curve i of op_curves. */
static int op_curve_allowed(int i, enum perf_op op) {
    return op_curves[i].only == 'g'   ? PERF_OP_IS_GEMM(op)
           : op_curves[i].only == 'a' ? PERF_OP_HAS_WORK(op)
                                      : 1;
}

/* The kind of curve i for operator op (rope's shape curves have their own x key). */
static const curve_kind *op_curve_kind(int i, enum perf_op op) {
    return op == PERF_OP_ROPE && op_curves[i].kind == &kind_shape ? &kind_shape_q
                                                                  : op_curves[i].kind;
}

static perf_curve *op_curve_of(perf_op_calib *oc, int i) {
    return (perf_curve *)(void *)((char *)oc + op_curves[i].off);
}

static const perf_curve *op_curve_at(const perf_op_calib *oc, int i) {
    return (const perf_curve *)(const void *)((const char *)oc + op_curves[i].off);
}

/* Fills ctx from a model, a GPU, a calibration (NULL: the datasheet
 * roofline of g) and a tensor-parallel degree. Refuses tp < 1, a tp that
 * does not divide the attention heads, fp8 weights or KV cache on a GPU
 * without fp8 tensor cores, and a calibration fitted for another GPU:
 * SIM_EINVAL with *err filled. ctx->op holds the curves every prediction
 * uses: the calibration's, with the GEMM operators' fp8 set where the
 * weights are fp8 and the calibration has one (perf_calib_op). */
int perf_ctx_init(perf_ctx *ctx, const sim_model *m, const sim_gpu *g, const perf_calib *c, int tp,
                  sim_err *err) {
    int i, j;
    sim_err_clear(err);
    if (tp < 1) {
        sim_err_set(err, "", 0, 0, "--tp: expected an integer >= 1, got '%d'", tp);
        return SIM_EINVAL;
    }
    if (m->n_layers < 1 || m->hidden < 1 || m->n_heads < 1 || m->n_kv_heads < 1 ||
        m->head_dim < 1 || m->intermediate < 1 || m->vocab < 1) {
        sim_err_set(err, "", 0, 0, "model %s: expected positive layers, sizes and head counts",
                    m->name);
        return SIM_EINVAL;
    }
    if (m->n_heads % tp != 0) {
        sim_err_set(err, "", 0, 0,
                    "--tp: expected a divisor of the %d attention heads of %s, got '%d'",
                    m->n_heads, m->name, tp);
        return SIM_EINFEASIBLE;
    }
    if (!(g->hbm_bw > 0) || !(g->flops_bf16 > 0)) {
        sim_err_set(err, "", 0, 0, "GPU %s: expected positive hbm_bw and flops_bf16", g->name);
        return SIM_EINVAL;
    }
    if (m->w_dtype == SIM_DT_FP8 && !(g->flops_fp8 > 0)) {
        sim_err_set(err, "", 0, 0,
                    "fp8 weights (--dtype fp8, or the dtype of %s's config): the GPU %s has no "
                    "fp8 tensor cores",
                    m->name, g->name);
        return SIM_EINVAL;
    }
    if (m->kv_dtype == SIM_DT_FP8 && !(g->flops_fp8 > 0)) {
        sim_err_set(err, "", 0, 0,
                    "fp8 KV cache (--kv-dtype fp8, or the dtype of %s's config): the GPU %s has "
                    "no fp8 tensor cores",
                    m->name, g->name);
        return SIM_EINVAL;
    }
    if (c != NULL && c->gpu[0] != '\0' && strcmp(c->gpu, g->name) != 0) {
        sim_err_set(err, "", 0, 0, "calibration: expected one fitted for GPU %s, got '%s'", g->name,
                    c->gpu);
        return SIM_EINVAL;
    }
    memset(ctx, 0, sizeof *ctx);
    ctx->model = *m;
    ctx->gpu = *g;
    if (c != NULL)
        ctx->calib = *c;
    else
        perf_calib_default(&ctx->calib, g);
    ctx->tp = tp;
    ctx->tp_nodes = 1;
    ctx->pp = 1;
    if (g->gpus_per_node > 0 && tp > g->gpus_per_node) {
        coll_topo topo;
        coll_calib cc;
        int rc;
        if (tp % g->gpus_per_node != 0) {
            sim_err_set(err, "", 0, 0,
                        "--tp: %d GPUs span nodes of %d %s: expected whole nodes (a multiple of "
                        "%d), got %d",
                        tp, g->gpus_per_node, g->name, g->gpus_per_node, tp);
            return SIM_EINFEASIBLE;
        }
        if (!(g->ib_bw > 0)) {
            sim_err_set(err, "", 0, 0,
                        "--tp: %d GPUs span nodes of %d %s: expected an inter-node link (ib_bw > "
                        "0), got ib_bw %g",
                        tp, g->gpus_per_node, g->name, g->ib_bw);
            return SIM_EINFEASIBLE;
        }
        ctx->tp_nodes = tp / g->gpus_per_node;
        coll_topo_from_gpu(g, &topo);
        coll_calib_default(&topo, &cc);
        if ((rc = coll_plan_init(&ctx->ar, COLL_ALLREDUCE, tp, ctx->tp_nodes, &topo, &cc, err)) !=
            SIM_OK)
            return rc;
    }
    for (i = 0; i < PERF_N_OPS; i++) {
        perf_op_at_shape(perf_calib_op(&ctx->calib, (enum perf_op)i, m->w_dtype),
                         perf_op_shape(ctx, (enum perf_op)i), perf_op_aspect(ctx, (enum perf_op)i),
                         &ctx->op[i]);
        /* only where each curve has its index (the decode stepper relies
         * on no unaligned factor for attention) */
        for (j = 0; j < N_OP_CURVES; j++)
            if (!op_curve_allowed(j, (enum perf_op)i))
                memset(op_curve_of(&ctx->op[i], j), 0, sizeof(perf_curve));
    }
    ctx->step_base_s = perf_calib_step_base_s(&ctx->calib, tp);
    ctx->peak = m->w_dtype == SIM_DT_FP8 ? g->flops_fp8 : g->flops_bf16;
    ctx->peak_attn = m->kv_dtype == SIM_DT_FP8 ? g->flops_fp8 : g->flops_bf16;
    return SIM_OK;
}

/* ---- calibration files ---- */

/* The datasheet roofline: every efficiency 1 (empty curves), every
 * operator's overhead the GPU preset's launch overhead, no step overhead. */
void perf_calib_default(perf_calib *c, const sim_gpu *gpu) {
    int i;
    memset(c, 0, sizeof *c);
    snprintf(c->source, sizeof c->source, "datasheet roofline");
    for (i = 0; i < PERF_N_OPS; i++)
        c->op[i].overhead_s = gpu != NULL ? gpu->launch_overhead_s : 0.0;
}

/* The curves and overhead that op runs with for weights of dtype w: the
 * fp8 set of a GEMM operator when w is fp8 and the calibration has one,
 * else the operator's only set. A calibration without fp8 curves (an
 * older file, the datasheet roofline) thus runs fp8 GEMMs on the bf16
 * curves at the fp8 peak. Borrowed from c. */
const perf_op_calib *perf_calib_op(const perf_calib *c, enum perf_op op, enum sim_dtype w) {
    SIM_ASSERT(op >= 0 && op < PERF_N_OPS);
    if (w == SIM_DT_FP8 && c->has_fp8[op] && PERF_OP_IS_GEMM(op))
        return &c->op_fp8[op];
    return &c->op[op];
}

/* Top-level and per-operator keys a calibration file may hold. */
static const char *const top_keys[] = {
    "gpu", "source", "fitted_at_version", "step_base_s", "step_per_seq_s", "step_tp_s", "ops"};

static int key_known(const char *key, const char *const *keys, size_t n) {
    size_t i;
    for (i = 0; i < n; i++)
        if (strcmp(key, keys[i]) == 0)
            return 1;
    return 0;
}

/* Renders a JSON value for error messages (json_util.c: compact JSON). */
static void json_text(const json_t *v, char *buf, size_t n) {
    sim_json_render(v, buf, n);
}

/* Reads a time in [0, 1] s at field into *out: an overhead of a second or
 * more per call or step is a value written in another unit. */
static int get_seconds(const json_t *v, const char *path, const char *field, double *out,
                       sim_err *err) {
    char got[SIM_JSON_RENDER_MAX + 8];
    if (!json_is_number(v) || !(json_number_value(v) >= 0) || !(json_number_value(v) <= 1)) {
        json_text(v, got, sizeof got);
        sim_err_set(err, path, 0, 0, "%s: expected a number of seconds in [0, 1], got '%s'", field,
                    got);
        return SIM_EPARSE;
    }
    *out = json_number_value(v);
    return SIM_OK;
}

/* Whether k is a key of an operator's object: overhead_s, a curve, or fp8
 * where an fp8 set may follow. */
static int op_key_known(const char *k, int fp8) {
    int i;
    if (strcmp(k, "overhead_s") == 0 || (fp8 && strcmp(k, "fp8") == 0))
        return 1;
    for (i = 0; i < N_OP_CURVES; i++)
        if (strcmp(k, op_curves[i].key) == 0)
            return 1;
    return 0;
}

/* The keys op_key_known takes, as "overhead_s, eff_c, ... or fp8". */
static void op_key_list(char *buf, size_t n, int fp8) {
    int i, used = snprintf(buf, n, "overhead_s");
    for (i = 0; i < N_OP_CURVES && used >= 0 && (size_t)used < n; i++)
        used += snprintf(buf + used, n - (size_t)used, "%s%s",
                         i + 1 < N_OP_CURVES || fp8 ? ", " : " or ", op_curves[i].key);
    if (fp8 && used >= 0 && (size_t)used < n)
        snprintf(buf + used, n - (size_t)used, " or fp8");
}

static int load_curve(const json_t *v, const char *path, const char *field, const curve_kind *kd,
                      perf_curve *c, sim_err *err) {
    const json_t *xs, *ys;
    const char *k;
    const json_t *val;
    char got[SIM_JSON_RENDER_MAX + 8];
    size_t i, n;
    if (!json_is_object(v)) {
        json_text(v, got, sizeof got);
        sim_err_set(err, path, 0, 0,
                    "%s: expected an object {\"%s\": [...], \"%s\": [...]}, got '%s'", field,
                    kd->xkey, kd->ykey, got);
        return SIM_EPARSE;
    }
    json_object_foreach((json_t *)v, k, val) {
        if (strcmp(k, kd->xkey) != 0 && strcmp(k, kd->ykey) != 0) {
            sim_err_set(err, path, 0, 0, "%s: unknown key '%s', expected %s or %s", field, k,
                        kd->xkey, kd->ykey);
            return SIM_EPARSE;
        }
    }
    xs = json_object_get(v, kd->xkey);
    ys = json_object_get(v, kd->ykey);
    if (!json_is_array(xs) || !json_is_array(ys)) {
        sim_err_set(err, path, 0, 0, "%s: expected arrays %s and %s", field, kd->xkey, kd->ykey);
        return SIM_EPARSE;
    }
    n = json_array_size(xs);
    if (json_array_size(ys) != n) {
        sim_err_set(err, path, 0, 0, "%s.%s: expected as many values as %s knots (%zu), got %zu",
                    field, kd->ykey, kd->xkey, n, json_array_size(ys));
        return SIM_EPARSE;
    }
    if (n > PERF_MAX_KNOTS) {
        sim_err_set(err, path, 0, 0, "%s.%s: expected at most %d knots, got %zu", field, kd->xkey,
                    PERF_MAX_KNOTS, n);
        return SIM_EPARSE;
    }
    memset(c, 0, sizeof *c);
    for (i = 0; i < n; i++) {
        const json_t *x = json_array_get(xs, i), *y = json_array_get(ys, i);
        if (!json_is_number(x) || !isfinite(json_number_value(x)) ||
            (i > 0 && !(json_number_value(x) > c->x[i - 1]))) {
            json_text(x, got, sizeof got);
            sim_err_set(err, path, 0, 0,
                        "%s.%s[%zu]: expected a finite number above the previous knot, got '%s'",
                        field, kd->xkey, i, got);
            return SIM_EPARSE;
        }
        if (!json_is_number(y) || !(json_number_value(y) >= kd->ymin) ||
            !(json_number_value(y) <= kd->ymax)) {
            json_text(y, got, sizeof got);
            sim_err_set(err, path, 0, 0, "%s.%s[%zu]: expected %s in [%g, %g], got '%s'", field,
                        kd->ykey, i, kd->what, kd->ymin, kd->ymax, got);
            return SIM_EPARSE;
        }
        c->x[i] = json_number_value(x);
        c->y[i] = json_number_value(y);
    }
    c->n = (int)n;
    return SIM_OK;
}

/* Loads operator op's object at field ("ops.NAME", or "ops.NAME.fp8" for
 * a GEMM's fp8 set): overhead_s and the optional curves of op_curves that
 * op may hold; fp8 (an object of the same keys, without fp8) only where
 * fp8 is not NULL, and *has_fp8 set when it is there. */
static int load_op(const json_t *v, const char *path, const char *name, enum perf_op op,
                   perf_op_calib *oc, perf_op_calib *fp8, int *has_fp8, sim_err *err) {
    char field[96], got[SIM_JSON_RENDER_MAX + 8];
    const char *k;
    const json_t *val;
    int rc;
    if (!json_is_object(v)) {
        json_text(v, got, sizeof got);
        sim_err_set(err, path, 0, 0, "%s: expected an object, got '%s'", name, got);
        return SIM_EPARSE;
    }
    json_object_foreach((json_t *)v, k, val) {
        if (!op_key_known(k, fp8 != NULL)) {
            char keys[200];
            op_key_list(keys, sizeof keys, fp8 != NULL);
            sim_err_set(err, path, 0, 0, "%s: unknown key '%s', expected %s", name, k, keys);
            return SIM_EPARSE;
        }
    }
    memset(oc, 0, sizeof *oc);
    val = json_object_get(v, "overhead_s");
    snprintf(field, sizeof field, "%s.overhead_s", name);
    if (val == NULL) {
        sim_err_set(err, path, 0, 0, "%s: missing", field);
        return SIM_EPARSE;
    }
    if ((rc = get_seconds(val, path, field, &oc->overhead_s, err)) != SIM_OK)
        return rc;
    {
        int ci;
        for (ci = 0; ci < N_OP_CURVES; ci++) {
            const op_curve *oc_ = &op_curves[ci];
            if ((val = json_object_get(v, oc_->key)) == NULL)
                continue;
            if (!op_curve_allowed(ci, op)) {
                sim_err_set(err, path, 0, 0, "%s: unknown key '%s' (%s only)", name, oc_->key,
                            oc_->only == 'g' ? "weight GEMM operators"
                                             : "attn_prefill and attn_decode");
                return SIM_EPARSE;
            }
            snprintf(field, sizeof field, "%s.%s", name, oc_->key);
            if ((rc = load_curve(val, path, field, op_curve_kind(ci, op), op_curve_of(oc, ci),
                                 err)) != SIM_OK)
                return rc;
        }
    }
    if (fp8 != NULL && (val = json_object_get(v, "fp8")) != NULL) {
        snprintf(field, sizeof field, "%s.fp8", name);
        if ((rc = load_op(val, path, field, op, fp8, NULL, NULL, err)) != SIM_OK)
            return rc;
        *has_fp8 = 1;
    }
    return SIM_OK;
}

/* Copies a JSON string at field into buf (size n). */
static int get_string(const json_t *v, const char *path, const char *field, char *buf, size_t n,
                      sim_err *err) {
    char got[SIM_JSON_RENDER_MAX + 8];
    if (!json_is_string(v) || json_string_length(v) >= n) {
        json_text(v, got, sizeof got);
        sim_err_set(err, path, 0, 0, "%s: expected a string of at most %zu bytes, got '%s'", field,
                    n - 1, got);
        return SIM_EPARSE;
    }
    snprintf(buf, n, "%s", json_string_value(v));
    return SIM_OK;
}

/* Loads and validates a calibration file (docs/calibration.md): a JSON
 * object with gpu, source, fitted_at_version (ignored), step_base_s,
 * step_per_seq_s and ops, an object holding every operator by name with
 * overhead_s and optional curves (knots increasing, at most PERF_MAX_KNOTS,
 * efficiencies in [1e-4, 1.5] and factors in [1e-3, 4], the ranges
 * calibrate fits in; times in [0, 1] s); a GEMM operator (qkv_proj,
 * o_proj, mlp_up, mlp_down, lm_head) may also hold "fp8", an object of a
 * GEMM operator's keys for fp8 weights (op_fp8, has_fp8). Unknown keys and operator
 * names are errors naming them. SIM_OK, or as sim_json_load_path (a
 * folder SIM_EINVAL, a missing or unreadable file SIM_ENOENT, bad JSON
 * SIM_EPARSE), or SIM_EPARSE; *out is only written on success. */
int perf_calib_load(const char *path, perf_calib *out, sim_err *err) {
    json_t *root;
    const json_t *ops, *val;
    const char *k;
    char field[96];
    perf_calib c;
    int rc = SIM_EPARSE, i;

    sim_err_clear(err);
    if ((root = sim_json_load_path(path, "calibration file", &rc, err)) == NULL)
        return rc;
    rc = SIM_EPARSE;
    memset(&c, 0, sizeof c);
    if (!json_is_object(root)) {
        sim_err_set(err, path, 0, 0, "expected a JSON object at the top");
        goto done;
    }
    json_object_foreach(root, k, val) {
        if (!key_known(k, top_keys, sizeof top_keys / sizeof top_keys[0])) {
            sim_err_set(err, path, 0, 0,
                        "unknown key '%s', expected gpu, source, fitted_at_version, step_base_s, "
                        "step_per_seq_s, step_tp_s or ops",
                        k);
            goto done;
        }
    }
    if ((val = json_object_get(root, "gpu")) != NULL &&
        get_string(val, path, "gpu", c.gpu, sizeof c.gpu, err) != SIM_OK)
        goto done;
    if ((val = json_object_get(root, "source")) != NULL &&
        get_string(val, path, "source", c.source, sizeof c.source, err) != SIM_OK)
        goto done;
    if ((val = json_object_get(root, "fitted_at_version")) != NULL && !json_is_string(val)) {
        sim_err_set(err, path, 0, 0, "fitted_at_version: expected a string");
        goto done;
    }
    if ((val = json_object_get(root, "step_base_s")) != NULL &&
        get_seconds(val, path, "step_base_s", &c.step_base_s, err) != SIM_OK)
        goto done;
    if ((val = json_object_get(root, "step_per_seq_s")) != NULL &&
        get_seconds(val, path, "step_per_seq_s", &c.step_per_seq_s, err) != SIM_OK)
        goto done;
    if ((val = json_object_get(root, "step_tp_s")) != NULL &&
        get_seconds(val, path, "step_tp_s", &c.step_tp_s, err) != SIM_OK)
        goto done;
    ops = json_object_get(root, "ops");
    if (!json_is_object(ops)) {
        sim_err_set(err, path, 0, 0, "ops: expected an object of operators");
        goto done;
    }
    json_object_foreach((json_t *)ops, k, val) {
        int op = perf_op_from_name(k);
        if (op < 0) {
            sim_err_set(err, path, 0, 0,
                        "ops: unknown operator '%s', expected one of qkv_proj, o_proj, mlp_up, "
                        "mlp_act, mlp_down, norm, rope, attn_prefill, attn_decode, kv_save, "
                        "embed, lm_head, sample, allreduce",
                        k);
            goto done;
        }
        snprintf(field, sizeof field, "ops.%s", k);
        if (load_op(val, path, field, (enum perf_op)op, &c.op[op],
                    PERF_OP_IS_GEMM(op) ? &c.op_fp8[op] : NULL, &c.has_fp8[op], err) != SIM_OK)
            goto done;
    }
    for (i = 0; i < PERF_N_OPS; i++) {
        if (json_object_get(ops, op_names[i]) == NULL) {
            sim_err_set(err, path, 0, 0, "ops: missing operator '%s'", op_names[i]);
            goto done;
        }
    }
    *out = c;
    rc = SIM_OK;
done:
    json_decref(root);
    return rc;
}

/* Loads DATA/calib/GPU.json into *out and sets *found = 1; when the file
 * does not exist, fills the datasheet default and sets *found = 0 (SIM_OK
 * both ways). A file fitted for another GPU is SIM_EPARSE. */
int perf_calib_load_for_gpu(const sim_gpu *gpu, const char *datadir, perf_calib *out, int *found,
                            sim_err *err) {
    char path[4096];
    FILE *f;
    int rc;
    sim_err_clear(err);
    *found = 0;
    snprintf(path, sizeof path, "%s/calib/%s.json", datadir, gpu->name);
    f = fopen(path, "r");
    if (f == NULL) {
        if (errno != ENOENT) {
            sim_err_set(err, path, 0, 0, "cannot open: %s", strerror(errno));
            return SIM_EIO;
        }
        perf_calib_default(out, gpu);
        return SIM_OK;
    }
    fclose(f);
    if ((rc = perf_calib_load(path, out, err)) != SIM_OK)
        return rc;
    if (strcmp(out->gpu, gpu->name) != 0) {
        sim_err_set(err, path, 0, 0, "gpu: expected '%s' (the file's name), got '%s'", gpu->name,
                    out->gpu);
        perf_calib_default(out, gpu);
        return SIM_EPARSE;
    }
    *found = 1;
    return SIM_OK;
}

/* Formats x with the fewest significant digits (up to 17) that read back
 * to the same double. */
static void fmt_num(double x, char *buf, size_t n) {
    int prec;
    for (prec = 6; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

/* Writes one curve of kind kd as "name": {...}, indented by ind, followed
 * by tail. */
static void put_curve(FILE *f, const char *ind, const char *name, const curve_kind *kd,
                      const perf_curve *c, const char *tail) {
    char num[40];
    int i;
    fprintf(f, "%s\"%s\": {\"%s\": [", ind, name, kd->xkey);
    for (i = 0; i < c->n; i++) {
        fmt_num(c->x[i], num, sizeof num);
        fprintf(f, "%s%s", i ? ", " : "", num);
    }
    fprintf(f, "],\n%s%*s\"%s\": [", ind, (int)(strlen(name) + 4), "", kd->ykey);
    for (i = 0; i < c->n; i++) {
        fmt_num(c->y[i], num, sizeof num);
        fprintf(f, "%s%s", i ? ", " : "", num);
    }
    fprintf(f, "]}%s\n", tail);
}

/* Writes one operator's set (overhead, curves; the shape curves only
 * where fitted) at indent ind; "," after the last curve when more follows. */
static void put_op(FILE *f, const char *ind, enum perf_op op, const perf_op_calib *oc, int more) {
    char num[40];
    int i, last = 1;
    for (i = 2; i < N_OP_CURVES; i++) /* eff_c and eff_m always, the others where fitted */
        if (op_curve_at(oc, i)->n > 0)
            last = i;
    fmt_num(oc->overhead_s, num, sizeof num);
    fprintf(f, "%s\"overhead_s\": %s,\n", ind, num);
    for (i = 0; i <= last; i++)
        if (i < 2 || op_curve_at(oc, i)->n > 0)
            put_curve(f, ind, op_curves[i].key, op_curve_kind(i, op), op_curve_at(oc, i),
                      i < last || more ? "," : "");
}

/* Writes s as a JSON string literal (quotes, backslashes and control
 * characters escaped). */
static void put_string(FILE *f, const char *s) {
    const unsigned char *p;
    fputc('"', f);
    for (p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

/* The first number of c that is not finite, named into buf ("" when all
 * are): JSON has no spelling for one, so no file may hold it. */
static void calib_nonfinite(const perf_calib *c, char *buf, size_t n) {
    int i, j, k, s;
    buf[0] = '\0';
    if (!isfinite(c->step_base_s) || !isfinite(c->step_per_seq_s) || !isfinite(c->step_tp_s)) {
        snprintf(buf, n, "the step overhead");
        return;
    }
    for (i = 0; i < PERF_N_OPS; i++)
        for (s = 0; s < 2; s++) {
            const perf_op_calib *oc = s ? &c->op_fp8[i] : &c->op[i];
            if (s && !c->has_fp8[i])
                continue;
            if (!isfinite(oc->overhead_s)) {
                snprintf(buf, n, "ops.%s%s.overhead_s", op_names[i], s ? ".fp8" : "");
                return;
            }
            for (j = 0; j < N_OP_CURVES; j++) {
                const perf_curve *cv = op_curve_at(oc, j);
                for (k = 0; k < cv->n; k++)
                    if (!isfinite(cv->x[k]) || !isfinite(cv->y[k])) {
                        snprintf(buf, n, "ops.%s%s.%s", op_names[i], s ? ".fp8" : "",
                                 op_curves[j].key);
                        return;
                    }
            }
        }
}

/* Writes c as a calibration file that perf_calib_load reads back into the
 * same struct (numbers are printed with enough digits to round-trip); a
 * GEMM operator's fp8 set is written, as its "fp8" object, only where
 * has_fp8. SIM_OK; SIM_EINVAL (nothing written) when a number is not
 * finite; SIM_EIO. */
int perf_calib_save(const perf_calib *c, const char *path, sim_err *err) {
    char num[40], bad[96];
    sim_replace out;
    FILE *f;
    int i;
    sim_err_clear(err);
    calib_nonfinite(c, bad, sizeof bad);
    if (bad[0]) {
        sim_err_set(err, path, 0, 0,
                    "%s: expected finite numbers, got one that is not; not written", bad);
        return SIM_EINVAL;
    }
    if (sim_replace_open(&out, path, err) != SIM_OK)
        return SIM_EIO;
    f = out.f;
    fprintf(f, "{\n  \"gpu\": ");
    put_string(f, c->gpu);
    fprintf(f, ",\n  \"source\": ");
    put_string(f, c->source);
    fprintf(f, ",\n  \"fitted_at_version\": ");
    put_string(f, PACKAGE_VERSION " (" KV_GIT_VERSION ")");
    fmt_num(c->step_base_s, num, sizeof num);
    fprintf(f, ",\n  \"step_base_s\": %s,\n", num);
    fmt_num(c->step_per_seq_s, num, sizeof num);
    fprintf(f, "  \"step_per_seq_s\": %s,\n", num);
    if (c->step_tp_s > 0) {
        fmt_num(c->step_tp_s, num, sizeof num);
        fprintf(f, "  \"step_tp_s\": %s,\n", num);
    }
    fprintf(f, "  \"ops\": {\n");
    for (i = 0; i < PERF_N_OPS; i++) {
        int w8 = c->has_fp8[i] && PERF_OP_IS_GEMM(i);
        fprintf(f, "    \"%s\": {\n", op_names[i]);
        put_op(f, "      ", (enum perf_op)i, &c->op[i], w8);
        if (w8) {
            fprintf(f, "      \"fp8\": {\n");
            put_op(f, "        ", (enum perf_op)i, &c->op_fp8[i], 0);
            fprintf(f, "      }\n");
        }
        fprintf(f, "    }%s\n", i + 1 < PERF_N_OPS ? "," : "");
    }
    fprintf(f, "  }\n}\n");
    return sim_replace_close(&out, path, 1, err);
}

int perf_ctx_set_collectives(perf_ctx *ctx, const coll_calib *c, sim_err *err) {
    coll_topo topo;
    if (ctx->tp_nodes <= 1)
        return SIM_OK;
    coll_topo_from_gpu(&ctx->gpu, &topo);
    return coll_plan_init(&ctx->ar, COLL_ALLREDUCE, ctx->tp, ctx->tp_nodes, &topo, c, err);
}

/* ---- decode stretches ---- */

/* The operands are curve_find's (the header says where). */
void perf_seg_find(const perf_curve *c, perf_seg *s, double x) {
    int l;
    s->lo = -INFINITY;
    s->hi = INFINITY;
    s->x0 = 0.0;
    s->y0 = 1.0;
    s->dx = 1.0;
    s->dy = 0.0;
    if (c->n <= 0)
        return;
    if (!(x > c->x[0])) { /* x <= x[0]: x < the next double up */
        s->hi = nextafter(c->x[0], INFINITY);
        s->x0 = c->x[0];
        s->y0 = c->y[0];
        return;
    }
    if (x >= c->x[c->n - 1]) {
        s->lo = s->x0 = c->x[c->n - 1];
        s->y0 = c->y[c->n - 1];
        return;
    }
    (void)curve_find(c, x, &l);
    s->lo = s->x0 = c->x[l];
    s->hi = c->x[l + 1];
    s->y0 = c->y[l];
    s->dx = c->x[l + 1] - c->x[l];
    s->dy = c->y[l + 1] - c->y[l];
}

/* The least value of a curve: curves are linear between knots and flat
 * beyond, so they never fall below their least knot (1 when empty). */
static double curve_min(const perf_curve *c) {
    double lo = 1.0;
    int i;
    if (c->n > 0)
        lo = c->y[0];
    for (i = 1; i < c->n; i++)
        if (c->y[i] < lo)
            lo = c->y[i];
    return lo;
}

/* An upper bound on 1 / (peak x eff x work factor) over the whole curves,
 * with a margin far above rounding; infinity when eff can reach 0. */
static double tc_bound(const perf_curve *c, const perf_curve *work, double peak) {
    double lo = curve_min(c) * curve_min(work);
    if (!(lo > 0) || !(peak > 0))
        return INFINITY;
    return (1.0 + 1e-6) / (peak * lo);
}

/* The figures of a stretch that depend on its sequence count alone come
 * from the cache's token table (a pure-decode step has a token a
 * sequence): a replica starts a stretch at each arrival and each finish,
 * mostly at counts it has had before. */
void perf_dstep_next(perf_dstep *d, int n_decode, int64_t decode_ctx) {
    const perf_ctx *ctx = d->ctx;
    perf_cache *c = d->cache;
    struct perf_cache_tok *e;
    if (c->ctx == ctx && tok_reserve(c, n_decode) && !isnan(c->tok[n_decode].d_t)) {
        e = &c->tok[n_decode];
        d->t_rest = e->d_t;
        d->f_rest = e->d_f;
        d->b_rest = e->d_b;
        d->pp = e->d_pp;
        d->wconst = e->d_wconst;
    } else {
        perf_batch b;
        shape s;
        count_sums cs;
        memset(&b, 0, sizeof b);
        b.n_decode = n_decode;
        b.n_sample = n_decode;
        b.decode_ctx = decode_ctx;
        shape_of(ctx, &s);
        count_sums_of(ctx, c, &s, &b, &cs); /* may reset or grow the tables */
        d->t_rest = cs.t;
        d->f_rest = cs.f;
        d->b_rest = cs.b;
        d->pp = pp_send_s(ctx, (double)n_decode);
        d->wconst = log2((double)n_decode * s.kvh); /* work_index's second term */
        if (c->ctx == ctx && tok_reserve(c, n_decode)) {
            e = &c->tok[n_decode];
            e->d_f = d->f_rest;
            e->d_b = d->b_rest;
            e->d_pp = d->pp;
            e->d_wconst = d->wconst;
            e->d_t = d->t_rest; /* last: a filled entry is whole */
        }
    }
    d->tail = ctx->step_base_s + ctx->calib.step_per_seq_s * (double)n_decode;
    d->n = (double)n_decode;
    d->qbytes = d->n * d->q * 2.0 * 2.0;
}

void perf_dstep_init(perf_dstep *d, const perf_ctx *ctx, perf_cache *c, int n_decode,
                     int64_t decode_ctx) {
    const perf_op_calib *oc = &ctx->op[PERF_OP_ATTN_DECODE];
    shape s;
    d->ctx = ctx;
    d->cache = c;
    d->eff_c = &oc->eff_c;
    d->eff_m = &oc->eff_m;
    d->work_c = &oc->work_c;
    d->work_m = &oc->work_m;
    d->peak = op_peak(ctx, PERF_OP_ATTN_DECODE);
    d->bw = op_bw(ctx, PERF_OP_ATTN_DECODE);
    d->calls = op_calls(ctx, PERF_OP_ATTN_DECODE);
    d->overhead = oc->overhead_s;
    /* empty ranges: each curve's first call finds its segment */
    d->s_c.lo = d->s_m.lo = d->s_wc.lo = d->s_wm.lo = INFINITY;
    d->tc_bound = tc_bound(&oc->eff_c, &oc->work_c, d->peak);
    shape_of(ctx, &s);
    d->q = s.q;
    d->q4 = 4.0 * s.q;
    d->kv = s.kv;
    d->kvb = s.kvb;
    perf_dstep_next(d, n_decode, decode_ctx);
}

/* perf_work's sums for the same batch: the other operators' FLOPs and bytes,
 * then the decode attention's, as work_add adds them. */
void perf_dstep_work(const perf_dstep *d, int64_t decode_ctx, double *flops, double *bytes) {
    double ctx = (double)decode_ctx;
    double rows = ctx / d->n;
    double fl = d->q4 * ctx;
    double by = ctx * 2.0 * d->kv * d->kvb + d->qbytes;
    *flops = d->f_rest;
    *bytes = d->b_rest;
    if (rows > 0 && (fl > 0 || by > 0)) {
        *flops += d->calls * fl;
        *bytes += d->calls * by;
    }
}

int perf_ctx_set_pp(perf_ctx *ctx, int pp, sim_err *err) {
    const sim_gpu *g = &ctx->gpu;
    long long gpus = (long long)ctx->tp * pp; /* 2^30 x 2 is not an int */
    long long gpn = g->gpus_per_node > 0 ? g->gpus_per_node : gpus;
    if (pp < 1 || pp > ctx->model.n_layers) {
        sim_err_set(err, "", 0, 0, "--pp: expected 1..%d (the layers of %s), got '%d'",
                    ctx->model.n_layers, ctx->model.name, pp);
        return SIM_EINVAL;
    }
    ctx->pp = pp;
    if (pp == 1)
        return SIM_OK;
    if (gpus <= gpn && g->nvlink_bw > 0) { /* stages in one node */
        ctx->pp_bw = g->nvlink_bw;
        ctx->pp_latency_s = g->nvlink_latency_s;
    } else if (gpus <= gpn) {
        ctx->pp_bw = g->pcie_bw;
        ctx->pp_latency_s = g->pcie_latency_s;
    } else if (g->ib_bw > 0) { /* stages on several nodes */
        ctx->pp_bw = g->ib_bw;
        ctx->pp_latency_s = g->ib_latency_s;
    } else {
        sim_err_set(err, "", 0, 0,
                    "--pp: TP%d x PP%d = %lld GPUs span nodes of %lld %s, which have no "
                    "inter-node link (ib_bw 0)",
                    ctx->tp, pp, gpus, gpn, g->name);
        return SIM_EINFEASIBLE;
    }
    if (!(ctx->pp_bw > 0)) {
        sim_err_set(err, "", 0, 0, "--pp: GPU %s has no link between stages", g->name);
        return SIM_EINFEASIBLE;
    }
    return SIM_OK;
}
