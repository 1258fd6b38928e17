/* trace.c: the request-source front end (see trace.h).
 *
 * Opens a file (sniffing its format from the first non-blank line when asked)
 * or a synthetic generator, and wraps the format's {ops, state} pair. What
 * every source shares is done here, once:
 *   - ids 0, 1, 2, ... in emission order (open-loop and follow-ups alike);
 *   - --limit N: at most N requests in all; once reached, trace_next()
 *     returns 0 and trace_on_end() ends every session as a rejection would;
 *   - open-loop arrivals are shifted so that the first one is at 0 and then
 *     divided by --load-scale. Follow-ups (closed loop) are already in
 *     simulated time: their gaps (think times) are not scaled.
 *
 *   - errors are sticky: after trace_next() returned a negative code, every
 *     later call returns the same code and message.
 *
 * Invariants: ids are dense; open-loop arrivals never decrease (the formats
 * check their raw times, and the shift and division are monotone).
 * Non-goals: reordering unsorted traces (an out-of-order row is an error). */
#include "config.h"
#include "trace.h"

#include <math.h>
#include <string.h>
#include <strings.h>

#include "mem.h"
#include "trace_int.h"

struct trace_src {
    const trace__src_ops *ops;  /* the format's table */
    void *state;                /* owned */
    enum trace_format fmt;      /* AUTO for synthetic sources */
    trace_opts opts;            /* checked copy */
    uint64_t n_emitted;         /* requests handed out so far (next id) */
    int have_t0;                /* 1 once the first open-loop arrival was seen */
    sim_time t0;                /* raw time of the first open-loop arrival */
    int failed;                 /* the first error trace_next returned, 0 if none */
    sim_err failed_err;         /* and its record, returned again on later calls */
    char path[SIM_ERR_SRC_MAX]; /* the file read, for messages; "" for a generator */
};

static const char *const format_names[] = {"auto", "azure", "vidur", "mooncake", "sessions"};

void trace_opts_default(trace_opts *o) {
    o->load_scale = 1.0;
    o->limit = 0;
    o->seed = 1;
    o->hash_block_tokens = 0;
}

int trace_format_parse(const char *s, enum trace_format *out) {
    size_t i;
    for (i = 0; i < sizeof format_names / sizeof format_names[0]; i++) {
        if (strcasecmp(s, format_names[i]) == 0) {
            *out = (enum trace_format)i;
            return SIM_OK;
        }
    }
    return SIM_EINVAL;
}

const char *trace_format_name(enum trace_format f) {
    if ((unsigned)f < sizeof format_names / sizeof format_names[0])
        return format_names[f];
    return "unknown";
}

int trace__opts_check(const trace_opts *o, sim_err *err) {
    if (!(o->load_scale > 0) || !isfinite(o->load_scale)) {
        sim_err_set(err, "trace options", 0, 0,
                    "load_scale: expected a finite number > 0, got '%g'", o->load_scale);
        return SIM_EINVAL;
    }
    if (o->limit < 0) {
        sim_err_set(err, "trace options", 0, 0, "limit: expected 0 (all) or more, got '%lld'",
                    (long long)o->limit);
        return SIM_EINVAL;
    }
    return SIM_OK;
}

int trace__src_wrap(const trace__impl *impl, enum trace_format fmt, const trace_opts *o,
                    trace_src **out, sim_err *err) {
    trace_src *t = SIM_NEW(trace_src);
    if (t == NULL) {
        sim_err_set(err, "trace", 0, 0, "source: out of memory");
        impl->ops->destroy(impl->state);
        return SIM_ENOMEM;
    }
    t->ops = impl->ops;
    t->state = impl->state;
    t->fmt = fmt;
    t->opts = *o;
    *out = t;
    return SIM_OK;
}

/* Picks the format from the first non-blank line: a '{' starts Mooncake
 * JSONL; otherwise the CSV header names the format by one of its columns. */
static enum trace_format sniff(const char *line) {
    while (*line == ' ' || *line == '\t')
        line++;
    if (*line == '{')
        return TRACE_FMT_MOONCAKE;
    if (trace__csv_line_has(line, "session_id"))
        return TRACE_FMT_SESSIONS;
    if (trace__csv_line_has(line, "TIMESTAMP") && trace__csv_line_has(line, "ContextTokens"))
        return TRACE_FMT_AZURE;
    /* A length-only Vidur file (no arrived_at) goes to the Vidur reader,
     * which explains why it cannot be replayed. */
    if (trace__csv_line_has(line, "num_prefill_tokens"))
        return TRACE_FMT_VIDUR;
    return TRACE_FMT_AUTO;
}

/* What a header no format matches most likely got wrong, as a clause to
 * append to the message ("" when nothing stands out): the three mistakes
 * of a file written by hand or exported from a spreadsheet or pandas. */
static const char *header_hint(const char *line) {
    while (*line == ' ' || *line == '\t')
        line++;
    if (*line == '[')
        return " (Mooncake JSONL holds one JSON object per line, not a JSON array)";
    if (strchr(line, '\t') != NULL && strchr(line, ',') == NULL)
        return " (fields are separated by commas; this line has tabs)";
    if (strchr(line, '"') != NULL)
        return " (fields are never quoted; remove the double quotes)";
    return "";
}

/* Points *o at the defaults, filled into *def, when it is NULL, then
 * checks the options in use: SIM_OK or SIM_EINVAL with *err set. */
static int opts_resolve(const trace_opts **o, trace_opts *def, sim_err *err) {
    if (*o == NULL) {
        trace_opts_default(def);
        *o = def;
    }
    return trace__opts_check(*o, err);
}

int trace_open_file(const char *path, enum trace_format fmt, const trace_opts *o, trace_src **out,
                    sim_err *err) {
    trace_opts def;
    trace__lines *l = NULL;
    trace__impl impl;
    int rc;

    *out = NULL;
    if ((rc = opts_resolve(&o, &def, err)) != SIM_OK)
        return rc;
    if ((rc = trace__lines_open(path, &l, err)) != SIM_OK)
        return rc;
    if (fmt == TRACE_FMT_AUTO) {
        rc = trace__lines_next(l, err);
        if (rc < 0)
            goto err;
        if (rc == 0) {
            sim_err_set(err, path, 1, 0,
                        "header: expected a trace header (azure, vidur, sessions CSV or "
                        "Mooncake JSONL), got an empty file");
            rc = SIM_EPARSE;
            goto err;
        }
        fmt = sniff(l->buf);
        if (fmt == TRACE_FMT_AUTO) {
            sim_err_set(err, path, l->line_no, 0,
                        "header: expected 'TIMESTAMP,ContextTokens,GeneratedTokens' (azure), "
                        "'arrived_at,num_prefill_tokens,num_decode_tokens' (vidur), "
                        "'session_id,turn,start_s,think_s,prompt_tokens,output_tokens' "
                        "(sessions) or a JSON object (mooncake), got '%.80s'%s",
                        l->buf, header_hint(l->buf));
            rc = SIM_EPARSE;
            goto err;
        }
        trace__lines_unread(l);
    }
    /* From here on the format's open function owns l. */
    switch (fmt) {
        case TRACE_FMT_AZURE:
            rc = trace__azure_open(l, &impl, err);
            break;
        case TRACE_FMT_VIDUR:
            rc = trace__vidur_open(l, &impl, err);
            break;
        case TRACE_FMT_MOONCAKE:
            rc = trace__mooncake_open(l, o->hash_block_tokens, &impl, err);
            break;
        case TRACE_FMT_SESSIONS:
            rc = trace__sessions_open(l, &impl, err);
            break;
        default:
            trace__lines_close(l);
            sim_err_set(err, path, 0, 0,
                        "format: expected azure, vidur, mooncake, sessions or auto, got '%d'",
                        (int)fmt);
            return SIM_EINVAL;
    }
    if (rc != SIM_OK)
        return rc;
    if ((rc = trace__src_wrap(&impl, fmt, o, out, err)) == SIM_OK)
        snprintf((*out)->path, sizeof(*out)->path, "%s", path);
    return rc;

err:
    trace__lines_close(l);
    return rc;
}

int trace_open_synthetic(const char *spec, const trace_opts *o, trace_src **out, sim_err *err) {
    trace_opts def;
    trace__impl impl;
    int rc;

    *out = NULL;
    if ((rc = opts_resolve(&o, &def, err)) != SIM_OK)
        return rc;
    if ((rc = trace__synth_open(spec, o, &impl, err)) != SIM_OK)
        return rc;
    return trace__src_wrap(&impl, TRACE_FMT_AUTO, o, out, err);
}

static int limit_reached(const trace_src *t) {
    return t->opts.limit > 0 && t->n_emitted >= (uint64_t)t->opts.limit;
}

/* Raw open-loop time to simulated time: shift to the first arrival, then
 * divide by load_scale (exactly the identity for load_scale 1). */
static sim_time scale_arrival(trace_src *t, sim_time raw) {
    sim_time rel;
    double scaled;
    if (!t->have_t0) {
        t->have_t0 = 1;
        t->t0 = raw;
    }
    rel = raw - t->t0;
    if (t->opts.load_scale == 1.0)
        return rel;
    scaled = (double)rel / t->opts.load_scale;
    if (scaled >= 9.2e18)
        return SIM_TIME_MAX;
    return (sim_time)llround(scaled);
}

int trace_next(trace_src *t, sim_req *out, sim_err *err) {
    int rc;
    if (t->failed) {
        /* Errors are sticky: a source never resumes past a bad line. */
        if (err)
            *err = t->failed_err;
        return t->failed;
    }
    if (limit_reached(t))
        return 0;
    rc = t->ops->next(t->state, out, err);
    if (rc < 0) {
        t->failed = rc;
        if (err)
            t->failed_err = *err;
        else
            sim_err_set(&t->failed_err, "trace", 0, 0, "%s", sim_strerror(rc));
    }
    if (rc != 1)
        return rc;
    if (!t->ops->fixed_times)
        out->arrival_ns = scale_arrival(t, out->arrival_ns);
    if (out->arrival_ns > SIM_HORIZON_NS) {
        /* the file and line where the source knows them, and the time to
         * the nanosecond (%.4g printed 1000000000.5 s as 1e+09) */
        sim_err_set(
            &t->failed_err, t->path[0] ? t->path : "trace", t->path[0] ? trace_src_line(t) : 0, 0,
            "arrival: expected at most 1e9 s after the first (the simulator's horizon), "
            "got %s%lld.%09lld s for request %llu (--load-scale %g)",
            out->arrival_ns == SIM_TIME_MAX ? "more than " : "",
            (long long)(out->arrival_ns / 1000000000), (long long)(out->arrival_ns % 1000000000),
            (unsigned long long)t->n_emitted, t->opts.load_scale);
        t->failed = SIM_EINVAL;
        if (err)
            *err = t->failed_err;
        return SIM_EINVAL;
    }
    out->id = t->n_emitted++;
    SIM_DASSERT(out->prompt_tokens >= 1 && out->output_tokens >= 1);
    return 1;
}

int trace_on_end(trace_src *t, const sim_req *r, sim_time end_ns, int rejected, sim_req *out) {
    int rc;
    if (t == NULL || t->ops->on_end == NULL)
        return 0;
    if (limit_reached(t)) {
        /* Nothing more may be emitted: end the request's session (or closed
         * slot) the way a rejection does, so its state is freed now. */
        sim_req unused;
        t->ops->on_end(t->state, r, end_ns, 1, &unused);
        return 0;
    }
    rc = t->ops->on_end(t->state, r, end_ns, rejected, out);
    if (rc != 1)
        return 0;
    SIM_ASSERT(out->arrival_ns >= end_ns);
    out->id = t->n_emitted++;
    return 1;
}

long trace_src_line(const trace_src *t) {
    return t->ops->line ? t->ops->line(t->state) : 0;
}

int trace_has_followups(const trace_src *t) {
    return t->ops->on_end != NULL;
}

enum trace_format trace_src_format(const trace_src *t) {
    return t->fmt;
}

void trace_close(trace_src *t) {
    if (t == NULL)
        return;
    t->ops->destroy(t->state);
    sim_free(t);
}
