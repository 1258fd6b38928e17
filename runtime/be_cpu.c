/* be_cpu.c: the cpu executor (see be_cpu.h).
 *
 * A Llama-style decoder with random fp32 weights of the configured shape
 * runs every scheduled batch on the CPU, with the kernels' CPU references
 * (kern_*_ref, fp32 variants) on a paged KV pool laid out as the CUDA
 * executor's (kern.h: (L, NB, 2, Hkv, bs, D), one pool per replica):
 *
 *     x = embed[tokens]                                       (T, hidden)
 *     per layer:
 *         qkv = rmsnorm(x) . wqkv^T; rope(q, k); kv_save(k, v -> slots)
 *         a = attention(q) over the paged pool: prefill chunks causally,
 *             decoding sequences over their whole context
 *         x += a . wo^T
 *         x += silu_mul(rmsnorm(x) . w_gate_up^T) . w_down^T
 *     logits = rmsnorm(x[sampled rows]) . lm_head^T; tokens = argmax
 *
 * Rows of a step: the prefill chunks' tokens in chunk order, then one row
 * per decoding sequence (sched_decode_list order). The scheduler has
 * allocated the step's blocks before step() is called; the KV of cached
 * tokens is what earlier steps wrote, and a preempted sequence recomputes
 * into fresh blocks. Tokens are pseudo-tokens of (request, position)
 * (be_cpu_token), prompt and output alike, so a recompute writes exactly
 * the KV it lost and the sampled tokens never steer anything: the
 * scheduler alone decides, as with every executor.
 *
 * Invariants: buffers are sized in open() for the largest step
 * (max_batched_tokens rows, max_num_seqs sequences) and step() allocates
 * nothing; a step larger than that is an error, never a reallocation.
 * Sizes: the tiny preset (2 layers, hidden 256, vocab 1024) has 1.8 M
 * parameters; open() refuses models above BE_CPU_MAX_PARAMS and pools
 * above BE_CPU_KV_MAX_BYTES.
 *
 * Timing: step() measures its own compute with CLOCK_MONOTONIC; that is
 * dur_s and meas_s (host_s is the time spent building the step's index
 * arrays). Measured durations make these runs exempt from bit-for-bit
 * determinism (docs/backends.md).
 *
 * Non-goals: speed (plain loops, one thread), tensor parallelism, swapping
 * (kv_copy is NULL: copies are modelled, not run). */
#include "config.h"
#include "be_cpu.h"

#include <math.h>
#include <string.h>

#include "cli.h"
#include "kern.h"
#include "mem.h"
#include "rng.h"

typedef struct cpu_replica {
    float *pool; /* (L, NB, 2, Hkv, bs, D) */
} cpu_replica;

typedef struct cpu_ctx {
    be_cpu_weights w;
    kern_kv_layout kv;
    int n_replicas;
    cpu_replica *rep;
    int64_t max_rows; /* tokens per step the buffers hold */
    int max_seqs;     /* sequences per step the buffers hold */
    int mb;           /* block-table row length: blocks of the model's context */
    int qkv_dim;      /* (H + 2 Hkv) D */
    /* step scratch (T = max_rows rows, S = max_seqs sequences) */
    float *x, *xn;          /* (T, hidden) residual and normed */
    float *qkv;             /* (T, qkv_dim) */
    float *attn;            /* (T, H D) */
    float *proj;            /* (T, hidden) */
    float *gu;              /* (T, 2 I) */
    float *act;             /* (T, I) */
    int32_t *tokens;        /* (T) */
    int32_t *positions;     /* (T) */
    int32_t *slots;         /* (T) */
    int32_t *tables;        /* (S, mb) block tables: prefill chunks, then decoding sequences */
    int32_t *ctx_lens;      /* (S) keys of each sequence, new tokens included */
    int32_t *cu;            /* (S + 1) cu_seqlens_q of the chunks */
    sched_seq **dec;        /* (S) decoding sequences */
    int32_t *rows;          /* (S) sampled rows */
    float *hid;             /* (S, hidden) final-normed hidden states of sampled rows */
    float *logits;          /* (S, V) */
    int32_t *argmax;        /* (S) */
    be_cpu_sample *samples; /* (S) */
    int n_samples;
} cpu_ctx;

/* ---- tokens and weights ---- */

int32_t be_cpu_token(uint64_t req_id, int64_t pos, int vocab) {
    /* splitmix64 of the pair: cheap, well mixed, the same on every host */
    uint64_t z = req_id * 0x9E3779B97F4A7C15ULL + (uint64_t)pos + 0x632BE59BD9B4E019ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return (int32_t)(z % (uint64_t)vocab);
}

int64_t be_cpu_kv_blocks_max(const sim_model *m, int block_tokens) {
    double block = 2.0 * m->n_layers * m->n_kv_heads * (double)m->head_dim * block_tokens * 4.0;
    return block > 0 ? (int64_t)(BE_CPU_KV_MAX_BYTES / block) : 0;
}

/* n values uniform in [center - half, center + half). */
static void fill_uniform(float *v, size_t n, gsl_rng *r, float center, float half) {
    size_t i;
    for (i = 0; i < n; i++)
        v[i] = center + half * (float)(2.0 * gsl_rng_uniform(r) - 1.0);
}

/* Allocates n floats into *p and fills them; SIM_ENOMEM on failure. */
static int alloc_fill(float **p, size_t n, gsl_rng *r, float center, float half) {
    *p = SIM_NEW_ARRAY(float, n);
    if (*p == NULL)
        return SIM_ENOMEM;
    fill_uniform(*p, n, r, center, half);
    return SIM_OK;
}

/* Random weights: linear layers uniform in +-1/sqrt(fan_in) (PyTorch's
 * nn.Linear default range), embeddings in +-1, norm weights in 1 +- 0.1;
 * drawn in a fixed order from the weights stream of the run's seed. */
static int weights_init(be_cpu_weights *w, const sim_model *m, uint64_t seed, int tied) {
    gsl_rng *r = sim_rng_create(seed, SIM_RNG_WEIGHTS);
    size_t h = (size_t)m->hidden, hd = (size_t)m->n_heads * m->head_dim;
    size_t qkv = (size_t)(m->n_heads + 2 * m->n_kv_heads) * m->head_dim;
    size_t inter = (size_t)m->intermediate, v = (size_t)m->vocab;
    int l, rc = SIM_ENOMEM;
    if (r == NULL)
        return SIM_ENOMEM;
    w->n_layers = m->n_layers;
    w->hidden = m->hidden;
    w->n_heads = m->n_heads;
    w->n_kv_heads = m->n_kv_heads;
    w->head_dim = m->head_dim;
    w->inter = m->intermediate;
    w->vocab = m->vocab;
    w->max_pos = m->max_ctx;
    w->norm_eps = (float)sim_model_norm_eps(m);
    w->rope_theta = sim_model_rope_theta(m);
    if (alloc_fill(&w->embed, v * h, r, 0.0f, 1.0f) != SIM_OK)
        goto out;
    w->layer = SIM_NEW_ARRAY(be_cpu_layer, (size_t)m->n_layers);
    if (w->layer == NULL)
        goto out;
    for (l = 0; l < m->n_layers; l++) {
        be_cpu_layer *L = &w->layer[l];
        if (alloc_fill(&L->attn_norm, h, r, 1.0f, 0.1f) != SIM_OK ||
            alloc_fill(&L->wqkv, qkv * h, r, 0.0f, 1.0f / sqrtf((float)h)) != SIM_OK ||
            alloc_fill(&L->wo, h * hd, r, 0.0f, 1.0f / sqrtf((float)hd)) != SIM_OK ||
            alloc_fill(&L->mlp_norm, h, r, 1.0f, 0.1f) != SIM_OK ||
            alloc_fill(&L->w_gate_up, 2 * inter * h, r, 0.0f, 1.0f / sqrtf((float)h)) != SIM_OK ||
            alloc_fill(&L->w_down, h * inter, r, 0.0f, 1.0f / sqrtf((float)inter)) != SIM_OK)
            goto out;
    }
    if (alloc_fill(&w->final_norm, h, r, 1.0f, 0.1f) != SIM_OK)
        goto out;
    if (tied)
        w->lm_head = w->embed;
    else if (alloc_fill(&w->lm_head, v * h, r, 0.0f, 1.0f / sqrtf((float)h)) != SIM_OK)
        goto out;
    w->rope = SIM_NEW_ARRAY(float, (size_t)m->max_ctx * m->head_dim);
    if (w->rope == NULL)
        goto out;
    rc = kern_rope_cache_ref(w->rope, m->max_ctx, m->head_dim, w->rope_theta);
out:
    sim_rng_destroy(r);
    return rc;
}

static void weights_free(be_cpu_weights *w) {
    int l;
    if (w->layer)
        for (l = 0; l < w->n_layers; l++) {
            be_cpu_layer *L = &w->layer[l];
            sim_free(L->attn_norm);
            sim_free(L->wqkv);
            sim_free(L->wo);
            sim_free(L->mlp_norm);
            sim_free(L->w_gate_up);
            sim_free(L->w_down);
        }
    if (w->lm_head != w->embed)
        sim_free(w->lm_head);
    sim_free(w->embed);
    sim_free(w->layer);
    sim_free(w->final_norm);
    sim_free(w->rope);
    memset(w, 0, sizeof *w);
}

/* ---- open and close ---- */

static void cpu_close(void *ctx) {
    cpu_ctx *c = ctx;
    int r;
    if (c == NULL)
        return;
    weights_free(&c->w);
    if (c->rep)
        for (r = 0; r < c->n_replicas; r++)
            sim_free(c->rep[r].pool);
    sim_free(c->rep);
    sim_free(c->x);
    sim_free(c->xn);
    sim_free(c->qkv);
    sim_free(c->attn);
    sim_free(c->proj);
    sim_free(c->gu);
    sim_free(c->act);
    sim_free(c->tokens);
    sim_free(c->positions);
    sim_free(c->slots);
    sim_free(c->tables);
    sim_free(c->ctx_lens);
    sim_free(c->cu);
    sim_free(c->dec);
    sim_free(c->rows);
    sim_free(c->hid);
    sim_free(c->logits);
    sim_free(c->argmax);
    sim_free(c->samples);
    sim_free(c);
}

/* Checks that the cpu executor can run model m; SIM_OK or SIM_EINVAL /
 * SIM_ENOTSUP / SIM_EINFEASIBLE with *err naming the limit. */
static int cpu_check(const be_args *a, sim_err *err) {
    const sim_model *m = &a->perf->model;
    double params = sim_model_params(m);
    double kv_bytes;
    if (params > BE_CPU_MAX_PARAMS) {
        sim_err_set(err, "", 0, 0,
                    "--backend cpu: expected a model of at most %.0fM parameters, got '%s' "
                    "(%.0fM): the cpu backend runs tiny shapes only; use --model tiny",
                    BE_CPU_MAX_PARAMS / 1e6, m->name, params / 1e6);
        return SIM_EINVAL;
    }
    if (a->perf->tp != 1) {
        sim_err_set(err, "", 0, 0,
                    "--tp: expected 1 with --backend cpu (it runs the whole model in one "
                    "process), got '%d'",
                    a->perf->tp);
        return SIM_ENOTSUP;
    }
    if (m->head_dim > KERN_ATTN_MAX_HEAD_DIM || m->head_dim % 2 != 0 ||
        m->n_heads % m->n_kv_heads != 0) {
        sim_err_set(err, "", 0, 0,
                    "%s: expected an even head_dim <= %d and heads divisible by KV heads, got "
                    "head_dim %d, %d heads, %d KV heads",
                    m->name, KERN_ATTN_MAX_HEAD_DIM, m->head_dim, m->n_heads, m->n_kv_heads);
        return SIM_ENOTSUP;
    }
    kv_bytes = (double)a->kv_blocks * 2.0 * m->n_layers * m->n_kv_heads * m->head_dim *
               a->block_tokens * 4.0;
    if (a->kv_blocks < 1 || kv_bytes > BE_CPU_KV_MAX_BYTES) {
        sim_err_set(err, "", 0, 0,
                    "--kv-blocks: expected 1..%lld with --backend cpu (%.0f MiB of fp32 KV per "
                    "replica), got '%lld' (%.0f MiB)",
                    (long long)be_cpu_kv_blocks_max(m, a->block_tokens),
                    BE_CPU_KV_MAX_BYTES / 1048576.0, (long long)a->kv_blocks, kv_bytes / 1048576.0);
        return SIM_EINFEASIBLE;
    }
    return SIM_OK;
}

/* Opens the executor: random weights, one KV pool per replica and the step
 * buffers. Returns SIM_OK and an owned *ctx, or an error with *err set. */
static int cpu_open(void **ctx, const be_args *a, sim_err *err) {
    const sim_model *m = &a->perf->model;
    cpu_ctx *c;
    size_t T, S, h, pool_n;
    int r, rc;
    *ctx = NULL;
    if ((rc = cpu_check(a, err)) != SIM_OK)
        return rc;
    c = SIM_NEW(cpu_ctx);
    if (c == NULL)
        goto nomem;
    c->max_rows = a->max_batched_tokens > 0 ? a->max_batched_tokens : 8192;
    c->max_seqs = a->max_num_seqs > 0 ? a->max_num_seqs : 256;
    c->mb = (m->max_ctx + a->block_tokens - 1) / a->block_tokens;
    c->qkv_dim = (m->n_heads + 2 * m->n_kv_heads) * m->head_dim;
    c->kv.n_layers = m->n_layers;
    c->kv.n_blocks = (int)a->kv_blocks;
    c->kv.block_size = a->block_tokens;
    c->kv.n_kv_heads = m->n_kv_heads;
    c->kv.head_dim = m->head_dim;
    c->kv.dtype = KERN_DT_F32;
    if (kern_kv_layout_check(&c->kv) != SIM_OK) {
        sim_err_set(err, "", 0, 0, "--backend cpu: KV layout: %s", kern_last_error());
        cpu_close(c);
        return SIM_EINVAL;
    }
    rc = weights_init(&c->w, m, a->seed, m->tied_embeddings);
    if (rc == SIM_ENOMEM)
        goto nomem;
    if (rc != SIM_OK) {
        sim_err_set(err, "", 0, 0, "--backend cpu: RoPE table: %s", kern_last_error());
        cpu_close(c);
        return rc;
    }
    c->n_replicas = a->replicas > 0 ? a->replicas : 1;
    c->rep = SIM_NEW_ARRAY(cpu_replica, (size_t)c->n_replicas);
    if (c->rep == NULL)
        goto nomem;
    pool_n = kern_kv_cache_bytes(&c->kv) / sizeof(float);
    for (r = 0; r < c->n_replicas; r++)
        if ((c->rep[r].pool = SIM_NEW_ARRAY(float, pool_n)) == NULL)
            goto nomem;
    T = (size_t)c->max_rows;
    S = (size_t)c->max_seqs;
    h = (size_t)m->hidden;
    c->x = SIM_NEW_ARRAY(float, T *h);
    c->xn = SIM_NEW_ARRAY(float, T *h);
    c->qkv = SIM_NEW_ARRAY(float, T *(size_t)c->qkv_dim);
    c->attn = SIM_NEW_ARRAY(float, T *(size_t)m->n_heads * m->head_dim);
    c->proj = SIM_NEW_ARRAY(float, T *h);
    c->gu = SIM_NEW_ARRAY(float, T * 2 * (size_t)m->intermediate);
    c->act = SIM_NEW_ARRAY(float, T *(size_t)m->intermediate);
    c->tokens = SIM_NEW_ARRAY(int32_t, T);
    c->positions = SIM_NEW_ARRAY(int32_t, T);
    c->slots = SIM_NEW_ARRAY(int32_t, T);
    c->tables = SIM_NEW_ARRAY(int32_t, S * (size_t)c->mb);
    c->ctx_lens = SIM_NEW_ARRAY(int32_t, S);
    c->cu = SIM_NEW_ARRAY(int32_t, S + 1);
    c->dec = SIM_NEW_ARRAY(sched_seq *, S);
    c->rows = SIM_NEW_ARRAY(int32_t, S);
    c->hid = SIM_NEW_ARRAY(float, S *h);
    c->logits = SIM_NEW_ARRAY(float, S *(size_t)m->vocab);
    c->argmax = SIM_NEW_ARRAY(int32_t, S);
    c->samples = SIM_NEW_ARRAY(be_cpu_sample, S);
    if (!c->x || !c->xn || !c->qkv || !c->attn || !c->proj || !c->gu || !c->act || !c->tokens ||
        !c->positions || !c->slots || !c->tables || !c->ctx_lens || !c->cu || !c->dec || !c->rows ||
        !c->hid || !c->logits || !c->argmax || !c->samples)
        goto nomem;
    *ctx = c;
    return SIM_OK;
nomem:
    sim_err_set(err, "", 0, 0, "--backend cpu: out of memory allocating the model and KV pool");
    cpu_close(c);
    return SIM_ENOMEM;
}

/* ---- the step ---- */

/* Copies q's first n_blocks block ids into a table row of length mb. */
static int table_row(int32_t *row, const sched_seq *q, int mb) {
    if (q->n_blocks > mb)
        return -1;
    memcpy(row, q->blocks, (size_t)q->n_blocks * sizeof *row);
    return 0;
}

static int kern_fail(sim_err *err, int rc, const char *op, int replica, const sched_batch *b) {
    sim_err_set(err, "", 0, 0, "cpu backend: %s failed at replica %d step %lld: %s (%s)", op,
                replica, (long long)b->step, kern_last_error(), sim_strerror(rc));
    return rc;
}

/* Builds the step's index arrays: tokens, positions, slots, block tables,
 * context lengths, cu_seqlens and sampled rows. Returns the row count, or
 * a negative code with *err set. */
static int64_t step_inputs(cpu_ctx *c, int replica, const sched *s, const sched_batch *b,
                           int *n_dec, int *n_samp, sim_err *err) {
    const int bs = c->kv.block_size, V = c->w.vocab;
    int64_t t = 0, rows = b->agg.prefill_tokens + b->n_decode;
    int i, nd, ns = 0;
    if (rows > c->max_rows || b->n_chunks + b->n_decode > c->max_seqs) {
        sim_err_set(err, "", 0, 0,
                    "cpu backend: replica %d step %lld has %lld tokens in %d sequences, more than "
                    "the %lld tokens and %d sequences it was opened for",
                    replica, (long long)b->step, (long long)rows, b->n_chunks + b->n_decode,
                    (long long)c->max_rows, c->max_seqs);
        return SIM_EINVAL;
    }
    c->cu[0] = 0;
    for (i = 0; i < b->n_chunks; i++) {
        const sched_chunk *ch = &b->chunks[i];
        const sched_seq *q = ch->seq;
        int64_t k;
        for (k = 0; k < ch->tokens; k++, t++) {
            int64_t pos = ch->cached + k;
            c->tokens[t] = be_cpu_token(q->req.id, pos, V);
            c->positions[t] = (int32_t)pos;
            c->slots[t] = sched_seq_slot(q, pos, bs);
            if (c->slots[t] < 0)
                goto bad_table;
        }
        if (table_row(c->tables + (size_t)i * c->mb, q, c->mb) != 0)
            goto bad_table;
        c->ctx_lens[i] = (int32_t)(ch->cached + ch->tokens);
        c->cu[i + 1] = (int32_t)t;
        if (ch->samples) {
            c->rows[ns] = (int32_t)(t - 1);
            c->samples[ns].req_id = q->req.id;
            c->samples[ns].pos = ch->cached + ch->tokens - 1;
            ns++;
        }
    }
    nd = sched_decode_list(s, c->dec, c->max_seqs - b->n_chunks);
    if (nd != b->n_decode) {
        sim_err_set(err, "", 0, 0,
                    "cpu backend: replica %d step %lld: the batch has %d decoding sequences, "
                    "the scheduler lists %d",
                    replica, (long long)b->step, b->n_decode, nd);
        return SIM_EINVAL;
    }
    for (i = 0; i < nd; i++, t++) {
        const sched_seq *q = c->dec[i];
        int64_t kv = sched_seq_kv_tokens(s, q), pos = kv - 1;
        c->tokens[t] = be_cpu_token(q->req.id, pos, V);
        c->positions[t] = (int32_t)pos;
        c->slots[t] = sched_seq_slot(q, pos, bs);
        if (c->slots[t] < 0 || table_row(c->tables + (size_t)(b->n_chunks + i) * c->mb, q, c->mb))
            goto bad_table;
        c->ctx_lens[b->n_chunks + i] = (int32_t)kv;
        c->rows[ns] = (int32_t)t;
        c->samples[ns].req_id = q->req.id;
        c->samples[ns].pos = pos;
        ns++;
    }
    *n_dec = nd;
    *n_samp = ns;
    return t;
bad_table:
    sim_err_set(err, "", 0, 0,
                "cpu backend: replica %d step %lld: a sequence's block table does not cover its "
                "tokens (scheduler and executor disagree)",
                replica, (long long)b->step);
    return SIM_EINVAL;
}

/* Runs replica r's batch through the model; see the file comment. */
static int cpu_step(void *ctx, int replica, const sched *s, const sched_batch *b, be_result *out,
                    sim_err *err) {
    cpu_ctx *c = ctx;
    const be_cpu_weights *w = &c->w;
    const int H = w->n_heads, Hkv = w->n_kv_heads, D = w->head_dim, hd = H * D;
    const int hidden = w->hidden, I = w->inter, qd = c->qkv_dim;
    const float scale = 1.0f / sqrtf((float)D);
    double t0 = rt_now_s(), t1;
    int64_t T;
    int Tp, nd = 0, ns = 0, i, l, rc;
    float *pool;
    if (replica < 0 || replica >= c->n_replicas) {
        sim_err_set(err, "", 0, 0, "cpu backend: replica %d: expected 0..%d", replica,
                    c->n_replicas - 1);
        return SIM_EINVAL;
    }
    pool = c->rep[replica].pool;
    T = step_inputs(c, replica, s, b, &nd, &ns, err);
    if (T < 0)
        return (int)T;
    Tp = (int)(T - nd);
    t1 = rt_now_s();

    if ((rc = kern_embed_ref(c->x, w->embed, c->tokens, (int)T, hidden, w->vocab, KERN_DT_F32)) !=
        SIM_OK)
        return kern_fail(err, rc, "embed", replica, b);
    for (l = 0; l < w->n_layers; l++) {
        const be_cpu_layer *L = &w->layer[l];
        float *layer_pool =
            pool + (size_t)l * kern_kv_layer_stride(&c->kv); /* (NB, 2, Hkv, bs, D) */
        float *q = c->qkv, *k = c->qkv + hd, *v = c->qkv + hd + Hkv * D;
        kern_rmsnorm_ref_f32(c->xn, c->x, L->attn_norm, (int)T, hidden, w->norm_eps);
        kern_gemm_ref_f32(c->qkv, c->xn, L->wqkv, (int)T, qd, hidden, 1.0f);
        if ((rc = kern_rope_ref_f32(q, qd, k, qd, w->rope, w->max_pos, c->positions, (int)T, H, Hkv,
                                    D, D)) != SIM_OK)
            return kern_fail(err, rc, "rope", replica, b);
        if ((rc = kern_kv_save_ref(layer_pool, &c->kv, k, qd, v, qd, c->slots, (int)T)) != SIM_OK)
            return kern_fail(err, rc, "kv_save", replica, b);
        if (b->n_chunks > 0 &&
            (rc = kern_attn_prefill_ref_f32(c->attn, q, qd, layer_pool, &c->kv, c->tables, c->mb,
                                            c->cu, c->ctx_lens, b->n_chunks, H, scale)) != SIM_OK)
            return kern_fail(err, rc, "attn_prefill", replica, b);
        if (nd > 0 && (rc = kern_attn_decode_ref_f32(
                           c->attn + (size_t)Tp * hd, q + (size_t)Tp * qd, qd, layer_pool, &c->kv,
                           c->tables + (size_t)b->n_chunks * c->mb, c->mb,
                           c->ctx_lens + b->n_chunks, nd, H, scale)) != SIM_OK)
            return kern_fail(err, rc, "attn_decode", replica, b);
        kern_gemm_ref_f32(c->proj, c->attn, L->wo, (int)T, hidden, hd, 1.0f);
        kern_add_ref_f32(c->x, c->proj, (size_t)T * hidden);
        kern_rmsnorm_ref_f32(c->xn, c->x, L->mlp_norm, (int)T, hidden, w->norm_eps);
        kern_gemm_ref_f32(c->gu, c->xn, L->w_gate_up, (int)T, 2 * I, hidden, 1.0f);
        kern_silu_mul_ref_f32(c->act, c->gu, (int)T, I);
        kern_gemm_ref_f32(c->proj, c->act, L->w_down, (int)T, hidden, I, 1.0f);
        kern_add_ref_f32(c->x, c->proj, (size_t)T * hidden);
    }
    /* the sampled rows only (RMSNorm is per row), gathered as an embedding of x */
    if ((rc = kern_embed_ref(c->xn, c->x, c->rows, ns, hidden, (int)T, KERN_DT_F32)) != SIM_OK)
        return kern_fail(err, rc, "embed", replica, b);
    kern_rmsnorm_ref_f32(c->hid, c->xn, w->final_norm, ns, hidden, w->norm_eps);
    kern_gemm_ref_f32(c->logits, c->hid, w->lm_head, ns, w->vocab, hidden, 1.0f);
    kern_argmax_ref_f32(c->argmax, c->logits, ns, w->vocab);
    for (i = 0; i < ns; i++)
        c->samples[i].token = c->argmax[i];
    c->n_samples = ns;

    out->meas_s = rt_now_s() - t1;
    out->host_s = t1 - t0;
    out->dur_s = out->meas_s;
    return SIM_OK;
}

static int cpu_supports(void *ctx, const char *feature) {
    (void)ctx;
    return strcmp(feature, "tp>1") != 0 && strcmp(feature, "kv_copy") != 0;
}

const be_cpu_weights *be_cpu_weights_get(const void *ctx) {
    return &((const cpu_ctx *)ctx)->w;
}

int be_cpu_last_samples(const void *ctx, const be_cpu_sample **samples, const float **hidden) {
    const cpu_ctx *c = ctx;
    *samples = c->samples;
    *hidden = c->hid;
    return c->n_samples;
}

const struct be_ops be_cpu_ops = {
    .version = BE_VERSION,
    .name = "cpu",
    .open = cpu_open,
    .step = cpu_step,
    .kv_copy = NULL,
    .sync = NULL,
    .supports = cpu_supports,
    .close = cpu_close,
};
