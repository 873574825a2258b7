"""Does advise's top pick win when measured? Its regret against an exhaustive grid of layouts.

Run:  make bench        (or: .venv/bin/python benchmarks/bench_regret.py [--quick]
      [--scenarios NAME,...] [--reader NAME] [--repeats 5] [--json PATH] [--write-results])

Nine scenarios, each an array, a weighted workload and a codec on an emulated remote
store (4 ms or 20 ms per request, an aggregate and a per-request bandwidth):

* ``tomo-viewer-v2``: XY planes of a 64x256x256 float32 tomogram, zarr format 2 only
  (a viewer such as vizarr that cannot read v3), 20 ms;
* ``tomo-rois``: random 32^3 regions of a 256^3 float32 tomogram, 20 ms;
* ``tomo-mixed``: XY planes and 64^3 regions of a 128x256x256 float32 tomogram, 4 ms;
* ``climate-series``: the time series of one cell of a 1024x64x128 (time, lat, lon)
  float32 cube, 20 ms;
* ``climate-maps``: maps and 30-day x 16x16 windows of the same cube, 4 ms;
* ``climate-points``: 64 random cells of the same cube in one call, 20 ms;
* ``movie-4d``: XY planes and small 4-D boxes of a 32x16x128x128 (t, z, y, x) uint16
  time-lapse, 20 ms;
* ``scan-pipeline``: whole-array scans of a 128x256x256 float32 volume through a 4 ms
  link whose single requests are slow (25 MB/s each, 200 MB/s in all);
* ``ml-patches``: 1x128x128 training patches of a 64x512x512 uint16 stack, 20 ms.

For each scenario, every layout of a grid (chunk shapes over powers of two per dim,
unsharded, plus sharded layouts with several inner-chunk sizes per shard shape; zarr
format 2 only where the scenario says so; 63 to 96 layouts, 748 in all) and advise's top
pick (``chunkwise.advise`` on the spec with the emulated store's storage profile) are
written from the same synthetic data by ``chunkwise.bench(..., only_candidates=True)``
and every workload operation is timed at the same random positions through the emulated
store with the installed zarr-python. The study columns ``bench`` adds at weight 0 (a
full scan, a plane, a 64^3 box) are left out: the regret does not weigh them and they
would triple the run. The finalists (advise's pick, the layout the model predicts
fastest, the grid's three fastest) are measured again at twice as many new positions:
the fastest of some 80 noisy times is partly the luckiest, and the regret should not
count luck.

Reported per scenario: advise's regret, the measured workload time of its top pick over
the fastest finalist's (1.00: advise picked the winner); the fastest layout; the regret
of the layout the model itself predicts fastest among those measured (the model's
ranking, without the search); and measured mean over predicted for every operation.
Goal: median regret <= 1.05, worst <= 1.25, and every operation within 1.25x of its
prediction; the table says whether it is met.

The section of benchmarks/RESULTS.md is titled by the reader (zarr-python and Python
versions), so a run on Python 3.11 with zarr 3.1 and one on Python 3.13 with zarr 3.4
keep separate sections. ``--reader NAME`` asks the model for a reader profile by name
(the spec's ``reader:``); by default the model prices the reader installed here
(``zarr-python``: the zarr-python line this interpreter runs).
``--fit`` first re-fits the reader's fixed times (per call, per chunk, per request; what
``chunkwise bench --save-profile`` does) on a separate fitting benchmark: a 64x256x256
float32 tomogram, 64 scattered points, XY planes and 32^3 regions, six layouts from 16^3
chunks to 64x256x256 and one sharded, through the 20 ms store. The scenarios are then
priced with the fitted reader: the model as a user who ran ``bench --save-profile`` once
would have it. The section says so in its title and lists the fitted times.

``--quick`` measures about 8 layouts per scenario at 2 positions, as a smoke test.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import zarr
from harness import machine, publish

import chunkwise
import chunkwise.measure.benchmark as engine_benchmark
from chunkwise.errors import ChunkwiseError
from chunkwise.io.stores import open_target
from chunkwise.measure.calibrate import refit_profile
from chunkwise.measure.results import BenchReport, LayoutResult
from chunkwise.model.layout import Layout
from chunkwise.model.storage import ReaderProfile
from chunkwise.spec import parse_reader

#: 20 ms per request; 100 MB/s per request, 1 GB/s over all of them.
STORE_20MS = "emulated://?latency=20ms&bandwidth=1GB/s&stream_bandwidth=100MB/s&concurrency=64"
#: 4 ms per request; 100 MB/s per request, 500 MB/s over all of them.
STORE_4MS = "emulated://?latency=4ms&bandwidth=500MB/s&stream_bandwidth=100MB/s&concurrency=32"
#: 4 ms per request, but slow single requests: 25 MB/s each, 200 MB/s over all of them.
STORE_4MS_SLOW_STREAMS = (
    "emulated://?latency=4ms&bandwidth=200MB/s&stream_bandwidth=25MB/s&concurrency=16"
)

#: The fitting benchmark of ``--fit``: unlike every scenario, and with reads of 1 to 256
#: requests, so per-call, per-chunk and per-request times can be told apart.
FIT_SPEC: dict[str, Any] = {
    "name": "fit",
    "array": {"shape": [64, 256, 256], "dtype": "float32", "dims": ["z", "y", "x"]},
    "workload": [
        {"op": "point", "count": 64, "weight": 0.4},
        {"op": "plane", "dims": ["y", "x"], "weight": 0.3},
        {"op": "region", "extent": {"z": 32, "y": 32, "x": 32}, "weight": 0.3},
    ],
    "codec": "blosc:zstd:5:shuffle",
    "candidates": [
        {"name": "16^3", "chunks": [16, 16, 16]},
        {"name": "32^3", "chunks": [32, 32, 32]},
        {"name": "8x64x64", "chunks": [8, 64, 64]},
        {"name": "64^3", "chunks": [64, 64, 64]},
        {"name": "1x256x256", "chunks": [1, 256, 256]},
        {"name": "64x256x256", "chunks": [64, 256, 256]},
        {"name": "16^3 in 64^3", "chunks": [16, 16, 16], "shards": [64, 64, 64]},
    ],
}

#: The goals: median and worst regret, and how far any measured op may be off its prediction.
GOAL_MEDIAN_REGRET = 1.05
GOAL_WORST_REGRET = 1.25
GOAL_RATIO = 1.25
#: The grid's fastest layouts measured again, with advise's pick, for the regret.
FINALISTS = 3


def powers(low: int, n: int) -> tuple[int, ...]:
    """Powers of two from ``low`` below ``n``, then ``n`` itself: ``powers(16, 64)`` is
    ``(16, 32, 64)``."""
    out = []
    size = low
    while size < n:
        out.append(size)
        size *= 2
    return (*out, n)


@dataclass(frozen=True)
class Scenario:
    """One benchmarked problem and the grid of layouts measured for it.

    ``chunks`` lists the chunk sizes tried per dim (the unsharded grid is every
    combination with at most ``max_objects`` objects); ``shards`` the shard sizes per
    dim, each shard shape getting up to ``inner_per_shard`` inner-chunk shapes taken from
    ``chunks`` (spread from small to large, ``min_inner`` to ``max_inner`` inner chunks
    per shard).
    """

    name: str
    what: str
    shape: tuple[int, ...]
    dtype: str
    dims: tuple[str, ...]
    workload: tuple[dict[str, Any], ...]
    store: str
    data: str
    chunks: tuple[tuple[int, ...], ...]
    shards: tuple[tuple[int, ...], ...] = ()
    codec: str = "blosc:zstd:5:shuffle"
    zarr_format: int | None = None
    max_objects: int = 1024
    inner_per_shard: int = 3
    min_inner: int = 4
    max_inner: int = 512
    constraints: dict[str, Any] = field(default_factory=dict)

    def spec(self, reader: str | None) -> dict[str, Any]:
        """The spec advise and bench get (no candidates, no storage)."""
        out: dict[str, Any] = {
            "name": self.name,
            "array": {"shape": list(self.shape), "dtype": self.dtype, "dims": list(self.dims)},
            "workload": [dict(op) for op in self.workload],
            "codec": self.codec,
        }
        constraints = dict(self.constraints)
        if self.zarr_format is not None:
            constraints["zarr_format"] = self.zarr_format
        if constraints:
            out["constraints"] = constraints
        if reader is not None:
            out["reader"] = reader
        return out

    def grid(self) -> list[tuple[tuple[int, ...], tuple[int, ...] | None]]:
        """Every (chunks, shards) of the grid, unsharded first."""
        fmt = self.zarr_format or 3
        out: list[tuple[tuple[int, ...], tuple[int, ...] | None]] = []
        for chunks in itertools.product(*self.chunks):
            if _objects(self.shape, chunks) <= self.max_objects:
                out.append((chunks, None))
        if fmt == 2:
            return out
        for shards in itertools.product(*self.shards):
            inner = [
                c
                for c in itertools.product(*self.chunks)
                if all(s % k == 0 for s, k in zip(shards, c, strict=True))
                and self.min_inner <= _per_shard(shards, c) <= self.max_inner
            ]  # fmt: skip
            inner.sort(key=lambda c: (math.prod(c), c))
            for c in _spread(inner, self.inner_per_shard):
                out.append((c, shards))
        return out


def _objects(shape: Sequence[int], unit: Sequence[int]) -> int:
    return math.prod(-(-n // u) for n, u in zip(shape, unit, strict=True))


def _per_shard(shards: Sequence[int], chunks: Sequence[int]) -> int:
    return math.prod(s // c for s, c in zip(shards, chunks, strict=True))


def _spread(items: list[Any], k: int) -> list[Any]:
    """Up to ``k`` items evenly spread over ``items`` (first and last included)."""
    if len(items) <= k:
        return items
    picks = sorted({round(i * (len(items) - 1) / (k - 1)) for i in range(k)})
    return [items[i] for i in picks]


TOMO = ("z", "y", "x")
CLIMATE = ("time", "lat", "lon")
CUBE = (1024, 64, 128)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "tomo-viewer-v2",
        "XY planes of a 64x256x256 f4 tomogram, zarr v2 only, 20 ms",
        (64, 256, 256),
        "float32",
        TOMO,
        ({"op": "plane", "dims": ["y", "x"], "weight": 1.0},),
        STORE_20MS,
        "synthetic:tomogram",
        chunks=(powers(1, 64), powers(64, 256), powers(64, 256)),
        zarr_format=2,
        codec="blosc:lz4:5:shuffle",
    ),
    Scenario(
        "tomo-rois",
        "random 32^3 regions of a 256^3 f4 tomogram, 20 ms",
        (256, 256, 256),
        "float32",
        TOMO,
        ({"op": "region", "extent": {"z": 32, "y": 32, "x": 32}, "weight": 1.0},),
        STORE_20MS,
        "synthetic:tomogram",
        chunks=(powers(32, 256),) * 3,
        shards=((128, 256),) * 3,
        max_objects=512,
        min_inner=8,
    ),
    Scenario(
        "tomo-mixed",
        "XY planes 50% + 64^3 regions 50% of a 128x256x256 f4 tomogram, 4 ms",
        (128, 256, 256),
        "float32",
        TOMO,
        (
            {"op": "plane", "dims": ["y", "x"], "weight": 0.5},
            {"op": "region", "extent": {"z": 64, "y": 64, "x": 64}, "weight": 0.5},
        ),
        STORE_4MS,
        "synthetic:tomogram",
        chunks=(powers(4, 128), powers(64, 256), powers(32, 256)),
        shards=((32, 128), (256,), (128, 256)),
        max_objects=1024,
        inner_per_shard=4,
    ),
    Scenario(
        "climate-series",
        "time series of one cell of a 1024x64x128 f4 cube, 20 ms",
        CUBE,
        "float32",
        CLIMATE,
        ({"op": "series", "dim": "time", "weight": 1.0},),
        STORE_20MS,
        "synthetic:smooth",
        chunks=(powers(128, 1024), powers(4, 64), powers(16, 128)),
        shards=((1024,), (16, 64), (32, 128)),
        max_objects=1024,
        min_inner=8,
        inner_per_shard=4,
    ),
    Scenario(
        "climate-maps",
        "maps 50% + 30-day 16x16 windows 50% of a 1024x64x128 f4 cube, 4 ms",
        CUBE,
        "float32",
        CLIMATE,
        (
            {"op": "plane", "dims": ["lat", "lon"], "weight": 0.5},
            {"op": "region", "extent": {"time": 30, "lat": 16, "lon": 16}, "weight": 0.5},
        ),
        STORE_4MS,
        "synthetic:smooth",
        chunks=(powers(4, 1024), powers(16, 64), powers(32, 128)),
        shards=((64, 256, 1024), (64,), (128,)),
        max_objects=1024,
    ),
    Scenario(
        "climate-points",
        "64 random cells of a 1024x64x128 f4 cube in one call, 20 ms",
        CUBE,
        "float32",
        CLIMATE,
        ({"op": "point", "count": 64, "weight": 1.0},),
        STORE_20MS,
        "synthetic:smooth",
        chunks=(powers(64, 1024), powers(8, 64), powers(16, 128)),
        shards=((1024,), (64,), (64, 128)),
        max_objects=1024,
        min_inner=8,
    ),
    Scenario(
        "movie-4d",
        "XY planes 70% + 4x16x32x32 boxes 30% of a 32x16x128x128 u2 movie, 20 ms",
        (32, 16, 128, 128),
        "uint16",
        ("t", "z", "y", "x"),
        (
            {"op": "plane", "dims": ["y", "x"], "weight": 0.7},
            {"op": "region", "extent": {"t": 4, "z": 16, "y": 32, "x": 32}, "weight": 0.3},
        ),
        STORE_20MS,
        "synthetic:smooth",
        chunks=((1, 4, 16, 32), (1, 4, 16), (32, 64, 128), (64, 128)),
        shards=((8, 32), (16,), (128,), (128,)),
        max_objects=1024,
        min_inner=4,
    ),
    Scenario(
        "scan-pipeline",
        "whole-array scans of a 128x256x256 f4 volume, 4 ms, 25 MB/s per request",
        (128, 256, 256),
        "float32",
        TOMO,
        ({"op": "scan", "weight": 1.0},),
        STORE_4MS_SLOW_STREAMS,
        "synthetic:smooth",
        chunks=(powers(4, 128), powers(32, 256), powers(64, 256)),
        shards=((32, 128), (256,), (256,)),
        max_objects=1024,
        min_inner=8,
    ),
    Scenario(
        "ml-patches",
        "1x128x128 patches of a 64x512x512 u2 stack, 20 ms",
        (64, 512, 512),
        "uint16",
        TOMO,
        ({"op": "region", "extent": {"z": 1, "y": 128, "x": 128}, "weight": 1.0},),
        STORE_20MS,
        "synthetic:smooth",
        chunks=(powers(2, 64), powers(64, 512), powers(128, 512)),
        shards=((8, 64), (512,), (256, 512)),
        max_objects=1024,
        inner_per_shard=4,
    ),
)


def code_state() -> str:
    """``at 880ec11`` (``+ uncommitted changes`` when the source tree differs from it)."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "(version unknown)"
    return f"at {head}" + (" + uncommitted changes in src/" if dirty else "")


def reader_label() -> str:
    """``zarr-python 3.1.6, Python 3.11.7``: who reads the layouts."""
    return f"zarr-python {zarr.__version__}, Python {platform.python_version()}"


@dataclass
class Outcome:
    """What one scenario measured: the grid, then the finalists again at new positions."""

    scenario: Scenario
    report: BenchReport
    final: BenchReport
    advise_name: str
    advise_in_grid: bool
    grid_size: int
    seconds: float
    model_reader: str

    @property
    def results(self) -> tuple[LayoutResult, ...]:
        return self.report.results

    @property
    def best(self) -> LayoutResult:
        return min(self.results, key=lambda r: r.measured_weighted_s)

    @property
    def advised(self) -> LayoutResult:
        return next(r for r in self.results if r.name == self.advise_name)

    @property
    def predicted_best(self) -> LayoutResult:
        return min(self.results, key=lambda r: r.predicted_weighted_s)

    @property
    def grid_regret(self) -> float:
        """advise's pick over the fastest, as the grid measured them."""
        return self.advised.measured_weighted_s / self.best.measured_weighted_s

    @property
    def final_best(self) -> LayoutResult:
        return min(self.final.results, key=lambda r: r.measured_weighted_s)

    @property
    def regret(self) -> float:
        """advise's pick over the fastest finalist, measured again at new positions (the
        grid's fastest of some 80 noisy times is flattered by its luck)."""
        advised = self.final_result(self.advise_name)
        return advised.measured_weighted_s / self.final_best.measured_weighted_s

    def final_result(self, name: str) -> LayoutResult:
        return next(r for r in self.final.results if r.name == name)

    @property
    def model_regret(self) -> float:
        """The layout the model predicts fastest among those measured, over the fastest
        finalist (both measured again): the model's ranking, without the search."""
        chosen = self.final_result(self.predicted_best.name)
        return chosen.measured_weighted_s / self.final_best.measured_weighted_s

    def rank_of(self, result: LayoutResult) -> int:
        ordered = sorted(self.results, key=lambda r: r.measured_weighted_s)
        return ordered.index(result) + 1

    def ratios(self) -> list[tuple[float, LayoutResult, Any]]:
        """(measured mean / predicted, layout, op) for every weighted op of every layout."""
        return [
            (op.ratio, r, op)
            for r in self.results
            for op in r.ops
            if op.weight > 0 and math.isfinite(op.ratio)
        ]


def _candidate(name: str, fmt: int, chunks: Sequence[int], shards: Sequence[int] | None) -> dict[str, Any]:  # fmt: skip
    out: dict[str, Any] = {"name": name, "zarr_format": fmt, "chunks": list(chunks)}
    if shards is not None:
        out["shards"] = list(shards)
    return out


def _key(fmt: int, chunks: Sequence[int], shards: Sequence[int] | None) -> tuple[Any, ...]:
    return (fmt, tuple(chunks), tuple(shards) if shards is not None else None)


def fit_reader(reader: str | None, repeats: int) -> ReaderProfile:
    """The reader named, its fixed times re-fitted on :data:`FIT_SPEC` through the 20 ms
    store (``bench --save-profile``)."""
    emulation = open_target(STORE_20MS).emulation
    assert emulation is not None
    storage = emulation.profile().with_reader(parse_reader(reader or "zarr-python"))
    spec = {**FIT_SPEC, **({"reader": reader} if reader else {})}
    report = chunkwise.bench(
        spec, data="synthetic:tomogram", store=STORE_20MS, storage=storage,
        only_candidates=True, repeats=repeats, warm=False,
    )  # fmt: skip
    fit = refit_profile(report)
    print(f"fitted on {fit.operations} reads: {fit.document['reader']}", flush=True)
    return parse_reader(fit.document["reader"])


def run_scenario(
    s: Scenario, *, quick: bool, repeats: int, reader: str | None,
    fitted: ReaderProfile | None = None,
) -> Outcome:  # fmt: skip
    started = time.perf_counter()
    # A spec's reader: would replace the fitted reader the storage profile carries.
    spec = s.spec(reader if fitted is None else None)
    emulation = open_target(s.store).emulation
    assert emulation is not None
    # The emulated link's own profile, read by the reader named (by default "zarr-python":
    # the line installed here), or the fitted one. Given as a profile, bench would
    # otherwise keep the profile's default reader whatever is installed.
    priced = fitted if fitted is not None else parse_reader(reader or "zarr-python")
    storage = emulation.profile().with_reader(priced)
    advice = chunkwise.advise({**spec, "storage": storage}, top=1)
    pick: Layout = advice.best.layout
    fmt = s.zarr_format or 3
    grid = s.grid()
    grid_size = len(grid)
    every = [
        _candidate(f"{'s' if shards else 'c'}{i:03d}", fmt, chunks, shards)
        for i, (chunks, shards) in enumerate(grid, start=1)
    ]
    candidates = _spread(every, 8) if quick else every
    names = {_key(fmt, c["chunks"], c.get("shards")): c["name"] for c in every}
    pick_key = _key(pick.zarr_format, pick.chunks, pick.shards)
    advise_in_grid = pick_key in names
    advise_name = names.get(pick_key, "advise #1")
    if all(c["name"] != advise_name for c in candidates):
        candidates.append(_candidate(advise_name, pick.zarr_format, pick.chunks, pick.shards))
    print(
        f"{s.name}: {len(candidates)} layouts ({grid_size} in the grid), advise picks "
        f"{pick.label()}{'' if advise_in_grid else ' (not in the grid)'}",
        flush=True,
    )

    def progress(what: str, done: int, total: int) -> None:
        if what.endswith(": write"):
            elapsed = time.perf_counter() - started
            print(f"  {done}/{total} {what[: -len(': write')]} ({elapsed:.0f} s)", flush=True)

    # The study columns bench adds at weight 0 would cost more than the workload itself.
    with mock.patch.object(
        engine_benchmark, "study_operations", lambda workload, array: workload.ops
    ):
        report = chunkwise.bench(
            {**spec, "candidates": candidates}, data=s.data, store=s.store, storage=storage,
            only_candidates=True, repeats=repeats, warm=False, progress=progress,
        )  # fmt: skip
        # Finalists: advise's pick and the grid's FINALISTS fastest, measured again at twice
        # as many new positions, so the winner is not just the luckiest of many noisy times.
        by_time = sorted(report.results, key=lambda r: r.measured_weighted_s)
        predicted = min(report.results, key=lambda r: r.predicted_weighted_s).name
        final_names = [advise_name, predicted, *(r.name for r in by_time[:FINALISTS])]
        finalists = [c for c in candidates if c["name"] in final_names]
        final = chunkwise.bench(
            {**spec, "candidates": finalists}, data=s.data, store=s.store, storage=storage,
            only_candidates=True, repeats=2 * repeats, seed=1, warm=False,
        )  # fmt: skip
    return Outcome(
        s, report, final, advise_name, advise_in_grid, grid_size, time.perf_counter() - started,
        model_reader=advice.storage.reader.name,
    )  # fmt: skip


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms" if seconds < 10 else f"{seconds:.1f} s"


def _shape(values: Sequence[int] | None) -> str:
    return "x".join(map(str, values)) if values else ""


def _short(layout: Layout) -> str:
    text = f"v{layout.zarr_format} {_shape(layout.chunks)}"
    return text + (f" in {_shape(layout.shards)}" if layout.shards else "")


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def markdown(outcomes: list[Outcome], *, repeats: int, reader: str | None, command: str, seconds: float, code: str, fitted: ReaderProfile | None = None) -> str:  # fmt: skip
    title = f"## regret: advise's top pick against every layout measured ({reader_label()}"
    title += f", model reader {reader}" if reader else ""
    title += ", fitted)" if fitted is not None else ")"
    model_readers = sorted({o.model_reader for o in outcomes} | {o.report.storage.reader.name for o in outcomes})  # fmt: skip
    # bench may measure reads through the reader the spec names (tensorstore, zarrs) when
    # it can; it says so in measured_reader. Writes always go through zarr-python.
    measured = sorted({getattr(o.report, "measured_reader", "") or reader_label() for o in outcomes})  # fmt: skip
    lines = [
        title,
        "",
        f"Command: `{command}`. Machine: {machine()}. Reads measured through "
        f"{', '.join(measured)} (layouts written by {reader_label()}); the model "
        f"priced reader profile {', '.join(model_readers)}; chunkwise {code}. Whole "
        f"run {seconds / 60:.1f} min. Every layout of the grid is written from the same "
        f"synthetic data and each workload operation timed at the same {repeats} random "
        "positions through the emulated store; workload time = sum of weight x median over "
        "positions. The finalists (advise's pick, the layout the model predicts fastest and "
        f"the grid's {FINALISTS} fastest) are then measured again at {2 * repeats} new "
        "positions. Regret = advise's pick over the fastest finalist, from that second "
        "measurement (*in the grid*: from the first); model's ranking = the same for the "
        "layout the model predicts fastest. Layouts are chunk shapes in dim order; `A in B` "
        "is chunks A in shards B; rank in the grid counts from 1 = fastest."
        + (
            f" The reader was first re-fitted (`--fit`) on a separate benchmark (a "
            f"64x256x256 float32 tomogram: 64 points, XY planes, 32^3 regions; 7 layouts; "
            f"the 20 ms store): {fitted.per_call_s * 1e3:.3g} ms per call, "
            f"{fitted.per_chunk_cpu_s * 1e3:.3g} ms per chunk, "
            f"{fitted.per_request_s * 1e3:.3g} ms per request."
            if fitted is not None
            else ""
        ),
        "",
        "| scenario | store | layouts | advise's pick | rank in the grid | its time | fastest | its time | regret | in the grid | model's ranking | measured/predicted: median (range) |",
        "|---|---|---:|---|---:|---:|---|---:|---:|---:|---:|---|",
    ]
    all_ratios: list[tuple[float, LayoutResult, Any, Outcome]] = []
    for o in outcomes:
        ratios = o.ratios()
        all_ratios += [(q, r, op, o) for q, r, op in ratios]
        qs = [q for q, _, _ in ratios]
        emulation = open_target(o.scenario.store).emulation
        assert emulation is not None
        advised, best = o.final_result(o.advise_name), o.final_best
        pick = _short(advised.layout) + ("" if o.advise_in_grid else " (outside the grid)")
        lines.append(
            f"| {o.scenario.name}: {o.scenario.what} | {emulation.describe()} | "
            f"{len(o.results)} | {pick} | {o.rank_of(o.advised)} | "
            f"{_ms(advised.measured_weighted_s)} | {_short(best.layout)} | "
            f"{_ms(best.measured_weighted_s)} | {o.regret:.2f} | {o.grid_regret:.2f} | "
            f"{o.model_regret:.2f} | {statistics.median(qs):.2f} ({min(qs):.2f}–{max(qs):.2f}) |"
        )
    regrets = [o.regret for o in outcomes]
    model_regrets = [o.model_regret for o in outcomes]
    qs = [q for q, *_ in all_ratios]
    off = [x for x in all_ratios if not 1 / GOAL_RATIO <= x[0] <= GOAL_RATIO]
    median_regret, worst_regret = statistics.median(regrets), max(regrets)
    lines += [
        "",
        f"advise's regret over {len(outcomes)} scenarios: median {median_regret:.2f}, worst "
        f"{worst_regret:.2f} (the model's ranking of the measured layouts: median "
        f"{statistics.median(model_regrets):.2f}, worst {max(model_regrets):.2f}). Measured "
        f"mean over predicted, {len(qs)} operations (every weighted op of every layout): median "
        f"{statistics.median(qs):.2f}, range {min(qs):.2f}–{max(qs):.2f}, {len(off)} outside "
        f"1/{GOAL_RATIO}–{GOAL_RATIO}x ({len(off) / max(len(qs), 1):.0%}). "
        + robust_line([op for _, _, op, _ in all_ratios]),
        "",
        "Goals:",
        "",
        f"* median regret <= {GOAL_MEDIAN_REGRET}: {_met(median_regret <= GOAL_MEDIAN_REGRET)} "
        f"({median_regret:.2f})",
        f"* worst regret <= {GOAL_WORST_REGRET}: {_met(worst_regret <= GOAL_WORST_REGRET)} "
        f"({worst_regret:.2f}, {max(outcomes, key=lambda o: o.regret).scenario.name})",
        f"* every operation within {GOAL_RATIO}x of its prediction: {_met(not off)} "
        f"({len(off)} of {len(qs)} outside)",
        "",
        "Measured over predicted by scenario and operation, and where it is worst:",
        "",
        "| scenario | operation | layouts | median | range | outside 1.25x | worst layout | measured | predicted | GETs measured / predicted |",
        "|---|---|---:|---:|---|---:|---|---:|---:|---:|",
    ]
    for o in outcomes:
        for name in dict.fromkeys(op.name for _, _, op in o.ratios()):
            rows = [(q, r, op) for q, r, op in o.ratios() if op.name == name]
            vals = [q for q, _, _ in rows]
            q, r, op = max(rows, key=lambda x: abs(math.log(x[0])))
            n_off = sum(1 for v in vals if not 1 / GOAL_RATIO <= v <= GOAL_RATIO)
            lines.append(
                f"| {o.scenario.name} | {name} | {len(rows)} | {statistics.median(vals):.2f} | "
                f"{min(vals):.2f}–{max(vals):.2f} | {n_off} | {_short(r.layout)} ({q:.2f}) | "
                f"{_ms(op.mean_s)} | {_ms(op.predicted_s)} | "
                f"{op.requests:.1f} / {op.predicted_requests:.1f} |"
            )
    return "\n".join(lines) + "\n"


def robust_line(ops: Sequence[Any]) -> str:
    """The same comparison with the median over positions instead of the mean: one repeat
    stalled by another process on a shared machine moves the mean, not the median."""
    qs = [op.measured_s / op.predicted_s for op in ops if op.predicted_s > 0]
    off = sum(1 for q in qs if not 1 / GOAL_RATIO <= q <= GOAL_RATIO)
    return (
        f"With the median over positions instead of the mean (one stalled repeat moves the "
        f"mean): median {statistics.median(qs):.2f}, range {min(qs):.2f}–{max(qs):.2f}, "
        f"{off} outside ({off / max(len(qs), 1):.0%})."
    )


def to_json(outcomes: list[Outcome]) -> dict[str, Any]:
    """Everything measured, for analysis: per scenario, per layout, per op."""
    return {
        "reader": reader_label(),
        "machine": machine(),
        "scenarios": [
            {
                "name": o.scenario.name,
                "what": o.scenario.what,
                "store": o.scenario.store,
                "grid_size": o.grid_size,
                "seconds": o.seconds,
                "advise": o.advise_name,
                "advise_in_grid": o.advise_in_grid,
                "regret": o.regret,
                "model_regret": o.model_regret,
                "model_reader": o.model_reader,
                "bench_reader": o.report.storage.reader.name,
                "results": [
                    {
                        "name": r.name,
                        "layout": r.layout.label(),
                        "objects": r.objects,
                        "stored_bytes": r.stored_bytes,
                        "write_s": r.write_s,
                        "predicted_write_s": r.predicted_write_s,
                        "weighted_s": r.measured_weighted_s,
                        "predicted_weighted_s": r.predicted_weighted_s,
                        "ops": {op.name: op.to_dict() for op in r.ops},
                    }
                    for r in o.results
                ],
            }
            for o in outcomes
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="about 8 layouts per scenario, 2 positions"
    )
    parser.add_argument("--scenarios", help="comma-separated scenario names (default: all)")
    parser.add_argument("--reader", help="the model's reader profile, by name (spec 'reader:')")
    parser.add_argument("--fit", action="store_true", help="price a reader re-fitted on a separate fitting benchmark first")  # fmt: skip
    parser.add_argument("--repeats", type=int, help="random positions per operation (default 5; 2 with --quick)")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write every measurement to this file")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    if args.quick and args.write_results:
        parser.error("--quick is a smoke test; its results are not published (drop --write-results).")  # fmt: skip
    chosen = list(SCENARIOS)
    if args.scenarios:
        names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
        unknown = sorted(set(names) - {s.name for s in SCENARIOS})
        if unknown:
            parser.error(f"scenario(s) {', '.join(unknown)} unknown; choose from {', '.join(s.name for s in SCENARIOS)}.")  # fmt: skip
        chosen = [s for s in SCENARIOS if s.name in names]
    repeats = args.repeats or (2 if args.quick else 5)
    command = " ".join(["python benchmarks/bench_regret.py", *sys.argv[1:]])
    code = code_state()  # now: the code imported, not what others commit during the run
    started = time.perf_counter()
    fitted = fit_reader(args.reader, repeats) if args.fit else None
    outcomes = []
    for s in chosen:
        try:
            outcome = run_scenario(
                s, quick=args.quick, repeats=repeats, reader=args.reader, fitted=fitted
            )
        except ChunkwiseError as exc:
            sys.exit(f"{s.name}: {exc}")
        outcomes.append(outcome)
        print(
            f"{s.name}: regret {outcome.regret:.2f}, fastest {outcome.final_best.layout.label()}, "
            f"{outcome.seconds:.0f} s",
            flush=True,
        )
    seconds = time.perf_counter() - started
    if args.json:
        args.json.write_text(json.dumps(to_json(outcomes), indent=1))
    section = markdown(
        outcomes, repeats=repeats, reader=args.reader, command=command, seconds=seconds,
        code=code, fitted=fitted,
    )  # fmt: skip
    publish(section, write=args.write_results)


if __name__ == "__main__":
    main()
