/* synth.c: synthetic request sources from a spec string (--synthetic SPEC).
 *
 * Grammar (full reference with examples in docs/traces.md):
 *     SPEC   := KIND ( ',' KEY '=' VALUE )*
 *     VALUE  := NUMBER | NAME '(' [ PKEY '=' PVALUE ( ';' PKEY '=' PVALUE )* ] ')'
 * The outer list splits only at commas outside parentheses, so a function's
 * parameters are separated by ';' (a ',' inside the parentheses works too).
 * Kinds: poisson, gamma (open-loop requests), sessions (multi-turn, closed
 * loop through trace_on_end) and closed (a fixed number of requests in
 * flight, like a serving benchmark's max-concurrency mode).
 *
 * Arrivals, exact inversion (time rescaling): an open-loop process is a
 * renewal process in "operational time" s with unit mean gaps, Exp(1) for
 * Poisson or Gamma(shape 1/cv^2, scale cv^2) for gamma, mapped to real time
 * by t = L^-1(s), where L(t) is the integral of the rate function from 0 to
 * t. For a Poisson process this gives exactly a non-homogeneous Poisson
 * process with rate r(t) (Cinlar; Lewis and Shedler's thinning would give
 * the same law with more draws); for gamma it gives a renewal process whose
 * local rate follows r(t). L^-1 is closed form for a constant, surge and a
 * piecewise-linear file rate, and safeguarded Newton for the diurnal
 * sinusoid. The first arrival is at t = 0 (s = 0), so a surge or a diurnal
 * trough stays where the spec puts it.
 *
 * Randomness comes only from three gsl_rng streams seeded from opts->seed:
 * SIM_RNG_ARRIVALS (gaps; the closed loop's release jitter), SIM_RNG_LENGTHS (isl then osl, per
 * request or per turn) and SIM_RNG_SESSIONS (turn counts, think times). A session's turns are all
 * drawn when it starts, and a closed-loop request's lengths are the i-th draws for the i-th
 * request, so the sequence never depends on the order in which the engine ends requests: same spec
 * + seed, same requests.
 *
 * Memory: constant for poisson, gamma and closed; live sessions only for
 * sessions; a rate file is loaded whole (it is a small rate profile).
 * Non-goals: rates that depend on the simulation's state. */
#include "config.h"
#include "trace_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "mem.h"
#include "num.h"
#include "rng.h"

#define SRC        "--synthetic"
#define MAX_ITEMS  16    /* keys in one spec (no kind uses more than 8) */
#define MAX_PARAMS 8     /* parameters in one function value */
#define MAX_T_S    9.2e9 /* seconds that still fit in int64 ns */
#define TWO_PI     6.283185307179586
#define RATE_WHAT                                                                                  \
    "a number > 0, diurnal(base=R;peak=P[;period=S]), surge(base=R;peak=P;start=S;len=S) or "      \
    "file(PATH)"
#define LEN_WHAT "a positive integer or lognormal(mean=M;sigma=S[;max=N])"

enum synth_kind { K_POISSON, K_GAMMA, K_SESSIONS, K_CLOSED };
enum rate_kind { RATE_CONST, RATE_DIURNAL, RATE_SURGE, RATE_FILE };
enum dist_kind { D_FIXED, D_LOGNORMAL, D_EXP, D_GEOMETRIC };

/* Rate function r(t) >= 0 in requests (or sessions) per second. */
typedef struct synth_rate {
    enum rate_kind kind;
    double base;   /* const: the rate; diurnal: the minimum (t = 0); surge: outside the surge */
    double peak;   /* diurnal: the maximum (t = period/2); surge: inside the surge */
    double period; /* diurnal period, s */
    double start;  /* surge start, s */
    double len;    /* surge length, s */
    int n;         /* file: number of knots (>= 1, t[0] = 0) */
    double *t;     /* file: knot times, s, strictly increasing; owned */
    double *r;     /* file: rate at each knot; owned */
    double *cum;   /* file: L(t[i]); owned */
} synth_rate;

/* A length, turn count or think-time distribution. */
typedef struct synth_dist {
    enum dist_kind kind;
    double fixed; /* D_FIXED: the value */
    double mu;    /* D_LOGNORMAL: mean of the underlying normal, ln(mean) - sigma^2/2 */
    double sigma; /* D_LOGNORMAL: sd of the underlying normal, >= 0 */
    double mean;  /* D_EXP: mean; D_GEOMETRIC: mean turns (p = 1/mean) */
    double max;   /* D_LOGNORMAL lengths: clamp (INT32_MAX when not given) */
} synth_dist;

typedef struct synth {
    enum synth_kind kind;
    synth_rate rate;         /* poisson, gamma, sessions */
    double cv;               /* gamma: coefficient of variation of the gaps, > 0 */
    int64_t n_max;           /* requests= (or sessions=); 0 = unbounded */
    double duration_s;       /* duration=; INFINITY when not given */
    synth_dist isl, osl;     /* new prompt and output lengths, tokens */
    synth_dist turns;        /* sessions: turns per session */
    synth_dist think;        /* sessions: idle gap before turns 2.., s */
    int32_t system;          /* sessions: shared system prompt, tokens */
    int64_t concurrency;     /* closed: requests in flight */
    double ramp_s;           /* closed: the first wave's starts spread over this, s (0: all at 0) */
    double jitter_s;         /* closed: a release waits U[0, jitter_s) after the end, s */
    gsl_rng *r_arr;          /* SIM_RNG_ARRIVALS */
    gsl_rng *r_len;          /* SIM_RNG_LENGTHS */
    gsl_rng *r_sess;         /* SIM_RNG_SESSIONS */
    double s;                /* operational time of the last arrival */
    int64_t n_made;          /* open-loop arrivals so far (requests or sessions) */
    int done;                /* 1 once the arrival process ended */
    int64_t n_sent;          /* closed: requests sent, first wave and releases */
    int64_t n_wave;          /* closed: first-wave clients started (<= concurrency) */
    int64_t in_flight;       /* closed: sent and not yet ended */
    trace__sess_table table; /* sessions: live sessions */
} synth;

/* ---- spec tokenizer ---- */

typedef struct item {
    char *key; /* trimmed, in the spec copy */
    char *val; /* trimmed; NULL for the kind */
    int used;  /* 1 once a kind consumed it */
} item;

static int spec_err(sim_err *err, const char *key, const char *what, const char *got) {
    sim_err_set(err, SRC, 0, 0, "%s: expected %s, got '%.80s'", key, what, got);
    return SIM_EINVAL;
}

/* A required key or parameter that is absent. */
static int spec_missing(sim_err *err, const char *key, const char *what) {
    sim_err_set(err, SRC, 0, 0, "%s: expected %s, got nothing", key, what);
    return SIM_EINVAL;
}

/* Splits s in place at sep characters outside parentheses. Returns the
 * number of parts, or -1 when parentheses do not balance or max is exceeded. */
static int split_top(char *s, const char *sep, char **parts, int max) {
    int n = 0, depth = 0;
    char *p = s;
    /* a first pass that changes nothing: on failure s is left whole, for
     * the message */
    for (; *p; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')' && --depth < 0)
            return -1;
        else if (depth == 0 && strchr(sep, *p) && ++n == max)
            return -1;
    }
    if (depth != 0)
        return -1;
    n = 0;
    p = s;
    parts[n++] = s;
    for (; *p; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')' && --depth < 0)
            return -1;
        else if (depth == 0 && strchr(sep, *p)) {
            if (n == max)
                return -1;
            *p = '\0';
            parts[n++] = p + 1;
        }
    }
    return depth == 0 ? n : -1;
}

/* A value NAME(k=v;k=v): NAME and the parameters, split in place. */
typedef struct call {
    char *name;           /* before '(' */
    char *arg;            /* everything inside the parentheses (file path) */
    int n;                /* parameters */
    char *k[MAX_PARAMS];  /* parameter names */
    char *v[MAX_PARAMS];  /* parameter values */
    int used[MAX_PARAMS]; /* 1 once read */
} call;

/* Returns 0 when val has the form NAME(...), -1 otherwise. Parameters are
 * split only when want_params (file() takes a path). */
static int parse_call(char *val, int want_params, call *c, const char *key, sim_err *err, int *rc) {
    char *open = strchr(val, '('), *close;
    char *parts[MAX_PARAMS + 1];
    int i, j, n;

    *rc = SIM_OK;
    memset(c, 0, sizeof *c);
    close = val + strlen(val);
    if (open == NULL || close == val || close[-1] != ')')
        return -1;
    close[-1] = '\0';
    *open = '\0';
    c->name = trace__trim(val);
    c->arg = trace__trim(open + 1);
    if (!want_params || *c->arg == '\0')
        return 0;
    n = split_top(c->arg, ";,", parts, MAX_PARAMS);
    if (n < 0) {
        *rc = spec_err(err, key, "at most 8 parameters separated by ';'", c->arg);
        return 0;
    }
    for (i = 0; i < n; i++) {
        char *eq = strchr(parts[i], '=');
        if (eq == NULL) {
            *rc = spec_err(err, key, "parameters of the form name=value", trace__trim(parts[i]));
            return 0;
        }
        *eq = '\0';
        c->k[i] = trace__trim(parts[i]);
        c->v[i] = trace__trim(eq + 1);
        for (j = 0; j < i; j++)
            if (strcmp(c->k[j], c->k[i]) == 0) {
                *rc = spec_err(err, key, "each parameter once", c->k[i]);
                return 0;
            }
    }
    c->n = n;
    return 0;
}

/* Reads parameter name of c as a number; *out keeps its default when absent
 * and !required. Checks the range [lo, hi]; what_or_null overrides the
 * range's description in the message. */
static int call_num(call *c, const char *key, const char *name, int required, double lo, double hi,
                    const char *what_or_null, double *out, sim_err *err) {
    char path[64], what[96];
    int i;
    snprintf(path, sizeof path, "%s.%s", key, name);
    for (i = 0; i < c->n; i++) {
        if (strcmp(c->k[i], name) != 0)
            continue;
        c->used[i] = 1;
        if (trace__spec_num(c->v[i], out) != 0 || *out < lo || *out > hi) {
            if (what_or_null)
                snprintf(what, sizeof what, "%s", what_or_null);
            else if (hi >= 1e300)
                snprintf(what, sizeof what, "a number >= %g", lo);
            else
                snprintf(what, sizeof what, "a number in [%g, %g]", lo, hi);
            return spec_err(err, path, what, c->v[i]);
        }
        return SIM_OK;
    }
    if (required)
        return spec_missing(err, path, "a value (the parameter is required)");
    return SIM_OK;
}

/* Fails on a parameter that was not read. */
static int call_done(const call *c, const char *key, const char *accepted, sim_err *err) {
    int i;
    char what[128];
    for (i = 0; i < c->n; i++) {
        if (!c->used[i]) {
            snprintf(what, sizeof what, "a parameter of %s(%s)", c->name, accepted);
            return spec_err(err, key, what, c->k[i]);
        }
    }
    return SIM_OK;
}

/* ---- rate functions ---- */

/* Loads a rate file: lines "t_s,rate" (an optional header line whose first
 * field is not a number), t_s >= 0 strictly increasing, rate >= 0. */
static int rate_file_load(synth_rate *rt, const char *path, sim_err *err) {
    trace__lines *l = NULL;
    trace__fields fs = {0};
    int cap = 0, rc, first = 1, any = 0, i;
    double v;

    if ((rc = trace__lines_open(path, &l, err)) != SIM_OK)
        return rc;
    for (;;) {
        int64_t t_ns;
        rc = trace__lines_next(l, err);
        if (rc < 0)
            goto out;
        if (rc == 0)
            break;
        if ((rc = trace__csv_split(l, 2, &fs, err)) != SIM_OK) {
            if (rc == SIM_EPARSE)
                sim_err_set(err, l->path, l->line_no, 0,
                            "row: expected 2 fields 't_s,rate', got %d in '%.80s'",
                            trace__csv_count(l->buf), l->buf);
            goto out;
        }
        if (first && trace__spec_num(fs.f[0], &v) != 0) {
            first = 0; /* a header */
            continue;
        }
        first = 0;
        if ((rc = trace__parse_seconds(l, 1, "t_s", fs.f[0], &t_ns, err)) != SIM_OK)
            goto out;
        if (rt->n > 0 && sim_time_to_s(t_ns) <= rt->t[rt->n - 1]) {
            sim_err_set(err, l->path, l->line_no, 1,
                        "t_s: expected a time > the previous row's, got '%s'", fs.f[0]);
            rc = SIM_EPARSE;
            goto out;
        }
        if (trace__spec_num(fs.f[1], &v) != 0 || v < 0) {
            sim_err_set(err, l->path, l->line_no, 2,
                        "rate: expected a finite number >= 0 (per second), got '%s'", fs.f[1]);
            rc = SIM_EPARSE;
            goto out;
        }
        /* Room for this knot and a leading t = 0 knot. */
        if (rt->n + 2 > cap) {
            int nc = cap ? 2 * cap : 16;
            double *t = sim_realloc(rt->t, (size_t)nc * sizeof *t);
            double *r = t ? sim_realloc(rt->r, (size_t)nc * sizeof *r) : NULL;
            if (t)
                rt->t = t;
            if (r)
                rt->r = r;
            if (t == NULL || r == NULL) {
                sim_err_set(err, l->path, l->line_no, 0, "rate: out of memory");
                rc = SIM_ENOMEM;
                goto out;
            }
            cap = nc;
        }
        if (rt->n == 0 && t_ns > 0) {
            /* Before the first knot the rate is the first knot's. */
            rt->t[0] = 0;
            rt->r[0] = v;
            rt->n = 1;
        }
        rt->t[rt->n] = sim_time_to_s(t_ns);
        rt->r[rt->n] = v;
        rt->n++;
        any |= v > 0;
    }
    if (!any) {
        sim_err_set(err, path, l->line_no, 0,
                    "rate: expected at least one row with a rate > 0, got %s",
                    rt->n ? "none" : "no rows");
        rc = SIM_EPARSE;
        goto out;
    }
    rt->cum = SIM_NEW_ARRAY(double, (size_t)rt->n);
    if (rt->cum == NULL) {
        sim_err_set(err, path, 0, 0, "rate: out of memory");
        rc = SIM_ENOMEM;
        goto out;
    }
    for (i = 1; i < rt->n; i++)
        rt->cum[i] = rt->cum[i - 1] + 0.5 * (rt->r[i - 1] + rt->r[i]) * (rt->t[i] - rt->t[i - 1]);
    rc = SIM_OK;

out:
    trace__fields_fini(&fs);
    trace__lines_close(l);
    return rc;
}

/* L(t) of the diurnal sinusoid r(t) = base + (peak - base)(1 - cos(2 pi t / P)) / 2. */
static double diurnal_cum(const synth_rate *rt, double t) {
    double a = 0.5 * (rt->base + rt->peak), b = 0.5 * (rt->peak - rt->base);
    double w = TWO_PI / rt->period;
    return a * t - b / w * sin(w * t);
}

/* Smallest t >= 0 with L(t) = s; -1 when L never reaches s (a rate file
 * whose last rate is 0). A t too large for a double is +inf: a rate so low
 * that the arrival is beyond any horizon, not a rate that ended. */
static double rate_inv(const synth_rate *rt, double s) {
    if (s <= 0)
        return 0;
    switch (rt->kind) {
        case RATE_CONST:
            return s / rt->base;
        case RATE_SURGE: {
            double s1 = rt->base * rt->start, s2 = s1 + rt->peak * rt->len;
            if (s < s1)
                return s / rt->base;
            if (s < s2)
                return rt->start + (s - s1) / rt->peak;
            return rt->start + rt->len + (s - s2) / rt->base;
        }
        case RATE_DIURNAL: {
            /* L(t) = a t - (b/w) sin(w t) is increasing and within b/w of a t:
             * bracket, then Newton steps that fall back to bisection. */
            double a = 0.5 * (rt->base + rt->peak), b = 0.5 * (rt->peak - rt->base);
            double w = TWO_PI / rt->period;
            double lo = fmax(0, (s - b / w) / a), hi = (s + b / w) / a, t = s / a;
            int i;
            for (i = 0; i < 200 && hi - lo > 1e-12 * fmax(1, hi); i++) {
                double f = diurnal_cum(rt, t) - s, d = a - b * cos(w * t);
                if (f == 0)
                    return t;
                if (f < 0)
                    lo = t;
                else
                    hi = t;
                t = d > 0 ? t - f / d : 0.5 * (lo + hi);
                if (!(t > lo && t < hi))
                    t = 0.5 * (lo + hi);
            }
            return t;
        }
        case RATE_FILE: {
            int lo = 0, hi = rt->n - 1;
            double d, r0, k, dt;
            /* Largest knot i with cum[i] <= s. */
            while (lo < hi) {
                int mid = (lo + hi + 1) / 2;
                if (rt->cum[mid] <= s)
                    lo = mid;
                else
                    hi = mid - 1;
            }
            d = s - rt->cum[lo];
            r0 = rt->r[lo];
            if (lo == rt->n - 1)
                return r0 > 0 ? rt->t[lo] + d / r0 : -1.0;
            dt = rt->t[lo + 1] - rt->t[lo];
            k = (rt->r[lo + 1] - r0) / dt;
            /* Solve r0 u + k u^2 / 2 = d for u in [0, dt] (stable form). */
            if (k == 0)
                return rt->t[lo] + fmin(d / r0, dt);
            return rt->t[lo] + fmin(2 * d / (r0 + sqrt(fmax(0, r0 * r0 + 2 * k * d))), dt);
        }
    }
    return -1.0;
}

static int parse_rate(synth_rate *rt, char *val, sim_err *err) {
    call c;
    int rc;

    if (trace__spec_num(val, &rt->base) == 0) {
        if (!(rt->base > 0))
            return spec_err(err, "rate", RATE_WHAT, val);
        rt->kind = RATE_CONST;
        return SIM_OK;
    }
    /* file(PATH) takes a path, the other functions name=value parameters. */
    if (parse_call(val, strncmp(val, "file(", 5) != 0, &c, "rate", err, &rc) != 0)
        return spec_err(err, "rate", RATE_WHAT, val);
    if (strcmp(c.name, "diurnal") != 0 && strcmp(c.name, "surge") != 0 &&
        strcmp(c.name, "file") != 0)
        return spec_err(err, "rate", RATE_WHAT, c.name);
    if (rc != SIM_OK)
        return rc;
    if (strcmp(c.name, "diurnal") == 0) {
        rt->kind = RATE_DIURNAL;
        rt->period = 86400;
        if ((rc = call_num(&c, "rate", "base", 1, 0, HUGE_VAL, NULL, &rt->base, err)) ||
            (rc = call_num(&c, "rate", "peak", 1, rt->base, HUGE_VAL, NULL, &rt->peak, err)) ||
            (rc = call_num(&c, "rate", "period", 0, 1e-9, HUGE_VAL, "a number of seconds > 0",
                           &rt->period, err)) ||
            (rc = call_done(&c, "rate", "base;peak;period", err)))
            return rc;
        if (!(rt->peak > 0)) /* base = peak = 0: no arrivals at all */
            return spec_err(err, "rate.peak", "a number > 0 and >= base", "0");
        return SIM_OK;
    }
    if (strcmp(c.name, "surge") == 0) {
        rt->kind = RATE_SURGE;
        if ((rc = call_num(&c, "rate", "base", 1, 1e-300, HUGE_VAL, "a number > 0", &rt->base,
                           err)) ||
            (rc = call_num(&c, "rate", "peak", 1, 0, HUGE_VAL, NULL, &rt->peak, err)) ||
            (rc = call_num(&c, "rate", "start", 1, 0, HUGE_VAL, NULL, &rt->start, err)) ||
            (rc = call_num(&c, "rate", "len", 1, 1e-300, HUGE_VAL, "a number of seconds > 0",
                           &rt->len, err)) ||
            (rc = call_done(&c, "rate", "base;peak;start;len", err)))
            return rc;
        return SIM_OK;
    }
    if (strcmp(c.name, "file") == 0) {
        rt->kind = RATE_FILE;
        return rate_file_load(rt, c.arg, err);
    }
    return spec_err(err, "rate", RATE_WHAT, c.name);
}

/* ---- distributions ---- */

/* A length: N >= 1 or lognormal(mean=M;sigma=S[;max=N]), M the mean in tokens. */
static int parse_len(synth_dist *d, const char *key, char *val, sim_err *err) {
    call c;
    int64_t n;
    int rc;

    if (trace__spec_int(val, 1, INT32_MAX, &n) == 0) {
        d->kind = D_FIXED;
        d->fixed = (double)n;
        return SIM_OK;
    }
    if (parse_call(val, 1, &c, key, err, &rc) != 0 || strcmp(c.name, "lognormal") != 0)
        return spec_err(err, key, LEN_WHAT, c.name ? c.name : val);
    if (rc != SIM_OK)
        return rc;
    d->kind = D_LOGNORMAL;
    d->max = INT32_MAX;
    if ((rc = call_num(&c, key, "mean", 1, 1, INT32_MAX, NULL, &d->mean, err)) ||
        (rc = call_num(&c, key, "sigma", 1, 0, 10, NULL, &d->sigma, err)) ||
        (rc = call_num(&c, key, "max", 0, 1, INT32_MAX, "an integer in [1, 2147483647]", &d->max,
                       err)) ||
        (rc = call_done(&c, key, "mean;sigma;max", err)))
        return rc;
    if (d->max != floor(d->max)) { /* max=N: a length, in tokens */
        char path[64];
        int i;
        snprintf(path, sizeof path, "%s.max", key);
        for (i = 0; i < c.n && strcmp(c.k[i], "max") != 0; i++)
            ;
        return spec_err(err, path, "an integer in [1, 2147483647]", i < c.n ? c.v[i] : "?");
    }
    d->mu = log(d->mean) - 0.5 * d->sigma * d->sigma;
    return SIM_OK;
}

/* Think time in seconds: S >= 0, exp(mean=M) or lognormal(mean=M;sigma=S). */
static int parse_think(synth_dist *d, char *val, sim_err *err) {
    static const char *what = "seconds >= 0, exp(mean=S) or lognormal(mean=S;sigma=X)";
    call c;
    int rc;

    if (trace__spec_num(val, &d->fixed) == 0) {
        if (d->fixed < 0 || d->fixed > 1e9)
            return spec_err(err, "think", what, val);
        d->kind = D_FIXED;
        return SIM_OK;
    }
    if (parse_call(val, 1, &c, "think", err, &rc) != 0)
        return spec_err(err, "think", what, val);
    if (strcmp(c.name, "exp") != 0 && strcmp(c.name, "lognormal") != 0)
        return spec_err(err, "think", what, c.name);
    if (rc != SIM_OK)
        return rc;
    if (strcmp(c.name, "exp") == 0) {
        d->kind = D_EXP;
        if ((rc = call_num(&c, "think", "mean", 1, 0, 1e9, NULL, &d->mean, err)) ||
            (rc = call_done(&c, "think", "mean", err)))
            return rc;
        return SIM_OK;
    }
    if (strcmp(c.name, "lognormal") == 0) {
        d->kind = D_LOGNORMAL;
        if ((rc = call_num(&c, "think", "mean", 1, 1e-9, 1e9, "a number of seconds in (0, 1e9]",
                           &d->mean, err)) ||
            (rc = call_num(&c, "think", "sigma", 1, 0, 10, NULL, &d->sigma, err)) ||
            (rc = call_done(&c, "think", "mean;sigma", err)))
            return rc;
        d->mu = log(d->mean) - 0.5 * d->sigma * d->sigma;
        return SIM_OK;
    }
    return spec_err(err, "think", what, c.name);
}

/* Turns per session: T in [1, 1000000] or geometric(mean=M), M in [1, 1000000]. */
static int parse_turns(synth_dist *d, char *val, sim_err *err) {
    static const char *what =
        "an integer in [1, 1000000] or geometric(mean=M) with M in [1, 1000000]";
    call c;
    int64_t n;
    int rc;

    if (trace__spec_int(val, 1, 1000000, &n) == 0) {
        d->kind = D_FIXED;
        d->fixed = (double)n;
        return SIM_OK;
    }
    if (parse_call(val, 1, &c, "turns", err, &rc) != 0 || strcmp(c.name, "geometric") != 0)
        return spec_err(err, "turns", what, c.name ? c.name : val);
    if (rc != SIM_OK)
        return rc;
    d->kind = D_GEOMETRIC;
    if ((rc = call_num(&c, "turns", "mean", 1, 1, 1000000, NULL, &d->mean, err)) ||
        (rc = call_done(&c, "turns", "mean", err)))
        return rc;
    return SIM_OK;
}

/* A length in tokens, rounded to the nearest integer and clamped to [1, max]. */
static int32_t draw_len(const synth_dist *d, gsl_rng *r) {
    double x;
    if (d->kind == D_FIXED)
        return (int32_t)d->fixed;
    x = floor(gsl_ran_lognormal(r, d->mu, d->sigma) + 0.5);
    if (!(x >= 1))
        return 1;
    return x > d->max ? (int32_t)d->max : (int32_t)x;
}

static int64_t draw_think_ns(const synth_dist *d, gsl_rng *r) {
    double s = d->fixed;
    if (d->kind == D_EXP)
        s = d->mean > 0 ? gsl_ran_exponential(r, d->mean) : 0;
    else if (d->kind == D_LOGNORMAL)
        s = gsl_ran_lognormal(r, d->mu, d->sigma);
    return sim_time_from_s(fmin(s, MAX_T_S));
}

static int32_t draw_turns(const synth_dist *d, gsl_rng *r) {
    unsigned int k;
    if (d->kind == D_FIXED)
        return (int32_t)d->fixed;
    k = gsl_ran_geometric(r, 1.0 / d->mean);
    return k > 1000000 ? 1000000 : (int32_t)k;
}

/* ---- the generator ---- */

/* Time of the next open-loop arrival in seconds; -1 when the process
 * ended (count, duration, or a rate that drops to zero for good); -2 when
 * the arrival is finite but beyond what nanoseconds hold (the caller
 * reports it: the requests asked for do not fit the simulated horizon). */
static double next_arrival(synth *g) {
    double t;
    if (g->done || (g->n_max > 0 && g->n_made >= g->n_max))
        return -1;
    if (g->n_made > 0) {
        if (g->kind == K_GAMMA)
            g->s += gsl_ran_gamma(g->r_arr, 1.0 / (g->cv * g->cv), g->cv * g->cv);
        else
            g->s += gsl_ran_exponential(g->r_arr, 1.0);
    }
    t = rate_inv(&g->rate, g->s);
    if (t < 0 || !(t <= g->duration_s)) { /* the rate ended, or the duration */
        g->done = 1;
        return -1;
    }
    if (!(t <= MAX_T_S)) {
        g->done = 1;
        return -2;
    }
    g->n_made++;
    return t;
}

static void fill_single(sim_req *out, sim_time arrival, int32_t isl, int32_t osl) {
    memset(out, 0, sizeof *out);
    out->arrival_ns = arrival;
    out->prompt_tokens = isl;
    out->new_tokens = isl;
    out->output_tokens = osl;
    out->session_id = -1;
}

/* Draws a session's turns and starts it (turn 1 in *out). */
static int start_session(synth *g, double t, sim_req *out, sim_err *err) {
    int32_t n = draw_turns(&g->turns, g->r_sess), k;
    trace__turn *turns = SIM_NEW_ARRAY(trace__turn, (size_t)n);
    int64_t context = 0;

    if (turns == NULL) {
        sim_err_set(err, SRC, 0, 0, "sessions: out of memory");
        return SIM_ENOMEM;
    }
    for (k = 0; k < n; k++) {
        int64_t isl = draw_len(&g->isl, g->r_len);
        int32_t osl = draw_len(&g->osl, g->r_len);
        if (k == 0)
            isl += g->system;
        else
            turns[k].think_ns = draw_think_ns(&g->think, g->r_sess);
        /* A context past 2^31 tokens ends the session early (only reachable
         * with absurd specs; every prompt must fit sim_req's int32). */
        if (context + isl > INT32_MAX) {
            if (k == 0)
                isl = INT32_MAX;
            else
                break;
        }
        turns[k].new_tokens = (int32_t)isl;
        turns[k].output_tokens = osl;
        context += isl + osl;
    }
    if (trace__sess_start(&g->table, g->n_made - 1, turns, k, sim_time_from_s(t), out) != SIM_OK) {
        sim_err_set(err, SRC, 0, 0, "sessions: out of memory");
        return SIM_ENOMEM;
    }
    return SIM_OK;
}

static int synth_next(void *state, sim_req *out, sim_err *err) {
    synth *g = state;
    double t;
    int32_t isl, osl;
    int rc;

    if (g->kind == K_CLOSED) {
        /* the first wave, counted apart from the releases: with a ramp,
         * ends release requests before the wave's last client starts */
        if (g->n_sent >= g->n_max || g->n_wave >= g->concurrency)
            return 0;
        isl = draw_len(&g->isl, g->r_len);
        osl = draw_len(&g->osl, g->r_len);
        /* client i of the first wave starts at i x ramp / concurrency */
        fill_single(out, sim_time_from_s(g->ramp_s * (double)g->n_wave / (double)g->concurrency),
                    isl, osl);
        g->n_wave++;
        g->n_sent++;
        g->in_flight++;
        return 1;
    }
    t = next_arrival(g);
    if (t == -2) {
        sim_err_set(err, SRC, 0, 0,
                    "arrival %lld: expected a time within the simulated horizon (1e9 s after "
                    "the first arrival), got one beyond %.2g s (the rate is too low for the "
                    "requests asked for)",
                    (long long)g->n_made + 1, MAX_T_S);
        return SIM_EINVAL;
    }
    if (t < 0)
        return 0;
    if (g->kind == K_SESSIONS) {
        if ((rc = start_session(g, t, out, err)) != SIM_OK)
            return rc;
        return 1;
    }
    isl = draw_len(&g->isl, g->r_len);
    osl = draw_len(&g->osl, g->r_len);
    fill_single(out, sim_time_from_s(t), isl, osl);
    return 1;
}

static int synth_on_end(void *state, const sim_req *r, sim_time end_ns, int rejected,
                        sim_req *out) {
    synth *g = state;
    int32_t isl, osl;

    if (g->kind == K_SESSIONS)
        return trace__sess_on_end(&g->table, r, end_ns, rejected, out);
    if (g->kind != K_CLOSED || g->in_flight == 0)
        return 0;
    /* Completed or rejected, the slot is free: release the next request. */
    g->in_flight--;
    if (g->n_sent >= g->n_max)
        return 0;
    isl = draw_len(&g->isl, g->r_len);
    osl = draw_len(&g->osl, g->r_len);
    /* the release's delay is the k-th arrivals draw for the k-th release,
     * whatever order the ends come in; no draw without jitter */
    if (g->jitter_s > 0)
        end_ns += sim_time_from_s(g->jitter_s * gsl_rng_uniform(g->r_arr));
    fill_single(out, end_ns, isl, osl);
    g->n_sent++;
    g->in_flight++;
    return 1;
}

static void synth_destroy(void *state) {
    synth *g = state;
    if (g == NULL)
        return;
    sim_free(g->rate.t);
    sim_free(g->rate.r);
    sim_free(g->rate.cum);
    sim_rng_destroy(g->r_arr);
    sim_rng_destroy(g->r_len);
    sim_rng_destroy(g->r_sess);
    trace__sess_table_fini(&g->table);
    sim_free(g);
}

static const trace__src_ops synth_ops = {
    .next = synth_next,
    .on_end = synth_on_end,
    .destroy = synth_destroy,
};

/* closed: the first wave's times are simulated times already */
static const trace__src_ops synth_closed_ops = {
    .next = synth_next,
    .on_end = synth_on_end,
    .destroy = synth_destroy,
    .fixed_times = 1,
};

/* poisson and gamma: purely open loop (no trace_on_end). */
static const trace__src_ops synth_open_ops = {
    .next = synth_next,
    .destroy = synth_destroy,
};

/* ---- spec parsing ---- */

typedef struct kind_info {
    const char *name;
    enum synth_kind kind;
    const char *keys; /* accepted keys, ", "-separated, for messages */
} kind_info;

static const kind_info kinds[] = {
    {"poisson", K_POISSON, "rate, requests, duration, isl, osl"},
    {"gamma", K_GAMMA, "rate, cv, requests, duration, isl, osl"},
    {"sessions", K_SESSIONS, "rate, sessions, duration, turns, think, isl, osl, system"},
    {"closed", K_CLOSED, "concurrency, requests, isl, osl, ramp, jitter"},
};

/* The value of key, marking it used; NULL when absent. */
static char *get(item *it, int n, const char *key) {
    int i;
    for (i = 1; i < n; i++) {
        if (strcmp(it[i].key, key) == 0) {
            it[i].used = 1;
            return it[i].val;
        }
    }
    return NULL;
}

/* A key kind ki does not take. */
static int unknown_key(const kind_info *ki, const char *key, sim_err *err) {
    char what[128];
    snprintf(what, sizeof what, "a key of %s (%s)", ki->name, ki->keys);
    return spec_err(err, key, what, key);
}

static int need(char *v, const char *key, const char *what, sim_err *err) {
    if (v != NULL)
        return SIM_OK;
    return spec_missing(err, key, what);
}

static int parse_spec(synth *g, char *copy, sim_err *err) {
    item it[MAX_ITEMS];
    char *parts[MAX_ITEMS];
    const kind_info *ki = NULL;
    char *v, *kname;
    int n, i, j, rc;

    n = split_top(copy, ",", parts, MAX_ITEMS);
    if (n < 0)
        return spec_err(err, "spec",
                        "KIND,key=value,... with balanced parentheses and at most 15 keys", copy);
    kname = trace__trim(parts[0]);
    for (i = 0; i < (int)(sizeof kinds / sizeof kinds[0]); i++) {
        if (strcmp(kname, kinds[i].name) == 0)
            ki = &kinds[i];
    }
    if (ki == NULL)
        return spec_err(err, "kind", "one of poisson, gamma, sessions, closed", kname);
    g->kind = ki->kind;
    for (i = 1; i < n; i++) {
        char *eq = strchr(parts[i], '=');
        if (eq == NULL)
            return spec_err(err, "spec", "key=value", trace__trim(parts[i]));
        *eq = '\0';
        it[i].key = trace__trim(parts[i]);
        it[i].val = trace__trim(eq + 1);
        it[i].used = 0;
        if (it[i].key[0] == '\0') {
            char got[64];
            snprintf(got, sizeof got, "=%s", it[i].val);
            return spec_err(err, "spec", "key=value with a key before the '='", got);
        }
        for (j = 1; j < i; j++) {
            if (strcmp(it[j].key, it[i].key) == 0)
                return spec_err(err, it[i].key, "each key once", "a second value");
        }
        /* an unknown key first: a misspelt 'requests' (n=100) is named as
         * itself, not reported as the required key it failed to give. The
         * other kinds' count key (requests for sessions, sessions for
         * poisson) is left to the count check below, which names the key
         * this kind counts with. */
        if (!sim_name_in_list(ki->keys, it[i].key) && strcmp(it[i].key, "requests") != 0 &&
            strcmp(it[i].key, "sessions") != 0)
            return unknown_key(ki, it[i].key, err);
    }

    /* Count and duration bounds. */
    g->duration_s = INFINITY;
    if ((v = get(it, n, "duration")) != NULL && /* not closed's: refused above */
        (trace__spec_num(v, &g->duration_s) != 0 ||
         !(g->duration_s > 0 && g->duration_s <= SIM_HORIZON_S)))
        return spec_err(err, "duration",
                        "a number of seconds in (0, 1e9] (1e9 s is the simulated horizon)", v);
    if ((v = get(it, n, g->kind == K_SESSIONS ? "sessions" : "requests")) != NULL) {
        if (trace__spec_int(v, 1, 1e15, &g->n_max) != 0)
            return spec_err(err, g->kind == K_SESSIONS ? "sessions" : "requests",
                            "an integer in [1, 1e15]", v);
    }
    if (g->kind == K_CLOSED && g->n_max == 0)
        return spec_missing(err, "requests", "an integer in [1, 1e15] (required by closed)");
    if (g->kind != K_CLOSED && g->n_max == 0 && isinf(g->duration_s))
        return spec_missing(err, g->kind == K_SESSIONS ? "sessions" : "requests",
                            g->kind == K_SESSIONS ? "sessions=N or duration=S (one is required)"
                                                  : "requests=N or duration=S (one is required)");

    /* Lengths. */
    if ((rc = need(v = get(it, n, "isl"), "isl", LEN_WHAT " (required)", err)) ||
        (rc = parse_len(&g->isl, "isl", v, err)))
        return rc;
    if ((rc = need(v = get(it, n, "osl"), "osl", LEN_WHAT " (required)", err)) ||
        (rc = parse_len(&g->osl, "osl", v, err)))
        return rc;

    if (g->kind == K_CLOSED) {
        if ((rc = need(v = get(it, n, "concurrency"), "concurrency",
                       "an integer in [1, 1e9] (required)", err)))
            return rc;
        if (trace__spec_int(v, 1, 1e9, &g->concurrency) != 0)
            return spec_err(err, "concurrency", "an integer in [1, 1e9]", v);
        if ((v = get(it, n, "ramp")) != NULL &&
            (trace__spec_num(v, &g->ramp_s) != 0 || !(g->ramp_s >= 0 && g->ramp_s <= 1e6)))
            return spec_err(err, "ramp", "seconds in [0, 1e6]", v);
        if ((v = get(it, n, "jitter")) != NULL &&
            (trace__spec_num(v, &g->jitter_s) != 0 || !(g->jitter_s >= 0 && g->jitter_s <= 1e6)))
            return spec_err(err, "jitter", "seconds in [0, 1e6]", v);
    } else {
        if ((rc = need(v = get(it, n, "rate"), "rate", RATE_WHAT " (required)", err)) ||
            (rc = parse_rate(&g->rate, v, err)))
            return rc;
    }
    if (g->kind == K_GAMMA) {
        if ((rc = need(v = get(it, n, "cv"), "cv", "a number in [0.01, 100] (required)", err)))
            return rc;
        if (trace__spec_num(v, &g->cv) != 0 || g->cv < 0.01 || g->cv > 100)
            return spec_err(err, "cv", "a number in [0.01, 100]", v);
    }
    if (g->kind == K_SESSIONS) {
        int64_t sys = 0;
        if ((rc = need(v = get(it, n, "turns"), "turns",
                       "a positive integer or geometric(mean=M) (required)", err)) ||
            (rc = parse_turns(&g->turns, v, err)))
            return rc;
        if ((rc = need(v = get(it, n, "think"), "think",
                       "seconds >= 0, exp(mean=S) or lognormal(mean=S;sigma=X) (required)", err)) ||
            (rc = parse_think(&g->think, v, err)))
            return rc;
        if ((v = get(it, n, "system")) != NULL && trace__spec_int(v, 0, 1e9, &sys) != 0)
            return spec_err(err, "system", "an integer in [0, 1e9] (tokens)", v);
        g->system = (int32_t)sys;
    }
    for (i = 1; i < n; i++) /* another kind's count key */
        if (!it[i].used)
            return unknown_key(ki, it[i].key, err);
    return SIM_OK;
}

int trace__synth_open(const char *spec, const trace_opts *o, trace__impl *out, sim_err *err) {
    synth *g = SIM_NEW(synth);
    char *copy = NULL;
    int rc;

    if (g == NULL || (copy = sim_strdup(spec)) == NULL) {
        sim_err_set(err, SRC, 0, 0, "out of memory");
        rc = SIM_ENOMEM;
        goto err;
    }
    trace__sess_table_init(&g->table);
    if ((rc = parse_spec(g, copy, err)) != SIM_OK)
        goto err;
    g->r_arr = sim_rng_create(o->seed, SIM_RNG_ARRIVALS);
    g->r_len = sim_rng_create(o->seed, SIM_RNG_LENGTHS);
    g->r_sess = sim_rng_create(o->seed, SIM_RNG_SESSIONS);
    if (g->r_arr == NULL || g->r_len == NULL || g->r_sess == NULL) {
        sim_err_set(err, SRC, 0, 0, "random streams: out of memory");
        rc = SIM_ENOMEM;
        goto err;
    }
    sim_free(copy);
    out->ops = g->kind == K_POISSON || g->kind == K_GAMMA ? &synth_open_ops
               : g->kind == K_CLOSED                      ? &synth_closed_ops
                                                          : &synth_ops;
    out->state = g;
    return SIM_OK;

err:
    sim_free(copy);
    synth_destroy(g);
    return rc;
}
