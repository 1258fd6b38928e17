#!/bin/sh
# bench/run.sh: simulator speed (make bench). Prints figures; asserts nothing.
#  (1) the Azure 2023 conversation trace at 8x its rate, Llama-3-8B, one H100 SXM;
#  (2) one million Poisson requests of the Azure conversation shape on 16 replicas.
# Each with no results file, and with every request's row written to SQLite (steps and
# timeline rows off: they grow with simulated steps, not requests).
# Simulated requests per wall second, events per second and peak RSS come from the run's
# own JSON summary (peak_rss_bytes is getrusage's ru_maxrss). Each case runs
# BENCH_REPEAT times (default 3; the runs are deterministic, so only the wall time
# varies): the line gives the median run, and the range of requests/s over the runs.
set -eu
KV=${1:-./kvfleet}
REPEAT=${BENCH_REPEAT:-3}
case $REPEAT in '' | *[!0-9]* | 0)
    echo "bench/run.sh: BENCH_REPEAT: expected a positive integer, got '$REPEAT'" >&2
    exit 2 ;;
esac
T=$(mktemp -d /tmp/kvfleet-bench.XXXXXX)
trap 'rm -rf "$T"' EXIT
SHAPE='isl=lognormal(mean=1155;sigma=1.0),osl=lognormal(mean=211;sigma=1.0)'

field() { sed -n "s/^ *\"$1\": \\([^,]*\\),*$/\\1/p" "$2" | head -n 1; }

bench() { # name, then kvfleet run arguments
    name=$1
    shift
    : >"$T/walls"
    i=0
    while [ "$i" -lt "$REPEAT" ]; do
        rm -f "$T"/*.db # each run writes a fresh results file
        "$KV" run --json "$@" >"$T/out.json" 2>"$T/err" || { echo "$name: failed"; cat "$T/err"; return 1; }
        field wall_s "$T/out.json" >>"$T/walls"
        i=$((i + 1))
    done
    hwm=$(field peak_rss_bytes "$T/out.json")
    req=$(field requests "$T/out.json")
    ev=$(field sim_events "$T/out.json")
    sort -g "$T/walls" | awk -v n="$name" -v r="$req" -v e="$ev" -v m="$hwm" '
        { w[NR] = $1 }
        END {
            med = w[int((NR + 1) / 2)]
            printf "%-44s %9d req %8.2f s wall %11.0f req/s (%.0f-%.0f, %d runs) %6.2f M events/s  peak RSS %6.1f MiB\n",
                   n, r, med, r / med, r / w[NR], r / w[1], NR, e / med / 1e6, m / 1048576 }'
}

echo "kvfleet bench ($("$KV" --version | head -n 1)), $(date -u +%Y-%m-%d), $(uname -m)"
bench "azure-conv x8, 1 x H100, no rows" --load-scale 8 --no-db --timeline-s 0
bench "azure-conv x8, 1 x H100, request rows" --load-scale 8 --db "$T/b.db" --steps-sample 0 --timeline-s 0
bench "1M Poisson, 16 replicas, no rows" --replicas 16 --no-db --timeline-s 0 \
    --synthetic "poisson,rate=80,requests=1000000,$SHAPE"
bench "1M Poisson, 16 replicas, request rows" --replicas 16 --db "$T/c.db" \
    --steps-sample 0 --timeline-s 0 \
    --synthetic "poisson,rate=80,requests=1000000,$SHAPE"
