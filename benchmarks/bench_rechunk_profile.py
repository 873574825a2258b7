"""Where a rechunk's time goes: per stage and per phase of its tasks, on both zarr lines.

Run:  .venv/bin/python benchmarks/bench_rechunk_profile.py [--repeats 3] [--perf]
                      [--pythons .venv,.venv-3.13] [--write-results]

The job is the 1 GiB map -> time-series rechunk of ``benchmarks/bench_rechunk.py`` (same
source, generated there and reused: float32 (1024, 512, 512) in (1, 512, 512) chunks, Blosc
zstd 5 shuffle; target (1024, 32, 32), same codec, 256 MiB budget, 2 threads). Each
variant runs in a fresh interpreter of each Python line, variants interleaved round by
round, and reports medians over ``--repeats``:

* the rechunk call's wall time, the process's user and system CPU and its minor page
  faults (``getrusage`` around the call: every thread of the process);
* per stage (``to-intermediate``, ``from-intermediate``): wall time, the tasks' summed
  time in each phase (read: requests, decoding and assembling the region; write: cutting
  it into chunks, encoding and storing them; check: reading back and comparing; mark:
  the task's marker), from the executor's own ``stage-done`` events; *waiting* is the rest
  of ``wall x parallel``: time a task slot held no task (the stage's start and end, the
  runner handing out the next task);
* with ``--perf`` (Linux ``perf`` installed), a second run of each variant under
  ``perf record``: the share of CPU samples in the codecs (Blosc/zstd/lz4 in numcodecs, or
  zarrs' Rust library), the kernel (file I/O, page faults, file creation), the Python
  interpreter, the C library (memory copies and fills) and NumPy.

Variants: the engine (zarr-python's own codec pipeline, or zarrs), the verification
(``none``, ``readback``), the intermediate stored raw instead of Blosc lz4, and, for the
record, the allocator settings chunkwise used before this benchmark (mmap threshold 4 MiB,
heap trimmed after every task).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import machine_line, publish, wait_idle

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()
MARK = "PROFILE-RESULT "
MiB = 2**20

VARIANTS: dict[str, dict[str, Any]] = {
    "zarr, --verify none": {"engine": "zarr", "verify": "none"},
    "zarr, --verify readback": {"engine": "zarr", "verify": "readback"},
    "zarrs, --verify none": {"engine": "zarrs", "verify": "none"},
    "zarrs, --verify readback": {"engine": "zarrs", "verify": "readback"},
    "zarrs, --verify none, intermediate stored raw (no lz4)": {
        "engine": "zarrs",
        "verify": "none",
        "raw_intermediate": True,
    },
    "zarr, --verify none, allocator as before (4 MiB mmap threshold, trim per task)": {
        "engine": "zarr",
        "verify": "none",
        "before": True,
    },
}

#: perf's shared objects, by what they do.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("codecs", ("blosc", "zstd", "lz4", "_internal.abi3", "numcodecs")),
    ("kernel", ("[kernel",)),
    ("Python", ("libpython", "python3")),
    ("C library", ("libc.so", "libc-")),
    ("NumPy", ("_multiarray", "numpy", "openblas")),
)


# ------------------------------------------------------------------------------------------
# Worker: a fresh interpreter per run.
# ------------------------------------------------------------------------------------------


def _as_before() -> None:
    """The allocator settings before this benchmark: a fixed 4 MiB mmap threshold and a
    heap trim after every task (around its read and write, as it was)."""
    import ctypes
    import ctypes.util

    import chunkwise.rechunking.executor as executor

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    executor.tame_allocator = lambda: (libc.mallopt(-8, 2), libc.mallopt(-3, 4 * MiB))  # type: ignore[assignment]
    task = executor.copy_task

    def trimmed(*args: Any, **kwargs: Any) -> Any:
        executor.release_memory()
        try:
            return task(*args, **kwargs)
        finally:
            executor.release_memory()

    executor.copy_task = trimmed  # type: ignore[assignment]


def worker(spec: dict[str, Any]) -> None:
    import resource

    import numpy  # noqa: F401
    import zarr  # noqa: F401

    from chunkwise import api
    from chunkwise.rechunking.executor import PHASES, RechunkEvent

    if spec.get("before"):
        _as_before()
    if spec.get("raw_intermediate"):
        import chunkwise.rechunking.executor as executor

        executor.INTERMEDIATE_COMPRESSOR = "none"
    stages: list[dict[str, Any]] = []

    def events(event: RechunkEvent) -> None:
        if event.kind == "stage-done":
            stages.append(
                {
                    "stage": event.stage,
                    "wall": event.seconds,
                    "tasks": event.total,
                    "parallel": event.parallel,
                    "busy": dict(zip(PHASES, event.busy, strict=True)),
                }
            )

    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = api.rechunk(
        spec["src"], spec["dst"], chunks=(1024, 32, 32), codec="blosc:zstd:5:shuffle",
        max_mem="256MiB", threads=2, verify=spec["verify"], engine=spec["engine"],
        events=events,
    )  # fmt: skip
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(
        MARK
        + json.dumps(
            {
                "wall": wall,
                "user": after.ru_utime - before.ru_utime,
                "sys": after.ru_stime - before.ru_stime,
                "faults": after.ru_minflt - before.ru_minflt,
                "stages": stages,
                "engine": result.plan.engine,  # type: ignore[union-attr]
                "peak_added": result.peak_added,  # type: ignore[union-attr]
            }
        ),
        flush=True,
    )


# ------------------------------------------------------------------------------------------
# Parent.
# ------------------------------------------------------------------------------------------


def _versions(python: Path) -> str:
    code = (
        "import sys, zarr, numcodecs; from importlib import metadata as m\n"
        "try: z = m.version('zarrs')\nexcept Exception: z = 'not installed'\n"
        "print(f'Python {sys.version.split()[0]}, zarr {zarr.__version__}, "
        "numcodecs {numcodecs.__version__}, zarrs {z}')"
    )
    return subprocess.run(
        [str(python), "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()


def _run(python: Path, spec: dict[str, Any], perf: Path | None = None) -> dict[str, Any]:
    shutil.rmtree(spec["dst"], ignore_errors=True)
    command = [str(python), str(SCRIPT), "--worker", json.dumps(spec)]
    if perf is not None:
        command = ["perf", "record", "-q", "-F", "499", "-g", "-o", str(perf), "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    shutil.rmtree(spec["dst"], ignore_errors=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(done.stderr[-2000:])
    return dict(json.loads(lines[-1][len(MARK) :]))


def _perf_shares(data: Path) -> dict[str, float]:
    """Share of samples per category (:data:`CATEGORIES`), from ``perf report``."""
    out = subprocess.run(
        ["perf", "report", "-i", str(data), "--no-children", "--sort", "dso", "-g", "none",
         "--stdio"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    shares = {name: 0.0 for name, _ in CATEGORIES} | {"other": 0.0}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2 or not parts[0].endswith("%"):
            continue
        share, dso = float(parts[0].rstrip("%")), " ".join(parts[1:])
        name = next((n for n, keys in CATEGORIES if any(k in dso for k in keys)), "other")
        shares[name] += share
    return shares


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _stage_rows(runs: list[dict[str, Any]]) -> list[str]:
    rows = []
    for index, first in enumerate(runs[0]["stages"]):
        stage = [run["stages"][index] for run in runs]
        wall = _median([s["wall"] for s in stage])
        slots = wall * first["parallel"]
        phases = {p: _median([s["busy"][p] for s in stage]) for p in first["busy"]}
        waiting = max(0.0, slots - sum(phases.values()))

        def share(seconds: float, slots: float = slots) -> str:
            return f"{seconds:.2f} ({100 * seconds / slots:.0f}%)" if slots else "-"

        rows.append(
            f"| {first['stage']} | {first['tasks']} x {first['parallel']} | {wall:.2f} | "
            + " | ".join(share(phases[p]) for p in ("read", "write", "check", "mark"))
            + f" | {share(waiting)} |"
        )
    return rows


def markdown(
    results: dict[str, dict[str, list[dict[str, Any]]]],
    shares: dict[str, dict[str, dict[str, float]]],
    versions: dict[str, str],
    command: str,
    repeats: int,
) -> str:
    lines = [
        "## Rechunk profile: where the 1 GiB job's time goes",
        "",
        f"Command: `{command}`. Machine: {machine_line()}. Date: {time.strftime('%Y-%m-%d')}.",
        "",
        "The 1 GiB map → time-series job of the rechunk benchmark (float32 1024x512x512 in "
        "1x512x512 chunks → 1024x32x32, Blosc zstd 5 shuffle, 256 MiB budget, 2 threads, two "
        "passes through an intermediate of 32x64x64 lz4 chunks), each run in a fresh "
        f"interpreter, variants interleaved, medians of {repeats} run(s). CPU and page faults "
        "are the process's (`getrusage` around the call); the stage table sums the tasks' "
        "phases from the executor's own events: *read* (requests, decoding, assembling the "
        "region), *write* (cutting into chunks, encoding, storing), *check* (read-back and "
        "comparison), *mark* (the task's marker); *waiting* is the rest of wall x parallel "
        "(task slots holding no task). Percentages are of wall x parallel.",
    ]
    for label, per_variant in results.items():
        lines += ["", f"### {versions[label]}", ""]
        lines += [
            "| variant | engine | wall s | user CPU s | system CPU s | minor page faults | "
            "peak rise MiB |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for variant, runs in per_variant.items():
            lines.append(
                f"| {variant} | {runs[0]['engine']} | {_median([r['wall'] for r in runs]):.2f} | "
                f"{_median([r['user'] for r in runs]):.2f} | "
                f"{_median([r['sys'] for r in runs]):.2f} | "
                f"{_median([r['faults'] for r in runs]):,.0f} | "
                f"{_median([r['peak_added'] or 0 for r in runs]) / MiB:.0f} |"
            )
        lines += [
            "",
            "| variant | stage | tasks x parallel | wall s | read s | write s | check s | "
            "mark s | waiting s |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for variant, runs in per_variant.items():
            lines += [f"| {variant} " + row for row in _stage_rows(runs)]
        if shares.get(label):
            names = [name for name, _ in CATEGORIES] + ["other"]
            lines += [
                "",
                "CPU samples by where they fall (`perf record -F 499`, one run per variant):",
                "",
                "| variant | " + " | ".join(names) + " |",
                "|---|" + "---:|" * len(names),
            ]
            for variant, share in shares[label].items():
                lines.append(
                    f"| {variant} | " + " | ".join(f"{share[n]:.0f}%" for n in names) + " |"
                )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--perf", action="store_true", help="also sample CPU with perf")
    parser.add_argument("--pythons", default=".venv,.venv-3.13")
    parser.add_argument("--only", default="", help="comma-separated variant numbers (1-based)")
    parser.add_argument("--workdir", default="/tmp/chunkwise-bench-rechunk")
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return

    from bench_rechunk import FULL, ensure_source

    work = Path(args.workdir) / FULL.name
    work.mkdir(parents=True, exist_ok=True)
    source = ensure_source(FULL, work)
    pythons = {
        name: ROOT / name / "bin" / "python"
        for name in args.pythons.split(",")
        if (ROOT / name / "bin" / "python").exists()
    }
    chosen = list(VARIANTS)
    if args.only:
        chosen = [chosen[int(i) - 1] for i in args.only.split(",")]
    versions = {name: _versions(python) for name, python in pythons.items()}
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {v: [] for v in chosen} for name in pythons
    }
    shares: dict[str, dict[str, dict[str, float]]] = {name: {} for name in pythons}
    for round_ in range(args.repeats):
        for name, python in pythons.items():
            for variant in chosen:
                wait_idle()
                spec = {"src": str(source), "dst": str(work / "profile-target.zarr")}
                run = _run(python, spec | VARIANTS[variant])
                results[name][variant].append(run)
                print(
                    f"round {round_ + 1} {name} {variant}: {run['wall']:.2f} s, user "
                    f"{run['user']:.1f} s, sys {run['sys']:.1f} s, faults {run['faults']:,}",
                    flush=True,
                )
    if args.perf and shutil.which("perf"):
        for name, python in pythons.items():
            for variant in chosen:
                data = work / "profile.perf"
                spec = {"src": str(source), "dst": str(work / "profile-target.zarr")}
                _run(python, spec | VARIANTS[variant], perf=data)
                shares[name][variant] = _perf_shares(data)
                data.unlink(missing_ok=True)
    command = " ".join([".venv/bin/python benchmarks/bench_rechunk_profile.py", *sys.argv[1:]])
    publish(markdown(results, shares, versions, command, args.repeats), write=args.write_results)


if __name__ == "__main__":
    main()
