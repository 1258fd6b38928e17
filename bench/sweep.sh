#!/bin/sh
# bench/sweep.sh: sweep throughput in points per minute with --jobs 1 and
# --jobs N (N = cores), on the 16-run spec tests/data/sweep/long.json
# (tiny model, 1500 synthetic requests a run). Usage: sweep.sh KVFLEET SPEC
set -eu
KV=$1
SPEC=$2
N=$(nproc 2>/dev/null || echo 2)
T=$(mktemp -d /tmp/kvfleet-bench-sweep.XXXXXX)
trap 'rm -rf "$T"' EXIT
runs=$("$KV" sweep "$SPEC" --dry-run | head -1 | sed 's/.* = \([0-9]*\) runs.*/\1/')
now() { date +%s.%N; }
printf '%-8s %6s %10s %12s\n' jobs runs wall_s points/min
for j in 1 $N; do
    t0=$(now)
    "$KV" sweep "$SPEC" --db "$T/j$j.db" --jobs "$j" --quiet
    t1=$(now)
    awk -v j="$j" -v r="$runs" -v a="$t0" -v b="$t1" \
        'BEGIN { printf "%-8s %6d %10.2f %12.1f\n", j, r, b - a, 60 * r / (b - a) }'
done
