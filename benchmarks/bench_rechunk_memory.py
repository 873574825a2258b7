"""Does ``chunkwise rechunk`` stay within ``--max-mem``? Measured peak memory against budgets.

Run:  .venv/bin/python benchmarks/bench_rechunk_memory.py [--quick] [--write-results]

The memory model (:mod:`chunkwise.plan.rechunk`) projects what a run holds: each task's
region, chunks in flight, 3x each object written, a quarter on top for allocator slack and
a fixed 24 MiB. This sweep checks it where it matters, on map -> time-series rechunks (the
job that makes Dask and rechunker blow past their limits) at several array sizes and
budgets, each run in a fresh interpreter:

* the source is generated once per shape into ``--workdir`` (smooth fields plus 2% noise,
  float32, one (1, y, x) chunk per time step, Blosc zstd 5 with shuffle);
* the worker imports everything, runs a tiny rechunk to warm up zarr's pools, then runs the
  real one with ``chunkwise.rechunk(..., max_mem=budget)`` and the default read-back
  verification;
* **measured** is the rise of the process's peak resident memory above its resident
  memory when the run started (``ConversionResult.peak_added``: Linux's peak-RSS counter is
  reset at the start of the run, so nothing before it counts), which the budget bounds.

The table gives the plan (passes, tasks at once), the projected peak, the measured rise and
whether it is within the budget. ``--quick`` skips the 1 GiB cases.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from results_file import machine, publish

MiB = 2**20
MARK = "MEMORY-RESULT "


@dataclass(frozen=True)
class Case:
    shape: tuple[int, int, int]
    budget_mib: int

    @property
    def target(self) -> tuple[int, int, int]:
        return (
            self.shape[0],
            16 if self.shape[1] <= 256 else 32,
            16 if self.shape[2] <= 256 else 32,
        )

    @property
    def nbytes(self) -> int:
        t, y, x = self.shape
        return t * y * x * 4


CASES = (
    Case((128, 256, 256), 28),
    Case((256, 256, 256), 32),
    Case((256, 256, 256), 48),
    Case((256, 256, 256), 64),
    Case((256, 256, 256), 96),
    Case((1024, 512, 512), 96),
    Case((1024, 512, 512), 128),
    Case((1024, 512, 512), 256),
)

WORKER = """
import json, sys, shutil
import numpy as np, zarr
from chunkwise import api

src, out, budget, target = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
zarr.create_array(out + "/tiny.zarr", data=np.ones((4, 8, 8), "float32"), chunks=(1, 8, 8),
                  overwrite=True)
api.rechunk(out + "/tiny.zarr", out + "/tiny-out.zarr", chunks=(4, 2, 2), overwrite=True)
result = api.rechunk(src, out + "/out.zarr", chunks=tuple(target), max_mem=budget, overwrite=True)
(job,) = result.plan.jobs
print("MEMORY-RESULT " + json.dumps({
    "added": result.peak_added, "projected": result.plan.peak_memory,
    "passes": len(job.plan.stages), "parallel": [s.parallel for s in job.plan.stages],
    "seconds": result.seconds,
}))
"""


def ensure_source(work: Path, shape: tuple[int, int, int]) -> Path:
    """Smooth fields plus 2% noise, one chunk per time step, generated in slabs."""
    import numpy as np
    import zarr
    from zarr.codecs import BloscCodec

    path = work / f"maps-{'x'.join(map(str, shape))}.zarr"
    try:
        if zarr.open_array(path, mode="r").attrs.get("complete"):
            return path
    except Exception:
        pass
    array = zarr.create_array(
        path, shape=shape, dtype="float32", chunks=(1, *shape[1:]), overwrite=True,
        compressors=BloscCodec(cname="zstd", clevel=5, shuffle="shuffle", typesize=4),
    )  # fmt: skip
    y = np.arange(shape[1], dtype="float32")[None, :, None]
    x = np.arange(shape[2], dtype="float32")[None, None, :]
    rng = np.random.default_rng(7)
    for start in range(0, shape[0], 32):
        t = np.arange(start, min(start + 32, shape[0]), dtype="float32")[:, None, None]
        slab = np.sin(x / 17 + t / 11) * np.cos(y / 13)
        slab = slab + rng.standard_normal(slab.shape, dtype="float32") * np.float32(0.02)
        array[start : start + slab.shape[0]] = slab.astype("float32")
    array.attrs["complete"] = True
    return path


def run_case(case: Case, work: Path) -> dict[str, Any]:
    source = ensure_source(work, case.shape)
    out = work / "out"
    out.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(source), str(out), str(case.budget_mib * MiB),
         json.dumps(case.target)],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{case}: worker failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix(MARK))
    return result


def markdown(rows: list[tuple[Case, dict[str, Any]]], command: str) -> str:
    lines = [
        "## Rechunk memory: measured peak against the budget",
        "",
        f"Command: {command}. Machine: {machine()}. Date: {datetime.date.today().isoformat()}.",
        "",
        "Map → time-series rechunks (float32, one (1, y, x) chunk per time step, Blosc zstd 5, "
        "smooth fields plus 2% noise) with the default read-back verification, each in a fresh "
        "interpreter warmed up by a tiny rechunk. Measured = the rise of the process's peak RSS "
        "above its RSS when the run started (the kernel's peak counter is reset then), which "
        "is what `--max-mem` bounds. One run per case.",
        "",
        "| array | target chunks | budget | plan | projected peak | measured rise | within budget | wall s |",
        "|---|---|---:|---|---:|---:|---|---:|",
    ]
    for case, r in rows:
        plan = (
            "one pass"
            if r["passes"] == 1
            else "two passes, " + " / ".join(str(p) for p in r["parallel"]) + " at a time"
        )
        ok = r["added"] <= case.budget_mib * MiB
        lines.append(
            f"| {'x'.join(map(str, case.shape))} ({case.nbytes / MiB:,.0f} MiB) | "
            f"{'x'.join(map(str, case.target))} | {case.budget_mib} MiB | {plan} | "
            f"{r['projected'] / MiB:.1f} MiB | {r['added'] / MiB:.1f} MiB | "
            f"{'yes' if ok else '**no**'} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Skip the 1 GiB cases.")
    parser.add_argument("--workdir", default="/tmp/chunkwise-bench-rechunk-memory")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for case in CASES:
        if args.quick and case.nbytes > 256 * MiB:
            continue
        started = time.perf_counter()
        result = run_case(case, work)
        print(
            f"{case.shape} at {case.budget_mib} MiB: rose {result['added'] / MiB:.1f} MiB "
            f"(projected {result['projected'] / MiB:.1f}) in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        rows.append((case, result))
    command = (
        "`" + " ".join([".venv/bin/python benchmarks/bench_rechunk_memory.py", *sys.argv[1:]]) + "`"
    )
    publish(markdown(rows, command), write=args.write_results)


if __name__ == "__main__":
    main()
