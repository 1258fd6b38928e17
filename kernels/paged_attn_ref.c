/* paged_attn_ref.c: CPU reference of paged decode attention, and the
 * attention row that the prefill reference (prefill_attn_ref.c) shares;
 * the truth that paged_attn.cu and the cpu executor are checked against.
 *
 *     out[s, h] = sum_j softmax_j(scale * q[s, h] . k[s, j]) * v[s, j],
 *     j = 0 .. context_lens[s] - 1, keys of KV head h / G
 *
 * Dimension legend: S sequences (one query token each), H query heads,
 * Hkv KV heads, G = H / Hkv, D head dim (<= KERN_ATTN_MAX_HEAD_DIM), bs
 * block size, MB block table row length. Key j of sequence s is at slot
 * j % bs of block block_tables[s * MB + j / bs] (layout in kern.h).
 *
 * The softmax is the textbook safe one in two passes over the keys: the
 * maximum score first, then exp(score - max), its sum and the weighted sum
 * of V, all in fp32; scores are recomputed in the second pass rather than
 * stored, so nothing is allocated whatever the context length. A dot
 * product of widened bf16 values has exact products and fp32 sums in d
 * order. Each output is rounded once to bf16. Speed is not a goal: this
 * serves tests and tiny models. The _f32 variants run the same loops on
 * fp32 storage (the cpu executor's precision) and round nothing.
 *
 * Every argument is checked before anything is written: a bad block table
 * is reported (SIM_EINVAL), never read out of bounds. */
#include "config.h"
#include "kern.h"
#include "kern_int.h"

#include <math.h>
#include <stdio.h>

/* Records a bad argument (what, the value found, the checking line) for
 * kern_last_error() and returns code. */
static int bad_arg(int code, const char *what, long long value, int line) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s, got %lld", what, value);
    kern_error_record("argument check", "kern__attn_check", __FILE__, line, msg);
    return code;
}
#define bad(code, what, value) bad_arg((code), (what), (value), __LINE__)

/* See kern_int.h. */
int kern__attn_check(const kern_kv_layout *kv, int dtype, const int32_t *block_tables,
                     int max_blocks_per_seq, const int32_t *context_lens, int n_seqs, int n_heads,
                     int q_stride) {
    int rc = kern_kv_layout_check(kv);
    if (rc != SIM_OK)
        return rc;
    if (kv->dtype != dtype)
        return bad(SIM_ENOTSUP,
                   dtype == KERN_DT_F32 ? "kv dtype: expected f32" : "kv dtype: expected bf16",
                   kv->dtype);
    if (kv->head_dim > KERN_ATTN_MAX_HEAD_DIM)
        return bad(SIM_ENOTSUP, "head_dim: expected <= KERN_ATTN_MAX_HEAD_DIM", kv->head_dim);
    if (n_seqs < 0)
        return bad(SIM_EINVAL, "n_seqs: expected >= 0", n_seqs);
    if (n_heads < 1 || n_heads % kv->n_kv_heads != 0)
        return bad(SIM_EINVAL, "n_heads: expected a positive multiple of n_kv_heads", n_heads);
    if ((long long)q_stride < (long long)n_heads * kv->head_dim)
        return bad(SIM_EINVAL, "q_stride: expected >= n_heads * head_dim", q_stride);
    if (max_blocks_per_seq < 1)
        return bad(SIM_EINVAL, "max_blocks_per_seq: expected >= 1", max_blocks_per_seq);
    const long long cap = (long long)max_blocks_per_seq * kv->block_size;
    for (int s = 0; s < n_seqs; s++) {
        const int32_t n = context_lens[s];
        if (n < 0 || n > cap)
            return bad(SIM_EINVAL, "context_lens[s]: expected 0 .. max_blocks_per_seq * bs", n);
        const int32_t *bt = block_tables + (size_t)s * max_blocks_per_seq; /* (MB) row s */
        for (int b = 0; b < (n + kv->block_size - 1) / kv->block_size; b++)
            if (bt[b] < 0 || bt[b] >= kv->n_blocks)
                return bad(SIM_EINVAL, "block id: expected 0 .. n_blocks - 1", bt[b]);
    }
    return SIM_OK;
}

/* scale * q . k_j in fp32, for key j of the sequence (bt) and KV head. */
static float score(const kern_bf16 *q, const kern_bf16 *kv_layer, const kern_kv_layout *kv,
                   const int32_t *bt, int kv_head, int j, float scale) {
    const kern_bf16 *k = /* (D) key j */
        kv_layer + kern_kv_offset(kv, 0, bt[j / kv->block_size], 0, kv_head, j % kv->block_size);
    float dot = 0.0f;
    for (int d = 0; d < kv->head_dim; d++)
        dot += kern_f32_from_bf16(q[d]) * kern_f32_from_bf16(k[d]);
    return dot * scale;
}

/* See kern_int.h. */
void kern__attn_row_ref(kern_bf16 *out, const kern_bf16 *q, const kern_bf16 *kv_layer,
                        const kern_kv_layout *kv, const int32_t *bt, int kv_head, int n_keys,
                        float scale) {
    const int D = kv->head_dim;
    float acc[KERN_ATTN_MAX_HEAD_DIM];
    float m = -INFINITY, l = 0.0f;
    for (int j = 0; j < n_keys; j++) {
        float s = score(q, kv_layer, kv, bt, kv_head, j, scale);
        m = s > m ? s : m;
    }
    for (int d = 0; d < D; d++)
        acc[d] = 0.0f;
    for (int j = 0; j < n_keys; j++) {
        float p = expf(score(q, kv_layer, kv, bt, kv_head, j, scale) - m);
        const kern_bf16 *v = /* (D) value j */
            kv_layer +
            kern_kv_offset(kv, 0, bt[j / kv->block_size], 1, kv_head, j % kv->block_size);
        l += p;
        for (int d = 0; d < D; d++)
            acc[d] += p * kern_f32_from_bf16(v[d]);
    }
    for (int d = 0; d < D; d++)
        out[d] = kern_bf16_from_f32(n_keys > 0 ? acc[d] / l : 0.0f);
}

/* scale * q . k_j on fp32 storage (see score()). */
static float score_f32(const float *q, const float *kv_layer, const kern_kv_layout *kv,
                       const int32_t *bt, int kv_head, int j, float scale) {
    const float *k = /* (D) key j */
        kv_layer + kern_kv_offset(kv, 0, bt[j / kv->block_size], 0, kv_head, j % kv->block_size);
    float dot = 0.0f;
    for (int d = 0; d < kv->head_dim; d++)
        dot += q[d] * k[d];
    return dot * scale;
}

/* See kern_int.h: kern__attn_row_ref() without the bf16 conversions. */
void kern__attn_row_ref_f32(float *out, const float *q, const float *kv_layer,
                            const kern_kv_layout *kv, const int32_t *bt, int kv_head, int n_keys,
                            float scale) {
    const int D = kv->head_dim;
    float m = -INFINITY, l = 0.0f;
    for (int j = 0; j < n_keys; j++) {
        float s = score_f32(q, kv_layer, kv, bt, kv_head, j, scale);
        m = s > m ? s : m;
    }
    for (int d = 0; d < D; d++)
        out[d] = 0.0f;
    for (int j = 0; j < n_keys; j++) {
        float p = expf(score_f32(q, kv_layer, kv, bt, kv_head, j, scale) - m);
        const float *v = /* (D) value j */
            kv_layer +
            kern_kv_offset(kv, 0, bt[j / kv->block_size], 1, kv_head, j % kv->block_size);
        l += p;
        for (int d = 0; d < D; d++)
            out[d] += p * v[d];
    }
    if (n_keys > 0)
        for (int d = 0; d < D; d++)
            out[d] /= l;
}

/* Decode attention for n_seqs sequences, one query token each: out (S, H,
 * D) dense, q (S, H, D) with rows q_stride apart. Returns SIM_OK, or the
 * code of the first failed check (nothing written). */
int kern_attn_decode_ref(kern_bf16 *out, const kern_bf16 *q, int q_stride,
                         const kern_bf16 *kv_layer, const kern_kv_layout *kv,
                         const int32_t *block_tables, int max_blocks_per_seq,
                         const int32_t *context_lens, int n_seqs, int n_heads, float scale) {
    int rc = kern__attn_check(kv, KERN_DT_BF16, block_tables, max_blocks_per_seq, context_lens,
                              n_seqs, n_heads, q_stride);
    if (rc != SIM_OK)
        return rc;
    const int D = kv->head_dim, G = n_heads / kv->n_kv_heads;
    for (int s = 0; s < n_seqs; s++) {
        const int32_t *bt = block_tables + (size_t)s * max_blocks_per_seq; /* (MB) */
        for (int h = 0; h < n_heads; h++)
            kern__attn_row_ref(out + ((size_t)s * n_heads + h) * D, /* (D) out[s, h] */
                               q + (size_t)s * q_stride + (size_t)h * D, kv_layer, kv, bt, h / G,
                               context_lens[s], scale);
    }
    return SIM_OK;
}

/* Decode attention on fp32 storage (kv->dtype KERN_DT_F32): the same
 * contract as kern_attn_decode_ref(), nothing rounded. */
int kern_attn_decode_ref_f32(float *out, const float *q, int q_stride, const float *kv_layer,
                             const kern_kv_layout *kv, const int32_t *block_tables,
                             int max_blocks_per_seq, const int32_t *context_lens, int n_seqs,
                             int n_heads, float scale) {
    int rc = kern__attn_check(kv, KERN_DT_F32, block_tables, max_blocks_per_seq, context_lens,
                              n_seqs, n_heads, q_stride);
    if (rc != SIM_OK)
        return rc;
    const int D = kv->head_dim, G = n_heads / kv->n_kv_heads;
    for (int s = 0; s < n_seqs; s++) {
        const int32_t *bt = block_tables + (size_t)s * max_blocks_per_seq; /* (MB) */
        for (int h = 0; h < n_heads; h++)
            kern__attn_row_ref_f32(out + ((size_t)s * n_heads + h) * D, /* (D) out[s, h] */
                                   q + (size_t)s * q_stride + (size_t)h * D, kv_layer, kv, bt,
                                   h / G, context_lens[s], scale);
    }
    return SIM_OK;
}
