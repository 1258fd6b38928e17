/* dev_util.cuh: what every kernels/dev benchmark needs, whatever else it
 * includes: the error check that stops a benchmark on the first CUDA error,
 * and the event timer. (Benchmarks only: production code uses KERN_CHECK,
 * which records and returns instead of exiting.) */
#ifndef KERNELS_DEV_DEV_UTIL_CUH
#define KERNELS_DEV_DEV_UTIL_CUH

#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime.h>

static void cuda_check_fail(cudaError_t e, const char *stmt, const char *file, int line) {
    fprintf(stderr, "%s:%d: %s: %s\n", file, line, stmt, cudaGetErrorString(e));
    exit(1);
}
#define CUDA_CHECK(expr)                                                                           \
    do {                                                                                           \
        cudaError_t dev_e_ = (expr);                                                               \
        if (dev_e_ != cudaSuccess)                                                                 \
            cuda_check_fail(dev_e_, #expr, __FILE__, __LINE__);                                    \
    } while (0)

/* Mean milliseconds of launch() over repeats calls, after one warm-up. */
template <typename F> static float dev_time_ms(int repeats, F launch) {
    cudaEvent_t start, stop;
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
    launch();
    CUDA_CHECK(cudaGetLastError());
    CUDA_CHECK(cudaEventRecord(start));
    for (int i = 0; i < repeats; i++)
        launch();
    CUDA_CHECK(cudaEventRecord(stop));
    CUDA_CHECK(cudaEventSynchronize(stop));
    CUDA_CHECK(cudaGetLastError());
    float ms = 0.0f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    CUDA_CHECK(cudaEventDestroy(start));
    CUDA_CHECK(cudaEventDestroy(stop));
    return ms / repeats;
}

#endif /* KERNELS_DEV_DEV_UTIL_CUH */
