/* sweep_mpi.c: the MPI sweep engine (built with ./configure --with-mpi).
 *
 * `mpirun -np N kvfleet sweep SPEC --db FILE`. Every rank reads the spec
 * itself (the spec, its traces and model files must be at the same paths on
 * every node). Rank 0 is the coordinator of sweep.c: it alone opens the
 * results file, finds or creates the sweep and merges results. With one
 * rank it runs every task itself, with its --jobs forked workers. With more,
 * ranks 1..N-1 are the workers: each asks rank 0 for a task, runs it in
 * process into a private SQLite file under its own $TMPDIR, and ships the
 * file's bytes back with its status; rank 0 writes the bytes to a file of
 * its own and merges it exactly as a local worker's. The dispatcher
 * (sweep_spec.c) hands tasks to whichever worker asks first.
 *
 * Protocol (all messages from a worker to rank 0 carry one report):
 *   worker -> 0, TAG_REPORT: q_report {task (-1: ready, nothing ran), status,
 *                            bytes, message}
 *   worker -> 0, TAG_DATA:   the file, in chunks of at most Q_CHUNK bytes
 *   0 -> worker, TAG_TASK:   a long: the task to run, or SWEEP_STOP
 * Rank 0 never waits on one worker while another's report is pending: it
 * receives from MPI_ANY_SOURCE and then the data of that source only.
 *
 * Non-goals: fault tolerance of ranks (a rank that dies takes the MPI job
 * down; re-running the command resumes the sweep), and tasks bigger than
 * rank 0's memory (a file is held whole while it is shipped). */
#include "config.h"
#include "sweep_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mpi.h>

#include "cli.h"
#include "fileio.h"
#include "mem.h"

#define TAG_REPORT 1
#define TAG_DATA   2
#define TAG_TASK   3
#define Q_CHUNK    (1 << 30) /* bytes per data message (MPI counts are int) */

typedef struct q_report {
    int64_t task;   /* task run, -1 when the worker is only asking */
    int64_t bytes;  /* size of the file that follows (0: none) */
    int32_t status; /* SIM_OK or the run's error status */
    char msg[1200]; /* the error message, "" on success */
} q_report;

int sweep__mpi_launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") != NULL || getenv("PMI_SIZE") != NULL ||
           getenv("PMIX_RANK") != NULL;
}

/* Reads a whole file into an owned buffer (sim_free). */
static int slurp(const char *path, char **buf, int64_t *n) {
    FILE *f = fopen(path, "rb");
    long len;
    *buf = NULL;
    *n = 0;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        if (f)
            fclose(f);
        return SIM_EIO;
    }
    *buf = sim_malloc(len > 0 ? (size_t)len : 1);
    if (*buf == NULL || fread(*buf, 1, (size_t)len, f) != (size_t)len) {
        sim_free(*buf);
        *buf = NULL;
        fclose(f);
        return SIM_EIO;
    }
    fclose(f);
    *n = len;
    return SIM_OK;
}

static void send_bytes(const char *buf, int64_t n, int dest) {
    int64_t off = 0;
    while (off < n) {
        int64_t k = n - off < Q_CHUNK ? n - off : Q_CHUNK;
        MPI_Send(buf + off, (int)k, MPI_BYTE, dest, TAG_DATA, MPI_COMM_WORLD);
        off += k;
    }
}

static void recv_bytes(char *buf, int64_t n, int src) {
    int64_t off = 0;
    while (off < n) {
        int64_t k = n - off < Q_CHUNK ? n - off : Q_CHUNK;
        MPI_Recv(buf + off, (int)k, MPI_BYTE, src, TAG_DATA, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        off += k;
    }
}

/* A worker rank: asks, runs, ships, until told to stop. */
static void worker(const sweep_args *a, const sweep_spec *spec, int rank) {
    char dir[512], db[700], journal[720];
    q_report rep;
    long t;
    snprintf(dir, sizeof dir, "%s/kvfleet-rank%d.XXXXXX", sim_tmpdir(), rank);
    if (mkdtemp(dir) == NULL)
        dir[0] = '\0';
    memset(&rep, 0, sizeof rep);
    rep.task = -1;
    MPI_Send(&rep, (int)sizeof rep, MPI_BYTE, 0, TAG_REPORT, MPI_COMM_WORLD);
    for (;;) {
        char *buf = NULL;
        sim_err err;
        MPI_Recv(&t, 1, MPI_LONG, 0, TAG_TASK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (t == SWEEP_STOP)
            break;
        memset(&rep, 0, sizeof rep);
        rep.task = t;
        sim_err_clear(&err);
        if (dir[0] == '\0') {
            rep.status = SIM_EIO;
            snprintf(rep.msg, sizeof rep.msg, "rank %d: private folder: %s", rank, strerror(errno));
        } else {
            snprintf(db, sizeof db, "%s/task-%ld.db", dir, t);
            unlink(db);
            rep.status = sweep__task_run(spec, (size_t)t, db, a->command, &err);
            if (rep.status != SIM_OK) {
                if (err.msg[0])
                    sim_err_format(&err, rep.msg, sizeof rep.msg);
                else
                    snprintf(rep.msg, sizeof rep.msg, "%s", sim_strerror(rep.status));
            } else if (slurp(db, &buf, &rep.bytes) != SIM_OK) {
                rep.status = SIM_EIO;
                snprintf(rep.msg, sizeof rep.msg, "rank %d: reading %s back failed", rank, db);
            }
            unlink(db);
            snprintf(journal, sizeof journal, "%s-journal", db);
            unlink(journal);
        }
        MPI_Send(&rep, (int)sizeof rep, MPI_BYTE, 0, TAG_REPORT, MPI_COMM_WORLD);
        if (rep.bytes > 0)
            send_bytes(buf, rep.bytes, 0);
        sim_free(buf);
    }
    if (dir[0])
        rmdir(dir);
}

/* Rank 0 with workers: hands out tasks, merges what comes back. */
static void coordinate(sweep_coord *c, int n_ranks) {
    sweep_dispatch d;
    sweep_dispatch_init(&d, c->todo, c->n_todo, sweep_worker_count(n_ranks));
    sweep__progress(c, 1);
    while (!sweep_dispatch_finished(&d)) {
        q_report rep;
        MPI_Status ms;
        long t;
        MPI_Recv(&rep, (int)sizeof rep, MPI_BYTE, MPI_ANY_SOURCE, TAG_REPORT, MPI_COMM_WORLD, &ms);
        rep.msg[sizeof rep.msg - 1] = '\0';
        if (rep.task >= 0) {
            char *buf = NULL;
            if (rep.bytes > 0) {
                buf = sim_malloc((size_t)rep.bytes);
                SIM_ASSERT(buf != NULL); /* the data must still be received: nothing else to do */
                recv_bytes(buf, rep.bytes, ms.MPI_SOURCE);
            }
            if (rep.status != SIM_OK)
                sweep__fail(c, (size_t)rep.task, rep.status, rep.msg);
            else {
                char path[700], msg[1300];
                FILE *f;
                sim_err err;
                snprintf(path, sizeof path, "%s/task-%lld.db", c->tmpdir, (long long)rep.task);
                sim_err_clear(&err);
                f = fopen(path, "wb");
                if (f == NULL || fwrite(buf, 1, (size_t)rep.bytes, f) != (size_t)rep.bytes ||
                    fclose(f) != 0) {
                    snprintf(msg, sizeof msg, "%s: writing the worker's file failed", path);
                    sweep__fail(c, (size_t)rep.task, SIM_EIO, msg);
                } else if (sweep__merge(c, (size_t)rep.task, path, &err) != SIM_OK) {
                    sim_err_format(&err, msg, sizeof msg);
                    sweep__fail(c, (size_t)rep.task, SIM_EDB, msg);
                }
                unlink(path);
            }
            sim_free(buf);
            sweep_dispatch_done(&d);
            sweep__progress(c, 1);
        }
        t = sweep_dispatch_next(&d);
        MPI_Send(&t, 1, MPI_LONG, ms.MPI_SOURCE, TAG_TASK, MPI_COMM_WORLD);
    }
}

int sweep__mpi_main(const sweep_args *a, sweep_spec *spec) {
    int rank = 0, n_ranks = 1, ok = 1, code = RT_EXIT_OK;
    sweep_coord c;
    sim_err err;
    char buf[1200];
    MPI_Init(NULL, NULL);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    sim_err_clear(&err);
    if (rank == 0) {
        int rc = sweep__coord_open(&c, a, spec, &err);
        if (rc != SIM_OK) {
            sim_err_format(&err, buf, sizeof buf);
            fprintf(stderr, "kvfleet sweep: %s\n", buf);
            code = rc == SIM_EDB || rc == SIM_EIO ? RT_EXIT_RUNTIME : rt_exit_code(rc);
            ok = 0;
        }
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (ok) {
        if (rank == 0) {
            if (n_ranks == 1)
                code = sweep__local(&c);
            else
                coordinate(&c, n_ranks);
            if (code == RT_EXIT_OK)
                code = sweep__coord_finish(&c);
            sweep__coord_close(&c);
        } else
            worker(a, spec, rank);
    }
    /* every rank exits with rank 0's code, so mpirun reports it */
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return code;
}
