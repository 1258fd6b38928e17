/* paged_attn_decode1.cu: paged decode attention, variant 1: naive. One
 * thread block per (sequence, query head); all scores of the context in
 * shared memory.
 *
 * Dimension legend: S sequences (grid y), H query heads (grid x), Hkv KV
 * heads (head h reads h / G), D head dim, ctx keys (scores: ctx floats of
 * dynamic shared memory, so ctx <= ~56k on an H100/H200), block 128
 * threads.
 *
 * 1. thread j computes the whole dot product q . k_j for keys j, j + 128,
 *    ...: each thread walks its own K row, so a warp's loads hit 32
 *    different rows (uncoalesced; L1 rescues part of it);
 * 2. block-wide max and sum of exp over the scores;
 * 3. thread d accumulates sum_j p_j v_j[d] for dims d, d + 128, ...
 *    (coalesced across threads, but every key is a dependent step).
 * K and V are read once per query head: G times more than needed with GQA.
 *
 * Build: make kern-dev. Run: kernels/dev/paged_attn_decode1 [S ctx H Hkv D bs]. */
#include "attn_common.cuh"

__global__ void __launch_bounds__(128)
    paged_attn_decode_kernel1(bf16 *out, const bf16 *q, int q_stride, const bf16 *kv, kv_geom g,
                              const int *block_tables, int max_blocks, const int *context_lens,
                              int H, int G, float scale) {
    extern __shared__ float sc[]; /* (ctx) scores, then probabilities */
    __shared__ float red[32];
    const int h = blockIdx.x, s = blockIdx.y, D = g.head_dim, kvh = h / G;
    const int ctx = context_lens[s];
    const int *bt = block_tables + (size_t)s * max_blocks;
    const bf16 *qh = q + (size_t)s * q_stride + (size_t)h * D; /* (D) */
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < ctx; j += blockDim.x) {
        const bf16 *k = kv + kv_key_offset(g, bt, kvh, j); /* (D) */
        float dot = 0.0f;
        for (int d = 0; d < D; d++)
            dot += __bfloat162float(qh[d]) * __bfloat162float(k[d]);
        sc[j] = dot * scale;
        mx = fmaxf(mx, sc[j]);
    }
    /* block max */
    mx = kern_warp_max(mx);
    if (threadIdx.x % 32 == 0)
        red[threadIdx.x / 32] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int w = 0; w < (int)blockDim.x / 32; w++)
        mx = fmaxf(mx, red[w]);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < ctx; j += blockDim.x) {
        sc[j] = expf(sc[j] - mx);
        sum += sc[j];
    }
    sum = kern_block_sum(sum); /* also orders the sc writes before the reads below */
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < ctx; j++)
            acc += sc[j] * __bfloat162float(kv[kv_key_offset(g, bt, kvh, j) + g.kv_stride + d]);
        out[((size_t)s * H + h) * D + d] = __float2bfloat16_rn(ctx > 0 ? acc / sum : 0.0f);
    }
}

int main(int argc, char **argv) {
    attn_shape s = attn_parse(argc, argv, 0);
    attn_data a = attn_make(s);
    const kv_geom g = kv_geom_of(&a.kv);
    const size_t smem = (size_t)s.ctx * sizeof(float);
    if (smem > 227 * 1024) {
        fprintf(stderr, "kernel1 keeps ctx scores in shared memory: ctx <= %d\n", 227 * 256);
        return 2;
    }
    CUDA_CHECK(cudaFuncSetAttribute(paged_attn_decode_kernel1,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    const float scale = 1.0f / sqrtf((float)s.D);
    attn_run("decode_kernel1", "naive, block/head", s, a, [&] {
        paged_attn_decode_kernel1<<<dim3(s.H, s.S), 128, smem>>>(a.d_out, a.d_q, a.q_stride,
                                                                 a.d_cache, g, a.d_bt, a.mb,
                                                                 a.d_ctx, s.H, s.H / s.Hkv, scale);
    });
    attn_free(a);
    return 0;
}
