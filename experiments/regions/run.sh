#!/bin/sh
# The regions study (docs/studies/regions.md): a made-up fleet of 10 H100
# replicas over three regions (6 us-east, 3 eu-west, 1 ap-south) serving
# three populations (40% / 30% / 30%) with round trips of 10 to 150 ms;
# scope "nearest" against "global", router least-outstanding and
# round-robin, under a made-up Poisson load from 10 to 180 requests/s
# (--load-scale 0.5..9 on 20/s; 2400 s of arrivals before scaling), 3 seeds.
#
# usage: experiments/regions/run.sh [KVFLEET]
# Writes results.csv, pools.csv, crossover.csv here and
# docs/figures/study-regions-latency-load.png. About 50 s of CPU (2 jobs).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../study.sh"
study_init regions "${1-}"
db=$out/regions.db
study_sweep "$here/spec.json" "$db"
"$kv" query "$db" --csv --columns fleet,load-scale,reps,offered_rps,rejected,ttft_p50_s,ttft_p50_s_ci95,ttft_p99_s,ttft_p99_s_ci95,tpot_p50_s,tpot_p99_s,gpu_hours,usd |
	sed 's#fleet-##; s#\.json##' >"$here/results.csv"

# where requests were served: the share of each pool (replicas 0-5 us-east,
# 6-8 eu-west, 9 ap-south) and its mean TTFT, over the 3 seeds
sqlite3 -csv -header "$db" "
SELECT replace(replace(json_extract(p.axes, '$.fleet'), 'fleet-', ''), '.json', '') AS fleet,
       json_extract(p.axes, '$.\"load-scale\"') AS load_scale,
       CASE WHEN r.replica < 6 THEN 'us-east' WHEN r.replica < 9 THEN 'eu-west' ELSE 'ap-south' END AS pool,
       round(count(*) * 1.0 / (SELECT count(*) FROM requests r2 JOIN sweep_points p2 USING (run_id)
                             WHERE p2.point_id = p.point_id), 3) AS share,
       round(avg(r.ttft_s), 3) AS ttft_mean_s, round(avg(r.tpot_s), 4) AS tpot_mean_s
FROM sweep_points p JOIN requests r USING (run_id)
GROUP BY p.point_id, pool ORDER BY p.point_id, pool" >"$here/pools.csv"

# the crossovers: the offered load where nearest's TTFT p50 / p99 first
# exceeds global's (same router), linear between the two loads around it
awk -F, 'NR > 1 { k = $1; sub(/^(nearest|global)-/, "", k); s = ($1 ~ /^nearest/) ? "n" : "g";
                   x[k, NR] = $4; v50[k, s, $2] = $6; v99[k, s, $2] = $8; L[$2] = $4; rt[k] = 1 }
END {
    n = 0; for (l in L) ls[++n] = l + 0
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (ls[j] < ls[i]) { t = ls[i]; ls[i] = ls[j]; ls[j] = t }
    for (k in rt) for (f = 50; f <= 99; f += 49) {
        prev = ""
        for (i = 1; i <= n; i++) {
            l = ls[i]
            d = (f == 50) ? v50[k, "n", l] - v50[k, "g", l] : v99[k, "n", l] - v99[k, "g", l]
            if (prev != "" && pd <= 0 && d > 0) {
                c = L[prev] + (L[l] - L[prev]) * (-pd) / (d - pd)
                printf "%s,ttft_p%d,%.1f,%.1f,%.1f\n", k, f, L[prev], L[l], c
                break
            }
            prev = l; pd = d
        }
    }
}' "$here/results.csv" | sort >"$out/cross.csv"
{ echo "router,figure,below_rps,above_rps,crossover_rps"; cat "$out/cross.csv"; } >"$here/crossover.csv"

# kvfleet plot names each line by the axis value, the whole fleet path;
# the saved script is redrawn with the short names (scope-router)
"$kv" plot "$db" --kind latency-load -o "$fig/study-regions-latency-load.png" --script "$out/ll.gp" \
	--title "Made-up 3-region fleet (6/3/1 H100, users 40/30/30%, RTT 10-150 ms): nearest vs global, LO vs RR, 3 seeds"
sed 's#fleet=fleet-##; s#\.json##' "$out/ll.gp" | gnuplot
echo "results in $out"
