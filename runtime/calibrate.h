/* calibrate.h: `kvfleet calibrate`, fitting the perf model to profiles.
 *
 * Fits each operator's efficiency curves and overhead (perf.h) by GSL
 * nonlinear least squares on measured per-operator latencies of one GPU
 * (the CSV files in data/profiles/GPU/, formats in docs/calibration.md), holding out
 * every K-th row of each operator and reporting the error on those rows.
 * The GEMM operators get a second set, fitted on the fp8 rows at the fp8
 * peak, for fp8 weights (perf_calib.op_fp8). Operators without a
 * measurement keep the datasheet roofline. */
#ifndef RT_CALIBRATE_H
#define RT_CALIBRATE_H

#include <stdio.h>

#include "err.h"
#include "hw.h"
#include "model.h"
#include "perf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Most models one fit may take its shapes from. */
#define CALIB_MAX_MODELS 32

typedef struct calib_opts {
    const sim_gpu *gpu;       /* GPU the profiles were measured on (borrowed) */
    const sim_model *models;  /* models whose shapes select the rows (borrowed), TP 1/2/4/8 */
    int n_models;             /* 1..CALIB_MAX_MODELS */
    const char *profiles_dir; /* folder holding gemm.csv, ... (borrowed) */
    int holdout_every;        /* K >= 2: rows K-1, 2K-1, ... of each operator are held out */
    FILE *residuals;          /* NULL, or where each fitted row's prediction goes as CSV
                               * (calib_residuals_header first; borrowed) */
    const perf_calib *check;  /* NULL: fit. Else score this calibration on every row, fit
                               * nothing (holdout_every unused; borrowed) */
} calib_opts;

/* The header line of the residuals CSV (docs/calibration.md). */
void calib_residuals_header(FILE *f);

/* The fit of one operator (or of the step overhead), errors in percent. */
typedef struct calib_op_report {
    int fitted;              /* 1: fitted; 0: datasheet default kept (source says why) */
    char source[160];        /* the rows' file and filter, or why nothing was fitted */
    int n_train;             /* rows fitted on */
    int n_test;              /* held-out rows */
    int n_knots;             /* knots per curve */
    int n_shape_knots;       /* knots per shape factor curve (0: one shape, none fitted) */
    int n_aspect_knots;      /* knots per aspect factor curve (0: none; weight GEMMs only) */
    int n_work_knots;        /* knots per work factor curve (0: none; the attentions only) */
    double median_ape;       /* held-out median absolute percentage error, % (NAN: no rows) */
    double p95_ape;          /* held-out 95th percentile absolute percentage error, % */
    double train_median_ape; /* median APE on the training rows, % */
} calib_op_report;

typedef struct calib_report {
    calib_op_report op[PERF_N_OPS];       /* per operator */
    calib_op_report step;                 /* engine overhead per step (step_base_s, step_per_seq_s,
                                           * step_tp_s) */
    calib_op_report fp8[PERF_N_OPS];      /* GEMMs only: the fp8 set (op_fp8), fitted on fp8 rows */
    calib_op_report fp8_bf16[PERF_N_OPS]; /* GEMMs only: the bf16 set at the fp8 peak on the
                                           * same held-out fp8 rows (what runs without op_fp8) */
} calib_report;

/* Fits a calibration for o->gpu from the profiles in o->profiles_dir. */
int calib_fit(const calib_opts *o, perf_calib *out, calib_report *rep, sim_err *err);

/* `kvfleet calibrate --gpu NAME [--model A[,B...]] [--profiles DIR] [-o FILE]
 * [--holdout-every K] [--json]`; argv[0] is "calibrate". Returns the exit
 * code: 0 ok, 1 bad input, 2 usage, 3 runtime failure. */
int calib_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif
#endif /* RT_CALIBRATE_H */
