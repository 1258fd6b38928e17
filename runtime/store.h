/* store.h: the SQLite results store.
 *
 * One file holds one or many runs, each keyed by run_id in every table
 * (runs, requests, steps, timeline, summary; docs/results.md is the
 * contract). A run's row is inserted with status 'running' and becomes
 * 'done' only in the transaction that writes its last rows and its summary,
 * so a killed process leaves 'running' behind and a reader can tell a
 * complete run from a partial one. Rows arrive through a met_sink, wait in
 * small per-table buffers and are written by multi-row prepared statements
 * in transactions of at most STORE_COMMIT_ROWS rows, so memory stays
 * bounded however long the run.
 *
 * A store handles one open run at a time and is not thread-safe. It writes
 * only the given file (and SQLite's rollback journal beside it). */
#ifndef RT_STORE_H
#define RT_STORE_H

#include <stdint.h>

#include "err.h"
#include "metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The schema version kept in PRAGMA user_version; newer files are refused. */
#define STORE_SCHEMA_VERSION 1
/* Rows written between two commits while a run is open. */
#define STORE_COMMIT_ROWS 50000

typedef struct store store;
struct sqlite3;

/* Opens or creates the results file at path and brings its schema up to date; *out is owned. */
int store_open(const char *path, store **out /* OUT */, sim_err *err);
/* Inserts a 'running' runs row and opens a transaction for its rows. */
int store_run_begin(store *s, const char *kind, const char *config_json, const char *command,
                    const char *backend, uint64_t seed, int64_t *run_id /* OUT */, sim_err *err);
/* A sink that writes rows of the open run (s NULL: drops rows); valid until store_close. */
met_sink store_sink(store *s);
/* Writes the summary (sum may be NULL) and marks the open run 'done', then commits. */
int store_run_finish(store *s, const met_summary *sum, sim_err *err);
/* Marks the open run 'failed' with error_msg and deletes its rows (a failed
 * run holds none); no-op if none is open. */
int store_run_fail(store *s, const char *error_msg);
/* Message of the last failure on s ("" if none); borrowed until the next call on s. */
const char *store_errmsg(const store *s);
/* The last failure on s, with the file it names, copied to *err. */
void store_last_err(const store *s, sim_err *err);
/* Closes s, marking a still-open run 'failed' ("interrupted", its rows
 * deleted); NULL is a no-op. */
void store_close(store *s);

/* Opens an existing results file for reading (read-write but query-only, so
 * that SQLite can roll back the hot journal a killed writer leaves; a
 * write-protected file opens read-only). SIM_ENOENT when path names no file,
 * SIM_EINVAL when it is not a kvfleet results file or one of a newer schema,
 * SIM_EDB when SQLite fails; *db is then closed and NULL. */
int store_open_read(const char *path, struct sqlite3 **db /* OUT */, sim_err *err);
/* 1 if db has a table of that name, else 0 (errors too). */
int store_has_table(struct sqlite3 *db, const char *name);

/* Reads the stored config JSON of run_id; *config_json_out is owned (free with sim_free). */
int store_run_config(const char *db_path, int64_t run_id, char **config_json_out /* OUT */,
                     sim_err *err);
/* Reads the summary row of run_id into *out (NULL columns become NAN or 0). */
int store_summary_get(const char *db_path, int64_t run_id, met_summary *out /* OUT */,
                      sim_err *err);

#ifdef __cplusplus
}
#endif
#endif /* RT_STORE_H */
