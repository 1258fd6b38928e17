/* sweep_int.h: what sweep.c shares with the MPI engine (sweep_mpi.c) only.
 *
 * The coordinator owns the results file: it creates or finds the sweep,
 * lists the tasks still to run, merges each finished task's private
 * SQLite file into the results in one transaction, records failures, and
 * draws the progress bar. Workers (forked children, MPI ranks) only run a
 * task into a private file. */
#ifndef RT_SWEEP_INT_H
#define RT_SWEEP_INT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "sweep.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The parsed command line of `kvfleet sweep`. */
typedef struct sweep_args {
    const char *spec_path; /* SPEC (borrowed from argv) */
    const char *db;        /* --db, default kvfleet.db */
    int jobs;              /* --jobs, >= 1 */
    int dry_run;           /* --dry-run */
    int quiet;             /* --quiet: no progress bar */
    int retry_failed;      /* --retry-failed: run 'failed' points again */
    char *command;         /* the command line, stored with every run (owned) */
} sweep_args;

typedef struct sweep_coord {
    struct sqlite3 *db; /* the results file */
    const sweep_args *args;
    sweep_spec *spec;        /* borrowed */
    int64_t sweep_id;        /* the sweep's row in sweeps */
    size_t *todo;            /* tasks to run this time, in task order (owned) */
    size_t n_todo;           /* entries in todo */
    size_t n_tasks;          /* tasks of the sweep */
    size_t n_done_before;    /* tasks already done when this command began */
    size_t n_done, n_failed; /* tasks done and failed by this command */
    int worst;               /* worst exit code of a failed task so far (0, 1 or 3) */
    char tmpdir[512];        /* private folder for workers' files */
    char db_abs[4096];       /* the results file as a run's config names it (absolute) */
    double t0;               /* when running began (rt_now_s) */
    double last_draw;        /* wall seconds since t0 of the last progress output */
    int tty;                 /* stderr is a terminal: redraw in place */
    int drawn;               /* a progress line is on screen (tty) */
    int db_broken;           /* the results file failed: no more tasks, the rest pending */
    char db_msg[1400];       /* and why (SQLite's reason) */
    int logged_all;          /* the final progress line was written (not a tty) */
} sweep_coord;

/* Opens the results file, finds or creates the sweep and lists its tasks to run. */
int sweep__coord_open(sweep_coord *c, const sweep_args *a, sweep_spec *spec, sim_err *err);
/* Merges task t's finished run from the private file tmp_db, atomically; SIM_EINTR
 * when a stop signal interrupted it (nothing merged, the task stays pending). */
int sweep__merge(sweep_coord *c, size_t t, const char *tmp_db, sim_err *err);
/* Records task t as failed with its status and message; merges nothing. */
void sweep__fail(sweep_coord *c, size_t t, int status, const char *msg);
/* Merges task t's results file (path): a failure of the sweep's own results
 * file (a full disk) sets c->db_broken and leaves the task pending, as every
 * later one, for the same command to resume; once broken nothing is merged. */
void sweep__collect(sweep_coord *c, size_t t, const char *path);
/* With c->db_broken: says so and returns the exit code (3); else 0. */
int sweep__db_report(sweep_coord *c);
/* Draws the progress bar (force: even if drawn less than a redraw interval ago). */
void sweep__progress(sweep_coord *c, int force);
/* Marks the sweep done when nothing is pending, prints the tally; returns the exit code. */
int sweep__coord_finish(sweep_coord *c);
/* Closes the file and removes the private folder. */
void sweep__coord_close(sweep_coord *c);
/* Runs task t of spec into the private results file tmp_db (a worker's job). */
int sweep__task_run(const sweep_spec *spec, size_t t, const char *tmp_db, const char *command,
                    sim_err *err);
/* Runs c's tasks with a pool of a->jobs forked workers. */
int sweep__local(sweep_coord *c);
/* Echoes one line task t wrote on stderr, prefixed with its point (not with --quiet). */
void sweep__echo_line(sweep_coord *c, size_t t, const char *line);
/* Lists the points of spec (--dry-run) on stdout. */
void sweep__dry_run(const sweep_spec *s, const char *db);

/* ---- stop signals: SIGINT, SIGTERM, SIGHUP ---- */

#define SWEEP_N_STOP_SIGS 3
/* Catches the stop signals not ignored on entry with handler (NULL: record it); old: saved. */
void sweep__stop_catch(struct sigaction *old /* OUT [SWEEP_N_STOP_SIGS] */, void (*handler)(int));
/* Puts back the actions sweep__stop_catch saved. */
void sweep__stop_restore(const struct sigaction *old);
/* The stop signal recorded since sweep__stop_catch, 0 while none. */
int sweep__stop_sig(void);
/* Prints that the sweep stopped on sig and that the same command resumes it. */
void sweep__stop_report(sweep_coord *c, int sig);

#ifdef KV_HAVE_MPI
/* 1 when this process was started by mpirun (Open MPI, MPICH or PMIx environment). */
int sweep__mpi_launched(void);
/* The MPI engine: rank 0 coordinates, the other ranks run tasks. Returns an exit code. */
int sweep__mpi_main(const sweep_args *a, sweep_spec *spec);
#endif

#ifdef __cplusplus
}
#endif
#endif /* RT_SWEEP_INT_H */
