#!/bin/sh
# test_plot.sh: kvfleet plot end to end. Small results files are made with
# kvfleet run and validate (and, with the sqlite3 command, the sweep and
# capacity tables other commands write); every kind is drawn as PNG and
# SVG. The PNG must start with the PNG signature; the SVG must hold the
# expected number of plot elements (gnuplot's svg terminal writes a group
# <g id="gnuplot_plot_N..."> for each; distinct ids are counted, since an
# opaque key draws some twice). Also checked: the numbers behind the
# figures (replication means, warm-up quantiles, the balance point from the
# GPU preset, the roofline's thinning), determinism, and the exit codes of
# the error paths. Skips (77) without gnuplot or the sqlite3 command.
set -u
. "${srcdir:-.}/tests/tap.sh"
tap_tmp plot
tap_need sqlite3
if [ -n "${KVFLEET_GNUPLOT:-}" ]; then
    GP=$KVFLEET_GNUPLOT
else
    GP=gnuplot
fi
if ! command -v "$GP" >/dev/null 2>&1; then
    echo "SKIP: gnuplot is not installed (Debian: apt-get install gnuplot-nox)"
    exit 77
fi
q() { sqlite3 "$1" "$2"; }
# png FILE: the file starts with the 8-byte PNG signature
png() { [ "$(od -An -tx1 -N8 "$1" | tr -d ' \n')" = 89504e470d0a1a0a ]; }
# series FILE: distinct plot elements in an SVG
series() { grep -o '<g id="gnuplot_plot_[0-9]*[a-z]*"' "$1" | sort -u | wc -l | tr -d ' '; }
# draw DB KIND NAME [options]: PNG and SVG of one kind, the script beside
draw() {
    db=$1 kind=$2 name=$3
    shift 3
    "$KV" plot "$db" --kind "$kind" -o "$T/$name.png" --script "$T/$name.gp" "$@" \
        >/dev/null 2>"$T/$name.err" &&
        "$KV" plot "$db" --kind "$kind" -o "$T/$name.svg" "$@" >/dev/null 2>>"$T/$name.err"
}

# ---- latency-load: 2 configurations x 3 rates x 2 seeds, runs only ----
L="$T/l.db"
for r in 20 40 80; do
    for s in 1 2; do
        for m in 8 32; do
            "$KV" run --synthetic "poisson,rate=$r,requests=200,isl=200,osl=50" --model tiny \
                --max-num-seqs $m --seed $s --db "$L" >/dev/null 2>&1 || bad "run rate $r seed $s"
        done
    done
done
check "12 runs made" "[ \"\$(q $L 'SELECT COUNT(*) FROM runs WHERE status = \"done\"')\" = 12 ]"
draw "$L" latency-load ll
check "latency-load exits 0" "[ $? -eq 0 ]"
check "latency-load PNG signature" "png $T/ll.png"
check "latency-load: 2 panels x 2 configurations x p50, p99 = 8 series" "[ \"\$(series $T/ll.svg)\" = 8 ]"
check "latency-load: every point is the mean of 2 seeds" \
    "[ \"\$(grep -c ' # n=2\$' $T/ll.gp)\" = 6 ] && ! grep -q ' # n=1\$' $T/ll.gp"
check "latency-load: configurations named by what differs" \
    "grep -q 'title \"max-num-seqs=8 TTFT p50\"' $T/ll.gp && grep -q 'title \"max-num-seqs=32 TPOT p99\"' $T/ll.gp"
check "latency-load: the title names the common configuration (the dtype as the run resolved it)" \
    "grep -q 'tiny on h100-sxm, fp32, TP 1, 1 replica, policy lru' $T/ll.gp"
# the TTFT p50 of the lowest load of max-num-seqs=8 is the mean of its two runs' summaries
want=$(q "$L" "SELECT printf('%.9g', AVG(s.ttft_p50_s)) FROM summary s JOIN runs r USING (run_id)
               WHERE json_extract(r.config, '\$.max-num-seqs') = 8
                 AND json_extract(r.config, '\$.synthetic') LIKE '%rate=20,%'")
blk=$(grep -n "max-num-seqs=8 TTFT p50" "$T/ll.gp" | sed 's/.*plot \$\(s[0-9]*\) .*/\1/; s/.*  \$\(s[0-9]*\) .*/\1/')
got=$(awk -v b="\$$blk << EOD" '$0 == b { on = 1; next } on { print $2; exit }' "$T/ll.gp")
check "latency-load: TTFT p50 point = mean of the runs ($got vs $want)" "[ -n \"$want\" ] && [ \"$got\" = \"$want\" ]"
"$KV" plot "$L" --kind latency-load -o "$T/ll2.png" --script "$T/ll2.gp" >/dev/null 2>&1
check "the same file gives the same script" "sed 1,3d $T/ll.gp >$T/a; sed 1,3d $T/ll2.gp >$T/b; cmp -s $T/a $T/b"

# ---- latency-load from a sweep: only max-num-seqs=8, one rep, 0.5 s warm-up ----
q "$L" "CREATE TABLE sweeps(sweep_id INTEGER PRIMARY KEY, name TEXT, spec TEXT, spec_path TEXT,
          created_at TEXT, status TEXT, n_points INTEGER, seeds INTEGER, warmup_s REAL);
        CREATE TABLE sweep_points(sweep_id INTEGER, point_id INTEGER, rep INTEGER, axes TEXT,
          config TEXT, run_id INTEGER, status TEXT, error TEXT, PRIMARY KEY (sweep_id, point_id, rep));
        INSERT INTO sweeps VALUES (1, 'fixture', '{}', NULL, '2025-01-01T00:00:00Z', 'done', 3, 1, 0.5);
        INSERT INTO sweep_points SELECT 1, ROW_NUMBER() OVER (ORDER BY run_id), 0,
          json_object('rate', CAST(substr(json_extract(config, '\$.synthetic'), 14, 2) AS INTEGER),
                      'max-num-seqs', 8), config, run_id, 'done', NULL
          FROM runs WHERE json_extract(config, '\$.max-num-seqs') = 8 AND json_extract(config, '\$.seed') = 1;"
check "sweep fixture: 3 points" "[ \"\$(q $L 'SELECT COUNT(*) FROM sweep_points')\" = 3 ]"
draw "$L" latency-load sw
check "latency-load from the sweep exits 0" "[ $? -eq 0 ]"
check "latency-load from the sweep: 2 panels x 1 configuration x 2 = 4 series" "[ \"\$(series $T/sw.svg)\" = 4 ]"
check "latency-load from the sweep: the title names it and the warm-up" \
    "grep -q 'sweep 1 (fixture), after 0.5 s warm-up' $T/sw.gp"
# TTFT p50 after the warm-up of the first point, recomputed as GSL does (interpolated median)
run1=$(q "$L" "SELECT run_id FROM sweep_points WHERE point_id = 1")
want=$(q "$L" "SELECT ttft_s FROM requests WHERE run_id = $run1 AND arrival_s >= 0.5 AND rejected = 0
               AND ttft_s IS NOT NULL ORDER BY ttft_s" |
    awk '{ v[NR] = $1 } END { h = 0.5 * (NR - 1); i = int(h); d = h - i;
          x = v[i + 1]; if (d > 0) x += d * (v[i + 2] - v[i + 1]); printf "%.9g", x }')
rps=$(q "$L" "SELECT printf('%.9g', (COUNT(*) - 1) / (MAX(arrival_s) - MIN(arrival_s))) FROM requests WHERE run_id = $run1")
got=$(awk '$0 == "$s0 << EOD" { on = 1; next } on { print $1, $2; exit }' "$T/sw.gp")
check "sweep: x is the measured offered load, TTFT p50 recomputed after the warm-up ($got vs $rps $want)" \
    "[ \"$got\" = \"$rps $want\" ]"
"$KV" plot "$L" --kind latency-load --sweep 7 -o "$T/x.png" >/dev/null 2>"$T/err"
check "--sweep of a missing sweep exits 1" "[ $? -eq 1 ] && grep -q 'sweep_id' $T/err"

# ---- timeline and roofline ----
draw "$L" timeline tl --run 3
check "timeline exits 0" "[ $? -eq 0 ]"
check "timeline PNG signature" "png $T/tl.png"
check "timeline: batch, waiting and KV utilisation = 3 series" "[ \"\$(series $T/tl.svg)\" = 3 ]"
check "timeline: one data row per interval of run 3" \
    "[ \"\$(awk '\$0 == \"\$t << EOD\" { on = 1; next } /^EOD/ { on = 0 } on' $T/tl.gp | wc -l | tr -d ' ')\" = \"\$(q $L 'SELECT COUNT(*) FROM timeline WHERE run_id = 3')\" ]"
check "timeline: two y axes" "grep -q 'axes x1y2' $T/tl.gp && grep -q y2label $T/tl.gp"
draw "$L" roofline rf
check "roofline exits 0" "[ $? -eq 0 ]"
check "roofline PNG signature" "png $T/rf.png"
check "roofline: roof, prefill steps, decode steps = 3 series" "[ \"\$(series $T/rf.svg)\" = 3 ]"
bal=$(awk -F'[:,]' '/"flops_bf16": *[0-9]/ { f = $2 } /"hbm_bw": *[0-9]/ { b = $2 } END { printf "%.0f", f / b }' \
    "$srcdir/data/gpus/h100-sxm.json")
check "roofline: balance point $bal FLOP/byte, from the preset" "grep -q \"balance point $bal FLOP/byte\" $T/rf.gp"
check "roofline: latest run (12), every step drawn" \
    "grep -q '\"run 12' $T/rf.gp && [ \"\$(grep -c '^[0-9]' $T/rf.gp)\" = \"\$(q $L 'SELECT COUNT(*) FROM steps WHERE run_id = 12')\" ]"
B="$T/big.db"
"$KV" run --synthetic "poisson,rate=200,requests=6000,isl=100,osl=20" --model tiny --max-num-seqs 4 \
    --db "$B" >/dev/null 2>&1
"$KV" plot "$B" --kind roofline -o "$T/big.png" --script "$T/big.gp" >/dev/null 2>&1
nst=$(q "$B" 'SELECT COUNT(*) FROM steps')
check "roofline: $nst steps thinned to at most 20000 points, one in 2" \
    "[ $nst -gt 20000 ] && [ \"\$(grep -c '^[0-9]' $T/big.gp)\" = $(((nst + 1) / 2)) ] && grep -q 'one step in 2 of $nst' $T/big.gp"
# titles with quotes and a backslash reach gnuplot as written (a leading ' broke it)
draw "$L" timeline tq --run 3 --title "'x \"y\" \\z"
check "a title with ', \" and \\ draws (exit 0)" "[ $? -eq 0 ] && png $T/tq.png"
# a backquote in a title, or in a model name stored in the results file, is
# text: gnuplot runs `...` even inside double quotes, so it is written as \140
draw "$L" timeline bq --run 3 --title "a \`touch $T/pwned1\` b"
check "a title with backquotes draws and runs nothing" \
    "[ $? -eq 0 ] && png $T/bq.png && [ ! -e $T/pwned1 ] && grep -q 'a \\\\140touch' $T/bq.gp"
cp "$L" "$T/bq.db"
sqlite3 "$T/bq.db" "UPDATE runs SET config = json_set(config, '\$.model', 'm\`touch $T/pwned2\`') WHERE run_id = 3"
draw "$T/bq.db" timeline bq2 --run 3
check "a model name with backquotes from the results file runs nothing" \
    "[ $? -eq 0 ] && png $T/bq2.png && [ ! -e $T/pwned2 ]"

# a sweep whose warm-up leaves no request: exit 1 saying so (gnuplot failed, exit 3)
printf '%s' '{"name": "w", "base": {"model": "tiny", "synthetic": "poisson,rate=5,requests=20,isl=128,osl=16"}, "axes": {"tp": [1]}, "warmup-s": 1e9}' >"$T/w.json"
"$KV" sweep "$T/w.json" --db "$T/w.db" --quiet >/dev/null 2>&1
"$KV" plot "$T/w.db" --kind latency-load -o "$T/w.png" >/dev/null 2>"$T/w.err"
check "latency-load with nothing after the warm-up: exit 1, says so" \
    "[ $? -eq 1 ] && grep -q 'got none in 1 run' $T/w.err && [ ! -e $T/w.png ]"

# ---- hit-rate: 2 policies x 3 KV sizes ----
H="$T/h.db"
for p in lru fifo; do
    for b in 64 128 256; do
        "$KV" run --synthetic "sessions,rate=4,turns=4,think=1,isl=100,osl=20,sessions=40,system=200" \
            --model tiny --kv-blocks $b --policy $p --db "$H" >/dev/null 2>&1 || bad "run $p $b"
    done
done
"$KV" run --synthetic "sessions,rate=4,turns=4,think=1,isl=100,osl=20,sessions=40" --model tiny \
    --policy none --db "$H" >/dev/null 2>&1
draw "$H" hit-rate hr
check "hit-rate exits 0" "[ $? -eq 0 ]"
check "hit-rate PNG signature" "png $T/hr.png"
check "hit-rate: 2 policies x (tokens, requests) = 4 series; policy none left out" "[ \"\$(series $T/hr.svg)\" = 4 ]"
# a file from before the hit-rate columns: exit 1 saying so (a database error, 3, before)
cp "$H" "$T/hold.db"
if sqlite3 "$T/hold.db" 'ALTER TABLE summary DROP COLUMN prefix_hit_rate_tokens' 2>/dev/null; then
    "$KV" plot "$T/hold.db" --kind hit-rate -o "$T/hold.png" >/dev/null 2>"$T/hold.err"
    check "hit-rate on a file without the hit-rate columns: exit 1, says so" \
        "[ $? -eq 1 ] && grep -q 'got a file written before them' $T/hold.err"
fi
check "hit-rate: x is the KV pool in blocks (64, 128, 256)" \
    "[ \"\$(awk '\$0 == \"\$s0 << EOD\" { on = 1; next } /^EOD/ { on = 0 } on { printf \"%s \", \$1 }' $T/hr.gp)\" = '64 128 256 ' ]"
want=$(q "$H" "SELECT printf('%.9g', 100 * prefix_hit_rate_tokens) FROM summary JOIN runs USING (run_id)
               WHERE json_extract(config, '\$.policy') = 'fifo' AND json_extract(config, '\$.kv-blocks') = 256")
check "hit-rate: fifo at 256 blocks = its summary's hit rate ($want %)" \
    "awk '\$0 == \"\$s0 << EOD\" { on = 1; next } /^EOD/ { on = 0 } on && \$1 == 256 { print \$2 }' $T/hr.gp | grep -qx '$want'"

# ---- capacity: fixture table, 2 SLO sets x 3 loads ----
q "$H" "CREATE TABLE capacity(search_id INTEGER, slo TEXT, load_scale REAL, offered_rps REAL,
          tp INTEGER, replicas INTEGER, gpus INTEGER, run_id INTEGER);
        INSERT INTO capacity VALUES (1, 'ttft_p99<=1', 1, 5, 1, 1, 1, 1), (1, 'ttft_p99<=1', 2, 10, 1, 2, 2, 1),
          (1, 'ttft_p99<=1', 4, 20, 1, 3, 3, 1), (1, 'ttft_p99<=0.2', 1, 5, 1, 2, 2, 1),
          (1, 'ttft_p99<=0.2', 2, 10, 2, 2, 4, 1), (1, 'ttft_p99<=0.2', 4, 20, 2, 4, 8, 1);"
draw "$H" capacity cap
check "capacity exits 0" "[ $? -eq 0 ]"
check "capacity PNG signature" "png $T/cap.png"
check "capacity: one line per SLO set = 2 series" "[ \"\$(series $T/cap.svg)\" = 2 ]"
check "capacity: legend names the SLO sets" "grep -q 'title \"ttft_p99<=0.2\"' $T/cap.gp"
# a search the capacity command did not finish is not drawn as a whole one
for st in running failed; do
    q "$H" "DROP TABLE IF EXISTS capacity_searches; CREATE TABLE capacity_searches(search_id INTEGER PRIMARY KEY,
              created_at TEXT, command TEXT, slo TEXT, config TEXT, status TEXT, error TEXT);
            INSERT INTO capacity_searches VALUES (1, '', '', '', '', '$st', NULL);"
    "$KV" plot "$H" --kind capacity -o "$T/capx.png" >/dev/null 2>"$T/err"
    check "capacity of a search with status $st: exit 1, says so, draws nothing" \
        "[ $? -eq 1 ] && grep -q \"expected a finished search, got search 1 with status '$st'\" $T/err && [ ! -e $T/capx.png ]"
done
q "$H" "UPDATE capacity_searches SET status = 'done'"
draw "$H" capacity capd
check "capacity of a search with status done: exit 0" "[ $? -eq 0 ]"

# ---- validation: a kvfleet validate pair ----
V="$T/v.db"
"$KV" validate --backend cpu --model tiny --synthetic 'closed,concurrency=4,isl=64,osl=16,requests=24' \
    --db "$V" >/dev/null 2>&1
check "validate made its two runs" "[ \"\$(q $V 'SELECT group_concat(kind) FROM runs')\" = 'validate,run' ]"
draw "$V" validation va
check "validation exits 0" "[ $? -eq 0 ]"
check "validation PNG signature" "png $T/va.png"
nk=$(q "$V" "SELECT COUNT(DISTINCT CASE WHEN n_decode = 0 THEN 'p' WHEN n_prefill = 0 THEN 'd' ELSE 'm' END)
             FROM steps WHERE run_id = 1 AND meas_s > 0")
check "validation: (y = x, +-10 %) x 2 panels, $nk step kinds, TTFT and TPOT = $((nk + 8)) series" \
    "[ \"\$(series $T/va.svg)\" = $((nk + 8)) ]"
check "validation: pairs the simulated run and labels the cpu backend" \
    "grep -q 'run 1 (measured, cpu) against run 2 (simulated)' $T/va.gp && grep -q 'plumbing check' $T/va.gp"

# ---- errors ----
"$KV" plot "$L" --kind bogus -o "$T/x.png" >/dev/null 2>"$T/err"
check "unknown kind exits 1 (an unknown name)" "[ $? -eq 1 ] && grep -q 'expected one of latency-load' $T/err"
"$KV" plot "$L" --kind timeline -o "$T/nonexistent/x.png" >/dev/null 2>"$T/err"
check "-o into a missing folder exits 1 before gnuplot runs, naming the folder" \
    "[ $? -eq 1 ] && grep -q \"cannot write into the folder $T/nonexistent\" $T/err"
# an -o that is a folder: refused before gnuplot runs (it was gnuplot's
# "cannot open file", exit 3)
mkdir -p "$T/folder.png"
"$KV" plot "$L" --kind timeline -o "$T/folder.png" >/dev/null 2>"$T/err"
check "-o naming a folder exits 1 before gnuplot runs" \
    "[ $? -eq 1 ] && grep -q \"$T/folder.png: cannot write: Is a directory\" $T/err && ! grep -q gnuplot $T/err"
"$KV" plot "$L" --kind timeline >/dev/null 2>"$T/err"
check "missing -o exits 2" "[ $? -eq 2 ] && grep -q -- '-o:' $T/err"
"$KV" plot "$L" --kind timeline -o "$T/x.pdf" >/dev/null 2>"$T/err"
check "-o without .png/.svg exits 2" "[ $? -eq 2 ]"
"$KV" plot "$L" --kind timeline -o "$T/x.png" --bogus 1 >/dev/null 2>"$T/err"
check "unknown option exits 2" "[ $? -eq 2 ]"
"$KV" plot "$L" --kind capacity -o "$T/x.png" >/dev/null 2>"$T/err"
check "capacity without its table exits 1 naming it" "[ $? -eq 1 ] && grep -q 'table capacity' $T/err"
"$KV" plot "$L" --kind validation -o "$T/x.png" >/dev/null 2>"$T/err"
check "validation without a validate run exits 1 naming the command" \
    "[ $? -eq 1 ] && grep -q \"kind 'validate'\" $T/err && grep -q 'kvfleet validate' $T/err"
"$KV" run --synthetic "poisson,rate=20,requests=20,isl=50,osl=5" --model tiny --policy none \
    --timeline-s 0 --steps-sample 0 --db "$T/e.db" >/dev/null 2>&1
"$KV" plot "$T/e.db" --kind hit-rate -o "$T/x.png" >/dev/null 2>"$T/err"
check "hit-rate without prefix-cache runs exits 1" "[ $? -eq 1 ] && grep -q 'kvfleet run' $T/err"
"$KV" plot "$T/e.db" --kind timeline -o "$T/x.png" >/dev/null 2>"$T/err"
check "timeline without timeline rows exits 1" "[ $? -eq 1 ] && grep -q 'timeline rows' $T/err"
"$KV" plot "$T/e.db" --kind roofline -o "$T/x.png" >/dev/null 2>"$T/err"
check "roofline without steps rows exits 1" "[ $? -eq 1 ] && grep -q 'steps rows' $T/err"
"$KV" plot "$L" --kind timeline --run 999 -o "$T/x.png" >/dev/null 2>"$T/err"
check "--run of a missing run exits 1" "[ $? -eq 1 ] && grep -q \"got '999'\" $T/err"
"$KV" plot "$T/none.db" --kind timeline -o "$T/x.png" >/dev/null 2>"$T/err"
check "a missing results file exits 1" "[ $? -eq 1 ] && [ ! -e $T/none.db ]"
printf 'not a database' >"$T/junk.db"
"$KV" plot "$T/junk.db" --kind timeline -o "$T/x.png" >/dev/null 2>"$T/err"
check "a file that is not a results file exits 1" "[ $? -eq 1 ] && grep -q 'results file' $T/err"
KVFLEET_GNUPLOT="$T/no-such-gnuplot" "$KV" plot "$L" --kind timeline -o "$T/x.png" >/dev/null 2>"$T/err"
check "gnuplot missing exits 3 naming gnuplot-nox" "[ $? -eq 3 ] && grep -q gnuplot-nox $T/err"
printf '#!/bin/sh\necho "bad script" >&2\nexit 1\n' >"$T/fail-gnuplot"
chmod +x "$T/fail-gnuplot"
mkdir "$T/tmp"
TMPDIR="$T/tmp" KVFLEET_GNUPLOT="$T/fail-gnuplot" "$KV" plot "$L" --kind timeline -o "$T/x.png" \
    >/dev/null 2>"$T/err"
check "gnuplot failing exits 3 with its message" "[ $? -eq 3 ] && grep -q 'bad script' $T/err"
TMPDIR="$T/tmp" "$KV" plot "$L" --kind timeline -o "$T/x.png" >/dev/null 2>&1
check "temporary scripts are removed (after a failure and a success)" \
    "[ -s $T/x.png ] && [ -z \"\$(ls -A $T/tmp)\" ]"
# -o=FILE and --output=FILE read as -o FILE, as every --name=value is (-o=FILE
# was an unknown option, exit 2)
"$KV" plot "$L" --kind timeline -o "$T/eq0.svg" --script "$T/eq0.gp" >/dev/null 2>&1
for o in "-o=$T/eq1.svg" "--output=$T/eq2.svg"; do
    f=${o#*=}
    "$KV" plot "$L" --kind timeline "$o" --script "${f%.svg}.gp" >/dev/null 2>"$T/err"
    check "plot ${o%%=*}=FILE: exit 0, the same figure as -o FILE" \
        "[ $? -eq 0 ] && [ \"\$(cat $T/err)\" = \"kvfleet plot: wrote $f\" ] && [ \"\$(series $f)\" = \"\$(series $T/eq0.svg)\" ] && sed 1,3d $T/eq0.gp >$T/a && sed 1,3d ${f%.svg}.gp >$T/b && cmp -s $T/a $T/b"
done
"$KV" plot "$L" --kind timeline -o="$T/eq.txt" >/dev/null 2>"$T/err"
check "plot -o=FILE.txt: exit 2, the message of -o FILE.txt" \
    "[ $? -eq 2 ] && [ \"\$(cat $T/err)\" = \"kvfleet plot: -o: expected a file name ending .png or .svg, got '$T/eq.txt'\" ]"

# ---- legends and titles stay off the data and inside the figure ----
check "latency-load and hit-rate put the key below the plot, not over the points" \
    "grep -q '^set key outside below' $T/ll.gp && grep -q '^set key outside below' $T/hr.gp"
cp "$L" "$T/long.db"
sqlite3 "$T/long.db" "DROP TABLE sweep_points; DROP TABLE sweeps;
    UPDATE runs SET config = json_set(config, '\$.note',
    'a-long-description-of-the-workload-that-ran-past-the-panel-edge-' || json_extract(config, '\$.max-num-seqs'))"
"$KV" plot "$T/long.db" --kind latency-load -o "$T/long.png" --script "$T/long.gp" >/dev/null 2>&1
check "latency-load: legend names longer than 48 bytes are cut, ending '...'" \
    "[ $? -eq 0 ] && grep -q '\.\.\. TTFT p50\"' $T/long.gp &&
     grep -o 'title \"[^\"]*\"' $T/long.gp | awk '{ if (length(\$0) > 7 + 1 + 48 + 9 + 1) bad = 1 } END { exit bad }'"
check "validation: a title line longer than 100 characters is broken at its '; '" \
    "grep -q '\"run 1 (measured, cpu) against run 2 (simulated)\"\.\"\\\\n\"\.\"tiny on h100-sxm' $T/va.gp"

# ---- names and text that reach the script (control characters) ----
# a results file whose name holds newlines: the comment line heading the
# script must not end there (the rest ran as gnuplot commands, system ...)
# (gnuplot runs in kvfleet's folder: the file would land in $T)
case $KV in /*) kva=$KV ;; *) kva=$(pwd)/$KV ;; esac
inj=$(printf 'inj\nsystem "touch pwned3"\n.db')
cp "$L" "$T/$inj"
(cd "$T" && "$kva" plot "$inj" --kind timeline --run 3 -o inj.png --script inj.gp >/dev/null 2>err)
check "a results file named with newlines draws (exit 0) and runs nothing" \
    "[ $? -eq 0 ] && png $T/inj.png && [ ! -e $T/pwned3 ] && [ \"\$(grep -c '^# kvfleet plot' $T/inj.gp)\" = 1 ]"
nl=$(printf 'a\nsystem "touch %s/pwned4"\nb\001c' "$T")
draw "$L" timeline nl --run 3 --title "$nl"
check "a --title with a newline and a control character draws and runs nothing" \
    "[ $? -eq 0 ] && png $T/nl.png && [ ! -e $T/pwned4 ] && grep -q '^set title \"a system' $T/nl.gp"
cp "$L" "$T/nl.db"
sqlite3 "$T/nl.db" "UPDATE runs SET config = json_set(config, '\$.model',
    'm' || char(10) || 'system \"touch $T/pwned5\"' || char(13) || 'x') WHERE run_id = 3;
    UPDATE runs SET config = json_set(config, '\$.max-num-seqs', 'q' || char(10) || 'system \"touch $T/pwned5\"')
    WHERE run_id = 4"
draw "$T/nl.db" timeline nl2 --run 3 && draw "$T/nl.db" latency-load nl3
check "a model name and a legend value with newlines from the results file run nothing" \
    "[ $? -eq 0 ] && png $T/nl2.png && png $T/nl3.png && [ ! -e $T/pwned5 ]"
"$KV" plot "$L" --kind timeline -o "$(printf '%s/nl\nx.png' "$T")" >/dev/null 2>"$T/err"
check "-o with a newline exits 1, naming the option, and writes nothing" \
    "[ $? -eq 1 ] && grep -q -- '-o: expected a file name without control characters' $T/err && [ -z \"\$(ls $T | grep '^nl.x.png')\" ]"
"$KV" plot "$L" --kind timeline -o "$T/s.png" --script "$(printf '%s/s\t.gp' "$T")" >/dev/null 2>"$T/err"
check "--script with a tab exits 1" "[ $? -eq 1 ] && grep -q -- '--script: expected a file name without' $T/err"

# ---- -o and --script never overwrite the results file ----
cp "$L" "$T/pc.db"
cp "$T/pc.db" "$T/pc.ref"
"$KV" plot "$T/pc.db" --kind timeline -o "$T/pc.png" --script "$T/pc.db" >/dev/null 2>"$T/err"
check "--script naming the results file exits 1 and leaves it alone" \
    "[ $? -eq 1 ] && grep -q 'other than the results file' $T/err && cmp -s $T/pc.db $T/pc.ref"
ln "$T/pc.db" "$T/pc-link.db"
"$KV" plot "$T/pc.db" --kind timeline -o "$T/pc.png" --script "$T/./pc-link.db" >/dev/null 2>"$T/err"
check "--script naming a hard link to the results file exits 1 (same inode)" \
    "[ $? -eq 1 ] && cmp -s $T/pc.db $T/pc.ref"
cp "$L" "$T/r.png"
cp "$T/r.png" "$T/r.ref"
"$KV" plot "$T/r.png" --kind timeline -o "$T/./r.png" >/dev/null 2>"$T/err"
check "-o naming the results file exits 1 and leaves it alone" \
    "[ $? -eq 1 ] && grep -q -- '-o: expected a file other than the results file' $T/err && cmp -s $T/r.png $T/r.ref"
"$KV" plot "$L" --kind timeline -o "$T/same.png" --script "$T/same.png" >/dev/null 2>"$T/err"
check "--script naming -o's file exits 1" "[ $? -eq 1 ] && grep -q \"other than -o's\" $T/err"
"$KV" plot --help >"$T/help"
check "plot --help says an unknown kind is exit 1" "grep -q '1 bad input (an unknown kind' $T/help"

# --quiet: the figure, without the 'wrote' line
"$KV" plot "$L" --kind timeline -o "$T/quiet.png" --quiet 2>"$T/quiet.err"
check "--quiet draws without the 'wrote' line" "[ $? -eq 0 ] && [ -s $T/quiet.png ] && [ ! -s $T/quiet.err ]"

tap_end
