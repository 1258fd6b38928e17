/* test_sweep_spec.c: experiment specs and the task dispatcher.
 *
 * Specs: the cartesian product in axis order (last axis fastest), a points
 * list merged over base, seed replications, relative paths anchored at the
 * spec's folder, and the exact refusals (unknown option naming the key and
 * the file, empty axis, non-list axis, neither axes nor points). The
 * dispatcher: for every rank count 1..16, workers asking and finishing in
 * a scrambled order receive every task exactly once, and the job ends only
 * when every result is in and every worker was stopped. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "sweep.h"
#include "t.h"

static sweep_spec *parse(const char *text, sim_err *err, int *rc) {
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    sweep_spec *s = NULL;
    if (j == NULL)
        T_FAIL_("bad JSON in the test: %s", je.text);
    sim_err_clear(err);
    *rc = sweep_spec_parse(j, "spec.json", "/data/exp", &s, err);
    json_decref(j);
    return s;
}

static void refuse(const char *text, const char *msg) {
    sim_err err;
    char buf[1200];
    int rc;
    sweep_spec *s = parse(text, &err, &rc);
    T_ASSERT(s == NULL);
    T_EQ_I(rc, SIM_EINVAL);
    sim_err_format(&err, buf, sizeof buf);
    T_STREQ(buf, msg);
}

static const char *axis_str(const sweep_spec *s, int p, const char *k) {
    return json_string_value(json_object_get(s->point_axes[p], k));
}

static long long axis_int(const sweep_spec *s, int p, const char *k) {
    return json_integer_value(json_object_get(s->point_axes[p], k));
}

static void test_cartesian(void) {
    sim_err err;
    int rc, p, seen[12] = {0};
    sweep_spec *s =
        parse("{\"name\": \"c\", \"base\": {\"model\": \"tiny\", \"limit\": 5, \"trace\": "
              "\"t.csv\"}, \"axes\": {\"tp\": [1, 2], \"policy\": [\"lru\", \"fifo\", \"none\"], "
              "\"max-num-seqs\": [8, 16]}, \"seeds\": 3, \"warmup-s\": 2.5}",
              &err, &rc);
    T_EQ_I(rc, SIM_OK);
    T_EQ_I(s->n_points, 12);
    T_EQ_I(s->seeds, 3);
    T_EQ_I(sweep_spec_tasks(s), 36);
    T_NEAR(s->warmup_s, 2.5, 0);
    T_EQ_I(json_array_size(s->axes), 3);
    T_STREQ(json_string_value(json_array_get(s->axes, 0)), "tp");
    T_STREQ(json_string_value(json_array_get(s->axes, 2)), "max-num-seqs");
    /* first axis slowest, last fastest: p = (tp * 3 + policy) * 2 + seqs */
    for (p = 0; p < 12; p++) {
        static const char *const pol[] = {"lru", "fifo", "none"};
        int tp = p / 6, po = (p / 2) % 3, sq = p % 2;
        T_EQ_I(axis_int(s, p, "tp"), tp + 1);
        T_STREQ(axis_str(s, p, "policy"), pol[po]);
        T_EQ_I(axis_int(s, p, "max-num-seqs"), sq ? 16 : 8);
        /* the config has base and axes merged, the trace anchored at the spec's folder */
        T_EQ_I(json_integer_value(json_object_get(s->point_cfg[p], "tp")), tp + 1);
        T_EQ_I(json_integer_value(json_object_get(s->point_cfg[p], "limit")), 5);
        T_STREQ(json_string_value(json_object_get(s->point_cfg[p], "trace")), "/data/exp/t.csv");
        T_STREQ(json_string_value(json_object_get(s->point_cfg[p], "model")), "tiny");
        seen[(tp * 3 + po) * 2 + sq]++;
    }
    for (p = 0; p < 12; p++)
        T_EQ_I(seen[p], 1);
    /* a task's config: seed = the point's seed (default 1) + replication */
    {
        size_t t;
        for (t = 0; t < sweep_spec_tasks(s); t++) {
            json_t *cfg = NULL;
            T_EQ_I(sweep_task_config(s, t, "x.db", &cfg, &err), SIM_OK);
            T_EQ_I(json_integer_value(json_object_get(cfg, "seed")), 1 + (long long)(t % 3));
            T_EQ_I(json_integer_value(json_object_get(cfg, "tp")), (long long)(t / 3) / 6 + 1);
            { /* the results file made absolute, as `kvfleet run --db x.db` stores it */
                const char *db = json_string_value(json_object_get(cfg, "db"));
                T_ASSERT(db != NULL && db[0] == '/' && strlen(db) > 5);
                T_STREQ(db + strlen(db) - 5, "/x.db");
            }
            /* resolved: defaults present */
            T_ASSERT(json_object_get(cfg, "block-tokens") != NULL);
            json_decref(cfg);
        }
    }
    sweep_spec_destroy(s);
}

static void test_points(void) {
    sim_err err;
    int rc;
    json_t *cfg = NULL;
    sweep_spec *s = parse("{\"name\": \"p\", \"base\": {\"tp\": 2, \"seed\": 10, \"model\": "
                          "\"m/x.json\", \"replay\": \"r.db:3\"}, \"points\": [{\"tp\": 1}, "
                          "{\"replicas\": 4, \"chunked-prefill\": false}, {}], \"seeds\": 2}",
                          &err, &rc);
    T_EQ_I(rc, SIM_OK);
    T_EQ_I(s->n_points, 3);
    T_EQ_I(json_array_size(s->axes), 3); /* tp, replicas, chunked-prefill */
    T_EQ_I(json_integer_value(json_object_get(s->point_cfg[0], "tp")), 1);
    T_EQ_I(json_integer_value(json_object_get(s->point_cfg[1], "tp")), 2);
    T_EQ_I(json_integer_value(json_object_get(s->point_cfg[1], "replicas")), 4);
    T_ASSERT(json_is_false(json_object_get(s->point_cfg[1], "chunked-prefill")));
    T_EQ_I(json_object_size(s->point_axes[2]), 0);
    T_STREQ(json_string_value(json_object_get(s->point_cfg[2], "model")), "/data/exp/m/x.json");
    T_STREQ(json_string_value(json_object_get(s->point_cfg[2], "replay")), "/data/exp/r.db:3");
    T_EQ_I(sweep_task_config(s, 5, "y.db", &cfg, &err), SIM_OK); /* point 2, rep 1 */
    T_EQ_I(json_integer_value(json_object_get(cfg, "seed")), 11);
    json_decref(cfg);
    sweep_spec_destroy(s);
    /* the largest seed whose replications all fit: the last runs with 2^63-1 */
    s = parse("{\"name\": \"m\", \"base\": {\"seed\": 9223372036854775806}, \"axes\": "
              "{\"tp\": [1]}, \"seeds\": 2}",
              &err, &rc);
    T_EQ_I(rc, SIM_OK);
    T_EQ_I(sweep_task_config(s, 1, "y.db", &cfg, &err), SIM_OK);
    T_EQ_I(json_integer_value(json_object_get(cfg, "seed")), INT64_MAX);
    json_decref(cfg);
    sweep_spec_destroy(s);
}

static void test_refusals(void) {
    refuse("{\"name\": \"x\", \"base\": {\"modle\": \"tiny\"}, \"axes\": {\"tp\": [1]}}",
           "spec.json: base.modle: unknown option '--modle' (kvfleet run --help lists them)");
    refuse("{\"name\": \"x\", \"axes\": {\"tpp\": [1]}}",
           "spec.json: axes.tpp: unknown option '--tpp' (kvfleet run --help lists them)");
    refuse("{\"name\": \"x\", \"axes\": {\"tp\": [1], \"replicas\": []}}",
           "spec.json: axes.replicas: expected a non-empty list of values, got '[]'");
    refuse("{\"name\": \"x\", \"axes\": {\"tp\": 2}}",
           "spec.json: axes.tp: expected a list of values, got '2'");
    refuse("{\"name\": \"x\", \"base\": {\"tp\": 1}}",
           "spec.json: axes, points: expected \"axes\": {OPTION: [VALUES]} or \"points\": "
           "[{OPTION: VALUE}], got neither");
    refuse("{\"name\": \"x\", \"axes\": {\"tp\": [1, 2.5]}}",
           "spec.json: axes.tp: --tp: expected an integer, got '2.5'");
    refuse("{\"name\": \"x\", \"points\": [{\"tp\": 1}, {\"gpuu\": \"h200\"}]}",
           "spec.json: points[1].gpuu: unknown option '--gpuu' (kvfleet run --help lists them)");
    refuse("{\"name\": \"x\", \"axes\": {\"tp\": [1]}, \"seeds\": 0}",
           "spec.json: seeds: expected an integer in 1..100000, got '0'");
    refuse("{\"axes\": {\"tp\": [1]}}",
           "spec.json: name: expected a non-empty string, got 'nothing'");
    refuse("{\"name\": \"x\", \"axis\": {\"tp\": [1]}}",
           "spec.json: axis: unknown spec key (expected name, base, axes, points, seeds, "
           "warmup-s)");
    /* every point resolved as `kvfleet run` resolves it: out-of-range values refused */
    refuse("{\"name\": \"x\", \"axes\": {\"tp\": [1]}, \"points\": []}",
           "spec.json: axes, points: expected one of them, got both");
    refuse("{\"name\": \"x\", \"axes\": {\"seed\": [1, -1]}}",
           "spec.json: point 1: --seed: expected an integer from 0 to 9223372036854775807, got "
           "'-1'");
    refuse("{\"name\": \"x\", \"points\": [{\"trace\": \"t.csv\", \"synthetic\": \"x\"}]}",
           "spec.json: point 0: --trace and --synthetic: give one source, not both");
    /* replication r runs with seed + r: refused, not wrapped, past 2^63-1 */
    refuse("{\"name\": \"w\", \"base\": {\"seed\": 9223372036854775807}, \"axes\": "
           "{\"tp\": [1]}, \"seeds\": 2}",
           "spec.json: point 0: seed: expected at most 9223372036854775806 with 2 seeds "
           "(replication r runs with seed + r, at most 2^63-1), got '9223372036854775807'");
    refuse("{\"name\": \"w\", \"axes\": {\"seed\": [5, 9223372036854775800]}, \"seeds\": 9}",
           "spec.json: point 1: seed: expected at most 9223372036854775799 with 9 seeds "
           "(replication r runs with seed + r, at most 2^63-1), got '9223372036854775800'");
    refuse("{\"name\": \"x\", \"base\": {\"db\": \"a.db\"}, \"axes\": {\"tp\": [1]}}",
           "spec.json: base.db: expected no results file in a spec (kvfleet sweep --db FILE "
           "names it)");
}

/* Drives the dispatcher as n_ranks MPI ranks would, in a scrambled order. */
static void test_dispatch(void) {
    int n_ranks;
    for (n_ranks = 1; n_ranks <= 16; n_ranks++) {
        size_t n_tasks;
        for (n_tasks = 0; n_tasks <= 40; n_tasks += 7) {
            size_t todo[64], t;
            int given[128] = {0}, busy[16], stopped[16] = {0}, w, n_workers, steps = 0;
            long task_of[16];
            uint64_t rng = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(n_ranks * 131 + (int)n_tasks);
            sweep_dispatch d;
            n_workers = sweep_worker_count(n_ranks);
            T_EQ_I(n_workers, n_ranks == 1 ? 1 : n_ranks - 1);
            for (w = 0; w < n_workers; w++) { /* rank 0 works only alone */
                T_EQ_I(sweep_worker_rank(n_ranks, w), n_ranks == 1 ? 0 : w + 1);
                busy[w] = 0;
            }
            for (t = 0; t < n_tasks; t++) /* a resumed sweep: every other task of 2*n */
                todo[t] = 2 * t + (size_t)(n_ranks % 2);
            sweep_dispatch_init(&d, todo, n_tasks, n_workers);
            while (!sweep_dispatch_finished(&d)) {
                T_LE_I(++steps, 10000);
                rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
                w = (int)((rng >> 33) % (uint64_t)n_workers);
                if (stopped[w])
                    continue;
                if (busy[w]) { /* a result comes in; the worker asks again */
                    given[task_of[w]]++;
                    sweep_dispatch_done(&d);
                    busy[w] = 0;
                }
                task_of[w] = sweep_dispatch_next(&d);
                if (task_of[w] == SWEEP_STOP)
                    stopped[w] = 1;
                else
                    busy[w] = 1;
            }
            for (w = 0; w < n_workers; w++) {
                T_EQ_I(stopped[w], 1);
                T_EQ_I(busy[w], 0);
            }
            for (t = 0; t < 2 * n_tasks + 2; t++) {
                int want = t % 2 == (size_t)(n_ranks % 2) && t < 2 * n_tasks;
                T_EQ_I(given[t], want);
            }
        }
    }
}

int main(void) {
    test_cartesian();
    test_points();
    test_refusals();
    test_dispatch();
    printf("test_sweep_spec: ok\n");
    return 0;
}
