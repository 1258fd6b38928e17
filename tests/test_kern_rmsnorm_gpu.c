/* test_kern_rmsnorm_gpu.c: kern_rmsnorm() on a GPU against the CPU reference
 * (rmsnorm_ref.c), which test_kern_ref checks against a dense double one.
 *
 * Skips (exit 77, reason printed) when the build has no CUDA or when
 * kern_device_count() finds no usable device: a missing GPU is never a
 * failure.
 *
 * For fp32 and bf16, over shapes that take the 128-bit path (H a multiple of
 * 4 or 8 with aligned pointers) and the scalar path (odd H, or pointers
 * shifted by one element), on fresh random inputs (never zero):
 * - every output matches the reference within rel 1e-5 (fp32: sums in
 *   another order, rsqrtf) or rel 1e-2 (bf16: 1 ulp is at most 2^-7);
 * - the device output buffer is poisoned with NaN (all bytes 0xff) first, so
 *   an unwritten element fails, and the guard elements around the output
 *   keep their poison, so a write out of bounds fails too.
 * Bad arguments return SIM_EINVAL with a reason; T = 0 launches nothing. */
#include "config.h"
#include "kern.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "mem.h"
#include "t.h"

#ifdef KV_HAVE_CUDA

enum { GUARD = 16 }; /* poisoned elements on each side of the output */

/* A random value with |v| in [0.05, 2.05) and a random sign: never zero. */
static float rand_nonzero(gsl_rng *r) {
    double m = 0.05 + 2.0 * gsl_rng_uniform(r);
    return (float)(gsl_rng_uniform(r) < 0.5 ? -m : m);
}

/* Element i of a host buffer of dtype, as a double. */
static double elem(const void *p, size_t i, int dtype) {
    if (dtype == KERN_DT_F32)
        return ((const float *)p)[i];
    return kern_f32_from_bf16(((const kern_bf16 *)p)[i]);
}

/* True when all n bytes at p are 0xff (the poison). */
static int all_poison(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0xff)
            return 0;
    return 1;
}

/* One case: T x H of dtype, with all three device pointers shifted by
 * shift elements from their (256-byte aligned) allocations. */
static void check_case(gsl_rng *r, int T, int H, float eps, int dtype, int shift) {
    const size_t es = kern_dtype_size(dtype);
    const size_t n = (size_t)T * H;
    const size_t n_out = n + 2 * GUARD; /* guard | (T, H) | guard */
    void *h_x = sim_malloc(n * es), *h_w = sim_malloc(H * es);
    void *h_ref = sim_malloc(n * es), *h_out = sim_malloc(n_out * es);
    float *xf = SIM_NEW_ARRAY(float, n), *wf = SIM_NEW_ARRAY(float, H);
    void *d_x = NULL, *d_w = NULL, *d_out = NULL;
    T_ASSERT(h_x && h_w && h_ref && h_out && xf && wf);

    for (size_t i = 0; i < n; i++)
        xf[i] = rand_nonzero(r);
    for (int i = 0; i < H; i++)
        wf[i] = rand_nonzero(r);
    if (dtype == KERN_DT_F32) {
        memcpy(h_x, xf, n * es);
        memcpy(h_w, wf, H * es);
        kern_rmsnorm_ref_f32(h_ref, xf, wf, T, H, eps);
    } else {
        kern_bf16 *xb = h_x, *wb = h_w;
        for (size_t i = 0; i < n; i++)
            xb[i] = kern_bf16_from_f32(xf[i]);
        for (int i = 0; i < H; i++)
            wb[i] = kern_bf16_from_f32(wf[i]);
        kern_rmsnorm_ref_bf16(h_ref, xb, wb, T, H, eps);
    }

    T_EQ_I(kern_malloc(&d_x, (n + shift) * es), SIM_OK);
    T_EQ_I(kern_malloc(&d_w, (H + shift) * es), SIM_OK);
    T_EQ_I(kern_malloc(&d_out, (n_out + shift) * es), SIM_OK);
    char *x = (char *)d_x + shift * es;     /* (T, H) */
    char *w = (char *)d_w + shift * es;     /* (H) */
    char *out = (char *)d_out + shift * es; /* (GUARD + T*H + GUARD) */
    T_EQ_I(kern_memcpy_h2d(x, h_x, n * es), SIM_OK);
    T_EQ_I(kern_memcpy_h2d(w, h_w, H * es), SIM_OK);
    T_EQ_I(kern_memset(out, 0xff, n_out * es), SIM_OK);

    int rc = kern_rmsnorm(out + GUARD * es, x, w, T, H, eps, dtype, NULL);
    if (rc != SIM_OK)
        fprintf(stderr, "kern_rmsnorm: %s\n", kern_last_error());
    T_EQ_I(rc, SIM_OK);
    rc = kern_sync(NULL);
    if (rc != SIM_OK)
        fprintf(stderr, "kern_sync: %s\n", kern_last_error());
    T_EQ_I(rc, SIM_OK);
    T_EQ_I(kern_memcpy_d2h(h_out, out, n_out * es), SIM_OK);

    const unsigned char *o = h_out;
    T_ASSERT(all_poison(o, GUARD * es));
    T_ASSERT(all_poison(o + (GUARD + n) * es, GUARD * es));
    const double tol = dtype == KERN_DT_F32 ? 1e-5 : 1e-2;
    for (size_t i = 0; i < n; i++) {
        double got = elem(o + GUARD * es, i, dtype), want = elem(h_ref, i, dtype);
        if (!(fabs(got - want) <= tol * fabs(want)))
            fprintf(stderr, "%s T=%d H=%d eps=%g shift=%d: element [%zu, %zu]\n",
                    dtype == KERN_DT_F32 ? "f32" : "bf16", T, H, eps, shift, i / H, i % H);
        T_REL(got, want, tol);
    }

    kern_free(&d_x);
    kern_free(&d_w);
    kern_free(&d_out);
    T_ASSERT(d_x == NULL && d_out == NULL);
    sim_free(h_x);
    sim_free(h_w);
    sim_free(h_ref);
    sim_free(h_out);
    sim_free(xf);
    sim_free(wf);
}

/* Arguments outside the contract are refused before any launch. */
static void check_args(void) {
    void *d = NULL;
    T_EQ_I(kern_malloc(&d, 64 * sizeof(float)), SIM_OK);
    T_EQ_I(kern_rmsnorm(d, d, d, -1, 8, 1e-6f, KERN_DT_F32, NULL), SIM_EINVAL);
    T_CONTAINS(kern_last_error(), "n_tokens >= 0");
    T_EQ_I(kern_rmsnorm(d, d, d, 1, 0, 1e-6f, KERN_DT_F32, NULL), SIM_EINVAL);
    T_EQ_I(kern_rmsnorm(d, d, d, 1, 8, -1.0f, KERN_DT_F32, NULL), SIM_EINVAL);
    T_EQ_I(kern_rmsnorm(d, d, d, 1, 8, NAN, KERN_DT_F32, NULL), SIM_EINVAL);
    T_EQ_I(kern_rmsnorm(d, d, d, 1, 8, 1e-6f, 42, NULL), SIM_EINVAL);
    T_EQ_I(kern_rmsnorm(NULL, d, d, 1, 8, 1e-6f, KERN_DT_BF16, NULL), SIM_EINVAL);
    T_EQ_I(kern_rmsnorm(NULL, NULL, NULL, 0, 8, 1e-6f, KERN_DT_BF16, NULL), SIM_OK);
    kern_free(&d);
    T_ASSERT(d == NULL);
    kern_free(&d); /* NULL is a no-op */
}

static void run_all(void) {
    static const struct {
        int n_tokens, hidden;
        float eps;
    } shapes[] = {
        {1, 1, 1e-6f},    {3, 7, 1e-6f},     {4, 8, 1e-5f},     {5, 100, 1e-6f},
        {17, 33, 1e-5f},  {2, 4097, 1e-6f},  {7, 768, 1e-6f},   {64, 4096, 1e-5f},
        {3, 8192, 1e-6f}, {2, 16384, 1e-6f}, {300, 128, 1e-6f}, {6, 12, 1.0f},
    };
    static const int dtypes[] = {KERN_DT_F32, KERN_DT_BF16};
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    T_ASSERT(r != NULL);
    gsl_rng_set(r, 20240612UL);
    for (size_t d = 0; d < 2; d++)
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
            for (int shift = 0; shift <= 1; shift++)
                check_case(r, shapes[k].n_tokens, shapes[k].hidden, shapes[k].eps, dtypes[d],
                           shift);
    check_args();
    gsl_rng_free(r);
    T_EQ_I(sim_mem_current(), 0);
}

#endif /* KV_HAVE_CUDA */

T_GPU_MAIN("test_kern_rmsnorm_gpu", run_all)
