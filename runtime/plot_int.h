/* plot_int.h: what the parts of `kvfleet plot` share (plot.c drives the
 * command and gnuplot; plot_load.c draws the figures built from whole runs,
 * latency-load and hit-rate; plot_kinds.c the others). Not a public header:
 * only runtime/plot*.c include it.
 *
 * Each kind reads the results file and appends a gnuplot script to a
 * growing text buffer: data as inline blocks (`$name << EOD`), then the
 * axes, title and plot commands. The driver puts the terminal and output
 * lines in front and runs gnuplot on the whole text. */
#ifndef RT_PLOT_INT_H
#define RT_PLOT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <sqlite3.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A growing NUL-terminated text; a failed allocation sets oom and drops
 * later appends, so callers check once at the end. */
typedef struct plot_buf {
    char *s;    /* the text (NULL while empty) */
    size_t n;   /* bytes used, without the NUL */
    size_t cap; /* bytes allocated */
    int oom;    /* 1 after an allocation failed */
} plot_buf;

/* What one figure is drawn from and into. */
typedef struct plot_ctx {
    sqlite3 *db;         /* the results file, query-only */
    const char *db_path; /* its path, for messages */
    int64_t run_id;      /* --run, 0 when not given */
    int64_t sweep_id;    /* --sweep, 0 when not given */
    const char *title;   /* --title, NULL for the default */
    plot_buf *gp;        /* the script being written */
    sim_err *err;        /* filled on failure */
} plot_ctx;

/* Appends printf-style text to b. */
void plot__printf(plot_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends s as a gnuplot double-quoted string literal (\ and " escaped,
 * ` as \140, control characters as blanks). */
void plot__quote(plot_buf *b, const char *s);
/* 1 for a control character (below 0x20, or DEL): never written raw into a script. */
int plot__is_control(char ch);
/* Appends s for a `#` comment line, every control character as '?'. */
void plot__comment(plot_buf *b, const char *s);
/* Frees b's text and empties it. */
void plot__buf_fini(plot_buf *b);

/* Fills *err with a database error on the current statement; returns SIM_EDB. */
int plot__db_fail(plot_ctx *c, const char *what);
/* Reads runs.config of run_id as a JSON object (owned), NULL if absent or malformed. */
json_t *plot__run_config(plot_ctx *c, int64_t run_id);
/* Appends to out what every config in cfgs[0..n) has in common (model, GPU, TP,
 * replicas, policy, dtype, backend), e.g. "llama-3-8b on h100-sxm, TP 1, 1 replica". */
void plot__config_common(json_t *const *cfgs, size_t n, plot_buf *out);
/* Writes `set title` with the figure's name what and the line common (--title overrides both). */
void plot__title(plot_ctx *c, const char *what, const char *common);
/* Appends the title as a gnuplot string expression (for `set multiplot ... title`). */
void plot__title_expr(plot_ctx *c, const char *what, const char *common);
/* Checks that run_id names a run in the file; SIM_OK or SIM_EINVAL with a message. */
int plot__run_exists(plot_ctx *c, int64_t run_id);

/* The kinds: each appends its script to c->gp. SIM_OK, SIM_EINVAL when the
 * file lacks the rows the kind needs (the message names them and the command
 * that makes them), SIM_EDB or SIM_ENOMEM. */
int plot__latency_load(plot_ctx *c);
int plot__hit_rate(plot_ctx *c);
int plot__capacity(plot_ctx *c);
int plot__timeline(plot_ctx *c);
int plot__roofline(plot_ctx *c);
int plot__validation(plot_ctx *c);

/* A line colour for series i (cycles through eight). */
const char *plot__colour(size_t i);

#ifdef __cplusplus
}
#endif
#endif /* RT_PLOT_INT_H */
