/* test_traces.c: request sources (traces/).
 *
 * Readers on small fixtures in tests/data with exact expected values
 * (arrival ns, lengths, ids, hash ids, --load-scale, --limit); malformed
 * inputs with the exact code and full message (jansson check_error); the
 * closed loop of sessions (follow-up = end + think, context accumulation,
 * rejection ends a session); synthetic determinism, rates within statistical
 * tolerance, closed-loop concurrency accounting and spec errors; statistics;
 * the shipped data files; and fault injection: the k-th sim_malloc fails,
 * for every k, with jansson routed through sim_malloc too. */
#include "config.h"
#include "trace.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "mem.h"
#include "t.h"

#define DATA KV_TEST_DATADIR "/"
#define S(x) ((int64_t)(x)*SIM_NS_PER_S)

static char tmpdir[256];
static char last_msg[1200]; /* the last chaos run's error message */

/* ---- helpers ---- */

static trace_src *open_ok(const char *path, enum trace_format fmt, const trace_opts *o) {
    trace_src *t = NULL;
    sim_err e;
    int rc = trace_open_file(path, fmt, o, &t, &e);
    if (rc != SIM_OK) {
        char buf[1200];
        sim_err_format(&e, buf, sizeof buf);
        T_FAIL_("open %s: %d %s", path, rc, buf);
    }
    return t;
}

static trace_src *synth_ok(const char *spec, uint64_t seed) {
    trace_src *t = NULL;
    trace_opts o;
    sim_err e;
    int rc;
    trace_opts_default(&o);
    o.seed = seed;
    rc = trace_open_synthetic(spec, &o, &t, &e);
    if (rc != SIM_OK) {
        char buf[1200];
        sim_err_format(&e, buf, sizeof buf);
        T_FAIL_("synthetic %s: %d %s", spec, rc, buf);
    }
    return t;
}

static void next_ok(trace_src *t, sim_req *r) {
    sim_err e;
    int rc = trace_next(t, r, &e);
    if (rc != 1) {
        char buf[1200];
        sim_err_format(&e, buf, sizeof buf);
        T_FAIL_("trace_next returned %d: %s", rc, buf);
    }
}

static void next_end(trace_src *t) {
    sim_req r;
    sim_err e;
    T_EQ_I(trace_next(t, &r, &e), 0);
}

static void expect_req(const sim_req *r, uint64_t id, sim_time arrival, int prompt, int output) {
    T_EQ_I(r->id, id);
    T_EQ_I(r->arrival_ns, arrival);
    T_EQ_I(r->prompt_tokens, prompt);
    T_EQ_I(r->new_tokens, prompt);
    T_EQ_I(r->output_tokens, output);
    T_EQ_I(r->session_id, -1);
    T_EQ_I(r->turn, 0);
}

/* Writes content to tmpdir/name and returns the path (static buffer per call slot). */
/* Writes len bytes of content (NUL bytes included) to tmpdir/name. */
static const char *write_tmp_n(const char *name, const char *content, size_t len) {
    static char paths[4][512];
    static int slot;
    char *p = paths[slot++ % 4];
    FILE *f;
    snprintf(p, 512, "%s/%s", tmpdir, name);
    f = fopen(p, "wb");
    T_ASSERT(f != NULL);
    T_ASSERT(fwrite(content, 1, len, f) == len);
    fclose(f);
    return p;
}

static const char *write_tmp(const char *name, const char *content) {
    return write_tmp_n(name, content, strlen(content));
}

/* Opens path (fmt), reads until the first error; checks code and the full
 * formatted message, where "@" in want stands for the path and a final "*"
 * makes want a prefix. */
static void expect_file_error(const char *path, enum trace_format fmt, int want_rc,
                              const char *want) {
    trace_src *t = NULL;
    sim_err e;
    sim_req r;
    char got[1200], exp[1200];
    const char *at = strchr(want, '@');
    int rc;

    sim_err_clear(&e);
    rc = trace_open_file(path, fmt, NULL, &t, &e);
    while (rc == SIM_OK) {
        rc = trace_next(t, &r, &e);
        if (rc == 1)
            rc = SIM_OK;
        else if (rc == 0)
            T_FAIL_("%s: read to the end without the expected error: %s", path, want);
    }
    if (t != NULL) {
        /* Errors are sticky: the same code and record again. */
        sim_err e2;
        T_EQ_I(trace_next(t, &r, &e2), rc);
        T_STREQ(e2.src, e.src);
        T_STREQ(e2.msg, e.msg);
        T_EQ_I(e2.line, e.line);
        T_EQ_I(e2.col, e.col);
        trace_close(t);
    }
    T_ASSERT(at != NULL);
    snprintf(exp, sizeof exp, "%.*s%s%s", (int)(at - want), want, path, at + 1);
    sim_err_format(&e, got, sizeof got);
    T_EQ_I(rc, want_rc);
    if (exp[strlen(exp) - 1] == '*') { /* a prefix: the rest is jansson's own text */
        exp[strlen(exp) - 1] = '\0';
        got[strlen(exp) < sizeof got ? strlen(exp) : sizeof got - 1] = '\0';
    }
    T_STREQ(got, exp);
}

/* A malformed CSV file: its header, the rows after it, the file's name and
 * the message expected (as expect_file_error takes it). */
typedef struct bad_rows {
    const char *hdr, *name, *rows, *want;
} bad_rows;

/* expect_file_error (any format, SIM_EPARSE) for each of n files. */
static void expect_rows_errors(const bad_rows *bad, size_t n) {
    char buf[1024];
    size_t k;
    for (k = 0; k < n; k++) {
        snprintf(buf, sizeof buf, "%s%s", bad[k].hdr, bad[k].rows);
        expect_file_error(write_tmp(bad[k].name, buf), TRACE_FMT_AUTO, SIM_EPARSE, bad[k].want);
    }
}

static void expect_spec_error(const char *spec, const char *want) {
    trace_src *t = NULL;
    sim_err e;
    char got[1200];
    int rc = trace_open_synthetic(spec, NULL, &t, &e);
    T_ASSERT(t == NULL);
    sim_err_format(&e, got, sizeof got);
    T_EQ_I(rc, SIM_EINVAL);
    T_STREQ(e.src, "--synthetic");
    T_STREQ(got, want);
}

/* ---- readers ---- */

static void test_azure_datetime(void) {
    trace_src *t = open_ok(DATA "azure_small.csv", TRACE_FMT_AUTO, NULL);
    sim_req r;
    T_EQ_I(trace_src_format(t), TRACE_FMT_AZURE);
    next_ok(t, &r);
    expect_req(&r, 0, 0, 374, 44);
    T_EQ_I(r.n_hash_ids, 0);
    T_ASSERT(r.hash_ids == NULL);
    next_ok(t, &r);
    expect_req(&r, 1, 4314579000LL, 396, 109);
    next_ok(t, &r); /* same time: ties are fine */
    expect_req(&r, 2, 4314579000LL, 879, 31);
    next_ok(t, &r); /* 9 fractional digits */
    expect_req(&r, 3, 20653319409999LL, 1, 1);
    next_ok(t, &r); /* next day, 1 fractional digit */
    expect_req(&r, 4, 20653819410000LL, 20, 2);
    next_end(t);
    next_end(t);
    trace_close(t);

    /* Leap day and a year boundary, 'T' separator, no fraction. */
    t = open_ok(DATA "azure_leap.csv", TRACE_FMT_AZURE, NULL);
    next_ok(t, &r);
    expect_req(&r, 0, 0, 10, 1);
    next_ok(t, &r);
    expect_req(&r, 1, S(59 * 86400 + 43200 + 1), 11, 2);
    next_ok(t, &r);
    expect_req(&r, 2, S(60 * 86400 + 1), 12, 3);
    next_end(t);
    trace_close(t);
}

static void test_azure_seconds(void) {
    trace_src *t = open_ok(DATA "azure_seconds.csv", TRACE_FMT_AUTO, NULL);
    sim_req r;
    next_ok(t, &r);
    expect_req(&r, 0, 0, 10, 20);
    next_ok(t, &r);
    expect_req(&r, 1, 0, 11, 21);
    next_ok(t, &r);
    expect_req(&r, 2, 750000000LL, 12, 22);
    next_ok(t, &r); /* 1e3 */
    expect_req(&r, 3, 899500000000LL, 13, 23);
    next_end(t);
    trace_close(t);
}

static void test_load_scale_limit(void) {
    trace_opts o;
    trace_src *t;
    sim_req r;

    trace_opts_default(&o);
    T_NEAR(o.load_scale, 1.0, 0);
    T_EQ_I(o.limit, 0);
    T_EQ_I(o.seed, 1);
    o.load_scale = 2;
    t = open_ok(DATA "azure_small.csv", TRACE_FMT_AZURE, &o);
    next_ok(t, &r);
    T_EQ_I(r.arrival_ns, 0);
    next_ok(t, &r);
    T_EQ_I(r.arrival_ns, 2157289500LL);
    trace_close(t);

    o.load_scale = 0.5;
    o.limit = 2;
    t = open_ok(DATA "azure_small.csv", TRACE_FMT_AZURE, &o);
    next_ok(t, &r);
    next_ok(t, &r);
    T_EQ_I(r.id, 1);
    T_EQ_I(r.arrival_ns, 8629158000LL);
    next_end(t);
    trace_close(t);

    {
        trace_src *bad = NULL;
        sim_err e;
        char buf[1200];
        o.load_scale = 0;
        o.limit = 0;
        T_EQ_I(trace_open_file(DATA "azure_small.csv", TRACE_FMT_AUTO, &o, &bad, &e), SIM_EINVAL);
        sim_err_format(&e, buf, sizeof buf);
        T_STREQ(buf, "trace options: load_scale: expected a finite number > 0, got '0'");
        T_ASSERT(bad == NULL);
    }

    /* An arrival past the horizon names the file, the line where the reader
     * knows it, and the time to the nanosecond (it said 'trace: ... got
     * 1e+09 s', found by fuzzing). */
    expect_file_error(write_tmp("hz.csv", "arrived_at,num_prefill_tokens,num_decode_tokens\n"
                                          "0,10,2\n5,10,2\n1000000000.5,10,2\n"),
                      TRACE_FMT_AUTO, SIM_EINVAL,
                      "@:4: arrival: expected at most 1e9 s after the first (the simulator's "
                      "horizon), got 1000000000.500000000 s for request 2 (--load-scale 1)");
    expect_file_error(
        write_tmp("hz.jsonl", "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 1}\n"
                              "{\"timestamp\": 2e12, \"input_length\": 5, \"output_length\": 1}\n"),
        TRACE_FMT_AUTO, SIM_EINVAL,
        "@:2: arrival: expected at most 1e9 s after the first (the simulator's "
        "horizon), got 2000000000.000000000 s for request 1 (--load-scale 1)");
}

static void test_vidur(void) {
    trace_src *t = open_ok(DATA "vidur_small.csv", TRACE_FMT_AUTO, NULL);
    sim_req r;
    T_EQ_I(trace_src_format(t), TRACE_FMT_VIDUR);
    next_ok(t, &r);
    expect_req(&r, 0, 0, 374, 44);
    next_ok(t, &r);
    expect_req(&r, 1, 4314579000LL, 396, 109);
    next_ok(t, &r); /* more than 9 digits: rounded to the ns */
    expect_req(&r, 2, 4314579123LL, 100, 1);
    next_ok(t, &r);
    expect_req(&r, 3, S(10), 7, 3);
    next_end(t);
    trace_close(t);
}

static void test_bom(void) {
    trace_src *t = open_ok(write_tmp("bom.csv", "\xEF\xBB\xBF"
                                                "arrived_at,num_prefill_tokens,"
                                                "num_decode_tokens\n  1.5 , 7 ,\t8\n"),
                           TRACE_FMT_AUTO, NULL);
    sim_req r;
    T_EQ_I(trace_src_format(t), TRACE_FMT_VIDUR);
    next_ok(t, &r); /* fields are trimmed */
    expect_req(&r, 0, 0, 7, 8);
    next_end(t);
    trace_close(t);
}

static void test_mooncake(void) {
    trace_src *t = open_ok(DATA "mooncake_small.jsonl", TRACE_FMT_AUTO, NULL);
    sim_req r;
    int i;
    T_EQ_I(trace_src_format(t), TRACE_FMT_MOONCAKE);
    next_ok(t, &r);
    expect_req(&r, 0, 0, 1024, 10);
    T_EQ_I(r.n_hash_ids, 2);
    T_EQ_I(r.hash_ids[0], 0);
    T_EQ_I(r.hash_ids[1], 1);
    next_ok(t, &r);
    expect_req(&r, 1, 500000000LL, 513, 5);
    T_EQ_I(r.n_hash_ids, 2);
    T_EQ_I(r.hash_ids[1], 2);
    next_ok(t, &r); /* real milliseconds, the largest hash id */
    expect_req(&r, 2, 500500000LL, 20, 1);
    T_EQ_I(r.n_hash_ids, 1);
    T_EQ_I(r.hash_ids[0], 4294967295u);
    next_ok(t, &r); /* no hash_ids */
    expect_req(&r, 3, 1000000000LL, 7, 3);
    T_EQ_I(r.n_hash_ids, 0);
    T_ASSERT(r.hash_ids == NULL);
    next_ok(t, &r); /* a line longer than the first line buffer */
    expect_req(&r, 4, 1000000000LL, 51200, 2);
    T_EQ_I(r.n_hash_ids, 100);
    for (i = 0; i < 100; i++)
        T_EQ_I(r.hash_ids[i], 100 + i);
    next_end(t);
    trace_close(t);
}

/* An id whose earlier session is still live opens a second, separate
 * session: each turn 2 follows its own turn 1, whatever the order they end
 * in (the reader used to refuse the row, or not, by how far it had read). */
static void test_sessions_same_id(void) {
    trace_src *t = open_ok(write_tmp("same_id.csv", "session_id,turn,start_s,think_s,"
                                                    "prompt_tokens,output_tokens\n"
                                                    "1,1,0,0,10,5\n1,2,0,1,20,5\n"
                                                    "1,1,2,0,100,50\n1,2,2,3,200,50\n"),
                           TRACE_FMT_AUTO, NULL);
    sim_req a, b, fa, fb;
    next_ok(t, &a);
    next_ok(t, &b);
    next_end(t);
    T_EQ_I(a.session_id, 1);
    T_EQ_I(b.session_id, 1);
    T_ASSERT(a.session_key != b.session_key);
    /* the second session's turn 1 ends first */
    T_EQ_I(trace_on_end(t, &b, S(4), 0, &fb), 1);
    T_EQ_I(fb.arrival_ns, S(7));
    T_EQ_I(fb.prompt_tokens, 100 + 50 + 200);
    T_EQ_I(fb.session_key, b.session_key);
    T_EQ_I(trace_on_end(t, &a, S(5), 0, &fa), 1);
    T_EQ_I(fa.arrival_ns, S(6));
    T_EQ_I(fa.prompt_tokens, 10 + 5 + 20);
    T_EQ_I(fa.session_key, a.session_key);
    T_EQ_I(trace_on_end(t, &fa, S(8), 0, &fb), 0); /* last turns */
    T_EQ_I(trace_on_end(t, &fb, S(9), 0, &fa), 0);
    trace_close(t);
}

static void test_sessions_file(void) {
    trace_src *t = open_ok(DATA "sessions_small.csv", TRACE_FMT_AUTO, NULL);
    sim_req r7, r3, r9, f, g;
    T_EQ_I(trace_src_format(t), TRACE_FMT_SESSIONS);

    next_ok(t, &r7);
    T_EQ_I(r7.id, 0);
    T_EQ_I(r7.arrival_ns, 0);
    T_EQ_I(r7.session_id, 7);
    T_EQ_I(r7.turn, 1);
    T_EQ_I(r7.prompt_tokens, 100);
    T_EQ_I(r7.new_tokens, 100);
    T_EQ_I(r7.output_tokens, 50);
    next_ok(t, &r3);
    T_EQ_I(r3.id, 1);
    T_EQ_I(r3.arrival_ns, S(2));
    T_EQ_I(r3.session_id, 3);
    next_ok(t, &r9);
    T_EQ_I(r9.id, 2);
    T_EQ_I(r9.arrival_ns, S(2));
    T_EQ_I(r9.session_id, 9);
    next_end(t);

    /* Turn 2 arrives think (5.5 s) after turn 1 ends; its prompt is the
     * whole context: 100 + 50 + 20. */
    T_EQ_I(trace_on_end(t, &r7, S(1), 0, &f), 1);
    T_EQ_I(f.id, 3);
    T_EQ_I(f.arrival_ns, 6500000000LL);
    T_EQ_I(f.session_id, 7);
    T_EQ_I(f.turn, 2);
    T_EQ_I(f.prompt_tokens, 170);
    T_EQ_I(f.new_tokens, 20);
    T_EQ_I(f.output_tokens, 30);
    /* A stale report (turn 1 again) moves nothing. */
    T_EQ_I(trace_on_end(t, &r7, S(2), 0, &g), 0);
    T_EQ_I(trace_on_end(t, &f, S(7), 0, &g), 1);
    T_EQ_I(g.id, 4);
    T_EQ_I(g.arrival_ns, S(8));
    T_EQ_I(g.turn, 3);
    T_EQ_I(g.prompt_tokens, 170 + 30 + 10);
    T_EQ_I(g.new_tokens, 10);
    T_EQ_I(g.output_tokens, 5);
    T_EQ_I(trace_on_end(t, &g, S(9), 0, &f), 0);  /* last turn */
    T_EQ_I(trace_on_end(t, &r3, S(3), 0, &f), 0); /* single-turn session */
    /* A rejected turn ends its session: the user leaves. */
    T_EQ_I(trace_on_end(t, &r9, S(3), 1, &f), 0);
    T_EQ_I(trace_on_end(t, &r9, S(3), 0, &f), 0);
    trace_close(t);

    /* load_scale divides session starts only; think times stay. limit counts turns. */
    {
        trace_opts o;
        trace_opts_default(&o);
        o.load_scale = 2;
        o.limit = 4;
        t = open_ok(DATA "sessions_small.csv", TRACE_FMT_SESSIONS, &o);
        next_ok(t, &r7);
        next_ok(t, &r3);
        T_EQ_I(r3.arrival_ns, S(1));
        T_EQ_I(trace_on_end(t, &r7, S(1), 0, &f), 1);
        T_EQ_I(f.arrival_ns, 6500000000LL);
        next_ok(t, &r9);
        T_EQ_I(r9.id, 3);
        next_end(t); /* limit reached */
        T_EQ_I(trace_on_end(t, &f, S(7), 0, &g), 0);
        T_EQ_I(trace_on_end(t, &r9, S(7), 0, &g), 0);
        trace_close(t);
    }
}

/* ---- malformed input ---- */

static void test_errors(void) {
    const char *hdr = "TIMESTAMP,ContextTokens,GeneratedTokens\n";
    const char *vh = "arrived_at,num_prefill_tokens,num_decode_tokens\n";
    const char *sh = "session_id,turn,start_s,think_s,prompt_tokens,output_tokens\n";
    char buf[1024];

    expect_file_error(DATA "bad.csv", TRACE_FMT_AUTO, SIM_EPARSE,
                      "@:3:2: ContextTokens: expected a positive integer, got 'abc'");

    /* a NUL byte is an error where it stands, never the end of a line (a
     * row starting with one was once skipped as blank, one inside a row
     * joined it to the next) */
    {
        /* a file's bytes (its size given: they hold NULs) and where the NUL is */
        static const struct {
            const char *name, *bytes;
            size_t n;
            const char *at;
        } nul[] = {
#define NUL_CASE(name, lit, at) {name, lit, sizeof lit - 1, at}
            NUL_CASE("nul1.csv",
                     "TIMESTAMP,ContextTokens,GeneratedTokens\n0,100,10\n\0"
                     "1,5,5\n2,7,7\n",
                     "3:1"),
            NUL_CASE("nul2.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n0,100,10\n1,5\0,5\n",
                     "3:4"),
            NUL_CASE("nul3.jsonl",
                     "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 2}\n\0\n", "2:1"),
            NUL_CASE("nul4.csv",
                     "session_id,turn,start_s,think_s,prompt_tokens,output_tokens\n1,1,0,0,5,\0"
                     "2\n",
                     "2:11"),
            NUL_CASE("nul5.csv", "\0\0\0\n", "1:1"),
#undef NUL_CASE
        };
        size_t k;
        for (k = 0; k < sizeof nul / sizeof nul[0]; k++) {
            char want[160];
            snprintf(want, sizeof want,
                     "@:%s: line: expected text, got a NUL byte (a binary file?)", nul[k].at);
            expect_file_error(write_tmp_n(nul[k].name, nul[k].bytes, nul[k].n), TRACE_FMT_AUTO,
                              SIM_EPARSE, want);
        }
    }

    /* the line limit: 16 MiB, its newline included (a line of exactly
     * 16 MiB was refused: the buffer's NUL counted against it) */
    {
        const char *row = "0,10,5";
        size_t hl = strlen(hdr), lim = (size_t)16 << 20, k;
        for (k = 0; k < 2; k++) {
            size_t len = hl + lim + k; /* the second line: lim + k bytes */
            char *b = malloc(len);
            const char *path;
            trace_src *t = NULL;
            sim_err e;
            sim_req r;
            T_ASSERT(b != NULL);
            memcpy(b, hdr, hl);
            memcpy(b + hl, row, strlen(row));
            memset(b + hl + strlen(row), ' ', lim + k - strlen(row) - 1);
            b[len - 1] = '\n';
            path = write_tmp_n("long.csv", b, len);
            free(b);
            if (k == 0) {
                T_EQ_I(trace_open_file(path, TRACE_FMT_AUTO, NULL, &t, &e), SIM_OK);
                T_EQ_I(trace_next(t, &r, &e), 1);
                T_EQ_I(r.prompt_tokens, 10);
                T_EQ_I(trace_next(t, &r, &e), 0);
                trace_close(t);
            } else {
                expect_file_error(path, TRACE_FMT_AUTO, SIM_EPARSE,
                                  "@:2: line: expected at most 16777216 bytes, got a longer line");
            }
        }
    }

    {
        /* one malformed file each: header, rows after it, name, message */
        const bad_rows bad[] = {
            {"TIMESTAMP,ContextTokens,GeneratedTokens,contexttokens\n", "dupcol.csv",
             "2023-11-16 18:15:46,374,44,5\n",
             "@:1: header: expected one 'ContextTokens' column, got 2"},
            {hdr, "cols.csv", "2023-11-16 18:15:46,374,44\n2023-11-16 18:15:50,396\n",
             "@:3: row: expected 3 fields as in the header, got 2 in "
             "'2023-11-16 18:15:50,396'"},
            {hdr, "zero.csv", "2023-11-16 18:15:46,374,0\n",
             "@:2:3: GeneratedTokens: expected a positive integer, got '0'"},
            {hdr, "neg.csv", "2023-11-16 18:15:46,-5,3\n",
             "@:2:2: ContextTokens: expected a positive integer, got '-5'"},
            {hdr, "big.csv", "2023-11-16 18:15:46,3000000000,3\n",
             "@:2:2: ContextTokens: expected a positive integer <= 2147483647, got "
             "'3000000000'"},
            {hdr, "frac.csv", "2023-11-16 18:15:46,1.5,3\n",
             "@:2:2: ContextTokens: expected a positive integer, got '1.5'"},
            {hdr, "back.csv", "2023-11-16 18:15:46,5,3\n2023-11-16 18:15:45.9,5,3\n",
             "@:3:1: TIMESTAMP: expected a time >= the previous row's (rows sorted by "
             "arrival), got '2023-11-16 18:15:45.9'"},
            {hdr, "feb29.csv", "2023-02-29 00:00:00,5,3\n",
             "@:2:1: TIMESTAMP: expected a datetime 'YYYY-MM-DD HH:MM:SS[.fffffffff]' "
             "or seconds in [0, 9.2e9], got '2023-02-29 00:00:00'"},
            {hdr, "digits.csv", "2023-11-16 18:15:46.1234567891,5,3\n",
             "@:2:1: TIMESTAMP: expected a datetime 'YYYY-MM-DD HH:MM:SS[.fffffffff]' "
             "or seconds in [0, 9.2e9], got '2023-11-16 18:15:46.1234567891'"},
            /* values of the right form out of range say what the range is */
            {hdr, "big_s.csv", "5,5,3\n1e10,5,3\n",
             "@:3:1: TIMESTAMP: expected a number of seconds in [0, 9.2e9], got '1e10'"},
            {hdr, "span.csv", "0000-01-01 00:00:00,5,3\n9999-12-31 00:00:00,5,3\n",
             "@:3:1: TIMESTAMP: expected a datetime within 100000 days of the first "
             "row's, got '9999-12-31 00:00:00'"},
            {hdr, "mixed.csv", "2023-11-16 18:15:46,5,3\n12.5,5,3\n",
             "@:3:1: TIMESTAMP: expected a datetime 'YYYY-MM-DD HH:MM:SS[.fffffffff]' "
             "like the first row's, got '12.5'"},
            {vh, "nan.csv", "0.5,5,3\nnan,5,3\n",
             "@:3:1: arrived_at: expected a number of seconds in [0, 9.2e9], got 'nan'"},
            {vh, "inf.csv", "inf,5,3\n",
             "@:2:1: arrived_at: expected a number of seconds in [0, 9.2e9], got 'inf'"},
            {vh, "negt.csv", "-1,5,3\n",
             "@:2:1: arrived_at: expected a number of seconds in [0, 9.2e9], got '-1'"},
            {vh, "hex.csv", "0x10,5,3\n",
             "@:2:1: arrived_at: expected a number of seconds in [0, 9.2e9], got '0x10'"},
            {vh, "vback.csv", "5.0,5,3\r\n4.0,5,3\r\n",
             "@:3:1: arrived_at: expected a time >= the previous row's (rows sorted by "
             "arrival), got '4.0'"},
        };
        expect_rows_errors(bad, sizeof bad / sizeof bad[0]);
    }
    expect_file_error(write_tmp("empty.csv", ""), TRACE_FMT_AUTO, SIM_EPARSE,
                      "@:1: header: expected a trace header (azure, vidur, sessions CSV or "
                      "Mooncake JSONL), got an empty file");
    expect_file_error(write_tmp("blank.csv", "\n  \r\n"), TRACE_FMT_AZURE, SIM_EPARSE,
                      "@:1: header: expected 'TIMESTAMP,ContextTokens,GeneratedTokens' (azure), "
                      "got an empty file");
    expect_file_error(write_tmp("nohdr.csv", "2023-11-16 18:15:46,374,44\n"), TRACE_FMT_AUTO,
                      SIM_EPARSE,
                      "@:1: header: expected 'TIMESTAMP,ContextTokens,GeneratedTokens' (azure), "
                      "'arrived_at,num_prefill_tokens,num_decode_tokens' (vidur), "
                      "'session_id,turn,start_s,think_s,prompt_tokens,output_tokens' (sessions) "
                      "or a JSON object (mooncake), got '2023-11-16 18:15:46,374,44'");
    /* a header written by hand or exported: the message says what is wrong */
    expect_file_error(write_tmp("tabs.csv", "TIMESTAMP\tContextTokens\tGeneratedTokens\n0\t5\t3\n"),
                      TRACE_FMT_AUTO, SIM_EPARSE,
                      "@:1: header: expected 'TIMESTAMP,ContextTokens,GeneratedTokens' (azure), "
                      "'arrived_at,num_prefill_tokens,num_decode_tokens' (vidur), "
                      "'session_id,turn,start_s,think_s,prompt_tokens,output_tokens' (sessions) "
                      "or a JSON object (mooncake), got "
                      "'TIMESTAMP\tContextTokens\tGeneratedTokens' (fields are separated by "
                      "commas; this line has tabs)");
    expect_file_error(write_tmp("quoted.csv", "\"arrived_at\",\"num_prefill_tokens\","
                                              "\"num_decode_tokens\"\n0,5,3\n"),
                      TRACE_FMT_AUTO, SIM_EPARSE,
                      "@:1: header: expected 'TIMESTAMP,ContextTokens,GeneratedTokens' (azure), "
                      "'arrived_at,num_prefill_tokens,num_decode_tokens' (vidur), "
                      "'session_id,turn,start_s,think_s,prompt_tokens,output_tokens' (sessions) "
                      "or a JSON object (mooncake), got "
                      "'\"arrived_at\",\"num_prefill_tokens\",\"num_decode_tokens\"' (fields "
                      "are never quoted; remove the double quotes)");
    expect_file_error(write_tmp("array.jsonl", "[{\"timestamp\": 0}]\n"), TRACE_FMT_AUTO,
                      SIM_EPARSE,
                      "@:1: header: expected 'TIMESTAMP,ContextTokens,GeneratedTokens' (azure), "
                      "'arrived_at,num_prefill_tokens,num_decode_tokens' (vidur), "
                      "'session_id,turn,start_s,think_s,prompt_tokens,output_tokens' (sessions) "
                      "or a JSON object (mooncake), got '[{\"timestamp\": 0}]' (Mooncake JSONL "
                      "holds one JSON object per line, not a JSON array)");
    snprintf(buf, sizeof buf, "%s0.5,5,3\n", vh);
    expect_file_error(write_tmp("wrongfmt.csv", buf), TRACE_FMT_AZURE, SIM_EPARSE,
                      "@:1: header: expected a 'TIMESTAMP' column (azure: "
                      "'TIMESTAMP,ContextTokens,GeneratedTokens'), got "
                      "'arrived_at,num_prefill_tokens,num_decode_tokens'");
    expect_file_error(write_tmp("arxiv.csv", "num_prefill_tokens,num_decode_tokens,"
                                             "num_total_tokens,pd_ratio\n3772,54,3826,69.8\n"),
                      TRACE_FMT_AUTO, SIM_EPARSE,
                      "@:1: header: expected an 'arrived_at' column (vidur: "
                      "'arrived_at,num_prefill_tokens,num_decode_tokens'), got "
                      "'num_prefill_tokens,num_decode_tokens,num_total_tokens,pd_ratio' (a "
                      "length-only file has no arrival times to replay)");
    expect_file_error(DATA "no_such_file.csv", TRACE_FMT_AUTO, SIM_EIO,
                      "@: cannot open: No such file or directory");

    /* Mooncake JSONL. */
    expect_file_error(write_tmp("m1.jsonl", "{\"timestamp\": 0, \"input_length\": 5, "
                                            "\"output_length\": 1}\n{\"timestamp\": 1,\n"),
                      TRACE_FMT_AUTO, SIM_EPARSE,
                      "@:2:16: json: expected a JSON object, got invalid JSON (*");
    expect_file_error(write_tmp("m2.jsonl", "{\"timestamp\": 0, \"output_length\": 1}\n"),
                      TRACE_FMT_MOONCAKE, SIM_EPARSE,
                      "@:1: input_length: expected a positive integer, got nothing");
    expect_file_error(write_tmp("m3.jsonl", "{\"timestamp\": 0, \"input_length\": 5, "
                                            "\"output_length\": \"5\"}\n"),
                      TRACE_FMT_AUTO, SIM_EPARSE,
                      "@:1: output_length: expected a positive integer, got '\"5\"'");
    expect_file_error(write_tmp("m4.jsonl", "{\"timestamp\": 0, \"input_length\": 5, "
                                            "\"output_length\": 1, \"hash_ids\": [3, -1]}\n"),
                      TRACE_FMT_AUTO, SIM_EPARSE,
                      "@:1: hash_ids[1]: expected an integer in 0..4294967295, got '-1'");
    expect_file_error(write_tmp("m5.jsonl", "{\"timestamp\": 10, \"input_length\": 5, "
                                            "\"output_length\": 1}\n{\"timestamp\": 9.5, "
                                            "\"input_length\": 5, \"output_length\": 1}\n"),
                      TRACE_FMT_AUTO, SIM_EPARSE,
                      "@:2: timestamp: expected a time >= the previous line's (lines sorted by "
                      "arrival), got '9.5'");
    expect_file_error(write_tmp("m6.jsonl", "{\"timestamp\": -1, \"input_length\": 5, "
                                            "\"output_length\": 1}\n"),
                      TRACE_FMT_AUTO, SIM_EPARSE,
                      "@:1: timestamp: expected a number of milliseconds in [0, 9.2e12], got '-1'");
    expect_file_error(write_tmp("m7.jsonl", "[1, 2]\n"), TRACE_FMT_MOONCAKE, SIM_EPARSE,
                      "@:1: json: expected a JSON object, got an array");
    /* more hash ids than the prompt has tokens (so blocks), on line 2:
     * 3 ids for 3 tokens is the most a line may have */
    expect_file_error(write_tmp("m8.jsonl", "{\"timestamp\": 0, \"input_length\": 3, "
                                            "\"output_length\": 1, \"hash_ids\": [1, 2, 3]}\n"
                                            "{\"timestamp\": 10, \"input_length\": 3, "
                                            "\"output_length\": 1, \"hash_ids\": [1, 2, 3, 4]}\n"),
                      TRACE_FMT_AUTO, SIM_EPARSE,
                      "@:2: hash_ids: expected at most 3 ids for input_length 3 (one id per block "
                      "of the prompt, a block at least 1 token), got 4");
    /* a real where an integer belongs shows as a real, not as '10' */
    expect_file_error(write_tmp("m9.jsonl", "{\"timestamp\": 0, \"input_length\": 10.0, "
                                            "\"output_length\": 5}\n"),
                      TRACE_FMT_AUTO, SIM_EPARSE,
                      "@:1: input_length: expected a positive integer, got '10.0'");
    expect_file_error(write_tmp("m10.jsonl", "{\"timestamp\": 0, \"input_length\": 10, "
                                             "\"output_length\": 5, \"hash_ids\": [1, 2.0]}\n"),
                      TRACE_FMT_AUTO, SIM_EPARSE,
                      "@:1: hash_ids[1]: expected an integer in 0..4294967295, got '2.0'");
    expect_file_error(write_tmp("m11.jsonl", "{\"timestamp\": 0, \"input_length\": 1e1, "
                                             "\"output_length\": 5}\n"),
                      TRACE_FMT_AUTO, SIM_EPARSE,
                      "@:1: input_length: expected a positive integer, got '10.0'");
    /* a key twice: refused, not last-one-wins */
    expect_file_error(write_tmp("m12.jsonl", "{\"timestamp\": 0, \"input_length\": 10, "
                                             "\"output_length\": 5}\n{\"timestamp\": 1, "
                                             "\"input_length\": 10, \"output_length\": 5, "
                                             "\"input_length\": 7}\n"),
                      TRACE_FMT_AUTO, SIM_EPARSE,
                      "@:2:71: json: expected each key once, got a key twice (duplicate object key "
                      "near '\"input_length\"')");

    /* Sessions CSV. */
    {
        const bad_rows bad[] = {
            {sh, "s1.csv", "1,1,0,0,10,5\n1,3,0,1,10,5\n",
             "@:3:2: turn: expected 2 (session 1's turns are consecutive), got '3'"},
            {sh, "s2.csv", "1,2,0,0,10,5\n",
             "@:2:2: turn: expected 1 (the first row of session 1; a session's turns "
             "are consecutive), got '2'"},
            {sh, "s3.csv", "1,1,5,0,10,5\n2,1,4.5,0,10,5\n",
             "@:3:3: start_s: expected a start >= the previous session's (sessions "
             "sorted by start_s), got '4.5'"},
            {sh, "s5.csv", "1,1,0,0,10,0\n",
             "@:2:6: output_tokens: expected a positive integer, got '0'"},
            {sh, "s6.csv", "-3,1,0,0,10,1\n",
             "@:2:1: session_id: expected a non-negative integer, got '-3'"},
            {sh, "s7.csv", "1,1,0,0,2000000000,100000000\n1,2,0,1,100000000,1\n",
             "@:3:5: prompt_tokens: expected a session context (earlier prompts and "
             "outputs plus this prompt) <= 2147483647 tokens, got '100000000'"},
        };
        expect_rows_errors(bad, sizeof bad / sizeof bad[0]);
    }
}

/* ---- synthetic ---- */

#define N_DET 2000

static void collect(const char *spec, uint64_t seed, sim_req *out, int n) {
    trace_src *t = synth_ok(spec, seed);
    int i;
    for (i = 0; i < n; i++)
        next_ok(t, &out[i]);
    trace_close(t);
}

static int same_reqs(const sim_req *a, const sim_req *b, int n) {
    int i;
    for (i = 0; i < n; i++) {
        if (a[i].id != b[i].id || a[i].arrival_ns != b[i].arrival_ns ||
            a[i].prompt_tokens != b[i].prompt_tokens || a[i].output_tokens != b[i].output_tokens)
            return 0;
    }
    return 1;
}

static void test_synth_determinism(void) {
    static sim_req a[N_DET], b[N_DET], c[N_DET];
    const char *spec = "gamma,rate=diurnal(base=2;peak=10;period=600),cv=2,requests=5000,"
                       "isl=lognormal(mean=1155;sigma=1.1),osl=lognormal(mean=211;sigma=0.8)";
    int i;
    collect(spec, 42, a, N_DET);
    collect(spec, 42, b, N_DET);
    collect(spec, 43, c, N_DET);
    T_ASSERT(same_reqs(a, b, N_DET));
    T_ASSERT(!same_reqs(a, c, N_DET));
    T_EQ_I(a[0].arrival_ns, 0);
    for (i = 1; i < N_DET; i++) {
        T_LE_I(a[i - 1].arrival_ns, a[i].arrival_ns);
        T_EQ_I(a[i].id, i);
        T_LE_I(1, a[i].prompt_tokens);
        T_LE_I(1, a[i].output_tokens);
    }
}

/* Mean gap, gap cv, mean prompt of n requests from a spec. */
static void gap_stats(const char *spec, int n, double *rate, double *cv, double *mean_isl) {
    trace_src *t = synth_ok(spec, 7);
    sim_req r;
    sim_time prev = 0;
    double s = 0, s2 = 0, isl = 0;
    int i;
    for (i = 0; i < n; i++) {
        next_ok(t, &r);
        isl += r.prompt_tokens;
        if (i > 0) {
            double g = sim_time_to_s(r.arrival_ns - prev);
            s += g;
            s2 += g * g;
        }
        prev = r.arrival_ns;
    }
    next_end(t);
    trace_close(t);
    *rate = (n - 1) / s;
    *cv = sqrt(s2 / (n - 1) - (s / (n - 1)) * (s / (n - 1))) / (s / (n - 1));
    *mean_isl = isl / n;
}

static int count_until_end(const char *spec) {
    trace_src *t = synth_ok(spec, 3);
    sim_req r;
    sim_err e;
    int n = 0;
    while (trace_next(t, &r, &e) == 1)
        n++;
    trace_close(t);
    return n;
}

static void test_synth_rates(void) {
    double rate, cv, isl;
    const char *rf;
    int n;

    /* 100k draws: the mean gap's relative sd is 1/sqrt(1e5) = 0.3%. */
    gap_stats("poisson,rate=5,requests=100000,isl=lognormal(mean=1000;sigma=0.5),osl=10", 100000,
              &rate, &cv, &isl);
    T_REL(rate, 5.0, 0.02);
    T_REL(cv, 1.0, 0.03);
    T_REL(isl, 1000, 0.02); /* mean parameterisation; sd of the mean ~0.2% */
    gap_stats("gamma,rate=5,cv=3,requests=100000,isl=100,osl=10", 100000, &rate, &cv, &isl);
    T_REL(rate, 5.0, 0.05);
    T_REL(cv, 3.0, 0.10);
    T_NEAR(isl, 100, 0);

    /* Time-varying: expected counts are the integral of the rate. */
    n = count_until_end("poisson,rate=surge(base=2;peak=20;start=600;len=300),duration=1200,"
                        "isl=1,osl=1");
    T_REL(n, 2 * 900 + 20 * 300, 0.05);
    n = count_until_end("poisson,rate=diurnal(base=2;peak=10;period=3600),duration=3600,isl=1,"
                        "osl=1");
    T_REL(n, 6 * 3600, 0.05);
    /* A ramp 0 -> 10/s over 100 s, then flat: 500 expected in the first 100 s. */
    rf = write_tmp("ramp.csv", "t_s,rate\n0,0\n100,10\n");
    {
        char spec[600];
        snprintf(spec, sizeof spec, "poisson,rate=file(%s),duration=100,isl=1,osl=1", rf);
        n = count_until_end(spec);
        T_REL(n, 500, 0.12);
        /* A rate that ends at 0 ends the source even without a bound hit. */
        rf = write_tmp("stop.csv", "0,4\n50,4\n51,0\n");
        snprintf(spec, sizeof spec, "poisson,rate=file(%s),requests=100000,isl=1,osl=1", rf);
        n = count_until_end(spec);
        T_REL(n, 4 * 50.5, 0.25);
    }
    /* lognormal max= clamps. */
    {
        trace_src *t = synth_ok("poisson,rate=1,requests=2000,isl=lognormal(mean=1000;sigma=2;"
                                "max=4096),osl=lognormal(mean=1;sigma=0)",
                                11);
        sim_req r;
        int hit = 0, i;
        for (i = 0; i < 2000; i++) {
            next_ok(t, &r);
            T_LE_I(r.prompt_tokens, 4096);
            T_EQ_I(r.output_tokens, 1);
            hit += r.prompt_tokens == 4096;
        }
        T_ASSERT(hit > 0);
        trace_close(t);
    }
    /* requests and duration together: whichever comes first. */
    T_EQ_I(count_until_end("poisson,rate=1000,requests=50,duration=3600,isl=1,osl=1"), 50);
}

/* Simulates an engine for a closed-loop source: every request takes
 * service(i) ns; counts in-flight requests. */
static void test_synth_closed(void) {
    trace_src *t = synth_ok("closed,concurrency=4,isl=512,osl=128,requests=10", 1);
    sim_req fl[16], r, f;
    sim_err e;
    int n_fl = 0, n_total = 0, max_fl = 0, i;
    uint64_t next_id = 0;

    while (trace_next(t, &r, &e) == 1) {
        T_EQ_I(r.arrival_ns, 0);
        T_EQ_I(r.id, next_id++);
        T_EQ_I(r.prompt_tokens, 512);
        T_EQ_I(r.output_tokens, 128);
        fl[n_fl++] = r;
        n_total++;
    }
    T_EQ_I(n_fl, 4);
    while (n_fl > 0) {
        /* End the oldest; every third is rejected, which also frees the slot. */
        sim_time end = fl[0].arrival_ns + 1000 + 10 * (sim_time)fl[0].id;
        int rejected = fl[0].id % 3 == 2;
        r = fl[0];
        memmove(fl, fl + 1, (size_t)(n_fl - 1) * sizeof fl[0]);
        n_fl--;
        if (trace_on_end(t, &r, end, rejected, &f) == 1) {
            T_EQ_I(f.arrival_ns, end);
            T_EQ_I(f.id, next_id++);
            fl[n_fl++] = f;
            n_total++;
        }
        if (n_fl > max_fl)
            max_fl = n_fl;
        T_LE_I(n_fl, 4);
    }
    T_EQ_I(n_total, 10);
    T_EQ_I(max_fl, 4);
    next_end(t);
    trace_close(t);

    /* ramp spreads the first wave: client i starts at i x ramp / concurrency;
     * jitter delays each release by U[0, jitter) after the end, the same
     * delays for the same seed */
    {
        sim_time d[2][6];
        int k;
        for (k = 0; k < 2; k++) {
            t = synth_ok("closed,concurrency=4,isl=8,osl=8,requests=10,ramp=2,jitter=0.5", 3);
            for (i = 0; i < 4; i++) {
                next_ok(t, &fl[i]);
                T_EQ_I(fl[i].arrival_ns, S(2) * i / 4);
            }
            next_end(t);
            for (i = 0; i < 6; i++) {
                T_EQ_I(trace_on_end(t, &fl[i % 4], S(10 + i), 0, &f), 1);
                d[k][i] = f.arrival_ns - S(10 + i);
                T_ASSERT(d[k][i] >= 0 && d[k][i] < SIM_NS_PER_S / 2);
            }
            T_EQ_I(trace_on_end(t, &fl[0], S(20), 0, &f), 0); /* 10 sent */
            trace_close(t);
        }
        T_ASSERT(memcmp(d[0], d[1], sizeof d[0]) == 0);
        T_ASSERT(d[0][0] != d[0][1]);
    }

    /* with a ramp the engine asks for client i+1 only once client i has
     * arrived, and ends release requests in between: every client of the
     * first wave still starts, at its own time, and the releases never
     * crowd it out (4 in flight at most, 4 reached) */
    {
        int n_wave = 0;
        t = synth_ok("closed,concurrency=4,isl=8,osl=8,requests=10,ramp=8", 3);
        n_fl = 0;
        max_fl = 0;
        n_total = 0;
        while (trace_next(t, &r, &e) == 1) {
            T_EQ_I(r.arrival_ns, S(8) * n_wave / 4);
            n_wave++;
            fl[n_fl++] = r;
            n_total++;
            if (n_fl > max_fl)
                max_fl = n_fl;
            /* the oldest ends before the next client starts: its release
             * comes now */
            r = fl[0];
            memmove(fl, fl + 1, (size_t)(n_fl - 1) * sizeof fl[0]);
            n_fl--;
            if (trace_on_end(t, &r, r.arrival_ns + 1, 0, &f) == 1) {
                fl[n_fl++] = f;
                n_total++;
            }
            T_LE_I(n_fl, 4);
        }
        T_EQ_I(n_wave, 4);
        T_EQ_I(max_fl, 4);
        while (n_fl > 0) {
            r = fl[--n_fl];
            if (trace_on_end(t, &r, r.arrival_ns + 1, 0, &f) == 1) {
                fl[n_fl++] = f;
                n_total++;
            }
        }
        T_EQ_I(n_total, 10);
        trace_close(t);
    }

    /* --load-scale leaves the closed loop's times alone: the ramp is the
     * client's, not the trace's */
    {
        trace_opts o;
        trace_opts_default(&o);
        o.load_scale = 2.0;
        T_EQ_I(
            trace_open_synthetic("closed,concurrency=4,isl=1,osl=1,requests=10,ramp=8", &o, &t, &e),
            SIM_OK);
        for (i = 0; i < 4; i++) {
            next_ok(t, &fl[i]);
            T_EQ_I(fl[i].arrival_ns, S(8) * i / 4);
        }
        trace_close(t);
    }

    /* limit caps the total below requests. */
    {
        trace_opts o;
        trace_opts_default(&o);
        o.limit = 3;
        T_EQ_I(trace_open_synthetic("closed,concurrency=4,isl=1,osl=1,requests=10", &o, &t, &e),
               SIM_OK);
        for (i = 0; i < 3; i++)
            next_ok(t, &fl[i]);
        next_end(t);
        T_EQ_I(trace_on_end(t, &fl[0], 5, 0, &f), 0);
        trace_close(t);
    }
}

static void test_synth_sessions(void) {
    trace_src *t =
        synth_ok("sessions,rate=1,turns=3,think=2,isl=100,osl=10,sessions=5,system=50", 9);
    sim_req s[5], f, g;
    int i;

    for (i = 0; i < 5; i++) {
        next_ok(t, &s[i]);
        T_EQ_I(s[i].session_id, i);
        T_EQ_I(s[i].turn, 1);
        T_EQ_I(s[i].prompt_tokens, 150); /* system prompt + first prompt */
        T_EQ_I(s[i].new_tokens, 150);
        T_EQ_I(s[i].output_tokens, 10);
    }
    T_EQ_I(s[0].arrival_ns, 0);
    next_end(t);
    T_EQ_I(trace_on_end(t, &s[0], S(4), 0, &f), 1);
    T_EQ_I(f.arrival_ns, S(6));
    T_EQ_I(f.turn, 2);
    T_EQ_I(f.prompt_tokens, 150 + 10 + 100);
    T_EQ_I(f.new_tokens, 100);
    T_EQ_I(trace_on_end(t, &f, S(7), 0, &g), 1);
    T_EQ_I(g.arrival_ns, S(9));
    T_EQ_I(g.turn, 3);
    T_EQ_I(g.prompt_tokens, 260 + 10 + 100);
    T_EQ_I(trace_on_end(t, &g, S(10), 0, &f), 0);
    T_EQ_I(trace_on_end(t, &s[1], S(10), 1, &f), 0); /* rejected: the session ends */
    T_EQ_I(trace_on_end(t, &s[1], S(10), 0, &f), 0);
    trace_close(t);

    /* Random turns and think times do not depend on the order of ends. */
    {
        const char *spec = "sessions,rate=2,turns=geometric(mean=4),think=lognormal(mean=30;"
                           "sigma=1),isl=lognormal(mean=200;sigma=1),osl=exp,sessions=50";
        sim_err e;
        T_EQ_I(trace_open_synthetic(spec, NULL, &t, &e), SIM_EINVAL);
        T_STREQ(e.msg, "osl: expected a positive integer or lognormal(mean=M;sigma=S[;max=N]), "
                       "got 'exp'");
    }
    {
        const char *spec = "sessions,rate=2,turns=geometric(mean=4),think=lognormal(mean=30;"
                           "sigma=1),isl=lognormal(mean=200;sigma=1),osl=20,sessions=50";
        static int64_t ctx_a[50][64], ctx_b[50][64];
        int order;
        for (order = 0; order < 2; order++) {
            int64_t(*ctx)[64] = order ? ctx_b : ctx_a;
            sim_req all[50], cur;
            int n = 0, k, turns = 0;
            memset(ctx, 0, sizeof ctx_a);
            t = synth_ok(spec, 5);
            while (n < 50)
                next_ok(t, &all[n++]);
            /* order 0: each session to its end in turn; order 1: round-robin. */
            for (k = 0; k < 50; k++) {
                int idx = order ? 49 - k : k;
                cur = all[idx];
                ctx[cur.session_id][0] = cur.prompt_tokens;
                turns++;
                while (trace_on_end(t, &cur, cur.arrival_ns + S(1), 0, &cur) == 1) {
                    T_ASSERT(cur.turn < 64);
                    ctx[cur.session_id][cur.turn - 1] =
                        cur.prompt_tokens * 1000003LL + cur.arrival_ns % 1000003;
                    turns++;
                }
            }
            T_REL(turns / 50.0, 4.0, 0.35);
            trace_close(t);
        }
        T_ASSERT(memcmp(ctx_a, ctx_b, sizeof ctx_a) == 0);
    }
}

static void test_synth_errors(void) {
    /* a duration beyond the horizon is refused at once; arrivals that a rate
     * too low pushes beyond it stop the source with an error (they once
     * ended it silently, so 10 requests asked for gave 1) */
    expect_spec_error("poisson,rate=5,duration=1e300,isl=1,osl=1",
                      "--synthetic: duration: expected a number of seconds in (0, 1e9] (1e9 s "
                      "is the simulated horizon), got '1e300'");
    {
        static const char *low[] = {
            "poisson,rate=1e-20,requests=10,isl=1,osl=1",
            "poisson,rate=surge(base=1;peak=0;start=0;len=1e300),requests=10,isl=1,osl=1",
            /* subnormal rates: the time overflows to inf, which is not a
             * rate that ended (they gave 1 request, quietly) */
            "poisson,rate=1e-310,requests=10,isl=1,osl=1",
            "poisson,rate=diurnal(base=0;peak=1e-310),requests=10,isl=1,osl=1"};
        size_t k;
        for (k = 0; k < sizeof low / sizeof low[0]; k++) {
            trace_src *t = NULL;
            sim_err e;
            sim_req r;
            char got[600];
            int rc;
            T_EQ_I(trace_open_synthetic(low[k], NULL, &t, &e), SIM_OK);
            T_EQ_I(trace_next(t, &r, &e), 1); /* the first arrives at 0 */
            rc = trace_next(t, &r, &e);
            sim_err_format(&e, got, sizeof got);
            T_EQ_I(rc, SIM_EINVAL);
            T_STREQ(got, "--synthetic: arrival 2: expected a time within the simulated horizon "
                         "(1e9 s after the first arrival), got one beyond 9.2e+09 s (the rate is "
                         "too low for the requests asked for)");
            trace_close(t);
        }
    }
    /* a rate that drops to zero for good still ends the source quietly */
    T_EQ_I(count_until_end("poisson,rate=surge(base=1;peak=0;start=5;len=1e300),duration=1e9,"
                           "isl=1,osl=1") > 0,
           1);
    expect_spec_error("foo,rate=1", "--synthetic: kind: expected one of poisson, gamma, sessions, "
                                    "closed, got 'foo'");
    expect_spec_error("poisson,rate=5,isl=1,osl=1",
                      "--synthetic: requests: expected requests=N or duration=S (one is "
                      "required), got nothing");
    /* a misspelt required key is named as itself, not as the missing one */
    expect_spec_error("poisson,rate=5,n=100,isl=1,osl=1",
                      "--synthetic: n: expected a key of poisson (rate, requests, duration, "
                      "isl, osl), got 'n'");
    expect_spec_error("closed,concurency=8,requests=10,isl=1,osl=1",
                      "--synthetic: concurency: expected a key of closed (concurrency, requests, "
                      "isl, osl, ramp, jitter), got 'concurency'");
    /* an empty key (it hung: every list holds the empty string) */
    expect_spec_error("poisson,=5,requests=10,isl=1,osl=1",
                      "--synthetic: spec: expected key=value with a key before the '=', got '=5'");
    expect_spec_error("closed,concurrency=2,isl=1,osl=1,requests=4, =1",
                      "--synthetic: spec: expected key=value with a key before the '=', got '=1'");
    expect_spec_error("poisson,rate=5,requests=10,isl=1,osl=1,bogus=3",
                      "--synthetic: bogus: expected a key of poisson (rate, requests, duration, "
                      "isl, osl), got 'bogus'");
    expect_spec_error(
        "poisson,rate=-1,requests=10,isl=1,osl=1",
        "--synthetic: rate: expected a number > 0, diurnal(base=R;peak=P[;period=S]), "
        "surge(base=R;peak=P;start=S;len=S) or file(PATH), got '-1'");
    expect_spec_error("poisson,rate=5,requests=abc,isl=1,osl=1",
                      "--synthetic: requests: expected an integer in [1, 1e15], got 'abc'");
    expect_spec_error("poisson,rate=5,requests=10,osl=1",
                      "--synthetic: isl: expected a positive integer or lognormal(mean=M;sigma=S"
                      "[;max=N]) (required), got nothing");
    expect_spec_error("poisson,rate=5,requests=10,isl=0,osl=1",
                      "--synthetic: isl: expected a positive integer or lognormal(mean=M;sigma=S"
                      "[;max=N]), got '0'");
    expect_spec_error("poisson,rate=5,requests=10,isl=lognormal(mean=100;sigma=-1),osl=1",
                      "--synthetic: isl.sigma: expected a number in [0, 10], got '-1'");
    expect_spec_error("poisson,rate=5,requests=10,isl=lognormal(mean=100;sigma=1;mode=3),osl=1",
                      "--synthetic: isl: expected a parameter of lognormal(mean;sigma;max), got "
                      "'mode'");
    expect_spec_error("poisson,rate=diurnal(base=5;peak=2),requests=10,isl=1,osl=1",
                      "--synthetic: rate.peak: expected a number >= 5, got '2'");
    expect_spec_error("poisson,rate=surge(base=2;peak=20;start=600),requests=10,isl=1,osl=1",
                      "--synthetic: rate.len: expected a value (the parameter is required), got "
                      "nothing");
    expect_spec_error("gamma,rate=5,requests=10,isl=1,osl=1",
                      "--synthetic: cv: expected a number in [0.01, 100] (required), got nothing");
    expect_spec_error("gamma,rate=5,cv=0,requests=10,isl=1,osl=1",
                      "--synthetic: cv: expected a number in [0.01, 100], got '0'");
    expect_spec_error("closed,concurrency=0,isl=1,osl=1,requests=10",
                      "--synthetic: concurrency: expected an integer in [1, 1e9], got '0'");
    expect_spec_error("closed,concurrency=2,isl=1,osl=1,requests=4,ramp=-1",
                      "--synthetic: ramp: expected seconds in [0, 1e6], got '-1'");
    expect_spec_error("closed,concurrency=2,isl=1,osl=1",
                      "--synthetic: requests: expected an integer in [1, 1e15] (required by "
                      "closed), got nothing");
    /* unbalanced parentheses: the message shows the spec whole; a parameter
     * given twice is named; a length cap is an integer */
    expect_spec_error("poisson,rate=5,requests=10,isl=lognormal(mean=100;sigma=1))),osl=5",
                      "--synthetic: spec: expected KIND,key=value,... with balanced parentheses "
                      "and at most 15 keys, got 'poisson,rate=5,requests=10,isl=lognormal(mean="
                      "100;sigma=1))),osl=5'");
    expect_spec_error("poisson,rate=5,requests=10,isl=lognormal(mean=100;sigma=1;mean=5),osl=5",
                      "--synthetic: isl: expected each parameter once, got 'mean'");
    expect_spec_error("poisson,rate=surge(base=1;peak=2;start=3;len=4;len=5),requests=10,isl=5,"
                      "osl=5",
                      "--synthetic: rate: expected each parameter once, got 'len'");
    expect_spec_error("poisson,rate=5,requests=10,isl=5,osl=lognormal(mean=100;sigma=1;max=50.5)",
                      "--synthetic: osl.max: expected an integer in [1, 2147483647], got '50.5'");
    expect_spec_error("sessions,rate=1,turns=geometric(mean=0.5),think=1,isl=1,osl=1,sessions=3",
                      "--synthetic: turns.mean: expected a number in [1, 1e+06], got '0.5'");
    expect_spec_error("sessions,rate=1,turns=2,think=normal(mean=3),isl=1,osl=1,sessions=3",
                      "--synthetic: think: expected seconds >= 0, exp(mean=S) or "
                      "lognormal(mean=S;sigma=X), got 'normal'");
    expect_spec_error("sessions,rate=1,turns=2,think=1,isl=1,osl=1,requests=3",
                      "--synthetic: sessions: expected sessions=N or duration=S (one is "
                      "required), got nothing");
    expect_spec_error("poisson,rate=5,rate=6,requests=10,isl=1,osl=1",
                      "--synthetic: rate: expected each key once, got 'a second value'");
    expect_spec_error("poisson,rate=diurnal(base=1;peak=2,requests=10,isl=1,osl=1",
                      "--synthetic: spec: expected KIND,key=value,... with balanced parentheses "
                      "and at most 15 keys, got 'poisson,rate=diurnal(base=1;peak=2,requests=10,"
                      "isl=1,osl=1'");
    {
        /* A bad rate file reports the file, line and column. */
        char spec[600], got[1200], want[1200];
        trace_src *t = NULL;
        sim_err e;
        const char *rf = write_tmp("badrate.csv", "t_s,rate\n0,1\n10,-2\n");
        snprintf(spec, sizeof spec, "poisson,rate=file(%s),requests=5,isl=1,osl=1", rf);
        T_EQ_I(trace_open_synthetic(spec, NULL, &t, &e), SIM_EPARSE);
        sim_err_format(&e, got, sizeof got);
        snprintf(want, sizeof want,
                 "%s:3:2: rate: expected a finite number >= 0 (per second), got '-2'", rf);
        T_STREQ(got, want);
    }
}

/* ---- statistics ---- */

static json_t *stats_json(const char *path, const char *spec) {
    FILE *f = tmpfile();
    sim_err e;
    json_error_t je;
    json_t *j;
    T_ASSERT(f != NULL);
    T_EQ_I(trace_stats_print(f, path, spec, TRACE_FMT_AUTO, NULL, 1, &e), SIM_OK);
    rewind(f);
    j = json_loadf(f, 0, &je);
    fclose(f);
    T_ASSERT(j != NULL);
    return j;
}

static void test_stats(void) {
    json_t *j = stats_json(DATA "azure_small.csv", NULL);
    json_t *p = json_object_get(j, "prompt_tokens");
    sim_err e;

    T_EQ_I(json_integer_value(json_object_get(j, "requests")), 5);
    T_STREQ(json_string_value(json_object_get(j, "format")), "azure");
    T_NEAR(json_real_value(json_object_get(j, "duration_s")), 20653.81941, 1e-6);
    T_NEAR(json_real_value(json_object_get(j, "rate_per_s")), 5 / 20653.81941, 1e-12);
    /* Sorted prompts 1, 20, 374, 396, 879: p90 at rank 3.6. */
    T_NEAR(json_real_value(json_object_get(p, "mean")), 334, 1e-9);
    T_NEAR(json_real_value(json_object_get(p, "p50")), 374, 1e-9);
    T_NEAR(json_real_value(json_object_get(p, "p90")), 396 + 0.6 * (879 - 396), 1e-9);
    T_NEAR(json_real_value(json_object_get(p, "max")), 879, 0);
    T_ASSERT(json_object_get(j, "sessions") == NULL);
    json_decref(j);

    j = stats_json(DATA "sessions_small.csv", NULL);
    T_EQ_I(json_integer_value(json_object_get(j, "requests")), 6);
    T_EQ_I(json_integer_value(json_object_get(j, "sessions")), 3);
    T_NEAR(json_real_value(json_object_get(j, "mean_turns")), 2, 1e-12);
    T_ASSERT(json_is_true(json_object_get(j, "duration_is_lower_bound")));
    /* Turn 3 of session 7: start 0, think 5.5 then 1 with zero service. */
    T_NEAR(json_real_value(json_object_get(j, "duration_s")), 6.5, 1e-9);
    json_decref(j);

    j = stats_json(NULL, "closed,concurrency=3,isl=5,osl=7,requests=20");
    T_EQ_I(json_integer_value(json_object_get(j, "requests")), 20);
    T_ASSERT(json_is_null(json_object_get(j, "rate_per_s")));
    json_decref(j);

    {
        FILE *f = tmpfile();
        char text[2048];
        size_t n;
        T_EQ_I(trace_stats_print(f, DATA "vidur_small.csv", NULL, TRACE_FMT_AUTO, NULL, 0, &e),
               SIM_OK);
        rewind(f);
        n = fread(text, 1, sizeof text - 1, f);
        text[n] = '\0';
        fclose(f);
        T_CONTAINS(text, "requests        4\n");
        T_CONTAINS(text, "duration_s      10.000\n");
        T_CONTAINS(text, "rate_per_s      0.400\n");
        T_CONTAINS(text, "prompt_tokens");
    }
    T_EQ_I(trace_stats_print(stdout, DATA "x", "poisson", TRACE_FMT_AUTO, NULL, 0, &e), SIM_EINVAL);

    /* a write error is reported, text and JSON alike: stdio holds the text
     * until a flush, and json_dumpf's own failure came only from memory */
    {
        FILE *f = fopen("/dev/full", "w");
        int json;
        if (f == NULL) {
            printf("# no /dev/full: write-error case skipped\n");
            return;
        }
        for (json = 0; json < 2; json++) {
            sim_err_clear(&e);
            clearerr(f);
            T_EQ_I(
                trace_stats_print(f, DATA "azure_small.csv", NULL, TRACE_FMT_AUTO, NULL, json, &e),
                SIM_EIO);
            T_CONTAINS(e.msg, "output: write error: ");
        }
        fclose(f);
    }
}

/* Sources stream (docs/traces.md): reading a file holds one line, so the
 * heap in use while a 200,000-line Azure file is read is what a 2,000-line
 * one needs, and small. Each file is its own header plus generated rows. */
static size_t stream_heap(const char *name, int lines) {
    char path[512];
    FILE *f;
    trace_src *t = NULL;
    sim_req r;
    sim_err e;
    size_t base, top = 0;
    int i, rc;
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    T_ASSERT(f != NULL);
    fputs("TIMESTAMP,ContextTokens,GeneratedTokens\n", f);
    for (i = 0; i < lines; i++)
        fprintf(f, "%d.%03d,%lld,%lld\n", i / 10, (i % 10) * 100, 100 + (long long)i * 7919 % 4000,
                10 + (long long)i * 104729 % 500);
    T_ASSERT(fclose(f) == 0);
    base = sim_mem_current();
    T_EQ_I(trace_open_file(path, TRACE_FMT_AZURE, NULL, &t, &e), SIM_OK);
    while ((rc = trace_next(t, &r, &e)) == 1)
        if (sim_mem_current() - base > top)
            top = sim_mem_current() - base;
    T_EQ_I(rc, 0);
    trace_close(t);
    T_EQ_I(sim_mem_current(), base);
    return top;
}

static void test_stream_memory(void) {
    size_t small = stream_heap("stream_small.csv", 2000);
    size_t large = stream_heap("stream_large.csv", 200000);
    printf("# heap while reading: %zu bytes (2,000 lines), %zu bytes (200,000 lines)\n", small,
           large);
    T_EQ_I(large, small);
    T_ASSERT(large < 64 * 1024);
}

/* ---- shipped data ---- */

static void test_shipped(void) {
    trace_src *t = open_ok(KV_SRCDATADIR "/traces/azure_conv_2023.csv", TRACE_FMT_AUTO, NULL);
    sim_req r, last;
    sim_err e;
    int64_t n = 0;
    int rc;

    while ((rc = trace_next(t, &r, &e)) == 1) {
        if (n == 0)
            expect_req(&r, 0, 0, 374, 44);
        last = r;
        n++;
    }
    T_EQ_I(rc, 0);
    T_EQ_I(n, 19366);
    /* 2023-11-16 19:14:08.4025270 - 18:15:46.6805900, as Vidur's arrived_at. */
    expect_req(&last, 19365, 3501721937000LL, 197, 183);
    trace_close(t);

    t = open_ok(KV_SRCDATADIR "/traces/mooncake_synthetic.jsonl", TRACE_FMT_AUTO, NULL);
    n = 0;
    while ((rc = trace_next(t, &r, &e)) == 1) {
        /* 512-token blocks: one hash id per started block. */
        T_EQ_I(r.n_hash_ids, (r.prompt_tokens + 511) / 512);
        last = r;
        n++;
    }
    T_EQ_I(rc, 0);
    T_EQ_I(n, 3993);
    T_EQ_I(last.arrival_ns, 1022025LL * 1000000);
    trace_close(t);

    t = open_ok(KV_SRCDATADIR "/traces/sessions_example.csv", TRACE_FMT_AUTO, NULL);
    n = 0;
    while ((rc = trace_next(t, &r, &e)) == 1) {
        sim_req f = r;
        n++;
        while (trace_on_end(t, &f, f.arrival_ns + S(2), 0, &f) == 1)
            n++;
    }
    T_EQ_I(rc, 0);
    T_EQ_I(n, 17);
    trace_close(t);
}

/* ---- fault injection ---- */

/* Opens and drains a source, ending every request on arrival. */
static int drain(const char *path, const char *spec) {
    trace_src *t = NULL;
    sim_err e;
    sim_req r, f;
    int rc;

    sim_err_clear(&e);
    rc = path ? trace_open_file(path, TRACE_FMT_AUTO, NULL, &t, &e)
              : trace_open_synthetic(spec, NULL, &t, &e);
    while (rc == SIM_OK && (rc = trace_next(t, &r, &e)) == 1) {
        rc = SIM_OK;
        f = r;
        while (trace_on_end(t, &f, f.arrival_ns, 0, &f) == 1)
            ;
    }
    trace_close(t);
    sim_err_format(&e, last_msg, sizeof last_msg);
    if (rc < 0 && e.msg[0] == '\0')
        T_FAIL_("error %d without a message", rc);
    return rc;
}

static int stats_null(const char *path, const char *spec) {
    FILE *f = fopen("/dev/null", "w");
    sim_err e;
    int rc;
    T_ASSERT(f != NULL);
    sim_err_clear(&e);
    rc = trace_stats_print(f, path, spec, TRACE_FMT_AUTO, NULL, 1, &e);
    fclose(f);
    sim_err_format(&e, last_msg, sizeof last_msg);
    return rc;
}

/* Fails the k-th allocation for every k until fn succeeds. Each failure must
 * be SIM_ENOMEM with a message and no leak. jansson (2.14) reports some
 * allocation failures inside its lexer as syntax errors, so runs that parse
 * JSON (json_parse_ok) also accept a clean SIM_EPARSE. */
static void chaos(const char *path, const char *spec, int (*fn)(const char *, const char *),
                  int json_parse_ok) {
    uint64_t k;
    for (k = 1;; k++) {
        size_t base = sim_mem_current();
        int rc;
        sim_mem_fail_at(k);
        rc = fn(path, spec);
        sim_mem_fail_at(0);
        T_EQ_I(sim_mem_current(), base);
        if (rc == SIM_OK)
            break;
        if (rc != SIM_ENOMEM && !(json_parse_ok && rc == SIM_EPARSE))
            T_FAIL_("%s: allocation %llu failed: got %d, want SIM_ENOMEM (%s)", path ? path : spec,
                    (unsigned long long)k, rc, last_msg);
        T_ASSERT(k < 100000);
    }
    T_ASSERT(k > 1);
}

static void test_fault_injection(void) {
    char spec[600];
    chaos(DATA "azure_small.csv", NULL, drain, 0);
    chaos(DATA "vidur_small.csv", NULL, drain, 0);
    chaos(DATA "mooncake_small.jsonl", NULL, drain, 1);
    chaos(DATA "sessions_small.csv", NULL, drain, 0);
    chaos(NULL, "poisson,rate=5,requests=50,isl=lognormal(mean=100;sigma=1),osl=5", drain, 0);
    chaos(NULL,
          "sessions,rate=1,turns=geometric(mean=3),think=exp(mean=5),isl=10,osl=5,sessions=40",
          drain, 0);
    chaos(NULL, "closed,concurrency=3,isl=5,osl=7,requests=20", drain, 0);
    snprintf(spec, sizeof spec, "gamma,rate=file(%s),cv=2,duration=100,isl=1,osl=1",
             write_tmp("ramp2.csv", "t_s,rate\n0,0\n100,10\n"));
    chaos(NULL, spec, drain, 0);
    chaos(DATA "mooncake_small.jsonl", NULL, stats_null, 1);
    chaos(NULL, "sessions,rate=1,turns=3,think=1,isl=10,osl=5,sessions=40", stats_null, 0);
}

/* ---- main ---- */

static void run(const char *name, void (*fn)(void)) {
    size_t base = sim_mem_current();
    printf("test_traces: %s\n", name);
    fflush(stdout);
    fn();
    T_EQ_I(sim_mem_current(), base);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    char cmd[600];

    /* jansson allocates through sim_malloc too, so the chaos loop reaches it. */
    json_set_alloc_funcs(sim_malloc, sim_free);
    snprintf(tmpdir, sizeof tmpdir, "%s/test_traces.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 99;
    }
    run("azure datetime", test_azure_datetime);
    run("azure seconds", test_azure_seconds);
    run("load scale and limit", test_load_scale_limit);
    run("vidur", test_vidur);
    run("byte-order mark and blanks", test_bom);
    run("mooncake", test_mooncake);
    run("sessions file", test_sessions_file);
    run("sessions: one id, two live sessions", test_sessions_same_id);
    run("malformed input", test_errors);
    run("synthetic determinism", test_synth_determinism);
    run("synthetic rates", test_synth_rates);
    run("synthetic closed loop", test_synth_closed);
    run("synthetic sessions", test_synth_sessions);
    run("synthetic spec errors", test_synth_errors);
    run("stats", test_stats);
    run("streaming memory", test_stream_memory);
    run("shipped data", test_shipped);
    run("fault injection", test_fault_injection);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_traces: could not remove %s\n", tmpdir);
    printf("test_traces: all passed\n");
    return 0;
}
