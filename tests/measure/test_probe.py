"""probe_store measures latency, bandwidth and useful concurrency, and cleans up after itself."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from zarr.abc.store import ByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import LocalStore, MemoryStore, WrapperStore

from chunkwise.errors import ChunkwiseError, SpecError
from chunkwise.io.stores import EmulatedStore
from chunkwise.measure.probe import ProbeResult, probe_store, useful_concurrency
from chunkwise.spec import parse_storage

MiB = 2**20
LATENCY_S, BANDWIDTH_BPS, CONCURRENCY = 0.02, 200e6, 8
# Small enough to keep the emulated probe under two seconds: ~200 small objects and 4 MiB
# large ones (21 ms of transfer at 200 MB/s, as much as the latency).
QUICK: dict[str, Any] = {
    "large_bytes": 4 * MiB,
    "repeats": 8,
    "levels": (1, 2, 4, 8, 16, 32),
    "rounds": 3,
    "streams": 4,
}
PROTO = default_buffer_prototype()
OTHER = {"data/zarr.json": b'{"zarr_format": 3}', "data/c/0/0": b"\x01\x02\x03"}


def put_all(store: Store, items: dict[str, bytes]) -> None:
    for key, value in items.items():
        sync(store.set(key, PROTO.buffer.from_bytes(value)))


def contents(store: Store) -> dict[str, bytes]:
    async def read() -> dict[str, bytes]:
        out = {}
        async for key in store.list():
            value = await store.get(key, PROTO)
            assert value is not None
            out[key] = value.to_bytes()
        return out

    return sync(read())


@pytest.fixture(scope="module")
def emulated() -> tuple[ProbeResult, MemoryStore, EmulatedStore]:
    inner = MemoryStore()
    put_all(inner, OTHER)
    store = EmulatedStore(
        inner, latency_s=LATENCY_S, bandwidth_Bps=BANDWIDTH_BPS, concurrency=CONCURRENCY
    )
    return probe_store(store, **QUICK), inner, store


def test_latency_is_the_emulated_latency(emulated: tuple[ProbeResult, Any, Any]) -> None:
    result = emulated[0]
    # The link sleeps 20 ms per request; scheduling adds a little, never takes any away.
    assert 0.018 <= result.latency_s <= 0.030
    assert result.latency_min_s <= result.latency_s <= result.latency_max_s
    assert result.kind == "object"


def test_useful_concurrency_is_the_emulated_concurrency(
    emulated: tuple[ProbeResult, Any, Any],
) -> None:
    result = emulated[0]
    # The link serves 8 requests at once: 1, 2, 4, 8 GETs all finish in one 20 ms wave
    # (throughput doubles each level), 16 and 32 need 2 and 4 waves (throughput flat). A level
    # above 8 cannot beat level 8 by 1.3x, so anything but 8 would be a wrong rule or a
    # scheduling stall of over 10 ms in two of three rounds.
    assert result.useful_concurrency == CONCURRENCY
    rates = dict(result.throughput)
    assert [level for level, _ in result.throughput] == list(QUICK["levels"])
    assert rates[8] == pytest.approx(8 / LATENCY_S, rel=0.3)
    assert rates[32] == pytest.approx(rates[8], rel=0.3)


def test_bandwidths_are_the_emulated_bandwidth(emulated: tuple[ProbeResult, Any, Any]) -> None:
    result = emulated[0]
    assert BANDWIDTH_BPS / 1.5 <= result.aggregate_bandwidth_Bps <= BANDWIDTH_BPS * 1.5
    assert BANDWIDTH_BPS / 1.5 <= result.stream_bandwidth_Bps <= BANDWIDTH_BPS * 1.5
    assert result.aggregate_bandwidth_Bps >= result.stream_bandwidth_Bps


def test_probe_leaves_nothing_behind_and_touches_nothing_else(
    emulated: tuple[ProbeResult, MemoryStore, EmulatedStore],
) -> None:
    _, inner, store = emulated
    assert contents(inner) == OTHER
    # It did go through the store: every probe object written once and read at least once.
    small = 1 + QUICK["repeats"] + QUICK["rounds"] * sum(QUICK["levels"])
    assert store.counts.sets == small + 3 + QUICK["streams"]
    assert store.counts.gets >= store.counts.sets


def test_storage_spec_round_trips_through_parse_storage(
    emulated: tuple[ProbeResult, Any, Any],
) -> None:
    result = emulated[0]
    spec = result.to_storage_spec("lab-s3")
    profile = parse_storage(json.loads(json.dumps(spec)))
    assert profile.name == "lab-s3"
    assert profile.kind == result.kind
    assert profile.latency_s == pytest.approx(result.latency_s, rel=1e-3)
    assert profile.bandwidth_Bps == pytest.approx(result.aggregate_bandwidth_Bps, rel=1e-3)
    assert profile.stream_bandwidth_Bps == pytest.approx(result.stream_bandwidth_Bps, rel=1e-3)
    assert profile.concurrency == result.useful_concurrency


def test_result_serializes_and_reads_well(emulated: tuple[ProbeResult, Any, Any]) -> None:
    result = emulated[0]
    document = json.loads(json.dumps(result.to_dict()))
    assert document["useful_concurrency"] == result.useful_concurrency
    assert document["latency_s"] == result.latency_s
    assert [row["concurrency"] for row in document["throughput"]] == list(QUICK["levels"])
    text = str(result)
    # ~20 ms: "latency 20.3 ms", or "19.9 ms" when the event loop wakes a hair early.
    assert re.search(r"latency (19|2\d)(\.\d+)? ms", text), text
    assert f"useful concurrency {result.useful_concurrency}" in text


def test_plain_memory_store_looks_like_a_filesystem() -> None:
    store = MemoryStore()
    result = probe_store(store, large_bytes=256 * 1024, repeats=5, levels=(1, 2, 4), rounds=1)
    assert result.latency_s < 5e-3
    assert result.kind == "filesystem"
    assert parse_storage(result.to_storage_spec()).kind == "filesystem"
    assert contents(store) == {}


def test_local_store_keeps_no_files_or_directories(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    store = LocalStore(tmp_path)
    probe_store(store, large_bytes=64 * 1024, repeats=3, levels=(1, 2), rounds=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_explicit_prefix_must_be_empty() -> None:
    store = MemoryStore()
    put_all(store, OTHER)
    with pytest.raises(SpecError, match="already holds"):
        probe_store(store, prefix="data", repeats=1, levels=(1,), rounds=1)
    assert contents(store) == OTHER


def test_explicit_prefix_is_used_and_removed() -> None:
    store = EmulatedStore(MemoryStore())
    probe_store(store, prefix="probe-here/", large_bytes=4096, repeats=2, levels=(1, 2), rounds=1)
    assert contents(store) == {}


def test_read_only_store_is_refused() -> None:
    store = MemoryStore(read_only=True)
    with pytest.raises(SpecError, match="read-only"):
        probe_store(store, repeats=1, levels=(1,), rounds=1)


@pytest.mark.parametrize(
    "settings",
    [
        {"levels": ()},
        {"levels": (1, 4, 2)},
        {"levels": (0, 1)},
        {"repeats": 0},
        {"large_bytes": 0},
        {"growth": 1.0},
    ],
)
def test_bad_settings_are_spec_errors(settings: dict[str, Any]) -> None:
    store = MemoryStore()
    with pytest.raises(SpecError):
        probe_store(store, **settings)
    assert contents(store) == {}


class BrokenStore(WrapperStore[Store]):
    """A store whose GETs fail (raise, or return nothing) after ``ok`` of them: a bad input."""

    def __init__(self, store: Store, ok: int, failure: str) -> None:
        super().__init__(store)
        self.ok, self.failure, self.gets = ok, failure, 0

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        self.gets += 1
        if self.gets > self.ok:
            if self.failure == "raise":
                raise OSError("injected failure")
            return None
        return await self._store.get(key, prototype, byte_range)


@pytest.mark.parametrize(("failure", "error"), [("raise", OSError), ("none", ChunkwiseError)])
def test_probe_objects_are_deleted_when_measuring_fails(
    failure: str, error: type[Exception]
) -> None:
    inner = MemoryStore()
    put_all(inner, OTHER)
    store = BrokenStore(inner, ok=5, failure=failure)
    with pytest.raises(error):
        probe_store(store, large_bytes=4096, repeats=10, levels=(1, 2), rounds=1)
    assert store.gets == 6
    assert contents(inner) == OTHER


class RecordingStore(WrapperStore[Store]):
    """A store that notes every key it is asked to GET."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.got: list[str] = []

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        self.got.append(key)
        return await self._store.get(key, prototype, byte_range)


def test_every_get_reads_a_fresh_key_under_one_fresh_prefix() -> None:
    store = RecordingStore(MemoryStore())
    probe_store(store, large_bytes=4096, repeats=6, levels=(1, 2, 4), rounds=2, streams=3)
    assert len(store.got) == len(set(store.got)) == 1 + 6 + 2 * 7 + 3 + 3
    prefixes = {key.split("/")[0] for key in store.got}
    assert len(prefixes) == 1
    assert re.fullmatch(r"chunkwise-probe-[0-9a-f]{8}", prefixes.pop())
    assert contents(store) == {}


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ([(1, 50.0), (2, 100.0), (4, 200.0), (8, 400.0), (16, 400.0), (32, 405.0)], 8),
        ([(1, 50.0), (2, 100.0), (4, 90.0), (8, 200.0), (16, 210.0)], 8),  # a dip at 4
        ([(1, 50.0), (2, 55.0), (4, 52.0)], 1),  # nothing scales
        ([(1, 50.0), (2, 66.0), (4, 86.0)], 4),  # a little over 1.3x, twice
        ([(1, 50.0), (2, 64.9)], 1),  # just under 1.3x
        ([(4, 10.0)], 4),
    ],
)
def test_useful_concurrency_rule(table: list[tuple[int, float]], expected: int) -> None:
    assert useful_concurrency(table, 1.3) == expected


@pytest.mark.slow
def test_probe_over_s3fs_on_a_moto_server(monkeypatch: pytest.MonkeyPatch) -> None:
    server_module = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    from zarr.storage import FsspecStore

    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        options = {"client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}"}}
        fs = s3fs.S3FileSystem(**options)
        fs.mkdir("bucket")
        fs.pipe("bucket/other/keep", b"mine")
        async_fs = s3fs.S3FileSystem(asynchronous=True, **options)
        store = FsspecStore(async_fs, path="bucket")
        result = probe_store(store, large_bytes=64 * 1024, repeats=3, levels=(1, 2), rounds=1)
        sync(async_fs._s3.close())  # the client lives on zarr's loop; close it there
        fs.invalidate_cache()
        assert fs.find("bucket") == ["bucket/other/keep"]
        assert fs.cat("bucket/other/keep") == b"mine"
        assert result.latency_s > 0 and result.useful_concurrency in (1, 2)
        assert parse_storage(result.to_storage_spec()).concurrency == result.useful_concurrency
    finally:
        server.stop()
