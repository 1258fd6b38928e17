/* rmsnorm4.cu: RMSNorm variant 4, one warp per token, 128-bit packs, the
 * row held in registers between the two passes.
 *
 * Dimension legend: T tokens (rows, one warp each), H hidden size (a
 * multiple of 32 * V here), V = 8 bf16 per 128-bit pack, P = H / (32 * V)
 * packs per lane (a template parameter: 1, 2, 4, 8 or 16, so H is 256, 512,
 * 1024, 2048 or 4096), block_size threads per block (warps_per_block * 32).
 * x, y (T, H) bf16 row-major; w (H) bf16; sums and products in fp32.
 *
 * x is read from global memory exactly once (variant 3 rereads it), and the
 * reduction is shuffles only: no shared memory, no barrier. The price is P
 * packs of registers per lane (4 * P registers), which limits occupancy as H
 * grows, and a fixed set of H values.
 *
 * Build: make kern-dev. Run: kernels/dev/rmsnorm4 [T H]. */
#include "common.cuh"

template <int P>
__global__ void rmsnorm_kernel4(bf16 *out, const bf16 *in, const bf16 *weight, int T, int H,
                                float eps) {
    constexpr int V = pack128<bf16>::size;
    const int lane = threadIdx.x % 32;
    const int t = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; /* token of this warp */
    if (t >= T)
        return;                         /* whole warps leave together: shuffles stay full */
    const bf16 *x = in + (size_t)t * H; /* (H) row t */
    bf16 *y = out + (size_t)t * H;      /* (H) row t */
    pack128<bf16> xp[P];                /* packs lane, lane + 32, ... of row t */
    float ss = 0.0f;
    for (int j = 0; j < P; j++) {
        xp[j] = pack128_load(x + (j * 32 + lane) * V);
        for (int k = 0; k < V; k++) {
            float v = __bfloat162float(xp[j].v[k]);
            ss += v * v;
        }
    }
    float s = rsqrtf(warp_sum(ss) / H + eps);
    for (int j = 0; j < P; j++) {
        pack128<bf16> wp = pack128_load(weight + (j * 32 + lane) * V);
        pack128<bf16> yp;
        for (int k = 0; k < V; k++)
            yp.v[k] =
                __float2bfloat16_rn(__bfloat162float(xp[j].v[k]) * s * __bfloat162float(wp.v[k]));
        pack128_store(y + (j * 32 + lane) * V, yp);
    }
}

template <int P> static void bench(const dev_bufs &b, const dev_data &d, const dev_shape &s) {
    const int block_sizes[] = {32, 64, 128, 256, 512, 1024};
    cudaFuncAttributes fa;
    /* a row lives in registers (P 16-byte packs per lane): at H = 4096 the
     * register file holds fewer than 512 such threads per block */
    CUDA_CHECK(cudaFuncGetAttributes(&fa, rmsnorm_kernel4<P>));
    for (int bs : block_sizes) {
        if (bs > fa.maxThreadsPerBlock) {
            printf("%-10s block_size %4d: skipped (%d registers per thread allow %d threads per "
                   "block)\n",
                   "kernel4", bs, fa.numRegs, fa.maxThreadsPerBlock);
            continue;
        }
        int rows_per_block = bs / 32;
        int grid = (s.T + rows_per_block - 1) / rows_per_block;
        dev_run("kernel4", bs, b, d, s,
                [&] { rmsnorm_kernel4<P><<<grid, bs>>>(b.y, b.x, b.w, s.T, s.H, s.eps); });
    }
}

int main(int argc, char **argv) {
    dev_shape s = dev_parse(argc, argv);
    dev_data d = dev_make(s);
    dev_bufs b = dev_upload(d, s);
    switch (s.H) {
        case 256:
            bench<1>(b, d, s);
            break;
        case 512:
            bench<2>(b, d, s);
            break;
        case 1024:
            bench<4>(b, d, s);
            break;
        case 2048:
            bench<8>(b, d, s);
            break;
        case 4096:
            bench<16>(b, d, s);
            break;
        default:
            fprintf(stderr, "kernel4 supports H in {256, 512, 1024, 2048, 4096}, got %d\n", s.H);
            dev_free(b, d);
            return 2;
    }
    dev_free(b, d);
    return 0;
}
