#!/bin/sh
# The batch-intensity study (docs/studies/batch-intensity.md): throughput,
# TPOT and TTFT against --max-num-seqs (1..512) for llama-3-8b on h100-sxm
# and h200, bf16 and fp8 (--dtype fp8: weights, GEMMs and KV in fp8), with
# the datasheet perf model (--calibration none) on both GPUs and, for the
# H100, the calibrated one as well (data/calib/h100-sxm.json; the H200 has
# no calibration file). The load is a closed loop whose concurrency equals
# max-num-seqs (isl 1024, osl 256, 4 waves), so batches are full.
# Then the arithmetic intensity of the pure-decode steps (steps table) and
# `kvfleet predict` at other contexts, against the balance point.
#
# usage: experiments/batch-intensity/run.sh [KVFLEET]
# Writes results.csv, decode_steps.csv, predict.csv here, and
# docs/figures/study-batch-intensity-*.png. About 3 s of CPU.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
. "$here/../study.sh"
study_init batch-intensity "${1-}"
db=$out/batch.db
study_sweep "$here/spec.json" "$db"

# calibration "none" or "calib" (the H100 file) as the configuration label
"$kv" query "$db" --csv --columns gpu,dtype,calibration,max-num-seqs,mean_batch_size,output_tokens_per_s,tpot_p50_s,tpot_p99_s,ttft_p50_s,ttft_p99_s,preemptions,kv_util_peak,mfu_mean,mbu_mean |
	sed 's#,[^,]*/data/calib/h100-sxm.json,#,calib,#' >"$here/results.csv"

# pure-decode steps (no prefill chunk) of every run: mean batch, mean and max
# intensity, the balance point from the preset, and what bound them
sqlite3 -csv -header "$db" "
SELECT json_extract(p.axes, '$.gpu') AS gpu, json_extract(p.axes, '$.dtype') AS dtype,
       CASE json_extract(p.axes, '$.calibration') WHEN 'none' THEN 'none' ELSE 'calib' END AS calibration,
       json_extract(p.axes, '$.\"max-num-seqs\"') AS max_num_seqs, count(*) AS decode_steps,
       round(avg(s.batch_size), 2) AS batch_mean, round(avg(s.intensity), 2) AS intensity_mean,
       round(max(s.intensity), 2) AS intensity_max, round(avg(s.balance), 2) AS balance,
       round(avg(s.kv_blocks_used * 16.0 / s.batch_size), 0) AS kv_tokens_per_seq,
       round(avg(s.bound = 'hbm'), 3) AS share_hbm, round(avg(s.bound = 'compute'), 3) AS share_compute,
       round(avg(s.bound = 'overhead'), 3) AS share_overhead
FROM sweep_points p JOIN steps s USING (run_id)
WHERE s.n_prefill = 0 AND s.batch_size > 0
GROUP BY p.point_id ORDER BY p.point_id" >"$here/decode_steps.csv"

# predicted decode steps beyond the sweep: intensity against batch and context
echo "gpu,dtype,context,batch,step_s,intensity,balance,bound" >"$here/predict.csv"
for g in h100-sxm h200; do
	for d in bf16 fp8; do
		for c in 1 256 512 1024 4096 8192; do
			for b in 1 4 16 64 256 512 1024 2048 4096 8192; do
				"$kv" predict --model llama-3-8b --gpu $g --dtype $d --calibration none \
					--decode $b@$c --json |
					tr -d ' \n' | sed 's/.*"step_s":\([^,]*\),.*"intensity":\([^,]*\),"balance":\([^,]*\),"bound":"\([a-z]*\)".*/\1,\2,\3,\4/' |
					sed "s/^/$g,$d,$c,$b,/"
				echo
			done
		done
	done
done >>"$here/predict.csv"

# roofline figures of two runs: h100-sxm bf16 and h200 fp8, datasheet, 512 sequences
rid() {
	sqlite3 "$db" "SELECT run_id FROM sweep_points WHERE json_extract(axes, '$.gpu') = '$1'
	  AND json_extract(axes, '$.dtype') = '$2' AND json_extract(axes, '$.calibration') = 'none'
	  AND json_extract(axes, '$.\"max-num-seqs\"') = $3"
}
"$kv" plot "$db" --kind roofline --run "$(rid h100-sxm bf16 512)" -o "$fig/study-batch-intensity-roofline-h100-bf16.png" \
	--title "Roofline: llama-3-8b, h100-sxm, bf16, datasheet model, max-num-seqs 512, closed loop isl 1024 osl 256"
"$kv" plot "$db" --kind roofline --run "$(rid h200 fp8 512)" -o "$fig/study-batch-intensity-roofline-h200-fp8.png" \
	--title "Roofline: llama-3-8b, h200, fp8, datasheet model, max-num-seqs 512, closed loop isl 1024 osl 256"
(cd "$here" && gnuplot plot.gp)
echo "results in $out"
