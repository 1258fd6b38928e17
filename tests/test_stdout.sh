#!/bin/sh
# test_stdout.sh: a failed write to stdout is a runtime failure, exit 3 with
# a message, for every command that prints (stdio buffers the text, so the
# error shows at the final flush in main, or at trace stats' own flush).
# Writes to /dev/full; skips (77) without it.
set -u
. "${srcdir:-.}/tests/tap.sh"
tap_tmp stdout
if [ ! -w /dev/full ]; then
    echo "SKIP: no writable /dev/full"
    exit 77
fi
AZ="$srcdir/data/traces/azure_conv_2023.csv"
"$KV" trace stats "$AZ" >/dev/full 2>"$T/err"
check "trace stats > /dev/full exits 3 naming the write error" \
    "[ $? -eq 3 ] && grep -q 'write error' $T/err && [ \"\$(wc -l <$T/err)\" -eq 1 ]"
"$KV" trace stats "$AZ" --json >/dev/full 2>"$T/err"
check "trace stats --json > /dev/full exits 3 naming the write error" \
    "[ $? -eq 3 ] && grep -q 'write error' $T/err"
"$KV" trace stats "$AZ" --json >"$T/ok.json" 2>"$T/err"
check "trace stats --json to a file still exits 0" "[ $? -eq 0 ] && grep -q '\"requests\": 19366' $T/ok.json"
SYN='closed,concurrency=2,isl=16,osl=4,requests=4'
"$KV" run --synthetic "$SYN" --no-db --json >/dev/full 2>"$T/err"
check "run --json > /dev/full exits 3 naming the write error" \
    "[ $? -eq 3 ] && grep -q 'stdout: write error' $T/err"
"$KV" run --synthetic "$SYN" --no-db >/dev/full 2>"$T/err"
check "run > /dev/full exits 3" "[ $? -eq 3 ] && grep -q 'stdout: write error' $T/err"
"$KV" plot --help >/dev/full 2>"$T/err"
check "plot --help > /dev/full exits 3" "[ $? -eq 3 ] && grep -q 'stdout: write error' $T/err"
"$KV" run --synthetic "$SYN" --no-db --json >/dev/null 2>"$T/err"
check "run --json to /dev/null exits 0, says nothing" "[ $? -eq 0 ] && [ ! -s $T/err ]"
tap_end
