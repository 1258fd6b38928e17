/* query.c: `kvfleet query`: a table of a sweep's points and their figures.
 *
 * A row is one point of a sweep (the latest one, or --sweep ID) with its
 * axis values and its figures: every column of the `summary` table plus
 * the cost columns gpu_hours, usd and usd_per_mtok. A point run with
 * several seeds shows the mean over its done replications and, in FIG_ci95,
 * the half-width of the 95% confidence interval of that mean (Student t
 * with n - 1 degrees of freedom; NULL with fewer than two replications).
 * A file without sweeps gives one row per done run instead. --columns
 * also takes the options of the stored config (model, gpu, tp, trace, ...),
 * shown as stored: a sweep point's are those of its first replication.
 *
 * Cost. gpu_hours is the summary's own gpu_hours: the GPUs paid (serving,
 * draining, provisioning) integrated over the whole simulation by the
 * engine, autoscaler and fleets included (docs/metrics.md). usd is the
 * summary's cost_usd (each pool's region price, or --gpu-price). Both are
 * what the run paid, so a warm-up window does not change them. Results
 * files written before the summary had these columns, or rows where they
 * are NULL, fall back to the older estimate: gpu_hours = replicas x tp x
 * (last_finish_s - first_arrival_s) / 3600 from the run's resolved config
 * and its figures (the warm-up window when there is one), and usd =
 * gpu_hours x the config's gpu-price (NULL when absent or 0).
 * usd_per_mtok = usd per million output tokens (of the warm-up window when
 * there is one).
 *
 * Warm-up. A sweep with warmup_s > 0 recomputes the figures that depend on
 * which requests count (counts, token sums, latency quantiles and means,
 * throughput, offered load, hit rates, the span) from the `requests` rows
 * that arrived at or after warmup_s, with the engine's definitions
 * (docs/metrics.md); the figures that need step or cache state over time
 * become NULL; run-wide bookkeeping (steps, sim_events, sim_time_s, wall_s,
 * ...) and what the run paid (cost_usd, like usd) are kept.
 *
 * The file is opened by store_open_read (read-write but query-only, so a
 * killed writer's hot journal is rolled back); nothing is written. Sizes: a query reads
 * one summary row per run, or every requests row of the sweep's runs when
 * there is a warm-up. */
#include "config.h"
#include "query.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_cdf.h>
#include <gsl/gsl_statistics_double.h>
#include <jansson.h>
#include <sqlite3.h>

#include "cli.h"
#include "engine.h"
#include "store.h"
#include "mem.h"
#include "num.h"

#define Q_MAX_FIGS 128 /* summary columns plus cost columns, more than enough */

/* One column the query can show. */
typedef struct qcol {
    char name[96];
    int kind;    /* 'p' point, 'r' run_id, 'k' kind, 'n' reps, 's' status, 'a' axis, 'f' figure,
                    'c' config option */
    int fig;     /* figure index ('f') */
    int ci;      /* 1: the figure's ci95 half-width */
    int integer; /* the figure is a count (printed without decimals when exact) */
} qcol;

/* One output row: a point (or a run) and the figures of its replications. */
typedef struct qrow {
    long long id;  /* point_id, or run_id in runs mode */
    char kind[32]; /* runs mode: runs.kind */
    char status[16];
    json_t *axes; /* point's axis values (owned; NULL in runs mode) */
    json_t *cfg;  /* the resolved config of its first replication (owned; may be NULL) */
    int n_reps;   /* done replications */
    double *vals; /* [n_reps x n_figs], NAN for NULL */
} qrow;

typedef struct query {
    sqlite3 *db;
    const char *path;
    int sweep_mode;
    long long sweep_id;
    int seeds;
    double warmup_s;
    json_t *axes; /* axis names in column order (owned) */
    int n_figs;
    char figs[Q_MAX_FIGS][64];
    int fig_int[Q_MAX_FIGS];
    qrow *rows;
    size_t n_rows;
} query;

static const char *const default_figs[] = {
    "requests",          "completed",           "rejected",
    "ttft_p50_s",        "ttft_p99_s",          "tpot_p50_s",
    "tpot_p99_s",        "output_tokens_per_s", "prefix_hit_rate_tokens",
    "recomputed_tokens", "gpu_hours",           "usd",
    "usd_per_mtok"};

static int fig_index(const query *q, const char *name) {
    int i;
    for (i = 0; i < q->n_figs; i++)
        if (strcmp(q->figs[i], name) == 0)
            return i;
    return -1;
}

static int q_fail(const query *q, const char *what) {
    fprintf(stderr, "kvfleet query: %s: %s: %s\n", q->path, what, sqlite3_errmsg(q->db));
    return RT_EXIT_RUNTIME;
}

/* ---- reading ---- */

/* The figure names: summary columns in file order, then the cost columns. */
static int load_figs(query *q) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(q->db, "PRAGMA table_info(summary)", -1, &st, NULL) != SQLITE_OK)
        return q_fail(q, "summary");
    while (sqlite3_step(st) == SQLITE_ROW && q->n_figs < Q_MAX_FIGS - 3) {
        const char *name = (const char *)sqlite3_column_text(st, 1);
        const char *type = (const char *)sqlite3_column_text(st, 2);
        /* run_id is the key; the cost columns are query's own (file comment) */
        if (strcmp(name, "run_id") == 0 || strcmp(name, "gpu_hours") == 0 ||
            strcmp(name, "usd") == 0 || strcmp(name, "usd_per_mtok") == 0)
            continue;
        snprintf(q->figs[q->n_figs], sizeof q->figs[0], "%s", name);
        q->fig_int[q->n_figs] = type && strcmp(type, "INTEGER") == 0;
        q->n_figs++;
    }
    sqlite3_finalize(st);
    if (q->n_figs == 0) {
        fprintf(stderr, "kvfleet query: %s: expected a kvfleet results file (no summary table)\n",
                q->path);
        return RT_EXIT_INPUT;
    }
    snprintf(q->figs[q->n_figs++], sizeof q->figs[0], "gpu_hours");
    snprintf(q->figs[q->n_figs++], sizeof q->figs[0], "usd");
    snprintf(q->figs[q->n_figs++], sizeof q->figs[0], "usd_per_mtok");
    return RT_EXIT_OK;
}

static void set_fig(const query *q, double *v, const char *name, double x) {
    int i = fig_index(q, name);
    if (i >= 0)
        v[i] = x;
}

/* Recomputes the request-level figures of run_id from requests arriving at or after warmup_s. */
static int warmup_figs(query *q, long long run_id, double *v) {
    /* run-wide bookkeeping, and what the run paid (cost_usd, as usd: file comment) */
    static const char *const keep[] = {"steps",  "sim_time_s",     "sim_events",
                                       "wall_s", "peak_mem_bytes", "cost_usd"};
    sqlite3_stmt *st;
    double *ttft = NULL, *tpot = NULL, *e2e = NULL;
    size_t n_ttft = 0, n_tpot = 0, n_e2e = 0, cap = 0;
    long long n = 0, completed = 0, rej = 0, rc_ctx = 0, rc_kv = 0, rc_qf = 0, rc_qt = 0, rc_bb = 0,
              preempt = 0, recomp = 0, prompt = 0, out = 0, hit = 0, hit_req = 0;
    double first = NAN, last = NAN, arr_last = NAN, sum_ttft = 0, sum_tpot = 0;
    int i, rc = RT_EXIT_OK;
    for (i = 0; i < q->n_figs - 3; i++) { /* NULL unless recomputed or kept below */
        size_t k;
        int kept = 0;
        for (k = 0; k < sizeof keep / sizeof keep[0]; k++)
            kept |= strcmp(q->figs[i], keep[k]) == 0;
        if (!kept)
            v[i] = NAN;
    }
    if (sqlite3_prepare_v2(q->db,
                           "SELECT arrival_s, finish_s, ttft_s, tpot_s, e2e_s, prompt_tokens,"
                           " output_tokens, preemptions, recomputed_tokens, hit_tokens, rejected,"
                           " reject_reason FROM requests WHERE run_id = ? AND arrival_s >= ?",
                           -1, &st, NULL) != SQLITE_OK)
        return q_fail(q, "requests");
    sqlite3_bind_int64(st, 1, run_id);
    sqlite3_bind_double(st, 2, q->warmup_s);
    while (sqlite3_step(st) == SQLITE_ROW) {
        double arr = sqlite3_column_double(st, 0), fin = sqlite3_column_double(st, 1);
        if (n_ttft == cap || n_tpot == cap || n_e2e == cap) {
            size_t nc = cap ? 2 * cap : 1024;
            double *a = sim_realloc(ttft, nc * sizeof *a), *b, *c;
            if (a)
                ttft = a;
            b = sim_realloc(tpot, nc * sizeof *b);
            if (b)
                tpot = b;
            c = sim_realloc(e2e, nc * sizeof *c);
            if (c)
                e2e = c;
            if (!a || !b || !c) {
                rc = RT_EXIT_RUNTIME;
                goto out;
            }
            cap = nc;
        }
        n++;
        preempt += sqlite3_column_int64(st, 7);
        if (isnan(first) || arr < first)
            first = arr;
        if (isnan(last) || fin > last)
            last = fin;
        if (isnan(arr_last) || arr > arr_last)
            arr_last = arr;
        if (sqlite3_column_int(st, 10)) {
            const char *why = (const char *)sqlite3_column_text(st, 11);
            rej++;
            why = why ? why : "";
            rc_ctx += strcmp(why, "context_length") == 0;
            rc_kv += strcmp(why, "kv_capacity") == 0;
            rc_qf += strcmp(why, "queue_full") == 0;
            rc_qt += strcmp(why, "queue_timeout") == 0;
            rc_bb += strcmp(why, "batch_budget") == 0;
            continue;
        }
        completed++;
        prompt += sqlite3_column_int64(st, 5);
        out += sqlite3_column_int64(st, 6);
        recomp += sqlite3_column_int64(st, 8);
        hit += sqlite3_column_int64(st, 9);
        hit_req += sqlite3_column_int64(st, 9) > 0;
        if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
            ttft[n_ttft++] = sqlite3_column_double(st, 2);
            sum_ttft += ttft[n_ttft - 1];
        }
        if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
            tpot[n_tpot++] = sqlite3_column_double(st, 3);
            sum_tpot += tpot[n_tpot - 1];
        }
        if (sqlite3_column_type(st, 4) != SQLITE_NULL)
            e2e[n_e2e++] = sqlite3_column_double(st, 4);
    }
    /* qsort wants a valid pointer even for no element: none after the warm-up */
    if (n_ttft > 1)
        qsort(ttft, n_ttft, sizeof *ttft, sim_cmp_double);
    if (n_tpot > 1)
        qsort(tpot, n_tpot, sizeof *tpot, sim_cmp_double);
    if (n_e2e > 1)
        qsort(e2e, n_e2e, sizeof *e2e, sim_cmp_double);
    set_fig(q, v, "requests", (double)n);
    set_fig(q, v, "completed", (double)completed);
    set_fig(q, v, "rejected", (double)rej);
    set_fig(q, v, "rejected_context", (double)rc_ctx);
    set_fig(q, v, "rejected_kv_capacity", (double)rc_kv);
    set_fig(q, v, "rejected_queue_full", (double)rc_qf);
    set_fig(q, v, "rejected_queue_timeout", (double)rc_qt);
    set_fig(q, v, "rejected_batch_budget", (double)rc_bb);
    set_fig(q, v, "preemptions", (double)preempt);
    set_fig(q, v, "recomputed_tokens", (double)recomp);
    set_fig(q, v, "prompt_tokens", (double)prompt);
    set_fig(q, v, "output_tokens", (double)out);
    if (completed > 0) {
        set_fig(q, v, "prefix_hit_rate_requests", (double)hit_req / (double)completed);
        if (prompt > 0)
            set_fig(q, v, "prefix_hit_rate_tokens", (double)hit / (double)prompt);
    }
    set_fig(q, v, "ttft_p50_s", met_quantile_sorted(ttft, n_ttft, 0.50));
    set_fig(q, v, "ttft_p90_s", met_quantile_sorted(ttft, n_ttft, 0.90));
    set_fig(q, v, "ttft_p99_s", met_quantile_sorted(ttft, n_ttft, 0.99));
    set_fig(q, v, "ttft_mean_s", n_ttft ? sum_ttft / (double)n_ttft : NAN);
    set_fig(q, v, "tpot_p50_s", met_quantile_sorted(tpot, n_tpot, 0.50));
    set_fig(q, v, "tpot_p90_s", met_quantile_sorted(tpot, n_tpot, 0.90));
    set_fig(q, v, "tpot_p99_s", met_quantile_sorted(tpot, n_tpot, 0.99));
    set_fig(q, v, "tpot_mean_s", n_tpot ? sum_tpot / (double)n_tpot : NAN);
    set_fig(q, v, "e2e_p50_s", met_quantile_sorted(e2e, n_e2e, 0.50));
    set_fig(q, v, "e2e_p90_s", met_quantile_sorted(e2e, n_e2e, 0.90));
    set_fig(q, v, "e2e_p99_s", met_quantile_sorted(e2e, n_e2e, 0.99));
    if (n > 0) {
        set_fig(q, v, "first_arrival_s", first);
        set_fig(q, v, "last_finish_s", last);
    }
    /* the load offered in the window: its requests over its arrival span */
    if (n > 0 && arr_last > first)
        set_fig(q, v, "offered_rps", (double)n / (arr_last - first));
    if (n > 0 && last - first > 0) { /* 0 when every request was rejected, as the engine's */
        set_fig(q, v, "output_tokens_per_s", (double)out / (last - first));
        set_fig(q, v, "requests_per_s", (double)completed / (last - first));
    }
out:
    sqlite3_finalize(st);
    sim_free(ttft);
    sim_free(tpot);
    sim_free(e2e);
    return rc;
}

/* Fills v[0..n_figs) for run_id: its summary row, the warm-up window, the cost columns. */
static int run_figs(query *q, long long run_id, const char *config, double *v) {
    sqlite3_stmt *st;
    int i, c, rc = RT_EXIT_OK;
    json_t *cfg;
    double span, replicas = 1, tp = 1, out, gpu_h = NAN, usd = NAN;
    double sum_gpu_h = NAN, sum_usd = NAN; /* the summary's gpu_hours, cost_usd */
    json_t *price;
    for (i = 0; i < q->n_figs; i++)
        v[i] = NAN;
    if (sqlite3_prepare_v2(q->db, "SELECT * FROM summary WHERE run_id = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return q_fail(q, "summary");
    sqlite3_bind_int64(st, 1, run_id);
    if (sqlite3_step(st) == SQLITE_ROW) {
        for (c = 0; c < sqlite3_column_count(st); c++) {
            const char *name = sqlite3_column_name(st, c);
            int f = fig_index(q, name);
            if (sqlite3_column_type(st, c) == SQLITE_NULL)
                continue;
            if (strcmp(name, "gpu_hours") == 0)
                sum_gpu_h = sqlite3_column_double(st, c);
            else if (strcmp(name, "cost_usd") == 0)
                sum_usd = sqlite3_column_double(st, c);
            if (f >= 0)
                v[f] = sqlite3_column_double(st, c);
        }
    }
    sqlite3_finalize(st);
    if (q->warmup_s > 0 && (rc = warmup_figs(q, run_id, v)) != RT_EXIT_OK)
        return rc;
    /* cost: the summary's gpu_hours and cost_usd; else GPUs x span at the
     * config's price per GPU-hour (older files; file comment) */
    cfg = config ? json_loads(config, 0, NULL) : NULL;
    if (json_is_integer(json_object_get(cfg, "replicas")))
        replicas = (double)json_integer_value(json_object_get(cfg, "replicas"));
    if (json_is_integer(json_object_get(cfg, "tp")))
        tp = (double)json_integer_value(json_object_get(cfg, "tp"));
    span = fig_index(q, "last_finish_s") >= 0 && fig_index(q, "first_arrival_s") >= 0
               ? v[fig_index(q, "last_finish_s")] - v[fig_index(q, "first_arrival_s")]
               : NAN;
    gpu_h = isfinite(sum_gpu_h) ? sum_gpu_h : replicas * tp * span / 3600.0;
    if (isfinite(sum_usd)) {
        usd = sum_usd;
    } else if (isfinite(gpu_h)) {
        price = json_object_get(cfg, "gpu-price");
        if (json_is_number(price) && json_number_value(price) > 0) /* 0: no price */
            usd = gpu_h * json_number_value(price);
    }
    v[q->n_figs - 3] = gpu_h;
    v[q->n_figs - 2] = usd;
    out = fig_index(q, "output_tokens") >= 0 ? v[fig_index(q, "output_tokens")] : NAN;
    if (isfinite(usd) && out > 0)
        v[q->n_figs - 1] = usd / (out / 1e6);
    json_decref(cfg);
    return rc;
}

/* Appends one replication's figures (run_id) to row r. */
static int row_add_run(query *q, qrow *r, long long run_id, const char *config) {
    double *nv = sim_realloc(r->vals, (size_t)(r->n_reps + 1) * (size_t)q->n_figs * sizeof *nv);
    if (nv == NULL)
        return RT_EXIT_RUNTIME;
    r->vals = nv;
    r->n_reps++;
    return run_figs(q, run_id, config, r->vals + (size_t)(r->n_reps - 1) * (size_t)q->n_figs);
}

static qrow *row_new(query *q) {
    qrow *nr = sim_realloc(q->rows, (q->n_rows + 1) * sizeof *nr);
    if (nr == NULL)
        return NULL;
    q->rows = nr;
    memset(&nr[q->n_rows], 0, sizeof nr[0]);
    return &nr[q->n_rows++];
}

/* Sweep mode: one row per point of the sweep. */
static int load_sweep(query *q, long long want) {
    sqlite3_stmt *st;
    int rc = RT_EXIT_OK;
    const char *sql = want > 0 ? "SELECT sweep_id, seeds, warmup_s, spec FROM sweeps WHERE"
                                 " sweep_id = ?"
                               : "SELECT sweep_id, seeds, warmup_s, spec FROM sweeps ORDER BY"
                                 " sweep_id DESC LIMIT 1";
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        return q_fail(q, "sweeps");
    if (want > 0)
        sqlite3_bind_int64(st, 1, want);
    if (sqlite3_step(st) != SQLITE_ROW) {
        sqlite3_finalize(st);
        fprintf(stderr, "kvfleet query: %s: --sweep: expected a sweep_id of the file, got '%lld'\n",
                q->path, want);
        return RT_EXIT_INPUT;
    }
    q->sweep_id = sqlite3_column_int64(st, 0);
    q->seeds = sqlite3_column_int(st, 1);
    q->warmup_s = sqlite3_column_double(st, 2);
    sqlite3_finalize(st);
    q->axes = json_array();
    /* every point, its replications in order; done ones bring their run */
    if (sqlite3_prepare_v2(q->db,
                           "SELECT p.point_id, p.axes, p.status, p.run_id, r.config, p.config"
                           " FROM sweep_points p LEFT JOIN runs r ON r.run_id = p.run_id"
                           " WHERE p.sweep_id = ? ORDER BY p.point_id, p.rep",
                           -1, &st, NULL) != SQLITE_OK)
        return q_fail(q, "sweep_points");
    sqlite3_bind_int64(st, 1, q->sweep_id);
    while (rc == RT_EXIT_OK && sqlite3_step(st) == SQLITE_ROW) {
        long long pid = sqlite3_column_int64(st, 0);
        const char *status = (const char *)sqlite3_column_text(st, 2);
        qrow *r = q->n_rows ? &q->rows[q->n_rows - 1] : NULL;
        status = status ? status : "";
        if (r == NULL || r->id != pid) {
            const char *axes = (const char *)sqlite3_column_text(st, 1);
            const char *cfg = (const char *)sqlite3_column_text(st, 5);
            const char *key;
            json_t *v;
            if ((r = row_new(q)) == NULL) {
                rc = RT_EXIT_RUNTIME;
                break;
            }
            r->id = pid;
            r->cfg = cfg ? json_loads(cfg, 0, NULL) : NULL;
            r->axes = axes ? json_loads(axes, 0, NULL) : NULL;
            if (r->axes == NULL)
                r->axes = json_object();
            json_object_foreach(r->axes, key, v) {
                size_t k;
                json_t *name;
                int seen = 0;
                json_array_foreach(q->axes, k, name) seen |=
                    strcmp(json_string_value(name), key) == 0;
                if (!seen)
                    json_array_append_new(q->axes, json_string(key));
            }
            snprintf(r->status, sizeof r->status, "%s", status);
        } else if (strcmp(r->status, status) != 0)
            snprintf(r->status, sizeof r->status, "partial");
        if (strcmp(status, "done") == 0)
            rc = row_add_run(q, r, sqlite3_column_int64(st, 3),
                             (const char *)sqlite3_column_text(st, 4));
    }
    sqlite3_finalize(st);
    return rc;
}

/* Runs mode: one row per done run. */
static int load_runs(query *q) {
    sqlite3_stmt *st;
    int rc = RT_EXIT_OK;
    q->seeds = 1;
    if (sqlite3_prepare_v2(q->db,
                           "SELECT run_id, kind, config FROM runs WHERE status = 'done'"
                           " ORDER BY run_id",
                           -1, &st, NULL) != SQLITE_OK)
        return q_fail(q, "runs");
    while (rc == RT_EXIT_OK && sqlite3_step(st) == SQLITE_ROW) {
        qrow *r = row_new(q);
        const char *kind = (const char *)sqlite3_column_text(st, 1);
        if (r == NULL) {
            rc = RT_EXIT_RUNTIME;
            break;
        }
        r->id = sqlite3_column_int64(st, 0);
        snprintf(r->kind, sizeof r->kind, "%s", kind ? kind : "");
        snprintf(r->status, sizeof r->status, "done");
        if (sqlite3_column_text(st, 2) != NULL)
            r->cfg = json_loads((const char *)sqlite3_column_text(st, 2), 0, NULL);
        rc = row_add_run(q, r, r->id, (const char *)sqlite3_column_text(st, 2));
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- columns ---- */

/* Every column the query knows, in --all-columns order; *n set. Owned array. */
static qcol *known_columns(const query *q, size_t *n) {
    size_t cap = 8 + json_array_size(q->axes) + 2 * (size_t)q->n_figs, k = 0, i;
    qcol *c = sim_calloc(cap, sizeof *c);
    json_t *name;
    int f;
    if (c == NULL)
        return NULL;
    if (q->sweep_mode) {
        snprintf(c[k].name, sizeof c[k].name, "point");
        c[k++].kind = 'p';
        json_array_foreach(q->axes, i, name) {
            snprintf(c[k].name, sizeof c[k].name, "%s", json_string_value(name));
            c[k++].kind = 'a';
        }
        snprintf(c[k].name, sizeof c[k].name, "reps");
        c[k++].kind = 'n';
        snprintf(c[k].name, sizeof c[k].name, "status");
        c[k++].kind = 's';
    } else {
        snprintf(c[k].name, sizeof c[k].name, "run_id");
        c[k++].kind = 'r';
        snprintf(c[k].name, sizeof c[k].name, "kind");
        c[k++].kind = 'k';
    }
    for (f = 0; f < q->n_figs; f++) {
        snprintf(c[k].name, sizeof c[k].name, "%s", q->figs[f]);
        c[k].kind = 'f';
        c[k].fig = f;
        c[k++].integer = q->fig_int[f];
        if (q->seeds > 1) {
            snprintf(c[k].name, sizeof c[k].name, "%s_ci95", q->figs[f]);
            c[k].kind = 'f';
            c[k].fig = f;
            c[k++].ci = 1;
        }
    }
    *n = k;
    return c;
}

static const qcol *col_find(const qcol *known, size_t n, const char *name) {
    size_t i;
    for (i = 0; i < n; i++)
        if (strcmp(known[i].name, name) == 0)
            return &known[i];
    return NULL;
}

/* Whether name is an option of some row's stored config (a 'c' column).
 * The options a resolved config holds only when given (the source, a
 * fleet, a replay) are always known, so that a script asking for
 * `--columns trace,synthetic` reads '-' where a run lacks one, as
 * documented, instead of exit 2 on a file whose runs all lack it. */
/* The options a config holds only when given: known as columns even when
 * no row has them. */
static const char *const optional_keys[] = {"trace", "synthetic", "fleet", "replay"};
#define N_OPTIONAL_KEYS (sizeof optional_keys / sizeof optional_keys[0])

static int is_config_key(const query *q, const char *name) {
    size_t i;
    for (i = 0; i < N_OPTIONAL_KEYS; i++)
        if (strcmp(name, optional_keys[i]) == 0)
            return 1;
    for (i = 0; i < q->n_rows; i++)
        if (json_object_get(q->rows[i].cfg, name) != NULL)
            return 1;
    return 0;
}

/* The columns to show: --columns, --all-columns or the default set. */
static int pick_columns(const query *q, const char *list, int all, qcol **out, size_t *n_out) {
    size_t n_known, n = 0, i;
    qcol *known = known_columns(q, &n_known), *pick;
    if (known == NULL)
        return RT_EXIT_RUNTIME;
    pick = sim_calloc(n_known + 64, sizeof *pick);
    if (pick == NULL) {
        sim_free(known);
        return RT_EXIT_RUNTIME;
    }
    if (list) {
        char *copy = sim_strdup(list), *tok, *next;
        if (copy == NULL) {
            sim_free(known);
            sim_free(pick);
            return RT_EXIT_RUNTIME;
        }
        /* every element is a name: '', ',' or 'a,,b' is a usage error, as an unknown name is */
        for (tok = copy; tok; tok = next) {
            const qcol *c;
            if ((next = strchr(tok, ',')) != NULL)
                *next++ = '\0';
            if (tok[0] == '\0') {
                fprintf(stderr,
                        "kvfleet query: --columns: expected column names separated by commas, "
                        "got an empty name in '%s'\n",
                        list);
                sim_free(copy);
                sim_free(known);
                sim_free(pick);
                return RT_EXIT_USAGE;
            }
            c = col_find(known, n_known, tok);
            if (c == NULL && n < n_known + 64 && is_config_key(q, tok) &&
                strlen(tok) < sizeof pick[n].name) {
                memset(&pick[n], 0, sizeof pick[n]);
                snprintf(pick[n].name, sizeof pick[n].name, "%s", tok);
                pick[n++].kind = 'c';
                continue;
            }
            if (c == NULL || n >= n_known + 64) {
                const char *key;
                json_t *v;
                fprintf(stderr, "kvfleet query: --columns: expected names among:");
                for (i = 0; i < n_known; i++)
                    fprintf(stderr, "%s%s", i ? "," : " ", known[i].name);
                if (q->n_rows > 0 && q->rows[0].cfg != NULL) {
                    fprintf(stderr, " or the runs' config options:");
                    i = 0;
                    json_object_foreach(q->rows[0].cfg, key, v) {
                        (void)v;
                        fprintf(stderr, "%s%s", i++ ? "," : " ", key);
                    }
                    for (i = 0; i < N_OPTIONAL_KEYS; i++) /* known where no row has them */
                        if (json_object_get(q->rows[0].cfg, optional_keys[i]) == NULL)
                            fprintf(stderr, ",%s", optional_keys[i]);
                }
                fprintf(stderr, "; got '%s'\n", tok);
                sim_free(copy);
                sim_free(known);
                sim_free(pick);
                return RT_EXIT_USAGE;
            }
            pick[n++] = *c;
        }
        sim_free(copy);
    } else if (all) {
        for (i = 0; i < n_known; i++)
            pick[n++] = known[i];
    } else {
        for (i = 0; i < n_known; i++) /* identity columns: point and axes, or run_id and kind */
            if (known[i].kind == 'p' || known[i].kind == 'a' || known[i].kind == 'r' ||
                known[i].kind == 'k')
                pick[n++] = known[i];
        for (i = 0; i < sizeof default_figs / sizeof default_figs[0]; i++) {
            char ci[128];
            const qcol *c = col_find(known, n_known, default_figs[i]);
            if (c)
                pick[n++] = *c;
            snprintf(ci, sizeof ci, "%s_ci95", default_figs[i]);
            if ((c = col_find(known, n_known, ci)) != NULL)
                pick[n++] = *c;
        }
    }
    sim_free(known);
    *out = pick;
    *n_out = n;
    return RT_EXIT_OK;
}

/* ---- output ---- */

double rt_ci95(const double *v, size_t n) {
    if (n < 2)
        return NAN;
    return gsl_cdf_tdist_Pinv(0.975, (double)(n - 1)) * gsl_stats_sd(v, 1, n) / sqrt((double)n);
}

/* Mean of figure f over a row's replications (ci: the 95% half-width); NAN when undefined. */
static double row_value(const query *q, const qrow *r, int f, int ci) {
    double sum = 0, hw, *v;
    int i, n = 0;
    for (i = 0; i < r->n_reps; i++) {
        double x = r->vals[(size_t)i * (size_t)q->n_figs + (size_t)f];
        if (!isnan(x)) {
            sum += x;
            n++;
        }
    }
    if (n == 0)
        return NAN;
    if (!ci)
        return sum / n;
    if (n < 2 || (v = sim_malloc((size_t)n * sizeof *v)) == NULL)
        return NAN;
    for (n = 0, i = 0; i < r->n_reps; i++) {
        double x = r->vals[(size_t)i * (size_t)q->n_figs + (size_t)f];
        if (!isnan(x))
            v[n++] = x;
    }
    hw = rt_ci95(v, (size_t)n);
    sim_free(v);
    return hw;
}

static void cell_text(const query *q, const qrow *r, const qcol *c, int csv, char *buf, size_t n) {
    switch (c->kind) {
        case 'p':
        case 'r':
            snprintf(buf, n, "%lld", r->id);
            return;
        case 'k':
            snprintf(buf, n, "%s", r->kind);
            return;
        case 'n':
            snprintf(buf, n, "%d", r->n_reps);
            return;
        case 's':
            snprintf(buf, n, "%s", r->status);
            return;
        case 'a':
        case 'c': {
            json_t *v = json_object_get(c->kind == 'a' ? r->axes : r->cfg, c->name);
            if (v == NULL || json_is_null(v))
                snprintf(buf, n, "%s", csv ? "" : "-");
            else if (json_is_string(v))
                snprintf(buf, n, "%s", json_string_value(v));
            else {
                char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(17));
                snprintf(buf, n, "%s", t ? t : "?");
                free(t);
            }
            return;
        }
        default: {
            double x = row_value(q, r, c->fig, c->ci);
            if (isnan(x))
                snprintf(buf, n, "%s", csv ? "" : "-");
            else if (c->integer && !c->ci && x == floor(x) && fabs(x) < 9e15)
                snprintf(buf, n, "%lld", (long long)x);
            else
                snprintf(buf, n, csv ? "%.15g" : "%.6g", x);
        }
    }
}

static void csv_put(const char *s) {
    if (strpbrk(s, ",\"\n") == NULL) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static int print_rows(const query *q, const qcol *cols, size_t n_cols, int csv) {
    size_t i, j, *w = sim_calloc(n_cols, sizeof *w);
    char buf[512];
    if (w == NULL)
        return RT_EXIT_RUNTIME;
    for (j = 0; j < n_cols; j++) {
        w[j] = strlen(cols[j].name);
        for (i = 0; !csv && i < q->n_rows; i++) {
            cell_text(q, &q->rows[i], &cols[j], 0, buf, sizeof buf);
            if (strlen(buf) > w[j])
                w[j] = strlen(buf);
        }
    }
    for (j = 0; j < n_cols; j++) {
        if (csv) {
            if (j)
                putchar(',');
            csv_put(cols[j].name);
        } else
            printf("%s%-*s", j ? "  " : "", j + 1 < n_cols ? (int)w[j] : 0, cols[j].name);
    }
    putchar('\n');
    for (i = 0; i < q->n_rows; i++) {
        for (j = 0; j < n_cols; j++) {
            cell_text(q, &q->rows[i], &cols[j], csv, buf, sizeof buf);
            if (csv) {
                if (j)
                    putchar(',');
                csv_put(buf);
            } else
                printf("%s%-*s", j ? "  " : "", j + 1 < n_cols ? (int)w[j] : 0, buf);
        }
        putchar('\n');
    }
    sim_free(w);
    return RT_EXIT_OK;
}

/* ---- the command ---- */

static void query_help(FILE *f) {
    fprintf(f,
            "usage: kvfleet query DB [--sweep ID] [--csv] [--columns A,B,...] [--all-columns]\n\n"
            "One row per point of a sweep (the latest, or --sweep ID) with its axis values and\n"
            "summary figures; with seeds > 1 the mean over replications and FIG_ci95, the\n"
            "half-width of its 95%% confidence interval. A file without sweeps: one row per\n"
            "done run. --columns also takes any option of the runs' stored config (model,\n"
            "gpu, tp, replicas, trace, ...). docs/experiments.md lists the columns.\n");
}

int rt_main_query(int argc, char **argv) {
    query q;
    const char *cols_arg = NULL;
    long long want = 0;
    int csv = 0, all = 0, i, rc;
    qcol *cols = NULL;
    size_t n_cols = 0, r;
    memset(&q, 0, sizeof q);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            query_help(stdout);
            return RT_EXIT_OK;
        } else if (strcmp(a, "--csv") == 0)
            csv = 1;
        else if (strcmp(a, "--all-columns") == 0)
            all = 1;
        else if (strcmp(a, "--columns") == 0 || strcmp(a, "--sweep") == 0) {
            if (!rt_has_value(argc, argv, i)) {
                fprintf(stderr, "kvfleet query: %s: expected a value, got nothing\n", a);
                return RT_EXIT_USAGE;
            }
            if (strcmp(a, "--columns") == 0)
                cols_arg = argv[++i];
            else {
                long long w;
                int prc;
                if ((prc = rt_parse_int(argv[++i], 1, INT64_MAX, &w)) != 0) {
                    fprintf(stderr,
                            "kvfleet query: --sweep: expected a positive sweep_id, got '%s'\n",
                            argv[i]);
                    return rt_value_exit(prc);
                }
                want = w;
            }
        } else if (strncmp(a, "--", 2) == 0 || q.path) {
            fprintf(stderr, "kvfleet query: unexpected argument '%s' (kvfleet query --help)\n", a);
            return RT_EXIT_USAGE;
        } else
            q.path = a;
    }
    if (q.path == NULL) {
        query_help(stderr);
        return RT_EXIT_USAGE;
    }
    if (cols_arg && all) {
        /* each well-formed, together a conflict: bad input, as in every command */
        fprintf(stderr, "kvfleet query: --columns, --all-columns: expected one, got both\n");
        return RT_EXIT_INPUT;
    }
    {
        sim_err err;
        int src;
        sim_err_clear(&err);
        if ((src = store_open_read(q.path, &q.db, &err)) != SIM_OK)
            return rt_report_err("query", &err, src);
    }
    if ((rc = load_figs(&q)) != RT_EXIT_OK)
        goto out;
    q.sweep_mode = store_has_table(q.db, "sweeps");
    if (q.sweep_mode) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(q.db, "SELECT count(*) FROM sweeps", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            q.sweep_mode = sqlite3_column_int64(st, 0) > 0;
        sqlite3_finalize(st);
    }
    if (!q.sweep_mode && want > 0) {
        fprintf(stderr, "kvfleet query: %s: --sweep: expected a file with sweeps, got none\n",
                q.path);
        rc = RT_EXIT_INPUT;
        goto out;
    }
    rc = q.sweep_mode ? load_sweep(&q, want) : load_runs(&q);
    if (rc != RT_EXIT_OK)
        goto out;
    if ((rc = pick_columns(&q, cols_arg, all, &cols, &n_cols)) != RT_EXIT_OK)
        goto out;
    rc = print_rows(&q, cols, n_cols, csv);
out:
    for (r = 0; r < q.n_rows; r++) {
        json_decref(q.rows[r].axes);
        json_decref(q.rows[r].cfg);
        sim_free(q.rows[r].vals);
    }
    sim_free(q.rows);
    sim_free(cols);
    json_decref(q.axes);
    if (q.db)
        sqlite3_close(q.db);
    return rc;
}
