"""The dry run's estimate against measured runs, and memory as the data grows: 1, 2, 4 GiB.

Run:  .venv/bin/python benchmarks/bench_rechunk_scale.py [--sizes 1,2,4] [--repeats 3]
                    [--threads] [--write-results]

The job of bench_rechunk.py at three sizes: float32 (T, 512, 512) maps, zarr v3, chunks
(1, 512, 512), Blosc zstd 5 with byte shuffle, rechunked to time series (T, 32, 32) with
the same codec, 256 MiB per worker, T = 1024, 2048, 4096 (1, 2, 4 GiB). The command is

    chunkwise rechunk SRC DST --chunks T,32,32 --codec blosc:zstd:5:shuffle
        --max-mem 256MiB --dask local:2 --verify none --quiet --json

run in-process in a fresh interpreter per run (harness.measure), on local disk; ``--threads``
adds the local thread executor (``--threads 2``, no Dask). Sources are generated once into
``--workdir`` by bench_rechunk's generator (smooth cosines plus 2% noise, in slabs of 32
planes, so the generator holds a few MiB whatever the size) and reused while complete.

Reported per size (medians over ``--repeats``, interleaved round by round):

* **time**: measured wall time of the rechunk call against the dry run's estimate
  (``chunkwise.plan.estimate``), twice: with the preset codec speeds the CLI prints, and with
  codec speeds measured here on a sample of the source (``chunkwise.measure.codecs``:
  ratio, single-core encode and decode of ``blosc:zstd:5:shuffle`` and of the intermediate's
  ``blosc:lz4:1:shuffle``). The measurement reruns with the benchmark; no constant is tuned
  to one result.
* **tasks and objects**: tasks predicted against tasks run (the result's count); objects
  predicted against objects counted on disk: the target's chunk files after the run, and the
  intermediate's chunk files, counted every 0.5 s while the run holds them (they are removed
  at the end). GETs are predicted only (reads are not instrumented; the plan's property tests
  prove every read chunk lies in exactly one task).
* **memory**: each Dask worker's peak RSS and its rise above its start (the result JSON's
  ``peak_rss`` / ``peak_rss_added``, the largest worker), the largest process of the tree
  sampled by psutil, and whether the 4 GiB job peaks no higher than the 1 GiB job.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import shutil
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import Run, begin, machine_line, measure_quietly, publish, report

HERE = Path(__file__).resolve().parent
SCRIPT = Path(__file__).resolve()
ROOT = HERE.parent
MAIN_PYTHON = ROOT / ".venv" / "bin" / "python"
CODEC = "blosc:zstd:5:shuffle"
INTERMEDIATE_CODEC = "blosc:lz4:1:shuffle"
BUDGET = "256MiB"
PLANE = (512, 512)
GENERATOR = "bench_rechunk smooth-4-cosines+2%-noise-v1"
MiB = 2**20
GiB = 2**30
#: The engines the dry runs named (the library that encodes, decodes and stores chunks).
ENGINES: set[str] = set()


@dataclass(frozen=True)
class Size:
    """One size of the job; ``series`` fixes the target chunk's time extent (0: all of
    it, the job of bench_rechunk.py)."""

    gib: int
    series: int = 0

    @property
    def steps(self) -> int:
        return self.gib * GiB // (PLANE[0] * PLANE[1] * 4)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.steps, *PLANE)

    @property
    def target_chunks(self) -> tuple[int, int, int]:
        return (min(self.series or self.steps, self.steps), 32, 32)


@dataclass(frozen=True)
class Executor:
    name: str
    label: str
    args: tuple[str, ...]


EXECUTORS = {
    "dask": Executor("dask", "`--dask local:2`", ("--dask", "local:2")),
    "threads": Executor("threads", "`--threads 2` (local)", ("--threads", "2")),
}


# --------------------------------------------------------------------------------------------
# The worker: one rechunk run in a fresh interpreter.
# --------------------------------------------------------------------------------------------


def _files(path: Path, folder: str = "") -> int:
    """Chunk files (zarr v3 keys ``c/...``) of the array at ``path``, or of the array in
    the folder named ``folder`` below it; metadata, run markers (which the first pass keeps
    inside the intermediate's folder) and unfinished writes left out."""
    count = 0
    for f in path.rglob("*") if path.exists() else ():
        parts = f.relative_to(path).parts
        if f.name.endswith(".partial") or not f.is_file():
            continue
        root = parts.index(folder) + 1 if folder in parts[:-1] else (-1 if folder else 0)
        if root >= 0 and len(parts) > root + 1 and parts[root] == "c":
            count += 1
    return count


def work_rechunk(spec: dict[str, Any]) -> dict[str, Any]:
    import importlib

    from chunkwise.cli.main import cli

    # Import what the command imports lazily before the clock starts (as bench_rechunk).
    for name in ("numpy", "zarr", "numcodecs", "dask.array", "distributed"):
        importlib.import_module(name)
    dst = Path(spec["dst"])
    args = [
        "rechunk", spec["src"], str(dst), "--chunks", ",".join(map(str, spec["chunks"])),
        "--codec", CODEC, "--max-mem", BUDGET, "--verify", "none", "--quiet", "--json",
        *spec["args"],
    ]  # fmt: skip
    most = {"intermediate": 0}
    stop = threading.Event()

    def watch() -> None:  # the intermediate's chunks exist from pass 1 until the clean-up
        while not stop.wait(0.5):
            most["intermediate"] = max(most["intermediate"], _files(dst, "intermediate"))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out = io.StringIO()
    started = begin()
    with contextlib.redirect_stdout(out):
        cli.main(args=args, prog_name="chunkwise", standalone_mode=False)
    work_s = time.perf_counter() - started
    stop.set()
    watcher.join()
    doc = json.loads(out.getvalue())
    array = doc["plan"]["arrays"][0]
    return {
        "work_s": work_s,
        "run_s": doc["seconds"],
        "estimate": array["estimate"],
        "projected_peak": doc["plan"]["peak_memory"],
        "tasks_run": sum(a["tasks_run"] for a in doc["arrays"].values()),
        "peak_rss": doc["peak_rss"],
        "peak_rss_added": doc["peak_rss_added"],
        "target_objects": _files(dst),
        "intermediate_objects": most["intermediate"],
        "argv": ["chunkwise", *args],
    }


# --------------------------------------------------------------------------------------------
# The parent: sources, codec speeds, runs, the report.
# --------------------------------------------------------------------------------------------


def ensure_source(size: Size, work: Path) -> Path:
    """The size's source, generated with bench_rechunk's recipe unless a complete one is
    there."""
    import zarr
    from bench_rechunk import SEED, write_maps

    path = work / f"maps-{size.gib}gib.zarr"
    stamp = {"generator": GENERATOR, "seed": SEED, "complete": True}
    with contextlib.suppress(Exception):
        array = zarr.open_array(path, mode="r")
        if array.shape == size.shape and array.attrs.get("bench_scale") == stamp:
            return path
    shutil.rmtree(path, ignore_errors=True)
    print(f"generating {path} ({size.gib} GiB) ...", flush=True)
    array = write_maps(path, size.shape, (1, *PLANE))
    array.attrs["bench_scale"] = stamp
    return path


@dataclass
class CodecSpeeds:
    """Codec profiles measured on samples of the source: ``"source"`` (its maps, in
    source chunks), ``"intermediate"`` (lz4 on the same maps) and ``"target"`` (time
    series, in target chunks)."""

    profiles: dict[str, Any]

    def line(self) -> str:
        return "; ".join(
            f"{name} ({codec}): ratio {p.ratio:.2f}, encode {p.encode_Bps / 1e6:,.0f} MB/s, "
            f"decode {p.decode_Bps / 1e6:,.0f} MB/s"
            for name, (codec, p) in self.profiles.items()
        )

    def __getitem__(self, name: str) -> Any:
        return self.profiles[name][1]


def measure_codecs(source: Path) -> CodecSpeeds:
    """Ratio and single-core speeds of each array's codec on what it holds: 64 MiB of the
    source's maps in map chunks (the source's zstd, the intermediate's lz4), and four time
    series tiles of the source in target chunks (the target's zstd)."""
    import numpy as np
    import zarr

    from chunkwise.measure.codecs import profile_codecs, sample_blocks
    from chunkwise.model.codec import CodecProfile

    array = zarr.open_array(source, mode="r")
    maps = sample_blocks(array, 64 * MiB)
    plane = PLANE[0] * PLANE[1] * 4
    found = {
        m.codec: m for m in profile_codecs(maps, [CODEC, INTERMEDIATE_CODEC], chunk_bytes=plane)
    }
    strip = np.asarray(array[:, :32, :128])  # four (T, 32, 32) target chunks side by side
    tiles = np.ascontiguousarray(strip.reshape(strip.shape[0], 32, 4, 32).transpose(2, 0, 1, 3))
    (series,) = profile_codecs(tiles, [CODEC], chunk_bytes=tiles[0].nbytes)

    def profile(m: Any) -> Any:
        return CodecProfile(m.ratio, m.encode_Bps, m.decode_Bps, True)

    return CodecSpeeds(
        {
            "source": (CODEC, profile(found[CODEC])),
            "intermediate": (INTERMEDIATE_CODEC, profile(found[INTERMEDIATE_CODEC])),
            "target": (CODEC, profile(series)),
        }
    )


def estimate_with(
    size: Size, source: Path, dst: Path, executor: Executor, speeds: CodecSpeeds
) -> Any:
    """The dry run's estimate of the job with measured codec speeds (no cluster started)."""
    from chunkwise import api
    from chunkwise.plan.estimate import estimate_rechunk
    from chunkwise.rechunking.convert import storage_at

    threads = int(executor.args[1]) if executor.name == "threads" else None
    plan = api.rechunk(
        source, dst, chunks=size.target_chunks, codec=CODEC, max_mem=BUDGET, verify="none",
        dry_run=True, threads=threads,
        dask="local:2" if executor.name == "dask" else None,
    )  # fmt: skip
    job = plan.jobs[0]  # type: ignore[union-attr]
    assert job.estimate is not None
    ENGINES.add(getattr(plan, "engine", "") or "zarr-python")
    return estimate_rechunk(
        job.plan, source=storage_at(str(source)), target=storage_at(str(dst)),
        source_codec=speeds["source"], target_codec=speeds["target"],
        intermediate_codec=speeds["intermediate"],
        workers=job.estimate.workers, threads=job.estimate.threads, readback=False,
    )  # fmt: skip


@dataclass
class Outcome:
    size: Size
    executor: Executor
    runs: list[Run] = field(default_factory=list)
    calibrated: Any = None  # the estimate with measured codec speeds
    failed: str = ""

    def median(self, key: str) -> float:
        return statistics.median(float(r.extra[key]) for r in self.runs)

    @property
    def wall_s(self) -> float:
        return statistics.median(r.work_s for r in self.runs)

    @property
    def first(self) -> dict[str, Any]:
        return self.runs[0].extra


def _mib(n: float) -> str:
    return f"{n / MiB:,.0f} MiB"


def predicted_objects(estimate: dict[str, Any], prefix: str) -> int:
    return sum(
        p["put_requests"]
        for stage in estimate["stages"]
        for p in stage["prefixes"]
        if p["prefix"] == prefix
    )


def _target_text(outcomes: list[Outcome]) -> str:
    series = outcomes[0].size.series if outcomes else 0
    return f"({series}, 32, 32)" if series else "(T, 32, 32), the whole series"


def markdown(outcomes: list[Outcome], speeds: CodecSpeeds, command: str, repeats: int) -> str:
    lines = [
        "## Rechunk at scale: the dry run's estimate against measured runs (1, 2, 4 GiB)",
        "",
        f"Command: `{command}`. Machine: {machine_line()}, local disk. Date: "
        f"{datetime.date.today().isoformat()}. Each run: `chunkwise rechunk SRC DST --chunks "
        f"T,32,32 --codec {CODEC} --max-mem {BUDGET} --verify none` plus the executor's "
        "options, in a fresh interpreter; the job of bench_rechunk.py (float32 (T, 512, 512) "
        "maps in (1, 512, 512) chunks -> (T, 32, 32)) at T = 1024, 2048, 4096. "
        f"{repeats} run(s) per size and executor, interleaved; medians.",
        "",
        f"Codec speeds measured here (one core; `chunkwise.measure.codecs`, rerun with "
        f"every run of this benchmark): {speeds.line()}.",
        "",
        f"Engine: {', '.join(sorted(ENGINES)) or '?'}. Wall = the command in its process "
        "(starting the Dask cluster included); run = the result's own time (the plan carried "
        "out, after the cluster started), which is what the estimate is compared with.",
        "",
        f"Target chunks: {_target_text(outcomes)} at every size.",
        "",
        "| size | executor | wall s | run s | estimate (presets) s | run / estimate | "
        "estimate (measured codecs) s | run / estimate | tasks predicted / run | "
        "objects predicted / counted (target + intermediate) | GETs predicted | "
        "worker peak RSS (rise) | largest process (sampled) | projected peak |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---|---:|---:|",
    ]
    for o in outcomes:
        if o.failed or not o.runs:
            lines.append(f"| {o.size.gib} GiB | {o.executor.label} | {o.failed} |" + " |" * 11)
            continue
        est = o.first["estimate"]
        wall = o.wall_s
        ran = o.median("run_s")
        cal = o.calibrated.seconds if o.calibrated is not None else float("nan")
        predicted = (predicted_objects(est, "target"), predicted_objects(est, "intermediate"))
        counted = (o.first["target_objects"], o.first["intermediate_objects"])
        rss = max(r.extra["peak_rss"] or 0 for r in o.runs)
        rise = max(r.extra["peak_rss_added"] or 0 for r in o.runs)
        single = max(r.peak_single for r in o.runs)
        memory = f"{_mib(rss)} ({_mib(rise)})" if o.executor.name == "dask" else "—"
        lines.append(
            f"| {o.size.gib} GiB | {o.executor.label} | {wall:.2f} | {ran:.2f} | "
            f"{est['seconds']:.2f} | {ran / est['seconds']:.2f}x | {cal:.2f} | {ran / cal:.2f}x | "
            f"{est['tasks']} / {o.first['tasks_run']} | "
            f"{predicted[0]:,} + {predicted[1]:,} / {counted[0]:,} + {counted[1]:,} | "
            f"{est['get_requests']:,} | {memory} | {_mib(single)} | "
            f"{_mib(o.first['projected_peak'])} |"
        )
    lines += ["", "Memory as the data grows (`--dask local:2`, largest worker):", ""]
    by = {(o.size.gib, o.executor.name): o for o in outcomes if o.runs}
    small, large = by.get((1, "dask")), by.get((4, "dask"))
    if small and large:
        a = max(r.extra["peak_rss_added"] or 0 for r in small.runs)
        b = max(r.extra["peak_rss_added"] or 0 for r in large.runs)
        verdict = "**met**" if b <= a else "**not met**"
        lines.append(
            f"* the 4 GiB job peaks no higher than the 1 GiB job: {verdict} — a worker's rise "
            f"{_mib(b)} against {_mib(a)} ({(b - a) / MiB:+,.0f} MiB); the plan projects "
            f"{_mib(large.first['projected_peak'])} and {_mib(small.first['projected_peak'])}"
        )
    else:
        lines.append("* the 4 GiB job against the 1 GiB job: not measured (--sizes)")
    lines += [
        "",
        "Notes:",
        "",
        "* The estimate is the time `--dry-run` prints: per stage the longest of compute "
        "(codec work and the handling of every byte written, over the task slots, plus the "
        "reader's CPU per chunk per worker), transfer (on the `local-ssd` preset: 2 GB/s) and "
        "request latency, the stages one after the other. It leaves out scheduling, waiting "
        "for the slowest task of a stage, the clean-up, and the disk's own speed once the "
        "page cache's dirty limit is reached (jobs that write more than the kernel lets "
        "stay dirty run at the disk's pace); a ratio above 1 is what they cost.",
        "* Objects counted: the target's chunk files after the run; the intermediate's "
        "chunk files, the most seen while the run held them (sampled every 0.5 s).",
    ]
    return "\n".join(lines) + "\n"


def run_bench(args: argparse.Namespace) -> str:
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    sizes = [Size(int(s), args.series) for s in args.sizes.split(",")]
    executors = [EXECUTORS["dask"], *([EXECUTORS["threads"]] if args.threads else [])]
    sources = {size.gib: ensure_source(size, work) for size in sizes}
    speeds = measure_codecs(sources[sizes[0].gib])
    print(f"codec speeds: {speeds.line()}", flush=True)
    outcomes = [Outcome(size, ex) for size in sizes for ex in executors]
    for o in outcomes:
        dst = work / f"target-{o.size.gib}gib-{o.executor.name}.zarr"
        o.calibrated = estimate_with(o.size, sources[o.size.gib], dst, o.executor, speeds)
    for round_ in range(args.repeats):
        for o in outcomes:
            if o.failed:
                continue
            dst = work / f"target-{o.size.gib}gib-{o.executor.name}.zarr"
            spec = {
                "src": str(sources[o.size.gib]),
                "dst": str(dst),
                "chunks": list(o.size.target_chunks),
                "args": list(o.executor.args),
            }
            try:
                run, _ = measure_quietly(
                    MAIN_PYTHON, SCRIPT, spec, name=f"{o.size.gib} GiB {o.executor.name}",
                    before=lambda dst=dst: shutil.rmtree(dst, ignore_errors=True),
                )  # fmt: skip
            except RuntimeError as error:
                o.failed = f"failed: {error}"
                print(o.failed, flush=True)
                continue
            finally:
                shutil.rmtree(dst, ignore_errors=True)
            o.runs.append(run)
            est = run.extra["estimate"]["seconds"]
            print(
                f"round {round_ + 1} {o.size.gib} GiB {o.executor.name}: {run.work_s:.2f} s, run "
                f"{run.extra['run_s']:.2f} s (estimate {est:.2f} s presets, "
                f"{o.calibrated.seconds:.2f} s measured codecs), "
                f"worker rise {_mib(run.extra['peak_rss_added'] or 0)}",
                flush=True,
            )
    command = " ".join([".venv/bin/python benchmarks/bench_rechunk_scale.py", *sys.argv[1:]])
    return markdown(outcomes, speeds, command, args.repeats)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1,2,4", help="GiB, comma-separated")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", action="store_true", help="also the local thread executor")
    parser.add_argument(
        "--series",
        type=int,
        default=0,
        help="target chunks (N, 32, 32) at every size, so that only the data grows "
        "(default: (T, 32, 32), the whole series, whose chunks grow with T)",
    )
    parser.add_argument("--workdir", default="/tmp/chunkwise-bench-scale")
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        report(work_rechunk(json.loads(args.worker)))
        return
    if any(not s.strip().isdigit() or int(s) < 1 for s in args.sizes.split(",")):
        parser.error(f"--sizes {args.sizes!r} must be whole GiB, like 1,2,4")
    publish(run_bench(args), write=args.write_results)


if __name__ == "__main__":
    main()
