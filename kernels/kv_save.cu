/* kv_save.cu: the KV append on the GPU (operator kv_save): K and V rows of
 * a step's new tokens written into their slots of one layer's paged pool,
 * and its launcher kern_kv_save() (reference: kv_save_ref.c).
 *
 * Dimension legend:
 *     T     new tokens, one thread block each (grid x)
 *     Hkv   KV heads; D head dim; bs block size
 *     U     copy unit: the widest of 16, 8, 4, 2, 1 bytes that divides the
 *           row sizes, the strides and the three pointers
 *     block 128 threads, each copying units of (K|V, head, dim) in turn
 *
 * k and v are (T, Hkv, D) with token rows k_stride / v_stride elements
 * apart (the K and V parts of fused QKV rows); the pool is (NB, 2, Hkv, bs,
 * D) (kern.h). Token t goes to block slots[t] / bs, slot slots[t] % bs; a
 * negative slot is padding and is skipped. A head's D elements are
 * contiguous on both sides, so reads and writes are coalesced runs of
 * D * elem bytes (256 bytes for D = 128 bf16). The copy is bit for bit,
 * whatever the dtype. Pure data movement: 2 * T * Hkv * D * elem bytes read
 * and written.
 *
 * Non-goals: fp8 quantisation on the way in (scales), fusing with RoPE. */
#include "config.h"
#include "kern_cuda.cuh"

/* Byte geometry of one launch. */
struct save_geom {
    int block_size;           /* bs */
    int n_kv_heads;           /* Hkv */
    long long row_bytes;      /* D * elem: one head of one token */
    long long k_stride_bytes; /* between tokens of k */
    long long v_stride_bytes; /* between tokens of v */
    long long block_bytes;    /* between blocks of the pool */
    long long kv_bytes;       /* from a block's K to its V */
    long long head_bytes;     /* between heads inside a block: bs * D * elem */
};

/* ---- kernel ---- */

/* Token blockIdx.x: copies its 2 x Hkv head rows in units of U. */
template <typename U>
__global__ void __launch_bounds__(128)
    kv_save_kernel(char *pool, const char *k, const char *v, const int *slots, save_geom g) {
    const int t = blockIdx.x;
    const int slot = __ldg(slots + t);
    if (slot < 0)
        return; /* padding token */
    const int blk = slot / g.block_size, off = slot % g.block_size;
    const int nu = (int)(g.row_bytes / sizeof(U)); /* units per head row */
    const int per_side = g.n_kv_heads * nu;
    const char *src_k = k + t * g.k_stride_bytes; /* (Hkv, D) token t */
    const char *src_v = v + t * g.v_stride_bytes;
    char *dst = pool + blk * g.block_bytes + off * g.row_bytes; /* K, head 0, slot off */
    for (int idx = threadIdx.x; idx < 2 * per_side; idx += blockDim.x) {
        const int side = idx / per_side, rem = idx % per_side;
        const int h = rem / nu, u = rem % nu;
        const char *src = (side ? src_v : src_k) + h * g.row_bytes + (long long)u * sizeof(U);
        char *d = dst + side * g.kv_bytes + h * g.head_bytes + (long long)u * sizeof(U);
        *reinterpret_cast<U *>(d) = *reinterpret_cast<const U *>(src);
    }
}

/* ---- launcher ---- */

/* The widest unit in {16, 8, 4, 2, 1} dividing every value of v[0 .. n). */
static int unit_for(const unsigned long long *v, int n) {
    int u = 16;
    for (int i = 0; i < n; i++)
        while (v[i] % (unsigned long long)u != 0)
            u /= 2;
    return u;
}

/* Writes K and V of n_tokens new tokens into one layer's pool d_kv_layer
 * (see the file comment and kern_kv_save_ref()), all device memory, queued
 * on stream. Returns SIM_OK once launched (n_tokens == 0 launches
 * nothing), SIM_EINVAL for a bad layout, strides < Hkv * D or NULL
 * pointers, SIM_EDEVICE when the launch fails. Slots in device memory are
 * not checked: a slot past the pool is the caller's bug (the reference
 * reports it). */
extern "C" int kern_kv_save(void *d_kv_layer, const kern_kv_layout *kv, const void *d_k,
                            int k_stride, const void *d_v, int v_stride, const int32_t *d_slots,
                            int n_tokens, void *stream) {
    KERN_CHECK_ARG(kv != NULL && kern_kv_layout_check(kv) == SIM_OK);
    const long long row = (long long)kv->n_kv_heads * kv->head_dim;
    KERN_CHECK_ARG(n_tokens >= 0 && k_stride >= row && v_stride >= row);
    if (n_tokens == 0)
        return SIM_OK;
    KERN_CHECK_ARG(d_kv_layer != NULL && d_k != NULL && d_v != NULL && d_slots != NULL);

    const long long es = (long long)kern_dtype_size(kv->dtype);
    save_geom g;
    g.block_size = kv->block_size;
    g.n_kv_heads = kv->n_kv_heads;
    g.row_bytes = kv->head_dim * es;
    g.k_stride_bytes = k_stride * es;
    g.v_stride_bytes = v_stride * es;
    g.block_bytes = (long long)kern_kv_block_stride(kv) * es;
    g.kv_bytes = g.block_bytes / 2;
    g.head_bytes = (long long)kv->block_size * g.row_bytes;
    const unsigned long long vals[] = {
        (unsigned long long)g.row_bytes,      (unsigned long long)g.k_stride_bytes,
        (unsigned long long)g.v_stride_bytes, (unsigned long long)(uintptr_t)d_kv_layer,
        (unsigned long long)(uintptr_t)d_k,   (unsigned long long)(uintptr_t)d_v};
    char *pool = static_cast<char *>(d_kv_layer);
    const char *k = static_cast<const char *>(d_k), *v = static_cast<const char *>(d_v);
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    switch (unit_for(vals, (int)(sizeof vals / sizeof vals[0]))) {
        case 16:
            kv_save_kernel<int4><<<n_tokens, 128, 0, st>>>(pool, k, v, d_slots, g);
            break;
        case 8:
            kv_save_kernel<int2><<<n_tokens, 128, 0, st>>>(pool, k, v, d_slots, g);
            break;
        case 4:
            kv_save_kernel<int><<<n_tokens, 128, 0, st>>>(pool, k, v, d_slots, g);
            break;
        case 2:
            kv_save_kernel<short><<<n_tokens, 128, 0, st>>>(pool, k, v, d_slots, g);
            break;
        default:
            kv_save_kernel<char><<<n_tokens, 128, 0, st>>>(pool, k, v, d_slots, g);
            break;
    }
    KERN_CHECK(cudaGetLastError());
    return SIM_OK;
}
