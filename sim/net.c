/* net.c: one-way links shared max-min fairly by transfers over paths (see
 * net.h).
 *
 * State: the links (bandwidth, busy time, bytes carried) and the unfinished
 * transfers in start order (handles increase, so a handle missing from the
 * array is done), each with the time its bytes begin to move, the bytes
 * left and its current rate. Rates are valid from the settled time until
 * the next event: a latency ending or a transfer finishing at the current
 * rates. Advancing steps from event to event and recomputes the rates at
 * each one.
 *
 * Max-min fairness by progressive filling (Bertsekas and Gallager, Data
 * Networks, 2nd ed., section 6.5.2): every moving transfer is unfrozen;
 * repeatedly find the link whose remaining capacity divided by its
 * unfrozen transfers is smallest (the bottleneck), give that fair share to
 * each unfrozen transfer crossing it, freeze them, and take their rate off
 * every link on their paths. Each round freezes at least one link, so the
 * rounds are at most the links touched, and in practice the distinct
 * bottleneck levels.
 *
 * Sizes: tens of links and transfers (one node's NVLink ports and NICs, a
 * collective's steps). Non-goals: routing (the caller gives the path),
 * packet-level effects, congestion control, priorities. */
#include "config.h"
#include "net.h"

#include <math.h>
#include <string.h>

#include "err.h"
#include "mem.h"

/* Bytes under which a transfer counts as finished (rounding of rate x time). */
#define NET_EPS_BYTES 1e-3

typedef struct xfer {
    int64_t h;             /* handle */
    sim_time go;           /* bytes begin to move */
    double left;           /* bytes left (0: finished) */
    double rate;           /* bytes/s since the last change */
    int n_hops;            /* links on the path, 1..NET_PATH_MAX */
    int hop[NET_PATH_MAX]; /* link ids */
} xfer;

typedef struct nlink {
    double bw;       /* bytes/s */
    double busy_s;   /* seconds with a moving transfer */
    double bytes;    /* bytes carried */
    double cap_left; /* progressive filling: capacity not yet given out */
    int n_open;      /* progressive filling: unfrozen transfers crossing it */
    int n_moving;    /* moving transfers crossing it (rate > 0) */
} nlink;

struct net {
    nlink *l;
    int n_links, cap_links;
    xfer *x; /* unfinished, by handle */
    int n, cap;
    xfer *sx;       /* scratch copy for projections (cap entries) */
    char *frozen;   /* scratch flags for progressive filling (cap entries) */
    int *touched;   /* scratch: links crossed by moving transfers (cap_links) */
    sim_time now;   /* settled up to */
    int64_t next_h; /* next handle */
};

net *net_create(void) {
    return SIM_NEW(net);
}

void net_destroy(net *n) {
    if (n == NULL)
        return;
    sim_free(n->l);
    sim_free(n->x);
    sim_free(n->sx);
    sim_free(n->frozen);
    sim_free(n->touched);
    sim_free(n);
}

int net_link_add(net *n, double bw, int *id) {
    if (!(bw > 0) || !isfinite(bw))
        return SIM_EINVAL;
    if (n->n_links == n->cap_links) {
        int ncap = n->cap_links ? 2 * n->cap_links : 8;
        nlink *nl = sim_realloc(n->l, (size_t)ncap * sizeof *nl);
        int *nt;
        if (nl == NULL)
            return SIM_ENOMEM;
        n->l = nl;
        nt = sim_realloc(n->touched, (size_t)ncap * sizeof *nt);
        if (nt == NULL)
            return SIM_ENOMEM;
        n->touched = nt;
        n->cap_links = ncap;
    }
    memset(&n->l[n->n_links], 0, sizeof n->l[0]);
    n->l[n->n_links].bw = bw;
    *id = n->n_links++;
    return SIM_OK;
}

int net_n_links(const net *n) {
    return n->n_links;
}

/* ---- rates ---- */

/* Gives every transfer of x[0, nx) moving at t its max-min fair rate (the
 * others get 0) and counts the moving transfers of every link. */
static void fill_rates(net *n, xfer *x, int nx, sim_time t) {
    int i, j, n_touched = 0, open = 0;
    for (i = 0; i < nx; i++)
        for (j = 0; j < x[i].n_hops; j++) {
            nlink *l = &n->l[x[i].hop[j]];
            l->cap_left = l->bw;
            l->n_open = 0;
            l->n_moving = 0;
        }
    for (i = 0; i < nx; i++) {
        x[i].rate = 0;
        n->frozen[i] = 1;
        if (x[i].left <= 0 || x[i].go > t)
            continue;
        n->frozen[i] = 0;
        open++;
        for (j = 0; j < x[i].n_hops; j++) {
            nlink *l = &n->l[x[i].hop[j]];
            if (l->n_open++ == 0)
                n->touched[n_touched++] = x[i].hop[j];
            l->n_moving++;
        }
    }
    while (open > 0) {
        int k, best = -1;
        double share = 0;
        for (k = 0; k < n_touched; k++) {
            const nlink *l = &n->l[n->touched[k]];
            double s;
            if (l->n_open == 0)
                continue;
            s = l->cap_left / l->n_open;
            if (best < 0 || s < share) {
                best = n->touched[k];
                share = s;
            }
        }
        SIM_ASSERT(best >= 0);
        if (share < 0)
            share = 0;
        for (i = 0; i < nx; i++) {
            int on = 0;
            if (n->frozen[i])
                continue;
            for (j = 0; j < x[i].n_hops; j++)
                on |= x[i].hop[j] == best;
            if (!on)
                continue;
            x[i].rate = share;
            n->frozen[i] = 1;
            open--;
            for (j = 0; j < x[i].n_hops; j++) {
                nlink *l = &n->l[x[i].hop[j]];
                l->cap_left -= share;
                l->n_open--;
            }
        }
    }
}

/* Steps x[0, nx) from t towards `to` with no new starts, event by event.
 * With stats, the links' busy time and bytes accumulate. Stops early at
 * the first finish when stop_first; *first gets that time (SIM_TIME_MAX
 * when none finished). Returns the time reached. The rates in x are
 * valid at the returned time. */
static sim_time run(net *n, xfer *x, int nx, sim_time t, sim_time to, int stats, int stop_first,
                    sim_time *first) {
    int i, j;
    if (first)
        *first = SIM_TIME_MAX;
    fill_rates(n, x, nx, t);
    while (t < to) {
        sim_time next = to;
        double dt_s;
        int inflight = 0, changed = 0;
        for (i = 0; i < nx; i++) {
            if (x[i].left <= 0)
                continue;
            inflight = 1;
            if (x[i].go > t) {
                if (x[i].go < next)
                    next = x[i].go; /* a latency ends */
            } else if (x[i].rate > 0) {
                double ns = ceil(x[i].left / x[i].rate * 1e9);
                if (ns < (double)(next - t))
                    next = t + (sim_time)ns;
            }
        }
        if (!inflight)
            return to;
        if (next <= t)
            next = t + 1;
        dt_s = sim_time_to_s(next - t);
        if (stats)
            for (i = 0; i < nx; i++)
                for (j = 0; j < x[i].n_hops; j++) {
                    nlink *l = &n->l[x[i].hop[j]];
                    if (l->n_moving > 0) { /* count each link once */
                        l->busy_s += dt_s;
                        l->n_moving = 0;
                    }
                }
        for (i = 0; i < nx; i++) {
            double moved;
            if (x[i].left <= 0)
                continue;
            if (x[i].go > t) {
                changed |= x[i].go <= next;
                continue;
            }
            moved = x[i].rate * dt_s;
            if (moved > x[i].left)
                moved = x[i].left;
            if (stats)
                for (j = 0; j < x[i].n_hops; j++)
                    n->l[x[i].hop[j]].bytes += moved;
            x[i].left -= moved;
            if (x[i].left <= NET_EPS_BYTES) {
                x[i].left = 0;
                changed = 1;
                if (first && *first == SIM_TIME_MAX)
                    *first = next;
            }
        }
        t = next;
        /* rates hold until the next change; n_moving was spent on busy time */
        if (changed || stats)
            fill_rates(n, x, nx, t);
        if (stop_first && first && *first != SIM_TIME_MAX)
            return t;
    }
    return t;
}

/* ---- transfers ---- */

int64_t net_start(net *n, sim_time now, const int *path, int n_hops, double bytes,
                  double latency_s) {
    xfer *x;
    int j;
    if (n_hops < 1 || n_hops > NET_PATH_MAX || !(bytes > 0) || !isfinite(bytes) ||
        !(latency_s >= 0))
        return SIM_EINVAL;
    for (j = 0; j < n_hops; j++)
        if (path[j] < 0 || path[j] >= n->n_links)
            return SIM_EINVAL;
    net_advance(n, now);
    if (n->n == n->cap) {
        int ncap = n->cap ? 2 * n->cap : 8;
        xfer *nx = sim_realloc(n->x, (size_t)ncap * sizeof *nx);
        if (nx == NULL)
            return SIM_ENOMEM;
        n->x = nx;
        nx = sim_realloc(n->sx, (size_t)ncap * sizeof *nx);
        if (nx == NULL)
            return SIM_ENOMEM;
        n->sx = nx;
        {
            char *nf = sim_realloc(n->frozen, (size_t)ncap);
            if (nf == NULL)
                return SIM_ENOMEM;
            n->frozen = nf;
        }
        n->cap = ncap;
    }
    x = &n->x[n->n++];
    memset(x, 0, sizeof *x);
    x->h = n->next_h++;
    x->go = now + sim_time_from_s(latency_s);
    x->left = bytes;
    x->n_hops = n_hops;
    for (j = 0; j < n_hops; j++)
        x->hop[j] = path[j];
    if (n->now < now)
        n->now = now;
    fill_rates(n, n->x, n->n, n->now);
    return x->h;
}

void net_advance(net *n, sim_time now) {
    int i, k;
    if (now <= n->now)
        return;
    (void)run(n, n->x, n->n, n->now, now, 1, 0, NULL);
    n->now = now;
    for (i = k = 0; i < n->n; i++) /* drop the finished, keep handle order */
        if (n->x[i].left > 0)
            n->x[k++] = n->x[i];
    n->n = k;
    fill_rates(n, n->x, n->n, n->now);
}

static int find(const net *n, int64_t h) {
    int lo = 0, hi = n->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (n->x[mid].h == h)
            return mid;
        if (n->x[mid].h < h)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

int net_done(const net *n, int64_t h) {
    return h >= 0 && h < n->next_h && find(n, h) < 0;
}

int net_active(const net *n) {
    return n->n;
}

double net_rate(const net *n, int64_t h) {
    int i = find(n, h);
    return i < 0 ? 0 : n->x[i].rate;
}

/* Projects the unfinished transfers with no new starts on the scratch copy
 * until transfer index `want` finishes (want < 0: the first to finish). */
static sim_time project(net *n, int want) {
    sim_time t = n->now, first;
    if (n->n == 0)
        return SIM_TIME_MAX;
    memcpy(n->sx, n->x, (size_t)n->n * sizeof *n->sx);
    for (;;) {
        t = run(n, n->sx, n->n, t, SIM_TIME_MAX - 1, 0, 1, &first);
        if (first == SIM_TIME_MAX)
            return SIM_TIME_MAX; /* nothing moves: cannot happen with bw > 0 */
        if (want < 0 || n->sx[want].left <= 0)
            break;
    }
    return want < 0 ? first : t;
}

sim_time net_next_finish(net *n) {
    return project(n, -1);
}

sim_time net_finish(net *n, int64_t h) {
    int i = find(n, h);
    if (i < 0)
        return n->now;
    return project(n, i);
}

int64_t net_started(const net *n) {
    return n->next_h;
}

double net_link_busy_s(const net *n, int id) {
    SIM_ASSERT(id >= 0 && id < n->n_links);
    return n->l[id].busy_s;
}

double net_link_bytes(const net *n, int id) {
    SIM_ASSERT(id >= 0 && id < n->n_links);
    return n->l[id].bytes;
}
