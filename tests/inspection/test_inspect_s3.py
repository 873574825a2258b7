"""``inspect`` on the real S3-compatible server of the tests: metadata only by default
(no key listing), everything with --complete, and the remote-only finding."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import zarr
from click.testing import CliRunner
from counting_store import Counting
from s3server import S3Server
from zarr.storage import FsspecStore

import chunkwise
from chunkwise.cli.main import cli
from chunkwise.io.stores import _fsspec_store, close_sessions

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # zarr: consolidated v3 metadata


def _write(url: str, options: dict[str, Any], *, consolidate: bool) -> dict[str, Any]:
    store = FsspecStore.from_url(url, storage_options=options)
    root = zarr.open_group(store, mode="w")
    vol = root.create_array("vol", shape=(16, 48, 48), chunks=(4, 8, 8), shards=(8, 48, 48),
                            dtype="uint16", dimension_names=["z", "y", "x"])  # fmt: skip
    vol[:8] = np.arange(8 * 48 * 48, dtype="uint16").reshape(8, 48, 48)
    z = root.create_array("z", shape=(16,), chunks=(1,), dtype="float32", dimension_names=["z"])
    z[:] = np.arange(1, 17, dtype="float32")
    extra = root.create_group("extra")
    extra.create_array("small", shape=(10, 10), chunks=(5, 5), dtype="int8")[:] = 1
    if consolidate:
        zarr.consolidate_metadata(store)
    expected = {
        p: {"nchunks_initialized": m.nchunks_initialized, "stored": m.nbytes_stored(),
            "chunks": m.chunks, "shards": m.shards, "nchunks": m.nchunks}
        for p, m in root.members(max_depth=None) if isinstance(m, zarr.Array)
    }  # fmt: skip
    close_sessions([store])
    return expected


def test_inspect_on_s3_lists_nothing_by_default(s3_bucket: tuple[S3Server, str]) -> None:
    server, bucket = s3_bucket
    options = server.storage_options()
    url = f"{bucket}/plain.zarr"
    expected = _write(url, options, consolidate=False)
    _write(f"{bucket}/cons.zarr", options, consolidate=True)

    # Default: one delimited listing per group, never inside an array, no data read.
    store = Counting(_fsspec_store(url, options))
    report = chunkwise.inspect(store)  # type: ignore[arg-type]
    close_sessions([store._store])
    assert sorted(c for c in store.calls if c[0] != "get") == [
        ("list_dir", ""),
        ("list_dir", "extra"),
    ]
    assert all(c[1].endswith("zarr.json") for c in store.calls if c[0] == "get")
    assert {a.path for a in report.arrays} == set(expected)
    for array in report.arrays:
        assert array.chunks == expected[array.path]["chunks"]
        assert array.shards == expected[array.path]["shards"]
        assert array.nchunks == expected[array.path]["nchunks"]
        assert array.objects is None

    # Consolidated metadata: nothing is listed at all.
    store = Counting(_fsspec_store(f"{bucket}/cons.zarr", options))
    consolidated = chunkwise.inspect(store)  # type: ignore[arg-type]
    close_sessions([store._store])
    assert [c for c in store.calls if c[0] != "get"] == []
    assert consolidated.consolidated and not consolidated.stale

    # Through the URL: the S3 storage profile, and the remote-only finding.
    remote = chunkwise.inspect(url, storage_options=options)
    assert remote.kind == "s3" and remote.storage.name == "s3"
    assert "CW106" in {f.rule for f in remote.findings}
    assert "CW106" not in {
        f.rule for f in chunkwise.inspect(f"{bucket}/cons.zarr", storage_options=options).findings
    }

    # --complete lists every key once and matches zarr-python.
    full = chunkwise.inspect(url, complete=True, storage_options=options)
    for array in full.arrays:
        assert array.nchunks_initialized == expected[array.path]["nchunks_initialized"]
        assert array.stored_bytes == expected[array.path]["stored"]


def test_cli_inspect_s3(s3_bucket: tuple[S3Server, str], monkeypatch: pytest.MonkeyPatch) -> None:
    server, bucket = s3_bucket
    options = server.storage_options()
    url = f"{bucket}/plain.zarr"
    _write(url, options, consolidate=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", server.region)
    args = ["inspect", url, "--endpoint-url", server.endpoint_url, "--complete", "--json",
            "--storage-option", f"key={options['key']}",
            "--storage-option", f"secret={options['secret']}"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["storage"] == "s3" and doc["metadata"]["consolidated"] is False
    assert {a["path"] for a in doc["arrays"]} == {"vol", "z", "extra/small"}
    assert [f["rule"] for f in doc["findings"]] == ["CW106"]
    result = CliRunner().invoke(cli, [*args[:-5], *args[-4:], "--workload", "roi"])
    assert result.exit_code == 0, result.output
    assert f"--endpoint-url {server.endpoint_url}" in result.output  # the command runs as printed
    assert options["secret"] not in result.output
