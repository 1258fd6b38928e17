/* gemm_ref.c: CPU reference of the projections' GEMM, the truth that
 * gemm_cublas.cu (cuBLAS, cuBLASLt) and the cpu executor are checked
 * against.
 *
 *     y[i, j] = scale * sum_k x[i, k] * w[j, k]      (y = scale * x . w^T)
 *
 * Dimensions: M = m rows of x and y (tokens), N = n rows of w and columns
 * of y (output features), K = k (input features). x (M, K), w (N, K) and
 * y (M, N) are dense row-major: w is stored as a PyTorch nn.Linear weight.
 *
 * Inputs are widened exactly to fp32 (a product of two bf16 or two E4M3
 * values is exact in fp32), sums run in fp32 in k order, then one product
 * by scale and one rounding to bf16, to nearest even. scale is 1 for bf16
 * weights and x_scale * w_scale for per-tensor FP8 quantisation. Sizes are
 * a tiny model's (the cpu executor) or a test's: speed is not a goal, the
 * loops are the plain triple loop. kern_gemm_ref_f32() is the same loop on
 * fp32 storage (the cpu executor's precision), with no rounding. */
#include "config.h"
#include "kern.h"

/* bf16 GEMM: y (M, N) = scale * x (M, K) . w (N, K)^T. Nothing is
 * allocated; m, n or k == 0 gives an empty product (y = 0 when k == 0). */
void kern_gemm_ref_bf16(kern_bf16 *y, const kern_bf16 *x, const kern_bf16 *w, int m, int n, int k,
                        float scale) {
    for (int i = 0; i < m; i++) {
        const kern_bf16 *xr = x + (size_t)i * k; /* (K) row i of x */
        for (int j = 0; j < n; j++) {
            const kern_bf16 *wr = w + (size_t)j * k; /* (K) row j of w */
            float acc = 0.0f;
            for (int kk = 0; kk < k; kk++)
                acc += kern_f32_from_bf16(xr[kk]) * kern_f32_from_bf16(wr[kk]);
            y[(size_t)i * n + j] = kern_bf16_from_f32(acc * scale);
        }
    }
}

/* E4M3 GEMM: the same loop; the 256 possible inputs are widened once into a
 * table on the stack (kern_f32_from_fp8 is exact but not cheap). */
void kern_gemm_ref_fp8(kern_bf16 *y, const kern_fp8 *x, const kern_fp8 *w, int m, int n, int k,
                       float scale) {
    float lut[256];
    for (int b = 0; b < 256; b++)
        lut[b] = kern_f32_from_fp8((kern_fp8)b);
    for (int i = 0; i < m; i++) {
        const kern_fp8 *xr = x + (size_t)i * k; /* (K) row i of x */
        for (int j = 0; j < n; j++) {
            const kern_fp8 *wr = w + (size_t)j * k; /* (K) row j of w */
            float acc = 0.0f;
            for (int kk = 0; kk < k; kk++)
                acc += lut[xr[kk]] * lut[wr[kk]];
            y[(size_t)i * n + j] = kern_bf16_from_f32(acc * scale);
        }
    }
}

/* fp32 GEMM: y (M, N) = scale * x (M, K) . w (N, K)^T, sums in k order. */
void kern_gemm_ref_f32(float *y, const float *x, const float *w, int m, int n, int k, float scale) {
    for (int i = 0; i < m; i++) {
        const float *xr = x + (size_t)i * k; /* (K) row i of x */
        for (int j = 0; j < n; j++) {
            const float *wr = w + (size_t)j * k; /* (K) row j of w */
            float acc = 0.0f;
            for (int kk = 0; kk < k; kk++)
                acc += xr[kk] * wr[kk];
            y[(size_t)i * n + j] = acc * scale;
        }
    }
}
