"""``bench`` measures through the reader the spec prices: tensorstore, zarrs, zarr-python.

tensorstore reads a local directory with its ``file`` kvstore (requests: its own
``batch_read`` metric) and the emulated store over HTTP from
:class:`~chunkwise.io.http_emulation.EmulatedHTTPServer` (requests counted by the
server). Counts are checked against the model's tensorstore profile; values read are
checked by the benchmark itself (and here, that a wrong read stops it); the reports name
the reader priced and the one that measured. No wall-clock assertions.
"""

from __future__ import annotations

import io
import json
import math
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

import chunkwise
from chunkwise.io.http_emulation import EmulatedHTTPServer
from chunkwise.io.stores import Emulation, open_target
from chunkwise.measure import readers as bench_readers
from chunkwise.measure.results import BenchReport
from chunkwise.report.bench import bench_json, bench_markdown, context_items, print_bench
from chunkwise.report.html import bench_html

pytest.importorskip("tensorstore")

SPEC: dict[str, Any] = {
    "array": {"shape": [32, 128, 128], "dtype": "float32", "dims": ["z", "y", "x"]},
    "workload": [
        {"op": "plane", "dims": ["y", "x"], "weight": 0.5},
        {"op": "point", "count": 20, "weight": 0.5},
    ],
    "codec": "blosc:zstd:5:shuffle",
    "reader": "tensorstore",
    "candidates": [
        {"name": "v2 32^3", "zarr_format": 2, "chunks": [32, 32, 32]},
        {"name": "v3 16x32x32 in shards", "zarr_format": 3, "chunks": [16, 32, 32],
         "shards": [32, 64, 64]},
    ],
}  # fmt: skip

EMULATED = "emulated://?latency=5ms&bandwidth=1GB/s&concurrency=64"


def _bench(store: str, spec: dict[str, Any] = SPEC, **options: Any) -> BenchReport:
    return chunkwise.bench(
        spec, data="synthetic:tomogram", store=store, only_candidates=True,
        repeats=4, warm=False, **options,
    )  # fmt: skip


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> BenchReport:
    return _bench(str(tmp_path_factory.mktemp("bench")))


@pytest.fixture(scope="module")
def emulated() -> BenchReport:
    return _bench(EMULATED)


def _counts_match_the_model(report: BenchReport) -> None:
    for result in report.results:
        sharded = result.layout.shards is not None
        for op in result.ops:
            where = (result.name, op.name, op.requests, op.predicted_requests)
            assert math.isfinite(op.requests), where
            if sharded and op.kind == "point":
                # tensorstore merges reads of neighbouring inner chunks of a shard (gaps up
                # to 4095 bytes over HTTP, 255 on files); the tensorstore preset prices no
                # merging, so scattered points cost at most what it predicts.
                assert 1 <= op.requests <= op.predicted_requests + 1, where
            else:
                assert op.requests == pytest.approx(op.predicted_requests, rel=0.5, abs=1.0), where


@pytest.mark.parametrize("which", ["local", "emulated"])
def test_tensorstore_measures_every_layout(which: str, request: pytest.FixtureRequest) -> None:
    report: BenchReport = request.getfixturevalue(which)
    assert report.storage.reader.name == "tensorstore"
    assert report.measured_reader.startswith("tensorstore ")
    assert report.written_by.startswith("zarr-python ")
    for result in report.results:
        assert result.reader == report.measured_reader
        assert result.reader_notes == ()
        for op in result.ops:
            assert op.mean_s > 0 and op.predicted_s > 0
    _counts_match_the_model(report)


def test_v2_requests_are_one_per_chunk_through_tensorstore(emulated: BenchReport) -> None:
    # One chunk per object and no merging across objects: a plane of 32^3 chunks is the
    # 4 x 4 chunks it crosses, whatever its position.
    v2 = next(r for r in emulated.results if r.layout.zarr_format == 2)
    assert v2.op("plane[y,x]").requests == 16 == v2.op("plane[y,x]").predicted_requests


@pytest.mark.parametrize("which", ["local", "emulated"])
def test_reports_name_the_priced_and_the_measuring_reader(
    which: str, request: pytest.FixtureRequest
) -> None:
    report: BenchReport = request.getfixturevalue(which)
    readers = dict(context_items(report))["Readers"]
    assert readers.startswith(f"priced tensorstore; measured through {report.measured_reader}")
    assert "writes through zarr-python" in readers
    console = Console(file=io.StringIO(), width=300)
    print_bench(report, console)
    terminal = console.file.getvalue()  # type: ignore[attr-defined]
    for text in (terminal, bench_html(report), bench_markdown(report)):
        assert f"measured through {report.measured_reader}" in text
        assert "priced tensorstore" in text
    document = json.loads(bench_json(report))
    assert document["storage"]["reader"] == "tensorstore"
    assert document["measured_reader"] == report.measured_reader
    assert {r["reader"] for r in document["results"]} == {report.measured_reader}


def test_predictions_use_a_calibration_through_tensorstore(emulated: BenchReport) -> None:
    reader = emulated.storage.reader
    assert reader.name == "tensorstore" and reader.threads == 1
    (note,) = [n for n in emulated.notes if "CPU costs calibrated through" in n]
    assert f"calibrated through {emulated.measured_reader} on this machine" in note
    assert f"{reader.per_chunk_cpu_s * 1e3:.2f} ms per chunk" in note


def test_a_wrong_read_stops_the_benchmark(monkeypatch: pytest.MonkeyPatch) -> None:
    opened = bench_readers._tensorstore_reads

    def off_by_one(*args: Any) -> bench_readers.ArrayReads:
        reads = opened(*args)
        read = reads.read
        reads.read = lambda op, selection: np.asarray(read(op, selection)) + 1
        return reads

    monkeypatch.setattr(bench_readers, "_tensorstore_reads", off_by_one)
    spec = {**SPEC, "candidates": SPEC["candidates"][:1]}
    with pytest.raises(RuntimeError, match="differ from the data written"):
        _bench("memory://", spec)


def test_a_reader_not_installed_is_measured_through_zarr_python(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = bench_readers.find_spec
    monkeypatch.setattr(
        bench_readers, "find_spec", lambda name: None if name == "tensorstore" else real(name)
    )
    choice = bench_readers.choose_reader("tensorstore", open_target("memory://"))
    assert choice.family == "zarr-python"
    assert choice.note is not None
    assert "tensorstore" in choice.note and "not installed" in choice.note
    assert "pip install tensorstore" in choice.note and "zarr-python" in choice.note
    spec = {**SPEC, "candidates": SPEC["candidates"][1:]}
    report = _bench("memory://", spec)
    assert report.storage.reader.name == "tensorstore"
    assert report.measured_reader.startswith("zarr-python ")
    assert choice.note in report.notes
    assert (
        "priced tensorstore; measured through zarr-python" in dict(context_items(report))["Readers"]
    )


def test_zarrs_measures_local_directories(tmp_path: Path) -> None:
    pytest.importorskip("zarrs")
    spec = {**SPEC, "reader": "zarrs", "candidates": SPEC["candidates"][1:]}
    report = _bench(str(tmp_path / "bench"), spec)
    assert report.measured_reader.startswith("zarrs ")
    (result,) = report.results
    assert result.reader == report.measured_reader
    # zarrs opens the files itself: no requests to count.
    assert math.isnan(result.op("plane[y,x]").requests)
    # Scattered points are coordinate selections zarrs cannot index: zarr-python's
    # pipeline serves them, and the report says so.
    assert any("point[20]" in note and "back to zarr-python" in note for note in report.notes)


def test_zarrs_is_not_measured_on_the_emulated_store() -> None:
    pytest.importorskip("zarrs")
    choice = bench_readers.choose_reader("zarrs", open_target(EMULATED))
    assert choice.family == "zarr-python"
    assert choice.note is not None and "HTTP" in choice.note


# ---------------------------------------------------------------------------- the server


def _get(url: str, range_: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers={"Range": range_} if range_ else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, b"", dict(error.headers)


def test_the_server_answers_ranges_and_counts(tmp_path: Path) -> None:
    payload = bytes(range(256)) * 4
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "shard").write_bytes(payload)
    with EmulatedHTTPServer(tmp_path, Emulation(latency_s=0.001)) as server:
        assert _get(server.url("a/shard"))[:2] == (200, payload)
        status, body, headers = _get(server.url("a/shard"), "bytes=10-19")
        assert (status, body) == (206, payload[10:20])
        assert headers["Content-Range"] == f"bytes 10-19/{len(payload)}"
        assert _get(server.url("a/shard"), "bytes=-16")[:2] == (206, payload[-16:])
        assert _get(server.url("a/shard"), "bytes=1000-")[:2] == (206, payload[1000:])
        assert _get(server.url("a/shard"), f"bytes={len(payload)}-")[0] == 416
        assert _get(server.url("a/missing"))[0] == 404
        assert _get(server.url("../outside"))[0] == 404
        counts = server.counts
        assert counts.gets == 7
        assert counts.bytes_read == len(payload) + 10 + 16 + (len(payload) - 1000)
