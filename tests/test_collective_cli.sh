#!/bin/sh
# test_collective_cli.sh: `kvfleet collective` end to end: the JSON contract,
# the algorithm choice, byte suffixes, exit codes 1 (bad input) and 2
# (usage) with their messages, --check on the shipped calibration, and
# --source (per-source tables, priority order for the fit).
set -u
. "${srcdir:-.}/tests/tap.sh"
tap_tmp coll
# code WANT ARGS...: runs kvfleet collective ARGS, keeps stderr in $T/err
code() {
    want=$1
    shift
    "$KV" collective "$@" >"$T/out" 2>"$T/err"
    [ $? -eq "$want" ]
}

"$KV" collective --op allreduce --bytes 64MiB --gpus 8 --gpu h100-sxm --calibration none --json >"$T/j" 2>"$T/err"
check "allreduce exits 0" "[ $? -eq 0 ]"
check "JSON has time_s, algorithm, protocol, busbw_gbps" \
    "grep -q '\"time_s\": ' $T/j && grep -q '\"algorithm\": \"ring\"' $T/j && grep -q '\"protocol\": \"simple\"' $T/j && grep -q '\"busbw_gbps\": ' $T/j"
# datasheet: 14 x 3 us + 2 x 7/8 x 64 MiB / 450e9 B/s = 42 us + 260.979 us
check "datasheet ring time" "grep -q '\"time_s\": 0.000302978' $T/j"
"$KV" collective --op allreduce --bytes 67108864 --gpus 8 --gpu h100-sxm --calibration none --json >"$T/j2" 2>&1
check "64MiB equals 67108864 bytes" "cmp -s $T/j $T/j2"
"$KV" collective --op allreduce --bytes 4KiB --gpus 16 --nodes 2 --gpu h100-sxm --calibration none --json >"$T/j3" 2>&1
check "small multi-node allreduce picks the tree" "grep -q '\"algorithm\": \"tree\"' $T/j3"
"$KV" collective --op sendrecv --bytes 1G --gpus 2 --nodes 2 --gpu a100-sxm >"$T/h" 2>&1
check "human line" "grep -q 'sendrecv of 1073741824 bytes on 2 GPUs (2 nodes, a100-sxm)' $T/h"
"$KV" collective --op allreduce --bytes 9007199254740993 --gpus 2 --gpu h100-sxm >"$T/h2" 2>&1
check "human line, bytes exact" "grep -q 'allreduce of 9007199254740993 bytes on 2 GPUs' $T/h2"
check "topology file" "code 0 --op allgather --bytes 1M --gpus 16 --nodes 2 --gpu a100-sxm --topology dgx-a100-1nic"

check "unknown op: 1" "code 1 --op alltoall --bytes 1M --gpus 8 --gpu h100-sxm"
check "unknown op message" "grep -q 'op: expected one of allreduce' $T/err"
check "gpus < 1: 1" "code 1 --op allreduce --bytes 1M --gpus 0 --gpu h100-sxm"
check "nodes not dividing gpus: 1" "code 1 --op allreduce --bytes 1M --gpus 8 --nodes 3 --gpu h100-sxm"
check "message names the divisor" "grep -q 'nodes: expected a divisor of gpus (8)' $T/err"
check "too many GPUs per node: 1" "code 1 --op allreduce --bytes 1M --gpus 16 --gpu h100-sxm"
check "bytes <= 0: 1" "code 1 --op allreduce --bytes 0 --gpus 8 --gpu h100-sxm"
check "hexadecimal bytes are not a number: 2" "code 2 --op allreduce --bytes 0x10 --gpus 8 --gpu h100-sxm"
check "bytes beyond a double: 1" "code 1 --op allreduce --bytes 1e400 --gpus 8 --gpu h100-sxm"
check "bytes beyond a double after the suffix: 1" "code 1 --op allreduce --bytes 1e300T --gpus 8 --gpu h100-sxm"
# a byte count is whole, from 1 to 2^63-1: 0.5 ran with "bytes": 0.5, and
# 99999999999999999999T as 1.1e32 bytes, both exit 0
for b in 0.5 0.1K 99999999999999999999T 9223372036854775808 -1K; do
    check "bytes $b (not whole, or beyond 64 bits): 1, naming --bytes" \
        "code 1 --op allreduce --bytes $b --gpus 8 --gpu h100-sxm --json && [ ! -s $T/out ] && grep -qx -- \"kvfleet collective: --bytes: expected a whole number of bytes from 1 to 2^63-1 (9223372036854775807), got '$b'\" $T/err"
done
# a suffix may scale a fraction to a whole count, read exactly (a double
# makes 1.001KB 1000.9999999999999), and echoed exactly (as a double,
# 2^53+1 came back as 9007199254740992 and 2^63-1 as 9.2233720368547758e+18)
for b in 1.5K:1536 1.001KB:1001 0.5T:549755813888 9007199254740993:9007199254740993 \
    9223372036854775807:9223372036854775807; do
    check "bytes ${b%%:*} is ${b#*:}" \
        "code 0 --op allreduce --bytes ${b%%:*} --gpus 8 --gpu h100-sxm --calibration none --json && grep -q '\"bytes\": ${b#*:},' $T/out"
done
check "sendrecv on 4 GPUs: 1" "code 1 --op sendrecv --bytes 1M --gpus 4 --gpu h100-sxm"
cat >"$T/noib.json" <<'JSON'
{"name": "noib", "gpus_per_node": 8, "nvlink_domain_gpus": 8, "intra_link": "nvlink4",
 "nics_per_node": 0, "nic": "none", "host_mem_bytes": 1e12}
JSON
check "several nodes without IB: 1" \
    "code 1 --op allreduce --bytes 1M --gpus 16 --nodes 2 --gpu h100-sxm --topology $T/noib.json"
check "no-IB message" "grep -q 'no inter-node network' $T/err"
check "unknown GPU: 1" "code 1 --op allreduce --bytes 1M --gpus 8 --gpu nope"
check "malformed bytes: 2" "code 2 --op allreduce --bytes 12Q --gpus 8 --gpu h100-sxm"
check "malformed gpus: 2" "code 2 --op allreduce --bytes 1M --gpus x --gpu h100-sxm"
check "missing --gpu: 2" "code 2 --op allreduce --bytes 1M --gpus 8"
check "unknown option: 2" "code 2 --frobnicate"
check "gpus beyond 10^9: 1, stating the range" \
    "code 1 --op allreduce --bytes 1M --gpus 1000000001 --gpu h100-sxm && grep -q -- '--gpus: expected a count from 1 to 1000000000' $T/err"
check "gpus beyond int64: 1" "code 1 --op allreduce --bytes 1M --gpus 99999999999999999999 --gpu h100-sxm"
check "nodes 0: 1, stating the range" \
    "code 1 --op allreduce --bytes 1M --gpus 8 --nodes 0 --gpu h100-sxm && grep -q -- '--nodes: expected a count from 1' $T/err"
check "non-integer gpus: 2" "code 2 --op allreduce --bytes 1M --gpus 1.5 --gpu h100-sxm"
check "trailing unknown option: 2, called unknown" \
    "code 2 --op allreduce --bytes 1M --gpus 2 --gpu h100-sxm --frob && grep -q -- '--frob: unknown option' $T/err"
check "trailing option lacking its value: 2, saying so" \
    "code 2 --op allreduce --bytes 1M --gpu h100-sxm --gpus && grep -q -- '--gpus: expected a value' $T/err"
check "help: 0" "code 0 --help"

check "--check prints held-out errors" \
    "code 0 --check $srcdir/data/profiles/nccl/nccl.csv --gpu h100-sxm --json && grep -q '\"median_abs_rel_err\"' $T/out"
check "--check --source keeps one source" \
    "code 0 --check $srcdir/data/profiles/nccl/nccl.csv --gpu h100-sxm --source aic-nccl && grep -q '^aic-nccl-2.29.2 *allreduce *8 *1' $T/out && ! grep -q vidur $T/out"
check "--check reports each source apart" \
    "code 0 --check $srcdir/data/profiles/nccl/nccl.csv --gpu h100-sxm && grep -q '^vidur-h100_dgx *allreduce *8 *1' $T/out && grep -q '^aic-nccl-2.29.2 *allreduce *8 *1' $T/out"
check "small 8-GPU H100 allreduce runs a low-latency protocol" \
    "code 0 --op allreduce --bytes 4KiB --gpus 8 --gpu h100-sxm --json && grep -q '\"protocol\": \"ll\"' $T/out"
mkdir -p "$T/adir"
check "a folder as --gpu, --calibration or --topology: bad input, 1" \
    "code 1 --op allreduce --bytes 1e6 --gpus 8 --gpu $T/adir && code 1 --op allreduce --bytes 1e6 --gpus 8 --gpu h100-sxm --calibration $T/adir && code 1 --op allreduce --bytes 1e6 --gpus 8 --gpu h100-sxm --topology $T/adir"
check "empty --source: 2" "code 2 --check $srcdir/data/profiles/nccl/nccl.csv --gpu h100-sxm --source aic,"
check "--source '': 2 (it applied no filter), and a,,a quoted whole" \
    "code 2 --check $srcdir/data/profiles/nccl/nccl.csv --gpu h100-sxm --source '' &&
     code 2 --check $srcdir/data/profiles/nccl/nccl.csv --gpu h100-sxm --source 'a,,a' && grep -q \"got 'a,,a'\" $T/err"
check "--check --source matching no row: exit 1, the sources listed (it printed an empty table)" \
    "code 1 --check $srcdir/data/profiles/nccl/nccl.csv --gpu h100-sxm --source zzz &&
     grep -q 'got prefixes that match none' $T/err && grep -q 'aic-nccl' $T/err"
check "one GPU: no time, bandwidths null in JSON (they were 0)" \
    "code 0 --op allreduce --bytes 1 --gpus 1 --gpu h100-sxm --json && grep -q '\"busbw_gbps\": null, \"algbw_gbps\": null' $T/out"
# rows of no selected source are never fitted: a source matching nothing
# fits nothing (exit 1), and aic-nccl alone fits no send/recv (it has none;
# Vidur's rows once filled in)
check "--fit --source matching no row: exit 1" \
    "code 1 --fit $srcdir/data/profiles/nccl/nccl.csv --gpu h100-sxm --source nomatch -o $T/nm.json && [ ! -e $T/nm.json ]"
check "--fit --source aic-nccl fits no Vidur-only operator (send/recv not from a fit)" \
    "code 0 --fit $srcdir/data/profiles/nccl/nccl.csv --gpu h100-sxm --source aic-nccl -o $T/aic.json && [ \"\$(grep -A1 '\"sendrecv\"' $T/aic.json | grep -c '\"from\": \"fit\"')\" = 0 ]"
check "--fit --source records the source in the command" \
    "code 0 --fit $srcdir/data/profiles/nccl/nccl.csv --gpu h100-sxm --source aic-nccl,vidur-h100_dgx -o $T/h.json && grep -q -- '--source aic-nccl,vidur-h100_dgx' $T/h.json && grep -q '\"version\": 2' $T/h.json"
# one size repeated is one measurement: an underdetermined fit is refused
N="$srcdir/data/profiles/nccl/nccl.csv"
{ head -1 "$N"; for i in 1 2 3 4 5 6 7 8 9 10; do sed -n 2p "$N"; done; } >"$T/one.csv"
check "--fit on one distinct size: exit 1, naming the op and the counts, nothing written" \
    "code 1 --fit $T/one.csv --gpu h100-sxm -o $T/one.json && [ ! -e $T/one.json ] && grep -q 'fit: allgather: expected fit rows of at least 4 distinct sizes within a node (base, alpha, efficiency and half-size), got 1 distinct size in 10 rows' $T/err"
grep '^aic-nccl-2.29.2,h100-sxm,allgather,2,1,.*,fit$' "$N" | tail -5 >"$T/rows5"
{ head -1 "$N"; sed -n '1,3p' "$T/rows5"; sed -n '1,3p' "$T/rows5"; } >"$T/three.csv"
check "--fit on three distinct sizes (six rows): exit 1, counting sizes, not rows" \
    "code 1 --fit $T/three.csv --gpu h100-sxm && grep -q 'got 3 distinct sizes in 6 rows' $T/err"
{ head -1 "$N"; cat "$T/rows5"; } >"$T/five.csv"
check "--fit on five distinct sizes of an op runs (exit 0)" "code 0 --fit $T/five.csv --gpu h100-sxm -o $T/five.json"
check "--fit -o=FILE writes FILE, as -o FILE does (was an unknown option, exit 2)" \
    "code 0 --fit $T/five.csv --gpu h100-sxm -o=$T/five2.json && [ ! -s $T/err ] && grep -q '\"version\": 2' $T/five2.json"
check "--fit writes a calibration that loads" \
    "code 0 --fit $srcdir/data/profiles/nccl/nccl.csv --gpu a100-sxm -o $T/c.json && code 0 --op allreduce --bytes 1M --gpus 8 --gpu a100-sxm --calibration $T/c.json"

tap_end
