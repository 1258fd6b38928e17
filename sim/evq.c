/* evq.c: binary min-heap of events keyed by (t, class << 56 | seq).
 *
 * Sizes: a handful of events per replica plus one pending arrival per open
 * source, so thousands at most; push/pop are O(log n). Non-goals: cancel
 * (the engine invalidates stale events with generation numbers instead). */
#include "config.h"
#include "evq.h"

#include "err.h"
#include "mem.h"

struct evq {
    evq_ev *h;
    size_t n, cap;
    uint64_t seq;
    sim_time now;
    uint64_t popped;
};

static int ev_less(const evq_ev *x, const evq_ev *y) {
    return x->t < y->t || (x->t == y->t && x->key < y->key);
}

evq *evq_create(size_t cap) {
    evq *q = SIM_NEW(evq);
    if (q == NULL)
        return NULL;
    if (cap < 16)
        cap = 16;
    q->h = SIM_NEW_ARRAY(evq_ev, cap);
    if (q->h == NULL) {
        sim_free(q);
        return NULL;
    }
    q->cap = cap;
    return q;
}

void evq_destroy(evq *q) {
    if (q == NULL)
        return;
    sim_free(q->h);
    sim_free(q);
}

/* Pushes an event with tie-break key. */
static inline int push_key(evq *q, sim_time t, uint64_t key, int32_t type, int32_t a, int64_t b,
                           void *p) {
    size_t i;
    evq_ev e;
    SIM_ASSERT(t >= q->now);
    if (q->n == q->cap) {
        evq_ev *nh = sim_realloc(q->h, 2 * q->cap * sizeof *nh);
        if (nh == NULL)
            return SIM_ENOMEM;
        q->h = nh;
        q->cap *= 2;
    }
    e.t = t;
    e.key = key;
    e.type = type;
    e.a = a;
    e.b = b;
    e.p = p;
    /* sift up */
    i = q->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!ev_less(&e, &q->h[parent]))
            break;
        q->h[i] = q->h[parent];
        i = parent;
    }
    q->h[i] = e;
    return SIM_OK;
}

int evq_push(evq *q, sim_time t, unsigned cls, int32_t type, int32_t a, int64_t b, void *p) {
    SIM_ASSERT(cls < 256);
    return push_key(q, t, ((uint64_t)cls << 56) | (q->seq++ & EVQ_TIE_MAX), type, a, b, p);
}

int evq_push_tie(evq *q, sim_time t, unsigned cls, uint64_t tie, int32_t type, int32_t a, int64_t b,
                 void *p) {
    SIM_ASSERT(cls < 256 && tie <= EVQ_TIE_MAX);
    return push_key(q, t, ((uint64_t)cls << 56) | tie, type, a, b, p);
}

int evq_pop(evq *q, evq_ev *out) {
    size_t i = 0, n;
    evq_ev last;
    if (q->n == 0)
        return 0;
    *out = q->h[0];
    n = --q->n;
    last = q->h[n];
    /* sift down the former last element from the root */
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && ev_less(&q->h[c + 1], &q->h[c]))
            c++;
        if (!ev_less(&q->h[c], &last))
            break;
        q->h[i] = q->h[c];
        i = c;
    }
    if (n > 0)
        q->h[i] = last;
    q->now = out->t;
    q->popped++;
    return 1;
}

sim_time evq_peek_time(const evq *q) {
    return q->n ? q->h[0].t : SIM_TIME_MAX;
}

size_t evq_size(const evq *q) {
    return q->n;
}

sim_time evq_now(const evq *q) {
    return q->now;
}

uint64_t evq_popped(const evq *q) {
    return q->popped;
}
