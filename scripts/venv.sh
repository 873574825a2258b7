#!/bin/sh
# sh scripts/venv.sh PYTHON VENV: make VENV a virtual environment of PYTHON with chunkwise
# installed (editable, with the dev extras). A no-op when VENV is already that Python's
# and was installed after pyproject.toml last changed; rebuilt from scratch when it is
# another Python's.
set -eu
python=$1
venv=$2
stamp=$venv/.installed
if [ -z "$python" ]; then
    echo "no Python >= 3.11 found for $venv (see scripts/pythons.sh); install one, or name it: make PYTHONS=/path/to/python3 ..." >&2
    exit 1
fi
version() { "$1" -c 'import sys; print(sys.version.split()[0])'; }
want=$(version "$python")
if [ -x "$venv/bin/python" ] && [ "$(version "$venv/bin/python" 2>/dev/null || true)" = "$want" ]; then
    if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt "$0" ]; then
        exit 0
    fi
else
    [ -e "$venv" ] && echo "$venv is not Python $want's: rebuilding it"
    rm -rf "$venv"
    "$python" -m venv "$venv"
fi
echo "installing chunkwise and its dev extras into $venv (Python $want)"
start=$(date +%s)
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e '.[dev]'
# moto last, holding botocore at the version s3fs's aiobotocore chose (see pyproject.toml).
botocore=$("$venv/bin/python" -c 'import botocore; print(botocore.__version__)')
"$venv/bin/python" -m pip install --quiet -e '.[moto]' "botocore==$botocore"
touch "$stamp"
echo "installed into $venv in $(( $(date +%s) - start )) s"
