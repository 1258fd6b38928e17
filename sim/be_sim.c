/* be_sim.c: the simulator backend: a step lasts what the perf model
 * predicts (the engine computes the prediction before calling step). */
#include "config.h"
#include "be.h"

static int sim_open(void **ctx, const be_args *a, sim_err *err) {
    (void)a;
    (void)err;
    *ctx = NULL;
    return SIM_OK;
}

static int sim_step(void *ctx, int replica, const sched *s, const sched_batch *b, be_result *out,
                    sim_err *err) {
    (void)ctx;
    (void)replica;
    (void)s;
    (void)b;
    (void)err;
    out->dur_s = out->pred_s;
    return SIM_OK;
}

static void sim_close(void *ctx) {
    (void)ctx;
}

const struct be_ops be_sim_ops = {
    .version = BE_VERSION,
    .name = "sim",
    .open = sim_open,
    .step = sim_step,
    .kv_copy = NULL,
    .sync = NULL,
    .supports = NULL,
    .close = sim_close,
};
