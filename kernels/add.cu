/* add.cu: the residual add on the GPU and its launcher kern_add()
 * (reference: add_ref.c).
 *
 *     y[i] = y[i] + x[i],  i < n
 *
 * Dimension legend:
 *     n      elements (T * hidden for a residual stream)
 *     V      elements per 128-bit pack: 4 (fp32) or 8 (bf16)
 *     block  256 threads, one pack (or one element) per thread per step of
 *            a grid-stride loop
 *
 * Element-wise, memory-bound: 3 * n * elem bytes. Packs are used when n is
 * a multiple of V and both pointers are 16-byte aligned, else a scalar
 * loop runs. fp32 arithmetic, one rounding per bf16 output. The perf model
 * counts it under norm (vLLM fuses it into RMSNorm).
 *
 * Non-goals: fusion with RMSNorm (a later variant), broadcasting. Not run
 * on a GPU yet (docs/backends.md). */
#include "config.h"
#include "kern_cuda.cuh"

/* ---- kernel ---- */

/* Grid-stride over n_items packs (VEC) or elements. */
template <typename T, bool VEC>
__global__ void __launch_bounds__(256) add_kernel(T *y, const T *x, long long n_items) {
    constexpr int V = VEC ? pack128<T>::size : 1;
    for (long long it = (long long)blockIdx.x * blockDim.x + threadIdx.x; it < n_items;
         it += (long long)gridDim.x * blockDim.x) {
        if constexpr (VEC) {
            /* y is written here: a plain load, not the read-only path of pack128_load */
            pack128<T> yp, xp = pack128_load(x + it * V);
            *reinterpret_cast<int4 *>(&yp) = *reinterpret_cast<const int4 *>(y + it * V);
#pragma unroll
            for (int e = 0; e < V; e++)
                yp.v[e] = kern_from_f32<T>(kern_to_f32(yp.v[e]) + kern_to_f32(xp.v[e]));
            pack128_store(y + it * V, yp);
        } else {
            y[it] = kern_from_f32<T>(kern_to_f32(y[it]) + kern_to_f32(x[it]));
        }
    }
}

/* ---- launcher ---- */

template <typename T> static int launch(T *y, const T *x, long long n, cudaStream_t stream) {
    constexpr int V = pack128<T>::size;
    const bool vec = n % V == 0 && kern_aligned16(y) && kern_aligned16(x);
    const long long n_items = vec ? n / V : n;
    long long blocks = (n_items + 255) / 256;
    if (blocks > 65536) /* enough to fill any GPU; the loop strides over the rest */
        blocks = 65536;
    if (vec)
        add_kernel<T, true><<<(unsigned)blocks, 256, 0, stream>>>(y, x, n_items);
    else
        add_kernel<T, false><<<(unsigned)blocks, 256, 0, stream>>>(y, x, n_items);
    KERN_CHECK(cudaGetLastError());
    return SIM_OK;
}

/* d_y (n) += d_x (n) of dtype (KERN_DT_F32 or KERN_DT_BF16), queued on
 * stream; x must not overlap y unless equal. Returns SIM_OK once launched
 * (n == 0 launches nothing), SIM_EINVAL for n < 0, an unknown dtype or a
 * NULL pointer, SIM_EDEVICE when the launch fails. */
extern "C" int kern_add(void *d_y, const void *d_x, long long n, int dtype, void *stream) {
    KERN_CHECK_ARG(n >= 0);
    KERN_CHECK_ARG(dtype == KERN_DT_F32 || dtype == KERN_DT_BF16);
    if (n == 0)
        return SIM_OK;
    KERN_CHECK_ARG(d_y != NULL && d_x != NULL);
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    if (dtype == KERN_DT_F32)
        return launch(static_cast<float *>(d_y), static_cast<const float *>(d_x), n, st);
    return launch(static_cast<__nv_bfloat16 *>(d_y), static_cast<const __nv_bfloat16 *>(d_x), n,
                  st);
}
