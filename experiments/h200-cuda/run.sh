#!/bin/sh
# The cuda executor's fidelity table (docs/VALIDATION.md, "On a GPU"),
# rebuilt without a GPU: every run recorded on the H200 with
# `kvfleet validate --backend cuda` (data/validation/h200-cuda/*.db) is
# compared again, through the replay executor, with the simulator on the
# datasheet roofline (--calibration none) and on the calibration fitted
# from kvfleet's own kernel profile (data/calib/h200-kvfleet.json). The
# replay reproduces the recorded batches, so each step's prediction meets
# the time measured for that very batch.
#
# usage: experiments/h200-cuda/run.sh [KVFLEET] [--plot DIR]
#
# Prints a markdown table; --plot DIR also writes, for each workload on
# the calibrated model, DIR/h200-cuda-NAME-{pred_vs_meas,err_vs_batch}.png.
set -eu
KV=${1:-./kvfleet}
[ $# -gt 0 ] && shift
PLOT=
if [ "${1:-}" = --plot ]; then
    PLOT=$2
    mkdir -p "$PLOT"
fi
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
D="$top/data/validation/h200-cuda"
CAL="$top/data/calib/h200-kvfleet.json"
T=$(mktemp -d /tmp/kvfleet-h200cuda.XXXXXX)
trap 'rm -rf "$T"' EXIT

# NAME DB RUN WORKLOAD...: the workload options the run was recorded with
W='c1 h200-closed.db 1 --synthetic closed,concurrency=1,isl=1024,osl=128,requests=100
c16 h200-c16.db 4 --synthetic closed,concurrency=16,isl=1024,osl=128,requests=128
c32 h200-closed.db 3 --synthetic closed,concurrency=32,isl=1024,osl=128,requests=500
c128 h200-closed.db 5 --synthetic closed,concurrency=128,isl=1024,osl=128,requests=500
azure2000 h200-azure2000.db 1 --limit 2000'

num() { # KEY FILE: the first number after "KEY": in FILE
    sed -n "s/.*\"$1\": \\([-0-9.e]*\\).*/\\1/p" "$2" | head -n 1
}
pct() { awk -v v="$1" 'BEGIN { printf "%+.1f", 100 * v }'; }
abs() { awk -v v="$1" 'BEGIN { printf "%.1f", 100 * v }'; }

echo "| workload | calibration | steps | step p50 | step p95 | TTFT p50 pred / meas (s) | TPOT p50 pred / meas (ms) | tokens/s pred / meas |"
echo "|---|---|---|---|---|---|---|---|"
echo "$W" | while read -r name db run opts; do
    for cal in none "$CAL"; do
        cp "$D/$db" "$T/r.db"
        extra=
        label=datasheet
        if [ "$cal" != none ]; then
            label=h200-kvfleet
            [ -n "$PLOT" ] && extra="--plot $T/fig"
        fi
        # shellcheck disable=SC2086
        "$KV" validate --backend replay --replay "$T/r.db:$run" --model llama-3-8b --gpu h200 \
            --calibration "$cal" --db "$T/r.db" --json $opts $extra >"$T/v.json" 2>"$T/v.err" || {
            echo "experiments/h200-cuda/run.sh: $name ($label) failed:" >&2
            cat "$T/v.err" >&2
            exit 1
        }
        if [ -n "$extra" ]; then
            cp "$T/fig/pred_vs_meas.png" "$PLOT/h200-cuda-$name-pred_vs_meas.png"
            cp "$T/fig/err_vs_batch.png" "$PLOT/h200-cuda-$name-err_vs_batch.png"
        fi
        # the measured and simulated objects, each on its own
        sed -n '/"measured"/,/}/p' "$T/v.json" >"$T/m"
        mt=$(num ttft_p50_s "$T/m")
        mp=$(num tpot_p50_s "$T/m")
        mx=$(num output_tokens_per_s "$T/m")
        sed -n '/"simulated"/,/}/p' "$T/v.json" >"$T/s"
        st=$(num ttft_p50_s "$T/s")
        sp=$(num tpot_p50_s "$T/s")
        sx=$(num output_tokens_per_s "$T/s")
        printf '| %s | %s | %s | %s%% | %s%% | %.4f / %.4f (%s%%) | %.2f / %.2f (%s%%) | %.0f / %.0f (%s%%) |\n' \
            "$name" "$label" "$(num steps "$T/v.json")" \
            "$(abs "$(num step_p50_ape "$T/v.json")")" "$(abs "$(num step_p95_ape "$T/v.json")")" \
            "$st" "$mt" "$(pct "$(num ttft_p50_err "$T/v.json")")" \
            "$(awk -v v="$sp" 'BEGIN { print 1000 * v }')" "$(awk -v v="$mp" 'BEGIN { print 1000 * v }')" \
            "$(pct "$(num tpot_p50_err "$T/v.json")")" \
            "$sx" "$mx" "$(pct "$(num throughput_err "$T/v.json")")"
    done
done
