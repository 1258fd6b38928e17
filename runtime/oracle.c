/* oracle.c: the first pass of Belady's policy in `kvfleet run` (oracle.h).
 *
 * The pass reads the run's source from the start with the run's options.
 * The policy matches the simulator's accesses to these uses one by one
 * (sim/evict_belady.c), so a use must be listed exactly where a request
 * will access the block, and an access with no use of its own must be
 * rare. A request accesses, at or after its arrival time:
 *
 *   - its prompt's hit candidates, blocks j < (prompt - 1) / B: looked up
 *     at admission (a hit) or inserted as the prefill fills them;
 *   - its output blocks (full blocks up to prompt + output - 1 tokens, the
 *     last token's KV being never computed) named by a session or by the
 *     request itself: they are new, always inserted as decode fills them.
 *     For sessions this matters: turn k's output blocks are turn k+1's
 *     prompt blocks, and an insertion with no use of its own would take the
 *     next turn's.
 *
 * Left out: the last prompt block when the prompt is a whole number of
 * blocks, and output blocks that fall in a trace hash block (Mooncake: the
 * part of the last hash block past the prompt shares the hash block's
 * keys, so another request may have cached it). The scheduler inserts
 * those only when they are not cached and never accesses them when they
 * are; listed, such a use would stay pending after the request passed and
 * keep its block as if it were needed at once (on the random traces of
 * tests/test_belady_sim.c, listing them cost Belady up to 10 points of hit
 * rate). Keys are named by sched_block_keys() over prompt + output - 1
 * tokens (block_content does not depend on the length).
 *
 * Closed-loop sources (sessions) release a follow-up only when a request
 * ends; here every request ends the moment it arrives (trace_on_end with
 * end = arrival, as `kvfleet trace stats` does), so a turn's recorded time
 * is the session's start plus its think times, with zero service time: the
 * ordering of a key's uses is exact, their times earlier than the
 * simulator's. Requests the scheduler rejects whatever happens (prompt plus
 * output over the context, more blocks than the pool, a prompt over the
 * batch budget without chunked prefill) are reported rejected and their
 * uses left out, as no access will ever serve them.
 *
 * Memory: the oracle (about 20 bytes per use and 40 per distinct key while
 * building), plus a key buffer of the longest request. */
#include "config.h"
#include "oracle.h"

#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "mem.h"
#include "trace.h"

/* Whether the scheduler rejects r at arrival whatever its state. */
static int never_admitted(const sched_config *sc, const sim_req *r) {
    return sched_reject_static(sc, r) != MET_REJECT_NONE;
}

/* Whether block j of r is named by a trace hash id (as block_content in
 * sim/sched.c does: the hash block covering its first token exists). */
static int hash_keyed(const sched_config *sc, const sim_req *r, int64_t j) {
    return r->hash_ids != NULL && r->n_hash_ids > 0 &&
           j * sc->block_tokens / sc->hash_block_tokens < r->n_hash_ids;
}

int64_t rt_oracle_add_request(evict_oracle *o, const sched_config *sc, const sim_req *r,
                              uint64_t **keys, int64_t *cap) {
    sim_req q = *r;
    int64_t tokens = (int64_t)r->prompt_tokens + r->output_tokens - 1, n, j, hits, first_out;
    int64_t used = 0;
    if (never_admitted(sc, r))
        return 0;
    q.prompt_tokens = tokens > INT32_MAX ? INT32_MAX : (int32_t)tokens;
    n = sched_block_keys(sc, &q, *keys, *cap);
    if (n > *cap) {
        int64_t c = n > 2 * *cap ? n : 2 * *cap;
        uint64_t *k = sim_realloc(*keys, (size_t)c * sizeof *k);
        if (k == NULL)
            return SIM_ENOMEM;
        *keys = k;
        *cap = c;
        n = sched_block_keys(sc, &q, *keys, *cap);
    }
    hits = ((int64_t)r->prompt_tokens - 1) / sc->block_tokens;
    first_out = (int64_t)r->prompt_tokens / sc->block_tokens;
    for (j = 0; j < n; j++) {
        if (j >= hits && (j < first_out || hash_keyed(sc, r, j)))
            continue;
        if (evict_oracle_add_use(o, (*keys)[j], r->arrival_ns) != SIM_OK)
            return SIM_ENOMEM;
        used++;
    }
    return used;
}

/* Checks that the trace at path can be read more than once, for the
 * modes that open it again after a first pass (this oracle, cache-replay's
 * --repeat): a pipe (/dev/stdin under `|`), a terminal or a socket reads
 * empty the second time, which the trace reader reported as a header
 * missing, "got an empty file", at line 1 of a trace it had just read.
 * Returns SIM_OK for anything else: a regular file or a block device, and
 * a path that stat() cannot follow or a folder, which opening the trace
 * reports in its own words. Otherwise SIM_EINVAL, with *err set to
 * "PATH: WHAT: expected a regular file, got a pipe". */
int rt_trace_check_rereadable(const char *path, const char *what, sim_err *err) {
    struct stat sb;
    const char *kind;
    if (stat(path, &sb) != 0)
        return SIM_OK;
    if (S_ISFIFO(sb.st_mode))
        kind = "a pipe";
    else if (S_ISCHR(sb.st_mode))
        kind = "a terminal or character device";
    else if (S_ISSOCK(sb.st_mode))
        kind = "a socket";
    else
        return SIM_OK;
    sim_err_set(err, path, 0, 0, "%s: expected a regular file, got %s", what, kind);
    return SIM_EINVAL;
}

int rt_oracle_build(json_t *cfg, const sched_config *sc, evict_oracle **out, rt_oracle_stats *st,
                    sim_err *err) {
    trace_src *t = NULL;
    evict_oracle *o = NULL;
    rt_oracle_stats s;
    uint64_t *keys = NULL;
    int64_t cap = 0, n;
    sim_req r, f;
    int rc;

    *out = NULL;
    memset(&s, 0, sizeof s);
    if (json_object_get(cfg, "synthetic") == NULL) { /* a file: the run opens it again */
        const char *trace = json_string_value(json_object_get(cfg, "trace"));
        if (trace != NULL &&
            (rc = rt_trace_check_rereadable(trace, RT_BELADY_REREAD, err)) != SIM_OK)
            return rc;
    }
    if ((rc = rt_source_open(cfg, &t, err)) != SIM_OK)
        return rc;
    if ((o = evict_oracle_times_create()) == NULL)
        goto oom;
    for (;;) {
        rc = trace_next(t, &r, err);
        if (rc < 0)
            goto fail;
        if (rc == 0)
            break;
        /* the request, then its session's later turns, each ending on arrival */
        for (;;) {
            int never = never_admitted(sc, &r);
            s.requests++;
            if ((n = rt_oracle_add_request(o, sc, &r, &keys, &cap)) < 0)
                goto oom;
            s.uses += n;
            s.skipped += never;
            if (trace_on_end(t, &r, r.arrival_ns, never, &f) != 1)
                break;
            r = f;
        }
    }
    if (evict_oracle_times_finish(o) != SIM_OK)
        goto oom;
    s.keys = o->n_keys;
    trace_close(t);
    sim_free(keys);
    if (st)
        *st = s;
    *out = o;
    return SIM_OK;
oom:
    sim_err_set(err, "--policy", 0, 0, "belady: out of memory reading the trace ahead");
    rc = SIM_ENOMEM;
fail:
    trace_close(t);
    sim_free(keys);
    evict_oracle_destroy(o);
    return rc;
}
