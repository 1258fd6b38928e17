/* model.h: transformer shape and the arithmetic derived from it.
 *
 * Read from a Hugging Face config.json (num_hidden_layers, hidden_size,
 * num_attention_heads, num_key_value_heads, head_dim, intermediate_size,
 * vocab_size, torch_dtype or dtype, max_position_embeddings,
 * tie_word_embeddings), either a preset in DATA/models/NAME.json or any path;
 * in a multimodal config, from its text_config where the top level lacks
 * them. Dense decoder-only models with a gated MLP (Llama family) are the
 * target; other fields are ignored. */
#ifndef SIM_MODEL_H
#define SIM_MODEL_H

#include <stdint.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

enum sim_dtype { SIM_DT_BF16 = 0, SIM_DT_FP16, SIM_DT_FP8, SIM_DT_FP32 };

/* Bytes per element of a dtype. */
int sim_dtype_bytes(enum sim_dtype d);
/* "bf16", "fp16", "fp8", "fp32". */
const char *sim_dtype_name(enum sim_dtype d);
/* Parses "bf16|fp16|fp8|fp32" (also "bfloat16", "float16", "float32"); SIM_OK or SIM_EINVAL. */
int sim_dtype_parse(const char *s, enum sim_dtype *out);

typedef struct sim_model {
    char name[64];           /* preset name or the config file's base name */
    int n_layers;            /* num_hidden_layers, >= 1 */
    int hidden;              /* hidden_size */
    int n_heads;             /* num_attention_heads */
    int n_kv_heads;          /* num_key_value_heads (= n_heads when absent) */
    int head_dim;            /* head_dim (= hidden / n_heads when absent) */
    int intermediate;        /* intermediate_size (gated MLP: gate and up each this wide) */
    int vocab;               /* vocab_size */
    int max_ctx;             /* max_position_embeddings, tokens */
    int tied_embeddings;     /* tie_word_embeddings (1: lm_head shares the embedding) */
    double norm_eps;         /* rms_norm_eps (absent: 1e-6, Hugging Face's default) */
    double rope_theta;       /* rope_theta (absent: 10000); what the executors compute with */
    enum sim_dtype w_dtype;  /* weights and GEMMs (--dtype; default torch_dtype) */
    enum sim_dtype kv_dtype; /* KV cache (--kv-dtype; default = w_dtype, fp8 never implied) */
    int sliding_window;      /* sliding_window where in use (0: none); not modelled, noted */
} sim_model;

/* Loads a model by preset name (DATA/models/NAME.json) or by path to a
 * config.json. On an unknown name, *err lists the known presets. */
int sim_model_load(const char *name_or_path, const char *datadir, sim_model *out, sim_err *err);
/* Parses a config.json text already in memory; src names it in errors. */
int sim_model_parse(const char *json_text, const char *src, sim_model *out, sim_err *err);
/* Whether m attends through a sliding window shorter than its context,
 * which kvfleet does not model: 1 with a one-line note in buf (the KV cache
 * and attention are costed over the whole context), else 0. */
int sim_model_window_note(const sim_model *m, char *buf, size_t n);
/* Checks a shape (positive sizes, heads divisible by KV heads, TP divides heads).
 * SIM_EINVAL for a malformed shape or tp < 1; SIM_EINFEASIBLE when this tp
 * cannot split the model (heads, KV heads or the MLP), so a caller trying
 * several degrees (capacity) can skip this one. */
int sim_model_check(const sim_model *m, int tp, sim_err *err);

/* The RMSNorm epsilon and RoPE base the executors compute with: the
 * config's, or Hugging Face's defaults (1e-6, 10000) for a model built
 * without them (zero). */
double sim_model_norm_eps(const sim_model *m);
double sim_model_rope_theta(const sim_model *m);

/* Parameter count (embeddings, attention, MLP, norms, lm_head unless tied). */
double sim_model_params(const sim_model *m);
/* Weight bytes on one GPU at tensor parallel degree tp (w_dtype). */
double sim_model_weight_bytes(const sim_model *m, int tp);
/* KV bytes per token on one GPU at tp (2 x layers x kv_heads/tp x head_dim x kv bytes);
 * KV heads are replicated when tp > n_kv_heads. */
double sim_model_kv_bytes_per_token(const sim_model *m, int tp);

#ifdef __cplusplus
}
#endif
#endif /* SIM_MODEL_H */
