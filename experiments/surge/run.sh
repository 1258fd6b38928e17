#!/bin/sh
# The surge study (docs/studies/surge.md): a made-up demand surge (Poisson,
# 10 requests/s, 60 requests/s from t = 600 s to 1200 s, 2400 s in all) on
# llama-3-8b H100 replicas in one made-up region ($2.50 per GPU-hour):
# fixed fleets of 2 and 4 replicas against an autoscaler (2 replicas at
# least, interval 10 s, up 0.5, down 0.2) with provisioning delays of 30,
# 120 and 300 s and a supply cap of 3, 4, 6 or 8 GPUs. 3 seeds.
#
# usage: experiments/surge/run.sh [KVFLEET]
# Writes results.csv and timeline.csv here, docs/figures/study-surge-*.png.
# About 10 s of CPU (2 jobs).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../study.sh"
study_init surge "${1-}"
db=$out/surge.db
study_sweep "$here/spec.json" "$db"
"$kv" query "$db" --csv --columns fleet,reps,requests,rejected,rejected_queue_full,ttft_p50_s,ttft_p99_s,ttft_p99_s_ci95,tpot_p99_s,gpu_hours,gpu_hours_ci95,usd,usd_per_mtok |
	sed 's#fleet-##; s#\.json##' |
	awk -F, 'BEGIN { OFS = "," } NR == 1 { print $0, "rejected_share"; next } { print $0, $4 / $3 }' >"$here/results.csv"

# seed 1 over time, per 10-s interval: replicas that ran any step (a lower
# bound on those serving: the timeline has a row for every replica the pool
# may ever have, provisioned or not), summed batch and queue, arrivals, and
# rejections at the fleet's edge (requests table, replica -1, by finish time).
# Intervals are matched by their integer index: timeline t_s accumulates
# floating-point error (920.0000000000001), so equality on t_s would miss.
sqlite3 -csv -header "$db" "
CREATE TEMP TABLE r AS
  SELECT p.run_id, replace(replace(json_extract(p.axes, '$.fleet'), 'fleet-', ''), '.json', '') AS fleet
  FROM sweep_points p WHERE p.rep = 0;
CREATE TEMP TABLE rej AS
  SELECT run_id, CAST(finish_s / 10 AS INTEGER) AS bin, count(*) AS n
  FROM requests WHERE replica = -1 AND run_id IN (SELECT run_id FROM r) GROUP BY run_id, bin;
CREATE TEMP TABLE tl AS
  SELECT run_id, CAST(round(t_s / 10) AS INTEGER) AS bin, t_s, sum(busy_frac > 0) AS replicas_busy, round(sum(batch_mean), 2) AS batch,
         round(sum(waiting_mean), 2) AS waiting, sum(arrivals) AS routed
  FROM timeline WHERE run_id IN (SELECT run_id FROM r) GROUP BY run_id, bin;
SELECT r.fleet, round(tl.t_s, 3) AS t_s, tl.replicas_busy, tl.batch, tl.waiting, tl.routed, coalesce(rej.n, 0) AS rejected
FROM r JOIN tl USING (run_id) LEFT JOIN rej ON rej.run_id = tl.run_id AND rej.bin = tl.bin
ORDER BY r.fleet, tl.bin" >"$here/timeline.csv"

(cd "$here" && gnuplot plot.gp)
echo "results in $out"
