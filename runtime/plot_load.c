/* plot_load.c: the figures drawn from many whole runs: `latency-load`
 * (TTFT and TPOT against offered load) and `hit-rate` (prefix hit rate
 * against KV cache size).
 *
 * Both collect one sample per run: the series it belongs to (a canonical
 * JSON text, so equal configurations compare equal), its point within the
 * series, an x value and up to PL_NV figures. Samples of the same series
 * and point are replications (other seeds, or sweep reps): the point is
 * their mean, with a 95 % confidence interval from Student's t
 * (t(0.975, n - 1) s / sqrt(n)) when there are two or more. Series and
 * points are sorted (series by key, points by x), so the figure does not
 * depend on the order rows come back in.
 *
 * latency-load takes its runs from the latest sweep (sweeps, sweep_points;
 * --sweep picks another) when the file has one with finished points: a
 * series is the point's axes without the load axis. Without sweeps it takes
 * every finished run and groups them by their stored config minus the keys
 * that set the load (load-scale, a synthetic source's rate), the seed and
 * the keys that do not change results (db, check, fast-forward,
 * steps-sample, timeline-s, op-timing). Offered load is measured, not taken
 * from the config: (arrivals - 1) / (last arrival - first arrival) from the
 * requests rows. With a sweep warm-up (sweeps.warmup_s > 0) the quantiles
 * are recomputed from the requests arriving at or after it.
 *
 * Expected sizes: tens to a few thousand runs; every run costs one or two
 * small queries. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>

#include "mem.h"
#include "num.h"
#include "plot_int.h"
#include "store.h"
#include "query.h"

#define PL_NV 4

/* Longest legend names, bytes: keys sit below the plots, and a longer
 * name ran past the figure's edge (hit-rate) or into the next panel
 * (latency-load has two side by side). */
#define PL_NAME_CHARS_WIDE  80
#define PL_NAME_CHARS_PANEL 48

typedef struct pl_sample {
    char *series;    /* canonical JSON of the series' identity, owned */
    char *point;     /* the point's key within the series, owned */
    json_t *label;   /* object whose differing keys label the series (owned) */
    json_t *cfg;     /* the run's config (owned) */
    double x;        /* x value */
    double v[PL_NV]; /* figures, NAN when undefined */
} pl_sample;

typedef struct pl_point {
    double x;                                 /* mean x */
    double mean[PL_NV], lo[PL_NV], hi[PL_NV]; /* mean and 95 % interval (lo = hi = mean if n = 1) */
    int n;                                    /* replications */
} pl_point;

typedef struct pl_series {
    const char *key; /* borrowed from the first sample */
    json_t *label;   /* borrowed from the first sample */
    pl_point *pts;   /* sorted by x, owned */
    size_t n_pts;
    char name[400]; /* legend text ("" for the only series) */
} pl_series;

typedef struct pl_set {
    pl_sample *s;
    size_t n, cap;
    pl_series *ser;
    size_t n_ser;
    int reps; /* 1 when some point has two or more replications */
} pl_set;

static void set_fini(pl_set *set) {
    size_t i;
    for (i = 0; i < set->n; i++) {
        sim_free(set->s[i].series);
        sim_free(set->s[i].point);
        json_decref(set->s[i].label);
        json_decref(set->s[i].cfg);
    }
    for (i = 0; i < set->n_ser; i++)
        sim_free(set->ser[i].pts);
    sim_free(set->s);
    sim_free(set->ser);
    memset(set, 0, sizeof *set);
}

/* Appends a sample, taking ownership of label and cfg; SIM_OK or SIM_ENOMEM. */
static int set_add(pl_set *set, json_t *label, const char *point, json_t *cfg, double x,
                   const double *v) {
    pl_sample *s;
    if (set->n == set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 64;
        pl_sample *p = sim_realloc(set->s, cap * sizeof *p);
        if (p == NULL)
            goto nomem;
        set->s = p;
        set->cap = cap;
    }
    s = &set->s[set->n];
    memset(s, 0, sizeof *s);
    s->series = json_dumps(label, JSON_COMPACT | JSON_SORT_KEYS);
    if (s->series != NULL) { /* json_dumps uses malloc: move it to sim_ memory */
        char *t = sim_strdup(s->series);
        free(s->series);
        s->series = t;
    }
    s->point = sim_strdup(point);
    if (s->series == NULL || s->point == NULL) {
        sim_free(s->series);
        sim_free(s->point);
        goto nomem;
    }
    s->label = label;
    s->cfg = cfg;
    s->x = x;
    memcpy(s->v, v, sizeof s->v);
    set->n++;
    return SIM_OK;
nomem:
    json_decref(label);
    json_decref(cfg);
    return SIM_ENOMEM;
}

static int cmp_sample(const void *a, const void *b) {
    const pl_sample *x = a, *y = b;
    int r = strcmp(x->series, y->series);
    return r ? r : strcmp(x->point, y->point);
}

static int cmp_point(const void *a, const void *b) {
    const pl_point *x = a, *y = b;
    return (x->x > y->x) - (x->x < y->x);
}

/* Formats a JSON value for a legend: a file path by its last component, an
 * inline object (a fleet) by its "description" or "name". */
static void value_text(json_t *v, char *out, size_t n) {
    if (json_is_string(v)) {
        const char *t = json_string_value(v), *slash = strrchr(t, '/');
        if (strchr(t, ',') || strchr(t, '=')) /* a spec, not a path */
            slash = NULL;
        snprintf(out, n, "%s", slash && slash[1] ? slash + 1 : t);
    } else if (json_is_object(v)) {
        const char *d = json_string_value(json_object_get(v, "description"));
        if (d == NULL)
            d = json_string_value(json_object_get(v, "name"));
        snprintf(out, n, "%s", d ? d : "{...}");
    } else if (json_is_integer(v))
        snprintf(out, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, n, "%g", json_real_value(v));
    else if (json_is_true(v))
        snprintf(out, n, "true");
    else if (json_is_false(v))
        snprintf(out, n, "false");
    else
        snprintf(out, n, "-");
}

/* Cuts a legend name longer than max bytes to max - 3 and "...", at a
 * UTF-8 character boundary, so a key stays inside the figure's width. */
static void shorten(char *name, size_t max) {
    size_t n = strlen(name);
    if (n <= max || max < 4)
        return;
    n = max - 3;
    while (n > 0 && ((unsigned char)name[n] & 0xc0) == 0x80)
        n--;
    memcpy(name + n, "...", 4);
}

/* Names every series by the label keys whose values differ between series
 * ("policy=lfu, tp=2"), keys in sorted order; force names a key always
 * shown, by its value alone (NULL: none). Names longer than max_chars
 * bytes are cut, ending "...". */
static int name_series(pl_set *set, const char *force, size_t max_chars) {
    const char **keys = NULL;
    size_t n_keys = 0, cap = 0, i, j, k;
    for (i = 0; i < set->n_ser; i++) {
        const char *key;
        json_t *v;
        json_object_foreach(set->ser[i].label, key, v) {
            int seen = 0;
            (void)v;
            for (k = 0; k < n_keys; k++)
                seen |= strcmp(keys[k], key) == 0;
            if (seen)
                continue;
            if (n_keys == cap) {
                const char **p;
                cap = cap ? 2 * cap : 32;
                p = sim_realloc(keys, cap * sizeof *p);
                if (p == NULL) {
                    sim_free(keys);
                    return SIM_ENOMEM;
                }
                keys = p;
            }
            keys[n_keys++] = key;
        }
    }
    if (n_keys > 0)
        qsort(keys, n_keys, sizeof *keys, sim_cmp_str);
    for (i = 0; i < set->n_ser; i++) {
        pl_series *s = &set->ser[i];
        size_t used = 0;
        s->name[0] = '\0';
        if (force != NULL) {
            value_text(json_object_get(s->label, force), s->name, sizeof s->name);
            used = strlen(s->name);
        }
        for (k = 0; k < n_keys; k++) {
            json_t *v = json_object_get(s->label, keys[k]);
            int differs = 0;
            char val[200];
            if (force != NULL && strcmp(keys[k], force) == 0)
                continue;
            for (j = 0; j < set->n_ser && !differs; j++)
                differs = !json_equal(v, json_object_get(set->ser[j].label, keys[k]));
            if (!differs)
                continue;
            value_text(v, val, sizeof val);
            snprintf(s->name + used, sizeof s->name - used, "%s%s=%s", used ? ", " : "", keys[k],
                     val);
            used = strlen(s->name);
        }
        shorten(s->name, max_chars);
    }
    sim_free(keys);
    return SIM_OK;
}

/* Sorts the samples and reduces them to series of points. */
static int set_group(pl_set *set) {
    size_t i = 0, j, n_ser = 0;
    double *vals;
    if (set->n == 0)
        return SIM_OK;
    if ((vals = SIM_NEW_ARRAY(double, set->n)) == NULL)
        return SIM_ENOMEM;
    qsort(set->s, set->n, sizeof *set->s, cmp_sample);
    for (i = 0; i < set->n; i++)
        if (i == 0 || strcmp(set->s[i].series, set->s[i - 1].series) != 0)
            n_ser++;
    if ((set->ser = SIM_NEW_ARRAY(pl_series, n_ser)) == NULL) {
        sim_free(vals);
        return SIM_ENOMEM;
    }
    for (i = 0; i < set->n;) {
        pl_series *ser = &set->ser[set->n_ser++];
        size_t end = i, n_pts = 0;
        while (end < set->n && strcmp(set->s[end].series, set->s[i].series) == 0)
            end++;
        for (j = i; j < end; j++)
            if (j == i || strcmp(set->s[j].point, set->s[j - 1].point) != 0)
                n_pts++;
        ser->key = set->s[i].series;
        ser->label = set->s[i].label;
        if ((ser->pts = SIM_NEW_ARRAY(pl_point, n_pts)) == NULL) {
            sim_free(vals);
            return SIM_ENOMEM;
        }
        for (j = i; j < end;) {
            pl_point *p = &ser->pts[ser->n_pts++];
            size_t e = j, r, v;
            double xs = 0;
            while (e < end && strcmp(set->s[e].point, set->s[j].point) == 0)
                e++;
            for (r = j; r < e; r++)
                xs += set->s[r].x;
            p->x = xs / (double)(e - j);
            p->n = (int)(e - j);
            if (p->n > 1)
                set->reps = 1;
            for (v = 0; v < PL_NV; v++) {
                size_t m = 0;
                for (r = j; r < e; r++)
                    if (isfinite(set->s[r].v[v]))
                        vals[m++] = set->s[r].v[v];
                if (m == 0) {
                    p->mean[v] = p->lo[v] = p->hi[v] = NAN;
                    continue;
                }
                p->mean[v] = gsl_stats_mean(vals, 1, m);
                p->lo[v] = p->hi[v] = p->mean[v];
                if (m >= 2) {
                    double hw = rt_ci95(vals, m);
                    p->lo[v] = p->mean[v] - hw;
                    p->hi[v] = p->mean[v] + hw;
                }
            }
            j = e;
        }
        qsort(ser->pts, ser->n_pts, sizeof *ser->pts, cmp_point);
        i = end;
    }
    sim_free(vals);
    return SIM_OK;
}

/* Writes each series as a data block $sI: x, then mean lo hi of every figure
 * times scale[v]; NaN where undefined. */
static void write_blocks(plot_ctx *c, const pl_set *set, const double *scale) {
    size_t i, j, v;
    for (i = 0; i < set->n_ser; i++) {
        plot__printf(c->gp, "$s%zu << EOD\n", i);
        for (j = 0; j < set->ser[i].n_pts; j++) {
            const pl_point *p = &set->ser[i].pts[j];
            plot__printf(c->gp, "%.9g", p->x);
            for (v = 0; v < PL_NV; v++) {
                if (isfinite(p->mean[v]))
                    plot__printf(c->gp, " %.9g %.9g %.9g", p->mean[v] * scale[v],
                                 p->lo[v] * scale[v], p->hi[v] * scale[v]);
                else
                    plot__printf(c->gp, " NaN NaN NaN");
            }
            plot__printf(c->gp, "  # n=%d\n", p->n);
        }
        plot__printf(c->gp, "EOD\n");
    }
}

/* "set logscale AXIS" when the positive values of figures v0, v1 span more
 * than a factor of ten, else "unset logscale AXIS". */
static void log_if_wide(plot_ctx *c, const pl_set *set, int v0, int v1, const char *axis) {
    double lo = INFINITY, hi = 0;
    size_t i, j;
    int v;
    for (i = 0; i < set->n_ser; i++)
        for (j = 0; j < set->ser[i].n_pts; j++)
            for (v = v0; v <= v1; v++) {
                double y = v < 0 ? set->ser[i].pts[j].x : set->ser[i].pts[j].mean[v];
                if (isfinite(y) && y > 0) {
                    lo = y < lo ? y : lo;
                    hi = y > hi ? y : hi;
                }
            }
    if (hi > 10 * lo)
        plot__printf(c->gp, "set logscale %s\n", axis);
    else
        plot__printf(c->gp, "unset logscale %s\n", axis);
}

/* The plot command for figures v0 (solid) and v1 (dashed) of every series. */
static void plot_pairs(plot_ctx *c, const pl_set *set, int v0, int v1, const char *suffix0,
                       const char *suffix1) {
    size_t i;
    int k;
    plot__printf(c->gp, "plot ");
    for (i = 0; i < set->n_ser; i++)
        for (k = 0; k < 2; k++) {
            int v = k ? v1 : v0;
            char title[520];
            const char *name = set->ser[i].name;
            snprintf(title, sizeof title, "%s%s%s", name, name[0] ? " " : "",
                     k ? suffix1 : suffix0);
            if (set->reps)
                plot__printf(c->gp, "%s$s%zu using 1:%d:%d:%d with yerrorlines",
                             i || k ? ", \\\n  " : "", i, 2 + 3 * v, 3 + 3 * v, 4 + 3 * v);
            else
                plot__printf(c->gp, "%s$s%zu using 1:%d with linespoints", i || k ? ", \\\n  " : "",
                             i, 2 + 3 * v);
            plot__printf(c->gp, " lw 2 lc rgb '%s' dt %d pt %d ps 1.1 title ", plot__colour(i),
                         k ? 2 : 1, k ? 9 : 7);
            plot__quote(c->gp, title);
        }
    plot__printf(c->gp, "\n");
}

/* Appends the common configuration of every sample to out. */
static int common_of(const pl_set *set, plot_buf *out) {
    json_t **cfgs = SIM_NEW_ARRAY(json_t *, set->n + 1);
    size_t i, n = 0;
    if (cfgs == NULL)
        return SIM_ENOMEM;
    for (i = 0; i < set->n; i++)
        if (set->s[i].cfg != NULL)
            cfgs[n++] = set->s[i].cfg;
    plot__config_common(cfgs, n, out);
    sim_free(cfgs);
    return out->oom ? SIM_ENOMEM : SIM_OK;
}

/* ---- per-run figures ---- */

/* Offered load of a run from its requests rows, requests/s; NAN without two arrivals. */
static double offered_rps(plot_ctx *c, int64_t run_id) {
    sqlite3_stmt *st = NULL;
    double rps = NAN;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT COUNT(*), MIN(arrival_s), MAX(arrival_s) FROM requests "
                           "WHERE run_id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return NAN;
    sqlite3_bind_int64(st, 1, run_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        double n = (double)sqlite3_column_int64(st, 0);
        double lo = sqlite3_column_double(st, 1), hi = sqlite3_column_double(st, 2);
        if (n >= 2 && hi > lo)
            rps = (n - 1) / (hi - lo);
    }
    sqlite3_finalize(st);
    return rps;
}

/* The p50 and p99 of column col over the requests of run_id arriving at or
 * after warmup_s (completed ones with the figure defined). */
static int quantiles_after(plot_ctx *c, int64_t run_id, const char *col, double warmup_s,
                           double *p50, double *p99) {
    sqlite3_stmt *st = NULL;
    double *v = NULL;
    size_t n = 0, cap = 0;
    char sql[256];
    int rc = SIM_OK;
    *p50 = *p99 = NAN;
    snprintf(sql, sizeof sql,
             "SELECT %s FROM requests WHERE run_id = ? AND arrival_s >= ? AND rejected = 0 AND "
             "%s IS NOT NULL",
             col, col);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return plot__db_fail(c, "requests");
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_double(st, 2, warmup_s);
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n == cap) {
            double *p;
            cap = cap ? 2 * cap : 1024;
            if ((p = sim_realloc(v, cap * sizeof *p)) == NULL) {
                rc = SIM_ENOMEM;
                goto out;
            }
            v = p;
        }
        v[n++] = sqlite3_column_double(st, 0);
    }
    if (n > 0) {
        gsl_sort(v, 1, n);
        *p50 = gsl_stats_quantile_from_sorted_data(v, 1, n, 0.50);
        *p99 = gsl_stats_quantile_from_sorted_data(v, 1, n, 0.99);
    }
out:
    sqlite3_finalize(st);
    sim_free(v);
    return rc;
}

/* TTFT p50, p99 and TPOT p50, p99 of a run, s: from its summary row, or
 * recomputed after a warm-up. */
static int latency_of(plot_ctx *c, int64_t run_id, double warmup_s, double *v) {
    sqlite3_stmt *st = NULL;
    int rc, k;
    for (k = 0; k < PL_NV; k++)
        v[k] = NAN;
    if (warmup_s > 0) {
        if ((rc = quantiles_after(c, run_id, "ttft_s", warmup_s, &v[0], &v[1])) != SIM_OK)
            return rc;
        return quantiles_after(c, run_id, "tpot_s", warmup_s, &v[2], &v[3]);
    }
    if (sqlite3_prepare_v2(c->db,
                           "SELECT ttft_p50_s, ttft_p99_s, tpot_p50_s, tpot_p99_s FROM summary "
                           "WHERE run_id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return plot__db_fail(c, "summary");
    sqlite3_bind_int64(st, 1, run_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        for (k = 0; k < PL_NV; k++)
            if (sqlite3_column_type(st, k) != SQLITE_NULL)
                v[k] = sqlite3_column_double(st, k);
    sqlite3_finalize(st);
    return SIM_OK;
}

/* Splits a synthetic spec's top-level "rate=..." item off: writes the spec
 * without it to rest and the rate's text to rate ("" if none). */
static void split_rate(const char *spec, char *rest, size_t rest_n, char *rate, size_t rate_n) {
    const char *p = spec, *start = spec;
    size_t used = 0;
    int depth = 0;
    rest[0] = rate[0] = '\0';
    for (;; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')')
            depth--;
        if (*p == '\0' || (*p == ',' && depth == 0)) {
            const char *q = start;
            size_t len = (size_t)(p - start);
            while (q < p && *q == ' ')
                q++;
            if (strncmp(q, "rate", 4) == 0 && (q[4] == '=' || q[4] == ' ')) {
                const char *eq = strchr(q, '=');
                if (eq != NULL && eq < p)
                    snprintf(rate, rate_n, "%.*s", (int)(p - eq - 1), eq + 1);
            } else if (used + len + 2 < rest_n) {
                if (used)
                    rest[used++] = ',';
                memcpy(rest + used, start, len);
                used += len;
                rest[used] = '\0';
            }
            if (*p == '\0')
                break;
            start = p + 1;
        }
    }
}

/* The config without the keys that do not make a configuration: the seed,
 * the file, debugging and sampling switches, and the keys in drop[] (NULL
 * ended). With cut_rate, a synthetic source's rate goes too (its text in
 * rate). Returns owned, NULL when out of memory. */
static json_t *config_identity(json_t *cfg, const char *const *drop, int cut_rate, char *rate,
                               size_t rate_n) {
    static const char *const always[] = {"seed",         "db",         "check",    "fast-forward",
                                         "steps-sample", "timeline-s", "op-timing"};
    json_t *id = json_deep_copy(cfg);
    size_t i;
    if (rate_n)
        rate[0] = '\0';
    if (id == NULL)
        return NULL;
    for (i = 0; i < sizeof always / sizeof always[0]; i++)
        json_object_del(id, always[i]);
    for (i = 0; drop && drop[i]; i++)
        json_object_del(id, drop[i]);
    if (cut_rate && json_is_string(json_object_get(id, "synthetic"))) {
        const char *spec = json_string_value(json_object_get(id, "synthetic"));
        size_t n = strlen(spec) + 1;
        char *rest = sim_malloc(n);
        if (rest == NULL) {
            json_decref(id);
            return NULL;
        }
        split_rate(spec, rest, n, rate, rate_n);
        json_object_set_new(id, "synthetic", json_string(rest));
        sim_free(rest);
    }
    return id;
}

/* ---- latency-load ---- */

/* The load axis of a sweep point: "load-scale", else a key naming a rate. */
static const char *load_axis(json_t *axes) {
    const char *key;
    json_t *v;
    if (json_object_get(axes, "load-scale") != NULL)
        return "load-scale";
    json_object_foreach(axes, key, v) {
        size_t n = strlen(key);
        (void)v;
        if (n >= 4 && strcmp(key + n - 4, "rate") == 0)
            return key;
    }
    return NULL;
}

/* The sweep to draw (--sweep, else the latest with finished points), 0 if none. */
static int pick_sweep(plot_ctx *c, int64_t *sweep_id, double *warmup_s, char *name, size_t n) {
    sqlite3_stmt *st = NULL;
    const char *sql_given = "SELECT sweep_id, warmup_s, name FROM sweeps WHERE sweep_id = ?";
    const char *sql_latest =
        "SELECT s.sweep_id, s.warmup_s, s.name FROM sweeps s WHERE EXISTS (SELECT 1 FROM "
        "sweep_points p WHERE p.sweep_id = s.sweep_id AND p.status = 'done') ORDER BY "
        "s.sweep_id DESC LIMIT 1";
    *sweep_id = 0;
    *warmup_s = 0;
    name[0] = '\0';
    if (!store_has_table(c->db, "sweeps") || !store_has_table(c->db, "sweep_points")) {
        if (c->sweep_id) {
            sim_err_set(c->err, c->db_path, 0, 0,
                        "--sweep: expected tables sweeps and sweep_points, got none (kvfleet "
                        "sweep writes them)");
            return SIM_EINVAL;
        }
        return SIM_OK;
    }
    if (sqlite3_prepare_v2(c->db, c->sweep_id ? sql_given : sql_latest, -1, &st, NULL) != SQLITE_OK)
        return plot__db_fail(c, "sweeps");
    if (c->sweep_id)
        sqlite3_bind_int64(st, 1, c->sweep_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        *sweep_id = sqlite3_column_int64(st, 0);
        *warmup_s = sqlite3_column_double(st, 1);
        if (sqlite3_column_text(st, 2))
            snprintf(name, n, "%s", (const char *)sqlite3_column_text(st, 2));
    }
    sqlite3_finalize(st);
    if (c->sweep_id && *sweep_id == 0) {
        sim_err_set(c->err, c->db_path, 0, 0,
                    "--sweep: expected a sweep_id of table sweeps, got '%lld'",
                    (long long)c->sweep_id);
        return SIM_EINVAL;
    }
    return SIM_OK;
}

static int collect_sweep(plot_ctx *c, pl_set *set, int64_t sweep_id, double warmup_s) {
    sqlite3_stmt *st = NULL;
    int rc = SIM_OK;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT p.point_id, p.axes, p.run_id FROM sweep_points p JOIN runs r "
                           "ON r.run_id = p.run_id WHERE p.sweep_id = ? AND p.status = 'done' "
                           "AND r.status = 'done' ORDER BY p.point_id, p.rep",
                           -1, &st, NULL) != SQLITE_OK)
        return plot__db_fail(c, "sweep_points");
    sqlite3_bind_int64(st, 1, sweep_id);
    while (rc == SIM_OK && sqlite3_step(st) == SQLITE_ROW) {
        int64_t point = sqlite3_column_int64(st, 0), run = sqlite3_column_int64(st, 2);
        const char *axes_txt = (const char *)sqlite3_column_text(st, 1);
        json_t *axes = axes_txt ? json_loads(axes_txt, 0, NULL) : NULL;
        const char *lkey;
        double v[PL_NV], x;
        char pk[32];
        if (!json_is_object(axes)) {
            json_decref(axes);
            axes = json_object();
        }
        lkey = load_axis(axes);
        if (lkey != NULL)
            json_object_del(axes, lkey);
        if ((rc = latency_of(c, run, warmup_s, v)) != SIM_OK) {
            json_decref(axes);
            break;
        }
        x = offered_rps(c, run);
        if (!isfinite(x)) {
            json_decref(axes);
            continue;
        }
        snprintf(pk, sizeof pk, "%020lld", (long long)point);
        rc = set_add(set, axes, pk, plot__run_config(c, run), x, v);
    }
    sqlite3_finalize(st);
    return rc;
}

static int collect_runs(plot_ctx *c, pl_set *set) {
    static const char *const drop[] = {"load-scale", NULL};
    sqlite3_stmt *st = NULL;
    int rc = SIM_OK;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT r.run_id, r.config FROM runs r JOIN summary s USING (run_id) "
                           "WHERE r.status = 'done' ORDER BY r.run_id",
                           -1, &st, NULL) != SQLITE_OK)
        return plot__db_fail(c, "runs");
    while (rc == SIM_OK && sqlite3_step(st) == SQLITE_ROW) {
        int64_t run = sqlite3_column_int64(st, 0);
        const char *txt = (const char *)sqlite3_column_text(st, 1);
        json_t *cfg = txt ? json_loads(txt, 0, NULL) : NULL, *id;
        double v[PL_NV], x;
        char rate[128], pk[200];
        if (!json_is_object(cfg)) {
            json_decref(cfg);
            continue;
        }
        if ((id = config_identity(cfg, drop, 1, rate, sizeof rate)) == NULL) {
            json_decref(cfg);
            rc = SIM_ENOMEM;
            break;
        }
        x = offered_rps(c, run);
        if (!isfinite(x) || (rc = latency_of(c, run, 0, v)) != SIM_OK) {
            json_decref(cfg);
            json_decref(id);
            continue;
        }
        snprintf(pk, sizeof pk, "%.17g|%s", json_number_value(json_object_get(cfg, "load-scale")),
                 rate);
        rc = set_add(set, id, pk, cfg, x, v);
    }
    sqlite3_finalize(st);
    return rc;
}

int plot__latency_load(plot_ctx *c) {
    static const double scale[PL_NV] = {1, 1, 1e3, 1e3};
    pl_set set;
    plot_buf common;
    int64_t sweep_id;
    double warmup_s;
    char sweep_name[200];
    int rc;

    memset(&set, 0, sizeof set);
    memset(&common, 0, sizeof common);
    if ((rc = pick_sweep(c, &sweep_id, &warmup_s, sweep_name, sizeof sweep_name)) != SIM_OK)
        goto out;
    if (!store_has_table(c->db, "summary") || !store_has_table(c->db, "requests")) {
        sim_err_set(c->err, c->db_path, 0, 0,
                    "latency-load: expected tables summary and requests, got none (kvfleet run "
                    "--db FILE writes them)");
        rc = SIM_EINVAL;
        goto out;
    }
    rc = sweep_id ? collect_sweep(c, &set, sweep_id, warmup_s) : collect_runs(c, &set);
    if (rc != SIM_OK)
        goto out;
    if (set.n == 0) {
        if (sweep_id)
            sim_err_set(c->err, c->db_path, 0, 0,
                        "latency-load: sweep %lld has no finished points with requests rows "
                        "(sweep_points.status 'done'); run it with kvfleet sweep",
                        (long long)sweep_id);
        else
            sim_err_set(c->err, c->db_path, 0, 0,
                        "latency-load: expected finished runs with a summary and requests rows "
                        "(runs.status 'done'), got none; make some with kvfleet run --db FILE "
                        "--load-scale X (one per load) or kvfleet sweep");
        rc = SIM_EINVAL;
        goto out;
    }
    { /* points, but not one latency: no request ended after the warm-up */
        size_t i, k, finite = 0;
        for (i = 0; i < set.n; i++)
            for (k = 0; k < PL_NV; k++)
                finite += isfinite(set.s[i].v[k]) != 0;
        if (finite == 0) {
            sim_err_set(c->err, c->db_path, 0, 0,
                        "latency-load: expected requests that completed%s, got none in %zu "
                        "run(s)%s",
                        warmup_s > 0 ? " after the warm-up" : "", set.n,
                        warmup_s > 0 ? " (lower the sweep's warmup-s)" : "");
            rc = SIM_EINVAL;
            goto out;
        }
    }
    if ((rc = set_group(&set)) != SIM_OK ||
        (rc = name_series(&set, NULL, PL_NAME_CHARS_PANEL)) != SIM_OK ||
        (rc = common_of(&set, &common)) != SIM_OK)
        goto out;
    if (sweep_id) {
        plot__printf(&common, "%ssweep %lld%s%s%s", common.n ? "; " : "", (long long)sweep_id,
                     sweep_name[0] ? " (" : "", sweep_name, sweep_name[0] ? ")" : "");
        if (warmup_s > 0)
            plot__printf(&common, ", after %g s warm-up", warmup_s);
    }
    if (set.reps)
        plot__printf(&common, "%smean of replications, 95%% CI", common.n ? "; " : "");

    write_blocks(c, &set, scale);
    plot__printf(c->gp, "set datafile missing 'NaN'\nset multiplot layout 1,2 title ");
    plot__title_expr(c, "Latency against offered load", common.s);
    /* keys below the panels, text left-aligned after its sample: inside
     * they hid points, and right-aligned long names ran off the left */
    plot__printf(c->gp, "\nset key outside below left Left reverse nobox samplen 2 font ',8'\n"
                        "set xlabel 'offered load (requests/s)'\nset mxtics\n");
    log_if_wide(c, &set, 0, 1, "y");
    plot__printf(c->gp, "set ylabel 'TTFT (s)'\n");
    plot_pairs(c, &set, 0, 1, "TTFT p50", "TTFT p99");
    log_if_wide(c, &set, 2, 3, "y");
    plot__printf(c->gp, "set ylabel 'TPOT (ms)'\n");
    plot_pairs(c, &set, 2, 3, "TPOT p50", "TPOT p99");
    plot__printf(c->gp, "unset multiplot\n");
out:
    plot__buf_fini(&common);
    set_fini(&set);
    return rc;
}

/* ---- hit-rate ---- */

/* One replica's KV pool of a run, blocks: from its steps rows, else the
 * config's kv-blocks; NAN when neither says. */
static double kv_blocks_of(plot_ctx *c, int64_t run_id, json_t *cfg) {
    sqlite3_stmt *st = NULL;
    double blocks = NAN;
    if (sqlite3_prepare_v2(c->db, "SELECT MAX(kv_blocks_total) FROM steps WHERE run_id = ?", -1,
                           &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, run_id);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            blocks = sqlite3_column_double(st, 0);
        sqlite3_finalize(st);
    }
    if (!(blocks > 0) && json_integer_value(json_object_get(cfg, "kv-blocks")) > 0)
        blocks = (double)json_integer_value(json_object_get(cfg, "kv-blocks"));
    return blocks > 0 ? blocks : NAN;
}

int plot__hit_rate(plot_ctx *c) {
    static const char *const drop[] = {"kv-blocks", "gpu-mem-util", NULL};
    static const double scale[PL_NV] = {100, 100, 1, 1};
    sqlite3_stmt *st = NULL;
    pl_set set;
    plot_buf common;
    int rc = SIM_OK;
    json_t *bt = NULL;
    size_t i;

    memset(&set, 0, sizeof set);
    memset(&common, 0, sizeof common);
    if (!store_has_table(c->db, "summary")) {
        sim_err_set(c->err, c->db_path, 0, 0,
                    "hit-rate: expected table summary, got none (kvfleet run --db FILE writes "
                    "it)");
        rc = SIM_EINVAL;
        goto out;
    }
    if (sqlite3_prepare_v2(c->db,
                           "SELECT r.run_id, r.config, s.prefix_hit_rate_tokens, "
                           "s.prefix_hit_rate_requests FROM runs r JOIN summary s USING (run_id) "
                           "WHERE r.status = 'done' AND s.prefix_hit_rate_tokens IS NOT NULL AND "
                           "json_extract(r.config, '$.policy') <> 'none' ORDER BY r.run_id",
                           -1, &st, NULL) != SQLITE_OK) {
        if (strstr(sqlite3_errmsg(c->db), "no such column") != NULL) {
            /* a file written before the hit-rate columns: bad input, not a
             * database failure */
            sim_err_set(c->err, c->db_path, 0, 0,
                        "hit-rate: expected summary columns prefix_hit_rate_tokens and "
                        "prefix_hit_rate_requests, got a file written before them (kvfleet run "
                        "--db FILE adds them, for runs made from then on)");
            rc = SIM_EINVAL;
        } else
            rc = plot__db_fail(c, "summary");
        goto out;
    }
    while (rc == SIM_OK && sqlite3_step(st) == SQLITE_ROW) {
        int64_t run = sqlite3_column_int64(st, 0);
        const char *txt = (const char *)sqlite3_column_text(st, 1);
        json_t *cfg = txt ? json_loads(txt, 0, NULL) : NULL, *id;
        double v[PL_NV] = {NAN, NAN, NAN, NAN}, x;
        char pk[64];
        if (!json_is_object(cfg)) {
            json_decref(cfg);
            continue;
        }
        x = kv_blocks_of(c, run, cfg);
        if (!isfinite(x)) {
            json_decref(cfg);
            continue;
        }
        if ((id = config_identity(cfg, drop, 0, NULL, 0)) == NULL) {
            json_decref(cfg);
            rc = SIM_ENOMEM;
            break;
        }
        v[0] = sqlite3_column_double(st, 2);
        if (sqlite3_column_type(st, 3) != SQLITE_NULL)
            v[1] = sqlite3_column_double(st, 3);
        snprintf(pk, sizeof pk, "%.17g", x);
        rc = set_add(&set, id, pk, cfg, x, v);
    }
    sqlite3_finalize(st);
    if (rc != SIM_OK)
        goto out;
    if (set.n == 0) {
        sim_err_set(c->err, c->db_path, 0, 0,
                    "hit-rate: expected finished runs with a prefix cache (summary "
                    "prefix_hit_rate_tokens, config policy other than 'none'), got none; make "
                    "them with kvfleet run --db FILE --policy P --kv-blocks N (one per size "
                    "and policy)");
        rc = SIM_EINVAL;
        goto out;
    }
    if ((rc = set_group(&set)) != SIM_OK ||
        (rc = name_series(&set, "policy", PL_NAME_CHARS_WIDE)) != SIM_OK ||
        (rc = common_of(&set, &common)) != SIM_OK)
        goto out;
    if (set.reps)
        plot__printf(&common, "%smean of replications, 95%% CI", common.n ? "; " : "");
    bt = json_object_get(set.s[0].cfg, "block-tokens");
    for (i = 1; i < set.n; i++)
        if (!json_equal(bt, json_object_get(set.s[i].cfg, "block-tokens")))
            bt = NULL;

    write_blocks(c, &set, scale);
    plot__printf(c->gp, "set datafile missing 'NaN'\n");
    plot__title(c, "Prefix cache hit rate against KV cache size", common.s);
    plot__printf(c->gp, "set key outside below left Left reverse nobox font ',9'\n");
    if (json_is_integer(bt))
        plot__printf(c->gp, "set xlabel 'KV cache per replica (blocks of %lld tokens)'\n",
                     (long long)json_integer_value(bt));
    else
        plot__printf(c->gp, "set xlabel 'KV cache per replica (blocks)'\n");
    log_if_wide(c, &set, -1, -1, "x");
    plot__printf(c->gp, "set ylabel 'prefix hit rate (%%)'\nset yrange [0:100]\nset mxtics\n");
    plot_pairs(c, &set, 0, 1, "(by tokens)", "(by requests)");
out:
    plot__buf_fini(&common);
    set_fini(&set);
    return rc;
}
