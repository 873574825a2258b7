"""``rechunk`` into the real S3-compatible server of the tests: the result reads back
bit-identical, the lease is a conditional put that refuses a second run, a dead holder's
lease is taken over, the same command again finds its finished result, and --overwrite
replaces only what is provably Zarr."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from s3server import S3Server
from zarr.storage import FsspecStore

from chunkwise import api
from chunkwise.errors import SpecError, StoreError
from chunkwise.io.stores import _fsspec_store, close_sessions
from chunkwise.rechunking.lease import Holder, TargetBusyError, acquire_lease
from chunkwise.rechunking.target import LEASE_KEY

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::UserWarning"),  # zarr: consolidated v3 metadata
]

SHAPE = (24, 32, 20)


def source(tmp_path: Path) -> tuple[Path, np.ndarray]:
    data = np.random.default_rng(5).standard_normal(SHAPE).astype("float32")
    path = tmp_path / "maps.zarr"
    zarr.create_array(path, data=data, chunks=(1, 32, 20))
    return path, data


def read(url: str, options: dict[str, Any]) -> np.ndarray:
    store = FsspecStore.from_url(url, storage_options=options, read_only=True)
    try:
        return np.asarray(zarr.open_array(store, mode="r")[...])
    finally:
        close_sessions([store])


def keys(url: str, options: dict[str, Any]) -> list[str]:
    store = _fsspec_store(url, options)
    try:
        from chunkwise.io.stores import store_keys

        return store_keys(store)
    finally:
        close_sessions([store])


def test_rechunk_to_s3_reads_back_and_reruns_find_it_finished(
    s3_bucket: tuple[S3Server, str], tmp_path: Path
) -> None:
    server, bucket = s3_bucket
    options = server.storage_options()
    src, data = source(tmp_path)
    url = f"{bucket}/series.zarr"
    result = api.rechunk(src, url, chunks=(24, 8, 4), storage_options=options)
    assert read(url, options).tobytes() == data.tobytes()
    assert not [k for k in keys(url, options) if k.startswith(".chunkwise-rechunk")]
    assert result.results[""].tasks_run > 0  # type: ignore[union-attr]
    again = api.rechunk(src, url, chunks=(24, 8, 4), storage_options=options)
    assert again.completed is not None  # type: ignore[union-attr]
    assert again.results[""].tasks_run == 0  # type: ignore[union-attr]


def test_a_held_lease_refuses_a_second_run_until_released(
    s3_bucket: tuple[S3Server, str], tmp_path: Path
) -> None:
    server, bucket = s3_bucket
    options = server.storage_options()
    src, data = source(tmp_path)
    url = f"{bucket}/busy.zarr"
    store = _fsspec_store(url, options)
    lease = acquire_lease(store, url, LEASE_KEY)
    try:
        with pytest.raises(
            TargetBusyError, match=r"is being written by another chunkwise run \(pid"
        ):
            api.rechunk(src, url, chunks=(24, 8, 4), storage_options=options)
        # The lease object was created with If-None-Match: a second taker is refused too.
        second = _fsspec_store(url, options)
        with pytest.raises(TargetBusyError, match=rf"pid {os.getpid()} on host"):
            acquire_lease(second, url, LEASE_KEY)
        close_sessions([second])
    finally:
        lease.release()
        close_sessions([store])
    api.rechunk(src, url, chunks=(24, 8, 4), storage_options=options)
    assert read(url, options).tobytes() == data.tobytes()


def _put_lock(url: str, options: dict[str, Any], holder: Holder) -> None:
    store = _fsspec_store(url, options)
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    try:
        buffer = default_buffer_prototype().buffer.from_bytes(holder.to_bytes())
        sync(store.set(LEASE_KEY, buffer))
    finally:
        close_sessions([store])


def test_a_dead_holders_lease_is_taken_over_and_a_live_ones_is_not(
    s3_bucket: tuple[S3Server, str], tmp_path: Path
) -> None:
    server, bucket = s3_bucket
    options = server.storage_options()
    src, data = source(tmp_path)
    url = f"{bucket}/stale.zarr"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    holder = Holder(socket.gethostname(), boot, int(dead.stdout), "1", "t", time.time(),
                    time.time(), "chunkwise rechunk ...")  # fmt: skip
    _put_lock(url, options, holder)
    api.rechunk(src, url, chunks=(24, 8, 4), storage_options=options)  # provably dead
    assert read(url, options).tobytes() == data.tobytes()
    # A holder on another machine cannot be proven dead: refused, naming the key to delete.
    other = Holder("elsewhere", "x", 1, "1", "t", time.time() - 3600, time.time() - 600, "")
    url2 = f"{bucket}/foreign.zarr"
    _put_lock(url2, options, other)
    with pytest.raises(TargetBusyError) as refused:
        api.rechunk(src, url2, chunks=(24, 8, 4), storage_options=options)
    message = str(refused.value)
    assert "host elsewhere" in message and "last heartbeat 600 s ago" in message
    assert f"delete {url2}/.chunkwise-rechunk/lock" in message


def test_overwrite_on_s3_replaces_only_zarr(
    s3_bucket: tuple[S3Server, str], tmp_path: Path
) -> None:
    server, bucket = s3_bucket
    options = server.storage_options()
    src, data = source(tmp_path)
    url = f"{bucket}/mixed.zarr"
    store = FsspecStore.from_url(url, storage_options=options)
    zarr.create_array(store, data=np.arange(10), chunks=(5,))
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    sync(store.set("README.txt", default_buffer_prototype().buffer.from_bytes(b"mine")))
    close_sessions([store])
    with pytest.raises(StoreError, match=r"holds 'README.txt', which is not part of a Zarr store"):
        api.rechunk(src, url, chunks=(24, 8, 4), storage_options=options, overwrite=True)
    assert "README.txt" in keys(url, options)
    url2 = f"{bucket}/plain.zarr"
    store = FsspecStore.from_url(url2, storage_options=options)
    zarr.create_array(store, data=np.arange(10), chunks=(5,))
    close_sessions([store])
    api.rechunk(src, url2, chunks=(24, 8, 4), storage_options=options, overwrite=True)
    assert read(url2, options).tobytes() == data.tobytes()


def test_s3_sources_and_targets_that_overlap_are_refused(
    s3_bucket: tuple[S3Server, str], tmp_path: Path
) -> None:
    server, bucket = s3_bucket
    options = server.storage_options()
    src, _ = source(tmp_path)
    url = f"{bucket}/src.zarr"
    api.rechunk(src, url, chunks=(24, 8, 4), storage_options=options)
    for target in (url, f"{url}/", f"{url}/inner.zarr", bucket, f"{bucket}//src.zarr/"):
        with pytest.raises(SpecError, match="overlaps the source"):
            api.rechunk(url, target, chunks=(24, 8, 8), storage_options=options, overwrite=True)
    assert read(url, options).shape == SHAPE


def test_the_cli_names_a_busy_s3_target_in_one_line(
    s3_bucket: tuple[S3Server, str], tmp_path: Path
) -> None:
    server, bucket = s3_bucket
    options = server.storage_options()
    src, _ = source(tmp_path)
    url = f"{bucket}/cli.zarr"
    store = _fsspec_store(url, options)
    lease = acquire_lease(store, url, LEASE_KEY)
    try:
        args = [sys.executable, "-m", "chunkwise", "rechunk", str(src), url, "--chunks", "24,8,4",
                "--endpoint-url", server.endpoint_url,
                "--storage-option", f"key={server.access_key}",
                "--storage-option", f"secret={server.secret_key}"]  # fmt: skip
        env = {**os.environ, "AWS_DEFAULT_REGION": server.region}
        done = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    finally:
        lease.release()
        close_sessions([store])
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("Error: target") and done.stderr.count("\n") == 1
    assert "is being written by another chunkwise run" in done.stderr
