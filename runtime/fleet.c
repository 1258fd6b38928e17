/* fleet.c: a fleet file turned into the engine's fleet (see fleet.h). */
#include "config.h"
#include "fleet.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "backends.h"
#include "datadir.h"
#include "hw.h"
#include "json_util.h"
#include "mem.h"
#include "num.h"
#include "model.h"

/* The longest round trip a population may have to a region, in seconds: far
 * above any real one, and small enough that arrival plus half of it stays
 * inside the simulated horizon's nanoseconds (1e12 s overflowed them). */
#define FLEET_RTT_MAX_S 3600.0

/* run options a pool may set for its own replicas */
static const char *const pool_keys[] = {
    "model",
    "gpu",
    "tp",
    "dtype",
    "kv-dtype",
    "max-num-seqs",
    "max-batched-tokens",
    "block-tokens",
    "policy",
    "hash-block-tokens",
    "host-cache-gib",
    "miss",
    "preemption",
    "swap-space-gib",
    "swap-gather",
    "kv-blocks",
    "gpu-mem-util",
    "watermark",
    "chunked-prefill",
    "sched-policy",
    "engine-overhead",
    "max-queue",
    "max-queue-time",
    "calibration",
    "remote-pool-gib",
    "remote-pool-nics",
    "remote-pool-write",
};

static const char *const router_names[] = {"round-robin", "least-outstanding", "least-kv",
                                           "session", "prefix"};

int rt_router_parse(const char *name, int *out) {
    int i;
    for (i = 0; i < (int)(sizeof router_names / sizeof router_names[0]); i++)
        if (strcmp(name, router_names[i]) == 0) {
            *out = i;
            return SIM_OK;
        }
    return SIM_EINVAL;
}

static int pool_key_ok(const char *k) {
    size_t i;
    for (i = 0; i < sizeof pool_keys / sizeof pool_keys[0]; i++)
        if (strcmp(pool_keys[i], k) == 0)
            return 1;
    return 0;
}

/* Index of key in an object's key order (jansson keeps insertion order). */
static int obj_index(json_t *obj, const char *key) {
    const char *k;
    json_t *v;
    int i = 0;
    json_object_foreach(obj, k, v) {
        (void)v;
        if (strcmp(k, key) == 0)
            return i;
        i++;
    }
    return -1;
}

/* Writes the object's keys as "a, b, c" into buf. */
static void obj_keys(json_t *obj, char *buf, size_t n) {
    const char *k;
    json_t *v;
    size_t used = 0;
    buf[0] = '\0';
    json_object_foreach(obj, k, v) {
        (void)v;
        int w = snprintf(buf + used, n - used, "%s%s", used ? ", " : "", k);
        if (w < 0 || (size_t)w >= n - used)
            break;
        used += (size_t)w;
    }
}

/* A shallow copy of obj with its keys in byte order (strcmp); obj itself
 * when it is not an object (NULL stays NULL); returns a new reference, or
 * NULL when out of memory. The engine's region, population and model
 * indices follow the key order, and draws by cumulative weight depend on
 * it: in name order, a file and the same file with its keys reordered (as
 * runs.config stores it, sorted) give the same run. */
static json_t *sorted_copy(json_t *obj) {
    const char **keys, *k;
    json_t *v, *out;
    size_t n = 0, i;
    if (!json_is_object(obj))
        return json_incref(obj);
    keys = SIM_NEW_ARRAY(const char *, json_object_size(obj) + 1);
    out = json_object();
    if (keys == NULL || out == NULL) {
        sim_free(keys);
        json_decref(out);
        return NULL;
    }
    json_object_foreach(obj, k, v) {
        (void)v;
        keys[n++] = k;
    }
    qsort(keys, n, sizeof *keys, sim_cmp_str);
    for (i = 0; i < n; i++)
        if (json_object_set(out, keys[i], json_object_get(obj, keys[i])) != 0) {
            json_decref(out);
            out = NULL;
            break;
        }
    sim_free(keys);
    return out;
}

/* Sets a "fleet" error and returns rc. */
static int bad(sim_err *err, int rc, const char *fmt, ...) {
    char msg[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sim_err_set(err, "fleet", 0, 0, "%s", msg);
    return rc;
}

static int num_ge0(json_t *v, double *out) {
    if (!json_is_number(v))
        return 0;
    *out = json_number_value(v);
    return *out >= 0 && isfinite(*out);
}

/* num_ge0 for a price of one GPU-hour: at most RT_MAX_GPU_PRICE. */
static int price_ok(json_t *v, double *out) {
    return num_ge0(v, out) && *out <= RT_MAX_GPU_PRICE;
}

/* Refuses a key of obj not in known (NULL-terminated), naming it by its
 * path "where.key" (where "" at the top level) with the keys expected. */
static int check_keys(json_t *obj, const char *const *known, const char *where, sim_err *err) {
    char list[256];
    const char *k = sim_json_unknown_key(obj, known, list, sizeof list);
    if (k == NULL)
        return SIM_OK;
    return bad(err, SIM_EINVAL, "%s%s%s: unknown key (expected %s)", where, where[0] ? "." : "", k,
               list);
}

/* *out = obj's integer under key, or def when the key is absent; 0 (with
 * *err naming where.key and the range) when it is present but no integer. */
static int int_or(json_t *obj, const char *key, json_int_t def, const char *where,
                  const char *range, json_int_t *out, sim_err *err) {
    json_t *v = json_object_get(obj, key);
    if (v != NULL && !json_is_integer(v)) {
        sim_err_set(err, "fleet", 0, 0, "%s.%s: expected an integer %s", where, key, range);
        return 0;
    }
    *out = v != NULL ? json_integer_value(v) : def;
    return 1;
}

/* Weights drawn in proportion need a finite sum above 0 (an all-zero set
 * would divide by zero); SIM_OK, or SIM_EINVAL naming the key. */
static int positive_sum(double total, const char *key, const char *what, const char *one,
                        sim_err *err) {
    if (total > 0 && isfinite(total))
        return SIM_OK;
    return bad(err, SIM_EINVAL,
               "%s: expected %s with a finite sum > 0 (at least one %s above 0), got a sum of %g",
               key, what, one, total);
}

/* Checks every region: its keys, its supply per GPU kind (integer counts
 * >= 0) and its prices per kind (numbers >= 0), every kind a known one: a
 * preset's name, or the GPU of one of the fleet's pools (its options'
 * "gpu", its own, else the run's), which may be a file of no preset. A
 * pool's GPU that cannot be loaded is left to the pool's own setup, which
 * says why. */
static int check_regions(json_t *regions, json_t *pools, json_t *cfg, sim_err *err) {
    static const char *const region_keys[] = {"gpus", "usd_per_gpu_hour", NULL};
    char known[1024], dir[4200];
    const char *rk, *k;
    json_t *rg, *v;
    size_t i, used;

    snprintf(dir, sizeof dir, "%s/gpus", rt_datadir());
    if (sim_json_preset_list(dir, known, sizeof known) != SIM_OK)
        return bad(err, SIM_ENOMEM, "out of memory");
    used = strlen(known);
    for (i = 0; i < json_array_size(pools); i++) {
        json_t *pj = json_array_get(pools, i);
        const char *g = json_string_value(json_object_get(json_object_get(pj, "options"), "gpu"));
        sim_gpu gpu;
        sim_err e;
        if (g == NULL)
            g = json_string_value(json_object_get(pj, "gpu"));
        if (g == NULL)
            g = json_string_value(json_object_get(cfg, "gpu"));
        if (g != NULL && sim_gpu_load(g, rt_datadir(), &gpu, &e) == SIM_OK &&
            !sim_name_in_list(known, gpu.name) && used < sizeof known)
            used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "",
                                     gpu.name);
    }
    json_object_foreach(regions, rk, rg) {
        json_t *gp = json_object_get(rg, "gpus"), *pr = json_object_get(rg, "usd_per_gpu_hour");
        char where[300];
        int rc;
        snprintf(where, sizeof where, "regions.%s", rk);
        if (!json_is_object(rg))
            return bad(err, SIM_EINVAL, "%s: expected an object {\"gpus\": {...}, ...}", where);
        if ((rc = check_keys(rg, region_keys, where, err)) != SIM_OK)
            return rc;
        if (gp && !json_is_object(gp))
            return bad(err, SIM_EINVAL,
                       "%s.gpus: expected an object of GPU kind: count, e.g. {\"h100-sxm\": 8}",
                       where);
        if (pr && !json_is_object(pr))
            return bad(err, SIM_EINVAL,
                       "%s.usd_per_gpu_hour: expected an object of GPU kind: USD per GPU-hour, "
                       "e.g. {\"h100-sxm\": 2.5}",
                       where);
        json_object_foreach(gp, k, v) {
            if (!sim_name_in_list(known, k))
                return bad(err, SIM_EINVAL, "%s.gpus.%s: unknown GPU kind (known: %s)", where, k,
                           known);
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                return bad(err, SIM_EINVAL, "%s.gpus.%s: expected a GPU count >= 0", where, k);
        }
        json_object_foreach(pr, k, v) {
            double price;
            if (!sim_name_in_list(known, k))
                return bad(err, SIM_EINVAL, "%s.usd_per_gpu_hour.%s: unknown GPU kind (known: %s)",
                           where, k, known);
            if (!price_ok(v, &price))
                return bad(err, SIM_EINVAL, "%s.usd_per_gpu_hour.%s: expected a price in 0..%g",
                           where, k, RT_MAX_GPU_PRICE);
        }
    }
    return SIM_OK;
}

/* Refuses a pool's region, model or gpu that is present but no string:
 * read as a string, it was a missing name, so a "gpu" of 5 fell back to
 * the run's GPU without a word, and a "model" of 5 was reported as ''. */
static int check_pool_names(json_t *pools, sim_err *err) {
    static const struct {
        const char *key, *what;
    } names[] = {{"region", "the name of a region"},
                 {"model", "a model preset name or a path to a config.json"},
                 {"gpu", "a GPU preset name or a path to a GPU file"}};
    size_t i, j;
    for (i = 0; i < json_array_size(pools); i++)
        for (j = 0; j < sizeof names / sizeof names[0]; j++) {
            json_t *v = json_object_get(json_array_get(pools, i), names[j].key);
            char got[SIM_JSON_RENDER_MAX + 8];
            if (v == NULL || json_is_string(v))
                continue;
            sim_json_render(v, got, sizeof got);
            return bad(err, SIM_EINVAL, "pools[%zu].%s: expected %s, got '%s'", i, names[j].key,
                       names[j].what, got);
        }
    return SIM_OK;
}

void rt_fleet_free(rt_fleet *f) {
    int i;
    if (f == NULL)
        return;
    for (i = 0; i < f->f.n_pools; i++) {
        if (f->bes)
            be_close(&f->bes[i]);
        if (f->names)
            free(f->names[i]);
    }
    sim_free(f->pools);
    sim_free(f->rp);
    sim_free(f->bes);
    sim_free(f->pop_weight);
    sim_free(f->rtt_s);
    sim_free(f->model_weight);
    sim_free(f->supply);
    sim_free(f->names);
    sim_free(f);
}

/* rt_fleet_build's work, with the file's regions, populations and models
 * (NULL when absent) given in name order. */
static int build(json_t *fleet, json_t *regions, json_t *pops, json_t *models, json_t *cfg,
                 const struct be_ops *ops, rt_fleet **out, sim_err *err) {
    rt_fleet *F;
    json_t *pools, *v, *as;
    const char *k;
    int nr, np, nm, n, i, j, rc = SIM_EINVAL;
    char list[512];
    int own_models = 0, kv_nvlink = 0;

    *out = NULL;
    if (!json_is_object(fleet))
        return bad(err, SIM_EINVAL,
                   "expected a JSON object of regions, populations, models, pools, ... at the top "
                   "level, got %s",
                   json_is_array(fleet) ? "an array" : "a scalar");
    if (ops != &be_sim_ops)
        return bad(err, SIM_EINVAL, "--fleet: only the sim backend runs a fleet, got --backend %s",
                   ops->name);
    {
        static const char *const top[] = {"regions",     "populations", "models",     "pools",
                                          "router",      "scope",       "autoscaler", "max_queue",
                                          "description", "kv_link",     "source",     NULL};
        if ((rc = check_keys(fleet, top, "", err)) != SIM_OK)
            return rc;
    }
    pools = json_object_get(fleet, "pools");
    if ((v = json_object_get(fleet, "description")) != NULL && !json_is_string(v))
        return bad(err, SIM_EINVAL, "description: expected a string");
    if (!json_is_object(regions) || json_object_size(regions) == 0)
        return bad(err, SIM_EINVAL, "regions: expected an object of regions, got %s",
                   regions ? "something else" : "nothing");
    if (!json_is_array(pools) || json_array_size(pools) == 0)
        return bad(err, SIM_EINVAL, "pools: expected a non-empty array, got %s",
                   pools ? "something else" : "nothing");
    if ((rc = check_pool_names(pools, err)) != SIM_OK)
        return rc;
    if ((rc = check_regions(regions, pools, cfg, err)) != SIM_OK)
        return rc;
    nr = (int)json_object_size(regions);
    n = (int)json_array_size(pools);
    if (pops && (!json_is_object(pops) || json_object_size(pops) == 0))
        return bad(err, SIM_EINVAL, "populations: expected a non-empty object");
    np = pops ? (int)json_object_size(pops) : 1;
    if (models && (!json_is_object(models) || json_object_size(models) == 0))
        return bad(err, SIM_EINVAL, "models: expected an object of model: share");
    if (models == NULL) { /* every model a pool serves, equal shares */
        models = json_object();
        own_models = 1;
        for (i = 0; i < n; i++) {
            const char *m = json_string_value(json_object_get(json_array_get(pools, i), "model"));
            if (m && json_object_get(models, m) == NULL)
                json_object_set_new(models, m, json_real(1.0));
        }
        if (json_object_size(models) == 0) {
            json_decref(models);
            return bad(err, SIM_EINVAL, "pools: expected each pool to name a model");
        }
    }
    nm = (int)json_object_size(models);
    if ((v = json_object_get(fleet, "kv_link")) != NULL) {
        const char *kl = json_string_value(v);
        if (kl && strcmp(kl, "nvlink") == 0)
            kv_nvlink = 1;
        else if (!(kl && strcmp(kl, "ib") == 0)) {
            if (own_models)
                json_decref(models);
            return bad(err, SIM_EINVAL, "kv_link: expected ib or nvlink");
        }
    }

    F = SIM_NEW(rt_fleet);
    if (F == NULL)
        goto oom;
    F->pools = SIM_NEW_ARRAY(eng_pool, (size_t)n);
    F->rp = SIM_NEW_ARRAY(rt_pool, (size_t)n);
    F->bes = SIM_NEW_ARRAY(be, (size_t)n);
    F->names = SIM_NEW_ARRAY(char *, (size_t)n);
    F->pop_weight = SIM_NEW_ARRAY(double, (size_t)np);
    F->rtt_s = SIM_NEW_ARRAY(double, (size_t)np *(size_t)nr);
    F->model_weight = SIM_NEW_ARRAY(double, (size_t)nm);
    F->supply = SIM_NEW_ARRAY(int64_t, (size_t)n); /* one per pool at most */
    if (!F->pools || !F->rp || !F->bes || !F->names || !F->pop_weight || !F->rtt_s ||
        !F->model_weight || !F->supply)
        goto oom;
    F->f.n_pools = 0; /* counts pools whose executor is open, for rt_fleet_free */

    /* populations and their round trips */
    if (pops == NULL) {
        F->pop_weight[0] = 1;
        for (j = 0; j < nr; j++)
            F->rtt_s[j] = 0;
    } else {
        static const char *const pop_keys[] = {"weight", "rtt_s", NULL};
        json_t *p;
        double total = 0;
        i = 0;
        json_object_foreach(pops, k, p) {
            json_t *rtt = json_object_get(p, "rtt_s");
            const char *rk;
            json_t *rv;
            char where[300];
            snprintf(where, sizeof where, "populations.%s", k);
            if (!json_is_object(p)) {
                rc = bad(err, SIM_EINVAL,
                         "%s: expected an object {\"weight\": W, \"rtt_s\": {...}}", where);
                goto fail;
            }
            if ((rc = check_keys(p, pop_keys, where, err)) != SIM_OK)
                goto fail;
            if (!num_ge0(json_object_get(p, "weight"), &F->pop_weight[i])) {
                rc = bad(err, SIM_EINVAL, "populations.%s.weight: expected a number >= 0", k);
                goto fail;
            }
            total += F->pop_weight[i];
            if (!json_is_object(rtt)) {
                rc = bad(err, SIM_EINVAL,
                         "populations.%s.rtt_s: expected an object of region: seconds", k);
                goto fail;
            }
            json_object_foreach(rtt, rk, rv) {
                (void)rv;
                if (json_object_get(regions, rk) == NULL) {
                    obj_keys(regions, list, sizeof list);
                    sim_err_set(err, "fleet", 0, 0,
                                "populations.%s.rtt_s.%s: unknown region (known: %s)", k, rk, list);
                    goto fail;
                }
            }
            j = 0;
            json_object_foreach(regions, rk, rv) {
                double r;
                (void)rv;
                if (!num_ge0(json_object_get(rtt, rk), &r) || r > FLEET_RTT_MAX_S) {
                    sim_err_set(err, "fleet", 0, 0,
                                "populations.%s.rtt_s.%s: expected a round trip in seconds in "
                                "[0, %g], got %s",
                                k, rk, FLEET_RTT_MAX_S,
                                !json_object_get(rtt, rk) ? "nothing"
                                : r > FLEET_RTT_MAX_S     ? "more"
                                                          : "a negative or non-number");
                    goto fail;
                }
                F->rtt_s[(size_t)i * (size_t)nr + (size_t)j++] = r;
            }
            i++;
        }
        /* the engine draws a population in proportion to the weights */
        if ((rc = positive_sum(total, "populations", "weights", "population weighing", err)) !=
            SIM_OK)
            goto fail;
    }
    /* model shares, drawn in proportion like the populations */
    {
        double total = 0;
        i = 0;
        json_object_foreach(models, k, v) {
            for (j = 0; j < n; j++) {
                const char *m =
                    json_string_value(json_object_get(json_array_get(pools, j), "model"));
                if (m && strcmp(m, k) == 0)
                    break;
            }
            if (j == n) { /* a typo, or a model no pool serves: either way unusable */
                char known[1024], dir[4200];
                snprintf(dir, sizeof dir, "%s/models", rt_datadir());
                if (sim_json_preset_list(dir, known, sizeof known) == SIM_OK &&
                    !sim_name_in_list(known, k)) {
                    rc = bad(err, SIM_EINVAL, "models.%s: unknown model (known: %s)", k, known);
                    goto fail;
                }
            }
            if (!num_ge0(v, &F->model_weight[i])) {
                rc = bad(err, SIM_EINVAL, "models.%s: expected a share >= 0", k);
                goto fail;
            }
            total += F->model_weight[i];
            i++;
        }
        if ((rc = positive_sum(total, "models", "shares", "model with a share", err)) != SIM_OK)
            goto fail;
    }

    /* pools */
    for (i = 0; i < n; i++) {
        json_t *pj = json_array_get(pools, i), *pc, *opts;
        eng_pool *ep = &F->pools[i];
        const char *region, *model, *name, *gpu;
        json_int_t reps, mn, mx;
        int ri, mi, s;
        char where[64];
        snprintf(where, sizeof where, "pools[%d]", i);
        if (!json_is_object(pj)) {
            rc = bad(err, SIM_EINVAL, "%s: expected an object", where);
            goto fail;
        }
        {
            static const char *const pk[] = {"name", "region",   "model",        "gpu",
                                             "tp",   "replicas", "min_replicas", "max_replicas",
                                             "role", "pp",       "options",      NULL};
            if ((rc = check_keys(pj, pk, where, err)) != SIM_OK)
                goto fail;
        }
        region = json_string_value(json_object_get(pj, "region"));
        model = json_string_value(json_object_get(pj, "model"));
        gpu = json_string_value(json_object_get(pj, "gpu"));
        name = json_string_value(json_object_get(pj, "name"));
        if (json_object_get(pj, "name") && (name == NULL || name[0] == '\0')) {
            rc = bad(err, SIM_EINVAL, "%s.name: expected a non-empty string", where);
            goto fail;
        }
        for (s = 0; name && s < i; s++)
            if (strcmp(F->names[s], name) == 0) {
                rc = bad(err, SIM_EINVAL, "%s.name: '%s' is the name of pools[%d] too", where, name,
                         s);
                goto fail;
            }
        if (region == NULL || (ri = obj_index(regions, region)) < 0) {
            obj_keys(regions, list, sizeof list);
            sim_err_set(err, "fleet", 0, 0, "%s.region: expected one of: %s, got '%s'", where, list,
                        region ? region : "");
            goto fail;
        }
        if (model == NULL || (mi = obj_index(models, model)) < 0) {
            obj_keys(models, list, sizeof list);
            sim_err_set(err, "fleet", 0, 0, "%s.model: expected one of the models: %s, got '%s'",
                        where, list, model ? model : "");
            goto fail;
        }
        if (!json_is_integer(json_object_get(pj, "replicas")) ||
            (reps = json_integer_value(json_object_get(pj, "replicas"))) < 0 || reps > 100000) {
            sim_err_set(err, "fleet", 0, 0, "%s.replicas: expected an integer 0..100000", where);
            goto fail;
        }
        /* absent: replicas; present: an integer (3.0, 1.5 or "3" are refused) */
        if (!int_or(pj, "min_replicas", reps, where, "0..100000", &mn, err) ||
            !int_or(pj, "max_replicas", reps, where, "1..100000", &mx, err))
            goto fail;
        if (mn < 0 || mx < reps || mx < 1 || mn > mx || mx > 100000) {
            sim_err_set(err, "fleet", 0, 0,
                        "%s: expected 0 <= min_replicas <= max_replicas, replicas <= "
                        "max_replicas <= 100000 and max_replicas >= 1",
                        where);
            goto fail;
        }
        /* the pool's config: the run's, with the pool's fields and options */
        pc = json_deep_copy(cfg);
        if (pc == NULL)
            goto oom;
        json_object_del(pc, "fleet");
        json_object_set_new(pc, "model", json_string(model));
        if (gpu)
            json_object_set_new(pc, "gpu", json_string(gpu));
        if (json_object_get(pj, "tp"))
            json_object_set(pc, "tp", json_object_get(pj, "tp"));
        if (json_object_get(pj, "pp"))
            json_object_set(pc, "pp", json_object_get(pj, "pp"));
        if (json_object_get(fleet, "max_queue"))
            json_object_set(pc, "max-queue", json_object_get(fleet, "max_queue"));
        opts = json_object_get(pj, "options");
        if (opts && !json_is_object(opts)) {
            json_decref(pc);
            rc = bad(err, SIM_EINVAL, "%s.options: expected an object of run options", where);
            goto fail;
        }
        json_object_foreach(opts, k, v) {
            if (!pool_key_ok(k)) {
                json_decref(pc);
                sim_err_set(err, "fleet", 0, 0,
                            "%s.options.%s: not a per-pool option (docs/fleet.md lists them)",
                            where, k);
                goto fail;
            }
            json_object_set(pc, k, v);
        }
        {
            sim_err e2;
            sim_err_clear(&e2);
            if ((rc = rt_run_resolve(pc, &e2)) == SIM_OK)
                rc = rt_pool_setup(pc, ops, NULL, &F->rp[i], &e2);
            if (rc != SIM_OK) {
                char m[SIM_ERR_TEXT_MAX];
                sim_err_format(&e2, m, sizeof m);
                sim_err_set(err, "fleet", 0, 0, "%s (%s): %s", where, name ? name : model, m);
                json_decref(pc);
                goto fail;
            }
        }
        /* the GPU supply of its kind in its region, and the price */
        {
            json_t *rg = json_object_get(regions, region);
            json_t *gp = json_object_get(rg, "gpus");
            json_t *pr = json_object_get(rg, "usd_per_gpu_hour");
            const char *kind = F->rp[i].pctx.gpu.name;
            json_t *cnt = json_object_get(gp, kind);
            double price = NAN;
            if (!json_is_integer(cnt) || json_integer_value(cnt) < 1) {
                sim_err_set(err, "fleet", 0, 0,
                            "regions.%s.gpus.%s: expected a GPU count >= 1 for pool %s (region %s "
                            "has no %s GPUs)",
                            region, kind, name ? name : where, region, kind);
                json_decref(pc);
                goto fail;
            }
            if (pr && json_object_get(pr, kind) && !price_ok(json_object_get(pr, kind), &price)) {
                sim_err_set(err, "fleet", 0, 0,
                            "regions.%s.usd_per_gpu_hour.%s: expected a price in 0..%g", region,
                            kind, RT_MAX_GPU_PRICE);
                json_decref(pc);
                goto fail;
            }
            /* one supply entry per (region, kind): reuse an earlier pool's */
            for (s = 0; s < i; s++)
                if (F->pools[s].region == ri && strcmp(F->rp[s].pctx.gpu.name, kind) == 0)
                    break;
            ep->supply = s < i ? F->pools[s].supply : F->f.n_supply++;
            F->supply[ep->supply] = json_integer_value(cnt);
            ep->usd_per_gpu_hour = price;
        }
        F->names[i] = strdup(name ? name : where);
        if (F->names[i] == NULL) {
            json_decref(pc);
            goto oom;
        }
        F->f.n_pools = i + 1; /* freed from here on */
        ep->name = F->names[i];
        ep->perf = &F->rp[i].pctx;
        ep->sched = F->rp[i].sched;
        ep->model = mi;
        ep->region = ri;
        /* a pipelined replica is pp virtual engines of tp GPUs each */
        ep->replicas = (int)reps * F->rp[i].pctx.pp;
        ep->min_replicas = (int)mn * F->rp[i].pctx.pp;
        ep->max_replicas = (int)mx * F->rp[i].pctx.pp;
        ep->gpus_per_replica = F->rp[i].pctx.tp;
        {
            const char *role = json_string_value(json_object_get(pj, "role"));
            const sim_gpu *g = &F->rp[i].pctx.gpu;
            if (json_object_get(pj, "role") && role == NULL)
                role = "?";
            if (role == NULL || strcmp(role, "both") == 0)
                ep->role = ENG_ROLE_BOTH;
            else if (strcmp(role, "prefill") == 0)
                ep->role = ENG_ROLE_PREFILL;
            else if (strcmp(role, "decode") == 0)
                ep->role = ENG_ROLE_DECODE;
            else {
                sim_err_set(err, "fleet", 0, 0,
                            "%s.role: expected both, prefill or decode, got '%s'", where, role);
                json_decref(pc);
                goto fail;
            }
            /* KV moves between instances over their NICs (one per GPU, as in
             * a DGX), or NVLink when the fleet says the instances share a node */
            if (kv_nvlink) {
                ep->kv_link_bw = g->nvlink_bw * ep->gpus_per_replica;
                ep->kv_link_latency_s = g->nvlink_latency_s;
            } else {
                ep->kv_link_bw = g->ib_bw * ep->gpus_per_replica;
                ep->kv_link_latency_s = g->ib_latency_s;
            }
            ep->kv_bytes_per_token = sim_model_kv_bytes_per_token(&F->rp[i].pctx.model, 1);
            if (ep->role != ENG_ROLE_BOTH && !(ep->kv_link_bw > 0)) {
                sim_err_set(err, "fleet", 0, 0,
                            "%s: a %s pool sends KV over %s, which GPU %s lacks", where, role,
                            kv_nvlink ? "NVLink" : "InfiniBand", g->name);
                json_decref(pc);
                goto fail;
            }
        }
        {
            be_args ba;
            memset(&ba, 0, sizeof ba);
            ba.perf = ep->perf;
            ba.kv_blocks = F->rp[i].kv_blocks;
            ba.block_tokens = ep->sched.block_tokens;
            ba.replicas = ep->max_replicas;
            ba.seed = (uint64_t)json_integer_value(json_object_get(cfg, "seed"));
            ba.max_num_seqs = ep->sched.max_num_seqs;
            ba.max_batched_tokens = ep->sched.max_batched_tokens;
            if ((rc = be_open(&F->bes[i], ops, &ba, err)) != SIM_OK) {
                json_decref(pc);
                goto fail;
            }
            ep->b = &F->bes[i];
        }
        json_decref(pc);
    }
    /* router, scope, autoscaler */
    { /* the file's router, else the run's --router */
        const char *rr = json_string_value(json_object_get(cfg, "router"));
        if (rr == NULL || rt_router_parse(rr, &F->f.router) != SIM_OK)
            F->f.router = ENG_ROUTE_RR;
    }
    if ((v = json_object_get(fleet, "router")) != NULL &&
        (!json_is_string(v) || rt_router_parse(json_string_value(v), &F->f.router) != SIM_OK)) {
        rc = bad(err, SIM_EINVAL,
                 "router: expected round-robin, least-outstanding, least-kv, session or "
                 "prefix");
        goto fail;
    }
    F->f.scope = ENG_SCOPE_NEAREST;
    if ((v = json_object_get(fleet, "scope")) != NULL) {
        const char *sc = json_string_value(v);
        if (sc && strcmp(sc, "nearest") == 0)
            F->f.scope = ENG_SCOPE_NEAREST;
        else if (sc && strcmp(sc, "global") == 0)
            F->f.scope = ENG_SCOPE_GLOBAL;
        else {
            rc = bad(err, SIM_EINVAL, "scope: expected nearest or global");
            goto fail;
        }
    }
    as = json_object_get(fleet, "autoscaler");
    if (as && !json_is_null(as)) {
        static const char *const as_keys[] = {"interval_s", "provision_s", "up", "down", NULL};
        eng_autoscale *a = &F->f.autoscale;
        if ((rc = check_keys(as, as_keys, "autoscaler", err)) != SIM_OK)
            goto fail;
        if (!json_is_object(as) || !num_ge0(json_object_get(as, "interval_s"), &a->interval_s) ||
            !num_ge0(json_object_get(as, "provision_s"), &a->provision_s) ||
            !num_ge0(json_object_get(as, "up"), &a->up) ||
            !num_ge0(json_object_get(as, "down"), &a->down) || a->interval_s < 0.1 ||
            a->interval_s > SIM_HORIZON_S || a->provision_s > SIM_HORIZON_S || a->down >= a->up) {
            /* a tick every 1e-9 s made 1e9 events a simulated second */
            rc = bad(err, SIM_EINVAL,
                     "autoscaler: expected {\"interval_s\": S in [0.1, 1e9], \"provision_s\": S "
                     "in [0, 1e9], \"up\": U, \"down\": D} with 0 <= D < U");
            goto fail;
        }
        a->on = 1;
        /* it adds and removes one engine at a time, and a pipelined replica
         * is pp engines: it would run half replicas */
        for (i = 0; i < n; i++)
            if (F->rp[i].pctx.pp > 1) {
                rc = bad(err, SIM_ENOTSUP,
                         "pools[%d].pp: the autoscaler scales replicas of one engine; expected "
                         "pp 1 in an autoscaled fleet, got %d (pool %s)",
                         i, F->rp[i].pctx.pp, F->pools[i].name);
                goto fail;
            }
    }
    /* a disaggregated model has prefill and decode pools, and no others */
    for (j = 0; j < nm; j++) {
        int n_role[3] = {0, 0, 0};
        for (i = 0; i < n; i++)
            if (F->pools[i].model == j)
                n_role[F->pools[i].role]++;
        if ((n_role[ENG_ROLE_PREFILL] > 0 || n_role[ENG_ROLE_DECODE] > 0) &&
            (n_role[ENG_ROLE_PREFILL] == 0 || n_role[ENG_ROLE_DECODE] == 0 ||
             n_role[ENG_ROLE_BOTH] > 0)) {
            const char *mk = NULL;
            int t = 0;
            json_object_foreach(models, k, v) {
                if (t++ == j)
                    mk = k;
            }
            rc = bad(err, SIM_EINVAL,
                     "models.%s: a disaggregated model needs prefill and decode pools, and no "
                     "pool of role both",
                     mk ? mk : "?");
            goto fail;
        }
    }
    /* every model with a share needs a pool */
    for (j = 0; j < nm; j++) {
        if (F->model_weight[j] <= 0)
            continue;
        for (i = 0; i < n; i++)
            if (F->pools[i].model == j &&
                (F->f.autoscale.on ? F->pools[i].max_replicas : F->pools[i].replicas) > 0)
                break;
        if (i == n) {
            const char *mk = NULL;
            int t = 0;
            json_object_foreach(models, k, v) {
                if (t++ == j)
                    mk = k;
            }
            rc = bad(err, SIM_EINFEASIBLE, "models.%s: has a share of the requests but no pool",
                     mk ? mk : "?");
            goto fail;
        }
    }
    F->f.pools = F->pools;
    F->f.n_regions = nr;
    F->f.n_pops = np;
    F->f.pop_weight = F->pop_weight;
    F->f.rtt_s = F->rtt_s;
    F->f.n_models = nm;
    F->f.model_weight = F->model_weight;
    F->f.supply = F->supply;
    if (own_models)
        json_decref(models);
    *out = F;
    return SIM_OK;
oom:
    rc = SIM_ENOMEM;
    sim_err_set(err, "fleet", 0, 0, "out of memory");
fail:
    if (own_models)
        json_decref(models);
    rt_fleet_free(F);
    return rc == SIM_OK ? SIM_EINVAL : rc;
}

/* Builds the fleet with its regions, populations and models in name order
 * (sorted_copy), whatever order the file gives them in. */
int rt_fleet_build(json_t *fleet, json_t *cfg, const struct be_ops *ops, rt_fleet **out,
                   sim_err *err) {
    json_t *regions, *pops, *models;
    int rc;
    *out = NULL;
    if (!json_is_object(fleet))
        return build(fleet, NULL, NULL, NULL, cfg, ops, out, err);
    regions = sorted_copy(json_object_get(fleet, "regions"));
    pops = sorted_copy(json_object_get(fleet, "populations"));
    models = sorted_copy(json_object_get(fleet, "models"));
    if ((json_object_get(fleet, "regions") && regions == NULL) ||
        (json_object_get(fleet, "populations") && pops == NULL) ||
        (json_object_get(fleet, "models") && models == NULL))
        rc = bad(err, SIM_ENOMEM, "out of memory");
    else
        rc = build(fleet, regions, pops, models, cfg, ops, out, err);
    json_decref(regions);
    json_decref(pops);
    json_decref(models);
    return rc;
}

json_t *rt_fleet_info(const rt_fleet *f, json_t *fleet) {
    json_t *a = json_array(), *regions = sorted_copy(json_object_get(fleet, "regions"));
    int i, first = 0;
    for (i = 0; i < f->f.n_pools; i++) {
        const eng_pool *p = &f->pools[i];
        json_t *o = json_object();
        const char *k, *rname = "?";
        json_t *v;
        int t = 0;
        json_object_foreach(regions, k, v) {
            if (t++ == p->region)
                rname = k;
        }
        json_object_set_new(o, "name", json_string(p->name));
        json_object_set_new(o, "region", json_string(rname));
        json_object_set_new(o, "model", json_string(p->perf->model.name));
        json_object_set_new(o, "dtype", json_string(sim_dtype_name(p->perf->model.w_dtype)));
        json_object_set_new(o, "kv_dtype", json_string(sim_dtype_name(p->perf->model.kv_dtype)));
        json_object_set_new(o, "gpu", json_string(p->perf->gpu.name));
        json_object_set_new(o, "tp", json_integer(p->perf->tp));
        /* replicas as the file counts them; the engine runs pp virtual
         * engines for each (first_replica is in the engine's numbering) */
        json_object_set_new(o, "replicas", json_integer(p->replicas / f->rp[i].pctx.pp));
        json_object_set_new(o, "min_replicas", json_integer(p->min_replicas / f->rp[i].pctx.pp));
        json_object_set_new(o, "max_replicas", json_integer(p->max_replicas / f->rp[i].pctx.pp));
        json_object_set_new(o, "autoscaled",
                            json_boolean(f->f.autoscale.on && p->min_replicas != p->max_replicas));
        if (f->rp[i].pctx.pp > 1) {
            json_object_set_new(o, "pp", json_integer(f->rp[i].pctx.pp));
            json_object_set_new(o, "virtual_engines", json_integer(p->replicas));
            json_object_set_new(o, "kv_blocks_per_engine", json_integer(f->rp[i].kv_blocks));
        }
        /* one replica's, shared by its virtual engines, as in run's JSON */
        json_object_set_new(o, "kv_blocks",
                            json_integer((json_int_t)f->rp[i].kv_blocks * f->rp[i].pctx.pp));
        json_object_set_new(o, "first_replica", json_integer(first));
        first += f->f.autoscale.on ? p->max_replicas : p->replicas;
        json_array_append_new(a, o);
    }
    json_decref(regions);
    return a;
}
