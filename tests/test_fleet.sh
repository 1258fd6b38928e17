#!/bin/sh
# test_fleet.sh: fleets end to end (docs/fleet.md): round trips added
# exactly, nearest vs global routing, conservation across replicas,
# determinism of every router, edge admission "at capacity", the
# autoscaler (and its equality with and without fast-forward), costs, and
# fleet files that cannot be served or are malformed (an unknown key at any
# level, a non-integer replica bound, all-zero shares) refused with the file
# and the key named.
set -u
. "$srcdir/tests/tap.sh"
tap_tmp fleet
tap_need sqlite3
q() { sqlite3 "$1" "$2"; }
TRACE="$srcdir/data/traces/azure_conv_2023.csv"

# two regions; population "na" is 20 ms from east and 90 ms from west
fleet() { # $1 file, $2 router, $3 scope, $4 rtt east, $5 max_queue
    cat >"$1" <<JSON
{
  "regions": {
    "east": {"gpus": {"h100-sxm": 8}, "usd_per_gpu_hour": {"h100-sxm": 2.0}},
    "west": {"gpus": {"h100-sxm": 8}, "usd_per_gpu_hour": {"h100-sxm": 3.0}}
  },
  "populations": {"na": {"weight": 1, "rtt_s": {"east": $4, "west": 0.09}}},
  "pools": [
    {"name": "e", "region": "east", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 2},
    {"name": "w", "region": "west", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 2}
  ],
  "router": "$2", "scope": "$3", "max_queue": $5
}
JSON
}

# 1. a round trip adds exactly itself to TTFT and E2E, nothing to TPOT
# (east stays the nearest region: 0 and 0.05 s against west's 0.09 s)
fleet "$T/r0.json" round-robin nearest 0 0
fleet "$T/r1.json" round-robin nearest 0.05 0
"$KV" run --fleet "$T/r0.json" --trace "$TRACE" --limit 1 --db "$T/rtt.db" >/dev/null 2>&1
"$KV" run --fleet "$T/r1.json" --trace "$TRACE" --limit 1 --db "$T/rtt.db" >/dev/null 2>&1
check "round trip: TTFT and E2E grow by exactly 0.05 s, TPOT unchanged" \
    "[ \"\$(q $T/rtt.db 'SELECT abs(b.ttft_p50_s - a.ttft_p50_s - 0.05) < 1e-9 AND abs(b.e2e_p50_s - a.e2e_p50_s - 0.05) < 1e-9 AND a.tpot_p50_s = b.tpot_p50_s FROM summary a, summary b WHERE a.run_id = 1 AND b.run_id = 2')\" = 1 ]"
check "round trip: the request row is the user's (first token 0.05 s later)" \
    "[ \"\$(q $T/rtt.db 'SELECT abs(b.first_token_s - a.first_token_s - 0.05) < 1e-9 AND a.arrival_s = b.arrival_s FROM requests a, requests b WHERE a.run_id = 1 AND b.run_id = 2')\" = 1 ]"

# a round trip past an hour is refused before the run (1e12 s overflowed the
# arrival's nanoseconds and aborted on an assertion)
fleet "$T/rbig.json" round-robin nearest 1e12 0
"$KV" run --fleet "$T/rbig.json" --trace "$TRACE" --limit 1 --no-db >/dev/null 2>"$T/rbig.err"
check "round trip 1e12 s: exit 1 naming the file, rtt_s and the limit" \
    "[ $? -eq 1 ] && grep -q 'rbig.json: populations.na.rtt_s.east: expected a round trip in seconds in \[0, 3600\]' $T/rbig.err"

# 2. nearest keeps everything in the near region while it has room; global spreads
fleet "$T/near.json" least-outstanding nearest 0.02 0
fleet "$T/glob.json" least-outstanding global 0.02 0
"$KV" run --fleet "$T/near.json" --trace "$TRACE" --limit 400 --db "$T/f.db" >/dev/null 2>&1
check "nearest: every request served in the near region (replicas 0, 1)" \
    "[ \"\$(q $T/f.db 'SELECT COUNT(*) FROM requests WHERE run_id = 1 AND replica NOT IN (0, 1)')\" = 0 ]"
"$KV" run --fleet "$T/glob.json" --trace "$TRACE" --limit 400 --db "$T/f.db" >/dev/null 2>&1
check "global: the far region serves some requests" \
    "[ \"\$(q $T/f.db 'SELECT COUNT(*) > 0 FROM requests WHERE run_id = 2 AND replica IN (2, 3)')\" = 1 ]"
check "conservation: every request ends once, in one replica" \
    "[ \"\$(q $T/f.db 'SELECT COUNT(*), COUNT(DISTINCT id) FROM requests WHERE run_id = 2')\" = '400|400' ] && [ \"\$(q $T/f.db 'SELECT completed + rejected = requests FROM summary WHERE run_id = 2')\" = 1 ]"
check "global pays the far round trip: TTFT p50 above nearest's" \
    "[ \"\$(q $T/f.db 'SELECT b.ttft_p50_s > a.ttft_p50_s FROM summary a, summary b WHERE a.run_id = 1 AND b.run_id = 2')\" = 1 ]"
check "cost: GPU-hours = 4 GPUs x simulated time, at 2 and 3 USD" \
    "[ \"\$(q $T/f.db 'SELECT abs(gpu_hours - 4 * sim_time_s / 3600) < 1e-9 AND abs(cost_usd - gpu_hours / 4 * (2 * 2.0 + 2 * 3.0)) < 1e-6 FROM summary WHERE run_id = 1')\" = 1 ]"

# 3. every router is deterministic, conserves requests, and passes --check
for r in round-robin least-outstanding least-kv session prefix; do
    fleet "$T/$r.json" "$r" global 0.02 0
    a=$("$KV" run --fleet "$T/$r.json" --trace "$srcdir/data/traces/sessions_example.csv" --load-scale 4 --check true --no-db --json 2>/dev/null | grep -v '"wall_s"\|peak_mem\|peak_rss')
    b=$("$KV" run --fleet "$T/$r.json" --trace "$srcdir/data/traces/sessions_example.csv" --load-scale 4 --check true --no-db --json 2>/dev/null | grep -v '"wall_s"\|peak_mem\|peak_rss')
    check "router $r: two runs identical" "[ -n \"\$a\" ] && [ \"\$a\" = \"\$b\" ]"
done
"$KV" run --trace "$TRACE" --limit 300 --replicas 3 --router least-outstanding --db "$T/o.db" >/dev/null 2>&1
check "--router least-outstanding on --replicas 3 uses all three" \
    "[ \"\$(q $T/o.db 'SELECT COUNT(DISTINCT replica) FROM requests')\" = 3 ]"

# 4. at capacity: a burst on small queues is rejected at the edge (replica -1)
fleet "$T/cap.json" least-outstanding nearest 0.02 2
"$KV" run --fleet "$T/cap.json" --synthetic 'poisson,rate=2000,duration=1,isl=2048,osl=64' --max-num-seqs 4 --db "$T/cap.db" >/dev/null 2>&1
check "at capacity: edge rejections counted as queue_full" \
    "[ \"\$(q $T/cap.db 'SELECT rejected_queue_full > 0 AND completed + rejected = requests FROM summary')\" = 1 ] && [ \"\$(q $T/cap.db 'SELECT COUNT(*) > 0 FROM requests WHERE replica = -1 AND reject_reason = \"queue_full\"')\" = 1 ]"
check "at capacity: nearest spilled to the far region before rejecting" \
    "[ \"\$(q $T/cap.db 'SELECT COUNT(*) > 0 FROM requests WHERE replica IN (2, 3)')\" = 1 ]"

# 5. the autoscaler: a surge on one replica, fixed vs autoscaled
cat >"$T/as.json" <<'JSON'
{
  "regions": {"east": {"gpus": {"h100-sxm": 8}, "usd_per_gpu_hour": {"h100-sxm": 2.5}}},
  "pools": [{"name": "e", "region": "east", "model": "llama-3-8b", "gpu": "h100-sxm",
             "replicas": 1, "min_replicas": 1, "max_replicas": 8}],
  "router": "least-outstanding", "max_queue": 256,
  "autoscaler": {"interval_s": 10, "provision_s": 60, "up": 0.5, "down": 0.1}
}
JSON
sed '/autoscaler/d; s/"max_queue": 256,/"max_queue": 256/' "$T/as.json" >"$T/fixed.json"
S='poisson,rate=surge(base=5;peak=60;start=300;len=300),duration=1200,isl=1024,osl=256'
"$KV" run --fleet "$T/fixed.json" --synthetic "$S" --db "$T/as.db" >/dev/null 2>&1
"$KV" run --fleet "$T/as.json" --synthetic "$S" --db "$T/as.db" >/dev/null 2>&1
"$KV" run --fleet "$T/as.json" --synthetic "$S" --fast-forward false --db "$T/as.db" >/dev/null 2>&1
check "autoscaler: fewer rejections and more GPU-hours than the fixed fleet" \
    "[ \"\$(q $T/as.db 'SELECT b.rejected < a.rejected AND b.gpu_hours > a.gpu_hours AND b.gpu_hours < 8 * b.sim_time_s / 3600 FROM summary a, summary b WHERE a.run_id = 1 AND b.run_id = 2')\" = 1 ]"
check "autoscaler: identical with and without fast-forward" \
    "[ \"\$(q $T/as.db 'SELECT a.completed = b.completed AND a.ttft_p99_s = b.ttft_p99_s AND a.gpu_hours = b.gpu_hours AND a.tpot_p50_s = b.tpot_p50_s FROM summary a, summary b WHERE a.run_id = 2 AND b.run_id = 3')\" = 1 ]"
check "autoscaler: new replicas served requests" \
    "[ \"\$(q $T/as.db 'SELECT COUNT(DISTINCT replica) > 1 FROM requests WHERE run_id = 2')\" = 1 ]"

# an autoscaler ticking faster than every 0.1 s is refused (1e-9 s made a
# billion events per simulated second: a run that never ended)
sed 's/"interval_s": 10/"interval_s": 1e-9/' "$T/as.json" >"$T/asfast.json"
"$KV" run --fleet "$T/asfast.json" --synthetic "$S" --no-db >/dev/null 2>"$T/asfast.err"
check "autoscaler interval 1e-9 s: exit 1 naming the range" \
    "[ $? -eq 1 ] && grep -q 'interval_s.: S in \[0.1, 1e9\]' $T/asfast.err"

# a pool's model given by a relative path is stored absolute: the run
# re-runs from another folder
mkdir -p "$T/sub"
cp "$srcdir/data/models/tiny.json" "$T/sub/mine.json"
SUBP=$(cd "$T/sub" && pwd -P)
KVA=$(cd "$(dirname "$KV")" && pwd -P)/$(basename "$KV")
printf '%s' '{"regions": {"r": {"gpus": {"h100-sxm": 8}}}, "pools": [{"name": "p", "region": "r", "model": "mine.json", "gpu": "h100-sxm", "replicas": 1}]}' >"$T/sub/f.json"
(cd "$T/sub" && "$KVA" run --fleet f.json --synthetic 'poisson,rate=5,requests=20,isl=50,osl=5' --db rel.db >/dev/null 2>&1)
(cd / && "$KVA" rerun "$SUBP/rel.db" 1 >/dev/null 2>&1)
check "fleet pool model by relative path: stored absolute, rerun from / exits 0" \
    "[ $? -eq 0 ] && [ \"\$(q $SUBP/rel.db \"SELECT json_extract(config, '\$.fleet.pools[0].model') FROM runs WHERE run_id = 1\")\" = $SUBP/mine.json ]"

# an unknown key inside the autoscaler is refused (it was accepted silently)
sed 's/"down": 0.1}/"down": 0.1, "cooldown_s": 30}/' "$T/as.json" >"$T/askey.json"
"$KV" run --fleet "$T/askey.json" --synthetic "$S" --no-db >/dev/null 2>"$T/askey.err"
check "autoscaler: an unknown key exits 1 naming it" \
    "[ $? -eq 1 ] && grep -q 'autoscaler.cooldown_s: unknown key' $T/askey.err"

# 6. fleets that cannot be served are refused, naming the key
refuse() { # $1 name, $2 python-free edit (sed) of the base file, $3 expected message
    sed "$2" "$T/near.json" >"$T/bad.json"
    "$KV" run --fleet "$T/bad.json" --limit 5 --no-db >/dev/null 2>"$T/bad.err"
    rc=$?
    check "refused: $1 (exit 1, says '$3')" "[ $rc -eq 1 ] && grep -q -- \"$3\" $T/bad.err"
}
refuse "unknown region" 's/"region": "west"/"region": "mars"/' "pools\[1\].region: expected one of: east, west, got 'mars'"
refuse "negative round trip" 's/"west": 0.09/"west": -0.09/' "populations.na.rtt_s.west"
refuse "a region without GPUs of the pool's kind" 's/"west": {"gpus": {"h100-sxm": 8}/"west": {"gpus": {"a100-sxm": 8}/' "regions.west.gpus.h100-sxm"
refuse "pools larger than the supply" 's/"replicas": 2}/"replicas": 9}/' "more than its supply"
# TP across nodes must fill whole nodes (6-GPU nodes: TP8 does not)
sed 's/"gpus_per_node": 8/"gpus_per_node": 6/' "$srcdir/data/gpus/h100-sxm.json" >"$T/six.json"
"$KV" run --gpu "$T/six.json" --tp 8 --limit 5 --no-db >/dev/null 2>"$T/six.err"
check "refused: TP across nodes that is not whole nodes (exit 1)" "[ $? -eq 1 ] && grep -q 'expected whole nodes (a multiple of 6)' $T/six.err"
# 2^31 - 1 GPUs per node overflowed the TP limit (64 x gpus_per_node, an int)
sed 's/"gpus_per_node": 8/"gpus_per_node": 2147483647/' "$srcdir/data/gpus/h100-sxm.json" >"$T/gpn.json"
"$KV" run --gpu "$T/gpn.json" --limit 5 --no-db >/dev/null 2>"$T/gpn.err"
check "refused: 2^31 - 1 GPUs per node (exit 1, naming the file and the range)" \
    "[ $? -eq 1 ] && grep -q 'gpn.json: gpus_per_node: expected an integer in \[1, 1024\], got .2147483647.' $T/gpn.err"
# a GPU whose node has no inter-node link cannot hold TP beyond the node
sed 's/"ib_bw": 50e9/"ib_bw": 0/' "$srcdir/data/gpus/h100-sxm.json" >"$T/noib.json"
"$KV" run --gpu "$T/noib.json" --tp 16 --model llama-3-70b --limit 5 --no-db >/dev/null 2>"$T/noib.err"
check "refused: TP beyond a node without an inter-node link (exit 1)" "[ $? -eq 1 ] && grep -q 'inter-node link' $T/noib.err"
refuse "an unknown key" 's/"scope"/"scoop"/' "scoop: unknown key"
# keys that were ignored, values that fell back to a default, and shares that
# sent every request to the last entry (a division by a zero sum)
refuse "an unknown key in a region" 's/"usd_per_gpu_hour": {"h100-sxm": 3.0}/"usd_per_gpu_hr": {"h100-sxm": 3.0}/' "bad.json: regions.west.usd_per_gpu_hr: unknown key"
refuse "an unknown key in a population" 's/"weight": 1/"wieght": 1/' "bad.json: populations.na.wieght: unknown key"
refuse "an unknown GPU kind in a region" 's/"west": {"gpus": {"h100-sxm": 8}/"west": {"gpus": {"h100-sxm": 8, "h100-sxn": 8}/' "bad.json: regions.west.gpus.h100-sxn: unknown GPU kind (known: .*h100-sxm"
refuse "a price that is a number, not per GPU kind" 's/"usd_per_gpu_hour": {"h100-sxm": 3.0}/"usd_per_gpu_hour": 2.5/' "bad.json: regions.west.usd_per_gpu_hour: expected an object"
refuse "min_replicas 3.0" 's/"replicas": 2}/"replicas": 2, "min_replicas": 3.0}/' "bad.json: pools\[0\].min_replicas: expected an integer"
refuse "max_replicas 1.5" 's/"replicas": 2}/"replicas": 2, "max_replicas": 1.5}/' "bad.json: pools\[0\].max_replicas: expected an integer"
refuse "max_replicas as a string" 's/"replicas": 2}/"replicas": 2, "max_replicas": "3"}/' "bad.json: pools\[0\].max_replicas: expected an integer"
refuse "model shares that are all 0" 's/"router"/"models": {"llama-3-8b": 0, "llama-3.1-8b": 0}, "router"/' "bad.json: models: expected shares with a finite sum > 0"
refuse "population weights that are all 0" 's/"weight": 1/"weight": 0/' "bad.json: populations: expected weights with a finite sum > 0"
# names that were let through: a model misspelt with a share of 0, GPU
# kinds that are two known names joined by ", " (a substring match),
# a pool name or a description that is no string, two pools of one name
refuse "an unknown model with a share of 0" 's/"router"/"models": {"llama-3-8b": 1, "lama-3-70b": 0}, "router"/' "bad.json: models.lama-3-70b: unknown model (known: "
refuse "a GPU kind 'a100-sxm, h100-pcie'" 's/"east": {"gpus": {"h100-sxm": 8}/"east": {"gpus": {"h100-sxm": 8, "a100-sxm, h100-pcie": 3}/' "bad.json: regions.east.gpus.a100-sxm, h100-pcie: unknown GPU kind"
refuse "a price for 'h100-sxm, h200'" 's/"usd_per_gpu_hour": {"h100-sxm": 2.0}/"usd_per_gpu_hour": {"h100-sxm, h200": 5}/' "bad.json: regions.east.usd_per_gpu_hour.h100-sxm, h200: unknown GPU kind"
refuse "a pool name that is a number" 's/"name": "e"/"name": 5/' "bad.json: pools\[0\].name: expected a non-empty string"
refuse "a description that is a number" 's/"router"/"description": 5, "router"/' "bad.json: description: expected a string"
# a pool's gpu that is no string fell back to the run's GPU (exit 0); a model
# or region that is no string was reported as ''
refuse "a pool's gpu that is a number" 's/"gpu": "h100-sxm", "replicas": 2},/"gpu": 5, "replicas": 2},/' "bad.json: pools\[0\].gpu: expected a GPU preset name or a path to a GPU file, got '5'"
refuse "a pool's model that is a number" 's/"model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 2}$/"model": 8, "gpu": "h100-sxm", "replicas": 2}/' "bad.json: pools\[1\].model: expected a model preset name or a path to a config.json, got '8'"
refuse "a pool's region that is an object" 's/"region": "west"/"region": {}/' "bad.json: pools\[1\].region: expected the name of a region, got '{}'"
refuse "two pools of one name" 's/"name": "w"/"name": "e"/' "bad.json: pools\[1\].name: 'e' is the name of pools\[0\] too"
refuse "a model share without a pool" 's/"router"/"models": {"llama-3-8b": 1, "qwen3-32b": 1}, "router"/' "models.qwen3-32b"
"$KV" run --fleet "$T/near.json" --backend cpu --limit 5 --no-db >/dev/null 2>"$T/be.err"
check "refused: a fleet on a measured backend" "[ $? -eq 1 ] && grep -q 'only the sim backend' $T/be.err"
echo '[1, 2]' >"$T/arr.json"
"$KV" run --fleet "$T/arr.json" --limit 5 --no-db >/dev/null 2>"$T/arr.err"
check "refused: a fleet file that is not an object names it" "[ $? -eq 1 ] && grep -q 'arr.json: fleet file: expected a JSON object' $T/arr.err"
"$KV" run --fleet "$T/missing.json" --limit 5 --no-db >/dev/null 2>"$T/miss.err"
check "refused: a missing fleet file names it" "[ $? -eq 1 ] && grep -q 'missing.json' $T/miss.err"
"$KV" run --router fastest --limit 5 --no-db >/dev/null 2>"$T/rt.err"
check "refused: an unknown router lists the known ones" "[ $? -eq 1 ] && grep -q 'least-outstanding' $T/rt.err"

# 7. a stored fleet run reruns without the file
"$KV" run --fleet "$T/near.json" --trace "$TRACE" --limit 50 --db "$T/re.db" >/dev/null 2>&1
rm -f "$T/near.json"
"$KV" rerun "$T/re.db" 1 >/dev/null 2>&1
check "rerun of a fleet run needs no fleet file and matches" \
    "[ \"\$(q $T/re.db 'SELECT a.ttft_p99_s = b.ttft_p99_s AND a.completed = b.completed FROM summary a, summary b WHERE a.run_id = 1 AND b.run_id = 2')\" = 1 ]"

# PCIe busy time is defined when any pool can use PCIe, not only the first
# (it was null here though the second pool swapped GBs)
cat >"$T/pc.json" <<'JSON'
{"regions": {"r": {"gpus": {"h100-sxm": 4}}},
 "pools": [{"name": "plain", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1},
           {"name": "swap", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "options": {"preemption": "swap", "kv-blocks": 300}}],
 "router": "round-robin"}
JSON
"$KV" run --fleet "$T/pc.json" --synthetic 'poisson,rate=20,requests=300,isl=1000,osl=300' --no-db --json >"$T/pc.out" 2>/dev/null
check "PCIe: busy time reported when a later pool swaps (bytes > 0, busy > 0)" \
    "grep -q '\"pcie_bytes_h2d\": [1-9]' $T/pc.out && grep -q '\"pcie_busy_h2d_s\": 0\\.[0-9]' $T/pc.out && grep -q '\"pcie_busy_d2h_s\": 0\\.[0-9]' $T/pc.out"

# results never depend on the order of a fleet file's object keys: the
# stored config has them sorted (runs.config), so regions, populations and
# models are indexed by name (before, run 146/54 requests per replica and
# its rerun 123/77, and the file with its keys reordered differed too)
cat >"$T/ord1.json" <<'JSON'
{"regions": {"us": {"gpus": {"h100-sxm": 2}}, "eu": {"gpus": {"h100-sxm": 2}}},
 "populations": {"na": {"weight": 0.7, "rtt_s": {"us": 0.02, "eu": 0.1}},
                 "eu": {"weight": 0.3, "rtt_s": {"us": 0.1, "eu": 0.01}}},
 "models": {"llama-3.1-8b": 1, "llama-3-8b": 2},
 "pools": [{"name": "us", "region": "us", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1},
           {"name": "eu", "region": "eu", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1},
           {"name": "u2", "region": "us", "model": "llama-3.1-8b", "gpu": "h100-sxm", "replicas": 1},
           {"name": "e2", "region": "eu", "model": "llama-3.1-8b", "gpu": "h100-sxm", "replicas": 1}]}
JSON
cat >"$T/ord2.json" <<'JSON'
{"pools": [{"name": "us", "region": "us", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1},
           {"name": "eu", "region": "eu", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1},
           {"name": "u2", "region": "us", "model": "llama-3.1-8b", "gpu": "h100-sxm", "replicas": 1},
           {"name": "e2", "region": "eu", "model": "llama-3.1-8b", "gpu": "h100-sxm", "replicas": 1}],
 "models": {"llama-3-8b": 2, "llama-3.1-8b": 1},
 "populations": {"eu": {"rtt_s": {"eu": 0.01, "us": 0.1}, "weight": 0.3},
                 "na": {"rtt_s": {"eu": 0.1, "us": 0.02}, "weight": 0.7}},
 "regions": {"eu": {"gpus": {"h100-sxm": 2}}, "us": {"gpus": {"h100-sxm": 2}}}}
JSON
ORD='poisson,rate=5,requests=200,isl=300,osl=30'
"$KV" run --fleet "$T/ord1.json" --synthetic "$ORD" --db "$T/ord.db" >/dev/null 2>&1
"$KV" run --fleet "$T/ord2.json" --synthetic "$ORD" --db "$T/ord.db" >/dev/null 2>&1
"$KV" rerun "$T/ord.db" 1 >/dev/null 2>&1
check "key order: a fleet file and the same with its keys reordered place every request alike" \
    "[ \"\$(q $T/ord.db 'SELECT COUNT(*) FROM requests a JOIN requests b ON a.id = b.id AND a.run_id = 1 AND b.run_id = 2 WHERE a.replica = b.replica AND a.finish_s = b.finish_s')\" = 200 ]"
check "key order: run then rerun of a file with unsorted keys place every request alike" \
    "[ \"\$(q $T/ord.db 'SELECT COUNT(*) FROM requests a JOIN requests b ON a.id = b.id AND a.run_id = 1 AND b.run_id = 3 WHERE a.replica = b.replica AND a.finish_s = b.finish_s')\" = 200 ]"
# every summary column but the run id and the wall-clock ones
cols=$(q "$T/ord.db" "SELECT group_concat('\"' || name || '\"') FROM pragma_table_info('summary')
                      WHERE name NOT IN ('run_id', 'wall_s', 'peak_mem_bytes')")
n_sum=$(q "$T/ord.db" "SELECT COUNT(*) FROM summary")
n_distinct=$(q "$T/ord.db" "SELECT COUNT(*) FROM (SELECT DISTINCT $cols FROM summary)")
check "key order: the three summaries are identical in all columns (wall time aside)" \
    "[ '$n_sum' = 3 ] && [ '$n_distinct' = 1 ]"
check "key order: both models and both regions served" \
    "[ \"\$(q $T/ord.db 'SELECT COUNT(DISTINCT replica) FROM requests WHERE run_id = 1')\" = 4 ]"

# 8. disaggregated prefill and decode
cat >"$T/dis.json" <<'JSON'
{"regions": {"r": {"gpus": {"h100-sxm": 16}}},
 "pools": [{"name": "p", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "role": "prefill"},
           {"name": "d", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 2, "role": "decode"}],
 "router": "least-outstanding"}
JSON
cat >"$T/col.json" <<'JSON'
{"regions": {"r": {"gpus": {"h100-sxm": 16}}},
 "pools": [{"name": "c", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1}]}
JSON
"$KV" run --fleet "$T/dis.json" --trace "$TRACE" --limit 1 --db "$T/dis.db" >/dev/null 2>&1
"$KV" run --fleet "$T/col.json" --trace "$TRACE" --limit 1 --db "$T/dis.db" >/dev/null 2>&1
check "disaggregated: one request's TTFT is the colocated one's (same prefill, idle GPUs)" \
    "[ \"\$(q $T/dis.db 'SELECT a.ttft_p50_s = b.ttft_p50_s FROM summary a, summary b WHERE a.run_id = 1 AND b.run_id = 2')\" = 1 ]"
# Llama-3-8B's KV: 2 x 32 layers x 8 heads x 128 x 2 bytes = 131072 B a token, over
# one 50 GB/s NDR NIC each side, after 5 us
check "disaggregated: the KV transfer takes latency + prompt x 131072 B / 50 GB/s" \
    "[ \"\$(q $T/dis.db 'SELECT s.kv_xfer_bytes = r.prompt_tokens * 131072 AND abs(s.kv_xfer_mean_s - (5e-6 + r.prompt_tokens * 131072 / 50e9)) < 1e-9 FROM summary s, requests r WHERE s.run_id = 1 AND r.run_id = 1')\" = 1 ]"
check "disaggregated: the request decoded on a decode replica (1 or 2)" \
    "[ \"\$(q $T/dis.db 'SELECT replica IN (1, 2) AND output_tokens > 1 FROM requests WHERE run_id = 1')\" = 1 ]"
"$KV" run --fleet "$T/dis.json" --trace "$TRACE" --limit 1500 --load-scale 8 --check true --db "$T/dis.db" >/dev/null 2>&1
"$KV" run --fleet "$T/dis.json" --trace "$TRACE" --limit 1500 --load-scale 8 --fast-forward false --db "$T/dis.db" >/dev/null 2>&1
check "disaggregated under load: every request ends once, in a decode replica when completed" \
    "[ \"\$(q $T/dis.db 'SELECT COUNT(*), COUNT(DISTINCT id), SUM(rejected = 0 AND replica NOT IN (1, 2)) FROM requests WHERE run_id = 3')\" = '1500|1500|0' ]"
check "disaggregated: identical with and without fast-forward" \
    "[ \"\$(q $T/dis.db 'SELECT a.ttft_p99_s = b.ttft_p99_s AND a.tpot_p50_s = b.tpot_p50_s AND a.kv_xfer_bytes = b.kv_xfer_bytes AND a.e2e_p99_s = b.e2e_p99_s FROM summary a, summary b WHERE a.run_id = 3 AND b.run_id = 4')\" = 1 ]"
sed 's/"role": "decode"/"role": "both"/' "$T/dis.json" >"$T/bad.json"
"$KV" run --fleet "$T/bad.json" --limit 5 --no-db >/dev/null 2>"$T/bad.err"
check "refused: prefill pools without decode pools" "[ $? -eq 1 ] && grep -q 'needs prefill and decode pools' $T/bad.err"
sed 's/"role": "decode"/"role": "decoder"/' "$T/dis.json" >"$T/bad.json"
"$KV" run --fleet "$T/bad.json" --limit 5 --no-db >/dev/null 2>"$T/bad.err"
check "refused: an unknown role" "[ $? -eq 1 ] && grep -q 'role: expected both, prefill or decode' $T/bad.err"

# 9. pipeline parallelism: a TP2 x PP2 replica is two virtual engines on 4 GPUs
"$KV" run --trace "$TRACE" --limit 300 --model llama-3-70b --tp 2 --pp 2 --db "$T/pp.db" --json >"$T/pp.json" 2>/dev/null
check "--pp 2: two virtual engines serve, 4 GPUs paid" \
    "[ \"\$(q $T/pp.db 'SELECT COUNT(DISTINCT replica) FROM requests')\" = 2 ] && [ \"\$(q $T/pp.db 'SELECT abs(gpu_hours - 4 * sim_time_s / 3600) < 1e-9 FROM summary')\" = 1 ] && grep -q '\"virtual_engines\": 2' $T/pp.json"
"$KV" run --pp 2 --backend cpu --model tiny --limit 5 --no-db >/dev/null 2>"$T/pp.err"
check "refused: --pp on a measured backend" "[ $? -eq 1 ] && grep -q 'sim backend only' $T/pp.err"
"$KV" run --pp 99 --limit 5 --no-db >/dev/null 2>"$T/pp.err"
check "refused: more stages than layers" "[ $? -eq 1 ] && grep -q 'pp: expected 1..32' $T/pp.err"

# 10. a remote KV pool shared by the replicas (write-through, over InfiniBand)
printf 'session_id,turn,start_s,think_s,prompt_tokens,output_tokens\n1,1,0,0,512,64\n1,2,0,1,100,16\n' >"$T/s2.csv"
"$KV" run --trace "$T/s2.csv" --replicas 2 --router round-robin --remote-pool-gib 16 --db "$T/rp.db" >/dev/null 2>&1
"$KV" run --trace "$T/s2.csv" --replicas 2 --router session --db "$T/rp.db" >/dev/null 2>&1
# turn 1 (512 + 63 tokens of KV: 35 full blocks) is written to the pool; turn 2 lands on
# the other replica and fetches the 35 blocks (2 MiB each for Llama-3-8B) at the slower
# side, one 50 GB/s NIC, after 5 us: its TTFT exceeds the same-replica hit's by that much
check "remote pool: the second turn fetches 35 blocks on the other replica" \
    "[ \"\$(q $T/rp.db 'SELECT remote_hit_tokens, remote_bytes_in FROM summary WHERE run_id = 1')\" = '560|73400320' ] && [ \"\$(q $T/rp.db 'SELECT replica, hit_tokens FROM requests WHERE run_id = 1 AND id = 1')\" = '1|560' ]"
check "remote pool: the fetch adds latency + 73400320 B / 50 GB/s to TTFT" \
    "[ \"\$(q $T/rp.db 'SELECT abs(a.ttft_s - b.ttft_s - (5e-6 + 73400320 / 50e9)) < 2e-9 FROM requests a, requests b WHERE a.run_id = 1 AND b.run_id = 2 AND a.id = 1 AND b.id = 1')\" = 1 ]"
"$KV" run --trace "$T/s2.csv" --replicas 2 --router round-robin --remote-pool-gib 16 --miss recompute --db "$T/rp.db" >/dev/null 2>&1
check "remote pool: --miss recompute fetches nothing" \
    "[ \"\$(q $T/rp.db 'SELECT remote_bytes_in, remote_hit_tokens FROM summary WHERE run_id = 3')\" = '0|0' ]"
M="$srcdir/data/traces/mooncake_synthetic.jsonl"
"$KV" run --trace "$M" --limit 400 --replicas 3 --kv-blocks 3000 --remote-pool-gib 8 --host-cache-gib 4 --check true --db "$T/rp.db" >/dev/null 2>&1
"$KV" run --trace "$M" --limit 400 --replicas 3 --kv-blocks 3000 --remote-pool-gib 8 --host-cache-gib 4 --fast-forward false --db "$T/rp.db" >/dev/null 2>&1
check "remote pool under load: invariants hold, every request ends once" \
    "[ \"\$(q $T/rp.db 'SELECT completed + rejected = requests AND remote_hit_tokens > 0 AND remote_bytes_out > 0 FROM summary WHERE run_id = 4')\" = 1 ]"
check "remote pool: identical with and without fast-forward" \
    "[ \"\$(q $T/rp.db 'SELECT a.ttft_p99_s = b.ttft_p99_s AND a.remote_bytes_in = b.remote_bytes_in AND a.prefix_hit_rate_tokens = b.prefix_hit_rate_tokens FROM summary a, summary b WHERE a.run_id = 4 AND b.run_id = 5')\" = 1 ]"
"$KV" run --remote-pool-gib 8 --policy none --limit 5 --no-db >/dev/null 2>"$T/rp.err"
check "refused: a remote pool without the prefix cache" "[ $? -eq 1 ] && grep -q 'needs the prefix cache' $T/rp.err"
"$KV" run --gpu "$T/noib.json" --remote-pool-gib 8 --limit 5 --no-db >/dev/null 2>"$T/rp.err"
check "refused: a remote pool without InfiniBand" "[ $? -eq 1 ] && grep -q 'InfiniBand' $T/rp.err"
# an ib_bw of 1e308 made the pool's bandwidth (8 NICs) infinite: "out of memory", exit 3
sed 's/"ib_bw": 50e9/"ib_bw": 1e308/' "$srcdir/data/gpus/h100-sxm.json" >"$T/ibinf.json"
"$KV" run --gpu "$T/ibinf.json" --remote-pool-gib 8 --limit 5 --no-db >/dev/null 2>"$T/ibinf.err"
check "refused: an ib_bw of 1e308 (exit 1, naming the file and the range)" \
    "[ $? -eq 1 ] && grep -q 'ibinf.json: ib_bw: expected 0 or 1e+06..1e+18 bytes/s' $T/ibinf.err"

# 11. fleets in experiment specs: a path relative to the spec, or inline objects as an
# axis; without a "router" key the run's --router decides
mkdir -p "$T/spec"
sed 's/"router": "round-robin", //' "$T/r0.json" >"$T/spec/f.json"
cat >"$T/spec/s.json" <<'JSON'
{"name": "fleets", "base": {"fleet": "f.json", "limit": 200, "steps-sample": 0},
 "axes": {"router": ["round-robin", "least-outstanding"]}}
JSON
"$KV" sweep "$T/spec/s.json" --db "$T/spec/s.db" --quiet >/dev/null 2>&1
check "a spec's fleet path is anchored at the spec; both points done" \
    "[ \"\$(q $T/spec/s.db 'SELECT COUNT(*) FROM sweep_points WHERE status = \"done\"')\" = 2 ]"
check "the run's --router applies to a fleet file without one" \
    "[ \"\$(q $T/spec/s.db 'SELECT COUNT(DISTINCT json_extract(r.config, \"$.router\")) FROM runs r')\" = 2 ] && [ \"\$(q $T/spec/s.db 'SELECT COUNT(DISTINCT s.ttft_p99_s) FROM summary s')\" = 2 ]"

# disaggregation: a request prefilled elsewhere is queued on its decode
# replica past max_queue (its KV exists), not rejected after the transfer
printf 'arrived_at,num_prefill_tokens,num_decode_tokens\n' >"$T/eight.csv"
for i in 1 2 3 4 5 6 7 8; do echo '0,500,20' >>"$T/eight.csv"; done
cat >"$T/dq.json" <<'JSON'
{"regions": {"r": {"gpus": {"h100-sxm": 16}}},
 "pools": [{"name": "p", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 2, "role": "prefill"},
           {"name": "d", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "role": "decode"}],
 "max_queue": 4}
JSON
"$KV" run --trace "$T/eight.csv" --fleet "$T/dq.json" --no-db --json >"$T/dq.out" 2>/dev/null
check "disaggregation: 8 prefilled requests all decode past max_queue 4" \
    "grep -q '\"completed\": 8,' $T/dq.out && grep -q '\"rejected\": 0,' $T/dq.out"

# the autoscaler: an empty pool grows on its own requests, one that gets none
# is never paid, and a replica's timeline rows are those of its time on
printf 'arrived_at,num_prefill_tokens,num_decode_tokens\n' >"$T/as0.csv"
for i in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19; do echo "$i,200,50" >>"$T/as0.csv"; done
cat >"$T/as0.json" <<'JSON'
{"regions": {"r": {"gpus": {"h100-sxm": 8}}},
 "pools": [{"name": "p", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 0, "min_replicas": 0, "max_replicas": 2}],
 "autoscaler": {"interval_s": 2, "provision_s": 5, "up": 0.5, "down": 0.1}}
JSON
"$KV" run --trace "$T/as0.csv" --fleet "$T/as0.json" --no-db --json >"$T/as0.out" 2>/dev/null
check "autoscaler: a lone pool of 0 replicas grows and serves (it rejected all 20)" \
    "grep -q '\"completed\": 13,' $T/as0.out"
cat >"$T/as3.json" <<'JSON'
{"regions": {"r": {"gpus": {"h100-sxm": 8}, "usd_per_gpu_hour": {"h100-sxm": 3.6}}},
 "models": {"llama-3-8b": 1, "llama-3.1-8b": 0},
 "pools": [{"name": "a", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "min_replicas": 1, "max_replicas": 1},
           {"name": "b", "region": "r", "model": "llama-3.1-8b", "gpu": "h100-sxm", "replicas": 0, "min_replicas": 0, "max_replicas": 3}],
 "autoscaler": {"interval_s": 1, "provision_s": 5, "up": 0.5, "down": 0.1}}
JSON
"$KV" run --trace "$T/as0.csv" --fleet "$T/as3.json" --db "$T/as3.db" >/dev/null 2>&1
check "autoscaler: a pool no request is for is never paid (GPU-hours of pool a alone: 1 GPU, the whole run)" \
    "[ \"\$(sqlite3 $T/as3.db 'SELECT completed, abs(gpu_hours * 3600 - sim_time_s) < 1e-9 FROM summary')\" = '20|1' ]"
printf 'arrived_at,num_prefill_tokens,num_decode_tokens\n' >"$T/as2.csv"
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo '0,2000,400' >>"$T/as2.csv"; done
echo '40,100,10' >>"$T/as2.csv"
cat >"$T/as2.json" <<'JSON'
{"regions": {"r": {"gpus": {"h100-sxm": 8}, "usd_per_gpu_hour": {"h100-sxm": 3.6}}},
 "pools": [{"name": "p", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "min_replicas": 1, "max_replicas": 3, "options": {"max-num-seqs": 4}}],
 "autoscaler": {"interval_s": 1, "provision_s": 0, "up": 0.5, "down": 0.1}}
JSON
"$KV" run --trace "$T/as2.csv" --fleet "$T/as2.json" --db "$T/as2.db" --timeline-s 1 >/dev/null 2>&1
check "autoscaler timeline: only the replica on at 0 has a row there; rows cover the seconds paid" \
    "[ \"\$(sqlite3 $T/as2.db 'SELECT (SELECT COUNT(*) FROM timeline WHERE t_s = 0), (SELECT COUNT(*) FROM timeline) BETWEEN ROUND(gpu_hours * 3600) AND ROUND(gpu_hours * 3600) + 6 FROM summary')\" = '1|1' ]"
# a disaggregated model whose decode pool starts empty: prefilled requests
# that find no decode replica are its demand, so it grows (before, only
# entry pools were marked: all 300 were prefilled then rejected, and the
# rejected rows said 501 prompt tokens, the decode side's, for 500)
cat >"$T/dz.json" <<'JSON'
{"regions": {"r": {"gpus": {"h100-sxm": 8}}},
 "pools": [{"name": "p", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "role": "prefill"},
           {"name": "d", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 0, "max_replicas": 2, "role": "decode"}],
 "router": "least-outstanding", "autoscaler": {"interval_s": 1, "provision_s": 5, "up": 0.05, "down": 0.01}}
JSON
"$KV" run --fleet "$T/dz.json" --synthetic 'poisson,rate=5,requests=300,isl=500,osl=50' --db "$T/dz.db" >/dev/null 2>&1
check "autoscaler: an empty decode pool grows and decodes (most of 300 complete)" \
    "[ \"\$(q $T/dz.db 'SELECT completed > 200 FROM summary')\" = 1 ]"
check "disaggregated: a request rejected for want of a decode replica keeps its prompt (500 tokens)" \
    "[ \"\$(q $T/dz.db 'SELECT COUNT(*) > 0 AND MIN(prompt_tokens) = 500 AND MAX(prompt_tokens) = 500 FROM requests WHERE rejected = 1')\" = 1 ]"
# the run ends when the workload ends: a replica still being provisioned
# (600 s, or 1e9 s) neither extends it nor is paid past it (before: sim_time
# 601 s and 0.334 GPU-hours for an 18.9 s workload; with 1e9 s, 555,555
# GPU-hours, and with --db the run failed on its empty timeline)
cat >"$T/prov.json" <<'JSON'
{"regions": {"r": {"gpus": {"h100-sxm": 4}}},
 "pools": [{"name": "a", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "max_replicas": 2}],
 "autoscaler": {"interval_s": 1, "provision_s": 600, "up": 0.001, "down": 0.0}}
JSON
sed 's/"provision_s": 600/"provision_s": 1e9/' "$T/prov.json" >"$T/provinf.json"
PROV='poisson,rate=5,requests=100,isl=200,osl=20'
"$KV" run --fleet "$T/prov.json" --synthetic "$PROV" --db "$T/prov.db" >/dev/null 2>&1
"$KV" run --fleet "$T/provinf.json" --synthetic "$PROV" --db "$T/prov.db" >/dev/null 2>&1
check "autoscaler: a pending provisioning does not extend the run (sim time = last finish)" \
    "[ \"\$(q $T/prov.db 'SELECT COUNT(*) FROM summary WHERE sim_time_s = last_finish_s AND last_finish_s < 30')\" = 2 ]"
check "autoscaler: GPUs paid up to the end of the workload (2 GPUs x 19 s at most)" \
    "[ \"\$(q $T/prov.db 'SELECT COUNT(*) FROM summary WHERE gpu_hours > 0.005 AND gpu_hours < 2 * 19.0 / 3600')\" = 2 ]"
check "autoscaler: provision_s 1e9 with --db is stored done" \
    "[ \"\$(q $T/prov.db 'SELECT group_concat(status) FROM runs')\" = 'done,done' ]"

# an idle gap costs no tick per interval_s (it cost 28 s for 1e5 s at 0.1 s
# with 20,000 replicas a tick): two requests 1e5 s apart end in a handful of
# events (14), not the 10^6 ticks of the gap. Counted, not timed: the
# timeout only stops a hang.
cat >"$T/gap.json" <<'JSON'
{"regions": {"r": {"gpus": {"h100-sxm": 20000}}},
 "pools": [{"name": "a", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "max_replicas": 20000}],
 "autoscaler": {"interval_s": 0.1, "provision_s": 5, "up": 0.5, "down": 0.1}}
JSON
printf 'TIMESTAMP,ContextTokens,GeneratedTokens\n0,100,10\n100000,100,10\n' >"$T/gap.csv"
timeout 300 "$KV" run --fleet "$T/gap.json" --trace "$T/gap.csv" --no-db --json >"$T/gap.out" 2>"$T/gap.err"
check "autoscaler: an idle gap of 1e5 s at 0.1 s ticks costs under 100 events, not one per tick (and both complete)" \
    "[ $? -eq 0 ] && grep -q '\"completed\": 2,' $T/gap.out && ev=\$(sed -n 's/^  \"sim_events\": \([0-9]*\),\$/\1/p' $T/gap.out) && [ -n \"\$ev\" ] && [ \"\$ev\" -lt 100 ]"

sed 's/"replicas": 1, "min_replicas": 1/"pp": 2, "replicas": 1, "min_replicas": 1/' "$T/as2.json" >"$T/aspp.json"
"$KV" run --trace "$T/as2.csv" --fleet "$T/aspp.json" --no-db >/dev/null 2>"$T/aspp.err"
check "autoscaler with pp 2: refused, naming the file and the pool's pp" \
    "[ $? -eq 1 ] && grep -q 'aspp.json: pools\[0\].pp' $T/aspp.err"

# disaggregated: a request no decode pool could hold is refused on arrival, before any
# prefill (it was prefilled, given a first token, then rejected on the decode side); a
# prefilled request waiting on a decode replica is not timed out (224 were)
DIS="$srcdir/experiments/fleets/disagg-1p2d.json"
"$KV" run --fleet "$DIS" --synthetic 'poisson,rate=1,requests=5,isl=3000,osl=2000' \
    --kv-blocks 300 --db "$T/dis1.db" >/dev/null 2>&1
check "disaggregated: a request no decode pool holds is refused at arrival, before any step" \
    "[ \"\$(sqlite3 $T/dis1.db 'SELECT count(*), min(replica), max(prompt_tokens), min(reject_reason) FROM requests; SELECT steps FROM summary')\" = '5|-1|3000|kv_capacity
0' ]"
"$KV" run --fleet "$DIS" --trace "$TRACE" --limit 300 --load-scale 8 --max-num-seqs 4 \
    --max-queue-time 1 --db "$T/dis2.db" >/dev/null 2>&1
check "disaggregated: no prefilled request times out on its decode replica; timeline tokens = summary" \
    "[ \"\$(sqlite3 $T/dis2.db 'SELECT count(*) FROM requests WHERE reject_reason IS NOT NULL AND replica > 0; SELECT (SELECT sum(output_tokens) FROM timeline) = output_tokens FROM summary')\" = '0
1' ]"

# disaggregated across regions: prefill 0.1 s from the user, decode 0 s away.
# The decode replica's tokens reached the user before the prefill replica's
# first token (finish 0.137 s, first token 0.208 s, TPOT -0.018 s); a stream
# is read in order, so the last token comes no earlier than the first
cat >"$T/dis3.json" <<'JSON'
{"regions": {"a": {"gpus": {"h100-sxm": 1}}, "b": {"gpus": {"h100-sxm": 1}}},
 "populations": {"u": {"weight": 1, "rtt_s": {"a": 0.2, "b": 0}}},
 "pools": [{"name": "p", "region": "a", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "role": "prefill"},
           {"name": "d", "region": "b", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "role": "decode"}]}
JSON
"$KV" run --fleet "$T/dis3.json" --synthetic 'poisson,rate=1,requests=1,isl=100,osl=5' \
    --check true --db "$T/dis3.db" >/dev/null 2>&1
check "disaggregated, decode nearer the user: the last token after the first, TPOT 0" \
    "[ \"\$(sqlite3 $T/dis3.db 'SELECT replica, finish_s = first_token_s, tpot_s, e2e_s = ttft_s FROM requests; SELECT tpot_p50_s, e2e_p50_s = ttft_p50_s FROM summary')\" = '1|1|0.0|1
0.0|1' ]"

# the text summary of an autoscaled fleet: one line per pool with its range,
# never "0 x GPU" for a pool that starts empty
cat >"$T/as0.json" <<'JSON'
{
  "regions": {"east": {"gpus": {"h100-sxm": 8}, "usd_per_gpu_hour": {"h100-sxm": 2.5}}},
  "pools": [{"name": "e", "region": "east", "model": "llama-3-8b", "gpu": "h100-sxm",
             "replicas": 0, "min_replicas": 0, "max_replicas": 4},
            {"name": "f", "region": "east", "model": "llama-3-8b", "gpu": "h100-sxm", "tp": 2,
             "replicas": 1}],
  "router": "least-outstanding",
  "autoscaler": {"interval_s": 10, "provision_s": 60, "up": 0.5, "down": 0.1}
}
JSON
"$KV" run --fleet "$T/as0.json" --synthetic 'poisson,rate=5,duration=60,isl=512,osl=64' --no-db \
    >"$T/as0.txt" 2>&1
check "fleet text: a line per pool, the autoscaled range, the cost" \
    "[ $? -eq 0 ] && grep -q 'fleet of 2 pools, 1 replica at the start' $T/as0.txt &&
     grep -q 'pool e (east): llama-3-8b (bf16, KV bf16) on h100-sxm (TP1), 0 replicas at the start (0..4, autoscaled)' $T/as0.txt &&
     grep -q 'pool f (east): .* (TP2), 1 replica at the start, ' $T/as0.txt &&
     grep -q 'GPU-hours .* | cost .* USD' $T/as0.txt && ! grep -q '0 x h100' $T/as0.txt"

# pools of one model whose KV pools differ: a request routes to one that
# can hold it (it went round robin, or by least outstanding tokens for
# decode, to one that rejected it kv_capacity: after its prefill, in the
# disaggregated fleet); one no pool holds is still rejected with its reason
cat >"$T/het.json" <<'JSON'
{"regions": {"r": {"gpus": {"h100-sxm": 8}}},
 "pools": [
  {"name": "big", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1},
  {"name": "small", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1,
   "options": {"kv-blocks": 50}}]}
JSON
cat >"$T/hetd.json" <<'JSON'
{"regions": {"r": {"gpus": {"h100-sxm": 8}}},
 "pools": [
  {"name": "pre", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "role": "prefill"},
  {"name": "decbig", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "role": "decode"},
  {"name": "decsmall", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "role": "decode",
   "options": {"kv-blocks": 50}}]}
JSON
for fs in het:1 hetd:2; do # the file, and the small pool's replica
    f=${fs%:*} small=${fs#*:}
    "$KV" run --fleet "$T/$f.json" --synthetic 'poisson,rate=5,requests=6,isl=1000,osl=20' --db "$T/$f.db" >/dev/null 2>&1
    check "$f: pools of unequal KV: every request completed, none on the small pool" \
        "[ $? -eq 0 ] && [ \"\$(sqlite3 $T/$f.db 'SELECT completed, rejected FROM summary')\" = '6|0' ] &&
         [ \"\$(sqlite3 $T/$f.db 'SELECT count(*) FROM requests WHERE replica = $small')\" = 0 ]"
done
"$KV" run --fleet "$T/het.json" --synthetic 'poisson,rate=5,requests=4,isl=4000,osl=5000' --json --no-db >"$T/het.out" 2>&1
check "het: a request no pool can hold is rejected, with its reason" \
    "[ $? -eq 0 ] && grep -q '\"rejected_context\": 4' $T/het.out"

# ... a prefill pool judged by what it holds (the prompt and its first
# token): a small one still prefills long outputs' requests
cat >"$T/pd.json" <<'JSON'
{"regions": {"r": {"gpus": {"h100-sxm": 8}}},
 "pools": [
  {"name": "pbig", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "role": "prefill"},
  {"name": "psmall", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "role": "prefill",
   "options": {"kv-blocks": 80}},
  {"name": "dec", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 2, "role": "decode"}]}
JSON
"$KV" run --fleet "$T/pd.json" --synthetic 'poisson,rate=5,requests=20,isl=1000,osl=500' --db "$T/pd.db" >/dev/null 2>&1
check "a small prefill pool: round robin still splits the prompts 10/10, all completed" \
    "[ $? -eq 0 ] && [ \"\$(sqlite3 $T/pd.db 'SELECT completed FROM summary')\" = 20 ] &&
     [ \"\$(sqlite3 $T/pd.db 'SELECT group_concat(n) FROM (SELECT sum(arrivals) AS n FROM timeline WHERE replica < 2 GROUP BY replica ORDER BY replica)')\" = '10,10' ]"
# ... a near region whose pool cannot hold the request: a farther one serves it
cat >"$T/near.json" <<'JSON'
{"regions": {"a": {"gpus": {"h100-sxm": 8}}, "b": {"gpus": {"h100-sxm": 8}}},
 "populations": {"p": {"weight": 1, "rtt_s": {"a": 0.01, "b": 0.05}}},
 "pools": [
  {"name": "near", "region": "a", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "options": {"kv-blocks": 50}},
  {"name": "far", "region": "b", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1}],
 "scope": "nearest"}
JSON
"$KV" run --fleet "$T/near.json" --synthetic 'poisson,rate=5,requests=6,isl=1000,osl=20' --json --no-db >"$T/near.out" 2>&1
check "scope nearest: the far region serves what the near pool cannot hold" \
    "[ $? -eq 0 ] && grep -q '\"completed\": 6,' $T/near.out"
# ... the pool that fits, autoscaled from 0, is the one that grows (the
# small pool took every request, to reject it, and the big one never started)
cat >"$T/asfit.json" <<'JSON'
{"regions": {"r": {"gpus": {"h100-sxm": 8}}},
 "pools": [
  {"name": "big", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 0, "min_replicas": 0, "max_replicas": 2},
  {"name": "small", "region": "r", "model": "llama-3-8b", "gpu": "h100-sxm", "replicas": 1, "options": {"kv-blocks": 50}}],
 "autoscaler": {"interval_s": 1, "provision_s": 5, "up": 0.5, "down": 0.1}}
JSON
"$KV" run --fleet "$T/asfit.json" --synthetic 'poisson,rate=2,requests=60,isl=1000,osl=20' --json --no-db >"$T/asfit.out" 2>&1
check "autoscaled: the pool that fits grows; those before it are at capacity, none kv_capacity" \
    "[ $? -eq 0 ] && grep -q '\"completed\": 41,' $T/asfit.out && grep -q '\"rejected_kv_capacity\": 0,' $T/asfit.out"

# a decode pool without chunked prefill takes a prefilled prompt longer
# than its step budget: its KV comes with it, one token is computed (such
# requests were refused batch_budget at the fleet's edge)
cat >"$T/dnc.json" <<'JSON'
{"regions": {"r": {"gpus": {"h100-sxm": 2}}},
 "pools": [{"name": "p", "region": "r", "model": "tiny", "gpu": "h100-sxm", "replicas": 1, "role": "prefill"},
           {"name": "d", "region": "r", "model": "tiny", "gpu": "h100-sxm", "replicas": 1, "role": "decode",
            "options": {"chunked-prefill": false, "max-batched-tokens": 256}}]}
JSON
"$KV" run --fleet "$T/dnc.json" --synthetic 'poisson,rate=5,requests=20,isl=1000,osl=10' --check true --json --no-db >"$T/dnc.out" 2>&1
check "decode pool, no chunking, prompts over its budget: all 20 completed" \
    "[ $? -eq 0 ] && grep -q '\"completed\": 20,' $T/dnc.out && grep -q '\"rejected_batch_budget\": 0,' $T/dnc.out"

# an error inside a pool's model file, at a long path, is kept whole
# within the fleet's message (it was cut at 600 bytes)
LP="$T/$(printf 'd%.0s' $(seq 240))/$(printf 'e%.0s' $(seq 240))/$(printf 'f%.0s' $(seq 200))"
mkdir -p "$LP" && echo '{"hidden_size": 1' >"$LP/m.json"
printf '{"regions":{"r":{"gpus":{"h100-sxm":8}}},"pools":[{"name":"c","region":"r","model":"%s","gpu":"h100-sxm","replicas":1}]}' "$LP/m.json" >"$T/lpf.json"
"$KV" run --fleet "$T/lpf.json" --limit 3 --no-db >/dev/null 2>"$T/lpf.err"
check "a pool's model file at a long path: exit 1, its path and line whole" \
    "[ $? -eq 1 ] && grep -q -- \"pools\[0\] (c): $LP/m.json:2: syntax: expected '}', got end of file\" $T/lpf.err"

tap_end
