/* sweep_spec.c: experiment specs, their points and the task dispatcher
 * (see sweep.h; the grammar is documented in docs/experiments.md).
 *
 * A spec is checked whole before anything runs: every option name and
 * value goes through rt_run_args, the same parser as `kvfleet run`, as a
 * "--NAME=VALUE" word, so a spec accepts exactly what the command line
 * accepts and no option is parsed twice. A point's options are base's words
 * followed by its own, so the point's win. Relative paths (trace, model or
 * GPU files, calibration, the replay DB) are made absolute against the
 * spec's folder, so a sweep runs the same from any working directory.
 *
 * Sizes: specs are small (tens to thousands of points); everything is held
 * in memory. Non-goals: expressions, ranges or conditional points (list
 * the values), and axes that zip instead of multiplying (use "points"). */
#include "config.h"
#include "sweep.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fileio.h"
#include "json_util.h"
#include "mem.h"

/* Most points a spec may expand to (a guard against a typo multiplying axes). */
#define SWEEP_MAX_POINTS 1000000

/* ---- option words ---- */

/* Writes a scalar JSON value as the text `kvfleet run` would take; -1 if not a scalar. */
static int value_text(json_t *v, char *buf, size_t n) {
    if (json_is_string(v))
        snprintf(buf, n, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) {
        /* a real keeps its point (4.0, not 4): an integer option refuses
         * it, as `run --max-num-seqs=4.0` and --config do */
        snprintf(buf, n, "%.17g", json_real_value(v));
        if (strpbrk(buf, ".eEin") == NULL && strlen(buf) + 2 < n)
            strcat(buf, ".0");
    } else if (json_is_boolean(v))
        snprintf(buf, n, "%s", json_is_true(v) ? "true" : "false");
    else
        return -1;
    return 0;
}

/* Checks one option of the spec (where: "base", "axes", "points[3]") and
 * applies it to cfg through rt_run_args. */
static int option_apply(json_t *cfg, const char *src, const char *where, const char *key, json_t *v,
                        sim_err *err) {
    char text[4200], word[4300];
    char *argv[1];
    json_t *out = NULL;
    sim_err e;
    if (strcmp(key, "db") == 0) {
        sim_err_set(err, src, 0, 0,
                    "%s.db: expected no results file in a spec (kvfleet sweep --db FILE names it)",
                    where);
        return SIM_EINVAL;
    }
    if (strcmp(key, "fleet") == 0 && json_is_object(v)) {
        /* a fleet given inline: the object itself (docs/fleet.md) */
        json_object_set(cfg, key, v);
        return SIM_OK;
    }
    if (value_text(v, text, sizeof text) != 0) {
        char *txt = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
        sim_err_set(err, src, 0, 0, "%s.%s: expected a string, number or boolean, got '%s'", where,
                    key, txt ? txt : "?");
        free(txt);
        return SIM_EINVAL;
    }
    snprintf(word, sizeof word, "--%s=%s", key, text);
    argv[0] = word;
    sim_err_clear(&e);
    if (rt_run_args(1, argv, cfg, &out, &e) != SIM_OK) {
        sim_err_set(err, src, 0, 0, "%s.%s: %s", where, key, e.msg);
        return SIM_EINVAL;
    }
    json_object_update(cfg, out);
    json_decref(out);
    return SIM_OK;
}

/* Makes a relative path absolute against dir; returns a new JSON string or NULL. */
static json_t *abs_path(const char *dir, const char *p) {
    char buf[8192];
    if (p[0] == '/' || dir == NULL || dir[0] == '\0')
        return json_string(p);
    snprintf(buf, sizeof buf, "%s/%s", dir, p);
    return json_string(buf);
}

/* Anchors the config's relative file names at dir (see the file comment). */
static void paths_anchor(json_t *cfg, const char *dir) {
    static const char *const files[] = {"trace", "model", "gpu", "calibration", "replay", "fleet"};
    size_t i;
    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *k = files[i];
        const char *v = json_string_value(json_object_get(cfg, k));
        size_t n;
        if (v == NULL || v[0] == '\0' || v[0] == '/')
            continue;
        n = strlen(v);
        if ((strcmp(k, "model") == 0 || strcmp(k, "gpu") == 0) && strchr(v, '/') == NULL &&
            (n < 5 || strcmp(v + n - 5, ".json") != 0))
            continue; /* a preset name */
        if (strcmp(k, "calibration") == 0 && strcmp(v, "none") == 0)
            continue;
        if (strcmp(k, "replay") == 0) { /* DB:RUN_ID: only the file part */
            const char *colon = strrchr(v, ':');
            char buf[8192];
            if (colon == NULL)
                continue;
            snprintf(buf, sizeof buf, "%s/%s", dir, v);
            if (dir && dir[0])
                json_object_set_new(cfg, k, json_string(buf));
            continue;
        }
        json_object_set_new(cfg, k, abs_path(dir, v));
    }
    /* a synthetic spec's rate file, rate=file(PATH) */
    {
        const char *v = json_string_value(json_object_get(cfg, "synthetic"));
        const char *f = v ? strstr(v, "file(") : NULL;
        if (f && f[5] != '/' && dir && dir[0]) {
            char buf[8192];
            snprintf(buf, sizeof buf, "%.*s%s/%s", (int)(f + 5 - v), v, dir, f + 5);
            json_object_set_new(cfg, "synthetic", json_string(buf));
        }
    }
}

/* Applies every member of obj (an object of options) to cfg. */
static int options_apply(json_t *cfg, json_t *obj, const char *src, const char *where,
                         sim_err *err) {
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        int rc = option_apply(cfg, src, where, key, v, err);
        if (rc != SIM_OK)
            return rc;
    }
    return SIM_OK;
}

/* ---- the spec ---- */

static int spec_fail(sim_err *err, const char *src, const char *what, json_t *v) {
    char *txt = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    sim_err_set(err, src, 0, 0, "%s, got '%s'", what, txt ? txt : "nothing");
    free(txt);
    return SIM_EINVAL;
}

void sweep_spec_destroy(sweep_spec *s) {
    int i;
    if (s == NULL)
        return;
    for (i = 0; s->point_axes && i < s->n_points; i++)
        json_decref(s->point_axes[i]);
    for (i = 0; s->point_cfg && i < s->n_points; i++)
        json_decref(s->point_cfg[i]);
    sim_free(s->point_axes);
    sim_free(s->point_cfg);
    json_decref(s->axes);
    sim_free(s->name);
    sim_free(s->canonical);
    sim_free(s->path);
    sim_free(s);
}

size_t sweep_spec_tasks(const sweep_spec *s) {
    return (size_t)s->n_points * (size_t)s->seeds;
}

/* Checks the top-level members and reads name, seeds and warmup-s. */
static int spec_header(sweep_spec *s, json_t *spec, const char *src, sim_err *err) {
    static const char *const known[] = {"name", "base", "axes", "points", "seeds", "warmup-s"};
    const char *key;
    json_t *v;
    json_object_foreach(spec, key, v) {
        size_t i;
        int ok = 0;
        for (i = 0; i < sizeof known / sizeof known[0]; i++)
            ok |= strcmp(key, known[i]) == 0;
        if (!ok) {
            sim_err_set(err, src, 0, 0,
                        "%s: unknown spec key (expected name, base, axes, points, seeds, "
                        "warmup-s)",
                        key);
            return SIM_EINVAL;
        }
    }
    v = json_object_get(spec, "name");
    if (!json_is_string(v) || json_string_length(v) == 0)
        return spec_fail(err, src, "name: expected a non-empty string", v);
    if ((s->name = sim_strdup(json_string_value(v))) == NULL)
        return SIM_ENOMEM;
    s->seeds = 1;
    if ((v = json_object_get(spec, "seeds")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 100000)
            return spec_fail(err, src, "seeds: expected an integer in 1..100000", v);
        s->seeds = (int)json_integer_value(v);
    }
    if ((v = json_object_get(spec, "warmup-s")) != NULL) {
        if (!json_is_number(v) || !(json_number_value(v) >= 0))
            return spec_fail(err, src, "warmup-s: expected a number of seconds >= 0", v);
        s->warmup_s = json_number_value(v);
    }
    v = json_object_get(spec, "base");
    if (v && !json_is_object(v))
        return spec_fail(err, src, "base: expected an object of run options", v);
    if (json_object_get(spec, "axes") && json_object_get(spec, "points")) {
        sim_err_set(err, src, 0, 0, "axes, points: expected one of them, got both");
        return SIM_EINVAL;
    }
    if (!json_object_get(spec, "axes") && !json_object_get(spec, "points")) {
        sim_err_set(err, src, 0, 0,
                    "axes, points: expected \"axes\": {OPTION: [VALUES]} or \"points\": "
                    "[{OPTION: VALUE}], got neither");
        return SIM_EINVAL;
    }
    return SIM_OK;
}

/* Points of an "axes" spec: the cartesian product, last axis fastest. */
static int spec_axes(sweep_spec *s, json_t *axes, json_t *base, const char *src, const char *dir,
                     sim_err *err) {
    const char *key;
    json_t *v, *lists = json_array();
    size_t n_axes, a, total = 1;
    int p, rc = SIM_OK;
    if (!json_is_object(axes) || json_object_size(axes) == 0) {
        json_decref(lists);
        return spec_fail(err, src, "axes: expected an object of OPTION: [VALUES]", axes);
    }
    json_object_foreach(axes, key, v) {
        char where[300];
        size_t i;
        json_t *x;
        if (!json_is_array(v)) {
            snprintf(where, sizeof where, "axes.%s: expected a list of values", key);
            rc = spec_fail(err, src, where, v);
            goto out;
        }
        if (json_array_size(v) == 0) {
            snprintf(where, sizeof where, "axes.%s: expected a non-empty list of values", key);
            rc = spec_fail(err, src, where, v);
            goto out;
        }
        snprintf(where, sizeof where, "axes");
        json_array_foreach(v, i, x) { /* check every value now, not when its point runs */
            json_t *probe = json_object();
            rc = option_apply(probe, src, where, key, x, err);
            json_decref(probe);
            if (rc != SIM_OK)
                goto out;
        }
        if (total > SWEEP_MAX_POINTS / json_array_size(v)) {
            sim_err_set(err, src, 0, 0, "axes: expected at most %d points, got more",
                        SWEEP_MAX_POINTS);
            rc = SIM_EINVAL;
            goto out;
        }
        total *= json_array_size(v);
        json_array_append_new(s->axes, json_string(key));
        json_array_append(lists, v);
    }
    n_axes = json_array_size(lists);
    s->n_points = (int)total;
    s->point_axes = SIM_NEW_ARRAY(json_t *, total);
    s->point_cfg = SIM_NEW_ARRAY(json_t *, total);
    if (s->point_axes == NULL || s->point_cfg == NULL) {
        rc = SIM_ENOMEM;
        goto out;
    }
    for (p = 0; p < s->n_points; p++) {
        size_t rest = (size_t)p;
        json_t *pa = json_object(), *cfg = json_object();
        s->point_axes[p] = pa;
        s->point_cfg[p] = cfg;
        if (base && (rc = options_apply(cfg, base, src, "base", err)) != SIM_OK)
            goto out;
        /* mixed radix: the last axis is the least significant digit */
        for (a = n_axes; a-- > 0;) {
            json_t *list = json_array_get(lists, a);
            size_t n = json_array_size(list);
            json_object_set(pa, json_string_value(json_array_get(s->axes, a)),
                            json_array_get(list, rest % n));
            rest /= n;
        }
        json_array_foreach(s->axes, a, v) {
            const char *name = json_string_value(v);
            if ((rc = option_apply(cfg, src, "axes", name, json_object_get(pa, name), err)) !=
                SIM_OK)
                goto out;
        }
        paths_anchor(cfg, dir);
    }
    /* the axes object was filled last axis first: rebuild it in axis order */
    for (p = 0; p < s->n_points; p++) {
        json_t *ordered = json_object();
        json_array_foreach(s->axes, a, v) {
            const char *name = json_string_value(v);
            json_object_set(ordered, name, json_object_get(s->point_axes[p], name));
        }
        json_decref(s->point_axes[p]);
        s->point_axes[p] = ordered;
    }
out:
    json_decref(lists);
    return rc;
}

/* Points of a "points" spec: each object merged over base; the axes are
 * the union of the points' keys, in first-seen order. */
static int spec_points(sweep_spec *s, json_t *points, json_t *base, const char *src,
                       const char *dir, sim_err *err) {
    size_t i, n;
    json_t *pt;
    if (!json_is_array(points) || json_array_size(points) == 0)
        return spec_fail(err, src, "points: expected a non-empty list of objects", points);
    n = json_array_size(points);
    if (n > SWEEP_MAX_POINTS)
        return spec_fail(err, src, "points: expected at most 1000000 points", NULL);
    s->n_points = (int)n;
    s->point_axes = SIM_NEW_ARRAY(json_t *, n);
    s->point_cfg = SIM_NEW_ARRAY(json_t *, n);
    if (s->point_axes == NULL || s->point_cfg == NULL)
        return SIM_ENOMEM;
    json_array_foreach(points, i, pt) {
        char where[64];
        const char *key;
        json_t *v;
        int rc;
        snprintf(where, sizeof where, "points[%zu]", i);
        if (!json_is_object(pt)) {
            char what[160];
            snprintf(what, sizeof what, "%s: expected an object of run options", where);
            return spec_fail(err, src, what, pt);
        }
        s->point_axes[i] = json_deep_copy(pt);
        s->point_cfg[i] = json_object();
        if (base && (rc = options_apply(s->point_cfg[i], base, src, "base", err)) != SIM_OK)
            return rc;
        if ((rc = options_apply(s->point_cfg[i], pt, src, where, err)) != SIM_OK)
            return rc;
        paths_anchor(s->point_cfg[i], dir);
        json_object_foreach(pt, key, v) {
            size_t k;
            json_t *name;
            int seen = 0;
            json_array_foreach(s->axes, k, name) seen |= strcmp(json_string_value(name), key) == 0;
            if (!seen)
                json_array_append_new(s->axes, json_string(key));
        }
    }
    return SIM_OK;
}

/* Replication r of a point runs with its seed + r, which must stay within
 * the seed's range, 0..2^63-1 (docs/experiments.md): a point whose seed is
 * larger than 2^63 - seeds is refused, not wrapped. A seed below 0 is the
 * run's own range check (spec_points_resolve). */
static int spec_seeds_check(const sweep_spec *s, const char *src, sim_err *err) {
    int p;
    long long max = INT64_MAX - (long long)(s->seeds - 1);
    for (p = 0; p < s->n_points; p++) {
        json_t *v = json_object_get(s->point_cfg[p], "seed");
        if (json_is_integer(v) && json_integer_value(v) > max) {
            sim_err_set(err, src, 0, 0,
                        "point %d: seed: expected at most %lld with %d seeds (replication r runs "
                        "with seed + r, at most 2^63-1), got '%lld'",
                        p, max, s->seeds, (long long)json_integer_value(v));
            return SIM_EINVAL;
        }
    }
    return SIM_OK;
}

/* Resolves and checks every point's config as `kvfleet run` does
 * (rt_run_resolve: option types and ranges, one source, the fleet file
 * read; rt_run_check: executor, router, replicas, limits; with env, also
 * rt_run_precheck: model, GPU, calibration, dtype and policy names, the
 * scheduler's values, the request source, a fleet built and freed, which
 * sweep_spec_load adds), so that a value out of range ("seed": -1,
 * "replicas": 0, "limit": -1, "max-num-seqs": 0, "policy": "nope") refuses
 * the spec before anything is written, as an unknown option does, instead
 * of failing its points one by one. What needs the model (weights larger
 * than HBM, TP not dividing the heads) is left to the run
 * (docs/experiments.md). */
static int spec_points_resolve(const sweep_spec *s, const char *src, int env, sim_err *err) {
    int p;
    for (p = 0; p < s->n_points; p++) {
        json_t *cfg = json_deep_copy(s->point_cfg[p]);
        sim_err e;
        char msg[1200];
        int rc;
        if (cfg == NULL)
            return SIM_ENOMEM;
        sim_err_clear(&e);
        rc = rt_run_resolve(cfg, &e);
        if (rc == SIM_OK)
            rc = rt_run_check(cfg, &e); /* "replicas": 0, a bad router, ... */
        if (rc == SIM_OK && env)
            rc = rt_run_precheck(cfg, &e); /* names, policies, the source */
        json_decref(cfg);
        if (rc != SIM_OK) {
            if (e.msg[0])
                sim_err_format(&e, msg, sizeof msg);
            else
                snprintf(msg, sizeof msg, "%s", sim_strerror(rc));
            sim_err_set(err, src, 0, 0, "point %d: %s", p, msg);
            return rc;
        }
    }
    return SIM_OK;
}

/* sweep_spec_parse, and with env (sweep_spec_load) each point prechecked
 * against the files and presets here too (spec_points_resolve). */
static int spec_parse(json_t *spec, const char *src, const char *dir, int env, sweep_spec **out,
                      sim_err *err) {
    sweep_spec *s;
    json_t *base;
    int rc;
    *out = NULL;
    if (!json_is_object(spec))
        return spec_fail(err, src, "spec: expected a JSON object", spec);
    if ((s = SIM_NEW(sweep_spec)) == NULL)
        return SIM_ENOMEM;
    s->axes = json_array();
    s->path = sim_strdup("");
    if ((rc = spec_header(s, spec, src, err)) != SIM_OK)
        goto fail;
    base = json_object_get(spec, "base");
    if (json_object_get(spec, "axes"))
        rc = spec_axes(s, json_object_get(spec, "axes"), base, src, dir, err);
    else
        rc = spec_points(s, json_object_get(spec, "points"), base, src, dir, err);
    if (rc != SIM_OK)
        goto fail;
    if ((rc = spec_seeds_check(s, src, err)) != SIM_OK)
        goto fail;
    if ((rc = spec_points_resolve(s, src, env, err)) != SIM_OK)
        goto fail;
    {
        char *txt = json_dumps(spec, JSON_COMPACT | JSON_REAL_PRECISION(17));
        if (txt == NULL) {
            rc = SIM_ENOMEM;
            goto fail;
        }
        s->canonical = sim_strdup(txt);
        free(txt);
    }
    *out = s;
    return SIM_OK;
fail:
    sweep_spec_destroy(s);
    return rc;
}

int sweep_spec_parse(json_t *spec, const char *src, const char *dir, sweep_spec **out,
                     sim_err *err) {
    return spec_parse(spec, src, dir, 0, out, err);
}

/* Reads the spec file, resolving relative paths against its folder. */
int sweep_spec_load(const char *path, sweep_spec **out, sim_err *err) {
    json_t *spec;
    char dir[PATH_MAX], real[PATH_MAX];
    int rc;
    *out = NULL;
    if ((spec = sim_json_load_path(path, "", &rc, err)) == NULL)
        return rc;
    sim_dirname(path, dir, sizeof dir);
    if (realpath(dir, real) == NULL)
        snprintf(real, sizeof real, "%s", dir);
    if (!sim_json_utf8_ok(real)) { /* the folder its relative names are anchored at: JSON text */
        json_decref(spec);
        sim_err_set(err, path, 0, 0,
                    "spec: expected a folder whose name is UTF-8 (the runs store the paths "
                    "anchored at it as JSON text), got '%s'",
                    real);
        return SIM_EINVAL;
    }
    rc = spec_parse(spec, path, real, 1, out, err);
    json_decref(spec);
    if (rc == SIM_OK) {
        sim_free((*out)->path);
        (*out)->path = sim_strdup(path);
    }
    return rc;
}

int sweep_task_config(const sweep_spec *s, size_t t, const char *db, json_t **out, sim_err *err) {
    size_t p = t / (size_t)s->seeds, rep = t % (size_t)s->seeds;
    json_t *cfg;
    json_int_t seed;
    int rc;
    *out = NULL;
    SIM_ASSERT(p < (size_t)s->n_points);
    cfg = json_deep_copy(s->point_cfg[p]);
    if (cfg == NULL)
        return SIM_ENOMEM;
    /* db before resolving: made absolute as `kvfleet run --db` makes it */
    json_object_set_new(cfg, "db", json_string(db));
    if ((rc = rt_run_resolve(cfg, err)) != SIM_OK) {
        json_decref(cfg);
        return rc;
    }
    /* replication rep's seed: the point's plus rep; resolved, the seed is
     * >= 0, and spec_seeds_check kept seed + seeds - 1 within 2^63-1 */
    seed = json_integer_value(json_object_get(cfg, "seed"));
    SIM_ASSERT(seed >= 0 && seed <= INT64_MAX - (json_int_t)rep);
    json_object_set_new(cfg, "seed", json_integer(seed + (json_int_t)rep));
    *out = cfg;
    return SIM_OK;
}

/* ---- the dispatcher ---- */

int sweep_worker_count(int n_ranks) {
    SIM_ASSERT(n_ranks >= 1);
    return n_ranks == 1 ? 1 : n_ranks - 1;
}

int sweep_worker_rank(int n_ranks, int w) {
    SIM_ASSERT(w >= 0 && w < sweep_worker_count(n_ranks));
    return n_ranks == 1 ? 0 : w + 1;
}

void sweep_dispatch_init(sweep_dispatch *d, const size_t *todo, size_t n_todo, int n_workers) {
    SIM_ASSERT(n_workers >= 1);
    memset(d, 0, sizeof *d);
    d->todo = todo;
    d->n_todo = n_todo;
    d->n_workers = n_workers;
}

long sweep_dispatch_next(sweep_dispatch *d) {
    if (d->next < d->n_todo)
        return (long)d->todo[d->next++];
    SIM_ASSERT(d->n_stopped < d->n_workers);
    d->n_stopped++;
    return SWEEP_STOP;
}

void sweep_dispatch_close(sweep_dispatch *d) {
    d->n_todo = d->next;
}

void sweep_dispatch_done(sweep_dispatch *d) {
    SIM_ASSERT(d->n_done < d->next);
    d->n_done++;
}

int sweep_dispatch_finished(const sweep_dispatch *d) {
    return d->n_done == d->n_todo && d->n_stopped == d->n_workers;
}
