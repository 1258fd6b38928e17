/* argmax_ref.c: CPU reference of greedy sampling (operator sample): the
 * index of each row's largest logit.
 *
 * Dimensions: R = n_rows (sequences that produce a token), V = vocab.
 * logits (R, V) row-major, out (R) int32. Ties go to the lowest index (the
 * first maximum in a left-to-right scan), NaN never wins (every comparison
 * with NaN is false) and a row with no number above -infinity gives the
 * first index holding -infinity, or 0 for a row of NaN. argmax.cu's tree
 * reduction keeps the same rule, so the two agree exactly. */
#include "config.h"
#include "kern.h"

#include <math.h>

/* First index of the maximum of v[0 .. n), NaN skipped; 0 if none. */
static int32_t argmax_row(const float *v, int n) {
    int32_t best = 0;
    float best_v = NAN;
    for (int i = 0; i < n; i++) {
        if (isnan(v[i]))
            continue;
        if (isnan(best_v) || v[i] > best_v) {
            best_v = v[i];
            best = i;
        }
    }
    return best;
}

/* out[r] = argmax of fp32 logits row r. */
void kern_argmax_ref_f32(int32_t *out, const float *logits, int n_rows, int vocab) {
    for (int r = 0; r < n_rows; r++)
        out[r] = argmax_row(logits + (size_t)r * vocab, vocab);
}

/* out[r] = argmax of bf16 logits row r, compared after exact widening. */
void kern_argmax_ref_bf16(int32_t *out, const kern_bf16 *logits, int n_rows, int vocab) {
    for (int r = 0; r < n_rows; r++) {
        const kern_bf16 *row = logits + (size_t)r * vocab; /* (V) */
        int32_t best = 0;
        float best_v = NAN;
        for (int i = 0; i < vocab; i++) {
            float x = kern_f32_from_bf16(row[i]);
            if (isnan(x))
                continue;
            if (isnan(best_v) || x > best_v) {
                best_v = x;
                best = i;
            }
        }
        out[r] = best;
    }
}
