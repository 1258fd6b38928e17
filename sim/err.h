/* err.h: status codes, the error record filled on bad input, and assertions.
 *
 * Fallible functions return SIM_OK (0) or a negative SIM_E* code. Bad input
 * (traces, configs, command lines) never asserts: the callee fills a sim_err
 * with the source, line, column and a message of the form
 *     src:line[:col]: field: expected <what>, got '<value>'
 * and returns SIM_EPARSE or SIM_EINVAL. Broken invariants use SIM_ASSERT,
 * which is always on. */
#ifndef SIM_ERR_H
#define SIM_ERR_H

#include <stdio.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

/* XX(name, value, text): the single list every code and message comes from. */
#define SIM_STATUS_MAP(XX)                                                                         \
    XX(OK, 0, "success")                                                                           \
    XX(ENOMEM, -1, "out of memory")                                                                \
    XX(EINVAL, -2, "invalid argument")                                                             \
    XX(EPARSE, -3, "malformed input")                                                              \
    XX(EIO, -4, "input/output error")                                                              \
    XX(EDEVICE, -5, "device error")                                                                \
    XX(ENOTSUP, -6, "not supported")                                                               \
    XX(EINFEASIBLE, -7, "infeasible configuration")                                                \
    XX(ENOENT, -8, "not found")                                                                    \
    XX(EDB, -9, "database error")                                                                  \
    XX(EINTR, -10, "interrupted")

enum sim_status {
#define SIM_XX_ENUM(name, val, text) SIM_##name = (val),
    SIM_STATUS_MAP(SIM_XX_ENUM)
#undef SIM_XX_ENUM
};

/* The longest file name an error keeps whole, NUL included (a longer one
 * is cut). */
#define SIM_ERR_SRC_MAX 1024
/* The longest message, NUL included. */
#define SIM_ERR_MSG_MAX 2048

/* Where bad input was found and why. src/msg are NUL-terminated. */
typedef struct sim_err {
    char src[SIM_ERR_SRC_MAX]; /* file name, "--synthetic", "config", ... ("" when none) */
    long line;                 /* 1-based line, 0 when not applicable */
    int col;                   /* 1-based column or field index, 0 when not known */
    char msg[SIM_ERR_MSG_MAX]; /* "field: expected ..., got '...'" */
} sim_err;

/* Text for a status code ("unknown error" for codes outside the map). */
const char *sim_strerror(int code);

/* Fills *e (if not NULL) with src/line/col and a printf-style message. */
void sim_err_set(sim_err *e, const char *src, long line, int col, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/* The error of a follow-up request (a session's turn k, session_id >= 0,
 * or a closed loop's next request, session_id < 0) whose arrival,
 * arrival_ns after the first, is past the simulator's horizon; the time
 * to the nanosecond, after `at_least` ("" or "at least "). */
void sim_err_followup_horizon(sim_err *e, long long session_id, int turn, long long arrival_ns,
                              const char *at_least);

/* Clears *e. */
void sim_err_clear(sim_err *e);

/* A buffer that holds any sim_err_format text whole. */
#define SIM_ERR_TEXT_MAX (SIM_ERR_SRC_MAX + SIM_ERR_MSG_MAX + 48)

/* Formats *e as "src:line[:col]: msg" into buf (always NUL-terminated). */
void sim_err_format(const sim_err *e, char *buf, size_t n);

/* Prints the failed expression and file:line, then aborts. */
void sim__assert_fail(const char *expr, const char *file, int line);

#define SIM_ASSERT(c) ((c) ? (void)0 : sim__assert_fail(#c, __FILE__, __LINE__))
#ifdef SIM_DEBUG
#define SIM_DASSERT(c) SIM_ASSERT(c)
#else
#define SIM_DASSERT(c) ((void)0)
#endif
/* Defensive branches (SQLite): true/false in release, asserted in debug. */
#ifdef SIM_DEBUG
#define ALWAYS(x) (SIM_ASSERT(x), 1)
#define NEVER(x)  (SIM_ASSERT(!(x)), 0)
#else
#define ALWAYS(x) (x)
#define NEVER(x)  (x)
#endif

#ifdef __cplusplus
}
#endif
#endif /* SIM_ERR_H */
