/* argmax.cu: greedy sampling on the GPU (operator sample): the index of
 * each row's largest logit, and its launcher kern_argmax() (reference:
 * argmax_ref.c).
 *
 * Dimension legend:
 *     R      rows (sequences that produce a token), one block each (grid x)
 *     V      vocabulary size (row length)
 *     block  256 threads: each scans V / 256 strided logits (coalesced),
 *            then shuffles and one shared-memory step reduce the block
 *
 * Rule, identical to the reference: the largest value wins, ties go to the
 * lowest index, NaN never wins; a row of NaN gives 0. Each candidate is a
 * (value, index) pair, "none" being (-inf, INT_MAX), and better(a, b) =
 * a.v > b.v or (a.v == b.v and a.i < b.i) is associative and commutative,
 * so any reduction order finds the reference's answer. Memory-bound: R * V
 * * elem bytes read (the LM head's output).
 *
 * Non-goals: temperature, top-k / top-p sampling (they need random
 * numbers and a sort; argmax is what a simulator's executor needs). */
#include "config.h"
#include "kern_cuda.cuh"

#include <limits.h>

/* The better of two candidates (see the file comment). */
__device__ __forceinline__ void better(float &v, int &i, float v2, int i2) {
    if (v2 > v || (v2 == v && i2 < i)) {
        v = v2;
        i = i2;
    }
}

/* ---- kernel ---- */

template <typename T>
__global__ void __launch_bounds__(256) argmax_kernel(int *out, const T *logits, int vocab) {
    __shared__ float s_v[8];
    __shared__ int s_i[8];
    const T *row = logits + (size_t)blockIdx.x * vocab; /* (V) */
    float v = -INFINITY;
    int idx = INT_MAX;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
        const float x = kern_to_f32(row[j]);
        if (!isnan(x))
            better(v, idx, x, j);
    }
    for (int off = 16; off > 0; off >>= 1) {
        const float v2 = __shfl_xor_sync(0xffffffffu, v, off);
        const int i2 = __shfl_xor_sync(0xffffffffu, idx, off);
        better(v, idx, v2, i2);
    }
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0) {
        s_v[warp] = v;
        s_i[warp] = idx;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)blockDim.x / 32; w++)
            better(v, idx, s_v[w], s_i[w]);
        out[blockIdx.x] = idx == INT_MAX ? 0 : idx;
    }
}

/* ---- launcher ---- */

/* d_out (R) int32 = the first index of each row's maximum of d_logits (R,
 * V) of dtype (KERN_DT_F32 or KERN_DT_BF16), device memory, queued on
 * stream. Returns SIM_OK once launched (R == 0 launches nothing),
 * SIM_EINVAL for n_rows < 0, vocab < 1, an unknown dtype or a NULL pointer,
 * SIM_EDEVICE when the launch fails. */
extern "C" int kern_argmax(int32_t *d_out, const void *d_logits, int n_rows, int vocab, int dtype,
                           void *stream) {
    KERN_CHECK_ARG(n_rows >= 0 && vocab >= 1);
    KERN_CHECK_ARG(dtype == KERN_DT_F32 || dtype == KERN_DT_BF16);
    if (n_rows == 0)
        return SIM_OK;
    KERN_CHECK_ARG(d_out != NULL && d_logits != NULL);
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    if (dtype == KERN_DT_F32)
        argmax_kernel<float>
            <<<n_rows, 256, 0, st>>>(d_out, static_cast<const float *>(d_logits), vocab);
    else
        argmax_kernel<__nv_bfloat16>
            <<<n_rows, 256, 0, st>>>(d_out, static_cast<const __nv_bfloat16 *>(d_logits), vocab);
    KERN_CHECK(cudaGetLastError());
    return SIM_OK;
}
