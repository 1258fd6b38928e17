/* model.c: transformer shapes from Hugging Face config.json, and the
 * parameter, weight and KV-cache arithmetic derived from them (see model.h).
 *
 * Target: dense decoder-only models with a gated MLP and RMSNorm (Llama,
 * Qwen3 and their relatives), and the language model of a multimodal one
 * (its text_config). Models with experts (num_local_experts, num_experts,
 * n_routed_experts) are refused rather than miscounted.
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
    if (((int64_t)m->n_heads + 2 * (int64_t)m->n_kv_heads) * m->head_dim > INT32_MAX) {
        /* the widths every layer's arithmetic holds in an int */
        sim_err_set(err, src, 0, 0,
                    "num_attention_heads: expected (num_attention_heads + 2 x "
                    "num_key_value_heads) x head_dim, the QKV projection's width, at most %d, "
                    "got (%d + 2 x %d) x %d",
                    INT32_MAX, m->n_heads, m->n_kv_heads, m->head_dim);
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

/* Hugging Face config classes whose published config.json files leave out
 * the keys that equal the class's own defaults, which transformers fills
 * in: google/gemma-3-4b-it's text_config has no num_attention_heads,
 * num_key_value_heads, head_dim, vocab_size or max_position_embeddings.
 * The defaults are the class's __init__ arguments (transformers,
 * src/transformers/models/gemma3/configuration_gemma3.py), found by the
 * model_type of the object the keys are in: a multimodal "gemma3" config
 * without a text_config still names every key it lacks. A key the config
 * gives (not null) is read as always. */
typedef struct class_defaults {
    const char *model_type;
    sim_model m; /* the fields a config.json key gives (sizes, window, rope_theta) */
} class_defaults;
static const class_defaults class_defaults_table[] = {
    {"gemma3_text",
     {.n_layers = 26,
      .hidden = 2304,
      .n_heads = 8,
      .n_kv_heads = 4,
      .head_dim = 256,
      .intermediate = 9216,
      .vocab = 262208,
      .max_ctx = 131072,
      .sliding_window = 4096,
      .rope_theta = 1e6}},
};

/* The defaults of the class that reads the language model's keys: the
 * model_type of text_config (t) when there is one, else the top level's
 * (o); NULL for a class with no entry above. */
static const class_defaults *class_defaults_of(const json_t *o, const json_t *t) {
    const json_t *v = json_object_get(t != NULL ? t : o, "model_type");
    size_t i;
    if (v == NULL || !json_is_string(v))
        return NULL;
    for (i = 0; i < sizeof class_defaults_table / sizeof class_defaults_table[0]; i++)
        if (strcmp(json_string_value(v), class_defaults_table[i].model_type) == 0)
            return &class_defaults_table[i];
    return NULL;
}

/* ---- text_config: the language model of a multimodal config ---- */

/* A multimodal config (Gemma 3 4b and up, Llama 4, Mistral 3, newer
 * Qwen2-VL) keeps its language model's keys under "text_config", beside a
 * "vision_config" that has keys of the same names (never read). A key of
 * the language model is read from the top level when it is there (not
 * null), else from text_config when there is one; the top level wins, so a
 * config that has both reads as before, and one without text_config
 * exactly as before. Messages about a key read from text_config name it
 * "text_config.KEY". */

/* The object key is read from: o, or t (text_config; NULL when none) when
 * o lacks key or holds null there. */
static const json_t *lm_obj(const json_t *o, const json_t *t, const char *key) {
    const json_t *v = json_object_get(o, key);
    return t == NULL || (v != NULL && !json_is_null(v)) ? o : t;
}

/* rc, with the message of a failure read from text_config (from == t)
 * naming the key as text_config.KEY. */
static int lm_rc(const json_t *from, const json_t *t, int rc, sim_err *err) {
    static const char prefix[] = "text_config.";
    const size_t k = sizeof prefix - 1, cap = sizeof err->msg;
    size_t len;
    if (rc == SIM_OK || from != t || err == NULL)
        return rc;
    len = strlen(err->msg);
    if (len + k >= cap) /* cut, to keep the NUL */
        len = cap - 1 - k;
    memmove(err->msg + k, err->msg, len);
    memcpy(err->msg, prefix, k);
    err->msg[k + len] = '\0';
    return rc;
}

/* sim_json_get_int, _bool and _double for a key of the language model. */
static int lm_int(const json_t *o, const json_t *t, const char *key, unsigned flags, int *out,
                  const char *src, sim_err *err) {
    const json_t *from = lm_obj(o, t, key);
    return lm_rc(from, t, sim_json_get_int(from, key, flags, out, src, err), err);
}

static int lm_bool(const json_t *o, const json_t *t, const char *key, int *out, const char *src,
                   sim_err *err) {
    const json_t *from = lm_obj(o, t, key);
    return lm_rc(from, t, sim_json_get_bool(from, key, 0, out, src, err), err);
}

static int lm_double(const json_t *o, const json_t *t, const char *key, double *out,
                     const char *src, sim_err *err) {
    const json_t *from = lm_obj(o, t, key);
    return lm_rc(from, t, sim_json_get_double(from, key, SIM_JSON_POSITIVE, NULL, out, src, err),
                 err);
}

/* tie_word_embeddings when the config does not say: Hugging Face's default
 * for its model_type (a model_type that is not a string is left to the
 * caller's checks: none here, as model_type is otherwise ignored). o is
 * the object model_type is read from. */
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
 * --dtype says otherwise. kv_dtype starts equal to w_dtype. A key the
 * top level lacks is read from "text_config" when there is one (a
 * multimodal config; see lm_obj). A config of a class whose files leave
 * out the keys equal to its defaults (Gemma 3) takes those defaults
 * (class_defaults_table). The shape is checked at tp = 1. On
 * failure *out is left unchanged. */
int sim_model_parse(const char *json_text, const char *src, sim_model *out, sim_err *err) {
    sim_model m;
    json_t *o = NULL, *t, *v;
    const json_t *dt_obj;
    const class_defaults *cd;
    const char *dt = NULL, *dt_key = "torch_dtype";
    const unsigned req = SIM_JSON_REQUIRED | SIM_JSON_POSITIVE;
    const struct {
        const char *key;
        unsigned flags;
        int *out;
    } sizes[] = {
        {"num_hidden_layers", req, &m.n_layers},
        {"hidden_size", req, &m.hidden},
        {"num_attention_heads", req, &m.n_heads},
        {"num_key_value_heads", SIM_JSON_POSITIVE, &m.n_kv_heads},
        {"head_dim", SIM_JSON_POSITIVE, &m.head_dim},
        {"intermediate_size", req, &m.intermediate},
        {"vocab_size", req, &m.vocab},
        {"max_position_embeddings", req, &m.max_ctx},
    };
    size_t i;
    int rc;

    memset(&m, 0, sizeof m);
    rc = sim_json_parse_object(json_text, strlen(json_text), src, &o, err);
    if (rc != SIM_OK)
        return rc;

    t = json_object_get(o, "text_config");
    if (t != NULL && json_is_null(t))
        t = NULL;
    if (t != NULL && !json_is_object(t)) {
        rc = sim_json_err_value(err, src, "text_config",
                                "an object (the language model's keys) or null", t, SIM_EPARSE);
        goto done;
    }

    for (i = 0; i < sizeof moe_keys / sizeof moe_keys[0]; i++) {
        const json_t *from = lm_obj(o, t, moe_keys[i]);
        v = json_object_get(from, moe_keys[i]);
        if (v != NULL && !json_is_null(v) && !(json_is_integer(v) && json_integer_value(v) == 0)) {
            rc = lm_rc(from, t,
                       sim_json_err_value(err, src, moe_keys[i], "a dense model (no experts)", v,
                                          SIM_ENOTSUP),
                       err);
            goto done;
        }
    }

    cd = class_defaults_of(o, t);
    if (cd != NULL)
        m = cd->m; /* read over by the keys the config gives */
    else
        m.rope_theta = ROPE_THETA_DEFAULT;
    m.tied_embeddings = tied_default(lm_obj(o, t, "model_type"));
    m.norm_eps = NORM_EPS_DEFAULT;
    for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if ((rc = lm_int(o, t, sizes[i].key,
                         cd != NULL ? sizes[i].flags & ~SIM_JSON_REQUIRED : sizes[i].flags,
                         sizes[i].out, src, err)))
            goto done;
    if ((rc = lm_bool(o, t, "tie_word_embeddings", &m.tied_embeddings, src, err)))
        goto done;
    if ((rc = lm_double(o, t, "rms_norm_eps", &m.norm_eps, src, err)) ||
        (rc = lm_double(o, t, "rope_theta", &m.rope_theta, src, err)))
        goto done;

    /* sliding_window (null: none) unless use_sliding_window is false, as
     * Qwen's configs write it; not modelled (sim_model_window_note) */
    {
        int use = 1;
        if ((rc = lm_int(o, t, "sliding_window", SIM_JSON_POSITIVE, &m.sliding_window, src, err)) ||
            (rc = lm_bool(o, t, "use_sliding_window", &use, src, err)))
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

    /* the dtype from the top level when it names one (multimodal configs
     * write it there only), else from text_config */
    dt_obj = lm_obj(o, t, "dtype") == o || lm_obj(o, t, "torch_dtype") == o ? o : t;
    v = json_object_get(dt_obj, "dtype");
    if (v != NULL && !json_is_null(v))
        dt_key = "dtype";
    if ((rc = lm_rc(dt_obj, t, sim_json_get_string(dt_obj, dt_key, 0, &dt, src, err), err)))
        goto done;
    m.w_dtype = SIM_DT_BF16;
    if (dt != NULL && strcmp(dt, "auto") != 0 && sim_dtype_parse(dt, &m.w_dtype) != SIM_OK) {
        rc = lm_rc(dt_obj, t,
                   sim_json_err_value(err, src, dt_key, DTYPE_LIST, json_object_get(dt_obj, dt_key),
                                      SIM_EINVAL),
                   err);
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
