/* kv_copy_ref.c: CPU reference of moving whole KV blocks: the gather that
 * packs scattered device blocks into a contiguous staging buffer, the
 * scatter that unpacks it, and block swap between the device cache and a
 * host pool (the executor's kv_copy). The truth that kv_copy.cu is checked
 * against, and the cpu executor's swap.
 *
 * Dimension legend: L layers, NB blocks per layer pool, Hkv KV heads, bs
 * block size, D head dim, n blocks moved. The cache is (L, NB, 2, Hkv, bs,
 * D); a block of one layer is E = 2 * Hkv * bs * D contiguous elements
 * (kern_kv_block_stride()); staging and host slots are (n, L, 2, Hkv, bs,
 * D), one block of every layer per entry (kern_kv_slot_bytes()).
 *
 * Each move is one memcpy per (block, layer) of E elements: this is the
 * plain definition, with no coalescing. Block and slot ids are checked
 * before anything is written. Elements are copied bit for bit. */
#include "config.h"
#include "kern.h"

#include <stdio.h>
#include <string.h>

/* Checks the layout and n ids against [0, limit); SIM_OK or SIM_EINVAL. */
static int check_ids(const kern_kv_layout *kv, const int32_t *ids, int n, long long limit,
                     const char *name) {
    int rc = kern_kv_layout_check(kv);
    if (rc != SIM_OK)
        return rc;
    if (n < 0) {
        kern_error_record("n >= 0", __func__, __FILE__, __LINE__, "invalid argument");
        return SIM_EINVAL;
    }
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= limit) {
            char msg[128];
            snprintf(msg, sizeof msg, "%s[%d]: expected 0 .. %lld, got %d", name, i, limit - 1,
                     (int)ids[i]);
            kern_error_record("id check", __func__, __FILE__, __LINE__, msg);
            return SIM_EINVAL;
        }
    }
    return SIM_OK;
}

/* Copies n blocks: for each i and layer, E elements from src entry
 * (src_ids[i] or i) to dst entry (dst_ids[i] or i). An entry of the cache
 * is (layer, block); of staging or host memory (slot, layer). A NULL id
 * list means "entry i" of a packed buffer. */
static void move(void *dst, const int32_t *dst_ids, int dst_is_cache, const void *src,
                 const int32_t *src_ids, int src_is_cache, const kern_kv_layout *kv, int n) {
    const size_t es = kern_dtype_size(kv->dtype);
    const size_t e_bytes = kern_kv_block_stride(kv) * es; /* one block of one layer */
    for (int i = 0; i < n; i++) {
        const size_t d_id = dst_ids ? (size_t)dst_ids[i] : (size_t)i;
        const size_t s_id = src_ids ? (size_t)src_ids[i] : (size_t)i;
        for (int l = 0; l < kv->n_layers; l++) {
            size_t d_off = dst_is_cache ? kern_kv_offset(kv, l, (int)d_id, 0, 0, 0) * es
                                        : (d_id * kv->n_layers + l) * e_bytes;
            size_t s_off = src_is_cache ? kern_kv_offset(kv, l, (int)s_id, 0, 0, 0) * es
                                        : (s_id * kv->n_layers + l) * e_bytes;
            memcpy((char *)dst + d_off, (const char *)src + s_off, e_bytes);
        }
    }
}

/* staging (n, L, 2, Hkv, bs, D) = blocks[i] of every layer of cache.
 * SIM_OK, or SIM_EINVAL (a block id outside [0, NB)) with nothing written. */
int kern_kv_gather_ref(void *staging, const void *cache, const kern_kv_layout *kv,
                       const int32_t *blocks, int n) {
    int rc = check_ids(kv, blocks, n, kv ? kv->n_blocks : 0, "blocks");
    if (rc != SIM_OK)
        return rc;
    move(staging, NULL, 0, cache, blocks, 1, kv, n);
    return SIM_OK;
}

/* blocks[i] of every layer of cache = staging entry i. SIM_OK, or
 * SIM_EINVAL with nothing written. */
int kern_kv_scatter_ref(void *cache, const void *staging, const kern_kv_layout *kv,
                        const int32_t *blocks, int n) {
    int rc = check_ids(kv, blocks, n, kv ? kv->n_blocks : 0, "blocks");
    if (rc != SIM_OK)
        return rc;
    move(cache, blocks, 1, staging, NULL, 0, kv, n);
    return SIM_OK;
}

/* Host slot slots[i] (of a pool of n_slots) = device block blocks[i], all
 * layers. SIM_OK, or SIM_EINVAL with nothing written. */
int kern_kv_swap_out_ref(void *host_pool, int n_slots, const void *cache, const kern_kv_layout *kv,
                         const int32_t *blocks, const int32_t *slots, int n) {
    int rc = check_ids(kv, blocks, n, kv ? kv->n_blocks : 0, "blocks");
    if (rc == SIM_OK)
        rc = check_ids(kv, slots, n, n_slots, "slots");
    if (rc != SIM_OK)
        return rc;
    move(host_pool, slots, 0, cache, blocks, 1, kv, n);
    return SIM_OK;
}

/* Device block blocks[i] = host slot slots[i], all layers. SIM_OK, or
 * SIM_EINVAL with nothing written. */
int kern_kv_swap_in_ref(void *cache, const void *host_pool, int n_slots, const kern_kv_layout *kv,
                        const int32_t *slots, const int32_t *blocks, int n) {
    int rc = check_ids(kv, blocks, n, kv ? kv->n_blocks : 0, "blocks");
    if (rc == SIM_OK)
        rc = check_ids(kv, slots, n, n_slots, "slots");
    if (rc != SIM_OK)
        return rc;
    move(cache, blocks, 1, host_pool, slots, 0, kv, n);
    return SIM_OK;
}
