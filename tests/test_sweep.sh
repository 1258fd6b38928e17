#!/bin/sh
# test_sweep.sh: kvfleet sweep and kvfleet query end to end: the points of
# a tiny sweep and query's table, the spec refusals and their exit codes, a
# failing point recorded while the others finish, --jobs 2 giving the rows
# of --jobs 1, resume after kill -9 losing and duplicating nothing, seeds
# with confidence intervals, and the warm-up window.
set -u
. "${srcdir:-.}/tests/tap.sh"
case $KV in /*) ;; *) KV=$(pwd)/$KV ;; esac
S=$(cd "${srcdir:-.}/tests/data/sweep" && pwd)
tap_tmp sweep
tap_need sqlite3

. "${srcdir:-.}/tests/sweep_dump.sh"
dump() { sweep_dump "$1"; }
q() { sqlite3 "$1" "$2"; }

# ---- a small grid: 2 x 2 x 2 points ----
mkdir -p "$T/j1" "$T/j2" "$T/k" "$T/u"
(cd "$T/j1" && "$KV" sweep "$S/grid.json" --db s.db >out 2>err)
check "sweep exits 0" "[ $? -eq 0 ]"
check "8 points done" "[ \"\$(q $T/j1/s.db \"SELECT count(*), sum(status = 'done') FROM sweep_points\")\" = '8|8' ]"
check "sweep row done, 8 points" \
    "[ \"\$(q $T/j1/s.db \"SELECT name, status, n_points, seeds FROM sweeps\")\" = 'grid|done|8|1' ]"
check "one sweep-point run per point, all done" \
    "[ \"\$(q $T/j1/s.db \"SELECT count(*), count(DISTINCT run_id) FROM runs WHERE kind = 'sweep-point' AND status = 'done'\")\" = '8|8' ]"
check "every point's run_id is a run" \
    "[ \"\$(q $T/j1/s.db 'SELECT count(*) FROM sweep_points p JOIN summary s USING (run_id)')\" = 8 ]"
check "axes in spec order, last axis fastest" \
    "[ \"\$(q $T/j1/s.db 'SELECT axes FROM sweep_points WHERE point_id = 5')\" = '{\"max-num-seqs\":8,\"replicas\":1,\"policy\":\"none\"}' ]"
check "stored config is resolved and carries the axis values" \
    "q $T/j1/s.db 'SELECT config FROM sweep_points WHERE point_id = 5' | grep -q '\"max-num-seqs\":8,.*\"policy\":\"none\".*\"replicas\":1'"
check "runs.config equals sweep_points.config" \
    "[ \"\$(q $T/j1/s.db 'SELECT count(*) FROM sweep_points p JOIN runs r USING (run_id) WHERE r.config = p.config')\" = 8 ]"
check "rows copied whole: requests rows = summary requests" \
    "[ \"\$(q $T/j1/s.db 'SELECT count(*) FROM summary s WHERE requests = (SELECT count(*) FROM requests r WHERE r.run_id = s.run_id)')\" = 8 ]"
check "each run's requests are those of its config (60, ended once)" \
    "[ \"\$(q $T/j1/s.db 'SELECT count(*), count(DISTINCT run_id || \"-\" || id) FROM requests')\" = '480|480' ]"

# query: one row per point, the axis values and the default figures
"$KV" query "$T/j1/s.db" >"$T/q.txt" 2>"$T/q.err"
check "query exits 0" "[ $? -eq 0 ]"
check "query: header has point, axes and the default figures" \
    "head -1 $T/q.txt | grep -q '^point  *max-num-seqs  *replicas  *policy  *requests  *completed  *rejected  *ttft_p50_s  *ttft_p99_s  *tpot_p50_s  *tpot_p99_s  *output_tokens_per_s  *prefix_hit_rate_tokens  *recomputed_tokens  *gpu_hours  *usd  *usd_per_mtok\$'"
check "query: 8 rows" "[ \$(wc -l <$T/q.txt) -eq 9 ]"
"$KV" query "$T/j1/s.db" --csv --columns point,policy,requests,completed,output_tokens_per_s >"$T/q.csv"
check "query --csv: point 5's values match the summary table" \
    "[ \"\$(sed -n 7p $T/q.csv)\" = \"5,none,\$(q $T/j1/s.db \"SELECT requests, completed, printf('%.15g', output_tokens_per_s) FROM summary WHERE run_id = (SELECT run_id FROM sweep_points WHERE point_id = 5)\" | tr '|' ',')\" ]"
check "query: gpu_hours = the summary's gpu_hours" \
    "[ \"\$($KV query $T/j1/s.db --csv --columns gpu_hours | sed -n 4p)\" = \"\$(q $T/j1/s.db \"SELECT printf('%.15g', gpu_hours) FROM summary WHERE run_id = (SELECT run_id FROM sweep_points WHERE point_id = 2)\")\" ]"
# an older file, whose summary has no gpu_hours: replicas x tp x span / 3600
cp "$T/j1/s.db" "$T/old.db" && sqlite3 "$T/old.db" 'UPDATE summary SET gpu_hours = NULL, cost_usd = NULL'
check "query: gpu_hours NULL in the summary: replicas x tp x span / 3600" \
    "[ \"\$($KV query $T/old.db --csv --columns gpu_hours | sed -n 4p)\" = \"\$(q $T/old.db \"SELECT printf('%.15g', 2 * 1 * (last_finish_s - first_arrival_s) / 3600.0) FROM summary WHERE run_id = (SELECT run_id FROM sweep_points WHERE point_id = 2)\")\" ]"
check "query: usd empty without a gpu-price" \
    "[ \"\$($KV query $T/j1/s.db --csv --columns usd,usd_per_mtok | sed -n 2p)\" = ',' ]"
"$KV" query "$T/j1/s.db" --columns point,bogus >/dev/null 2>"$T/qc.err"
check "query: unknown column exits 2" "[ $? -eq 2 ]"
check "query: unknown column lists the known ones" \
    "grep -q \"expected names among: point,max-num-seqs,replicas,policy,.*; got 'bogus'\" $T/qc.err"

for cl in '' ',' 'point,,requests' 'point,'; do
    "$KV" query "$T/j1/s.db" --columns "$cl" >"$T/qe.out" 2>"$T/qe.err"
    check "query --columns '$cl': usage error 2 naming the empty name, no table" \
        "[ \$? -eq 2 ] && [ ! -s $T/qe.out ] && grep -q 'expected column names separated by commas, got an empty name' $T/qe.err"
done

# --jobs 2: the same rows, keyed by point
(cd "$T/j2" && "$KV" sweep "$S/grid.json" --db s.db --jobs 2 --quiet >out 2>err)
check "--jobs 2 exits 0" "[ $? -eq 0 ]"
dump "$T/j1/s.db" >"$T/d1"
dump "$T/j2/s.db" >"$T/d2"
check "--jobs 2 rows identical to --jobs 1" "[ -s $T/d1 ] && cmp -s $T/d1 $T/d2"

# re-running a finished sweep runs nothing and adds nothing
(cd "$T/j1" && "$KV" sweep "$S/grid.json" --db s.db --quiet >/dev/null 2>&1)
check "re-run of a done sweep exits 0" "[ $? -eq 0 ]"
check "re-run adds no sweep and no run" \
    "[ \"\$(q $T/j1/s.db 'SELECT (SELECT count(*) FROM sweeps), (SELECT count(*) FROM runs)')\" = '1|8' ]"

# the stored config is the run's resolved one: the results file absolute,
# dtype and kv-dtype as used; it re-runs as it is from any folder, into
# the same file, and that run stores the same text
absdb="$(cd "$T/j1" && pwd -P)/s.db"
check "sweep_points.config: db absolute, dtype and kv-dtype as used" \
    "[ \"\$(q $T/j1/s.db \"SELECT json_extract(config, '\\\$.db'), json_extract(config, '\\\$.dtype') <> '', json_extract(config, '\\\$.kv-dtype') <> '' FROM sweep_points WHERE point_id = 0\")\" = '$absdb|1|1' ]"
q "$T/j1/s.db" "SELECT config FROM sweep_points WHERE point_id = 2" >"$T/p2.json"
mkdir -p "$T/other"
(cd "$T/other" && "$KV" run --config ../p2.json >/dev/null 2>&1)
check "a point's config re-runs from another folder into the results file, storing the same text" \
    "[ \$? -eq 0 ] && [ -z \"\$(ls $T/other)\" ] && [ \"\$(q $T/j1/s.db \"SELECT count(*) FROM runs r, sweep_points p WHERE r.kind = 'run' AND p.point_id = 2 AND r.config = p.config\")\" = 1 ]"

# ---- refusals ----
"$KV" sweep "$S/bad_key.json" --db "$T/bad.db" >/dev/null 2>"$T/e1"
check "unknown option: exit 1" "[ $? -eq 1 ]"
check "unknown option: names the file and the key" \
    "grep -q \"bad_key.json: base.max-num-seq: unknown option\" $T/e1"
"$KV" sweep "$S/empty_axis.json" --db "$T/bad.db" >/dev/null 2>"$T/e2"
check "empty axis: exit 1" "[ $? -eq 1 ]"
check "empty axis: names the axis" \
    "grep -q \"empty_axis.json: axes.replicas: expected a non-empty list of values, got '\\[\\]'\" $T/e2"
# a spec refused before anything is written: exit 1 and the message
refuse_spec() { # description, spec file name, spec JSON, grep pattern of the message
    printf '%s' "$3" >"$T/$2"
    "$KV" sweep "$T/$2" --db "$T/bad.db" >/dev/null 2>"$T/$2.err"
    check "$1" "[ $? -eq 1 ] && grep -q -- \"$4\" $T/$2.err"
}
SYN='"synthetic": "poisson,rate=40,requests=10,isl=64,osl=4"'
refuse_spec "seed -1: refused up front, exit 1, naming the spec, the point and the option" neg.json \
    "{\"name\": \"neg\", \"base\": {$SYN, \"model\": \"tiny\"}, \"axes\": {\"seed\": [1, -1]}}" \
    "neg.json: point 1: --seed: expected an integer from 0 to 9223372036854775807, got '-1'"
refuse_spec "replicas 0: refused up front (a check the run makes before the model), exit 1" r0.json \
    "{\"name\": \"r0\", \"base\": {$SYN, \"model\": \"tiny\"}, \"axes\": {\"replicas\": [1, 0]}}" \
    "r0.json: point 1: --replicas: expected 1..1000000, got '0'"
refuse_spec "limit -1: refused up front (the run's source check), exit 1" pre.json \
    "{\"name\": \"pre\", \"base\": {$SYN, \"model\": \"tiny\"}, \"points\": [{\"max-num-seqs\": 4}, {\"limit\": -1}, {\"policy\": \"nope\"}]}" \
    "pre.json: point 1: --limit: expected an integer >= 0, got '-1'"
refuse_spec "a missing trace file: refused up front, exit 1, naming it" pre2.json \
    "{\"name\": \"pre2\", \"base\": {\"model\": \"tiny\"}, \"points\": [{$SYN}, {\"trace\": \"no-such.csv\"}, {$SYN, \"policy\": \"lru:foo=1\"}]}" \
    "pre2.json: point 1: .*no-such.csv"
refuse_spec "a policy parameter the policy does not take: refused up front, exit 1" pre3.json \
    "{\"name\": \"pre3\", \"base\": {\"model\": \"tiny\"}, \"points\": [{$SYN}, {$SYN, \"policy\": \"lru:foo=1\"}]}" \
    "pre3.json: point 1: --policy: lru: parameter: expected none"
# the scheduler's values and the calibration file need no model: refused up
# front too (they ran, and their points failed one by one)
refuse_spec "max-num-seqs 0: refused up front (a scheduler value), exit 1" seqs0.json \
    "{\"name\": \"seqs0\", \"base\": {$SYN, \"model\": \"tiny\"}, \"axes\": {\"max-num-seqs\": [4, 0]}}" \
    "seqs0.json: point 1: --max-num-seqs: expected an integer >= 1, got '0'"
refuse_spec "block-tokens 2000: refused up front, exit 1" bt.json \
    "{\"name\": \"bt\", \"base\": {$SYN, \"model\": \"tiny\"}, \"axes\": {\"block-tokens\": [16, 2000]}}" \
    "bt.json: point 1: --block-tokens: expected 1..1024, got '2000'"
refuse_spec "a missing calibration file: refused up front, exit 1, naming it" cal.json \
    "{\"name\": \"cal\", \"base\": {$SYN, \"model\": \"tiny\"}, \"axes\": {\"calibration\": [\"none\", \"no-such-calib.json\"]}}" \
    "cal.json: point 1: .*no-such-calib.json: calibration file: unable to open"
# an inline fleet: its structure is checked up front as run checks it
# (FI, a pool without its model; FL, with one) ...
FI='{"regions": {"r": {"gpus": {"h100-sxm": 8}}}, "pools": [{"name": "p", "region": "r", "gpu": "h100-sxm", "replicas": 1'
FL="$FI"', "model": "tiny"'
refuse_spec "a malformed inline fleet (a pool's unknown key): refused up front, exit 1" fl.json \
    "{\"name\": \"fl\", \"base\": {$SYN}, \"points\": [{\"fleet\": $FL}]}}, {\"fleet\": $FL, \"colour\": 1}]}}]}" \
    "fl.json: point 1: fleet: pools.0..colour: unknown key"
# ... while a pool that cannot be served (weights larger than HBM) is its
# point's failure at run time, as a lone run's infeasible model is
printf '%s' "{\"name\": \"fi\", \"base\": {$SYN}, \"points\": [{\"fleet\": $FI, \"model\": \"tiny\"}]}}, {\"fleet\": $FI, \"model\": \"llama-3-70b\"}]}}]}" >"$T/fi.json"
"$KV" sweep "$T/fi.json" --db "$T/fi.db" --quiet >/dev/null 2>&1
check "an infeasible inline fleet runs: its point fails (no room for the KV cache), the other is done" \
    "[ \"\$(sqlite3 $T/fi.db \"SELECT group_concat(status || ':' || (coalesce(error, '') LIKE '%no room for the KV cache%'), ' ') FROM (SELECT * FROM sweep_points ORDER BY point_id)\")\" = 'done:0 failed:1' ]"
# a pool's note (a --kv-blocks pool larger than the HBM holds) comes once,
# from the run: the precheck builds the fleet quietly
printf '%s' "{\"name\": \"hn\", \"base\": {$SYN}, \"points\": [{\"fleet\": $FL, \"options\": {\"kv-blocks\": 100000000}}]}}]}" >"$T/hn.json"
"$KV" sweep "$T/hn.json" --db "$T/hn.db" >/dev/null 2>"$T/hn.err"
check "a hypothetical pool's note: printed once, by the point's run, which is done" \
    "[ \$? -eq 0 ] && [ \$(grep -c 'hypothetical pool' $T/hn.err) -eq 1 ] &&
     grep -q '^point 0 rep 0: kvfleet: note: --kv-blocks 100000000 is more' $T/hn.err"
# with a warm-up, a window whose requests were all rejected has throughput
# 0, not NULL (NULL only for a span of 0), as the engine's summary
printf '%s' '{"name":"wr","base":{"synthetic":"poisson,rate=40,requests=10,isl=100000,osl=8","model":"tiny"},"axes":{"load-scale":[1]},"warmup-s":0.01}' >"$T/wr.json"
"$KV" sweep "$T/wr.json" --db "$T/wr.db" --quiet >/dev/null 2>&1
check "warm-up, every request rejected: throughputs 0" \
    "[ \"\$($KV query $T/wr.db --csv --columns completed,output_tokens_per_s,requests_per_s | sed -n 2p)\" = '0,0,0' ]"
refuse_spec "a whole-valued real for an integer option: refused as run refuses it, exit 1" real.json \
    "{\"name\": \"real\", \"base\": {$SYN, \"model\": \"tiny\"}, \"axes\": {\"max-num-seqs\": [4.0]}}" \
    "real.json: axes.max-num-seqs: --max-num-seqs: expected an integer, got '4.0'"
check "refused specs write no file" "[ ! -e $T/bad.db ]"
"$KV" sweep >/dev/null 2>&1
check "no SPEC: usage error 2" "[ $? -eq 2 ]"
"$KV" sweep "$S/grid.json" --jobs 0 >/dev/null 2>&1
check "--jobs 0: out of range, exit 1" "[ $? -eq 1 ]"
mkdir -p "$T/dry"
(cd "$T/dry" && "$KV" sweep "$S/grid.json" --dry-run >list 2>&1)
check "--dry-run exits 0, lists 8 points and writes no file" \
    "[ \$? -eq 0 ] && [ \$(grep -c '^point ' $T/dry/list) -eq 8 ] && [ ! -e $T/dry/kvfleet.db ]"

# ---- a failing point: tp 3 does not divide the tiny model's heads ----
"$KV" sweep "$S/fail.json" --db "$T/f.db" --quiet >/dev/null 2>"$T/fe"
check "a failed point: exit 1" "[ $? -eq 1 ]"
check "the failed point is recorded with its error" \
    "[ \"\$(q $T/f.db \"SELECT point_id, status, run_id IS NULL, coalesce(error, '') <> '' FROM sweep_points ORDER BY point_id\" | tr '\n' ' ')\" = '0|done|0|0 1|failed|1|1 2|done|0|0 ' ]"
check "the failure names the option" "q $T/f.db 'SELECT error FROM sweep_points WHERE point_id = 1' | grep -q 'tp\\|head'"
check "the failed point leaves no run" "[ \"\$(q $T/f.db 'SELECT count(*) FROM runs')\" = 2 ]"
check "no points pending: the sweep is done" "[ \"\$(q $T/f.db 'SELECT status FROM sweeps')\" = done ]"
"$KV" sweep "$S/fail.json" --db "$T/f.db" --quiet >/dev/null 2>&1
check "re-run without --retry-failed: still exit 1, nothing run" \
    "[ \$? -eq 1 ] && [ \"\$(q $T/f.db 'SELECT count(*) FROM runs')\" = 2 ]"
"$KV" sweep "$S/fail.json" --db "$T/f.db" --quiet --retry-failed >/dev/null 2>&1
check "--retry-failed runs it again (and it fails again)" \
    "[ \$? -eq 1 ] && [ \"\$(q $T/f.db \"SELECT status FROM sweep_points WHERE point_id = 1\")\" = failed ]"
"$KV" query "$T/f.db" --csv --columns point,tp,status,reps,completed >"$T/fq"
check "query shows the failed point with no figures" "sed -n 3p $T/fq | grep -qx '1,3,failed,0,'"

# wait_done DB N: waits (at most 8 s) until N points of the sweep in DB are done
wait_done() {
    i=0
    while [ $i -lt 400 ]; do
        d=$(sqlite3 "$1" "SELECT count(*) FROM sweep_points WHERE status = 'done'" 2>/dev/null || echo 0)
        [ "${d:-0}" -ge "$2" ] && return
        i=$((i + 1))
        sleep 0.02
    done
}

# ---- resume after kill -9 ----
(cd "$T/u" && "$KV" sweep "$S/long.json" --db s.db --quiet >/dev/null 2>&1)
check "uninterrupted long sweep exits 0" "[ $? -eq 0 ]"
killed_mid=0
# a coordinator killed with -9 cannot remove its private folder: keep it in $T
mkdir -p "$T/ktmp"
for attempt in 1 2 3; do
    rm -f "$T/k/s.db" "$T/k/s.db-journal"
    (cd "$T/k" && TMPDIR="$T/ktmp" exec "$KV" sweep "$S/long.json" --db s.db --jobs 2 --quiet \
        >/dev/null 2>&1) &
    pid=$!
    wait_done "$T/k/s.db" 3
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    left=$(sqlite3 "$T/k/s.db" "SELECT count(*) FROM sweep_points WHERE status <> 'done'")
    if [ "${left:-0}" -gt 0 ]; then
        killed_mid=1
        break
    fi
done
check "the sweep was killed with points left" "[ $killed_mid -eq 1 ]"
check "killed: no run without its point (merges are atomic)" \
    "[ \"\$(q $T/k/s.db \"SELECT (SELECT count(*) FROM runs), (SELECT count(*) FROM sweep_points WHERE status = 'done')\" | awk -F'|' '{print (\$1 == \$2)}')\" = 1 ]"
(cd "$T/k" && "$KV" sweep "$S/long.json" --db s.db --jobs 2 --quiet >/dev/null 2>&1)
check "resume exits 0" "[ $? -eq 0 ]"
check "resumed: one sweep, 16 tasks done, 16 runs" \
    "[ \"\$(q $T/k/s.db \"SELECT (SELECT count(*) FROM sweeps), (SELECT sum(status = 'done') FROM sweep_points), (SELECT count(*) FROM runs), (SELECT count(DISTINCT run_id) FROM sweep_points)\")\" = '1|16|16|16' ]"
dump "$T/u/s.db" >"$T/du"
dump "$T/k/s.db" >"$T/dk"
check "resumed rows identical to the uninterrupted sweep" "[ -s $T/du ] && cmp -s $T/du $T/dk"

# ---- SIGTERM / SIGINT: the coordinator stops its workers, removes its
# private folder, exits 3, and the same command resumes ----
mkdir -p "$T/sg" "$T/sgtmp"
stopped=0
for sig in TERM INT; do
    rm -f "$T/sg/s.db" "$T/sg/s.db-journal"
    (cd "$T/sg" && TMPDIR="$T/sgtmp" exec "$KV" sweep "$S/long.json" --db s.db --jobs 2 --quiet >/dev/null 2>"$T/sg/err") &
    pid=$!
    wait_done "$T/sg/s.db" 2
    kill -$sig $pid 2>/dev/null
    wait $pid
    rc=$?
    left=$(sqlite3 "$T/sg/s.db" "SELECT count(*) FROM sweep_points WHERE status = 'pending'")
    failed=$(sqlite3 "$T/sg/s.db" "SELECT count(*) FROM sweep_points WHERE status = 'failed'")
    if [ "${left:-0}" -gt 0 ]; then
        stopped=$((stopped + 1))
        check "SIG$sig: exit 3, no point failed, no private folder left, says how to resume" \
            "[ $rc -eq 3 ] && [ ${failed:-1} -eq 0 ] && [ -z \"\$(ls $T/sgtmp)\" ] && grep -q 'same command resumes' $T/sg/err"
        (cd "$T/sg" && TMPDIR="$T/sgtmp" "$KV" sweep "$S/long.json" --db s.db --jobs 2 --quiet >/dev/null 2>&1)
        check "SIG$sig: the same command completes the 16 tasks" \
            "[ $? -eq 0 ] && [ \"\$(q $T/sg/s.db \"SELECT sum(status = 'done'), (SELECT count(*) FROM runs) FROM sweep_points\")\" = '16|16' ]"
    fi
done
check "the sweep was stopped by a signal with points left (at least once)" "[ $stopped -ge 1 ]"

# ---- a stop signal ignored when the sweep starts (nohup's SIGHUP; SIGINT
# in a script's background job) stays ignored, in the workers too: the
# sweep finishes, exit 0, nothing failed. Sent to the coordinator and to
# every worker it has at that moment, as a terminal hang-up would. ----
if command -v pgrep >/dev/null 2>&1; then
    mkdir -p "$T/ig"
    for sig in HUP INT; do
        hit=0
        for attempt in 1 2 3; do
            rm -f "$T/ig/s.db" "$T/ig/s.db-journal"
            (cd "$T/ig" && trap '' $sig && exec "$KV" sweep "$S/long.json" --db s.db --jobs 2 --quiet >/dev/null 2>"$T/ig/err") &
            pid=$!
            wait_done "$T/ig/s.db" 2
            kids=$(pgrep -P $pid | tr '\n' ' ')
            kill -$sig $pid $kids 2>/dev/null
            wait $pid
            rc=$?
            if [ -n "$kids" ]; then
                hit=1
                break
            fi
        done
        failed=$(sqlite3 "$T/ig/s.db" "SELECT count(*) FROM sweep_points WHERE status <> 'done'")
        check "SIG$sig ignored at start: workers ignore it too (exit 0, 16 done, none failed)" \
            "[ $hit -eq 1 ] && [ $rc -eq 0 ] && [ \"${failed:-x}\" = 0 ] || { cat $T/ig/err; false; }"
    done
else
    ok "# SKIP pgrep is not installed: ignored stop signals not checked"
fi

# ---- seeds, confidence intervals, warm-up ----
"$KV" sweep "$S/seeds.json" --db "$T/s.db" --quiet >/dev/null 2>&1
check "seeds sweep exits 0" "[ $? -eq 0 ]"
check "seeds: replication r runs with seed 1 + r" \
    "[ \"\$(q $T/s.db 'SELECT group_concat(r.seed) FROM sweep_points p JOIN runs r USING (run_id) WHERE point_id = 0 ORDER BY rep')\" = '1,2,3' ]"
"$KV" query "$T/s.db" --csv --columns point,reps,requests,requests_ci95,usd,ttft_p50_s_ci95 >"$T/sq"
check "query with seeds: reps 3 and a ci95 column" "sed -n 2p $T/sq | grep -q '^0,3,'"
# the warm-up window: requests arriving at or after 0.5 s, mean of 3 seeds
want=$(q "$T/s.db" "SELECT printf('%.15g', count(*) / 3.0) FROM requests WHERE arrival_s >= 0.5 AND run_id IN (SELECT run_id FROM sweep_points WHERE point_id = 0)")
check "warm-up: requests = mean count of requests arriving after warmup-s" \
    "[ \"\$(sed -n 2p $T/sq | cut -d, -f3)\" = \"$want\" ]"
ci=$(q "$T/s.db" "WITH c AS (SELECT count(*) AS k FROM requests WHERE arrival_s >= 0.5 AND run_id IN (SELECT run_id FROM sweep_points WHERE point_id = 0) GROUP BY run_id) SELECT (SELECT avg(k) FROM c), (SELECT sum((k - (SELECT avg(k) FROM c)) * (k - (SELECT avg(k) FROM c))) / 2.0 FROM c)")
m=$(echo "$ci" | cut -d'|' -f1)
v=$(echo "$ci" | cut -d'|' -f2)
got=$(sed -n 2p "$T/sq" | cut -d, -f4)
# t(0.975, 2) = 4.302652729...; half-width = t * sd / sqrt(3)
check "ci95 = t(0.975, n-1) sd / sqrt(n)" \
    "awk -v v=$v -v g=${got:-x} 'BEGIN { w = 4.302652729749464 * sqrt(v) / sqrt(3); d = w - g; exit !(d < 1e-9 * (w + 1) && d > -1e-9 * (w + 1)) }'"
check "usd = gpu_hours x gpu-price" \
    "[ -n \"\$(sed -n 2p $T/sq | cut -d, -f5)\" ]"
want=$(q "$T/s.db" "SELECT printf('%.15g', avg(cost_usd)) FROM summary WHERE run_id IN (SELECT run_id FROM sweep_points WHERE point_id = 0)")
check "usd = the summary's cost_usd (mean of the replications)" \
    "[ \"\$(sed -n 2p $T/sq | cut -d, -f5)\" = \"$want\" ]"
"$KV" query "$T/s.db" --csv --columns point,usd,cost_usd,offered_rps >"$T/sq2"
check "warm-up keeps cost_usd: the same as usd, not empty" \
    "[ \"\$(sed -n 2p $T/sq2 | cut -d, -f3)\" = \"$want\" ] && [ -n \"$want\" ]"
want=$(q "$T/s.db" "WITH w AS (SELECT count(*) / (max(arrival_s) - min(arrival_s)) AS o FROM requests WHERE arrival_s >= 0.5 AND run_id IN (SELECT run_id FROM sweep_points WHERE point_id = 0) GROUP BY run_id) SELECT printf('%.15g', avg(o)) FROM w")
check "warm-up: offered_rps = the window's requests over its arrival span" \
    "[ \"\$(sed -n 2p $T/sq2 | cut -d, -f4)\" = \"$want\" ] && [ -n \"$want\" ]"

# ---- a spec with relative paths, run from elsewhere; a file without sweeps ----
(cd / && "$KV" sweep "$S/trace.json" --db "$T/t.db" --quiet >/dev/null 2>&1)
rc=$?
q "$T/t.db" 'SELECT config FROM sweep_points WHERE point_id = 0' >"$T/tcfg"
check "relative trace path: resolved against the spec's folder, stored canonical (no '..')" \
    "[ $rc -eq 0 ] && grep -q '\"trace\":\"/[^\"]*/tests/data/azure_small.csv\"' $T/tcfg && ! grep -q '/\.\./' $T/tcfg"
"$KV" run --model tiny --synthetic poisson,rate=40,requests=20,isl=64,osl=16 --db "$T/r.db" >/dev/null 2>&1
"$KV" query "$T/r.db" --csv --columns run_id,kind,requests >"$T/rq"
check "query on a file without sweeps: one row per run" \
    "[ \"\$(cat $T/rq | tr '\n' ' ')\" = 'run_id,kind,requests 1,run,20 ' ]"

# --columns takes the stored config's options too (a point's: its first replication's)
"$KV" query "$T/r.db" --csv --columns run_id,model,tp,synthetic,requests >"$T/rqc"
check "query --columns: config options of a plain run" \
    "[ \"\$(cat $T/rqc | tr '\n' ' ')\" = 'run_id,model,tp,synthetic,requests 1,tiny,1,\"poisson,rate=40,requests=20,isl=64,osl=16\",20 ' ]"
"$KV" query "$T/t.db" --csv --columns point,max-num-seqs,model,max-batched-tokens >"$T/tqc"
check "query --columns: config options of sweep points" \
    "[ \"\$(cat $T/tqc | tr '\n' ' ')\" = 'point,max-num-seqs,model,max-batched-tokens 0,4,tiny,8192 1,8,tiny,8192 ' ]"
"$KV" query "$T/r.db" --columns run_id,nonsense >/dev/null 2>"$T/rqe"
check "query --columns: an unknown name exits 2 listing the config options too" \
    "[ \$? -eq 2 ] && grep -q \"or the runs' config options: .*max-num-seqs.*; got 'nonsense'\" $T/rqe"
# the source options a config holds only when given: '-' where a run lacks
# one, even when every run lacks it (r.db has only synthetic runs: trace
# was refused as unknown, exit 2; t.db only trace runs)
"$KV" query "$T/r.db" --csv --columns run_id,trace,synthetic,fleet >"$T/rqs" 2>"$T/rqs.err"
check "query --columns trace on a file of synthetic runs: empty cells, exit 0" \
    "[ \$? -eq 0 ] && [ \"\$(cat $T/rqs | tr '\n' ' ')\" = 'run_id,trace,synthetic,fleet 1,,\"poisson,rate=40,requests=20,isl=64,osl=16\", ' ]"
"$KV" query "$T/t.db" --columns point,synthetic >"$T/tqs" 2>&1
check "query --columns synthetic on a sweep of trace runs: '-', exit 0" \
    "[ \$? -eq 0 ] && [ \"\$(awk 'NR > 1 { print \$2 }' $T/tqs | tr '\n' ' ')\" = '- - ' ]"
# --columns with --all-columns: each well-formed, a conflict (exit 1, cli.md)
"$KV" query "$T/r.db" --columns run_id --all-columns >/dev/null 2>"$T/rqa"
check "query --columns with --all-columns: exit 1" \
    "[ \$? -eq 1 ] && grep -q 'expected one, got both' $T/rqa"

# the results file fails mid-sweep (a trigger stands in for a full disk): the
# sweep stops, exit 3, the points not done stay pending, and the same command
# resumes once the file works again
"$KV" run --db "$T/full.db" --model tiny --synthetic 'poisson,rate=20,requests=5,isl=32,osl=4' >/dev/null 2>&1
sqlite3 "$T/full.db" "CREATE TRIGGER full BEFORE INSERT ON runs WHEN (SELECT COUNT(*) FROM runs) >= 3 BEGIN SELECT RAISE(ABORT, 'database or disk is full (test)'); END;"
printf '{"name": "full", "base": {"model": "tiny", "synthetic": "poisson,rate=20,requests=5,isl=32,osl=4"}, "axes": {"seed": [1, 2, 3, 4, 5, 6]}}' >"$T/full.json"
"$KV" sweep "$T/full.json" --db "$T/full.db" --jobs 2 --quiet >/dev/null 2>"$T/full.err"
check "results file failing mid-sweep: exit 3, SQLite's reason, the sweep stopped" \
    "[ $? -eq 3 ] && grep -q 'database or disk is full (test); the sweep stopped' $T/full.err"
check "results file failing mid-sweep: two points done, none failed, the rest pending" \
    "[ \"\$(sqlite3 $T/full.db \"SELECT group_concat(status || '=' || n) FROM (SELECT status, COUNT(*) AS n FROM sweep_points GROUP BY status ORDER BY status)\")\" = 'done=2,pending=4' ]"
sqlite3 "$T/full.db" "DROP TRIGGER full"
"$KV" sweep "$T/full.json" --db "$T/full.db" --jobs 2 --quiet >/dev/null 2>&1
check "results file failing mid-sweep: the same command resumes, every point done" \
    "[ $? -eq 0 ] && [ \"\$(sqlite3 $T/full.db \"SELECT COUNT(*) FROM sweep_points WHERE status = 'done'\")\" = 6 ]"

"$KV" sweep "$T" --db "$T/dir.db" >/dev/null 2>"$T/dir.err"
check "a spec path that is a folder: exit 1, says so" \
    "[ $? -eq 1 ] && grep -q 'expected a file, got a folder' $T/dir.err"

tap_end
