/* test_kern_attn_ref.c: the attention references (paged_attn_ref.c,
 * prefill_attn_ref.c) against a dense implementation, in every build.
 *
 * Each case builds a paged KV cache of 2 layers (the references get layer
 * 1's pool, so the layer offset is exercised) with random bf16 values
 * (never zero) and random, distinct block ids; block table entries past a
 * sequence's blocks hold -7, which a reference must never read. The dense
 * side gathers each sequence's K and V into plain (n, D) double arrays by
 * its own index arithmetic, then runs textbook softmax attention in double.
 *
 * Shapes: head dims 16, 40, 64, 128, 256; GQA groups 1, 2, 3, 4, 8, 16;
 * block sizes 1, 5, 16, 32; contexts 1, 15, 16, 17, 100, 513 and 1100 keys
 * (not multiples of the block size, and past the kernels' 512-key
 * partitions); q rows padded as in a fused QKV row. Prefill chunks mix
 * (past, chunk) = (0, 1), (0, 17), (5, 1), (16, 16), (31, 33), (100, 64),
 * (3, 130), (200, 70) and an empty chunk in one call.
 *
 * Bound, per output element: |ref - dense| <= 2^-8 |dense| + 5e-4 max|v|.
 * The first term is the bf16 rounding of the output (at most 2^-9
 * relative); the second covers fp32 dot products and sums over up to 1100
 * keys (a priori at most n 2^-24 max|v| ~ 7e-5 max|v|, plus the fp32
 * scores' effect on exp).
 *
 * Outputs are poisoned with NaN (and a guard element past the end), so an
 * unwritten element fails. Bad arguments (a block id out of range, a
 * context past the block table, a chunk longer than its context, an fp32
 * cache) return their code and leave the output untouched. */
#include "config.h"
#include "kern.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "mem.h"
#include "t.h"

#define POISON 0x7fc0 /* a bf16 NaN */

/* A random value with |v| in [0.05, 2.05) and a random sign: never zero. */
static float rand_nonzero(gsl_rng *r) {
    double m = 0.05 + 2.0 * gsl_rng_uniform(r);
    return (float)(gsl_rng_uniform(r) < 0.5 ? -m : m);
}

/* ---- a paged batch ---- */

struct batch {
    kern_kv_layout kv;
    int n_seqs, n_heads, q_stride, mb; /* mb: block table row length */
    int32_t *ctx;                      /* (S) keys per sequence */
    int32_t *bt;                       /* (S, MB) block ids, -7 past the used ones */
    kern_bf16 *cache;                  /* (2, NB, 2, Hkv, bs, D) */
    kern_bf16 *layer;                  /* layer 1's pool inside cache */
    double vmax;                       /* max |v| in the cache */
};

/* The element index of (block, K|V, head, slot, dim) in a layer pool,
 * written out here rather than taken from kern_kv_offset(). */
static size_t pool_index(const kern_kv_layout *kv, int block, int sel, int head, int slot, int d) {
    size_t i = (size_t)block * 2 + (size_t)sel;
    i = i * kv->n_kv_heads + head;
    i = i * kv->block_size + slot;
    return i * kv->head_dim + d;
}

/* Builds S sequences with context lengths ctx[] on a fresh random cache. */
static void batch_make(struct batch *b, gsl_rng *r, int D, int Hkv, int G, int bs, const int *ctx,
                       int n_seqs, int q_pad) {
    int used = 0, mb = 1;
    for (int s = 0; s < n_seqs; s++) {
        int nb = (ctx[s] + bs - 1) / bs;
        used += nb;
        mb = nb + 2 > mb ? nb + 2 : mb;
    }
    b->kv = (kern_kv_layout){.n_layers = 2,
                             .n_blocks = used + 5,
                             .block_size = bs,
                             .n_kv_heads = Hkv,
                             .head_dim = D,
                             .dtype = KERN_DT_BF16};
    T_EQ_I(kern_kv_layout_check(&b->kv), SIM_OK);
    b->n_seqs = n_seqs;
    b->n_heads = Hkv * G;
    b->q_stride = b->n_heads * D + q_pad;
    b->mb = mb;
    b->ctx = SIM_NEW_ARRAY(int32_t, n_seqs > 0 ? n_seqs : 1);
    b->bt = SIM_NEW_ARRAY(int32_t, (size_t)(n_seqs > 0 ? n_seqs : 1) * mb);
    const size_t n_elem = kern_kv_cache_bytes(&b->kv) / sizeof(kern_bf16);
    b->cache = SIM_NEW_ARRAY(kern_bf16, n_elem);
    int32_t *perm = SIM_NEW_ARRAY(int32_t, b->kv.n_blocks);
    T_ASSERT(b->ctx && b->bt && b->cache && perm);
    b->layer = b->cache + kern_kv_layer_stride(&b->kv);
    b->vmax = 0.0;
    for (size_t i = 0; i < n_elem; i++)
        b->cache[i] = kern_bf16_from_f32(rand_nonzero(r));
    for (size_t i = 0; i < n_elem; i++) {
        double v = fabs(kern_f32_from_bf16(b->cache[i]));
        b->vmax = v > b->vmax ? v : b->vmax;
    }
    /* distinct block ids in random order (Fisher-Yates) */
    for (int i = 0; i < b->kv.n_blocks; i++)
        perm[i] = i;
    for (int i = b->kv.n_blocks - 1; i > 0; i--) {
        int j = (int)gsl_rng_uniform_int(r, (unsigned long)i + 1);
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    int next = 0;
    for (int s = 0; s < n_seqs; s++) {
        b->ctx[s] = ctx[s];
        for (int k = 0; k < mb; k++)
            b->bt[(size_t)s * mb + k] = k < (ctx[s] + bs - 1) / bs ? perm[next++] : -7;
    }
    sim_free(perm);
}

static void batch_free(struct batch *b) {
    sim_free(b->ctx);
    sim_free(b->bt);
    sim_free(b->cache);
}

/* Random q (T, H, D) with rows q_stride apart (the padding random too). */
static kern_bf16 *make_q(gsl_rng *r, int n_rows, int q_stride) {
    kern_bf16 *q = SIM_NEW_ARRAY(kern_bf16, (size_t)n_rows * q_stride + 1);
    T_ASSERT(q != NULL);
    for (size_t i = 0; i < (size_t)n_rows * q_stride; i++)
        q[i] = kern_bf16_from_f32(rand_nonzero(r));
    return q;
}

/* NaN-poisoned output (T, H, D) plus one guard element. */
static kern_bf16 *make_out(size_t n) {
    kern_bf16 *o = SIM_NEW_ARRAY(kern_bf16, n + 1);
    T_ASSERT(o != NULL);
    for (size_t i = 0; i < n + 1; i++)
        o[i] = POISON;
    return o;
}

/* ---- dense attention in double ---- */

/* out (D) = softmax(scale q . K^T) V over keys 0 .. n - 1 of sequence s,
 * KV head kvh: K and V gathered into dense (n, D) arrays first. */
static void dense_row(double *out, const kern_bf16 *q, const struct batch *b, int s, int kvh, int n,
                      double scale) {
    const int D = b->kv.head_dim, bs = b->kv.block_size;
    double *k = SIM_NEW_ARRAY(double, (size_t)(n > 0 ? n : 1) * D);
    double *v = SIM_NEW_ARRAY(double, (size_t)(n > 0 ? n : 1) * D);
    double *sc = SIM_NEW_ARRAY(double, n > 0 ? n : 1);
    T_ASSERT(k && v && sc);
    for (int j = 0; j < n; j++) {
        int blk = b->bt[(size_t)s * b->mb + j / bs];
        for (int d = 0; d < D; d++) {
            k[(size_t)j * D + d] =
                kern_f32_from_bf16(b->layer[pool_index(&b->kv, blk, 0, kvh, j % bs, d)]);
            v[(size_t)j * D + d] =
                kern_f32_from_bf16(b->layer[pool_index(&b->kv, blk, 1, kvh, j % bs, d)]);
        }
    }
    double mx = -INFINITY, sum = 0.0;
    for (int j = 0; j < n; j++) {
        double dot = 0.0;
        for (int d = 0; d < D; d++)
            dot += (double)kern_f32_from_bf16(q[d]) * k[(size_t)j * D + d];
        sc[j] = scale * dot;
        mx = sc[j] > mx ? sc[j] : mx;
    }
    for (int j = 0; j < n; j++) {
        sc[j] = exp(sc[j] - mx);
        sum += sc[j];
    }
    for (int d = 0; d < D; d++) {
        double acc = 0.0;
        for (int j = 0; j < n; j++)
            acc += sc[j] * v[(size_t)j * D + d];
        out[d] = n > 0 ? acc / sum : 0.0;
    }
    sim_free(k);
    sim_free(v);
    sim_free(sc);
}

/* Compares one output row (D) with the dense one. */
static void check_row(const kern_bf16 *got, const double *want, int D, double vmax,
                      const char *what, int row, int h) {
    for (int d = 0; d < D; d++) {
        double g = kern_f32_from_bf16(got[d]);
        double tol = 0x1p-8 * fabs(want[d]) + 5e-4 * vmax;
        if (!(fabs(g - want[d]) <= tol))
            T_FAIL_("%s: row %d head %d dim %d: %.9g vs dense %.9g (tol %.3g)", what, row, h, d, g,
                    want[d], tol);
    }
}

/* ---- decode ---- */

static void test_decode(gsl_rng *r, int D, int Hkv, int G, int bs, const int *ctx, int n_seqs,
                        int q_pad) {
    struct batch b;
    batch_make(&b, r, D, Hkv, G, bs, ctx, n_seqs, q_pad);
    const int H = b.n_heads;
    const float scale = 1.0f / sqrtf((float)D);
    const size_t n_out = (size_t)n_seqs * H * D;
    kern_bf16 *q = make_q(r, n_seqs, b.q_stride), *out = make_out(n_out);
    double *want = SIM_NEW_ARRAY(double, D);
    T_ASSERT(want != NULL);

    T_EQ_I(kern_attn_decode_ref(out, q, b.q_stride, b.layer, &b.kv, b.bt, b.mb, b.ctx, n_seqs, H,
                                scale),
           SIM_OK);
    T_EQ_I(out[n_out], POISON);
    char what[96];
    snprintf(what, sizeof what, "decode D=%d Hkv=%d G=%d bs=%d", D, Hkv, G, bs);
    for (int s = 0; s < n_seqs; s++)
        for (int h = 0; h < H; h++) {
            dense_row(want, q + (size_t)s * b.q_stride + (size_t)h * D, &b, s, h / G, ctx[s],
                      scale);
            check_row(out + ((size_t)s * H + h) * D, want, D, b.vmax, what, s, h);
        }

    /* decode is prefill with one-token chunks: bit for bit the same */
    int32_t *cu = SIM_NEW_ARRAY(int32_t, n_seqs + 1);
    kern_bf16 *out2 = make_out(n_out);
    T_ASSERT(cu && out2);
    for (int s = 0; s <= n_seqs; s++)
        cu[s] = s;
    T_EQ_I(kern_attn_prefill_ref(out2, q, b.q_stride, b.layer, &b.kv, b.bt, b.mb, cu, b.ctx, n_seqs,
                                 H, scale),
           SIM_OK);
    T_ASSERT(memcmp(out, out2, n_out * sizeof *out) == 0);

    sim_free(cu);
    sim_free(out2);
    sim_free(q);
    sim_free(out);
    sim_free(want);
    batch_free(&b);
}

/* ---- prefill ---- */

/* past[s] tokens cached before chunk[s] new ones, all in one call. */
static void test_prefill(gsl_rng *r, int D, int Hkv, int G, int bs, const int *past,
                         const int *chunk, int n_seqs, int q_pad) {
    int ctx[16], cu[17];
    T_ASSERT(n_seqs <= 16);
    cu[0] = 0;
    for (int s = 0; s < n_seqs; s++) {
        ctx[s] = past[s] + chunk[s];
        cu[s + 1] = cu[s] + chunk[s];
    }
    const int T = cu[n_seqs];
    struct batch b;
    batch_make(&b, r, D, Hkv, G, bs, ctx, n_seqs, q_pad);
    const int H = b.n_heads;
    const float scale = 1.0f / sqrtf((float)D);
    const size_t n_out = (size_t)T * H * D;
    kern_bf16 *q = make_q(r, T, b.q_stride), *out = make_out(n_out);
    double *want = SIM_NEW_ARRAY(double, D);
    T_ASSERT(want != NULL);

    T_EQ_I(kern_attn_prefill_ref(out, q, b.q_stride, b.layer, &b.kv, b.bt, b.mb, cu, b.ctx, n_seqs,
                                 H, scale),
           SIM_OK);
    T_EQ_I(out[n_out], POISON);
    char what[96];
    snprintf(what, sizeof what, "prefill D=%d Hkv=%d G=%d bs=%d", D, Hkv, G, bs);
    for (int s = 0; s < n_seqs; s++)
        for (int i = 0; i < chunk[s]; i++)
            for (int h = 0; h < H; h++) {
                const int t = cu[s] + i;
                dense_row(want, q + (size_t)t * b.q_stride + (size_t)h * D, &b, s, h / G,
                          past[s] + i + 1, scale);
                check_row(out + ((size_t)t * H + h) * D, want, D, b.vmax, what, t, h);
            }
    sim_free(q);
    sim_free(out);
    sim_free(want);
    batch_free(&b);
}

/* ---- bad arguments ---- */

static void test_errors(gsl_rng *r) {
    const int ctx[2] = {20, 9};
    struct batch b;
    batch_make(&b, r, 8, 2, 2, 4, ctx, 2, 0);
    const int H = b.n_heads;
    kern_bf16 *q = make_q(r, 2, b.q_stride), *out = make_out((size_t)2 * H * 8);
    int32_t cu[3] = {0, 2, 3};

    b.bt[1] = b.kv.n_blocks; /* a block id past the pool */
    T_EQ_I(kern_attn_decode_ref(out, q, b.q_stride, b.layer, &b.kv, b.bt, b.mb, b.ctx, 2, H, 1.0f),
           SIM_EINVAL);
    T_CONTAINS(kern_last_error(), "block id");
    b.bt[1] = -1;
    T_EQ_I(kern_attn_prefill_ref(out, q, b.q_stride, b.layer, &b.kv, b.bt, b.mb, cu, b.ctx, 2, H,
                                 1.0f),
           SIM_EINVAL);
    b.bt[1] = 0;
    b.ctx[1] = b.mb * b.kv.block_size + 1; /* past the block table */
    T_EQ_I(kern_attn_decode_ref(out, q, b.q_stride, b.layer, &b.kv, b.bt, b.mb, b.ctx, 2, H, 1.0f),
           SIM_EINVAL);
    T_CONTAINS(kern_last_error(), "context_lens");
    b.ctx[1] = 0;
    T_EQ_I(kern_attn_prefill_ref(out, q, b.q_stride, b.layer, &b.kv, b.bt, b.mb, cu, b.ctx, 2, H,
                                 1.0f),
           SIM_EINVAL); /* chunk of 1 token, context 0 */
    T_CONTAINS(kern_last_error(), "chunk of sequence 1");
    T_EQ_I(kern_attn_decode_ref(out, q, 3, b.layer, &b.kv, b.bt, b.mb, b.ctx, 2, H, 1.0f),
           SIM_EINVAL); /* q_stride < H * D */
    T_EQ_I(kern_attn_decode_ref(out, q, b.q_stride, b.layer, &b.kv, b.bt, b.mb, b.ctx, 2, 3, 1.0f),
           SIM_EINVAL); /* heads not a multiple of KV heads */
    b.kv.dtype = KERN_DT_F32;
    T_EQ_I(kern_attn_decode_ref(out, q, b.q_stride, b.layer, &b.kv, b.bt, b.mb, b.ctx, 2, H, 1.0f),
           SIM_ENOTSUP);
    b.kv.dtype = KERN_DT_BF16;
    for (size_t i = 0; i < (size_t)2 * H * 8 + 1; i++)
        T_EQ_I(out[i], POISON); /* nothing written by a refused call */

    /* a sequence with no keys gets zeros; no sequences touch nothing */
    T_EQ_I(kern_attn_decode_ref(out, q, b.q_stride, b.layer, &b.kv, b.bt, b.mb, b.ctx, 2, H, 1.0f),
           SIM_OK);
    for (int i = 0; i < H * 8; i++)
        T_EQ_I(out[(size_t)H * 8 + i], 0);
    T_EQ_I(
        kern_attn_decode_ref(NULL, NULL, b.q_stride, b.layer, &b.kv, b.bt, b.mb, b.ctx, 0, H, 1.0f),
        SIM_OK);
    sim_free(q);
    sim_free(out);
    batch_free(&b);
}

int main(void) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    T_ASSERT(r != NULL);
    gsl_rng_set(r, 20240613UL);

    static const int ctx_a[] = {1, 15, 16, 17, 100, 513, 1100};
    static const int ctx_b[] = {33, 7, 64};
    /* D, Hkv, G, bs, q padding */
    test_decode(r, 64, 2, 4, 16, ctx_a, 7, 0);
    test_decode(r, 128, 1, 8, 16, ctx_a, 7, 2 * 128);
    test_decode(r, 40, 3, 1, 5, ctx_b, 3, 0);
    test_decode(r, 256, 1, 2, 32, ctx_b, 3, 8);
    test_decode(r, 16, 2, 3, 1, ctx_b, 3, 1);
    test_decode(r, 128, 2, 16, 16, ctx_b, 3, 0);

    static const int past[] = {0, 0, 5, 16, 31, 100, 3, 200, 7};
    static const int chunk[] = {1, 17, 1, 16, 33, 64, 130, 70, 0};
    test_prefill(r, 64, 2, 2, 16, past, chunk, 9, 0);
    test_prefill(r, 128, 1, 4, 16, past, chunk, 9, 2 * 128);
    test_prefill(r, 40, 2, 3, 5, past, chunk, 9, 0);
    test_prefill(r, 16, 1, 1, 1, past, chunk, 9, 3);
    test_errors(r);

    gsl_rng_free(r);
    T_EQ_I(sim_mem_current(), 0);
    printf("test_kern_attn_ref: ok\n");
    return 0;
}
