"""The emulated store's two bandwidths: one request's (stream) and all requests' (aggregate).

``emulated://?latency=20ms&bandwidth=1GB/s&stream_bandwidth=100MB/s`` is a link whose
requests each take at least ``latency + bytes / stream_bandwidth`` and whose transfers
together never exceed ``bandwidth``. The link books every request on a clock it is given
(:meth:`_Link.schedule`), so these tests check the arithmetic on virtual time, exactly;
the only wall-clock checks are lower bounds, which a loaded machine cannot break (a sleep
only ever lasts longer).
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from zarr.core.buffer import default_buffer_prototype
from zarr.core.buffer.cpu import Buffer
from zarr.storage import MemoryStore

import chunkwise
from chunkwise.errors import SpecError
from chunkwise.io.stores import EmulatedStore, Emulation, _Link, open_target

MB = 1e6
BOTH = "emulated://?latency=20ms&bandwidth=1GB/s&stream_bandwidth=100MB/s&concurrency=64"


def finishes(link: _Link, requests: list[tuple[float, int]]) -> list[float]:
    """When each ``(start, nbytes)`` request completes, booked in order of start."""
    return [link.schedule(start, nbytes) for start, nbytes in requests]


# --- the URL, the profile, the description ---------------------------------------------


def test_url_with_both_bandwidths() -> None:
    emulation = open_target(BOTH).emulation
    assert emulation == Emulation(0.020, 1e9, 64, 100e6)
    profile = emulation.profile()
    assert profile.bandwidth_Bps == 1e9
    assert profile.stream_bandwidth_Bps == 100e6
    assert profile.latency_s == 0.020 and profile.concurrency == 64
    assert emulation.describe() == (
        "20 ms latency, 954 MiB/s aggregate, 95.4 MiB/s per request, 64 concurrent requests"
    )


def test_without_stream_bandwidth_one_request_may_use_the_whole_link() -> None:
    emulation = open_target("emulated://?latency=20ms&bandwidth=500MB/s").emulation
    assert emulation is not None
    profile = emulation.profile()
    assert profile.stream_bandwidth_Bps == profile.bandwidth_Bps == 500e6
    assert emulation.describe() == "20 ms latency, 477 MiB/s, 64 concurrent requests"


def test_equal_bandwidths_are_described_once() -> None:
    url = "emulated://?latency=4ms&bandwidth=200MB/s&stream_bandwidth=200MB/s&concurrency=8"
    emulation = open_target(url).emulation
    assert emulation is not None
    assert emulation.describe() == "4 ms latency, 191 MiB/s, 8 concurrent requests"
    assert emulation.profile().stream_bandwidth_Bps == 200e6


def test_every_store_of_the_target_gets_the_stream_bandwidth() -> None:
    store = open_target(BOTH).open("layout")
    assert store.stream_bandwidth_Bps == 100e6
    assert store.bandwidth_Bps == 1e9
    assert store.storage_profile().stream_bandwidth_Bps == 100e6
    assert "95.4 MiB/s per request" in repr(store)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "emulated://?bandwidth=1GB/s&stream_bandwidth=2GB/s",
            "emulated store stream_bandwidth 2GB/s exceeds its bandwidth 1GB/s, the aggregate "
            "over all requests; give a stream_bandwidth at most the bandwidth, or leave it out "
            "so one request may use the whole link.",
        ),
        (
            "emulated://?stream_bandwidth=fast",
            "emulated stream_bandwidth 'fast' is not a rate; write it like '200MB/s'.",
        ),
        (
            "emulated://?stream_bandwidth=0MB/s",
            "emulated stream_bandwidth '0MB/s' must be positive; write it like '200MB/s'.",
        ),
        (
            "emulated://?streams=4",
            "emulated store setting(s) 'streams' unknown; use latency, bandwidth, "
            "stream_bandwidth and concurrency, like "
            "emulated://?latency=20ms&bandwidth=1GB/s&stream_bandwidth=100MB/s&concurrency=64.",
        ),
    ],
)
def test_a_bad_setting_is_one_sentence_naming_it(url: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        open_target(url)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latency_s": -1.0}, "emulated store latency -1.0 s must not be negative; write it like latency=20ms."),
        ({"bandwidth_Bps": 0.0}, "emulated store bandwidth 0.0 B/s must be positive; write it like bandwidth=100MB/s."),
        ({"stream_bandwidth_Bps": -5.0}, "emulated store stream_bandwidth -5.0 B/s must be positive; write it like stream_bandwidth=100MB/s."),
        ({"concurrency": 0}, "emulated store concurrency 0 must be at least 1; write it like concurrency=64."),
    ],
)  # fmt: skip
def test_a_bad_emulation_value_is_one_sentence(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(SpecError) as info:
        Emulation(**kwargs)  # type: ignore[arg-type]
    assert str(info.value) == message


# --- virtual accounting ------------------------------------------------------------------


def test_one_request_takes_latency_plus_its_bytes_at_the_stream_rate() -> None:
    link = _Link(Emulation(0.020, 1e9, 64, 10 * MB))
    assert link.schedule(5.0, int(1 * MB)) == pytest.approx(5.0 + 0.020 + 0.1)


def test_concurrent_streams_each_run_at_the_stream_rate_below_the_aggregate() -> None:
    # 8 x 10 MB/s = 80 MB/s, well under 1 GB/s: all eight end together.
    link = _Link(Emulation(0.020, 1e9, 64, 10 * MB))
    ends = finishes(link, [(0.0, int(1 * MB))] * 8)
    assert ends == pytest.approx([0.120] * 8)
    assert link.booked_s == pytest.approx(8 * MB / 1e9)


def test_the_aggregate_caps_concurrent_streams() -> None:
    # 8 x 10 MB/s would be 80 MB/s; the link carries 20 MB/s, so 8 MB take 0.4 s.
    link = _Link(Emulation(0.0, 20 * MB, 64, 10 * MB))
    ends = finishes(link, [(0.0, int(1 * MB))] * 8)
    assert max(ends) == pytest.approx(0.4)
    assert min(ends) == pytest.approx(0.1)  # none faster than one stream
    assert sorted(ends) == ends


def test_without_stream_bandwidth_the_link_behaves_as_before() -> None:
    # The former link: transfers queue on the shared bandwidth, first come first served.
    latency, bandwidth = 0.020, 50 * MB
    requests = [(0.0, 1_000_000), (0.0, 250_000), (0.005, 0), (0.1, 2_000_000), (0.2, 10)]
    link = _Link(Emulation(latency, bandwidth, 64))
    free_at, expected = 0.0, []
    for start, nbytes in requests:
        free_at = max(start + latency, free_at) + nbytes / bandwidth
        expected.append(free_at)
    assert finishes(link, requests) == pytest.approx(expected)


requests_strategy = st.lists(
    st.tuples(
        st.floats(0.0, 0.05, allow_nan=False),  # gap since the previous request, s
        st.integers(0, 4_000_000),  # bytes
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(
    requests=requests_strategy,
    latency=st.sampled_from([0.0, 0.004, 0.020]),
    bandwidth=st.sampled_from([20 * MB, 100 * MB, 1e9]),
    streams=st.integers(1, 20),
)
def test_requests_never_beat_the_stream_nor_together_the_aggregate(
    requests: list[tuple[float, int]], latency: float, bandwidth: float, streams: int
) -> None:
    stream = bandwidth / streams
    link = _Link(Emulation(latency, bandwidth, 64, stream))
    starts = list(itertools.accumulate(gap for gap, _ in requests))
    sizes = [n for _, n in requests]
    ends = finishes(link, list(zip(starts, sizes, strict=True)))
    for start, nbytes, end in zip(starts, sizes, ends, strict=True):
        assert end >= start + latency + nbytes / stream - 1e-12
    # Every interval from some request's first byte to some request's end: the requests
    # wholly inside it moved at most the aggregate bandwidth times its length.
    firsts = [s + latency for s in starts]
    for a, b in itertools.product(firsts, ends):
        if b <= a:
            continue
        inside = sum(n for f, n, e in zip(firsts, sizes, ends, strict=True) if f >= a and e <= b)
        assert inside <= bandwidth * (b - a) * (1 + 1e-9) + 1e-6
    # All of it together: no faster than the aggregate.
    assert max(ends) >= min(firsts) + sum(sizes) / bandwidth - 1e-9


# --- through the store: counts, and wall-clock lower bounds only --------------------------


async def _get_all(store: EmulatedStore, keys: list[str]) -> float:
    prototype = default_buffer_prototype()
    start = time.perf_counter()
    await asyncio.gather(*(store.get(k, prototype) for k in keys))
    return time.perf_counter() - start


def _filled(n_keys: int, nbytes: int) -> tuple[MemoryStore, list[str]]:
    data = {f"c/{i}": Buffer.from_bytes(bytes(nbytes)) for i in range(n_keys)}
    return MemoryStore(data), list(data)


def test_concurrent_requests_at_the_stream_rate_through_the_store() -> None:
    inner, keys = _filled(8, 1_000_000)
    store = EmulatedStore(
        inner, latency_s=0.0, bandwidth_Bps=1e9, concurrency=64, stream_bandwidth_Bps=10 * MB
    )
    elapsed = asyncio.run(_get_all(store, keys))
    assert store.counts.gets == 8
    assert store.counts.bytes_read == 8_000_000
    assert elapsed >= 0.1  # each 1 MB request at 10 MB/s; sleeps only add time
    assert store._link.booked_s == pytest.approx(8e6 / 1e9)


def test_the_aggregate_bounds_the_store_from_below() -> None:
    inner, keys = _filled(8, 250_000)
    store = EmulatedStore(
        inner, latency_s=0.0, bandwidth_Bps=10 * MB, concurrency=64, stream_bandwidth_Bps=5 * MB
    )
    elapsed = asyncio.run(_get_all(store, keys))
    assert store.counts.bytes_read == 2_000_000
    assert elapsed >= 0.2  # 2 MB through a 10 MB/s link


def test_bench_predicts_with_the_stream_bandwidth_it_emulates() -> None:
    spec = {
        "array": {"shape": [8, 64, 64], "dtype": "float32", "dims": ["z", "y", "x"]},
        "workload": [{"op": "plane", "dims": ["y", "x"], "weight": 1.0}],
        "codec": "none",
        "candidates": [{"name": "planes", "zarr_format": 3, "chunks": [1, 64, 64]}],
    }
    url = "emulated://?latency=1ms&bandwidth=1GB/s&stream_bandwidth=50MB/s&concurrency=8"
    report = chunkwise.bench(
        spec, data="synthetic:smooth", store=url, only_candidates=True, repeats=2, warm=False
    )
    assert report.storage.stream_bandwidth_Bps == 50e6
    assert report.storage.bandwidth_Bps == 1e9
    assert "47.7 MiB/s per request" in report.store
    plane = report.results[0].op("plane[y,x]")
    assert plane.requests == plane.predicted_requests == 1
