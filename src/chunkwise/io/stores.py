"""Stores to benchmark on: local directories, memory, zip files, S3, and an emulated remote.

A *store URL* names where benchmark arrays are written:

==============================================  =============================================
``memory://``                                   zarr's in-process :class:`~zarr.storage.MemoryStore`
``/some/dir``, ``./dir``, ``file:///some/dir``  a local directory (one sub-directory per layout)
``zip:///some/dir``                             one zip file per layout in a local directory
``s3://bucket/prefix``                          an S3-compatible object store via fsspec/s3fs
``emulated://?latency=20ms&bandwidth=200MB/s``  memory behind an emulated remote link
``emulated:///some/dir?latency=20ms``           a local directory behind the emulated link
==============================================  =============================================

The emulated link (:class:`EmulatedStore`) charges every request a latency, moves one
request's bytes at most at ``stream_bandwidth``, shares the aggregate ``bandwidth``
among all requests in flight and serves at most ``concurrency`` requests at once, so
the cost model's predictions can be checked against a store whose costs are known
exactly: ``emulated://?latency=20ms&bandwidth=1GB/s&stream_bandwidth=100MB/s&concurrency=64``
is an object store whose single requests are slower than the link. Without
``stream_bandwidth`` one request may use the whole link. It also counts requests and
bytes, on any store it wraps.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from zarr.abc.store import ByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import LocalStore, MemoryStore, WrapperStore, ZipStore

from chunkwise.errors import SpecError
from chunkwise.model.storage import STORAGE_PRESETS, StorageProfile
from chunkwise.units import (
    format_duration,
    format_rate,
    parse_duration,
    parse_rate,
    spec_rate,
)

__all__ = [
    "EmulatedStore",
    "Emulation",
    "RequestCounts",
    "SeesEveryRequest",
    "StoreTarget",
    "close_sessions",
    "delete_keys",
    "list_objects",
    "list_sizes",
    "open_target",
    "remove_empty_folders",
    "store_keys",
]


@dataclass
class RequestCounts:
    """Requests and bytes that went through an :class:`EmulatedStore` (mutable tally)."""

    gets: int = 0
    sets: int = 0
    lists: int = 0
    bytes_read: int = 0
    bytes_written: int = 0


@dataclass(frozen=True, slots=True)
class Emulation:
    """The costs of an emulated remote link.

    Parameters
    ----------
    latency_s
        Time to first byte of every request, seconds.
    bandwidth_Bps
        Aggregate bandwidth: all requests in flight together move at most this many
        bytes/second.
    concurrency
        Requests served at once.
    stream_bandwidth_Bps
        Bandwidth of one request, bytes/second: a request moving ``n`` bytes takes at
        least ``latency_s + n / stream_bandwidth_Bps``. Infinite (the default): one
        request may use the whole link.
    """

    latency_s: float = 0.0
    bandwidth_Bps: float = float("inf")
    concurrency: int = 64
    stream_bandwidth_Bps: float = float("inf")

    def __post_init__(self) -> None:
        if not self.latency_s >= 0:
            raise SpecError(
                f"emulated store latency {self.latency_s!r} s must not be negative; "
                "write it like latency=20ms."
            )
        for what, value in (
            ("bandwidth", self.bandwidth_Bps),
            ("stream_bandwidth", self.stream_bandwidth_Bps),
        ):
            if not value > 0:
                raise SpecError(
                    f"emulated store {what} {value!r} B/s must be positive; "
                    f"write it like {what}=100MB/s."
                )
        if self.concurrency < 1:
            raise SpecError(
                f"emulated store concurrency {self.concurrency!r} must be at least 1; "
                "write it like concurrency=64."
            )
        if self.stream_limited and self.stream_bandwidth_Bps > self.bandwidth_Bps:
            raise SpecError(
                f"emulated store stream_bandwidth {spec_rate(self.stream_bandwidth_Bps)} "
                f"exceeds its bandwidth {spec_rate(self.bandwidth_Bps)}, the aggregate over "
                "all requests; give a stream_bandwidth at most the bandwidth, or leave it out "
                "so one request may use the whole link."
            )

    @property
    def stream_limited(self) -> bool:
        """A stream bandwidth is set (finite): one request may move slower than the link."""
        return math.isfinite(self.stream_bandwidth_Bps)

    def profile(self) -> StorageProfile:
        """The storage profile of this link (for the cost model)."""
        base = STORAGE_PRESETS["s3" if self.latency_s >= 5e-3 else "local-ssd"]
        bandwidth = min(self.bandwidth_Bps, 1e15)
        return StorageProfile(
            name=f"emulated {format_duration(self.latency_s)}",
            kind=base.kind,
            latency_s=self.latency_s,
            bandwidth_Bps=bandwidth,
            stream_bandwidth_Bps=min(self.stream_bandwidth_Bps, bandwidth),
            concurrency=self.concurrency,
            block_bytes=0,
            object_bytes_min=base.object_bytes_min,
            object_bytes_max=base.object_bytes_max,
        )

    def describe(self) -> str:
        """``20 ms latency, 954 MiB/s aggregate, 95.4 MiB/s per request, 64 concurrent
        requests``; one bandwidth when a request may use the whole link."""
        if self.stream_bandwidth_Bps < self.bandwidth_Bps:
            rates = (
                f"{format_rate(self.bandwidth_Bps)} aggregate, "
                f"{format_rate(self.stream_bandwidth_Bps)} per request"
            )
        else:
            rates = format_rate(self.bandwidth_Bps)
        return (
            f"{format_duration(self.latency_s)} latency, {rates}, "
            f"{self.concurrency} concurrent requests"
        )


class _Link:
    """A shared link: per-request latency, a per-request (stream) bandwidth, and an
    aggregate bandwidth shared by all transfers in flight.

    The aggregate is booked first come, first served on one timeline: a transfer of
    ``n`` bytes reserves ``n / bandwidth`` seconds of the link, no earlier than its first
    byte, and ends no earlier than that reservation nor than ``n / stream_bandwidth``
    after its first byte. Reservations never overlap and each lies inside its request,
    so the requests inside any interval moved at most ``bandwidth`` times its length;
    when the aggregate is not the bottleneck, every request takes exactly
    ``latency + n / stream_bandwidth``.
    """

    def __init__(self, emulation: Emulation) -> None:
        self.emulation = emulation
        self._free_at = 0.0
        self._semaphores: dict[int, asyncio.Semaphore] = {}
        #: Seconds of the aggregate link booked so far (bytes moved / bandwidth).
        self.booked_s = 0.0

    def _semaphore(self) -> asyncio.Semaphore:
        loop_id = id(asyncio.get_running_loop())
        sem = self._semaphores.get(loop_id)
        if sem is None:
            sem = self._semaphores[loop_id] = asyncio.Semaphore(self.emulation.concurrency)
        return sem

    def schedule(self, start: float, nbytes: int) -> float:
        """Book a request sent at ``start`` (seconds, on a clock that never goes back)
        moving ``nbytes``, and return when it completes, on the same clock."""
        first_byte = start + self.emulation.latency_s
        # The aggregate: each transfer reserves its slice of the shared link, in turn.
        share = nbytes / self.emulation.bandwidth_Bps
        begin = max(first_byte, self._free_at)
        self._free_at = begin + share
        self.booked_s += share
        # The stream: one request alone moves no faster than stream_bandwidth.
        return max(self._free_at, first_byte + nbytes / self.emulation.stream_bandwidth_Bps)

    async def request(self, nbytes: int) -> None:
        """Wait as long as one request moving ``nbytes`` takes on this link."""
        async with self._semaphore():
            start = time.perf_counter()
            delay = self.schedule(start, nbytes) - start
            if delay > 0:
                await asyncio.sleep(delay)


class SeesEveryRequest:
    """Mixin for wrapper stores that must see every request (to charge or count it).

    zarr-python 3.4 bypasses a wrapper's ``get`` in two ways: ``WrapperStore`` hands its
    synchronous methods to the wrapped store, which zarr's fused codec pipeline then
    calls directly; and ``get_ranges`` (a shard's inner-chunk reads, merged) goes to the
    wrapped store's own ``get``. This mixin keeps zarr on the asynchronous path and runs
    the range coalescer over the wrapper's ``get``, so each merged fetch is one request
    here. zarr-python 3.1 has neither path; there the mixin changes nothing.
    """

    #: Read by ``zarr.abc.store._store_supports_sync_io``: never use the sync surface.
    _supports_sync_io = False

    async def get_ranges(
        self, key: str, byte_ranges: Any, *, prototype: BufferPrototype, **options: Any
    ) -> AsyncIterator[Any]:
        """``Store.get_ranges`` (zarr-python >= 3.3) over this store's ``get``."""
        coalesced = Store.get_ranges  # type: ignore[attr-defined,unused-ignore]
        given = {name: value for name, value in options.items() if value is not None}
        async for group in coalesced(self, key, byte_ranges, prototype=prototype, **given):
            yield group


class EmulatedStore(SeesEveryRequest, WrapperStore[Store]):
    """A store wrapper that behaves like a remote store with known costs, and counts requests.

    Parameters
    ----------
    store
        The store holding the bytes (memory, local, ...).
    latency_s
        Time to first byte of every request (get, set, exists, list), seconds.
    bandwidth_Bps
        Aggregate bandwidth shared by all requests in flight, bytes/second.
    concurrency
        Requests served at once; more wait their turn.
    stream_bandwidth_Bps
        Bandwidth of one request, bytes/second (default: infinite, one request may use
        the whole link).

    With ``latency_s=0`` and infinite bandwidths it only counts.
    """

    def __init__(
        self,
        store: Store,
        *,
        latency_s: float = 0.0,
        bandwidth_Bps: float = float("inf"),
        concurrency: int = 64,
        stream_bandwidth_Bps: float = float("inf"),
        counts: RequestCounts | None = None,
        link: _Link | None = None,
    ) -> None:
        super().__init__(store)
        self.counts = counts if counts is not None else RequestCounts()
        self._link = link or _Link(
            Emulation(latency_s, bandwidth_Bps, concurrency, stream_bandwidth_Bps)
        )

    @property
    def latency_s(self) -> float:
        """Per-request latency, seconds."""
        return self._link.emulation.latency_s

    @property
    def bandwidth_Bps(self) -> float:
        """Aggregate bandwidth, bytes/second."""
        return self._link.emulation.bandwidth_Bps

    @property
    def stream_bandwidth_Bps(self) -> float:
        """Bandwidth of one request, bytes/second."""
        return self._link.emulation.stream_bandwidth_Bps

    @property
    def concurrency(self) -> int:
        """Requests served at once."""
        return self._link.emulation.concurrency

    def _with_store(self, store: Store) -> EmulatedStore:
        return type(self)(store, counts=self.counts, link=self._link)

    def storage_profile(self) -> StorageProfile:
        """The storage profile this store emulates (for the cost model)."""
        return self._link.emulation.profile()

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        value = await self._store.get(key, prototype, byte_range)
        nbytes = 0 if value is None else len(value)
        await self._link.request(nbytes)
        self.counts.gets += 1
        self.counts.bytes_read += nbytes
        return value

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        return list(await asyncio.gather(*(self.get(k, prototype, r) for k, r in key_ranges)))

    async def exists(self, key: str) -> bool:
        await self._link.request(0)
        self.counts.gets += 1
        return await self._store.exists(key)

    async def set(self, key: str, value: Buffer) -> None:
        await self._link.request(len(value))
        await self._store.set(key, value)
        self.counts.sets += 1
        self.counts.bytes_written += len(value)

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        if not await self.exists(key):
            await self.set(key, value)

    async def _set_many(self, values: Iterable[tuple[str, Buffer]]) -> None:
        await set_each(self, values)

    def _get_many(
        self, requests: Iterable[tuple[str, BufferPrototype, ByteRequest | None]]
    ) -> AsyncGenerator[tuple[str, Buffer | None], None]:
        return get_each(self, requests)

    async def _listed(self, items: AsyncIterator[str]) -> AsyncIterator[str]:
        await self._link.request(0)
        self.counts.lists += 1
        async for item in items:
            yield item

    def list(self) -> AsyncIterator[str]:
        return self._listed(self._store.list())

    def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        return self._listed(self._store.list_prefix(prefix))

    def list_dir(self, prefix: str) -> AsyncIterator[str]:
        return self._listed(self._store.list_dir(prefix))

    def __repr__(self) -> str:
        return f"EmulatedStore({self._store!r}, {self._link.emulation.describe()})"


async def set_each(store: Store, values: Iterable[tuple[str, Buffer]]) -> None:
    """Batched writes through ``store.set``, one key at a time: a wrapper that counts or
    delays requests sees each of them (zarr's default batching may bypass the wrapper)."""
    await asyncio.gather(*(store.set(k, v) for k, v in values))


async def get_each(
    store: Store, requests: Iterable[tuple[str, BufferPrototype, ByteRequest | None]]
) -> AsyncGenerator[tuple[str, Buffer | None], None]:
    """Batched reads through ``store.get``, one key at a time (see :func:`set_each`)."""
    for key, prototype, byte_range in requests:
        yield (key, await store.get(key, prototype, byte_range))


@dataclass
class StoreTarget:
    """Where benchmark arrays go: one fresh location per layout, removed afterwards.

    Parameters
    ----------
    url
        The store URL as the user gave it.
    kind
        ``"memory"``, ``"local"``, ``"zip"``, ``"s3"`` or ``"emulated"``.
    root
        Local directory or remote prefix that holds the benchmark's locations.
    emulation
        The emulated link (``kind == "emulated"``), else ``None``.
    storage_options
        Passed to fsspec for remote stores (``endpoint_url``, ``anon``, ...).
    """

    url: str
    kind: str
    root: str = ""
    emulation: Emulation | None = None
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: f"chunkwise-run-{uuid.uuid4().hex[:8]}")
    _memory: dict[str, Buffer] = field(default_factory=dict, repr=False)
    _remote: list[Store] = field(default_factory=list, repr=False)
    _created: list[Path] = field(default_factory=list, repr=False)

    def _run_dir(self) -> Path:
        """The run's own folder, created with any missing parents (remembered for cleanup)."""
        folder = Path(self.root) / self.run_id
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        self._created.extend(p for p in missing if p not in self._created)
        return folder

    def describe(self) -> str:
        """A short human description."""
        if self.emulation is not None:
            under = f"a local directory {self.root}" if self.root else "memory"
            return f"emulated remote store ({self.emulation.describe()}) over {under}"
        if self.kind == "memory":
            return "in-process memory store"
        if self.kind == "local":
            return f"local directory {self.root}"
        if self.kind == "zip":
            return f"zip files in {self.root}"
        return f"{self.url}"

    def known_profile(self) -> StorageProfile | None:
        """The storage profile of this target when it is known exactly (emulated), else ``None``."""
        return self.emulation.profile() if self.emulation is not None else None

    def open(self, name: str, *, rewritable: bool = False) -> EmulatedStore:
        """A fresh, empty store for one layout, wrapped so requests are counted.

        Parameters
        ----------
        name
            A short, path-safe name for the layout.
        rewritable
            The caller will overwrite keys (appends rewrite the array metadata). A zip file
            cannot replace an entry, so a zip target gives a directory beside its zips.
        """
        if self.kind in ("memory", "emulated") and not self.root:
            inner: Store = MemoryStore({})
        elif self.kind in ("local", "emulated") or (self.kind == "zip" and rewritable):
            inner = LocalStore(self._run_dir() / f"{name}.zarr")
        elif self.kind == "zip":
            inner = ZipStore(self._run_dir() / f"{name}.zip", mode="w")
        else:
            inner = _fsspec_store(
                f"{self.root.rstrip('/')}/{self.run_id}/{name}.zarr", self.storage_options
            )
            self._remote.append(inner)
        e = self.emulation or Emulation()  # no emulation: a wrapper that only counts
        return EmulatedStore(inner, link=_Link(e))

    def cleanup(self) -> None:
        """Remove everything this run wrote (the run's own folder or prefix only)."""
        if self.kind in ("local", "zip") or (self.kind == "emulated" and self.root):
            shutil.rmtree(Path(self.root) / self.run_id, ignore_errors=True)
            for folder in sorted(self._created, key=lambda p: len(p.parts), reverse=True):
                with contextlib.suppress(OSError):  # only if empty: never anyone else's files
                    folder.rmdir()
            self._created.clear()
        elif self.kind == "s3":
            close_sessions(self._remote)
            self._remote.clear()
            fs = _s3fs(self.storage_options)
            target = f"{self.root.removeprefix('s3://').rstrip('/')}/{self.run_id}"
            if fs.exists(target):
                fs.rm(target, recursive=True)


def open_target(url: str, storage_options: Mapping[str, Any] | None = None) -> StoreTarget:
    """Parse a store URL (see the module docstring) into a :class:`StoreTarget`.

    Raises
    ------
    SpecError
        When the URL names no supported store, with the forms that are.
    """
    options = dict(storage_options or {})
    text = url.strip()
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme == "" or (len(scheme) == 1 and os.name == "nt"):
        return StoreTarget(text, "local", _local_root(text))
    if scheme == "file":
        return StoreTarget(text, "local", _local_root(parts.netloc + parts.path))
    if scheme == "memory":
        return StoreTarget(text, "memory")
    if scheme == "zip":
        if not (parts.netloc + parts.path).strip("/"):
            raise SpecError(f"store {url!r} names no folder; write it like zip:///path/to/folder.")
        return StoreTarget(text, "zip", _local_root(parts.netloc + parts.path))
    if scheme == "s3":
        if not parts.netloc:
            raise SpecError(f"store {url!r} names no bucket; write it like s3://bucket/prefix.")
        check_s3_access(url, parts.netloc, options)
        return StoreTarget(text, "s3", f"s3://{parts.netloc}{parts.path}", storage_options=options)
    if scheme == "emulated":
        query = dict(parse_qsl(parts.query))
        unknown = sorted(set(query) - {"latency", "bandwidth", "stream_bandwidth", "concurrency"})
        if unknown:
            raise SpecError(
                f"emulated store setting(s) {', '.join(map(repr, unknown))} unknown; "
                "use latency, bandwidth, stream_bandwidth and concurrency, like "
                "emulated://?latency=20ms&bandwidth=1GB/s&stream_bandwidth=100MB/s&concurrency=64."
            )
        stream = query.get("stream_bandwidth")
        emulation = Emulation(
            parse_duration(query.get("latency", "20ms"), what="emulated latency"),
            parse_rate(query.get("bandwidth", "1GB/s"), what="emulated bandwidth"),
            _positive(query.get("concurrency", "64")),
            float("inf")
            if stream is None
            else parse_rate(stream, what="emulated stream_bandwidth"),
        )
        where = parts.netloc + parts.path
        root = _local_root(where) if where not in ("", "/") else ""
        return StoreTarget(text, "emulated", root, emulation)
    raise SpecError(
        f"store {url!r} is not a store chunkwise can write to; use a directory path, memory://, "
        "zip:///dir, s3://bucket/prefix or emulated://?latency=20ms."
    )


def _local_root(path: str) -> str:
    """An absolute folder for ``dir``, ``/abs/dir`` or ``zip://rel/dir``'s ``rel/dir``."""
    return str(Path(path).expanduser().resolve())


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise SpecError(f"emulated store concurrency {text!r} must be a positive integer.")
    return value


#: botocore settings unless the user gives their own: fail in seconds, not minutes.
S3_CONFIG = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 3}}


def _s3fs(options: Mapping[str, Any]) -> Any:
    try:
        import s3fs
    except ImportError:
        from chunkwise.errors import MissingDependencyError

        raise MissingDependencyError(
            "s3:// stores need s3fs; install it with: pip install 'chunkwise[s3]'."
        ) from None
    settings = dict(options)
    settings["config_kwargs"] = {**S3_CONFIG, **settings.get("config_kwargs", {})}
    try:
        return s3fs.S3FileSystem(**settings)
    except (TypeError, ValueError) as exc:
        raise SpecError(f"S3 settings {sorted(options)!r} are not valid ({exc}).") from None


def check_s3_access(url: str, bucket: str, options: Mapping[str, Any]) -> None:
    """Fail early, in one sentence, when the bucket of ``url`` cannot be listed.

    Raises
    ------
    SpecError
        Naming the underlying error (no credentials, no such bucket, endpoint refused).
    """
    fs = _s3fs(options)
    try:
        fs.ls(bucket, refresh=True)
    except Exception as exc:  # botocore, aiohttp and fsspec raise many types for this
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(
            f"store {url!r} cannot be reached ({type(exc).__name__}: {reason}); check the "
            "bucket name, --endpoint-url and the credentials (AWS_ACCESS_KEY_ID / "
            "AWS_SECRET_ACCESS_KEY, or --storage-option key=... --storage-option secret=...)."
        ) from None


def close_sessions(stores: Iterable[Store]) -> None:
    """Close the HTTP sessions of asynchronous s3fs filesystems on zarr's event loop.

    Left open, they are closed at interpreter exit from the wrong event loop, and
    aiohttp prints a screenful of warnings.
    """
    from zarr.core.sync import sync

    async def close(fs: Any) -> None:
        creator = getattr(fs, "_s3creator", None)
        if creator is not None and getattr(fs, "_s3", None) is not None:
            await creator.__aexit__(None, None, None)
            fs._s3 = None

    for store in stores:
        fs = getattr(store, "fs", None)
        if fs is not None:
            sync(close(fs))


def _fsspec_store(url: str, options: Mapping[str, Any]) -> Store:
    from zarr.storage import FsspecStore

    fs = _s3fs({**options, "asynchronous": True})
    return FsspecStore(fs, path=url.removeprefix("s3://"))


#: Size requests in flight at once when a listing carries no sizes (HTTP).
SIZE_REQUESTS_AT_ONCE = 8


async def list_sizes(store: Store) -> list[tuple[str, int]]:
    """Every key of ``store`` and its size in bytes, in as few requests as the store
    allows: one directory walk locally, one (paginated) listing with sizes on S3, HEAD
    requests a few at a time where listings carry no sizes (HTTP)."""
    from zarr.core.common import concurrent_map
    from zarr.storage import FsspecStore

    if isinstance(store, LocalStore):
        root = Path(store.root)
        out = []
        for folder, _, files in os.walk(root):
            for name in files:
                full = Path(folder) / name
                try:
                    size = full.stat().st_size
                except FileNotFoundError:  # deleted since listed, or a dangling link
                    continue
                out.append((full.relative_to(root).as_posix(), size))
        return out
    if isinstance(store, FsspecStore):
        base = store.path.rstrip("/")
        infos = await store.fs._find(base, detail=True, withdirs=False)
        keys = [(str(name).removeprefix(base).lstrip("/"), info) for name, info in infos.items()]
        missing = [(key,) for key, info in keys if info.get("size") is None]
        found = await concurrent_map(missing, store.getsize, SIZE_REQUESTS_AT_ONCE)
        extra = dict(zip((k for (k,) in missing), found, strict=True))
        sizes = [info["size"] if info.get("size") is not None else extra[key] for key, info in keys]
        return [(key, int(size)) for (key, _), size in zip(keys, sizes, strict=True)]
    return [(key, await store.getsize(key)) async for key in store.list()]


def list_objects(store: Store) -> list[tuple[str, int]]:
    """Every object in ``store``: its key and its size in bytes."""
    from zarr.core.sync import sync

    inner = store._store if isinstance(store, WrapperStore) else store
    return sync(list_sizes(inner))


def _walk_local(root: Path, under: str) -> list[str]:
    """Every entry below ``root / under`` that is not a folder, as keys relative to
    ``root``; a symlink or a special file is refused (deleting through a link could reach
    outside the store)."""
    import stat

    from chunkwise.errors import StoreError

    keys = []
    for folder, dirs, files in os.walk(root / under, followlinks=False):
        for name in [*dirs, *files]:
            path = Path(folder, name)
            try:
                mode = path.lstat().st_mode
            except FileNotFoundError:  # removed since listed
                continue
            if stat.S_ISDIR(mode):
                continue
            key = path.relative_to(root).as_posix()
            if not stat.S_ISREG(mode):
                what = "a symlink" if stat.S_ISLNK(mode) else "a special file"
                raise StoreError(
                    f"{str(root)!r} holds {what}, {key!r}, which is not part of a Zarr "
                    "store; chunkwise will not write or delete there: choose another target "
                    "or remove it yourself."
                )
            keys.append(key)
    return keys


def store_keys(store: Store, prefix: str = "") -> list[str]:
    """Every key of ``store`` that starts with ``prefix`` (``""``: all of them); local
    folders are walked without following links.

    Raises
    ------
    StoreError
        When a local store holds a symlink or a special file.
    """
    from zarr.core.sync import sync

    if isinstance(store, LocalStore):
        root = Path(store.root)
        folder = prefix.rpartition("/")[0]
        if not (root / folder).is_dir():
            return []
        return [k for k in _walk_local(root, folder) if k.startswith(prefix)]

    async def listed() -> list[str]:
        return [key async for key in store.list_prefix(prefix)]

    return list(sync(listed()))


#: Deletions in flight at once.
DELETE_CONCURRENCY = 16


def delete_keys(store: Store, keys: Iterable[str]) -> None:
    """Delete ``keys``, :data:`DELETE_CONCURRENCY` at a time; keys already gone are fine."""
    from zarr.core.sync import sync

    todo = list(keys)

    async def run() -> None:
        limit = asyncio.Semaphore(DELETE_CONCURRENCY)

        async def one(key: str) -> None:
            async with limit:
                with contextlib.suppress(FileNotFoundError):
                    await store.delete(key)

        await asyncio.gather(*(one(key) for key in todo))

    if todo:
        sync(run())


def remove_empty_folders(store: Store, under: str = "") -> None:
    """Remove the folders left empty below ``under`` in a local store, deepest first
    (``under`` too, unless it is the root); a folder that holds anything stays."""
    if not isinstance(store, LocalStore):
        return
    root = Path(store.root)
    if not (root / under).is_dir():
        return
    for folder, _, _ in os.walk(root / under, topdown=False):
        if Path(folder) == root:
            continue
        with contextlib.suppress(OSError):  # not empty: holds something not deleted
            os.rmdir(folder)
