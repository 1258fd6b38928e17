/* sweep.c: `kvfleet sweep`: runs every point of a spec into one SQLite file.
 *
 * Design. The coordinator (this process, or MPI rank 0) is the only writer
 * of the results file. Each task (a point and a seed replication) runs in a
 * worker into a private SQLite file of its own; when it ends, the
 * coordinator ATTACHes that file and, in one BEGIN IMMEDIATE transaction,
 * copies the run's rows into the results under a new run_id (every table
 * with a run_id column, whatever tables the store has) and marks the task
 * 'done' in sweep_points. A task is therefore wholly in the file or not at
 * all: a coordinator killed at any moment leaves either the committed
 * transaction or, through SQLite's rollback journal, nothing of it.
 *
 * Resume. A sweep is found again by its name and canonical spec text (the
 * compact JSON with keys in written order); its tasks were all inserted
 * 'pending' in the transaction that created it, so re-running the command
 * runs exactly the tasks not yet 'done' (and 'failed' ones with
 * --retry-failed). The merge checks the task is not already 'done' inside
 * its transaction, so a task is never copied twice.
 *
 * Workers are forked children (--jobs N; a task's crash cannot take the
 * coordinator down); the dispatcher (sweep_spec.c) hands each idle worker
 * the next task. A child reports its status and error message through a
 * pipe and sends its notes to a log file the coordinator echoes. On Linux
 * children die with the coordinator (PR_SET_PDEATHSIG).
 *
 * Run ids are assigned in merge order, which depends on timing with more
 * than one worker: rows are identified across sweeps by (point_id, rep).
 *
 * Non-goals: two coordinators running the same sweep at once (each task is
 * still merged at most once, but both would compute it), and cleaning up
 * the private folder of a coordinator killed with SIGKILL (it is under
 * $TMPDIR, named kvfleet-sweep.*). */
#include "config.h"
#include "sweep.h"
#include "sweep_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <sqlite3.h>

#include "cli.h"
#include "fileio.h"
#include "json_util.h"
#include "mem.h"
#include "store.h"

#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"
/* How long a statement waits for another connection's lock, ms. */
#define SWEEP_BUSY_MS 10000
/* Seconds between progress lines when stderr is not a terminal. */
#define SWEEP_LOG_EVERY_S 5.0

static const char sweep_schema[] = "CREATE TABLE IF NOT EXISTS sweeps ("
                                   " sweep_id INTEGER PRIMARY KEY,"
                                   " name TEXT,"
                                   " spec TEXT,"
                                   " spec_path TEXT,"
                                   " created_at TEXT,"
                                   " status TEXT,"
                                   " n_points INTEGER,"
                                   " seeds INTEGER,"
                                   " warmup_s REAL);"
                                   "CREATE TABLE IF NOT EXISTS sweep_points ("
                                   " sweep_id INTEGER,"
                                   " point_id INTEGER,"
                                   " rep INTEGER,"
                                   " axes TEXT,"
                                   " config TEXT,"
                                   " run_id INTEGER,"
                                   " status TEXT,"
                                   " error TEXT,"
                                   " PRIMARY KEY (sweep_id, point_id, rep));";

/* ---- small helpers ---- */

static int db_fail(sim_err *err, sweep_coord *c, const char *what) {
    sim_err_set(err, c->args->db, 0, 0, "%s: %s", what, sqlite3_errmsg(c->db));
    return SIM_EDB;
}

/* Runs SQL without results; SIM_OK or SIM_EDB with *err set. */
static int exec_sql(sweep_coord *c, const char *sql, const char *what, sim_err *err) {
    if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(err, c, what);
    return SIM_OK;
}

/* Steps a prepared statement to completion; SQLITE_DONE or an error code. */
static int step_all(sqlite3_stmt *st) {
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    return rc;
}

/* ---- opening the sweep ---- */

static int sweep_create(sweep_coord *c, sim_err *err) {
    sqlite3_stmt *st = NULL;
    size_t t;
    int rc = SIM_OK;
    const char *ins = "INSERT INTO sweeps (name, spec, spec_path, created_at, status, n_points,"
                      " seeds, warmup_s) VALUES (?, ?, ?, " NOW_SQL ", 'running', ?, ?, ?)";
    if (sqlite3_prepare_v2(c->db, ins, -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, c, "sweeps");
    sqlite3_bind_text(st, 1, c->spec->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, c->spec->canonical, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, c->spec->path, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, c->spec->n_points);
    sqlite3_bind_int(st, 5, c->spec->seeds);
    sqlite3_bind_double(st, 6, c->spec->warmup_s);
    if (step_all(st) != SQLITE_DONE) {
        sqlite3_finalize(st);
        return db_fail(err, c, "sweeps");
    }
    sqlite3_finalize(st);
    c->sweep_id = sqlite3_last_insert_rowid(c->db);
    ins = "INSERT INTO sweep_points (sweep_id, point_id, rep, axes, config, status)"
          " VALUES (?, ?, ?, ?, ?, 'pending')";
    if (sqlite3_prepare_v2(c->db, ins, -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, c, "sweep_points");
    for (t = 0; t < c->n_tasks && rc == SIM_OK; t++) {
        size_t p = t / (size_t)c->spec->seeds;
        json_t *cfg = NULL;
        char *axes = NULL, *cfg_text = NULL;
        /* a config that does not resolve is stored as given; its task fails when run */
        if (sweep_task_config(c->spec, t, c->args->db, &cfg, err) != SIM_OK)
            cfg = json_deep_copy(c->spec->point_cfg[p]);
        axes = json_dumps(c->spec->point_axes[p], JSON_COMPACT | JSON_REAL_PRECISION(17));
        cfg_text = json_dumps(cfg, JSON_SORT_KEYS | JSON_COMPACT);
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, c->sweep_id);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)p);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)(t % (size_t)c->spec->seeds));
        sqlite3_bind_text(st, 4, axes, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 5, cfg_text, -1, SQLITE_TRANSIENT);
        if (step_all(st) != SQLITE_DONE)
            rc = db_fail(err, c, "sweep_points");
        free(axes);
        free(cfg_text);
        json_decref(cfg);
    }
    sqlite3_finalize(st);
    return rc;
}

/* Finds the sweep (same name and canonical spec) or creates it, then lists its tasks to run. */
int sweep__coord_open(sweep_coord *c, const sweep_args *a, sweep_spec *spec, sim_err *err) {
    store *probe = NULL;
    sqlite3_stmt *st = NULL;
    int rc;
    memset(c, 0, sizeof *c);
    c->args = a;
    c->spec = spec;
    c->n_tasks = sweep_spec_tasks(spec);
    { /* the results file as every task's config names it, made absolute as
       * `kvfleet run --db` makes it: once, for the merged runs' configs */
        json_t *cfg0 = NULL;
        if ((rc = sweep_task_config(spec, 0, a->db, &cfg0, err)) != SIM_OK)
            return rc;
        snprintf(c->db_abs, sizeof c->db_abs, "%s", json_string_value(json_object_get(cfg0, "db")));
        json_decref(cfg0);
    }
    /* the store creates (or checks and upgrades) the results schema */
    if ((rc = store_open(a->db, &probe, err)) != SIM_OK)
        return rc;
    store_close(probe);
    if (sqlite3_open_v2(a->db, &c->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        rc = db_fail(err, c, "open");
        goto fail;
    }
    sqlite3_busy_timeout(c->db, SWEEP_BUSY_MS);
    if ((rc = exec_sql(c, sweep_schema, "creating the sweep tables", err)) != SIM_OK)
        goto fail;
    if ((rc = exec_sql(c, "BEGIN IMMEDIATE", "begin", err)) != SIM_OK)
        goto fail;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT sweep_id FROM sweeps WHERE name = ? AND spec = ?"
                           " ORDER BY sweep_id DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(err, c, "sweeps");
        goto rollback;
    }
    sqlite3_bind_text(st, 1, spec->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, spec->canonical, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        c->sweep_id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (c->sweep_id == 0 && (rc = sweep_create(c, err)) != SIM_OK)
        goto rollback;
    if ((rc = exec_sql(c, "COMMIT", "commit", err)) != SIM_OK)
        goto rollback;

    /* the tasks to run, in task order */
    c->todo = SIM_NEW_ARRAY(size_t, c->n_tasks);
    if (c->todo == NULL) {
        rc = SIM_ENOMEM;
        goto fail;
    }
    if (sqlite3_prepare_v2(c->db,
                           "SELECT point_id, rep, status FROM sweep_points WHERE sweep_id = ?"
                           " ORDER BY point_id, rep",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(err, c, "sweep_points");
        goto fail;
    }
    sqlite3_bind_int64(st, 1, c->sweep_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        size_t t = (size_t)sqlite3_column_int64(st, 0) * (size_t)spec->seeds +
                   (size_t)sqlite3_column_int64(st, 1);
        const char *status = (const char *)sqlite3_column_text(st, 2);
        if (status && strcmp(status, "done") == 0)
            c->n_done_before++;
        else if ((status && strcmp(status, "pending") == 0) || a->retry_failed) {
            if (ALWAYS(t < c->n_tasks && c->n_todo < c->n_tasks))
                c->todo[c->n_todo++] = t;
        }
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_DONE) {
        rc = db_fail(err, c, "sweep_points");
        goto fail;
    }
    snprintf(c->tmpdir, sizeof c->tmpdir, "%s/kvfleet-sweep.XXXXXX", sim_tmpdir());
    if (mkdtemp(c->tmpdir) == NULL) {
        sim_err_set(err, c->tmpdir, 0, 0, "private folder: %s", strerror(errno));
        c->tmpdir[0] = '\0';
        rc = SIM_EIO;
        goto fail;
    }
    c->t0 = rt_now_s();
    c->tty = isatty(2);
    return SIM_OK;
rollback:
    sqlite3_finalize(st);
    sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
fail:
    sweep__coord_close(c);
    return rc;
}

void sweep__coord_close(sweep_coord *c) {
    if (c->db)
        sqlite3_close(c->db);
    c->db = NULL;
    if (c->tmpdir[0])
        rmdir(c->tmpdir); /* empty by then: every worker file is removed after use */
    c->tmpdir[0] = '\0';
    sim_free(c->todo);
    c->todo = NULL;
}

/* ---- merging a task ---- */

/* Copies table name's rows of old_id from p into main under new_id (columns by name). */
static int copy_table(sweep_coord *c, const char *name, int64_t old_id, int64_t new_id,
                      sim_err *err) {
    char sql[8192], cols[6000] = "";
    sqlite3_stmt *st = NULL;
    int has_run_id = 0, rc;
    size_t n = 0;
    snprintf(sql, sizeof sql, "PRAGMA p.table_info(\"%s\")", name);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, c, name);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *col = (const char *)sqlite3_column_text(st, 1);
        if (strcmp(col, "run_id") == 0) {
            has_run_id = 1;
            continue;
        }
        n += (size_t)snprintf(cols + n, sizeof cols - n, ", \"%s\"", col);
        if (n >= sizeof cols) {
            sqlite3_finalize(st);
            sim_err_set(err, c->args->db, 0, 0, "%s: too many columns to copy", name);
            return SIM_EDB;
        }
    }
    sqlite3_finalize(st);
    if (!has_run_id)
        return SIM_OK; /* not a per-run table */
    {
        /* built by SQLite, never truncated */
        char *ins = sqlite3_mprintf("INSERT INTO main.\"%w\" (run_id%s) SELECT ?%s FROM "
                                    "p.\"%w\" WHERE run_id = ? ORDER BY rowid",
                                    name, cols, cols, name);
        if (ins == NULL) {
            sim_err_set(err, c->args->db, 0, 0, "%s: out of memory", name);
            return SIM_ENOMEM;
        }
        rc = sqlite3_prepare_v2(c->db, ins, -1, &st, NULL);
        sqlite3_free(ins);
        if (rc != SQLITE_OK)
            return db_fail(err, c, name);
    }
    sqlite3_bind_int64(st, 1, new_id);
    sqlite3_bind_int64(st, 2, old_id);
    rc = step_all(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SIM_OK : db_fail(err, c, name);
}

/* The merge proper, inside the transaction; *skipped = 1 when the task was already done. */
static int merge_rows(sweep_coord *c, size_t t, int *skipped, sim_err *err) {
    sqlite3_stmt *st = NULL;
    int64_t old_id = 0, new_id;
    int64_t p = (int64_t)(t / (size_t)c->spec->seeds), rep = (int64_t)(t % (size_t)c->spec->seeds);
    int rc, n_runs = 0;
    char *cfg_text = NULL;
    json_t *run_cfg = NULL;
    *skipped = 0;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT status FROM sweep_points WHERE sweep_id = ? AND point_id = ?"
                           " AND rep = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, c, "sweep_points");
    sqlite3_bind_int64(st, 1, c->sweep_id);
    sqlite3_bind_int64(st, 2, p);
    sqlite3_bind_int64(st, 3, rep);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) &&
        strcmp((const char *)sqlite3_column_text(st, 0), "done") == 0)
        *skipped = 1;
    sqlite3_finalize(st);
    if (*skipped)
        return SIM_OK;
    if (sqlite3_prepare_v2(c->db, "SELECT run_id, config FROM p.runs WHERE status = 'done'", -1,
                           &st, NULL) != SQLITE_OK)
        return db_fail(err, c, "runs");
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 1);
        old_id = sqlite3_column_int64(st, 0);
        json_decref(run_cfg);
        run_cfg = text ? json_loads(text, 0, NULL) : NULL;
        n_runs++;
    }
    sqlite3_finalize(st);
    if (n_runs != 1 || !json_is_object(run_cfg)) {
        sim_err_set(err, c->args->db, 0, 0,
                    "point %lld rep %lld: expected one finished run with its config in the "
                    "worker's file, got %d runs",
                    (long long)p, (long long)rep, n_runs);
        json_decref(run_cfg);
        return SIM_EDB;
    }
    /* The run's own resolved config (what the worker ran: dtypes as used,
     * paths absolute), with "db" the results file, resolved as a run
     * resolves it: the text `kvfleet run --db FILE` would store, which
     * re-runs as it is from any folder. Dumped as rt_run_exec dumps it. */
    json_object_set_new(run_cfg, "db", json_string(c->db_abs));
    cfg_text = json_dumps(run_cfg, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(run_cfg);
    if (cfg_text == NULL)
        return SIM_ENOMEM;
    /* the runs row first (it gives the new run_id), then every per-run table */
    {
        char sql[8192], cols[4000] = "";
        size_t n = 0;
        if (sqlite3_prepare_v2(c->db, "PRAGMA p.table_info(runs)", -1, &st, NULL) != SQLITE_OK) {
            rc = db_fail(err, c, "runs");
            goto out;
        }
        while (sqlite3_step(st) == SQLITE_ROW && n < sizeof cols) {
            const char *col = (const char *)sqlite3_column_text(st, 1);
            if (strcmp(col, "run_id") != 0)
                n += (size_t)snprintf(cols + n, sizeof cols - n, "%s\"%s\"", n ? ", " : "", col);
        }
        sqlite3_finalize(st);
        snprintf(sql, sizeof sql,
                 "INSERT INTO main.runs (%s) SELECT %s FROM p.runs WHERE run_id = ?", cols, cols);
        if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
            rc = db_fail(err, c, "runs");
            goto out;
        }
        sqlite3_bind_int64(st, 1, old_id);
        rc = step_all(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) {
            rc = db_fail(err, c, "runs");
            goto out;
        }
        new_id = sqlite3_last_insert_rowid(c->db);
    }
    if (sqlite3_prepare_v2(c->db, "UPDATE runs SET config = ? WHERE run_id = ?", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = db_fail(err, c, "runs");
        goto out;
    }
    sqlite3_bind_text(st, 1, cfg_text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, new_id);
    rc = step_all(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        rc = db_fail(err, c, "runs");
        goto out;
    }
    {
        sqlite3_stmt *tables = NULL;
        if (sqlite3_prepare_v2(c->db,
                               "SELECT name FROM p.sqlite_master WHERE type = 'table' AND name NOT"
                               " IN ('runs', 'sqlite_sequence') ORDER BY name",
                               -1, &tables, NULL) != SQLITE_OK) {
            rc = db_fail(err, c, "tables");
            goto out;
        }
        rc = SIM_OK;
        while (rc == SIM_OK && sqlite3_step(tables) == SQLITE_ROW)
            rc = copy_table(c, (const char *)sqlite3_column_text(tables, 0), old_id, new_id, err);
        sqlite3_finalize(tables);
        if (rc != SIM_OK)
            goto out;
    }
    if (sqlite3_prepare_v2(c->db,
                           "UPDATE sweep_points SET run_id = ?, status = 'done', error = NULL,"
                           " config = ? WHERE sweep_id = ? AND point_id = ? AND rep = ?",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(err, c, "sweep_points");
        goto out;
    }
    sqlite3_bind_int64(st, 1, new_id);
    sqlite3_bind_text(st, 2, cfg_text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, c->sweep_id);
    sqlite3_bind_int64(st, 4, p);
    sqlite3_bind_int64(st, 5, rep);
    rc = step_all(st) == SQLITE_DONE ? SIM_OK : db_fail(err, c, "sweep_points");
    sqlite3_finalize(st);
out:
    free(cfg_text);
    return rc;
}

/* The signal that asked the sweep to stop (SIGINT, SIGTERM, SIGHUP), 0 while none. */
static volatile sig_atomic_t stop_sig;

/* sqlite3_progress_handler's callback: non-zero interrupts the statement. */
static int merge_interrupt(void *unused) {
    (void)unused;
    return stop_sig != 0;
}

int sweep__merge(sweep_coord *c, size_t t, const char *tmp_db, sim_err *err) {
    sqlite3_stmt *st = NULL;
    int rc, skipped = 0;
    if (sqlite3_prepare_v2(c->db, "ATTACH ? AS p", -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, c, "attach");
    sqlite3_bind_text(st, 1, tmp_db, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(err, c, "attach");
    if ((rc = exec_sql(c, "BEGIN IMMEDIATE", "begin", err)) == SIM_OK) {
        /* copying a large run takes a while: a stop signal interrupts it */
        sqlite3_progress_handler(c->db, 1000, merge_interrupt, NULL);
        rc = merge_rows(c, t, &skipped, err);
        sqlite3_progress_handler(c->db, 0, NULL, NULL);
        if (rc == SIM_OK)
            rc = exec_sql(c, "COMMIT", "commit", err);
        if (rc != SIM_OK)
            sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    }
    sqlite3_exec(c->db, "DETACH p", NULL, NULL, NULL);
    if (rc == SIM_OK)
        c->n_done++;
    else if (stop_sig)
        rc = SIM_EINTR; /* rolled back: the task stays pending */
    return rc;
}

/* Clears the progress line, if one is drawn, before a message. */
static void line_clear(sweep_coord *c) {
    if (c->drawn) {
        fprintf(stderr, "\r\033[K");
        c->drawn = 0;
    }
}

void sweep__collect(sweep_coord *c, size_t t, const char *path) {
    char msg[1400];
    sim_err err;
    int rc;
    if (c->db_broken)
        return;
    sim_err_clear(&err);
    rc = sweep__merge(c, t, path, &err);
    if (rc == SIM_OK || rc == SIM_EINTR) /* interrupted by a stop: left pending */
        return;
    sim_err_format(&err, msg, sizeof msg);
    if (rc == SIM_EDB) {
        c->db_broken = 1;
        snprintf(c->db_msg, sizeof c->db_msg, "%s", msg);
        return;
    }
    sweep__fail(c, t, rc, msg);
}

int sweep__db_report(sweep_coord *c) {
    if (!c->db_broken)
        return RT_EXIT_OK;
    line_clear(c);
    fprintf(stderr,
            "kvfleet sweep: %s; the sweep stopped, and the points not done stay pending (make "
            "room, then the same command resumes the sweep)\n",
            c->db_msg);
    return RT_EXIT_RUNTIME;
}

void sweep__fail(sweep_coord *c, size_t t, int status, const char *msg) {
    sqlite3_stmt *st = NULL;
    int code = rt_exit_code(status);
    c->n_failed++;
    if (code > c->worst)
        c->worst = code;
    if (sqlite3_prepare_v2(c->db,
                           "UPDATE sweep_points SET status = 'failed', error = ?, run_id = NULL"
                           " WHERE sweep_id = ? AND point_id = ? AND rep = ? AND status <> 'done'",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, msg, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, c->sweep_id);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)(t / (size_t)c->spec->seeds));
        sqlite3_bind_int64(st, 4, (sqlite3_int64)(t % (size_t)c->spec->seeds));
        if (step_all(st) != SQLITE_DONE)
            c->worst = RT_EXIT_RUNTIME;
    } else
        c->worst = RT_EXIT_RUNTIME;
    sqlite3_finalize(st);
    line_clear(c);
    fprintf(stderr, "kvfleet sweep: point %zu rep %zu failed: %s\n", t / (size_t)c->spec->seeds,
            t % (size_t)c->spec->seeds, msg);
}

/* ---- progress ---- */

void sweep__progress(sweep_coord *c, int force) {
    double w = rt_now_s() - c->t0, rate, left;
    size_t now = c->n_done + c->n_failed, total = c->n_todo;
    char bar[31], eta[32];
    int i, fill;
    if (c->args->quiet)
        return;
    /* a terminal redraws at every change; a log gets a line every few seconds and the last */
    if (c->tty ? !force && w - c->last_draw < 0.25
               : now < total && (c->last_draw > 0 || now == 0 ? w - c->last_draw < SWEEP_LOG_EVERY_S
                                                              : w < SWEEP_LOG_EVERY_S))
        return;
    if (!c->tty && now == total) {
        if (c->logged_all)
            return;
        c->logged_all = 1;
    }
    c->last_draw = w;
    rate = w > 0 ? 60.0 * (double)now / w : 0;
    fill = total ? (int)(30 * now / total) : 30;
    for (i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    if (now == 0 || now == total)
        snprintf(eta, sizeof eta, now == total ? "done" : "-- left");
    else {
        left = (double)(total - now) * w / (double)now;
        snprintf(eta, sizeof eta, "%d:%02d left", (int)(left / 60), (int)left % 60);
    }
    fprintf(stderr, "%ssweep %s [%s] %zu/%zu points", c->tty ? "\r" : "", c->spec->name, bar,
            c->n_done_before + now, c->n_tasks);
    if (c->n_failed)
        fprintf(stderr, " (%zu failed)", c->n_failed);
    fprintf(stderr, " | %.1f points/min | %s%s", rate, eta, c->tty ? "\033[K" : "\n");
    fflush(stderr);
    c->drawn = c->tty;
}

int sweep__coord_finish(sweep_coord *c) {
    sqlite3_stmt *st = NULL;
    long long pending = -1, failed = 0;
    int code;
    if (c->drawn)
        fprintf(stderr, "\n");
    c->drawn = 0;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT sum(status = 'pending'), sum(status = 'failed') FROM"
                           " sweep_points WHERE sweep_id = ?",
                           -1, &st, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, c->sweep_id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            pending = sqlite3_column_int64(st, 0);
            failed = sqlite3_column_int64(st, 1);
        }
    }
    sqlite3_finalize(st);
    if (pending == 0) {
        char sql[128];
        snprintf(sql, sizeof sql, "UPDATE sweeps SET status = 'done' WHERE sweep_id = %lld",
                 (long long)c->sweep_id);
        if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
            c->worst = RT_EXIT_RUNTIME;
    }
    code = c->worst;
    if (code == 0 && (failed > 0 || pending != 0))
        code = RT_EXIT_INPUT; /* failed earlier and not retried */
    if (pending < 0)
        code = RT_EXIT_RUNTIME;
    if (!c->args->quiet || code != 0)
        fprintf(stderr,
                "kvfleet sweep: sweep %lld '%s' in %s: %zu points ran, %zu failed; %lld of %zu "
                "done%s\n",
                (long long)c->sweep_id, c->spec->name, c->args->db, c->n_done, c->n_failed,
                (long long)(c->n_done_before + c->n_done), c->n_tasks,
                failed > (long long)c->n_failed ? " (earlier failures: --retry-failed runs them)"
                                                : "");
    return code;
}

/* ---- workers ---- */

int sweep__task_run(const sweep_spec *spec, size_t t, const char *tmp_db, const char *command,
                    sim_err *err) {
    json_t *cfg = NULL, *info = NULL;
    met_summary sum;
    char *cmd;
    size_t n = strlen(command) + 64;
    int rc;
    if ((rc = sweep_task_config(spec, t, tmp_db, &cfg, err)) != SIM_OK)
        return rc;
    cmd = sim_malloc(n);
    if (cmd == NULL) {
        json_decref(cfg);
        return SIM_ENOMEM;
    }
    snprintf(cmd, n, "%s # point %zu rep %zu", command, t / (size_t)spec->seeds,
             t % (size_t)spec->seeds);
    rc = rt_run_exec(cfg, "sweep-point", cmd, &sum, &info, err);
    json_decref(info);
    json_decref(cfg);
    sim_free(cmd);
    return rc;
}

typedef struct slot {
    pid_t pid;     /* the child, 0 when idle */
    long task;     /* its task */
    int fd;        /* read end of its pipe */
    char db[600];  /* its private results file */
    char log[600]; /* its stderr */
} slot;

static void on_stop_signal(int sig) {
    stop_sig = sig;
}

static const int stop_sigs[SWEEP_N_STOP_SIGS] = {SIGINT, SIGTERM, SIGHUP};
#define N_STOP_SIGS SWEEP_N_STOP_SIGS

/* Installs handler (NULL: the coordinator's, which records the signal for
 * sweep__stop_sig) for the stop signals, without SA_RESTART (poll returns
 * EINTR), keeping the old actions in old; a signal ignored on entry stays
 * ignored (nohup's SIGHUP). */
void sweep__stop_catch(struct sigaction *old, void (*handler)(int)) {
    int i;
    for (i = 0; i < N_STOP_SIGS; i++) {
        struct sigaction sa;
        sigaction(stop_sigs[i], NULL, &old[i]);
        if (old[i].sa_handler == SIG_IGN)
            continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = handler ? handler : on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(stop_sigs[i], &sa, NULL);
    }
}

/* Puts back the actions sweep__stop_catch saved. */
void sweep__stop_restore(const struct sigaction *old) {
    int i;
    for (i = 0; i < N_STOP_SIGS; i++)
        sigaction(stop_sigs[i], &old[i], NULL);
}

/* The stop signal caught since sweep__stop_catch, 0 while none. */
int sweep__stop_sig(void) {
    return (int)stop_sig;
}

/* Says that the sweep stopped on signal sig and how to resume it. */
void sweep__stop_report(sweep_coord *c, int sig) {
    line_clear(c);
    fprintf(stderr,
            "kvfleet sweep: stopped by signal %d; the points not done stay pending (the "
            "same command resumes the sweep)\n",
            sig);
}

/* Removes a slot's worker files: its results file, journal and log. */
static void slot_files_remove(const slot *s) {
    char journal[640];
    snprintf(journal, sizeof journal, "%s-journal", s->db);
    unlink(s->db);
    unlink(journal);
    unlink(s->log);
}

/* Stops the running workers of an interrupted sweep and removes their
 * files; their points stay pending, for the same command to resume. */
static void slots_abandon(slot *slots, int jobs) {
    int i, wst;
    for (i = 0; i < jobs; i++) {
        if (slots[i].pid <= 0)
            continue;
        kill(slots[i].pid, SIGKILL);
        while (waitpid(slots[i].pid, &wst, 0) < 0 && errno == EINTR)
            ;
        close(slots[i].fd);
        slots[i].pid = 0;
        slot_files_remove(&slots[i]);
    }
}

/* The child: runs task t into s->db, reports the status and message on fd, exits. */
static void child_main(sweep_coord *c, const slot *s, int fd, pid_t parent) {
    sim_err err;
    char buf[1300];
    int32_t rc;
    int logfd;
    int i;
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    /* a worker dies of the stop signals the coordinator catches (it cleans
     * up); one ignored when the sweep started (nohup's SIGHUP, SIGINT in a
     * script's background job) was left ignored, and stays so here too */
    for (i = 0; i < N_STOP_SIGS; i++) {
        struct sigaction cur;
        if (sigaction(stop_sigs[i], NULL, &cur) == 0 && cur.sa_handler == on_stop_signal)
            signal(stop_sigs[i], SIG_DFL);
    }
    if (getppid() != parent)
        _exit(1);
    logfd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (logfd >= 0) {
        dup2(logfd, 2);
        close(logfd);
    }
    sim_err_clear(&err);
    rc = sweep__task_run(c->spec, (size_t)s->task, s->db, c->args->command, &err);
    if (rc != SIM_OK) {
        if (err.msg[0])
            sim_err_format(&err, buf, sizeof buf);
        else
            snprintf(buf, sizeof buf, "%s", sim_strerror(rc));
    } else
        buf[0] = '\0';
    if (write(fd, &rc, sizeof rc) != (ssize_t)sizeof rc ||
        write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf))
        _exit(1);
    _exit(0);
}

static int slot_start(sweep_coord *c, slot *s, long t, sim_err *err) {
    int p[2];
    pid_t parent = getpid();
    s->task = t;
    snprintf(s->db, sizeof s->db, "%s/task-%ld.db", c->tmpdir, t);
    snprintf(s->log, sizeof s->log, "%s/task-%ld.log", c->tmpdir, t);
    unlink(s->db);
    if (pipe(p) != 0) {
        sim_err_set(err, "", 0, 0, "pipe: %s", strerror(errno));
        return SIM_EIO;
    }
    fflush(NULL);
    s->pid = fork();
    if (s->pid < 0) {
        sim_err_set(err, "", 0, 0, "fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        s->pid = 0;
        return SIM_EIO;
    }
    if (s->pid == 0) {
        close(p[0]);
        child_main(c, s, p[1], parent);
    }
    close(p[1]);
    s->fd = p[0];
    return SIM_OK;
}

/* Echoes one line of task t's stderr (line ends with its newline, if it
 * had one): a note, prefixed with the point; not a run progress line, and
 * nothing with --quiet. */
void sweep__echo_line(sweep_coord *c, size_t t, const char *line) {
    if (strncmp(line, "simulated ", 10) == 0 || c->args->quiet || line[0] == '\0')
        return;
    line_clear(c);
    fprintf(stderr, "point %zu rep %zu: %s%s", t / (size_t)c->spec->seeds,
            t % (size_t)c->spec->seeds, line, line[strlen(line) - 1] == '\n' ? "" : "\n");
}

/* Echoes a child's notes on stderr. */
static void echo_log(sweep_coord *c, const slot *s) {
    FILE *f = fopen(s->log, "r");
    char line[2048];
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f))
        sweep__echo_line(c, (size_t)s->task, line);
    fclose(f);
}

/* Collects a finished child: its report, its exit, its file merged or its failure recorded. */
static void slot_collect(sweep_coord *c, slot *s) {
    char msg[1400];
    int32_t rc = SIM_EIO;
    size_t n = 0;
    ssize_t k;
    int wst = 0, reported;
    reported = read(s->fd, &rc, sizeof rc) == (ssize_t)sizeof rc;
    while (n + 1 < sizeof msg && (k = read(s->fd, msg + n, sizeof msg - 1 - n)) > 0)
        n += (size_t)k;
    msg[n] = '\0';
    close(s->fd);
    while (waitpid(s->pid, &wst, 0) < 0 && errno == EINTR)
        ;
    s->pid = 0;
    echo_log(c, s);
    if (!reported || !WIFEXITED(wst) || WEXITSTATUS(wst) != 0) {
        if (WIFSIGNALED(wst))
            snprintf(msg, sizeof msg, "worker killed by signal %d", WTERMSIG(wst));
        else
            snprintf(msg, sizeof msg, "worker exited with status %d and no report",
                     WIFEXITED(wst) ? WEXITSTATUS(wst) : -1);
        sweep__fail(c, (size_t)s->task, SIM_EDEVICE, msg);
    } else if (rc != SIM_OK)
        sweep__fail(c, (size_t)s->task, rc, msg);
    else
        sweep__collect(c, (size_t)s->task, s->db);
    slot_files_remove(s);
}

int sweep__local(sweep_coord *c) {
    struct sigaction old_act[N_STOP_SIGS];
    sweep_dispatch d;
    slot *slots;
    struct pollfd *pfd;
    int jobs = c->args->jobs, i, running = 0, code = RT_EXIT_OK;
    sim_err err;
    if ((size_t)jobs > c->n_todo)
        jobs = c->n_todo ? (int)c->n_todo : 1;
    slots = SIM_NEW_ARRAY(slot, (size_t)jobs);
    pfd = SIM_NEW_ARRAY(struct pollfd, (size_t)jobs);
    if (slots == NULL || pfd == NULL) {
        sim_free(slots);
        sim_free(pfd);
        return RT_EXIT_RUNTIME;
    }
    sweep_dispatch_init(&d, c->todo, c->n_todo, jobs);
    sim_err_clear(&err);
    sweep__stop_catch(old_act, NULL);
    for (i = 0; i < jobs; i++) {
        long t = sweep_dispatch_next(&d);
        if (t == SWEEP_STOP)
            continue;
        if (slot_start(c, &slots[i], t, &err) != SIM_OK) {
            sweep__fail(c, (size_t)t, SIM_EIO, err.msg);
            sweep_dispatch_done(&d);
            continue;
        }
        running++;
    }
    sweep__progress(c, 1);
    while (running > 0) {
        int n = 0, r;
        for (i = 0; i < jobs; i++)
            if (slots[i].pid > 0) {
                pfd[n].fd = slots[i].fd;
                pfd[n].events = POLLIN;
                pfd[n].revents = 0;
                n++;
            }
        r = poll(pfd, (nfds_t)n, 250);
        if (stop_sig) /* before collecting: a worker the signal killed is no failure */
            break;
        if (r < 0 && errno != EINTR)
            break;
        for (i = 0; r > 0 && i < jobs; i++) {
            int j;
            long t;
            if (slots[i].pid <= 0)
                continue;
            for (j = 0; j < n && pfd[j].fd != slots[i].fd; j++)
                ;
            if (j == n || pfd[j].revents == 0)
                continue;
            slot_collect(c, &slots[i]);
            sweep_dispatch_done(&d);
            if (c->db_broken)
                sweep_dispatch_close(&d);
            running--;
            sweep__progress(c, 1);
            /* the slot takes the next task (none once stopping) */
            while (!stop_sig && (t = sweep_dispatch_next(&d)) != SWEEP_STOP) {
                if (slot_start(c, &slots[i], t, &err) == SIM_OK) {
                    running++;
                    break;
                }
                sweep__fail(c, (size_t)t, SIM_EIO, err.msg);
                sweep_dispatch_done(&d);
            }
        }
        sweep__progress(c, 0);
    }
    sweep__stop_restore(old_act);
    if (stop_sig) {
        slots_abandon(slots, jobs);
        sweep__stop_report(c, (int)stop_sig);
        code = RT_EXIT_RUNTIME;
    } else {
        /* idle slots never asked again: tell the dispatcher they stopped */
        while (!sweep_dispatch_finished(&d) && d.n_stopped < d.n_workers && d.next == d.n_todo)
            (void)sweep_dispatch_next(&d);
        SIM_ASSERT(sweep_dispatch_finished(&d));
        code = sweep__db_report(c);
    }
    sim_free(slots);
    sim_free(pfd);
    return code;
}

/* ---- the command ---- */

static void sweep_help(FILE *f) {
    fprintf(f,
            "usage: kvfleet sweep SPEC [--db FILE] [--jobs N] [--dry-run] [--quiet] "
            "[--retry-failed]\n\n"
            "Runs every point of an experiment spec (docs/experiments.md) into one SQLite file.\n"
            "Re-running the same command resumes the sweep: only points not done run.\n"
            "Under mpirun (builds with --with-mpi) rank 0 writes the file and the other ranks "
            "run points.\n\n"
            "options:\n"
            "  --db FILE        results file (default kvfleet.db)\n"
            "  --jobs N         worker processes (default 1)\n"
            "  --dry-run        list the points and exit\n"
            "  --quiet          no progress bar\n"
            "  --retry-failed   run points recorded 'failed' again\n");
}

/* Parses argv; returns -1 to go on, else an exit code. */
static int parse_args(int argc, char **argv, sweep_args *a) {
    int i;
    memset(a, 0, sizeof *a);
    a->db = "kvfleet.db";
    a->jobs = 1;
    for (i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
            sweep_help(stdout);
            return RT_EXIT_OK;
        } else if (strcmp(o, "--dry-run") == 0)
            a->dry_run = 1;
        else if (strcmp(o, "--quiet") == 0)
            a->quiet = 1;
        else if (strcmp(o, "--retry-failed") == 0)
            a->retry_failed = 1;
        else if (strcmp(o, "--db") == 0 || strcmp(o, "--jobs") == 0) {
            if (!rt_has_value(argc, argv, i)) {
                fprintf(stderr, "kvfleet sweep: %s: expected a value, got nothing\n", o);
                return RT_EXIT_USAGE;
            }
            if (strcmp(o, "--db") == 0) {
                if (!sim_json_utf8_ok(argv[i + 1])) { /* stored in the runs' JSON */
                    fprintf(stderr,
                            "kvfleet sweep: --db: expected text in UTF-8 (the results file "
                            "stores every option as JSON text), got '%s'\n",
                            argv[i + 1]);
                    return RT_EXIT_INPUT;
                }
                a->db = argv[++i];
            } else {
                long long j;
                int prc;
                if ((prc = rt_parse_int(argv[++i], 1, 4096, &j)) != 0) {
                    fprintf(stderr,
                            "kvfleet sweep: --jobs: expected an integer in 1..4096, got "
                            "'%s'\n",
                            argv[i]);
                    return rt_value_exit(prc);
                }
                a->jobs = (int)j;
            }
        } else if (strncmp(o, "--", 2) == 0 || a->spec_path) {
            fprintf(stderr, "kvfleet sweep: unexpected argument '%s' (kvfleet sweep --help)\n", o);
            return RT_EXIT_USAGE;
        } else
            a->spec_path = o;
    }
    if (a->spec_path == NULL) {
        fprintf(stderr, "kvfleet sweep: SPEC: expected an experiment spec file, got nothing\n");
        sweep_help(stderr);
        return RT_EXIT_USAGE;
    }
    if (a->db[0] == '\0') {
        fprintf(stderr, "kvfleet sweep: --db: expected a file name, got ''\n");
        return RT_EXIT_USAGE;
    }
    return -1;
}

void sweep__dry_run(const sweep_spec *s, const char *db) {
    int p;
    printf("sweep '%s': %d points x %d seeds = %zu runs into %s\n", s->name, s->n_points, s->seeds,
           sweep_spec_tasks(s), db);
    for (p = 0; p < s->n_points; p++) {
        char *axes = json_dumps(s->point_axes[p], JSON_COMPACT | JSON_REAL_PRECISION(17));
        printf("point %d: %s\n", p, axes ? axes : "?");
        free(axes);
    }
}

int rt_main_sweep(int argc, char **argv) {
    sweep_args a;
    sweep_spec *spec = NULL;
    sweep_coord c;
    sim_err err;
    int rc, code;
    char buf[1200];
    if ((code = parse_args(argc, argv, &a)) >= 0)
        return code;
    sim_err_clear(&err);
    if ((rc = sweep_spec_load(a.spec_path, &spec, &err)) != SIM_OK) {
        sim_err_format(&err, buf, sizeof buf);
        fprintf(stderr, "kvfleet sweep: %s\n", buf);
        return rt_exit_code(rc);
    }
    if ((a.command = rt_join_argv(argc, argv)) == NULL) {
        sweep_spec_destroy(spec);
        return RT_EXIT_RUNTIME;
    }
#ifdef KV_HAVE_MPI
    if (sweep__mpi_launched()) { /* --dry-run too: rank 0 alone lists the points */
        code = sweep__mpi_main(&a, spec);
        sweep_spec_destroy(spec);
        free(a.command);
        return code;
    }
#endif
    if (a.dry_run) {
        sweep__dry_run(spec, a.db);
        sweep_spec_destroy(spec);
        free(a.command);
        return RT_EXIT_OK;
    }
    if ((rc = sweep__coord_open(&c, &a, spec, &err)) != SIM_OK) {
        sim_err_format(&err, buf, sizeof buf);
        fprintf(stderr, "kvfleet sweep: %s\n", buf);
        code = rc == SIM_EDB || rc == SIM_EIO ? RT_EXIT_RUNTIME : rt_exit_code(rc);
    } else {
        code = sweep__local(&c);
        if (code == RT_EXIT_OK)
            code = sweep__coord_finish(&c);
        sweep__coord_close(&c);
    }
    sweep_spec_destroy(spec);
    free(a.command);
    return code;
}
