#!/bin/sh
# test_cli.sh: the kvfleet command end to end: exit codes, error messages,
# results in SQLite (status, conservation, determinism), --config, rerun,
# predict's JSON contract, and a killed run never looking finished.
set -u
. "$srcdir/tests/tap.sh"
tap_tmp cli
tap_need sqlite3

# a small trace: first 300 requests of the shipped conversation trace
head -n 301 "$srcdir/data/traces/azure_conv_2023.csv" >"$T/small.csv"
DB="$T/r.db"

"$KV" run --trace "$T/small.csv" --db "$DB" --json >"$T/out1.json" 2>"$T/err1"
check "run exits 0" "[ $? -eq 0 ]"
check "JSON has the contract keys" \
    "for k in requests completed rejected preemptions ttft_p50_s ttft_p90_s ttft_p99_s tpot_p50_s tpot_p99_s e2e_p50_s e2e_p99_s output_tokens_per_s mean_batch_size kv_util_mean kv_util_peak mfu_mean mbu_mean sim_events wall_s; do grep -q \"\\\"\$k\\\":\" $T/out1.json || exit 1; done"
check "status done" "[ \"\$(sqlite3 $DB 'SELECT status FROM runs WHERE run_id=1')\" = done ]"
check "every request ends once" \
    "[ \"\$(sqlite3 $DB 'SELECT completed + rejected = requests AND requests = 300 FROM summary WHERE run_id=1')\" = 1 ]"
check "requests rows = requests" \
    "[ \"\$(sqlite3 $DB 'SELECT COUNT(*), COUNT(DISTINCT id) FROM requests WHERE run_id=1')\" = '300|300' ]"
check "steps rows = steps" \
    "[ \"\$(sqlite3 $DB 'SELECT (SELECT COUNT(*) FROM steps WHERE run_id=1) = steps FROM summary WHERE run_id=1')\" = 1 ]"
check "KV never over capacity" \
    "[ \"\$(sqlite3 $DB 'SELECT COUNT(*) FROM steps WHERE kv_blocks_used > kv_blocks_total')\" = 0 ]"
check "config stored" \
    "sqlite3 $DB 'SELECT config FROM runs WHERE run_id=1' | grep -q '\"model\":\"llama-3-8b\"'"

# determinism: same inputs and seed, identical rows (wall-time columns aside)
"$KV" run --trace "$T/small.csv" --db "$DB" >/dev/null 2>&1
q='SELECT * FROM requests WHERE run_id=%d ORDER BY id'
s='SELECT requests,completed,ttft_p50_s,ttft_p99_s,tpot_p50_s,e2e_p99_s,output_tokens_per_s,mean_batch_size,kv_util_mean,mfu_mean,mbu_mean,sim_events,steps FROM summary WHERE run_id=%d'
check "two runs: identical summary" \
    "[ \"\$(sqlite3 $DB \"\$(printf \"$s\" 1)\")\" = \"\$(sqlite3 $DB \"\$(printf \"$s\" 2)\")\" ]"
check "two runs: identical request rows" \
    "[ \"\$(sqlite3 $DB \"\$(printf \"$q\" 1)\" | cut -d'|' -f2-)\" = \"\$(sqlite3 $DB \"\$(printf \"$q\" 2)\" | cut -d'|' -f2-)\" ]"
check "two runs: identical step rows" \
    "[ \"\$(sqlite3 $DB 'SELECT * FROM steps WHERE run_id=1' | cut -d'|' -f2-)\" = \"\$(sqlite3 $DB 'SELECT * FROM steps WHERE run_id=2' | cut -d'|' -f2-)\" ]"

# rerun and --config reproduce the run
"$KV" rerun "$DB" 1 >/dev/null 2>&1
check "rerun exits 0" "[ $? -eq 0 ]"
check "rerun: identical summary" \
    "[ \"\$(sqlite3 $DB \"\$(printf \"$s\" 1)\")\" = \"\$(sqlite3 $DB \"\$(printf \"$s\" 3)\")\" ]"
sqlite3 "$DB" 'SELECT config FROM runs WHERE run_id=1' >"$T/cfg.json"
"$KV" run --config "$T/cfg.json" --db "$DB" >/dev/null 2>&1
check "--config: identical summary" \
    "[ \"\$(sqlite3 $DB \"\$(printf \"$s\" 1)\")\" = \"\$(sqlite3 $DB \"\$(printf \"$s\" 4)\")\" ]"
check "runs appended, none overwritten" "[ \"\$(sqlite3 $DB 'SELECT COUNT(*) FROM runs')\" = 4 ]"
# the stored config is resolved: relative paths made absolute (a run made
# in one folder re-runs from any other), the dtypes the run used named
mkdir -p "$T/sub"
cp "$T/small.csv" "$T/sub/rel.csv"
SUB=$(cd "$T/sub" && pwd -P)
KVA=$(cd "$(dirname "$KV")" && pwd -P)/$(basename "$KV")
(cd "$T/sub" && "$KVA" run --trace rel.csv --db rel.db >/dev/null 2>&1)
check "stored config: trace and db absolute, dtypes named" \
    "sqlite3 $SUB/rel.db 'SELECT config FROM runs' | grep -q '\"trace\":\"$SUB/rel.csv\"' &&
     sqlite3 $SUB/rel.db 'SELECT config FROM runs' | grep -q '\"db\":\"$SUB/rel.db\"' &&
     sqlite3 $SUB/rel.db 'SELECT config FROM runs' | grep -q '\"dtype\":\"bf16\",\"engine'"
# ... and canonical: '.' and '..' resolved, in given paths and in the data
# folder's (the default trace of a build tree is SRC/data, not SRC/b/../data)
(cd "$T/sub" && "$KVA" run --trace ./../sub/rel.csv --db "$SUB/./../sub/canon.db" --limit 5 >/dev/null 2>&1 &&
    "$KVA" run --db canon.db --limit 5 >/dev/null 2>&1)
check "stored config: paths canonical" \
    "sqlite3 $SUB/canon.db 'SELECT config FROM runs WHERE run_id = 1' | grep -q '\"trace\":\"$SUB/rel.csv\",' &&
     sqlite3 $SUB/canon.db 'SELECT config FROM runs WHERE run_id = 1' | grep -q '\"db\":\"$SUB/canon.db\"' &&
     sqlite3 $SUB/canon.db 'SELECT config FROM runs WHERE run_id = 2' | grep -q '\"trace\":\"/[^\"]*/data/traces/azure_conv_2023.csv\"' &&
     ! sqlite3 $SUB/canon.db 'SELECT config FROM runs' | grep -q '/\.\{1,2\}/'"
(cd / && "$KVA" rerun "$SUB/rel.db" 1 >/dev/null 2>"$T/err_rel")
check "rerun from another folder: exit 0, the same summary" \
    "[ $? -eq 0 ] && [ \"\$(sqlite3 $SUB/rel.db \"\$(printf \"$s\" 1)\")\" = \"\$(sqlite3 $SUB/rel.db \"\$(printf \"$s\" 2)\")\" ]"
check "stored command is the one given" \
    "[ \"\$(sqlite3 $DB 'SELECT command FROM runs WHERE run_id=1')\" = \"kvfleet run --trace $T/small.csv --db $DB --json\" ]"
# a source given to rerun or --config replaces the stored one (a stored
# config always names one); both given at once are still refused
SY='poisson,rate=5,requests=20,isl=100,osl=10'
"$KV" rerun "$DB" 1 --synthetic "$SY" --no-db --json >"$T/rsy.json" 2>"$T/rsy.err"
check "rerun --synthetic over a stored trace: exit 0, the synthetic requests" \
    "[ $? -eq 0 ] && grep -q '\"requests\": 20,' $T/rsy.json && grep -q '\"prompt_tokens\": 2000,' $T/rsy.json"
"$KV" run --config "$T/cfg.json" --synthetic "$SY" --db "$T/rsy.db" >/dev/null 2>&1
check "--config FILE --synthetic: the stored config names the synthetic source only" \
    "[ $? -eq 0 ] && [ \"\$(sqlite3 $T/rsy.db \"SELECT json_extract(config, '\$.trace') IS NULL, json_extract(config, '\$.synthetic') FROM runs\")\" = '1|$SY' ]"
"$KV" rerun "$T/rsy.db" 1 --trace "$T/small.csv" --no-db --json >"$T/rtr.json" 2>&1
check "rerun --trace over a stored synthetic source: exit 0, the trace's requests" \
    "[ $? -eq 0 ] && grep -q '\"requests\": 300,' $T/rtr.json"
"$KV" rerun "$DB" 1 --trace "$T/small.csv" --synthetic "$SY" --no-db >/dev/null 2>"$T/rboth.err"
check "rerun with --trace and --synthetic both: exit 1, one source" \
    "[ $? -eq 1 ] && grep -q 'give one source, not both' $T/rboth.err"
# options without a command run 'run', and the stored command says so
"$KV" --trace "$T/small.csv" --db "$T/bare.db" >/dev/null 2>&1
check "options only: stored as kvfleet run ..." \
    "[ \"\$(sqlite3 $T/bare.db 'SELECT command FROM runs')\" = \"kvfleet run --trace $T/small.csv --db $T/bare.db\" ]"

# the readers (rerun, query, plot) refuse what is not a results file alike: exit 1, nothing created
printf 'not a database' >"$T/junk.db"
sqlite3 "$T/other.db" 'CREATE TABLE x (a)'
mkdir "$T/dir.db"
# a results file whose first page is corrupt (its B-tree page type byte): bad
# input, not a database failure (it exited 3, found by fuzzing)
cp "$DB" "$T/corrupt.db"
printf '\377' | dd of="$T/corrupt.db" bs=1 seek=100 conv=notrunc 2>/dev/null
for f in "$T/junk.db" "$T/other.db" "$T/none.db" "$T/dir.db" "$T/corrupt.db"; do
    for c in "rerun $f 1" "query $f" "plot $f --kind timeline -o $T/x.png" \
        "run --no-db --backend replay --replay $f:1 --synthetic poisson,rate=1,requests=2,isl=8,osl=2"; do
        # shellcheck disable=SC2086
        "$KV" $c >/dev/null 2>"$T/err_r"
        rc=$?
        check "${c%% *} ${f##*/}: exit 1 naming the file" \
            "[ $rc -eq 1 ] && grep -q \"^kvfleet [a-z]*: $f: \" $T/err_r"
    done
done
check "readers create no file" "[ ! -e $T/none.db ]"
# and a run refuses a --db it cannot write to as bad input too
for f in "$T/junk.db" "$T/nodir/r.db" "$T/corrupt.db"; do
    "$KV" run --db "$f" --synthetic 'poisson,rate=1,requests=2,isl=8,osl=2' >/dev/null 2>"$T/err_r"
    rc=$?
    check "run --db ${f#"$T"/}: exit 1 naming the file" "[ $rc -eq 1 ] && grep -q \": $f: \" $T/err_r"
done

# the same bad value gets the same exit code in every command: a value not of
# the option's form is usage (2), one of the right form out of range bad input (1)
AZ="$srcdir/data/traces/azure_conv_2023.csv"
echo '{"replicas": 1}' >"$T/cfg1.json"
for c in "1|trace stats --limit -1 $AZ" "1|run --no-db --limit -1" \
    "2|trace stats --limit x $AZ" "2|run --no-db --limit x" \
    "1|trace stats --load-scale 0 $AZ" "1|run --no-db --load-scale 0" \
    "1|trace stats --trace-format bogus $AZ" "1|run --no-db --trace-format bogus" \
    "1|trace stats $AZ --synthetic poisson" "1|run --no-db --trace $AZ --synthetic poisson" \
    "1|predict --tp 0" "1|run --no-db --tp 0" "2|predict --tp 2x" "2|run --no-db --tp 2x" \
    "1|run --no-db --limit 5 --kv-blocks 3 --pp 4" "1|predict --tp 3000000000" "1|predict --pp 99999999999999999999" "1|run --no-db --tp 3000000000" \
    "1|run --no-db --synthetic poisson,rate=20,requests=10,isl=5,osl=5 --trace-format foo" \
    "1|run --no-db --synthetic poisson,rate=20,requests=10,isl=5,osl=5 --trace-format mooncake" \
    "1|trace stats --synthetic poisson,rate=20,requests=10,isl=5,osl=5 --trace-format azure" \
    "0|run --no-db --synthetic poisson,rate=20,requests=10,isl=5,osl=5 --trace-format auto" \
    "1|trace stats --synthetic poisson,rate=0x10,requests=10,isl=5,osl=5" \
    "1|run --no-db --limit 5 --policy ttl:idle=0x10" \
    "2|run --no-db --limit 5 --config $T/cfg1.json --config $T/cfg1.json" \
    "2|validate --config $T/cfg1.json --config=$T/cfg1.json" "2|predict" "2|predict --json --tp 2" \
    "0|trace stats --help" "0|trace --help" "0|rerun --help" \
    "1|run --no-db --limit 5 --max-queue-time 1e10" "1|run --no-db --limit 5 --max-queue-time 1e-10" \
    "1|run --no-db --limit 5 --timeline-s 1e-6" "1|run --no-db --limit 5 --swap-space-gib -1"; do
    want=${c%%|*}
    # shellcheck disable=SC2086 # the command's words
    "$KV" ${c#*|} >/dev/null 2>"$T/err_x"
    check "exit $want: ${c#*|}" "[ $? -eq $want ]"
done
check "run --limit -1 names --limit" \
    "$KV run --no-db --limit -1 2>&1 | grep -q -- '--limit: expected an integer >= 0'"

# bad input: exit 1, the message names file, line and field; nothing marked done
printf 'TIMESTAMP,ContextTokens,GeneratedTokens\n0.5,100,10\n1.0,abc,10\n' >"$T/bad.csv"
"$KV" run --trace "$T/bad.csv" --db "$T/bad.db" >/dev/null 2>"$T/err2"
check "malformed trace exits 1" "[ $? -eq 1 ]"
check "message names file:line: field" "grep -q 'bad.csv:3:2: ContextTokens: expected' $T/err2"
check "failed run is not done" \
    "[ \"\$(sqlite3 $T/bad.db 'SELECT status FROM runs')\" = failed ]"
# a malformed line after more than one commit of rows (50,000 rows a
# commit; here about 60,000 steps rows come before it): exit 1, and the
# failed run keeps none of its rows
awk -F, 'NR == 4002 { print $1 ",abc," $3; exit } { print }' \
    "$srcdir/data/traces/azure_conv_2023.csv" >"$T/late.csv"
"$KV" run --trace "$T/late.csv" --db "$T/late.db" >/dev/null 2>"$T/err_late"
check "late malformed line: exit 1 naming line 4002" \
    "[ $? -eq 1 ] && grep -q 'late.csv:4002:2: ContextTokens: expected' $T/err_late"
check "late malformed line: the run failed and holds no rows" \
    "[ \"\$(sqlite3 $T/late.db \"SELECT status || (SELECT count(*) FROM requests) || (SELECT count(*) FROM steps) || (SELECT count(*) FROM timeline) FROM runs\")\" = failed000 ]"
"$KV" run --model no-such-model --no-db >/dev/null 2>"$T/err3"
check "unknown model exits 1" "[ $? -eq 1 ]"
check "unknown model lists presets" "grep -q 'llama-3-8b' $T/err3"
"$KV" run --gpu no-such-gpu --no-db >/dev/null 2>"$T/err4"
check "unknown GPU lists presets" "[ $? -eq 1 ] && grep -q 'h100-sxm' $T/err4"
"$KV" run --model llama-3-70b --gpu h100-sxm --no-db >/dev/null 2>"$T/err5"
check "70B on one H100 is infeasible (exit 1)" "[ $? -eq 1 ] && grep -q 'infeasible' $T/err5"
"$KV" run --model llama-3-70b --tp 3 --no-db >/dev/null 2>"$T/err6"
check "TP not dividing heads exits 1" "[ $? -eq 1 ]"
"$KV" run --no-such-flag 1 >/dev/null 2>&1
check "unknown option exits 2" "[ $? -eq 2 ]"
"$KV" run --tp abc >/dev/null 2>&1
check "malformed option value exits 2" "[ $? -eq 2 ]"
"$KV" frobnicate >/dev/null 2>&1
check "unknown command exits 2" "[ $? -eq 2 ]"
"$KV" run --trace /nonexistent/trace.csv --no-db >/dev/null 2>"$T/err7"
check "missing trace exits 1" "[ $? -eq 1 ] && grep -q 'nonexistent' $T/err7"

# the text summary names the dtypes, so that a bf16 and an fp8 run tell apart
"$KV" run --trace "$T/small.csv" --no-db --limit 5 --kv-dtype fp8 >"$T/dt.txt" 2>&1
check "run's text summary names the weights' and the KV dtypes" \
    "head -n 1 $T/dt.txt | grep -q 'llama-3-8b (bf16, KV fp8) on 1 x h100-sxm'"

# run --help gives each option's default (from the same table the parser uses)
"$KV" run --help >"$T/help.txt" 2>&1
check "run --help names the defaults" \
    "grep -q -- '--max-num-seqs .*\[default: 256\]' $T/help.txt && grep -q -- '--gpu-mem-util .*\[default: 0.9\]' $T/help.txt && grep -q -- '--policy .*\[default: lru\]' $T/help.txt"

# predict: JSON contract
"$KV" predict --model llama-3-8b --gpu h100-sxm --prefill 512 --decode 32@1024 --json >"$T/p.json"
check "predict exits 0" "[ $? -eq 0 ]"
check "predict has step_s and every operator" \
    "for k in step_s qkv_proj o_proj mlp_up mlp_act mlp_down norm rope attn_prefill attn_decode kv_save embed lm_head sample allreduce; do grep -q \"\\\"\$k\\\":\" $T/p.json || exit 1; done"
# predict's step is the run's: one prompt alone on an idle replica, its TTFT is
# the prefill step; two prompts in one step, predict with two --prefill
printf 'arrived_at,num_prefill_tokens,num_decode_tokens\n0,100,5\n' >"$T/p1.csv"
printf 'arrived_at,num_prefill_tokens,num_decode_tokens\n0,100,1\n0,100,1\n' >"$T/p2.csv"
jnum() { sed -n "s/^ *\"$1\": \([^,]*\),*$/\1/p" "$2" | head -n 1; }
"$KV" run --trace "$T/p1.csv" --no-db --json >"$T/p1.json" 2>/dev/null
"$KV" predict --prefill 100 --json >"$T/pp1.json" 2>/dev/null
"$KV" run --trace "$T/p2.csv" --no-db --json >"$T/p2.json" 2>/dev/null
"$KV" predict --prefill 100 --prefill 100 --json >"$T/pp2.json" 2>/dev/null
check "predict --prefill 100 is the run's prefill step (TTFT, within 1 ns)" \
    "awk -v a=\"\$(jnum ttft_p50_s $T/p1.json)\" -v b=\"\$(jnum step_s $T/pp1.json)\" 'BEGIN { d = a - b; exit !(a > 0 && d < 2e-9 && d > -2e-9) }'"
check "predict with two prompts is the run's step of two (TTFT, within 1 ns)" \
    "awk -v a=\"\$(jnum ttft_p50_s $T/p2.json)\" -v b=\"\$(jnum step_s $T/pp2.json)\" 'BEGIN { d = a - b; exit !(a > 0 && d < 2e-9 && d > -2e-9) }'"
"$KV" predict --model llama-3-70b --gpu h100-sxm --decode 1@10 --json >/dev/null 2>"$T/err8"
check "predict of an unservable shape still answers, with a note" \
    "[ $? -eq 0 ] && grep -q 'more than' $T/err8"
# a GPU with no shipped calibration runs on the datasheet roofline, which
# does not compare with a calibrated GPU's model: both commands say so
"$KV" predict --gpu h200 --decode 8@100 --json >"$T/p200.json" 2>/dev/null
check "predict --json names the calibration: datasheet for h200, the fit for h100-sxm" \
    "grep -q '\"calibration\": \"datasheet\"' $T/p200.json && grep -q '\"calibration\": \"kvfleet calibrate' $T/p.json"
"$KV" predict --gpu h200 --decode 8@100 >"$T/p200.txt" 2>/dev/null
"$KV" predict --decode 8@100 >"$T/p100.txt" 2>/dev/null
"$KV" run --gpu h200 --trace "$T/p1.csv" --no-db >"$T/r200.txt" 2>/dev/null
check "predict and run say when the perf model is the datasheet roofline, and only then" \
    "grep -q 'datasheet roofline, h200 has no calibration' $T/p200.txt && grep -q 'datasheet roofline, h200 has no calibration' $T/r200.txt && ! grep -q datasheet $T/p100.txt"
"$KV" predict --decode 8 >/dev/null 2>&1
check "predict --decode without @CONTEXT exits 2" "[ $? -eq 2 ]"
# shapes beyond the limits are usage errors, never an overflow or a four-billion-step loop
"$KV" predict --decode 4294967298@1 >/dev/null 2>&1
check "predict --decode 4294967298@1 exits 2" "[ $? -eq 2 ]"
"$KV" predict --decode 1000000@1 --decode 1@1 >/dev/null 2>&1
check "predict: more than 1,000,000 decoding sequences in all exits 2" "[ $? -eq 2 ]"
"$KV" predict --prefill 16@1000000001 >/dev/null 2>&1
check "predict --prefill 16@1000000001 exits 2" "[ $? -eq 2 ]"

# integer and number options are read whole: trailing characters are a usage error
"$KV" predict --tp 2x --decode 8@100 >/dev/null 2>"$T/err9"
check "predict --tp 2x exits 2, naming the option" "[ $? -eq 2 ] && grep -q -- '--tp' $T/err9"
"$KV" predict --tp 2 --decode 8@100 --json >/dev/null 2>&1
check "predict --tp 2 exits 0" "[ $? -eq 0 ]"
"$KV" predict --decode 1@10 --bogus >/dev/null 2>"$T/err11"
check "predict: an unknown option given last exits 2 as unknown, not as a missing value" \
    "[ $? -eq 2 ] && grep -q \"unknown option '--bogus'\" $T/err11"
"$KV" predict --model "$T/nonexistent/config.json" --decode 1@10 >/dev/null 2>"$T/err12"
check "predict: a model path that does not exist exits 1, saying so" \
    "[ $? -eq 1 ] && grep -q 'no such file or folder' $T/err12"
# 80 -> 160 layers of llama-3.1-70b: 278 GB of weights (139.0e9 parameters), 139.0 GB per GPU at PP 2
sed 's/"num_hidden_layers": 80/"num_hidden_layers": 160/' \
    "$srcdir/data/models/llama-3.1-70b.json" >"$T/l160.json"
"$KV" predict --model "$T/l160.json" --pp 2 --decode 1@100 >/dev/null 2>"$T/err13"
check "predict's weights note counts --pp (139.0 GB per GPU at PP 2)" \
    "[ $? -eq 0 ] && grep -q 'at TP1 PP2 has 139.0 GB of weights per GPU' $T/err13"
# absurd calibration values: refused as the file is read, naming the field
sed 's/"overhead_s": *[0-9.eE+-]*/"overhead_s": 1e307/' \
    "$srcdir/data/calib/h100-sxm.json" >"$T/huge.json"
"$KV" predict --calibration "$T/huge.json" --decode 8@1000 --json >/dev/null 2>"$T/err14"
check "predict with an overhead of 1e307 s exits 1 naming the field" \
    "[ $? -eq 1 ] && grep -q 'ops.qkv_proj.overhead_s: expected a number of seconds' $T/err14"
# a folder given as the calibration: named as one, not read as empty JSON
"$KV" run --no-db --limit 5 --calibration "$T" >/dev/null 2>"$T/errcf"
check "run --calibration FOLDER exits 1 saying it is a folder" \
    "[ $? -eq 1 ] && grep -q 'calibration file: expected a file, got a folder' $T/errcf"
# values each in range that together make a step last past the horizon: a GPU
# at the least bandwidth (1 MB/s) and a calibration at the least efficiency
# and factors; run refuses the configuration before it starts, naming both files
sed 's/^  "hbm_bw": *[0-9.eE+-]*/  "hbm_bw": 1000000/; s/"name": *"h100-sxm"/"name": "slowgpu"/' \
    "$srcdir/data/gpus/h100-sxm.json" >"$T/slowgpu.json"
sed 's/"gpu": *"h100-sxm"/"gpu": "slowgpu"/; /"eff": \[/ s/[0-9][0-9.e+-]*/0.0001/g
     /"factor": \[/ s/[0-9][0-9.e+-]*/0.001/g' "$srcdir/data/calib/h100-sxm.json" >"$T/floor.json"
"$KV" run --no-db --gpu "$T/slowgpu.json" --calibration "$T/floor.json" \
    --synthetic 'poisson,rate=1,requests=2,isl=8,osl=2' >/dev/null 2>"$T/err15"
check "run with 1e17 s steps is refused before it starts (exit 1), naming the GPU and calibration files" \
    "[ $? -eq 1 ] && grep -q 'one-token decode step .* check the GPU file ($T/slowgpu.json) and the calibration ($T/floor.json)' $T/err15"
# --calibration none: the all-reduce across two nodes is the datasheet tree
# (docs/collectives.md): 2 x 7 x 3 us (NVLink) + 2 x 1 x 5 us (IB) + 2 x 8192 B
# / 400 GB/s per call, 2 calls x 32 layers, not data/calib/nccl-h100-sxm.json's
"$KV" predict --tp 16 --decode 1@10 --calibration none --json >"$T/p16.json" 2>/dev/null
check "predict --tp 16 --calibration none costs the all-reduce from the datasheet" \
    "awk -v a=\"\$(jnum allreduce $T/p16.json)\" 'BEGIN { w = 64 * (42e-6 + 10e-6 + 16384 / 400e9); exit !(a > w * (1 - 1e-9) && a < w * (1 + 1e-9)) }'"
"$KV" trace stats "$T/small.csv" --limit 10x >/dev/null 2>"$T/err10"
check "trace stats --limit 10x exits 2, naming the option" \
    "[ $? -eq 2 ] && grep -q -- '--limit' $T/err10"
"$KV" trace stats "$T/small.csv" --load-scale abc >/dev/null 2>&1
check "trace stats --load-scale abc exits 2" "[ $? -eq 2 ]"
"$KV" trace stats "$T/small.csv" --limit 10 --load-scale 2 --seed 3 --json >"$T/ts.json" 2>&1
check "trace stats --limit 10 reads 10 requests" "grep -q '\"requests\": *10,' $T/ts.json"
"$KV" run --no-db --max-num-seqs 8x --synthetic 'poisson,rate=1,requests=2,isl=8,osl=2' >/dev/null 2>&1
check "run --max-num-seqs 8x exits 2" "[ $? -eq 2 ]"
"$KV" run --no-db --max-num-seqs 4294967297 --synthetic 'poisson,rate=1,requests=2,isl=8,osl=2' >/dev/null 2>&1
check "run --max-num-seqs 4294967297 exits 1: an integer out of its range (no wrap to 1)" "[ $? -eq 1 ]"
"$KV" run --no-db --max-num-seqs abc --synthetic 'poisson,rate=1,requests=2,isl=8,osl=2' >/dev/null 2>"$T/mns.err"
check "run --max-num-seqs abc exits 2: 'expected an integer'" \
    "[ $? -eq 2 ] && grep -q -- \"--max-num-seqs: expected an integer, got 'abc'\" $T/mns.err"
"$KV" run --no-db --limit 3 --load-scale 0x10 >/dev/null 2>&1
check "run --load-scale 0x10 exits 2 (decimal only)" "[ $? -eq 2 ]"
"$KV" run --no-db --limit 3 --load-scale 1e400 >/dev/null 2>&1
check "run --load-scale 1e400 exits 1 (a number beyond a double: out of range)" "[ $? -eq 1 ]"
"$KV" run --no-db --limit 3 --load-scale 1e-320 >/dev/null 2>"$T/tiny.err"
check "run --load-scale 1e-320 exits 1 naming a double's range (it said 'a finite number')" \
    "[ $? -eq 1 ] && grep -q -- \"--load-scale: expected a number of magnitude 2.2e-308 to 1.8e308 (or 0, where the option allows it), got '1e-320'\" $T/tiny.err"
"$KV" run --no-db --trace '' >/dev/null 2>"$T/tiny.err"
check "run --trace '': exit 1, says a file was expected (it said 'cannot open' without a name)" \
    "[ $? -eq 1 ] && [ \"\$(cat $T/tiny.err)\" = \"kvfleet run: --trace: expected a file, got ''\" ]"
"$KV" trace stats "$T/small.csv" --limit 99999999999999999999 >/dev/null 2>&1
check "trace stats --limit 1e20 exits 1, as run" "[ $? -eq 1 ]"
"$KV" trace stats "$T/small.csv" --load-scale 1e400 >/dev/null 2>&1
check "trace stats --load-scale 1e400 exits 1, as run (it exited 2)" "[ $? -eq 1 ]"

# every request rejected (9000-token prompts, 8192 of context): the rates are 0
# over the span of the rejections, not null
printf 'arrived_at,num_prefill_tokens,num_decode_tokens\n0,9000,10\n1,9000,10\n' >"$T/rej.csv"
"$KV" run --trace "$T/rej.csv" --no-db --slo-ttft 1 --json >"$T/rej.json" 2>/dev/null
check "all rejected: output tokens/s, requests/s and goodput are 0" \
    "grep -q '\"rejected\": 2,' $T/rej.json && grep -q '\"output_tokens_per_s\": 0.0,' $T/rej.json && grep -q '\"requests_per_s\": 0.0,' $T/rej.json && grep -q '\"goodput_requests_per_s\": 0.0,' $T/rej.json"
# seeds are 0..2^63-1 for run and trace stats alike
"$KV" run --no-db --limit 5 --seed -1 >/dev/null 2>"$T/seed.err"
check "run --seed -1 exits 1 (out of range), naming the option" \
    "[ $? -eq 1 ] && grep -q -- '--seed: expected an integer from 0 to 9223372036854775807' $T/seed.err"
"$KV" trace stats "$T/small.csv" --seed -1 >/dev/null 2>&1
check "trace stats --seed -1 exits 1, as run" "[ $? -eq 1 ]"
"$KV" run --no-db --limit 5 --seed 9223372036854775808 >/dev/null 2>&1
check "run --seed 2^63 exits 1 (out of range, as -1)" "[ $? -eq 1 ]"
# --config: a key given twice and a folder are refused, naming the file
printf '{"limit": 3, "limit": 4}' >"$T/dupcfg.json"
"$KV" run --no-db --config "$T/dupcfg.json" >/dev/null 2>"$T/dupcfg.err"
check "run --config with a duplicate key exits 1 naming it" \
    "[ $? -eq 1 ] && grep -q 'dupcfg.json:1:.*duplicate object key' $T/dupcfg.err"
"$KV" run --no-db --config "$T" >/dev/null 2>"$T/dircfg.err"
check "run --config FOLDER exits 1: 'got a folder'" "[ $? -eq 1 ] && grep -q 'got a folder' $T/dircfg.err"
# a value out of range names the option where it was given: --max-num-seqs on
# the command line, the file and its key from --config (the scheduler said
# 'config: max-num-seqs' either way, and a file's tp was called '--tp')
origin() { # NAME WANT, then run options
    name=$1
    want=$2
    shift 2
    "$KV" run --no-db --limit 3 "$@" >/dev/null 2>"$T/origin.err"
    check "range error names its origin: $name" \
        "[ $? -eq 1 ] && [ \"\$(cat $T/origin.err)\" = \"kvfleet run: $want\" ]"
}
printf '{"max-num-seqs": 0}' >"$T/seqs0.json"
printf '{"tp": 0, "limit": 3}' >"$T/tp0.json"
origin "--max-num-seqs 0" "--max-num-seqs: expected an integer >= 1, got '0'" --max-num-seqs 0
origin "file max-num-seqs 0" "$T/seqs0.json: max-num-seqs: expected an integer >= 1, got '0'" \
    --config "$T/seqs0.json"
origin "file tp 0" "$T/tp0.json: tp: expected 1..512 (64 nodes of 8 h100-sxm), got '0'" \
    --config "$T/tp0.json"
origin "file tp 0, --tp 0 too" "--tp: expected 1..512 (64 nodes of 8 h100-sxm), got '0'" \
    --config "$T/tp0.json" --tp 0
origin "file tp 0 overridden, --replicas 0" "--replicas: expected 1..1000000, got '0'" \
    --config "$T/tp0.json" --tp 1 --replicas 0
"$KV" capacity --slo ttft_p99=1s --no-db --max-num-seqs 0 >/dev/null 2>"$T/origin.err"
check "capacity --max-num-seqs 0 names the option" \
    "[ $? -eq 2 ] && grep -qx -- \"kvfleet capacity: --max-num-seqs: expected an integer >= 1, got '0'\" $T/origin.err"
# --sessionize '' is a mistake, none turns it off
"$KV" run --no-db --limit 20 --sessionize '' >/dev/null 2>"$T/sz.err"
check "run --sessionize '' exits 1" "[ $? -eq 1 ] && grep -q -- '--sessionize: expected a spec' $T/sz.err"
"$KV" run --no-db --limit 20 --sessionize none --json >"$T/sz.json" 2>/dev/null
check "run --sessionize none runs without sessions" "[ $? -eq 0 ] && grep -q '\"completed\": 20,' $T/sz.json"
# file( PATH ): blanks around the path are not part of it; the stored path is absolute
printf 't_s,rate\n0,5\n10,5\n' >"$T/rate.csv"
"$KV" run --db "$T/fp.db" --synthetic "poisson,rate=file( $T/rate.csv ),duration=2,isl=5,osl=2" \
    >/dev/null 2>&1
check "file( PATH ) with blanks runs and is stored without them" \
    "[ $? -eq 0 ] && sqlite3 $T/fp.db \"SELECT json_extract(config, '\$.synthetic') FROM runs\" | grep -q 'file(/[^ ]*rate.csv)'"
"$KV" run --no-db --limit 5 --seed 9223372036854775807 >/dev/null 2>&1
check "run --seed 2^63-1 exits 0" "[ $? -eq 0 ]"

# one output token each: no TPOT at all (its quantiles are null), nothing else undefined
"$KV" run --no-db --json --synthetic 'poisson,rate=5,requests=4,isl=32,osl=1' >"$T/osl1.json" 2>"$T/osl1.err"
check "osl=1 exits 0 with TPOT null" \
    "[ $? -eq 0 ] && grep -q '\"tpot_p50_s\": null' $T/osl1.json && grep -q '\"completed\": 4' $T/osl1.json"

# --steps-sample at its largest keeps step 0 only (and no sum overflows)
"$KV" run --db "$T/ss.db" --steps-sample 9223372036854775807 \
    --synthetic 'poisson,rate=5,requests=40,isl=32,osl=40' >/dev/null 2>&1
check "--steps-sample 2^63-1: exit 0, one steps row" \
    "[ $? -eq 0 ] && [ \"\$(sqlite3 $T/ss.db 'SELECT COUNT(*), MIN(step) FROM steps')\" = '1|0' ]"

# the horizon: no arrival or step beyond 1e9 s, no run past 2e9 s, no gap of millions of
# empty timeline rows; each is an error (exit 1), never a hang or an overflow
"$KV" run --no-db --load-scale 1e-300 --synthetic 'poisson,rate=5,requests=4,isl=32,osl=4' \
    >/dev/null 2>"$T/hz1"
check "--load-scale 1e-300: exit 1 naming the horizon" "[ $? -eq 1 ] && grep -q horizon $T/hz1"
# 16,000 s steps (16 GB of weights read at 1 MB/s), one sequence at a time
"$KV" run --no-db --gpu "$T/slowgpu.json" --model llama-3.1-8b --max-num-seqs 1 \
    --synthetic 'poisson,rate=5,requests=4,isl=32,osl=40000' >/dev/null 2>"$T/hz2"
check "16,000 s steps: exit 1 once past the horizon" "[ $? -eq 1 ] && grep -q horizon $T/hz2"
"$KV" run --db "$T/hz.db" --load-scale 1e-9 --synthetic 'poisson,rate=5,requests=4,isl=32,osl=4' \
    >/dev/null 2>"$T/hz3"
check "a gap of 1e8 timeline intervals: exit 1, the run marked failed" \
    "[ $? -eq 1 ] && grep -q -- '--timeline-s' $T/hz3 && [ \"\$(sqlite3 $T/hz.db 'SELECT status FROM runs')\" = failed ]"

printf 'session_id,turn,start_s,think_s,prompt_tokens,output_tokens\n0,1,0,0,10,5\n0,2,0,1500000000,10,5\n' \
    >"$T/think.csv"
"$KV" run --no-db --trace "$T/think.csv" >/dev/null 2>"$T/hz4"
check "a think_s beyond 1e9 s: exit 1 naming file, line and field" \
    "[ $? -eq 1 ] && grep -q 'think.csv:3:4: think_s: expected a number of seconds in \[0, 1e9\]' $T/hz4"
printf 'session_id,turn,start_s,think_s,prompt_tokens,output_tokens\n0,1,0,0,10,5\n0,2,0,9e8,10,5\n0,3,0,9e8,10,5\n' \
    >"$T/think2.csv"
"$KV" run --db "$T/hz5.db" --timeline-s 0 --trace "$T/think2.csv" >/dev/null 2>"$T/hz5"
check "think times adding up past the horizon: exit 1 naming the turn, the run marked failed" \
    "[ $? -eq 1 ] && grep -q 'session 0, turn 3: expected an arrival at most 1e9 s' $T/hz5 && [ \"\$(sqlite3 $T/hz5.db 'SELECT status FROM runs')\" = failed ]"

# --no-db: no run id (null), and the text says there is no results file
"$KV" run --no-db --limit 3 --json >"$T/nodb.json" 2>/dev/null
check "--no-db --json: run_id is null" "grep -q '\"run_id\": null,' $T/nodb.json"
"$KV" run --no-db --limit 3 2>/dev/null | head -n 1 >"$T/nodb.txt"
check "--no-db text: 'no results file'" "grep -q '^kvfleet run (no results file): ' $T/nodb.txt"
# --gpu-price with a fleet would be ignored (the fleet prices per region): refused
"$KV" run --no-db --limit 3 --gpu-price 2 --fleet "$srcdir/experiments/fleets/two-regions.json" \
    >/dev/null 2>"$T/gp.err"
check "--gpu-price with --fleet exits 1" "[ $? -eq 1 ] && grep -q -- '--gpu-price: expected none with --fleet' $T/gp.err"

# a pipelined fleet pool reports replicas as the file counts them, engines apart
printf '{"regions": {"r": {"gpus": {"h100-sxm": 8}}}, "pools": [{"name": "a", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 2, "pp": 2}]}' \
    >"$T/ppf.json"
"$KV" run --no-db --limit 20 --json --fleet "$T/ppf.json" >"$T/ppf.out" 2>/dev/null
check "fleet pool pp 2 x 2 replicas: replicas 2, virtual_engines 4" \
    "[ \$(grep -c '\"replicas\": 2,' $T/ppf.out) -eq 2 ] && [ \$(grep -c '\"virtual_engines\": 4,' $T/ppf.out) -eq 2 ]"

# a killed run never looks finished
"$KV" run --db "$T/kill.db" --synthetic 'poisson,rate=200,requests=2000000,isl=1000,osl=200' \
    --replicas 8 >/dev/null 2>&1 &
pid=$!
sleep 1
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
check "killed run stays 'running', never 'done'" \
    "[ \"\$(sqlite3 $T/kill.db 'SELECT status FROM runs')\" = running ]"
check "killed run has no summary" "[ \"\$(sqlite3 $T/kill.db 'SELECT COUNT(*) FROM summary')\" = 0 ]"

# a writer killed inside a transaction leaves a hot journal; the readers roll it back
# (a read-only connection could not) and see the file as it was before the transaction
"$KV" run --db "$T/hot.db" --synthetic 'poisson,rate=5,requests=40,isl=100,osl=10' >/dev/null 2>&1
check "the run to interrupt exits 0" "[ $? -eq 0 ]"
mkfifo "$T/fifo"
sqlite3 -batch -init /dev/null "$T/hot.db" <"$T/fifo" >"$T/hot.out" 2>&1 &
spid=$!
exec 3>"$T/fifo"
echo "PRAGMA cache_size = 1; BEGIN; DELETE FROM summary; CREATE TABLE big (x);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 20000)
INSERT INTO big SELECT randomblob(200) FROM c; SELECT 'ready';" >&3
i=0
while ! grep -qx ready "$T/hot.out" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
kill -9 "$spid" 2>/dev/null
wait "$spid" 2>/dev/null
exec 3>&-
check "a hot journal is left" "[ -s $T/hot.db-journal ]"
"$KV" query "$T/hot.db" --csv --columns run_id,requests,completed >"$T/hot.csv" 2>"$T/hot.err"
check "query rolls a hot journal back (exit 0, the summary as committed, no journal left)" \
    "[ $? -eq 0 ] && grep -q '^1,40,40' $T/hot.csv && [ ! -s $T/hot.db-journal ]"

# the timeline counts a token in the interval where its step ends, not at the
# request's completion: one request of 1000 tokens spread over 8 intervals
printf 'TIMESTAMP,ContextTokens,GeneratedTokens\n0,100,1000\n' >"$T/one.csv"
"$KV" run --trace "$T/one.csv" --db "$T/one.db" --timeline-s 1 >/dev/null 2>&1
check "timeline: each interval's output tokens are its steps' (within 1, at an edge)" \
    "[ \"\$(sqlite3 $T/one.db 'SELECT COUNT(*), SUM(output_tokens), SUM(ABS(output_tokens - (SELECT COUNT(*) FROM steps s WHERE s.start_s + s.dur_s >= tl.t_s AND s.start_s + s.dur_s < tl.t_s + tl.dt_s)) > 1) FROM timeline tl')\" = '8|1000|0' ]"

# recomputed tokens of a later turn: what earlier turns computed (their
# context less the last output token, never fed back) and the cache lost
printf 'session_id,turn,start_s,think_s,prompt_tokens,output_tokens\n1,1,0,0,100,10\n1,2,0,2,50,5\n' >"$T/turns.csv"
"$KV" run --trace "$T/turns.csv" --policy none --db "$T/turns.db" >/dev/null 2>&1
"$KV" run --trace "$T/turns.csv" --policy lru --db "$T/turns.db" >/dev/null 2>&1
check "a later turn recomputes its earlier turns' 109 computed tokens less the cached 96" \
    "[ \"\$(sqlite3 $T/turns.db 'SELECT run_id, hit_tokens, recomputed_tokens FROM requests WHERE turn = 2 ORDER BY run_id' | tr '\n' ' ')\" = '1|0|109 2|96|13 ' ]"
# KV utilisation counts blocks held by sequences: idle cached prefix blocks
# are free (evictable), so an interval with nothing running or waiting holds none
"$KV" run --synthetic 'sessions,rate=0.2,turns=4,think=5,isl=1000,osl=100,sessions=60' \
    --kv-blocks 2000 --db "$T/kvu.db" >/dev/null 2>&1
check "idle intervals hold no KV while the prefix cache is full (evictions)" \
    "[ \"\$(sqlite3 $T/kvu.db 'SELECT (SELECT COUNT(*) > 10 AND MAX(kv_util_mean) = 0 FROM timeline WHERE batch_mean = 0 AND waiting_mean = 0) AND evictions > 0 FROM summary')\" = 1 ]"

# sequences whose KV comes back over PCIe (host tier, swap) keep their place in
# the sequence budget, and a decoder preempted by a prompt's chunk leaves the
# step; the arrivals below are timed so that transfers end together
scenario() { # name, trace rows (printf format), then run options: $T/name.db, --check on
    name=$1
    # shellcheck disable=SC2059 # the rows are the format
    printf "$2" >"$T/$name.csv"
    shift 2
    "$KV" run --trace "$T/$name.csv" --db "$T/$name.db" --check true "$@" >/dev/null 2>&1
}
scenario xfer 'session_id,turn,start_s,think_s,prompt_tokens,output_tokens\n1,1,0,0,160,2\n1,2,0,1.0,16,2\n2,1,0,0,160,2\n2,2,0,0.984528966,16,2\n3,1,0.3,0,600,2\n' \
    --kv-blocks 40 --host-cache-gib 1 --max-num-seqs 1 --max-batched-tokens 1024
check "host-tier loads never overfill --max-num-seqs 1 (exit 0, batches of 1)" \
    "[ $? -eq 0 ] && [ \"\$(sqlite3 $T/xfer.db 'SELECT MAX(batch_size), (SELECT completed FROM summary) FROM steps')\" = '1|5' ]"
scenario swap 'arrived_at,num_prefill_tokens,num_decode_tokens\n0,64,40\n0.001,48,40\n0.021,16,40\n0.031,16,40\n' \
    --kv-blocks 12 --max-num-seqs 2 --max-batched-tokens 256 --preemption swap
check "swap-ins never overfill --max-num-seqs 2" \
    "[ $? -eq 0 ] && [ \"\$(sqlite3 $T/swap.db 'SELECT MAX(batch_size) <= 2 AND (SELECT preemptions > 0 FROM summary) FROM steps')\" = 1 ]"
scenario phantom 'session_id,turn,start_s,think_s,prompt_tokens,output_tokens\n1,1,0,0,160,2\n1,2,0,1.0,300,2\n3,1,0.3,0,630,2\n4,1,1.015571034,0,200,50\n' \
    --kv-blocks 40 --host-cache-gib 1 --max-num-seqs 8 --max-batched-tokens 256
check "a decoder preempted in its step decodes nothing: 56 tokens = 51 decoded + 5 sampled by prompts" \
    "[ $? -eq 0 ] && [ \"\$(sqlite3 $T/phantom.db 'SELECT SUM(decode_tokens), (SELECT output_tokens FROM summary), (SELECT preemptions FROM summary) FROM steps')\" = '51|56|1' ]"
# without chunked prefill a prompt back from the host tier is computed whole
awk 'BEGIN { print "session_id,turn,start_s,think_s,prompt_tokens,output_tokens"; print "1,1,0,0,160,2"; print "1,2,0,1.0,1886,2"
    for (i = 0; i < 6; i++) printf "%d,1,%.1f,0,1900,2\n", 10 + i, 0.3 + 0.1 * i
    for (i = 0; i < 200; i++) printf "%d,1,1.015571034,0,8,50\n", 100 + i }' >"$T/nochunk.csv"
"$KV" run --trace "$T/nochunk.csv" --kv-blocks 700 --host-cache-gib 4 --chunked-prefill false \
    --max-batched-tokens 2048 --db "$T/nochunk.db" --check true >/dev/null 2>&1
check "--chunked-prefill false: the turn back from the host tier computes its 1888 tokens in one step" \
    "[ $? -eq 0 ] && [ \"\$(sqlite3 $T/nochunk.db 'SELECT COUNT(*) FROM steps WHERE prefill_tokens = 1888 AND n_prefill = 1')\" = 1 ] && [ \"\$(sqlite3 $T/nochunk.db 'SELECT hit_tokens FROM requests WHERE session_id = 1 AND turn = 2')\" = 160 ]"

# a session id reused after its session ended is a new conversation: no hit on
# the old one's blocks (it had 992 tokens); a block over two hash blocks holds both
printf 'session_id,turn,start_s,think_s,prompt_tokens,output_tokens\n5,1,0,0,1000,50\n6,1,100,0,300,20\n5,1,200,0,1000,50\n' >"$T/reuse.csv"
"$KV" run --trace "$T/reuse.csv" --db "$T/reuse.db" >/dev/null 2>&1
check "a reused session id starts cold" \
    "[ \"\$(sqlite3 $T/reuse.db 'SELECT group_concat(hit_tokens) FROM requests')\" = 0,0,0 ]"
printf '{"timestamp": 0, "input_length": 2048, "output_length": 2, "hash_ids": [1, 2, 3, 4]}\n{"timestamp": 20000, "input_length": 2048, "output_length": 2, "hash_ids": [1, 5, 6, 7]}\n' >"$T/hb.jsonl"
for b in 16:512 512:512 1024:0 768:0 48:480; do
    "$KV" run --trace "$T/hb.jsonl" --block-tokens "${b%%:*}" --db "$T/hb${b%%:*}.db" >/dev/null 2>&1
    check "--block-tokens ${b%%:*}: one shared hash block of 512 tokens gives ${b#*:} hit tokens" \
        "[ \"\$(sqlite3 $T/hb${b%%:*}.db 'SELECT hit_tokens FROM requests WHERE id = 1')\" = ${b#*:} ]"
done

# a run that ends exactly on a timeline boundary: that instant's counts are in a last row
# of length 0 (the rejection at 2 s was missing); a run of no length has 0 GPU-hours
printf 'arrived_at,num_prefill_tokens,num_decode_tokens\n0,100,10\n2,9000,10\n' >"$T/tl.csv"
"$KV" run --trace "$T/tl.csv" --db "$T/tl.db" >/dev/null 2>&1
check "timeline sums equal the summary when the run ends on a boundary" \
    "[ \"\$(sqlite3 $T/tl.db 'SELECT sum(arrivals), sum(rejections), sum(completions) FROM timeline')\" = '2|1|1' ]"
check "... the last row has dt_s 0 and null means" \
    "[ \"\$(sqlite3 $T/tl.db 'SELECT t_s, dt_s, batch_mean IS NULL FROM timeline ORDER BY t_s DESC LIMIT 1')\" = '2.0|0.0|1' ]"
printf 'arrived_at,num_prefill_tokens,num_decode_tokens\n0,9000,10\n0,9000,10\n' >"$T/rej0.csv"
"$KV" run --trace "$T/rej0.csv" --no-db --json >"$T/rej0.json" 2>/dev/null
check "every request rejected at one instant: gpu_hours 0, utilisations null" \
    "grep -q '\"gpu_hours\": 0.0,' $T/rej0.json && grep -q '\"busy_frac\": null' $T/rej0.json"

# durations: a unit on the command line (500ms is 0.5), stored as seconds; another suffix
# is a usage error naming the units
"$KV" run --trace "$T/small.csv" --no-db --json --slo-ttft 0.5 --max-queue-time 2 >"$T/d1.json" 2>/dev/null
"$KV" run --trace "$T/small.csv" --no-db --json --slo-ttft 500ms --max-queue-time 2s >"$T/d2.json" 2>/dev/null
check "--slo-ttft 500ms --max-queue-time 2s: the same run as 0.5 and 2" \
    "grep -v -e wall_s -e peak_rss_bytes $T/d1.json >$T/d1.c && grep -v -e wall_s -e peak_rss_bytes $T/d2.json >$T/d2.c && cmp -s $T/d1.c $T/d2.c && grep -q '\"goodput_requests_per_s\": [1-9]' $T/d1.c"
"$KV" run --trace "$T/small.csv" --db "$T/dur.db" --slo-tpot 40ms >/dev/null 2>&1
"$KV" run --trace "$T/small.csv" --db "$T/dur.db" --slo-tpot 0.04 >/dev/null 2>&1
check "--slo-tpot 40ms stored as the same number as 0.04" \
    "[ \"\$(sqlite3 $T/dur.db \"SELECT count(DISTINCT json_extract(config, '$.\\\"slo-tpot\\\"')) || ',' || count(*) FROM runs\")\" = 1,2 ]"
"$KV" run --no-db --timeline-s 2x >/dev/null 2>"$T/dx"
check "--timeline-s 2x: exit 2, the units named" \
    "[ $? -eq 2 ] && grep -q 'timeline-s: expected a number of seconds, or one with a unit (500ms, 2s, 5m; also ns, us, h)' $T/dx"

# version
check "--version says cuda and mpi" "$KV --version | grep -q '^cuda: ' && $KV --version | grep -q '^mpi: '"

# --pp: the header counts a replica's GPUs (TP x PP) and kv_blocks is the
# replica's, as --kv-blocks gave it, beside each virtual engine's share
"$KV" run --no-db --limit 20 --model llama-3-70b --tp 8 --pp 2 --kv-blocks 1000 >"$T/pp.txt" 2>&1
"$KV" run --no-db --limit 20 --model llama-3-70b --tp 8 --pp 2 --kv-blocks 1000 --json >"$T/pp.json" 2>&1
check "--pp: header says TP8 x PP2 = 16 GPUs and 1000 blocks per replica" \
    "grep -q 'on 1 x h100-sxm (TP8 x PP2 = 16 GPUs per replica), 1000 KV blocks of 16 tokens per replica' $T/pp.txt"
check "--pp: JSON kv_blocks 1000, kv_blocks_per_engine 500" \
    "grep -q '\"kv_blocks\": 1000,' $T/pp.json && grep -q '\"kv_blocks_per_engine\": 500,' $T/pp.json"

# undefined figures print '-' in the text summary, as the latency lines do (JSON: null)
printf 'TIMESTAMP,ContextTokens,GeneratedTokens\n' >"$T/hdr_only.csv"
"$KV" run --trace "$T/hdr_only.csv" --no-db >"$T/hdr_only.txt" 2>&1
check "no requests: exit 0, '-' for every undefined figure, no nan" \
    "[ $? -eq 0 ] && grep -q 'throughput - output tokens/s, - requests/s' $T/hdr_only.txt &&
     grep -q 'batch mean - | KV util mean - peak - | MFU - MBU - | busy -' $T/hdr_only.txt && ! grep -qi nan $T/hdr_only.txt"
# a GPU-hour price is bounded, so no cost overflows (it printed null in JSON, Inf in SQLite)
"$KV" run --no-db --limit 5 --gpu-price 1e308 >/dev/null 2>"$T/price.err"
check "--gpu-price 1e308: exit 1 naming the range" \
    "[ $? -eq 1 ] && grep -q -- '--gpu-price: expected USD per GPU-hour in 0..1e+06' $T/price.err"

# a results file that stops taking rows mid-run (here a file-size limit)
# fails the run with exit 3, naming the file and SQLite's reason
(ulimit -f 200 && trap '' XFSZ && exec "$KV" run --db "$T/fsz.db" --limit 5000) >/dev/null 2>"$T/fsz.err"
check "a write failure mid-run: exit 3, the file and the cause named, status failed" \
    "[ $? -eq 3 ] && grep -q \"^kvfleet run: $T/fsz.db: insert [a-z]* rows: \" $T/fsz.err &&
     [ \"\$(sqlite3 $T/fsz.db 'SELECT status FROM runs')\" = failed ]"

# --config: "no-db": true is --no-db; not a boolean, or beside a "db", is refused
echo '{"no-db": true, "limit": 5}' >"$T/nodb.json"
(cd "$T" && "$KVA" run --config nodb.json --json >"$T/nodb.out" 2>&1)
check "--config with \"no-db\": true runs without a results file" \
    "[ $? -eq 0 ] && grep -q '\"run_id\": null' $T/nodb.out && [ ! -e $T/kvfleet.db ]"
echo '{"no-db": 1}' >"$T/nodb1.json"
"$KV" run --config "$T/nodb1.json" >/dev/null 2>"$T/nodb1.err"
check "--config \"no-db\": 1 exits 1, naming the file and the key" \
    "[ $? -eq 1 ] && grep -q \"$T/nodb1.json: no-db: expected true or false, got '1'\" $T/nodb1.err"

# messages name the option at fault and its value
"$KV" run --no-db --slo-ttft -1 >/dev/null 2>"$T/slo.err"
check "--slo-ttft -1: exit 1 naming it and the value" \
    "[ $? -eq 1 ] && grep -q -- \"--slo-ttft: expected seconds >= 0 (0: no SLO), got '-1'\" $T/slo.err"
sed -e 's/"num_attention_heads": *[0-9]*/"num_attention_heads": 48/' \
    -e 's/"hidden_size": *[0-9]*/"hidden_size": 6144/' -e 's/"num_key_value_heads": *[0-9]*/"num_key_value_heads": 4/' \
    -e 's/"intermediate_size": *[0-9]*/"intermediate_size": 16896/' "$srcdir/data/models/llama-3-8b.json" >"$T/m48.json"
"$KV" predict --model "$T/m48.json" --tp 12 --decode 1@10 >/dev/null 2>"$T/tp12.err"
check "--tp 12 on nodes of 8: exit 1, whole nodes expected (not the link)" \
    "[ $? -eq 1 ] && grep -q -- '--tp: 12 GPUs span nodes of 8 h100-sxm: expected whole nodes (a multiple of 8), got 12' $T/tp12.err"

# a sliding-window model (Mistral-7B's 4096 in a 32k context) is costed as
# full attention, and run and predict say so on stderr; Qwen's
# use_sliding_window false is no window
mkdir -p "$T/swin" "$T/swoff"
sed -e 's/"max_position_embeddings": *[0-9]*/"max_position_embeddings": 32768, "sliding_window": 4096/' \
    "$srcdir/data/models/llama-3-8b.json" >"$T/swin/config.json"
sed -e 's/"max_position_embeddings": *[0-9]*/"max_position_embeddings": 32768, "sliding_window": 4096, "use_sliding_window": false/' \
    "$srcdir/data/models/llama-3-8b.json" >"$T/swoff/config.json"
"$KV" predict --model "$T/swin/config.json" --decode 1@100 --json >/dev/null 2>"$T/swp.err"
check "predict, sliding window: exits 0 with a note naming the window (kvfleet: note:, as run's)" \
    "[ $? -eq 0 ] && grep -q '^kvfleet: note: swin attends through a sliding window of 4096 tokens, which is not modelled' $T/swp.err"
"$KV" run --no-db --limit 5 --model "$T/swin/config.json" >/dev/null 2>"$T/swr.err"
check "run, sliding window: exits 0 with the note" \
    "[ $? -eq 0 ] && grep -q '^kvfleet: note: swin attends through a sliding window of 4096 tokens' $T/swr.err"
"$KV" run --no-db --limit 5 --model "$T/swoff/config.json" >/dev/null 2>"$T/swo.err"
check "run, use_sliding_window false: no note" "[ $? -eq 0 ] && ! grep -q 'sliding' $T/swo.err"

# --policy belady reads the trace twice (once ahead, for the oracle): a
# pipe is refused before either read, not reported empty at line 1 by the
# second; a single-pass policy still reads it, and /dev/stdin redirected
# from a regular file can be read twice
head -n 100 "$srcdir/data/traces/mooncake_synthetic.jsonl" >"$T/mc.jsonl"
head -n 100 "$srcdir/data/traces/mooncake_synthetic.jsonl" | "$KV" run --trace /dev/stdin --no-db --policy belady >/dev/null 2>"$T/bp.err"
check "run --policy belady on a pipe: exit 1, saying why" \
    "[ $? -eq 1 ] && grep -qx -- 'kvfleet run: /dev/stdin: --policy belady reads the trace twice (once ahead, for the oracle): expected a regular file, got a pipe' $T/bp.err"
head -n 100 "$srcdir/data/traces/mooncake_synthetic.jsonl" | "$KV" run --trace /dev/stdin --no-db --policy lru --json >"$T/lp.json" 2>/dev/null
check "run --policy lru on a pipe: exit 0, every request" "[ $? -eq 0 ] && grep -q '\"requests\": 100,' $T/lp.json"
"$KV" run --trace /dev/stdin --no-db --policy belady --json <"$T/mc.jsonl" >"$T/bf.json" 2>/dev/null
check "run --policy belady, /dev/stdin from a regular file: exit 0" \
    "[ $? -eq 0 ] && grep -q '\"requests\": 100,' $T/bf.json"

# --name=value in every command, the same as --name value
"$KV" predict --model llama-3-8b --gpu h100-sxm --decode 8@1024 --json >"$T/eq1.json" 2>&1
"$KV" predict --model=llama-3-8b --gpu=h100-sxm --decode=8@1024 --json >"$T/eq2.json" 2>&1
check "predict --model=M: exit 0, the same JSON as --model M" \
    "[ $? -eq 0 ] && cmp -s $T/eq1.json $T/eq2.json && grep -q step_s $T/eq1.json"
"$KV" trace stats --limit=50 --json "$T/small.csv" >"$T/eq3.json" 2>&1
check "trace stats --limit=50: exit 0, 50 requests" \
    "[ $? -eq 0 ] && grep -q '\"requests\": 50,' $T/eq3.json"
"$KV" predict --model=no-such-model --gpu h100-sxm --decode 8@1024 >/dev/null 2>"$T/eq4.err"
check "predict --model=unknown: exit 1, names it" "[ $? -eq 1 ] && grep -q no-such-model $T/eq4.err"
# a flag that takes no value, given one after '=', is a usage error naming
# it, in every command (predict --json=true read 'true' as the next word,
# query --csv=x read x as the results file): every flag of every command
for c in "run|--help -h --json --no-db" "|--help --json --no-db" \
    "rerun $T/none.db 1|--help --json --no-db" "validate|--help -h --json --no-db" \
    "capacity|--help -h --json --quiet --no-db" "predict|--help --json" "trace stats|--help --json" \
    "calibrate|--help -h --json" "profile|--help -h --json --dry-run" \
    "cache-replay|--help -h --json" "sweep|--help -h --dry-run --quiet --retry-failed" \
    "query|--help -h --csv --all-columns" "plot $T/none.db|--help -h --quiet" \
    "collective|--help -h --json"; do
    cmd=${c%%|*}
    who=${cmd%% /*}
    for f in ${c#*|}; do
        # shellcheck disable=SC2086 # the command's words
        "$KV" $cmd "$f=true" >"$T/fv.out" 2>"$T/fv.err"
        check "${who:-(no command)} $f=true: exit 2, naming the flag" \
            "[ $? -eq 2 ] && [ ! -s $T/fv.out ] && [ \"\$(cat $T/fv.err)\" = \"kvfleet ${who:-run}: $f: expected no value, got '$f=true'\" ]"
    done
done
"$KV" predict --decode 8@1024 --json= >"$T/fv.out" 2>"$T/fv.err"
check "predict --json= (empty): exit 2, naming the flag" \
    "[ $? -eq 2 ] && [ \"\$(cat $T/fv.err)\" = \"kvfleet predict: --json: expected no value, got '--json='\" ]"
# run's true|false options take a value: they are not flags
"$KV" run --no-db --synthetic "poisson,rate=20,requests=10,isl=5,osl=5" --chunked-prefill=false \
    --json >"$T/fv.json" 2>/dev/null
check "run --chunked-prefill=false: exit 0 (an option of true|false, not a flag)" \
    "[ $? -eq 0 ] && grep -q '\"requests\": 10,' $T/fv.json"

# a header-only trace: exit 0, nothing simulated, a warning that says so
head -n 1 "$T/small.csv" >"$T/hdr.csv"
"$KV" run --trace "$T/hdr.csv" --no-db --json >"$T/hdr.json" 2>"$T/hdr.err"
check "header-only trace: exit 0, 0 requests, a warning naming the file" \
    "[ $? -eq 0 ] && grep -q '\"requests\": 0,' $T/hdr.json && grep -q 'hdr.csv gave no requests' $T/hdr.err"

# a changed copy of a preset that keeps the preset's name is refused (it
# would get the preset's calibration); an unchanged copy and a renamed one run
cp "$srcdir/data/gpus/h100-sxm.json" "$T/h100copy.json"
sed 's/^  "hbm_bw": [0-9.e]*,/  "hbm_bw": 8e12,/' "$T/h100copy.json" >"$T/b200.json"
sed 's/"name": *"h100-sxm"/"name": "b200"/' "$T/b200.json" >"$T/b200n.json"
"$KV" run --no-db --limit 3 --gpu "$T/b200.json" >/dev/null 2>"$T/b200.err"
check "GPU file with a preset's name and other numbers: exit 1, names the field" \
    "[ $? -eq 1 ] && grep -q 'b200.json: name: .*hbm_bw differs' $T/b200.err"
"$KV" run --no-db --limit 3 --gpu "$T/h100copy.json" >/dev/null 2>&1
check "an unchanged copy of a preset: exit 0" "[ $? -eq 0 ]"
"$KV" run --no-db --limit 3 --gpu "$T/b200n.json" --json >"$T/b200n.out" 2>/dev/null
check "the changed copy under its own name: exit 0, reported by that name" \
    "[ $? -eq 0 ] && grep -q '\"gpu\": \"b200\"' $T/b200n.out"

# --policy none takes no parameters, and an unknown policy lists none with
# the eviction policies (none:x=1 listed them all but none)
SYN5="poisson,rate=20,requests=10,isl=5,osl=5"
"$KV" run --no-db --synthetic "$SYN5" --policy none:x=1 >"$T/pn.out" 2>"$T/pn.err"
check "run --policy none:x=1: exit 1, none takes no parameters" \
    "[ $? -eq 1 ] && [ ! -s $T/pn.out ] && [ \"\$(cat $T/pn.err)\" = \"kvfleet run: --policy: none: parameter: expected none (none takes no parameters), got 'x'\" ]"
"$KV" run --no-db --synthetic "$SYN5" --policy nope >/dev/null 2>"$T/pn.err"
check "run --policy nope: exit 1, the list starts with none" \
    "[ $? -eq 1 ] && [ \"\$(cat $T/pn.err)\" = \"kvfleet run: --policy: policy: expected one of none, lru, lfu, fifo, ttl, gdsf, s3fifo, arc, session, belady, got 'nope'\" ]"
"$KV" run --no-db --synthetic "$SYN5" --policy none --json >"$T/pn.json" 2>/dev/null
check "run --policy none: exit 0" "[ $? -eq 0 ] && grep -q '\"requests\": 10,' $T/pn.json"

# a multimodal config.json with the language model under text_config loads
# (it failed: num_hidden_layers missing); one with neither names the key
MM="$srcdir/tests/data/mm_text_config.json"
"$KV" predict --model "$MM" --decode 8@1024 --json >"$T/mm.json" 2>"$T/mm.err"
check "predict --model a text_config config: exit 0" "[ $? -eq 0 ] && grep -q '\"step_s\": ' $T/mm.json"
"$KV" run --model "$MM" --no-db --synthetic "$SYN5" --json >"$T/mm.json" 2>"$T/mm.err"
check "run --model a text_config config: exit 0, named by its file" \
    "[ $? -eq 0 ] && grep -q '\"model\": \"mm_text_config\"' $T/mm.json"
"$KV" predict --model "$srcdir/tests/data/mm_no_text_config.json" --decode 8@1024 >/dev/null 2>"$T/mm.err"
check "predict --model a config with no language model: exit 1, names the missing key" \
    "[ $? -eq 1 ] && [ \"\$(cat $T/mm.err)\" = \"kvfleet predict: $srcdir/tests/data/mm_no_text_config.json: num_hidden_layers: expected a positive integer, got nothing (missing key)\" ]"

# a pool's notes, each once, on stderr, in full (rt_pool_setup keeps them
# for the run to print)
"$KV" run --no-db --model tiny --kv-blocks 100000000 --synthetic "$SYN5" >/dev/null 2>"$T/note.err"
check "run --kv-blocks beyond the HBM: exit 0, one note naming the fit" \
    "[ $? -eq 0 ] && [ \"\$(cat $T/note.err)\" = \"kvfleet: note: --kv-blocks 100000000 is more than the 2330995 blocks that fit h100-sxm's HBM next to the weights: a hypothetical pool\" ]"
"$KV" run --no-db --model tiny --backend cpu --synthetic "$SYN5" >/dev/null 2>"$T/note.err"
check "run --backend cpu: exit 0, one note on the CPU executor's pool" \
    "[ $? -eq 0 ] && [ \"\$(cat $T/note.err)\" = \"kvfleet: note: --backend cpu holds at most 8192 KV blocks per replica (256 MiB of fp32 KV); using that, not the 2330995 of h100-sxm\" ]"

# a follow-up request past the horizon: the time to the nanosecond, and a
# closed loop's named as such (it said 'session -1, turn 0' and 1e9 s)
printf 'session_id,turn,start_s,think_s,prompt_tokens,output_tokens\n7,1,10,0,100,50\n7,2,10,1000000000,20,30\n' >"$T/se16.csv"
"$KV" run --trace "$T/se16.csv" --no-db >/dev/null 2>"$T/se16.err"
check "a session turn past the horizon: exit 1, its time to the nanosecond" \
    "[ $? -eq 1 ] && grep -q '^kvfleet run: session 7, turn 2: expected an arrival at most 1e9 s after the first (the simulator.s horizon), got 1000000000\.[0-9]\{9\} s' $T/se16.err"
"$KV" run --synthetic 'closed,concurrency=1,isl=1,osl=1,requests=3000,jitter=1e6' --no-db --timeline-s 0 >/dev/null 2>"$T/cl.err"
check "a closed loop past the horizon: exit 1, named as a closed loop" \
    "[ $? -eq 1 ] && grep -q '^kvfleet run: closed loop: expected its next request at most 1e9 s after the first' $T/cl.err"

# a malformed line in a file whose path is longer than 255 bytes: the
# message names the whole path (it was cut at 255)
LP="$T/$(printf 'd%.0s' $(seq 120))/$(printf 'e%.0s' $(seq 120))"
mkdir -p "$LP"
printf 'TIMESTAMP,ContextTokens,GeneratedTokens\n0,abc,5\n' >"$LP/bad_trace.csv"
"$KV" trace stats "$LP/bad_trace.csv" >/dev/null 2>"$T/lp.err"
check "a long path: exit 1, the message names it whole" \
    "[ $? -eq 1 ] && [ \"\$(cat $T/lp.err)\" = \"kvfleet trace stats: $LP/bad_trace.csv:2:2: ContextTokens: expected a positive integer, got 'abc'\" ]"

# head counts near 2^31: refused when the QKV width outgrows an int (its
# sum overflowed: a negative activation reserve, or a pool that blamed
# --kv-blocks)
printf '{"hidden_size":1,"num_attention_heads":2147483647,"num_key_value_heads":1,"head_dim":1,"intermediate_size":1,"num_hidden_layers":1,"vocab_size":1,"max_position_embeddings":8192,"torch_dtype":"bfloat16"}\n' >"$T/ovf1.json"
"$KV" run --model "$T/ovf1.json" --no-db --synthetic "$SYN5" >/dev/null 2>"$T/ovf.err"
check "2^31-1 heads: exit 1, the QKV width named" \
    "[ $? -eq 1 ] && [ \"\$(cat $T/ovf.err)\" = \"kvfleet run: $T/ovf1.json: num_attention_heads: expected (num_attention_heads + 2 x num_key_value_heads) x head_dim, the QKV projection's width, at most 2147483647, got (2147483647 + 2 x 1) x 1\" ]"
# a model with next to no KV per token: the derived pool capped at 2^31-1
# blocks, with a note (it was refused as a --kv-blocks never given)
printf '{"hidden_size":2,"num_attention_heads":1,"num_key_value_heads":1,"head_dim":1,"intermediate_size":1,"num_hidden_layers":1,"vocab_size":1,"max_position_embeddings":8192,"torch_dtype":"bfloat16"}\n' >"$T/small.json"
"$KV" run --model "$T/small.json" --block-tokens 1 --no-db --synthetic "$SYN5" --json >"$T/small.out" 2>"$T/small.err"
check "more blocks fit than a pool holds: exit 0, 2147483647 blocks, a note" \
    "[ $? -eq 0 ] && grep -q '\"kv_blocks\": 2147483647' $T/small.out && grep -q '^kvfleet: note: the 19107911002 KV blocks that fit h100-sxm are more than a pool holds; using 2147483647' $T/small.err"

# a missing value does not take the next flag (--db --no-db wrote a file
# named --no-db, sweep --db --dry-run ran the sweep into one), and --db ''
# (an unset variable) is refused, not a run that keeps nothing
mkdir -p "$T/mv"
(cd "$T/mv" && "$KVA" run --limit 5 --db --no-db >/dev/null 2>"$T/mv.err"; echo $? >"$T/mv.rc")
check "run --db --no-db: usage error 2, no file" \
    "[ \$(cat $T/mv.rc) -eq 2 ] && [ \"\$(cat $T/mv.err)\" = 'kvfleet run: --db: expected a string, got nothing' ] && [ -z \"\$(ls -A $T/mv)\" ]"
(cd "$T/mv" && "$KVA" sweep "$srcdir/tests/data/sweep/grid.json" --db --dry-run >/dev/null 2>"$T/mv.err"; echo $? >"$T/mv.rc")
check "sweep --db --dry-run: usage error 2, no file" \
    "[ \$(cat $T/mv.rc) -eq 2 ] && [ \"\$(cat $T/mv.err)\" = 'kvfleet sweep: --db: expected a value, got nothing' ] && [ -z \"\$(ls -A $T/mv)\" ]"
for sub in "predict --model" "calibrate --gpu" "plot x.db --kind" "trace stats --synthetic"; do
    "$KV" $sub --json >/dev/null 2>&1
    check "$sub --json: the flag is not taken as the value, usage error 2" "[ $? -eq 2 ]"
done
(cd "$T/mv" && "$KVA" run --limit 5 --db=--x.db --json >/dev/null 2>&1; echo $? >"$T/mv.rc")
check "run --db=--x.db: a file so named, written" "[ \$(cat $T/mv.rc) -eq 0 ] && [ -s $T/mv/--x.db ]"
"$KV" run --limit 5 --db "" >/dev/null 2>"$T/mv.err"
check "run --db '': exit 1, says --no-db writes none" \
    "[ $? -eq 1 ] && [ \"\$(cat $T/mv.err)\" = \"kvfleet run: --db: expected a file (--no-db writes none), got ''\" ]"

# a results file this user may not write, or one in such a folder: bad
# input (exit 1) before the run, not a runtime failure at the first row
# (exit 3). Permissions bind only a user other than root: as root, the run
# is checked as nobody where setpriv can make it so.
AS=""
if [ "$(id -u)" -ne 0 ]; then
    AS=" "
elif command -v setpriv >/dev/null 2>&1 &&
    setpriv --reuid=65534 --regid=65534 --clear-groups "$KVA" --version >/dev/null 2>&1; then
    AS="setpriv --reuid=65534 --regid=65534 --clear-groups"
fi
if [ -n "$AS" ]; then
    chmod 711 "$T" && mkdir -p "$T/ro/dir" && chmod 777 "$T/ro"
    "$KV" run --limit 3 --db "$T/ro/r.db" >/dev/null 2>&1
    cp "$T/ro/r.db" "$T/ro/dir/w.db" && chmod 666 "$T/ro/dir/w.db"
    chmod 444 "$T/ro/r.db" && chmod 555 "$T/ro/dir"
    $AS "$KVA" run --limit 3 --db "$T/ro/r.db" >/dev/null 2>"$T/ro.err"
    check "run --db a write-protected file: exit 1, says so" \
        "[ $? -eq 1 ] && grep -q 'results file: expected a file this user may write, got a write-protected one' $T/ro.err"
    $AS "$KVA" run --limit 3 --db "$T/ro/dir/w.db" >/dev/null 2>"$T/ro.err"
    check "run --db a file in a write-protected folder: exit 1, names the folder" \
        "[ $? -eq 1 ] && grep -q 'results file: expected a folder this user may write (SQLite keeps its journal beside the file), got a write-protected $T/ro/dir' $T/ro.err"
    # a link in a write-protected folder to a file in a writable one: SQLite
    # writes beside the target, so it is taken (sweep passes --db as given)
    mkdir -p "$T/ro/w" "$T/ro/l" && chmod 777 "$T/ro/w" && cp "$T/ro/dir/w.db" "$T/ro/w/t.db" &&
        chmod 666 "$T/ro/w/t.db" && ln -s ../w/t.db "$T/ro/l/link.db" && chmod 555 "$T/ro/l"
    $AS "$KVA" sweep "$srcdir/tests/data/sweep/grid.json" --db "$T/ro/l/link.db" --quiet >/dev/null 2>"$T/ro.err"
    check "sweep --db a link in a write-protected folder to a writable file: exit 0" "[ $? -eq 0 ]"
    chmod 755 "$T/ro/dir" "$T/ro/l"
else
    echo "# skipped: write-protected results files (root without setpriv)"
fi

# fractions stay in 0..1 (busy_frac summed step by step read
# 1.0000000000000002 on a replica that never idled)
"$KV" run --db "$T/bf.db" --limit 2000 --load-scale 20 --kv-blocks 2000 --max-queue 5 >/dev/null 2>&1
check "a saturated replica: busy_frac at most 1, in the summary and every timeline row" \
    "[ $? -eq 0 ] && [ \"\$(sqlite3 $T/bf.db 'SELECT busy_frac <= 1 AND busy_frac > 0.99 FROM summary')\" = 1 ] &&
     [ \"\$(sqlite3 $T/bf.db 'SELECT count(*) FROM timeline WHERE busy_frac > 1 OR kv_util_mean > 1')\" = 0 ]"
# -h is help in every command
for sub in predict rerun "trace stats" trace; do
    "$KV" $sub -h >"$T/h.out" 2>&1
    check "$sub -h: help, exit 0" "[ $? -eq 0 ] && grep -q '^usage: kvfleet' $T/h.out"
done
# stored paths re-run from any folder: --replay's results file, and a
# fleet pool's options (a calibration file given relative)
mkdir -p "$T/rp/sub" && cp "$srcdir/data/calib/h100-sxm.json" "$T/rp/sub/cal.json"
printf '%s' '{"regions":{"r":{"gpus":{"h100-sxm":16}}},"pools":[{"name":"c","region":"r","model":"tiny","gpu":"h100-sxm","replicas":2,"options":{"calibration":"cal.json"}}]}' >"$T/rp/sub/fl.json"
(cd "$T/rp/sub" && "$KVA" run --db ../fl.db --fleet fl.json --synthetic "$SYN5" >/dev/null 2>&1 &&
    "$KVA" run --db ../v.db --synthetic "$SYN5" --model tiny >/dev/null 2>&1 &&
    "$KVA" rerun ../v.db 1 --backend replay --replay ../v.db:1 >/dev/null 2>&1)
(cd / && "$KVA" rerun "$T/rp/fl.db" 1 >/dev/null 2>"$T/rp.err")
check "a fleet pool's relative calibration option: its run re-runs from /" "[ $? -eq 0 ]"
check "--replay DB:RUN_ID stored with its DB absolute" \
    "[ \"\$(sqlite3 $T/rp/v.db \"SELECT json_extract(config, '\\\$.replay') FROM runs WHERE run_id = 2\")\" = \"\$(cd $T/rp && pwd -P)/v.db:1\" ]"
(cd / && "$KVA" rerun "$T/rp/v.db" 2 >/dev/null 2>"$T/rp.err")
check "a replay run re-runs from /" "[ $? -eq 0 ]"

# peak_mem_bytes is each run's own: validate's sim run after its cpu run
# (380 MB of fp32 weights and KV) reported the cpu run's peak
"$KV" validate --backend cpu --model tiny --limit 5 --db "$T/pm.db" >/dev/null 2>&1
check "validate: the sim run's peak_mem_bytes is its own, under a tenth of the cpu run's" \
    "[ \"\$(sqlite3 $T/pm.db \"SELECT (SELECT peak_mem_bytes FROM summary JOIN runs USING (run_id) WHERE kind = 'run') * 10 < (SELECT peak_mem_bytes FROM summary JOIN runs USING (run_id) WHERE kind = 'validate')\")\" = 1 ]"

# an option given twice: its last value counts and the earlier is not
# read at all (a bad earlier value was refused)
"$KV" run --no-db --synthetic "$SYN5" --tp abc --tp 1 --seed 99999999999999999999 --seed 1 --json >/dev/null 2>&1
check "run --tp abc --tp 1 --seed HUGE --seed 1: exit 0" "[ $? -eq 0 ]"
"$KV" run --no-db --synthetic "$SYN5" --tp 1 --tp abc >/dev/null 2>&1
check "run --tp 1 --tp abc: the last value is read, usage error 2" "[ $? -eq 2 ]"

# a file name that is not UTF-8 (a Linux name need not be): refused as bad
# input where it would go into JSON, not "expected ?" (exit 2) or "out of
# memory" (exit 3); trace stats without --json reads the file
NU="$T/$(printf 'lat\351.csv')"
printf 'TIMESTAMP,ContextTokens,GeneratedTokens\n0,10,5\n' >"$NU"
"$KV" run --trace "$NU" --no-db >/dev/null 2>"$T/nu.err"
check "run --trace a non-UTF-8 name: exit 1, says UTF-8" \
    "[ $? -eq 1 ] && grep -q '^kvfleet run: --trace: expected text in UTF-8 (the results file stores every option as JSON text), got ' $T/nu.err"
"$KV" trace stats "$NU" --json >/dev/null 2>"$T/nu.err"
check "trace stats --json on a non-UTF-8 name: exit 1, says UTF-8" \
    "[ $? -eq 1 ] && grep -q ': --json: expected a file name in UTF-8 (JSON text), got one that is not' $T/nu.err"
"$KV" trace stats "$NU" >"$T/nu.out" 2>&1
check "trace stats on a non-UTF-8 name: exit 0, one request" "[ $? -eq 0 ] && grep -q '^requests  *1\$' $T/nu.out"

# trace stats refuses a follow-up past the horizon even at its earliest
# (it reported a lower-bound duration, exit 0, for a file run refuses)
printf 'session_id,turn,start_s,think_s,prompt_tokens,output_tokens\n7,1,0,0,100,50\n7,2,0,600000000,20,30\n7,3,0,600000000,20,30\n' >"$T/se17.csv"
"$KV" trace stats "$T/se17.csv" >/dev/null 2>"$T/se17.err"
check "trace stats: turns past the horizon at their earliest: exit 1, naming the turn" \
    "[ $? -eq 1 ] && [ \"\$(cat $T/se17.err)\" = \"kvfleet trace stats: session 7, turn 3: expected an arrival at most 1e9 s after the first (the simulator's horizon), got at least 1200000000.000000000 s (the think times of the trace or --synthetic spec)\" ]"

# --no-db after --db '' is the later --db: the '' is not read
"$KV" run --no-db --synthetic "$SYN5" --db '' --no-db >/dev/null 2>&1
check "run --db '' --no-db: exit 0" "[ $? -eq 0 ]"
"$KV" trace stats --synthetic --json >/dev/null 2>"$T/ts.err"
check "trace stats --synthetic --json: usage error 2, the value missing" \
    "[ $? -eq 2 ] && [ \"\$(cat $T/ts.err)\" = 'kvfleet trace stats: --synthetic: expected a value, got nothing' ]"
"$KV" sweep "$srcdir/tests/data/sweep/grid.json" --db "$T/$(printf 'r\351.db')" --quiet >/dev/null 2>"$T/sw.err"
check "sweep --db a non-UTF-8 name: exit 1, says UTF-8, writes nothing" \
    "[ $? -eq 1 ] && grep -q 'kvfleet sweep: --db: expected text in UTF-8' $T/sw.err && [ ! -e $T/kvfleet.db ]"

# an empty element in calibrate's --model list is refused (tiny,,tiny was
# taken as two models, as capacity's lists already refuse it)
"$KV" calibrate --gpu h100-sxm --model 'tiny,,tiny' --check "$srcdir/data/calib/h100-sxm.json" >/dev/null 2>"$T/cm.err"
check "calibrate --model tiny,,tiny: usage error 2, quoted whole" \
    "[ $? -eq 2 ] && [ \"\$(cat $T/cm.err)\" = \"kvfleet calibrate: --model: expected comma-separated model names, none empty, got 'tiny,,tiny'\" ]"

echo "$((n - fails)) passed, $fails failed"
tap_end
