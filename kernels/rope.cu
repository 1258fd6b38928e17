/* rope.cu: rotary position embedding on the GPU, NeoX style (operator
 * rope), in place on q and k, and its launcher kern_rope() (reference:
 * rope_ref.c, which also builds the cos/sin table).
 *
 *     x'[i]       = x[i] cos(p f_i) - x[i + R/2] sin(p f_i)
 *     x'[i + R/2] = x[i + R/2] cos(p f_i) + x[i] sin(p f_i),   i < R/2
 *
 * Dimension legend:
 *     T      tokens, one thread block each (grid x)
 *     H      query heads; Hkv KV heads; D head dim
 *     R      rotary dims (rot_dim, even, <= D); dims R .. D - 1 untouched
 *     P      positions in the table (max_pos)
 *     block  128 threads over the (H + Hkv) x R/2 pairs of the token
 *
 * q (T, H, D) and k (T, Hkv, D) have token rows q_stride / k_stride
 * elements apart (the Q and K parts of fused QKV rows); cos_sin (P, R) fp32
 * holds cos(p f_i) for i < R/2 then sin(p f_i) (kern_rope_cache_ref()),
 * the same numbers the reference uses, so results differ only by fp32
 * contraction (fma) and the final rounding. Memory-bound: each element of
 * q and k is read and written once, plus one table row per token.
 *
 * A token whose position lies outside [0, max_pos) is left unchanged (the
 * reference refuses it); nothing outside the table is read.
 *
 * Non-goals: GPT-J interleaved pairs, scaled (YaRN, Llama 3) frequency
 * tables beyond what the table encodes, fusing with kv_save. */
#include "config.h"
#include "kern_cuda.cuh"

/* ---- kernel ---- */

/* Token blockIdx.x: rotates the R/2 pairs of each of its H + Hkv heads. */
template <typename T>
__global__ void __launch_bounds__(128)
    rope_kernel(T *q, int q_stride, T *k, int k_stride, const float *cos_sin, int max_pos,
                const int *positions, int H, int Hkv, int D, int R) {
    const int t = blockIdx.x;
    const int pos = __ldg(positions + t);
    if (pos < 0 || pos >= max_pos)
        return;
    const int half = R / 2;
    const float *cs = cos_sin + (size_t)pos * R; /* (R) cos then sin */
    for (int idx = threadIdx.x; idx < (H + Hkv) * half; idx += blockDim.x) {
        const int hh = idx / half, i = idx % half;
        T *x = hh < H ? q + (size_t)t * q_stride + (size_t)hh * D
                      : k + (size_t)t * k_stride + (size_t)(hh - H) * D; /* (D) one head */
        const float c = __ldg(cs + i), s = __ldg(cs + half + i);
        const float x1 = kern_to_f32(x[i]), x2 = kern_to_f32(x[half + i]);
        x[i] = kern_from_f32<T>(x1 * c - x2 * s);
        x[half + i] = kern_from_f32<T>(x2 * c + x1 * s);
    }
}

/* ---- launcher ---- */

/* NeoX RoPE in place on d_q (T, H, D) and d_k (T, Hkv, D) (rows q_stride /
 * k_stride elements apart) of dtype (KERN_DT_F32 or KERN_DT_BF16), angles
 * from the fp32 table d_cos_sin (max_pos, rot_dim) and d_positions (T), all
 * device memory, queued on stream. Returns SIM_OK once launched (n_tokens
 * == 0 launches nothing), SIM_EINVAL for bad shapes (rot_dim odd, < 2 or >
 * head_dim; strides too small), an unknown dtype or a NULL pointer, and
 * SIM_EDEVICE when the launch fails. */
extern "C" int kern_rope(void *d_q, int q_stride, void *d_k, int k_stride, const float *d_cos_sin,
                         int max_pos, const int32_t *d_positions, int n_tokens, int n_heads,
                         int n_kv_heads, int head_dim, int rot_dim, int dtype, void *stream) {
    KERN_CHECK_ARG(n_tokens >= 0 && n_heads >= 1 && n_kv_heads >= 1 && head_dim >= 1);
    KERN_CHECK_ARG(rot_dim >= 2 && rot_dim % 2 == 0 && rot_dim <= head_dim && max_pos >= 1);
    KERN_CHECK_ARG((long long)q_stride >= (long long)n_heads * head_dim &&
                   (long long)k_stride >= (long long)n_kv_heads * head_dim);
    KERN_CHECK_ARG(dtype == KERN_DT_F32 || dtype == KERN_DT_BF16);
    if (n_tokens == 0)
        return SIM_OK;
    KERN_CHECK_ARG(d_q != NULL && d_k != NULL && d_cos_sin != NULL && d_positions != NULL);
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    if (dtype == KERN_DT_F32)
        rope_kernel<float><<<n_tokens, 128, 0, st>>>(
            static_cast<float *>(d_q), q_stride, static_cast<float *>(d_k), k_stride, d_cos_sin,
            max_pos, d_positions, n_heads, n_kv_heads, head_dim, rot_dim);
    else
        rope_kernel<__nv_bfloat16><<<n_tokens, 128, 0, st>>>(
            static_cast<__nv_bfloat16 *>(d_q), q_stride, static_cast<__nv_bfloat16 *>(d_k),
            k_stride, d_cos_sin, max_pos, d_positions, n_heads, n_kv_heads, head_dim, rot_dim);
    KERN_CHECK(cudaGetLastError());
    return SIM_OK;
}
