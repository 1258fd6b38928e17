/* kern.h: the plain C interface of kernels/ (the only header C code includes).
 *
 * Every op has a CPU reference (kern_<op>_ref_*, always built) and a CUDA
 * launcher (kern_<op>(), defined only when configure found CUDA, i.e. when
 * config.h defines KV_HAVE_CUDA; callers test that macro). Launchers take
 * device pointers (d_), run asynchronously on the given stream (a
 * cudaStream_t passed as void *; NULL is the legacy default stream) and
 * return SIM_OK, SIM_EINVAL for bad arguments, SIM_ENOTSUP for a dtype or
 * feature the device or kernel lacks, or SIM_EDEVICE when a CUDA or cuBLAS
 * call failed. Failures never abort: the failing statement, function, file,
 * line and the CUDA error text are kept for kern_last_error(). Launchers
 * check what the host can see (sizes, pointers, dtypes); index arrays in
 * device memory (block tables, slots, positions) are the caller's contract,
 * which the references check, so the cpu executor catches a bad table.
 * Device memory is allocated by the caller ahead of time (workspaces
 * included), never by a launcher.
 *
 * Tensors are dense and row-major; shapes are written (T, H) with T the
 * number of tokens and H the hidden size. bf16 values travel as their 16 bit
 * pattern (kern_bf16) so that C code needs no CUDA header.
 *
 * Non-goals: this header names no CUDA type, and kernels/ knows nothing of
 * requests, batches or time. Valid C11 and C++ (nvcc sees it). */
#ifndef KERN_KERN_H
#define KERN_KERN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element types of device tensors. */
enum kern_dtype {
    KERN_DT_F32 = 0,      /* IEEE binary32 */
    KERN_DT_BF16 = 1,     /* bfloat16: the top 16 bits of a binary32 */
    KERN_DT_FP8_E4M3 = 2, /* OCP FP8 E4M3 (bias 7, max 448, no infinities) */
};

/* A bfloat16 value as its bit pattern (sign, 8 exponent bits, 7 mantissa). */
typedef uint16_t kern_bf16;
/* An FP8 E4M3 value as its bit pattern (sign, 4 exponent bits, 3 mantissa). */
typedef uint8_t kern_fp8;

/* ---- errors and devices (kern.c; always built) ---- */

/* The last recorded device error of this thread, "" when none; borrowed
 * until the next kernels/ call on this thread. */
const char *kern_last_error(void);
/* Records a failure (used by KERN_CHECK); what may be NULL. */
void kern_error_record(const char *stmt, const char *func, const char *file, int line,
                       const char *what);
/* Forgets the recorded error of this thread. */
void kern_error_clear(void);
/* Number of usable CUDA devices; 0 (reason in kern_last_error()) when built
 * without CUDA, when there is no driver, or when there is no device. */
int kern_device_count(void);

/* ---- dtypes (kern.c; always built) ---- */

/* Bytes per element of dtype; 0 for an unknown dtype. */
size_t kern_dtype_size(int dtype);
/* Rounds f to the nearest bf16, ties to even; NaN stays a (quiet) NaN. */
kern_bf16 kern_bf16_from_f32(float f);
/* Widens b to binary32 (exact). */
float kern_f32_from_bf16(kern_bf16 b);
/* Rounds f to the nearest E4M3, ties to even, saturating to +-448; NaN -> NaN. */
kern_fp8 kern_fp8_from_f32(float f);
/* Widens an E4M3 value to binary32 (exact; 0x7f and 0xff are NaN). */
float kern_f32_from_fp8(kern_fp8 b);

/* ---- paged KV cache layout (kern.c; always built) ----
 *
 * Dimension legend:
 *     L    layers (n_layers)
 *     NB   blocks per layer pool (n_blocks); a block id names the same
 *          block in every layer
 *     bs   tokens per block (block_size)
 *     Hkv  KV heads (n_kv_heads)
 *     D    head dimension (head_dim)
 *
 * The device cache is one allocation holding one pool per layer:
 *
 *     cache (L, NB, 2, Hkv, bs, D)    [layer][block][K = 0, V = 1][kv head][slot][dim]
 *
 * (FlashInfer's "HND" page layout, vLLM's block granularity). Token t of a
 * sequence with block table row bt lives in block bt[t / bs] at slot
 * t % bs; a (block, K|V, kv head) tile of bs x D elements is contiguous
 * (4 KiB for bs = 16, D = 128, bf16), so a thread block that owns one KV
 * head reads whole tiles, coalesced. Kernels take one layer's pool, the
 * cache pointer advanced by layer * kern_kv_layer_stride() elements. A slot
 * mapping entry is block * bs + slot.
 *
 * Host swap space is a pool of slots, each one block for all layers:
 *
 *     host (n_slots, L, 2, Hkv, bs, D)
 *
 * so a run of consecutive host slots is one contiguous PCIe copy. */
typedef struct kern_kv_layout {
    int n_layers;   /* L, >= 1 */
    int n_blocks;   /* NB, >= 1 */
    int block_size; /* bs, tokens per block, >= 1 */
    int n_kv_heads; /* Hkv, >= 1 */
    int head_dim;   /* D, >= 1 */
    int dtype;      /* enum kern_dtype of K and V */
} kern_kv_layout;

/* SIM_OK when every field is in range and the cache size fits in size_t. */
int kern_kv_layout_check(const kern_kv_layout *kv);
/* Elements between consecutive blocks of one layer: 2 * Hkv * bs * D. */
size_t kern_kv_block_stride(const kern_kv_layout *kv);
/* Elements between consecutive layers: NB * kern_kv_block_stride(). */
size_t kern_kv_layer_stride(const kern_kv_layout *kv);
/* Bytes of the whole device cache: L * layer stride * element size. */
size_t kern_kv_cache_bytes(const kern_kv_layout *kv);
/* Bytes of one host slot or staging entry: one block of every layer. */
size_t kern_kv_slot_bytes(const kern_kv_layout *kv);
/* Element offset in the cache of (layer, block, kv: 0 = K, 1 = V, head,
 * slot, dim 0). */
size_t kern_kv_offset(const kern_kv_layout *kv, int layer, int block, int kv_sel, int head,
                      int slot);

/* ---- RMSNorm (rmsnorm_ref.c; always built) ---- */

/* out (T, H) = in (T, H) / sqrt(mean(in^2) + eps) * w (H), in fp32. */
void kern_rmsnorm_ref_f32(float *out, const float *in, const float *w, int n_tokens, int hidden,
                          float eps);
/* The same on bf16 tensors: fp32 arithmetic, one rounding per output. */
void kern_rmsnorm_ref_bf16(kern_bf16 *out, const kern_bf16 *in, const kern_bf16 *w, int n_tokens,
                           int hidden, float eps);

/* ---- GEMM reference (gemm_ref.c; always built) ---- */

/* y (M, N) = scale * x (M, K) . w (N, K)^T, fp32 sums, one bf16 rounding. */
void kern_gemm_ref_bf16(kern_bf16 *y, const kern_bf16 *x, const kern_bf16 *w, int m, int n, int k,
                        float scale);
/* The same from E4M3 inputs (scale = x_scale * w_scale dequantises). */
void kern_gemm_ref_fp8(kern_bf16 *y, const kern_fp8 *x, const kern_fp8 *w, int m, int n, int k,
                       float scale);
/* y (M, N) = scale * x (M, K) . w (N, K)^T on fp32 storage, no rounding
 * (the cpu executor's precision). */
void kern_gemm_ref_f32(float *y, const float *x, const float *w, int m, int n, int k, float scale);

/* ---- attention references (paged_attn_ref.c, prefill_attn_ref.c) ----
 *
 * Dimension legend (also that of the launchers below):
 *     S    sequences (n_seqs)
 *     T    query tokens (n_tokens)
 *     H    query heads (n_heads)
 *     Hkv  KV heads; G = H / Hkv query heads per KV head
 *     D    head dimension
 *     MB   block table row length (max_blocks_per_seq)
 *
 * q (T, H, D) has token rows q_stride >= H * D elements apart (it may be
 * the Q part of a fused QKV row); out (T, H, D) is dense. kv_layer is one
 * layer's pool (NB, 2, Hkv, bs, D); block_tables (S, MB) holds block ids;
 * context_lens (S) the keys of each sequence, new tokens included (their K
 * and V are saved by kv_save first). Query head h reads KV head h / G.
 * Scores are scale * q.k (scale is 1 / sqrt(D) usually); bf16 storage,
 * fp32 arithmetic, one rounding per output. A sequence with no keys gets
 * zeros. Returns SIM_OK, SIM_ENOTSUP when kv->dtype is not bf16 or D >
 * KERN_ATTN_MAX_HEAD_DIM, or SIM_EINVAL for bad shapes, block ids outside
 * [0, NB) or lengths past the block table; nothing is written then. The
 * _f32 variants take fp32 q, pool (kv->dtype KERN_DT_F32) and out, and
 * round nothing (the cpu executor's precision). */

/* Largest head dimension the attention references and kernels take. */
#define KERN_ATTN_MAX_HEAD_DIM 256

/* Decode: query s (one token per sequence, T = S) attends to all
 * context_lens[s] keys of sequence s. */
int kern_attn_decode_ref(kern_bf16 *out, const kern_bf16 *q, int q_stride,
                         const kern_bf16 *kv_layer, const kern_kv_layout *kv,
                         const int32_t *block_tables, int max_blocks_per_seq,
                         const int32_t *context_lens, int n_seqs, int n_heads, float scale);
/* Chunked prefill: sequence s owns query rows [cu_seqlens_q[s],
 * cu_seqlens_q[s + 1]) (c_s tokens at positions p_s .. p_s + c_s - 1 with
 * p_s = context_lens[s] - c_s); row i attends causally to keys 0 .. p_s + i. */
int kern_attn_prefill_ref(kern_bf16 *out, const kern_bf16 *q, int q_stride,
                          const kern_bf16 *kv_layer, const kern_kv_layout *kv,
                          const int32_t *block_tables, int max_blocks_per_seq,
                          const int32_t *cu_seqlens_q, const int32_t *context_lens, int n_seqs,
                          int n_heads, float scale);
/* Decode attention on fp32 storage (see kern_attn_decode_ref). */
int kern_attn_decode_ref_f32(float *out, const float *q, int q_stride, const float *kv_layer,
                             const kern_kv_layout *kv, const int32_t *block_tables,
                             int max_blocks_per_seq, const int32_t *context_lens, int n_seqs,
                             int n_heads, float scale);
/* Chunked-prefill attention on fp32 storage (see kern_attn_prefill_ref). */
int kern_attn_prefill_ref_f32(float *out, const float *q, int q_stride, const float *kv_layer,
                              const kern_kv_layout *kv, const int32_t *block_tables,
                              int max_blocks_per_seq, const int32_t *cu_seqlens_q,
                              const int32_t *context_lens, int n_seqs, int n_heads, float scale);

/* ---- KV append and swap references (kv_save_ref.c, kv_copy_ref.c) ---- */

/* Writes K and V of n_tokens new tokens into one layer's pool: token t's
 * k (Hkv, D) (rows k_stride elements apart) and v go to slot slots[t]
 * (block * bs + offset; negative: skipped). Elements of kv->dtype, copied
 * bit for bit. SIM_EINVAL for a slot past the pool. */
int kern_kv_save_ref(void *kv_layer, const kern_kv_layout *kv, const void *k, int k_stride,
                     const void *v, int v_stride, const int32_t *slots, int n_tokens);
/* staging (n, L, 2, Hkv, bs, D) = blocks[0..n) of every layer of cache. */
int kern_kv_gather_ref(void *staging, const void *cache, const kern_kv_layout *kv,
                       const int32_t *blocks, int n);
/* The inverse: blocks[i] of every layer of cache = staging entry i. */
int kern_kv_scatter_ref(void *cache, const void *staging, const kern_kv_layout *kv,
                        const int32_t *blocks, int n);
/* Swap-out: host slot slots[i] (of n_slots) = device block blocks[i]. */
int kern_kv_swap_out_ref(void *host_pool, int n_slots, const void *cache, const kern_kv_layout *kv,
                         const int32_t *blocks, const int32_t *slots, int n);
/* Swap-in: device block blocks[i] = host slot slots[i] (of n_slots). */
int kern_kv_swap_in_ref(void *cache, const void *host_pool, int n_slots, const kern_kv_layout *kv,
                        const int32_t *slots, const int32_t *blocks, int n);

/* ---- RoPE, SiLU-and-multiply, argmax references ---- */

/* Fills cos_sin (P, R): row p is cos(p * f_i) for i < R / 2, then
 * sin(p * f_i), f_i = theta^(-2i / R), computed in double, stored as fp32.
 * SIM_EINVAL for max_pos < 1, rot_dim odd or < 2, theta <= 1. */
int kern_rope_cache_ref(float *cos_sin, int max_pos, int rot_dim, double theta);
/* Rotates q (T, H, D) and k (T, Hkv, D) in place, NeoX style: dims i and
 * i + R/2 of each head (i < R/2) by angle positions[t] * f_i; dims >= R
 * are left alone. SIM_EINVAL for a position outside [0, max_pos). */
int kern_rope_ref_f32(float *q, int q_stride, float *k, int k_stride, const float *cos_sin,
                      int max_pos, const int32_t *positions, int n_tokens, int n_heads,
                      int n_kv_heads, int head_dim, int rot_dim);
/* The same on bf16 tensors: fp32 arithmetic, one rounding per output. */
int kern_rope_ref_bf16(kern_bf16 *q, int q_stride, kern_bf16 *k, int k_stride, const float *cos_sin,
                       int max_pos, const int32_t *positions, int n_tokens, int n_heads,
                       int n_kv_heads, int head_dim, int rot_dim);
/* out (T, I) = silu(in[:, :I]) * in[:, I:], in (T, 2I) gate first. */
void kern_silu_mul_ref_f32(float *out, const float *in, int n_tokens, int inter);
/* The same on bf16 tensors: fp32 arithmetic, one rounding per output. */
void kern_silu_mul_ref_bf16(kern_bf16 *out, const kern_bf16 *in, int n_tokens, int inter);
/* out[r] = the first index of the largest of logits (R, V) row r (NaN
 * never wins; a row of NaN gives 0). */
void kern_argmax_ref_f32(int32_t *out, const float *logits, int n_rows, int vocab);
/* The same on bf16 logits. */
void kern_argmax_ref_bf16(int32_t *out, const kern_bf16 *logits, int n_rows, int vocab);

/* ---- embedding lookup and residual add (embed_ref.c, add_ref.c) ---- */

/* out (T, Hd) = rows tokens[t] of table (V, Hd), dtype elements copied bit
 * for bit. SIM_EINVAL (nothing written) for an id outside [0, V). */
int kern_embed_ref(void *out, const void *table, const int32_t *tokens, int n_tokens, int hidden,
                   int vocab, int dtype);
/* y (n) += x (n) in fp32. */
void kern_add_ref_f32(float *y, const float *x, size_t n);
/* The same on bf16: fp32 sum, one rounding per output. */
void kern_add_ref_bf16(kern_bf16 *y, const kern_bf16 *x, size_t n);

/* ---- device memory, streams, events (kern_cuda.cu; CUDA builds only) ---- */

/* Allocates n_bytes of device memory into *d_ptr; SIM_EDEVICE on failure. */
int kern_malloc(void **d_ptr, size_t n_bytes);
/* Frees *d_ptr (NULL is a no-op) and sets it to NULL. */
void kern_free(void **d_ptr);
/* Allocates n_bytes of pinned (page-locked) host memory into *h_ptr. */
int kern_host_alloc(void **h_ptr, size_t n_bytes);
/* Frees pinned host memory (NULL is a no-op) and sets *h_ptr to NULL. */
void kern_host_free(void **h_ptr);
/* Copies n_bytes host -> device (synchronous). */
int kern_memcpy_h2d(void *d_dst, const void *src, size_t n_bytes);
/* Copies n_bytes device -> host (synchronous). */
int kern_memcpy_d2h(void *dst, const void *d_src, size_t n_bytes);
/* Sets n_bytes of device memory to the byte value (synchronous). */
int kern_memset(void *d_dst, int value, size_t n_bytes);
/* Waits for all work queued on stream (NULL: the default stream). */
int kern_sync(void *stream);
/* Creates a stream that does not synchronise with the default stream. */
int kern_stream_create(void **stream);
/* Destroys *stream (NULL is a no-op) and sets it to NULL. */
void kern_stream_destroy(void **stream);
/* Creates an event (timing enabled). */
int kern_event_create(void **event);
/* Destroys *event (NULL is a no-op) and sets it to NULL. */
void kern_event_destroy(void **event);
/* Records event on stream. */
int kern_event_record(void *event, void *stream);
/* Makes later work on stream wait for event (no host wait). */
int kern_stream_wait_event(void *stream, void *event);
/* Milliseconds between two completed events; waits for stop first. */
int kern_event_elapsed_ms(void *start, void *stop, float *ms /* OUT */);

/* ---- launchers (one .cu each; CUDA builds only) ----
 * Operator names (perf model, timings, calibration): kern_gemm is
 * qkv_proj, o_proj, mlp_up, mlp_down and lm_head; kern_rmsnorm norm;
 * kern_rope rope; kern_attn_prefill attn_prefill; kern_attn_decode
 * attn_decode; kern_kv_save kv_save; kern_silu_mul mlp_act; kern_argmax
 * sample; kern_embed embed; kern_add the residual add (counted under
 * norm: vLLM fuses it there); kern_kv_swap_out / kern_kv_swap_in the
 * executor's kv_copy. */

/* d_out (T, H) = d_in (T, H) / sqrt(mean(d_in^2) + eps) * d_weight (H). */
int kern_rmsnorm(void *d_out, const void *d_in, const void *d_weight, int n_tokens, int hidden,
                 float eps, int dtype, void *stream);

/* What GEMMs need across calls: cuBLAS and cuBLASLt handles and their
 * workspace on the current device (gemm_cublas.cu). */
typedef struct kern_ctx kern_ctx;
/* Creates a context on the current device; *out is owned by the caller. */
int kern_ctx_create(kern_ctx **out /* OUT */);
/* Destroys ctx (NULL is a no-op). */
void kern_ctx_destroy(kern_ctx *ctx);
/* 1 when the device has FP8 tensor cores (compute capability >= 8.9). */
int kern_ctx_has_fp8(const kern_ctx *ctx);
/* d_y (M, N) bf16 = scale * d_x (M, K) . d_w (N, K)^T, dtype of x and w
 * KERN_DT_BF16 or KERN_DT_FP8_E4M3 (SIM_ENOTSUP without FP8). */
int kern_gemm(kern_ctx *ctx, void *d_y, const void *d_x, const void *d_w, int m, int n, int k,
              int dtype, float scale, void *stream);

/* Bytes of split-K workspace kern_attn_decode() can use for this batch. */
size_t kern_attn_decode_work_bytes(int n_seqs, int n_heads, int head_dim, int max_context);
/* Paged decode attention (see the references above); max_context >=
 * every context_lens[s]; d_work (may be NULL) enables split-K. */
int kern_attn_decode(void *d_out, const void *d_q, int q_stride, const void *d_kv_layer,
                     const kern_kv_layout *kv, const int32_t *d_block_tables,
                     int max_blocks_per_seq, const int32_t *d_context_lens, int n_seqs, int n_heads,
                     int max_context, float scale, void *d_work, size_t work_bytes, void *stream);
/* Chunked-prefill attention over the paged cache; n_tokens =
 * cu_seqlens_q[S], max_q_len >= every chunk length. */
int kern_attn_prefill(void *d_out, const void *d_q, int q_stride, const void *d_kv_layer,
                      const kern_kv_layout *kv, const int32_t *d_block_tables,
                      int max_blocks_per_seq, const int32_t *d_cu_seqlens_q,
                      const int32_t *d_context_lens, int n_seqs, int n_tokens, int n_heads,
                      int max_q_len, float scale, void *stream);

/* Writes new tokens' K and V into their slots (see kern_kv_save_ref). */
int kern_kv_save(void *d_kv_layer, const kern_kv_layout *kv, const void *d_k, int k_stride,
                 const void *d_v, int v_stride, const int32_t *d_slots, int n_tokens, void *stream);
/* Packs device blocks (host id list) into d_staging (n, L, 2, Hkv, bs, D). */
int kern_kv_gather(void *d_staging, const void *d_cache, const kern_kv_layout *kv,
                   const int32_t *blocks, int n, void *stream);
/* Unpacks d_staging entries into device blocks (host id list, distinct). */
int kern_kv_scatter(void *d_cache, const void *d_staging, const kern_kv_layout *kv,
                    const int32_t *blocks, int n, void *stream);
/* Swap-out: gather, then one cudaMemcpyAsync per run of consecutive host
 * slots, through d_staging, all on stream (a dedicated copy stream). */
int kern_kv_swap_out(void *h_pool, int n_slots, const void *d_cache, const kern_kv_layout *kv,
                     const int32_t *blocks, const int32_t *slots, int n, void *d_staging,
                     size_t staging_bytes, void *stream);
/* Swap-in: copies host slots into d_staging, then scatters into blocks. */
int kern_kv_swap_in(void *d_cache, const void *h_pool, int n_slots, const kern_kv_layout *kv,
                    const int32_t *slots, const int32_t *blocks, int n, void *d_staging,
                    size_t staging_bytes, void *stream);

/* NeoX RoPE in place on q and k from the fp32 table d_cos_sin (P, R). */
int kern_rope(void *d_q, int q_stride, void *d_k, int k_stride, const float *d_cos_sin, int max_pos,
              const int32_t *d_positions, int n_tokens, int n_heads, int n_kv_heads, int head_dim,
              int rot_dim, int dtype, void *stream);
/* d_out (T, I) = silu(gate) * up from d_in (T, 2I), gate first. */
int kern_silu_mul(void *d_out, const void *d_in, int n_tokens, int inter, int dtype, void *stream);
/* d_out (R) int32 = first index of each row's maximum of d_logits (R, V). */
int kern_argmax(int32_t *d_out, const void *d_logits, int n_rows, int vocab, int dtype,
                void *stream);
/* d_out (T, Hd) = rows d_tokens[t] of d_table (V, Hd) (embed.cu); a row
 * id outside [0, V) gives a zero row (ids in device memory are the
 * caller's contract; the reference refuses them). */
int kern_embed(void *d_out, const void *d_table, const int32_t *d_tokens, int n_tokens, int hidden,
               int vocab, int dtype, void *stream);
/* d_y (n) += d_x (n), fp32 arithmetic, dtype KERN_DT_F32 or KERN_DT_BF16 (add.cu). */
int kern_add(void *d_y, const void *d_x, long long n, int dtype, void *stream);

#ifdef __cplusplus
}
#endif
#endif /* KERN_KERN_H */
