/* silu_mul.cu: SiLU-and-multiply on the GPU (operator mlp_act, SwiGLU),
 * bf16 and fp32, and its launcher kern_silu_mul() (reference:
 * silu_mul_ref.c).
 *
 *     out[t, i] = silu(in[t, i]) * in[t, I + i],  silu(g) = g / (1 + e^-g)
 *
 * Dimension legend:
 *     T      tokens (rows)
 *     I      intermediate size; in is (T, 2I), gate half first, out (T, I)
 *     V      elements per 128-bit pack: 4 (fp32) or 8 (bf16)
 *     block  256 threads, one pack (or one element) per thread per step of
 *            a grid-stride loop over the T * I / V packs
 *
 * Element-wise and memory-bound: 3 * T * I * elem bytes (gate and up read,
 * out written). Packs are used when I is a multiple of V and the pointers
 * are 16-byte aligned (then every row is too); otherwise a scalar kernel
 * runs. fp32 arithmetic with expf (accurate, not __expf), one rounding per
 * bf16 output.
 *
 * Non-goals: GELU variants, in-place operation, fp8 output with scales. */
#include "config.h"
#include "kern_cuda.cuh"

/* silu(g) * u in fp32. */
__device__ __forceinline__ float silu_mul_f32(float g, float u) {
    return g / (1.0f + expf(-g)) * u;
}

/* ---- kernel ---- */

/* Grid-stride over the n_items = T * I / V packs (VEC) or T * I elements. */
template <typename T, bool VEC>
__global__ void __launch_bounds__(256)
    silu_mul_kernel(T *out, const T *in, long long n_items, int inter) {
    constexpr int V = VEC ? pack128<T>::size : 1;
    const long long per_row = inter / V; /* items per row */
    for (long long it = (long long)blockIdx.x * blockDim.x + threadIdx.x; it < n_items;
         it += (long long)gridDim.x * blockDim.x) {
        const long long t = it / per_row, i = (it % per_row) * V; /* row, first column */
        const T *g = in + t * 2 * inter + i;                      /* gate[t, i ..] */
        const T *u = g + inter;                                   /* up[t, i ..] */
        T *o = out + t * inter + i;
        if constexpr (VEC) {
            pack128<T> gp = pack128_load(g), up = pack128_load(u), op;
#pragma unroll
            for (int e = 0; e < V; e++)
                op.v[e] =
                    kern_from_f32<T>(silu_mul_f32(kern_to_f32(gp.v[e]), kern_to_f32(up.v[e])));
            pack128_store(o, op);
        } else {
            *o = kern_from_f32<T>(silu_mul_f32(kern_to_f32(*g), kern_to_f32(*u)));
        }
    }
}

/* ---- launcher ---- */

/* Launches silu_mul_kernel<T, ...> with the widest access allowed. */
template <typename T>
static int launch(T *out, const T *in, int n_tokens, int inter, cudaStream_t stream) {
    constexpr int V = pack128<T>::size;
    const bool vec = inter % V == 0 && kern_aligned16(out) && kern_aligned16(in);
    const long long n_items = (long long)n_tokens * inter / (vec ? V : 1);
    long long blocks = (n_items + 255) / 256;
    if (blocks > 65536) /* enough to fill any GPU; the loop strides over the rest */
        blocks = 65536;
    if (vec)
        silu_mul_kernel<T, true><<<(unsigned)blocks, 256, 0, stream>>>(out, in, n_items, inter);
    else
        silu_mul_kernel<T, false><<<(unsigned)blocks, 256, 0, stream>>>(out, in, n_items, inter);
    KERN_CHECK(cudaGetLastError());
    return SIM_OK;
}

/* out (T, I) = silu(gate) * up from in (T, 2I) (gate first) of dtype
 * (KERN_DT_F32 or KERN_DT_BF16), device memory, queued on stream; out must
 * not overlap in. Returns SIM_OK once launched (T == 0 launches nothing),
 * SIM_EINVAL for n_tokens < 0, inter < 1, an unknown dtype or a NULL
 * pointer, SIM_EDEVICE when the launch fails. */
extern "C" int kern_silu_mul(void *d_out, const void *d_in, int n_tokens, int inter, int dtype,
                             void *stream) {
    KERN_CHECK_ARG(n_tokens >= 0 && inter >= 1);
    KERN_CHECK_ARG(dtype == KERN_DT_F32 || dtype == KERN_DT_BF16);
    if (n_tokens == 0)
        return SIM_OK;
    KERN_CHECK_ARG(d_out != NULL && d_in != NULL);
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    if (dtype == KERN_DT_F32)
        return launch(static_cast<float *>(d_out), static_cast<const float *>(d_in), n_tokens,
                      inter, st);
    return launch(static_cast<__nv_bfloat16 *>(d_out), static_cast<const __nv_bfloat16 *>(d_in),
                  n_tokens, inter, st);
}
