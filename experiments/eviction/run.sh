#!/bin/sh
# The eviction study of the HBM prefix cache (docs/studies/eviction.md):
# every eviction policy at a range of KV pool sizes, with the full simulator
# (timing included), on
#   (a) the Mooncake FAST'25 synthetic trace shipped for development
#       (data/traces/mooncake_synthetic.jsonl; block hashes from the trace);
#   (b) a made-up multi-turn sessions workload (--synthetic sessions,...):
#       a sensitivity study of that model, not a finding about a real trace;
# plus `kvfleet cache-replay` (no timing, Belady's offline bound included) on
# the Mooncake trace at the same capacities; and
#   (d) the HBM cache with and without a host DRAM tier behind PCIe
#       (--host-cache-gib, --miss) on the Mooncake trace at two pool sizes.
#
# usage: experiments/eviction/run.sh [KVFLEET]
#   KVFLEET  the kvfleet binary (default: build-study/kvfleet under the
#            repository root). Runs from the repository root (data/ presets).
#
# Environment overrides (defaults below): PARTS, POLICIES, MC_EXTRA, SS_EXTRA,
# MC_SIZES, SS_SIZES, MC_SCALE, SS_SPEC, SEEDS, SEED_SIZES, HOST_POLICIES,
# HOST_SIZES, HOST_GIBS, HOST_MISS, OUTDIR.
#
# Writes, in OUTDIR (default experiments/eviction), the parts named in PARTS
# (default: all of "mooncake sessions seeds replay host"):
#   results_mooncake.csv         full simulator, Mooncake trace
#   results_sessions.csv         full simulator, synthetic sessions, seed 1
#   results_sessions_seeds.csv   the same at two sizes for seeds 1..3 (spread)
#   results_mooncake_replay.csv  cache-replay (no timing) incl. belady
#   results_mooncake_host.csv    full simulator, Mooncake, host tier 0/64/256 GiB
# The `belady` rows of results_mooncake.csv and results_sessions.csv (full
# simulator) come from PARTS=mooncake POLICIES=belady MC_EXTRA= and
# PARTS=sessions POLICIES=belady SS_EXTRA=, appended to those files
# (docs/studies/eviction.md, "Belady in the full simulator"); belady is not
# in the default POLICIES.
# Every run is deterministic: the CSVs are the same on every machine
# (wall time is left out on purpose). About 3 minutes of CPU (185 s wall on
# 2 shared cores at c51e1c0).
# Then: gnuplot experiments/eviction/plot.gp   (docs/figures/eviction_*.png)
# POSIX sh and awk only.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 2

kvfleet=${1:-$root/build-study/kvfleet}
case $kvfleet in /*) ;; *) kvfleet=$(pwd)/$kvfleet ;; esac
if [ ! -x "$kvfleet" ]; then
	echo "run.sh: $kvfleet: not an executable (give the kvfleet binary as the first argument)" >&2
	exit 2
fi

PARTS=${PARTS:-"mooncake sessions seeds replay host"}
# The policies of docs/eviction.md and `none` (no prefix caching: the baseline).
# `ttl` is its default idle time, 300 s (expiring in `kvfleet run` since commit
# 43d2ce2, "kv: idle TTL expires in the full simulator too").
POLICIES=${POLICIES:-"none lru lfu fifo ttl gdsf s3fifo arc session"}
# Mooncake only: a shorter TTL, and TTL and session parameters scaled with
# --load-scale (the trace is stretched 4x, so 300 s of idle TTL at the
# simulator's clock is 75 s of the trace's; 60 s is 15 s of the trace's;
# 1200 s restores the trace's 300 s, 240 s the 60-s horizon).
MC_EXTRA=${MC_EXTRA-"ttl:idle=60s ttl:idle=1200s session:horizon=240s"}
# Sessions only (results_sessions.csv and the seeds): a shorter TTL, 60 s,
# below the mean think time of 90 s (about 40% of the lognormal gaps are
# longer than 60 s, 5.5% longer than the default 300 s).
SS_EXTRA=${SS_EXTRA-"ttl:idle=60s"}

# KV pool sizes (one replica's --kv-blocks, 16 tokens per block). For
# llama-3.1-8b in bf16 a block is 16 x 32 layers x 8 KV heads x 128 x 2 (K, V)
# x 2 bytes = 2 MiB. 28320 is about what one H100 SXM 80 GB leaves to KV by
# default (28324 blocks, 55 GiB); everything above ~64 Ki blocks (128 GiB) is
# more than one GPU's HBM: an HBM-speed cache of that size, the upper end a
# host tier would approach.
# Mooncake: multiples of 32 (one cache-replay block of 512 tokens = 32
# simulator blocks): 8192 = the largest accepted prompt (128k tokens) alone,
# ..., 1409024 = 44032 x 32 >= the trace's 43924 distinct hash blocks (no
# eviction at all).
MC_SIZES=${MC_SIZES:-"8192 28320 65536 163840 327680 655360 1409024"}
# Sessions: 8192 (heavy queueing, tiny) ... 655360 (no eviction: the peak use
# with an unbounded pool is about 616k blocks).
SS_SIZES=${SS_SIZES:-"8192 16384 28320 65536 131072 262144 655360"}

# The Mooncake trace at 0.25 x its rate (3.9 -> 0.98 requests/s, 1022 s ->
# 4088 s): one H100 is busy 92% of the time without a prefix cache (TTFT p50
# 0.84 s, p99 9.6 s) and stays out of overload; at 0.4 it is saturated.
MC_SCALE=${MC_SCALE:-0.25}
MC_TRACE=data/traces/mooncake_synthetic.jsonl
# Made-up sessions: 1 new conversation per second, 2000 conversations,
# geometric turns (mean 6), lognormal think time (mean 90 s, sigma 1.2: 5.5%
# of the gaps are longer than 300 s), new prompt per turn lognormal (mean 400),
# output lognormal (mean 250), a 1000-token first prompt prefix.
SS_SPEC=${SS_SPEC:-'sessions,rate=1,sessions=2000,turns=geometric(mean=6),think=lognormal(mean=90;sigma=1.2),isl=lognormal(mean=400;sigma=1),osl=lognormal(mean=250;sigma=0.7),system=1000'}
SEEDS=${SEEDS:-"1 2 3"}
SEED_SIZES=${SEED_SIZES:-"16384 65536"}
# (d) the host tier: policies, HBM pool sizes (8192: 16 GiB; 28320: one
# H100's KV space), host GiB per replica (0: none; the limit is the node's
# host memory over its replicas: h100-sxm 2 TiB / 8 = 256 GiB at TP 1) and
# what a host hit does.
HOST_POLICIES=${HOST_POLICIES:-"lru arc gdsf"}
HOST_SIZES=${HOST_SIZES:-"8192 28320"}
HOST_GIBS=${HOST_GIBS:-"0 64 256"}
HOST_MISS=${HOST_MISS:-"swap cheaper"}
OUTDIR=${OUTDIR:-$here}

COMMON="--no-db --json --timeline-s 0 --steps-sample 0 --model llama-3.1-8b --gpu h100-sxm"
# bytes of one 16-token KV block of llama-3.1-8b in bf16 (see above)
BLOCK_BYTES=2097152

KEYS="completed,rejected,rejected_context,rejected_kv_capacity,prefix_hit_rate_tokens,prefix_hit_rate_requests,recomputed_tokens,evictions,preemptions,ttft_p50_s,ttft_p99_s,output_tokens_per_s,busy_frac,kv_util_mean,kv_blocks"
HEADER="trace,policy,seed,kv_blocks,kv_gib,$(echo "$KEYS" | sed 's/,kv_blocks$//')"
# (d): every figure of the host tier; hit_tokens (and so the hit rate) count
# the blocks swapped in from the host tier
HKEYS="completed,rejected,prefix_hit_rate_tokens,prefix_hit_rate_requests,swapped_in_tokens,prompt_tokens,recomputed_tokens,evictions,preemptions,pcie_bytes_h2d,pcie_bytes_d2h,pcie_busy_h2d_s,pcie_busy_d2h_s,ttft_p50_s,ttft_p99_s,output_tokens_per_s,busy_frac,kv_blocks"
HHEADER="trace,policy,kv_blocks,kv_gib,host_gib,miss,$(echo "$HKEYS" | sed 's/,kv_blocks$//')"
RKEYS="hit_rate_blocks,hit_rate_tokens,hit_blocks,hit_tokens,blocks,evictions,unique_blocks"
RHEADER="trace,policy,capacity_blocks,kv_blocks_equiv,kv_gib_equiv,$RKEYS"

tmp=${TMPDIR:-/tmp}/kvfleet-eviction.$$
trap 'rm -f "$tmp" "$tmp.err"' EXIT
trap 'exit 1' INT TERM

# jfields KEYS: the values of KEYS (comma-separated) from the JSON object on
# stdin (one line or several), as one CSV line; null stays "null", a missing
# key is an error.
jfields() {
	awk -v keys="$1" '{ s = s $0 } END {
		n = split(keys, k, ",")
		out = ""
		for (i = 1; i <= n; i++) {
			if (!match(s, "\"" k[i] "\"[ \t]*:[ \t]*[^,}]*")) {
				print "run.sh: no key " k[i] " in the JSON" > "/dev/stderr"
				exit 1
			}
			v = substr(s, RSTART, RLENGTH)
			sub(/^[^:]*:[ \t]*/, "", v)
			gsub(/[" \t]/, "", v)
			out = out (i > 1 ? "," : "") v
		}
		print out
	}'
}

fail=0
# sim TRACE POLICY SEED BLOCKS OUTFILE -- KVFLEET RUN SOURCE OPTIONS...
# writes TRACE,POLICY,SEED,BLOCKS,GIB,<KEYS but kv_blocks>; with keys=$HKEYS
# and cols=HOST_GIB,MISS set: TRACE,POLICY,BLOCKS,GIB,HOST_GIB,MISS,<HKEYS...>
keys=$KEYS cols=
sim() {
	t=$1 p=$2 s=$3 n=$4 f=$5
	shift 6
	# shellcheck disable=SC2086
	if "$kvfleet" run $COMMON --policy "$p" --kv-blocks "$n" --seed "$s" "$@" >"$tmp" 2>"$tmp.err"; then
		vals=$(jfields "$keys" <"$tmp") || { fail=1; return; }
		got=${vals##*,}
		if [ "$got" != "$n" ]; then
			echo "run.sh: $t $p $n: kvfleet reports kv_blocks=$got" >&2
			fail=1
		fi
		gib=$(awk -v n="$n" -v b="$BLOCK_BYTES" 'BEGIN { printf "%.1f", n * b / 1073741824 }')
		if [ -n "$cols" ]; then
			echo "$t,$p,$n,$gib,$cols,${vals%,*}" >>"$f"
		else
			echo "$t,$p,$s,$n,$gib,${vals%,*}" >>"$f"
		fi
	else
		echo "run.sh: $t $p kv-blocks $n seed $s $cols: kvfleet exited $?: $(cat "$tmp.err")" >&2
		fail=1
	fi
}

start=$(date +%s)
echo "kvfleet: $("$kvfleet" --version | head -n 1); $(date -u '+%Y-%m-%d %H:%M UTC')"

# part NAME: whether PARTS names it
part() {
	case " $PARTS " in *" $1 "*) return 0 ;; esac
	return 1
}

# (a) Mooncake, full simulator
if part mooncake; then
	f=$OUTDIR/results_mooncake.csv
	echo "$HEADER" >"$f"
	for p in $POLICIES $MC_EXTRA; do
		for n in $MC_SIZES; do
			sim mooncake "$p" 1 "$n" "$f" -- --trace "$MC_TRACE" --load-scale "$MC_SCALE"
		done
	done
	echo "wrote $f ($(($(wc -l <"$f") - 1)) runs)"
fi

# (b) synthetic sessions, full simulator
if part sessions; then
	f=$OUTDIR/results_sessions.csv
	echo "$HEADER" >"$f"
	for p in $POLICIES $SS_EXTRA; do
		for n in $SS_SIZES; do
			sim sessions "$p" 1 "$n" "$f" -- --synthetic "$SS_SPEC"
		done
	done
	echo "wrote $f ($(($(wc -l <"$f") - 1)) runs)"
fi

# (b') the same at two sizes for several seeds: the spread between workload draws
if part seeds; then
	f=$OUTDIR/results_sessions_seeds.csv
	echo "$HEADER" >"$f"
	for p in $POLICIES $SS_EXTRA; do
		for n in $SEED_SIZES; do
			for s in $SEEDS; do
				sim sessions "$p" "$s" "$n" "$f" -- --synthetic "$SS_SPEC"
			done
		done
	done
	echo "wrote $f ($(($(wc -l <"$f") - 1)) runs)"
fi

# (c) cache-replay on the Mooncake trace at the same capacities (1 block of
# 512 tokens = 32 simulator blocks), Belady included; no timing, no
# --load-scale (the trace's own clock), `none` does not exist there.
if part replay; then
	f=$OUTDIR/results_mooncake_replay.csv
	echo "$RHEADER" >"$f"
	for p in $(echo "$POLICIES" | sed 's/none//') $MC_EXTRA belady; do
		for n in $MC_SIZES; do
			c=$((n / 32))
			if "$kvfleet" cache-replay --trace "$MC_TRACE" --policy "$p" --capacity-blocks "$c" --json >"$tmp" 2>"$tmp.err"; then
				vals=$(jfields "$RKEYS" <"$tmp") || { fail=1; continue; }
				gib=$(awk -v n="$n" -v b="$BLOCK_BYTES" 'BEGIN { printf "%.1f", n * b / 1073741824 }')
				echo "mooncake,$p,$c,$n,$gib,$vals" >>"$f"
			else
				echo "run.sh: cache-replay $p $c: kvfleet exited $?: $(cat "$tmp.err")" >&2
				fail=1
			fi
		done
	done
	echo "wrote $f ($(($(wc -l <"$f") - 1)) runs)"
fi

# (d) the host tier: Mooncake, full simulator, with and without a host DRAM
# tier per replica behind PCIe, a host hit swapped in or, per request, the
# cheaper of swapping in and prefilling. Host 0 is run with each --miss too
# (no host tier: the two must be the same run).
if part host; then
	f=$OUTDIR/results_mooncake_host.csv
	echo "$HHEADER" >"$f"
	keys=$HKEYS
	for p in $HOST_POLICIES; do
		for n in $HOST_SIZES; do
			for h in $HOST_GIBS; do
				for m in $HOST_MISS; do
					cols="$h,$m"
					sim mooncake "$p" 1 "$n" "$f" -- --trace "$MC_TRACE" --load-scale "$MC_SCALE" \
						--host-cache-gib "$h" --miss "$m"
				done
			done
		done
	done
	keys=$KEYS cols=
	echo "wrote $f ($(($(wc -l <"$f") - 1)) runs)"
fi

echo "done in $(($(date +%s) - start)) s"
exit $fail
