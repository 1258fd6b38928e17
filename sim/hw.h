/* hw.h: GPU presets (data/gpus/NAME.json), never constants in code.
 *
 * Every number is per GPU and comes from the vendor datasheet named in the
 * preset's "sources" field; rates are dense (no sparsity). Bandwidths are
 * bytes per second in one direction. */
#ifndef SIM_HW_H
#define SIM_HW_H

#include <stdint.h>

#include "err.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sim_gpu {
    char name[64];            /* preset name, e.g. "h100-sxm" */
    double hbm_bytes;         /* HBM capacity, bytes */
    double hbm_bw;            /* HBM bandwidth, bytes/s */
    double flops_bf16;        /* dense bf16 tensor-core peak, FLOP/s */
    double flops_fp8;         /* dense fp8 peak, FLOP/s (0 when the GPU has no fp8) */
    int n_sm;                 /* streaming multiprocessors */
    double l2_bytes;          /* L2 cache, bytes */
    int pcie_gen;             /* PCIe generation to the host (4, 5) */
    double pcie_bw;           /* host link, bytes/s per direction */
    double pcie_latency_s;    /* per-transfer latency, s */
    double nvlink_bw;         /* NVLink, bytes/s per direction per GPU (0: none) */
    double nvlink_latency_s;  /* per-message latency over NVLink, s */
    double ib_bw;             /* InfiniBand per GPU (one NIC each), bytes/s per direction */
    double ib_latency_s;      /* per-message latency over InfiniBand, s */
    int gpus_per_node;        /* standard server: GPUs per node */
    double host_mem_bytes;    /* host DRAM per node, bytes */
    double launch_overhead_s; /* default per-kernel launch overhead, s (calibration overrides) */
} sim_gpu;

/* Loads DATA/gpus/NAME.json, or a path to such a file. An unknown name
 * lists the known presets in *err. Zero or negative bandwidths, capacities
 * or rates are refused with the field named. */
int sim_gpu_load(const char *name_or_path, const char *datadir, sim_gpu *out, sim_err *err);
/* Parses a preset JSON text; src names it in errors. */
int sim_gpu_parse(const char *json_text, const char *src, sim_gpu *out, sim_err *err);

#ifdef __cplusplus
}
#endif
#endif /* SIM_HW_H */
