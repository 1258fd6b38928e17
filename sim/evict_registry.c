/* evict_registry.c: the table of eviction policies and --policy parsing.
 *
 * Adding a policy: write sim/evict_<name>.c defining
 *     const struct evict_ops evict_<name>_ops = { ... };
 * declare it in sim/evict_int.h and add one line to the table below
 * (docs/eviction.md walks through an example). The table's order is the order of listings.
 *
 * A --policy text is `name[:key=value[,key=value...]]`. Parsing only splits
 * it and checks the keys against the policy's param_keys; each policy reads
 * and range-checks its values in create() with evict_param_number() and
 * evict_param_duration(). */
#include "config.h"
#include "evict.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "evict_int.h"
#include "num.h"

static const struct evict_ops *const registry[] = {
    &evict_lru_ops,     /* least recently used */
    &evict_lfu_ops,     /* least frequently used */
    &evict_fifo_ops,    /* first in, first out */
    &evict_ttl_ops,     /* idle time-to-live */
    &evict_gdsf_ops,    /* greedy-dual-size-frequency, recompute cost */
    &evict_s3fifo_ops,  /* S3-FIFO (SOSP'23) */
    &evict_arc_ops,     /* ARC (FAST'03) */
    &evict_session_ops, /* sessions least likely to return */
    &evict_belady_ops,  /* Belady's optimum (offline) */
};
#define N_POLICIES (sizeof registry / sizeof registry[0])

const struct evict_ops *evict_find(const char *name) {
    size_t i;
    for (i = 0; i < N_POLICIES; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

size_t evict_count(void) {
    return N_POLICIES;
}

const struct evict_ops *evict_at(size_t i) {
    return i < N_POLICIES ? registry[i] : NULL;
}

void evict_names(char *buf, size_t n) {
    size_t i, used = 0;
    if (n == 0)
        return;
    buf[0] = '\0';
    for (i = 0; i < N_POLICIES && used < n; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", registry[i]->name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* The accepted keys of ops as "a, b" ("" when none). */
static void key_list(const struct evict_ops *ops, char *buf, size_t n) {
    size_t used = 0;
    const char *const *k;
    buf[0] = '\0';
    for (k = ops->param_keys; k != NULL && *k != NULL && used < n; k++) {
        int w = snprintf(buf + used, n - used, "%s%s", k == ops->param_keys ? "" : ", ", *k);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

static int key_known(const struct evict_ops *ops, const char *key) {
    const char *const *k;
    for (k = ops->param_keys; k != NULL && *k != NULL; k++)
        if (strcmp(*k, key) == 0)
            return 1;
    return 0;
}

/* evict_spec_parse, and with allow_none evict_spec_parse_or_none: "none"
 * is then a name too, listed first among the known ones. */
static int spec_parse(const char *spec, int allow_none, const struct evict_ops **ops_out,
                      evict_params *p, sim_err *err) {
    const char *colon = strchr(spec, ':'), *s;
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    const struct evict_ops *ops;
    char names[256], keys[256];

    memset(p, 0, sizeof *p);
    p->capacity_blocks = EVICT_UNLIMITED;
    p->block_tokens = 16;
    *ops_out = NULL;
    strcpy(names, allow_none ? "none, " : "");
    evict_names(names + strlen(names), sizeof names - strlen(names));
    if (allow_none && len == 4 && strncmp(spec, "none", 4) == 0) {
        if (colon != NULL) { /* "none:..." is a mistake, never a silent no-cache */
            size_t n = strcspn(colon + 1, ",="); /* the first key, as for lru */
            sim_err_set(err, "--policy", 0, 0,
                        "none: parameter: expected none (none takes no parameters), got '%.*s'",
                        (int)(n > 64 ? 64 : n), colon + 1);
            return SIM_EINVAL;
        }
        memcpy(p->name, "none", 5);
        return SIM_OK;
    }
    if (len == 0 || len >= sizeof p->name) {
        sim_err_set(err, "--policy", 0, 0, "policy: expected one of %s, got '%.*s'", names,
                    (int)(len > 64 ? 64 : len), spec);
        return SIM_EINVAL;
    }
    memcpy(p->name, spec, len);
    p->name[len] = '\0';
    ops = evict_find(p->name);
    if (ops == NULL) {
        sim_err_set(err, "--policy", 0, 0, "policy: expected one of %s, got '%s'", names, p->name);
        return SIM_EINVAL;
    }
    key_list(ops, keys, sizeof keys);
    /* every element after the colon is parsed, an empty one too ("ttl:",
     * "ttl:idle=5,"): it is an error, never a silent default */
    for (s = colon ? colon + 1 : NULL; s != NULL;) {
        const char *comma = strchr(s, ','), *eq;
        size_t n = comma ? (size_t)(comma - s) : strlen(s), kl;
        eq = memchr(s, '=', n);
        if (ops->param_keys == NULL || ops->param_keys[0] == NULL) {
            size_t shown = eq ? (size_t)(eq - s) : n;
            sim_err_set(err, "--policy", 0, 0,
                        "%s: parameter: expected none (%s takes no parameters), got '%.*s'",
                        p->name, p->name, (int)(shown > 64 ? 64 : shown), s);
            return SIM_EINVAL;
        }
        if (eq == NULL || eq == s) {
            sim_err_set(err, "--policy", 0, 0,
                        "%s: parameter: expected KEY=VALUE with KEY one of %s, got '%.*s'", p->name,
                        keys, (int)(n > 64 ? 64 : n), s);
            return SIM_EINVAL;
        }
        kl = (size_t)(eq - s);
        if (p->n_kv == EVICT_MAX_PARAMS || kl >= sizeof p->kv[0].key ||
            n - kl - 1 >= sizeof p->kv[0].val) {
            sim_err_set(err, "--policy", 0, 0,
                        "%s: parameter: expected at most %d short KEY=VALUE pairs, got '%.*s'",
                        p->name, EVICT_MAX_PARAMS, (int)(n > 64 ? 64 : n), s);
            return SIM_EINVAL;
        }
        memcpy(p->kv[p->n_kv].key, s, kl);
        p->kv[p->n_kv].key[kl] = '\0';
        memcpy(p->kv[p->n_kv].val, eq + 1, n - kl - 1);
        p->kv[p->n_kv].val[n - kl - 1] = '\0';
        if (!key_known(ops, p->kv[p->n_kv].key)) {
            sim_err_set(err, "--policy", 0, 0, "%s: parameter: expected one of %s, got '%s'",
                        p->name, keys, p->kv[p->n_kv].key);
            return SIM_EINVAL;
        }
        {
            int k;
            for (k = 0; k < p->n_kv; k++)
                if (strcmp(p->kv[k].key, p->kv[p->n_kv].key) == 0) {
                    sim_err_set(err, "--policy", 0, 0,
                                "%s: parameter: expected each key once, got '%s' twice", p->name,
                                p->kv[k].key);
                    return SIM_EINVAL;
                }
        }
        p->n_kv++;
        s = comma ? comma + 1 : NULL;
    }
    *ops_out = ops;
    return SIM_OK;
}

int evict_spec_parse(const char *spec, const struct evict_ops **ops_out, evict_params *p,
                     sim_err *err) {
    return spec_parse(spec, 0, ops_out, p, err);
}

int evict_spec_parse_or_none(const char *spec, const struct evict_ops **ops_out, evict_params *p,
                             sim_err *err) {
    return spec_parse(spec, 1, ops_out, p, err);
}

const char *evict_param_get(const evict_params *p, const char *key) {
    int i;
    for (i = p->n_kv - 1; i >= 0; i--) /* the last one given wins */
        if (strcmp(p->kv[i].key, key) == 0)
            return p->kv[i].val;
    return NULL;
}

int evict_param_number(const evict_params *p, const char *key, double def, double lo, double hi,
                       double *out, sim_err *err) {
    const char *v = evict_param_get(p, key);
    char *end;
    double x;
    if (v == NULL) {
        *out = def;
        return SIM_OK;
    }
    errno = 0;
    x = sim_strtod(v, &end);
    if (end == v || *end != '\0' || errno != 0 || !isfinite(x) || x < lo || x > hi) {
        sim_err_set(err, "--policy", 0, 0, "%s:%s: expected a number in [%g, %g], got '%s'",
                    p->name, key, lo, hi, v);
        return SIM_EINVAL;
    }
    *out = x;
    return SIM_OK;
}

int evict_param_duration(const evict_params *p, const char *key, sim_time def, sim_time *out,
                         sim_err *err) {
    const char *v = evict_param_get(p, key);
    char *end;
    double x, unit, ns = -1;
    if (v == NULL) {
        *out = def;
        return SIM_OK;
    }
    errno = 0;
    x = sim_strtod(v, &end);
    if (end != v && errno == 0 && isfinite(x) && x > 0 && (unit = sim_duration_unit_ns(end)) > 0)
        ns = x * unit;
    if (!(ns >= 1 && ns <= 9.2e18)) {
        sim_err_set(err, "--policy", 0, 0,
                    "%s:%s: expected a duration from 1ns to 9.2e9s (300s, 300ms, 5m, 1h, or plain "
                    "seconds), "
                    "got '%s'",
                    p->name, key, v);
        return SIM_EINVAL;
    }
    *out = (sim_time)llround(ns);
    return SIM_OK;
}
