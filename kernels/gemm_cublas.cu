/* gemm_cublas.cu: the projections' GEMMs through cuBLAS (bf16) and
 * cuBLASLt (FP8 E4M3), the context that holds their handles, and the
 * launcher kern_gemm() (reference: gemm_ref.c). Operators qkv_proj,
 * o_proj, mlp_up (the fused gate/up), mlp_down and lm_head are all this
 * call with their shapes.
 *
 *     y (M, N) = scale * x (M, K) . w (N, K)^T
 *
 * Dimension legend: M tokens (rows of x and y), N output features (rows
 * of w), K input features. All row-major; w is stored as nn.Linear keeps
 * it. cuBLAS is column-major, so the call computes y^T (N, M) = w . x^T,
 * with w as a column-major (K, N) matrix transposed ("TN"): the one operand
 * order cuBLASLt accepts for FP8, and the natural one for bf16 too.
 *
 * bf16: cublasGemmEx, bf16 inputs and output, CUBLAS_COMPUTE_32F (fp32
 * accumulate on tensor cores), alpha = scale. FP8: cublasLtMatmul with
 * E4M3 inputs, bf16 output, fp32 compute and scale type, alpha = scale
 * (x_scale * w_scale of per-tensor quantisation), fast accumulation off
 * (cuBLASLt then promotes partial sums to fp32 regularly). FP8 needs a
 * device of compute capability 8.9 or later (Ada, Hopper) and, for
 * cuBLASLt, K and N multiples of 16 (16-byte aligned leading dimensions);
 * elsewhere kern_gemm() answers SIM_ENOTSUP or SIM_EINVAL, never a wrong
 * result.
 *
 * The context owns one cuBLAS handle, one cuBLASLt handle and a 32 MiB
 * workspace given to both (cublasSetWorkspace), so no GEMM allocates.
 * GEMMs through one context share that workspace: queue them on one
 * stream at a time (the executor's compute stream).
 *
 * Non-goals: per-channel FP8 scales, bias or activation epilogues, caching
 * cuBLASLt heuristics per shape (each FP8 call asks again, tens of
 * microseconds of host time; not measured yet). */
#include "config.h"
#include "kern_cuda.cuh"

#include <cublasLt.h>

#include "mem.h"

#define GEMM_WORKSPACE_BYTES ((size_t)32 << 20)

struct kern_ctx {
    cublasHandle_t blas; /* cuBLAS, bf16 GEMMs */
    cublasLtHandle_t lt; /* cuBLASLt, FP8 GEMMs */
    void *d_workspace;   /* GEMM_WORKSPACE_BYTES of device memory */
    int device;          /* device the context was created on */
    int cc;              /* compute capability, major * 10 + minor */
};

/* ---- context ---- */

/* Fills the parts of *ctx that can fail, in order; kern_ctx_create()
 * unwinds whatever was set when one fails. */
static int ctx_init(kern_ctx *ctx) {
    int major = 0, minor = 0;
    KERN_CHECK(cudaGetDevice(&ctx->device));
    KERN_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, ctx->device));
    KERN_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, ctx->device));
    ctx->cc = major * 10 + minor;
    KERN_CHECK(cudaMalloc(&ctx->d_workspace, GEMM_WORKSPACE_BYTES));
    KERN_CHECK(cublasCreate(&ctx->blas));
    KERN_CHECK(cublasLtCreate(&ctx->lt));
    KERN_CHECK(cublasSetWorkspace(ctx->blas, ctx->d_workspace, GEMM_WORKSPACE_BYTES));
    /* fp32 accumulation throughout: without the flag cuBLAS may reduce
     * split-K partial sums in the output type (bf16) */
    KERN_CHECK(cublasSetMathMode(
        ctx->blas,
        (cublasMath_t)(CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
    return SIM_OK;
}

/* Creates a GEMM context on the current device: handles and workspace.
 * *out is NULL on failure. Returns SIM_OK, SIM_ENOMEM or SIM_EDEVICE (no
 * device, no memory, cuBLAS failed to start), reason in
 * kern_last_error(). */
extern "C" int kern_ctx_create(kern_ctx **out) {
    *out = NULL;
    kern_ctx *ctx = SIM_NEW(kern_ctx);
    if (ctx == NULL) {
        kern_error_record("SIM_NEW(kern_ctx)", __func__, __FILE__, __LINE__, "out of memory");
        return SIM_ENOMEM;
    }
    int rc = ctx_init(ctx);
    if (rc != SIM_OK) {
        kern_ctx_destroy(ctx);
        return rc;
    }
    *out = ctx;
    return SIM_OK;
}

/* Destroys the handles and frees the workspace; NULL is a no-op. Work
 * still queued with the context must have completed. */
extern "C" void kern_ctx_destroy(kern_ctx *ctx) {
    if (ctx == NULL)
        return;
    if (ctx->lt != NULL)
        cublasLtDestroy(ctx->lt);
    if (ctx->blas != NULL)
        cublasDestroy(ctx->blas);
    kern_free(&ctx->d_workspace);
    sim_free(ctx);
}

/* 1 when FP8 GEMMs can run: compute capability 8.9 (Ada) or later. */
extern "C" int kern_ctx_has_fp8(const kern_ctx *ctx) {
    return ctx != NULL && ctx->cc >= 89;
}

/* ---- GEMMs ---- */

/* bf16: y^T (N, M) = w (K, N)^T . x^T (K, M), all column-major views. */
static int gemm_bf16(kern_ctx *ctx, void *d_y, const void *d_x, const void *d_w, int m, int n,
                     int k, float scale, cudaStream_t stream) {
    const float alpha = scale, beta = 0.0f;
    KERN_CHECK(cublasSetStream(ctx->blas, stream));
    /* cublasSetStream puts the handle back on cuBLAS's own workspace pool:
     * give it the context's again, so no GEMM allocates behind our back */
    KERN_CHECK(cublasSetWorkspace(ctx->blas, ctx->d_workspace, GEMM_WORKSPACE_BYTES));
    KERN_CHECK(cublasGemmEx(ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, d_w, CUDA_R_16BF,
                            k, d_x, CUDA_R_16BF, k, &beta, d_y, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT));
    return SIM_OK;
}

/* The cuBLASLt descriptors of one FP8 GEMM; lt_free() releases them. */
struct lt_desc {
    cublasLtMatmulDesc_t op;         /* TN, fp32 compute and scale */
    cublasLtMatrixLayout_t a, b, c;  /* w (K, N), x (K, M) E4M3; y (N, M) bf16 */
    cublasLtMatmulPreference_t pref; /* workspace limit */
};

/* Destroys whatever lt_plan() created (NULL members are skipped). */
static void lt_free(lt_desc *d) {
    if (d->pref != NULL)
        cublasLtMatmulPreferenceDestroy(d->pref);
    if (d->c != NULL)
        cublasLtMatrixLayoutDestroy(d->c);
    if (d->b != NULL)
        cublasLtMatrixLayoutDestroy(d->b);
    if (d->a != NULL)
        cublasLtMatrixLayoutDestroy(d->a);
    if (d->op != NULL)
        cublasLtMatmulDescDestroy(d->op);
}

/* Builds the descriptors and asks for the best algorithm; SIM_ENOTSUP
 * when cuBLASLt has none for this shape. */
static int lt_plan(kern_ctx *ctx, lt_desc *d, cublasLtMatmulAlgo_t *algo, int m, int n, int k) {
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    const int8_t fast_accum = 0;
    const size_t ws = GEMM_WORKSPACE_BYTES;
    KERN_CHECK(cublasLtMatmulDescCreate(&d->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    KERN_CHECK(cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    KERN_CHECK(cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    KERN_CHECK(cublasLtMatmulDescSetAttribute(d->op, CUBLASLT_MATMUL_DESC_FAST_ACCUM, &fast_accum,
                                              sizeof fast_accum));
    KERN_CHECK(cublasLtMatrixLayoutCreate(&d->a, CUDA_R_8F_E4M3, k, n, k)); /* w: (K, N) col */
    KERN_CHECK(cublasLtMatrixLayoutCreate(&d->b, CUDA_R_8F_E4M3, k, m, k)); /* x: (K, M) col */
    KERN_CHECK(cublasLtMatrixLayoutCreate(&d->c, CUDA_R_16BF, n, m, n));    /* y: (N, M) col */
    KERN_CHECK(cublasLtMatmulPreferenceCreate(&d->pref));
    KERN_CHECK(cublasLtMatmulPreferenceSetAttribute(
        d->pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    cublasLtMatmulHeuristicResult_t res;
    int n_res = 0;
    KERN_CHECK(cublasLtMatmulAlgoGetHeuristic(ctx->lt, d->op, d->a, d->b, d->c, d->c, d->pref, 1,
                                              &res, &n_res));
    if (n_res < 1) {
        kern_error_record("cublasLtMatmulAlgoGetHeuristic", __func__, __FILE__, __LINE__,
                          "no FP8 algorithm for this shape");
        return SIM_ENOTSUP;
    }
    *algo = res.algo;
    return SIM_OK;
}

/* FP8: the same product through cuBLASLt (E4M3 in, bf16 out). */
static int gemm_fp8(kern_ctx *ctx, void *d_y, const void *d_x, const void *d_w, int m, int n, int k,
                    float scale, cudaStream_t stream) {
    lt_desc d = {NULL, NULL, NULL, NULL, NULL};
    cublasLtMatmulAlgo_t algo;
    const float alpha = scale, beta = 0.0f;
    int rc = lt_plan(ctx, &d, &algo, m, n, k);
    if (rc == SIM_OK) {
        cublasStatus_t st =
            cublasLtMatmul(ctx->lt, d.op, &alpha, d_w, d.a, d_x, d.b, &beta, d_y, d.c, d_y, d.c,
                           &algo, ctx->d_workspace, GEMM_WORKSPACE_BYTES, stream);
        if (st != CUBLAS_STATUS_SUCCESS) {
            kern_error_record("cublasLtMatmul(...)", __func__, __FILE__, __LINE__,
                              cublasGetStatusString(st));
            rc = SIM_EDEVICE;
        }
    }
    lt_free(&d);
    return rc;
}

/* y (M, N) bf16 = scale * x (M, K) . w (N, K)^T on device memory, queued on
 * stream (a cudaStream_t; NULL: the default stream). dtype is that of x
 * and w: KERN_DT_BF16, or KERN_DT_FP8_E4M3 (y stays bf16). Returns SIM_OK
 * once queued (m or n == 0 queues nothing; k == 0 sets y to zero),
 * SIM_EINVAL for negative sizes, NULL pointers, an unknown dtype, or FP8
 * with K or N not a multiple of 16 or a pointer not 16-byte aligned; SIM_ENOTSUP for FP8 on a
 * device without it or a shape cuBLASLt has no kernel for; SIM_EDEVICE when cuBLAS fails. */
extern "C" int kern_gemm(kern_ctx *ctx, void *d_y, const void *d_x, const void *d_w, int m, int n,
                         int k, int dtype, float scale, void *stream) {
    KERN_CHECK_ARG(ctx != NULL);
    KERN_CHECK_ARG(m >= 0 && n >= 0 && k >= 0);
    KERN_CHECK_ARG(dtype == KERN_DT_BF16 || dtype == KERN_DT_FP8_E4M3);
    if (m == 0 || n == 0)
        return SIM_OK;
    KERN_CHECK_ARG(d_y != NULL);
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    if (k == 0) { /* an empty sum: y = 0, as the reference gives */
        KERN_CHECK(cudaMemsetAsync(d_y, 0, (size_t)m * n * sizeof(__nv_bfloat16), st));
        return SIM_OK;
    }
    KERN_CHECK_ARG(d_x != NULL && d_w != NULL);
    if (dtype == KERN_DT_BF16)
        return gemm_bf16(ctx, d_y, d_x, d_w, m, n, k, scale, st);
    if (!kern_ctx_has_fp8(ctx)) {
        kern_error_record("kern_ctx_has_fp8(ctx)", __func__, __FILE__, __LINE__,
                          "FP8 needs compute capability 8.9 or later");
        return SIM_ENOTSUP;
    }
    KERN_CHECK_ARG(k % 16 == 0 && n % 16 == 0);
    KERN_CHECK_ARG(kern_aligned16(d_y) && kern_aligned16(d_x) && kern_aligned16(d_w));
    return gemm_fp8(ctx, d_y, d_x, d_w, m, n, k, scale, st);
}
