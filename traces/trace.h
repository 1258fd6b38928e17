/* trace.h: request sources, streamed in arrival order.
 *
 * A source is a file reader (Azure, Vidur, Mooncake, sessions CSV) or a
 * synthetic generator (--synthetic SPEC). Open-loop requests come from
 * trace_next() in non-decreasing arrival order; a source never holds the
 * whole trace in memory (a 10-million-request file streams).
 *
 * Closed-loop sources (sessions, where turn k arrives think_s after turn
 * k-1 finishes; and the closed benchmark mode, which keeps C requests in
 * flight) also produce requests when earlier ones end: the engine reports
 * every ended request through trace_on_end(), which may hand back a
 * follow-up request with a later arrival time. */
#ifndef TRACE_TRACE_H
#define TRACE_TRACE_H

#include <stdint.h>
#include <stdio.h>

#include "err.h"
#include "req.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct trace_src trace_src;

enum trace_format {
    TRACE_FMT_AUTO = 0, /* guess from the header / first line */
    TRACE_FMT_AZURE,    /* TIMESTAMP,ContextTokens,GeneratedTokens */
    TRACE_FMT_VIDUR,    /* arrived_at,num_prefill_tokens,num_decode_tokens */
    TRACE_FMT_MOONCAKE, /* JSONL: timestamp (ms), input_length, output_length, hash_ids */
    TRACE_FMT_SESSIONS  /* session_id,turn,start_s,think_s,prompt_tokens,output_tokens */
};

typedef struct trace_opts {
    double load_scale; /* arrival times are divided by this (> 0; 1 = as recorded) */
    int64_t limit;     /* emit at most this many requests (0 = all) */
    uint64_t seed;     /* for synthetic sources */
    /* tokens one Mooncake hash id covers: a line may list at most
     * ceil(input_length / hash_block_tokens) ids (0: unknown, then at most
     * input_length, a block holding at least one token) */
    int32_t hash_block_tokens;
} trace_opts;

/* Default options: load_scale 1, no limit, seed 1, hash block size unknown (0). */
void trace_opts_default(trace_opts *o);

/* Parses "azure|vidur|mooncake|sessions|auto"; returns SIM_OK or SIM_EINVAL. */
int trace_format_parse(const char *s, enum trace_format *out);
/* Name of a format ("azure", ...). */
const char *trace_format_name(enum trace_format f);

/* Opens a trace file; fmt AUTO sniffs the header. Returns SIM_OK and an
 * owned *out, or a negative code with *err filled (file, line, field). */
int trace_open_file(const char *path, enum trace_format fmt, const trace_opts *o, trace_src **out,
                    sim_err *err);

/* Opens a synthetic generator from a spec (grammar in docs/traces.md).
 * Returns SIM_OK and an owned *out, or SIM_EINVAL with *err naming the key. */
int trace_open_synthetic(const char *spec, const trace_opts *o, trace_src **out, sim_err *err);

/* Next open-loop request: returns 1 and fills *out, 0 at the end, or a
 * negative code with *err filled (a malformed line: FILE:LINE: FIELD: ...).
 * Arrival times never decrease from one call to the next. */
int trace_next(trace_src *t, sim_req *out, sim_err *err);

/* The file line of the request trace_next returned last, for a message
 * about it; 0 when the source does not know (the Azure, Vidur and Mooncake
 * readers know it: one request per line). */
long trace_src_line(const trace_src *t);

/* Reports that request r ended at time end_ns (completed, or rejected when
 * rejected != 0). Returns 1 and fills *out with a follow-up request (the
 * session's next turn, the closed loop's next request) whose arrival is
 * >= end_ns, or 0 when there is none. */
int trace_on_end(trace_src *t, const sim_req *r, sim_time end_ns, int rejected, sim_req *out);
/* 1 if t answers trace_on_end (sessions, the closed loop, a sessionized
 * source: its ids and draws then follow the order requests end in), 0 for
 * a purely open-loop source, whose trace_on_end does nothing. */
int trace_has_followups(const trace_src *t);

/* Gives an open-loop source without conversations (Azure, Vidur, poisson,
 * gamma) a made-up session structure (--sessionize SPEC; the model and its
 * grammar are in docs/traces.md): arrivals, ids and lengths stay, a share
 * of requests become later turns of earlier sessions. Takes ownership of
 * inner. Returns SIM_OK and an owned *out, or a negative code with *out
 * NULL, inner closed and *err naming the key (src "--sessionize"). */
int trace_sessionize(trace_src *inner, const char *spec, uint64_t seed, trace_src **out,
                     sim_err *err);

/* The format of an opened source (synthetic sources report AUTO). */
enum trace_format trace_src_format(const trace_src *t);

/* Closes and frees; NULL is a no-op. */
void trace_close(trace_src *t);

/* Prints statistics of a trace file or a synthetic spec (exactly one given):
 * requests, duration_s, rate_per_s, prompt/output length mean, p50, p90,
 * p99, max, and sessions and mean turns when the source has sessions. Text,
 * or one JSON object when json != 0. Closed-loop follow-ups are timed with
 * end = arrival, so their duration is a lower bound. Returns SIM_OK or a
 * negative code with *err filled. */
int trace_stats_print(FILE *out, const char *path_or_null, const char *synthetic_spec_or_null,
                      enum trace_format fmt, const trace_opts *o, int json, sim_err *err);

#ifdef __cplusplus
}
#endif
#endif /* TRACE_TRACE_H */
