/* rope_ref.c: CPU reference of rotary position embedding (Su et al.,
 * "RoFormer", 2021), NeoX style (the rotate-half pairing of GPT-NeoX and
 * Llama in Hugging Face), and of its cos/sin table; the truth that rope.cu
 * and the cpu executor are checked against.
 *
 * For each head vector x (D) of a token at position p, rotary dims R <= D
 * (even), i < R / 2 and f_i = theta^(-2i / R):
 *
 *     x'[i]         = x[i] cos(p f_i) - x[i + R/2] sin(p f_i)
 *     x'[i + R/2]   = x[i + R/2] cos(p f_i) + x[i] sin(p f_i)
 *
 * and dims R .. D - 1 are untouched. q (T, H, D) and k (T, Hkv, D) are
 * rotated in place, token rows q_stride / k_stride elements apart (the Q
 * and K parts of fused QKV rows).
 *
 * The angles come from a table cos_sin (P, R), P = max_pos positions: row
 * p is cos(p f_0) .. cos(p f_{R/2-1}), then the sines. It is computed in
 * double and stored as fp32 (vLLM's cos_sin_cache), so the kernel and this
 * reference use the very same cos and sin: fp32 angles p * f_i lose
 * accuracy past a few thousand positions, a table does not. The rotation
 * itself is fp32, one rounding per output for bf16. */
#include "config.h"
#include "kern.h"

#include <math.h>
#include <stdio.h>

/* Fills cos_sin (P, R) for positions 0 .. max_pos - 1 (see the file
 * comment). Returns SIM_OK, or SIM_EINVAL (max_pos < 1, rot_dim odd or < 2,
 * theta not > 1) with nothing written. */
int kern_rope_cache_ref(float *cos_sin, int max_pos, int rot_dim, double theta) {
    if (max_pos < 1 || rot_dim < 2 || rot_dim % 2 != 0 || !(theta > 1.0)) {
        kern_error_record("max_pos >= 1, rot_dim even >= 2, theta > 1", __func__, __FILE__,
                          __LINE__, "invalid argument");
        return SIM_EINVAL;
    }
    const int half = rot_dim / 2;
    for (int p = 0; p < max_pos; p++) {
        float *row = cos_sin + (size_t)p * rot_dim; /* (R) row p */
        for (int i = 0; i < half; i++) {
            double angle = p * pow(theta, -2.0 * i / rot_dim);
            row[i] = (float)cos(angle);
            row[half + i] = (float)sin(angle);
        }
    }
    return SIM_OK;
}

/* Checks shapes and positions; SIM_OK or SIM_EINVAL with the reason. */
static int check(int q_stride, int k_stride, int max_pos, const int32_t *positions, int n_tokens,
                 int n_heads, int n_kv_heads, int head_dim, int rot_dim) {
    if (n_tokens < 0 || n_heads < 1 || n_kv_heads < 1 || head_dim < 1 || rot_dim < 2 ||
        rot_dim % 2 != 0 || rot_dim > head_dim || max_pos < 1 ||
        (long long)q_stride < (long long)n_heads * head_dim ||
        (long long)k_stride < (long long)n_kv_heads * head_dim) {
        kern_error_record("shape check", __func__, __FILE__, __LINE__,
                          "expected heads, head_dim >= 1, rot_dim even in 2 .. head_dim, "
                          "strides >= heads * head_dim");
        return SIM_EINVAL;
    }
    for (int t = 0; t < n_tokens; t++) {
        if (positions[t] < 0 || positions[t] >= max_pos) {
            char msg[128];
            snprintf(msg, sizeof msg, "positions[%d]: expected 0 .. %d, got %d", t, max_pos - 1,
                     (int)positions[t]);
            kern_error_record("position check", __func__, __FILE__, __LINE__, msg);
            return SIM_EINVAL;
        }
    }
    return SIM_OK;
}

/* Rotates n_heads head vectors of D fp32 values starting at x by the table
 * row cs (R). */
static void rotate_f32(float *x, int n_heads, int head_dim, int rot_dim, const float *cs) {
    const int half = rot_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim; /* (D) head h */
        for (int i = 0; i < half; i++) {
            float x1 = v[i], x2 = v[half + i], c = cs[i], s = cs[half + i];
            v[i] = x1 * c - x2 * s;
            v[half + i] = x2 * c + x1 * s;
        }
    }
}

/* The same on bf16 head vectors: widened, rotated in fp32, rounded once. */
static void rotate_bf16(kern_bf16 *x, int n_heads, int head_dim, int rot_dim, const float *cs) {
    const int half = rot_dim / 2;
    for (int h = 0; h < n_heads; h++) {
        kern_bf16 *v = x + (size_t)h * head_dim; /* (D) head h */
        for (int i = 0; i < half; i++) {
            float x1 = kern_f32_from_bf16(v[i]), x2 = kern_f32_from_bf16(v[half + i]);
            float c = cs[i], s = cs[half + i];
            v[i] = kern_bf16_from_f32(x1 * c - x2 * s);
            v[half + i] = kern_bf16_from_f32(x2 * c + x1 * s);
        }
    }
}

/* NeoX RoPE of fp32 q and k in place (see the file comment). Returns
 * SIM_OK, or SIM_EINVAL (bad shape, a position outside [0, max_pos)) with
 * nothing written. */
int kern_rope_ref_f32(float *q, int q_stride, float *k, int k_stride, const float *cos_sin,
                      int max_pos, const int32_t *positions, int n_tokens, int n_heads,
                      int n_kv_heads, int head_dim, int rot_dim) {
    int rc = check(q_stride, k_stride, max_pos, positions, n_tokens, n_heads, n_kv_heads, head_dim,
                   rot_dim);
    if (rc != SIM_OK)
        return rc;
    for (int t = 0; t < n_tokens; t++) {
        const float *cs = cos_sin + (size_t)positions[t] * rot_dim; /* (R) */
        rotate_f32(q + (size_t)t * q_stride, n_heads, head_dim, rot_dim, cs);
        rotate_f32(k + (size_t)t * k_stride, n_kv_heads, head_dim, rot_dim, cs);
    }
    return SIM_OK;
}

/* NeoX RoPE of bf16 q and k in place; see kern_rope_ref_f32(). */
int kern_rope_ref_bf16(kern_bf16 *q, int q_stride, kern_bf16 *k, int k_stride, const float *cos_sin,
                       int max_pos, const int32_t *positions, int n_tokens, int n_heads,
                       int n_kv_heads, int head_dim, int rot_dim) {
    int rc = check(q_stride, k_stride, max_pos, positions, n_tokens, n_heads, n_kv_heads, head_dim,
                   rot_dim);
    if (rc != SIM_OK)
        return rc;
    for (int t = 0; t < n_tokens; t++) {
        const float *cs = cos_sin + (size_t)positions[t] * rot_dim; /* (R) */
        rotate_bf16(q + (size_t)t * q_stride, n_heads, head_dim, rot_dim, cs);
        rotate_bf16(k + (size_t)t * k_stride, n_kv_heads, head_dim, rot_dim, cs);
    }
    return SIM_OK;
}
