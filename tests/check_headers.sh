#!/bin/sh
# check_headers.sh: every header compiles on its own (STYLE.md section 6).
#
# For each *.h under sim traces kernels runtime tests of the source tree, a
# translation unit holding only
#     #include "config.h"
#     #include "<dir>/<header>"
# must pass $CC -fsyntax-only with the project's preprocessor and warning
# flags. Headers that nvcc sees (kernels/kern.h, sim/err.h, sim/req.h, and
# whatever a kernels/*.cu or *.cuh includes, directly or not) must also pass
# $CXX -std=c++17 -fsyntax-only: they have to be valid C++.
#
# The compilers and flags come from tests/check_headers.flags in the build
# directory (the current directory under make check), which the Makefile
# writes with one "key word" line per shell word, so flags holding quotes
# (-DX='"a b"') survive exactly as make passes them to the compiler. Keys:
# cc, cxx, cppflags, cflags, cxxflags. A missing C compiler skips (77); a
# missing C++ compiler skips only the C++ half, saying so.
set -u

top=${srcdir:-$(dirname "$0")/..}
flags=${KV_HEADER_FLAGS:-tests/check_headers.flags}
if [ ! -f "$flags" ]; then
    echo "check_headers: $flags not found (run through 'make check')" >&2
    exit 99
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/kv-headers.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT HUP INT TERM

# words KEY: writes the words recorded under KEY, one per line and in
# order, to $tmp/args. Each is read back verbatim: nothing is split or
# globbed again.
words() {
    : >"$tmp/args"
    while IFS= read -r line; do
        case "$line" in
            "$1 "?*) printf '%s\n' "${line#"$1 "}" >>"$tmp/args" ;;
        esac
    done <"$flags"
}

# compile LANG FILE: runs the compiler of LANG (c or c++) on FILE with its
# flags and -fsyntax-only; the compiler's messages go to $tmp/out.
compile() {
    lang=$1
    file=$2
    if [ "$lang" = c ]; then
        keys="cc cppflags cflags"
    else
        keys="cxx cppflags cxxflags"
    fi
    set --
    for k in $keys; do
        words "$k"
        while IFS= read -r w; do
            set -- "$@" "$w"
        done <"$tmp/args"
    done
    if [ "$lang" = c++ ]; then
        set -- "$@" -std=c++17 -Wall -Wextra
        if grep -qxF 'cflags -Werror' "$flags"; then
            set -- "$@" -Werror
        fi
    fi
    "$@" -fsyntax-only -x "$lang" "$file" >"$tmp/out" 2>&1
}

first_word() {
    words "$1"
    head -n 1 "$tmp/args"
}

cc=$(first_word cc)
cxx=$(first_word cxx)
if [ -z "$cc" ] || ! command -v "$cc" >/dev/null 2>&1; then
    echo "SKIP: C compiler '$cc' not found" >&2
    exit 77
fi
have_cxx=yes
if [ -z "$cxx" ] || ! command -v "$cxx" >/dev/null 2>&1; then
    have_cxx=no
fi

# The headers, relative to $top, in a stable order.
(
    cd "$top" || exit 99
    for d in sim traces kernels runtime tests; do
        [ -d "$d" ] && find "$d" \( -type d -name 'build*' -prune \) -o -type f -name '*.h' -print
    done
) | LC_ALL=C sort >"$tmp/headers"
if [ ! -s "$tmp/headers" ]; then
    echo "check_headers: no headers found under $top" >&2
    exit 99
fi

# Headers nvcc sees: the fixed floor, then the closure of the project
# headers that kernels/*.cu and *.cuh include. An include resolves as the
# compiler does: the including file's folder, then the -I folders of
# AM_CPPFLAGS; names found nowhere (config.h, CUDA's) are not ours.
printf '%s\n' kernels/kern.h sim/err.h sim/req.h >"$tmp/cxx"
(cd "$top" && find kernels -type f \( -name '*.cu' -o -name '*.cuh' \)) >"$tmp/scan"
while [ -s "$tmp/scan" ]; do
    : >"$tmp/next"
    while IFS= read -r src; do
        dir=$(dirname "$src")
        sed -n 's/^[ 	]*#[ 	]*include[ 	]*"\([^"]*\)".*/\1/p' "$top/$src" |
            while IFS= read -r inc; do
                for cand in "$dir/$inc" "$inc" "sim/$inc" "traces/$inc" "kernels/$inc" \
                    "runtime/$inc"; do
                    cand=$(echo "$cand" |
                        sed -e 's|^\./||' -e ':a' -e 's|[^/.][^/]*/\.\./||' -e 'ta')
                    [ -f "$top/$cand" ] || continue
                    if ! grep -qxF "$cand" "$tmp/cxx"; then
                        echo "$cand" >>"$tmp/cxx"
                        echo "$cand" >>"$tmp/next"
                    fi
                    break
                done
            done
    done <"$tmp/scan"
    mv "$tmp/next" "$tmp/scan"
done
LC_ALL=C sort -u "$tmp/cxx" -o "$tmp/cxx"

fail=0
n_c=0
n_cxx=0
while IFS= read -r h; do
    printf '#include "config.h"\n#include "%s"\n' "$h" >"$tmp/tu.c"
    n_c=$((n_c + 1))
    if ! compile c "$tmp/tu.c"; then
        echo "FAIL (C): $h does not compile on its own:" >&2
        sed 's/^/    /' "$tmp/out" >&2
        fail=1
    fi
    if grep -qxF "$h" "$tmp/cxx"; then
        if [ "$have_cxx" = yes ]; then
            cp "$tmp/tu.c" "$tmp/tu.cc"
            n_cxx=$((n_cxx + 1))
            if ! compile c++ "$tmp/tu.cc"; then
                echo "FAIL (C++): $h is seen by nvcc but is not valid C++:" >&2
                sed 's/^/    /' "$tmp/out" >&2
                fail=1
            fi
        fi
    fi
done <"$tmp/headers"

if [ "$have_cxx" = no ]; then
    echo "note: C++ compiler '$cxx' not found: C++ checks of" \
        "$(tr '\n' ' ' <"$tmp/cxx")skipped" >&2
fi
if [ $fail -ne 0 ]; then
    exit 1
fi
echo "check_headers: $n_c headers compile alone as C, $n_cxx as C++"
exit 0
