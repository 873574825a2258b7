"""Real CF files converted to Zarr read back in xarray exactly as xarray reads the source.

The corpus is nobody's synthetic data: every NetCDF file that ships in the
``iris-sample-data`` wheel (Met Office model output on 360-day calendars, OSTIA, NEMO, a
UGRID mesh in NetCDF-3, rotated-pole and stereographic grids with 0-d grid mappings,
variable-length strings), plus NetCDF-3 and packed files written here by the netCDF-C
library (netCDF4) and by scipy, two writers independent of the readers chunkwise uses.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chunkwise

xr = pytest.importorskip("xarray")
iris_sample_data = pytest.importorskip("iris_sample_data")
netCDF4 = pytest.importorskip("netCDF4")

SAMPLES = Path(iris_sample_data.__file__).parent / "sample_data"
IRIS_FILES = sorted(SAMPLES.rglob("*.nc"))


def _written(tmp: Path) -> dict[str, Path]:
    """NetCDF files written by netCDF-C and scipy: NetCDF-3 flavours, packed values, a
    record (unlimited) dimension, char text, a non-standard calendar."""
    files: dict[str, Path] = {}
    for fmt in ("NETCDF3_CLASSIC", "NETCDF3_64BIT_OFFSET", "NETCDF3_64BIT_DATA", "NETCDF4"):
        path = tmp / f"packed-{fmt.lower()}.nc"
        with netCDF4.Dataset(path, "w", format=fmt) as nc:
            nc.Conventions = "CF-1.8"
            nc.createDimension("time", None)  # a record dimension
            nc.createDimension("lat", 6)
            nc.createDimension("lon", 8)
            nc.createDimension("nchar", 5)
            time = nc.createVariable("time", "f8", ("time",))
            time.units = "days since 2000-01-01"
            time.calendar = "360_day"
            time[:] = np.arange(10) * 30.0
            lat = nc.createVariable("lat", "f4", ("lat",))
            lat.units = "degrees_north"
            lat[:] = np.linspace(-50, 50, 6)
            tas = nc.createVariable("tas", "i2", ("time", "lat", "lon"), fill_value=-32767)
            tas.scale_factor = 0.01
            tas.add_offset = 273.15
            tas.units = "K"
            tas.grid_mapping = "crs"
            tas.set_auto_maskandscale(False)
            raw = np.arange(10 * 6 * 8, dtype="i2").reshape(10, 6, 8)
            raw[0, 0, :2] = -32767  # missing
            tas[:] = raw
            crs = nc.createVariable("crs", "i4", ())
            crs.grid_mapping_name = "latitude_longitude"
            name = nc.createVariable("station", "S1", ("lat", "nchar"))
            name[:] = netCDF4.stringtochar(np.array(["a", "bb", "ccc", "d", "e", "f"], "S5"))
        files[fmt] = path
    path = tmp / "scipy-classic.nc"
    xr.Dataset(
        {"pr": (("time", "x"), np.arange(12.0).reshape(4, 3), {"units": "mm"})},
        coords={"time": ("time", np.arange(4), {"units": "hours since 1990-01-01"})},
        attrs={"source": "scipy"},
    ).to_netcdf(path, engine="scipy")
    files["scipy"] = path
    path = tmp / "cf.h5"  # HDF5 that follows CF: read like NetCDF
    xr.Dataset(
        {"v": (("y", "x"), np.arange(6.0).reshape(2, 3))}, attrs={"Conventions": "CF-1.8"}
    ).to_netcdf(path, engine="h5netcdf")
    files["cf-hdf5"] = path
    return files


def _without_record(ds: Any) -> Any:
    """A dataset without chunkwise's own attribute."""
    ds = ds.copy()
    ds.attrs.pop("chunkwise", None)
    for variable in ds.variables.values():
        variable.attrs.pop("chunkwise", None)
    return ds


def _check(source: Path, target: Path) -> None:
    with xr.open_dataset(source) as want, xr.open_zarr(target) as got:
        xr.testing.assert_identical(_without_record(got.load()), want.load())
    with (
        xr.open_dataset(source, decode_cf=False) as raw,
        xr.open_zarr(target, decode_cf=False) as stored,
    ):
        for name, variable in raw.variables.items():
            kept = stored.variables[name]
            # packed stays packed, times stay numbers: never inflated
            if variable.dtype.kind in "biufcS":
                assert kept.dtype == variable.dtype, name
            for key in ("scale_factor", "add_offset", "units", "calendar", "missing_value"):
                if key in variable.attrs:
                    np.testing.assert_array_equal(kept.attrs[key], variable.attrs[key])


@pytest.mark.parametrize("path", IRIS_FILES, ids=[p.name for p in IRIS_FILES])
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_every_iris_sample_file_converts_and_reads_back_identical(
    tmp_path: Path, path: Path, zarr_format: int
) -> None:
    target = tmp_path / "out.zarr"
    result = chunkwise.convert(
        path, target, zarr_format=zarr_format, workload="time-series", storage="s3"
    )
    assert not result.plan.skipped  # type: ignore[union-attr]
    _check(path, target)


def test_the_corpus_is_the_whole_sample_set() -> None:
    """12 files ship in iris-sample-data 2.5 (the NEMO series holds 3): none is left out."""
    assert len(IRIS_FILES) >= 12
    assert {"mesh_C4_synthetic_float.nc", "space_weather.nc", "vlstr_type.nc"} <= {
        p.name for p in IRIS_FILES
    }


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_netcdf3_packed_records_chars_and_calendars(tmp_path: Path, zarr_format: int) -> None:
    for name, path in _written(tmp_path).items():
        target = tmp_path / f"{name}.v{zarr_format}.zarr"
        chunkwise.convert(path, target, zarr_format=zarr_format)
        _check(path, target)
        if name.startswith("NETCDF"):
            with xr.open_zarr(target) as ds:
                assert ds["tas"].encoding["dtype"] == np.dtype("int16")  # still packed
                assert np.isnan(ds["tas"].values[0, 0, :2]).all()  # still masked
                assert ds["time"].dt.calendar == "360_day"
                assert ds["crs"].ndim == 0 and ds["crs"].attrs["grid_mapping_name"]


def test_netcdf3_is_described_by_its_flavour(tmp_path: Path) -> None:
    files = _written(tmp_path)
    plan = chunkwise.convert(files["NETCDF3_CLASSIC"], tmp_path / "a.zarr", dry_run=True)
    assert "NetCDF-3 (classic) file packed-netcdf3_classic.nc (5 variables)" in "\n".join(
        plan.describe()  # type: ignore[union-attr]
    )
    plan = chunkwise.convert(files["cf-hdf5"], tmp_path / "b.zarr", dry_run=True)
    assert "CF HDF5 file cf.h5" in "\n".join(plan.describe())  # type: ignore[union-attr]


def test_netcdf3_under_an_hdf5_name_is_read_as_netcdf(tmp_path: Path) -> None:
    files = _written(tmp_path)
    renamed = tmp_path / "classic.h5"
    renamed.write_bytes(files["NETCDF3_CLASSIC"].read_bytes())
    chunkwise.convert(renamed, tmp_path / "r.zarr", zarr_format=2)
    _check(files["NETCDF3_CLASSIC"], tmp_path / "r.zarr")


def test_one_variable_of_a_netcdf3_file(tmp_path: Path) -> None:
    path = _written(tmp_path)["NETCDF3_64BIT_OFFSET"]
    chunkwise.convert(f"{path}#tas", tmp_path / "tas.zarr", zarr_format=2)
    with xr.open_dataset(path, decode_cf=False) as raw:
        import zarr

        stored = zarr.open_array(tmp_path / "tas.zarr", mode="r")
        np.testing.assert_array_equal(stored[...], raw["tas"].values)
        assert stored.attrs["scale_factor"] == 0.01
    with pytest.raises(chunkwise.SpecError, match=r"no variable or group 'nope'; it has"):
        chunkwise.convert(f"{path}#nope", tmp_path / "x.zarr", dry_run=True)


def test_sample_files_are_read_lazily(tmp_path: Path) -> None:
    """Reading a box of a NetCDF-4 variable reads that box, not the variable (xarray's
    lazy indexing): a 1-element box of a large variable returns 1 element."""
    from chunkwise.io.sources.readers import open_source

    path = tmp_path / "big.nc"
    xr.Dataset({"v": (("t", "y", "x"), np.zeros((64, 256, 256), "f4"))}).to_netcdf(
        path, engine="h5netcdf", encoding={"v": {"chunksizes": (8, 64, 64), "zlib": True}}
    )
    with open_source(path) as source:
        (v,) = source.arrays
        assert v.chunks == (8, 64, 64) and not v.flexible
        assert v.data[(slice(0, 1), slice(0, 1), slice(0, 1))].shape == (1, 1, 1)
    assert os.path.getsize(path) < 64 * 256 * 256 * 4
