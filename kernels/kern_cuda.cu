/* kern_cuda.cu: the CUDA side of kern.h's device helpers: the device query
 * and thin, checked wrappers of allocation, copies and synchronisation, so
 * that C code (tests, the cuda executor) needs no CUDA header.
 *
 * Every wrapper returns SIM_OK or SIM_EDEVICE with the reason recorded for
 * kern_last_error(). Copies and memset are synchronous; they are for setup
 * and checking, not for the timed path (which allocates in open(), never in
 * step()).
 *
 * Non-goals: no pooling or caching allocator, no multi-device selection (the
 * current device is used). */
#include "config.h"
#include "kern_cuda.cuh"

/* Number of CUDA devices. A failing query (no driver, driver too old for the
 * runtime, no device node) is not an error for the caller: it returns 0 and
 * leaves the reason in kern_last_error(), which GPU tests print when they
 * skip. */
extern "C" int kern_device_count(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        kern_error_record("cudaGetDeviceCount(&n)", __func__, __FILE__, __LINE__,
                          cudaGetErrorString(e));
        (void)cudaGetLastError(); /* reset the last-error slot for later checks */
        return 0;
    }
    if (n == 0)
        kern_error_record("cudaGetDeviceCount(&n)", __func__, __FILE__, __LINE__, "no CUDA device");
    return n;
}

/* Allocates n_bytes (> 0) of device memory; *d_ptr is NULL on failure. */
extern "C" int kern_malloc(void **d_ptr, size_t n_bytes) {
    *d_ptr = NULL;
    KERN_CHECK_ARG(n_bytes > 0);
    KERN_CHECK(cudaMalloc(d_ptr, n_bytes));
    return SIM_OK;
}

/* Frees *d_ptr and sets it to NULL; NULL is a no-op. A failing cudaFree is
 * recorded (it reports an earlier asynchronous error) but not returned. */
extern "C" void kern_free(void **d_ptr) {
    if (d_ptr == NULL || *d_ptr == NULL)
        return;
    cudaError_t e = cudaFree(*d_ptr);
    if (e != cudaSuccess)
        kern_error_record("cudaFree(*d_ptr)", __func__, __FILE__, __LINE__, cudaGetErrorString(e));
    *d_ptr = NULL;
}

extern "C" int kern_memcpy_h2d(void *d_dst, const void *src, size_t n_bytes) {
    KERN_CHECK(cudaMemcpy(d_dst, src, n_bytes, cudaMemcpyHostToDevice));
    return SIM_OK;
}

extern "C" int kern_memcpy_d2h(void *dst, const void *d_src, size_t n_bytes) {
    KERN_CHECK(cudaMemcpy(dst, d_src, n_bytes, cudaMemcpyDeviceToHost));
    return SIM_OK;
}

extern "C" int kern_memset(void *d_dst, int value, size_t n_bytes) {
    KERN_CHECK(cudaMemset(d_dst, value, n_bytes));
    KERN_CHECK(cudaDeviceSynchronize());
    return SIM_OK;
}

extern "C" int kern_sync(void *stream) {
    KERN_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
    return SIM_OK;
}
