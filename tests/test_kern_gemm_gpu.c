/* test_kern_gemm_gpu.c: kern_gemm() (cuBLAS bf16, cuBLASLt FP8) on a GPU
 * against the CPU reference (gemm_ref.c), which test_kern_ops_ref checks
 * against a dense double product.
 *
 * Skips (exit 77, reason printed) when the build has no CUDA or when
 * kern_device_count() finds no usable device. FP8 cases run where
 * kern_ctx_has_fp8() (compute capability >= 8.9); elsewhere kern_gemm()
 * must answer SIM_ENOTSUP.
 *
 * Shapes: the odd (1 x 1 x 1, 3 x 5 x 7, 17 x 33 x 65), decode-like (M = 1
 * and 4, N = K = 4096), prefill-like (M = 300) and K = 0; FP8 shapes have
 * K and N multiples of 16 (cuBLASLt's rule). Inputs are fresh random
 * values (never zero); y and 16 guard elements on each side are poisoned
 * with NaN first, so an unwritten element or a write out of bounds fails.
 *
 * Bound, per element, with S = |scale| sum_k |x_k w_k|:
 *   bf16: |gpu - ref| <= 2^-7 |ref| + 4 (K + 2) 2^-24 S: one bf16 ulp
 *         (both sides round once) plus twice the fp32 sum bound, doubled
 *         again for tensor-core accumulation that may truncate;
 *   FP8:  |gpu - ref| <= 2^-7 |ref| + 2^-9 S: Hopper's FP8 tensor cores
 *         accumulate with fewer than fp32's bits between cuBLASLt's
 *         promotions to fp32 (about 2^-14 per add over chunks of ~128).
 * Structural mistakes (a transposed operand, a wrong leading dimension)
 * give errors of the order of |y| itself, far above either bound. */
#include "config.h"
#include "kern.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "mem.h"
#include "t.h"

#ifdef KV_HAVE_CUDA

enum { GUARD = 16 }; /* poisoned elements on each side of y */

static float rand_nonzero(gsl_rng *r) {
    double m = 0.05 + 2.0 * gsl_rng_uniform(r);
    return (float)(gsl_rng_uniform(r) < 0.5 ? -m : m);
}

static void check_case(kern_ctx *ctx, gsl_rng *r, int m, int n, int k, float scale, int fp8) {
    const size_t nx = (size_t)m * k, nw = (size_t)n * k, ny = (size_t)m * n;
    const size_t es = fp8 ? 1 : 2;
    void *hx = sim_malloc(nx * es + 1), *hw = sim_malloc(nw * es + 1);
    float *xf = SIM_NEW_ARRAY(float, nx + 1), *wf = SIM_NEW_ARRAY(float, nw + 1);
    kern_bf16 *ref = SIM_NEW_ARRAY(kern_bf16, ny + 1),
              *got = SIM_NEW_ARRAY(kern_bf16, ny + 2 * GUARD);
    T_ASSERT(hx && hw && xf && wf && ref && got);
    const float range = fp8 ? 100.0f : 1.0f;
    for (size_t i = 0; i < nx; i++) {
        float v = rand_nonzero(r) * range;
        if (fp8) {
            ((kern_fp8 *)hx)[i] = kern_fp8_from_f32(v);
            xf[i] = kern_f32_from_fp8(((kern_fp8 *)hx)[i]);
        } else {
            ((kern_bf16 *)hx)[i] = kern_bf16_from_f32(v);
            xf[i] = kern_f32_from_bf16(((kern_bf16 *)hx)[i]);
        }
    }
    for (size_t i = 0; i < nw; i++) {
        float v = rand_nonzero(r) * range;
        if (fp8) {
            ((kern_fp8 *)hw)[i] = kern_fp8_from_f32(v);
            wf[i] = kern_f32_from_fp8(((kern_fp8 *)hw)[i]);
        } else {
            ((kern_bf16 *)hw)[i] = kern_bf16_from_f32(v);
            wf[i] = kern_f32_from_bf16(((kern_bf16 *)hw)[i]);
        }
    }
    if (fp8)
        kern_gemm_ref_fp8(ref, hx, hw, m, n, k, scale);
    else
        kern_gemm_ref_bf16(ref, hx, hw, m, n, k, scale);

    void *dx = NULL, *dw = NULL, *dy = NULL;
    T_EQ_I(kern_malloc(&dx, nx * es + 16), SIM_OK);
    T_EQ_I(kern_malloc(&dw, nw * es + 16), SIM_OK);
    T_EQ_I(kern_malloc(&dy, (ny + 2 * GUARD) * 2), SIM_OK);
    if (nx > 0)
        T_EQ_I(kern_memcpy_h2d(dx, hx, nx * es), SIM_OK);
    if (nw > 0)
        T_EQ_I(kern_memcpy_h2d(dw, hw, nw * es), SIM_OK);
    T_EQ_I(kern_memset(dy, 0xff, (ny + 2 * GUARD) * 2), SIM_OK);
    int rc = kern_gemm(ctx, (kern_bf16 *)dy + GUARD, dx, dw, m, n, k,
                       fp8 ? KERN_DT_FP8_E4M3 : KERN_DT_BF16, scale, NULL);
    if (rc != SIM_OK)
        fprintf(stderr, "kern_gemm: %s\n", kern_last_error());
    T_EQ_I(rc, SIM_OK);
    rc = kern_sync(NULL);
    if (rc != SIM_OK)
        fprintf(stderr, "kern_sync: %s\n", kern_last_error());
    T_EQ_I(rc, SIM_OK);
    T_EQ_I(kern_memcpy_d2h(got, dy, (ny + 2 * GUARD) * 2), SIM_OK);
    for (int g = 0; g < GUARD; g++) {
        T_EQ_I(got[g], 0xffff);
        T_EQ_I(got[GUARD + ny + g], 0xffff);
    }
    double se = 0.0, sref = 0.0; /* squared error and reference, over y */
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double sabs = 0.0;
            for (int kk = 0; kk < k; kk++)
                sabs += fabs((double)xf[(size_t)i * k + kk] * wf[(size_t)j * k + kk]);
            sabs *= fabs(scale);
            const double want = kern_f32_from_bf16(ref[(size_t)i * n + j]);
            const double have = kern_f32_from_bf16(got[GUARD + (size_t)i * n + j]);
            const double tol =
                0x1p-7 * fabs(want) + (fp8 ? 0x1p-9 * sabs : 4.0 * (k + 2) * 0x1p-24 * sabs);
            if (!(fabs(have - want) <= tol))
                T_FAIL_("gemm %s m=%d n=%d k=%d: y[%d, %d] = %.9g, reference %.9g (tol %.3g)",
                        fp8 ? "fp8" : "bf16", m, n, k, i, j, have, want, tol);
            se += (have - want) * (have - want);
            sref += want * want;
        }
    /* the per-element bound scales with sum |x w|, which outgrows |y| (random
     * signs: sqrt(K)) at large K; over the whole output the error must also
     * stay near the bf16 rounding of y (2^-9 relative) whatever K: within
     * 2^-7 of the output's rms for bf16, 2^-5 for fp8 (the tensor cores'
     * fp8 accumulation is not quite fp32; not yet measured here) */
    if (!(sqrt(se) <= (fp8 ? 0x1p-5 : 0x1p-7) * sqrt(sref)))
        T_FAIL_("gemm %s m=%d n=%d k=%d: rms error %.3g of rms %.3g (above 2^-%d)",
                fp8 ? "fp8" : "bf16", m, n, k, sqrt(se / ((double)m * n)),
                sqrt(sref / ((double)m * n)), fp8 ? 5 : 7);
    kern_free(&dx);
    kern_free(&dw);
    kern_free(&dy);
    sim_free(hx);
    sim_free(hw);
    sim_free(xf);
    sim_free(wf);
    sim_free(ref);
    sim_free(got);
}

static void check_args(kern_ctx *ctx) {
    void *d = NULL;
    T_EQ_I(kern_malloc(&d, 4096), SIM_OK);
    T_EQ_I(kern_gemm(ctx, d, d, d, -1, 4, 4, KERN_DT_BF16, 1.0f, NULL), SIM_EINVAL);
    T_EQ_I(kern_gemm(ctx, d, d, d, 4, 4, 4, KERN_DT_F32, 1.0f, NULL), SIM_EINVAL);
    T_EQ_I(kern_gemm(NULL, d, d, d, 4, 4, 4, KERN_DT_BF16, 1.0f, NULL), SIM_EINVAL);
    T_EQ_I(kern_gemm(ctx, NULL, d, d, 4, 4, 4, KERN_DT_BF16, 1.0f, NULL), SIM_EINVAL);
    T_EQ_I(kern_gemm(ctx, NULL, NULL, NULL, 0, 4, 4, KERN_DT_BF16, 1.0f, NULL), SIM_OK);
    if (kern_ctx_has_fp8(ctx)) {
        T_EQ_I(kern_gemm(ctx, d, d, d, 4, 16, 8, KERN_DT_FP8_E4M3, 1.0f, NULL), SIM_EINVAL);
        T_CONTAINS(kern_last_error(), "k % 16");
    } else {
        T_EQ_I(kern_gemm(ctx, d, d, d, 4, 16, 16, KERN_DT_FP8_E4M3, 1.0f, NULL), SIM_ENOTSUP);
    }
    kern_free(&d);
}

static void run_all(void) {
    kern_ctx *ctx = NULL;
    int rc = kern_ctx_create(&ctx);
    if (rc != SIM_OK)
        fprintf(stderr, "kern_ctx_create: %s\n", kern_last_error());
    T_EQ_I(rc, SIM_OK);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    T_ASSERT(r != NULL);
    gsl_rng_set(r, 20240615UL);
    static const struct {
        int m, n, k;
        float scale;
    } bf[] = {{1, 1, 1, 1.0f},        {3, 5, 7, 1.0f},       {17, 33, 65, 0.5f},
              {1, 4096, 4096, 1.0f},  {4, 4096, 4096, 1.0f}, {300, 96, 2048, 1.0f},
              {128, 1024, 512, 2.0f}, {7, 9, 0, 1.0f}},
      f8[] = {
          {16, 32, 64, 0.01f}, {1, 4096, 4096, 1e-4f}, {100, 1024, 512, 1e-3f}, {3, 48, 16, 0.5f}};
    for (size_t i = 0; i < sizeof bf / sizeof bf[0]; i++)
        check_case(ctx, r, bf[i].m, bf[i].n, bf[i].k, bf[i].scale, 0);
    if (kern_ctx_has_fp8(ctx)) {
        for (size_t i = 0; i < sizeof f8 / sizeof f8[0]; i++)
            check_case(ctx, r, f8[i].m, f8[i].n, f8[i].k, f8[i].scale, 1);
    } else {
        fprintf(stderr, "note: this device has no FP8; FP8 cases skipped\n");
    }
    check_args(ctx);
    kern_ctx_destroy(ctx);
    kern_ctx_destroy(NULL);
    gsl_rng_free(r);
    T_EQ_I(sim_mem_current(), 0);
}

#endif /* KV_HAVE_CUDA */

T_GPU_MAIN("test_kern_gemm_gpu", run_all)
