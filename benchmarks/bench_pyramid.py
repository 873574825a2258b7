"""An OME-Zarr pyramid of a tomogram: chunkwise against ome-zarr-py, then what a viewer reads.

Run:  .venv-3.13/bin/python benchmarks/bench_pyramid.py [--rounds 3] [--write-results]

The data: a synthetic uint16 tomogram of 128 x 2048 x 2048 (1 GiB; smooth blobs plus
noise, like a reconstructed EM volume) in an MRC file with a voxel size of 13.48 Å,
generated once into ``--workdir``.

**Building the pyramid.** Each contender runs in a fresh interpreter (benchmarks/harness.py
samples the process tree's RSS every 20 ms), round by round so a slow spell of the machine
touches both; medians over ``--rounds``:

* ``chunkwise convert tomo.mrc out.zarr --ome-zarr --max-mem 256MiB``: the defaults
  (levels until the top is 256 pixels across, 2x2x2 means for near-isotropic voxels,
  each level laid out by ``advise`` for the ``pyramid-viewer`` workload on ``local-ssd``),
  read-back verification on.
* ome-zarr-py's ``write_image(data, group, axes="zyx")`` with its defaults, the way its
  documentation shows it: the MRC read into memory first (``mrcfile.read``), ome-zarr-py's
  own pyramid (y and x halved, 5 levels) and chunks.

Every output is checked: level 0 equal to the source element by element; chunkwise's
levels against xarray's ``coarsen(...).mean()`` of the level below (every level, every
element) and its metadata by ome-zarr-models.

**What a viewer reads**, on the two pyramids and on level 0 alone (no pyramid: a viewer
showing the whole image must read a full-resolution plane): the first view (the middle
plane of the coarsest level, whole) and a 1024 x 1024 viewport of one plane at level 0 and
at level 1 (10 random positions each). **Measured**: requests and bytes through
``chunkwise.trace`` (zarr-python reading the local store; metadata not counted), and the
median seconds on local disk with a warm page cache. **Predicted**: chunkwise's cost model
for the same layout and operation on ``local-ssd`` (requests, bytes fetched, seconds).

With ``--write-results`` the tables replace this benchmark's section of
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from harness import Run, begin, machine_line, measure_quietly, publish, report

MiB = 2**20
SHAPE = (128, 2048, 2048)
VOXEL_A = 13.48
VIEWPORT = 1024
POSITIONS = 10
BUDGET = "256MiB"


def write_tomogram(path: Path) -> None:
    """Smooth structure (a sum of separable waves) plus noise, uint16, written plane by
    plane into an MRC file."""
    import mrcfile

    if path.exists():
        return
    rng = np.random.default_rng(0)
    waves = rng.uniform(0.002, 0.03, size=(8, 3)), rng.uniform(0, 2 * np.pi, size=(8, 3))
    y, x = np.arange(SHAPE[1], dtype="float32"), np.arange(SHAPE[2], dtype="float32")
    with mrcfile.new_mmap(path, shape=SHAPE, mrc_mode=6) as mrc:
        mrc.voxel_size = VOXEL_A
        for z in range(SHAPE[0]):
            plane = np.zeros(SHAPE[1:], "float32")
            for (fz, fy, fx), (pz, py, px) in zip(*waves, strict=True):
                plane += np.cos(fz * z + pz) * np.outer(np.sin(fy * y + py), np.cos(fx * x + px))
            plane = 20000 + 3000 * plane + rng.normal(0, 800, size=SHAPE[1:]).astype("float32")
            mrc.data[z] = np.clip(plane, 0, 65535).astype("uint16")


# -- workers --------------------------------------------------------------------------------


def worker(spec: dict[str, Any]) -> None:
    source, target = spec["source"], spec["target"]
    if spec["contender"] == "chunkwise":
        import chunkwise

        start = begin()
        chunkwise.convert(source, target, ome_zarr=True, max_mem=BUDGET)
    else:
        import mrcfile
        import zarr
        from ome_zarr.io import parse_url
        from ome_zarr.writer import write_image

        start = begin()
        data = mrcfile.read(source)
        group = zarr.open_group(parse_url(target, mode="w").store, mode="w")
        write_image(data, group, axes="zyx")
    report({"work_s": time.perf_counter() - start})


# -- checks and views -----------------------------------------------------------------------


def levels(path: Path) -> list[str]:
    import zarr

    from chunkwise.model.ome import read_ome

    image = read_ome(zarr.open_group(path, mode="r").attrs.asdict())
    assert image is not None, f"{path} is not an OME-Zarr image"
    return [d.path for d in image.datasets]


def check(path: Path, source: Path, contender: str) -> None:
    """Level 0 equals the source; chunkwise's further levels equal xarray's coarsen."""
    import mrcfile
    import xarray as xr
    import zarr

    group = zarr.open_group(path, mode="r")
    paths = levels(path)
    want = mrcfile.mmap(source, mode="r").data
    for z in range(0, SHAPE[0], 16):
        np.testing.assert_array_equal(group[paths[0]][z : z + 16], want[z : z + 16])
    if contender != "chunkwise":
        return
    from ome_zarr_models.v05.image import Image

    Image.from_zarr(group)
    for below, level in itertools.pairwise(paths):
        for z in range(0, group[below].shape[0], 16):  # slabs of 16 planes: 8 of the level
            lower = xr.DataArray(group[below][z : z + 16].astype("float64"), dims=("z", "y", "x"))
            mean = lower.coarsen(z=2, y=2, x=2, boundary="pad").mean().values
            got = group[level][z // 2 : z // 2 + 8]
            np.testing.assert_array_equal(got, np.rint(mean).astype("uint16"))


def stored(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def _layout(array: Any) -> tuple[Any, Any]:
    """chunkwise's model of a zarr array: its spec and layout."""
    import chunkwise
    from chunkwise.model import ArraySpec, Layout, parse_codec

    facts = chunkwise.inspect(str(array.store.root / array.path)).arrays[0]  # type: ignore[attr-defined]
    spec = ArraySpec.create(array.shape, str(array.dtype), ("z", "y", "x"))
    layout = Layout.create(
        spec, facts.chunks, shards=facts.shards, codec=parse_codec(facts.codec), zarr_format=3
    )
    return spec, layout


def predicted(array: Any, extent: tuple[int, int, int]) -> dict[str, float]:
    """The cost model's requests, bytes and seconds for one box of ``extent``."""
    from chunkwise.cost.model import CostInputs, estimate_layout
    from chunkwise.model.codec import default_codec_profile
    from chunkwise.model.workload import Workload
    from chunkwise.spec import parse_storage

    spec, layout = _layout(array)
    ops = [{"op": "region", "extent": dict(zip("zyx", extent, strict=True)), "name": "view"}]
    workload = Workload.from_spec(ops, spec)
    inputs = CostInputs(
        spec, parse_storage("local-ssd"), layout.codec, default_codec_profile(layout.codec)
    )
    op = estimate_layout(layout, workload, inputs).ops["view"]
    return {"requests": op["requests"], "bytes": op["bytes_fetched"], "seconds": op["seconds"]}


def measured(path: Path, level: str, boxes: list[tuple[slice, ...]]) -> dict[str, float]:
    """Requests and bytes per box through a trace of zarr-python's reads, and the median
    seconds of reading each box again untraced."""
    import zarr
    from zarr.storage import LocalStore

    import chunkwise

    requests, nbytes = [], []
    for box in boxes:
        with chunkwise.trace(LocalStore(path)) as t:
            array = zarr.open_array(t.store, path=level, mode="r")
            array[box]
        data = [
            e
            for e in t.events
            if e.op.startswith("get")
            and not e.key.endswith(("zarr.json", ".zarray", ".zattrs", ".zgroup"))
        ]
        requests.append(len(data))
        nbytes.append(sum(e.nbytes for e in data))
    array = zarr.open_array(LocalStore(path), path=level, mode="r")
    seconds = []
    for box in boxes:
        start = time.perf_counter()
        array[box]
        seconds.append(time.perf_counter() - start)
    return {
        "requests": statistics.median(requests),
        "bytes": statistics.median(nbytes),
        "seconds": statistics.median(seconds),
    }


def view_boxes(
    shape: tuple[int, ...], whole: bool, rng: np.random.Generator
) -> list[tuple[slice, ...]]:
    if whole:
        z = shape[0] // 2
        return [(slice(z, z + 1), slice(0, shape[1]), slice(0, shape[2]))]
    boxes = []
    for _ in range(POSITIONS):
        z = int(rng.integers(0, shape[0]))
        y = int(rng.integers(0, max(1, shape[1] - VIEWPORT + 1)))
        x = int(rng.integers(0, max(1, shape[2] - VIEWPORT + 1)))
        boxes.append(
            (
                slice(z, z + 1),
                slice(y, min(y + VIEWPORT, shape[1])),
                slice(x, min(x + VIEWPORT, shape[2])),
            )
        )
    return boxes


def views(path: Path) -> list[dict[str, Any]]:
    import zarr

    paths = levels(path)
    group = zarr.open_group(path, mode="r")
    rows = []
    cases = [
        ("first view (top level, whole plane)", paths[-1], True),
        ("first view without a pyramid (level 0, whole plane)", paths[0], True),
        ("1024x1024 viewport, level 0", paths[0], False),
        ("1024x1024 viewport, level 1", paths[1], False),
    ]
    for label, level, whole in cases:
        array = group[level]
        boxes = view_boxes(array.shape, whole, np.random.default_rng(1))
        extent = tuple(b.stop - b.start for b in boxes[0])
        rows.append({
            "view": label, "level": level, "shape": list(array.shape),
            "chunks": list(array.chunks), "shards": list(array.shards) if array.shards else None,
            "measured": measured(path, level, boxes), "predicted": predicted(array, extent),
        })  # fmt: skip
    return rows


# -- the run --------------------------------------------------------------------------------


def run(workdir: Path, rounds: int) -> dict[str, Any]:
    source = workdir / "tomo.mrc"
    write_tomogram(source)
    python, script = Path(sys.executable), Path(__file__).resolve()
    runs: dict[str, list[Run]] = {"chunkwise": [], "ome-zarr-py": []}
    for _ in range(rounds):
        for contender in runs:
            target = workdir / f"{contender}.zarr"

            def clear(target: Path = target) -> None:
                shutil.rmtree(target, ignore_errors=True)

            spec = {"contender": contender, "source": str(source), "target": str(target)}
            measured_run, _ = measure_quietly(python, script, spec, name=contender, before=clear)
            runs[contender].append(measured_run)
            print(
                f"  {contender}: {measured_run.work_s:.1f} s, peak {measured_run.peak_tree / MiB:.0f} MiB",
                flush=True,
            )
    out: dict[str, Any] = {"contenders": {}}
    for contender, done in runs.items():
        target = workdir / f"{contender}.zarr"
        check(target, source, contender)
        objects, nbytes = stored(target)
        import zarr

        group = zarr.open_group(target, mode="r")
        out["contenders"][contender] = {
            "seconds": statistics.median(r.work_s for r in done),
            "peak_mib": statistics.median(r.peak_tree for r in done) / MiB,
            "levels": [list(group[p].shape) for p in levels(target)],
            "chunks": [list(group[p].chunks) for p in levels(target)],
            "objects": objects,
            "stored_mib": nbytes / MiB,
            "views": views(target),
        }
    return out


def _n(value: float) -> str:
    return f"{value:,.0f}"


def markdown(result: dict[str, Any], rounds: int) -> str:
    c = result["contenders"]
    lines = [
        "## OME-Zarr pyramid of a tomogram: chunkwise against ome-zarr-py, and what a viewer reads",
        "",
        f"Command: `python benchmarks/bench_pyramid.py --rounds {rounds} --write-results`. "
        f"Machine: {machine_line()}; zarr-python {__import__('zarr').__version__}, "
        f"ome-zarr {__import__('importlib.metadata').metadata.version('ome-zarr')}.",
        f"Data: a synthetic uint16 tomogram of {'x'.join(map(str, SHAPE))} (1 GiB) in an MRC "
        f"file (voxel {VOXEL_A} Å), local disk. Medians of {rounds} runs, each in a fresh "
        "interpreter; every output checked (level 0 equal to the source; chunkwise's levels "
        "equal to xarray's coarsen mean of the level below and valid for ome-zarr-models).",
        "",
        "| | seconds | peak RSS | levels | chunks per level | objects | stored |",
        "|---|---:|---:|---|---|---:|---:|",
    ]
    for name, row in c.items():
        shapes = ", ".join("x".join(map(str, s)) for s in row["levels"])
        chunks = ", ".join("x".join(map(str, s)) for s in row["chunks"])
        lines.append(
            f"| {name} | {row['seconds']:.1f} | {row['peak_mib']:,.0f} MiB | {shapes} | {chunks} "
            f"| {_n(row['objects'])} | {row['stored_mib']:,.0f} MiB |"
        )
    lines += [
        "",
        "What a viewer reads per view (measured through `chunkwise.trace` on local disk, warm "
        "page cache; predicted by chunkwise's cost model on `local-ssd`):",
        "",
        "| pyramid | view | requests measured / predicted | MiB read measured / predicted | ms measured / predicted |",
        "|---|---|---:|---:|---:|",
    ]
    for name, row in c.items():
        for v in row["views"]:
            m, p = v["measured"], v["predicted"]
            lines.append(
                f"| {name} | {v['view']} | {_n(m['requests'])} / {_n(p['requests'])} | "
                f"{m['bytes'] / MiB:.1f} / {p['bytes'] / MiB:.1f} | "
                f"{m['seconds'] * 1e3:.0f} / {p['seconds'] * 1e3:.0f} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        worker(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/chunkwise-bench-pyramid"))
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--write-results", action="store_true")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    result = run(args.workdir, args.rounds)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    publish(markdown(result, args.rounds), write=args.write_results)


if __name__ == "__main__":
    main()
