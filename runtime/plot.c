/* plot.c: `kvfleet plot` (see plot.h): options, the results file, the
 * helpers every kind shares, and running gnuplot.
 *
 * A figure is one gnuplot script, built in memory: the terminal and output
 * lines chosen from -o's extension, then whatever the kind appends (its data
 * as inline `$block << EOD` blocks, so the script stands alone and --script
 * can save it for restyling). The script goes to a temporary file that is
 * removed afterwards; gnuplot runs as a child process with its stderr
 * collected and shown only when it fails. The gnuplot binary is
 * $KVFLEET_GNUPLOT, else the one configure found, else `gnuplot` on PATH.
 *
 * The results file is opened by store_open_read (read-write but query-only:
 * a read-only connection could not roll back the journal a killed writer
 * leaves behind). Nothing here writes to it.
 *
 * Non-goals: interactive terminals, any format but PNG and SVG, and figures
 * from files other than kvfleet results files. */
#include "config.h"
#include "plot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "fileio.h"
#include "mem.h"
#include "plot_int.h"
#include "store.h"

/* Longest title line (bytes) before the common configuration is broken
 * into lines at its "; " separators. */
#define PLOT_TITLE_CHARS 100

/* ---- text buffer ---- */

void plot__printf(plot_buf *b, const char *fmt, ...) {
    va_list ap;
    int len;
    if (b->oom)
        return;
    va_start(ap, fmt);
    len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0) {
        b->oom = 1;
        return;
    }
    if (b->n + (size_t)len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *s;
        while (cap < b->n + (size_t)len + 1)
            cap *= 2;
        s = sim_realloc(b->s, cap);
        if (s == NULL) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)len;
}

/* plot__quote of the first n bytes of s. */
static void quote_n(plot_buf *b, const char *s, size_t n) {
    const char *p;
    /* double quotes, with \ and " escaped: gnuplot reads a single-quoted
     * string that starts with a doubled quote as an empty string followed
     * by a stray token. A backquote is written as the octal escape \140:
     * gnuplot runs `...` as a shell command even inside double quotes
     * (substitution comes before the string is read), and a title or a
     * model name from a results file must never run anything. '@' needs
     * nothing: macros are not expanded inside quotes. */
    plot__printf(b, "\"");
    for (p = s; p < s + n && *p; p++) {
        if (*p == '`')
            plot__printf(b, "\\140");
        else if (*p == '"' || *p == '\\')
            plot__printf(b, "\\%c", *p);
        else if (plot__is_control(*p))
            plot__printf(b, " "); /* a newline would end the command */
        else
            plot__printf(b, "%c", *p);
    }
    plot__printf(b, "\"");
}

void plot__quote(plot_buf *b, const char *s) {
    quote_n(b, s, strlen(s));
}

int plot__is_control(char ch) {
    unsigned char u = (unsigned char)ch;
    return u < 0x20 || u == 0x7f;
}

void plot__comment(plot_buf *b, const char *s) {
    const char *p;
    /* a comment ends at the newline: any control character becomes '?',
     * so text from the command line (a results file's name) stays in it */
    for (p = s; *p; p++)
        plot__printf(b, "%c", plot__is_control(*p) ? '?' : *p);
}

void plot__buf_fini(plot_buf *b) {
    sim_free(b->s);
    memset(b, 0, sizeof *b);
}

/* ---- the results file ---- */

int plot__db_fail(plot_ctx *c, const char *what) {
    sim_err_set(c->err, c->db_path, 0, 0, "%s: %s", what, sqlite3_errmsg(c->db));
    return SIM_EDB;
}

json_t *plot__run_config(plot_ctx *c, int64_t run_id) {
    sqlite3_stmt *st = NULL;
    json_t *cfg = NULL;
    if (sqlite3_prepare_v2(c->db, "SELECT config FROM runs WHERE run_id = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return NULL;
    sqlite3_bind_int64(st, 1, run_id);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != NULL) {
        cfg = json_loads((const char *)sqlite3_column_text(st, 0), 0, NULL);
        if (cfg != NULL && !json_is_object(cfg)) {
            json_decref(cfg);
            cfg = NULL;
        }
    }
    sqlite3_finalize(st);
    return cfg;
}

int plot__run_exists(plot_ctx *c, int64_t run_id) {
    sqlite3_stmt *st = NULL;
    int found;
    if (sqlite3_prepare_v2(c->db, "SELECT 1 FROM runs WHERE run_id = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return plot__db_fail(c, "runs");
    sqlite3_bind_int64(st, 1, run_id);
    found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    if (!found) {
        sim_err_set(c->err, c->db_path, 0, 0,
                    "--run: expected a run_id of the file (SELECT run_id FROM runs), got '%lld'",
                    (long long)run_id);
        return SIM_EINVAL;
    }
    return SIM_OK;
}

/* The value of key if every config has the same one, else NULL (borrowed). */
static json_t *common_value(json_t *const *cfgs, size_t n, const char *key) {
    json_t *v;
    size_t i;
    if (n == 0 || (v = json_object_get(cfgs[0], key)) == NULL)
        return NULL;
    for (i = 1; i < n; i++)
        if (!json_equal(v, json_object_get(cfgs[i], key)))
            return NULL;
    return v;
}

void plot__config_common(json_t *const *cfgs, size_t n, plot_buf *out) {
    json_t *model = common_value(cfgs, n, "model"), *gpu = common_value(cfgs, n, "gpu");
    json_t *tp = common_value(cfgs, n, "tp"), *rep = common_value(cfgs, n, "replicas");
    json_t *pol = common_value(cfgs, n, "policy"), *dt = common_value(cfgs, n, "dtype");
    json_t *be = common_value(cfgs, n, "backend");
    const char *sep = "";
    if (json_is_string(model) && json_is_string(gpu)) {
        plot__printf(out, "%s on %s", json_string_value(model), json_string_value(gpu));
        sep = ", ";
    } else if (json_is_string(model)) {
        plot__printf(out, "model %s", json_string_value(model));
        sep = ", ";
    } else if (json_is_string(gpu)) {
        plot__printf(out, "GPU %s", json_string_value(gpu));
        sep = ", ";
    }
    if (json_is_string(dt) && json_string_length(dt) > 0) {
        plot__printf(out, "%s%s", sep, json_string_value(dt));
        sep = ", ";
    }
    if (json_is_integer(tp)) {
        plot__printf(out, "%sTP %lld", sep, (long long)json_integer_value(tp));
        sep = ", ";
    }
    if (json_is_integer(rep)) {
        long long r = (long long)json_integer_value(rep);
        plot__printf(out, "%s%lld replica%s", sep, r, r == 1 ? "" : "s");
        sep = ", ";
    }
    if (json_is_string(pol)) {
        if (strcmp(json_string_value(pol), "none") == 0)
            plot__printf(out, "%sno prefix cache", sep);
        else
            plot__printf(out, "%spolicy %s", sep, json_string_value(pol));
        sep = ", ";
    }
    if (json_is_string(be) && strcmp(json_string_value(be), "sim") != 0)
        plot__printf(out, "%sbackend %s", sep, json_string_value(be));
}

void plot__title(plot_ctx *c, const char *what, const char *common) {
    plot__printf(c->gp, "set title ");
    plot__title_expr(c, what, common);
    plot__printf(c->gp, "\n");
}

/* Appends common as a string expression, on several title lines when it is
 * longer than PLOT_TITLE_CHARS: each "; " part starts a line (a line of
 * ~100 characters fills the 1000-pixel figure; longer ones were cut). */
static void quote_wrapped(plot_buf *b, const char *common) {
    const char *p = common, *sep;
    if (strlen(common) <= PLOT_TITLE_CHARS) {
        plot__quote(b, common);
        return;
    }
    while ((sep = strstr(p, "; ")) != NULL) {
        quote_n(b, p, (size_t)(sep - p));
        plot__printf(b, ".\"\\n\".");
        p = sep + 2;
    }
    plot__quote(b, p);
}

void plot__title_expr(plot_ctx *c, const char *what, const char *common) {
    if (c->title != NULL) {
        plot__quote(c->gp, c->title);
    } else {
        plot__quote(c->gp, what);
        if (common != NULL && common[0]) {
            plot__printf(c->gp, ".\"\\n\".");
            quote_wrapped(c->gp, common);
        }
    }
}

const char *plot__colour(size_t i) {
    static const char *const colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                          "#9467bd", "#8c564b", "#e377c2", "#17becf"};
    return colours[i % (sizeof colours / sizeof colours[0])];
}

/* ---- running gnuplot ---- */

static const char *gnuplot_path(void) {
    const char *env = getenv("KVFLEET_GNUPLOT");
    if (env != NULL && env[0])
        return env;
#ifdef KV_GNUPLOT
    return KV_GNUPLOT;
#else
    return "gnuplot";
#endif
}

/* Writes text to path; SIM_OK or SIM_EIO with *err set. */
static int write_file(const char *path, const char *text, size_t n, sim_err *err) {
    FILE *f = fopen(path, "w");
    int bad;
    if (f == NULL) {
        sim_err_set(err, path, 0, 0, "cannot write: %s", strerror(errno));
        return SIM_EIO;
    }
    bad = fwrite(text, 1, n, f) != n;
    if (fclose(f) != 0)
        bad = 1;
    if (bad) {
        sim_err_set(err, path, 0, 0, "cannot write: %s", strerror(errno));
        return SIM_EIO;
    }
    return SIM_OK;
}

/* Runs gnuplot on script; returns an exit code (0, or 3 with the reason on stderr). */
static int run_gnuplot(const char *script, size_t n) {
    const char *gp = gnuplot_path();
    char path[4096], msg[4096];
    size_t got = 0;
    int fd, pipefd[2], status = 0, code = RT_EXIT_OK;
    pid_t pid;
    ssize_t r;
    sim_err err;

    snprintf(path, sizeof path, "%s/kvfleet-plot-XXXXXX", sim_tmpdir());
    fd = mkstemp(path);
    if (fd < 0) {
        fprintf(stderr, "kvfleet plot: %s: cannot create a temporary file: %s\n", path,
                strerror(errno));
        return RT_EXIT_RUNTIME;
    }
    close(fd);
    if (write_file(path, script, n, &err) != SIM_OK) {
        fprintf(stderr, "kvfleet plot: %s: %s\n", err.src, err.msg);
        unlink(path);
        return RT_EXIT_RUNTIME;
    }
    if (pipe(pipefd) != 0) {
        fprintf(stderr, "kvfleet plot: pipe: %s\n", strerror(errno));
        unlink(path);
        return RT_EXIT_RUNTIME;
    }
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "kvfleet plot: fork: %s\n", strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        unlink(path);
        return RT_EXIT_RUNTIME;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDOUT_FILENO);
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[0]);
        close(pipefd[1]);
        execlp(gp, gp, path, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    while ((r = read(pipefd[0], msg + got, sizeof msg - 1 - got)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        got += (size_t)r;
        if (got == sizeof msg - 1) { /* keep draining so gnuplot never blocks */
            char sink[512];
            while ((r = read(pipefd[0], sink, sizeof sink)) > 0 || (r < 0 && errno == EINTR))
                ;
            break;
        }
    }
    msg[got] = '\0';
    close(pipefd[0]);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    unlink(path);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
        fprintf(stderr,
                "kvfleet plot: gnuplot not found or not runnable ('%s'): install it (Debian, "
                "Ubuntu: apt-get install gnuplot-nox) or set KVFLEET_GNUPLOT\n",
                gp);
        code = RT_EXIT_RUNTIME;
    } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "kvfleet plot: gnuplot ('%s') failed (%s %d)%s%s", gp,
                WIFEXITED(status) ? "exit status" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
                got ? "; it said:\n" : "; the Debian package is gnuplot-nox\n", msg);
        code = RT_EXIT_RUNTIME;
    }
    return code;
}

/* ---- the command ---- */

typedef struct plot_kind {
    const char *name;
    int (*fn)(plot_ctx *c);
    const char *what;
} plot_kind;

static const plot_kind kinds[] = {
    {"latency-load", plot__latency_load, "TTFT and TPOT p50, p99 against offered load"},
    {"hit-rate", plot__hit_rate, "prefix hit rate against KV cache size, per eviction policy"},
    {"capacity", plot__capacity, "GPUs needed against load, per SLO set"},
    {"timeline", plot__timeline, "batch size, waiting queue and KV utilisation of one run"},
    {"roofline", plot__roofline, "every step on the GPU's roofline"},
    {"validation", plot__validation, "predicted against measured, from kvfleet validate"},
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

static void help(FILE *f) {
    size_t i;
    fprintf(f, "usage: kvfleet plot DB --kind KIND -o FILE.png|FILE.svg [--run ID] [--sweep ID]\n"
               "                    [--title T] [--script FILE] [--quiet]\n\n"
               "Draws a figure from a results file with gnuplot (format from -o's extension).\n\n"
               "kinds:\n");
    for (i = 0; i < N_KINDS; i++)
        fprintf(f, "  %-13s %s\n", kinds[i].name, kinds[i].what);
    fprintf(f, "\n"
               "  --run ID       timeline, roofline, validation: the run (default: the latest "
               "that has the rows)\n"
               "  --sweep ID     latency-load: the sweep (default: the latest); capacity: the "
               "search_id\n"
               "  --title T      the figure's title (default: what it shows and the "
               "configuration)\n"
               "  --script FILE  also write the gnuplot script (data inline) to restyle it\n"
               "  --quiet        no 'wrote FILE' line\n"
               "exit codes: 0 ok, 1 bad input (an unknown kind, a file lacking the rows the "
               "kind needs),\n"
               "  2 usage, 3 gnuplot missing or failing\n"
               "docs/plots.md describes every kind.\n");
}

/* 0, or the exit code of a refused id (printed). */
static int parse_id(const char *opt, const char *text, int64_t *out) {
    long long v;
    int rc = rt_parse_int(text, 1, INT64_MAX, &v);
    if (rc != 0) {
        fprintf(stderr, "kvfleet plot: %s: expected a positive integer id, got '%s'\n", opt, text);
        return rt_value_exit(rc);
    }
    *out = v;
    return 0;
}

/* 1 when a and b name the same file: the same device and inode when both
 * exist (a link or another spelling of the path), else the same text. */
static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    if (strcmp(a, b) == 0)
        return 1;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

/* 0, or exit 1 (printed) when the file name holds a control character:
 * gnuplot would write another name than the one reported, and a newline
 * could end the line it is written on. */
static int check_name(const char *cmd, const char *opt, const char *name) {
    const char *p;
    for (p = name; *p; p++)
        if (plot__is_control(*p)) {
            plot_buf shown;
            memset(&shown, 0, sizeof shown);
            plot__comment(&shown, name);
            fprintf(stderr,
                    "kvfleet %s: %s: expected a file name without control characters "
                    "(newline, tab, ...), got '%s'\n",
                    cmd, opt, shown.s ? shown.s : "?");
            plot__buf_fini(&shown);
            return RT_EXIT_INPUT;
        }
    return 0;
}

/* 0, or exit 1 (printed) when --script holds a control character, -o or
 * --script would overwrite the results file (which is only read), or
 * --script names -o's file. -o itself was checked by rt_plot_check_output. */
static int check_outputs(const char *db_path, const char *out, const char *script) {
    int rc;
    if (script != NULL && (rc = check_name("plot", "--script", script)) != 0)
        return rc;
    if (same_file(out, db_path)) {
        fprintf(stderr,
                "kvfleet plot: -o: expected a file other than the results file (it is only "
                "read), got '%s'\n",
                out);
        return RT_EXIT_INPUT;
    }
    if (script == NULL)
        return 0;
    if (same_file(script, db_path)) {
        fprintf(stderr,
                "kvfleet plot: --script: expected a file other than the results file (it is "
                "only read), got '%s'\n",
                script);
        return RT_EXIT_INPUT;
    }
    if (same_file(script, out)) {
        fprintf(stderr,
                "kvfleet plot: --script: expected a file other than -o's (the figure would "
                "overwrite the script), got '%s'\n",
                script);
        return RT_EXIT_INPUT;
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Checks a figure's file name before anything is drawn, for `plot -o` and
 * every command that draws through plot (`capacity --plot`): it must end
 * .png or .svg (the format comes from it), hold no control character, and
 * lie in a folder that exists and can be written (gnuplot would fail late,
 * with a bare "system error"). Returns 0, or prints why as
 * `kvfleet CMD: OPT: ...` and returns the exit code: 2 for the suffix (not
 * of the value's form), 1 for the name, the folder, or an existing name that
 * is a folder or a file that cannot be written. */
int rt_plot_check_output(const char *cmd, const char *opt, const char *out) {
    char dir[4096];
    int rc;
    if (!ends_with(out, ".png") && !ends_with(out, ".svg")) {
        fprintf(stderr, "kvfleet %s: %s: expected a file name ending .png or .svg, got '%s'\n", cmd,
                opt, out);
        return RT_EXIT_USAGE;
    }
    if ((rc = check_name(cmd, opt, out)) != 0)
        return rc;
    sim_dirname(out, dir, sizeof dir);
    if (access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "kvfleet %s: %s: %s: cannot write into the folder %s: %s\n", cmd, opt, out,
                dir, strerror(errno));
        return RT_EXIT_INPUT;
    }
    { /* an existing name must be a file that can be replaced: gnuplot
       * would fail on a folder only after the search or the query */
        struct stat stt;
        if (stat(out, &stt) == 0 &&
            (S_ISDIR(stt.st_mode) || (S_ISREG(stt.st_mode) && access(out, W_OK) != 0))) {
            fprintf(stderr, "kvfleet %s: %s: %s: cannot write: %s\n", cmd, opt, out,
                    S_ISDIR(stt.st_mode) ? strerror(EISDIR) : strerror(errno));
            return RT_EXIT_INPUT;
        }
    }
    return 0;
}

int rt_main_plot(int argc, char **argv) {
    const char *db_path = NULL, *kind_name = NULL, *out = NULL, *script = NULL;
    const plot_kind *kind = NULL;
    plot_buf gp, body;
    plot_ctx c;
    sim_err err;
    int i, rc = SIM_OK, code = RT_EXIT_OK, svg, quiet = 0;
    size_t k;

    memset(&gp, 0, sizeof gp);
    memset(&body, 0, sizeof body);
    memset(&c, 0, sizeof c);
    sim_err_clear(&err);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return RT_EXIT_OK;
        }
        if (strcmp(a, "--quiet") == 0) {
            quiet = 1;
            continue;
        }
        if (strcmp(a, "--kind") == 0 || strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0 ||
            strcmp(a, "--run") == 0 || strcmp(a, "--sweep") == 0 || strcmp(a, "--title") == 0 ||
            strcmp(a, "--script") == 0) {
            const char *v;
            if (!rt_has_value(argc, argv, i)) {
                fprintf(stderr, "kvfleet plot: %s: expected a value, got nothing\n", a);
                return RT_EXIT_USAGE;
            }
            v = argv[++i];
            if (strcmp(a, "--kind") == 0)
                kind_name = v;
            else if (strcmp(a, "--run") == 0 || strcmp(a, "--sweep") == 0) {
                int prc = parse_id(a, v, strcmp(a, "--run") == 0 ? &c.run_id : &c.sweep_id);
                if (prc != 0)
                    return prc;
            } else if (strcmp(a, "--title") == 0)
                c.title = v;
            else if (strcmp(a, "--script") == 0)
                script = v;
            else
                out = v;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "kvfleet plot: %s: unknown option (kvfleet plot --help lists them)\n",
                    a);
            return RT_EXIT_USAGE;
        } else if (db_path == NULL) {
            db_path = a;
        } else {
            fprintf(stderr, "kvfleet plot: expected one results file, got '%s' and '%s'\n", db_path,
                    a);
            return RT_EXIT_USAGE;
        }
    }
    if (db_path == NULL) {
        fprintf(stderr, "kvfleet plot: expected a results file: kvfleet plot DB --kind KIND -o "
                        "FILE.png\n");
        return RT_EXIT_USAGE;
    }
    if (kind_name == NULL) {
        fprintf(stderr, "kvfleet plot: --kind: expected one of latency-load, hit-rate, capacity, "
                        "timeline, roofline, validation, got nothing\n");
        return RT_EXIT_USAGE;
    }
    for (k = 0; k < N_KINDS; k++)
        if (strcmp(kinds[k].name, kind_name) == 0)
            kind = &kinds[k];
    if (kind == NULL) { /* an unknown name: bad input, as in every command */
        fprintf(stderr,
                "kvfleet plot: --kind: expected one of latency-load, hit-rate, capacity, "
                "timeline, roofline, validation, got '%s'\n",
                kind_name);
        return RT_EXIT_INPUT;
    }
    if (out == NULL) {
        fprintf(stderr, "kvfleet plot: -o: expected an output file FILE.png or FILE.svg, got "
                        "nothing\n");
        return RT_EXIT_USAGE;
    }
    if ((code = rt_plot_check_output("plot", "-o", out)) != 0)
        return code;
    svg = ends_with(out, ".svg");
    if ((code = check_outputs(db_path, out, script)) != 0)
        return code;

    /* the results file */
    c.db_path = db_path;
    c.gp = &body;
    c.err = &err;
    if ((rc = store_open_read(db_path, &c.db, &err)) != SIM_OK)
        goto fail;

    if ((rc = kind->fn(&c)) != SIM_OK)
        goto fail;
    if (body.oom)
        goto nomem;

    /* the terminal, then the kind's script */
    plot__printf(&gp, "# kvfleet plot %s ", kind->name);
    plot__comment(&gp, db_path);
    plot__printf(&gp, ": a gnuplot script; data inline. Run: gnuplot FILE\n");
    if (svg)
        plot__printf(&gp, "set terminal svg size 1000,650 dynamic noenhanced font 'sans,12' "
                          "background rgb '#ffffff'\n");
    else
        plot__printf(&gp, "set terminal pngcairo size 1000,650 noenhanced font 'sans,11'\n");
    plot__printf(&gp, "set output ");
    plot__quote(&gp, out);
    plot__printf(&gp, "\nset encoding utf8\nset grid lc rgb '#dddddd'\n%s", body.s ? body.s : "");
    plot__printf(&gp, "unset output\n");
    if (gp.oom)
        goto nomem;
    if (script != NULL && (rc = write_file(script, gp.s, gp.n, &err)) != SIM_OK)
        goto fail;
    code = run_gnuplot(gp.s, gp.n);
    if (code == RT_EXIT_OK && !quiet)
        fprintf(stderr, "kvfleet plot: wrote %s\n", out);
    goto out;
nomem:
    rc = SIM_ENOMEM;
    sim_err_set(&err, "", 0, 0, "out of memory");
fail:
    code = rt_report_err("plot", &err, rc);
out:
    if (c.db != NULL)
        sqlite3_close(c.db);
    plot__buf_fini(&gp);
    plot__buf_fini(&body);
    return code;
}
