/* attn_common.cuh: what the attention dev variants share (llm.c
 * dev/cuda/common.h): a random paged batch, its device copy, validation
 * against the CPU reference of kernels/ (linked from libkvkern.a) and an
 * event-timed benchmark line with time, effective HBM bandwidth and
 * TFLOP/s.
 *
 * Decode variants (paged_attn_decode1..4) take [S ctx H Hkv D bs], default
 * 64 sequences of 2048 keys, 32 query heads over 8 KV heads, D = 128,
 * blocks of 16 (Llama 3 8B at batch 64). Prefill variants (prefill_attn1..2)
 * take [S past chunk H Hkv D bs], default 4 sequences each with a chunk of
 * 512 new tokens after 1024 cached ones. Every sequence of a batch has the
 * same lengths; block ids are a random permutation, so pages are scattered
 * as in a long-running server.
 *
 * Counting: bytes = K and V rows each sequence reads once (2 * keys * Hkv
 * * D * 2) plus q and out; flops = 4 * D * H * (query, key) pairs (q.k and
 * p.v, 2 flops per multiply-add). Validation compares the first 8
 * sequences (decode) or the first 64 rows of the first chunk (prefill; the
 * CPU reference is slow) with rel 2^-7 + abs 5e-3 max|v| (bf16 P in the
 * tensor-core prefill), after poisoning the output with NaN.
 *
 * Non-goals: benchmark scaffolding only; errors exit. */
#ifndef KERN_DEV_ATTN_COMMON_CUH
#define KERN_DEV_ATTN_COMMON_CUH

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../attn_common.cuh"
#include "kern.h"

/* ---- errors, random numbers, timing (as in common.cuh, which the
 * attention variants cannot include: kern_cuda.cuh defines its packs) ---- */

#include "dev_util.cuh"

/* xorshift64*: a value with |v| in [0.05, 2.05), random sign, never zero. */
static float dev_rand(uint64_t *st) {
    *st ^= *st >> 12;
    *st ^= *st << 25;
    *st ^= *st >> 27;
    uint64_t r = *st * 0x2545f4914f6cdd1dULL;
    double u = (double)(r >> 11) / 9007199254740992.0; /* [0, 1) */
    double m = 0.05 + 2.0 * u;
    return (float)((r & 1) ? -m : m);
}

/* ---- shape and data ---- */

struct attn_shape {
    int S, H, Hkv, D, bs;
    int past, chunk; /* prefill: tokens cached before the chunk, chunk length; decode: chunk 1 */
    int ctx;         /* keys per sequence: past + chunk */
    int prefill;     /* 1 for the prefill variants */
};

static attn_shape attn_parse(int argc, char **argv, int prefill) {
    attn_shape s;
    s.prefill = prefill;
    s.H = 32, s.Hkv = 8, s.D = 128, s.bs = 16;
    if (prefill) {
        s.S = 4, s.past = 1024, s.chunk = 512;
        if (argc == 8) {
            s.S = atoi(argv[1]), s.past = atoi(argv[2]), s.chunk = atoi(argv[3]);
            s.H = atoi(argv[4]), s.Hkv = atoi(argv[5]), s.D = atoi(argv[6]), s.bs = atoi(argv[7]);
        } else if (argc != 1) {
            fprintf(stderr, "usage: %s [S past chunk H Hkv D bs]\n", argv[0]);
            exit(2);
        }
    } else {
        s.S = 64, s.past = 2047, s.chunk = 1;
        if (argc == 7) {
            s.S = atoi(argv[1]), s.past = atoi(argv[2]) - 1, s.chunk = 1;
            s.H = atoi(argv[3]), s.Hkv = atoi(argv[4]), s.D = atoi(argv[5]), s.bs = atoi(argv[6]);
        } else if (argc != 1) {
            fprintf(stderr, "usage: %s [S ctx H Hkv D bs]\n", argv[0]);
            exit(2);
        }
    }
    s.ctx = s.past + s.chunk;
    if (s.S < 1 || s.past < 0 || s.chunk < 1 || s.Hkv < 1 || s.H < s.Hkv || s.H % s.Hkv != 0 ||
        s.D < 1 || s.D > KERN_ATTN_MAX_HEAD_DIM || s.bs < 1) {
        fprintf(stderr, "%s: bad shape\n", argv[0]);
        exit(2);
    }
    int n_dev = 0;
    cudaError_t e = cudaGetDeviceCount(&n_dev);
    if (e != cudaSuccess || n_dev == 0) {
        fprintf(stderr, "%s: no CUDA device (%s)\n", argv[0],
                e != cudaSuccess ? cudaGetErrorString(e) : "count is 0");
        exit(1);
    }
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    if (prefill)
        printf("%s on %s: S = %d chunks of %d after %d cached, H = %d, Hkv = %d, D = %d, bs = %d\n",
               argv[0], prop.name, s.S, s.chunk, s.past, s.H, s.Hkv, s.D, s.bs);
    else
        printf("%s on %s: S = %d, ctx = %d, H = %d, Hkv = %d, D = %d, bs = %d\n", argv[0],
               prop.name, s.S, s.ctx, s.H, s.Hkv, s.D, s.bs);
    return s;
}

/* Host and device copies of one layer's paged batch. */
struct attn_data {
    kern_kv_layout kv;
    int mb, n_tokens, q_stride;
    kern_bf16 *cache, *q; /* host: (NB, 2, Hkv, bs, D), (T, H, D) */
    int32_t *bt, *ctx_lens, *cu;
    double vmax;
    bf16 *d_cache, *d_q, *d_out; /* device */
    int *d_bt, *d_ctx, *d_cu;
};

static attn_data attn_make(const attn_shape &s) {
    attn_data a;
    a.mb = (s.ctx + s.bs - 1) / s.bs;
    a.kv = {1, s.S * a.mb, s.bs, s.Hkv, s.D, KERN_DT_BF16};
    if (kern_kv_layout_check(&a.kv) != SIM_OK) {
        fprintf(stderr, "bad layout: %s\n", kern_last_error());
        exit(2);
    }
    a.n_tokens = s.S * s.chunk;
    a.q_stride = s.H * s.D;
    const size_t n_cache = kern_kv_cache_bytes(&a.kv) / 2, n_q = (size_t)a.n_tokens * a.q_stride;
    a.cache = (kern_bf16 *)malloc(n_cache * 2);
    a.q = (kern_bf16 *)malloc(n_q * 2);
    a.bt = (int32_t *)malloc((size_t)s.S * a.mb * 4);
    a.ctx_lens = (int32_t *)malloc((size_t)s.S * 4);
    a.cu = (int32_t *)malloc((size_t)(s.S + 1) * 4);
    if (!a.cache || !a.q || !a.bt || !a.ctx_lens || !a.cu) {
        fprintf(stderr, "out of host memory\n");
        exit(1);
    }
    uint64_t st = 0x9e3779b97f4a7c15ULL;
    a.vmax = 0.0;
    for (size_t i = 0; i < n_cache; i++) {
        a.cache[i] = kern_bf16_from_f32(dev_rand(&st));
        double v = fabs(kern_f32_from_bf16(a.cache[i]));
        a.vmax = v > a.vmax ? v : a.vmax;
    }
    for (size_t i = 0; i < n_q; i++)
        a.q[i] = kern_bf16_from_f32(dev_rand(&st));
    const int nb = a.kv.n_blocks; /* a random permutation of the blocks */
    for (int i = 0; i < nb; i++)
        a.bt[i] = i;
    for (int i = nb - 1; i > 0; i--) {
        st ^= st >> 12, st ^= st << 25, st ^= st >> 27;
        int j = (int)((st * 0x2545f4914f6cdd1dULL >> 33) % (uint64_t)(i + 1));
        int32_t t = a.bt[i];
        a.bt[i] = a.bt[j];
        a.bt[j] = t;
    }
    for (int i = 0; i < s.S; i++) {
        a.ctx_lens[i] = s.ctx;
        a.cu[i] = i * s.chunk;
    }
    a.cu[s.S] = a.n_tokens;
    CUDA_CHECK(cudaMalloc(&a.d_cache, n_cache * 2));
    CUDA_CHECK(cudaMalloc(&a.d_q, n_q * 2));
    CUDA_CHECK(cudaMalloc(&a.d_out, (size_t)a.n_tokens * s.H * s.D * 2));
    CUDA_CHECK(cudaMalloc(&a.d_bt, (size_t)s.S * a.mb * 4));
    CUDA_CHECK(cudaMalloc(&a.d_ctx, (size_t)s.S * 4));
    CUDA_CHECK(cudaMalloc(&a.d_cu, (size_t)(s.S + 1) * 4));
    CUDA_CHECK(cudaMemcpy(a.d_cache, a.cache, n_cache * 2, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(a.d_q, a.q, n_q * 2, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(a.d_bt, a.bt, (size_t)s.S * a.mb * 4, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(a.d_ctx, a.ctx_lens, (size_t)s.S * 4, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(a.d_cu, a.cu, (size_t)(s.S + 1) * 4, cudaMemcpyHostToDevice));
    return a;
}

static void attn_free(attn_data &a) {
    free(a.cache);
    free(a.q);
    free(a.bt);
    free(a.ctx_lens);
    free(a.cu);
    CUDA_CHECK(cudaFree(a.d_cache));
    CUDA_CHECK(cudaFree(a.d_q));
    CUDA_CHECK(cudaFree(a.d_out));
    CUDA_CHECK(cudaFree(a.d_bt));
    CUDA_CHECK(cudaFree(a.d_ctx));
    CUDA_CHECK(cudaFree(a.d_cu));
}

/* ---- validation and timing ---- */

/* Compares the first sequences of d_out with the CPU reference; exits on a
 * mismatch or an unwritten (NaN) element. */
static void attn_validate(const char *name, const attn_shape &s, const attn_data &a) {
    /* decode: the first 8 sequences; prefill: the first 64 rows of sequence
     * 0, as a chunk of their own after the same past (same positions) */
    const int n_seq = s.prefill ? 1 : (s.S < 8 ? s.S : 8);
    const int rows = s.prefill ? (s.chunk < 64 ? s.chunk : 64) : 1;
    const int32_t cu[2] = {0, rows}, ctx0 = s.past + rows;
    const size_t n = (size_t)n_seq * rows * s.H * s.D;
    kern_bf16 *ref = (kern_bf16 *)malloc(n * 2), *got = (kern_bf16 *)malloc(n * 2);
    if (!ref || !got) {
        fprintf(stderr, "out of host memory\n");
        exit(1);
    }
    const float scale = 1.0f / sqrtf((float)s.D);
    int rc = s.prefill ? kern_attn_prefill_ref(ref, a.q, a.q_stride, a.cache, &a.kv, a.bt, a.mb, cu,
                                               &ctx0, 1, s.H, scale)
                       : kern_attn_decode_ref(ref, a.q, a.q_stride, a.cache, &a.kv, a.bt, a.mb,
                                              a.ctx_lens, n_seq, s.H, scale);
    if (rc != SIM_OK) {
        fprintf(stderr, "reference: %s\n", kern_last_error());
        exit(1);
    }
    CUDA_CHECK(cudaMemcpy(got, a.d_out, n * 2, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++) {
        double g = kern_f32_from_bf16(got[i]), w = kern_f32_from_bf16(ref[i]);
        if (!(fabs(g - w) <= 0x1p-7 * fabs(w) + 5e-3 * a.vmax)) {
            fprintf(stderr, "%s: mismatch at row %zu head %zu dim %zu: %g vs reference %g\n", name,
                    i / ((size_t)s.H * s.D), i / s.D % s.H, i % s.D, g, w);
            exit(1);
        }
    }
    free(ref);
    free(got);
}

/* Poisons the output, runs launch once, validates, then times it and
 * prints one line. */
template <typename F>
static void attn_run(const char *name, const char *config, const attn_shape &s, const attn_data &a,
                     F launch) {
    CUDA_CHECK(cudaMemset(a.d_out, 0xff, (size_t)a.n_tokens * s.H * s.D * 2));
    launch();
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    attn_validate(name, s, a);
    const float ms = dev_time_ms(20, launch);
    double pairs = s.prefill ? (double)s.chunk * s.past + (double)s.chunk * (s.chunk + 1) / 2.0
                             : (double)s.ctx;
    pairs *= s.S;
    const double flops = 4.0 * s.D * s.H * pairs;
    const double bytes = 2.0 * s.S * s.ctx * s.Hkv * s.D * 2 + 2.0 * a.n_tokens * s.H * s.D * 2;
    printf("%-18s %-22s %10.2f us %8.1f GB/s %7.2f TFLOP/s\n", name, config, ms * 1e3,
           bytes / (ms * 1e-3) / 1e9, flops / (ms * 1e-3) / 1e12);
}

#endif /* KERN_DEV_ATTN_COMMON_CUH */
