/* validate.c: `kvfleet validate`: how far the perf model is from a
 * measured executor, per step and end to end.
 *
 * Method. (1) The trace runs through the measured executor (--backend cpu
 * or cuda; replay also works, on a recorded measured run) with the run
 * options given, fast-forward off, as a run of kind 'validate'. The engine
 * asks the perf model for its prediction of every executed batch, so each
 * steps row holds the prediction (pred_s) and the measurement (meas_s) of
 * the same batch side by side. (2) The same trace and options run through
 * the simulator alone (kind 'run', the same KV pool size), where time
 * advances by the predictions. (3) Per step: the absolute percentage error
 * |pred - meas| / meas, its median and 95th percentile overall and by step
 * kind (prefill: only prefill chunks; decode: only decoding sequences;
 * mixed: both). End to end: the signed relative error (sim - measured) /
 * measured of TTFT p50, TPOT p50 and output-token throughput.
 *
 * The cpu executor's times are CPU times: its errors against a GPU
 * prediction are labelled a plumbing check, never a fidelity figure.
 * Figures: --csv-dir DIR writes DIR/steps.csv; --plot DIR writes it there
 * and runs gnuplot on experiments/validate/pred_vs_meas.gp and
 * err_vs_batch.gp (a missing gnuplot is a warning). docs/backends.md has
 * the JSON contract.
 *
 * Non-goals: any comparison other than against the perf model (the
 * differential tests do executor against executor). */
#include "config.h"
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "backends.h"
#include "datadir.h"
#include "fileio.h"
#include "json_util.h"
#include "engine.h"
#include "mem.h"
#include "num.h"
#include "store_steps.h"

enum { K_ALL = 0, K_PREFILL, K_DECODE, K_MIXED, K_N };
static const char *const kind_names[K_N] = {"all", "prefill", "decode", "mixed"};

typedef struct ape_set {
    double *v; /* sorted after ape_finish */
    size_t n;
    double p50, p95;
} ape_set;

static int step_kind(const store_step_rec *r) {
    if (r->n_decode == 0)
        return K_PREFILL;
    return r->n_prefill == 0 ? K_DECODE : K_MIXED;
}

static void ape_finish(ape_set *s) {
    qsort(s->v, s->n, sizeof *s->v, sim_cmp_double);
    s->p50 = met_quantile_sorted(s->v, s->n, 0.50);
    s->p95 = met_quantile_sorted(s->v, s->n, 0.95);
}

static double ape_of(const store_step_rec *r) {
    if (!(r->meas_s > 0) || !isfinite(r->pred_s))
        return NAN;
    return fabs(r->pred_s - r->meas_s) / r->meas_s;
}

/* (pred - meas) / meas, NAN when undefined. */
static double rel_err(double pred, double meas) {
    if (!isfinite(pred) || !isfinite(meas) || meas == 0)
        return NAN;
    return (pred - meas) / meas;
}

/* Makes the folder an option names (one level), or checks that an existing
 * one is a folder we may write in: done before either run, so that a bad
 * folder is refused up front (bad input, exit 1). SIM_OK or SIM_EINVAL with
 * *err naming the option. */
static int dir_prepare(const char *opt, const char *dir, sim_err *err) {
    switch (sim_dir_ready(dir)) {
        case SIM_DIR_OK:
            return SIM_OK;
        case SIM_DIR_MKDIR:
            sim_err_set(err, "", 0, 0, "%s: expected a folder that can be created, got '%s' (%s)",
                        opt, dir, strerror(errno));
            break;
        case SIM_DIR_STAT:
            sim_err_set(err, "", 0, 0, "%s: expected a folder, got '%s' (%s)", opt, dir,
                        strerror(errno));
            break;
        case SIM_DIR_NOT_DIR:
            sim_err_set(err, "", 0, 0, "%s: expected a folder, got '%s' (a file)", opt, dir);
            break;
        case SIM_DIR_NOT_WRITABLE:
            sim_err_set(err, "", 0, 0, "%s: expected a folder that can be written, got '%s' (%s)",
                        opt, dir, strerror(errno));
            break;
    }
    return SIM_EINVAL;
}

/* Writes DIR/steps.csv (DIR made by dir_prepare); SIM_OK or SIM_EIO with
 * *err set. */
static int write_csv(const char *dir, const store_step_rec *rows, int64_t n, char *path,
                     size_t path_n, sim_err *err) {
    FILE *f;
    int64_t i;
    snprintf(path, path_n, "%s/steps.csv", dir);
    f = fopen(path, "w");
    if (f == NULL) {
        sim_err_set(err, path, 0, 0, "cannot write: %s", strerror(errno));
        return SIM_EIO;
    }
    fprintf(f, "replica,step,kind,batch_size,n_prefill,n_decode,prefill_tokens,decode_tokens,"
               "tokens,pred_s,meas_s,ape\n");
    for (i = 0; i < n; i++) {
        const store_step_rec *r = &rows[i];
        double ape = ape_of(r);
        if (!isfinite(ape))
            continue;
        fprintf(f, "%d,%lld,%s,%d,%d,%d,%lld,%lld,%lld,%.9g,%.9g,%.6g\n", r->replica,
                (long long)r->step, kind_names[step_kind(r)], r->batch_size, r->n_prefill,
                r->n_decode, (long long)r->prefill_tokens, (long long)r->decode_tokens,
                (long long)(r->prefill_tokens + r->decode_tokens), r->pred_s, r->meas_s, ape);
    }
    if (fclose(f) != 0) {
        sim_err_set(err, path, 0, 0, "cannot write: %s", strerror(errno));
        return SIM_EIO;
    }
    return SIM_OK;
}

/* Runs gnuplot on the two templates; a missing gnuplot or template is a
 * warning on stderr, never an error. */
static void plot(const char *dir, const char *csv, const char *label) {
    static const char *const names[] = {"pred_vs_meas", "err_vs_batch"};
#ifdef KV_GNUPLOT
    const char *gp = KV_GNUPLOT;
#else
    const char *gp = "gnuplot";
#endif
    size_t i;
    if (strchr(dir, '\'') || strchr(dir, '"') || strchr(label, '\'')) {
        fprintf(stderr, "kvfleet validate: warning: --plot: a quote in the folder name; no "
                        "figures\n");
        return;
    }
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        char tpl[4200], cmd[9000];
        struct stat st;
        int rc;
        snprintf(tpl, sizeof tpl, "%s/../experiments/validate/%s.gp", rt_datadir(), names[i]);
        if (stat(tpl, &st) != 0) {
            fprintf(stderr,
                    "kvfleet validate: warning: %s not found (figures need the source tree's "
                    "experiments/); no %s figure\n",
                    tpl, names[i]);
            continue;
        }
        snprintf(cmd, sizeof cmd,
                 "'%s' -e \"csv='%s'; out='%s/%s.png'; label='%s'\" '%s' >/dev/null 2>&1", gp, csv,
                 dir, names[i], label, tpl);
        rc = system(cmd);
        if (rc != 0) {
            fprintf(stderr,
                    "kvfleet validate: warning: gnuplot failed or is not installed (%s); no %s "
                    "figure\n",
                    gp, names[i]);
            continue;
        }
        fprintf(stderr, "kvfleet validate: wrote %s/%s.png\n", dir, names[i]);
    }
}

/* What validate checks before running anything (the runs would finish and
 * be stored, and the comparison then fail): every step is kept
 * (--steps-sample 1: `steps` counts every executed step, and the per-step
 * percentiles are over all of them); a replayed run has measured steps;
 * the --csv-dir and --plot folders exist or can be made. SIM_OK, or
 * SIM_EINVAL (bad input, exit 1) or a store_steps_read status with *err
 * set. */
static int validate_precheck(json_t *cfg, const char *backend, const char *csv_dir,
                             const char *plot_dir, sim_err *err) {
    json_t *ss = json_object_get(cfg, "steps-sample");
    int rc;
    if (ss != NULL && json_integer_value(ss) != 1) {
        sim_err_set(err, "", 0, 0,
                    "--steps-sample: expected 1 with validate (it compares every executed step), "
                    "got '%lld'",
                    (long long)json_integer_value(ss));
        return SIM_EINVAL;
    }
    if (strcmp(backend, "replay") == 0) {
        const char *replay = json_string_value(json_object_get(cfg, "replay"));
        char db[4096];
        int64_t run_id, n = 0, i, n_meas = 0;
        store_run_meta meta;
        store_step_rec *rows = NULL;
        if (replay == NULL || replay[0] == '\0') {
            sim_err_set(err, "", 0, 0,
                        "--replay: expected DB:RUN_ID with --backend replay (the recorded "
                        "measured run), got nothing");
            return SIM_EINVAL;
        }
        if ((rc = be_replay_parse(replay, db, sizeof db, &run_id, err)) != SIM_OK)
            return rc;
        if ((rc = store_steps_read(db, run_id, &meta, &rows, &n, err)) != SIM_OK)
            return rc;
        for (i = 0; i < n; i++)
            n_meas += rows[i].meas_s > 0 && isfinite(rows[i].meas_s);
        sim_free(rows);
        if (n_meas == 0) {
            sim_err_set(err, "", 0, 0,
                        "--replay %s: expected a recorded measured run (steps with a measured "
                        "time: --backend cpu or cuda), got run %lld of backend '%s' with none",
                        replay, (long long)run_id, meta.backend[0] ? meta.backend : "?");
            return SIM_EINVAL;
        }
    }
    if (csv_dir && (rc = dir_prepare("--csv-dir", csv_dir, err)) != SIM_OK)
        return rc;
    if (plot_dir && (rc = dir_prepare("--plot", plot_dir, err)) != SIM_OK)
        return rc;
    return SIM_OK;
}

static void help(FILE *f) {
    fprintf(f, "usage: kvfleet validate --backend cpu|cuda [run options] [--json] [--csv-dir DIR] "
               "[--plot DIR]\n\n"
               "Runs the trace through the measured executor (every executed step is also "
               "predicted by the\nperf model), then through the simulator alone, and reports "
               "the per-step absolute percentage\nerror (p50, p95; overall and for prefill, "
               "decode and mixed steps) and the end-to-end errors\non TTFT p50, TPOT p50 and "
               "throughput. Both runs go to the results file (--db).\n\n"
               "  --json         print the report as one JSON object\n"
               "  --csv-dir DIR  write DIR/steps.csv (predicted and measured seconds per step)\n"
               "  --plot DIR     write the CSV and gnuplot figures pred_vs_meas.png and "
               "err_vs_batch.png there\n"
               "run options: see kvfleet run --help (--backend replay --replay DB:RUN_ID also "
               "works,\non a recorded measured run; --steps-sample must stay 1)\n");
}

int rt_main_validate(int argc, char **argv) {
    const char *csv_dir = NULL, *plot_dir = NULL, *backend;
    char **rest = calloc((size_t)argc + 1, sizeof *rest), *command = NULL;
    json_t *base = NULL, *cfg = NULL, *c1 = NULL, *c2 = NULL, *info1 = NULL, *info2 = NULL;
    met_summary s1, s2;
    store_step_rec *rows = NULL;
    store_run_meta meta;
    ape_set set[K_N];
    int64_t n_rows = 0, i, run1 = 0, run2 = 0;
    int json = 0, n = 0, rc = SIM_OK, k, exit_code = RT_EXIT_OK;
    const char *db, *label;
    char csv_path[4200] = "";
    sim_err err;

    memset(set, 0, sizeof set);
    sim_err_clear(&err);
    if (rest == NULL)
        return RT_EXIT_RUNTIME;
    command = rt_join_argv(argc, argv); /* argv[0] is "validate" */
    if (command == NULL) {
        free(rest);
        return RT_EXIT_RUNTIME;
    }
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            goto out;
        } else if (strcmp(a, "--json") == 0)
            json = 1;
        else if (strcmp(a, "--csv-dir") == 0 || strcmp(a, "--plot") == 0 ||
                 strcmp(a, "--config") == 0) {
            if (!rt_has_value(argc, argv, i)) {
                fprintf(stderr, "kvfleet validate: %s: expected a value, got nothing\n", a);
                exit_code = RT_EXIT_USAGE;
                goto out;
            }
            if (strcmp(a, "--csv-dir") == 0)
                csv_dir = argv[++i];
            else if (strcmp(a, "--plot") == 0)
                plot_dir = argv[++i];
            else if ((exit_code = rt_config_option("validate", argv[++i], &base)) != RT_EXIT_OK)
                goto out; /* run's loader: keys and types checked, options override */
        } else if (strncmp(a, "--config=", 9) == 0) {
            if ((exit_code = rt_config_option("validate", a + 9, &base)) != RT_EXIT_OK)
                goto out;
        } else
            rest[n++] = argv[i];
    }
    if ((rc = rt_run_args_over(n, rest, base, &cfg, &err)) != SIM_OK) {
        /* as run: a value of the right form out of range is bad input */
        exit_code = rc == SIM_EPARSE ? RT_EXIT_INPUT : RT_EXIT_USAGE;
        goto fail;
    }
    backend = json_string_value(json_object_get(cfg, "backend"));
    if (backend == NULL || strcmp(backend, "sim") == 0) {
        sim_err_set(&err, "", 0, 0,
                    "--backend: expected a measured executor (cpu or cuda; replay of a measured "
                    "run), got '%s'",
                    backend ? backend : "sim");
        rc = SIM_EINVAL;
        goto fail;
    }
    db = json_string_value(json_object_get(cfg, "db"));
    if (db && db[0] == '\0') {
        sim_err_set(&err, "", 0, 0,
                    "--no-db: validate compares steps rows and needs a results file (--db FILE)");
        rc = SIM_EINVAL;
        goto fail;
    }

    /* refused before either run: what would make the comparison impossible */
    if ((rc = validate_precheck(cfg, backend, csv_dir, plot_dir, &err)) != SIM_OK)
        goto fail;

    /* (1) the measured executor, every step predicted too */
    c1 = json_deep_copy(cfg);
    if (c1 == NULL)
        goto nomem;
    json_object_set_new(c1, "fast-forward", json_false());
    if ((rc = rt_run_exec(c1, "validate", command, &s1, &info1, &err)) != SIM_OK)
        goto fail;
    run1 = json_integer_value(json_object_get(info1, "run_id"));
    db = json_string_value(json_object_get(info1, "db"));

    /* (2) the simulator alone: same trace and options, the same KV pool */
    c2 = json_deep_copy(cfg);
    if (c2 == NULL)
        goto nomem;
    json_object_set_new(c2, "backend", json_string("sim"));
    json_object_del(c2, "replay");
    json_object_set_new(c2, "op-timing", json_false());
    json_object_set(c2, "kv-blocks", json_object_get(info1, "kv_blocks"));
    if ((rc = rt_run_exec(c2, "run", command, &s2, &info2, &err)) != SIM_OK)
        goto fail;
    run2 = json_integer_value(json_object_get(info2, "run_id"));

    /* (3) per-step errors from the measured run's rows */
    if ((rc = store_steps_read(db, run1, &meta, &rows, &n_rows, &err)) != SIM_OK)
        goto fail;
    for (k = 0; k < K_N; k++)
        if ((set[k].v = SIM_NEW_ARRAY(double, (size_t)n_rows + 1)) == NULL)
            goto nomem;
    for (i = 0; i < n_rows; i++) {
        double ape = ape_of(&rows[i]);
        if (!isfinite(ape))
            continue;
        set[K_ALL].v[set[K_ALL].n++] = ape;
        k = step_kind(&rows[i]);
        set[k].v[set[k].n++] = ape;
    }
    for (k = 0; k < K_N; k++)
        ape_finish(&set[k]);
    if (set[K_ALL].n == 0) {
        sim_err_set(&err, "", 0, 0,
                    "run %lld of %s: expected steps with a measured and a predicted time, got "
                    "none (was it recorded with --steps-sample 0?)",
                    (long long)run1, db);
        rc = SIM_EINVAL;
        goto fail;
    }
    if (csv_dir && (rc = write_csv(csv_dir, rows, n_rows, csv_path, sizeof csv_path, &err)))
        goto fail;
    if (plot_dir && (rc = write_csv(plot_dir, rows, n_rows, csv_path, sizeof csv_path, &err)))
        goto fail;

    {
        const char *bname = json_string_value(json_object_get(info1, "backend"));
        label = strcmp(bname, "cpu") == 0 ? "plumbing check (cpu backend: not a fidelity figure)"
                : strcmp(bname, "replay") == 0
                    ? "replay of a recorded run (its recorded step times)"
                    : "fidelity check (measured on the GPU)";
    }
    if (plot_dir)
        plot(plot_dir, csv_path, label);

    if (json) {
        json_t *o = json_object(), *bk = json_object(), *m = json_object(), *p = json_object();
        json_object_set_new(o, "label", json_string(label));
        json_object_set(o, "backend", json_object_get(info1, "backend"));
        json_object_set_new(o, "db", json_string(db));
        json_object_set_new(o, "validate_run_id", json_integer(run1));
        json_object_set_new(o, "sim_run_id", json_integer(run2));
        json_object_set(o, "model", json_object_get(info1, "model"));
        json_object_set(o, "gpu", json_object_get(info1, "gpu"));
        if (json_object_get(info1, "model_layers")) {
            json_object_set(o, "layers", json_object_get(info1, "layers"));
            json_object_set(o, "model_layers", json_object_get(info1, "model_layers"));
        }
        json_object_set(o, "kv_blocks", json_object_get(info1, "kv_blocks"));
        json_object_set_new(o, "steps", json_integer((json_int_t)set[K_ALL].n));
        json_object_set_new(o, "step_p50_ape", sim_json_real_or_null(set[K_ALL].p50));
        json_object_set_new(o, "step_p95_ape", sim_json_real_or_null(set[K_ALL].p95));
        for (k = K_PREFILL; k < K_N; k++) {
            json_t *e;
            if (set[k].n == 0) { /* no step of the kind: null, as docs/backends.md says */
                json_object_set_new(bk, kind_names[k], json_null());
                continue;
            }
            e = json_object();
            json_object_set_new(e, "steps", json_integer((json_int_t)set[k].n));
            json_object_set_new(e, "p50_ape", sim_json_real_or_null(set[k].p50));
            json_object_set_new(e, "p95_ape", sim_json_real_or_null(set[k].p95));
            json_object_set_new(bk, kind_names[k], e);
        }
        json_object_set_new(o, "by_kind", bk);
        json_object_set_new(o, "ttft_p50_err",
                            sim_json_real_or_null(rel_err(s2.ttft_p50_s, s1.ttft_p50_s)));
        json_object_set_new(o, "tpot_p50_err",
                            sim_json_real_or_null(rel_err(s2.tpot_p50_s, s1.tpot_p50_s)));
        json_object_set_new(
            o, "throughput_err",
            sim_json_real_or_null(rel_err(s2.output_tokens_per_s, s1.output_tokens_per_s)));
        json_object_set_new(m, "ttft_p50_s", sim_json_real_or_null(s1.ttft_p50_s));
        json_object_set_new(m, "tpot_p50_s", sim_json_real_or_null(s1.tpot_p50_s));
        json_object_set_new(m, "output_tokens_per_s",
                            sim_json_real_or_null(s1.output_tokens_per_s));
        json_object_set_new(p, "ttft_p50_s", sim_json_real_or_null(s2.ttft_p50_s));
        json_object_set_new(p, "tpot_p50_s", sim_json_real_or_null(s2.tpot_p50_s));
        json_object_set_new(p, "output_tokens_per_s",
                            sim_json_real_or_null(s2.output_tokens_per_s));
        json_object_set_new(o, "measured", m);
        json_object_set_new(o, "simulated", p);
        if (csv_path[0])
            json_object_set_new(o, "csv", json_string(csv_path));
        json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        printf("\n");
        json_decref(o);
    } else {
        printf("kvfleet validate: %s\n", label);
        printf("  %s on %s, backend %s: run %lld (measured) vs run %lld (simulated) in %s\n",
               json_string_value(json_object_get(info1, "model")),
               json_string_value(json_object_get(info1, "gpu")),
               json_string_value(json_object_get(info1, "backend")), (long long)run1,
               (long long)run2, db);
        if (json_object_get(info1, "model_layers"))
            printf("  model cut to its first %lld of %lld layers (--layers): both runs use the "
                   "cut model\n",
                   (long long)json_integer_value(json_object_get(info1, "layers")),
                   (long long)json_integer_value(json_object_get(info1, "model_layers")));
        printf("  per step |pred - meas| / meas:\n");
        for (k = 0; k < K_N; k++)
            if (set[k].n > 0)
                printf("    %-8s %6zu steps   p50 %7.1f %%   p95 %7.1f %%\n", kind_names[k],
                       set[k].n, 100 * set[k].p50, 100 * set[k].p95);
            else
                printf("    %-8s %6zu steps\n", kind_names[k], set[k].n);
        printf("  end to end (simulated vs measured):\n");
        printf("    TTFT p50    %.4g s vs %.4g s (%+.1f %%)\n", s2.ttft_p50_s, s1.ttft_p50_s,
               100 * rel_err(s2.ttft_p50_s, s1.ttft_p50_s));
        printf("    TPOT p50    %.4g s vs %.4g s (%+.1f %%)\n", s2.tpot_p50_s, s1.tpot_p50_s,
               100 * rel_err(s2.tpot_p50_s, s1.tpot_p50_s));
        printf("    throughput  %.4g vs %.4g output tokens/s (%+.1f %%)\n", s2.output_tokens_per_s,
               s1.output_tokens_per_s,
               100 * rel_err(s2.output_tokens_per_s, s1.output_tokens_per_s));
        if (csv_path[0])
            printf("  steps: %s\n", csv_path);
    }
    goto out;
nomem:
    rc = SIM_ENOMEM;
    sim_err_set(&err, "", 0, 0, "out of memory");
fail : {
    int fail_code = rt_report_err("validate", &err, rc);
    if (exit_code == RT_EXIT_OK)
        exit_code = fail_code;
}
out:
    for (k = 0; k < K_N; k++)
        sim_free(set[k].v);
    sim_free(rows);
    json_decref(info1);
    json_decref(info2);
    json_decref(c1);
    json_decref(c2);
    json_decref(cfg);
    json_decref(base);
    free(rest);
    free(command);
    return exit_code;
}
