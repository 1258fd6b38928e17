# TTFT p99 and recomputed tokens against the KV pool, one line per policy,
# from results_mooncake.csv and results_azure.csv (written by run.sh).
# Run from experiments/kv-memory: gnuplot plot.gp
set terminal pngcairo size 1500,520 font ",10"
set output "../../docs/figures/study-kv-memory-ttft.png"
set datafile separator ","
set logscale x 2
set logscale y
set grid
set key top right
set multiplot layout 1,3
pols = "none lru fifo lfu s3fifo arc ttl gdsf"
sel(f, p) = sprintf("< awk -F, '$2 == \"%s\"' %s", p, f)
set xlabel "KV pool of one replica (blocks of 16 tokens)"
set ylabel "TTFT p99 (s)"
set title "Mooncake x0.25 (real hash\\_ids): TTFT p99"
plot for [p in pols] sel("results_mooncake.csv", p) using 1:8 with linespoints title p
set title "Azure + made-up sessions: TTFT p99"
plot for [p in pols] sel("results_azure.csv", p) using 1:8 with linespoints title p
set ylabel "recomputed tokens"
set key bottom left
set title "Azure + made-up sessions: recomputed tokens"
plot for [p in pols] sel("results_azure.csv", p) using 1:5 with linespoints title p
unset multiplot
