# The perf model's absolute percentage error per step of a `kvfleet
# validate` run (docs/backends.md) against the batch: sequences in the step
# (left) and new tokens in the step (right), coloured by step kind.
#
#   kvfleet validate --backend cpu --model tiny ... --plot DIR    # runs this
#   gnuplot -e "csv='DIR/steps.csv'; out='DIR/err_vs_batch.png'; label='...'" \
#       experiments/validate/err_vs_batch.gp
#
# Columns of the CSV (see pred_vs_meas.gp for the sqlite3 query that gives
# them): 1 replica, 2 step, 3 kind, 4 batch_size, 5 n_prefill, 6 n_decode,
# 7 prefill_tokens, 8 decode_tokens, 9 tokens, 10 pred_s, 11 meas_s, 12 ape.

if (!exists("csv")) csv = 'steps.csv'
if (!exists("out")) out = 'err_vs_batch.png'
if (!exists("label")) label = ''

set datafile separator ','
set terminal pngcairo size 1300,560 font 'sans,11' linewidth 1.2
set output out
set grid xtics ytics lc rgb '#dddddd'
set key top right box opaque
set ylabel '|pred - meas| / meas (%)'
set yrange [0:*]

is(k) = (strcol(3) eq k)
set multiplot layout 1,2 title 'Step-time error vs batch'.(label ne '' ? "\n".label : '')
set xlabel 'sequences in the step'
set xrange [0:*]
plot csv every ::1 using 4:(is('prefill') ? 100 * $12 : 1/0) title 'prefill' \
         with points pt 7 ps 0.8 lc rgb '#1f77b4', \
     csv every ::1 using 4:(is('decode') ? 100 * $12 : 1/0) title 'decode' \
         with points pt 7 ps 0.6 lc rgb '#2ca02c', \
     csv every ::1 using 4:(is('mixed') ? 100 * $12 : 1/0) title 'mixed' \
         with points pt 7 ps 0.8 lc rgb '#d62728'
set xlabel 'new tokens in the step'
set logscale x
set xrange [*:*]
plot csv every ::1 using 9:(is('prefill') ? 100 * $12 : 1/0) title 'prefill' \
         with points pt 7 ps 0.8 lc rgb '#1f77b4', \
     csv every ::1 using 9:(is('decode') ? 100 * $12 : 1/0) title 'decode' \
         with points pt 7 ps 0.6 lc rgb '#2ca02c', \
     csv every ::1 using 9:(is('mixed') ? 100 * $12 : 1/0) title 'mixed' \
         with points pt 7 ps 0.8 lc rgb '#d62728'
unset multiplot
