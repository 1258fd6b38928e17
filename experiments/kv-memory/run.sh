#!/bin/sh
# The kv-memory study (docs/studies/kv-memory.md): prefix hit rate,
# recomputed tokens and TTFT against the KV pool of one replica
# (--kv-blocks), per eviction policy, on
#   (a) the Mooncake FAST'25 trace shipped in data/traces (real prefix
#       structure: its hash_ids), stretched to 0.25 x its rate;
#   (b) the first 6000 requests of the shipped Azure 2023 conversation trace
#       with a MADE-UP session structure (--sessionize), plus a sensitivity
#       sweep of that model's share and gap (LRU only).
#
# usage: experiments/kv-memory/run.sh [KVFLEET]
#   KVFLEET  the kvfleet binary (default: build-st/kvfleet under the
#            repository root). OUTDIR (default: a fresh folder under /tmp)
#            receives the results files; the CSVs are written next to this
#            script and the figures to docs/figures/study-kv-memory-*.png.
# About 60 s of CPU (2 jobs). Deterministic: same CSVs every time.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../study.sh"
study_init kv-memory "${1-}"

for s in mooncake azure azure_sens; do
	study_sweep "$here/spec_$s.json" "$out/$s.db"
done

cols=kv-blocks,policy,prefix_hit_rate_tokens,prefix_hit_rate_requests,recomputed_tokens,preemptions,ttft_p50_s,ttft_p99_s,busy_frac,rejected
"$kv" query "$out/mooncake.db" --csv --columns $cols >"$here/results_mooncake.csv"
"$kv" query "$out/azure.db" --csv --columns $cols >"$here/results_azure.csv"
"$kv" query "$out/azure_sens.db" --csv \
	--columns sessionize,kv-blocks,prefix_hit_rate_tokens,recomputed_tokens,ttft_p50_s,ttft_p99_s \
	>"$here/results_azure_sens.csv"

"$kv" plot "$out/mooncake.db" --kind hit-rate -o "$fig/study-kv-memory-hit-mooncake.png" \
	--title "Prefix hit rate vs KV pool: Mooncake trace (real hash_ids) x0.25, llama-3.1-8b, h100-sxm"
"$kv" plot "$out/azure.db" --kind hit-rate -o "$fig/study-kv-memory-hit-azure.png" \
	--title "Prefix hit rate vs KV pool: Azure conv. trace, 6000 req., MADE-UP sessions (share 0.5, gap 60 s), llama-3-8b"
(cd "$here" && gnuplot plot.gp)
echo "results in $out; figures in $fig"
