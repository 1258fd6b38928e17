/* cli.c: `kvfleet run`, `predict`, `trace stats` and `rerun` (see cli.h).
 *
 * Options are described once in run_opts[]; argv and --config files are
 * both turned into a JSON object keyed by option names, validated against
 * that table, and resolved into the engine's configuration. The resolved
 * object (defaults filled in, the trace path made concrete) is what a run
 * stores, so `rerun` repeats it exactly. The executor is looked up by name
 * in runtime/backends.c; `kvfleet validate` (validate.c) runs configs
 * through rt_run_exec without printing. */
#include "config.h"
#include "cli.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backends.h"
#include "be_cpu.h"
#include "datadir.h"
#include "json_util.h"
#include "engine.h"
#include "evict.h"
#include "fleet.h"
#include "pcache.h"
#include "mem.h"
#include "oracle.h"
#include "store.h"
#include "trace.h"
#include "num.h"

/* ---- the option table ---- */

typedef struct rt_opt {
    const char *name;
    char kind;       /* 's' string, 'i' integer, 'n' integer that fits an int
                        (read into one), 'u' integer >= 0, 'd' number, 't'
                        seconds (a number; on the command line also with a
                        unit: 500ms, 2s, 5m), 'b' boolean, 'o' a JSON object,
                        or a string naming its file */
    const char *def; /* default as text (NULL: none) */
    const char *help;
} rt_opt;

static const rt_opt run_opts[] = {
    {"trace", 's', NULL, "FILE  trace to replay (default: data/traces/azure_conv_2023.csv)"},
    {"trace-format", 's', "auto", "F  azure|vidur|mooncake|sessions|auto"},
    {"synthetic", 's', NULL, "SPEC  synthetic source instead of a trace (docs/traces.md)"},
    {"sessionize", 's', "",
     "SPEC  give a trace without conversations a session structure (docs/traces.md; a made-up "
     "model)"},
    {"limit", 'i', "0", "N  read only the first N requests (0: all)"},
    {"load-scale", 'd', "1", "X  replay at X times the trace's rate"},
    {"model", 's', "llama-3-8b", "M  preset name (data/models) or path to a config.json"},
    {"gpu", 's', "h100-sxm", "G  preset name (data/gpus) or path"},
    {"tp", 'n', "1", "N  tensor-parallel GPUs per replica"},
    {"replicas", 'n', "1", "N  identical replicas behind the router"},
    {"pp", 'n', "1", "N  pipeline stages per replica (N virtual engines; docs/scheduler.md)"},
    {"router", 's', "round-robin",
     "R  round-robin|least-outstanding|least-kv|session|prefix (docs/fleet.md)"},
    {"fleet", 'o', NULL,
     "FILE  a fleet file: regions, populations, pools, router, autoscaler (docs/fleet.md)"},
    {"dtype", 's', "", "bf16|fp8  weights and GEMMs (default: the model's)"},
    {"kv-dtype", 's', "", "bf16|fp8  KV cache (default: the weights' dtype)"},
    {"max-num-seqs", 'n', "256", "N  sequences per step"},
    {"max-batched-tokens", 'i', "8192", "N  new tokens per step (vLLM max_num_batched_tokens)"},
    {"block-tokens", 'n', "16", "N  tokens per KV block"},
    {"policy", 's', "lru",
     "P[:K=V,...]  prefix-cache eviction policy (docs/eviction.md); 'none': no prefix caching"},
    {"hash-block-tokens", 'n', "512", "N  tokens one trace hash id covers (Mooncake: 512)"},
    {"host-cache-gib", 'd', "0", "N  host DRAM tier per replica behind PCIe, GiB (0: none)"},
    {"remote-pool-gib", 'd', "0",
     "N  remote KV pool shared by the replicas over InfiniBand, GiB (0: none; docs/scheduler.md)"},
    {"remote-pool-nics", 'i', "8",
     "N  NICs of the remote pool (its bandwidth: N x the GPU's ib_bw)"},
    {"remote-pool-write", 's', "through",
     "through|back  store every cached block in the pool, or only evicted ones"},
    {"miss", 's', "swap", "swap|recompute|cheaper  what a host-tier or remote hit does"},
    {"preemption", 's', "recompute", "recompute|swap  what a preempted sequence's KV becomes"},
    {"swap-space-gib", 'd', "4", "N  host swap space per replica for --preemption swap, GiB"},
    {"swap-gather", 'b', "true",
     "true|false  gather blocks into one PCIe copy (false: a copy per layer, K and V)"},
    {"kv-blocks", 'i', "0", "N  KV blocks per replica, as vLLM reports num_gpu_blocks (0: derive)"},
    {"gpu-mem-util", 'd', "0.9", "F  fraction of HBM for weights, activations and KV"},
    {"watermark", 'd', "0.01", "F  fraction of KV blocks kept free when admitting"},
    {"chunked-prefill", 'b', "true", "true|false  split long prompts over steps"},
    {"sched-policy", 's', "vllm",
     "vllm|sglang|trtllm  step composition and admission of an engine family (docs/scheduler.md)"},
    {"max-queue", 'i', "0", "N  waiting requests per replica before 'queue_full' (0: unbounded)"},
    {"max-queue-time", 't', "0",
     "S  seconds a request may wait before 'queue_timeout' (0: no limit)"},
    {"calibration", 's', "",
     "FILE  perf calibration (default: data/calib/GPU.json; 'none': datasheet)"},
    {"engine-overhead", 'd', "1",
     "X  scale of the calibration's engine overhead per step (docs/calibration.md)"},
    {"gpu-price", 'd', "0", "USD  price of one GPU-hour, for cost_usd (0: none)"},
    {"slo-ttft", 't', "0", "S  TTFT SLO for goodput, seconds (0: none)"},
    {"slo-tpot", 't', "0", "S  TPOT SLO for goodput, seconds (0: none)"},
    {"backend", 's', "sim",
     "B  executor: sim|cpu|replay|cuda (cuda: CUDA builds; docs/backends.md)"},
    {"replay", 's', NULL, "DB:RUN_ID  the recorded run that --backend replay feeds back"},
    {"layers", 'i', "0", "N  run the model's first N layers only (0: all); reports say so"},
    {"op-timing", 'b', "false", "true|false  cuda: CUDA events around every operator"},
    {"seed", 'u', "1", "S  seed of every random stream (0..2^63-1)"},
    {"db", 's', "kvfleet.db", "FILE  SQLite results file ('' with --no-db: none)"},
    {"steps-sample", 'i', "1", "N  keep one step row in N (0: none)"},
    {"timeline-s", 't', "1", "S  timeline interval, seconds (0: none)"},
    {"check", 'b', "false", "true|false  check scheduler invariants after every step (slow)"},
    {"fast-forward", 'b', "true", "true|false  plan pure-decode stretches as one event"},
};
#define N_RUN_OPTS (sizeof run_opts / sizeof run_opts[0])

static const rt_opt *opt_find(const char *name) {
    size_t i;
    for (i = 0; i < N_RUN_OPTS; i++)
        if (strcmp(run_opts[i].name, name) == 0)
            return &run_opts[i];
    return NULL;
}

int rt_report_err(const char *cmd, const sim_err *err, int status) {
    char buf[SIM_ERR_TEXT_MAX];
    if (err->msg[0] != '\0')
        sim_err_format(err, buf, sizeof buf);
    fprintf(stderr, "kvfleet %s: %s\n", cmd, err->msg[0] != '\0' ? buf : sim_strerror(status));
    return rt_exit_code(status);
}

int rt_exit_code(int status) {
    switch (status) {
        case SIM_OK:
            return RT_EXIT_OK;
        case SIM_EINVAL:
        case SIM_EPARSE:
        case SIM_EINFEASIBLE:
        case SIM_ENOENT:
        case SIM_EIO:
        case SIM_ENOTSUP:
            return RT_EXIT_INPUT;
        default:
            return RT_EXIT_RUNTIME;
    }
}

/* Parses text as an option's value into a JSON value; NULL when malformed,
 * with *range 1 when the text has the option's form but not its range. */
static json_t *opt_value(const rt_opt *o, const char *text, int *range) {
    int prc;
    *range = 0;
    switch (o->kind) {
        case 's':
        case 'o': /* text that is not UTF-8 JSON cannot hold: bad input */
            *range = !sim_json_utf8_ok(text);
            return *range ? NULL : json_string(text);
        case 'i':
        case 'u':
        case 'n': {
            long long v;
            /* the form only: a 'u' below 0 is out of range, bad input
             * (config_check, exit 1), not a usage error */
            if ((prc = rt_parse_int(text, o->kind == 'n' ? INT_MIN : LLONG_MIN,
                                    o->kind == 'n' ? INT_MAX : LLONG_MAX, &v)) != 0) {
                *range = prc == -2;
                return NULL;
            }
            return json_integer(v);
        }
        case 'd':
        case 't': {
            double v;
            if ((prc = o->kind == 'd' ? rt_parse_num(text, -DBL_MAX, DBL_MAX, &v)
                                      : rt_parse_duration_s(text, &v)) != 0) {
                *range = prc == -2;
                return NULL;
            }
            return json_real(v);
        }
        case 'b':
            if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0 || strcmp(text, "yes") == 0)
                return json_true();
            if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0 || strcmp(text, "no") == 0)
                return json_false();
            return NULL;
    }
    return NULL;
}

/* What a value refused by opt_value should have been: its form (an
 * integer, a number) or, when only the range failed, its range. */
static const char *value_name(char k, int range) {
    if (k == 's' || k == 'o')
        return "text in UTF-8 (the results file stores every option as JSON text)";
    if (!range)
        return k == 'i' || k == 'n' || k == 'u' ? "an integer"
               : k == 'd'                       ? "a number"
               : k == 't'
                   ? "a number of seconds, or one with a unit (500ms, 2s, 5m; also ns, us, h)"
                   : "?";
    return k == 'i'   ? "an integer from -9223372036854775808 to 9223372036854775807"
           : k == 'n' ? "an integer from -2147483648 to 2147483647"
           : k == 'u' ? "an integer from 0 to 9223372036854775807"
                      : "a number of magnitude 2.2e-308 to 1.8e308 (or 0, where the option "
                        "allows it)";
}

/* What a value of an option of kind k must be: its form, and for the kinds
 * narrower than their JSON type ('n', 'u') their range. */
static const char *kind_name(char k) {
    return k == 'n' || k == 'u'   ? value_name(k, 1)
           : k == 'i' || k == 'd' ? value_name(k, 0)
           : k == 't'             ? "a number (seconds)"
           : k == 'b'             ? "true or false"
           : k == 'o'             ? "an object or a file name"
                                  : "a string";
}

/* Checks a config object's keys and value types against the table. */
static int config_check(json_t *cfg, const char *src, sim_err *err) {
    const char *key;
    json_t *v;
    json_object_foreach(cfg, key, v) {
        const rt_opt *o = opt_find(key);
        int ok;
        if (o == NULL) {
            sim_err_set(err, src, 0, 0, "%s: unknown option (kvfleet run --help lists them)", key);
            return SIM_EINVAL;
        }
        switch (o->kind) {
            case 's':
                ok = json_is_string(v);
                break;
            case 'o':
                ok = json_is_string(v) || json_is_object(v);
                break;
            case 'i':
                ok = json_is_integer(v);
                break;
            case 'n':
                ok = json_is_integer(v) && json_integer_value(v) >= INT_MIN &&
                     json_integer_value(v) <= INT_MAX;
                break;
            case 'u':
                ok = json_is_integer(v) && json_integer_value(v) >= 0;
                break;
            case 'd':
            case 't':
                ok = json_is_number(v);
                break;
            default:
                ok = json_is_boolean(v);
        }
        if (!ok) {
            char *txt = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            /* a value of another type is named by its form, an integer out
             * of range by the range */
            const char *want = strchr("inu", o->kind) != NULL && !json_is_integer(v)
                                   ? value_name(o->kind, 0)
                                   : kind_name(o->kind);
            if (strcmp(src, "config") == 0) /* from the command line: name the option */
                sim_err_set(err, "", 0, 0, "--%s: expected %s, got '%s'", key, want,
                            txt ? txt : "?");
            else
                sim_err_set(err, src, 0, 0, "%s: expected %s, got '%s'", key, want,
                            txt ? txt : "?");
            free(txt);
            return SIM_EINVAL;
        }
    }
    return SIM_OK;
}

/* Loads `--config FILE` for run and validate: the file's own keys and value
 * types are checked here, before any command-line option overrides them,
 * and every message names the file. */
int rt_run_config_load(const char *path, json_t **out, sim_err *err) {
    json_t *cfg;
    int rc;
    *out = NULL;
    /* a key given twice is an error, as in a fleet file or a sweep spec; a
     * file that cannot be read is bad input like one that does not parse */
    if ((cfg = sim_json_load_path(path, "", &rc, err)) == NULL)
        return SIM_EPARSE;
    if (!json_is_object(cfg)) {
        sim_err_set(err, path, 0, 0, "config: expected a JSON object of run options");
        json_decref(cfg);
        return SIM_EPARSE;
    }
    /* "no-db": true is --no-db, stored as "db": "" (as a run stores it) */
    if (json_object_get(cfg, "no-db") != NULL) {
        json_t *nd = json_object_get(cfg, "no-db");
        const char *db = json_string_value(json_object_get(cfg, "db"));
        if (!json_is_boolean(nd) || (json_is_true(nd) && db != NULL && db[0] != '\0')) {
            char got[SIM_JSON_RENDER_MAX + 8];
            sim_json_render(json_is_boolean(nd) ? json_object_get(cfg, "db") : nd, got, sizeof got);
            sim_err_set(err, path, 0, 0, "%s: expected %s, got '%s'",
                        json_is_boolean(nd) ? "no-db, db" : "no-db",
                        json_is_boolean(nd) ? "one of them" : "true or false", got);
            json_decref(cfg);
            return SIM_EPARSE;
        }
        if (json_is_true(nd))
            json_object_set_new(cfg, "db", json_string(""));
        json_object_del(cfg, "no-db");
    }
    if (config_check(cfg, path, err) != SIM_OK) {
        json_decref(cfg);
        return SIM_EINVAL;
    }
    *out = cfg;
    return SIM_OK;
}

/* A message about the fleet ("fleet: ...") names the fleet's file instead,
 * when the fleet came from one (its "source"). */
static void fleet_name_file(json_t *fleet_j, sim_err *err) {
    const char *src = fleet_j ? json_string_value(json_object_get(fleet_j, "source")) : NULL;
    if (src != NULL && strcmp(err->src, "fleet") == 0)
        snprintf(err->src, sizeof err->src, "%s", src);
}

/* 1 when option --name is given again after argv[i] (as --name or
 * --name=...): argv[i]'s value is then not read at all. */
static int given_later(int argc, char **argv, int i, const char *name) {
    size_t len = strlen(name);
    for (i++; i < argc; i++)
        if ((strncmp(argv[i], "--", 2) == 0 && strncmp(argv[i] + 2, name, len) == 0 &&
             (argv[i][2 + len] == '\0' || argv[i][2 + len] == '=')) ||
            (strcmp(name, "db") == 0 && strcmp(argv[i], "--no-db") == 0)) /* --db's too */
            return 1;
    return 0;
}

/* rt_run_args; with replace_source, a request source given in argv
 * replaces base's other one. */
static int run_args_parse(int argc, char **argv, json_t *base, int replace_source, json_t **out,
                          sim_err *err) {
    json_t *cfg = base ? json_deep_copy(base) : json_object();
    int i, range, given_trace = 0, given_synth = 0, given_format = 0;
    *out = NULL;
    if (cfg == NULL)
        return SIM_ENOMEM;
    for (i = 0; i < argc; i++) {
        const char *a = argv[i];
        char name[64];
        const char *val = NULL, *eq;
        const rt_opt *o;
        json_t *v;
        if (strncmp(a, "--", 2) != 0) {
            sim_err_set(err, "", 0, 0, "unexpected argument '%s'", a);
            goto usage;
        }
        a += 2;
        eq = strchr(a, '=');
        if (eq) {
            snprintf(name, sizeof name, "%.*s", (int)(eq - a), a);
            val = eq + 1;
        } else
            snprintf(name, sizeof name, "%s", a);
        if (strcmp(name, "no-db") == 0 && val == NULL) {
            json_object_set_new(cfg, "db", json_string(""));
            continue;
        }
        o = opt_find(name);
        if (o == NULL) {
            sim_err_set(err, "", 0, 0, "unknown option '--%s' (kvfleet run --help lists them)",
                        name);
            goto usage;
        }
        if (val == NULL && o->kind == 'b' && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0))
            val = "true";
        if (val == NULL) {
            if (!rt_has_value(argc, argv, i)) {
                sim_err_set(err, "", 0, 0, "--%s: expected %s, got nothing", name,
                            kind_name(o->kind));
                goto usage;
            }
            val = argv[++i];
        }
        if (given_later(argc, argv, i, name))
            continue; /* the last value counts; this one is not read */
        if (strcmp(name, "trace") == 0 && val[0] == '\0') { /* an unset variable */
            sim_err_set(err, "", 0, 0, "--trace: expected a file, got ''");
            json_decref(cfg);
            return SIM_EPARSE;
        }
        if (strcmp(name, "db") == 0 && val[0] == '\0') {
            /* '' is the stored form of --no-db; on the command line it is
             * an unset shell variable, and results would be lost */
            sim_err_set(err, "", 0, 0, "--db: expected a file (--no-db writes none), got ''");
            json_decref(cfg);
            return SIM_EPARSE;
        }
        if (strcmp(name, "sessionize") == 0 && val[0] == '\0') {
            /* '' is the stored form of "none"; on the command line an empty
             * spec is a mistake (an unset shell variable), not a way to
             * turn it off */
            sim_err_set(err, "", 0, 0,
                        "--sessionize: expected a spec (share=X,...; docs/traces.md) or none, got "
                        "''");
            json_decref(cfg);
            return SIM_EPARSE;
        }
        v = opt_value(o, val, &range);
        if (v == NULL) {
            sim_err_set(err, "", 0, 0, "--%s: expected %s, got '%s'", name,
                        o->kind == 'b' ? kind_name(o->kind) : value_name(o->kind, range), val);
            if (range) { /* the right form out of range: bad input, not usage */
                json_decref(cfg);
                return SIM_EPARSE;
            }
            goto usage;
        }
        json_object_set_new(cfg, name, v);
        given_trace |= strcmp(name, "trace") == 0;
        given_synth |= strcmp(name, "synthetic") == 0;
        given_format |= strcmp(name, "trace-format") == 0;
    }
    /* a source given here replaces base's other one (a stored config
     * always names one): both given here is still refused, when resolved */
    if (replace_source && base != NULL && given_synth && !given_trace) {
        json_object_del(cfg, "trace");
        if (!given_format)
            json_object_del(cfg, "trace-format");
    }
    if (replace_source && base != NULL && given_trace && !given_synth)
        json_object_del(cfg, "synthetic");
    *out = cfg;
    return SIM_OK;
usage:
    json_decref(cfg);
    return SIM_EINVAL;
}

int rt_run_args(int argc, char **argv, json_t *base, json_t **out, sim_err *err) {
    return run_args_parse(argc, argv, base, 0, out, err);
}

int rt_run_args_over(int argc, char **argv, json_t *base, json_t **out, sim_err *err) {
    return run_args_parse(argc, argv, base, 1, out, err);
}

/* The note of a sliding-window model (sim_model_window_note) on stderr,
 * once per model in a process (capacity and sweeps set up many runs). Every
 * note starts `kvfleet: note:`, whichever command set the model up. */
static void window_note(const sim_model *m) {
    static char last[sizeof m->name];
    char note[256];
    if (strcmp(last, m->name) == 0 || !sim_model_window_note(m, note, sizeof note))
        return;
    snprintf(last, sizeof last, "%s", m->name);
    fprintf(stderr, "kvfleet: note: %s\n", note);
}

/* ---- typed reads with defaults ---- */

static const char *cfg_str(json_t *cfg, const char *k) {
    json_t *v = json_object_get(cfg, k);
    const rt_opt *o = opt_find(k);
    if (v && json_is_string(v))
        return json_string_value(v);
    return o && o->def ? o->def : "";
}

static long long cfg_int(json_t *cfg, const char *k) {
    json_t *v = json_object_get(cfg, k);
    const rt_opt *o = opt_find(k);
    if (v && json_is_integer(v))
        return json_integer_value(v);
    return o && o->def ? atoll(o->def) : 0;
}

static double cfg_num(json_t *cfg, const char *k) {
    json_t *v = json_object_get(cfg, k);
    const rt_opt *o = opt_find(k);
    if (v && json_is_number(v))
        return json_number_value(v);
    return o && o->def ? atof(o->def) : 0;
}

static int cfg_bool(json_t *cfg, const char *k) {
    json_t *v = json_object_get(cfg, k);
    const rt_opt *o = opt_find(k);
    if (v && json_is_boolean(v))
        return json_is_true(v);
    return o && o->def && strcmp(o->def, "true") == 0;
}

/* Fills every option the config lacks with its default (the stored form). */
static void cfg_fill_defaults(json_t *cfg) {
    size_t i;
    for (i = 0; i < N_RUN_OPTS; i++) {
        const rt_opt *o = &run_opts[i];
        json_t *v;
        int range;
        if (json_object_get(cfg, o->name) || o->def == NULL)
            continue;
        v = opt_value(o, o->def, &range);
        if (v)
            json_object_set_new(cfg, o->name, v);
    }
}

/* ---- the run ---- */

typedef struct progress_state {
    double t0; /* rt_now_s() at the start */
    double last;
    int tty;
    int printed;
} progress_state;

static void progress_cb(void *ctx, double sim_s, int64_t ended, uint64_t events) {
    progress_state *ps = ctx;
    double w = rt_now_s() - ps->t0;
    /* the first line once a second has passed, then every 0.25 s on a
     * terminal (rewritten in place) and every 10 s into a file or pipe */
    if (w < 1.0 || (ps->printed && w - ps->last < (ps->tty ? 0.25 : 10.0)))
        return;
    ps->last = w;
    ps->printed = 1;
    fprintf(stderr, "%ssimulated %.1f s | %lld requests ended | %.2f M events | %.1f s wall%s",
            ps->tty ? "\r" : "", sim_s, (long long)ended, (double)events / 1e6, w,
            ps->tty ? "   " : "\n");
    fflush(stderr);
}

typedef struct src_adapter {
    trace_src *t;
} src_adapter;

static int src_next(void *ctx, sim_req *out, sim_err *err) {
    return trace_next(((src_adapter *)ctx)->t, out, err);
}

static int src_on_end(void *ctx, const sim_req *r, sim_time end, int rejected, sim_req *out) {
    return trace_on_end(((src_adapter *)ctx)->t, r, end, rejected, out);
}

static json_t *summary_json(const met_summary *s) {
    json_t *o = json_object();
#define RT_XX_JSON_I(name)     json_object_set_new(o, #name, json_integer(s->name));
#define RT_XX_JSON_D(name)     json_object_set_new(o, #name, sim_json_real_or_null(s->name));
#define RT_XX_JSON(name, kind) RT_XX_JSON_##kind(name)
    MET_SUMMARY_MAP(RT_XX_JSON)
#undef RT_XX_JSON
#undef RT_XX_JSON_I
#undef RT_XX_JSON_D
    return o;
}

/* v printed with fmt (one double), or "-" when undefined, as the latency
 * lines print it (JSON: null); returns buf. */
static const char *fmt_num(char *buf, size_t n, const char *fmt, double v) {
    if (!isfinite(v))
        snprintf(buf, n, "-");
    else
        snprintf(buf, n, fmt, v);
    return buf;
}

/* A latency in the unit that suits it ("-" when undefined). */
static void fmt_s(char *buf, size_t n, double v) {
    if (v < 1e-3)
        fmt_num(buf, n, "%.1f us", v * 1e6);
    else if (v < 1)
        fmt_num(buf, n, "%.1f ms", v * 1e3);
    else
        fmt_num(buf, n, "%.3f s", v);
}

/* The line run and predict print when the perf model is the datasheet
 * roofline: its times leave out the engine overhead and the kernels'
 * efficiencies a calibration fits, so they are lower than a calibrated
 * GPU's and the two do not compare (docs/calibration.md). */
static void print_datasheet_note(const char *gpu, int asked) {
    if (asked)
        printf("  perf model: the datasheet roofline (--calibration none)\n");
    else
        printf("  perf model: the datasheet roofline, %s has no calibration (no engine overhead, "
               "kernels at peak);\n  to compare it with a calibrated GPU, run both with "
               "--calibration none (docs/calibration.md)\n",
               gpu);
}

/* "TP2" or, with pipeline stages (pp > 1), "TP8 x PP2 = 16 GPUs per replica" */
static void par_text(char *buf, size_t n, long long tp, long long pp) {
    if (pp > 1)
        snprintf(buf, n, "TP%lld x PP%lld = %lld GPUs per replica", tp, pp, tp * pp);
    else
        snprintf(buf, n, "TP%lld", tp);
}

static long long info_int(json_t *o, const char *key) {
    return (long long)json_integer_value(json_object_get(o, key));
}

/* A fleet's header: its pools and replicas at the start, then one line per
 * pool (its own model, GPU, parallelism and KV blocks). */
static void print_fleet_head(const char *head, json_t *info) {
    json_t *pools = json_object_get(info, "pools"), *q;
    size_t i, n = json_array_size(pools);
    long long r = info_int(info, "replicas");
    printf("%s: fleet of %zu pool%s, %lld replica%s at the start, backend %s\n", head, n,
           n == 1 ? "" : "s", r, r == 1 ? "" : "s",
           json_string_value(json_object_get(info, "backend")));
    json_array_foreach(pools, i, q) {
        char par[96], range[64] = "";
        par_text(par, sizeof par, info_int(q, "tp"), info_int(q, "pp")); /* pp: 0 if none */
        if (json_is_true(json_object_get(q, "autoscaled")))
            snprintf(range, sizeof range, " (%lld..%lld, autoscaled)", info_int(q, "min_replicas"),
                     info_int(q, "max_replicas"));
        printf("  pool %s (%s): %s (%s, KV %s) on %s (%s), %lld replica%s at the start%s, %lld KV "
               "blocks of %lld tokens per replica\n",
               json_string_value(json_object_get(q, "name")),
               json_string_value(json_object_get(q, "region")),
               json_string_value(json_object_get(q, "model")),
               json_string_value(json_object_get(q, "dtype")),
               json_string_value(json_object_get(q, "kv_dtype")),
               json_string_value(json_object_get(q, "gpu")), par, info_int(q, "replicas"),
               info_int(q, "replicas") == 1 ? "" : "s", range, info_int(q, "kv_blocks"),
               info_int(info, "block_tokens"));
    }
}

static void print_text(const met_summary *s, json_t *info, json_t *cfg) {
    const char *calib_name = cfg_str(cfg, "calibration");
    char a[32], b[32], c[32];
    json_t *cut = json_object_get(info, "model_layers");
    char head[4200], dtypes[64] = "", par[96];
    /* a fleet's pools each have their own (in "pools"), its cfg none */
    if (cfg_str(cfg, "dtype")[0] != '\0')
        snprintf(dtypes, sizeof dtypes, " (%s, KV %s)", cfg_str(cfg, "dtype"),
                 cfg_str(cfg, "kv-dtype"));
    if (json_is_integer(json_object_get(info, "run_id")))
        snprintf(head, sizeof head, "kvfleet run %lld (%s)",
                 (long long)json_integer_value(json_object_get(info, "run_id")),
                 json_string_value(json_object_get(info, "db")));
    else
        snprintf(head, sizeof head, "kvfleet run (no results file)");
    if (json_is_array(json_object_get(info, "pools"))) {
        print_fleet_head(head, info);
    } else {
        par_text(par, sizeof par, info_int(info, "tp"), info_int(info, "pp")); /* pp: 0 if none */
        printf("%s: %s%s on %lld x %s (%s), %lld KV blocks of %lld tokens per replica, "
               "backend %s\n",
               head, json_string_value(json_object_get(info, "model")), dtypes,
               info_int(info, "replicas"), json_string_value(json_object_get(info, "gpu")), par,
               info_int(info, "kv_blocks"), info_int(info, "block_tokens"),
               json_string_value(json_object_get(info, "backend")));
    }
    if (cut)
        printf("  model cut to its first %lld of %lld layers (--layers): every figure is for the "
               "cut model\n",
               (long long)json_integer_value(json_object_get(info, "layers")),
               (long long)json_integer_value(cut));
    if (json_object_get(info, "measured"))
        printf("  step times measured on the %s backend (exempt from bit-for-bit determinism)\n",
               json_string_value(json_object_get(info, "backend")));
    else if (strcmp(json_string_value(json_object_get(info, "calibration")), "datasheet") == 0 &&
             !json_object_get(info, "pools"))
        print_datasheet_note(json_string_value(json_object_get(info, "gpu")),
                             strcmp(calib_name, "none") == 0);
    printf("  requests %lld: completed %lld, rejected %lld (context %lld, kv %lld, queue full "
           "%lld, timeout %lld, batch budget %lld); preemptions %lld\n",
           (long long)s->requests, (long long)s->completed, (long long)s->rejected,
           (long long)s->rejected_context, (long long)s->rejected_kv_capacity,
           (long long)s->rejected_queue_full, (long long)s->rejected_queue_timeout,
           (long long)s->rejected_batch_budget, (long long)s->preemptions);
    fmt_s(a, sizeof a, s->ttft_p50_s);
    fmt_s(b, sizeof b, s->ttft_p90_s);
    fmt_s(c, sizeof c, s->ttft_p99_s);
    printf("  TTFT  p50 %-10s p90 %-10s p99 %s\n", a, b, c);
    fmt_s(a, sizeof a, s->tpot_p50_s);
    fmt_s(b, sizeof b, s->tpot_p90_s);
    fmt_s(c, sizeof c, s->tpot_p99_s);
    printf("  TPOT  p50 %-10s p90 %-10s p99 %s\n", a, b, c);
    fmt_s(a, sizeof a, s->e2e_p50_s);
    fmt_s(b, sizeof b, s->e2e_p90_s);
    fmt_s(c, sizeof c, s->e2e_p99_s);
    printf("  E2E   p50 %-10s p90 %-10s p99 %s\n", a, b, c);
    printf("  throughput %s output tokens/s, %s requests/s\n",
           fmt_num(a, sizeof a, "%.1f", s->output_tokens_per_s),
           fmt_num(b, sizeof b, "%.2f", s->requests_per_s));
    printf("  batch mean %s | KV util mean %s peak %s",
           fmt_num(a, sizeof a, "%.1f", s->mean_batch_size),
           fmt_num(b, sizeof b, "%.3f", s->kv_util_mean),
           fmt_num(c, sizeof c, "%.3f", s->kv_util_peak));
    printf(" | MFU %s MBU %s | busy %s\n", fmt_num(a, sizeof a, "%.3f", s->mfu_mean),
           fmt_num(b, sizeof b, "%.3f", s->mbu_mean), fmt_num(c, sizeof c, "%.3f", s->busy_frac));
    if (json_object_get(info, "pools") || isfinite(s->cost_usd))
        printf("  GPU-hours %s | cost %s USD\n", fmt_num(a, sizeof a, "%.3f", s->gpu_hours),
               fmt_num(b, sizeof b, "%.2f", s->cost_usd));
    printf("  simulated %.1f s in %.2f s wall, %lld events, %lld steps\n", s->sim_time_s, s->wall_s,
           (long long)s->sim_events, (long long)s->steps);
}

/* path made absolute and canonical, into buf: realpath of the path when it
 * names something (links, '.' and '..' resolved), else of its folder
 * joined to its last part (a results file not made yet), else, for a
 * relative path, the working folder joined to it. 0 when path is empty,
 * an absolute path whose folder does not exist, or the result does not
 * fit. */
static int abs_path(const char *path, char *buf, size_t n) {
    char cwd[4096], dir[4096], *r;
    const char *slash = strrchr(path, '/');
    int m;
    if (path[0] == '\0')
        return 0;
    if ((r = realpath(path, NULL)) != NULL) {
        m = snprintf(buf, n, "%s", r);
        free(r);
        return m >= 0 && (size_t)m < n;
    }
    if (slash == path) /* "/name" */
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    if ((r = realpath(dir, NULL)) != NULL) {
        m = snprintf(buf, n, "%s%s%s", r, strcmp(r, "/") == 0 ? "" : "/", slash ? slash + 1 : path);
        free(r);
        return m >= 0 && (size_t)m < n;
    }
    if (path[0] == '/' || getcwd(cwd, sizeof cwd) == NULL)
        return 0;
    m = snprintf(buf, n, "%s/%s", cwd, path);
    return m >= 0 && (size_t)m < n;
}

/* cfg[key] made absolute where it is a relative path (see abs_path); a
 * preset name (no '/', naming a file of DATA/sub) is left alone, as are
 * the words 'none' and ''. */
static void cfg_abs_path(json_t *cfg, const char *key, const char *sub) {
    const char *v = json_string_value(json_object_get(cfg, key));
    char buf[4096];
    if (v == NULL || strcmp(v, "none") == 0)
        return;
    if (sub != NULL && strchr(v, '/') == NULL) {
        char preset[4096];
        FILE *f;
        snprintf(preset, sizeof preset, "%s/%s/%s.json", rt_datadir(), sub, v);
        if ((f = fopen(preset, "r")) != NULL) {
            fclose(f);
            return;
        }
        if (access(v, F_OK) != 0)
            return; /* neither a preset nor a file here: the name's error says so */
    }
    if (abs_path(v, buf, sizeof buf))
        json_object_set_new(cfg, key, json_string(buf));
}

/* --replay DB:RUN_ID with its DB made absolute (the run id after the last
 * ':' left as it is). */
static void cfg_abs_replay(json_t *cfg) {
    const char *v = json_string_value(json_object_get(cfg, "replay"));
    const char *colon = v ? strrchr(v, ':') : NULL;
    char db[4096], abs[4096], out[8192];
    if (colon == NULL || colon == v || (size_t)(colon - v) >= sizeof db)
        return; /* no DB part: its parser says what is wrong */
    snprintf(db, sizeof db, "%.*s", (int)(colon - v), v);
    if (!abs_path(db, abs, sizeof abs))
        return;
    snprintf(out, sizeof out, "%s%s", abs, colon);
    json_object_set_new(cfg, "replay", json_string(out));
}

/* The synthetic spec with each file(PATH) made absolute. */
static void cfg_abs_synthetic(json_t *cfg) {
    const char *v = json_string_value(json_object_get(cfg, "synthetic"));
    char out[8192], path[4096], abs[4096];
    size_t o = 0;
    int changed = 0;
    if (v == NULL)
        return;
    while (*v && o + 1 < sizeof out) {
        const char *close, *p0 = v + 4, *p1;
        size_t len;
        /* file( PATH ): blanks around the path, and before the '(', are
         * not part of it, as the synthetic parser trims them */
        while (strncmp(v, "file", 4) == 0 && (*p0 == ' ' || *p0 == '\t'))
            p0++;
        if (strncmp(v, "file", 4) != 0 || *p0 != '(' || (close = strchr(p0 + 1, ')')) == NULL) {
            out[o++] = *v++;
            continue;
        }
        for (p0++; *p0 == ' ' || *p0 == '\t'; p0++)
            ;
        for (p1 = close; p1 > p0 && (p1[-1] == ' ' || p1[-1] == '\t'); p1--)
            ;
        if ((len = (size_t)(p1 - p0)) >= sizeof path) {
            out[o++] = *v++;
            continue;
        }
        memcpy(path, p0, len);
        path[len] = '\0';
        if (!abs_path(path, abs, sizeof abs))
            snprintf(abs, sizeof abs, "%s", path);
        changed = 1; /* made absolute, or its blanks dropped */
        o += (size_t)snprintf(out + o, sizeof out - o, "file(%s)", abs);
        if (o >= sizeof out)
            return; /* too long to rewrite: left as given */
        v = close + 1;
    }
    if (*v != '\0')
        return;
    out[o] = '\0';
    if (changed)
        json_object_set_new(cfg, "synthetic", json_string(out));
}

/* Checks a config's option names and types, then fills in the trace
 * (the shipped one when there is no source) and every default, in place:
 * the form a run stores. Returns SIM_OK or SIM_EINVAL with *err set. */
int rt_run_resolve(json_t *cfg, sim_err *err) {
    const char *synthetic;
    char trace_path[4096];
    int rc;
    if ((rc = config_check(cfg, "config", err)) != SIM_OK)
        return rc;
    /* the trace: explicit, synthetic, or the shipped default */
    synthetic = json_string_value(json_object_get(cfg, "synthetic"));
    if (json_object_get(cfg, "trace") && synthetic) {
        sim_err_set(err, "", 0, 0, "--trace and --synthetic: give one source, not both");
        return SIM_EINVAL;
    }
    if (synthetic == NULL && json_object_get(cfg, "trace") == NULL) {
        snprintf(trace_path, sizeof trace_path, "%s/traces/azure_conv_2023.csv", rt_datadir());
        json_object_set_new(cfg, "trace", json_string(trace_path));
    }
    /* a fleet file is read once and stored whole, so a rerun needs no file */
    if (json_is_string(json_object_get(cfg, "fleet"))) {
        const char *path = json_string_value(json_object_get(cfg, "fleet"));
        int lrc;
        json_t *fl = sim_json_load_path(path, "fleet file", &lrc, err);
        if (fl == NULL)
            return SIM_EINVAL;
        if (!json_is_object(fl)) { /* the fleet's own checks could not name the file */
            sim_err_set(err, path, 0, 0,
                        "fleet file: expected a JSON object of regions, populations, models, "
                        "pools, ... at the top level, got %s",
                        json_is_array(fl) ? "an array" : "a scalar");
            json_decref(fl);
            return SIM_EINVAL;
        }
        /* its path, for the messages that refuse it (docs/fleet.md) */
        if (json_object_get(fl, "source") == NULL) {
            char abs[4096];
            json_object_set_new(fl, "source",
                                json_string(abs_path(path, abs, sizeof abs) ? abs : path));
        }
        json_object_set_new(cfg, "fleet", fl);
    }
    cfg_fill_defaults(cfg);
    /* file paths made absolute, so that the stored config re-runs from any
     * folder (rerun, --config) */
    cfg_abs_path(cfg, "trace", NULL);
    cfg_abs_path(cfg, "model", "models");
    cfg_abs_path(cfg, "gpu", "gpus");
    cfg_abs_path(cfg, "calibration", NULL);
    cfg_abs_path(cfg, "db", NULL);
    cfg_abs_synthetic(cfg);
    { /* and a fleet's pools: their model, GPU and calibration files */
        json_t *pools = json_object_get(json_object_get(cfg, "fleet"), "pools");
        size_t i;
        for (i = 0; i < json_array_size(pools); i++) {
            json_t *p = json_array_get(pools, i);
            if (!json_is_object(p))
                continue; /* the fleet's own check names it */
            cfg_abs_path(p, "model", "models");
            cfg_abs_path(p, "gpu", "gpus");
            cfg_abs_path(p, "calibration", NULL);
            p = json_object_get(p, "options"); /* which may set them too */
            if (json_is_object(p)) {
                cfg_abs_path(p, "model", "models");
                cfg_abs_path(p, "gpu", "gpus");
                cfg_abs_path(p, "calibration", NULL);
            }
        }
    }
    cfg_abs_replay(cfg);
    return SIM_OK;
}

/* --dtype (weights and, unless --kv-dtype says otherwise, the KV cache) and
 * --kv-dtype onto a loaded model; "" keeps the config's. SIM_OK or
 * SIM_EINVAL naming the option. */
static int model_dtypes(sim_model *m, const char *dtype, const char *kv_dtype, sim_err *err) {
    if (dtype[0]) {
        if (sim_dtype_parse(dtype, &m->w_dtype) != SIM_OK) {
            sim_err_set(err, "", 0, 0, "--dtype: expected bf16 or fp8 (or fp16, fp32), got '%s'",
                        dtype);
            return SIM_EINVAL;
        }
        m->kv_dtype = m->w_dtype;
    }
    if (kv_dtype[0] && sim_dtype_parse(kv_dtype, &m->kv_dtype) != SIM_OK) {
        sim_err_set(err, "", 0, 0, "--kv-dtype: expected bf16 or fp8 (or fp16, fp32), got '%s'",
                    kv_dtype);
        return SIM_EINVAL;
    }
    return SIM_OK;
}

/* How run's and predict's JSON name a calibration: its source line, or
 * "datasheet" for the defaults (no GPU named). */
static const char *calib_label(const perf_calib *c) {
    return c->gpu[0] != 0 ? c->source : "datasheet";
}

/* The calibration a run or a prediction uses, by its --calibration name:
 * "none" the datasheet defaults, "" the one shipped for the GPU (the
 * defaults when none is), anything else a file's name or path, which must
 * have been fitted for this GPU. SIM_OK, or an error status with *err set
 * (naming the file). */
static int calib_choose(const char *name, const sim_gpu *gpu, const char *datadir, perf_calib *out,
                        sim_err *err) {
    int found, rc;
    if (strcmp(name, "none") == 0) {
        perf_calib_default(out, gpu);
        return SIM_OK;
    }
    if (name[0] == '\0')
        return perf_calib_load_for_gpu(gpu, datadir, out, &found, err);
    if ((rc = perf_calib_load(name, out, err)) != SIM_OK)
        return rc;
    /* perf_ctx_init refuses it too, but knows no file to name */
    if (out->gpu[0] != '\0' && strcmp(out->gpu, gpu->name) != 0) {
        sim_err_set(err, name, 0, 0, "gpu: expected %s (one fitted for the run's GPU), got '%s'",
                    gpu->name, out->gpu);
        return SIM_EINVAL;
    }
    return SIM_OK;
}

/* A replica spanning nodes costs its all-reduce with the collective model:
 * the GPU's fitted NCCL parameters (data/calib/nccl-GPU.json) when shipped
 * and the calibration is not "none", else the datasheet's. */
static int ctx_collectives(perf_ctx *pctx, const char *datadir, const char *calib_name,
                           sim_err *err) {
    char path[4200];
    FILE *f;
    coll_calib cc;
    coll_topo topo;
    int rc;
    if (pctx->tp_nodes <= 1 || strcmp(calib_name, "none") == 0)
        return SIM_OK;
    snprintf(path, sizeof path, "%s/calib/nccl-%s.json", datadir, pctx->gpu.name);
    if ((f = fopen(path, "r")) == NULL)
        return SIM_OK;
    fclose(f);
    coll_topo_from_gpu(&pctx->gpu, &topo);
    coll_calib_default(&topo, &cc);
    if ((rc = coll_calib_load(path, &cc, err)) != SIM_OK)
        return rc;
    return perf_ctx_set_collectives(pctx, &cc, err);
}

/* --sched-policy into sc->sched_policy: SIM_OK or SIM_EINVAL naming it. */
static int sched_policy_of(json_t *cfg, sched_config *sc, sim_err *err) {
    static const char *const names[] = {"vllm", "sglang", "trtllm"}; /* SCHED_POLICY_* */
    const char *sp = cfg_str(cfg, "sched-policy");
    for (sc->sched_policy = 0; sc->sched_policy < 3; sc->sched_policy++)
        if (strcmp(sp, names[sc->sched_policy]) == 0)
            return SIM_OK;
    sim_err_set(err, "", 0, 0, "--sched-policy: expected vllm, sglang or trtllm, got '%s'", sp);
    return SIM_EINVAL;
}

/* --policy into sc->policy and its parameters ("none": left NULL), with the
 * policy's own parameter checks made on a one-block probe cache (belady
 * takes none; its oracle is built with the run). */
static int cache_policy_of(json_t *cfg, sched_config *sc, sim_err *err) {
    pcache *probe = NULL;
    int rc;
    if ((rc = evict_spec_parse_or_none(cfg_str(cfg, "policy"), &sc->policy, &sc->policy_params,
                                       err)) != SIM_OK ||
        sc->policy == NULL) /* none */
        return rc;
    sc->policy_params.block_tokens = (int32_t)cfg_int(cfg, "block-tokens");
    if (strcmp(sc->policy->name, "belady") != 0 &&
        (rc = pcache_create(1, sc->policy, &sc->policy_params, &probe, err)) != SIM_OK)
        return rc;
    pcache_destroy(probe);
    return SIM_OK;
}

/* An error about a run option's value names the option where the user gave
 * it: as the command line spells it (`--max-num-seqs: ...`; the scheduler
 * and the engine say `config: max-num-seqs: ...`), or, when the value came
 * from a --config file (file_cfg: the keys the file gave and the command
 * line did not), as `FILE: max-num-seqs: ...`. Any other error is left as
 * it is. */
static void err_option_origin(sim_err *err, json_t *file_cfg, const char *file) {
    char key[64], rest[sizeof err->msg];
    const char *m = err->msg, *colon;
    int dashed = err->src[0] == '\0' && strncmp(m, "--", 2) == 0;
    if (!dashed && !(strcmp(err->src, "config") == 0 && err->line == 0))
        return;
    if (dashed)
        m += 2;
    colon = strchr(m, ':');
    if (colon == NULL || (size_t)(colon - m) >= sizeof key)
        return;
    memcpy(key, m, (size_t)(colon - m));
    key[colon - m] = '\0';
    if (opt_find(key) == NULL)
        return;
    snprintf(rest, sizeof rest, "%s", colon);
    if (file_cfg != NULL && file != NULL && json_object_get(file_cfg, key) != NULL)
        sim_err_set(err, file, 0, 0, "%s%s", key, rest);
    else
        sim_err_set(err, "", 0, 0, "--%s%s", key, rest);
}

/* The scheduler's values that need no model (--max-num-seqs,
 * --max-batched-tokens, --block-tokens, --chunked-prefill, --sched-policy,
 * --watermark, --max-queue, --max-queue-time) into sc, the ones of a form
 * sched_config_check cannot see checked here. */
static int sched_values_of(json_t *cfg, sched_config *sc, sim_err *err) {
    int rc;
    sc->max_num_seqs = (int)cfg_int(cfg, "max-num-seqs");
    sc->max_batched_tokens = cfg_int(cfg, "max-batched-tokens");
    sc->block_tokens = (int)cfg_int(cfg, "block-tokens");
    if (sc->block_tokens < 1 || sc->block_tokens > 1024) { /* before any block is sized */
        sim_err_set(err, "", 0, 0, "--block-tokens: expected 1..1024, got '%d'", sc->block_tokens);
        return SIM_EINVAL;
    }
    sc->chunked_prefill = cfg_bool(cfg, "chunked-prefill");
    if ((rc = sched_policy_of(cfg, sc, err)) != SIM_OK)
        return rc;
    sc->watermark = cfg_num(cfg, "watermark");
    sc->max_queue = cfg_int(cfg, "max-queue");
    {
        /* 0: none; a positive value below a microsecond would round to "none" */
        double mqt = cfg_num(cfg, "max-queue-time");
        if (!(mqt == 0 || (mqt >= 1e-6 && mqt <= 1e9))) {
            sim_err_set(err, "", 0, 0,
                        "--max-queue-time: expected 0 (none) or 1e-06..1e+09 s, got '%g'", mqt);
            return SIM_EINVAL;
        }
        sc->max_queue_ns = sim_time_from_s(mqt);
    }
    return SIM_OK;
}

/* Appends a note line to p's notes (cut short where they are full: a
 * pool has at most two, of about 150 bytes). */
static void pool_note(rt_pool *p, const char *fmt, ...) {
    char line[512];
    size_t used = strlen(p->notes);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    snprintf(p->notes + used, sizeof p->notes - used, "kvfleet: note: %s\n", line);
}

void rt_pool_notes_print(const rt_pool *p) {
    fputs(p->notes, stderr);
}

/* Builds one pool's model, GPU, perf model and scheduler config from a
 * resolved config (a run's, or a fleet pool's), refusing what cannot be
 * served. ops and replay name the executor (its KV pool may differ from the
 * GPU's). Returns SIM_OK or an error status with *errp set. */
int rt_pool_setup(json_t *cfg, const struct be_ops *ops, const char *replay, rt_pool *out,
                  sim_err *errp) {
    sim_err err;
    sim_model model;
    sim_gpu gpu;
    perf_calib calib;
    perf_ctx pctx;
    sched_config sc;
    int rc, tp;
    long long kv_blocks, layers;
    int model_layers = 0;
    const char *datadir = rt_datadir();
    const char *calib_name;
    char why[512];

    sim_err_clear(&err);
    memset(&sc, 0, sizeof sc);
    memset(out, 0, sizeof *out);
    /* model, GPU, calibration */
    if ((rc = sim_model_load(cfg_str(cfg, "model"), datadir, &model, &err)) != SIM_OK)
        goto fail;
    window_note(&model);
    if ((rc = model_dtypes(&model, cfg_str(cfg, "dtype"), cfg_str(cfg, "kv-dtype"), &err)) !=
        SIM_OK)
        goto fail;
    /* the stored config names the dtypes the run used, not '' */
    json_object_set_new(cfg, "dtype", json_string(sim_dtype_name(model.w_dtype)));
    json_object_set_new(cfg, "kv-dtype", json_string(sim_dtype_name(model.kv_dtype)));
    layers = cfg_int(cfg, "layers");
    if (layers < 0 || layers > model.n_layers) {
        sim_err_set(&err, "", 0, 0,
                    "--layers: expected 0..%d (the layers of %s; 0: all), got '%lld'",
                    model.n_layers, model.name, layers);
        rc = SIM_EINVAL;
        goto fail;
    }
    if (layers > 0 && layers < model.n_layers) { /* every report says so (print_text, JSON) */
        model_layers = model.n_layers;
        model.n_layers = (int)layers;
    }
    if ((rc = sim_gpu_load(cfg_str(cfg, "gpu"), datadir, &gpu, &err)) != SIM_OK)
        goto fail;
    tp = (int)cfg_int(cfg, "tp");
    if (tp < 1 || tp > 64 * gpu.gpus_per_node) {
        sim_err_set(&err, "", 0, 0, "--tp: expected 1..%d (64 nodes of %d %s), got '%d'",
                    64 * gpu.gpus_per_node, gpu.gpus_per_node, gpu.name, tp);
        rc = SIM_EINFEASIBLE;
        goto fail;
    }
    if ((rc = sim_model_check(&model, tp, &err)) != SIM_OK)
        goto fail;
    calib_name = cfg_str(cfg, "calibration");
    if ((rc = calib_choose(calib_name, &gpu, datadir, &calib, &err)) != SIM_OK)
        goto fail;
    if (!(cfg_num(cfg, "engine-overhead") >= 0 && cfg_num(cfg, "engine-overhead") <= 100)) {
        sim_err_set(&err, "", 0, 0, "--engine-overhead: expected a number in [0, 100], got '%g'",
                    cfg_num(cfg, "engine-overhead"));
        rc = SIM_EINVAL;
        goto fail;
    }
    calib.step_base_s *= cfg_num(cfg, "engine-overhead");
    calib.step_per_seq_s *= cfg_num(cfg, "engine-overhead");
    calib.step_tp_s *= cfg_num(cfg, "engine-overhead");
    if ((rc = perf_ctx_init(&pctx, &model, &gpu, &calib, tp, &err)) != SIM_OK)
        goto fail;
    if ((rc = ctx_collectives(&pctx, datadir, calib_name, &err)) != SIM_OK)
        goto fail;
    if (cfg_int(cfg, "pp") != 1) {
        if (ops != &be_sim_ops) {
            sim_err_set(&err, "", 0, 0,
                        "--pp: pipeline stages run on the sim backend only, got "
                        "--backend %s",
                        ops->name);
            rc = SIM_EINVAL;
            goto fail;
        }
        if ((rc = perf_ctx_set_pp(&pctx, (int)cfg_int(cfg, "pp"), &err)) != SIM_OK)
            goto fail;
    }
    { /* a GPU or calibration file with absurd values (an overhead of 1e307 s,
       * a peak of 1e-320 FLOP/s) is refused here, not by the run's first step */
        perf_batch pb;
        double t;
        memset(&pb, 0, sizeof pb);
        perf_batch_add_decode(&pb, 1);
        t = perf_step_s(&pctx, &pb);
        if (!(t <= SIM_HORIZON_S)) {
            char calib_what[4200] = ""; /* the files to check, by name */
            if (strcmp(calib_name, "none") != 0)
                snprintf(calib_what, sizeof calib_what, " and the calibration (%s)",
                         calib_name[0] ? calib_name : "the shipped one");
            sim_err_set(&err, "", 0, 0,
                        "a one-token decode step of %s on %s takes %g s (expected at most 1e9 s, "
                        "the simulator's horizon): check the GPU file (%s)%s for absurd values",
                        model.name, gpu.name, t, cfg_str(cfg, "gpu"), calib_what);
            rc = SIM_EINFEASIBLE;
            goto fail;
        }
    }

    /* the engine */
    if ((rc = sched_values_of(cfg, &sc, &err)) != SIM_OK)
        goto fail;
    sc.max_ctx = model.max_ctx;
    sc.hash_block_tokens = (int)cfg_int(cfg, "hash-block-tokens");
    if (sc.hash_block_tokens < 1) {
        sim_err_set(&err, "", 0, 0, "--hash-block-tokens: expected an integer >= 1, got '%d'",
                    sc.hash_block_tokens);
        rc = SIM_EINVAL;
        goto fail;
    }
    if ((rc = cache_policy_of(cfg, &sc, &err)) != SIM_OK)
        goto fail;
    {
        double gib = cfg_num(cfg, "host-cache-gib");
        double block_bytes =
            sim_model_kv_bytes_per_token(&model, tp) * cfg_int(cfg, "block-tokens");
        const char *preempt = cfg_str(cfg, "preemption");
        double swap_arg = cfg_num(cfg, "swap-space-gib");
        double swap_gib = strcmp(preempt, "swap") == 0 ? swap_arg : 0.0;
        double per_node = (gib + swap_gib) * 1073741824.0 * (double)gpu.gpus_per_node / tp;
        const char *miss = cfg_str(cfg, "miss");
        if (strcmp(preempt, "swap") != 0 && strcmp(preempt, "recompute") != 0) {
            sim_err_set(&err, "", 0, 0, "--preemption: expected recompute or swap, got '%s'",
                        preempt);
            rc = SIM_EINVAL;
            goto fail;
        }
        if (!(swap_arg >= 0)) { /* refused even when --preemption swap is off */
            sim_err_set(&err, "", 0, 0, "--swap-space-gib: expected a number >= 0, got '%g'",
                        swap_arg);
            rc = SIM_EINVAL;
            goto fail;
        }
        sc.preempt_swap = strcmp(preempt, "swap") == 0;
        sc.copies_per_block = cfg_bool(cfg, "swap-gather") ? 1 : 2 * model.n_layers;
        if (!(gib >= 0)) {
            sim_err_set(&err, "", 0, 0, "--host-cache-gib: expected a number >= 0, got '%g'", gib);
            rc = SIM_EINVAL;
            goto fail;
        }
        if (gib > 0 && sc.policy == NULL) {
            sim_err_set(&err, "", 0, 0,
                        "--host-cache-gib: a host tier needs the prefix cache (--policy is none)");
            rc = SIM_EINVAL;
            goto fail;
        }
        if (per_node > gpu.host_mem_bytes) {
            sim_err_set(&err, "", 0, 0,
                        "--host-cache-gib, --swap-space-gib: %g GiB for each replica of TP%d, "
                        "%g replicas per %s node, is %.0f GB, more than the node's %.0f GB of "
                        "host memory",
                        gib + swap_gib, tp, (double)gpu.gpus_per_node / tp, gpu.name,
                        per_node / 1e9, gpu.host_mem_bytes / 1e9);
            rc = SIM_EINFEASIBLE;
            goto fail;
        }
        /* converted once both are known to fit the node's host memory */
        sc.swap_blocks = (int64_t)(swap_gib * 1073741824.0 / block_bytes);
        if (strcmp(miss, "swap") == 0)
            sc.miss = SCHED_MISS_SWAP;
        else if (strcmp(miss, "recompute") == 0)
            sc.miss = SCHED_MISS_RECOMPUTE;
        else if (strcmp(miss, "cheaper") == 0)
            sc.miss = SCHED_MISS_CHEAPER;
        else {
            sim_err_set(&err, "", 0, 0, "--miss: expected swap, recompute or cheaper, got '%s'",
                        miss);
            rc = SIM_EINVAL;
            goto fail;
        }
        sc.block_bytes = block_bytes;
        sc.host_blocks = (int64_t)(gib * 1073741824.0 / block_bytes);
        {
            double rgib = cfg_num(cfg, "remote-pool-gib");
            long long nics = cfg_int(cfg, "remote-pool-nics");
            if (!(rgib >= 0 && rgib <= 1048576) || nics < 1 || nics > 1024) {
                sim_err_set(&err, "", 0, 0,
                            "--remote-pool-gib, --remote-pool-nics: expected GiB in [0, 1048576] "
                            "(1 PiB) and 1..1024 NICs, got '%g' and '%lld'",
                            rgib, nics);
                rc = SIM_EINVAL;
                goto fail;
            }
            if (rgib > 0 && sc.policy == NULL) {
                sim_err_set(&err, "", 0, 0,
                            "--remote-pool-gib: a remote tier needs the prefix cache (--policy is "
                            "none)");
                rc = SIM_EINVAL;
                goto fail;
            }
            if (rgib > 0 && !(gpu.ib_bw > 0)) {
                sim_err_set(&err, "", 0, 0,
                            "--remote-pool-gib: the remote pool is reached over InfiniBand, which "
                            "GPU %s's node lacks (ib_bw 0)",
                            gpu.name);
                rc = SIM_EINFEASIBLE;
                goto fail;
            }
            sc.remote_blocks = (int64_t)(rgib * 1073741824.0 / block_bytes);
            if (strcmp(cfg_str(cfg, "remote-pool-write"), "through") == 0)
                sc.remote_write_through = 1;
            else if (strcmp(cfg_str(cfg, "remote-pool-write"), "back") != 0) {
                sim_err_set(&err, "", 0, 0,
                            "--remote-pool-write: expected through or back, got '%s'",
                            cfg_str(cfg, "remote-pool-write"));
                rc = SIM_EINVAL;
                goto fail;
            }
            sc.remote_nics = (int)nics;
            if (rgib > 0 && sc.remote_blocks < 1) {
                sim_err_set(&err, "", 0, 0,
                            "--remote-pool-gib: %g GiB holds no KV block of %.0f bytes", rgib,
                            block_bytes);
                rc = SIM_EINVAL;
                goto fail;
            }
        }
        sc.pcie_bw = gpu.pcie_bw;
        sc.pcie_latency_s = gpu.pcie_latency_s;
        if (gib > 0 && sc.host_blocks < 1) {
            sim_err_set(&err, "", 0, 0, "--host-cache-gib: %g GiB holds no KV block of %.0f bytes",
                        gib, block_bytes);
            rc = SIM_EINVAL;
            goto fail;
        }
    }
    {
        double mu = cfg_num(cfg, "gpu-mem-util");
        if (!(mu > 0 && mu <= 1)) {
            sim_err_set(&err, "", 0, 0, "--gpu-mem-util: expected a fraction in (0, 1], got '%g'",
                        mu);
            rc = SIM_EINVAL;
            goto fail;
        }
        kv_blocks = cfg_int(cfg, "kv-blocks");
        {
            int64_t fit = eng_kv_blocks(&pctx, sc.block_tokens, mu, sc.max_num_seqs,
                                        sc.max_batched_tokens, why, sizeof why);
            if (kv_blocks < 0) {
                sim_err_set(&err, "", 0, 0, "--kv-blocks: expected >= 0, got '%lld'", kv_blocks);
                rc = SIM_EINVAL;
                goto fail;
            }
            if (fit <= 0) {
                sim_err_set(&err, "", 0, 0, "infeasible: no room for the KV cache: %s", why);
                rc = SIM_EINFEASIBLE;
                goto fail;
            }
            if (kv_blocks == 0 && ops == &be_replay_ops) {
                /* the recorded run's pool, whatever executor recorded it */
                int64_t rec;
                if ((rc = be_replay_kv_blocks(replay, &rec, &err)) != SIM_OK)
                    goto fail;
                kv_blocks = rec > 0 ? rec : fit;
            }
            if (kv_blocks > INT32_MAX) {
                sim_err_set(&err, "", 0, 0, "--kv-blocks: expected at most %d, got '%lld'",
                            INT32_MAX, kv_blocks);
                rc = SIM_EINVAL;
                goto fail;
            }
            if (kv_blocks > fit * pctx.pp && cfg_int(cfg, "kv-blocks") > 0)
                pool_note(out,
                          "--kv-blocks %lld is more than the %lld blocks that fit %s's HBM next "
                          "to the weights: a hypothetical pool",
                          kv_blocks, (long long)fit * pctx.pp, gpu.name);
            if (kv_blocks > 0 && kv_blocks < pctx.pp) {
                /* divided below, it would be 0, which means "derive" */
                sim_err_set(&err, "", 0, 0,
                            "--kv-blocks: expected 0 (derived) or at least --pp (%d): the "
                            "replica's blocks are shared by its %d virtual engines, got '%lld'",
                            pctx.pp, pctx.pp, kv_blocks);
                rc = SIM_EINVAL;
                goto fail;
            }
            if (kv_blocks > 0 && pctx.pp > 1)
                kv_blocks /= pctx.pp; /* the replica's, shared by its virtual engines */
            if (kv_blocks == 0) {
                kv_blocks = fit;
                if (kv_blocks > INT32_MAX) { /* a model with next to no KV per token */
                    pool_note(out,
                              "the %lld KV blocks that fit %s are more than a pool holds; using "
                              "%d (--kv-blocks sets the count)",
                              (long long)fit, gpu.name, INT32_MAX);
                    kv_blocks = INT32_MAX;
                }
                if (ops == &be_cpu_ops && sim_model_params(&model) <= BE_CPU_MAX_PARAMS &&
                    kv_blocks > be_cpu_kv_blocks_max(&model, sc.block_tokens)) {
                    kv_blocks = be_cpu_kv_blocks_max(&model, sc.block_tokens);
                    pool_note(out,
                              "--backend cpu holds at most %lld KV blocks per replica (%.0f MiB "
                              "of fp32 KV); using that, not the %lld of %s",
                              kv_blocks, BE_CPU_KV_MAX_BYTES / 1048576.0, (long long)fit, gpu.name);
                }
            }
        }
    }
    sc.kv_blocks = kv_blocks;
    if ((rc = sched_config_check(&sc, &err)) != SIM_OK)
        goto fail;
    if (sc.policy && strcmp(sc.policy->name, "belady") == 0) { /* reads the trace ahead */
        if ((rc = rt_oracle_build(cfg, &sc, &out->oracle, NULL, &err)) != SIM_OK)
            goto fail;
        sc.policy_params.oracle = out->oracle;
    }
    out->pctx = pctx;
    out->sched = sc;
    out->kv_blocks = kv_blocks;
    out->model_layers = model_layers;
    return SIM_OK;
fail:
    if (errp)
        *errp = err;
    return rc;
}

/* The message for a --trace-format given with --synthetic. */
#define RT_SYNTH_FORMAT_MSG                                                                        \
    "--trace-format: expected auto with --synthetic (a format is how a trace file is read; "       \
    "the spec reads none), got '%s'"

/* The config's --trace-format, checked with --synthetic too: it then reads
 * no file, so only auto (the default) goes with it; a bad value is still a
 * bad value (trace stats says so). */
static int cfg_trace_format(json_t *cfg, enum trace_format *fmt, sim_err *err) {
    if (trace_format_parse(cfg_str(cfg, "trace-format"), fmt) != SIM_OK) {
        sim_err_set(err, "", 0, 0,
                    "--trace-format: expected azure|vidur|mooncake|sessions|auto, got '%s'",
                    cfg_str(cfg, "trace-format"));
        return SIM_EINVAL;
    }
    if (*fmt != TRACE_FMT_AUTO && json_is_string(json_object_get(cfg, "synthetic"))) {
        sim_err_set(err, "", 0, 0, RT_SYNTH_FORMAT_MSG, cfg_str(cfg, "trace-format"));
        return SIM_EINVAL;
    }
    return SIM_OK;
}

int rt_source_open(json_t *cfg, trace_src **t, sim_err *err) {
    trace_opts to;
    enum trace_format fmt;
    const char *synthetic = json_string_value(json_object_get(cfg, "synthetic"));
    int rc;
    *t = NULL;
    trace_opts_default(&to);
    to.load_scale = cfg_num(cfg, "load-scale");
    to.limit = cfg_int(cfg, "limit");
    to.seed = (uint64_t)cfg_int(cfg, "seed");
    to.hash_block_tokens = (int32_t)cfg_int(cfg, "hash-block-tokens");
    if (!(to.load_scale > 0)) {
        sim_err_set(err, "", 0, 0, "--load-scale: expected a number > 0, got '%g'", to.load_scale);
        return SIM_EINVAL;
    }
    if (to.limit < 0) {
        sim_err_set(err, "", 0, 0, "--limit: expected an integer >= 0, got '%lld'",
                    (long long)to.limit);
        return SIM_EINVAL;
    }
    if ((rc = cfg_trace_format(cfg, &fmt, err)) != SIM_OK)
        return rc;
    if (synthetic)
        rc = trace_open_synthetic(synthetic, &to, t, err);
    else
        rc = trace_open_file(cfg_str(cfg, "trace"), fmt, &to, t, err);
    if (rc == SIM_OK && cfg_str(cfg, "sessionize")[0] &&
        strcmp(cfg_str(cfg, "sessionize"), "none") != 0) /* takes *t: closed on failure */
        rc = trace_sessionize(*t, cfg_str(cfg, "sessionize"), to.seed, t, err);
    if (rc != SIM_OK)
        *t = NULL;
    return rc;
}

int rt_run_precheck(json_t *cfg, sim_err *err) {
    const char *datadir = rt_datadir();
    sim_model model;
    sim_gpu gpu;
    sched_config sc;
    trace_src *t = NULL;
    int rc;
    perf_calib calib;
    if (json_object_get(cfg, "fleet") == NULL &&
        ((rc = sim_model_load(cfg_str(cfg, "model"), datadir, &model, err)) != SIM_OK ||
         (rc = model_dtypes(&model, cfg_str(cfg, "dtype"), cfg_str(cfg, "kv-dtype"), err)) !=
             SIM_OK ||
         (rc = sim_gpu_load(cfg_str(cfg, "gpu"), datadir, &gpu, err)) != SIM_OK ||
         (rc = calib_choose(cfg_str(cfg, "calibration"), &gpu, datadir, &calib, err)) != SIM_OK))
        return rc;
    /* the scheduler's values that need no model: its pool and context are
     * set to ones the check accepts */
    memset(&sc, 0, sizeof sc);
    if ((rc = sched_values_of(cfg, &sc, err)) != SIM_OK)
        return rc;
    sc.kv_blocks = 1;
    sc.max_ctx = 1;
    if ((rc = sched_config_check(&sc, err)) != SIM_OK) {
        err_option_origin(err, NULL, NULL);
        return rc;
    }
    if ((rc = cache_policy_of(cfg, &sc, err)) != SIM_OK ||
        (rc = rt_source_open(cfg, &t, err)) != SIM_OK)
        return rc;
    trace_close(t);
    if (json_object_get(cfg, "fleet") != NULL) {
        /* the fleet built as the run builds it (its files and names, its
         * pools' values), then freed; a pool that cannot be served
         * (SIM_EINFEASIBLE) is the run's to report, as a lone run's is */
        json_t *fleet_j = json_object_get(cfg, "fleet");
        const struct be_ops *ops = rt_backend_find(cfg_str(cfg, "backend"));
        rt_fleet *f = NULL;
        rc = ops ? rt_fleet_build(fleet_j, cfg, ops, &f, err) : SIM_OK;
        rt_fleet_free(f);
        if (rc == SIM_EINFEASIBLE) {
            sim_err_clear(err);
            rc = SIM_OK;
        }
        if (rc != SIM_OK)
            fleet_name_file(fleet_j, err);
        return rc;
    }
    return SIM_OK;
}

/* The checks of a resolved config that need no file read, no model and no
 * pool: the executor and what it can do, the router, the replica count, the
 * figures' limits. rt_run_exec makes them first; a sweep makes them for every
 * point before it writes anything. */
int rt_run_check(json_t *cfg, sim_err *errp) {
    sim_err err;
    const struct be_ops *ops;
    const char *backend_name = cfg_str(cfg, "backend");
    int router;
    long long steps_sample;
    double timeline_s, slo_ttft_s, slo_tpot_s, price;
    int rc = SIM_OK;
    sim_err_clear(&err);
    ops = rt_backend_find(backend_name);
    if (ops == NULL) {
        char list[160];
        rt_backend_list(list, sizeof list);
        if (rt_backend_known(backend_name)) {
            sim_err_set(&err, "", 0, 0,
                        "--backend %s: this build has no CUDA (configure found no working nvcc, "
                        "or ran with --without-cuda); this build has: %s",
                        backend_name, list);
            rc = SIM_EDEVICE;
        } else {
            sim_err_set(&err, "", 0, 0, "--backend: expected one of: %s (this build), got '%s'",
                        list, backend_name);
            rc = SIM_EINVAL;
        }
        goto out;
    }
    if (ops == &be_replay_ops) {
        const char *replay = json_string_value(json_object_get(cfg, "replay"));
        if (replay == NULL || replay[0] == '\0') {
            sim_err_set(&err, "", 0, 0,
                        "--replay: expected DB:RUN_ID with --backend replay (the recorded run), "
                        "got nothing");
            rc = SIM_EINVAL;
            goto out;
        }
    }
    { /* what the executor cannot do, refused before any note is printed */
        be probe = {ops, NULL};
        long long tp = cfg_int(cfg, "tp");
        if (tp > 1 && !be_supports(&probe, "tp>1")) { /* supports() reads no state */
            sim_err_set(&err, "", 0, 0,
                        "--tp: expected 1 with --backend %s (it runs the whole model in one "
                        "process), got '%lld'",
                        ops->name, tp);
            rc = SIM_ENOTSUP;
            goto out;
        }
        /* replay accepts it: a stored cuda config reruns through replay */
        if (cfg_bool(cfg, "op-timing") &&
            (strcmp(ops->name, "sim") == 0 || strcmp(ops->name, "cpu") == 0)) {
            sim_err_set(&err, "", 0, 0,
                        "--op-timing: expected false with --backend %s (CUDA events time the "
                        "cuda executor only), got 'true'",
                        ops->name);
            rc = SIM_EINVAL;
            goto out;
        }
    }
    if (rt_router_parse(cfg_str(cfg, "router"), &router) != SIM_OK) {
        sim_err_set(&err, "", 0, 0,
                    "--router: expected round-robin, least-outstanding, least-kv, session or "
                    "prefix, got '%s'",
                    cfg_str(cfg, "router"));
        rc = SIM_EINVAL;
        goto out;
    }
    {
        enum trace_format fmt;
        if ((rc = cfg_trace_format(cfg, &fmt, &err)) != SIM_OK)
            goto out;
    }
    {
        long long r = cfg_int(cfg, "replicas"), pp = cfg_int(cfg, "pp");
        if (pp < 1)
            pp = 1; /* perf_ctx_set_pp says why */
        if (r < 1 || r * pp > 1000000) {
            if (pp > 1)
                sim_err_set(&err, "", 0, 0,
                            "--replicas: expected 1..%lld (1000000 engines over %lld pipeline "
                            "stages), got '%lld'",
                            1000000 / pp, pp, r);
            else
                sim_err_set(&err, "", 0, 0, "--replicas: expected 1..1000000, got '%lld'", r);
            rc = SIM_EINVAL;
            goto out;
        }
    }
    steps_sample = cfg_int(cfg, "steps-sample");
    timeline_s = cfg_num(cfg, "timeline-s");
    slo_ttft_s = cfg_num(cfg, "slo-ttft");
    slo_tpot_s = cfg_num(cfg, "slo-tpot");
    price = cfg_num(cfg, "gpu-price");
    if (!(price >= 0 && price <= RT_MAX_GPU_PRICE)) {
        sim_err_set(&err, "", 0, 0, "--gpu-price: expected USD per GPU-hour in 0..%g, got '%g'",
                    RT_MAX_GPU_PRICE, price);
        rc = SIM_EINVAL;
        goto out;
    }
    if (json_object_get(cfg, "fleet") && price > 0) { /* it would be ignored: say so */
        sim_err_set(&err, "", 0, 0,
                    "--gpu-price: expected none with --fleet (a fleet prices its GPUs per "
                    "region: usd_per_gpu_hour in the fleet file), got '%g'",
                    price);
        rc = SIM_EINVAL;
        goto out;
    }
    if (!(timeline_s == 0 || (timeline_s >= 1e-3 && timeline_s <= 1e9))) {
        /* finer intervals write a row per replica every step or more often */
        sim_err_set(&err, "", 0, 0, "--timeline-s: expected 0 (none) or 0.001..1e+09 s, got '%g'",
                    timeline_s);
        rc = SIM_EINVAL;
        goto out;
    }
    if (steps_sample < 0) {
        sim_err_set(&err, "", 0, 0, "--steps-sample: expected >= 0, got '%lld'", steps_sample);
        rc = SIM_EINVAL;
        goto out;
    }
    if (!(slo_ttft_s >= 0) || !(slo_tpot_s >= 0)) {
        sim_err_set(&err, "", 0, 0, "%s: expected seconds >= 0 (0: no SLO), got '%g'",
                    !(slo_ttft_s >= 0) ? "--slo-ttft" : "--slo-tpot",
                    !(slo_ttft_s >= 0) ? slo_ttft_s : slo_tpot_s);
        rc = SIM_EINVAL;
        goto out;
    }
out:
    if (rc != SIM_OK && errp)
        *errp = err;
    return rc;
}

int rt_run_exec(json_t *cfg, const char *kind, const char *command, met_summary *sum_out,
                json_t **info_out, sim_err *errp) {
    sim_err err;
    rt_pool pool;
    const perf_ctx *pc = &pool.pctx;
    eng_config ec;
    eng_source es;
    src_adapter sa = {NULL};
    be backend = {NULL, NULL}, *bp = &backend;
    be_args ba;
    rt_fleet *fleet = NULL;
    json_t *fleet_j;
    store *st = NULL;
    met_sink sink, *sinkp = NULL;
    met_summary sum;
    progress_state ps;
    int rc;
    int64_t run_id = 0;
    const char *db;
    json_t *info = NULL;
    char *cfg_text = NULL;
    const struct be_ops *ops;
    const char *backend_name, *replay = NULL;
    size_t mem_base = sim_mem_peak_reset(); /* the run's own peak, above what is held now */

    sim_err_clear(&err);
    memset(&ps, 0, sizeof ps);
    memset(&pool, 0, sizeof pool);
    *info_out = NULL;
    if ((rc = rt_run_resolve(cfg, &err)) != SIM_OK)
        goto fail;

    if ((rc = rt_run_check(cfg, &err)) != SIM_OK)
        goto fail;
    /* the executor, by name (its KV pool may differ from the GPU's: below) */
    backend_name = cfg_str(cfg, "backend");
    ops = rt_backend_find(backend_name);
    if (ops == &be_replay_ops)
        replay = json_string_value(json_object_get(cfg, "replay"));
    /* model, GPU, calibration, scheduler: the run's one pool, or a fleet's */
    fleet_j = json_object_get(cfg, "fleet");
    if (fleet_j) {
        if ((rc = rt_fleet_build(fleet_j, cfg, ops, &fleet, &err)) != SIM_OK) {
            fleet_name_file(fleet_j, &err);
            goto fail;
        }
        { /* belady: one pool's run only (a fleet's pools would share its trace) */
            int i, any = 0;
            for (i = 0; i < fleet->f.n_pools; i++) {
                any |= fleet->rp[i].oracle != NULL;
                evict_oracle_destroy(fleet->rp[i].oracle);
                fleet->rp[i].oracle = NULL;
            }
            if (any) {
                sim_err_set(&err, "", 0, 0,
                            "--policy belady: expected a run of one pool, got a fleet (its pools "
                            "would each need the trace ahead)");
                rc = SIM_EINVAL;
                goto fail;
            }
        }
        { /* the pools' notes, once (the sweep's precheck built them quietly) */
            int i;
            for (i = 0; i < fleet->f.n_pools; i++)
                rt_pool_notes_print(&fleet->rp[i]);
        }
        pool = fleet->rp[0]; /* for the report's first lines */
        bp = &fleet->bes[0];
    } else {
        rc = rt_pool_setup(cfg, ops, replay, &pool, &err);
        rt_pool_notes_print(&pool);
        if (rc != SIM_OK)
            goto fail;
    }
    memset(&ec, 0, sizeof ec);
    ec.fleet = fleet ? &fleet->f : NULL;
    (void)rt_router_parse(cfg_str(cfg, "router"), &ec.router); /* checked */
    ec.perf = &pool.pctx;
    ec.sched = pool.sched;
    ec.replicas = (int)(cfg_int(cfg, "replicas") * pool.pctx.pp); /* virtual engines; checked */
    ec.steps_sample = cfg_int(cfg, "steps-sample");
    ec.timeline_s = cfg_num(cfg, "timeline-s");
    ec.slo_ttft_s = cfg_num(cfg, "slo-ttft");
    ec.slo_tpot_s = cfg_num(cfg, "slo-tpot");
    ec.check = cfg_bool(cfg, "check");
    ec.fast_forward = cfg_bool(cfg, "fast-forward");
    ec.usd_per_gpu_hour = cfg_num(cfg, "gpu-price");
    ec.seed = (uint64_t)cfg_int(cfg, "seed");

    /* the backend */
    memset(&ba, 0, sizeof ba);
    ba.perf = pc;
    ba.kv_blocks = pool.kv_blocks;
    ba.block_tokens = ec.sched.block_tokens;
    ba.replicas = ec.replicas;
    ba.seed = (uint64_t)cfg_int(cfg, "seed");
    ba.max_num_seqs = ec.sched.max_num_seqs;
    ba.max_batched_tokens = ec.sched.max_batched_tokens;
    ba.option = replay ? replay : cfg_bool(cfg, "op-timing") ? "op-timing" : NULL;
    if (fleet == NULL && (rc = be_open(&backend, ops, &ba, &err)) != SIM_OK)
        goto fail;

    /* the source */
    if ((rc = rt_source_open(cfg, &sa.t, &err)) != SIM_OK)
        goto fail;
    es.ctx = &sa;
    es.next = src_next;
    /* none for an open-loop source: the engine may then read it ahead */
    es.on_end = trace_has_followups(sa.t) ? src_on_end : NULL;

    /* the store */
    cfg_text = json_dumps(cfg, JSON_SORT_KEYS | JSON_COMPACT);
    db = cfg_str(cfg, "db");
    if (db[0]) {
        if ((rc = store_open(db, &st, &err)) != SIM_OK)
            goto fail;
        if ((rc = store_run_begin(st, kind, cfg_text, command, bp->ops->name, ba.seed, &run_id,
                                  &err)) != SIM_OK)
            goto fail;
        sink = store_sink(st);
        sinkp = &sink;
    }

    ps.t0 = rt_now_s();
    ps.tty = isatty(2);
    ec.progress = progress_cb;
    ec.progress_ctx = &ps;
    rc = eng_run(&ec, &es, bp, sinkp, &sum, &err);
    if (ps.printed && ps.tty)
        fprintf(stderr, "\n");
    if (rc != SIM_OK) {
        fleet_name_file(fleet_j, &err); /* the engine's own fleet checks */
        /* a row the results file refused: its file and SQLite's reason
         * (full disk, corruption, ...), not only "database error" */
        if (rc == SIM_EDB && st != NULL && store_errmsg(st)[0] != '\0')
            store_last_err(st, &err);
        goto fail;
    }
    sum.wall_s = rt_now_s() - ps.t0;
    sum.peak_mem_bytes = (int64_t)(sim_mem_peak() - mem_base);
    if (st && (rc = store_run_finish(st, &sum, &err)) != SIM_OK)
        goto fail;

    info = json_object();
    /* no results file, no run id: null, as every undefined figure */
    json_object_set_new(info, "run_id", run_id > 0 ? json_integer(run_id) : json_null());
    json_object_set_new(info, "db", json_string(db));
    json_object_set_new(info, "model", json_string(pc->model.name));
    json_object_set_new(info, "dtype", json_string(sim_dtype_name(pc->model.w_dtype)));
    json_object_set_new(info, "kv_dtype", json_string(sim_dtype_name(pc->model.kv_dtype)));
    json_object_set_new(info, "gpu", json_string(pc->gpu.name));
    json_object_set_new(info, "tp", json_integer(pc->tp));
    if (pc->pp > 1) {
        json_object_set_new(info, "pp", json_integer(pc->pp));
        json_object_set_new(info, "virtual_engines", json_integer(ec.replicas));
        json_object_set_new(info, "kv_blocks_per_engine", json_integer(pool.kv_blocks));
    }
    json_object_set_new(info, "replicas", json_integer(ec.replicas / pc->pp));
    /* one replica's, shared by its virtual engines (as --kv-blocks gives it) */
    json_object_set_new(info, "kv_blocks", json_integer(pool.kv_blocks * pc->pp));
    json_object_set_new(info, "block_tokens", json_integer(ec.sched.block_tokens));
    json_object_set_new(info, "backend", json_string(bp->ops->name));
    if (fleet) {
        int i, total = 0, engines = 0;
        for (i = 0; i < fleet->f.n_pools; i++) { /* replicas, not pp virtual engines */
            total += fleet->pools[i].replicas / fleet->rp[i].pctx.pp;
            engines += fleet->pools[i].replicas;
        }
        json_object_set_new(info, "replicas", json_integer(total));
        /* pp is each pool's (pools[]); the engines are counted over them */
        json_object_del(info, "pp");
        if (engines != total)
            json_object_set_new(info, "virtual_engines", json_integer(engines));
        else
            json_object_del(info, "virtual_engines");
        json_object_set_new(info, "pools", rt_fleet_info(fleet, fleet_j));
    }
    if (pool.model_layers > 0) { /* the model was cut: say so, never extrapolate */
        json_object_set_new(info, "layers", json_integer(pc->model.n_layers));
        json_object_set_new(info, "model_layers", json_integer(pool.model_layers));
    }
    if (rt_backend_measured(bp->ops))
        json_object_set_new(info, "measured", json_true());
    {
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) == 0) /* ru_maxrss is in KiB on Linux */
            json_object_set_new(info, "peak_rss_bytes",
                                json_integer((json_int_t)ru.ru_maxrss * 1024));
    }
    json_object_set_new(info, "calibration", json_string(calib_label(&pc->calib)));
    *sum_out = sum;
    *info_out = info;
    rc = SIM_OK;
    goto out;
fail:
    err_option_origin(&err, NULL, NULL);
    if (errp)
        *errp = err;
    if (st) {
        char buf[1200];
        sim_err_format(&err, buf, sizeof buf);
        store_run_fail(st, buf);
    }
out:
    store_close(st);
    trace_close(sa.t);
    be_close(&backend);
    rt_fleet_free(fleet);
    if (fleet == NULL)
        evict_oracle_destroy(pool.oracle);
    free(cfg_text);
    return rc;
}

int rt_run_config(json_t *cfg, int json, const char *command, const char *who, json_t *file_cfg,
                  const char *file) {
    met_summary sum;
    json_t *info = NULL;
    sim_err err;
    int rc;
    sim_err_clear(&err);
    rc = rt_run_exec(cfg, "run", command, &sum, &info, &err);
    if (rc != SIM_OK) {
        err_option_origin(&err, file_cfg, file);
        return rt_report_err(who, &err, rc);
    }
    if (sum.requests == 0) { /* a header-only trace: every figure undefined; say why */
        json_t *t = json_object_get(cfg, "trace");
        const char *src = json_is_string(t) && json_string_value(t)[0] ? json_string_value(t)
                                                                       : "the request source";
        fprintf(stderr,
                "kvfleet %s: warning: %s gave no requests; every latency and rate is undefined\n",
                who, src);
    }
    if (json) {
        json_t *o = summary_json(&sum);
        json_object_update(o, info);
        json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        printf("\n");
        json_decref(o);
    } else
        print_text(&sum, info, cfg);
    json_decref(info);
    return RT_EXIT_OK;
}

static void run_help(FILE *f) {
    size_t i;
    fprintf(f, "usage: kvfleet run [--config FILE] [OPTIONS] [--json]\n\n"
               "Replays a trace (or a synthetic source) through the simulated fleet and writes "
               "the results to SQLite.\nWithout options it replays the shipped Azure 2023 "
               "conversation trace with llama-3-8b on one h100-sxm.\n\noptions:\n");
    for (i = 0; i < N_RUN_OPTS; i++) {
        const rt_opt *o = &run_opts[i];
        /* the default from the table, unless the help already names it */
        if (o->def != NULL && o->def[0] != '\0' && strstr(o->help, "default") == NULL)
            fprintf(f, "  --%-20s %s [default: %s]\n", o->name, o->help, o->def);
        else
            fprintf(f, "  --%-20s %s\n", o->name, o->help);
    }
    fprintf(f, "  --%-20s %s\n  --%-20s %s\n  --%-20s %s\n", "config FILE",
            "saved JSON config; options given override it", "no-db", "write no results file",
            "json", "print the summary as one JSON object");
}

int rt_list_has_empty(const char *text) {
    const char *p;
    if (text[0] == '\0' || text[0] == ',')
        return 1;
    for (p = text; *p; p++)
        if (p[0] == ',' && (p[1] == ',' || p[1] == '\0'))
            return 1;
    return 0;
}

int rt_has_value(int argc, char **argv, int i) {
    return i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0;
}

int rt_parse_int(const char *text, long long lo, long long hi, long long *out) {
    char *end;
    long long v;
    errno = 0;
    v = strtoll(text, &end, 10);
    if (end == text || *end != '\0')
        return -1;
    /* an integer beyond 64 bits is of the right form, out of range */
    if (errno == ERANGE || v < lo || v > hi)
        return -2;
    if (errno != 0)
        return -1;
    *out = v;
    return 0;
}

int rt_parse_num(const char *text, double lo, double hi, double *out) {
    char *end;
    double v;
    errno = 0;
    v = sim_strtod(text, &end); /* decimal only: not "0x10", nan or inf */
    if (end == text || *end != '\0')
        return -1;
    /* a number beyond a double (1e400, 1e-400) is of the right form */
    if (errno == ERANGE || !(v >= lo && v <= hi))
        return -2;
    if (errno != 0)
        return -1;
    *out = v;
    return 0;
}

int rt_parse_duration_s(const char *text, double *out) {
    char *end;
    double v, unit_ns;
    errno = 0;
    v = sim_strtod(text, &end);
    if (end == text || (unit_ns = sim_duration_unit_ns(end)) == 0)
        return -1;
    if (errno == ERANGE || !isfinite(v * unit_ns))
        return -2;
    if (errno != 0)
        return -1;
    *out = v * unit_ns / 1e9;
    return 0;
}

int rt_value_exit(int parse_rc) {
    return parse_rc == -2 ? RT_EXIT_INPUT : RT_EXIT_USAGE;
}

double rt_now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

char *rt_join_argv(int argc, char **argv) {
    size_t n = sizeof "kvfleet", i, at;
    char *s;
    for (i = 0; i < (size_t)argc; i++)
        n += strlen(argv[i]) + 1;
    s = malloc(n);
    if (s == NULL)
        return NULL;
    memcpy(s, "kvfleet", sizeof "kvfleet" - 1);
    at = sizeof "kvfleet" - 1;
    for (i = 0; i < (size_t)argc; i++) {
        size_t len = strlen(argv[i]);
        s[at++] = ' ';
        memcpy(s + at, argv[i], len);
        at += len;
    }
    s[at] = '\0';
    return s;
}

int rt_config_option(const char *cmd, const char *path, json_t **base) {
    sim_err err;
    int rc;
    if (*base != NULL) { /* a second one would silently replace the first */
        fprintf(stderr, "kvfleet %s: --config: expected once, got a second '%s'\n", cmd, path);
        return RT_EXIT_USAGE;
    }
    if ((rc = rt_run_config_load(path, base, &err)) != SIM_OK) {
        (void)rt_report_err(cmd, &err, rc);
        return RT_EXIT_INPUT;
    }
    return RT_EXIT_OK;
}

/* Runs the run options rest[0..n) on top of base (borrowed; may be NULL;
 * read from base_file when that is not NULL) with rt_run_config(); who
 * names the command in messages. Returns the
 * exit code: 2 for a bad option, 1 for a value out of range. */
static int run_args(int n, char **rest, json_t *base, const char *base_file, int json,
                    const char *command, const char *who) {
    sim_err err;
    json_t *cfg = NULL, *from_file = NULL;
    int rc;
    sim_err_clear(&err);
    if ((rc = rt_run_args_over(n, rest, base, &cfg, &err)) != SIM_OK) {
        (void)rt_report_err(who, &err, rc);
        return rc == SIM_EPARSE ? RT_EXIT_INPUT : RT_EXIT_USAGE;
    }
    if (base_file != NULL) { /* the keys the file gave that the command line did not */
        json_t *given = NULL;
        sim_err e2;
        from_file = json_copy(base);
        if (from_file != NULL && rt_run_args(n, rest, NULL, &given, &e2) == SIM_OK) {
            const char *key;
            json_t *v;
            json_object_foreach(given, key, v) {
                json_object_del(from_file, key);
            }
        }
        json_decref(given);
    }
    rc = rt_run_config(cfg, json, command, who, from_file, base_file);
    json_decref(from_file);
    json_decref(cfg);
    return rc;
}

int rt_main_run(int argc, char **argv) {
    json_t *base = NULL;
    const char *config_path = NULL;
    int i, json = 0, rc, n = 0;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    char *command = rt_join_argv(argc, argv);
    if (rest == NULL || command == NULL) {
        free(rest);
        free(command);
        return RT_EXIT_RUNTIME;
    }
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            run_help(stdout);
            rc = RT_EXIT_OK;
            goto out;
        } else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--config") == 0 || strncmp(argv[i], "--config=", 9) == 0) {
            const char *path = argv[i][8] == '='             ? argv[i] + 9
                               : rt_has_value(argc, argv, i) ? argv[++i]
                                                             : NULL;
            if (path == NULL) {
                fprintf(stderr, "kvfleet run: --config: expected a file, got nothing\n");
                rc = RT_EXIT_USAGE;
                goto out;
            }
            if ((rc = rt_config_option("run", path, &base)) != RT_EXIT_OK)
                goto out;
            config_path = path;
        } else
            rest[n++] = argv[i];
    }
    rc = run_args(n, rest, base, config_path, json, command, "run");
out:
    json_decref(base);
    free(rest);
    free(command);
    return rc;
}

/* ---- predict ---- */

/* Limits of predict's shapes: any real batch fits, and no sum overflows. */
#define PREDICT_MAX_COUNT  1000000LL    /* a --decode BATCH, and all of them together */
#define PREDICT_MAX_TOKENS 1000000000LL /* a --prefill's TOKENS, and any CONTEXT */

/* A[@B]: A in 1..max_a, B in 0..PREDICT_MAX_TOKENS (required when need_b). */
static int parse_at(const char *s, long long max_a, long long *a, long long *b, int need_b) {
    const char *at = strchr(s, '@');
    char head[32];
    size_t n = at ? (size_t)(at - s) : strlen(s);
    if (n >= sizeof head)
        return -1;
    memcpy(head, s, n);
    head[n] = '\0';
    if (rt_parse_int(head, 1, max_a, a) != 0)
        return -1;
    *b = 0;
    if (at == NULL)
        return need_b ? -1 : 0;
    return rt_parse_int(at + 1, 0, PREDICT_MAX_TOKENS, b);
}

int rt_arg_in(const char *a, const char *const *names) {
    for (; *names != NULL; names++)
        if (strcmp(a, *names) == 0)
            return 1;
    return 0;
}

void rt_arg_refuse(const char *who, const char *a, const char *const *value_opts) {
    fprintf(stderr, "%s: %s: %s\n", who, a,
            rt_arg_in(a, value_opts) ? "expected a value, got nothing" : "unknown option");
}

/* predict's options that take a value. */
static const char *const predict_value_opts[] = {
    "--model", "--gpu", "--calibration", "--dtype",  "--kv-dtype",
    "--tp",    "--pp",  "--prefill",     "--decode", NULL};

int rt_main_predict(int argc, char **argv) {
    const char *model_name = "llama-3-8b", *gpu_name = "h100-sxm", *calib_name = "";
    const char *dtype = "", *kv_dtype = "";
    int tp = 1, pp = 1, json = 0, i, rc, op;
    perf_batch b;
    sim_model model;
    sim_gpu gpu;
    perf_calib calib;
    perf_ctx pctx;
    perf_result pr;
    sim_err err;
    const char *datadir = rt_datadir();
    memset(&b, 0, sizeof b);
    sim_err_clear(&err);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = rt_has_value(argc, argv, i) ? argv[i + 1] : NULL;
        long long x, y;
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf(
                "usage: kvfleet predict [--model M] [--gpu G] [--tp N] [--pp N] [--dtype bf16|fp8] "
                "[--kv-dtype bf16|fp8] [--calibration FILE|none]\n"
                "                        [--prefill TOKENS[@CONTEXT]]... [--decode "
                "BATCH@CONTEXT]... [--json]\n"
                "Predicted time of one step and its per-operator breakdown (seconds, all "
                "layers, one GPU's share; with --pp, step_s adds the activations' trips "
                "between stages).\n");
            return RT_EXIT_OK;
        }
        if (!rt_arg_in(a, predict_value_opts)) {
            fprintf(stderr, "kvfleet predict: unknown option '%s'\n", a);
            return RT_EXIT_USAGE;
        }
        if (v == NULL) {
            fprintf(stderr, "kvfleet predict: %s: expected a value, got nothing\n", a);
            return RT_EXIT_USAGE;
        }
        i++;
        if (strcmp(a, "--model") == 0)
            model_name = v;
        else if (strcmp(a, "--gpu") == 0)
            gpu_name = v;
        else if (strcmp(a, "--calibration") == 0)
            calib_name = v;
        else if (strcmp(a, "--dtype") == 0)
            dtype = v;
        else if (strcmp(a, "--kv-dtype") == 0)
            kv_dtype = v;
        else if (strcmp(a, "--tp") == 0 || strcmp(a, "--pp") == 0) {
            /* as run's parser: not an integer is usage (2), an integer
             * outside 1..INT_MAX (even beyond 64 bits) out of range (1) */
            long long n;
            int prc = rt_parse_int(v, 1, INT_MAX, &n);
            if (prc != 0) {
                fprintf(stderr, "kvfleet predict: %s: expected %s, got '%s'\n", a,
                        prc == -1 ? "an integer" : "an integer in 1..2147483647", v);
                return rt_value_exit(prc);
            }
            if (strcmp(a, "--tp") == 0)
                tp = (int)n;
            else
                pp = (int)n;
        } else if (strcmp(a, "--prefill") == 0) {
            if (parse_at(v, PREDICT_MAX_TOKENS, &x, &y, 0) != 0) {
                fprintf(stderr,
                        "kvfleet predict: --prefill: expected TOKENS[@CONTEXT] (TOKENS 1..%lld, "
                        "CONTEXT 0..%lld), got '%s'\n",
                        PREDICT_MAX_TOKENS, PREDICT_MAX_TOKENS, v);
                return RT_EXIT_USAGE;
            }
            perf_batch_add_prefill(&b, x, y, 1); /* counts the sequence too */
        } else if (strcmp(a, "--decode") == 0) {
            long long k;
            if (parse_at(v, PREDICT_MAX_COUNT - b.n_decode, &x, &y, 1) != 0 || y < 1) {
                fprintf(stderr,
                        "kvfleet predict: --decode: expected BATCH@CONTEXT (BATCH 1..%lld in "
                        "all, CONTEXT 1..%lld), got '%s'\n",
                        PREDICT_MAX_COUNT, PREDICT_MAX_TOKENS, v);
                return RT_EXIT_USAGE;
            }
            for (k = 0; k < x; k++)
                perf_batch_add_decode(&b, y);
        }
    }
    if (b.n_prefill == 0 && b.n_decode == 0) { /* an empty step has no time to predict */
        fprintf(stderr, "kvfleet predict: expected a step shape (--prefill TOKENS[@CONTEXT] or "
                        "--decode BATCH@CONTEXT, kvfleet predict --help), got none\n");
        return RT_EXIT_USAGE;
    }
    if ((rc = sim_model_load(model_name, datadir, &model, &err)) != SIM_OK)
        goto fail;
    window_note(&model);
    if ((rc = model_dtypes(&model, dtype, kv_dtype, &err)) != SIM_OK)
        goto fail;
    if ((rc = sim_gpu_load(gpu_name, datadir, &gpu, &err)) != SIM_OK)
        goto fail;
    if ((rc = sim_model_check(&model, tp, &err)) != SIM_OK)
        goto fail;
    if ((rc = calib_choose(calib_name, &gpu, datadir, &calib, &err)) != SIM_OK)
        goto fail;
    if ((rc = perf_ctx_init(&pctx, &model, &gpu, &calib, tp, &err)) != SIM_OK)
        goto fail;
    if ((rc = perf_ctx_set_pp(&pctx, pp, &err)) != SIM_OK) {
        char m[600];
        sim_err_format(&err, m, sizeof m);
        fprintf(stderr, "kvfleet predict: %s\n", m);
        return rt_exit_code(rc);
    }
    if ((rc = ctx_collectives(&pctx, datadir, calib_name, &err)) != SIM_OK)
        goto fail;
    if (sim_model_weight_bytes(&model, tp) / pp > gpu.hbm_bytes)
        fprintf(stderr,
                "kvfleet predict: note: %s at TP%d PP%d has %.1f GB of weights per GPU, more "
                "than the %.1f GB of HBM of %s; predicting anyway\n",
                model.name, tp, pp, sim_model_weight_bytes(&model, tp) / pp / 1e9,
                gpu.hbm_bytes / 1e9, gpu.name);
    perf_predict(&pctx, &b, &pr);
    if (!isfinite(pr.step_s)) {
        /* a value in the GPU or calibration file far outside any real one */
        sim_err_set(&err, "", 0, 0,
                    "the predicted step time is not finite (%g s): check the GPU file of %s and "
                    "the calibration (%s) for absurd values",
                    pr.step_s, gpu.name, calib_name[0] ? calib_name : "the shipped one");
        rc = SIM_EINVAL;
        goto fail;
    }
    if (json) {
        json_t *o = json_object(), *ops = json_object();
        for (op = 0; op < PERF_N_OPS; op++)
            json_object_set_new(ops, perf_op_name((enum perf_op)op), json_real(pr.op_s[op]));
        json_object_set_new(o, "step_s", json_real(pr.step_s));
        json_object_set_new(o, "ops", ops);
        json_object_set_new(o, "flops", json_real(pr.flops));
        json_object_set_new(o, "bytes", json_real(pr.bytes));
        json_object_set_new(o, "intensity",
                            pr.bytes > 0 ? json_real(pr.flops / pr.bytes) : json_null());
        json_object_set_new(o, "balance", json_real(pctx.peak / gpu.hbm_bw));
        json_object_set_new(o, "bound", json_string(perf_bound_name(pr.bound)));
        /* as run's "calibration": what fitted the model, or the datasheet */
        json_object_set_new(o, "calibration", json_string(calib_label(&calib)));
        json_dumpf(o, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
        printf("\n");
        json_decref(o);
    } else {
        printf("%s on %s (TP%d): step %.3f ms, bound by %s, %.1f FLOP/byte (balance %.1f)\n",
               model.name, gpu.name, tp, pr.step_s * 1e3, perf_bound_name(pr.bound),
               pr.bytes > 0 ? pr.flops / pr.bytes : 0.0, pctx.peak / gpu.hbm_bw);
        if (calib.gpu[0] == 0)
            print_datasheet_note(gpu.name, strcmp(calib_name, "none") == 0);
        for (op = 0; op < PERF_N_OPS; op++)
            printf("  %-13s %10.4f ms\n", perf_op_name((enum perf_op)op), pr.op_s[op] * 1e3);
    }
    return RT_EXIT_OK;
fail:
    return rt_report_err("predict", &err, rc);
}

/* ---- trace stats ---- */

int rt_main_trace(int argc, char **argv) {
    const char *path = NULL, *spec = NULL, *fmt_s = "auto";
    enum trace_format fmt;
    trace_opts to;
    int json = 0, i, rc;
    sim_err err;
    sim_err_clear(&err);
    trace_opts_default(&to);
    static const char usage[] =
        "usage: kvfleet trace stats FILE|--synthetic SPEC [--trace-format F] "
        "[--limit N] [--load-scale X] [--seed S] [--json]\n";
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage, stdout);
        return RT_EXIT_OK;
    }
    if (argc < 2 || strcmp(argv[1], "stats") != 0) {
        fputs(usage, stderr);
        return RT_EXIT_USAGE;
    }
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            printf("Requests, duration, rate, length percentiles and sessions of a trace or a "
                   "--synthetic source (docs/cli.md).\n");
            return RT_EXIT_OK;
        }
        if (strcmp(a, "--json") == 0)
            json = 1;
        else if (strncmp(a, "--", 2) == 0 && rt_has_value(argc, argv, i)) {
            const char *v = argv[++i];
            if (strcmp(a, "--trace-format") == 0)
                fmt_s = v;
            else if (strcmp(a, "--synthetic") == 0)
                spec = v;
            else if (strcmp(a, "--limit") == 0 || strcmp(a, "--seed") == 0) {
                long long n;
                if ((rc = rt_parse_int(v, 0, LLONG_MAX, &n)) != 0) {
                    fprintf(stderr,
                            "kvfleet trace stats: %s: expected an integer from 0 to "
                            "9223372036854775807, got '%s'\n",
                            a, v);
                    return rt_value_exit(rc); /* -1: out of range, 1 (as in run) */
                }
                if (strcmp(a, "--limit") == 0)
                    to.limit = n;
                else
                    to.seed = (uint64_t)n;
            } else if (strcmp(a, "--load-scale") == 0) {
                if ((rc = rt_parse_num(v, -DBL_MAX, DBL_MAX, &to.load_scale)) != 0 ||
                    !(to.load_scale > 0)) {
                    fprintf(stderr,
                            "kvfleet trace stats: --load-scale: expected a number > 0, got '%s'\n",
                            v);
                    /* 1e400 is of a number's form, out of range: 1, as in run */
                    return rc != 0 ? rt_value_exit(rc) : RT_EXIT_INPUT;
                }
            } else {
                fprintf(stderr, "kvfleet trace stats: unknown option '%s'\n", a);
                return RT_EXIT_USAGE;
            }
        } else if (strncmp(a, "--", 2) != 0 && path == NULL)
            path = a;
        else if (strcmp(a, "--trace-format") == 0 || strcmp(a, "--synthetic") == 0 ||
                 strcmp(a, "--limit") == 0 || strcmp(a, "--seed") == 0 ||
                 strcmp(a, "--load-scale") == 0) { /* its value missing */
            fprintf(stderr, "kvfleet trace stats: %s: expected a value, got nothing\n", a);
            return RT_EXIT_USAGE;
        } else {
            fprintf(stderr, "kvfleet trace stats: unexpected argument '%s'\n", a);
            return RT_EXIT_USAGE;
        }
    }
    if (path == NULL && spec == NULL) {
        fprintf(stderr, "kvfleet trace stats: give a FILE or --synthetic SPEC\n");
        return RT_EXIT_USAGE;
    }
    /* as in run: both sources, or an unknown format, is bad input */
    if (path != NULL && spec != NULL) {
        fprintf(stderr, "kvfleet trace stats: a FILE and --synthetic: give one source, not both\n");
        return RT_EXIT_INPUT;
    }
    if (trace_format_parse(fmt_s, &fmt) != SIM_OK) {
        fprintf(stderr,
                "kvfleet trace stats: --trace-format: expected azure|vidur|mooncake|sessions|auto, "
                "got '%s'\n",
                fmt_s);
        return RT_EXIT_INPUT;
    }
    if (spec != NULL && fmt != TRACE_FMT_AUTO) {
        fprintf(stderr, "kvfleet trace stats: " RT_SYNTH_FORMAT_MSG "\n", fmt_s);
        return RT_EXIT_INPUT;
    }
    rc = trace_stats_print(stdout, path, spec, fmt, &to, json, &err);
    if (rc != SIM_OK) {
        return rt_report_err("trace stats", &err, rc);
    }
    return RT_EXIT_OK;
}

/* ---- rerun ---- */

int rt_main_rerun(int argc, char **argv) {
    char *text = NULL, *command;
    long long run_id;
    json_t *cfg;
    json_error_t je;
    sim_err err;
    int rc, json = 0, i, n = 0;
    char **rest;
    sim_err_clear(&err);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: kvfleet rerun DB RUN_ID [run options] [--json]\n"
               "Runs the stored config of run RUN_ID of the results file DB again, appending a "
               "new run to DB (or to --db); run options given override the stored ones.\n");
        return RT_EXIT_OK;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: kvfleet rerun DB RUN_ID [run options] [--json]\n");
        return RT_EXIT_USAGE;
    }
    if ((rc = rt_parse_int(argv[2], 1, LLONG_MAX, &run_id)) != 0) {
        fprintf(stderr, "kvfleet rerun: RUN_ID: expected a positive integer, got '%s'\n", argv[2]);
        return rt_value_exit(rc);
    }
    if ((rc = store_run_config(argv[1], run_id, &text, &err)) != SIM_OK) {
        return rt_report_err("rerun", &err, rc);
    }
    cfg = json_loads(text, 0, &je);
    sim_free(text);
    if (cfg == NULL || !json_is_object(cfg)) {
        fprintf(stderr, "kvfleet rerun: run %lld: stored config is not a JSON object\n", run_id);
        json_decref(cfg);
        return RT_EXIT_INPUT;
    }
    /* results go to the same file unless --db says otherwise */
    json_object_set_new(cfg, "db", json_string(argv[1]));
    rest = calloc((size_t)argc, sizeof *rest);
    command = rt_join_argv(argc, argv);
    if (rest == NULL || command == NULL) {
        free(rest);
        free(command);
        json_decref(cfg);
        return RT_EXIT_RUNTIME;
    }
    for (i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else
            rest[n++] = argv[i];
    }
    rc = run_args(n, rest, cfg, NULL, json, command, "rerun");
    json_decref(cfg);
    free(rest);
    free(command);
    return rc;
}
