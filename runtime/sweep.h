/* sweep.h: experiment specs, their points, and `kvfleet sweep`.
 *
 * A spec (docs/experiments.md) is a JSON object
 *     {"name": N, "base": {OPT: V}, "axes": {OPT: [V...]} | "points": [{OPT: V}...],
 *      "seeds": S, "warmup-s": X}
 * whose points are the cartesian product of the axes (first axis slowest,
 * last fastest, in the order written) or the explicit list, each merged
 * over base. Every point runs `seeds` times; replication r uses the point's
 * seed plus r. A task is one (point, replication) pair; task t is point
 * t / seeds, replication t % seeds, so tasks are numbered in spec order.
 *
 * The dispatcher hands tasks to workers (forked processes or MPI ranks)
 * one at a time as they ask, so slow points do not hold up a fixed share;
 * it is a pure state machine (no processes, no I/O) so that a test can
 * drive it for any number of workers. */
#ifndef RT_SWEEP_H
#define RT_SWEEP_H

#include <stddef.h>

#include <jansson.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A parsed spec and its enumerated points. */
typedef struct sweep_spec {
    char *name;          /* "name" (owned) */
    char *canonical;     /* the spec as compact JSON, keys in written order (owned) */
    char *path;          /* the spec file as given ("" when parsed from text; owned) */
    int n_points;        /* points, >= 1 */
    int seeds;           /* replications of each point, >= 1 */
    double warmup_s;     /* warm-up left out by query, s (0: none) */
    json_t *axes;        /* array of axis names, in column order (owned) */
    json_t **point_axes; /* [n_points] each point's axis values, an object (owned) */
    json_t **point_cfg;  /* [n_points] each point's run options, paths absolute (owned) */
} sweep_spec;

/* Reads and checks the spec file at path; *out is owned (sweep_spec_destroy). */
int sweep_spec_load(const char *path, sweep_spec **out /* OUT */, sim_err *err);
/* Checks a spec object; src names it in messages, dir anchors relative paths. */
int sweep_spec_parse(json_t *spec, const char *src, const char *dir, sweep_spec **out /* OUT */,
                     sim_err *err);
/* Frees a spec; NULL is a no-op. */
void sweep_spec_destroy(sweep_spec *s);
/* Tasks of a spec: n_points x seeds. */
size_t sweep_spec_tasks(const sweep_spec *s);
/* The resolved config of task t (defaults filled, seed set, "db" = db made absolute); owned. */
int sweep_task_config(const sweep_spec *s, size_t t, const char *db, json_t **out /* OUT */,
                      sim_err *err);

/* ---- the dispatcher ---- */

#define SWEEP_STOP ((long)-1) /* sweep_dispatch_next: no task left, the worker may stop */

typedef struct sweep_dispatch {
    const size_t *todo; /* task numbers to run, in order (borrowed) */
    size_t n_todo;      /* entries in todo */
    size_t next;        /* todo entries handed out so far, 0..n_todo */
    size_t n_done;      /* results received, 0..next */
    int n_workers;      /* workers that will ask, >= 1 */
    int n_stopped;      /* workers told to stop, 0..n_workers */
} sweep_dispatch;

/* Workers of an n_ranks job: rank 0 alone when n_ranks is 1, else ranks 1..n_ranks-1. */
int sweep_worker_count(int n_ranks);
/* Rank of worker w (0-based) in an n_ranks job. */
int sweep_worker_rank(int n_ranks, int w);
/* Prepares d to hand out todo[0..n_todo) to n_workers workers (todo borrowed). */
void sweep_dispatch_init(sweep_dispatch *d, const size_t *todo, size_t n_todo, int n_workers);
/* The next task for an idle worker, or SWEEP_STOP (counted: a stopped worker never asks again). */
long sweep_dispatch_next(sweep_dispatch *d);
/* Hands out no more tasks: the ones handed out still count, the rest are
 * left (a sweep whose results file failed stops this way). */
void sweep_dispatch_close(sweep_dispatch *d);
/* Records one result of a task handed out earlier. */
void sweep_dispatch_done(sweep_dispatch *d);
/* 1 when every task's result is in and every worker was stopped. */
int sweep_dispatch_finished(const sweep_dispatch *d);

/* `kvfleet sweep`: argv[0] is "sweep". Returns an exit code. */
int rt_main_sweep(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif /* RT_SWEEP_H */
