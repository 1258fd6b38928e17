#!/bin/sh
# End-to-end check of kvfleet against measured static batches: Splitwise's
# Llama-2-70B profile on DGX-H100 (data/validation/splitwise_llama2-70b_h100.csv,
# docs/VALIDATION.md). Each configuration (prompt P, batch B, output T, TP) was
# measured 5 times; its prompt_time is the prefill of the batch of B prompts
# (every request's TTFT) and its token_time the mean decode iteration (TPOT),
# both in ms. The script averages the repeats and replays the batch as one
# closed-loop wave of B requests, with a step budget that holds the whole
# batch's prompts (a static batch: one prefill step, then B decodes):
#
#   KVFLEET run --no-db --json --model MODEL --gpu h100-sxm --tp TP
#       --max-batched-tokens max(8192, B x P) --max-num-seqs max(256, B)
#       --synthetic 'closed,concurrency=B,isl=P,osl=T,requests=B'
#
# MODEL is the llama-2-70b preset with max_position_embeddings raised to 16384
# (a copy in a temporary folder): 12 of the measured configurations run past
# Llama-2's 4096 positions, and the context only gates admission, not cost.
#
# usage: experiments/splitwise/run.sh [KVFLEET] [--calibration FILE|none]
#            [--in CSV] [--out CSV] [-- KVFLEET RUN OPTIONS...]
#
#   KVFLEET            the kvfleet binary (default ./kvfleet)
#   --calibration X    passed to `kvfleet run`; `none` is the datasheet roofline
#   --in CSV           default: data/validation/splitwise_llama2-70b_h100.csv
#   --out CSV          default: experiments/splitwise/results.csv
#                      (results_nocalib.csv with --calibration none)
#   -- OPTS            extra `kvfleet run` options for every configuration
#
# Writes one line per configuration: prompt,batch,tokens,tp,reps,meas_ttft_ms,
# meas_tpot_ms,pred_ttft_ms,pred_tpot_ms,err_ttft,err_tpot (pred/meas - 1),
# preemptions,status; then prints the median absolute errors by TP and in all.
# A configuration whose run fails keeps empty predictions and its status
# (exitN); the script then exits 1. POSIX sh and awk only.
set -u

# here, root, and kvfleet from the first argument
. "$(dirname "$0")/../args.sh"
calib=
in=$root/data/validation/splitwise_llama2-70b_h100.csv
out=
while [ $# -gt 0 ]; do
	case $1 in
	--calibration) calib=$2; shift 2 ;;
	--in) in=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	--) shift; break ;;
	*) echo "experiments/splitwise/run.sh: unknown option '$1'" >&2; exit 2 ;;
	esac
done
args_done

tmp=$(mktemp -d /tmp/kvfleet-splitwise.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
sed 's/"max_position_embeddings": 4096/"max_position_embeddings": 16384/' \
	"$root/data/models/llama-2-70b.json" >"$tmp/llama-2-70b.json"
grep -q '"max_position_embeddings": 16384' "$tmp/llama-2-70b.json" ||
	{ echo "experiments/splitwise/run.sh: could not raise the preset's context" >&2; exit 1; }

# the configurations: the mean of each one's repeats, in a fixed order
awk -F, 'NR == 1 {
		for (i = 1; i <= NF; i++) c[$i] = i
		if (!("prompt_size" in c) || !("batch_size" in c) || !("token_size" in c) ||
		    !("tensor_parallel" in c) || !("prompt_time" in c) || !("token_time" in c)) {
			print "missing columns" > "/dev/stderr"; exit 1 }
		next }
	{ k = $c["prompt_size"] "," $c["batch_size"] "," $c["token_size"] "," $c["tensor_parallel"]
	  n[k]++; p[k] += $c["prompt_time"]; t[k] += $c["token_time"] }
	END { for (k in n) printf "%s,%d,%.6f,%.6f\n", k, n[k], p[k] / n[k], t[k] / n[k] }' "$in" |
	sort -t, -k4,4n -k1,1n -k2,2n -k3,3n >"$tmp/cfg.csv" || exit 1

field() { sed -n "s/^ *\"$1\": \\([^,]*\\),*$/\\1/p" "$2" | head -n 1; }

fail=0
echo "prompt,batch,tokens,tp,reps,meas_ttft_ms,meas_tpot_ms,pred_ttft_ms,pred_tpot_ms,err_ttft,err_tpot,preemptions,status" >"$out"
while IFS=, read -r P B T TP reps mttft mtpot; do
	mbt=$((B * P))
	[ "$mbt" -lt 8192 ] && mbt=8192
	mns=$B
	[ "$mns" -lt 256 ] && mns=256
	calib_opt=${calib:+--calibration $calib}
	# shellcheck disable=SC2086 # $calib_opt is empty or two words
	"$kvfleet" run --no-db --json --model "$tmp/llama-2-70b.json" --gpu h100-sxm --tp "$TP" \
		--max-batched-tokens "$mbt" --max-num-seqs "$mns" $calib_opt "$@" \
		--synthetic "closed,concurrency=$B,isl=$P,osl=$T,requests=$B" \
		>"$tmp/out.json" 2>"$tmp/err"
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "$P,$B,$T,$TP,$reps,$mttft,$mtpot,,,,,,exit$rc" >>"$out"
		sed 's/^/  /' "$tmp/err" >&2
		fail=1
		continue
	fi
	ttft=$(field ttft_p50_s "$tmp/out.json")
	tpot=$(field tpot_p50_s "$tmp/out.json")
	pre=$(field preemptions "$tmp/out.json")
	awk -v P="$P" -v B="$B" -v T="$T" -v TP="$TP" -v r="$reps" -v mt="$mttft" -v mp="$mtpot" \
		-v pt="$ttft" -v pp="$tpot" -v pre="$pre" 'BEGIN {
		printf "%s,%s,%s,%s,%s,%.3f,%.3f,%.3f,%.3f,%.4f,%.4f,%s,ok\n", P, B, T, TP, r, mt, mp,
		       pt * 1000, pp * 1000, pt * 1000 / mt - 1, pp * 1000 / mp - 1, pre }' >>"$out"
done <"$tmp/cfg.csv"

# median absolute errors, by TP and in all (preempting runs counted apart)
awk -F, 'function med(a, n,   i, j, x) {
		for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j + 1] = a[j]; a[j + 1] = x }
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
	function abs(x) { return x < 0 ? -x : x }
	NR > 1 && $13 == "ok" {
		g = "TP " $4; n[g]++; t[g, n[g]] = abs($10); p[g, n[g]] = abs($11); s[g, n[g]] = $10; q[g, n[g]] = $11
		n["all"]++; t["all", n["all"]] = abs($10); p["all", n["all"]] = abs($11)
		s["all", n["all"]] = $10; q["all", n["all"]] = $11
		if ($12 > 0) pre++ }
	END {
		printf "%-6s %5s %14s %14s %14s %14s\n", "group", "rows", "TTFT |err| p50", "TTFT err p50", "TPOT |err| p50", "TPOT err p50"
		split("TP 2,TP 4,TP 8,all", order, ",")
		for (o = 1; o <= 4; o++) {
			g = order[o]; m = n[g]; if (!m) continue
			for (i = 1; i <= m; i++) { a[i] = t[g, i]; b[i] = p[g, i]; c[i] = s[g, i]; d[i] = q[g, i] }
			printf "%-6s %5d %13.1f%% %+13.1f%% %13.1f%% %+13.1f%%\n", g, m, 100 * med(a, m), 100 * med(c, m), 100 * med(b, m), 100 * med(d, m)
		}
		printf "(%d configuration(s) with preemptions)\n", pre }' "$out"
[ $fail -eq 0 ] || { echo "experiments/splitwise/run.sh: some runs failed (status column of $out)" >&2; exit 1; }
