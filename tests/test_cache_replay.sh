#!/bin/sh
# test_cache_replay.sh: `kvfleet cache-replay` end to end: the JSON
# contract, hand-computed hit counts, the ideal reuse at unlimited
# capacity, Belady's bound on the shipped trace, determinism, and the exit
# codes and messages of bad input. Skips (77) while the command is not
# wired into kvfleet.
set -u
S=${srcdir:-.}
. "$S/tests/tap.sh"
tap_tmp creplay
if ! "$KV" cache-replay --help >/dev/null 2>&1; then
    echo "SKIP: this kvfleet has no cache-replay command"
    exit 77
fi
# field KEY FILE: the value of "KEY": in an indented JSON object
field() { sed -n "s/^ *\"$1\": \"*\\([^\",]*\\)\"*,*\$/\\1/p" "$2" | head -n 1; }
MC="$S/data/traces/mooncake_synthetic.jsonl"
D="$S/tests/data"

"$KV" cache-replay --help >"$T/help"
check "--help lists every policy" \
    "for p in lru lfu fifo ttl gdsf s3fifo arc session belady; do grep -q \"^  \$p \" $T/help || exit 1; done"

"$KV" cache-replay --trace "$MC" --policy lru --capacity-blocks 10000 --json >"$T/lru.json"
check "json run exits 0" "[ $? -eq 0 ]"
check "JSON has exactly the contract keys, in order" \
    "[ \"\$(grep -o '\"[a-z_]*\":' $T/lru.json | tr -d '\":' | tr '\n' ' ')\" = 'policy capacity_blocks requests blocks hit_blocks hit_rate_blocks hit_tokens hit_rate_tokens evictions unique_blocks uncached_blocks ' ]"
check "requests, blocks and unique blocks of the shipped trace" \
    "[ \$(field requests $T/lru.json) = 3993 ] && [ \$(field blocks $T/lru.json) = 121877 ] && [ \$(field unique_blocks $T/lru.json) = 43924 ]"
check "policy and capacity echoed" \
    "[ \$(field policy $T/lru.json) = lru ] && [ \$(field capacity_blocks $T/lru.json) = 10000 ]"

"$KV" cache-replay --trace "$MC" --policy lru --capacity-blocks 10000 --json >"$T/lru2.json"
check "deterministic" "cmp -s $T/lru.json $T/lru2.json"

"$KV" cache-replay --trace "$MC" --policy fifo --capacity-blocks unlimited --json >"$T/unl.json"
check "unlimited: hits = blocks - unique (the ideal reuse), no eviction" \
    "[ \$(field hit_blocks $T/unl.json) = \$((121877 - 43924)) ] && [ \$(field evictions $T/unl.json) = 0 ] && [ \$(field capacity_blocks $T/unl.json) = unlimited ]"

"$KV" cache-replay --trace "$MC" --policy belady --capacity-blocks 10000 --json >"$T/bel.json"
check "belady runs (two passes)" "[ $? -eq 0 ]"
for p in lru lfu fifo ttl gdsf s3fifo arc session; do
    "$KV" cache-replay --trace "$MC" --policy $p --capacity-blocks 10000 --json >"$T/$p.json"
    check "belady >= $p at 10000 blocks" \
        "[ \$(field hit_blocks $T/bel.json) -ge \$(field hit_blocks $T/$p.json) ]"
done

# hand-computed (see tests/test_evict.c): capacity 3
for pc in lru:5 fifo:4 lfu:6; do
    p=${pc%:*}
    h=${pc#*:}
    "$KV" cache-replay --trace "$D/cache_single.jsonl" --policy $p --capacity-blocks 3 --json >"$T/s.json"
    check "cache_single.jsonl: $p hits $h of 15" \
        "[ \$(field hit_blocks $T/s.json) = $h ] && [ \$(field hit_tokens $T/s.json) = $((h * 512)) ]"
done
"$KV" cache-replay --trace "$D/cache_chain.jsonl" --policy lru --capacity-blocks 3 --json >"$T/c.json"
check "cache_chain.jsonl: leaf-first evictions, 5 hits, 7 evictions, 9 unique" \
    "[ \$(field hit_blocks $T/c.json) = 5 ] && [ \$(field evictions $T/c.json) = 7 ] && [ \$(field unique_blocks $T/c.json) = 9 ]"
"$KV" cache-replay --trace "$D/cache_chain.jsonl" --policy lru --capacity-blocks 3 >"$T/c.txt"
check "text output counts the block that could not be cached" \
    "grep -q '^uncached_blocks *1 ' $T/c.txt && grep -q '^hit_rate_blocks ' $T/c.txt"
"$KV" cache-replay --trace "$D/cache_single.jsonl" --policy ttl:idle=2.5s --capacity-blocks unlimited --json >"$T/t.json"
check "ttl:idle=2.5s drops blocks idle longer than 2.5 s (requests 1 s apart: 2 hits)" \
    "[ \$(field hit_blocks $T/t.json) = 2 ]"
"$KV" cache-replay --trace "$D/cache_single.jsonl" --policy lru --capacity-blocks 3 --limit 4 --json >"$T/l.json"
check "--limit" "[ \$(field requests $T/l.json) = 4 ] && [ \$(field hit_blocks $T/l.json) = 1 ]"
# repetitions past the simulated horizon (1e9 s) are refused, not wrapped round
printf '{"timestamp": 0, "input_length": 16, "output_length": 1, "hash_ids": [1]}\n{"timestamp": 1000000000, "input_length": 16, "output_length": 1, "hash_ids": [1]}\n' >"$T/span.jsonl"
"$KV" cache-replay --trace "$T/span.jsonl" --policy ttl --capacity-blocks 10 --repeat 10000 >/dev/null 2>"$T/span.err"
check "--repeat past the horizon exits 1, naming --repeat" "[ $? -eq 1 ] && grep -q -- '--repeat' $T/span.err"
# and refused after the first pass, not after the ~10^9 passes that fit
# (--repeat 2147483647 over a trace of seconds ran for hours; found by fuzzing)
timeout 60 "$KV" cache-replay --trace "$D/cache_single.jsonl" --policy lru --capacity-blocks 10 --repeat 2147483647 \
    >/dev/null 2>"$T/span2.err"
check "--repeat 2147483647 over a short trace exits 1 at once, naming the repetition" \
    "[ $? -eq 1 ] && grep -q -- \"--repeat: .* got repetition 66666667 reaching past it\" $T/span2.err"
"$KV" cache-replay --trace "$D/cache_single.jsonl" --policy lru --capacity-blocks 100 --repeat 3 --json >"$T/r.json"
check "--repeat uses fresh keys each time" \
    "[ \$(field requests $T/r.json) = 45 ] && [ \$(field unique_blocks $T/r.json) = 15 ]"
# a trace read more than once (belady's first pass, --repeat) must be a
# regular file: a pipe was read empty the second time and reported as
# "/dev/stdin:1: header: ... got an empty file"; one pass still reads it
head -n 50 "$MC" >"$T/mc50.jsonl"
WHY_B='--policy belady reads the trace twice (once ahead, for the oracle)'
head -n 50 "$MC" | "$KV" cache-replay --trace /dev/stdin --policy belady --capacity-blocks 100 >/dev/null 2>"$T/p1"
check "belady on a pipe exits 1 at once, saying why" \
    "[ $? -eq 1 ] && grep -qx -- \"kvfleet cache-replay: /dev/stdin: $WHY_B: expected a regular file, got a pipe\" $T/p1"
head -n 50 "$MC" | "$KV" cache-replay --trace /dev/stdin --policy lru --capacity-blocks 100 --repeat 2 >/dev/null 2>"$T/p2"
check "--repeat 2 on a pipe exits 1 at once, saying why" \
    "[ $? -eq 1 ] && grep -qx -- \"kvfleet cache-replay: /dev/stdin: --repeat 2 reads the trace 2 times: expected a regular file, got a pipe\" $T/p2"
"$KV" cache-replay --trace "$T/mc50.jsonl" --policy lru --capacity-blocks 100 --json >"$T/p3.ref"
head -n 50 "$MC" | "$KV" cache-replay --trace /dev/stdin --policy lru --capacity-blocks 100 --json >"$T/p3.json"
check "one pass (lru, --repeat 1) still reads a pipe" "[ $? -eq 0 ] && cmp -s $T/p3.ref $T/p3.json"
"$KV" cache-replay --trace /dev/stdin --policy belady --capacity-blocks 100 --repeat 2 --json <"$T/mc50.jsonl" >"$T/p4.json"
check "belady --repeat 2 reads /dev/stdin redirected from a regular file" \
    "[ $? -eq 0 ] && [ \$(field requests $T/p4.json) = 100 ]"

# bad input: exit 1 with a message; usage errors: exit 2
"$KV" cache-replay --trace "$MC" --policy s3fifo:small=0.1,small=0.5 --capacity-blocks 10 >/dev/null 2>"$T/e0"
check "a policy key given twice exits 1, naming it" "[ $? -eq 1 ] && grep -q \"got 'small' twice\" $T/e0"
"$KV" cache-replay --trace "$MC" --policy nope --capacity-blocks 10 >/dev/null 2>"$T/e1"
check "unknown policy exits 1" "[ $? -eq 1 ]"
check "unknown policy lists the known ones" \
    "grep -q \"expected one of lru, lfu, fifo, ttl, gdsf, s3fifo, arc, session, belady, got 'nope'\" $T/e1"
"$KV" cache-replay --trace "$MC" --policy lru --capacity-blocks 0 >/dev/null 2>"$T/e2"
check "capacity 0 is refused (exit 1)" "[ $? -eq 1 ] && grep -q 'capacity-blocks' $T/e2"
"$KV" cache-replay --trace "$MC" --policy lru --capacity-blocks lots >/dev/null 2>&1
check "malformed capacity exits 2" "[ $? -eq 2 ]"
"$KV" cache-replay --trace "$MC" --policy ttl:idle=abc --capacity-blocks 10 >/dev/null 2>"$T/e3"
check "bad parameter value exits 1 naming the key" \
    "[ $? -eq 1 ] && grep -q \"ttl:idle: expected a duration\" $T/e3"
"$KV" cache-replay --trace "$MC" --policy s3fifo:tiny=1 --capacity-blocks 10 >/dev/null 2>"$T/e4"
check "unknown parameter exits 1 listing the accepted keys" \
    "[ $? -eq 1 ] && grep -q \"expected one of small, ghost, move, got 'tiny'\" $T/e4"
"$KV" cache-replay --trace "$S/tests/data/azure_small.csv" --policy lru --capacity-blocks 10 >/dev/null 2>"$T/e5"
check "a trace without block hashes is refused (exit 1)" \
    "[ $? -eq 1 ] && grep -q 'Mooncake JSONL with hash_ids' $T/e5"
"$KV" cache-replay --trace "$D/mooncake_small.jsonl" --policy lru --capacity-blocks 10 >/dev/null 2>"$T/e6"
check "a request without hash_ids is refused (exit 1), naming its file line" \
    "[ $? -eq 1 ] && grep -q 'mooncake_small.jsonl:4: hash_ids: expected a non-empty list' $T/e6"
printf '%s\n' '{"timestamp":0,"input_length":512,"output_length":1,"hash_ids":[1]}' '' \
    '{"timestamp":1,"input_length":512,"output_length":1,"hash_ids":[2]}' \
    '{"timestamp":2,"input_length":512,"output_length":1,"hash_ids":[]}' >"$T/nohash.jsonl"
"$KV" cache-replay --trace "$T/nohash.jsonl" --policy lru --capacity-blocks 2 >/dev/null 2>"$T/e6b"
check "an empty hash_ids after a blank line names the physical line" \
    "[ $? -eq 1 ] && grep -q 'nohash.jsonl:4: hash_ids:' $T/e6b"
"$KV" cache-replay --trace "$MC" --policy lru --capacity-blocks 9223372036854775807 --json \
    >/dev/null 2>"$T/e8"
check "capacity INT64_MAX (the unlimited sentinel) is out of range (exit 1)" \
    "[ $? -eq 1 ] && grep -q 'expected an integer from 1 to 1000000000000000000' $T/e8"
"$KV" cache-replay --trace "$MC" --policy lru --capacity-blocks 1000000000000000000 --limit 2 \
    --json >"$T/max.json"
check "capacity 10^18, the maximum, is echoed as a number" \
    "[ \$(field capacity_blocks $T/max.json) = 1000000000000000000 ]"
"$KV" cache-replay --trace "$MC" --policy lru --capacity-blocks 99999999999999999999 >/dev/null 2>&1
check "capacity beyond int64 is out of range (exit 1)" "[ $? -eq 1 ]"
"$KV" cache-replay --trace "$MC" --policy lru --capacity-blocks 10 --limit 99999999999999999999 \
    >/dev/null 2>&1
check "--limit beyond int64 is out of range (exit 1)" "[ $? -eq 1 ]"
printf '{"timestamp": 0, "input_length": 10, "output_length": 1, "hash_ids": [1]}\n{"timestamp": 1, "input_length": "x"}\n' >"$T/bad.jsonl"
"$KV" cache-replay --trace "$T/bad.jsonl" --policy lru --capacity-blocks 10 >/dev/null 2>"$T/e7"
check "malformed trace exits 1 naming file:line: field" \
    "[ $? -eq 1 ] && grep -q 'bad.jsonl:2: input_length: expected' $T/e7"
# more hash ids than prompt tokens: refused by the reader, so by cache-replay
# and run alike (it counted 2261 hit tokens of 390 prompt tokens)
awk 'BEGIN { for (i = 0; i < 20; i++) { s = ""; for (j = 0; j < 1000; j++) s = s (j ? ", " : "") j;
        printf "{\"timestamp\": %d, \"input_length\": %d, \"output_length\": 3, \"hash_ids\": [%s]}\n", i * 10, 10 + i, s } }' >"$T/hm.jsonl"
"$KV" cache-replay --trace "$T/hm.jsonl" --policy lru --capacity-blocks 100 --json >/dev/null 2>"$T/e8"
check "cache-replay: more hash ids than prompt tokens exits 1 naming file:line" \
    "[ $? -eq 1 ] && grep -q 'hm.jsonl:1: hash_ids: expected at most 1 ids for input_length 10 (512-token hash blocks)' $T/e8"
"$KV" run --trace "$T/hm.jsonl" --no-db >/dev/null 2>"$T/e9"
check "run: more hash ids than prompt tokens exits 1 naming file:line" \
    "[ $? -eq 1 ] && grep -q 'hm.jsonl:1: hash_ids: expected at most 1 ids' $T/e9"
# the bound is the hash block size's: 2 ids for 600 tokens of 512-token blocks
# are right, 3 are not; with 64-token blocks 10 are right
printf '{"timestamp": 0, "input_length": 600, "output_length": 1, "hash_ids": [1, 2]}\n' >"$T/h2.jsonl"
printf '{"timestamp": 0, "input_length": 600, "output_length": 1, "hash_ids": [1, 2, 3]}\n' >"$T/h3.jsonl"
"$KV" cache-replay --trace "$T/h2.jsonl" --policy lru --capacity-blocks 10 >/dev/null 2>&1
check "2 ids for 600 tokens, 512-token blocks: accepted" "[ $? -eq 0 ]"
"$KV" cache-replay --trace "$T/h3.jsonl" --policy lru --capacity-blocks 10 >/dev/null 2>"$T/e10"
check "3 ids for 600 tokens, 512-token blocks: exit 1" \
    "[ $? -eq 1 ] && grep -q 'h3.jsonl:1: hash_ids: expected at most 2 ids for input_length 600' $T/e10"
"$KV" cache-replay --trace "$T/h3.jsonl" --policy lru --capacity-blocks 10 --block-tokens 64 \
    >/dev/null 2>&1
check "3 ids for 600 tokens, 64-token blocks: accepted" "[ $? -eq 0 ]"
"$KV" run --trace "$T/h3.jsonl" --no-db >/dev/null 2>&1
check "run: 3 ids for 600 tokens, 512-token blocks: exit 1" "[ $? -eq 1 ]"
"$KV" run --trace "$T/h3.jsonl" --no-db --hash-block-tokens 256 >/dev/null 2>&1
check "run: 3 ids for 600 tokens, 256-token blocks: accepted" "[ $? -eq 0 ]"
"$KV" cache-replay --trace "$T/none.jsonl" --policy lru --capacity-blocks 10 >/dev/null 2>&1
check "missing file exits 1" "[ $? -eq 1 ]"
"$KV" cache-replay --policy lru --capacity-blocks 10 >/dev/null 2>&1
check "missing --trace exits 2" "[ $? -eq 2 ]"
"$KV" cache-replay --trace "$MC" --policy lru --capacity-blocks 10 --bogus 1 >/dev/null 2>&1
check "unknown option exits 2" "[ $? -eq 2 ]"

tap_end
