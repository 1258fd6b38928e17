/* paged_attn_decode4.cu: paged decode attention, variant 4 (promoted: this
 * is kern_attn_decode() with its workspace): variant 3 split along the
 * context into partitions of 512 keys, each its own block, and a reduce
 * kernel that rescales and sums the partitions (flash-decoding).
 *
 * Dimension legend: S x Hkv x ceil(G / 8) x P blocks of 128 threads, P =
 * ceil(ctx / 512); the reduce runs S x H blocks over P partials of D
 * floats.
 *
 * Compared with variant 3: P times more blocks, so long contexts fill the
 * GPU even at batch 1, for an extra write and read of S * H * P * (D + 2)
 * floats (about 1% of the K/V traffic at D = 128).
 *
 * Build: make kern-dev. Run: kernels/dev/paged_attn_decode4 [S ctx H Hkv D bs]. */
#include "attn_common.cuh"

int main(int argc, char **argv) {
    attn_shape s = attn_parse(argc, argv, 0);
    attn_data a = attn_make(s);
    const float scale = 1.0f / sqrtf((float)s.D);
    const size_t wb = kern_attn_decode_work_bytes(s.S, s.H, s.D, s.ctx);
    void *d_work = NULL;
    if (wb > 0)
        CUDA_CHECK(cudaMalloc(&d_work, wb));
    attn_run("decode_kernel4", "GQA tile, split-K", s, a, [&] {
        if (kern_attn_decode(a.d_out, a.d_q, a.q_stride, a.d_cache, &a.kv, a.d_bt, a.mb, a.d_ctx,
                             s.S, s.H, s.ctx, scale, d_work, wb, NULL) != SIM_OK) {
            fprintf(stderr, "kern_attn_decode: %s\n", kern_last_error());
            exit(1);
        }
    });
    if (d_work != NULL)
        CUDA_CHECK(cudaFree(d_work));
    attn_free(a);
    return 0;
}
