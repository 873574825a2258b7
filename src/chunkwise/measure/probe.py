"""Measure a store: latency, bandwidth and useful concurrency, from requests it really serves.

:func:`probe_store` writes its own objects under a fresh prefix
(``chunkwise-probe-<8 hex>/``), times GETs of them, and deletes exactly those objects
afterwards, also when a measurement fails. It measures:

latency
    The median wall time of one small GET (each GET reads a different object, so no
    cache can answer it), after one untimed GET that opens the connection.
stream bandwidth
    The bytes of one large GET over its time minus the latency (median of three GETs,
    each of its own object).
aggregate bandwidth
    The bytes of several large GETs issued at once over their wall time minus the latency
    (at least the stream bandwidth: one stream alone achieves that).
useful concurrency
    For each level ``L`` of ``levels``, ``L`` small GETs issued at once, a few rounds,
    give requests per second; the useful concurrency is the largest level whose
    throughput is at least ``growth`` (1.3) times the best throughput of every smaller
    level. With the default doubling levels, a store that serves ``L`` requests in
    parallel doubles its throughput up to ``L`` and stays flat beyond, so a 1.3x bar
    separates "still scaling" from noise; a noisy dip at one level does not end the
    search, because later levels are compared with the best level below them.

The result converts to a ``storage:`` mapping for a spec file
(:meth:`ProbeResult.to_storage_spec`), which :func:`chunkwise.spec.parse_storage` accepts.

The probe uses zarr's asynchronous store API on zarr's own event loop
(:func:`zarr.core.sync.sync`), the loop zarr uses for the same store, which is what
stores bound to a loop (``FsspecStore`` over s3fs with ``asynchronous=True``) need.
What it measures is the client and the store together: an s3fs client, for example,
opens at most ``max_pool_connections`` (botocore's default: 10) connections at once.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise
from typing import Any, Literal

import numpy as np
from zarr.abc.store import Store
from zarr.core.buffer import Buffer, BufferPrototype, default_buffer_prototype
from zarr.core.sync import sync

from chunkwise.errors import ChunkwiseError, SpecError
from chunkwise.units import format_bytes, format_duration, format_rate, spec_duration, spec_rate

__all__ = [
    "DEFAULT_LEVELS",
    "OBJECT_STORE_LATENCY_S",
    "ProbeResult",
    "probe_store",
    "probe_store_async",
    "useful_concurrency",
]

MiB = 2**20
DEFAULT_LEVELS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
# Latency from which a store is taken for an object store (the rule chunkwise.spec uses).
OBJECT_STORE_LATENCY_S = 5e-3
_WRITE_CONCURRENCY = 16
_STREAM_REPEATS = 3  # single large GETs timed for the stream bandwidth


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What :func:`probe_store` measured.

    Attributes
    ----------
    store
        Human description of the probed store.
    latency_s
        Median time of one small GET, seconds.
    latency_min_s, latency_max_s
        Fastest and slowest small GET, seconds.
    stream_bandwidth_Bps
        Bandwidth of one large GET, bytes/second.
    aggregate_bandwidth_Bps
        Bandwidth of ``streams`` large GETs at once, bytes/second (never below
        ``stream_bandwidth_Bps``).
    useful_concurrency
        The largest level of small GETs at once whose throughput still grew (see the
        module docstring for the rule).
    throughput
        ``(level, requests/second)`` for every level measured.
    small_bytes, large_bytes
        Size of the small and the large probe objects, bytes.
    streams
        Large GETs issued at once for the aggregate bandwidth.
    """

    store: str
    latency_s: float
    latency_min_s: float
    latency_max_s: float
    stream_bandwidth_Bps: float
    aggregate_bandwidth_Bps: float
    useful_concurrency: int
    throughput: tuple[tuple[int, float], ...] = field(default=())
    small_bytes: int = 0
    large_bytes: int = 0
    streams: int = 0

    @property
    def kind(self) -> Literal["object", "filesystem"]:
        """``"object"`` when the latency is 5 ms or more, else ``"filesystem"`` (a guess)."""
        return "object" if self.latency_s >= OBJECT_STORE_LATENCY_S else "filesystem"

    def to_storage_spec(self, name: str = "probed") -> dict[str, Any]:
        """The ``storage:`` mapping of a spec file, as :func:`chunkwise.spec.parse_storage` takes it.

        Parameters
        ----------
        name
            The storage profile's name.

        Returns
        -------
        dict
            ``name``, ``kind``, ``latency`` (like ``"20.31ms"``), ``bandwidth`` and
            ``stream_bandwidth`` (like ``"198.7MB/s"``, four significant digits) and
            ``concurrency``.
        """
        return {
            "name": name,
            "kind": self.kind,
            "latency": spec_duration(self.latency_s),
            "bandwidth": spec_rate(self.aggregate_bandwidth_Bps),
            "stream_bandwidth": spec_rate(self.stream_bandwidth_Bps),
            "concurrency": self.useful_concurrency,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (seconds, bytes, bytes/second)."""
        return {
            "store": self.store,
            "kind": self.kind,
            "latency_s": self.latency_s,
            "latency_min_s": self.latency_min_s,
            "latency_max_s": self.latency_max_s,
            "stream_bandwidth_Bps": self.stream_bandwidth_Bps,
            "aggregate_bandwidth_Bps": self.aggregate_bandwidth_Bps,
            "useful_concurrency": self.useful_concurrency,
            "throughput": [
                {"concurrency": lv, "requests_per_s": rps} for lv, rps in self.throughput
            ],
            "small_bytes": self.small_bytes,
            "large_bytes": self.large_bytes,
            "streams": self.streams,
        }

    def __str__(self) -> str:
        return (
            f"{self.store} ({self.kind} store): latency {format_duration(self.latency_s)} "
            f"({format_duration(self.latency_min_s)} to {format_duration(self.latency_max_s)}), "
            f"{format_rate(self.stream_bandwidth_Bps)} per stream, "
            f"{format_rate(self.aggregate_bandwidth_Bps)} over {self.streams} streams, "
            f"useful concurrency {self.useful_concurrency}"
        )


def probe_store(
    store: Store,
    *,
    prefix: str | None = None,
    small_bytes: int = 1024,
    large_bytes: int = 16 * MiB,
    repeats: int = 15,
    levels: Sequence[int] = DEFAULT_LEVELS,
    rounds: int = 3,
    streams: int = 4,
    growth: float = 1.3,
    description: str | None = None,
) -> ProbeResult:
    """Measure a writable store's latency, bandwidth and useful concurrency.

    The probe writes ``1 + repeats + rounds x sum(levels)`` small objects and
    ``3 + streams`` large ones under ``prefix`` and deletes them at the end, also on error;
    it never reads, writes or deletes any other key.

    Parameters
    ----------
    store
        A writable zarr store that supports deletes (``MemoryStore``, ``LocalStore``,
        ``FsspecStore``, an :class:`~chunkwise.io.stores.EmulatedStore`, ...).
    prefix
        Where the probe objects go; must hold no keys yet. Default: a fresh
        ``chunkwise-probe-<8 hex>/``.
    small_bytes
        Size of the objects timed for latency and concurrency, bytes.
    large_bytes
        Size of the objects timed for bandwidth, bytes.
    repeats
        Small GETs, one after another, for the latency.
    levels
        Numbers of small GETs issued at once, strictly increasing (doubling is best, see
        the module docstring).
    rounds
        Times each level is repeated; the median time counts.
    streams
        Large GETs issued at once for the aggregate bandwidth.
    growth
        Throughput factor over every smaller level for a level to count as useful.
    description
        How the store is named in the result (default: its ``repr``).

    Returns
    -------
    ProbeResult

    Raises
    ------
    SpecError
        When a setting is out of range, the store is read-only or cannot delete, or
        ``prefix`` already holds keys.
    ChunkwiseError
        When the store does not return a probe object as written, or the probe objects
        could not all be deleted (the message names the prefix to remove).
    """
    return sync(
        probe_store_async(
            store,
            prefix=prefix,
            small_bytes=small_bytes,
            large_bytes=large_bytes,
            repeats=repeats,
            levels=levels,
            rounds=rounds,
            streams=streams,
            growth=growth,
            description=description,
        )
    )


async def probe_store_async(
    store: Store,
    *,
    prefix: str | None = None,
    small_bytes: int = 1024,
    large_bytes: int = 16 * MiB,
    repeats: int = 15,
    levels: Sequence[int] = DEFAULT_LEVELS,
    rounds: int = 3,
    streams: int = 4,
    growth: float = 1.3,
    description: str | None = None,
) -> ProbeResult:
    """:func:`probe_store` as a coroutine, for callers already inside an event loop.

    Run it on the loop the store belongs to (zarr's loop for ``FsspecStore``).
    """
    plan = _Plan.create(small_bytes, large_bytes, repeats, levels, rounds, streams, growth)
    session = _Session(store, _root(prefix))
    await session.prepare()
    try:
        result = await _measure(session, plan, description or _describe(store))
    except BaseException:
        await session.cleanup(strict=False)
        raise
    await session.cleanup(strict=True)
    return result


@dataclass(frozen=True, slots=True)
class _Plan:
    """Validated probe settings."""

    small_bytes: int
    large_bytes: int
    repeats: int
    levels: tuple[int, ...]
    rounds: int
    streams: int
    growth: float

    @classmethod
    def create(
        cls,
        small_bytes: int,
        large_bytes: int,
        repeats: int,
        levels: Sequence[int],
        rounds: int,
        streams: int,
        growth: float,
    ) -> _Plan:
        for what, value in (
            ("small_bytes", small_bytes),
            ("large_bytes", large_bytes),
            ("repeats", repeats),
            ("rounds", rounds),
            ("streams", streams),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SpecError(f"probe {what} {value!r} must be a positive integer.")
        lv = tuple(levels)
        if not lv or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in lv):
            raise SpecError(f"probe levels {lv!r} must be positive integers, like (1, 2, 4, 8).")
        if any(b <= a for a, b in pairwise(lv)):
            raise SpecError(f"probe levels {lv!r} must be strictly increasing, like (1, 2, 4, 8).")
        if not growth > 1:
            raise SpecError(f"probe growth {growth!r} must be a factor above 1, like 1.3.")
        return cls(small_bytes, large_bytes, repeats, lv, rounds, streams, growth)

    @property
    def small_objects(self) -> int:
        """Small objects needed: one warm-up GET, the latency GETs, every level's GETs."""
        return 1 + self.repeats + self.rounds * sum(self.levels)


class _Session:
    """The probe's objects in one store: writes them, times GETs of them, deletes them."""

    def __init__(self, store: Store, root: str) -> None:
        self.store = store
        self.root = root
        self.prototype: BufferPrototype = default_buffer_prototype()
        self.written: list[str] = []
        self._next_small = 0

    async def prepare(self) -> None:
        """Check the store can take and delete the probe objects, and the prefix is free."""
        store = self.store
        await store._ensure_open()
        if store.read_only or not store.supports_writes or not store.supports_deletes:
            raise SpecError(
                f"store {_describe(store)} is read-only or cannot delete objects; "
                "the probe writes and then deletes its own objects, so give a writable store."
            )
        if store.supports_listing:
            async for key in store.list_prefix(self.root):
                raise SpecError(
                    f"probe prefix {self.root!r} already holds {key!r}; "
                    "give a prefix with no keys under it (or none, for a fresh one)."
                )

    async def write(self, kind: str, count: int, nbytes: int) -> list[str]:
        """Write ``count`` objects of ``nbytes`` random bytes; their keys, in order."""
        payload = self.prototype.buffer.from_bytes(np.random.default_rng().bytes(nbytes))
        keys = [f"{self.root}{kind}-{i:05d}" for i in range(count)]
        self.written.extend(keys)  # before writing: a failed write may still leave an object
        outcomes = await _bounded([partial(self.store.set, k, payload) for k in keys])
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return keys

    async def timed_get(self, key: str, nbytes: int) -> float:
        """Seconds one GET of ``key`` takes; checks that all ``nbytes`` came back."""
        start = time.perf_counter()
        value = await self.store.get(key, self.prototype)
        elapsed = time.perf_counter() - start
        _check_object(value, key, nbytes, self.store)
        return elapsed

    async def timed_gather(self, keys: Sequence[str], nbytes: int) -> float:
        """Wall seconds of GETs of all ``keys`` issued at once."""
        start = time.perf_counter()
        values = await asyncio.gather(*(self.store.get(k, self.prototype) for k in keys))
        elapsed = time.perf_counter() - start
        for key, value in zip(keys, values, strict=True):
            _check_object(value, key, nbytes, self.store)
        return elapsed

    def take(self, small_keys: Sequence[str], count: int) -> list[str]:
        """The next ``count`` small keys not read yet (each small GET reads a fresh key)."""
        start, self._next_small = self._next_small, self._next_small + count
        return list(small_keys[start : self._next_small])

    async def cleanup(self, *, strict: bool) -> None:
        """Delete every object the probe wrote, then the emptied prefix.

        With ``strict``, raise when some could not be deleted (never while another
        error is propagating).
        """
        outcomes = await _bounded([partial(self.store.delete, k) for k in self.written])
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if not failures:
            failures = await self._remove_empty_prefix()
        if failures and strict:
            raise ChunkwiseError(
                f"the probe could not delete all its objects under {self.root!r} in "
                f"{_describe(self.store)} ({failures[0]!r}); delete that prefix by hand."
            )

    async def _remove_empty_prefix(self) -> list[BaseException]:
        """Remove directories left behind (local stores) when nothing else is under the prefix."""
        if not self.store.supports_listing:
            return []
        try:
            async for _key in self.store.list_prefix(self.root):
                return []  # someone else's key: leave the prefix alone
            await self.store.delete_dir(self.root.rstrip("/"))
        except Exception as exc:  # reported by cleanup(strict=True)
            return [exc]
        return []


async def _measure(session: _Session, plan: _Plan, description: str) -> ProbeResult:
    small = await session.write("small", plan.small_objects, plan.small_bytes)
    large = await session.write("large", _STREAM_REPEATS + plan.streams, plan.large_bytes)
    await session.timed_get(session.take(small, 1)[0], plan.small_bytes)  # opens connections
    latencies = [
        await session.timed_get(key, plan.small_bytes) for key in session.take(small, plan.repeats)
    ]
    latency = statistics.median(latencies)
    throughput = await _throughput(session, small, plan)
    stream_s = [await session.timed_get(k, plan.large_bytes) for k in large[:_STREAM_REPEATS]]
    stream = _transfer_rate(plan.large_bytes, statistics.median(stream_s), latency)
    aggregate_s = await session.timed_gather(large[_STREAM_REPEATS:], plan.large_bytes)
    aggregate = _transfer_rate(plan.streams * plan.large_bytes, aggregate_s, latency)
    return ProbeResult(
        store=description,
        latency_s=latency,
        latency_min_s=min(latencies),
        latency_max_s=max(latencies),
        stream_bandwidth_Bps=stream,
        aggregate_bandwidth_Bps=max(aggregate, stream),
        useful_concurrency=useful_concurrency(throughput, plan.growth),
        throughput=throughput,
        small_bytes=plan.small_bytes,
        large_bytes=plan.large_bytes,
        streams=plan.streams,
    )


async def _throughput(
    session: _Session, small: Sequence[str], plan: _Plan
) -> tuple[tuple[int, float], ...]:
    """Requests per second at each level: ``level`` fresh small GETs at once, median of rounds."""
    out = []
    for level in plan.levels:
        times = [
            await session.timed_gather(session.take(small, level), plan.small_bytes)
            for _ in range(plan.rounds)
        ]
        out.append((level, level / max(statistics.median(times), 1e-9)))
    return tuple(out)


def useful_concurrency(throughput: Sequence[tuple[int, float]], growth: float = 1.3) -> int:
    """The largest level whose throughput is at least ``growth`` x that of every smaller level.

    Parameters
    ----------
    throughput
        ``(level, requests/second)`` in increasing level order.
    growth
        Required factor over the best throughput of all smaller levels.

    Returns
    -------
    int
        The useful concurrency (the first level when nothing grows).
    """
    useful, best = throughput[0]
    for level, rate in throughput[1:]:
        if rate >= growth * best:
            useful = level
        best = max(best, rate)
    return useful


def _transfer_rate(nbytes: int, elapsed_s: float, latency_s: float) -> float:
    """Bytes/second of a transfer once the latency is taken off its time.

    At most 90% of the time counts as latency, so a latency estimate close to the
    transfer's whole time (objects too small for the store's bandwidth) cannot make the
    rate explode; make ``large_bytes`` big enough that the transfer dominates.
    """
    return nbytes / max(elapsed_s - latency_s, 0.1 * elapsed_s, 1e-9)


async def _bounded(calls: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run the coroutine factories in ``calls``, at most ``_WRITE_CONCURRENCY`` at once.

    Returns each call's result, or the exception it raised (the caller decides).
    """
    semaphore = asyncio.Semaphore(_WRITE_CONCURRENCY)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await call()

    outcomes = await asyncio.gather(*(one(c) for c in calls), return_exceptions=True)
    return list(outcomes)


def _check_object(value: Buffer | None, key: str, nbytes: int, store: Store) -> None:
    if value is None or len(value) != nbytes:
        got = "nothing" if value is None else format_bytes(len(value))
        raise ChunkwiseError(
            f"store {_describe(store)} returned {got} for probe object {key!r}, which was "
            f"written with {format_bytes(nbytes)}; the store does not read back what it stores."
        )


def _root(prefix: str | None) -> str:
    if prefix is None:
        return f"chunkwise-probe-{uuid.uuid4().hex[:8]}/"
    root = prefix.strip("/")
    if not root:
        raise SpecError(
            "probe prefix '' would put probe objects at the top of the store; "
            "give a prefix like 'chunkwise-probe/' (or none, for a fresh one)."
        )
    return root + "/"


def _describe(store: Store) -> str:
    return repr(store).strip("<>")
