/* evict.c: the cost of each eviction policy per block access (make bench).
 *
 * Reads a Mooncake trace into memory once, then, for every registered
 * policy, replays it back to back until about TARGET block accesses were
 * made (each repetition with fresh keys, as `kvfleet cache-replay
 * --repeat` does) through the same core the command uses
 * (rt_creplay_request: hash lookups, holds, insertions, evictions), and
 * prints block accesses per wall-clock second of that loop alone; trace
 * parsing is not timed. Belady's first pass (building the oracle) is timed
 * apart. Prints figures; asserts nothing.
 *
 * Each replay runs ROUNDS times (default 3) and the fastest is reported,
 * so that a busy machine disturbs the figures less.
 *
 * usage: evict TRACE [CAPACITY_BLOCKS [TARGET_ACCESSES [ROUNDS [POLICY]]]]
 * (defaults 10000 blocks, 10,000,000 accesses, 3 rounds, every policy) */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache_replay.h"
#include "cli.h"
#include "evict.h"
#include "mem.h"
#include "trace.h"

typedef struct loaded {
    uint32_t *ids;    /* every request's hash ids, back to back */
    int64_t *off;     /* request i: ids[off[i] .. off[i+1]) */
    int32_t *prompt;  /* prompt tokens */
    sim_time *t;      /* arrival */
    int64_t n, n_ids; /* requests, ids */
} loaded;

static int load(const char *path, loaded *l) {
    trace_src *t;
    trace_opts o;
    sim_req q;
    sim_err err;
    int64_t cap = 0, cap_ids = 0;
    int rc;
    char buf[1200];
    trace_opts_default(&o);
    if (trace_open_file(path, TRACE_FMT_MOONCAKE, &o, &t, &err) != SIM_OK) {
        sim_err_format(&err, buf, sizeof buf);
        fprintf(stderr, "evict: %s\n", buf);
        return -1;
    }
    while ((rc = trace_next(t, &q, &err)) == 1) {
        if (l->n + 1 >= cap) {
            cap = cap ? 2 * cap : 4096;
            l->off = sim_realloc(l->off, (size_t)cap * sizeof *l->off);
            l->prompt = sim_realloc(l->prompt, (size_t)cap * sizeof *l->prompt);
            l->t = sim_realloc(l->t, (size_t)cap * sizeof *l->t);
            if (!l->off || !l->prompt || !l->t)
                return -1;
        }
        while (l->n_ids + q.n_hash_ids > cap_ids) {
            cap_ids = cap_ids ? 2 * cap_ids : 65536;
            l->ids = sim_realloc(l->ids, (size_t)cap_ids * sizeof *l->ids);
            if (!l->ids)
                return -1;
        }
        l->off[l->n] = l->n_ids;
        l->prompt[l->n] = q.prompt_tokens;
        l->t[l->n] = q.arrival_ns;
        for (int32_t i = 0; i < q.n_hash_ids; i++)
            l->ids[l->n_ids++] = q.hash_ids[i];
        l->n++;
        l->off[l->n] = l->n_ids;
    }
    trace_close(t);
    if (rc < 0) {
        sim_err_format(&err, buf, sizeof buf);
        fprintf(stderr, "evict: %s\n", buf);
        return -1;
    }
    return l->n > 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    loaded l = {0};
    int64_t cap = argc > 2 ? atoll(argv[2]) : 10000;
    double target = argc > 3 ? atof(argv[3]) : 1e7;
    int rounds = argc > 4 ? atoi(argv[4]) : 3, round;
    const char *only = argc > 5 ? argv[5] : NULL;
    int64_t reps, rep, i;
    size_t p;
    if (argc < 2 || cap < 1 || rounds < 1) {
        fprintf(stderr,
                "usage: evict TRACE [CAPACITY_BLOCKS [TARGET_ACCESSES [ROUNDS [POLICY]]]]\n");
        return 2;
    }
    if (load(argv[1], &l) != 0) {
        fprintf(stderr, "evict: cannot load %s (a Mooncake trace with hash_ids)\n", argv[1]);
        return 1;
    }
    reps = (int64_t)(target / (double)l.n_ids + 0.999);
    if (reps < 1)
        reps = 1;
    printf("eviction policies: %s x %lld (%lld block accesses), capacity %lld blocks\n", argv[1],
           (long long)reps, (long long)(reps * l.n_ids), (long long)cap);
    printf("%-8s %9s %9s %10s %8s %s\n", "policy", "hit_rate", "seconds", "M acc/s", "ns/acc",
           "(replay loop only; trace parsed beforehand)");
    for (p = 0; p < evict_count(); p++) {
        const char *name = evict_at(p)->name;
        evict_oracle *o = NULL;
        rt_creplay_stats s;
        double best = 0, t_oracle = 0, t0;
        sim_time span = l.t[l.n - 1] + SIM_NS_PER_S;
        if (only != NULL && strcmp(only, name) != 0)
            continue;
        if (strcmp(name, "belady") == 0) {
            t0 = rt_now_s();
            o = evict_oracle_create();
            for (rep = 0; o && rep < reps; rep++)
                for (i = 0; i < l.n; i++)
                    if (rt_creplay_oracle_add(o, l.ids + l.off[i],
                                              (int32_t)(l.off[i + 1] - l.off[i]),
                                              (uint64_t)rep) != SIM_OK)
                        return 3;
            if (o == NULL)
                return 3;
            evict_oracle_finish(o);
            t_oracle = rt_now_s() - t0;
        }
        for (round = 0; round < rounds; round++) {
            rt_creplay *r;
            sim_err err;
            double dt;
            if (rt_creplay_create(name, cap, 512, o, &r, &err) != SIM_OK) {
                fprintf(stderr, "evict: %s: %s\n", name, err.msg);
                return 1;
            }
            rt_creplay_count_unique(r, 0);
            t0 = rt_now_s();
            for (rep = 0; rep < reps; rep++)
                for (i = 0; i < l.n; i++)
                    if (rt_creplay_request(r, l.ids + l.off[i], (int32_t)(l.off[i + 1] - l.off[i]),
                                           l.prompt[i], -1, rep * span + l.t[i],
                                           (uint64_t)rep) != SIM_OK)
                        return 3;
            dt = rt_now_s() - t0;
            if (round == 0 || dt < best)
                best = dt;
            rt_creplay_stats_get(r, &s);
            rt_creplay_destroy(r);
        }
        printf("%-8s %9.4f %9.3f %10.2f %8.1f", name, (double)s.hit_blocks / (double)s.blocks, best,
               (double)s.blocks / best / 1e6, best * 1e9 / (double)s.blocks);
        if (o != NULL)
            printf("  (+ %.3f s first pass, %.1f MiB oracle)", t_oracle,
                   (double)o->cap * 8 / 1048576.0);
        printf("\n");
        evict_oracle_destroy(o);
    }
    sim_free(l.ids);
    sim_free(l.off);
    sim_free(l.prompt);
    sim_free(l.t);
    return 0;
}
