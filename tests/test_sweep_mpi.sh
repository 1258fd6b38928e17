#!/bin/sh
# test_sweep_mpi.sh: a 2-rank mpirun sweep gives the rows of a
# single-process sweep of the same spec (keyed by point and replication,
# wall-clock columns aside), and -np 1 does too. Skips (77) when kvfleet
# was built without MPI or mpirun is missing.
set -u
. "${srcdir:-.}/tests/tap.sh"
case $KV in /*) ;; *) KV=$(pwd)/$KV ;; esac
S=$(cd "${srcdir:-.}/tests/data/sweep" && pwd)
if ! "$KV" --version | grep -q '^mpi: yes'; then
    echo "SKIP: kvfleet was built without MPI (./configure --with-mpi)"
    exit 77
fi
if ! command -v mpirun >/dev/null 2>&1 || ! command -v sqlite3 >/dev/null 2>&1; then
    echo "SKIP: mpirun or sqlite3 is not installed"
    exit 77
fi
OMPI_ALLOW_RUN_AS_ROOT=1
OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
tap_tmp sweep-mpi

. "${srcdir:-.}/tests/sweep_dump.sh"
dump() { sweep_dump "$1" "p.error,"; }

mkdir -p "$T/one" "$T/np2" "$T/np1" "$T/fail"
(cd "$T/one" && "$KV" sweep "$S/long.json" --db s.db --quiet >out 2>err)
check "single-process sweep exits 0" "[ $? -eq 0 ]"
(cd "$T/np2" && mpirun --oversubscribe -np 2 "$KV" sweep "$S/long.json" --db s.db --quiet >out 2>err)
rc=$?
check "mpirun -np 2 exits 0" "[ $rc -eq 0 ] || { cat $T/np2/err; false; }"
dump "$T/one/s.db" >"$T/d1"
dump "$T/np2/s.db" >"$T/d2"
check "-np 2 rows identical to the single-process sweep" "[ -s $T/d1 ] && cmp -s $T/d1 $T/d2"
check "-np 2: 16 runs, each point once" \
    "[ \"\$(sqlite3 $T/np2/s.db \"SELECT (SELECT count(*) FROM runs), (SELECT count(DISTINCT run_id) FROM sweep_points WHERE status = 'done')\")\" = '16|16' ]"
(cd "$T/np1" && mpirun --oversubscribe -np 1 "$KV" sweep "$S/long.json" --db s.db --jobs 2 --quiet >out 2>err)
check "mpirun -np 1 --jobs 2 exits 0" "[ $? -eq 0 ]"
dump "$T/np1/s.db" >"$T/d3"
check "-np 1 rows identical to the single-process sweep" "cmp -s $T/d1 $T/d3"
(cd "$T/fail" && mpirun --oversubscribe -np 2 "$KV" sweep "$S/fail.json" --db s.db --quiet >out 2>err)
check "-np 2 with a failing point: exit 1" "[ $? -eq 1 ]"
check "-np 2: the failed point recorded, the others done" \
    "[ \"\$(sqlite3 $T/fail/s.db \"SELECT group_concat(status) FROM (SELECT status FROM sweep_points ORDER BY point_id)\")\" = 'done,failed,done' ]"

# a point's notes: prefixed with the point as a local worker's, none with --quiet
mkdir -p "$T/note"
(cd "$T/note" && "$KV" sweep "$S/note.json" --db l.db >out 2>lerr)
(cd "$T/note" && mpirun --oversubscribe -np 2 "$KV" sweep "$S/note.json" --db m.db >out 2>merr)
check "-np 2: a point's note is echoed prefixed with its point, as locally" \
    "grep -q '^point 0 rep 0: kvfleet: note: --kv-blocks 100000000' $T/note/merr && [ \"\$(grep -c '^point ' $T/note/merr)\" = \"\$(grep -c '^point ' $T/note/lerr)\" ]"
(cd "$T/note" && mpirun --oversubscribe -np 2 "$KV" sweep "$S/note.json" --db q.db --quiet >out 2>qerr)
check "-np 2 --quiet: no note" "[ \$? -eq 0 ] && ! grep -q 'note' $T/note/qerr"
mpirun --oversubscribe -np 3 "$KV" sweep "$S/grid.json" --dry-run >"$T/dry" 2>/dev/null
check "-np 3 --dry-run: the list once" \
    "[ \$(grep -c '^point ' $T/dry) -eq 8 ] && [ \$(grep -c '^sweep ' $T/dry) -eq 1 ]"

tap_end
