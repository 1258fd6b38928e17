#!/usr/bin/env python3
"""subset.py: builds nccl.csv, the collective measurements kvfleet's
collective model is fitted on, from the public NCCL profiles in
/work/shared/data (or the folder given as the first argument).

Sources (values unchanged, only converted to seconds and bytes):
  - aiconfigurator h100_sxm nccl-2.29.2 nccl_perf.csv: all_reduce,
    all_gather, reduce_scatter, dtype half (bytes = 2 x message_size), 2/4/8
    GPUs in one NVLink node; latency ms -> time_s.
  - vidur network h100_dgx and a100_dgx {all_reduce,send_recv}.csv: the
    median column (ms -> s); nodes = num_workers / devices_per_node. The
    sizes are a linear grid from 2 KiB to 64 MiB (993 sizes); this keeps
    the size nearest to each 2048 * 2^(k/4), so every octave weighs the
    same (about 61 sizes per configuration). A repeated size keeps its
    first row.

Split: within each (source, gpu, op, gpus, nodes) group sorted by bytes,
every fourth row (index % 4 == 2) is held out ("holdout"), the rest is
"fit". Output columns: source,gpu,op,gpus,nodes,bytes,time_s,set.
Standard library only."""
import csv
import os
import sys

SHARED = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "nccl.csv")
OPS = {"all_reduce": "allreduce", "all_gather": "allgather",
       "reduce_scatter": "reducescatter", "send_recv": "sendrecv"}


def aic():
    rows = []
    path = os.path.join(SHARED, "profiles/aiconfigurator/h100_sxm/nccl-2.29.2/nccl_perf.csv")
    with open(path) as f:
        for r in csv.DictReader(f):
            if r["op_name"] not in OPS or r["nccl_dtype"] != "half":
                continue
            rows.append(("aic-nccl-2.29.2", "h100-sxm", OPS[r["op_name"]], int(r["num_gpus"]), 1,
                         2 * int(r["message_size"]), float(r["latency"]) / 1e3))
    return rows


def vidur(topo, gpu, name):
    path = os.path.join(SHARED, "profiles/vidur/network", topo, name + ".csv")
    groups = {}
    with open(path) as f:
        for r in csv.DictReader(f):
            nw, dpn = int(r["num_workers"]), int(r["devices_per_node"])
            key = (nw, nw // dpn)
            size = int(r["size"])
            g = groups.setdefault(key, {})
            if size not in g:
                g[size] = float(r["time_stats.%s.median" % name]) / 1e3
    rows = []
    for (nw, nodes), g in sorted(groups.items()):
        sizes = sorted(g)
        keep = []
        k = 0
        while 2048 * 2 ** (k / 4) <= sizes[-1] * 1.01:
            target = 2048 * 2 ** (k / 4)
            best = min(sizes, key=lambda s: (abs(s - target), s))
            if best not in keep:
                keep.append(best)
            k += 1
        for s in keep:
            rows.append(("vidur-" + topo, gpu, OPS[name], nw, nodes, s, g[s]))
    return rows


def main():
    rows = aic()
    for topo, gpu in (("h100_dgx", "h100-sxm"), ("a100_dgx", "a100-sxm")):
        for name in ("all_reduce", "send_recv"):
            rows += vidur(topo, gpu, name)
    groups = {}
    for r in rows:
        groups.setdefault(r[:5], []).append(r)
    with open(OUT, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["source", "gpu", "op", "gpus", "nodes", "bytes", "time_s", "set"])
        for key in sorted(groups):
            for i, r in enumerate(sorted(groups[key], key=lambda x: x[5])):
                w.writerow(list(r[:6]) + [repr(r[6]), "holdout" if i % 4 == 2 else "fit"])


if __name__ == "__main__":
    main()
