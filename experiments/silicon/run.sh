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
#   --engine-matched     per row, the engine family of its backend:
#                        --sched-policy vllm|sglang|trtllm, and for trtllm
#                        --chunked-prefill false (TensorRT-LLM's default)
#   --overhead-trtllm X, --overhead-sglang X, --overhead-vllm X
#                        --engine-overhead X for that backend's rows (default 1)
#   --ramp S, --jitter S the closed loop's ramp= and jitter= (default 0: none)
#   --slots-offset K     --max-num-seqs concurrency + K (at least 1) for every row
#                        (default: none, kvfleet's own default); K = -1 is a client
#                        keeping one request more in flight than the engine has slots
#   --jobs N             run N kvfleet processes at a time (default 1)
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

# here, root, and kvfleet from the first argument
. "$(dirname "$0")/../args.sh"
calib=
factor=256
minreq=64
isig=0
osig=0
in=$root/data/validation/silicon_h100_dense.csv
out=
matched=0
ov_trtllm=1
ov_sglang=1
ov_vllm=1
ramp=0
jitter=0
slots=
jobs=1
while [ $# -gt 0 ]; do
	case $1 in
	--engine-matched) matched=1; shift ;;
	--overhead-trtllm) ov_trtllm=$2; shift 2 ;;
	--overhead-sglang) ov_sglang=$2; shift 2 ;;
	--overhead-vllm) ov_vllm=$2; shift 2 ;;
	--ramp) ramp=$2; shift 2 ;;
	--jitter) jitter=$2; shift 2 ;;
	--slots-offset) slots=$2; shift 2 ;;
	--jobs) jobs=$2; shift 2 ;;
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
case $slots in
'') ;;
-[0-9]*|[0-9]*)
	case ${slots#-} in *[!0-9]*) echo "run.sh: --slots-offset: expected an integer, got '$slots'" >&2; exit 2 ;; esac ;;
*) echo "run.sh: --slots-offset: expected an integer, got '$slots'" >&2; exit 2 ;;
esac
args_done

tmp=${TMPDIR:-/tmp}/kvfleet-silicon.$$
trap 'rm -f "$tmp" "$tmp.err" "$tmp".part*' EXIT INT TERM

# --jobs N: the rows are dealt round-robin to N copies of this script, whose
# outputs are put back in input order.
if [ "$jobs" -gt 1 ]; then
	start=$(date +%s)
	pass="--requests-factor $factor --min-requests $minreq --isl-sigma $isig --osl-sigma $osig"
	pass="$pass --overhead-trtllm $ov_trtllm --overhead-sglang $ov_sglang --overhead-vllm $ov_vllm"
	pass="$pass --ramp $ramp --jitter $jitter"
	[ -n "$slots" ] && pass="$pass --slots-offset $slots"
	[ "$matched" = 1 ] && pass="$pass --engine-matched"
	j=0
	pids=
	while [ "$j" -lt "$jobs" ]; do
		awk -v j="$j" -v n="$jobs" 'NR == 1 || (NR - 2) % n == j' "$in" >"$tmp.part$j.in"
		# $pass is word-split on purpose; "$@" are the extra kvfleet options
		if [ -n "$calib" ]; then
			"$0" "$kvfleet" $pass --calibration "$calib" --in "$tmp.part$j.in" --out "$tmp.part$j.out" -- "$@" &
		else
			"$0" "$kvfleet" $pass --in "$tmp.part$j.in" --out "$tmp.part$j.out" -- "$@" &
		fi
		pids="$pids $!"
		j=$((j + 1))
	done
	rc=0
	for p in $pids; do wait "$p" || rc=1; done
	# back in input order: row k of the input went to part (k - 2) mod N
	awk -v n="$jobs" -v tmp="$tmp" 'BEGIN {
		for (j = 0; j < n; j++) { f = tmp ".part" j ".out"; getline hdr <f; m[j] = 0
			while ((getline line <f) > 0) row[j, m[j]++] = line }
		print hdr; k = 0
		for (i = 0; ; i++) { j = i % n; q = int(i / n); if (q >= m[j]) break; print row[j, q] } }' >"$out"
	end=$(date +%s)
	echo "run.sh: $jobs jobs in $((end - start)) s -> $out" >&2
	exit "$rc"
fi

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
	eng=
	if [ "$matched" = 1 ]; then
		case $backend in
		vllm) eng="--sched-policy vllm" ;;
		sglang) eng="--sched-policy sglang" ;;
		trtllm) eng="--sched-policy trtllm --chunked-prefill false" ;;
		*) echo "run.sh: $id: backend $backend has no engine family, vllm used" >&2 ;;
		esac
	fi
	case $backend in
	trtllm) ov=$ov_trtllm ;;
	sglang) ov=$ov_sglang ;;
	*) ov=$ov_vllm ;;
	esac
	[ "$ov" = 1 ] || eng="$eng --engine-overhead $ov"
	if [ -n "$slots" ]; then
		seqs=$((conc + slots))
		[ "$seqs" -ge 1 ] || seqs=1 # kvfleet needs one slot at least
		eng="$eng --max-num-seqs $seqs"
	fi
	n=$((factor * conc))
	[ "$n" -lt "$minreq" ] && n=$minreq
	case $isig in 0|0.0|"") il=$isl ;; *) il="lognormal(mean=$isl;sigma=$isig)" ;; esac
	case $osig in 0|0.0|"") ol=$osl ;; *) ol="lognormal(mean=$osl;sigma=$osig)" ;; esac
	loop=
	case $ramp in 0|0.0|"") ;; *) loop="$loop,ramp=$ramp" ;; esac
	case $jitter in 0|0.0|"") ;; *) loop="$loop,jitter=$jitter" ;; esac
	# $dt, $eng and "$@" are word-split on purpose (options).
	if [ -n "$calib" ]; then
		"$kvfleet" run --no-db --json --model "$model" --gpu h100-sxm --tp "$tp" $dt $eng \
			--calibration "$calib" \
			--synthetic "closed,concurrency=$conc,isl=$il,osl=$ol,requests=$n$loop" "$@" </dev/null >"$tmp" 2>"$tmp.err"
	else
		"$kvfleet" run --no-db --json --model "$model" --gpu h100-sxm --tp "$tp" $dt $eng \
			--synthetic "closed,concurrency=$conc,isl=$il,osl=$ol,requests=$n$loop" "$@" </dev/null >"$tmp" 2>"$tmp.err"
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
