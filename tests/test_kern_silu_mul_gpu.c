/* test_kern_silu_mul_gpu.c: kern_silu_mul() (silu_mul.cu) on a GPU
 * against the CPU reference (silu_mul_ref.c), which test_kern_ops_ref
 * checks against a dense double computation.
 *
 * Skips (exit 77, reason printed) when the build has no CUDA or when
 * kern_device_count() finds no usable device.
 *
 * fp32 and bf16, over shapes that take the 128-bit path (I a multiple of 4
 * or 8, aligned pointers) and the scalar path (odd I, or pointers shifted
 * by one element), on fresh random inputs (never zero; gates up to +-8,
 * into silu's flat tails). The output and 16 guard elements on each side
 * are poisoned with NaN first. Bound: fp32 rel 1e-5 (expf and a division
 * within a few ulps on both sides); bf16 rel 2^-7 (one ulp: both round
 * once, from fp32 values a few ulps apart). */
#include "config.h"
#include "kern.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "mem.h"
#include "t.h"

#ifdef KV_HAVE_CUDA

enum { GUARD = 16 };

static float rand_nonzero(gsl_rng *r) {
    double m = 0.05 + 2.0 * gsl_rng_uniform(r);
    return (float)(gsl_rng_uniform(r) < 0.5 ? -m : m);
}

static double elem(const void *p, size_t i, int dtype) {
    if (dtype == KERN_DT_F32)
        return ((const float *)p)[i];
    return kern_f32_from_bf16(((const kern_bf16 *)p)[i]);
}

static void check_case(gsl_rng *r, int T, int I, int dtype, int shift) {
    const size_t es = kern_dtype_size(dtype), n_in = (size_t)T * 2 * I, n_out = (size_t)T * I;
    void *in = sim_malloc(n_in * es), *ref = sim_malloc(n_out * es);
    unsigned char *got = sim_malloc((n_out + 2 * GUARD) * es);
    T_ASSERT(in && ref && got);
    for (size_t i = 0; i < n_in; i++) {
        float v = rand_nonzero(r) * 4.0f;
        if (dtype == KERN_DT_F32)
            ((float *)in)[i] = v;
        else
            ((kern_bf16 *)in)[i] = kern_bf16_from_f32(v);
    }
    if (dtype == KERN_DT_F32)
        kern_silu_mul_ref_f32(ref, in, T, I);
    else
        kern_silu_mul_ref_bf16(ref, in, T, I);

    void *d_in = NULL, *d_out = NULL;
    T_EQ_I(kern_malloc(&d_in, (n_in + shift) * es), SIM_OK);
    T_EQ_I(kern_malloc(&d_out, (n_out + 2 * GUARD + shift) * es), SIM_OK);
    char *x = (char *)d_in + shift * es, *o = (char *)d_out + shift * es;
    T_EQ_I(kern_memcpy_h2d(x, in, n_in * es), SIM_OK);
    T_EQ_I(kern_memset(o, 0xff, (n_out + 2 * GUARD) * es), SIM_OK);
    int rc = kern_silu_mul(o + GUARD * es, x, T, I, dtype, NULL);
    if (rc == SIM_OK)
        rc = kern_sync(NULL);
    if (rc != SIM_OK)
        fprintf(stderr, "kern_silu_mul: %s\n", kern_last_error());
    T_EQ_I(rc, SIM_OK);
    T_EQ_I(kern_memcpy_d2h(got, o, (n_out + 2 * GUARD) * es), SIM_OK);
    for (size_t b = 0; b < GUARD * es; b++) {
        T_EQ_I(got[b], 0xff);
        T_EQ_I(got[(GUARD + n_out) * es + b], 0xff);
    }
    const double tol = dtype == KERN_DT_F32 ? 1e-5 : 0x1p-7;
    for (size_t i = 0; i < n_out; i++) {
        double g = elem(got + GUARD * es, i, dtype), want = elem(ref, i, dtype);
        if (!(fabs(g - want) <= tol * fabs(want)))
            T_FAIL_("silu_mul %s T=%d I=%d shift=%d: element [%zu, %zu]: %.9g vs %.9g",
                    dtype == KERN_DT_F32 ? "f32" : "bf16", T, I, shift, i / I, i % I, g, want);
    }
    kern_free(&d_in);
    kern_free(&d_out);
    sim_free(in);
    sim_free(ref);
    sim_free(got);
}

static void run_all(void) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    T_ASSERT(r != NULL);
    gsl_rng_set(r, 20240619UL);
    static const int shapes[][2] = {{1, 1}, {3, 7}, {4, 8}, {17, 1000}, {64, 14336}, {5, 4099}};
    static const int dtypes[] = {KERN_DT_F32, KERN_DT_BF16};
    for (int d = 0; d < 2; d++)
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
            for (int shift = 0; shift <= 1; shift++)
                check_case(r, shapes[k][0], shapes[k][1], dtypes[d], shift);
    void *d = NULL;
    T_EQ_I(kern_malloc(&d, 64), SIM_OK);
    T_EQ_I(kern_silu_mul(d, d, -1, 4, KERN_DT_F32, NULL), SIM_EINVAL);
    T_EQ_I(kern_silu_mul(d, d, 1, 0, KERN_DT_F32, NULL), SIM_EINVAL);
    T_EQ_I(kern_silu_mul(d, d, 1, 4, KERN_DT_FP8_E4M3, NULL), SIM_EINVAL);
    T_EQ_I(kern_silu_mul(NULL, d, 1, 4, KERN_DT_BF16, NULL), SIM_EINVAL);
    T_EQ_I(kern_silu_mul(NULL, NULL, 0, 4, KERN_DT_BF16, NULL), SIM_OK);
    kern_free(&d);
    gsl_rng_free(r);
    T_EQ_I(sim_mem_current(), 0);
}

#endif /* KV_HAVE_CUDA */

T_GPU_MAIN("test_kern_silu_mul_gpu", run_all)
