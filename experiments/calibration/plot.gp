# Held-out errors of the perf model's per-operator fit (docs/VALIDATION.md),
# one panel per fitted operator: the signed error of each held-out row
# against its measured time. Run from the repository root:
#
#   build-me/kvfleet calibrate --gpu h100-sxm --residuals /tmp/residuals.csv
#   gnuplot -e "res='/tmp/residuals.csv'" experiments/calibration/plot.gp
#
# writes docs/figures/calib_residuals.png (override with outdir='...').
# Residuals CSV columns used (docs/calibration.md): 1 op, 2 set, 3 split,
# 9 measured_s, 11 error_pct.

if (!exists("res")) res = '/tmp/residuals.csv'
if (!exists("outdir")) outdir = 'docs/figures'

set datafile separator ','
set terminal pngcairo size 1400,1050 font 'sans,10' linewidth 1.1 noenhanced
set output outdir.'/calib_residuals.png'

ops = "qkv_proj o_proj mlp_up mlp_down lm_head mlp_act norm rope embed attn_prefill attn_decode allreduce"
sel(o, s) = (strcol(1) eq o && strcol(2) eq s && strcol(3) eq "test")

set multiplot layout 4,3 title "kvfleet calibrate, H100 SXM: held-out rows, (predicted / measured - 1) x 100 against the measured time" font 'sans,12'
set logscale x
set format x '%g'
set grid xtics ytics lc rgb '#dddddd'
set yrange [-40:40]
set ytics 10
set key top right font 'sans,9' opaque box
gemms = "qkv_proj o_proj mlp_up mlp_down lm_head"
do for [o in ops] {
	set title o font 'sans,11'
	if (strstrt(gemms, o) > 0) { set key top right font 'sans,9' opaque box } else { unset key }
	set xlabel 'measured (us)'
	set ylabel 'error (%)'
	plot res u (sel(o, "bf16") ? $9 * 1e6 : 1/0):11 w p pt 7 ps 0.35 lc rgb '#1f77b4' t 'bf16', \
	     res u (sel(o, "fp8") ? $9 * 1e6 : 1/0):11 w p pt 7 ps 0.35 lc rgb '#d62728' t 'fp8 weights', \
	     5 w l dt 2 lc rgb '#888888' notitle, -5 w l dt 2 lc rgb '#888888' notitle
}
unset multiplot
