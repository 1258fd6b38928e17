/* perf.h: the step-time predictor (perf model v1).
 *
 * A batch is described by linear aggregates over its sequences (token
 * counts, summed context lengths, summed causal attention pairs), so the
 * prediction uses every sequence's own context length yet costs O(1) per
 * step whatever the batch size. Per operator:
 *
 *     t_op = max(flops / (peak x eff_c(rows)), bytes / (hbm_bw x eff_m(rows))) + overhead
 *
 * summed over layers (per-layer operators) or taken once (embed, lm_head,
 * sample), plus a per-step engine overhead (scheduling, input preparation,
 * sampling launch): step_base_s + step_per_seq_s x sequences, plus
 * step_tp_s when tp > 1. The efficiencies are piecewise-linear curves in
 * log2(rows) (rows = the GEMM's M, the tokens of an elementwise operator,
 * or for attention the mean keys per query: prefill_pairs /
 * prefill_tokens, decode_ctx / n_decode; for the all-reduce the message in
 * KiB), times optional factors: one by the operator's shape index
 * (perf_op_shape, applied once per perf_ctx), for a weight GEMM one by
 * its aspect log2(N / K) (applied once too) and, when its M is not a
 * multiple of PERF_ALIGN_ROWS, one by log2(M), and for the
 * attentions one by the step's work index (perf_op_work). All are held in a
 * calibration file (data/calib/GPU.json), never in code. The weight GEMMs may carry a
 * second set, fitted on fp8 GEMMs, for fp8 weights (perf_calib_op);
 * without one, fp8 GEMMs run on the bf16 set at the fp8 peak. With no
 * calibration the datasheet roofline (eff = 1, the GPU preset's launch
 * overhead, no step overhead) is used. At TP > 1 the prediction is one GPU's share plus the
 * all-reduces. */
#ifndef SIM_PERF_H
#define SIM_PERF_H

#include <math.h>
#include <stdint.h>

#include "err.h"
#include "collective.h"
#include "hw.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The operators, in the order reports list them. Names are a contract
 * (JSON keys of `kvfleet predict`, calibration and validation files). */
#define PERF_OP_MAP(XX)                                                                            \
    XX(QKV_PROJ, "qkv_proj")                                                                       \
    XX(O_PROJ, "o_proj")                                                                           \
    XX(MLP_UP, "mlp_up")                                                                           \
    XX(MLP_ACT, "mlp_act")                                                                         \
    XX(MLP_DOWN, "mlp_down")                                                                       \
    XX(NORM, "norm")                                                                               \
    XX(ROPE, "rope")                                                                               \
    XX(ATTN_PREFILL, "attn_prefill")                                                               \
    XX(ATTN_DECODE, "attn_decode")                                                                 \
    XX(KV_SAVE, "kv_save")                                                                         \
    XX(EMBED, "embed")                                                                             \
    XX(LM_HEAD, "lm_head")                                                                         \
    XX(SAMPLE, "sample")                                                                           \
    XX(ALLREDUCE, "allreduce")

enum perf_op {
#define PERF_XX_ENUM(id, name) PERF_OP_##id,
    PERF_OP_MAP(PERF_XX_ENUM)
#undef PERF_XX_ENUM
        PERF_N_OPS
};

/* Operator name ("qkv_proj", ...). */
const char *perf_op_name(enum perf_op op);
/* Operator by name; -1 when unknown. */
int perf_op_from_name(const char *name);

/* What binds a step's (or an operator's) time. */
enum perf_bound { PERF_BOUND_COMPUTE = 0, PERF_BOUND_HBM, PERF_BOUND_LINK, PERF_BOUND_OVERHEAD };
/* "compute", "hbm", "link", "overhead". */
const char *perf_bound_name(enum perf_bound b);

/* A batch as linear aggregates. Prefill chunk i has c_i new tokens after
 * p_i tokens already in the KV cache; decode sequence j has context n_j
 * (its new token included). */
typedef struct perf_batch {
    int n_prefill;             /* sequences with a prefill chunk this step */
    int n_decode;              /* sequences decoding one token this step */
    int n_sample;              /* sequences that produce a token (decode + prefills that end) */
    int64_t prefill_tokens;    /* sum c_i */
    double prefill_pairs;      /* sum (c_i p_i + c_i (c_i + 1) / 2): causal query-key pairs */
    int64_t prefill_kv_tokens; /* sum (p_i + c_i): KV rows read by prefill attention */
    int64_t decode_ctx;        /* sum n_j */
} perf_batch;

/* One efficiency curve: eff(x) at knots x = log2(rows), linear between
 * knots and constant beyond the ends. n = 0 means eff = 1. */
#define PERF_MAX_KNOTS 32
typedef struct perf_curve {
    int n;
    double x[PERF_MAX_KNOTS]; /* increasing log2(rows) */
    double y[PERF_MAX_KNOTS]; /* efficiency in [1e-4, 1.5], factor in [1e-3, 4] */
} perf_curve;

typedef struct perf_op_calib {
    perf_curve eff_c;    /* compute efficiency vs log2(rows) */
    perf_curve eff_m;    /* memory efficiency vs log2(rows) */
    perf_curve shape_c;  /* factor on eff_c vs the operator's shape index (perf_op_shape) */
    perf_curve shape_m;  /* factor on eff_m vs the shape index; n = 0: factor 1 */
    perf_curve unal;     /* factor on both efficiencies vs log2(rows) when rows is not a
                          * multiple of PERF_ALIGN_ROWS (GEMM kernels' slower paths) */
    perf_curve aspect_c; /* factor on eff_c vs log2(N / K) of a weight GEMM
                          * (perf_gemm_aspect; weight GEMMs only); n = 0: factor 1 */
    perf_curve aspect_m; /* factor on eff_m vs log2(N / K) */
    perf_curve work_c;   /* factor on eff_c vs the call's work index (perf_op_work;
                          * the attentions only); n = 0: factor 1 */
    perf_curve work_m;   /* factor on eff_m vs the work index */
    double overhead_s;   /* fixed time per call (per layer for per-layer ops), s */
} perf_op_calib;

/* Rows (a GEMM's M) that are a multiple of this run at the aligned
 * efficiency; others take the unaligned factor (perf_op_calib.unal). */
#define PERF_ALIGN_ROWS 16.0
/* Whether rows takes the unaligned factor (the caller includes math.h). */
#define PERF_ROWS_UNALIGNED(rows) (fmod((rows), PERF_ALIGN_ROWS) != 0.0)

/* The operators whose curves may have an fp8 set (the weight GEMMs). */
#define PERF_OP_IS_GEMM(op)                                                                        \
    ((op) == PERF_OP_QKV_PROJ || (op) == PERF_OP_O_PROJ || (op) == PERF_OP_MLP_UP ||               \
     (op) == PERF_OP_MLP_DOWN || (op) == PERF_OP_LM_HEAD)

/* The operators that may have work curves (perf_op_work): the attentions. */
#define PERF_OP_HAS_WORK(op) ((op) == PERF_OP_ATTN_PREFILL || (op) == PERF_OP_ATTN_DECODE)

typedef struct perf_calib {
    char gpu[64];                     /* GPU preset it was fitted for ("" = datasheet roofline) */
    char source[256];                 /* what it was fitted from */
    perf_op_calib op[PERF_N_OPS];     /* per operator */
    perf_op_calib op_fp8[PERF_N_OPS]; /* GEMM operators with fp8 weights, where has_fp8[op] */
    int has_fp8[PERF_N_OPS];          /* 1: op_fp8[op] is set; 0: op[op] serves fp8 weights too */
    double step_base_s;               /* engine overhead per step, s */
    double step_per_seq_s;            /* engine overhead per sequence in the step, s */
    double step_tp_s; /* engine overhead added per step when a replica has tp > 1, s */
} perf_calib;

/* The per-step engine overhead in effect at tp, sequences aside:
 * step_base_s, plus step_tp_s when tp > 1. */
double perf_calib_step_base_s(const perf_calib *c, int tp);

/* Datasheet roofline: eff 1, overhead = gpu->launch_overhead_s, no step overhead. */
void perf_calib_default(perf_calib *c, const sim_gpu *gpu);
/* Loads a calibration JSON file (format in docs/calibration.md). */
int perf_calib_load(const char *path, perf_calib *out, sim_err *err);
/* Loads DATA/calib/GPU.json if it exists (returns SIM_OK and sets *found),
 * else leaves the datasheet default (found = 0). */
int perf_calib_load_for_gpu(const sim_gpu *gpu, const char *datadir, perf_calib *out, int *found,
                            sim_err *err);
/* Writes a calibration as JSON, replacing path whole (sim_replace: a
 * failed write leaves any previous file as it was); SIM_OK, SIM_EINVAL
 * (nothing written) when a number is not finite, or SIM_EIO. */
int perf_calib_save(const perf_calib *c, const char *path, sim_err *err);
/* The curves and overhead of op for weights of dtype w: op_fp8[op] for fp8
 * weights where has_fp8[op], else op[op] (borrowed from c). */
const perf_op_calib *perf_calib_op(const perf_calib *c, enum perf_op op, enum sim_dtype w);
/* Evaluates a curve at x (log2 rows). */
double perf_curve_eval(const perf_curve *c, double x);
/* The curves of in at shape index s and aspect index a (NAN: none): eff_c
 * and eff_m multiplied by shape_c(s) and shape_m(s), then by aspect_c(a)
 * and aspect_m(a), into *out, whose shape and aspect curves are empty.
 * Without those curves *out is *in, bit for bit. */
void perf_op_at_shape(const perf_op_calib *in, double s, double a, perf_op_calib *out);
/* The shape index of an m x n x k weight GEMM: log2(n x k), the weight's
 * elements. */
double perf_gemm_shape(double n, double k);
/* The aspect index of an m x n x k weight GEMM: log2(n / k), its output
 * width against its reduction length (at equal n x k the kernels differ). */
double perf_gemm_aspect(double n, double k);

/* The predictor's fixed inputs. */
typedef struct perf_ctx {
    sim_model model;
    sim_gpu gpu;
    perf_calib calib;             /* as given (perf_ctx_init) */
    perf_op_calib op[PERF_N_OPS]; /* in effect: perf_calib_op(&calib, op, model.w_dtype) at
                                   * the operator's shape (perf_op_at_shape, perf_op_shape) */
    double step_base_s;           /* engine overhead per step in effect: calib's step_base_s,
                                   * plus step_tp_s when tp > 1 */
    int tp;                       /* tensor-parallel degree, >= 1 */
    int tp_nodes; /* nodes one replica spans (tp > GPUs per node: tp / GPUs per node) */
    coll_plan ar; /* the all-reduce across nodes (tp_nodes > 1; collective.h) */
    int pp;       /* pipeline stages, >= 1 (perf_ctx_set_pp) */
    double pp_bw, pp_latency_s; /* the link between stages */
    double peak;                /* FLOP/s for the GEMMs (bf16 or fp8 peak by w_dtype) */
    double peak_attn;           /* FLOP/s for attention (bf16 peak; fp8 peak with fp8 KV) */
} perf_ctx;

/* Fills ctx (c NULL: the datasheet roofline); refuses fp8 on a GPU without fp8
 * and tp < 1 (SIM_EINVAL), a tp that does not divide the heads or spans nodes
 * without a link (SIM_EINFEASIBLE). */
int perf_ctx_init(perf_ctx *ctx, const sim_model *m, const sim_gpu *g, const perf_calib *c, int tp,
                  sim_err *err);

/* Pipeline parallelism (docs/scheduler.md): pp stages of the model's layers
 * on tp GPUs each. A step's time is its time through every layer (the
 * stages in turn) plus the activations' trips between stages, over NVLink
 * when the tp x pp GPUs fit a node, else InfiniBand (refused without one).
 * The engine runs pp virtual engines per replica (vLLM's design), so the
 * stages work on different micro-batches at once. Returns SIM_OK, or
 * SIM_EINVAL / SIM_EINFEASIBLE with *err set. */
int perf_ctx_set_pp(perf_ctx *ctx, int pp, sim_err *err);

/* Replaces the collective calibration of a replica that spans nodes (the
 * all-reduce inside one node keeps its fitted operator curve); no-op
 * otherwise. Returns SIM_OK or SIM_EINVAL with *err set. */
int perf_ctx_set_collectives(perf_ctx *ctx, const coll_calib *c, sim_err *err);

/* The prediction of one step. */
typedef struct perf_result {
    double step_s;           /* predicted step time, s */
    double op_s[PERF_N_OPS]; /* per operator, all layers, one GPU's share, s */
    double flops;            /* FLOPs of the step on one GPU */
    double bytes;            /* HBM bytes moved on one GPU */
    double link_bytes;       /* bytes sent over the TP link per GPU */
    double t_compute;        /* time of compute-bound operators (without overhead), s */
    double t_hbm;            /* time of memory-bound operators (without overhead), s */
    double t_link;           /* collective time, s */
    double t_overhead;       /* launch and engine overhead, s */
    enum perf_bound bound;   /* the largest of the four */
} perf_result;

/* Predicts one step; an empty batch gives step_s = 0. */
void perf_predict(const perf_ctx *ctx, const perf_batch *b, perf_result *out);
/* The summed times, FLOPs and HBM bytes of the operators other than the
 * two attentions, which depend on a step's token count T and sample count
 * S alone, kept in tables by T and by S between calls of perf_step_cached
 * (caller-owned). A zeroed perf_cache is valid and caches nothing (every
 * call computes those operators); perf_cache_init enables the tables,
 * which then grow on demand, and perf_cache_fini frees them. One cache may
 * serve any number of replicas with the same perf_ctx (single-threaded
 * use): its entries depend only on (ctx, T, S). A call with another ctx
 * pointer empties the tables; call perf_cache_reset when the contents of
 * the ctx it served change. Memory: 32 bytes per token count and 48 per
 * sample count up to the largest seen (as sized by perf_cache_init, then
 * doubled on demand). */
struct perf_cache_tok;
struct perf_cache_smp;
typedef struct perf_cache {
    const perf_ctx *ctx;        /* the context the entries are for (NULL: none) */
    int on;                     /* 1: perf_cache_init ran, the tables may allocate */
    struct perf_cache_tok *tok; /* by token count, [0, n_tok) (owned) */
    struct perf_cache_smp *smp; /* by sample count, [0, n_smp) (owned) */
    int64_t n_tok, n_smp;       /* table sizes in entries, <= PERF_CACHE_MAX */
} perf_cache;
/* Counts at or above this are computed directly, never cached. */
#define PERF_CACHE_MAX ((int64_t)1 << 20)

/* Zeroes c, enables its tables and sizes them for steps of up to
 * max_tokens tokens and max_samples samples (0: size lazily); SIM_OK or
 * SIM_ENOMEM (c then zeroed). */
int perf_cache_init(perf_cache *c, int64_t max_tokens, int max_samples);
/* Frees c's tables and zeroes it; a zeroed c is a no-op. */
void perf_cache_fini(perf_cache *c);
/* Forgets every entry (the perf_ctx c served changed in place). */
void perf_cache_reset(perf_cache *c);

/* perf_step_s, reusing c's operator times for token and sample counts seen
 * before; equal bit for bit to perf_step_s. */
double perf_step_s_cached(const perf_ctx *ctx, perf_cache *c, const perf_batch *b);
/* perf_step_s_cached that also gives the step's FLOPs and HBM bytes (flops
 * and bytes may be NULL), equal bit for bit to perf_work's. */
double perf_step_cached(const perf_ctx *ctx, perf_cache *c, const perf_batch *b, double *flops,
                        double *bytes);

/* The segment of a curve that its last evaluation fell in: the x range
 * [lo, hi) it covers and the operands curve evaluation uses there (at an
 * end: the end value, dy = 0; an empty curve: 1). */
typedef struct perf_seg {
    double lo, hi, x0, y0, dx, dy;
} perf_seg;
/* A pure-decode stretch of n_decode sequences: step times as the summed
 * context grows, equal bit for bit to perf_step_s_cached on the same batch
 * at a fraction of its cost. perf_dstep_init fills c for the stretch's
 * counts (decode_ctx: any step's summed context). perf_dstep_next starts
 * another stretch on the ctx and cache of the last init, which must be
 * unchanged, keeping the curve segments found so far (a replica's stretches
 * mostly stay in them). */
typedef struct perf_dstep {
    const perf_ctx *ctx;
    perf_cache *cache;
    double t_rest, tail, pp, n, q, q4, kv, kvb, qbytes, peak, bw, calls, overhead;
    double f_rest, b_rest; /* the other operators' FLOPs and bytes */
    const perf_curve *eff_c, *eff_m, *work_c, *work_m;
    double wconst;                 /* work index minus log2(mean context) */
    perf_seg s_c, s_m, s_wc, s_wm; /* the curves' segments of the last call */
    double tc_bound;               /* flops x tc_bound <= tm: the compute term cannot win */
} perf_dstep;
void perf_dstep_init(perf_dstep *d, const perf_ctx *ctx, perf_cache *c, int n_decode,
                     int64_t decode_ctx);
void perf_dstep_next(perf_dstep *d, int n_decode, int64_t decode_ctx);
/* The segment of c that holds x (not NaN), with the operands curve
 * evaluation uses there: up to the first knot its value, from the last knot
 * on the last value, else [x[l], x[l+1]); an empty curve is 1 everywhere. */
void perf_seg_find(const perf_curve *c, perf_seg *s, double x);
/* Curve evaluation through the segment cache s: the same operations on the
 * same operands where x interpolates, the end value exactly beyond the ends
 * (x - x0 is finite, times dy = 0). */
static inline double perf_seg_eval(const perf_curve *c, perf_seg *s, double x) {
    if (!(x >= s->lo && x < s->hi))
        perf_seg_find(c, s, x);
    return s->y0 + (x - s->x0) / s->dx * s->dy;
}
/* A step's time at summed context decode_ctx: the same operations, in the
 * same order, as perf_step_s_cached on the pure decode batch (rows_of,
 * op_cost and roof_terms of the decode attention added to the cached sum
 * of the other operators). Inline, forced (GCC kept a call): a decode run's
 * planner calls it once a step. */
#if defined(__GNUC__)
#define PERF_HOT_INLINE __attribute__((always_inline))
#else
#define PERF_HOT_INLINE
#endif
static inline PERF_HOT_INLINE double perf_dstep_time(perf_dstep *d, int64_t decode_ctx) {
    double ctx = (double)decode_ctx;
    double rows = ctx / d->n;
    double lg = rows > 0 ? log2(rows) : 0.0;
    double flops = d->q4 * ctx;
    double bytes = ctx * 2.0 * d->kv * d->kvb + d->qbytes;
    double step = d->t_rest, tc, tm;
    if (rows > 0 && (flops > 0 || bytes > 0)) {
        double t_op;
        /* as roof_terms: eff x work factor (1 without a work curve) */
        double wm = perf_seg_eval(d->work_m, &d->s_wm, lg + d->wconst);
        tm = bytes > 0 ? bytes / (d->bw * (perf_seg_eval(d->eff_m, &d->s_m, lg) * wm)) : 0.0;
        /* the compute term is evaluated only when it could reach tm: the
         * max below is then the same either way */
        if (flops > 0 && !(flops * d->tc_bound <= tm)) {
            double wc = perf_seg_eval(d->work_c, &d->s_wc, lg + d->wconst);
            tc = flops / (d->peak * (perf_seg_eval(d->eff_c, &d->s_c, lg) * wc));
        } else {
            tc = 0.0;
        }
        t_op = d->calls * ((tc > tm ? tc : tm) + d->overhead);
        if (t_op != 0.0)
            step += t_op;
    }
    step += d->tail;
    return step + d->pp;
}
/* The stretch's FLOPs and HBM bytes at a step's summed context, equal bit for
 * bit to perf_work on the same batch. */
void perf_dstep_work(const perf_dstep *d, int64_t decode_ctx, double *flops, double *bytes);

/* FLOPs and HBM bytes of a batch on one GPU, equal to perf_predict's flops
 * and bytes, without evaluating any time. */
void perf_work(const perf_ctx *ctx, const perf_batch *b, double *flops, double *bytes);

/* Predicts only the step time (the hot path; same value as perf_predict). */
double perf_step_s(const perf_ctx *ctx, const perf_batch *b);

/* The shape index of op on ctx's model and tp, which its shape curves are
 * read at (docs/calibration.md): log2 of the weight's elements for a GEMM
 * (perf_gemm_shape), of the row width for an elementwise operator, of the
 * KV heads per GPU for attention; 0 for the all-reduce. */
double perf_op_shape(const perf_ctx *ctx, enum perf_op op);
/* The aspect index of op on ctx's model and tp (perf_gemm_aspect of its
 * weight), which its aspect curves are read at; NAN for operators other
 * than the weight GEMMs. */
double perf_op_aspect(const perf_ctx *ctx, enum perf_op op);

/* Cost of one operator at a given shape, for calibration and tests:
 * the FLOPs and bytes perf_predict charges for op given batch b (one layer
 * for per-layer operators), and the rows value the curves are indexed by. */
void perf_op_cost(const perf_ctx *ctx, enum perf_op op, const perf_batch *b, double *flops,
                  double *bytes, double *rows);

/* Time of one call of op for batch b on ctx, overhead included, s (one
 * layer for per-layer operators; one of the two all-reduces of a layer). */
double perf_op_call_s(const perf_ctx *ctx, enum perf_op op, const perf_batch *b);
/* max(flops / (peak x eff_c), bytes / (bw x eff_m)) + overhead_s at
 * log2(rows); 0 with no rows or no work. What every operator call costs. */
double perf_roofline_s(const perf_op_calib *oc, double peak, double bw, double flops, double bytes,
                       double rows);
/* perf_roofline_s with the efficiencies also times work_c(w), work_m(w)
 * (w: the call's work index, perf_op_work; NAN: no work factor). */
double perf_roofline_work_s(const perf_op_calib *oc, double peak, double bw, double flops,
                            double bytes, double rows, double w);
/* The work index of an attention call for batch b: how much parallel work
 * its kernel launch has, which the curve in keys per query cannot see
 * (docs/calibration.md):
 * - attn_prefill: log2(query heads per GPU x the step's prefill tokens),
 *   the query tiles' rows (FlashAttention's grid: tiles x heads);
 * - attn_decode: log2(KV heads per GPU x its summed decode context), the
 *   keys read (split-KV decoding's grid: sequences x KV heads x splits);
 * NAN for other operators and for a call with no rows. */
double perf_op_work(const perf_ctx *ctx, enum perf_op op, const perf_batch *b);
/* FLOPs and HBM bytes of an m x n x k GEMM with wbytes-byte weights. */
void perf_gemm_cost(double m, double n, double k, double wbytes, double *flops, double *bytes);

/* Adds a prefill chunk of c tokens after p cached tokens to b. */
void perf_batch_add_prefill(perf_batch *b, int64_t c, int64_t p, int samples);
/* Adds a decode sequence of context n (its new token included) to b. */
void perf_batch_add_decode(perf_batch *b, int64_t n);

#ifdef __cplusplus
}
#endif
#endif /* SIM_PERF_H */
