"""Do advise's layouts beat the usual ones, and do predictions match? Repeated ``bench`` runs.

Run:  make bench        (or: .venv/bin/python benchmarks/bench_layouts.py [--runs 3] [--write-results])

Two scenarios, each run ``--runs`` times in one process, every run a full
``chunkwise.bench`` (fresh layouts, fresh calibration, 5 or 9 random positions per
operation):

* real climate data (iris sample data, air temperature 240x37x49 float32; maps and time
  series) over an emulated slow link (50 ms per request, 20 MB/s, 6 connections):
  advise's pick against zarr's ``chunks="auto"`` and Dask's 128 MiB auto chunks;
* the prediction test's scenario (48x384x384 float32 synthetic tomogram, XY planes) on an
  emulated 20 ms store: measured mean over predicted for every operation of every layout.

We report the median over runs of each layout's measured workload time, and the range of
measured/predicted ratios. With ``--write-results`` the tables replace their section of
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from importlib import resources
from typing import Any

from harness import machine, publish

import chunkwise
from chunkwise.units import compare_speed

SLOW_LINK = "emulated://?latency=50ms&bandwidth=20MB/s&concurrency=6"
FAST_LINK = "emulated://?latency=20ms&bandwidth=500MB/s&concurrency=64"
PLANES: dict[str, Any] = {
    "array": {"shape": [48, 384, 384], "dtype": "float32", "dims": ["z", "y", "x"]},
    "workload": [{"op": "plane", "dims": ["y", "x"], "weight": 1.0}],
    "codec": "blosc:zstd:5:shuffle",
}


def climate(runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    ratios: list[float] = []
    folder = resources.files("chunkwise") / "examples"
    with resources.as_file(folder / "air-temperature.yaml") as spec:
        for run in range(runs):
            started = time.perf_counter()
            report = chunkwise.bench(spec, data="sample:air-temperature", store=SLOW_LINK)
            for result in report.results:
                times.setdefault(result.name, []).append(result.measured_weighted_s)
                ratios.extend(op.ratio for op in result.ops)
            print(f"climate run {run + 1}: {time.perf_counter() - started:.0f} s")
    times["_ratios"] = ratios
    return times


def planes(runs: int) -> tuple[list[float], list[bool]]:
    ratios: list[float] = []
    agree: list[bool] = []
    for run in range(runs):
        report = chunkwise.bench(
            PLANES, data="synthetic:tomogram", store=FAST_LINK, top=1, repeats=9, warm=False
        )
        ratios.extend(op.ratio for r in report.results for op in r.ops)
        agree.append(report.fastest().name == report.predicted_fastest().name)
        print(f"planes run {run + 1}: fastest {report.fastest().name}")
    return ratios, agree


def markdown(
    runs: int, times: dict[str, list[float]], plane: tuple[list[float], list[bool]]
) -> str:
    ratios = times.pop("_ratios")
    best = statistics.median(times["advise #1"])
    lines = [
        "## bench: advise's layouts against the usual ones, predicted against measured",
        "",
        f"Command: `make bench` (`benchmarks/bench_layouts.py --runs {runs} --write-results`). "
        f"Machine: {machine()}. Each run is a whole `chunkwise.bench` (layouts written afresh, "
        "CPU costs re-calibrated); times are the measured workload time per operation "
        "(weighted median over random positions), median over runs.",
        "",
        "Real climate data (air temperature 240x37x49 float32, iris sample data), maps 50% and "
        "time series 50%, over an emulated slow link (50 ms per request, 20 MB/s, 6 connections):",
        "",
        "| layout | median | min | max | advise #1 is |",
        "|---|---:|---:|---:|---|",
    ]
    for name, values in times.items():
        median = statistics.median(values)
        versus = "" if name == "advise #1" else compare_speed(best, median)
        lines.append(
            f"| {name} | {median * 1e3:.1f} ms | {min(values) * 1e3:.1f} ms | "
            f"{max(values) * 1e3:.1f} ms | {versus} |"
        )
    plane_ratios, agree = plane
    lines += [
        "",
        f"Measured mean over predicted, every operation of every layout: climate "
        f"{min(ratios):.2f}–{max(ratios):.2f}; XY planes of a 48x384x384 float32 synthetic "
        f"tomogram on an emulated 20 ms store (advise #1, zarr auto, Dask auto, rule of thumb; "
        f"9 positions) {min(plane_ratios):.2f}–{max(plane_ratios):.2f}, with the predicted "
        f"fastest layout measured fastest in {sum(agree)} of {len(agree)} runs.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    section = markdown(args.runs, climate(args.runs), planes(args.runs))
    publish(section, write=args.write_results)


if __name__ == "__main__":
    main()
