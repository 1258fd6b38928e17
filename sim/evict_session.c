/* evict_session.c: session-aware eviction: keep the conversations most
 * likely to come back soon.
 *
 * Model. Every block belongs to a session: the request's session id, or,
 * for traces without sessions (Mooncake), its chain's root block: requests
 * that share a first block are taken as turns of one conversation. A
 * session's turn is a touch at a new time (a hit or an insertion of any of
 * its blocks); the gap since its previous turn is added to a histogram of
 * gaps over log-spaced bins (1 ms to 10^6 s, 4 per decade). A session
 * whose blocks were all evicted is remembered (id and last turn) in a
 * bounded ghost, so the gap of its return is still observed.
 * From the gaps' empirical CDF F, a session idle for a returns within the
 * horizon H with probability
 *     P(a) = (F(a + H) - F(a)) / (1 - F(a))
 * (the hazard over the next H given survival to a; ages are taken at their
 * bin's lower edge). Under a heavy-tailed gap distribution P falls with
 * age and the policy behaves like LRU over sessions; when users tend to
 * reply after a typical think time, a session idle for a few seconds can be
 * likelier to return within H than one idle for a second or for an hour,
 * and is kept.
 * Rule: the victim session minimizes (P of its age bin, older bin first,
 * least recently touched); its victim block is its evictable block offered
 * longest ago (stale branches before the current chain, whose end goes
 * first and exposes its parent at the back of the queue).
 * Parameter: horizon=DURATION (default 60s).
 * Structure: sessions with cached blocks in a list ordered by last touch;
 * one cursor per bin edge marks where the sessions older than that edge
 * end (cursors only move forward as time passes); each session keeps a
 * FIFO of its evictable blocks. A touch is O(bins), an offer or withdrawal
 * O(1), a victim search O(bins log bins) to rank the bins when new gaps
 * were seen, plus the sessions skipped because none of their blocks is
 * evictable (held by running requests: few). Non-goals: per-session gap
 * models, censoring of sessions that never return. */
#include "config.h"

#include "evict.h"
#include "evict_int.h"
#include "mem.h"
#include "pcache.h"

#define NB EVICT_SESS_BINS

typedef struct sess {
    uint64_t id;                     /* session id (or root key) */
    sim_time last_ns;                /* last touch */
    int64_t n_cached;                /* blocks cached, >= 1 while the record lives */
    int64_t n_evictable;             /* of which offered */
    pcache_block *ev_head, *ev_tail; /* offered blocks, in the order offered */
    struct sess *prev, *next;        /* the touch list, least recent first */
} sess;

typedef struct session {
    evict__map ids;    /* id -> sess* */
    evict__pool recs;  /* sess records */
    sess *head, *tail; /* sessions with cached blocks, least recently touched first */
    sess *cur[NB];     /* cur[k], k >= 1: first session in the list younger than edge[k] */
    sim_time edge[NB]; /* bins' lower edges (ns) */
    double hist[NB];   /* observed gaps per bin */
    double total;      /* gaps observed */
    double prob[NB];   /* P(return within horizon | age bin) */
    int order[NB];     /* bins by (prob, older first) */
    int dirty;         /* gaps seen since prob and order were computed */
    sim_time horizon;  /* ns, > 0 */
    evict__ghost gone; /* sessions with no cached block left: id -> last touch */
} session;

static const char *const session_keys[] = {"horizon", NULL};

/* ---- the gap model ---- */

/* edge[k] = 1 ms x 10^((k-1)/4) in ns, rounded (edge[0] = 0). */
static const sim_time sess_edges[NB] = {0LL,
                                        1000000LL,
                                        1778279LL,
                                        3162278LL,
                                        5623413LL,
                                        10000000LL,
                                        17782794LL,
                                        31622777LL,
                                        56234133LL,
                                        100000000LL,
                                        177827941LL,
                                        316227766LL,
                                        562341325LL,
                                        1000000000LL,
                                        1778279410LL,
                                        3162277660LL,
                                        5623413252LL,
                                        10000000000LL,
                                        17782794100LL,
                                        31622776602LL,
                                        56234132519LL,
                                        100000000000LL,
                                        177827941004LL,
                                        316227766017LL,
                                        562341325190LL,
                                        1000000000000LL,
                                        1778279410039LL,
                                        3162277660168LL,
                                        5623413251903LL,
                                        10000000000000LL,
                                        17782794100389LL,
                                        31622776601684LL,
                                        56234132519035LL,
                                        100000000000000LL,
                                        177827941003892LL,
                                        316227766016838LL,
                                        562341325190349LL,
                                        1000000000000000LL};

sim_time evict__sess_edge(int k) {
    return sess_edges[k <= 0 ? 0 : k >= NB ? NB - 1 : k];
}

int evict__sess_bin(sim_time age_ns) {
    int lo = 0, hi = NB - 1; /* the largest k with edge(k) <= age */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (sess_edges[mid] <= age_ns)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* F(x): the fraction of observed gaps <= x (see evict_int.h). */
static double cdf(const double *hist, const double *cum, double total, sim_time x) {
    int j = evict__sess_bin(x);
    double lo, hi;
    if (j == NB - 1)
        return cum[NB - 1] / total;
    lo = (double)evict__sess_edge(j);
    hi = (double)evict__sess_edge(j + 1);
    return (cum[j] + hist[j] * ((double)x - lo) / (hi - lo)) / total;
}

void evict__sess_probs(const double *hist, double total, sim_time horizon, double *prob) {
    double cum[NB];
    int k;
    cum[0] = 0;
    for (k = 1; k < NB; k++)
        cum[k] = cum[k - 1] + hist[k - 1];
    for (k = 0; k < NB; k++) {
        double f, s;
        sim_time a = evict__sess_edge(k);
        prob[k] = 0;
        if (total <= 0)
            continue;
        f = cdf(hist, cum, total, a);
        s = 1 - f;
        if (s <= 1e-12)
            continue;
        prob[k] = (cdf(hist, cum, total, a + horizon) - f) / s;
    }
}

/* ---- the touch list and its cursors ---- */

static void list_unlink(session *s, sess *r) {
    int k;
    for (k = 1; k < NB; k++)
        if (s->cur[k] == r)
            s->cur[k] = r->next;
    if (r->prev)
        r->prev->next = r->next;
    else
        s->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        s->tail = r->prev;
    r->prev = r->next = NULL;
}

/* Appends r, touched now (so younger than every edge). */
static void list_append(session *s, sess *r) {
    int k;
    r->prev = s->tail;
    r->next = NULL;
    if (s->tail)
        s->tail->next = r;
    else
        s->head = r;
    s->tail = r;
    for (k = 1; k < NB; k++)
        if (s->cur[k] == NULL)
            s->cur[k] = r;
}

static void record_gap(session *s, sim_time gap) {
    s->hist[evict__sess_bin(gap)] += 1;
    s->total += 1;
    s->dirty = 1;
}

/* A turn of r at now (no-op within the same instant). */
static void touch(session *s, sess *r, sim_time now) {
    if (now <= r->last_ns)
        return;
    record_gap(s, now - r->last_ns);
    list_unlink(s, r);
    r->last_ns = now;
    list_append(s, r);
}

/* ---- create, destroy, reserve ---- */

static int session_create(const evict_params *p, void **st, sim_err *err) {
    session *s;
    sim_time horizon;
    int rc = evict_param_duration(p, "horizon", 60 * SIM_NS_PER_S, &horizon, err), k;
    *st = NULL;
    if (rc != SIM_OK)
        return rc;
    s = SIM_NEW(session);
    if (s == NULL)
        return SIM_ENOMEM;
    s->horizon = horizon;
    evict__pool_init(&s->recs, sizeof(sess));
    evict__ghost_init(&s->gone, p->capacity_blocks);
    for (k = 0; k < NB; k++) {
        s->edge[k] = evict__sess_edge(k);
        s->order[k] = NB - 1 - k;
    }
    *st = s;
    return SIM_OK;
}

static void session_destroy(void *st) {
    session *s = st;
    if (s == NULL)
        return;
    evict__map_fini(&s->ids);
    evict__pool_fini(&s->recs);
    evict__ghost_fini(&s->gone);
    sim_free(s);
}

static int session_reserve(void *st, int64_t n) {
    session *s = st;
    if (evict__map_reserve(&s->ids, n) != SIM_OK || evict__pool_reserve(&s->recs, n) != SIM_OK ||
        evict__ghost_reserve(&s->gone, n) != SIM_OK)
        return SIM_ENOMEM;
    return SIM_OK;
}

/* ---- the policy ---- */

static void session_on_insert(void *st, pcache_block *b, sim_time now) {
    session *s = st;
    uint64_t id, v, last;
    sess *r;
    if (b->session >= 0)
        id = (uint64_t)b->session;
    else if (b->parent != NULL)
        id = ((const sess *)b->parent->ev.aux)->id;
    else
        id = b->key;
    v = evict__map_get(&s->ids, id);
    if (v != EVICT_MAP_EMPTY) {
        r = (sess *)(uintptr_t)v;
        touch(s, r, now);
    } else {
        /* at most one record per cached block, and the cache reserved them */
        r = evict__pool_take(&s->recs);
        SIM_ASSERT(r != NULL);
        r->id = id;
        r->last_ns = now;
        if (evict__ghost_take(&s->gone, id, &last) && now > (sim_time)last)
            record_gap(s, now - (sim_time)last);
        evict__map_put(&s->ids, id, (uint64_t)(uintptr_t)r);
        list_append(s, r);
    }
    r->n_cached++;
    b->ev.aux = r;
}

static void session_on_access(void *st, pcache_block *b, sim_time now) {
    touch(st, b->ev.aux, now);
}

static void session_on_evictable(void *st, pcache_block *b, sim_time now) {
    sess *r = b->ev.aux;
    (void)st;
    (void)now;
    b->ev.next = NULL;
    b->ev.prev = r->ev_tail;
    if (r->ev_tail)
        r->ev_tail->ev.next = b;
    else
        r->ev_head = b;
    r->ev_tail = b;
    r->n_evictable++;
}

static void session_on_pinned(void *st, pcache_block *b) {
    sess *r = b->ev.aux;
    (void)st;
    if (b->ev.prev)
        b->ev.prev->ev.next = b->ev.next;
    else
        r->ev_head = b->ev.next;
    if (b->ev.next)
        b->ev.next->ev.prev = b->ev.prev;
    else
        r->ev_tail = b->ev.prev;
    b->ev.prev = b->ev.next = NULL;
    r->n_evictable--;
}

/* Ranks the bins by (prob, older first): insertion sort of NB entries. */
static void rank_bins(session *s) {
    int i, j;
    evict__sess_probs(s->hist, s->total, s->horizon, s->prob);
    for (i = 0; i < NB; i++)
        s->order[i] = NB - 1 - i;
    for (i = 1; i < NB; i++) {
        int k = s->order[i];
        for (j = i; j > 0 && s->prob[s->order[j - 1]] > s->prob[k]; j--)
            s->order[j] = s->order[j - 1];
        s->order[j] = k;
    }
    s->dirty = 0;
}

static pcache_block *session_pick_victim(void *st, uint64_t key_in, sim_time now) {
    session *s = st;
    sess *r = NULL;
    pcache_block *b;
    int i, k;
    (void)key_in;
    for (k = 1; k < NB; k++) /* cur[k]: first session with age < edge[k] */
        while (s->cur[k] != NULL && now - s->cur[k]->last_ns >= s->edge[k])
            s->cur[k] = s->cur[k]->next;
    if (s->dirty)
        rank_bins(s);
    for (i = 0; i < NB && r == NULL; i++) {
        sess *from, *to;
        k = s->order[i];
        from = k == NB - 1 ? s->head : s->cur[k + 1];
        to = k == 0 ? NULL : s->cur[k];
        for (; from != to && from != NULL; from = from->next)
            if (from->n_evictable > 0) {
                r = from;
                break;
            }
    }
    if (r == NULL)
        return NULL;
    b = r->ev_head;
    session_on_pinned(s, b);
    if (--r->n_cached == 0) { /* the session's last block: remember it as gone */
        list_unlink(s, r);
        evict__map_del(&s->ids, r->id);
        evict__ghost_push(&s->gone, r->id, (uint64_t)r->last_ns);
        evict__pool_give(&s->recs, r);
    }
    return b;
}

static int session_check(const void *st, int64_t n_evictable) {
    const session *s = st;
    const sess *r, *prev = NULL;
    int64_t n_ev = 0, n_sess = 0, m;
    int k;
    for (r = s->head; r != NULL; prev = r, r = r->next) {
        const pcache_block *b;
        if (r->prev != prev || (prev && prev->last_ns > r->last_ns))
            return -1; /* the touch list is ordered */
        if (r->n_cached < 1 || r->n_evictable < 0 || r->n_evictable > r->n_cached)
            return -2;
        if (evict__map_get(&s->ids, r->id) != (uint64_t)(uintptr_t)r)
            return -3;
        for (m = 0, b = r->ev_head; b != NULL; b = b->ev.next, m++)
            if (b->ev.aux != r || !b->evictable)
                return -4;
        if (m != r->n_evictable)
            return -5;
        n_ev += m;
        n_sess++;
    }
    if (prev != s->tail || n_ev != n_evictable || n_sess != s->ids.n)
        return -6;
    for (k = 1; k < NB; k++) { /* each cursor is in the list, or NULL */
        for (r = s->head; r != NULL && r != s->cur[k]; r = r->next)
            ;
        if (r != s->cur[k])
            return -7;
    }
    return 0;
}

const struct evict_ops evict_session_ops = {
    .name = "session",
    .help = "evict the session least likely to return within horizon=DURATION (60s)",
    .param_keys = session_keys,
    .create = session_create,
    .destroy = session_destroy,
    .reserve = session_reserve,
    .on_insert = session_on_insert,
    .on_access = session_on_access,
    .on_evictable = session_on_evictable,
    .on_pinned = session_on_pinned,
    .pick_victim = session_pick_victim,
    .pick_expired = NULL,
    .check = session_check,
};
