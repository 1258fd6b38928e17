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
 *
 * Non-goals: no CUDA header is included here; the CUDA side of the device
 * helpers is kern_cuda.cu. */
#include "config.h"
#include "kern.h"

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
