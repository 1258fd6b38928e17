/* prefill_attn1.cu: chunked-prefill attention, variant 1: one warp per
 * (query row, head) walking its causal keys with an online softmax, all on
 * CUDA cores in fp32 (attn_rows_kernel of kernels/attn_common.cuh, the
 * production fallback for head dims other than 64 and 128).
 *
 * Dimension legend: T = S * chunk query rows, H query heads (4 row-heads
 * per 128-thread block), D head dim, keys 0 .. past + i for chunk row i.
 *
 * Every (row, head) rereads its keys: K and V traffic grows with chunk * H
 * (L2 absorbs much of it) and the arithmetic runs on CUDA cores, one key
 * per warp step. The baseline that variant 2's tiling and tensor cores are
 * measured against.
 *
 * Build: make kern-dev. Run: kernels/dev/prefill_attn1 [S past chunk H Hkv D bs]. */
#include "attn_common.cuh"

int main(int argc, char **argv) {
    attn_shape s = attn_parse(argc, argv, 1);
    attn_data a = attn_make(s);
    const kv_geom g = kv_geom_of(&a.kv);
    const float scale = 1.0f / sqrtf((float)s.D);
    attn_run("prefill_kernel1", "warp/row, fp32", s, a, [&] {
        if (attn_rows_launch(a.d_out, a.d_q, a.q_stride, a.d_cache, g, a.d_bt, a.mb, a.d_cu,
                             a.d_ctx, s.S, a.n_tokens, s.H, s.H / s.Hkv, scale, 0) != SIM_OK) {
            fprintf(stderr, "launch: %s\n", kern_last_error());
            exit(1);
        }
    });
    attn_free(a);
    return 0;
}
