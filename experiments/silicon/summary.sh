#!/bin/sh
# Error summary of experiments/silicon/run.sh output (docs/VALIDATION.md).
#
# usage: experiments/silicon/summary.sh [RESULTS_CSV] [--by COLS] [--stat p50|mean] [--csv]
#
#   RESULTS_CSV  default experiments/silicon/results.csv
#   --by COLS    comma-separated grouping columns of the results file
#                (default model,precision,backend,tp); `--by none` prints
#                only the overall line
#   --csv        CSV instead of a Markdown table
#   --rows [B]   instead of the summary, one Markdown row per measurement
#                (row = data row of the input CSV), sorted by model,
#                precision, backend, TP, concurrency, ISL, OSL; with B (a
#                --calibration none results file) its errors are added
#   --stat S     p50 (default): errors of the predicted medians (err_ttft,
#                err_tpot); mean: of the predicted means (pred_*_mean_ms)
#
# Per group and overall: rows, median and p90 of |pred/meas - 1| for TTFT
# p50 and TPOT p50 (in %), and the share of rows within 10% (TTFT, TPOT,
# both). Percentiles interpolate linearly between order statistics at
# (n - 1) p, as kvfleet's own quantiles do. Rows whose status is not `ok`
# are counted in `failed` and left out of the errors. POSIX sh and awk only.
set -u
here=$(cd "$(dirname "$0")" && pwd)
in=$here/results.csv
by=model,precision,backend,tp
fmt=md
stat=p50
rows=
before=
while [ $# -gt 0 ]; do
	case $1 in
	--by) by=$2; shift 2 ;;
	--csv) fmt=csv; shift ;;
	--stat) stat=$2; shift 2 ;;
	--rows) rows=1; case ${2-} in ""|-*) shift ;; *) before=$2; shift 2 ;; esac ;;
	-*) echo "summary.sh: unknown option '$1'" >&2; exit 2 ;;
	*) in=$1; shift ;;
	esac
done
case $stat in p50|mean) ;; *) echo "summary.sh: --stat: expected p50 or mean, got '$stat'" >&2; exit 2 ;; esac
[ -r "$in" ] || { echo "summary.sh: $in: cannot read" >&2; exit 2; }

if [ -n "$rows" ]; then
	[ -z "$before" ] || [ -r "$before" ] || { echo "summary.sh: $before: cannot read" >&2; exit 2; }
	if [ -n "$before" ]; then
		echo "| row | model | prec | backend | version | TP | conc | ISL | OSL | meas TTFT ms | pred TTFT ms | err TTFT % | meas TPOT ms | pred TPOT ms | err TPOT % | roofline err TTFT % | roofline err TPOT % |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	else
		echo "| row | model | prec | backend | version | TP | conc | ISL | OSL | meas TTFT ms | pred TTFT ms | err TTFT % | meas TPOT ms | pred TPOT ms | err TPOT % |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	fi
	# file B first (if any): its errors by id; then the rows of RESULTS_CSV
	awk -F, -v nb="${before:+1}" '
		function pc(x) { return x == "" ? "-" : sprintf("%+.1f", 100 * x) }
		FNR == 1 { f++; for (i = 1; i <= NF; i++) c[f, $i] = i; next }
		nb && f == 1 { bt[$c[1, "id"]] = $c[1, "err_ttft"]; bp[$c[1, "id"]] = $c[1, "err_tpot"]; next }
		{
			k = f
			line = sprintf("%s\t%s\t%s\t%08d\t%08d\t%08d\t%08d", $c[k, "model"], $c[k, "precision"], $c[k, "backend"],
				$c[k, "tp"], $c[k, "concurrency"], $c[k, "isl"], $c[k, "osl"])
			row = sprintf("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %.4g | %s | %s | %.4g | %s | %s |", FNR - 1,
				$c[k, "model"], $c[k, "precision"], $c[k, "backend"], ((k, "backend_version") in c && $c[k, "backend_version"] != "" ? $c[k, "backend_version"] : "-"), $c[k, "tp"], $c[k, "concurrency"], $c[k, "isl"], $c[k, "osl"],
				$c[k, "meas_ttft_ms"], $c[k, "pred_ttft_ms"] == "" ? "-" : sprintf("%.4g", $c[k, "pred_ttft_ms"]), pc($c[k, "err_ttft"]),
				$c[k, "meas_tpot_ms"], $c[k, "pred_tpot_ms"] == "" ? "-" : sprintf("%.4g", $c[k, "pred_tpot_ms"]), pc($c[k, "err_tpot"]))
			if (nb) { id = $c[k, "id"]; row = row sprintf(" %s | %s |", (id in bt) ? pc(bt[id]) : "-", (id in bp) ? pc(bp[id]) : "-") }
			print line "\t" FNR "\t" row
		}' ${before:+"$before"} "$in" | sort -t "$(printf '\t')" -k1,1 -k2,2 -k3,3 -k4,4 -k5,5 -k6,6 -k7,7 -k8,8n | cut -f 9-
	exit 0
fi

awk -F, -v by="$by" -v fmt="$fmt" -v stat="$stat" '
function abs(x) { return x < 0 ? -x : x }
# p-quantile of a[1..n] (sorted in place), linear between order statistics.
function quant(a, n, p,    i, j, t, h, lo) {
	for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
	if (n == 0) return -1
	h = (n - 1) * p; lo = int(h)
	return lo + 1 < n ? a[lo + 1] + (h - lo) * (a[lo + 2] - a[lo + 1]) : a[n]
}
function pct(x) { return x < 0 ? "-" : sprintf("%.1f", 100 * x) }
function emit(label, key,    n, i, at, ap, w1, w2, wb) {
	n = cnt[key]
	for (i = 1; i <= n; i++) { at[i] = et[key, i]; ap[i] = ep[key, i] }
	w1 = w2 = wb = 0
	for (i = 1; i <= n; i++) { w1 += at[i] <= 0.1; w2 += ap[i] <= 0.1; wb += at[i] <= 0.1 && ap[i] <= 0.1 }
	mt = quant(at, n, 0.5); pt = quant(at, n, 0.9); mp = quant(ap, n, 0.5); pp = quant(ap, n, 0.9)
	if (fmt == "csv")
		printf "%s,%d,%d,%s,%s,%s,%s,%s,%s,%s\n", label, n, fail[key] + 0, pct(mt), pct(pt), pct(mp), pct(pp),
			n ? sprintf("%.0f", 100 * w1 / n) : "-", n ? sprintf("%.0f", 100 * w2 / n) : "-", n ? sprintf("%.0f", 100 * wb / n) : "-"
	else
		printf "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n", label, n, fail[key] + 0, pct(mt), pct(pt), pct(mp), pct(pp),
			n ? sprintf("%.0f", 100 * w1 / n) : "-", n ? sprintf("%.0f", 100 * w2 / n) : "-", n ? sprintf("%.0f", 100 * wb / n) : "-"
}
NR == 1 {
	for (i = 1; i <= NF; i++) col[$i] = i
	ng = (by == "none") ? 0 : split(by, g, ",")
	for (i = 1; i <= ng; i++) if (!(g[i] in col)) { print "summary.sh: no column " g[i] > "/dev/stderr"; bad = 1; exit 2 }
	for (k in col) if (k == "err_ttft") have = 1
	if (!have || !("status" in col)) { print "summary.sh: not a run.sh results file" > "/dev/stderr"; bad = 1; exit 2 }
	hdr = ""
	for (i = 1; i <= ng; i++) hdr = hdr g[i] (fmt == "csv" ? "," : " | ")
	if (fmt == "csv")
		print hdr (ng ? "" : "group,") "rows,failed,ttft_med_abs_pct,ttft_p90_abs_pct,tpot_med_abs_pct,tpot_p90_abs_pct,ttft_within10_pct,tpot_within10_pct,both_within10_pct"
	else {
		line = "| " hdr (ng ? "" : "group | ") "rows | failed | TTFT median abs % | TTFT p90 abs % | TPOT median abs % | TPOT p90 abs % | TTFT within 10 % | TPOT within 10 % | both within 10 % |"
		print line
		s = "|"; m = split(line, parts, "|"); for (i = 2; i < m; i++) s = s "---|"; print s
	}
	next
}
{
	key = ""
	for (i = 1; i <= ng; i++) key = key (i > 1 ? (fmt == "csv" ? "," : " | ") : "") $col[g[i]]
	if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
	for (r = 0; r < 2; r++) {
		kk = r ? "\001all" : key
		if (r && ng == 0) continue
		if ($col["status"] != "ok") { fail[kk]++; continue }
		c = ++cnt[kk]
		if (stat == "mean") { et[kk, c] = abs($col["pred_ttft_mean_ms"] / $col["meas_ttft_ms"] - 1); ep[kk, c] = abs($col["pred_tpot_mean_ms"] / $col["meas_tpot_ms"] - 1) }
		else { et[kk, c] = abs($col["err_ttft"]); ep[kk, c] = abs($col["err_tpot"]) }
	}
}
END {
	if (bad) exit 2
	# groups in sorted order (insertion sort of the keys)
	for (i = 2; i <= nk; i++) { t = order[i]; for (j = i - 1; j >= 1 && order[j] > t; j--) order[j + 1] = order[j]; order[j + 1] = t }
	if (ng) for (i = 1; i <= nk; i++) emit(order[i], order[i])
	lab = "all"
	for (i = 2; i <= ng; i++) lab = lab (fmt == "csv" ? "," : " | ")
	if (ng) emit(lab, "\001all"); else emit("all", key)
}' "$in"
