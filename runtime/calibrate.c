/* calibrate.c: `kvfleet calibrate`, the perf model's fit to measured profiles.
 *
 * Design. Every measured row becomes (flops, bytes, rows, fixed_s, meas_s):
 * the work perf.c charges for one call of the operator at the row's shape
 * (perf_op_cost, perf_gemm_cost), the count its curves are indexed by, the
 * modelled time of other operators the measurement includes (the KV write
 * inside prefill attention) and the measured time. For each operator the
 * fit chooses knots in x = log2(rows) (a 0.5-spaced grid, doubled until at
 * most PERF_MAX_KNOTS knots hold data) and minimises
 *
 *     sum_i soft_l1(log(pred_i / meas_i)) + lambda sum_j (z_j+1 - z_j)^2
 *
 * over the knot values with gsl_multifit_nlinear (Levenberg-Marquardt,
 * finite-difference Jacobian), where pred_i = perf_roofline_s(...) +
 * fixed_i, each efficiency is eff = 1.5 / (1 + exp(-z)) so that it stays in
 * (0, 1.5), and the overhead is exp(w) >= 0. Log ratios weigh relative
 * errors alike at 3 us and at 30 ms; the soft-L1 loss keeps a few rows far
 * off from dragging a curve. The small smoothness term ties
 * knots whose curve does not bind anywhere (eff_c where every row is
 * memory-bound) to their neighbours instead of leaving them free. Every
 * efficiency starts at 1, so a term is only lowered where the data make it
 * bind. Values are rounded (efficiencies to 4 significant digits,
 * overheads to 3) before the held-out rows (every K-th row of the
 * operator, in file order) are scored, so the reported error is that of
 * the file written.
 *
 * Sources (data/profiles/GPU/, subsets made by subset.py there):
 *   gemm.csv: qkv_proj, o_proj, mlp_up, mlp_down, lm_head (bf16 rows whose
 *     (n, k) brackets the operator's shape in one of the models at TP
 *     1/2/4/8; the fp8 rows of the same shapes are fitted the same way, at
 *     the fp8 peak, into each operator's fp8 set, op_fp8);
 *   context_attention.csv: attn_prefill (KV write included: kv_save's
 *     modelled time is the fixed part); generation_attention.csv:
 *     attn_decode; vidur_layer_ops.csv: mlp_act, norm (both RMSNorms),
 *     rope, embed; allreduce.csv: allreduce (rows = the message in KiB);
 *     cpu_overheads_a100.csv: step_base_s, step_per_seq_s (linear fit).
 * kv_save, sample and any operator whose file is absent keep the datasheet
 * roofline.
 *
 * Sizes: a few thousand rows per operator, 15 to 30 knots; the whole fit
 * takes a few seconds (8 s on a busy 2-core machine). Non-goals: per-TP or per-shape curves (perf.h
 * has one curve pair per operator and weight dtype), fp8 attention (no fp8-KV rows are fitted). */
#include "config.h"
#include "calibrate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_multifit.h>
#include <gsl/gsl_multifit_nlinear.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <jansson.h>

#include "cli.h"
#include "datadir.h"
#include "fileio.h"
#include "json_util.h"
#include "mem.h"
#include "num.h"

/* ---- CSV reading ---- */

#define CSV_MAX_COLS 32
#define CSV_MAX_LINE 4096

typedef struct csv_file {
    FILE *f;
    char path[1024];
    long line;                /* 1-based number of the current line */
    int n_cols;               /* header columns */
    char hdr[CSV_MAX_LINE];   /* header line, split in place */
    char buf[CSV_MAX_LINE];   /* current row, split in place */
    char *head[CSV_MAX_COLS]; /* column names */
    char *fld[CSV_MAX_COLS];  /* fields of the current row */
} csv_file;

static int split(char *s, char **out, int max) {
    int n = 0;
    char *p = s;
    s[strcspn(s, "\r\n")] = '\0';
    for (;;) {
        char *c = strchr(p, ',');
        if (n == max)
            return -1;
        out[n++] = p;
        if (c == NULL)
            break;
        *c = '\0';
        p = c + 1;
    }
    return n;
}

/* Reads line c->line of the file into buf (NUL-terminated, its newline
 * kept): 1, 0 at the end of the file with nothing read, SIM_EPARSE for a
 * NUL byte or a line of CSV_MAX_LINE bytes or more, SIM_EIO for a read
 * error, with *err set. A byte at a time, so that a NUL byte is seen. */
static int csv_getline(csv_file *c, char *buf, sim_err *err) {
    size_t n = 0;
    int ch;
    while ((ch = getc(c->f)) != EOF) {
        if (ch == '\0') {
            sim_err_set(err, c->path, c->line, (int)n + 1, "expected a text line, got a NUL byte");
            return SIM_EPARSE;
        }
        if (n + 1 >= CSV_MAX_LINE) {
            sim_err_set(err, c->path, c->line, 0, "expected a line shorter than %d bytes",
                        CSV_MAX_LINE);
            return SIM_EPARSE;
        }
        buf[n++] = (char)ch;
        if (ch == '\n')
            break;
    }
    buf[n] = '\0';
    if (ch == EOF && ferror(c->f)) {
        sim_err_set(err, c->path, c->line, 0, "cannot read: %s", strerror(errno));
        return SIM_EIO;
    }
    return n > 0;
}

/* Opens DIR/NAME and reads its header. SIM_ENOENT when the file does not
 * exist (the operator is then not fitted), SIM_EIO or SIM_EPARSE (a folder
 * of that name too). */
static int csv_open(csv_file *c, const char *dir, const char *name, sim_err *err) {
    struct stat st;
    int rc;
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s/%s", dir, name);
    c->f = fopen(c->path, "r");
    if (c->f == NULL) {
        int e = errno;
        sim_err_set(err, c->path, 0, 0, "cannot open: %s", strerror(e));
        return e == ENOENT ? SIM_ENOENT : SIM_EIO;
    }
    if (fstat(fileno(c->f), &st) == 0 && S_ISDIR(st.st_mode)) {
        sim_err_set(err, c->path, 0, 0, "expected a CSV file, got a folder");
        fclose(c->f);
        c->f = NULL;
        return SIM_EPARSE;
    }
    c->line = 1;
    rc = csv_getline(c, c->hdr, err);
    if (rc == 0 || (rc == 1 && (c->n_cols = split(c->hdr, c->head, CSV_MAX_COLS)) < 1)) {
        sim_err_set(err, c->path, 1, 0, "header: expected column names, got nothing");
        rc = SIM_EPARSE;
    }
    if (rc != 1) {
        fclose(c->f);
        c->f = NULL;
        return rc;
    }
    return SIM_OK;
}

static void csv_close(csv_file *c) {
    if (c->f != NULL)
        fclose(c->f);
    c->f = NULL;
}

/* Index of column name, or -1 with *err filled. */
static int csv_col(csv_file *c, const char *name, sim_err *err) {
    int i;
    for (i = 0; i < c->n_cols; i++)
        if (strcmp(c->head[i], name) == 0)
            return i;
    sim_err_set(err, c->path, 1, 0, "header: expected a column '%s'", name);
    return -1;
}

/* Opens dir/name and finds its columns cols[0, n) into idx; on a missing
 * column the file is closed and SIM_EPARSE returned with *err filled. */
static int csv_open_cols(csv_file *c, const char *dir, const char *name, const char *const *cols,
                         int n, int *idx, sim_err *err) {
    int i, rc;
    if ((rc = csv_open(c, dir, name, err)) != SIM_OK)
        return rc;
    for (i = 0; i < n; i++)
        if ((idx[i] = csv_col(c, cols[i], err)) < 0) {
            csv_close(c);
            return SIM_EPARSE;
        }
    return SIM_OK;
}

/* Reads the next row: 1, 0 at the end, or SIM_EPARSE. */
static int csv_next(csv_file *c, sim_err *err) {
    int n, rc;
    do {
        c->line++;
        if ((rc = csv_getline(c, c->buf, err)) != 1)
            return rc;
    } while (c->buf[0] == '\n' || c->buf[0] == '\r');
    n = split(c->buf, c->fld, CSV_MAX_COLS);
    if (n != c->n_cols) {
        sim_err_set(err, c->path, c->line, 0, "expected %d fields, got %d", c->n_cols, n);
        return SIM_EPARSE;
    }
    return 1;
}

/* Parses field col as a finite number > 0 (min_zero: >= 0). */
static int csv_num(csv_file *c, int col, int min_zero, double *out, sim_err *err) {
    char *end;
    double v;
    errno = 0;
    v = sim_strtod(c->fld[col], &end);
    if (end == c->fld[col] || *end != '\0' || errno != 0 || !isfinite(v) ||
        (min_zero ? v < 0 : v <= 0)) {
        sim_err_set(err, c->path, c->line, col + 1, "%s: expected a number %s, got '%s'",
                    c->head[col], min_zero ? ">= 0" : "> 0", c->fld[col]);
        return SIM_EPARSE;
    }
    *out = v;
    return SIM_OK;
}

/* The largest size a profile's integer column may hold: a GEMM's M, N or
 * K, a batch, a length, a head count or dimension, a TP degree, a GPU
 * count (real shapes are far smaller; the fits cast them to int). */
#define CSV_MAX_DIM 2147483647LL
/* The largest allreduce.csv message_size, in elements: 2^53, the largest
 * integer a double holds exactly (8 PiB of bf16). */
#define CSV_MAX_ELEMS 9007199254740992LL

/* Parses field col as a whole decimal integer in 1..hi (no exponent, no
 * fraction: a shape is a count). */
static int csv_int(csv_file *c, int col, long long hi, double *out, sim_err *err) {
    const char *s = c->fld[col];
    long long v;
    if (!rt_int_form(s) || rt_parse_int(s, 1, hi, &v) != 0) {
        sim_err_set(err, c->path, c->line, col + 1, "%s: expected an integer in 1..%lld, got '%s'",
                    c->head[col], hi, s);
        return SIM_EPARSE;
    }
    *out = (double)v;
    return SIM_OK;
}

/* ---- rows ---- */

typedef struct fit_row {
    double flops;   /* FLOPs of one call */
    double bytes;   /* HBM (all-reduce: link) bytes of one call */
    double rows;    /* the count the curves are indexed by, > 0 */
    double fixed_s; /* modelled time of other work inside the measurement, s */
    double meas_s;  /* measured time, s */
    double shape;   /* the operator's shape index (perf_op_shape) */
    double work;    /* the call's work index (perf_op_work); NAN: none */
    double n, k;    /* a weight GEMM's N and K (its aspect index, the residuals file); NAN
                     * for other operators */
} fit_row;

typedef struct rowvec {
    fit_row *v;
    int n, cap;
} rowvec;

static int rowvec_push(rowvec *rv, const fit_row *r) {
    if (rv->n == rv->cap) {
        int cap = rv->cap ? 2 * rv->cap : 256;
        fit_row *v = sim_realloc(rv->v, (size_t)cap * sizeof *v);
        if (v == NULL)
            return SIM_ENOMEM;
        rv->v = v;
        rv->cap = cap;
    }
    rv->v[rv->n++] = *r;
    return SIM_OK;
}

static void rowvec_free(rowvec *rv) {
    SIM_FREE(rv->v);
    rv->n = rv->cap = 0;
}

/* ---- the fit of one operator ---- */

/* The factor pairs (one on eff_c, one on eff_m) a fit may have, each by an
 * index of the rows: the shape index (every operator), a weight GEMM's
 * aspect and an attention's work index. */
enum { FX_SHAPE, FX_ASPECT, FX_WORK, FX_N };

/* One factor pair in a fit: its knots and each row's interval. */
typedef struct fit_fx {
    int n;                                       /* knots (0: not fitted) */
    const int *lo;                               /* per row: left knot of its interval */
    const double *f;                             /* per row: position in the interval, 0..1 */
    double c[PERF_MAX_KNOTS], m[PERF_MAX_KNOTS]; /* the factors at the knots (scratch) */
} fit_fx;

/* A fit problem: training rows, their knot intervals and the constants.
 * Efficiencies are curves in log2(rows) (nk knots) times the factor pairs
 * (FX_*; n = 0 where the rows have one value of the index or none) and,
 * for rows not a multiple of PERF_ALIGN_ROWS, the unaligned factor. */
typedef struct fit_prob {
    const fit_row *r;
    int n;
    const int *lo;   /* per row: left knot of its interval */
    const double *f; /* per row: position in the interval, 0..1 */
    int nk;          /* knots in rows */
    int nu;          /* knots of the unaligned factor (nk, or 0: not fitted) */
    fit_fx fx[FX_N];
    int has_c;       /* eff_c is fitted (some row may be compute-bound, CALIB_C_BINDS) */
    double peak, bw; /* FLOP/s and bytes/s the efficiencies scale */
    double sqrt_lam; /* smoothness weight */
    double yc[PERF_MAX_KNOTS], ym[PERF_MAX_KNOTS], un[PERF_MAX_KNOTS];
} fit_prob;

static double sig15(double z) {
    return 1.5 / (1.0 + exp(-z));
}

static double logit15(double y) {
    double p = y / 1.5;
    if (p < 1e-6)
        p = 1e-6;
    if (p > 1.0 - 1e-6)
        p = 1.0 - 1e-6;
    return log(p / (1.0 - p));
}

/* The soft-L1 loss on a log ratio r: r near 0, sqrt(2 |r| c) far out, so
 * that a few rows 30% off (kernel-selection jumps, 1 us timer steps in
 * Vidur's profiles) do not pull a curve away from the bulk. */
#define CALIB_LOSS_C 0.05

static double robust(double r) {
    double u = r / CALIB_LOSS_C;
    return (r < 0 ? -1.0 : 1.0) * CALIB_LOSS_C * sqrt(2.0 * (sqrt(1.0 + u * u) - 1.0));
}

static double interp(const double *y, int nk, int lo, double f) {
    int hi = lo + 1 < nk ? lo + 1 : lo;
    return y[lo] + f * (y[hi] - y[lo]);
}

/* Parameter layout: [z_c (has_c)] [z_m] [log unaligned factor (nu)], then
 * per factor pair [log factor on eff_c (has_c)] [log factor on eff_m], then
 * [log overhead]; offsets of each part. */
typedef struct fit_layout {
    int m, un, fc[FX_N], fm[FX_N], ov, p;
} fit_layout;

static fit_layout layout_of(const fit_prob *q) {
    fit_layout l;
    int x, off;
    l.m = q->has_c ? q->nk : 0;
    l.un = l.m + q->nk;
    off = l.un + q->nu;
    for (x = 0; x < FX_N; x++) {
        l.fc[x] = off;
        off += q->has_c ? q->fx[x].n : 0;
        l.fm[x] = off;
        off += q->fx[x].n;
    }
    l.ov = off;
    l.p = off + 1;
    return l;
}

/* Smoothness terms of n_knots parameters from off: sqrt_lam x the
 * differences of neighbours, into out from *k. */
static void smooth_terms(const gsl_vector *p, int off, int n_knots, double sqrt_lam,
                         gsl_vector *out, int *k) {
    int j;
    for (j = 0; j + 1 < n_knots; j++)
        gsl_vector_set(out, (size_t)(*k)++,
                       sqrt_lam * (gsl_vector_get(p, (size_t)(off + j + 1)) -
                                   gsl_vector_get(p, (size_t)(off + j))));
}

/* The factor curves have a scale the rows leave free (it
 * trades with the efficiencies): after its smoothness terms, each gets a
 * term pinning its mean log factor at 0. */
static void factor_terms(const gsl_vector *p, int off, int n_knots, double sqrt_lam, double pin,
                         gsl_vector *out, int *k) {
    double mean = 0;
    int j;
    smooth_terms(p, off, n_knots, sqrt_lam, out, k);
    for (j = 0; j < n_knots; j++)
        mean += gsl_vector_get(p, (size_t)(off + j)) / n_knots;
    gsl_vector_set(out, (size_t)(*k)++, pin * mean);
}

static double factor_clamp(double v) {
    return v < 1e-3 ? 1e-3 : v > 4.0 ? 4.0 : v;
}

/* Residuals of parameters p: log(pred / meas) per row, then the
 * smoothness terms, then for each factor curve a term pinning its mean log
 * factor at 0, which the rows alone leave free. */
static int fit_resid(const gsl_vector *p, void *data, gsl_vector *out) {
    fit_prob *q = data;
    fit_layout l = layout_of(q);
    int j, i, x, k = q->n;
    double ov = exp(gsl_vector_get(p, (size_t)l.ov));
    for (j = 0; j < q->nk; j++) {
        q->yc[j] = q->has_c ? sig15(gsl_vector_get(p, (size_t)j)) : 1.0;
        q->ym[j] = sig15(gsl_vector_get(p, (size_t)(l.m + j)));
    }
    for (j = 0; j < q->nu; j++)
        q->un[j] = exp(gsl_vector_get(p, (size_t)(l.un + j)));
    for (x = 0; x < FX_N; x++) {
        fit_fx *fx = &q->fx[x];
        for (j = 0; j < fx->n; j++) {
            fx->c[j] = q->has_c ? factor_clamp(exp(gsl_vector_get(p, (size_t)(l.fc[x] + j)))) : 1.0;
            fx->m[j] = factor_clamp(exp(gsl_vector_get(p, (size_t)(l.fm[x] + j))));
        }
    }
    for (i = 0; i < q->n; i++) {
        const fit_row *r = &q->r[i];
        double tc = 0, tm = 0, fc = 1.0, fm = 1.0;
        for (x = 0; x < FX_N; x++) {
            const fit_fx *fx = &q->fx[x];
            if (fx->n > 0) {
                fc *= interp(fx->c, fx->n, fx->lo[i], fx->f[i]);
                fm *= interp(fx->m, fx->n, fx->lo[i], fx->f[i]);
            }
        }
        if (q->nu > 0 && PERF_ROWS_UNALIGNED(r->rows)) {
            double u = interp(q->un, q->nu, q->lo[i], q->f[i]);
            fc *= u;
            fm *= u;
        }
        if (r->flops > 0)
            tc = r->flops / (q->peak * interp(q->yc, q->nk, q->lo[i], q->f[i]) * fc);
        if (r->bytes > 0)
            tm = r->bytes / (q->bw * interp(q->ym, q->nk, q->lo[i], q->f[i]) * fm);
        gsl_vector_set(out, (size_t)i,
                       robust(log(((tc > tm ? tc : tm) + ov + r->fixed_s) / r->meas_s)));
    }
    if (q->has_c)
        smooth_terms(p, 0, q->nk, q->sqrt_lam, out, &k);
    smooth_terms(p, l.m, q->nk, q->sqrt_lam, out, &k);
    smooth_terms(p, l.un, q->nu, q->sqrt_lam, out, &k);
    for (x = 0; x < FX_N; x++) {
        if (q->fx[x].n == 0)
            continue;
        if (q->has_c)
            factor_terms(p, l.fc[x], q->fx[x].n, q->sqrt_lam, sqrt((double)q->n), out, &k);
        factor_terms(p, l.fm[x], q->fx[x].n, q->sqrt_lam, sqrt((double)q->n), out, &k);
    }
    return GSL_SUCCESS;
}

/* Chooses knots among the values x[0..n): grid points spaced step0
 * (doubled while more than max would hold data) that have a value within
 * half a spacing. Returns the number of knots. */
static int choose_knots(const double *x, int n, int max, double step0, double *kx) {
    double xmin = INFINITY, xmax = -INFINITY, step;
    int i;
    for (i = 0; i < n; i++) {
        xmin = x[i] < xmin ? x[i] : xmin;
        xmax = x[i] > xmax ? x[i] : xmax;
    }
    for (step = step0;; step *= 2) {
        long g0 = (long)floor(xmin / step + 0.5), g1 = (long)floor(xmax / step + 0.5), g;
        int nk = 0;
        for (g = g0; g <= g1 && nk <= max; g++) {
            for (i = 0; i < n; i++) {
                if (fabs(x[i] - (double)g * step) <= step / 2) {
                    if (nk < max)
                        kx[nk] = (double)g * step;
                    nk++;
                    break;
                }
            }
        }
        if (nk <= max)
            return nk;
    }
}

/* Knot interval of x among kx (what perf_curve_eval does). */
static void locate(const double *kx, int nk, double x, int *lo, double *f) {
    int j;
    if (nk < 2 || x <= kx[0]) {
        *lo = 0;
        *f = 0.0;
        return;
    }
    if (x >= kx[nk - 1]) {
        *lo = nk - 2;
        *f = 1.0;
        return;
    }
    for (j = 0; j + 2 < nk && kx[j + 1] <= x; j++)
        ;
    *lo = j;
    *f = (x - kx[j]) / (kx[j + 1] - kx[j]);
}

/* A row's aspect index (a weight GEMM's log2(N / K)); NAN for others. */
static double row_aspect(const fit_row *r) {
    return isnan(r->n) ? NAN : perf_gemm_aspect(r->n, r->k);
}

/* A row's index of factor pair x (FX_*); NAN where it has none. */
static double fx_index(const fit_row *r, int x) {
    return x == FX_SHAPE ? r->shape : x == FX_ASPECT ? row_aspect(r) : r->work;
}

/* Knots (at most max, grid from step0) of a factor curve over the index values v[0..n),
 * and each value's interval; 0 knots (no curve) when fewer than 2. */
static int factor_knots(const double *v, int n, int max, double step0, double *kx, int *lo,
                        double *f) {
    int i, nk = choose_knots(v, n, max, step0, kx);
    if (nk < 2)
        nk = 0;
    for (i = 0; i < n; i++)
        locate(kx, nk, v[i], &lo[i], &f[i]);
    return nk;
}

static double round_sig(double v, int digits) {
    char buf[40];
    snprintf(buf, sizeof buf, "%.*g", digits, v);
    return strtod(buf, NULL);
}

/* The predicted time of row r with the curves oc (as written: score and
 * the residuals file use it), s. */
static double row_pred(const fit_row *r, const perf_op_calib *oc, double peak, double bw) {
    perf_op_calib at;
    perf_op_at_shape(oc, r->shape, row_aspect(r), &at);
    return perf_roofline_work_s(&at, peak, bw, r->flops, r->bytes, r->rows, r->work) + r->fixed_s;
}

void calib_residuals_header(FILE *f) {
    fprintf(f, "op,set,split,rows,n,k,shape,work,measured_s,predicted_s,error_pct\n");
}

/* Each row of rv with its prediction by oc, a CSV line each: operator,
 * curve set (bf16, fp8), train or test (check for every row when k_every
 * < 0: --check), the curve index, a GEMM's N and K,
 * the shape and work indices (empty where there are none), measured and
 * predicted time and the signed error in % of the measured time. */
static void write_residuals(FILE *f, const char *op, const char *set, const rowvec *rv, int k_every,
                            const perf_op_calib *oc, double peak, double bw) {
    int i;
    for (i = 0; i < rv->n; i++) {
        const fit_row *r = &rv->v[i];
        double pred = row_pred(r, oc, peak, bw);
        int test = k_every >= 2 && i % k_every == k_every - 1;
        fprintf(f, "%s,%s,%s,%.9g,", op, set,
                k_every < 0 ? "check"
                : test      ? "test"
                            : "train",
                r->rows);
        if (!isnan(r->n))
            fprintf(f, "%.0f,%.0f", r->n, r->k);
        else
            fputc(',', f);
        fprintf(f, ",%.9g,", r->shape);
        if (!isnan(r->work))
            fprintf(f, "%.9g", r->work);
        fprintf(f, ",%.9g,%.9g,%.4f\n", r->meas_s, pred, (pred / r->meas_s - 1.0) * 100.0);
    }
}

/* Median and 95th percentile of |pred / meas - 1| x 100 over rows (every
 * K-th from K-1 when test, the others when not). */
static void score(const fit_row *r, int n, int k_every, int test, const perf_op_calib *oc,
                  double peak, double bw, double *med, double *p95, int *count, double *scratch) {
    int i, m = 0;
    for (i = 0; i < n; i++) {
        double pred;
        if (k_every >= 2 && ((i % k_every) == k_every - 1) != test)
            continue;
        if (k_every < 2 && test)
            continue;
        pred = row_pred(&r[i], oc, peak, bw);
        scratch[m++] = fabs(pred / r[i].meas_s - 1.0) * 100.0;
    }
    *count = m;
    if (m == 0) {
        *med = *p95 = NAN;
        return;
    }
    gsl_sort(scratch, 1, (size_t)m);
    *med = gsl_stats_median_from_sorted_data(scratch, 1, (size_t)m);
    *p95 = gsl_stats_quantile_from_sorted_data(scratch, 1, (size_t)m, 0.95);
}

/* Curve c from n fitted parameters at off (knots kx): efficiencies
 * (eff = 1, the logistic sig15, clamped to [1e-4, 1.5]) or factors (exp,
 * clamped to [1e-3, 4]), rounded to 4 significant digits as written. */
static void curve_from(perf_curve *c, const gsl_vector *x, int off, const double *kx, int n,
                       int eff) {
    int j;
    for (j = 0; j < n; j++) {
        double p = gsl_vector_get(x, (size_t)(off + j));
        double v = round_sig(eff ? sig15(p) : exp(p), 4), lo = eff ? 1e-4 : 1e-3;
        double hi = eff ? 1.5 : 4.0;
        c->x[j] = kx[j];
        c->y[j] = v < lo ? lo : v > hi ? hi : v;
    }
    c->n = n;
}

/* The start of a fit: every efficiency at 1, so that the data lower it
 * where a term binds (a knot whose term never binds, eff_m where every row
 * is compute-bound, then stays high and harmless instead of just binding);
 * factors at 1 (log 0); the overhead at ov0. */
static void x_start(gsl_vector *x, fit_layout l, double ov0) {
    int j;
    for (j = 0; j < l.un; j++)
        gsl_vector_set(x, (size_t)j, logit15(1.0));
    for (j = l.un; j < l.ov; j++)
        gsl_vector_set(x, (size_t)j, 0.0);
    gsl_vector_set(x, (size_t)l.ov, log(ov0));
}

/* Runs the Levenberg-Marquardt fit of q from xv and leaves in xv the best
 * point found (a status other than success, the iteration limit or no
 * progress, still leaves it). SIM_OK, SIM_EINVAL (too few rows for the
 * parameters) or SIM_ENOMEM. */
static int lm_solve(fit_prob *q, gsl_vector *xv) {
    fit_layout l = layout_of(q);
    int c = q->has_c ? 2 : 1, info, x;
    size_t nres = (size_t)(q->n + (q->nk - 1) * c + (q->nu > 0 ? q->nu - 1 : 0));
    gsl_multifit_nlinear_fdf fdf;
    gsl_multifit_nlinear_parameters par = gsl_multifit_nlinear_default_parameters();
    gsl_multifit_nlinear_workspace *w;
    for (x = 0; x < FX_N; x++)
        nres += (size_t)(q->fx[x].n * c);
    SIM_ASSERT(xv->size == (size_t)l.p);
    if (nres < (size_t)l.p)
        return SIM_EINVAL; /* fewer residuals than parameters: no fit */
    fdf.f = fit_resid;
    fdf.df = NULL;
    fdf.fvv = NULL;
    fdf.n = nres;
    fdf.p = (size_t)l.p;
    fdf.params = q;
    par.trs = gsl_multifit_nlinear_trs_lm;
    par.scale = gsl_multifit_nlinear_scale_levenberg;
    w = gsl_multifit_nlinear_alloc(gsl_multifit_nlinear_trust, &par, nres, (size_t)l.p);
    if (w == NULL)
        return SIM_ENOMEM;
    gsl_multifit_nlinear_init(xv, &fdf, w);
    (void)gsl_multifit_nlinear_driver(500, 1e-10, 1e-10, 1e-12, NULL, NULL, &info, w);
    gsl_vector_memcpy(xv, gsl_multifit_nlinear_position(w));
    gsl_multifit_nlinear_free(w);
    return SIM_OK;
}

/* eff_c is fitted only where some row's compute time at the peak is at
 * least this fraction of its memory time at full bandwidth: below it the
 * compute term binds only at an efficiency under a tenth of the memory
 * one, the rows cannot tell eff_c apart from any other value, and a fit
 * that lets it move can sink it to the clamp (a slow decode attention
 * kernel's rows did: every prediction 20 to 40 times the measured time).
 * Decode attention's intensity is a few FLOP per byte, well under a
 * tenth of any GPU's balance point; GEMMs and prefill attention reach it. */
#define CALIB_C_BINDS 0.1

/* At most this many knots in the shape index. */
#define CALIB_SHAPE_KNOTS 16

/* Fits oc (its overhead and curves) to rows all: every K-th row is held
 * out, the rest fitted. Each factor pair (shape, aspect, work) is fitted
 * where every row has its index and it takes more than one value. Fills
 * rep's counts and errors. */
static int fit_op(const rowvec *all, int k_every, double peak, double bw, int fit_unal,
                  perf_op_calib *oc, calib_op_report *rep, sim_err *err) {
    /* per factor pair: at most this many knots, the grid's first spacing */
    static const int fx_max[FX_N] = {CALIB_SHAPE_KNOTS, PERF_MAX_KNOTS, PERF_MAX_KNOTS};
    static const double fx_step[FX_N] = {0.5, 0.25, 0.5};
    fit_row *tr = NULL;
    int *lo = NULL, *flo[FX_N] = {NULL, NULL, NULL};
    double *f = NULL, *ff[FX_N] = {NULL, NULL, NULL}, *scr = NULL, kx[PERF_MAX_KNOTS];
    double fkx[FX_N][PERF_MAX_KNOTS];
    int n = 0, i, j, x, nk, nu, n_al = 0, n_un = 0, n_idx[FX_N] = {0, 0, 0}, has_c = 0;
    int fx_n[FX_N], rc = SIM_ENOMEM;
    double ov0 = INFINITY, ovmax = 0.0; /* the least time less fixed; the most time */
    gsl_vector *x0 = NULL;
    fit_prob q;
    fit_layout l;

    if (all->n < 4) {
        sim_err_set(err, rep->source, 0, 0, "expected at least 4 rows to fit, got %d", all->n);
        return SIM_EINVAL;
    }
    tr = SIM_NEW_ARRAY(fit_row, (size_t)all->n);
    lo = SIM_NEW_ARRAY(int, (size_t)all->n);
    f = SIM_NEW_ARRAY(double, (size_t)all->n);
    scr = SIM_NEW_ARRAY(double, (size_t)all->n);
    if (tr == NULL || lo == NULL || f == NULL || scr == NULL)
        goto done;
    for (x = 0; x < FX_N; x++) {
        flo[x] = SIM_NEW_ARRAY(int, (size_t)all->n);
        ff[x] = SIM_NEW_ARRAY(double, (size_t)all->n);
        if (flo[x] == NULL || ff[x] == NULL)
            goto done;
    }
    for (i = 0; i < all->n; i++) {
        if (k_every >= 2 && i % k_every == k_every - 1)
            continue;
        tr[n++] = all->v[i];
        if (all->v[i].flops > 0 && all->v[i].flops / peak >= CALIB_C_BINDS * all->v[i].bytes / bw)
            has_c = 1;
        if (all->v[i].rows > PERF_ALIGN_ROWS) {
            n_al += !PERF_ROWS_UNALIGNED(all->v[i].rows);
            n_un += PERF_ROWS_UNALIGNED(all->v[i].rows);
        }
        if (all->v[i].meas_s - all->v[i].fixed_s < ov0)
            ov0 = all->v[i].meas_s - all->v[i].fixed_s;
        if (all->v[i].meas_s > ovmax)
            ovmax = all->v[i].meas_s;
        for (x = 0; x < FX_N; x++)
            n_idx[x] += !isnan(fx_index(&all->v[i], x));
    }
    for (i = 0; i < n; i++)
        scr[i] = log2(tr[i].rows);
    nk = choose_knots(scr, n, PERF_MAX_KNOTS, 0.5, kx);
    for (i = 0; i < n; i++)
        locate(kx, nk, scr[i], &lo[i], &f[i]);
    /* each factor pair where every row has its index and it varies */
    for (x = 0; x < FX_N; x++) {
        fx_n[x] = 0;
        if (n_idx[x] < n)
            continue;
        for (i = 0; i < n; i++)
            scr[i] = fx_index(&tr[i], x);
        fx_n[x] = factor_knots(scr, n, fx_max[x], fx_step[x], fkx[x], flo[x], ff[x]);
    }
    ov0 = ov0 > 2e-7 ? 0.5 * ov0 : 1e-7;
    /* the unaligned factor where asked and both kinds of row exist */
    nu = fit_unal && n_al > 0 && n_un > 0 ? nk : 0;

    memset(&q, 0, sizeof q);
    q.r = tr;
    q.n = n;
    q.lo = lo;
    q.f = f;
    q.nk = nk;
    q.nu = nu;
    for (x = 0; x < FX_N; x++) {
        q.fx[x].lo = flo[x];
        q.fx[x].f = ff[x];
    }
    q.has_c = has_c;
    q.peak = peak;
    q.bw = bw;
    q.sqrt_lam = sqrt(1e-3 * (double)n / (double)nk);
    /* First with the shape factors only, then with the aspect and work
     * factors from that point: their indices share much of their trend
     * with rows and shape, and from scratch the fit can end at a worse
     * point than without them. */
    q.fx[FX_SHAPE].n = fx_n[FX_SHAPE];
    l = layout_of(&q);
    if ((x0 = gsl_vector_alloc((size_t)l.p)) == NULL)
        goto done;
    x_start(x0, l, ov0);
    if ((rc = lm_solve(&q, x0)) != SIM_OK)
        goto solve_failed;
    if (fx_n[FX_ASPECT] > 0 || fx_n[FX_WORK] > 0) {
        fit_layout l0 = l;
        gsl_vector *x1 = x0;
        q.fx[FX_ASPECT].n = fx_n[FX_ASPECT];
        q.fx[FX_WORK].n = fx_n[FX_WORK];
        l = layout_of(&q);
        if ((x0 = gsl_vector_alloc((size_t)l.p)) == NULL) {
            gsl_vector_free(x1);
            goto done;
        }
        /* the first fit's parts keep their places (the shape pair comes
         * first); the new factors start at 1 */
        for (j = 0; j < l.p; j++)
            gsl_vector_set(x0, (size_t)j,
                           j < l0.ov   ? gsl_vector_get(x1, (size_t)j)
                           : j == l.ov ? gsl_vector_get(x1, (size_t)l0.ov)
                                       : 0.0);
        gsl_vector_free(x1);
        if ((rc = lm_solve(&q, x0)) != SIM_OK)
            goto solve_failed;
    }

    {
        perf_curve *dst_c[FX_N], *dst_m[FX_N];
        memset(oc, 0, sizeof *oc);
        dst_c[FX_SHAPE] = &oc->shape_c;
        dst_m[FX_SHAPE] = &oc->shape_m;
        dst_c[FX_ASPECT] = &oc->aspect_c;
        dst_m[FX_ASPECT] = &oc->aspect_m;
        dst_c[FX_WORK] = &oc->work_c;
        dst_m[FX_WORK] = &oc->work_m;
        curve_from(&oc->eff_c, x0, 0, kx, has_c ? nk : 0, 1);
        curve_from(&oc->eff_m, x0, l.m, kx, nk, 1);
        curve_from(&oc->unal, x0, l.un, kx, nu, 0);
        for (x = 0; x < FX_N; x++) {
            curve_from(dst_c[x], x0, l.fc[x], fkx[x], has_c ? q.fx[x].n : 0, 0);
            curve_from(dst_m[x], x0, l.fm[x], fkx[x], q.fx[x].n, 0);
        }
        oc->overhead_s = round_sig(exp(gsl_vector_get(x0, (size_t)l.ov)), 3);
        /* as the curves are clamped (curve_from): a fixed time above every
         * measured call is a fit gone astray, and exp() of its parameter
         * can overflow into an 'inf' no JSON reader takes (a noisy CPU
         * profile did it once) */
        if (!(oc->overhead_s <= ovmax))
            oc->overhead_s = round_sig(ovmax, 3);
    }
    rep->fitted = 1;
    rep->n_knots = nk;
    rep->n_shape_knots = q.fx[FX_SHAPE].n;
    rep->n_aspect_knots = q.fx[FX_ASPECT].n;
    rep->n_work_knots = q.fx[FX_WORK].n;
    score(all->v, all->n, k_every, 1, oc, peak, bw, &rep->median_ape, &rep->p95_ape, &rep->n_test,
          scr);
    {
        double p95;
        score(all->v, all->n, k_every, 0, oc, peak, bw, &rep->train_median_ape, &p95, &rep->n_train,
              scr);
    }
    rc = SIM_OK;
    goto done;
solve_failed:
    if (rc == SIM_EINVAL)
        sim_err_set(err, rep->source, 0, 0,
                    "%d rows to fit (after holding out 1 in %d) are too few for the %d "
                    "parameters of the curves; hold out fewer (--holdout-every) or add rows",
                    n, k_every, layout_of(&q).p);
done:
    if (rc == SIM_ENOMEM)
        sim_err_set(err, "calibrate", 0, 0, "out of memory");
    gsl_vector_free(x0);
    sim_free(tr);
    sim_free(lo);
    sim_free(f);
    for (x = 0; x < FX_N; x++) {
        sim_free(flo[x]);
        sim_free(ff[x]);
    }
    sim_free(scr);
    return rc;
}

/* --check: the set src scored on every row of all (nothing fitted), copied
 * to oc; rep's test figures are over all rows, its train figures empty. */
static int check_op(const rowvec *all, const perf_op_calib *src, double peak, double bw,
                    perf_op_calib *oc, calib_op_report *rep, sim_err *err) {
    double *scr = SIM_NEW_ARRAY(double, (size_t)all->n);
    if (scr == NULL) {
        sim_err_set(err, "calibrate", 0, 0, "out of memory");
        return SIM_ENOMEM;
    }
    *oc = *src;
    rep->fitted = 0;
    rep->n_train = 0;
    rep->n_knots = src->eff_m.n;
    rep->n_shape_knots = src->shape_m.n;
    rep->n_aspect_knots = src->aspect_m.n;
    rep->n_work_knots = src->work_m.n;
    score(all->v, all->n, 0, 0, src, peak, bw, &rep->median_ape, &rep->p95_ape, &rep->n_test, scr);
    rep->train_median_ape = NAN;
    sim_free(scr);
    return SIM_OK;
}

/* ---- shapes of the models ---- */

static const int tps[] = {1, 2, 4, 8};

/* KV heads on one GPU at tp. */
static int kv_heads_at(const sim_model *m, int tp) {
    return m->n_kv_heads >= tp ? m->n_kv_heads / tp : 1;
}

/* (N, K) of a GEMM operator for model m at tp. */
static void gemm_nk(const sim_model *m, int tp, enum perf_op op, double *n, double *k) {
    double q = (double)m->n_heads * m->head_dim / tp, kv = (double)kv_heads_at(m, tp) * m->head_dim;
    double ffn = (double)m->intermediate / tp;
    switch (op) {
        case PERF_OP_QKV_PROJ:
            *n = q + 2 * kv;
            *k = m->hidden;
            break;
        case PERF_OP_O_PROJ:
            *n = m->hidden;
            *k = q;
            break;
        case PERF_OP_MLP_UP:
            *n = 2 * ffn;
            *k = m->hidden;
            break;
        case PERF_OP_MLP_DOWN:
            *n = m->hidden;
            *k = ffn;
            break;
        default:
            *n = ceil((double)m->vocab / tp);
            *k = m->hidden;
            break;
    }
}

/* 1 when v is a grid value next to (at or just below or above) a target. */
static int brackets(double v, const double *grid, int ng, double target) {
    double below = -1, above = -1;
    int i;
    for (i = 0; i < ng; i++) {
        if (grid[i] <= target && grid[i] > below)
            below = grid[i];
        if (grid[i] >= target && (above < 0 || grid[i] < above))
            above = grid[i];
    }
    return v == below || v == above;
}

static int add_unique(double *v, int *n, int max, double x) {
    int i;
    for (i = 0; i < *n; i++)
        if (v[i] == x)
            return 0;
    if (*n < max)
        v[(*n)++] = x;
    return 0;
}

/* ---- sources ---- */

/* One GEMM measurement. */
typedef struct gemm_meas {
    int fp8;
    double m, n, k, lat_s;
} gemm_meas;

#define GRID_MAX 256

static const enum perf_op gemm_ops[5] = {PERF_OP_QKV_PROJ, PERF_OP_O_PROJ, PERF_OP_MLP_UP,
                                         PERF_OP_MLP_DOWN, PERF_OP_LM_HEAD};

static int load_gemm(const calib_opts *o, rowvec *rv, rowvec *rv8, calib_report *rep,
                     perf_calib *out, sim_err *err) {
    csv_file c;
    gemm_meas *g = NULL;
    int ng = 0, cap = 0, rc, i, op, gi, ci[5];
    double gn[GRID_MAX], gk[GRID_MAX];
    int nn = 0, nkk = 0;
    static const char *const cols[] = {"gemm_dtype", "m", "n", "k", "latency"};

    if ((rc = csv_open_cols(&c, o->profiles_dir, "gemm.csv", cols, 5, ci, err)) != SIM_OK)
        return rc;
    while ((rc = csv_next(&c, err)) == 1) {
        gemm_meas m;
        const char *dt = c.fld[ci[0]];
        if (strcmp(dt, "bfloat16") != 0 && strcmp(dt, "fp8") != 0)
            continue;
        m.fp8 = dt[0] == 'f';
        if ((rc = csv_int(&c, ci[1], CSV_MAX_DIM, &m.m, err)) != SIM_OK ||
            (rc = csv_int(&c, ci[2], CSV_MAX_DIM, &m.n, err)) != SIM_OK ||
            (rc = csv_int(&c, ci[3], CSV_MAX_DIM, &m.k, err)) != SIM_OK ||
            (rc = csv_num(&c, ci[4], 0, &m.lat_s, err)) != SIM_OK)
            break;
        m.lat_s *= 1e-3;
        if (ng == cap) {
            int nc = cap ? 2 * cap : 1024;
            gemm_meas *ngm = sim_realloc(g, (size_t)nc * sizeof *ngm);
            if (ngm == NULL) {
                rc = SIM_ENOMEM;
                sim_err_set(err, c.path, 0, 0, "out of memory");
                break;
            }
            g = ngm;
            cap = nc;
        }
        g[ng++] = m;
        add_unique(gn, &nn, GRID_MAX, m.n);
        add_unique(gk, &nkk, GRID_MAX, m.k);
    }
    csv_close(&c);
    if (rc < 0) {
        sim_free(g);
        return rc;
    }
    for (gi = 0; gi < 5; gi++) {
        op = gemm_ops[gi];
        for (i = 0; i < ng; i++) {
            int keep = 0, mi, ti;
            for (mi = 0; mi < o->n_models && !keep; mi++) {
                for (ti = 0; ti < 4 && !keep; ti++) {
                    double tn, tk;
                    if (o->models[mi].n_heads % tps[ti] != 0)
                        continue;
                    gemm_nk(&o->models[mi], tps[ti], (enum perf_op)op, &tn, &tk);
                    keep = brackets(g[i].n, gn, nn, tn) && brackets(g[i].k, gk, nkk, tk);
                }
            }
            if (keep) {
                fit_row r;
                perf_gemm_cost(g[i].m, g[i].n, g[i].k, g[i].fp8 ? 1.0 : 2.0, &r.flops, &r.bytes);
                r.rows = g[i].m;
                r.shape = perf_gemm_shape(g[i].n, g[i].k);
                r.work = NAN;
                r.n = g[i].n;
                r.k = g[i].k;
                r.fixed_s = 0;
                r.meas_s = g[i].lat_s;
                if ((rc = rowvec_push(g[i].fp8 ? &rv8[op] : &rv[op], &r)) != SIM_OK) {
                    sim_err_set(err, "calibrate", 0, 0, "out of memory");
                    sim_free(g);
                    return rc;
                }
            }
        }
        snprintf(rep->op[op].source, sizeof rep->op[op].source,
                 "gemm.csv bf16, (n,k) next to the models' shapes");
        snprintf(rep->fp8[op].source, sizeof rep->fp8[op].source,
                 "gemm.csv fp8 (per-tensor), (n,k) next to the models' shapes, fp8 peak");
        snprintf(rep->fp8_bf16[op].source, sizeof rep->fp8_bf16[op].source,
                 "gemm.csv fp8 held-out rows, bf16 curves at the fp8 peak (no fp8 set)");
    }
    (void)out;
    sim_free(g);
    return SIM_OK;
}

/* A model of one GPU's attention shape: heads and KV heads per GPU. */
static void attn_model(sim_model *m, int heads, int kv_heads, int head_dim) {
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "attn-%d-%d", heads, kv_heads);
    m->n_layers = 1;
    m->n_heads = heads;
    m->n_kv_heads = kv_heads;
    m->head_dim = head_dim;
    m->hidden = heads * head_dim;
    m->intermediate = 1;
    m->vocab = 1;
    m->w_dtype = SIM_DT_BF16;
    m->kv_dtype = SIM_DT_BF16;
}

/* 1 when (heads, kv_heads) per GPU occurs for a model at TP 1/2/4/8. */
static int heads_wanted(const calib_opts *o, int heads, int kv_heads) {
    int mi, ti;
    for (mi = 0; mi < o->n_models; mi++)
        for (ti = 0; ti < 4; ti++)
            if (o->models[mi].n_heads % tps[ti] == 0 && o->models[mi].n_heads / tps[ti] == heads &&
                kv_heads_at(&o->models[mi], tps[ti]) == kv_heads && o->models[mi].head_dim == 128)
                return 1;
    return 0;
}

/* attn_prefill (prefill = 1) or attn_decode rows. */
static int load_attn(const calib_opts *o, int prefill, const perf_calib *cal, rowvec *rv,
                     calib_op_report *rep, sim_err *err) {
    static const char *const cols_p[] = {
        "batch_size",     "isl",    "num_heads", "num_key_value_heads", "head_dim",
        "kv_cache_dtype", "latency"};
    static const char *const cols_d[] = {
        "batch_size", "step",           "num_heads", "num_key_value_heads",
        "head_dim",   "kv_cache_dtype", "latency"};
    const char *const *cols = prefill ? cols_p : cols_d;
    const char *file = prefill ? "context_attention.csv" : "generation_attention.csv";
    csv_file c;
    int rc, ci[7];

    if ((rc = csv_open_cols(&c, o->profiles_dir, file, cols, 7, ci, err)) != SIM_OK)
        return rc;
    while ((rc = csv_next(&c, err)) == 1) {
        double bs, len, heads, kvh, hd, lat;
        sim_model m;
        perf_ctx ctx;
        perf_batch b;
        fit_row r;
        int64_t j;
        if (strcmp(c.fld[ci[5]], "bfloat16") != 0)
            continue;
        if ((rc = csv_int(&c, ci[0], CSV_MAX_DIM, &bs, err)) != SIM_OK ||
            (rc = csv_int(&c, ci[1], CSV_MAX_DIM, &len, err)) != SIM_OK ||
            (rc = csv_int(&c, ci[2], CSV_MAX_DIM, &heads, err)) != SIM_OK ||
            (rc = csv_int(&c, ci[3], CSV_MAX_DIM, &kvh, err)) != SIM_OK ||
            (rc = csv_int(&c, ci[4], CSV_MAX_DIM, &hd, err)) != SIM_OK ||
            (rc = csv_num(&c, ci[6], 0, &lat, err)) != SIM_OK)
            break;
        if (!heads_wanted(o, (int)heads, (int)kvh) || hd != 128)
            continue;
        attn_model(&m, (int)heads, (int)kvh, (int)hd);
        if ((rc = perf_ctx_init(&ctx, &m, o->gpu, cal, 1, err)) != SIM_OK)
            break;
        memset(&b, 0, sizeof b);
        for (j = 0; j < (int64_t)bs; j++) {
            if (prefill)
                perf_batch_add_prefill(&b, (int64_t)len, 0, 1);
            else
                perf_batch_add_decode(&b, (int64_t)len + 1);
        }
        perf_op_cost(&ctx, prefill ? PERF_OP_ATTN_PREFILL : PERF_OP_ATTN_DECODE, &b, &r.flops,
                     &r.bytes, &r.rows);
        r.fixed_s = prefill ? perf_op_call_s(&ctx, PERF_OP_KV_SAVE, &b) : 0.0;
        r.shape = perf_op_shape(&ctx, prefill ? PERF_OP_ATTN_PREFILL : PERF_OP_ATTN_DECODE);
        r.work = perf_op_work(&ctx, prefill ? PERF_OP_ATTN_PREFILL : PERF_OP_ATTN_DECODE, &b);
        r.n = r.k = NAN;
        r.meas_s = lat * 1e-3;
        if ((rc = rowvec_push(rv, &r)) != SIM_OK) {
            sim_err_set(err, "calibrate", 0, 0, "out of memory");
            break;
        }
    }
    csv_close(&c);
    if (rc < 0)
        return rc;
    snprintf(rep->source, sizeof rep->source, "%s, head_dim 128, bf16 KV, the models' heads%s",
             file, prefill ? " (minus modelled kv_save)" : "");
    return SIM_OK;
}

/* mlp_act, norm, rope and embed rows from Vidur's per-layer profiles. */
static int load_vidur(const calib_opts *o, const perf_calib *cal, rowvec *rv, calib_report *rep,
                      sim_err *err) {
    static const char *const cfg[] = {"n_head",
                                      "n_kv_head",
                                      "n_embd",
                                      "n_expanded_embd",
                                      "vocab_size",
                                      "num_tokens",
                                      "num_tensor_parallel_workers"};
    static const char *const tcol[] = {"time_stats.mlp_act.median",
                                       "time_stats.input_layernorm.median",
                                       "time_stats.post_attention_layernorm.median",
                                       "time_stats.attn_rope.median", "time_stats.emb.median"};
    static const enum perf_op ops[] = {PERF_OP_MLP_ACT, PERF_OP_NORM, PERF_OP_ROPE, PERF_OP_EMBED};
    csv_file c;
    int rc, i, ci[7], ti[5];

    if ((rc = csv_open_cols(&c, o->profiles_dir, "vidur_layer_ops.csv", cfg, 7, ci, err)) != SIM_OK)
        return rc;
    for (i = 0; i < 5; i++)
        if ((ti[i] = csv_col(&c, tcol[i], err)) < 0) {
            csv_close(&c);
            return SIM_EPARSE;
        }
    while ((rc = csv_next(&c, err)) == 1) {
        double v[7], t[5];
        sim_model m;
        perf_ctx ctx;
        perf_batch b;
        for (i = 0; i < 7 && rc == 1; i++)
            if (csv_int(&c, ci[i], CSV_MAX_DIM, &v[i], err) != SIM_OK)
                rc = SIM_EPARSE;
        for (i = 0; i < 5 && rc == 1; i++)
            if (csv_num(&c, ti[i], 0, &t[i], err) != SIM_OK)
                rc = SIM_EPARSE;
        if (rc != 1)
            break;
        memset(&m, 0, sizeof m);
        snprintf(m.name, sizeof m.name, "vidur");
        m.n_layers = 1;
        m.n_heads = (int)v[0];
        m.n_kv_heads = (int)v[1];
        m.hidden = (int)v[2];
        m.head_dim = (int)v[2] / (int)v[0];
        m.intermediate = (int)v[3];
        m.vocab = (int)v[4];
        m.w_dtype = m.kv_dtype = SIM_DT_FP16;
        if ((rc = perf_ctx_init(&ctx, &m, o->gpu, cal, (int)v[6], err)) != SIM_OK) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            sim_err_set(err, c.path, c.line, 0, "%s", why);
            break;
        }
        memset(&b, 0, sizeof b);
        perf_batch_add_prefill(&b, (int64_t)v[5], 0, 0);
        for (i = 0; i < 4; i++) {
            fit_row r;
            perf_op_cost(&ctx, ops[i], &b, &r.flops, &r.bytes, &r.rows);
            r.shape = perf_op_shape(&ctx, ops[i]);
            r.work = NAN;
            r.n = r.k = NAN;
            r.fixed_s = 0;
            r.meas_s = (i == 0 ? t[0] : i == 1 ? t[1] + t[2] : i == 2 ? t[3] : t[4]) * 1e-3;
            if ((rc = rowvec_push(&rv[ops[i]], &r)) != SIM_OK) {
                sim_err_set(err, "calibrate", 0, 0, "out of memory");
                break;
            }
        }
        if (rc != SIM_OK)
            break;
        rc = 1;
    }
    csv_close(&c);
    if (rc < 0)
        return rc;
    snprintf(rep->op[PERF_OP_MLP_ACT].source, sizeof rep->op[0].source,
             "vidur_layer_ops.csv mlp_act");
    snprintf(rep->op[PERF_OP_NORM].source, sizeof rep->op[0].source,
             "vidur_layer_ops.csv input_ + post_attention_layernorm");
    snprintf(rep->op[PERF_OP_ROPE].source, sizeof rep->op[0].source,
             "vidur_layer_ops.csv attn_rope");
    snprintf(rep->op[PERF_OP_EMBED].source, sizeof rep->op[0].source, "vidur_layer_ops.csv emb");
    return SIM_OK;
}

/* All-reduce rows: a message of message_size bf16 elements among
 * num_gpus GPUs; the curves are indexed by the message in KiB. */
static int load_allreduce(const calib_opts *o, rowvec *rv, calib_op_report *rep, sim_err *err) {
    csv_file c;
    int rc, ci[3];
    static const char *const cols[] = {"num_gpus", "message_size", "latency"};

    if ((rc = csv_open_cols(&c, o->profiles_dir, "allreduce.csv", cols, 3, ci, err)) != SIM_OK)
        return rc;
    while ((rc = csv_next(&c, err)) == 1) {
        double g, elems, lat;
        fit_row r;
        if ((rc = csv_int(&c, ci[0], CSV_MAX_DIM, &g, err)) != SIM_OK ||
            (rc = csv_int(&c, ci[1], CSV_MAX_ELEMS, &elems, err)) != SIM_OK ||
            (rc = csv_num(&c, ci[2], 0, &lat, err)) != SIM_OK)
            break;
        if (g < 2)
            continue;
        r.flops = 0;
        r.bytes = 2.0 * (g - 1.0) / g * (elems * 2.0);
        r.rows = elems * 2.0 / 1024.0;
        r.shape = 0; /* one curve for 2, 4 and 8 GPUs: a factor per count overfits 56 rows */
        r.work = NAN;
        r.n = r.k = NAN;
        r.fixed_s = 0;
        r.meas_s = lat * 1e-3;
        if ((rc = rowvec_push(rv, &r)) != SIM_OK) {
            sim_err_set(err, "calibrate", 0, 0, "out of memory");
            break;
        }
        rc = 1;
    }
    csv_close(&c);
    if (rc < 0)
        return rc;
    snprintf(rep->source, sizeof rep->source,
             "allreduce.csv (vLLM custom all-reduce, CUDA graph), 2/4/8 GPUs");
    return SIM_OK;
}

/* The engine overhead of a step of b sequences on tp GPUs. */
static double step_model(const perf_calib *c, double b, double tp) {
    return perf_calib_step_base_s(c, tp > 1 ? 2 : 1) + c->step_per_seq_s * b;
}

/* step_base_s + step_tp_s [tp > 1] + step_per_seq_s x batch from the
 * engine's CPU overheads, by linear least squares. A multi-GPU engine
 * broadcasts each step's inputs to its workers, which costs a fixed extra
 * time; step_tp_s is fitted only when the rows have both tp = 1 and tp > 1
 * (the column tensor_parallel_degree is optional: absent, tp = 1). */
static int fit_step(const calib_opts *o, perf_calib *out, calib_op_report *rep, sim_err *err) {
    static const char *const cols[] = {"batch_size", "schedule_median", "sampler_e2e_median",
                                       "prepare_inputs_e2e_median", "process_model_outputs_median"};
    enum { STEP_MAX = 512 };
    csv_file c;
    double x[STEP_MAX], y[STEP_MAX], tpv[STEP_MAX], e[STEP_MAX], chisq;
    int test[STEP_MAX];
    int rc, i, ci[5], ctp, nall = 0, n = 0, nt = 0, k = o->holdout_every, one = 0, multi = 0, np, m;
    gsl_matrix *X = NULL, *cov = NULL;
    gsl_vector *Y = NULL, *beta = NULL;
    gsl_multifit_linear_workspace *ws = NULL;

    if ((rc = csv_open_cols(&c, o->profiles_dir, "cpu_overheads_a100.csv", cols, 5, ci, err)) !=
        SIM_OK)
        return rc;
    ctp = csv_col(&c, "tensor_parallel_degree", err);
    sim_err_clear(err);
    while ((rc = csv_next(&c, err)) == 1) {
        double v[5], tp = 1;
        for (i = 0; i < 5 && rc == 1; i++)
            if ((i == 0 ? csv_int(&c, ci[i], CSV_MAX_DIM, &v[i], err)
                        : csv_num(&c, ci[i], 1, &v[i], err)) != SIM_OK)
                rc = SIM_EPARSE;
        if (rc == 1 && ctp >= 0 && csv_int(&c, ctp, CSV_MAX_DIM, &tp, err) != SIM_OK)
            rc = SIM_EPARSE;
        if (rc != 1)
            break;
        if (nall >= STEP_MAX) {
            sim_err_set(err, c.path, c.line, 0, "expected at most %d rows", STEP_MAX);
            rc = SIM_EPARSE;
            break;
        }
        x[nall] = v[0];
        tpv[nall] = tp;
        y[nall] = (v[1] + v[2] + v[3] + v[4]) * 1e-3;
        test[nall] = k >= 2 && nall % k == k - 1;
        if (!test[nall]) {
            n++;
            one += tp <= 1;
            multi += tp > 1;
        } else {
            nt++;
        }
        nall++;
    }
    csv_close(&c);
    if (rc < 0)
        return rc;
    np = one > 0 && multi > 0 ? 3 : 2;
    if (n < np) {
        sim_err_set(err, c.path, 0, 0, "expected at least %d rows to fit, got %d", np, n);
        return SIM_EINVAL;
    }
    X = gsl_matrix_alloc((size_t)n, (size_t)np);
    Y = gsl_vector_alloc((size_t)n);
    beta = gsl_vector_alloc((size_t)np);
    cov = gsl_matrix_alloc((size_t)np, (size_t)np);
    ws = gsl_multifit_linear_alloc((size_t)n, (size_t)np);
    if (X == NULL || Y == NULL || beta == NULL || cov == NULL || ws == NULL) {
        rc = SIM_ENOMEM;
        sim_err_set(err, "calibrate", 0, 0, "out of memory");
        goto done;
    }
    for (i = 0, m = 0; i < nall; i++) {
        if (test[i])
            continue;
        gsl_matrix_set(X, (size_t)m, 0, 1.0);
        gsl_matrix_set(X, (size_t)m, 1, x[i]);
        if (np == 3)
            gsl_matrix_set(X, (size_t)m, 2, tpv[i] > 1 ? 1.0 : 0.0);
        gsl_vector_set(Y, (size_t)m++, y[i]);
    }
    gsl_multifit_linear(X, Y, beta, cov, &chisq, ws);
    out->step_base_s = round_sig(fmax(gsl_vector_get(beta, 0), 0), 4);
    out->step_per_seq_s = round_sig(fmax(gsl_vector_get(beta, 1), 0), 4);
    out->step_tp_s = np == 3 ? round_sig(fmax(gsl_vector_get(beta, 2), 0), 4) : 0.0;
    rep->fitted = 1;
    rep->n_train = n;
    rep->n_test = nt;
    rep->n_knots = 0;
    rep->median_ape = rep->p95_ape = NAN;
    for (i = 0, m = 0; i < nall; i++)
        if (test[i])
            e[m++] = fabs(step_model(out, x[i], tpv[i]) / y[i] - 1.0) * 100.0;
    if (nt > 0) {
        gsl_sort(e, 1, (size_t)nt);
        rep->median_ape = gsl_stats_median_from_sorted_data(e, 1, (size_t)nt);
        rep->p95_ape = gsl_stats_quantile_from_sorted_data(e, 1, (size_t)nt, 0.95);
    }
    for (i = 0, m = 0; i < nall; i++)
        if (!test[i])
            e[m++] = fabs(step_model(out, x[i], tpv[i]) / y[i] - 1.0) * 100.0;
    gsl_sort(e, 1, (size_t)n);
    rep->train_median_ape = gsl_stats_median_from_sorted_data(e, 1, (size_t)n);
    snprintf(rep->source, sizeof rep->source,
             "cpu_overheads_a100.csv (A100 engine: schedule + sampler + prepare_inputs + "
             "process_outputs%s)",
             np == 3 ? "; tp 1 vs tp > 1" : "");
    rc = SIM_OK;
done:
    gsl_matrix_free(X);
    gsl_vector_free(Y);
    gsl_vector_free(beta);
    gsl_matrix_free(cov);
    gsl_multifit_linear_free(ws);
    return rc;
}

/* ---- the fit ---- */

/* One curve set of op on rows rv (set: "bf16" or "fp8"): fitted into oc
 * (fit_op), or with src (--check) scored as it is (check_op), then written
 * to the residuals file when there is one. */
static int fit_or_check(const calib_opts *o, const rowvec *rv, enum perf_op op, const char *set,
                        int fit_unal, double peak, double bw, const perf_op_calib *src,
                        perf_op_calib *oc, calib_op_report *rep, sim_err *err) {
    int rc = src != NULL ? check_op(rv, src, peak, bw, oc, rep, err)
                         : fit_op(rv, o->holdout_every, peak, bw, fit_unal, oc, rep, err);
    if (rc == SIM_OK && o->residuals != NULL)
        write_residuals(o->residuals, perf_op_name(op), set, rv,
                        src != NULL ? -1 : o->holdout_every, oc, peak, bw);
    return rc;
}

/* o's string at key k, or "?" (json_string_value is NULL for a missing
 * key or another type). */
static const char *str_or_what(const json_t *o, const char *k) {
    const char *v = json_string_value(json_object_get(o, k));
    return v != NULL ? v : "?";
}

/* What the profiles in dir are, for a calibration's source: a folder that
 * `kvfleet profile` wrote names its backend, model, GPU and version (from
 * its profile.json); any other folder is taken for the public profiles. */
static void profiles_origin(const char *dir, char *buf, size_t size) {
    char path[4096];
    json_t *o;
    snprintf(path, sizeof path, "%s/profile.json", dir);
    o = json_load_file(path, 0, NULL);
    if (json_is_object(o) && json_is_string(json_object_get(o, "backend")))
        snprintf(buf, size, "kvfleet profile --backend %s (%s on %s, kvfleet %s)",
                 str_or_what(o, "backend"), str_or_what(o, "model"), str_or_what(o, "gpu"),
                 str_or_what(o, "kvfleet"));
    else
        snprintf(buf, size,
                 "public profiles (AIConfigurator vLLM 0.24.0 H100 SXM, Vidur H100, "
                 "Vidur A100 CPU overheads)");
    json_decref(o);
}

/* Fits a calibration for o->gpu from the profiles in o->profiles_dir into
 * *out (operators without profiles keep the datasheet roofline) and the
 * held-out errors into *rep. A profile file that is absent leaves its
 * operators unfitted; when none is present, SIM_ENOENT. Bad rows are
 * SIM_EPARSE naming file, line and column. */
int calib_fit(const calib_opts *o, perf_calib *out, calib_report *rep, sim_err *err) {
    rowvec rv[PERF_N_OPS], rv8[PERF_N_OPS];
    int rc = SIM_OK, op, n_files = 0, i;
    double bw_link;
    gsl_error_handler_t *old_handler;

    sim_err_clear(err);
    memset(rv, 0, sizeof rv);
    memset(rv8, 0, sizeof rv8);
    memset(rep, 0, sizeof *rep);
    if (o->n_models < 1 || o->n_models > CALIB_MAX_MODELS || o->holdout_every == 1 ||
        o->holdout_every < 0) {
        sim_err_set(err, "calibrate", 0, 0,
                    "options: expected 1..%d models and --holdout-every 0 or >= 2",
                    CALIB_MAX_MODELS);
        return SIM_EINVAL;
    }
    /* GSL's default handler aborts; a library reports through codes. */
    old_handler = gsl_set_error_handler_off();
    perf_calib_default(out, o->gpu);
    snprintf(out->gpu, sizeof out->gpu, "%s", o->gpu->name);
    for (op = 0; op < PERF_N_OPS; op++) {
        rep->op[op].median_ape = rep->op[op].p95_ape = rep->op[op].train_median_ape = NAN;
        rep->fp8[op].median_ape = rep->fp8[op].p95_ape = rep->fp8[op].train_median_ape = NAN;
        rep->fp8_bf16[op].median_ape = rep->fp8_bf16[op].p95_ape = NAN;
        rep->fp8_bf16[op].train_median_ape = NAN;
        snprintf(rep->op[op].source, sizeof rep->op[op].source,
                 "no public measurement: datasheet roofline");
    }
    rep->step.median_ape = rep->step.p95_ape = rep->step.train_median_ape = NAN;
    snprintf(rep->step.source, sizeof rep->step.source, "no profile: no step overhead");

#define CALIB_SOURCE(call)                                                                         \
    do {                                                                                           \
        rc = (call);                                                                               \
        if (rc == SIM_OK)                                                                          \
            n_files++;                                                                             \
        else if (rc != SIM_ENOENT)                                                                 \
            goto done;                                                                             \
        sim_err_clear(err);                                                                        \
    } while (0)
    CALIB_SOURCE(load_gemm(o, rv, rv8, rep, out, err));
    CALIB_SOURCE(load_attn(o, 1, o->check ? o->check : out, &rv[PERF_OP_ATTN_PREFILL],
                           &rep->op[PERF_OP_ATTN_PREFILL], err));
    CALIB_SOURCE(load_attn(o, 0, o->check ? o->check : out, &rv[PERF_OP_ATTN_DECODE],
                           &rep->op[PERF_OP_ATTN_DECODE], err));
    CALIB_SOURCE(load_vidur(o, out, rv, rep, err));
    CALIB_SOURCE(load_allreduce(o, &rv[PERF_OP_ALLREDUCE], &rep->op[PERF_OP_ALLREDUCE], err));
    if (o->check == NULL) {
        CALIB_SOURCE(fit_step(o, out, &rep->step, err));
    } else {
        snprintf(rep->step.source, sizeof rep->step.source,
                 "not checked (--check scores the operators)");
        out->step_base_s = o->check->step_base_s;
        out->step_per_seq_s = o->check->step_per_seq_s;
        out->step_tp_s = o->check->step_tp_s;
    }
#undef CALIB_SOURCE
    rc = SIM_OK;
    if (n_files == 0) {
        sim_err_set(err, o->profiles_dir, 0, 0,
                    "expected profiles (gemm.csv, context_attention.csv, ...), found none");
        rc = SIM_ENOENT;
        goto done;
    }

    bw_link = o->gpu->nvlink_bw > 0 ? o->gpu->nvlink_bw : o->gpu->pcie_bw;
    for (op = 0; op < PERF_N_OPS; op++) {
        double peak = o->gpu->flops_bf16;
        double bw = op == PERF_OP_ALLREDUCE ? bw_link : o->gpu->hbm_bw;
        if (rv[op].n == 0)
            continue;
        /* bf16 (or any) weights, then fp8 weights: fitted, or with --check
         * scored with the set a run would use (the file's fp8 set, or its
         * bf16 set at the fp8 peak) */
        if ((rc = fit_or_check(o, &rv[op], (enum perf_op)op, "bf16", PERF_OP_IS_GEMM(op), peak, bw,
                               o->check ? &o->check->op[op] : NULL, &out->op[op], &rep->op[op],
                               err)) != SIM_OK)
            goto done;
        if (rv8[op].n > 0 && o->gpu->flops_fp8 > 0) {
            if (o->check == NULL) {
                /* for comparison: the bf16 set at the fp8 peak (what runs
                 * without an fp8 set) on the same held-out rows */
                double *scr = SIM_NEW_ARRAY(double, (size_t)rv8[op].n);
                if (scr == NULL) {
                    rc = SIM_ENOMEM;
                    sim_err_set(err, "calibrate", 0, 0, "out of memory");
                    goto done;
                }
                score(rv8[op].v, rv8[op].n, o->holdout_every, 1, &out->op[op], o->gpu->flops_fp8,
                      bw, &rep->fp8_bf16[op].median_ape, &rep->fp8_bf16[op].p95_ape,
                      &rep->fp8_bf16[op].n_test, scr);
                sim_free(scr);
            }
            if ((rc = fit_or_check(o, &rv8[op], (enum perf_op)op, "fp8", 1, o->gpu->flops_fp8, bw,
                                   o->check ? perf_calib_op(o->check, (enum perf_op)op, SIM_DT_FP8)
                                            : NULL,
                                   &out->op_fp8[op], &rep->fp8[op], err)) != SIM_OK)
                goto done;
            out->has_fp8[op] = o->check ? o->check->has_fp8[op] : 1;
        }
    }
    {
        char fitted[200] = "", *p = fitted, from[120];
        for (op = 0; op < PERF_N_OPS; op++)
            if (!rep->op[op].fitted)
                p += snprintf(p, sizeof fitted - (size_t)(p - fitted), "%s%s",
                              p == fitted ? "" : ",", perf_op_name((enum perf_op)op));
        profiles_origin(o->profiles_dir, from, sizeof from);
        snprintf(out->source, sizeof out->source,
                 "kvfleet calibrate: %.100s, shapes of %d models; datasheet: %.80s", from,
                 o->n_models, fitted[0] ? fitted : "none");
    }
    rc = SIM_OK;
done:
    for (i = 0; i < PERF_N_OPS; i++) {
        rowvec_free(&rv[i]);
        rowvec_free(&rv8[i]);
    }
    gsl_set_error_handler(old_handler);
    return rc;
}

/* ---- the command ---- */

static void usage(FILE *f) {
    fprintf(f, "usage: kvfleet calibrate --gpu NAME [--model NAME[,NAME...]] [--profiles DIR]\n"
               "                         [-o FILE] [--holdout-every K] [--residuals CSV] [--json]\n"
               "       kvfleet calibrate --gpu NAME --check FILE [--model ...] [--profiles DIR]\n"
               "                         [--residuals CSV] [--json]\n"
               "Fits the perf model's per-operator efficiencies to the GPU's profiles\n"
               "(default DIR: DATA/profiles/NAME), holding out every K-th row (default 5;\n"
               "0: none) and reporting the held-out error. --model (default all: every\n"
               "preset in DATA/models) chooses the GEMM and attention shapes (TP 1, 2, 4,\n"
               "8) that are fitted.\n"
               "-o writes the calibration (DATA/calib/NAME.json is what runs load);\n"
               "--residuals each fitted row's measured and predicted time.\n"
               "--check scores the calibration FILE on every row of the profiles (the\n"
               "'test' columns), at NAME's peaks, and fits nothing.\n");
}

/* The options that take a value (rt_arg_refuse: a trailing one lacks it; any
 * other is unknown). */
static const char *const calib_value_opts[] = {"--gpu",   "--model",         "--profiles",
                                               "-o",      "--output",        "--residuals",
                                               "--check", "--holdout-every", NULL};

static json_t *op_json(const calib_op_report *r) {
    json_t *o = json_object();
    json_object_set_new(o, "fitted", json_boolean(r->fitted));
    json_object_set_new(o, "source", json_string(r->source));
    json_object_set_new(o, "n_train", json_integer(r->n_train));
    json_object_set_new(o, "n_test", json_integer(r->n_test));
    json_object_set_new(o, "n_knots", json_integer(r->n_knots));
    json_object_set_new(o, "n_shape_knots", json_integer(r->n_shape_knots));
    json_object_set_new(o, "n_aspect_knots", json_integer(r->n_aspect_knots));
    json_object_set_new(o, "n_work_knots", json_integer(r->n_work_knots));
    json_object_set_new(o, "median_ape_pct",
                        isnan(r->median_ape) ? json_null()
                                             : json_real(round_sig(r->median_ape, 4)));
    json_object_set_new(o, "p95_ape_pct",
                        isnan(r->p95_ape) ? json_null() : json_real(round_sig(r->p95_ape, 4)));
    json_object_set_new(o, "train_median_ape_pct",
                        isnan(r->train_median_ape) ? json_null()
                                                   : json_real(round_sig(r->train_median_ape, 4)));
    return o;
}

static void print_row(const char *name, const calib_op_report *r) {
    if (!r->fitted && r->n_test == 0) {
        printf("%-14s %s\n", name, r->source);
        return;
    }
    char tm[16] = "-";
    if (!isnan(r->train_median_ape))
        snprintf(tm, sizeof tm, "%.2f", r->train_median_ape);
    printf("%-14s %6d %5d %5d %8.2f %8.2f %8s  %s\n", name, r->n_train, r->n_test, r->n_knots,
           r->median_ape, r->p95_ape, tm, r->source);
}

/* The `kvfleet calibrate` command (usage above). */
int calib_main(int argc, char **argv) {
    const char *gpu_name = NULL, *models_arg = "all", *profiles = NULL, *outp = NULL;
    const char *resp = NULL, *checkp = NULL;
    sim_replace resf;
    perf_calib checked;
    int holdout_given = 0;
    char pdir[2048], list[2048], *tok, *next;
    int k_every = 5, json = 0, i, rc, op;
    sim_gpu gpu;
    sim_model models[CALIB_MAX_MODELS];
    int n_models = 0;
    perf_calib cal;
    calib_report rep;
    calib_opts o;
    sim_err err;
    char msg[1200];

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = rt_has_value(argc, argv, i);
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--gpu") == 0 && has_val) {
            gpu_name = argv[++i];
        } else if (strcmp(a, "--model") == 0 && has_val) {
            models_arg = argv[++i];
        } else if (strcmp(a, "--profiles") == 0 && has_val) {
            profiles = argv[++i];
        } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && has_val) {
            outp = argv[++i];
        } else if (strcmp(a, "--residuals") == 0 && has_val) {
            resp = argv[++i];
        } else if (strcmp(a, "--check") == 0 && has_val) {
            checkp = argv[++i];
        } else if (strcmp(a, "--holdout-every") == 0 && has_val) {
            long long v;
            int prc = rt_parse_int(argv[++i], 0, 1000000, &v);
            if (prc != 0 || v == 1) {
                fprintf(stderr,
                        "kvfleet calibrate: --holdout-every: expected 0 or an integer >= 2, "
                        "got '%s'\n",
                        argv[i]);
                return prc != 0 ? rt_value_exit(prc) : RT_EXIT_INPUT; /* 1: out of range */
            }
            k_every = (int)v;
            holdout_given = 1;
        } else {
            rt_arg_refuse("kvfleet calibrate", a, calib_value_opts);
            usage(stderr);
            return 2;
        }
    }
    if (gpu_name == NULL) {
        fprintf(stderr, "kvfleet calibrate: --gpu: expected a GPU preset name, got nothing\n");
        usage(stderr);
        return 2;
    }
    if (checkp != NULL && (outp != NULL || holdout_given)) {
        fprintf(stderr,
                "kvfleet calibrate: --check scores a calibration on every row and fits "
                "nothing: expected no %s\n",
                outp != NULL ? "-o" : "--holdout-every");
        return 2;
    }
    sim_err_clear(&err);
    if ((rc = sim_gpu_load(gpu_name, rt_datadir(), &gpu, &err)) != SIM_OK)
        goto input_error;
    if (strcmp(models_arg, "all") == 0) {
        snprintf(pdir, sizeof pdir, "%s/models", rt_datadir());
        if (sim_json_preset_list(pdir, list, sizeof list) != SIM_OK) {
            sim_err_set(&err, pdir, 0, 0, "out of memory listing presets");
            goto runtime_error;
        }
    } else if (rt_list_has_empty(models_arg)) { /* 'tiny,,tiny' was taken as two */
        fprintf(stderr,
                "kvfleet calibrate: --model: expected comma-separated model names, none empty, "
                "got '%s'\n",
                models_arg);
        return 2;
    } else {
        snprintf(list, sizeof list, "%s", models_arg);
    }
    for (tok = list; tok != NULL; tok = next) {
        next = strchr(tok, ',');
        if (next != NULL)
            *next++ = '\0';
        while (*tok == ' ')
            tok++;
        if (tok[0] == '\0')
            continue;
        if (n_models == CALIB_MAX_MODELS) {
            fprintf(stderr, "kvfleet calibrate: --model: expected at most %d models\n",
                    CALIB_MAX_MODELS);
            return 2;
        }
        if ((rc = sim_model_load(tok, rt_datadir(), &models[n_models], &err)) != SIM_OK)
            goto input_error;
        n_models++;
    }
    if (n_models == 0) {
        fprintf(stderr, "kvfleet calibrate: --model: expected a model name, got ''\n");
        return 2;
    }
    if (profiles == NULL) {
        snprintf(pdir, sizeof pdir, "%s/profiles/%s", rt_datadir(), gpu.name);
        profiles = pdir;
    }
    memset(&o, 0, sizeof o);
    o.gpu = &gpu;
    o.models = models;
    o.n_models = n_models;
    o.profiles_dir = profiles;
    o.holdout_every = k_every;
    if (checkp != NULL) {
        if ((rc = perf_calib_load(checkp, &checked, &err)) != SIM_OK) {
            if (rc == SIM_ENOMEM)
                goto runtime_error;
            goto input_error;
        }
        o.check = &checked;
        o.holdout_every = 0;
    }
    if (resp != NULL) {
        if (sim_replace_open(&resf, resp, &err) != SIM_OK)
            goto runtime_error;
        calib_residuals_header(resf.f);
        o.residuals = resf.f;
    }
    rc = calib_fit(&o, &cal, &rep, &err);
    if (resp != NULL) {
        /* a fit or a write that fails leaves no file that looks whole */
        sim_err werr;
        if (sim_replace_close(&resf, resp, rc == SIM_OK, &werr) != SIM_OK && rc == SIM_OK) {
            err = werr;
            goto runtime_error;
        }
    }
    if (rc != SIM_OK) {
        if (rc == SIM_ENOMEM)
            goto runtime_error;
        goto input_error;
    }
    if (outp != NULL && (rc = perf_calib_save(&cal, outp, &err)) != SIM_OK) {
        if (rc != SIM_EINVAL)
            goto runtime_error;
        /* a fit with a number that is not finite: failed, as a fit that fails */
        sim_err_format(&err, msg, sizeof msg);
        fprintf(stderr, "kvfleet calibrate: %s\n", msg);
        return 1;
    }

    if (json) {
        json_t *root = json_object(), *ops = json_object(), *fp8 = json_object(),
               *fp8b = json_object(), *ms = json_array();
        for (i = 0; i < n_models; i++)
            json_array_append_new(ms, json_string(models[i].name));
        json_object_set_new(root, "gpu", json_string(gpu.name));
        json_object_set_new(root, "models", ms);
        json_object_set_new(root, "profiles", json_string(profiles));
        json_object_set_new(root, "holdout_every", json_integer(checkp ? 0 : k_every));
        json_object_set_new(root, "check", checkp ? json_string(checkp) : json_null());
        for (op = 0; op < PERF_N_OPS; op++) {
            json_object_set_new(ops, perf_op_name((enum perf_op)op), op_json(&rep.op[op]));
            if (rep.fp8[op].fitted || rep.fp8[op].n_test > 0)
                json_object_set_new(fp8, perf_op_name((enum perf_op)op), op_json(&rep.fp8[op]));
            if (rep.fp8_bf16[op].n_test > 0)
                json_object_set_new(fp8b, perf_op_name((enum perf_op)op),
                                    op_json(&rep.fp8_bf16[op]));
        }
        json_object_set_new(root, "ops", ops);
        json_object_set_new(root, "step", op_json(&rep.step));
        json_object_set_new(root, "step_base_s", json_real(cal.step_base_s));
        json_object_set_new(root, "step_per_seq_s", json_real(cal.step_per_seq_s));
        json_object_set_new(root, "step_tp_s", json_real(cal.step_tp_s));
        json_object_set_new(root, "fp8_ops", fp8);
        json_object_set_new(root, "fp8_check", fp8b);
        json_object_set_new(root, "output", outp ? json_string(outp) : json_null());
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        fputc('\n', stdout);
        json_decref(root);
    } else {
        printf("kvfleet calibrate: %s from %s\n", gpu.name, profiles);
        printf("shapes of %d models (%s); ", n_models,
               strcmp(models_arg, "all") == 0 ? "every preset" : models_arg);
        if (checkp != NULL)
            printf("checking %s on every row (nothing fitted); errors in %% of the measured "
                   "time\n",
                   checkp);
        else if (k_every >= 2)
            printf("1 row in %d held out; errors in %% of the measured time\n", k_every);
        else
            printf("nothing held out; errors in %% of the measured time\n");
        printf("%-14s %6s %5s %5s %8s %8s %8s  %s\n", "op", "train", "test", "knots", "median%",
               "p95%", "train%", "source");
        for (op = 0; op < PERF_N_OPS; op++)
            print_row(perf_op_name((enum perf_op)op), &rep.op[op]);
        print_row("step", &rep.step);
        printf("step_base_s %.4g, step_per_seq_s %.4g, step_tp_s %.4g\n", cal.step_base_s,
               cal.step_per_seq_s, cal.step_tp_s);
        printf("%s\n", checkp != NULL ? "fp8 weights (the sets a run uses: fp8 sets, or bf16 "
                                        "at the fp8 peak):"
                                      : "fp8 weights (GEMM fp8 sets, fitted on the fp8 rows at "
                                        "the fp8 peak):");
        for (op = 0; op < PERF_N_OPS; op++)
            if (rep.fp8[op].fitted || rep.fp8[op].n_test > 0)
                print_row(perf_op_name((enum perf_op)op), &rep.fp8[op]);
        if (checkp == NULL) {
            printf("check: the bf16 sets at the fp8 peak on the same held-out fp8 rows:\n");
            for (op = 0; op < PERF_N_OPS; op++)
                if (rep.fp8_bf16[op].n_test > 0)
                    print_row(perf_op_name((enum perf_op)op), &rep.fp8_bf16[op]);
        }
        if (outp != NULL)
            printf("wrote %s\n", outp);
    }
    return 0;

input_error:
    sim_err_format(&err, msg, sizeof msg);
    fprintf(stderr, "kvfleet calibrate: %s\n", msg);
    return 1;
runtime_error:
    sim_err_format(&err, msg, sizeof msg);
    fprintf(stderr, "kvfleet calibrate: %s\n", msg);
    return 3;
}
