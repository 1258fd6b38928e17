/* fixtures.h: hand-written model and GPU shapes shared by the tests, so a
 * test does not depend on the preset files it may be checking. */
#ifndef TESTS_FIXTURES_H
#define TESTS_FIXTURES_H

#include <stdio.h>
#include <string.h>

#include "hw.h"
#include "model.h"

/* Llama-3-8B's shape in bf16. */
static inline sim_model t_llama3_8b(void) {
    sim_model m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "llama-3-8b");
    m.n_layers = 32;
    m.hidden = 4096;
    m.n_heads = 32;
    m.n_kv_heads = 8;
    m.head_dim = 128;
    m.intermediate = 14336;
    m.vocab = 128256;
    m.max_ctx = 8192;
    m.w_dtype = SIM_DT_BF16;
    m.kv_dtype = SIM_DT_BF16;
    return m;
}

/* An H100 SXM's datasheet rates, with the given launch overhead (s). */
static inline sim_gpu t_h100(double launch_overhead_s) {
    sim_gpu g;
    memset(&g, 0, sizeof g);
    snprintf(g.name, sizeof g.name, "h100-sxm");
    g.hbm_bytes = 80e9;
    g.hbm_bw = 3.35e12;
    g.flops_bf16 = 989.4e12;
    g.flops_fp8 = 1978.9e12;
    g.nvlink_bw = 450e9;
    g.pcie_bw = 64e9;
    g.launch_overhead_s = launch_overhead_s;
    return g;
}

#endif /* TESTS_FIXTURES_H */
