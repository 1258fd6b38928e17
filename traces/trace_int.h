/* trace_int.h: internals shared by the files of traces/ (never by other modules).
 *
 * A source is a {ops, state} pair (ggml's iface + context) wrapped by
 * trace.c, which owns everything the formats have in common: request ids,
 * --limit, and for open-loop requests the shift to "first arrival at 0" and
 * the division by --load-scale. A format's next() therefore yields raw
 * arrival times in its own clock (any origin, non-decreasing); follow-ups
 * from on_end() are already in simulated time.
 *
 * Building blocks:
 *   - trace__lines: a streaming line reader (one line in memory, CR/LF
 *     stripped, blank lines skipped, pushback of one line);
 *   - trace__fields: an in-place CSV splitter (no quoting: none of the
 *     supported formats quotes fields);
 *   - value parsers that fill sim_err as "FILE:LINE:COL: field: expected
 *     <what>, got '<value>'";
 *   - trace__reqcsv: the one-request-per-row CSV engine behind the Azure
 *     and Vidur readers;
 *   - trace__sess_table: live multi-turn sessions (sessions CSV and the
 *     synthetic sessions kind), keyed by session id. */
#ifndef TRACE_TRACE_INT_H
#define TRACE_TRACE_INT_H

#include <stdio.h>
#include <stdint.h>

#include "err.h"
#include "req.h"
#include "trace.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- source interface ---- */

typedef struct trace__src_ops {
    /* Next open-loop request (required). Returns 1 with *out filled except
     * id; out->arrival_ns is the raw arrival in the source's clock, never
     * smaller than the previous one. 0 at the end, or a negative code. */
    int (*next)(void *state, sim_req *out, sim_err *err);
    /* A request ended (optional: NULL means an open-loop source). Returns 1
     * with a follow-up in simulated time (arrival >= end_ns), else 0. */
    int (*on_end)(void *state, const sim_req *r, sim_time end_ns, int rejected, sim_req *out);
    /* Frees the state (required). */
    void (*destroy)(void *state);
    /* 1: next's times are already simulated times (the closed loop's first
     * wave and its ramp), so --load-scale leaves them alone */
    int fixed_times;
    /* The file line of the request next returned last (optional: NULL, or
     * 0, when unknown). */
    long (*line)(void *state);
} trace__src_ops;

/* What a format's open function hands to trace.c. */
typedef struct trace__impl {
    const trace__src_ops *ops; /* static table */
    void *state;               /* owned by the source once wrapped */
} trace__impl;

/* Wraps impl into an owned source (takes ownership of impl->state, which is
 * destroyed on failure). Returns SIM_OK or SIM_ENOMEM. */
int trace__src_wrap(const trace__impl *impl, enum trace_format fmt, const trace_opts *o,
                    trace_src **out, sim_err *err);

/* Checks load_scale and limit; fills err (src "trace options") on failure. */
int trace__opts_check(const trace_opts *o, sim_err *err);

/* ---- line reader (csv.c) ---- */

typedef struct trace__lines {
    FILE *fp;     /* owned; read through its descriptor into rd */
    char *rd;     /* up to TRACE_READ_BLOCK bytes read from fp */
    size_t rpos;  /* the next byte of rd not yet in a line */
    size_t rlen;  /* bytes in rd */
    char *path;   /* owned copy, used as the error source */
    char *buf;    /* current line, NUL-terminated, without CR/LF */
    size_t len;   /* strlen(buf) */
    size_t cap;   /* bytes allocated for buf */
    long line_no; /* 1-based physical line number of buf */
    int pushed;   /* 1: the next call returns buf again */
} trace__lines;

/* Opens path for streaming. Returns SIM_OK and an owned *out, SIM_EIO
 * ("PATH: cannot open: strerror") or SIM_ENOMEM. */
int trace__lines_open(const char *path, trace__lines **out, sim_err *err);
/* Reads the next non-blank line into l->buf. Returns 1, 0 at end of file,
 * SIM_EIO or SIM_ENOMEM. Invalidates the previous l->buf contents. */
int trace__lines_next(trace__lines *l, sim_err *err);
/* Makes the next trace__lines_next() return the current line again. */
void trace__lines_unread(trace__lines *l);
/* Closes and frees; NULL is a no-op. */
void trace__lines_close(trace__lines *l);

/* ---- CSV fields (csv.c) ---- */

typedef struct trace__fields {
    char **f; /* field starts inside the line buffer, trimmed; borrowed */
    int n;    /* number of fields */
    int cap;  /* slots allocated in f */
} trace__fields;

/* Number of comma-separated fields in a line (commas + 1). */
int trace__csv_count(const char *line);
/* Splits l->buf in place into *fs. When expect_n > 0 and the count differs,
 * fails with SIM_EPARSE "row: expected N fields as in the header, got M in
 * '...'". Returns SIM_OK, SIM_EPARSE or SIM_ENOMEM. */
int trace__csv_split(trace__lines *l, int expect_n, trace__fields *fs, sim_err *err);
/* 0-based index of the header field equal to name (ASCII case-insensitive),
 * a column the header must hold exactly once (the header is l's current
 * line); SIM_EPARSE with *err naming the column when it is missing or
 * repeated. */
int trace__csv_find_one(const trace__lines *l, const trace__fields *hdr, const char *name,
                        sim_err *err);
/* 1 if the unsplit header line has a field named name (case-insensitive). */
int trace__csv_line_has(const char *line, const char *name);
/* Frees the slot array (the fields themselves live in the line buffer). */
void trace__fields_fini(trace__fields *fs);
/* Strips leading and trailing blanks and tabs in place; returns the new start. */
char *trace__trim(char *s);

/* ---- spec values (csv.c): the --synthetic and sessionize grammars ---- */

/* A finite number filling the whole string: 0, or -1 if s is not one. */
int trace__spec_num(const char *s, double *out);
/* An integer-valued number (1e5 is fine) in [lo, hi]: 0, or -1. */
int trace__spec_int(const char *s, double lo, double hi, int64_t *out);

/* ---- value parsers (csv.c); col is the 1-based column of the field ---- */

/* A positive integer in 1..INT32_MAX (token counts, turn numbers). */
int trace__parse_tokens(const trace__lines *l, int col, const char *field, const char *s,
                        int32_t *out, sim_err *err);
/* A non-negative integer id (int64). */
int trace__parse_id(const trace__lines *l, int col, const char *field, const char *s, int64_t *out,
                    sim_err *err);
/* Finite seconds >= 0 to ns; plain decimals convert exactly (9 digits, rounded). */
int trace__parse_seconds(const trace__lines *l, int col, const char *field, const char *s,
                         int64_t *out_ns, sim_err *err);
/* Plain decimal seconds ("12", "3.5", ".25") to ns exactly; -1 if s is not one. */
int trace__decimal_ns(const char *s, int64_t *out_ns);
/* Fills err with "FIELD: expected a time >= the previous row's, got 'S'". */
int trace__err_backwards(const trace__lines *l, int col, const char *field, const char *s,
                         sim_err *err);

/* ---- one-request-per-row CSV (csv.c; used by azure.c, vidur.c) ---- */

/* Converts a time cell to a raw ns value (any origin). Returns SIM_OK or
 * SIM_EPARSE with err filled. */
typedef int (*trace__time_fn)(void *ctx, const trace__lines *l, int col, const char *field,
                              const char *s, int64_t *out_ns, sim_err *err);

typedef struct trace__reqcsv_desc {
    const char *fmt_name;      /* "azure", "vidur" (for messages) */
    const char *time_col;      /* header name of the arrival column */
    const char *prompt_col;    /* header name of the prompt length column */
    const char *output_col;    /* header name of the output length column */
    trace__time_fn parse_time; /* arrival cell -> raw ns */
    size_t ctx_size;           /* bytes of zeroed context handed to parse_time */
} trace__reqcsv_desc;

/* Reads and checks the header, then returns a source streaming one request
 * per row. Takes ownership of l in every case. desc must outlive the source. */
int trace__reqcsv_open(trace__lines *l, const trace__reqcsv_desc *desc, trace__impl *out,
                       sim_err *err);

/* ---- formats ---- */

/* Each takes ownership of l (positioned before the header / first line). */
int trace__azure_open(trace__lines *l, trace__impl *out, sim_err *err);
int trace__vidur_open(trace__lines *l, trace__impl *out, sim_err *err);
int trace__mooncake_open(trace__lines *l, int32_t hash_block_tokens, trace__impl *out,
                         sim_err *err);
int trace__sessions_open(trace__lines *l, trace__impl *out, sim_err *err);
/* Synthetic generator from a spec (synth.c). */
int trace__synth_open(const char *spec, const trace_opts *o, trace__impl *out, sim_err *err);

/* ---- live sessions (sessions.c) ---- */

typedef struct trace__turn {
    int64_t think_ns;      /* idle gap after the previous turn ends, ns (unused for turn 1) */
    int32_t new_tokens;    /* prompt tokens new in this turn, >= 1 */
    int32_t output_tokens; /* tokens generated, >= 1 */
} trace__turn;

typedef struct trace__session trace__session;

typedef struct trace__sess_table {
    trace__session **buckets; /* chained hash on session_key; power-of-two count */
    size_t n_buckets;         /* 0 until the first insert */
    size_t n_live;            /* sessions with turns still to emit */
    uint64_t n_started;       /* sessions started: each one's session_key */
} trace__sess_table;

/* Empty table (no allocation until the first insert). */
void trace__sess_table_init(trace__sess_table *tb);
/* Frees every live session. */
void trace__sess_table_fini(trace__sess_table *tb);
/* Starts a session: fills *first with turn 1 (arrival_ns = arrival, id 0)
 * and, when n_turns > 1, keeps the rest. Takes ownership of turns (freed
 * on failure too); the caller guarantees every turn's context fits in
 * int32. Returns SIM_OK or SIM_ENOMEM. */
int trace__sess_start(trace__sess_table *tb, int64_t id, trace__turn *turns, int32_t n_turns,
                      sim_time arrival, sim_req *first);
/* Session half of trace_on_end(): the next turn at end_ns + think, or 0
 * when r ended its session (last turn, rejected, or unknown). */
int trace__sess_on_end(trace__sess_table *tb, const sim_req *r, sim_time end_ns, int rejected,
                       sim_req *out);

#ifdef __cplusplus
}
#endif
#endif /* TRACE_TRACE_INT_H */
