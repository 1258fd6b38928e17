#!/bin/sh
# test_capacity.sh: `kvfleet capacity` end to end: the size it reports meets
# every SLO and one replica fewer does not (checked against the stored
# runs), more load never needs fewer GPUs here, a TP that cannot hold the
# model is skipped with its reason, the figure is drawn (a missing gnuplot
# is only a warning), and bad SLOs are refused.
set -u
. "$srcdir/tests/tap.sh"
tap_tmp cap
tap_need sqlite3
q() { sqlite3 "$T/c.db" "$1"; }
TRACE="$srcdir/data/traces/azure_conv_2023.csv"

KVFLEET_GNUPLOT=/nonexistent/gnuplot "$KV" capacity --trace "$TRACE" --limit 1500 \
    --load-scale 4,8,16 --tp 1,2 --slo 'ttft_p99=1s,tpot_p99=40ms,reject=0.1%' \
    --db "$T/c.db" --plot "$T/c.png" --json --quiet >"$T/c.json" 2>"$T/c.err"
check "capacity exits 0 without gnuplot (a warning only)" "[ $? -eq 0 ] && grep -q 'warning' $T/c.err"
check "JSON has replicas, gpus, tp and the SLO figures" \
    "for k in replicas gpus tp ttft_p99_s tpot_p99_s reject_rate answers; do grep -q \"\\\"\$k\\\":\" $T/c.json || exit 1; done"
check "one answer per load" "[ \"\$(q 'SELECT COUNT(*) FROM capacity WHERE replicas IS NOT NULL')\" = 3 ]"
check "every answer meets the SLOs in its stored run" \
    "[ \"\$(q 'SELECT COUNT(*) FROM capacity c JOIN summary s ON s.run_id = c.run_id WHERE s.ttft_p99_s <= 1 AND s.tpot_p99_s <= 0.04 AND s.rejected <= 0.001 * s.requests')\" = 3 ]"
check "one replica fewer misses (or the answer is one replica)" \
    "[ \"\$(q 'SELECT COUNT(*) FROM capacity_by_tp b WHERE b.found = 1 AND (b.replicas = 1 OR EXISTS (SELECT 1 FROM capacity_points p WHERE p.search_id = b.search_id AND p.load_scale = b.load_scale AND p.tp = b.tp AND p.replicas = b.replicas - 1 AND p.meets = \"[0]\"))')\" = \"\$(q 'SELECT COUNT(*) FROM capacity_by_tp WHERE found = 1')\" ]"
check "the best TP is the fewest GPUs among the TPs" \
    "[ \"\$(q 'SELECT COUNT(*) FROM capacity c WHERE c.gpus > (SELECT MIN(gpus) FROM capacity_by_tp b WHERE b.found = 1 AND b.load_scale = c.load_scale)')\" = 0 ]"
check "more load never needs fewer GPUs (this trace)" \
    "[ \"\$(q 'SELECT COUNT(*) FROM capacity a, capacity b WHERE a.load_scale < b.load_scale AND a.gpus > b.gpus')\" = 0 ]"
check "points are stored runs (kind capacity-point, done)" \
    "[ \"\$(q 'SELECT COUNT(*) FROM capacity_points p JOIN runs r ON r.run_id = p.run_id WHERE r.kind = \"capacity-point\" AND r.status = \"done\"')\" = \"\$(q 'SELECT COUNT(*) FROM capacity_points')\" ]"

if command -v gnuplot >/dev/null 2>&1; then
    "$KV" capacity --trace "$TRACE" --limit 500 --load-scale 4 --slo ttft_p99=1s --db "$T/c.db" \
        --plot "$T/d.png" --quiet >/dev/null 2>&1
    check "the curve is a PNG" "[ \"\$(head -c 8 $T/d.png | od -An -tx1 | tr -d ' \n')\" = 89504e470d0a1a0a ]"
else
    ok "the curve is a PNG # SKIP gnuplot not installed"
fi

# a TP that cannot hold the model is skipped, naming why; the others answer
"$KV" capacity --model llama-3-70b --trace "$TRACE" --limit 200 --tp 1,4 --slo ttft_p99=5s \
    --no-db --quiet >"$T/t.out" 2>"$T/t.err"
check "TP1 of a 70B model skipped with its reason, TP4 answered" \
    "[ $? -eq 0 ] && grep -q 'TP1' $T/t.err && grep -q 'infeasible' $T/t.err && grep -Eq ' 4 +[0-9]+ +[0-9]+ ' $T/t.out"

# a pipelined replica counts its tp x pp GPUs
"$KV" capacity --model llama-3-70b --tp 2 --pp 2 --trace "$TRACE" --limit 200 --slo ttft_p99=5s \
    --no-db --quiet --json >"$T/pp.json" 2>/dev/null
check "--pp 2 --tp 2: GPUs = replicas x 4" \
    "r=\$(sed -n 's/^  \"replicas\": \\([0-9]*\\),/\\1/p' $T/pp.json); g=\$(sed -n 's/^  \"gpus\": \\([0-9]*\\),/\\1/p' $T/pp.json); [ -n \"\$r\" ] && [ \"\$g\" = \$((r * 4)) ]"

# refusals
"$KV" capacity --no-db >/dev/null 2>&1
check "no --slo: usage error (exit 2)" "[ $? -eq 2 ]"
for s in 'ttft_p98=1s' 'ttft_p99=1h' 'reject=150%' 'ttft_p99' 'tpot_p99=-1ms'; do
    "$KV" capacity --slo "$s" --no-db >/dev/null 2>"$T/s.err"
    check "bad SLO '$s' refused (exit 2, names --slo)" "[ $? -eq 2 ] && grep -q -- '--slo' $T/s.err"
done
"$KV" capacity --slo ttft_p99=1s --tp 0,2 --no-db >/dev/null 2>"$T/tp.err"
check "bad --tp list refused (exit 2)" "[ $? -eq 2 ] && grep -q -- '--tp' $T/tp.err"
for o in '--load-scale x' '--load-scale nan' '--max-replicas 0' '--tp inf'; do
    # shellcheck disable=SC2086
    "$KV" capacity --slo ttft_p99=1s $o --no-db >/dev/null 2>"$T/o.err"
    check "capacity $o: exit 2 naming the option" "[ $? -eq 2 ] && grep -q -- '${o%% *}' $T/o.err"
done
"$KV" capacity --slo ttft_p99=1ms --limit 100 --max-replicas 2 --no-db --quiet >"$T/none.out" 2>/dev/null
check "an SLO no size meets: says so, exit 1" "[ $? -eq 1 ] && grep -q 'none up to 2 replicas' $T/none.out"

tap_end
