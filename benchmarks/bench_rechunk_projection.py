"""Is the rechunk memory projection right? Projected peak against measured peak, widely.

Run:  .venv/bin/python benchmarks/bench_rechunk_projection.py [--only NAME] [--write-results]

``bench_rechunk_memory.py`` checks budgets on one kind of job; this sweep checks the
*projection* (:mod:`chunkwise.plan.rechunk`, constants in
:mod:`chunkwise.rechunking.convert`) on every kind of source chunkwise reads and on the
shapes that stress each term of the model: tiny chunks (zarr's bookkeeping per chunk),
shards of hundreds to 100,000 inner chunks, large chunks, one and two passes, 1 to 4
tasks at once, memory-mapped ``.npy`` and MRC files, chunked and contiguous HDF5, TIFF
pages, and a group of arrays. The goal: measured <= projected <= 1.3 x measured.

Each case runs in a fresh interpreter that first makes a tiny conversion (so imports
and zarr's pools are warm), then ``chunkwise.convert(..., max_mem=budget)`` with the
default read-back verification. *Measured* is the rise of the process's peak resident
memory above its resident memory when the run started (``ConversionResult.peak_added``;
Linux resets the peak counter then), which is what ``--max-mem`` bounds. Sources are
random values (they compress little: the worst case for buffers), generated once into
``--workdir``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from harness import machine, publish

MiB = 2**20
MARK = "PROJECTION-RESULT "


def _values(shape: tuple[int, ...], dtype: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    return rng.standard_normal(shape).astype(dtype)


def _zarr(path: Path, shape: tuple[int, ...], dtype: str, chunks: tuple[int, ...],
          shards: tuple[int, ...] | None = None) -> None:  # fmt: skip
    import zarr

    array = zarr.create_array(
        path, shape=shape, dtype=dtype, chunks=chunks, shards=shards, overwrite=True
    )
    step = max(1, (32 * MiB) // max(1, int(np.prod(shape[1:])) * np.dtype(dtype).itemsize))
    if shards is not None:
        step = max(step // shards[0], 1) * shards[0]
    else:
        step = max(step // chunks[0], 1) * chunks[0]
    for start in range(0, shape[0], step):
        stop = min(shape[0], start + step)
        array[start:stop] = _values((stop - start, *shape[1:]), dtype, start)


def _npy(path: Path, shape: tuple[int, ...], dtype: str) -> None:
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    step = max(1, (32 * MiB) // max(1, int(np.prod(shape[1:])) * np.dtype(dtype).itemsize))
    for start in range(0, shape[0], step):
        stop = min(shape[0], start + step)
        out[start:stop] = _values((stop - start, *shape[1:]), dtype, start)
    out.flush()
    del out


def _hdf5(path: Path, shape: tuple[int, ...], dtype: str, chunks: tuple[int, ...] | None) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        options: dict[str, Any] = {"chunks": chunks, "compression": "gzip"} if chunks else {}
        f.create_dataset("data", data=_values(shape, dtype), **options)


def _tiff(path: Path, shape: tuple[int, ...], dtype: str) -> None:
    import tifffile

    tifffile.imwrite(path, _values(shape, dtype), compression="zlib")


def _mrc(path: Path, shape: tuple[int, ...], dtype: str) -> None:
    import mrcfile

    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(_values(shape, dtype))


def _group(path: Path) -> None:
    import zarr

    root = zarr.open_group(path, mode="w")
    for name, shape in (("big", (64, 512, 512)), ("mid", (16, 512, 512))):
        array = root.create_array(name, shape=shape, dtype="float32", chunks=(1, 512, 512))
        array[...] = _values(shape, "float32")
    root.create_array("time", data=np.arange(64, dtype="f8"), chunks=(1,))


@dataclass(frozen=True)
class Case:
    name: str
    source: str  # file name in the workdir
    make: Callable[[Path], None]
    chunks: tuple[int, ...]
    budget_mib: int
    shards: tuple[int, ...] | None = None
    threads: int = 2
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


CASES = (
    Case("maps to series, two passes", "maps.zarr",
         lambda p: _zarr(p, (256, 256, 256), "float32", (1, 256, 256)), (256, 16, 16), 48),
    Case("maps to series, one pass", "maps.zarr",
         lambda p: _zarr(p, (256, 256, 256), "float32", (1, 256, 256)), (256, 16, 16), 160),
    Case("maps to series, 4 at once", "maps.zarr",
         lambda p: _zarr(p, (256, 256, 256), "float32", (1, 256, 256)), (256, 16, 16), 128,
         threads=4),
    Case("16 inner chunks per shard", "cube.zarr",
         lambda p: _zarr(p, (64, 512, 512), "float32", (8, 128, 128)), (64, 32, 32), 96,
         shards=(64, 128, 128)),
    Case("512 inner chunks per shard", "cube.zarr",
         lambda p: _zarr(p, (64, 512, 512), "float32", (8, 128, 128)), (8, 8, 8), 128,
         shards=(64, 64, 64)),
    Case("100,000 inner chunks in one shard", "tiny5d.zarr",
         lambda p: _zarr(p, (10,) * 5, "uint8", (10,) * 5), (1,) * 5, 340, shards=(10,) * 5),
    Case("8,192 tiny source chunks", "tinychunks.zarr",
         lambda p: _zarr(p, (32, 64, 64), "uint8", (1, 4, 4)), (32, 64, 64), 48),
    Case("16,384 tiny target chunks", "block.zarr",
         lambda p: _zarr(p, (64, 128, 128), "float32", (64, 128, 128)), (4, 4, 4), 96),
    Case("16 MiB chunks", "large.zarr",
         lambda p: _zarr(p, (256, 512, 512), "float32", (16, 512, 512)), (256, 64, 64), 256),
    Case("1-D, 1 MiB to 64 KiB chunks", "line.zarr",
         lambda p: _zarr(p, (2**24,), "float64", (2**17,)), (2**13,), 64),
    Case(".npy, 8000x8000 to row blocks", "sq8000.npy",
         lambda p: _npy(p, (8000, 8000), "float32"), (400, 8000), 104),
    Case(".npy, 4000x4000 to column shards", "sq4000.npy",
         lambda p: _npy(p, (4000, 4000), "float32"), (4000, 100), 136, shards=(4000, 1000)),
    Case(".npy, uint8 volume", "u1.npy",
         lambda p: _npy(p, (100, 1000, 1000), "uint8"), (4, 511, 511), 96),
    Case("HDF5, chunked (gzip)", "chunked.h5",
         lambda p: _hdf5(p, (64, 512, 512), "float32", (8, 64, 64)), (64, 32, 32), 96),
    Case("HDF5, contiguous, to shards", "contiguous.h5",
         lambda p: _hdf5(p, (64, 512, 512), "float32", None), (64, 32, 32), 96,
         shards=(64, 128, 128)),
    Case("TIFF pages (zlib)", "pages.tif",
         lambda p: _tiff(p, (64, 512, 512), "uint16"), (64, 64, 64), 64),
    Case("MRC volume", "volume.mrc",
         lambda p: _mrc(p, (128, 256, 256), "float32"), (32, 32, 32), 64),
    Case("group of three arrays", "group.zarr", _group, (64, 32, 32), 96),
    Case("to Blosc zstd 9", "maps.zarr",
         lambda p: _zarr(p, (256, 256, 256), "float32", (1, 256, 256)), (256, 16, 16), 112,
         extra={"codec": "blosc:zstd:9:shuffle"}),
)  # fmt: skip

WORKER = """
import json, shutil, sys
import numpy as np, zarr
from chunkwise import api

src, out, budget, chunks, shards, threads, extra = sys.argv[1:8]
shutil.rmtree(out + "/out.zarr", ignore_errors=True)
zarr.create_array(out + "/warm.zarr", data=np.ones((4, 8, 8), "float32"), chunks=(1, 8, 8),
                  overwrite=True)
api.rechunk(out + "/warm.zarr", out + "/warm-out.zarr", chunks=(4, 2, 2), overwrite=True)
result = api.convert(
    src, out + "/out.zarr", chunks=json.loads(chunks), shards=json.loads(shards),
    max_mem=int(budget), threads=int(threads), overwrite=True, **json.loads(extra),
)
print("PROJECTION-RESULT " + json.dumps({
    "added": result.peak_added, "projected": result.plan.peak_memory,
    "seconds": result.seconds,
    "stages": [[s.name, s.tasks, s.parallel, s.memory_per_task] for j in result.plan.jobs
               for s in j.plan.stages],
}))
"""


PER_CHUNK_WORKER = """
import gc, json, sys, tempfile
import numpy as np, zarr
from chunkwise.rechunking.executor import peak_rss, start_memory_watch, tame_allocator

mode, count, sharded, work = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", sys.argv[4]
tame_allocator()
path = tempfile.mkdtemp(dir=work)
data = np.arange(count, dtype="u1")
array = zarr.create_array(path, shape=(count,), chunks=(1,), shards=(count,) if sharded else None,
                          dtype="u1", config={"write_empty_chunks": True})
if mode == "read":
    array[...] = data
gc.collect()
base = start_memory_watch()
if mode == "write":
    array[...] = data
else:
    array[...]
print("PER-CHUNK " + json.dumps((peak_rss() - base) / count))
"""


SCRATCH_WORKER = """
import gc, sys, tempfile
import numpy as np, zarr
from zarr.codecs import BloscCodec, ZstdCodec
from chunkwise.rechunking.executor import peak_rss, start_memory_watch, tame_allocator, warm_up

cname, level, chunk, work = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
tame_allocator()
warm_up()
rows = chunk // 4096
data = (np.random.default_rng(0).standard_normal((rows * 12, 1024)) * 100).astype("f4")
codec = (ZstdCodec(level=level) if cname == "pure-zstd"
         else BloscCodec(cname=cname, clevel=level, shuffle="shuffle", typesize=4))
array = zarr.create_array(tempfile.mkdtemp(dir=work), shape=data.shape, chunks=(rows, 1024),
                          dtype="f4", compressors=codec)
array[...] = data
gc.collect()
base = start_memory_watch()
array[...] = data
print("SCRATCH", (peak_rss() - base) / 2**20)
"""

#: (label, codec as the worker takes it, level)
SCRATCH_CODECS = (
    ("blosc:lz4:1:shuffle", "lz4", 1),
    ("blosc:zstd:3:shuffle", "zstd", 3),
    ("blosc:zstd:5:shuffle", "zstd", 5),
    ("blosc:zstd:9:shuffle", "zstd", 9),
    ("zstd:3", "pure-zstd", 3),
    ("zstd:9", "pure-zstd", 9),
)


def scratch(work: Path) -> list[tuple[str, int, float]]:
    """The peak rise of writing 12 chunks of float32 noise with each codec (its working
    memory shows against Blosc lz4's): what ``ZSTD_SCRATCH`` is fitted to."""
    import shutil

    rows = []
    for label, codec, level in SCRATCH_CODECS:
        for chunk in (2**18, 2**22):
            folder = work / "scratch"
            folder.mkdir(exist_ok=True)
            done = subprocess.run(
                [sys.executable, "-c", SCRATCH_WORKER, codec, str(level), str(chunk),
                 str(folder)],
                capture_output=True, text=True, timeout=600, check=True,
            )  # fmt: skip
            shutil.rmtree(folder)
            line = [x for x in done.stdout.splitlines() if x.startswith("SCRATCH ")][-1]
            rows.append((label, chunk, float(line.split()[1])))
    return rows


def per_chunk(work: Path) -> list[tuple[str, int, bool, float]]:
    """zarr's bookkeeping per chunk of one call: the rise of peak RSS writing or reading
    ``count`` one-byte chunks (one shard of them, or one object each), per chunk."""
    import shutil

    rows = []
    for mode in ("write", "read"):
        for sharded in (False, True):
            for count in (10_000, 40_000):
                scratch = work / "per-chunk"
                scratch.mkdir(exist_ok=True)
                done = subprocess.run(
                    [sys.executable, "-c", PER_CHUNK_WORKER, mode, str(count),
                     "1" if sharded else "0", str(scratch)],
                    capture_output=True, text=True, timeout=600, check=True,
                )  # fmt: skip
                shutil.rmtree(scratch)
                line = [x for x in done.stdout.splitlines() if x.startswith("PER-CHUNK ")][-1]
                rows.append((mode, count, sharded, float(line.split()[1])))
    return rows


def run_case(case: Case, work: Path) -> dict[str, Any]:
    source = work / case.source
    if not source.exists():
        print(f"generating {source} ...", flush=True)
        case.make(source)
    out = work / "out"
    out.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(source), str(out), str(case.budget_mib * MiB),
         json.dumps(list(case.chunks)), json.dumps(list(case.shards) if case.shards else None),
         str(case.threads), json.dumps(case.extra)],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    result: dict[str, Any] = json.loads(lines[-1].removeprefix(MARK))
    return result


def markdown(
    rows: list[tuple[Case, dict[str, Any]]],
    bookkeeping: list[tuple[str, int, bool, float]],
    working: list[tuple[str, int, float]],
    command: str,
) -> str:
    lines = [
        "## Rechunk memory: projected against measured",
        "",
        f"Command: {command}. Machine: {machine()}. Date: {datetime.date.today().isoformat()}.",
        "",
        "Each case in a fresh interpreter warmed up by a tiny conversion; `chunkwise.convert` "
        "with the default read-back verification; random values (little compression). "
        "Measured = the rise of peak RSS above RSS at the start of the run. Goal: "
        "measured <= projected <= 1.3 x measured. One run per case.",
        "",
        "| case | budget | tasks at once | projected | measured | projected / measured |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for case, r in rows:
        if "error" in r:
            lines.append(f"| {case.name} | {case.budget_mib} MiB | refused: {r['error']} | | | |")
            continue
        ratio = r["projected"] / max(r["added"], 1)
        flag = "" if r["added"] <= r["projected"] else " **under**"
        lines.append(
            f"| {case.name} | {case.budget_mib} MiB | "
            f"{' / '.join(str(s[2]) for s in r['stages'])} | {r['projected'] / MiB:.1f} MiB | "
            f"{r['added'] / MiB:.1f} MiB | {ratio:.2f}{flag} |"
        )
    lines += [
        "",
        "zarr-python's bookkeeping per chunk of one call (the model's `per_chunk_bytes`): the "
        "rise of peak RSS writing or reading one-byte chunks, per chunk.",
        "",
        "| call | chunks | stored as | bytes per chunk |",
        "|---|---:|---|---:|",
    ]
    for mode, count, sharded, per in bookkeeping:
        where = "one shard" if sharded else "one object each"
        lines.append(f"| {mode} | {count:,} | {where} | {per:,.0f} |")
    lines += [
        "",
        "Codec working memory (the model's `ZSTD_SCRATCH`): the rise of peak RSS writing 12 "
        "chunks of float32 noise, against Blosc lz4's.",
        "",
        "| codec | chunk | rise | over Blosc lz4 |",
        "|---|---:|---:|---:|",
    ]
    base = {chunk: rise for label, chunk, rise in working if label.startswith("blosc:lz4")}
    for label, chunk, rise in working:
        lines.append(
            f"| {label} | {chunk // 1024:,} KiB | {rise:.1f} MiB | {rise - base[chunk]:+.1f} MiB |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="Run the cases whose name contains this text.")
    parser.add_argument("--workdir", default="/tmp/chunkwise-bench-rechunk-projection")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for case in CASES:
        if args.only and args.only not in case.name:
            continue
        result = run_case(case, work)
        if "error" in result:
            print(f"{case.name}: {result['error']}", flush=True)
        else:
            print(
                f"{case.name}: projected {result['projected'] / MiB:.1f} MiB, measured "
                f"{result['added'] / MiB:.1f} MiB, stages {result['stages']}",
                flush=True,
            )
        rows.append((case, result))
    bookkeeping = [] if args.only else per_chunk(work)
    working = [] if args.only else scratch(work)
    command = (
        "`"
        + " ".join([".venv/bin/python benchmarks/bench_rechunk_projection.py", *sys.argv[1:]])
        + "`"
    )
    publish(
        markdown(rows, bookkeeping, working, command), write=args.write_results and not args.only
    )


if __name__ == "__main__":
    main()
