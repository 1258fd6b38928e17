/* test_store.c: the SQLite results store (runtime/store.c).
 *
 * Writes runs into temporary files and reads them back with plain sqlite3
 * calls, so the test checks the file users see (docs/results.md), not the
 * store's own view of it: exact row values, NULL for NAN, the summary
 * columns against MET_SUMMARY_MAP, status transitions (running, done,
 * failed, interrupted, and a crashed process that leaves 'running'),
 * rows in batches and at commit boundaries, several runs in one file, schema versions, the config
 * round trip and error messages, and allocation failures. */
#define _POSIX_C_SOURCE 200809L /* mkstemp, fork, waitpid, before any system header */
#include "config.h"

#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "mem.h"
#include "metrics.h"
#include "store.h"
#include "t.h"

/* ---- helpers ---- */

/* A temporary results file; remove it (and SQLite's journal) with tmp_remove. */
static void tmp_path(char *buf, size_t n) {
    int fd;
    snprintf(buf, n, "/tmp/kvfleet-test-store-XXXXXX");
    fd = mkstemp(buf);
    T_ASSERT(fd >= 0);
    close(fd);
}

static void tmp_remove(const char *path) {
    char j[512];
    snprintf(j, sizeof j, "%s-journal", path);
    unlink(path);
    unlink(j);
}

static sqlite3 *db_open(const char *path) {
    sqlite3 *db = NULL;
    T_EQ_I(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static sqlite3_stmt *q(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        T_FAIL_("prepare '%s': %s", sql, sqlite3_errmsg(db));
    return st;
}

/* The first column of the first row of sql, as an integer. */
static int64_t q_int(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st = q(db, sql);
    int64_t v;
    T_EQ_I(sqlite3_step(st), SQLITE_ROW);
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The first column of the first row of sql, as text ("<NULL>" for NULL). */
static const char *q_text(sqlite3 *db, const char *sql) {
    static char buf[1024];
    sqlite3_stmt *st = q(db, sql);
    T_EQ_I(sqlite3_step(st), SQLITE_ROW);
    if (sqlite3_column_type(st, 0) == SQLITE_NULL)
        snprintf(buf, sizeof buf, "<NULL>");
    else
        snprintf(buf, sizeof buf, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return buf;
}

static void exec_ok(sqlite3 *db, const char *sql) {
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        T_FAIL_("exec '%s': %s", sql, sqlite3_errmsg(db));
}

/* Column i of st equals the double v exactly, or is NULL when v is NAN. */
static void col_real(sqlite3_stmt *st, int i, double v) {
    if (isnan(v)) {
        if (sqlite3_column_type(st, i) != SQLITE_NULL)
            T_FAIL_("column %d (%s): expected NULL, got %.17g", i, sqlite3_column_name(st, i),
                    sqlite3_column_double(st, i));
        return;
    }
    T_EQ_I(sqlite3_column_type(st, i), SQLITE_FLOAT);
    if (sqlite3_column_double(st, i) != v)
        T_FAIL_("column %d (%s): %.17g != %.17g", i, sqlite3_column_name(st, i),
                sqlite3_column_double(st, i), v);
}

static void col_int(sqlite3_stmt *st, int i, int64_t v) {
    T_EQ_I(sqlite3_column_type(st, i), SQLITE_INTEGER);
    T_EQ_I(sqlite3_column_int64(st, i), v);
}

static void col_text(sqlite3_stmt *st, int i, const char *v) {
    if (v == NULL) {
        T_EQ_I(sqlite3_column_type(st, i), SQLITE_NULL);
        return;
    }
    T_EQ_I(sqlite3_column_type(st, i), SQLITE_TEXT);
    T_STREQ((const char *)sqlite3_column_text(st, i), v);
}

static met_request req_done(uint64_t id, int32_t out_tokens) {
    met_request r;
    memset(&r, 0, sizeof r);
    r.id = id;
    r.replica = 1;
    r.arrival_s = 0.25 + (double)id;
    r.first_token_s = r.arrival_s + 0.125;
    r.finish_s = r.first_token_s + 0.0625 * (out_tokens - 1);
    r.prompt_tokens = 100;
    r.new_tokens = 40;
    r.output_tokens = out_tokens;
    r.preemptions = 2;
    r.recomputed_tokens = 33;
    r.hit_tokens = 60;
    r.session_id = 7;
    r.turn = 3;
    r.reject = MET_REJECT_NONE;
    return r;
}

static met_request req_rejected(uint64_t id) {
    met_request r = req_done(id, 1);
    r.replica = -1;
    r.first_token_s = NAN;
    r.finish_s = r.arrival_s;
    r.output_tokens = 0;
    r.preemptions = 0;
    r.recomputed_tokens = 0;
    r.hit_tokens = 0;
    r.session_id = -1;
    r.turn = 0;
    r.reject = MET_REJECT_QUEUE_FULL;
    return r;
}

static met_step step_row(int64_t i) {
    met_step m;
    memset(&m, 0, sizeof m);
    m.step = i;
    m.replica = 1;
    m.start_s = 0.5 * (double)i;
    m.dur_s = 0.03125;
    m.pred_s = 0.03;
    m.meas_s = NAN;
    m.batch_size = 8;
    m.n_prefill = 2;
    m.n_decode = 6;
    m.prefill_tokens = 512;
    m.decode_tokens = 6;
    m.kv_blocks_used = 30;
    m.kv_blocks_total = 120;
    m.waiting = 4;
    m.flops = 1.5e12;
    m.bytes = 3.0e10;
    m.intensity = 50.0;
    m.balance = 295.0;
    m.bound = 1;
    return m;
}

/* A summary with every field set: integers i * 10, doubles i + 0.5, and a few NAN. */
static met_summary summary_fill(void) {
    met_summary sum;
    int i = 0;
#define FILL_I(name) sum.name = (int64_t)i * 10
#define FILL_D(name) sum.name = i + 0.5
#define XX(name, kind)                                                                             \
    FILL_##kind(name);                                                                             \
    i++;
    MET_SUMMARY_MAP(XX)
#undef XX
#undef FILL_D
#undef FILL_I
    sum.tpot_p99_s = NAN;
    sum.slo_attainment = NAN;
    return sum;
}

static const char *const summary_names[] = {
#define XX(name, kind) #name,
    MET_SUMMARY_MAP(XX)
#undef XX
};
static const char summary_kinds[] = {
#define XX(name, kind) #kind[0],
    MET_SUMMARY_MAP(XX)
#undef XX
};
#define N_SUMMARY ((int)(sizeof summary_names / sizeof summary_names[0]))

static const char config_json[] = "{\"seed\": 42, \"model\": {\"name\": \"tiny\"}, \"x\": 1.5}";

/* ---- cases ---- */

/* begin, rows, finish; read back every value. */
static void test_roundtrip(void) {
    char path[64], sql[256];
    store *s = NULL;
    sim_err err;
    int64_t id = 0;
    met_sink k;
    met_request r0 = req_done(0, 5), r1 = req_rejected(1), r2 = req_done(2, 1);
    met_step m0 = step_row(0), m1 = step_row(1);
    met_timeline tl = {.replica = 1,
                       .t_s = 0.0,
                       .dt_s = 1.0,
                       .batch_mean = 6.5,
                       .waiting_mean = 2.25,
                       .kv_util_mean = 0.375,
                       .busy_frac = 0.875,
                       .arrivals = 12,
                       .completions = 10,
                       .rejections = 1,
                       .output_tokens = 345};
    met_summary sum = summary_fill(), got;
    sqlite3 *db;
    sqlite3_stmt *st;
    int i;

    tmp_path(path, sizeof path);
    T_EQ_I(store_open(path, &s, &err), SIM_OK);
    T_EQ_I(store_run_begin(s, "run", config_json, "kvfleet run --seed 42 x.json", "sim",
                           UINT64_C(42), &id, &err),
           SIM_OK);
    T_EQ_I(id, 1);
    k = store_sink(s);
    T_ASSERT(k.ctx == s && k.on_request && k.on_step && k.on_timeline);
    T_EQ_I(k.on_request(k.ctx, &r0), SIM_OK);
    T_EQ_I(k.on_request(k.ctx, &r1), SIM_OK);
    T_EQ_I(k.on_request(k.ctx, &r2), SIM_OK);
    m1.kv_blocks_total = 0; /* kv_util undefined */
    m1.meas_s = 0.04;
    m1.bound = 3;
    T_EQ_I(k.on_step(k.ctx, &m0), SIM_OK);
    T_EQ_I(k.on_step(k.ctx, &m1), SIM_OK);
    T_EQ_I(k.on_timeline(k.ctx, &tl), SIM_OK);

    /* While the run is open another connection sees it running, without rows. */
    db = db_open(path);
    T_STREQ(q_text(db, "SELECT status FROM runs WHERE run_id = 1"), "running");
    T_EQ_I(q_int(db, "SELECT count(*) FROM requests"), 0);
    sqlite3_close(db);

    T_EQ_I(store_run_finish(s, &sum, &err), SIM_OK);
    store_close(s);

    db = db_open(path);
    T_EQ_I(q_int(db, "PRAGMA user_version"), 1);
    st = q(db, "SELECT run_id, kind, status, error, seed, config, command, backend,"
               " length(created_at), substr(created_at, 11, 1), substr(created_at, 20, 1),"
               " finished_at IS NOT NULL, length(code_version) > 0 FROM runs");
    T_EQ_I(sqlite3_step(st), SQLITE_ROW);
    col_int(st, 0, 1);
    col_text(st, 1, "run");
    col_text(st, 2, "done");
    col_text(st, 3, NULL);
    col_int(st, 4, 42);
    col_text(st, 5, config_json);
    col_text(st, 6, "kvfleet run --seed 42 x.json");
    col_text(st, 7, "sim");
    col_int(st, 8, 20); /* 2024-01-02T03:04:05Z */
    col_text(st, 9, "T");
    col_text(st, 10, "Z");
    col_int(st, 11, 1);
    col_int(st, 12, 1);
    T_EQ_I(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);

    st = q(db, "SELECT run_id, id, replica, arrival_s, first_token_s, finish_s, ttft_s, tpot_s,"
               " e2e_s, prompt_tokens, new_tokens, output_tokens, preemptions,"
               " recomputed_tokens, hit_tokens, session_id, turn, rejected, reject_reason"
               " FROM requests ORDER BY id");
    for (i = 0; i < 3; i++) {
        const met_request *r = i == 0 ? &r0 : i == 1 ? &r1 : &r2;
        int rej = r->reject != MET_REJECT_NONE;
        T_EQ_I(sqlite3_step(st), SQLITE_ROW);
        col_int(st, 0, 1);
        col_int(st, 1, (int64_t)r->id);
        col_int(st, 2, r->replica);
        col_real(st, 3, r->arrival_s);
        col_real(st, 4, r->first_token_s);
        col_real(st, 5, r->finish_s);
        col_real(st, 6, rej ? NAN : r->first_token_s - r->arrival_s);
        col_real(st, 7,
                 r->output_tokens >= 2
                     ? (r->finish_s - r->first_token_s) / (double)(r->output_tokens - 1)
                     : NAN);
        col_real(st, 8, rej ? NAN : r->finish_s - r->arrival_s);
        col_int(st, 9, r->prompt_tokens);
        col_int(st, 10, r->new_tokens);
        col_int(st, 11, r->output_tokens);
        col_int(st, 12, r->preemptions);
        col_int(st, 13, r->recomputed_tokens);
        col_int(st, 14, r->hit_tokens);
        col_int(st, 15, r->session_id);
        col_int(st, 16, r->turn);
        col_int(st, 17, rej);
        col_text(st, 18, rej ? "queue_full" : NULL);
    }
    T_EQ_I(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    /* The numbers the docs promise for r0: TTFT 0.125 s, TPOT 0.0625 s. */
    T_STREQ(q_text(db, "SELECT printf('%g %g %g', ttft_s, tpot_s, e2e_s) FROM requests"
                       " WHERE id = 0"),
            "0.125 0.0625 0.375");

    st = q(db, "SELECT run_id, replica, step, start_s, dur_s, pred_s, meas_s, batch_size,"
               " n_prefill, n_decode, prefill_tokens, decode_tokens, kv_blocks_used,"
               " kv_blocks_total, kv_util, waiting, flops, bytes, intensity, balance, bound"
               " FROM steps ORDER BY step");
    for (i = 0; i < 2; i++) {
        const met_step *m = i == 0 ? &m0 : &m1;
        T_EQ_I(sqlite3_step(st), SQLITE_ROW);
        col_int(st, 0, 1);
        col_int(st, 1, m->replica);
        col_int(st, 2, m->step);
        col_real(st, 3, m->start_s);
        col_real(st, 4, m->dur_s);
        col_real(st, 5, m->pred_s);
        col_real(st, 6, m->meas_s);
        col_int(st, 7, m->batch_size);
        col_int(st, 8, m->n_prefill);
        col_int(st, 9, m->n_decode);
        col_int(st, 10, m->prefill_tokens);
        col_int(st, 11, m->decode_tokens);
        col_int(st, 12, m->kv_blocks_used);
        col_int(st, 13, m->kv_blocks_total);
        col_real(st, 14, i == 0 ? 0.25 : NAN);
        col_int(st, 15, m->waiting);
        col_real(st, 16, m->flops);
        col_real(st, 17, m->bytes);
        col_real(st, 18, m->intensity);
        col_real(st, 19, m->balance);
        col_text(st, 20, i == 0 ? "hbm" : "overhead");
    }
    T_EQ_I(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);

    st = q(db, "SELECT run_id, replica, t_s, dt_s, batch_mean, waiting_mean, kv_util_mean,"
               " busy_frac, arrivals, completions, rejections, output_tokens FROM timeline");
    T_EQ_I(sqlite3_step(st), SQLITE_ROW);
    col_int(st, 0, 1);
    col_int(st, 1, tl.replica);
    col_real(st, 2, tl.t_s);
    col_real(st, 3, tl.dt_s);
    col_real(st, 4, tl.batch_mean);
    col_real(st, 5, tl.waiting_mean);
    col_real(st, 6, tl.kv_util_mean);
    col_real(st, 7, tl.busy_frac);
    col_int(st, 8, tl.arrivals);
    col_int(st, 9, tl.completions);
    col_int(st, 10, tl.rejections);
    col_int(st, 11, tl.output_tokens);
    T_EQ_I(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);

    /* summary: run_id then one column per MET_SUMMARY_MAP field, in order, typed by kind. */
    st = q(db, "SELECT name, type FROM pragma_table_info('summary') ORDER BY cid");
    T_EQ_I(sqlite3_step(st), SQLITE_ROW);
    col_text(st, 0, "run_id");
    for (i = 0; i < N_SUMMARY; i++) {
        T_EQ_I(sqlite3_step(st), SQLITE_ROW);
        col_text(st, 0, summary_names[i]);
        col_text(st, 1, summary_kinds[i] == 'I' ? "INTEGER" : "REAL");
    }
    T_EQ_I(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    snprintf(sql, sizeof sql, "SELECT * FROM summary WHERE run_id = %lld", (long long)id);
    st = q(db, sql);
    T_EQ_I(sqlite3_step(st), SQLITE_ROW);
    col_int(st, 0, id);
    i = 1;
#define CHECK_I(name) col_int(st, i, sum.name)
#define CHECK_D(name) col_real(st, i, sum.name)
#define XX(name, kind)                                                                             \
    CHECK_##kind(name);                                                                            \
    i++;
    MET_SUMMARY_MAP(XX)
#undef XX
#undef CHECK_D
#undef CHECK_I
    sqlite3_finalize(st);
    T_STREQ(q_text(db, "SELECT typeof(tpot_p99_s) || typeof(slo_attainment) FROM summary"),
            "nullnull");
    T_EQ_I(q_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN"
                     " ('requests_run_id', 'steps_run_id', 'timeline_run_id')"),
           3);
    sqlite3_close(db);

    /* store_summary_get gives the same struct back, NAN for NULL. */
    memset(&got, 0xff, sizeof got);
    T_EQ_I(store_summary_get(path, id, &got, &err), SIM_OK);
#define CMP_I(name) T_EQ_I(got.name, sum.name)
#define CMP_D(name)                                                                                \
    do {                                                                                           \
        if (isnan(sum.name))                                                                       \
            T_ASSERT(isnan(got.name));                                                             \
        else                                                                                       \
            T_ASSERT(got.name == sum.name);                                                        \
    } while (0)
#define XX(name, kind) CMP_##kind(name);
    MET_SUMMARY_MAP(XX)
#undef XX
#undef CMP_D
#undef CMP_I
    tmp_remove(path);
}

/* Two runs appended to one file, by two stores: distinct ids, nothing overwritten. */
static void test_two_runs(void) {
    char path[64];
    store *s = NULL;
    sim_err err;
    int64_t id1 = 0, id2 = 0;
    met_sink k;
    met_request r = req_done(0, 3);
    met_summary sum = summary_fill();
    sqlite3 *db;
    int i;

    tmp_path(path, sizeof path);
    T_EQ_I(store_open(path, &s, &err), SIM_OK);
    T_EQ_I(store_run_begin(s, "sweep-point", config_json, NULL, NULL, 1, &id1, &err), SIM_OK);
    k = store_sink(s);
    for (i = 0; i < 3; i++) {
        r.id = (uint64_t)i;
        T_EQ_I(k.on_request(k.ctx, &r), SIM_OK);
    }
    T_EQ_I(store_run_finish(s, &sum, &err), SIM_OK);
    /* A second run on the same store. */
    T_EQ_I(store_run_begin(s, "sweep-point", "{}", NULL, NULL, 2, &id2, &err), SIM_OK);
    T_NE_I(id1, id2);
    T_EQ_I(k.on_request(k.ctx, &r), SIM_OK);
    sum.requests = 999;
    T_EQ_I(store_run_finish(s, &sum, &err), SIM_OK);
    store_close(s);
    /* A third run by a new store on the existing file. */
    T_EQ_I(store_open(path, &s, &err), SIM_OK);
    T_EQ_I(store_run_begin(s, "run", "{}", NULL, NULL, UINT64_MAX, &id2, &err), SIM_OK);
    T_EQ_I(id2, 3);
    T_EQ_I(store_run_finish(s, NULL, &err), SIM_OK);
    store_close(s);

    db = db_open(path);
    T_EQ_I(q_int(db, "SELECT count(*) FROM runs WHERE status = 'done'"), 3);
    T_EQ_I(q_int(db, "SELECT count(*) FROM requests WHERE run_id = 1"), 3);
    T_EQ_I(q_int(db, "SELECT count(*) FROM requests WHERE run_id = 2"), 1);
    T_EQ_I(q_int(db, "SELECT requests FROM summary WHERE run_id = 1"), 0);
    T_EQ_I(q_int(db, "SELECT requests FROM summary WHERE run_id = 2"), 999);
    T_EQ_I(q_int(db, "SELECT count(*) FROM summary WHERE run_id = 3"), 0);
    T_EQ_I(q_int(db, "SELECT seed FROM runs WHERE run_id = 3"), -1); /* 2^64 - 1, as int64 */
    T_STREQ(q_text(db, "SELECT command || '|' || backend FROM runs WHERE run_id = 1"), "<NULL>");
    sqlite3_close(db);
    tmp_remove(path);
}

/* store_run_fail deletes the run's rows and says 'failed'; store_close says
 * 'interrupted' and deletes them too; another run's rows stay. */
static void test_fail_and_interrupt(void) {
    char path[64];
    store *s = NULL;
    sim_err err;
    int64_t id = 0;
    met_sink k;
    met_request r = req_done(0, 3);
    met_summary sum = summary_fill();
    sqlite3 *db;

    tmp_path(path, sizeof path);
    T_EQ_I(store_open(path, &s, &err), SIM_OK);
    T_EQ_I(store_run_begin(s, "run", config_json, NULL, "sim", 1, &id, &err), SIM_OK);
    k = store_sink(s);
    T_EQ_I(k.on_request(k.ctx, &r), SIM_OK);
    T_EQ_I(k.on_request(k.ctx, &r), SIM_OK);
    T_EQ_I(store_run_fail(s, "trace.csv:3: arrival: expected >= 0, got '-1'"), SIM_OK);
    T_EQ_I(store_run_fail(s, "twice"), SIM_OK); /* no open run: no-op */
    T_EQ_I(store_run_finish(s, &sum, &err), SIM_EINVAL);
    T_CONTAINS(err.msg, "expected an open run");
    /* Rows after the run ended are refused. */
    T_EQ_I(k.on_request(k.ctx, &r), SIM_EINVAL);
    T_CONTAINS(store_errmsg(s), "expected an open run");

    T_EQ_I(store_run_begin(s, "validate", NULL, NULL, "cpu", 2, &id, &err), SIM_OK);
    T_EQ_I(store_run_begin(s, "run", NULL, NULL, NULL, 3, &id, &err), SIM_EINVAL);
    T_CONTAINS(err.msg, "run 2 still open");
    T_EQ_I(k.on_request(k.ctx, &r), SIM_OK);
    store_close(s);

    db = db_open(path);
    T_STREQ(q_text(db, "SELECT status || ' ' || error FROM runs WHERE run_id = 1"),
            "failed trace.csv:3: arrival: expected >= 0, got '-1'");
    T_EQ_I(q_int(db, "SELECT finished_at IS NOT NULL FROM runs WHERE run_id = 1"), 1);
    T_EQ_I(q_int(db, "SELECT count(*) FROM requests WHERE run_id = 1"), 0);
    T_EQ_I(q_int(db, "SELECT count(*) FROM summary"), 0);
    T_STREQ(q_text(db, "SELECT status || ' ' || error FROM runs WHERE run_id = 2"),
            "failed interrupted");
    T_EQ_I(q_int(db, "SELECT count(*) FROM requests WHERE run_id = 2"), 0);
    T_EQ_I(q_int(db, "SELECT count(*) FROM runs"), 2);
    sqlite3_close(db);
    tmp_remove(path);
}

/* Many rows of the three tables, interleaved: every row comes back, in the
 * order written, with its values and its run's id, whatever statement
 * carried it (a full batch or the rows left over at finish, at a commit or
 * at a failure); a commit holds exactly STORE_COMMIT_ROWS rows. */
static void test_batches(void) {
    char path[64];
    store *s = NULL;
    sim_err err;
    int64_t id = 0, i, n_req = 0, n_step = 0, n_tl = 0;
    met_sink k;
    met_summary sum = summary_fill();
    sqlite3 *db;
    sqlite3_stmt *st;
    const int64_t n = 1001;

    tmp_path(path, sizeof path);
    T_EQ_I(store_open(path, &s, &err), SIM_OK);
    T_EQ_I(store_run_begin(s, "run", "{}", NULL, "sim", 1, &id, &err), SIM_OK);
    k = store_sink(s);
    for (i = 0; i < n; i++) {
        met_request r = i % 7 == 3 ? req_rejected((uint64_t)i) : req_done((uint64_t)i, 1 + i % 5);
        T_EQ_I(k.on_request(k.ctx, &r), SIM_OK);
        n_req++;
        if (i % 3 == 0) {
            met_step m = step_row(n_step++);
            T_EQ_I(k.on_step(k.ctx, &m), SIM_OK);
        }
        if (i % 10 == 0) {
            met_timeline tl = {.replica = (int)i, .t_s = (double)n_tl++, .dt_s = 1.0};
            T_EQ_I(k.on_timeline(k.ctx, &tl), SIM_OK);
        }
    }
    T_EQ_I(store_run_finish(s, &sum, &err), SIM_OK);

    db = db_open(path);
    T_EQ_I(q_int(db, "SELECT count(*) FROM requests WHERE run_id = 1"), n_req);
    T_EQ_I(q_int(db, "SELECT count(*) FROM steps WHERE run_id = 1"), n_step);
    T_EQ_I(q_int(db, "SELECT count(*) FROM timeline WHERE run_id = 1"), n_tl);
    st = q(db, "SELECT id, replica, arrival_s, first_token_s, finish_s, ttft_s, tpot_s, e2e_s,"
               " output_tokens, rejected, reject_reason FROM requests ORDER BY rowid");
    for (i = 0; i < n; i++) {
        met_request r = i % 7 == 3 ? req_rejected((uint64_t)i) : req_done((uint64_t)i, 1 + i % 5);
        int rejected = r.reject != MET_REJECT_NONE;
        T_EQ_I(sqlite3_step(st), SQLITE_ROW);
        col_int(st, 0, i);
        col_int(st, 1, r.replica);
        col_real(st, 2, r.arrival_s);
        col_real(st, 3, r.first_token_s);
        col_real(st, 4, r.finish_s);
        col_real(st, 5, rejected ? NAN : r.first_token_s - r.arrival_s);
        col_real(st, 6,
                 rejected || r.output_tokens < 2
                     ? NAN
                     : (r.finish_s - r.first_token_s) / (double)(r.output_tokens - 1));
        col_real(st, 7, rejected ? NAN : r.finish_s - r.arrival_s);
        col_int(st, 8, r.output_tokens);
        col_int(st, 9, rejected);
        col_text(st, 10, rejected ? "queue_full" : NULL);
    }
    T_EQ_I(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    st = q(db, "SELECT step, start_s FROM steps ORDER BY rowid");
    for (i = 0; i < n_step; i++) {
        T_EQ_I(sqlite3_step(st), SQLITE_ROW);
        col_int(st, 0, i);
        col_real(st, 1, 0.5 * (double)i);
    }
    sqlite3_finalize(st);
    st = q(db, "SELECT replica, t_s FROM timeline ORDER BY rowid");
    for (i = 0; i < n_tl; i++) {
        T_EQ_I(sqlite3_step(st), SQLITE_ROW);
        col_int(st, 0, 10 * i);
        col_real(st, 1, (double)i);
    }
    sqlite3_finalize(st);

    /* A second run: its rows name run 2; a commit holds exactly
     * STORE_COMMIT_ROWS rows; a failure deletes the rows committed before
     * it and those not yet committed, and leaves run 1's alone. */
    T_EQ_I(store_run_begin(s, "run", "{}", NULL, "sim", 2, &id, &err), SIM_OK);
    T_EQ_I(id, 2);
    for (i = 0; i < STORE_COMMIT_ROWS + 37; i++) {
        met_request r = req_done((uint64_t)i, 2);
        T_EQ_I(k.on_request(k.ctx, &r), SIM_OK);
        if (i == STORE_COMMIT_ROWS - 1)
            T_EQ_I(q_int(db, "SELECT count(*) FROM requests WHERE run_id = 2"), STORE_COMMIT_ROWS);
    }
    T_EQ_I(store_run_fail(s, "stopped"), SIM_OK);
    T_EQ_I(q_int(db, "SELECT count(*) FROM requests WHERE run_id = 2"), 0);
    T_EQ_I(q_int(db, "SELECT count(*) FROM requests WHERE run_id = 1"), n_req);
    T_STREQ(q_text(db, "SELECT status FROM runs WHERE run_id = 2"), "failed");
    sqlite3_close(db);
    store_close(s);
    tmp_remove(path);
}

/* A process that dies mid-run leaves 'running' and its committed batches, never 'done'. */
static void test_crash(void) {
    char path[64], journal[80], *cfg = NULL;
    store *s = NULL;
    sim_err err;
    int64_t id = 0;
    met_summary got;
    sqlite3 *db;
    pid_t pid;
    int status = 0;

    tmp_path(path, sizeof path);
    fflush(NULL);
    pid = fork();
    T_ASSERT(pid >= 0);
    if (pid == 0) {
        met_sink k;
        met_request r = req_done(0, 2);
        int64_t i;
        if (store_open(path, &s, &err) != SIM_OK ||
            store_run_begin(s, "run", config_json, NULL, "sim", 9, &id, &err) != SIM_OK)
            _exit(3);
        k = store_sink(s);
        /* The uncommitted half batch outgrows the page cache, so it reaches the file. */
        for (i = 0; i < STORE_COMMIT_ROWS + STORE_COMMIT_ROWS / 2; i++) {
            r.id = (uint64_t)i;
            if (k.on_request(k.ctx, &r) != SIM_OK)
                _exit(4);
        }
        _exit(0); /* killed: no finish, no close */
    }
    T_EQ_I(waitpid(pid, &status, 0), pid);
    T_ASSERT(WIFEXITED(status));
    T_EQ_I(WEXITSTATUS(status), 0);
    snprintf(journal, sizeof journal, "%s-journal", path);
    T_EQ_I(access(journal, F_OK), 0); /* hot: the half batch must be rolled back */

    /* The readers cope with the hot journal the child left. */
    T_EQ_I(store_run_config(path, 1, &cfg, &err), SIM_OK);
    T_STREQ(cfg, config_json);
    SIM_FREE(cfg);
    T_EQ_I(store_summary_get(path, 1, &got, &err), SIM_ENOENT);
    T_CONTAINS(err.msg, "status 'running'");

    db = db_open(path);
    T_STREQ(q_text(db, "SELECT status FROM runs WHERE run_id = 1"), "running");
    T_EQ_I(q_int(db, "SELECT count(*) FROM requests WHERE run_id = 1"), STORE_COMMIT_ROWS);
    sqlite3_close(db);

    /* The file stays usable. */
    T_EQ_I(store_open(path, &s, &err), SIM_OK);
    T_EQ_I(store_run_begin(s, "run", "{}", NULL, NULL, 1, &id, &err), SIM_OK);
    T_EQ_I(id, 2);
    T_EQ_I(store_run_finish(s, NULL, &err), SIM_OK);
    store_close(s);
    tmp_remove(path);
}

/* user_version: 1 on creation; newer refused; other files refused; missing summary columns added.
 */
static void test_versions(void) {
    char path[64], buf[1024], *cfg = NULL;
    store *s = NULL;
    sim_err err;
    int64_t id = 0;
    met_summary got;
    sqlite3 *db;
    FILE *f;

    tmp_path(path, sizeof path);
    T_EQ_I(store_open(path, &s, &err), SIM_OK);
    T_EQ_I(store_run_begin(s, "run", "{}", NULL, NULL, 1, &id, &err), SIM_OK);
    T_EQ_I(store_run_finish(s, NULL, &err), SIM_OK);
    store_close(s);

    /* A column of a newer summary map missing from an older file is added on open. */
    db = db_open(path);
    T_EQ_I(q_int(db, "PRAGMA user_version"), 1);
    if (sqlite3_libversion_number() >= 3035000) { /* DROP COLUMN */
        exec_ok(db, "ALTER TABLE summary DROP COLUMN peak_mem_bytes");
        sqlite3_close(db);
        T_EQ_I(store_open(path, &s, &err), SIM_OK);
        store_close(s);
        db = db_open(path);
        T_STREQ(q_text(db, "SELECT type FROM pragma_table_info('summary')"
                           " WHERE name = 'peak_mem_bytes'"),
                "INTEGER");
    }

    exec_ok(db, "PRAGMA user_version = 2");
    sqlite3_close(db);
    T_EQ_I(store_open(path, &s, &err), SIM_EINVAL);
    T_ASSERT(s == NULL);
    sim_err_format(&err, buf, sizeof buf);
    T_CONTAINS(buf, path);
    T_STREQ(err.msg, "schema version: expected at most 1, got '2' (the file was written by a "
                     "newer kvfleet; use that version or another file)");
    T_EQ_I(store_run_config(path, 1, &cfg, &err), SIM_EINVAL);
    T_CONTAINS(err.msg, "expected at most 1, got '2'");
    T_ASSERT(cfg == NULL);
    T_EQ_I(store_summary_get(path, 1, &got, &err), SIM_EINVAL);
    T_CONTAINS(err.msg, "expected at most 1, got '2'");

    /* A negative version is not ours either, for the writer too (it ran
     * migrations[-1], found by fuzzing), and the file is left as it was. */
    db = db_open(path);
    exec_ok(db, "PRAGMA user_version = -1");
    sqlite3_close(db);
    T_EQ_I(store_open(path, &s, &err), SIM_EINVAL);
    T_ASSERT(s == NULL);
    T_STREQ(err.msg, "schema version: expected 1..1, got '-1' (not a kvfleet results file)");
    T_EQ_I(store_run_config(path, 1, &cfg, &err), SIM_EINVAL);
    T_STREQ(err.msg, "schema version: expected 1..1, got '-1' (not a kvfleet results file)");
    db = db_open(path);
    T_EQ_I(q_int(db, "PRAGMA user_version"), -1);
    sqlite3_close(db);
    tmp_remove(path);

    /* Not a database. */
    tmp_path(path, sizeof path);
    f = fopen(path, "w");
    T_ASSERT(f != NULL);
    fputs("TIMESTAMP,ContextTokens,GeneratedTokens\n0,1,1\n", f);
    fclose(f);
    T_EQ_I(store_open(path, &s, &err), SIM_EINVAL);
    T_STREQ(err.src, path);
    T_STREQ(err.msg, "open: file is not a database");
    tmp_remove(path);

    /* A SQLite file that is not ours: readers refuse it; the writer refuses a clashing table. */
    tmp_path(path, sizeof path);
    db = db_open(path);
    exec_ok(db, "CREATE TABLE runs (x)");
    sqlite3_close(db);
    T_EQ_I(store_run_config(path, 1, &cfg, &err), SIM_EINVAL);
    T_STREQ(err.msg, "schema version: expected 1..1, got '0' (not a kvfleet results file)");
    T_EQ_I(store_open(path, &s, &err), SIM_EDB);
    T_STREQ(err.msg, "create schema version 1: table runs already exists");
    db = db_open(path);
    T_EQ_I(q_int(db, "PRAGMA user_version"), 0);
    T_EQ_I(q_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 'requests'"), 0);
    sqlite3_close(db);
    tmp_remove(path);

    /* A missing file is an error for readers, and is not created by them. */
    T_EQ_I(store_run_config("/tmp/kvfleet-test-store-missing.db", 1, &cfg, &err), SIM_ENOENT);
    T_STREQ(err.msg, "results file: expected an existing file");
    T_ASSERT(access("/tmp/kvfleet-test-store-missing.db", F_OK) != 0);
}

/* store_run_config round trip, and the errors users see. */
static void test_config(void) {
    char path[64], buf[1024], *cfg = NULL;
    store *s = NULL;
    sim_err err;
    int64_t id = 0;
    met_summary got;

    tmp_path(path, sizeof path);
    T_EQ_I(store_open(path, &s, &err), SIM_OK);
    T_EQ_I(store_run_config(path, 1, &cfg, &err), SIM_ENOENT);
    T_STREQ(err.msg, "run_id: expected a stored run, got '1' (the file holds no runs)");

    T_EQ_I(store_run_begin(s, "run", "[1, 2]", NULL, NULL, 1, &id, &err), SIM_EINVAL);
    T_STREQ(err.msg, "config: expected a JSON object, got another JSON value");
    T_EQ_I(store_run_begin(s, "run", "{\"a\": ", NULL, NULL, 1, &id, &err), SIM_EINVAL);
    T_STREQ(err.src, "config");
    T_EQ_I(err.line, 1);
    T_CONTAINS(err.msg, "config: expected a JSON object, got ");
    T_EQ_I(store_run_begin(s, "", "{}", NULL, NULL, 1, &id, &err), SIM_EINVAL);
    T_CONTAINS(err.msg, "kind: expected");

    T_EQ_I(store_run_begin(s, "run", config_json, NULL, NULL, 1, &id, &err), SIM_OK);
    T_EQ_I(store_run_finish(s, NULL, &err), SIM_OK);
    T_EQ_I(store_run_begin(s, "run", NULL, NULL, NULL, 1, &id, &err), SIM_OK);
    T_EQ_I(store_run_finish(s, NULL, &err), SIM_OK);
    store_close(s);

    T_EQ_I(store_run_config(path, 1, &cfg, &err), SIM_OK);
    T_STREQ(cfg, config_json);
    SIM_FREE(cfg);
    T_EQ_I(store_run_config(path, 2, &cfg, &err), SIM_ENOENT);
    T_STREQ(err.msg, "config: expected a stored config for run 2, got NULL");
    T_ASSERT(cfg == NULL);
    T_EQ_I(store_run_config(path, 99, &cfg, &err), SIM_ENOENT);
    T_STREQ(err.msg, "run_id: expected one of the 2 stored runs (ids 1..2), got '99'");
    sim_err_format(&err, buf, sizeof buf);
    T_ASSERT(strncmp(buf, path, strlen(path)) == 0);
    T_STREQ(buf + strlen(path), ": run_id: expected one of the 2 stored runs (ids 1..2), got '99'");
    T_EQ_I(store_summary_get(path, 99, &got, &err), SIM_ENOENT);
    T_STREQ(err.msg, "run_id: expected one of the 2 stored runs (ids 1..2), got '99'");
    T_EQ_I(store_summary_get(path, 1, &got, &err), SIM_ENOENT);
    T_STREQ(err.msg, "run_id: expected a run with a summary, got '1' (status 'done')");
    tmp_remove(path);
}

/* Rows the store cannot represent are refused with a message; a NULL store drops rows. */
static void test_sink_errors(void) {
    char path[64];
    store *s = NULL;
    sim_err err;
    int64_t id = 0;
    met_sink k = store_sink(NULL);
    met_request r = req_done(0, 2);
    met_step m = step_row(0);

    T_ASSERT(k.ctx == NULL && k.on_request == NULL && k.on_step == NULL && k.on_timeline == NULL);
    T_STREQ(store_errmsg(NULL), "");
    store_close(NULL);
    T_EQ_I(store_run_fail(NULL, "x"), SIM_OK);

    tmp_path(path, sizeof path);
    T_EQ_I(store_open(path, &s, &err), SIM_OK);
    T_STREQ(store_errmsg(s), "");
    k = store_sink(s);
    T_EQ_I(k.on_step(k.ctx, &m), SIM_EINVAL);
    T_EQ_I(store_run_begin(s, "run", NULL, NULL, NULL, 1, &id, &err), SIM_OK);
    m.bound = 4;
    T_EQ_I(k.on_step(k.ctx, &m), SIM_EINVAL);
    T_STREQ(store_errmsg(s), "step 0 of replica 1: bound: expected 0..3, got '4'");
    r.reject = MET_N_REJECT;
    T_EQ_I(k.on_request(k.ctx, &r), SIM_EINVAL);
    {
        char want[64];
        snprintf(want, sizeof want, "request 0: reject: expected 0..%d, got '%d'", MET_N_REJECT - 1,
                 MET_N_REJECT);
        T_STREQ(store_errmsg(s), want);
    }
    T_EQ_I(store_run_fail(s, NULL), SIM_OK);
    store_close(s);
    {
        sqlite3 *db = db_open(path);
        T_STREQ(q_text(db, "SELECT error FROM runs"), "unknown error");
        T_EQ_I(q_int(db, "SELECT count(*) FROM steps"), 0);
        sqlite3_close(db);
    }
    T_EQ_I(store_open("", &s, &err), SIM_EINVAL);
    tmp_remove(path);
}

/* Every allocation store_open and store_run_config make can fail without a leak. */
static void test_alloc_failures(void) {
    char path[64], *cfg = NULL;
    store *s = NULL;
    sim_err err;
    int64_t id = 0;
    uint64_t k;
    int rc;
    size_t before = sim_mem_current();

    tmp_path(path, sizeof path);
    for (k = 1;; k++) {
        sim_mem_fail_at(k);
        rc = store_open(path, &s, &err);
        sim_mem_fail_at(0);
        if (rc == SIM_OK)
            break;
        T_EQ_I(rc, SIM_ENOMEM);
        T_ASSERT(s == NULL);
        T_EQ_I(sim_mem_current(), before);
    }
    T_ASSERT(k > 1);
    T_EQ_I(store_run_begin(s, "run", "{}", NULL, NULL, 1, &id, &err), SIM_OK);
    T_EQ_I(store_run_finish(s, NULL, &err), SIM_OK);
    store_close(s);
    T_EQ_I(sim_mem_current(), before);
    sim_mem_fail_at(1);
    T_EQ_I(store_run_config(path, 1, &cfg, &err), SIM_ENOMEM);
    sim_mem_fail_at(0);
    T_ASSERT(cfg == NULL);
    T_EQ_I(sim_mem_current(), before);
    tmp_remove(path);
}

int main(void) {
    test_roundtrip();
    test_two_runs();
    test_fail_and_interrupt();
    test_batches();
    test_crash();
    test_versions();
    test_config();
    test_sink_errors();
    test_alloc_failures();
    printf("test_store: all passed\n");
    return 0;
}
