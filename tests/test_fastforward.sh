#!/bin/sh
# test_fastforward.sh: decode runs (--fast-forward true, the default) against
# one step at a time (false) on a fixed table of varied configurations:
# replicas and routers, eviction policies, host tier, swap preemption, TP and
# PP, engine policies, closed loops, sessions and the Mooncake trace. Request,
# step and timeline rows and the summary must be identical, bit for bit
# (sim_events aside: counting events is what runs change). Some cases write
# no step rows or one in N, so that runs take both of their paths. Every
# case must take strictly fewer events with runs, so that each one runs
# some (closed-sglang's outputs vary in length: two replicas of identical
# requests step in lockstep, and a replica forms no run while another's step
# ends at the same instant). closed-lockstep-lot: replicas in lock step end
# steps at the same instants, where the order their steps complete in
# decides which replica the released requests go to. The -rr-lookahead
# cases route round robin over many replicas, where the stream is read
# ahead and a run is planned up to its replica's next request; the -rr
# cases with sessions and a closed loop must not be read ahead (ids and
# lengths follow the order requests are asked for: they differed).
set -u
. "$srcdir/tests/tap.sh"
tap_tmp ff
tap_need sqlite3
D="$srcdir/data/traces"
P='poisson,rate=40,requests=1500,isl=lognormal(mean=900;sigma=1.0),osl=lognormal(mean=150;sigma=1.0)'

# a disaggregated decode pool without chunked prefill: a request arrives
# with its KV and takes one token to admit (a run was planned past it, and
# its last step aborted on an assertion)
cat >"$T/dis-nochunk.json" <<'FLEET'
{"regions": {"r": {"gpus": {"h100-sxm": 2}}},
 "pools": [
  {"name": "pre", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "role": "prefill"},
  {"name": "dec", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "role": "decode",
   "options": {"chunked-prefill": false, "max-batched-tokens": 32, "max-num-seqs": 4}}]}
FLEET

# two pools, one with a queue time limit: a closed loop's request that a
# timeout releases at a step boundary reaches a replica whose run has a
# step ending at that instant; one step at a time, that replica formed its
# next step first (its step end came first), so the step's waiting count
# left the new request out (it differed with runs on, 2026-11-26)
cat >"$T/qt.json" <<'FLEET'
{"regions": {"zz": {"gpus": {"h100-sxm": 6}}},
 "pools": [{"name": "p0", "region": "zz", "model": "tiny", "gpu": "h100-sxm", "replicas": 3, "options": {"kv-blocks": 40}},
           {"name": "p1", "region": "zz", "model": "tiny", "gpu": "h100-sxm", "replicas": 3,
            "options": {"kv-blocks": 40, "max-queue-time": 0.5}}],
 "router": "round-robin"}
FLEET

# name|options (split on spaces; no option value holds one)
cat >"$T/cases" <<CASES
azure-x8-1rep|--load-scale 8
azure-x8-1rep-no-step-rows|--load-scale 8 --steps-sample 0
azure-x16-4rep-lo|--load-scale 16 --replicas 4 --router least-outstanding --steps-sample 7
azure-x16-4rep-lo-no-step-rows|--limit 3000 --load-scale 16 --replicas 4 --router least-outstanding --steps-sample 0
poisson-7rep-leastkv-s3fifo|--synthetic $P --replicas 7 --router least-kv --policy s3fifo --max-num-seqs 64 --steps-sample 0
poisson-2rep-swap|--synthetic $P --replicas 2 --kv-blocks 600 --preemption swap --swap-space-gib 2 --max-num-seqs 256
mooncake-host-tier|--trace $D/mooncake_synthetic.jsonl --limit 800 --replicas 2 --router prefix --host-cache-gib 4 --kv-blocks 3000
mooncake-arc-pp2|--trace $D/mooncake_synthetic.jsonl --limit 800 --load-scale 0.25 --policy arc --pp 2
sessions-session-router|--trace $D/sessions_example.csv --replicas 3 --router session --policy lru --steps-sample 0
closed-tp2-70b|--synthetic closed,concurrency=16,isl=1000,osl=200,requests=400 --tp 2 --model llama-3-70b
closed-sglang|--synthetic closed,concurrency=64,isl=128,osl=lognormal(mean=200;sigma=0.5),requests=600 --sched-policy sglang --replicas 2 --steps-sample 5
closed-trtllm-nochunk|--synthetic closed,concurrency=4,isl=3000,osl=16,requests=600 --sched-policy trtllm --chunked-prefill false
poisson-small-pool-check|--synthetic $P --kv-blocks 600 --max-num-seqs 8 --check true
poisson-3rep-check-no-step-rows|--synthetic $P --replicas 3 --steps-sample 0 --check true
poisson-16rep-rr-lookahead|--synthetic $P --replicas 16 --steps-sample 3
azure-x16-5rep-rr-lookahead|--limit 3000 --load-scale 16 --replicas 5 --steps-sample 0
sessions-2rep-rr|--model tiny --replicas 2 --seed 1 --synthetic sessions,rate=200,turns=5,think=0,isl=16,osl=4,sessions=60
closed-2rep-rr-lognormal|--model tiny --replicas 2 --seed 52 --kv-blocks 50 --max-batched-tokens 512 --max-num-seqs 16 --synthetic closed,concurrency=16,isl=lognormal(mean=300;sigma=1;max=3000),osl=lognormal(mean=20;sigma=1),requests=64
disagg-decode-nochunk|--fleet $T/dis-nochunk.json --synthetic poisson,rate=100,requests=20,isl=30,osl=50
closed-timeout-release-2pools|--fleet $T/qt.json --synthetic closed,concurrency=64,isl=200,osl=400,requests=193 --seed 184 --steps-sample 1
disagg-1p2d|--fleet $srcdir/experiments/fleets/disagg-1p2d.json --load-scale 8 --limit 1500
closed-lockstep-lot|--synthetic closed,concurrency=17,isl=100,osl=20,requests=300 --replicas 3 --router least-outstanding --max-num-seqs 4
CASES

rows() { # db: every row the run wrote, in a fixed order, and the summary at full precision
    sqlite3 "$1" "SELECT * FROM requests ORDER BY id" "SELECT * FROM steps ORDER BY replica, step" \
        "SELECT * FROM timeline ORDER BY replica, t_s"
    sqlite3 -line "$1" "SELECT * FROM summary" |
        grep -v -E '^ *(wall_s|sim_events|peak_mem_bytes|peak_rss_bytes) = '
}
while IFS='|' read -r name opts; do
    for ff in true false; do
        # shellcheck disable=SC2086
        "$KV" run --json --db "$T/$ff.db" --timeline-s 0.5 --fast-forward $ff $opts \
            >"$T/$ff.json" 2>"$T/$ff.err"
        echo $? >"$T/$ff.rc"
        sed -n 's/^ *"sim_events": \([0-9]*\),*$/\1/p' "$T/$ff.json" | sed "s/^/# $name $ff events /"
        grep -v -E '"(wall_s|peak_rss_bytes|peak_mem_bytes|sim_events|run_id|db|fast-forward)"' \
            "$T/$ff.json" >"$T/$ff.sum"
    done
    check "$name: both runs succeed" "[ \"\$(cat $T/true.rc)\$(cat $T/false.rc)\" = 00 ]"
    check "$name: identical rows" \
        "rows $T/true.db >$T/true.rows && rows $T/false.db >$T/false.rows && [ -s $T/true.rows ] && cmp -s $T/true.rows $T/false.rows"
    check "$name: identical summary" "[ -s $T/true.sum ] && cmp -s $T/true.sum $T/false.sum"
    check "$name: the timeline's tokens and completions add up to the summary's" \
        "[ \"\$(sqlite3 $T/true.db 'SELECT (SELECT SUM(output_tokens) FROM timeline) = output_tokens AND (SELECT SUM(completions) FROM timeline) = completed FROM summary')\" = 1 ]"
    check "$name: runs took fewer events" \
        "[ \$(sed -n 's/^ *\"sim_events\": \\([0-9]*\\),*$/\\1/p' $T/true.json) -lt \$(sed -n 's/^ *\"sim_events\": \\([0-9]*\\),*$/\\1/p' $T/false.json) ]"
    rm -f "$T"/*.db
done <"$T/cases"
tap_end
