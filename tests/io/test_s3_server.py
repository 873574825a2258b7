"""The S3 server the tests start for themselves is real, fast and cleaned up."""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import s3fs
import zarr
import zarr.storage
from s3server import S3Server, start_s3_server

#: Slower than this per small GET and radosgw is most likely missing ``tcp_nodelay=1``
#: (then every GET waits ~40 ms for a delayed ACK); with it a GET takes a few ms.
SMALL_GET_MEDIAN_LIMIT = 0.020


def filesystem(server: S3Server, **kwargs: object) -> s3fs.S3FileSystem:
    """An s3fs file system for ``server``, not shared with other tests."""
    return s3fs.S3FileSystem(**server.storage_options(), skip_instance_cache=True, **kwargs)


def pids_mentioning(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (by pgrep, else from /proc)."""
    pgrep = shutil.which("pgrep")
    if pgrep is not None:
        found = subprocess.run([pgrep, "-f", text], capture_output=True, text=True, check=False)
        return [int(pid) for pid in found.stdout.split()]
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


def test_put_and_get_through_s3fs(s3_bucket: tuple[S3Server, str]) -> None:
    server, url = s3_bucket
    fs = filesystem(server)
    payload = np.random.default_rng(1).integers(0, 256, 100_000, dtype=np.uint8).tobytes()
    fs.pipe(f"{url}/some/prefix/blob.bin", payload)
    fs.pipe(f"{url}/small.txt", b"hello")

    assert fs.cat(f"{url}/some/prefix/blob.bin") == payload
    assert fs.cat_file(f"{url}/some/prefix/blob.bin", start=10, end=20) == payload[10:20]
    assert fs.cat(f"{url}/small.txt") == b"hello"
    assert fs.size(f"{url}/some/prefix/blob.bin") == len(payload)
    bucket = url.removeprefix("s3://")
    assert sorted(fs.find(url)) == [f"{bucket}/small.txt", f"{bucket}/some/prefix/blob.bin"]


@pytest.mark.parametrize("shards", [None, (16, 32)], ids=["chunks", "shards"])
def test_zarr_v3_array_round_trips_bit_identical(
    s3_bucket: tuple[S3Server, str], shards: tuple[int, int] | None
) -> None:
    server, url = s3_bucket
    bucket = url.removeprefix("s3://")
    data = np.random.default_rng(2).standard_normal((40, 70)).astype("float32")

    store = zarr.storage.FsspecStore(filesystem(server, asynchronous=True), path=f"{bucket}/prefix")
    array = zarr.create_array(
        store, shape=data.shape, dtype=data.dtype, chunks=(8, 16), shards=shards, zarr_format=3
    )
    array[:] = data

    # Read through a fresh file system and store: nothing comes from a cache.
    reread = zarr.storage.FsspecStore(
        filesystem(server, asynchronous=True), path=f"{bucket}/prefix", read_only=True
    )
    back = zarr.open_array(reread, mode="r")
    assert back.metadata.zarr_format == 3
    assert back.dtype == data.dtype
    assert back.shape == data.shape
    assert np.asarray(back[:]).tobytes() == data.tobytes()
    assert np.asarray(back[5:13, 20:50]).tobytes() == data[5:13, 20:50].tobytes()

    # The array really is in the object store: metadata and one object per chunk or shard.
    keys = [key.removeprefix(f"{bucket}/prefix/") for key in filesystem(server).find(url)]
    per_object = (8, 16) if shards is None else shards
    objects = -(-40 // per_object[0]) * -(-70 // per_object[1])
    assert "zarr.json" in keys
    assert len([key for key in keys if key.startswith("c/")]) == objects


def test_small_gets_are_fast(s3_bucket: tuple[S3Server, str]) -> None:
    """radosgw must run with ``tcp_nodelay=1``: without it each small GET takes ~40 ms."""
    server, url = s3_bucket
    fs = filesystem(server)
    payload = bytes(range(256)) * 4  # 1 KiB
    fs.pipe(f"{url}/small.bin", payload)
    assert fs.cat_file(f"{url}/small.bin") == payload  # opens the connection

    seconds = []
    for _ in range(20):
        started = time.perf_counter()
        body = fs.cat_file(f"{url}/small.bin")
        seconds.append(time.perf_counter() - started)
        assert body == payload
    median = statistics.median(seconds)

    if server.backend == "moto":
        pytest.skip(
            f"latency check is for radosgw's tcp_nodelay; this server is moto "
            f"(median small GET {median * 1000:.1f} ms)"
        )
    assert median < SMALL_GET_MEDIAN_LIMIT, (
        f"median of 20 small GETs is {median * 1000:.1f} ms on radosgw: "
        f"is tcp_nodelay=1 missing from rgw_frontends?"
    )


def test_context_manager_leaves_no_process_behind(s3_server: S3Server) -> None:
    with start_s3_server(s3_server.backend) as second:
        assert second.backend == s3_server.backend
        assert second.endpoint_url != s3_server.endpoint_url
        second.bucket("chunkwise-second")
        if second.backend == "radosgw":
            assert second.state_dir is not None
            assert sorted(pids_mentioning(second.state_dir)) == sorted(second.pids)
            assert len(second.pids) == 3  # monitor, OSD, gateway

    if second.backend == "radosgw":
        assert second.state_dir is not None
        assert pids_mentioning(second.state_dir) == []
        assert not Path(second.state_dir).exists()
    host, port = second.endpoint_url.removeprefix("http://").rsplit(":", 1)
    with pytest.raises(OSError), socket.create_connection((host, int(port)), timeout=2):
        pass
