/* prefill_attn_ref.c: CPU reference of chunked-prefill attention over the
 * paged KV cache, the truth that prefill_attn.cu and the cpu executor are
 * checked against.
 *
 * Sequence s contributes a chunk of c_s = cu_seqlens_q[s + 1] -
 * cu_seqlens_q[s] query tokens at positions p_s .. p_s + c_s - 1, where
 * p_s = context_lens[s] - c_s tokens were already in the cache (earlier
 * chunks or a cached prefix) and the chunk's own K and V were appended by
 * kv_save before this runs. Query row i of the chunk attends causally:
 *
 *     out[t, h] = sum_j softmax_j(scale * q[t, h] . k[s, j]) * v[s, j],
 *     t = cu_seqlens_q[s] + i, j = 0 .. p_s + i
 *
 * Dimension legend: S sequences, T = cu_seqlens_q[S] query tokens, H query
 * heads, Hkv KV heads (head h reads h / G), D head dim, bs block size, MB
 * block table row length. Every key, old or new, is read from the cache.
 *
 * The row itself is kern__attn_row_ref() (paged_attn_ref.c): two-pass safe
 * softmax in fp32, one bf16 rounding per output, nothing allocated. A
 * decode step is the special case c_s = 1. kern_attn_prefill_ref_f32() is
 * the same on fp32 storage (the cpu executor's), with no rounding. */
#include "config.h"
#include "kern.h"
#include "kern_int.h"

#include <stdio.h>

/* Checks cu_seqlens_q against the context lengths: it must start at 0 and
 * give 0 <= c_s <= context_lens[s]. SIM_OK or SIM_EINVAL, recorded. */
static int check_chunks(const int32_t *cu_seqlens_q, const int32_t *context_lens, int n_seqs) {
    if (n_seqs > 0 && cu_seqlens_q[0] != 0) {
        kern_error_record("cu_seqlens_q[0] == 0", "kern_attn_prefill_ref", __FILE__, __LINE__,
                          "invalid argument");
        return SIM_EINVAL;
    }
    for (int s = 0; s < n_seqs; s++) {
        const int32_t c = cu_seqlens_q[s + 1] - cu_seqlens_q[s];
        if (c < 0 || c > context_lens[s]) {
            char msg[128];
            snprintf(msg, sizeof msg, "chunk of sequence %d: expected 0 .. %d tokens, got %d", s,
                     (int)context_lens[s], (int)c);
            kern_error_record("0 <= c_s <= context_lens[s]", "kern_attn_prefill_ref", __FILE__,
                              __LINE__, msg);
            return SIM_EINVAL;
        }
    }
    return SIM_OK;
}

/* Chunked-prefill attention: out (T, H, D) dense, q (T, H, D) with rows
 * q_stride apart. Checks everything first (cu_seqlens_q must start at 0,
 * not decrease, and give 0 <= c_s <= context_lens[s]); returns SIM_OK or
 * the code of the first failed check, with nothing written. */
int kern_attn_prefill_ref(kern_bf16 *out, const kern_bf16 *q, int q_stride,
                          const kern_bf16 *kv_layer, const kern_kv_layout *kv,
                          const int32_t *block_tables, int max_blocks_per_seq,
                          const int32_t *cu_seqlens_q, const int32_t *context_lens, int n_seqs,
                          int n_heads, float scale) {
    int rc = kern__attn_check(kv, KERN_DT_BF16, block_tables, max_blocks_per_seq, context_lens,
                              n_seqs, n_heads, q_stride);
    if (rc != SIM_OK)
        return rc;
    if ((rc = check_chunks(cu_seqlens_q, context_lens, n_seqs)) != SIM_OK)
        return rc;
    const int D = kv->head_dim, G = n_heads / kv->n_kv_heads;
    for (int s = 0; s < n_seqs; s++) {
        const int32_t *bt = block_tables + (size_t)s * max_blocks_per_seq; /* (MB) */
        const int32_t t0 = cu_seqlens_q[s], c = cu_seqlens_q[s + 1] - t0;
        const int32_t p = context_lens[s] - c; /* tokens before the chunk */
        for (int i = 0; i < c; i++)
            for (int h = 0; h < n_heads; h++)
                kern__attn_row_ref(out + ((size_t)(t0 + i) * n_heads + h) * D, /* (D) */
                                   q + (size_t)(t0 + i) * q_stride + (size_t)h * D, kv_layer, kv,
                                   bt, h / G, p + i + 1, scale);
    }
    return SIM_OK;
}

/* Chunked-prefill attention on fp32 storage (kv->dtype KERN_DT_F32): the
 * same contract as kern_attn_prefill_ref(), nothing rounded. */
int kern_attn_prefill_ref_f32(float *out, const float *q, int q_stride, const float *kv_layer,
                              const kern_kv_layout *kv, const int32_t *block_tables,
                              int max_blocks_per_seq, const int32_t *cu_seqlens_q,
                              const int32_t *context_lens, int n_seqs, int n_heads, float scale) {
    int rc = kern__attn_check(kv, KERN_DT_F32, block_tables, max_blocks_per_seq, context_lens,
                              n_seqs, n_heads, q_stride);
    if (rc != SIM_OK)
        return rc;
    if ((rc = check_chunks(cu_seqlens_q, context_lens, n_seqs)) != SIM_OK)
        return rc;
    const int D = kv->head_dim, G = n_heads / kv->n_kv_heads;
    for (int s = 0; s < n_seqs; s++) {
        const int32_t *bt = block_tables + (size_t)s * max_blocks_per_seq; /* (MB) */
        const int32_t t0 = cu_seqlens_q[s], c = cu_seqlens_q[s + 1] - t0;
        const int32_t p = context_lens[s] - c; /* tokens before the chunk */
        for (int i = 0; i < c; i++)
            for (int h = 0; h < n_heads; h++)
                kern__attn_row_ref_f32(out + ((size_t)(t0 + i) * n_heads + h) * D, /* (D) */
                                       q + (size_t)(t0 + i) * q_stride + (size_t)h * D, kv_layer,
                                       kv, bt, h / G, p + i + 1, scale);
    }
    return SIM_OK;
}
