/* embed.cu: the embedding lookup on the GPU (operator embed) and its
 * launcher kern_embed() (reference: embed_ref.c).
 *
 *     out[t, :] = table[tokens[t], :]
 *
 * Dimension legend:
 *     T      tokens (rows of out), one thread block of 128 threads each
 *     Hd     row length (hidden), elements
 *     V      rows of table (vocabulary)
 *     U      copy unit: 16, 4, 2 or 1 bytes, the widest that divides the
 *            row's bytes and both pointers' alignment
 *
 * A pure copy, memory-bound: T * Hd * elem bytes read and written, bit for
 * bit, so any dtype works. Token ids live in device memory (the caller's
 * contract); an id outside [0, V) writes a zero row instead of reading out
 * of bounds. The cuda executor also gathers a step's sampled rows of the
 * hidden states with it.
 *
 * Non-goals: fused scaling, position embeddings, tensor-parallel vocab
 * shards. Not run on a GPU yet (docs/backends.md). */
#include "config.h"
#include "kern_cuda.cuh"

#include <stdint.h>

/* ---- kernel ---- */

/* Block t copies row tokens[t] of table (V, units) into row t of out. */
template <typename U>
__global__ void __launch_bounds__(128)
    embed_kernel(U *out, const U *table, const int32_t *tokens, int units, int vocab) {
    const int t = blockIdx.x;
    const int32_t id = tokens[t];
    U *o = out + (size_t)t * units; /* (units) row t */
    if (id < 0 || id >= vocab) {
        for (int i = threadIdx.x; i < units; i += blockDim.x)
            o[i] = U{};
        return;
    }
    const U *src = table + (size_t)id * units; /* (units) row id */
    for (int i = threadIdx.x; i < units; i += blockDim.x)
        o[i] = src[i];
}

/* ---- launcher ---- */

template <typename U>
static int launch(void *out, const void *table, const int32_t *tokens, int n_tokens, size_t row,
                  int vocab, cudaStream_t stream) {
    const int units = (int)(row / sizeof(U));
    embed_kernel<U><<<(unsigned)n_tokens, 128, 0, stream>>>(
        static_cast<U *>(out), static_cast<const U *>(table), tokens, units, vocab);
    KERN_CHECK(cudaGetLastError());
    return SIM_OK;
}

static bool fits(size_t row, const void *a, const void *b, size_t u) {
    return row % u == 0 && (uintptr_t)a % u == 0 && (uintptr_t)b % u == 0;
}

/* Gathers rows d_tokens[0 .. T) of d_table (V, Hd) into d_out (T, Hd),
 * dtype elements, queued on stream. Returns SIM_OK once launched (T == 0
 * launches nothing), SIM_EINVAL for bad sizes, an unknown dtype or a NULL
 * pointer, SIM_EDEVICE when the launch fails. */
extern "C" int kern_embed(void *d_out, const void *d_table, const int32_t *d_tokens, int n_tokens,
                          int hidden, int vocab, int dtype, void *stream) {
    KERN_CHECK_ARG(n_tokens >= 0 && hidden >= 1 && vocab >= 1 && kern_dtype_size(dtype) > 0);
    if (n_tokens == 0)
        return SIM_OK;
    KERN_CHECK_ARG(d_out != NULL && d_table != NULL && d_tokens != NULL);
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    const size_t row = (size_t)hidden * kern_dtype_size(dtype); /* bytes */
    if (fits(row, d_out, d_table, 16))
        return launch<uint4>(d_out, d_table, d_tokens, n_tokens, row, vocab, st);
    if (fits(row, d_out, d_table, 4))
        return launch<uint32_t>(d_out, d_table, d_tokens, n_tokens, row, vocab, st);
    if (fits(row, d_out, d_table, 2))
        return launch<uint16_t>(d_out, d_table, d_tokens, n_tokens, row, vocab, st);
    return launch<uint8_t>(d_out, d_table, d_tokens, n_tokens, row, vocab, st);
}
