/* test_kern_argmax_gpu.c: kern_argmax() (argmax.cu) on a GPU against the
 * CPU reference (argmax_ref.c), which test_kern_ops_ref checks against the
 * definition.
 *
 * Skips (exit 77, reason printed) when the build has no CUDA or when
 * kern_device_count() finds no usable device.
 *
 * fp32 and bf16 logits over vocabularies of 1, 7, 1000, 32000 and 128256
 * entries; rows with planted ties (the lower index must win whatever the
 * reduction order), rows of NaN with one number, rows of NaN only (0) and
 * rows of -inf (the first). bf16 rows tie often by themselves. The answer
 * must be exactly the reference's; the output and guards around it start
 * as -99. */
#include "config.h"
#include "kern.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <gsl/gsl_rng.h>

#include "mem.h"
#include "t.h"

#ifdef KV_HAVE_CUDA

enum { GUARD = 4 };

static void check_case(gsl_rng *r, int R, int V, int dtype) {
    const size_t es = kern_dtype_size(dtype), n = (size_t)R * V;
    float *lf = SIM_NEW_ARRAY(float, n);
    void *l = sim_malloc(n * es);
    int32_t *ref = SIM_NEW_ARRAY(int32_t, R), *got = SIM_NEW_ARRAY(int32_t, R + 2 * GUARD);
    T_ASSERT(lf && l && ref && got);
    for (int rr = 0; rr < R; rr++) {
        float *row = lf + (size_t)rr * V;
        for (int i = 0; i < V; i++)
            row[i] = (float)((gsl_rng_uniform(r) - 0.5) * 16.0);
        switch (rr % 6) {
            case 1: /* a planted tie, the later index in an earlier thread's stride */
                row[V - 1] = 50.0f;
                row[V / 3] = 50.0f;
                break;
            case 2:
                for (int i = 0; i < V; i++)
                    row[i] = NAN;
                row[V / 2] = -7.0f;
                break;
            case 3:
                for (int i = 0; i < V; i++)
                    row[i] = NAN;
                break;
            case 4:
                for (int i = 0; i < V; i++)
                    row[i] = -INFINITY;
                break;
            default:
                break;
        }
        for (int i = 0; i < V; i++) {
            if (dtype == KERN_DT_F32)
                ((float *)l)[(size_t)rr * V + i] = row[i];
            else
                ((kern_bf16 *)l)[(size_t)rr * V + i] = kern_bf16_from_f32(row[i]);
        }
    }
    if (dtype == KERN_DT_F32)
        kern_argmax_ref_f32(ref, l, R, V);
    else
        kern_argmax_ref_bf16(ref, l, R, V);

    void *d_l = NULL, *d_out = NULL;
    for (int i = 0; i < R + 2 * GUARD; i++)
        got[i] = -99;
    T_EQ_I(kern_malloc(&d_l, n * es), SIM_OK);
    T_EQ_I(kern_malloc(&d_out, (size_t)(R + 2 * GUARD) * 4), SIM_OK);
    T_EQ_I(kern_memcpy_h2d(d_l, l, n * es), SIM_OK);
    T_EQ_I(kern_memcpy_h2d(d_out, got, (size_t)(R + 2 * GUARD) * 4), SIM_OK);
    int rc = kern_argmax((int32_t *)d_out + GUARD, d_l, R, V, dtype, NULL);
    if (rc == SIM_OK)
        rc = kern_sync(NULL);
    if (rc != SIM_OK)
        fprintf(stderr, "kern_argmax: %s\n", kern_last_error());
    T_EQ_I(rc, SIM_OK);
    T_EQ_I(kern_memcpy_d2h(got, d_out, (size_t)(R + 2 * GUARD) * 4), SIM_OK);
    for (int g = 0; g < GUARD; g++) {
        T_EQ_I(got[g], -99);
        T_EQ_I(got[GUARD + R + g], -99);
    }
    for (int rr = 0; rr < R; rr++)
        if (got[GUARD + rr] != ref[rr])
            T_FAIL_("argmax %s V=%d row %d: %d vs reference %d",
                    dtype == KERN_DT_F32 ? "f32" : "bf16", V, rr, got[GUARD + rr], ref[rr]);
    kern_free(&d_l);
    kern_free(&d_out);
    sim_free(lf);
    sim_free(l);
    sim_free(ref);
    sim_free(got);
}

static void run_all(void) {
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    T_ASSERT(r != NULL);
    gsl_rng_set(r, 20240620UL);
    static const int vocabs[] = {1, 7, 1000, 32000, 128256};
    for (size_t k = 0; k < sizeof vocabs / sizeof vocabs[0]; k++) {
        check_case(r, 12, vocabs[k], KERN_DT_F32);
        check_case(r, 12, vocabs[k], KERN_DT_BF16);
    }
    void *d = NULL;
    T_EQ_I(kern_malloc(&d, 64), SIM_OK);
    T_EQ_I(kern_argmax(d, d, -1, 4, KERN_DT_F32, NULL), SIM_EINVAL);
    T_EQ_I(kern_argmax(d, d, 1, 0, KERN_DT_F32, NULL), SIM_EINVAL);
    T_EQ_I(kern_argmax(d, d, 1, 4, KERN_DT_FP8_E4M3, NULL), SIM_EINVAL);
    T_EQ_I(kern_argmax(NULL, NULL, 0, 4, KERN_DT_BF16, NULL), SIM_OK);
    kern_free(&d);
    gsl_rng_free(r);
    T_EQ_I(sim_mem_current(), 0);
}

#endif /* KV_HAVE_CUDA */

T_GPU_MAIN("test_kern_argmax_gpu", run_all)
