/* engine.c: the discrete-event loop (see engine.h).
 *
 * Events: ARRIVAL (class 0) routes a request to a replica; STEP_DONE
 * (class 1) completes a replica's step; SCHEDULE (class 2) forms the next
 * step and asks the executor for its duration. At equal times classes run in
 * that order, so a step formed at t sees every arrival at t however the
 * events were pushed. Only one open-loop arrival is pending at a time (the
 * source is streamed); follow-up requests (session turns, closed-loop
 * clients) are pushed when the request that releases them ends.
 *
 * Each replica's state is a set of piecewise-constant signals (in a step or
 * not, batch size, waiting requests, KV utilisation); before any event
 * changes them, rep_account() integrates them up to now, which yields the
 * time-weighted means and the timeline intervals at O(1) per event.
 *
 * Memory: live requests and sequences, the event heap, and one double per
 * completed request for each exact quantile (TTFT, TPOT, E2E, queueing).
 * Non-goals: routers other than round robin and fleets of unlike replicas
 * (the fleet work adds them). */
#include "config.h"
#include "engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "evq.h"
#include "mem.h"

enum { EV_ARRIVAL = 1, EV_STEP_DONE = 2, EV_SCHEDULE = 3, EV_WAKE = 4 };
enum { CLS_ARRIVAL = 0, CLS_STEP = 1, CLS_SCHED = 2 };

typedef struct req_rec {
    sim_req r;
    int from_stream; /* 1: the open-loop lookahead */
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

typedef struct dvec {
    double *v;
    size_t n, cap;
} dvec;

struct eng;

typedef struct replica {
    struct eng *e;
    int idx;
    sched *s;
    int busy;          /* a step is in flight */
    int sched_pending; /* a SCHEDULE event is queued */
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
    double tl_batch, tl_wait, tl_kv, tl_busy;
    int64_t tl_arr, tl_comp, tl_rej, tl_out;
    /* run integrals */
    double kvu_int; /* KV utilisation x s */
    /* decode run in flight */
    int in_run;
    int64_t run_k;     /* steps planned */
    sim_time run_t0;   /* start of the first */
    sim_time *run_end; /* end of step i, [0, run_k) */
    int64_t gen;       /* generation of the pending STEP_DONE event */
    perf_cache pcache; /* operator times reused within a decode run */
} replica;

#define ENG_RUN_MAX 1024

typedef struct eng {
    const eng_config *c;
    const eng_source *src;
    be *b;
    const met_sink *sink;
    evq *q;
    replica *reps;
    int rr;
    req_rec *free_recs;
    req_rec **rec_chunks;
    int n_rec_chunks, cap_rec_chunks;
    int stream_done;
    int rc;
    sim_err *err;
    /* summary accumulators */
    dvec ttft, tpot, e2e, queue;
    int64_t n_req, n_completed, n_rejected, rej[MET_N_REJECT];
    int64_t prompt_tokens, output_tokens, recomputed, preemptions, steps, good;
    int64_t hit_tokens, hit_requests, evictions;
    sched_pcie pcie; /* summed over replicas */
    double first_arrival, last_finish;
    double busy_s, batch_s, flops, bytes, kvu_peak;
    int64_t tl_ns;          /* timeline interval, ns (0: none) */
    int ff;                 /* decode runs enabled */
    sim_time next_stream_t; /* arrival of the pending streamed request (MAX: none) */
    sim_time now;
} eng;

/* ---- small helpers ---- */

static int dvec_push(dvec *d, double x) {
    if (d->n == d->cap) {
        size_t ncap = d->cap ? 2 * d->cap : 1024;
        double *nv = sim_realloc(d->v, ncap * sizeof *nv);
        if (nv == NULL)
            return SIM_ENOMEM;
        d->v = nv;
        d->cap = ncap;
    }
    d->v[d->n++] = x;
    return SIM_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

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
    return r;
}

static void rec_put(eng *e, req_rec *r) {
    r->next = e->free_recs;
    e->free_recs = r;
}

/* ---- timeline and integrals ---- */

static void tl_emit(eng *e, replica *p, double t0, double dt) {
    met_timeline row;
    if (e->sink == NULL || e->sink->on_timeline == NULL || e->rc != SIM_OK)
        goto reset;
    row.replica = p->idx;
    row.t_s = t0;
    row.dt_s = dt;
    row.batch_mean = dt > 0 ? p->tl_batch / dt : NAN;
    row.waiting_mean = dt > 0 ? p->tl_wait / dt : NAN;
    row.kv_util_mean = dt > 0 ? p->tl_kv / dt : NAN;
    row.busy_frac = dt > 0 ? p->tl_busy / dt : NAN;
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
static void rep_account(eng *e, replica *p, sim_time t) {
    double dt;
    if (t <= p->acc_t)
        return;
    dt = sim_time_to_s(t - p->acc_t);
    p->kvu_int += p->sig_kvu * dt;
    if (e->tl_ns > 0) {
        sim_time a = p->acc_t;
        while (t >= (p->tl_k + 1) * e->tl_ns) {
            sim_time end = (p->tl_k + 1) * e->tl_ns;
            tl_add(p, sim_time_to_s(end - a));
            tl_emit(e, p, sim_time_to_s(p->tl_k * e->tl_ns), sim_time_to_s(e->tl_ns));
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
    p->sig_kvu = (double)kvc_used(pool) / (double)kvc_total(pool);
}

/* ---- request outcomes (scheduler callbacks) ---- */

static void push_followup(eng *e, const sim_req *r, sim_time t, int rejected) {
    sim_req nx;
    req_rec *rec;
    if (e->src->on_end == NULL || e->src->on_end(e->src->ctx, r, t, rejected, &nx) != 1)
        return;
    rec = rec_get(e);
    if (rec == NULL) {
        fail(e, SIM_ENOMEM, "queueing a follow-up request");
        return;
    }
    rec->r = nx;
    rec->from_stream = 0;
    if (rec_keep_hashes(rec) != SIM_OK) {
        rec_put(e, rec);
        fail(e, SIM_ENOMEM, "queueing a follow-up request");
        return;
    }
    if (nx.arrival_ns < t)
        rec->r.arrival_ns = t;
    if (evq_push(e->q, rec->r.arrival_ns, CLS_ARRIVAL, EV_ARRIVAL, -1, 0, rec) != SIM_OK)
        fail(e, SIM_ENOMEM, "queueing a follow-up request");
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

static void reject_at(eng *e, int rep, const sim_req *r, enum met_reject why, sim_time t) {
    met_request row;
    memset(&row, 0, sizeof row);
    row.id = r->id;
    row.replica = rep;
    row.arrival_s = sim_time_to_s(r->arrival_ns);
    row.first_token_s = NAN;
    row.finish_s = sim_time_to_s(t);
    row.prompt_tokens = r->prompt_tokens;
    row.new_tokens = r->new_tokens;
    row.session_id = r->session_id;
    row.turn = r->turn;
    row.reject = why;
    note_end(e, row.arrival_s, row.finish_s);
    e->n_rejected++;
    e->rej[why]++;
    if (rep >= 0)
        e->reps[rep].tl_rej++;
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

static void cb_finish(void *ctx, sched_seq *s, sim_time t) {
    replica *p = ctx;
    eng *e = p->e;
    met_request row;
    double ttft, e2e;
    int32_t out = s->req.output_tokens;
    memset(&row, 0, sizeof row);
    row.id = s->req.id;
    row.replica = p->idx;
    row.arrival_s = sim_time_to_s(s->req.arrival_ns);
    row.first_token_s = sim_time_to_s(s->first_token_ns);
    row.finish_s = sim_time_to_s(t);
    row.prompt_tokens = s->req.prompt_tokens;
    row.new_tokens = s->req.new_tokens;
    row.output_tokens = out;
    row.preemptions = s->preemptions;
    row.recomputed_tokens = s->recomputed_tokens;
    row.hit_tokens = s->hit_tokens;
    e->hit_tokens += s->hit_tokens;
    e->hit_requests += s->hit_tokens > 0;
    row.session_id = s->req.session_id;
    row.turn = s->req.turn;
    row.reject = MET_REJECT_NONE;
    note_end(e, row.arrival_s, row.finish_s);
    e->n_completed++;
    e->prompt_tokens += s->req.prompt_tokens;
    e->output_tokens += out;
    e->recomputed += s->recomputed_tokens;
    p->tl_comp++;
    p->tl_out += out;
    ttft = sim_time_to_s(s->first_token_ns - s->req.arrival_ns);
    e2e = sim_time_to_s(t - s->req.arrival_ns);
    if (dvec_push(&e->ttft, ttft) || dvec_push(&e->e2e, e2e) ||
        dvec_push(&e->queue, sim_time_to_s(s->admitted_ns - s->req.arrival_ns)))
        fail(e, SIM_ENOMEM, "recording latencies");
    {
        int good = 1;
        double tpot = NAN;
        if (out >= 2) {
            tpot = sim_time_to_s(t - s->first_token_ns) / (double)(out - 1);
            if (dvec_push(&e->tpot, tpot))
                fail(e, SIM_ENOMEM, "recording latencies");
        }
        if (e->c->slo_ttft_s > 0 && ttft > e->c->slo_ttft_s)
            good = 0;
        if (e->c->slo_tpot_s > 0 && out >= 2 && tpot > e->c->slo_tpot_s)
            good = 0;
        e->good += good;
    }
    request_row(e, &row);
    push_followup(e, &s->req, t, 0);
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
    const perf_ctx *pc = e->c->perf;
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

/* Records a formed step in the run's figures and the steps table. */
static void step_account(eng *e, replica *p, sim_time dur) {
    e->steps++;
    e->busy_s += sim_time_to_s(dur);
    e->batch_s += (double)(p->batch.n_chunks + p->batch.n_decode) * sim_time_to_s(dur);
    e->flops += p->pr.flops;
    e->bytes += p->pr.bytes;
    e->preemptions += p->batch.n_preempted;
    if (p->sig_kvu > e->kvu_peak)
        e->kvu_peak = p->sig_kvu;
    step_row(e, p);
}

/* Forms the replica's next step at time t (accounted up to t by the
 * caller) and asks the backend for its duration. Returns the number of
 * sequences in it (0: nothing to run) or a negative code (e->rc is set). */
static int form_step(eng *e, replica *p, sim_time t, sim_time *dur) {
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
        perf_predict(e->c->perf, &p->batch.agg, &p->pr);
    } else { /* the figures the summary needs, without the breakdown */
        p->pr.step_s = perf_step_s_cached(e->c->perf, &p->pcache, &p->batch.agg);
        perf_work(e->c->perf, &p->batch.agg, &p->pr.flops, &p->pr.bytes);
    }
    p->res.pred_s = p->pr.step_s;
    rc = be_step(e->b, p->idx, p->s, &p->batch, &p->res, e->err);
    if (rc != SIM_OK) {
        e->rc = rc;
        return rc;
    }
    if (!(p->res.dur_s >= 0) || !isfinite(p->res.dur_s)) {
        sim_err_set(e->err, "", 0, 0, "backend %s returned a step duration of %g s",
                    e->b->ops->name, p->res.dur_s);
        e->rc = SIM_EDEVICE;
        return SIM_EDEVICE;
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

static void push_step_done(eng *e, replica *p, sim_time t) {
    if (evq_push(e->q, t, CLS_STEP, EV_STEP_DONE, p->idx, ++p->gen, NULL) != SIM_OK)
        fail(e, SIM_ENOMEM, "scheduling a step end");
}

static void on_schedule(eng *e, replica *p) {
    sim_time dur, ready;
    int n;
    p->sched_pending = 0;
    rep_account(e, p, e->now);
    n = form_step(e, p, e->now, &dur);
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

static sim_time run_start(const replica *p, int64_t i) {
    return i == 0 ? p->run_t0 : p->run_end[i - 1];
}

/* Plans a run from now; returns 1 when one started. */
static int run_try(eng *e, replica *p) {
    sim_time deadline, t = e->now;
    int64_t lim, i, free_blocks;
    perf_batch agg;
    if (!e->ff)
        return 0;
    lim = sched_decode_run_limit(p->s, &deadline);
    if (lim < 2)
        return 0;
    if (lim > ENG_RUN_MAX)
        lim = ENG_RUN_MAX;
    free_blocks = sched_avail_blocks(p->s);
    for (i = 0; i < lim; i++) {
        int64_t need = sched_decode_need(p->s, i);
        sim_time dn;
        /* stop at the deadline, when blocks run out, and after the step in
         * progress when the next streamed request arrives (it may come here) */
        if (t > deadline || need > free_blocks || t >= e->next_stream_t)
            break;
        free_blocks -= need;
        sched_decode_agg(p->s, i, &agg);
        dn = sim_time_from_s(perf_step_s_cached(e->c->perf, &p->pcache, &agg));
        t += dn < 1 ? 1 : dn;
        p->run_end[i] = t;
    }
    if (i < 2)
        return 0;
    p->in_run = 1;
    p->run_k = i;
    p->run_t0 = e->now;
    p->busy = 1;
    push_step_done(e, p, p->run_end[i - 1]);
    return 1;
}

/* Applies the run's steps [0, n), none of which finishes a sequence. */
static void run_apply(eng *e, replica *p, int64_t n) {
    const perf_ctx *pc = e->c->perf;
    perf_batch agg;
    int64_t i, step0 = sched_n_steps(p->s);
    int nd = sched_n_decode(p->s);
    double f0, b0, f1, b1, df, db;
    if (n <= 0)
        return;
    /* FLOPs and bytes grow linearly with the summed context */
    sched_decode_agg(p->s, 0, &agg);
    perf_work(pc, &agg, &f0, &b0);
    sched_decode_agg(p->s, 1, &agg);
    perf_work(pc, &agg, &f1, &b1);
    df = f1 - f0;
    db = b1 - b0;
    for (i = 0; i < n && e->rc == SIM_OK; i++) {
        sim_time start = run_start(p, i), dur = p->run_end[i] - start;
        int64_t step = step0 + i;
        rep_account(e, p, start);
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
        memset(&p->batch, 0, sizeof p->batch);
        p->batch.step = step;
        p->batch.start_ns = start;
        p->batch.n_decode = nd;
        p->batch.kv_blocks_used = kvc_used(sched_pool(p->s));
        p->batch.waiting = (int)sched_n_waiting(p->s);
        sched_decode_agg(p->s, -1, &p->batch.agg); /* the step just applied */
        p->res.pred_s = p->pr.step_s;
        p->res.dur_s = p->pr.step_s;
        p->res.meas_s = NAN;
        p->res.host_s = NAN;
        p->busy = 1;
        rep_signals(p);
        step_account(e, p, dur);
    }
    if (e->c->check && sched_check(p->s) != 0) {
        sim_err_set(e->err, "", 0, 0, "scheduler invariant broken in a decode run");
        e->rc = SIM_EINVAL;
    }
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
    if (form_step(e, p, start, &dur) <= 0)
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
    run_cut(e, p, lo + 1, 1);
}

static void on_step_done(eng *e, replica *p, int64_t gen) {
    int rc;
    if (gen != p->gen)
        return; /* superseded: the run was cut */
    if (p->in_run) {
        /* the run ran to its end: its last step completes now */
        run_cut(e, p, p->run_k, 0);
        if (e->rc != SIM_OK)
            return;
        SIM_ASSERT(p->run_end[p->run_k - 1] == e->now);
    }
    rep_account(e, p, e->now);
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
    /* Nothing else happens at this instant: no arrival at now can still be
     * pending, so forming the next step (or run) at once is what the
     * SCHEDULE event would do, without the heap round trip. */
    if (evq_peek_time(e->q) > e->now && !p->sched_pending) {
        if (!run_try(e, p))
            on_schedule(e, p);
        return;
    }
    schedule_soon(e, p);
}

/* Pushes the next open-loop request, if any. */
static void pull_stream(eng *e) {
    req_rec *rec;
    int rc;
    if (e->stream_done)
        return;
    rec = rec_get(e);
    if (rec == NULL) {
        fail(e, SIM_ENOMEM, "reading the trace");
        return;
    }
    rc = e->src->next(e->src->ctx, &rec->r, e->err);
    if (rc <= 0) {
        rec_put(e, rec);
        e->stream_done = 1;
        e->next_stream_t = SIM_TIME_MAX;
        if (rc < 0)
            e->rc = rc;
        return;
    }
    rec->from_stream = 1;
    if (rec_keep_hashes(rec) != SIM_OK) {
        rec_put(e, rec);
        fail(e, SIM_ENOMEM, "reading the trace");
        return;
    }
    if (rec->r.arrival_ns < e->now) {
        sim_err_set(e->err, "", 0, 0, "request %llu arrives at %.9f s, before %.9f s",
                    (unsigned long long)rec->r.id, sim_time_to_s(rec->r.arrival_ns),
                    sim_time_to_s(e->now));
        rec_put(e, rec);
        e->rc = SIM_EPARSE;
        return;
    }
    e->next_stream_t = rec->r.arrival_ns;
    if (evq_push(e->q, rec->r.arrival_ns, CLS_ARRIVAL, EV_ARRIVAL, -1, 0, rec) != SIM_OK)
        fail(e, SIM_ENOMEM, "queueing an arrival");
}

static void on_arrival(eng *e, req_rec *rec) {
    replica *p;
    int rc;
    if (rec->from_stream)
        pull_stream(e);
    p = &e->reps[e->rr];
    e->rr = (e->rr + 1) % e->c->replicas;
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
    double weights = sim_model_weight_bytes(m, p->tp);
    /* activations of the largest step (hidden states, QKV, gated MLP) in bf16,
     * fp32 logits for every sampled sequence, and 0.5 GiB of CUDA context and
     * library workspace */
    double act = (double)max_batched_tokens *
                     (4.0 * m->hidden + 2.0 * m->intermediate / p->tp +
                      (double)(m->n_heads + 2 * m->n_kv_heads) * m->head_dim / p->tp) *
                     2.0 +
                 (double)max_num_seqs * m->vocab / p->tp * 4.0 + 0.5 * 1073741824.0;
    double block = sim_model_kv_bytes_per_token(m, p->tp) * block_tokens;
    double left = avail - weights - act;
    if (why)
        snprintf(why, why_n,
                 "%s at TP%d needs %.1f GB of weights and %.1f GB of activation reserve; %s has "
                 "%.1f GB of HBM x %.2f = %.1f GB",
                 m->name, p->tp, weights / 1e9, act / 1e9, p->gpu.name, p->gpu.hbm_bytes / 1e9,
                 mem_util, avail / 1e9);
    if (left < block)
        return 0;
    return (int64_t)(left / block);
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
    if (e->c->sched.host_blocks > 0 || e->c->sched.preempt_swap) {
        s->pcie_busy_h2d_s = e->pcie.busy_h2d_s;
        s->pcie_busy_d2h_s = e->pcie.busy_d2h_s;
    }
    if (e->n_completed > 0) {
        s->prefix_hit_rate_requests = (double)e->hit_requests / (double)e->n_completed;
        if (e->prompt_tokens > 0)
            s->prefix_hit_rate_tokens = (double)e->hit_tokens / (double)e->prompt_tokens;
    }
    s->prompt_tokens = e->prompt_tokens;
    s->output_tokens = e->output_tokens;
    s->steps = e->steps;
    qsort(e->ttft.v, e->ttft.n, sizeof(double), cmp_double);
    qsort(e->tpot.v, e->tpot.n, sizeof(double), cmp_double);
    qsort(e->e2e.v, e->e2e.n, sizeof(double), cmp_double);
    qsort(e->queue.v, e->queue.n, sizeof(double), cmp_double);
    s->ttft_p50_s = met_quantile_sorted(e->ttft.v, e->ttft.n, 0.50);
    s->ttft_p90_s = met_quantile_sorted(e->ttft.v, e->ttft.n, 0.90);
    s->ttft_p99_s = met_quantile_sorted(e->ttft.v, e->ttft.n, 0.99);
    s->tpot_p50_s = met_quantile_sorted(e->tpot.v, e->tpot.n, 0.50);
    s->tpot_p90_s = met_quantile_sorted(e->tpot.v, e->tpot.n, 0.90);
    s->tpot_p99_s = met_quantile_sorted(e->tpot.v, e->tpot.n, 0.99);
    s->e2e_p50_s = met_quantile_sorted(e->e2e.v, e->e2e.n, 0.50);
    s->e2e_p90_s = met_quantile_sorted(e->e2e.v, e->e2e.n, 0.90);
    s->e2e_p99_s = met_quantile_sorted(e->e2e.v, e->e2e.n, 0.99);
    s->queue_p50_s = met_quantile_sorted(e->queue.v, e->queue.n, 0.50);
    s->queue_p99_s = met_quantile_sorted(e->queue.v, e->queue.n, 0.99);
    if (e->ttft.n > 0) {
        double sum = 0;
        size_t i;
        for (i = 0; i < e->ttft.n; i++)
            sum += e->ttft.v[i];
        s->ttft_mean_s = sum / (double)e->ttft.n;
    }
    if (e->tpot.n > 0) {
        double sum = 0;
        size_t i;
        for (i = 0; i < e->tpot.n; i++)
            sum += e->tpot.v[i];
        s->tpot_mean_s = sum / (double)e->tpot.n;
    }
    if (e->n_req > 0) {
        s->first_arrival_s = e->first_arrival;
        s->last_finish_s = e->last_finish;
    }
    if (e->n_completed > 0 && span > 0) {
        s->output_tokens_per_s = (double)e->output_tokens / span;
        s->requests_per_s = (double)e->n_completed / span;
        if (e->c->slo_ttft_s > 0 || e->c->slo_tpot_s > 0)
            s->goodput_requests_per_s = (double)e->good / span;
    }
    if (e->n_req > 0 && (e->c->slo_ttft_s > 0 || e->c->slo_tpot_s > 0))
        s->slo_attainment = (double)e->good / (double)e->n_req;
    if (e->busy_s > 0) {
        const perf_ctx *pc = e->c->perf;
        s->mean_batch_size = e->batch_s / e->busy_s;
        s->mfu_mean = e->flops / (e->busy_s * pc->peak);
        s->mbu_mean = e->bytes / (e->busy_s * pc->gpu.hbm_bw);
        s->kv_util_peak = e->kvu_peak;
    }
    if (span > 0) {
        double kvu = 0;
        for (r = 0; r < e->c->replicas; r++)
            kvu += e->reps[r].kvu_int;
        s->kv_util_mean = kvu / (span * e->c->replicas);
        s->busy_frac = e->busy_s / (span * e->c->replicas);
    }
    s->sim_time_s = sim_time_to_s(e->now);
    s->sim_events = (int64_t)evq_popped(e->q);
}

int eng_run(const eng_config *c, const eng_source *src, be *b, const met_sink *sink,
            met_summary *sum, sim_err *err) {
    eng e;
    evq_ev ev;
    int r, rc;
    uint64_t n_ev = 0;
    sched_cb cb;
    sched_config scfg;

    memset(&e, 0, sizeof e);
    met_summary_init(sum);
    if (c->replicas < 1) {
        sim_err_set(err, "config", 0, 0, "replicas: expected an integer >= 1, got '%d'",
                    c->replicas);
        return SIM_EINVAL;
    }
    if ((rc = sched_config_check(&c->sched, err)) != SIM_OK)
        return rc;
    e.c = c;
    e.src = src;
    e.b = b;
    e.sink = sink;
    e.err = err;
    e.tl_ns = c->timeline_s > 0 ? sim_time_from_s(c->timeline_s) : 0;
    /* runs reuse perf_step_s, so only where a step lasts what the model says */
    e.ff = c->fast_forward && b->ops == &be_sim_ops;
    e.q = evq_create(64 + 4 * (size_t)c->replicas);
    e.reps = SIM_NEW_ARRAY(replica, (size_t)c->replicas);
    if (e.q == NULL || e.reps == NULL) {
        e.rc = SIM_ENOMEM;
        goto out;
    }
    scfg = c->sched;
    scfg.recompute_s = recompute_s;
    scfg.recompute_ctx = (void *)c->perf;
    for (r = 0; r < c->replicas; r++) {
        replica *p = &e.reps[r];
        p->e = &e;
        p->idx = r;
        if (e.ff && (p->run_end = SIM_NEW_ARRAY(sim_time, ENG_RUN_MAX)) == NULL) {
            e.rc = SIM_ENOMEM;
            goto out;
        }
        cb.ctx = p;
        cb.on_reject = cb_reject;
        cb.on_first_token = cb_first_token;
        cb.on_finish = cb_finish;
        if ((rc = sched_create(&scfg, &cb, &p->s)) != SIM_OK) {
            e.rc = rc;
            goto out;
        }
    }
    pull_stream(&e);
    while (e.rc == SIM_OK && evq_pop(e.q, &ev)) {
        e.now = ev.t;
        switch (ev.type) {
            case EV_ARRIVAL:
                on_arrival(&e, ev.p);
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
            default:
                SIM_ASSERT(0);
        }
        if (c->progress && (++n_ev & 0xffff) == 0)
            c->progress(c->progress_ctx, sim_time_to_s(e.now), e.n_req, n_ev);
    }
    if (e.rc != SIM_OK)
        goto out;
    /* every replica drained: nothing waits, runs or holds a block */
    for (r = 0; r < c->replicas; r++) {
        replica *p = &e.reps[r];
        SIM_ASSERT(sched_n_waiting(p->s) == 0 && sched_n_running(p->s) == 0);
        /* blocks still in use are exactly the cached ones nobody holds */
        SIM_ASSERT(kvc_used(sched_pool(p->s)) ==
                   (sched_cache(p->s) ? pcache_size(sched_cache(p->s)) : 0));
        SIM_ASSERT(kvc_n_alloc(sched_pool(p->s)) - kvc_n_freed(sched_pool(p->s)) ==
                   kvc_used(sched_pool(p->s)));
        if (sched_cache(p->s))
            e.evictions += pcache_evictions(sched_cache(p->s));
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
        }
        rep_account(&e, p, e.now);
        if (e.tl_ns > 0 && p->acc_t > p->tl_k * e.tl_ns)
            tl_emit(&e, p, sim_time_to_s(p->tl_k * e.tl_ns),
                    sim_time_to_s(p->acc_t - p->tl_k * e.tl_ns));
    }
    summarise(&e, sum);
out:
    rc = e.rc;
    if (rc != SIM_OK && err && err->msg[0] == '\0')
        sim_err_set(err, "", 0, 0, "simulation failed: %s", sim_strerror(rc));
    if (e.reps)
        for (r = 0; r < c->replicas; r++) {
            sched_destroy(e.reps[r].s);
            sim_free(e.reps[r].run_end);
        }
    sim_free(e.reps);
    if (e.rec_chunks) {
        int i;
        for (i = 0; i < e.n_rec_chunks; i++) {
            int j;
            for (j = 0; j < 256; j++)
                sim_free(e.rec_chunks[i][j].hash);
            sim_free(e.rec_chunks[i]);
        }
        sim_free(e.rec_chunks);
    }
    evq_destroy(e.q);
    sim_free(e.ttft.v);
    sim_free(e.tpot.v);
    sim_free(e.e2e.v);
    sim_free(e.queue.v);
    return rc;
}
