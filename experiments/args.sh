# shellcheck shell=sh
# experiments/args.sh: sourced (never run) by the validation scripts, before
# their own options: here (the script's folder), root (the source tree) and
# kvfleet (the first argument, shifted away, unless it is empty or an
# option: then ./kvfleet).
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
kvfleet=./kvfleet
case ${1-} in
	''|-*) ;;
	*) kvfleet=$1; shift ;;
esac
# args_done: after the script's own options: out, when not given, is
# results.csv beside the script (results_nocalib.csv with --calibration
# none); kvfleet must be an executable and in readable (exit 2 otherwise).
args_done() {
	if [ -z "$out" ]; then
		if [ "$calib" = none ]; then out=$here/results_nocalib.csv; else out=$here/results.csv; fi
	fi
	if [ ! -x "$kvfleet" ]; then
		echo "$0: $kvfleet: not an executable (give the kvfleet binary as the first argument)" >&2
		exit 2
	fi
	if [ ! -r "$in" ]; then
		echo "$0: $in: cannot read" >&2
		exit 2
	fi
}
