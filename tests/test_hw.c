/* test_hw.c: GPU presets (values, sources for every field), the preset
 * parser's exact errors, the json_util helpers it rests on, and
 * allocation-failure injection.
 *
 * `test_hw --table` prints the GPU table of docs/models-and-gpus.md instead
 * of testing. */
#include "config.h"
#include "hw.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "json_util.h"
#include "mem.h"
#include "t.h"

#ifndef KV_SRCDATADIR
#define KV_SRCDATADIR "data"
#endif

static const char *const presets[] = {"h100-sxm", "h100-pcie", "h200", "a100-sxm"};
#define N_PRESETS (sizeof presets / sizeof presets[0])

/* Every numeric field a preset must hold (and cite in "sources"). */
static const char *const fields[] = {
    "hbm_bytes",      "hbm_bw",        "flops_bf16",       "flops_fp8",
    "n_sm",           "l2_bytes",      "pcie_gen",         "pcie_bw",
    "pcie_latency_s", "nvlink_bw",     "nvlink_latency_s", "ib_bw",
    "ib_latency_s",   "gpus_per_node", "host_mem_bytes",   "launch_overhead_s",
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

static sim_gpu load(const char *name) {
    sim_gpu g;
    sim_err e;
    char buf[1200];
    int rc = sim_gpu_load(name, KV_SRCDATADIR, &g, &e);
    if (rc != SIM_OK) {
        sim_err_format(&e, buf, sizeof buf);
        T_FAIL_("load %s: %s (%s)", name, sim_strerror(rc), buf);
    }
    return g;
}

/* The h100-sxm preset with key set to the JSON value repl (NULL: removed),
 * as text. Returns a static buffer. */
static const char *h100_with(const char *key, const char *repl) {
    static char out[16384];
    json_t *o, *v = NULL;
    json_error_t je;
    char *s;

    o = json_load_file(KV_SRCDATADIR "/gpus/h100-sxm.json", 0, &je);
    T_ASSERT(o != NULL);
    if (repl != NULL) {
        v = json_loads(repl, JSON_DECODE_ANY, &je);
        T_ASSERT(v != NULL);
        json_object_set_new(o, key, v);
    } else {
        json_object_del(o, key);
    }
    s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    T_ASSERT(s != NULL && strlen(s) < sizeof out);
    strcpy(out, s);
    free(s);
    json_decref(o);
    return out;
}

static void expect_err(const char *text, int code, const char *msg) {
    sim_gpu g;
    sim_err e;
    char buf[1200];
    int rc;

    memset(&g, 0x5a, sizeof g);
    rc = sim_gpu_parse(text, "h100-sxm.json", &g, &e);
    sim_err_format(&e, buf, sizeof buf);
    if (rc != code)
        T_FAIL_("code %d (%s), want %d; message: %s", rc, sim_strerror(rc), code, buf);
    T_STREQ(buf, msg);
    T_EQ_I(g.n_sm, 0x5a5a5a5a); /* *out untouched on failure */
}

/* ---- presets ---- */

static void test_all_presets(void) {
    size_t i, j;
    for (i = 0; i < N_PRESETS; i++) {
        char path[512];
        json_error_t je;
        json_t *o, *src, *s;
        sim_gpu g = load(presets[i]);

        T_STREQ(g.name, presets[i]);
        T_ASSERT(g.hbm_bytes > 1e9 && g.hbm_bw > 1e12 && g.flops_bf16 > 1e14);
        T_ASSERT(g.flops_fp8 == 0 || g.flops_fp8 >= g.flops_bf16);
        T_ASSERT(g.pcie_bw > 0 && g.host_mem_bytes > g.hbm_bytes * g.gpus_per_node);
        T_ASSERT(g.launch_overhead_s > 0 && g.launch_overhead_s < 1e-4);

        /* Every field names its source. */
        snprintf(path, sizeof path, "%s/gpus/%s.json", KV_SRCDATADIR, presets[i]);
        o = json_load_file(path, 0, &je);
        T_ASSERT(o != NULL);
        src = json_object_get(o, "sources");
        T_ASSERT(json_is_object(src));
        for (j = 0; j < N_FIELDS; j++) {
            s = json_object_get(src, fields[j]);
            if (!json_is_string(s) || strlen(json_string_value(s)) < 10)
                T_FAIL_("%s: sources.%s missing or empty", presets[i], fields[j]);
        }
        json_decref(o);
    }
}

static void test_preset_values(void) {
    sim_gpu g = load("h100-sxm");
    T_NEAR(g.hbm_bytes, 85520809984.0, 0); /* 81559 MiB */
    T_NEAR(g.hbm_bw, 3.35e12, 0);
    T_NEAR(g.flops_bf16, 989.4e12, 0);
    T_NEAR(g.flops_fp8, 1978.9e12, 0);
    T_EQ_I(g.n_sm, 132);
    T_NEAR(g.l2_bytes, 50.0 * 1024 * 1024, 0);
    T_EQ_I(g.pcie_gen, 5);
    T_NEAR(g.pcie_bw, 64e9, 0);
    T_NEAR(g.nvlink_bw, 450e9, 0);
    T_NEAR(g.ib_bw, 50e9, 0);
    T_EQ_I(g.gpus_per_node, 8);
    T_NEAR(g.launch_overhead_s, 4e-6, 0);

    g = load("h100-pcie");
    T_NEAR(g.flops_bf16, 756e12, 0);
    T_NEAR(g.flops_fp8, 1513e12, 0);
    T_NEAR(g.hbm_bw, 2.0e12, 0);
    T_EQ_I(g.n_sm, 114);
    T_NEAR(g.nvlink_bw, 0, 0);

    g = load("h200");
    T_NEAR(g.hbm_bytes, 150754820096.0, 0); /* 143771 MiB */
    T_NEAR(g.hbm_bw, 4.8e12, 0);
    T_NEAR(g.flops_bf16, 989.4e12, 0);
    T_NEAR(g.flops_fp8, 1978.9e12, 0);

    g = load("a100-sxm");
    T_NEAR(g.hbm_bytes, 85899345920.0, 0); /* 81920 MiB */
    T_NEAR(g.hbm_bw, 2.039e12, 0);
    T_NEAR(g.flops_bf16, 312e12, 0);
    T_NEAR(g.flops_fp8, 0, 0);
    T_EQ_I(g.n_sm, 108);
    T_EQ_I(g.pcie_gen, 4);
    T_NEAR(g.pcie_bw, 32e9, 0);
    T_NEAR(g.nvlink_bw, 300e9, 0);
    T_NEAR(g.ib_bw, 25e9, 0);
}

/* ---- parser ---- */

static void test_parse_ok(void) {
    sim_gpu g;
    sim_err e;

    /* Zero is allowed where it means "none". */
    T_EQ_I(sim_gpu_parse(h100_with("flops_fp8", "0"), "x.json", &g, &e), SIM_OK);
    T_NEAR(g.flops_fp8, 0, 0);
    T_EQ_I(sim_gpu_parse(h100_with("nvlink_bw", "0"), "x.json", &g, &e), SIM_OK);
    T_EQ_I(sim_gpu_parse(h100_with("ib_bw", "0.0"), "x.json", &g, &e), SIM_OK);
    T_EQ_I(sim_gpu_parse(h100_with("pcie_latency_s", "0"), "x.json", &g, &e), SIM_OK);
    /* The ceiling of a rate is inclusive. */
    T_EQ_I(sim_gpu_parse(h100_with("ib_bw", "1e18"), "x.json", &g, &e), SIM_OK);
    /* Integers and reals are both numbers. */
    T_EQ_I(sim_gpu_parse(h100_with("hbm_bw", "3350000000000"), "x.json", &g, &e), SIM_OK);
    T_NEAR(g.hbm_bw, 3.35e12, 0);
    /* Without "name", the file's base name; "sources" is optional. */
    T_EQ_I(sim_gpu_parse(h100_with("name", NULL), "dir/my-gpu.json", &g, &e), SIM_OK);
    T_STREQ(g.name, "my-gpu");
    T_EQ_I(sim_gpu_parse(h100_with("sources", NULL), "x.json", &g, &e), SIM_OK);
}

static void test_parse_errors(void) {
    expect_err(h100_with("hbm_bw", "0"), SIM_EINVAL,
               "h100-sxm.json: hbm_bw: expected a positive number (bytes/s), got '0'");
    expect_err(h100_with("hbm_bytes", "-1.5"), SIM_EINVAL,
               "h100-sxm.json: hbm_bytes: expected a positive number (bytes), got '-1.5'");
    expect_err(h100_with("flops_fp8", "-1"), SIM_EINVAL,
               "h100-sxm.json: flops_fp8: expected a non-negative number (FLOP/s, 0 when the GPU "
               "has no fp8), got '-1'");
    expect_err(h100_with("ib_latency_s", "-5e-6"), SIM_EINVAL,
               "h100-sxm.json: ib_latency_s: expected a non-negative number (s), got '-5e-6'");
    expect_err(h100_with("flops_bf16", NULL), SIM_EPARSE,
               "h100-sxm.json: flops_bf16: expected a positive number (FLOP/s), got nothing "
               "(missing key)");
    expect_err(h100_with("hbm_bw", "\"3.35 TB/s\""), SIM_EPARSE,
               "h100-sxm.json: hbm_bw: expected a positive number (bytes/s), got '\"3.35 TB/s\"'");
    /* a value written in another unit: TB/s, TFLOP/s, GB, microseconds */
    expect_err(h100_with("hbm_bw", "3.35"), SIM_EINVAL,
               "h100-sxm.json: hbm_bw: expected 1e+06..1e+18 bytes/s (3.35 TB/s is 3.35e12), "
               "got '3.35' (written in another unit?)");
    expect_err(h100_with("flops_fp8", "1978.9"), SIM_EINVAL,
               "h100-sxm.json: flops_fp8: expected 0 or 1e+06..1e+18 FLOP/s (1978.9 TFLOP/s "
               "is 1978.9e12), got '1978.9' (written in another unit?)");
    expect_err(h100_with("flops_bf16", "989.4"), SIM_EINVAL,
               "h100-sxm.json: flops_bf16: expected 1e+06..1e+18 FLOP/s (989.4 TFLOP/s is "
               "989.4e12), got '989.4' (written in another unit?)");
    /* a rate of 1e308: the remote pool's bandwidth, ib_bw x its NICs, was
     * infinite and the run failed with "out of memory" */
    expect_err(h100_with("ib_bw", "1e308"), SIM_EINVAL,
               "h100-sxm.json: ib_bw: expected 0 or 1e+06..1e+18 bytes/s (50 GB/s is 50e9), "
               "got '1e+308' (written in another unit?)");
    expect_err(h100_with("flops_bf16", "1.5e18"), SIM_EINVAL,
               "h100-sxm.json: flops_bf16: expected 1e+06..1e+18 FLOP/s (989.4 TFLOP/s is "
               "989.4e12), got '1.5e+18' (written in another unit?)");
    expect_err(h100_with("hbm_bytes", "80"), SIM_EINVAL,
               "h100-sxm.json: hbm_bytes: expected 1e+06..1e+13 bytes (80 GB is 80e9), got "
               "'80' (written in another unit?)");
    expect_err(h100_with("hbm_bytes", "1e16"), SIM_EINVAL,
               "h100-sxm.json: hbm_bytes: expected 1e+06..1e+13 bytes (80 GB is 80e9), got "
               "'1e+16' (written in another unit?)");
    expect_err(h100_with("launch_overhead_s", "4"), SIM_EINVAL,
               "h100-sxm.json: launch_overhead_s: expected seconds, at most 1 (4 us is 4e-6), "
               "got '4' (written in another unit?)");
    expect_err(h100_with("gpus_per_node", "0"), SIM_EINVAL,
               "h100-sxm.json: gpus_per_node: expected a positive integer, got '0'");
    /* 2^31 - 1 GPUs per node overflowed the run's TP limit, 64 x gpus_per_node */
    expect_err(h100_with("gpus_per_node", "2147483647"), SIM_EINVAL,
               "h100-sxm.json: gpus_per_node: expected an integer in [1, 1024], got '2147483647'");
    expect_err(h100_with("gpus_per_node", "1025"), SIM_EINVAL,
               "h100-sxm.json: gpus_per_node: expected an integer in [1, 1024], got '1025'");
    expect_err(h100_with("n_sm", "132.5"), SIM_EPARSE,
               "h100-sxm.json: n_sm: expected a positive integer, got '132.5'");
    expect_err(h100_with("pcie_gen", "9"), SIM_EINVAL,
               "h100-sxm.json: pcie_gen: expected an integer in [1, 7], got '9'");
    expect_err(h100_with("name", "42"), SIM_EPARSE,
               "h100-sxm.json: name: expected a string, got '42'");
    expect_err(h100_with("sources", "[1]"), SIM_EPARSE,
               "h100-sxm.json: sources: expected an object, got '[1]'");
    expect_err(h100_with("hbm_bandwith", "3.35e12"), SIM_EPARSE,
               "h100-sxm.json: hbm_bandwith: expected a known key (one of name, description, "
               "hbm_bytes, hbm_bw, flops_bf16, flops_fp8, n_sm, l2_bytes, pcie_gen, pcie_bw, "
               "pcie_latency_s, nvlink_bw, nvlink_latency_s, ib_bw, ib_latency_s, gpus_per_node, "
               "host_mem_bytes, launch_overhead_s, sources), got an unknown key");
    expect_err("{\n  \"hbm_bw\": 3.35e12,\n  \"n_sm\": 132,,\n}\n", SIM_EPARSE,
               "h100-sxm.json:3:15: syntax: expected string or '}', got ','");
    expect_err("{\"hbm_bw\": 3.35e12", SIM_EPARSE,
               "h100-sxm.json:1:18: syntax: expected '}', got end of file");
}

static void test_load(void) {
    sim_gpu g;
    sim_err e;
    char buf[1200], want[1200];

    T_EQ_I(sim_gpu_load(KV_SRCDATADIR "/gpus/h200.json", KV_SRCDATADIR, &g, &e), SIM_OK);
    T_STREQ(g.name, "h200");

    T_EQ_I(sim_gpu_load("b300", KV_SRCDATADIR, &g, &e), SIM_ENOENT);
    sim_err_format(&e, buf, sizeof buf);
    snprintf(want, sizeof want,
             "%s/gpus: gpu: expected a preset name (a100-sxm, h100-pcie, h100-sxm, h200) or a "
             "path to a GPU preset .json, got 'b300'",
             KV_SRCDATADIR);
    T_STREQ(buf, want);

    /* A bad data directory still answers, with no list. */
    T_EQ_I(sim_gpu_load("h100-sxm", "/nonexistent", &g, &e), SIM_ENOENT);
    T_STREQ(e.msg, "gpu: expected a preset name (none found) or a path to a GPU preset .json, "
                   "got 'h100-sxm'");

    /* A file in the wrong format names the file and the first bad key. */
    T_EQ_I(sim_gpu_load(KV_SRCDATADIR "/models/tiny.json", KV_SRCDATADIR, &g, &e), SIM_EPARSE);
    T_STREQ(e.src, KV_SRCDATADIR "/models/tiny.json");
    T_CONTAINS(e.msg, "architectures: expected a known key");
}

/* ---- json_util pieces not reached through the presets ---- */

static void test_json_util(void) {
    char buf[SIM_JSON_RENDER_MAX];
    char *text;
    size_t len;
    sim_err e;
    json_t *o, *v;
    int64_t i64 = 7;
    int b = 5;
    double d = 0;

    /* Long values are cut with "...". */
    v = json_string("0123456789012345678901234567890123456789012345678901234567890123456789"
                    "0123456789");
    sim_json_render(v, buf, sizeof buf);
    T_EQ_I(strlen(buf), SIM_JSON_RENDER_MAX - 1);
    T_STREQ(buf + strlen(buf) - 3, "...");
    json_decref(v);
    sim_json_render(NULL, buf, sizeof buf);
    T_STREQ(buf, "nothing");

    T_EQ_I(sim_json_read_file("/nonexistent/x.json", &text, &len, &e), SIM_ENOENT);
    T_ASSERT(text == NULL);
    T_STREQ(e.msg, "file: expected a readable file, got 'No such file or directory'");
    /* a folder is bad input (exit 1), not a failing device (it was SIM_EIO, exit 3) */
    T_EQ_I(sim_json_read_file(KV_SRCDATADIR "/gpus", &text, &len, &e), SIM_EINVAL);
    T_STREQ(e.msg, "file: expected a file, got a folder");
    T_EQ_I(sim_json_read_file(KV_SRCDATADIR "/gpus/h200.json", &text, &len, &e), SIM_OK);
    T_EQ_I(strlen(text), len);
    sim_free(text);

    {
        static const char j[] = "{\"a\": 1, \"big\": 9007199254740993, \"t\": true}";
        T_EQ_I(sim_json_parse_object(j, sizeof j - 1, "j", &o, &e), SIM_OK);
    }
    T_EQ_I(sim_json_get_i64(o, "big", SIM_JSON_REQUIRED, &i64, "j", &e), SIM_OK);
    T_EQ_I(i64, 9007199254740993LL);
    T_EQ_I(sim_json_get_i64(o, "absent", 0, &i64, "j", &e), SIM_OK);
    T_EQ_I(i64, 9007199254740993LL); /* optional and absent: unchanged */
    T_EQ_I(sim_json_get_bool(o, "t", SIM_JSON_REQUIRED, &b, "j", &e), SIM_OK);
    T_EQ_I(b, 1);
    T_EQ_I(sim_json_get_double(o, "a", SIM_JSON_REQUIRED, NULL, &d, "j", &e), SIM_OK);
    T_NEAR(d, 1, 0);
    json_decref(o);

    T_EQ_I(sim_json_check_range_double("util", 1.5, 0, 1, "fraction", "j", &e), SIM_EINVAL);
    T_STREQ(e.msg, "util: expected a number in [0, 1] (fraction), got '1.5'");
    T_EQ_I(sim_json_check_range_i64("k", 3, 1, 3, "j", &e), SIM_OK);

    sim_json_stem("a/b/llama.json", buf, sizeof buf);
    T_STREQ(buf, "llama");
    sim_json_stem("snap/Llama-3.1-8B/config.json", buf, sizeof buf);
    T_STREQ(buf, "Llama-3.1-8B");
    /* --model ./Model/ (a shell's completion) joins to ./Model//config.json */
    sim_json_stem("./Mistral-7B//config.json", buf, sizeof buf);
    T_STREQ(buf, "Mistral-7B");
    sim_json_stem("config.json", buf, sizeof buf);
    T_STREQ(buf, "config");
    sim_json_stem("plain", buf, sizeof buf);
    T_STREQ(buf, "plain");
}

/* ---- fault injection ---- */

static void fault_loop(const char *name, int want) {
    size_t base = sim_mem_current();
    uint64_t k;
    int rc = SIM_ENOMEM;

    for (k = 1; k < 1000; k++) {
        sim_gpu g;
        sim_err e;
        sim_mem_fail_at(k);
        rc = sim_gpu_load(name, KV_SRCDATADIR, &g, &e);
        sim_mem_fail_at(0);
        T_EQ_I(sim_mem_current(), base);
        if (rc == want)
            break;
        T_EQ_I(rc, SIM_ENOMEM);
    }
    T_EQ_I(rc, want);
    T_ASSERT(k > 1);
}

static void test_fault_injection(void) {
    fault_loop("h100-sxm", SIM_OK);
    fault_loop("b300", SIM_ENOENT);
}

/* ---- the docs table ---- */

static void print_table(void) {
    size_t i;
    printf("| preset | HBM GiB | HBM TB/s | bf16 TFLOP/s | fp8 TFLOP/s | SMs | L2 MiB | PCIe "
           "(gen, GB/s) | NVLink GB/s | IB GB/s | GPUs/node | host GiB/node |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (i = 0; i < N_PRESETS; i++) {
        sim_gpu g = load(presets[i]);
        printf("| %s | %.2f | %.3f | %.1f | %.1f | %d | %.0f | Gen%d, %.0f | %.0f | %.0f | %d | "
               "%.0f |\n",
               g.name, g.hbm_bytes / 1073741824.0, g.hbm_bw / 1e12, g.flops_bf16 / 1e12,
               g.flops_fp8 / 1e12, g.n_sm, g.l2_bytes / 1048576.0, g.pcie_gen, g.pcie_bw / 1e9,
               g.nvlink_bw / 1e9, g.ib_bw / 1e9, g.gpus_per_node, g.host_mem_bytes / 1073741824.0);
    }
}

/* sim_json_utf8_ok agrees with jansson's own check (json_string refuses
 * what is not UTF-8) on valid text and on each kind of invalid byte run. */
static void test_json_utf8(void) {
    static const struct {
        const char *s;
        int ok;
    } cases[] = {
        {"", 1},
        {"plain ascii.csv", 1},
        {"lat\xc3\xa9.csv", 1},  /* e-acute, 2 bytes */
        {"\xe2\x82\xac", 1},     /* the euro sign, 3 bytes */
        {"\xf0\x9f\x98\x80", 1}, /* U+1F600, 4 bytes */
        {"\xf4\x8f\xbf\xbf", 1}, /* U+10FFFF, the last */
        {"lat\xe9.csv", 0},      /* Latin-1 */
        {"\xc0\xaf", 0},         /* overlong '/' */
        {"\xe0\x80\xaf", 0},     /* overlong, 3 bytes */
        {"\xed\xa0\x80", 0},     /* a surrogate */
        {"\xf4\x90\x80\x80", 0}, /* past U+10FFFF */
        {"\xe2\x82", 0},         /* cut short */
        {"\x80", 0},             /* a lone continuation byte */
        {"\xff", 0},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = json_string(cases[i].s);
        T_EQ_I(sim_json_utf8_ok(cases[i].s), cases[i].ok);
        T_EQ_I(j != NULL, cases[i].ok);
        json_decref(j);
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--table") == 0) {
        print_table();
        return 0;
    }
    test_all_presets();
    test_preset_values();
    test_json_utf8();
    test_parse_ok();
    test_parse_errors();
    test_load();
    test_json_util();
    test_fault_injection();
    T_EQ_I(sim_mem_current(), 0);
    printf("test_hw: ok\n");
    return 0;
}
