"""``chunkwise trace``: the tracing store, selection capture, script runs, reports.

Arrays are written before tracing starts, on real stores (a local directory or zarr's
MemoryStore); the traced code is plain zarr, run in this process.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
import textwrap
import threading
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import yaml
import zarr
import zarr.core.array
import zarr.storage._common
from click.testing import CliRunner
from matplotlib.image import imread
from test_html_chromium import chromium
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype
from zarr.storage import MemoryStore

import chunkwise
from chunkwise import api
from chunkwise.cli.main import cli
from chunkwise.report.trace import write_trace_files
from chunkwise.tracing.trace import TracingStore

CHUNKWISE = Path(sys.executable).parent / "chunkwise"

VIEWER = """
    import sys
    import numpy as np
    import zarr

    arr = zarr.open_array(sys.argv[1], mode="r")
    rng = np.random.default_rng(7)
    for z in rng.integers(0, arr.shape[0], 12):
        plane = arr[int(z), :, :]
    print("last plane mean", float(plane.mean()))
"""

TIME_SERIES = """
    import sys
    import numpy as np
    import zarr

    arr = zarr.open_array(sys.argv[1], mode="r")
    rng = np.random.default_rng(3)
    for lat, lon in zip(rng.integers(0, arr.shape[1], 10), rng.integers(0, arr.shape[2], 10)):
        series = arr[:, int(lat), int(lon)]
    print("series length", series.shape[0])
"""


def write_volume(
    where: zarr.storage.StoreLike,
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    dims: tuple[str, ...],
    shards: tuple[int, ...] | None = None,
    name: str | None = None,
) -> zarr.Array:
    arr = zarr.create_array(
        where, name=name, shape=shape, chunks=chunks, shards=shards, dtype="float32",
        dimension_names=dims, overwrite=True,
    )  # fmt: skip
    arr[...] = np.arange(np.prod(shape), dtype="float32").reshape(shape) % 251
    return arr


def script(tmp_path: Path, body: str, name: str = "analysis.py", then: str = "") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body) + then, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "vol.zarr"
    write_volume(path, (32, 128, 128), (8, 64, 64), ("z", "y", "x"))
    return path


# -- the tracing store and selection capture ----------------------------------------------


def test_sharded_reads_are_recorded_as_byte_ranges() -> None:
    store = MemoryStore()
    write_volume(store, (8, 16, 16), (2, 4, 4), ("z", "y", "x"), shards=(4, 8, 8))
    with chunkwise.trace(store) as t:
        arr = zarr.open_array(t.store, mode="r")
        arr[0:2, 0:4, 0:4]  # exactly one inner chunk of shard c/0/0/0
    shard_reads = [e for e in t.events if e.key == "c/0/0/0"]
    assert [e.op for e in shard_reads] == ["get", "get"]
    index, chunk = shard_reads
    # The shard index (16 bytes per inner chunk + a 4-byte checksum), read from the end.
    assert index.byte_range == (-(2 * 2 * 2 * 16 + 4), None) and index.nbytes == 132
    assert chunk.byte_range is not None and chunk.byte_range[1] is not None
    assert chunk.nbytes == chunk.byte_range[1] - chunk.byte_range[0] > 0
    metadata = next(e for e in t.events if e.key == "zarr.json")
    assert metadata.byte_range is None and metadata.nbytes > 0
    assert all(e.duration_s >= 0 and e.start_s >= 0 for e in t.events)
    (selection,) = t.selections
    assert selection.box == ((0, 2), (0, 4), (0, 4)) and selection.kind == "read"
    (array,) = t.arrays.values()
    assert array.chunks == (2, 4, 4) and array.shards == (4, 8, 8)
    assert array.dims == ("z", "y", "x")


def test_every_store_method_is_an_event() -> None:
    async def use(store: zarr.abc.store.Store) -> None:
        proto = default_buffer_prototype()
        await store.set("a/x", proto.buffer.from_bytes(b"0123456789"))
        await store.get("a/x", proto, RangeByteRequest(2, 5))
        await store.get("a/x", proto, OffsetByteRequest(7))
        await store.get_partial_values(proto, [("a/x", SuffixByteRequest(4)), ("a/x", None)])
        await store.exists("a/y")
        await store.getsize("a/x")
        assert [k async for k in store.list_prefix("a/")] == ["a/x"]
        assert [k async for k in store.list_dir("a")] == ["x"]
        assert [k async for k in store.list()] == ["a/x"]
        await store.delete("a/x")

    with chunkwise.trace(MemoryStore()) as t:
        asyncio.run(use(t.store))
    assert [(e.op, e.key, e.byte_range, e.nbytes) for e in t.events] == [
        ("set", "a/x", None, 10),
        ("get", "a/x", (2, 5), 3),
        ("get", "a/x", (7, None), 3),
        ("get_partial_values", "a/x", (-4, None), 4),
        ("get_partial_values", "a/x", None, 10),
        ("exists", "a/y", None, 0),
        ("getsize", "a/x", None, 0),
        ("list_prefix", "a/", None, 0),
        ("list_dir", "a", None, 0),
        ("list", "", None, 0),
        ("delete", "a/x", None, 0),
    ]
    totals = {row.op: (row.requests, row.nbytes) for row in t.totals_by_op()}
    assert totals["get"] == (2, 6) and totals["set"] == (1, 10)


def test_writes_are_recorded_and_appends_inferred() -> None:
    store = MemoryStore()
    write_volume(store, (12, 8, 8), (2, 8, 8), ("time", "y", "x"))
    with chunkwise.trace(store) as t:
        arr = zarr.open_array(t.store, mode="r+")
        for step in range(4):
            arr[step * 3 : step * 3 + 3] = step  # new slabs along time
        arr[0, 0, 0:4] = 1  # a partial write no op describes
    assert [s.kind for s in t.selections] == ["write"] * 5
    assert t.bytes_written > 0 and t.bytes_read > 0  # partial chunks are read first
    workload = t.workload()
    assert workload.to_spec()["workload"] == [
        {"op": "append", "dim": "time", "size": 3, "weight": 1.0}
    ]
    assert workload.unmodelled_writes == 1


def test_every_kind_of_selection_becomes_a_box() -> None:
    store = MemoryStore()
    write_volume(store, (6, 10, 12), (2, 5, 4), ("t", "y", "x"))
    with chunkwise.trace(store) as t:
        arr = zarr.open_array(t.store, mode="r")
        arr[1]
        arr[:, 2, 3]
        arr.oindex[[1, 3], :, 2]
        arr.get_orthogonal_selection((slice(None), np.arange(10) < 4, 5))
        arr.vindex[[1, 2, 4], [3, 4, 9], [5, 6, 0]]
        arr.blocks[1]
        arr[2:5, 4:6, ::3]
    boxes = [(s.box, s.points) for s in t.selections]
    assert boxes == [
        (((1, 2), (0, 10), (0, 12)), 0),
        (((0, 6), (2, 3), (3, 4)), 0),
        (((1, 4), (0, 10), (2, 3)), 0),
        (((0, 6), (0, 4), (5, 6)), 0),
        (((1, 5), (3, 10), (0, 7)), 3),
        (((2, 4), (0, 10), (0, 12)), 0),
        (((2, 5), (4, 6), (0, 12)), 0),
    ]


def test_hooks_are_restored_after_errors_and_nested_traces() -> None:
    originals = (
        zarr.core.array._get_selection,
        zarr.core.array._set_selection,
        zarr.storage._common.make_store,
    )
    store = MemoryStore()
    write_volume(store, (4, 4), (2, 2), ("y", "x"))
    with pytest.raises(RuntimeError, match="user code"), chunkwise.trace(store) as failed:
        zarr.open_array(failed.store)[0]
        raise RuntimeError("user code")
    assert len(failed.selections) == 1
    with chunkwise.trace(store) as outer:
        with chunkwise.trace(store) as inner:
            zarr.open_array(inner.store)[1]
        zarr.open_array(outer.store)[:, 1]  # still traced after the inner trace ends
    assert [s.box for s in inner.selections] == [((1, 2), (0, 4))]
    assert [s.box for s in outer.selections] == [((0, 4), (1, 2))]
    now = (
        zarr.core.array._get_selection,
        zarr.core.array._set_selection,
        zarr.storage._common.make_store,
    )
    assert now == originals
    zarr.open_array(store)[2]  # nothing records outside a trace
    assert len(outer.selections) == 1


def test_threads_record_every_request_and_selection() -> None:
    store = MemoryStore()
    write_volume(store, (16, 32, 32), (1, 16, 16), ("z", "y", "x"))
    with chunkwise.trace(store) as t:
        arr = zarr.open_array(t.store, mode="r")

        def read(offset: int) -> None:
            for z in range(offset, 16, 4):
                arr[z]

        workers = [threading.Thread(target=read, args=(i,)) for i in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert len(t.selections) == 16
    chunk_gets = [e for e in t.events if e.op == "get" and e.key.startswith("c/")]
    assert len(chunk_gets) == 16 * 4  # each plane is 2 x 2 chunks; zarr caches none
    assert sorted(s.box[0][0] for s in t.selections) == list(range(16))


def test_trace_without_a_store_captures_opened_stores_and_splits_per_array(
    tmp_path: Path,
) -> None:
    zarr.open_group(tmp_path / "g.zarr", mode="w")
    write_volume(tmp_path / "g.zarr", (10, 20), (5, 5), ("t", "x"), name="temp")
    write_volume(tmp_path / "g.zarr", (10,), (10,), ("t",), name="time")
    with chunkwise.trace() as t:
        opened = zarr.open_group(tmp_path / "g.zarr", mode="r")
        opened["temp"][:, 3]
        opened["temp"][:, 4]
        opened["time"][:]
    assert isinstance(opened.store, TracingStore)
    totals = {row.name: row for row in t.totals_by_array()}
    assert set(totals) == {"temp", "time"}
    assert (totals["temp"].reads, totals["time"].reads) == (2, 1)
    # temp: metadata + 2 reads x 2 chunks; time: metadata + 1 chunk.
    chunk_keys = {e.key for e in t.events if "/c/" in e.key}
    assert chunk_keys == {"temp/c/0/0", "temp/c/1/0", "time/c/0"}
    assert totals["temp"].bytes_read > totals["time"].bytes_read > 0
    assert t.workload("temp").to_spec()["workload"] == [{"op": "series", "dim": "t", "weight": 1.0}]
    by_op = {row.op: row for row in t.totals_by_op()}
    assert by_op["get"].requests == sum(1 for e in t.events if e.op == "get")
    assert "array temp: 2 reads" in repr(t)


# -- learning the workload from a script ----------------------------------------------------


def test_traced_plane_reads_advise_like_the_slice_viewer_preset(
    tmp_path: Path, volume: Path
) -> None:
    run = api.trace_script(["python", str(script(tmp_path, VIEWER)), str(volume)])
    assert run.exit_code == 0 and run.error is None
    spec = run.trace.workload().to_spec()
    assert spec["array"] == {"shape": [32, 128, 128], "dtype": "float32", "dims": ["z", "y", "x"]}
    assert spec["workload"] == [{"op": "plane", "dims": ["y", "x"], "weight": 1.0}]
    for storage in ("local-ssd", "s3"):
        learnt = chunkwise.advise(spec, storage=storage).best.layout
        declared = chunkwise.advise(
            array=spec["array"], workload="slice-viewer", storage=storage
        ).best.layout
        assert (learnt.chunks, learnt.shards) == (declared.chunks, declared.shards)
        assert learnt.chunks[1:] == (128, 128)  # whole planes


def test_traced_time_series_reads_advise_long_time_chunks(tmp_path: Path) -> None:
    data = tmp_path / "air.zarr"
    write_volume(data, (365, 64, 64), (73, 32, 32), ("time", "lat", "lon"))
    run = api.trace_script(["python", str(script(tmp_path, TIME_SERIES)), str(data)])
    assert run.exit_code == 0
    spec = run.trace.workload().to_spec()
    assert spec["workload"] == [{"op": "series", "dim": "time", "weight": 1.0}]
    for storage in ("local-ssd", "s3"):
        chunks = chunkwise.advise(spec, storage=storage).best.layout.chunks
        assert chunks[0] >= 256 and chunks[0] >= 8 * max(chunks[1:]), (storage, chunks)


XARRAY = """
    import sys
    import xarray as xr

    ds = xr.open_zarr(sys.argv[1], consolidated=False)
    for i in range(4):
        ds.air.isel(lat=i, lon=2 * i).load()  # Dask reads it chunk by chunk
    print(float(ds.air.isel(time=3).mean().values))
"""


def test_xarray_dask_reads_are_learnt_as_the_selections_made(tmp_path: Path) -> None:
    import xarray as xr  # a dev dependency, like dask

    data = tmp_path / "air.zarr"
    values = np.arange(100 * 8 * 10, dtype="float32").reshape(100, 8, 10)
    ds = xr.Dataset({"air": (("time", "lat", "lon"), values)})
    ds.to_zarr(data, mode="w", consolidated=False, encoding={"air": {"chunks": (10, 8, 10)}})
    run = api.trace_script(["python", str(script(tmp_path, XARRAY)), str(data)])
    assert run.exit_code == 0
    air = [s for s in run.trace.selections if s.array == "air"]
    assert len(air) == 4 * 10 + 1  # each series in ten chunk-sized pieces
    assert len({s.batch for s in air}) == 5 and 0 not in {s.batch for s in air}
    assert run.trace.workload("air").to_spec()["workload"] == [
        {"op": "series", "dim": "time", "weight": 0.8},
        {"op": "plane", "dims": ["lat", "lon"], "weight": 0.2},
    ]


# -- the CLI and its files --------------------------------------------------------------------


class _Images(HTMLParser):
    """``<img>`` elements inside each ``<section id=...>``."""

    def __init__(self) -> None:
        super().__init__()
        self.images: dict[str, list[dict[str, str | None]]] = {}
        self._sections: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "section":
            self._sections.append(named.get("id") or "")
        elif tag == "img" and self._sections:
            self.images.setdefault(self._sections[-1], []).append(named)

    def handle_endtag(self, tag: str) -> None:
        if tag == "section" and self._sections:
            self._sections.pop()


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory, volume: Path) -> Path:
    """``chunkwise trace`` of the plane viewer; the output directory."""
    tmp = tmp_path_factory.mktemp("traced")
    out = tmp / "out"
    viewer = script(tmp, VIEWER)
    result = CliRunner().invoke(
        cli, ["trace", "--output", str(out), "--", "python", str(viewer), str(volume)]
    )
    assert result.exit_code == 0, result.output
    assert "last plane mean" in result.stdout
    assert "100% planes across y, x (12 observed)" in result.stderr
    return out


def test_cli_writes_trace_workload_heatmap_and_report(traced: Path) -> None:
    assert sorted(p.name for p in traced.iterdir()) == [
        "heatmap-vol.zarr.png", "report.html", "trace.json", "workload.yaml",
    ]  # fmt: skip
    document = yaml.safe_load((traced / "trace.json").read_text())
    assert document["exit_code"] == 0 and document["command"][0] == "python"
    assert len(document["selections"]) == 12
    assert {e["op"] for e in document["events"]} == {"get"}
    assert document["workloads"]["vol.zarr"]["workload"][0]["op"] == "plane"
    spec = yaml.safe_load((traced / "workload.yaml").read_text())
    advice = chunkwise.advise(spec)  # the file is a spec advise accepts as is
    assert advice.workload.ops[0].kind == "plane"


def test_heatmap_is_a_real_image_and_is_in_the_report(traced: Path) -> None:
    png = traced / "heatmap-vol.zarr.png"
    pixels = imread(png, format="png")
    assert pixels.shape[:2] == (450, 800)
    rgb = pixels[..., :3]
    assert np.ptp(rgb) > 0.5 and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 20
    page = (traced / "report.html").read_text()
    assert base64.b64encode(png.read_bytes()).decode("ascii") in page


def test_report_renders_in_chromium_with_the_heatmap(traced: Path, tmp_path: Path) -> None:
    page = (traced / "report.html").as_uri()
    dom = _Images()
    dom.feed(chromium(tmp_path, "--dump-dom", page).stdout)
    (image,) = dom.images["array-vol.zarr"]
    assert (image.get("src") or "").startswith("data:image/png;base64,")
    assert image.get("alt") == "Chunk reads of vol.zarr"
    shot = tmp_path / "trace.png"
    chromium(tmp_path, f"--screenshot={shot}", page)
    rgb = imread(shot, format="png")[..., :3]
    assert rgb.shape[:2] == (2000, 1280)
    assert np.ptp(rgb) > 0.5 and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 100


def test_without_matplotlib_the_files_say_which_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore()
    write_volume(store, (4, 6, 6), (2, 3, 3), ("z", "y", "x"))
    with chunkwise.trace(store) as t:
        zarr.open_array(t.store, mode="r")[1]
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    files = write_trace_files(t, tmp_path)
    assert files.heatmaps == {} and not list(tmp_path.glob("*.png"))
    assert any("pip install 'chunkwise[plot]'" in note for note in files.notes)
    assert "chunkwise[plot]" in files.html.read_text()
    assert files.workload is not None and files.workload.is_file()


def test_script_exit_codes_and_tracebacks_are_the_scripts(tmp_path: Path, volume: Path) -> None:
    exits = script(tmp_path, VIEWER, "exits.py", then="sys.exit(3)\n")
    result = CliRunner().invoke(
        cli, ["trace", "-o", str(tmp_path / "a"), "--", str(exits), str(volume)]
    )
    assert result.exit_code == 3
    assert (tmp_path / "a" / "workload.yaml").is_file()
    fails = script(tmp_path, VIEWER, "fails.py", then='raise ValueError("bad input 42")\n')
    result = CliRunner().invoke(
        cli, ["trace", "-o", str(tmp_path / "b"), "--", "python", str(fails), str(volume)]
    )
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and "ValueError: bad input 42" in result.stderr
    assert "runpy" not in result.stderr and "chunkwise" not in result.stderr.split("ValueError")[0]
    document = yaml.safe_load((tmp_path / "b" / "trace.json").read_text())
    assert document["exit_code"] == 1 and len(document["selections"]) == 12


def test_cli_end_to_end_in_a_real_process(tmp_path: Path, volume: Path) -> None:
    viewer = script(tmp_path, VIEWER, then="sys.exit(5)\n")
    result = subprocess.run(
        [str(CHUNKWISE), "trace", "--output", "out", "--", "python", viewer.name, str(volume)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 5, result.stderr
    assert "last plane mean" in result.stdout
    assert "next: chunkwise advise out/workload.yaml" in result.stderr
    assert (tmp_path / "out" / "report.html").is_file()


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["ls", "-l"], "'ls' is not a Python script: trace runs Python code"),
        (["python", "missing.py"], "script 'missing.py' does not exist"),
        (["python", "-u", "x.py"], "python option '-u' is not supported"),
        (["python", "-m", "no_such_module_here"], "module 'no_such_module_here' was not found"),
    ],
)
def test_bad_commands_are_one_sentence_exit_2(
    command: list[str], message: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(cli, ["trace", "-o", str(tmp_path / "o"), "--", *command])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_script_named_python_something_is_the_script(tmp_path: Path, volume: Path) -> None:
    """Only an interpreter is dropped from the front of the command, not python_*.py."""
    viewer = script(tmp_path, VIEWER, "python_viewer.py")
    run = api.trace_script([str(viewer), str(volume)])
    assert run.exit_code == 0 and len(run.trace.selections) == 12
    again = api.trace_script(["python3.11", str(viewer), str(volume)])
    assert again.exit_code == 0 and len(again.trace.selections) == 12


def test_a_root_array_named_like_another_arrays_path_stays_apart(tmp_path: Path) -> None:
    write_volume(tmp_path / "temp", (4, 6), (2, 3), ("y", "x"))  # a root array "temp"
    zarr.open_group(tmp_path / "g.zarr", mode="w")
    write_volume(tmp_path / "g.zarr", (8,), (4,), ("t",), name="temp")  # g.zarr's "temp"
    with chunkwise.trace() as t:
        zarr.open_array(tmp_path / "temp", mode="r")[0]
        zarr.open_group(tmp_path / "g.zarr", mode="r")["temp"][:]
    assert sorted(a.shape for a in t.arrays.values()) == [(4, 6), (8,)]
    assert sorted(row.reads for row in t.totals_by_array()) == [1, 1]


def test_emptiness_checks_and_clears_are_events() -> None:
    """zarr asks ``is_empty`` before creating with mode="w-": a listing the trace records."""
    with chunkwise.trace(MemoryStore()) as t:
        zarr.open_group(t.store, mode="w-")
        asyncio.run(t.store.clear())
    ops = [(e.op, e.key) for e in t.events]
    assert ("is_empty", "") in ops and ops[-1] == ("clear", "")


def test_a_script_that_changes_directory_does_not_move_the_output(
    tmp_path: Path, volume: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "elsewhere").mkdir()
    chdir = "import os\nos.chdir(os.path.join(os.path.dirname(__file__), 'elsewhere'))\n"
    wanders = script(tmp_path, VIEWER, "wanders.py", then=chdir)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli, ["trace", "-o", "out", "--", "python", wanders.name, str(volume)]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "workload.yaml").is_file()
    assert not (tmp_path / "elsewhere" / "out").exists()
    assert Path.cwd() == tmp_path


def test_the_default_array_is_the_one_read_most_often_by_the_user(tmp_path: Path) -> None:
    """One Dask computation reads in many chunk-sized pieces but is one read: the default
    workload is the array the program read most often, the one workload.yaml is for."""
    import dask
    import dask.array as da

    store = MemoryStore()
    zarr.open_group(store, mode="w")
    write_volume(store, (40, 8), (1, 8), ("t", "x"), name="once")  # 40 chunks, 1 read
    write_volume(store, (4, 8), (4, 8), ("t", "x"), name="often")  # 3 reads
    with chunkwise.trace(store) as t, dask.config.set(scheduler="threads"):
        group = zarr.open_group(t.store, mode="r")
        da.from_zarr(group["once"]).compute()
        for i in range(3):
            group["often"][i]
    assert sum(s.array == "once" for s in t.selections) >= 40
    assert t.workload().reads == 3
    files = write_trace_files(t, tmp_path / "out")
    assert files.workloads["often"] == files.workload
