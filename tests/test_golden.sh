#!/bin/sh
# test_golden.sh: small seeded simulations compared byte for byte with
# tests/golden/*.out (the summary JSON less the wall-clock fields). A change
# in any result shows here; golden updates go in their own commit with the
# reason (regenerate with: tests/test_golden.sh --update, from the build dir).
set -u
KV=${KVFLEET:-./kvfleet}
G="$srcdir/tests/golden"
T=$(mktemp -d /tmp/kvfleet-golden.XXXXXX)
trap 'rm -rf "$T"' EXIT
update=0
[ "${1:-}" = "--update" ] && update=1
n=0
fails=0

case_run() { # name, then kvfleet run options
    name=$1
    shift
    n=$((n + 1))
    "$KV" run --no-db --json --timeline-s 0 "$@" 2>"$T/err" |
        grep -v -E '"(wall_s|peak_mem_bytes|peak_rss_bytes)"' >"$T/$name.out"
    if [ "$update" = 1 ]; then
        cp "$T/$name.out" "$G/$name.out"
        echo "updated $name"
    elif cmp -s "$T/$name.out" "$G/$name.out"; then
        echo "ok $n - $name"
    else
        echo "not ok $n - $name"
        diff "$G/$name.out" "$T/$name.out" | head -20
        fails=$((fails + 1))
    fi
}

case_run azure300 --trace "$srcdir/data/traces/azure_conv_2023.csv" --limit 300 --load-scale 4
case_run poisson_tp2 --model llama-3.1-70b --gpu h100-sxm --tp 4 --replicas 2 \
    --synthetic 'poisson,rate=6,requests=400,isl=lognormal(mean=2000;sigma=0.8),osl=lognormal(mean=200;sigma=0.8)' --seed 7
case_run closed_preempt --kv-blocks 300 --max-num-seqs 64 \
    --synthetic 'closed,concurrency=48,isl=512,osl=256,requests=300'
case_run sessions --trace "$srcdir/data/traces/sessions_example.csv" --max-queue 8 --max-queue-time 2
case_run datasheet_fp8 --calibration none --dtype fp8 --model qwen3-32b --tp 2 \
    --synthetic 'gamma,rate=3,cv=2,requests=200,isl=1024,osl=128' --seed 3

echo "1..$n"
echo "$((n - fails)) passed, $fails failed"
[ "$fails" -eq 0 ]
