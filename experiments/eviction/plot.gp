# Figures of the eviction study (docs/studies/eviction.md). Run from the
# repository root after experiments/eviction/run.sh:
#
#   gnuplot experiments/eviction/plot.gp
#
# Reads experiments/eviction/results_{mooncake,sessions,mooncake_replay,mooncake_host}.csv
# and writes, in docs/figures/:
#   eviction_hit_mooncake.png         hit rate (tokens) vs KV blocks per policy, Belady
#                                     (cache-replay) dashed; lower panel: points vs LRU
#   eviction_ttft_mooncake.png        TTFT p99 and p50 vs KV blocks per policy
#   eviction_hit_sessions.png         the same two figures for the sessions workload
#   eviction_ttft_sessions.png
#   eviction_recomputed_sessions.png  recomputed tokens vs KV blocks (sessions)
#   eviction_host_mooncake.png        hit rate and TTFT p99 vs host-tier GiB (0, 64, 256)
#                                     for lru, arc, gdsf at two HBM pool sizes, --miss
#                                     swap (lines) and cheaper (open points)
# Override with gnuplot -e "dir='...'; outdir='...'" experiments/eviction/plot.gp
# Uses awk (through gnuplot's '< command' input) for the differences to LRU.
#
# results_*.csv columns used: 2 policy, 4 kv_blocks, 10 prefix_hit_rate_tokens,
# 12 recomputed_tokens, 15 ttft_p50_s, 16 ttft_p99_s;
# results_mooncake_replay.csv: 2 policy, 4 kv_blocks_equiv, 7 hit_rate_tokens.
# results_mooncake_host.csv: 2 policy, 3 kv_blocks, 5 host_gib, 6 miss,
# 9 prefix_hit_rate_tokens (host hits included), 21 ttft_p99_s.

if (!exists("dir")) dir = 'experiments/eviction'
if (!exists("outdir")) outdir = 'docs/figures'

set datafile separator ','
set datafile missing 'null'
set grid xtics ytics mytics lc rgb '#dddddd'
set logscale x 2
set lmargin 11

# x tics at the sizes run (the sizes of run.sh), labelled in blocks and GiB:
# 1 block = 16 tokens x 32 layers x 8 KV heads x 128 x 2 (K, V) x 2 bytes = 2 MiB
mcsizes = "8192 28320 65536 163840 327680 655360 1409024"
sssizes = "8192 16384 28320 65536 131072 262144 655360"
blab(n) = (n >= 1e6 ? sprintf("%.2fM", n / 1e6) : sprintf("%.0fk", n / 1e3))
glab(n) = (n * 2.0 / 1024 >= 1024 ? sprintf("%.1f TiB", n * 2.0 / 1024 / 1024) : sprintf("%.0f GiB", n * 2.0 / 1024))

# one style per policy: colour, dash type, point type
policies = "lru lfu fifo ttl gdsf s3fifo arc session"
col(i) = word("#1f77b4 #ff7f0e #2ca02c #8c564b #d62728 #9467bd #17becf #e377c2", i)
dt(i) = i
pt(i) = word("7 5 9 2 11 13 1 3", i) + 0
sel(p) = (strcol(2) eq p)

mc = dir.'/results_mooncake.csv'
ss = dir.'/results_sessions.csv'
rp = dir.'/results_mooncake_replay.csv'
# columns: trace, policy, seed, kv_blocks, hit-rate difference to LRU's at the same size (points)
delta(f) = sprintf("< awk -F, 'NR==FNR { if ($2 == \"lru\") l[$4] = $10; next } FNR > 1 && ($4 in l) { print $1 \",\" $2 \",\" 0 \",\" $4 \",\" ($10 - l[$4]) * 100 }' %s %s", f, f)

mctitle = "Llama-3.1-8B, 1 x H100 SXM, Mooncake FAST'25 synthetic trace (3993 requests) at 0.25x its rate"
sstitle = "Llama-3.1-8B, 1 x H100 SXM, made-up sessions (1 conversation/s, mean 6 turns, think 90 s): a sensitivity study"
xlab = 'HBM KV pool: --kv-blocks (16-token blocks of 2 MiB, log scale)'

do for [tr in "mooncake sessions"] {
	f = (tr eq "mooncake") ? mc : ss
	sz = (tr eq "mooncake") ? mcsizes : sssizes
	ttl = (tr eq "mooncake") ? mctitle : sstitle
	ticslab = ""
	ticsnolab = ""
	do for [w in sz] {
		ticslab = ticslab.sprintf('"%s\n%s" %s,', blab(w + 0), glab(w + 0), w)
		ticsnolab = ticsnolab.sprintf('"" %s,', w)
	}
	ticslab = "set xtics (".ticslab[1:strlen(ticslab) - 1].") font 'sans,10'"
	ticsnolab = "set xtics (".ticsnolab[1:strlen(ticsnolab) - 1].")"
	set xrange [word(sz, 1) / 1.25 : word(sz, 7) * 1.25]

	# ---- hit rate: absolute and difference to LRU ----
	set terminal pngcairo size 1100,950 font 'sans,12' linewidth 1.3
	set output outdir.'/eviction_hit_'.tr.'.png'
	set multiplot layout 2,1 title "{/:Bold Prefix-cache hit rate vs HBM KV pool size, per eviction policy}\n".ttl font 'sans,12'
	unset logscale y
	set tmargin 4
	set bmargin 0.5
	eval ticsnolab
	unset xlabel
	set ylabel 'hit rate (prompt tokens served from cache)'
	set yrange [0:1]
	set key top left box opaque reverse Left samplen 3 width -4 font 'sans,10' spacing 1.0 maxrows 4
	if (tr eq "mooncake") {
		plot for [i=1:8] f using (sel(word(policies, i)) ? $4 : NaN):10 with linespoints \
			lc rgb col(i) dt dt(i) pt pt(i) ps 1.1 title word(policies, i), \
			rp using (sel("belady") ? $4 : NaN):7 with lines lc rgb 'black' dt (12,6) lw 2 \
			title 'belady, offline bound (cache-replay)', \
			rp using (sel("lru") ? $4 : NaN):7 with lines lc rgb '#888888' dt (2,4) lw 2 \
			title 'lru, no timing (cache-replay)'
	} else {
		plot for [i=1:8] f using (sel(word(policies, i)) ? $4 : NaN):10 with linespoints \
			lc rgb col(i) dt dt(i) pt pt(i) ps 1.1 title word(policies, i)
	}
	set tmargin 0.5
	set bmargin 6
	eval ticslab
	set xlabel xlab offset 0,-1.2
	set ylabel 'difference to lru (percentage points)'
	set autoscale y
	unset label 2
	# Mooncake: ttl's 300 s expiry costs 8 to 29 points from 327,680 blocks up
	# (the pool then outlives it); 23 and 29 points at the two largest sizes
	# are kept off the scale so that the other policies' differences show
	if (tr eq "mooncake") {
		set yrange [-9:3]
		set label 2 'ttl (idle 300 s) at 655k and 1.41M blocks: -23.1 and -29.1 points, off scale' \
			at graph 0.02, graph 0.06 front font 'sans,10'
		set key top left box opaque reverse Left samplen 3 font 'sans,10' width 0 maxrows 2
	} else {
		set key bottom left box opaque reverse Left samplen 3 font 'sans,10' width 0 maxrows 2
	}
	plot for [i=1:8] delta(f) using (sel(word(policies, i)) ? $4 : NaN):5 with linespoints \
		lc rgb col(i) dt dt(i) pt pt(i) ps 1.1 title word(policies, i), \
		0 with lines lc rgb 'black' lw 0.8 notitle
	unset label 2
	unset multiplot
	unset output

	# ---- TTFT p99 and p50 ----
	set output outdir.'/eviction_ttft_'.tr.'.png'
	set ytics autofreq
	set multiplot layout 2,1 title "{/:Bold TTFT vs HBM KV pool size, per eviction policy (none: no prefix cache)}\n".ttl font 'sans,12'
	set logscale y 10
	set yrange [*:*]
	do for [q in "p99 p50"] {
		c = (q eq "p99") ? 16 : 15
		if (q eq "p99") {
			set tmargin 4
			set bmargin 0.5
			eval ticsnolab
			unset xlabel
		} else {
			set tmargin 0.5
			set bmargin 6
			eval ticslab
			set xlabel xlab offset 0,-1.2
		}
		set ylabel 'TTFT '.q.' (s, log scale)'
		# Mooncake: none at 8k blocks (p99 2519 s, p50 1277 s) is left off the
		# scale so that the policies' differences show
		unset label 1
		if (tr eq "mooncake") {
			if (q eq "p99") {
				set yrange [3:12]
				set ytics add ("3" 3, "4" 4, "5" 5, "6" 6, "8" 8)
				set label 1 'none at 8k blocks: off scale (see the table)' at graph 0.02, graph 0.06 font 'sans,10'
				set key top right box opaque reverse Left samplen 3 font 'sans,10' width 0 maxrows 3
			} else {
				set yrange [0.015:1.5]
				set ytics add ("0.02" 0.02, "0.05" 0.05, "0.2" 0.2, "0.5" 0.5)
				set label 1 'none at 8k blocks: off scale (see the table)' at graph 0.02, graph 0.32 font 'sans,10'
				set key bottom left box opaque reverse Left samplen 3 font 'sans,10' width 0 maxrows 3
			}
		} else {
			set yrange [*:*]
			set key top right box opaque reverse Left samplen 3 font 'sans,10' width 0 maxrows 3
		}
		plot for [i=1:8] f using (sel(word(policies, i)) ? $4 : NaN):c with linespoints \
			lc rgb col(i) dt dt(i) pt pt(i) ps 1.1 title word(policies, i), \
			f using (sel("none") ? $4 : NaN):c with linespoints lc rgb 'black' lw 2 pt 6 ps 1.3 \
			title 'none'
	}
	unset multiplot
	unset output
	unset logscale y
	unset label 1
	set ytics autofreq
}

# ---- recomputed tokens (sessions) ----
set terminal pngcairo size 1100,700 font 'sans,12' linewidth 1.3
set output outdir.'/eviction_recomputed_sessions.png'
set tmargin
set bmargin
set logscale y 10
set yrange [*:*]
set xlabel xlab offset 0,-1.2
set ylabel 'recomputed tokens (millions, log scale)'
set title "{/:Bold Tokens of earlier turns computed again because not cached, per eviction policy}\n".sstitle font 'sans,12'
set key bottom left box opaque reverse Left samplen 3 font 'sans,10' width 0 maxrows 3
plot for [i=1:8] ss using (sel(word(policies, i)) ? $4 : NaN):($12 / 1e6) with linespoints \
	lc rgb col(i) dt dt(i) pt pt(i) ps 1.1 title word(policies, i), \
	ss using (sel("none") ? $4 : NaN):($12 / 1e6) with linespoints lc rgb 'black' lw 2 pt 6 ps 1.3 \
	title 'none (no prefix cache)'
unset output

# ---- the host tier (Mooncake): hit rate and TTFT p99 vs host GiB ----
# One line per policy and HBM pool size (solid: 28,320 blocks, 55 GiB; dashed:
# 8,192, 16 GiB), --miss swap; --miss cheaper as open points on top. Grey
# stars: lru with no host tier and the same total as HBM (65,536 and 163,840
# blocks, 128 and 320 GiB), at x = that pool minus 55.3 GiB.
ho = dir.'/results_mooncake_host.csv'
hsel(p, n, m) = sprintf("< awk -F, '$2 == \"%s\" && $3 == %d && $6 == \"%s\"' %s", p, n, m, ho)
hbm(p) = sprintf("< awk -F, '$2 == \"%s\" && ($4 == 65536 || $4 == 163840)' %s", p, mc)
hpol = "lru arc gdsf"
hcol(i) = word("#1f77b4 #17becf #d62728", i)
hpt(i) = word("7 5 11", i) + 0
hpto(i) = word("6 4 10", i) + 0
set terminal pngcairo size 1100,950 font 'sans,12' linewidth 1.3
set output outdir.'/eviction_host_mooncake.png'
unset logscale
unset title
unset label
set xrange [-10:275]
set multiplot layout 2,1 title "{/:Bold Prefix cache with a host DRAM tier behind PCIe (HBM pool + --host-cache-gib per replica)}\n".mctitle font 'sans,12'
set tmargin 4
set bmargin 0.5
set xtics ("" 0, "" 64, "" 128, "" 192, "" 256)
unset xlabel
set ylabel 'hit rate (HBM + host, prompt tokens)'
set yrange [0:0.32]
set ytics autofreq
set rmargin 4
unset key
plot for [i=1:3] hsel(word(hpol, i), 28320, "swap") using 5:9 with linespoints \
		lc rgb hcol(i) dt 1 pt hpt(i) ps 1.2 notitle, \
	for [i=1:3] hsel(word(hpol, i), 8192, "swap") using 5:9 with linespoints \
		lc rgb hcol(i) dt (6,4) pt hpt(i) ps 1.2 notitle, \
	for [i=1:3] hsel(word(hpol, i), 28320, "cheaper") using 5:9 with points \
		lc rgb 'black' pt hpto(i) ps 1.8 notitle, \
	for [i=1:3] hsel(word(hpol, i), 8192, "cheaper") using 5:9 with points \
		lc rgb 'black' pt hpto(i) ps 1.8 notitle, \
	hbm("lru") using ($5 - 55.3):10 with points lc rgb '#555555' pt 3 ps 2.2 lw 1.5 \
		notitle
set tmargin 0.5
set bmargin 6
set xtics ("0\n(no host tier)" 0, "64" 64, "128" 128, "192" 192, "256\n(the limit: 2 TiB / 8)" 256) font 'sans,10'
set xlabel '--host-cache-gib (GiB of host DRAM per replica; 2 MiB per block)' offset 0,-1.2
set ylabel 'TTFT p99 (s)'
set yrange [4:10]
set key top right box opaque reverse Left samplen 3 font 'sans,10' width 0 maxrows 4
set label 3 "open black points: --miss cheaper (lines: --miss swap); grey stars: lru with no host tier and all of it in HBM,\n65,536 and 163,840 blocks (128, 320 GiB), drawn at x = HBM GiB - 55" at graph 0.02, graph 0.14 front font 'sans,10'
plot for [i=1:3] hsel(word(hpol, i), 28320, "swap") using 5:21 with linespoints \
		lc rgb hcol(i) dt 1 pt hpt(i) ps 1.2 title word(hpol, i).', HBM 55 GiB (28,320 blk)', \
	for [i=1:3] hsel(word(hpol, i), 8192, "swap") using 5:21 with linespoints \
		lc rgb hcol(i) dt (6,4) pt hpt(i) ps 1.2 title word(hpol, i).', HBM 16 GiB (8,192 blk)', \
	for [i=1:3] hsel(word(hpol, i), 28320, "cheaper") using 5:21 with points \
		lc rgb 'black' pt hpto(i) ps 1.8 notitle, \
	for [i=1:3] hsel(word(hpol, i), 8192, "cheaper") using 5:21 with points \
		lc rgb 'black' pt hpto(i) ps 1.8 notitle, \
	hbm("lru") using ($5 - 55.3):16 with points lc rgb '#555555' pt 3 ps 2.2 lw 1.5 \
		title 'lru, HBM only: 128, 320 GiB'
unset multiplot
unset output
