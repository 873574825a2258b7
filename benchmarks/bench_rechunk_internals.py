"""What four engine choices in ``chunkwise rechunk`` are worth, each against its alternative.

Run:  .venv/bin/python benchmarks/bench_rechunk_internals.py [--repeats 3] [--write-results]

On the 1 GiB map -> time-series job of ``bench_rechunk.py`` (same source, ``--verify none``),
each variant in a fresh interpreter, runs interleaved, medians of wall, user and system CPU
seconds of the rechunk call:

* **as shipped** at 256 MiB;
* **mmap threshold 256 KiB**: glibc told to map (and unmap) every buffer from 256 KiB up
  (the engine maps from 4 MiB up): lower peaks, but every buffer's pages are faulted in
  afresh;
* **dynamic mmap threshold**: glibc's default, which climbs to the largest buffer freed,
  so that large decoded chunks stay on the heap (faster, but peaks follow the allocator's
  history);
* **zarr's own empty-chunk test**: the engine's check that lets zarr skip comparing every
  chunk with the fill value (as raw void bytes) switched off;
* at a 96 MiB budget, **as shipped** against **small intermediate chunks**: the planner's
  256 KiB floor on intermediate chunks switched off (it then picks 32 KiB chunks to keep
  two tasks running).
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench_rechunk import FULL, ensure_source
from harness import machine, publish

MARK = "INTERNALS-RESULT "

WORKER = """
import json, resource, shutil, sys, time
import numpy, zarr, numcodecs
import chunkwise.rechunking.convert as convert
import chunkwise.rechunking.executor as engine
import chunkwise.plan.rechunk as plan
from chunkwise import api

src, dst, budget, variant = sys.argv[1:5]
if variant == "mmap-256k":
    engine.MMAP_THRESHOLD = 256 * 1024
elif variant == "mmap-dynamic":
    engine.MMAP_THRESHOLD = 0
elif variant == "zarr-empty-test":
    engine._writer = lambda dest, values: dest
elif variant == "small-intermediate":
    plan.MIN_INTERMEDIATE_BYTES = 0
shutil.rmtree(dst, ignore_errors=True)
before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
result = api.rechunk(src, dst, chunks=(1024, 32, 32), codec="blosc:zstd:5:shuffle",
                     max_mem=budget, verify="none")
after = resource.getrusage(resource.RUSAGE_SELF)
(job,) = result.plan.jobs
print("INTERNALS-RESULT " + json.dumps({
    "wall": time.perf_counter() - start,
    "user": after.ru_utime - before.ru_utime,
    "sys": after.ru_stime - before.ru_stime,
    "intermediate": list(job.plan.intermediate_chunks or ()),
    "added": result.peak_added,
}))
"""

VARIANTS = (
    ("256MiB", "shipped", "as shipped"),
    ("256MiB", "mmap-256k", "mmap threshold 256 KiB"),
    ("256MiB", "mmap-dynamic", "dynamic mmap threshold"),
    ("256MiB", "zarr-empty-test", "zarr's own empty-chunk test"),
    ("96MiB", "shipped", "as shipped"),
    ("96MiB", "small-intermediate", "small intermediate chunks"),
)


def run(source: Path, work: Path, budget: str, variant: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(source), str(work / "out.zarr"), budget, variant],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{budget} {variant}: worker failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix(MARK))
    return result


def markdown(results: dict[tuple[str, str], list[dict[str, Any]]], command: str) -> str:
    repeats = max(len(runs) for runs in results.values())
    lines = [
        "## Rechunk internals: what four engine choices are worth",
        "",
        f"Command: {command}. Machine: {machine()}. Date: {datetime.date.today().isoformat()}.",
        "",
        "The 1 GiB map → time-series job of the rechunk benchmark (same source and target "
        f"chunks, `--verify none`), each variant in a fresh interpreter, {repeats} interleaved "
        "runs, medians of the rechunk call's wall time, the process's user and system CPU, "
        "and the run's measured rise of peak RSS.",
        "",
        "| budget | variant | intermediate chunks | wall s | user CPU s | system CPU s | peak rise MiB |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for budget, variant, label in VARIANTS:
        runs = results[(budget, variant)]

        def med(key: str, runs: list[dict[str, Any]] = runs) -> str:
            return f"{statistics.median(r[key] for r in runs):.2f}"

        inter = "x".join(map(str, runs[0]["intermediate"]))
        rise = statistics.median(r["added"] for r in runs) / 2**20
        lines.append(
            f"| {budget} | {label} | {inter} | {med('wall')} | {med('user')} | {med('sys')} "
            f"| {rise:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", default="/tmp/chunkwise-bench-rechunk")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    work = Path(args.workdir) / FULL.name
    work.mkdir(parents=True, exist_ok=True)
    source = ensure_source(FULL, work)
    results: dict[tuple[str, str], list[dict[str, Any]]] = {(b, v): [] for b, v, _ in VARIANTS}
    for round_ in range(args.repeats):
        for budget, variant, label in VARIANTS:
            r = run(source, work, budget, variant)
            results[(budget, variant)].append(r)
            print(
                f"round {round_ + 1} {budget} {label}: {r['wall']:.2f} s wall, "
                f"{r['user']:.1f} user, {r['sys']:.1f} sys",
                flush=True,
            )
    command = (
        "`"
        + " ".join([".venv/bin/python benchmarks/bench_rechunk_internals.py", *sys.argv[1:]])
        + "`"
    )
    publish(markdown(results, command), write=args.write_results)


if __name__ == "__main__":
    main()
