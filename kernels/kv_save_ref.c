/* kv_save_ref.c: CPU reference of the KV append (operator kv_save): the K
 * and V rows of a step's new tokens are written into their slots of one
 * layer's paged pool. The truth that kv_save.cu and the cpu executor are
 * checked against.
 *
 * Dimension legend: T new tokens, Hkv KV heads, D head dim, bs block size,
 * NB blocks. k and v are (T, Hkv, D) with token rows k_stride / v_stride
 * elements apart (>= Hkv * D: they may be the K and V parts of fused QKV
 * rows); kv_layer is (NB, 2, Hkv, bs, D) (kern.h). Token t goes to block
 * slots[t] / bs, slot slots[t] % bs, for every head: head h's D elements
 * land at kern_kv_offset(kv, 0, block, K|V, h, slot). A negative slot is a
 * padding token and is skipped (as in vLLM).
 *
 * Elements are copied bit for bit (memcpy of D * elem bytes per head), so
 * any dtype works. Every slot is checked before anything is written. */
#include "config.h"
#include "kern.h"

#include <stdio.h>
#include <string.h>

/* Checks the layout, the strides and every slot; SIM_OK or SIM_EINVAL with
 * the reason recorded. */
static int check(const kern_kv_layout *kv, int k_stride, int v_stride, const int32_t *slots,
                 int n_tokens) {
    int rc = kern_kv_layout_check(kv);
    if (rc != SIM_OK)
        return rc;
    const long long row = (long long)kv->n_kv_heads * kv->head_dim;
    if (n_tokens < 0 || k_stride < row || v_stride < row) {
        kern_error_record("n_tokens >= 0 && k_stride, v_stride >= Hkv * D", __func__, __FILE__,
                          __LINE__, "invalid argument");
        return SIM_EINVAL;
    }
    const long long n_slots = (long long)kv->n_blocks * kv->block_size;
    for (int t = 0; t < n_tokens; t++) {
        if (slots[t] >= n_slots) {
            char msg[128];
            snprintf(msg, sizeof msg, "slots[%d]: expected < n_blocks * block_size = %lld, got %d",
                     t, n_slots, (int)slots[t]);
            kern_error_record("slot check", __func__, __FILE__, __LINE__, msg);
            return SIM_EINVAL;
        }
    }
    return SIM_OK;
}

/* Saves K and V of n_tokens tokens into kv_layer (see the file comment).
 * Returns SIM_OK, or SIM_EINVAL with nothing written. */
int kern_kv_save_ref(void *kv_layer, const kern_kv_layout *kv, const void *k, int k_stride,
                     const void *v, int v_stride, const int32_t *slots, int n_tokens) {
    int rc = check(kv, k_stride, v_stride, slots, n_tokens);
    if (rc != SIM_OK)
        return rc;
    const size_t es = kern_dtype_size(kv->dtype);
    const size_t row_bytes = (size_t)kv->head_dim * es; /* one head of one token */
    for (int t = 0; t < n_tokens; t++) {
        if (slots[t] < 0)
            continue;
        const int block = slots[t] / kv->block_size, slot = slots[t] % kv->block_size;
        const char *kt = (const char *)k + (size_t)t * k_stride * es; /* (Hkv, D) token t */
        const char *vt = (const char *)v + (size_t)t * v_stride * es; /* (Hkv, D) token t */
        for (int h = 0; h < kv->n_kv_heads; h++) {
            memcpy((char *)kv_layer + kern_kv_offset(kv, 0, block, 0, h, slot) * es,
                   kt + h * row_bytes, row_bytes);
            memcpy((char *)kv_layer + kern_kv_offset(kv, 0, block, 1, h, slot) * es,
                   vt + h * row_bytes, row_bytes);
        }
    }
    return SIM_OK;
}
