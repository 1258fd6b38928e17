/* hw.c: GPU presets from data/gpus/NAME.json (see hw.h).
 *
 * A preset is one JSON object whose keys are the sim_gpu fields, plus
 * "name", "description" and "sources" (per field, the document the number
 * came from). Every field is required, so a preset cannot silently lean on
 * a default; unknown keys are refused, so a misspelt field is caught.
 *
 * Validation: capacities, bandwidths and rates must be > 0, except
 * flops_fp8 (0: no fp8), nvlink_bw and ib_bw (0: no such link), which must
 * be >= 0; latencies and the launch overhead must be >= 0; pcie_gen is in
 * [1, 7] and gpus_per_node >= 1. Each refusal names the field and its unit.
 *
 * Non-goals: topology beyond "GPUs per node", clocks, power. */
#include "config.h"
#include "hw.h"

#include <stddef.h>
#include <string.h>

#include "json_util.h"
#include "mem.h"

/* The double-valued fields, in file order, with their unit and sign rule. */
static const struct {
    const char *key;
    size_t off;
    const char *unit;
    unsigned flags;
} gpu_doubles[] = {
    {"hbm_bytes", offsetof(sim_gpu, hbm_bytes), "bytes", SIM_JSON_POSITIVE},
    {"hbm_bw", offsetof(sim_gpu, hbm_bw), "bytes/s", SIM_JSON_POSITIVE},
    {"flops_bf16", offsetof(sim_gpu, flops_bf16), "FLOP/s", SIM_JSON_POSITIVE},
    {"flops_fp8", offsetof(sim_gpu, flops_fp8), "FLOP/s, 0 when the GPU has no fp8",
     SIM_JSON_NONNEG},
    {"l2_bytes", offsetof(sim_gpu, l2_bytes), "bytes", SIM_JSON_POSITIVE},
    {"pcie_bw", offsetof(sim_gpu, pcie_bw), "bytes/s", SIM_JSON_POSITIVE},
    {"pcie_latency_s", offsetof(sim_gpu, pcie_latency_s), "s", SIM_JSON_NONNEG},
    {"nvlink_bw", offsetof(sim_gpu, nvlink_bw), "bytes/s, 0 when there is no NVLink",
     SIM_JSON_NONNEG},
    {"nvlink_latency_s", offsetof(sim_gpu, nvlink_latency_s), "s", SIM_JSON_NONNEG},
    {"ib_bw", offsetof(sim_gpu, ib_bw), "bytes/s, 0 when there is no InfiniBand", SIM_JSON_NONNEG},
    {"ib_latency_s", offsetof(sim_gpu, ib_latency_s), "s", SIM_JSON_NONNEG},
    {"host_mem_bytes", offsetof(sim_gpu, host_mem_bytes), "bytes", SIM_JSON_POSITIVE},
    {"launch_overhead_s", offsetof(sim_gpu, launch_overhead_s), "s", SIM_JSON_NONNEG},
};

/* Every key a preset may hold. */
static const char *const gpu_keys[] = {
    "name",           "description",    "hbm_bytes",         "hbm_bw",   "flops_bf16",
    "flops_fp8",      "n_sm",           "l2_bytes",          "pcie_gen", "pcie_bw",
    "pcie_latency_s", "nvlink_bw",      "nvlink_latency_s",  "ib_bw",    "ib_latency_s",
    "gpus_per_node",  "host_mem_bytes", "launch_overhead_s", "sources",  NULL,
};

/* Parses a GPU preset. The name is the "name" key, else the base name of
 * src. Returns SIM_OK, SIM_EPARSE (syntax, missing key, wrong type, unknown
 * key) or SIM_EINVAL (out of range), with *err filled; on failure *out is
 * left unchanged. */
int sim_gpu_parse(const char *json_text, const char *src, sim_gpu *out, sim_err *err) {
    sim_gpu g;
    json_t *o = NULL, *sources = NULL;
    const char *name = NULL, *desc = NULL;
    double x;
    size_t i;
    int rc;

    memset(&g, 0, sizeof g);
    rc = sim_json_parse_object(json_text, strlen(json_text), src, &o, err);
    if (rc != SIM_OK)
        return rc;
    if ((rc = sim_json_check_keys(o, gpu_keys, src, err)) ||
        (rc = sim_json_get_string(o, "name", 0, &name, src, err)) ||
        (rc = sim_json_get_string(o, "description", 0, &desc, src, err)) ||
        (rc = sim_json_get_object(o, "sources", 0, &sources, src, err)))
        goto done;

    for (i = 0; i < sizeof gpu_doubles / sizeof gpu_doubles[0]; i++) {
        x = 0;
        rc = sim_json_get_double(o, gpu_doubles[i].key, SIM_JSON_REQUIRED | gpu_doubles[i].flags,
                                 gpu_doubles[i].unit, &x, src, err);
        if (rc != SIM_OK)
            goto done;
        memcpy((char *)&g + gpu_doubles[i].off, &x, sizeof x);
    }
    if ((rc = sim_json_get_int(o, "n_sm", SIM_JSON_REQUIRED | SIM_JSON_POSITIVE, &g.n_sm, src,
                               err)) ||
        (rc = sim_json_get_int(o, "pcie_gen", SIM_JSON_REQUIRED | SIM_JSON_POSITIVE, &g.pcie_gen,
                               src, err)) ||
        (rc = sim_json_check_range_i64("pcie_gen", g.pcie_gen, 1, 7, src, err)) ||
        (rc = sim_json_get_int(o, "gpus_per_node", SIM_JSON_REQUIRED | SIM_JSON_POSITIVE,
                               &g.gpus_per_node, src, err)))
        goto done;

    if (name != NULL)
        snprintf(g.name, sizeof g.name, "%s", name);
    else
        sim_json_stem(src, g.name, sizeof g.name);
    *out = g;

done:
    json_decref(o);
    return rc;
}

/* Loads DATADIR/gpus/NAME.json, or the preset file at a path. Errors name
 * the file; an unknown name returns SIM_ENOENT listing the presets. */
int sim_gpu_load(const char *name_or_path, const char *datadir, sim_gpu *out, sim_err *err) {
    char path[4096];
    char *text = NULL;
    int rc;

    rc = sim_json_preset_path(datadir, "gpus", name_or_path, NULL, "gpu", "a GPU preset .json",
                              path, sizeof path, err);
    if (rc != SIM_OK)
        return rc;
    rc = sim_json_read_file(path, &text, NULL, err);
    if (rc != SIM_OK)
        return rc;
    rc = sim_gpu_parse(text, path, out, err);
    sim_free(text);
    return rc;
}
