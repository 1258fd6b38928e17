/* rmsnorm3.cu: RMSNorm variant 3, one block per token, 128-bit packs and a
 * warp-shuffle block reduction: the kernel in kernels/rmsnorm.cu.
 *
 * Dimension legend: T tokens (rows, one block each), H hidden size (a
 * multiple of V here), V = 8 bf16 per 128-bit pack, block_size threads per
 * block (a multiple of 32, up to 1024).
 * x, y (T, H) bf16 row-major; w (H) bf16; sums and products in fp32.
 *
 * Each thread moves 16 bytes per load and store (LDG.128 / STG.128), which
 * cuts the instruction count of variant 2 by 8. Warps reduce with shuffles
 * and meet once in 32 floats of shared memory, so the reduction costs two
 * barriers instead of log2(block_size). The second pass rereads x, which
 * mostly hits L1/L2.
 *
 * Build: make kern-dev. Run: kernels/dev/rmsnorm3 [T H]. */
#include "common.cuh"

__global__ void rmsnorm_kernel3(bf16 *out, const bf16 *in, const bf16 *weight, int H, float eps) {
    constexpr int V = pack128<bf16>::size;
    __shared__ float warp_sums[32];
    const bf16 *x = in + (size_t)blockIdx.x * H; /* (H) row t = blockIdx.x */
    bf16 *y = out + (size_t)blockIdx.x * H;      /* (H) row t */
    float ss = 0.0f;
    for (int p = threadIdx.x; p < H / V; p += blockDim.x) {
        pack128<bf16> xp = pack128_load(x + p * V); /* x[p*V .. p*V+V) */
        for (int k = 0; k < V; k++) {
            float v = __bfloat162float(xp.v[k]);
            ss += v * v;
        }
    }
    ss = warp_sum(ss);
    if (threadIdx.x % 32 == 0)
        warp_sums[threadIdx.x / 32] = ss;
    __syncthreads();
    ss = threadIdx.x % 32 < blockDim.x / 32 ? warp_sums[threadIdx.x % 32] : 0.0f;
    float s = rsqrtf(warp_sum(ss) / H + eps);
    for (int p = threadIdx.x; p < H / V; p += blockDim.x) {
        pack128<bf16> xp = pack128_load(x + p * V);      /* x[p*V .. p*V+V) */
        pack128<bf16> wp = pack128_load(weight + p * V); /* w[p*V .. p*V+V) */
        pack128<bf16> yp;
        for (int k = 0; k < V; k++)
            yp.v[k] =
                __float2bfloat16_rn(__bfloat162float(xp.v[k]) * s * __bfloat162float(wp.v[k]));
        pack128_store(y + p * V, yp);
    }
}

int main(int argc, char **argv) {
    dev_shape s = dev_parse(argc, argv);
    if (s.H % pack128<bf16>::size != 0) {
        fprintf(stderr, "kernel3 needs H %% %d == 0\n", pack128<bf16>::size);
        return 2;
    }
    dev_data d = dev_make(s);
    dev_bufs b = dev_upload(d, s);
    const int block_sizes[] = {32, 64, 128, 256, 512, 1024};
    for (int bs : block_sizes) {
        dev_run("kernel3", bs, b, d, s,
                [&] { rmsnorm_kernel3<<<s.T, bs>>>(b.y, b.x, b.w, s.H, s.eps); });
    }
    dev_free(b, d);
    return 0;
}
