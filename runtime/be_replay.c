/* be_replay.c: the replay executor: feeds the step durations recorded in
 * an earlier run back into the event loop (see backends.h).
 *
 * open() reads every steps row of the run named by the option "DB:RUN_ID"
 * (the last ':' splits it) and checks the run can be replayed: it finished
 * (status 'done'), it stored every step (steps rows = summary.steps, i.e.
 * --steps-sample 1), each replica's steps are 0, 1, 2, ... without a gap,
 * and its replica count and KV pool match this run's. step() hands back,
 * for replica r, the recorded dur_s of r's next step, after checking that
 * the batch the scheduler formed is the recorded one (sequences, prefill
 * chunks, decoding sequences, prefill and decode tokens). The event loop
 * advances by exactly the recorded durations, so a scheduler that is the
 * same on every executor reproduces the recorded run's decisions, batch for
 * batch; the first batch that differs stops the run with an error naming
 * the replica and step. That is the test that the scheduler is identical
 * across backends (tests/test_backends.sh).
 *
 * meas_s reports the recorded meas_s (NULL when the recorded run was
 * simulated), so a replayed measured run can be analysed like the
 * original; host_s is not replayed. A replay is deterministic: the same
 * file and options give byte-identical rows.
 *
 * Memory: the recorded rows (about 90 bytes a step), read once in open(). */
#include "config.h"
#include "backends.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "store_steps.h"

typedef struct replay_ctx {
    store_step_rec *rows; /* (replica, step) order */
    int64_t n_rows;
    int n_replicas;
    int64_t *first; /* (n_replicas + 1): replica r owns rows [first[r], first[r + 1]) */
    int64_t *next;  /* (n_replicas): replica r's next row */
    char src[300];  /* "DB:RUN_ID" for messages */
} replay_ctx;

int be_replay_parse(const char *option, char *db, size_t db_n, int64_t *run_id, sim_err *err) {
    const char *colon = option ? strrchr(option, ':') : NULL;
    char *end;
    long long id;
    if (colon == NULL || colon == option) {
        sim_err_set(err, "", 0, 0, "--replay: expected DB:RUN_ID, got '%s'", option ? option : "");
        return SIM_EINVAL;
    }
    id = strtoll(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || id < 1) {
        sim_err_set(err, "", 0, 0, "--replay: expected DB:RUN_ID with RUN_ID >= 1, got '%s'",
                    option);
        return SIM_EINVAL;
    }
    if ((size_t)(colon - option) >= db_n) {
        sim_err_set(err, "", 0, 0, "--replay: the file name is too long: '%s'", option);
        return SIM_EINVAL;
    }
    snprintf(db, db_n, "%.*s", (int)(colon - option), option);
    *run_id = id;
    return SIM_OK;
}

int be_replay_kv_blocks(const char *option, int64_t *kv_blocks, sim_err *err) {
    char db[4096];
    int64_t run_id;
    store_run_meta meta;
    int rc = be_replay_parse(option, db, sizeof db, &run_id, err);
    *kv_blocks = 0;
    if (rc != SIM_OK)
        return rc;
    if ((rc = store_steps_read(db, run_id, &meta, NULL, NULL, err)) != SIM_OK)
        return rc;
    *kv_blocks = meta.kv_blocks;
    return SIM_OK;
}

static void replay_close(void *ctx) {
    replay_ctx *c = ctx;
    if (c == NULL)
        return;
    sim_free(c->rows);
    sim_free(c->first);
    sim_free(c->next);
    sim_free(c);
}

/* Checks the recorded run against what replaying it needs. */
static int replay_check(const replay_ctx *c, const store_run_meta *m, const be_args *a,
                        sim_err *err) {
    int64_t i;
    if (strcmp(m->status, "done") != 0) {
        sim_err_set(err, "", 0, 0,
                    "--replay %s: expected a finished run, got status '%s' (partial results "
                    "cannot be replayed)",
                    c->src, m->status);
        return SIM_EINVAL;
    }
    if (m->steps < 1 || m->n_rows != m->steps) {
        sim_err_set(err, "", 0, 0,
                    "--replay %s: expected every step stored, got %lld of %lld steps rows (record "
                    "the run with --steps-sample 1)",
                    c->src, (long long)m->n_rows, (long long)m->steps);
        return SIM_EINVAL;
    }
    if (m->kv_blocks != a->kv_blocks) {
        sim_err_set(err, "", 0, 0,
                    "--kv-blocks: expected the recorded run's %lld KV blocks per replica, got "
                    "'%lld' (replay with the recorded run's options)",
                    (long long)m->kv_blocks, (long long)a->kv_blocks);
        return SIM_EINVAL;
    }
    for (i = 0; i < c->n_rows; i++) {
        const store_step_rec *r = &c->rows[i];
        int64_t want =
            (i > 0 && c->rows[i - 1].replica == r->replica) ? c->rows[i - 1].step + 1 : 0;
        if (r->replica < 0 || r->replica >= c->n_replicas) {
            sim_err_set(err, "", 0, 0,
                        "--replicas: expected the recorded run's replicas (it has steps of "
                        "replica %d), got '%d'",
                        r->replica, c->n_replicas);
            return SIM_EINVAL;
        }
        if (r->step != want || !(r->dur_s >= 0)) {
            sim_err_set(err, "", 0, 0,
                        "--replay %s: replica %d: expected step %lld with a duration, got step "
                        "%lld (duration %g s)",
                        c->src, r->replica, (long long)want, (long long)r->step, r->dur_s);
            return SIM_EINVAL;
        }
    }
    return SIM_OK;
}

/* Opens the replay of a->option ("DB:RUN_ID"). */
static int replay_open(void **ctx, const be_args *a, sim_err *err) {
    char db[4096];
    int64_t run_id, i;
    store_run_meta meta;
    replay_ctx *c;
    int rc;
    *ctx = NULL;
    if (a->option == NULL || a->option[0] == '\0') {
        sim_err_set(err, "", 0, 0,
                    "--replay: expected DB:RUN_ID with --backend replay (the run to replay), got "
                    "nothing");
        return SIM_EINVAL;
    }
    if ((rc = be_replay_parse(a->option, db, sizeof db, &run_id, err)) != SIM_OK)
        return rc;
    c = SIM_NEW(replay_ctx);
    if (c == NULL)
        return SIM_ENOMEM;
    snprintf(c->src, sizeof c->src, "%s", a->option);
    c->n_replicas = a->replicas > 0 ? a->replicas : 1;
    rc = store_steps_read(db, run_id, &meta, &c->rows, &c->n_rows, err);
    if (rc == SIM_OK)
        rc = replay_check(c, &meta, a, err);
    if (rc != SIM_OK) {
        replay_close(c);
        return rc;
    }
    c->first = SIM_NEW_ARRAY(int64_t, (size_t)c->n_replicas + 1);
    c->next = SIM_NEW_ARRAY(int64_t, (size_t)c->n_replicas);
    if (c->first == NULL || c->next == NULL) {
        replay_close(c);
        return SIM_ENOMEM;
    }
    for (i = 0; i < c->n_rows; i++) /* count, then prefix sums */
        c->first[c->rows[i].replica + 1]++;
    for (i = 0; i < c->n_replicas; i++) {
        c->first[i + 1] += c->first[i];
        c->next[i] = c->first[i];
    }
    *ctx = c;
    return SIM_OK;
}

static int replay_step(void *ctx, int replica, const sched *s, const sched_batch *b, be_result *out,
                       sim_err *err) {
    replay_ctx *c = ctx;
    const store_step_rec *r;
    int got = b->n_chunks + b->n_decode;
    (void)s;
    if (replica < 0 || replica >= c->n_replicas || c->next[replica] >= c->first[replica + 1]) {
        sim_err_set(err, "", 0, 0,
                    "replay diverged at replica %d step %lld: the recorded run (%s) has no such "
                    "step",
                    replica, (long long)b->step, c->src);
        return SIM_EINVAL;
    }
    r = &c->rows[c->next[replica]];
    if (r->step != b->step || r->batch_size != got || r->n_prefill != b->n_chunks ||
        r->n_decode != b->n_decode || r->prefill_tokens != b->agg.prefill_tokens ||
        r->decode_tokens != b->n_decode) {
        sim_err_set(err, "", 0, 0,
                    "replay diverged at replica %d step %lld: recorded batch %d (%d prefill, %lld "
                    "prefill tokens, %d decode) at step %lld, got %d (%d prefill, %lld prefill "
                    "tokens, %d decode)",
                    replica, (long long)b->step, r->batch_size, r->n_prefill,
                    (long long)r->prefill_tokens, r->n_decode, (long long)r->step, got, b->n_chunks,
                    (long long)b->agg.prefill_tokens, b->n_decode);
        return SIM_EINVAL;
    }
    c->next[replica]++;
    out->dur_s = r->dur_s;
    out->meas_s = r->meas_s;
    return SIM_OK;
}

const struct be_ops be_replay_ops = {
    .version = BE_VERSION,
    .name = "replay",
    .open = replay_open,
    .step = replay_step,
    .kv_copy = NULL,
    .sync = NULL,
    .supports = NULL,
    .close = replay_close,
};
