/* kern_cuda.cu: the CUDA side of kern.h's device helpers: the device query
 * and thin, checked wrappers of allocation (device and pinned host),
 * copies, streams, events and synchronisation, so that C code (tests, the
 * cuda executor) needs no CUDA header.
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

/* Pinned host memory: the host side of KV swap, so that cudaMemcpyAsync is
 * truly asynchronous. *h_ptr is NULL on failure. */
extern "C" int kern_host_alloc(void **h_ptr, size_t n_bytes) {
    *h_ptr = NULL;
    KERN_CHECK_ARG(n_bytes > 0);
    KERN_CHECK(cudaHostAlloc(h_ptr, n_bytes, cudaHostAllocDefault));
    return SIM_OK;
}

/* Frees pinned memory and sets *h_ptr to NULL; NULL is a no-op. A failure
 * is recorded, not returned (as kern_free). */
extern "C" void kern_host_free(void **h_ptr) {
    if (h_ptr == NULL || *h_ptr == NULL)
        return;
    cudaError_t e = cudaFreeHost(*h_ptr);
    if (e != cudaSuccess)
        kern_error_record("cudaFreeHost(*h_ptr)", __func__, __FILE__, __LINE__,
                          cudaGetErrorString(e));
    *h_ptr = NULL;
}

/* A stream that does not synchronise with the legacy default stream, for
 * KV swap copies beside compute. *stream is NULL on failure. */
extern "C" int kern_stream_create(void **stream) {
    cudaStream_t st = NULL;
    *stream = NULL;
    KERN_CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    *stream = st;
    return SIM_OK;
}

/* Destroys *stream (pending work still completes) and sets it to NULL. */
extern "C" void kern_stream_destroy(void **stream) {
    if (stream == NULL || *stream == NULL)
        return;
    cudaError_t e = cudaStreamDestroy(static_cast<cudaStream_t>(*stream));
    if (e != cudaSuccess)
        kern_error_record("cudaStreamDestroy(*stream)", __func__, __FILE__, __LINE__,
                          cudaGetErrorString(e));
    *stream = NULL;
}

/* An event with timing enabled (for kern_event_elapsed_ms). */
extern "C" int kern_event_create(void **event) {
    cudaEvent_t ev = NULL;
    *event = NULL;
    KERN_CHECK(cudaEventCreate(&ev));
    *event = ev;
    return SIM_OK;
}

/* Destroys *event and sets it to NULL; NULL is a no-op. */
extern "C" void kern_event_destroy(void **event) {
    if (event == NULL || *event == NULL)
        return;
    cudaError_t e = cudaEventDestroy(static_cast<cudaEvent_t>(*event));
    if (e != cudaSuccess)
        kern_error_record("cudaEventDestroy(*event)", __func__, __FILE__, __LINE__,
                          cudaGetErrorString(e));
    *event = NULL;
}

extern "C" int kern_event_record(void *event, void *stream) {
    KERN_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), static_cast<cudaStream_t>(stream)));
    return SIM_OK;
}

/* Orders stream after event: work queued on stream from now on starts only
 * once event has completed. The host does not wait. */
extern "C" int kern_stream_wait_event(void *stream, void *event) {
    KERN_CHECK(
        cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(event), 0));
    return SIM_OK;
}

/* *ms = milliseconds from start to stop (both recorded), after waiting for
 * stop to complete. Resolution is about half a microsecond. */
extern "C" int kern_event_elapsed_ms(void *start, void *stop, float *ms) {
    *ms = 0.0f;
    KERN_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(stop)));
    KERN_CHECK(
        cudaEventElapsedTime(ms, static_cast<cudaEvent_t>(start), static_cast<cudaEvent_t>(stop)));
    return SIM_OK;
}
