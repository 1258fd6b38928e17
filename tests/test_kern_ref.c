/* test_kern_ref.c: the CPU references of kernels/ and kern.c's helpers,
 * checked in every build (no GPU, no CUDA needed).
 *
 * - bf16 conversion: hand-picked cases (ties to even, carries into the
 *   exponent, overflow, infinities, NaN, subnormals) and random bit patterns
 *   against an independent rounding done in double.
 * - RMSNorm f32 and bf16 references against a dense double implementation on
 *   fresh random inputs (never zero), over shapes with H = 1, odd H, H not a
 *   multiple of the 4- or 8-element vector width and H = 8192. Outputs are
 *   poisoned with NaN first, so an element left unwritten fails.
 *   Bounds: f32 rel 1e-6 (the reference rounds 3 times in fp32, ~1.8e-7);
 *   bf16 rel 4e-3 (one rounding to bf16, at most 2^-8 relative).
 * - FP8 E4M3 conversion: hand-picked cases (ties to even, subnormals,
 *   saturation, NaN), every code round-tripped, and random floats against
 *   the nearest of the 254 finite values found by distance.
 * - the paged KV layout helpers: strides, sizes and offsets against the
 *   formulas written out, and refused layouts (zero fields, an unknown
 *   dtype, slot numbers past int32, sizes past size_t).
 * - the error record and kern_device_count() without a device. */
#include "config.h"
#include "kern.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "mem.h"
#include "t.h"

/* ---- helpers ---- */

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* A random value with |v| in [0.05, 2.05) and a random sign: never zero. */
static float rand_nonzero(gsl_rng *r) {
    double m = 0.05 + 2.0 * gsl_rng_uniform(r);
    return (float)(gsl_rng_uniform(r) < 0.5 ? -m : m);
}

static void fill_nan_f32(float *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = NAN;
}

/* Dense double RMSNorm of one row: the definition, written plainly. */
static void rmsnorm_dense(double *y, const double *x, const double *w, int hidden, double eps) {
    double ss = 0.0;
    for (int i = 0; i < hidden; i++)
        ss += x[i] * x[i];
    double rms = sqrt(ss / hidden + eps);
    for (int i = 0; i < hidden; i++)
        y[i] = x[i] / rms * w[i];
}

/* The bf16 nearest to f, ties to even, found by comparing distances in
 * double (no bit tricks): the independent check of kern_bf16_from_f32(). */
static kern_bf16 bf16_round_slow(float f) {
    uint32_t u = bits_of(f);
    kern_bf16 lo = (kern_bf16)(u >> 16); /* truncation: toward zero */
    kern_bf16 hi = (kern_bf16)(lo + 1);  /* next away from zero */
    if (isnan(f))
        return 0x7fc0;
    if ((u & 0xffffu) == 0 || isinf(f))
        return lo;
    double dlo = fabs((double)f - (double)kern_f32_from_bf16(lo));
    /* hi of the largest finite bf16 is infinity: measure to 2^128 instead */
    double vhi = (hi & 0x7fffu) == 0x7f80u ? ldexp(1.0, 128) : fabs((double)kern_f32_from_bf16(hi));
    double dhi = fabs(fabs((double)f) - vhi);
    if (dlo < dhi)
        return lo;
    if (dhi < dlo)
        return hi;
    return (lo & 1u) ? hi : lo;
}

/* ---- bf16 conversion ---- */

static void test_bf16_cases(void) {
    T_EQ_I(kern_bf16_from_f32(1.0f), 0x3f80);
    T_EQ_I(kern_bf16_from_f32(-2.0f), 0xc000);
    T_EQ_I(kern_bf16_from_f32(0.0f), 0x0000);
    T_EQ_I(kern_bf16_from_f32(-0.0f), 0x8000);
    /* exact ties: 0x3f80 is even (stays), 0x3f81 is odd (rounds up) */
    T_EQ_I(kern_bf16_from_f32(float_of(0x3f808000u)), 0x3f80);
    T_EQ_I(kern_bf16_from_f32(float_of(0x3f818000u)), 0x3f82);
    T_EQ_I(kern_bf16_from_f32(float_of(0xbf818000u)), 0xbf82);
    /* just above and below a tie */
    T_EQ_I(kern_bf16_from_f32(float_of(0x3f808001u)), 0x3f81);
    T_EQ_I(kern_bf16_from_f32(float_of(0x3f817fffu)), 0x3f81);
    /* a carry out of the mantissa into the exponent: 1.9999999 -> 2 */
    T_EQ_I(kern_bf16_from_f32(float_of(0x3fffffffu)), 0x4000);
    /* overflow: FLT_MAX is past the largest bf16 and rounds to infinity */
    T_EQ_I(kern_bf16_from_f32(FLT_MAX), 0x7f80);
    T_EQ_I(kern_bf16_from_f32(-FLT_MAX), 0xff80);
    T_EQ_I(kern_bf16_from_f32(float_of(0x7f7f7fffu)), 0x7f7f);
    T_EQ_I(kern_bf16_from_f32(INFINITY), 0x7f80);
    T_EQ_I(kern_bf16_from_f32(-INFINITY), 0xff80);
    /* NaN stays NaN, including payloads that rounding would carry to inf */
    T_EQ_I(kern_bf16_from_f32(float_of(0x7fffffffu)), 0x7fc0);
    T_EQ_I(kern_bf16_from_f32(float_of(0x7f800001u)), 0x7fc0);
    T_EQ_I(kern_bf16_from_f32(float_of(0xffc00000u)), 0xffc0);
    /* subnormals round like everything else */
    T_EQ_I(kern_bf16_from_f32(float_of(0x00000001u)), 0x0000);
    T_EQ_I(kern_bf16_from_f32(float_of(0x00018000u)), 0x0002);
    /* widening is exact */
    T_EQ_I(bits_of(kern_f32_from_bf16(0x3f81)), 0x3f810000u);
    T_EQ_I(bits_of(kern_f32_from_bf16(0x8001)), 0x80010000u);
    T_ASSERT(isnan(kern_f32_from_bf16(0x7fc0)));
    for (uint32_t b = 0; b <= 0xffffu; b++) {
        kern_bf16 v = (kern_bf16)b;
        if (!isnan(kern_f32_from_bf16(v)))
            T_EQ_I(kern_bf16_from_f32(kern_f32_from_bf16(v)), v);
    }
}

static void test_bf16_random(gsl_rng *r) {
    for (int k = 0; k < 1000000; k++) {
        uint32_t u = (uint32_t)gsl_rng_get(r); /* mt19937: 32 random bits */
        if (k % 4 == 0)
            u = (u & 0xffff0000u) | 0x8000u; /* force a tie */
        float f = float_of(u);
        kern_bf16 got = kern_bf16_from_f32(f), want = bf16_round_slow(f);
        if (isnan(f)) {
            T_ASSERT(isnan(kern_f32_from_bf16(got)));
            T_EQ_I(got & 0x8000u, (u >> 16) & 0x8000u);
        } else if (got != want) {
            T_FAIL_("bf16 of 0x%08" PRIx32 ": got 0x%04x, want 0x%04x", u, got, want);
        }
    }
}

/* ---- FP8 E4M3 conversion ---- */

/* The value of an E4M3 code from the definition, in double. */
static double fp8_value(unsigned b) {
    unsigned e = (b >> 3) & 15u, m = b & 7u;
    double v = e == 0 ? ldexp(m, -9) : ldexp(1.0 + m / 8.0, (int)e - 7);
    return (b & 0x80u) ? -v : v;
}

/* The E4M3 code nearest to f by distance, ties to the even code,
 * saturating at +-448: the independent check of kern_fp8_from_f32(). */
static kern_fp8 fp8_round_slow(float f) {
    if (f >= 448.0f)
        return 0x7e;
    if (f <= -448.0f)
        return 0xfe;
    unsigned best = 0;
    double best_d = INFINITY;
    for (unsigned b = 0; b < 256; b++) {
        if ((b & 0x7fu) == 0x7fu)
            continue; /* NaN */
        if ((b & 0x80u) != (signbit(f) ? 0x80u : 0u))
            continue; /* keep the sign, so that -0.01 rounds to -0 */
        double d = fabs((double)f - fp8_value(b));
        if (d < best_d || (d == best_d && (b & 1u) == 0)) {
            best = b;
            best_d = d;
        }
    }
    return (kern_fp8)best;
}

static void test_fp8(gsl_rng *r) {
    T_EQ_I(kern_dtype_size(KERN_DT_FP8_E4M3), 1);
    T_EQ_I(kern_fp8_from_f32(0.0f), 0x00);
    T_EQ_I(kern_fp8_from_f32(-0.0f), 0x80);
    T_EQ_I(kern_fp8_from_f32(1.0f), 0x38);
    T_EQ_I(kern_fp8_from_f32(-2.0f), 0xc0);
    T_EQ_I(kern_fp8_from_f32(0.0625f), 0x18);
    T_EQ_I(kern_fp8_from_f32(448.0f), 0x7e);
    T_EQ_I(kern_fp8_from_f32(449.0f), 0x7e); /* saturates */
    T_EQ_I(kern_fp8_from_f32(1e30f), 0x7e);
    T_EQ_I(kern_fp8_from_f32(INFINITY), 0x7e);
    T_EQ_I(kern_fp8_from_f32(-INFINITY), 0xfe);
    T_EQ_I(kern_fp8_from_f32(NAN) & 0x7f, 0x7f);
    T_EQ_I(kern_fp8_from_f32(0x1p-9f), 0x01);   /* smallest subnormal */
    T_EQ_I(kern_fp8_from_f32(0x1p-10f), 0x00);  /* tie with 0: even */
    T_EQ_I(kern_fp8_from_f32(0x1.8p-9f), 0x02); /* tie 1, 2: even */
    T_EQ_I(kern_fp8_from_f32(0x1.2p0f), 0x39);  /* 1.125 is exact */
    T_EQ_I(kern_fp8_from_f32(0x1.1p0f), 0x38);  /* 1.0625 ties 1 and 1.125: even */
    T_EQ_I(kern_fp8_from_f32(0x1.3p0f), 0x3a);  /* 1.1875 ties 1.125 and 1.25: even */
    T_EQ_I(kern_fp8_from_f32(0x1.fp0f), 0x40);  /* 1.9375 carries into 2 */
    T_EQ_I(kern_fp8_from_f32(0x1.cp-7f), 0x07); /* largest subnormal */
    T_EQ_I(kern_fp8_from_f32(0x1.ep-7f), 0x08); /* rounds up to 2^-6 */
    T_NEAR(kern_f32_from_fp8(0x7e), 448.0, 0);
    T_NEAR(kern_f32_from_fp8(0x01), 0x1p-9, 0);
    T_ASSERT(isnan(kern_f32_from_fp8(0x7f)) && isnan(kern_f32_from_fp8(0xff)));
    for (unsigned b = 0; b < 256; b++) {
        if ((b & 0x7fu) == 0x7fu)
            continue;
        T_NEAR(kern_f32_from_fp8((kern_fp8)b), fp8_value(b), 0);
        T_EQ_I(kern_fp8_from_f32(kern_f32_from_fp8((kern_fp8)b)), b);
    }
    for (int k = 0; k < 200000; k++) {
        float f;
        if (k % 2 == 0)
            f = (float)((gsl_rng_uniform(r) - 0.5) * 1000.0); /* past the range too */
        else
            f = (float)ldexp(gsl_rng_uniform(r) + 0.5, (int)gsl_rng_uniform_int(r, 20) - 14);
        if (k % 3 == 0)
            f = -f;
        kern_fp8 got = kern_fp8_from_f32(f), want = fp8_round_slow(f);
        if (got != want)
            T_FAIL_("fp8 of %.9g: got 0x%02x, want 0x%02x", f, got, want);
    }
}

/* ---- paged KV layout ---- */

static void test_kv_layout(void) {
    kern_kv_layout kv = {3, 10, 16, 2, 64, KERN_DT_BF16};
    T_EQ_I(kern_kv_layout_check(&kv), SIM_OK);
    T_EQ_I(kern_kv_block_stride(&kv), 2 * 2 * 16 * 64);
    T_EQ_I(kern_kv_layer_stride(&kv), 10 * 2 * 2 * 16 * 64);
    T_EQ_I(kern_kv_cache_bytes(&kv), (size_t)3 * 10 * 2 * 2 * 16 * 64 * 2);
    T_EQ_I(kern_kv_slot_bytes(&kv), (size_t)3 * 2 * 2 * 16 * 64 * 2);
    /* offsets: row-major (L, NB, 2, Hkv, bs, D), each index stepped alone */
    T_EQ_I(kern_kv_offset(&kv, 0, 0, 0, 0, 0), 0);
    T_EQ_I(kern_kv_offset(&kv, 0, 0, 0, 0, 1), 64);
    T_EQ_I(kern_kv_offset(&kv, 0, 0, 0, 1, 0), 16 * 64);
    T_EQ_I(kern_kv_offset(&kv, 0, 0, 1, 0, 0), 2 * 16 * 64);
    T_EQ_I(kern_kv_offset(&kv, 0, 1, 0, 0, 0), kern_kv_block_stride(&kv));
    T_EQ_I(kern_kv_offset(&kv, 1, 0, 0, 0, 0), kern_kv_layer_stride(&kv));
    T_EQ_I(kern_kv_offset(&kv, 2, 9, 1, 1, 15) + 64, kern_kv_cache_bytes(&kv) / 2);

    kern_kv_layout bad = kv;
    bad.head_dim = 0;
    T_EQ_I(kern_kv_layout_check(&bad), SIM_EINVAL);
    bad = kv;
    bad.dtype = 7;
    T_EQ_I(kern_kv_layout_check(&bad), SIM_EINVAL);
    T_CONTAINS(kern_last_error(), "dtype");
    bad = kv;
    bad.n_blocks = 1 << 28; /* slots = 2^32 */
    T_EQ_I(kern_kv_layout_check(&bad), SIM_EINVAL);
    T_CONTAINS(kern_last_error(), "int32");
    bad = (kern_kv_layout){1 << 30, 1 << 20, 1, 1 << 20, 1 << 20, KERN_DT_F32};
    T_EQ_I(kern_kv_layout_check(&bad), SIM_EINVAL);
    T_CONTAINS(kern_last_error(), "overflows");
    T_EQ_I(kern_kv_layout_check(NULL), SIM_EINVAL);
    kern_error_clear();
}

/* ---- RMSNorm references ---- */

struct shape {
    int n_tokens; /* T */
    int hidden;   /* H */
    float eps;
};

static const struct shape shapes[] = {
    {1, 1, 1e-6f},   {1, 7, 1e-6f},   {3, 8, 1e-5f},    {4, 64, 1e-6f},   {5, 100, 1e-5f},
    {17, 33, 1e-6f}, {3, 768, 1e-6f}, {2, 4097, 1e-5f}, {2, 8192, 1e-6f}, {6, 12, 1.0f},
    {2, 4, 4.0f},    {9, 1000, 0.0f}, {1, 2049, 1e-6f}, {8, 4096, 1e-5f}, {3, 5, 1e-2f},
};

static void test_rmsnorm_ref(gsl_rng *r, const struct shape *sh) {
    const int T = sh->n_tokens, H = sh->hidden;
    const size_t n = (size_t)T * H;
    float *x = SIM_NEW_ARRAY(float, n), *w = SIM_NEW_ARRAY(float, H);
    float *y = SIM_NEW_ARRAY(float, n + 1);
    kern_bf16 *xb = SIM_NEW_ARRAY(kern_bf16, n), *wb = SIM_NEW_ARRAY(kern_bf16, H);
    kern_bf16 *yb = SIM_NEW_ARRAY(kern_bf16, n + 1);
    double *xd = SIM_NEW_ARRAY(double, H), *wd = SIM_NEW_ARRAY(double, H);
    double *yd = SIM_NEW_ARRAY(double, H);
    T_ASSERT(x && w && y && xb && wb && yb && xd && wd && yd);

    for (size_t i = 0; i < n; i++) {
        x[i] = rand_nonzero(r);
        xb[i] = kern_bf16_from_f32(x[i]);
    }
    for (int i = 0; i < H; i++) {
        w[i] = rand_nonzero(r);
        wb[i] = kern_bf16_from_f32(w[i]);
    }
    /* poison every output and one guard element past the end */
    fill_nan_f32(y, n + 1);
    for (size_t i = 0; i < n + 1; i++)
        yb[i] = 0x7fc0;

    kern_rmsnorm_ref_f32(y, x, w, T, H, sh->eps);
    kern_rmsnorm_ref_bf16(yb, xb, wb, T, H, sh->eps);
    T_ASSERT(isnan(y[n]));
    T_EQ_I(yb[n], 0x7fc0);

    for (int t = 0; t < T; t++) {
        /* f32: dense double on the same fp32 inputs */
        for (int i = 0; i < H; i++) {
            xd[i] = x[(size_t)t * H + i];
            wd[i] = w[i];
        }
        rmsnorm_dense(yd, xd, wd, H, sh->eps);
        for (int i = 0; i < H; i++) {
            double got = y[(size_t)t * H + i];
            if (!(fabs(got - yd[i]) <= 1e-6 * fabs(yd[i])))
                fprintf(stderr, "f32 T=%d H=%d eps=%g: element [%d, %d]\n", T, H, sh->eps, t, i);
            T_REL(got, yd[i], 1e-6);
        }
        /* bf16: dense double on the bf16 inputs, widened exactly */
        for (int i = 0; i < H; i++) {
            xd[i] = kern_f32_from_bf16(xb[(size_t)t * H + i]);
            wd[i] = kern_f32_from_bf16(wb[i]);
        }
        rmsnorm_dense(yd, xd, wd, H, sh->eps);
        for (int i = 0; i < H; i++) {
            double got = kern_f32_from_bf16(yb[(size_t)t * H + i]);
            if (!(fabs(got - yd[i]) <= 4e-3 * fabs(yd[i])))
                fprintf(stderr, "bf16 T=%d H=%d eps=%g: element [%d, %d]\n", T, H, sh->eps, t, i);
            T_REL(got, yd[i], 4e-3);
        }
    }
    sim_free(x);
    sim_free(w);
    sim_free(y);
    sim_free(xb);
    sim_free(wb);
    sim_free(yb);
    sim_free(xd);
    sim_free(wd);
    sim_free(yd);
}

/* eps sits inside the square root: a row of ones with eps = 3 has rms 2. */
static void test_rmsnorm_eps(void) {
    float x[4] = {1, -1, 1, -1}, w[4] = {1, 2, 3, 4}, y[4];
    kern_rmsnorm_ref_f32(y, x, w, 1, 4, 3.0f);
    T_NEAR(y[0], 0.5, 0);
    T_NEAR(y[1], -1.0, 0);
    T_NEAR(y[3], -2.0, 0);
    /* no tokens: nothing is touched */
    y[0] = 7.0f;
    kern_rmsnorm_ref_f32(y, x, w, 0, 4, 1e-6f);
    T_NEAR(y[0], 7.0, 0);
}

/* ---- errors and devices ---- */

static void test_errors(void) {
    T_EQ_I(kern_dtype_size(KERN_DT_F32), 4);
    T_EQ_I(kern_dtype_size(KERN_DT_BF16), 2);
    T_EQ_I(kern_dtype_size(99), 0);

    kern_error_clear();
    T_STREQ(kern_last_error(), "");
    kern_error_record("cudaMalloc(&p, n)", "f", "x.cu", 12, "out of memory");
    T_STREQ(kern_last_error(), "x.cu:12: f: cudaMalloc(&p, n): out of memory");
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    kern_error_record(big, "f", "x.cu", 1, NULL); /* truncated, not overflowed */
    T_ASSERT(strlen(kern_last_error()) < sizeof big);
    kern_error_clear();

    int n = kern_device_count();
    T_ASSERT(n >= 0);
    if (n == 0)
        T_ASSERT(kern_last_error()[0] != '\0'); /* the reason is kept */
#ifndef KV_HAVE_CUDA
    T_EQ_I(n, 0);
    T_CONTAINS(kern_last_error(), "without CUDA");
#endif
}

int main(void) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    T_ASSERT(r != NULL);
    gsl_rng_set(r, 20240611UL);

    test_bf16_cases();
    test_bf16_random(r);
    test_fp8(r);
    test_kv_layout();
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++)
        test_rmsnorm_ref(r, &shapes[k]);
    test_rmsnorm_eps();
    test_errors();

    gsl_rng_free(r);
    T_EQ_I(sim_mem_current(), 0);
    printf("test_kern_ref: ok\n");
    return 0;
}
