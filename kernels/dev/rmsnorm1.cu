/* rmsnorm1.cu: RMSNorm variant 1, one thread per token (the baseline).
 *
 * Dimension legend: T tokens (rows), H hidden size (row length).
 * x, y (T, H) bf16 row-major; w (H) bf16; sums and products in fp32.
 *
 * Each thread walks its own row twice. Neighbouring threads read addresses H
 * elements apart, so no load is coalesced and each warp touches 32 rows at
 * once: expect a small fraction of HBM bandwidth. It is the simplest correct
 * kernel and the yardstick for the others.
 *
 * Build: make kern-dev. Run: kernels/dev/rmsnorm1 [T H]. */
#include "common.cuh"

__global__ void rmsnorm_kernel1(bf16 *out, const bf16 *in, const bf16 *weight, int T, int H,
                                float eps) {
    int t = blockIdx.x * blockDim.x + threadIdx.x; /* token of this thread */
    if (t >= T)
        return;
    const bf16 *x = in + (size_t)t * H; /* (H) row t */
    bf16 *y = out + (size_t)t * H;      /* (H) row t */
    float ss = 0.0f;
    for (int i = 0; i < H; i++) {
        float v = __bfloat162float(x[i]);
        ss += v * v;
    }
    float s = rsqrtf(ss / H + eps);
    for (int i = 0; i < H; i++)
        y[i] = __float2bfloat16_rn(__bfloat162float(x[i]) * s * __bfloat162float(weight[i]));
}

int main(int argc, char **argv) {
    dev_shape s = dev_parse(argc, argv);
    dev_data d = dev_make(s);
    dev_bufs b = dev_upload(d, s);
    const int block_sizes[] = {32, 64, 128, 256, 512, 1024};
    for (int bs : block_sizes) {
        int grid = (s.T + bs - 1) / bs;
        dev_run("kernel1", bs, b, d, s,
                [&] { rmsnorm_kernel1<<<grid, bs>>>(b.y, b.x, b.w, s.T, s.H, s.eps); });
    }
    dev_free(b, d);
    return 0;
}
