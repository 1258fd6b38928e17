#!/bin/sh
# The warning-signals study (docs/studies/warning-signals.md): on a linear
# load ramp, which timeline signal (busy_frac, batch_mean, kv_util_mean,
# waiting_mean) crosses its alarm threshold first, how long before the
# latency cliff, and how often it also fires on constant loads that never
# reach the cliff (false alarms). Made-up load: Poisson arrivals with a rate
# rising linearly from 2 to 30 requests/s over 600, 1200 or 2400 s
# (ramp*.csv), and constant controls at 6, 10, 13 and 16 requests/s for
# 1200 s; lognormal lengths like the Azure conversation trace's means
# (docs/traces.md). 5 seeds each. llama-3-8b on one h100-sxm.
#
# Definitions (analyse.awk): requests are binned by arrival into the
# timeline's 10-s intervals; a run's early TTFT p99 is that of the requests
# arriving in its first 120 s; the cliff is the start of the first bin whose
# TTFT p99 exceeds 10 x that early value. A signal's alarm is the end of the
# first 10-s timeline interval whose value reaches the threshold (when a
# monitor would see it); lead time = cliff - alarm. A false alarm is an
# alarm in a control run (none of which has a cliff).
#
# usage: experiments/warning-signals/run.sh [KVFLEET]
# Writes summary.csv, runs.csv here and docs/figures/study-warning-signals-*.png.
# About 4 s of CPU.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../study.sh"
study_init warning-signals "${1-}"
db=$out/ws.db
study_sweep "$here/spec.json" "$db"
"$kv" query "$db" --csv --columns point,reps,requests,ttft_p50_s,ttft_p99_s,busy_frac,mean_batch_size,kv_util_mean >"$here/points.csv"

EARLY=120
BIN=10
sqlite3 -csv "$db" "SELECT p.point_id, p.rep, r.ttft_s FROM sweep_points p JOIN requests r USING (run_id)
  WHERE r.ttft_s IS NOT NULL AND r.arrival_s < $EARLY ORDER BY p.point_id, p.rep, r.ttft_s" >"$out/base.csv"
sqlite3 -csv "$db" "SELECT p.point_id, p.rep, CAST(r.arrival_s / $BIN AS INTEGER) AS b, r.ttft_s
  FROM sweep_points p JOIN requests r USING (run_id) WHERE r.ttft_s IS NOT NULL
  ORDER BY p.point_id, p.rep, b, r.ttft_s" >"$out/bins.csv"
sqlite3 -csv "$db" "SELECT p.point_id, p.rep, t.t_s, t.busy_frac, t.batch_mean, t.kv_util_mean, t.waiting_mean
  FROM sweep_points p JOIN timeline t USING (run_id) ORDER BY p.point_id, p.rep, t.t_s" >"$out/tl.csv"
awk -v BIN=$BIN -v K=10 -v RAMPS="0 1 2" -v CONTROLS="3 4 5 6" -v RUNS="$out/runs.csv" \
	-v P99="$out/p99.csv" -f "$here/analyse.awk" "$out/base.csv" "$out/bins.csv" "$out/tl.csv" >"$here/summary.csv"
{ echo "point,rep,early_ttft_p99_s,cliff_s"; sort -t, -k1,1n -k2,2n "$out/runs.csv"; } >"$here/runs.csv"

# one ramp run (1200 s, seed 1) over time: TTFT p99 per bin and the signals
grep '^1,0,' "$out/p99.csv" >"$out/one_p99.csv"
grep '^1,0,' "$out/tl.csv" >"$out/one_tl.csv"
cliff=$(awk -F, '$1 == 1 && $2 == 0 { print $4 }' "$here/runs.csv")
base=$(awk -F, '$1 == 1 && $2 == 0 { print $3 }' "$here/runs.csv")
(cd "$out" && gnuplot -e "cliff=$cliff; base=$base; outfile='$fig/study-warning-signals-ramp.png'" "$here/plot.gp")
"$kv" plot "$db" --kind timeline --run "$(sqlite3 "$db" 'SELECT run_id FROM sweep_points WHERE point_id = 1 AND rep = 0')" \
	-o "$fig/study-warning-signals-timeline.png" \
	--title "Timeline: made-up ramp 2 to 30 requests/s over 1200 s, seed 1, llama-3-8b, h100-sxm"
echo "results in $out"
