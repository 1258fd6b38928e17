#!/bin/sh
# End-to-end check of kvfleet against measured closed-loop serving runs:
# the H100 dense rows of AIConfigurator's silicon sample
# (data/validation/silicon_h100_dense.csv, docs/VALIDATION.md).
#
# usage: experiments/silicon/run.sh [KVFLEET] [--calibration FILE|none]
#            [--requests-factor K] [--min-requests M] [--in CSV] [--out CSV]
#            [-- KVFLEET RUN OPTIONS...]
#
#   KVFLEET              the kvfleet binary (default ./kvfleet)
#   --calibration X      passed to `kvfleet run`; `none` is the datasheet
#                        roofline ("before calibration")
#   --requests-factor K  requests per run N = max(K x concurrency, M) (default 256:
#                        the closed loop's TTFT p50 settles only after ~100-250
#                        waves; see docs/VALIDATION.md)
#   --min-requests M     (default 64)
#   --isl-sigma S        draw prompt lengths from lognormal(mean=ISL;sigma=S)
#                        instead of fixed ISL (default 0: fixed)
#   --osl-sigma S        the same for output lengths (a sensitivity check: fixed
#                        lengths can lock the closed loop into waves)
#   --in CSV             default: data/validation/silicon_h100_dense.csv
#   --out CSV            default: experiments/silicon/results.csv, or
#                        results_nocalib.csv with --calibration none
#   -- OPTS              extra `kvfleet run` options for every row
#                        (e.g. -- --max-batched-tokens 2048)
#
# For every row it runs
#   KVFLEET run --no-db --json --model PRESET --gpu h100-sxm --tp TP [--dtype fp8]
#       --synthetic 'closed,concurrency=C,isl=ISL,osl=OSL,requests=N'
# and writes one CSV line with measured and predicted TTFT and TPOT (ms) and
# the signed errors pred/meas - 1. A row whose run fails keeps empty
# predictions and its status (exitN); the script then exits 1. POSIX sh and awk only.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

kvfleet=./kvfleet
case ${1-} in
	''|-*) ;;
	*) kvfleet=$1; shift ;;
esac
calib=
factor=256
minreq=64
isig=0
osig=0
in=$root/data/validation/silicon_h100_dense.csv
out=
while [ $# -gt 0 ]; do
	case $1 in
	--calibration) calib=$2; shift 2 ;;
	--requests-factor) factor=$2; shift 2 ;;
	--min-requests) minreq=$2; shift 2 ;;
	--isl-sigma) isig=$2; shift 2 ;;
	--osl-sigma) osig=$2; shift 2 ;;
	--in) in=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--) shift; break ;;
	*) echo "run.sh: unknown option '$1'" >&2; exit 2 ;;
	esac
done
if [ -z "$out" ]; then
	if [ "$calib" = none ]; then out=$here/results_nocalib.csv; else out=$here/results.csv; fi
fi
if [ ! -x "$kvfleet" ]; then
	echo "run.sh: $kvfleet: not an executable (give the kvfleet binary as the first argument)" >&2
	exit 2
fi
if [ ! -r "$in" ]; then
	echo "run.sh: $in: cannot read" >&2
	exit 2
fi

tmp=${TMPDIR:-/tmp}/kvfleet-silicon.$$
trap 'rm -f "$tmp" "$tmp.err"' EXIT INT TERM

echo "id,backend,model,precision,tp,concurrency,isl,osl,requests,meas_ttft_ms,pred_ttft_ms,err_ttft,meas_tpot_ms,pred_tpot_ms,err_tpot,pred_ttft_mean_ms,pred_tpot_mean_ms,preemptions,status,backend_version" >"$out"

start=$(date +%s)
rows=0
fails=0
# Columns of the input, found by name.
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
	{ print $c["id"], $c["backend"], $c["model_path"],
	        ($c["gemm_quant_mode"] == "" ? "bf16" : $c["gemm_quant_mode"]),
	        $c["tp_size"], $c["batch_size"], $c["isl"], $c["osl"],
	        $c["silicon_ttft_ms"], $c["silicon_tpot_ms"],
	        ($c["backend_version"] == "" ? "-" : $c["backend_version"]) }' "$in" |
{
while read -r id backend mpath prec tp conc isl osl mttft mtpot bver; do
	case $mpath in
	meta-llama/Llama-3.1-8B-Instruct) model=llama-3.1-8b ;;
	Qwen/Qwen3-32B) model=qwen3-32b ;;
	meta-llama/Llama-3.1-70B) model=llama-3.1-70b ;;
	*) echo "run.sh: $id: no preset for $mpath, skipped" >&2; continue ;;
	esac
	case $prec in
	bf16) dt= ;;
	fp8) dt="--dtype fp8" ;;
	*) echo "run.sh: $id: precision $prec not modelled, skipped" >&2; continue ;;
	esac
	n=$((factor * conc))
	[ "$n" -lt "$minreq" ] && n=$minreq
	case $isig in 0|0.0|"") il=$isl ;; *) il="lognormal(mean=$isl;sigma=$isig)" ;; esac
	case $osig in 0|0.0|"") ol=$osl ;; *) ol="lognormal(mean=$osl;sigma=$osig)" ;; esac
	# $dt and "$@" are word-split on purpose (options).
	if [ -n "$calib" ]; then
		"$kvfleet" run --no-db --json --model "$model" --gpu h100-sxm --tp "$tp" $dt \
			--calibration "$calib" \
			--synthetic "closed,concurrency=$conc,isl=$il,osl=$ol,requests=$n" "$@" </dev/null >"$tmp" 2>"$tmp.err"
	else
		"$kvfleet" run --no-db --json --model "$model" --gpu h100-sxm --tp "$tp" $dt \
			--synthetic "closed,concurrency=$conc,isl=$il,osl=$ol,requests=$n" "$@" </dev/null >"$tmp" 2>"$tmp.err"
	fi
	rc=$?
	rows=$((rows + 1))
	if [ $rc -ne 0 ]; then
		fails=$((fails + 1))
		echo "run.sh: $id: kvfleet exit $rc: $(tr '\n' ' ' <"$tmp.err")" >&2
	fi
	awk -v id="$id" -v be="$backend" -v model="$model" -v prec="$prec" -v tp="$tp" \
	    -v conc="$conc" -v isl="$isl" -v osl="$osl" -v n="$n" -v mttft="$mttft" \
	    -v mtpot="$mtpot" -v rc="$rc" -v bver="$bver" '
		function num(k) { return (k in v && v[k] != "null") ? v[k] + 0 : -1 }
		{ line = $0; gsub(/[",]/, "", line); split(line, kv, ":")
		  gsub(/ /, "", kv[1]); gsub(/ /, "", kv[2]); v[kv[1]] = kv[2] }
		END {
			t50 = num("ttft_p50_s"); p50 = num("tpot_p50_s")
			tm = num("ttft_mean_s"); pm = num("tpot_mean_s")
			ok = (rc == 0 && t50 > 0 && p50 > 0 && num("completed") == n)
			status = rc != 0 ? "exit" rc : (ok ? "ok" : "incomplete")
			if (t50 > 0) { pt = sprintf("%.6g", t50 * 1000); et = sprintf("%.5f", t50 * 1000 / mttft - 1) } else { pt = ""; et = "" }
			if (p50 > 0) { pp = sprintf("%.6g", p50 * 1000); ep = sprintf("%.5f", p50 * 1000 / mtpot - 1) } else { pp = ""; ep = "" }
			printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%.6g,%s,%s,%.6g,%s,%s,%s,%s,%s,%s,%s\n",
				id, be, model, prec, tp, conc, isl, osl, n, mttft, pt, et, mtpot, pp, ep,
				(tm > 0 ? sprintf("%.6g", tm * 1000) : ""), (pm > 0 ? sprintf("%.6g", pm * 1000) : ""),
				(num("preemptions") >= 0 ? num("preemptions") : ""), status, (bver == "-" ? "" : bver)
		}' "$tmp" >>"$out"
done
rm -f "$tmp.err"
end=$(date +%s)
echo "run.sh: $rows rows ($fails failed) in $((end - start)) s -> $out" >&2
[ "$fails" -eq 0 ]   # exit status 1 when a run failed
}
