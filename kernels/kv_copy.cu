/* kv_copy.cu: moving whole KV blocks on the GPU: the gather kernel that
 * packs scattered blocks into a contiguous staging buffer, the scatter
 * kernel that unpacks one, and block swap between HBM and pinned host
 * memory built on them (the executor's kv_copy; reference: kv_copy_ref.c).
 *
 * Dimension legend:
 *     L     layers (grid y)
 *     n     blocks moved; at most KV_IDS = 256 per launch (grid x), the ids
 *           passed by value in the kernel parameters, so id lists stay in
 *           host memory and no upload is needed
 *     E     bytes of one block of one layer: 2 * Hkv * bs * D * elem
 *           (64 KiB for Hkv = 8, bs = 16, D = 128, bf16)
 *     U     copy unit: the widest of 16, 8, 4, 2, 1 bytes dividing E and
 *           both pointers
 *     block 256 threads copying E bytes in units of U
 *
 * The cache is (L, NB, 2, Hkv, bs, D), so a block of one layer is E
 * contiguous bytes, L of them NB * E apart. Staging and host slots are (n,
 * L, 2, Hkv, bs, D): entry i is one block of every layer, L * E bytes.
 *
 * Why gather: a swapped block is L scattered pieces of E bytes (64 KiB),
 * and a cudaMemcpyAsync of 64 KiB runs far below PCIe bandwidth (fixed
 * cost per copy). Packing up to a staging buffer's worth of blocks first
 * makes each host copy as large as a run of consecutive host slots allows
 * (all of it when the host allocator hands out consecutive slots). The
 * gather itself moves HBM to HBM at several TB/s.
 *
 * Swap-out: for each chunk of blocks that fits in staging: gather, then one
 * cudaMemcpyAsync device to host per run of consecutive host slots. Swap-
 * in: one host-to-device copy per run into staging, then scatter. All on
 * the caller's stream, normally a dedicated copy stream (kern_stream_create)
 * ordered against compute with events, so copies overlap kernels. Stream
 * order makes reusing staging between chunks safe. With pageable (not
 * pinned) host memory the copies still work but are synchronous.
 *
 * Non-goals: compression, peer-to-peer (NVLink) moves, copy engines picked
 * by hand. */
#include "config.h"
#include "kern_cuda.cuh"

#define KV_IDS 256 /* block ids per launch (1 KiB of kernel parameters) */

/* Block ids of one launch, passed by value. */
struct kv_ids {
    int id[KV_IDS];
};

/* ---- kernels ---- */

/* staging entry (i, layer) = cache block ids.id[i] of layer, i = grid x,
 * layer = grid y; E bytes each in units of U. */
template <typename U>
__global__ void __launch_bounds__(256)
    kv_gather_kernel(char *staging, const char *cache, kv_ids ids, long long e_bytes,
                     long long layer_bytes, int n_layers) {
    const int i = blockIdx.x, l = blockIdx.y;
    const U *src = reinterpret_cast<const U *>(cache + l * layer_bytes + ids.id[i] * e_bytes);
    U *dst = reinterpret_cast<U *>(staging + ((long long)i * n_layers + l) * e_bytes);
    const long long nu = e_bytes / (long long)sizeof(U);
    for (long long u = threadIdx.x; u < nu; u += blockDim.x)
        dst[u] = src[u];
}

/* cache block ids.id[i] of layer = staging entry (i, layer). */
template <typename U>
__global__ void __launch_bounds__(256)
    kv_scatter_kernel(char *cache, const char *staging, kv_ids ids, long long e_bytes,
                      long long layer_bytes, int n_layers) {
    const int i = blockIdx.x, l = blockIdx.y;
    const U *src = reinterpret_cast<const U *>(staging + ((long long)i * n_layers + l) * e_bytes);
    U *dst = reinterpret_cast<U *>(cache + l * layer_bytes + ids.id[i] * e_bytes);
    const long long nu = e_bytes / (long long)sizeof(U);
    for (long long u = threadIdx.x; u < nu; u += blockDim.x)
        dst[u] = src[u];
}

/* ---- launchers ---- */

/* Checks a layout and n host ids against [0, limit). */
static int check_ids(const kern_kv_layout *kv, const int32_t *ids, int n, long long limit) {
    KERN_CHECK_ARG(kv != NULL && kern_kv_layout_check(kv) == SIM_OK);
    KERN_CHECK_ARG(n >= 0 && (n == 0 || ids != NULL));
    for (int i = 0; i < n; i++)
        KERN_CHECK_ARG(ids[i] >= 0 && ids[i] < limit);
    return SIM_OK;
}

/* Launches gather (to_cache false) or scatter of n <= KV_IDS blocks. */
template <typename U>
static void launch_u(bool to_cache, char *cache, char *staging, const kv_ids &ids, int n,
                     long long e_bytes, long long layer_bytes, int n_layers, cudaStream_t st) {
    dim3 grid(n, n_layers);
    if (to_cache)
        kv_scatter_kernel<U>
            <<<grid, 256, 0, st>>>(cache, staging, ids, e_bytes, layer_bytes, n_layers);
    else
        kv_gather_kernel<U>
            <<<grid, 256, 0, st>>>(staging, cache, ids, e_bytes, layer_bytes, n_layers);
}

/* Gathers (to_cache false) or scatters blocks[0 .. n) (checked, host
 * memory) between the cache and staging entries 0 .. n - 1, KV_IDS ids per
 * launch. */
static int move_blocks(bool to_cache, char *cache, char *staging, const kern_kv_layout *kv,
                       const int32_t *blocks, int n, cudaStream_t st) {
    const long long es = (long long)kern_dtype_size(kv->dtype);
    const long long e_bytes = (long long)kern_kv_block_stride(kv) * es;
    const long long layer_bytes = (long long)kern_kv_layer_stride(kv) * es;
    KERN_CHECK_ARG(kv->n_layers <= 65535);
    int u = 16;
    while (e_bytes % u != 0 || (uintptr_t)cache % u != 0 || (uintptr_t)staging % u != 0)
        u /= 2;
    for (int i0 = 0; i0 < n; i0 += KV_IDS) {
        const int c = n - i0 < KV_IDS ? n - i0 : KV_IDS;
        kv_ids ids;
        for (int i = 0; i < c; i++)
            ids.id[i] = blocks[i0 + i];
        char *stg = staging + (long long)i0 * kv->n_layers * e_bytes; /* entry i0 */
        switch (u) {
            case 16:
                launch_u<int4>(to_cache, cache, stg, ids, c, e_bytes, layer_bytes, kv->n_layers,
                               st);
                break;
            case 8:
                launch_u<int2>(to_cache, cache, stg, ids, c, e_bytes, layer_bytes, kv->n_layers,
                               st);
                break;
            case 4:
                launch_u<int>(to_cache, cache, stg, ids, c, e_bytes, layer_bytes, kv->n_layers, st);
                break;
            case 2:
                launch_u<short>(to_cache, cache, stg, ids, c, e_bytes, layer_bytes, kv->n_layers,
                                st);
                break;
            default:
                launch_u<char>(to_cache, cache, stg, ids, c, e_bytes, layer_bytes, kv->n_layers,
                               st);
                break;
        }
        KERN_CHECK(cudaGetLastError());
    }
    return SIM_OK;
}

/* Packs blocks[0 .. n) (host memory, each in [0, NB)) of every layer of
 * d_cache into d_staging (n, L, 2, Hkv, bs, D), queued on stream. Returns
 * SIM_OK (n == 0 queues nothing), SIM_EINVAL for a bad layout, id or NULL
 * pointer, SIM_EDEVICE when a launch fails. */
extern "C" int kern_kv_gather(void *d_staging, const void *d_cache, const kern_kv_layout *kv,
                              const int32_t *blocks, int n, void *stream) {
    int rc = check_ids(kv, blocks, n, kv ? kv->n_blocks : 0);
    if (rc != SIM_OK || n == 0)
        return rc;
    KERN_CHECK_ARG(d_staging != NULL && d_cache != NULL);
    return move_blocks(false, const_cast<char *>(static_cast<const char *>(d_cache)),
                       static_cast<char *>(d_staging), kv, blocks, n,
                       static_cast<cudaStream_t>(stream));
}

/* Unpacks d_staging entries 0 .. n - 1 into blocks[0 .. n) of d_cache (ids
 * in host memory, distinct: two entries for one block would race). Returns
 * as kern_kv_gather(). */
extern "C" int kern_kv_scatter(void *d_cache, const void *d_staging, const kern_kv_layout *kv,
                               const int32_t *blocks, int n, void *stream) {
    int rc = check_ids(kv, blocks, n, kv ? kv->n_blocks : 0);
    if (rc != SIM_OK || n == 0)
        return rc;
    KERN_CHECK_ARG(d_staging != NULL && d_cache != NULL);
    return move_blocks(true, static_cast<char *>(d_cache),
                       const_cast<char *>(static_cast<const char *>(d_staging)), kv, blocks, n,
                       static_cast<cudaStream_t>(stream));
}

/* Entries of staging a chunk may use: what fits, at most KV_IDS. */
static int chunk_cap(const kern_kv_layout *kv, size_t staging_bytes) {
    const size_t per = kern_kv_slot_bytes(kv);
    const size_t cap = staging_bytes / per;
    return cap > KV_IDS ? KV_IDS : (int)cap;
}

/* One copy per run of consecutive slots[0 .. c): between staging entries
 * and host slots, direction dir. */
static int copy_runs(char *h_pool, char *d_staging, const int32_t *slots, int c, size_t per,
                     cudaMemcpyKind dir, cudaStream_t st) {
    for (int j = 0; j < c;) {
        int e = j + 1;
        while (e < c && slots[e] == slots[e - 1] + 1)
            e++;
        char *h = h_pool + (size_t)slots[j] * per;
        char *d = d_staging + (size_t)j * per;
        const size_t bytes = (size_t)(e - j) * per;
        if (dir == cudaMemcpyDeviceToHost)
            KERN_CHECK(cudaMemcpyAsync(h, d, bytes, dir, st));
        else
            KERN_CHECK(cudaMemcpyAsync(d, h, bytes, dir, st));
        j = e;
    }
    return SIM_OK;
}

/* Swap-out of n blocks: device block blocks[i] (all layers) -> host slot
 * slots[i] of h_pool (n_slots slots of kern_kv_slot_bytes(), pinned for
 * asynchrony), through d_staging (staging_bytes, at least one slot's
 * worth), queued on stream; ids are host memory, read during the call.
 * Returns SIM_OK once queued (the host pool is valid after the stream
 * synchronises), SIM_EINVAL for a bad layout or id, a NULL pointer or
 * staging smaller than one slot, SIM_EDEVICE when a launch or copy fails
 * to queue. */
extern "C" int kern_kv_swap_out(void *h_pool, int n_slots, const void *d_cache,
                                const kern_kv_layout *kv, const int32_t *blocks,
                                const int32_t *slots, int n, void *d_staging, size_t staging_bytes,
                                void *stream) {
    int rc = check_ids(kv, blocks, n, kv ? kv->n_blocks : 0);
    if (rc == SIM_OK)
        rc = check_ids(kv, slots, n, n_slots);
    if (rc != SIM_OK || n == 0)
        return rc;
    KERN_CHECK_ARG(h_pool != NULL && d_cache != NULL && d_staging != NULL);
    const int cap = chunk_cap(kv, staging_bytes);
    KERN_CHECK_ARG(cap >= 1);
    const size_t per = kern_kv_slot_bytes(kv);
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    char *cache = const_cast<char *>(static_cast<const char *>(d_cache));
    for (int i0 = 0; i0 < n; i0 += cap) {
        const int c = n - i0 < cap ? n - i0 : cap;
        rc = move_blocks(false, cache, static_cast<char *>(d_staging), kv, blocks + i0, c, st);
        if (rc == SIM_OK)
            rc = copy_runs(static_cast<char *>(h_pool), static_cast<char *>(d_staging), slots + i0,
                           c, per, cudaMemcpyDeviceToHost, st);
        if (rc != SIM_OK)
            return rc;
    }
    return SIM_OK;
}

/* Swap-in of n blocks: host slot slots[i] -> device block blocks[i]
 * (distinct), through d_staging, queued on stream. Returns as
 * kern_kv_swap_out(); the blocks are valid for work ordered after the
 * stream's last copy. */
extern "C" int kern_kv_swap_in(void *d_cache, const void *h_pool, int n_slots,
                               const kern_kv_layout *kv, const int32_t *slots,
                               const int32_t *blocks, int n, void *d_staging, size_t staging_bytes,
                               void *stream) {
    int rc = check_ids(kv, blocks, n, kv ? kv->n_blocks : 0);
    if (rc == SIM_OK)
        rc = check_ids(kv, slots, n, n_slots);
    if (rc != SIM_OK || n == 0)
        return rc;
    KERN_CHECK_ARG(h_pool != NULL && d_cache != NULL && d_staging != NULL);
    const int cap = chunk_cap(kv, staging_bytes);
    KERN_CHECK_ARG(cap >= 1);
    const size_t per = kern_kv_slot_bytes(kv);
    cudaStream_t st = static_cast<cudaStream_t>(stream);
    char *pool = const_cast<char *>(static_cast<const char *>(h_pool));
    for (int i0 = 0; i0 < n; i0 += cap) {
        const int c = n - i0 < cap ? n - i0 : cap;
        rc = copy_runs(pool, static_cast<char *>(d_staging), slots + i0, c, per,
                       cudaMemcpyHostToDevice, st);
        if (rc == SIM_OK)
            rc = move_blocks(true, static_cast<char *>(d_cache), static_cast<char *>(d_staging), kv,
                             blocks + i0, c, st);
        if (rc != SIM_OK)
            return rc;
    }
    return SIM_OK;
}
