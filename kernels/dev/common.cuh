/* common.cuh: what the RMSNorm dev variants share (llm.c dev/cuda/common.h):
 * checked CUDA calls that exit, 128-bit packs, a seeded generator for test
 * data, the CPU reference, a correctness check and an event-timed benchmark.
 *
 * Each variant (rmsnorm1.cu ...) is one standalone program built by
 * `make kern-dev`: it checks its kernel against the CPU reference on the
 * shape given (default T = 8192 tokens, H = 4096, bf16), then times it for
 * each block size it supports and prints microseconds per call and the
 * effective HBM bandwidth, counting x read once, w read once and y written
 * once: (2 * T * H + H) * 2 bytes.
 *
 * Non-goals: this is benchmark scaffolding, not library code; errors exit.
 * Production kernels live in kernels/ (one .cu per op, kern_cuda.cuh). */
#ifndef KERN_DEV_COMMON_CUH
#define KERN_DEV_COMMON_CUH

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

typedef __nv_bfloat16 bf16;

/* ---- errors ---- */

#include "dev_util.cuh"

/* ---- packs and reductions ---- */

template <typename T> struct alignas(16) pack128 {
    static constexpr int size = 16 / sizeof(T); /* elements per pack */
    T v[16 / sizeof(T)];
};

template <typename T> __device__ __forceinline__ pack128<T> pack128_load(const T *p) {
    pack128<T> r;
    *reinterpret_cast<int4 *>(&r) = __ldg(reinterpret_cast<const int4 *>(p));
    return r;
}

template <typename T> __device__ __forceinline__ void pack128_store(T *p, const pack128<T> &r) {
    *reinterpret_cast<int4 *>(p) = *reinterpret_cast<const int4 *>(&r);
}

__device__ __forceinline__ float warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

/* ---- host side ---- */

/* Arguments: [T H]; defaults T = 8192, H = 4096. */
struct dev_shape {
    int T;     /* tokens (rows) */
    int H;     /* hidden size (row length) */
    float eps; /* added to the mean square */
};

static dev_shape dev_parse(int argc, char **argv) {
    dev_shape s = {8192, 4096, 1e-6f};
    if (argc == 3) {
        s.T = atoi(argv[1]);
        s.H = atoi(argv[2]);
    }
    if (argc != 1 && argc != 3) {
        fprintf(stderr, "usage: %s [T H]\n", argv[0]);
        exit(2);
    }
    if (s.T < 1 || s.H < 1) {
        fprintf(stderr, "%s: T and H must be >= 1, got %d %d\n", argv[0], s.T, s.H);
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
    printf("%s on %s, T = %d, H = %d, bf16\n", argv[0], prop.name, s.T, s.H);
    return s;
}

/* xorshift64*: reproducible data without GSL in a standalone program. */
static float dev_rand(uint64_t *st) {
    *st ^= *st >> 12;
    *st ^= *st << 25;
    *st ^= *st >> 27;
    uint64_t r = *st * 0x2545f4914f6cdd1dULL;
    double u = (double)(r >> 11) / 9007199254740992.0; /* [0, 1) */
    double m = 0.05 + 2.0 * u;                         /* never zero */
    return (float)((r & 1) ? -m : m);
}

/* Host buffers: x (T, H) and w (H) as bf16 and the reference y (T, H) as
 * float, computed in double from the bf16 values. */
struct dev_data {
    bf16 *x, *w;
    float *y_ref;
};

static dev_data dev_make(const dev_shape &s) {
    dev_data d;
    size_t n = (size_t)s.T * s.H;
    d.x = (bf16 *)malloc(n * sizeof(bf16));
    d.w = (bf16 *)malloc(s.H * sizeof(bf16));
    d.y_ref = (float *)malloc(n * sizeof(float));
    if (!d.x || !d.w || !d.y_ref) {
        fprintf(stderr, "out of host memory\n");
        exit(1);
    }
    uint64_t st = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < n; i++)
        d.x[i] = __float2bfloat16_rn(dev_rand(&st));
    for (int i = 0; i < s.H; i++)
        d.w[i] = __float2bfloat16_rn(dev_rand(&st));
    for (int t = 0; t < s.T; t++) {
        const bf16 *x = d.x + (size_t)t * s.H; /* (H) */
        double ss = 0.0;
        for (int i = 0; i < s.H; i++)
            ss += (double)__bfloat162float(x[i]) * __bfloat162float(x[i]);
        double scale = 1.0 / sqrt(ss / s.H + s.eps);
        for (int i = 0; i < s.H; i++)
            d.y_ref[(size_t)t * s.H + i] =
                (float)(__bfloat162float(x[i]) * scale * __bfloat162float(d.w[i]));
    }
    return d;
}

/* Compares the device output d_y (T, H) with the reference, rel 1e-2;
 * exits on the first mismatch or on an unwritten (NaN) element. */
static void dev_validate(const char *name, const bf16 *d_y, const dev_data &d, const dev_shape &s) {
    size_t n = (size_t)s.T * s.H;
    bf16 *y = (bf16 *)malloc(n * sizeof(bf16));
    if (y == NULL) {
        fprintf(stderr, "out of host memory\n");
        exit(1);
    }
    CUDA_CHECK(cudaMemcpy(y, d_y, n * sizeof(bf16), cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++) {
        float got = __bfloat162float(y[i]), want = d.y_ref[i];
        if (!(fabsf(got - want) <= 1e-2f * fabsf(want))) {
            fprintf(stderr, "%s: mismatch at [%zu, %zu]: %g vs reference %g\n", name, i / s.H,
                    i % s.H, got, want);
            exit(1);
        }
    }
    free(y);
}

/* Device copies of x and w, and a NaN-poisoned output y. */
struct dev_bufs {
    bf16 *x, *w, *y;
};

static dev_bufs dev_upload(const dev_data &d, const dev_shape &s) {
    dev_bufs b;
    size_t n = (size_t)s.T * s.H;
    CUDA_CHECK(cudaMalloc(&b.x, n * sizeof(bf16)));
    CUDA_CHECK(cudaMalloc(&b.w, s.H * sizeof(bf16)));
    CUDA_CHECK(cudaMalloc(&b.y, n * sizeof(bf16)));
    CUDA_CHECK(cudaMemcpy(b.x, d.x, n * sizeof(bf16), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(b.w, d.w, s.H * sizeof(bf16), cudaMemcpyHostToDevice));
    return b;
}

/* Checks and times one configuration; prints a result line. */
template <typename F>
static void dev_run(const char *name, int block_size, const dev_bufs &b, const dev_data &d,
                    const dev_shape &s, F launch) {
    size_t n = (size_t)s.T * s.H;
    CUDA_CHECK(cudaMemset(b.y, 0xff, n * sizeof(bf16))); /* NaN poison */
    launch();
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaDeviceSynchronize());
    dev_validate(name, b.y, d, s);
    float ms = dev_time_ms(100, launch);
    double bytes = (2.0 * n + s.H) * sizeof(bf16);
    printf("%-10s block_size %4d: %9.2f us  %8.1f GB/s\n", name, block_size, ms * 1e3,
           bytes / (ms * 1e-3) / 1e9);
}

static void dev_free(dev_bufs &b, dev_data &d) {
    CUDA_CHECK(cudaFree(b.x));
    CUDA_CHECK(cudaFree(b.w));
    CUDA_CHECK(cudaFree(b.y));
    free(d.x);
    free(d.w);
    free(d.y_ref);
}

#endif /* KERN_DEV_COMMON_CUH */
