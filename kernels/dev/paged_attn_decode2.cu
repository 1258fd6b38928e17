/* paged_attn_decode2.cu: paged decode attention, variant 2: one warp per
 * (sequence, query head), online softmax, no shared memory. This is
 * attn_rows_kernel of kernels/attn_common.cuh, which production keeps as
 * the fallback for head dims and alignments the tuned kernel does not take.
 *
 * Dimension legend: S sequences, H query heads (4 (sequence, head) warps
 * per 128-thread block), D head dim (lane l holds dims l, l + 32, ...),
 * ctx keys walked one at a time: a warp-wide dot product (5 shuffles) and
 * an online-softmax update per key.
 *
 * Compared with variant 1: loads are coalesced (a warp reads a K or V row
 * together) and there is no shared memory or block barrier; but each key
 * is a serial step of the warp, and K and V are still read once per query
 * head (no GQA reuse).
 *
 * Build: make kern-dev. Run: kernels/dev/paged_attn_decode2 [S ctx H Hkv D bs]. */
#include "attn_common.cuh"

int main(int argc, char **argv) {
    attn_shape s = attn_parse(argc, argv, 0);
    attn_data a = attn_make(s);
    const kv_geom g = kv_geom_of(&a.kv);
    const float scale = 1.0f / sqrtf((float)s.D);
    attn_run("decode_kernel2", "warp/head, online", s, a, [&] {
        if (attn_rows_launch(a.d_out, a.d_q, a.q_stride, a.d_cache, g, a.d_bt, a.mb, NULL, a.d_ctx,
                             s.S, s.S, s.H, s.H / s.Hkv, scale, 0) != SIM_OK) {
            fprintf(stderr, "launch: %s\n", kern_last_error());
            exit(1);
        }
    });
    attn_free(a);
    return 0;
}
