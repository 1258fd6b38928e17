/* kern.h: the plain C interface of kernels/ (the only header C code includes).
 *
 * Every op has a CPU reference (kern_<op>_ref_*, always built) and a CUDA
 * launcher (kern_<op>(), defined only when configure found CUDA, i.e. when
 * config.h defines KV_HAVE_CUDA; callers test that macro). Launchers take
 * device pointers (d_), run asynchronously on the given stream (a
 * cudaStream_t passed as void *; NULL is the legacy default stream) and
 * return SIM_OK, SIM_EINVAL for bad arguments or SIM_EDEVICE when a CUDA or
 * cuBLAS call failed. Failures never abort: the failing statement, function,
 * file, line and the CUDA error text are kept for kern_last_error().
 *
 * Tensors are dense and row-major; shapes are written (T, H) with T the
 * number of tokens and H the hidden size. bf16 values travel as their 16 bit
 * pattern (kern_bf16) so that C code needs no CUDA header.
 *
 * Non-goals: this header names no CUDA type, and kernels/ knows nothing of
 * requests, batches or time. Valid C11 and C++ (nvcc sees it). */
#ifndef KERN_KERN_H
#define KERN_KERN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element types of device tensors. */
enum kern_dtype {
    KERN_DT_F32 = 0,  /* IEEE binary32 */
    KERN_DT_BF16 = 1, /* bfloat16: the top 16 bits of a binary32 */
};

/* A bfloat16 value as its bit pattern (sign, 8 exponent bits, 7 mantissa). */
typedef uint16_t kern_bf16;

/* ---- errors and devices (kern.c; always built) ---- */

/* The last recorded device error of this thread, "" when none; borrowed
 * until the next kernels/ call on this thread. */
const char *kern_last_error(void);
/* Records a failure (used by KERN_CHECK); what may be NULL. */
void kern_error_record(const char *stmt, const char *func, const char *file, int line,
                       const char *what);
/* Forgets the recorded error of this thread. */
void kern_error_clear(void);
/* Number of usable CUDA devices; 0 (reason in kern_last_error()) when built
 * without CUDA, when there is no driver, or when there is no device. */
int kern_device_count(void);

/* ---- dtypes (kern.c; always built) ---- */

/* Bytes per element of dtype; 0 for an unknown dtype. */
size_t kern_dtype_size(int dtype);
/* Rounds f to the nearest bf16, ties to even; NaN stays a (quiet) NaN. */
kern_bf16 kern_bf16_from_f32(float f);
/* Widens b to binary32 (exact). */
float kern_f32_from_bf16(kern_bf16 b);

/* ---- RMSNorm reference (rmsnorm_ref.c; always built) ---- */

/* out (T, H) = in (T, H) / sqrt(mean(in^2) + eps) * w (H), in fp32. */
void kern_rmsnorm_ref_f32(float *out, const float *in, const float *w, int n_tokens, int hidden,
                          float eps);
/* The same on bf16 tensors: fp32 arithmetic, one rounding per output. */
void kern_rmsnorm_ref_bf16(kern_bf16 *out, const kern_bf16 *in, const kern_bf16 *w, int n_tokens,
                           int hidden, float eps);

/* ---- device memory (kern_cuda.cu; defined only in CUDA builds) ---- */

/* Allocates n_bytes of device memory into *d_ptr; SIM_EDEVICE on failure. */
int kern_malloc(void **d_ptr, size_t n_bytes);
/* Frees *d_ptr (NULL is a no-op) and sets it to NULL. */
void kern_free(void **d_ptr);
/* Copies n_bytes host -> device (synchronous). */
int kern_memcpy_h2d(void *d_dst, const void *src, size_t n_bytes);
/* Copies n_bytes device -> host (synchronous). */
int kern_memcpy_d2h(void *dst, const void *d_src, size_t n_bytes);
/* Sets n_bytes of device memory to the byte value (synchronous). */
int kern_memset(void *d_dst, int value, size_t n_bytes);
/* Waits for all work queued on stream (NULL: the default stream). */
int kern_sync(void *stream);

/* ---- RMSNorm (rmsnorm.cu; defined only in CUDA builds) ---- */

/* d_out (T, H) = d_in (T, H) / sqrt(mean(d_in^2) + eps) * d_weight (H). */
int kern_rmsnorm(void *d_out, const void *d_in, const void *d_weight, int n_tokens, int hidden,
                 float eps, int dtype, void *stream);

#ifdef __cplusplus
}
#endif
#endif /* KERN_KERN_H */
