/* fleet.h: a fleet file (docs/fleet.md) turned into the engine's fleet.
 *
 * The file names regions (GPU supply and price per GPU kind), user
 * populations (weight and round-trip time to each region), the share of
 * requests per model, pools (model, GPU, TP and replicas in a region, with
 * any per-replica `run` option), the router, its scope and an optional
 * autoscaler. Each pool is set up like a run's single pool (rt_pool_setup)
 * from the run's config overlaid with the pool's fields, so every check a
 * run makes (weights that do not fit, TP beyond a node, ...) applies to each
 * pool and names it. */
#ifndef RT_FLEET_H
#define RT_FLEET_H

#include <jansson.h>

#include "be.h"
#include "cli.h"
#include "engine.h"
#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rt_fleet {
    eng_fleet f; /* what the engine reads; points into the arrays below */
    eng_pool *pools;
    rt_pool *rp; /* [n_pools] */
    be *bes;     /* [n_pools] executors (open) */
    double *pop_weight, *rtt_s, *model_weight;
    int64_t *supply;
    char **names; /* pool names (owned) */
} rt_fleet;

/* Builds a fleet from its JSON object and the run's resolved config (the
 * pools' defaults); ops is the run's executor (only `sim` runs a fleet).
 * Returns SIM_OK and an owned *out, or an error status with *err naming
 * the file's key. */
int rt_fleet_build(json_t *fleet, json_t *cfg, const struct be_ops *ops, rt_fleet **out,
                   sim_err *err);
/* Closes the executors and frees everything; NULL is a no-op. */
void rt_fleet_free(rt_fleet *f);
/* A JSON array describing the pools (name, region, model, GPU, TP,
 * replicas, first replica index) for reports; owned. */
json_t *rt_fleet_info(const rt_fleet *f, json_t *fleet);
/* Parses a router name (round-robin, least-outstanding, least-kv, session,
 * prefix) into *out; SIM_EINVAL otherwise. */
int rt_router_parse(const char *name, int *out);

#ifdef __cplusplus
}
#endif
#endif /* RT_FLEET_H */
