"""``--engine``: zarrs and zarr-python write the same standard Zarr, read back bit for bit
by zarr-python's own pipeline, tensorstore and xarray; ``auto`` picks zarrs only where it
can serve the run; a run killed under one engine resumes under the other."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tensorstore as ts
import xarray as xr
import zarr
from click.testing import CliRunner

from chunkwise import api
from chunkwise.cli.main import cli
from chunkwise.errors import ConstraintError, MissingDependencyError, SpecError
from chunkwise.io import engines
from chunkwise.io.engines import choose_engine, engine_of, using_engine
from chunkwise.rechunking.convert import ConversionResult
from chunkwise.rechunking.executor import RechunkEvent

SHAPE = (48, 40, 36)


def _source(
    path: Path, dtype: str = "float32", zarr_format: int = 3, shape: tuple[int, ...] = SHAPE
) -> np.ndarray:
    rng = np.random.default_rng(3)
    values = rng.standard_normal(shape).astype(dtype)
    zarr.create_array(path, data=values, chunks=(1, *shape[1:]), zarr_format=zarr_format)  # type: ignore[arg-type]
    return values


@pytest.mark.parametrize("engine", ["zarr", "zarrs"])
@pytest.mark.parametrize("shards", [None, (48, 20, 18)], ids=["chunks", "shards"])
def test_every_engine_writes_zarr_that_every_reader_reads_bit_for_bit(
    tmp_path: Path, engine: str, shards: tuple[int, ...] | None
) -> None:
    values = _source(tmp_path / "src.zarr")
    result = api.rechunk(
        tmp_path / "src.zarr", tmp_path / "dst.zarr", chunks=(48, 10, 9), shards=shards,
        max_mem="32MiB", engine=engine,
    )  # fmt: skip
    assert isinstance(result, ConversionResult)
    assert result.plan.engine.split()[0] == engine
    plain = np.asarray(zarr.open_array(tmp_path / "dst.zarr", mode="r")[...])
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(tmp_path / "dst.zarr")}}
    through_ts = np.asarray(ts.open(spec).result().read().result())
    group = zarr.open_group(tmp_path / "as-group.zarr", mode="w")
    group.create_array("v", data=plain, chunks=SHAPE, dimension_names=("t", "y", "x"))
    through_xarray = xr.open_zarr(tmp_path / "as-group.zarr", consolidated=False)["v"].values
    for name, got in {"zarr-python": plain, "tensorstore": through_ts}.items():
        assert got.dtype == values.dtype and np.array_equal(got.view("u4"), values.view("u4")), name
    assert np.array_equal(np.asarray(through_xarray).view("u4"), values.view("u4"))


def test_both_engines_store_the_same_values_under_the_same_keys(tmp_path: Path) -> None:
    _source(tmp_path / "src.zarr")
    for engine in ("zarr", "zarrs"):
        api.rechunk(
            tmp_path / "src.zarr", tmp_path / f"{engine}.zarr", chunks=(48, 10, 9),
            max_mem="32MiB", engine=engine,
        )  # fmt: skip
    keys = {
        engine: sorted(
            str(p.relative_to(tmp_path / f"{engine}.zarr"))
            for p in (tmp_path / f"{engine}.zarr").rglob("*")
            if p.is_file()
        )
        for engine in ("zarr", "zarrs")
    }
    assert keys["zarr"] == keys["zarrs"], keys
    assert len(keys["zarr"]) == 1 + 4 * 4, keys
    a = zarr.open_array(tmp_path / "zarr.zarr", mode="r")
    b = zarr.open_array(tmp_path / "zarrs.zarr", mode="r")
    assert a.metadata.to_dict() == b.metadata.to_dict(), (a.metadata, b.metadata)
    assert np.array_equal(np.asarray(a[...]).view("u4"), np.asarray(b[...]).view("u4"))


def test_zarrs_serves_the_arrays_of_a_local_run(tmp_path: Path) -> None:
    _source(tmp_path / "src.zarr")
    with using_engine(choose_engine("zarrs", str(tmp_path / "dst.zarr"))):
        opened = zarr.open_array(tmp_path / "src.zarr", mode="r")
        assert engine_of(opened) == "zarrs"
    assert engine_of(zarr.open_array(tmp_path / "src.zarr", mode="r")) == "zarr"


def test_zarrs_leaves_a_foreign_byte_order_to_zarr_python(tmp_path: Path) -> None:
    """zarrs cannot read a big-endian Zarr v2 array (it refuses after taking it on):
    such arrays get zarr-python's pipeline, and the run is right."""
    values = _source(tmp_path / "src.zarr", dtype=">f4", zarr_format=2)
    with using_engine(choose_engine("zarrs", str(tmp_path / "dst.zarr"))):
        assert engine_of(zarr.open_array(tmp_path / "src.zarr", mode="r")) == "zarr"
    api.rechunk(
        tmp_path / "src.zarr", tmp_path / "dst.zarr", chunks=(48, 8, 8), max_mem="32MiB",
        engine="zarrs",
    )  # fmt: skip
    got = np.asarray(zarr.open_array(tmp_path / "dst.zarr", mode="r")[...])
    assert np.array_equal(got, values.astype("<f4"))


@pytest.mark.parametrize(
    ("asked", "target", "dask", "expected"),
    [
        ("auto", "out.zarr", None, "zarrs"),
        ("auto", "file:///tmp/out.zarr", None, "zarrs"),
        ("auto", "out.zarr", "local:2", "zarrs"),
        ("auto", "out.zarr", "tcp://10.0.0.1:8786", "zarr"),  # workers may lack zarrs
        ("auto", "s3://bucket/out.zarr", None, "zarr"),
        ("auto", "memory://out", None, "zarr"),
        ("auto", "out.zarr.zip", None, "zarr"),
        ("ZARR", "out.zarr", None, "zarr"),
        ("zarrs", "out.zarr", "tcp://10.0.0.1:8786", "zarrs"),
    ],
)
def test_auto_takes_zarrs_only_where_it_serves_the_run(
    asked: str, target: str, dask: str | None, expected: str
) -> None:
    assert choose_engine(asked, target, dask).name == expected


def test_bad_engines_are_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SpecError, match=r"^--engine 'rust' is not an engine; use one of auto, "):
        choose_engine("rust", "out.zarr")
    with pytest.raises(SpecError, match=r"^--engine zarrs writes local directories only, not "):
        choose_engine("zarrs", "s3://bucket/out.zarr")
    monkeypatch.setattr(engines, "_version", lambda name: None if name == "zarrs" else "3")
    with pytest.raises(MissingDependencyError, match=r"pip install 'chunkwise\[zarrs\]'"):
        choose_engine("zarrs", "out.zarr")
    assert choose_engine("auto", "out.zarr").name == "zarr"  # not installed: zarr-python


def test_the_cli_names_the_engine_and_refuses_unknown_ones(tmp_path: Path) -> None:
    _source(tmp_path / "src.zarr")
    runner = CliRunner()
    done = runner.invoke(
        cli, ["rechunk", str(tmp_path / "src.zarr"), str(tmp_path / "dst.zarr"), "--chunks",
              "48,8,8", "--engine", "zarrs", "--dry-run"],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "; engine: zarrs " in done.output
    bad = runner.invoke(
        cli, ["rechunk", str(tmp_path / "src.zarr"), str(tmp_path / "x.zarr"), "--chunks",
              "48,8,8", "--engine", "rust"],
    )  # fmt: skip
    assert bad.exit_code == 2 and "'rust' is not one of 'auto', 'zarr', 'zarrs'" in bad.output


@pytest.mark.parametrize(("first", "second"), [("zarrs", "zarr"), ("zarr", "zarrs")])
def test_a_run_stopped_under_one_engine_resumes_under_the_other(
    tmp_path: Path, first: str, second: str
) -> None:
    values = _source(tmp_path / "src.zarr", shape=(256, 128, 128))  # 16 MiB

    def stop_after(n: int) -> Callable[[RechunkEvent], None]:
        def events(event: RechunkEvent) -> None:
            if event.kind == "task-done" and event.done >= n:
                raise KeyboardInterrupt

        return events

    options = {"chunks": (16, 32, 32), "max_mem": "64MiB"}  # the same 16 tasks on both
    with pytest.raises(KeyboardInterrupt):
        api.rechunk(
            tmp_path / "src.zarr",
            tmp_path / "dst.zarr",
            engine=first,
            events=stop_after(3),
            **options,  # type: ignore[arg-type]
        )
    result = api.rechunk(tmp_path / "src.zarr", tmp_path / "dst.zarr", engine=second, **options)  # type: ignore[arg-type]
    assert isinstance(result, ConversionResult)
    assert sum(r.tasks_skipped for r in result.results.values()) >= 3
    assert result.plan.engine.startswith(second)
    got = np.asarray(zarr.open_array(tmp_path / "dst.zarr", mode="r")[...])
    assert np.array_equal(got.view("u4"), values.view("u4"))


def test_each_task_reports_its_phases(tmp_path: Path) -> None:
    _source(tmp_path / "src.zarr")
    done: list[RechunkEvent] = []
    api.rechunk(
        tmp_path / "src.zarr", tmp_path / "dst.zarr", chunks=(48, 8, 8), max_mem="32MiB",
        events=lambda e: done.append(e) if e.kind == "stage-done" else None,
    )  # fmt: skip
    (stage,) = done
    read, write, check, mark = stage.busy
    assert stage.parallel >= 1 and min(read, write, check, mark) > 0
    assert read + write + check + mark <= stage.seconds * stage.parallel


def test_auto_leaves_zarrs_when_its_memory_would_cost_a_pass(tmp_path: Path) -> None:
    """zarrs' pool holds memory of its own: where the budget then fits one pass for
    zarr-python and two for zarrs, or none at all for zarrs, auto takes zarr-python."""
    _source(tmp_path / "src.zarr", shape=(256, 128, 128))  # 16 MiB
    engines_at = {}
    for budget in ("24MiB", "32MiB", "64MiB"):
        plan = api.rechunk(
            tmp_path / "src.zarr", tmp_path / "dst.zarr", chunks=(256, 8, 8), max_mem=budget,
            dry_run=True,
        )  # fmt: skip
        engines_at[budget] = (plan.engine.split()[0], len(plan.jobs[0].plan.stages))
    assert engines_at == {"24MiB": ("zarr", 2), "32MiB": ("zarr", 1), "64MiB": ("zarrs", 1)}
    explicit = api.rechunk(
        tmp_path / "src.zarr", tmp_path / "dst.zarr", chunks=(256, 8, 8), max_mem="32MiB",
        dry_run=True, engine="zarrs",
    )  # fmt: skip
    assert len(explicit.jobs[0].plan.stages) == 2  # asked for: kept, at its cost
    with pytest.raises(ConstraintError, match=r"give at least --max-mem \d+MiB\.$"):
        api.rechunk(
            tmp_path / "src.zarr", tmp_path / "dst.zarr", chunks=(256, 8, 8), max_mem="24MiB",
            dry_run=True, engine="zarrs",
        )  # fmt: skip
