/* test_fuzz_traces.c: no trace makes a reader crash, hang or lie.
 *
 * Each shipped fixture (Azure, Vidur, Mooncake, sessions) is mutated at
 * random many times (bytes flipped, inserted, deleted, lines duplicated or
 * cut short, the file truncated) and read to the end, through the readers
 * alone and through sessions' follow-ups. Every outcome must be a clean one:
 * requests with sane fields and non-decreasing arrivals, then either the end
 * or an error code with a message naming the file. Run under ASan/UBSan in
 * CI, this is the "no input crashes it" check; memory returns to baseline. */
#include "config.h"

#include <unistd.h>

#include <gsl/gsl_rng.h>

#include "err.h"
#include "mem.h"
#include "rng.h"
#include "t.h"
#include "trace.h"

#define MAXF 16384

static size_t load(const char *path, char *buf) {
    FILE *f = fopen(path, "rb");
    size_t n;
    T_ASSERT(f != NULL);
    n = fread(buf, 1, MAXF, f);
    fclose(f);
    return n;
}

static size_t mutate(gsl_rng *r, char *b, size_t n) {
    static const char junk[] = "0123456789,.-+eE\"[]{}: \n\r\tnanINF\xff\x80";
    int k, edits = 1 + (int)gsl_rng_uniform_int(r, 6);
    for (k = 0; k < edits && n > 0; k++) {
        size_t at = (size_t)gsl_rng_uniform_int(r, n);
        switch (gsl_rng_uniform_int(r, 6)) {
            case 0: /* flip */
                b[at] = junk[gsl_rng_uniform_int(r, sizeof junk - 1)];
                break;
            case 1: /* insert */
                if (n + 1 < MAXF) {
                    memmove(b + at + 1, b + at, n - at);
                    b[at] = junk[gsl_rng_uniform_int(r, sizeof junk - 1)];
                    n++;
                }
                break;
            case 2: /* delete */
                memmove(b + at, b + at + 1, n - at - 1);
                n--;
                break;
            case 3: /* truncate */
                n = at;
                break;
            case 4: { /* duplicate a stretch (repeated or out-of-order lines) */
                size_t len = (size_t)gsl_rng_uniform_int(r, 80) + 1;
                if (at + len > n)
                    len = n - at;
                if (n + len < MAXF) {
                    memmove(b + at + len, b + at, n - at);
                    n += len;
                }
                break;
            }
            default: /* a huge or negative number */
                if (n + 24 < MAXF) {
                    const char *big = gsl_rng_uniform_int(r, 2) ? "99999999999999999999" : "-7";
                    size_t len = strlen(big);
                    memmove(b + at + len, b + at, n - at);
                    memcpy(b + at, big, len);
                    n += len;
                }
        }
    }
    return n;
}

static void read_all(const char *path, enum trace_format fmt) {
    trace_src *t = NULL;
    trace_opts o;
    sim_err err;
    sim_req q, nx;
    sim_time last = 0;
    int rc, n = 0;
    trace_opts_default(&o);
    sim_err_clear(&err);
    rc = trace_open_file(path, fmt, &o, &t, &err);
    if (rc != SIM_OK) {
        T_ASSERT(rc < 0 && err.msg[0] != '\0');
        T_ASSERT(t == NULL);
        return;
    }
    while ((rc = trace_next(t, &q, &err)) == 1) {
        T_ASSERT(q.arrival_ns >= last); /* arrivals never go back */
        T_ASSERT(q.prompt_tokens >= 1 && q.output_tokens >= 1);
        T_ASSERT(q.new_tokens >= 0 && q.new_tokens <= q.prompt_tokens);
        last = q.arrival_ns;
        /* end it at once: sessions release their next turn */
        if (trace_on_end(t, &q, q.arrival_ns, 0, &nx) == 1)
            T_ASSERT(nx.arrival_ns >= q.arrival_ns && nx.prompt_tokens >= 1);
        T_ASSERT(++n < 100000); /* no reader loops forever */
    }
    if (rc < 0)
        T_ASSERT(err.msg[0] != '\0' && err.src[0] != '\0');
    else
        T_EQ_I(rc, 0);
    trace_close(t);
}

int main(void) {
    static const struct {
        const char *file;
        enum trace_format fmt;
    } fx[] = {{"azure_small.csv", TRACE_FMT_AUTO},
              {"azure_seconds.csv", TRACE_FMT_AZURE},
              {"vidur_small.csv", TRACE_FMT_AUTO},
              {"mooncake_small.jsonl", TRACE_FMT_MOONCAKE},
              {"sessions_small.csv", TRACE_FMT_SESSIONS}};
    static char orig[MAXF], buf[MAXF];
    char path[4096], tmp[] = "/tmp/kvfleet-fuzz.XXXXXX";
    gsl_rng *r = sim_rng_create(2026, 9);
    size_t base = sim_mem_current();
    int fd = mkstemp(tmp);
    size_t i;
    int it, iters = 1500;
#ifdef KV_STRESS
    iters = 50000;
#endif
    T_ASSERT(fd >= 0 && r != NULL);
    close(fd);
    for (i = 0; i < sizeof fx / sizeof fx[0]; i++) {
        size_t n0;
        snprintf(path, sizeof path, "%s/%s", KV_TEST_DATADIR, fx[i].file);
        n0 = load(path, orig);
        for (it = 0; it < iters; it++) {
            size_t n;
            FILE *f;
            memcpy(buf, orig, n0);
            n = mutate(r, buf, n0);
            f = fopen(tmp, "wb");
            T_ASSERT(f != NULL);
            T_EQ_I(fwrite(buf, 1, n, f), n);
            fclose(f);
            read_all(tmp, fx[i].fmt);
            T_EQ_I(sim_mem_current(), base);
        }
    }
    remove(tmp);
    sim_rng_destroy(r);
    printf("test_fuzz_traces: ok (%d mutated files per fixture)\n", iters);
    return 0;
}
