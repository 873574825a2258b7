"""Is the installed reader's profile right? ROI reads, CPU per chunk, Morton-order geometry.

Run:  .venv/bin/python benchmarks/bench_reader_model.py [--write-results]
      (and .venv-3.13/bin/python ... for the zarr-python 3.4 line)

Three checks of the constants behind the reader profiles in
``src/chunkwise/model/storage.py`` and ``src/chunkwise/cost/model.py``:

* the issue's case: a 256^3 float32 array (uncompressed) read as random 32^3 regions
  through an emulated 20 ms, 100 MB/s-per-request store, unsharded (32, 64, 16) chunks
  and 32^3 chunks in 128^3 shards; median over 15 regions of the wall time, and GETs and
  bytes per region counted by the store, next to the model's prediction for the
  installed reader;
* CPU per chunk: ``chunkwise calibrate``'s measurement (in memory, median over zstd:3,
  blosc:zstd:5:shuffle and none), against the installed reader's preset;
* Morton order (how zarr-python places a shard's inner chunks): for random boxes, the
  mean span and number of contiguous runs of the touched chunks per partly read shard,
  simulated, against the model's ``sqrt(k * n)`` and ``k ** (1 - 1/d)``.

With ``--write-results`` the tables replace their section of benchmarks/RESULTS.md
(one section per zarr-python version).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from dataclasses import replace
from typing import Any

import numpy as np
import zarr
from harness import machine, publish
from zarr.storage import MemoryStore

from chunkwise.cost.model import CostInputs, estimate_layout
from chunkwise.io.installed import installed_reader
from chunkwise.io.stores import EmulatedStore
from chunkwise.measure.calibrate import measure_codecs
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import default_codec_profile, parse_codec
from chunkwise.model.layout import Layout
from chunkwise.model.storage import READER_PRESETS, STORAGE_PRESETS
from chunkwise.model.workload import Workload

MiB = 2**20
REGIONS = 15


def roi_case(data: np.ndarray[Any, Any], chunks: tuple[int, ...], shards: Any) -> dict[str, float]:
    """Median ms, GETs and MiB per 32^3 region through the emulated store, and predicted."""
    memory = MemoryStore()
    arr = zarr.create_array(
        memory, shape=data.shape, dtype="float32", chunks=chunks, shards=shards, compressors=None
    )
    arr[...] = data
    store = EmulatedStore(
        memory, latency_s=0.020, bandwidth_Bps=10e9, stream_bandwidth_Bps=100e6, concurrency=1000
    )
    view = zarr.open_array(store, mode="r")
    rng = np.random.default_rng(0)
    times = []
    gets, nbytes = store.counts.gets, store.counts.bytes_read
    for _ in range(REGIONS):
        z, y, x = (int(v) for v in rng.integers(0, 256 - 32, 3))
        start = time.perf_counter()
        values = view[z : z + 32, y : y + 32, x : x + 32]
        times.append(time.perf_counter() - start)
        assert np.array_equal(values, data[z : z + 32, y : y + 32, x : x + 32])
    spec = ArraySpec.create([256, 256, 256], "float32", ["z", "y", "x"])
    codec = parse_codec("none")
    storage = replace(
        STORAGE_PRESETS["s3"], latency_s=0.020, bandwidth_Bps=10e9, stream_bandwidth_Bps=100e6,
        concurrency=1000,
    ).with_reader(READER_PRESETS[installed_reader()])  # fmt: skip
    layout = Layout.create(spec, chunks, shards=shards, codec=codec)
    workload = Workload.from_spec([{"op": "region", "extent": {"z": 32, "y": 32, "x": 32}}], spec)
    (op,) = estimate_layout(
        layout, workload, CostInputs(spec, storage, codec, default_codec_profile(codec))
    ).ops.values()
    return {
        "ms": statistics.median(times) * 1e3,
        "gets": (store.counts.gets - gets) / REGIONS,
        "mib": (store.counts.bytes_read - nbytes) / REGIONS / MiB,
        "pred_ms": op["seconds"] * 1e3,
        "pred_gets": op["requests"],
        "pred_mib": op["bytes_fetched"] / MiB,
    }


def cpu_per_chunk() -> float:
    """``chunkwise calibrate``'s CPU per chunk on a 4 MiB smooth sample, seconds."""
    rng = np.random.default_rng(1)
    sample = np.cumsum(rng.normal(size=(64, 128, 128)), axis=2).astype("float32")
    codecs = [parse_codec(c) for c in ("zstd:3", "blosc:zstd:5:shuffle", "none")]
    _, _, calibrations = measure_codecs(sample, codecs)
    return statistics.median(c.per_chunk_read_s for c in calibrations)


def morton_positions(counts: tuple[int, ...]) -> dict[tuple[int, ...], int]:
    """Byte order of a shard's inner chunks: bit-interleaved (Morton) coordinates."""
    bits = max(max(n - 1, 1).bit_length() for n in counts)

    def key(coord: tuple[int, ...]) -> int:
        out = 0
        for b in range(bits):
            for d, x in enumerate(coord):
                out |= ((x >> b) & 1) << (b * len(coord) + d)
        return out

    order = sorted(itertools.product(*(range(n) for n in counts)), key=key)
    return {coord: i for i, coord in enumerate(order)}


def morton_case(counts: tuple[int, ...], box: tuple[int, ...], chunk: int = 32) -> dict[str, float]:
    """Mean touched chunks, span and contiguous runs per partly read shard (simulated)."""
    pos = morton_positions(counts)
    shard = [n * chunk for n in counts]
    rng = np.random.default_rng(0)
    ks, spans, runs = [], [], []
    for _ in range(2000):
        start = [int(rng.integers(0, 4 * s)) for s in shard]
        touched = [
            range(s // chunk, (s + e - 1) // chunk + 1) for s, e in zip(start, box, strict=True)
        ]
        by_shard: dict[tuple[int, ...], list[int]] = {}
        for coord in itertools.product(*touched):
            outer = tuple(c // n for c, n in zip(coord, counts, strict=True))
            inner = tuple(c % n for c, n in zip(coord, counts, strict=True))
            by_shard.setdefault(outer, []).append(pos[inner])
        for ids in by_shard.values():
            if len(ids) == len(pos):
                continue  # read whole
            ids.sort()
            ks.append(len(ids))
            spans.append(ids[-1] - ids[0] + 1)
            runs.append(1 + sum(1 for a, b in itertools.pairwise(ids) if b != a + 1))
    k, n, d = float(np.mean(ks)), len(pos), sum(1 for c in counts if c > 1)
    return {
        "k": k, "span": float(np.mean(spans)), "span_model": min(n, (k * n) ** 0.5),
        "runs": float(np.mean(runs)), "runs_model": k ** (1 - 1 / d),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    reader = installed_reader()
    data = np.random.default_rng(0).random((256, 256, 256), dtype=np.float32)
    cases = {
        "unsharded 32x64x16": roi_case(data, (32, 64, 16), None),
        "32^3 in 128^3 shards": roi_case(data, (32, 32, 32), (128, 128, 128)),
    }
    cpu = cpu_per_chunk()
    lines = [
        f"Command: `python benchmarks/bench_reader_model.py --write-results`. Machine: {machine()}. "
        f"zarr-python {zarr.__version__}, priced as `{reader}`. Random 32^3 regions of a 256^3 "
        f"float32 array (uncompressed), {REGIONS} per layout, through `EmulatedStore` (20 ms "
        "latency, 100 MB/s per request, 1000 concurrent); medians of wall time, GETs and bytes "
        "counted by the store; every region compared with the data.",
        "",
        "| layout | measured | predicted | GETs measured / predicted | MiB measured / predicted |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, c in cases.items():
        lines.append(
            f"| {name} | {c['ms']:.1f} ms | {c['pred_ms']:.1f} ms | {c['gets']:.2f} / "
            f"{c['pred_gets']:.2f} | {c['mib']:.2f} / {c['pred_mib']:.2f} |"
        )
    lines += [
        "",
        f"CPU per chunk (`chunkwise calibrate`'s measurement, in memory, median over zstd:3, "
        f"blosc:zstd:5:shuffle and none): {cpu * 1e3:.3f} ms; the `{reader}` preset assumes "
        f"{READER_PRESETS[reader].per_chunk_cpu_s * 1e3:.3f} ms.",
        "",
        "Morton order, simulated (2000 random boxes per row; per partly read shard):",
        "",
        "| inner chunks per shard | box (elements, 32-element chunks) | chunks k | span | sqrt(k n) | runs | k^(1-1/d) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for counts, box in [
        ((2, 2, 2), (32, 32, 32)), ((4, 4, 4), (32, 32, 32)), ((4, 4, 4), (64, 64, 64)),
        ((8, 8, 8), (32, 32, 32)), ((8, 8, 8), (64, 64, 64)), ((4, 4), (32, 32)),
        ((8, 8), (32, 32)), ((16, 16), (64, 64)),
    ]:  # fmt: skip
        m = morton_case(counts, box)
        lines.append(
            f"| {'x'.join(map(str, counts))} | {'x'.join(map(str, box))} | {m['k']:.2f} | "
            f"{m['span']:.1f} | {m['span_model']:.1f} | {m['runs']:.2f} | {m['runs_model']:.2f} |"
        )
    heading = (
        f"## reader model: ROI reads, CPU per chunk, Morton order (zarr-python {zarr.__version__})"
    )
    publish("\n".join([heading, "", *lines]) + "\n", write=args.write_results)


if __name__ == "__main__":
    main()
