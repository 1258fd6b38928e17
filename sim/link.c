/* link.c: a link direction shared equally by concurrent transfers (see
 * link.h).
 *
 * State: the unfinished transfers in start order (handles increase), each
 * with the time its bytes begin to move and the bytes left. Advancing steps
 * from event to event (a transfer's latency ending, the smallest remaining
 * transfer finishing at the current equal share), so the cost is
 * O(transfers in flight) per event. Finished transfers leave the array;
 * a handle not found among the unfinished ones is done. Sizes: a handful of
 * transfers in flight per replica and direction. Non-goals: several links
 * on one path (the interconnect work builds paths and max-min fairness
 * across links on top of this). */
#include "config.h"
#include "link.h"

#include "err.h"
#include "mem.h"

typedef struct flow {
    int64_t h;   /* handle */
    sim_time go; /* bytes begin to move */
    sim_time t0; /* started */
    double left; /* bytes left */
} flow;

struct link {
    double bw;    /* bytes/s */
    sim_time now; /* settled up to */
    flow *f;      /* unfinished, by handle */
    int n, cap;
    int64_t next_h;
    double busy_s;
};

link *link_create(double bw) {
    link *l;
    if (!(bw > 0))
        return NULL;
    l = SIM_NEW(link);
    if (l == NULL)
        return NULL;
    l->bw = bw;
    return l;
}

void link_destroy(link *l) {
    if (l == NULL)
        return;
    sim_free(l->f);
    sim_free(l);
}

/* Moving transfers at time t: unfinished ones past their latency. */
static int moving(const flow *f, int n, sim_time t) {
    int i, k = 0;
    for (i = 0; i < n; i++)
        k += f[i].go <= t && f[i].left > 0;
    return k;
}

/* Steps the transfers f[0, n) from *t towards `to` (no new starts): one
 * event at a time; finished transfers get left = 0 and, when fin is not
 * NULL, their finish time in fin[i]. Returns the time reached (`to`, or
 * earlier when stop_first and a transfer finished). busy accumulates the
 * time any transfer was in flight. */
static sim_time run(double bw, flow *f, int n, sim_time t, sim_time to, sim_time *fin,
                    int stop_first, double *busy) {
    for (;;) {
        int i, k = moving(f, n, t), inflight = 0, any_done = 0;
        sim_time next = to;
        double share, min_left = -1;
        for (i = 0; i < n; i++) {
            if (f[i].left <= 0)
                continue;
            inflight = 1;
            if (f[i].go > t && f[i].go < next)
                next = f[i].go; /* a latency ends */
            if (f[i].go <= t && (min_left < 0 || f[i].left < min_left))
                min_left = f[i].left;
        }
        if (!inflight)
            return to;
        share = k > 0 ? bw / k : 0;
        if (k > 0) {
            /* the smallest remaining transfer finishes at the current share */
            double dt = min_left / share;
            sim_time tf = t + (sim_time)(dt * 1e9 + 0.999999);
            if (tf < next)
                next = tf;
        }
        if (next <= t)
            next = t + 1;
        if (next > to)
            next = to;
        if (busy)
            *busy += sim_time_to_s(next - t);
        for (i = 0; i < n; i++) {
            if (f[i].left <= 0 || f[i].go > t)
                continue;
            f[i].left -= share * sim_time_to_s(next - t);
            if (f[i].left <= 1e-3) { /* within a thousandth of a byte: done */
                f[i].left = 0;
                if (fin)
                    fin[i] = next;
                any_done = 1;
            }
        }
        t = next;
        if (t >= to || (stop_first && any_done))
            return t;
    }
}

int64_t link_start(link *l, sim_time now, double bytes, double latency_s) {
    flow *nf;
    link_advance(l, now);
    if (l->n == l->cap) {
        int ncap = l->cap ? 2 * l->cap : 8;
        nf = sim_realloc(l->f, (size_t)ncap * sizeof *nf);
        if (nf == NULL)
            return -1;
        l->f = nf;
        l->cap = ncap;
    }
    nf = &l->f[l->n++];
    nf->h = l->next_h++;
    nf->t0 = now;
    nf->go = now + sim_time_from_s(latency_s);
    nf->left = bytes > 0 ? bytes : 1;
    return nf->h;
}

void link_advance(link *l, sim_time now) {
    int i, j;
    if (now <= l->now)
        return;
    (void)run(l->bw, l->f, l->n, l->now, now, NULL, 0, &l->busy_s);
    l->now = now;
    for (i = j = 0; i < l->n; i++) /* drop the finished, keep handle order */
        if (l->f[i].left > 0)
            l->f[j++] = l->f[i];
    l->n = j;
}

static int find(const link *l, int64_t h) {
    int lo = 0, hi = l->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (l->f[mid].h == h)
            return mid;
        if (l->f[mid].h < h)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

int link_done(const link *l, int64_t h) {
    return h >= 0 && h < l->next_h && find(l, h) < 0;
}

int link_active(const link *l) {
    return l->n;
}

/* Projects the unfinished transfers forward with no new starts; fills fin. */
static int project(const link *l, flow **copy, sim_time **fin) {
    int i;
    *copy = SIM_NEW_ARRAY(flow, (size_t)(l->n ? l->n : 1));
    *fin = SIM_NEW_ARRAY(sim_time, (size_t)(l->n ? l->n : 1));
    if (*copy == NULL || *fin == NULL) {
        sim_free(*copy);
        sim_free(*fin);
        return SIM_ENOMEM;
    }
    for (i = 0; i < l->n; i++) {
        (*copy)[i] = l->f[i];
        (*fin)[i] = SIM_TIME_MAX;
    }
    (void)run(l->bw, *copy, l->n, l->now, SIM_TIME_MAX - 1, *fin, 0, NULL);
    return SIM_OK;
}

sim_time link_finish(const link *l, int64_t h) {
    flow *c;
    sim_time *fin, t;
    int i = find(l, h);
    if (i < 0)
        return l->now;
    if (project(l, &c, &fin) != SIM_OK)
        return SIM_TIME_MAX;
    t = fin[i];
    sim_free(c);
    sim_free(fin);
    return t;
}

sim_time link_next_finish(const link *l) {
    flow *c;
    sim_time *fin, t = SIM_TIME_MAX;
    int i;
    if (l->n == 0 || project(l, &c, &fin) != SIM_OK)
        return SIM_TIME_MAX;
    for (i = 0; i < l->n; i++)
        if (fin[i] < t)
            t = fin[i];
    sim_free(c);
    sim_free(fin);
    return t;
}

double link_busy_s(const link *l) {
    return l->busy_s;
}
