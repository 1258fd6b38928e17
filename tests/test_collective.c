/* test_collective.c: sim/collective against hand computation: every op and
 * algorithm on a made-up topology (B_i = 100 GB/s, 1 us; NICs 10 GB/s,
 * 5 us), the choice of the faster algorithm, NICs shared by a node's GPUs,
 * the calibration terms, the minimum over protocols, refused shapes, the
 * least-squares fit recovering known parameters (one line, and three
 * protocol lines), calibration files of versions 1 and 2, and the shipped
 * calibrations against held-out measurements in
 * data/profiles/nccl/nccl.csv. */
#include "config.h"

#include "collective.h"
#include "t.h"

static coll_topo topo(int nics) {
    coll_topo t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "test");
    t.gpus_per_node = 8;
    t.nvlink_domain_gpus = 8;
    t.intra.bw = 100e9;
    t.intra.latency_s = 1e-6;
    t.nics_per_node = nics;
    t.nic.bw = 10e9;
    t.nic.latency_s = 5e-6;
    t.host_mem_bytes = 1e12;
    return t;
}

static double tm(coll_op op, double n, int gpus, int nodes, const coll_topo *t, const coll_calib *c,
                 coll_algo *a) {
    double s = -1;
    sim_err e;
    int rc = coll_time(op, n, gpus, nodes, t, c, &s, a, &e);
    if (rc != SIM_OK)
        T_FAIL_("coll_time: %s", e.msg);
    return s;
}

static void one_node(void) {
    coll_topo t = topo(8);
    coll_calib c;
    coll_algo a;
    coll_shape sh[COLL_MAX_ALGOS];
    int n;
    coll_calib_default(&t, &c);
    /* ring all-reduce, 4 GPUs: 2(p-1) alpha + 2(p-1)/p n / B = 6 us + 1.5 ms */
    T_REL(tm(COLL_ALLREDUCE, 1e8, 4, 1, &t, &c, &a), 6e-6 + 1.5e-3, 1e-12);
    T_EQ_I(a, COLL_ALGO_RING);
    /* the chain (tree inside a node): 2(p-1) alpha + 2 n / B */
    T_EQ_I(coll_shapes(COLL_ALLREDUCE, 4, 1, &t, sh, &n, NULL), SIM_OK);
    T_EQ_I(n, 2);
    T_EQ_I(sh[1].algo, COLL_ALGO_TREE);
    T_REL(sh[1].steps[COLL_INTRA], 6, 1e-15);
    T_REL(sh[1].s_per_b[COLL_INTRA], 2 / 100e9, 1e-15);
    /* all-gather and reduce-scatter, 8 GPUs: (p-1) alpha + (p-1)/p n / B */
    T_REL(tm(COLL_ALLGATHER, 1e8, 8, 1, &t, &c, &a), 7e-6 + 8.75e-4, 1e-12);
    T_EQ_I(a, COLL_ALGO_RING);
    T_REL(tm(COLL_REDUCESCATTER, 1e8, 8, 1, &t, &c, &a), 7e-6 + 8.75e-4, 1e-12);
    /* send/recv: alpha + n / B */
    T_REL(tm(COLL_SENDRECV, 1e8, 2, 1, &t, &c, &a), 1e-6 + 1e-3, 1e-12);
    T_EQ_I(a, COLL_ALGO_P2P);
    /* one GPU: nothing moves */
    T_NEAR(tm(COLL_ALLREDUCE, 1e8, 1, 1, &t, &c, &a), 0, 0);
    T_EQ_I(a, COLL_ALGO_NONE);
}

static void two_nodes(void) {
    coll_topo t = topo(8), t1 = topo(1);
    coll_calib c;
    coll_algo a;
    coll_calib_default(&t, &c);
    /* 16 GPUs on 2 nodes, g = 8, B_node = 8 x 10 GB/s. n = 1e8:
     *  ring 30 x 5 us + max(30/16 n / 100e9, 30/16 n / 80e9) = 150 us + 2.34375 ms
     *  tree 14 x 1 us + 2 x 5 us + max(2n / 100e9, 2n / 80e9)  = 24 us + 2.5 ms
     *  hier 24 us + 14/8 n / 100e9 + 2 x 1/2 n / 80e9         = 24 us + 3 ms */
    T_REL(tm(COLL_ALLREDUCE, 1e8, 16, 2, &t, &c, &a), 150e-6 + 2.34375e-3, 1e-12);
    T_EQ_I(a, COLL_ALGO_RING);
    /* n = 1000: latency-bound; tree 24 us + 25 ns beats hier 24 us + 30 ns */
    T_REL(tm(COLL_ALLREDUCE, 1e3, 16, 2, &t, &c, &a), 24e-6 + 25e-9, 1e-12);
    T_EQ_I(a, COLL_ALGO_TREE);
    /* one NIC shared by 8 GPUs: B_node = 10 GB/s; n = 1e8:
     *  ring 150 us + 18.75 ms; tree 24 us + 20 ms; hier 24 us + 1.75 ms + 10 ms */
    T_REL(tm(COLL_ALLREDUCE, 1e8, 16, 2, &t1, &c, &a), 24e-6 + 1.75e-3 + 1e-2, 1e-12);
    T_EQ_I(a, COLL_ALGO_HIER);
    /* all-gather, 16 on 2, n = 1e8: ring 15 x 5 us + 15/16 n / 80e9;
     * hier 7 us + 5 us + 7/8 n / 100e9 + 1/2 n / 80e9 */
    T_REL(tm(COLL_ALLGATHER, 1e8, 16, 2, &t, &c, &a), 75e-6 + 15.0 / 16 * 1e8 / 80e9, 1e-12);
    T_EQ_I(a, COLL_ALGO_RING);
    T_REL(tm(COLL_REDUCESCATTER, 1e8, 16, 2, &t1, &c, &a), 12e-6 + 8.75e-4 + 0.5e8 / 10e9, 1e-12);
    T_EQ_I(a, COLL_ALGO_HIER);
    /* send/recv across nodes: one NIC, alpha_ib + n / B_n */
    T_REL(tm(COLL_SENDRECV, 1e8, 2, 2, &t, &c, &a), 5e-6 + 1e-2, 1e-12);
    /* one GPU per node: ring over NICs only, 2(p-1) alpha_ib + 2(p-1)/p n / B_n */
    T_REL(tm(COLL_ALLREDUCE, 1e8, 2, 2, &t, &c, &a), 10e-6 + 1e-2, 1e-12);
    T_EQ_I(a, COLL_ALGO_RING);
}

static void calibrated_terms(void) {
    coll_topo t = topo(8);
    coll_calib c;
    coll_plan p;
    coll_algo a;
    coll_calib_default(&t, &c);
    c.p[COLL_INTRA][COLL_ALLREDUCE][COLL_PROTO_SIMPLE].base_s = 2e-6;
    c.p[COLL_INTRA][COLL_ALLREDUCE][COLL_PROTO_SIMPLE].eff_max = 0.5;
    c.p[COLL_INTRA][COLL_ALLREDUCE][COLL_PROTO_SIMPLE].half_bytes = 1e6;
    /* 2 us + 6 x 1 us + 1.5e-11 / 0.5 x (n + 1e6) */
    T_EQ_I(coll_plan_init(&p, COLL_ALLREDUCE, 4, 1, &t, &c, NULL), SIM_OK);
    T_REL(coll_plan_time(&p, 1e8, &a), 8e-6 + 3e-11 * (1e8 + 1e6), 1e-12);
    T_REL(p.busbw_factor, 1.5, 1e-15);
}

/* The time is the minimum over algorithm x protocol; a two-level
 * candidate needs its protocol at both levels. */
static void protocols(void) {
    coll_topo t = topo(8);
    coll_calib c;
    coll_plan p;
    coll_algo a;
    coll_proto r;
    coll_param ll = {1e-6, 0.5e-6, 0.05, 0}, simple = {20e-6, 0, 0.8, 0};
    sim_err e;
    coll_calib_default(&t, &c);
    c.p[COLL_INTRA][COLL_ALLREDUCE][COLL_PROTO_LL] = ll;
    c.p[COLL_INTRA][COLL_ALLREDUCE][COLL_PROTO_SIMPLE] = simple;
    T_EQ_I(coll_plan_init(&p, COLL_ALLREDUCE, 4, 1, &t, &c, NULL), SIM_OK);
    T_EQ_I(p.n, 4); /* ring and tree, each with LL and Simple */
    /* 4 GPUs, ring: LL 1 us + 6 x 0.5 us + 1.5 n / (100e9 x 0.05) = 4 us + 3e-10 n;
     * Simple 20 us + 1.875e-11 n; they cross at n = 16e-6 / 2.8125e-10 = 56889 */
    T_REL(coll_plan_time_proto(&p, 1e4, &a, &r), 4e-6 + 3e-10 * 1e4, 1e-12);
    T_EQ_I(a, COLL_ALGO_RING);
    T_EQ_I(r, COLL_PROTO_LL);
    T_REL(coll_plan_time_proto(&p, 1e6, &a, &r), 20e-6 + 1.875e-11 * 1e6, 1e-12);
    T_EQ_I(r, COLL_PROTO_SIMPLE);
    T_STREQ(coll_proto_name(COLL_PROTO_LL128), "ll128");
    /* two nodes: the inter level has only Simple, so LL is no candidate */
    T_EQ_I(coll_plan_init(&p, COLL_ALLREDUCE, 16, 2, &t, &c, NULL), SIM_OK);
    T_EQ_I(p.n, 3);
    (void)coll_plan_time_proto(&p, 1e3, &a, &r);
    T_EQ_I(r, COLL_PROTO_SIMPLE);
    /* no protocol at the inter level: refused */
    memset(c.p[COLL_INTER][COLL_ALLREDUCE], 0, sizeof c.p[COLL_INTER][COLL_ALLREDUCE]);
    T_EQ_I(coll_plan_init(&p, COLL_ALLREDUCE, 16, 2, &t, &c, &e), SIM_EINVAL);
    T_CONTAINS(e.msg, "calibration: expected a protocol present at every link level");
}

static void refused(void) {
    coll_topo t = topo(8), none = topo(0);
    coll_calib c;
    double s;
    sim_err e;
    coll_calib_default(&t, &c);
    T_EQ_I(coll_time(COLL_ALLREDUCE, 1e6, 0, 1, &t, &c, &s, NULL, &e), SIM_EINVAL);
    T_CONTAINS(e.msg, "gpus: expected an integer >= 1, got '0'");
    T_EQ_I(coll_time(COLL_ALLREDUCE, 1e6, 8, 3, &t, &c, &s, NULL, &e), SIM_EINVAL);
    T_CONTAINS(e.msg, "nodes: expected a divisor of gpus (8)");
    T_EQ_I(coll_time(COLL_ALLREDUCE, 1e6, 16, 1, &t, &c, &s, NULL, &e), SIM_EINVAL);
    T_CONTAINS(e.msg, "expected at most 8 GPUs per node");
    T_EQ_I(coll_time(COLL_ALLREDUCE, 1e6, 16, 2, &none, &c, &s, NULL, &e), SIM_EINVAL);
    T_CONTAINS(e.msg, "no inter-node network");
    T_EQ_I(coll_time(COLL_SENDRECV, 1e6, 4, 1, &t, &c, &s, NULL, &e), SIM_EINVAL);
    T_CONTAINS(e.msg, "expected 2 for sendrecv");
    T_EQ_I(coll_time(COLL_ALLREDUCE, 0, 2, 1, &t, &c, &s, NULL, &e), SIM_EINVAL);
    T_CONTAINS(e.msg, "bytes: expected a number > 0");
}

/* The fit recovers the parameters that generated noise-free samples. */
static void fit_recovers(void) {
    coll_topo t = topo(8);
    coll_calib truth, c;
    coll_sample s[400];
    int n = 0, p, k, op;
    coll_calib_default(&t, &truth);
    for (op = 0; op < COLL_N_OPS; op++) {
        coll_param *q = &truth.p[COLL_INTRA][op][COLL_PROTO_SIMPLE];
        q->base_s = 4e-6 + op * 1e-6;
        q->alpha_s = op == COLL_SENDRECV ? 0 : 0.7e-6;
        q->eff_max = 0.8;
        /* send/recv has one shape, so its offset is all base (alpha) */
        q->half_bytes = op == COLL_SENDRECV ? 0 : 5e5;
    }
    truth.p[COLL_INTER][COLL_SENDRECV][COLL_PROTO_SIMPLE].alpha_s = 9e-6;
    truth.p[COLL_INTER][COLL_SENDRECV][COLL_PROTO_SIMPLE].eff_max = 0.7;
    for (op = 0; op < COLL_N_OPS; op++)
        for (p = 2; p <= 8; p *= 2)
            for (k = 10; k <= 30; k += 2) {
                if (op == COLL_SENDRECV && p != 2)
                    continue;
                s[n].op = (coll_op)op;
                s[n].gpus = p;
                s[n].nodes = 1;
                s[n].bytes = (double)(1L << k);
                s[n].time_s = tm(s[n].op, s[n].bytes, p, 1, &t, &truth, NULL);
                n++;
            }
    for (k = 10; k <= 30; k += 2) {
        s[n].op = COLL_SENDRECV;
        s[n].gpus = 2;
        s[n].nodes = 2;
        s[n].bytes = (double)(1L << k);
        s[n].time_s = tm(s[n].op, s[n].bytes, 2, 2, &t, &truth, NULL);
        n++;
    }
    coll_calib_default(&t, &c);
    T_EQ_I(coll_fit(s, n, &t, &c, NULL), SIM_OK);
    /* one line in, one line out (as Simple): more lines must pay */
    for (op = 0; op < COLL_N_OPS; op++) {
        const coll_param *f = &c.p[COLL_INTRA][op][COLL_PROTO_SIMPLE];
        const coll_param *w = &truth.p[COLL_INTRA][op][COLL_PROTO_SIMPLE];
        T_REL(f->base_s, w->base_s, 1e-6);
        T_NEAR(f->alpha_s, w->alpha_s, 1e-12);
        T_REL(f->eff_max, w->eff_max, 1e-6);
        T_NEAR(f->half_bytes, w->half_bytes, 1e-6 * w->half_bytes);
        T_NEAR(c.p[COLL_INTRA][op][COLL_PROTO_LL].eff_max, 0, 0);
        T_NEAR(c.p[COLL_INTRA][op][COLL_PROTO_LL128].eff_max, 0, 0);
        T_STREQ(c.from[COLL_INTRA][op], "fit");
    }
    T_REL(c.p[COLL_INTER][COLL_SENDRECV][COLL_PROTO_SIMPLE].alpha_s, 9e-6, 1e-6);
    T_REL(c.p[COLL_INTER][COLL_SENDRECV][COLL_PROTO_SIMPLE].eff_max, 0.7, 1e-6);
    T_NEAR(c.p[COLL_INTER][COLL_SENDRECV][COLL_PROTO_SIMPLE].half_bytes, 0, 0);
    T_STREQ(c.from[COLL_INTER][COLL_ALLREDUCE], "from sendrecv");
}

/* Noise-free all-reduce rows from three protocol lines (2, 4, 8 GPUs,
 * 512 B to 512 MiB): the alternating fit finds the three lines. */
static void fit_protocols(void) {
    coll_topo t = topo(8);
    coll_calib truth, c;
    coll_sample s[200];
    const coll_param want[COLL_N_PROTOS] = {
        {3e-6, 0.5e-6, 0.02, 0}, {6e-6, 0.8e-6, 0.3, 0}, {30e-6, 0, 0.8, 0}};
    int n = 0, p, k, r;
    coll_calib_default(&t, &truth);
    memcpy(truth.p[COLL_INTRA][COLL_ALLREDUCE], want, sizeof want);
    for (p = 2; p <= 8; p *= 2)
        for (k = 9; k <= 29; k++) {
            s[n].op = COLL_ALLREDUCE;
            s[n].gpus = p;
            s[n].nodes = 1;
            s[n].bytes = (double)(1L << k);
            s[n].time_s = tm(COLL_ALLREDUCE, s[n].bytes, p, 1, &t, &truth, NULL);
            n++;
        }
    coll_calib_default(&t, &c);
    T_EQ_I(coll_fit(s, n, &t, &c, NULL), SIM_OK);
    for (r = 0; r < COLL_N_PROTOS; r++) {
        const coll_param *f = &c.p[COLL_INTRA][COLL_ALLREDUCE][r];
        T_REL(f->base_s, want[r].base_s, 1e-6);
        T_NEAR(f->alpha_s, want[r].alpha_s, 1e-12);
        T_REL(f->eff_max, want[r].eff_max, 1e-6);
    }
    /* all-gather borrows all three lines */
    T_STREQ(c.from[COLL_INTRA][COLL_ALLGATHER], "from allreduce");
    T_REL(c.p[COLL_INTRA][COLL_ALLGATHER][COLL_PROTO_LL].eff_max, 0.02, 1e-6);
}

/* Calibration files: version 1 (no version field) reads as Simple only,
 * version 2 per protocol, a save loads back, and other versions or an op
 * without a protocol are refused with a clear message. */
static void calib_files(void) {
    coll_topo t = topo(8);
    coll_calib c, d;
    char path[] = "/tmp/kvfleet-coll-calib.XXXXXX";
    sim_err e;
    FILE *f;
    int fd = mkstemp(path);
    T_ASSERT(fd >= 0);
    f = fdopen(fd, "w");
    fprintf(f, "{\"intra\": {\"allreduce\": {\"base_s\": 1e-6, \"alpha_s\": 2e-6, "
               "\"eff_max\": 0.5, \"half_bytes\": 10, \"from\": \"fit\"}}}\n");
    fclose(f);
    coll_calib_default(&t, &c);
    T_EQ_I(coll_calib_load(path, &c, &e), SIM_OK);
    T_REL(c.p[COLL_INTRA][COLL_ALLREDUCE][COLL_PROTO_SIMPLE].alpha_s, 2e-6, 1e-15);
    T_NEAR(c.p[COLL_INTRA][COLL_ALLREDUCE][COLL_PROTO_LL].eff_max, 0, 0);
    T_REL(c.p[COLL_INTRA][COLL_ALLGATHER][COLL_PROTO_SIMPLE].alpha_s, 1e-6, 1e-15); /* kept */
    f = fopen(path, "w");
    fprintf(f, "{\"version\": 2, \"intra\": {\"allreduce\": {\"from\": \"fit\", \"ll\": "
               "{\"base_s\": 1e-6, \"alpha_s\": 2e-6, \"eff_max\": 0.05, \"half_bytes\": 0}}}}\n");
    fclose(f);
    T_EQ_I(coll_calib_load(path, &c, &e), SIM_OK);
    T_REL(c.p[COLL_INTRA][COLL_ALLREDUCE][COLL_PROTO_LL].eff_max, 0.05, 1e-15);
    T_NEAR(c.p[COLL_INTRA][COLL_ALLREDUCE][COLL_PROTO_SIMPLE].eff_max, 0, 0);
    T_EQ_I(coll_calib_save(path, &c, "test", "test", &e), SIM_OK);
    coll_calib_default(&t, &d);
    T_EQ_I(coll_calib_load(path, &d, &e), SIM_OK);
    T_REL(d.p[COLL_INTRA][COLL_ALLREDUCE][COLL_PROTO_LL].alpha_s, 2e-6, 1e-6);
    T_NEAR(d.p[COLL_INTRA][COLL_ALLREDUCE][COLL_PROTO_SIMPLE].eff_max, 0, 0);
    T_REL(d.p[COLL_INTER][COLL_SENDRECV][COLL_PROTO_SIMPLE].alpha_s, 5e-6, 1e-6);
    f = fopen(path, "w");
    fprintf(f, "{\"version\": 3, \"intra\": {}}\n");
    fclose(f);
    T_EQ_I(coll_calib_load(path, &c, &e), SIM_EINVAL);
    T_CONTAINS(e.msg, "version: expected 1 or 2 (the collective calibration formats this kvfleet "
                      "reads), got '3'");
    f = fopen(path, "w");
    fprintf(f, "{\"version\": 2, \"intra\": {\"allgather\": {\"from\": \"fit\"}}}\n");
    fclose(f);
    T_EQ_I(coll_calib_load(path, &c, &e), SIM_EINVAL);
    T_CONTAINS(e.msg, "intra.allgather: expected at least one protocol of ll, ll128, simple");
    remove(path);
}

/* The shipped calibrations against held-out rows of the shipped data, each
 * row: aiconfigurator's NCCL 2.29.2 all-reduce and all-gather on 2, 4 and
 * 8 H100 within 17% (all-gather on 8 within 12%), reduce-scatter within
 * 22%, and Vidur's A100 inter-node send/recv within 12%; and the median of
 * the aiconfigurator all-reduce rows of each GPU count within 7%. */
static void held_out(void) {
    const char *dd = KV_SRCDATADIR;
    char path[1024], line[512];
    FILE *f;
    int checked[2] = {0, 0}, n_ar[9] = {0}, g8;
    double ar[9][32];
    const char *gpus[2] = {"h100-sxm", "a100-sxm"};
    coll_topo t[2];
    coll_calib c[2];
    int i;
    for (i = 0; i < 2; i++) {
        sim_gpu g;
        sim_err e;
        if (sim_gpu_load(gpus[i], dd, &g, &e) != SIM_OK)
            T_FAIL_("%s", e.msg);
        coll_topo_from_gpu(&g, &t[i]);
        coll_calib_default(&t[i], &c[i]);
        snprintf(path, sizeof path, "%s/calib/nccl-%s.json", dd, gpus[i]);
        if (coll_calib_load(path, &c[i], &e) != SIM_OK)
            T_FAIL_("%s", e.msg);
    }
    snprintf(path, sizeof path, "%s/profiles/nccl/nccl.csv", dd);
    f = fopen(path, "r");
    T_ASSERT(f != NULL);
    while (fgets(line, sizeof line, f)) {
        char src[64], gpu[32], op[32], set[16];
        int g, nodes, which;
        double bytes, ts, pred;
        coll_op o;
        if (sscanf(line, "%63[^,],%31[^,],%31[^,],%d,%d,%lf,%lf,%15s", src, gpu, op, &g, &nodes,
                   &bytes, &ts, set) != 8 ||
            strcmp(set, "holdout") != 0)
            continue;
        if (strcmp(src, "aic-nccl-2.29.2") == 0 && strcmp(op, "sendrecv") != 0)
            which = 0;
        else if (strcmp(src, "vidur-a100_dgx") == 0 && strcmp(op, "sendrecv") == 0 && nodes == 2)
            which = 1;
        else
            continue;
        T_EQ_I(coll_op_parse(op, &o), SIM_OK);
        pred = tm(o, bytes, g, nodes, &t[which], &c[which], NULL);
        {
            double tol = which == 1                      ? 0.12
                         : o == COLL_REDUCESCATTER       ? 0.22
                         : o == COLL_ALLGATHER && g == 8 ? 0.12
                                                         : 0.17;
            if (fabs(pred - ts) / ts > tol)
                T_FAIL_("%s %s %d GPUs %d nodes %.0f B: predicted %g s, measured %g s", src, op, g,
                        nodes, bytes, pred, ts);
        }
        if (which == 0 && o == COLL_ALLREDUCE && g <= 8 && n_ar[g] < 32)
            ar[g][n_ar[g]++] = fabs(pred - ts) / ts;
        checked[which]++;
    }
    fclose(f);
    T_ASSERT(checked[0] >= 45 && checked[1] >= 10);
    for (g8 = 2; g8 <= 8; g8 *= 2) {
        int q, below = 0;
        T_ASSERT(n_ar[g8] >= 5);
        /* the median: at least half the rows within 7% */
        for (q = 0; q < n_ar[g8]; q++)
            below += ar[g8][q] <= 0.07;
        if (2 * below < n_ar[g8])
            T_FAIL_("aiconfigurator all-reduce on %d GPUs: %d of %d held-out rows within 7%%", g8,
                    below, n_ar[g8]);
    }
}

static void names(void) {
    coll_op o;
    T_EQ_I(coll_op_parse("reducescatter", &o), SIM_OK);
    T_EQ_I(o, COLL_REDUCESCATTER);
    T_EQ_I(coll_op_parse("alltoall", &o), SIM_EINVAL);
    T_STREQ(coll_algo_name(COLL_ALGO_HIER), "hier");
}

int main(void) {
    one_node();
    two_nodes();
    calibrated_terms();
    protocols();
    refused();
    fit_recovers();
    fit_protocols();
    calib_files();
    held_out();
    names();
    printf("test_collective: ok\n");
    return 0;
}
