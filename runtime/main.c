/* main.c: the kvfleet command: dispatches to a subcommand.
 * Exit codes (every subcommand): 0 success, 1 bad input or infeasible
 * configuration, 2 usage error, 3 runtime or device failure. */
#include "config.h"
#include "kv_version.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_replay.h"
#include "calibrate.h"
#include "capacity.h"
#include "cli.h"
#include "collective_cmd.h"
#include "plot.h"
#include "profile.h"
#include "query.h"
#include "sweep.h"

static void usage(FILE *f) {
    fprintf(f, "usage: kvfleet COMMAND [OPTIONS]\n\n"
               "commands:\n"
               "  run          replay a trace through the simulated fleet (default)\n"
               "  predict      predicted time of one step, per operator\n"
               "  trace stats  requests, duration, rate and length percentiles of a trace\n"
               "  calibrate    fit the perf model to measured operator profiles\n"
               "  profile      measure operator profiles on this GPU (cuda) for calibrate\n"
               "  rerun        re-run a stored run: kvfleet rerun DB RUN_ID\n"
               "  validate     run a trace on a measured executor and on the simulator; compare\n"
               "  cache-replay replay only the KV prefix cache of a trace, per policy\n"
               "  capacity     the smallest fleet (replicas, GPUs, TP) that meets every SLO\n"
               "  sweep        run every point of an experiment spec into one results file\n"
               "  query        one row per sweep point (or run) of a results file\n"
               "  collective   predicted time of one collective (allreduce, ...) on a topology\n"
               "  plot         gnuplot figures from a results file (latency-load, roofline, ...)\n"
               "  --version    version and build features\n\n"
               "kvfleet COMMAND --help describes a command's options.\n");
}

/* Whether argument a is an option given with its value after '=': a long
 * one, "--name=value", or a one-letter one, "-o=value" (as the docs say
 * every option reads its value either way). */
static int opt_with_eq(const char *a) {
    const char *eq = strchr(a, '=');
    if (eq == NULL || a[0] != '-')
        return 0;
    if (a[1] == '-')
        return eq > a + 2;
    return ((a[1] >= 'a' && a[1] <= 'z') || (a[1] >= 'A' && a[1] <= 'Z')) && eq == a + 2;
}

/* argv with each "--name=value" or "-o=value" split into "--name" "value"
 * (on the first '='), for the commands whose parsers read an option and its
 * value as two words; run, rerun and validate read both forms themselves
 * and keep the words as typed (they store the command). The names are
 * copies in names (one buffer, freed by the caller with the array); NULL
 * when out of memory. */
static char **split_eq(int argc, char **argv, int *out_argc, char **names) {
    char **v = malloc(sizeof *v * (2 * (size_t)argc + 1)), *w;
    size_t len = 0;
    int i, n = 0;
    for (i = 0; i < argc; i++)
        len += strlen(argv[i]) + 1;
    *names = w = malloc(len + 1);
    if (v == NULL || w == NULL) {
        free(v);
        free(w);
        return NULL;
    }
    for (i = 0; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (opt_with_eq(argv[i])) {
            size_t k = (size_t)(eq - argv[i]);
            memcpy(w, argv[i], k);
            w[k] = '\0';
            v[n++] = w;
            w += k + 1;
            v[n++] = (char *)eq + 1;
        } else {
            v[n++] = argv[i];
        }
    }
    v[n] = NULL;
    *out_argc = n;
    return v;
}

/* Each command's flags: the options that take no value. A flag given with
 * '=' ("--json=true") is refused before the command sees it: split_eq
 * would make the value the next word, read as a positional argument or as
 * the next option. run's true|false options (--check, ...) take a value
 * and are not flags. A command's new flag belongs here too. */
static const char *const run_flags[] = {"--help", "-h", "--json", "--no-db", NULL};
static const char *const rerun_flags[] = {"--help", "-h", "--json", "--no-db", NULL};
static const char *const capacity_flags[] = {"--help", "-h", "--json", "--quiet", "--no-db", NULL};
static const char *const json_flags[] = {"--help", "-h", "--json", NULL};
static const char *const profile_flags[] = {"--help",    "-h",        "--json",
                                            "--dry-run", "--warm-l2", NULL};
static const char *const sweep_flags[] = {"--help",         "-h", "--dry-run", "--quiet",
                                          "--retry-failed", NULL};
static const char *const query_flags[] = {"--help", "-h", "--csv", "--all-columns", NULL};
static const char *const plot_flags[] = {"--help", "-h", "--quiet", NULL};
static const struct {
    const char *cmd;
    const char *const *flags;
} cmd_flags[] = {
    {"run", run_flags},           {"rerun", rerun_flags},     {"validate", run_flags},
    {"capacity", capacity_flags}, {"predict", json_flags},    {"trace", json_flags},
    {"calibrate", json_flags},    {"profile", profile_flags}, {"cache-replay", json_flags},
    {"sweep", sweep_flags},       {"query", query_flags},     {"plot", plot_flags},
    {"collective", json_flags},
};

/* 1 after saying so on stderr (usage error) when an argument gives a
 * flag of the command a value after '=' ("predict --json=true"), else 0. */
static int flag_with_value(int argc, char **argv) {
    int own = argc > 1 && strncmp(argv[1], "--", 2) != 0; /* argv[1] names the command */
    const char *cmd = own ? argv[1] : "run";
    const char *const *flags = NULL;
    const char *const *f;
    size_t k;
    int i;
    for (k = 0; k < sizeof cmd_flags / sizeof cmd_flags[0]; k++)
        if (strcmp(cmd_flags[k].cmd, cmd) == 0)
            flags = cmd_flags[k].flags;
    if (flags == NULL) /* an unknown command: said so by dispatch_cmd */
        return 0;
    for (i = own ? 2 : 1; i < argc; i++) {
        size_t n;
        if (!opt_with_eq(argv[i]))
            continue;
        n = (size_t)(strchr(argv[i], '=') - argv[i]);
        for (f = flags; *f != NULL; f++)
            if (strlen(*f) == n && strncmp(argv[i], *f, n) == 0) {
                fprintf(stderr, "kvfleet %s%s: %s: expected no value, got '%s'\n", cmd,
                        strcmp(cmd, "trace") == 0 && argc > 2 && strcmp(argv[2], "stats") == 0
                            ? " stats"
                            : "",
                        *f, argv[i]);
                return 1;
            }
    }
    return 0;
}

/* Runs the command argv[1] (run when none); returns its exit code. */
static int dispatch_cmd(int argc, char **argv);

/* dispatch_cmd, on argv split by split_eq for the commands that need it,
 * once no flag is given a value. */
static int dispatch(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "run";
    char **v, *names;
    int n, code;
    if (flag_with_value(argc, argv))
        return RT_EXIT_USAGE;
    if (strcmp(cmd, "run") == 0 || strcmp(cmd, "rerun") == 0 || strcmp(cmd, "validate") == 0 ||
        strncmp(cmd, "--", 2) == 0)
        return dispatch_cmd(argc, argv);
    if ((v = split_eq(argc, argv, &n, &names)) == NULL) {
        fprintf(stderr, "kvfleet: out of memory reading the command line\n");
        return RT_EXIT_RUNTIME;
    }
    code = dispatch_cmd(n, v);
    free(v);
    free(names);
    return code;
}

static int dispatch_cmd(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "run";
    if (argc > 1 && (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0)) {
        printf("kvfleet %s (%s)\n", PACKAGE_VERSION, KV_GIT_VERSION);
#ifdef KV_HAVE_CUDA
        printf("cuda: yes\n");
#else
        printf("cuda: no\n");
#endif
#ifdef KV_HAVE_MPI
        printf("mpi: yes\n");
#else
        printf("mpi: no\n");
#endif
        return 0;
    }
    if (argc > 1 &&
        (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc <= 1 || strncmp(cmd, "--", 2) == 0) { /* no command or options only: run */
        /* argv[0] as "run", so that the command stored with the run reads
         * "kvfleet run ...", not the program's path */
        char run[] = "run";
        argv[0] = run;
        return rt_main_run(argc, argv);
    }
    if (strcmp(cmd, "run") == 0)
        return rt_main_run(argc - 1, argv + 1);
    if (strcmp(cmd, "predict") == 0)
        return rt_main_predict(argc - 1, argv + 1);
    if (strcmp(cmd, "trace") == 0)
        return rt_main_trace(argc - 1, argv + 1);
    if (strcmp(cmd, "calibrate") == 0)
        return calib_main(argc - 1, argv + 1);
    if (strcmp(cmd, "profile") == 0)
        return rt_main_profile(argc - 1, argv + 1);
    if (strcmp(cmd, "rerun") == 0)
        return rt_main_rerun(argc - 1, argv + 1);
    if (strcmp(cmd, "validate") == 0)
        return rt_main_validate(argc - 1, argv + 1);
    if (strcmp(cmd, "cache-replay") == 0)
        return rt_main_cache_replay(argc - 1, argv + 1);
    if (strcmp(cmd, "capacity") == 0)
        return rt_main_capacity(argc - 1, argv + 1);
    if (strcmp(cmd, "sweep") == 0)
        return rt_main_sweep(argc - 1, argv + 1);
    if (strcmp(cmd, "query") == 0)
        return rt_main_query(argc - 1, argv + 1);
    if (strcmp(cmd, "plot") == 0)
        return rt_main_plot(argc - 1, argv + 1);
    if (strcmp(cmd, "collective") == 0)
        return rt_main_collective(argc - 1, argv + 1);
    fprintf(stderr, "kvfleet: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}

/* A write to stdout that failed (a full disk, /dev/full) is a runtime
 * failure, exit 3, whatever the command returned: stdio keeps the text in a
 * buffer, so the error often shows only at this flush, and it is sticky in
 * ferror() when an earlier write met it. A command that already failed on
 * it (trace stats says so itself) is not reported twice. */
int main(int argc, char **argv) {
    int code = dispatch(argc, argv);
    int flush_failed = fflush(stdout) != 0, err = errno;
    if (flush_failed || ferror(stdout)) {
        if (code == RT_EXIT_OK)
            fprintf(stderr, "kvfleet: stdout: write error%s%s\n", flush_failed ? ": " : "",
                    flush_failed ? strerror(err) : "");
        return RT_EXIT_RUNTIME;
    }
    return code;
}
