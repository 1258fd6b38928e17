/* prefill_attn2.cu: chunked-prefill attention, variant 2 (promoted: this is
 * kern_attn_prefill() for D = 64 and 128): FlashAttention-2 tiling on
 * tensor cores over the paged cache (kernels/prefill_attn.cu). A block
 * owns 64 query rows of one head (16 per warp); K and V tiles of 64 keys
 * are copied from their pages into shared memory and used by all 64 rows;
 * Q.K^T and P.V are WMMA bf16 m16n16k16 with fp32 accumulation.
 *
 * Dimension legend: ceil(chunk / 64) x H x S blocks of 128 threads; D head
 * dim (64 or 128); keys 0 .. past + i for chunk row i, tiles wholly past a
 * warp's rows skipped.
 *
 * Compared with variant 1: K/V traffic divided by 64 (rows per block),
 * matrix products on tensor cores. Next steps, to be measured: cp.async
 * double buffering of the K/V tiles, mma.sync with the accumulators in
 * registers (no shared-memory round trip for S and P.V), and one block
 * serving the G query heads of a KV head.
 *
 * Build: make kern-dev. Run: kernels/dev/prefill_attn2 [S past chunk H Hkv D bs]. */
#include "attn_common.cuh"

int main(int argc, char **argv) {
    attn_shape s = attn_parse(argc, argv, 1);
    attn_data a = attn_make(s);
    const float scale = 1.0f / sqrtf((float)s.D);
    attn_run("prefill_kernel2", "flash2 tiles, WMMA", s, a, [&] {
        if (kern_attn_prefill(a.d_out, a.d_q, a.q_stride, a.d_cache, &a.kv, a.d_bt, a.mb, a.d_cu,
                              a.d_ctx, s.S, a.n_tokens, s.H, s.chunk, scale, NULL) != SIM_OK) {
            fprintf(stderr, "kern_attn_prefill: %s\n", kern_last_error());
            exit(1);
        }
    });
    attn_free(a);
    return 0;
}
