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
 * A worker rank sends the task's stderr (its notes) with the file, and rank
 * 0 echoes them as it echoes a local worker's: prefixed with the point,
 * nothing with --quiet.
 *
 * Protocol (all messages from a worker to rank 0 carry one report):
 *   worker -> 0, TAG_REPORT: q_report {task (-1: ready, nothing ran), status,
 *                            bytes, log_bytes, message}
 *   worker -> 0, TAG_DATA:   the file, then the notes, in chunks of at most
 *                            Q_CHUNK bytes
 *   0 -> worker, TAG_TASK:   a long: the task to run, or SWEEP_STOP
 * Rank 0 never waits on one worker while another's report is pending: it
 * receives from MPI_ANY_SOURCE and then the data of that source only.
 *
 * Stop signals (SIGINT, SIGTERM, SIGHUP not ignored on entry). mpirun
 * forwards SIGINT and SIGTERM to every rank as SIGTERM, and sends SIGKILL
 * about a second later (Open MPI's odls_base_sigkill_timeout). A worker
 * rank cannot interrupt a run, so its handler removes the task's files and
 * its private folder, waits Q_STOP_GRACE_NS and exits 3 (unlink, rmdir,
 * nanosleep and _exit are async-signal-safe on Linux). The wait is for
 * rank 0: once a rank has exited, mpirun SIGKILLs the rest at once. Rank 0
 * polls for reports (MPI_Test) and sees the signal within milliseconds: it
 * leaves the points not done pending, removes its private folder, says
 * that the same command resumes the sweep and exits 3 without
 * MPI_Finalize (the workers are going). A merge in progress is
 * interrupted (sqlite3_progress_handler) and rolled back: its task stays
 * pending. A rank 0 waiting for the file of a worker stopped while sending
 * it is killed before it cleans up: the results stay consistent and its
 * private folder is left, as after a SIGKILL.
 *
 * Non-goals: fault tolerance of ranks (a rank that dies takes the MPI job
 * down; re-running the command resumes the sweep), and tasks bigger than
 * rank 0's memory (a file is held whole while it is shipped). */
#include "config.h"
#include "sweep_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mpi.h>

#include "cli.h"
#include "fileio.h"
#include "mem.h"

#define TAG_REPORT 1
#define TAG_DATA   2
#define TAG_TASK   3
#define Q_CHUNK    (1 << 30) /* bytes per data message (MPI counts are int) */
#define Q_POLL_NS  2000000   /* rank 0's wait between MPI_Test calls, ns (2 ms) */
#define Q_LOG_MAX  (1 << 20) /* most bytes of a task's notes shipped to rank 0 */
/* How long a stopped worker rank waits before it exits, ns: as soon as one
 * rank exits, mpirun kills the others with SIGKILL, and rank 0, signalled
 * at the same moment, needs a few ms to see it and clean up. */
#define Q_STOP_GRACE_NS 300000000

typedef struct q_report {
    int64_t task;      /* task run, -1 when the worker is only asking */
    int64_t bytes;     /* size of the file that follows (0: none) */
    int64_t log_bytes; /* size of the task's notes that follow the file (0: none) */
    int32_t status;    /* SIM_OK or the run's error status */
    char msg[1200];    /* the error message, "" on success */
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

/* A worker rank's files, for its stop-signal handler: set before the
 * handler can run, read by it only (a handler has no other way in). */
static char w_dir[512], w_db[700], w_journal[720], w_log[700];
static volatile sig_atomic_t w_busy; /* 1 while w_db, w_journal and w_log are the task's */

/* A worker rank's stop: remove its files and folder, give rank 0 its grace
 * period, exit 3 (file comment). */
static void on_worker_stop(int sig) {
    struct timespec ts = {0, Q_STOP_GRACE_NS};
    (void)sig;
    if (w_busy) {
        unlink(w_db);
        unlink(w_journal);
        unlink(w_log);
    }
    if (w_dir[0])
        rmdir(w_dir);
    nanosleep(&ts, NULL);
    _exit(RT_EXIT_RUNTIME);
}

/* Runs task t into w_db with stderr sent to w_log; fills rep's status and
 * message, and *file and *log (owned) with what to ship back. */
static void worker_task(const sweep_args *a, const sweep_spec *spec, int rank, long t,
                        q_report *rep, char **file, char **log) {
    sim_err err;
    int saved = -1, fd;
    *file = NULL;
    *log = NULL;
    sim_err_clear(&err);
    unlink(w_db);
    fflush(stderr);
    if ((fd = open(w_log, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0) {
        saved = dup(2);
        dup2(fd, 2);
        close(fd);
    }
    rep->status = sweep__task_run(spec, (size_t)t, w_db, a->command, &err);
    fflush(stderr);
    if (saved >= 0) {
        dup2(saved, 2);
        close(saved);
    }
    if (rep->status != SIM_OK) {
        if (err.msg[0])
            sim_err_format(&err, rep->msg, sizeof rep->msg);
        else
            snprintf(rep->msg, sizeof rep->msg, "%s", sim_strerror(rep->status));
    } else if (slurp(w_db, file, &rep->bytes) != SIM_OK) {
        rep->status = SIM_EIO;
        snprintf(rep->msg, sizeof rep->msg, "rank %d: reading %s back failed", rank, w_db);
    }
    (void)slurp(w_log, log, &rep->log_bytes); /* notes: best effort (0 bytes if unread) */
    if (rep->log_bytes > Q_LOG_MAX)
        rep->log_bytes = Q_LOG_MAX;
}

/* A worker rank: asks, runs, ships, until told to stop. */
static void worker(const sweep_args *a, const sweep_spec *spec, int rank) {
    struct sigaction old_act[SWEEP_N_STOP_SIGS];
    q_report rep;
    long t;
    sweep__stop_catch(old_act, on_worker_stop); /* before the folder: it removes it */
    snprintf(w_dir, sizeof w_dir, "%s/kvfleet-rank%d.XXXXXX", sim_tmpdir(), rank);
    if (mkdtemp(w_dir) == NULL)
        w_dir[0] = '\0';
    memset(&rep, 0, sizeof rep);
    rep.task = -1;
    MPI_Send(&rep, (int)sizeof rep, MPI_BYTE, 0, TAG_REPORT, MPI_COMM_WORLD);
    for (;;) {
        char *file = NULL, *log = NULL;
        MPI_Recv(&t, 1, MPI_LONG, 0, TAG_TASK, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (t == SWEEP_STOP)
            break;
        memset(&rep, 0, sizeof rep);
        rep.task = t;
        if (w_dir[0] == '\0') {
            rep.status = SIM_EIO;
            snprintf(rep.msg, sizeof rep.msg, "rank %d: private folder: %s", rank, strerror(errno));
        } else {
            snprintf(w_db, sizeof w_db, "%s/task-%ld.db", w_dir, t);
            snprintf(w_journal, sizeof w_journal, "%s-journal", w_db);
            snprintf(w_log, sizeof w_log, "%s/task-%ld.log", w_dir, t);
            w_busy = 1;
            worker_task(a, spec, rank, t, &rep, &file, &log);
            unlink(w_db);
            unlink(w_journal);
            unlink(w_log);
            w_busy = 0;
        }
        MPI_Send(&rep, (int)sizeof rep, MPI_BYTE, 0, TAG_REPORT, MPI_COMM_WORLD);
        if (rep.bytes > 0)
            send_bytes(file, rep.bytes, 0);
        if (rep.log_bytes > 0)
            send_bytes(log, rep.log_bytes, 0);
        sim_free(file);
        sim_free(log);
    }
    sweep__stop_restore(old_act);
    if (w_dir[0])
        rmdir(w_dir);
}

/* Echoes the notes a worker rank sent for task t, line by line. */
static void echo_notes(sweep_coord *c, size_t t, const char *log, int64_t n) {
    char *text, *line, *next;
    if (log == NULL || n <= 0 || (text = sim_malloc((size_t)n + 1)) == NULL)
        return;
    memcpy(text, log, (size_t)n);
    text[n] = '\0';
    for (line = text; *line; line = next) {
        char save;
        next = strchr(line, '\n');
        next = next ? next + 1 : line + strlen(line);
        save = *next;
        *next = '\0';
        sweep__echo_line(c, t, line);
        *next = save;
    }
    sim_free(text);
}

/* Rank 0 with workers: hands out tasks, merges what comes back. Returns
 * 0, or the stop signal that ended it early. */
static int coordinate(sweep_coord *c, int n_ranks) {
    sweep_dispatch d;
    int sig = 0;
    sweep_dispatch_init(&d, c->todo, c->n_todo, sweep_worker_count(n_ranks));
    sweep__progress(c, 1);
    while (!sweep_dispatch_finished(&d)) {
        q_report rep;
        MPI_Status ms;
        MPI_Request rq;
        long t;
        int got = 0;
        /* wait for a report, but see a stop signal within Q_POLL_NS */
        MPI_Irecv(&rep, (int)sizeof rep, MPI_BYTE, MPI_ANY_SOURCE, TAG_REPORT, MPI_COMM_WORLD, &rq);
        for (;;) {
            struct timespec ts = {0, Q_POLL_NS};
            MPI_Test(&rq, &got, &ms);
            if (got || (sig = sweep__stop_sig()) != 0)
                break;
            nanosleep(&ts, NULL);
        }
        if (!got) { /* stopped: the workers are being stopped too (file comment) */
            MPI_Cancel(&rq);
            MPI_Request_free(&rq);
            break;
        }
        rep.msg[sizeof rep.msg - 1] = '\0';
        if (rep.task >= 0) {
            char *buf = NULL, *log = NULL;
            if (rep.bytes > 0) {
                buf = sim_malloc((size_t)rep.bytes);
                SIM_ASSERT(buf != NULL); /* the data must still be received: nothing else to do */
                recv_bytes(buf, rep.bytes, ms.MPI_SOURCE);
            }
            if (rep.log_bytes > 0) {
                log = sim_malloc((size_t)rep.log_bytes);
                SIM_ASSERT(log != NULL);
                recv_bytes(log, rep.log_bytes, ms.MPI_SOURCE);
            }
            echo_notes(c, (size_t)rep.task, log, rep.log_bytes);
            sim_free(log);
            if (rep.status != SIM_OK)
                sweep__fail(c, (size_t)rep.task, rep.status, rep.msg);
            else {
                char path[700], msg[1300];
                FILE *f;
                snprintf(path, sizeof path, "%s/task-%lld.db", c->tmpdir, (long long)rep.task);
                f = fopen(path, "wb");
                if (f == NULL || fwrite(buf, 1, (size_t)rep.bytes, f) != (size_t)rep.bytes ||
                    fclose(f) != 0) {
                    snprintf(msg, sizeof msg, "%s: writing the worker's file failed", path);
                    sweep__fail(c, (size_t)rep.task, SIM_EIO, msg);
                } else
                    sweep__collect(c, (size_t)rep.task, path);
                unlink(path);
            }
            sim_free(buf);
            sweep_dispatch_done(&d);
            sweep__progress(c, 1);
        }
        if ((sig = sweep__stop_sig()) != 0)
            break;
        if (c->db_broken)
            sweep_dispatch_close(&d);
        t = sweep_dispatch_next(&d);
        MPI_Send(&t, 1, MPI_LONG, ms.MPI_SOURCE, TAG_TASK, MPI_COMM_WORLD);
    }
    return sig;
}

int sweep__mpi_main(const sweep_args *a, sweep_spec *spec) {
    int rank = 0, n_ranks = 1, ok = 1, code = RT_EXIT_OK, sig = 0;
    struct sigaction old_act[SWEEP_N_STOP_SIGS];
    sweep_coord c;
    sim_err err;
    char buf[1200];
    MPI_Init(NULL, NULL);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    sim_err_clear(&err);
    if (a->dry_run) { /* the list once, from rank 0 */
        if (rank == 0)
            sweep__dry_run(spec, a->db);
        MPI_Finalize();
        return RT_EXIT_OK;
    }
    if (rank == 0) {
        int rc;
        /* caught from here (workers: in worker()), so that a stop while
         * the sweep is being opened is seen by coordinate() */
        if (n_ranks > 1)
            sweep__stop_catch(old_act, NULL);
        rc = sweep__coord_open(&c, a, spec, &err);
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
            else if ((sig = coordinate(&c, n_ranks)) != 0) {
                /* files first, then the message: mpirun may have closed
                 * stderr already (a write then is EPIPE, not a SIGPIPE) */
                signal(SIGPIPE, SIG_IGN);
                sweep__coord_close(&c);
                sweep__stop_report(&c, sig);
                code = RT_EXIT_RUNTIME;
            }
            if (code == RT_EXIT_OK && n_ranks > 1)
                code = sweep__db_report(&c); /* sweep__local reports its own */
            if (code == RT_EXIT_OK)
                code = sweep__coord_finish(&c);
            if (sig == 0)
                sweep__coord_close(&c);
        } else
            worker(a, spec, rank);
    }
    if (rank == 0 && n_ranks > 1)
        sweep__stop_restore(old_act);
    if (sig != 0) /* the other ranks are stopping or stopped: no collective call */
        return code;
    /* every rank exits with rank 0's code, so mpirun reports it */
    MPI_Bcast(&code, 1, MPI_INT, 0, MPI_COMM_WORLD);
    MPI_Finalize();
    return code;
}
