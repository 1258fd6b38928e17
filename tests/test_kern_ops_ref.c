/* test_kern_ops_ref.c: the CPU references of the GEMM, KV append, KV block
 * moves, RoPE, SiLU-and-multiply and argmax against straightforward dense
 * implementations, in every build (no GPU, no CUDA needed).
 *
 * Inputs are fresh random values (never zero); outputs are poisoned first
 * (NaN for floating outputs, a byte pattern for copies) so an element left
 * unwritten fails, and guard elements or untouched regions must keep their
 * poison. Bounds, per element:
 * - GEMM: |ref - dense| <= 2^-8 |dense| + (K + 2) 2^-24 S, S = |scale|
 *   sum_k |x_k w_k|: one bf16 rounding of the output plus the a priori
 *   bound of a K-term fp32 sum (products of bf16 or E4M3 values are exact
 *   in fp32) and the product by scale.
 * - KV append and block moves: bit-exact, for fp32, bf16 and fp8 elements.
 * - RoPE table: |table - cos| <= 2^-24 (fp32 rounding of values <= 1).
 *   RoPE: fp32 |ref - dense| <= 2^-22 (|x1| + |x2|) (fp32 cos/sin and
 *   three fp32 roundings); bf16 adds 2^-8 |dense|. Dims past rot_dim and
 *   row padding are unchanged bit for bit.
 * - SiLU-and-multiply: fp32 rel 1e-6 (a few ulps: expf, a sum, a quotient,
 *   a product); bf16 rel 2^-8 (one rounding, at most 2^-9).
 * - argmax: the exact index, ties to the lowest, NaN skipped. */
#include "config.h"
#include "kern.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "mem.h"
#include "t.h"

/* A random value with |v| in [0.05, 2.05) and a random sign: never zero. */
static float rand_nonzero(gsl_rng *r) {
    double m = 0.05 + 2.0 * gsl_rng_uniform(r);
    return (float)(gsl_rng_uniform(r) < 0.5 ? -m : m);
}

/* ---- GEMM ---- */

/* Dense y = scale * x . w^T in double on widened inputs xd (M, K), wd (N,
 * K), and S = |scale| sum |x w| per element. */
static void gemm_dense(double *y, double *sabs, const double *xd, const double *wd, int m, int n,
                       int k, double scale) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0.0, a = 0.0;
            for (int kk = 0; kk < k; kk++) {
                acc += xd[(size_t)i * k + kk] * wd[(size_t)j * k + kk];
                a += fabs(xd[(size_t)i * k + kk] * wd[(size_t)j * k + kk]);
            }
            y[(size_t)i * n + j] = scale * acc;
            sabs[(size_t)i * n + j] = fabs(scale) * a;
        }
}

static void test_gemm(gsl_rng *r, int m, int n, int k, float scale, int fp8) {
    const size_t nx = (size_t)m * k, nw = (size_t)n * k, ny = (size_t)m * n;
    kern_bf16 *xb = SIM_NEW_ARRAY(kern_bf16, nx + 1), *wb = SIM_NEW_ARRAY(kern_bf16, nw + 1);
    kern_fp8 *x8 = SIM_NEW_ARRAY(kern_fp8, nx + 1), *w8 = SIM_NEW_ARRAY(kern_fp8, nw + 1);
    double *xd = SIM_NEW_ARRAY(double, nx + 1), *wd = SIM_NEW_ARRAY(double, nw + 1);
    double *yd = SIM_NEW_ARRAY(double, ny + 1), *sd = SIM_NEW_ARRAY(double, ny + 1);
    kern_bf16 *y = SIM_NEW_ARRAY(kern_bf16, ny + 1);
    T_ASSERT(xb && wb && x8 && w8 && xd && wd && yd && sd && y);
    /* fp8 inputs span a wider range: |v| up to ~200 of E4M3's 448 */
    const float range = fp8 ? 100.0f : 1.0f;
    for (size_t i = 0; i < nx; i++) {
        float v = rand_nonzero(r) * range;
        xb[i] = kern_bf16_from_f32(v);
        x8[i] = kern_fp8_from_f32(v);
        xd[i] = fp8 ? kern_f32_from_fp8(x8[i]) : kern_f32_from_bf16(xb[i]);
    }
    for (size_t i = 0; i < nw; i++) {
        float v = rand_nonzero(r) * range;
        wb[i] = kern_bf16_from_f32(v);
        w8[i] = kern_fp8_from_f32(v);
        wd[i] = fp8 ? kern_f32_from_fp8(w8[i]) : kern_f32_from_bf16(wb[i]);
    }
    for (size_t i = 0; i < ny + 1; i++)
        y[i] = 0x7fc0;
    if (fp8)
        kern_gemm_ref_fp8(y, x8, w8, m, n, k, scale);
    else
        kern_gemm_ref_bf16(y, xb, wb, m, n, k, scale);
    T_EQ_I(y[ny], 0x7fc0);
    gemm_dense(yd, sd, xd, wd, m, n, k, scale);
    for (size_t i = 0; i < ny; i++) {
        double got = kern_f32_from_bf16(y[i]);
        double tol = 0x1p-8 * fabs(yd[i]) + (k + 2) * 0x1p-24 * sd[i];
        if (!(fabs(got - yd[i]) <= tol))
            T_FAIL_("gemm %s m=%d n=%d k=%d: y[%zu, %zu] = %.9g, dense %.9g (tol %.3g)",
                    fp8 ? "fp8" : "bf16", m, n, k, i / n, i % n, got, yd[i], tol);
    }
    sim_free(xb);
    sim_free(wb);
    sim_free(x8);
    sim_free(w8);
    sim_free(xd);
    sim_free(wd);
    sim_free(yd);
    sim_free(sd);
    sim_free(y);
}

/* ---- KV append ---- */

/* Byte offset of (block, K|V, head, slot, dim 0) in a layer pool, written
 * out independently of kern_kv_offset(). */
static size_t pool_byte(const kern_kv_layout *kv, int block, int sel, int head, int slot) {
    size_t i = (((size_t)block * 2 + sel) * kv->n_kv_heads + head) * kv->block_size + slot;
    return i * kv->head_dim * kern_dtype_size(kv->dtype);
}

static void fill_random_bytes(gsl_rng *r, unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(1 + gsl_rng_uniform_int(r, 255)); /* never 0 */
}

static void test_kv_save(gsl_rng *r, int dtype, int Hkv, int D, int bs, int n_blocks, int T,
                         int pad) {
    const kern_kv_layout kv = {1, n_blocks, bs, Hkv, D, dtype};
    T_EQ_I(kern_kv_layout_check(&kv), SIM_OK);
    const size_t es = kern_dtype_size(dtype), pool_bytes = kern_kv_cache_bytes(&kv);
    const int stride = Hkv * D + pad;
    unsigned char *pool = sim_malloc(pool_bytes), *k = sim_malloc((size_t)T * stride * es + 1);
    unsigned char *v = sim_malloc((size_t)T * stride * es + 1);
    int32_t *slots = SIM_NEW_ARRAY(int32_t, T), *taken = SIM_NEW_ARRAY(int32_t, n_blocks * bs);
    T_ASSERT(pool && k && v && slots && taken);
    memset(pool, 0xA5, pool_bytes);
    fill_random_bytes(r, k, (size_t)T * stride * es);
    fill_random_bytes(r, v, (size_t)T * stride * es);
    /* distinct random slots; every fifth token is padding (-1) */
    for (int t = 0; t < T; t++) {
        int sl;
        do
            sl = (int)gsl_rng_uniform_int(r, (unsigned long)n_blocks * bs);
        while (taken[sl]);
        taken[sl] = 1;
        slots[t] = t % 5 == 4 ? -1 : sl;
        if (slots[t] < 0)
            taken[sl] = 0;
    }
    T_EQ_I(kern_kv_save_ref(pool, &kv, k, stride, v, stride, slots, T), SIM_OK);
    /* every written row matches; then every other byte is still 0xA5 */
    unsigned char *seen = SIM_NEW_ARRAY(unsigned char, pool_bytes);
    T_ASSERT(seen != NULL);
    const size_t row = (size_t)D * es;
    for (int t = 0; t < T; t++) {
        if (slots[t] < 0)
            continue;
        for (int h = 0; h < Hkv; h++) {
            size_t ok = pool_byte(&kv, slots[t] / bs, 0, h, slots[t] % bs);
            size_t ov = pool_byte(&kv, slots[t] / bs, 1, h, slots[t] % bs);
            T_ASSERT(memcmp(pool + ok, k + ((size_t)t * stride + (size_t)h * D) * es, row) == 0);
            T_ASSERT(memcmp(pool + ov, v + ((size_t)t * stride + (size_t)h * D) * es, row) == 0);
            memset(seen + ok, 1, row);
            memset(seen + ov, 1, row);
        }
    }
    for (size_t i = 0; i < pool_bytes; i++)
        if (!seen[i] && pool[i] != 0xA5)
            T_FAIL_("kv_save: byte %zu outside the saved rows was written", i);
    /* a slot past the pool is refused before anything is written */
    memset(pool, 0xA5, pool_bytes);
    slots[T - 1] = n_blocks * bs;
    T_EQ_I(kern_kv_save_ref(pool, &kv, k, stride, v, stride, slots, T), SIM_EINVAL);
    T_CONTAINS(kern_last_error(), "slots[");
    for (size_t i = 0; i < pool_bytes; i++)
        T_EQ_I(pool[i], 0xA5);
    T_EQ_I(kern_kv_save_ref(pool, &kv, k, Hkv * D - 1, v, stride, slots, 0), SIM_EINVAL);
    sim_free(seen);
    sim_free(pool);
    sim_free(k);
    sim_free(v);
    sim_free(slots);
    sim_free(taken);
}

/* ---- KV block moves ---- */

/* Distinct random ids in [0, limit). */
static void distinct_ids(gsl_rng *r, int32_t *ids, int n, int limit) {
    for (int i = 0; i < n; i++) {
        int dup;
        do {
            ids[i] = (int32_t)gsl_rng_uniform_int(r, (unsigned long)limit);
            dup = 0;
            for (int j = 0; j < i; j++)
                dup |= ids[j] == ids[i];
        } while (dup);
    }
}

static void test_kv_moves(gsl_rng *r, int dtype, int L, int NB, int Hkv, int D, int bs, int n,
                          int n_slots) {
    const kern_kv_layout kv = {L, NB, bs, Hkv, D, dtype};
    T_EQ_I(kern_kv_layout_check(&kv), SIM_OK);
    const size_t cache_bytes = kern_kv_cache_bytes(&kv), slot_bytes = kern_kv_slot_bytes(&kv);
    const size_t e_bytes = kern_kv_block_stride(&kv) * kern_dtype_size(dtype);
    const size_t layer_bytes = kern_kv_layer_stride(&kv) * kern_dtype_size(dtype);
    T_EQ_I(slot_bytes, L * e_bytes);
    unsigned char *cache = sim_malloc(cache_bytes), *copy = sim_malloc(cache_bytes);
    unsigned char *stg = sim_malloc(n * slot_bytes + 1), *host = sim_malloc(n_slots * slot_bytes);
    int32_t *blocks = SIM_NEW_ARRAY(int32_t, n), *slots = SIM_NEW_ARRAY(int32_t, n);
    T_ASSERT(cache && copy && stg && host && blocks && slots);
    fill_random_bytes(r, cache, cache_bytes);
    distinct_ids(r, blocks, n, NB);
    distinct_ids(r, slots, n, n_slots);

    /* gather: staging entry (i, l) = cache (l, blocks[i]) */
    memset(stg, 0xA5, n * slot_bytes + 1);
    T_EQ_I(kern_kv_gather_ref(stg, cache, &kv, blocks, n), SIM_OK);
    for (int i = 0; i < n; i++)
        for (int l = 0; l < L; l++)
            T_ASSERT(memcmp(stg + (size_t)(i * L + l) * e_bytes,
                            cache + l * layer_bytes + (size_t)blocks[i] * e_bytes, e_bytes) == 0);
    T_EQ_I(stg[n * slot_bytes], 0xA5);

    /* scatter fresh staging: those blocks change, every other byte stays */
    memcpy(copy, cache, cache_bytes);
    fill_random_bytes(r, stg, n * slot_bytes);
    T_EQ_I(kern_kv_scatter_ref(cache, stg, &kv, blocks, n), SIM_OK);
    for (int i = 0; i < n; i++)
        for (int l = 0; l < L; l++) {
            unsigned char *dst = cache + l * layer_bytes + (size_t)blocks[i] * e_bytes;
            T_ASSERT(memcmp(dst, stg + (size_t)(i * L + l) * e_bytes, e_bytes) == 0);
            memcpy(dst, copy + (dst - cache), e_bytes); /* restore for the comparison below */
        }
    T_ASSERT(memcmp(cache, copy, cache_bytes) == 0);

    /* swap out into a poisoned host pool, then back into other blocks */
    memset(host, 0xA5, n_slots * slot_bytes);
    T_EQ_I(kern_kv_swap_out_ref(host, n_slots, cache, &kv, blocks, slots, n), SIM_OK);
    for (int i = 0; i < n; i++)
        for (int l = 0; l < L; l++)
            T_ASSERT(memcmp(host + (size_t)slots[i] * slot_bytes + (size_t)l * e_bytes,
                            cache + l * layer_bytes + (size_t)blocks[i] * e_bytes, e_bytes) == 0);
    for (int sl = 0; sl < n_slots; sl++) {
        int used = 0;
        for (int i = 0; i < n; i++)
            used |= slots[i] == sl;
        for (size_t b = 0; !used && b < slot_bytes; b++)
            T_EQ_I(host[(size_t)sl * slot_bytes + b], 0xA5);
    }
    int32_t *back = SIM_NEW_ARRAY(int32_t, n);
    T_ASSERT(back != NULL);
    distinct_ids(r, back, n, NB);
    T_EQ_I(kern_kv_swap_in_ref(cache, host, n_slots, &kv, slots, back, n), SIM_OK);
    for (int i = 0; i < n; i++)
        for (int l = 0; l < L; l++)
            T_ASSERT(memcmp(cache + l * layer_bytes + (size_t)back[i] * e_bytes,
                            host + (size_t)slots[i] * slot_bytes + (size_t)l * e_bytes,
                            e_bytes) == 0);

    /* bad ids are refused before anything moves */
    memcpy(copy, cache, cache_bytes);
    blocks[n - 1] = NB;
    T_EQ_I(kern_kv_gather_ref(stg, cache, &kv, blocks, n), SIM_EINVAL);
    T_EQ_I(kern_kv_scatter_ref(cache, stg, &kv, blocks, n), SIM_EINVAL);
    T_EQ_I(kern_kv_swap_in_ref(cache, host, n_slots, &kv, slots, blocks, n), SIM_EINVAL);
    blocks[n - 1] = 0;
    slots[0] = n_slots;
    T_EQ_I(kern_kv_swap_out_ref(host, n_slots, cache, &kv, blocks, slots, n), SIM_EINVAL);
    T_EQ_I(kern_kv_swap_in_ref(cache, host, n_slots, &kv, slots, back, n), SIM_EINVAL);
    T_CONTAINS(kern_last_error(), "slots[0]");
    T_ASSERT(memcmp(cache, copy, cache_bytes) == 0);
    sim_free(back);
    sim_free(cache);
    sim_free(copy);
    sim_free(stg);
    sim_free(host);
    sim_free(blocks);
    sim_free(slots);
}

/* ---- RoPE ---- */

static void test_rope_cache(void) {
    const int P = 4096, R = 128;
    const double theta = 500000.0;
    float *cs = SIM_NEW_ARRAY(float, (size_t)P *R);
    T_ASSERT(cs != NULL);
    T_EQ_I(kern_rope_cache_ref(cs, P, R, theta), SIM_OK);
    for (int p = 0; p < P; p += 7)
        for (int i = 0; i < R / 2; i++) {
            double a = p * exp(-2.0 * i / R * log(theta));
            T_NEAR(cs[(size_t)p * R + i], cos(a), 0x1p-24);
            T_NEAR(cs[(size_t)p * R + R / 2 + i], sin(a), 0x1p-24);
        }
    T_EQ_I(kern_rope_cache_ref(cs, 0, R, theta), SIM_EINVAL);
    T_EQ_I(kern_rope_cache_ref(cs, P, 7, theta), SIM_EINVAL);
    T_EQ_I(kern_rope_cache_ref(cs, P, R, 1.0), SIM_EINVAL);
    sim_free(cs);
}

/* Dense NeoX rotation of one head vector in double, angles from scratch. */
static void rope_dense(double *y, const double *x, int D, int R, int pos, double theta) {
    for (int d = 0; d < D; d++)
        y[d] = x[d];
    for (int i = 0; i < R / 2; i++) {
        double a = pos * exp(-2.0 * i / R * log(theta));
        y[i] = x[i] * cos(a) - x[i + R / 2] * sin(a);
        y[i + R / 2] = x[i + R / 2] * cos(a) + x[i] * sin(a);
    }
}

static void test_rope(gsl_rng *r, int T, int H, int Hkv, int D, int R, int pad, int bf16) {
    const int P = 5000;
    const double theta = 10000.0;
    const int qs = H * D + pad, ks = Hkv * D + pad;
    float *cs = SIM_NEW_ARRAY(float, (size_t)P *R);
    float *qf = SIM_NEW_ARRAY(float, (size_t)T *qs), *kf = SIM_NEW_ARRAY(float, (size_t)T *ks);
    float *q0 = SIM_NEW_ARRAY(float, (size_t)T *qs), *k0 = SIM_NEW_ARRAY(float, (size_t)T *ks);
    kern_bf16 *qb = SIM_NEW_ARRAY(kern_bf16, (size_t)T * qs);
    kern_bf16 *kb = SIM_NEW_ARRAY(kern_bf16, (size_t)T * ks);
    int32_t *pos = SIM_NEW_ARRAY(int32_t, T);
    double *x = SIM_NEW_ARRAY(double, D), *y = SIM_NEW_ARRAY(double, D);
    T_ASSERT(cs && qf && kf && q0 && k0 && qb && kb && pos && x && y);
    T_EQ_I(kern_rope_cache_ref(cs, P, R, theta), SIM_OK);
    for (int t = 0; t < T; t++)
        pos[t] = t == 0 ? P - 1 : (int32_t)gsl_rng_uniform_int(r, P);
    for (size_t i = 0; i < (size_t)T * qs; i++) {
        qf[i] = rand_nonzero(r);
        qb[i] = kern_bf16_from_f32(qf[i]);
        q0[i] = bf16 ? kern_f32_from_bf16(qb[i]) : qf[i];
    }
    for (size_t i = 0; i < (size_t)T * ks; i++) {
        kf[i] = rand_nonzero(r);
        kb[i] = kern_bf16_from_f32(kf[i]);
        k0[i] = bf16 ? kern_f32_from_bf16(kb[i]) : kf[i];
    }
    if (bf16)
        T_EQ_I(kern_rope_ref_bf16(qb, qs, kb, ks, cs, P, pos, T, H, Hkv, D, R), SIM_OK);
    else
        T_EQ_I(kern_rope_ref_f32(qf, qs, kf, ks, cs, P, pos, T, H, Hkv, D, R), SIM_OK);
    for (int t = 0; t < T; t++)
        for (int hh = 0; hh < H + Hkv; hh++) {
            const int is_q = hh < H;
            const size_t base = is_q ? (size_t)t * qs + (size_t)hh * D
                                     : (size_t)t * ks + (size_t)(hh - H) * D; /* (D) */
            const float *orig = is_q ? q0 : k0;
            for (int d = 0; d < D; d++)
                x[d] = orig[base + d];
            rope_dense(y, x, D, R, pos[t], theta);
            for (int d = 0; d < D; d++) {
                double got = bf16 ? kern_f32_from_bf16((is_q ? qb : kb)[base + d])
                                  : (is_q ? qf : kf)[base + d];
                if (d >= R) { /* untouched, bit for bit */
                    T_ASSERT(got == x[d]);
                    continue;
                }
                int i = d % (R / 2);
                double tol = 0x1p-22 * (fabs(x[i]) + fabs(x[i + R / 2]));
                if (bf16)
                    tol += 0x1p-8 * fabs(y[d]);
                if (!(fabs(got - y[d]) <= tol))
                    T_FAIL_("rope %s T=%d D=%d R=%d: token %d head %d dim %d: %.9g vs %.9g",
                            bf16 ? "bf16" : "f32", T, D, R, t, hh, d, got, y[d]);
            }
        }
    /* row padding is untouched */
    for (int t = 0; t < T; t++)
        for (int e = 0; e < pad; e++) {
            if (bf16) {
                T_EQ_I(qb[(size_t)t * qs + H * D + e],
                       kern_bf16_from_f32(qf[(size_t)t * qs + H * D + e]));
                T_EQ_I(kb[(size_t)t * ks + Hkv * D + e],
                       kern_bf16_from_f32(kf[(size_t)t * ks + Hkv * D + e]));
            } else {
                T_ASSERT(qf[(size_t)t * qs + H * D + e] == q0[(size_t)t * qs + H * D + e]);
                T_ASSERT(kf[(size_t)t * ks + Hkv * D + e] == k0[(size_t)t * ks + Hkv * D + e]);
            }
        }
    /* a position past the table is refused, nothing rotated */
    memcpy(q0, qf, (size_t)T * qs * sizeof *qf);
    pos[T - 1] = P;
    T_EQ_I(kern_rope_ref_f32(qf, qs, kf, ks, cs, P, pos, T, H, Hkv, D, R), SIM_EINVAL);
    T_ASSERT(memcmp(q0, qf, (size_t)T * qs * sizeof *qf) == 0);
    T_EQ_I(kern_rope_ref_f32(qf, qs, kf, ks, cs, P, pos, 0, H, Hkv, D, D + 2), SIM_EINVAL);
    sim_free(cs);
    sim_free(qf);
    sim_free(kf);
    sim_free(q0);
    sim_free(k0);
    sim_free(qb);
    sim_free(kb);
    sim_free(pos);
    sim_free(x);
    sim_free(y);
}

/* ---- SiLU-and-multiply ---- */

static void test_silu_mul(gsl_rng *r, int T, int I) {
    const size_t n_in = (size_t)T * 2 * I, n_out = (size_t)T * I;
    float *in = SIM_NEW_ARRAY(float, n_in), *out = SIM_NEW_ARRAY(float, n_out + 1);
    kern_bf16 *inb = SIM_NEW_ARRAY(kern_bf16, n_in), *outb = SIM_NEW_ARRAY(kern_bf16, n_out + 1);
    T_ASSERT(in && out && inb && outb);
    for (size_t i = 0; i < n_in; i++) {
        in[i] = rand_nonzero(r) * 4.0f; /* gates reach the saturating tails */
        inb[i] = kern_bf16_from_f32(in[i]);
    }
    for (size_t i = 0; i < n_out + 1; i++) {
        out[i] = NAN;
        outb[i] = 0x7fc0;
    }
    kern_silu_mul_ref_f32(out, in, T, I);
    kern_silu_mul_ref_bf16(outb, inb, T, I);
    T_ASSERT(isnan(out[n_out]));
    T_EQ_I(outb[n_out], 0x7fc0);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < I; i++) {
            double g = in[(size_t)t * 2 * I + i], u = in[(size_t)t * 2 * I + I + i];
            T_REL(out[(size_t)t * I + i], g / (1.0 + exp(-g)) * u, 1e-6);
            g = kern_f32_from_bf16(inb[(size_t)t * 2 * I + i]);
            u = kern_f32_from_bf16(inb[(size_t)t * 2 * I + I + i]);
            T_REL(kern_f32_from_bf16(outb[(size_t)t * I + i]), g / (1.0 + exp(-g)) * u, 0x1p-8);
        }
    sim_free(in);
    sim_free(out);
    sim_free(inb);
    sim_free(outb);
}

/* ---- argmax ---- */

/* The definition in two passes: the largest non-NaN value, then the first
 * index holding it; 0 when every value is NaN. */
static int32_t argmax_dense(const double *v, int n) {
    double mx = NAN;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i]) && (isnan(mx) || v[i] > mx))
            mx = v[i];
    for (int i = 0; i < n; i++)
        if (v[i] == mx)
            return i;
    return 0;
}

static void test_argmax(gsl_rng *r, int R, int V) {
    float *lf = SIM_NEW_ARRAY(float, (size_t)R *V);
    kern_bf16 *lb = SIM_NEW_ARRAY(kern_bf16, (size_t)R * V);
    double *row = SIM_NEW_ARRAY(double, V);
    int32_t *out = SIM_NEW_ARRAY(int32_t, R + 1), *outb = SIM_NEW_ARRAY(int32_t, R + 1);
    T_ASSERT(lf && lb && row && out && outb);
    for (int rr = 0; rr < R; rr++) {
        float *l = lf + (size_t)rr * V;
        for (int i = 0; i < V; i++)
            l[i] = rand_nonzero(r) * 8.0f;
        switch (rr % 5) {
            case 1: /* a planted tie: the maximum twice, the later one first found by stride */
                l[V - 1] = 100.0f;
                l[V / 2] = 100.0f;
                break;
            case 2: /* NaN everywhere but one value, and a NaN at the front */
                for (int i = 0; i < V; i++)
                    l[i] = NAN;
                l[V - 1] = -3.0f;
                break;
            case 3: /* all NaN: 0 */
                for (int i = 0; i < V; i++)
                    l[i] = NAN;
                break;
            case 4: /* all -inf: the first */
                for (int i = 0; i < V; i++)
                    l[i] = -INFINITY;
                break;
            default:
                break;
        }
        for (int i = 0; i < V; i++)
            lb[(size_t)rr * V + i] = kern_bf16_from_f32(l[i]);
    }
    for (int i = 0; i <= R; i++)
        out[i] = outb[i] = -99;
    kern_argmax_ref_f32(out, lf, R, V);
    kern_argmax_ref_bf16(outb, lb, R, V);
    T_EQ_I(out[R], -99);
    T_EQ_I(outb[R], -99);
    for (int rr = 0; rr < R; rr++) {
        for (int i = 0; i < V; i++)
            row[i] = lf[(size_t)rr * V + i];
        T_EQ_I(out[rr], argmax_dense(row, V));
        for (int i = 0; i < V; i++)
            row[i] = kern_f32_from_bf16(lb[(size_t)rr * V + i]); /* ties are common in bf16 */
        T_EQ_I(outb[rr], argmax_dense(row, V));
    }
    sim_free(lf);
    sim_free(lb);
    sim_free(row);
    sim_free(out);
    sim_free(outb);
}

int main(void) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    T_ASSERT(r != NULL);
    gsl_rng_set(r, 20240614UL);

    static const struct {
        int m, n, k;
        float scale;
    } gemms[] = {{1, 1, 1, 1.0f},      {3, 5, 7, 1.0f},      {17, 33, 65, 0.5f},
                 {64, 128, 256, 1.0f}, {2, 300, 1000, 1.0f}, {5, 16, 4096, 2.0f},
                 {7, 9, 0, 1.0f}};
    for (size_t i = 0; i < sizeof gemms / sizeof gemms[0]; i++) {
        test_gemm(r, gemms[i].m, gemms[i].n, gemms[i].k, gemms[i].scale, 0);
        test_gemm(r, gemms[i].m, gemms[i].n, gemms[i].k, gemms[i].scale * 0.37f, 1);
    }

    static const int dtypes[] = {KERN_DT_F32, KERN_DT_BF16, KERN_DT_FP8_E4M3};
    for (int d = 0; d < 3; d++) {
        /* dtype, Hkv, D, bs, NB, T, row padding */
        test_kv_save(r, dtypes[d], 2, 64, 16, 9, 40, 0);
        test_kv_save(r, dtypes[d], 3, 40, 5, 7, 20, 3 * 40 * 2);
        test_kv_save(r, dtypes[d], 1, 7, 1, 50, 33, 1);
        /* dtype, L, NB, Hkv, D, bs, n moved, host slots */
        test_kv_moves(r, dtypes[d], 3, 20, 2, 16, 4, 7, 12);
        test_kv_moves(r, dtypes[d], 1, 9, 1, 5, 3, 9, 9);
    }

    test_rope_cache();
    /* T, H, Hkv, D, R, padding, bf16 */
    test_rope(r, 9, 4, 2, 64, 64, 0, 0);
    test_rope(r, 9, 4, 2, 64, 64, 0, 1);
    test_rope(r, 5, 3, 1, 128, 64, 2 * 128, 0);
    test_rope(r, 5, 3, 1, 128, 64, 2 * 128, 1);
    test_rope(r, 3, 2, 2, 6, 2, 1, 1);

    test_silu_mul(r, 1, 1);
    test_silu_mul(r, 3, 7);
    test_silu_mul(r, 8, 1000);
    test_silu_mul(r, 2, 14336);

    test_argmax(r, 10, 1);
    test_argmax(r, 10, 7);
    test_argmax(r, 10, 1000);
    test_argmax(r, 5, 32000);

    gsl_rng_free(r);
    T_EQ_I(sim_mem_current(), 0);
    printf("test_kern_ops_ref: ok\n");
    return 0;
}
