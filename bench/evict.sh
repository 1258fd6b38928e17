#!/bin/sh
# bench/evict.sh: eviction policy cost per block access (make bench).
# Prints figures; asserts nothing.
#  (1) bench/evict: the Mooncake trace repeated to about 10 million block
#      accesses (fresh keys each time), every policy, at 10000 and 40000
#      blocks; the replay loop alone (trace parsed beforehand), best of 3.
#  (2) `kvfleet cache-replay` end to end on the same trace (JSON parsing
#      and the distinct-key set included), LRU, once, when a kvfleet that
#      has the command is given.
# usage: bench/evict.sh BENCH_EVICT TRACE [KVFLEET]
set -eu
BIN=${1:-./bench/evict}
TRACE=${2:-data/traces/mooncake_synthetic.jsonl}
KV=${3:-./kvfleet}
echo "kvfleet eviction bench, $(date -u +%Y-%m-%d), $(uname -m), $(nproc) CPUs"
"$BIN" "$TRACE" 10000 1e7 3
"$BIN" "$TRACE" 40000 1e7 3
if [ -x "$KV" ] && "$KV" cache-replay --help >/dev/null 2>&1; then
    echo "kvfleet cache-replay end to end (parsing included):"
    "$KV" cache-replay --trace "$TRACE" --policy lru --capacity-blocks 10000 --repeat 20 |
        sed -n 's/^\(blocks\|hit_rate_blocks\|wall_s\)/  &/p'
fi
