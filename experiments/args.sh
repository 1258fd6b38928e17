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
