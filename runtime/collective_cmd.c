/* collective_cmd.c: `kvfleet collective`.
 *
 *   kvfleet collective --op OP --bytes N --gpus K [--nodes M] --gpu G
 *                      [--topology T] [--calibration FILE|none] [--json]
 * prints the predicted time, the algorithm chosen and the nccl-tests bus
 * bandwidth of one collective;
 *   kvfleet collective --fit CSV --gpu G [--source LIST] [--topology T] [-o FILE] [--json]
 * fits the calibration on the CSV's "fit" rows of that GPU and prints the
 * error on its "holdout" rows per (source, op, gpus, nodes); and
 *   kvfleet collective --check CSV --gpu G [--source LIST] [--calibration FILE|none] [--json]
 * prints the same errors for an existing calibration.
 *
 * --source LIST (comma-separated prefixes of the CSV's source column) keeps
 * only the rows of matching sources. It is also a priority order for the
 * fit: each op's single-node rows, and its multi-node rows, come from the
 * first listed source that has such rows, so two software stacks (say
 * aiconfigurator's NCCL 2.29.2 and Vidur's older runs) are never averaged
 * into one curve. The error tables always report each source apart.
 *
 * The CSV is data/profiles/nccl/nccl.csv's format:
 * source,gpu,op,gpus,nodes,bytes,time_s,set. Non-goals: running NCCL. */
#include "config.h"
#include "collective_cmd.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>

#include "cli.h"
#include "collective.h"
#include "datadir.h"
#include "hw.h"
#include "mem.h"
#include "num.h"

#define CMD "kvfleet collective"

static void usage(FILE *f) {
    fprintf(f,
            "usage: kvfleet collective --op allreduce|allgather|reducescatter|sendrecv\n"
            "                          --bytes N --gpus K [--nodes M] --gpu G\n"
            "                          [--topology T] [--calibration FILE|none] [--json]\n"
            "       kvfleet collective --fit CSV --gpu G [--source LIST] [--topology T]\n"
            "                          [-o FILE] [--json]\n"
            "       kvfleet collective --check CSV --gpu G [--source LIST] [--topology T]\n"
            "                          [--calibration FILE|none] [--json]\n\n"
            "  --op OP           the collective (bytes as nccl-tests: the whole buffer for\n"
            "                    allreduce, the gathered output for allgather, the input for\n"
            "                    reducescatter, the message for sendrecv)\n"
            "  --bytes N         size; suffixes K M G T and KiB MiB GiB TiB (x1024), KB MB GB TB\n"
            "                    (x1000)\n"
            "  --gpus K          GPUs taking part (sendrecv: 2)\n"
            "  --nodes M         nodes they span, dividing K (default 1)\n"
            "  --gpu G           GPU preset (data/gpus/) or path\n"
            "  --topology T      node topology (data/links/nodes/) or path; default: the GPU\n"
            "                    preset's standard server\n"
            "  --calibration F   collective calibration (default: data/calib/nccl-GPU.json when\n"
            "                    it exists; 'none': datasheet alpha-beta)\n"
            "  --fit CSV         fit a calibration on the CSV's fit rows, report held-out error\n"
            "  --check CSV       report the calibration's error on the CSV's holdout rows\n"
            "  --source LIST     comma-separated source prefixes (e.g. aic-nccl,vidur-h100):\n"
            "                    only their rows; for --fit each op's single-node and\n"
            "                    multi-node rows come from the first listed source having them\n"
            "  -o FILE           where --fit writes the calibration\n"
            "  --json            one JSON object on stdout\n");
}

/* ---- byte counts ---- */

/* Divides the decimal number held as the digits dig[0..n) by d, in place,
 * k times (none when k <= 0); 1 when no division leaves a remainder, else 0
 * (dig then holds a partial quotient). */
static int dec_divide(char *dig, size_t n, int d, long k) {
    for (; k > 0; k--) {
        int r = 0;
        size_t i;
        for (i = 0; i < n; i++) {
            int x = r * 10 + (dig[i] - '0');
            dig[i] = (char)('0' + x / d);
            r = x % d;
        }
        if (r != 0)
            return 0;
    }
    return 1;
}

/* The number s[0..n) times 2^p2 * 5^p5 as a whole number, read from its
 * digits exactly: a double reads 1.001KB as 1000.9999999999999 and
 * 0.1K as 102.40000000000001. s is unsigned decimal text of sim_strtod's
 * form (digits, an optional point and fraction, an optional exponent; a
 * leading '+' is skipped). SIM_OK with *out, or SIM_EINVAL when the value
 * is not whole or is beyond INT64_MAX. */
static int dec_whole(const char *s, size_t n, int p2, int p5, int64_t *out) {
    char dig[128]; /* significant digits; a whole value below 2^63 needs < 64 */
    size_t nd = 0, i;
    long e = 0, zeros = 0; /* value = dig x 10^e; zeros: pending after dig */
    int frac = 0;
    int64_t w = 0;
    for (i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '.')
            frac = 1;
        else if (ch == 'e' || ch == 'E') {
            e += strtol(s + i + 1, NULL, 10);
            break;
        } else if (isdigit((unsigned char)ch)) {
            e -= frac;
            if (ch == '0') {
                zeros += nd > 0; /* a leading zero is dropped */
                continue;
            }
            if (nd + (size_t)zeros + 1 > sizeof dig)
                return SIM_EINVAL;
            for (; zeros > 0; zeros--)
                dig[nd++] = '0';
            dig[nd++] = ch;
        }
    }
    e += zeros; /* trailing zeros are kept as a power of ten */
    if (!dec_divide(dig, nd, 2, -(e + p2)) || !dec_divide(dig, nd, 5, -(e + p5)))
        return SIM_EINVAL;
    for (i = 0; i < nd; i++) {
        int d = dig[i] - '0';
        if (w > (INT64_MAX - d) / 10)
            return SIM_EINVAL;
        w = w * 10 + d;
    }
    for (i = 0; w > 0 && (long)i < e + p2; i++) {
        if (w > INT64_MAX / 2)
            return SIM_EINVAL;
        w *= 2;
    }
    for (i = 0; w > 0 && (long)i < e + p5; i++) {
        if (w > INT64_MAX / 5)
            return SIM_EINVAL;
        w *= 5;
    }
    *out = w;
    return SIM_OK;
}

int rt_parse_bytes(const char *s, int64_t *out) {
    /* each multiplier as 2^p2 x 5^p5 */
    static const struct {
        const char *suf;
        int p2, p5;
    } sufs[] = {{"", 0, 0},   {"B", 0, 0},    {"K", 10, 0},   {"KiB", 10, 0}, {"KB", 3, 3},
                {"M", 20, 0}, {"MiB", 20, 0}, {"MB", 6, 6},   {"G", 30, 0},   {"GiB", 30, 0},
                {"GB", 9, 9}, {"T", 40, 0},   {"TiB", 40, 0}, {"TB", 12, 12}};
    char *end;
    double v;
    int64_t w;
    size_t i;
    int range;
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return SIM_EPARSE;
    errno = 0;
    v = sim_strtod(s, &end);
    range = errno == ERANGE;
    if (end == s)
        return SIM_EPARSE;
    for (i = 0; i < sizeof sufs / sizeof sufs[0]; i++)
        if (strcmp(end, sufs[i].suf) == 0) {
            /* of the right form from here: a value beyond a double (before
             * or after the suffix), below 1, not whole or beyond 64 bits
             * is out of range; the double only bounds the exact reading */
            double mul = ldexp(pow(5, sufs[i].p5), sufs[i].p2);
            if (range || !(v * mul < 1e20) || !(v > 0))
                return SIM_EINVAL;
            if (dec_whole(s, (size_t)(end - s), sufs[i].p2, sufs[i].p5, &w) != SIM_OK || w < 1)
                return SIM_EINVAL;
            *out = w;
            return SIM_OK;
        }
    return SIM_EPARSE;
}

/* Integer option value; -1000000001 when it is not an integer (usage
 * error; the range is checked later, as bad input). */
static long parse_long(const char *s) {
    long long v;
    return rt_parse_int(s, -1000000000, 1000000000, &v) == 0 ? (long)v : -1000000001;
}

/* --gpus and --nodes: an integer in 1..COLL_MAX_COUNT into *out, 0; else
 * the exit code, printed: 2 for a value not an integer, 1 for one out of
 * range (beyond long long too). */
#define COLL_MAX_COUNT 1000000000LL
static int parse_count(const char *name, const char *s, long *out) {
    long long v;
    int prc = rt_parse_int(s, 1, COLL_MAX_COUNT, &v);
    if (prc != 0) {
        fprintf(stderr, CMD ": %s: expected %s from 1 to %lld, got '%s'\n", name,
                prc == -2 ? "a count" : "an integer", COLL_MAX_COUNT, s);
        return rt_value_exit(prc);
    }
    *out = (long)v;
    return 0;
}

/* The options that take a value (rt_arg_refuse: a trailing one lacks it; any
 * other is unknown). */
static const char *const coll_value_opts[] = {
    "--op",  "--bytes", "--gpus",   "--nodes", "--gpu",    "--topology", "--calibration",
    "--fit", "--check", "--source", "-o",      "--output", NULL};

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int report_err(const sim_err *e, int code) {
    char buf[1200];
    sim_err_format(e, buf, sizeof buf);
    fprintf(stderr, CMD ": %s\n", buf);
    return code;
}

/* ---- the CSV of measurements ---- */

#define MAX_SOURCES 32

typedef struct rows {
    coll_sample *s;
    int *holdout; /* 1: held out */
    int *src;     /* index into name[] */
    int n, cap;
    char name[MAX_SOURCES][64]; /* distinct sources, in order of appearance */
    int n_src;
} rows;

/* The --source prefixes, in priority order (n 0: every source). */
typedef struct src_sel {
    char pre[8][64];
    int n;
} src_sel;

/* Rank of source name under sel: the first matching prefix, or -1. */
static int src_rank(const src_sel *sel, const char *name) {
    int i;
    if (sel->n == 0)
        return 0;
    for (i = 0; i < sel->n; i++)
        if (strncmp(name, sel->pre[i], strlen(sel->pre[i])) == 0)
            return i;
    return -1;
}

/* Parses a comma-separated --source list; 0 or 2 (usage). */
static int parse_sources(const char *s, src_sel *sel) {
    const char *all = s; /* the whole list, for the message */
    memset(sel, 0, sizeof *sel);
    if (*s == '\0') { /* '' is a mistake (an unset variable), not "no filter" */
        fprintf(stderr, CMD ": --source: expected 1 to 8 comma-separated non-empty prefixes of at "
                            "most 63 bytes, got ''\n");
        return 2;
    }
    while (*s) {
        size_t len = strcspn(s, ",");
        if (len == 0 || len >= sizeof sel->pre[0] || sel->n == 8) {
            fprintf(stderr,
                    CMD ": --source: expected 1 to 8 comma-separated non-empty prefixes of at "
                        "most 63 bytes, got '%s'\n",
                    all);
            return 2;
        }
        memcpy(sel->pre[sel->n], s, len);
        sel->pre[sel->n][len] = '\0';
        sel->n++;
        s += len;
        if (*s == ',' && *++s == '\0') {
            fprintf(stderr, CMD ": --source: expected a prefix after ',', got nothing\n");
            return 2;
        }
    }
    return 0;
}

/* A CSV field as a decimal number; NaN when it is not one (the row check
 * refuses it). */
static double csv_real(const char *f) {
    char *end;
    double v = sim_strtod(f, &end);
    return end != f && *end == '\0' ? v : NAN;
}

/* Reads the rows of gpu from path. Exit code style: 0, 1 bad input, 3 I/O. */
static int read_csv(const char *path, const char *gpu, rows *r) {
    FILE *f = fopen(path, "r");
    char line[1024];
    long ln = 0;
    if (f == NULL) {
        fprintf(stderr, CMD ": %s: expected a readable CSV file: %s\n", path, strerror(errno));
        return 1;
    }
    while (fgets(line, sizeof line, f)) {
        char *fld[8], *p = line;
        int k = 0;
        coll_sample s;
        ln++;
        line[strcspn(line, "\r\n")] = '\0';
        if (ln == 1)
            continue; /* header */
        if (line[0] == '\0')
            continue;
        while (k < 8) {
            fld[k++] = p;
            p = strchr(p, ',');
            if (p == NULL)
                break;
            *p++ = '\0';
        }
        if (k != 8 || p != NULL) {
            fprintf(stderr,
                    CMD ": %s:%ld: row: expected 8 fields "
                        "(source,gpu,op,gpus,nodes,bytes,time_s,set), got %d\n",
                    path, ln, k);
            fclose(f);
            return 1;
        }
        if (strcmp(fld[1], gpu) != 0)
            continue;
        memset(&s, 0, sizeof s);
        s.gpus = (int)parse_long(fld[3]);
        s.nodes = (int)parse_long(fld[4]);
        s.bytes = csv_real(fld[5]);
        s.time_s = csv_real(fld[6]);
        if (coll_op_parse(fld[2], &s.op) != SIM_OK || s.gpus < 1 || s.nodes < 1 || !(s.bytes > 0) ||
            !(s.time_s > 0) || (strcmp(fld[7], "fit") != 0 && strcmp(fld[7], "holdout") != 0)) {
            fprintf(stderr,
                    CMD ": %s:%ld: row: expected a known op, gpus and nodes >= 1, bytes and "
                        "time_s > 0, set fit|holdout, got '%s,%s,%s,%s,%s,%s'\n",
                    path, ln, fld[2], fld[3], fld[4], fld[5], fld[6], fld[7]);
            fclose(f);
            return 1;
        }
        if (r->n == r->cap) {
            int nc = r->cap ? 2 * r->cap : 256;
            coll_sample *ns = sim_realloc(r->s, (size_t)nc * sizeof *ns);
            int *nh, *nsrc;
            if (ns == NULL) {
                fclose(f);
                return 3;
            }
            r->s = ns;
            nh = sim_realloc(r->holdout, (size_t)nc * sizeof *nh);
            if (nh == NULL) {
                fclose(f);
                return 3;
            }
            r->holdout = nh;
            nsrc = sim_realloc(r->src, (size_t)nc * sizeof *nsrc);
            if (nsrc == NULL) {
                fclose(f);
                return 3;
            }
            r->src = nsrc;
            r->cap = nc;
        }
        {
            int q;
            for (q = 0; q < r->n_src && strcmp(r->name[q], fld[0]) != 0; q++)
                ;
            if (q == r->n_src) {
                if (r->n_src == MAX_SOURCES || strlen(fld[0]) >= sizeof r->name[0]) {
                    fprintf(stderr,
                            CMD ": %s:%ld: source: expected at most %d distinct sources of at "
                                "most 63 bytes, got '%s'\n",
                            path, ln, MAX_SOURCES, fld[0]);
                    fclose(f);
                    return 1;
                }
                snprintf(r->name[r->n_src++], sizeof r->name[0], "%s", fld[0]);
            }
            r->src[r->n] = q;
        }
        r->s[r->n] = s;
        r->holdout[r->n] = strcmp(fld[7], "holdout") == 0;
        r->n++;
    }
    fclose(f);
    if (r->n == 0) {
        fprintf(stderr, CMD ": %s: gpu: expected rows for '%s', got none\n", path, gpu);
        return 1;
    }
    return 0;
}

/* Prints |relative error| on the holdout rows of the selected sources, per
 * (source, op, gpus, nodes). */
static int print_errors(const rows *r, const src_sel *sel, const coll_topo *t, const coll_calib *c,
                        int json) {
    double *e = SIM_NEW_ARRAY(double, (size_t)r->n + 1);
    int i, op, k, first = 1;
    if (e == NULL)
        return 3;
    if (json)
        printf("{\"holdout\": [");
    else
        printf("%-16s %-14s %5s %5s %5s %10s %10s\n", "source", "op", "gpus", "nodes", "rows",
               "median|e|", "p95|e|");
    for (k = 0; k < r->n_src; k++) {
        if (src_rank(sel, r->name[k]) < 0)
            continue;
        for (op = 0; op < COLL_N_OPS; op++) {
            int gpus, nodes;
            for (gpus = 1; gpus <= 1024; gpus *= 2)
                for (nodes = 1; nodes <= gpus; nodes *= 2) {
                    int m = 0;
                    double med, p95;
                    for (i = 0; i < r->n; i++) {
                        const coll_sample *s = &r->s[i];
                        double tp;
                        if (!r->holdout[i] || r->src[i] != k || s->op != (coll_op)op ||
                            s->gpus != gpus || s->nodes != nodes)
                            continue;
                        if (coll_time(s->op, s->bytes, s->gpus, s->nodes, t, c, &tp, NULL, NULL) !=
                            SIM_OK)
                            continue;
                        e[m++] = fabs(tp - s->time_s) / s->time_s;
                    }
                    if (m == 0)
                        continue;
                    gsl_sort(e, 1, (size_t)m);
                    med = gsl_stats_median_from_sorted_data(e, 1, (size_t)m);
                    p95 = gsl_stats_quantile_from_sorted_data(e, 1, (size_t)m, 0.95);
                    if (json)
                        printf("%s{\"source\": \"%s\", \"op\": \"%s\", \"gpus\": %d, \"nodes\": "
                               "%d, \"rows\": %d, \"median_abs_rel_err\": %.4f, "
                               "\"p95_abs_rel_err\": %.4f}",
                               first ? "" : ", ", r->name[k], coll_op_name((coll_op)op), gpus,
                               nodes, m, med, p95);
                    else
                        printf("%-16s %-14s %5d %5d %5d %9.1f%% %9.1f%%\n", r->name[k],
                               coll_op_name((coll_op)op), gpus, nodes, m, 100 * med, 100 * p95);
                    first = 0;
                }
        }
    }
    if (json)
        printf("]}\n");
    sim_free(e);
    return 0;
}

/* Copies into fs the fit rows that --source selects: of each op's
 * single-node rows, and of its multi-node rows, those of the best-ranked
 * source that has any. Returns how many. */
static int select_fit_rows(const rows *r, const src_sel *sel, coll_sample *fs) {
    int best[COLL_N_OPS][2], i, m = 0;
    for (i = 0; i < COLL_N_OPS; i++)
        best[i][0] = best[i][1] = -1;
    for (i = 0; i < r->n; i++) {
        int rk = src_rank(sel, r->name[r->src[i]]), *b = &best[r->s[i].op][r->s[i].nodes > 1];
        if (!r->holdout[i] && rk >= 0 && (*b < 0 || rk < *b))
            *b = rk;
    }
    for (i = 0; i < r->n; i++) {
        int rk = src_rank(sel, r->name[r->src[i]]);
        /* rk >= 0: a row of no selected source is never fitted (it once
         * matched the -1 of an operator no selected source has) */
        if (!r->holdout[i] && rk >= 0 && rk == best[r->s[i].op][r->s[i].nodes > 1])
            fs[m++] = r->s[i];
    }
    return m;
}

/* ---- main ---- */

int rt_main_collective(int argc, char **argv) {
    const char *op_s = NULL, *bytes_s = NULL, *gpu_name = NULL, *topo_name = NULL;
    const char *calib = NULL, *fit_csv = NULL, *check_csv = NULL, *out = NULL, *src_s = NULL;
    const char *datadir = rt_datadir();
    long gpus = 0, nodes = 1;
    int json = 0, have_gpus = 0, i, rc, code = 0;
    char cpath[4096], calib_src[4096];
    sim_gpu g;
    coll_topo t;
    coll_calib c;
    sim_err err;
    src_sel sel;
    rows r;

    memset(&r, 0, sizeof r);
    memset(&sel, 0, sizeof sel);
    sim_err_clear(&err);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = rt_has_value(argc, argv, i);
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--op") == 0 && has_val) {
            op_s = argv[++i];
        } else if (strcmp(a, "--bytes") == 0 && has_val) {
            bytes_s = argv[++i];
        } else if (strcmp(a, "--gpus") == 0 && has_val) {
            if ((rc = parse_count("--gpus", argv[++i], &gpus)) != 0)
                return rc;
            have_gpus = 1;
        } else if (strcmp(a, "--nodes") == 0 && has_val) {
            if ((rc = parse_count("--nodes", argv[++i], &nodes)) != 0)
                return rc;
        } else if (strcmp(a, "--gpu") == 0 && has_val) {
            gpu_name = argv[++i];
        } else if (strcmp(a, "--topology") == 0 && has_val) {
            topo_name = argv[++i];
        } else if (strcmp(a, "--calibration") == 0 && has_val) {
            calib = argv[++i];
        } else if (strcmp(a, "--fit") == 0 && has_val) {
            fit_csv = argv[++i];
        } else if (strcmp(a, "--check") == 0 && has_val) {
            check_csv = argv[++i];
        } else if (strcmp(a, "--source") == 0 && has_val) {
            src_s = argv[++i];
            if (parse_sources(src_s, &sel) != 0)
                return 2;
        } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && has_val) {
            out = argv[++i];
        } else {
            rt_arg_refuse(CMD, a, coll_value_opts);
            usage(stderr);
            return 2;
        }
    }
    if (gpu_name == NULL) {
        fprintf(stderr, CMD ": --gpu: expected a GPU preset name, got nothing\n");
        usage(stderr);
        return 2;
    }
    if (fit_csv == NULL && check_csv == NULL && (op_s == NULL || bytes_s == NULL || !have_gpus)) {
        fprintf(stderr, CMD ": %s: expected a value, got nothing\n",
                op_s == NULL      ? "--op"
                : bytes_s == NULL ? "--bytes"
                                  : "--gpus");
        usage(stderr);
        return 2;
    }
    if (fit_csv != NULL && check_csv != NULL) {
        fprintf(stderr, CMD ": --fit and --check: expected one of them, got both\n");
        return 2;
    }

    /* GPU, topology, calibration */
    rc = sim_gpu_load(gpu_name, datadir, &g, &err);
    if (rc != SIM_OK)
        return report_err(&err, rc == SIM_EIO || rc == SIM_ENOMEM ? 3 : 1);
    if (topo_name != NULL) {
        rc = coll_topo_load(topo_name, datadir, &t, &err);
        if (rc != SIM_OK)
            return report_err(&err, rc == SIM_EIO || rc == SIM_ENOMEM ? 3 : 1);
    } else {
        coll_topo_from_gpu(&g, &t);
    }
    coll_calib_default(&t, &c);
    snprintf(calib_src, sizeof calib_src, "none");
    if (fit_csv == NULL) {
        if (calib == NULL) {
            snprintf(cpath, sizeof cpath, "%s/calib/nccl-%s.json", datadir, g.name);
            if (file_exists(cpath))
                calib = cpath;
        }
        if (calib != NULL && strcmp(calib, "none") != 0) {
            rc = coll_calib_load(calib, &c, &err);
            if (rc != SIM_OK)
                return report_err(&err, rc == SIM_EIO || rc == SIM_ENOMEM ? 3 : 1);
            snprintf(calib_src, sizeof calib_src, "%s", calib);
        }
    }

    if (fit_csv != NULL || check_csv != NULL) {
        code = read_csv(fit_csv ? fit_csv : check_csv, g.name, &r);
        if (code != 0)
            goto done;
        if (sel.n > 0) { /* a filter that keeps nothing is a mistake, as no rows are */
            int k;
            for (k = 0; k < r.n_src && src_rank(&sel, r.name[k]) < 0; k++)
                ;
            if (k == r.n_src) {
                fprintf(stderr,
                        CMD ": %s: --source: expected a prefix of a source of its %s rows (",
                        fit_csv ? fit_csv : check_csv, g.name);
                for (k = 0; k < r.n_src; k++)
                    fprintf(stderr, "%s%s", k ? ", " : "", r.name[k]);
                fprintf(stderr, "), got prefixes that match none\n");
                code = 1;
                goto done;
            }
        }
        if (fit_csv != NULL) {
            coll_sample *fs = SIM_NEW_ARRAY(coll_sample, (size_t)r.n);
            int m;
            char command[1024];
            if (fs == NULL) {
                code = 3;
                goto done;
            }
            m = select_fit_rows(&r, &sel, fs);
            rc = coll_fit(fs, m, &t, &c, &err);
            sim_free(fs);
            if (rc != SIM_OK) {
                code = report_err(&err, rc == SIM_ENOMEM ? 3 : 1);
                goto done;
            }
            if (out != NULL) {
                snprintf(command, sizeof command, "kvfleet collective --fit %s --gpu %s%s%s -o %s",
                         fit_csv, gpu_name, src_s ? " --source " : "", src_s ? src_s : "", out);
                rc = coll_calib_save(out, &c, g.name, command, &err);
                if (rc != SIM_OK) {
                    code = report_err(&err, 3);
                    goto done;
                }
            }
        }
        code = print_errors(&r, &sel, &t, &c, json);
        goto done;
    }

    /* one collective */
    {
        coll_op op;
        coll_algo algo;
        coll_proto proto;
        double bytes, ts, busbw;
        int64_t nbytes;
        coll_plan p;
        if (coll_op_parse(op_s, &op) != SIM_OK) {
            fprintf(stderr,
                    CMD ": --op: expected one of allreduce, allgather, reducescatter, sendrecv, "
                        "got '%s'\n",
                    op_s);
            code = 1;
            goto done;
        }
        if ((rc = rt_parse_bytes(bytes_s, &nbytes)) != SIM_OK) {
            fprintf(stderr, CMD ": --bytes: expected %s, got '%s'\n",
                    rc == SIM_EINVAL ? "a whole number of bytes from 1 to 2^63-1 "
                                       "(9223372036854775807)"
                                     : "a decimal number with an optional suffix (K, M, G, "
                                       "KiB, MB, ...)",
                    bytes_s);
            code = rc == SIM_EINVAL ? 1 : 2;
            goto done;
        }
        bytes = (double)nbytes; /* the model's; nbytes is echoed exactly */
        rc = coll_plan_init(&p, op, (int)gpus, (int)nodes, &t, &c, &err);
        if (rc != SIM_OK) {
            code = report_err(&err, 1);
            goto done;
        }
        ts = coll_plan_time_proto(&p, bytes, &algo, &proto);
        busbw = ts > 0 ? bytes / ts * p.busbw_factor : 0;
        if (json) { /* no time (one GPU moves nothing): the bandwidths are undefined, null */
            char bus[32] = "null", alg[32] = "null";
            if (ts > 0) {
                snprintf(bus, sizeof bus, "%.6g", busbw / 1e9);
                snprintf(alg, sizeof alg, "%.6g", bytes / ts / 1e9);
            }
            printf("{\"time_s\": %.9g, \"algorithm\": \"%s\", \"protocol\": \"%s\", "
                   "\"busbw_gbps\": %s, \"algbw_gbps\": %s, \"op\": \"%s\", \"bytes\": %" PRId64
                   ", "
                   "\"gpus\": %ld, \"nodes\": %ld, \"gpu\": \"%s\", \"topology\": \"%s\", "
                   "\"calibration\": \"%s\"}\n",
                   ts, coll_algo_name(algo), coll_proto_name(proto), bus, alg, coll_op_name(op),
                   nbytes, gpus, nodes, g.name, t.name, calib_src);
        } else if (ts > 0)
            printf("%s of %" PRId64 " bytes on %ld GPU%s (%ld node%s, %s): %.3f us, %s/%s, bus "
                   "bandwidth %.1f GB/s\n",
                   coll_op_name(op), nbytes, gpus, gpus > 1 ? "s" : "", nodes, nodes > 1 ? "s" : "",
                   t.name, ts * 1e6, coll_algo_name(algo), coll_proto_name(proto), busbw / 1e9);
        else
            printf("%s of %" PRId64 " bytes on %ld GPU%s (%ld node%s, %s): no time, nothing "
                   "moves (bus bandwidth undefined)\n",
                   coll_op_name(op), nbytes, gpus, gpus > 1 ? "s" : "", nodes, nodes > 1 ? "s" : "",
                   t.name);
    }
done:
    sim_free(r.s);
    sim_free(r.holdout);
    sim_free(r.src);
    return code;
}
