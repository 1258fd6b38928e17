/* backends.c: the table of executors (see backends.h).
 *
 * One static const table, in the order `kvfleet run --help` lists them. A
 * build without CUDA has no cuda row, so rt_backend_find("cuda") is NULL
 * there and the command line says why (docs/backends.md). */
#include "config.h"
#include "backends.h"

#include <stdio.h>
#include <string.h>

#include "be_cpu.h"

static const struct be_ops *const backends[] = {
    &be_sim_ops,
    &be_cpu_ops,
    &be_replay_ops,
#ifdef KV_HAVE_CUDA
    &be_cuda_ops,
#endif
};
#define N_BACKENDS (sizeof backends / sizeof backends[0])

const struct be_ops *rt_backend_find(const char *name) {
    size_t i;
    for (i = 0; name && i < N_BACKENDS; i++)
        if (strcmp(backends[i]->name, name) == 0)
            return backends[i];
    return NULL;
}

void rt_backend_list(char *buf, size_t n) {
    size_t i, at = 0;
    if (n == 0)
        return;
    buf[0] = '\0';
    for (i = 0; i < N_BACKENDS && at < n; i++) {
        int k = snprintf(buf + at, n - at, "%s%s", i ? ", " : "", backends[i]->name);
        if (k < 0)
            break;
        at += (size_t)k;
    }
}

int rt_backend_known(const char *name) {
    return rt_backend_find(name) != NULL || (name && strcmp(name, "cuda") == 0);
}

int rt_backend_measured(const struct be_ops *ops) {
    return ops && (strcmp(ops->name, "cpu") == 0 || strcmp(ops->name, "cuda") == 0);
}
