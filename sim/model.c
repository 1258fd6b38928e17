/* model.c: transformer shapes from Hugging Face config.json, and the
 * parameter, weight and KV-cache arithmetic derived from them (see model.h).
 *
 * Target: dense decoder-only models with a gated MLP and RMSNorm (Llama,
 * Qwen3 and their relatives). Models with experts (num_local_experts,
 * num_experts, n_routed_experts) are refused rather than miscounted.
 *
 * Parameter count, per layer (no biases, as in Llama):
 *     attention  q: hidden x (heads * head_dim)   k, v: hidden x (kv_heads * head_dim) each
 *                o: (heads * head_dim) x hidden
 *     MLP        gate, up: hidden x intermediate   down: intermediate x hidden
 *     norms      2 RMSNorm weight vectors of hidden
 * plus the final norm (hidden), the embedding (vocab x hidden) and the
 * lm_head (vocab x hidden) unless tie_word_embeddings. head_dim is honoured
 * when the config gives it (Qwen3-32B: 64 heads x 128 != 5120 hidden).
 * Not counted: Qwen3's per-head q/k norms (2 x head_dim per layer, under
 * 0.001% of Qwen3-32B) and rotary tables, which are buffers, not weights.
 *
 * Tensor parallelism (Megatron-LM style, as vLLM shards Llama): q, o, the
 * MLP, the embedding and the lm_head are split tp ways; k and v are split by
 * KV head, and when tp > kv_heads each GPU holds one replicated KV head; the
 * RMSNorm vectors are replicated on every GPU. Vocabulary padding to a
 * multiple of tp is ignored.
 *
 * Sizes fit in int (checked when parsing); products are formed in double,
 * which is exact below 2^53 (a 1e12-parameter model is far below). */
#include "config.h"
#include "model.h"

#include <stdio.h>
#include <string.h>

#include "json_util.h"
#include "mem.h"

/* ---- dtypes ---- */

/* Bytes per element of d. An out-of-range enum is a programming error. */
int sim_dtype_bytes(enum sim_dtype d) {
    switch (d) {
        case SIM_DT_BF16:
        case SIM_DT_FP16:
            return 2;
        case SIM_DT_FP8:
            return 1;
        case SIM_DT_FP32:
            return 4;
    }
    SIM_ASSERT(!"unknown sim_dtype");
    return 0;
}

/* Short name of d: "bf16", "fp16", "fp8" or "fp32" ("?" for an invalid value). */
const char *sim_dtype_name(enum sim_dtype d) {
    switch (d) {
        case SIM_DT_BF16:
            return "bf16";
        case SIM_DT_FP16:
            return "fp16";
        case SIM_DT_FP8:
            return "fp8";
        case SIM_DT_FP32:
            return "fp32";
    }
    return "?";
}

/* Accepted spellings: kvfleet's short names and the torch dtype names found
 * in config.json files. fp8 means e4m3 or e5m2 alike: both are one byte. */
static const struct {
    const char *name;
    enum sim_dtype d;
} dtype_names[] = {
    {"bf16", SIM_DT_BF16},         {"bfloat16", SIM_DT_BF16}, {"fp16", SIM_DT_FP16},
    {"float16", SIM_DT_FP16},      {"half", SIM_DT_FP16},     {"fp32", SIM_DT_FP32},
    {"float32", SIM_DT_FP32},      {"float", SIM_DT_FP32},    {"fp8", SIM_DT_FP8},
    {"float8_e4m3fn", SIM_DT_FP8}, {"fp8_e4m3", SIM_DT_FP8},  {"float8_e5m2", SIM_DT_FP8},
    {"fp8_e5m2", SIM_DT_FP8},
};

#define DTYPE_LIST                                                                                 \
    "one of bf16, bfloat16, fp16, float16, half, fp32, float32, float, fp8, float8_e4m3fn, "       \
    "fp8_e4m3, float8_e5m2, fp8_e5m2"

/* Parses a dtype name (case-sensitive, as torch writes them). Returns SIM_OK
 * or SIM_EINVAL, leaving *out untouched on failure. */
int sim_dtype_parse(const char *s, enum sim_dtype *out) {
    size_t i;

    if (s == NULL)
        return SIM_EINVAL;
    for (i = 0; i < sizeof dtype_names / sizeof dtype_names[0]; i++) {
        if (strcmp(s, dtype_names[i].name) == 0) {
            *out = dtype_names[i].d;
            return SIM_OK;
        }
    }
    return SIM_EINVAL;
}

/* ---- shape checks ---- */

/* KV heads held by one GPU at tp: a share, or one replicated head. */
static int kv_heads_per_gpu(const sim_model *m, int tp) {
    return tp >= m->n_kv_heads ? 1 : m->n_kv_heads / tp;
}

/* The checks behind sim_model_check; src names the model in messages.
 * Field names are the config.json keys so the message points at the file. */
static int model_check(const sim_model *m, int tp, const char *src, sim_err *err) {
    const struct {
        const char *key;
        int v;
    } sizes[] = {
        {"num_hidden_layers", m->n_layers},
        {"hidden_size", m->hidden},
        {"num_attention_heads", m->n_heads},
        {"num_key_value_heads", m->n_kv_heads},
        {"head_dim", m->head_dim},
        {"intermediate_size", m->intermediate},
        {"vocab_size", m->vocab},
        {"max_position_embeddings", m->max_ctx},
    };
    size_t i;

    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (sizes[i].v <= 0) {
            sim_err_set(err, src, 0, 0, "%s: expected a positive integer, got '%d'", sizes[i].key,
                        sizes[i].v);
            return SIM_EINVAL;
        }
    }
    if (m->n_heads % m->n_kv_heads != 0) {
        sim_err_set(err, src, 0, 0,
                    "num_key_value_heads: expected a divisor of num_attention_heads (%d) so each "
                    "KV head serves a whole group of query heads, got '%d'",
                    m->n_heads, m->n_kv_heads);
        return SIM_EINVAL;
    }
    if (sim_dtype_name(m->w_dtype)[0] == '?' || sim_dtype_name(m->kv_dtype)[0] == '?') {
        sim_err_set(err, src, 0, 0, "dtype: expected " DTYPE_LIST ", got '%d'",
                    sim_dtype_name(m->w_dtype)[0] == '?' ? (int)m->w_dtype : (int)m->kv_dtype);
        return SIM_EINVAL;
    }
    if (tp < 1) {
        sim_err_set(err, src, 0, 0, "tp: expected a positive integer, got '%d'", tp);
        return SIM_EINVAL;
    }
    if (m->n_heads % tp != 0) {
        sim_err_set(err, src, 0, 0,
                    "tp: expected a divisor of num_attention_heads (%d) so each GPU holds whole "
                    "heads, got '%d'",
                    m->n_heads, tp);
        return SIM_EINFEASIBLE;
    }
    if (m->intermediate % tp != 0) {
        sim_err_set(err, src, 0, 0,
                    "tp: expected a divisor of intermediate_size (%d) so the MLP splits evenly, "
                    "got '%d'",
                    m->intermediate, tp);
        return SIM_EINFEASIBLE;
    }
    if (tp > m->n_kv_heads && tp % m->n_kv_heads != 0) {
        sim_err_set(err, src, 0, 0,
                    "tp: expected a multiple of num_key_value_heads (%d) when larger, so each KV "
                    "head is replicated evenly, got '%d'",
                    m->n_kv_heads, tp);
        return SIM_EINFEASIBLE;
    }
    if (tp <= m->n_kv_heads && m->n_kv_heads % tp != 0) {
        sim_err_set(err, src, 0, 0,
                    "tp: expected a divisor of num_key_value_heads (%d) so each GPU holds whole "
                    "KV heads, got '%d'",
                    m->n_kv_heads, tp);
        return SIM_EINFEASIBLE;
    }
    return SIM_OK;
}

/* Checks m for tensor parallel degree tp: positive sizes, query heads a
 * multiple of KV heads, tp dividing the query heads and the intermediate
 * size, and KV heads either split evenly (kv_heads % tp == 0) or replicated
 * evenly (tp % kv_heads == 0). Returns SIM_OK or SIM_EINVAL with the field
 * named in *err (src is the model's name). */
int sim_model_check(const sim_model *m, int tp, sim_err *err) {
    return model_check(m, tp, m->name, err);
}

/* ---- parsing ---- */

/* Hugging Face's defaults for a config without rms_norm_eps or rope_theta. */
#define NORM_EPS_DEFAULT   1e-6
#define ROPE_THETA_DEFAULT 10000.0

/* Hugging Face config classes whose tie_word_embeddings defaults to true
 * (Gemma*Config; transformers' LlamaConfig, MistralConfig, Qwen2Config ...
 * default to false), and whose published config.json files leave the key
 * out: google/gemma-2-9b, google/gemma-3-1b-it. */
static const char *const tied_model_types[] = {"gemma", "gemma2", "gemma3", "gemma3_text"};

/* tie_word_embeddings when the config does not say: Hugging Face's default
 * for its model_type (a model_type that is not a string is left to the
 * caller's checks: none here, as model_type is otherwise ignored). */
static int tied_default(const json_t *o) {
    const json_t *v = json_object_get(o, "model_type");
    size_t i;
    if (v == NULL || !json_is_string(v))
        return 0;
    for (i = 0; i < sizeof tied_model_types / sizeof tied_model_types[0]; i++)
        if (strcmp(json_string_value(v), tied_model_types[i]) == 0)
            return 1;
    return 0;
}

/* Keys that mark a mixture-of-experts model, which the arithmetic here would
 * undercount. */
static const char *const moe_keys[] = {"num_local_experts", "num_experts", "n_routed_experts"};

/* Parses a config.json text. Missing optional keys take the Hugging Face
 * defaults: num_key_value_heads = num_attention_heads, head_dim (absent or
 * null) = hidden_size / num_attention_heads, tie_word_embeddings = false
 * (true for the Gemma model_types, as their config classes default to),
 * rms_norm_eps = 1e-6, rope_theta = 10000 (the last two only shape what the
 * cpu and cuda executors compute, not the predicted time).
 * The dtype comes from "dtype" (newer transformers) or "torch_dtype"; when
 * neither is given, or it is "auto" (transformers' word for "the
 * checkpoint's own", which a config alone does not name), it is bf16 and
 * --dtype says otherwise. kv_dtype starts equal to w_dtype. The shape
 * is checked at tp = 1. On failure *out is left unchanged. */
int sim_model_parse(const char *json_text, const char *src, sim_model *out, sim_err *err) {
    sim_model m;
    json_t *o = NULL, *v;
    const char *dt = NULL, *dt_key = "torch_dtype";
    const unsigned req = SIM_JSON_REQUIRED | SIM_JSON_POSITIVE;
    size_t i;
    int rc;

    memset(&m, 0, sizeof m);
    rc = sim_json_parse_object(json_text, strlen(json_text), src, &o, err);
    if (rc != SIM_OK)
        return rc;

    for (i = 0; i < sizeof moe_keys / sizeof moe_keys[0]; i++) {
        v = json_object_get(o, moe_keys[i]);
        if (v != NULL && !json_is_null(v) && !(json_is_integer(v) && json_integer_value(v) == 0)) {
            rc = sim_json_err_value(err, src, moe_keys[i], "a dense model (no experts)", v,
                                    SIM_ENOTSUP);
            goto done;
        }
    }

    m.tied_embeddings = tied_default(o);
    if ((rc = sim_json_get_int(o, "num_hidden_layers", req, &m.n_layers, src, err)) ||
        (rc = sim_json_get_int(o, "hidden_size", req, &m.hidden, src, err)) ||
        (rc = sim_json_get_int(o, "num_attention_heads", req, &m.n_heads, src, err)) ||
        (rc = sim_json_get_int(o, "num_key_value_heads", SIM_JSON_POSITIVE, &m.n_kv_heads, src,
                               err)) ||
        (rc = sim_json_get_int(o, "head_dim", SIM_JSON_POSITIVE, &m.head_dim, src, err)) ||
        (rc = sim_json_get_int(o, "intermediate_size", req, &m.intermediate, src, err)) ||
        (rc = sim_json_get_int(o, "vocab_size", req, &m.vocab, src, err)) ||
        (rc = sim_json_get_int(o, "max_position_embeddings", req, &m.max_ctx, src, err)) ||
        (rc = sim_json_get_bool(o, "tie_word_embeddings", 0, &m.tied_embeddings, src, err)))
        goto done;
    m.norm_eps = NORM_EPS_DEFAULT;
    m.rope_theta = ROPE_THETA_DEFAULT;
    if ((rc = sim_json_get_double(o, "rms_norm_eps", SIM_JSON_POSITIVE, NULL, &m.norm_eps, src,
                                  err)) ||
        (rc = sim_json_get_double(o, "rope_theta", SIM_JSON_POSITIVE, NULL, &m.rope_theta, src,
                                  err)))
        goto done;

    /* sliding_window (null: none) unless use_sliding_window is false, as
     * Qwen's configs write it; not modelled (sim_model_window_note) */
    {
        int use = 1;
        if ((rc = sim_json_get_int(o, "sliding_window", SIM_JSON_POSITIVE, &m.sliding_window, src,
                                   err)) ||
            (rc = sim_json_get_bool(o, "use_sliding_window", 0, &use, src, err)))
            goto done;
        if (!use)
            m.sliding_window = 0;
    }

    if (m.n_kv_heads == 0)
        m.n_kv_heads = m.n_heads;
    if (m.head_dim == 0) {
        if (m.hidden % m.n_heads != 0) {
            sim_err_set(err, src, 0, 0,
                        "head_dim: expected a positive integer because hidden_size (%d) is not a "
                        "multiple of num_attention_heads (%d), got nothing (missing key)",
                        m.hidden, m.n_heads);
            rc = SIM_EPARSE;
            goto done;
        }
        m.head_dim = m.hidden / m.n_heads;
    }

    v = json_object_get(o, "dtype");
    if (v != NULL && !json_is_null(v))
        dt_key = "dtype";
    if ((rc = sim_json_get_string(o, dt_key, 0, &dt, src, err)))
        goto done;
    m.w_dtype = SIM_DT_BF16;
    if (dt != NULL && strcmp(dt, "auto") != 0 && sim_dtype_parse(dt, &m.w_dtype) != SIM_OK) {
        rc = sim_json_err_value(err, src, dt_key, DTYPE_LIST, json_object_get(o, dt_key),
                                SIM_EINVAL);
        goto done;
    }
    m.kv_dtype = m.w_dtype;
    sim_json_stem(src, m.name, sizeof m.name);

    rc = model_check(&m, 1, src, err);
    if (rc == SIM_OK)
        *out = m;

done:
    json_decref(o);
    return rc;
}

double sim_model_norm_eps(const sim_model *m) {
    return m->norm_eps > 0 ? m->norm_eps : NORM_EPS_DEFAULT;
}

double sim_model_rope_theta(const sim_model *m) {
    return m->rope_theta > 0 ? m->rope_theta : ROPE_THETA_DEFAULT;
}

/* Loads a preset (DATADIR/models/NAME.json) or a config.json by path (a
 * directory is read as DIR/config.json, as in a Hugging Face snapshot).
 * Errors name the file; an unknown name returns SIM_ENOENT listing the
 * presets. The model's name is the preset name or the file's base name. */
int sim_model_load(const char *name_or_path, const char *datadir, sim_model *out, sim_err *err) {
    char path[4096];
    char *text = NULL;
    int rc;

    rc = sim_json_preset_path(datadir, "models", name_or_path, "config.json", "model",
                              "a config.json", path, sizeof path, err);
    if (rc != SIM_OK)
        return rc;
    rc = sim_json_read_file(path, &text, NULL, err);
    if (rc != SIM_OK)
        return rc;
    rc = sim_model_parse(text, path, out, err);
    sim_free(text);
    return rc;
}

/* ---- arithmetic ---- */

/* Total parameters (tp = 1), counted as described at the top of the file. */
double sim_model_params(const sim_model *m) {
    double h = m->hidden, qd = (double)m->n_heads * m->head_dim;
    double kvd = (double)m->n_kv_heads * m->head_dim;
    double layer = 2.0 * h * qd + 2.0 * h * kvd + 3.0 * h * m->intermediate + 2.0 * h;
    double emb = (double)m->vocab * h * (m->tied_embeddings ? 1.0 : 2.0);
    return m->n_layers * layer + h + emb;
}

/* Parameters held by one GPU at tp (norm vectors replicated, KV heads
 * replicated when tp > kv_heads). Assumes sim_model_check(m, tp) passed. */
static double params_per_gpu(const sim_model *m, int tp) {
    double h = m->hidden, qd = (double)m->n_heads * m->head_dim / tp;
    double kvd = (double)kv_heads_per_gpu(m, tp) * m->head_dim;
    double mlp = 3.0 * h * m->intermediate / tp;
    double layer = 2.0 * h * qd + 2.0 * h * kvd + mlp + 2.0 * h;
    double emb = (double)m->vocab * h * (m->tied_embeddings ? 1.0 : 2.0) / tp;
    return m->n_layers * layer + h + emb;
}

int sim_model_window_note(const sim_model *m, char *buf, size_t n) {
    if (m->sliding_window <= 0 || m->sliding_window >= m->max_ctx)
        return 0;
    snprintf(buf, n,
             "%s attends through a sliding window of %d tokens, which is not modelled: its KV "
             "cache and attention are costed over the whole context, so overestimated beyond "
             "%d tokens",
             m->name, m->sliding_window, m->sliding_window);
    return 1;
}

/* Weight bytes on one GPU at tp, in w_dtype (no quantisation scales). */
double sim_model_weight_bytes(const sim_model *m, int tp) {
    SIM_ASSERT(tp >= 1);
    return params_per_gpu(m, tp) * sim_dtype_bytes(m->w_dtype);
}

/* KV-cache bytes per token on one GPU at tp:
 * 2 (K and V) x layers x KV heads on this GPU x head_dim x bytes(kv_dtype). */
double sim_model_kv_bytes_per_token(const sim_model *m, int tp) {
    SIM_ASSERT(tp >= 1);
    return 2.0 * m->n_layers * kv_heads_per_gpu(m, tp) * m->head_dim * sim_dtype_bytes(m->kv_dtype);
}
