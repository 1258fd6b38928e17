# experiments/study.sh: what the study scripts share (sourced, never run).
# study_init NAME [KVFLEET]: root (the source tree, made the working
# folder), kv (the kvfleet binary: KVFLEET, else build-st/kvfleet), out
# (OUTDIR, else a fresh /tmp/NAME.*, created) and fig (docs/figures).
study_init() {
    root=$(cd "$here/../.." && pwd)
    cd "$root"
    kv=${2:-$root/build-st/kvfleet}
    out=${OUTDIR:-$(mktemp -d "/tmp/$1.XXXXXX")}
    fig=$root/docs/figures
    mkdir -p "$out"
}
# study_sweep SPEC DB: runs the sweep SPEC into a fresh DB, two jobs.
study_sweep() {
    rm -f "$2"
    "$kv" sweep "$1" --db "$2" --jobs 2 --quiet
}
