#!/bin/sh
# Re-run the CryoET chunking study (128^3 float32, Blosc zstd-5 + shuffle) with chunkwise:
# cubic chunks 16/32/64/128 in zarr format 2, the slice-friendly 16x128x128, and the
# zarr v3 sharded layouts the study could not test. Data: a SYNTHETIC tomogram-like volume
# (membranes, dense particles, noise); store: a local directory (removed afterwards).
# Output: the terminal table, plus docs/cryoet-chunking/bench.{md,html,csv,json}.
set -e
cd "$(dirname "$0")/.."
STORE=$(mktemp -d)
.venv/bin/chunkwise bench src/chunkwise/examples/cryoet-128.yaml \
    --data synthetic:tomogram --store "$STORE" --only-candidates --repeats 7 \
    --out docs/cryoet-chunking --quiet
rmdir "$STORE" 2>/dev/null || true
