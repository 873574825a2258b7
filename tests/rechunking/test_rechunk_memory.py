"""The memory a rechunk states is the memory it keeps: measured <= projected on the kinds of
job that broke the bound before (tiny chunks, shards of thousands of inner chunks,
memory-mapped ``.npy``, chunked HDF5, a group), each run in a fresh, warmed-up interpreter;
and a run that measures itself over its budget says so and exits 3."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from chunkwise import api
from chunkwise.cli.main import cli

MiB = 2**20

WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np, zarr
    from chunkwise import api

    src, out, layout = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    zarr.create_array(out + "/warm.zarr", data=np.ones((4, 8, 8), "float32"), chunks=(1, 8, 8))
    api.rechunk(out + "/warm.zarr", out + "/warm-out.zarr", chunks=(4, 2, 2))
    result = api.convert(src, out + "/out.zarr", **layout)
    print(json.dumps({"added": result.peak_added, "projected": result.plan.peak_memory,
                      "budget": result.plan.max_mem, "engine": result.plan.engine}))
    """
)


def _values(shape: tuple[int, ...], dtype: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    if np.dtype(dtype).kind == "u":
        return rng.integers(0, 255, size=shape, dtype=dtype)
    return rng.standard_normal(shape).astype(dtype)


def tiny_shard(path: Path) -> Path:
    source = path / "tiny.zarr"
    zarr.create_array(source, data=_values((10, 10, 10, 10), "uint8"), chunks=(10, 10, 10, 10))
    return source


def tiny_source_chunks(path: Path) -> Path:
    source = path / "tinychunks.zarr"
    zarr.create_array(source, data=_values((32, 32, 32), "uint8"), chunks=(1, 4, 4))
    return source


def sharded(path: Path) -> Path:
    source = path / "cube.zarr"
    zarr.create_array(source, data=_values((64, 256, 256), "float32"), chunks=(8, 64, 64))
    return source


def npy(path: Path) -> Path:
    source = path / "volume.npy"
    np.save(source, _values((96, 384, 384), "float32"))
    return source


def hdf5(path: Path) -> Path:
    source = path / "run.h5"
    with h5py.File(source, "w") as f:
        f.create_dataset(
            "data", data=_values((64, 256, 256), "float32"), chunks=(8, 32, 32), compression="gzip"
        )
    return source


def netcdf4(path: Path) -> Path:
    """A chunked, compressed NetCDF-4 variable, read through xarray (h5netcdf)."""
    import xarray as xr

    source = path / "air.nc"
    xr.Dataset({"t": (("time", "y", "x"), _values((64, 256, 256), "float32"))}).to_netcdf(
        source, engine="h5netcdf", encoding={"t": {"chunksizes": (8, 32, 32), "zlib": True}}
    )
    return source


def netcdf3(path: Path) -> Path:
    """A NetCDF-3 record variable, read through xarray (netCDF4, the netCDF-C library)."""
    import netCDF4

    source = path / "air3.nc"
    with netCDF4.Dataset(source, "w", format="NETCDF3_64BIT_OFFSET") as nc:
        nc.createDimension("time", None)
        nc.createDimension("y", 256)
        nc.createDimension("x", 256)
        nc.createVariable("t", "f4", ("time", "y", "x"))[:] = _values((64, 256, 256), "float32")
    return source


def labels(path: Path) -> Path:
    """A uint16 label volume of 72 MiB: blobs of 5 labels, in 64-deep zarr chunks."""
    source = path / "labels.zarr"
    values = (_values((96, 384, 512), "uint8") // 52).astype("uint16")
    zarr.create_array(source, data=values, chunks=(64, 128, 128))
    return source


def group(path: Path) -> Path:
    source = path / "group.zarr"
    root = zarr.open_group(source, mode="w")
    for name, shape in (("big", (48, 256, 256)), ("mid", (16, 256, 256))):
        root.create_array(name, data=_values(shape, "float32"), chunks=(1, 256, 256))
    root.create_array("time", data=np.arange(48, dtype="f8"), chunks=(1,))
    return source


CASES: dict[str, tuple[Callable[[Path], Path], dict[str, Any]]] = {
    "10,000 inner chunks in one shard": (
        tiny_shard, {"chunks": [1, 1, 1, 1], "shards": [10, 10, 10, 10], "max_mem": "64MiB"}
    ),
    "2,048 tiny source chunks": (tiny_source_chunks, {"chunks": [32, 32, 32], "max_mem": "32MiB"}),
    "sharded target": (
        sharded, {"chunks": [64, 16, 16], "shards": [64, 64, 64], "max_mem": "48MiB"}
    ),
    "memory-mapped .npy": (npy, {"chunks": [8, 64, 64], "max_mem": "48MiB"}),
    "chunked HDF5 (gzip)": (hdf5, {"chunks": [64, 32, 32], "max_mem": "48MiB"}),
    "NetCDF-4 through xarray": (netcdf4, {"chunks": [64, 32, 32], "max_mem": "48MiB"}),
    "NetCDF-3 records through xarray": (netcdf3, {"chunks": [64, 32, 32], "max_mem": "96MiB"}),
    "group of arrays": (group, {"chunks": [48, 32, 32], "max_mem": "40MiB"}),
    # 54 MiB of float32 into 3 levels, each computed from the stored level below
    "OME-Zarr pyramid (mean)": (
        npy, {"ome_zarr": True, "levels": 3, "chunks": [8, 64, 64], "max_mem": "48MiB"}
    ),
    "OME-Zarr pyramid of labels (mode), advised layouts": (
        labels, {"ome_zarr": True, "levels": 3, "method": "mode", "max_mem": "48MiB"}
    ),
}  # fmt: skip


#: Cases also run with zarr-python's own pipeline (the others run the default engine,
#: zarrs, which serves local directories): one per kind of source and target.
ZARR_ENGINE_CASES = (
    "10,000 inner chunks in one shard", "sharded target", "memory-mapped .npy",
    "chunked HDF5 (gzip)", "OME-Zarr pyramid (mean)",
)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "engine"),
    [(name, "auto") for name in CASES] + [(name, "zarr") for name in ZARR_ENGINE_CASES],
)
def test_measured_memory_stays_within_the_projection(
    tmp_path: Path, name: str, engine: str
) -> None:
    make, layout = CASES[name]
    source = make(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(source), str(tmp_path),
         json.dumps({**layout, "engine": engine})],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    said = (
        f"{name} ({report['engine']}): measured {report['added'] / MiB:.1f} MiB, projected "
        f"{report['projected'] / MiB:.1f} MiB of {report['budget'] / MiB:.0f} MiB"
    )
    print(said)
    assert 0 < report["added"] <= report["projected"] <= report["budget"], said


def test_a_run_over_its_budget_warns_and_exits_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the model, the run checks itself: a measured rise above the budget is a
    warning on stderr and exit status 3, after the usual (verified) summary."""
    source = sharded(tmp_path)
    import chunkwise.rechunking.convert as convert

    start = convert.start_memory_watch
    monkeypatch.setattr(convert, "start_memory_watch", lambda: 0)  # the rise: all of RSS
    monkeypatch.setattr(convert, "peak_rss", lambda: 2**40)
    runner = CliRunner()
    result = runner.invoke(
        cli, ["convert", str(source), str(tmp_path / "out.zarr"), "--max-mem", "48MiB"]
    )
    assert result.exit_code == 3, result.output
    assert "verified: every region read back" in result.stdout
    warning = result.stderr.strip()
    assert warning.startswith("Warning: this run's memory rose 1 TiB above its start, over the")
    assert "48 MiB budget" in warning and warning.count("\n") == 0
    monkeypatch.setattr(convert, "start_memory_watch", start)
    with pytest.warns(convert.MemoryBudgetWarning, match="over the 48 MiB budget"):
        api.convert(source, tmp_path / "again.zarr", max_mem="48MiB")
