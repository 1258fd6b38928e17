# One ramp run over time (run.sh passes cliff, base and outfile): TTFT p99 of
# the requests arriving in each 10-s bin, then each timeline signal, with the
# cliff marked. Reads one_p99.csv and one_tl.csv from the current folder.
set terminal pngcairo size 1000,1100 font ",10" noenhanced
set output outfile
set datafile separator ","
set grid
set multiplot layout 5,1 title "Made-up ramp 2 to 30 requests/s over 1200 s (seed 1), llama-3-8b, h100-sxm: cliff at ".cliff." s"
set lmargin 12
set arrow 1 from cliff, graph 0 to cliff, graph 1 nohead dt 2 lc rgb "red"
set xrange [0:1400]
set logscale y
set ylabel "TTFT p99 (s)"
plot "one_p99.csv" using ($3 + 5):4 with lines lw 2 title "TTFT p99 by arrival bin", \
     10 * base with lines dt 2 lc rgb "black" title "10 x early p99"
unset logscale y
set ylabel "busy fraction"
set yrange [0:1.05]
plot "one_tl.csv" using ($3 + 5):4 with lines lw 2 title "busy_frac"
set autoscale y
set ylabel "sequences"
plot "one_tl.csv" using ($3 + 5):5 with lines lw 2 title "batch_mean (max-num-seqs 256)"
set ylabel "KV utilisation"
set yrange [0:1]
plot "one_tl.csv" using ($3 + 5):6 with lines lw 2 title "kv_util_mean"
set autoscale y
set logscale y
set ylabel "waiting requests"
set xlabel "simulated time (s)"
plot "one_tl.csv" using ($3 + 5):($7 > 0.01 ? $7 : 0.01) with lines lw 2 title "waiting_mean (floored at 0.01)"
unset multiplot
