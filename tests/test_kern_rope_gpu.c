/* test_kern_rope_gpu.c: kern_rope() (rope.cu) on a GPU against the CPU
 * reference (rope_ref.c), which test_kern_ops_ref checks against a dense
 * double rotation.
 *
 * Skips (exit 77, reason printed) when the build has no CUDA or when
 * kern_device_count() finds no usable device.
 *
 * fp32 and bf16; full and partial rotary dims; q and k rows padded as in
 * a fused QKV row (the padding must stay untouched); positions up to the
 * last row of the table, plus one token whose position is past the table,
 * which the kernel must leave unchanged (the reference refuses such a
 * batch, so that token's row is compared with its input). Both sides use
 * the same fp32 cos/sin table. Bound per element, x1 and x2 the pair's
 * inputs: fp32 |gpu - ref| <= 2^-22 (|x1| + |x2|) (fma contraction versus
 * separate roundings); bf16 adds one ulp, 2^-7 |ref|. */
#include "config.h"
#include "kern.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "mem.h"
#include "t.h"

#ifdef KV_HAVE_CUDA

static float rand_nonzero(gsl_rng *r) {
    double m = 0.05 + 2.0 * gsl_rng_uniform(r);
    return (float)(gsl_rng_uniform(r) < 0.5 ? -m : m);
}

static double elem(const void *p, size_t i, int bf16) {
    return bf16 ? kern_f32_from_bf16(((const kern_bf16 *)p)[i]) : ((const float *)p)[i];
}

/* Compares one tensor (rows of n_heads heads, row stride st) after RoPE. */
static void compare(const void *got, const void *ref, const void *in, int T, int n_heads, int D,
                    int R, int st, int bf16, int skip_row, const char *what) {
    for (int t = 0; t < T; t++)
        for (int e = 0; e < st; e++) {
            const size_t i = (size_t)t * st + e;
            const double g = elem(got, i, bf16);
            const double want = t == skip_row ? elem(in, i, bf16) : elem(ref, i, bf16);
            const int d = e % D, rotated = e < n_heads * D && d < R && t != skip_row;
            if (!rotated) { /* unrotated dims, padding, the skipped row: exact */
                if (!(g == want))
                    T_FAIL_("%s: token %d element %d changed: %.9g vs %.9g", what, t, e, g, want);
                continue;
            }
            const size_t base = (size_t)t * st + (size_t)(e / D) * D;
            const int pi = d % (R / 2);
            const double tol = 0x1p-22 * (fabs(elem(in, base + pi, bf16)) +
                                          fabs(elem(in, base + pi + R / 2, bf16))) +
                               (bf16 ? 0x1p-7 * fabs(want) : 0.0);
            if (!(fabs(g - want) <= tol))
                T_FAIL_("%s: token %d element %d: %.9g vs reference %.9g (tol %.3g)", what, t, e, g,
                        want, tol);
        }
}

static void check_case(gsl_rng *r, int T, int H, int Hkv, int D, int R, int pad, int bf16) {
    const int P = 6000, qs = H * D + pad, ks = Hkv * D + pad;
    const size_t es = bf16 ? 2 : 4, nq = (size_t)T * qs, nk = (size_t)T * ks;
    float *cs = SIM_NEW_ARRAY(float, (size_t)P *R);
    void *q = sim_malloc(nq * es), *k = sim_malloc(nk * es), *q_in = sim_malloc(nq * es);
    void *k_in = sim_malloc(nk * es), *q_got = sim_malloc(nq * es), *k_got = sim_malloc(nk * es);
    int32_t *pos = SIM_NEW_ARRAY(int32_t, T);
    T_ASSERT(cs && q && k && q_in && k_in && q_got && k_got && pos);
    T_EQ_I(kern_rope_cache_ref(cs, P, R, 500000.0), SIM_OK);
    for (size_t i = 0; i < nq; i++) {
        if (bf16)
            ((kern_bf16 *)q)[i] = kern_bf16_from_f32(rand_nonzero(r));
        else
            ((float *)q)[i] = rand_nonzero(r);
    }
    for (size_t i = 0; i < nk; i++) {
        if (bf16)
            ((kern_bf16 *)k)[i] = kern_bf16_from_f32(rand_nonzero(r));
        else
            ((float *)k)[i] = rand_nonzero(r);
    }
    memcpy(q_in, q, nq * es);
    memcpy(k_in, k, nk * es);
    for (int t = 0; t < T; t++)
        pos[t] = t == 0 ? P - 1 : (int32_t)gsl_rng_uniform_int(r, P);

    void *d_q = NULL, *d_k = NULL, *d_cs = NULL, *d_pos = NULL;
    T_EQ_I(kern_malloc(&d_q, nq * es), SIM_OK);
    T_EQ_I(kern_malloc(&d_k, nk * es), SIM_OK);
    T_EQ_I(kern_malloc(&d_cs, (size_t)P * R * 4), SIM_OK);
    T_EQ_I(kern_malloc(&d_pos, (size_t)T * 4), SIM_OK);
    T_EQ_I(kern_memcpy_h2d(d_q, q, nq * es), SIM_OK);
    T_EQ_I(kern_memcpy_h2d(d_k, k, nk * es), SIM_OK);
    T_EQ_I(kern_memcpy_h2d(d_cs, cs, (size_t)P * R * 4), SIM_OK);

    /* reference on the valid positions; the device also sees one past the table */
    int rc = bf16 ? kern_rope_ref_bf16(q, qs, k, ks, cs, P, pos, T, H, Hkv, D, R)
                  : kern_rope_ref_f32(q, qs, k, ks, cs, P, pos, T, H, Hkv, D, R);
    T_EQ_I(rc, SIM_OK);
    const int skip = T > 2 ? T - 1 : -1;
    if (skip >= 0)
        pos[skip] = P + 5;
    T_EQ_I(kern_memcpy_h2d(d_pos, pos, (size_t)T * 4), SIM_OK);
    rc = kern_rope(d_q, qs, d_k, ks, d_cs, P, d_pos, T, H, Hkv, D, R,
                   bf16 ? KERN_DT_BF16 : KERN_DT_F32, NULL);
    if (rc == SIM_OK)
        rc = kern_sync(NULL);
    if (rc != SIM_OK)
        fprintf(stderr, "kern_rope: %s\n", kern_last_error());
    T_EQ_I(rc, SIM_OK);
    T_EQ_I(kern_memcpy_d2h(q_got, d_q, nq * es), SIM_OK);
    T_EQ_I(kern_memcpy_d2h(k_got, d_k, nk * es), SIM_OK);
    char what[96];
    snprintf(what, sizeof what, "rope %s T=%d H=%d Hkv=%d D=%d R=%d", bf16 ? "bf16" : "f32", T, H,
             Hkv, D, R);
    compare(q_got, q, q_in, T, H, D, R, qs, bf16, skip, what);
    compare(k_got, k, k_in, T, Hkv, D, R, ks, bf16, skip, what);

    T_EQ_I(kern_rope(d_q, qs, d_k, ks, d_cs, P, d_pos, T, H, Hkv, D, D + 2, KERN_DT_F32, NULL),
           SIM_EINVAL);
    T_EQ_I(kern_rope(d_q, qs, d_k, ks, d_cs, P, d_pos, T, H, Hkv, D, R, 9, NULL), SIM_EINVAL);
    kern_free(&d_q);
    kern_free(&d_k);
    kern_free(&d_cs);
    kern_free(&d_pos);
    sim_free(cs);
    sim_free(q);
    sim_free(k);
    sim_free(q_in);
    sim_free(k_in);
    sim_free(q_got);
    sim_free(k_got);
    sim_free(pos);
}

static void run_all(void) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    T_ASSERT(r != NULL);
    gsl_rng_set(r, 20240618UL);
    for (int bf16 = 0; bf16 <= 1; bf16++) {
        /* T, H, Hkv, D, R, padding */
        check_case(r, 64, 32, 8, 128, 128, 0, bf16);
        check_case(r, 7, 4, 2, 64, 32, 2 * 2 * 64, bf16);
        check_case(r, 3, 3, 1, 6, 2, 1, bf16);
        check_case(r, 1, 1, 1, 256, 256, 0, bf16);
    }
    gsl_rng_free(r);
    T_EQ_I(sim_mem_current(), 0);
}

#endif /* KV_HAVE_CUDA */

T_GPU_MAIN("test_kern_rope_gpu", run_all)
