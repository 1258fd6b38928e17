/* test_kern_kv_gpu.c: the KV append (kern_kv_save, kv_save.cu) and the KV
 * block moves (kern_kv_gather, kern_kv_scatter, kern_kv_swap_out,
 * kern_kv_swap_in, kv_copy.cu) on a GPU against their CPU references,
 * which test_kern_ops_ref checks against dense index arithmetic.
 *
 * Skips (exit 77, reason printed) when the build has no CUDA or when
 * kern_device_count() finds no usable device.
 *
 * Every comparison is bit-exact over the whole buffer: the device cache (or
 * host pool) starts from the same bytes as the reference's copy, so a
 * missing write, a stray write or a wrong offset anywhere fails. Cases:
 * fp32, bf16 and fp8 elements; K/V rows padded as in fused QKV rows;
 * pointers shifted by one element (the copy unit drops from 16 bytes to
 * the element size); padding slots (-1); more than 256 blocks in one call
 * (several launches); staging for only 2 blocks (chunked swaps); host slots
 * in consecutive runs and scattered; swaps on a dedicated stream into
 * pinned host memory. Bad ids are refused with nothing queued. */
#include "config.h"
#include "kern.h"

#include <stdint.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "mem.h"
#include "t.h"

#ifdef KV_HAVE_CUDA

static void fill_random_bytes(gsl_rng *r, unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(1 + gsl_rng_uniform_int(r, 255));
}

static void check_rc(int rc, const char *what) {
    if (rc != SIM_OK)
        fprintf(stderr, "%s: %s\n", what, kern_last_error());
    T_EQ_I(rc, SIM_OK);
}

/* Distinct random ids in [0, limit). */
static void distinct_ids(gsl_rng *r, int32_t *ids, int n, int limit) {
    unsigned char *used = SIM_NEW_ARRAY(unsigned char, limit);
    T_ASSERT(used != NULL);
    for (int i = 0; i < n; i++) {
        int32_t id;
        do
            id = (int32_t)gsl_rng_uniform_int(r, (unsigned long)limit);
        while (used[id]);
        used[id] = 1;
        ids[i] = id;
    }
    sim_free(used);
}

/* ---- KV append ---- */

static void check_save(gsl_rng *r, int dtype, int Hkv, int D, int bs, int NB, int T, int pad,
                       int shift) {
    const kern_kv_layout kv = {1, NB, bs, Hkv, D, dtype};
    const size_t es = kern_dtype_size(dtype), pool_bytes = kern_kv_cache_bytes(&kv);
    const int stride = Hkv * D + pad;
    const size_t in_bytes = (size_t)T * stride * es;
    unsigned char *pool = sim_malloc(pool_bytes), *got = sim_malloc(pool_bytes);
    unsigned char *k = sim_malloc(in_bytes), *v = sim_malloc(in_bytes);
    int32_t *slots = SIM_NEW_ARRAY(int32_t, T);
    T_ASSERT(pool && got && k && v && slots);
    fill_random_bytes(r, pool, pool_bytes);
    fill_random_bytes(r, k, in_bytes);
    fill_random_bytes(r, v, in_bytes);
    distinct_ids(r, slots, T, NB * bs);
    for (int t = 3; t < T; t += 7)
        slots[t] = -1; /* padding tokens */

    void *d_pool = NULL, *d_k = NULL, *d_v = NULL, *d_slots = NULL;
    T_EQ_I(kern_malloc(&d_pool, pool_bytes + 16), SIM_OK);
    T_EQ_I(kern_malloc(&d_k, in_bytes + 16), SIM_OK);
    T_EQ_I(kern_malloc(&d_v, in_bytes + 16), SIM_OK);
    T_EQ_I(kern_malloc(&d_slots, (size_t)T * 4), SIM_OK);
    char *dp = (char *)d_pool + shift * es, *dk = (char *)d_k + shift * es;
    char *dv = (char *)d_v + shift * es;
    T_EQ_I(kern_memcpy_h2d(dp, pool, pool_bytes), SIM_OK);
    T_EQ_I(kern_memcpy_h2d(dk, k, in_bytes), SIM_OK);
    T_EQ_I(kern_memcpy_h2d(dv, v, in_bytes), SIM_OK);
    T_EQ_I(kern_memcpy_h2d(d_slots, slots, (size_t)T * 4), SIM_OK);

    T_EQ_I(kern_kv_save_ref(pool, &kv, k, stride, v, stride, slots, T), SIM_OK);
    check_rc(kern_kv_save(dp, &kv, dk, stride, dv, stride, d_slots, T, NULL), "kern_kv_save");
    check_rc(kern_sync(NULL), "kern_sync");
    T_EQ_I(kern_memcpy_d2h(got, dp, pool_bytes), SIM_OK);
    for (size_t i = 0; i < pool_bytes; i++)
        if (got[i] != pool[i])
            T_FAIL_("kv_save dtype=%d Hkv=%d D=%d bs=%d shift=%d: pool byte %zu is 0x%02x, "
                    "reference 0x%02x",
                    dtype, Hkv, D, bs, shift, i, got[i], pool[i]);
    T_EQ_I(kern_kv_save(dp, &kv, dk, Hkv * D - 1, dv, stride, d_slots, T, NULL), SIM_EINVAL);
    T_EQ_I(kern_kv_save(NULL, &kv, dk, stride, dv, stride, d_slots, T, NULL), SIM_EINVAL);
    T_EQ_I(kern_kv_save(NULL, &kv, NULL, stride, NULL, stride, NULL, 0, NULL), SIM_OK);
    kern_free(&d_pool);
    kern_free(&d_k);
    kern_free(&d_v);
    kern_free(&d_slots);
    sim_free(pool);
    sim_free(got);
    sim_free(k);
    sim_free(v);
    sim_free(slots);
}

/* ---- block moves ---- */

/* runs: host slots in consecutive runs (as a bump allocator gives). */
static void check_moves(gsl_rng *r, int dtype, int L, int NB, int Hkv, int D, int bs, int n,
                        int n_slots, int staging_blocks, int runs, int shift) {
    const kern_kv_layout kv = {L, NB, bs, Hkv, D, dtype};
    T_EQ_I(kern_kv_layout_check(&kv), SIM_OK);
    const size_t es = kern_dtype_size(dtype);
    const size_t cache_bytes = kern_kv_cache_bytes(&kv), slot_bytes = kern_kv_slot_bytes(&kv);
    const size_t stg_bytes = (size_t)staging_blocks * slot_bytes;
    const size_t host_bytes = (size_t)n_slots * slot_bytes;
    unsigned char *cache = sim_malloc(cache_bytes), *got = sim_malloc(cache_bytes);
    unsigned char *stg = sim_malloc((size_t)n * slot_bytes);
    unsigned char *stg_got = sim_malloc((size_t)n * slot_bytes);
    unsigned char *host = sim_malloc(host_bytes);
    int32_t *blocks = SIM_NEW_ARRAY(int32_t, n), *slots = SIM_NEW_ARRAY(int32_t, n);
    int32_t *back = SIM_NEW_ARRAY(int32_t, n);
    T_ASSERT(cache && got && stg && stg_got && host && blocks && slots && back);
    fill_random_bytes(r, cache, cache_bytes);
    distinct_ids(r, blocks, n, NB);
    distinct_ids(r, back, n, NB);
    if (runs) {
        const int start = (int)gsl_rng_uniform_int(r, (unsigned long)(n_slots - n + 1));
        for (int i = 0; i < n; i++)
            slots[i] = start + i;
        if (n > 4) { /* break the run once */
            int32_t t = slots[1];
            slots[1] = slots[n - 1];
            slots[n - 1] = t;
        }
    } else {
        distinct_ids(r, slots, n, n_slots);
    }

    void *d_cache_alloc = NULL, *d_stg_alloc = NULL, *h_pool = NULL, *stream = NULL;
    T_EQ_I(kern_malloc(&d_cache_alloc, cache_bytes + 16), SIM_OK);
    T_EQ_I(kern_malloc(&d_stg_alloc, (size_t)n * slot_bytes + 16), SIM_OK);
    T_EQ_I(kern_host_alloc(&h_pool, host_bytes), SIM_OK);
    T_EQ_I(kern_stream_create(&stream), SIM_OK);
    char *d_cache = (char *)d_cache_alloc + shift * es, *d_stg = (char *)d_stg_alloc + shift * es;
    T_EQ_I(kern_memcpy_h2d(d_cache, cache, cache_bytes), SIM_OK);
    char what[128];
    snprintf(what, sizeof what, "dtype=%d L=%d Hkv=%d D=%d bs=%d n=%d staging=%d runs=%d shift=%d",
             dtype, L, Hkv, D, bs, n, staging_blocks, runs, shift);

    /* gather all n (several launches when n > 256) */
    T_EQ_I(kern_kv_gather_ref(stg, cache, &kv, blocks, n), SIM_OK);
    check_rc(kern_kv_gather(d_stg, d_cache, &kv, blocks, n, stream), what);
    check_rc(kern_sync(stream), what);
    T_EQ_I(kern_memcpy_d2h(stg_got, d_stg, (size_t)n * slot_bytes), SIM_OK);
    if (memcmp(stg, stg_got, (size_t)n * slot_bytes) != 0)
        T_FAIL_("gather %s: staging differs from the reference", what);

    /* swap out through small staging into a poisoned pinned pool */
    memset(host, 0xA5, host_bytes);
    memset(h_pool, 0xA5, host_bytes);
    T_EQ_I(kern_kv_swap_out_ref(host, n_slots, cache, &kv, blocks, slots, n), SIM_OK);
    check_rc(
        kern_kv_swap_out(h_pool, n_slots, d_cache, &kv, blocks, slots, n, d_stg, stg_bytes, stream),
        what);
    check_rc(kern_sync(stream), what);
    if (memcmp(host, h_pool, host_bytes) != 0)
        T_FAIL_("swap_out %s: host pool differs from the reference", what);

    /* swap the same slots back into other blocks */
    T_EQ_I(kern_kv_swap_in_ref(cache, host, n_slots, &kv, slots, back, n), SIM_OK);
    check_rc(
        kern_kv_swap_in(d_cache, h_pool, n_slots, &kv, slots, back, n, d_stg, stg_bytes, stream),
        what);
    check_rc(kern_sync(stream), what);
    T_EQ_I(kern_memcpy_d2h(got, d_cache, cache_bytes), SIM_OK);
    if (memcmp(cache, got, cache_bytes) != 0)
        T_FAIL_("swap_in %s: cache differs from the reference", what);

    /* scatter fresh staging into the first blocks */
    fill_random_bytes(r, stg, (size_t)n * slot_bytes);
    T_EQ_I(kern_memcpy_h2d(d_stg, stg, (size_t)n * slot_bytes), SIM_OK);
    T_EQ_I(kern_kv_scatter_ref(cache, stg, &kv, blocks, n), SIM_OK);
    check_rc(kern_kv_scatter(d_cache, d_stg, &kv, blocks, n, stream), what);
    check_rc(kern_sync(stream), what);
    T_EQ_I(kern_memcpy_d2h(got, d_cache, cache_bytes), SIM_OK);
    if (memcmp(cache, got, cache_bytes) != 0)
        T_FAIL_("scatter %s: cache differs from the reference", what);

    /* refused before anything is queued */
    blocks[n - 1] = NB;
    T_EQ_I(kern_kv_gather(d_stg, d_cache, &kv, blocks, n, stream), SIM_EINVAL);
    T_EQ_I(
        kern_kv_swap_out(h_pool, n_slots, d_cache, &kv, blocks, slots, n, d_stg, stg_bytes, stream),
        SIM_EINVAL);
    blocks[n - 1] = 0;
    slots[0] = -1;
    T_EQ_I(kern_kv_swap_in(d_cache, h_pool, n_slots, &kv, slots, back, n, d_stg, stg_bytes, stream),
           SIM_EINVAL);
    slots[0] = 0;
    T_EQ_I(kern_kv_swap_out(h_pool, n_slots, d_cache, &kv, blocks, slots, n, d_stg, slot_bytes - 1,
                            stream),
           SIM_EINVAL); /* staging smaller than one slot */
    T_EQ_I(kern_kv_gather(NULL, NULL, &kv, NULL, 0, stream), SIM_OK);
    check_rc(kern_sync(stream), what);

    kern_stream_destroy(&stream);
    T_ASSERT(stream == NULL);
    kern_host_free(&h_pool);
    T_ASSERT(h_pool == NULL);
    kern_free(&d_cache_alloc);
    kern_free(&d_stg_alloc);
    sim_free(cache);
    sim_free(got);
    sim_free(stg);
    sim_free(stg_got);
    sim_free(host);
    sim_free(blocks);
    sim_free(slots);
    sim_free(back);
}

static void run_all(void) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    T_ASSERT(r != NULL);
    gsl_rng_set(r, 20240617UL);
    static const int dtypes[] = {KERN_DT_F32, KERN_DT_BF16, KERN_DT_FP8_E4M3};
    for (int d = 0; d < 3; d++) {
        for (int shift = 0; shift <= 1; shift++) {
            /* dtype, Hkv, D, bs, NB, T, padding, shift */
            check_save(r, dtypes[d], 8, 128, 16, 40, 300, 0, shift);
            check_save(r, dtypes[d], 3, 40, 5, 11, 50, 2 * 3 * 40, shift);
            check_save(r, dtypes[d], 1, 7, 1, 64, 33, 1, shift);
            /* dtype, L, NB, Hkv, D, bs, n, host slots, staging, runs, shift */
            check_moves(r, dtypes[d], 4, 40, 2, 64, 16, 13, 30, 2, 1, shift);
            check_moves(r, dtypes[d], 2, 20, 1, 5, 3, 9, 12, 4, 0, shift);
        }
        check_moves(r, dtypes[d], 2, 400, 1, 8, 2, 300, 320, 300, 1, 0); /* > 256 ids */
    }
    gsl_rng_free(r);
    T_EQ_I(sim_mem_current(), 0);
}

#endif /* KV_HAVE_CUDA */

T_GPU_MAIN("test_kern_kv_gpu", run_all)
