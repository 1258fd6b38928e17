/* paged_attn_decode3.cu: paged decode attention, variant 3: the production
 * GQA kernel (kernels/paged_attn.cu) in one pass: a block per (KV head,
 * sequence) serves all G query heads of that KV head, so each K and V row
 * leaves HBM once; keys in tiles of 64 with 16-byte K loads and an online
 * softmax per head. Run through kern_attn_decode() without a workspace.
 *
 * Dimension legend: S sequences x Hkv KV heads (x ceil(G / 8)) blocks of
 * 128 threads; D head dim (64, 128, 256); ctx keys all in one block.
 *
 * Compared with variant 2: G times less K/V traffic and wide loads; but
 * with few sequences and long contexts there are too few blocks to fill
 * the GPU (S * Hkv = 64 blocks for one sequence of Llama 70B), which
 * variant 4 fixes.
 *
 * Build: make kern-dev. Run: kernels/dev/paged_attn_decode3 [S ctx H Hkv D bs]. */
#include "attn_common.cuh"

int main(int argc, char **argv) {
    attn_shape s = attn_parse(argc, argv, 0);
    attn_data a = attn_make(s);
    const float scale = 1.0f / sqrtf((float)s.D);
    attn_run("decode_kernel3", "GQA tile, one pass", s, a, [&] {
        if (kern_attn_decode(a.d_out, a.d_q, a.q_stride, a.d_cache, &a.kv, a.d_bt, a.mb, a.d_ctx,
                             s.S, s.H, s.ctx, scale, NULL, 0, NULL) != SIM_OK) {
            fprintf(stderr, "kern_attn_decode: %s\n", kern_last_error());
            exit(1);
        }
    });
    attn_free(a);
    return 0;
}
