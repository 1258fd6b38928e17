/* be_cpu.h: the cpu executor: the whole model's arithmetic on the CPU in
 * fp32 with the kernels' CPU references, for tiny model shapes, so that
 * tests run the executor switch end to end without a GPU.
 *
 * Its step durations are its own measured CPU times: any error computed
 * against a GPU prediction is a plumbing check, not a fidelity figure. The
 * declarations below past be_cpu_ops serve its test (tests/test_be_cpu.c),
 * which checks the output against a dense forward pass. */
#ifndef RT_BE_CPU_H
#define RT_BE_CPU_H

#include <stdint.h>

#include "be.h"
#include "model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The cpu executor (always built). */
extern const struct be_ops be_cpu_ops;

/* Largest model the cpu executor opens, parameters. */
#define BE_CPU_MAX_PARAMS 64e6
/* Largest KV pool of one replica, bytes (fp32 K and V of every layer). */
#define BE_CPU_KV_MAX_BYTES (256.0 * 1048576.0)
/* One layer's weights, fp32, each matrix (out, in) as nn.Linear stores it. */
typedef struct be_cpu_layer {
    float *attn_norm; /* (hidden) */
    float *wqkv;      /* ((H + 2 Hkv) D, hidden): q rows, then k, then v */
    float *wo;        /* (hidden, H D) */
    float *mlp_norm;  /* (hidden) */
    float *w_gate_up; /* (2 I, hidden): gate rows, then up rows */
    float *w_down;    /* (hidden, I) */
} be_cpu_layer;

/* The random model (borrowed from the backend until be_close). */
typedef struct be_cpu_weights {
    int n_layers, hidden, n_heads, n_kv_heads, head_dim, inter, vocab;
    int max_pos;         /* rows of the RoPE table: the model's context */
    float norm_eps;      /* the model's rms_norm_eps (sim_model_norm_eps) */
    double rope_theta;   /* the model's rope_theta (sim_model_rope_theta) */
    float *embed;        /* (V, hidden) */
    be_cpu_layer *layer; /* (n_layers) */
    float *final_norm;   /* (hidden) */
    float *lm_head;      /* (V, hidden); equals embed when the model ties them */
    float *rope;         /* (max_pos, D) cos|sin table (kern_rope_cache_ref) */
} be_cpu_weights;

/* One sampled row of a step: the model's output for the token at pos. */
typedef struct be_cpu_sample {
    uint64_t req_id; /* request */
    int64_t pos;     /* position of the input token whose successor was sampled */
    int32_t token;   /* argmax of the logits */
} be_cpu_sample;

/* The token at position pos of request req_id: traces carry no text, so
 * every token (prompt or generated) is a hash of the pair, in [0, vocab). */
int32_t be_cpu_token(uint64_t req_id, int64_t pos, int vocab);
/* Most KV blocks of block_tokens tokens that BE_CPU_KV_MAX_BYTES hold for m. */
int64_t be_cpu_kv_blocks_max(const sim_model *m, int block_tokens);
/* The weights of an open cpu backend (ctx is be.ctx); borrowed until close. */
const be_cpu_weights *be_cpu_weights_get(const void *ctx);
/* The sampled rows of the last step: returns their count n and points
 * *samples at n records and *hidden at (n, hidden) final-normed hidden
 * states, both borrowed until the next step. */
int be_cpu_last_samples(const void *ctx, const be_cpu_sample **samples, const float **hidden);

#ifdef __cplusplus
}
#endif
#endif /* RT_BE_CPU_H */
