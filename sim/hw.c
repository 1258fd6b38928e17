/* hw.c: GPU presets from data/gpus/NAME.json (see hw.h).
 *
 * A preset is one JSON object whose keys are the sim_gpu fields, plus
 * "name", "description" and "sources" (per field, the document the number
 * came from). Every number is required, so a preset cannot silently lean on
 * a default; unknown keys are refused, so a misspelt field is caught. The
 * name (default: the file's stem) picks the calibration, so a file at a
 * path named as a shipped preset must hold that preset's chip (its server's
 * fields may differ).
 *
 * Validation: capacities, bandwidths and rates must be > 0, except
 * flops_fp8 (0: no fp8), nvlink_bw and ib_bw (0: no such link), which must
 * be >= 0; latencies and the launch overhead must be >= 0; pcie_gen is in
 * [1, 7] and gpus_per_node in [1, 1024]. A nonzero capacity, bandwidth or
 * rate below 1e6, or a latency above 1 s, is refused as a value written in
 * another unit (TB/s, GB, us), and so is a bandwidth or FLOP rate above
 * 1e18. Each refusal names the field and its unit.
 *
 * Non-goals: topology beyond "GPUs per node", clocks, power. */
#include "config.h"
#include "hw.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_util.h"
#include "mem.h"

/* The double-valued fields, in file order, with their unit and sign rule,
 * and the plausible range that catches a value written in another unit:
 * a capacity, bandwidth or rate below 1e6 (3.35 written for 3.35 TB/s, 80
 * for 80 GB) or a latency above 1 s (10 written for 10 us). A zero the sign
 * rule allows (no such link) is not checked against it. A bandwidth or
 * FLOP rate has a ceiling too: one of 1e308 made the remote KV pool's
 * bandwidth (ib_bw x its NICs) infinite, which no link can carry. */
#define GPU_MIN_SIZE    1e6
#define GPU_MAX_LATENCY 1.0
#define GPU_MAX_HBM     1e13 /* 10 TB: tens of times any GPU's */
/* bytes/s or FLOP/s: hundreds of times any GPU's peak or link, and times
 * 1024 NICs or 65536 GPUs still finite */
#define GPU_MAX_RATE 1e18
/* GPUs in one node: a rack-scale NVLink domain (72) with room to spare,
 * small enough that the run's TP limit (64 nodes) fits in an int */
#define GPU_MAX_PER_NODE 1024
static const struct {
    const char *key;
    size_t off;
    const char *unit;
    unsigned flags;
    double lo, hi;       /* the plausible range of a nonzero value */
    const char *example; /* the unit's spelling of a real value */
} gpu_doubles[] = {
    {"hbm_bytes", offsetof(sim_gpu, hbm_bytes), "bytes", SIM_JSON_POSITIVE, GPU_MIN_SIZE,
     GPU_MAX_HBM, "80 GB is 80e9"},
    {"hbm_bw", offsetof(sim_gpu, hbm_bw), "bytes/s", SIM_JSON_POSITIVE, GPU_MIN_SIZE, GPU_MAX_RATE,
     "3.35 TB/s is 3.35e12"},
    {"flops_bf16", offsetof(sim_gpu, flops_bf16), "FLOP/s", SIM_JSON_POSITIVE, GPU_MIN_SIZE,
     GPU_MAX_RATE, "989.4 TFLOP/s is 989.4e12"},
    {"flops_fp8", offsetof(sim_gpu, flops_fp8), "FLOP/s, 0 when the GPU has no fp8",
     SIM_JSON_NONNEG, GPU_MIN_SIZE, GPU_MAX_RATE, "1978.9 TFLOP/s is 1978.9e12"},
    {"l2_bytes", offsetof(sim_gpu, l2_bytes), "bytes", SIM_JSON_POSITIVE, GPU_MIN_SIZE, 0,
     "50 MiB is 52428800"},
    {"pcie_bw", offsetof(sim_gpu, pcie_bw), "bytes/s", SIM_JSON_POSITIVE, GPU_MIN_SIZE,
     GPU_MAX_RATE, "64 GB/s is 64e9"},
    {"pcie_latency_s", offsetof(sim_gpu, pcie_latency_s), "s", SIM_JSON_NONNEG, 0, GPU_MAX_LATENCY,
     "10 us is 10e-6"},
    {"nvlink_bw", offsetof(sim_gpu, nvlink_bw), "bytes/s, 0 when there is no NVLink",
     SIM_JSON_NONNEG, GPU_MIN_SIZE, GPU_MAX_RATE, "450 GB/s is 450e9"},
    {"nvlink_latency_s", offsetof(sim_gpu, nvlink_latency_s), "s", SIM_JSON_NONNEG, 0,
     GPU_MAX_LATENCY, "3 us is 3e-6"},
    {"ib_bw", offsetof(sim_gpu, ib_bw), "bytes/s, 0 when there is no InfiniBand", SIM_JSON_NONNEG,
     GPU_MIN_SIZE, GPU_MAX_RATE, "50 GB/s is 50e9"},
    {"ib_latency_s", offsetof(sim_gpu, ib_latency_s), "s", SIM_JSON_NONNEG, 0, GPU_MAX_LATENCY,
     "5 us is 5e-6"},
    {"host_mem_bytes", offsetof(sim_gpu, host_mem_bytes), "bytes", SIM_JSON_POSITIVE, GPU_MIN_SIZE,
     0, "2 TiB is 2199023255552"},
    {"launch_overhead_s", offsetof(sim_gpu, launch_overhead_s), "s", SIM_JSON_NONNEG, 0,
     GPU_MAX_LATENCY, "4 us is 4e-6"},
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
        if (x != 0 && (x < gpu_doubles[i].lo || (gpu_doubles[i].hi > 0 && x > gpu_doubles[i].hi))) {
            if (gpu_doubles[i].hi > 0 && gpu_doubles[i].lo > 0)
                sim_err_set(
                    err, src, 0, 0,
                    "%s: expected %s%g..%g %.*s (%s), got '%.15g' (written in another "
                    "unit?)",
                    gpu_doubles[i].key, gpu_doubles[i].flags & SIM_JSON_NONNEG ? "0 or " : "",
                    gpu_doubles[i].lo, gpu_doubles[i].hi, (int)strcspn(gpu_doubles[i].unit, ","),
                    gpu_doubles[i].unit, gpu_doubles[i].example, x);
            else if (gpu_doubles[i].hi > 0)
                sim_err_set(err, src, 0, 0,
                            "%s: expected seconds, at most %g (%s), got '%.15g' (written in "
                            "another unit?)",
                            gpu_doubles[i].key, gpu_doubles[i].hi, gpu_doubles[i].example, x);
            else /* the unit's first word: "FLOP/s", not the clause about 0 */
                sim_err_set(err, src, 0, 0,
                            "%s: expected %sat least %g %.*s (%s), got '%.15g' (written in "
                            "another unit?)",
                            gpu_doubles[i].key,
                            gpu_doubles[i].flags & SIM_JSON_NONNEG ? "0 or " : "",
                            gpu_doubles[i].lo, (int)strcspn(gpu_doubles[i].unit, ","),
                            gpu_doubles[i].unit, gpu_doubles[i].example, x);
            rc = SIM_EINVAL;
            goto done;
        }
        memcpy((char *)&g + gpu_doubles[i].off, &x, sizeof x);
    }
    if ((rc = sim_json_get_int(o, "n_sm", SIM_JSON_REQUIRED | SIM_JSON_POSITIVE, &g.n_sm, src,
                               err)) ||
        (rc = sim_json_get_int(o, "pcie_gen", SIM_JSON_REQUIRED | SIM_JSON_POSITIVE, &g.pcie_gen,
                               src, err)) ||
        (rc = sim_json_check_range_i64("pcie_gen", g.pcie_gen, 1, 7, src, err)) ||
        (rc = sim_json_get_int(o, "gpus_per_node", SIM_JSON_REQUIRED | SIM_JSON_POSITIVE,
                               &g.gpus_per_node, src, err)) ||
        (rc = sim_json_check_range_i64("gpus_per_node", g.gpus_per_node, 1, GPU_MAX_PER_NODE, src,
                                       err)))
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

/* Reads and parses the GPU file at path (errors name it). */
static int gpu_parse_file(const char *path, sim_gpu *out, sim_err *err) {
    char *text = NULL;
    int rc = sim_json_read_file(path, &text, NULL, err);
    if (rc != SIM_OK)
        return rc;
    rc = sim_gpu_parse(text, path, out, err);
    sim_free(text);
    return rc;
}

/* The first field of the chip itself (memory, peaks, SMs, L2: what a
 * calibration's kernel efficiencies were measured against) in which two
 * GPUs differ, a value of each into *x, *y; NULL when the chips are the
 * same. The server's fields (links, latencies, GPUs and memory per node)
 * may differ: the same chip in another server keeps its calibration. */
static const char *gpu_chip_diff(const sim_gpu *a, const sim_gpu *b, double *x, double *y) {
    const struct {
        const char *key;
        double a, b;
    } chip[] = {
        {"hbm_bytes", a->hbm_bytes, b->hbm_bytes},    {"hbm_bw", a->hbm_bw, b->hbm_bw},
        {"flops_bf16", a->flops_bf16, b->flops_bf16}, {"flops_fp8", a->flops_fp8, b->flops_fp8},
        {"l2_bytes", a->l2_bytes, b->l2_bytes},       {"n_sm", a->n_sm, b->n_sm}};
    size_t i;
    for (i = 0; i < sizeof chip / sizeof chip[0]; i++)
        if (chip[i].a != chip[i].b) {
            *x = chip[i].a;
            *y = chip[i].b;
            return chip[i].key;
        }
    return NULL;
}

/* A GPU file at a path that takes a shipped preset's name (its "name", or
 * its file's stem) must hold that preset's chip: the name picks the
 * calibration (data/calib/NAME.json), so a copy with another chip would be
 * costed as the preset's without a word. */
static int gpu_check_name(const char *path, const char *datadir, const sim_gpu *g, sim_err *err) {
    char preset[4096], ra[PATH_MAX], rb[PATH_MAX];
    const char *key;
    sim_gpu p;
    double x, y;
    int m = snprintf(preset, sizeof preset, "%s/gpus/%s.json", datadir, g->name), rc;
    if (m < 0 || (size_t)m >= sizeof preset || realpath(preset, rb) == NULL ||
        (realpath(path, ra) != NULL && strcmp(ra, rb) == 0))
        return SIM_OK; /* no such preset, or the preset itself */
    /* an unreadable or broken preset is not this file's fault */
    if ((rc = gpu_parse_file(preset, &p, err)) != SIM_OK ||
        (key = gpu_chip_diff(g, &p, &x, &y)) == NULL) {
        sim_err_clear(err);
        return SIM_OK;
    }
    sim_err_set(err, path, 0, 0,
                "name: expected a name of its own for a GPU whose %s differs from the shipped "
                "preset's (%.6g here, %.6g in %s), got '%s' (the name picks the calibration, "
                "data/calib/NAME.json, and a fleet's GPU kind: give the copy its own \"name\")",
                key, x, y, preset, g->name);
    return SIM_EINVAL;
}

/* Loads DATADIR/gpus/NAME.json, or the preset file at a path. Errors name
 * the file; an unknown name returns SIM_ENOENT listing the presets. */
int sim_gpu_load(const char *name_or_path, const char *datadir, sim_gpu *out, sim_err *err) {
    char path[4096];
    int rc;

    rc = sim_json_preset_path(datadir, "gpus", name_or_path, NULL, "gpu", "a GPU preset .json",
                              path, sizeof path, err);
    if (rc != SIM_OK || (rc = gpu_parse_file(path, out, err)) != SIM_OK)
        return rc;
    return gpu_check_name(path, datadir, out, err);
}
