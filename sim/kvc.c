/* kvc.c: paged KV block pool with reference counts (see kvc.h).
 *
 * The free list is a stack of ids (LIFO reuse keeps recently freed blocks
 * hot, as vLLM's free queue does for its prefix cache). Sizes: tens of
 * thousands of blocks per GPU (26,000 for Llama-3-8B on an H100); access mix:
 * one alloc per 16 decoded tokens per sequence, frees in bursts at finish.
 * Anonymous blocks (kvc.h) are a count, n_anon, of free-stack entries
 * that are in use without an id: ids come off the stack only while more
 * than n_anon entries remain, so the free blocks are n_free - n_anon and
 * every counter treats both kinds alike. A workload whose KV is never
 * cached (the common case) then allocates and frees with no per-block work.
 *
 * Memory grows with the ids ever handed out, not with the pool: the free
 * stack starts as the run n-1, ..., 1, 0 (0 on top), and every pop either
 * takes the top of that run (the next fresh id, hw) or an id pushed back
 * since. So the run is kept as the number hw, and only the pushed ids and
 * the reference counts of ids below hw are stored, in arrays that double as
 * hw grows. A replica that never gives out an id (anonymous blocks only)
 * holds none; the order of ids is the one a whole stack gives.
 * Non-goals: block identity for prefix reuse (the prefix cache layers that on
 * top of ids). */
#include "config.h"
#include "kvc.h"

#include <string.h>

#include "err.h"
#include "mem.h"

struct kvc_pool {
    int64_t n;       /* blocks */
    int64_t n_free;  /* entries on the free stack: (n - hw) fresh + n_back pushed */
    int64_t hw;      /* ids handed out at least once: 0..hw-1 */
    int64_t n_back;  /* ids pushed back, on top of the fresh run: back[0, n_back) */
    int64_t cap;     /* slots in back and refs (>= hw) */
    int32_t *back;   /* ids returned to the free stack, in push order */
    uint32_t *refs;  /* per id below hw */
    int64_t peak;    /* peak in use */
    int64_t n_alloc; /* allocations */
    int64_t n_freed; /* returns to the free list */
    int64_t n_anon;  /* anonymous blocks in use, 0..n_free (the stack keeps their places) */
    int oom;         /* growing the arrays failed */
};

kvc_pool *kvc_pool_create(int64_t n_blocks) {
    kvc_pool *p;
    if (n_blocks < 1 || n_blocks > INT32_MAX)
        return NULL;
    p = SIM_NEW(kvc_pool);
    if (p == NULL)
        return NULL;
    p->n = n_blocks;
    p->n_free = n_blocks;
    return p;
}

void kvc_pool_destroy(kvc_pool *p) {
    if (p == NULL)
        return;
    sim_free(p->back);
    sim_free(p->refs);
    sim_free(p);
}

/* Makes room for ids below hw + k (k fresh ids more); 0, or -1 (p->oom set). */
static int reserve(kvc_pool *p, int64_t k) {
    int64_t want = p->hw + k, cap;
    int32_t *b;
    uint32_t *r;
    if (want <= p->cap)
        return 0;
    cap = p->cap < 1024 ? 1024 : 2 * p->cap;
    if (cap < want)
        cap = want;
    if (cap > p->n)
        cap = p->n;
    b = sim_realloc(p->back, (size_t)cap * sizeof *b);
    if (b == NULL) {
        p->oom = 1;
        return -1;
    }
    p->back = b;
    r = sim_realloc(p->refs, (size_t)cap * sizeof *r);
    if (r == NULL) {
        p->oom = 1;
        return -1;
    }
    memset(r + p->cap, 0, (size_t)(cap - p->cap) * sizeof *r);
    p->refs = r;
    p->cap = cap;
    return 0;
}

/* Blocks in use: with ids (not on the free stack) and anonymous. */
static int64_t in_use(const kvc_pool *p) {
    return p->n - p->n_free + p->n_anon;
}

static void note_peak(kvc_pool *p) {
    int64_t u = in_use(p);
    if (u > p->peak)
        p->peak = u;
}

int32_t kvc_block_alloc(kvc_pool *p) {
    int32_t id;
    if (p->n_free == p->n_anon)
        return -1;
    if (p->n_back > 0) {
        id = p->back[--p->n_back];
    } else {
        if (reserve(p, 1) != 0)
            return -1;
        id = (int32_t)p->hw++;
    }
    p->n_free--;
    SIM_DASSERT(p->refs[id] == 0);
    p->refs[id] = 1;
    p->n_alloc++;
    note_peak(p);
    return id;
}

int32_t kvc_block_alloc_n(kvc_pool *p, int32_t *ids, int32_t n) {
    int64_t left = p->n_free - p->n_anon, fresh;
    int32_t k, got = n < left ? n : (int32_t)left, from_back;
    uint32_t *refs;
    from_back = got < p->n_back ? got : (int32_t)p->n_back;
    fresh = got - from_back;
    if (fresh > 0 && reserve(p, fresh) != 0)
        return 0;
    refs = p->refs;
    for (k = 0; k < from_back; k++) {
        int32_t id = p->back[--p->n_back];
        SIM_DASSERT(refs[id] == 0);
        refs[id] = 1;
        ids[k] = id;
    }
    for (; k < got; k++) {
        int32_t id = (int32_t)p->hw++;
        refs[id] = 1;
        ids[k] = id;
    }
    p->n_free -= got;
    p->n_alloc += got;
    note_peak(p);
    return got;
}

int64_t kvc_anon_alloc(kvc_pool *p, int64_t n) {
    int64_t left = p->n_free - p->n_anon, got = n < left ? n : left;
    SIM_ASSERT(n >= 0);
    p->n_anon += got;
    p->n_alloc += got;
    note_peak(p);
    return got;
}

void kvc_anon_release(kvc_pool *p, int64_t n) {
    SIM_ASSERT(n >= 0 && n <= p->n_anon);
    p->n_anon -= n;
    p->n_freed += n;
}

int64_t kvc_n_anon(const kvc_pool *p) {
    return p->n_anon;
}

void kvc_block_ref(kvc_pool *p, int32_t id) {
    SIM_ASSERT(id >= 0 && id < p->hw && p->refs[id] > 0);
    p->refs[id]++;
}

void kvc_block_unref(kvc_pool *p, int32_t id) {
    SIM_ASSERT(id >= 0 && id < p->hw && p->refs[id] > 0);
    if (--p->refs[id] == 0) {
        SIM_ASSERT(p->n_free < p->n && p->n_back < p->hw);
        p->back[p->n_back++] = id;
        p->n_free++;
        p->n_freed++;
    }
}

void kvc_block_unref_n(kvc_pool *p, const int32_t *ids, int32_t n) {
    int32_t *back = p->back;
    uint32_t *refs = p->refs;
    int64_t top = p->n_back, top0 = top;
    int32_t k;
    for (k = n - 1; k >= 0; k--) {
        int32_t id = ids[k];
        SIM_DASSERT(id >= 0 && id < p->hw);
        SIM_ASSERT(refs[id] > 0);
        if (--refs[id] == 0)
            back[top++] = id;
    }
    SIM_ASSERT(top <= p->hw);
    p->n_freed += top - top0;
    p->n_free += top - top0;
    p->n_back = top;
}

uint32_t kvc_block_refs(const kvc_pool *p, int32_t id) {
    SIM_ASSERT(id >= 0 && id < p->n);
    return id < p->hw ? p->refs[id] : 0;
}

int kvc_oom(const kvc_pool *p) {
    return p->oom;
}

int64_t kvc_ids_held(const kvc_pool *p) {
    return p->cap;
}

int64_t kvc_total(const kvc_pool *p) {
    return p->n;
}

int64_t kvc_free(const kvc_pool *p) {
    return p->n_free - p->n_anon;
}

int64_t kvc_used(const kvc_pool *p) {
    return in_use(p);
}

int64_t kvc_peak_used(const kvc_pool *p) {
    return p->peak;
}

int64_t kvc_n_alloc(const kvc_pool *p) {
    return p->n_alloc;
}

int64_t kvc_n_freed(const kvc_pool *p) {
    return p->n_freed;
}

int kvc_check(const kvc_pool *p) {
    int64_t i, zero = 0;
    unsigned char *seen;
    int rc = 0;
    if (p->n_free < 0 || p->n_free > p->n || p->n_anon < 0 || p->n_anon > p->n_free)
        return -1;
    if (p->hw < 0 || p->hw > p->cap || p->cap > p->n || p->n_back < 0 || p->n_back > p->hw ||
        p->n_free != p->n - p->hw + p->n_back)
        return -8;
    if (p->n_alloc - p->n_freed != in_use(p))
        return -2;
    if (p->peak < in_use(p) || p->peak > p->n)
        return -7;
    seen = sim_calloc((size_t)(p->hw > 0 ? p->hw : 1), 1);
    if (seen == NULL)
        return -9;
    /* the fresh run (ids hw..n-1) holds each of its ids once by construction */
    for (i = 0; i < p->n_back && rc == 0; i++) {
        int32_t id = p->back[i];
        if (id < 0 || id >= p->hw)
            rc = -3;
        else if (seen[id])
            rc = -4; /* on the free list twice */
        else if (p->refs[id] != 0)
            rc = -5; /* free but referenced */
        else
            seen[id] = 1;
    }
    for (i = 0; i < p->hw && rc == 0; i++)
        if (p->refs[i] == 0)
            zero++;
    if (rc == 0 && zero != p->n_back)
        rc = -6; /* a zero-count block is not on the free list */
    sim_free(seen);
    return rc;
}
