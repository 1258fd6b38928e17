/* rmsnorm2.cu: RMSNorm variant 2, one block per token, scalar loads, a
 * shared-memory tree reduction.
 *
 * Dimension legend: T tokens (rows, one block each), H hidden size,
 * block_size threads per block (a power of two, 32..1024).
 * x, y (T, H) bf16 row-major; w (H) bf16; sums and products in fp32.
 *
 * Threads stride over the row, so consecutive threads read consecutive
 * elements (coalesced, 2 bytes each). The sum of squares is reduced through
 * block_size floats of shared memory in log2(block_size) synchronised steps.
 * Fixes variant 1's access pattern; loads are still 16-bit.
 *
 * Build: make kern-dev. Run: kernels/dev/rmsnorm2 [T H]. */
#include "common.cuh"

__global__ void rmsnorm_kernel2(bf16 *out, const bf16 *in, const bf16 *weight, int H, float eps) {
    extern __shared__ float partial[];           /* (block_size) */
    const bf16 *x = in + (size_t)blockIdx.x * H; /* (H) row t = blockIdx.x */
    bf16 *y = out + (size_t)blockIdx.x * H;      /* (H) row t */
    float ss = 0.0f;
    for (int i = threadIdx.x; i < H; i += blockDim.x) {
        float v = __bfloat162float(x[i]);
        ss += v * v;
    }
    partial[threadIdx.x] = ss;
    __syncthreads();
    for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride)
            partial[threadIdx.x] += partial[threadIdx.x + stride];
        __syncthreads();
    }
    float s = rsqrtf(partial[0] / H + eps);
    for (int i = threadIdx.x; i < H; i += blockDim.x)
        y[i] = __float2bfloat16_rn(__bfloat162float(x[i]) * s * __bfloat162float(weight[i]));
}

int main(int argc, char **argv) {
    dev_shape s = dev_parse(argc, argv);
    dev_data d = dev_make(s);
    dev_bufs b = dev_upload(d, s);
    const int block_sizes[] = {32, 64, 128, 256, 512, 1024};
    for (int bs : block_sizes) {
        dev_run("kernel2", bs, b, d, s, [&] {
            rmsnorm_kernel2<<<s.T, bs, bs * sizeof(float)>>>(b.y, b.x, b.w, s.H, s.eps);
        });
    }
    dev_free(b, d);
    return 0;
}
