/* rmsnorm.cu: RMSNorm on the GPU, bf16 and fp32, and its launcher
 * kern_rmsnorm() (reference: rmsnorm_ref.c; variants: dev/rmsnorm*.cu).
 *
 *     y[t, i] = x[t, i] / sqrt(mean_j(x[t, j]^2) + eps) * w[i]
 *
 * Dimension legend:
 *     T           tokens (rows), n_tokens >= 0; one thread block per row
 *     H           hidden size (row length), >= 1
 *     V           elements per 128-bit pack: 4 (fp32) or 8 (bf16)
 *     block_size  threads per block: H / V rounded up to a warp, in [32, 512]
 *
 * in and out are (T, H) row-major, weight is (H); out must not overlap in.
 * Each block reads its row twice (sum of squares, then the scaled write; the
 * second read mostly hits L1/L2) and writes it once, so the kernel is bound
 * by HBM bandwidth: 2 * T * H * sizeof(elem) bytes plus the weight. Sums and
 * products are fp32 whatever the element type; bf16 outputs are rounded once,
 * to nearest even.
 *
 * Loads and stores are 128-bit packs when H is a multiple of V and all three
 * pointers are 16-byte aligned (then every row is too); otherwise a scalar
 * kernel runs, so any H and any element-aligned pointer work.
 *
 * Non-goals: fused residual add, fp16, in-place operation. */
#include "config.h"
#include "kern_cuda.cuh"

/* ---- kernel ---- */

/* One block normalises one row. VEC selects 128-bit packs (the launcher has
 * checked H % V == 0 and 16-byte alignment) or scalar accesses. */
template <typename T, bool VEC>
__global__ void rmsnorm_kernel(T *out, const T *in, const T *weight, int H, float eps) {
    constexpr int V = pack128<T>::size;
    const T *x = in + (size_t)blockIdx.x * H; /* (H) row t = blockIdx.x of in */
    T *y = out + (size_t)blockIdx.x * H;      /* (H) row t of out */

    /* pass 1: this thread's part of sum_j x[t, j]^2 */
    float ss = 0.0f;
    if constexpr (VEC) {
        for (int p = threadIdx.x; p < H / V; p += blockDim.x) {
            pack128<T> xp = pack128_load(x + p * V); /* x[p*V .. p*V+V) */
            for (int k = 0; k < V; k++) {
                float v = kern_to_f32(xp.v[k]);
                ss += v * v;
            }
        }
    } else {
        for (int i = threadIdx.x; i < H; i += blockDim.x) {
            float v = kern_to_f32(x[i]);
            ss += v * v;
        }
    }
    const float s = rsqrtf(kern_block_sum(ss) / H + eps); /* 1 / rms of row t */

    /* pass 2: y[t, i] = x[t, i] * s * w[i] */
    if constexpr (VEC) {
        for (int p = threadIdx.x; p < H / V; p += blockDim.x) {
            pack128<T> xp = pack128_load(x + p * V);      /* x[p*V .. p*V+V) */
            pack128<T> wp = pack128_load(weight + p * V); /* w[p*V .. p*V+V) */
            pack128<T> yp;
            for (int k = 0; k < V; k++)
                yp.v[k] = kern_from_f32<T>(kern_to_f32(xp.v[k]) * s * kern_to_f32(wp.v[k]));
            pack128_store(y + p * V, yp);
        }
    } else {
        for (int i = threadIdx.x; i < H; i += blockDim.x)
            y[i] = kern_from_f32<T>(kern_to_f32(x[i]) * s * kern_to_f32(weight[i]));
    }
}

/* ---- launcher ---- */

/* Threads per block for rows of n_items (packs or elements): enough for one
 * item per thread, rounded up to a warp, in [32, 512]. */
static int block_size_for(int n_items) {
    int n = (n_items + 31) / 32 * 32;
    return n < 32 ? 32 : n > 512 ? 512 : n;
}

/* Launches rmsnorm_kernel<T, ...> with the widest access the shapes and
 * pointers allow. */
template <typename T>
static int launch(T *out, const T *in, const T *weight, int n_tokens, int hidden, float eps,
                  cudaStream_t stream) {
    constexpr int V = pack128<T>::size;
    const bool vec =
        hidden % V == 0 && kern_aligned16(out) && kern_aligned16(in) && kern_aligned16(weight);
    if (vec)
        rmsnorm_kernel<T, true>
            <<<n_tokens, block_size_for(hidden / V), 0, stream>>>(out, in, weight, hidden, eps);
    else
        rmsnorm_kernel<T, false>
            <<<n_tokens, block_size_for(hidden), 0, stream>>>(out, in, weight, hidden, eps);
    KERN_CHECK(cudaGetLastError());
    return SIM_OK;
}

/* RMSNorm of n_tokens rows of hidden elements of dtype (KERN_DT_BF16 or
 * KERN_DT_F32): d_out (T, H) from d_in (T, H) and d_weight (H), all device
 * memory, queued on stream (a cudaStream_t; NULL: the default stream).
 * Returns SIM_OK once launched (n_tokens == 0 launches nothing), SIM_EINVAL
 * for a negative n_tokens, hidden < 1, eps < 0 or not finite, an unknown
 * dtype or a NULL pointer, and SIM_EDEVICE when the launch fails; errors
 * that happen while the kernel runs surface at the next synchronisation.
 * The reason of a failure is kept for kern_last_error(). */
extern "C" int kern_rmsnorm(void *d_out, const void *d_in, const void *d_weight, int n_tokens,
                            int hidden, float eps, int dtype, void *stream) {
    KERN_CHECK_ARG(n_tokens >= 0);
    KERN_CHECK_ARG(hidden >= 1);
    KERN_CHECK_ARG(eps >= 0.0f && eps <= 3.4e38f);
    KERN_CHECK_ARG(dtype == KERN_DT_F32 || dtype == KERN_DT_BF16);
    if (n_tokens == 0)
        return SIM_OK;
    KERN_CHECK_ARG(d_out != NULL && d_in != NULL && d_weight != NULL);

    cudaStream_t st = static_cast<cudaStream_t>(stream);
    if (dtype == KERN_DT_F32)
        return launch(static_cast<float *>(d_out), static_cast<const float *>(d_in),
                      static_cast<const float *>(d_weight), n_tokens, hidden, eps, st);
    return launch(static_cast<__nv_bfloat16 *>(d_out), static_cast<const __nv_bfloat16 *>(d_in),
                  static_cast<const __nv_bfloat16 *>(d_weight), n_tokens, hidden, eps, st);
}
