/* kern_int.h: what the CPU references of kernels/ share among themselves
 * (SQLite btreeInt.h): the attention row and the paged-batch checks that
 * the decode and prefill references both use.
 *
 * Only .c files include this header; nvcc never sees it, which is why its
 * names may carry the internal kern__ prefix (C++ reserves "__"). */
#ifndef KERN_KERN_INT_H
#define KERN_KERN_INT_H

#include <stdint.h>

#include "kern.h"

/* Checks what decode and prefill attention share: the layout (kv->dtype
 * equal to dtype, the caller's storage type: KERN_DT_BF16 or KERN_DT_F32;
 * D <= KERN_ATTN_MAX_HEAD_DIM), heads, q_stride, each context length
 * against the block table and each block id in use. SIM_OK, SIM_EINVAL or
 * SIM_ENOTSUP, with the reason recorded for kern_last_error(). */
int kern__attn_check(const kern_kv_layout *kv, int dtype, const int32_t *block_tables,
                     int max_blocks_per_seq, const int32_t *context_lens, int n_seqs, int n_heads,
                     int q_stride);

/* One query row of one head: out (D) = softmax(scale * q . K^T) . V over
 * keys 0 .. n_keys - 1 of the sequence whose block table row is bt, KV head
 * kv_head of kv_layer. Zeros when n_keys == 0. */
void kern__attn_row_ref(kern_bf16 *out, const kern_bf16 *q, const kern_bf16 *kv_layer,
                        const kern_kv_layout *kv, const int32_t *bt, int kv_head, int n_keys,
                        float scale);
/* The same row on fp32 storage (kv->dtype KERN_DT_F32), fp32 output. */
void kern__attn_row_ref_f32(float *out, const float *q, const float *kv_layer,
                            const kern_kv_layout *kv, const int32_t *bt, int kv_head, int n_keys,
                            float scale);

#endif /* KERN_KERN_INT_H */
