#!/bin/sh
# Measured TTFT against one request's predicted prefill time (docs/VALIDATION.md,
# "TTFT against one prefill").
#
# usage: experiments/silicon/prefill_ratio.sh [--isl] KVFLEET [RESULTS_CSV]
#
#   --isl        group by ISL as well
#   KVFLEET      the kvfleet binary
#   RESULTS_CSV  default experiments/silicon/results_matched.csv (any run.sh output)
#
# For every distinct (model, precision, TP, ISL) of the results file it asks
# `kvfleet predict --gpu h100-sxm --prefill ISL` for the step time of that one
# prompt alone, then divides each row's measured TTFT p50 by it. Printed per
# (backend, model, precision, concurrency): rows, mean, min and max of that
# ratio, and the mean of the same ratio for the predicted TTFT p50 (pred_ttft_ms).
# The prefill time is `predict`'s with the shipped calibration and default
# engine overhead, whatever options made the results file.
# A closed loop with nothing queued in front of a prompt would give about 1 plus
# the decode steps it shares; much more says the measured TTFT holds time the
# model does not put there. POSIX sh and awk only.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
byisl=0
[ "${1-}" = --isl ] && { byisl=1; shift; }
kv=${1:?usage: prefill_ratio.sh [--isl] KVFLEET [RESULTS_CSV]}
in=${2:-$here/results_matched.csv}
[ -x "$kv" ] || { echo "prefill_ratio.sh: $kv: not an executable" >&2; exit 2; }
[ -r "$in" ] || { echo "prefill_ratio.sh: $in: cannot read" >&2; exit 2; }
t=$(mktemp /tmp/kvfleet-ratio.XXXXXX)
trap 'rm -f "$t"' EXIT
# columns by name, so a reordered results file still works
cols=$(head -n 1 "$in")
col() { echo "$cols" | tr ',' '\n' | grep -n -x "$1" | cut -d: -f1; }
cb=$(col backend); cm=$(col model); cp=$(col precision); ct=$(col tp)
cc=$(col concurrency); ci=$(col isl); cmt=$(col meas_ttft_ms); cpt=$(col pred_ttft_ms)
cs=$(col status)
for c in cb cm cp ct cc ci cmt cpt cs; do
	eval "v=\$$c"
	[ -n "$v" ] || { echo "prefill_ratio.sh: $in: a column is missing (backend, model, precision, tp, concurrency, isl, meas_ttft_ms, pred_ttft_ms, status: a run.sh results file)" >&2; exit 2; }
done
awk -F, -v m="$cm" -v p="$cp" -v tp="$ct" -v i="$ci" -v s="$cs" \
	'NR > 1 && $s == "ok" { print $m, $p, $tp, $i }' "$in" | sort -u |
	while read -r model prec tp isl; do
		dt=
		[ "$prec" = fp8 ] && dt="--dtype fp8"
		# shellcheck disable=SC2086
		s=$("$kv" predict --model "$model" --gpu h100-sxm --tp "$tp" $dt --prefill "$isl" \
			--json 2>/dev/null </dev/null | sed -n 's/.*"step_s": *\([0-9.eE+-]*\).*/\1/p' | head -n 1)
		[ -n "$s" ] || { echo "prefill_ratio.sh: predict failed for $model $prec TP $tp ISL $isl" >&2; exit 3; }
		echo "$model,$prec,$tp,$isl,$s"
	done >"$t"
awk -F, -v b="$cb" -v m="$cm" -v p="$cp" -v tp="$ct" -v c="$cc" -v i="$ci" -v mt="$cmt" -v pt="$cpt" -v s="$cs" -v byisl="$byisl" '
	FNR == NR { pre[$1 "," $2 "," $3 "," $4] = $5 * 1000; next }
	FNR > 1 && $s == "ok" {
		one = pre[$m "," $p "," $tp "," $i]
		if (!(one > 0)) next
		r = $mt / one
		g = $b " " $m " " $p " " $c (byisl ? " " $i : "")
		psum[g] += $pt / one
		if (!(g in n)) { order[++ng] = g; lo[g] = r; hi[g] = r }
		n[g]++; sum[g] += r
		if (r < lo[g]) lo[g] = r
		if (r > hi[g]) hi[g] = r
	}
	END {
		printf "| backend | model | precision | concurrency |%s rows | measured mean | min | max | predicted mean |\n", byisl ? " ISL |" : ""
		printf "|---|---|---|---|%s---|---|---|---|---|\n", byisl ? "---|" : ""
		for (k = 1; k <= ng; k++) {
			g = order[k]; split(g, f, " ")
			printf "| %s | %s | %s | %s |%s %d | %.2f | %.2f | %.2f | %.2f |\n", f[1], f[2], f[3],
				f[4], byisl ? " " f[5] " |" : "", n[g], sum[g] / n[g], lo[g], hi[g], psum[g] / n[g]
		}
	}' "$t" "$in" | { IFS= read -r h1; IFS= read -r h2; echo "$h1"; echo "$h2"; sort -t'|' -k2,2 -k3,3 -k4,4 -k5,5n -k6,6n; }
