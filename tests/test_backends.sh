#!/bin/sh
# test_backends.sh: the executor switch end to end through the command, no
# GPU needed: a run on the cpu executor stores measured steps; the replay
# executor fed with them reproduces its decisions exactly (the same request
# times, the same batches: the scheduler is the same on every executor);
# a replay that diverges fails naming the step; kvfleet validate prints its
# JSON contract; bad backends exit with the documented codes.
set -u
. "$srcdir/tests/tap.sh"
tap_tmp be
tap_need sqlite3
DB="$T/b.db"
SYN='closed,concurrency=4,isl=64,osl=16,requests=24'
q() { sqlite3 "$DB" "$1"; }
# the rows that must match between a run and its replay
reqs='SELECT id, replica, arrival_s, first_token_s, finish_s, output_tokens FROM requests WHERE run_id=%d ORDER BY id'
steps='SELECT replica, step, start_s, dur_s, batch_size, n_prefill, n_decode, prefill_tokens, decode_tokens, kv_blocks_used, meas_s FROM steps WHERE run_id=%d ORDER BY replica, step'
same() { # what run_a run_b
    [ "$(q "$(printf "$1" "$2")")" = "$(q "$(printf "$1" "$3")")" ] && [ -n "$(q "$(printf "$1" "$2")")" ]
}

# (1) a run on the cpu executor
"$KV" run --backend cpu --model tiny --synthetic "$SYN" --db "$DB" --json >"$T/cpu.json" 2>"$T/cpu.err"
check "cpu run exits 0" "[ $? -eq 0 ]"
check "cpu run: status done, backend cpu" "[ \"\$(q 'SELECT status, backend FROM runs WHERE run_id=1')\" = 'done|cpu' ]"
check "cpu run: every request completed" "[ \"\$(q 'SELECT completed FROM summary WHERE run_id=1')\" = 24 ]"
check "cpu run: every step measured (meas_s not null)" \
    "[ \"\$(q 'SELECT count(*) > 0, sum(meas_s IS NULL), sum(dur_s = meas_s) = count(*) FROM steps WHERE run_id=1')\" = '1|0|1' ]"
check "cpu run: JSON says measured" "grep -q '\"measured\": true' $T/cpu.json"

# (2) replaying it reproduces every decision
"$KV" run --backend replay --replay "$DB:1" --model tiny --synthetic "$SYN" --db "$DB" >/dev/null 2>"$T/rep.err"
check "replay exits 0" "[ $? -eq 0 ]"
check "replay: status done, backend replay" "[ \"\$(q 'SELECT status, backend FROM runs WHERE run_id=2')\" = 'done|replay' ]"
check "replay: identical request rows (first token, finish)" "same \"$reqs\" 1 2"
check "replay: identical steps (batches, times, meas_s)" "same \"$steps\" 1 2"
"$KV" rerun "$DB" 1 --backend replay --replay "$DB:1" >/dev/null 2>&1
check "rerun of the cpu run through replay exits 0" "[ $? -eq 0 ]"
check "rerun replay: identical request rows" "same \"$reqs\" 1 3"
check "rerun replay: identical steps" "same \"$steps\" 1 3"

# (2b) two replicas and a pool small enough to preempt: still identical
PRE='--replicas 2 --max-num-seqs 4 --max-batched-tokens 64 --kv-blocks 9'
"$KV" run --backend cpu --model tiny --synthetic 'poisson,rate=50,isl=48,osl=12,requests=30' \
    $PRE --db "$T/p.db" >/dev/null 2>&1
"$KV" rerun "$T/p.db" 1 --backend replay --replay "$T/p.db:1" >/dev/null 2>&1
check "preempting two-replica run replays (exit 0)" "[ $? -eq 0 ]"
check "... it did preempt" "[ \"\$(sqlite3 $T/p.db 'SELECT preemptions > 0 FROM summary WHERE run_id=1')\" = 1 ]"
check "... identical request rows" \
    "[ \"\$(sqlite3 $T/p.db \"\$(printf \"$reqs\" 1)\")\" = \"\$(sqlite3 $T/p.db \"\$(printf \"$reqs\" 2)\")\" ]"
check "... identical steps" \
    "[ \"\$(sqlite3 $T/p.db \"\$(printf \"$steps\" 1)\")\" = \"\$(sqlite3 $T/p.db \"\$(printf \"$steps\" 2)\")\" ]"

# (3) the simulator's run (fast-forward on) replays to the same rows too
"$KV" run --backend sim --model tiny --synthetic "$SYN" --db "$DB" >/dev/null 2>&1
"$KV" run --backend replay --replay "$DB:4" --model tiny --synthetic "$SYN" --db "$DB" >/dev/null 2>&1
check "replay of a simulated run exits 0" "[ $? -eq 0 ]"
check "replay of a simulated run: identical request rows" "same \"$reqs\" 4 5"
check "replay of a simulated run: identical steps" "same \"$steps\" 4 5"
sim_sum='SELECT requests, completed, ttft_p50_s, tpot_p50_s, e2e_p99_s, output_tokens_per_s, steps FROM summary WHERE run_id=%d'
check "replay of a simulated run: identical summary" "same \"$sim_sum\" 4 5"

# (4) a replay that is handed a different batch stops at that step
"$KV" run --backend replay --replay "$DB:1" --model tiny --synthetic "$SYN" --db "$DB" \
    --max-num-seqs 2 --max-batched-tokens 2048 >/dev/null 2>"$T/div.err"
check "diverging replay exits 1" "[ $? -eq 1 ]"
check "diverging replay names the step" "grep -q 'replay diverged at replica 0 step 0: recorded batch 4 (4 prefill' $T/div.err"
check "diverging replay is not marked finished" "[ \"\$(q 'SELECT status FROM runs WHERE run_id=6')\" = failed ]"
"$KV" run --backend cpu --model tiny --synthetic "$SYN" --db "$DB" --steps-sample 2 >/dev/null 2>&1
"$KV" run --backend replay --replay "$DB:7" --model tiny --synthetic "$SYN" --no-db >/dev/null 2>"$T/smp.err"
check "replay of a sampled run exits 1" "[ $? -eq 1 ]"
check "replay of a sampled run asks for --steps-sample 1" "grep -q 'steps-sample 1' $T/smp.err"
"$KV" run --backend replay --model tiny --no-db >/dev/null 2>"$T/norep.err"
check "--backend replay without --replay exits 1" "[ $? -eq 1 ] && grep -q 'DB:RUN_ID' $T/norep.err"

# (5) kvfleet validate on the cpu executor
"$KV" validate --backend cpu --model tiny --synthetic "$SYN" --db "$DB" --json \
    --csv-dir "$T/csv" >"$T/val.json" 2>"$T/val.err"
check "validate exits 0" "[ $? -eq 0 ]"
check "validate JSON has the contract keys" \
    "for k in steps step_p50_ape step_p95_ape by_kind prefill decode mixed p50_ape p95_ape ttft_p50_err tpot_p50_err throughput_err validate_run_id sim_run_id label; do grep -q \"\\\"\$k\\\":\" $T/val.json || exit 1; done"
check "validate labels cpu results a plumbing check" \
    "grep -q 'plumbing check (cpu backend: not a fidelity figure)' $T/val.json"
check "validate stores a 'validate' run and a 'run' on the simulator" \
    "[ \"\$(q \"SELECT group_concat(kind || ':' || backend || ':' || status) FROM (SELECT * FROM runs WHERE run_id IN (8, 9) ORDER BY run_id)\")\" = 'validate:cpu:done,run:sim:done' ]"
check "validate: steps hold pred_s and meas_s side by side" \
    "[ \"\$(q 'SELECT count(*) > 0, sum(pred_s IS NULL OR meas_s IS NULL) FROM steps WHERE run_id=8')\" = '1|0' ]"
check "validate: steps in JSON = steps rows" \
    "grep -q \"\\\"steps\\\": \$(q 'SELECT count(*) FROM steps WHERE run_id=8')\" $T/val.json"
check "validate --csv-dir writes pred_s and meas_s" "head -1 $T/csv/steps.csv | grep -q 'pred_s,meas_s'"
"$KV" validate --model tiny --no-db >/dev/null 2>"$T/vsim.err"
check "validate without a measured backend exits 1" "[ $? -eq 1 ]"
# impossible comparisons are refused before either run, and nothing is stored
nruns=$(q 'SELECT count(*) FROM runs')
"$KV" validate --backend cpu --model tiny --synthetic "$SYN" --db "$DB" --steps-sample 0 \
    >/dev/null 2>"$T/vss.err"
check "validate --steps-sample 0 exits 1" "[ $? -eq 1 ] && grep -q -- '--steps-sample: expected 1 with validate' $T/vss.err"
"$KV" validate --backend cpu --model tiny --synthetic "$SYN" --db "$DB" --steps-sample 3 \
    >/dev/null 2>"$T/vss3.err"
check "validate --steps-sample 3 exits 1" "[ $? -eq 1 ] && grep -q \"got '3'\" $T/vss3.err"
"$KV" validate --backend replay --replay "$DB:4" --model tiny --synthetic "$SYN" --db "$DB" \
    >/dev/null 2>"$T/vrs.err"
check "validate replaying a sim run (no meas_s) exits 1" \
    "[ $? -eq 1 ] && grep -q \"expected a recorded measured run .* got run 4 of backend 'sim' with none\" $T/vrs.err"
: >"$T/afile"
"$KV" validate --backend cpu --model tiny --synthetic "$SYN" --db "$DB" --csv-dir "$T/afile/sub" \
    >/dev/null 2>"$T/vcsv.err"
check "validate --csv-dir under a file exits 1" "[ $? -eq 1 ] && grep -q -- '--csv-dir: expected a folder that can be created' $T/vcsv.err"
"$KV" validate --backend cpu --model tiny --synthetic "$SYN" --db "$DB" --seed 9223372036854775808 \
    >/dev/null 2>&1
check "validate --seed 2^63 exits 1, as run (out of range)" "[ $? -eq 1 ]"
"$KV" validate --backend cpu --model tiny --synthetic "$SYN" --db "$DB" --plot "$T/afile" \
    >/dev/null 2>"$T/vplot.err"
check "validate --plot naming a file exits 1" "[ $? -eq 1 ] && grep -q -- \"--plot: expected a folder, got '$T/afile' (a file)\" $T/vplot.err"
check "... none of them ran or stored a run" "[ \"\$(q 'SELECT count(*) FROM runs')\" = $nruns ]"
# --config is read by run's loader: the file named, its own types checked
"$KV" validate --config "$T/none.json" --backend cpu --model tiny --no-db >/dev/null 2>"$T/vc1.err"
check "validate --config missing file exits 1 naming it" \
    "[ $? -eq 1 ] && grep -q \"validate: $T/none.json: unable to open\" $T/vc1.err"
echo '[1]' >"$T/arr.json"
"$KV" validate --config "$T/arr.json" --backend cpu --model tiny --no-db >/dev/null 2>"$T/vc2.err"
check "validate --config non-object exits 1 like run" \
    "[ $? -eq 1 ] && grep -q \"$T/arr.json: config: expected a JSON object of run options\" $T/vc2.err"
echo '{"tp": "x"}' >"$T/tp.json"
"$KV" validate --config "$T/tp.json" --backend cpu --model tiny --no-db >/dev/null 2>"$T/vc3.err"
check "validate --config bad value names the file, not --tp" \
    "[ $? -eq 1 ] && grep -q \"$T/tp.json: tp: expected an integer\" $T/vc3.err"
echo '{"backend": 5}' >"$T/be.json"
"$KV" validate --config "$T/be.json" --backend cpu --model tiny --no-db >/dev/null 2>"$T/vc4.err"
check "validate --config type-checks a key an option overrides" \
    "[ $? -eq 1 ] && grep -q \"$T/be.json: backend: expected a string, got '5'\" $T/vc4.err"

# (6) --layers cuts the model and says so
"$KV" run --backend cpu --model tiny --layers 1 --synthetic 'closed,concurrency=2,isl=16,osl=4,requests=4' \
    --no-db --json >"$T/cut.json" 2>/dev/null
check "--layers 1 runs and reports the cut" \
    "grep -q '\"layers\": 1' $T/cut.json && grep -q '\"model_layers\": 2' $T/cut.json"
"$KV" run --model tiny --layers 3 --no-db >/dev/null 2>"$T/cut.err"
check "--layers beyond the model exits 1" "[ $? -eq 1 ] && grep -q 'layers' $T/cut.err"

# (6b) a run recorded on an H200 with the cuda executor (data/validation/
# h200-cuda, docs/VALIDATION.md) replays, and the calibration fitted from
# that GPU's kernel profile predicts its steps (16 sequences) within 5% at
# the median where the datasheet roofline misses by half
cp "$srcdir/data/validation/h200-cuda/h200-c16.db" "$T/h2.db"
chmod u+w "$T/h2.db"
H2SYN='closed,concurrency=16,isl=1024,osl=128,requests=128'
for cal in "$srcdir/data/calib/h200-kvfleet.json" none; do
    "$KV" validate --backend replay --replay "$T/h2.db:4" --model llama-3-8b --gpu h200 \
        --synthetic "$H2SYN" --calibration "$cal" --db "$T/h2.db" --json >"$T/h2.json" 2>"$T/h2.err"
    check "replay of the H200 cuda run validates (--calibration $(basename "$cal"))" \
        "[ $? -eq 0 ] && grep -q '\"steps\": 1026' $T/h2.json"
    p50=$(sed -n 's/.*"step_p50_ape": \([0-9.e-]*\).*/\1/p' "$T/h2.json")
    if [ "$cal" = none ]; then
        check "... datasheet roofline: step p50 error over 40% (got $p50)" \
            "awk -v v='$p50' 'BEGIN { exit !(v > 0.4) }'"
    else
        check "... h200-kvfleet calibration: step p50 error under 5% (got $p50)" \
            "awk -v v='$p50' 'BEGIN { exit !(v != \"\" && v < 0.05) }'"
    fi
done

# (6c) the same at one sequence (run 1 of h200-closed.db), the step the
# first calibration, fitted from a profile timed with a warm L2, predicted
# 18.5% too fast; the profile now flushes L2 before each timed call
cp "$srcdir/data/validation/h200-cuda/h200-closed.db" "$T/h2c.db"
chmod u+w "$T/h2c.db"
"$KV" validate --backend replay --replay "$T/h2c.db:1" --model llama-3-8b --gpu h200 \
    --synthetic 'closed,concurrency=1,isl=1024,osl=128,requests=100' \
    --calibration "$srcdir/data/calib/h200-kvfleet.json" --db "$T/h2c.db" --json \
    >"$T/h2c.json" 2>"$T/h2c.err"
p50=$(sed -n 's/.*"step_p50_ape": \([0-9.e-]*\).*/\1/p' "$T/h2c.json")
check "one sequence on the H200: h200-kvfleet step p50 error under 5% (got $p50)" \
    "grep -q '\"steps\": 12800' $T/h2c.json && awk -v v='$p50' 'BEGIN { exit !(v != \"\" && v < 0.05) }'"

# (7) bad backends
"$KV" run --backend nope --no-db >/dev/null 2>"$T/nope.err"
check "unknown backend exits 1" "[ $? -eq 1 ]"
check "unknown backend lists the built ones" "grep -q 'sim, cpu, replay' $T/nope.err"
"$KV" run --backend cpu --model llama-3-8b --no-db --limit 1 >/dev/null 2>"$T/big.err"
check "cpu backend refuses a large model (exit 1)" "[ $? -eq 1 ] && grep -q 'use --model tiny' $T/big.err"
"$KV" run --backend cpu --model tiny --tp 2 --synthetic "$SYN" --no-db >/dev/null 2>"$T/tp2.err"
check "cpu backend refuses --tp 2 (exit 1) before any note" \
    "[ $? -eq 1 ] && grep -q -- '--tp: expected 1 with --backend cpu' $T/tp2.err && ! grep -q 'note' $T/tp2.err"
for b in cpu sim; do
    "$KV" run --backend $b --model tiny --op-timing true --synthetic "$SYN" --no-db \
        >/dev/null 2>"$T/opt.err"
    check "--op-timing true with --backend $b exits 1 (cuda only)" \
        "[ $? -eq 1 ] && grep -q -- \"--op-timing: expected false with --backend $b\" $T/opt.err"
done
if "$KV" --version | grep -q 'cuda: no'; then
    "$KV" run --backend cuda --model tiny --no-db >/dev/null 2>"$T/cuda.err"
    check "cuda backend in a build without CUDA exits 3" "[ $? -eq 3 ]"
    check "... saying the build has no CUDA" "grep -q 'this build has no CUDA' $T/cuda.err"
else
    "$KV" run --backend cuda --model tiny --dtype bf16 --no-db \
        --synthetic 'closed,concurrency=2,isl=16,osl=4,requests=4' >/dev/null 2>"$T/cuda.err"
    rc=$?
    check "cuda backend: runs (GPU) or exits 3 naming the CUDA call (no GPU)" \
        "[ $rc -eq 0 ] || { [ $rc -eq 3 ] && grep -q -i 'cuda' $T/cuda.err; }"
    "$KV" run --backend cuda --model tiny --dtype bf16 --no-db --replicas 2 \
        --synthetic 'closed,concurrency=2,isl=16,osl=4,requests=4' >/dev/null 2>"$T/cuda.err"
    check "cuda backend with --replicas 2 exits 1 before touching a device" \
        "[ $? -eq 1 ] && grep -q -- '--replicas: expected 1 with --backend cuda' $T/cuda.err"
fi

tap_end
