/* sched.c: continuous batching for one replica (see sched.h).
 *
 * Design. Every step the scheduler (1) rejects waiting requests that waited
 * longer than the maximum queue time, (2) gives every decoding sequence one
 * token, allocating a block for each sequence whose new token starts a block
 * and preempting the newest running sequence while the pool is short, (3)
 * continues running prefills in admission order within the token budget, and
 * (4) if nothing was preempted, admits waiting requests first come first
 * served (preempted ones first) while the token and sequence budgets and the
 * pool (less a watermark) allow. This is the policy of vLLM's scheduler with
 * decode-first ordering (Sarathi-Serve's stall-free batching). Preemption
 * frees the victim's blocks; it re-enters the queue's front and later
 * recomputes its prompt and generated tokens.
 *
 * Engine families (sched_config.sched_policy). The above is VLLM. SGLANG
 * (SGLang's default scheduler, enable_mixed_chunk off) runs phases (3) and
 * (4) first with the whole budget and, when they give a step prompt chunks,
 * skips (2): the decoders wait a step. Only a step with no prompt to run
 * decodes. Because such steps do not advance the decoders, decode
 * bookkeeping counts on a decode clock, the step index less the steps that
 * skipped decode (n_skip); under VLLM and TRTLLM the two are the same.
 * TRTLLM (TensorRT-LLM's GUARANTEED_NO_EVICT capacity policy) forms VLLM's
 * mixed steps but admits a request only when the obtainable blocks, less
 * what the running requests may still allocate (resv - n_table), hold its
 * whole sequence, so a started request never has to be preempted.
 *
 * Livelock guard: the victim is always the newest running sequence, so the
 * oldest keeps its blocks and progresses; a request that could not run alone
 * (prompt + max_tokens beyond the pool or the context) is rejected at
 * arrival, so the oldest always completes.
 *
 * Cost. Decoding sequences are not touched per step: a sequence that joined
 * decode at step d0 with kv0 tokens cached has kv0 + (s - d0) tokens before
 * step s, so the batch's summed context is kept as one running sum, and the
 * sequences whose new token starts a block at step s are exactly those with
 * (d0 - kv0) = s (mod block_tokens): one list per residue. A step costs
 * O(prefill chunks + blocks allocated + finishes), not O(batch): simulated
 * cost grows with events, not with tokens. A sequence that is never cached
 * holds its blocks as a count (sched_config.anon_blocks, kvc.h), and the
 * decode blocks of a residue list holding only such sequences are taken as
 * one count, without visiting them (decode_alloc, seq_blocks). Finishes
 * come from a heap keyed by the step that produces each sequence's last
 * token.
 *
 * Non-goals: prefix reuse and swapping (the KV hierarchy adds them), priority
 * classes. */
#include "config.h"
#include "sched.h"

#include <string.h>

#include "link.h"
#include "net.h"
#include "mem.h"

#define SEQ_CHUNK 1024

typedef struct seq_list {
    sched_seq *head, *tail;
    int64_t n;
} seq_list;

struct sched {
    sched_config cfg;
    sched_cb cb;
    kvc_pool *pool;
    int64_t step;     /* steps formed so far = index of the next step */
    int64_t n_skip;   /* steps that did not decode the running decoders (SGLANG prefill
                         steps): the decode clock is step - n_skip */
    int last_skipped; /* 1 when the step formed last was such a step */
    int64_t resv;     /* TRTLLM: blocks of the whole sequences of the running requests */
    int64_t n_table;  /* block-table entries of all sequences (only running ones hold any) */
    int64_t watermark_blocks;
    /* running */
    sched_seq *run_head, *run_tail;
    int n_running;
    seq_list prefill;    /* running sequences in prefill, admission order */
    seq_list *bucket;    /* decoding sequences by residue (d0 - kv0) mod B */
    int64_t *bucket_ids; /* of those, the sequences whose blocks have ids (not anon) */
    int64_t dec_clock;   /* the decode clock whose decode blocks are allocated (-1: none) */
    int n_decode;
    int n_ids;        /* of those, the ones whose blocks have ids: the sum of bucket_ids */
    int64_t dec_base; /* sum over decoding sequences of (kv0 - d0) */
    sched_seq **heap; /* finish heap by fin_step */
    int64_t heap_n, heap_cap;
    /* waiting */
    seq_list resumed;     /* preempted, oldest first */
    seq_list fresh;       /* never started, arrival order */
    int64_t prefill_left; /* prompt tokens not yet prefilled, running + waiting */
    /* records */
    sched_seq *free_seqs;
    sched_seq **chunks_mem;
    int n_chunks_mem, cap_chunks_mem;
    sched_chunk *chunks; /* batch chunks, max_num_seqs */
    int64_t n_preemptions;
    pcache *pc;        /* the HBM prefix cache, NULL when off */
    pcache *host;      /* the host DRAM tier, NULL when none */
    link *h2d, *d2h;   /* the PCIe directions (NULL: no host tier, no swap) */
    int64_t swap_used; /* blocks of host swap space in use */
    sched_pcie pcie;
    int oom;              /* an allocation failed where no code could be returned */
    sim_time now;         /* time of the step being formed or completed */
    double rdemote_bytes; /* remote-pool writes not yet sent (remote_flush) */
    int dropping;         /* sched_cache_drop in progress: evictions keep nothing */
};

/* ---- small lists ---- */

static void list_push_back(seq_list *l, sched_seq *q) {
    q->lnext = NULL;
    q->lprev = l->tail;
    if (l->tail)
        l->tail->lnext = q;
    else
        l->head = q;
    l->tail = q;
    l->n++;
}

static void list_push_front(seq_list *l, sched_seq *q) {
    q->lprev = NULL;
    q->lnext = l->head;
    if (l->head)
        l->head->lprev = q;
    else
        l->tail = q;
    l->head = q;
    l->n++;
}

static void list_remove(seq_list *l, sched_seq *q) {
    if (q->lprev)
        q->lprev->lnext = q->lnext;
    else
        l->head = q->lnext;
    if (q->lnext)
        q->lnext->lprev = q->lprev;
    else
        l->tail = q->lprev;
    q->lprev = q->lnext = NULL;
    l->n--;
}

/* TRTLLM: the blocks reserved for a request's whole sequence, prompt plus
 * max tokens, as TensorRT-LLM's getRemainingBlocksToCompletion counts them
 * (the last token's slot included, though its KV is never stored). */
static int64_t trt_blocks(const sched_config *c, const sim_req *r) {
    int64_t bt = c->block_tokens;
    return ((int64_t)r->prompt_tokens + r->output_tokens + bt - 1) / bt;
}

static void run_push_back(sched *s, sched_seq *q) {
    s->resv += trt_blocks(&s->cfg, &q->req);
    q->rnext = NULL;
    q->rprev = s->run_tail;
    if (s->run_tail)
        s->run_tail->rnext = q;
    else
        s->run_head = q;
    s->run_tail = q;
    s->n_running++;
}

static void run_remove(sched *s, sched_seq *q) {
    s->resv -= trt_blocks(&s->cfg, &q->req);
    if (q->rprev)
        q->rprev->rnext = q->rnext;
    else
        s->run_head = q->rnext;
    if (q->rnext)
        q->rnext->rprev = q->rprev;
    else
        s->run_tail = q->rprev;
    q->rprev = q->rnext = NULL;
    s->n_running--;
}

/* ---- finish heap (min by fin_step, ties by request id for determinism) ---- */

static int fin_less(const sched_seq *a, const sched_seq *b) {
    return a->fin_step < b->fin_step || (a->fin_step == b->fin_step && a->req.id < b->req.id);
}

static void heap_set(sched *s, int64_t i, sched_seq *q) {
    s->heap[i] = q;
    q->heap_pos = i;
}

static void heap_up(sched *s, int64_t i) {
    sched_seq *q = s->heap[i];
    while (i > 0) {
        int64_t p = (i - 1) / 2;
        if (!fin_less(q, s->heap[p]))
            break;
        heap_set(s, i, s->heap[p]);
        i = p;
    }
    heap_set(s, i, q);
}

static void heap_down(sched *s, int64_t i) {
    sched_seq *q = s->heap[i];
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= s->heap_n)
            break;
        if (c + 1 < s->heap_n && fin_less(s->heap[c + 1], s->heap[c]))
            c++;
        if (!fin_less(s->heap[c], q))
            break;
        heap_set(s, i, s->heap[c]);
        i = c;
    }
    heap_set(s, i, q);
}

static void heap_remove(sched *s, sched_seq *q) {
    int64_t i = q->heap_pos;
    SIM_ASSERT(i >= 0 && i < s->heap_n && s->heap[i] == q);
    q->heap_pos = -1;
    s->heap_n--;
    if (i == s->heap_n)
        return;
    {
        sched_seq *moved = s->heap[s->heap_n];
        heap_set(s, i, moved);
        heap_up(s, i);
        heap_down(s, moved->heap_pos);
    }
}

/* ---- records ---- */

static sched_seq *seq_get(sched *s) {
    sched_seq *q;
    if (s->free_seqs == NULL) {
        sched_seq *blk;
        int i;
        if (s->n_chunks_mem == s->cap_chunks_mem) {
            int ncap = s->cap_chunks_mem ? 2 * s->cap_chunks_mem : 16;
            sched_seq **nm = sim_realloc(s->chunks_mem, (size_t)ncap * sizeof *nm);
            if (nm == NULL)
                return NULL;
            s->chunks_mem = nm;
            s->cap_chunks_mem = ncap;
        }
        /* not zeroed: a record is cleared when taken, all but its tables,
         * which start empty here */
        blk = sim_malloc(SEQ_CHUNK * sizeof *blk);
        if (blk == NULL)
            return NULL;
        s->chunks_mem[s->n_chunks_mem++] = blk;
        for (i = SEQ_CHUNK - 1; i >= 0; i--) {
            blk[i].blocks = NULL;
            blk[i].cblocks = NULL;
            blk[i].hash_ids = NULL;
            blk[i].cap_blocks = 0;
            blk[i].cap_hash = 0;
            blk[i].phase = SCHED_FREE;
            blk[i].rnext = s->free_seqs;
            s->free_seqs = &blk[i];
        }
    }
    q = s->free_seqs;
    s->free_seqs = q->rnext;
    {
        int32_t *blocks = q->blocks;
        pcache_block **cblocks = q->cblocks;
        uint32_t *hash = q->hash_ids;
        int32_t cap = q->cap_blocks, cap_hash = q->cap_hash;
        memset(q, 0, sizeof *q);
        q->blocks = blocks; /* keep the tables' capacity for reuse */
        q->cblocks = cblocks;
        q->cap_blocks = cap;
        q->hash_ids = hash;
        q->cap_hash = cap_hash;
    }
    q->xfer = -1;
    q->rxfer = -1;
    q->last_key = PCACHE_KEY_ROOT;
    q->heap_pos = -1;
    q->first_token_ns = -1;
    q->admitted_ns = -1;
    return q;
}

static void seq_put(sched *s, sched_seq *q) {
    q->phase = SCHED_FREE;
    q->rnext = s->free_seqs;
    s->free_seqs = q;
}

/* Blocks admission keeps free (sched_create, sched_reject_static). */
static int64_t watermark_blocks(const sched_config *c) {
    return (int64_t)(c->watermark * (double)c->kv_blocks);
}

static int64_t blocks_for(const sched *s, int64_t tokens) {
    return (tokens + s->cfg.block_tokens - 1) / s->cfg.block_tokens;
}

static int64_t mod_pos(int64_t a, int64_t m) {
    int64_t r = a % m;
    return r < 0 ? r + m : r;
}

/* The decode clock: steps that decoded every decoding sequence (all steps
 * but SGLANG's prefill steps). Decode bookkeeping (d0, fin_step, buckets)
 * counts in it. Equal to s->step under the VLLM and TRTLLM policies. */
static int64_t dclock(const sched *s) {
    return s->step - s->n_skip;
}

/* ---- the pool and the prefix cache ---- */

/* Cached blocks no sequence holds. A sequence holds the whole chain of its
 * cached blocks, so every unheld cached block can be evicted, leaves first,
 * one after another. */
static int64_t unheld(const sched *s) {
    return s->pc ? pcache_size(s->pc) - pcache_n_held(s->pc) : 0;
}

/* Blocks obtainable now: free ones plus cached ones no sequence holds. */
static int64_t avail(const sched *s) {
    return kvc_free(s->pool) + unheld(s);
}

/* Blocks in use: held by a sequence (a cached block no sequence holds can
 * be evicted at any time, and counts as available): the pool's used blocks
 * (its total less avail's free ones) less the unheld cached ones. */
static int64_t in_use(const sched *s) {
    return kvc_used(s->pool) - unheld(s);
}

/* A block from the pool, evicting a cached block when none is free; -1
 * when neither is possible. */
static int32_t pool_alloc(sched *s) {
    int32_t id = kvc_block_alloc(s->pool);
    if (id < 0 && !kvc_oom(s->pool) && s->pc && pcache_evict_one(s->pc, s->now))
        id = kvc_block_alloc(s->pool);
    return id;
}

/* n anonymous blocks for a sequence that holds no ids, evicting one cached
 * block for each block not free, as n calls of pool_alloc would; every
 * block must be obtainable. */
static inline void pool_alloc_anon(sched *s, int64_t n) {
    int64_t got = kvc_anon_alloc(s->pool, n);
    for (; got < n; got++) {
        int ok = s->pc && pcache_evict_one(s->pc, s->now) && kvc_anon_alloc(s->pool, 1) == 1;
        SIM_ASSERT(ok);
    }
}

/* Per-transfer latency of n blocks: one copy when the blocks are gathered
 * (the default), layers x 2 copies of each otherwise: many small copies
 * reach far less than the link's peak. */
static double pcie_latency_s(const sched *s, int64_t n) {
    double copies = s->cfg.copies_per_block > 1 ? (double)n * s->cfg.copies_per_block : 1.0;
    return copies * s->cfg.pcie_latency_s;
}

/* Starts a PCIe transfer of n blocks on l at now: it shares the direction
 * equally with the transfers in flight (sim/link.h). Returns its handle, or
 * -1 (out of memory: s->oom is set). */
static int64_t pcie_copy(sched *s, link *l, int64_t n) {
    int64_t h = link_start(l, s->now, (double)n * s->cfg.block_bytes, pcie_latency_s(s, n));
    if (h < 0)
        s->oom = 1;
    return h;
}

/* Whether q still waits for its blocks to come back over PCIe or from the
 * remote pool (the network is advanced to the step's time first). */
static int loading(const sched *s, const sched_seq *q) {
    return (q->xfer >= 0 && !link_done(s->h2d, q->xfer)) ||
           (q->rxfer >= 0 && !net_done(s->cfg.rnet, q->rxfer));
}

/* A block leaving the host tier (or HBM, without one) goes to the remote
 * pool, shared by the pool's replicas: one copy per key, sent over this
 * replica's NIC and the pool's. */
static void remote_demote(sched *s, uint64_t key, int32_t tokens, int64_t session) {
    pcache_block *h;
    if (s->cfg.remote == NULL || pcache_find(s->cfg.remote, key) != NULL)
        return;
    if (pcache_insert(s->cfg.remote, key, NULL, tokens, session, s->now, &h) != 1)
        return; /* nothing in the pool could make room: dropped */
    pcache_unref(s->cfg.remote, h, s->now);
    s->rdemote_bytes += s->cfg.block_bytes; /* sent as one transfer: remote_flush */
    s->pcie.remote_bytes_out += (int64_t)s->cfg.block_bytes;
}

/* Sends the blocks demoted (or written through) since the last call as one
 * transfer over this replica's NIC and the pool's, as an engine gathers
 * them into one RDMA write (remote_flush: when there are any). */
static void remote_send(sched *s) {
    int path[2];
    path[0] = s->cfg.rnic_out;
    path[1] = s->cfg.rpool_in;
    if (net_start(s->cfg.rnet, s->now, path, 2, s->rdemote_bytes, s->cfg.rlatency_s) < 0)
        s->oom = 1;
    s->rdemote_bytes = 0;
}

/* Called at the end of every operation that can cache or evict blocks
 * (at every step: the test is inline, the transfer rare). */
static inline void remote_flush(sched *s) {
    if (s->rdemote_bytes > 0)
        remote_send(s);
}

/* The host tier drops a block: to the remote pool, when there is one. */
static void on_host_evict(void *ctx, const pcache_block *b) {
    sched *s = ctx;
    if (s->dropping)
        return;
    remote_demote(s, b->key, b->tokens, b->session);
}

/* The cache returns an evicted block's storage to the pool; with a host
 * tier the block is first copied there (demoted), where later requests
 * can find it. The host tier is flat: its blocks have no parent links. */
static void on_cache_evict(void *ctx, const pcache_block *b) {
    sched *s = ctx;
    kvc_block_unref(s->pool, b->user);
    if (s->dropping)
        return; /* the replica stops: its memory goes, nothing is kept */
    if (s->host && pcache_find(s->host, b->key) == NULL) {
        pcache_block *h;
        if (pcache_insert(s->host, b->key, NULL, b->tokens, b->session, s->now, &h) == 1) {
            pcache_unref(s->host, h, s->now);
            s->pcie.bytes_d2h += (int64_t)s->cfg.block_bytes;
            (void)pcie_copy(s, s->d2h, 1);
        } /* else nothing in the host tier could make room: the block is dropped */
    } else if (s->host == NULL)
        remote_demote(s, b->key, b->tokens, b->session);
}

/* Whether a request's blocks can ever be found again: it belongs to a
 * session (later turns share its context) or carries content hashes. A
 * request with neither has keys no other request can produce; its blocks
 * are not cached (they could only be evicted). */
static int cacheable(const sched_seq *q) {
    return q->req.session_id >= 0 || q->n_hash > 0;
}

/* Content id of q's block j (tokens [j B, (j+1) B)): the trace's hash of the
 * covering hash block and the block's place in it; else the session and
 * position (every turn of a conversation repeats the earlier ones); else
 * the request and position. */
static uint64_t block_content(const sched *s, const sched_seq *q, int64_t j) {
    int64_t tok = j * s->cfg.block_tokens;
    int64_t hb = s->cfg.hash_block_tokens;
    if (q->n_hash > 0 && tok / hb < q->n_hash) {
        /* a block over several hash blocks (--block-tokens larger than, or
         * not dividing, --hash-block-tokens) holds each one's content */
        int64_t h = tok / hb, last = (tok + s->cfg.block_tokens - 1) / hb;
        uint64_t c = ((uint64_t)q->hash_ids[h] << 20) ^ (uint64_t)((tok % hb) + 1);
        for (h++; h <= last && h < q->n_hash; h++)
            c = pcache_key_chain(c, (uint64_t)q->hash_ids[h]);
        return c;
    }
    if (q->req.session_id >= 0) {
        uint64_t who = 0x5e55ULL + (uint64_t)q->req.session_id;
        if (q->req.session_key != 0) /* which conversation of that id */
            who = pcache_key_chain(who, q->req.session_key);
        return pcache_key_chain(who, (uint64_t)j);
    }
    return pcache_key_chain(0x4e0ULL + q->req.id, (uint64_t)j) ^ 0x8000000000000000ULL;
}

/* Offers q's newly full blocks to the cache: each is inserted under its
 * cached parent, or stays private when its parent is not cached or another
 * sequence cached the same content first. */
static int seq_scan_full(sched *s, sched_seq *q) {
    int64_t full = q->kv_tokens / s->cfg.block_tokens;
    if (s->pc == NULL || !cacheable(q))
        return SIM_OK;
    if (full > q->n_blocks)
        full = q->n_blocks;
    while (q->n_scanned < full) {
        int32_t j = q->n_scanned;
        uint64_t key = pcache_key_chain(q->last_key, block_content(s, q, j));
        pcache_block *parent = j > 0 ? q->cblocks[j - 1] : NULL;
        if (q->cblocks[j] == NULL && (j == 0 || parent != NULL) &&
            pcache_find(s->pc, key) == NULL) {
            pcache_block *b;
            int rc = pcache_insert(s->pc, key, parent, s->cfg.block_tokens, q->req.session_id,
                                   s->now, &b);
            if (rc < 0)
                return rc;
            if (rc == 1) {
                b->user = q->blocks[j];
                q->cblocks[j] = b;
                if (s->cfg.remote_write_through) /* stored in the pool as it is made */
                    remote_demote(s, key, s->cfg.block_tokens, q->req.session_id);
            }
        }
        q->last_key = key;
        q->n_scanned++;
    }
    return SIM_OK;
}

/* Grows q's tables to hold n blocks. */
static int seq_reserve(sched_seq *q, int32_t n) {
    int32_t ncap;
    int32_t *nb;
    pcache_block **nc;
    if (n <= q->cap_blocks || q->anon)
        return SIM_OK;
    ncap = q->cap_blocks ? 2 * q->cap_blocks : 16;
    while (ncap < n)
        ncap *= 2;
    nb = sim_realloc(q->blocks, (size_t)ncap * sizeof *nb);
    if (nb == NULL)
        return SIM_ENOMEM;
    q->blocks = nb;
    nc = sim_realloc(q->cblocks, (size_t)ncap * sizeof *nc);
    if (nc == NULL)
        return SIM_ENOMEM;
    q->cblocks = nc;
    q->cap_blocks = ncap;
    return SIM_OK;
}

/* Gives q n more blocks, the same ones in the same order as n calls of
 * seq_add_block: free blocks are taken in one pass, the rest by eviction. */
static int seq_add_blocks(sched *s, sched_seq *q, int64_t n) {
    int32_t k, got;
    int rc;
    if (n <= 0)
        return SIM_OK;
    if (q->anon) {
        pool_alloc_anon(s, n);
        q->n_blocks += (int32_t)n;
        s->n_table += n;
        return SIM_OK;
    }
    if ((rc = seq_reserve(q, (int32_t)(q->n_blocks + n))) != SIM_OK)
        return rc;
    got = kvc_block_alloc_n(s->pool, q->blocks + q->n_blocks, (int32_t)n);
    for (k = got; k < n; k++) {
        int32_t id = pool_alloc(s);
        if (id < 0 && kvc_oom(s->pool))
            return SIM_ENOMEM; /* the blocks exist, the memory to track them not */
        SIM_ASSERT(id >= 0);
        q->blocks[q->n_blocks + k] = id;
    }
    memset(q->cblocks + q->n_blocks, 0, (size_t)n * sizeof *q->cblocks);
    q->n_blocks += (int32_t)n;
    s->n_table += n;
    return SIM_OK;
}

/* Appends one fresh private block to q's table; one must be obtainable. */
static int seq_add_block(sched *s, sched_seq *q) {
    int32_t id;
    int rc;
    SIM_DASSERT(!q->anon); /* decode_alloc counts an anonymous sequence's block itself */
    if ((rc = seq_reserve(q, q->n_blocks + 1)) != SIM_OK)
        return rc;
    id = pool_alloc(s);
    if (id < 0 && kvc_oom(s->pool))
        return SIM_ENOMEM;
    SIM_ASSERT(id >= 0);
    q->cblocks[q->n_blocks] = NULL;
    q->blocks[q->n_blocks++] = id;
    s->n_table++;
    return SIM_OK;
}

/* Releases q's blocks, deepest first: its full blocks are cached first (a
 * finished request's blocks, output included, stay cached for later turns),
 * cached ones keep their storage and become evictable, private ones return
 * to the pool. */
/* Releases q's blocks; resume: q is preempted and will want them back. */
static int seq_release(sched *s, sched_seq *q, int resume) {
    int32_t i;
    int rc;
    if (q->anon) { /* never cached: the count goes back */
        kvc_anon_release(s->pool, q->n_blocks);
        s->n_table -= q->n_blocks;
        q->n_blocks = 0;
        return SIM_OK;
    }
    rc = seq_scan_full(s, q);
    for (i = q->n_blocks - 1; i >= 0; i--) {
        int32_t lo = i;
        if (q->cblocks[i] != NULL) {
            if (resume)
                pcache_unref_resume(s->pc, q->cblocks[i], s->now);
            else
                pcache_unref(s->pc, q->cblocks[i], s->now);
            continue;
        }
        while (lo > 0 && q->cblocks[lo - 1] == NULL)
            lo--;
        kvc_block_unref_n(s->pool, q->blocks + lo, i - lo + 1); /* private: i down to lo */
        i = lo;
    }
    s->n_table -= q->n_blocks;
    q->n_blocks = 0;
    q->n_scanned = 0;
    q->last_key = PCACHE_KEY_ROOT;
    return rc;
}

/* prefix_lookup's walk down the cache, for a cacheable q when there is a
 * cache; *pinned and *key start as prefix_lookup sets them. */
static int64_t prefix_walk(sched *s, sched_seq *q, int64_t target, int take, int64_t *pinned,
                           uint64_t *key) {
    int64_t j, max_hit = (target - 1) / s->cfg.block_tokens;
    uint64_t k = PCACHE_KEY_ROOT;
    for (j = 0; j < max_hit; j++) {
        pcache_block *b;
        k = pcache_key_chain(k, block_content(s, q, j));
        b = pcache_find(s->pc, k);
        if (b == NULL)
            break;
        *key = k;
        *pinned += b->refs == 0; /* obtainable until taken */
        if (!take)
            continue;
        pcache_ref(s->pc, b);
        pcache_access(s->pc, b, s->now);
        SIM_ASSERT(q->n_blocks == j); /* a waiting sequence holds no blocks */
        q->blocks[j] = b->user;
        q->cblocks[j] = b;
        q->n_blocks = (int32_t)(j + 1);
        s->n_table++;
        q->n_scanned = (int32_t)(j + 1);
        q->last_key = k;
    }
    return j;
}

/* Looks up q's longest cached prefix of full blocks, leaving at least one
 * token to compute. With take != 0 the blocks are referenced and become
 * q's first blocks (its tables must have room); otherwise nothing changes.
 * Returns the blocks found; *pinned counts those no sequence held (no
 * longer obtainable once taken); *key is the chained key of the last one
 * (PCACHE_KEY_ROOT when none). Inline: without a cache, or for a request
 * that cannot be cached, the test is all there is. */
static inline int64_t prefix_lookup(sched *s, sched_seq *q, int64_t target, int take,
                                    int64_t *pinned, uint64_t *key) {
    *pinned = 0;
    *key = PCACHE_KEY_ROOT;
    if (s->pc == NULL || !cacheable(q))
        return 0;
    return prefix_walk(s, q, target, take, pinned, key);
}

int64_t sched_block_keys(const sched_config *cfg, const sim_req *r, uint64_t *keys, int64_t cap) {
    sched tmp;
    sched_seq q;
    int64_t j, n;
    uint64_t k = PCACHE_KEY_ROOT;
    memset(&tmp, 0, sizeof tmp);
    tmp.cfg = *cfg;
    memset(&q, 0, sizeof q);
    q.req = *r;
    q.hash_ids = (uint32_t *)r->hash_ids; /* read only */
    q.n_hash = r->hash_ids ? r->n_hash_ids : 0;
    if (!cacheable(&q))
        return 0;
    n = (int64_t)r->prompt_tokens / cfg->block_tokens; /* full prompt blocks */
    for (j = 0; j < n && j < cap; j++) {
        k = pcache_key_chain(k, block_content(&tmp, &q, j));
        keys[j] = k;
    }
    return n;
}

int64_t sched_prefix_probe(const sched *s, const sim_req *r) {
    sched_seq q;
    int64_t pinned;
    uint64_t key;
    if (s->pc == NULL)
        return 0;
    memset(&q, 0, sizeof q);
    q.req = *r;
    q.hash_ids = (uint32_t *)r->hash_ids; /* read only: take = 0 */
    q.n_hash = r->hash_ids ? r->n_hash_ids : 0;
    return prefix_lookup((sched *)s, &q, r->prompt_tokens, 0, &pinned, &key) * s->cfg.block_tokens;
}

/* What tier_lookup does with each block it finds. */
enum tier_act {
    TIER_FIND = 0, /* nothing: a plan */
    TIER_TAKE,     /* an access: its recency is refreshed */
    TIER_HOLD,     /* a reference: it cannot be evicted until released */
    TIER_RELEASE   /* TIER_TAKE on a block TIER_HOLD holds: an access, then the
                      reference given back */
};

/* Blocks of q found in tier right after its first j0 blocks (key: the
 * chained key of block j0 - 1), up to block max_hit, each acted on. */
static int64_t tier_lookup(sched *s, pcache *tier, const sched_seq *q, int64_t j0, uint64_t key,
                           int64_t max_hit, enum tier_act act, uint64_t *key_out) {
    int64_t j;
    if (key_out)
        *key_out = key;
    if (tier == NULL)
        return 0;
    for (j = j0; j < max_hit; j++) {
        pcache_block *h;
        key = pcache_key_chain(key, block_content(s, q, j));
        h = pcache_find(tier, key);
        if (h == NULL)
            break;
        if (key_out)
            *key_out = key;
        if (act == TIER_TAKE || act == TIER_HOLD)
            pcache_ref(tier, h);
        if (act == TIER_TAKE || act == TIER_RELEASE)
            pcache_access(tier, h, s->now);
        if (act == TIER_TAKE || act == TIER_RELEASE)
            pcache_unref(tier, h, s->now);
    }
    return j - j0;
}

/* Remote-pool blocks worth fetching (after `hits` in HBM and host tiers):
 * all (--miss swap), none (recompute), or whichever of the fetch (link
 * latency, then the bytes at the slower side's bandwidth shared with the
 * transfers in flight) and the recompute is faster (cheaper). */
static int64_t remote_plan(sched *s, int64_t hits, int64_t rh) {
    double t_fetch, t_rec;
    if (rh <= 0 || s->cfg.miss == SCHED_MISS_SWAP)
        return rh;
    if (s->cfg.miss == SCHED_MISS_RECOMPUTE || s->cfg.recompute_s == NULL)
        return s->cfg.miss == SCHED_MISS_RECOMPUTE ? 0 : rh;
    t_fetch = s->cfg.rlatency_s +
              (double)rh * s->cfg.block_bytes * (double)(net_active(s->cfg.rnet) + 1) / s->cfg.rbw;
    t_rec = s->cfg.recompute_s(s->cfg.recompute_ctx, rh * s->cfg.block_tokens,
                               hits * s->cfg.block_tokens);
    return t_fetch < t_rec ? rh : 0;
}

/* Host-tier blocks worth bringing back for a request whose first `hits`
 * blocks are in HBM and the next hh in the host tier: all of them
 * (--miss swap), none (recompute), or whichever of the swap-in (waiting
 * for the link, then copying) and the recompute (the perf model's prefill
 * time of those tokens) is faster (cheaper). */
static int64_t host_plan(sched *s, int64_t hits, int64_t hh) {
    double t_swap, t_rec;
    if (hh <= 0 || s->cfg.miss == SCHED_MISS_SWAP)
        return hh;
    if (s->cfg.miss == SCHED_MISS_RECOMPUTE || s->cfg.recompute_s == NULL)
        return s->cfg.miss == SCHED_MISS_RECOMPUTE ? 0 : hh;
    /* the swap-in would share the direction with the transfers in flight */
    link_advance(s->h2d, s->now);
    t_swap = pcie_latency_s(s, hh) +
             (double)hh * s->cfg.block_bytes * (double)(link_active(s->h2d) + 1) / s->cfg.pcie_bw;
    t_rec = s->cfg.recompute_s(s->cfg.recompute_ctx, hh * s->cfg.block_tokens,
                               hits * s->cfg.block_tokens);
    return t_swap < t_rec ? hh : 0;
}

/* ---- decode membership ---- */

static int64_t seq_bucket(const sched *s, const sched_seq *q) {
    return mod_pos(q->d0 - q->kv0, s->cfg.block_tokens);
}

/* Blocks q holds. An anonymous decoding sequence's count is not stored
 * (a step takes the blocks of its decoders' new tokens as one count,
 * decode_alloc): it holds the blocks of its tokens, plus the block of the
 * step's token once the step's decode blocks are taken. */
static int32_t seq_blocks(const sched *s, const sched_seq *q) {
    if (q->anon && q->phase == SCHED_DECODE)
        return (int32_t)blocks_for(s, q->kv0 + (dclock(s) - q->d0) + (s->dec_clock == dclock(s)));
    return q->n_blocks;
}

/* The blocks of the decoders whose new token starts one (bucket r) in the
 * step on the decode clock, in bucket order. Anonymous ones are counted,
 * not stored (seq_blocks), and taken at once when the bucket has no
 * sequence with ids: the same blocks free, the same evictions. */
static int decode_alloc(sched *s, int64_t r) {
    seq_list *l = &s->bucket[r];
    sched_seq *q;
    int rc;
    if (l->n == 0)
        return SIM_OK; /* most steps: no decoder starts a block */
    /* set only where decoders exist: the step being formed then decodes,
     * so the decode clock moves past dec_clock before any sequence joins
     * decode (a call with no decoder may be followed by a step that does
     * not move the decode clock, SGLANG's prefill steps) */
    s->dec_clock = dclock(s);
    if (s->bucket_ids[r] == 0) {
        pool_alloc_anon(s, l->n);
        s->n_table += l->n;
    } else {
        for (q = l->head; q; q = q->lnext) {
            if (q->anon) {
                pool_alloc_anon(s, 1);
                s->n_table++;
            } else if ((rc = seq_scan_full(s, q)) != SIM_OK || (rc = seq_add_block(s, q)) != SIM_OK)
                return rc;
        }
    }
    return SIM_OK;
}

static void decode_leave(sched *s, sched_seq *q) {
    /* materialise the lazy counters at the current step */
    q->generated = (int32_t)(q->gen0 + (dclock(s) - q->d0));
    q->kv_tokens = q->kv0 + (dclock(s) - q->d0);
    if (q->anon)
        q->n_blocks = seq_blocks(s, q);
    else {
        s->bucket_ids[seq_bucket(s, q)]--;
        s->n_ids--;
    }
    list_remove(&s->bucket[seq_bucket(s, q)], q);
    s->n_decode--;
    s->dec_base -= q->kv0 - q->d0;
    if (q->heap_pos >= 0)
        heap_remove(s, q);
}

/* ---- public ---- */

int sched_config_check(const sched_config *c, sim_err *err) {
    if (c->max_num_seqs < 1) {
        sim_err_set(err, "config", 0, 0, "max-num-seqs: expected an integer >= 1, got '%d'",
                    c->max_num_seqs);
        return SIM_EINVAL;
    }
    if (c->max_batched_tokens < c->max_num_seqs) {
        sim_err_set(err, "config", 0, 0,
                    "max-batched-tokens: expected at least max-num-seqs (%d), got '%lld'",
                    c->max_num_seqs, (long long)c->max_batched_tokens);
        return SIM_EINVAL;
    }
    if (c->block_tokens < 1 || c->block_tokens > 1024) {
        sim_err_set(err, "config", 0, 0, "block-tokens: expected an integer in 1..1024, got '%d'",
                    c->block_tokens);
        return SIM_EINVAL;
    }
    if (c->kv_blocks < 1 || c->kv_blocks > INT32_MAX) {
        sim_err_set(err, "config", 0, 0,
                    "kv-blocks: expected an integer in 1..2147483647, got '%lld' (%s)",
                    (long long)c->kv_blocks,
                    c->kv_blocks < 1 ? "the KV pool has no room: weights and reserve fill the GPU"
                                     : "more blocks than a pool holds: a larger --block-tokens");
        return SIM_EINFEASIBLE;
    }
    if (!(c->watermark >= 0 && c->watermark <= 0.5)) {
        sim_err_set(err, "config", 0, 0, "watermark: expected a fraction in 0..0.5, got '%g'",
                    c->watermark);
        return SIM_EINVAL;
    }
    if (c->sched_policy < SCHED_POLICY_VLLM || c->sched_policy > SCHED_POLICY_TRTLLM) {
        sim_err_set(err, "config", 0, 0, "sched-policy: expected vllm, sglang or trtllm, got '%d'",
                    c->sched_policy);
        return SIM_EINVAL;
    }
    if (c->max_queue < 0) {
        sim_err_set(err, "config", 0, 0, "max-queue: expected a limit >= 0, got '%lld'",
                    (long long)c->max_queue);
        return SIM_EINVAL;
    }
    if (c->max_queue_ns < 0) {
        sim_err_set(err, "config", 0, 0, "max-queue-time: expected seconds >= 0, got '%g'",
                    sim_time_to_s(c->max_queue_ns));
        return SIM_EINVAL;
    }
    if (c->max_ctx < 1) {
        sim_err_set(err, "config", 0, 0, "model context: expected >= 1 token, got '%lld'",
                    (long long)c->max_ctx);
        return SIM_EINVAL;
    }
    return SIM_OK;
}

int sched_create(const sched_config *c, const sched_cb *cb, sched **out) {
    sched *s;
    *out = NULL;
    if (sched_config_check(c, NULL) != SIM_OK)
        return SIM_EINVAL;
    s = SIM_NEW(sched);
    if (s == NULL)
        return SIM_ENOMEM;
    s->cfg = *c;
    s->cb = *cb;
    s->pool = kvc_pool_create(c->kv_blocks);
    s->bucket = SIM_NEW_ARRAY(seq_list, (size_t)c->block_tokens);
    s->bucket_ids = SIM_NEW_ARRAY(int64_t, (size_t)c->block_tokens);
    s->dec_clock = -1;
    s->chunks = SIM_NEW_ARRAY(sched_chunk, (size_t)c->max_num_seqs);
    s->heap_cap = c->max_num_seqs;
    s->heap = SIM_NEW_ARRAY(sched_seq *, (size_t)s->heap_cap);
    if (s->pool == NULL || s->bucket == NULL || s->bucket_ids == NULL || s->chunks == NULL ||
        s->heap == NULL) {
        sched_destroy(s);
        return SIM_ENOMEM;
    }
    s->watermark_blocks = watermark_blocks(c);
    if ((c->host_blocks > 0 || c->preempt_swap) && c->pcie_bw > 0 && c->block_bytes > 0) {
        s->h2d = link_create(c->pcie_bw);
        s->d2h = link_create(c->pcie_bw);
        if (s->h2d == NULL || s->d2h == NULL) {
            sched_destroy(s);
            return SIM_ENOMEM;
        }
    }
    if (c->policy != NULL) {
        /* the cache may hold every block of the pool; storage comes back
         * to the pool through the observer when a block is evicted */
        int rc = pcache_create(c->kv_blocks, c->policy, &c->policy_params, &s->pc, NULL);
        if (rc != SIM_OK) {
            sched_destroy(s);
            return rc;
        }
        pcache_set_observer(s->pc, on_cache_evict, s);
        if (c->host_blocks > 0 && (rc = pcache_create(c->host_blocks, c->policy, &c->policy_params,
                                                      &s->host, NULL)) != SIM_OK) {
            sched_destroy(s);
            return rc;
        }
        if (s->host && c->remote)
            pcache_set_observer(s->host, on_host_evict, s);
    }
    *out = s;
    return SIM_OK;
}

void sched_destroy(sched *s) {
    int i, j;
    if (s == NULL)
        return;
    for (i = 0; i < s->n_chunks_mem; i++) {
        for (j = 0; j < SEQ_CHUNK; j++) {
            sim_free(s->chunks_mem[i][j].blocks);
            sim_free(s->chunks_mem[i][j].cblocks);
            sim_free(s->chunks_mem[i][j].hash_ids);
        }
        sim_free(s->chunks_mem[i]);
    }
    sim_free(s->chunks_mem);
    pcache_destroy(s->pc);
    pcache_destroy(s->host);
    link_destroy(s->h2d);
    link_destroy(s->d2h);
    kvc_pool_destroy(s->pool);
    sim_free(s->bucket);
    sim_free(s->bucket_ids);
    sim_free(s->chunks);
    sim_free(s->heap);
    sim_free(s);
}

enum met_reject sched_reject_static(const sched_config *c, const sim_req *r) {
    int64_t need_tokens = (int64_t)r->prompt_tokens + r->output_tokens;
    int64_t bt = c->block_tokens;
    int64_t watermark = watermark_blocks(c);
    if (need_tokens > c->max_ctx)
        return MET_REJECT_CONTEXT;
    /* admission keeps the watermark free, so a request (or, preempted, its
     * prompt and output so far) needing more could wait for ever; TRTLLM
     * admits only with its whole reservation (one slot more) obtainable */
    if ((c->sched_policy == SCHED_POLICY_TRTLLM
             ? trt_blocks(c, r)
             : (need_tokens - 1 + bt - 1) / bt) > c->kv_blocks - watermark)
        return MET_REJECT_KV_CAPACITY;
    /* a prompt whose KV comes with it (prefilled elsewhere) computes only
     * the rest at its admission; a recompute after a preemption may always
     * be chunked */
    if (!c->chunked_prefill && (int64_t)r->prompt_tokens - r->kv_ready > c->max_batched_tokens)
        return MET_REJECT_BATCH_BUDGET;
    return MET_REJECT_NONE;
}

int sched_add(sched *s, const sim_req *r, sim_time now) {
    sched_seq *q;
    enum met_reject why = sched_reject_static(&s->cfg, r);
    /* a request prefilled elsewhere brings its KV: the decode side queues it
     * past --max-queue rather than losing work already done (docs/fleet.md) */
    if (why == MET_REJECT_NONE && s->cfg.max_queue > 0 && r->kv_ready == 0 &&
        s->fresh.n + s->resumed.n >= s->cfg.max_queue)
        why = MET_REJECT_QUEUE_FULL;
    if (why != MET_REJECT_NONE) {
        s->cb.on_reject(s->cb.ctx, r, why, now);
        return SIM_OK;
    }
    q = seq_get(s);
    if (q == NULL)
        return SIM_ENOMEM;
    q->req = *r;
    q->req.hash_ids = NULL;
    q->req.n_hash_ids = 0;
    if (r->n_hash_ids > 0 && r->hash_ids != NULL) {
        if (r->n_hash_ids > q->cap_hash) {
            uint32_t *nh = sim_realloc(q->hash_ids, (size_t)r->n_hash_ids * sizeof *nh);
            if (nh == NULL) {
                seq_put(s, q);
                return SIM_ENOMEM;
            }
            q->hash_ids = nh;
            q->cap_hash = r->n_hash_ids;
        }
        memcpy(q->hash_ids, r->hash_ids, (size_t)r->n_hash_ids * sizeof *q->hash_ids);
        q->n_hash = r->n_hash_ids;
    }
    q->anon = s->cfg.anon_blocks && (s->pc == NULL || !cacheable(q));
    q->phase = SCHED_WAITING;
    list_push_back(&s->fresh, q);
    s->prefill_left += r->prompt_tokens;
    return SIM_OK;
}

static int preempt(sched *s, sched_seq *q) {
    int rc;
    if (q->phase == SCHED_DECODE)
        decode_leave(s, q);
    else {
        SIM_ASSERT(q->phase == SCHED_PREFILL);
        list_remove(&s->prefill, q);
        s->prefill_left -= q->prefill_target - q->kv_tokens;
    }
    run_remove(s, q);
    q->lost_kv = q->kv_tokens; /* recomputed, less what the cache keeps, on resumption */
    q->xfer = -1;              /* a swap-in in flight goes on, but nobody waits for it */
    q->rxfer = -1;
    if (s->cfg.preempt_swap && s->d2h && q->kv_tokens > 0 &&
        s->swap_used + q->n_blocks <= s->cfg.swap_blocks) {
        /* swap out: the KV goes to host swap space and comes back later */
        q->swapped_kv = q->kv_tokens;
        q->swap_blocks = q->n_blocks;
        s->swap_used += q->n_blocks;
        s->pcie.bytes_d2h += (int64_t)((double)q->n_blocks * s->cfg.block_bytes);
        s->pcie.swapped_out_seqs++;
        (void)pcie_copy(s, s->d2h, q->n_blocks);
        q->lost_kv = 0;
    }
    rc = seq_release(s, q, 1);
    q->kv_tokens = 0;
    q->preemptions++;
    q->phase = SCHED_WAITING;
    list_push_front(&s->resumed, q);
    s->prefill_left += (int64_t)q->req.prompt_tokens + q->generated;
    s->n_preemptions++;
    return rc;
}

static void emit_chunk(sched *s, sched_batch *b, sched_seq *q, int64_t c) {
    sched_chunk *ch;
    SIM_ASSERT(b->n_chunks < s->cfg.max_num_seqs); /* s->chunks holds max_num_seqs */
    ch = &s->chunks[b->n_chunks++];
    ch->seq = q;
    ch->tokens = c;
    ch->cached = q->kv_tokens;
    ch->samples = (q->kv_tokens + c == q->prefill_target);
    perf_batch_add_prefill(&b->agg, c, q->kv_tokens, ch->samples);
}

/* The step's decode figures from the decoding sequences now: their count
 * and summed context (the samples: the change in the count). */
static void decode_figures(sched *s, sched_batch *b) {
    b->agg.n_sample += s->n_decode - b->n_decode;
    b->n_decode = s->n_decode;
    b->agg.n_decode = s->n_decode;
    b->agg.decode_ctx = s->n_decode > 0 ? s->dec_base + (int64_t)s->n_decode * (dclock(s) + 1) : 0;
}

/* Step phase (2), decode: one token for each decoding sequence, a block
 * for each whose new token starts one, preempting the newest running
 * sequence while the pool is short. Takes the decoders' tokens from *budget
 * and adds them to *nseq. SIM_OK or SIM_ENOMEM. */
static int step_decode(sched *s, sched_batch *b, int64_t *budget, int *nseq) {
    int64_t need, r;
    int rc;

    /* (2) decode: one token each; blocks for those starting a block */
    r = mod_pos(dclock(s), s->cfg.block_tokens);
    need = s->bucket[r].n;
    while (need > 0 && avail(s) < need) { /* avail is never negative */
        sched_seq *victim = s->run_tail;
        SIM_ASSERT(victim != NULL);
        if (victim->phase == SCHED_DECODE && seq_bucket(s, victim) == r)
            need--;
        if ((rc = preempt(s, victim)) != SIM_OK)
            return rc;
        b->n_preempted++;
    }
    if ((rc = decode_alloc(s, r)) != SIM_OK)
        return rc;
    decode_figures(s, b);
    *budget -= s->n_decode;
    *nseq += s->n_decode;
    return SIM_OK;
}

/* Step phases (3) and (4), prompts: the running prefills continue in
 * admission order, then waiting requests are admitted (preempted ones
 * first) while the budgets and the pool allow; admission only when nothing
 * was preempted this step. Takes the chunks' tokens from *budget_io and
 * counts their sequences in *nseq_io. SIM_OK or SIM_ENOMEM. */
static int step_prefill(sched *s, sched_batch *b, sim_time now, int64_t *budget_io, int *nseq_io) {
    int64_t budget = *budget_io, need;
    int nseq = *nseq_io, rc, n_wait = 0, hold = 0;
    sched_seq *q, *next;

    /* (3) running prefills, admission order. One whose blocks are still
     * coming over PCIe or the network computes nothing yet but keeps its
     * place in the sequence budget (n_wait), so admission cannot overfill
     * the batch it joins once they are back. */
    for (q = s->prefill.head; q && budget > 0; q = next) {
        int64_t c = q->prefill_target - q->kv_tokens;
        int gone = 0;
        next = q->lnext;
        if (loading(s, q)) {
            n_wait++;
            continue;
        }
        if (nseq >= s->cfg.max_num_seqs)
            break;
        if (c > budget) {
            /* without chunked prefill a prompt (not a recompute) waits for a
             * step with room for all of it, ahead of new admissions */
            if (!s->cfg.chunked_prefill && q->preemptions == 0) {
                hold = 1;
                break;
            }
            c = budget;
        }
        need = blocks_for(s, q->kv_tokens + c) - q->n_blocks;
        while (avail(s) < need) {
            sched_seq *victim = s->run_tail;
            int decoding = victim != NULL && victim->phase == SCHED_DECODE;
            SIM_ASSERT(victim != NULL);
            if (victim == next)
                next = NULL; /* the tail was the next prefill: stop after this one */
            if ((rc = preempt(s, victim)) != SIM_OK)
                return rc;
            b->n_preempted++;
            if (decoding && b->n_decode > 0) {
                /* it was in this step's decode: out of the batch again */
                int was = b->n_decode;
                decode_figures(s, b);
                budget += was - b->n_decode;
                nseq -= was - b->n_decode;
            }
            if (victim == q) {
                gone = 1;
                break;
            }
        }
        if (gone)
            break;
        if ((rc = seq_add_blocks(s, q, need)) != SIM_OK)
            return rc;
        emit_chunk(s, b, q, c);
        budget -= c;
        nseq++;
    }

    /* (4) admission, only when nothing was preempted this step */
    while (b->n_preempted == 0 && !hold && nseq + n_wait < s->cfg.max_num_seqs && budget > 0 &&
           (s->cfg.sched_policy != SCHED_POLICY_SGLANG || s->n_running < s->cfg.max_num_seqs)) {
        seq_list *from = s->resumed.head ? &s->resumed : &s->fresh;
        int64_t target, c, hits, hh, kv_hit, pinned, ready, rh = 0;
        uint64_t key, rkey = PCACHE_KEY_ROOT;
        q = from->head;
        if (q == NULL)
            break;
        target = (int64_t)q->req.prompt_tokens + q->generated;
        hits = prefix_lookup(s, q, target, 0, &pinned, &key);
        if (q->swapped_kv > 0) {
            /* resuming from swap space: what the HBM cache no longer has
             * comes back over PCIe, the partial last block included */
            kv_hit = hits * s->cfg.block_tokens;
            if (q->swapped_kv > kv_hit)
                kv_hit = q->swapped_kv;
            hh = blocks_for(s, kv_hit) - hits;
        } else {
            int64_t found = tier_lookup(s, s->host, q, hits, key,
                                        (target - 1) / s->cfg.block_tokens, TIER_FIND, &rkey);
            hh = host_plan(s, hits, found);
            /* the remote pool continues the chain where the host tier ends
             * (only when every host-tier block found is used) */
            if (s->cfg.remote && hh == found)
                rh = remote_plan(s, hits + hh,
                                 tier_lookup(s, s->cfg.remote, q, hits + hh, rkey,
                                             (target - 1) / s->cfg.block_tokens, TIER_FIND, NULL));
            kv_hit = (hits + hh + rh) * s->cfg.block_tokens;
        }
        /* KV delivered with the request (disaggregated decode): blocks are
         * allocated for it, nothing is computed; first admission only */
        ready = 0;
        if (q->admitted_ns < 0 && q->req.kv_ready > kv_hit && q->req.kv_ready < target) {
            ready = q->req.kv_ready - kv_hit;
            kv_hit = q->req.kv_ready;
        }
        c = target - kv_hit < budget ? target - kv_hit : budget;
        /* without chunked prefill a prompt, or a preempted request's
         * recompute, waits for a step with room for all of it (vLLM's
         * waiting loop); a recompute that outgrew the whole budget is
         * chunked, or it could never resume (vLLM refuses such a budget) */
        if (!s->cfg.chunked_prefill && c < target - kv_hit &&
            (from == &s->fresh || target - kv_hit <= s->cfg.max_batched_tokens))
            break;
        need = blocks_for(s, kv_hit + c) - hits;
        if (avail(s) - pinned - need < s->watermark_blocks)
            break;
        /* GUARANTEED_NO_EVICT: room for its whole sequence besides what the
         * running ones may still allocate */
        if (s->cfg.sched_policy == SCHED_POLICY_TRTLLM &&
            avail(s) - pinned - (s->resv - s->n_table) - (trt_blocks(&s->cfg, &q->req) - hits) <
                s->watermark_blocks)
            break;
        if ((rc = seq_reserve(q, (int32_t)(hits + need))) != SIM_OK)
            return rc;
        list_remove(from, q);
        q->phase = SCHED_PREFILL;
        q->prefill_target = target;
        (void)prefix_lookup(s, q, target, 1, &pinned, &key);
        q->xfer = -1;
        q->rxfer = -1;
        if (hh > 0) {
            /* swap in: fresh HBM blocks filled over PCIe; the prefill waits */
            double bytes = (double)hh * s->cfg.block_bytes;
            /* the host blocks planned are held while HBM makes room: the
             * blocks it demotes to the host tier cannot evict them */
            if (q->swapped_kv == 0)
                (void)tier_lookup(s, s->host, q, hits, key, hits + hh, TIER_HOLD, NULL);
            rc = seq_add_blocks(s, q, hh);
            if (q->swapped_kv == 0) {
                int64_t got = tier_lookup(s, s->host, q, hits, key, hits + hh, TIER_RELEASE, NULL);
                SIM_ASSERT(got == hh);
                s->pcie.swapped_in_tokens += hh * s->cfg.block_tokens;
            }
            if (rc != SIM_OK)
                return rc;
            need -= hh;
            q->xfer = pcie_copy(s, s->h2d, hh);
            s->pcie.bytes_h2d += (int64_t)bytes;
        }
        if (rh > 0) {
            /* fetch from the remote pool: fresh HBM blocks filled over the
             * network (the pool's NIC, then this replica's); the prefill waits */
            int path[2];
            double bytes = (double)rh * s->cfg.block_bytes;
            if ((rc = seq_add_blocks(s, q, rh)) != SIM_OK)
                return rc;
            need -= rh;
            (void)tier_lookup(s, s->cfg.remote, q, hits + hh, rkey, hits + hh + rh, TIER_TAKE,
                              NULL);
            path[0] = s->cfg.rpool_out;
            path[1] = s->cfg.rnic_in;
            q->rxfer = net_start(s->cfg.rnet, now, path, 2, bytes, s->cfg.rlatency_s);
            if (q->rxfer < 0)
                return SIM_ENOMEM;
            s->pcie.remote_bytes_in += (int64_t)bytes;
            s->pcie.remote_in_tokens += rh * s->cfg.block_tokens;
        }
        if (q->swap_blocks > 0) {
            s->swap_used -= q->swap_blocks;
            q->swap_blocks = 0;
            q->swapped_kv = 0;
        }
        q->kv_tokens = kv_hit;
        if ((hh > 0 || rh > 0) && (rc = seq_scan_full(s, q)) != SIM_OK) /* now cached in HBM */
            return rc;
        if (q->admitted_ns < 0) {
            /* a later turn: the context computed in earlier turns and not
             * found in the cache is computed again. Of that context, the
             * previous turn's last output token was sampled, never fed
             * back: its KV is computed now for the first time. */
            int64_t ctx = (int64_t)q->req.prompt_tokens - q->req.new_tokens - 1;
            q->admitted_ns = now;
            q->hit_tokens = kv_hit - ready;
            if (ctx > kv_hit)
                q->recomputed_tokens += ctx - kv_hit;
        } else if (q->lost_kv > kv_hit) {
            q->recomputed_tokens += q->lost_kv - kv_hit; /* resuming after preemption */
        }
        s->prefill_left -= kv_hit;
        run_push_back(s, q);
        list_push_back(&s->prefill, q);
        if ((rc = seq_add_blocks(s, q, need)) != SIM_OK)
            return rc;
        if (loading(s, q)) {
            n_wait++; /* admitted, holding its blocks; computes once they are back */
            continue;
        }
        emit_chunk(s, b, q, c);
        budget -= c;
        nseq++;
    }

    *budget_io = budget;
    *nseq_io = nseq;
    return SIM_OK;
}

int sched_step(sched *s, sim_time now, sched_batch *b) {
    int64_t budget = s->cfg.max_batched_tokens;
    int nseq = 0, rc;
    sched_seq *q;

    memset(b, 0, sizeof *b);
    b->step = s->step;
    b->start_ns = now;
    if (s->cfg.rnet)
        net_advance(s->cfg.rnet, now); /* remote fetches that ended by now are done */
    b->chunks = s->chunks;
    s->now = now;
    if (s->h2d)
        link_advance(s->h2d, now); /* which swap-ins are done by now */
    if (s->pc)
        (void)pcache_expire(s->pc, now); /* idle-TTL policies drop what has expired */

    /* (1) queue timeouts: fresh requests are in arrival order; one
     * prefilled elsewhere (kv_ready) has had its first token and waits
     * rather than being lost (docs/fleet.md) */
    if (s->cfg.max_queue_ns > 0) {
        q = s->fresh.head;
        while (q && now - q->req.arrival_ns > s->cfg.max_queue_ns) {
            sched_seq *next = q->lnext;
            if (q->req.kv_ready == 0) {
                list_remove(&s->fresh, q);
                s->prefill_left -= q->req.prompt_tokens;
                s->cb.on_reject(s->cb.ctx, &q->req, MET_REJECT_QUEUE_TIMEOUT, now);
                seq_put(s, q);
            }
            q = next;
        }
    }

    /* (2) decode, then (3) and (4) prompts in the remaining budget; under
     * SGLANG the prompts take the whole budget and the decoders wait, and
     * only a step with no prompt to run decodes */
    s->last_skipped = 0;
    if (s->cfg.sched_policy == SCHED_POLICY_SGLANG) {
        if ((rc = step_prefill(s, b, now, &budget, &nseq)) != SIM_OK)
            return rc;
        if (nseq > 0)
            s->last_skipped = 1;
        else if ((rc = step_decode(s, b, &budget, &nseq)) != SIM_OK)
            return rc;
    } else {
        if ((rc = step_decode(s, b, &budget, &nseq)) != SIM_OK ||
            (rc = step_prefill(s, b, now, &budget, &nseq)) != SIM_OK)
            return rc;
    }

    /* every decoding sequence decodes in the step, or none (SGLANG's
     * prompt steps): a preempted one is out of the figures */
    SIM_ASSERT(b->n_decode == 0 || b->n_decode == s->n_decode);
    SIM_ASSERT(b->n_chunks + b->n_decode <= s->cfg.max_num_seqs);
    b->agg.n_prefill = b->n_chunks;
    b->kv_blocks_used = in_use(s);
    b->waiting = (int)(s->fresh.n + s->resumed.n);
    if (nseq > 0) {
        s->step++;
        s->n_skip += s->last_skipped;
    }
    remote_flush(s);
    return nseq;
}

static void finish(sched *s, sched_seq *q, sim_time end) {
    run_remove(s, q);
    s->now = end;
    if (seq_release(s, q, 0) != SIM_OK)
        s->oom = 1;
    s->cb.on_finish(s->cb.ctx, q, end);
    seq_put(s, q);
}

int sched_step_done(sched *s, const sched_batch *b, sim_time end) {
    int i, rc;
    SIM_ASSERT(b->step == s->step - 1);
    s->now = end;
    /* decode finishes: the heap holds the step producing each last token
     * (on the decode clock: the step's index less the steps before it that
     * did not decode) */
    while (b->n_decode > 0 && s->heap_n > 0 && s->heap[0]->fin_step == b->step - s->n_skip) {
        sched_seq *q = s->heap[0];
        s->step = b->step + 1; /* counters: the step is done */
        decode_leave(s, q);
        finish(s, q, end);
    }
    s->step = b->step + 1;
    /* prefill progress */
    for (i = 0; i < b->n_chunks; i++) {
        sched_chunk *ch = &b->chunks[i];
        sched_seq *q = ch->seq;
        q->kv_tokens += ch->tokens;
        s->prefill_left -= ch->tokens;
        if ((rc = seq_scan_full(s, q)) != SIM_OK) /* blocks the chunk filled */
            return rc;
        if (!ch->samples)
            continue;
        list_remove(&s->prefill, q);
        q->generated++;
        if (q->first_token_ns < 0) {
            q->first_token_ns = end;
            s->cb.on_first_token(s->cb.ctx, q, end);
        }
        /* the model's end of sequence: the trace's output length */
        if (q->generated >= q->req.output_tokens) {
            finish(s, q, end);
            continue;
        }
        q->phase = SCHED_DECODE;
        q->d0 = b->step + 1 - s->n_skip; /* the decode clock of the next step */
        q->gen0 = q->generated;
        q->kv0 = q->kv_tokens;
        q->fin_step = q->d0 + (q->req.output_tokens - q->gen0) - 1;
        list_push_back(&s->bucket[seq_bucket(s, q)], q);
        if (!q->anon) {
            s->bucket_ids[seq_bucket(s, q)]++;
            s->n_ids++;
        }
        s->n_decode++;
        s->dec_base += q->kv0 - q->d0;
        if (s->heap_n == s->heap_cap) {
            int64_t ncap = 2 * s->heap_cap;
            sched_seq **nh = sim_realloc(s->heap, (size_t)ncap * sizeof *nh);
            if (nh == NULL)
                return SIM_ENOMEM;
            s->heap = nh;
            s->heap_cap = ncap;
        }
        s->heap[s->heap_n] = q;
        q->heap_pos = s->heap_n++;
        heap_up(s, q->heap_pos);
    }
    remote_flush(s);
    if (s->oom) {
        s->oom = 0;
        return SIM_ENOMEM;
    }
    return SIM_OK;
}

/* ---- decode runs ---- */

/* Whether step formation would admit nothing, given the pool after the next
 * step's decode allocations. Only decreasing free blocks follow in a run, so
 * a blocked admission stays blocked until something finishes. */
static int admission_blocked(sched *s) {
    sched_seq *q = s->resumed.head ? s->resumed.head : s->fresh.head;
    int sg = s->cfg.sched_policy == SCHED_POLICY_SGLANG;
    int64_t budget = s->cfg.max_batched_tokens - (sg ? 0 : s->n_decode);
    int64_t target, c, free_after, hits, kv_hit, pinned;
    uint64_t key;
    if (q == NULL || s->n_running >= s->cfg.max_num_seqs || budget <= 0)
        return 1;
    if (s->host != NULL || q->swapped_kv > 0 || (s->pc && s->cfg.policy->pick_expired))
        return 0; /* demotions or expiries may take the head's blocks; swap-ins: no runs */
    if (q->admitted_ns < 0 && q->req.kv_ready > 0)
        return 0; /* KV delivered with it (a disaggregated decode pool): admitted with one
                     token to compute, which the plan below does not model */
    /* the same plan as sched_step's admission, without taking anything;
     * within a run the head's cached prefix can only shrink (evictions) and
     * obtainable blocks only decrease, so blocked stays blocked */
    target = (int64_t)q->req.prompt_tokens + q->generated;
    hits = prefix_lookup(s, q, target, 0, &pinned, &key);
    kv_hit = hits * s->cfg.block_tokens;
    c = target - kv_hit < budget ? target - kv_hit : budget;
    if (!s->cfg.chunked_prefill && c < target - kv_hit) {
        /* it waits for room for all of it; a resumed head whose recompute
         * fits the budget only thanks to its cached prefix would be chunked
         * once evictions shrank that prefix: no run then */
        if (s->resumed.head == NULL || target <= s->cfg.max_batched_tokens)
            return 1;
        if (target - kv_hit <= s->cfg.max_batched_tokens)
            return 0;
    }
    /* SGLANG admits before the step's decode allocations (there are none
     * in a prefill step) */
    free_after = avail(s) - (sg ? 0 : s->bucket[mod_pos(dclock(s), s->cfg.block_tokens)].n);
    /* TRTLLM: decode allocations draw on the running requests' reservation,
     * so obtainable less reserved blocks stay what they are now for the
     * whole run (a blocked head stays blocked) */
    if (s->cfg.sched_policy == SCHED_POLICY_TRTLLM &&
        avail(s) - pinned - (s->resv - s->n_table) - (trt_blocks(&s->cfg, &q->req) - hits) <
            s->watermark_blocks)
        return 1;
    /* when the budget caps the chunk, evicting the head's unheld cached
     * prefix during the run would free blocks without adding to what it
     * needs: count those blocks as obtainable (blocked for good only if it
     * stays blocked with all of them evicted) */
    if (c < target - kv_hit)
        pinned = 0;
    return free_after - pinned - (blocks_for(s, kv_hit + c) - hits) < s->watermark_blocks;
}

int64_t sched_decode_run_limit(const sched *s, sim_time *deadline_ns) {
    *deadline_ns = SIM_TIME_MAX;
    if (s->n_decode == 0 || s->prefill.n > 0 || s->n_running != s->n_decode ||
        !admission_blocked((sched *)s)) /* plans only: nothing is taken */
        return 0;
    if (s->cfg.max_queue_ns > 0 && s->fresh.head)
        *deadline_ns = s->fresh.head->req.arrival_ns > SIM_TIME_MAX - s->cfg.max_queue_ns
                           ? SIM_TIME_MAX
                           : s->fresh.head->req.arrival_ns + s->cfg.max_queue_ns;
    SIM_ASSERT(s->heap_n > 0 && s->heap[0]->fin_step >= dclock(s));
    return s->heap[0]->fin_step - dclock(s) + 1;
}

int64_t sched_decode_need(const sched *s, int64_t i) {
    SIM_DASSERT(i >= 0);
    return s->bucket[(dclock(s) + i) % s->cfg.block_tokens].n; /* dclock(s) + i >= 0 */
}

void sched_decode_needs(const sched *s, int64_t i0, int64_t n, int64_t *need) {
    int64_t k, bt = s->cfg.block_tokens, r;
    SIM_DASSERT(i0 >= 0);
    r = (dclock(s) + i0) % bt;
    for (k = 0; k < n; k++) {
        need[k] = s->bucket[r].n;
        if (++r == bt)
            r = 0;
    }
}

void sched_decode_agg(const sched *s, int64_t i, perf_batch *agg) {
    memset(agg, 0, sizeof *agg);
    agg->n_decode = s->n_decode;
    agg->n_sample = s->n_decode;
    agg->decode_ctx = s->dec_base + (int64_t)s->n_decode * (dclock(s) + i + 1);
}

/* One step of sched_decode_advance; r is the decode clock's position in its
 * block (mod_pos(dclock(s), block_tokens)), expire whether the cache expires
 * blocks by time. The caller checks that the step finishes nothing. */
static inline int advance_one(sched *s, sim_time now, int64_t r, int expire) {
    int rc;
    SIM_DASSERT(avail(s) >= sched_decode_need(s, 0)); /* the planner counted them */
    SIM_DASSERT(r == mod_pos(dclock(s), s->cfg.block_tokens));
    s->now = now;
    if (expire)
        (void)pcache_expire(s->pc, now);
    if (s->bucket[r].n != 0 && (rc = decode_alloc(s, r)) != SIM_OK)
        return rc;
    s->step++;
    s->last_skipped = 0;
    remote_flush(s);
    return SIM_OK;
}

int sched_decode_advance(sched *s, sim_time now) {
    SIM_ASSERT(s->prefill.n == 0 && s->n_decode > 0);
    SIM_ASSERT(s->heap[0]->fin_step > dclock(s));
    return advance_one(s, now, mod_pos(dclock(s), s->cfg.block_tokens),
                       s->pc && pcache_has_expiry(s->pc));
}

/* sched_decode_advance_n for a run whose decoders all hold anonymous blocks
 * (no ids to hand out), in a cache that expires nothing, with nothing to
 * send to the remote pool: when the pool's free blocks cover the run's
 * decode blocks (no step evicts), the steps' allocations are taken as one
 * count at the end, as a single step takes a residue's blocks: the same
 * blocks free, the same counters, and the same peak (in use only grows in
 * a run). r and u are the decode clock's residue and the blocks in use
 * before the run. Returns 0, having changed nothing but used, when they
 * fall short: the run then goes step by step. */
static int advance_anon(sched *s, sim_time t0, const sim_time *end, int64_t n, int64_t r, int64_t u,
                        int64_t *used) {
    int64_t i, bt = s->cfg.block_tokens, free_blocks = kvc_free(s->pool), total = 0, last = -1;
    int64_t got;
    for (i = 0; i < n; i++) {
        int64_t need = s->bucket[r].n;
        if (need != 0) {
            total += need;
            if (total > free_blocks)
                return 0;
            last = i;
        }
        used[i] = u + total;
        if (++r == bt)
            r = 0;
    }
    got = kvc_anon_alloc(s->pool, total);
    SIM_ASSERT(got == total);
    s->n_table += total;
    if (last >= 0)
        s->dec_clock = dclock(s) + last; /* decode_alloc's mark of the last allocating step */
    s->now = n > 1 ? end[n - 2] : t0;
    s->step += n;
    s->last_skipped = 0;
    return 1;
}

/* The pool changes only where a step allocates decode blocks or expires
 * cached ones, so the blocks in use are counted again only after those
 * steps. The finish heap does not change in a run: the last step finishing
 * nothing is checked once, for all of them. */
int sched_decode_advance_n(sched *s, sim_time t0, const sim_time *end, int64_t n, int64_t *used) {
    int64_t i, bt = s->cfg.block_tokens, r = mod_pos(dclock(s), bt), u = in_use(s);
    int expire = s->pc && pcache_has_expiry(s->pc), rc;
    SIM_ASSERT(s->prefill.n == 0 && s->n_decode > 0);
    SIM_ASSERT(n <= 0 || s->heap[0]->fin_step >= dclock(s) + n);
    if (n > 0 && !expire && s->n_ids == 0 && s->rdemote_bytes <= 0 &&
        advance_anon(s, t0, end, n, r, u, used))
        return SIM_OK;
    for (i = 0; i < n; i++) {
        int moves = expire || s->bucket[r].n != 0;
        if ((rc = advance_one(s, i == 0 ? t0 : end[i - 1], r, expire)) != SIM_OK)
            return rc;
        if (moves)
            u = in_use(s);
        used[i] = u;
        if (++r == bt)
            r = 0;
    }
    return SIM_OK;
}

int64_t sched_avail_blocks(const sched *s) {
    return avail(s);
}

int64_t sched_kv_in_use(const sched *s) {
    return in_use(s);
}

const pcache *sched_cache(const sched *s) {
    return s->pc;
}

const pcache *sched_host_cache(const sched *s) {
    return s->host;
}

sim_time sched_next_ready(const sched *s, sim_time now) {
    const sched_seq *q;
    sim_time best = SIM_TIME_MAX, h2d_next = -1;
    if (s->cfg.rnet)
        net_advance(s->cfg.rnet, now);
    for (q = s->prefill.head; q; q = q->lnext)
        if (loading(s, q)) {
            /* every host-to-device transfer is a swap-in someone waits for;
             * the earliest projected end may move later if more start, and
             * the wake-up then simply finds nothing ready yet (the engine
             * also wakes replicas when a network transfer ends) */
            sim_time t = SIM_TIME_MAX;
            if (q->xfer >= 0 && !link_done(s->h2d, q->xfer)) {
                if (h2d_next < 0) /* the same for every swap-in: project once */
                    h2d_next = link_next_finish(s->h2d);
                t = h2d_next;
            }
            if (q->rxfer >= 0 && !net_done(s->cfg.rnet, q->rxfer)) {
                sim_time tr = net_finish(s->cfg.rnet, q->rxfer);
                if (tr < t)
                    t = tr;
            }
            if (t < best)
                best = t;
        }
    if (best == SIM_TIME_MAX)
        return best;
    return best > now ? best : now + 1;
}

void sched_cache_drop(sched *s, sim_time now) {
    SIM_ASSERT(s->n_running == 0 && s->fresh.n == 0 && s->resumed.n == 0);
    s->now = now;
    s->dropping = 1;
    while (s->pc && pcache_size(s->pc) > 0 && pcache_evict_one(s->pc, now))
        ;
    while (s->host && pcache_size(s->host) > 0 && pcache_evict_one(s->host, now))
        ;
    s->dropping = 0;
}

int64_t sched_remote_waiting(const sched *s) {
    const sched_seq *q;
    int64_t n = 0;
    if (s->cfg.remote == NULL)
        return 0;
    for (q = s->prefill.head; q; q = q->lnext)
        n += q->rxfer >= 0 && !net_done(s->cfg.rnet, q->rxfer);
    return n;
}

void sched_pcie_stats(const sched *s, sched_pcie *out) {
    *out = s->pcie;
    out->busy_h2d_s = s->h2d ? link_busy_s(s->h2d) : 0;
    out->busy_d2h_s = s->d2h ? link_busy_s(s->d2h) : 0;
}

void sched_links_settle(sched *s, sim_time now) {
    if (s->h2d)
        link_advance(s->h2d, now);
    if (s->d2h)
        link_advance(s->d2h, now);
}

int sched_decode_list(const sched *s, sched_seq **out, int cap) {
    const sched_seq *q;
    int n = 0;
    if (s->last_skipped)
        return 0; /* an SGLANG prefill step: the decoders wait */
    for (q = s->run_head; q; q = q->rnext)
        if (q->phase == SCHED_DECODE) {
            if (n < cap)
                out[n] = (sched_seq *)q;
            n++;
        }
    return n;
}

int64_t sched_n_waiting(const sched *s) {
    return s->fresh.n + s->resumed.n;
}

int sched_n_running(const sched *s) {
    return s->n_running;
}

int sched_n_decode(const sched *s) {
    return s->n_decode;
}

int64_t sched_outstanding_tokens(const sched *s) {
    return s->prefill_left + s->n_decode;
}

const kvc_pool *sched_pool(const sched *s) {
    return s->pool;
}

int64_t sched_n_steps(const sched *s) {
    return s->step;
}

int64_t sched_n_preemptions(const sched *s) {
    return s->n_preemptions;
}

int32_t sched_seq_generated(const sched *s, const sched_seq *q) {
    if (q->phase == SCHED_DECODE)
        return (int32_t)(q->gen0 + (dclock(s) - q->d0));
    return q->generated;
}

int64_t sched_seq_kv_tokens(const sched *s, const sched_seq *q) {
    if (q->phase == SCHED_DECODE)
        return q->kv0 + (dclock(s) - q->d0);
    return q->kv_tokens;
}

/* The executors' view of a block table: slot = block id * block_tokens +
 * the position's offset in its block. */
int32_t sched_seq_slot(const sched_seq *q, int64_t pos, int block_tokens) {
    int64_t b = pos / block_tokens;
    if (b >= q->n_blocks)
        return -1;
    return q->blocks[b] * block_tokens + (int32_t)(pos % block_tokens);
}

int sched_check(const sched *s) {
    const sched_seq *q;
    int64_t blocks = 0, base = 0, anon = 0, table = 0, ids_all = 0;
    int n = 0, ndec = 0, r;
    if (kvc_check(s->pool) != 0)
        return -1;
    for (q = s->run_head; q; q = q->rnext) {
        int64_t kv = sched_seq_kv_tokens(s, q);
        n++;
        if (q->phase != SCHED_PREFILL && q->phase != SCHED_DECODE)
            return -2;
        if (seq_blocks(s, q) != (kv + s->cfg.block_tokens - 1) / s->cfg.block_tokens &&
            q->phase == SCHED_DECODE)
            return -3; /* a decoding sequence holds exactly the blocks of its tokens */
        table += seq_blocks(s, q);
        if (q->phase == SCHED_DECODE) {
            ndec++;
            base += q->kv0 - q->d0;
            if (q->heap_pos < 0 || s->heap[q->heap_pos] != q)
                return -4;
        }
        if (q->anon) {
            if (!s->cfg.anon_blocks || (s->pc && cacheable(q)))
                return -11; /* only sequences never cached may hold blocks without ids */
            anon += seq_blocks(s, q);
            continue;
        }
        for (r = 0; r < q->n_blocks; r++) {
            if (q->cblocks[r] == NULL)
                blocks++; /* private */
            else if (q->cblocks[r]->user != q->blocks[r] || q->cblocks[r]->refs == 0)
                return -9; /* a cached block in a table is that block, held */
        }
    }
    if (n != s->n_running || ndec != s->n_decode || base != s->dec_base)
        return -5;
    if (anon != kvc_n_anon(s->pool))
        return -12; /* the pool's anonymous blocks are the running sequences' */
    if (table != s->n_table)
        return -13;
    if (s->pc && pcache_check(s->pc) != 0)
        return -10;
    /* every block in use is a sequence's private block (anonymous or not)
     * or a cached one */
    if (anon + blocks + (s->pc ? pcache_size(s->pc) : 0) != kvc_used(s->pool))
        return -6;
    for (r = 0; r < s->cfg.block_tokens; r++) {
        int64_t ids = 0;
        for (q = s->bucket[r].head; q; q = q->lnext) {
            if (q->phase != SCHED_DECODE || seq_bucket(s, q) != r)
                return -7;
            ids += !q->anon;
        }
        if (ids != s->bucket_ids[r])
            return -14;
        ids_all += ids;
    }
    if (ids_all != s->n_ids)
        return -15;
    if (s->heap_n != s->n_decode)
        return -8;
    return 0;
}
