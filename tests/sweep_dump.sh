# tests/sweep_dump.sh: sweep_dump DB [POINT-COLUMNS] prints every row of a
# sweep file keyed by (point_id, rep) instead of run_id, without the
# wall-clock columns, nor the results file in the stored configs (its
# absolute path): what must be identical between two sweeps of one spec
# (sourced by test_sweep.sh and test_sweep_mpi.sh, never run). POINT-COLUMNS,
# e.g. "p.error,", adds sweep_points columns after p.status.
sweep_dump() {
    for t in requests steps timeline; do
        sqlite3 "$1" "SELECT p.point_id, p.rep, x.* FROM sweep_points p JOIN $t x
                      ON x.run_id = p.run_id ORDER BY p.point_id, p.rep, x.rowid" | cut -d'|' -f1,2,4-
    done
    cols=$(sqlite3 "$1" "SELECT group_concat('s.\"' || name || '\"') FROM pragma_table_info('summary')
                         WHERE name NOT IN ('run_id', 'wall_s', 'peak_mem_bytes')")
    sqlite3 "$1" "SELECT p.point_id, p.rep, $cols FROM sweep_points p JOIN summary s
                  ON s.run_id = p.run_id ORDER BY p.point_id, p.rep"
    sqlite3 "$1" "SELECT p.point_id, p.rep, p.status, ${2:-} p.axes, json_set(p.config, '\$.db', ''),
                  r.kind, r.status, r.seed, json_set(r.config, '\$.db', ''), r.backend,
                  r.code_version FROM sweep_points p
                  LEFT JOIN runs r ON r.run_id = p.run_id ORDER BY p.point_id, p.rep"
    sqlite3 "$1" "SELECT name, spec, status, n_points, seeds, warmup_s FROM sweeps"
}
