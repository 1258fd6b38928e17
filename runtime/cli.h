/* cli.h: the kvfleet command: subcommands, options and exit codes.
 *
 * Every `run` option has a long name; the resolved options form one JSON
 * object keyed by those names (without dashes). It is stored with each run
 * (runs.config), read back by `--config FILE` and `rerun`, and is the
 * vocabulary of experiment specs. */
#ifndef RT_CLI_H
#define RT_CLI_H

#include <jansson.h>

#include "err.h"
#include "metrics.h"
#include "perf.h"
#include "sched.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Exit codes, the same for every subcommand. */
enum rt_exit { RT_EXIT_OK = 0, RT_EXIT_INPUT = 1, RT_EXIT_USAGE = 2, RT_EXIT_RUNTIME = 3 };

/* The highest price of one GPU-hour kvfleet takes (--gpu-price, a fleet's
 * usd_per_gpu_hour), USD: far above any real one, low enough that no
 * cost a run can reach overflows. */
#define RT_MAX_GPU_PRICE 1e6

/* Exit code for a status: bad input or infeasible -> 1, the rest -> 3. */
int rt_exit_code(int status);
/* Prints "kvfleet CMD: " and err's message (file, line and field), or the
 * status's name when err is empty, on stderr; returns rt_exit_code(status). */
int rt_report_err(const char *cmd, const sim_err *err, int status);

/* "kvfleet" and argv[0..argc) joined by spaces: the command line stored
 * with results. malloc'd (free it); NULL when out of memory. */
char *rt_join_argv(int argc, char **argv);

/* 1 when the argument after option argv[i] can be its value: there is one,
 * and it is not itself an option ("--..."): a missing value must not take
 * the next flag (`--db --dry-run` wrote a file named --dry-run). A file so
 * named is given as ./--name (run, rerun and validate, which read the '='
 * form themselves, also take --db=--name; the other commands get
 * "--opt=value" split in two words by main.c). Every subcommand reads an
 * option's separate value through it. */
int rt_has_value(int argc, char **argv, int i);

/* 1 when the comma-separated list text has an empty element ("", ",",
 * "a,,b", "a," or ",a"), which strtok_r or a skip of empty words would
 * pass over silently. */
int rt_list_has_empty(const char *text);

/* Parses the whole of text as a base-10 integer in [lo, hi] into *out:
 * 0; -1 when it is not an integer (empty, trailing characters); -2 when it
 * is one out of [lo, hi], or beyond long long (*out unchanged either way).
 * Every integer option of every subcommand is read with it. */
int rt_parse_int(const char *text, long long lo, long long hi, long long *out);
/* Whether text is a whole base-10 integer ([+-] and digits only, no
 * blanks): the form a count in a file must have. */
static inline int rt_int_form(const char *text) {
    const char *p = text + (*text == '+' || *text == '-');
    if (*p == '\0')
        return 0;
    for (; *p != '\0'; p++)
        if (*p < '0' || *p > '9')
            return 0;
    return 1;
}
/* Whether the argument a is one of names (NULL-terminated): a command's
 * options that take a value, so that one given last lacks its value and
 * any other is unknown. */
int rt_arg_in(const char *a, const char *const *names);
/* Prints "WHO: A: expected a value, got nothing" on stderr when a is one
 * of value_opts (given last, without its value), else "WHO: A: unknown
 * option"; who is the command ("kvfleet profile"). */
void rt_arg_refuse(const char *who, const char *a, const char *const *value_opts);
/* The same for a finite number in [lo, hi]. */
int rt_parse_num(const char *text, double lo, double hi, double *out);
/* rt_parse_num for a duration in seconds, which may end in a unit (ns, us,
 * ms, s, m, h; "500ms" is 0.5); the same return codes, with no range but
 * a double's. */
int rt_parse_duration_s(const char *text, double *out);
/* The exit code of a value rt_parse_int or rt_parse_num refused: usage (2)
 * for a value not of the option's form (-1), bad input (1) for one out of
 * range (-2), as docs/cli.md says for every command. */
int rt_value_exit(int parse_rc);

/* Seconds on the monotonic clock (CLOCK_MONOTONIC) from an arbitrary
 * origin: for measured durations and progress, never simulated state. */
double rt_now_s(void);

/* Parses `run` options from argv into a JSON object (owned, returned in
 * *out) on top of base (may be NULL; borrowed). Returns SIM_OK, SIM_EINVAL
 * with *err naming the option (a usage error), or SIM_EPARSE for a value of
 * the option's form beyond what it can hold (an integer past its bits: bad
 * input, exit 1, like any other out-of-range value). */
int rt_run_args(int argc, char **argv, json_t *base, json_t **out, sim_err *err);
/* rt_run_args for options given over a saved config (--config, rerun,
 * validate): a request source given in argv (--trace or --synthetic)
 * replaces base's, where rt_run_args would keep both and refuse them. */
int rt_run_args_over(int argc, char **argv, json_t *base, json_t **out, sim_err *err);

/* Reads a `--config FILE` of run options into an owned *out: a JSON object
 * whose keys and value types are checked against the run options (the
 * file named in every message). SIM_OK, SIM_EPARSE or SIM_EINVAL (exit 1,
 * as `run --config` does), with *out NULL on failure. */
int rt_run_config_load(const char *path, json_t **out /* OUT */, sim_err *err);
/* A command's --config PATH (cmd names it in messages: "run", "validate"):
 * loads it into *base, which must still be NULL (one --config at most).
 * Returns 0, or the exit code with the reason printed: 2 for a second
 * --config, 1 for a file that cannot be read or used. */
int rt_config_option(const char *cmd, const char *path, json_t **base);

/* Checks a config and fills in its trace and defaults in place (the stored
 * form); SIM_OK or SIM_EINVAL with *err naming the option. */
int rt_run_resolve(json_t *cfg, sim_err *err);

/* The checks of a resolved config that read no file and build no model:
 * executor and what it can do, router, replica count, limits of the
 * figures. SIM_OK, or SIM_EINVAL / SIM_ENOTSUP (SIM_EDEVICE for cuda in a
 * build without it) with *err naming the option. */
int rt_run_check(json_t *cfg, sim_err *err);
/* The checks of a resolved config beyond rt_run_check that a sweep makes for
 * every point before it writes anything: the names only a run's set-up
 * reads (model, GPU and calibration file, unless a fleet names them;
 * dtypes; the scheduler's and the cache's policies with the policy's
 * parameters), the scheduler's values that need no model (--max-num-seqs
 * 0, --block-tokens 2000, a --watermark above 0.5, ...) and the request
 * source, opened and closed (--limit, --load-scale, the synthetic spec,
 * --sessionize, the trace file and its header), and a fleet, built as the
 * run builds it and freed (its structure, its pools' names and values).
 * What needs the model and the GPU together (weights larger than HBM, TP
 * not dividing the heads, in a lone run or a fleet's pool: SIM_EINFEASIBLE)
 * is left to the run, so a sweep over sizes records those points failed. */
int rt_run_precheck(json_t *cfg, sim_err *err);

/* Runs the simulation a config object describes; prints the summary (JSON
 * when json != 0) and returns an exit code. command is stored with the run;
 * who ("run", "rerun") prefixes its messages. file_cfg holds the options
 * `--config file` gave that the command line did not (both NULL without
 * one): an error about one of their values names the file and its key
 * rather than the option. */
int rt_run_config(json_t *cfg, int json, const char *command, const char *who, json_t *file_cfg,
                  const char *file);

/* Runs a config object as a run of the given kind ('run', 'validate')
 * without printing anything but notes and progress on stderr: fills *sum
 * and an owned *info (run_id, db, model, gpu, kv_blocks, backend, ...).
 * Returns SIM_OK or an error status with *err set (the run, if stored, is
 * marked failed). command is stored with the run. */
int rt_run_exec(json_t *cfg, const char *kind, const char *command, met_summary *sum /* OUT */,
                json_t **info /* OUT */, sim_err *err);

/* One pool's model, GPU, perf model and scheduler config (a run has one;
 * a fleet one per pool). */
typedef struct rt_pool {
    perf_ctx pctx;        /* model, GPU, calibration, TP */
    sched_config sched;   /* kv_blocks resolved */
    long long kv_blocks;  /* one replica's pool */
    int model_layers;     /* the model's layers when --layers cut it, else 0 */
    evict_oracle *oracle; /* belady's (sched.policy_params.oracle), else NULL; the caller
                             frees it with evict_oracle_destroy once the run ends */
    char notes[768];      /* notes for the user, each line `kvfleet: note: ...\n`, printed
                             by the run (rt_pool_notes_print), not by a check that only
                             builds the pool */
} rt_pool;
struct be_ops;
int rt_pool_setup(json_t *cfg, const struct be_ops *ops, const char *replay, rt_pool *out,
                  sim_err *err);
/* Prints the notes of a pool that rt_pool_setup set up on stderr. */
void rt_pool_notes_print(const rt_pool *p);

/* Opens the request source of a resolved config (trace or synthetic spec,
 * --load-scale, --limit, --seed, --sessionize): an owned *t, or an error
 * status with *err set and *t NULL. */
struct trace_src;
int rt_source_open(json_t *cfg, struct trace_src **t, sim_err *err);

/* Subcommand entry points: argv[0] is the subcommand name. */
int rt_main_run(int argc, char **argv);
int rt_main_predict(int argc, char **argv);
int rt_main_trace(int argc, char **argv);
int rt_main_rerun(int argc, char **argv);
/* `kvfleet validate` (validate.c). */
int rt_main_validate(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif /* RT_CLI_H */
