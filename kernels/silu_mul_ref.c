/* silu_mul_ref.c: CPU reference of the gated MLP's activation (operator
 * mlp_act), SwiGLU (Shazeer, "GLU Variants Improve Transformer", 2020):
 *
 *     out[t, i] = silu(g) * u,  g = in[t, i], u = in[t, I + i],
 *     silu(g) = g / (1 + exp(-g))
 *
 * Dimensions: T = n_tokens rows, I = inter (the intermediate size). in is
 * (T, 2I), the gate half first then the up half (the fused gate/up
 * projection's output), out is (T, I). The truth that silu_mul.cu and the
 * cpu executor are checked against.
 *
 * fp32 arithmetic (expf), one rounding per bf16 output. No cancellation
 * happens (a quotient and a product), so the result is accurate to a few
 * fp32 ulps relative. */
#include "config.h"
#include "kern.h"

#include <math.h>

/* silu(g) * u in fp32. */
static float silu_mul(float g, float u) {
    return g / (1.0f + expf(-g)) * u;
}

/* out (T, I) = silu(in[:, :I]) * in[:, I:] on fp32 tensors. */
void kern_silu_mul_ref_f32(float *out, const float *in, int n_tokens, int inter) {
    for (int t = 0; t < n_tokens; t++) {
        const float *g = in + (size_t)t * 2 * inter; /* (I) gate row t */
        const float *u = g + inter;                  /* (I) up row t */
        for (int i = 0; i < inter; i++)
            out[(size_t)t * inter + i] = silu_mul(g[i], u[i]);
    }
}

/* The same on bf16 tensors: widened, fp32 arithmetic, one rounding. */
void kern_silu_mul_ref_bf16(kern_bf16 *out, const kern_bf16 *in, int n_tokens, int inter) {
    for (int t = 0; t < n_tokens; t++) {
        const kern_bf16 *g = in + (size_t)t * 2 * inter; /* (I) gate row t */
        const kern_bf16 *u = g + inter;                  /* (I) up row t */
        for (int i = 0; i < inter; i++)
            out[(size_t)t * inter + i] =
                kern_bf16_from_f32(silu_mul(kern_f32_from_bf16(g[i]), kern_f32_from_bf16(u[i])));
    }
}
