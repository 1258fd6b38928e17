/* store.c: the SQLite results store (see store.h; the schema is documented
 * column by column in docs/results.md, which is the contract).
 *
 * Life of a run. store_run_begin inserts the runs row with status
 * 'running' in its own autocommit transaction, so the row survives whatever
 * happens next, then opens a transaction for the run's rows. The sink
 * callbacks check a row and copy it into its table's buffer; a full buffer
 * (STORE_BATCH_ROWS rows) is bound to one multi-row INSERT and stepped once.
 * Every STORE_COMMIT_ROWS rows the buffers are written out (the rows left
 * over one by one), the transaction is committed and a new one begun, so
 * SQLite's page cache and journal stay bounded and the commits fall where
 * they would if every row were stepped alone. store_run_finish writes the
 * buffered rows, the summary row and status 'done' in the same transaction
 * as the last rows. Invariant: status is 'done' only if every row and the
 * summary were committed; a process killed mid-run leaves 'running' (its
 * last, uncommitted batch is rolled back by SQLite when the file is next
 * opened), and store_run_fail and store_close leave 'failed' and delete the
 * run's rows (a failed run has none).
 *
 * Why batches. Each step of a statement has a fixed cost (starting it,
 * opening the table and index cursors, finding the last rowid) that made a
 * single-row INSERT cost 1.7 times the instructions per row of a 32-row
 * one; a batch pays it once, and run_id is bound once per run (every row
 * names it as ?1). A buffered row is only in memory as an uncommitted row
 * is only in the transaction: a killed process loses both alike, and what
 * a reader or a later open sees is unchanged. The connection is opened
 * without its mutex (SQLITE_OPEN_NOMUTEX), which took about a sixth of the
 * instructions per row: a store is used by one thread at a time.
 *
 * Schema versions. PRAGMA user_version holds the version of the file's
 * schema. store_open upgrades an older file (0 is an empty file) by running
 * the migrations in order inside one BEGIN IMMEDIATE transaction, and
 * refuses a newer one. The summary columns come from MET_SUMMARY_MAP: a
 * field added there is added to an existing file's summary table with
 * ALTER TABLE on open, so the map and the table cannot drift apart.
 *
 * Sizes and access mix. Writes dominate: a long run appends millions of
 * requests and steps rows in run_id order (the run_id indexes are
 * append-only), reads are occasional whole-run queries. One store writes
 * one run at a time.
 *
 * Non-goals: concurrent writers to one file beyond SQLite's own locking (a
 * second writer waits up to STORE_BUSY_MS for each batch), WAL mode (it
 * leaves -wal and -shm files beside the results), reading rows back (users
 * query the file with sqlite3; only store_open_read, store_has_table and the
 * config and summary helpers exist).
 * Nothing is written outside the given file and its rollback journal:
 * temporary tables are kept in memory and URI file names are not enabled. */
#include "config.h"
#include "kv_version.h"
#include "store.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "mem.h"

/* How long a statement waits for another connection's lock, ms. */
#define STORE_BUSY_MS 10000

/* The wall clock as UTC ISO-8601, evaluated by SQLite. */
#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%SZ', 'now')"

/* Rows per multi-row INSERT. Each row binds its columns but run_id, so the
 * widest table (steps, 20 more) needs 1 + 20 * 32 = 641 parameters: within
 * 999, SQLITE_MAX_VARIABLE_NUMBER's default before SQLite 3.32. 16 rows
 * took 6% more instructions per row than 32, and 64 only 4% fewer. */
#define STORE_BATCH_ROWS 32

/* The tables rows stream into, in the order of row_tables[]. */
enum { TABLE_REQUESTS, TABLE_STEPS, TABLE_TIMELINE, N_TABLES };

/* One table's statements and the rows waiting for them. */
typedef struct row_buf {
    sqlite3_stmt *ins_batch; /* STORE_BATCH_ROWS rows per statement */
    sqlite3_stmt *ins_one;   /* one row, for the rows left over at a commit */
    int n;                   /* rows waiting in the buffer, 0..STORE_BATCH_ROWS - 1 */
} row_buf;

struct store {
    sqlite3 *db;
    char *path;             /* owned copy of the file name, for messages */
    row_buf bufs[N_TABLES]; /* statements and buffer fill, by table */
    int run_open;           /* 1 between store_run_begin and finish/fail */
    int64_t run_id;         /* the open run (valid when run_open) */
    int64_t n_pending;      /* rows accepted since the last commit, 0..STORE_COMMIT_ROWS */
    sim_err last;           /* the last failure, for store_errmsg */
    /* The buffered rows of each table, oldest first (bufs[t].n of them). */
    met_request requests[STORE_BATCH_ROWS];
    met_step steps[STORE_BATCH_ROWS];
    met_timeline timeline[STORE_BATCH_ROWS];
};

/* ---- schema ---- */

/* Reject reason names, from the same map as met_reject_name. */
static const char *const reject_names[] = {
#define STORE_XX_REJECT(id, name) name,
    MET_REJECT_MAP(STORE_XX_REJECT)
#undef STORE_XX_REJECT
};

/* Names of enum perf_bound values, in its order (compute, hbm, link, overhead). */
static const char *const bound_names[] = {"compute", "hbm", "link", "overhead"};
#define N_BOUNDS ((int)(sizeof bound_names / sizeof bound_names[0]))

#define STORE_SQL_TYPE_I "INTEGER"
#define STORE_SQL_TYPE_D "REAL"

/* Summary columns, in MET_SUMMARY_MAP order. */
static const struct summary_col {
    const char *name;
    const char *type;
} summary_cols[] = {
#define STORE_XX_COL(name, kind) {#name, STORE_SQL_TYPE_##kind},
    MET_SUMMARY_MAP(STORE_XX_COL)
#undef STORE_XX_COL
};
#define N_SUMMARY_COLS ((int)(sizeof summary_cols / sizeof summary_cols[0]))

/* Version 1: the first schema. A migration is never edited once released:
 * later versions append a new entry to migrations[]. The one exception is
 * the summary table, which follows MET_SUMMARY_MAP by design: a file made
 * before a field was added gets the column from summary_columns_sync. */
static const char schema_v1[] =
    "CREATE TABLE runs ("
    " run_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " created_at TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),"
    " error TEXT,"
    " seed INTEGER,"
    " code_version TEXT,"
    " config TEXT,"
    " command TEXT,"
    " backend TEXT,"
    " finished_at TEXT);"
    "CREATE TABLE requests ("
    " run_id INTEGER NOT NULL REFERENCES runs(run_id),"
    " id INTEGER NOT NULL,"
    " replica INTEGER NOT NULL,"
    " arrival_s REAL,"
    " first_token_s REAL,"
    " finish_s REAL,"
    " ttft_s REAL,"
    " tpot_s REAL,"
    " e2e_s REAL,"
    " prompt_tokens INTEGER,"
    " new_tokens INTEGER,"
    " output_tokens INTEGER,"
    " preemptions INTEGER,"
    " recomputed_tokens INTEGER,"
    " hit_tokens INTEGER,"
    " session_id INTEGER,"
    " turn INTEGER,"
    " rejected INTEGER NOT NULL CHECK (rejected IN (0, 1)),"
    " reject_reason TEXT);"
    "CREATE TABLE steps ("
    " run_id INTEGER NOT NULL REFERENCES runs(run_id),"
    " replica INTEGER NOT NULL,"
    " step INTEGER NOT NULL,"
    " start_s REAL,"
    " dur_s REAL,"
    " pred_s REAL,"
    " meas_s REAL,"
    " batch_size INTEGER,"
    " n_prefill INTEGER,"
    " n_decode INTEGER,"
    " prefill_tokens INTEGER,"
    " decode_tokens INTEGER,"
    " kv_blocks_used INTEGER,"
    " kv_blocks_total INTEGER,"
    " kv_util REAL,"
    " waiting INTEGER,"
    " flops REAL,"
    " bytes REAL,"
    " intensity REAL,"
    " balance REAL,"
    " bound TEXT CHECK (bound IN ('compute', 'hbm', 'link', 'overhead')));"
    "CREATE TABLE timeline ("
    " run_id INTEGER NOT NULL REFERENCES runs(run_id),"
    " replica INTEGER NOT NULL,"
    " t_s REAL,"
    " dt_s REAL,"
    " batch_mean REAL,"
    " waiting_mean REAL,"
    " kv_util_mean REAL,"
    " busy_frac REAL,"
    " arrivals INTEGER,"
    " completions INTEGER,"
    " rejections INTEGER,"
    " output_tokens INTEGER);"
    "CREATE TABLE summary ("
    " run_id INTEGER PRIMARY KEY REFERENCES runs(run_id)"
#define STORE_XX_DEF(name, kind) ", " #name " " STORE_SQL_TYPE_##kind
    MET_SUMMARY_MAP(STORE_XX_DEF)
#undef STORE_XX_DEF
        ");"
        "CREATE INDEX requests_run_id ON requests(run_id);"
        "CREATE INDEX steps_run_id ON steps(run_id);"
        "CREATE INDEX timeline_run_id ON timeline(run_id);";

/* migrations[v] takes a file from version v to v + 1. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {schema_v1};

static const char insert_run_sql[] =
    "INSERT INTO runs (created_at, kind, status, seed, code_version, config, command, backend)"
    " VALUES (" NOW_SQL ", ?, 'running', ?, ?, ?, ?, ?)";

/* The tables the sink writes: the INSERT column list (run_id first) and the
 * parameters of one row after run_id. The statements are built from these by
 * insert_sql; SQLite checks at prepare time that the values match the
 * columns, and step_once that every parameter is bound. */
static const struct row_table {
    const char *name;    /* table */
    const char *what;    /* the failing step, for error messages */
    const char *columns; /* "(run_id, ...)" */
    int n_params;        /* parameters per row, run_id excluded */
} row_tables[N_TABLES] = {
    {"requests", "insert requests rows",
     "(run_id, id, replica, arrival_s, first_token_s, finish_s, ttft_s, tpot_s, e2e_s,"
     " prompt_tokens, new_tokens, output_tokens, preemptions, recomputed_tokens, hit_tokens,"
     " session_id, turn, rejected, reject_reason)",
     18},
    {"steps", "insert steps rows",
     "(run_id, replica, step, start_s, dur_s, pred_s, meas_s, batch_size, n_prefill, n_decode,"
     " prefill_tokens, decode_tokens, kv_blocks_used, kv_blocks_total, kv_util, waiting, flops,"
     " bytes, intensity, balance, bound)",
     20},
    {"timeline", "insert timeline rows",
     "(run_id, replica, t_s, dt_s, batch_mean, waiting_mean, kv_util_mean, busy_frac, arrivals,"
     " completions, rejections, output_tokens)",
     11},
};

static const char insert_summary_sql[] = "INSERT INTO summary (run_id"
#define STORE_XX_NAME(name, kind) ", " #name
    MET_SUMMARY_MAP(STORE_XX_NAME)
#undef STORE_XX_NAME
        ") VALUES (?"
#define STORE_XX_PARAM(name, kind) ", ?"
    MET_SUMMARY_MAP(STORE_XX_PARAM)
#undef STORE_XX_PARAM
        ")";

static const char select_summary_sql[] = "SELECT run_id"
#define STORE_XX_NAME(name, kind) ", " #name
    MET_SUMMARY_MAP(STORE_XX_NAME)
#undef STORE_XX_NAME
        " FROM summary WHERE run_id = ?";

/* ---- errors ---- */

/* Fills *e with "what: <SQLite's message>". Returns SIM_EINVAL when the
 * path is the user's mistake (not a database, a corrupt one, cannot be
 * opened: a folder, no permission, a missing parent folder), else SIM_EDB. */
static int db_error(sim_err *e, const char *path, sqlite3 *db, const char *what) {
    int code = db ? sqlite3_errcode(db) & 0xff : SQLITE_NOMEM;
    sim_err_set(e, path, 0, 0, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
    return code == SQLITE_NOTADB || code == SQLITE_CANTOPEN || code == SQLITE_CORRUPT ? SIM_EINVAL
                                                                                      : SIM_EDB;
}

/* Copies the failure recorded in s->last to *err (if not NULL); returns code. */
static int store_error(store *s, sim_err *err, int code) {
    if (err)
        *err = s->last;
    return code;
}

static int store_db_error(store *s, sim_err *err, const char *what) {
    return store_error(s, err, db_error(&s->last, s->path, s->db, what));
}

static int db_exec(store *s, const char *sql, const char *what, sim_err *err) {
    if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return store_db_error(s, err, what);
    return SIM_OK;
}

/* ---- binding ---- */

/* Binds parameters left to right, remembering the first failure. */
typedef struct binder {
    sqlite3_stmt *st;
    int k;  /* last parameter bound, 1-based */
    int rc; /* first non-OK bind result */
} binder;

static void bind_rc(binder *b, int rc) {
    if (b->rc == SQLITE_OK)
        b->rc = rc;
}

static void bind_i64(binder *b, int64_t v) {
    bind_rc(b, sqlite3_bind_int64(b->st, ++b->k, v));
}

/* NAN is bound as NULL. */
static void bind_real(binder *b, double v) {
    if (isnan(v))
        bind_rc(b, sqlite3_bind_null(b->st, ++b->k));
    else
        bind_rc(b, sqlite3_bind_double(b->st, ++b->k, v));
}

/* NULL is bound as NULL; v must stay valid until the statement is stepped. */
static void bind_text(binder *b, const char *v) {
    if (v == NULL)
        bind_rc(b, sqlite3_bind_null(b->st, ++b->k));
    else
        bind_rc(b, sqlite3_bind_text(b->st, ++b->k, v, -1, SQLITE_STATIC));
}

static binder bind_start(sqlite3_stmt *st) {
    binder b = {st, 0, SQLITE_OK};
    return b;
}

/* Starts binding rows of a sink statement, whose ?1 (run_id) stays bound for the run. */
static binder bind_rows_start(sqlite3_stmt *st) {
    binder b = {st, 1, SQLITE_OK};
    return b;
}

/* Checks that every parameter was bound, then steps st once and resets it. */
static int step_once(store *s, binder *b, const char *what, sim_err *err) {
    int rc;
    SIM_ASSERT(b->k == sqlite3_bind_parameter_count(b->st));
    if (b->rc != SQLITE_OK) {
        sqlite3_reset(b->st);
        return store_db_error(s, err, what);
    }
    rc = sqlite3_step(b->st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        store_db_error(s, err, what);
        sqlite3_reset(b->st);
        return SIM_EDB;
    }
    sqlite3_reset(b->st);
    return SIM_OK;
}

/* ---- opening and schema upgrades ---- */

/* Reads PRAGMA user_version into *v. */
static int read_user_version(sqlite3 *db, int *v) {
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *v = sqlite3_column_int(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

/* Fills *e for a file whose schema version v this build cannot use. */
static int version_error(sim_err *e, const char *path, int v) {
    if (v > STORE_SCHEMA_VERSION)
        sim_err_set(e, path, 0, 0,
                    "schema version: expected at most %d, got '%d' (the file was written by a "
                    "newer kvfleet; use that version or another file)",
                    STORE_SCHEMA_VERSION, v);
    else
        sim_err_set(e, path, 0, 0,
                    "schema version: expected 1..%d, got '%d' (not a kvfleet results file)",
                    STORE_SCHEMA_VERSION, v);
    return SIM_EINVAL; /* bad input, as a file that is not a database */
}

/* Counts the MET_SUMMARY_MAP columns missing from the summary table, adding them if add. */
static int summary_columns_sync(store *s, int add, int *n_missing, sim_err *err) {
    sqlite3_stmt *st = NULL;
    char sql[256];
    int i, rc = SIM_OK;
    *n_missing = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM pragma_table_info('summary') WHERE name = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return store_db_error(s, err, "read summary columns");
    for (i = 0; i < N_SUMMARY_COLS; i++) {
        int found;
        sqlite3_bind_text(st, 1, summary_cols[i].name, -1, SQLITE_STATIC);
        found = sqlite3_step(st);
        if (found != SQLITE_ROW && found != SQLITE_DONE) {
            rc = store_db_error(s, err, "read summary columns");
            break;
        }
        sqlite3_reset(st);
        if (found == SQLITE_ROW)
            continue;
        (*n_missing)++;
        if (!add)
            continue;
        snprintf(sql, sizeof sql, "ALTER TABLE summary ADD COLUMN %s %s", summary_cols[i].name,
                 summary_cols[i].type);
        rc = db_exec(s, sql, "add summary column", err);
        if (rc != SIM_OK)
            break;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Brings the file's schema to STORE_SCHEMA_VERSION, or refuses a newer file. */
static int schema_upgrade(store *s, sim_err *err) {
    char sql[64];
    int v = 0, n_missing = 0, rc;
    if (read_user_version(s->db, &v) != SQLITE_OK)
        return store_db_error(s, err, "read schema version");
    /* a negative version (PRAGMA user_version = -1) is no kvfleet file:
     * it would index migrations[] below 0 */
    if (v > STORE_SCHEMA_VERSION || v < 0)
        return store_error(s, err, version_error(&s->last, s->path, v));
    if (v == STORE_SCHEMA_VERSION) {
        rc = summary_columns_sync(s, 0, &n_missing, err);
        if (rc != SIM_OK || n_missing == 0)
            return rc;
    }
    /* Take the write lock, then look again: another process may have upgraded the file. */
    rc = db_exec(s, "BEGIN IMMEDIATE", "lock for schema upgrade", err);
    if (rc != SIM_OK)
        return rc;
    if (read_user_version(s->db, &v) != SQLITE_OK) {
        rc = store_db_error(s, err, "read schema version");
        goto fail;
    }
    if (v > STORE_SCHEMA_VERSION || v < 0) {
        rc = store_error(s, err, version_error(&s->last, s->path, v));
        goto fail;
    }
    for (; v < STORE_SCHEMA_VERSION; v++) {
        snprintf(sql, sizeof sql, "create schema version %d", v + 1);
        rc = db_exec(s, migrations[v], sql, err);
        if (rc != SIM_OK)
            goto fail;
    }
    rc = summary_columns_sync(s, 1, &n_missing, err);
    if (rc != SIM_OK)
        goto fail;
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
    rc = db_exec(s, sql, "set schema version", err);
    if (rc != SIM_OK)
        goto fail;
    return db_exec(s, "COMMIT", "commit schema upgrade", err);
fail:
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int prepare(store *s, const char *sql, sqlite3_stmt **st, const char *what, sim_err *err) {
    if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
        return store_db_error(s, err, what);
    return SIM_OK;
}

/* Writes into buf "INSERT INTO <table> (<columns>) VALUES (?1, ?, ...), ..."
 * with n_rows rows, each naming run_id as ?1; n must hold it (asserted). */
static void insert_sql(char *buf, size_t n, const struct row_table *t, int n_rows) {
    size_t len = (size_t)snprintf(buf, n, "INSERT INTO %s %s VALUES ", t->name, t->columns);
    int i, j;
    SIM_ASSERT(len < n);
    for (i = 0; i < n_rows; i++) {
        SIM_ASSERT(len + 4 + 2 * (size_t)t->n_params + 2 < n);
        memcpy(buf + len, i ? ",(?1" : "(?1", i ? 4 : 3);
        len += i ? 4 : 3;
        for (j = 0; j < t->n_params; j++) {
            memcpy(buf + len, ",?", 2);
            len += 2;
        }
        buf[len++] = ')';
    }
    buf[len] = '\0';
}

/* Prepares each table's one-row and STORE_BATCH_ROWS-row inserts. */
static int prepare_inserts(store *s, sim_err *err) {
    char sql[4096], what[64];
    int t, rc = SIM_OK;
    for (t = 0; t < N_TABLES && rc == SIM_OK; t++) {
        snprintf(what, sizeof what, "prepare %s insert", row_tables[t].name);
        insert_sql(sql, sizeof sql, &row_tables[t], 1);
        rc = prepare(s, sql, &s->bufs[t].ins_one, what, err);
        if (rc != SIM_OK)
            break;
        insert_sql(sql, sizeof sql, &row_tables[t], STORE_BATCH_ROWS);
        rc = prepare(s, sql, &s->bufs[t].ins_batch, what, err);
    }
    return rc;
}

/* 0 when this process may write path and create files beside it (SQLite's
 * journal): SQLite opens a write-protected file read-only without a word,
 * and a file in a write-protected folder cannot take its journal, so both
 * failed only at the first row, as a runtime failure. Otherwise -1 with
 * *err naming what cannot be written. A missing file or folder is left to
 * SQLite's open, which names it. */
static int check_writable(const char *path, sim_err *err) {
    char dir[4096], real[4096];
    const char *file = path, *slash;
    struct stat st;
    if (realpath(path, real) != NULL) /* a link: SQLite writes beside its target */
        file = real;
    else if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode))
        return 0; /* a link to a file yet to be made: SQLite's open follows it */
    slash = strrchr(file, '/');
    if (access(file, F_OK) == 0 && access(file, W_OK) != 0 && (errno == EACCES || errno == EROFS)) {
        sim_err_set(err, path, 0, 0, "results file: expected a file this user may write, got %s",
                    errno == EROFS ? "one on a read-only file system" : "a write-protected one");
        return -1;
    }
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == file)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - file), file);
    if (access(dir, W_OK) != 0 && (errno == EACCES || errno == EROFS)) {
        sim_err_set(err, path, 0, 0,
                    "results file: expected a folder this user may write (SQLite keeps its "
                    "journal beside the file), got %s %s",
                    errno == EROFS ? "a read-only file system at" : "a write-protected", dir);
        return -1;
    }
    return 0;
}

/* Opens the results file at path, creating it if missing, and upgrades an
 * older schema (refusing a newer one). The connection waits up to
 * STORE_BUSY_MS for other writers, uses the rollback journal with
 * synchronous=NORMAL and keeps temporary data in memory (statement journals
 * included). The connection has no mutex of its own, so a store must be
 * used by one thread at a time. Returns SIM_OK and an owned *out,
 * SIM_EINVAL for an empty path, a path SQLite cannot open, a file that is
 * not a database or one of a newer schema, SIM_ENOMEM, or SIM_EDB with the
 * failing step and SQLite's message in *err. */
int store_open(const char *path, store **out, sim_err *err) {
    store *s;
    int rc;
    *out = NULL;
    sim_err_clear(err);
    if (path == NULL || path[0] == '\0') {
        sim_err_set(err, "store", 0, 0, "path: expected a file name, got ''");
        return SIM_EINVAL;
    }
    if (check_writable(path, err) != 0)
        return SIM_EINVAL;
    s = SIM_NEW(store);
    if (s == NULL)
        goto nomem;
    s->path = sim_strdup(path);
    if (s->path == NULL)
        goto nomem;
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        rc = store_db_error(s, err, "open");
        goto fail;
    }
    sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
    rc = db_exec(s, "PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY", "open", err);
    if (rc != SIM_OK)
        goto fail;
    rc = schema_upgrade(s, err);
    if (rc != SIM_OK)
        goto fail;
    rc = prepare_inserts(s, err);
    if (rc != SIM_OK)
        goto fail;
    *out = s;
    return SIM_OK;
nomem:
    sim_err_set(err, path, 0, 0, "open: out of memory");
    rc = SIM_ENOMEM;
fail:
    store_close(s);
    return rc;
}

const char *store_errmsg(const store *s) {
    return s ? s->last.msg : "";
}

void store_last_err(const store *s, sim_err *err) {
    *err = s->last;
}

/* ---- runs ---- */

static int rows_begin(store *s, sim_err *err);
static int rows_flush(store *s, sim_err *err);
static void rows_drop(store *s);

static const char *code_version(void) {
#ifdef KV_GIT_VERSION
    if (strcmp(KV_GIT_VERSION, "unknown") != 0)
        return KV_GIT_VERSION;
#endif
    return PACKAGE_VERSION;
}

/* Starts a run: inserts its runs row (status 'running', created_at now,
 * code_version from the build) and commits it, then opens the transaction
 * that the run's rows go into. kind is required ("run", "validate",
 * "sweep-point", ...); config_json must be a JSON object or NULL; command,
 * backend may be NULL. The seed is stored as a signed 64-bit integer (seeds
 * of 2^63 and above read back negative). Returns SIM_OK with *run_id, SIM_EINVAL
 * (a run is already open, empty kind, config not a JSON object) or SIM_EDB. */
int store_run_begin(store *s, const char *kind, const char *config_json, const char *command,
                    const char *backend, uint64_t seed, int64_t *run_id, sim_err *err) {
    sqlite3_stmt *st = NULL;
    binder b;
    int rc;
    sim_err_clear(err);
    if (s->run_open) {
        sim_err_set(&s->last, s->path, 0, 0,
                    "run: expected no open run, got run %lld still open (finish or fail it first)",
                    (long long)s->run_id);
        return store_error(s, err, SIM_EINVAL);
    }
    if (kind == NULL || kind[0] == '\0') {
        sim_err_set(&s->last, s->path, 0, 0, "kind: expected a run kind such as 'run', got ''");
        return store_error(s, err, SIM_EINVAL);
    }
    if (config_json != NULL) {
        json_error_t jerr;
        json_t *j = json_loads(config_json, 0, &jerr);
        int is_object = json_is_object(j);
        json_decref(j);
        if (!is_object) {
            sim_err_set(&s->last, "config", j ? 0 : jerr.line, j ? 0 : jerr.column,
                        "config: expected a JSON object, got %s",
                        j ? "another JSON value" : jerr.text);
            return store_error(s, err, SIM_EINVAL);
        }
    }
    rc = prepare(s, insert_run_sql, &st, "prepare runs insert", err);
    if (rc != SIM_OK)
        return rc;
    b = bind_start(st);
    bind_text(&b, kind);
    bind_i64(&b, (int64_t)seed);
    bind_text(&b, code_version());
    bind_text(&b, config_json);
    bind_text(&b, command);
    bind_text(&b, backend);
    rc = step_once(s, &b, "insert runs row", err);
    sqlite3_finalize(st);
    if (rc != SIM_OK)
        return rc;
    s->run_id = sqlite3_last_insert_rowid(s->db);
    s->run_open = 1;
    s->n_pending = 0;
    rc = rows_begin(s, err);
    if (rc == SIM_OK)
        rc = db_exec(s, "BEGIN", "begin rows transaction", err);
    if (rc != SIM_OK) {
        sim_err saved = s->last;
        store_run_fail(s, saved.msg);
        s->last = saved;
        return rc;
    }
    *run_id = s->run_id;
    return SIM_OK;
}

/* Sets the open run's status to 'done' or 'failed' (with error_msg) and finished_at to now. */
static int set_status(store *s, const char *status, const char *error_msg, sim_err *err) {
    sqlite3_stmt *st = NULL;
    binder b;
    int rc = prepare(
        s, "UPDATE runs SET status = ?, error = ?, finished_at = " NOW_SQL " WHERE run_id = ?", &st,
        "prepare runs status update", err);
    if (rc != SIM_OK)
        return rc;
    b = bind_start(st);
    bind_text(&b, status);
    bind_text(&b, error_msg);
    bind_i64(&b, s->run_id);
    rc = step_once(s, &b, "update runs status", err);
    sqlite3_finalize(st);
    return rc;
}

/* Ends the open run successfully: writes the buffered rows, inserts its
 * summary row (skipped when sum is NULL) and sets status 'done' and
 * finished_at, in the transaction that holds the last rows, then commits.
 * On failure (SIM_EDB, or SIM_EINVAL when no run is open) the run stays
 * open and not 'done': call store_run_fail. */
int store_run_finish(store *s, const met_summary *sum, sim_err *err) {
    int rc;
    sim_err_clear(err);
    if (!s->run_open) {
        sim_err_set(&s->last, s->path, 0, 0, "run: expected an open run, got none");
        return store_error(s, err, SIM_EINVAL);
    }
    rc = rows_flush(s, err);
    if (rc != SIM_OK)
        return rc;
    if (sum != NULL) {
        sqlite3_stmt *st = NULL;
        binder b;
        rc = prepare(s, insert_summary_sql, &st, "prepare summary insert", err);
        if (rc != SIM_OK)
            return rc;
        b = bind_start(st);
        bind_i64(&b, s->run_id);
#define STORE_BIND_I(name)        bind_i64(&b, sum->name)
#define STORE_BIND_D(name)        bind_real(&b, sum->name)
#define STORE_XX_BIND(name, kind) STORE_BIND_##kind(name);
        MET_SUMMARY_MAP(STORE_XX_BIND)
#undef STORE_XX_BIND
#undef STORE_BIND_D
#undef STORE_BIND_I
        rc = step_once(s, &b, "insert summary row", err);
        sqlite3_finalize(st);
        if (rc != SIM_OK)
            return rc;
    }
    rc = set_status(s, "done", NULL, err);
    if (rc != SIM_OK)
        return rc;
    rc = db_exec(s, "COMMIT", "commit run", err);
    if (rc != SIM_OK)
        return rc;
    s->run_open = 0;
    return SIM_OK;
}

/* Deletes every row of the open run's row tables (requests, steps,
 * timeline), inside the caller's transaction. */
static int rows_delete(store *s) {
    int t, rc = SIM_OK;
    for (t = 0; t < N_TABLES && rc == SIM_OK; t++) {
        char sql[96];
        sqlite3_stmt *st = NULL;
        binder b;
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE run_id = ?", row_tables[t].name);
        rc = prepare(s, sql, &st, "prepare rows delete", NULL);
        if (rc != SIM_OK)
            return rc;
        b = bind_start(st);
        bind_i64(&b, s->run_id);
        rc = step_once(s, &b, "delete a failed run's rows", NULL);
        sqlite3_finalize(st);
    }
    return rc;
}

/* Ends the open run as failed: its rows go (those buffered, those of the
 * open transaction and those committed before, so a failed run holds no
 * result rows, only its runs row), and it gets status 'failed', error
 * (error_msg, or "unknown error" when NULL or empty) and finished_at, in one
 * transaction. If the rows cannot be deleted (a full disk, say), only the
 * status is written, and the rows committed before stay beside 'failed'.
 * Whatever happens, the run is closed and never 'done'. Returns SIM_OK
 * (also when no run is open) or SIM_EDB (the status could not be written;
 * the row then says 'running'; see store_errmsg). */
int store_run_fail(store *s, const char *error_msg) {
    int rc;
    if (s == NULL || !s->run_open)
        return SIM_OK;
    if (error_msg == NULL || error_msg[0] == '\0')
        error_msg = "unknown error";
    s->run_open = 0;
    rows_drop(s);
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    rc = db_exec(s, "BEGIN", "begin failed run", NULL);
    if (rc == SIM_OK)
        rc = rows_delete(s);
    if (rc == SIM_OK)
        rc = set_status(s, "failed", error_msg, NULL);
    if (rc == SIM_OK)
        rc = db_exec(s, "COMMIT", "commit failed run", NULL);
    if (rc == SIM_OK)
        return SIM_OK;
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return set_status(s, "failed", error_msg, NULL);
}

/* Closes the store: a run still open is marked failed ("interrupted"),
 * statements are finalized and the connection closed. NULL is a no-op. */
void store_close(store *s) {
    int t;
    if (s == NULL)
        return;
    store_run_fail(s, "interrupted");
    for (t = 0; t < N_TABLES; t++) {
        sqlite3_finalize(s->bufs[t].ins_one);
        sqlite3_finalize(s->bufs[t].ins_batch);
    }
    sqlite3_close(s->db);
    sim_free(s->path);
    sim_free(s);
}

/* ---- binding rows ---- */

/* Binds one requests row. ttft_s, e2e_s and tpot_s are derived here and are
 * NULL for rejected requests; tpot_s needs >= 2 output tokens. r->reject was
 * checked by sink_request. */
static void bind_request(binder *b, const met_request *r) {
    int rejected = r->reject != MET_REJECT_NONE;
    double ttft = NAN, tpot = NAN, e2e = NAN;
    if (!rejected) {
        ttft = r->first_token_s - r->arrival_s;
        e2e = r->finish_s - r->arrival_s;
        if (r->output_tokens >= 2)
            tpot = (r->finish_s - r->first_token_s) / (double)(r->output_tokens - 1);
    }
    bind_i64(b, (int64_t)r->id);
    bind_i64(b, r->replica);
    bind_real(b, r->arrival_s);
    bind_real(b, r->first_token_s);
    bind_real(b, r->finish_s);
    bind_real(b, ttft);
    bind_real(b, tpot);
    bind_real(b, e2e);
    bind_i64(b, r->prompt_tokens);
    bind_i64(b, r->new_tokens);
    bind_i64(b, r->output_tokens);
    bind_i64(b, r->preemptions);
    bind_i64(b, r->recomputed_tokens);
    bind_i64(b, r->hit_tokens);
    bind_i64(b, r->session_id);
    bind_i64(b, r->turn);
    bind_i64(b, rejected);
    bind_text(b, rejected ? reject_names[r->reject] : NULL);
}

/* Binds one steps row; kv_util is derived (NULL when the pool is empty).
 * m->bound was checked by sink_step. */
static void bind_step(binder *b, const met_step *m) {
    bind_i64(b, m->replica);
    bind_i64(b, m->step);
    bind_real(b, m->start_s);
    bind_real(b, m->dur_s);
    bind_real(b, m->pred_s);
    bind_real(b, m->meas_s);
    bind_i64(b, m->batch_size);
    bind_i64(b, m->n_prefill);
    bind_i64(b, m->n_decode);
    bind_i64(b, m->prefill_tokens);
    bind_i64(b, m->decode_tokens);
    bind_i64(b, m->kv_blocks_used);
    bind_i64(b, m->kv_blocks_total);
    bind_real(b, m->kv_blocks_total > 0 ? (double)m->kv_blocks_used / (double)m->kv_blocks_total
                                        : NAN);
    bind_i64(b, m->waiting);
    bind_real(b, m->flops);
    bind_real(b, m->bytes);
    bind_real(b, m->intensity);
    bind_real(b, m->balance);
    bind_text(b, bound_names[m->bound]);
}

/* Binds one timeline row. */
static void bind_timeline(binder *b, const met_timeline *t) {
    bind_i64(b, t->replica);
    bind_real(b, t->t_s);
    bind_real(b, t->dt_s);
    bind_real(b, t->batch_mean);
    bind_real(b, t->waiting_mean);
    bind_real(b, t->kv_util_mean);
    bind_real(b, t->busy_frac);
    bind_i64(b, t->arrivals);
    bind_i64(b, t->completions);
    bind_i64(b, t->rejections);
    bind_i64(b, t->output_tokens);
}

/* Binds buffered rows first..first+n-1 of table t to st, after its run_id. */
static binder bind_rows(store *s, int t, sqlite3_stmt *st, int first, int n) {
    binder b = bind_rows_start(st);
    int i;
    for (i = first; i < first + n; i++) {
        switch (t) {
            case TABLE_REQUESTS:
                bind_request(&b, &s->requests[i]);
                break;
            case TABLE_STEPS:
                bind_step(&b, &s->steps[i]);
                break;
            default:
                bind_timeline(&b, &s->timeline[i]);
                break;
        }
    }
    return b;
}

/* ---- row buffers ---- */

/* Binds the open run's id to every sink statement and empties the buffers. */
static int rows_begin(store *s, sim_err *err) {
    int t, rc = SQLITE_OK;
    for (t = 0; t < N_TABLES; t++) {
        s->bufs[t].n = 0;
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(s->bufs[t].ins_one, 1, s->run_id);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_int64(s->bufs[t].ins_batch, 1, s->run_id);
    }
    return rc == SQLITE_OK ? SIM_OK : store_db_error(s, err, "bind run_id");
}

/* Forgets the buffered rows. */
static void rows_drop(store *s) {
    int t;
    for (t = 0; t < N_TABLES; t++)
        s->bufs[t].n = 0;
}

/* Inserts every buffered row, one statement per row, and empties the
 * buffers; on failure the rows not yet inserted are dropped. */
static int rows_flush(store *s, sim_err *err) {
    int t, i, n, rc;
    for (t = 0; t < N_TABLES; t++) {
        n = s->bufs[t].n;
        s->bufs[t].n = 0;
        for (i = 0; i < n; i++) {
            binder b = bind_rows(s, t, s->bufs[t].ins_one, i, 1);
            rc = step_once(s, &b, row_tables[t].what, err);
            if (rc != SIM_OK)
                return rc;
        }
    }
    return SIM_OK;
}

static int no_run(store *s) {
    sim_err_set(&s->last, s->path, 0, 0, "rows: expected an open run (store_run_begin), got none");
    return SIM_EINVAL;
}

/* Takes the row just copied into table t's buffer: steps the batch when the
 * buffer is full (its rows are dropped if that fails), and every
 * STORE_COMMIT_ROWS rows writes the buffers out and commits. */
static int row_added(store *s, int t) {
    row_buf *rb = &s->bufs[t];
    int rc = SIM_OK;
    if (++rb->n == STORE_BATCH_ROWS) {
        binder b = bind_rows(s, t, rb->ins_batch, 0, STORE_BATCH_ROWS);
        rb->n = 0;
        rc = step_once(s, &b, row_tables[t].what, NULL);
        if (rc != SIM_OK)
            return rc;
    }
    if (++s->n_pending < STORE_COMMIT_ROWS)
        return SIM_OK;
    s->n_pending = 0;
    rc = rows_flush(s, NULL);
    if (rc == SIM_OK)
        rc = db_exec(s, "COMMIT", "commit rows", NULL);
    if (rc == SIM_OK)
        rc = db_exec(s, "BEGIN", "begin rows transaction", NULL);
    return rc;
}

/* ---- the sink ---- */

/* Checks one requests row and buffers it. */
static int sink_request(void *ctx, const met_request *r) {
    store *s = ctx;
    if (!s->run_open)
        return no_run(s);
    if ((unsigned)r->reject >= (unsigned)MET_N_REJECT) {
        sim_err_set(&s->last, s->path, 0, 0, "request %llu: reject: expected 0..%d, got '%d'",
                    (unsigned long long)r->id, MET_N_REJECT - 1, (int)r->reject);
        return SIM_EINVAL;
    }
    s->requests[s->bufs[TABLE_REQUESTS].n] = *r;
    return row_added(s, TABLE_REQUESTS);
}

/* Checks one steps row and buffers it. */
static int sink_step(void *ctx, const met_step *m) {
    store *s = ctx;
    if (!s->run_open)
        return no_run(s);
    if (m->bound < 0 || m->bound >= N_BOUNDS) {
        sim_err_set(&s->last, s->path, 0, 0,
                    "step %lld of replica %d: bound: expected 0..%d, got '%d'", (long long)m->step,
                    m->replica, N_BOUNDS - 1, m->bound);
        return SIM_EINVAL;
    }
    s->steps[s->bufs[TABLE_STEPS].n] = *m;
    return row_added(s, TABLE_STEPS);
}

/* Buffers one timeline row. */
static int sink_timeline(void *ctx, const met_timeline *t) {
    store *s = ctx;
    if (!s->run_open)
        return no_run(s);
    s->timeline[s->bufs[TABLE_TIMELINE].n] = *t;
    return row_added(s, TABLE_TIMELINE);
}

/* The sink writing the open run's rows; with s NULL, a sink that drops
 * every row. A callback returns SIM_OK, SIM_EINVAL (no open run, or a field
 * outside its range) or SIM_EDB; the message is in store_errmsg(s). */
met_sink store_sink(store *s) {
    met_sink k = {NULL, NULL, NULL, NULL};
    if (s == NULL)
        return k;
    k.ctx = s;
    k.on_request = sink_request;
    k.on_step = sink_step;
    k.on_timeline = sink_timeline;
    return k;
}

/* ---- reading ---- */

int store_has_table(sqlite3 *db, const char *name) {
    sqlite3_stmt *st = NULL;
    int found;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

int store_open_read(const char *path, sqlite3 **db, sim_err *err) {
    int v = 0, rc, src;
    *db = NULL;
    if (path == NULL || path[0] == '\0' || access(path, F_OK) != 0) {
        sim_err_set(err, path ? path : "", 0, 0, "results file: expected an existing file");
        return SIM_ENOENT;
    }
    src = sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_busy_timeout(*db, STORE_BUSY_MS);
    if (src == SQLITE_OK)
        src = sqlite3_exec(*db, "PRAGMA query_only = 1", NULL, NULL, NULL);
    if (src == SQLITE_OK)
        src = read_user_version(*db, &v);
    /* the schema is read now, so that a corrupt file is refused here as bad
     * input, by every reader alike, not by its first query */
    if (src == SQLITE_OK)
        src = sqlite3_exec(*db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL);
    if (src == SQLITE_NOTADB) { /* bad input, not a failure */
        sim_err_set(err, path, 0, 0,
                    "results file: expected a kvfleet results file, got a file that is not a "
                    "SQLite database");
        rc = SIM_EINVAL;
    } else if (src != SQLITE_OK) {
        rc = db_error(err, path, *db, "open");
    } else if (v < 1 || v > STORE_SCHEMA_VERSION) {
        rc = version_error(err, path, v);
    } else {
        return SIM_OK;
    }
    sqlite3_close(*db);
    *db = NULL;
    return rc;
}

/* Fills *err for a run id that the file does not hold, naming those it does. */
static int unknown_run(sqlite3 *db, const char *path, int64_t run_id, sim_err *err) {
    sqlite3_stmt *st = NULL;
    long long n = 0, lo = 0, hi = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*), min(run_id), max(run_id) FROM runs", -1, &st,
                           NULL) != SQLITE_OK)
        return db_error(err, path, db, "count runs");
    if (sqlite3_step(st) == SQLITE_ROW) {
        n = sqlite3_column_int64(st, 0);
        lo = sqlite3_column_int64(st, 1);
        hi = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    if (n == 0)
        sim_err_set(err, path, 0, 0,
                    "run_id: expected a stored run, got '%lld' (the file holds no runs)",
                    (long long)run_id);
    else
        sim_err_set(err, path, 0, 0,
                    "run_id: expected one of the %lld stored runs (ids %lld..%lld), got '%lld'", n,
                    lo, hi, (long long)run_id);
    return SIM_ENOENT;
}

/* Reads the config JSON stored with run_id in the file at db_path (for
 * `kvfleet rerun`). Returns SIM_OK and an owned *config_json_out (free with
 * sim_free), SIM_ENOENT for a missing file, an unknown run id or a run
 * stored without a config, SIM_EINVAL (not a kvfleet results file, or one of
 * a newer schema), SIM_ENOMEM, or SIM_EDB. */
int store_run_config(const char *db_path, int64_t run_id, char **config_json_out, sim_err *err) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc;
    *config_json_out = NULL;
    sim_err_clear(err);
    rc = store_open_read(db_path, &db, err);
    if (rc != SIM_OK)
        goto out;
    if (sqlite3_prepare_v2(db, "SELECT config FROM runs WHERE run_id = ?", -1, &st, NULL) !=
        SQLITE_OK) {
        rc = db_error(err, db_path, db, "read run config");
        goto out;
    }
    sqlite3_bind_int64(st, 1, run_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        rc = unknown_run(db, db_path, run_id, err);
    } else if (rc != SQLITE_ROW) {
        rc = db_error(err, db_path, db, "read run config");
    } else if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
        sim_err_set(err, db_path, 0, 0, "config: expected a stored config for run %lld, got NULL",
                    (long long)run_id);
        rc = SIM_ENOENT;
    } else {
        const unsigned char *text = sqlite3_column_text(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        char *copy = text ? sim_malloc(n + 1) : NULL;
        if (copy == NULL) {
            sim_err_set(err, db_path, 0, 0, "read run config: out of memory");
            rc = SIM_ENOMEM;
        } else {
            memcpy(copy, text, n);
            copy[n] = '\0';
            *config_json_out = copy;
            rc = SIM_OK;
        }
    }
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* Reads the summary row of run_id from the file at db_path into *out: a NULL
 * REAL column becomes NAN, a NULL INTEGER column 0 (columns added after the
 * run was written read NULL). Returns SIM_OK, SIM_ENOENT (missing file,
 * unknown run id, or a run without a summary: still running, failed or never
 * finished), SIM_EINVAL (not a kvfleet results file) or SIM_EDB. */
int store_summary_get(const char *db_path, int64_t run_id, met_summary *out, sim_err *err) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc, k;
    sim_err_clear(err);
    rc = store_open_read(db_path, &db, err);
    if (rc != SIM_OK)
        goto out;
    if (sqlite3_prepare_v2(db, select_summary_sql, -1, &st, NULL) != SQLITE_OK) {
        rc = db_error(err, db_path, db, "read summary");
        goto out;
    }
    sqlite3_bind_int64(st, 1, run_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        k = 1;
#define STORE_GET_I(name)                                                                          \
    out->name = sqlite3_column_type(st, k) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, k)
#define STORE_GET_D(name)                                                                          \
    out->name = sqlite3_column_type(st, k) == SQLITE_NULL ? NAN : sqlite3_column_double(st, k)
#define STORE_XX_GET(name, kind)                                                                   \
    STORE_GET_##kind(name);                                                                        \
    k++;
        MET_SUMMARY_MAP(STORE_XX_GET)
#undef STORE_XX_GET
#undef STORE_GET_D
#undef STORE_GET_I
        rc = SIM_OK;
    } else if (rc == SQLITE_DONE) {
        sqlite3_finalize(st);
        st = NULL;
        if (sqlite3_prepare_v2(db, "SELECT status FROM runs WHERE run_id = ?", -1, &st, NULL) !=
            SQLITE_OK) {
            rc = db_error(err, db_path, db, "read run status");
            goto out;
        }
        sqlite3_bind_int64(st, 1, run_id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            sim_err_set(err, db_path, 0, 0,
                        "run_id: expected a run with a summary, got '%lld' (status '%s')",
                        (long long)run_id, (const char *)sqlite3_column_text(st, 0));
            rc = SIM_ENOENT;
        } else {
            rc = unknown_run(db, db_path, run_id, err);
        }
    } else {
        rc = db_error(err, db_path, db, "read summary");
    }
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
