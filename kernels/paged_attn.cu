/* paged_attn.cu: paged decode attention on the GPU (operator attn_decode)
 * and its launcher kern_attn_decode() (reference: paged_attn_ref.c;
 * variants: dev/paged_attn_decode*.cu; this file is variant 4).
 *
 * One query token per sequence attends to all context_lens[s] keys of its
 * sequence, read through the block table (kv layout in kern.h):
 *
 *     out[s, h] = sum_j softmax_j(scale * q[s, h] . k[s, j]) * v[s, j]
 *
 * Dimension legend:
 *     S     sequences (grid y), one query token each
 *     H     query heads; Hkv KV heads; G = H / Hkv query heads per KV head
 *     D     head dim: 64, 128 or 256 here (others: attn_rows_kernel)
 *     NG    query heads one thread block serves: min(G, DEC_MAXG = 8);
 *           a KV head with G > 8 is split over ceil(G / 8) blocks (grid x)
 *     P     partitions of DEC_PART = 512 keys (grid z, split-K)
 *     TILE  keys per pass inside a block (64)
 *     block 128 threads (4 warps)
 *
 * Algorithm (flash-decoding: Dao et al., "Flash-Decoding for long-context
 * inference", 2023; vLLM PagedAttention V2's partitions). A block owns one
 * KV head of one sequence, the NG query heads that read it and one
 * partition of the context, so each K and V row is read from HBM once for
 * all NG heads (GQA reuse). It walks its keys in tiles of 64:
 *   A. scores: groups of D / 8 lanes each load one key row with 16-byte
 *      loads (coalesced: rows are contiguous inside a block), multiply by
 *      the NG query vectors held in registers (pre-scaled by scale *
 *      log2 e) and reduce within the group by shuffles; the row offsets
 *      are kept in shared memory for step C;
 *   B. online softmax: one warp per head updates the running max m and sum
 *      l and turns the tile's scores into probabilities 2^(s - m);
 *   C. values: each thread owns 2 dims (a bf16x2 load per key; a warp reads
 *      128 contiguous bytes of a V row) and keeps NG x 2 fp32 accumulators,
 *      rescaled by 2^(m_old - m_new) once per tile.
 * The key lanes of step C are summed through shared memory at the end.
 * With one partition the block normalises and writes bf16 out; with P > 1
 * it writes its unnormalised fp32 accumulator and (m, l) to the workspace
 * and attn_decode_reduce_kernel combines the partitions:
 *
 *     M = max_p m_p,  L = sum_p l_p 2^(m_p - M),  o = sum_p o_p 2^(m_p - M) / L
 *
 * Work: 4 * S * H * ctx * D flops against 4 * S * Hkv * ctx * D bytes of K
 * and V (bf16): G flops per byte, so decode is HBM-bound for G <= ~100.
 * All arithmetic is fp32; each output is rounded once to bf16.
 *
 * Workspace: part_o (S, H, P, D) fp32, then part_ml (S, H, P) float2 (m, l),
 * kern_attn_decode_work_bytes(); without it (or with P = 1) one block
 * covers the whole context.
 *
 * Non-goals: fp8 KV cache, ALiBi, sliding windows, logits soft-capping. */
#include "config.h"
#include "attn_common.cuh"

#include <limits.h>

#define DEC_THREADS 128 /* threads per block */
#define DEC_TILE    64  /* keys per tile */
#define DEC_MAXG    8   /* query heads per block */
#define DEC_PART    512 /* keys per split-K partition */

/* ---- kernels ---- */

/* One block: KV head kvh (grid x / n_gchunks), query heads h0 .. h0 + NG -
 * 1 (chunk grid x % n_gchunks), sequence s (grid y), partition z (grid z)
 * of part_len keys. out is NULL when partials go to part_o / part_ml. */
template <int D>
__global__ void __launch_bounds__(DEC_THREADS)
    attn_decode_kernel(bf16 *out, float *part_o, float2 *part_ml, const bf16 *q, int q_stride,
                       const bf16 *kv, kv_geom g, const int *block_tables, int max_blocks,
                       const int *context_lens, int H, int G, int n_gchunks, int part_len,
                       float scale_log2) {
    constexpr int LG = D / 8;             /* lanes per key row in step A */
    constexpr int NKG = DEC_THREADS / LG; /* key rows scored at once */
    constexpr int NDP = D / 2;            /* dim pairs */
    constexpr int KL = DEC_THREADS / NDP; /* key lanes in step C */
    static_assert(LG <= 32 && 32 % LG == 0, "a key group must fit in a warp");
    static_assert(DEC_TILE % NKG == 0, "every lane runs the same step A trip count");
    static_assert(KL >= 1 && DEC_THREADS % NDP == 0, "step C needs whole dim-pair sets");
    static_assert(DEC_TILE == 64, "step B gives each lane two keys of the tile");

    __shared__ float s_p[DEC_MAXG][DEC_TILE];             /* scores, then probabilities */
    __shared__ long long s_off[DEC_TILE];                 /* K row offset of each tile key */
    __shared__ float s_m[DEC_MAXG], s_l[DEC_MAXG];        /* running max and sum per head */
    __shared__ float s_alpha[DEC_MAXG];                   /* this tile's rescale per head */
    __shared__ float s_red[KL][DEC_MAXG][KL > 1 ? D : 1]; /* step C partial sums */

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int kvh = blockIdx.x / n_gchunks, gc = blockIdx.x % n_gchunks;
    const int s = blockIdx.y, part = blockIdx.z;
    const int h0 = kvh * G + gc * DEC_MAXG;          /* first query head */
    const int ng = min(DEC_MAXG, G - gc * DEC_MAXG); /* query heads here */
    const int ctx = __ldg(context_lens + s);
    const int k_begin = part * part_len;
    if (part > 0 && k_begin >= ctx)
        return; /* nothing to do; the reduce never reads this partition */
    const int k_end = min(ctx, k_begin + part_len);
    const int *bt = block_tables + (size_t)s * max_blocks; /* (MB) */

    /* q of the NG heads, lane li of its key group holding dims 8 li .. 8 li + 7 */
    const int li = tid % LG, kg = tid / LG;
    float qr[DEC_MAXG][8];
#pragma unroll
    for (int gg = 0; gg < DEC_MAXG; gg++) {
        if (gg < ng) {
            const bf16 *qh = q + (size_t)s * q_stride + (size_t)(h0 + gg) * D; /* (D) */
            pack128<bf16> qp = pack128_load(qh + 8 * li);
#pragma unroll
            for (int e = 0; e < 8; e++)
                qr[gg][e] = __bfloat162float(qp.v[e]) * scale_log2;
        } else {
#pragma unroll
            for (int e = 0; e < 8; e++)
                qr[gg][e] = 0.0f;
        }
    }
    if (tid < DEC_MAXG) {
        s_m[tid] = -INFINITY;
        s_l[tid] = 0.0f;
    }

    const int dp = tid % NDP, kl = tid / NDP; /* step C: dims 2 dp, 2 dp + 1; key lane */
    float acc[DEC_MAXG][2];
#pragma unroll
    for (int gg = 0; gg < DEC_MAXG; gg++)
        acc[gg][0] = acc[gg][1] = 0.0f;
    __syncthreads();

    for (int t0 = k_begin; t0 < k_end; t0 += DEC_TILE) {
        const int n_t = min(DEC_TILE, k_end - t0); /* >= 1 */

        /* A: scores s_p[gg][j] = q_gg . k_(t0 + j), -inf past the tile */
        for (int j = kg; j < DEC_TILE; j += NKG) {
            float dot[DEC_MAXG];
            long long off = 0;
            if (j < n_t) {
                off = kv_key_offset(g, bt, kvh, t0 + j);
                pack128<bf16> kp = pack128_load(kv + off + 8 * li); /* 8 dims of K row */
                float kf[8];
#pragma unroll
                for (int e = 0; e < 8; e++)
                    kf[e] = __bfloat162float(kp.v[e]);
#pragma unroll
                for (int gg = 0; gg < DEC_MAXG; gg++) {
                    float d = 0.0f;
#pragma unroll
                    for (int e = 0; e < 8; e++)
                        d += qr[gg][e] * kf[e];
                    dot[gg] = d;
                }
            } else {
#pragma unroll
                for (int gg = 0; gg < DEC_MAXG; gg++)
                    dot[gg] = 0.0f;
            }
#pragma unroll
            for (int gg = 0; gg < DEC_MAXG; gg++) {
                if (gg < ng) { /* uniform over the block */
#pragma unroll
                    for (int o = LG / 2; o > 0; o >>= 1)
                        dot[gg] += __shfl_xor_sync(0xffffffffu, dot[gg], o);
                }
            }
            if (li == 0) {
                s_off[j] = off;
#pragma unroll
                for (int gg = 0; gg < DEC_MAXG; gg++)
                    if (gg < ng)
                        s_p[gg][j] = j < n_t ? dot[gg] : -INFINITY;
            }
        }
        __syncthreads();

        /* B: online softmax, one warp per head (two lanes' worth of keys each) */
        for (int gg = warp; gg < ng; gg += DEC_THREADS / 32) {
            const float a = s_p[gg][lane], b = s_p[gg][lane + 32];
            const float m_old = s_m[gg];
            const float m_new = fmaxf(m_old, kern_warp_max(fmaxf(a, b))); /* finite */
            const float pa = exp2f(a - m_new), pb = exp2f(b - m_new);
            s_p[gg][lane] = pa;
            s_p[gg][lane + 32] = pb;
            const float sum = kern_warp_sum(pa + pb);
            __syncwarp(); /* every lane has read s_m[gg] before lane 0 rewrites it */
            if (lane == 0) {
                const float alpha = exp2f(m_old - m_new); /* 0 on the first tile */
                s_alpha[gg] = alpha;
                s_l[gg] = s_l[gg] * alpha + sum;
                s_m[gg] = m_new;
            }
        }
        __syncthreads();

        /* C: acc = acc * alpha + sum_j p_j v_j over this thread's keys */
#pragma unroll
        for (int gg = 0; gg < DEC_MAXG; gg++) {
            if (gg < ng) {
                acc[gg][0] *= s_alpha[gg];
                acc[gg][1] *= s_alpha[gg];
            }
        }
        for (int j = kl; j < n_t; j += KL) {
            const __nv_bfloat162 v2 = *reinterpret_cast<const __nv_bfloat162 *>(
                kv + s_off[j] + g.kv_stride + 2 * dp); /* dims 2 dp, 2 dp + 1 of V row */
            const float2 vf = __bfloat1622float2(v2);
#pragma unroll
            for (int gg = 0; gg < DEC_MAXG; gg++) {
                if (gg < ng) {
                    const float p = s_p[gg][j];
                    acc[gg][0] += p * vf.x;
                    acc[gg][1] += p * vf.y;
                }
            }
        }
        __syncthreads(); /* s_p and s_off are rewritten by the next tile */
    }

    /* sum the KL key lanes into key lane 0 */
    if constexpr (KL > 1) {
#pragma unroll
        for (int gg = 0; gg < DEC_MAXG; gg++) {
            if (gg < ng) {
                s_red[kl][gg][2 * dp] = acc[gg][0];
                s_red[kl][gg][2 * dp + 1] = acc[gg][1];
            }
        }
        __syncthreads();
        if (kl == 0) {
#pragma unroll
            for (int gg = 0; gg < DEC_MAXG; gg++) {
                if (gg < ng) {
                    for (int r = 1; r < KL; r++) {
                        acc[gg][0] += s_red[r][gg][2 * dp];
                        acc[gg][1] += s_red[r][gg][2 * dp + 1];
                    }
                }
            }
        }
    }
    if (kl != 0)
        return;
#pragma unroll
    for (int gg = 0; gg < DEC_MAXG; gg++) {
        if (gg >= ng)
            continue;
        const int h = h0 + gg;
        if (out != NULL) {
            const float inv = ctx > 0 ? 1.0f / s_l[gg] : 0.0f; /* no keys: zeros */
            *reinterpret_cast<__nv_bfloat162 *>(out + ((size_t)s * H + h) * D + 2 * dp) =
                __floats2bfloat162_rn(acc[gg][0] * inv, acc[gg][1] * inv);
        } else {
            const size_t idx = ((size_t)s * H + h) * gridDim.z + part; /* (s, h, part) */
            *reinterpret_cast<float2 *>(part_o + idx * D + 2 * dp) =
                make_float2(acc[gg][0], acc[gg][1]);
            if (dp == 0)
                part_ml[idx] = make_float2(s_m[gg], s_l[gg]);
        }
    }
}

/* Combines the partitions of one (sequence, head) (grid x = h, y = s):
 * the first ceil(ctx / part_len) of n_parts are valid. */
__global__ void __launch_bounds__(128)
    attn_decode_reduce_kernel(bf16 *out, const float *part_o, const float2 *part_ml,
                              const int *context_lens, int H, int D, int n_parts, int part_len) {
    const int h = blockIdx.x, s = blockIdx.y;
    const int ctx = __ldg(context_lens + s);
    const int np = min(n_parts, (ctx + part_len - 1) / part_len);
    const size_t base = ((size_t)s * H + h) * n_parts; /* (P) partials of (s, h) */
    bf16 *o = out + ((size_t)s * H + h) * D;           /* (D) */
    float M = -INFINITY, L = 0.0f;
    for (int p = 0; p < np; p++)
        M = fmaxf(M, part_ml[base + p].x);
    for (int p = 0; p < np; p++)
        L += part_ml[base + p].y * exp2f(part_ml[base + p].x - M);
    const float inv = np > 0 ? 1.0f / L : 0.0f;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float acc = 0.0f;
        for (int p = 0; p < np; p++)
            acc += part_o[(base + p) * D + d] * exp2f(part_ml[base + p].x - M);
        o[d] = __float2bfloat16_rn(acc * inv);
    }
}

/* ---- launcher ---- */

/* Partitions of DEC_PART keys for contexts up to max_context (>= 1). */
static int n_parts_for(int max_context) {
    return max_context <= DEC_PART ? 1 : (max_context + DEC_PART - 1) / DEC_PART;
}

/* Bytes of part_o, rounded up to 16 so that part_ml is aligned. */
static size_t part_o_bytes(int n_seqs, int n_heads, int head_dim, int n_parts) {
    size_t b = (size_t)n_seqs * n_heads * n_parts * head_dim * sizeof(float);
    return (b + 15) / 16 * 16;
}

/* Bytes of split-K workspace for a batch of n_seqs sequences, n_heads query
 * heads of head_dim, contexts up to max_context keys; 0 when one pass is
 * enough (max_context <= 512) or an argument is < 1. */
extern "C" size_t kern_attn_decode_work_bytes(int n_seqs, int n_heads, int head_dim,
                                              int max_context) {
    if (n_seqs < 1 || n_heads < 1 || head_dim < 1 || max_context < 1)
        return 0;
    const int np = n_parts_for(max_context);
    if (np == 1)
        return 0;
    return part_o_bytes(n_seqs, n_heads, head_dim, np) +
           (size_t)n_seqs * n_heads * np * sizeof(float2);
}

/* Launches attn_decode_kernel<D> (and the reduce when split). */
template <int D>
static int launch(bf16 *out, const bf16 *q, int q_stride, const bf16 *kv, const kv_geom &g,
                  const int *block_tables, int max_blocks, const int *context_lens, int n_seqs,
                  int H, int Hkv, int max_context, float scale, void *d_work, size_t work_bytes,
                  cudaStream_t stream) {
    const int G = H / Hkv;
    const int n_gchunks = (G + DEC_MAXG - 1) / DEC_MAXG;
    const int np = n_parts_for(max_context);
    const size_t need = kern_attn_decode_work_bytes(n_seqs, H, D, max_context);
    const bool split = np > 1 && d_work != NULL && work_bytes >= need && kern_aligned16(d_work);
    const float scale_log2 = scale * KERN_LOG2E;
    KERN_CHECK_ARG(n_seqs <= 65535 && (long long)Hkv * n_gchunks <= 0x7fffffffLL);
    if (!split) {
        dim3 grid(Hkv * n_gchunks, n_seqs, 1);
        attn_decode_kernel<D><<<grid, DEC_THREADS, 0, stream>>>(
            out, NULL, NULL, q, q_stride, kv, g, block_tables, max_blocks, context_lens, H, G,
            n_gchunks, INT_MAX, scale_log2);
        KERN_CHECK(cudaGetLastError());
        return SIM_OK;
    }
    float *part_o = static_cast<float *>(d_work); /* (S, H, P, D) */
    float2 *part_ml = reinterpret_cast<float2 *>(static_cast<char *>(d_work) +
                                                 part_o_bytes(n_seqs, H, D, np)); /* (S, H, P) */
    dim3 grid(Hkv * n_gchunks, n_seqs, np);
    attn_decode_kernel<D><<<grid, DEC_THREADS, 0, stream>>>(
        NULL, part_o, part_ml, q, q_stride, kv, g, block_tables, max_blocks, context_lens, H, G,
        n_gchunks, DEC_PART, scale_log2);
    KERN_CHECK(cudaGetLastError());
    attn_decode_reduce_kernel<<<dim3(H, n_seqs), 128, 0, stream>>>(
        out, part_o, part_ml, context_lens, H, D, np, DEC_PART);
    KERN_CHECK(cudaGetLastError());
    return SIM_OK;
}

/* Paged decode attention of n_seqs sequences (one query token each; see
 * kern.h and the file comment): d_out (S, H, D) from d_q (S, H, D) rows
 * q_stride elements apart, one layer's pool d_kv_layer, d_block_tables (S,
 * MB) and d_context_lens (S), all device memory, queued on stream.
 * max_context must be >= every context length (it sizes the split). With
 * d_work (16-byte aligned) of work_bytes >= kern_attn_decode_work_bytes()
 * long contexts are split into partitions of 512 keys; with less (or
 * NULL) one block covers each context. Returns SIM_OK once launched (n_seqs == 0 launches
 * nothing), SIM_EINVAL for bad sizes or NULL pointers, SIM_ENOTSUP for a KV
 * dtype other than bf16 or D > 256, SIM_EDEVICE when a launch fails. Block
 * ids and lengths in device memory are not checked (the reference does). */
extern "C" int kern_attn_decode(void *d_out, const void *d_q, int q_stride, const void *d_kv_layer,
                                const kern_kv_layout *kv, const int32_t *d_block_tables,
                                int max_blocks_per_seq, const int32_t *d_context_lens, int n_seqs,
                                int n_heads, int max_context, float scale, void *d_work,
                                size_t work_bytes, void *stream) {
    KERN_CHECK_ARG(kv != NULL && kern_kv_layout_check(kv) == SIM_OK);
    if (kv->dtype != KERN_DT_BF16 || kv->head_dim > KERN_ATTN_MAX_HEAD_DIM) {
        kern_error_record("kv->dtype == KERN_DT_BF16 && head_dim <= 256", __func__, __FILE__,
                          __LINE__, "not supported");
        return SIM_ENOTSUP;
    }
    KERN_CHECK_ARG(n_seqs >= 0 && max_blocks_per_seq >= 1 && max_context >= 0);
    KERN_CHECK_ARG(n_heads >= 1 && n_heads % kv->n_kv_heads == 0);
    KERN_CHECK_ARG((long long)q_stride >= (long long)n_heads * kv->head_dim);
    KERN_CHECK_ARG(isfinite(scale));
    if (n_seqs == 0)
        return SIM_OK;
    KERN_CHECK_ARG(d_out != NULL && d_q != NULL && d_kv_layer != NULL && d_block_tables != NULL &&
                   d_context_lens != NULL);

    bf16 *out = static_cast<bf16 *>(d_out);
    const bf16 *q = static_cast<const bf16 *>(d_q);
    const bf16 *kvp = static_cast<const bf16 *>(d_kv_layer);
    const kv_geom g = kv_geom_of(kv);
    const int D = kv->head_dim, Hkv = kv->n_kv_heads;
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    const bool tuned = (D == 64 || D == 128 || D == 256) && q_stride % 8 == 0 &&
                       kern_aligned16(q) && kern_aligned16(kvp) &&
                       (reinterpret_cast<uintptr_t>(out) & 3u) == 0;
    if (!tuned)
        return attn_rows_launch(out, q, q_stride, kvp, g, d_block_tables, max_blocks_per_seq, NULL,
                                d_context_lens, n_seqs, n_seqs, n_heads, n_heads / Hkv, scale, st);
    switch (D) {
        case 64:
            return launch<64>(out, q, q_stride, kvp, g, d_block_tables, max_blocks_per_seq,
                              d_context_lens, n_seqs, n_heads, Hkv, max_context, scale, d_work,
                              work_bytes, st);
        case 128:
            return launch<128>(out, q, q_stride, kvp, g, d_block_tables, max_blocks_per_seq,
                               d_context_lens, n_seqs, n_heads, Hkv, max_context, scale, d_work,
                               work_bytes, st);
        default:
            return launch<256>(out, q, q_stride, kvp, g, d_block_tables, max_blocks_per_seq,
                               d_context_lens, n_seqs, n_heads, Hkv, max_context, scale, d_work,
                               work_bytes, st);
    }
}
