/* ceilings: the GPU's measured ceilings, the denominators of kernel
 * efficiency (docs/VALIDATION.md): device-to-device copy bandwidth (bytes
 * read plus written), the cuBLAS bf16 GEMM rate on large random matrices,
 * the FP8 E4M3 GEMM rate through kvfleet's own launcher (kern_gemm:
 * cuBLASLt, bf16 output), and host-device copy bandwidth, pinned and
 * pageable, against copy size.
 * Inputs are random (a hash of the index), never zeros; each figure is the
 * median of timed repeats after a warm-up, timed with CUDA events. Each
 * result is checked on the host first: the random fill against the same
 * hash rounded by kern_bf16_from_f32, the copy byte for byte, sampled GEMM
 * outputs against float64 dot products (relative error of the sample), the
 * host copies' round trip byte for byte; a failed check exits 1.
 *
 *     kernels/dev/ceilings [COPY_MIB] [GEMM_N] [FP8_N]  (defaults 2048, 8192, 16384)
 *
 * FP8_N is larger than GEMM_N because kern_gemm asks cuBLASLt for an
 * algorithm on every call (tens of microseconds of host time, docs/gpu.md):
 * at 16384^3 that is under 1% of the call; a GPU without FP8 skips it.
 */
#include <algorithm>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include "dev_util.cuh"
#include "kern.h"

static void cublas_check(cublasStatus_t s, const char *stmt, int line) {
    if (s != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "ceilings.cu:%d: %s: cuBLAS status %d\n", line, stmt, (int)s);
        exit(1);
    }
}
#define CUBLAS_CHECK(expr) cublas_check((expr), #expr, __LINE__)

/* The value fill_random writes at i: a float in [-1, 1) from a hash of
 * (i, seed), on the host as on the device. */
__host__ __device__ static float random_at(size_t i, uint32_t seed) {
    uint32_t h = (uint32_t)i * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    return (float)(h & 0xffff) / 32768.0f - 1.0f;
}

/* x[i] = random_at(i, seed) rounded to FP8 E4M3 (|x| < 1: no saturation) */
__global__ void fill_random_fp8(uint8_t *x, size_t n, uint32_t seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] = __nv_cvt_float_to_fp8(random_at(i, seed), __NV_SATFINITE, __NV_E4M3);
}

/* x[i] = random_at(i, seed) rounded to bf16 */
__global__ void fill_random(__nv_bfloat16 *x, size_t n, uint32_t seed) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] = __float2bfloat16(random_at(i, seed));
}

static void check(bool ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "ceilings: check failed: %s\n", what);
        exit(1);
    }
}

/* The first and last k values of x (n of them) as fill_random(seed) wrote
 * them, against kern_bf16_from_f32 of the same floats, bit for bit. */
static void check_fill(const __nv_bfloat16 *x, size_t n, uint32_t seed) {
    const size_t k = 1u << 20;
    std::vector<kern_bf16> h(k);
    for (int end = 0; end < 2; end++) {
        size_t at = end ? n - k : 0;
        CUDA_CHECK(cudaMemcpy(h.data(), x + at, k * sizeof(kern_bf16), cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < k; i++)
            check(h[i] == kern_bf16_from_f32(random_at(at + i, seed)),
                  "the random fill differs from its host reference");
    }
}

/* The relative error (root of summed squares) of 64 sampled outputs of an
 * n x n x n GEMM against float64 dot products of its inputs: a(i, k) and
 * b(k, j) the inputs and c(i, j) the output, as floats. */
template <typename A, typename B, typename C> static double sampled_rel_err(int n, A a, B b, C c) {
    double err2 = 0, ref2 = 0;
    for (int t = 0; t < 64; t++) {
        size_t i = (size_t)t * 127 % n, j = (size_t)t * 8191 % n;
        double ref = 0;
        for (int k = 0; k < n; k++)
            ref += (double)a(i, (size_t)k) * b((size_t)k, j);
        err2 += (c(i, j) - ref) * (c(i, j) - ref);
        ref2 += ref * ref;
    }
    return sqrt(err2 / ref2);
}

/* Median milliseconds of `repeats` calls of f, each between two events,
 * after two warm-up calls. */
template <typename F> static float median_ms(int repeats, F f) {
    cudaEvent_t a, b;
    std::vector<float> v;
    CUDA_CHECK(cudaEventCreate(&a));
    CUDA_CHECK(cudaEventCreate(&b));
    f();
    f();
    CUDA_CHECK(cudaDeviceSynchronize());
    for (int i = 0; i < repeats; i++) {
        float ms;
        CUDA_CHECK(cudaEventRecord(a));
        f();
        CUDA_CHECK(cudaEventRecord(b));
        CUDA_CHECK(cudaEventSynchronize(b));
        CUDA_CHECK(cudaGetLastError());
        CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
        v.push_back(ms);
    }
    CUDA_CHECK(cudaEventDestroy(a));
    CUDA_CHECK(cudaEventDestroy(b));
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

int main(int argc, char **argv) {
    size_t copy_mib = argc > 1 ? (size_t)atol(argv[1]) : 2048;
    int n = argc > 2 ? atoi(argv[2]) : 8192;
    int n8 = argc > 3 ? atoi(argv[3]) : 16384;
    cudaDeviceProp prop;
    int drv = 0;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    CUDA_CHECK(cudaDriverGetVersion(&drv));
    printf("ceilings on %s (%d SMs, %.0f MiB L2, driver API %d)\n", prop.name,
           prop.multiProcessorCount, prop.l2CacheSize / 1048576.0, drv);

    /* 1. device-to-device copy */
    size_t bytes = copy_mib << 20;
    __nv_bfloat16 *src, *dst;
    CUDA_CHECK(cudaMalloc(&src, bytes));
    CUDA_CHECK(cudaMalloc(&dst, bytes));
    fill_random<<<1024, 256>>>(src, bytes / 2, 1);
    CUDA_CHECK(cudaGetLastError());
    check_fill(src, bytes / 2, 1);
    CUDA_CHECK(cudaMemset(dst, 0xff, bytes)); /* poison */
    float ms = median_ms(
        20, [&] { CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice)); });
    check_fill(dst, bytes / 2, 1);
    printf("d2d copy      %6zu MiB: %9.3f ms  %8.1f GB/s (read + written)\n", copy_mib, ms,
           2.0 * bytes / (ms * 1e-3) / 1e9);
    CUDA_CHECK(cudaFree(src));
    CUDA_CHECK(cudaFree(dst));

    /* 2. cuBLAS bf16 GEMM, fp32 accumulation, three sets of operands in
     * turn so that no call finds the last one's in L2 */
    size_t ne = (size_t)n * n;
    __nv_bfloat16 *m[9];
    for (int i = 0; i < 9; i++) {
        CUDA_CHECK(cudaMalloc(&m[i], ne * sizeof(__nv_bfloat16)));
        fill_random<<<1024, 256>>>(m[i], ne, 7u + (uint32_t)i);
        CUDA_CHECK(cudaGetLastError());
    }
    cublasHandle_t h;
    CUBLAS_CHECK(cublasCreate(&h));
    const float one = 1.0f, zero = 0.0f;
    int turn = 0;
    ms = median_ms(20, [&] {
        __nv_bfloat16 **s = &m[3 * (turn++ % 3)];
        CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, s[0], CUDA_R_16BF, n,
                                  s[1], CUDA_R_16BF, n, &zero, s[2], CUDA_R_16BF, n,
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    });
    {
        /* C = A B column-major (cuBLAS's layout) of the last set timed:
         * 64 sampled outputs against float64 dot products of the inputs */
        __nv_bfloat16 **s = &m[3 * ((turn - 1) % 3)];
        std::vector<kern_bf16> a(ne), b(ne), c(ne);
        CUDA_CHECK(cudaMemcpy(a.data(), s[0], ne * 2, cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(b.data(), s[1], ne * 2, cudaMemcpyDeviceToHost));
        CUDA_CHECK(cudaMemcpy(c.data(), s[2], ne * 2, cudaMemcpyDeviceToHost));
        double e = sampled_rel_err(
            n, [&](size_t i, size_t k) { return kern_f32_from_bf16(a[i + k * n]); },
            [&](size_t k, size_t j) { return kern_f32_from_bf16(b[k + j * n]); },
            [&](size_t i, size_t j) { return kern_f32_from_bf16(c[i + j * n]); });
        printf("bf16 gemm  sampled relative error %.2e (bf16 output: under 1e-2)\n", e);
        check(e < 1e-2, "the GEMM differs from its float64 reference");
    }
    printf("bf16 gemm  %5d^3      : %9.3f ms  %8.1f TFLOP/s\n", n, ms,
           2.0 * n * (double)n * n / (ms * 1e-3) / 1e12);
    CUBLAS_CHECK(cublasDestroy(h));
    for (int i = 0; i < 9; i++)
        CUDA_CHECK(cudaFree(m[i]));

    /* 2b. FP8 E4M3 GEMM through kern_gemm (cuBLASLt, bf16 output, fp32
     * accumulation), y (n8, n8) = x . w^T row-major, three operand sets */
    {
        kern_ctx *kc = NULL;
        if (kern_ctx_create(&kc) != 0) {
            fprintf(stderr, "ceilings: kern_ctx_create: %s\n", kern_last_error());
            return 1;
        }
        if (!kern_ctx_has_fp8(kc)) {
            printf("fp8 gemm   skipped: this GPU has no FP8 tensor cores\n");
        } else {
            size_t e8 = (size_t)n8 * n8;
            uint8_t *x8[3], *w8[3];
            __nv_bfloat16 *y8;
            for (int i = 0; i < 3; i++) {
                CUDA_CHECK(cudaMalloc(&x8[i], e8));
                CUDA_CHECK(cudaMalloc(&w8[i], e8));
                fill_random_fp8<<<1024, 256>>>(x8[i], e8, 101u + (uint32_t)i);
                fill_random_fp8<<<1024, 256>>>(w8[i], e8, 201u + (uint32_t)i);
                CUDA_CHECK(cudaGetLastError());
            }
            CUDA_CHECK(cudaMalloc(&y8, e8 * sizeof(__nv_bfloat16)));
            int t8 = 0;
            ms = median_ms(10, [&] {
                int i = t8++ % 3;
                if (kern_gemm(kc, y8, x8[i], w8[i], n8, n8, n8, KERN_DT_FP8_E4M3, 1.0f, NULL) !=
                    0) {
                    fprintf(stderr, "ceilings: fp8 kern_gemm: %s\n", kern_last_error());
                    exit(1);
                }
            });
            {
                /* the last set timed: 64 sampled outputs against float64 dot
                 * products of the decoded FP8 inputs */
                int i = (t8 - 1) % 3;
                std::vector<uint8_t> a(e8), b(e8);
                std::vector<kern_bf16> c(e8);
                CUDA_CHECK(cudaMemcpy(a.data(), x8[i], e8, cudaMemcpyDeviceToHost));
                CUDA_CHECK(cudaMemcpy(b.data(), w8[i], e8, cudaMemcpyDeviceToHost));
                CUDA_CHECK(cudaMemcpy(c.data(), y8, e8 * 2, cudaMemcpyDeviceToHost));
                /* y = x . w^T row-major: x(r, k), w(col, k) */
                double e = sampled_rel_err(
                    n8, [&](size_t r, size_t k) { return kern_f32_from_fp8(a[r * n8 + k]); },
                    [&](size_t k, size_t col) { return kern_f32_from_fp8(b[col * n8 + k]); },
                    [&](size_t r, size_t col) { return kern_f32_from_bf16(c[r * n8 + col]); });
                printf("fp8 gemm   sampled relative error %.2e (bf16 output: under 1e-2)\n", e);
                check(e < 1e-2, "the FP8 GEMM differs from its float64 reference");
            }
            printf("fp8 gemm   %5d^3      : %9.3f ms  %8.1f TFLOP/s (kern_gemm, cuBLASLt)\n", n8,
                   ms, 2.0 * n8 * (double)n8 * n8 / (ms * 1e-3) / 1e12);
            for (int i = 0; i < 3; i++) {
                CUDA_CHECK(cudaFree(x8[i]));
                CUDA_CHECK(cudaFree(w8[i]));
            }
            CUDA_CHECK(cudaFree(y8));
        }
        kern_ctx_destroy(kc);
    }

    /* 3. host <-> device, pinned and pageable, by copy size */
    const size_t sizes[] = {64u << 10, 1u << 20, 16u << 20, 256u << 20};
    size_t big = sizes[3];
    void *dev, *pinned, *pageable;
    CUDA_CHECK(cudaMalloc(&dev, big));
    CUDA_CHECK(cudaMallocHost(&pinned, big));
    pageable = malloc(big);
    if (pageable == NULL) {
        fprintf(stderr, "ceilings: out of host memory\n");
        return 1;
    }
    for (size_t i = 0; i < big; i++)
        ((unsigned char *)pinned)[i] = ((unsigned char *)pageable)[i] = (unsigned char)(i * 131u);
    for (int kind = 0; kind < 2; kind++) {
        void *host = kind == 0 ? pinned : pageable;
        for (size_t s : sizes) {
            float h2d = median_ms(
                10, [&] { CUDA_CHECK(cudaMemcpy(dev, host, s, cudaMemcpyHostToDevice)); });
            float d2h = median_ms(
                10, [&] { CUDA_CHECK(cudaMemcpy(host, dev, s, cudaMemcpyDeviceToHost)); });
            printf("%-8s %8zu KiB: h2d %9.4f ms %6.2f GB/s   d2h %9.4f ms %6.2f GB/s\n",
                   kind == 0 ? "pinned" : "pageable", s >> 10, h2d, s / (h2d * 1e-3) / 1e9, d2h,
                   s / (d2h * 1e-3) / 1e9);
        }
    }
    /* every copy wrote back what it sent: the pattern is intact */
    for (size_t i = 0; i < big; i++)
        check(((unsigned char *)pinned)[i] == (unsigned char)(i * 131u) &&
                  ((unsigned char *)pageable)[i] == (unsigned char)(i * 131u),
              "a host copy's round trip changed the data");
    CUDA_CHECK(cudaFree(dev));
    CUDA_CHECK(cudaFreeHost(pinned));
    free(pageable);
    return 0;
}
