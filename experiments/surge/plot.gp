# The surge over time for four fleets (seed 1): replicas that ran steps,
# waiting requests, and rejections at the fleet's edge per 10 s; from
# timeline.csv (run.sh). Run from experiments/surge: gnuplot plot.gp
set terminal pngcairo size 1100,900 font ",10" noenhanced
set output "../../docs/figures/study-surge-timeline.png"
set datafile separator ","
set grid
set key top right
set xrange [0:2000]
fl = "fixed-2 fixed-4 as-p30-c4 as-p120-c8 as-p300-c8 as-p300-c8-d05"
sel(f) = sprintf("< grep '^%s,' timeline.csv", f)
set object 1 rect from 600, graph 0 to 1200, graph 1 fc rgb "#eeeeee" behind
set multiplot layout 3,1 title "Made-up surge 10 -> 60 requests/s (600-1200 s), llama-3-8b on H100, seed 1"
set ylabel "replicas running steps"
set yrange [0:9]
plot for [f in fl] sel(f) using ($2 + 5):3 with steps lw 2 title f
set autoscale y
set ylabel "waiting requests (all replicas)"
plot for [f in fl] sel(f) using ($2 + 5):5 with lines lw 2 title f
set ylabel "rejected at capacity per 10 s"
set xlabel "simulated time (s); grey: the surge"
plot for [f in fl] sel(f) using ($2 + 5):7 with lines lw 2 title f
unset multiplot

set output "../../docs/figures/study-surge-cost.png"
set terminal pngcairo size 1000,600 font ",10" noenhanced
unset object 1
unset xrange
set autoscale
set xlabel "cost of the run (USD, mean of 3 seeds)"
set ylabel "rejected share (%)"
set key top right
set title "Cost against rejections: fixed fleets and autoscaler (provision delay p, supply cap c)"
plot for [p in "30 120 300"] sprintf("< grep '^as-p%s-c[0-9]*,' results.csv", p) using 12:($14 * 100) with linespoints lw 2 pt 7 title sprintf("autoscaler, provision %s s; cap 3, 4, 6, 8 from left to right", p), \
     "< grep '^fixed' results.csv" using 12:($14 * 100):(stringcolumn(1)) with labels point pt 5 ps 1.5 offset 0,0.8 title "fixed"
