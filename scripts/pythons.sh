#!/bin/sh
# The Pythons `make test` runs chunkwise on, one per supported zarr-python line:
#   3.11 line:   Python 3.11 (zarr-python 3.1.x, its last line for 3.11)
#   newest line: the newest Python >= 3.12 (zarr-python 3.4.x)
#
# Candidates: $PYTHONS when set (a space-separated list), else python3 and every
# python3.1N on PATH, and $(pyenv root)/versions/*/bin/python3 when pyenv is installed.
# A candidate counts only if it runs and can make a virtual environment (pyenv's shims
# for a version that is not selected refuse to run; Debian's python3.X without the
# python3.X-venv package has no ensurepip); pre-releases are left out.
#
#   sh scripts/pythons.sh          -> "<3.11 python> <version> <newest python> <version>"
#                                     with "-" for a line that was not found (for make)
#   sh scripts/pythons.sh report   -> the same in words, on stderr
set -u

candidates() {
    if [ -n "${PYTHONS:-}" ]; then
        for c in $PYTHONS; do echo "$c"; done
        return
    fi
    echo python3
    old_ifs=$IFS
    IFS=:
    for dir in $PATH; do
        IFS=$old_ifs
        for c in "$dir"/python3.1[1-9] "$dir"/python3.[2-9][0-9]; do
            [ -x "$c" ] && echo "$c"
        done
    done
    IFS=$old_ifs
    if command -v pyenv >/dev/null 2>&1; then
        root=$(pyenv root 2>/dev/null)
        for c in "$root"/versions/3.1[1-9]*/bin/python3 "$root"/versions/3.[2-9][0-9]*/bin/python3; do
            [ -x "$c" ] && echo "$c"
        done
    fi
}

# "<minor> <micro> <executable>" for each usable candidate.
usable() {
    limit=
    command -v timeout >/dev/null 2>&1 && limit="timeout 30"
    candidates | while read -r c; do
        # The base interpreter, not a virtual environment's (which make may delete).
        $limit "$c" -c '
import sys, venv, ensurepip
v = sys.version_info
if v.major == 3 and v.minor >= 11 and v.releaselevel == "final":
    print(v.minor, v.micro, getattr(sys, "_base_executable", "") or sys.executable)
' 2>/dev/null
    done | sort -k1,1n -k2,2n -u
}

found=$(usable)
line_311=$(echo "$found" | awk '$1 == 11' | tail -n 1)
line_new=$(echo "$found" | awk '$1 >= 12' | tail -n 1)

word() {  # word <line> <field>: the python (3) or its version (1.2) of a found line, or -
    if [ -z "$1" ]; then echo -; return; fi
    set -- $1 "$2"
    if [ "$4" = version ]; then echo "3.$1.$2"; else echo "$3"; fi
}

if [ "${1:-}" = report ]; then
    {
        if [ -n "$line_311" ]; then
            echo "  3.11 line   (zarr-python 3.1): Python $(word "$line_311" version) $(word "$line_311" path)"
        else
            echo "  3.11 line   (zarr-python 3.1): NOT FOUND (no python3.11 on PATH or in pyenv that runs and has venv)"
        fi
        if [ -n "$line_new" ]; then
            echo "  newest line (zarr-python 3.4): Python $(word "$line_new" version) $(word "$line_new" path)"
        else
            echo "  newest line (zarr-python 3.4): NOT FOUND (no Python >= 3.12 on PATH or in pyenv that runs and has venv)"
        fi
        if [ -z "$line_311$line_new" ]; then
            echo "  chunkwise needs Python >= 3.11; install one, or name it: make test PYTHONS=/path/to/python3"
        fi
    } >&2
    [ -n "$line_311$line_new" ]
    exit
fi
echo "$(word "$line_311" path) $(word "$line_311" version) $(word "$line_new" path) $(word "$line_new" version)"
