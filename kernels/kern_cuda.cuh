/* kern_cuda.cuh: what every .cu in kernels/ shares: KERN_CHECK, 128-bit
 * packed loads and stores, fp32 <-> element conversions and block sums.
 *
 * KERN_CHECK(expr) evaluates a CUDA runtime or cuBLAS call; on failure it
 * records the statement, function, file, line and the library's error text
 * (kern_last_error()) and returns SIM_EDEVICE from the enclosing function,
 * which must therefore return int (ggml CUDA_CHECK, without the abort).
 *
 * pack128<T> is 16 bytes of T (4 floats or 8 bf16), the unit of one LDG.128 /
 * STG.128 (llm.c Packed128). Loading one is only valid at a 16-byte aligned
 * address: launchers check alignment before choosing a vectorised kernel.
 *
 * Non-goals: nothing here allocates or launches; only .cu files include this
 * header (it names CUDA types, so C code never sees it). */
#ifndef KERN_KERN_CUDA_CUH
#define KERN_KERN_CUDA_CUH

#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "kern.h"

/* ---- errors ---- */

/* Text of a CUDA runtime or cuBLAS status (overloaded on the status type). */
static inline const char *kern_status_text(cudaError_t e) {
    return cudaGetErrorString(e);
}
static inline const char *kern_status_text(cublasStatus_t s) {
    return cublasGetStatusString(s);
}
/* Success value of each status type. */
static inline bool kern_status_ok(cudaError_t e) {
    return e == cudaSuccess;
}
static inline bool kern_status_ok(cublasStatus_t s) {
    return s == CUBLAS_STATUS_SUCCESS;
}

#define KERN_CHECK(expr)                                                                           \
    do {                                                                                           \
        auto kern_st_ = (expr);                                                                    \
        if (!kern_status_ok(kern_st_)) {                                                           \
            kern_error_record(#expr, __func__, __FILE__, __LINE__, kern_status_text(kern_st_));    \
            return SIM_EDEVICE;                                                                    \
        }                                                                                          \
    } while (0)

/* Records a bad argument and returns SIM_EINVAL (launchers' argument checks). */
#define KERN_CHECK_ARG(cond)                                                                       \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            kern_error_record(#cond, __func__, __FILE__, __LINE__, "invalid argument");            \
            return SIM_EINVAL;                                                                     \
        }                                                                                          \
    } while (0)

/* ---- packed 128-bit access ---- */

template <typename T> struct alignas(16) pack128 {
    static constexpr int size = 16 / sizeof(T); /* elements per pack */
    T v[16 / sizeof(T)];
};

/* Loads the pack at p (16-byte aligned) through the read-only cache. */
template <typename T> __device__ __forceinline__ pack128<T> pack128_load(const T *p) {
    pack128<T> r;
    *reinterpret_cast<int4 *>(&r) = __ldg(reinterpret_cast<const int4 *>(p));
    return r;
}

/* Stores a pack at p (16-byte aligned). */
template <typename T> __device__ __forceinline__ void pack128_store(T *p, const pack128<T> &r) {
    *reinterpret_cast<int4 *>(p) = *reinterpret_cast<const int4 *>(&r);
}

/* True when p is 16-byte aligned (host side, for choosing a kernel). */
static inline bool kern_aligned16(const void *p) {
    return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

/* ---- element conversions: all arithmetic is fp32 ---- */

__device__ __forceinline__ float kern_to_f32(float x) {
    return x;
}
__device__ __forceinline__ float kern_to_f32(__nv_bfloat16 x) {
    return __bfloat162float(x);
}
template <typename T> __device__ __forceinline__ T kern_from_f32(float x);
template <> __device__ __forceinline__ float kern_from_f32<float>(float x) {
    return x;
}
/* Round to nearest even, as kern_bf16_from_f32() does on the host. */
template <> __device__ __forceinline__ __nv_bfloat16 kern_from_f32<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}

/* ---- reductions ---- */

/* Sum of v over the 32 lanes of a warp; every lane gets the result. */
__device__ __forceinline__ float kern_warp_sum(float v) {
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

/* Sum of v over the block (blockDim.x a multiple of 32, at most 1024); every
 * thread gets the result. Must be reached by all threads of the block; uses
 * 32 floats of shared memory and may be called again after it returns. */
__device__ __forceinline__ float kern_block_sum(float v) {
    __shared__ float warp_sums[32];
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    const int n_warps = blockDim.x / 32;
    v = kern_warp_sum(v);
    __syncthreads(); /* warp_sums may still be read by a previous call */
    if (lane == 0)
        warp_sums[warp] = v;
    __syncthreads();
    v = lane < n_warps ? warp_sums[lane] : 0.0f;
    return kern_warp_sum(v);
}

#endif /* KERN_KERN_CUDA_CUH */
