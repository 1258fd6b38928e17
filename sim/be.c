/* be.c: wrappers over struct be_ops that handle the optional members. */
#include "config.h"
#include "be.h"

#include <math.h>

int be_open(be *b, const struct be_ops *ops, const be_args *a, sim_err *err) {
    int rc;
    b->ops = NULL;
    b->ctx = NULL;
    SIM_ASSERT(ops && ops->version == BE_VERSION && ops->open && ops->step && ops->close);
    rc = ops->open(&b->ctx, a, err);
    if (rc == SIM_OK)
        b->ops = ops;
    return rc;
}

int be_step(be *b, int replica, const sched *s, const sched_batch *batch, be_result *out,
            sim_err *err) {
    out->dur_s = NAN;
    out->meas_s = NAN;
    out->host_s = NAN;
    return b->ops->step(b->ctx, replica, s, batch, out, err);
}

int be_sync(be *b, sim_err *err) {
    return b->ops->sync ? b->ops->sync(b->ctx, err) : SIM_OK;
}

int be_supports(be *b, const char *feature) {
    return b->ops->supports ? b->ops->supports(b->ctx, feature) : 1;
}

void be_close(be *b) {
    if (b == NULL || b->ops == NULL)
        return;
    b->ops->close(b->ctx);
    b->ops = NULL;
    b->ctx = NULL;
}
