/* test_evict.c: every eviction policy against a naive reference model, and
 * cache-replay's hit counts.
 *
 * The reference is a plain array of blocks scanned in O(n) per operation:
 * lookups, the prefix-cache rules (holders, children, leaf-first offers)
 * and each policy's victim rule written as a minimum over the offered
 * blocks, with the policies' state machines (S3-FIFO's queues and ghost,
 * ARC's lists, ghosts and target, the session policy's records and gap
 * histogram) kept in arrays. Random scripts of overlapping requests over a
 * forest of conversations (shared roots, growing chains, small
 * capacities, and now and then a block evicted for its storage alone)
 * run through the real cache and the reference in lockstep; after every
 * operation the hits, the sequence of evicted keys and the sizes must
 * agree.
 *
 * Then, through the cache-replay core: hand-computed LRU, FIFO and LFU hit
 * counts on small Mooncake files (tests/data/cache_*.jsonl); Belady at
 * least as good as every policy on random traces; unlimited capacity
 * reaching the ideal reuse 1 - unique/total. */
#include "config.h"

#include <gsl/gsl_rng.h>

#include "cache_replay.h"
#include "err.h"
#include "evict.h"
#include "evict_int.h"
#include "mem.h"
#include "pcache.h"
#include "rng.h"
#include "t.h"
#include "trace.h"

/* ---- random scripts ---- */

enum { OP_START = 1, OP_END = 2, OP_EVICT = 3 };

#define MAX_CHAIN  24
#define MAX_FLIGHT 3

typedef struct op {
    int type;
    int slot; /* in-flight slot 0..MAX_FLIGHT-1 */
    int n;    /* blocks (START) */
    uint64_t keys[MAX_CHAIN];
    int32_t tokens[MAX_CHAIN];
    int64_t session; /* -1: the chain's root */
    sim_time now;
} op;

typedef struct script {
    op *ops;
    int n_ops;
    evict_oracle *oracle;
    int64_t cap;
} script;

/* Conversations over a few shared roots; each request is a prefix of a
 * conversation's chain, which grows now and then. Up to MAX_FLIGHT
 * requests overlap. */
static void script_make(script *s, uint64_t seed, int n_ops, int64_t cap) {
    gsl_rng *r = sim_rng_create(seed, 9);
    int n_conv = 2 + (int)gsl_rng_uniform_int(r, 12), c, i, k;
    uint32_t chain[16][MAX_CHAIN];
    int len[16];
    int busy[MAX_FLIGHT] = {0};
    uint32_t next_id = 1000;
    sim_time now = 0;
    T_ASSERT(n_conv <= 16);
    s->ops = SIM_NEW_ARRAY(op, (size_t)n_ops);
    s->n_ops = n_ops;
    s->cap = cap;
    s->oracle = evict_oracle_create();
    T_ASSERT(s->ops && s->oracle);
    for (c = 0; c < n_conv; c++) {
        chain[c][0] = (uint32_t)gsl_rng_uniform_int(r, 3); /* shared system prompts */
        len[c] = 1;
    }
    for (i = 0; i < n_ops; i++) {
        op *o = &s->ops[i];
        int free_slot = -1, busy_slot = -1;
        double u = gsl_rng_uniform(r);
        for (k = 0; k < MAX_FLIGHT; k++) {
            if (!busy[k] && free_slot < 0)
                free_slot = k;
            if (busy[k] && (busy_slot < 0 || gsl_rng_uniform(r) < 0.5))
                busy_slot = k;
        }
        /* time: mostly small steps, sometimes none, sometimes long idles */
        u = gsl_rng_uniform(r);
        now += u < 0.2   ? 0
               : u < 0.9 ? (sim_time)gsl_rng_uniform_int(r, 3000) * 1000000
                         : (sim_time)gsl_rng_uniform_int(r, 400) * SIM_NS_PER_S;
        o->now = now;
        if (gsl_rng_uniform(r) < 0.05) { /* a block wanted back for its storage */
            o->type = OP_EVICT;
            continue;
        }
        if (busy_slot >= 0 && (free_slot < 0 || gsl_rng_uniform(r) < 0.45)) {
            o->type = OP_END;
            o->slot = busy_slot;
            busy[busy_slot] = 0;
            continue;
        }
        o->type = OP_START;
        o->slot = free_slot;
        busy[free_slot] = 1;
        c = (int)gsl_rng_uniform_int(r, (unsigned long)n_conv);
        if (gsl_rng_uniform(r) < 0.35) { /* the conversation goes on */
            int add = 1 + (int)gsl_rng_uniform_int(r, 4);
            for (k = 0; k < add && len[c] < MAX_CHAIN; k++)
                chain[c][len[c]++] = next_id++;
        }
        if (gsl_rng_uniform(r) < 0.05) { /* a new conversation replaces c */
            chain[c][0] = (uint32_t)gsl_rng_uniform_int(r, 3);
            len[c] = 1;
        }
        o->n = 1 + (int)gsl_rng_uniform_int(r, (unsigned long)len[c]);
        o->session = gsl_rng_uniform(r) < 0.5 ? -1 : c;
        {
            uint64_t key = PCACHE_KEY_ROOT;
            for (k = 0; k < o->n; k++) {
                key = pcache_key_chain(key, chain[c][k]);
                o->keys[k] = key;
                o->tokens[k] = k + 1 < o->n ? 16 : 1 + (int32_t)gsl_rng_uniform_int(r, 16);
                T_EQ_I(evict_oracle_add(s->oracle, key), SIM_OK);
            }
        }
    }
    evict_oracle_finish(s->oracle);
    sim_rng_destroy(r);
}

static void script_free(script *s) {
    sim_free(s->ops);
    evict_oracle_destroy(s->oracle);
}

/* ---- the reference model ---- */

#define NB   EVICT_SESS_BINS
#define RMAX 512 /* blocks the reference holds (>= any capacity tested + 1) */

typedef struct rblk {
    int used;
    uint64_t key;
    int parent;
    int32_t depth, tokens;
    uint32_t refs, n_children, n_access;
    int offered;
    sim_time t_access;
    uint64_t seq_insert, seq_access;
    uint64_t offer_seq; /* when it was last offered */
    int queue;          /* s3fifo S=1/M=2, arc T1=1/T2=2 */
    uint32_t count;     /* s3fifo hits */
    int64_t stamp;      /* s3fifo queue position */
    double H;           /* gdsf value at offer */
    int64_t next;       /* belady next use at offer */
    int sess;           /* session record */
} rblk;

typedef struct rghost {
    uint64_t k[4 * RMAX], v[4 * RMAX];
    int n;
    int64_t bound;
} rghost;

typedef struct rsess {
    int used;
    uint64_t id;
    sim_time last;
    uint64_t touch;
    int64_t n_cached;
} rsess;

typedef struct ref {
    const char *pol;
    rblk b[RMAX];
    int64_t cap, n;
    uint64_t tick, offers;
    uint64_t evicted[1 << 16];
    int n_evicted;
    /* parameters and policy state */
    sim_time idle, horizon;
    double linear, block_tokens, L;
    const evict_oracle *oracle;
    int64_t n_small, n_main, small_target, stamp;
    uint32_t move;
    rghost g, b1, b2, gone;
    int64_t n_t1, n_t2;
    double p, c;
    uint64_t miss_key;
    int miss_done, miss_to_t2, miss_in_b2, miss_drop_t1;
    rsess s[RMAX];
    double hist[NB], total;
    uint64_t touches;
} ref;

static int is(const ref *m, const char *name) {
    return strcmp(m->pol, name) == 0;
}

static void g_push(rghost *g, uint64_t k, uint64_t v) {
    if (g->bound == 0)
        return;
    if (g->n >= g->bound) {
        memmove(g->k, g->k + 1, (size_t)(g->n - 1) * sizeof g->k[0]);
        memmove(g->v, g->v + 1, (size_t)(g->n - 1) * sizeof g->v[0]);
        g->n--;
    }
    T_ASSERT(g->n < 4 * RMAX);
    g->k[g->n] = k;
    g->v[g->n++] = v;
}

static int g_take(rghost *g, uint64_t k, uint64_t *v) {
    int i;
    for (i = 0; i < g->n; i++)
        if (g->k[i] == k) {
            if (v)
                *v = g->v[i];
            memmove(g->k + i, g->k + i + 1, (size_t)(g->n - i - 1) * sizeof g->k[0]);
            memmove(g->v + i, g->v + i + 1, (size_t)(g->n - i - 1) * sizeof g->v[0]);
            g->n--;
            return 1;
        }
    return 0;
}

static void g_drop_oldest(rghost *g) {
    uint64_t v;
    if (g->n > 0)
        g_take(g, g->k[0], &v);
}

static void ref_init(ref *m, const char *pol, int64_t cap, const evict_oracle *o) {
    memset(m, 0, sizeof *m);
    m->pol = pol;
    m->cap = cap;
    m->oracle = o;
    m->idle = 300 * SIM_NS_PER_S;
    m->horizon = 60 * SIM_NS_PER_S;
    m->linear = 26600;
    m->block_tokens = 16;
    m->small_target = (int64_t)(0.1 * (double)cap) > 1 ? (int64_t)(0.1 * (double)cap) : 1;
    m->move = 2;
    m->g.bound = (int64_t)(0.9 * (double)cap);
    if (strncmp(pol, "s3fifo:", 7) == 0) { /* "s3fifo:small=F,ghost=F,move=N", ghost <= 1 */
        const char *q = pol + 7;
        double small = 0.1, ghost = 0.9, v;
        char key[16];
        int used;
        m->pol = "s3fifo";
        while (sscanf(q, "%15[a-z]=%lf%n", key, &v, &used) == 2) {
            if (strcmp(key, "small") == 0)
                small = v;
            else if (strcmp(key, "ghost") == 0)
                ghost = v;
            else if (strcmp(key, "move") == 0)
                m->move = (uint32_t)v;
            else
                T_FAIL_("reference: unknown s3fifo key %s", key);
            q += used + (q[used] == ',');
        }
        m->small_target = (int64_t)(small * (double)cap) > 1 ? (int64_t)(small * (double)cap) : 1;
        m->g.bound = (int64_t)(ghost * (double)cap);
    }
    m->b1.bound = m->b2.bound = m->gone.bound = cap;
    m->c = (double)cap;
}

static int r_find(const ref *m, uint64_t key) {
    int i;
    for (i = 0; i < RMAX; i++)
        if (m->b[i].used && m->b[i].key == key)
            return i;
    return -1;
}

static void r_offer(ref *m, int i) {
    rblk *b = &m->b[i];
    b->offered = 1;
    b->offer_seq = ++m->offers;
    if (is(m, "gdsf")) {
        double t = b->tokens, d = b->depth;
        b->H = m->L + (double)b->n_access * (t * (d * m->block_tokens + t / 2) + m->linear * t);
    }
    if (is(m, "belady"))
        b->next =
            b->seq_access < (uint64_t)m->oracle->n ? m->oracle->next_use[b->seq_access] : INT64_MAX;
}

static void r_session_touch(ref *m, int si, sim_time now) {
    rsess *s = &m->s[si];
    if (now <= s->last)
        return;
    m->hist[evict__sess_bin(now - s->last)] += 1;
    m->total += 1;
    s->last = now;
    s->touch = ++m->touches;
}

/* a < b in lexicographic order of up to three keys */
static int lt3(double a1, double a2, double a3, double b1, double b2, double b3) {
    if (a1 != b1)
        return a1 < b1;
    if (a2 != b2)
        return a2 < b2;
    return a3 < b3;
}

/* The offered block minimizing a policy's key, among those in queue q (0:
 * any). */
static int r_min(const ref *m, int q, int which) {
    int i, best = -1;
    for (i = 0; i < RMAX; i++) {
        const rblk *b = &m->b[i], *c;
        double k1, k2, c1, c2;
        if (!b->used || !b->offered || (q && b->queue != q))
            continue;
        if (best < 0) {
            best = i;
            continue;
        }
        c = &m->b[best];
        switch (which) {
            case 'l': /* lru, arc */
                k1 = (double)b->seq_access, c1 = (double)c->seq_access, k2 = c2 = 0;
                break;
            case 'f': /* fifo */
                k1 = (double)b->seq_insert, c1 = (double)c->seq_insert, k2 = c2 = 0;
                break;
            case 'q': /* lfu */
                k1 = b->n_access, c1 = c->n_access;
                k2 = (double)b->seq_access, c2 = (double)c->seq_access;
                break;
            case 't': /* ttl */
                k1 = (double)b->t_access, c1 = (double)c->t_access;
                k2 = (double)b->seq_access, c2 = (double)c->seq_access;
                break;
            case 'g': /* gdsf */
                k1 = b->H, c1 = c->H;
                k2 = (double)b->seq_access, c2 = (double)c->seq_access;
                break;
            case 'b': /* belady: farthest next use, deepest */
                k1 = -(double)b->next, c1 = -(double)c->next, k2 = -b->depth, c2 = -c->depth;
                break;
            case 's': /* s3fifo queue stamp */
                k1 = (double)b->stamp, c1 = (double)c->stamp, k2 = c2 = 0;
                break;
            default:
                T_FAIL_("bad rule %c", which);
        }
        if (lt3(k1, k2, (double)b->seq_insert, c1, c2, (double)c->seq_insert))
            best = i;
    }
    return best;
}

static void r_arc_miss(ref *m, uint64_t x) {
    double nb1 = m->b1.n, nb2 = m->b2.n, l1, l2;
    if (m->miss_done && m->miss_key == x)
        return;
    m->miss_key = x;
    m->miss_done = 1;
    m->miss_to_t2 = m->miss_in_b2 = m->miss_drop_t1 = 0;
    if (g_take(&m->b1, x, NULL)) {
        double d = nb1 >= nb2 ? 1 : nb2 / nb1;
        m->p = m->p + d < m->c ? m->p + d : m->c;
        m->miss_to_t2 = 1;
        return;
    }
    if (g_take(&m->b2, x, NULL)) {
        double d = nb2 >= nb1 ? 1 : nb1 / nb2;
        m->p = m->p - d > 0 ? m->p - d : 0;
        m->miss_to_t2 = m->miss_in_b2 = 1;
        return;
    }
    l1 = (double)m->n_t1 + nb1;
    l2 = (double)m->n_t2 + nb2;
    if (l1 >= m->c) {
        if ((double)m->n_t1 < m->c)
            g_drop_oldest(&m->b1);
        else
            m->miss_drop_t1 = 1;
    } else if (l1 + l2 >= 2 * m->c) {
        g_drop_oldest(&m->b2);
    }
}

/* The victim by the policy's rule, with the policy's bookkeeping; -1 when
 * nothing is offered. */
static int r_victim(ref *m, uint64_t key_in, sim_time now) {
    int v;
    if (is(m, "lru"))
        return r_min(m, 0, 'l');
    if (is(m, "fifo"))
        return r_min(m, 0, 'f');
    if (is(m, "lfu"))
        return r_min(m, 0, 'q');
    if (is(m, "ttl"))
        return r_min(m, 0, 't');
    if (is(m, "belady"))
        return r_min(m, 0, 'b');
    if (is(m, "gdsf")) {
        v = r_min(m, 0, 'g');
        if (v >= 0)
            m->L = m->b[v].H;
        return v;
    }
    if (is(m, "s3fifo")) {
        for (;;) {
            int s = r_min(m, 1, 's'), mm = r_min(m, 2, 's');
            if (s >= 0 && (m->n_small >= m->small_target || mm < 0)) {
                m->n_small--;
                if (m->b[s].count >= m->move) {
                    m->b[s].queue = 2;
                    m->b[s].count = 0;
                    m->b[s].stamp = ++m->stamp;
                    m->n_main++;
                    continue;
                }
                g_push(&m->g, m->b[s].key, 0);
                return s;
            }
            if (mm < 0)
                return -1;
            if (m->b[mm].count > 0) {
                m->b[mm].count--;
                m->b[mm].stamp = ++m->stamp;
                continue;
            }
            m->n_main--;
            return mm;
        }
    }
    if (is(m, "arc")) {
        int t1 = r_min(m, 1, 'l'), t2 = r_min(m, 2, 'l');
        double nt1 = (double)m->n_t1;
        if (key_in == EVICT_NO_KEY)
            m->miss_done = m->miss_to_t2 = m->miss_in_b2 = m->miss_drop_t1 = 0;
        else
            r_arc_miss(m, key_in);
        if (m->miss_drop_t1 && t1 >= 0) {
            m->n_t1--;
            return t1;
        }
        if (t1 >= 0 && (t2 < 0 || nt1 > m->p || (m->miss_in_b2 && nt1 == m->p))) {
            m->n_t1--;
            g_push(&m->b1, m->b[t1].key, 0);
            return t1;
        }
        if (t2 >= 0) {
            m->n_t2--;
            g_push(&m->b2, m->b[t2].key, 0);
        }
        return t2;
    }
    if (is(m, "session")) {
        double prob[NB];
        int i, best = -1, bb = 0;
        evict__sess_probs(m->hist, m->total, m->horizon, prob);
        for (i = 0; i < RMAX; i++) {
            rsess *s = &m->s[i];
            int j, any = 0, bin;
            if (!s->used)
                continue;
            for (j = 0; j < RMAX && !any; j++)
                any = m->b[j].used && m->b[j].offered && m->b[j].sess == i;
            if (!any)
                continue;
            bin = evict__sess_bin(now - s->last);
            if (best < 0 ||
                lt3(prob[bin], -bin, (double)s->touch, prob[bb],
                    -evict__sess_bin(now - m->s[best].last), (double)m->s[best].touch)) {
                best = i;
                bb = bin;
            }
        }
        if (best < 0)
            return -1;
        for (i = 0, v = -1; i < RMAX; i++)
            if (m->b[i].used && m->b[i].offered && m->b[i].sess == best &&
                (v < 0 || m->b[i].offer_seq < m->b[v].offer_seq))
                v = i;
        if (--m->s[best].n_cached == 0) {
            g_push(&m->gone, m->s[best].id, (uint64_t)m->s[best].last);
            m->s[best].used = 0;
        }
        return v;
    }
    T_FAIL_("unknown policy %s", m->pol);
    return -1;
}

static void r_evict(ref *m, int v) {
    rblk *b = &m->b[v];
    T_ASSERT(b->used && b->offered && b->refs == 0 && b->n_children == 0);
    T_ASSERT(m->n_evicted < (1 << 16));
    m->evicted[m->n_evicted++] = b->key;
    b->used = 0;
    b->offered = 0;
    m->n--;
    if (b->parent >= 0) {
        rblk *p = &m->b[b->parent];
        if (--p->n_children == 0 && p->refs == 0)
            r_offer(m, b->parent);
    }
}

static void r_ref(ref *m, int i) {
    m->b[i].offered = 0;
    m->b[i].refs++;
}

static void r_unref(ref *m, int i) {
    T_ASSERT(m->b[i].refs > 0);
    if (--m->b[i].refs == 0 && m->b[i].n_children == 0)
        r_offer(m, i);
}

static void r_access(ref *m, int i, sim_time now) {
    rblk *b = &m->b[i];
    b->t_access = now;
    b->seq_access = m->tick++;
    b->n_access++;
    if (is(m, "s3fifo") && b->count < 3)
        b->count++;
    if (is(m, "arc") && b->queue == 1) {
        b->queue = 2;
        m->n_t1--;
        m->n_t2++;
    }
    if (is(m, "session"))
        r_session_touch(m, b->sess, now);
}

/* 1 inserted (*out), 0 no room */
static int r_insert(ref *m, uint64_t key, int parent, int32_t tokens, int64_t session, sim_time now,
                    int *out) {
    uint64_t tick = m->tick++;
    int i;
    rblk *b;
    if (m->n >= m->cap) {
        int v = r_victim(m, key, now);
        if (v < 0)
            return 0;
        r_evict(m, v);
    }
    for (i = 0; i < RMAX && m->b[i].used; i++)
        ;
    T_ASSERT(i < RMAX);
    b = &m->b[i];
    memset(b, 0, sizeof *b);
    b->used = 1;
    b->key = key;
    b->parent = parent;
    b->depth = parent >= 0 ? m->b[parent].depth + 1 : 0;
    b->tokens = tokens;
    b->refs = 1;
    b->n_access = 1;
    b->t_access = now;
    b->seq_insert = b->seq_access = tick;
    m->n++;
    if (parent >= 0)
        m->b[parent].n_children++;
    if (is(m, "s3fifo")) {
        if (g_take(&m->g, key, NULL)) {
            b->queue = 2;
            m->n_main++;
        } else {
            b->queue = 1;
            m->n_small++;
        }
        b->stamp = ++m->stamp;
    }
    if (is(m, "arc")) {
        r_arc_miss(m, key);
        b->queue = m->miss_to_t2 ? 2 : 1;
        if (m->miss_to_t2)
            m->n_t2++;
        else
            m->n_t1++;
        m->miss_done = 0;
    }
    if (is(m, "session")) {
        uint64_t id = session >= 0  ? (uint64_t)session
                      : parent >= 0 ? m->s[m->b[parent].sess].id
                                    : key;
        int s, f = -1;
        uint64_t last;
        for (s = 0; s < RMAX; s++) {
            if (m->s[s].used && m->s[s].id == id)
                break;
            if (!m->s[s].used && f < 0)
                f = s;
        }
        if (s < RMAX) {
            r_session_touch(m, s, now);
        } else {
            s = f;
            T_ASSERT(s >= 0);
            memset(&m->s[s], 0, sizeof m->s[s]);
            m->s[s].used = 1;
            m->s[s].id = id;
            m->s[s].last = now;
            m->s[s].touch = ++m->touches;
            if (g_take(&m->gone, id, &last) && now > (sim_time)last) {
                m->hist[evict__sess_bin(now - (sim_time)last)] += 1;
                m->total += 1;
            }
        }
        m->s[s].n_cached++;
        b->sess = s;
    }
    *out = i;
    return 1;
}

static void r_expire(ref *m, sim_time now) {
    int v;
    if (!is(m, "ttl"))
        return;
    while ((v = r_min(m, 0, 't')) >= 0 && now - m->b[v].t_access > m->idle)
        r_evict(m, v);
}

/* ---- lockstep ---- */

typedef struct evlog {
    uint64_t keys[1 << 16];
    int n;
} evlog;

static void on_evict(void *ctx, const pcache_block *b) {
    evlog *l = ctx;
    T_ASSERT(b->refs == 0 && b->n_children == 0); /* never a block in use, only leaves */
    T_ASSERT(l->n < (1 << 16));
    l->keys[l->n++] = b->key;
}

typedef struct flight {
    pcache_block *held[MAX_CHAIN];
    int ref_held[MAX_CHAIN];
    int n;
} flight;

static void run_lockstep(const char *pol, const script *s, uint64_t seed) {
    const struct evict_ops *ops;
    evict_params p;
    sim_err err;
    pcache *c;
    static ref m;
    static evlog log;
    flight fl[MAX_FLIGHT];
    int i, k, hits_total = 0;

    T_EQ_I(evict_spec_parse(pol, &ops, &p, &err), SIM_OK);
    p.oracle = s->oracle;
    T_EQ_I(pcache_create(s->cap, ops, &p, &c, &err), SIM_OK);
    ref_init(&m, pol, s->cap, s->oracle);
    log.n = 0;
    pcache_set_observer(c, on_evict, &log);
    memset(fl, 0, sizeof fl);
    for (i = 0; i < s->n_ops; i++) {
        const op *o = &s->ops[i];
        flight *f = &fl[o->slot];
        if (o->type == OP_EVICT) {
            int v = r_victim(&m, EVICT_NO_KEY, o->now);
            T_EQ_I(pcache_evict_one(c, o->now), v >= 0);
            if (v >= 0)
                r_evict(&m, v);
        } else if (o->type == OP_END) {
            while (f->n > 0) {
                f->n--;
                pcache_unref(c, f->held[f->n], o->now);
                r_unref(&m, f->ref_held[f->n]);
            }
        } else {
            int full = 0, rfull = 0, hits = 0, rhits = 0;
            pcache_expire(c, o->now);
            r_expire(&m, o->now);
            for (k = 0; k < o->n; k++) {
                pcache_block *b = full ? NULL : pcache_find(c, o->keys[k]);
                int rb = rfull ? -1 : r_find(&m, o->keys[k]);
                T_EQ_I(b != NULL, rb >= 0);
                if (b != NULL) {
                    T_EQ_I(k, f->n); /* a hit only continues a held prefix */
                    pcache_ref(c, b);
                    pcache_access(c, b, o->now);
                    r_ref(&m, rb);
                    r_access(&m, rb, o->now);
                    f->held[f->n] = b;
                    f->ref_held[f->n++] = rb;
                    if (k == hits) {
                        hits++;
                        rhits++;
                    }
                    continue;
                }
                if (full) {
                    pcache_skip(c);
                    m.tick++;
                    continue;
                }
                {
                    int rc = pcache_insert(c, o->keys[k], f->n ? f->held[f->n - 1] : NULL,
                                           o->tokens[k], o->session, o->now, &b);
                    int rr = r_insert(&m, o->keys[k], f->n ? f->ref_held[f->n - 1] : -1,
                                      o->tokens[k], o->session, o->now, &rb);
                    T_ASSERT(rc >= 0);
                    T_EQ_I(rc, rr);
                    if (rc == 0) {
                        full = rfull = 1;
                        continue;
                    }
                    f->held[f->n] = b;
                    f->ref_held[f->n++] = rb;
                }
            }
            T_EQ_I(hits, rhits);
            hits_total += hits;
        }
        /* the two agree on everything observable */
        if (log.n != m.n_evicted) {
            fprintf(stderr, "%s seed %llu op %d: %d evictions vs reference %d\n", pol,
                    (unsigned long long)seed, i, log.n, m.n_evicted);
            T_EQ_I(log.n, m.n_evicted);
        }
        for (k = 0; k < log.n; k++)
            if (log.keys[k] != m.evicted[k]) {
                fprintf(stderr, "%s seed %llu op %d: eviction %d differs from the reference\n", pol,
                        (unsigned long long)seed, i, k);
                T_ASSERT(log.keys[k] == m.evicted[k]);
            }
        T_EQ_I(pcache_size(c), m.n);
        T_LE_I(pcache_size(c), s->cap); /* never over capacity */
        T_EQ_I(pcache_tick(c), m.tick);
        if (i % 7 == 0)
            T_EQ_I(pcache_check(c), 0);
    }
    T_EQ_I(pcache_check(c), 0);
    T_ASSERT(hits_total > 0);
    pcache_destroy(c);
}

static void test_differential(void) {
    static const char *const pols[] = {"lru",
                                       "lfu",
                                       "fifo",
                                       "ttl",
                                       "gdsf",
                                       "s3fifo",
                                       "arc",
                                       "session",
                                       "belady",
                                       "s3fifo:move=1",
                                       "s3fifo:small=0.3,ghost=0.2,move=3",
                                       "s3fifo:small=0.5,ghost=0"};
    static const int64_t caps[] = {1, 3, 7, 20, 60, 150};
    uint64_t seed;
    size_t i, j;
    for (seed = 1; seed <= 6; seed++)
        for (j = 0; j < sizeof caps / sizeof caps[0]; j++) {
            script s;
            script_make(&s, seed * 100 + j, 3000, caps[j]);
            for (i = 0; i < sizeof pols / sizeof pols[0]; i++)
                run_lockstep(pols[i], &s, seed);
            script_free(&s);
        }
}

/* ---- cache-replay on files and random traces ---- */

static void replay_file(const char *name, const char *pol, int64_t cap, rt_creplay_stats *out) {
    char path[512];
    trace_src *t;
    trace_opts to;
    sim_req q;
    sim_err err;
    rt_creplay *r;
    int rc;
    snprintf(path, sizeof path, "%s/%s", KV_TEST_DATADIR, name);
    trace_opts_default(&to);
    T_EQ_I(rt_creplay_create(pol, cap, 512, NULL, &r, &err), SIM_OK);
    T_EQ_I(trace_open_file(path, TRACE_FMT_MOONCAKE, &to, &t, &err), SIM_OK);
    while ((rc = trace_next(t, &q, &err)) == 1)
        T_EQ_I(rt_creplay_request(r, q.hash_ids, q.n_hash_ids, q.prompt_tokens, q.session_id,
                                  q.arrival_ns, 0),
               SIM_OK);
    T_EQ_I(rc, 0);
    T_EQ_I(pcache_check(rt_creplay_cache(r)), 0);
    rt_creplay_stats_get(r, out);
    trace_close(t);
    rt_creplay_destroy(r);
}

/* tests/data/cache_single.jsonl: one 512-token block per request, ids
 *     1 2 3 1 4 1 2 5 1 2 3 4 3 1 2
 * with capacity 3 (position: access -> cache after it):
 *   LRU (least recent first):  1m 2m 3m 1h[2 3 1] 4m-2[3 1 4] 1h[3 4 1]
 *     2m-3[4 1 2] 5m-4[1 2 5] 1h[2 5 1] 2h[5 1 2] 3m-5[1 2 3] 4m-1[2 3 4]
 *     3h[2 4 3] 1m-2[4 3 1] 2m-4[3 1 2]              -> 5 hits
 *   FIFO (oldest inserted first): 1m 2m 3m 1h 4m-1[2 3 4] 1m-2[3 4 1]
 *     2m-3[4 1 2] 5m-4[1 2 5] 1h 2h 3m-1[2 5 3] 4m-2[5 3 4] 3h 1m-5[3 4 1]
 *     2m-3[4 1 2]                                    -> 4 hits
 *   LFU (fewest accesses, ties least recent): 1m 2m 3m 1h{1:2} 4m-2
 *     1h{1:3} 2m-3 5m-4 1h{1:4} 2h{2:2} 3m-5 4m-3 3m-4 1h{1:5} 2h{2:3}
 *                                                    -> 6 hits */
static void test_hand_single(void) {
    rt_creplay_stats s;
    replay_file("cache_single.jsonl", "lru", 3, &s);
    T_EQ_I(s.requests, 15);
    T_EQ_I(s.blocks, 15);
    T_EQ_I(s.hit_blocks, 5);
    T_EQ_I(s.hit_tokens, 5 * 512);
    T_EQ_I(s.evictions, 15 - 5 - 3);
    T_EQ_I(s.unique_blocks, 5);
    replay_file("cache_single.jsonl", "fifo", 3, &s);
    T_EQ_I(s.hit_blocks, 4);
    T_EQ_I(s.evictions, 15 - 4 - 3);
    replay_file("cache_single.jsonl", "lfu", 3, &s);
    T_EQ_I(s.hit_blocks, 6);
    T_EQ_I(s.evictions, 15 - 6 - 3);
}

/* tests/data/cache_chain.jsonl, capacity 3, chains of 512-token blocks
 * (the last of [1,2,3] holds 100 tokens):
 *   [1,2,3]   3 misses; the cache is the chain 1-2-3
 *   [4]       full; only 3 is a leaf (1 and 2 have children): evict 3
 *   [5]       leaves 2 (tick 1) and 4 (tick 3): evict 2 (LRU, FIFO, LFU)
 *   [1,2]     1 hits (1 block); 2: leaves 4 and 5, 1 is held: evict 4
 *   [1,2,3]   1, 2 hit (2); 3: only 5 is evictable: evict it
 *   [6,7,8,9] 6, 7, 8 each evict the chain's leaf 3, 2, 1; for 9 every
 *             cached block is held: 9 is not cached (uncached 1)
 *   [6,7]     2 hits
 * hits 5 blocks (tokens 512 x 5), evictions 7, unique 9, blocks 16 (tokens
 * 14 x 512 + 2 x 100). */
static void test_hand_chain(void) {
    static const char *const pols[] = {"lru", "fifo", "lfu"};
    size_t i;
    for (i = 0; i < 3; i++) {
        rt_creplay_stats s;
        replay_file("cache_chain.jsonl", pols[i], 3, &s);
        T_EQ_I(s.requests, 7);
        T_EQ_I(s.blocks, 16);
        T_EQ_I(s.hit_blocks, 5);
        T_EQ_I(s.hit_tokens, 5 * 512);
        T_EQ_I(s.tokens, 14 * 512 + 2 * 100);
        T_EQ_I(s.evictions, 7);
        T_EQ_I(s.unique_blocks, 9);
        T_EQ_I(s.uncached_blocks, 1);
    }
}

/* Random Mooncake-like traces: conversations that grow, over shared system
 * prompts; each request lists its conversation's whole chain. */
typedef struct rtrace {
    uint32_t *ids; /* all requests' hash ids */
    int32_t *off;  /* request i's ids are ids[off[i] .. off[i+1]) */
    sim_time *t;
    int n;
} rtrace;

static void rtrace_make(rtrace *tr, uint64_t seed, int n) {
    gsl_rng *r = sim_rng_create(seed, 10);
    uint32_t chain[64][40], next = 100;
    int len[64], i, k, n_conv = 8 + (int)gsl_rng_uniform_int(r, 56), total = 0;
    tr->ids = SIM_NEW_ARRAY(uint32_t, (size_t)n * 40);
    tr->off = SIM_NEW_ARRAY(int32_t, (size_t)n + 1);
    tr->t = SIM_NEW_ARRAY(sim_time, (size_t)n);
    tr->n = n;
    T_ASSERT(tr->ids && tr->off && tr->t);
    for (k = 0; k < n_conv; k++) {
        chain[k][0] = (uint32_t)gsl_rng_uniform_int(r, 4);
        len[k] = 1 + (int)gsl_rng_uniform_int(r, 3);
        for (i = 1; i < len[k]; i++)
            chain[k][i] = next++;
    }
    for (i = 0; i < n; i++) {
        /* a skewed choice of conversation */
        double u = gsl_rng_uniform(r);
        int c = (int)((double)n_conv * u * u);
        if (len[c] < 36 && gsl_rng_uniform(r) < 0.6) {
            int add = 1 + (int)gsl_rng_uniform_int(r, 3);
            while (add-- > 0 && len[c] < 40)
                chain[c][len[c]++] = next++;
        }
        if (gsl_rng_uniform(r) < 0.08) { /* a conversation ends; another begins */
            len[c] = 1 + (int)gsl_rng_uniform_int(r, 3);
            chain[c][0] = (uint32_t)gsl_rng_uniform_int(r, 4);
            for (k = 1; k < len[c]; k++)
                chain[c][k] = next++;
        }
        tr->off[i] = total;
        for (k = 0; k < len[c]; k++)
            tr->ids[total++] = chain[c][k];
        tr->t[i] = (sim_time)i * 250 * 1000000 + (sim_time)gsl_rng_uniform_int(r, 200) * 1000000;
    }
    tr->off[n] = total;
    sim_rng_destroy(r);
}

static void rtrace_free(rtrace *tr) {
    sim_free(tr->ids);
    sim_free(tr->off);
    sim_free(tr->t);
}

static void rtrace_replay(const rtrace *tr, const char *pol, int64_t cap, const evict_oracle *o,
                          rt_creplay_stats *out) {
    rt_creplay *r;
    sim_err err;
    int i;
    T_EQ_I(rt_creplay_create(pol, cap, 16, o, &r, &err), SIM_OK);
    for (i = 0; i < tr->n; i++) {
        int32_t n = tr->off[i + 1] - tr->off[i];
        T_EQ_I(rt_creplay_request(r, tr->ids + tr->off[i], n, n * 16, -1, tr->t[i], 0), SIM_OK);
        if (i % 97 == 0)
            T_EQ_I(pcache_check(rt_creplay_cache(r)), 0);
    }
    T_EQ_I(pcache_check(rt_creplay_cache(r)), 0);
    T_LE_I(pcache_size(rt_creplay_cache(r)), cap);
    rt_creplay_stats_get(r, out);
    rt_creplay_destroy(r);
}

static void test_belady_bound(void) {
    static const char *const pols[] = {"lru",    "lfu", "fifo",    "ttl:idle=20s", "gdsf",
                                       "s3fifo", "arc", "session", "s3fifo:move=1"};
    static const int64_t caps[] = {40, 100, 250, 600};
    uint64_t seed;
    size_t i, j;
    for (seed = 1; seed <= 8; seed++) {
        rtrace tr;
        evict_oracle *o = evict_oracle_create();
        int k;
        rtrace_make(&tr, seed, 1500);
        T_ASSERT(o != NULL);
        for (k = 0; k < tr.n; k++)
            T_EQ_I(rt_creplay_oracle_add(o, tr.ids + tr.off[k], tr.off[k + 1] - tr.off[k], 0),
                   SIM_OK);
        evict_oracle_finish(o);
        for (j = 0; j < sizeof caps / sizeof caps[0]; j++) {
            rt_creplay_stats b, s;
            rtrace_replay(&tr, "belady", caps[j], o, &b);
            for (i = 0; i < sizeof pols / sizeof pols[0]; i++) {
                rtrace_replay(&tr, pols[i], caps[j], NULL, &s);
                T_EQ_I(s.blocks, b.blocks);
                if (s.hit_blocks > b.hit_blocks)
                    fprintf(stderr, "seed %llu cap %lld: %s %lld > belady %lld\n",
                            (unsigned long long)seed, (long long)caps[j], pols[i],
                            (long long)s.hit_blocks, (long long)b.hit_blocks);
                T_LE_I(s.hit_blocks, b.hit_blocks);
            }
        }
        /* unlimited capacity: every policy but idle TTL reaches the ideal reuse */
        for (i = 0; i < sizeof pols / sizeof pols[0]; i++) {
            rt_creplay_stats s;
            if (strncmp(pols[i], "ttl", 3) == 0)
                continue;
            rtrace_replay(&tr, pols[i], EVICT_UNLIMITED, NULL, &s);
            T_EQ_I(s.evictions, 0);
            T_EQ_I(s.hit_blocks, s.blocks - s.unique_blocks);
        }
        {
            rt_creplay_stats s;
            rtrace_replay(&tr, "belady", EVICT_UNLIMITED, o, &s);
            T_EQ_I(s.hit_blocks, s.blocks - s.unique_blocks);
        }
        evict_oracle_destroy(o);
        rtrace_free(&tr);
    }
}

int main(void) {
    size_t base = sim_mem_current();
    test_differential();
    printf("ok 1 - every policy matches its naive reference on random scripts\n");
    test_hand_single();
    test_hand_chain();
    printf("ok 2 - hand-computed LRU/FIFO/LFU hit counts\n");
    test_belady_bound();
    printf("ok 3 - Belady >= every policy; unlimited capacity = ideal reuse\n");
    T_EQ_I(sim_mem_current(), base); /* nothing leaked */
    printf("test_evict: ok\n");
    return 0;
}
