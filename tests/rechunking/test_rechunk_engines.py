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
from chunkwise.rechunking.convert import ConversionPlan, ConversionResult
from chunkwise.rechunking.executor import RechunkEvent, VerificationError

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
    mine, theirs = a.metadata.to_dict(), b.metadata.to_dict()
    for meta in (mine, theirs):  # the record of each run: when and how it ran
        meta["attributes"].pop("chunkwise")
    assert mine == theirs
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


# -- the intermediate checked by checksums ------------------------------------------------

#: A job that takes two passes at this budget, with several tasks in each.
TWO_PASS = {"chunks": (200, 7, 5), "max_mem": "24MiB", "engine": "zarr"}


class _Stop(Exception):
    pass


def _stop_before_the_second_pass(event: RechunkEvent) -> None:
    if event.kind == "stage-start" and event.stage == "from-intermediate":
        raise _Stop


def _first_pass_only(tmp_path: Path, dtype: str = "float32", zarr_format: int = 3) -> np.ndarray:
    values = (np.random.default_rng(0).standard_normal((200, 201, 103)) * 100).astype(dtype)
    zarr.create_array(
        tmp_path / "src.zarr",
        data=values,
        chunks=(1, 201, 103),
        zarr_format=zarr_format,  # type: ignore[arg-type]
    )
    options = {**TWO_PASS, "zarr_format": zarr_format}
    with pytest.raises(_Stop):
        api.rechunk(
            tmp_path / "src.zarr",
            tmp_path / "dst.zarr",
            events=_stop_before_the_second_pass,
            **options,  # type: ignore[arg-type]
        )
    return values


def _intermediate(tmp_path: Path) -> Path:
    return next(p for p in (tmp_path / "dst.zarr").rglob("intermediate") if p.is_dir())


def test_a_damaged_intermediate_chunk_is_caught_where_the_second_pass_reads_it(
    tmp_path: Path,
) -> None:
    """One value of the last (edge-clipped) intermediate chunk changed between the
    passes: the second pass's checksums disagree with the first pass's, and the run stops
    before writing from it."""
    _first_pass_only(tmp_path)
    inter = zarr.open_array(_intermediate(tmp_path), mode="r+")
    inter[199, 200, 102] = inter[199, 200, 102] + 1
    with pytest.raises(VerificationError, match=(
        r"^this run's intermediate copy differs from the source in its chunk at index "
        r"\(\d+, \d+, \d+\) \(CRC-32 differs\); it is not trustworthy: rerun with --overwrite\.$"
    )):  # fmt: skip
        api.rechunk(tmp_path / "src.zarr", tmp_path / "dst.zarr", **TWO_PASS)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("dtype", "engine"),
    [(d, "zarr") for d in ("M8[ns]", "m8[s]", "bool", "complex64", "int16")]
    + [("M8[ns]", "zarrs")],
)
def test_two_passes_check_every_kind_of_value_by_checksum(
    tmp_path: Path, dtype: str, engine: str
) -> None:
    """Dates and durations too: their buffers do not cast to bytes, and the first pass's
    checksums once failed on them with a traceback."""
    shape = (64, 256, 256 * 8 // np.dtype(dtype).itemsize)  # 32 MiB: two passes
    raw = np.random.default_rng(1).integers(0, 2**15, shape)
    values = raw.astype(dtype) if dtype[0] not in "Mm" else raw.astype("i8").view(dtype)
    zarr.create_array(tmp_path / "src.zarr", data=values, chunks=(1, *shape[1:]))
    result = api.rechunk(
        tmp_path / "src.zarr", tmp_path / "dst.zarr", chunks=(64, 16, 16), engine=engine,
        max_mem="24MiB" if engine == "zarr" else "40MiB",
    )  # fmt: skip
    assert isinstance(result, ConversionResult)
    assert len(result.plan.jobs[0].plan.stages) == 2
    got = np.asarray(zarr.open_array(tmp_path / "dst.zarr", mode="r")[...])
    assert got.dtype == values.dtype and np.array_equal(got, values)


@pytest.mark.parametrize("content", [b"", b'{"origin": [0, 0'], ids=["empty", "cut"])
def test_a_damaged_first_pass_marker_is_one_sentence(tmp_path: Path, content: bytes) -> None:
    """A marker cut short (a crash while it was stored) stops the run with one sentence,
    not a traceback, and nothing is reported verified."""
    _first_pass_only(tmp_path)
    marker = next(p for p in (tmp_path / "dst.zarr").rglob("*-crc") if p.is_file())
    marker.write_bytes(content)
    with pytest.raises(VerificationError, match=(
        r"^this run's record of its first pass is damaged \(marker '[^']+-crc' does not hold "
        r"its checksums\); it is not trustworthy: rerun with --overwrite\.$"
    )):  # fmt: skip
        api.rechunk(tmp_path / "src.zarr", tmp_path / "dst.zarr", **TWO_PASS)  # type: ignore[arg-type]


def test_a_big_endian_v2_run_resumed_between_the_passes_is_right(tmp_path: Path) -> None:
    """The intermediate reads back in native order once reopened: checksums are taken in
    one byte order, and the read-back compares values in either."""
    values = _first_pass_only(tmp_path, dtype=">f4", zarr_format=2)
    api.rechunk(tmp_path / "src.zarr", tmp_path / "dst.zarr", zarr_format=2, **TWO_PASS)  # type: ignore[arg-type]
    got = np.asarray(zarr.open_array(tmp_path / "dst.zarr", mode="r")[...])
    assert np.array_equal(got, values)


def test_first_pass_markers_without_checksums_are_redone_not_trusted(tmp_path: Path) -> None:
    """A first pass recorded by an older release (a marker per task, without checksums)
    is done again rather than failing the second pass's check."""
    values = _first_pass_only(tmp_path)
    markers = [p for p in (tmp_path / "dst.zarr").rglob("*-crc") if p.is_file()]
    assert markers
    for marker in markers:  # as the release before checksums left them
        marker.with_name(marker.name.removesuffix("-crc")).write_bytes(b"")
        marker.unlink()
    result = api.rechunk(tmp_path / "src.zarr", tmp_path / "dst.zarr", **TWO_PASS)  # type: ignore[arg-type]
    assert isinstance(result, ConversionResult)
    first = result.plan.jobs[0].plan.stages[0]
    assert result.results[""].tasks_run >= first.tasks  # the first pass ran again
    got = np.asarray(zarr.open_array(tmp_path / "dst.zarr", mode="r")[...])
    assert np.array_equal(got.view("u4"), values.view("u4"))


def test_runs_in_two_threads_take_turns_and_leave_zarr_as_they_found_it(tmp_path: Path) -> None:
    import threading

    _source(tmp_path / "src.zarr")
    before = zarr.config.get("codec_pipeline.path")
    engines_seen: dict[str, str] = {}

    def run(name: str, engine: str) -> None:
        result = api.rechunk(
            tmp_path / "src.zarr", tmp_path / f"{name}.zarr", chunks=(48, 10, 9),
            max_mem="32MiB", engine=engine,
        )  # fmt: skip
        engines_seen[name] = result.plan.engine.split()[0]  # type: ignore[union-attr]

    threads = [
        threading.Thread(target=run, args=(f"run{i}", engine))
        for i, engine in enumerate(["zarrs", "zarr", "zarrs", "zarr"])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert engines_seen == {"run0": "zarrs", "run1": "zarr", "run2": "zarrs", "run3": "zarr"}
    assert zarr.config.get("codec_pipeline.path") == before
    assert engine_of(zarr.open_array(tmp_path / "src.zarr", mode="r")) == "zarr"


def test_planning_for_two_engines_advises_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """auto plans for zarrs and for zarr-python to compare them: the layouts a workload
    asks for are advised once, not once per engine."""
    import chunkwise.api

    _source(tmp_path / "src.zarr", shape=(256, 128, 128))
    calls: list[object] = []
    advise = chunkwise.api.advise

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(args)
        return advise(*args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(chunkwise.api, "advise", counted)
    for budget in ("64MiB", "32MiB"):  # zarrs kept; zarrs left for zarr-python
        calls.clear()
        plan = api.rechunk(
            tmp_path / "src.zarr", tmp_path / "dst.zarr", workload="time-series",
            max_mem=budget, dry_run=True,
        )  # fmt: skip
        assert isinstance(plan, ConversionPlan)
        assert len(calls) == 1, (budget, plan.engine)
