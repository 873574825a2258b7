"""The reader presets' fixed costs, measured: CPU per chunk and time per call for each
library that reads, and the time per request of the emulated HTTP link tensorstore reads.

Run:  .venv-3.13/bin/python benchmarks/bench_reader_constants.py [--write-results]
      (and .venv/bin/python ... for the zarr-python 3.1 line)

* **CPU per chunk, time per call.** ``chunkwise calibrate``'s measurement
  (:func:`chunkwise.measure.calibrate.calibrate_codec`) through zarr-python (in memory),
  tensorstore (``file`` kvstore) and zarrs (zarr-python's codec pipeline), on a 4 MiB
  smooth float32 sample, for zstd:3, blosc:zstd:5:shuffle and no codec, two rounds:
  median and range over the six. The presets in ``src/chunkwise/model/storage.py`` quote
  these figures.
* **Requests through the emulated HTTP link.** One tensorstore read of ``n`` elements,
  each in its own uncompressed chunk (``n`` GET requests), through
  :class:`~chunkwise.io.http_emulation.EmulatedHTTPServer` at 20 ms per request and 64
  requests at once: median wall time of 5 reads, and how much each request beyond the
  first adds.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import zarr
from harness import machine, publish

from chunkwise.io.http_emulation import EmulatedHTTPServer
from chunkwise.io.stores import open_target
from chunkwise.measure.calibrate import calibrate_codec
from chunkwise.model.codec import parse_codec

CODECS = ("zstd:3", "blosc:zstd:5:shuffle", "none")
ROUNDS = 2
LINK = "emulated://?latency=20ms&bandwidth=1GB/s&stream_bandwidth=100MB/s&concurrency=64"
COUNTS = (1, 8, 16, 32, 64, 96)
READS = 5


def constants(family: str) -> list[tuple[float, float]]:
    """(CPU per chunk, time per call) in seconds, per codec and round, through ``family``."""
    rng = np.random.default_rng(1)
    sample = np.cumsum(rng.normal(size=(64, 128, 128)), axis=2).astype("float32")
    out = []
    for _ in range(ROUNDS):
        for name in CODECS:
            cal = calibrate_codec(sample, parse_codec(name), reader=family)
            assert cal is not None
            out.append((cal.per_chunk_read_s, cal.per_call_read_s))
    return out


def _ms(values: list[float]) -> str:
    mid = statistics.median(values) * 1e3
    return f"{mid:.3g} ms ({min(values) * 1e3:.3g}–{max(values) * 1e3:.3g})"


def http_requests() -> list[tuple[int, float]]:
    """(requests, median seconds) of tensorstore reads of n chunks over the emulated link."""
    import tensorstore as ts

    folder = Path(tempfile.mkdtemp(prefix="chunkwise-bench-"))
    try:
        arr = zarr.create_array(
            zarr.storage.LocalStore(folder), shape=(128, 128), chunks=(1, 128), dtype="f4",
            compressors=None,
        )  # fmt: skip
        arr[...] = np.arange(128 * 128, dtype="f4").reshape(128, 128)
        target = open_target(LINK)
        assert target.emulation is not None
        out = []
        with EmulatedHTTPServer(folder, target.emulation) as server:
            kvstore = {"driver": "http", "base_url": server.base_url}
            for n in COUNTS:
                rows = np.random.default_rng(n).choice(128, n, replace=False)
                times = []
                for _ in range(READS):
                    # A fresh context each time: nothing cached from the previous read.
                    opened = ts.open(
                        {"driver": "zarr3", "kvstore": kvstore}, read=True, context=ts.Context()
                    ).result()
                    started = time.perf_counter()
                    opened.vindex[rows, np.zeros(n, int)].read().result()
                    times.append(time.perf_counter() - started)
                out.append((n, statistics.median(times)))
        return out
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    families = ["zarr-python"] + [f for f in ("tensorstore", "zarrs") if find_spec(f)]
    lines = [
        f"Command: `python benchmarks/bench_reader_constants.py --write-results`. Machine: "
        f"{machine()}, zarr-python {zarr.__version__}. `chunkwise calibrate`'s measurement on a "
        f"4 MiB smooth float32 sample, codecs {', '.join(CODECS)}, {ROUNDS} rounds: median "
        "(range) of the six.",
        "",
        "| reader | CPU per chunk | time per read call |",
        "|---|---:|---:|",
    ]
    for family in families:
        found = constants(family)
        lines.append(f"| {family} | {_ms([c for c, _ in found])} | {_ms([p for _, p in found])} |")
    if find_spec("tensorstore"):
        lines += [
            "",
            f"One tensorstore read of n elements in n distinct uncompressed chunks (n GETs) "
            f"through the emulated HTTP link ({LINK}), median of {READS} reads; every request "
            "waits 20 ms, so what grows with n is time spent per request one after another "
            "(tensorstore's http kvstore sends at most 32 at once):",
            "",
            "| requests | read | (read − read of 1) / (requests − 1) |",
            "|---:|---:|---:|",
        ]
        timed = http_requests()
        one = timed[0][1]
        for n, seconds in timed:
            extra = f"{(seconds - one) / (n - 1) * 1e3:.2f} ms" if n > 1 else "—"
            lines.append(f"| {n} | {seconds * 1e3:.1f} ms | {extra} |")
    heading = f"## reader constants: CPU per chunk, per call, per request (zarr-python {zarr.__version__})"  # fmt: skip
    publish("\n".join([heading, "", *lines]) + "\n", write=args.write_results)


if __name__ == "__main__":
    main()
