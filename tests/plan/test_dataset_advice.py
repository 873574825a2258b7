"""One ``advise`` for a whole dataset: a layout per variable, with its reason, and an
``encoding=`` that xarray's own ``to_zarr`` writes and reads back unchanged."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chunkwise
from chunkwise.model.dataset import DatasetSpec, VariableSpec, coordinate_names, workload_for
from chunkwise.plan.dataset import DatasetAdvice

xr = pytest.importorskip("xarray")
da = pytest.importorskip("dask.array")


def _climate(times: int = 240) -> object:
    """Two data variables (float32 and float64) over time, lat, lon; a 2-D one without
    time; coordinates with CF bounds and a grid mapping."""
    rng = np.random.default_rng(1)
    shape = (times, 45, 90)
    lat = np.linspace(-88, 88, 45)
    return xr.Dataset(
        {
            "tas": (
                ("time", "lat", "lon"),
                rng.random(shape, "f4"),
                {"units": "K", "grid_mapping": "crs"},
            ),
            "pr": (("time", "lat", "lon"), rng.random(shape), {"units": "mm"}),
            "orog": (("lat", "lon"), rng.random((45, 90), "f4")),
            "crs": ((), 0, {"grid_mapping_name": "latitude_longitude"}),
            "lat_bnds": (("lat", "nv"), np.stack([lat - 2, lat + 2], axis=1)),
        },
        coords={
            "time": np.datetime64("2000-01-01") + np.arange(times).astype("timedelta64[D]"),
            "lat": ("lat", lat, {"bounds": "lat_bnds"}),
            "lon": np.linspace(0, 356, 90),
        },
        attrs={"title": "two variables"},
    )


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_to_encoding_round_trips_through_xarray_to_zarr(tmp_path: Path, zarr_format: int) -> None:
    ds = _climate()
    advice = chunkwise.advise(
        ds, workload="time-series", storage="s3", constraints={"zarr_format": zarr_format}
    )
    assert isinstance(advice, DatasetAdvice) and advice.zarr_format == zarr_format
    ds.to_zarr(tmp_path / "d.zarr", encoding=advice.to_encoding(), zarr_format=zarr_format)
    with xr.open_zarr(tmp_path / "d.zarr") as back:
        xr.testing.assert_identical(back.load(), ds)
        for name, layout in advice.layouts.items():
            if back[name].ndim:
                assert back[name].encoding["chunks"] == layout.chunks, name
    # a time series reads whole time: the data variables are not cut along time
    assert advice.layouts["tas"].chunks[0] == 240
    assert advice.layouts["tas"].chunks == advice.layouts["pr"].chunks  # read together
    assert advice.layouts["lat"].chunks == (45,)  # a coordinate, whole


def test_shards_in_the_encoding_round_trip(tmp_path: Path) -> None:
    ds = _climate(times=64)
    advice = chunkwise.advise(
        ds, workload="slice-viewer", storage="local-ssd", constraints={"max_objects": 8}
    )
    assert advice.layouts["pr"].shards is not None  # 64 single planes in at most 8 objects
    ds.to_zarr(tmp_path / "s.zarr", encoding=advice.to_encoding(), zarr_format=3)
    with xr.open_zarr(tmp_path / "s.zarr") as back:
        xr.testing.assert_identical(back.load(), ds)
        assert back["pr"].encoding["shards"] == advice.layouts["pr"].shards


def test_every_variable_has_a_reason_and_the_repr_is_plain_text() -> None:
    advice = chunkwise.advise(_climate(), workload="time-series", storage="s3")
    reasons = {v.name: v.reason for v in advice.variables}
    assert set(reasons) == {"tas", "pr", "orog", "crs", "lat_bnds", "time", "lat", "lon"}
    assert reasons["crs"] == "a scalar: one chunk"
    assert reasons["lat_bnds"].startswith("a coordinate: stored whole")  # CF bounds
    assert "with pr's chunks (same dims, read together)" in reasons["tas"]
    text = repr(advice)
    assert text.startswith("Advice for a dataset of 8 variables")
    assert not re.search(r"object at 0x|VariableAdvice\(", text)  # not a dataclass dump
    assert "<table>" in advice._repr_html_() and "tas" in advice._repr_html_()
    assert advice.best.layout == advice.layouts["pr"]  # the largest advised variable


def test_ops_name_the_variables_they_read() -> None:
    workload = [{"op": "series", "dim": "time", "variables": ["tas"]}]
    advice = chunkwise.advise(_climate(), workload=workload, storage="s3")
    assert advice["tas"].layout.chunks[0] == 240
    assert advice["pr"].reason.startswith("no operation of the workload reads it")
    assert advice["pr"].advice is not None and advice["pr"].advice.workload.preset == "archival"
    with pytest.raises(chunkwise.SpecError, match=r"names variable\(s\) 'rain', which the "):
        chunkwise.advise(
            _climate(), workload=[{"op": "series", "dim": "time", "variables": ["rain"]}]
        )
    with pytest.raises(chunkwise.SpecError, match=r"variables 3 must be a variable name"):
        chunkwise.advise(_climate(), workload=[{"op": "scan", "variables": 3}])


def test_arrays_and_dataarrays_take_their_shape_dtype_and_dims() -> None:
    volume = np.zeros((64, 128, 128), "uint16")
    advice = chunkwise.advise(volume, workload="slice-viewer", dims=["z", "y", "x"])
    assert list(advice.layouts) == ["data"]
    assert advice["data"].variable.dims == ("z", "y", "x")
    assert advice.best.layout.chunks[0] == 1  # a viewer reads single planes
    lazy = da.zeros((64, 128, 128), "uint16", chunks=(16, 128, 128))
    assert chunkwise.advise(lazy, workload="slice-viewer").layouts["data"] == advice.layouts["data"]
    named = xr.DataArray(volume, dims=("z", "y", "x"), name="em")
    assert list(chunkwise.advise(named, workload="slice-viewer").layouts) == ["em"]


def test_bad_calls_get_one_sentence() -> None:
    with pytest.raises(chunkwise.SpecError, match=r"advise\(data\) needs workload="):
        chunkwise.advise(np.zeros((4, 4)))
    with pytest.raises(chunkwise.SpecError, match=r"gives the array twice"):
        chunkwise.advise(np.zeros((4, 4)), array={"shape": [4, 4]}, workload="roi")
    with pytest.raises(chunkwise.SpecError, match=r"dims \['a'\] has 1 names but the array"):
        chunkwise.advise(np.zeros((4, 4)), dims=["a"], workload="roi")
    named = xr.DataArray(np.zeros((4, 4)), dims=("y", "x"))
    with pytest.raises(chunkwise.SpecError, match=r"dims \['z', 'y', 'x'\] has 3 names"):
        chunkwise.advise(named, dims=["z", "y", "x"], workload="roi")
    with pytest.raises(chunkwise.SpecError, match=r"dimension 'x' has 3 elements in 'b' but 4"):
        DatasetSpec.create(
            [
                VariableSpec.create("a", (4,), "f4", ("x",), "data"),
                VariableSpec.create("b", (3,), "f4", ("x",), "data"),
            ]
        )


def test_coordinates_by_cf_attributes() -> None:
    variables = {
        "tas": (("y", "x"), {"coordinates": "lat lon", "grid_mapping": "crs: y x"}),
        "lat": (("y", "x"), {"bounds": "lat_b"}),
        "lon": (("y", "x"), {}),
        "lat_b": (("y", "x", "nv"), {}),
        "crs": ((), {}),
        "x": (("x",), {}),
        "pr": (("y", "x"), {"ancillary_variables": "pr_flag"}),
        "pr_flag": (("y", "x"), {}),
    }
    assert coordinate_names(variables) == {"lat", "lon", "lat_b", "crs", "x", "pr_flag"}


@settings(max_examples=60, deadline=None)
@given(
    ops=st.lists(
        st.fixed_dictionaries(
            {"op": st.just("scan")},
            optional={"variables": st.lists(st.sampled_from("abc"), min_size=1, max_size=3)},
        ),
        min_size=1,
        max_size=5,
    ),
    name=st.sampled_from("abc"),
)
def test_workload_for_keeps_exactly_the_ops_that_read_the_variable(
    ops: list[dict[str, object]], name: str
) -> None:
    kept = workload_for(ops, name, "abc")
    expected = [op for op in ops if "variables" not in op or name in op["variables"]]  # type: ignore[operator]
    assert kept == [{k: v for k, v in op.items() if k != "variables"} for op in expected]
