"""``chunkwise rechunk`` against Dask, rechunker and the lower bound: 1 GiB maps → time series.

Run:  make bench   (or: .venv/bin/python benchmarks/bench_rechunk.py [--small] [--repeats 3]
                    [--only dask,chunkwise] [--no-rechunker] [--write-results])

The job, from the issue: a float32 array (1024, 512, 512) = 1 GiB, zarr v3, "map" chunks
(1, 512, 512), Blosc zstd level 5 with byte shuffle, rechunked to "time-series" chunks
(1024, 32, 32) with the same codec, within a 256 MiB memory budget. ``--small`` runs a
64 MiB version, (256, 256, 256) in (1, 256, 256) → (256, 16, 16) within 32 MiB.

The source is generated once into ``--workdir`` (default /tmp/chunkwise-bench-rechunk) and
reused while it is complete: the recipe of chunkwise's ``synthetic:smooth`` data (four
products of low-frequency cosines along every axis plus 2% Gaussian noise, values in about
[-1, 1]), written in slabs of planes so the generator holds little memory. Blosc zstd
compresses it 1.25x, like raw float32 measurements; zstd encodes it at about 100 MB/s a core
here, so encoding is most of any rechunker's work.

Contenders, each run in its own fresh interpreter so that its memory is its own:

* **lower bound** — what any rechunker must do at least, with both cores busy: read and
  decode every source chunk once (zarr, whole array), gather and encode every target chunk
  once (numcodecs Blosc, 2 threads), write those bytes once to local files. Needs the whole
  array in memory; reported as the sum of its three timed parts.
* **Dask** — ``da.from_zarr(src).rechunk(target).to_zarr(dst)`` into an array created with
  the same codec, threaded scheduler, default settings.
* **rechunker** 0.5.4 in its own zarr-2 virtual environment (created under the work dir;
  rechunker cannot read zarr v3), on a zarr v2 copy of the source with the same chunks and
  codec; ``max_mem`` = the budget, the target with the same codec, the intermediate with
  rechunker's default codec (zarr 2's Blosc lz4), as a user would run it.
* **chunkwise** — ``chunkwise rechunk SRC DST --chunks ... --codec blosc:zstd:5:shuffle
  --max-mem 256MiB --verify none --quiet`` (no verification, as Dask and rechunker do
  none); with ``--dask local:2``; and with the default verification (``readback``: every
  task reads back what it wrote and compares it), to show what checking costs. The command
  runs in-process in its worker (``cli.main``).

Each contender runs ``--repeats`` times, contenders interleaved round by round; its target
is deleted between runs, outside the timing. Wall time is the rechunk call inside the worker
(interpreter start and imports excluded, the same for all; the whole process's time is
recorded too). Peak memory is the RSS of the worker's whole process tree (the worker and any
children it starts), sampled with psutil every 20 ms; the kernel's ``ru_maxrss`` (as
``RUSAGE_CHILDREN`` of a small launcher process) is the cross-check. The launcher exists
because Linux carries a process's high-water RSS across fork and exec. Each run also records
the CPU time of the tree and the CPU other processes used meanwhile. The baseline is a fresh
interpreter that imports zarr, numpy and dask.array and does nothing else, so "peak −
baseline" is what the job itself added. Every contender's first result is compared with the
source, element by element, outside the timing.

We report medians of wall time, throughput (source GiB/s), the highest peak over runs, ratios
to the lower bound and to Dask, and the issue's goals as met/not met. Without
``--write-results`` the markdown is printed; with it, it replaces its section of
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import (
    OTHER_LOAD_LIMIT,
    RETRIES,
    Run,
    begin,
    machine_line,
    measure,
    measure_quietly,
    publish,
    report,
)

if TYPE_CHECKING:
    import numpy as np

HERE = Path(__file__).resolve().parent
SCRIPT = Path(__file__).resolve()
ROOT = HERE.parent
MAIN_PYTHON = ROOT / ".venv" / "bin" / "python"
CHUNKWISE = ROOT / ".venv" / "bin" / "chunkwise"
GENERATOR = "smooth-4-cosines+2%-noise-v1"
SEED = 20260
MiB = 2**20
GiB = 2**30

#: rechunker 0.5.4 needs zarr 2; numcodecs 0.16 dropped what zarr 2 imports. Dask and NumPy
#: are pinned to the main environment's versions at run time so both use the same scheduler.
RECHUNKER_PINS = ("rechunker==0.5.4", "zarr==2.18.7", "numcodecs==0.15.2")
CODEC_TEXT = "blosc:zstd:5:shuffle"


@dataclass(frozen=True)
class Case:
    """One rechunk job: shapes, chunk grids and the memory budget."""

    name: str
    title: str
    shape: tuple[int, int, int]
    source_chunks: tuple[int, int, int]
    target_chunks: tuple[int, int, int]
    budget: str
    budget_bytes: int

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * 4


FULL = Case(
    "full",
    "## Rechunk: 1 GiB map → time series",
    (1024, 512, 512),
    (1, 512, 512),
    (1024, 32, 32),
    "256MiB",
    256 * MiB,
)
SMALL = Case(
    "small",
    "## Rechunk: 64 MiB map → time series (quick check, --small)",
    (256, 256, 256),
    (1, 256, 256),
    (256, 16, 16),
    "32MiB",
    32 * MiB,
)
CASES = {case.name: case for case in (FULL, SMALL)}


@dataclass(frozen=True)
class Contender:
    name: str
    label: str
    env: str  # "main" or "rechunker"
    chunkwise_args: tuple[str, ...] = ()
    max_runs: int = 0  # at most this many runs (0: --repeats)


CONTENDERS = (
    Contender("lower-bound", "lower bound (read + decode + encode + write once)", "main"),
    Contender("dask", "Dask `rechunk().to_zarr()`", "main"),
    Contender("rechunker", "rechunker 0.5.4 (zarr 2)", "rechunker"),
    Contender("chunkwise", "chunkwise (local, `--verify none`)", "main", ("--verify", "none")),
    Contender("chunkwise-verify", "chunkwise (local, default `--verify readback`)", "main"),
    Contender(
        "chunkwise-zarr",
        "chunkwise (local, `--verify none`, `--engine zarr`)",
        "main",
        ("--verify", "none", "--engine", "zarr"),
    ),
    Contender(
        "chunkwise-dask",
        "chunkwise (`--dask local:2`, `--verify none`)",
        "main",
        ("--dask", "local:2", "--verify", "none"),
    ),
)
BY_NAME = {c.name: c for c in CONTENDERS}


# --------------------------------------------------------------------------------------------
# Workers: run in a fresh interpreter, import only what their contender needs, print one
# RESULT_MARK line of JSON. This module imports only the standard library at the top so the
# rechunker environment (zarr 2) can run it too.
# --------------------------------------------------------------------------------------------


def _blosc_v3() -> Any:
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="zstd", clevel=5, shuffle="shuffle", typesize=4)


def _blosc_numcodecs() -> Any:
    import numcodecs

    return numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)


def _target_boxes(shape: tuple[int, ...], chunks: tuple[int, ...]) -> list[tuple[int, ...]]:
    import itertools

    return list(
        itertools.product(*(range(math.ceil(n / c)) for n, c in zip(shape, chunks, strict=True)))
    )


def work_lower_bound(spec: dict[str, Any]) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np
    import zarr

    target = tuple(spec["target_chunks"])
    out = Path(spec["dst"])
    codec = _blosc_numcodecs()
    source = zarr.open_array(spec["src"], mode="r")
    started = begin()
    data = np.asarray(source[...])
    read_done = time.perf_counter()

    def encode(index: tuple[int, ...]) -> tuple[tuple[int, ...], bytes]:
        box = tuple(slice(i * c, (i + 1) * c) for i, c in zip(index, target, strict=True))
        return index, codec.encode(np.ascontiguousarray(data[box]))

    with ThreadPoolExecutor(2) as pool:
        encoded = list(pool.map(encode, _target_boxes(data.shape, target)))
    encode_done = time.perf_counter()

    def write(item: tuple[tuple[int, ...], bytes]) -> None:
        index, payload = item
        path = out.joinpath("c", *map(str, index))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(write, encoded))
    write_done = time.perf_counter()
    return {
        "work_s": write_done - started,
        "parts": {
            "read + decode": read_done - started,
            "gather + encode": encode_done - read_done,
            "write": write_done - encode_done,
        },
        "stored_bytes": sum(len(payload) for _, payload in encoded),
    }


def work_dask(spec: dict[str, Any]) -> dict[str, Any]:
    import dask.array as da
    import zarr

    target = tuple(spec["target_chunks"])
    source = zarr.open_array(spec["src"], mode="r")
    started = begin()
    dst = zarr.create_array(
        spec["dst"],
        shape=source.shape,
        dtype=source.dtype,
        chunks=target,
        compressors=_blosc_v3(),
        fill_value=0.0,
    )
    da.from_zarr(source).rechunk(target).to_zarr(dst)  # type: ignore[no-untyped-call]
    return {"work_s": time.perf_counter() - started}


def work_rechunker(spec: dict[str, Any]) -> dict[str, Any]:
    import rechunker
    import zarr

    source = zarr.open_array(spec["src"], mode="r")
    started = begin()
    plan = rechunker.rechunk(
        source,
        tuple(spec["target_chunks"]),
        max_mem=spec["budget_bytes"],
        target_store=spec["dst"],
        temp_store=spec["temp"],
        # The target gets the job's codec; the intermediate keeps rechunker's default
        # (zarr 2's Blosc lz4), as a user would run it.
        target_options={"compressor": _blosc_numcodecs()},
    )
    plan.execute()
    return {
        "work_s": time.perf_counter() - started,
        "intermediate": "Intermediate" in repr(plan),
    }


def work_chunkwise(spec: dict[str, Any]) -> dict[str, Any]:
    import importlib

    from chunkwise.cli.main import cli

    # The command imports its libraries lazily; import them before the clock starts, as the
    # other workers do, so that "peak − baseline" means the same for everyone.
    libraries = ["numpy", "zarr", "numcodecs"]
    if "--dask" in spec["chunkwise_args"]:
        libraries += ["dask.array", "distributed"]
    for name in libraries:
        importlib.import_module(name)

    args = [
        "rechunk",
        spec["src"],
        spec["dst"],
        "--chunks",
        ",".join(map(str, spec["target_chunks"])),
        "--codec",
        CODEC_TEXT,
        "--max-mem",
        spec["budget"],
        "--quiet",
        *spec["chunkwise_args"],
    ]
    started = begin()
    cli.main(args=args, prog_name="chunkwise", standalone_mode=False)
    return {"work_s": time.perf_counter() - started, "argv": ["chunkwise", *args]}


def work_baseline(spec: dict[str, Any]) -> dict[str, Any]:
    import dask.array
    import numpy
    import zarr

    del dask, numpy, zarr
    begin()
    return {"work_s": 0.0}


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "lower-bound": work_lower_bound,
    "dask": work_dask,
    "rechunker": work_rechunker,
    "chunkwise": work_chunkwise,
    "chunkwise-verify": work_chunkwise,
    "chunkwise-zarr": work_chunkwise,
    "chunkwise-dask": work_chunkwise,
    "baseline": work_baseline,
}


def worker_main(spec: dict[str, Any]) -> None:
    report(WORKERS[spec["contender"]](spec))


# --------------------------------------------------------------------------------------------
# The parent: source data, environments, measuring runs, the report.
# --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """All runs of one contender, or why it did not run."""

    contender: Contender
    runs: list[Run] = field(default_factory=list)
    skipped: str = ""
    failed: str = ""
    check: str = ""
    stored_bytes: int = 0
    discarded: int = 0  # runs measured again because other processes were busy

    @property
    def median_s(self) -> float:
        return statistics.median(r.work_s for r in self.runs)

    @property
    def peak(self) -> int:
        return max(r.peak for r in self.runs)

    @property
    def start_rss(self) -> int:
        """The worker's RSS after its imports, before the work: its own baseline."""
        return int(statistics.median(r.extra.get("start_rss", 0) for r in self.runs))

    @property
    def ok(self) -> bool:
        return bool(self.runs) and not self.failed


def _field_terms(shape: tuple[int, ...]) -> list[list[np.ndarray]]:
    """The smooth part's factors: 4 terms, one cosine per axis each (as synthetic:smooth)."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    terms = []
    for _ in range(4):
        factors = []
        for n in shape:
            freq, phase = rng.uniform(0.5, 3.0), rng.uniform(0, 2 * math.pi)
            grid = np.linspace(0.0, 1.0, n, dtype=np.float32)
            factors.append(np.cos(2 * math.pi * freq * grid + phase).astype(np.float32))
        terms.append(factors)
    return terms


def _slab(terms: list[list[np.ndarray]], start: int, stop: int) -> np.ndarray:
    import numpy as np

    _, fy, fx = terms[0]
    slab = np.zeros((stop - start, fy.size, fx.size), dtype=np.float32)
    for t, y, x in terms:
        slab += t[start:stop, None, None] * (y[:, None] * x[None, :] / 4)[None]
    noise = np.random.default_rng([SEED, start]).standard_normal(slab.shape, dtype=np.float32)
    slab += 0.02 * noise
    return slab


def _source_ok(path: Path, case: Case, zarr_format: int) -> bool:
    import zarr

    try:
        array = zarr.open_array(path, mode="r")
    except Exception:
        return False
    meta = array.attrs.get("bench_rechunk", {})
    return (
        array.metadata.zarr_format == zarr_format
        and array.shape == case.shape
        and array.chunks == case.source_chunks
        and str(array.dtype) == "float32"
        and meta == {"generator": GENERATOR, "seed": SEED, "complete": True}
    )


def _stamp(array: Any) -> None:
    array.attrs["bench_rechunk"] = {"generator": GENERATOR, "seed": SEED, "complete": True}


def write_maps(path: Path, shape: tuple[int, int, int], chunks: tuple[int, int, int]) -> Any:
    """Write the benchmark's (time, y, x) source at ``path``, in slabs of 32 planes so the
    generator holds little memory: float32, Blosc zstd 5 with shuffle. Returns the array."""
    import zarr

    array = zarr.create_array(
        path,
        shape=shape,
        dtype="float32",
        chunks=chunks,
        compressors=_blosc_v3(),
        fill_value=0.0,
        dimension_names=("time", "y", "x"),
        overwrite=True,
    )
    terms = _field_terms(shape)
    step = 32
    for start in range(0, shape[0], step):
        stop = min(shape[0], start + step)
        array[start:stop] = _slab(terms, start, stop)
    return array


def ensure_source(case: Case, work: Path) -> Path:
    """The v3 source, generated unless a complete one is there."""
    path = work / "source.zarr"
    if _source_ok(path, case, 3):
        return path
    shutil.rmtree(path, ignore_errors=True)
    print(f"generating {path} ...", flush=True)
    _stamp(write_maps(path, case.shape, case.source_chunks))
    return path


def ensure_source_v2(case: Case, work: Path, source: Path) -> Path:
    """A zarr v2 copy of the source with the same chunks and codec, for rechunker."""
    import zarr

    path = work / "source-v2.zarr"
    if _source_ok(path, case, 2):
        return path
    shutil.rmtree(path, ignore_errors=True)
    print(f"copying the source to zarr v2 at {path} ...", flush=True)
    src = zarr.open_array(source, mode="r")
    array = zarr.create_array(
        path,
        shape=case.shape,
        dtype="float32",
        chunks=case.source_chunks,
        compressors=_blosc_numcodecs(),
        fill_value=0.0,
        zarr_format=2,
    )
    step = 32
    for start in range(0, case.shape[0], step):
        array[start : start + step] = src[start : start + step]
    _stamp(array)
    return path


def rechunker_env(work: Path) -> tuple[Path | None, str]:
    """The rechunker virtual environment's python, or None and why it cannot be made."""
    from importlib.metadata import version

    venv = work / "venv-rechunker"
    python = venv / "bin" / "python"
    pins = [*RECHUNKER_PINS, f"dask[array]=={version('dask')}", f"numpy=={version('numpy')}"]
    stamp = venv / "pins.txt"
    if python.exists() and stamp.exists() and stamp.read_text() == "\n".join(pins):
        return python, ""
    shutil.rmtree(venv, ignore_errors=True)
    print(f"creating {venv} with {' '.join(pins)} ...", flush=True)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", *pins],
        [str(python), "-c", "import rechunker, zarr, dask.array"],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            lines = [ln for ln in done.stderr.splitlines() if "WARNING" not in ln]
            reason = (lines or ["no output"])[-1].strip()
            return None, f"`{' '.join(step[2:4])}` failed: {reason}"
    stamp.write_text("\n".join(pins))
    return python, ""


PYTHON_VERSION = "?"


def _use_venv(name: str) -> None:
    """Run the main contenders with the environment ``name`` (``.venv``: Python 3.11 and
    zarr-python 3.1; ``.venv-3.13``: zarr-python 3.4)."""
    global MAIN_PYTHON, CHUNKWISE, PYTHON_VERSION
    MAIN_PYTHON = ROOT / name / "bin" / "python"
    CHUNKWISE = ROOT / name / "bin" / "chunkwise"
    if MAIN_PYTHON.exists():
        done = subprocess.run(
            [str(MAIN_PYTHON), "-c", "import platform; print(platform.python_version())"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        PYTHON_VERSION = done.stdout.strip() or "?"


def env_versions(python: Path) -> str:
    code = (
        "import importlib.metadata as m; print(', '.join(f'{p} {m.version(p)}' for p in "
        "('zarr', 'numcodecs', 'zarrs', 'dask', 'numpy', 'rechunker') if __import__('importlib.util')"
        ".util.find_spec(p)))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True)
    return done.stdout.strip()


def chunkwise_rechunk_available() -> tuple[bool, str]:
    done = subprocess.run([str(CHUNKWISE), "rechunk", "--help"], capture_output=True, text=True)
    if done.returncode == 0:
        return True, ""
    reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return False, f"`chunkwise rechunk` is not available in this build ({reason})"


def stored_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def warm(path: Path) -> None:
    """Read every file once so every contender starts with the source in the page cache."""
    for f in path.rglob("*"):
        if f.is_file():
            f.read_bytes()


def check_target(dst: Path, case: Case, source: np.ndarray) -> str:
    """Compare what a contender wrote with the source: chunks, codec, every element."""
    import numpy as np
    import zarr

    array = zarr.open_array(dst, mode="r")
    if array.shape != case.shape or array.chunks != case.target_chunks:
        return f"wrong layout: shape {array.shape}, chunks {array.chunks}"
    config = json.dumps(
        [c.to_dict() if hasattr(c, "to_dict") else c.get_config() for c in array.compressors]
    )
    if "zstd" not in config or "clevel" not in config:
        return f"wrong codec: {config}"
    if not np.array_equal(array[...], source):
        return "DATA DIFFERS from the source"
    return "identical to the source"


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def _mib(n: float) -> str:
    return f"{n / MiB:,.0f} MiB"


def compare_speed(mine: float, theirs: float) -> str:
    """chunkwise's wording of a speed ratio, imported here: the rechunker environment runs
    this module too, without chunkwise."""
    from chunkwise.units import compare_speed as wording

    return wording(mine, theirs)


def _versus(mine: float, theirs: float) -> str:
    return compare_speed(mine, theirs).removesuffix(" than").removesuffix(" as")


def markdown(
    case: Case,
    command: str,
    outcomes: list[Outcome],
    baselines: dict[str, list[Run]],
    source_stored: int,
    versions: dict[str, str],
) -> str:
    base = {env: max(r.peak for r in runs) for env, runs in baselines.items() if runs}
    by = {o.contender.name: o for o in outcomes}
    lower = by.get("lower-bound")
    dask = by.get("dask")
    lower_s = lower.median_s if lower and lower.ok else None
    dask_s = dask.median_s if dask and dask.ok else None
    gib = case.nbytes / GiB
    startup = [r.process_s - r.work_s for o in outcomes for r in o.runs]
    budget_mib = case.budget_bytes / MiB
    line = versions.get("main", "").split(",")[0].strip()  # "zarr 3.1.6"
    lines = [
        f"{case.title} ({line}, Python {PYTHON_VERSION})" if line else case.title,
        "",
        f"Command: {command}. Machine: {machine_line()}, local disk. "
        f"Date: {datetime.date.today().isoformat()}. Versions: {versions.get('main', '?')}.",
        "",
        f"Data: float32 {tuple(case.shape)} = {gib:.3g} GiB, zarr v3, chunks "
        f"{case.source_chunks}, Blosc zstd 5 byte-shuffle ({_mib(source_stored)} stored, "
        f"{case.nbytes / max(source_stored, 1):.2f}x), smooth structure (4 products of "
        "low-frequency cosines) plus 2% Gaussian noise, the recipe of `synthetic:smooth`. "
        f"Target chunks {case.target_chunks}, same codec, budget {case.budget}. Source in the "
        "page cache for everyone.",
        "",
        "Each contender runs in its own fresh interpreter, "
        f"{max((len(o.runs) for o in outcomes), default=0)} runs each, interleaved; wall = the "
        "rechunk call inside that process (interpreter start and imports excluded, "
        f"{_range(startup)} s per process); peak RSS = the whole process tree's, sampled every "
        "20 ms with psutil (or the kernel's ru_maxrss of its largest process if higher), highest "
        "over "
        "runs; baseline = the contender's own RSS after its imports, just before its work "
        "starts (for comparison, a fresh interpreter after `import zarr, numpy, dask.array` "
        f"holds {_mib(base.get('main', 0))}"
        + (
            f"; {_mib(base['rechunker'])} in rechunker's zarr-2 environment"
            if "rechunker" in base
            else ""
        )
        + "). Every output was compared with the source element by element.",
        "",
        "| contender | median wall s | GiB/s | peak RSS | peak − baseline | vs lower bound | vs Dask |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    notes: list[str] = []
    details = [
        "| contender | median process s (with start-up) | median CPU s | kernel max RSS "
        "(largest process) | sampled largest process | RSS after imports | target stored |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for o in outcomes:
        c = o.contender
        if not o.ok:
            why = o.skipped or o.failed
            lines.append(f"| {c.label} | — | — | — | — | — | {why} |")
            continue
        times = [r.work_s for r in o.runs]
        median = o.median_s
        extra = o.start_rss or base.get(c.env, 0)
        vs_lower = f"{median / lower_s:.2f}x" if lower_s else "—"
        vs_dask = "" if c.name == "dask" or not dask_s else _versus(median, dask_s)
        spread = f"{min(times):.2f}–{max(times):.2f}" if len(times) > 1 else "1 run"
        lines.append(
            f"| {c.label} | {median:.2f} ({spread}) | "
            f"{gib / median:.2f} | {_mib(o.peak)} | {_mib(o.peak - extra)} | {vs_lower} | "
            f"{vs_dask} |"
        )
        if o.check and o.check != "identical to the source":
            notes.append(f"{c.label}: output {o.check}.")
        for i, r in enumerate(o.runs):
            if r.other_cores >= OTHER_LOAD_LIMIT:
                notes.append(
                    f"{c.label}: run {i + 1} ({r.work_s:.2f} s) was kept after {RETRIES} "
                    f"disturbed attempts although other processes used {r.other_cores:.2f} "
                    "cores during it."
                )
        details.append(
            f"| {c.label} | {statistics.median(r.process_s for r in o.runs):.2f} | "
            f"{statistics.median(r.cpu_s for r in o.runs):.2f} | "
            f"{_mib(max(r.kernel_maxrss for r in o.runs))} | "
            f"{_mib(max(r.peak_single for r in o.runs))} | {_mib(o.start_rss)} | "
            f"{_mib(o.stored_bytes)} |"
        )
        if c.name == "chunkwise-dask":
            single = max(r.peak_single for r in o.runs)
            notes.append(
                f"{c.label}: peak RSS is the sum over its process tree (the CLI process and "
                f"the Dask workers it starts); the largest single process peaked at "
                f"{_mib(single)} ({_mib(single - extra)} over baseline)."
            )
        if c.name == "rechunker":
            inter = any(r.extra.get("intermediate") for r in o.runs)
            notes.append(
                f"rechunker: {'two passes through an intermediate array' if inter else 'one pass'}"
                f"; its environment: {versions.get('rechunker', '?')}."
            )
    if lower and lower.ok:
        parts: dict[str, list[float]] = {}
        for r in lower.runs:
            for k, v in r.extra.get("parts", {}).items():
                parts.setdefault(k, []).append(v)
        lines += [
            "",
            "Lower bound, medians of its parts: "
            + ", ".join(f"{k} {statistics.median(v):.2f} s" for k, v in parts.items())
            + " (2 threads each; it holds the whole array, so it ignores the budget).",
        ]
    quiet = [r.other_cores for o in outcomes for r in o.runs if r.other_cores < OTHER_LOAD_LIMIT]
    discarded = sum(o.discarded for o in outcomes)
    notes.append(
        "Each run waits for an idle machine and is measured again (at most "
        f"{RETRIES} times) when other processes used ≥{OTHER_LOAD_LIMIT} cores during it: "
        f"{discarded} run(s) were measured again; in the other kept runs other processes "
        f"used at most {max(quiet, default=0.0):.2f} cores."
    )
    if len(details) > 2:
        lines += ["", "Cross-checks per contender:", "", *details]
    lines += ["", "Goals from the issue, for chunkwise (local, `--verify none`):", ""]
    lines += goal_lines(by, base, lower_s, dask_s, budget_mib)
    if notes:
        lines += ["", "Notes:", "", *(f"* {n}" for n in notes)]
    return "\n".join(lines) + "\n"


def goal_lines(
    by: dict[str, Outcome],
    base: dict[str, int],
    lower_s: float | None,
    dask_s: float | None,
    budget_mib: float,
) -> list[str]:
    """The goals of issue 16 (rechunk speed), met or not, with the numbers."""
    mine, checked = by.get("chunkwise"), by.get("chunkwise-verify")
    if not mine or not mine.ok:
        why = (mine.skipped or mine.failed) if mine else "not run (--only)"
        return [f"* all goals: not measured — {why}"]
    t = mine.median_s
    over = (mine.peak - mine.start_rss) / MiB
    out = [
        f"* within the {budget_mib:.0f} MiB budget: {_met(over <= budget_mib)} — peak − baseline "
        f"{over:,.0f} MiB"
    ]
    chunkwise_dask = by.get("chunkwise-dask")
    if chunkwise_dask and chunkwise_dask.ok:
        single = max(r.peak_single for r in chunkwise_dask.runs) - chunkwise_dask.start_rss
        out[-1] += (
            f" (with `--dask local:2`: largest process {single / MiB:,.0f} MiB over baseline)"
        )
    if checked and checked.ok and dask_s:
        c = checked.median_s
        out.append(
            f"* with the default read-back verification, no slower than Dask: "
            f"{_met(c <= dask_s)} — {c:.2f} s against {dask_s:.2f} s ({_versus(c, dask_s)})"
        )
    else:
        out.append("* with the default read-back verification, no slower than Dask: not measured")
    if lower_s:
        out.append(
            f"* `--verify none` within 1.3x of the lower bound: {_met(t <= 1.3 * lower_s)} — "
            f"{t:.2f} s against {lower_s:.2f} s ({t / lower_s:.2f}x)"
        )
    else:
        out.append("* `--verify none` within 1.3x of the lower bound: not measured")
    if chunkwise_dask and chunkwise_dask.ok:
        d = chunkwise_dask.median_s
        out.append(
            f"* `--dask local:2` within 1.1x of threads (both `--verify none`): "
            f"{_met(d <= 1.1 * t)} — {d:.2f} s against {t:.2f} s ({d / t:.2f}x)"
        )
    else:
        out.append("* `--dask local:2` within 1.1x of threads: not measured")
    rk = by.get("rechunker")
    if rk and rk.ok:
        ratio = rk.median_s / t
        out.append(
            f"* ≥2x faster than rechunker (`--verify none`; rechunker verifies nothing): "
            f"{_met(ratio >= 2)} — {t:.2f} s against {rk.median_s:.2f} s ({ratio:.2f}x)"
        )
        if ratio < 2 and lower_s and lower_s > rk.median_s / 2:
            out[-1] += (
                f"; the floor forbids it here: half of rechunker's time is "
                f"{rk.median_s / 2:.2f} s, under the {lower_s:.2f} s that reading, decoding, "
                "encoding and writing the data once takes on both cores"
            )
    else:
        why = (rk.skipped or rk.failed) if rk else "not run"
        out.append(f"* ≥2x faster than rechunker: not measured — {why}")
    if dask_s:
        out.append(
            f"* `--verify none` against Dask (not a goal): {t:.2f} s against {dask_s:.2f} s "
            f"({_versus(t, dask_s)})"
        )
    return out


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def _range(values: list[float]) -> str:
    return f"{min(values):.1f}–{max(values):.1f}" if values else "?"


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


def spec_for(c: Contender, case: Case, work: Path, paths: dict[str, Path]) -> dict[str, Any]:
    src = paths["v2"] if c.name == "rechunker" else paths["v3"]
    return {
        "contender": c.name,
        "src": str(src),
        "dst": str(work / f"target-{c.name}.zarr"),
        "temp": str(work / f"temp-{c.name}.zarr"),
        "target_chunks": list(case.target_chunks),
        "budget": case.budget,
        "budget_bytes": case.budget_bytes,
        "chunkwise_args": list(c.chunkwise_args),
    }


def clean(spec: dict[str, Any]) -> None:
    for key in ("dst", "temp"):
        shutil.rmtree(spec[key], ignore_errors=True)


def run_bench(args: argparse.Namespace) -> str:
    import numpy as np
    import zarr

    case = SMALL if args.small else FULL
    work = Path(args.workdir) / case.name
    work.mkdir(parents=True, exist_ok=True)
    chosen = [BY_NAME[n] for n in args.only] if args.only else list(CONTENDERS)
    if args.no_rechunker:
        chosen = [c for c in chosen if c.name != "rechunker"]
    outcomes = [Outcome(c) for c in chosen]
    pythons: dict[str, Path] = {"main": MAIN_PYTHON}
    versions = {"main": env_versions(MAIN_PYTHON)}

    paths = {"v3": ensure_source(case, work)}
    for o in outcomes:
        if o.contender.name == "rechunker":
            python, why = rechunker_env(Path(args.workdir))
            if python is None:
                o.skipped = f"rechunker: not installable here ({why})"
            else:
                pythons["rechunker"] = python
                versions["rechunker"] = env_versions(python)
                paths["v2"] = ensure_source_v2(case, work, paths["v3"])
        if o.contender.name.startswith("chunkwise"):
            ok, why = chunkwise_rechunk_available()
            if not ok:
                o.skipped = why

    for path in paths.values():
        warm(path)
    baselines: dict[str, list[Run]] = {}
    for env in {"main", *(o.contender.env for o in outcomes if not o.skipped)}:
        spec = {"contender": "baseline"}
        baselines[env] = [measure(pythons[env], SCRIPT, spec, name="baseline") for _ in range(3)]
        print(f"baseline ({env}): {_mib(max(r.peak for r in baselines[env]))}", flush=True)

    source: np.ndarray | None = None
    for round_ in range(args.repeats):
        for o in outcomes:
            if o.skipped or o.failed or round_ >= (o.contender.max_runs or args.repeats):
                continue
            spec = spec_for(o.contender, case, work, paths)
            try:
                run, discarded = measure_quietly(
                    pythons[o.contender.env], SCRIPT, spec, name=o.contender.name,
                    before=lambda spec=spec: clean(spec),
                )  # fmt: skip
            except RuntimeError as error:
                o.failed = f"failed: {error}"
                print(o.failed, flush=True)
                continue
            o.runs.append(run)
            o.discarded += discarded
            print(
                f"round {round_ + 1} {o.contender.name}: {run.work_s:.2f} s "
                f"(process {run.process_s:.2f} s), peak {_mib(run.peak)}",
                flush=True,
            )
            if round_ == 0:
                o.stored_bytes = run.extra.get("stored_bytes") or stored_bytes(Path(spec["dst"]))
                if o.contender.name != "lower-bound":
                    if source is None:
                        source = np.asarray(zarr.open_array(paths["v3"], mode="r")[...])
                    o.check = check_target(Path(spec["dst"]), case, source)
                    print(f"  output {o.check}", flush=True)
                    if "DIFFERS" in o.check or "wrong" in o.check:
                        o.failed = f"output {o.check}"
            clean(spec)
    command = "`" + " ".join([".venv/bin/python benchmarks/bench_rechunk.py", *sys.argv[1:]]) + "`"
    if sys.argv[1:] == ["--write-results"]:
        command = "`make bench` (" + command + ")"
    return markdown(case, command, outcomes, baselines, stored_bytes(paths["v3"]), versions)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="64 MiB variant, budget 32 MiB")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--only",
        type=lambda s: [n.strip() for n in s.split(",") if n.strip()],
        help=f"comma-separated contenders: {', '.join(BY_NAME)}",
    )
    parser.add_argument("--no-rechunker", action="store_true")
    parser.add_argument("--workdir", default="/tmp/chunkwise-bench-rechunk")
    parser.add_argument("--write-results", action="store_true")
    parser.add_argument(
        "--venv", default=".venv", help="the environment whose chunkwise, zarr and Dask run"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    _use_venv(args.venv)
    if args.worker:
        worker_main(json.loads(args.worker))
        return
    unknown = [n for n in args.only or [] if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown contender(s) {', '.join(unknown)}; choose from {', '.join(BY_NAME)}")
    section = run_bench(args)
    publish(section, write=args.write_results)


if __name__ == "__main__":
    main()
