/* collective.h: the time of an NCCL-style collective on a node topology.
 *
 * A collective over `gpus` GPUs on `nodes` nodes (gpus / nodes GPUs on each)
 * is costed with alpha-beta formulas: a fixed base, a per-step latency
 * (alpha) times the algorithm's sequential steps, and the bytes each GPU
 * must move over its slowest link divided by that link's achievable
 * bandwidth. Inside a node (an NVLink domain) the link is the GPU's NVLink
 * (or PCIe when the node has none); between nodes it is the node's NICs,
 * shared by its GPUs. Algorithms: ring, tree (NCCL's double binary tree
 * between nodes, a chain inside), hier (intra-node reduce-scatter,
 * inter-node step, intra-node all-gather) and p2p for send/recv; the one
 * with the lower predicted time is chosen. Formulas: docs/collectives.md.
 *
 * Bytes follow nccl-tests: the whole buffer for all-reduce, the gathered
 * output for all-gather, the input for reduce-scatter, the message for
 * send/recv.
 *
 * The achievable bandwidth is link bandwidth x eff(n), eff(n) = eff_max x
 * n / (n + half_bytes), and base, alpha, eff_max and half_bytes per link
 * level, op and protocol come from a calibration fitted by least squares on
 * measured NCCL runs (coll_fit), or from the datasheet (alpha = link
 * latency, eff 1, one protocol). Protocols are NCCL's LL, LL128 and Simple:
 * each is its own alpha-beta line (low latency and low bandwidth first), and
 * the time of a collective is the minimum over algorithm x protocol, as
 * NCCL's tuner picks. A protocol with eff_max 0 is absent.
 *
 * For a simulator: coll_plan_init() folds topology, calibration and shape
 * into a few constants once; coll_plan_time() is then a few flops per call. */
#ifndef SIM_COLLECTIVE_H
#define SIM_COLLECTIVE_H

#include "err.h"
#include "hw.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum coll_op {
    COLL_ALLREDUCE,
    COLL_ALLGATHER,
    COLL_REDUCESCATTER,
    COLL_SENDRECV,
    COLL_N_OPS
} coll_op;

typedef enum coll_algo {
    COLL_ALGO_NONE, /* one GPU: nothing moves */
    COLL_ALGO_RING,
    COLL_ALGO_TREE,
    COLL_ALGO_HIER,
    COLL_ALGO_P2P,
    COLL_N_ALGOS
} coll_algo;

/* NCCL's protocols, in the order of their fitted lines: lowest latency
 * (and bandwidth) first. */
typedef enum coll_proto {
    COLL_PROTO_LL,
    COLL_PROTO_LL128,
    COLL_PROTO_SIMPLE,
    COLL_N_PROTOS
} coll_proto;

/* Link levels: inside an NVLink domain, and between nodes. */
enum { COLL_INTRA, COLL_INTER, COLL_N_LEVELS };

/* Candidate algorithms of one collective, at most. */
#define COLL_MAX_ALGOS 3
/* Candidates (algorithm x protocol) of one plan, at most. */
#define COLL_MAX_CANDS (COLL_MAX_ALGOS * COLL_N_PROTOS)

/* Calibration file format written by coll_calib_save (1: one line per op,
 * read as the Simple protocol; 2: one line per op and protocol). */
#define COLL_CALIB_VERSION 2

/* One link kind (data/links/NAME.json). */
typedef struct coll_link {
    char name[96];    /* preset name, e.g. "nvlink4" */
    char kind[16];    /* "nvlink", "pcie", "ib" */
    double bw;        /* bytes/s per direction (0: absent) */
    double latency_s; /* per message, s */
} coll_link;

/* A node type and its network. */
typedef struct coll_topo {
    char name[64];          /* topology or GPU preset name */
    int gpus_per_node;      /* GPUs in one server, >= 1 */
    int nvlink_domain_gpus; /* GPUs one NVLink domain joins (0: no NVLink; may exceed a node) */
    coll_link intra;        /* a GPU's link to its peers in the node (NVLink, else PCIe) */
    int nics_per_node;      /* scale-out NICs per node, shared by its GPUs (0: none) */
    coll_link nic;          /* one NIC */
    double host_mem_bytes;  /* host DRAM per node, bytes */
} coll_topo;

/* Per link level, op and protocol: t = base_s + steps x alpha_s + bytes term / eff(n). */
typedef struct coll_param {
    double base_s;     /* fixed cost per call, s (intra level only) */
    double alpha_s;    /* per sequential step, s */
    double eff_max;    /* achievable fraction of link bandwidth for large n, > 0; 0: absent */
    double half_bytes; /* n at which eff reaches half of eff_max, bytes >= 0 */
} coll_param;

typedef struct coll_calib {
    coll_param p[COLL_N_LEVELS][COLL_N_OPS][COLL_N_PROTOS];
    char from[COLL_N_LEVELS][COLL_N_OPS][32]; /* "datasheet", "fit", "from sendrecv", ... */
} coll_calib;

/* The structure of one algorithm, before calibration: steps per level and
 * seconds per byte per level at full link bandwidth. */
typedef struct coll_shape {
    coll_algo algo;
    double steps[COLL_N_LEVELS];   /* sequential latency steps */
    double s_per_b[COLL_N_LEVELS]; /* bytes moved over the level's bottleneck / its bandwidth */
    int sum;                       /* 1: levels run one after the other; 0: pipelined (max) */
} coll_shape;

/* A collective folded with its calibration: per candidate (algorithm x
 * protocol) time(n) = a_s + comb(k0 (n + h0), k1 (n + h1)); the plan's
 * time is the candidates' minimum. */
typedef struct coll_plan {
    coll_op op;
    int gpus, nodes;
    double busbw_factor; /* nccl-tests busbw = n / t x this */
    int n;               /* candidates, 1 .. COLL_MAX_CANDS */
    struct {
        coll_algo algo;
        coll_proto proto;
        double a_s;              /* base and latency steps, s */
        double k[COLL_N_LEVELS]; /* s per byte at eff_max */
        double h[COLL_N_LEVELS]; /* half_bytes */
        int sum;
    } alg[COLL_MAX_CANDS];
} coll_plan;

/* "allreduce", "allgather", "reducescatter", "sendrecv". */
const char *coll_op_name(coll_op op);
/* "none", "ring", "tree", "hier", "p2p". */
const char *coll_algo_name(coll_algo a);
/* "ll", "ll128", "simple". */
const char *coll_proto_name(coll_proto r);
/* Parses an op name; SIM_EINVAL when unknown. */
int coll_op_parse(const char *s, coll_op *out);

/* Loads DATA/links/NAME.json or a path. */
int coll_link_load(const char *name_or_path, const char *datadir, coll_link *out, sim_err *err);
/* Derives the topology of a GPU preset's standard server: NVLink (else
 * PCIe) inside, one NIC per GPU when the preset has InfiniBand. */
void coll_topo_from_gpu(const sim_gpu *g, coll_topo *out);
/* Loads DATA/links/nodes/NAME.json or a path (links named by preset). */
int coll_topo_load(const char *name_or_path, const char *datadir, coll_topo *out, sim_err *err);

/* Datasheet parameters: the Simple protocol only, base 0, alpha = link
 * latency, eff 1, half 0. */
void coll_calib_default(const coll_topo *t, coll_calib *out);
/* Reads a calibration file (version 1 or 2) over *c (which holds the
 * defaults first); levels and ops absent from the file keep their values. */
int coll_calib_load(const char *path, coll_calib *c, sim_err *err);
/* Writes c as JSON to path, with the GPU name and the command that made it. */
int coll_calib_save(const char *path, const coll_calib *c, const char *gpu, const char *command,
                    sim_err *err);

/* The candidate algorithms of op on gpus GPUs over nodes nodes; refuses
 * (SIM_EINVAL) shapes the topology cannot run. */
int coll_shapes(coll_op op, int gpus, int nodes, const coll_topo *t,
                coll_shape out[COLL_MAX_ALGOS] /* OUT */, int *n_out /* OUT */, sim_err *err);
/* Folds the shapes and the calibration into *p; SIM_EINVAL when no
 * protocol is present at every level a shape uses. */
int coll_plan_init(coll_plan *p /* OUT */, coll_op op, int gpus, int nodes, const coll_topo *t,
                   const coll_calib *c, sim_err *err);
/* Seconds for bytes (> 0) and, in *algo (may be NULL), the algorithm chosen. */
double coll_plan_time(const coll_plan *p, double bytes, coll_algo *algo /* OUT */);
/* coll_plan_time, also giving the protocol chosen in *proto (may be NULL). */
double coll_plan_time_proto(const coll_plan *p, double bytes, coll_algo *algo /* OUT */,
                            coll_proto *proto /* OUT */);
/* One-shot: coll_plan_init and coll_plan_time; refuses bytes <= 0. */
int coll_time(coll_op op, double bytes, int gpus, int nodes, const coll_topo *t,
              const coll_calib *c, double *time_s /* OUT */, coll_algo *algo /* OUT */,
              sim_err *err);

/* One measured collective. */
typedef struct coll_sample {
    coll_op op;
    int gpus, nodes;
    double bytes, time_s;
} coll_sample;

/* Fits *c (holding the defaults) to the samples by weighted linear least
 * squares on relative error: the intra level per op on single-node rows,
 * then the inter level on multi-node rows given the intra fit; per level
 * and op up to COLL_N_PROTOS lines, each row costed by the line (and
 * algorithm) that is fastest for it. Levels and ops without rows borrow a
 * fitted op's parameters (c->from says which). */
int coll_fit(const coll_sample *s, int n, const coll_topo *t, coll_calib *c, sim_err *err);

#ifdef __cplusplus
}
#endif
#endif /* SIM_COLLECTIVE_H */
