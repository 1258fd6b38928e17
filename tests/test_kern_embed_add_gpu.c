/* test_kern_embed_add_gpu.c: kern_embed() (embed.cu) and kern_add()
 * (add.cu) on a GPU against their CPU references (embed_ref.c, add_ref.c),
 * whose arithmetic test_be_cpu checks inside a whole model.
 *
 * Skips (exit 77, reason printed) when the build has no CUDA or when
 * kern_device_count() finds no usable device.
 *
 * Embedding: fp32 and bf16 rows whose byte length allows 16, 4, 2 or 1
 * byte copies, pointers shifted by one element for the narrow paths, an id
 * outside [0, V) (a zero row on the GPU). Bit-exact. Add: fp32 and bf16 on
 * lengths that take the 128-bit path and the scalar one. Bit-exact too:
 * both sides do one fp32 addition and one rounding. Outputs carry 16 guard
 * elements on each side, poisoned with 0xff bytes, which must survive. */
#include "config.h"
#include "kern.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "mem.h"
#include "t.h"

#ifdef KV_HAVE_CUDA

enum { GUARD = 16 };

static void fill(void *p, size_t n, int dtype, gsl_rng *r) {
    for (size_t i = 0; i < n; i++) {
        float v = (float)(4.0 * gsl_rng_uniform(r) - 2.0);
        if (dtype == KERN_DT_F32)
            ((float *)p)[i] = v;
        else
            ((kern_bf16 *)p)[i] = kern_bf16_from_f32(v);
    }
}

static void check_embed(gsl_rng *r, int T, int Hd, int V, int dtype, int shift) {
    const size_t es = kern_dtype_size(dtype), n_out = (size_t)T * Hd;
    void *table = sim_malloc((size_t)V * Hd * es), *ref = sim_malloc(n_out * es);
    int32_t *tok = sim_malloc((size_t)T * sizeof *tok);
    unsigned char *got = sim_malloc((n_out + 2 * GUARD) * es);
    void *d_table = NULL, *d_out = NULL, *d_tok = NULL;
    T_ASSERT(table && ref && tok && got);
    fill(table, (size_t)V * Hd, dtype, r);
    for (int t = 0; t < T; t++)
        tok[t] = (int32_t)gsl_rng_uniform_int(r, (unsigned long)V);
    T_EQ_I(kern_embed_ref(ref, table, tok, T, Hd, V, dtype), SIM_OK);
    T_EQ_I(kern_malloc(&d_table, ((size_t)V * Hd + shift) * es), SIM_OK);
    T_EQ_I(kern_malloc(&d_out, (n_out + 2 * GUARD + shift) * es), SIM_OK);
    T_EQ_I(kern_malloc(&d_tok, (size_t)T * sizeof *tok), SIM_OK);
    char *tb = (char *)d_table + shift * es, *o = (char *)d_out + shift * es;
    T_EQ_I(kern_memcpy_h2d(tb, table, (size_t)V * Hd * es), SIM_OK);
    T_EQ_I(kern_memcpy_h2d(d_tok, tok, (size_t)T * sizeof *tok), SIM_OK);
    T_EQ_I(kern_memset(o, 0xff, (n_out + 2 * GUARD) * es), SIM_OK);
    int rc = kern_embed(o + GUARD * es, tb, d_tok, T, Hd, V, dtype, NULL);
    if (rc == SIM_OK)
        rc = kern_sync(NULL);
    if (rc != SIM_OK)
        fprintf(stderr, "kern_embed: %s\n", kern_last_error());
    T_EQ_I(rc, SIM_OK);
    T_EQ_I(kern_memcpy_d2h(got, o, (n_out + 2 * GUARD) * es), SIM_OK);
    for (size_t b = 0; b < GUARD * es; b++) {
        T_EQ_I(got[b], 0xff);
        T_EQ_I(got[(GUARD + n_out) * es + b], 0xff);
    }
    if (memcmp(got + GUARD * es, ref, n_out * es) != 0)
        T_FAIL_("embed T=%d Hd=%d V=%d dtype=%d shift=%d differs from the reference", T, Hd, V,
                dtype, shift);
    /* an id past the table gives a zero row */
    tok[0] = V;
    T_EQ_I(kern_memcpy_h2d(d_tok, tok, sizeof *tok), SIM_OK);
    T_EQ_I(kern_embed(o + GUARD * es, tb, d_tok, 1, Hd, V, dtype, NULL), SIM_OK);
    T_EQ_I(kern_sync(NULL), SIM_OK);
    T_EQ_I(kern_memcpy_d2h(got, o + GUARD * es, (size_t)Hd * es), SIM_OK);
    for (size_t b = 0; b < (size_t)Hd * es; b++)
        T_EQ_I(got[b], 0);
    T_EQ_I(kern_embed_ref(ref, table, tok, 1, Hd, V, dtype), SIM_EINVAL);
    kern_free(&d_table);
    kern_free(&d_out);
    kern_free(&d_tok);
    sim_free(table);
    sim_free(ref);
    sim_free(tok);
    sim_free(got);
}

static void check_add(gsl_rng *r, long long n, int dtype, int shift) {
    const size_t es = kern_dtype_size(dtype);
    void *y = sim_malloc((size_t)n * es), *x = sim_malloc((size_t)n * es);
    unsigned char *got = sim_malloc(((size_t)n + 2 * GUARD) * es);
    void *d_y = NULL, *d_x = NULL;
    T_ASSERT(y && x && got);
    fill(y, (size_t)n, dtype, r);
    fill(x, (size_t)n, dtype, r);
    T_EQ_I(kern_malloc(&d_y, ((size_t)n + 2 * GUARD + shift) * es), SIM_OK);
    T_EQ_I(kern_malloc(&d_x, ((size_t)n + shift) * es), SIM_OK);
    char *yy = (char *)d_y + (shift + GUARD) * es, *xx = (char *)d_x + shift * es;
    T_EQ_I(kern_memset((char *)d_y + shift * es, 0xff, ((size_t)n + 2 * GUARD) * es), SIM_OK);
    T_EQ_I(kern_memcpy_h2d(yy, y, (size_t)n * es), SIM_OK);
    T_EQ_I(kern_memcpy_h2d(xx, x, (size_t)n * es), SIM_OK);
    if (dtype == KERN_DT_F32)
        kern_add_ref_f32(y, x, (size_t)n);
    else
        kern_add_ref_bf16(y, x, (size_t)n);
    int rc = kern_add(yy, xx, n, dtype, NULL);
    if (rc == SIM_OK)
        rc = kern_sync(NULL);
    if (rc != SIM_OK)
        fprintf(stderr, "kern_add: %s\n", kern_last_error());
    T_EQ_I(rc, SIM_OK);
    T_EQ_I(kern_memcpy_d2h(got, (char *)d_y + shift * es, ((size_t)n + 2 * GUARD) * es), SIM_OK);
    for (size_t b = 0; b < GUARD * es; b++) {
        T_EQ_I(got[b], 0xff);
        T_EQ_I(got[(GUARD + (size_t)n) * es + b], 0xff);
    }
    if (memcmp(got + GUARD * es, y, (size_t)n * es) != 0)
        T_FAIL_("add n=%lld dtype=%d shift=%d differs from the reference", n, dtype, shift);
    kern_free(&d_y);
    kern_free(&d_x);
    sim_free(y);
    sim_free(x);
    sim_free(got);
}

static void run_all(void) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    T_ASSERT(r != NULL);
    gsl_rng_set(r, 20241125UL);
    static const int dtypes[] = {KERN_DT_F32, KERN_DT_BF16};
    for (int d = 0; d < 2; d++)
        for (int shift = 0; shift <= 1; shift++) {
            check_embed(r, 5, 256, 1024, dtypes[d], shift); /* 16-byte rows */
            check_embed(r, 3, 7, 11, dtypes[d], shift);     /* odd rows */
            check_embed(r, 64, 4096, 300, dtypes[d], shift);
            check_add(r, 8 * 4096, dtypes[d], shift);
            check_add(r, 1001, dtypes[d], shift);
        }
    void *p = NULL;
    T_EQ_I(kern_malloc(&p, 64), SIM_OK);
    T_EQ_I(kern_embed(p, p, p, -1, 4, 4, KERN_DT_F32, NULL), SIM_EINVAL);
    T_EQ_I(kern_embed(p, p, p, 1, 4, 4, 99, NULL), SIM_EINVAL);
    T_EQ_I(kern_embed(NULL, NULL, NULL, 0, 4, 4, KERN_DT_F32, NULL), SIM_OK);
    T_EQ_I(kern_add(p, p, -1, KERN_DT_F32, NULL), SIM_EINVAL);
    T_EQ_I(kern_add(p, p, 4, KERN_DT_FP8_E4M3, NULL), SIM_EINVAL);
    T_EQ_I(kern_add(NULL, NULL, 0, KERN_DT_BF16, NULL), SIM_OK);
    kern_free(&p);
    gsl_rng_free(r);
    T_EQ_I(sim_mem_current(), 0);
}

#endif /* KV_HAVE_CUDA */

T_GPU_MAIN("test_kern_embed_add_gpu", run_all)
