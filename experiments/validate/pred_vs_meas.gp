# Predicted against measured step time, one point per executed step of a
# `kvfleet validate` run (docs/backends.md), coloured by step kind; the
# diagonal is a perfect prediction, the dashed lines +-20 %.
#
#   kvfleet validate --backend cpu --model tiny ... --plot DIR    # runs this
#   gnuplot -e "csv='DIR/steps.csv'; out='DIR/pred_vs_meas.png'; label='...'" \
#       experiments/validate/pred_vs_meas.gp
#
# The CSV is what `kvfleet validate --csv-dir DIR` writes; the same columns
# come from a results file with
#   sqlite3 -csv -header results.db "SELECT replica, step,
#     CASE WHEN n_decode = 0 THEN 'prefill' WHEN n_prefill = 0 THEN 'decode'
#          ELSE 'mixed' END, batch_size, n_prefill, n_decode, prefill_tokens,
#     decode_tokens, prefill_tokens + decode_tokens, pred_s, meas_s,
#     abs(pred_s - meas_s) / meas_s FROM steps WHERE run_id = 5 AND meas_s > 0"
# Columns: 1 replica, 2 step, 3 kind, 4 batch_size, 5 n_prefill, 6 n_decode,
# 7 prefill_tokens, 8 decode_tokens, 9 tokens, 10 pred_s, 11 meas_s, 12 ape.

if (!exists("csv")) csv = 'steps.csv'
if (!exists("out")) out = 'pred_vs_meas.png'
if (!exists("label")) label = ''

set datafile separator ','
set terminal pngcairo size 900,820 font 'sans,11' linewidth 1.2
set output out
set logscale xy
set grid xtics ytics mxtics mytics lc rgb '#dddddd'
set key top left box opaque
set size ratio -1
set xlabel 'measured step time (ms)'
set ylabel 'predicted step time (ms)'
set title 'Predicted vs measured step time'.(label ne '' ? "\n".label : '')

stats csv every ::1 using ($11 * 1e3):($10 * 1e3) nooutput
lo = (STATS_min_x < STATS_min_y ? STATS_min_x : STATS_min_y) / 1.5
hi = (STATS_max_x > STATS_max_y ? STATS_max_x : STATS_max_y) * 1.5
set xrange [lo:hi]
set yrange [lo:hi]

is(k) = (strcol(3) eq k)
plot x notitle lc rgb '#444444' dt 1, \
     1.2 * x title '+-20 %' lc rgb '#888888' dt 2, \
     x / 1.2 notitle lc rgb '#888888' dt 2, \
     csv every ::1 using ($11 * 1e3):(is('prefill') ? $10 * 1e3 : 1/0) title 'prefill' \
         with points pt 7 ps 0.8 lc rgb '#1f77b4', \
     csv every ::1 using ($11 * 1e3):(is('decode') ? $10 * 1e3 : 1/0) title 'decode' \
         with points pt 7 ps 0.6 lc rgb '#2ca02c', \
     csv every ::1 using ($11 * 1e3):(is('mixed') ? $10 * 1e3 : 1/0) title 'mixed' \
         with points pt 7 ps 0.8 lc rgb '#d62728'
