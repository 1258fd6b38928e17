/* err.c: status strings and the bad-input error record (see err.h). */
#include "config.h"
#include "err.h"

#include <stdarg.h>
#include <string.h>

const char *sim_strerror(int code) {
    switch (code) {
#define SIM_XX_CASE(name, val, text)                                                               \
    case val:                                                                                      \
        return text;
        SIM_STATUS_MAP(SIM_XX_CASE)
#undef SIM_XX_CASE
    }
    return "unknown error";
}

void sim_err_clear(sim_err *e) {
    if (e == NULL)
        return;
    e->src[0] = '\0';
    e->line = 0;
    e->col = 0;
    e->msg[0] = '\0';
}

void sim_err_set(sim_err *e, const char *src, long line, int col, const char *fmt, ...) {
    va_list ap;
    if (e == NULL)
        return;
    snprintf(e->src, sizeof e->src, "%s", src ? src : "");
    e->line = line;
    e->col = col;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
}

void sim_err_followup_horizon(sim_err *e, long long session_id, int turn, long long arrival_ns,
                              const char *at_least) {
    long long s = arrival_ns / 1000000000LL, ns = arrival_ns % 1000000000LL;
    if (session_id >= 0)
        sim_err_set(e, "", 0, 0,
                    "session %lld, turn %d: expected an arrival at most 1e9 s after the first "
                    "(the simulator's horizon), got %s%lld.%09lld s (the think times of the "
                    "trace or --synthetic spec)",
                    session_id, turn, at_least, s, ns);
    else /* a closed loop's next request: its clients' requests in turn */
        sim_err_set(e, "", 0, 0,
                    "closed loop: expected its next request at most 1e9 s after the first (the "
                    "simulator's horizon), got %s%lld.%09lld s (its requests, served one after "
                    "another by each client, with their jitter, outlast it)",
                    at_least, s, ns);
}

void sim_err_format(const sim_err *e, char *buf, size_t n) {
    if (n == 0)
        return;
    if (e->src[0] && e->line > 0 && e->col > 0)
        snprintf(buf, n, "%s:%ld:%d: %s", e->src, e->line, e->col, e->msg);
    else if (e->src[0] && e->line > 0)
        snprintf(buf, n, "%s:%ld: %s", e->src, e->line, e->msg);
    else if (e->src[0])
        snprintf(buf, n, "%s: %s", e->src, e->msg);
    else
        snprintf(buf, n, "%s", e->msg);
}

void sim__assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "kvfleet: assertion failed: %s (%s:%d)\n", expr, file, line);
    fflush(stderr);
    abort();
}
