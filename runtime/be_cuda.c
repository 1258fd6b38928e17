/* be_cuda.c: the cuda executor: every scheduled batch runs layer by layer
 * on the GPU with kernels/ (compiled only in CUDA builds; see backends.h).
 *
 * The model is the configured shape (its first N layers with --layers N;
 * every report then says so) with random bf16 weights, on one GPU (TP 1).
 * Its paged KV cache holds the block pool the simulator sizes (be_args:
 * kv_blocks of block_tokens tokens per replica), in the layout of kern.h,
 * one allocation per replica. A step is the same program as the cpu
 * executor's (be_cpu.c), with the CUDA launchers instead of the CPU
 * references and bf16 storage:
 *
 *     x = embed[tokens]; per layer: rmsnorm, qkv gemm, rope, kv_save,
 *     prefill and decode attention, o gemm, add, rmsnorm, gate/up gemm,
 *     silu_mul, down gemm, add; then the sampled rows: rmsnorm, lm_head,
 *     argmax.
 *
 * Timing. The host builds the step's index arrays (tokens, positions, KV
 * slots, block tables, context lengths, cu_seqlens, sampled rows) in pinned
 * memory and copies them in one transfer: that is host_s. The step's span
 * on the GPU, from an event recorded before the first kernel to one after
 * the last, is meas_s and the duration the event loop advances by. With
 * --op-timing an event pair also brackets every operator; the per-operator
 * totals (names of the perf model) are printed on stderr when the backend
 * closes. Steps are launched one kernel at a time (no CUDA graph yet); the
 * host's time from the first event to the last (issuing the kernels) is
 * summed too, and the closing line on stderr gives it per step against the
 * GPU span, with the steps it bound (issue >= 90% of the span).
 *
 * Weights. Each tensor is filled from a random tile (at most 1 Mi values,
 * uniform in +-1/sqrt(fan_in), norms 1 +- 0.1, from the weights stream of
 * the run's seed) repeated over its length: a multi-billion-parameter model
 * loads in seconds, and the values only have to be plausible; timing does
 * not depend on them.
 *
 * Errors. No device, a failed CUDA or cuBLAS call: SIM_EDEVICE with the
 * call and the reason (kern_last_error) in *err (exit code 3). Weights and
 * KV that do not fit the device: SIM_EINFEASIBLE naming the sizes (exit
 * code 1). A failed step stops the run, which is then marked failed.
 *
 * Status: compiled, never run (no GPU where it was written;
 * docs/backends.md). Non-goals: TP > 1, fp8 weights or KV, kv_copy (swap
 * is modelled, not run), CUDA graphs. */
#include "config.h"
#include "backends.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "be_cpu.h"
#include "cli.h"
#include "kern.h"
#include "mem.h"
#include "rng.h"

#define CU_TILE (1 << 20) /* values in one random weight tile */

typedef struct cu_layer {
    void *attn_norm, *wqkv, *wo, *mlp_norm, *w_gate_up, *w_down; /* bf16, device */
} cu_layer;

/* Offsets (int32 elements) of the index arrays of one step in h_idx/d_idx. */
typedef struct cu_idx {
    size_t tok, pos, slot, ctx, cu, rows, tab, arg, total;
    int mb; /* block-table row length this step */
} cu_idx;

typedef struct cu_ctx {
    kern_ctx *kc;
    void *stream;
    void *ev_start, *ev_stop;
    int op_timing;
    void **ev_op; /* (2 * max_ops) with op_timing */
    int *op_of;   /* (max_ops) perf op of each bracket */
    int max_ops, n_ops;
    double op_ms[PERF_N_OPS];
    int64_t n_steps;
    double issue_s, span_s; /* host seconds issuing, GPU seconds spanned, all steps */
    int64_t n_host_bound;   /* steps whose issue took at least 90% of their span */
    /* model */
    int L, hidden, H, Hkv, D, I, V, qd, max_pos;
    float norm_eps;    /* sim_model_norm_eps */
    double rope_theta; /* sim_model_rope_theta */
    void *d_weights;   /* every weight, one allocation */
    void *d_embed, *d_final_norm, *d_lm_head;
    cu_layer *layer;
    float *d_rope; /* (max_pos, D) */
    /* KV */
    kern_kv_layout kv;
    int n_replicas;
    void **d_cache; /* (n_replicas) */
    /* activations, bf16 */
    int64_t max_rows;
    int max_seqs, mb_max;
    void *d_x, *d_xn, *d_qkv, *d_attn, *d_proj, *d_gu, *d_act, *d_hid, *d_hidn, *d_logits;
    void *d_work;
    size_t work_bytes;
    int32_t *d_idx, *h_idx;
    size_t idx_cap; /* int32 elements */
    sched_seq **dec;
} cu_ctx;

/* ---- helpers ---- */

/* Fills *err with a failed CUDA call and returns SIM_EDEVICE (or rc). */
static int dev_fail(sim_err *err, int rc, const char *what) {
    sim_err_set(err, "", 0, 0, "--backend cuda: %s: %s (%s)", what, kern_last_error(),
                sim_strerror(rc));
    return rc;
}

static void cu_close(void *ctx) {
    cu_ctx *c = ctx;
    int r, i;
    if (c == NULL)
        return;
    if (c->n_steps > 0)
        fprintf(stderr,
                "kvfleet: cuda executor: %lld steps, mean %.3f ms issuing kernels on the host, "
                "%.3f ms on the GPU; %lld steps host-bound (issue >= 90%% of the GPU span)\n",
                (long long)c->n_steps, c->issue_s / (double)c->n_steps * 1e3,
                c->span_s / (double)c->n_steps * 1e3, (long long)c->n_host_bound);
    if (c->op_timing && c->n_steps > 0) {
        fprintf(stderr,
                "kvfleet: cuda op timing over %lld steps (ms, all layers):", (long long)c->n_steps);
        for (i = 0; i < PERF_N_OPS; i++)
            if (c->op_ms[i] > 0)
                fprintf(stderr, " %s %.3f", perf_op_name((enum perf_op)i), c->op_ms[i]);
        fprintf(stderr, "\n");
    }
    if (c->stream)
        kern_sync(c->stream);
    if (c->ev_op)
        for (i = 0; i < 2 * c->max_ops; i++)
            kern_event_destroy(&c->ev_op[i]);
    sim_free(c->ev_op);
    sim_free(c->op_of);
    kern_event_destroy(&c->ev_start);
    kern_event_destroy(&c->ev_stop);
    if (c->d_cache)
        for (r = 0; r < c->n_replicas; r++)
            kern_free(&c->d_cache[r]);
    sim_free(c->d_cache);
    kern_free(&c->d_weights);
    kern_free((void **)&c->d_rope);
    kern_free(&c->d_x);
    kern_free(&c->d_xn);
    kern_free(&c->d_qkv);
    kern_free(&c->d_attn);
    kern_free(&c->d_proj);
    kern_free(&c->d_gu);
    kern_free(&c->d_act);
    kern_free(&c->d_hid);
    kern_free(&c->d_hidn);
    kern_free(&c->d_logits);
    kern_free(&c->d_work);
    kern_free((void **)&c->d_idx);
    kern_host_free((void **)&c->h_idx);
    sim_free(c->layer);
    sim_free(c->dec);
    kern_ctx_destroy(c->kc);
    kern_stream_destroy(&c->stream);
    sim_free(c);
}

/* Device allocation of n bytes; a CUDA out-of-memory becomes
 * SIM_EINFEASIBLE (the configuration does not fit), naming what. */
static int dev_alloc(void **p, size_t n, const char *what, sim_err *err) {
    int rc = kern_malloc(p, n);
    if (rc == SIM_OK)
        return SIM_OK;
    if (strstr(kern_last_error(), "out of memory")) {
        sim_err_set(err, "", 0, 0,
                    "--backend cuda: %s (%.2f GB) does not fit the device: %s; use a smaller "
                    "model, --layers N, --kv-blocks N or --max-batched-tokens N",
                    what, (double)n / 1e9, kern_last_error());
        return SIM_EINFEASIBLE;
    }
    return dev_fail(err, rc, what);
}

/* Fills n bf16 values at d_dst from a random tile of min(n, CU_TILE)
 * values in center +- half, repeated. */
static int fill_weight(void *d_dst, size_t n, gsl_rng *r, kern_bf16 *tile, float center, float half,
                       sim_err *err) {
    size_t m = n < CU_TILE ? n : CU_TILE, i, done;
    int rc;
    for (i = 0; i < m; i++)
        tile[i] = kern_bf16_from_f32(center + half * (float)(2.0 * gsl_rng_uniform(r) - 1.0));
    for (done = 0; done < n; done += m) {
        size_t k = n - done < m ? n - done : m;
        if ((rc = kern_memcpy_h2d((kern_bf16 *)d_dst + done, tile, k * sizeof *tile)) != SIM_OK)
            return dev_fail(err, rc, "copying the weights");
    }
    return SIM_OK;
}

/* Allocates and fills every weight, and the RoPE table. */
static int weights_init(cu_ctx *c, const sim_model *m, uint64_t seed, sim_err *err) {
    const size_t h = (size_t)c->hidden, hd = (size_t)c->H * c->D, qd = (size_t)c->qd;
    const size_t I = (size_t)c->I, V = (size_t)c->V;
    const size_t per_layer = 2 * h + qd * h + h * hd + 2 * I * h + h * I;
    const int tied = m->tied_embeddings;
    size_t total = V * h + (size_t)c->L * per_layer + h + (tied ? 0 : V * h), at = 0;
    kern_bf16 *tile = NULL;
    float *rope = NULL;
    gsl_rng *r = NULL;
    int rc, l;
    c->layer = SIM_NEW_ARRAY(cu_layer, (size_t)c->L);
    tile = SIM_NEW_ARRAY(kern_bf16, CU_TILE);
    rope = SIM_NEW_ARRAY(float, (size_t)c->max_pos * c->D);
    r = sim_rng_create(seed, SIM_RNG_WEIGHTS);
    if (c->layer == NULL || tile == NULL || rope == NULL || r == NULL) {
        sim_err_set(err, "", 0, 0, "--backend cuda: out of host memory for the weights");
        rc = SIM_ENOMEM;
        goto out;
    }
    if ((rc = dev_alloc(&c->d_weights, total * sizeof(kern_bf16), "the weights", err)) != SIM_OK)
        goto out;
#define CU_TAKE(ptr, n, center, half)                                                              \
    do {                                                                                           \
        (ptr) = (kern_bf16 *)c->d_weights + at;                                                    \
        at += (n);                                                                                 \
        if ((rc = fill_weight((ptr), (n), r, tile, (center), (half), err)) != SIM_OK)              \
            goto out;                                                                              \
    } while (0)
    CU_TAKE(c->d_embed, V * h, 0.0f, 1.0f);
    for (l = 0; l < c->L; l++) {
        cu_layer *Ly = &c->layer[l];
        CU_TAKE(Ly->attn_norm, h, 1.0f, 0.1f);
        CU_TAKE(Ly->wqkv, qd * h, 0.0f, 1.0f / sqrtf((float)h));
        CU_TAKE(Ly->wo, h * hd, 0.0f, 1.0f / sqrtf((float)hd));
        CU_TAKE(Ly->mlp_norm, h, 1.0f, 0.1f);
        CU_TAKE(Ly->w_gate_up, 2 * I * h, 0.0f, 1.0f / sqrtf((float)h));
        CU_TAKE(Ly->w_down, h * I, 0.0f, 1.0f / sqrtf((float)I));
    }
    CU_TAKE(c->d_final_norm, h, 1.0f, 0.1f);
    if (tied)
        c->d_lm_head = c->d_embed;
    else
        CU_TAKE(c->d_lm_head, V * h, 0.0f, 1.0f / sqrtf((float)h));
#undef CU_TAKE
    SIM_ASSERT(at == total);
    if ((rc = kern_rope_cache_ref(rope, c->max_pos, c->D, c->rope_theta)) != SIM_OK) {
        sim_err_set(err, "", 0, 0, "--backend cuda: RoPE table: %s", kern_last_error());
        goto out;
    }
    if ((rc = dev_alloc((void **)&c->d_rope, (size_t)c->max_pos * c->D * sizeof(float),
                        "the RoPE table", err)) != SIM_OK)
        goto out;
    if ((rc = kern_memcpy_h2d(c->d_rope, rope, (size_t)c->max_pos * c->D * sizeof(float))) !=
        SIM_OK)
        rc = dev_fail(err, rc, "copying the RoPE table");
out:
    sim_free(tile);
    sim_free(rope);
    sim_rng_destroy(r);
    return rc;
}

/* ---- open ---- */

/* What the executor refuses before touching the device. */
static int cu_check(const be_args *a, sim_err *err) {
    const sim_model *m = &a->perf->model;
    if (a->perf->tp != 1) {
        sim_err_set(err, "", 0, 0,
                    "--tp: expected 1 with --backend cuda (one GPU per replica so far), got '%d'",
                    a->perf->tp);
        return SIM_ENOTSUP;
    }
    if (a->replicas > 1) {
        /* every replica's pool would be sized for a whole GPU and land on
         * the one current device */
        sim_err_set(err, "", 0, 0,
                    "--replicas: expected 1 with --backend cuda (it drives one GPU; replicas on "
                    "GPUs of their own are not built yet), got '%d'",
                    a->replicas);
        return SIM_ENOTSUP;
    }
    if (m->w_dtype != SIM_DT_BF16 || m->kv_dtype != SIM_DT_BF16) {
        sim_err_set(err, "", 0, 0,
                    "--dtype, --kv-dtype: expected bf16 with --backend cuda (its weights and KV "
                    "are bf16, and the prediction must be too), got '%s' and '%s'; pass --dtype "
                    "bf16",
                    sim_dtype_name(m->w_dtype), sim_dtype_name(m->kv_dtype));
        return SIM_ENOTSUP;
    }
    if (m->head_dim > KERN_ATTN_MAX_HEAD_DIM || m->head_dim % 2 != 0 ||
        m->n_heads % m->n_kv_heads != 0 || a->kv_blocks < 1 || a->kv_blocks > INT32_MAX) {
        sim_err_set(err, "", 0, 0,
                    "%s: expected an even head_dim <= %d, heads divisible by KV heads and 1.. "
                    "2^31-1 KV blocks, got head_dim %d, %d heads, %d KV heads, %lld blocks",
                    m->name, KERN_ATTN_MAX_HEAD_DIM, m->head_dim, m->n_heads, m->n_kv_heads,
                    (long long)a->kv_blocks);
        return SIM_ENOTSUP;
    }
    return SIM_OK;
}

static int cu_open(void **ctx, const be_args *a, sim_err *err) {
    const sim_model *m = &a->perf->model;
    cu_ctx *c = NULL;
    size_t T, S, h, bytes, i;
    int rc, r, n_dev;
    *ctx = NULL;
    if ((rc = cu_check(a, err)) != SIM_OK)
        return rc;
    n_dev = kern_device_count();
    if (n_dev < 1) {
        sim_err_set(err, "", 0, 0, "--backend cuda: no CUDA device: %s",
                    kern_last_error()[0] ? kern_last_error() : "cudaGetDeviceCount found none");
        return SIM_EDEVICE;
    }
    c = SIM_NEW(cu_ctx);
    if (c == NULL)
        return SIM_ENOMEM;
    c->L = m->n_layers;
    c->hidden = m->hidden;
    c->H = m->n_heads;
    c->Hkv = m->n_kv_heads;
    c->D = m->head_dim;
    c->I = m->intermediate;
    c->V = m->vocab;
    c->qd = (c->H + 2 * c->Hkv) * c->D;
    c->max_pos = m->max_ctx;
    c->norm_eps = (float)sim_model_norm_eps(m);
    c->rope_theta = sim_model_rope_theta(m);
    c->max_rows = a->max_batched_tokens > 0 ? a->max_batched_tokens : 8192;
    c->max_seqs = a->max_num_seqs > 0 ? a->max_num_seqs : 256;
    c->mb_max = (m->max_ctx + a->block_tokens - 1) / a->block_tokens;
    c->op_timing = a->option && strcmp(a->option, "op-timing") == 0;
    c->n_replicas = a->replicas > 0 ? a->replicas : 1;
    if ((rc = kern_stream_create(&c->stream)) != SIM_OK ||
        (rc = kern_event_create(&c->ev_start)) != SIM_OK ||
        (rc = kern_event_create(&c->ev_stop)) != SIM_OK) {
        dev_fail(err, rc, "creating a stream and events");
        goto fail;
    }
    if ((rc = kern_ctx_create(&c->kc)) != SIM_OK) {
        dev_fail(err, rc, "creating the cuBLAS context");
        goto fail;
    }
    if (c->op_timing) {
        c->max_ops = 3 + 13 * c->L + 4;
        c->ev_op = SIM_NEW_ARRAY(void *, 2 * (size_t)c->max_ops);
        c->op_of = SIM_NEW_ARRAY(int, (size_t)c->max_ops);
        if (c->ev_op == NULL || c->op_of == NULL) {
            rc = SIM_ENOMEM;
            goto fail;
        }
        for (i = 0; i < 2 * (size_t)c->max_ops; i++)
            if ((rc = kern_event_create(&c->ev_op[i])) != SIM_OK) {
                dev_fail(err, rc, "creating the operator events");
                goto fail;
            }
    }
    if ((rc = weights_init(c, m, a->seed, err)) != SIM_OK)
        goto fail;
    /* the KV pools: the blocks the simulator sized */
    c->kv.n_layers = c->L;
    c->kv.n_blocks = (int)a->kv_blocks;
    c->kv.block_size = a->block_tokens;
    c->kv.n_kv_heads = c->Hkv;
    c->kv.head_dim = c->D;
    c->kv.dtype = KERN_DT_BF16;
    if (kern_kv_layout_check(&c->kv) != SIM_OK) {
        sim_err_set(err, "", 0, 0, "--backend cuda: KV layout: %s", kern_last_error());
        rc = SIM_EINVAL;
        goto fail;
    }
    c->d_cache = SIM_NEW_ARRAY(void *, (size_t)c->n_replicas);
    if (c->d_cache == NULL) {
        rc = SIM_ENOMEM;
        goto fail;
    }
    for (r = 0; r < c->n_replicas; r++)
        if ((rc = dev_alloc(&c->d_cache[r], kern_kv_cache_bytes(&c->kv), "the KV pool", err)) !=
            SIM_OK)
            goto fail;
    /* activations for the largest step */
    T = (size_t)c->max_rows;
    S = (size_t)c->max_seqs;
    h = (size_t)c->hidden;
    bytes = sizeof(kern_bf16);
    if ((rc = dev_alloc(&c->d_x, T * h * bytes, "activations", err)) ||
        (rc = dev_alloc(&c->d_xn, T * h * bytes, "activations", err)) ||
        (rc = dev_alloc(&c->d_qkv, T * (size_t)c->qd * bytes, "activations", err)) ||
        (rc = dev_alloc(&c->d_attn, T * (size_t)c->H * c->D * bytes, "activations", err)) ||
        (rc = dev_alloc(&c->d_proj, T * h * bytes, "activations", err)) ||
        (rc = dev_alloc(&c->d_gu, T * 2 * (size_t)c->I * bytes, "activations", err)) ||
        (rc = dev_alloc(&c->d_act, T * (size_t)c->I * bytes, "activations", err)) ||
        (rc = dev_alloc(&c->d_hid, S * h * bytes, "activations", err)) ||
        (rc = dev_alloc(&c->d_hidn, S * h * bytes, "activations", err)) ||
        (rc = dev_alloc(&c->d_logits, S * (size_t)c->V * bytes, "logits", err)))
        goto fail;
    c->work_bytes = kern_attn_decode_work_bytes(c->max_seqs, c->H, c->D, m->max_ctx);
    if (c->work_bytes > 0 &&
        (rc = dev_alloc(&c->d_work, c->work_bytes, "the decode attention workspace", err)))
        goto fail;
    c->idx_cap = 3 * T + 4 * S + 1 + S * (size_t)c->mb_max;
    if ((rc = dev_alloc((void **)&c->d_idx, c->idx_cap * sizeof(int32_t), "index arrays", err)))
        goto fail;
    if ((rc = kern_host_alloc((void **)&c->h_idx, c->idx_cap * sizeof(int32_t))) != SIM_OK) {
        dev_fail(err, rc, "allocating pinned host memory");
        goto fail;
    }
    c->dec = SIM_NEW_ARRAY(sched_seq *, S);
    if (c->dec == NULL) {
        rc = SIM_ENOMEM;
        goto fail;
    }
    *ctx = c;
    return SIM_OK;
fail:
    if (rc == SIM_ENOMEM && err && err->msg[0] == '\0')
        sim_err_set(err, "", 0, 0, "--backend cuda: out of host memory");
    cu_close(c);
    return rc;
}

/* ---- the step ---- */

/* Builds the step's index arrays in h_idx (layout in *x). Returns the row
 * count, or a negative code with *err set. */
static int64_t step_inputs(cu_ctx *c, int replica, const sched *s, const sched_batch *b, cu_idx *x,
                           int *n_dec, int *n_samp, int *max_q, int *max_ctx, sim_err *err) {
    const int bs = c->kv.block_size;
    int64_t rows = b->agg.prefill_tokens + b->n_decode, t = 0;
    int i, nd, ns = 0, n_seq = b->n_chunks + b->n_decode, mb = 1;
    int32_t *I = c->h_idx;
    if (rows > c->max_rows || n_seq > c->max_seqs) {
        sim_err_set(err, "", 0, 0,
                    "cuda backend: replica %d step %lld has %lld tokens in %d sequences, more "
                    "than the %lld tokens and %d sequences it was opened for",
                    replica, (long long)b->step, (long long)rows, n_seq, (long long)c->max_rows,
                    c->max_seqs);
        return SIM_EINVAL;
    }
    nd = sched_decode_list(s, c->dec, c->max_seqs);
    if (nd != b->n_decode) {
        sim_err_set(err, "", 0, 0,
                    "cuda backend: replica %d step %lld: the batch has %d decoding sequences, "
                    "the scheduler lists %d",
                    replica, (long long)b->step, b->n_decode, nd);
        return SIM_EINVAL;
    }
    for (i = 0; i < b->n_chunks; i++)
        mb = b->chunks[i].seq->n_blocks > mb ? b->chunks[i].seq->n_blocks : mb;
    for (i = 0; i < nd; i++)
        mb = c->dec[i]->n_blocks > mb ? c->dec[i]->n_blocks : mb;
    if (mb > c->mb_max)
        goto bad_table;
    x->mb = mb;
    x->tok = 0;
    x->pos = (size_t)rows;
    x->slot = 2 * (size_t)rows;
    x->ctx = 3 * (size_t)rows;
    x->cu = x->ctx + (size_t)n_seq;
    x->rows = x->cu + (size_t)b->n_chunks + 1;
    x->arg = x->rows + (size_t)n_seq;
    x->tab = x->arg + (size_t)n_seq;
    x->total = x->tab + (size_t)n_seq * mb;
    SIM_ASSERT(x->total <= c->idx_cap);
    *max_q = 0;
    *max_ctx = 0;
    I[x->cu] = 0;
    for (i = 0; i < b->n_chunks; i++) {
        const sched_chunk *ch = &b->chunks[i];
        const sched_seq *q = ch->seq;
        int64_t k;
        for (k = 0; k < ch->tokens; k++, t++) {
            int64_t pos = ch->cached + k;
            I[x->tok + t] = be_cpu_token(q->req.id, pos, c->V);
            I[x->pos + t] = (int32_t)pos;
            I[x->slot + t] = sched_seq_slot(q, pos, bs);
            if (I[x->slot + t] < 0)
                goto bad_table;
        }
        memcpy(I + x->tab + (size_t)i * mb, q->blocks, (size_t)q->n_blocks * sizeof(int32_t));
        I[x->ctx + i] = (int32_t)(ch->cached + ch->tokens);
        I[x->cu + i + 1] = (int32_t)t;
        *max_q = ch->tokens > *max_q ? (int)ch->tokens : *max_q;
        if (ch->samples)
            I[x->rows + ns++] = (int32_t)(t - 1);
    }
    for (i = 0; i < nd; i++, t++) {
        const sched_seq *q = c->dec[i];
        int64_t kv = sched_seq_kv_tokens(s, q), pos = kv - 1;
        I[x->tok + t] = be_cpu_token(q->req.id, pos, c->V);
        I[x->pos + t] = (int32_t)pos;
        I[x->slot + t] = sched_seq_slot(q, pos, bs);
        if (I[x->slot + t] < 0)
            goto bad_table;
        memcpy(I + x->tab + (size_t)(b->n_chunks + i) * mb, q->blocks,
               (size_t)q->n_blocks * sizeof(int32_t));
        I[x->ctx + b->n_chunks + i] = (int32_t)kv;
        *max_ctx = kv > *max_ctx ? (int)kv : *max_ctx;
        I[x->rows + ns++] = (int32_t)t;
    }
    *n_dec = nd;
    *n_samp = ns;
    return t;
bad_table:
    sim_err_set(err, "", 0, 0,
                "cuda backend: replica %d step %lld: a sequence's block table does not cover its "
                "tokens (scheduler and executor disagree)",
                replica, (long long)b->step);
    return SIM_EINVAL;
}

/* Brackets operator op with events when timing operators. */
static int op_begin(cu_ctx *c, enum perf_op op) {
    if (!c->op_timing || c->n_ops >= c->max_ops)
        return SIM_OK;
    c->op_of[c->n_ops] = (int)op;
    return kern_event_record(c->ev_op[2 * c->n_ops], c->stream);
}

static int op_end(cu_ctx *c) {
    if (!c->op_timing || c->n_ops >= c->max_ops)
        return SIM_OK;
    return kern_event_record(c->ev_op[2 * c->n_ops++ + 1], c->stream);
}

/* Runs op (a launcher call returning a status) between op events. */
#define CU_OP(op, call, name)                                                                      \
    do {                                                                                           \
        if ((rc = op_begin(c, (op))) != SIM_OK || (rc = (call)) != SIM_OK ||                       \
            (rc = op_end(c)) != SIM_OK) {                                                          \
            what = (name);                                                                         \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

static int cu_step(void *ctx, int replica, const sched *s, const sched_batch *b, be_result *out,
                   sim_err *err) {
    cu_ctx *c = ctx;
    const int H = c->H, Hkv = c->Hkv, D = c->D, hd = H * D, hidden = c->hidden, qd = c->qd;
    const float scale = 1.0f / sqrtf((float)D);
    const size_t es = sizeof(kern_bf16);
    const char *what = "";
    double t0 = rt_now_s(), t1, t2;
    float ms = 0;
    cu_idx x;
    int64_t T;
    int Tp, nd = 0, ns = 0, max_q = 0, max_ctx = 0, l, k, rc;
    void *cache, *st = c->stream;
    int32_t *d = c->d_idx;
    if (replica < 0 || replica >= c->n_replicas) {
        sim_err_set(err, "", 0, 0, "cuda backend: replica %d: expected 0..%d", replica,
                    c->n_replicas - 1);
        return SIM_EINVAL;
    }
    cache = c->d_cache[replica];
    T = step_inputs(c, replica, s, b, &x, &nd, &ns, &max_q, &max_ctx, err);
    if (T < 0)
        return (int)T;
    Tp = (int)(T - nd);
    if ((rc = kern_memcpy_h2d(c->d_idx, c->h_idx, x.total * sizeof(int32_t))) != SIM_OK) {
        what = "copying the step's index arrays";
        goto fail;
    }
    t1 = rt_now_s();
    c->n_ops = 0;
    if ((rc = kern_event_record(c->ev_start, st)) != SIM_OK) {
        what = "cudaEventRecord";
        goto fail;
    }
    CU_OP(PERF_OP_EMBED,
          kern_embed(c->d_x, c->d_embed, d + x.tok, (int)T, hidden, c->V, KERN_DT_BF16, st),
          "embed");
    for (l = 0; l < c->L; l++) {
        const cu_layer *Ly = &c->layer[l];
        char *layer = (char *)cache + (size_t)l * kern_kv_layer_stride(&c->kv) * es;
        char *q = c->d_qkv, *kk = (char *)c->d_qkv + (size_t)hd * es;
        char *v = (char *)c->d_qkv + (size_t)(hd + Hkv * D) * es;
        CU_OP(PERF_OP_NORM,
              kern_rmsnorm(c->d_xn, c->d_x, Ly->attn_norm, (int)T, hidden, c->norm_eps,
                           KERN_DT_BF16, st),
              "rmsnorm");
        CU_OP(PERF_OP_QKV_PROJ,
              kern_gemm(c->kc, c->d_qkv, c->d_xn, Ly->wqkv, (int)T, qd, hidden, KERN_DT_BF16, 1.0f,
                        st),
              "qkv gemm");
        CU_OP(PERF_OP_ROPE,
              kern_rope(q, qd, kk, qd, c->d_rope, c->max_pos, d + x.pos, (int)T, H, Hkv, D, D,
                        KERN_DT_BF16, st),
              "rope");
        CU_OP(PERF_OP_KV_SAVE, kern_kv_save(layer, &c->kv, kk, qd, v, qd, d + x.slot, (int)T, st),
              "kv_save");
        if (b->n_chunks > 0)
            CU_OP(PERF_OP_ATTN_PREFILL,
                  kern_attn_prefill(c->d_attn, q, qd, layer, &c->kv, d + x.tab, x.mb, d + x.cu,
                                    d + x.ctx, b->n_chunks, Tp, H, max_q, scale, st),
                  "prefill attention");
        if (nd > 0)
            CU_OP(PERF_OP_ATTN_DECODE,
                  kern_attn_decode(
                      (char *)c->d_attn + (size_t)Tp * hd * es, q + (size_t)Tp * qd * es, qd, layer,
                      &c->kv, d + x.tab + (size_t)b->n_chunks * x.mb, x.mb, d + x.ctx + b->n_chunks,
                      nd, H, max_ctx, scale, c->d_work, c->work_bytes, st),
                  "decode attention");
        CU_OP(PERF_OP_O_PROJ,
              kern_gemm(c->kc, c->d_proj, c->d_attn, Ly->wo, (int)T, hidden, hd, KERN_DT_BF16, 1.0f,
                        st),
              "o gemm");
        CU_OP(PERF_OP_NORM, kern_add(c->d_x, c->d_proj, T * hidden, KERN_DT_BF16, st), "add");
        CU_OP(PERF_OP_NORM,
              kern_rmsnorm(c->d_xn, c->d_x, Ly->mlp_norm, (int)T, hidden, c->norm_eps, KERN_DT_BF16,
                           st),
              "rmsnorm");
        CU_OP(PERF_OP_MLP_UP,
              kern_gemm(c->kc, c->d_gu, c->d_xn, Ly->w_gate_up, (int)T, 2 * c->I, hidden,
                        KERN_DT_BF16, 1.0f, st),
              "gate/up gemm");
        CU_OP(PERF_OP_MLP_ACT, kern_silu_mul(c->d_act, c->d_gu, (int)T, c->I, KERN_DT_BF16, st),
              "silu_mul");
        CU_OP(PERF_OP_MLP_DOWN,
              kern_gemm(c->kc, c->d_proj, c->d_act, Ly->w_down, (int)T, hidden, c->I, KERN_DT_BF16,
                        1.0f, st),
              "down gemm");
        CU_OP(PERF_OP_NORM, kern_add(c->d_x, c->d_proj, T * hidden, KERN_DT_BF16, st), "add");
    }
    CU_OP(PERF_OP_EMBED,
          kern_embed(c->d_hid, c->d_x, d + x.rows, ns, hidden, (int)T, KERN_DT_BF16, st),
          "gathering the sampled rows");
    CU_OP(PERF_OP_NORM,
          kern_rmsnorm(c->d_hidn, c->d_hid, c->d_final_norm, ns, hidden, c->norm_eps, KERN_DT_BF16,
                       st),
          "final rmsnorm");
    CU_OP(PERF_OP_LM_HEAD,
          kern_gemm(c->kc, c->d_logits, c->d_hidn, c->d_lm_head, ns, c->V, hidden, KERN_DT_BF16,
                    1.0f, st),
          "lm_head gemm");
    CU_OP(PERF_OP_SAMPLE, kern_argmax(d + x.arg, c->d_logits, ns, c->V, KERN_DT_BF16, st),
          "argmax");
    if ((rc = kern_event_record(c->ev_stop, st)) != SIM_OK) {
        what = "cudaEventRecord";
        goto fail;
    }
    t2 = rt_now_s();
    if ((rc = kern_event_elapsed_ms(c->ev_start, c->ev_stop, &ms)) != SIM_OK) {
        what = "the step (synchronising)";
        goto fail;
    }
    for (k = 0; k < c->n_ops; k++) {
        float op_ms = 0;
        if ((rc = kern_event_elapsed_ms(c->ev_op[2 * k], c->ev_op[2 * k + 1], &op_ms)) != SIM_OK) {
            what = "reading the operator events";
            goto fail;
        }
        c->op_ms[c->op_of[k]] += op_ms;
    }
    c->n_steps++;
    c->issue_s += t2 - t1;
    c->span_s += (double)ms * 1e-3;
    c->n_host_bound += t2 - t1 >= 0.9 * (double)ms * 1e-3;
    out->meas_s = (double)ms * 1e-3;
    out->dur_s = out->meas_s;
    out->host_s = t1 - t0;
    return SIM_OK;
fail:
    sim_err_set(err, "", 0, 0, "cuda backend: %s failed at replica %d step %lld: %s (%s)", what,
                replica, (long long)b->step, kern_last_error(), sim_strerror(rc));
    return rc;
}

static int cu_supports(void *ctx, const char *feature) {
    (void)ctx;
    return strcmp(feature, "tp>1") != 0 && strcmp(feature, "fp8") != 0 &&
           strcmp(feature, "kv_copy") != 0;
}

const struct be_ops be_cuda_ops = {
    .version = BE_VERSION,
    .name = "cuda",
    .open = cu_open,
    .step = cu_step,
    .kv_copy = NULL,
    .sync = NULL,
    .supports = cu_supports,
    .close = cu_close,
};
