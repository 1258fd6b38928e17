/* engine.c: the discrete-event loop (see engine.h).
 *
 * Events: ARRIVAL (class 0) routes a request to a replica; STEP_DONE
 * (class 1) completes a replica's step; SCHEDULE (class 2) forms the next
 * step and asks the executor for its duration. At equal times classes run in
 * that order, so a step formed at t sees every arrival at t however the
 * events were pushed; steps of several replicas that end at the same t
 * complete in replica order (push_step_done). Only one open-loop arrival is
 * pending at a time (the source is streamed; a round-robin fleet reads up
 * to ENG_LOOKAHEAD_MAX requests ahead, to plan decode runs to each
 * replica's next request); follow-up requests (session turns, closed-loop
 * clients) are pushed when the request that releases them ends.
 *
 * Each replica's state is a set of piecewise-constant signals (in a step or
 * not, batch size, waiting requests, KV utilisation); before any event
 * changes them, rep_account() integrates them up to now, which yields the
 * time-weighted means and the timeline intervals at O(1) per event.
 *
 * Memory: live requests and sequences, the event heap, and one double per
 * completed request for each exact quantile (TTFT, TPOT, E2E, queueing).
 *
 * Fleets (engine.h): replicas are laid out pool by pool; a pool's replicas
 * beyond its start count are off until the autoscaler provisions them.
 * With a round-trip time between the user and the region, a request
 * reaches its replica half a round trip after it arrives (EV_DELIVER) and
 * its tokens reach the user half a round trip after the replica made them;
 * the request rows and every latency are the user's. */
#include "config.h"
#include "engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "evq.h"
#include "mem.h"
#include "net.h"
#include "qstore.h"

enum {
    EV_ARRIVAL = 1,
    EV_STEP_DONE = 2,
    EV_SCHEDULE = 3,
    EV_WAKE = 4,
    EV_DELIVER = 5, /* a routed request reaches its replica */
    EV_TICK = 6,    /* the autoscaler decides */
    EV_READY = 7,   /* a provisioned replica starts serving */
    EV_NET = 8,     /* a KV transfer (prefill to decode) may have finished */
    EV_DROP = 9     /* a stopped replica's caches are emptied */
};
/* replica states */
enum { REP_OFF = 0, REP_ON, REP_PROVISIONING, REP_DRAINING };
enum { CLS_ARRIVAL = 0, CLS_STEP = 1, CLS_SCHED = 2 };

typedef struct req_rec {
    sim_req r;
    int from_stream; /* 1: the open-loop lookahead */
    int rel_rep;     /* the replica whose step formation after a step's end released it
                        at its arrival instant (a queue timeout's follow-up), else -1 */
    uint32_t *hash;  /* owned copy of r.hash_ids (capacity kept for reuse) */
    int32_t cap_hash;
    struct req_rec *next;
} req_rec;

/* Keeps the request's content hashes past the source's next call (they are
 * borrowed from it until then). Returns SIM_OK or SIM_ENOMEM. */
static int rec_keep_hashes(req_rec *rec) {
    int32_t n = rec->r.n_hash_ids;
    if (n <= 0 || rec->r.hash_ids == NULL) {
        rec->r.hash_ids = NULL;
        rec->r.n_hash_ids = 0;
        return SIM_OK;
    }
    if (n > rec->cap_hash) {
        uint32_t *nh = sim_realloc(rec->hash, (size_t)n * sizeof *nh);
        if (nh == NULL)
            return SIM_ENOMEM;
        rec->hash = nh;
        rec->cap_hash = n;
    }
    memcpy(rec->hash, rec->r.hash_ids, (size_t)n * sizeof *rec->hash);
    rec->r.hash_ids = rec->hash;
    return SIM_OK;
}

struct eng;

typedef struct replica {
    struct eng *e;
    int idx;
    int pool;
    int state;            /* REP_* */
    const perf_ctx *perf; /* the pool's */
    be *b;                /* the pool's executor */
    sched *s;
    /* the router's own view: requests routed here and not ended, and the
     * prompt tokens of those still on their way */
    int64_t out_req;
    int64_t inflight_req, inflight_tok;
    int busy;          /* a step is in flight */
    int sched_pending; /* a SCHEDULE event is queued */
    int sched_run;     /* and it follows a step's end: it may start a decode run */
    sched_batch batch;
    be_result res;
    perf_result pr;
    /* signals, integrated by rep_account */
    sim_time acc_t;
    int sig_batch;
    int64_t sig_waiting;
    double sig_kvu;
    /* timeline interval being filled */
    int64_t tl_k;
    int tl_live; /* not off at some time in it */
    double tl_batch, tl_wait, tl_kv, tl_busy;
    int64_t tl_arr, tl_comp, tl_rej, tl_out;
    /* run integrals */
    double kvu_int; /* KV utilisation x s */
    /* its steps' sums, added into the run's in replica order at the end, so
     * that they do not depend on how replicas' steps interleave (decode runs
     * apply theirs late) */
    double busy_s, batch_s, flops, bytes;
    /* decode run in flight */
    int in_run;
    int64_t run_k;     /* steps planned */
    sim_time run_t0;   /* start of the first */
    sim_time *run_end; /* end of step i, [0, run_k) */
    int64_t *run_used; /* the pool's used blocks after step i, as a run is applied */
    int64_t gen;       /* generation of the pending STEP_DONE event */
    /* planning state, kept so that a run is planned a chunk at a time: the
     * STEP_DONE event at the end of a chunk extends the run (run_open) */
    int run_open;          /* more steps may be planned */
    int64_t run_lim;       /* steps the scheduler allows */
    sim_time run_deadline; /* no step starts after it */
    sim_time run_soft;     /* the first chunk plans no step starting after it */
    int rr_pos;            /* its place in e->rr_list, or -1 */
    int64_t run_free;      /* blocks left for the steps not yet planned */
    int64_t run_ctx0;      /* summed context of step 0 */
    int run_nd;            /* sequences decoding */
    int64_t run_chunk;     /* steps of the last chunk planned */
    perf_dstep ds;         /* the stretch's stepper */
    perf_cache *pcache;    /* the pool's operator sums (borrowed) */
} replica;

#define ENG_RUN_MAX 1024
/* Steps a fleet replica's run plans first: an arrival routed to it cuts the
 * run, wasting the planned steps after the one in progress, and each further
 * chunk costs an event. Each extension plans 1.5 times the last chunk. Of
 * fixed chunks (4 to 16) and growth by +8, x1.5 and x2, this did within 1%
 * of the best on the 16-replica bench (busy replicas, frequent cuts) and
 * 5% better than fixed chunks on the 1,000-GPU fleet (idle replicas, long
 * runs), in instructions. One replica plans up to its next arrival. */
#define ENG_RUN_CHUNK 8
/* Streamed requests a round-robin fleet reads ahead (lookahead_init). */
#define ENG_LOOKAHEAD_MAX 64

/* Timeline intervals one gap of a replica may span (rep_account): beyond,
 * the run stops with an error rather than write millions of empty rows. */
#define ENG_TL_MAX_GAP 10000000

/* A pool at run time: its replicas are [first, first + n). */
typedef struct pool_rt {
    const eng_pool *cfg;
    int first, n;
    int n_on, n_prov;        /* serving (draining included), being provisioned */
    int unserved;            /* a request for it found none of its replicas serving since
                                the last autoscaler tick (the demand of an empty pool) */
    double busy_s;           /* summed step time, for MFU/MBU */
    double gpu_s;            /* GPU-seconds paid (serving, draining or provisioning) */
    sim_time gpu_acc_t;      /* gpu_s integrated up to here */
    pcache *remote;          /* the pool's remote KV tier (NULL: none) */
    perf_cache ptabs;        /* operator sums by token and sample count, for its replicas */
    int rpool_in, rpool_out; /* its links */
} pool_rt;

/* Candidate replicas of one model in one region (or all regions). */
typedef struct cand_list {
    int *rep;
    int n;
    int rr; /* round-robin position */
} cand_list;

/* A prefill replica's KV on its way to a decode replica. */
typedef struct kv_xfer {
    int64_t h; /* net transfer */
    int rep;   /* the decode replica */
    req_rec *rec;
} kv_xfer;

/* session -> replica of its last turn (open addressing, never shrinks) */
typedef struct sess_map {
    int64_t *key; /* -1: empty */
    int32_t *rep;
    size_t cap, n;
} sess_map;

typedef struct eng {
    const eng_config *c;
    const eng_source *src;
    be *b;
    const met_sink *sink;
    evq *q;
    replica *reps;
    int n_reps;
    const eng_fleet *fl;
    eng_fleet fl1; /* the one-pool fleet of a config without one */
    eng_pool pool1;
    double w1[1], rtt1[1];
    int64_t supply1[1];
    pool_rt *pools;
    cand_list *cands; /* [model x (n_regions + 1)]: per region, then all */
    int *near;        /* [pop x n_regions]: regions by round-trip time */
    double *pop_cdf, *model_cdf;
    int64_t *supply_left; /* GPUs each supply can still give */
    sess_map sess;
    int64_t live;    /* requests routed or queued and not ended */
    int64_t pending; /* EV_ARRIVAL events queued (stream and follow-ups) */
    /* disaggregation: each replica's KV link out and in, transfers in flight */
    net *kvnet;
    int *kv_out, *kv_in; /* link ids per replica */
    kv_xfer *xf;
    int n_xf, cap_xf;
    int64_t net_gen;
    int64_t net_seen; /* net_started when EV_NET was last armed */
    int any_remote;
    int64_t xfer_bytes, n_xfer;
    double xfer_s; /* summed transfer times */
    req_rec *free_recs;
    req_rec **rec_chunks;
    int n_rec_chunks, cap_rec_chunks;
    int stream_done; /* the source has no more and the lookahead is empty */
    /* the open-loop stream read ahead: la[(la_head + i) % la_cap] for
     * i < la_n, after the pending arrival (fleets under round robin:
     * rr_next_for); la_cap 1 reads one at a time */
    req_rec **la;
    int la_cap, la_head, la_n, src_done;
    sim_time la_last_t; /* arrival of the last request read */
    cand_list *rr_list; /* the one list round robin routes over, or NULL */
    int forming;        /* the replica forming its step after a step's end, or -1 */
    int arr_rel;        /* while an arrival is routed and delivered: its rel_rep */
    int mixed;          /* some model has two pools at one stage (fits_any can differ) */
    int rc;
    sim_err *err;
    /* summary accumulators */
    qstore ttft, tpot, e2e, queue; /* every completed request's, for exact quantiles */
    int64_t n_req, n_completed, n_rejected, rej[MET_N_REJECT];
    int64_t prompt_tokens, output_tokens, recomputed, preemptions, steps, good;
    int64_t hit_tokens, hit_requests, evictions, evictions_dropped;
    sched_pcie pcie; /* summed over replicas */
    double first_arrival, last_finish;
    sim_time arr_first, arr_last; /* arrivals at the fleet (arr_last < 0: none yet) */
    double busy_s, batch_s, flops, bytes, kvu_peak;
    int64_t tl_ns;          /* timeline interval, ns (0: none) */
    int ff;                 /* decode runs enabled */
    sim_time next_stream_t; /* arrival of the pending streamed request (MAX: none) */
    sim_time now;
} eng;

/* ---- small helpers ---- */

static void fail(eng *e, int rc, const char *what) {
    if (e->rc != SIM_OK)
        return;
    e->rc = rc;
    if (e->err && e->err->msg[0] == '\0')
        sim_err_set(e->err, "", 0, 0, "%s: %s", what, sim_strerror(rc));
}

static req_rec *rec_get(eng *e) {
    req_rec *r;
    if (e->free_recs == NULL) {
        int i;
        req_rec *blk;
        if (e->n_rec_chunks == e->cap_rec_chunks) {
            int ncap = e->cap_rec_chunks ? 2 * e->cap_rec_chunks : 16;
            req_rec **nc = sim_realloc(e->rec_chunks, (size_t)ncap * sizeof *nc);
            if (nc == NULL)
                return NULL;
            e->rec_chunks = nc;
            e->cap_rec_chunks = ncap;
        }
        blk = SIM_NEW_ARRAY(req_rec, 256);
        if (blk == NULL)
            return NULL;
        e->rec_chunks[e->n_rec_chunks++] = blk;
        for (i = 255; i >= 0; i--) {
            blk[i].next = e->free_recs;
            e->free_recs = &blk[i];
        }
    }
    r = e->free_recs;
    e->free_recs = r->next;
    r->rel_rep = -1;
    return r;
}

static void rec_put(eng *e, req_rec *r) {
    r->next = e->free_recs;
    e->free_recs = r;
}

/* ---- timeline and integrals ---- */

/* Timeline times: k x the interval exactly (a division, not sim_time_to_s's
 * product, so 920 s reads 920, not 920.0000000000001). */
static double tl_s(sim_time t) {
    return (double)t / 1e9;
}

/* part / whole for a time-weighted fraction, at most 1: the part is summed
 * step by step and the whole is not, so rounding left busy_frac at
 * 1.0000000000000002 where a replica never idled. */
static double frac_of(double part, double whole) {
    double f = part / whole;
    return f > 1.0 ? 1.0 : f;
}

static void tl_emit(eng *e, replica *p, double t0, double dt) {
    met_timeline row;
    if (e->sink == NULL || e->sink->on_timeline == NULL || e->rc != SIM_OK || !p->tl_live)
        goto reset; /* a replica off the whole interval has no row */
    row.replica = p->idx;
    row.t_s = t0;
    row.dt_s = dt;
    row.batch_mean = dt > 0 ? p->tl_batch / dt : NAN;
    row.waiting_mean = dt > 0 ? p->tl_wait / dt : NAN;
    row.kv_util_mean = dt > 0 ? frac_of(p->tl_kv, dt) : NAN;
    row.busy_frac = dt > 0 ? frac_of(p->tl_busy, dt) : NAN;
    row.arrivals = p->tl_arr;
    row.completions = p->tl_comp;
    row.rejections = p->tl_rej;
    row.output_tokens = p->tl_out;
    {
        int rc = e->sink->on_timeline(e->sink->ctx, &row);
        if (rc != SIM_OK)
            fail(e, rc, "writing the timeline");
    }
reset:
    p->tl_live = p->state != REP_OFF;
    p->tl_batch = p->tl_wait = p->tl_kv = p->tl_busy = 0;
    p->tl_arr = p->tl_comp = p->tl_rej = p->tl_out = 0;
}

static void tl_add(replica *p, double dt) {
    p->tl_batch += p->sig_batch * dt;
    p->tl_wait += (double)p->sig_waiting * dt;
    p->tl_kv += p->sig_kvu * dt;
    p->tl_busy += (p->busy ? 1.0 : 0.0) * dt;
}

/* Integrates the replica's signals from acc_t to t. */
static inline void rep_account(eng *e, replica *p, sim_time t) {
    double dt;
    if (t <= p->acc_t)
        return;
    dt = sim_time_to_s(t - p->acc_t);
    p->kvu_int += p->sig_kvu * dt;
    if (e->tl_ns > 0) {
        sim_time a = p->acc_t;
        if (t >= (p->tl_k + 1) * e->tl_ns && t / e->tl_ns - p->tl_k > ENG_TL_MAX_GAP &&
            e->rc == SIM_OK) {
            /* an idle gap that would write millions of rows of nothing */
            sim_err_set(e->err, "", 0, 0,
                        "--timeline-s: expected at most %d intervals in one gap, got %lld "
                        "(%.4g s at --timeline-s %g; raise --timeline-s, or 0 for none)",
                        ENG_TL_MAX_GAP, (long long)(t / e->tl_ns - p->tl_k), sim_time_to_s(t - a),
                        sim_time_to_s(e->tl_ns));
            e->rc = SIM_EINVAL;
        }
        if (e->rc != SIM_OK) { /* the run is over: no more rows */
            p->acc_t = t;
            return;
        }
        while (t >= (p->tl_k + 1) * e->tl_ns) {
            sim_time end = (p->tl_k + 1) * e->tl_ns;
            tl_add(p, sim_time_to_s(end - a));
            tl_emit(e, p, tl_s(p->tl_k * e->tl_ns), tl_s(e->tl_ns));
            a = end;
            p->tl_k++;
        }
        tl_add(p, sim_time_to_s(t - a));
    }
    p->acc_t = t;
}

static void rep_signals(replica *p) {
    const kvc_pool *pool = sched_pool(p->s);
    p->sig_batch = p->busy ? p->batch.n_chunks + p->batch.n_decode : 0;
    p->sig_waiting = sched_n_waiting(p->s);
    p->sig_kvu = (double)sched_kv_in_use(p->s) / (double)kvc_total(pool);
}

/* ---- fleet: GPUs paid, replica states ---- */

/* GPUs a pool pays for now: serving, draining or being provisioned. */
static int pool_gpus(const pool_rt *q) {
    return (q->n_on + q->n_prov) * q->cfg->gpus_per_replica;
}

/* Integrates the pool's paid GPUs up to t. */
static void pool_account(pool_rt *q, sim_time t) {
    if (t > q->gpu_acc_t) {
        q->gpu_s += (double)pool_gpus(q) * sim_time_to_s(t - q->gpu_acc_t);
        q->gpu_acc_t = t;
    }
}

/* A draining replica with nothing left stops (and its GPUs return). */
static void rep_off(eng *e, replica *p) {
    pool_rt *q = &e->pools[p->pool];
    pool_account(q, e->now);
    rep_account(e, p, e->now); /* its timeline up to now, as it was: on */
    p->state = REP_OFF;
    /* its memory goes with its GPUs: a replica provisioned later starts cold
     * (done as an event: this may run inside a scheduler callback) */
    if (evq_push(e->q, e->now, CLS_SCHED, EV_DROP, p->idx, 0, NULL) != SIM_OK)
        fail(e, SIM_ENOMEM, "stopping a replica");
    q->n_on--;
    e->supply_left[q->cfg->supply] += q->cfg->gpus_per_replica;
}

/* ---- request outcomes (scheduler callbacks) ---- */

/* The fields the fleet sets, as a source leaves them. */
static void clear_fleet_fields(sim_req *r) {
    r->origin = r->model = 0;
    r->net_ns = 0;
    r->kv_ready = r->out_total = 0;
    r->user_arrival_ns = r->user_first_ns = r->queue_ns = 0;
    r->pre_hit_tokens = r->pre_recomputed = 0;
    r->pre_preemptions = 0;
}

/* r ended at the user at t (its fields as the replica saw them). */
static void push_followup(eng *e, const sim_req *r, sim_time t, int rejected) {
    sim_req nx, u = *r;
    req_rec *rec;
    u.arrival_ns -= u.net_ns; /* the user's view */
    u.net_ns = 0;
    if (e->src->on_end == NULL || e->src->on_end(e->src->ctx, &u, t, rejected, &nx) != 1)
        return;
    if (nx.arrival_ns > SIM_HORIZON_NS) {
        /* as trace_next refuses an open-loop arrival past the horizon: a
         * think time (or a chain of them) took this one past it */
        if (e->rc != SIM_OK)
            return;
        e->rc = SIM_EINVAL;
        if (e->err) /* the time to the nanosecond (%.10g rounded it to the limit) */
            sim_err_followup_horizon(e->err, (long long)nx.session_id, (int)nx.turn,
                                     (long long)nx.arrival_ns, "");
        return;
    }
    rec = rec_get(e);
    if (rec == NULL) {
        fail(e, SIM_ENOMEM, "queueing a follow-up request");
        return;
    }
    rec->r = nx;
    clear_fleet_fields(&rec->r);
    rec->from_stream = 0;
    if (rec_keep_hashes(rec) != SIM_OK) {
        rec_put(e, rec);
        fail(e, SIM_ENOMEM, "queueing a follow-up request");
        return;
    }
    if (nx.arrival_ns < t)
        rec->r.arrival_ns = t;
    if (rec->r.arrival_ns == e->now)
        rec->rel_rep = e->forming;
    if (evq_push(e->q, rec->r.arrival_ns, CLS_ARRIVAL, EV_ARRIVAL, -1, 0, rec) != SIM_OK)
        fail(e, SIM_ENOMEM, "queueing a follow-up request");
    else
        e->pending++;
}

static void request_row(eng *e, met_request *row) {
    int rc;
    if (e->sink == NULL || e->sink->on_request == NULL || e->rc != SIM_OK)
        return;
    rc = e->sink->on_request(e->sink->ctx, row);
    if (rc != SIM_OK)
        fail(e, rc, "writing a request row");
}

static void note_end(eng *e, double arrival, double end) {
    if (e->n_req == 0 || arrival < e->first_arrival)
        e->first_arrival = arrival;
    if (e->n_req == 0 || end > e->last_finish)
        e->last_finish = end;
    e->n_req++;
}

/* The router's bookkeeping when a request routed to p ends. */
static void rep_end(eng *e, replica *p) {
    p->out_req--;
    e->live--;
    if (p->state == REP_DRAINING && p->out_req == 0)
        rep_off(e, p);
}

/* A request ends rejected at t (replica time; rep -1: at the fleet's edge). */
static void reject_at(eng *e, int rep, const sim_req *r, enum met_reject why, sim_time t) {
    met_request row;
    memset(&row, 0, sizeof row);
    t += r->net_ns; /* the user hears of it half a round trip later */
    row.id = r->id;
    row.replica = rep;
    row.arrival_s = sim_time_to_s(r->kv_ready > 0 ? r->user_arrival_ns : r->arrival_ns - r->net_ns);
    row.first_token_s = NAN;
    row.finish_s = sim_time_to_s(t);
    /* a request prefilled elsewhere carries its first token in its prompt:
     * the row has the prompt the user sent */
    row.prompt_tokens = r->kv_ready > 0 ? r->kv_ready : r->prompt_tokens;
    row.new_tokens = r->new_tokens;
    row.session_id = r->session_id;
    row.turn = r->turn;
    row.reject = why;
    note_end(e, row.arrival_s, row.finish_s);
    e->n_rejected++;
    e->rej[why]++;
    if (rep >= 0) {
        e->reps[rep].tl_rej++;
        rep_end(e, &e->reps[rep]);
    }
    request_row(e, &row);
    push_followup(e, r, t, 1);
}

static void cb_reject(void *ctx, const sim_req *r, enum met_reject why, sim_time t) {
    replica *p = ctx;
    reject_at(p->e, p->idx, r, why, t);
}

static void cb_first_token(void *ctx, sched_seq *s, sim_time t) {
    (void)ctx;
    (void)s;
    (void)t;
}

static void handoff(eng *e, replica *p, sched_seq *s, sim_time t);

static void cb_finish(void *ctx, sched_seq *s, sim_time t) {
    replica *p = ctx;
    eng *e = p->e;
    met_request row;
    double ttft, e2e;
    int rc;
    int32_t out = s->req.output_tokens;
    sim_time nd = s->req.net_ns, arrival = s->req.arrival_ns - nd;
    sim_time first = s->first_token_ns + nd, queue = s->admitted_ns - s->req.arrival_ns;
    sim_time fin = t + nd; /* the user receives the last token */
    int32_t prompt = s->req.prompt_tokens;
    int64_t hit = s->hit_tokens, recomputed = s->recomputed_tokens;
    int32_t preemptions = s->preemptions;
    if (s->req.out_total > 1) { /* prefilled: its KV goes to a decode replica */
        handoff(e, p, s, t);
        return;
    }
    if (s->req.kv_ready > 0) { /* decoded here after a prefill elsewhere */
        arrival = s->req.user_arrival_ns;
        first = s->req.user_first_ns;
        queue = s->req.queue_ns;
        out += 1; /* the first token came from the prefill replica */
        prompt -= 1;
        hit = s->req.pre_hit_tokens;
        recomputed += s->req.pre_recomputed;
        preemptions += s->req.pre_preemptions;
        /* The first token reached the user from the prefill replica, the
         * rest come from here. A decode region nearer the user than the
         * prefill region could deliver them sooner, but a stream is read
         * in order: the last token is received no earlier than the first. */
        if (fin < first)
            fin = first;
    }
    memset(&row, 0, sizeof row);
    row.id = s->req.id;
    row.replica = p->idx;
    row.arrival_s = sim_time_to_s(arrival);
    row.first_token_s = sim_time_to_s(first);
    row.finish_s = sim_time_to_s(fin);
    row.prompt_tokens = prompt;
    row.new_tokens = s->req.new_tokens;
    row.output_tokens = out;
    row.preemptions = preemptions;
    row.recomputed_tokens = recomputed;
    row.hit_tokens = hit;
    e->hit_tokens += hit;
    e->hit_requests += hit > 0;
    row.session_id = s->req.session_id;
    row.turn = s->req.turn;
    row.reject = MET_REJECT_NONE;
    note_end(e, row.arrival_s, row.finish_s);
    e->n_completed++;
    e->prompt_tokens += prompt;
    e->output_tokens += out;
    e->recomputed += recomputed;
    p->tl_comp++;
    ttft = sim_time_to_s(first - arrival);
    e2e = sim_time_to_s(fin - arrival);
    if ((rc = qstore_push(&e->ttft, ttft, e->err)) != SIM_OK ||
        (rc = qstore_push(&e->e2e, e2e, e->err)) != SIM_OK ||
        (rc = qstore_push(&e->queue, sim_time_to_s(queue), e->err)) != SIM_OK)
        fail(e, rc, "recording latencies");
    {
        int good = 1;
        double tpot = NAN;
        if (out >= 2) {
            tpot = sim_time_to_s(fin - first) / (double)(out - 1);
            if ((rc = qstore_push(&e->tpot, tpot, e->err)) != SIM_OK)
                fail(e, rc, "recording latencies");
        }
        if (e->c->slo_ttft_s > 0 && ttft > e->c->slo_ttft_s)
            good = 0;
        if (e->c->slo_tpot_s > 0 && out >= 2 && tpot > e->c->slo_tpot_s)
            good = 0;
        e->good += good;
    }
    request_row(e, &row);
    {
        sim_req u = s->req; /* what the user saw */
        if (u.kv_ready > 0) {
            u.arrival_ns = arrival + nd;
            u.prompt_tokens = prompt;
            u.output_tokens = out;
            u.kv_ready = 0;
        }
        push_followup(e, &u, fin, 0);
    }
    rep_end(e, p);
}

/* Half the round trip between a population and a region. */
static sim_time one_way(const eng *e, int origin, int region) {
    return sim_time_from_s(
        0.5 * e->fl->rtt_s[(size_t)origin * (size_t)e->fl->n_regions + (size_t)region]);
}

/* ---- disaggregated prefill and decode ---- */

static void push_net(eng *e) {
    sim_time t;
    e->net_seen = net_started(e->kvnet);
    net_advance(e->kvnet, e->now);
    t = net_next_finish(e->kvnet);
    if (t == SIM_TIME_MAX)
        return;
    if (t < e->now)
        t = e->now;
    if (evq_push(e->q, t, CLS_ARRIVAL, EV_NET, -1, ++e->net_gen, NULL) != SIM_OK)
        fail(e, SIM_ENOMEM, "scheduling a KV transfer");
}

static int route_decode(eng *e, sim_req *r, int region);

/* Shapes r as a decode replica receives it after a prefill elsewhere: the
 * prompt's KV arrives with it, its first token is the next input, and the
 * rest of its out_total output tokens are still to come. */
static void decode_shape(sim_req *r, int32_t prompt, int32_t out_total) {
    r->kv_ready = prompt;
    r->prompt_tokens = prompt + 1;
    r->output_tokens = out_total - 1;
    r->out_total = 0;
}

/* A prefill replica produced the first token of s at t: the request leaves
 * it (its KV is kept in the prefix cache like any finished request's), and
 * its prompt's KV travels to a decode replica, where it continues from its
 * second token. The transfer shares the prefill replica's link out and the
 * decode replica's link in with every other transfer (max-min fair). */
static void handoff(eng *e, replica *p, sched_seq *s, sim_time t) {
    const eng_pool *pc = e->pools[p->pool].cfg;
    req_rec *rec;
    sim_req *r;
    int k, path[2];
    double bytes;
    rec = rec_get(e);
    if (rec == NULL || e->kvnet == NULL) {
        fail(e, SIM_ENOMEM, "handing a request to decode");
        return;
    }
    rec->from_stream = 0;
    r = &rec->r;
    *r = s->req;
    r->hash_ids = NULL;
    r->n_hash_ids = 0;
    r->user_arrival_ns = s->req.arrival_ns - s->req.net_ns;
    r->user_first_ns = s->first_token_ns + s->req.net_ns;
    r->queue_ns = s->admitted_ns - s->req.arrival_ns;
    r->pre_hit_tokens = s->hit_tokens;
    r->pre_recomputed = s->recomputed_tokens;
    r->pre_preemptions = s->preemptions;
    decode_shape(r, s->req.prompt_tokens, s->req.out_total);
    /* the prefill replica is done with it */
    p->out_req--;
    if (p->state == REP_DRAINING && p->out_req == 0)
        rep_off(e, p);
    k = route_decode(e, r, pc->region);
    if (k < 0) { /* no decode replica serves: rejected, the user hears at once */
        r->net_ns = 0;
        r->arrival_ns = r->user_arrival_ns;
        r->prompt_tokens = s->req.prompt_tokens; /* the request's own, as the user sent it */
        r->output_tokens = s->req.out_total;
        e->live--;
        reject_at(e, -1, r, MET_REJECT_QUEUE_FULL, t);
        rec_put(e, rec);
        return;
    }
    r->net_ns = one_way(e, r->origin, e->pools[e->reps[k].pool].cfg->region);
    e->reps[k].out_req++;
    e->reps[k].inflight_req++;
    e->reps[k].inflight_tok += r->prompt_tokens;
    bytes = pc->kv_bytes_per_token * (double)r->kv_ready;
    path[0] = e->kv_out[p->idx];
    path[1] = e->kv_in[k];
    if (e->n_xf == e->cap_xf) {
        int ncap = e->cap_xf ? 2 * e->cap_xf : 64;
        kv_xfer *nx = sim_realloc(e->xf, (size_t)ncap * sizeof *nx);
        if (nx == NULL) {
            fail(e, SIM_ENOMEM, "starting a KV transfer");
            return;
        }
        e->xf = nx;
        e->cap_xf = ncap;
    }
    e->xf[e->n_xf].h = net_start(e->kvnet, t, path, 2, bytes, pc->kv_link_latency_s);
    e->xf[e->n_xf].rep = k;
    e->xf[e->n_xf].rec = rec;
    if (e->xf[e->n_xf].h < 0) {
        fail(e, SIM_ENOMEM, "starting a KV transfer");
        return;
    }
    r->arrival_ns = t; /* the transfer's start, until it lands */
    e->n_xf++;
    e->xfer_bytes += (int64_t)bytes;
    push_net(e);
}

static void deliver(eng *e, replica *p, req_rec *rec);
static void schedule_soon(eng *e, replica *p);

/* Transfers that finished by now land on their decode replicas. */
static void on_net(eng *e, int64_t gen) {
    int i = 0;
    if (gen != e->net_gen)
        return; /* superseded: a later start moved the next finish */
    net_advance(e->kvnet, e->now);
    while (i < e->n_xf) {
        kv_xfer x = e->xf[i];
        replica *p;
        if (!net_done(e->kvnet, x.h)) {
            i++;
            continue;
        }
        /* the last entry takes the finished one's place; after a delivery the
         * scan starts again from the front, so the order in which finished
         * transfers are delivered depends only on the (deterministic) order
         * of the array, not on their handles */
        e->xf[i] = e->xf[--e->n_xf];
        p = &e->reps[x.rep];
        p->inflight_req--;
        p->inflight_tok -= x.rec->r.prompt_tokens;
        e->n_xfer++;
        e->xfer_s += sim_time_to_s(e->now - x.rec->r.arrival_ns);
        x.rec->r.arrival_ns = e->now;
        deliver(e, p, x.rec);
        i = 0;
    }
    if (e->any_remote) /* fetches from a remote pool may have landed */
        for (i = 0; i < e->n_reps; i++) {
            replica *p = &e->reps[i];
            if (!p->busy && !p->sched_pending && !p->in_run && e->pools[p->pool].remote != NULL &&
                sched_remote_waiting(p->s) > 0)
                schedule_soon(e, p);
        }
    push_net(e);
}

/* ---- steps ---- */

static void schedule_soon(eng *e, replica *p) {
    if (p->busy || p->sched_pending)
        return;
    p->sched_pending = 1;
    if (evq_push(e->q, e->now, CLS_SCHED, EV_SCHEDULE, p->idx, 0, NULL) != SIM_OK)
        fail(e, SIM_ENOMEM, "scheduling a step");
}

/* Whether step number `step` of a replica goes to the steps table. */
static int wants_row(const eng *e, int64_t step) {
    return e->sink && e->sink->on_step && e->c->steps_sample > 0 && step % e->c->steps_sample == 0;
}

static void step_row(eng *e, replica *p) {
    met_step row;
    int rc;
    const sched_batch *b = &p->batch;
    const perf_ctx *pc = p->perf;
    if (!wants_row(e, b->step) || e->rc != SIM_OK)
        return;
    row.step = b->step;
    row.replica = p->idx;
    row.start_s = sim_time_to_s(b->start_ns);
    row.dur_s = p->res.dur_s;
    row.pred_s = p->res.pred_s;
    row.meas_s = p->res.meas_s;
    row.batch_size = b->n_chunks + b->n_decode;
    row.n_prefill = b->n_chunks;
    row.n_decode = b->n_decode;
    row.prefill_tokens = b->agg.prefill_tokens;
    row.decode_tokens = b->n_decode;
    row.kv_blocks_used = b->kv_blocks_used;
    row.kv_blocks_total = kvc_total(sched_pool(p->s));
    row.waiting = b->waiting;
    row.flops = p->pr.flops;
    row.bytes = p->pr.bytes;
    row.intensity = p->pr.bytes > 0 ? p->pr.flops / p->pr.bytes : NAN;
    row.balance = pc->peak / pc->gpu.hbm_bw;
    row.bound = (int)p->pr.bound;
    rc = e->sink->on_step(e->sink->ctx, &row);
    if (rc != SIM_OK)
        fail(e, rc, "writing a step row");
}

/* Records a formed step in the run's figures and the steps table.
 * run_apply_quiet repeats these sums for the steps of a decode run: a figure
 * added here must be added there too (the golden and fast-forward tests
 * compare runs with decode runs on and off). */
static void step_account(eng *e, replica *p, sim_time dur) {
    e->steps++;
    p->busy_s += sim_time_to_s(dur);
    p->batch_s += (double)(p->batch.n_chunks + p->batch.n_decode) * sim_time_to_s(dur);
    p->flops += p->pr.flops;
    p->bytes += p->pr.bytes;
    e->preemptions += p->batch.n_preempted;
    if (p->sig_kvu > e->kvu_peak)
        e->kvu_peak = p->sig_kvu;
    step_row(e, p);
}

/* The start of a decode run's step i. */
static sim_time run_start(const replica *p, int64_t i) {
    return i == 0 ? p->run_t0 : p->run_end[i - 1];
}

/* Forms the replica's next step at time t (accounted up to t by the
 * caller) and asks the backend for its duration. Returns the number of
 * sequences in it (0: nothing to run) or a negative code (e->rc is set). */
static int form_step_ds(eng *e, replica *p, sim_time t, sim_time *dur, int64_t ds_step);

static int form_step(eng *e, replica *p, sim_time t, sim_time *dur) {
    return form_step_ds(e, p, t, dur, -1);
}

/* form_step for step ds_step of the decode run in p->ds (ds_step >= 0): its
 * time, FLOPs and bytes come from the run's stepper, the same bits as the
 * operator model's (test_perf checks both), unless the step writes a row. */
static int form_step_ds(eng *e, replica *p, sim_time t, sim_time *dur, int64_t ds_step) {
    int n, rc;
    n = sched_step(p->s, t, &p->batch);
    if (n < 0) {
        fail(e, n, "forming a step");
        return n;
    }
    if (n == 0) {
        rep_signals(p);
        return 0;
    }
    if (wants_row(e, p->batch.step)) {
        perf_predict(p->perf, &p->batch.agg, &p->pr);
    } else if (ds_step >= 0) {
        int64_t ctx = p->run_ctx0 + (int64_t)p->run_nd * ds_step;
        sim_time planned = p->run_end[ds_step] - run_start(p, ds_step);
        SIM_DASSERT(p->batch.agg.decode_ctx == ctx && p->batch.agg.n_decode == p->run_nd &&
                    p->batch.agg.prefill_tokens == 0);
        /* no row: the time is only turned into ns again, which gives the
         * planned ns back exactly below 2^52 ns (52 days) */
        p->pr.step_s =
            planned < ((sim_time)1 << 52) ? sim_time_to_s(planned) : perf_dstep_time(&p->ds, ctx);
        perf_dstep_work(&p->ds, ctx, &p->pr.flops, &p->pr.bytes);
    } else { /* the figures the summary needs, without the breakdown */
        p->pr.step_s =
            perf_step_cached(p->perf, p->pcache, &p->batch.agg, &p->pr.flops, &p->pr.bytes);
    }
    p->res.pred_s = p->pr.step_s;
    rc = be_step(p->b, p->idx, p->s, &p->batch, &p->res, e->err);
    if (rc != SIM_OK) {
        e->rc = rc;
        return rc;
    }
    if (!(p->res.dur_s >= 0) || !isfinite(p->res.dur_s)) {
        sim_err_set(e->err, "", 0, 0, "backend %s returned a step duration of %g s",
                    p->b->ops->name, p->res.dur_s);
        e->rc = SIM_EDEVICE;
        return SIM_EDEVICE;
    }
    if (p->res.dur_s > SIM_HORIZON_S || t > 2 * SIM_HORIZON_NS) {
        sim_err_set(e->err, "", 0, 0,
                    "step %lld: expected a step of at most 1e9 s starting before 2e9 s (the "
                    "simulator's horizon), got %.4g s at %.4g s (check the calibration, the "
                    "model and the load)",
                    (long long)p->batch.step, p->res.dur_s, sim_time_to_s(t));
        e->rc = SIM_EINFEASIBLE;
        return SIM_EINFEASIBLE;
    }
    *dur = sim_time_from_s(p->res.dur_s);
    if (*dur < 1)
        *dur = 1; /* time always advances */
    p->busy = 1;
    rep_signals(p);
    step_account(e, p, *dur);
    if (e->c->check && sched_check(p->s) != 0) {
        sim_err_set(e->err, "", 0, 0, "scheduler invariant broken after forming step %lld",
                    (long long)p->batch.step);
        e->rc = SIM_EINVAL;
        return SIM_EINVAL;
    }
    return n;
}

/* Steps of several replicas that end at the same instant complete in
 * replica order, not in the order their end events were pushed: that is
 * when each step was formed, and a decode run pushes its end when it is
 * planned, so it would differ with --fast-forward (which replica's
 * follow-up requests are released and routed first, and the order
 * latencies are summed in). Requests one completion releases still arrive
 * before the next completes (arrivals sort first). A superseded end (a cut
 * run's) has a lower generation and does nothing. */
static void push_step_done(eng *e, replica *p, sim_time t) {
    uint64_t tie = (uint64_t)p->idx << 24 | (uint64_t)(++p->gen & 0xffffff);
    if (evq_push_tie(e->q, t, CLS_STEP, tie, EV_STEP_DONE, p->idx, p->gen, NULL) != SIM_OK)
        fail(e, SIM_ENOMEM, "scheduling a step end");
}

static int run_try(eng *e, replica *p);
static sim_time rr_next_for(const eng *e, const replica *p);

static void on_schedule(eng *e, replica *p) {
    sim_time dur, ready;
    int n;
    int try_run = p->sched_run;
    p->sched_pending = p->sched_run = 0;
    rep_account(e, p, e->now);
    /* after a step's end a decode run may start (arrivals and step ends
     * of this instant have run: SCHEDULE sorts after them; other replicas'
     * formations may still follow); replicas in lock step end
     * their steps at the same instant and come here. After an arrival
     * alone none is tried (its request is mostly admitted at once): the
     * results are the same either way, only the events differ. */
    if (try_run && run_try(e, p))
        return;
    e->forming = try_run ? p->idx : -1; /* the follow-ups its rejections release */
    n = form_step(e, p, e->now, &dur);
    e->forming = -1;
    if (n > 0) {
        push_step_done(e, p, e->now + dur);
        return;
    }
    /* nothing to run now, but admitted requests wait for their swap-in:
     * look again when the first is back */
    ready = n == 0 ? sched_next_ready(p->s, e->now) : SIM_TIME_MAX;
    if (ready != SIM_TIME_MAX &&
        evq_push(e->q, ready, CLS_SCHED, EV_WAKE, p->idx, 0, NULL) != SIM_OK)
        fail(e, SIM_ENOMEM, "scheduling a wake-up");
}

/* A swap-in completed on an idle replica. */
static void on_wake(eng *e, replica *p) {
    if (!p->busy && !p->sched_pending && !p->in_run)
        on_schedule(e, p);
}

/* ---- decode runs ----
 * When the next steps are pure decode and nothing can change them but an
 * arrival (sched_decode_run_limit), their durations are computed at once,
 * with the same perf_step_s the single steps use, and one event marks the
 * end of the run. The steps are applied later, in order, through
 * sched_decode_advance (which equals forming and completing a step that
 * finishes nothing); the run's last step, which may finish sequences, and a
 * step cut short by an arrival are formed by form_step as usual. An arrival
 * routed to the replica during a run cuts it at the step in progress, so the
 * arrival is seen exactly when a single-step loop would see it. */

/* Plans steps [run_k, upto) of the run, stopping early at the deadline,
 * when blocks run out, and (one replica) after the step in progress when
 * the next streamed request arrives: it comes here. In a fleet it goes to
 * one replica of many, so runs go on and the one it reaches is cut
 * (deliver). Where round robin's next turn for the replica is known
 * (rr_next_for), the first chunk stops after the step in progress when
 * that request is due (run_soft); else chunks of ENG_RUN_CHUNK, growing,
 * keep the planning that a cut wastes in proportion. The run stays open
 * when a chunk was planned whole, or stopped at run_soft, and the
 * scheduler allows more. */
static void run_plan(eng *e, replica *p, int64_t upto) {
    enum { NEED_CHUNK = 64 };
    int64_t need[NEED_CHUNK];
    int64_t i = p->run_k, free = p->run_free, ctx0 = p->run_ctx0, nd = p->run_nd, k = NEED_CHUNK;
    int64_t chunk = NEED_CHUNK / 4; /* the first: a plan is often short */
    sim_time t = run_start(p, i), *end = p->run_end;
    /* the last start a planned step may have: the deadline, the horizon
     * (past it the step is formed as a single step, which reports it) and
     * (one replica) the instant before the next streamed arrival */
    sim_time last = p->run_deadline < 2 * SIM_HORIZON_NS ? p->run_deadline : 2 * SIM_HORIZON_NS;
    sim_time soft = p->run_soft;
    if (e->n_reps == 1 && e->next_stream_t <= last)
        last = e->next_stream_t - 1;
    if (upto > p->run_lim)
        upto = p->run_lim;
    for (; i < upto; i++, k++) {
        double s;
        sim_time dn;
        if (k == NEED_CHUNK) { /* the blocks the next steps allocate, into need[k..] */
            int64_t m = upto - i < chunk ? upto - i : chunk;
            sched_decode_needs(p->s, i, m, need + NEED_CHUNK - m);
            k = NEED_CHUNK - m;
            chunk = NEED_CHUNK;
        }
        if (t > soft && t <= last) { /* a planning stop only: the run stays open */
            upto = i;
            break;
        }
        if (t > last || need[k] > free)
            break;
        free -= need[k];
        /* step i's summed context, as sched_decode_agg(s, i) gives it */
        s = perf_dstep_time(&p->ds, ctx0 + nd * i);
        if (!(s <= SIM_HORIZON_S))
            break; /* formed as a single step, which reports it */
        dn = sim_time_from_s(s);
        t += dn < 1 ? 1 : dn;
        end[i] = t;
    }
    p->run_free = free;
    p->run_open = i == upto && i < p->run_lim;
    p->run_k = i;
    p->run_soft = SIM_TIME_MAX; /* the first chunk's alone */
}

/* Plans a run from now; returns 1 when one started. */
static int run_try(eng *e, replica *p) {
    int64_t lim;
    perf_batch agg;
    if (!e->ff)
        return 0;
    lim = sched_decode_run_limit(p->s, &p->run_deadline);
    if (lim < 2)
        return 0;
    p->run_lim = lim < ENG_RUN_MAX ? lim : ENG_RUN_MAX;
    p->run_free = sched_avail_blocks(p->s);
    sched_decode_agg(p->s, 0, &agg);
    p->run_ctx0 = agg.decode_ctx;
    p->run_nd = agg.n_decode;
    if (p->ds.ctx == NULL) /* the replica's first run */
        perf_dstep_init(&p->ds, p->perf, p->pcache, agg.n_decode, agg.decode_ctx);
    else
        perf_dstep_next(&p->ds, agg.n_decode, agg.decode_ctx);
    p->run_t0 = e->now;
    p->run_k = 0;
    p->run_chunk = ENG_RUN_CHUNK;
    if (e->n_reps > 1 && (p->run_soft = rr_next_for(e, p)) != SIM_TIME_MAX) {
        /* up to the step in progress when its next request is due, which
         * cuts the run there (the steps after it would be planned for
         * nothing) */
        p->run_soft--;
        run_plan(e, p, ENG_RUN_MAX);
    } else {
        run_plan(e, p, e->n_reps == 1 ? ENG_RUN_MAX : ENG_RUN_CHUNK);
    }
    if (p->run_k < 2)
        return 0;
    p->in_run = 1;
    p->busy = 1;
    push_step_done(e, p, p->run_end[p->run_k - 1]);
    return 1;
}

/* The STEP_DONE event at the end of an open run's planned steps: plans the
 * next chunk; returns 1 when the run goes on. */
static int run_extend(eng *e, replica *p) {
    int64_t k = p->run_k;
    if (!p->run_open)
        return 0;
    p->run_chunk += p->run_chunk / 2;
    run_plan(e, p, e->n_reps == 1 ? ENG_RUN_MAX : k + p->run_chunk);
    if (p->run_k == k)
        return 0;
    push_step_done(e, p, p->run_end[p->run_k - 1]);
    return 1;
}

/* Whether any of the steps [step0, step0 + n) gets a steps row. */
static int rows_in(const eng *e, int64_t step0, int64_t n) {
    int64_t k = e->c->steps_sample;
    if (!(e->sink && e->sink->on_step && k > 0) || n <= 0)
        return 0;
    /* a multiple of k in [step0, step0 + n), without overflow for any k */
    return step0 % k == 0 || k - step0 % k < n;
}

/* The step record of a decode run's step (number step, started at start,
 * nd sequences), as form_step would leave it, after the step was applied. */
static void run_record(replica *p, int64_t step, sim_time start, int nd) {
    memset(&p->batch, 0, sizeof p->batch);
    p->batch.step = step;
    p->batch.start_ns = start;
    p->batch.n_decode = nd;
    p->batch.kv_blocks_used = sched_kv_in_use(p->s);
    p->batch.waiting = (int)sched_n_waiting(p->s);
    sched_decode_agg(p->s, -1, &p->batch.agg); /* the step just applied */
    p->res.pred_s = p->pr.step_s;
    p->res.dur_s = p->pr.step_s;
    p->res.meas_s = NAN;
    p->res.host_s = NAN;
}

/* --check after step `step` of a decode run was applied. */
static void run_check(eng *e, replica *p, int64_t step) {
    if (e->c->check && sched_check(p->s) != 0) {
        sim_err_set(e->err, "", 0, 0, "scheduler invariant broken after step %lld (a decode run)",
                    (long long)step);
        e->rc = SIM_EINVAL;
    }
}

/* Timeline: the tokens of a run's last applied step (of n), at its end;
 * the caller accounts up to that time next, so this splits no interval. */
static void run_tokens_last(eng *e, replica *p, int64_t n, int nd) {
    if (e->tl_ns > 0 && n > 0) {
        rep_account(e, p, p->run_end[n - 1]);
        p->tl_out += nd;
    }
}

/* run_apply for steps that write no row, without --check: the same
 * figures, accumulated in the same order as step_account would (so the
 * same bits), without filling the step record at every step; it is filled
 * once, for the last step. */
static void run_apply_quiet(eng *e, replica *p, int64_t n, double f0, double df, double b0,
                            double db) {
    const kvc_pool *pool = sched_pool(p->s);
    double total = (double)kvc_total(pool);
    int nd = sched_n_decode(p->s), tl = e->tl_ns > 0;
    int64_t i, step0 = sched_n_steps(p->s);
    sim_time start = 0;
    /* the scheduler first (it reads nothing the accounting writes), then
     * the figures step by step, with each step's used blocks */
    if (sched_decode_advance_n(p->s, p->run_t0, p->run_end, n, p->run_used) != SIM_OK) {
        fail(e, SIM_ENOMEM, "applying a decode run");
        return;
    }
    p->busy = 1;
    p->sig_batch = nd;
    p->sig_waiting = sched_n_waiting(p->s);
    for (i = 0; i < n; i++) {
        sim_time dur;
        double dur_s, flops = f0 + (double)i * df, bytes = b0 + (double)i * db;
        start = run_start(p, i);
        dur = p->run_end[i] - start;
        dur_s = sim_time_to_s(dur);
        rep_account(e, p, start);
        if (tl && i > 0)
            p->tl_out += nd; /* the tokens of the step that ended at start */
        p->sig_kvu = (double)p->run_used[i] / total;
        e->steps++;
        p->busy_s += dur_s;
        p->batch_s += (double)nd * dur_s;
        p->flops += flops;
        p->bytes += bytes;
        if (p->sig_kvu > e->kvu_peak)
            e->kvu_peak = p->sig_kvu;
    }
    run_tokens_last(e, p, n, nd);
    p->pr.flops = f0 + (double)(n - 1) * df;
    p->pr.bytes = b0 + (double)(n - 1) * db;
    run_record(p, step0 + n - 1, start, nd);
}

/* Applies the run's steps [0, n), none of which finishes a sequence. */
static void run_apply(eng *e, replica *p, int64_t n) {
    const perf_ctx *pc = p->perf;
    perf_batch agg;
    int64_t i, step0 = sched_n_steps(p->s);
    int nd = sched_n_decode(p->s);
    double f0, b0, f1, b1, df, db;
    if (n <= 0)
        return;
    /* FLOPs and bytes grow linearly with the summed context */
    perf_dstep_work(&p->ds, p->run_ctx0, &f0, &b0);
    perf_dstep_work(&p->ds, p->run_ctx0 + p->run_nd, &f1, &b1);
    df = f1 - f0;
    db = b1 - b0;
    if (!rows_in(e, step0, n) && !e->c->check) {
        run_apply_quiet(e, p, n, f0, df, b0, db);
        return;
    }
    for (i = 0; i < n && e->rc == SIM_OK; i++) {
        sim_time start = run_start(p, i), dur = p->run_end[i] - start;
        int64_t step = step0 + i;
        rep_account(e, p, start);
        if (i > 0 && e->tl_ns > 0)
            p->tl_out += nd; /* the tokens of the step that ended at start */
        if (wants_row(e, step)) {
            sched_decode_agg(p->s, 0, &agg);
            perf_predict(pc, &agg, &p->pr);
        } else {
            p->pr.flops = f0 + (double)i * df;
            p->pr.bytes = b0 + (double)i * db;
        }
        if (sched_decode_advance(p->s, start) != SIM_OK) {
            fail(e, SIM_ENOMEM, "applying a decode run");
            return;
        }
        run_record(p, step, start, nd);
        p->busy = 1;
        rep_signals(p);
        step_account(e, p, dur);
        run_check(e, p, step); /* --check: after every step, as single steps are */
    }
    if (e->rc == SIM_OK)
        run_tokens_last(e, p, n, nd);
}

/* Ends the run after its first n steps: steps [0, n-1) are applied and step
 * n-1 is formed as a normal step whose end event is pushed at its end. */
static void run_cut(eng *e, replica *p, int64_t n, int push) {
    sim_time start = run_start(p, n - 1), dur = 0;
    SIM_ASSERT(n >= 1 && n <= p->run_k);
    run_apply(e, p, n - 1);
    p->in_run = 0;
    if (e->rc != SIM_OK)
        return;
    rep_account(e, p, start);
    if (form_step_ds(e, p, start, &dur, n - 1) <= 0)
        return;
    SIM_ASSERT(p->batch.n_chunks == 0 && p->batch.n_preempted == 0);
    SIM_ASSERT(start + dur == p->run_end[n - 1]);
    if (push)
        push_step_done(e, p, start + dur);
}

/* An arrival at now for a replica in a run: cut the run at the step in
 * progress (the first step ending at or after now). */
static void run_interrupt(eng *e, replica *p) {
    int64_t lo = 0, hi = p->run_k - 1;
    while (lo < hi) {
        int64_t mid = (lo + hi) / 2;
        if (p->run_end[mid] >= e->now)
            hi = mid;
        else
            lo = mid + 1;
    }
    /* A step of the run ends now, and the arrival was released by the
     * formation of a later replica after its own step's end now: one step
     * at a time, this replica's step end, and the formation it deferred
     * behind the other step ends of this instant, came first (step ends in
     * replica order, then their formations in that order), so its next
     * step is formed without the arrival: cut after that one. */
    if (p->run_end[lo] == e->now && e->arr_rel > p->idx && lo + 1 < p->run_k)
        lo++;
    run_cut(e, p, lo + 1, 1);
}

/* The output tokens a step produces: one for each decoding sequence and
 * each prefill chunk that ends its prompt. */
static int64_t step_tokens(const sched_batch *b) {
    int64_t n = b->n_decode;
    int i;
    for (i = 0; i < b->n_chunks; i++)
        n += b->chunks[i].samples != 0;
    return n;
}

static void on_step_done(eng *e, replica *p, int64_t gen) {
    int rc;
    if (gen != p->gen)
        return; /* superseded: the run was cut */
    if (p->in_run) {
        if (run_extend(e, p))
            return;
        /* the run ran to its end: its last step completes now */
        run_cut(e, p, p->run_k, 0);
        if (e->rc != SIM_OK)
            return;
        SIM_ASSERT(p->run_end[p->run_k - 1] == e->now);
    }
    rep_account(e, p, e->now);
    if (e->tl_ns > 0)
        p->tl_out += step_tokens(&p->batch);
    p->busy = 0;
    rc = sched_step_done(p->s, &p->batch, e->now);
    if (rc != SIM_OK) {
        fail(e, rc, "completing a step");
        return;
    }
    rep_signals(p);
    if (e->c->check && sched_check(p->s) != 0) {
        sim_err_set(e->err, "", 0, 0, "scheduler invariant broken after step %lld",
                    (long long)p->batch.step);
        e->rc = SIM_EINVAL;
        return;
    }
    /* Nothing else is queued at this instant: no arrival at now is pending
     * (one this formation releases, by rejecting a request, comes after
     * it either way), so forming the next step (or run) at once is what the
     * SCHEDULE event would do, without the heap round trip. */
    p->sched_run = 1;
    if (evq_peek_time(e->q) > e->now && !p->sched_pending) {
        on_schedule(e, p);
        return;
    }
    schedule_soon(e, p);
}

/* Reads the source's next request into the lookahead; 0 when it has no
 * more (e->rc set if it failed). */
static int read_stream(eng *e) {
    req_rec *rec;
    int rc;
    if (e->src_done)
        return 0;
    rec = rec_get(e);
    if (rec == NULL) {
        fail(e, SIM_ENOMEM, "reading the trace");
        return 0;
    }
    rc = e->src->next(e->src->ctx, &rec->r, e->err);
    if (rc <= 0) {
        rec_put(e, rec);
        e->src_done = 1;
        if (rc < 0)
            e->rc = rc;
        return 0;
    }
    rec->from_stream = 1;
    clear_fleet_fields(&rec->r);
    if (rec_keep_hashes(rec) != SIM_OK) {
        rec_put(e, rec);
        fail(e, SIM_ENOMEM, "reading the trace");
        return 0;
    }
    if (rec->r.arrival_ns < e->la_last_t) {
        sim_err_set(e->err, "", 0, 0, "request %llu arrives at %.9f s, before %.9f s",
                    (unsigned long long)rec->r.id, sim_time_to_s(rec->r.arrival_ns),
                    sim_time_to_s(e->la_last_t));
        rec_put(e, rec);
        e->rc = SIM_EPARSE;
        return 0;
    }
    e->la_last_t = rec->r.arrival_ns;
    e->la[(e->la_head + e->la_n++) % e->la_cap] = rec;
    return 1;
}

/* Pushes the next open-loop request, if any, topping the lookahead up. */
static void pull_stream(eng *e) {
    req_rec *rec;
    if (e->stream_done)
        return;
    while (e->la_n < e->la_cap && read_stream(e))
        ;
    if (e->rc != SIM_OK)
        return;
    if (e->la_n == 0) {
        e->stream_done = 1;
        e->next_stream_t = SIM_TIME_MAX;
        return;
    }
    rec = e->la[e->la_head];
    e->la_head = (e->la_head + 1) % e->la_cap;
    e->la_n--;
    e->next_stream_t = rec->r.arrival_ns;
    if (evq_push(e->q, rec->r.arrival_ns, CLS_ARRIVAL, EV_ARRIVAL, -1, 0, rec) != SIM_OK)
        fail(e, SIM_ENOMEM, "queueing an arrival");
    else
        e->pending++;
}

/* When the next streamed request round robin sends p is due, if the
 * lookahead holds it and every replica takes its turn (a full one is
 * skipped: the guess is then early, which costs planning, never results);
 * SIM_TIME_MAX when unknown. */
static sim_time rr_next_for(const eng *e, const replica *p) {
    const cand_list *L = e->rr_list;
    int k;
    if (L == NULL || p->rr_pos < 0 || e->next_stream_t == SIM_TIME_MAX)
        return SIM_TIME_MAX;
    k = ((p->rr_pos - L->rr % L->n) % L->n + L->n) % L->n; /* 0: the pending one */
    if (k == 0)
        return e->next_stream_t;
    if (k > e->la_n)
        return SIM_TIME_MAX;
    return e->la[(e->la_head + k - 1) % e->la_cap]->r.arrival_ns;
}

/* Whether the workload has ended: every request that arrived has ended,
 * none is queued to arrive, and the source has no more. From here on
 * nothing the autoscaler does can matter, and the run ends (a replica
 * still being provisioned is paid up to here). */
static int workload_done(const eng *e) {
    return e->stream_done && e->live == 0 && e->pending == 0;
}

/* ---- routing ---- */

static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Index drawn from a cumulative weight table of n entries by u in [0, 1). */
static int draw(const double *cdf, int n, double u) {
    int i;
    for (i = 0; i < n - 1; i++)
        if (u < cdf[i])
            return i;
    return n - 1;
}

/* Population and model of a request: a hash of its session (or id). */
static void assign(eng *e, sim_req *r) {
    uint64_t k = r->session_id >= 0 ? (uint64_t)r->session_id ^ 0x5e55000000000000ULL : r->id;
    uint64_t h = mix64(k ^ mix64(e->c->seed));
    r->origin =
        e->fl->n_pops > 1 ? draw(e->pop_cdf, e->fl->n_pops, (double)(h >> 11) * 0x1p-53) : 0;
    h = mix64(h);
    r->model =
        e->fl->n_models > 1 ? draw(e->model_cdf, e->fl->n_models, (double)(h >> 11) * 0x1p-53) : 0;
}

/* Whether a replica takes a new request now. */
static int rep_open(const eng *e, const replica *p) {
    int64_t mq;
    if (p->state != REP_ON)
        return 0;
    mq = e->pools[p->pool].cfg->sched.max_queue;
    return mq <= 0 || sched_n_waiting(p->s) + p->inflight_req < mq;
}

/* Outstanding tokens: the scheduler's (prompt tokens not yet prefilled,
 * one per running sequence) and the prompts on their way. Exact in a
 * decode run (neither changes in one). */
static int64_t rep_lot(const replica *p) {
    return sched_outstanding_tokens(p->s) + p->inflight_tok;
}

/* The session map. */
static int32_t *sess_slot(sess_map *m, int64_t key, int insert) {
    size_t i;
    if (m->cap == 0 || (insert && 2 * (m->n + 1) > m->cap)) {
        size_t ncap = m->cap ? 2 * m->cap : 1024, j;
        int64_t *nk;
        int32_t *nr;
        if (!insert)
            return NULL;
        nk = SIM_NEW_ARRAY(int64_t, ncap);
        nr = SIM_NEW_ARRAY(int32_t, ncap);
        if (nk == NULL || nr == NULL) {
            sim_free(nk);
            sim_free(nr);
            return NULL;
        }
        for (j = 0; j < ncap; j++)
            nk[j] = -1;
        for (j = 0; j < m->cap; j++)
            if (m->key[j] >= 0) {
                size_t h = (size_t)mix64((uint64_t)m->key[j]) & (ncap - 1);
                while (nk[h] >= 0)
                    h = (h + 1) & (ncap - 1);
                nk[h] = m->key[j];
                nr[h] = m->rep[j];
            }
        sim_free(m->key);
        sim_free(m->rep);
        m->key = nk;
        m->rep = nr;
        m->cap = ncap;
    }
    i = (size_t)mix64((uint64_t)key) & (m->cap - 1);
    while (m->key[i] >= 0 && m->key[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (m->key[i] < 0) {
        if (!insert)
            return NULL;
        m->key[i] = key;
        m->rep[i] = -1;
        m->n++;
    }
    return &m->rep[i];
}

/* Whether a replica of pool q stops r at its first token, for a decode
 * pool to go on: a prefill pool's, but for a request whose output is one
 * token, or that is beyond the context (left whole, to be refused). */
static int cut_at_prefill(const eng_pool *q, const sim_req *r) {
    return q->role == ENG_ROLE_PREFILL && r->output_tokens > 1 &&
           (int64_t)r->prompt_tokens + r->output_tokens <= q->sched.max_ctx;
}

/* Whether pool q could ever take r (sched_reject_static: its context, its
 * KV pool less the watermark, its batch budget without chunking), r shaped
 * as q would hold it: a prefill pool the prompt and its first token only
 * (cut_at_prefill); a decode pool gets r decode-shaped already. */
static int pool_fits(const eng_pool *q, const sim_req *r) {
    sim_req x;
    if (cut_at_prefill(q, r)) {
        x = *r;
        x.output_tokens = 1;
        r = &x;
    }
    return sched_reject_static(&q->sched, r) == MET_REJECT_NONE;
}

/* Whether a pool of r's model at stage decode (0: where requests enter,
 * both or prefill pools; 1: decode pools), in any region, could ever take
 * r, whatever its replicas' state (an autoscaled pool may have none on). */
static int fits_any(const eng *e, int decode, const sim_req *r) {
    int i;
    for (i = 0; i < e->fl->n_pools; i++) {
        const eng_pool *q = &e->fl->pools[i];
        if (q->model == r->model && (q->role == ENG_ROLE_DECODE) == (decode != 0) &&
            pool_fits(q, r))
            return 1;
    }
    return 0;
}

/* Picks a replica of list L for r by policy pol; -1 when every one is full
 * (force: when every one is off). Scans start at a rotating position, so
 * ties spread. With fit, a replica whose pool could never take r counts as
 * full: a request one pool fits is not sent to another that would reject
 * it (fits_any decides; when no pool fits, every replica may take it, to
 * reject it with its reason, as before). */
static int pick(eng *e, cand_list *L, const sim_req *r, int pol, int force, int fit) {
    int i, best = -1, start = L->n > 0 ? L->rr % L->n : 0;
    int64_t best_lot = 0, best_hit = -1;
    double best_kvu = 0;
    if (L->n == 0)
        return -1;
    if (pol == ENG_ROUTE_SESSION && r->session_id >= 0) {
        int32_t *slot = sess_slot(&e->sess, r->session_id, 0);
        if (slot && *slot >= 0) {
            for (i = 0; i < L->n; i++) /* only where this list may route */
                if (L->rep[i] == *slot)
                    break;
            if (i < L->n && rep_open(e, &e->reps[*slot]) &&
                (!fit || pool_fits(e->pools[e->reps[*slot].pool].cfg, r)))
                return *slot;
        }
    }
    for (i = 0; i < L->n; i++) {
        int k = L->rep[(start + i) % L->n];
        replica *p = &e->reps[k];
        if (force ? p->state != REP_ON : !rep_open(e, p))
            continue;
        if (fit && !pool_fits(e->pools[p->pool].cfg, r))
            continue;
        if (pol == ENG_ROUTE_RR) {
            L->rr = (start + i + 1) % L->n;
            return k;
        }
        if (pol == ENG_ROUTE_KVU) {
            const kvc_pool *kp;
            double u;
            if (p->in_run)
                run_interrupt(e, p); /* blocks are applied lazily in a run */
            kp = sched_pool(p->s);
            u = (double)sched_kv_in_use(p->s) / (double)kvc_total(kp);
            if (best < 0 || u < best_kvu) {
                best = k;
                best_kvu = u;
            }
            continue;
        }
        if (pol == ENG_ROUTE_PREFIX) {
            int64_t hit, lot = rep_lot(p);
            if (p->in_run)
                run_interrupt(e, p); /* a run may evict cached blocks */
            hit = sched_prefix_probe(p->s, r);
            if (best < 0 || hit > best_hit || (hit == best_hit && lot < best_lot)) {
                best = k;
                best_hit = hit;
                best_lot = lot;
            }
            continue;
        }
        { /* least outstanding tokens (and the session router's fallback) */
            int64_t lot = rep_lot(p);
            if (best < 0 || lot < best_lot) {
                best = k;
                best_lot = lot;
            }
        }
    }
    L->rr = (start + 1) % L->n;
    return best;
}

/* Routes r: the replica, or -1 when every candidate is full. */
static cand_list *cand(eng *e, int model, int stage, int region) {
    int nr = e->fl->n_regions;
    return &e->cands[((size_t)model * 2 + (size_t)stage) * (size_t)(nr + 1) + (size_t)region];
}

/* A request for model found no replica serving: every pool of its stage
 * (decode: the decode pools) that could serve it has demand, which the
 * autoscaler's next tick sees (an empty pool then grows). */
static void mark_unserved(eng *e, int model, int decode, const sim_req *r, int fit) {
    const cand_list *L = cand(e, model, decode, e->fl->n_regions);
    int i;
    for (i = 0; i < L->n; i++) {
        pool_rt *q = &e->pools[e->reps[L->rep[i]].pool];
        if (!fit || pool_fits(q->cfg, r)) /* only pools that could serve it */
            q->unserved = 1;
    }
}

/* Routes r to a replica of its model's entry pools (both, or prefill when
 * the model is disaggregated): -1 when every candidate is full. */
static int route(eng *e, sim_req *r) {
    const eng_fleet *f = e->fl;
    int nr = f->n_regions, k = -1, i;
    int fit = e->mixed && fits_any(e, 0, r); /* else any replica may take it, to reject it */
    if (f->scope == ENG_SCOPE_GLOBAL || nr == 1)
        k = pick(e, cand(e, r->model, 0, nr), r, f->router, 0, fit);
    else
        for (i = 0; i < nr && k < 0; i++)
            k = pick(e, cand(e, r->model, 0, e->near[(size_t)r->origin * (size_t)nr + (size_t)i]),
                     r, f->router, 0, fit);
    if (k < 0) /* the demand of pools with no replica serving */
        mark_unserved(e, r->model, 0, r, fit);
    if (k >= 0 && f->router == ENG_ROUTE_SESSION && r->session_id >= 0) {
        int32_t *slot = sess_slot(&e->sess, r->session_id, 1);
        if (slot == NULL)
            fail(e, SIM_ENOMEM, "routing a session");
        else
            *slot = k;
    }
    return k;
}

/* The decode replica for a prefilled request: least outstanding tokens in
 * the prefill replica's region, then anywhere; when every one is full, the
 * least loaded anyway (the KV exists: the decode side queues it). */
static int route_decode(eng *e, sim_req *r, int region) {
    int nr = e->fl->n_regions;
    /* one decode pool fits r at least (decode_reject_static at its arrival) */
    int fit = e->mixed && fits_any(e, 1, r);
    int k = pick(e, cand(e, r->model, 1, region), r, ENG_ROUTE_LOT, 0, fit);
    if (k < 0)
        k = pick(e, cand(e, r->model, 1, nr), r, ENG_ROUTE_LOT, 0, fit);
    if (k < 0)
        k = pick(e, cand(e, r->model, 1, nr), r, ENG_ROUTE_LOT, 1, fit);
    if (k < 0) /* none serving: the demand of the model's decode pools */
        mark_unserved(e, r->model, 1, r, fit);
    return k;
}

/* Why no decode pool of r's model could ever take r once prefilled (as
 * decode_shape shapes it), or
 * MET_REJECT_NONE when one could; the first pool's reason when none. */
static enum met_reject decode_reject_static(const eng *e, const sim_req *r) {
    enum met_reject first = MET_REJECT_NONE;
    sim_req d = *r;
    int i;
    decode_shape(&d, r->prompt_tokens, r->output_tokens);
    for (i = 0; i < e->fl->n_pools; i++) {
        const eng_pool *q = &e->fl->pools[i];
        enum met_reject why;
        if (q->role != ENG_ROLE_DECODE || q->model != r->model)
            continue;
        why = sched_reject_static(&q->sched, &d);
        if (why == MET_REJECT_NONE)
            return why;
        if (first == MET_REJECT_NONE)
            first = why;
    }
    return first;
}

/* A request reaches replica p at now. */
static void deliver(eng *e, replica *p, req_rec *rec) {
    int rc;
    if (p->in_run)
        run_interrupt(e, p);
    rep_account(e, p, e->now);
    p->tl_arr++;
    rc = sched_add(p->s, &rec->r, e->now);
    rec_put(e, rec);
    if (rc != SIM_OK) {
        fail(e, rc, "queueing a request");
        return;
    }
    rep_signals(p);
    schedule_soon(e, p);
}

static void on_arrival(eng *e, req_rec *rec) {
    replica *p;
    int k;
    sim_time nd;
    e->pending--;
    if (rec->from_stream)
        pull_stream(e);
    else
        e->rr_list = NULL; /* a follow-up takes a turn the stream's would: no more
                              guesses (a guard: lookahead_init reads ahead only a
                              source without follow-ups) */
    if (e->rc != SIM_OK) {
        rec_put(e, rec);
        return;
    }
    if (e->arr_last < 0)
        e->arr_first = rec->r.arrival_ns;
    e->arr_last = rec->r.arrival_ns;
    assign(e, &rec->r);
    k = route(e, &rec->r);
    if (k < 0) { /* at capacity: every replica that could serve it is full */
        rec->r.net_ns = 0;
        reject_at(e, -1, &rec->r, MET_REJECT_QUEUE_FULL, e->now);
        rec_put(e, rec);
        return;
    }
    p = &e->reps[k];
    {
        const eng_pool *pc = e->pools[p->pool].cfg;
        if (cut_at_prefill(pc, &rec->r)) {
            /* disaggregated: stop at the first token, decode elsewhere (a
             * request beyond the context is left whole, to be refused);
             * one that no decode pool could ever hold is refused now, as
             * a colocated replica would refuse it, not after its prefill */
            enum met_reject why = decode_reject_static(e, &rec->r);
            if (why != MET_REJECT_NONE) {
                rec->r.net_ns = 0;
                reject_at(e, -1, &rec->r, why, e->now);
                rec_put(e, rec);
                return;
            }
            rec->r.out_total = rec->r.output_tokens;
            rec->r.output_tokens = 1;
        }
    }
    p->out_req++;
    e->live++;
    nd = one_way(e, rec->r.origin, e->pools[p->pool].cfg->region);
    if (nd <= 0) {
        rec->r.net_ns = 0;
        deliver(e, p, rec);
        return;
    }
    rec->r.net_ns = nd;
    rec->r.arrival_ns += nd; /* at the replica */
    p->inflight_req++;
    p->inflight_tok += rec->r.prompt_tokens;
    if (evq_push(e->q, rec->r.arrival_ns, CLS_ARRIVAL, EV_DELIVER, k, 0, rec) != SIM_OK)
        fail(e, SIM_ENOMEM, "sending a request");
}

static void on_deliver(eng *e, replica *p, req_rec *rec) {
    p->inflight_req--;
    p->inflight_tok -= rec->r.prompt_tokens;
    deliver(e, p, rec);
}

/* ---- the autoscaler ---- */

/* Schedules the next tick, interval_s from now; when the tick that just ran
 * changed nothing (idle: no replica asked for or drained, no pool's demand
 * pending), the ticks before the next event are skipped. A tick decides
 * from state that only events change, so the ticks up to the next event
 * would see what this one saw and change nothing either: the run is the
 * same, bar the events counted (sim_events), and an idle gap costs one tick
 * rather than gap / interval_s of them, each a pass over every replica.
 * The tick kept is the last one strictly before the next event, so that
 * its successor is queued when it would have been. */
static void push_tick(eng *e, int idle) {
    sim_time dt = sim_time_from_s(e->fl->autoscale.interval_s), t = e->now + dt;
    sim_time next = evq_peek_time(e->q);
    if (idle && next != SIM_TIME_MAX && next - 1 - e->now >= 2 * dt)
        t = e->now + (next - 1 - e->now) / dt * dt;
    if (evq_push(e->q, t, CLS_SCHED, EV_TICK, -1, 0, NULL) != SIM_OK)
        fail(e, SIM_ENOMEM, "scheduling the autoscaler");
}

/* Every interval, each pool compares its outstanding requests per
 * sequence slot of its serving replicas with the thresholds: above `up` it
 * asks for one more replica (if the pool's cap and the region's supply of
 * its GPU kind allow), below `down` it drains the serving replica with the
 * fewest requests (never below the pool's minimum). A draining replica
 * takes nothing new and stops when its last request ends. */
static void on_tick(eng *e) {
    const eng_autoscale *as = &e->fl->autoscale;
    int i, idle = 1;
    for (i = 0; i < e->fl->n_pools; i++) {
        pool_rt *q = &e->pools[i];
        int k, n_serving = 0, victim = -1;
        int64_t outst = 0;
        double util;
        for (k = q->first; k < q->first + q->n; k++)
            if (e->reps[k].state == REP_ON) {
                n_serving++;
                outst += e->reps[k].out_req;
                if (victim < 0 || e->reps[k].out_req < e->reps[victim].out_req)
                    victim = k;
            }
        /* a pool with no replica serving grows when its own requests found
         * none (one replica at a time: none while one is being provisioned) */
        util = n_serving > 0 ? (double)outst / ((double)n_serving * q->cfg->sched.max_num_seqs)
                             : ((q->unserved || outst > 0) && q->n_prov == 0 ? 1e9 : 0);
        if (q->unserved)
            idle = 0;
        q->unserved = 0;
        if (util > as->up && q->n_on + q->n_prov < q->cfg->max_replicas &&
            e->supply_left[q->cfg->supply] >= q->cfg->gpus_per_replica) {
            for (k = q->first; k < q->first + q->n; k++)
                if (e->reps[k].state == REP_OFF)
                    break;
            SIM_ASSERT(k < q->first + q->n);
            idle = 0;
            pool_account(q, e->now);
            rep_account(e, &e->reps[k], e->now); /* its timeline up to now, as it was: off */
            e->reps[k].state = REP_PROVISIONING;
            e->reps[k].tl_live = 1;
            q->n_prov++;
            e->supply_left[q->cfg->supply] -= q->cfg->gpus_per_replica;
            if (evq_push(e->q, e->now + sim_time_from_s(as->provision_s), CLS_ARRIVAL, EV_READY, k,
                         0, NULL) != SIM_OK)
                fail(e, SIM_ENOMEM, "provisioning a replica");
        } else if (util < as->down && n_serving > q->cfg->min_replicas && n_serving > 1 &&
                   victim >= 0) {
            replica *p = &e->reps[victim];
            idle = 0;
            p->state = REP_DRAINING;
            if (p->out_req == 0)
                rep_off(e, p);
        }
    }
    if (!workload_done(e))
        push_tick(e, idle);
}

static void on_drop(eng *e, replica *p) {
    const pcache *pc = sched_cache(p->s);
    int64_t before = pc ? pcache_evictions(pc) : 0;
    if (p->state != REP_OFF || sched_n_running(p->s) > 0 || sched_n_waiting(p->s) > 0)
        return; /* provisioned again meanwhile */
    rep_account(e, p, e->now);
    sched_cache_drop(p->s, e->now);
    if (pc) /* not the workload's evictions */
        e->evictions_dropped += pcache_evictions(pc) - before;
    rep_signals(p);
}

static void on_ready(eng *e, replica *p) {
    pool_rt *q = &e->pools[p->pool];
    pool_account(q, e->now);
    q->n_prov--;
    q->n_on++;
    p->state = REP_ON;
    rep_account(e, p, e->now);
}

/* ---- the loop ---- */

/* The perf model's time to prefill `tokens` after `cached` ones, alone in
 * a step: what recomputing a host-tier hit would cost (--miss cheaper). */
static double recompute_s(void *ctx, int64_t tokens, int64_t cached) {
    perf_batch b;
    memset(&b, 0, sizeof b);
    perf_batch_add_prefill(&b, tokens, cached, 1);
    return perf_step_s((const perf_ctx *)ctx, &b);
}

int64_t eng_kv_blocks(const perf_ctx *p, int block_tokens, double mem_util, int max_num_seqs,
                      int64_t max_batched_tokens, char *why, size_t why_n) {
    const sim_model *m = &p->model;
    double avail = p->gpu.hbm_bytes * mem_util;
    double weights = sim_model_weight_bytes(m, p->tp) / p->pp; /* one stage's share */
    /* activations of the largest step (hidden states, QKV, gated MLP) in bf16,
     * fp32 logits for every sampled sequence, and 0.5 GiB of CUDA context and
     * library workspace */
    double act = (double)max_batched_tokens *
                     (4.0 * m->hidden + 2.0 * m->intermediate / p->tp +
                      ((double)m->n_heads + 2.0 * m->n_kv_heads) * m->head_dim / p->tp) *
                     2.0 +
                 (double)max_num_seqs * m->vocab / p->tp * 4.0 + 0.5 * 1073741824.0;
    double block = sim_model_kv_bytes_per_token(m, p->tp) / p->pp * block_tokens;
    double left = avail - weights - act;
    if (why)
        snprintf(why, why_n,
                 "%s at TP%d needs %.1f GB of weights and %.1f GB of activation reserve; %s has "
                 "%.1f GB of HBM x %.2f = %.1f GB",
                 m->name, p->tp, weights / 1e9, act / 1e9, p->gpu.name, p->gpu.hbm_bytes / 1e9,
                 mem_util, avail / 1e9);
    if (left < block)
        return 0;
    /* every stage holds its layers' KV of the same tokens; the pp virtual
     * engines of a pipelined replica share them */
    return (int64_t)(left / block) / p->pp;
}

/* One figure's p50, p90 (kept when p90 is not NULL) and p99 over its
 * latencies; 0 (the run failed) on error. */
static int quantiles_of(eng *e, qstore *q, double *p50, double *p90, double *p99) {
    static const double f[3] = {0.50, 0.90, 0.99};
    double v[3];
    int rc = qstore_quantiles(q, f, 3, v, e->err);
    if (rc != SIM_OK) {
        fail(e, rc, "latency quantiles");
        return 0;
    }
    *p50 = v[0];
    if (p90)
        *p90 = v[1];
    *p99 = v[2];
    return 1;
}

static void summarise(eng *e, met_summary *s) {
    double span = e->last_finish - e->first_arrival;
    int r;
    met_summary_init(s);
    s->requests = e->n_req;
    s->completed = e->n_completed;
    s->rejected = e->n_rejected;
    s->rejected_context = e->rej[MET_REJECT_CONTEXT];
    s->rejected_kv_capacity = e->rej[MET_REJECT_KV_CAPACITY];
    s->rejected_queue_full = e->rej[MET_REJECT_QUEUE_FULL];
    s->rejected_queue_timeout = e->rej[MET_REJECT_QUEUE_TIMEOUT];
    s->rejected_batch_budget = e->rej[MET_REJECT_BATCH_BUDGET];
    s->preemptions = e->preemptions;
    s->recomputed_tokens = e->recomputed;
    s->evictions = e->evictions;
    s->pcie_bytes_h2d = e->pcie.bytes_h2d;
    s->pcie_bytes_d2h = e->pcie.bytes_d2h;
    s->swapped_in_tokens = e->pcie.swapped_in_tokens;
    s->preemptions_swapped = e->pcie.swapped_out_seqs;
    for (r = 0; r < e->fl->n_pools; r++) /* defined when any pool can use PCIe */
        if (e->fl->pools[r].sched.host_blocks > 0 || e->fl->pools[r].sched.preempt_swap) {
            s->pcie_busy_h2d_s = e->pcie.busy_h2d_s;
            s->pcie_busy_d2h_s = e->pcie.busy_d2h_s;
            break;
        }
    if (e->n_completed > 0) {
        s->prefix_hit_rate_requests = (double)e->hit_requests / (double)e->n_completed;
        if (e->prompt_tokens > 0)
            s->prefix_hit_rate_tokens = (double)e->hit_tokens / (double)e->prompt_tokens;
    }
    s->prompt_tokens = e->prompt_tokens;
    s->output_tokens = e->output_tokens;
    s->kv_xfer_bytes = e->xfer_bytes;
    s->remote_bytes_in = e->pcie.remote_bytes_in;
    s->remote_bytes_out = e->pcie.remote_bytes_out;
    s->remote_hit_tokens = e->pcie.remote_in_tokens;
    if (e->n_xfer > 0)
        s->kv_xfer_mean_s = e->xfer_s / (double)e->n_xfer;
    s->steps = e->steps;
    if (!quantiles_of(e, &e->ttft, &s->ttft_p50_s, &s->ttft_p90_s, &s->ttft_p99_s) ||
        !quantiles_of(e, &e->tpot, &s->tpot_p50_s, &s->tpot_p90_s, &s->tpot_p99_s) ||
        !quantiles_of(e, &e->e2e, &s->e2e_p50_s, &s->e2e_p90_s, &s->e2e_p99_s) ||
        !quantiles_of(e, &e->queue, &s->queue_p50_s, NULL, &s->queue_p99_s))
        return;
    if (qstore_count(&e->ttft) > 0)
        s->ttft_mean_s = qstore_mean(&e->ttft);
    if (qstore_count(&e->tpot) > 0)
        s->tpot_mean_s = qstore_mean(&e->tpot);
    if (e->n_req > 0) {
        s->first_arrival_s = e->first_arrival;
        if (e->arr_last > e->arr_first)
            s->offered_rps = (double)e->n_req / sim_time_to_s(e->arr_last - e->arr_first);
        s->last_finish_s = e->last_finish;
    }
    if (span > 0) { /* 0 when every request was rejected: the span is defined */
        s->output_tokens_per_s = (double)e->output_tokens / span;
        s->requests_per_s = (double)e->n_completed / span;
        if (e->c->slo_ttft_s > 0 || e->c->slo_tpot_s > 0)
            s->goodput_requests_per_s = (double)e->good / span;
    }
    if (e->n_req > 0 && (e->c->slo_ttft_s > 0 || e->c->slo_tpot_s > 0))
        s->slo_attainment = (double)e->good / (double)e->n_req;
    if (e->busy_s > 0) {
        double peak_s = 0, bw_s = 0;
        for (r = 0; r < e->fl->n_pools; r++) {
            const perf_ctx *pc = e->fl->pools[r].perf;
            peak_s += e->pools[r].busy_s * pc->peak;
            bw_s += e->pools[r].busy_s * pc->gpu.hbm_bw;
        }
        s->mean_batch_size = e->batch_s / e->busy_s;
        s->mfu_mean = e->flops / peak_s;
        s->mbu_mean = e->bytes / bw_s;
        s->kv_util_peak = e->kvu_peak;
    }
    { /* GPU-hours are defined (0) even when the run took no time */
        double kvu = 0, gpu_s = 0, usd = 0;
        int priced = 0, n_fixed = 0;
        for (r = 0; r < e->n_reps; r++)
            kvu += e->reps[r].kvu_int;
        for (r = 0; r < e->fl->n_pools; r++) {
            pool_rt *q = &e->pools[r];
            double price = q->cfg->usd_per_gpu_hour;
            pool_account(q, e->now);
            gpu_s += q->gpu_s;
            n_fixed += q->n;
            if (price > 0) {
                usd += q->gpu_s / 3600.0 * price;
                priced = 1;
            }
        }
        s->gpu_hours = gpu_s / 3600.0;
        if (priced)
            s->cost_usd = usd;
        /* replica-time: every replica of a fixed fleet for the whole span;
         * utilisations over a span of 0 (every request ended the instant
         * it arrived) stay undefined */
        if (span > 0 && e->fl->autoscale.on) {
            double rep_s = 0;
            for (r = 0; r < e->fl->n_pools; r++)
                rep_s += e->pools[r].gpu_s / e->pools[r].cfg->gpus_per_replica;
            s->kv_util_mean = rep_s > 0 ? frac_of(kvu, rep_s) : NAN;
            s->busy_frac = rep_s > 0 ? frac_of(e->busy_s, rep_s) : NAN;
        } else if (span > 0) {
            s->kv_util_mean = frac_of(kvu, span * n_fixed);
            s->busy_frac = frac_of(e->busy_s, span * n_fixed);
        }
    }
    s->sim_time_s = sim_time_to_s(e->now);
    s->sim_events = (int64_t)evq_popped(e->q);
}

/* Replicas a pool can ever have: its cap with an autoscaler, else its start count. */
static int pool_size(const eng_fleet *f, int i) {
    return f->autoscale.on ? f->pools[i].max_replicas : f->pools[i].replicas;
}

/* The one-pool fleet of a config without a fleet. */
static void fleet_single(eng *e, const eng_config *c, be *b) {
    eng_pool *p = &e->pool1;
    eng_fleet *f = &e->fl1;
    memset(p, 0, sizeof *p);
    memset(f, 0, sizeof *f);
    p->name = "default";
    p->perf = c->perf;
    p->sched = c->sched;
    p->b = b;
    p->replicas = p->min_replicas = p->max_replicas = c->replicas;
    p->gpus_per_replica = c->perf->tp;
    p->kv_link_bw = c->perf->gpu.ib_bw * c->perf->tp; /* one NIC per GPU (remote pool traffic) */
    p->kv_link_latency_s = c->perf->gpu.ib_latency_s;
    p->usd_per_gpu_hour = c->usd_per_gpu_hour > 0 ? c->usd_per_gpu_hour : NAN;
    e->w1[0] = 1;
    e->rtt1[0] = 0;
    e->supply1[0] = (int64_t)c->replicas * c->perf->tp;
    f->n_pools = 1;
    f->pools = p;
    f->n_regions = f->n_pops = f->n_models = f->n_supply = 1;
    f->pop_weight = f->model_weight = e->w1;
    f->rtt_s = e->rtt1;
    f->supply = e->supply1;
    f->router = c->router;
    f->scope = ENG_SCOPE_GLOBAL;
}

/* Checks a fleet; SIM_EINVAL names what does not fit. */
static int fleet_check(const eng_fleet *f, sim_err *err) {
    int i, j;
    if (f->n_pools < 1 || f->n_regions < 1 || f->n_pops < 1 || f->n_models < 1 || f->n_supply < 1) {
        sim_err_set(err, "fleet", 0, 0, "expected at least one pool, region, population and model");
        return SIM_EINVAL;
    }
    for (i = 0; i < f->n_pops * f->n_regions; i++)
        if (!(f->rtt_s[i] >= 0) || !isfinite(f->rtt_s[i])) {
            sim_err_set(err, "fleet", 0, 0, "rtt: expected seconds >= 0, got '%g'", f->rtt_s[i]);
            return SIM_EINVAL;
        }
    for (i = 0; i < f->n_pools; i++) {
        const eng_pool *p = &f->pools[i];
        int rc;
        if (p->replicas < 0 || p->min_replicas < 0 || p->max_replicas < p->replicas ||
            p->max_replicas < 1 || p->min_replicas > p->max_replicas || p->gpus_per_replica < 1 ||
            p->model < 0 || p->model >= f->n_models || p->region < 0 || p->region >= f->n_regions ||
            p->supply < 0 || p->supply >= f->n_supply || p->perf == NULL) {
            sim_err_set(err, "fleet", 0, 0,
                        "pool %s: expected 0 <= replicas <= max_replicas, min_replicas <= "
                        "max_replicas, and a known model, region and GPU supply",
                        p->name);
            return SIM_EINVAL;
        }
        if ((rc = sched_config_check(&p->sched, err)) != SIM_OK)
            return rc;
    }
    for (j = 0; j < f->n_supply; j++) {
        int64_t used = 0;
        for (i = 0; i < f->n_pools; i++)
            if (f->pools[i].supply == j)
                used += (int64_t)f->pools[i].replicas * f->pools[i].gpus_per_replica;
        if (used > f->supply[j]) {
            sim_err_set(err, "fleet", 0, 0,
                        "the pools start with %lld GPUs of one kind in one region, more than its "
                        "supply of %lld",
                        (long long)used, (long long)f->supply[j]);
            return SIM_EINFEASIBLE;
        }
    }
    return SIM_OK;
}

/* The stream's lookahead: one request (read as it is needed) unless the
 * fleet routes every request round robin over one list with no round trip
 * to its region, when a decode run can be planned up to its replica's next
 * request (rr_next_for): then up to ENG_LOOKAHEAD_MAX of them, one per
 * replica. Only for a source without follow-ups: a source with them
 * (sessions, a closed loop) hands out ids and draws lengths in the order it
 * is asked, so reading ahead would change them, and the requests that tie
 * on them, against a run without --fast-forward. */
static int lookahead_init(eng *e) {
    const eng_fleet *f = e->fl;
    int i, direct = 1; /* no round trip, no disaggregation: delivered as routed */
    e->la_cap = 1;
    for (i = 0; i < f->n_pops * f->n_regions; i++)
        direct &= f->rtt_s[i] == 0;
    for (i = 0; i < f->n_pools; i++)
        direct &= f->pools[i].role == ENG_ROLE_BOTH;
    if (e->ff && e->n_reps > 1 && direct && f->router == ENG_ROUTE_RR && f->n_models == 1 &&
        (f->scope == ENG_SCOPE_GLOBAL || f->n_regions == 1) && e->src->on_end == NULL) {
        e->rr_list = cand(e, 0, 0, f->n_regions);
        for (i = 0; i < e->rr_list->n; i++)
            e->reps[e->rr_list->rep[i]].rr_pos = i;
        e->la_cap = e->n_reps < ENG_LOOKAHEAD_MAX ? e->n_reps : ENG_LOOKAHEAD_MAX;
        if (e->rr_list->n == 0)
            e->rr_list = NULL;
    }
    e->la = SIM_NEW_ARRAY(req_rec *, (size_t)e->la_cap);
    return e->la ? SIM_OK : SIM_ENOMEM;
}

/* Builds the candidate lists, region orders and draw tables. */
static int fleet_build(eng *e) {
    const eng_fleet *f = e->fl;
    int nr = f->n_regions, m, g, i, k, st;
    double tot;
    size_t nl = (size_t)f->n_models * 2 * (size_t)(nr + 1);
    e->cands = SIM_NEW_ARRAY(cand_list, nl);
    e->near = SIM_NEW_ARRAY(int, (size_t)f->n_pops *(size_t)nr);
    e->pop_cdf = SIM_NEW_ARRAY(double, (size_t)f->n_pops);
    e->model_cdf = SIM_NEW_ARRAY(double, (size_t)f->n_models);
    e->supply_left = SIM_NEW_ARRAY(int64_t, (size_t)f->n_supply);
    if (!e->cands || !e->near || !e->pop_cdf || !e->model_cdf || !e->supply_left)
        return SIM_ENOMEM;
    /* stage 0: where requests enter (both, or prefill pools); stage 1: decode pools */
    for (i = 0; i < f->n_pools; i++) /* pools of one model and stage: routing checks fit */
        for (k = 0; k < i; k++)
            e->mixed |=
                f->pools[k].model == f->pools[i].model &&
                (f->pools[k].role == ENG_ROLE_DECODE) == (f->pools[i].role == ENG_ROLE_DECODE);
    for (m = 0; m < f->n_models; m++)
        for (st = 0; st < 2; st++)
            for (g = 0; g <= nr; g++) {
                cand_list *L = cand(e, m, st, g);
                if ((L->rep = SIM_NEW_ARRAY(int, (size_t)e->n_reps + 1)) == NULL)
                    return SIM_ENOMEM;
                for (i = 0; i < f->n_pools; i++) {
                    const pool_rt *q = &e->pools[i];
                    if (q->cfg->model != m || (g < nr && q->cfg->region != g) ||
                        (q->cfg->role == ENG_ROLE_DECODE) != (st == 1))
                        continue;
                    for (k = q->first; k < q->first + q->n; k++)
                        L->rep[L->n++] = k;
                }
            }
    for (i = 0; i < f->n_pops; i++) { /* regions by RTT, ties by index (insertion sort) */
        int *o = &e->near[(size_t)i * (size_t)nr];
        const double *rtt = &f->rtt_s[(size_t)i * (size_t)nr];
        for (g = 0; g < nr; g++) {
            int j = g;
            while (j > 0 && rtt[o[j - 1]] > rtt[g]) {
                o[j] = o[j - 1];
                j--;
            }
            o[j] = g;
        }
    }
    for (tot = 0, i = 0; i < f->n_pops; i++)
        tot += f->pop_weight[i];
    for (i = 0; i < f->n_pops; i++)
        e->pop_cdf[i] = (i ? e->pop_cdf[i - 1] : 0) + f->pop_weight[i] / tot;
    for (tot = 0, i = 0; i < f->n_models; i++)
        tot += f->model_weight[i];
    for (i = 0; i < f->n_models; i++)
        e->model_cdf[i] = (i ? e->model_cdf[i - 1] : 0) + f->model_weight[i] / tot;
    for (i = 0; i < f->n_supply; i++)
        e->supply_left[i] = f->supply[i];
    for (i = 0; i < f->n_pools; i++)
        e->supply_left[f->pools[i].supply] -=
            (int64_t)f->pools[i].replicas * f->pools[i].gpus_per_replica;
    return SIM_OK;
}

int eng_run(const eng_config *c, const eng_source *src, be *b, const met_sink *sink,
            met_summary *sum, sim_err *err) {
    eng e;
    evq_ev ev;
    int r, rc, i;
    uint64_t n_ev = 0;
    sched_cb cb;
    sched_config scfg;

    memset(&e, 0, sizeof e);
    qstore_init(&e.ttft, c->quantile_mem);
    qstore_init(&e.tpot, c->quantile_mem);
    qstore_init(&e.e2e, c->quantile_mem);
    qstore_init(&e.queue, c->quantile_mem);
    met_summary_init(sum);
    if (c->fleet == NULL && c->replicas < 1) {
        sim_err_set(err, "config", 0, 0, "replicas: expected an integer >= 1, got '%d'",
                    c->replicas);
        return SIM_EINVAL;
    }
    if (c->fleet == NULL)
        fleet_single(&e, c, b);
    e.fl = c->fleet ? c->fleet : &e.fl1;
    if ((rc = fleet_check(e.fl, err)) != SIM_OK)
        return rc;
    e.c = c;
    e.src = src;
    e.forming = e.arr_rel = -1;
    e.sink = sink;
    e.err = err;
    /* no timeline rows without a sink for them: nothing to integrate (and no
     * loop over the intervals of a long idle gap) */
    e.tl_ns = c->timeline_s > 0 && sink && sink->on_timeline ? sim_time_from_s(c->timeline_s) : 0;
    e.arr_last = -1;
    for (i = 0; i < e.fl->n_pools; i++)
        e.n_reps += pool_size(e.fl, i);
    e.q = evq_create(64 + 4 * (size_t)e.n_reps);
    e.reps = SIM_NEW_ARRAY(replica, (size_t)e.n_reps);
    e.pools = SIM_NEW_ARRAY(pool_rt, (size_t)e.fl->n_pools);
    if (e.q == NULL || e.reps == NULL || e.pools == NULL) {
        e.rc = SIM_ENOMEM;
        goto out;
    }
    /* the network of KV transfers (disaggregation, remote pools): each
     * replica's NIC links out of and into its GPUs, and each remote pool's */
    for (i = 0; i < e.fl->n_pools; i++)
        if (e.fl->pools[i].role != ENG_ROLE_BOTH ||
            (e.fl->pools[i].sched.remote_blocks > 0 && e.fl->pools[i].sched.policy != NULL))
            break;
    if (i < e.fl->n_pools) {
        e.kvnet = net_create();
        e.kv_out = SIM_NEW_ARRAY(int, (size_t)e.n_reps);
        e.kv_in = SIM_NEW_ARRAY(int, (size_t)e.n_reps);
        if (!e.kvnet || !e.kv_out || !e.kv_in) {
            e.rc = SIM_ENOMEM;
            goto out;
        }
    }
    for (i = 0, r = 0; i < e.fl->n_pools; i++) {
        const eng_pool *pc = &e.fl->pools[i];
        pool_rt *q = &e.pools[i];
        be *pb = pc->b ? pc->b : b;
        int k;
        double nic_bw = pc->kv_link_bw > 0 ? pc->kv_link_bw : 1.0; /* 1: never used */
        q->cfg = pc;
        q->first = r;
        q->n = pool_size(e.fl, i);
        q->n_on = pc->replicas;
        /* runs reuse perf_step_s, so only where a step lasts what the model says */
        e.ff = c->fast_forward && pb->ops == &be_sim_ops && (i == 0 || e.ff);
        scfg = pc->sched;
        /* blocks without ids where no executor reads block tables */
        scfg.anon_blocks = pb->ops == &be_sim_ops;
        scfg.recompute_s = recompute_s;
        scfg.recompute_ctx = (void *)pc->perf;
        if ((rc = perf_cache_init(&q->ptabs, pc->sched.max_batched_tokens,
                                  pc->sched.max_num_seqs)) != SIM_OK) {
            e.rc = rc;
            goto out;
        }
        if (pc->sched.remote_blocks > 0 && pc->sched.policy != NULL) {
            double pool_bw =
                pc->perf->gpu.ib_bw * (pc->sched.remote_nics > 0 ? pc->sched.remote_nics : 1);
            if ((rc = pcache_create(pc->sched.remote_blocks, pc->sched.policy,
                                    &pc->sched.policy_params, &q->remote, err)) != SIM_OK ||
                (rc = net_link_add(e.kvnet, pool_bw, &q->rpool_in)) != SIM_OK ||
                (rc = net_link_add(e.kvnet, pool_bw, &q->rpool_out)) != SIM_OK) {
                if (rc == SIM_EINVAL) /* not a positive, finite bandwidth */
                    sim_err_set(err, "", 0, 0,
                                "remote pool: expected a positive finite link bandwidth "
                                "(ib_bw %g bytes/s of GPU %s), got %g bytes/s",
                                pc->perf->gpu.ib_bw, pc->perf->gpu.name, pool_bw);
                e.rc = rc;
                goto out;
            }
            scfg.remote = q->remote;
            scfg.rnet = e.kvnet;
            scfg.rpool_in = q->rpool_in;
            scfg.rpool_out = q->rpool_out;
            scfg.rlatency_s = pc->kv_link_latency_s;
            scfg.rbw = pool_bw < nic_bw ? pool_bw : nic_bw;
            e.any_remote = 1;
        }
        for (k = 0; k < q->n; k++, r++) {
            replica *p = &e.reps[r];
            p->e = &e;
            p->idx = r;
            p->pool = i;
            p->perf = pc->perf;
            p->pcache = &q->ptabs;
            p->b = pb;
            p->state = k < pc->replicas ? REP_ON : REP_OFF;
            p->tl_live = p->state != REP_OFF;
            p->run_soft = SIM_TIME_MAX;
            p->rr_pos = -1;
            if (c->fast_forward && ((p->run_end = SIM_NEW_ARRAY(sim_time, ENG_RUN_MAX)) == NULL ||
                                    (p->run_used = SIM_NEW_ARRAY(int64_t, ENG_RUN_MAX)) == NULL)) {
                e.rc = SIM_ENOMEM;
                goto out;
            }
            if (e.kvnet && (net_link_add(e.kvnet, nic_bw, &e.kv_out[r]) != SIM_OK ||
                            net_link_add(e.kvnet, nic_bw, &e.kv_in[r]) != SIM_OK)) {
                e.rc = SIM_ENOMEM;
                goto out;
            }
            scfg.rnic_in = e.kvnet ? e.kv_in[r] : -1;
            scfg.rnic_out = e.kvnet ? e.kv_out[r] : -1;
            cb.ctx = p;
            cb.on_reject = cb_reject;
            cb.on_first_token = cb_first_token;
            cb.on_finish = cb_finish;
            if ((rc = sched_create(&scfg, &cb, &p->s)) != SIM_OK) {
                e.rc = rc;
                goto out;
            }
        }
    }
    /* a remote pool is state shared by replicas: decode runs, applied
     * lazily, would show other replicas its blocks late; step one by one */
    if (e.any_remote)
        e.ff = 0;
    if ((rc = fleet_build(&e)) != SIM_OK || (rc = lookahead_init(&e)) != SIM_OK) {
        e.rc = rc;
        goto out;
    }
    pull_stream(&e);
    if (e.fl->autoscale.on && e.rc == SIM_OK)
        push_tick(&e, 0);
    while (e.rc == SIM_OK && evq_pop(e.q, &ev)) {
        /* once the workload has ended, a replica becoming ready or a tick
         * changes nothing that is reported: the run ends at the last event
         * of the workload, not at a provisioning that has not finished */
        if ((ev.type == EV_TICK || ev.type == EV_READY) && workload_done(&e))
            continue;
        e.now = ev.t;
        switch (ev.type) {
            case EV_ARRIVAL:
                e.arr_rel = ((req_rec *)ev.p)->rel_rep;
                on_arrival(&e, ev.p);
                e.arr_rel = -1;
                break;
            case EV_DELIVER:
                on_deliver(&e, &e.reps[ev.a], ev.p);
                break;
            case EV_SCHEDULE:
                on_schedule(&e, &e.reps[ev.a]);
                break;
            case EV_STEP_DONE:
                on_step_done(&e, &e.reps[ev.a], ev.b);
                break;
            case EV_WAKE:
                on_wake(&e, &e.reps[ev.a]);
                break;
            case EV_TICK:
                on_tick(&e);
                break;
            case EV_READY:
                on_ready(&e, &e.reps[ev.a]);
                break;
            case EV_NET:
                on_net(&e, ev.b);
                break;
            case EV_DROP:
                on_drop(&e, &e.reps[ev.a]);
                break;
            default:
                SIM_ASSERT(0);
        }
        if (e.kvnet && net_started(e.kvnet) != e.net_seen)
            push_net(&e); /* a transfer started: the next finish moved */
        if (c->progress && (++n_ev & 0xffff) == 0)
            c->progress(c->progress_ctx, sim_time_to_s(e.now), e.n_req, n_ev);
    }
    if (e.rc != SIM_OK)
        goto out;
    SIM_ASSERT(e.live == 0);
    /* every replica drained: nothing waits, runs or holds a block */
    for (r = 0; r < e.n_reps; r++) {
        replica *p = &e.reps[r];
        SIM_ASSERT(p->out_req == 0 && p->inflight_req == 0);
        SIM_ASSERT(sched_n_waiting(p->s) == 0 && sched_n_running(p->s) == 0);
        /* blocks still in use are exactly the cached ones nobody holds */
        SIM_ASSERT(kvc_used(sched_pool(p->s)) ==
                   (sched_cache(p->s) ? pcache_size(sched_cache(p->s)) : 0));
        SIM_ASSERT(kvc_n_alloc(sched_pool(p->s)) - kvc_n_freed(sched_pool(p->s)) ==
                   kvc_used(sched_pool(p->s)));
        if (sched_cache(p->s))
            e.evictions += pcache_evictions(sched_cache(p->s));
        if (r == e.n_reps - 1)
            e.evictions -= e.evictions_dropped;
        {
            sched_pcie pc;
            sched_links_settle(p->s, e.now);
            sched_pcie_stats(p->s, &pc);
            e.pcie.bytes_h2d += pc.bytes_h2d;
            e.pcie.bytes_d2h += pc.bytes_d2h;
            e.pcie.busy_h2d_s += pc.busy_h2d_s;
            e.pcie.busy_d2h_s += pc.busy_d2h_s;
            e.pcie.swapped_in_tokens += pc.swapped_in_tokens;
            e.pcie.swapped_out_seqs += pc.swapped_out_seqs;
            e.pcie.remote_bytes_in += pc.remote_bytes_in;
            e.pcie.remote_bytes_out += pc.remote_bytes_out;
            e.pcie.remote_in_tokens += pc.remote_in_tokens;
        }
        e.busy_s += p->busy_s;
        e.pools[p->pool].busy_s += p->busy_s;
        e.batch_s += p->batch_s;
        e.flops += p->flops;
        e.bytes += p->bytes;
        rep_account(&e, p, e.now);
        /* the last interval, cut short; of length 0 when the run ends on a
         * boundary, and then written only to hold that instant's counts
         * (which rep_account put after the boundary) */
        if (e.tl_ns > 0 &&
            (p->acc_t > p->tl_k * e.tl_ns || p->tl_arr || p->tl_comp || p->tl_rej || p->tl_out))
            tl_emit(&e, p, tl_s(p->tl_k * e.tl_ns), tl_s(p->acc_t - p->tl_k * e.tl_ns));
    }
    summarise(&e, sum);
out:
    rc = e.rc;
    if (rc != SIM_OK && err && err->msg[0] == '\0')
        sim_err_set(err, "", 0, 0, "simulation failed: %s", sim_strerror(rc));
    if (e.reps)
        for (r = 0; r < e.n_reps; r++) {
            sched_destroy(e.reps[r].s);
            sim_free(e.reps[r].run_end);
            sim_free(e.reps[r].run_used);
        }
    sim_free(e.reps);
    if (e.cands)
        for (i = 0; i < e.fl->n_models * 2 * (e.fl->n_regions + 1); i++)
            sim_free(e.cands[i].rep);
    for (i = 0; i < e.n_xf; i++)
        rec_put(&e, e.xf[i].rec);
    sim_free(e.xf);
    if (e.pools)
        for (i = 0; i < e.fl->n_pools; i++) {
            pcache_destroy(e.pools[i].remote);
            perf_cache_fini(&e.pools[i].ptabs);
        }
    net_destroy(e.kvnet);
    sim_free(e.kv_out);
    sim_free(e.kv_in);
    sim_free(e.cands);
    sim_free(e.la);
    sim_free(e.near);
    sim_free(e.pop_cdf);
    sim_free(e.model_cdf);
    sim_free(e.supply_left);
    sim_free(e.pools);
    sim_free(e.sess.key);
    sim_free(e.sess.rep);
    if (e.rec_chunks) {
        for (i = 0; i < e.n_rec_chunks; i++) {
            int j;
            for (j = 0; j < 256; j++)
                sim_free(e.rec_chunks[i][j].hash);
            sim_free(e.rec_chunks[i]);
        }
        sim_free(e.rec_chunks);
    }
    evq_destroy(e.q);
    qstore_free(&e.ttft);
    qstore_free(&e.tpot);
    qstore_free(&e.e2e);
    qstore_free(&e.queue);
    return rc;
}
