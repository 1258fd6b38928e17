/* test_kern_attn_gpu.c: kern_attn_decode() (paged_attn.cu) and
 * kern_attn_prefill() (prefill_attn.cu) on a GPU against their CPU
 * references, which test_kern_attn_ref checks against dense attention.
 *
 * Skips (exit 77, reason printed) when the build has no CUDA or when
 * kern_device_count() finds no usable device.
 *
 * Each case builds a 2-layer paged cache of random bf16 values (never
 * zero) with random distinct block ids and runs on layer 1. Block table
 * entries past a sequence's blocks hold a huge id, so a kernel that reads
 * one faults or fails the comparison. Cases cover every path:
 * - decode: the tuned GQA kernel (D = 64, 128, 256) with and without the
 *   split-K workspace (contexts past 512 keys: 2 and 3 partitions; too
 *   small a workspace falls back to one pass), G = 1, 4, 8 and 16 (two
 *   head chunks per KV head), block sizes 1, 5, 16, 32, contexts 1 ..
 *   1100 not multiples of the block size, padded q rows; and the generic
 *   kernel (D = 40, and q shifted by one element so it is misaligned);
 * - prefill: the tensor-core kernel (D = 64, 128) with chunks of 1 .. 130
 *   rows after 0 .. 600 cached tokens in one launch (query tiles of 64
 *   rows, causal limits inside tiles, an empty chunk), and the generic
 *   kernel (D = 40, misaligned q).
 * Outputs and 16 guard elements on each side are poisoned with NaN first.
 *
 * Bound, per element, with vmax = max |v| in the cache:
 *   |gpu - ref| <= 2^-7 |ref| + a vmax,
 * 2^-7 for one bf16 ulp (each side rounds once), a = 1e-3 for fp32 paths
 * (fp32 sums in another order, exp2f) and a = 5e-3 for the tensor-core
 * prefill, whose P is rounded to bf16 before P.V (each weight off by at
 * most 2^-9 relative, so a row by at most about 2^-8 vmax). A wrong key, a
 * missing key or a wrong mask moves an output by about vmax / (keys seen),
 * which the small-context cases (1 .. 64 keys) resolve. */
#include "config.h"
#include "kern.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "mem.h"
#include "t.h"

#ifdef KV_HAVE_CUDA

enum { GUARD = 16 };

static float rand_nonzero(gsl_rng *r) {
    double m = 0.05 + 2.0 * gsl_rng_uniform(r);
    return (float)(gsl_rng_uniform(r) < 0.5 ? -m : m);
}

/* A paged batch on the host and its device copies. */
struct batch {
    kern_kv_layout kv;
    int n_seqs, n_heads, q_stride, mb;
    int32_t *ctx, *bt;        /* (S), (S, MB) host */
    kern_bf16 *cache, *layer; /* (2, NB, 2, Hkv, bs, D) host; layer 1 */
    double vmax;
    void *d_cache, *d_ctx, *d_bt;
};

static void batch_make(struct batch *b, gsl_rng *r, int D, int Hkv, int G, int bs, const int *ctx,
                       int n_seqs, int q_pad) {
    int used = 0, mb = 1;
    for (int s = 0; s < n_seqs; s++) {
        int nb = (ctx[s] + bs - 1) / bs;
        used += nb;
        mb = nb + 2 > mb ? nb + 2 : mb;
    }
    b->kv = (kern_kv_layout){2, used + 5, bs, Hkv, D, KERN_DT_BF16};
    T_EQ_I(kern_kv_layout_check(&b->kv), SIM_OK);
    b->n_seqs = n_seqs;
    b->n_heads = Hkv * G;
    b->q_stride = b->n_heads * D + q_pad;
    b->mb = mb;
    b->ctx = SIM_NEW_ARRAY(int32_t, n_seqs);
    b->bt = SIM_NEW_ARRAY(int32_t, (size_t)n_seqs * mb);
    const size_t n_elem = kern_kv_cache_bytes(&b->kv) / 2;
    b->cache = SIM_NEW_ARRAY(kern_bf16, n_elem);
    int32_t *perm = SIM_NEW_ARRAY(int32_t, b->kv.n_blocks);
    T_ASSERT(b->ctx && b->bt && b->cache && perm);
    b->layer = b->cache + kern_kv_layer_stride(&b->kv);
    b->vmax = 0.0;
    for (size_t i = 0; i < n_elem; i++) {
        b->cache[i] = kern_bf16_from_f32(rand_nonzero(r));
        double v = fabs(kern_f32_from_bf16(b->cache[i]));
        b->vmax = v > b->vmax ? v : b->vmax;
    }
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
            b->bt[(size_t)s * mb + k] = k < (ctx[s] + bs - 1) / bs ? perm[next++] : 0x3fffffff;
    }
    sim_free(perm);
    b->d_cache = b->d_ctx = b->d_bt = NULL;
    T_EQ_I(kern_malloc(&b->d_cache, n_elem * 2), SIM_OK);
    T_EQ_I(kern_malloc(&b->d_ctx, (size_t)n_seqs * 4), SIM_OK);
    T_EQ_I(kern_malloc(&b->d_bt, (size_t)n_seqs * mb * 4), SIM_OK);
    T_EQ_I(kern_memcpy_h2d(b->d_cache, b->cache, n_elem * 2), SIM_OK);
    T_EQ_I(kern_memcpy_h2d(b->d_ctx, b->ctx, (size_t)n_seqs * 4), SIM_OK);
    T_EQ_I(kern_memcpy_h2d(b->d_bt, b->bt, (size_t)n_seqs * mb * 4), SIM_OK);
}

static void batch_free(struct batch *b) {
    kern_free(&b->d_cache);
    kern_free(&b->d_ctx);
    kern_free(&b->d_bt);
    sim_free(b->ctx);
    sim_free(b->bt);
    sim_free(b->cache);
}

/* Device layer 1's pool. */
static void *d_layer(const struct batch *b) {
    return (kern_bf16 *)b->d_cache + kern_kv_layer_stride(&b->kv);
}

/* Host q (rows, q_stride) random, and its device copy shifted by shift
 * elements (1 makes it misaligned for 16-byte loads). */
static kern_bf16 *make_q(gsl_rng *r, int rows, int q_stride, int shift, void **d_q_alloc,
                         void **d_q) {
    const size_t n = (size_t)rows * q_stride;
    kern_bf16 *q = SIM_NEW_ARRAY(kern_bf16, n + 1);
    T_ASSERT(q != NULL);
    for (size_t i = 0; i < n; i++)
        q[i] = kern_bf16_from_f32(rand_nonzero(r));
    T_EQ_I(kern_malloc(d_q_alloc, (n + shift) * 2 + 2), SIM_OK);
    *d_q = (kern_bf16 *)*d_q_alloc + shift;
    T_EQ_I(kern_memcpy_h2d(*d_q, q, n * 2), SIM_OK);
    return q;
}

/* Downloads out (n elements between guards), checks guards and values. */
static void compare(const void *d_out_alloc, const kern_bf16 *ref, size_t n, int H, int D,
                    double vmax, double a, const char *what) {
    kern_bf16 *got = SIM_NEW_ARRAY(kern_bf16, n + 2 * GUARD);
    T_ASSERT(got != NULL);
    T_EQ_I(kern_memcpy_d2h(got, d_out_alloc, (n + 2 * GUARD) * 2), SIM_OK);
    for (int g = 0; g < GUARD; g++) {
        T_EQ_I(got[g], 0xffff);
        T_EQ_I(got[GUARD + n + g], 0xffff);
    }
    for (size_t i = 0; i < n; i++) {
        double want = kern_f32_from_bf16(ref[i]), have = kern_f32_from_bf16(got[GUARD + i]);
        double tol = 0x1p-7 * fabs(want) + a * vmax;
        if (!(fabs(have - want) <= tol))
            T_FAIL_("%s: row %zu head %zu dim %zu: %.9g vs reference %.9g (tol %.3g)", what,
                    i / ((size_t)H * D), i / D % H, i % D, have, want, tol);
    }
    sim_free(got);
}

/* Checks a launcher's return code, then the synchronisation after it. */
static void check_rc(int rc, const char *what) {
    if (rc != SIM_OK)
        fprintf(stderr, "%s: %s\n", what, kern_last_error());
    T_EQ_I(rc, SIM_OK);
    rc = kern_sync(NULL);
    if (rc != SIM_OK)
        fprintf(stderr, "%s (sync): %s\n", what, kern_last_error());
    T_EQ_I(rc, SIM_OK);
}

/* ---- decode ---- */

/* work: 0 none, 1 enough, 2 too small (falls back to one pass). */
static void check_decode(gsl_rng *r, int D, int Hkv, int G, int bs, const int *ctx, int n_seqs,
                         int q_pad, int shift, int work) {
    struct batch b;
    batch_make(&b, r, D, Hkv, G, bs, ctx, n_seqs, q_pad);
    const int H = b.n_heads;
    const float scale = 1.0f / sqrtf((float)D);
    const size_t n = (size_t)n_seqs * H * D;
    void *d_q_alloc = NULL, *d_q = NULL, *d_out = NULL, *d_work = NULL;
    kern_bf16 *q = make_q(r, n_seqs, b.q_stride, shift, &d_q_alloc, &d_q);
    kern_bf16 *ref = SIM_NEW_ARRAY(kern_bf16, n + 1);
    T_ASSERT(ref != NULL);
    T_EQ_I(kern_attn_decode_ref(ref, q, b.q_stride, b.layer, &b.kv, b.bt, b.mb, b.ctx, n_seqs, H,
                                scale),
           SIM_OK);
    int max_ctx = 0;
    for (int s = 0; s < n_seqs; s++)
        max_ctx = ctx[s] > max_ctx ? ctx[s] : max_ctx;
    size_t wb = kern_attn_decode_work_bytes(n_seqs, H, D, max_ctx);
    if (work == 2)
        wb = wb / 2;
    if (work && wb > 0)
        T_EQ_I(kern_malloc(&d_work, wb), SIM_OK);
    T_EQ_I(kern_malloc(&d_out, (n + 2 * GUARD) * 2), SIM_OK);
    T_EQ_I(kern_memset(d_out, 0xff, (n + 2 * GUARD) * 2), SIM_OK);
    char what[128];
    snprintf(what, sizeof what, "decode D=%d Hkv=%d G=%d bs=%d shift=%d work=%d", D, Hkv, G, bs,
             shift, work);
    check_rc(kern_attn_decode((kern_bf16 *)d_out + GUARD, d_q, b.q_stride, d_layer(&b), &b.kv,
                              b.d_bt, b.mb, b.d_ctx, n_seqs, H, max_ctx, scale, d_work,
                              work ? wb : 0, NULL),
             what);
    compare(d_out, ref, n, H, D, b.vmax, 1e-3, what);
    kern_free(&d_q_alloc);
    kern_free(&d_out);
    kern_free(&d_work);
    sim_free(q);
    sim_free(ref);
    batch_free(&b);
}

/* ---- prefill ---- */

static void check_prefill(gsl_rng *r, int D, int Hkv, int G, int bs, const int *past,
                          const int *chunk, int n_seqs, int q_pad, int shift) {
    int ctx[16], cu[17], max_q = 0;
    T_ASSERT(n_seqs <= 16);
    cu[0] = 0;
    for (int s = 0; s < n_seqs; s++) {
        ctx[s] = past[s] + chunk[s];
        cu[s + 1] = cu[s] + chunk[s];
        max_q = chunk[s] > max_q ? chunk[s] : max_q;
    }
    const int T = cu[n_seqs];
    struct batch b;
    batch_make(&b, r, D, Hkv, G, bs, ctx, n_seqs, q_pad);
    const int H = b.n_heads;
    const float scale = 1.0f / sqrtf((float)D);
    const size_t n = (size_t)T * H * D;
    void *d_q_alloc = NULL, *d_q = NULL, *d_out = NULL, *d_cu = NULL;
    kern_bf16 *q = make_q(r, T, b.q_stride, shift, &d_q_alloc, &d_q);
    kern_bf16 *ref = SIM_NEW_ARRAY(kern_bf16, n + 1);
    T_ASSERT(ref != NULL);
    T_EQ_I(kern_attn_prefill_ref(ref, q, b.q_stride, b.layer, &b.kv, b.bt, b.mb, cu, b.ctx, n_seqs,
                                 H, scale),
           SIM_OK);
    T_EQ_I(kern_malloc(&d_cu, (size_t)(n_seqs + 1) * 4), SIM_OK);
    T_EQ_I(kern_memcpy_h2d(d_cu, cu, (size_t)(n_seqs + 1) * 4), SIM_OK);
    T_EQ_I(kern_malloc(&d_out, (n + 2 * GUARD) * 2), SIM_OK);
    T_EQ_I(kern_memset(d_out, 0xff, (n + 2 * GUARD) * 2), SIM_OK);
    char what[128];
    snprintf(what, sizeof what, "prefill D=%d Hkv=%d G=%d bs=%d shift=%d", D, Hkv, G, bs, shift);
    check_rc(kern_attn_prefill((kern_bf16 *)d_out + GUARD, d_q, b.q_stride, d_layer(&b), &b.kv,
                               b.d_bt, b.mb, d_cu, b.d_ctx, n_seqs, T, H, max_q, scale, NULL),
             what);
    const int tensor_cores = (D == 64 || D == 128) && shift == 0 && b.q_stride % 8 == 0;
    compare(d_out, ref, n, H, D, b.vmax, tensor_cores ? 5e-3 : 1e-3, what);
    kern_free(&d_q_alloc);
    kern_free(&d_out);
    kern_free(&d_cu);
    sim_free(q);
    sim_free(ref);
    batch_free(&b);
}

/* ---- arguments ---- */

static void check_args(gsl_rng *r) {
    const int ctx[1] = {5};
    struct batch b;
    batch_make(&b, r, 64, 2, 2, 16, ctx, 1, 0);
    void *d = b.d_cache;
    T_EQ_I(
        kern_attn_decode(d, d, 256, d, &b.kv, b.d_bt, b.mb, b.d_ctx, -1, 4, 5, 1.0f, NULL, 0, NULL),
        SIM_EINVAL);
    T_EQ_I(
        kern_attn_decode(d, d, 256, d, &b.kv, b.d_bt, b.mb, b.d_ctx, 1, 3, 5, 1.0f, NULL, 0, NULL),
        SIM_EINVAL); /* 3 heads over 2 KV heads */
    T_EQ_I(
        kern_attn_decode(d, d, 100, d, &b.kv, b.d_bt, b.mb, b.d_ctx, 1, 4, 5, 1.0f, NULL, 0, NULL),
        SIM_EINVAL); /* q_stride < H * D */
    T_EQ_I(kern_attn_prefill(NULL, d, 256, d, &b.kv, b.d_bt, b.mb, b.d_ctx, b.d_ctx, 1, 1, 4, 1,
                             1.0f, NULL),
           SIM_EINVAL);
    T_EQ_I(kern_attn_decode(NULL, NULL, 256, NULL, &b.kv, NULL, b.mb, NULL, 0, 4, 0, 1.0f, NULL, 0,
                            NULL),
           SIM_OK);
    b.kv.dtype = KERN_DT_F32;
    T_EQ_I(
        kern_attn_decode(d, d, 256, d, &b.kv, b.d_bt, b.mb, b.d_ctx, 1, 4, 5, 1.0f, NULL, 0, NULL),
        SIM_ENOTSUP);
    T_EQ_I(kern_attn_prefill(d, d, 256, d, &b.kv, b.d_bt, b.mb, b.d_ctx, b.d_ctx, 1, 1, 4, 1, 1.0f,
                             NULL),
           SIM_ENOTSUP);
    b.kv.dtype = KERN_DT_BF16;
    T_EQ_I(kern_attn_decode_work_bytes(4, 8, 128, 512), 0);
    T_ASSERT(kern_attn_decode_work_bytes(4, 8, 128, 513) >= (size_t)4 * 8 * 2 * 128 * 4);
    batch_free(&b);
}

static void run_all(void) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    T_ASSERT(r != NULL);
    gsl_rng_set(r, 20240616UL);
    static const int ctx_a[] = {1, 15, 16, 17, 100, 513, 1100, 64};
    static const int ctx_b[] = {33, 7, 64, 1};
    /* D, Hkv, G, bs, contexts, q padding, shift, workspace */
    for (int work = 0; work <= 2; work++) {
        check_decode(r, 128, 2, 4, 16, ctx_a, 8, 0, 0, work);
        check_decode(r, 64, 1, 8, 5, ctx_a, 8, 2 * 64, 0, work);
        check_decode(r, 256, 2, 1, 32, ctx_a, 8, 8, 0, work);
    }
    check_decode(r, 128, 1, 16, 16, ctx_a, 8, 0, 0, 1); /* two head chunks */
    check_decode(r, 128, 1, 12, 16, ctx_a, 8, 0, 0, 1); /* head chunks of 8 and 4 */
    {
        /* sequences with no context yet: zero output, and empty partitions */
        static const int ctx_c[] = {0, 9, 0, 70};
        for (int work = 0; work <= 2; work++)
            check_decode(r, 128, 2, 4, 16, ctx_c, 4, 0, 0, work);
    }
    check_decode(r, 64, 4, 1, 1, ctx_b, 4, 0, 0, 1);
    check_decode(r, 40, 2, 3, 5, ctx_b, 4, 0, 0, 1);   /* generic kernel */
    check_decode(r, 128, 2, 4, 16, ctx_b, 4, 0, 1, 1); /* misaligned q: generic */

    static const int past[] = {0, 0, 5, 16, 31, 100, 3, 600, 7, 1};
    static const int chunk[] = {1, 17, 1, 16, 33, 64, 130, 70, 0, 65};
    check_prefill(r, 128, 2, 4, 16, past, chunk, 10, 0, 0);
    check_prefill(r, 64, 1, 8, 5, past, chunk, 10, 2 * 64, 0);
    check_prefill(r, 64, 4, 1, 1, past, chunk, 10, 0, 0);
    check_prefill(r, 40, 2, 2, 16, past, chunk, 10, 0, 0);  /* generic kernel */
    check_prefill(r, 128, 1, 2, 16, past, chunk, 10, 0, 1); /* misaligned q: generic */
    check_args(r);
    gsl_rng_free(r);
    T_EQ_I(sim_mem_current(), 0);
}

#endif /* KV_HAVE_CUDA */

T_GPU_MAIN("test_kern_attn_gpu", run_all)
