/* collective.c: alpha-beta costs of collectives on a two-level topology,
 * link and node presets, and the least-squares calibration (see
 * collective.h; formulas and their derivation in docs/collectives.md).
 *
 * Notation: p GPUs on M nodes, g = p / M per node. B_i is one GPU's
 * intra-node bandwidth (NVLink per direction, or PCIe), B_n one NIC's, and
 * a node's NICs give its GPUs min(nics, g) x B_n together. Per algorithm
 * (steps are sequential latencies; bytes are per GPU over its bottleneck):
 *
 *   one level (M = 1, or all p GPUs in one NVLink domain):
 *     allreduce ring     2(p-1) steps, 2(p-1)/p n / B_i
 *     allreduce tree     2(p-1) steps (a chain inside a node), 2 n / B_i
 *     allgather/RS ring  (p-1) steps, (p-1)/p n / B_i
 *     sendrecv p2p       1 step, n / B_i
 *   two levels (pipelined levels take the max of their bytes terms,
 *   sequential ones the sum):
 *     allreduce ring     2(p-1) inter steps; max(2(p-1)/p n / B_i, 2(p-1)/p n / B_node)
 *     allreduce tree     2(g-1) intra + 2 ceil(log2 M) inter steps; max(2n / B_i, 2n / B_node)
 *     allreduce hier     2(g-1) intra + 2(M-1) inter steps; 2(g-1)/g n / B_i + 2(M-1)/M n / B_node
 *     allgather/RS ring  (p-1) inter steps; max((p-1)/p n / B_i, (p-1)/p n / B_node)
 *     allgather/RS hier  (g-1) intra + (M-1) inter steps; (g-1)/g n / B_i + (M-1)/M n / B_node
 *     sendrecv p2p       1 inter step, n / B_n
 *
 * Protocols: each (level, op) holds up to three alpha-beta lines, named
 * after NCCL's LL, LL128 and Simple (lowest latency and bandwidth first);
 * a plan has one candidate per algorithm x protocol present at every level
 * the algorithm uses (at most 9), and its time is their minimum, as NCCL's
 * tuner picks. The fit finds the lines by alternating least squares: give
 * each row to the line that is fastest for it, refit each line on its
 * rows, repeat until no row moves; several starting splits by size are
 * tried and the lowest weighted squared relative error kept (a k-lines
 * clustering; Bradley and Mangasarian, "k-plane clustering", 2000).
 *
 * Non-goals: NVLS/SHARP in-network reduction, CollNet, PAT and all-to-all
 * (a calibrated eff_max above 1 is how NVLS shows), knowing which protocol
 * NCCL really ran (the lines are named by their order, not observed),
 * contention with other traffic (sim/net.h models that). */
#include "config.h"
#include "collective.h"

#include <math.h>
#include <string.h>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_multifit.h>

#include "json_util.h"
#include "mem.h"
#include "num.h"

static const char *const op_names[COLL_N_OPS] = {"allreduce", "allgather", "reducescatter",
                                                 "sendrecv"};
static const char *const algo_names[COLL_N_ALGOS] = {"none", "ring", "tree", "hier", "p2p"};
static const char *const level_names[COLL_N_LEVELS] = {"intra", "inter"};
static const char *const proto_names[COLL_N_PROTOS] = {"ll", "ll128", "simple"};

const char *coll_op_name(coll_op op) {
    return op >= 0 && op < COLL_N_OPS ? op_names[op] : "?";
}

const char *coll_algo_name(coll_algo a) {
    return a >= 0 && a < COLL_N_ALGOS ? algo_names[a] : "?";
}

const char *coll_proto_name(coll_proto r) {
    return r >= 0 && r < COLL_N_PROTOS ? proto_names[r] : "?";
}

int coll_op_parse(const char *s, coll_op *out) {
    int i;
    for (i = 0; i < COLL_N_OPS; i++)
        if (strcmp(s, op_names[i]) == 0) {
            *out = (coll_op)i;
            return SIM_OK;
        }
    return SIM_EINVAL;
}

/* ---- presets ---- */

static int load_object(const char *datadir, const char *subdir, const char *name_or_path,
                       const char *kind, const char *what, char *path, size_t n, json_t **o,
                       sim_err *err) {
    int rc = sim_json_preset_path(datadir, subdir, name_or_path, NULL, kind, what, path, n, err);
    if (rc != SIM_OK)
        return rc;
    return sim_json_load_object(path, o, err);
}

int coll_link_load(const char *name_or_path, const char *datadir, coll_link *out, sim_err *err) {
    static const char *const known[] = {"name",      "kind",    "description", "bw",
                                        "latency_s", "sources", NULL};
    char path[4096];
    json_t *o = NULL;
    const char *s = NULL;
    coll_link l;
    int rc;

    memset(&l, 0, sizeof l);
    rc = load_object(datadir, "links", name_or_path, "link", "a link preset .json", path,
                     sizeof path, &o, err);
    if (rc != SIM_OK)
        return rc;
    if ((rc = sim_json_check_keys(o, known, path, err)) != SIM_OK ||
        (rc = sim_json_get_string(o, "kind", SIM_JSON_REQUIRED, &s, path, err)) != SIM_OK)
        goto done;
    if (strcmp(s, "nvlink") != 0 && strcmp(s, "pcie") != 0 && strcmp(s, "ib") != 0) {
        rc = sim_json_err_value(err, path, "kind", "one of nvlink, pcie, ib",
                                json_object_get(o, "kind"), SIM_EINVAL);
        goto done;
    }
    snprintf(l.kind, sizeof l.kind, "%s", s);
    if ((rc = sim_json_get_double(o, "bw", SIM_JSON_REQUIRED | SIM_JSON_POSITIVE,
                                  "bytes/s per direction", &l.bw, path, err)) != SIM_OK ||
        (rc = sim_json_get_double(o, "latency_s", SIM_JSON_REQUIRED | SIM_JSON_NONNEG, "s",
                                  &l.latency_s, path, err)) != SIM_OK)
        goto done;
    sim_json_stem(path, l.name, sizeof l.name);
    *out = l;
done:
    json_decref(o);
    return rc;
}

void coll_topo_from_gpu(const sim_gpu *g, coll_topo *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", g->name);
    out->gpus_per_node = g->gpus_per_node;
    if (g->nvlink_bw > 0) {
        out->nvlink_domain_gpus = g->gpus_per_node;
        snprintf(out->intra.kind, sizeof out->intra.kind, "nvlink");
        out->intra.bw = g->nvlink_bw;
        out->intra.latency_s = g->nvlink_latency_s;
    } else {
        snprintf(out->intra.kind, sizeof out->intra.kind, "pcie");
        out->intra.bw = g->pcie_bw;
        out->intra.latency_s = g->pcie_latency_s;
    }
    snprintf(out->intra.name, sizeof out->intra.name, "%s (%s)", g->name, out->intra.kind);
    if (g->ib_bw > 0) { /* DGX-style: one NIC per GPU */
        out->nics_per_node = g->gpus_per_node;
        snprintf(out->nic.kind, sizeof out->nic.kind, "ib");
        snprintf(out->nic.name, sizeof out->nic.name, "%s (ib)", g->name);
        out->nic.bw = g->ib_bw;
        out->nic.latency_s = g->ib_latency_s;
    }
    out->host_mem_bytes = g->host_mem_bytes;
}

int coll_topo_load(const char *name_or_path, const char *datadir, coll_topo *out, sim_err *err) {
    static const char *const known[] = {"name",          "description",
                                        "gpus_per_node", "nvlink_domain_gpus",
                                        "intra_link",    "nics_per_node",
                                        "nic",           "host_mem_bytes",
                                        "sources",       NULL};
    char path[4096];
    json_t *o = NULL;
    const char *s = NULL;
    coll_topo t;
    int rc;

    memset(&t, 0, sizeof t);
    rc = load_object(datadir, "links/nodes", name_or_path, "topology", "a node topology .json",
                     path, sizeof path, &o, err);
    if (rc != SIM_OK)
        return rc;
    if ((rc = sim_json_check_keys(o, known, path, err)) != SIM_OK ||
        (rc = sim_json_get_int(o, "gpus_per_node", SIM_JSON_REQUIRED | SIM_JSON_POSITIVE,
                               &t.gpus_per_node, path, err)) != SIM_OK ||
        (rc = sim_json_get_int(o, "nvlink_domain_gpus", SIM_JSON_REQUIRED | SIM_JSON_NONNEG,
                               &t.nvlink_domain_gpus, path, err)) != SIM_OK ||
        (rc = sim_json_get_int(o, "nics_per_node", SIM_JSON_REQUIRED | SIM_JSON_NONNEG,
                               &t.nics_per_node, path, err)) != SIM_OK ||
        (rc = sim_json_get_double(o, "host_mem_bytes", SIM_JSON_REQUIRED | SIM_JSON_POSITIVE,
                                  "bytes", &t.host_mem_bytes, path, err)) != SIM_OK ||
        (rc = sim_json_get_string(o, "intra_link", SIM_JSON_REQUIRED, &s, path, err)) != SIM_OK)
        goto done;
    if ((rc = coll_link_load(s, datadir, &t.intra, err)) != SIM_OK)
        goto done;
    if ((rc = sim_json_get_string(o, "nic", SIM_JSON_REQUIRED, &s, path, err)) != SIM_OK)
        goto done;
    if (strcmp(s, "none") != 0 && (rc = coll_link_load(s, datadir, &t.nic, err)) != SIM_OK)
        goto done;
    if (strcmp(s, "none") == 0)
        t.nics_per_node = 0;
    sim_json_stem(path, t.name, sizeof t.name);
    *out = t;
done:
    json_decref(o);
    return rc;
}

/* ---- calibration files ---- */

void coll_calib_default(const coll_topo *t, coll_calib *out) {
    int op, lv;
    memset(out, 0, sizeof *out);
    for (lv = 0; lv < COLL_N_LEVELS; lv++)
        for (op = 0; op < COLL_N_OPS; op++) {
            coll_param *p = &out->p[lv][op][COLL_PROTO_SIMPLE];
            p->alpha_s = lv == COLL_INTRA ? t->intra.latency_s : t->nic.latency_s;
            p->eff_max = 1;
            snprintf(out->from[lv][op], sizeof out->from[lv][op], "datasheet");
        }
}

/* One protocol line: base_s, alpha_s, eff_max, half_bytes (all required). */
static int load_param(const json_t *po, const char *path, coll_param *p, sim_err *err) {
    int rc;
    if ((rc = sim_json_get_double(po, "base_s", SIM_JSON_REQUIRED | SIM_JSON_NONNEG, "s",
                                  &p->base_s, path, err)) != SIM_OK ||
        (rc = sim_json_get_double(po, "alpha_s", SIM_JSON_REQUIRED | SIM_JSON_NONNEG, "s",
                                  &p->alpha_s, path, err)) != SIM_OK ||
        (rc = sim_json_get_double(po, "eff_max", SIM_JSON_REQUIRED | SIM_JSON_POSITIVE,
                                  "fraction of link bandwidth", &p->eff_max, path, err)) !=
            SIM_OK ||
        (rc = sim_json_get_double(po, "half_bytes", SIM_JSON_REQUIRED | SIM_JSON_NONNEG, "bytes",
                                  &p->half_bytes, path, err)) != SIM_OK)
        return rc;
    return SIM_OK;
}

/* Reads the calibration at path over *c. Version 1 files (no "version"
 * field) hold one line per op, read as the Simple protocol with LL and
 * LL128 absent, which is what they meant. Version 2 holds per op an object
 * per protocol present ("ll", "ll128", "simple"); those absent are absent.
 * Other versions are refused. */
int coll_calib_load(const char *path, coll_calib *c, sim_err *err) {
    static const char *const top_known[] = {"version", "gpu",   "command", "model",
                                            "source",  "intra", "inter",   NULL};
    static const char *const p_known[] = {"base_s", "alpha_s", "eff_max", "half_bytes",
                                          "rows",   "from",    NULL};
    static const char *const op_known[] = {"ll", "ll128", "simple", "rows", "from", NULL};
    static const char *const pr_known[] = {"base_s",     "alpha_s", "eff_max",
                                           "half_bytes", "rows",    NULL};
    json_t *o = NULL;
    int rc, lv, op, r, version = 1;

    rc = sim_json_load_object(path, &o, err);
    if (rc != SIM_OK)
        return rc;
    if ((rc = sim_json_check_keys(o, top_known, path, err)) != SIM_OK ||
        (rc = sim_json_get_int(o, "version", 0, &version, path, err)) != SIM_OK)
        goto done;
    if (version != 1 && version != 2) {
        rc = sim_json_err_value(err, path, "version",
                                "1 or 2 (the collective calibration formats this kvfleet reads)",
                                json_object_get(o, "version"), SIM_EINVAL);
        goto done;
    }
    for (lv = 0; lv < COLL_N_LEVELS; lv++) {
        json_t *lo = NULL;
        if ((rc = sim_json_get_object(o, level_names[lv], 0, &lo, path, err)) != SIM_OK)
            goto done;
        if (lo == NULL)
            continue;
        for (op = 0; op < COLL_N_OPS; op++) {
            json_t *po = NULL;
            coll_param p[COLL_N_PROTOS];
            const char *from = NULL;
            int any = 0;
            if ((rc = sim_json_get_object(lo, op_names[op], 0, &po, path, err)) != SIM_OK)
                goto done;
            if (po == NULL)
                continue;
            memset(p, 0, sizeof p);
            if ((rc = sim_json_check_keys(po, version == 1 ? p_known : op_known, path, err)) !=
                    SIM_OK ||
                (rc = sim_json_get_string(po, "from", 0, &from, path, err)) != SIM_OK)
                goto done;
            if (version == 1) {
                if ((rc = load_param(po, path, &p[COLL_PROTO_SIMPLE], err)) != SIM_OK)
                    goto done;
                any = 1;
            }
            for (r = 0; version == 2 && r < COLL_N_PROTOS; r++) {
                json_t *ro = NULL;
                if ((rc = sim_json_get_object(po, proto_names[r], 0, &ro, path, err)) != SIM_OK)
                    goto done;
                if (ro == NULL)
                    continue;
                if ((rc = sim_json_check_keys(ro, pr_known, path, err)) != SIM_OK ||
                    (rc = load_param(ro, path, &p[r], err)) != SIM_OK)
                    goto done;
                any = 1;
            }
            if (!any) {
                sim_err_set(err, path, 0, 0,
                            "%s.%s: expected at least one protocol of ll, ll128, simple, got none",
                            level_names[lv], op_names[op]);
                rc = SIM_EINVAL;
                goto done;
            }
            memcpy(c->p[lv][op], p, sizeof p);
            snprintf(c->from[lv][op], sizeof c->from[lv][op], "%s", from ? from : "file");
        }
    }
done:
    json_decref(o);
    return rc;
}

/* Writes version 2: per level and op, "from" and one object per protocol
 * present. */
int coll_calib_save(const char *path, const coll_calib *c, const char *gpu, const char *command,
                    sim_err *err) {
    json_t *o = json_object();
    int lv, op, r, rc = SIM_OK;
    if (o == NULL)
        return SIM_ENOMEM;
    json_object_set_new(o, "version", json_integer(COLL_CALIB_VERSION));
    json_object_set_new(o, "gpu", json_string(gpu));
    json_object_set_new(o, "command", json_string(command));
    json_object_set_new(o, "model",
                        json_string("t = min over algorithm x protocol (ll, ll128, simple) of "
                                    "base_s + steps x alpha_s + bytes term x (n + half_bytes) "
                                    "/ eff_max; docs/collectives.md"));
    for (lv = 0; lv < COLL_N_LEVELS; lv++) {
        json_t *lo = json_object();
        for (op = 0; op < COLL_N_OPS; op++) {
            json_t *po = json_object();
            json_object_set_new(po, "from", json_string(c->from[lv][op]));
            for (r = 0; r < COLL_N_PROTOS; r++) {
                const coll_param *p = &c->p[lv][op][r];
                json_t *ro;
                if (!(p->eff_max > 0))
                    continue;
                ro = json_object();
                json_object_set_new(ro, "base_s", json_real(p->base_s));
                json_object_set_new(ro, "alpha_s", json_real(p->alpha_s));
                json_object_set_new(ro, "eff_max", json_real(p->eff_max));
                json_object_set_new(ro, "half_bytes", json_real(p->half_bytes));
                json_object_set_new(po, proto_names[r], ro);
            }
            json_object_set_new(lo, op_names[op], po);
        }
        json_object_set_new(o, level_names[lv], lo);
    }
    if (json_dump_file(o, path, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) !=
        0) {
        sim_err_set(err, path, 0, 0, "output: expected a writable file, got '%s'", path);
        rc = SIM_EIO;
    }
    json_decref(o);
    return rc;
}

/* ---- shapes and plans ---- */

/* Whether the collective spans two link levels. */
static int two_level(int gpus, int nodes, const coll_topo *t) {
    if (nodes <= 1)
        return 0;
    /* an NVLink domain wider than a node (NVL72) keeps the job on NVLink */
    return !(t->nvlink_domain_gpus > t->gpus_per_node && gpus <= t->nvlink_domain_gpus);
}

static void shape(coll_shape *s, coll_algo a, double st0, double st1, double b0, double b1,
                  int sum) {
    s->algo = a;
    s->steps[COLL_INTRA] = st0;
    s->steps[COLL_INTER] = st1;
    s->s_per_b[COLL_INTRA] = b0;
    s->s_per_b[COLL_INTER] = b1;
    s->sum = sum;
}

int coll_shapes(coll_op op, int gpus, int nodes, const coll_topo *t, coll_shape out[COLL_MAX_ALGOS],
                int *n_out, sim_err *err) {
    int p = gpus, M = nodes, g, n = 0;
    double Bi = t->intra.bw, Bnode, Bn = t->nic.bw;

    *n_out = 0;
    if (op < 0 || op >= COLL_N_OPS) {
        sim_err_set(err, "collective", 0, 0,
                    "op: expected one of allreduce, allgather, "
                    "reducescatter, sendrecv");
        return SIM_EINVAL;
    }
    if (p < 1) {
        sim_err_set(err, "collective", 0, 0, "gpus: expected an integer >= 1, got '%d'", p);
        return SIM_EINVAL;
    }
    if (M < 1 || p % M != 0) {
        sim_err_set(err, "collective", 0, 0,
                    "nodes: expected a divisor of gpus (%d) that is >= 1, got '%d'", p, M);
        return SIM_EINVAL;
    }
    g = p / M;
    if (g > t->gpus_per_node) {
        sim_err_set(err, "collective", 0, 0,
                    "gpus: expected at most %d GPUs per node (topology %s), got '%d' (%d GPUs on "
                    "%d node%s)",
                    t->gpus_per_node, t->name, g, p, M, M > 1 ? "s" : "");
        return SIM_EINVAL;
    }
    if (op == COLL_SENDRECV && p != 2) {
        sim_err_set(err, "collective", 0, 0,
                    "gpus: expected 2 for sendrecv (one sender, one receiver), got '%d'", p);
        return SIM_EINVAL;
    }
    if (p == 1) {
        shape(&out[0], COLL_ALGO_NONE, 0, 0, 0, 0, 0);
        *n_out = 1;
        return SIM_OK;
    }
    if (!two_level(p, M, t)) {
        if (!(Bi > 0)) {
            sim_err_set(err, "collective", 0, 0,
                        "topology: expected a GPU-to-GPU link inside the node, got none in '%s'",
                        t->name);
            return SIM_EINVAL;
        }
        switch (op) {
            case COLL_ALLREDUCE:
                shape(&out[n++], COLL_ALGO_RING, 2.0 * (p - 1), 0, 2.0 * (p - 1) / p / Bi, 0, 0);
                shape(&out[n++], COLL_ALGO_TREE, 2.0 * (p - 1), 0, 2.0 / Bi, 0, 0);
                break;
            case COLL_ALLGATHER:
            case COLL_REDUCESCATTER:
                shape(&out[n++], COLL_ALGO_RING, p - 1.0, 0, (p - 1.0) / p / Bi, 0, 0);
                break;
            default:
                shape(&out[n++], COLL_ALGO_P2P, 1, 0, 1 / Bi, 0, 0);
                break;
        }
        *n_out = n;
        return SIM_OK;
    }
    if (t->nics_per_node < 1 || !(Bn > 0)) {
        sim_err_set(err, "collective", 0, 0,
                    "nodes: expected 1, since topology %s has no inter-node network (NICs per "
                    "node: %d), got '%d'",
                    t->name, t->nics_per_node, M);
        return SIM_EINVAL;
    }
    if (g > 1 && !(Bi > 0)) {
        sim_err_set(err, "collective", 0, 0,
                    "topology: expected a GPU-to-GPU link inside the node, got none in '%s'",
                    t->name);
        return SIM_EINVAL;
    }
    Bnode = (t->nics_per_node < g ? t->nics_per_node : g) * Bn;
    {
        double bi = g > 1 ? 1 / Bi : 0, lg = ceil(log2((double)M));
        switch (op) {
            case COLL_ALLREDUCE:
                shape(&out[n++], COLL_ALGO_RING, 0, 2.0 * (p - 1), 2.0 * (p - 1) / p * bi,
                      2.0 * (p - 1) / p / Bnode, 0);
                shape(&out[n++], COLL_ALGO_TREE, 2.0 * (g - 1), 2 * lg, 2 * bi, 2 / Bnode, 0);
                if (g > 1)
                    shape(&out[n++], COLL_ALGO_HIER, 2.0 * (g - 1), 2.0 * (M - 1),
                          2.0 * (g - 1) / g * bi, 2.0 * (M - 1) / M / Bnode, 1);
                break;
            case COLL_ALLGATHER:
            case COLL_REDUCESCATTER:
                shape(&out[n++], COLL_ALGO_RING, 0, p - 1.0, (p - 1.0) / p * bi,
                      (p - 1.0) / p / Bnode, 0);
                if (g > 1)
                    shape(&out[n++], COLL_ALGO_HIER, g - 1.0, M - 1.0, (g - 1.0) / g * bi,
                          (M - 1.0) / M / Bnode, 1);
                break;
            default:
                shape(&out[n++], COLL_ALGO_P2P, 0, 1, 0, 1 / Bn, 0);
                break;
        }
    }
    *n_out = n;
    return SIM_OK;
}

int coll_plan_init(coll_plan *p, coll_op op, int gpus, int nodes, const coll_topo *t,
                   const coll_calib *c, sim_err *err) {
    coll_shape sh[COLL_MAX_ALGOS];
    int i, lv, n, r, rc;

    memset(p, 0, sizeof *p);
    rc = coll_shapes(op, gpus, nodes, t, sh, &n, err);
    if (rc != SIM_OK)
        return rc;
    p->op = op;
    p->gpus = gpus;
    p->nodes = nodes;
    switch (op) {
        case COLL_ALLREDUCE:
            p->busbw_factor = 2.0 * (gpus - 1) / gpus;
            break;
        case COLL_ALLGATHER:
        case COLL_REDUCESCATTER:
            p->busbw_factor = (gpus - 1.0) / gpus;
            break;
        default:
            p->busbw_factor = 1;
            break;
    }
    for (i = 0; i < n; i++) {
        if (sh[i].algo == COLL_ALGO_NONE) {
            p->alg[p->n].algo = COLL_ALGO_NONE;
            p->alg[p->n].proto = COLL_PROTO_SIMPLE;
            p->n++;
            continue;
        }
        for (r = 0; r < COLL_N_PROTOS; r++) {
            const coll_param *qi = &c->p[COLL_INTRA][op][r];
            int ok = 1;
            for (lv = 0; lv < COLL_N_LEVELS; lv++)
                if ((sh[i].steps[lv] > 0 || sh[i].s_per_b[lv] > 0) &&
                    !(c->p[lv][op][r].eff_max > 0))
                    ok = 0;
            if (!ok)
                continue;
            p->alg[p->n].algo = sh[i].algo;
            p->alg[p->n].proto = (coll_proto)r;
            p->alg[p->n].sum = sh[i].sum;
            p->alg[p->n].a_s = qi->eff_max > 0 ? qi->base_s : 0;
            for (lv = 0; lv < COLL_N_LEVELS; lv++) {
                const coll_param *q = &c->p[lv][op][r];
                if (!(sh[i].steps[lv] > 0 || sh[i].s_per_b[lv] > 0))
                    continue;
                p->alg[p->n].a_s += sh[i].steps[lv] * q->alpha_s;
                p->alg[p->n].k[lv] = sh[i].s_per_b[lv] / q->eff_max;
                p->alg[p->n].h[lv] = q->half_bytes;
            }
            p->n++;
        }
    }
    if (p->n == 0) {
        sim_err_set(err, "collective", 0, 0,
                    "calibration: expected a protocol present at every link level that %s on %d "
                    "GPUs over %d node%s uses, got none",
                    op_names[op], gpus, nodes, nodes > 1 ? "s" : "");
        return SIM_EINVAL;
    }
    return SIM_OK;
}

double coll_plan_time_proto(const coll_plan *p, double bytes, coll_algo *algo, coll_proto *proto) {
    double best = HUGE_VAL;
    int i, bi = 0;
    for (i = 0; i < p->n; i++) {
        double t0 = p->alg[i].k[0] > 0 ? p->alg[i].k[0] * (bytes + p->alg[i].h[0]) : 0;
        double t1 = p->alg[i].k[1] > 0 ? p->alg[i].k[1] * (bytes + p->alg[i].h[1]) : 0;
        double t = p->alg[i].a_s + (p->alg[i].sum ? t0 + t1 : (t0 > t1 ? t0 : t1));
        if (t < best) {
            best = t;
            bi = i;
        }
    }
    if (algo)
        *algo = p->n > 0 ? p->alg[bi].algo : COLL_ALGO_NONE;
    if (proto)
        *proto = p->n > 0 ? p->alg[bi].proto : COLL_PROTO_SIMPLE;
    return best;
}

double coll_plan_time(const coll_plan *p, double bytes, coll_algo *algo) {
    return coll_plan_time_proto(p, bytes, algo, NULL);
}

int coll_time(coll_op op, double bytes, int gpus, int nodes, const coll_topo *t,
              const coll_calib *c, double *time_s, coll_algo *algo, sim_err *err) {
    coll_plan p;
    int rc;
    if (!(bytes > 0) || !isfinite(bytes)) {
        sim_err_set(err, "collective", 0, 0, "bytes: expected a number > 0, got '%g'", bytes);
        return SIM_EINVAL;
    }
    rc = coll_plan_init(&p, op, gpus, nodes, t, c, err);
    if (rc != SIM_OK)
        return rc;
    *time_s = coll_plan_time(&p, bytes, algo);
    return SIM_OK;
}

/* ---- calibration fit ---- */

/* Weighted least squares y ~ X b over the columns with use[j] set (the
 * others get b[j] = 0); X is m x k row-major. Returns SIM_OK, or
 * SIM_EINVAL when there are fewer rows than unknowns or GSL fails. */
static int wls(const double *X, const double *y, const double *w, int m, int k, const int *use,
               double *b) {
    int j, i, q = 0, col[8], rc = SIM_OK;
    gsl_matrix *A = NULL, *cov = NULL;
    gsl_vector *vy = NULL, *vw = NULL, *vb = NULL;
    gsl_multifit_linear_workspace *ws = NULL;
    double chisq;

    for (j = 0; j < k; j++) {
        b[j] = 0;
        if (use[j])
            col[q++] = j;
    }
    if (q == 0 || m < q + 2)
        return SIM_EINVAL;
    A = gsl_matrix_alloc((size_t)m, (size_t)q);
    cov = gsl_matrix_alloc((size_t)q, (size_t)q);
    vy = gsl_vector_alloc((size_t)m);
    vw = gsl_vector_alloc((size_t)m);
    vb = gsl_vector_alloc((size_t)q);
    ws = gsl_multifit_linear_alloc((size_t)m, (size_t)q);
    if (!A || !cov || !vy || !vw || !vb || !ws) {
        rc = SIM_ENOMEM;
        goto done;
    }
    for (i = 0; i < m; i++) {
        for (j = 0; j < q; j++)
            gsl_matrix_set(A, (size_t)i, (size_t)j, X[i * k + col[j]]);
        gsl_vector_set(vy, (size_t)i, y[i]);
        gsl_vector_set(vw, (size_t)i, w[i]);
    }
    if (gsl_multifit_wlinear(A, vw, vy, vb, cov, &chisq, ws) != GSL_SUCCESS)
        rc = SIM_EINVAL;
    else
        for (j = 0; j < q; j++)
            b[col[j]] = gsl_vector_get(vb, (size_t)j);
done:
    gsl_multifit_linear_free(ws);
    gsl_vector_free(vb);
    gsl_vector_free(vw);
    gsl_vector_free(vy);
    gsl_matrix_free(cov);
    gsl_matrix_free(A);
    return rc;
}

/* Solves with the columns in use, dropping a column whose coefficient
 * comes out negative (none may be: base, alpha and half are >= 0) and
 * solving again; the bandwidth column bw_col (1/eff) must come out > 0. */
static int wls_nonneg(const double *X, const double *y, const double *w, int m, int k, int *use,
                      int bw_col, double *b) {
    int round, j;
    for (round = 0; round < k; round++) {
        int worst = -1, rc = wls(X, y, w, m, k, use, b);
        if (rc != SIM_OK)
            return rc;
        if (!(b[bw_col] > 0))
            return SIM_EINVAL;
        for (j = 0; j < k; j++)
            if (use[j] && j != bw_col && b[j] < 0 && (worst < 0 || b[j] < b[worst]))
                worst = j;
        if (worst < 0)
            return SIM_OK;
        use[worst] = 0;
    }
    return SIM_EINVAL;
}

/* Whether column j of the m x k matrix X holds one value. */
static int constant_col(const double *X, int m, int k, int j) {
    int i;
    for (i = 1; i < m; i++)
        if (X[i * k + j] != X[j])
            return 0;
    return 1;
}

/* Predicted time of sample s under calibration c, its algorithm and protocol. */
static double predict(const coll_sample *s, const coll_topo *t, const coll_calib *c,
                      coll_algo *algo, coll_proto *proto) {
    coll_plan p;
    if (coll_plan_init(&p, s->op, s->gpus, s->nodes, t, c, NULL) != SIM_OK)
        return HUGE_VAL;
    return coll_plan_time_proto(&p, s->bytes, algo, proto);
}

/* Scratch of the fits, n rows each (see coll_fit). */
typedef struct fit_buf {
    double *X, *y, *w;    /* a level's design matrix (k columns), targets, weights */
    double *Xs, *ys, *ws; /* the rows of one line */
    double *bytes;        /* each row's size */
    int *line;            /* each row's line (protocol) */
    coll_algo *algo;      /* each row's algorithm (inter level) */
    int *idx;             /* the sample behind each row (inter level) */
} fit_buf;

/* Row split points for the starts: up to FIT_CUTS sizes spread over the
 * distinct sizes of the m rows, written to cut[], sorted; returns how many. */
#define FIT_CUTS 12
static int size_cuts(const double *bytes, int m, double cut[FIT_CUTS]) {
    double u[FIT_CUTS + 2];
    double lo = HUGE_VAL, hi = 0;
    int i, k = 0;
    for (i = 0; i < m; i++) {
        lo = bytes[i] < lo ? bytes[i] : lo;
        hi = bytes[i] > hi ? bytes[i] : hi;
    }
    if (!(hi > lo))
        return 0;
    /* geometric grid strictly inside (lo, hi] */
    for (i = 1; i <= FIT_CUTS; i++)
        u[k++] = lo * pow(hi / lo, (double)i / (FIT_CUTS + 1));
    memcpy(cut, u, (size_t)k * sizeof *cut);
    return k;
}

/* Weighted squared relative error of line b (k columns) on row i. */
static double line_pred(const double *X, int k, int i, const double *b) {
    double t = 0;
    int j;
    for (j = 0; j < k; j++)
        t += X[i * k + j] * b[j];
    return t;
}

/* Fits one line on the rows of X (k columns, bandwidth column 1 or 2)
 * given to line j. use0 is the column mask before the per-subset checks
 * (a constant half/eff column is dropped). Returns SIM_OK or SIM_EINVAL. */
static int fit_line(const fit_buf *f, int m, int k, int j, const int *use0, int bw_col,
                    int half_col, int alpha_col, double *b) {
    int i, q = 0, use[4];
    for (i = 0; i < m; i++)
        if (f->line[i] == j) {
            memcpy(&f->Xs[q * k], &f->X[i * k], (size_t)k * sizeof *f->X);
            f->ys[q] = f->y[i];
            f->ws[q] = f->w[i];
            q++;
        }
    if (q == 0)
        return SIM_EINVAL;
    memcpy(use, use0, (size_t)k * sizeof *use);
    if (constant_col(f->Xs, q, k, half_col) &&
        (alpha_col < 0 || constant_col(f->Xs, q, k, alpha_col)))
        use[half_col] = 0; /* one shape: half/eff is another constant */
    return wls_nonneg(f->Xs, f->ys, f->ws, q, k, use, bw_col, b);
}

/* Intra-level fit of one op on single-level rows (columns: base, alpha,
 * 1/eff, half/eff), up to COLL_N_PROTOS lines. Each start splits the rows
 * by size into L lines (L = 1, 2, 3; cuts from size_cuts), then alternates
 * assignment and refit until no row moves (at most 30 rounds). A start
 * with more lines is kept only when it cuts the weighted squared relative
 * error by more than 5% (and 1e-9 per row), so noise-free data from one
 * line gives one line. The lines are then named by bandwidth: the slowest
 * is LL when there are three, the fastest always Simple. Returns the rows
 * used (0: not fitted). */
static int fit_intra(const coll_sample *s, int n, const coll_topo *t, coll_op op, coll_calib *c,
                     fit_buf *f) {
    double cut[FIT_CUTS], bestb[COLL_N_PROTOS][4], best_sse = HUGE_VAL;
    int i, j, m = 0, nc, L, c1, c2, best_L = 0, use0[4] = {1, 1, 1, 1};
    for (i = 0; i < n; i++) {
        coll_shape sh[COLL_MAX_ALGOS];
        int ns;
        if (s[i].op != op || s[i].gpus < 2 || two_level(s[i].gpus, s[i].nodes, t) ||
            coll_shapes(op, s[i].gpus, s[i].nodes, t, sh, &ns, NULL) != SIM_OK)
            continue;
        /* in one node the ring (p2p for sendrecv) is never slower than the chain */
        f->X[m * 4 + 0] = 1;
        f->X[m * 4 + 1] = sh[0].steps[COLL_INTRA];
        f->X[m * 4 + 2] = sh[0].s_per_b[COLL_INTRA] * s[i].bytes;
        f->X[m * 4 + 3] = sh[0].s_per_b[COLL_INTRA];
        f->y[m] = s[i].time_s;
        f->w[m] = 1 / (s[i].time_s * s[i].time_s);
        f->bytes[m] = s[i].bytes;
        m++;
    }
    if (m == 0)
        return 0;
    if (op == COLL_SENDRECV)
        use0[1] = 0; /* one step: alpha and base are the same column */
    nc = size_cuts(f->bytes, m, cut);
    for (L = 1; L <= COLL_N_PROTOS; L++) {
        double Lsse = HUGE_VAL, Lb[COLL_N_PROTOS][4];
        int Ln = 0;
        for (c1 = 0; c1 < (L > 1 ? nc : 1); c1++)
            for (c2 = (L > 2 ? c1 + 1 : 0); c2 < (L > 2 ? nc : 1); c2++) {
                double b[COLL_N_PROTOS][4], sse = 0;
                int on[COLL_N_PROTOS] = {0}, round, non = 0;
                for (i = 0; i < m; i++)
                    f->line[i] = L == 1                             ? 0
                                 : f->bytes[i] <= cut[c1]           ? 0
                                 : L == 2 || f->bytes[i] <= cut[c2] ? 1
                                                                    : 2;
                for (round = 0; round < 30; round++) {
                    int moved = 0;
                    for (j = 0; j < L; j++)
                        on[j] = fit_line(f, m, 4, j, use0, 2, 3, 1, b[j]) == SIM_OK;
                    for (i = 0; i < m; i++) {
                        double bt = HUGE_VAL;
                        int bj = -1;
                        for (j = 0; j < L; j++) {
                            double tj = on[j] ? line_pred(f->X, 4, i, b[j]) : HUGE_VAL;
                            if (tj < bt) {
                                bt = tj;
                                bj = j;
                            }
                        }
                        moved |= bj != f->line[i];
                        f->line[i] = bj;
                    }
                    if (!moved)
                        break;
                }
                for (j = 0; j < L; j++)
                    non += on[j];
                if (non < L)
                    continue; /* a line lost its rows: that start is an L-1 start */
                for (i = 0; i < m; i++) {
                    double e = line_pred(f->X, 4, i, b[f->line[i]]) - f->y[i];
                    sse += f->w[i] * e * e;
                }
                if (sse < Lsse) {
                    Lsse = sse;
                    Ln = L;
                    memcpy(Lb, b, sizeof b);
                }
            }
        if (Ln > 0 && (best_L == 0 || Lsse < 0.95 * best_sse - 1e-9 * m)) {
            best_sse = Lsse;
            best_L = Ln;
            memcpy(bestb, Lb, sizeof Lb);
        }
    }
    if (best_L == 0)
        return 0;
    /* name the lines: sort by 1/eff, slowest first, ending at Simple */
    for (i = 0; i < best_L; i++)
        for (j = i + 1; j < best_L; j++)
            if (bestb[j][2] > bestb[i][2]) {
                double tmp[4];
                memcpy(tmp, bestb[i], sizeof tmp);
                memcpy(bestb[i], bestb[j], sizeof tmp);
                memcpy(bestb[j], tmp, sizeof tmp);
            }
    memset(c->p[COLL_INTRA][op], 0, sizeof c->p[COLL_INTRA][op]);
    for (i = 0; i < best_L; i++) {
        coll_param *q = &c->p[COLL_INTRA][op][COLL_N_PROTOS - best_L + i];
        q->base_s = bestb[i][0];
        q->alpha_s = bestb[i][1];
        q->eff_max = 1 / bestb[i][2];
        q->half_bytes = bestb[i][3] / bestb[i][2];
    }
    snprintf(c->from[COLL_INTRA][op], sizeof c->from[COLL_INTRA][op], "fit");
    return m;
}

/* Inter-level fit of one op on two-level rows, given the intra level.
 * Lines are tied to the protocols present at the intra level (a
 * two-level candidate runs one protocol at both levels). Each start splits
 * the rows by size among the last L of those protocols and puts every row
 * on the first algorithm (ring or p2p); then, until no row changes
 * algorithm or protocol (at most 20 rounds), each protocol's inter line is
 * fitted on its rows (columns: alpha, 1/eff, half/eff; the target is the
 * time less the intra part, and in pipelined algorithms the inter-node
 * term is taken as the binding one) and every row takes the algorithm and
 * protocol the full model picks. Starts are kept as in fit_intra. */
static int fit_inter(const coll_sample *s, int n, const coll_topo *t, coll_op op, coll_calib *c,
                     fit_buf *f) {
    coll_param save[COLL_N_PROTOS], bestp[COLL_N_PROTOS];
    double cut[FIT_CUTS], best_sse = HUGE_VAL;
    int avail[COLL_N_PROTOS], na = 0, i, m = 0, nc, L, c1, c2, best_L = 0, r;

    memcpy(save, c->p[COLL_INTER][op], sizeof save);
    for (r = 0; r < COLL_N_PROTOS; r++)
        if (c->p[COLL_INTRA][op][r].eff_max > 0)
            avail[na++] = r;
    for (i = 0; i < n; i++) {
        coll_shape sh[COLL_MAX_ALGOS];
        int ns;
        if (s[i].op != op || !two_level(s[i].gpus, s[i].nodes, t) ||
            coll_shapes(op, s[i].gpus, s[i].nodes, t, sh, &ns, NULL) != SIM_OK)
            continue;
        f->idx[m] = i;
        f->bytes[m] = s[i].bytes;
        m++;
    }
    if (m == 0 || na == 0)
        return 0;
    nc = size_cuts(f->bytes, m, cut);
    for (L = 1; L <= na; L++) {
        double Lsse = HUGE_VAL;
        coll_param Lp[COLL_N_PROTOS];
        int Ln = 0;
        for (c1 = 0; c1 < (L > 1 ? nc : 1); c1++)
            for (c2 = (L > 2 ? c1 + 1 : 0); c2 < (L > 2 ? nc : 1); c2++) {
                double sse = 0;
                int round, ok = 1;
                for (i = 0; i < m; i++) {
                    int q = L == 1                             ? 0
                            : f->bytes[i] <= cut[c1]           ? 0
                            : L == 2 || f->bytes[i] <= cut[c2] ? 1
                                                               : 2;
                    f->line[i] = avail[na - L + q];
                    f->algo[i] = COLL_ALGO_NONE; /* the first shape */
                }
                for (round = 0; round < 20 && ok; round++) {
                    int moved = 0;
                    memset(c->p[COLL_INTER][op], 0, sizeof c->p[COLL_INTER][op]);
                    for (r = 0; r < COLL_N_PROTOS; r++) {
                        int q = 0, use[3] = {1, 1, 1};
                        double b[3];
                        const coll_param *pi = &c->p[COLL_INTRA][op][r];
                        for (i = 0; i < m; i++) {
                            const coll_sample *si = &s[f->idx[i]];
                            coll_shape sh[COLL_MAX_ALGOS];
                            double known = 0;
                            int ns, k = 0;
                            if (f->line[i] != r)
                                continue;
                            (void)coll_shapes(op, si->gpus, si->nodes, t, sh, &ns, NULL);
                            while (k < ns - 1 && sh[k].algo != f->algo[i])
                                k++;
                            if (f->algo[i] == COLL_ALGO_NONE)
                                k = 0;
                            if (pi->eff_max > 0) {
                                known = pi->base_s + sh[k].steps[COLL_INTRA] * pi->alpha_s;
                                if (sh[k].sum)
                                    known += sh[k].s_per_b[COLL_INTRA] / pi->eff_max *
                                             (si->bytes + pi->half_bytes);
                            }
                            f->Xs[q * 3 + 0] = sh[k].steps[COLL_INTER];
                            f->Xs[q * 3 + 1] = sh[k].s_per_b[COLL_INTER] * si->bytes;
                            f->Xs[q * 3 + 2] = sh[k].s_per_b[COLL_INTER];
                            f->ys[q] = si->time_s - known;
                            f->ws[q] = 1 / (si->time_s * si->time_s);
                            q++;
                        }
                        if (q == 0)
                            continue;
                        if (constant_col(f->Xs, q, 3, 2) && constant_col(f->Xs, q, 3, 0))
                            use[2] = 0; /* one shape: half/eff and alpha are both constants */
                        if (wls_nonneg(f->Xs, f->ys, f->ws, q, 3, use, 1, b) != SIM_OK) {
                            ok = 0;
                            break;
                        }
                        c->p[COLL_INTER][op][r].alpha_s = b[0];
                        c->p[COLL_INTER][op][r].eff_max = 1 / b[1];
                        c->p[COLL_INTER][op][r].half_bytes = b[2] / b[1];
                    }
                    for (i = 0; ok && i < m; i++) {
                        coll_algo a = COLL_ALGO_NONE;
                        coll_proto pr = COLL_PROTO_SIMPLE;
                        if (predict(&s[f->idx[i]], t, c, &a, &pr) == HUGE_VAL) {
                            ok = 0;
                            break;
                        }
                        moved |= a != f->algo[i] || (int)pr != f->line[i];
                        f->algo[i] = a;
                        f->line[i] = pr;
                    }
                    if (!moved)
                        break;
                }
                if (!ok)
                    continue;
                for (i = 0; i < m; i++) {
                    const coll_sample *si = &s[f->idx[i]];
                    double e = predict(si, t, c, NULL, NULL) - si->time_s;
                    sse += e * e / (si->time_s * si->time_s);
                }
                if (sse < Lsse) {
                    Lsse = sse;
                    Ln = L;
                    memcpy(Lp, c->p[COLL_INTER][op], sizeof Lp);
                }
            }
        if (Ln > 0 && (best_L == 0 || Lsse < 0.95 * best_sse - 1e-9 * m)) {
            best_sse = Lsse;
            best_L = Ln;
            memcpy(bestp, Lp, sizeof Lp);
        }
    }
    if (best_L == 0) {
        memcpy(c->p[COLL_INTER][op], save, sizeof save);
        return 0;
    }
    memcpy(c->p[COLL_INTER][op], bestp, sizeof bestp);
    snprintf(c->from[COLL_INTER][op], sizeof c->from[COLL_INTER][op], "fit");
    return m;
}

/* Whether sample s is a row of level lv's fit of op (the filters of
 * fit_intra and fit_inter). */
static int fit_row_of(const coll_sample *s, const coll_topo *t, coll_op op, int lv) {
    coll_shape sh[COLL_MAX_ALGOS];
    int ns;
    if (s->op != op)
        return 0;
    if (lv == COLL_INTRA ? s->gpus < 2 || two_level(s->gpus, s->nodes, t)
                         : !two_level(s->gpus, s->nodes, t))
        return 0;
    return coll_shapes(op, s->gpus, s->nodes, t, sh, &ns, NULL) == SIM_OK;
}

/* A line has four unknowns (base, alpha, 1/eff_max, half/eff_max), and
 * rows repeating one message size are one measurement: every op and level
 * that has rows needs at least as many distinct sizes as a line has
 * unknowns (one size cannot even tell the constant from the bandwidth). */
#define COLL_FIT_MIN_SIZES 4

/* Refuses an op and level whose rows hold fewer than COLL_FIT_MIN_SIZES
 * distinct sizes (rows repeating one size are one measurement). bytes is
 * n doubles of scratch. SIM_OK or SIM_EINVAL with *err naming the op. */
static int fit_sizes_check(const coll_sample *s, int n, const coll_topo *t, double *bytes,
                           sim_err *err) {
    int op, lv, i, m, d;
    for (lv = 0; lv < COLL_N_LEVELS; lv++)
        for (op = 0; op < COLL_N_OPS; op++) {
            for (i = m = 0; i < n; i++)
                if (fit_row_of(&s[i], t, (coll_op)op, lv))
                    bytes[m++] = s[i].bytes;
            if (m == 0)
                continue; /* no rows: borrowed, not fitted */
            qsort(bytes, (size_t)m, sizeof *bytes, sim_cmp_double);
            for (i = d = 1; i < m; i++)
                d += bytes[i] != bytes[i - 1];
            if (d < COLL_FIT_MIN_SIZES) {
                sim_err_set(err, "fit", 0, 0,
                            "%s: expected fit rows of at least %d distinct sizes %s (base, alpha, "
                            "efficiency and half-size), got %d distinct size%s in %d row%s",
                            op_names[op], COLL_FIT_MIN_SIZES,
                            lv == COLL_INTRA ? "within a node" : "across nodes", d,
                            d == 1 ? "" : "s", m, m == 1 ? "" : "s");
                return SIM_EINVAL;
            }
        }
    return SIM_OK;
}

int coll_fit(const coll_sample *s, int n, const coll_topo *t, coll_calib *c, sim_err *err) {
    static const coll_op donors[] = {COLL_ALLREDUCE, COLL_REDUCESCATTER, COLL_ALLGATHER,
                                     COLL_SENDRECV};
    size_t nn = (size_t)(n > 0 ? n : 1);
    fit_buf f;
    int fitted[COLL_N_LEVELS][COLL_N_OPS], op, lv, any = 0, rc = SIM_OK;
    gsl_error_handler_t *old = gsl_set_error_handler_off();

    f.X = SIM_NEW_ARRAY(double, nn * 4);
    f.y = SIM_NEW_ARRAY(double, nn);
    f.w = SIM_NEW_ARRAY(double, nn);
    f.Xs = SIM_NEW_ARRAY(double, nn * 4);
    f.ys = SIM_NEW_ARRAY(double, nn);
    f.ws = SIM_NEW_ARRAY(double, nn);
    f.bytes = SIM_NEW_ARRAY(double, nn);
    f.line = SIM_NEW_ARRAY(int, nn);
    f.algo = SIM_NEW_ARRAY(coll_algo, nn);
    f.idx = SIM_NEW_ARRAY(int, nn);
    if (!f.X || !f.y || !f.w || !f.Xs || !f.ys || !f.ws || !f.bytes || !f.line || !f.algo ||
        !f.idx) {
        rc = SIM_ENOMEM;
        goto done;
    }
    if ((rc = fit_sizes_check(s, n, t, f.bytes, err)) != SIM_OK)
        goto done;
    for (op = 0; op < COLL_N_OPS; op++) {
        fitted[COLL_INTRA][op] = fit_intra(s, n, t, (coll_op)op, c, &f);
        any |= fitted[COLL_INTRA][op];
    }
    for (op = 0; op < COLL_N_OPS; op++) {
        fitted[COLL_INTER][op] = fit_inter(s, n, t, (coll_op)op, c, &f);
        any |= fitted[COLL_INTER][op];
    }
    if (!any) {
        sim_err_set(err, "fit", 0, 0,
                    "rows: expected measurements of at least one op that the "
                    "model can fit, got none");
        rc = SIM_EINVAL;
        goto done;
    }
    /* ops without rows borrow a fitted op's lines (not the inter level's base) */
    for (lv = 0; lv < COLL_N_LEVELS; lv++)
        for (op = 0; op < COLL_N_OPS; op++) {
            size_t d;
            int r;
            if (fitted[lv][op])
                continue;
            for (d = 0; d < sizeof donors / sizeof donors[0]; d++)
                if (fitted[lv][donors[d]]) {
                    double base = c->p[lv][op][COLL_PROTO_SIMPLE].base_s;
                    memcpy(c->p[lv][op], c->p[lv][donors[d]], sizeof c->p[lv][op]);
                    for (r = 0; lv == COLL_INTER && r < COLL_N_PROTOS; r++)
                        c->p[lv][op][r].base_s = c->p[lv][op][r].eff_max > 0 ? base : 0;
                    snprintf(c->from[lv][op], sizeof c->from[lv][op], "from %s",
                             op_names[donors[d]]);
                    break;
                }
        }
done:
    gsl_set_error_handler(old);
    sim_free(f.idx);
    sim_free(f.algo);
    sim_free(f.line);
    sim_free(f.bytes);
    sim_free(f.ws);
    sim_free(f.ys);
    sim_free(f.Xs);
    sim_free(f.w);
    sim_free(f.y);
    sim_free(f.X);
    return rc;
}
