#!/bin/sh
# bench/fleet.sh: a simulated day of a 1,000-GPU fleet on one core (make bench).
# bench/fleet-1000.json: 62 Llama-3-70B replicas at TP8 (496 H100 SXM) and 504
# Llama-3-8B replicas at TP1, one region, least-outstanding-tokens router;
# a synthetic diurnal Poisson load (150 requests/s at midnight, 450 at noon,
# about 26 million requests a day) of the Azure conversation shape, a quarter
# of it for the 70B model. Prints wall time, simulated requests and events per
# wall second, and peak RSS; asserts nothing. KVFLEET_BENCH_FLEET_HOURS
# shortens the day (default 24).
set -eu
KV=${1:-./kvfleet}
FLEET=${2:-bench/fleet-1000.json}
H=${KVFLEET_BENCH_FLEET_HOURS:-24}
T=$(mktemp -d /tmp/kvfleet-fleet.XXXXXX)
trap 'rm -rf "$T"' EXIT
SHAPE='isl=lognormal(mean=1155;sigma=1.0),osl=lognormal(mean=211;sigma=1.0)'
dur=$(awk -v h="$H" 'BEGIN { printf "%d", h * 3600 }')
field() { sed -n "s/^ *\"$1\": \\([^,]*\\),*$/\\1/p" "$2" | head -n 1; }
"$KV" run --fleet "$FLEET" --no-db --steps-sample 0 --timeline-s 0 --json \
    --synthetic "poisson,rate=diurnal(base=150;peak=450;period=86400),duration=$dur,$SHAPE" \
    >"$T/out.json" 2>"$T/err" || { echo "fleet day: failed"; cat "$T/err"; exit 1; }
awk -v r="$(field requests "$T/out.json")" -v e="$(field sim_events "$T/out.json")" \
    -v s="$(field steps "$T/out.json")" -v w="$(field wall_s "$T/out.json")" \
    -v m="$(field peak_rss_bytes "$T/out.json")" -v h="$H" 'BEGIN {
    printf "fleet: %g h of 1,000 GPUs (566 replicas): %d requests, %.0f steps, %.1f s wall (%.1f min), %.0f req/s, %.2f M events/s, peak RSS %.2f GiB\n",
           h, r, s, w, w / 60, r / w, e / w / 1e6, m / 1073741824 }'
echo "  TTFT p50 $(field ttft_p50_s "$T/out.json") s, p99 $(field ttft_p99_s "$T/out.json") s; mean batch $(field mean_batch_size "$T/out.json"); GPU-hours $(field gpu_hours "$T/out.json"), USD $(field cost_usd "$T/out.json")"
