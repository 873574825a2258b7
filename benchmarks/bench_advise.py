"""How long does ``chunkwise.advise`` take? 3-D and 6-D arrays, several workloads.

Run:  make bench        (or: .venv/bin/python benchmarks/bench_advise.py [--write-results])

Each case runs once to warm caches that persist across calls in one process
(imports), then ``--repeats`` times cold for the per-call caches; we report the
median, min and max wall time of ``chunkwise.advise`` and the number of layouts
priced. With ``--write-results`` the table replaces the advise section of
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from harness import machine, publish

import chunkwise
from chunkwise.cost import geometry

CASES: list[tuple[str, dict[str, Any]]] = [
    (
        "3-D cryo-ET 184x630x630 f4, slice-viewer, local-ssd, v2",
        {"array": {"shape": [184, 630, 630], "dtype": "float32", "dims": ["z", "y", "x"]},
         "workload": "slice-viewer", "storage": "local-ssd", "constraints": {"zarr_format": 2}},
    ),
    (
        "3-D ERA5 8760x721x1440 f4, time-series, s3, max_objects 50k",
        {"array": {"shape": [8760, 721, 1440], "dtype": "float32", "dims": ["time", "lat", "lon"]},
         "workload": "time-series", "storage": "s3", "constraints": {"max_objects": 50000}},
    ),
    (
        "3-D 2048^3 u2, 32^3 ROIs, s3, max_objects 2000, tensorstore",
        {"array": {"shape": [2048, 2048, 2048], "dtype": "uint16", "dims": ["z", "y", "x"]},
         "workload": [{"op": "region", "extent": {"z": 32, "y": 32, "x": 32}}], "storage": "s3",
         "reader": "tensorstore", "constraints": {"max_objects": 2000}},
    ),
    (
        "6-D 10x4x3x128x1024x1024 u2 (t,c,l,z,y,x), slice-viewer, s3",
        {"array": {"shape": [10, 4, 3, 128, 1024, 1024], "dtype": "uint16", "dims": ["t", "c", "l", "z", "y", "x"]},
         "workload": "slice-viewer", "storage": "s3"},
    ),
    (
        "6-D 100x12x24x37x181x360 f4 ensemble, time-series, s3, max_objects 100k",
        {"array": {"shape": [100, 12, 24, 37, 181, 360], "dtype": "float32",
                   "dims": ["time", "member", "step", "level", "lat", "lon"]},
         "workload": "time-series", "storage": "s3", "constraints": {"max_objects": 100000}},
    ),
    (
        "6-D 6x5x40x64x128x96 f4, mixed plane+region+scan, hpc",
        {"array": {"shape": [6, 5, 40, 64, 128, 96], "dtype": "float32"},
         "workload": [{"op": "plane", "dims": ["dim_4", "dim_5"], "weight": 0.6},
                      {"op": "region", "extent": {"dim_3": 16, "dim_4": 32, "dim_5": 32}, "weight": 0.3},
                      {"op": "scan", "weight": 0.1}],
         "storage": "hpc"},
    ),
]  # fmt: skip


def clear_caches() -> None:
    for cached in (geometry.dim_access, geometry.append_access, geometry._period_sums):
        cached.cache_clear()


def run(repeats: int) -> list[dict[str, Any]]:
    rows = []
    for name, spec in CASES:
        chunkwise.advise(spec)  # warm-up: imports, numpy first calls
        times = []
        advice = None
        for _ in range(repeats):
            clear_caches()
            start = time.perf_counter()
            advice = chunkwise.advise(spec)
            times.append(time.perf_counter() - start)
        assert advice is not None
        rows.append(
            {
                "case": name,
                "median_s": statistics.median(times),
                "min_s": min(times),
                "max_s": max(times),
                "evaluated": advice.evaluated,
                "best": advice.best.layout.label(),
            }
        )
        print(f"{name}: median {statistics.median(times) * 1e3:.0f} ms over {repeats} runs "
              f"({advice.evaluated:,} layouts) -> {advice.best.layout.label()}")  # fmt: skip
    return rows


def markdown(rows: list[dict[str, Any]], repeats: int) -> str:
    lines = [
        "## advise: time to an answer",
        "",
        f"Command: `make bench` (`benchmarks/bench_advise.py --repeats {repeats} --write-results`). "
        f"Machine: {machine()}. Wall time of one `chunkwise.advise(...)` call, geometry caches "
        f"cleared before each run, {repeats} runs per case after one warm-up.",
        "",
        "| case | median | min | max | layouts priced | recommendation #1 |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['median_s'] * 1e3:.0f} ms | {r['min_s'] * 1e3:.0f} ms | "
            f"{r['max_s'] * 1e3:.0f} ms | {r['evaluated']:,} | {r['best']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    rows = run(args.repeats)
    section = markdown(rows, args.repeats)
    publish(section, write=args.write_results)


if __name__ == "__main__":
    main()
