/* store_steps.c: reading a stored run's steps back (see store_steps.h).
 *
 * The file is opened by store_open_read, as store.c's readers do. Rows are read in one pass with
 * one statement; the array doubles as it grows. Non-goals: streaming (runs read here are measured
 * ones, a few thousand steps), and any other table than runs, summary and steps. */
#include "config.h"
#include "store_steps.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "mem.h"
#include "store.h"

static int db_fail(sim_err *err, const char *path, sqlite3 *db, const char *what) {
    sim_err_set(err, path, 0, 0, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
    return SIM_EDB;
}

static void copy_text(char *dst, size_t n, const unsigned char *src) {
    snprintf(dst, n, "%s", src ? (const char *)src : "");
}

static double col_real(sqlite3_stmt *st, int k) {
    return sqlite3_column_type(st, k) == SQLITE_NULL ? NAN : sqlite3_column_double(st, k);
}

/* Fills meta from the runs and summary rows. */
static int read_meta(sqlite3 *db, const char *path, int64_t run_id, store_run_meta *meta,
                     sim_err *err) {
    sqlite3_stmt *st = NULL;
    int rc;
    memset(meta, 0, sizeof *meta);
    meta->steps = -1;
    if (sqlite3_prepare_v2(db,
                           "SELECT r.status, r.backend, r.kind, s.steps,"
                           " (SELECT count(*) FROM steps WHERE run_id = r.run_id),"
                           " (SELECT count(DISTINCT replica) FROM steps WHERE run_id = r.run_id),"
                           " (SELECT kv_blocks_total FROM steps WHERE run_id = r.run_id LIMIT 1)"
                           " FROM runs r LEFT JOIN summary s USING (run_id) WHERE r.run_id = ?",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(err, path, db, "read run");
    sqlite3_bind_int64(st, 1, run_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        copy_text(meta->status, sizeof meta->status, sqlite3_column_text(st, 0));
        copy_text(meta->backend, sizeof meta->backend, sqlite3_column_text(st, 1));
        copy_text(meta->kind, sizeof meta->kind, sqlite3_column_text(st, 2));
        if (sqlite3_column_type(st, 3) != SQLITE_NULL)
            meta->steps = sqlite3_column_int64(st, 3);
        meta->n_rows = sqlite3_column_int64(st, 4);
        meta->n_replica = sqlite3_column_int64(st, 5);
        meta->kv_blocks = sqlite3_column_int64(st, 6);
        rc = SIM_OK;
    } else if (rc == SQLITE_DONE) {
        sim_err_set(err, path, 0, 0, "run_id: expected a stored run, got '%lld'",
                    (long long)run_id);
        rc = SIM_ENOENT;
    } else
        rc = db_fail(err, path, db, "read run");
    sqlite3_finalize(st);
    return rc;
}

int store_steps_read(const char *db_path, int64_t run_id, store_run_meta *meta,
                     store_step_rec **rows, int64_t *n, sim_err *err) {
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    store_step_rec *v = NULL;
    int64_t cnt = 0, cap = 0;
    int rc;
    if (rows)
        *rows = NULL;
    if (n)
        *n = 0;
    if ((rc = store_open_read(db_path, &db, err)) != SIM_OK)
        goto out;
    if ((rc = read_meta(db, db_path, run_id, meta, err)) != SIM_OK || rows == NULL)
        goto out;
    if (sqlite3_prepare_v2(db,
                           "SELECT replica, step, dur_s, pred_s, meas_s, batch_size, n_prefill,"
                           " n_decode, prefill_tokens, decode_tokens, kv_blocks_total"
                           " FROM steps WHERE run_id = ? ORDER BY replica, step",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = db_fail(err, db_path, db, "read steps");
        goto out;
    }
    sqlite3_bind_int64(st, 1, run_id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        store_step_rec *r;
        if (cnt == cap) {
            int64_t ncap = cap ? 2 * cap : 1024;
            store_step_rec *nv = sim_realloc(v, (size_t)ncap * sizeof *nv);
            if (nv == NULL) {
                sim_err_set(err, db_path, 0, 0, "read steps: out of memory");
                rc = SIM_ENOMEM;
                goto out;
            }
            v = nv;
            cap = ncap;
        }
        r = &v[cnt++];
        r->replica = sqlite3_column_int(st, 0);
        r->step = sqlite3_column_int64(st, 1);
        r->dur_s = col_real(st, 2);
        r->pred_s = col_real(st, 3);
        r->meas_s = col_real(st, 4);
        r->batch_size = sqlite3_column_int(st, 5);
        r->n_prefill = sqlite3_column_int(st, 6);
        r->n_decode = sqlite3_column_int(st, 7);
        r->prefill_tokens = sqlite3_column_int64(st, 8);
        r->decode_tokens = sqlite3_column_int64(st, 9);
        r->kv_blocks_total = sqlite3_column_int64(st, 10);
    }
    if (rc != SQLITE_DONE) {
        rc = db_fail(err, db_path, db, "read steps");
        goto out;
    }
    rc = SIM_OK;
    *rows = v;
    *n = cnt;
    v = NULL;
out:
    sim_free(v);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
