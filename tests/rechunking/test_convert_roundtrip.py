"""Round trips: every source kind converts to zarr v2 and v3 (sharded and not), and
zarr-python, tensorstore and xarray read the result back bit-identical to the source.

Every source is a real file written by its own library (NumPy, h5py, xarray + h5netcdf,
tifffile, mrcfile, zarr-python) and is read back with that library for the expected values.
Big-endian sources: a zarr v3 target stores native byte order (the ``bytes`` codec's
endianness is the writer's choice; chunkwise picks native), so values are compared with
``np.array_equal(..., equal_nan=True)`` plus the bytes of both in native order; a zarr v2
target keeps the ``>f4`` dtype.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import signal
import struct
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import mrcfile
import numpy as np
import pandas as pd
import pytest
import tensorstore as ts
import tifffile
import xarray as xr
import zarr

import chunkwise
from chunkwise.errors import ConstraintError
from chunkwise.rechunking.convert import ConversionPlan, ConversionResult

RNG = np.random.default_rng(20240611)
SHAPE = (10, 20, 24)
#: target name -> (zarr_format, sharded)
TARGETS: dict[str, tuple[int, bool]] = {"v2": (2, False), "v3": (3, False), "v3-sharded": (3, True)}


def _floats(shape: tuple[int, ...], dtype: str = "float32") -> np.ndarray:
    out = (RNG.standard_normal(shape) * 100).astype(dtype)
    special = np.array([np.nan, -0.0, np.inf, -np.inf], dtype=out.dtype)
    out.flat[: special.size] = special
    if out.dtype == np.float32:  # a NaN with a payload: only a bit copy keeps it
        out.flat[special.size] = np.uint32(0x7FC00123).view(np.float32)
    return out


def _ints(shape: tuple[int, ...], dtype: str, low: int = -500, high: int = 500) -> np.ndarray:
    return RNG.integers(low, high, shape).astype(dtype)


@dataclass(frozen=True)
class Kind:
    """A source on disk and what the target must hold.

    Attributes
    ----------
    url
        What ``chunkwise.convert`` is given.
    files
        The file or folder that must stay unchanged.
    expected
        Per target array path (``""`` for a lone array): the source read with its native
        library.
    chunks, shards
        Requested layout, for the arrays with as many dims.
    attrs, dims, fills, storage_fills
        Per path: the array's expected user attributes, dimension names, missing value (as
        xarray reads it) and, for v3 targets, storage fill value
        (paths left out are not checked).
    group_attrs
        Per group path: its expected attributes (the root's without ``chunkwise``).
    xarray
        How to read the source with xarray for comparison (``None``: not checked).
    xarray_groups
        The groups that xarray opens on both sides.
    """

    url: str
    files: Path
    expected: dict[str, np.ndarray]
    chunks: tuple[int, ...]
    shards: tuple[int, ...]
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    dims: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    fills: dict[str, Any] = field(default_factory=dict)
    storage_fills: dict[str, Any] = field(default_factory=dict)
    group_attrs: dict[str, dict[str, Any]] = field(default_factory=dict)
    xarray: Callable[[str | None], xr.Dataset] | None = None
    xarray_groups: tuple[str, ...] = ("",)

    @property
    def is_group(self) -> bool:
        return "" not in self.expected


# ----------------------------------------------------------------------------- sources


def _npy_c(root: Path) -> Kind:
    np.save(root / "c.npy", _floats(SHAPE))
    return Kind(
        str(root / "c.npy"), root / "c.npy", {"": np.load(root / "c.npy")},
        chunks=(4, 8, 8), shards=(8, 16, 16), attrs={"": {}}, dims={"": None},
    )  # fmt: skip


def _npy_fortran(root: Path) -> Kind:
    np.save(root / "f.npy", np.asfortranarray(_ints((9, 12, 14), "int32")))
    loaded = np.load(root / "f.npy")
    assert loaded.flags.f_contiguous and not loaded.flags.c_contiguous
    return Kind(
        str(root / "f.npy"), root / "f.npy", {"": loaded},
        chunks=(4, 6, 8), shards=(8, 12, 16), attrs={"": {}}, dims={"": None},
    )  # fmt: skip


def _hdf5(root: Path) -> Kind:
    path = root / "scan.h5"
    with h5py.File(path, "w") as f:
        f.attrs["title"] = "scan 7"
        f.attrs["gain"] = np.float32(1.5)
        for name, n in zip("zyx", SHAPE, strict=True):
            f[name] = np.arange(1, n + 1, dtype="float64") * 0.5
            f[name].make_scale(name)
            f[name].attrs["units"] = "um"
        temp = f.create_dataset(
            "temp", data=_floats(SHAPE), chunks=(2, 10, 12), compression="gzip"
        )  # chunked + gzip
        temp.attrs["units"] = "K"
        temp.attrs["valid_range"] = np.array([-500.0, 500.0])
        grp = f.create_group("grp")
        grp.attrs["kind"] = "counts"
        counts = grp.create_dataset("counts", data=_ints(SHAPE, "int16", 1, 1000))  # contiguous
        big = grp.create_group("sub").create_dataset(
            "be", data=_floats(SHAPE, ">f4"), chunks=(5, 20, 24), fillvalue=-1.0
        )
        big.attrs["note"] = "big-endian"
        for dataset in (temp, counts, big):
            for i, name in enumerate("zyx"):
                dataset.dims[i].attach_scale(f[name])
    with h5py.File(path, "r") as f:
        assert f["grp/counts"].chunks is None and f["temp"].compression == "gzip"
        assert f["grp/sub/be"].dtype == np.dtype(">f4")
        expected = {
            name: f[name][...] for name in ("temp", "grp/counts", "grp/sub/be", "z", "y", "x")
        }
    units = {"units": "um"}
    return Kind(
        str(path), path, expected, chunks=(4, 8, 8), shards=(8, 16, 16),
        attrs={"temp": {"units": "K", "valid_range": [-500.0, 500.0]}, "grp/counts": {},
               "grp/sub/be": {"note": "big-endian"}, "z": units, "y": units, "x": units},
        dims={"temp": ("z", "y", "x"), "grp/sub/be": ("z", "y", "x"), "z": ("z",)},
        fills={"temp": None, "grp/sub/be": None},  # HDF5's own fill is not "missing"
        group_attrs={"": {"title": "scan 7", "gain": 1.5}, "grp": {"kind": "counts"}},
        xarray=lambda group: xr.open_dataset(path, engine="h5netcdf", group=group),
        xarray_groups=("", "grp", "grp/sub"),
    )  # fmt: skip


def _netcdf(root: Path) -> Kind:
    path = root / "air.nc"
    air = _floats((6, 10, 12))
    air[0, 0, :3] = np.nan
    air[2, 3, 4] = np.nan
    ds = xr.Dataset(
        {
            "air": (
                ("time", "lat", "lon"),
                air,
                {"units": "K", "long_name": "air temperature", "standard_name": "air_temperature"},
            )
        },
        coords={
            "time": pd.date_range("2000-01-01", periods=6, freq="D"),
            "lat": ("lat", np.linspace(-45.0, 45.0, 10), {"units": "degrees_north"}),
            "lon": ("lon", np.arange(0.0, 360.0, 30.0), {"units": "degrees_east"}),
        },
        attrs={"title": "air", "Conventions": "CF-1.8"},
    )
    ds["air"].encoding.update({"_FillValue": -9999.0, "chunksizes": (2, 10, 12), "zlib": True})
    ds.to_netcdf(path, engine="h5netcdf")
    with h5py.File(path, "r") as f:  # raw, as stored: NaNs are written as the _FillValue
        expected = {name: f[name][...] for name in ("air", "time", "lat", "lon")}
    assert (expected["air"][0, 0, :3] == -9999.0).all()
    return Kind(
        str(path), path, expected, chunks=(2, 4, 4), shards=(4, 8, 8),
        dims={"air": ("time", "lat", "lon"), "time": ("time",)}, fills={"air": -9999.0},
        group_attrs={"": {"title": "air", "Conventions": "CF-1.8"}},
        xarray=lambda group: xr.open_dataset(path, engine="h5netcdf", group=group),
    )  # fmt: skip


def _tiff_zlib(root: Path) -> Kind:
    path = root / "stack.tif"
    tifffile.imwrite(path, _ints(SHAPE, "uint16", 0, 65535), compression="zlib",
                     photometric="minisblack")  # fmt: skip
    with tifffile.TiffFile(path) as tif:
        assert tif.pages.first.compression == 8  # zlib (ADOBE_DEFLATE)
        assert len(tif.pages) == SHAPE[0]
    return Kind(
        str(path), path, {"": tifffile.imread(path)}, chunks=(4, 8, 8), shards=(8, 16, 16),
        attrs={"": {}}, dims={"": ("dim_0", "y", "x")},
    )  # fmt: skip


def _tiff_folder(root: Path) -> Kind:
    folder = root / "planes"
    folder.mkdir()
    planes = _ints((11, 20, 24), "uint16", 0, 65535)
    for i, plane in enumerate(planes):  # img_10 must sort after img_9
        tifffile.imwrite(folder / f"img_{i}.tif", plane)
    return Kind(
        str(folder), folder, {"": np.stack([tifffile.imread(folder / f"img_{i}.tif")
                                            for i in range(len(planes))])},
        chunks=(4, 8, 8), shards=(8, 16, 16), attrs={"": {}}, dims={"": ("z", "y", "x")},
    )  # fmt: skip


def _mrc(root: Path, dtype: str) -> Kind:
    path = root / f"tomo-{dtype}.mrc"
    data = _floats(SHAPE) if dtype == "float32" else _ints(SHAPE, dtype)
    with warnings.catch_warnings(), mrcfile.new(path) as m:
        warnings.simplefilter("ignore", RuntimeWarning)  # the header statistics of NaNs
        m.set_data(data)
        m.voxel_size = (1.5, 2.0, 2.5)
        m.header.origin = (10.0, 20.0, 30.0)
    with mrcfile.open(path) as m:
        expected = np.array(m.data)
        assert expected.dtype == np.dtype(dtype)
        labels = [bytes(b).decode().strip() for b in m.header.label[: int(m.header.nlabl)]]
    attrs = {"voxel_size": [1.5, 2.0, 2.5], "origin": [10.0, 20.0, 30.0], "labels": labels}
    return Kind(
        str(path), path, {"": expected}, chunks=(4, 8, 8), shards=(8, 16, 16),
        attrs={"": attrs}, dims={"": ("z", "y", "x")},
    )  # fmt: skip


def _zarr_v2(root: Path) -> Kind:
    path = root / "v2.zarr"
    ds = xr.Dataset(
        {
            "air": (("time", "lat", "lon"), _floats((6, 10, 12)), {"units": "K"}),
            "mask": (("time", "lat", "lon"), _ints((6, 10, 12), "uint8", 1, 255)),
        },
        coords={"time": np.arange(6, dtype="int32"), "lat": np.linspace(-45.0, 45.0, 10),
                "lon": np.arange(0.0, 360.0, 30.0)},
        attrs={"title": "v2 source"},
    )  # fmt: skip
    encoding = {name: {"chunks": (1, 10, 12)} for name in ("air", "mask")}
    ds.to_zarr(path, zarr_format=2, encoding=encoding, consolidated=True)
    group = zarr.open_group(path, mode="r")
    expected = {name: group[name][...] for name in ("air", "mask", "time", "lat", "lon")}
    return Kind(
        str(path), path, expected, chunks=(2, 4, 4), shards=(4, 8, 8),
        attrs={"air": {"units": "K"}, "mask": {}},
        dims={"air": ("time", "lat", "lon"), "mask": ("time", "lat", "lon"), "lat": ("lat",)},
        group_attrs={"": {"title": "v2 source"}},
        xarray=lambda group: xr.open_zarr(path, group=group, consolidated=True),
    )  # fmt: skip


def _zarr_v3_sharded(root: Path) -> Kind:
    path = root / "v3.zarr"
    group = zarr.open_group(path, mode="w", zarr_format=3, attributes={"project": "tomo"})
    vol = group.create_array(
        "vol", shape=SHAPE, chunks=(2, 5, 6), shards=(4, 10, 12), dtype="float32",
        fill_value=-1.5, dimension_names=("z", "y", "x"), attributes={"units": "nm"},
    )  # fmt: skip
    vol[...] = _floats(SHAPE)
    sub = group.create_group("a/b", attributes={"level": 2})
    labels = sub.create_array(
        "labels", shape=SHAPE, chunks=(5, 10, 12), shards=(10, 20, 24), dtype="int64",
        fill_value=3, dimension_names=("z", "y", "x"),
    )  # fmt: skip
    labels[...] = _ints(SHAPE, "int64", -(2**40), 2**40)
    assert vol.shards == (4, 10, 12)
    expected = {"vol": vol[...], "a/b/labels": labels[...]}
    return Kind(
        str(path), path, expected, chunks=(4, 8, 8), shards=(8, 16, 16),
        attrs={"vol": {"units": "nm"}, "a/b/labels": {}},
        dims={"vol": ("z", "y", "x"), "a/b/labels": ("z", "y", "x")},
        fills={"vol": None, "a/b/labels": None},  # a v3 fill_value is not "missing"
        storage_fills={"vol": -1.5, "a/b/labels": 3},
        group_attrs={"": {"project": "tomo"}, "a/b": {"level": 2}},
        xarray=lambda group: xr.open_zarr(path, group=group, consolidated=False),
        xarray_groups=("", "a/b"),
    )  # fmt: skip


def _zarr_zip(root: Path) -> Kind:
    path = root / "cells.zip"
    store = zarr.storage.ZipStore(path, mode="w")
    cells = zarr.create_array(
        store, shape=(12, 10, 8), chunks=(5, 4, 8), dtype="int32", zarr_format=3,
        dimension_names=("t", "y", "x"), attributes={"units": "counts"},
    )  # fmt: skip
    cells[...] = _ints((12, 10, 8), "int32")
    expected = cells[...]
    store.close()
    return Kind(
        str(path), path, {"": expected}, chunks=(4, 4, 4), shards=(8, 8, 8),
        attrs={"": {"units": "counts"}}, dims={"": ("t", "y", "x")},
    )  # fmt: skip


BUILDERS: dict[str, Callable[[Path], Kind]] = {
    "npy": _npy_c,
    "npy-fortran": _npy_fortran,
    "hdf5": _hdf5,
    "netcdf": _netcdf,
    "tiff-zlib": _tiff_zlib,
    "tiff-folder": _tiff_folder,
    "mrc-float32": lambda root: _mrc(root, "float32"),
    "mrc-int16": lambda root: _mrc(root, "int16"),
    "zarr-v2": _zarr_v2,
    "zarr-v3-sharded": _zarr_v3_sharded,
    "zarr-zip": _zarr_zip,
}


@pytest.fixture(scope="module")
def kinds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Kind]:
    root = tmp_path_factory.mktemp("sources")
    return {name: build(root) for name, build in BUILDERS.items()}


# ----------------------------------------------------------------------------- helpers


def snapshot(path: Path) -> dict[str, tuple[int, bytes]]:
    """Every file's mtime and bytes."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(f): (f.stat().st_mtime_ns, f.read_bytes()) for f in files}


def native(dtype: np.dtype) -> np.dtype:
    return dtype.newbyteorder("=")


def assert_bits(got: np.ndarray, want: np.ndarray, *, dtype: np.dtype | None = None) -> None:
    """``got`` holds exactly ``want``'s values: same dtype (``dtype`` when given: a byte
    order the target chose) and, in native byte order, the same bytes (NaN payloads and
    -0.0 included)."""
    got = np.asarray(got)
    assert got.shape == want.shape
    assert got.dtype == (want.dtype if dtype is None else dtype), (got.dtype, want.dtype)
    if got.dtype == want.dtype:
        assert got.tobytes() == want.tobytes()
        return
    assert np.array_equal(got, want, equal_nan=want.dtype.kind in "fc")
    assert got.astype(native(got.dtype)).tobytes() == want.astype(native(want.dtype)).tobytes()


def target_dtype(want: np.dtype, zarr_format: int) -> np.dtype:
    """A v3 target stores native byte order; v2 keeps the source's."""
    return native(want) if zarr_format == 3 else want


def tensorstore_read(path: Path, zarr_format: int) -> np.ndarray:
    spec = {
        "driver": "zarr3" if zarr_format == 3 else "zarr",
        "kvstore": {"driver": "file", "path": str(path)},
    }
    return ts.open(spec, read=True).result().read().result()


def leftovers(target: Path) -> list[str]:
    """Run state or half-written files a finished run must not leave."""
    return [
        str(p.relative_to(target))
        for p in target.rglob("*")
        if ".chunkwise-rechunk" in p.parts or p.name.endswith(".partial")
    ]


def array_dims(array: zarr.Array) -> tuple[str, ...] | None:
    if array.metadata.zarr_format == 3:
        names = array.metadata.dimension_names
        return None if names is None else tuple(names)
    legacy = array.attrs.get("_ARRAY_DIMENSIONS")
    return None if legacy is None else tuple(legacy)


def user_attrs(array: zarr.Array) -> dict[str, Any]:
    """Attributes without the conventions chunkwise writes (dims, a v3 ``_FillValue``)."""
    return {
        k: v
        for k, v in array.attrs.asdict().items()
        if k not in ("_ARRAY_DIMENSIONS", "_FillValue")
    }


def missing_value(array: zarr.Array) -> Any:
    """The value xarray treats as missing: a v2 ``fill_value``; a v3 ``_FillValue``
    attribute (floats base64-encoded as xarray writes them)."""
    if array.metadata.zarr_format == 2:
        return array.metadata.fill_value
    value = array.attrs.get("_FillValue")
    if isinstance(value, str):
        return struct.unpack("<d", base64.standard_b64decode(value))[0]
    return value


def plain(value: Any) -> Any:
    """Attribute values as JSON-like Python (h5netcdf gives NumPy arrays, zarr lists)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray | list | tuple):
        return [plain(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    return value.item() if isinstance(value, np.generic) else value


def assert_same_variable(got: xr.Variable, want: xr.Variable, what: str) -> None:
    """Decoded values (bit for bit, in native order), dims and attributes."""
    assert got.dims == want.dims, what
    assert plain(got.attrs) == plain(want.attrs), what
    values, expected = np.asarray(got.values), np.asarray(want.values)
    assert values.shape == expected.shape, what
    assert native(values.dtype) == native(expected.dtype), (what, values.dtype, expected.dtype)
    if expected.dtype.kind in "fc":
        assert np.array_equal(values, expected, equal_nan=True), what
    else:
        assert np.array_equal(values, expected), what
    assert (
        values.astype(native(values.dtype)).tobytes()
        == expected.astype(native(expected.dtype)).tobytes()
    ), what


def assert_same_dataset(got: xr.Dataset, want: xr.Dataset, what: str) -> None:
    assert set(got.data_vars) == set(want.data_vars), what
    assert set(got.coords) == set(want.coords), what
    assert dict(got.sizes) == dict(want.sizes), what
    for name in want.variables:
        assert_same_variable(got[name].variable, want[name].variable, f"{what}: {name}")
    got_attrs = {k: v for k, v in got.attrs.items() if k != "chunkwise"}
    assert plain(got_attrs) == plain(want.attrs), what


# ----------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("target_name", list(TARGETS))
@pytest.mark.parametrize("kind_name", list(BUILDERS))
def test_round_trip(
    kinds: dict[str, Kind], tmp_path: Path, kind_name: str, target_name: str
) -> None:
    kind = kinds[kind_name]
    zarr_format, sharded = TARGETS[target_name]
    shards = kind.shards if sharded else None
    target = tmp_path / "out.zarr"
    before = snapshot(kind.files)

    result = chunkwise.convert(
        kind.url, target, chunks=kind.chunks, shards=shards, zarr_format=zarr_format,
        max_mem="64MiB", verify="full",
    )  # fmt: skip

    assert isinstance(result, ConversionResult) and not result.resumed
    assert set(result.results) == set(kind.expected)
    assert {r.verified for r in result.results.values()} == {"full"}
    assert snapshot(kind.files) == before, "the source changed"
    assert leftovers(target) == []
    node = zarr.open(target, mode="r")
    if kind.is_group:
        assert isinstance(node, zarr.Group)
        assert node.metadata.zarr_format == zarr_format
        found = {p for p, m in node.members(max_depth=None) if isinstance(m, zarr.Array)}
        assert found == set(kind.expected)
        consolidated = zarr.open_group(target, mode="r", use_consolidated=True)
        assert consolidated.metadata.consolidated_metadata is not None
        assert set(consolidated.metadata.consolidated_metadata.flattened_metadata) >= found
        root_attrs = dict(node.attrs.asdict())
        decisions = root_attrs.pop("chunkwise")["arrays"]
        assert set(decisions) == found
        for path, attrs in kind.group_attrs.items():
            assert (root_attrs if not path else node[path].attrs.asdict()) == attrs, path
    else:
        assert isinstance(node, zarr.Array)

    for path, want in kind.expected.items():
        array = node[path] if path else node
        assert isinstance(array, zarr.Array)
        data_var = want.ndim == len(kind.chunks)
        layout_chunks = (  # arrays of other ndims are small: one chunk
            tuple(min(c, n) for c, n in zip(kind.chunks, want.shape, strict=True))
            if data_var
            else want.shape
        )
        layout_shards = shards if data_var else None
        # zarr-python
        assert array.metadata.zarr_format == zarr_format
        assert array.chunks == layout_chunks, path
        assert array.shards == (tuple(layout_shards) if layout_shards else None), path
        assert_bits(array[...], want, dtype=target_dtype(want.dtype, zarr_format))
        # tensorstore (returns native byte order)
        got = tensorstore_read(target / path if path else target, zarr_format)
        assert_bits(got, want, dtype=native(want.dtype))
        # metadata carried over
        if path in kind.attrs:
            attrs = user_attrs(array)
            if kind.is_group:
                assert "chunkwise" not in attrs  # the decisions live on the root
            attrs.pop("chunkwise", None)
            assert attrs == kind.attrs[path], path
        if path in kind.dims:
            assert array_dims(array) == kind.dims[path], path
        if path in kind.fills:  # missing values keep their meaning for xarray
            assert missing_value(array) == kind.fills[path], path
        if path in kind.storage_fills and zarr_format == 3:  # v3 to v3: the same storage fill
            assert array.fill_value == kind.storage_fills[path], path
        # the decided layout is recorded
        record = decisions[path] if kind.is_group else array.attrs["chunkwise"]
        if data_var:
            assert record["decided_by"] == "explicit --chunks", path
        else:
            assert record["decided_by"].startswith("one chunk"), path
        assert record["layout"]["zarr_format"] == zarr_format
        assert record["layout"]["chunks"] == list(layout_chunks)
        assert record["layout"]["shards"] == (list(layout_shards) if layout_shards else None)
        assert record["source"]["url"] == kind.url
        assert record["source"]["path"] == path

    if kind.xarray is not None:
        for group in kind.xarray_groups:
            want_ds = kind.xarray(group or None)
            got_ds = xr.open_zarr(target, group=group or None, consolidated=not group)
            with want_ds, got_ds:
                assert_same_dataset(got_ds.load(), want_ds.load(), f"group {group!r}")


# ----------------------------------------------------------------------------- bugs, minimal


def test_big_endian_hdf5_dataset_converts_to_zarr_v3(tmp_path: Path) -> None:
    """A ``>f4`` dataset: the v3 target is native-endian, and verification must compare
    values, not the bytes of two byte orders."""
    values = np.arange(24, dtype=">f4").reshape(2, 3, 4)
    with h5py.File(tmp_path / "be.h5", "w") as f:
        f["be"] = values
    chunkwise.convert(tmp_path / "be.h5#be", tmp_path / "be.zarr", zarr_format=3)
    got = zarr.open_array(tmp_path / "be.zarr", mode="r")[...]
    assert_bits(got, values, dtype=np.dtype("<f4"))


def test_netcdf_fill_value_still_masks_in_xarray_after_converting_to_zarr_v3(
    tmp_path: Path,
) -> None:
    """xarray reads a v3 array's ``_FillValue`` from its attributes, not from
    ``fill_value``: NaNs written as -9999 must come back as NaN."""
    ds = xr.Dataset({"t": ("x", np.array([1.0, np.nan, 3.0], dtype="float32"))})
    ds["t"].encoding["_FillValue"] = -9999.0
    ds.to_netcdf(tmp_path / "t.nc", engine="h5netcdf")
    chunkwise.convert(tmp_path / "t.nc", tmp_path / "t.zarr", zarr_format=3)
    got = xr.open_zarr(tmp_path / "t.zarr")["t"].values
    assert np.array_equal(got, ds["t"].values, equal_nan=True), got


def test_zarr_v2_array_without_fill_value_keeps_none_in_zarr_v2(tmp_path: Path) -> None:
    """A v2 ``fill_value`` of null (xarray writes it for integers) must stay null, not
    become zarr-python's default 0, which xarray then reads as ``_FillValue``: a uint8
    variable comes back as float32 with its zeros turned into NaN."""
    zarr.create_array(
        tmp_path / "m.zarr", data=np.arange(4, dtype="uint8"), zarr_format=2, fill_value=None
    )
    assert zarr.open_array(tmp_path / "m.zarr").metadata.fill_value is None
    chunkwise.convert(tmp_path / "m.zarr", tmp_path / "t.zarr", zarr_format=2)
    assert zarr.open_array(tmp_path / "t.zarr").metadata.fill_value is None


def test_netcdf_variable_without_fill_value_is_not_masked_in_zarr_v2(tmp_path: Path) -> None:
    """A NetCDF variable without ``_FillValue`` (xarray writes none for times and ints)
    must not get HDF5's default fill 0 as its zarr v2 ``fill_value``: xarray reads a v2
    ``fill_value`` as ``_FillValue`` and turns the first day into NaT."""
    ds = xr.Dataset(coords={"time": pd.date_range("2000-01-01", periods=3, freq="D")})
    ds["n"] = ("time", np.array([0, 1, 2], dtype="int16"))
    ds.to_netcdf(tmp_path / "d.nc", engine="h5netcdf")
    chunkwise.convert(tmp_path / "d.nc", tmp_path / "d.zarr", zarr_format=2)
    got = xr.open_zarr(tmp_path / "d.zarr")
    want = xr.open_dataset(tmp_path / "d.nc", engine="h5netcdf")
    assert got["time"].values.tolist() == want["time"].values.tolist()
    assert got["n"].dtype == want["n"].dtype and got["n"].values.tolist() == [0, 1, 2]


# ----------------------------------------------------------------------------- resume


def _cli() -> list[str]:
    """``python -m chunkwise`` (checked to work), else the console script."""
    probe = subprocess.run(
        [sys.executable, "-m", "chunkwise", "--help"], capture_output=True, text=True
    )
    if probe.returncode == 0:
        return [sys.executable, "-m", "chunkwise"]
    return [str(Path(sys.executable).with_name("chunkwise"))]


def _markers(target: Path) -> int:
    """Finished-task markers under ``.chunkwise-rechunk/arrays/<name>/<stage>/``."""
    count = 0
    with contextlib.suppress(FileNotFoundError):  # a finishing run removes them
        for stage in (target / ".chunkwise-rechunk" / "arrays").glob("*/*"):
            if stage.name != "intermediate":
                with os.scandir(stage) as entries:
                    count += sum(1 for e in entries if e.name.isdigit())
    return count


def _write_h5(path: Path, side: int) -> dict[str, np.ndarray]:
    values = {name: _floats((side, side, side)) for name in ("a", "b")}
    with h5py.File(path, "w") as f:
        for name, data in values.items():
            f.create_dataset(name, data=data, chunks=(1, side, side))
    return values


def test_a_killed_group_conversion_resumes(tmp_path: Path) -> None:
    cli = _cli()
    for side in (64, 96, 128):  # bigger if a run finishes before it can be killed
        source = tmp_path / f"cube{side}.h5"
        values = _write_h5(source, side)
        target = tmp_path / f"cube{side}.zarr"
        with pytest.raises(ConstraintError) as refused:  # the least memory: two passes
            chunkwise.convert(source, tmp_path / "plan.zarr", chunks=(side, 8, 8), max_mem="1KiB",
                              threads=1, dry_run=True)  # fmt: skip
        budget = str(refused.value).rsplit("--max-mem ", 1)[1].rstrip(".")
        command = [*cli, "convert", str(source), str(target), "--chunks", f"{side},8,8",
                   "--max-mem", budget, "--threads", "1", "--quiet"]  # fmt: skip
        before = snapshot(source)
        first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while first.poll() is None and _markers(target) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        if first.poll() is None:
            os.kill(first.pid, signal.SIGKILL)
            first.communicate()
            assert first.returncode == -signal.SIGKILL
            break
        _, err = first.communicate()
        assert first.returncode == 0, err.decode()
    else:
        pytest.fail("every run finished before it could be killed")
    assert (target / ".chunkwise-rechunk" / "run.json").is_file()

    plan = chunkwise.convert(source, tmp_path / "plan.zarr", chunks=(side, 8, 8),
                             max_mem=budget, threads=1, dry_run=True)  # fmt: skip
    assert isinstance(plan, ConversionPlan)
    assert all(len(job.plan.stages) == 2 for job in plan.jobs)  # two passes, as intended
    total = sum(stage.tasks for job in plan.jobs for stage in job.plan.stages)

    second = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    found = re.search(r"tasks: ([\d,]+) run, ([\d,]+) already done \(resumed\)", second.stdout)
    assert found, second.stdout
    run, skipped = (int(n.replace(",", "")) for n in found.groups())
    assert skipped >= 2 and run + skipped == total, second.stdout
    assert (
        "every region read back after writing and matched the source bit for bit" in second.stdout
    )
    group = zarr.open_group(target, mode="r")
    for name, want in values.items():
        assert group[name].chunks == (side, 8, 8)
        assert_bits(group[name][...], want)
        assert_bits(tensorstore_read(target / name, 3), want)
    assert leftovers(target) == []
    assert snapshot(source) == before
