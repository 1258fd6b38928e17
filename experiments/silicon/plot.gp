# Predicted vs measured TTFT and TPOT of the AIConfigurator silicon rows
# (docs/VALIDATION.md). Run from the repository root after run.sh:
#
#   gnuplot experiments/silicon/plot.gp
#
# Reads experiments/silicon/results.csv (calibrated) and
# experiments/silicon/results_nocalib.csv (datasheet roofline, grey), writes
# docs/figures/silicon_ttft.png and docs/figures/silicon_tpot.png. Override
# with, e.g., gnuplot -e "after='a.csv'; before='b.csv'; outdir='/tmp'" plot.gp
#
# results.csv columns used: 2 backend, 3 model, 4 precision,
# 10 meas_ttft_ms, 11 pred_ttft_ms, 13 meas_tpot_ms, 14 pred_tpot_ms.

if (!exists("after")) after = 'experiments/silicon/results.csv'
if (!exists("before")) before = 'experiments/silicon/results_nocalib.csv'
if (!exists("outdir")) outdir = 'docs/figures'

set datafile separator ','
set terminal pngcairo size 1000,900 font 'sans,12' linewidth 1.2
set logscale xy
set grid xtics ytics mxtics mytics lc rgb '#dddddd'
set key top left box opaque font 'sans,10' spacing 1.1
set size ratio -1
set samples 400

# the groups: model, precision, backend
grp(m, p, b) = (strcol(3) eq m && strcol(4) eq p && strcol(2) eq b)

do for [metric in "ttft tpot"] {
	mc = (metric eq "ttft") ? 10 : 13
	pc = mc + 1
	name = (metric eq "ttft") ? "TTFT" : "TPOT"
	set autoscale xy   # stats honours the previous plot's ranges
	stats after using (column(mc)):(column(pc)) nooutput
	lo = (STATS_min_x < STATS_min_y ? STATS_min_x : STATS_min_y)
	hi = (STATS_max_x > STATS_max_y ? STATS_max_x : STATS_max_y)
	stats before using (column(pc)) nooutput
	lo = (STATS_min < lo ? STATS_min : lo) / 1.5
	hi = (STATS_max > hi ? STATS_max : hi) * 1.5
	set xrange [lo:hi]
	set yrange [lo:hi]
	# labels at 1-2-5 over up to three decades, at powers of 10 beyond
	set xtics 10 format "%g"
	set ytics 10 format "%g"
	if (hi / lo < 2000) {
		do for [e=-1:5] {
			set xtics add (sprintf("%g", 2*10**e) 2*10**e, sprintf("%g", 5*10**e) 5*10**e)
			set ytics add (sprintf("%g", 2*10**e) 2*10**e, sprintf("%g", 5*10**e) 5*10**e)
		}
	}
	set output outdir.'/silicon_'.metric.'.png'
	set xlabel 'measured '.name.' (ms, AIConfigurator silicon sample)'
	set ylabel 'predicted '.name.' p50 (ms, kvfleet)'
	set title "{/:Bold ".name.": kvfleet closed loop vs measured serving runs}\n".\
		"H100 SXM, agg, TP 1-8, 579 rows (trtllm, vllm, sglang); N = 256 x concurrency, fixed ISL/OSL\n".\
		"coloured: calibrated (data/calib/h100-sxm.json); grey: datasheet roofline (--calibration none)" \
		font 'sans,12'
	plot '+' using 1:(0.9*$1):(1.1*$1) with filledcurves lc rgb '#d8f0d8' title '±10%', \
		x with lines lc rgb 'black' dt 1 title 'y = x', \
		before using (column(mc)):(column(pc)) with points pt 1 ps 0.7 lc rgb '#b0b0b0' title 'datasheet roofline (all rows)', \
		after using (grp("llama-3.1-8b", "bf16", "trtllm") ? column(mc) : NaN):(column(pc)) with points pt 7 ps 0.8 lc rgb '#1f77b4' title 'llama-3.1-8b bf16, trtllm', \
		after using (grp("qwen3-32b", "fp8", "trtllm") ? column(mc) : NaN):(column(pc)) with points pt 5 ps 0.8 lc rgb '#17becf' title 'qwen3-32b fp8, trtllm', \
		after using (grp("qwen3-32b", "bf16", "vllm") ? column(mc) : NaN):(column(pc)) with points pt 9 ps 0.9 lc rgb '#d62728' title 'qwen3-32b bf16, vllm', \
		after using (grp("qwen3-32b", "fp8", "vllm") ? column(mc) : NaN):(column(pc)) with points pt 11 ps 1.2 lc rgb '#9467bd' title 'qwen3-32b fp8, vllm (Dynamo)', \
		after using (grp("llama-3.1-70b", "fp8", "vllm") ? column(mc) : NaN):(column(pc)) with points pt 13 ps 0.9 lc rgb '#ff7f0e' title 'llama-3.1-70b fp8, vllm', \
		after using (grp("qwen3-32b", "bf16", "sglang") ? column(mc) : NaN):(column(pc)) with points pt 3 ps 0.9 lc rgb '#2ca02c' title 'qwen3-32b bf16, sglang'
	unset output
}
