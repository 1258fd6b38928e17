/* embed_ref.c: CPU reference of the embedding lookup (operator embed), the
 * truth that embed.cu is checked against; the cpu executor uses it.
 *
 *     out[t, :] = table[tokens[t], :]
 *
 * Dimension legend: T tokens, Hd hidden (row length), V vocabulary rows.
 * table (V, Hd) and out (T, Hd) are dense and row-major; rows are copied
 * bit for bit (memcpy of Hd elements), so any dtype works. Every token id
 * is checked before anything is written. The CUDA executor also uses the
 * launcher to gather rows of any (R, Hd) matrix (the sampled rows of a
 * step's hidden states). */
#include "config.h"
#include "kern.h"

#include <stdio.h>
#include <string.h>

/* Gathers rows tokens[0 .. T) of table (V, Hd) into out (T, Hd), elements
 * of dtype. Returns SIM_OK, or SIM_EINVAL (bad sizes, unknown dtype, an id
 * outside [0, V)) with the reason recorded and nothing written. */
int kern_embed_ref(void *out, const void *table, const int32_t *tokens, int n_tokens, int hidden,
                   int vocab, int dtype) {
    const size_t es = kern_dtype_size(dtype);
    if (n_tokens < 0 || hidden < 1 || vocab < 1 || es == 0) {
        kern_error_record("n_tokens >= 0, hidden, vocab >= 1, known dtype", __func__, __FILE__,
                          __LINE__, "invalid argument");
        return SIM_EINVAL;
    }
    for (int t = 0; t < n_tokens; t++)
        if (tokens[t] < 0 || tokens[t] >= vocab) {
            char msg[128];
            snprintf(msg, sizeof msg, "tokens[%d]: expected 0 .. %d, got %d", t, vocab - 1,
                     (int)tokens[t]);
            kern_error_record("token check", __func__, __FILE__, __LINE__, msg);
            return SIM_EINVAL;
        }
    const size_t row = (size_t)hidden * es; /* bytes of one row */
    for (int t = 0; t < n_tokens; t++)
        memcpy((char *)out + (size_t)t * row, (const char *)table + (size_t)tokens[t] * row, row);
    return SIM_OK;
}
