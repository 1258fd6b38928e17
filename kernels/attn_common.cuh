/* attn_common.cuh: what the attention kernels (paged_attn.cu, decode;
 * prefill_attn.cu, chunked prefill) and their dev variants share: the paged
 * KV geometry in elements, addressing of a key's row through a block
 * table, and the generic one-warp-per-query-row kernel that serves every
 * head dimension the tuned kernels do not take.
 *
 * Dimension legend: S sequences, T query rows, H query heads, Hkv KV
 * heads, G = H / Hkv, D head dim, bs block size, MB block table row length.
 * The layer pool is (NB, 2, Hkv, bs, D) (kern.h): key j of a sequence with
 * block table row bt, KV head kvh, starts at element
 *
 *     bt[j / bs] * block_stride + kvh * head_stride + (j % bs) * D
 *
 * and its V row kv_stride elements further. Scores are kept in the log2
 * domain: q is multiplied by scale * log2(e) once, so softmax uses exp2f
 * (one MUFU.EX2 instruction) and gives the same probabilities.
 *
 * Non-goals: only .cu files include this header (it names CUDA types). */
#ifndef KERN_ATTN_COMMON_CUH
#define KERN_ATTN_COMMON_CUH

#include "kern_cuda.cuh"

typedef __nv_bfloat16 bf16;

/* log2(e): scale * log2(e) turns exp(x * scale) into exp2(x * scale_log2). */
#define KERN_LOG2E 1.4426950408889634f

/* Where K and V of one layer's pool live, in elements. */
struct kv_geom {
    int block_size;         /* bs, tokens per block */
    int head_dim;           /* D */
    long long block_stride; /* 2 * Hkv * bs * D: from block b to b + 1 */
    long long kv_stride;    /* Hkv * bs * D: from a block's K to its V */
    long long head_stride;  /* bs * D: from KV head h to h + 1 */
};

/* The geometry of a (checked) layout. */
static inline kv_geom kv_geom_of(const kern_kv_layout *kv) {
    kv_geom g;
    g.block_size = kv->block_size;
    g.head_dim = kv->head_dim;
    g.block_stride = (long long)kern_kv_block_stride(kv);
    g.kv_stride = g.block_stride / 2;
    g.head_stride = (long long)kv->block_size * kv->head_dim;
    return g;
}

/* Element offset of key j's K row (D elements) for KV head kvh of the
 * sequence whose block table row is bt. */
__device__ __forceinline__ long long kv_key_offset(const kv_geom &g, const int *bt, int kvh,
                                                   int j) {
    const int blk = __ldg(bt + j / g.block_size);
    return blk * g.block_stride + kvh * g.head_stride + (long long)(j % g.block_size) * g.head_dim;
}

/* Largest warp-wide value; every lane gets it. */
__device__ __forceinline__ float kern_warp_max(float v) {
    for (int off = 16; off > 0; off >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

/* ---- generic kernel: one warp per (query row, head) ----
 *
 * Row r of the batch belongs to sequence s, chunk row i of c, so it attends
 * to keys 0 .. p + i with p = context_lens[s] - c (decode: c = 1, i = 0,
 * all keys). For prefill, s is found by binary search in cu_q (S + 1
 * offsets); cu_q == NULL means one row per sequence (decode). Lane l holds
 * dims l, l + 32, ... (D <= 256: at most 8 per lane) of q and of the
 * output accumulator; each key is one warp-wide dot product (5 shuffles)
 * and one online-softmax update (Milakov and Gimelshein, "Online
 * normalizer calculation for softmax", 2018):
 *
 *     m' = max(m, s_j),  l' = l 2^(m - m') + 2^(s_j - m'),
 *     o' = o 2^(m - m') + 2^(s_j - m') v_j
 *
 * All fp32, no shared memory, any D in 1 .. 256 and any alignment. It reads
 * K and V once per query head (no GQA reuse) with 2-byte loads: correct
 * everywhere, fast nowhere; the dev variants measure how far. */
static __global__ void __launch_bounds__(128)
    attn_rows_kernel(bf16 *out, const bf16 *q, int q_stride, const bf16 *kv, kv_geom g,
                     const int *block_tables, int max_blocks, const int *cu_q,
                     const int *context_lens, int n_seqs, int n_rows, int H, int G,
                     float scale_log2) {
    const int lane = threadIdx.x % 32;
    const long long w = ((long long)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    if (w >= (long long)n_rows * H)
        return; /* whole warps leave together */
    const int r = (int)(w / H), h = (int)(w % H), D = g.head_dim;
    int s = r, i = 0, c = 1;
    if (cu_q != NULL) { /* s = the last sequence with cu_q[s] <= r */
        int lo = 0, hi = n_seqs - 1;
        while (lo < hi) {
            int mid = (lo + hi + 1) / 2;
            if (__ldg(cu_q + mid) <= r)
                lo = mid;
            else
                hi = mid - 1;
        }
        s = lo;
        i = r - __ldg(cu_q + s);
        c = __ldg(cu_q + s + 1) - __ldg(cu_q + s);
    }
    const int n_keys = __ldg(context_lens + s) - c + i + 1; /* keys 0 .. p + i */
    const int *bt = block_tables + (size_t)s * max_blocks;  /* (MB) */
    const int kvh = h / G;
    const bf16 *qr = q + (size_t)r * q_stride + (size_t)h * D; /* (D) */

    float qv[8], acc[8];
#pragma unroll
    for (int j = 0; j < 8; j++) {
        const int d = lane + 32 * j;
        qv[j] = d < D ? __bfloat162float(qr[d]) * scale_log2 : 0.0f;
        acc[j] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int key = 0; key < n_keys; key++) {
        const bf16 *kr = kv + kv_key_offset(g, bt, kvh, key); /* (D) K row */
        const bf16 *vr = kr + g.kv_stride;                    /* (D) V row */
        float dot = 0.0f;
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const int d = lane + 32 * j;
            if (d < D)
                dot += qv[j] * __bfloat162float(kr[d]);
        }
        const float sc = kern_warp_sum(dot);
        const float m_new = fmaxf(m, sc);
        const float corr = exp2f(m - m_new); /* 0 for the first key */
        const float p = exp2f(sc - m_new);
        l = l * corr + p;
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const int d = lane + 32 * j;
            if (d < D)
                acc[j] = acc[j] * corr + p * __bfloat162float(vr[d]);
        }
        m = m_new;
    }
    const float inv = n_keys > 0 ? 1.0f / l : 0.0f;
    bf16 *o = out + ((size_t)r * H + h) * D; /* (D) out[r, h] */
#pragma unroll
    for (int j = 0; j < 8; j++) {
        const int d = lane + 32 * j;
        if (d < D)
            o[d] = __float2bfloat16_rn(acc[j] * inv);
    }
}

/* Launches attn_rows_kernel over n_rows rows (128 threads, 4 rows x heads
 * per block). */
static inline int attn_rows_launch(bf16 *out, const bf16 *q, int q_stride, const bf16 *kv,
                                   const kv_geom &g, const int *block_tables, int max_blocks,
                                   const int *cu_q, const int *context_lens, int n_seqs, int n_rows,
                                   int H, int G, float scale, cudaStream_t stream) {
    const long long n_warps = (long long)n_rows * H;
    const long long n_blocks = (n_warps + 3) / 4;
    KERN_CHECK_ARG(n_blocks <= 0x7fffffffLL);
    attn_rows_kernel<<<(unsigned)n_blocks, 128, 0, stream>>>(out, q, q_stride, kv, g, block_tables,
                                                             max_blocks, cu_q, context_lens, n_seqs,
                                                             n_rows, H, G, scale * KERN_LOG2E);
    KERN_CHECK(cudaGetLastError());
    return SIM_OK;
}

#endif /* KERN_ATTN_COMMON_CUH */
