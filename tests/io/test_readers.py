"""Source readers: every kind read back against its native library, from threads and from
a fresh process, with the errors a user meets pinned."""

from __future__ import annotations

import json
import multiprocessing
import operator
import pickle
import sys
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import mrcfile
import numpy as np
import pytest
import tifffile
import xarray as xr
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from chunkwise.errors import MissingDependencyError, SpecError
from chunkwise.io.sources.readers import (
    READ_BLOCK_BYTES,
    Source,
    SourceArray,
    open_source,
    read_block_chunks,
)

RNG = np.random.default_rng(7)


def _values(shape: tuple[int, ...], dtype: str = "float32") -> np.ndarray[Any, Any]:
    if np.dtype(dtype).kind == "f":
        return RNG.standard_normal(shape).astype(dtype)
    return RNG.integers(0, 1000, shape).astype(dtype)


@dataclass(frozen=True)
class Case:
    """A source on disk and what each of its arrays holds, read with the native library."""

    url: str
    expected: dict[str, np.ndarray[Any, Any]]
    files: Path  # what must stay unchanged


def _build(root: Path) -> dict[str, Case]:
    cases: dict[str, Case] = {}

    npy = _values((6, 40, 50))
    np.save(root / "a.npy", npy)
    cases["npy"] = Case(str(root / "a.npy"), {"": npy}, root / "a.npy")
    fortran = np.asfortranarray(_values((5, 7, 9), "int32"))
    np.save(root / "f.npy", fortran)
    cases["npy-fortran"] = Case(str(root / "f.npy"), {"": fortran}, root / "f.npy")

    with h5py.File(root / "run.h5", "w") as f:
        f.attrs["title"] = "run 7"
        f.attrs["gain"] = np.float32(1.5)
        f.create_dataset("a", data=_values((10, 12, 14)), chunks=(4, 5, 6), compression="gzip")
        f.create_dataset("grp/b", data=_values((9, 11), "int16"))  # contiguous
        f.create_dataset("grp/sub/c", data=_values((30,), "float64"), chunks=(7,), fillvalue=-1.0)
        f["grp"].attrs["bytes"] = b"abc"
        f["grp"].attrs["list"] = np.arange(3)
        f.create_dataset("names", data=["x", "yy"], dtype=h5py.string_dtype())
    with h5py.File(root / "run.h5", "r") as f:
        expected = {name: f[name][...] for name in ("a", "grp/b", "grp/sub/c")}
        # Variable-length strings are carried too, as NumPy strings.
        expected["names"] = np.asarray(f["names"].asstr()[...], dtype=np.dtypes.StringDType())
    cases["hdf5"] = Case(str(root / "run.h5"), expected, root / "run.h5")

    temperature = _values((8, 6, 10))
    temperature[0, 0, :3] = np.nan
    ds = xr.Dataset(
        {
            "t": (
                ("time", "lat", "lon"),
                temperature,
                {"units": "K", "valid_range": [0, 400], "scale": 0.5},
            ),
            "station": (("lat",), np.array(["a", "bb", "c", "d", "e", "f"], dtype=object)),
        },
        coords={"time": np.arange(8), "lat": np.linspace(-50, 50, 6)},
        attrs={"title": "air"},
    )
    ds["t"].encoding.update({"_FillValue": -999.0, "chunksizes": (2, 6, 5)})
    ds.to_netcdf(root / "air.nc", engine="h5netcdf")
    xr.Dataset({"p": (("x",), _values((5,)))}).to_netcdf(
        root / "air.nc", engine="h5netcdf", group="inner", mode="a"
    )
    with h5py.File(root / "air.nc", "r") as f:
        expected = {name: f[name][...] for name in ("t", "time", "lat", "inner/p")}
        expected["station"] = np.asarray(f["station"].asstr()[...], dtype=np.dtypes.StringDType())
    cases["netcdf"] = Case(str(root / "air.nc"), expected, root / "air.nc")

    pages = _values((5, 20, 30), "uint16")
    tifffile.imwrite(root / "comp.tif", pages, compression="zlib")
    cases["tiff-pages"] = Case(str(root / "comp.tif"), {"": tifffile.imread(root / "comp.tif")}, root / "comp.tif")  # fmt: skip
    tifffile.imwrite(
        root / "ij.tif",
        pages,
        imagej=True,
        resolution=(2.0, 4.0),
        metadata={"spacing": 0.5, "unit": "um", "axes": "ZYX"},
    )
    cases["tiff-imagej"] = Case(str(root / "ij.tif"), {"": tifffile.imread(root / "ij.tif")}, root / "ij.tif")  # fmt: skip
    hyper = _values((2, 3, 8, 9), "float32")
    tifffile.imwrite(
        root / "tcyx.tif",
        hyper,
        metadata={"axes": "TCYX"},
        compression="zlib",
        photometric="minisblack",
    )
    cases["tiff-tcyx"] = Case(str(root / "tcyx.tif"), {"": tifffile.imread(root / "tcyx.tif")}, root / "tcyx.tif")  # fmt: skip

    stack = root / "stack"
    stack.mkdir()
    planes = _values((11, 16, 12), "uint8")
    for i, plane in enumerate(planes):  # not zero-padded: img_10 sorts after img_9
        tifffile.imwrite(stack / f"img_{i}.tif", plane)
    cases["tiff-stack"] = Case(str(stack), {"": planes}, stack)
    cases["tiff-glob"] = Case(str(stack / "img_*.tif"), {"": planes}, stack)

    volume = _values((7, 9, 10), "float32")
    with mrcfile.new(root / "t.mrc") as m:
        m.set_data(volume)
        m.voxel_size = (1.5, 2.0, 2.5)
        m.header.origin = (10.0, 20.0, 30.0)
        m.add_label("tilt series 3")
    with mrcfile.open(root / "t.mrc") as m:
        cases["mrc"] = Case(str(root / "t.mrc"), {"": np.array(m.data)}, root / "t.mrc")

    group = zarr.open_group(root / "v3.zarr", mode="w", zarr_format=3)
    group.attrs["project"] = "tomo"
    sharded = group.create_array(
        "vol", shape=(10, 20, 30), chunks=(2, 5, 6), shards=(4, 10, 30), dtype="float32",
        fill_value=-1.5, dimension_names=("z", "y", "x"), attributes={"units": "nm"},
    )  # fmt: skip
    sharded[:] = _values((10, 20, 30))
    nested = group.create_group("a/b")
    nested.attrs["level"] = 2
    plain = nested.create_array("m", shape=(13, 7), chunks=(5, 7), dtype="int64", fill_value=3,
                                dimension_names=("row", None))  # fmt: skip
    plain[:] = _values((13, 7), "int64")
    cases["zarr-v3"] = Case(str(root / "v3.zarr"), {"vol": sharded[:], "a/b/m": plain[:]}, root / "v3.zarr")  # fmt: skip

    group2 = zarr.open_group(root / "v2.zarr", mode="w", zarr_format=2)
    legacy = group2.create_array("x", shape=(9, 8), chunks=(4, 3), dtype="uint16", fill_value=0)
    legacy[:] = _values((9, 8), "uint16")
    legacy.attrs.update({"_ARRAY_DIMENSIONS": ["y", "x"], "long_name": "counts"})
    cases["zarr-v2"] = Case(str(root / "v2.zarr"), {"x": legacy[:]}, root / "v2.zarr")

    store = zarr.storage.ZipStore(root / "z.zip", mode="w")
    zipped = zarr.create_array(store, name="g/w", shape=(12, 10), chunks=(5, 4), dtype="int32")
    zipped[:] = _values((12, 10), "int32")
    zip_values = zipped[:]
    store.close()
    cases["zarr-zip"] = Case(str(root / "z.zip"), {"g/w": zip_values}, root / "z.zip")
    return cases


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    return _build(tmp_path_factory.mktemp("sources"))


KINDS = [
    "npy",
    "npy-fortran",
    "hdf5",
    "netcdf",
    "tiff-pages",
    "tiff-imagej",
    "tiff-tcyx",
    "tiff-stack",
    "tiff-glob",
    "mrc",
    "zarr-v3",
    "zarr-v2",
    "zarr-zip",
]


def _boxes(shape: tuple[int, ...], chunks: tuple[int, ...]) -> Iterator[tuple[slice, ...]]:
    """The whole array, the last (edge) index, a box across chunk borders, one chunk."""
    yield tuple(slice(0, n) for n in shape)
    yield tuple(slice(n - 1, n) for n in shape)
    yield tuple(slice(min(1, n - 1), max(n - 1, 1)) for n in shape)
    yield tuple(slice(min(c, n - 1), min(2 * c, n)) for n, c in zip(shape, chunks, strict=True))


def _chunk_boxes(shape: tuple[int, ...], chunks: tuple[int, ...]) -> list[tuple[slice, ...]]:
    starts = np.stack(
        np.meshgrid(
            *(np.arange(0, n, c) for n, c in zip(shape, chunks, strict=True)), indexing="ij"
        ),
        axis=-1,
    ).reshape(-1, len(shape))
    return [tuple(slice(int(s), int(s) + c) for s, c in zip(row, chunks, strict=True)) for row in starts]  # fmt: skip


def _snapshot(path: Path) -> dict[str, tuple[int, bytes]]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(f): (f.stat().st_mtime_ns, f.read_bytes()) for f in files}


@pytest.mark.parametrize("kind", KINDS)
def test_boxes_match_the_native_library(cases: dict[str, Case], kind: str) -> None:
    case = cases[kind]
    with open_source(case.url) as source:
        assert sorted(a.path for a in source.arrays) == sorted(case.expected)
        for array in source.arrays:
            expected = case.expected[array.path]
            assert array.shape == expected.shape == array.data.shape
            assert array.dtype == expected.dtype == array.data.dtype
            assert array.data.ndim == expected.ndim
            assert len(array.chunks) == expected.ndim and min(array.chunks, default=1) >= 1
            json.dumps(array.attributes)
            for box in _boxes(array.shape, array.chunks):
                got = array.data[box]
                assert type(got) is np.ndarray  # never a memmap
                np.testing.assert_array_equal(got, expected[box])


@pytest.mark.parametrize("kind", KINDS)
def test_pickled_readers_reopen_their_files(cases: dict[str, Case], kind: str) -> None:
    case = cases[kind]
    with open_source(case.url) as source:
        for array in source.arrays:
            blob = pickle.dumps(array.data)
            assert len(blob) < 3000  # a file name and a path, never the data or a handle
            copy = pickle.loads(blob)
            box = next(iter(_boxes(array.shape, array.chunks)))
            np.testing.assert_array_equal(copy[box], case.expected[array.path][box])
            getattr(copy, "close", lambda: None)()


@pytest.mark.parametrize("kind", KINDS)
def test_four_threads_read_the_right_values(cases: dict[str, Case], kind: str) -> None:
    case = cases[kind]
    with open_source(case.url) as source:
        jobs = [
            (array, box)
            for array in source.arrays
            for box in _chunk_boxes(array.shape, array.chunks) * 3
        ]
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda job: job[0].data[job[1]], jobs))
    for (array, box), got in zip(jobs, results, strict=True):
        np.testing.assert_array_equal(got, case.expected[array.path][box])


@pytest.mark.parametrize("kind", KINDS)
def test_reading_leaves_the_source_unchanged(cases: dict[str, Case], kind: str) -> None:
    case = cases[kind]
    before = _snapshot(case.files)
    with open_source(case.url) as source:
        for array in source.arrays:
            array.data[tuple(slice(0, n) for n in array.shape)]
            pickle.loads(pickle.dumps(array.data))[tuple(slice(0, 1) for _ in array.shape)]
    source.close()  # idempotent
    assert _snapshot(case.files) == before


def test_a_fresh_process_reads_unpickled_readers(cases: dict[str, Case]) -> None:
    jobs: list[tuple[Any, tuple[slice, ...]]] = []
    expected = []
    sources = [open_source(cases[k].url) for k in ("hdf5", "tiff-pages", "tiff-stack", "zarr-zip")]
    for source, kind in zip(sources, ("hdf5", "tiff-pages", "tiff-stack", "zarr-zip"), strict=True):
        for array in source.arrays:
            box = tuple(slice(n // 3, n) for n in array.shape)
            jobs.append((array.data, box))
            expected.append(cases[kind].expected[array.path][box])
    try:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            results = pool.starmap(operator.getitem, jobs)
    finally:
        for source in sources:
            source.close()
    for got, want in zip(results, expected, strict=True):
        np.testing.assert_array_equal(got, want)


# --- per-kind metadata ----------------------------------------------------------------


def _by_path(source: Source) -> dict[str, SourceArray]:
    return {a.path: a for a in source.arrays}


def test_npy_reads_in_blocks_of_whole_trailing_dims(cases: dict[str, Case]) -> None:
    with open_source(cases["npy"].url) as source:
        (array,) = source.arrays
        assert (source.kind, source.is_group, source.groups, source.zarr_format) == (
            "npy", False, (), None,
        )  # fmt: skip
        assert array.path == "" and array.dims is None and array.fill_value is None
        assert array.chunks == (6, 40, 50)
        assert source.description == "NumPy file a.npy (6x40x50 float32)"
        first = array.data[(slice(0, 1),)]
        first[...] = 0  # a private copy: the next read still sees the file
        assert array.data[(slice(0, 1),)].any()


@pytest.mark.parametrize(
    ("shape", "itemsize", "chunks"),
    [
        ((100, 256, 256), 4, (64, 256, 256)),  # 256 KiB slabs, 64 of them in 16 MiB
        ((3, 4096, 4096), 4, (1, 4096, 4096)),  # one slab is already 64 MiB
        ((10, 5), 8, (10, 5)),  # the whole array is smaller than a block
        ((0, 4), 1, (1, 4)),  # zarr needs chunks of at least 1
        ((), 8, ()),
    ],
)
def test_read_block_chunks(shape: tuple[int, ...], itemsize: int, chunks: tuple[int, ...]) -> None:
    assert read_block_chunks(shape, itemsize, block_bytes=READ_BLOCK_BYTES) == chunks


def test_hdf5_tree_chunks_fill_and_attributes(cases: dict[str, Case]) -> None:
    with open_source(cases["hdf5"].url) as source:
        arrays = _by_path(source)
        assert source.kind == "hdf5" and source.is_group and source.zarr_format is None
        assert source.description == "HDF5 file run.h5 (4 datasets)"
        assert source.skipped == ()  # nothing is left out: strings are carried
        assert arrays["names"].dtype == np.dtypes.StringDType()
        assert [g.path for g in source.groups] == ["", "grp", "grp/sub"]
        groups = {g.path: g.attributes for g in source.groups}
        assert groups[""] == {"title": "run 7", "gain": 1.5}
        assert groups["grp"] == {"bytes": "abc", "list": [0, 1, 2]}
        assert arrays["a"].chunks == (4, 5, 6)
        assert arrays["grp/b"].chunks == (9, 11)  # contiguous: whole trailing dims
        # HDF5's own fill value is a storage default, not a missing value: not carried.
        assert arrays["grp/sub/c"].fill_value is None
        assert arrays["a"].dims is None  # no dimension scales
        assert arrays["a"].zarr_array is None


def test_hdf5_path_selects_a_group_or_a_dataset(cases: dict[str, Case]) -> None:
    url = cases["hdf5"].url
    with open_source(f"{url}#grp") as source:
        assert sorted(_by_path(source)) == ["b", "sub/c"]
        assert [g.path for g in source.groups] == ["", "sub"]
        assert source.groups[0].attributes["bytes"] == "abc"
    with open_source(f"{url}#/grp/sub/c") as source:
        (array,) = source.arrays
        assert (array.path, source.is_group, source.groups) == ("", False, ())
        assert source.description == "HDF5 dataset run.h5#grp/sub/c (30 float64)"
        np.testing.assert_array_equal(array.data[(slice(3, 9),)], cases["hdf5"].expected["grp/sub/c"][3:9])  # fmt: skip


def test_hdf5_dimension_scales_name_dims(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f["x"] = np.arange(4.0)
        f["x"].make_scale("x")
        f["v"] = np.zeros((3, 4))
        f["v"].dims[0].label = "row"
        f["v"].dims[1].attach_scale(f["x"])
    with open_source(tmp_path / "s.h5") as source:
        arrays = _by_path(source)
        assert arrays["v"].dims == ("row", "x")
        assert arrays["x"].dims == ("x",)
        assert arrays["x"].attributes == {}  # CLASS / NAME / REFERENCE_LIST are bookkeeping


def test_netcdf_dims_fill_value_and_attributes(cases: dict[str, Case]) -> None:
    with open_source(cases["netcdf"].url) as source:
        arrays = _by_path(source)
        assert source.kind == "netcdf" and source.is_group
        assert sorted(arrays) == ["inner/p", "lat", "station", "t", "time"]  # no "lon"
        assert source.skipped == ()
        t = arrays["t"]
        assert t.dims == ("time", "lat", "lon")
        assert t.chunks == (2, 6, 5)
        assert t.fill_value == -999.0 and type(t.fill_value) is float
        # NetCDF stores every number as a 1-D array: a single value is a scalar again
        assert t.attributes == {"units": "K", "valid_range": [0, 400], "scale": 0.5}
        assert arrays["lat"].dims == ("lat",) and arrays["inner/p"].dims == ("x",)
        groups = {g.path: g.attributes for g in source.groups}
        assert groups == {"": {"title": "air"}, "inner": {}}  # no _NCProperties
        # raw values: xarray wrote the NaNs as _FillValue, which the reader does not decode
        assert (t.data[(slice(0, 1), slice(0, 1), slice(0, 3))] == -999.0).all()


def test_tiff_series_metadata(cases: dict[str, Case]) -> None:
    with open_source(cases["tiff-imagej"].url) as source:
        (array,) = source.arrays
        assert source.kind == "tiff" and not source.is_group
        assert array.dims == ("z", "y", "x") and array.chunks == (1, 20, 30)
        assert array.attributes["spacing"] == 0.5 and array.attributes["unit"] == "um"
        assert array.attributes["resolution"] == [2.0, 4.0]
    with open_source(cases["tiff-pages"].url) as source:
        (array,) = source.arrays
        assert array.dims == ("dim_0", "y", "x")  # tifffile's "Q": an unnamed axis
        assert array.chunks == (1, 20, 30) and array.attributes == {}
        assert source.description == "TIFF file comp.tif (5x20x30 uint16, axes QYX)"
    with open_source(cases["tiff-tcyx"].url) as source:
        (array,) = source.arrays
        assert array.dims == ("t", "c", "y", "x")
        assert array.chunks == (1, 1, 8, 9)  # pages numbered over two leading dims


def test_tiff_stack_is_sorted_naturally(cases: dict[str, Case]) -> None:
    with open_source(cases["tiff-stack"].url) as source:
        (array,) = source.arrays
        assert array.shape == (11, 16, 12)
        assert array.dims == ("z", "y", "x") and array.chunks == (1, 16, 12)
        assert source.description == "TIFF stack stack (11 files, 11x16x12 uint8)"
        stack = Path(cases["tiff-stack"].url)
        np.testing.assert_array_equal(array.data[(slice(10, 11),)][0], tifffile.imread(stack / "img_10.tif"))  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_page_readers_match_numpy_for_any_box(cases: dict[str, Case], data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(["tiff-pages", "tiff-tcyx", "tiff-stack"]))
    expected = cases[kind].expected[""]
    box = tuple(
        slice(a, b)
        for a, b in (
            sorted(data.draw(st.tuples(st.integers(0, n), st.integers(0, n))))
            for n in expected.shape
        )
    )
    with open_source(cases[kind].url) as source:
        got = source.arrays[0].data[box]
    assert got.shape == expected[box].shape
    np.testing.assert_array_equal(got, expected[box])


def test_mrc_metadata(cases: dict[str, Case], tmp_path: Path) -> None:
    with open_source(cases["mrc"].url) as source:
        (array,) = source.arrays
        assert source.description == "MRC tomogram t.mrc (7x9x10 float32)"
        assert array.dims == ("z", "y", "x") and array.chunks == (7, 9, 10)
        assert array.attributes["voxel_size"] == [1.5, 2.0, 2.5]
        assert array.attributes["origin"] == [10.0, 20.0, 30.0]
        assert "tilt series 3" in array.attributes["labels"]
    with mrcfile.new(tmp_path / "i.mrc") as m:
        m.set_data(np.ones((4, 5), np.int16))
        m.header.nlabl = 0  # drop mrcfile's "Created by" label
    with open_source(tmp_path / "i.mrc") as source:
        assert source.arrays[0].dims == ("y", "x")
        assert "labels" not in source.arrays[0].attributes


def test_zarr_v3_group_sharding_dims_and_fill(cases: dict[str, Case]) -> None:
    with open_source(cases["zarr-v3"].url) as source:
        arrays = _by_path(source)
        assert (source.kind, source.zarr_format, source.is_group) == ("zarr", 3, True)
        assert source.description == "Zarr v3 group v3.zarr (2 arrays)"
        assert [g.path for g in source.groups] == ["", "a", "a/b"]
        assert source.groups[0].attributes == {"project": "tomo"}
        assert source.groups[2].attributes == {"level": 2}
        vol = arrays["vol"]
        assert vol.chunks == (2, 5, 6)  # the inner chunks, not the shards (4, 10, 30)
        assert vol.dims == ("z", "y", "x") and vol.attributes == {"units": "nm"}
        assert vol.fill_value == -1.5 and type(vol.fill_value) is float
        assert isinstance(vol.zarr_array, zarr.Array) and vol.zarr_array.shards == (4, 10, 30)
        m = arrays["a/b/m"]
        assert m.dims is None and m.fill_value == 3 and type(m.fill_value) is int
    with open_source(cases["zarr-v3"].url + "#a/b/m") as source:
        assert (source.arrays[0].path, source.is_group, source.groups) == ("", False, ())


def test_zarr_v2_dims_come_from_array_dimensions(cases: dict[str, Case]) -> None:
    with open_source(cases["zarr-v2"].url) as source:
        x = _by_path(source)["x"]
        assert source.zarr_format == 2
        assert x.dims == ("y", "x") and x.attributes == {"long_name": "counts"}
        assert x.chunks == (4, 3) and x.fill_value == 0


def test_zarr_zip_store_opens_read_only(cases: dict[str, Case]) -> None:
    url = cases["zarr-zip"].url
    with open_source(url) as source, open_source(f"zip://{url}#g") as inner:
        assert source.arrays[0].zarr_array.store.read_only
        assert [a.path for a in inner.arrays] == ["w"]


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gone.h5", "gone.nc", "gone.tif", "gone.mrc", "gone.npy", "gone.zarr"])  # fmt: skip
def test_a_missing_source_says_so(tmp_path: Path, name: str) -> None:
    with pytest.raises(SpecError, match=r"source '.*gone.*' does not exist; check the path"):
        open_source(tmp_path / name)


def test_a_missing_inner_path_lists_what_exists(cases: dict[str, Case]) -> None:
    with pytest.raises(SpecError, match=r"no dataset or group 'nope'; it has 'a', 'grp'"):
        open_source(cases["hdf5"].url + "#nope")
    with pytest.raises(SpecError, match=r"no variable or group 'nope'; it has .*'t'"):
        open_source(cases["netcdf"].url + "#nope")
    with pytest.raises(SpecError, match=r"no array or group 'nope'; it has 'a', .*'vol'"):
        open_source(cases["zarr-v3"].url + "#nope")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.h5", b"not hdf5 at all" * 10, r"is not an HDF5 file"),
        ("cut.nc", b"CDF\x01\xff\xff\xff\xffgarbage", r"not a readable NetCDF-3 \(classic\) file"),
        ("empty.nc", b"CDF\x01" + b"\x00" * 28, r"'.*empty.nc' has no variables to convert"),
        ("bad.tif", b"garbage", r"'bad.tif' is not a readable TIFF file"),
        ("cut.tif", b"II*\x00garbage", r"'cut.tif' holds no readable image"),
        ("bad.mrc", b"short", r"is not a readable MRC file"),
        ("bad.npy", b"\x93NUMPY garbage", r"is not a readable .npy array"),
        ("bad.zip", b"garbage", r"'.*bad.zip' is neither a Zarr array nor a Zarr group"),
    ],
)
def test_a_file_that_is_not_its_kind(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(SpecError, match=message):
        open_source(tmp_path / name)


def test_a_truncated_mrc_is_refused(cases: dict[str, Case], tmp_path: Path) -> None:
    whole = Path(cases["mrc"].url).read_bytes()
    (tmp_path / "cut.mrc").write_bytes(whole[:-100])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the reader keeps mrcfile's warnings to itself
        with pytest.raises(SpecError, match=r"'.*cut.mrc' is not a readable MRC file"):
            open_source(tmp_path / "cut.mrc")


def test_sources_without_convertible_arrays(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("values", data=np.arange(3))
        f.create_dataset("refs", data=[f["values"].ref], dtype=h5py.ref_dtype)
    # Nothing is dropped silently: a dataset Zarr cannot hold stops the whole file.
    with pytest.raises(
        SpecError,
        match=r"dataset 'refs' of '.*s.h5' holds HDF5 object references, which Zarr cannot "
        r"store; leave it out with --skip refs, or convert the other ones by naming each",
    ):
        open_source(tmp_path / "s.h5")
    with open_source(tmp_path / "s.h5", skip=["refs"]) as source:  # said, not silent
        assert [a.path for a in source.arrays] == ["values"]
        assert source.skipped == ("refs (--skip; it holds HDF5 object references)",)
    with pytest.raises(SpecError, match=r"dataset 'refs' .* which Zarr cannot store\.$"):
        open_source(f"{tmp_path / 's.h5'}#refs")
    zarr.open_group(tmp_path / "empty.zarr", mode="w")
    with pytest.raises(SpecError, match=r"Zarr group with no arrays"):
        open_source(tmp_path / "empty.zarr")
    (tmp_path / "plain").mkdir()
    with pytest.raises(SpecError, match=r"'.*plain' is neither a Zarr array nor a Zarr group"):
        open_source(tmp_path / "plain")
    np.save(tmp_path / "o.npy", np.array(["a"], dtype=object), allow_pickle=True)
    with pytest.raises(SpecError, match=r"'.*o.npy' is not a readable .npy array"):
        open_source(tmp_path / "o.npy")


def test_a_tiff_stack_must_be_uniform(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "p1.tif", np.zeros((4, 5), np.uint8))
    tifffile.imwrite(tmp_path / "p2.tif", np.zeros((4, 6), np.uint8))
    with pytest.raises(SpecError, match=r"'p2.tif' is 4x6 uint8 but 'p1.tif' is 4x5 uint8"):
        open_source(tmp_path)
    with pytest.raises(SpecError, match=r"matches no files"):
        open_source(tmp_path / "q*.tif")


def test_a_missing_hdf5_filter_is_named(
    cases: dict[str, Case], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(h5py.h5z, "filter_avail", lambda code: False)
    with pytest.raises(SpecError, match=r"HDF5 filter 1, which is not installed.*hdf5plugin"):
        open_source(cases["hdf5"].url + "#a")


def test_remote_files_other_than_zarr_are_refused() -> None:
    with pytest.raises(SpecError, match=r"'s3://bucket/run.h5' is a remote hdf5 file"):
        open_source("s3://bucket/run.h5")


@pytest.mark.parametrize(
    ("module", "kind", "extra"),
    [("h5py", "hdf5", "hdf5"), ("h5py", "netcdf", "hdf5"), ("tifffile", "tiff-pages", "tiff"),
     ("tifffile", "tiff-stack", "tiff"), ("mrcfile", "mrc", "mrc")],
)  # fmt: skip
def test_a_missing_package_names_the_extra(
    cases: dict[str, Case], monkeypatch: pytest.MonkeyPatch, module: str, kind: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(
        MissingDependencyError, match=rf"needs the {module} package.*chunkwise\[{extra}\]"
    ):
        open_source(cases[kind].url)


def test_a_hash_in_a_file_name_is_not_a_path(tmp_path: Path) -> None:
    np.save(tmp_path / "run#1.npy", np.arange(3))
    with open_source(tmp_path / "run#1.npy") as source:
        np.testing.assert_array_equal(source.arrays[0].data[(slice(0, 3),)], np.arange(3))


def test_a_series_whose_pages_do_not_tile_is_read_whole(cases: dict[str, Case]) -> None:
    from chunkwise.io.sources.readers import _TiffWholeReader

    expected = cases["tiff-pages"].expected[""]
    reader = _TiffWholeReader(cases["tiff-pages"].url, expected.shape, expected.dtype)
    box = (slice(1, 4), slice(3, 20), slice(0, 7))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(reader))[box], expected[box])
