/* test_model.c: model presets, the parameter / weight / KV arithmetic, the
 * config.json parser's exact errors, and allocation-failure injection.
 *
 * `test_model --table` prints the presets table of docs/models-and-gpus.md
 * instead of testing. */
#include "config.h"
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkdir, rmdir */
#endif
#include "model.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json_util.h"
#include "mem.h"
#include "t.h"

#ifndef KV_SRCDATADIR
#define KV_SRCDATADIR "data"
#endif

static const char *const presets[] = {
    "llama-2-7b",    "llama-2-70b", "llama-3-8b",    "llama-3-70b", "llama-3.1-8b",
    "llama-3.1-70b", "qwen3-32b",   "codellama-34b", "tiny",
};
#define N_PRESETS (sizeof presets / sizeof presets[0])

static sim_model load(const char *name) {
    sim_model m;
    sim_err e;
    char buf[1200];
    int rc = sim_model_load(name, KV_SRCDATADIR, &m, &e);
    if (rc != SIM_OK) {
        sim_err_format(&e, buf, sizeof buf);
        T_FAIL_("load %s: %s (%s)", name, sim_strerror(rc), buf);
    }
    return m;
}

/* Parses text as "t.json" and checks the code and the formatted message. */
static void expect_err(const char *text, int code, const char *msg) {
    sim_model m;
    sim_err e;
    char buf[1200];
    int rc;

    memset(&m, 0x5a, sizeof m);
    rc = sim_model_parse(text, "t.json", &m, &e);
    sim_err_format(&e, buf, sizeof buf);
    if (rc != code)
        T_FAIL_("code %d (%s), want %d; message: %s", rc, sim_strerror(rc), code, buf);
    T_STREQ(buf, msg);
    T_EQ_I(m.n_layers, 0x5a5a5a5a); /* *out untouched on failure */
}

/* A minimal valid config. It has one key per line, so a test can swap or
 * drop a single key (all but the last, model_type, which keeps the commas
 * right). */
static const char base_cfg[] = "{\n"
                               "  \"num_hidden_layers\": 2,\n"
                               "  \"hidden_size\": 256,\n"
                               "  \"num_attention_heads\": 4,\n"
                               "  \"num_key_value_heads\": 2,\n"
                               "  \"intermediate_size\": 512,\n"
                               "  \"vocab_size\": 1024,\n"
                               "  \"max_position_embeddings\": 4096,\n"
                               "  \"torch_dtype\": \"bfloat16\",\n"
                               "  \"model_type\": \"llama\"\n"
                               "}\n";

/* base_cfg with the line holding key replaced by repl (NULL: dropped). */
static const char *cfg_with(const char *key, const char *repl) {
    static char out[2048];
    char pat[128];
    const char *p, *eol;
    size_t pre;

    snprintf(pat, sizeof pat, "\"%s\":", key);
    p = strstr(base_cfg, pat);
    T_ASSERT(p != NULL);
    while (p > base_cfg && p[-1] == ' ')
        p--;
    eol = strchr(p, '\n');
    pre = (size_t)(p - base_cfg);
    memcpy(out, base_cfg, pre);
    out[pre] = '\0';
    if (repl != NULL) {
        strcat(out, "  ");
        strcat(out, repl);
        if (eol[-1] == ',')
            strcat(out, ",");
        strcat(out, "\n");
    }
    strcat(out, eol + 1);
    return out;
}

/* tied_embeddings of base_cfg with its model_type line replaced by repl,
 * which must parse. */
static int tied_with(const char *repl) {
    sim_model m;
    sim_err e;
    T_EQ_I(sim_model_parse(cfg_with("model_type", repl), "t.json", &m, &e), SIM_OK);
    return m.tied_embeddings;
}

/* ---- presets ---- */

static void test_all_presets_load(void) {
    size_t i;
    sim_err e;
    for (i = 0; i < N_PRESETS; i++) {
        sim_model m = load(presets[i]);
        T_STREQ(m.name, presets[i]);
        T_EQ_I(sim_model_check(&m, 1, &e), SIM_OK);
        T_EQ_I(m.n_heads % m.n_kv_heads, 0);
        T_EQ_I(m.kv_dtype, m.w_dtype);
    }
}

/* A model's shape, field by field (failures name the caller's line). */
#define T_SHAPE(m, layers, hid, heads, kv_heads, hd, inter, voc, ctx)                              \
    do {                                                                                           \
        T_EQ_I((m).n_layers, layers);                                                              \
        T_EQ_I((m).hidden, hid);                                                                   \
        T_EQ_I((m).n_heads, heads);                                                                \
        T_EQ_I((m).n_kv_heads, kv_heads);                                                          \
        T_EQ_I((m).head_dim, hd);                                                                  \
        T_EQ_I((m).intermediate, inter);                                                           \
        T_EQ_I((m).vocab, voc);                                                                    \
        T_EQ_I((m).max_ctx, ctx);                                                                  \
    } while (0)

static void test_preset_fields(void) {
    sim_model m = load("llama-3-8b");
    T_SHAPE(m, 32, 4096, 32, 8, 128, 14336, 128256, 8192);
    T_EQ_I(m.tied_embeddings, 0);
    T_EQ_I(m.w_dtype, SIM_DT_BF16);

    m = load("llama-3.1-70b");
    T_EQ_I(m.max_ctx, 131072);
    T_EQ_I(m.n_layers, 80);
    T_EQ_I(m.intermediate, 28672);

    m = load("llama-2-7b");
    T_EQ_I(m.n_kv_heads, 32);
    T_EQ_I(m.vocab, 32000);
    T_EQ_I(m.w_dtype, SIM_DT_FP16);

    m = load("codellama-34b");
    T_EQ_I(m.n_layers, 48);
    T_EQ_I(m.hidden, 8192);
    T_EQ_I(m.n_heads, 64);
    T_EQ_I(m.n_kv_heads, 8);
    T_EQ_I(m.intermediate, 22016);
    T_EQ_I(m.vocab, 32000);
    T_EQ_I(m.max_ctx, 16384);

    m = load("tiny");
    T_SHAPE(m, 2, 256, 4, 2, 64, 512, 1024, 4096);
    T_EQ_I(m.w_dtype, SIM_DT_FP32);
}

/* Qwen3-32B: 64 heads x 128 = 8192 != hidden 5120, so head_dim must come
 * from the config, not from hidden / heads (= 80). */
static void test_qwen3_head_dim(void) {
    sim_model m = load("qwen3-32b");
    T_SHAPE(m, 64, 5120, 64, 8, 128, 25600, 151936, 40960);
    T_NEAR(sim_model_kv_bytes_per_token(&m, 1), 2.0 * 64 * 8 * 128 * 2, 0);
    /* q and o are 5120 x 8192 each. Qwen reports 32.8B parameters; the
     * checkpoint also holds per-head q/k norms (64 layers x 2 x 128 = 16384),
     * which are not counted. */
    T_NEAR(sim_model_params(&m), 32762106880.0, 0);
}

/* ---- arithmetic ---- */

static void test_params(void) {
    sim_model m = load("llama-3-8b");
    T_REL(sim_model_params(&m), 8.03e9, 0.005);
    T_NEAR(sim_model_params(&m), 8030261248.0, 0); /* safetensors total */
    m = load("llama-3.1-8b");
    T_NEAR(sim_model_params(&m), 8030261248.0, 0);
    m = load("llama-2-7b");
    T_REL(sim_model_params(&m), 6.74e9, 0.005);
    T_NEAR(sim_model_params(&m), 6738415616.0, 0);
    m = load("llama-3-70b");
    T_REL(sim_model_params(&m), 70.6e9, 0.005);
    T_NEAR(sim_model_params(&m), 70553706496.0, 0);
    m = load("llama-2-70b");
    T_NEAR(sim_model_params(&m), 68976648192.0, 0);
    m = load("codellama-34b");
    T_NEAR(sim_model_params(&m), 33743970304.0, 0);

    /* Tying drops one vocab x hidden matrix. */
    m = load("tiny");
    {
        double untied = sim_model_params(&m);
        m.tied_embeddings = 1;
        T_NEAR(untied - sim_model_params(&m), 1024.0 * 256, 0);
    }
}

static void test_weight_bytes(void) {
    sim_model m = load("llama-3-8b");
    double norms = 32.0 * 2 * 4096 + 4096;
    T_NEAR(sim_model_weight_bytes(&m, 1), 2.0 * 8030261248.0, 0);
    /* At tp 2 everything halves except the replicated norm vectors. */
    T_NEAR(sim_model_weight_bytes(&m, 2), 2.0 * ((8030261248.0 - norms) / 2 + norms), 0);
    m.w_dtype = SIM_DT_FP8;
    T_NEAR(sim_model_weight_bytes(&m, 1), 8030261248.0, 0);

    /* tp 16 > 8 KV heads: each GPU keeps one whole KV head for k and v. */
    m = load("llama-3-70b");
    {
        double h = 8192, L = 80;
        double per_layer = 2 * h * 8192 / 16 + 2 * h * 128 + 3 * h * 28672 / 16 + 2 * h;
        double want = L * per_layer + h + 2.0 * 128256 * h / 16;
        T_NEAR(sim_model_weight_bytes(&m, 16), 2 * want, 0);
    }
}

static void test_kv_bytes(void) {
    sim_model m = load("llama-3-8b");
    T_NEAR(sim_model_kv_bytes_per_token(&m, 1), 131072, 0); /* 2*32*8*128*2 */
    T_NEAR(sim_model_kv_bytes_per_token(&m, 2), 65536, 0);
    T_NEAR(sim_model_kv_bytes_per_token(&m, 8), 16384, 0);
    /* tp 16: one replicated KV head per GPU, no further saving. */
    T_NEAR(sim_model_kv_bytes_per_token(&m, 16), 16384, 0);
    m.kv_dtype = SIM_DT_FP8;
    T_NEAR(sim_model_kv_bytes_per_token(&m, 1), 65536, 0);
    m = load("llama-2-7b"); /* MHA, fp16 */
    T_NEAR(sim_model_kv_bytes_per_token(&m, 1), 2.0 * 32 * 32 * 128 * 2, 0);
    m = load("tiny"); /* fp32 */
    T_NEAR(sim_model_kv_bytes_per_token(&m, 1), 2.0 * 2 * 2 * 64 * 4, 0);
}

static void test_dtype(void) {
    enum sim_dtype d = SIM_DT_FP32;
    T_EQ_I(sim_dtype_bytes(SIM_DT_BF16), 2);
    T_EQ_I(sim_dtype_bytes(SIM_DT_FP16), 2);
    T_EQ_I(sim_dtype_bytes(SIM_DT_FP8), 1);
    T_EQ_I(sim_dtype_bytes(SIM_DT_FP32), 4);
    T_STREQ(sim_dtype_name(SIM_DT_BF16), "bf16");
    T_STREQ(sim_dtype_name(SIM_DT_FP16), "fp16");
    T_STREQ(sim_dtype_name(SIM_DT_FP8), "fp8");
    T_STREQ(sim_dtype_name(SIM_DT_FP32), "fp32");
    T_EQ_I(sim_dtype_parse("bfloat16", &d), SIM_OK);
    T_EQ_I(d, SIM_DT_BF16);
    T_EQ_I(sim_dtype_parse("float16", &d), SIM_OK);
    T_EQ_I(d, SIM_DT_FP16);
    T_EQ_I(sim_dtype_parse("float32", &d), SIM_OK);
    T_EQ_I(d, SIM_DT_FP32);
    T_EQ_I(sim_dtype_parse("float8_e4m3fn", &d), SIM_OK);
    T_EQ_I(d, SIM_DT_FP8);
    T_EQ_I(sim_dtype_parse("bf16", &d), SIM_OK);
    T_EQ_I(d, SIM_DT_BF16);
    T_EQ_I(sim_dtype_parse("fp8", &d), SIM_OK);
    T_EQ_I(d, SIM_DT_FP8);
    T_EQ_I(sim_dtype_parse("int8", &d), SIM_EINVAL);
    T_EQ_I(d, SIM_DT_FP8);
    T_EQ_I(sim_dtype_parse("BF16", &d), SIM_EINVAL);
    T_EQ_I(sim_dtype_parse(NULL, &d), SIM_EINVAL);
}

/* ---- parser defaults ---- */

static void test_parse_defaults(void) {
    sim_model m;
    sim_err e;

    T_EQ_I(sim_model_parse(base_cfg, "dir/base.json", &m, &e), SIM_OK);
    T_STREQ(m.name, "base");
    T_EQ_I(m.head_dim, 64);
    T_EQ_I(m.tied_embeddings, 0);

    /* No num_key_value_heads: multi-head attention. */
    T_EQ_I(sim_model_parse(cfg_with("num_key_value_heads", NULL), "t.json", &m, &e), SIM_OK);
    T_EQ_I(m.n_kv_heads, 4);

    /* head_dim null, as some configs write it, means hidden / heads. */
    T_EQ_I(sim_model_parse(cfg_with("num_key_value_heads", "\"num_key_value_heads\": 2, "
                                                           "\"head_dim\": null"),
                           "t.json", &m, &e),
           SIM_OK);
    T_EQ_I(m.head_dim, 64);
    T_EQ_I(sim_model_parse(cfg_with("num_key_value_heads", "\"num_key_value_heads\": 2, "
                                                           "\"head_dim\": 32"),
                           "t.json", &m, &e),
           SIM_OK);
    T_EQ_I(m.head_dim, 32);

    /* "dtype" (newer transformers) wins over "torch_dtype"; absent is bf16. */
    T_EQ_I(sim_model_parse(cfg_with("torch_dtype", "\"torch_dtype\": \"float32\", \"dtype\": "
                                                   "\"float16\""),
                           "t.json", &m, &e),
           SIM_OK);
    T_EQ_I(m.w_dtype, SIM_DT_FP16);
    T_EQ_I(m.kv_dtype, SIM_DT_FP16);
    T_EQ_I(
        sim_model_parse(cfg_with("torch_dtype", "\"dtype\": \"float8_e4m3fn\""), "t.json", &m, &e),
        SIM_OK);
    T_EQ_I(m.w_dtype, SIM_DT_FP8);
    T_EQ_I(sim_model_parse(cfg_with("torch_dtype", NULL), "t.json", &m, &e), SIM_OK);
    T_EQ_I(m.w_dtype, SIM_DT_BF16);
    /* "auto" (the checkpoint's own) names nothing: bf16 too, as absent */
    m.w_dtype = SIM_DT_FP32;
    T_EQ_I(sim_model_parse(cfg_with("torch_dtype", "\"torch_dtype\": \"auto\""), "t.json", &m, &e),
           SIM_OK);
    T_EQ_I(m.w_dtype, SIM_DT_BF16);
    T_EQ_I(m.kv_dtype, SIM_DT_BF16);
    m.w_dtype = SIM_DT_FP32;
    T_EQ_I(sim_model_parse(cfg_with("torch_dtype", "\"dtype\": \"auto\""), "t.json", &m, &e),
           SIM_OK);
    T_EQ_I(m.w_dtype, SIM_DT_BF16);

    T_EQ_I(
        sim_model_parse(cfg_with("torch_dtype", "\"tie_word_embeddings\": true"), "t.json", &m, &e),
        SIM_OK);
    T_EQ_I(m.tied_embeddings, 1);

    /* no tie_word_embeddings: Hugging Face's default for the model_type, true
     * for Gemma (google/gemma-3-1b-it's config.json has no such key, yet its
     * lm_head is the embedding), false for Llama and the others */
    T_EQ_I(tied_with("\"model_type\": \"gemma3_text\""), 1);
    T_EQ_I(tied_with("\"model_type\": \"gemma2\""), 1);
    T_EQ_I(tied_with("\"model_type\": \"mistral\""), 0);
    T_EQ_I(tied_with("\"architectures\": [\"X\"]"), 0);
    /* the config's own key wins */
    T_EQ_I(tied_with("\"tie_word_embeddings\": false, \"model_type\": \"gemma\""), 0);

    /* sliding_window: kept (and noted) unless null or use_sliding_window is false */
    {
        char note[256];
        T_EQ_I(sim_model_parse(base_cfg, "t.json", &m, &e), SIM_OK);
        T_EQ_I(m.sliding_window, 0);
        T_EQ_I(sim_model_window_note(&m, note, sizeof note), 0);
        T_EQ_I(
            sim_model_parse(cfg_with("torch_dtype", "\"sliding_window\": 1024"), "t.json", &m, &e),
            SIM_OK);
        T_EQ_I(m.sliding_window, 1024);
        T_EQ_I(sim_model_window_note(&m, note, sizeof note), 1);
        T_STREQ(note, "t attends through a sliding window of 1024 tokens, which is not modelled: "
                      "its KV cache and attention are costed over the whole context, so "
                      "overestimated beyond 1024 tokens");
        T_EQ_I(
            sim_model_parse(cfg_with("torch_dtype", "\"sliding_window\": 4096"), "t.json", &m, &e),
            SIM_OK);
        T_EQ_I(sim_model_window_note(&m, note, sizeof note), 0); /* not shorter than the context */
        T_EQ_I(sim_model_parse(cfg_with("torch_dtype", "\"sliding_window\": 1024, "
                                                       "\"use_sliding_window\": false"),
                               "t.json", &m, &e),
               SIM_OK);
        T_EQ_I(m.sliding_window, 0);
        T_EQ_I(
            sim_model_parse(cfg_with("torch_dtype", "\"sliding_window\": null"), "t.json", &m, &e),
            SIM_OK);
        T_EQ_I(m.sliding_window, 0);
    }

    /* rms_norm_eps and rope_theta: the config's, else 1e-6 and 10000 */
    T_EQ_I(sim_model_parse(cfg_with("torch_dtype", "\"rms_norm_eps\": 1e-05, \"rope_theta\": "
                                                   "500000.0"),
                           "t.json", &m, &e),
           SIM_OK);
    T_ASSERT(m.norm_eps == 1e-5 && m.rope_theta == 500000.0);
    T_ASSERT(sim_model_norm_eps(&m) == 1e-5 && sim_model_rope_theta(&m) == 500000.0);
    T_EQ_I(sim_model_parse(cfg_with("torch_dtype", "\"rope_theta\": 1000000"), "t.json", &m, &e),
           SIM_OK);
    T_ASSERT(m.norm_eps == 1e-6 && m.rope_theta == 1e6);
    m.norm_eps = m.rope_theta = 0.0; /* a model built without them */
    T_ASSERT(sim_model_norm_eps(&m) == 1e-6 && sim_model_rope_theta(&m) == 10000.0);

    /* A Hugging Face snapshot's config.json is named after its folder. */
    T_EQ_I(sim_model_parse(base_cfg, "/hf/Qwen3-32B/config.json", &m, &e), SIM_OK);
    T_STREQ(m.name, "Qwen3-32B");
}

/* ---- parser errors: exact code and message ---- */

static void test_parse_errors(void) {
    expect_err("{\n  \"hidden_size\": 4096,\n  \"vocab_size\": }\n", SIM_EPARSE,
               "t.json:3:17: syntax: unexpected token near '}'");
    expect_err("{\n  \"hidden_size\": 4096\n  \"vocab_size\": 3\n}\n", SIM_EPARSE,
               "t.json:3:14: syntax: expected '}', got '\"vocab_size\"'");
    expect_err("", SIM_EPARSE, "t.json:1: syntax: expected '[' or '{', got end of file");
    expect_err("{\"hidden_size\": 1, \"hidden_size\": 2}", SIM_EPARSE,
               "t.json:1:32: syntax: duplicate object key near '\"hidden_size\"'");
    expect_err("[1, 2]", SIM_EPARSE, "t.json: top level: expected a JSON object, got '[1,2]'");

    expect_err(cfg_with("num_hidden_layers", NULL), SIM_EPARSE,
               "t.json: num_hidden_layers: expected a positive integer, got nothing (missing "
               "key)");
    expect_err(cfg_with("hidden_size", "\"hidden_size\": \"abc\""), SIM_EPARSE,
               "t.json: hidden_size: expected a positive integer, got '\"abc\"'");
    expect_err(cfg_with("hidden_size", "\"hidden_size\": 256.0"), SIM_EPARSE,
               "t.json: hidden_size: expected a positive integer, got '256.0'");
    expect_err(cfg_with("hidden_size", "\"hidden_size\": null"), SIM_EPARSE,
               "t.json: hidden_size: expected a positive integer, got 'null'");
    expect_err(cfg_with("hidden_size", "\"hidden_size\": 0"), SIM_EINVAL,
               "t.json: hidden_size: expected a positive integer, got '0'");
    expect_err(cfg_with("vocab_size", "\"vocab_size\": 4294967296"), SIM_EINVAL,
               "t.json: vocab_size: expected an integer in [1, 2147483647], got '4294967296'");
    expect_err(cfg_with("num_key_value_heads", "\"num_key_value_heads\": 3"), SIM_EINVAL,
               "t.json: num_key_value_heads: expected a divisor of num_attention_heads (4) so "
               "each KV head serves a whole group of query heads, got '3'");
    expect_err(cfg_with("num_attention_heads", "\"num_attention_heads\": 3"), SIM_EPARSE,
               "t.json: head_dim: expected a positive integer because hidden_size (256) is not a "
               "multiple of num_attention_heads (3), got nothing (missing key)");
    expect_err(cfg_with("torch_dtype", "\"torch_dtype\": \"int8\""), SIM_EINVAL,
               "t.json: torch_dtype: expected one of bf16, bfloat16, fp16, float16, half, fp32, "
               "float32, float, fp8, float8_e4m3fn, fp8_e4m3, float8_e5m2, fp8_e5m2, got "
               "'\"int8\"'");
    expect_err(cfg_with("torch_dtype", "\"dtype\": 16"), SIM_EPARSE,
               "t.json: dtype: expected a string, got '16'");
    expect_err(cfg_with("torch_dtype", "\"tie_word_embeddings\": 1"), SIM_EPARSE,
               "t.json: tie_word_embeddings: expected true or false, got '1'");
    expect_err(cfg_with("torch_dtype", "\"rms_norm_eps\": 0"), SIM_EINVAL,
               "t.json: rms_norm_eps: expected a positive number, got '0'");
    expect_err(cfg_with("torch_dtype", "\"rope_theta\": \"1e4\""), SIM_EPARSE,
               "t.json: rope_theta: expected a positive number, got '\"1e4\"'");
    expect_err(cfg_with("torch_dtype", "\"num_local_experts\": 8"), SIM_ENOTSUP,
               "t.json: num_local_experts: expected a dense model (no experts), got '8'");
}

/* ---- multimodal configs: the language model under text_config ---- */

/* A config of top-level keys top (each followed by ", ") and text_config
 * body text (NULL: none), with a vision_config whose keys must be ignored. */
static const char *mm_cfg(const char *top, const char *text) {
    static char out[2048];
    snprintf(out, sizeof out,
             "{%s%s%s%s\"vision_config\": {\"hidden_size\": 1152, \"num_hidden_layers\": 27, "
             "\"num_attention_heads\": 16, \"intermediate_size\": 4304}}",
             top, text ? "\"text_config\": {" : "", text ? text : "", text ? "}, " : "");
    return out;
}

#define MM_TEXT                                                                                    \
    "\"num_hidden_layers\": 2, \"hidden_size\": 256, \"num_attention_heads\": 4, "                 \
    "\"num_key_value_heads\": 2, \"intermediate_size\": 512, \"vocab_size\": 1024, "               \
    "\"max_position_embeddings\": 4096"

static void test_text_config(void) {
    sim_model m;
    sim_err e;
    char buf[1200];

    /* tests/data/mm_text_config.json, laid out as Gemma 3 4b's config.json:
     * 4 layers, hidden 512, 8 heads of 128, 2 KV heads, MLP 1024, vocab
     * 2048, tied (model_type gemma3), float32 given at the top level only.
     * Per layer 2*512*1024 (q, o) + 2*512*256 (k, v) + 3*512*1024 (MLP) +
     * 2*512 (norms) = 2884608; 4 layers + 512 (final norm) + 2048*512
     * (tied embedding) = 12587520. KV: 2 * 4 layers * 2 heads * 128 * 4
     * bytes = 8192 per token. It failed with "num_hidden_layers: expected a
     * positive integer, got nothing (missing key)". */
    m = load(KV_TEST_DATADIR "/mm_text_config.json");
    T_STREQ(m.name, "mm_text_config");
    T_SHAPE(m, 4, 512, 8, 2, 128, 1024, 2048, 8192);
    T_EQ_I(m.sliding_window, 1024);
    T_EQ_I(m.tied_embeddings, 1);
    T_EQ_I(m.w_dtype, SIM_DT_FP32);
    T_EQ_I(m.kv_dtype, SIM_DT_FP32);
    T_NEAR(m.rope_theta, 1e6, 0);
    T_NEAR(sim_model_params(&m), 12587520.0, 0);
    T_NEAR(sim_model_kv_bytes_per_token(&m, 1), 8192, 0);
    T_NEAR(sim_model_kv_bytes_per_token(&m, 2), 4096, 0);

    /* tests/data/gemma3_class_defaults.json, laid out as google/gemma-3-4b-it's
     * config.json: its text_config gives only the keys that differ from
     * Gemma3TextConfig's defaults, and transformers fills in the rest (8
     * heads of 256, 4 KV heads, vocab 262208, context 131072). Per layer
     * 2*2560*2048 (q, o) + 2*2560*1024 (k, v) + 3*2560*10240 (MLP) + 2*2560
     * = 94376960; 34 layers + 2560 + 262208*2560 (tied) = 3880071680. KV:
     * 2 * 34 * 4 * 256 * 2 bytes = 139264 per token. It failed with
     * "text_config.num_attention_heads: expected a positive integer, got
     * nothing (missing key)". */
    m = load(KV_TEST_DATADIR "/gemma3_class_defaults.json");
    T_SHAPE(m, 34, 2560, 8, 4, 256, 10240, 262208, 131072);
    T_EQ_I(m.sliding_window, 1024);
    T_EQ_I(m.tied_embeddings, 1);
    T_EQ_I(m.w_dtype, SIM_DT_BF16);
    T_NEAR(m.rope_theta, 1e6, 0);
    T_NEAR(sim_model_params(&m), 3880071680.0, 0);
    T_NEAR(sim_model_kv_bytes_per_token(&m, 1), 139264, 0);
    /* a key the config gives wins over the class's default; another class
     * still needs every key */
    T_EQ_I(sim_model_parse(mm_cfg("", "\"model_type\": \"gemma3_text\", \"num_hidden_layers\": 2, "
                                      "\"num_attention_heads\": 4, \"head_dim\": null"),
                           "t.json", &m, &e),
           SIM_OK);
    T_EQ_I(m.n_layers, 2);
    T_EQ_I(m.n_heads, 4);
    T_EQ_I(m.hidden, 2304);
    T_EQ_I(m.head_dim, 256);
    expect_err(mm_cfg("", "\"model_type\": \"llama\", \"num_hidden_layers\": 2"), SIM_EPARSE,
               "t.json: text_config.hidden_size: expected a positive integer, got nothing "
               "(missing key)");

    /* Neither the keys at the top level nor a text_config: the missing key
     * is named, as for any config. */
    T_EQ_I(sim_model_load(KV_TEST_DATADIR "/mm_no_text_config.json", KV_SRCDATADIR, &m, &e),
           SIM_EPARSE);
    sim_err_format(&e, buf, sizeof buf);
    T_STREQ(buf, KV_TEST_DATADIR "/mm_no_text_config.json: num_hidden_layers: expected a "
                                 "positive integer, got nothing (missing key)");

    /* The top level wins over text_config, key by key (null there is absent). */
    T_EQ_I(sim_model_parse(mm_cfg("\"num_hidden_layers\": 6, \"head_dim\": null, ", MM_TEXT),
                           "t.json", &m, &e),
           SIM_OK);
    T_EQ_I(m.n_layers, 6);
    T_EQ_I(m.hidden, 256);
    T_EQ_I(m.head_dim, 64);
    T_EQ_I(m.tied_embeddings, 0);
    T_EQ_I(m.w_dtype, SIM_DT_BF16);
    /* dtype: text_config's when the top level names none, else the top's */
    T_EQ_I(sim_model_parse(mm_cfg("", MM_TEXT ", \"torch_dtype\": \"float16\""), "t.json", &m, &e),
           SIM_OK);
    T_EQ_I(m.w_dtype, SIM_DT_FP16);
    T_EQ_I(sim_model_parse(
               mm_cfg("\"torch_dtype\": \"float32\", ", MM_TEXT ", \"dtype\": \"float16\""),
               "t.json", &m, &e),
           SIM_OK);
    T_EQ_I(m.w_dtype, SIM_DT_FP32);
    /* model_type gemma3_text in text_config ties the embeddings */
    T_EQ_I(
        sim_model_parse(mm_cfg("", MM_TEXT ", \"model_type\": \"gemma3_text\""), "t.json", &m, &e),
        SIM_OK);
    T_EQ_I(m.tied_embeddings, 1);
    /* an empty top level and a null text_config: no text_config */
    T_EQ_I(sim_model_parse("{\"text_config\": null, " MM_TEXT "}", "t.json", &m, &e), SIM_OK);
    T_EQ_I(m.n_layers, 2);

    /* Errors in text_config name the key there. */
    expect_err(mm_cfg("", "\"hidden_size\": 256"), SIM_EPARSE,
               "t.json: text_config.num_hidden_layers: expected a positive integer, got nothing "
               "(missing key)");
    expect_err(mm_cfg("", "\"num_hidden_layers\": 2, \"hidden_size\": \"abc\""), SIM_EPARSE,
               "t.json: text_config.hidden_size: expected a positive integer, got '\"abc\"'");
    expect_err(mm_cfg("", MM_TEXT ", \"num_local_experts\": 16"), SIM_ENOTSUP,
               "t.json: text_config.num_local_experts: expected a dense model (no experts), got "
               "'16'");
    expect_err(mm_cfg("", MM_TEXT ", \"torch_dtype\": \"int4\""), SIM_EINVAL,
               "t.json: text_config.torch_dtype: expected one of bf16, bfloat16, fp16, float16, "
               "half, fp32, float32, float, fp8, float8_e4m3fn, fp8_e4m3, float8_e5m2, fp8_e5m2, "
               "got '\"int4\"'");
    expect_err(mm_cfg("\"text_config\": 3, ", NULL), SIM_EPARSE,
               "t.json: text_config: expected an object (the language model's keys) or null, got "
               "'3'");
}

static void test_check_tp(void) {
    sim_model m = load("llama-3-8b");
    sim_err e;
    char buf[1200];

    T_EQ_I(sim_model_check(&m, 1, &e), SIM_OK);
    T_EQ_I(sim_model_check(&m, 2, &e), SIM_OK);
    T_EQ_I(sim_model_check(&m, 8, &e), SIM_OK);
    T_EQ_I(sim_model_check(&m, 16, &e), SIM_OK); /* KV heads replicated twice */
    T_EQ_I(sim_model_check(&m, 32, &e), SIM_OK);

    T_EQ_I(sim_model_check(&m, 3, &e), SIM_EINFEASIBLE);
    sim_err_format(&e, buf, sizeof buf);
    T_STREQ(buf, "llama-3-8b: tp: expected a divisor of num_attention_heads (32) so each GPU "
                 "holds whole heads, got '3'");
    T_EQ_I(sim_model_check(&m, 0, &e), SIM_EINVAL);
    sim_err_format(&e, buf, sizeof buf);
    T_STREQ(buf, "llama-3-8b: tp: expected a positive integer, got '0'");
    T_EQ_I(sim_model_check(&m, 64, &e), SIM_EINFEASIBLE);
    sim_err_format(&e, buf, sizeof buf);
    T_STREQ(buf, "llama-3-8b: tp: expected a divisor of num_attention_heads (32) so each GPU "
                 "holds whole heads, got '64'");

    /* The MLP must split evenly. */
    m.intermediate = 14338;
    T_EQ_I(sim_model_check(&m, 4, &e), SIM_EINFEASIBLE);
    sim_err_format(&e, buf, sizeof buf);
    T_STREQ(buf, "llama-3-8b: tp: expected a divisor of intermediate_size (14338) so the MLP "
                 "splits evenly, got '4'");

    /* 12 query heads, 4 KV heads: tp 6 neither splits nor replicates evenly;
     * tp 2 leaves 2 KV heads per GPU; tp 12 replicates each KV head 3 times. */
    m = load("tiny");
    m.n_heads = 12;
    m.n_kv_heads = 4;
    m.hidden = 768;
    m.intermediate = 1536;
    T_EQ_I(sim_model_check(&m, 2, &e), SIM_OK);
    T_EQ_I(sim_model_check(&m, 12, &e), SIM_OK);
    T_EQ_I(sim_model_check(&m, 6, &e), SIM_EINFEASIBLE);
    sim_err_format(&e, buf, sizeof buf);
    T_STREQ(buf, "tiny: tp: expected a multiple of num_key_value_heads (4) when larger, so each "
                 "KV head is replicated evenly, got '6'");
    m.n_kv_heads = 6;
    T_EQ_I(sim_model_check(&m, 4, &e), SIM_EINFEASIBLE);
    sim_err_format(&e, buf, sizeof buf);
    T_STREQ(buf, "tiny: tp: expected a divisor of num_key_value_heads (6) so each GPU holds whole "
                 "KV heads, got '4'");
    m.vocab = 0;
    T_EQ_I(sim_model_check(&m, 1, &e), SIM_EINVAL);
    sim_err_format(&e, buf, sizeof buf);
    T_STREQ(buf, "tiny: vocab_size: expected a positive integer, got '0'");
}

/* ---- loading ---- */

static void test_load_paths(void) {
    sim_model m;
    sim_err e;
    char buf[1200], want[1200];
    FILE *f;
    int rc;

    /* By path. */
    T_EQ_I(sim_model_load(KV_SRCDATADIR "/models/tiny.json", KV_SRCDATADIR, &m, &e), SIM_OK);
    T_STREQ(m.name, "tiny");

    /* A directory holding config.json (a Hugging Face snapshot). */
    remove("test_model.dir/config.json"); /* left over from an interrupted run */
    rmdir("test_model.dir");
    T_EQ_I(mkdir("test_model.dir", 0755), 0);
    f = fopen("test_model.dir/config.json", "w");
    T_ASSERT(f != NULL);
    fputs(base_cfg, f);
    fclose(f);
    rc = sim_model_load("test_model.dir", KV_SRCDATADIR, &m, &e);
    remove("test_model.dir/config.json");
    rmdir("test_model.dir");
    T_EQ_I(rc, SIM_OK);
    T_STREQ(m.name, "test_model.dir");
    T_EQ_I(m.hidden, 256);

    /* An unknown name lists the presets, sorted. */
    T_EQ_I(sim_model_load("llama-9", KV_SRCDATADIR, &m, &e), SIM_ENOENT);
    sim_err_format(&e, buf, sizeof buf);
    snprintf(want, sizeof want,
             "%s/models: model: expected a preset name (codellama-34b, llama-2-70b, llama-2-7b, "
             "llama-3-70b, llama-3-8b, llama-3.1-70b, llama-3.1-8b, qwen3-32b, tiny) or a path "
             "to a config.json, got 'llama-9'",
             KV_SRCDATADIR);
    T_STREQ(buf, want);

    /* A path that does not exist is named as the error's source, and the
     * message says it is missing (still listing the presets). */
    T_EQ_I(sim_model_load("no/such/config.json", KV_SRCDATADIR, &m, &e), SIM_ENOENT);
    T_STREQ(e.src, "no/such/config.json");
    T_CONTAINS(e.msg, "model: no such file or folder (expected a path to a config.json, or a "
                      "preset name: codellama-34b,");

    /* Errors inside a file name the file. */
    T_EQ_I(sim_model_load(KV_SRCDATADIR "/gpus/h100-sxm.json", KV_SRCDATADIR, &m, &e), SIM_EPARSE);
    T_STREQ(e.src, KV_SRCDATADIR "/gpus/h100-sxm.json");
    T_STREQ(e.msg, "num_hidden_layers: expected a positive integer, got nothing (missing key)");
}

/* ---- fault injection: every allocation failure is clean ---- */

static void fault_loop(const char *name, int want) {
    size_t base = sim_mem_current();
    uint64_t k;
    int rc = SIM_ENOMEM;

    for (k = 1; k < 1000; k++) {
        sim_model m;
        sim_err e;
        sim_mem_fail_at(k);
        rc = sim_model_load(name, KV_SRCDATADIR, &m, &e);
        sim_mem_fail_at(0);
        T_EQ_I(sim_mem_current(), base);
        if (rc == want)
            break;
        T_EQ_I(rc, SIM_ENOMEM);
    }
    T_EQ_I(rc, want);
    T_ASSERT(k > 1); /* at least one allocation was made to fail */
}

static void test_fault_injection(void) {
    fault_loop("llama-3-8b", SIM_OK);
    fault_loop("llama-9", SIM_ENOENT); /* the preset list allocates */
}

/* ---- the docs table ---- */

/* Parameters as "8.030B" or "1.71M". */
static void fmt_params(double p, char *buf, size_t n) {
    if (p >= 1e9)
        snprintf(buf, n, "%.3fB", p / 1e9);
    else
        snprintf(buf, n, "%.2fM", p / 1e6);
}

static void print_table(void) {
    size_t i;
    char params[32];

    printf("| preset | layers | hidden | heads / KV | head_dim | intermediate | vocab | context | "
           "params | weights GB (bf16) | KV bytes/token (bf16) |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (i = 0; i < N_PRESETS; i++) {
        sim_model m = load(presets[i]);
        m.w_dtype = SIM_DT_BF16;
        m.kv_dtype = SIM_DT_BF16;
        fmt_params(sim_model_params(&m), params, sizeof params);
        printf("| %s | %d | %d | %d / %d | %d | %d | %d | %d | %s | %.3g | %.0f |\n", m.name,
               m.n_layers, m.hidden, m.n_heads, m.n_kv_heads, m.head_dim, m.intermediate, m.vocab,
               m.max_ctx, params, sim_model_weight_bytes(&m, 1) / 1e9,
               sim_model_kv_bytes_per_token(&m, 1));
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--table") == 0) {
        print_table();
        return 0;
    }
    test_dtype();
    test_all_presets_load();
    test_preset_fields();
    test_qwen3_head_dim();
    test_params();
    test_weight_bytes();
    test_kv_bytes();
    test_parse_defaults();
    test_parse_errors();
    test_text_config();
    test_check_tp();
    test_load_paths();
    test_fault_injection();
    T_EQ_I(sim_mem_current(), 0);
    printf("test_model: ok\n");
    return 0;
}
