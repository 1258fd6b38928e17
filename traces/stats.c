/* stats.c: summary statistics of a request source (kvfleet trace-stats).
 *
 * Drains a file or a synthetic source and prints the number of requests,
 * the span of arrivals (duration_s, from the first arrival at 0 to the
 * last), the mean rate (requests / duration_s), and mean, p50, p90, p99 and
 * max of the prompt and output lengths (and of the new tokens per turn when
 * the source has sessions), plus the number of sessions and the mean turns
 * per session. Text by default, one JSON object with json != 0.
 *
 * Closed-loop sources (sessions, closed) only produce follow-ups when
 * requests end, and nothing is simulated here: every request is taken to
 * end the moment it arrives (trace_on_end with end = arrival). Follow-ups
 * then arrive as early as they possibly could, so duration_s is a lower
 * bound and rate_per_s an upper bound for them (the output says so).
 *
 * Memory: the lengths go to three exact-quantile stores (sim/qstore.h), which
 * keep up to QSTORE_MEM_DEFAULT values each in memory and spill the rest to
 * an unlinked temporary file, so memory does not grow with the trace.
 * Quantiles use GSL's linear interpolation between order statistics
 * (gsl_stats_quantile_from_sorted_data), the max is the 1-quantile. */
#include "config.h"
#include "trace.h"

#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "json_util.h"
#include "qstore.h"

typedef struct summary {
    double mean, p50, p90, p99, max; /* tokens */
} summary;

typedef struct tally {
    uint64_t n;          /* requests */
    sim_time last_ns;    /* latest arrival */
    qstore prompt;       /* prompt_tokens of every request */
    qstore output;       /* output_tokens */
    qstore new_tok;      /* new_tokens (printed only when the source has sessions) */
    uint64_t n_sessions; /* requests with turn 1 */
    uint64_t n_in_sess;  /* requests with a session id */
    uint64_t n_followup; /* requests that came from trace_on_end */
} tally;

static int record(tally *ty, const sim_req *r, sim_err *err) {
    int rc;
    ty->n++;
    if (r->arrival_ns > ty->last_ns)
        ty->last_ns = r->arrival_ns;
    if (r->session_id >= 0) {
        ty->n_in_sess++;
        ty->n_sessions += r->turn == 1;
    }
    if ((rc = qstore_push(&ty->prompt, r->prompt_tokens, err)) != SIM_OK ||
        (rc = qstore_push(&ty->output, r->output_tokens, err)) != SIM_OK ||
        (rc = qstore_push(&ty->new_tok, r->new_tokens, err)) != SIM_OK)
        return rc;
    return SIM_OK;
}

/* Summarises the lengths in q; all zeros when empty. */
static int summarise(qstore *q, summary *s, sim_err *err) {
    static const double f[4] = {0.50, 0.90, 0.99, 1.0};
    double v[4];
    int rc;
    memset(s, 0, sizeof *s);
    if (qstore_count(q) == 0)
        return SIM_OK;
    if ((rc = qstore_quantiles(q, f, 4, v, err)) != SIM_OK)
        return rc;
    s->mean = qstore_mean(q);
    s->p50 = v[0];
    s->p90 = v[1];
    s->p99 = v[2];
    s->max = v[3];
    return SIM_OK;
}

static json_t *summary_json(const summary *s) {
    return json_pack("{s:f,s:f,s:f,s:f,s:f}", "mean", s->mean, "p50", s->p50, "p90", s->p90, "p99",
                     s->p99, "max", s->max);
}

static void print_row(FILE *out, const char *name, const summary *s) {
    fprintf(out, "%-15s %10.1f %10.1f %10.1f %10.1f %10.0f\n", name, s->mean, s->p50, s->p90,
            s->p99, s->max);
}

static int print_json(FILE *out, const char *src, const char *fmt_name, const tally *ty,
                      double dur_s, const summary *sp, const summary *so, const summary *sn,
                      sim_err *err) {
    json_t *o;
    int bad;

    if (!sim_json_utf8_ok(src)) { /* JSON text is UTF-8; a Linux file name need not be */
        sim_err_set(err, src, 0, 0,
                    "--json: expected a file name in UTF-8 (JSON text), got one that is not "
                    "(the report without --json names it)");
        return SIM_EINVAL;
    }
    o = json_object();
    bad = o == NULL;
    bad |= json_object_set_new(o, "source", json_string(src));
    bad |= json_object_set_new(o, "format", json_string(fmt_name));
    bad |= json_object_set_new(o, "requests", json_integer((json_int_t)ty->n));
    bad |= json_object_set_new(o, "duration_s", json_real(dur_s));
    bad |= json_object_set_new(o, "rate_per_s",
                               dur_s > 0 ? json_real((double)ty->n / dur_s) : json_null());
    bad |= json_object_set_new(o, "prompt_tokens", ty->n ? summary_json(sp) : json_null());
    bad |= json_object_set_new(o, "output_tokens", ty->n ? summary_json(so) : json_null());
    if (ty->n_in_sess > 0) {
        bad |= json_object_set_new(o, "new_tokens", summary_json(sn));
        bad |= json_object_set_new(o, "sessions", json_integer((json_int_t)ty->n_sessions));
        bad |= json_object_set_new(
            o, "mean_turns",
            json_real(ty->n_sessions ? (double)ty->n_in_sess / (double)ty->n_sessions : 0));
    }
    if (ty->n_followup > 0)
        bad |= json_object_set_new(o, "duration_is_lower_bound", json_true());
    if (bad) {
        json_decref(o);
        sim_err_set(err, "trace-stats", 0, 0, "json: out of memory");
        return SIM_ENOMEM;
    }
    bad = json_dumpf(o, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    json_decref(o);
    if (bad && !ferror(out)) {
        /* json_dumpf builds the text in memory before writing it */
        sim_err_set(err, "trace-stats", 0, 0, "json: out of memory");
        return SIM_ENOMEM;
    }
    fputc('\n', out);
    return SIM_OK;
}

static void print_text(FILE *out, const char *src, const char *fmt_name, const tally *ty,
                       double dur_s, const summary *sp, const summary *so, const summary *sn) {
    fprintf(out, "%-15s %s\n", "source", src);
    fprintf(out, "%-15s %s\n", "format", fmt_name);
    fprintf(out, "%-15s %llu\n", "requests", (unsigned long long)ty->n);
    fprintf(out, "%-15s %.3f%s\n", "duration_s", dur_s, ty->n_followup ? " (lower bound)" : "");
    if (dur_s > 0)
        fprintf(out, "%-15s %.3f\n", "rate_per_s", (double)ty->n / dur_s);
    else
        fprintf(out, "%-15s n/a\n", "rate_per_s");
    if (ty->n > 0) {
        fprintf(out, "%-15s %10s %10s %10s %10s %10s\n", "", "mean", "p50", "p90", "p99", "max");
        print_row(out, "prompt_tokens", sp);
        if (ty->n_in_sess > 0)
            print_row(out, "new_tokens", sn);
        print_row(out, "output_tokens", so);
    }
    if (ty->n_in_sess > 0) {
        fprintf(out, "%-15s %llu\n", "sessions", (unsigned long long)ty->n_sessions);
        fprintf(out, "%-15s %.3f\n", "mean_turns",
                ty->n_sessions ? (double)ty->n_in_sess / (double)ty->n_sessions : 0);
    }
    if (ty->n_followup > 0)
        fprintf(out, "%-15s %s\n", "note",
                "closed loop: each request taken to end on arrival, so follow-ups come as early "
                "as possible");
}

/* Prints a source's statistics (see the file comment). Exactly one of
 * path_or_null and synthetic_spec_or_null must be given. Returns SIM_OK, or
 * the source's error code with *err filled (SIM_EINVAL for bad arguments). */
int trace_stats_print(FILE *out, const char *path_or_null, const char *synthetic_spec_or_null,
                      enum trace_format fmt, const trace_opts *o, int json, sim_err *err) {
    trace_src *t = NULL;
    tally ty;
    sim_req r, f;
    summary sp, so, sn;
    const char *src, *fmt_name;
    double dur_s;
    int rc;

    memset(&ty, 0, sizeof ty);
    qstore_init(&ty.prompt, 0);
    qstore_init(&ty.output, 0);
    qstore_init(&ty.new_tok, 0);
    if ((path_or_null == NULL) == (synthetic_spec_or_null == NULL)) {
        sim_err_set(err, "trace-stats", 0, 0,
                    "source: expected a trace file or a --synthetic spec (one of them), got %s",
                    path_or_null ? "both" : "neither");
        return SIM_EINVAL;
    }
    if (path_or_null)
        rc = trace_open_file(path_or_null, fmt, o, &t, err);
    else
        rc = trace_open_synthetic(synthetic_spec_or_null, o, &t, err);
    if (rc != SIM_OK)
        goto out;
    for (;;) {
        rc = trace_next(t, &r, err);
        if (rc < 0)
            goto out;
        if (rc == 0)
            break;
        if ((rc = record(&ty, &r, err)) != SIM_OK)
            goto out;
        /* Closed loop: end each request on arrival and follow the chain. */
        while (trace_on_end(t, &r, r.arrival_ns, 0, &f) == 1) {
            if (f.arrival_ns > SIM_HORIZON_NS) { /* so later still in a run, which fails */
                sim_err_followup_horizon(err, (long long)f.session_id, (int)f.turn,
                                         (long long)f.arrival_ns, "at least ");
                rc = SIM_EINVAL;
                goto out;
            }
            ty.n_followup++;
            r = f;
            if ((rc = record(&ty, &r, err)) != SIM_OK)
                goto out;
        }
    }
    dur_s = sim_time_to_s(ty.last_ns);
    if ((rc = summarise(&ty.prompt, &sp, err)) != SIM_OK ||
        (rc = summarise(&ty.output, &so, err)) != SIM_OK ||
        (rc = summarise(&ty.new_tok, &sn, err)) != SIM_OK)
        goto out;
    src = path_or_null ? path_or_null : synthetic_spec_or_null;
    fmt_name = path_or_null ? trace_format_name(trace_src_format(t)) : "synthetic";
    if (json)
        rc = print_json(out, src, fmt_name, &ty, dur_s, &sp, &so, &sn, err);
    else {
        print_text(out, src, fmt_name, &ty, dur_s, &sp, &so, &sn);
        rc = SIM_OK;
    }
    /* stdio buffers the text: a write error (a full disk, a closed pipe)
     * shows only once it is flushed, and is sticky in ferror */
    if (rc == SIM_OK && (fflush(out) != 0 || ferror(out))) {
        sim_err_set(err, "trace-stats", 0, 0, "output: write error: %s", strerror(errno));
        rc = SIM_EIO;
    }

out:
    qstore_free(&ty.prompt);
    qstore_free(&ty.output);
    qstore_free(&ty.new_tok);
    trace_close(t);
    return rc;
}
