#!/bin/sh
# test_input_files.sh: JSON input files (--calibration, --gpu, --model, a
# fleet, a sweep spec) that are wrong in ways a fuzzer found, refused with
# exit 1 and a message naming the file and the field.
set -u
. "${srcdir:-.}/tests/tap.sh"
tap_tmp inputs
S='poisson,rate=5,requests=4,isl=32,osl=4'

# a calibration fitted for another GPU was refused without the file's name
CAL="$srcdir/data/calib/h200-kvfleet.json"
"$KV" run --no-db --synthetic "$S" --calibration "$CAL" >/dev/null 2>"$T/c1"
check "run: a calibration of another GPU, exit 1 naming the file, gpu and both GPUs" \
    "[ $? -eq 1 ] && grep -q \"h200-kvfleet.json: gpu: expected h100-sxm (one fitted for the run's GPU), got 'h200'\" $T/c1"
"$KV" predict --calibration "$CAL" --decode 8@1000 >/dev/null 2>"$T/c2"
check "predict: a calibration of another GPU, exit 1 naming the file" \
    "[ $? -eq 1 ] && grep -q \"h200-kvfleet.json: gpu: expected h100-sxm (one fitted for the run's GPU), got 'h200'\" $T/c2"
"$KV" run --no-db --synthetic "$S" --calibration "$CAL" --gpu h200 >/dev/null 2>"$T/c3"
check "run: the same calibration with its own GPU, exit 0" "[ $? -eq 0 ]"

# an absurd overhead (it made a step pass the simulator's horizon) is
# refused as the file is read, naming the file and the field
sed 's/"overhead_s": *[0-9.eE+-]*/"overhead_s": 1e307/' \
    "$srcdir/data/calib/h100-sxm.json" >"$T/huge.json"
"$KV" run --no-db --synthetic "$S" --calibration "$T/huge.json" >/dev/null 2>"$T/c4"
check "run: an overhead of 1e307 s, exit 1 naming the calibration file and the field" \
    "[ $? -eq 1 ] && grep -q \"huge.json: ops.qkv_proj.overhead_s: expected a number of seconds in \\[0, 1\\], got '1e307'\" $T/c4"

tap_end
