/* plot_kinds.c: the figures of one run or one table: `capacity` (GPUs
 * needed against load, from the capacity search's table), `timeline`
 * (batch, queue and KV utilisation of one run over simulated time),
 * `roofline` (every step of one run against its GPU's roofline) and
 * `validation` (predicted against measured, from a `kvfleet validate`
 * pair of runs).
 *
 * Run selection: --run ID when given (it must exist and have the rows), else
 * the latest finished run that has them. The roofline's ceiling and slope
 * come from the run's GPU preset (sim_gpu_load on its stored config) and
 * its weights' dtype (--dtype, else the model's), never from constants; the
 * balance point is their ratio. Steps beyond PLOT_MAX_POINTS are thinned by
 * keeping every k-th row in (replica, step) order, k the smallest that
 * brings them under the limit, so the same file always gives the same
 * figure.
 *
 * Non-goals: the silicon study's CSV files (experiments/silicon): the
 * validation figure reads only results files written by kvfleet validate. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datadir.h"
#include "hw.h"
#include "mem.h"
#include "model.h"
#include "plot_int.h"
#include "store.h"

/* Most step points a roofline draws. */
#define PLOT_MAX_POINTS 20000

/* The run to draw: --run (checked to have the rows: have_sql, a query
 * naming the run as r.run_id, returns a row), else the latest finished run
 * for which it does. *run_id 0 and SIM_EINVAL naming what (the rows, the
 * command making them) when none. */
static int pick_run(plot_ctx *c, const char *have_sql, const char *kind, const char *what,
                    int64_t *run_id) {
    sqlite3_stmt *st = NULL;
    char sql[1024];
    int rc;
    *run_id = 0;
    if (c->run_id) {
        if ((rc = plot__run_exists(c, c->run_id)) != SIM_OK)
            return rc;
        snprintf(sql, sizeof sql, "SELECT r.run_id FROM runs r WHERE r.run_id = ?1 AND EXISTS (%s)",
                 have_sql);
    } else
        snprintf(sql, sizeof sql,
                 "SELECT run_id FROM runs r WHERE r.status = 'done' AND EXISTS (%s) ORDER BY "
                 "run_id DESC LIMIT 1",
                 have_sql);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return plot__db_fail(c, kind);
    if (c->run_id)
        sqlite3_bind_int64(st, 1, c->run_id);
    if (sqlite3_step(st) == SQLITE_ROW)
        *run_id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (*run_id == 0) {
        if (c->run_id)
            sim_err_set(c->err, c->db_path, 0, 0, "%s: run %lld has no %s", kind,
                        (long long)c->run_id, what);
        else
            sim_err_set(c->err, c->db_path, 0, 0, "%s: expected a finished run with %s, got none",
                        kind, what);
        return SIM_EINVAL;
    }
    return SIM_OK;
}

/* Appends "run N: <common configuration>" of one run to out. */
static void run_line(plot_ctx *c, int64_t run_id, json_t *cfg, plot_buf *out) {
    plot__printf(out, "run %lld", (long long)run_id);
    if (cfg != NULL) {
        plot__printf(out, ": ");
        plot__config_common(&cfg, 1, out);
    }
    (void)c;
}

/* ---- capacity ---- */

int plot__capacity(plot_ctx *c) {
    sqlite3_stmt *st = NULL;
    plot_buf common, data;
    json_t **cfgs = NULL;
    size_t n_cfgs = 0, cap_cfgs = 0, n_slo = 0, n_rows = 0, i;
    int64_t search = c->sweep_id;
    int rc = SIM_OK, by_scale = 0;
    long long max_gpus = 1;
    char prev[512] = "", *slo_names[64];

    memset(&common, 0, sizeof common);
    memset(&data, 0, sizeof data);
    if (!store_has_table(c->db, "capacity")) {
        sim_err_set(c->err, c->db_path, 0, 0,
                    "capacity: expected table capacity, got none (the capacity search writes "
                    "it: kvfleet capacity --db FILE ...)");
        return SIM_EINVAL;
    }
    if (search == 0) {
        if (sqlite3_prepare_v2(c->db, "SELECT MAX(search_id) FROM capacity", -1, &st, NULL) !=
            SQLITE_OK)
            return plot__db_fail(c, "capacity");
        if (sqlite3_step(st) == SQLITE_ROW)
            search = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    /* a search the capacity command did not finish (killed: still
     * 'running'; or 'failed') is not drawn as if it were whole */
    if (search > 0 && store_has_table(c->db, "capacity_searches")) {
        char status[32] = "";
        if (sqlite3_prepare_v2(c->db, "SELECT status FROM capacity_searches WHERE search_id = ?",
                               -1, &st, NULL) != SQLITE_OK)
            return plot__db_fail(c, "capacity");
        sqlite3_bind_int64(st, 1, search);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL)
            snprintf(status, sizeof status, "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        if (status[0] != '\0' && strcmp(status, "done") != 0) {
            sim_err_set(c->err, c->db_path, 0, 0,
                        "capacity: expected a finished search, got search %lld with status "
                        "'%s' (%s): run the capacity search again",
                        (long long)search, status,
                        strcmp(status, "running") == 0 ? "stopped before its end" : "it failed");
            return SIM_EINVAL;
        }
    }
    /* offered_rps where every row has it, else the load scale */
    if (sqlite3_prepare_v2(c->db,
                           "SELECT COUNT(*), COUNT(offered_rps) FROM capacity WHERE search_id = ? "
                           "AND gpus IS NOT NULL",
                           -1, &st, NULL) != SQLITE_OK)
        return plot__db_fail(c, "capacity");
    sqlite3_bind_int64(st, 1, search);
    if (sqlite3_step(st) == SQLITE_ROW) {
        n_rows = (size_t)sqlite3_column_int64(st, 0);
        by_scale = sqlite3_column_int64(st, 1) < sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (n_rows == 0) {
        sim_err_set(c->err, c->db_path, 0, 0,
                    "capacity: search %lld has no rows with a GPU count (table capacity); run "
                    "the capacity search (kvfleet capacity --db FILE ...)",
                    (long long)search);
        return SIM_EINVAL;
    }
    if (sqlite3_prepare_v2(c->db,
                           "SELECT coalesce(slo, ''), offered_rps, load_scale, gpus, tp, "
                           "replicas, run_id FROM capacity WHERE search_id = ? AND gpus IS NOT "
                           "NULL ORDER BY slo, CASE WHEN ?2 THEN load_scale ELSE offered_rps END, "
                           "load_scale",
                           -1, &st, NULL) != SQLITE_OK)
        return plot__db_fail(c, "capacity");
    sqlite3_bind_int64(st, 1, search);
    sqlite3_bind_int(st, 2, by_scale);
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *slo = (const char *)sqlite3_column_text(st, 0);
        double x = sqlite3_column_double(st, by_scale ? 2 : 1);
        int64_t run = sqlite3_column_type(st, 6) == SQLITE_NULL ? 0 : sqlite3_column_int64(st, 6);
        if (n_slo == 0 || strcmp(prev, slo) != 0) {
            if (n_slo == sizeof slo_names / sizeof slo_names[0])
                break; /* more SLO sets than a legend can hold */
            if (n_slo)
                plot__printf(&data, "EOD\n");
            snprintf(prev, sizeof prev, "%s", slo);
            if ((slo_names[n_slo] = sim_strdup(slo)) == NULL) {
                rc = SIM_ENOMEM;
                break;
            }
            plot__printf(&data, "$c%zu << EOD\n", n_slo++);
        }
        if (sqlite3_column_int64(st, 3) > max_gpus)
            max_gpus = (long long)sqlite3_column_int64(st, 3);
        plot__printf(&data, "%.9g %lld %lld %lld\n", x, (long long)sqlite3_column_int64(st, 3),
                     (long long)sqlite3_column_int64(st, 4),
                     (long long)sqlite3_column_int64(st, 5));
        if (run > 0) {
            json_t *cfg = plot__run_config(c, run);
            if (cfg != NULL) {
                if (n_cfgs == cap_cfgs) {
                    json_t **p;
                    cap_cfgs = cap_cfgs ? 2 * cap_cfgs : 16;
                    if ((p = sim_realloc(cfgs, cap_cfgs * sizeof *p)) == NULL) {
                        json_decref(cfg);
                        rc = SIM_ENOMEM;
                        break;
                    }
                    cfgs = p;
                }
                cfgs[n_cfgs++] = cfg;
            }
        }
    }
    sqlite3_finalize(st);
    if (rc != SIM_OK)
        goto out;
    plot__printf(&data, "EOD\n");
    for (i = 0; i < n_cfgs; i++) /* tp and replicas vary along a line: drop them */
        json_object_del(cfgs[i], "tp"), json_object_del(cfgs[i], "replicas");
    plot__config_common(cfgs, n_cfgs, &common);
    plot__printf(&common, "%scapacity search %lld", common.n ? "; " : "", (long long)search);

    plot__printf(c->gp, "%s", data.s);
    plot__title(c, "GPUs needed against load, per SLO set", common.s);
    plot__printf(c->gp, "set key top left box opaque font ',10'\nset mxtics\n"
                        "set ylabel 'GPUs (TP x replicas)'\n");
    /* whole GPUs: integer tics, headroom above the largest count */
    plot__printf(c->gp, "set yrange [0:%lld]\nset ytics %lld\n", max_gpus + 1 + max_gpus / 8,
                 (max_gpus + 9) / 10);
    if (by_scale)
        plot__printf(c->gp, "set xlabel 'load scale (x the trace''s rate)'\n");
    else
        plot__printf(c->gp, "set xlabel 'offered load (requests/s)'\n");
    plot__printf(c->gp, "plot ");
    for (i = 0; i < n_slo; i++) {
        plot__printf(c->gp,
                     "%s$c%zu using 1:2 with linespoints lw 2 pt 7 ps 1.1 lc rgb '%s' title ",
                     i ? ", \\\n  " : "", i, plot__colour(i));
        plot__quote(c->gp, slo_names[i][0] ? slo_names[i] : "(no SLO)");
    }
    plot__printf(c->gp, "\n");
out:
    for (i = 0; i < n_slo; i++)
        sim_free(slo_names[i]);
    for (i = 0; i < n_cfgs; i++)
        json_decref(cfgs[i]);
    sim_free(cfgs);
    plot__buf_fini(&common);
    plot__buf_fini(&data);
    return rc != SIM_OK ? rc : (common.oom || data.oom ? SIM_ENOMEM : SIM_OK);
}

/* ---- timeline ---- */

int plot__timeline(plot_ctx *c) {
    sqlite3_stmt *st = NULL;
    plot_buf common;
    json_t *cfg = NULL;
    int64_t run;
    int rc, n_rep = 1;

    memset(&common, 0, sizeof common);
    if (!store_has_table(c->db, "timeline")) {
        sim_err_set(c->err, c->db_path, 0, 0,
                    "timeline: expected table timeline, got none (kvfleet run --db FILE "
                    "writes it)");
        return SIM_EINVAL;
    }
    if ((rc = pick_run(c, "SELECT 1 FROM timeline t WHERE t.run_id = r.run_id", "timeline",
                       "timeline rows (kvfleet run --db FILE with --timeline-s above 0 writes "
                       "them)",
                       &run)) != SIM_OK)
        return rc;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT t_s + dt_s / 2, SUM(batch_mean), SUM(waiting_mean), "
                           "100 * AVG(kv_util_mean), COUNT(*) FROM timeline WHERE run_id = ? "
                           "GROUP BY t_s ORDER BY t_s",
                           -1, &st, NULL) != SQLITE_OK)
        return plot__db_fail(c, "timeline");
    sqlite3_bind_int64(st, 1, run);
    plot__printf(c->gp, "$t << EOD\n");
    while (sqlite3_step(st) == SQLITE_ROW) {
        int k;
        for (k = 0; k < 4; k++)
            if (sqlite3_column_type(st, k) == SQLITE_NULL)
                plot__printf(c->gp, "%sNaN", k ? " " : "");
            else
                plot__printf(c->gp, "%s%.9g", k ? " " : "", sqlite3_column_double(st, k));
        plot__printf(c->gp, "\n");
        if (sqlite3_column_int(st, 4) > n_rep)
            n_rep = sqlite3_column_int(st, 4);
    }
    sqlite3_finalize(st);
    plot__printf(c->gp, "EOD\nset datafile missing 'NaN'\n");
    cfg = plot__run_config(c, run);
    run_line(c, run, cfg, &common);
    plot__title(c, "Batch size, waiting queue and KV utilisation over time", common.s);
    plot__printf(c->gp,
                 "set key top left box opaque font ',10'\nset xlabel 'simulated time (s)'\n"
                 "set ylabel '%s (sequences, requests)'\nset y2label '%s (%%)'\n"
                 "set ytics nomirror\nset y2tics\nset yrange [0:*]\nset y2range [0:*]\n"
                 "set mxtics\n",
                 n_rep > 1 ? "batch and queue, sum over replicas" : "batch size and queue",
                 n_rep > 1 ? "KV utilisation, mean over replicas" : "KV utilisation");
    plot__printf(c->gp,
                 "plot $t using 1:2 with lines lw 2 lc rgb '%s' title 'batch size (sequences)', "
                 "\\\n  $t using 1:3 with lines lw 2 lc rgb '%s' title 'waiting (requests)', \\\n"
                 "  $t using 1:4 axes x1y2 with lines lw 2 dt 2 lc rgb '%s' title "
                 "'KV utilisation (%%, right axis)'\n",
                 plot__colour(0), plot__colour(3), plot__colour(2));
    json_decref(cfg);
    rc = common.oom ? SIM_ENOMEM : SIM_OK;
    plot__buf_fini(&common);
    return rc;
}

/* ---- roofline ---- */

int plot__roofline(plot_ctx *c) {
    sqlite3_stmt *st = NULL;
    plot_buf common, pre, dec;
    json_t *cfg = NULL;
    sim_gpu gpu;
    sim_model model;
    sim_err err;
    int64_t run, n = 0, every, i = 0, n_pre = 0, n_dec = 0;
    double peak, bw, balance, xlo = INFINITY, xhi = 0, ylo = INFINITY;
    const char *gpu_name, *dtype = NULL;
    int rc;

    memset(&common, 0, sizeof common);
    memset(&pre, 0, sizeof pre);
    memset(&dec, 0, sizeof dec);
    if (!store_has_table(c->db, "steps")) {
        sim_err_set(c->err, c->db_path, 0, 0,
                    "roofline: expected table steps, got none (kvfleet run --db FILE writes "
                    "it)");
        return SIM_EINVAL;
    }
    if ((rc = pick_run(c,
                       "SELECT 1 FROM steps s WHERE s.run_id = r.run_id AND s.flops > 0 AND "
                       "s.bytes > 0 AND s.dur_s > 0",
                       "roofline",
                       "steps rows with FLOPs and bytes (kvfleet run --db FILE writes them; not "
                       "with --steps-sample 0)",
                       &run)) != SIM_OK)
        return rc;
    cfg = plot__run_config(c, run);
    gpu_name = json_string_value(json_object_get(cfg, "gpu"));
    if (gpu_name == NULL) {
        sim_err_set(c->err, c->db_path, 0, 0,
                    "roofline: run %lld: runs.config: expected a 'gpu' key, got none",
                    (long long)run);
        rc = SIM_EINVAL;
        goto out;
    }
    sim_err_clear(&err);
    if ((rc = sim_gpu_load(gpu_name, rt_datadir(), &gpu, &err)) != SIM_OK) {
        *c->err = err;
        goto out;
    }
    /* the weights' dtype picks the GEMM peak, as the perf model does */
    dtype = json_string_value(json_object_get(cfg, "dtype"));
    if (dtype == NULL || dtype[0] == '\0') {
        const char *m = json_string_value(json_object_get(cfg, "model"));
        dtype = "bf16";
        if (m != NULL && sim_model_load(m, rt_datadir(), &model, &err) == SIM_OK)
            dtype = model.w_dtype == SIM_DT_FP8 ? "fp8" : "bf16";
        else
            fprintf(stderr,
                    "kvfleet plot: warning: model '%s' not found; the roofline assumes "
                    "bf16 weights\n",
                    m ? m : "?");
    }
    /* the perf model runs every dtype but fp8 at the bf16 peak: so does the
     * label (a stored dtype is a string from the file, never written out) */
    dtype = strcmp(dtype, "fp8") == 0 ? "fp8" : "bf16";
    peak = strcmp(dtype, "fp8") == 0 && gpu.flops_fp8 > 0 ? gpu.flops_fp8 : gpu.flops_bf16;
    bw = gpu.hbm_bw;
    balance = peak / bw;

    if (sqlite3_prepare_v2(c->db,
                           "SELECT COUNT(*) FROM steps WHERE run_id = ? AND flops > 0 AND "
                           "bytes > 0 AND dur_s > 0",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = plot__db_fail(c, "steps");
        goto out;
    }
    sqlite3_bind_int64(st, 1, run);
    if (sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    every = (n + PLOT_MAX_POINTS - 1) / PLOT_MAX_POINTS;
    if (every < 1)
        every = 1;
    if (sqlite3_prepare_v2(c->db,
                           "SELECT flops / bytes, flops / dur_s, n_prefill FROM steps WHERE "
                           "run_id = ? AND flops > 0 AND bytes > 0 AND dur_s > 0 ORDER BY "
                           "replica, step",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = plot__db_fail(c, "steps");
        goto out;
    }
    sqlite3_bind_int64(st, 1, run);
    while (sqlite3_step(st) == SQLITE_ROW) {
        double x = sqlite3_column_double(st, 0), y = sqlite3_column_double(st, 1);
        if (i++ % every != 0)
            continue;
        if (sqlite3_column_int(st, 2) > 0) {
            plot__printf(&pre, "%.6g %.6g\n", x, y);
            n_pre++;
        } else {
            plot__printf(&dec, "%.6g %.6g\n", x, y);
            n_dec++;
        }
        xlo = x < xlo ? x : xlo;
        xhi = x > xhi ? x : xhi;
        ylo = y < ylo ? y : ylo;
    }
    sqlite3_finalize(st);
    if (pre.oom || dec.oom) {
        rc = SIM_ENOMEM;
        goto out;
    }
    xlo = fmin(xlo, balance) / 3;
    xhi = fmax(xhi, balance) * 3;
    ylo = fmin(ylo, bw * xlo) / 3;

    if (n_pre)
        plot__printf(c->gp, "$pre << EOD\n%sEOD\n", pre.s);
    if (n_dec)
        plot__printf(c->gp, "$dec << EOD\n%sEOD\n", dec.s);
    run_line(c, run, cfg, &common);
    plot__printf(&common, "; %s roofline: %.4g TFLOP/s, %.4g TB/s", dtype, peak / 1e12, bw / 1e12);
    if (every > 1)
        plot__printf(&common, "; one step in %lld of %lld", (long long)every, (long long)n);
    plot__title(c, "Steps on the roofline", common.s);
    plot__printf(c->gp,
                 "set logscale xy\n"
                 "set xrange [%.6g:%.6g]\nset yrange [%.6g:%.6g]\n"
                 "set xlabel 'arithmetic intensity (FLOP/byte)'\n"
                 "set ylabel 'achieved FLOP/s per GPU'\nset key bottom right box opaque "
                 "font ',10'\n",
                 xlo, xhi, ylo, peak * 3);
    plot__printf(c->gp, "set format x '%%g'\nset format y '%%.0e'\n");
    plot__printf(c->gp,
                 "set arrow from %.9g, graph 0 to %.9g, %.9g nohead dt 3 lw 1.5 lc rgb '#555555'\n"
                 "set label 'balance point %.0f FLOP/byte' at %.9g, %.9g right offset -0.5, 1 "
                 "font ',10'\n",
                 balance, balance, peak, balance, balance, peak);
    plot__printf(c->gp,
                 "roof(x) = x * %.9g < %.9g ? x * %.9g : %.9g\nset samples 400\n"
                 "plot roof(x) with lines lw 2.5 lc rgb '#333333' title "
                 "'roofline (HBM slope, %s compute ceiling)'",
                 bw, peak, bw, peak, dtype);
    if (n_pre)
        plot__printf(c->gp,
                     ", \\\n  $pre using 1:2 with points pt 7 ps 0.5 lc rgb '%s' title "
                     "'steps carrying prefill (%lld)'",
                     plot__colour(1), (long long)n_pre);
    if (n_dec)
        plot__printf(c->gp,
                     ", \\\n  $dec using 1:2 with points pt 7 ps 0.5 lc rgb '%s' title "
                     "'pure-decode steps (%lld)'",
                     plot__colour(0), (long long)n_dec);
    plot__printf(c->gp, "\n");
    rc = common.oom ? SIM_ENOMEM : SIM_OK;
out:
    json_decref(cfg);
    plot__buf_fini(&common);
    plot__buf_fini(&pre);
    plot__buf_fini(&dec);
    return rc;
}

/* ---- validation ---- */

/* Writes a y = x line and the +-10 % band, as three plot elements. */
static void diagonal(plot_ctx *c) {
    plot__printf(c->gp, "x with lines lw 1.5 lc rgb '#333333' title 'y = x', \\\n"
                        "  1.1 * x with lines dt 2 lc rgb '#888888' title '+-10 %%', \\\n"
                        "  0.9 * x with lines dt 2 lc rgb '#888888' notitle");
}

int plot__validation(plot_ctx *c) {
    static const char *const kinds[3] = {"prefill", "decode", "mixed"};
    static const char *const kind_sql[3] = {"n_decode = 0", "n_prefill = 0",
                                            "n_prefill > 0 AND n_decode > 0"};
    sqlite3_stmt *st = NULL;
    plot_buf common;
    json_t *cfg = NULL;
    int64_t run, sim_run = 0, n_kind[3] = {0, 0, 0}, n_req[2] = {0, 0};
    int rc, k;
    char sql[512], backend[64] = "";

    memset(&common, 0, sizeof common);
    if (!store_has_table(c->db, "steps")) {
        sim_err_set(c->err, c->db_path, 0, 0,
                    "validation: expected table steps, got none (kvfleet validate --backend "
                    "cpu|cuda --db FILE writes it)");
        return SIM_EINVAL;
    }
    if ((rc = pick_run(c,
                       "SELECT 1 FROM steps s WHERE s.run_id = r.run_id AND r.kind = 'validate' "
                       "AND s.meas_s > 0 AND s.pred_s > 0",
                       "validation",
                       "kind 'validate' and measured steps (kvfleet validate --backend cpu|cuda "
                       "--db FILE makes one)",
                       &run)) != SIM_OK)
        return rc;
    /* its simulated twin: the next finished 'run' of the same command */
    if (sqlite3_prepare_v2(c->db,
                           "SELECT MIN(s.run_id) FROM runs s, runs v WHERE v.run_id = ? AND "
                           "s.run_id > v.run_id AND s.kind = 'run' AND s.status = 'done' AND "
                           "s.command = v.command",
                           -1, &st, NULL) != SQLITE_OK)
        return plot__db_fail(c, "runs");
    sqlite3_bind_int64(st, 1, run);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        sim_run = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);

    /* per-step blocks, in ms */
    for (k = 0; k < 3; k++) {
        snprintf(sql, sizeof sql,
                 "SELECT meas_s * 1e3, pred_s * 1e3 FROM steps WHERE run_id = ? AND meas_s > 0 "
                 "AND pred_s > 0 AND %s ORDER BY replica, step",
                 kind_sql[k]);
        if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
            return plot__db_fail(c, "steps");
        sqlite3_bind_int64(st, 1, run);
        plot__printf(c->gp, "$%s << EOD\n", kinds[k]);
        while (sqlite3_step(st) == SQLITE_ROW) {
            plot__printf(c->gp, "%.9g %.9g\n", sqlite3_column_double(st, 0),
                         sqlite3_column_double(st, 1));
            n_kind[k]++;
        }
        plot__printf(c->gp, "EOD\n");
        sqlite3_finalize(st);
    }
    /* per-request blocks (simulated against measured, joined by request id), in ms */
    if (sim_run) {
        static const char *const cols[2] = {"ttft_s", "tpot_s"};
        for (k = 0; k < 2; k++) {
            snprintf(sql, sizeof sql,
                     "SELECT m.%s * 1e3, s.%s * 1e3 FROM requests m JOIN requests s ON s.id = "
                     "m.id AND s.run_id = ?2 WHERE m.run_id = ?1 AND m.%s > 0 AND s.%s > 0 "
                     "ORDER BY m.id",
                     cols[k], cols[k], cols[k], cols[k]);
            if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
                return plot__db_fail(c, "requests");
            sqlite3_bind_int64(st, 1, run);
            sqlite3_bind_int64(st, 2, sim_run);
            plot__printf(c->gp, "$%s << EOD\n", cols[k]);
            while (sqlite3_step(st) == SQLITE_ROW) {
                plot__printf(c->gp, "%.9g %.9g\n", sqlite3_column_double(st, 0),
                             sqlite3_column_double(st, 1));
                n_req[k]++;
            }
            plot__printf(c->gp, "EOD\n");
            sqlite3_finalize(st);
        }
    }

    cfg = plot__run_config(c, run);
    if (cfg != NULL && json_is_string(json_object_get(cfg, "backend")))
        snprintf(backend, sizeof backend, "%s", json_string_value(json_object_get(cfg, "backend")));
    plot__printf(&common, "run %lld (measured, %s) against ", (long long)run,
                 backend[0] ? backend : "?");
    if (sim_run)
        plot__printf(&common, "run %lld (simulated); ", (long long)sim_run);
    else
        plot__printf(&common, "its per-step predictions; ");
    if (cfg != NULL) {
        json_object_del(cfg, "backend");
        plot__config_common(&cfg, 1, &common);
    }
    if (strcmp(backend, "cpu") == 0)
        plot__printf(&common, "; cpu backend: a plumbing check, not a fidelity figure");

    plot__printf(c->gp, "set logscale xy\nset key top left box opaque font ',10'\n"
                        "set size ratio -1\n");
    if (sim_run && (n_req[0] || n_req[1]))
        plot__printf(c->gp, "set multiplot layout 1,2 title ");
    else
        plot__printf(c->gp, "set title ");
    plot__title_expr(c, "Predicted against measured", common.s);
    plot__printf(c->gp, "\nset xlabel 'measured step time (ms)'\n"
                        "set ylabel 'predicted step time (ms)'\nplot ");
    diagonal(c);
    for (k = 0; k < 3; k++)
        if (n_kind[k])
            plot__printf(c->gp,
                         ", \\\n  $%s using 1:2 with points pt 7 ps 0.6 lc rgb '%s' title '%s "
                         "steps (%lld)'",
                         kinds[k], plot__colour((size_t)k), kinds[k], (long long)n_kind[k]);
    plot__printf(c->gp, "\n");
    if (sim_run && (n_req[0] || n_req[1])) {
        plot__printf(c->gp, "set xlabel 'measured, per request (ms)'\n"
                            "set ylabel 'simulated, per request (ms)'\nplot ");
        diagonal(c);
        if (n_req[0])
            plot__printf(c->gp,
                         ", \\\n  $ttft_s using 1:2 with points pt 7 ps 0.6 lc rgb '%s' title "
                         "'TTFT (%lld requests)'",
                         plot__colour(3), (long long)n_req[0]);
        if (n_req[1])
            plot__printf(c->gp,
                         ", \\\n  $tpot_s using 1:2 with points pt 5 ps 0.6 lc rgb '%s' title "
                         "'TPOT (%lld requests)'",
                         plot__colour(4), (long long)n_req[1]);
        plot__printf(c->gp, "\nunset multiplot\n");
    }
    json_decref(cfg);
    rc = common.oom ? SIM_ENOMEM : SIM_OK;
    plot__buf_fini(&common);
    return rc;
}
