/* prefill_attn.cu: chunked-prefill attention on the GPU (operator
 * attn_prefill), a tiled flash-attention kernel on tensor cores that reads
 * every key from the paged cache, and its launcher kern_attn_prefill()
 * (reference: prefill_attn_ref.c; variants: dev/prefill_attn*.cu; this
 * file is variant 2).
 *
 * Sequence s has a chunk of c_s query rows t0_s .. t0_s + c_s - 1 (t0_s =
 * cu_seqlens_q[s]) at positions p_s .. p_s + c_s - 1, p_s = context_lens[s]
 * - c_s; chunk row i attends to keys 0 .. p_s + i, all read through the
 * block table (the chunk's own K and V were saved by kv_save first).
 *
 * Dimension legend:
 *     S      sequences (grid z); chunks may differ in length
 *     H      query heads (grid y); KV head h / G, G = H / Hkv
 *     D      head dim: 64 or 128 here (others: attn_rows_kernel)
 *     BQ     query rows per block: 64, 16 per warp (grid x: ceil(max c / 64))
 *     BK     keys per tile: 64
 *     block  128 threads (4 warps)
 *
 * Algorithm (FlashAttention-2: Dao, "FlashAttention-2: Faster Attention
 * with Better Parallelism and Work Partitioning", 2023). A block owns BQ
 * query rows of one head; each warp owns 16 rows, whose Q fragments stay
 * in registers. For each tile of BK keys up to the block's causal limit:
 *   1. the block copies the tile's K and V rows from their pages into
 *      shared memory with 16-byte loads (a row of a page is contiguous);
 *   2. each warp computes S = Q K^T (16 x BK) with WMMA bf16 m16n16k16
 *      (fp32 accumulate) into its shared scratch;
 *   3. two lanes per row apply the causal mask, update the running max m
 *      and sum l (online softmax in the log2 domain), and write P =
 *      2^(S - m) rounded to bf16 (l sums the rounded values, so the output
 *      is exactly a convex combination of V rows);
 *   4. the warp computes P V (16 x D) with WMMA into the scratch, and the
 *      same two lanes rescale their fp32 output registers by 2^(m_old -
 *      m_new) and add it. (WMMA leaves the accumulator's register layout
 *      unspecified, so rows are rescaled through shared memory.)
 * A warp skips the math of tiles wholly past its rows' causal limit. At the
 * end each row is divided by l and written as bf16.
 *
 * Shared memory (D = 128): K and V tiles 2 x 64 x 136 bf16 (rows padded by
 * 8 against bank conflicts), per-warp fp32 scratch 4 x 16 x 132 (which
 * first holds the Q tile), P 4 x 16 x 72 bf16: 76 KiB, so two blocks per
 * SM. D = 64 needs 44 KiB.
 *
 * Precision: products and sums fp32; P is bf16 (as in FlashAttention), so
 * each weight carries a relative error of at most 2^-9 and an output row
 * at most about 2^-8 max|v|; the generic kernel keeps P in fp32.
 *
 * Non-goals: sliding windows, ALiBi, fp8 KV, cp.async pipelining, and
 * sharing K/V tiles across the G query heads of a KV head (L2 serves the
 * rereads); see docs/kernels.md for what to try next. */
#include "config.h"
#include "attn_common.cuh"

#include <mma.h>

namespace wm = nvcuda::wmma;

#define PF_THREADS 128 /* 4 warps */
#define PF_BQ      64  /* query rows per block */
#define PF_BK      64  /* keys per tile */

/* Shared-memory geometry for head dim D (strides in elements). */
template <int D> struct pf_smem {
    static constexpr int LDK = D + 8;                       /* Q, K, V tile rows (bf16) */
    static constexpr int LDS = (D > PF_BK ? D : PF_BK) + 4; /* warp scratch rows (fp32) */
    static constexpr int LDP = PF_BK + 8;                   /* P rows (bf16) */
    static constexpr size_t kv_bytes = (size_t)PF_BK * LDK * sizeof(bf16);
    static constexpr size_t f_bytes = (size_t)4 * 16 * LDS * sizeof(float);
    static constexpr size_t p_bytes = (size_t)4 * 16 * LDP * sizeof(bf16);
    static constexpr size_t total = 2 * kv_bytes + f_bytes + p_bytes;
    static_assert((size_t)PF_BQ * LDK * sizeof(bf16) <= f_bytes, "the Q tile fits the scratch");
};

/* ---- kernel ---- */

/* Block (x, y, z): query rows 64 x .. 64 x + 63 of sequence z's chunk, head
 * y. Launched only for D in {64, 128}, 16-byte aligned q, kv and out,
 * q_stride % 8 == 0. */
template <int D>
__global__ void __launch_bounds__(PF_THREADS)
    attn_prefill_kernel(bf16 *out, const bf16 *q, int q_stride, const bf16 *kv, kv_geom g,
                        const int *block_tables, int max_blocks, const int *cu_q,
                        const int *context_lens, int H, int G, float scale_log2) {
    using L = pf_smem<D>;
    constexpr int CH = D / 8; /* 16-byte chunks per row */
    extern __shared__ __align__(128) unsigned char smem[];
    bf16 *k_s = reinterpret_cast<bf16 *>(smem);                   /* (BK, LDK) */
    bf16 *v_s = k_s + PF_BK * L::LDK;                             /* (BK, LDK) */
    float *f_s = reinterpret_cast<float *>(v_s + PF_BK * L::LDK); /* (4, 16, LDS) */
    bf16 *p_s = reinterpret_cast<bf16 *>(f_s + 4 * 16 * L::LDS);  /* (4, 16, LDP) */
    bf16 *q_s = reinterpret_cast<bf16 *>(f_s); /* (BQ, LDK), until the Q fragments are loaded */

    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    const int h = blockIdx.y, s = blockIdx.z, kvh = h / G;
    const int t0 = __ldg(cu_q + s), c = __ldg(cu_q + s + 1) - t0;
    const int i0 = blockIdx.x * PF_BQ; /* first chunk row of the block */
    if (i0 >= c)
        return; /* this sequence's chunk is shorter */
    const int p = __ldg(context_lens + s) - c;
    const int rows = min(PF_BQ, c - i0);
    const int n_keys = p + i0 + rows;                      /* keys 0 .. n_keys - 1 */
    const int *bt = block_tables + (size_t)s * max_blocks; /* (MB) */

    /* Q tile (BQ, D) into shared memory, rows past the chunk zeroed */
    for (int idx = tid; idx < PF_BQ * CH; idx += PF_THREADS) {
        const int r = idx / CH, ch = idx % CH;
        int4 val = make_int4(0, 0, 0, 0);
        if (r < rows)
            val = *reinterpret_cast<const int4 *>(q + (size_t)(t0 + i0 + r) * q_stride +
                                                  (size_t)h * D + ch * 8);
        *reinterpret_cast<int4 *>(q_s + r * L::LDK + ch * 8) = val;
    }
    __syncthreads();
    wm::fragment<wm::matrix_a, 16, 16, 16, bf16, wm::row_major> qf[D / 16]; /* rows of this warp */
#pragma unroll
    for (int kk = 0; kk < D / 16; kk++)
        wm::load_matrix_sync(qf[kk], q_s + warp * 16 * L::LDK + kk * 16, L::LDK);
    __syncthreads(); /* the scratch is reused from here on */

    float *f_w = f_s + warp * 16 * L::LDS;   /* (16, LDS) this warp's S, then P V */
    bf16 *p_w = p_s + warp * 16 * L::LDP;    /* (16, LDP) this warp's P */
    const int r = lane / 2, half = lane % 2; /* row of this lane; its half of the columns */
    const int i = i0 + warp * 16 + r;        /* chunk row */
    const bool row_ok = i < c;
    const int limit = p + i; /* last visible key of row i */
    const bool warp_has_rows = i0 + warp * 16 < c;
    const int warp_limit = p + min(i0 + warp * 16 + 15, c - 1); /* last key any row needs */

    float o[D / 2]; /* out[row r, half * D / 2 + cc], unnormalised */
#pragma unroll
    for (int cc = 0; cc < D / 2; cc++)
        o[cc] = 0.0f;
    float m_i = -INFINITY, l_i = 0.0f;

    for (int k0 = 0; k0 < n_keys; k0 += PF_BK) {
        __syncthreads(); /* the previous tile's K and V are consumed */
        /* 1: K and V rows k0 .. k0 + BK - 1 from their pages (zeros past n_keys) */
        for (int idx = tid; idx < PF_BK * CH; idx += PF_THREADS) {
            const int kr = idx / CH, ch = idx % CH, key = k0 + kr;
            int4 kval = make_int4(0, 0, 0, 0), vval = kval;
            if (key < n_keys) {
                const long long off = kv_key_offset(g, bt, kvh, key) + ch * 8;
                kval = *reinterpret_cast<const int4 *>(kv + off);
                vval = *reinterpret_cast<const int4 *>(kv + off + g.kv_stride);
            }
            *reinterpret_cast<int4 *>(k_s + kr * L::LDK + ch * 8) = kval;
            *reinterpret_cast<int4 *>(v_s + kr * L::LDK + ch * 8) = vval;
        }
        __syncthreads();
        /* warp-uniform: skip a tile none of whose keys this warp's rows see */
        if (!warp_has_rows || k0 > warp_limit)
            continue;

        /* 2: S (16, BK) = Q (16, D) . K^T; K row-major is K^T column-major */
        for (int j = 0; j < PF_BK / 16; j++) {
            wm::fragment<wm::accumulator, 16, 16, 16, float> sf;
            wm::fill_fragment(sf, 0.0f);
#pragma unroll
            for (int kk = 0; kk < D / 16; kk++) {
                wm::fragment<wm::matrix_b, 16, 16, 16, bf16, wm::col_major> kf;
                wm::load_matrix_sync(kf, k_s + j * 16 * L::LDK + kk * 16, L::LDK);
                wm::mma_sync(sf, qf[kk], kf, sf);
            }
            wm::store_matrix_sync(f_w + j * 16, sf, L::LDS, wm::mem_row_major);
        }
        __syncwarp();

        /* 3: online softmax of row r over columns half * BK/2 .. + BK/2 */
        constexpr int HC = PF_BK / 2;
        const float *srow = f_w + r * L::LDS + half * HC; /* (HC) scores */
        bf16 *prow = p_w + r * L::LDP + half * HC;        /* (HC) probabilities */
        const int key0 = k0 + half * HC;
        float tmax = -INFINITY;
#pragma unroll
        for (int cc = 0; cc < HC; cc++)
            if (row_ok && key0 + cc <= limit)
                tmax = fmaxf(tmax, srow[cc] * scale_log2);
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
        const float m_new = fmaxf(m_i, tmax);
        const float alpha = m_new == -INFINITY ? 1.0f : exp2f(m_i - m_new);
        float rs = 0.0f;
#pragma unroll
        for (int cc = 0; cc < HC; cc++) {
            float pr = 0.0f;
            if (row_ok && key0 + cc <= limit)
                pr = exp2f(srow[cc] * scale_log2 - m_new);
            const bf16 pb = __float2bfloat16_rn(pr);
            prow[cc] = pb;
            rs += __bfloat162float(pb);
        }
        rs += __shfl_xor_sync(0xffffffffu, rs, 1);
        l_i = l_i * alpha + rs;
        m_i = m_new;
        __syncwarp();

        /* 4: P V (16, D) into the scratch, then o = o * alpha + P V */
        wm::fragment<wm::matrix_a, 16, 16, 16, bf16, wm::row_major> pf[PF_BK / 16];
#pragma unroll
        for (int kk = 0; kk < PF_BK / 16; kk++)
            wm::load_matrix_sync(pf[kk], p_w + kk * 16, L::LDP);
#pragma unroll
        for (int n = 0; n < D / 16; n++) {
            wm::fragment<wm::accumulator, 16, 16, 16, float> of;
            wm::fill_fragment(of, 0.0f);
#pragma unroll
            for (int kk = 0; kk < PF_BK / 16; kk++) {
                wm::fragment<wm::matrix_b, 16, 16, 16, bf16, wm::row_major> vf;
                wm::load_matrix_sync(vf, v_s + kk * 16 * L::LDK + n * 16, L::LDK);
                wm::mma_sync(of, pf[kk], vf, of);
            }
            wm::store_matrix_sync(f_w + n * 16, of, L::LDS, wm::mem_row_major);
        }
        __syncwarp();
        const float *pv = f_w + r * L::LDS + half * (D / 2); /* (D / 2) of row r */
#pragma unroll
        for (int cc = 0; cc < D / 2; cc++)
            o[cc] = o[cc] * alpha + pv[cc];
    }

    if (row_ok) {
        const float inv = 1.0f / l_i; /* > 0: key 0 is visible to every row */
        bf16 *orow = out + ((size_t)(t0 + i) * H + h) * D + half * (D / 2); /* (D / 2) */
#pragma unroll
        for (int cc = 0; cc < D / 2; cc += 8) {
            pack128<bf16> pk;
#pragma unroll
            for (int e = 0; e < 8; e++)
                pk.v[e] = __float2bfloat16_rn(o[cc + e] * inv);
            pack128_store(orow + cc, pk);
        }
    }
}

/* ---- launcher ---- */

/* Launches attn_prefill_kernel<D> with its dynamic shared memory. */
template <int D>
static int launch(bf16 *out, const bf16 *q, int q_stride, const bf16 *kv, const kv_geom &g,
                  const int *block_tables, int max_blocks, const int *cu_q, const int *context_lens,
                  int n_seqs, int H, int G, int max_q_len, float scale, cudaStream_t stream) {
    const size_t smem = pf_smem<D>::total;
    KERN_CHECK(cudaFuncSetAttribute(attn_prefill_kernel<D>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    dim3 grid((max_q_len + PF_BQ - 1) / PF_BQ, H, n_seqs);
    attn_prefill_kernel<D>
        <<<grid, PF_THREADS, smem, stream>>>(out, q, q_stride, kv, g, block_tables, max_blocks,
                                             cu_q, context_lens, H, G, scale * KERN_LOG2E);
    KERN_CHECK(cudaGetLastError());
    return SIM_OK;
}

/* Chunked-prefill attention (see kern.h and the file comment): d_out (T,
 * H, D) from d_q (T, H, D) rows q_stride elements apart, one layer's pool
 * d_kv_layer, d_block_tables (S, MB), d_cu_seqlens_q (S + 1) and
 * d_context_lens (S), all device memory, queued on stream. n_tokens must be
 * cu_seqlens_q[S] and max_q_len >= every chunk (it sizes the grid; rows
 * past it would be skipped). Returns SIM_OK once launched (n_seqs or
 * n_tokens == 0 launches nothing), SIM_EINVAL for bad sizes or NULL
 * pointers, SIM_ENOTSUP for a KV dtype other than bf16 or D > 256, and
 * SIM_EDEVICE when a launch fails. Device-side tables are not checked. */
extern "C" int kern_attn_prefill(void *d_out, const void *d_q, int q_stride, const void *d_kv_layer,
                                 const kern_kv_layout *kv, const int32_t *d_block_tables,
                                 int max_blocks_per_seq, const int32_t *d_cu_seqlens_q,
                                 const int32_t *d_context_lens, int n_seqs, int n_tokens,
                                 int n_heads, int max_q_len, float scale, void *stream) {
    KERN_CHECK_ARG(kv != NULL && kern_kv_layout_check(kv) == SIM_OK);
    if (kv->dtype != KERN_DT_BF16 || kv->head_dim > KERN_ATTN_MAX_HEAD_DIM) {
        kern_error_record("kv->dtype == KERN_DT_BF16 && head_dim <= 256", __func__, __FILE__,
                          __LINE__, "not supported");
        return SIM_ENOTSUP;
    }
    KERN_CHECK_ARG(n_seqs >= 0 && n_seqs <= 65535 && n_tokens >= 0 && max_q_len >= 0);
    KERN_CHECK_ARG(max_blocks_per_seq >= 1);
    KERN_CHECK_ARG(n_heads >= 1 && n_heads <= 65535 && n_heads % kv->n_kv_heads == 0);
    KERN_CHECK_ARG((long long)q_stride >= (long long)n_heads * kv->head_dim);
    KERN_CHECK_ARG(isfinite(scale));
    if (n_seqs == 0 || n_tokens == 0 || max_q_len == 0)
        return SIM_OK;
    KERN_CHECK_ARG(d_out != NULL && d_q != NULL && d_kv_layer != NULL && d_block_tables != NULL &&
                   d_cu_seqlens_q != NULL && d_context_lens != NULL);

    bf16 *out = static_cast<bf16 *>(d_out);
    const bf16 *q = static_cast<const bf16 *>(d_q);
    const bf16 *kvp = static_cast<const bf16 *>(d_kv_layer);
    const kv_geom g = kv_geom_of(kv);
    const int D = kv->head_dim, G = n_heads / kv->n_kv_heads;
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    const bool tuned = (D == 64 || D == 128) && q_stride % 8 == 0 && kern_aligned16(q) &&
                       kern_aligned16(kvp) && kern_aligned16(out);
    if (!tuned)
        return attn_rows_launch(out, q, q_stride, kvp, g, d_block_tables, max_blocks_per_seq,
                                d_cu_seqlens_q, d_context_lens, n_seqs, n_tokens, n_heads, G, scale,
                                st);
    if (D == 64)
        return launch<64>(out, q, q_stride, kvp, g, d_block_tables, max_blocks_per_seq,
                          d_cu_seqlens_q, d_context_lens, n_seqs, n_heads, G, max_q_len, scale, st);
    return launch<128>(out, q, q_stride, kvp, g, d_block_tables, max_blocks_per_seq, d_cu_seqlens_q,
                       d_context_lens, n_seqs, n_heads, G, max_q_len, scale, st);
}
