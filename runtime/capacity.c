/* capacity.c: `kvfleet capacity` (see capacity.h, docs/capacity.md). */
#include "config.h"
#include "capacity.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "json_util.h"
#include "mem.h"
#include "plot.h"
#include "num.h"
#include "store.h"

/* ---- SLOs ---- */

typedef struct cap_fig {
    const char *name;
    size_t off; /* offsetof(met_summary, ...); (size_t)-1: the reject rate */
    int latency;
} cap_fig;

#define FIG(n)                                                                                     \
    { #n, offsetof(met_summary, n##_s), 1 }

static const cap_fig figs[] = {
    FIG(ttft_p50), FIG(ttft_p90),  FIG(ttft_p99),  FIG(tpot_p50),
    FIG(tpot_p90), FIG(tpot_p99),  FIG(e2e_p50),   FIG(e2e_p90),
    FIG(e2e_p99),  FIG(queue_p50), FIG(queue_p99), {"reject", (size_t)-1, 0},
};
#undef FIG
#define N_FIGS ((int)(sizeof figs / sizeof figs[0]))

/* A figure as a table cell: fmt (one double), or '-' right-aligned in
 * width when it is undefined (NaN). */
static void cell(char *buf, size_t n, const char *fmt, int width, double v) {
    if (isnan(v))
        snprintf(buf, n, "%*s", width, "-");
    else
        snprintf(buf, n, fmt, v);
}

static double fig_value(int f, const met_summary *s) {
    if (figs[f].off == (size_t)-1)
        return s->requests > 0 ? (double)s->rejected / (double)s->requests : NAN;
    return *(const double *)((const char *)s + figs[f].off);
}

int cap_slo_parse(const char *text, cap_slo_set *out, sim_err *err) {
    char buf[256], *save = NULL, *part;
    size_t used = 0;
    memset(out, 0, sizeof *out);
    if (text == NULL || strlen(text) >= sizeof buf || text[0] == '\0') {
        sim_err_set(err, "", 0, 0,
                    "--slo: expected FIGURE=LIMIT[,...] (e.g. ttft_p99=2s,tpot_p99=100ms,"
                    "reject=0.1%%), got '%s'",
                    text ? text : "");
        return SIM_EINVAL;
    }
    if (rt_list_has_empty(text)) {
        sim_err_set(err, "", 0, 0,
                    "--slo: expected FIGURE=LIMIT pairs separated by commas, got an empty "
                    "element in '%s'",
                    text);
        return SIM_EINVAL;
    }
    strcpy(buf, text);
    for (part = strtok_r(buf, ",", &save); part; part = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(part, '='), *end;
        double v, limit, unit_ns, scale = 1;
        int f, i;
        if (eq == NULL) {
            sim_err_set(err, "", 0, 0, "--slo: '%s': expected FIGURE=LIMIT", part);
            return SIM_EINVAL;
        }
        *eq = '\0';
        for (f = 0; f < N_FIGS; f++)
            if (strcmp(figs[f].name, part) == 0)
                break;
        if (f == N_FIGS) {
            sim_err_set(err, "", 0, 0,
                        "--slo: '%s': expected one of ttft_p50, ttft_p90, ttft_p99, tpot_p50, "
                        "tpot_p90, tpot_p99, e2e_p50, e2e_p90, e2e_p99, queue_p50, queue_p99, "
                        "reject",
                        part);
            return SIM_EINVAL;
        }
        errno = 0;
        v = sim_strtod(eq + 1, &end);
        if (end == eq + 1 || errno || !isfinite(v) || v < 0) {
            sim_err_set(err, "", 0, 0, "--slo: %s: expected a limit >= 0, got '%s'", part, eq + 1);
            return SIM_EINVAL;
        }
        if (figs[f].latency) {
            if ((unit_ns = sim_duration_unit_ns(end)) == 0) {
                sim_err_set(err, "", 0, 0,
                            "--slo: %s: expected a unit s, ms, us, ns, m or h, got '%s'", part,
                            end);
                return SIM_EINVAL;
            }
            limit = v * unit_ns / 1e9;
        } else {
            if (strcmp(end, "%") == 0)
                scale = 0.01;
            else if (*end != '\0') {
                sim_err_set(err, "", 0, 0,
                            "--slo: reject: expected a fraction or a percentage, got '%s'", eq + 1);
                return SIM_EINVAL;
            }
            if (v * scale > 1) {
                sim_err_set(err, "", 0, 0, "--slo: reject: expected at most 100%%, got '%s'",
                            eq + 1);
                return SIM_EINVAL;
            }
            limit = v * scale;
        }
        for (i = 0; i < out->n; i++)
            if (out->slo[i].field == f)
                break;
        if (i < out->n) { /* a second limit for a figure: which one holds is a guess */
            sim_err_set(err, "", 0, 0, "--slo: expected each figure once, got '%s' twice in '%s'",
                        part, text);
            return SIM_EINVAL;
        }
        if (out->n == CAP_MAX_SLOS) {
            sim_err_set(err, "", 0, 0, "--slo: at most %d figures in one set", CAP_MAX_SLOS);
            return SIM_EINVAL;
        }
        snprintf(out->slo[out->n].name, sizeof out->slo[out->n].name, "%s", part);
        out->slo[out->n].field = f;
        out->slo[out->n].limit = limit;
        used += (size_t)snprintf(out->text + used, sizeof out->text - used, "%s%s=%.6g%s",
                                 out->n ? "," : "", part, limit, figs[f].latency ? "s" : "");
        if (used >= sizeof out->text)
            used = sizeof out->text - 1;
        out->n++;
    }
    if (out->n == 0) {
        sim_err_set(err, "", 0, 0, "--slo: expected at least one FIGURE=LIMIT");
        return SIM_EINVAL;
    }
    return SIM_OK;
}

/* Whether two sets hold the same limits, in any order (a figure appears
 * at most once in a set). */
static int slo_set_same(const cap_slo_set *a, const cap_slo_set *b) {
    int i, j;
    if (a->n != b->n)
        return 0;
    for (i = 0; i < a->n; i++) {
        for (j = 0; j < b->n; j++)
            if (b->slo[j].field == a->slo[i].field && b->slo[j].limit == a->slo[i].limit)
                break;
        if (j == b->n)
            return 0;
    }
    return 1;
}

/* Whether figure f is a TPOT quantile. */
static int fig_is_tpot(int f) {
    return strncmp(figs[f].name, "tpot_", 5) == 0;
}

int cap_slo_met(const cap_slo_set *s, const met_summary *sum) {
    int i;
    for (i = 0; i < s->n; i++) {
        int f = s->slo[i].field;
        double v = fig_value(f, sum);
        /* a TPOT quantile is undefined when no completed request has two
         * output tokens; a request with one meets a TPOT SLO (as goodput
         * counts it, docs/metrics.md), so with any request completed the
         * SLO holds; rejections are the reject SLO's business */
        if (isnan(v) && fig_is_tpot(f) && sum->completed > 0)
            continue;
        if (!(v <= s->slo[i].limit)) /* NaN misses */
            return 0;
    }
    return 1;
}

/* ---- the search ---- */

typedef struct cap_point {
    double load;
    int tp, replicas;
    int64_t run_id;
    met_summary sum;
    int ok; /* the run succeeded */
} cap_point;

typedef struct cap_state {
    json_t *base; /* resolved run config */
    const char *command;
    cap_point *pts; /* every point run so far; eval() may move it (keep indices) */
    int n_pts, cap_pts;
    sqlite3 *db;
    int64_t search_id;
    int quiet;
    int n_slo;
    int pp; /* pipeline stages per replica (GPUs = replicas x tp x pp) */
    cap_slo_set *slo;
    sim_err err;
    int rc;           /* first hard failure */
    int ended;        /* the search's record says done or failed */
    char db_err[300]; /* the first row of the search's tables that could not be written */
} cap_state;

/* Notes that a row of the search's tables could not be written (what, and
 * SQLite's message): said on stderr at once, and the search ends failed,
 * exit 3, as any database failure, instead of exit 0 with rows missing. */
static void db_row_fail(cap_state *S, const char *table) {
    fprintf(stderr, "kvfleet capacity: %s: SQLite: %s\n", table, sqlite3_errmsg(S->db));
    if (S->db_err[0] == '\0')
        snprintf(S->db_err, sizeof S->db_err, "cannot record the search (table %s): %s", table,
                 sqlite3_errmsg(S->db));
}

static int db_exec(sqlite3 *db, const char *sql) {
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "kvfleet capacity: SQLite: %s\n", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
    }
    return rc;
}

static const char *schema_sql =
    "CREATE TABLE IF NOT EXISTS capacity_searches(search_id INTEGER PRIMARY KEY, created_at TEXT,"
    " command TEXT, slo TEXT, config TEXT, status TEXT, error TEXT);"
    "CREATE TABLE IF NOT EXISTS capacity_points(search_id INTEGER, load_scale REAL, tp INTEGER,"
    " replicas INTEGER, gpus INTEGER, run_id INTEGER, offered_rps REAL, ttft_p99_s REAL,"
    " tpot_p99_s REAL, reject_rate REAL, meets TEXT);"
    "CREATE TABLE IF NOT EXISTS capacity(search_id INTEGER, slo TEXT, load_scale REAL,"
    " offered_rps REAL, tp INTEGER, replicas INTEGER, gpus INTEGER, run_id INTEGER);"
    "CREATE TABLE IF NOT EXISTS capacity_by_tp(search_id INTEGER, slo TEXT, load_scale REAL,"
    " tp INTEGER, replicas INTEGER, gpus INTEGER, run_id INTEGER, found INTEGER, reason TEXT);";

/* Adds a column that a file made by an earlier kvfleet lacks; SQLITE_OK
 * when the table has it (or now has it). */
static int db_column(sqlite3 *db, const char *table, const char *col, const char *type) {
    char sql[160];
    sqlite3_stmt *st;
    snprintf(sql, sizeof sql, "SELECT %s FROM %s LIMIT 0", col, table);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        sqlite3_finalize(st);
        return SQLITE_OK;
    }
    snprintf(sql, sizeof sql, "ALTER TABLE %s ADD COLUMN %s %s", table, col, type);
    return db_exec(db, sql);
}

/* Ends the search's record: status 'done', or 'failed' with the error
 * (error NULL: done). Every path that recorded a search ends it. */
static void db_end(cap_state *S, const char *error) {
    sqlite3_stmt *st;
    if (S->db == NULL || S->search_id <= 0 || S->ended)
        return;
    if (sqlite3_prepare_v2(S->db,
                           "UPDATE capacity_searches SET status = ?, error = ? WHERE search_id = ?",
                           -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "kvfleet capacity: SQLite: %s\n", sqlite3_errmsg(S->db));
        return;
    }
    sqlite3_bind_text(st, 1, error ? "failed" : "done", -1, SQLITE_STATIC);
    if (error)
        sqlite3_bind_text(st, 2, error, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, 2);
    sqlite3_bind_int64(st, 3, S->search_id);
    if (sqlite3_step(st) != SQLITE_DONE)
        fprintf(stderr, "kvfleet capacity: SQLite: %s\n", sqlite3_errmsg(S->db));
    sqlite3_finalize(st);
    S->ended = 1;
}

static void bind_real_or_null(sqlite3_stmt *st, int i, double v) {
    if (isfinite(v))
        sqlite3_bind_double(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

/* Records a point (one transaction: the point row). */
static void db_point(cap_state *S, const cap_point *p) {
    sqlite3_stmt *st;
    char meets[64];
    size_t used = 0;
    int i;
    if (S->db == NULL)
        return;
    meets[used++] = '[';
    for (i = 0; i < S->n_slo && used + 4 < sizeof meets; i++)
        used += (size_t)snprintf(meets + used, sizeof meets - used, "%s%d", i ? "," : "",
                                 p->ok && cap_slo_met(&S->slo[i], &p->sum));
    snprintf(meets + used, sizeof meets - used, "]");
    if (sqlite3_prepare_v2(S->db, "INSERT INTO capacity_points VALUES(?,?,?,?,?,?,?,?,?,?,?)", -1,
                           &st, NULL) != SQLITE_OK) {
        db_row_fail(S, "capacity_points");
        return;
    }
    sqlite3_bind_int64(st, 1, S->search_id);
    sqlite3_bind_double(st, 2, p->load);
    sqlite3_bind_int(st, 3, p->tp);
    sqlite3_bind_int(st, 4, p->replicas);
    sqlite3_bind_int64(st, 5, (int64_t)p->replicas * p->tp * S->pp);
    if (p->run_id > 0)
        sqlite3_bind_int64(st, 6, p->run_id);
    else
        sqlite3_bind_null(st, 6);
    bind_real_or_null(st, 7, p->ok ? p->sum.offered_rps : NAN);
    bind_real_or_null(st, 8, p->ok ? p->sum.ttft_p99_s : NAN);
    bind_real_or_null(st, 9, p->ok ? p->sum.tpot_p99_s : NAN);
    bind_real_or_null(st, 10, p->ok ? fig_value(N_FIGS - 1, &p->sum) : NAN);
    sqlite3_bind_text(st, 11, meets, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) != SQLITE_DONE)
        db_row_fail(S, "capacity_points");
    sqlite3_finalize(st);
}

/* Runs (or finds) the point (load, tp, replicas) and returns its index in
 * S->pts, or -1 on a hard failure (S->rc and S->err say why). A new point
 * may reallocate S->pts, which invalidates every pointer into it: callers
 * hold indices across calls, and pointers only until the next eval(). */
static int eval(cap_state *S, double load, int tp, int replicas) {
    int i;
    cap_point *p;
    json_t *cfg, *info = NULL;
    sim_err err;
    int rc;
    for (i = 0; i < S->n_pts; i++)
        if (S->pts[i].load == load && S->pts[i].tp == tp && S->pts[i].replicas == replicas)
            return i;
    if (S->n_pts == S->cap_pts) {
        int ncap = S->cap_pts ? 2 * S->cap_pts : 32;
        cap_point *np = sim_realloc(S->pts, (size_t)ncap * sizeof *np);
        if (np == NULL) {
            S->rc = SIM_ENOMEM;
            return -1;
        }
        S->pts = np;
        S->cap_pts = ncap;
    }
    p = &S->pts[S->n_pts];
    memset(p, 0, sizeof *p);
    p->load = load;
    p->tp = tp;
    p->replicas = replicas;
    cfg = json_deep_copy(S->base);
    json_object_set_new(cfg, "load-scale", json_real(load));
    json_object_set_new(cfg, "tp", json_integer(tp));
    json_object_set_new(cfg, "replicas", json_integer(replicas));
    sim_err_clear(&err);
    rc = rt_run_exec(cfg, "capacity-point", S->command, &p->sum, &info, &err);
    json_decref(cfg);
    if (rc == SIM_OK) {
        p->ok = 1;
        p->run_id = json_integer_value(json_object_get(info, "run_id"));
        json_decref(info);
    } else { /* the caller tells a TP that cannot serve at all from a failure */
        S->err = err;
        S->rc = rc;
        return -1;
    }
    S->n_pts++;
    db_point(S, p);
    if (!S->quiet) {
        char line[300];
        size_t used = 0;
        for (i = 0; i < S->n_slo; i++)
            used += (size_t)snprintf(line + used, sizeof line - used, "%s%s", i ? " " : "",
                                     cap_slo_met(&S->slo[i], &p->sum) ? "meets" : "misses");
        char ttft[16], tpot[16];
        cell(ttft, sizeof ttft, "%.3f s", 0, p->sum.ttft_p99_s);
        cell(tpot, sizeof tpot, "%.4f s", 0, p->sum.tpot_p99_s);
        fprintf(stderr,
                "kvfleet capacity: load x%g TP%d %d replica%s: TTFT p99 %s, TPOT p99 %s, "
                "rejected %.3f%%: %s\n",
                load, tp, replicas, replicas == 1 ? "" : "s", ttft, tpot,
                100.0 * fig_value(N_FIGS - 1, &p->sum), line);
    }
    return S->n_pts - 1;
}

/* Whether a point's failure belongs to its TP degree alone: the model does
 * not fit, or this degree cannot split it (sim_model_check and perf_ctx_init
 * return SIM_EINFEASIBLE for both), so that other degrees may still answer.
 * Any other failure is bad input that every point shares. */
static int fail_is_tp(int status) {
    return status == SIM_EINFEASIBLE;
}

/* The exit code of a failure that is not a TP's own: bad input (an option
 * value, or the file one names) is 2, because capacity's 1 means that no
 * size meets an SLO set (docs/cli.md); the rest is a runtime failure (3). */
static int fail_exit(int status) {
    return rt_exit_code(status) == RT_EXIT_INPUT ? RT_EXIT_USAGE : rt_exit_code(status);
}

/* Sizes below an answer that the search tries before it stops: it stops
 * after this many consecutive sizes miss (or at 1 replica). */
#define CAP_SCAN_MISSES 8

/* A replica count meeting SLO set k at (load, tp): 0 when none up to max_r
 * does, -1 on a hard failure. Bracketing (1, 2, 4, ...) and bisection
 * find a size that meets with a smaller one that misses; as more replicas
 * need not help (a router can do worse with more choices, a session router
 * scatters conversations), a downward scan then tries every size below the
 * answer, taking each that meets as the new answer, until CAP_SCAN_MISSES
 * sizes in a row miss or 1 replica is reached. The answer meets, and so
 * does none of the CAP_SCAN_MISSES sizes just below it (all of them, when
 * fewer): a smaller size further down may still meet. The scan costs at
 * most CAP_SCAN_MISSES simulations beyond the last size that met (fewer:
 * points are shared). */
static int search(cap_state *S, int k, double load, int tp, int max_r) {
    int lo = 0, hi = 1, p;
    for (;;) { /* bracket: lo misses (0 serves nothing), hi is tried */
        if ((p = eval(S, load, tp, hi)) < 0)
            return -1;
        if (cap_slo_met(&S->slo[k], &S->pts[p].sum))
            break;
        lo = hi;
        if (hi >= max_r)
            return 0;
        hi = hi * 2 > max_r ? max_r : hi * 2;
    }
    while (hi - lo > 1) { /* bisect (lo, hi] */
        int mid = lo + (hi - lo) / 2;
        if ((p = eval(S, load, tp, mid)) < 0)
            return -1;
        if (cap_slo_met(&S->slo[k], &S->pts[p].sum))
            hi = mid;
        else
            lo = mid;
    }
    { /* scan down past misses, a bounded run of them */
        int r, misses = 0;
        for (r = hi - 1; r >= 1 && misses < CAP_SCAN_MISSES; r--) {
            if ((p = eval(S, load, tp, r)) < 0)
                return -1;
            if (cap_slo_met(&S->slo[k], &S->pts[p].sum)) {
                hi = r;
                misses = 0;
            } else
                misses++;
        }
    }
    return hi;
}

static int parse_list(const char *text, double *out, int max, int integer) {
    char buf[512], *save = NULL, *t;
    int n = 0;
    if (strlen(text) >= sizeof buf)
        return -1;
    strcpy(buf, text);
    for (t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        double v = sim_strtod(t, &end);
        /* an integer list is read into ints: 2147483648 is refused here,
         * not converted (undefined) into a negative TP */
        if (end == t || *end || !(v > 0) || !isfinite(v) || n == max ||
            (integer && (v != floor(v) || v > INT_MAX)))
            return -1;
        out[n++] = v;
    }
    return n;
}

/* Element k (0-based) of the comma-separated list text, into buf. */
static const char *list_elem(const char *text, int k, char *buf, size_t size) {
    const char *p = text, *end;
    for (; k > 0; k--)
        p = strchr(p, ',') + 1;
    end = strchr(p, ',');
    snprintf(buf, size, "%.*s", (int)(end ? (size_t)(end - p) : strlen(p)), p);
    return buf;
}

/* 1 after saying so on stderr when two of the n values that parse_list
 * read from option opt's value text are equal ("1,2,2", "1,1.0"): each
 * would be searched and stored twice, one row per copy. */
static int list_repeat(const char *opt, const char *text, const double *vals, int n) {
    char a[64], b[64];
    int i, j;
    for (j = 1; j < n; j++)
        for (i = 0; i < j; i++) {
            if (vals[i] != vals[j])
                continue;
            list_elem(text, i, a, sizeof a);
            list_elem(text, j, b, sizeof b);
            if (strcmp(a, b) == 0)
                fprintf(stderr,
                        "kvfleet capacity: %s: expected distinct values, got '%s' twice in "
                        "'%s'\n",
                        opt, b, text);
            else
                fprintf(stderr,
                        "kvfleet capacity: %s: expected distinct values, got '%s' and '%s' "
                        "(the same value) in '%s'\n",
                        opt, a, b, text);
            return 1;
        }
    return 0;
}

/* parse_list for option opt's value v, saying on stderr what is wrong
 * (an empty element, or a malformed or out-of-range one): the count, or
 * -1 after the message. */
static int list_option(const char *opt, const char *v, double *out, int max, int integer) {
    const char *each = integer ? "integers >= 1" : "numbers > 0";
    int n;
    if (rt_list_has_empty(v)) {
        fprintf(stderr,
                "kvfleet capacity: %s: expected %s separated by commas, got an empty element in "
                "'%s'\n",
                opt, each, v);
        return -1;
    }
    if ((n = parse_list(v, out, max, integer)) <= 0) {
        fprintf(stderr, "kvfleet capacity: %s: expected a list of %s%s, got '%s'\n", opt, each,
                integer ? " such as 1,2,4,8" : "", v);
        return n;
    }
    if (list_repeat(opt, v, out, n))
        return -1;
    return n;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: kvfleet capacity --slo FIGURE=LIMIT[,...] [--slo ...] [--tp 1,2,4,8]\n"
            "                        [--load-scale X[,Y...]] [--max-replicas N] [--plot FILE]\n"
            "                        [--json] [--quiet] [RUN OPTIONS]\n"
            "Finds the smallest fleet (replicas, GPUs, and the best TP) that meets every SLO, by\n"
            "bracketing, bisection and a downward scan over the replica count, each point a\n"
            "full simulation.\n"
            "  --slo S           e.g. ttft_p99=2s,tpot_p99=100ms,reject=0.1%% (repeat for several "
            "sets)\n"
            "  --tp LIST         TP degrees to try (default: the run's --tp)\n"
            "  --load-scale LIST loads to size for (default: the run's --load-scale)\n"
            "  --max-replicas N  give up above N replicas (default 1024)\n"
            "  --plot FILE       the curve (PNG or SVG) with gnuplot (default: none; a missing\n"
            "                    gnuplot is a warning)\n"
            "Every `kvfleet run` option applies to every point (docs/cli.md); points and answers\n"
            "go to --db (docs/capacity.md).\n");
}

static void now_iso(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tmv;
    gmtime_r(&t, &tmv);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tmv);
}

/* Draws the search's curve with `kvfleet plot --kind capacity`; returns its exit code. */
static int capacity_plot(const char *db, int64_t search_id, const char *out) {
    char id[32];
    /* quiet: capacity says where the figure is itself (unless --quiet) */
    char *av[] = {"plot", (char *)db, "--kind",    "capacity", "--sweep",
                  id,     "-o",       (char *)out, "--quiet",  NULL};
    snprintf(id, sizeof id, "%lld", (long long)search_id);
    return rt_main_plot(9, av);
}

int rt_main_capacity(int argc, char **argv) {
    cap_state S;
    cap_slo_set slos[8];
    const char *slo_args[8]; /* each --slo as given */
    double loads[32], tps_d[16];
    int n_loads = 0, n_tps = 0, max_r = 1024, json = 0, i, j, k, rc, exit_rc = 0, head = 0;
    const char *plot = NULL;
    int none_found = 0; /* some SLO set has no answer (exit 1) */
    char **pass = calloc((size_t)argc + 1, sizeof *pass);
    int n_pass = 0;
    json_t *cfg = NULL, *out = NULL, *answers;
    sim_err err;
    char *command = NULL;
    int steps_given = 0;
    char fail_msg[SIM_ERR_TEXT_MAX] = ""; /* why the search stopped early */
    char tp_bad[16][SIM_ERR_TEXT_MAX];    /* per --tp entry: why it cannot run ("": it can) */
    const char *once[4][2];               /* capacity's options given once: name, value */
    int n_once = 0;

    memset(&S, 0, sizeof S);
    memset(tp_bad, 0, sizeof tp_bad);
    sim_err_clear(&err);
    if (pass == NULL)
        return RT_EXIT_RUNTIME;
    pass[n_pass++] = argv[0];
    command = rt_join_argv(argc, argv);
    if (command == NULL) {
        free(pass);
        return RT_EXIT_RUNTIME;
    }
    S.slo = slos;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = rt_has_value(argc, argv, i) ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            goto done;
        }
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        if (strcmp(a, "--quiet") == 0) {
            S.quiet = 1;
            continue;
        }
        if (strcmp(a, "--slo") == 0 || strcmp(a, "--tp") == 0 || strcmp(a, "--load-scale") == 0 ||
            strcmp(a, "--max-replicas") == 0 || strcmp(a, "--plot") == 0) {
            if (v == NULL) {
                fprintf(stderr, "kvfleet capacity: %s: expected a value\n", a);
                exit_rc = RT_EXIT_USAGE;
                goto done;
            }
            i++;
            if (strcmp(a, "--slo") != 0) { /* --slo repeats; the others are given once */
                for (j = 0; j < n_once && strcmp(once[j][0], a) != 0; j++)
                    ;
                if (j < n_once) {
                    fprintf(stderr, "kvfleet capacity: %s: expected once, got '%s' and '%s'%s\n", a,
                            once[j][1], v,
                            strcmp(a, "--tp") == 0 || strcmp(a, "--load-scale") == 0
                                ? " (list them in one, comma-separated)"
                                : "");
                    exit_rc = RT_EXIT_USAGE;
                    goto done;
                }
                once[n_once][0] = a;
                once[n_once++][1] = v;
            }
            if (strcmp(a, "--slo") == 0) {
                if (S.n_slo == 8) {
                    fprintf(stderr, "kvfleet capacity: --slo: at most 8 sets\n");
                    exit_rc = RT_EXIT_USAGE;
                    goto done;
                }
                if (cap_slo_parse(v, &slos[S.n_slo], &err) != SIM_OK) {
                    fprintf(stderr, "kvfleet capacity: %s\n", err.msg);
                    exit_rc = RT_EXIT_USAGE; /* a malformed option value */
                    goto done;
                }
                for (j = 0; j < S.n_slo; j++)
                    if (slo_set_same(&slos[j], &slos[S.n_slo]))
                        break;
                if (j < S.n_slo) { /* the same set twice: its answers twice over */
                    if (strcmp(slo_args[j], v) == 0)
                        fprintf(stderr,
                                "kvfleet capacity: --slo: expected distinct sets, got '%s' "
                                "twice\n",
                                v);
                    else
                        fprintf(stderr,
                                "kvfleet capacity: --slo: expected distinct sets, got '%s' and "
                                "'%s' (the same set)\n",
                                slo_args[j], v);
                    exit_rc = RT_EXIT_USAGE; /* a malformed option value */
                    goto done;
                }
                slo_args[S.n_slo++] = v;
            } else if (strcmp(a, "--tp") == 0) {
                if ((n_tps = list_option("--tp", v, tps_d, 16, 1)) <= 0) {
                    exit_rc = RT_EXIT_USAGE; /* a malformed option value */
                    goto done;
                }
            } else if (strcmp(a, "--load-scale") == 0) {
                if ((n_loads = list_option("--load-scale", v, loads, 32, 0)) <= 0) {
                    exit_rc = RT_EXIT_USAGE; /* a malformed option value */
                    goto done;
                }
            } else if (strcmp(a, "--max-replicas") == 0) {
                long long m;
                if (rt_parse_int(v, 1, 100000, &m) != 0) {
                    fprintf(stderr,
                            "kvfleet capacity: --max-replicas: expected 1..100000, got '%s'\n", v);
                    exit_rc = RT_EXIT_USAGE; /* a malformed option value */
                    goto done;
                }
                max_r = (int)m;
            } else {
                /* checked here, not by plot after the whole search: a bad
                 * name or folder is a bad option value (2) like a bad --db */
                if (rt_plot_check_output("capacity", "--plot", v) != 0) {
                    exit_rc = RT_EXIT_USAGE;
                    goto done;
                }
                plot = v;
            }
            continue;
        }
        pass[n_pass++] = argv[i];
    }
    if (S.n_slo == 0) {
        fprintf(stderr, "kvfleet capacity: --slo: expected at least one SLO set\n");
        usage(stderr);
        exit_rc = RT_EXIT_USAGE;
        goto done;
    }
    if ((rc = rt_run_args(n_pass - 1, pass + 1, NULL, &cfg, &err)) != SIM_OK) {
        fprintf(stderr, "kvfleet capacity: %s\n", err.msg);
        exit_rc = RT_EXIT_USAGE;
        goto done;
    }
    /* before defaults are filled in, cfg holds exactly the options given */
    steps_given = json_object_get(cfg, "steps-sample") != NULL;
    if (json_object_get(cfg, "replicas")) {
        fprintf(stderr, "kvfleet capacity: --replicas: capacity searches the replica count "
                        "itself; bound it with --max-replicas\n");
        exit_rc = RT_EXIT_USAGE; /* an option capacity cannot use (it was ignored) */
        goto done;
    }
    if (json_object_get(cfg, "fleet")) {
        fprintf(stderr, "kvfleet capacity: --fleet: sizes one pool; size a fleet's pools with a "
                        "sweep (docs/experiments.md)\n");
        exit_rc = RT_EXIT_USAGE; /* an option capacity cannot use */
        goto done;
    }
    if ((rc = rt_run_resolve(cfg, &err)) != SIM_OK) {
        (void)rt_report_err("capacity", &err, rc);
        exit_rc = fail_exit(rc); /* --model nope, --gpu nope, ... */
        goto done;
    }
    if (plot) { /* the figure is drawn from the stored search: refused now, not after it */
        const char *dbp = json_string_value(json_object_get(cfg, "db"));
        if (dbp == NULL || dbp[0] == '\0') {
            fprintf(stderr, "kvfleet capacity: --plot: expected a results file to draw from "
                            "(--db FILE), got --no-db\n");
            exit_rc = RT_EXIT_USAGE; /* two options capacity cannot use together */
            goto done;
        }
    }
    if (n_loads == 0)
        loads[n_loads++] = json_number_value(json_object_get(cfg, "load-scale"));
    if (n_tps == 0)
        tps_d[n_tps++] = (double)json_integer_value(json_object_get(cfg, "tp"));
    S.pp = (int)json_integer_value(json_object_get(cfg, "pp"));
    if (S.pp < 1)
        S.pp = 1;
    /* points keep request rows but not every step, unless asked */
    if (!steps_given)
        json_object_set_new(cfg, "steps-sample", json_integer(0));
    S.base = cfg;
    S.command = command;
    {
        const char *dbp = json_string_value(json_object_get(cfg, "db"));
        /* the run store creates the file's schema first; a file it refuses
         * (not SQLite, corrupt, a folder, a newer schema) is a bad --db,
         * refused as every bad option value is (2), not found by the raw
         * open below as a database failure (3) */
        if (dbp && dbp[0]) {
            char created[32], *cfg_text, *sl_text;
            json_t *sl;
            sqlite3_stmt *st;
            store *chk = NULL;
            if ((rc = store_open(dbp, &chk, &err)) != SIM_OK) {
                (void)rt_report_err("capacity", &err, rc);
                exit_rc = fail_exit(rc);
                goto done;
            }
            store_close(chk);
            cfg_text = json_dumps(cfg, JSON_SORT_KEYS | JSON_COMPACT);
            sl = json_array();
            for (k = 0; k < S.n_slo; k++)
                json_array_append_new(sl, json_string(slos[k].text));
            sl_text = json_dumps(sl, JSON_COMPACT);
            json_decref(sl);
            now_iso(created, sizeof created);
            if (sqlite3_open(dbp, &S.db) != SQLITE_OK || db_exec(S.db, schema_sql) != SQLITE_OK ||
                db_column(S.db, "capacity_searches", "error", "TEXT") != SQLITE_OK ||
                db_column(S.db, "capacity_by_tp", "reason", "TEXT") != SQLITE_OK ||
                sqlite3_prepare_v2(S.db,
                                   "INSERT INTO capacity_searches(created_at, command, slo, config,"
                                   " status) VALUES(?,?,?,?,'running')",
                                   -1, &st, NULL) != SQLITE_OK) {
                fprintf(stderr, "kvfleet capacity: %s: cannot record the search: %s\n", dbp,
                        S.db ? sqlite3_errmsg(S.db) : "out of memory");
                free(cfg_text);
                free(sl_text);
                exit_rc = RT_EXIT_RUNTIME;
                goto done;
            }
            sqlite3_busy_timeout(S.db, 5000);
            sqlite3_bind_text(st, 1, created, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 2, command, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 3, sl_text, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 4, cfg_text, -1, SQLITE_TRANSIENT);
            rc = sqlite3_step(st);
            sqlite3_finalize(st);
            free(cfg_text);
            free(sl_text);
            if (rc != SQLITE_DONE) {
                fprintf(stderr, "kvfleet capacity: %s: %s\n", dbp, sqlite3_errmsg(S.db));
                exit_rc = RT_EXIT_RUNTIME;
                goto done;
            }
            S.search_id = sqlite3_last_insert_rowid(S.db);
        }
    }

    /* search every (SLO set, load, TP); points are shared between SLO sets */
    out = json_object();
    answers = json_array();
    json_object_set_new(out, "answers", answers);
    for (k = 0; k < S.n_slo; k++)
        for (j = 0; j < n_loads; j++) {
            int best_tp = 0, best_r = 0, best = -1; /* best: index into S.pts */
            int64_t best_gpus = 0;
            for (i = 0; i < n_tps; i++) {
                int tp = (int)tps_d[i];
                int r = tp_bad[i][0] != '\0' ? 0 : search(&S, k, loads[j], tp, max_r);
                int pi = -1;
                const cap_point *p = NULL; /* valid until the next eval() */
                if (r > 0 && (pi = eval(&S, loads[j], tp, r)) >= 0)
                    p = &S.pts[pi];
                if (r < 0 || (r > 0 && p == NULL)) {
                    sim_err_format(&S.err, fail_msg, sizeof fail_msg);
                    if (!fail_is_tp(S.rc)) {
                        fprintf(stderr, "kvfleet capacity: %s\n", fail_msg);
                        exit_rc = fail_exit(S.rc);
                        goto done;
                    }
                    /* this TP cannot run here: say so once, record it, go on */
                    snprintf(tp_bad[i], sizeof tp_bad[i], "%s", fail_msg);
                    fail_msg[0] = '\0';
                    fprintf(stderr, "kvfleet capacity: TP%d: %s\n", tp, tp_bad[i]);
                    S.rc = SIM_OK;
                    r = 0;
                }
                if (S.db) {
                    sqlite3_stmt *st;
                    if (sqlite3_prepare_v2(S.db,
                                           "INSERT INTO capacity_by_tp(search_id, slo, load_scale,"
                                           " tp, replicas, gpus, run_id, found, reason)"
                                           " VALUES(?,?,?,?,?,?,?,?,?)",
                                           -1, &st, NULL) == SQLITE_OK) {
                        sqlite3_bind_int64(st, 1, S.search_id);
                        sqlite3_bind_text(st, 2, slos[k].text, -1, SQLITE_TRANSIENT);
                        sqlite3_bind_double(st, 3, loads[j]);
                        sqlite3_bind_int(st, 4, tp);
                        if (r > 0) {
                            sqlite3_bind_int(st, 5, r);
                            sqlite3_bind_int64(st, 6, (int64_t)r * tp * S.pp);
                            sqlite3_bind_int64(st, 7, p->run_id);
                        }
                        sqlite3_bind_int(st, 8, r > 0);
                        if (tp_bad[i][0] != '\0')
                            sqlite3_bind_text(st, 9, tp_bad[i], -1, SQLITE_TRANSIENT);
                        if (sqlite3_step(st) != SQLITE_DONE)
                            db_row_fail(&S, "capacity_by_tp");
                        sqlite3_finalize(st);
                    } else
                        db_row_fail(&S, "capacity_by_tp");
                }
                if (r > 0 && (best < 0 || (int64_t)r * tp * S.pp < best_gpus)) {
                    best = pi;
                    best_tp = tp;
                    best_r = r;
                    best_gpus = (int64_t)r * tp * S.pp;
                }
                if (!json) {
                    char tpot[16], ttft[16], offered[16];
                    if (!head) { /* with the first row: a run option refused first prints none */
                        printf("%-44s %8s %10s %4s %9s %6s %10s %10s %8s\n", "SLO", "load",
                               "offered/s", "TP", "replicas", "GPUs", "TTFT p99", "TPOT p99",
                               "reject");
                        head = 1;
                    }
                    /* an undefined figure (no request completed, of two tokens, or
                     * one request: no span) is '-', as null in JSON */
                    if (r > 0) {
                        cell(tpot, sizeof tpot, "%9.4fs", 10, p->sum.tpot_p99_s);
                        cell(ttft, sizeof ttft, "%9.3fs", 10, p->sum.ttft_p99_s);
                        cell(offered, sizeof offered, "%10.3f", 10, p->sum.offered_rps);
                        printf("%-44s %8g %s %4d %9d %6lld %s %s %7.3f%%\n", slos[k].text, loads[j],
                               offered, tp, r, (long long)r * tp * S.pp, ttft, tpot,
                               100.0 * fig_value(N_FIGS - 1, &p->sum));
                    } else if (tp_bad[i][0] != '\0')
                        printf("%-44s %8g %10s %4d   cannot run (TP%d: see above)\n", slos[k].text,
                               loads[j], "", tp, tp);
                    else
                        printf("%-44s %8g %10s %4d   none up to %d replica%s\n", slos[k].text,
                               loads[j], "", tp, max_r, max_r == 1 ? "" : "s");
                }
            }
            {
                json_t *a = json_object();
                /* the verification: one replica fewer misses (the search ran
                 * that point; looked up first, as eval() may move S.pts) */
                int fewer = best >= 0 && best_r > 1 ? eval(&S, loads[j], best_tp, best_r - 1) : -1;
                const cap_point *bp = best >= 0 ? &S.pts[best] : NULL;
                json_object_set_new(a, "slo", json_string(slos[k].text));
                json_object_set_new(a, "load_scale", sim_json_real_or_null(loads[j]));
                /* the same keys found or not: undefined figures are null */
                json_object_set_new(a, "replicas", bp ? json_integer(best_r) : json_null());
                json_object_set_new(a, "gpus", bp ? json_integer(best_gpus) : json_null());
                json_object_set_new(a, "tp", bp ? json_integer(best_tp) : json_null());
                /* no run stored with --no-db: no id (0 named none) */
                json_object_set_new(a, "run_id",
                                    bp && bp->run_id > 0 ? json_integer(bp->run_id) : json_null());
                json_object_set_new(a, "offered_rps",
                                    sim_json_real_or_null(bp ? bp->sum.offered_rps : NAN));
                for (i = 0; i < N_FIGS; i++) {
                    char key[48];
                    snprintf(key, sizeof key, "%s%s", figs[i].name,
                             figs[i].latency ? "_s" : "_rate");
                    json_object_set_new(a, key,
                                        sim_json_real_or_null(bp ? fig_value(i, &bp->sum) : NAN));
                }
                if (bp && best_r > 1)
                    json_object_set_new(
                        a, "one_fewer_meets",
                        json_boolean(fewer >= 0 && cap_slo_met(&slos[k], &S.pts[fewer].sum)));
                else /* one replica (no smaller fleet to try), or no answer */
                    json_object_set_new(a, "one_fewer_meets", json_null());
                json_array_append_new(answers, a);
                if (S.db) {
                    sqlite3_stmt *st;
                    if (sqlite3_prepare_v2(S.db, "INSERT INTO capacity VALUES(?,?,?,?,?,?,?,?)", -1,
                                           &st, NULL) == SQLITE_OK) {
                        sqlite3_bind_int64(st, 1, S.search_id);
                        sqlite3_bind_text(st, 2, slos[k].text, -1, SQLITE_TRANSIENT);
                        sqlite3_bind_double(st, 3, loads[j]);
                        if (bp) {
                            bind_real_or_null(st, 4, bp->sum.offered_rps);
                            sqlite3_bind_int(st, 5, best_tp);
                            sqlite3_bind_int(st, 6, best_r);
                            sqlite3_bind_int64(st, 7, best_gpus);
                            sqlite3_bind_int64(st, 8, bp->run_id);
                        }
                        if (sqlite3_step(st) != SQLITE_DONE)
                            db_row_fail(&S, "capacity");
                        sqlite3_finalize(st);
                    } else
                        db_row_fail(&S, "capacity");
                }
                if (bp == NULL)
                    exit_rc = exit_rc ? exit_rc : RT_EXIT_INPUT; /* no size meets */
            }
        }
    /* the first answer's figures at top level: the simple case reads them directly */
    {
        json_t *a0 = json_array_get(answers, 0);
        const char *key;
        json_t *v;
        json_object_foreach(a0, key, v) {
            json_object_set(out, key, v);
        }
        json_object_set_new(out, "points", json_integer(S.n_pts));
        /* no search record without a database: no id (0 named none) */
        json_object_set_new(out, "search_id", S.db ? json_integer(S.search_id) : json_null());
    }
    none_found = exit_rc != RT_EXIT_OK;
    if (S.db_err[0] != '\0') { /* the answers are printed; the file lacks some rows */
        db_end(&S, S.db_err);
        exit_rc = RT_EXIT_RUNTIME;
    } else
        db_end(&S, NULL);
    if (json) {
        char *t = json_dumps(out, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        if (t)
            printf("%s\n", t);
        free(t);
    } else
        printf("%d simulations%s\n", S.n_pts,
               none_found ? "; no size up to --max-replicas meets some SLO set" : "");
    if (plot) {
        const char *dbp = json_string_value(json_object_get(cfg, "db"));
        if (dbp == NULL || dbp[0] == '\0')
            fprintf(stderr, "kvfleet capacity: warning: --plot needs a --db; no figure drawn\n");
        else {
            if (S.db) {
                sqlite3_close(S.db);
                S.db = NULL;
            }
            if (capacity_plot(dbp, S.search_id, plot) != 0)
                fprintf(stderr,
                        "kvfleet capacity: warning: no figure drawn (the message above "
                        "says why); the answers are in %s\n",
                        dbp);
            else if (!S.quiet)
                fprintf(stderr, "kvfleet capacity: figure in %s\n", plot);
        }
    }
done:
    if (S.db) { /* a search that stopped early ends failed, with why */
        db_end(&S, fail_msg[0] ? fail_msg : "the search stopped");
        sqlite3_close(S.db);
    }
    sim_free(S.pts);
    json_decref(out);
    json_decref(cfg);
    free(pass);
    free(command);
    return exit_rc;
}
