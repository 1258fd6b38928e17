#!/bin/sh
# bench/gpu.sh: the GPU host's checks and measurements, in the order
# docs/gpu.md gives them, each step under its own time limit so that one
# hang cannot eat a lease. Run from the source tree's root:
#
#     sh bench/gpu.sh BUNDLE OUTDIR STAGE...
#
# BUNDLE is a folder holding a CUDA build's `kvfleet`, `tests/test_kern_*_gpu`,
# `tests/test_be_cpu` and `kernels/dev/*` (docs/gpu.md, "What to copy"), and
# optionally `bin/sqlite3` with its libraries under `lib/`. Every step's
# output goes to OUTDIR/STEP.log; a table of steps, exit codes and seconds is
# printed last. Stages:
#   info      nvidia-smi, kvfleet --version, where cuBLAS was found
#   tests     every GPU test, test_be_cpu, test_backends.sh, test_profile.sh
#   runs      cuda executor runs (tiny, llama-3-8b), a replay, validate
#   sanitize  compute-sanitizer memcheck and racecheck on the GPU tests
#   dev       the kernels/dev benchmarks and ceilings (copy, GEMM, PCIe)
#   executor  the cuda executor at one sequence with --op-timing, and under
#             compute-sanitizer memcheck
#   validate  validate --backend cuda on the closed-loop and Azure workloads
#   profile   kvfleet profile --backend cuda (llama-3-8b, TP 1), calibrate,
#             and validate on the new calibration
set -u
B=$(cd "$1" && pwd)
O=$2
shift 2
mkdir -p "$O"
O=$(cd "$O" && pwd)
SRC=$(pwd)
export KVFLEET_DATA="$SRC/data"
[ -d "$B/bin" ] && PATH="$B/bin:$PATH"
[ -d "$B/lib" ] && LD_LIBRARY_PATH="$B/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
for d in /usr/local/cuda/lib /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -d "$d" ] && LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
done
export PATH LD_LIBRARY_PATH
KV="$B/kvfleet"
SUMMARY="$O/summary.txt"
: >"$SUMMARY"

# step NAME LIMIT_S COMMAND...: run it, log it, record exit code and time
step() {
    n=$1
    lim=$2
    shift 2
    t0=$(date +%s.%N)
    echo "== $n: $*" >"$O/$n.log"
    timeout "$lim" "$@" >>"$O/$n.log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    awk -v n="$n" -v rc="$rc" -v a="$t0" -v b="$t1" \
        'BEGIN { printf "%-28s rc=%-4s %8.1f s\n", n, rc, b - a }' | tee -a "$SUMMARY"
    return $rc
}

for stage in "$@"; do
    case $stage in
    info)
        step nvidia-smi 30 nvidia-smi
        step version 10 "$KV" --version
        step ldd 10 ldd "$KV"
        ;;
    tests)
        for t in "$B"/tests/test_kern_*_gpu; do
            step "$(basename "$t")" 180 "$t"
        done
        step test_be_cpu 120 "$B/tests/test_be_cpu"
        step test_backends 300 env KVFLEET="$KV" srcdir="$SRC" sh tests/test_backends.sh
        step test_profile 300 env KVFLEET="$KV" srcdir="$SRC" sh tests/test_profile.sh
        ;;
    runs)
        step run_tiny 120 "$KV" run --backend cuda --model tiny --dtype bf16 --op-timing \
            --synthetic 'closed,concurrency=4,isl=64,osl=16,requests=24' --db "$O/gpu.db" --json
        step run_8b 300 "$KV" run --backend cuda --model llama-3-8b --gpu h200 --op-timing \
            --synthetic 'closed,concurrency=16,isl=1024,osl=128,requests=64' --db "$O/gpu.db" --json
        step rerun_replay 120 "$KV" rerun "$O/gpu.db" 2 --backend replay --replay "$O/gpu.db:2" --json
        step validate_8b 300 "$KV" validate --backend cuda --model llama-3-8b --gpu h200 \
            --synthetic 'closed,concurrency=16,isl=1024,osl=128,requests=128' \
            --db "$O/gpu.db" --json --csv-dir "$O/val-csv"
        ;;
    sanitize)
        for t in attn kv rmsnorm; do
            step "memcheck_$t" 240 compute-sanitizer --tool memcheck --error-exitcode 9 \
                "$B/tests/test_kern_${t}_gpu"
        done
        step racecheck_attn 240 compute-sanitizer --tool racecheck --error-exitcode 9 \
            "$B/tests/test_kern_attn_gpu"
        ;;
    dev)
        step dev_ceilings 120 "$B/kernels/dev/ceilings"
        step dev_decode4 60 "$B/kernels/dev/paged_attn_decode4"
        step dev_decode4_long 60 "$B/kernels/dev/paged_attn_decode4" 1 32768 64 8 128 16
        step dev_prefill2 60 "$B/kernels/dev/prefill_attn2"
        step dev_prefill2_4k 60 "$B/kernels/dev/prefill_attn2" 1 0 4096 32 8 128 16
        for v in 1 2 3 4; do
            step "dev_rmsnorm$v" 60 "$B/kernels/dev/rmsnorm$v"
        done
        ;;
    executor)
        # one sequence: the operators' own times against the step's span
        step run_8b_c1 120 "$KV" run --backend cuda --model llama-3-8b --gpu h200 --op-timing \
            --synthetic 'closed,concurrency=1,isl=1024,osl=128,requests=4' --no-db --json
        step memcheck_executor 300 compute-sanitizer --tool memcheck --error-exitcode 9 \
            "$KV" run --backend cuda --model tiny --dtype bf16 --no-db \
            --synthetic 'closed,concurrency=4,isl=64,osl=16,requests=24'
        ;;
    validate)
        # the workloads of docs/VALIDATION.md's GPU table; each stores a
        # cuda run and its simulated twin in OUTDIR/val.db, so that any
        # calibration can be compared with them later through the replay
        # executor (kvfleet validate --backend replay --replay DB:RUN)
        for w in 'c1:closed,concurrency=1,isl=1024,osl=128,requests=100' \
            'c32:closed,concurrency=32,isl=1024,osl=128,requests=500' \
            'c128:closed,concurrency=128,isl=1024,osl=128,requests=500'; do
            step "validate_${w%%:*}" 300 "$KV" validate --backend cuda --model llama-3-8b \
                --gpu h200 --synthetic "${w#*:}" --db "$O/val.db" --json
        done
        step validate_azure2000 300 "$KV" validate --backend cuda --model llama-3-8b \
            --gpu h200 --limit 2000 --db "$O/val.db" --json
        ;;
    profile)
        step profile_8b 420 "$KV" profile --backend cuda --model llama-3-8b --gpu h200 \
            --budget-s 300 -o "$O/prof-h200"
        step calibrate_h200 120 "$KV" calibrate --gpu h200 --model llama-3-8b \
            --profiles "$O/prof-h200" -o "$O/h200.json"
        ;;
    *)
        echo "bench/gpu.sh: unknown stage '$stage'" >&2
        exit 2
        ;;
    esac
done
echo "== summary"
cat "$SUMMARY"
