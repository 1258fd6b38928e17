/* profile.c: `kvfleet profile`, measured per-operator profiles for
 * `kvfleet calibrate` (see profile.h; the command in docs/gpu.md).
 *
 * Design. The perf model (sim/perf.h) charges each operator by its shape;
 * `kvfleet calibrate` fits its efficiency curves to latencies measured at
 * many shapes, read from CSV files in the formats of the public profiles
 * (docs/calibration.md). This command produces those files on the GPU it
 * runs on, with kvfleet's own kernels (kern.h), for one model at the given
 * tensor-parallel degrees:
 *
 *     gemm.csv                  kern_gemm, bf16: for each (N, K) of qkv_proj,
 *                               o_proj, mlp_up, mlp_down and lm_head at each
 *                               TP, M over a sqrt(2)-spaced sweep
 *     generation_attention.csv  kern_attn_decode over (batch, context)
 *     context_attention.csv     kern_kv_save + kern_attn_prefill, fresh
 *                               prompts over (batch, chunk), the KV write
 *                               included as in the public rows
 *     context_attention_chunked.csv  the same after `cached` tokens (no
 *                               reader in calibrate yet: its format has no
 *                               cached column)
 *     vidur_layer_ops.csv       per token count and TP: kern_embed,
 *                               kern_add + kern_rmsnorm (written as both
 *                               layernorms: the executor charges two adds
 *                               and two norms per layer to norm),
 *                               kern_rope, kern_silu_mul; and kern_kv_save
 *                               as an extra column calibrate ignores
 *     sample.csv                kern_argmax over rows of full-vocabulary
 *                               logits (no reader in calibrate yet)
 *     profile.json              what ran, and whether the budget cut it
 *
 * Shapes are grouped in series (one GEMM (N, K), one attention head
 * configuration, one TP's elementwise rows), each ordered by work. The
 * sweep takes one shape from every series in turn, smallest first, so
 * that a budget that runs out leaves every operator with its small and
 * medium sizes rather than one operator complete and the rest missing. A
 * series also stops when its next shape, predicted from the last one's
 * time scaled by work, would overrun what is left. Each shape's
 * measurement is: its index arrays built and uploaded (untimed), then per
 * operator one untimed call (module loading, cuBLAS heuristics), two
 * warm-up calls that estimate the duration, and 3 to 15 calls (about
 * 200 ms in all) each bracketed by CUDA events on one stream, each after
 * 256 MiB read to flush L2 (not with --warm-l2); the median is written,
 * in ms.
 * Operands come from one arena allocated before the sweep (inputs random
 * in +-1 from a repeated tile, a random KV pool with shuffled block ids,
 * outputs), sized for the largest shape, so shapes that do not fit fail
 * before anything is timed: beyond the --gpu preset's HBM before the
 * device is touched, or when cudaMalloc runs out (exit 1 both).
 *
 * --backend cpu runs the same sweep on the bf16 CPU references with
 * CLOCK_MONOTONIC, for models of at most BE_CPU_MAX_PARAMS parameters and
 * small sizes: its numbers are a CPU's, a plumbing check of the profile ->
 * calibrate path (tests/test_profile.sh), never a GPU profile.
 *
 * Sizes: about 540 shapes for an 8B model at TP 1 and 2100 at TP 1..8,
 * 11 GB of operands (--dry-run prints both); each shape takes
 * milliseconds to a fraction of a second. Status: the cuda path fails
 * cleanly without a device and has run on an H200, where it measured
 * data/profiles/h200-kvfleet (16.7 s with the L2 flush, docs/gpu.md).
 * Non-goals: fp8 GEMMs, all-reduce (one GPU),
 * the engine's CPU overheads (cpu_overheads_a100.csv), CUDA graphs. */
#include "config.h"
#include "profile.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <jansson.h>

#include "be_cpu.h"
#include "cli.h"
#include "datadir.h"
#include "fileio.h"
#include "hw.h"
#include "kern.h"
#include "kv_version.h"
#include "mem.h"
#include "model.h"
#include "rng.h"

/* A CUDA-only call: the call itself in CUDA builds, SIM_ENOTSUP (never
 * reached: --backend cuda exits first) in builds without CUDA. */
#ifdef KV_HAVE_CUDA
#define CU(call) (call)
#else
#define CU(call) SIM_ENOTSUP
#endif

#define PROF_MAX_TP        8                    /* TP degrees one profile covers */
#define PROF_BLOCK_TOKENS  16                   /* KV block size, tokens (vLLM's default) */
#define PROF_MAX_REPEATS   15                   /* timed calls per operator, at most */
#define PROF_MIN_REPEATS   3                    /* timed calls per operator, at least */
#define PROF_REPEAT_MS     200.0                /* timed calls stop growing past this, ms */
#define PROF_CPU_REPEAT_MS 50.0                 /* the same for --backend cpu */
#define PROF_TILE          (1 << 20)            /* values of the random fill tile */
#define PROF_LM_HEAD_MAX   1024                 /* lm_head and sample rows (sequences), at most */
#define PROF_MIN_MS        1e-6                 /* latencies written are at least this, ms */
#define PROF_GPU_KV_BYTES  (8.0 * 1073741824.0) /* KV pool of the largest attention shape */
#define PROF_PROGRESS_S    2.0                  /* seconds between progress lines */
#define PROF_FLUSH_ROWS    2048                 /* the L2 flush: 2048 x 65536 bf16 read */
#define PROF_FLUSH_COLS    65536                /* (256 MiB, more than any L2) */

/* The label of every --backend cpu result (as kvfleet validate's). */
static const char cpu_label[] = "plumbing check (cpu backend: not a fidelity figure)";

/* ---- shapes and series ---- */

enum prof_kind { PK_GEMM, PK_DECODE, PK_PREFILL, PK_ELEM, PK_SAMPLE };

/* The operators of one elementwise shape (one vidur_layer_ops.csv row). */
enum prof_elem { PE_EMBED, PE_NORM, PE_ROPE, PE_MLP_ACT, PE_KV_SAVE, PE_N };

static const char *const elem_name[PE_N] = {"embed", "norm", "rope", "mlp_act", "kv_save"};

typedef struct prof_shape {
    int kind;               /* enum prof_kind */
    int tp;                 /* PK_ELEM: tensor-parallel degree of the row */
    int m, n, k;            /* PK_GEMM: y (m, n) = x (m, k) . w (n, k)^T */
    int batch, len, cached; /* attention: sequences; context (decode) or chunk (prefill);
                               tokens cached before the chunk */
    int heads, kv_heads;    /* attention and PK_ELEM: heads on one GPU */
    int tokens;             /* PK_ELEM: token rows; PK_SAMPLE: logit rows */
    int done;               /* 1 measured, -1 skipped (budget), 0 not reached */
    double ms[PE_N];        /* median latency, ms: [0], or [PE_*] for PK_ELEM */
    double issue_s[PE_N];   /* cuda: host seconds to issue one call, indexed as ms */
} prof_shape;

typedef struct prof_series {
    int first, n;     /* its shapes: shape[first .. first + n), by increasing work */
    int stopped;      /* 1: the next shape would overrun the budget */
    double last_s;    /* wall time the last measured shape took, s (0: none yet) */
    double last_work; /* that shape's work (shape_work) */
} prof_series;

typedef struct prof_opts {
    int cuda;               /* 1: --backend cuda; 0: cpu */
    const char *gpu_name;   /* --gpu (borrowed from argv) */
    const char *model_name; /* --model */
    const char *out_dir;    /* -o */
    int tps[PROF_MAX_TP];   /* --tp list, distinct */
    int n_tp;               /* 1..PROF_MAX_TP */
    double budget_s;        /* --budget-s, > 0 */
    int max_tokens;         /* --max-tokens: largest GEMM M, token count, prefill tokens */
    int json;               /* --json */
    int dry_run;            /* --dry-run: print the plan, touch no device */
    int warm_l2;            /* --warm-l2: no L2 flush before the timed calls (cuda) */
} prof_opts;

typedef struct prof {
    prof_opts o;
    sim_model model;
    sim_gpu gpu;
    prof_shape *shape; /* (n_shape) */
    int n_shape, cap_shape;
    prof_series *series; /* (n_series) */
    int n_series, cap_series;
    /* operands: device memory (cuda) or host memory (cpu), one arena */
    void *arena;
    size_t arena_bytes;
    kern_bf16 *in;  /* (n_in) random inputs: activations, weights, logits */
    kern_bf16 *out; /* (n_out) outputs */
    kern_bf16 *kv;  /* (n_kv) random KV pool, one layer */
    int32_t *idx;   /* (n_idx) index arrays of the current shape; argmax output */
    float *rope;    /* (rope_pos, head_dim) cos|sin table */
    void *work;     /* (work_bytes) decode split-K workspace (cuda) */
    void *flush;    /* (flush_bytes) read before each timed call (cuda, cold L2) */
    size_t n_in, n_out, n_kv, n_idx, work_bytes, flush_bytes;
    size_t off[8];      /* byte offsets of in, out, kv, idx, rope, work, flush and the end */
    int rope_pos;       /* rows of the RoPE table: the largest elementwise token count */
    int32_t *h_idx;     /* (n_idx) host copy of idx being built (cpu: idx itself) */
    kern_kv_layout kvl; /* the current shape's pool layout */
    kern_ctx *kc;       /* cuBLAS handles (cuda) */
    void *stream;       /* the stream every call is queued on (cuda) */
    void *ev[2 * PROF_MAX_REPEATS + 2]; /* warm-up pair, then one pair per timed call */
    gsl_rng *rng;                       /* fill values and block shuffles */
    /* the sweep */
    double t0, deadline; /* CLOCK_MONOTONIC s */
    double last_progress;
    int n_done, n_skipped;
    int cut; /* 1: the budget ended the sweep before its end */
} prof;

/* Elements rounded up to a multiple of 128 (256 bytes of bf16). */
static size_t al(size_t n) {
    return (n + 127) & ~(size_t)127;
}

/* KV heads on one GPU at tp (replicated when tp > KV heads): perf.c's rule. */
static int kv_heads_at(const sim_model *m, int tp) {
    return m->n_kv_heads >= tp ? m->n_kv_heads / tp : 1;
}

static int ceil_div(int a, int b) {
    return (a + b - 1) / b;
}

/* Sizes of one GPU's share at tp: heads, KV heads, intermediate, vocabulary. */
static void dims_at(const sim_model *m, int tp, int *H, int *Hkv, int *I, int *V) {
    *H = m->n_heads / tp;
    *Hkv = kv_heads_at(m, tp);
    *I = ceil_div(m->intermediate, tp);
    *V = ceil_div(m->vocab, tp);
}

/* Work of a shape, in arbitrary units proportional to its expected time at
 * large sizes: used to order a series and to predict its next shape. */
static double shape_work(const prof *p, const prof_shape *s) {
    double D = p->model.head_dim;
    switch (s->kind) {
        case PK_GEMM:
            return (double)s->m * s->n * s->k + (double)s->n * s->k;
        case PK_DECODE:
            return (double)s->batch * s->len * (s->heads + 2.0 * s->kv_heads) * D;
        case PK_PREFILL:
            return (double)s->batch * s->len * (s->cached + 0.5 * s->len) * s->heads * D +
                   (double)s->batch * (s->cached + s->len) * s->kv_heads * D;
        case PK_ELEM:
            return (double)s->tokens;
        default:
            return (double)s->tokens * p->model.vocab;
    }
}

/* One line naming the shape, for progress and error messages. */
static void shape_desc(const prof *p, const prof_shape *s, char *buf, size_t n) {
    switch (s->kind) {
        case PK_GEMM:
            snprintf(buf, n, "gemm m=%d n=%d k=%d", s->m, s->n, s->k);
            break;
        case PK_DECODE:
            snprintf(buf, n, "attn_decode batch=%d context=%d heads=%d/%d", s->batch, s->len,
                     s->heads, s->kv_heads);
            break;
        case PK_PREFILL:
            snprintf(buf, n, "attn_prefill batch=%d chunk=%d cached=%d heads=%d/%d", s->batch,
                     s->len, s->cached, s->heads, s->kv_heads);
            break;
        case PK_ELEM:
            snprintf(buf, n, "elementwise tokens=%d tp=%d", s->tokens, s->tp);
            break;
        default:
            snprintf(buf, n, "sample rows=%d vocab=%d", s->tokens, p->model.vocab);
            break;
    }
}

static int shape_push(prof *p, const prof_shape *s) {
    if (p->n_shape == p->cap_shape) {
        int cap = p->cap_shape ? 2 * p->cap_shape : 256;
        prof_shape *v = sim_realloc(p->shape, (size_t)cap * sizeof *v);
        if (v == NULL)
            return SIM_ENOMEM;
        p->shape = v;
        p->cap_shape = cap;
    }
    p->shape[p->n_shape] = *s;
    p->shape[p->n_shape].done = 0;
    p->n_shape++;
    return SIM_OK;
}

/* Sorts a series' shapes by work. qsort's comparator has no context and
 * the work depends on the model, so this is an insertion sort (a series
 * holds at most a few hundred shapes, sorted once). */
static void series_sort(prof *p, int first, int n) {
    int i, j;
    for (i = first + 1; i < first + n; i++) {
        prof_shape s = p->shape[i];
        double w = shape_work(p, &s);
        for (j = i; j > first && shape_work(p, &p->shape[j - 1]) > w; j--)
            p->shape[j] = p->shape[j - 1];
        p->shape[j] = s;
    }
}

/* Closes the series whose shapes start at first (none: nothing added). */
static int series_close(prof *p, int first) {
    prof_series *se;
    if (p->n_shape == first)
        return SIM_OK;
    if (p->n_series == p->cap_series) {
        int cap = p->cap_series ? 2 * p->cap_series : 32;
        prof_series *v = sim_realloc(p->series, (size_t)cap * sizeof *v);
        if (v == NULL)
            return SIM_ENOMEM;
        p->series = v;
        p->cap_series = cap;
    }
    se = &p->series[p->n_series++];
    memset(se, 0, sizeof *se);
    se->first = first;
    se->n = p->n_shape - first;
    series_sort(p, first, se->n);
    return SIM_OK;
}

/* Writes round(2^(j/2)) for j = 0, 1, ... that lie in [lo, hi], then hi,
 * into out (at most cap); returns the count. */
static int grid_sqrt2(int lo, int hi, int *out, int cap) {
    int j, n = 0;
    for (j = 0; j < 64 && n < cap; j++) {
        double v = floor(pow(2.0, j / 2.0) + 0.5);
        if (v > hi)
            break;
        if (v < lo || (n > 0 && (int)v == out[n - 1]))
            continue;
        out[n++] = (int)v;
    }
    if (n < cap && hi >= lo && (n == 0 || out[n - 1] != hi))
        out[n++] = hi;
    return n;
}

/* (N, K) of a GEMM operator at tp, as a kernel runs it: whole numbers, the
 * FFN and vocabulary shards rounded up (perf.c's model arithmetic keeps
 * fractions, calibrate.c rounds the vocabulary only):
 * op 0 qkv_proj, 1 o_proj, 2 mlp_up, 3 mlp_down, 4 lm_head. */
static void gemm_nk(const sim_model *m, int tp, int op, int *n, int *k) {
    int q = m->n_heads * m->head_dim / tp, kv = kv_heads_at(m, tp) * m->head_dim;
    int ffn = ceil_div(m->intermediate, tp);
    switch (op) {
        case 0:
            *n = q + 2 * kv;
            *k = m->hidden;
            break;
        case 1:
            *n = m->hidden;
            *k = q;
            break;
        case 2:
            *n = 2 * ffn;
            *k = m->hidden;
            break;
        case 3:
            *n = m->hidden;
            *k = ffn;
            break;
        default:
            *n = ceil_div(m->vocab, tp);
            *k = m->hidden;
            break;
    }
}

/* Builds every shape of the sweep, grouped in series. */
static int shapes_build(prof *p) {
    const sim_model *m = &p->model;
    const int cuda = p->o.cuda, T = p->o.max_tokens, D = m->head_dim;
    const int lm_max = T < PROF_LM_HEAD_MAX ? T : PROF_LM_HEAD_MAX;
    const int dec_bmax = cuda ? 256 : 4, pre_bmax = cuda ? 32 : 2;
    const int ctx_hi = m->max_ctx < (cuda ? 131072 : 256) ? m->max_ctx : (cuda ? 131072 : 256);
    static const int cached_gpu[] = {512, 2048, 8192}, cached_cpu[] = {32, 128};
    const int *cached = cuda ? cached_gpu : cached_cpu;
    const int n_cached = cuda ? 3 : 2;
    const double kv_cap_bytes = cuda ? PROF_GPU_KV_BYTES : BE_CPU_KV_MAX_BYTES;
    int nk[5 * PROF_MAX_TP][3], n_nk = 0, hc[PROF_MAX_TP][2], n_hc = 0;
    int grid[64], ng, i, j, t, op, b, c, first, rc;
    prof_shape s;

    /* GEMM series: one per distinct (N, K) over the operators and TPs */
    for (t = 0; t < p->o.n_tp; t++) {
        for (op = 0; op < 5; op++) {
            int n, k, mmax = op == 4 ? lm_max : T;
            gemm_nk(m, p->o.tps[t], op, &n, &k);
            for (i = 0; i < n_nk && (nk[i][0] != n || nk[i][1] != k); i++)
                ;
            if (i == n_nk) {
                nk[n_nk][0] = n;
                nk[n_nk][1] = k;
                nk[n_nk++][2] = mmax;
            } else if (mmax > nk[i][2]) {
                nk[i][2] = mmax;
            }
        }
    }
    for (i = 0; i < n_nk; i++) {
        first = p->n_shape;
        ng = grid_sqrt2(1, nk[i][2], grid, 64);
        for (j = 0; j < ng; j++) {
            memset(&s, 0, sizeof s);
            s.kind = PK_GEMM;
            s.m = grid[j];
            s.n = nk[i][0];
            s.k = nk[i][1];
            if ((rc = shape_push(p, &s)) != SIM_OK)
                return rc;
        }
        if ((rc = series_close(p, first)) != SIM_OK)
            return rc;
    }

    /* attention series: per distinct (heads, KV heads) on one GPU */
    for (t = 0; t < p->o.n_tp; t++) {
        int H = m->n_heads / p->o.tps[t], Hkv = kv_heads_at(m, p->o.tps[t]);
        for (i = 0; i < n_hc && (hc[i][0] != H || hc[i][1] != Hkv); i++)
            ;
        if (i == n_hc) {
            hc[n_hc][0] = H;
            hc[n_hc++][1] = Hkv;
        }
    }
    for (i = 0; i < n_hc; i++) {
        const double kv_cap = kv_cap_bytes / (2.0 * hc[i][1] * D * sizeof(kern_bf16));
        memset(&s, 0, sizeof s);
        s.heads = hc[i][0];
        s.kv_heads = hc[i][1];
        /* decode: batch x context */
        first = p->n_shape;
        s.kind = PK_DECODE;
        ng = grid_sqrt2(16, ctx_hi, grid, 64);
        for (b = 1; b <= dec_bmax; b *= 2)
            for (j = 0; j < ng; j++)
                if ((double)b * grid[j] <= kv_cap) {
                    s.batch = b;
                    s.len = grid[j];
                    if ((rc = shape_push(p, &s)) != SIM_OK)
                        return rc;
                }
        if ((rc = series_close(p, first)) != SIM_OK)
            return rc;
        /* prefill of fresh prompts (what calibrate reads), then after cached tokens */
        s.kind = PK_PREFILL;
        ng = grid_sqrt2(16, T < m->max_ctx ? T : m->max_ctx, grid, 64);
        for (c = -1; c < n_cached; c++) {
            int step = c < 0 ? 2 : 4;
            first = p->n_shape;
            s.cached = c < 0 ? 0 : cached[c];
            for (b = 1; b <= pre_bmax; b *= step)
                for (j = 0; j < ng; j++)
                    if ((double)b * grid[j] <= T && s.cached + grid[j] <= m->max_ctx &&
                        (double)b * (s.cached + grid[j]) <= kv_cap) {
                        s.batch = b;
                        s.len = grid[j];
                        if ((rc = shape_push(p, &s)) != SIM_OK)
                            return rc;
                    }
            if ((rc = series_close(p, first)) != SIM_OK)
                return rc;
        }
    }

    /* elementwise rows: per TP, over token counts */
    ng = grid_sqrt2(1, T, grid, 64);
    for (t = 0; t < p->o.n_tp; t++) {
        int I, V;
        first = p->n_shape;
        memset(&s, 0, sizeof s);
        s.kind = PK_ELEM;
        s.tp = p->o.tps[t];
        dims_at(m, s.tp, &s.heads, &s.kv_heads, &I, &V);
        for (j = 0; j < ng; j++) {
            s.tokens = grid[j];
            if ((rc = shape_push(p, &s)) != SIM_OK)
                return rc;
        }
        if ((rc = series_close(p, first)) != SIM_OK)
            return rc;
    }

    /* argmax over full-vocabulary logits: sampled sequences */
    first = p->n_shape;
    ng = grid_sqrt2(1, lm_max, grid, 64);
    for (j = 0; j < ng; j++) {
        memset(&s, 0, sizeof s);
        s.kind = PK_SAMPLE;
        s.tokens = grid[j];
        if ((rc = shape_push(p, &s)) != SIM_OK)
            return rc;
    }
    return series_close(p, first);
}

/* ---- operands ---- */

/* What one shape needs of each region: bf16 elements of in, out and kv,
 * int32 elements of idx, bytes of the decode workspace. */
typedef struct prof_need {
    size_t in, out, kv, idx, work;
} prof_need;

static void shape_need(const prof *p, const prof_shape *s, prof_need *nd) {
    const sim_model *m = &p->model;
    const size_t D = (size_t)m->head_dim, bs = PROF_BLOCK_TOKENS;
    memset(nd, 0, sizeof *nd);
    switch (s->kind) {
        case PK_GEMM:
            nd->in = al((size_t)s->m * s->k) + (size_t)s->n * s->k;
            nd->out = (size_t)s->m * s->n;
            break;
        case PK_DECODE: {
            size_t S = (size_t)s->batch, mb = (size_t)ceil_div(s->len, (int)bs);
            nd->in = nd->out = S * s->heads * D;
            nd->kv = S * mb * 2 * s->kv_heads * bs * D;
            nd->idx = al(S * mb) + S;
#ifdef KV_HAVE_CUDA
            if (p->o.cuda)
                nd->work = kern_attn_decode_work_bytes(s->batch, s->heads, (int)D, s->len);
#endif
            break;
        }
        case PK_PREFILL: {
            size_t S = (size_t)s->batch, T = S * s->len;
            size_t mb = (size_t)ceil_div(s->cached + s->len, (int)bs);
            nd->in = T * (s->heads + 2 * (size_t)s->kv_heads) * D;
            nd->out = T * s->heads * D;
            nd->kv = S * mb * 2 * s->kv_heads * bs * D;
            nd->idx = al(S * mb) + al(S + 1) + al(S) + T;
            break;
        }
        case PK_ELEM: {
            size_t T = (size_t)s->tokens, h = (size_t)m->hidden;
            size_t qd = (s->heads + 2 * (size_t)s->kv_heads) * D;
            int H, Hkv, I, V;
            dims_at(m, s->tp, &H, &Hkv, &I, &V);
            nd->in = (size_t)V * h;
            if (al(T * h) + h > nd->in)
                nd->in = al(T * h) + h;
            if (T * qd > nd->in)
                nd->in = T * qd;
            if (T * 2 * (size_t)I > nd->in)
                nd->in = T * 2 * (size_t)I;
            nd->out = al(T * h) + T * h;
            if (T * (size_t)I > nd->out)
                nd->out = T * (size_t)I;
            nd->kv = (size_t)ceil_div(s->tokens, (int)bs) * 2 * s->kv_heads * bs * D;
            nd->idx = 3 * al(T);
            break;
        }
        default:
            nd->in = (size_t)s->tokens * m->vocab;
            nd->idx = (size_t)s->tokens;
            break;
    }
}

/* Fills n bf16 values at dst (device with cuda) from a random tile of
 * min(n, PROF_TILE) values in +-1, repeated. */
static int fill_random(prof *p, kern_bf16 *dst, size_t n, kern_bf16 *tile) {
    size_t m = n < PROF_TILE ? n : PROF_TILE, i, done;
    int rc;
    for (i = 0; i < m; i++)
        tile[i] = kern_bf16_from_f32((float)(2.0 * gsl_rng_uniform(p->rng) - 1.0));
    for (done = 0; done < n; done += m) {
        size_t k = n - done < m ? n - done : m;
        if (!p->o.cuda)
            memcpy(dst + done, tile, k * sizeof *tile);
        else if ((rc = CU(kern_memcpy_h2d(dst + done, tile, k * sizeof *tile))) != SIM_OK)
            return rc;
    }
    return SIM_OK;
}

/* Sizes the regions of the arena for the largest shape of each kind:
 * fills p->n_in .. p->work_bytes, p->rope_pos, p->off and p->arena_bytes. */
static void operands_plan(prof *p) {
    prof_need nd, mx;
    size_t *off = p->off;
    int i;
    memset(&mx, 0, sizeof mx);
    p->rope_pos = 1;
    for (i = 0; i < p->n_shape; i++) {
        shape_need(p, &p->shape[i], &nd);
        mx.in = nd.in > mx.in ? nd.in : mx.in;
        mx.out = nd.out > mx.out ? nd.out : mx.out;
        mx.kv = nd.kv > mx.kv ? nd.kv : mx.kv;
        mx.idx = nd.idx > mx.idx ? nd.idx : mx.idx;
        mx.work = nd.work > mx.work ? nd.work : mx.work;
        if (p->shape[i].kind == PK_ELEM && p->shape[i].tokens > p->rope_pos)
            p->rope_pos = p->shape[i].tokens;
    }
    p->n_in = al(mx.in > 0 ? mx.in : 1);
    p->n_out = al(mx.out > 0 ? mx.out : 1);
    p->n_kv = al(mx.kv > 0 ? mx.kv : 1);
    p->n_idx = al(mx.idx > 0 ? mx.idx : 1);
    p->work_bytes = mx.work;
    /* byte offsets of in, out, kv, idx, rope, work, end: 256-byte aligned */
    off[0] = 0;
    off[1] = off[0] + p->n_in * sizeof(kern_bf16);
    off[2] = off[1] + p->n_out * sizeof(kern_bf16);
    off[3] = off[2] + p->n_kv * sizeof(kern_bf16);
    off[4] = off[3] + p->n_idx * sizeof(int32_t);
    off[5] = off[4] + 2 * al((size_t)p->rope_pos * p->model.head_dim) * sizeof(float);
    off[6] = off[5] + ((p->work_bytes + 255) & ~(size_t)255);
    p->flush_bytes = p->o.cuda && !p->o.warm_l2
                         ? (size_t)PROF_FLUSH_ROWS * PROF_FLUSH_COLS * sizeof(kern_bf16) +
                               PROF_FLUSH_ROWS * sizeof(int32_t)
                         : 0;
    off[7] = off[6] + p->flush_bytes;
    p->arena_bytes = off[7];
}

/* Allocates the arena (operands_plan first) and fills it, and (cuda)
 * creates the stream, events and cuBLAS context. SIM_EINFEASIBLE (with
 * *err) when the device cannot hold the arena. */
static int operands_init(prof *p, sim_err *err) {
    const size_t *off = p->off, bytes = p->arena_bytes;
    kern_bf16 *tile = NULL;
    float *rope = NULL;
    int i, rc = SIM_OK;
    if (p->o.cuda) {
        if ((rc = CU(kern_malloc(&p->arena, bytes))) != SIM_OK) {
            if (strstr(kern_last_error(), "out of memory")) {
                sim_err_set(err, "", 0, 0,
                            "--backend cuda: the operands of the largest shapes (%.2f GB: inputs "
                            "%.2f, outputs %.2f, KV %.2f) do not fit the device: %s; use a larger "
                            "--tp or a smaller --max-tokens",
                            (double)bytes / 1e9, (double)p->n_in * 2 / 1e9,
                            (double)p->n_out * 2 / 1e9, (double)p->n_kv * 2 / 1e9,
                            kern_last_error());
                return SIM_EINFEASIBLE;
            }
            sim_err_set(err, "", 0, 0, "--backend cuda: allocating %.2f GB: %s",
                        (double)bytes / 1e9, kern_last_error());
            return rc;
        }
    } else if ((p->arena = sim_malloc(bytes)) == NULL) {
        sim_err_set(err, "", 0, 0, "--backend cpu: out of host memory for %.2f GB of operands",
                    (double)bytes / 1e9);
        return SIM_ENOMEM;
    }
    p->in = (kern_bf16 *)((char *)p->arena + off[0]);
    p->out = (kern_bf16 *)((char *)p->arena + off[1]);
    p->kv = (kern_bf16 *)((char *)p->arena + off[2]);
    p->idx = (int32_t *)(void *)((char *)p->arena + off[3]);
    p->rope = (float *)(void *)((char *)p->arena + off[4]);
    p->work = p->work_bytes > 0 ? (char *)p->arena + off[5] : NULL;
    p->flush = p->flush_bytes > 0 ? (char *)p->arena + off[6] : NULL;
    p->h_idx = p->o.cuda ? SIM_NEW_ARRAY(int32_t, p->n_idx) : p->idx;
    tile = SIM_NEW_ARRAY(kern_bf16, PROF_TILE);
    rope = SIM_NEW_ARRAY(float, (size_t)p->rope_pos * p->model.head_dim);
    if (p->h_idx == NULL || tile == NULL || rope == NULL) {
        sim_err_set(err, "", 0, 0, "out of host memory");
        rc = SIM_ENOMEM;
        goto out;
    }
    if ((rc = kern_rope_cache_ref(rope, p->rope_pos, p->model.head_dim,
                                  sim_model_rope_theta(&p->model))) != SIM_OK) {
        sim_err_set(err, "", 0, 0, "%s: head_dim: expected an even number >= 2, got '%d'",
                    p->model.name, p->model.head_dim);
        goto out;
    }
    if (!p->o.cuda) {
        memcpy(p->rope, rope, (size_t)p->rope_pos * p->model.head_dim * sizeof(float));
        memset(p->out, 0, p->n_out * sizeof(kern_bf16));
    } else if ((rc = CU(kern_memcpy_h2d(
                    p->rope, rope, (size_t)p->rope_pos * p->model.head_dim * sizeof(float)))) !=
                   SIM_OK ||
               (rc = CU(kern_memset(p->out, 0, p->n_out * sizeof(kern_bf16)))) != SIM_OK ||
               (p->flush != NULL &&
                (rc = CU(kern_memset(p->flush, 0, p->flush_bytes))) != SIM_OK)) {
        sim_err_set(err, "", 0, 0, "--backend cuda: setting up the operands: %s",
                    kern_last_error());
        goto out;
    }
    if ((rc = fill_random(p, p->in, p->n_in, tile)) != SIM_OK ||
        (rc = fill_random(p, p->kv, p->n_kv, tile)) != SIM_OK) {
        sim_err_set(err, "", 0, 0, "--backend cuda: filling the operands: %s", kern_last_error());
        goto out;
    }
    if (p->o.cuda) {
        if ((rc = CU(kern_stream_create(&p->stream))) != SIM_OK) {
            sim_err_set(err, "", 0, 0, "--backend cuda: creating a stream: %s", kern_last_error());
            goto out;
        }
        for (i = 0; i < 2 * PROF_MAX_REPEATS + 2; i++)
            if ((rc = CU(kern_event_create(&p->ev[i]))) != SIM_OK) {
                sim_err_set(err, "", 0, 0, "--backend cuda: creating events: %s",
                            kern_last_error());
                goto out;
            }
        if ((rc = CU(kern_ctx_create(&p->kc))) != SIM_OK) {
            sim_err_set(err, "", 0, 0, "--backend cuda: creating the cuBLAS context: %s",
                        kern_last_error());
            goto out;
        }
    }
out:
    sim_free(tile);
    sim_free(rope);
    return rc;
}

static void operands_fini(prof *p) {
#ifdef KV_HAVE_CUDA
    int i;
    if (p->o.cuda) {
        if (p->stream != NULL)
            kern_sync(p->stream);
        kern_ctx_destroy(p->kc);
        p->kc = NULL;
        for (i = 0; i < 2 * PROF_MAX_REPEATS + 2; i++)
            kern_event_destroy(&p->ev[i]);
        kern_stream_destroy(&p->stream);
        kern_free(&p->arena);
        SIM_FREE(p->h_idx);
        return;
    }
#endif
    SIM_FREE(p->arena);
    p->h_idx = NULL;
}

/* ---- one shape ---- */

/* Builds the shape's index arrays (block tables over shuffled block ids,
 * context lengths, cu_seqlens, slots, tokens, positions) and its pool
 * layout, and uploads them (untimed). */
static int shape_prepare(prof *p, const prof_shape *s) {
    const int bs = PROF_BLOCK_TOKENS;
    int32_t *I = p->h_idx;
    size_t n = 0, i;
    int q, t;
    memset(&p->kvl, 0, sizeof p->kvl);
    p->kvl.n_layers = 1;
    p->kvl.block_size = bs;
    p->kvl.n_kv_heads = s->kv_heads > 0 ? s->kv_heads : 1;
    p->kvl.head_dim = p->model.head_dim;
    p->kvl.dtype = KERN_DT_BF16;
    p->kvl.n_blocks = 1;
    if (s->kind == PK_DECODE || s->kind == PK_PREFILL) {
        int ctx = s->cached + s->len, mb = ceil_div(ctx, bs), nb = s->batch * mb;
        size_t o_cu = al((size_t)nb), o_ctx = o_cu + al((size_t)s->batch + 1);
        size_t o_slot = o_ctx + al((size_t)s->batch);
        p->kvl.n_blocks = nb;
        for (i = 0; i < (size_t)nb; i++)
            I[i] = (int32_t)i;
        gsl_ran_shuffle(p->rng, I, (size_t)nb, sizeof *I);
        if (s->kind == PK_DECODE) {
            for (q = 0; q < s->batch; q++)
                I[o_cu + (size_t)q] = ctx; /* decode: context lengths follow the tables */
            n = o_cu + (size_t)s->batch;
        } else {
            for (q = 0; q <= s->batch; q++)
                I[o_cu + (size_t)q] = q * s->len;
            for (q = 0; q < s->batch; q++) {
                I[o_ctx + (size_t)q] = ctx;
                for (t = 0; t < s->len; t++) {
                    int pos = s->cached + t;
                    I[o_slot + (size_t)q * s->len + (size_t)t] =
                        I[(size_t)q * mb + (size_t)(pos / bs)] * bs + pos % bs;
                }
            }
            n = o_slot + (size_t)s->batch * s->len;
        }
    } else if (s->kind == PK_ELEM) {
        size_t T = (size_t)s->tokens;
        int H, Hkv, Im, V;
        dims_at(&p->model, s->tp, &H, &Hkv, &Im, &V);
        p->kvl.n_blocks = ceil_div(s->tokens, bs);
        for (i = 0; i < T; i++) {
            I[i] = (int32_t)((i * 2654435761u) % (size_t)V);
            I[al(T) + i] = (int32_t)i;
            I[2 * al(T) + i] = (int32_t)i;
        }
        n = 3 * al(T);
    }
    if (p->o.cuda && n > 0)
        return CU(kern_memcpy_h2d(p->idx, p->h_idx, n * sizeof(int32_t)));
    return SIM_OK;
}

/* Runs operator sub of shape s once: queued on the stream (cuda) or run to
 * completion (cpu). */
static int op_run(prof *p, const prof_shape *s, int sub) {
    const sim_model *m = &p->model;
    const int cuda = p->o.cuda, D = m->head_dim, bs = PROF_BLOCK_TOKENS;
    const float scale = 1.0f / sqrtf((float)D);
    void *st = p->stream;
    int rc;
    (void)st;
    switch (s->kind) {
        case PK_GEMM: {
            const kern_bf16 *x = p->in, *w = p->in + al((size_t)s->m * s->k);
            if (cuda)
                return CU(kern_gemm(p->kc, p->out, x, w, s->m, s->n, s->k, KERN_DT_BF16, 1.0f, st));
            kern_gemm_ref_bf16(p->out, x, w, s->m, s->n, s->k, 1.0f);
            return SIM_OK;
        }
        case PK_DECODE: {
            int mb = ceil_div(s->len, bs), hd = s->heads * D;
            const int32_t *bt = p->idx, *ctx = p->idx + al((size_t)s->batch * mb);
            if (cuda)
                return CU(kern_attn_decode(p->out, p->in, hd, p->kv, &p->kvl, bt, mb, ctx, s->batch,
                                           s->heads, s->len, scale, p->work, p->work_bytes, st));
            return kern_attn_decode_ref(p->out, p->in, hd, p->kv, &p->kvl, bt, mb, ctx, s->batch,
                                        s->heads, scale);
        }
        case PK_PREFILL: {
            int mb = ceil_div(s->cached + s->len, bs), T = s->batch * s->len;
            int qd = (s->heads + 2 * s->kv_heads) * D;
            size_t o_cu = al((size_t)s->batch * mb), o_ctx = o_cu + al((size_t)s->batch + 1);
            size_t o_slot = o_ctx + al((size_t)s->batch);
            const int32_t *bt = p->idx, *cu = p->idx + o_cu, *ctx = p->idx + o_ctx;
            const int32_t *slots = p->idx + o_slot;
            const kern_bf16 *k = p->in + (size_t)s->heads * D;
            const kern_bf16 *v = k + (size_t)s->kv_heads * D;
            if (cuda) {
                if ((rc = CU(kern_kv_save(p->kv, &p->kvl, k, qd, v, qd, slots, T, st))) != SIM_OK)
                    return rc;
                return CU(kern_attn_prefill(p->out, p->in, qd, p->kv, &p->kvl, bt, mb, cu, ctx,
                                            s->batch, T, s->heads, s->len, scale, st));
            }
            if ((rc = kern_kv_save_ref(p->kv, &p->kvl, k, qd, v, qd, slots, T)) != SIM_OK)
                return rc;
            return kern_attn_prefill_ref(p->out, p->in, qd, p->kv, &p->kvl, bt, mb, cu, ctx,
                                         s->batch, s->heads, scale);
        }
        case PK_ELEM: {
            const int T = s->tokens, h = m->hidden, Hq = s->heads, Hkv = s->kv_heads;
            const int qd = (Hq + 2 * Hkv) * D;
            const float eps = (float)sim_model_norm_eps(m);
            const int32_t *tok = p->idx, *pos = p->idx + al((size_t)T);
            const int32_t *slots = p->idx + 2 * al((size_t)T);
            kern_bf16 *q = p->in, *k = p->in + (size_t)Hq * D, *v = k + (size_t)Hkv * D;
            kern_bf16 *y = p->out, *yn = p->out + al((size_t)T * h);
            const kern_bf16 *w = p->in + al((size_t)T * h);
            int H, Hk, I, V;
            dims_at(m, s->tp, &H, &Hk, &I, &V);
            switch (sub) {
                case PE_EMBED:
                    if (cuda)
                        return CU(kern_embed(p->out, p->in, tok, T, h, V, KERN_DT_BF16, st));
                    return kern_embed_ref(p->out, p->in, tok, T, h, V, KERN_DT_BF16);
                case PE_NORM:
                    if (cuda) {
                        if ((rc = CU(kern_add(y, p->in, (long long)T * h, KERN_DT_BF16, st))) !=
                            SIM_OK)
                            return rc;
                        return CU(kern_rmsnorm(yn, y, w, T, h, eps, KERN_DT_BF16, st));
                    }
                    kern_add_ref_bf16(y, p->in, (size_t)T * h);
                    kern_rmsnorm_ref_bf16(yn, y, w, T, h, eps);
                    return SIM_OK;
                case PE_ROPE:
                    if (cuda)
                        return CU(kern_rope(q, qd, k, qd, p->rope, p->rope_pos, pos, T, Hq, Hkv, D,
                                            D, KERN_DT_BF16, st));
                    return kern_rope_ref_bf16(q, qd, k, qd, p->rope, p->rope_pos, pos, T, Hq, Hkv,
                                              D, D);
                case PE_MLP_ACT:
                    if (cuda)
                        return CU(kern_silu_mul(p->out, p->in, T, I, KERN_DT_BF16, st));
                    kern_silu_mul_ref_bf16(p->out, p->in, T, I);
                    return SIM_OK;
                default:
                    if (cuda)
                        return CU(kern_kv_save(p->kv, &p->kvl, k, qd, v, qd, slots, T, st));
                    return kern_kv_save_ref(p->kv, &p->kvl, k, qd, v, qd, slots, T);
            }
        }
        default:
            if (cuda)
                return CU(kern_argmax(p->idx, p->in, s->tokens, m->vocab, KERN_DT_BF16, st));
            kern_argmax_ref_bf16(p->idx, p->in, s->tokens, m->vocab);
            return SIM_OK;
    }
}

/* The L2 flush before a timed call (cuda, unless --warm-l2): kern_argmax
 * reads 256 MiB of zeros from the flush region and writes 2048 indices
 * after them. A read, not a memset: a memset flush made the fitted steps 3
 * to 15% too slow on an H200 (docs/VALIDATION.md), most likely by leaving
 * L2 full of dirty lines whose write-back the timed call then pays. */
static int flush_l2(prof *p) {
    kern_bf16 *x = p->flush;
    if (x == NULL)
        return SIM_OK;
    return CU(kern_argmax((int32_t *)(void *)(x + (size_t)PROF_FLUSH_ROWS * PROF_FLUSH_COLS), x,
                          PROF_FLUSH_ROWS, PROF_FLUSH_COLS, KERN_DT_BF16, p->stream));
}

/* Timed calls for an estimated duration of est_ms per call, so that they
 * take about budget_ms together. */
static int repeats_for(double est_ms, double budget_ms) {
    int n = est_ms > 0 ? (int)(budget_ms / est_ms) : PROF_MAX_REPEATS;
    if (n > PROF_MAX_REPEATS)
        n = PROF_MAX_REPEATS;
    return n < PROF_MIN_REPEATS ? PROF_MIN_REPEATS : n;
}

/* Times operator sub of shape s. cuda: one untimed call (module loading,
 * cuBLAS heuristics), two warm-up calls that estimate its duration, then
 * repeats_for() calls, each between two events and each after the flush
 * (unless --warm-l2: flush_l2), so that no call finds its weights, KV or
 * inputs in L2, as in a step where a whole layer's weights stream through
 * between two calls of one operator; then as many calls again issued back
 * to back without events, timed on the host: *issue_s is the host's
 * time to issue one call (the launch cost a step pays per kernel, which
 * bounds a step of small kernels). cpu: one call that warms the caches and
 * estimates, then repeats_for() calls timed with CLOCK_MONOTONIC; *issue_s
 * is 0. *ms is the median of the timed calls. */
static int op_time(prof *p, const prof_shape *s, int sub, double *ms, double *issue_s) {
    double t[PROF_MAX_REPEATS], est_ms, a;
    int i, n, rc;
    if (p->o.cuda) {
        float f = 0;
        if ((rc = op_run(p, s, sub)) != SIM_OK)
            return rc;
        if ((rc = CU(kern_event_record(p->ev[0], p->stream))) != SIM_OK ||
            (rc = op_run(p, s, sub)) != SIM_OK || (rc = op_run(p, s, sub)) != SIM_OK ||
            (rc = CU(kern_event_record(p->ev[1], p->stream))) != SIM_OK ||
            (rc = CU(kern_event_elapsed_ms(p->ev[0], p->ev[1], &f))) != SIM_OK)
            return rc;
        est_ms = f / 2.0;
        n = repeats_for(est_ms, PROF_REPEAT_MS);
        for (i = 0; i < n; i++)
            if ((rc = flush_l2(p)) != SIM_OK ||
                (rc = CU(kern_event_record(p->ev[2 + 2 * i], p->stream))) != SIM_OK ||
                (rc = op_run(p, s, sub)) != SIM_OK ||
                (rc = CU(kern_event_record(p->ev[3 + 2 * i], p->stream))) != SIM_OK)
                return rc;
        for (i = 0; i < n; i++) {
            if ((rc = CU(kern_event_elapsed_ms(p->ev[2 + 2 * i], p->ev[3 + 2 * i], &f))) != SIM_OK)
                return rc;
            t[i] = f;
        }
        a = rt_now_s();
        for (i = 0; i < n; i++)
            if ((rc = op_run(p, s, sub)) != SIM_OK)
                return rc;
        *issue_s = (rt_now_s() - a) / n;
    } else {
        *issue_s = 0.0;
        a = rt_now_s();
        if ((rc = op_run(p, s, sub)) != SIM_OK)
            return rc;
        est_ms = (rt_now_s() - a) * 1e3;
        n = repeats_for(est_ms, PROF_CPU_REPEAT_MS);
        for (i = 0; i < n; i++) {
            a = rt_now_s();
            if ((rc = op_run(p, s, sub)) != SIM_OK)
                return rc;
            t[i] = (rt_now_s() - a) * 1e3;
        }
    }
    gsl_sort(t, 1, (size_t)n);
    *ms = gsl_stats_median_from_sorted_data(t, 1, (size_t)n);
    if (!(*ms >= PROF_MIN_MS))
        *ms = PROF_MIN_MS;
    return SIM_OK;
}

/* Measures every operator of shape s into s->ms. */
static int shape_measure(prof *p, prof_shape *s, sim_err *err) {
    char what[160];
    int rc, sub = 0, n_sub = s->kind == PK_ELEM ? PE_N : 1;
    if ((rc = shape_prepare(p, s)) == SIM_OK)
        for (sub = 0; sub < n_sub; sub++)
            if ((rc = op_time(p, s, sub, &s->ms[sub], &s->issue_s[sub])) != SIM_OK)
                break;
    if (rc == SIM_OK) {
        s->done = 1;
        return SIM_OK;
    }
    shape_desc(p, s, what, sizeof what);
    if (p->o.cuda)
        sim_err_set(err, "", 0, 0, "--backend cuda: %s%s%s: %s (%s)", what,
                    s->kind == PK_ELEM ? ", " : "", s->kind == PK_ELEM ? elem_name[sub] : "",
                    kern_last_error()[0] ? kern_last_error() : "no CUDA error recorded",
                    sim_strerror(rc));
    else
        sim_err_set(err, "", 0, 0, "--backend cpu: %s%s%s: the CPU reference refused it (%s)", what,
                    s->kind == PK_ELEM ? ", " : "", s->kind == PK_ELEM ? elem_name[sub] : "",
                    sim_strerror(rc));
    return rc;
}

/* ---- the sweep ---- */

static void progress(prof *p, const prof_shape *s, int force) {
    double t = rt_now_s(), left = p->deadline - t;
    char what[160];
    if (!force && t - p->last_progress < PROF_PROGRESS_S)
        return;
    p->last_progress = t;
    if (s != NULL)
        shape_desc(p, s, what, sizeof what);
    fprintf(stderr, "kvfleet profile: %d/%d shapes measured, %d skipped, %.0f s left%s%s%s\n",
            p->n_done, p->n_shape, p->n_skipped, left > 0 ? left : 0.0, s != NULL ? " (last: " : "",
            s != NULL ? what : "", s != NULL ? ")" : "");
}

/* Marks the shapes from index from to the end of series se skipped. */
static void series_skip(prof *p, prof_series *se, int from) {
    int i;
    for (i = from; i < se->n; i++)
        if (p->shape[se->first + i].done == 0) {
            p->shape[se->first + i].done = -1;
            p->n_skipped++;
        }
    se->stopped = 1;
}

/* Round-robin over the series, smallest shapes first, until every shape is
 * measured or skipped. Returns SIM_OK (also when the budget cut it short)
 * or the first failure with *err set. */
static int sweep(prof *p, sim_err *err) {
    int round, si, active = 1, rc;
    const prof_shape *last = NULL;
    for (round = 0; active; round++) {
        active = 0;
        for (si = 0; si < p->n_series; si++) {
            prof_series *se = &p->series[si];
            prof_shape *s;
            double left, t, w;
            if (se->stopped || round >= se->n)
                continue;
            active = 1;
            s = &p->shape[se->first + round];
            w = shape_work(p, s);
            left = p->deadline - rt_now_s();
            if (left <= 0) {
                for (si = 0; si < p->n_series; si++)
                    if (!p->series[si].stopped)
                        series_skip(p, &p->series[si], 0);
                p->cut = 1;
                return SIM_OK;
            }
            if (se->last_s > 0 && se->last_s * (w / se->last_work) > left) {
                series_skip(p, se, round);
                p->cut = 1;
                continue;
            }
            t = rt_now_s();
            if ((rc = shape_measure(p, s, err)) != SIM_OK)
                return rc;
            se->last_s = rt_now_s() - t;
            se->last_work = w;
            p->n_done++;
            last = s;
            progress(p, last, 0);
        }
    }
    return SIM_OK;
}

/* ---- output ---- */

static int cmp_gemm(const void *a, const void *b) {
    const prof_shape *x = *(const prof_shape *const *)a, *y = *(const prof_shape *const *)b;
    if (x->n != y->n)
        return x->n < y->n ? -1 : 1;
    if (x->k != y->k)
        return x->k < y->k ? -1 : 1;
    return (x->m > y->m) - (x->m < y->m);
}

static int cmp_attn(const void *a, const void *b) {
    const prof_shape *x = *(const prof_shape *const *)a, *y = *(const prof_shape *const *)b;
    if (x->heads != y->heads)
        return x->heads < y->heads ? -1 : 1;
    if (x->kv_heads != y->kv_heads)
        return x->kv_heads < y->kv_heads ? -1 : 1;
    if (x->cached != y->cached)
        return x->cached < y->cached ? -1 : 1;
    if (x->batch != y->batch)
        return x->batch < y->batch ? -1 : 1;
    return (x->len > y->len) - (x->len < y->len);
}

static int cmp_rows(const void *a, const void *b) {
    const prof_shape *x = *(const prof_shape *const *)a, *y = *(const prof_shape *const *)b;
    if (x->tp != y->tp)
        return x->tp < y->tp ? -1 : 1;
    return (x->tokens > y->tokens) - (x->tokens < y->tokens);
}

/* The measured shapes of one file, in its row order (owned; *n rows).
 * file: 0 gemm, 1 decode, 2 fresh prefill, 3 chunked prefill, 4 elementwise,
 * 5 sample. */
static prof_shape **file_rows(prof *p, int file, int *n) {
    prof_shape **v = SIM_NEW_ARRAY(prof_shape *, (size_t)p->n_shape + 1);
    int i, c = 0;
    static const int kind_of[6] = {PK_GEMM, PK_DECODE, PK_PREFILL, PK_PREFILL, PK_ELEM, PK_SAMPLE};
    if (v == NULL)
        return NULL;
    for (i = 0; i < p->n_shape; i++) {
        prof_shape *s = &p->shape[i];
        if (s->done != 1 || s->kind != kind_of[file])
            continue;
        if ((file == 2 && s->cached != 0) || (file == 3 && s->cached == 0))
            continue;
        v[c++] = s;
    }
    qsort(v, (size_t)c, sizeof *v, file == 0 ? cmp_gemm : file <= 3 ? cmp_attn : cmp_rows);
    *n = c;
    return v;
}

static const char *const file_name[6] = {"gemm.csv",
                                         "generation_attention.csv",
                                         "context_attention.csv",
                                         "context_attention_chunked.csv",
                                         "vidur_layer_ops.csv",
                                         "sample.csv"};

/* Writes one CSV; adds its row count to counts. */
static int write_file(prof *p, int file, json_t *counts, sim_err *err) {
    const sim_model *m = &p->model;
    const int D = m->head_dim;
    char path[2048];
    prof_shape **v;
    FILE *f;
    int n = 0, i, bad;
    snprintf(path, sizeof path, "%s/%s", p->o.out_dir, file_name[file]);
    if ((v = file_rows(p, file, &n)) == NULL) {
        sim_err_set(err, path, 0, 0, "out of memory");
        return SIM_ENOMEM;
    }
    if ((f = fopen(path, "w")) == NULL) {
        sim_err_set(err, path, 0, 0, "cannot write: %s", strerror(errno));
        sim_free(v);
        return SIM_EIO;
    }
    switch (file) {
        case 0:
            fprintf(f, "gemm_dtype,m,n,k,latency\n");
            for (i = 0; i < n; i++)
                fprintf(f, "bfloat16,%d,%d,%d,%.6g\n", v[i]->m, v[i]->n, v[i]->k, v[i]->ms[0]);
            break;
        case 1:
            fprintf(f, "batch_size,step,num_heads,num_key_value_heads,head_dim,kv_cache_dtype,"
                       "latency\n");
            for (i = 0; i < n; i++)
                fprintf(f, "%d,%d,%d,%d,%d,bfloat16,%.6g\n", v[i]->batch, v[i]->len - 1,
                        v[i]->heads, v[i]->kv_heads, D, v[i]->ms[0]);
            break;
        case 2:
        case 3:
            fprintf(f,
                    "batch_size,isl,%snum_heads,num_key_value_heads,head_dim,kv_cache_dtype,"
                    "latency\n",
                    file == 3 ? "cached," : "");
            for (i = 0; i < n; i++) {
                fprintf(f, "%d,%d,", v[i]->batch, v[i]->len);
                if (file == 3)
                    fprintf(f, "%d,", v[i]->cached);
                fprintf(f, "%d,%d,%d,bfloat16,%.6g\n", v[i]->heads, v[i]->kv_heads, D, v[i]->ms[0]);
            }
            break;
        case 4:
            fprintf(f, "model,n_head,n_kv_head,n_embd,n_expanded_embd,vocab_size,num_tokens,"
                       "num_tensor_parallel_workers,time_stats.emb.median,"
                       "time_stats.input_layernorm.median,time_stats.post_attention_layernorm."
                       "median,time_stats.attn_rope.median,time_stats.mlp_act.median,"
                       "time_stats.kv_save.median\n");
            for (i = 0; i < n; i++) {
                const double *t = v[i]->ms;
                fprintf(f, "%s,%d,%d,%d,%d,%d,%d,%d,%.6g,%.6g,%.6g,%.6g,%.6g,%.6g\n", m->name,
                        m->n_heads, m->n_kv_heads, m->hidden, m->intermediate, m->vocab,
                        v[i]->tokens, v[i]->tp, t[PE_EMBED], t[PE_NORM], t[PE_NORM], t[PE_ROPE],
                        t[PE_MLP_ACT], t[PE_KV_SAVE]);
            }
            break;
        default:
            fprintf(f, "num_rows,vocab_size,logits_dtype,latency\n");
            for (i = 0; i < n; i++)
                fprintf(f, "%d,%d,bfloat16,%.6g\n", v[i]->tokens, m->vocab, v[i]->ms[0]);
            break;
    }
    bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        sim_err_set(err, path, 0, 0, "write failed: %s", strerror(errno));
        sim_free(v);
        return SIM_EIO;
    }
    json_object_set_new(counts, file_name[file], json_integer(n));
    sim_free(v);
    return SIM_OK;
}

/* The launchers whose issue cost profile.json reports, by the profile's
 * shape kind and elementwise operator (PE_N: the kind has one). */
static const struct {
    const char *name;
    int kind, sub;
} issue_kind[] = {{"gemm", PK_GEMM, PE_N},
                  {"attn_decode", PK_DECODE, PE_N},
                  {"kv_save+attn_prefill", PK_PREFILL, PE_N},
                  {"embed", PK_ELEM, PE_EMBED},
                  {"add+rmsnorm", PK_ELEM, PE_NORM},
                  {"rope", PK_ELEM, PE_ROPE},
                  {"silu_mul", PK_ELEM, PE_MLP_ACT},
                  {"kv_save", PK_ELEM, PE_KV_SAVE},
                  {"argmax", PK_SAMPLE, PE_N}};

/* {"gemm": S, ...}: each launcher's median host seconds to issue one call
 * over the shapes measured (cuda); NULL when none was measured. Owned. */
static json_t *issue_json(const prof *p) {
    json_t *o = json_object();
    double *v = sim_malloc((size_t)(p->n_shape > 0 ? p->n_shape : 1) * sizeof *v);
    size_t k, n;
    int i;
    if (v == NULL) {
        json_decref(o);
        return NULL;
    }
    for (k = 0; k < sizeof issue_kind / sizeof issue_kind[0]; k++) {
        for (i = 0, n = 0; i < p->n_shape; i++)
            if (p->shape[i].done == 1 && p->shape[i].kind == issue_kind[k].kind)
                v[n++] = p->shape[i].issue_s[issue_kind[k].sub == PE_N ? 0 : issue_kind[k].sub];
        if (n == 0)
            continue;
        gsl_sort(v, 1, n);
        json_object_set_new(o, issue_kind[k].name,
                            json_real(gsl_stats_median_from_sorted_data(v, 1, n)));
    }
    sim_free(v);
    if (json_object_size(o) == 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The description of the profile (profile.json, and --json's output);
 * owned. */
static json_t *profile_json(const prof *p, json_t *counts) {
    json_t *o = json_object(), *tps = json_array(), *issue;
    int i;
    for (i = 0; i < p->o.n_tp; i++)
        json_array_append_new(tps, json_integer(p->o.tps[i]));
    json_object_set_new(o, "backend", json_string(p->o.cuda ? "cuda" : "cpu"));
    json_object_set_new(o, "label", json_string(p->o.cuda ? "measured on the GPU" : cpu_label));
    json_object_set_new(o, "gpu", json_string(p->gpu.name));
    json_object_set_new(o, "model", json_string(p->model.name));
    json_object_set_new(o, "tp", tps);
    json_object_set_new(o, "dtype", json_string("bfloat16"));
    json_object_set_new(o, "block_tokens", json_integer(PROF_BLOCK_TOKENS));
    json_object_set_new(o, "max_tokens", json_integer(p->o.max_tokens));
    json_object_set_new(o, "budget_s", json_real(p->o.budget_s));
    json_object_set_new(o, "elapsed_s", json_real(floor((rt_now_s() - p->t0) * 10 + 0.5) / 10));
    json_object_set_new(o, "shapes", json_integer(p->n_shape));
    json_object_set_new(o, "measured", json_integer(p->n_done));
    json_object_set_new(o, "skipped", json_integer(p->n_skipped));
    json_object_set_new(o, "complete", json_boolean(!p->cut));
    json_object_set_new(o, "rows", json_incref(counts));
    if (p->o.cuda)
        json_object_set_new(o, "l2", json_string(p->o.warm_l2 ? "warm" : "flushed"));
    if (p->o.cuda && (issue = issue_json(p)) != NULL)
        json_object_set_new(o, "issue_s", issue);
    json_object_set_new(o, "dir", json_string(p->o.out_dir));
    json_object_set_new(o, "kvfleet", json_string(PACKAGE_VERSION " (" KV_GIT_VERSION ")"));
    return o;
}

/* Writes every file into the output folder (created by rt_main_profile). */
static int write_all(prof *p, json_t **out, sim_err *err) {
    json_t *counts = json_object(), *desc = NULL;
    char path[2048];
    int file, rc = SIM_OK;
    for (file = 0; file < 6 && rc == SIM_OK; file++)
        rc = write_file(p, file, counts, err);
    if (rc == SIM_OK) {
        desc = profile_json(p, counts);
        snprintf(path, sizeof path, "%s/profile.json", p->o.out_dir);
        if (json_dump_file(desc, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0) {
            sim_err_set(err, path, 0, 0, "cannot write: %s", strerror(errno));
            rc = SIM_EIO;
        }
    }
    json_decref(counts);
    if (rc != SIM_OK) {
        json_decref(desc);
        return rc;
    }
    *out = desc;
    return SIM_OK;
}

/* ---- the command ---- */

static void usage(FILE *f) {
    fprintf(f,
            "usage: kvfleet profile --backend cuda|cpu --model NAME --gpu NAME\n"
            "                       [--tp N[,N...]] [--budget-s S] [--max-tokens N]\n"
            "                       [-o DIR] [--json] [--dry-run] [--warm-l2]\n"
            "Times kvfleet's kernels over a sweep of operator shapes of the model at\n"
            "the given tensor-parallel degrees (default 1) for at most S seconds\n"
            "(default 300), and writes DIR (default profile-GPU) in the formats\n"
            "`kvfleet calibrate --gpu GPU --model NAME --profiles DIR` reads.\n"
            "--gpu names the preset the measurements are for (the GPU this runs on).\n"
            "--max-tokens (default 16384 cuda, 128 cpu) bounds GEMM rows and token\n"
            "counts. --dry-run prints the shapes and memory the sweep would use.\n"
            "cuda reads 256 MiB before each timed call so that it starts with a cold\n"
            "L2, as in a serving step; --warm-l2 leaves the operands in L2 instead.\n"
            "--backend cpu runs the CPU references on tiny models: %s.\n",
            cpu_label);
}

/* Parses a positive integer no larger than max; -1 when it is not one. */
static long parse_int(const char *s, long max) {
    long long v;
    return rt_parse_int(s, 1, max, &v) == 0 ? (long)v : -1;
}

/* The options that take a value (rt_arg_refuse: a trailing one lacks it; any
 * other is unknown). */
static const char *const prof_value_opts[] = {
    "--backend", "--model", "--gpu", "--tp", "-o", "--output", "--budget-s", "--max-tokens", NULL};

/* Parses argv into *o. Returns 0, or the exit code of a usage error (2,
 * printed). */
static int parse_args(int argc, char **argv, prof_opts *o) {
    const char *backend = "cuda", *tp_list = "1";
    char buf[256], *tok, *next;
    int i, max_tokens = 0;
    memset(o, 0, sizeof *o);
    o->budget_s = 300;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = rt_has_value(argc, argv, i);
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return -1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "--dry-run") == 0) {
            o->dry_run = 1;
        } else if (strcmp(a, "--warm-l2") == 0) {
            o->warm_l2 = 1;
        } else if (strcmp(a, "--backend") == 0 && has_val) {
            backend = argv[++i];
        } else if (strcmp(a, "--model") == 0 && has_val) {
            o->model_name = argv[++i];
        } else if (strcmp(a, "--gpu") == 0 && has_val) {
            o->gpu_name = argv[++i];
        } else if (strcmp(a, "--tp") == 0 && has_val) {
            tp_list = argv[++i];
        } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && has_val) {
            o->out_dir = argv[++i];
        } else if (strcmp(a, "--budget-s") == 0 && has_val) {
            int prc = rt_parse_num(argv[++i], 0, 1e7, &o->budget_s);
            if (prc != 0 || !(o->budget_s > 0)) {
                fprintf(stderr,
                        "kvfleet profile: --budget-s: expected seconds in (0, 1e7], got '%s'\n",
                        argv[i]);
                return prc != 0 ? rt_value_exit(prc) : RT_EXIT_INPUT; /* 0 s: out of range */
            }
        } else if (strcmp(a, "--max-tokens") == 0 && has_val) {
            long long v;
            int prc = rt_parse_int(argv[++i], 16, 1 << 20, &v);
            if (prc != 0) {
                fprintf(stderr,
                        "kvfleet profile: --max-tokens: expected an integer in 16..1048576, "
                        "got '%s'\n",
                        argv[i]);
                return rt_value_exit(prc);
            }
            max_tokens = (int)v;
        } else {
            rt_arg_refuse("kvfleet profile", a, prof_value_opts);
            usage(stderr);
            return 2;
        }
    }
    if (strcmp(backend, "cuda") == 0) {
        o->cuda = 1;
    } else if (strcmp(backend, "cpu") != 0) {
        fprintf(stderr, "kvfleet profile: --backend: expected one of: cuda, cpu, got '%s'\n",
                backend);
        return 1; /* an unknown name: bad input (docs/cli.md) */
    }
    if (o->model_name == NULL || o->gpu_name == NULL) {
        fprintf(stderr, "kvfleet profile: %s: expected a preset name, got nothing\n",
                o->model_name == NULL ? "--model" : "--gpu");
        usage(stderr);
        return 2;
    }
    o->max_tokens = max_tokens > 0 ? max_tokens : o->cuda ? 16384 : 128;
    snprintf(buf, sizeof buf, "%s", tp_list);
    for (tok = buf; tok != NULL; tok = next) {
        long v;
        int j;
        next = strchr(tok, ',');
        if (next != NULL)
            *next++ = '\0';
        v = parse_int(tok, 64);
        if (v < 0 || o->n_tp == PROF_MAX_TP) {
            fprintf(stderr,
                    "kvfleet profile: --tp: expected up to %d integers in 1..64, comma "
                    "separated, got '%s'\n",
                    PROF_MAX_TP, tp_list);
            /* an integer out of 1..64 is out of range (1); the rest, form (2) */
            return v < 0 && rt_int_form(tok) && o->n_tp < PROF_MAX_TP ? 1 : 2;
        }
        for (j = 0; j < o->n_tp && o->tps[j] != (int)v; j++)
            ;
        if (j == o->n_tp)
            o->tps[o->n_tp++] = (int)v;
    }
    return 0;
}

/* Prints what the sweep would measure and allocate (--dry-run). */
static void print_plan(const prof *p, const char *tps) {
    int n[6] = {0}, i;
    for (i = 0; i < p->n_shape; i++) {
        const prof_shape *s = &p->shape[i];
        n[s->kind == PK_PREFILL && s->cached > 0 ? 5 : s->kind]++;
    }
    if (p->o.json) {
        json_t *o = json_object(), *tp = json_array();
        json_object_set_new(o, "dry_run", json_true());
        json_object_set_new(o, "backend", json_string(p->o.cuda ? "cuda" : "cpu"));
        json_object_set_new(o, "gpu", json_string(p->gpu.name));
        json_object_set_new(o, "model", json_string(p->model.name));
        for (i = 0; i < p->o.n_tp; i++)
            json_array_append_new(tp, json_integer(p->o.tps[i]));
        json_object_set_new(o, "tp", tp);
        json_object_set_new(o, "max_tokens", json_integer(p->o.max_tokens));
        json_object_set_new(o, "shapes", json_integer(p->n_shape));
        json_object_set_new(o, "series", json_integer(p->n_series));
        json_object_set_new(o, "gemm", json_integer(n[PK_GEMM]));
        json_object_set_new(o, "attn_decode", json_integer(n[PK_DECODE]));
        json_object_set_new(o, "attn_prefill", json_integer(n[PK_PREFILL]));
        json_object_set_new(o, "attn_prefill_cached", json_integer(n[5]));
        json_object_set_new(o, "elementwise", json_integer(n[PK_ELEM]));
        json_object_set_new(o, "sample", json_integer(n[PK_SAMPLE]));
        json_object_set_new(o, "operand_bytes", json_integer((json_int_t)p->arena_bytes));
        json_object_set_new(o, "kv_bytes", json_integer((json_int_t)(p->n_kv * 2)));
        json_object_set_new(o, "flush_bytes", json_integer((json_int_t)p->flush_bytes));
        json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(o);
        return;
    }
    printf("kvfleet profile: dry run: %s, %s on %s at TP %s, tokens up to %d\n",
           p->o.cuda ? "cuda" : "cpu", p->model.name, p->gpu.name, tps, p->o.max_tokens);
    printf("%d shapes in %d series: gemm %d, attn_decode %d, attn_prefill %d (+%d after cached "
           "tokens), elementwise %d, sample %d\n",
           p->n_shape, p->n_series, n[PK_GEMM], n[PK_DECODE], n[PK_PREFILL], n[5], n[PK_ELEM],
           n[PK_SAMPLE]);
    printf("operands %.2f GB (inputs %.2f, outputs %.2f, KV %.2f, L2 flush %.2f)\n",
           (double)p->arena_bytes / 1e9, (double)p->n_in * 2 / 1e9, (double)p->n_out * 2 / 1e9,
           (double)p->n_kv * 2 / 1e9, (double)p->flush_bytes / 1e9);
}

/* Frees what rt_main_profile set up. */
static void prof_fini(prof *p) {
    operands_fini(p);
    sim_rng_destroy(p->rng);
    p->rng = NULL;
    SIM_FREE(p->shape);
    SIM_FREE(p->series);
}

/* The `kvfleet profile` command (usage above; exit codes in profile.h).
 * Bad input is refused before the device is touched, and the output folder
 * is created before the sweep, so that a long sweep cannot end in an
 * unwritable folder. */
int rt_main_profile(int argc, char **argv) {
    prof p;
    sim_err err;
    char msg[1200], dir[300], tps[64];
    json_t *desc = NULL;
    size_t at;
    int rc, i, code = 0;

    memset(&p, 0, sizeof p);
    sim_err_clear(&err);
    if ((code = parse_args(argc, argv, &p.o)) != 0)
        return code < 0 ? 0 : code;
    p.t0 = rt_now_s();
    p.deadline = p.t0 + p.o.budget_s;
    p.last_progress = p.t0;
    code = 1; /* bad input until the device is reached */
    if ((rc = sim_gpu_load(p.o.gpu_name, rt_datadir(), &p.gpu, &err)) != SIM_OK ||
        (rc = sim_model_load(p.o.model_name, rt_datadir(), &p.model, &err)) != SIM_OK)
        goto fail;
    for (i = 0, at = 0; i < p.o.n_tp; i++) {
        if ((rc = sim_model_check(&p.model, p.o.tps[i], &err)) != SIM_OK)
            goto fail;
        at += (size_t)snprintf(tps + at, sizeof tps - at, "%s%d", i ? "," : "", p.o.tps[i]);
    }
    if (!p.o.cuda && sim_model_params(&p.model) > BE_CPU_MAX_PARAMS) {
        sim_err_set(&err, "", 0, 0,
                    "--backend cpu: expected a model of at most %.0fM parameters, got '%s' "
                    "(%.0fM): the cpu backend runs tiny shapes only; use --model tiny",
                    BE_CPU_MAX_PARAMS / 1e6, p.model.name, sim_model_params(&p.model) / 1e6);
        goto fail;
    }
    code = 3;
    if ((p.rng = sim_rng_create(1, SIM_RNG_WEIGHTS)) == NULL || shapes_build(&p) != SIM_OK) {
        sim_err_set(&err, "", 0, 0, "out of host memory building the shapes");
        goto fail;
    }
    operands_plan(&p);
    if (p.o.dry_run)
        print_plan(&p, tps);
    if (p.o.cuda && (double)p.arena_bytes > p.gpu.hbm_bytes) {
        sim_err_set(&err, "", 0, 0,
                    "--backend cuda: the operands of the largest shapes (%.2f GB: inputs %.2f, "
                    "outputs %.2f, KV %.2f) do not fit the %.0f GB of HBM of a %s; use a larger "
                    "--tp or a smaller --max-tokens",
                    (double)p.arena_bytes / 1e9, (double)p.n_in * 2 / 1e9,
                    (double)p.n_out * 2 / 1e9, (double)p.n_kv * 2 / 1e9, p.gpu.hbm_bytes / 1e9,
                    p.gpu.name);
        code = 1;
        goto fail;
    }
    if (p.o.dry_run) {
        prof_fini(&p);
        return 0;
    }
    if (p.o.cuda) {
#ifndef KV_HAVE_CUDA
        sim_err_set(&err, "", 0, 0,
                    "--backend cuda: this build has no CUDA (configure found no working nvcc, or "
                    "ran with --without-cuda); --backend cpu runs the plumbing check");
        goto fail;
#else
        if (kern_device_count() < 1) {
            sim_err_set(&err, "", 0, 0, "--backend cuda: no CUDA device: %s",
                        kern_last_error()[0] ? kern_last_error() : "cudaGetDeviceCount found none");
            goto fail;
        }
#endif
    }
    if (p.o.out_dir == NULL) {
        snprintf(dir, sizeof dir, "profile-%s", p.gpu.name);
        p.o.out_dir = dir;
    }
    /* made, or an existing name a folder we can write in, before the sweep */
    switch (sim_dir_ready(p.o.out_dir)) {
        case SIM_DIR_OK:
            break;
        case SIM_DIR_MKDIR:
        case SIM_DIR_STAT:
            sim_err_set(&err, p.o.out_dir, 0, 0, "cannot create the folder: %s", strerror(errno));
            goto fail;
        case SIM_DIR_NOT_DIR:
            sim_err_set(&err, p.o.out_dir, 0, 0,
                        "cannot create the folder: a file of that name is there");
            goto fail;
        case SIM_DIR_NOT_WRITABLE:
            sim_err_set(&err, p.o.out_dir, 0, 0, "cannot write in the folder: %s", strerror(errno));
            goto fail;
    }
    if ((rc = operands_init(&p, &err)) != SIM_OK) {
        code = rc == SIM_EINFEASIBLE || rc == SIM_EINVAL ? 1 : 3;
        goto fail;
    }
    fprintf(stderr,
            "kvfleet profile: %s on %s, %s at TP %s: %d shapes in %d series, %.0f s budget, "
            "%.2f GB of operands%s%s\n",
            p.o.cuda ? "cuda" : "cpu", p.gpu.name, p.model.name, tps, p.n_shape, p.n_series,
            p.o.budget_s, (double)p.arena_bytes / 1e9, p.o.cuda ? "" : "; ",
            p.o.cuda ? "" : cpu_label);
    if ((rc = sweep(&p, &err)) != SIM_OK)
        goto fail;
    progress(&p, NULL, 1);
    if (p.cut)
        fprintf(stderr,
                "kvfleet profile: the budget ended the sweep: %d of %d shapes measured; the "
                "rest skipped (raise --budget-s for all)\n",
                p.n_done, p.n_shape);
    if ((rc = write_all(&p, &desc, &err)) != SIM_OK)
        goto fail;
    if (p.o.json) {
        json_dumpf(desc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        fputc('\n', stdout);
    } else {
        printf("kvfleet profile: %s, %s on %s (%s)\n", p.o.cuda ? "cuda" : "cpu", p.model.name,
               p.gpu.name, p.o.cuda ? "measured on the GPU" : cpu_label);
        printf("%d of %d shapes measured%s; wrote %s/{gemm,generation_attention,"
               "context_attention,context_attention_chunked,vidur_layer_ops,sample}.csv and "
               "profile.json\n",
               p.n_done, p.n_shape, p.cut ? " (budget spent)" : "", p.o.out_dir);
        printf("next: kvfleet calibrate --gpu %s --model %s --profiles %s -o calib.json\n",
               p.gpu.name, p.model.name, p.o.out_dir);
    }
    json_decref(desc);
    prof_fini(&p);
    return 0;

fail:
    sim_err_format(&err, msg, sizeof msg);
    fprintf(stderr, "kvfleet profile: %s\n", msg);
    prof_fini(&p);
    return code;
}
