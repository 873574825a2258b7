"""``bench`` and ``probe`` on a real S3-compatible server started by the test suite."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import s3fs
import yaml
import zarr
from click.testing import CliRunner
from s3server import S3Server
from zarr.storage import FsspecStore

import chunkwise
from chunkwise.cli.main import cli
from chunkwise.io.sources.data import load_data
from chunkwise.io.stores import close_sessions, open_target
from chunkwise.measure.probe import probe_store
from chunkwise.spec import parse_storage

SPEC = {
    "array": {"shape": [32, 96, 96], "dtype": "uint16", "dims": ["t", "y", "x"]},
    "workload": [
        {"op": "series", "dim": "t", "weight": 0.5},
        {"op": "plane", "dims": ["y", "x"], "weight": 0.5},
    ],
    "codec": "zstd:3",
    "candidates": [
        {"name": "v2 maps", "zarr_format": 2, "chunks": [1, 96, 96]},
        {"name": "v3 sharded", "zarr_format": 3, "chunks": [8, 32, 32], "shards": [32, 96, 96]},
    ],
}


def test_bench_writes_and_reads_layouts_on_s3(s3_bucket: tuple[S3Server, str]) -> None:
    server, bucket = s3_bucket
    options = server.storage_options()
    report = chunkwise.bench(
        SPEC,
        data="synthetic:smooth",
        store=f"{bucket}/runs",
        only_candidates=True,
        repeats=2,
        storage_options=options,
        keep=True,
    )
    assert report.storage.kind == "object"
    by_name = {r.name: r for r in report.results}
    assert by_name["v2 maps"].data_objects == 32
    assert by_name["v3 sharded"].objects == 2
    # Every layout is really in the bucket and reads back bit-identical.
    expected = load_data("synthetic:smooth", array=chunkwise.problem(SPEC).array).values
    fs = s3fs.S3FileSystem(asynchronous=True, **options)
    run_dirs = s3fs.S3FileSystem(**options).ls(f"{bucket}/runs")
    assert len(run_dirs) == 1
    for index, result in enumerate(report.results, start=1):
        slug = f"{index:02d}-{result.name.replace(' ', '-')}"
        store = FsspecStore(fs, path=f"{run_dirs[0]}/{slug}.zarr", read_only=True)
        arr = zarr.open_array(store, mode="r")
        assert arr.chunks == result.layout.chunks
        np.testing.assert_array_equal(arr[...], expected)
        for op in result.ops:
            assert op.measured_s > 0 and op.predicted_s > 0
        close_sessions([store])


def test_bench_cleans_up_after_itself_on_s3(s3_bucket: tuple[S3Server, str]) -> None:
    server, bucket = s3_bucket
    options = server.storage_options()
    chunkwise.bench(
        SPEC,
        data="synthetic:smooth",
        store=f"{bucket}/runs",
        only_candidates=True,
        repeats=1,
        warm=False,
        storage_options=options,
    )
    fs = s3fs.S3FileSystem(**options)
    assert fs.find(bucket) == []


def test_probe_reports_a_loopback_latency(s3_bucket: tuple[S3Server, str]) -> None:
    server, bucket = s3_bucket
    target = open_target(f"{bucket}/probe", server.storage_options())
    try:
        result = probe_store(target.open("p"), large_bytes=4 * 2**20, repeats=9, levels=(1, 4, 8))
    finally:
        target.cleanup()
    # A server on 127.0.0.1: requests take some 0.5-20 ms (not the ~44 ms of Nagle's delay).
    assert 0.3e-3 < result.latency_s < 20e-3, result
    assert result.stream_bandwidth_Bps > 10e6
    profile = parse_storage(result.to_storage_spec("loopback"))
    assert profile.latency_s == pytest.approx(result.latency_s, rel=1e-2)
    assert s3fs.S3FileSystem(**server.storage_options()).find(bucket) == []


def test_probe_cli_writes_a_profile_advise_accepts(
    s3_bucket: tuple[S3Server, str], tmp_path: Path
) -> None:
    server, bucket = s3_bucket
    options = server.storage_options()
    out = tmp_path / "probed.yaml"
    args = ["probe", f"{bucket}/p", "--out", str(out), "--endpoint-url", server.endpoint_url]
    args += ["--storage-option", f"key={options['key']}", "--storage-option", f"secret={options['secret']}"]  # fmt: skip
    env = {"AWS_DEFAULT_REGION": server.region}
    result = CliRunner(env=env).invoke(cli, args)
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load(out.read_text())["storage"]
    assert saved["name"] == "probed"
    advised = CliRunner().invoke(
        cli,
        ["advise", "--shape", "64,512,512", "--dtype", "float32", "--workload", "spatial",
         "--storage", str(out), "--json"],
    )  # fmt: skip
    assert advised.exit_code == 0, advised.output
    assert json.loads(advised.output)["storage"]["name"] == "probed"


def test_bench_reads_its_data_from_a_zarr_array_on_s3(s3_bucket: tuple[S3Server, str]) -> None:
    server, bucket = s3_bucket
    options = server.storage_options()
    values = np.arange(32 * 96 * 96, dtype="uint16").reshape(32, 96, 96)
    fs = s3fs.S3FileSystem(asynchronous=True, **options)
    source = FsspecStore(fs, path=f"{bucket.removeprefix('s3://')}/source.zarr")
    zarr.create_array(source, data=values, chunks=(8, 96, 96), dimension_names=["t", "y", "x"])
    close_sessions([source])
    report = chunkwise.bench(
        SPEC,
        data=f"{bucket}/source.zarr",
        store="memory://",
        only_candidates=True,
        repeats=1,
        warm=False,
        storage_options=options,
    )
    assert report.data.synthetic is False
    assert report.array.shape == (32, 96, 96) and report.array.dims == ("t", "y", "x")
    assert all(r.raw_bytes == values.nbytes for r in report.results)
