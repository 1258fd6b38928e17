/* csv.c: streaming lines, CSV fields, value parsers, and the one-request-per-
 * row CSV engine shared by the Azure and Vidur readers.
 *
 * Memory is bounded by one line: the line buffer grows to the longest line
 * seen (at most TRACE_LINE_MAX bytes, so a file without newlines is an error
 * rather than a whole-file load) and fields are split in place. A
 * 10-million-line trace streams in constant memory.
 *
 * Lines: CR/LF and LF endings are both accepted, a UTF-8 byte-order mark on
 * line 1 is skipped, and lines holding only blanks are skipped wherever they
 * are (line numbers still count them, so messages point at the file).
 * Fields: split at every comma and trimmed of blanks; there is no quoting,
 * because none of the supported formats quotes (non-goal: RFC 4180).
 *
 * Errors read "FILE:LINE:COL: FIELD: expected <what>, got '<value>'", with
 * COL the 1-based column of the field (sim_err_format prints the prefix). */
#include "config.h"
#include "trace_int.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mem.h"
#include "num.h"

#define TRACE_LINE_MAX   (16u << 20) /* bytes in one line, newline included */
#define TRACE_LINE_INIT  256         /* first line buffer size */
#define TRACE_READ_BLOCK 16384       /* bytes read from the file at a time */
#define NS_MAX_SECONDS   9.2e9       /* seconds that still fit in int64 ns */

/* ---- line reader ---- */

int trace__lines_open(const char *path, trace__lines **out, sim_err *err) {
    trace__lines *l;
    FILE *fp;

    *out = NULL;
    fp = fopen(path, "rb");
    if (fp == NULL) {
        sim_err_set(err, path, 0, 0, "cannot open: %s", strerror(errno));
        return SIM_EIO;
    }
    l = SIM_NEW(trace__lines);
    if (l == NULL)
        goto nomem;
    l->fp = fp;
    l->path = sim_strdup(path);
    l->buf = sim_malloc(TRACE_LINE_INIT);
    l->rd = sim_malloc(TRACE_READ_BLOCK);
    if (l->path == NULL || l->buf == NULL || l->rd == NULL)
        goto nomem;
    l->cap = TRACE_LINE_INIT;
    l->buf[0] = '\0';
    *out = l;
    return SIM_OK;

nomem:
    if (l) {
        sim_free(l->path);
        sim_free(l->buf);
        sim_free(l->rd);
        sim_free(l);
    }
    fclose(fp);
    sim_err_set(err, path, 0, 0, "cannot open: out of memory");
    return SIM_ENOMEM;
}

static int is_blank(const char *s) {
    for (; *s; s++) {
        if (*s != ' ' && *s != '\t')
            return 0;
    }
    return 1;
}

/* Reads one physical line into l->buf, a block of the file at a time, so a
 * NUL byte is seen (not taken for the end of the line) and a file without
 * newlines, /dev/zero among them, meets the length limit: a line keeps at
 * most TRACE_LINE_MAX bytes, its newline included (the buffer one more, for
 * the NUL that ends it), and a NUL byte within them is reported by its
 * column. Returns 1, 0 at end of file, or an error code. */
static int read_physical(trace__lines *l, sim_err *err) {
    size_t n = 0;
    int got = 0, done = 0;

    while (!done) {
        const char *s, *nl, *z;
        size_t take;
        if (l->rpos == l->rlen) { /* what the file has now (a pipe need not fill the block) */
            ssize_t r;
            do
                r = read(fileno(l->fp), l->rd, TRACE_READ_BLOCK);
            while (r < 0 && errno == EINTR);
            if (r < 0) {
                sim_err_set(err, l->path, l->line_no + 1, 0, "read error: %s", strerror(errno));
                return SIM_EIO;
            }
            l->rpos = 0;
            l->rlen = (size_t)r;
            if (r == 0)
                break;
        }
        got = 1;
        s = l->rd + l->rpos;
        nl = memchr(s, '\n', l->rlen - l->rpos);
        take = nl ? (size_t)(nl - s) + 1 : l->rlen - l->rpos;
        z = memchr(s, '\0', take);
        if (z != NULL && n + (size_t)(z - s) < TRACE_LINE_MAX) {
            size_t col = n + (size_t)(z - s);
            sim_err_set(err, l->path, l->line_no + 1, (int)(col < INT_MAX ? col + 1 : 0),
                        "line: expected text, got a NUL byte (a binary file?)");
            return SIM_EPARSE;
        }
        if (n + take + 1 > l->cap) { /* room for the bytes and the NUL */
            size_t cap = l->cap;
            char *b;
            if (n + take > TRACE_LINE_MAX) {
                sim_err_set(err, l->path, l->line_no + 1, 0,
                            "line: expected at most %u bytes, got a longer line", TRACE_LINE_MAX);
                return SIM_EPARSE;
            }
            while (cap < n + take + 1)
                cap *= 2;
            if (cap > TRACE_LINE_MAX + 1) /* the longest line and its NUL */
                cap = TRACE_LINE_MAX + 1;
            b = sim_realloc(l->buf, cap);
            if (b == NULL) {
                sim_err_set(err, l->path, l->line_no + 1, 0, "line: out of memory");
                return SIM_ENOMEM;
            }
            l->buf = b;
            l->cap = cap;
        }
        memcpy(l->buf + n, s, take);
        n += take;
        l->rpos += take;
        done = nl != NULL;
    }
    if (!got)
        return 0;
    l->line_no++;
    while (n > 0 && (l->buf[n - 1] == '\n' || l->buf[n - 1] == '\r'))
        n--;
    l->buf[n] = '\0';
    if (l->line_no == 1 && n >= 3 && memcmp(l->buf, "\xEF\xBB\xBF", 3) == 0) {
        memmove(l->buf, l->buf + 3, n - 2);
        n -= 3;
    }
    l->len = n;
    return 1;
}

int trace__lines_next(trace__lines *l, sim_err *err) {
    int rc;
    if (l->pushed) {
        l->pushed = 0;
        return 1;
    }
    do {
        rc = read_physical(l, err);
    } while (rc == 1 && is_blank(l->buf));
    return rc;
}

void trace__lines_unread(trace__lines *l) {
    l->pushed = 1;
}

void trace__lines_close(trace__lines *l) {
    if (l == NULL)
        return;
    if (l->fp)
        fclose(l->fp);
    sim_free(l->path);
    sim_free(l->buf);
    sim_free(l->rd);
    sim_free(l);
}

/* ---- CSV fields ---- */

int trace__csv_count(const char *line) {
    int n = 1;
    for (; *line; line++)
        n += *line == ',';
    return n;
}

char *trace__trim(char *s) {
    char *e;
    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

int trace__spec_num(const char *s, double *out) {
    char *end;
    double v = sim_strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

int trace__spec_int(const char *s, double lo, double hi, int64_t *out) {
    double v;
    if (trace__spec_num(s, &v) != 0 || v != floor(v) || v < lo || v > hi)
        return -1;
    *out = (int64_t)v;
    return 0;
}

int trace__csv_split(trace__lines *l, int expect_n, trace__fields *fs, sim_err *err) {
    int n = trace__csv_count(l->buf);
    char *p = l->buf;
    int i;

    if (expect_n > 0 && n != expect_n) {
        sim_err_set(err, l->path, l->line_no, 0,
                    "row: expected %d fields as in the header, got %d in '%.80s'", expect_n, n,
                    l->buf);
        return SIM_EPARSE;
    }
    if (n > fs->cap) {
        char **f = sim_realloc(fs->f, (size_t)n * sizeof *f);
        if (f == NULL) {
            sim_err_set(err, l->path, l->line_no, 0, "row: out of memory");
            return SIM_ENOMEM;
        }
        fs->f = f;
        fs->cap = n;
    }
    for (i = 0; i < n; i++) {
        char *c = strchr(p, ',');
        if (c)
            *c = '\0';
        fs->f[i] = trace__trim(p);
        p = c ? c + 1 : p + strlen(p);
    }
    fs->n = n;
    return SIM_OK;
}

int trace__csv_find_one(const trace__lines *l, const trace__fields *hdr, const char *name,
                        sim_err *err) {
    int i, at = -1, n = 0;
    for (i = 0; i < hdr->n; i++)
        if (strcasecmp(hdr->f[i], name) == 0 && n++ == 0)
            at = i;
    if (n == 1)
        return at;
    sim_err_set(err, l->path, l->line_no, 0, "header: expected one '%s' column, got %d", name, n);
    return SIM_EPARSE;
}

int trace__csv_line_has(const char *line, const char *name) {
    size_t len = strlen(name);
    const char *p = line;
    for (;;) {
        const char *e = strchr(p, ',');
        const char *end = e ? e : p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if ((size_t)(end - p) == len && strncasecmp(p, name, len) == 0)
            return 1;
        if (e == NULL)
            return 0;
        p = e + 1;
    }
}

void trace__fields_fini(trace__fields *fs) {
    SIM_FREE(fs->f);
    fs->n = 0;
    fs->cap = 0;
}

/* ---- value parsers ---- */

int trace__parse_tokens(const trace__lines *l, int col, const char *field, const char *s,
                        int32_t *out, sim_err *err) {
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || (errno == ERANGE && v < 0) || v < 1) {
        sim_err_set(err, l->path, l->line_no, col, "%s: expected a positive integer, got '%.64s'",
                    field, s);
        return SIM_EPARSE;
    }
    if (errno == ERANGE || v > INT32_MAX) {
        sim_err_set(err, l->path, l->line_no, col,
                    "%s: expected a positive integer <= 2147483647, got '%.64s'", field, s);
        return SIM_EPARSE;
    }
    *out = (int32_t)v;
    return SIM_OK;
}

int trace__parse_id(const trace__lines *l, int col, const char *field, const char *s, int64_t *out,
                    sim_err *err) {
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno == ERANGE || v < 0) {
        sim_err_set(err, l->path, l->line_no, col,
                    "%s: expected a non-negative integer, got '%.64s'", field, s);
        return SIM_EPARSE;
    }
    *out = (int64_t)v;
    return SIM_OK;
}

int trace__decimal_ns(const char *s, int64_t *out_ns) {
    int64_t sec = 0, frac = 0;
    int n_int = 0, n_frac = 0, round_up = 0;

    if (*s == '+')
        s++;
    for (; *s >= '0' && *s <= '9'; s++, n_int++) {
        if (sec > (int64_t)NS_MAX_SECONDS)
            return -1;
        sec = sec * 10 + (*s - '0');
    }
    if (*s == '.') {
        for (s++; *s >= '0' && *s <= '9'; s++, n_frac++) {
            if (n_frac < 9)
                frac = frac * 10 + (*s - '0');
            else if (n_frac == 9)
                round_up = *s >= '5';
        }
    }
    if (*s != '\0' || n_int + n_frac == 0 || sec > (int64_t)NS_MAX_SECONDS)
        return -1;
    for (; n_frac < 9; n_frac++)
        frac *= 10;
    *out_ns = sec * SIM_NS_PER_S + frac + round_up;
    return 0;
}

int trace__parse_seconds(const trace__lines *l, int col, const char *field, const char *s,
                         int64_t *out_ns, sim_err *err) {
    char *end;
    double v;

    if (trace__decimal_ns(s, out_ns) == 0)
        return SIM_OK;
    /* Other spellings strtod understands (exponents); nan, inf and negative
     * values are refused. */
    v = sim_strtod(s, &end); /* decimal only: "0x10" is not 16 s */
    if (end == s || *end != '\0' || !isfinite(v) || v < 0 || v > NS_MAX_SECONDS) {
        sim_err_set(err, l->path, l->line_no, col,
                    "%s: expected a number of seconds in [0, 9.2e9], got '%.64s'", field, s);
        return SIM_EPARSE;
    }
    *out_ns = sim_time_from_s(v);
    return SIM_OK;
}

int trace__err_backwards(const trace__lines *l, int col, const char *field, const char *s,
                         sim_err *err) {
    sim_err_set(err, l->path, l->line_no, col,
                "%s: expected a time >= the previous row's (rows sorted by arrival), got '%.64s'",
                field, s);
    return SIM_EPARSE;
}

/* ---- one-request-per-row CSV ---- */

typedef struct reqcsv {
    trace__lines *lines;            /* owned */
    const trace__reqcsv_desc *desc; /* static */
    trace__fields fields;           /* split of the current row */
    int n_cols;                     /* fields in the header (every row must match) */
    int c_time, c_prompt, c_output; /* 0-based columns */
    int have_prev;                  /* 1 after the first row */
    int64_t prev_ns;                /* raw time of the previous row */
    void *ctx;                      /* desc->ctx_size bytes for parse_time, or NULL */
} reqcsv;

static void reqcsv_destroy(void *state) {
    reqcsv *r = state;
    if (r == NULL)
        return;
    trace__lines_close(r->lines);
    trace__fields_fini(&r->fields);
    sim_free(r->ctx);
    sim_free(r);
}

static int reqcsv_next(void *state, sim_req *out, sim_err *err) {
    reqcsv *r = state;
    trace__lines *l = r->lines;
    char **f;
    int64_t t_ns;
    int rc;

    rc = trace__lines_next(l, err);
    if (rc <= 0)
        return rc;
    if ((rc = trace__csv_split(l, r->n_cols, &r->fields, err)) != SIM_OK)
        return rc;
    f = r->fields.f;
    rc = r->desc->parse_time(r->ctx, l, r->c_time + 1, r->desc->time_col, f[r->c_time], &t_ns, err);
    if (rc != SIM_OK)
        return rc;
    if (r->have_prev && t_ns < r->prev_ns)
        return trace__err_backwards(l, r->c_time + 1, r->desc->time_col, f[r->c_time], err);
    rc = trace__parse_tokens(l, r->c_prompt + 1, r->desc->prompt_col, f[r->c_prompt],
                             &out->prompt_tokens, err);
    if (rc != SIM_OK)
        return rc;
    rc = trace__parse_tokens(l, r->c_output + 1, r->desc->output_col, f[r->c_output],
                             &out->output_tokens, err);
    if (rc != SIM_OK)
        return rc;
    r->have_prev = 1;
    r->prev_ns = t_ns;
    out->arrival_ns = t_ns;
    out->new_tokens = out->prompt_tokens;
    out->session_id = -1;
    out->turn = 0;
    out->n_hash_ids = 0;
    out->hash_ids = NULL;
    return 1;
}

/* One request per row, read without looking ahead: the current line. */
static long reqcsv_line(void *state) {
    return ((const reqcsv *)state)->lines->line_no;
}

static const trace__src_ops reqcsv_ops = {
    .next = reqcsv_next,
    .on_end = NULL,
    .destroy = reqcsv_destroy,
    .line = reqcsv_line,
};

int trace__reqcsv_open(trace__lines *l, const trace__reqcsv_desc *desc, trace__impl *out,
                       sim_err *err) {
    const char *need[3];
    reqcsv *r;
    int rc, i;

    need[0] = desc->time_col;
    need[1] = desc->prompt_col;
    need[2] = desc->output_col;
    r = SIM_NEW(reqcsv);
    if (r == NULL) {
        sim_err_set(err, l->path, 0, 0, "cannot open: out of memory");
        trace__lines_close(l);
        return SIM_ENOMEM;
    }
    r->lines = l;
    r->desc = desc;
    if (desc->ctx_size > 0 && (r->ctx = sim_calloc(1, desc->ctx_size)) == NULL) {
        sim_err_set(err, l->path, 0, 0, "cannot open: out of memory");
        rc = SIM_ENOMEM;
        goto err;
    }
    rc = trace__lines_next(l, err);
    if (rc < 0)
        goto err;
    if (rc == 0) {
        sim_err_set(err, l->path, 1, 0, "header: expected '%s,%s,%s' (%s), got an empty file",
                    need[0], need[1], need[2], desc->fmt_name);
        rc = SIM_EPARSE;
        goto err;
    }
    for (i = 0; i < 3; i++) {
        if (!trace__csv_line_has(l->buf, need[i])) {
            sim_err_set(err, l->path, l->line_no, 0,
                        "header: expected a '%s' column (%s: '%s,%s,%s'), got '%.80s'", need[i],
                        desc->fmt_name, need[0], need[1], need[2], l->buf);
            rc = SIM_EPARSE;
            goto err;
        }
    }
    if ((rc = trace__csv_split(l, 0, &r->fields, err)) != SIM_OK)
        goto err;
    r->n_cols = r->fields.n;
    if ((rc = r->c_time = trace__csv_find_one(l, &r->fields, need[0], err)) < 0 ||
        (rc = r->c_prompt = trace__csv_find_one(l, &r->fields, need[1], err)) < 0 ||
        (rc = r->c_output = trace__csv_find_one(l, &r->fields, need[2], err)) < 0)
        goto err;
    out->ops = &reqcsv_ops;
    out->state = r;
    return SIM_OK;

err:
    reqcsv_destroy(r);
    return rc;
}
