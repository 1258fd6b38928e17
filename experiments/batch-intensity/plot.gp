# Throughput and TPOT p99 against max-num-seqs (results.csv), and decode
# intensity against batch (decode_steps.csv, predict.csv), per GPU, dtype
# and perf model. Run from experiments/batch-intensity: gnuplot plot.gp
set terminal pngcairo size 1400,520 font ",10"
set datafile separator ","
set grid
set logscale x 2
cfgs = "h100-sxm,bf16,none h100-sxm,fp8,none h200,bf16,none h200,fp8,none h100-sxm,bf16,calib h100-sxm,fp8,calib"
sel(f, c) = sprintf("< grep '^%s,' %s", c, f)

set output "../../docs/figures/study-batch-intensity-throughput.png"
set multiplot layout 1,2
set xlabel "max-num-seqs (= closed-loop concurrency)"
set ylabel "output tokens/s"
set key top left
set title "Throughput (llama-3-8b, isl 1024, osl 256)"
plot for [c in cfgs] sel("results.csv", c) using 4:6 with linespoints title c
set ylabel "TPOT p99 (ms)"
set logscale y
set title "TPOT p99; the 50 ms SLO dashed"
plot for [c in cfgs] sel("results.csv", c) using 4:($8 * 1000) with linespoints title c, \
     50 with lines dashtype 2 lc rgb "black" title "50 ms"
unset multiplot
unset logscale y

set output "../../docs/figures/study-batch-intensity-decode.png"
set multiplot layout 1,2
set logscale y
set xlabel "sequences in the decode step"
set ylabel "arithmetic intensity (FLOP/byte)"
set key bottom right
set title "Pure-decode steps of the sweep (context about 1024-1280 tokens) vs balance"
plot for [c in "h100-sxm,bf16,none h100-sxm,fp8,none h200,bf16,none h200,fp8,none"] \
       sel("decode_steps.csv", c) using 6:7 with linespoints title c, \
     295.34 with lines dt 2 lc rgb "red" title "balance h100 bf16 (295)", \
     590.7 with lines dt 3 lc rgb "red" title "balance h100 fp8 (591)", \
     206.1 with lines dt 2 lc rgb "blue" title "balance h200 bf16 (206)", \
     412.3 with lines dt 3 lc rgb "blue" title "balance h200 fp8 (412)"
set xlabel "decode batch (kvfleet predict)"
set title "Predicted decode intensity, h100-sxm bf16, by context"
plot for [ctx in "1 256 512 1024 4096 8192"] \
       sprintf("< grep '^h100-sxm,bf16,%s,' predict.csv", ctx) using 4:6 with linespoints title "context ".ctx, \
     295.34 with lines dt 2 lc rgb "red" title "balance (295)"
unset multiplot
