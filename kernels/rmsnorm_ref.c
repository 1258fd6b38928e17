/* rmsnorm_ref.c: CPU reference of RMSNorm (Zhang and Sennrich, "Root Mean
 * Square Layer Normalization", NeurIPS 2019), the truth that rmsnorm.cu and
 * the cpu executor are checked against.
 *
 *     y[t, i] = x[t, i] / sqrt(mean_j(x[t, j]^2) + eps) * w[i]
 *
 * Dimensions: T = n_tokens (rows), H = hidden (row length, >= 1). in and out
 * are (T, H) row-major, w is (H). out may not alias in.
 *
 * The sum of squares is accumulated in double so that the reference is more
 * accurate than any kernel it judges (a kernel sums in fp32 in another order);
 * the scale and the products are fp32, as in the kernel, with one rounding
 * per product. Sizes are those of a model's hidden state (H up to ~16k, T up
 * to a batch's tokens), touched once each: speed is not a goal. */
#include "config.h"
#include "kern.h"

#include <math.h>

/* Sum of squares of one row of H fp32 values. */
static double row_sumsq_f32(const float *x, int hidden) {
    double ss = 0.0;
    for (int i = 0; i < hidden; i++)
        ss += (double)x[i] * (double)x[i];
    return ss;
}

/* Sum of squares of one row of H bf16 values, widened exactly. */
static double row_sumsq_bf16(const kern_bf16 *x, int hidden) {
    double ss = 0.0;
    for (int i = 0; i < hidden; i++) {
        double v = kern_f32_from_bf16(x[i]);
        ss += v * v;
    }
    return ss;
}

/* The fp32 scale 1 / sqrt(mean + eps) of a row with sum of squares ss. */
static float row_scale(double ss, int hidden, float eps) {
    return (float)(1.0 / sqrt(ss / hidden + (double)eps));
}

/* RMSNorm of n_tokens rows of hidden fp32 values: out (T, H) from in (T, H)
 * and w (H). Nothing is allocated; n_tokens == 0 does nothing. */
void kern_rmsnorm_ref_f32(float *out, const float *in, const float *w, int n_tokens, int hidden,
                          float eps) {
    for (int t = 0; t < n_tokens; t++) {
        const float *x = in + (size_t)t * hidden; /* (H) row t of in */
        float *y = out + (size_t)t * hidden;      /* (H) row t of out */
        float s = row_scale(row_sumsq_f32(x, hidden), hidden, eps);
        for (int i = 0; i < hidden; i++)
            y[i] = x[i] * s * w[i];
    }
}

/* RMSNorm on bf16 tensors: inputs are widened exactly, the arithmetic is
 * that of kern_rmsnorm_ref_f32(), and each output is rounded once to bf16
 * (nearest, ties to even). Nothing is allocated. */
void kern_rmsnorm_ref_bf16(kern_bf16 *out, const kern_bf16 *in, const kern_bf16 *w, int n_tokens,
                           int hidden, float eps) {
    for (int t = 0; t < n_tokens; t++) {
        const kern_bf16 *x = in + (size_t)t * hidden; /* (H) row t of in */
        kern_bf16 *y = out + (size_t)t * hidden;      /* (H) row t of out */
        float s = row_scale(row_sumsq_bf16(x, hidden), hidden, eps);
        for (int i = 0; i < hidden; i++)
            y[i] = kern_bf16_from_f32(kern_f32_from_bf16(x[i]) * s * kern_f32_from_bf16(w[i]));
    }
}
