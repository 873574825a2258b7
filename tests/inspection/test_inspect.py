"""``inspect`` on stores made here: values match zarr-python's, rules fire on real stores,
the CLI's JSON, --fail-on, errors, and the --workload comparison's rechunk command."""

from __future__ import annotations

import json
import shlex
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from click.testing import CliRunner
from counting_store import Counting
from zarr.storage import LocalStore, ZipStore

import chunkwise
from chunkwise.cli.main import cli
from chunkwise.errors import StoreError

pytestmark = [  # zarr: consolidated v3 metadata, v3 bytes dtype
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]


def _v3_group(path: Path, *, consolidate: bool = True) -> None:
    """A group with a 3-D array, a sharded 2-D array, a coordinate and a subgroup array."""
    root = zarr.open_group(LocalStore(path), mode="w")
    tomo = root.create_array("tomo", shape=(24, 40, 40), chunks=(8, 16, 16), dtype="float32",
                             dimension_names=["z", "y", "x"])  # fmt: skip
    tomo[:8] = np.random.default_rng(0).random((8, 40, 40), dtype="float32")
    maps = root.create_array("maps", shape=(40, 100), chunks=(10, 10), shards=(20, 50),
                             dtype="uint16", dimension_names=["t", "x"])  # fmt: skip
    maps[:20] = 7
    z = root.create_array("z", shape=(24,), chunks=(1,), dtype="float64", dimension_names=["z"])
    z[:] = np.arange(1, 25)
    sub = root.create_group("sub")
    counts = sub.create_array("counts", shape=(30,), chunks=(7,), dtype="int32")
    counts[:] = 1
    if consolidate:
        zarr.consolidate_metadata(LocalStore(path))


def _v2_array(path: Path) -> None:
    a = zarr.create_array(LocalStore(path), shape=(50, 60), chunks=(10, 25), dtype="int32",
                          zarr_format=2, attributes={"_ARRAY_DIMENSIONS": ["y", "x"]})  # fmt: skip
    a[:30] = np.arange(30 * 60, dtype="int32").reshape(30, 60)


def _v2_group(path: Path) -> None:
    root = zarr.open_group(LocalStore(path), mode="w", zarr_format=2)
    t = root.create_array("temp", shape=(12, 20, 20), chunks=(1, 20, 20), dtype="float32",
                          attributes={"_ARRAY_DIMENSIONS": ["time", "lat", "lon"]})  # fmt: skip
    t[:] = 1.5
    time = root.create_array("time", shape=(12,), chunks=(1,), dtype="int64",
                             attributes={"_ARRAY_DIMENSIONS": ["time"]})  # fmt: skip
    time[:] = np.arange(12)
    zarr.consolidate_metadata(LocalStore(path))


def _zip(path: Path) -> None:
    store = ZipStore(path, mode="w")
    root = zarr.open_group(store, mode="w")
    a = root.create_array("a", shape=(30, 30), chunks=(10, 10), shards=(30, 30), dtype="int16")
    a[:] = 3
    b = root.create_array("b", shape=(9,), chunks=(4,), dtype="float32")
    b[:5] = 2.0
    store.close()


def _odd(path: Path) -> None:
    """Arrays advise does not plan for: strings, bytes, datetimes, a scalar."""
    root = zarr.open_group(LocalStore(path), mode="w")
    root.create_array("names", shape=(5,), chunks=(2,), dtype=str)[:] = list("abcde")
    root.create_array("raw", shape=(4,), dtype="S3")
    root.create_array("when", shape=(6,), chunks=(4,), dtype="datetime64[ns]")[:2] = 0
    root.create_array("scalar", shape=(), dtype="float64")[...] = 3.0


def _v2_slash_keys(path: Path) -> None:
    nested = zarr.create_array(LocalStore(path), shape=(6, 6), chunks=(3, 3), dtype="uint8",
                               zarr_format=2, chunk_key_encoding={"name": "v2", "separator": "/"})  # fmt: skip
    nested[:3] = 1


MAKERS = {
    "v3 group (sharded and not, nested)": ("g.zarr", _v3_group),
    "v3 group, not consolidated": ("u.zarr", lambda p: _v3_group(p, consolidate=False)),
    "v2 array": ("v2.zarr", _v2_array),
    "v2 group, consolidated": ("v2g.zarr", _v2_group),
    "zip": ("z.zip", _zip),
    "strings, scalars": ("odd.zarr", _odd),
    "v2 with '/' chunk keys": ("slash.zarr", _v2_slash_keys),
}


def _zarr_arrays(path: Path) -> dict[str, Any]:
    store = ZipStore(path, mode="r", read_only=True) if path.suffix == ".zip" else LocalStore(path)
    node = zarr.open(store, mode="r")
    if isinstance(node, zarr.Array):
        return {"": node}
    return {p: m for p, m in node.members(max_depth=None) if isinstance(m, zarr.Array)}


@pytest.mark.parametrize("kind", list(MAKERS))
@pytest.mark.parametrize("complete", [False, True])
def test_values_match_zarr_python(tmp_path: Path, kind: str, complete: bool) -> None:
    name, make = MAKERS[kind]
    make(tmp_path / name)
    report = chunkwise.inspect(tmp_path / name, complete=complete)
    expected = _zarr_arrays(tmp_path / name)
    assert [a.path for a in report.arrays] == sorted(expected)
    for got in report.arrays:
        want = expected[got.path]
        assert got.zarr_format == want.metadata.zarr_format
        assert got.shape == want.shape
        assert got.dtype == str(want.dtype)
        assert got.chunks == want.chunks
        assert got.shards == want.shards
        assert got.nchunks == want.nchunks
        if complete:
            assert got.nchunks_initialized == want.nchunks_initialized
            assert got.stored_bytes == want.nbytes_stored()
            assert got.objects == sum(1 for _ in _keys(want))
            assert (got.ratio is not None and got.ratio > 0) == bool(got.nchunks_initialized)
        else:
            assert got.nchunks_initialized is None
            assert got.objects is None and got.stored_bytes is None


def _keys(array: Any) -> list[str]:
    from zarr.core.sync import sync

    async def collect() -> list[str]:
        return [k async for k in array.store.list_prefix(array.path)]

    return sync(collect())


def test_tree_dims_codecs_and_metadata_state(tmp_path: Path) -> None:
    _v3_group(tmp_path / "g.zarr")
    report = chunkwise.inspect(tmp_path / "g.zarr")
    assert report.root == "group" and report.consolidated and not report.stale
    assert [g.path for g in report.groups] == ["", "sub"]
    by_path = {a.path: a for a in report.arrays}
    assert set(by_path) == {"maps", "sub/counts", "tomo", "z"}
    assert by_path["tomo"].dims == ("z", "y", "x")
    assert by_path["tomo"].chunk_bytes == 8 * 16 * 16 * 4
    assert by_path["maps"].object_bytes == 20 * 50 * 2 and by_path["maps"].grid_objects == 4
    assert "zstd" in by_path["maps"].codecs
    text = repr(report)
    assert "metadata: consolidated" in text and "sub/: group (v3)" in text
    assert "maps: v3 uint16 40x100 (t, x)" in text
    assert "chunks 10x10 (200 B raw) in shards 20x50 (1.95 KiB raw)" in text
    v2 = chunkwise.inspect(tmp_path / "g.zarr", complete=True)
    assert "objects" in str(v2) and "compression ratio" in str(v2)
    _v2_group(tmp_path / "v2g.zarr")
    legacy = chunkwise.inspect(tmp_path / "v2g.zarr")
    assert legacy.consolidated and legacy.zarr_format == 2
    assert {a.path: a.dims for a in legacy.arrays}["temp"] == ("time", "lat", "lon")


def test_default_reads_metadata_only(tmp_path: Path) -> None:
    """Without --complete no chunk is read and no array is listed; a consolidated store is
    not listed at all."""
    _v3_group(tmp_path / "g.zarr")
    _v3_group(tmp_path / "u.zarr", consolidate=False)
    for name, lists in (("g.zarr", []), ("u.zarr", [("list_dir", ""), ("list_dir", "sub")])):
        store = Counting(LocalStore(tmp_path / name, read_only=True))
        report = chunkwise.inspect(store)  # type: ignore[arg-type]
        assert len(report.arrays) == 4
        assert sorted(c for c in store.calls if c[0] != "get") == lists
        assert all(c[1].rpartition("/")[2] in ("zarr.json",) for c in store.calls if c[0] == "get")


def test_stale_consolidated_metadata(tmp_path: Path) -> None:
    path = tmp_path / "g.zarr"
    _v3_group(path)
    fresh = chunkwise.inspect(path)
    assert "CW107" not in {f.rule for f in fresh.all_findings}
    # Grow an array without consolidating again; remove another; add a third.
    zarr.open_array(LocalStore(path), path="tomo", mode="r+", use_consolidated=False).resize(
        (48, 40, 40)
    )
    shutil.rmtree(path / "z")
    zarr.create_array(LocalStore(path), name="late", shape=(5,), dtype="int8")
    report = chunkwise.inspect(path)
    assert report.consolidated
    assert any("'tomo' shape is [24, 40, 40] in the consolidated metadata but [48, 40, 40]" in s
               for s in report.stale)  # fmt: skip
    assert "'z' is listed but does not exist" in report.stale
    assert {a.path: a.shape for a in report.arrays}["tomo"] == (48, 40, 40)  # the truth
    (stale,) = [f for f in report.all_findings if f.rule == "CW107"]
    assert stale.severity == "error"
    # Listing every key also finds the member the consolidated metadata misses.
    full = chunkwise.inspect(path, complete=True)
    assert "'late' exists but is not listed" in full.stale
    assert "'z' is listed but does not exist" in full.stale


def test_rules_fire_on_real_stores(tmp_path: Path) -> None:
    """The tomogram of the issue (16^3 chunks, 288,000 objects) as metadata only."""
    root = zarr.open_group(LocalStore(tmp_path / "tomo.zarr"), mode="w")
    root.create_array("tomo", shape=(768, 1200, 1280), chunks=(16, 16, 16), dtype="float32",
                      dimension_names=["z", "y", "x"])  # fmt: skip
    root.create_array("z", shape=(768,), chunks=(1,), dtype="float32", dimension_names=["z"])
    big = zarr.create_array(LocalStore(tmp_path / "big.zarr"), shape=(4, 16384, 16384),
                            chunks=(1, 16384, 16384), dtype="float32")  # fmt: skip
    assert big.nchunks == 4
    local = chunkwise.inspect(tmp_path / "tomo.zarr")
    rules = {(f.rule, f.path) for f in local.all_findings}
    assert {("CW103", "tomo"), ("CW104", "z"), ("CW108", "tomo")} <= rules
    # 16 KiB chunks: a whole read is predicted many times slower than in bigger chunks,
    # on a local SSD (zarr-python's CPU per chunk) as on S3 (requests).
    assert ("CW101", "tomo") in rules
    on_s3 = chunkwise.inspect(tmp_path / "tomo.zarr", storage="s3")
    (small,) = [f for f in on_s3.all_findings if (f.rule, f.path) == ("CW101", "tomo")]
    (local_small,) = [f for f in local.all_findings if (f.rule, f.path) == ("CW101", "tomo")]
    assert small.evidence["full_read_s"] > local_small.evidence["full_read_s"]  # type: ignore[operator]
    assert {f.rule for f in chunkwise.inspect(tmp_path / "big.zarr").all_findings} == {"CW102"}
    # The same tomogram in shards of 256^3 has 60 objects: no object-count finding.
    sharded = zarr.create_array(LocalStore(tmp_path / "sharded.zarr"), shape=(768, 1200, 1280),
                                chunks=(16, 16, 16), shards=(256, 256, 256), dtype="float32")  # fmt: skip
    assert sharded.nchunks == 288_000
    assert "CW103" not in {
        f.rule for f in chunkwise.inspect(tmp_path / "sharded.zarr").all_findings
    }


def test_v2_store_with_many_objects_points_to_sharding(tmp_path: Path) -> None:
    zarr.create_array(LocalStore(tmp_path / "v2.zarr"), shape=(1000, 2000), chunks=(10, 10),
                      dtype="uint8", zarr_format=2)  # fmt: skip
    (finding,) = [f for f in chunkwise.inspect(tmp_path / "v2.zarr").all_findings
                  if f.rule == "CW105"]  # fmt: skip
    assert "20,000 objects" in finding.message and "--zarr-format 3" in finding.fix
    zarr.create_array(LocalStore(tmp_path / "few.zarr"), shape=(100, 200), chunks=(10, 10),
                      dtype="uint8", zarr_format=2)  # fmt: skip
    assert "CW105" not in {f.rule for f in chunkwise.inspect(tmp_path / "few.zarr").all_findings}


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_json_shape(tmp_path: Path) -> None:
    _v3_group(tmp_path / "g.zarr")
    result = _run("inspect", str(tmp_path / "g.zarr"), "--json", "--complete")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["metadata"] == {"consolidated": True, "stale": []}
    keys = {"path", "zarr_format", "shape", "dtype", "chunks", "shards", "nchunks",
            "nchunks_initialized", "objects", "stored_bytes", "findings"}  # fmt: skip
    by_path = {a["path"]: a for a in doc["arrays"]}
    for entry in doc["arrays"]:
        assert keys <= set(entry)
    assert by_path["maps"]["shards"] == [20, 50] and by_path["tomo"]["shards"] is None
    assert by_path["maps"]["nchunks"] == 40 and by_path["maps"]["nchunks_initialized"] == 20
    (coord,) = by_path["z"]["findings"]
    assert {"rule", "severity", "message", "fix"} <= set(coord)
    assert coord["rule"] == "CW104" and coord["severity"] == "warning"
    cheap = json.loads(_run("inspect", str(tmp_path / "g.zarr"), "--json").output)
    assert all(a["objects"] is None and a["nchunks_initialized"] is None for a in cheap["arrays"])


def test_fail_on(tmp_path: Path) -> None:
    _v3_group(tmp_path / "g.zarr")  # one warning (CW104), no error
    url = str(tmp_path / "g.zarr")
    assert _run("inspect", url, "--fail-on", "error").exit_code == 0
    assert _run("inspect", url, "--fail-on", "warning").exit_code == 1
    assert _run("inspect", url, "--fail-on", "info").exit_code == 1
    clean = tmp_path / "clean.zarr"
    zarr.create_array(LocalStore(clean), shape=(64, 64), chunks=(64, 64), dtype="float32")
    result = _run("inspect", str(clean), "--fail-on", "info")
    assert result.exit_code == 0 and "findings: none" in result.output
    assert _run("inspect", url, "--fail-on", "fatal").exit_code == 2


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "store '{url}' does not exist; give the path of a Zarr array or group"),
        (
            "empty",
            "store '{url}' is not a Zarr store: its root has no zarr.json, .zarray or .zgroup",
        ),
        ("file", "'{url}' is a plain file, not a Zarr store"),
        ("bad-json", "metadata 'zarr.json' in store '{url}' is not valid JSON"),
        ("bad-meta", "metadata 'zarr.json' in store '{url}' is not valid Zarr metadata"),
        ("bad-member", "metadata 'tomo/zarr.json' in store '{url}' is not valid JSON"),
    ],
)
def test_errors_are_one_sentence(tmp_path: Path, setup: str, message: str) -> None:
    path = tmp_path / "s.zarr"
    if setup == "empty":
        path.mkdir()
    elif setup == "file":
        path = tmp_path / "notes.txt"
        path.write_text("hello")
    elif setup in ("bad-json", "bad-meta"):
        path.mkdir()
        doc = "{not json" if setup == "bad-json" else '{"zarr_format": 3, "node_type": "array"}'
        (path / "zarr.json").write_text(doc)
    elif setup == "bad-member":
        _v3_group(path, consolidate=False)
        (path / "tomo" / "zarr.json").write_text('{"shape": [1,')
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 2
    expected = message.format(url=path)
    assert result.output.startswith(f"Error: {expected}")
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    with pytest.raises(StoreError):
        chunkwise.inspect(path)


def test_unreachable_server_is_one_sentence() -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(
        cli,
        ["inspect", "s3://bucket/data.zarr", "--endpoint-url", f"http://127.0.0.1:{port}",
         "--storage-option", "key=a", "--storage-option", "secret=b"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.output.startswith(
        "Error: store 's3://bucket/data.zarr' cannot be reached (EndpointConnectionError"
    )
    assert result.output.count("\n") == 1


def test_workload_comparison_prints_a_rechunk_command_that_works(tmp_path: Path) -> None:
    src = tmp_path / "vol.zarr"
    data = np.random.default_rng(1).integers(0, 1000, (32, 64, 64), dtype="uint16")
    array = zarr.create_array(LocalStore(src), shape=data.shape, chunks=(32, 8, 8),
                              dtype="uint16", zarr_format=2)  # fmt: skip
    array[:] = data
    result = _run("inspect", str(src), "--workload", "slice-viewer", "--storage", "s3")
    assert result.exit_code == 0, result.output
    assert "(array) for workload slice-viewer on s3:" in result.output
    assert "plane[dim_1,dim_2]: current" in result.output
    (line,) = [x for x in result.output.splitlines() if "move the data:" in x]
    command = shlex.split(line.split("move the data: ", 1)[1])
    assert command[:4] == [
        "chunkwise",
        "rechunk",
        str(src),
        str(tmp_path / "vol-slice-viewer.zarr"),
    ]
    doc = json.loads(
        _run("inspect", str(src), "--workload", "slice-viewer", "--storage", "s3", "--json").output
    )
    (comparison,) = doc["comparisons"]
    best = comparison["best"]
    assert comparison["speedup"] > 1
    assert comparison["current"]["weighted_s"] > best["weighted_s"]
    # The library's advise for the same array, workload and storage agrees.
    advice = chunkwise.advise(
        array={"shape": [32, 64, 64], "dtype": "uint16"}, workload="slice-viewer", storage="s3"
    )
    assert list(advice.best.layout.chunks) == best["chunks"]
    moved = _run(*command[1:], "--quiet")
    assert moved.exit_code == 0, moved.output
    target = zarr.open_array(LocalStore(command[3]), mode="r")
    assert list(target.chunks) == best["chunks"]
    assert (list(target.shards) if target.shards else None) == best["shards"]
    assert target.metadata.zarr_format == best["zarr_format"]
    np.testing.assert_array_equal(target[:], data)
    after = chunkwise.inspect(command[3], workload="slice-viewer", storage="s3")
    (again,) = after.comparisons
    assert again.current_s == pytest.approx(again.best_s, rel=0.05)
    # Never a rechunk into the layout the data already has, nor into one not faster.
    assert again.command == "" and "move the data" not in "\n".join(again.lines())
    assert "nothing to move" in again.note or "keep the data as it is" in again.note


def test_no_move_is_proposed_into_a_layout_predicted_slower_or_the_same() -> None:
    from chunkwise.inspection.store import MIN_MOVE_SPEEDUP, _keep_reason
    from chunkwise.model.array import ArraySpec
    from chunkwise.model.codec import parse_codec
    from chunkwise.model.layout import Layout

    spec = ArraySpec.create([64, 64], "float32")
    codec = parse_codec("zstd:3")
    now = Layout.create(spec, (16, 64), codec=codec)
    other = Layout.create(spec, (64, 16), codec=codec)
    assert "nothing to move" in _keep_reason(now, 1.0, now, 0.5)
    assert "keep the data as it is" in _keep_reason(now, 1.0, other, 2.0)
    assert "keep the data as it is" in _keep_reason(now, 1.0, other, 1.0 / MIN_MOVE_SPEEDUP * 1.01)
    assert _keep_reason(now, 1.0, other, 0.5) == ""


def test_workload_spec_file(tmp_path: Path) -> None:
    _v3_group(tmp_path / "g.zarr")
    spec = tmp_path / "reads.yaml"
    spec.write_text("workload:\n  - {op: series, dim: z, weight: 1}\nstorage: hpc\n")
    report = chunkwise.inspect(tmp_path / "g.zarr", workload=str(spec))
    (comparison,) = report.comparisons  # only the 3-D data array, not coordinates
    assert comparison.path == "tomo" and comparison.storage == "hpc"
    assert comparison.workload == "reads"
    # a group of arrays with named dims is a dataset: the fix moves all of it, for the
    # workload (advise per variable), and never cuts "tomo" out into a bare array
    words = shlex.split(comparison.command)
    assert words[:3] == ["chunkwise", "rechunk", str(tmp_path / "g.zarr")]
    assert words[words.index("--workload") + 1] == str(spec) and "#" not in comparison.command
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = _run("inspect", str(tmp_path / "g.zarr"), "--workload", str(tmp_path / "no.yaml"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_inspect_over_http(tmp_path: Path) -> None:
    """A static HTTP server (Python's own, on 127.0.0.1): consolidated and listed groups."""
    import functools
    import http.server
    import threading

    _v3_group(tmp_path / "g.zarr")
    _v3_group(tmp_path / "u.zarr", consolidate=False)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(tmp_path))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for name in ("g.zarr", "u.zarr"):
            report = chunkwise.inspect(f"{base}/{name}", complete=True)
            assert report.kind == "http" and report.storage.name == "http"
            local = chunkwise.inspect(tmp_path / name, complete=True)
            assert [
                (a.path, a.shape, a.chunks, a.shards, a.nchunks_initialized, a.stored_bytes)
                for a in report.arrays
            ] == [
                (a.path, a.shape, a.chunks, a.shards, a.nchunks_initialized, a.stored_bytes)
                for a in local.arrays
            ]
        assert "CW106" in {f.rule for f in chunkwise.inspect(f"{base}/u.zarr").findings}
        with pytest.raises(StoreError, match="is not a Zarr store"):
            chunkwise.inspect(f"{base}/missing.zarr")
    finally:
        server.shutdown()
        server.server_close()


def test_workload_skips_empty_arrays(tmp_path: Path) -> None:
    """An empty placeholder array beside the data has nothing to price: the comparison is
    about the data array, not an error about a size-0 shape."""
    root = zarr.open_group(LocalStore(tmp_path / "g.zarr"), mode="w")
    root.create_array("vol", shape=(16, 32, 32), chunks=(16, 4, 4), dtype="uint8")
    root.create_array("empty", shape=(0, 32, 32), chunks=(1, 32, 32), dtype="uint8")
    report = chunkwise.inspect(tmp_path / "g.zarr", workload="slice-viewer")
    assert [c.path for c in report.comparisons] == ["vol"]
    zarr.create_array(LocalStore(tmp_path / "e.zarr"), shape=(0, 5), chunks=(2, 5), dtype="f4")
    alone = chunkwise.inspect(tmp_path / "e.zarr", workload="slice-viewer")
    assert alone.comparisons == ()
    assert "no numeric array with dimensions to price" in str(alone)


def test_zero_chunk_size_is_invalid_metadata(tmp_path: Path) -> None:
    path = tmp_path / "z0.zarr"
    zarr.create_array(LocalStore(path), shape=(0,), chunks=(1,), dtype="f4")
    doc = json.loads((path / "zarr.json").read_text())
    doc["chunk_grid"]["configuration"]["chunk_shape"] = [0]
    (path / "zarr.json").write_text(json.dumps(doc))
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.startswith(
        f"Error: metadata 'zarr.json' in store '{path}' is not valid Zarr metadata"
    )


def test_complete_skips_keys_that_vanish_while_listing(tmp_path: Path) -> None:
    """A chunk deleted between the listing and its size (or a dangling link) is not there."""
    path = tmp_path / "a.zarr"
    zarr.create_array(LocalStore(path), shape=(4,), chunks=(2,), dtype="uint8")[:] = 1
    (path / "c" / "9").symlink_to(tmp_path / "nowhere")
    (array,) = chunkwise.inspect(path, complete=True).arrays
    assert array.nchunks_initialized == 2 and array.objects == 3


class _NoListing(Counting):
    """A store that may be read but not listed (S3 without s3:ListBucket, HTTP with 403)."""

    def list(self) -> Any:
        raise PermissionError("Access Denied")

    def list_dir(self, prefix: str) -> Any:
        async def denied() -> Any:
            raise PermissionError("Access Denied")
            yield prefix  # an async generator

        return denied()


def test_a_store_that_cannot_be_listed_is_one_sentence(tmp_path: Path) -> None:
    _v3_group(tmp_path / "u.zarr", consolidate=False)
    for complete in (False, True):
        store = _NoListing(LocalStore(tmp_path / "u.zarr", read_only=True))
        with pytest.raises(
            StoreError, match=r"cannot be listed \(PermissionError: Access Denied\)"
        ):
            chunkwise.inspect(store, complete=complete)  # type: ignore[arg-type]
    _v3_group(tmp_path / "g.zarr")  # consolidated: nothing to list without --complete
    store = _NoListing(LocalStore(tmp_path / "g.zarr", read_only=True))
    assert len(chunkwise.inspect(store).arrays) == 4  # type: ignore[arg-type]
