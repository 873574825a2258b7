"""``bench --data`` takes every source ``convert`` takes: NetCDF, HDF5, TIFF, MRC, read
lazily, indexed exactly as NumPy indexes the same values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chunkwise.errors import SpecError
from chunkwise.io.sources.data import load_data

xr = pytest.importorskip("xarray")
tifffile = pytest.importorskip("tifffile")
mrcfile = pytest.importorskip("mrcfile")

VALUES = np.arange(6 * 10 * 12, dtype="float32").reshape(6, 10, 12)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    xr.Dataset(
        {"tas": (("time", "y", "x"), VALUES), "orog": (("y", "x"), VALUES[0])},
        coords={"time": np.arange(6)},
    ).to_netcdf(root / "one.nc", engine="h5netcdf")
    xr.Dataset(
        {"tas": (("time", "y", "x"), VALUES), "pr": (("time", "y", "x"), VALUES * 2)}
    ).to_netcdf(root / "two.nc", engine="h5netcdf")
    tifffile.imwrite(root / "v.tif", VALUES)
    with mrcfile.new(root / "v.mrc") as mrc:
        mrc.set_data(VALUES)
    return {"nc": root / "one.nc", "two": root / "two.nc", "tif": root / "v.tif",
            "mrc": root / "v.mrc"}  # fmt: skip


@pytest.mark.parametrize("kind", ["nc", "tif", "mrc"])
def test_files_convert_reads_are_bench_data(files: dict[str, Path], kind: str) -> None:
    data = load_data(str(files[kind]), region="y=2:7")
    np.testing.assert_array_equal(data.values, VALUES[:, 2:7])
    if kind == "nc":
        assert data.dims == ("time", "y", "x")  # the variable of the most dims


def test_a_file_of_several_arrays_names_them(files: dict[str, Path]) -> None:
    with pytest.raises(SpecError, match=r"holds 2 numeric arrays of 3 dims; pick one: .*two.nc#"):
        load_data(str(files["two"]))
    data = load_data(f"{files['two']}#pr")
    np.testing.assert_array_equal(data.values[1:3, :, 4], VALUES[1:3, :, 4] * 2)


index = st.one_of(
    st.integers(-6, 5),
    st.builds(slice, st.integers(0, 6) | st.none(), st.integers(0, 6) | st.none()),
)


@settings(max_examples=50, deadline=None)
@given(items=st.lists(index, min_size=0, max_size=3))  # ints, slices, open ends
def test_lazy_reads_index_as_numpy_does(files: dict[str, Path], items: list[object]) -> None:
    """Before a region is cut, the file is read lazily, box by box, NumPy-style."""
    from chunkwise.io.sources.data import _file

    data = _file(str(files["mrc"]))
    key = tuple(items)
    try:
        np.testing.assert_array_equal(data.values[key], VALUES[key])  # type: ignore[index]
    finally:
        data.values.close()  # type: ignore[attr-defined]
