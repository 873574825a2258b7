#!/bin/sh
# sh scripts/test-lines.sh VENV...: the whole test suite in each venv, one after the other
# (every one runs even when an earlier one fails), then a summary of what ran on which
# Python and zarr-python, and which supported line was not tested. $PYTEST_ARGS goes to
# every pytest. Exits non-zero when any run failed or no venv was given.
set -u
summary=
failed=0
seen_311=
seen_new=
describe() {  # sets minor and label from "<minor> <python> <zarr> <numcodecs>"
    minor=$1
    label="Python $2, zarr-python $3, numcodecs $4"
}
for venv in "$@"; do
    about=$("$venv/bin/python" -c '
import sys
from importlib.metadata import version
print(sys.version_info.minor, sys.version.split()[0], version("zarr"), version("numcodecs"))
') || about="? ? ? ?"
    describe $about
    if [ "$minor" = 11 ]; then seen_311=1; else seen_new=1; fi
    echo
    echo "=== tests on $label ($venv) ==="
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$venv/bin/pytest" ${PYTEST_ARGS:-}
    status=$?
    took=$(( $(date +%s) - start ))
    if [ "$status" = 0 ]; then result=passed; else result="FAILED (pytest exit $status)"; failed=1; fi
    summary="$summary
  $label ($venv): $result in $((took / 60))m$(printf %02d $((took % 60)))s"
done
echo
echo "=== test summary ===$summary"
[ -n "$seen_311" ] || echo "  not tested: the 3.11 line (zarr-python 3.1): no Python 3.11 found"
[ -n "$seen_new" ] || echo "  not tested: the newest line (zarr-python 3.4): no Python >= 3.12 found"
[ $# -gt 0 ] || failed=1
exit $failed
