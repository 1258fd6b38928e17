/* kern.c: the parts of kernels/ that need no CUDA: the error record behind
 * KERN_CHECK, dtype helpers and, in builds without CUDA, the device query.
 *
 * The error record is one fixed buffer per thread (like errno or
 * cudaGetLastError()): it is written only on failure, so the happy path costs
 * nothing, and threads that drive different devices do not see each other's
 * errors. It is the only mutable state in kernels/.
 *
 * bf16 conversion rounds to nearest, ties to even, as __float2bfloat16()
 * does on the device, so CPU references and kernels round the same way.
 * FP8 E4M3 conversion rounds the same way and saturates to the largest
 * finite value, as __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3)
 * does.
 *
 * The paged KV layout helpers compute strides and offsets of the cache
 * described in kern.h; kernels, references and executors all address the
 * cache through them (or the same formulas), so there is one layout.
 *
 * Non-goals: no CUDA header is included here; the CUDA side of the device
 * helpers is kern_cuda.cu. */
#include "config.h"
#include "kern.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- error record ---- */

static _Thread_local char kern_err_buf[512];

const char *kern_last_error(void) {
    return kern_err_buf;
}

/* Records "file:line: func: stmt: what" for kern_last_error(). Only the last
 * failure is kept; an over-long record is truncated, never overflowed. */
void kern_error_record(const char *stmt, const char *func, const char *file, int line,
                       const char *what) {
    snprintf(kern_err_buf, sizeof kern_err_buf, "%s:%d: %s: %s: %s", file ? file : "?", line,
             func ? func : "?", stmt ? stmt : "?", what ? what : "failed");
}

void kern_error_clear(void) {
    kern_err_buf[0] = '\0';
}

#ifndef KV_HAVE_CUDA
/* Without CUDA there is never a device; the reason is kept for skip
 * messages. The CUDA build defines this in kern_cuda.cu. */
int kern_device_count(void) {
    kern_error_record("kern_device_count()", __func__, __FILE__, __LINE__,
                      "built without CUDA (configure --without-cuda or no nvcc)");
    return 0;
}
#endif

/* ---- dtypes ---- */

size_t kern_dtype_size(int dtype) {
    switch (dtype) {
        case KERN_DT_F32:
            return 4;
        case KERN_DT_BF16:
            return 2;
        case KERN_DT_FP8_E4M3:
            return 1;
        default:
            return 0;
    }
}

/* Rounds to nearest even by adding 0x7fff plus the lowest kept bit, then
 * truncating: a tie carries into the kept bits only when they are odd.
 * Finite values past the largest bf16 round to infinity, as IEEE requires.
 * NaN is handled first so that rounding cannot carry it into infinity; its
 * payload is replaced by the canonical quiet NaN, sign kept. */
kern_bf16 kern_bf16_from_f32(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (kern_bf16)(((u >> 16) & 0x8000u) | 0x7fc0u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (kern_bf16)(u >> 16);
}

float kern_f32_from_bf16(kern_bf16 b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* E4M3 values are (-1)^s * 2^(e - 7) * (1 + m / 8) for exponent field e in
 * 1..15 and (-1)^s * 2^-6 * (m / 8) for e = 0; e = 15, m = 7 is NaN, so the
 * largest finite value is 448 = 2^8 * 1.75. Rounding: the spacing of
 * representable values near |f| is q = 2^(max(ilogb|f|, -6) - 3); |f| / q
 * rounded to the nearest integer, ties to even (rint in the default
 * rounding mode), times q is the result, which is then encoded. Everything
 * is exact in double. */
kern_fp8 kern_fp8_from_f32(float f) {
    const unsigned sign = signbit(f) ? 0x80u : 0u;
    if (isnan(f))
        return (kern_fp8)(sign | 0x7fu);
    double a = fabs((double)f);
    if (a >= 448.0)
        return (kern_fp8)(sign | 0x7eu); /* saturate (infinities too) */
    if (a == 0.0)
        return (kern_fp8)sign;
    int e = ilogb(a);
    if (e < -6)
        e = -6;
    double q = ldexp(1.0, e - 3); /* spacing at |f| */
    double r = rint(a / q) * q;   /* nearest representable, ties to even */
    if (r == 0.0)
        return (kern_fp8)sign;
    if (r >= 448.0)
        return (kern_fp8)(sign | 0x7eu);
    int er = ilogb(r);
    if (er < -6) /* subnormal: r = m * 2^-9 */
        return (kern_fp8)(sign | (unsigned)(r / ldexp(1.0, -9)));
    unsigned mant = (unsigned)(r / ldexp(1.0, er - 3)) - 8u; /* 0..7 */
    return (kern_fp8)(sign | (unsigned)(er + 7) << 3 | mant);
}

float kern_f32_from_fp8(kern_fp8 b) {
    const unsigned e = (b >> 3) & 15u, m = b & 7u;
    double v;
    if (e == 15u && m == 7u)
        return (b & 0x80u) ? -NAN : NAN;
    if (e == 0u)
        v = ldexp((double)m, -9);
    else
        v = ldexp(1.0 + m / 8.0, (int)e - 7);
    return (float)((b & 0x80u) ? -v : v);
}

/* ---- paged KV cache layout ---- */

/* a * b into *out; 0 when it overflows size_t. */
static int mul_ok(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a)
        return 0;
    *out = a * b;
    return 1;
}

/* Checks the fields (each >= 1, a known dtype), that slot numbers
 * (block * bs + offset) fit in int32 and that the cache's byte size fits in
 * size_t (and in int64, which kernels index with). Records the reason for
 * kern_last_error(). */
int kern_kv_layout_check(const kern_kv_layout *kv) {
    size_t n = 1;
    if (kv == NULL || kv->n_layers < 1 || kv->n_blocks < 1 || kv->block_size < 1 ||
        kv->n_kv_heads < 1 || kv->head_dim < 1 || kern_dtype_size(kv->dtype) == 0) {
        kern_error_record("kern_kv_layout_check(kv)", __func__, __FILE__, __LINE__,
                          "a field is < 1 or the dtype is unknown");
        return SIM_EINVAL;
    }
    if ((long long)kv->n_blocks * kv->block_size > INT32_MAX) {
        kern_error_record("kern_kv_layout_check(kv)", __func__, __FILE__, __LINE__,
                          "n_blocks * block_size does not fit a slot number (int32)");
        return SIM_EINVAL;
    }
    const size_t dims[] = {2,
                           (size_t)kv->n_kv_heads,
                           (size_t)kv->block_size,
                           (size_t)kv->head_dim,
                           (size_t)kv->n_blocks,
                           (size_t)kv->n_layers,
                           kern_dtype_size(kv->dtype)};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        if (!mul_ok(n, dims[i], &n) || n > (size_t)INT64_MAX) {
            kern_error_record("kern_kv_layout_check(kv)", __func__, __FILE__, __LINE__,
                              "the cache size overflows");
            return SIM_EINVAL;
        }
    }
    return SIM_OK;
}

size_t kern_kv_block_stride(const kern_kv_layout *kv) {
    return 2 * (size_t)kv->n_kv_heads * (size_t)kv->block_size * (size_t)kv->head_dim;
}

size_t kern_kv_layer_stride(const kern_kv_layout *kv) {
    return (size_t)kv->n_blocks * kern_kv_block_stride(kv);
}

size_t kern_kv_cache_bytes(const kern_kv_layout *kv) {
    return (size_t)kv->n_layers * kern_kv_layer_stride(kv) * kern_dtype_size(kv->dtype);
}

size_t kern_kv_slot_bytes(const kern_kv_layout *kv) {
    return (size_t)kv->n_layers * kern_kv_block_stride(kv) * kern_dtype_size(kv->dtype);
}

/* The element offset of (layer, block, K|V, head, slot, dim 0):
 *     ((((layer * NB + block) * 2 + kv_sel) * Hkv + head) * bs + slot) * D
 * Arguments are not range-checked (the callers have). */
size_t kern_kv_offset(const kern_kv_layout *kv, int layer, int block, int kv_sel, int head,
                      int slot) {
    size_t i = (size_t)layer * (size_t)kv->n_blocks + (size_t)block;
    i = (i * 2 + (size_t)kv_sel) * (size_t)kv->n_kv_heads + (size_t)head;
    return (i * (size_t)kv->block_size + (size_t)slot) * (size_t)kv->head_dim;
}
