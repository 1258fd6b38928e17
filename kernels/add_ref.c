/* add_ref.c: CPU reference of the residual add, the truth that add.cu is
 * checked against; the cpu executor uses it.
 *
 *     y[i] = y[i] + x[i],  i < n
 *
 * fp32 arithmetic, one rounding per bf16 output. The perf model has no
 * operator of its own for it: vLLM fuses the add into RMSNorm, so timings
 * count it under norm. */
#include "config.h"
#include "kern.h"

/* y (n) += x (n) in fp32. */
void kern_add_ref_f32(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        y[i] += x[i];
}

/* y (n) += x (n) on bf16: widened, added in fp32, rounded once. */
void kern_add_ref_bf16(kern_bf16 *y, const kern_bf16 *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        y[i] = kern_bf16_from_f32(kern_f32_from_bf16(y[i]) + kern_f32_from_bf16(x[i]));
}
