# tests/tap.sh: what every shell test shares (sourced, never run): the kvfleet
# binary, TAP lines (ok, bad, check), a scratch folder removed at exit, a skip
# (exit 77) when a command is missing, and the plan line at the end.
KV=${KVFLEET:-./kvfleet}
fails=0
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
bad() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }
check() { if eval "$2"; then ok "$1"; else bad "$1"; fi; }
# tap_tmp NAME: $T, a fresh folder /tmp/kvfleet-NAME.*, removed at exit
tap_tmp() {
    T=$(mktemp -d "/tmp/kvfleet-$1.XXXXXX")
    trap 'rm -rf "$T"' EXIT
}
# tap_need COMMAND [DEBIAN-PACKAGE]: skip the test without it
tap_need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "SKIP: the $1 command is not installed (apt-get install ${2:-$1})"
        exit 77
    fi
}
# tap_end: the plan, and the exit status
tap_end() {
    echo "1..$n"
    [ "$fails" -eq 0 ]
}
