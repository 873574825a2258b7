"""``chunkwise rechunk`` / ``convert`` end to end on real zarr stores: results read back
bit-identical in zarr-python, tensorstore and xarray; the target is claimed safely; bad
input writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorstore as ts
import xarray as xr
import zarr
from click.testing import CliRunner

from chunkwise import api
from chunkwise.cli.main import cli
from chunkwise.errors import ConstraintError
from chunkwise.rechunking.convert import RUN_RECORD

SHAPE = (48, 40, 36)


def values(shape: tuple[int, ...] = SHAPE, dtype: str = "float32") -> np.ndarray:
    rng = np.random.default_rng(1)
    out = (rng.standard_normal(shape) * 100).astype(dtype)
    if out.dtype.kind == "f":
        out.flat[:4] = [np.nan, -0.0, np.inf, -np.inf]
    return out


def snapshot(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def tensorstore_read(path: Path, zarr_format: int) -> np.ndarray:
    spec = {
        "driver": "zarr3" if zarr_format == 3 else "zarr",
        "kvstore": {"driver": "file", "path": str(path)},
    }
    return ts.open(spec, read=True).result().read().result()


def smallest_budget(source: Path | str, **layout: object) -> str:
    """The smallest ``--max-mem`` that plans ``source`` into ``layout``, as chunkwise names
    it when refusing a tiny budget: with it the plan takes two passes through an
    intermediate array whenever one pass needs more."""
    with pytest.raises(ConstraintError) as info:
        api.rechunk(source, "memory://", max_mem="1KiB", dry_run=True, **layout)  # type: ignore[arg-type]
    return str(info.value).rsplit("--max-mem ", 1)[1].rstrip(".")


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "maps.zarr"
    zarr.create_array(
        path, data=values(), chunks=(1, 40, 36), zarr_format=2, attributes={"units": "K"}
    )
    return path


@pytest.mark.parametrize(
    ("fmt", "chunks", "shards", "budget"),
    [("2", "48,8,8", None, "64MiB"), ("3", "48,8,8", None, "smallest"), ("3", "48,4,4", "48,8,12", "64MiB"),
     ("3", "48,4,4", "48,8,12", "smallest")],
)  # fmt: skip
def test_rechunk_round_trips_in_three_readers(
    tmp_path: Path, source: Path, fmt: str, chunks: str, shards: str | None, budget: str
) -> None:
    if budget == "smallest":
        budget = smallest_budget(
            source,
            chunks=[int(c) for c in chunks.split(",")],
            shards=[int(c) for c in shards.split(",")] if shards else None,
            zarr_format=int(fmt),
        )
    before = snapshot(source)
    target = tmp_path / "ts.zarr"
    args = ["rechunk", str(source), str(target), "--chunks", chunks, "--zarr-format", fmt,
            "--max-mem", budget, "--verify", "full"]  # fmt: skip
    if shards:
        args += ["--shards", shards]
    code, out = run(*args)
    assert code == 0, out
    assert "verified: every element compared bit for bit" in out
    want = values()
    arr = zarr.open_array(target, mode="r")
    assert arr.chunks == tuple(map(int, chunks.split(",")))
    assert arr.shards == (tuple(map(int, shards.split(","))) if shards else None)
    assert arr.metadata.zarr_format == int(fmt)
    assert same_bits(arr[...], want)
    assert same_bits(tensorstore_read(target, int(fmt)), want)
    assert arr.attrs["units"] == "K"
    record = arr.attrs["chunkwise"]
    assert record["decided_by"] == "explicit --chunks"
    assert record["source"]["chunks"] == [1, 40, 36]
    assert snapshot(source) == before  # never writes to the source
    assert not (target / ".chunkwise-rechunk").exists()


def test_a_group_keeps_attributes_dims_and_consolidates(tmp_path: Path) -> None:
    src = tmp_path / "cube.zarr"
    root = zarr.open_group(src, mode="w", zarr_format=3, attributes={"title": "test cube"})
    data = values()
    air = root.create_array(
        "air", data=data, chunks=(1, 40, 36), dimension_names=["time", "lat", "lon"]
    )
    air.attrs.update({"units": "K", "long_name": "air temperature"})
    for name, n in zip(("time", "lat", "lon"), SHAPE, strict=True):
        root.create_array(
            name, data=np.arange(n, dtype="float64"), chunks=(1,), dimension_names=[name]
        )
    sub = root.create_group("extra", attributes={"kind": "masks"})
    sub.create_array(
        "mask", data=np.ones((40, 36), dtype="bool"), chunks=(8, 8), dimension_names=["lat", "lon"]
    )
    target = tmp_path / "out.zarr"
    budget = smallest_budget(src, chunks=(48, 8, 8))
    code, out = run("rechunk", str(src), str(target), "--chunks", "48,8,8", "--max-mem", budget)
    assert code == 0, out
    group = zarr.open_group(target, mode="r")
    assert group.attrs["title"] == "test cube"
    assert group["extra"].attrs["kind"] == "masks"
    assert group["air"].chunks == (48, 8, 8)
    assert group["air"].metadata.dimension_names == ("time", "lat", "lon")
    assert group["time"].chunks == (48,)  # a small coordinate becomes one chunk
    assert group["extra/mask"].chunks == (40, 36)
    decisions = group.attrs["chunkwise"]["arrays"]
    assert decisions["time"]["decided_by"].startswith("one chunk")
    assert decisions["air"]["decided_by"] == "explicit --chunks"
    assert "chunkwise" not in group["air"].attrs  # arrays keep exactly their own attributes
    assert same_bits(group["extra/mask"][...], np.ones((40, 36), dtype="bool"))
    # Consolidated metadata lists every member.
    assert json.loads((target / "zarr.json").read_text())["consolidated_metadata"]["metadata"].keys() >= {
        "air", "time", "extra/mask"
    }  # fmt: skip
    ds = xr.open_zarr(target, consolidated=True)
    original = xr.open_zarr(src, consolidated=False)
    assert same_bits(ds["air"].values, original["air"].values)
    assert ds["air"].attrs["units"] == "K"
    xr.testing.assert_identical(ds["lat"], original["lat"])
    xr.testing.assert_identical(ds["air"].load(), original["air"].load())


def test_workload_lets_advise_choose_and_records_why(tmp_path: Path, source: Path) -> None:
    target = tmp_path / "viewer.zarr"
    code, out = run(
        "rechunk", str(source), str(target), "--workload", "time-series", "--storage", "s3",
        "--zarr-format", "3",
    )  # fmt: skip
    assert code == 0, out
    arr = zarr.open_array(target, mode="r")
    record = arr.attrs["chunkwise"]
    assert record["decided_by"] == "advise"
    assert record["workload"] and record["rationale"] and record["predicted_s"]
    assert record["storage"]["name"] == "s3" or "latency" in json.dumps(record["storage"])
    assert arr.chunks[0] == SHAPE[0]  # a time series wants the whole time dim per chunk
    assert same_bits(arr[...], values())


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path, source: Path) -> None:
    target = tmp_path / "never.zarr"
    code, out = run(
        "rechunk",
        str(source),
        str(target),
        "--chunks",
        "48,8,8",
        "--max-mem",
        smallest_budget(source, chunks=(48, 8, 8)),
        "--dry-run",
    )
    assert code == 0, out
    assert "two passes through an intermediate array" in out
    assert "projected peak" in out
    assert not target.exists()
    code, out = run(
        "rechunk", str(source), str(target), "--chunks", "48,8,8", "--dry-run", "--json"
    )
    doc = json.loads(out)
    assert doc["arrays"][0]["chunks"] == [48, 8, 8]
    assert doc["arrays"][0]["passes"] == 1
    assert doc["peak_memory"] <= doc["max_mem"]
    assert not target.exists()


def test_an_existing_target_is_not_overwritten_without_overwrite(
    tmp_path: Path, source: Path
) -> None:
    target = tmp_path / "precious.zarr"
    zarr.create_array(target, data=np.arange(10), chunks=(5,))
    before = snapshot(target)
    code, out = run("rechunk", str(source), str(target), "--chunks", "48,8,8")
    assert code == 2
    assert "already exists and was not written by this run" in out and "--overwrite" in out
    assert snapshot(target) == before
    code, out = run("rechunk", str(source), str(target), "--chunks", "48,8,8", "--overwrite")
    assert code == 0, out
    assert same_bits(zarr.open_array(target)[...], values())
    # The same command again finds its own finished result and leaves it alone (a kill
    # between the clean-up and the exit must not make the target unreplaceable)...
    finished = snapshot(target)
    code, out = run("rechunk", str(source), str(target), "--chunks", "48,8,8")
    assert code == 0 and "already holds the finished result of this command" in out, out
    assert snapshot(target) == finished
    # ... while another command's run is refused without --overwrite.
    code, out = run("rechunk", str(source), str(target), "--chunks", "48,4,4")
    assert code == 2 and "already exists" in out
    assert snapshot(target) == finished


def test_an_unfinished_run_with_other_options_is_not_resumed(tmp_path: Path, source: Path) -> None:
    target = tmp_path / "half.zarr"
    target.mkdir()
    (target / ".chunkwise-rechunk").mkdir()
    (target / RUN_RECORD).write_text(json.dumps({"fingerprint": "someone-else"}))
    code, out = run("rechunk", str(source), str(target), "--chunks", "48,8,8")
    assert code == 2 and "unfinished chunkwise run with other options" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rechunk", "{tmp}/missing.zarr", "{tmp}/t.zarr", "--chunks", "4,4,4"], "does not exist"),
        (["rechunk", "{src}", "{tmp}/t.zarr", "--chunks", "48,8,8", "--shards", "48,12,10", "--zarr-format", "3"],
         "is not a multiple of chunk"),
        (["rechunk", "{src}", "{tmp}/t.zarr", "--chunks", "48,8,8", "--max-mem", "10KiB"], "give at least --max-mem"),
        (["rechunk", "{src}", "{tmp}/t.zarr"], "needs a target layout"),
        (["rechunk", "{src}", "{tmp}/t.zarr", "--chunks", "4,4"], "has 2 sizes"),
        (["rechunk", "{src}", "{src}/inner", "--chunks", "4,4,4"], "overlaps the source"),
        (["rechunk", "{src}", "{tmp}/t.zip", "--chunks", "4,4,4"], "zip file"),
        (["rechunk", "{src}", "{tmp}/t.zarr", "--chunks", "4,4,4", "--dask", "nowhere"], "not a scheduler address"),
        (["rechunk", "{src}", "{tmp}/t.zarr", "--chunks", "4,4,4", "--codec", "lzma"], "codec"),
    ],
)  # fmt: skip
def test_bad_input_is_one_sentence_and_writes_nothing(
    tmp_path: Path, source: Path, args: list[str], message: str
) -> None:
    before = snapshot(source)
    filled = [a.format(tmp=tmp_path, src=source) for a in args]
    code, out = run(*filled)
    assert code == 2, out
    assert message in out
    assert out.startswith("Error: ") and out.count("\n") == 1  # one line, no traceback
    assert not (tmp_path / "t.zarr").exists() and not (tmp_path / "t.zip").exists()
    assert snapshot(source) == before


@pytest.mark.parametrize("fmt", [2, 3])
def test_records_strings_dates_and_scalars_are_carried_not_dropped(
    tmp_path: Path, fmt: int
) -> None:
    records = np.zeros(10, dtype=[("a", "i4"), ("b", "f8")])
    records["a"], records["b"] = np.arange(10), np.linspace(0, 1, 10)
    np.save(tmp_path / "records.npy", records)
    api.convert(tmp_path / "records.npy", tmp_path / "r.zarr", zarr_format=fmt)
    assert (zarr.open_array(tmp_path / "r.zarr")[...] == records).all()
    src = zarr.open_group(tmp_path / "g.zarr", mode="w", zarr_format=fmt)
    src.create_array("records", data=records, chunks=(5,))
    src.create_array("names", data=np.array(["abcdef", "b"], dtype="<U6"), chunks=(2,))
    src.create_array(
        "labels", data=np.array(["a", "bb", ""], dtype=np.dtypes.StringDType()), chunks=(3,)
    )
    src.create_array("time", data=np.array(["2020-01-01", "NaT"], dtype="M8[ns]"), chunks=(1,))
    src.create_array("spatial_ref", shape=(), dtype="i4", fill_value=7)
    src.create_array("nothing", shape=(0, 4), dtype="f4", chunks=(1, 4))
    code, out = run("convert", str(tmp_path / "g.zarr"), str(tmp_path / "t.zarr"))
    assert code == 0, out
    assert "wrote" in out and "6 arrays" in out and "not copied" not in out
    want, got = zarr.open_group(tmp_path / "g.zarr"), zarr.open_group(tmp_path / "t.zarr")
    for name in ("records", "names", "labels", "time", "spatial_ref", "nothing"):
        a, b = want[name], got[name]
        assert (a.shape, a.dtype) == (b.shape, b.dtype), name
        assert (
            a[...].tobytes() == b[...].tobytes()
            if a.dtype.kind != "T"
            else (a[...] == b[...]).all()
        )
    assert got["spatial_ref"][()] == 7


def test_python_objects_are_refused_naming_the_array(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, out = run("convert", str(tmp_path / "o.npy"), str(tmp_path / "t.zarr"))
    assert code == 2 and "is not a readable .npy array" in out, out
    assert not (tmp_path / "t.zarr").exists()


def test_budget_errors_name_the_smallest_budget_that_works(tmp_path: Path, source: Path) -> None:
    with pytest.raises(ConstraintError) as info:
        api.rechunk(source, tmp_path / "t.zarr", chunks=(48, 8, 8), max_mem="20KiB")
    suggested = str(info.value).rsplit("--max-mem ", 1)[1].rstrip(".")
    result = api.rechunk(source, tmp_path / "t.zarr", chunks=(48, 8, 8), max_mem=suggested)
    assert same_bits(zarr.open_array(tmp_path / "t.zarr")[...], values())
    assert result.plan.peak_memory <= result.plan.max_mem  # type: ignore[union-attr]


def test_convert_keeps_the_source_chunks_and_events_report_progress(
    tmp_path: Path, source: Path
) -> None:
    seen = []
    result = api.convert(source, tmp_path / "v3.zarr", zarr_format=3, events=seen.append)
    arr = zarr.open_array(tmp_path / "v3.zarr")
    assert arr.chunks == (1, 40, 36) and arr.metadata.zarr_format == 3
    assert same_bits(arr[...], values())
    kinds = [e.kind for e in seen]
    assert kinds[0] == "run-start" and kinds[-1] == "verify-done"
    done = [e for e in seen if e.kind == "task-done"]
    assert [e.done for e in done] == list(range(1, len(done) + 1))
    assert done[-1].nbytes == values().nbytes
    assert result.results[""].tasks_run == len(done)  # type: ignore[union-attr]
