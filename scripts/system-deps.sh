#!/bin/sh
# Install the Debian packages the test suite needs, if any are missing.
#
#   chromium                      the browser test
#   radosgw, ceph-mon, ceph-osd   a real S3 server for the tests (tests/s3server.py);
#                                 without them the S3 tests fall back to moto
#
# Idempotent: when everything is there it only prints "system packages: ok".
# Never fails the build: without root or password-less sudo it prints what is
# missing and exits 0.
set -eu

packages="chromium radosgw ceph-mon ceph-osd"
missing=""
for bin in /usr/bin/chromium /usr/bin/radosgw /usr/bin/ceph-mon /usr/bin/ceph-osd; do
    [ -x "$bin" ] || missing="$missing ${bin##*/}"
done

if [ -z "$missing" ]; then
    echo "system packages: ok"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
    as_root="sudo -n"
else
    echo "system packages: missing:$missing (not root, no password-less sudo);" \
        "S3 tests will fall back to moto and the browser test needs chromium" \
        "(install: apt-get install $packages)"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "system packages: missing:$missing and no apt-get here;" \
        "S3 tests will fall back to moto and the browser test needs chromium"
    exit 0
fi

echo "system packages: installing$missing ..."
log="${TMPDIR:-/tmp}/chunkwise-system-deps.$$.log"
# shellcheck disable=SC2086  # $as_root is empty or "sudo -n": word splitting wanted
if $as_root apt-get update -q >"$log" 2>&1 &&
    $as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends $packages >>"$log" 2>&1; then
    rm -f "$log"
else
    cat "$log" >&2
    rm -f "$log"
    echo "system packages: apt-get failed (see above)" >&2
    exit 1
fi

for bin in /usr/bin/chromium /usr/bin/radosgw /usr/bin/ceph-mon /usr/bin/ceph-osd; do
    if [ ! -x "$bin" ]; then
        echo "system packages: $bin still missing after apt-get install" >&2
        exit 1
    fi
done
echo "system packages: ok (installed$missing)"
