"""Datasets through convert and rechunk: xarray objects as sources, a layout per variable
from one workload, stores that stay xarray datasets, and nothing the user said dropped."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

import chunkwise
from chunkwise.cli.main import cli

xr = pytest.importorskip("xarray")
da = pytest.importorskip("dask.array")


def _dataset(times: int = 120) -> object:
    rng = np.random.default_rng(3)
    return xr.Dataset(
        {
            "tas": (("time", "lat", "lon"), rng.random((times, 30, 40), "f4"), {"units": "K"}),
            "pr": (("time", "lat", "lon"), rng.random((times, 30, 40)), {"units": "mm"}),
            "crs": ((), 0, {"grid_mapping_name": "latitude_longitude"}),
            "station": (("lat",), np.array([f"s{i}" for i in range(30)], dtype=object)),
        },
        coords={
            "time": np.datetime64("1990-01-01") + np.arange(times).astype("timedelta64[D]"),
            "lat": np.linspace(-60, 60, 30),
            "lon": np.linspace(0, 351, 40),
        },
        attrs={"title": "test"},
    )


def _plain(ds: object) -> object:
    ds = ds.copy()  # type: ignore[attr-defined]
    ds.attrs.pop("chunkwise", None)
    return ds


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_a_dataset_object_converts_with_a_layout_per_variable(
    tmp_path: Path, zarr_format: int
) -> None:
    ds = _dataset()
    result = chunkwise.convert(
        ds, tmp_path / "o.zarr", workload="time-series", storage="s3", zarr_format=zarr_format
    )
    with xr.open_zarr(tmp_path / "o.zarr") as back:
        xr.testing.assert_identical(_plain(back.load()), ds)
        assert back["tas"].encoding["chunks"][0] == 120  # a series reads all of time
        assert back["tas"].encoding["chunks"] == back["pr"].encoding["chunks"]
        assert back["lat"].encoding["chunks"] == (30,)
    lines = result.summary()  # type: ignore[union-attr]
    assert any(
        line.startswith("not advised for time-series: lat, lon, time (a coordinate: stored whole")
        for line in lines
    ), lines
    assert any("crs" in line and "scalar" in line for line in lines if "not advised" in line)
    # consolidated, as xarray writes groups
    assert zarr.open_group(tmp_path / "o.zarr", mode="r").metadata.consolidated_metadata


def test_different_data_never_resumes_a_target(tmp_path: Path) -> None:
    one, two = _dataset(), _dataset()
    two["tas"][0, 0, 0] = -1.0
    plan_one = chunkwise.convert(one, tmp_path / "x.zarr", dry_run=True)
    plan_two = chunkwise.convert(two, tmp_path / "x.zarr", dry_run=True)
    assert plan_one.fingerprint() != plan_two.fingerprint()  # type: ignore[union-attr]


def test_a_dataset_is_never_written_over_its_own_file(tmp_path: Path) -> None:
    _dataset().to_netcdf(tmp_path / "d.nc", engine="h5netcdf")
    with (
        xr.open_dataset(tmp_path / "d.nc", engine="h5netcdf") as ds,
        pytest.raises(chunkwise.SpecError, match=r"overlaps the source"),
    ):
        chunkwise.convert(ds, tmp_path / "d.nc" / "out.zarr", dry_run=True)


WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np, xarray as xr, dask.array as da, zarr
    import chunkwise

    out = sys.argv[1]
    zarr.create_array(out + "/warm.zarr", data=np.ones((4, 8, 8), "float32"), chunks=(1, 8, 8))
    chunkwise.rechunk(out + "/warm.zarr", out + "/warm-out.zarr", chunks=(4, 2, 2))
    rng = da.random.default_rng(11)
    shape, chunks = (256, 256, 512), (16, 256, 512)  # two variables of 128 and 256 MiB
    ds = xr.Dataset(
        {"tas": (("time", "y", "x"), rng.random(shape, dtype="f4", chunks=chunks)),
         "pr": (("time", "y", "x"), rng.random(shape, chunks=chunks))},
        coords={"time": np.arange(256), "y": np.arange(256), "x": np.arange(512)},
    )
    result = chunkwise.convert(ds, out + "/big.zarr", workload="spatial",
                               storage="local-ssd", max_mem="128MiB")
    back = zarr.open_group(out + "/big.zarr", mode="r")
    same = all(  # slab by slab: comparing whole Dask arrays of other chunks would not fit
        np.array_equal(back[name][t:t + 16], ds[name][t:t + 16].values)
        for name in ("tas", "pr") for t in range(0, 256, 16)
    )
    print(json.dumps({"added": result.peak_added, "projected": result.plan.peak_memory,
                      "budget": result.plan.max_mem, "same": same,
                      "bytes": sum(j.nbytes for j in result.plan.jobs)}))
    """
)


def test_a_lazy_dataset_larger_than_the_budget_converts_within_it(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(tmp_path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["bytes"] > 3 * report["budget"]  # 384 MiB of data, a 128 MiB budget
    assert report["projected"] <= report["budget"]
    assert report["added"] <= report["budget"], report  # measured, not projected
    assert report["same"]


def test_a_spec_files_zarr_format_is_kept(tmp_path: Path) -> None:
    """A workload spec's constraints travel whole: zarr_format 2 is not replaced by 3."""
    source = tmp_path / "d.nc"
    _dataset().to_netcdf(source, engine="h5netcdf")
    spec = tmp_path / "w.yaml"
    spec.write_text(
        "workload: [{op: series, dim: time, variables: [tas]}]\n"
        "constraints: {zarr_format: 2, max_objects: 400}\n"
    )
    result = chunkwise.convert(source, tmp_path / "o.zarr", workload=str(spec))
    assert result.plan.zarr_format == 2  # type: ignore[union-attr]
    assert zarr.open_group(tmp_path / "o.zarr", mode="r").metadata.zarr_format == 2
    decisions = {job.path: job.decision for job in result.plan.jobs}  # type: ignore[union-attr]
    assert decisions["tas"]["reason"] == "advised for the workload"
    assert decisions["pr"]["reason"].startswith("no operation of the workload reads it")
    with pytest.raises(chunkwise.SpecError, match=r"--zarr-format 3 contradicts the constraint"):
        chunkwise.convert(source, tmp_path / "p.zarr", workload=str(spec), zarr_format=3)


def test_options_that_cannot_apply_are_errors(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.zeros((8, 8, 8), "f4"))
    with pytest.raises(chunkwise.SpecError, match=r"--shards 4,4,4 needs --chunks, the chunks"):
        chunkwise.convert(tmp_path / "a.npy", tmp_path / "o.zarr", shards=(4, 4, 4))
    with pytest.raises(chunkwise.SpecError, match=r"--shards needs zarr format 3"):
        chunkwise.convert(
            tmp_path / "a.npy", tmp_path / "o.zarr", chunks=(2, 2, 2), shards=(4, 4, 4),
            zarr_format=2,
        )  # fmt: skip


def test_skip_leaves_a_variable_out_and_says_so(tmp_path: Path) -> None:
    source = tmp_path / "d.nc"
    _dataset().to_netcdf(source, engine="h5netcdf")
    result = chunkwise.convert(source, tmp_path / "o.zarr", skip=["pr"])
    assert "not copied: pr (--skip)" in result.summary()  # type: ignore[union-attr]
    with xr.open_zarr(tmp_path / "o.zarr") as back:
        assert "pr" not in back and "tas" in back
    with pytest.raises(chunkwise.SpecError, match=r"--skip 'rain': the source has no such"):
        chunkwise.convert(source, tmp_path / "p.zarr", skip=["rain"])


def test_dims_name_the_dims_of_a_source_without_them(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.arange(4 * 6 * 8, dtype="u2").reshape(4, 6, 8))
    runner = CliRunner()
    done = runner.invoke(
        cli, ["convert", str(tmp_path / "v.npy"), str(tmp_path / "v.zarr"), "--dims", "z,y,x"]
    )
    assert done.exit_code == 0, done.output
    assert zarr.open_array(tmp_path / "v.zarr", mode="r").metadata.dimension_names == (
        "z", "y", "x",
    )  # fmt: skip
    bad = runner.invoke(
        cli, ["convert", str(tmp_path / "v.npy"), str(tmp_path / "w.zarr"), "--dims", "y,x"]
    )
    assert bad.exit_code == 2
    assert "--dims y,x must give 3 different names, one per dim" in bad.output


def test_rechunk_of_an_xarray_store_keeps_it_a_dataset(tmp_path: Path) -> None:
    ds = _dataset()
    for fmt in (2, 3):
        store = tmp_path / f"x{fmt}.zarr"
        ds.to_zarr(store, zarr_format=fmt)
        chunkwise.rechunk(store, tmp_path / f"r{fmt}.zarr", workload="time-series")
        with xr.open_zarr(tmp_path / f"r{fmt}.zarr") as back:
            xr.testing.assert_identical(_plain(back.load()), ds)
            assert back["tas"].encoding["chunks"][0] == 120


def test_advise_data_reads_a_netcdf_file(tmp_path: Path) -> None:
    source = tmp_path / "d.nc"
    _dataset().to_netcdf(source, engine="h5netcdf")
    runner = CliRunner()
    done = runner.invoke(cli, ["advise", "--data", str(source), "--workload", "time-series",
                               "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    variables = json.loads(done.output)["variables"]
    assert variables["tas"]["chunks"][0] == 120 and variables["lat"]["role"] == "coordinate"
    done = runner.invoke(cli, ["advise", "--data", f"{source}#tas", "--workload", "time-series"])
    assert done.exit_code == 0, done.output
    assert '"tas": {' in done.output and 'store="tas.zarr"' in done.output
    code = done.output[done.output.index("# zarr-python") :]
    assert not set("│╭╮╰╯─") & set(code)  # copyable: no box drawing inside the code


def test_inspect_prices_each_variable_for_the_ops_that_read_it(tmp_path: Path) -> None:
    ds = _dataset()
    ds.to_zarr(tmp_path / "x.zarr", zarr_format=3)
    spec = tmp_path / "w.yaml"
    spec.write_text(
        "workload:\n"
        "  - {op: series, dim: time, variables: [tas, pr]}\n"
        "  - {op: plane, dims: [lat, lon], variables: [pr]}\n"
    )
    report = chunkwise.inspect(tmp_path / "x.zarr", workload=str(spec))
    ops = {c.path: [op.name for op in c.ops] for c in report.comparisons}
    assert ops == {"pr": ["series[time]", "plane[lat,lon]"], "tas": ["series[time]"]}
    # the fix moves the dataset, whole: never one variable into a bare array
    command = next(c.command for c in report.comparisons if c.command)
    assert command.startswith(f"chunkwise rechunk {tmp_path / 'x.zarr'} ")
    assert "#" not in command and "--workload" in command


def test_skip_lets_a_file_with_what_zarr_cannot_store_convert(tmp_path: Path) -> None:
    """A NetCDF-4 file with an HDF5 reference variable stops with one sentence naming the
    fix; with --skip the rest converts and the summary says what was left out."""
    import h5py

    source = tmp_path / "r.nc"
    xr.Dataset({"t": (("x",), np.arange(4.0))}).to_netcdf(source, engine="h5netcdf")
    with h5py.File(source, "a") as f:
        f.create_dataset("refs", data=[f["t"].ref], dtype=h5py.ref_dtype)
    with pytest.raises(chunkwise.SpecError, match=r"leave it out with --skip refs"):
        chunkwise.convert(source, tmp_path / "o.zarr", dry_run=True)
    runner = CliRunner()
    done = runner.invoke(cli, ["convert", str(source), str(tmp_path / "o.zarr"), "--skip", "refs"])
    assert done.exit_code == 0, done.output
    assert "not copied: refs (--skip; it holds HDF5 object references)" in done.output
    with xr.open_zarr(tmp_path / "o.zarr") as back:
        assert list(back.data_vars) == ["t"]


# --- review findings: each was a run that said "verified" or a raw traceback ------------


def _packed(scale: float) -> object:
    ds = xr.Dataset({"tas": (("t", "x"), np.linspace(200, 300, 2000).reshape(20, 100))})
    ds = ds.chunk({"t": 5})
    ds["tas"].encoding.update(dtype="int16", scale_factor=scale, add_offset=200.0,
                              _FillValue=-32767)  # fmt: skip
    return ds


def test_other_packing_of_the_same_values_is_another_run(tmp_path: Path) -> None:
    one = chunkwise.convert(_packed(0.01), tmp_path / "p.zarr", dry_run=True)
    two = chunkwise.convert(_packed(0.02), tmp_path / "p.zarr", dry_run=True)
    assert one.fingerprint() != two.fingerprint()  # type: ignore[union-attr]


def test_lazy_data_without_known_files_never_overwrites(tmp_path: Path) -> None:
    xr.Dataset({"v": ("x", np.arange(5.0))}).to_zarr(tmp_path / "z.zarr")
    with (
        xr.open_zarr(tmp_path / "z.zarr") as ds,
        pytest.raises(chunkwise.SpecError, match=r"might be reading the target"),
    ):
        chunkwise.convert(ds.v, tmp_path / "z.zarr", chunks=[2], overwrite=True)
    # merged with a file it can name: the store it cannot name still forbids --overwrite
    xr.Dataset({"w": ("y", np.arange(3.0))}).to_netcdf(tmp_path / "f.nc", engine="h5netcdf")
    with (
        xr.open_zarr(tmp_path / "z.zarr") as store,
        xr.open_dataset(tmp_path / "f.nc", engine="h5netcdf") as named,
        pytest.raises(chunkwise.SpecError, match=r"might be reading the target"),
    ):
        merged = xr.merge([named, store])
        assert merged.encoding.get("source") is None and merged.w.encoding.get("source")
        chunkwise.convert(merged, tmp_path / "z.zarr", overwrite=True)
    with xr.open_zarr(tmp_path / "z.zarr") as back:
        np.testing.assert_array_equal(back.v.values, np.arange(5.0))


@pytest.mark.parametrize("name", [".chunkwise-rechunk", "zarr.json", "a/b", ".."])
def test_names_that_clash_with_the_store_are_refused(tmp_path: Path, name: str) -> None:
    ds = xr.Dataset({name: ("x", np.arange(3.0))})
    with pytest.raises(chunkwise.SpecError, match=r"name|rename"):
        chunkwise.convert(ds, tmp_path / "n.zarr", dry_run=True)
    assert not (tmp_path / "n.zarr").exists()


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_objects_are_stored_as_xarrays_own_writer_stores_them(
    tmp_path: Path, zarr_format: int
) -> None:
    """The oracle is xarray's own to_zarr: chunkwise's copy reads back identical to it."""
    ds = xr.Dataset(
        {
            "mixed": ("x", np.array([1, 2, None], dtype=object)),
            "text": ("x", np.array(["a", None, "ccc"], dtype=object)),
            "flag": ("x", np.array([True, False, True])),
            "lag": ("x", np.array([1, 2, 3], dtype="timedelta64[s]")),
            "when": ("x", np.array(["2000-01-01", "NaT", "2001-06-30"], dtype="datetime64[ns]")),
        }
    )
    ds.to_zarr(tmp_path / "xarray.zarr", zarr_format=zarr_format)
    chunkwise.convert(ds, tmp_path / "chunkwise.zarr", zarr_format=zarr_format)
    with (
        xr.open_zarr(tmp_path / "xarray.zarr") as want,
        xr.open_zarr(tmp_path / "chunkwise.zarr") as got,
    ):
        xr.testing.assert_identical(_plain(got.load()), want.load())


def test_a_lazily_opened_file_is_not_loaded_whole(tmp_path: Path) -> None:
    """open_dataset without chunks: chunkwise reads it in blocks through Dask, named by
    the file, and leaves the user's object unloaded."""
    _dataset().to_netcdf(tmp_path / "d.nc", engine="h5netcdf")
    with xr.open_dataset(tmp_path / "d.nc", engine="h5netcdf") as ds:
        chunkwise.convert(ds, tmp_path / "o.zarr")
        assert not ds["tas"].variable._in_memory
        with xr.open_zarr(tmp_path / "o.zarr") as back:
            xr.testing.assert_identical(_plain(back.load()), ds.load())


def test_netcdf_enums_and_text_fill_values(tmp_path: Path) -> None:
    import netCDF4

    path = tmp_path / "e.nc"
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("x", 3)
        kind = nc.createEnumType(np.uint8, "cloud_t", {"clear": 0, "cloudy": 1})
        nc.createVariable("cl", kind, ("x",))[:] = np.array([0, 1, 0], "u1")
        name = nc.createVariable("name", str, ("x",), fill_value="NA")
        name[:] = np.array(["a", "NA", "c"], dtype=object)
    with pytest.raises(chunkwise.SpecError, match=r"'name' is text with a missing value"):
        chunkwise.convert(path, tmp_path / "v3.zarr", zarr_format=3, dry_run=True)
    chunkwise.convert(path, tmp_path / "v2.zarr", zarr_format=2)
    with xr.open_dataset(path) as want, xr.open_zarr(tmp_path / "v2.zarr") as got:
        xr.testing.assert_identical(_plain(got.load()), want.load())
