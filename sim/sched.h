/* sched.h: the scheduler of one replica, shared by every executor.
 *
 * Continuous batching with a token budget (max_batched_tokens, vLLM's
 * max_num_batched_tokens) and a sequence budget (max_num_seqs), chunked
 * prefill, preemption by recompute (newest first) when the KV pool runs out,
 * and admission control: a bounded waiting queue, a maximum queue time, and
 * immediate rejection of a request that can never be served. It never reads
 * a clock: it is handed the time. It never reads a request's output length
 * to decide anything, with one exception: SCHED_POLICY_TRTLLM reserves KV
 * for it at admission, as an engine does for the client's max_tokens (a
 * benchmark that ignores end-of-sequence sets max_tokens to the output
 * length). The model's end-of-sequence (the trace's output length) is
 * applied only when a step completes (sched_step_done). */
#ifndef SIM_SCHED_H
#define SIM_SCHED_H

#include <stdint.h>

#include "err.h"
#include "evict.h"
#include "kvc.h"
#include "metrics.h"
#include "pcache.h"
#include "perf.h"
#include "req.h"

struct net;

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sched_config {
    int max_num_seqs;           /* sequences per step, >= 1 */
    int64_t max_batched_tokens; /* new tokens per step, >= max_num_seqs */
    int block_tokens;           /* tokens per KV block, 1..1024 */
    int64_t kv_blocks;          /* blocks in the HBM pool, >= 1 */
    int anon_blocks;            /* 1: a sequence whose KV is never cached holds a count of
                                   blocks, no ids (kvc.h): only for executors that read no
                                   block tables; 0: every block has an id */
    int chunked_prefill;        /* 1: a prompt may be split over steps */
    int sched_policy;           /* SCHED_POLICY_VLLM (0, the default), _SGLANG or _TRTLLM */
    double watermark;           /* fraction of blocks kept free when admitting, 0..0.5 */
    int64_t max_queue;          /* waiting requests before "queue_full" (0: unbounded) */
    sim_time max_queue_ns;      /* wait before "queue_timeout" (0: unbounded) */
    int64_t max_ctx;            /* model context, tokens (prompt + max_tokens) */
    /* prefix cache: NULL policy means no prefix caching */
    const struct evict_ops *policy; /* eviction policy of the HBM prefix cache */
    evict_params policy_params;     /* its parameters (capacity set by the scheduler) */
    int hash_block_tokens;          /* tokens one trace hash id covers (Mooncake: 512) */
    /* host DRAM tier behind PCIe: host_blocks 0 means none */
    int64_t host_blocks;   /* capacity of one replica's host tier, blocks */
    double block_bytes;    /* bytes of one KV block (all layers), for PCIe copies */
    double pcie_bw;        /* bytes/s per direction */
    double pcie_latency_s; /* per copy */
    int miss;              /* SCHED_MISS_SWAP, _RECOMPUTE or _CHEAPER for host-tier hits */
    int preempt_swap;      /* 1: a preempted sequence's KV is copied to host swap space */
    int64_t swap_blocks;   /* host swap space, blocks (a full space falls back to recompute) */
    int copies_per_block;  /* PCIe copies per block: 1 when blocks are gathered into one copy
                              per transfer, layers x 2 (K, V) when each is its own copy */
    /* remote pool tier (docs/scheduler.md): a flat cache shared by the
     * replicas of a pool, reached over the network (NULL: none). The
     * engine owns both objects and gives each replica its NIC links. */
    int64_t remote_blocks;    /* the pool's remote tier, blocks (0: none; the engine builds it) */
    int remote_nics;          /* the remote pool's NICs (its bandwidth: that many x ib_bw) */
    int remote_write_through; /* 1: every block cached in HBM is also stored in the pool
                                 (Mooncake); 0: blocks go there when evicted */
    pcache *remote;           /* the shared cache (capacity: remote_blocks) */
    struct net *rnet;         /* the network (sim/net.h) */
    int rnic_in, rnic_out;    /* this replica's NIC links into and out of its GPUs */
    int rpool_in, rpool_out;  /* the remote pool's links */
    double rlatency_s;        /* per transfer */
    double rbw;               /* the slower side's bytes/s, for --miss cheaper */
    /* (optional: NULL means never cheaper) seconds to prefill `tokens` after
     * `cached` cached ones, for SCHED_MISS_CHEAPER */
    double (*recompute_s)(void *ctx, int64_t tokens, int64_t cached);
    void *recompute_ctx;
} sched_config;

/* How steps are composed and requests admitted (docs/scheduler.md, "Engine
 * families"). VLLM: decode first, prompt chunks in the remaining budget
 * (mixed steps). SGLANG: a step runs prompt chunks only, with the whole
 * budget, whenever one can run; otherwise it decodes every running sequence
 * (prefill and decode never share a step). TRTLLM: VLLM's mixed steps, but a
 * request is admitted only when the pool can hold its whole sequence (prompt
 * + output) besides what every running sequence may still need (TensorRT-
 * LLM's GUARANTEED_NO_EVICT capacity policy). */
enum { SCHED_POLICY_VLLM = 0, SCHED_POLICY_SGLANG, SCHED_POLICY_TRTLLM };

/* What a hit in the host tier does. */
enum { SCHED_MISS_SWAP = 0, SCHED_MISS_RECOMPUTE, SCHED_MISS_CHEAPER };

/* A sequence: a request admitted to (or waiting for) the replica. Fields are
 * read-only outside sched.c. */
typedef struct sched_seq sched_seq;
struct sched_seq {
    sim_req req;            /* copy of the request (hash_ids not kept) */
    int phase;              /* SCHED_WAITING, SCHED_PREFILL, SCHED_DECODE */
    int32_t generated;      /* output tokens produced (exact outside SCHED_DECODE) */
    int64_t kv_tokens;      /* tokens with KV in the pool (exact outside SCHED_DECODE) */
    int64_t prefill_target; /* tokens to prefill on this admission */
    int32_t *blocks;        /* block table, [0, n_blocks) (unused when anon) */
    int32_t n_blocks;       /* blocks held (exact outside SCHED_DECODE when anon) */
    int32_t cap_blocks;     /* room in blocks and cblocks */
    int anon; /* 1: its blocks are anonymous, a count (cfg.anon_blocks, never cached) */
    sim_time first_token_ns; /* -1 until the first token */
    sim_time admitted_ns;    /* first admission, -1 before */
    int32_t preemptions;
    int64_t recomputed_tokens; /* tokens computed before (earlier turn, or before a preemption)
                                  and prefilled again because they were not cached */
    int64_t hit_tokens;        /* prompt tokens found in the prefix cache at first admission */
    int64_t lost_kv;           /* KV tokens held when last preempted */
    int64_t xfer;              /* its swap-in over PCIe (prefill waits), -1 when none */
    int64_t rxfer;             /* its fetch from the remote pool (prefill waits), -1 when none */
    int64_t swapped_kv;        /* KV tokens held in host swap space while preempted */
    int64_t swap_blocks;       /* blocks of swap space they occupy */
    /* prefix cache bookkeeping */
    pcache_block **cblocks; /* cache entry of each block, NULL for a private block */
    int32_t n_scanned;      /* leading full blocks already offered to the cache */
    uint64_t last_key;      /* chained key of block n_scanned - 1 */
    uint32_t *hash_ids;     /* the request's content hashes (owned copy) */
    int32_t n_hash, cap_hash;
    int64_t replica_tag; /* engine's use */
    /* decode bookkeeping (lazy: exact values derive from the step counter) */
    int64_t d0;               /* first decode step of this run */
    int32_t gen0;             /* generated at d0 */
    int64_t kv0;              /* kv_tokens at d0 */
    int64_t fin_step;         /* step whose end produces the last token */
    int64_t heap_pos;         /* index in the finish heap, -1 when absent */
    sched_seq *rprev, *rnext; /* running list (admission order) */
    sched_seq *lprev, *lnext; /* decode bucket or prefill list, or waiting queue */
};

enum { SCHED_FREE = 0, SCHED_WAITING, SCHED_PREFILL, SCHED_DECODE };

/* One prefill chunk in a batch. */
typedef struct sched_chunk {
    sched_seq *seq; /* borrowed until sched_step_done */
    int64_t tokens; /* c: new tokens this step */
    int64_t cached; /* p: tokens already in the KV cache */
    int samples;    /* 1 when the chunk ends the prefill (a token is produced) */
} sched_chunk;

/* The batch of one step. */
typedef struct sched_batch {
    int64_t step;           /* step index within the replica */
    sim_time start_ns;      /* when it was formed */
    perf_batch agg;         /* aggregates for the perf model */
    int n_chunks;           /* prefill chunks, [0, n_chunks) of chunks */
    sched_chunk *chunks;    /* borrowed from the scheduler */
    int n_decode;           /* decoding sequences */
    int n_preempted;        /* preemptions while forming this step */
    int64_t kv_blocks_used; /* after the step's allocations */
    int waiting;            /* waiting requests after forming */
} sched_batch;

/* Where the scheduler reports request outcomes. */
typedef struct sched_cb {
    void *ctx;
    /* A request was rejected (at admission or by timeout) at time t. */
    void (*on_reject)(void *ctx, const sim_req *r, enum met_reject why, sim_time t);
    /* A sequence produced its first token at t. */
    void (*on_first_token)(void *ctx, sched_seq *s, sim_time t);
    /* A sequence produced its last token at t; s is freed after the call. */
    void (*on_finish)(void *ctx, sched_seq *s, sim_time t);
} sched_cb;

typedef struct sched sched;

/* Checks a configuration; SIM_EINVAL names the bad field. */
int sched_config_check(const sched_config *c, sim_err *err);
/* Creates a scheduler with its KV pool; returns SIM_OK and an owned *out. */
int sched_create(const sched_config *c, const sched_cb *cb, sched **out);
/* Frees the scheduler, its pool and every sequence; NULL is a no-op. */
void sched_destroy(sched *s);

/* Offers a request arriving at now: queued (SIM_OK) or rejected through
 * on_reject (SIM_OK too); SIM_ENOMEM on allocation failure. */
int sched_add(sched *s, const sim_req *r, sim_time now);
/* The reason sched_add rejects r whatever the scheduler's state (context
 * length, KV capacity less the watermark, batch budget without chunking),
 * or MET_REJECT_NONE; queue limits depend on the run and are not checked. */
enum met_reject sched_reject_static(const sched_config *c, const sim_req *r);
/* Forms the next step at now into *b (timeouts are rejected first).
 * Returns the number of sequences in it (0: nothing to run), or SIM_ENOMEM. */
int sched_step(sched *s, sim_time now, sched_batch *b);
/* Completes the step in b at time end: prefill progress, first tokens,
 * finishes. Returns SIM_OK or SIM_ENOMEM. */
int sched_step_done(sched *s, const sched_batch *b, sim_time end);

/* ---- decode runs (fast-forward) ----
 * While the running sequences all decode, nothing can be admitted, nothing
 * times out and nothing finishes, successive steps differ only in their
 * summed context; the engine then plans several steps at once and applies
 * them with sched_decode_advance(), which has exactly the effect of
 * sched_step() + sched_step_done() on those steps. */

/* Steps that sched_step would form as pure decode from now on without an
 * admission, a preemption or a finish before the last of them (the last may
 * finish sequences): 0 when the next step is not pure decode. *deadline_ns
 * is the latest start time a step may have before the oldest waiting
 * request times out (SIM_TIME_MAX when none). Blocks are not counted here:
 * see sched_decode_need. */
int64_t sched_decode_run_limit(const sched *s, sim_time *deadline_ns);
/* Blocks the i-th next step (i = 0: the next) allocates in a decode run. */
int64_t sched_decode_need(const sched *s, int64_t i);
/* need[k] = sched_decode_need(s, i0 + k) for k in [0, n). */
void sched_decode_needs(const sched *s, int64_t i0, int64_t n, int64_t *need);
/* The perf aggregates of the i-th next step of a decode run. */
void sched_decode_agg(const sched *s, int64_t i, perf_batch *agg);
/* Applies one pure-decode step that finishes nothing, formed at time now
 * (its block allocations, evictions and the step counter). SIM_OK or
 * SIM_ENOMEM. */
int sched_decode_advance(sched *s, sim_time now);
/* sched_decode_advance for n steps, step i formed at t0 (i = 0) or end[i - 1],
 * with the pool's used blocks after step i in used[i]. SIM_OK or SIM_ENOMEM
 * (the steps before the failing one are applied). */
int sched_decode_advance_n(sched *s, sim_time t0, const sim_time *end, int64_t n, int64_t *used);

/* ---- for executors that run the batch (cpu, cuda) ---- */

/* Fills out[0..] with the decoding sequences of the step just formed, in
 * admission order, up to cap; returns how many there are (may exceed cap).
 * Their context for the step (the new token included) is
 * sched_seq_kv_tokens(); their block tables hold exactly those tokens; and
 * sched_seq_generated() counts the token the step produces. (Block tables
 * exist only with sched_config.anon_blocks 0.) */
int sched_decode_list(const sched *s, sched_seq **out, int cap);

/* Blocks a step could obtain now: free, plus cached blocks nobody holds
 * (evicted on demand). */
int64_t sched_avail_blocks(const sched *s);
/* Blocks in use: the pool less sched_avail_blocks (cached blocks that no
 * sequence holds are not in use). What KV utilisation counts. */
int64_t sched_kv_in_use(const sched *s);
/* The prefix cache (borrowed; NULL when prefix caching is off). */
const pcache *sched_cache(const sched *s);
/* The host tier (borrowed; NULL when there is none). */
const pcache *sched_host_cache(const sched *s);
/* The earliest swap-in completion after now of an admitted sequence
 * (SIM_TIME_MAX when none waits): the replica must look again then. */
sim_time sched_next_ready(const sched *s, sim_time now);
/* The replica stops (an autoscaler took its GPUs): its HBM prefix cache and
 * host tier are emptied, nothing demoted. Nothing may wait or run. */
void sched_cache_drop(sched *s, sim_time now);
/* Sequences admitted and waiting for blocks from the remote pool. */
int64_t sched_remote_waiting(const sched *s);
/* PCIe traffic of the host tier so far (and the remote pool's). */
typedef struct sched_pcie {
    int64_t bytes_h2d, bytes_d2h;  /* bytes copied each way */
    double busy_h2d_s, busy_d2h_s; /* time each direction was busy, s */
    int64_t swapped_in_tokens;     /* tokens brought back from the host tier */
    int64_t swapped_out_seqs;      /* preemptions that swapped out instead of dropping KV */
    int64_t remote_bytes_in;       /* bytes fetched from the remote pool */
    int64_t remote_bytes_out;      /* bytes demoted to it */
    int64_t remote_in_tokens;      /* tokens fetched from it */
} sched_pcie;
void sched_pcie_stats(const sched *s, sched_pcie *out);
/* Settles the PCIe transfers up to now (the end of a run), so the busy
 * times count the copies still in flight after the last step. */
void sched_links_settle(sched *s, sim_time now);

/* The chained cache keys of r's full prompt blocks, as a replica with
 * config cfg names them (what its prefix cache looks up): writes up to cap
 * keys and returns how many full blocks r has (0 when r is not cacheable:
 * no session and no content hashes). For offline oracles (belady). */
int64_t sched_block_keys(const sched_config *cfg, const sim_req *r, uint64_t *keys, int64_t cap);
/* Prompt tokens of r that would hit this replica's prefix cache now
 * (full blocks; 0 without a cache). Changes nothing. */
int64_t sched_prefix_probe(const sched *s, const sim_req *r);
/* Requests waiting, sequences running (prefill + decode), decoding. */
int64_t sched_n_waiting(const sched *s);
int sched_n_running(const sched *s);
int sched_n_decode(const sched *s);
/* Outstanding new tokens: prompt tokens not yet prefilled plus one per
 * running sequence (the router's "least outstanding tokens"). */
int64_t sched_outstanding_tokens(const sched *s);
/* The KV pool (borrowed). */
const kvc_pool *sched_pool(const sched *s);
/* Steps formed so far. */
int64_t sched_n_steps(const sched *s);
/* Preemptions so far. */
int64_t sched_n_preemptions(const sched *s);
/* Current generated/kv_tokens of a sequence (exact in any phase). */
int32_t sched_seq_generated(const sched *s, const sched_seq *q);
int64_t sched_seq_kv_tokens(const sched *s, const sched_seq *q);
/* KV slot of token position pos in q's block table (of block ids, not
 * anon), or -1 when the table does not reach pos. */
int32_t sched_seq_slot(const sched_seq *q, int64_t pos, int block_tokens);
/* Full invariant walk (block tables vs pool, list membership, aggregates):
 * 0 when sound, negative code of the first broken invariant. O(blocks). */
int sched_check(const sched *s);

#ifdef __cplusplus
}
#endif
#endif /* SIM_SCHED_H */
