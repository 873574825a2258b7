"""Record how a program really uses Zarr: store requests and array selections.

Two sources, both typed and recorded as they happen:

* :class:`TracingStore` wraps a zarr store and records every request (get, byte-range
  get, set, list, exists, delete) as a frozen :class:`TraceEvent`: op, key, byte range,
  bytes, start time and duration.
* While a :func:`tracing` block is active, zarr's two selection functions
  (``zarr.core.array._get_selection`` and ``_set_selection``, which every read and write
  of a :class:`zarr.Array` or :class:`zarr.AsyncArray` goes through, whether by
  ``arr[...]``, ``oindex``, ``vindex``, ``blocks`` or xarray/Dask) are wrapped to record
  the selection as a per-dim box (:class:`Selection`), for arrays whose store is traced.
  Keys alone are coarse: a sharded read is a byte range of a shard, and the box is what
  the workload is made of.

``tracing()`` with no store also wraps every store zarr opens in the block (it hooks
``zarr.storage._common.make_store``, which ``zarr.open*``, ``create_array``,
``open_group`` and xarray's ``open_zarr`` all go through). Everything patched is
restored when the last active trace ends, even on error.

:func:`run_script` runs a user's Python script in this process with such a trace.
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import os
import re
import runpy
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from zarr.abc.store import ByteRequest, OffsetByteRequest, RangeByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import WrapperStore

from chunkwise.errors import SpecError
from chunkwise.io.stores import SeesEveryRequest, get_each, set_each
from chunkwise.plan.infer import (
    Access,
    ChunkHeatmap,
    InferredWorkload,
    chunk_heatmap,
    infer_workload,
    merge_batches,
)
from chunkwise.units import format_bytes

__all__ = [
    "ArrayTotals",
    "OpTotals",
    "ScriptRun",
    "Selection",
    "Trace",
    "TraceEvent",
    "TracedArray",
    "TracingStore",
    "run_script",
    "tracing",
]

TraceOp = Literal[
    "get", "get_partial_values", "set", "set_if_not_exists", "exists", "getsize",
    "getsize_prefix", "delete", "delete_dir", "clear", "is_empty", "list", "list_prefix",
    "list_dir",
]  # fmt: skip
_READ_OPS = frozenset({"get", "get_partial_values"})
_WRITE_OPS = frozenset({"set", "set_if_not_exists"})


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One store request.

    Parameters
    ----------
    op
        The store method: ``get``, ``get_partial_values``, ``set``, ``exists``,
        ``getsize``, ``delete``, ``list_prefix``, ...
    key
        The key (or the listed prefix; ``""`` for ``list``).
    byte_range
        For a partial read, the Python slice of the object read: ``(start, stop)``,
        ``(offset, None)`` from an offset to the end, or ``(-n, None)`` for the last
        ``n`` bytes; ``None`` for a whole object.
    nbytes
        Bytes moved (read or written), 0 for lists, exists and deletes.
    start_s
        When the request started, seconds since the trace began.
    duration_s
        How long it took, seconds.
    store
        The traced store, e.g. ``file:///data/vol.zarr`` or ``memory://1403``.
    """

    op: TraceOp
    key: str
    byte_range: tuple[int, int | None] | None
    nbytes: int
    start_s: float
    duration_s: float
    store: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "op": self.op,
            "key": self.key,
            "byte_range": list(self.byte_range) if self.byte_range is not None else None,
            "nbytes": self.nbytes,
            "start_s": round(self.start_s, 6),
            "duration_s": round(self.duration_s, 6),
            "store": self.store,
        }


@dataclass(frozen=True, slots=True)
class Selection:
    """One read or write of a zarr array, as a box.

    Parameters
    ----------
    store
        The traced store the array lives in.
    array
        The array's path in the store (``""`` for a root array).
    kind
        ``read`` or ``write``.
    box
        Per dim ``(start, stop)``, element indices (stop exclusive); the bounding box of
        a coordinate, mask or integer-array selection.
    points
        For a coordinate or mask selection, the number of points; 0 for a box.
    start_s
        When it was made, seconds since the trace began.
    batch
        The Dask computation (threaded or synchronous scheduler) it was made in, a number
        unique in the process; 0 outside one.
    """

    store: str
    array: str
    kind: Literal["read", "write"]
    box: tuple[tuple[int, int], ...]
    points: int
    start_s: float
    batch: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "store": self.store,
            "array": self.array,
            "kind": self.kind,
            "box": [list(b) for b in self.box],
            "points": self.points,
            "start_s": round(self.start_s, 6),
            "batch": self.batch,
        }


@dataclass(frozen=True, slots=True)
class TracedArray:
    """An array seen in a trace (its metadata at its last selection).

    Parameters
    ----------
    store, path
        Where it lives.
    shape
        Elements per dim.
    dtype
        NumPy data type name.
    dims
        Dimension names (zarr v3 ``dimension_names``, xarray's ``_ARRAY_DIMENSIONS``, or
        ``dim_0, dim_1, ...``).
    chunks
        The chunk shape reads are served in (inner chunks of a sharded array).
    shards
        The shard shape, or ``None``.
    zarr_format
        2 or 3.
    """

    store: str
    path: str
    shape: tuple[int, ...]
    dtype: str
    dims: tuple[str, ...]
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    zarr_format: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "store": self.store,
            "path": self.path,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "dims": list(self.dims),
            "chunks": list(self.chunks),
            "shards": list(self.shards) if self.shards is not None else None,
            "zarr_format": self.zarr_format,
        }


@dataclass(frozen=True, slots=True)
class OpTotals:
    """Requests of one store op in a trace: count, bytes (read or written), seconds."""

    op: str
    requests: int
    nbytes: int
    duration_s: float


@dataclass(frozen=True, slots=True)
class ArrayTotals:
    """What one array cost in a trace.

    Parameters
    ----------
    name
        The array's name in the trace (its path; ``/`` for a root array).
    reads, writes
        Selections read and written.
    requests
        Store requests under the array's prefix (metadata, chunks, shards, lists).
    bytes_read, bytes_written
        Bytes the requests moved.
    """

    name: str
    reads: int
    writes: int
    requests: int
    bytes_read: int
    bytes_written: int


def _byte_range(request: ByteRequest | None) -> tuple[int, int | None] | None:
    if request is None:
        return None
    if isinstance(request, RangeByteRequest):
        return (int(request.start), int(request.end))
    if isinstance(request, OffsetByteRequest):
        return (int(request.offset), None)
    return (-int(request.suffix), None)


class TracingStore(SeesEveryRequest, WrapperStore[Store]):
    """A store wrapper that records every request into a :class:`Trace`.

    Parameters
    ----------
    store
        The store holding the bytes.
    trace
        Where the events go.
    """

    def __init__(self, store: Store, *, trace: Trace) -> None:
        super().__init__(store)
        self.trace = trace
        self.label = str(store)

    def _with_store(self, store: Store) -> TracingStore:
        return type(self)(store, trace=self.trace)

    def _record(
        self,
        op: TraceOp,
        key: str,
        start: float,
        nbytes: int = 0,
        byte_range: ByteRequest | None = None,
    ) -> None:
        self.trace._add_event(
            op, key, _byte_range(byte_range), nbytes, start, time.perf_counter(), self.label
        )

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        start = time.perf_counter()
        value = None
        try:
            value = await self._store.get(key, prototype, byte_range)
            return value
        finally:
            self._record("get", key, start, 0 if value is None else len(value), byte_range)

    async def get_partial_values(
        self,
        prototype: BufferPrototype,
        key_ranges: Iterable[tuple[str, ByteRequest | None]],
    ) -> list[Buffer | None]:
        ranges = list(key_ranges)
        start = time.perf_counter()
        values = await self._store.get_partial_values(prototype, ranges)
        for (key, request), value in zip(ranges, values, strict=True):
            nbytes = 0 if value is None else len(value)
            self._record("get_partial_values", key, start, nbytes, request)
        return values

    async def exists(self, key: str) -> bool:
        start = time.perf_counter()
        try:
            return await self._store.exists(key)
        finally:
            self._record("exists", key, start)

    # The inner store's own getsize (a stat on a filesystem), not Store's default of
    # reading the whole object through self.get.
    async def getsize(self, key: str) -> int:
        start = time.perf_counter()
        try:
            return await self._store.getsize(key)
        finally:
            self._record("getsize", key, start)

    async def getsize_prefix(self, prefix: str) -> int:
        start = time.perf_counter()
        try:
            return await self._store.getsize_prefix(prefix)
        finally:
            self._record("getsize_prefix", prefix, start)

    async def set(self, key: str, value: Buffer) -> None:
        start = time.perf_counter()
        try:
            await self._store.set(key, value)
        finally:
            self._record("set", key, start, len(value))

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        start = time.perf_counter()
        try:
            await self._store.set_if_not_exists(key, value)
        finally:
            self._record("set_if_not_exists", key, start, len(value))

    async def _set_many(self, values: Iterable[tuple[str, Buffer]]) -> None:
        await set_each(self, values)

    def _get_many(
        self, requests: Iterable[tuple[str, BufferPrototype, ByteRequest | None]]
    ) -> AsyncGenerator[tuple[str, Buffer | None], None]:
        return get_each(self, requests)

    async def delete(self, key: str) -> None:
        start = time.perf_counter()
        try:
            await self._store.delete(key)
        finally:
            self._record("delete", key, start)

    async def delete_dir(self, prefix: str) -> None:
        start = time.perf_counter()
        try:
            await self._store.delete_dir(prefix)
        finally:
            self._record("delete_dir", prefix, start)

    async def clear(self) -> None:
        start = time.perf_counter()
        try:
            await self._store.clear()
        finally:
            self._record("clear", "", start)

    async def is_empty(self, prefix: str) -> bool:
        start = time.perf_counter()
        try:
            return await self._store.is_empty(prefix)
        finally:
            self._record("is_empty", prefix, start)

    async def _listed(
        self, op: TraceOp, prefix: str, items: AsyncIterator[str]
    ) -> AsyncIterator[str]:
        start = time.perf_counter()
        try:
            async for item in items:
                yield item
        finally:
            self._record(op, prefix, start)

    def list(self) -> AsyncIterator[str]:
        return self._listed("list", "", self._store.list())

    def list_prefix(self, prefix: str) -> AsyncIterator[str]:
        return self._listed("list_prefix", prefix, self._store.list_prefix(prefix))

    def list_dir(self, prefix: str) -> AsyncIterator[str]:
        return self._listed("list_dir", prefix, self._store.list_dir(prefix))

    def __repr__(self) -> str:
        return f"TracingStore({self._store!r})"

    def __str__(self) -> str:
        return self.label


def _array_name(store: str, path: str) -> str:
    """The array's path; for a root array, the store's last path part (``vol.zarr``)."""
    if path:
        return path
    scheme, sep, rest = store.partition("://")
    tail = rest.rstrip("/").rsplit("/", 1)[-1]
    return tail if sep and scheme != "memory" and tail else "/"


class Trace:
    """Everything recorded while tracing: store events, array selections, arrays seen.

    Thread- and async-safe: events are appended under a lock, from zarr's event loop
    or from the caller's threads. The trace is the report: ``repr`` summarizes it,
    :meth:`to_dict` is the ``trace.json`` document.
    """

    def __init__(self, store: Store | None = None, *, span_fraction: float) -> None:
        if not 0 < span_fraction <= 1:
            raise SpecError(f"span_fraction {span_fraction!r} must be in (0, 1], e.g. 0.9.")
        self.span_fraction = span_fraction
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()
        self._events: list[TraceEvent] = []
        self._selections: list[Selection] = []
        self._arrays: dict[tuple[str, str], TracedArray] = {}
        self._unrecorded = 0
        self.duration_s: float | None = None
        self._store = None if store is None else self.wrap(store)

    # -- recording ------------------------------------------------------------------

    def wrap(self, store: Store) -> TracingStore:
        """``store`` behind a :class:`TracingStore` that records into this trace."""
        if isinstance(store, TracingStore) and store.trace is self:
            return store
        return TracingStore(store, trace=self)

    def _add_event(
        self,
        op: TraceOp,
        key: str,
        byte_range: tuple[int, int | None] | None,
        nbytes: int,
        start: float,
        end: float,
        store: str,
    ) -> None:
        event = TraceEvent(op, key, byte_range, nbytes, start - self._t0, end - start, store)
        with self._lock:
            self._events.append(event)

    def _add_selection(
        self,
        array: TracedArray,
        kind: Literal["read", "write"],
        box: tuple[tuple[int, int], ...],
        points: int,
        batch: int,
    ) -> None:
        selection = Selection(
            array.store, array.path, kind, box, points, time.perf_counter() - self._t0, batch
        )
        with self._lock:
            self._arrays[(array.store, array.path)] = array
            self._selections.append(selection)

    def _skipped(self) -> None:
        with self._lock:
            self._unrecorded += 1

    def _finish(self) -> None:
        self.duration_s = time.perf_counter() - self._t0

    # -- what was recorded ------------------------------------------------------------

    @property
    def store(self) -> TracingStore:
        """The traced store given to :func:`tracing` (open your arrays on it)."""
        if self._store is None:
            raise SpecError(
                "this trace wraps every store zarr opens and has no single store; pass a "
                "store to chunkwise.trace(store) to get t.store."
            )
        return self._store

    @property
    def events(self) -> tuple[TraceEvent, ...]:
        """Store requests, in the order they completed."""
        with self._lock:
            return tuple(self._events)

    @property
    def selections(self) -> tuple[Selection, ...]:
        """Array reads and writes, in the order they were made."""
        with self._lock:
            return tuple(self._selections)

    @property
    def arrays(self) -> dict[str, TracedArray]:
        """Arrays read or written, by name: their path (a root array: the store's last path
        part, ``vol.zarr``), as ``name@store`` if two arrays would share a name."""
        with self._lock:
            arrays = list(self._arrays.values())
        named = [(_array_name(a.store, a.path), a) for a in arrays]
        seen = Counter(name for name, _ in named)
        return {name if seen[name] == 1 else f"{name}@{a.store}": a for name, a in named}

    @property
    def bytes_read(self) -> int:
        """Bytes all reads (``get``, ``get_partial_values``) returned."""
        return sum(e.nbytes for e in self.events if e.op in _READ_OPS)

    @property
    def bytes_written(self) -> int:
        """Bytes all writes (``set``, ``set_if_not_exists``) stored."""
        return sum(e.nbytes for e in self.events if e.op in _WRITE_OPS)

    @property
    def unrecorded_selections(self) -> int:
        """Selections of a kind the tracer could not turn into a box (not in the workload)."""
        return self._unrecorded

    def _array(self, name: str | None) -> tuple[str, TracedArray]:
        arrays = self.arrays
        if not arrays:
            raise SpecError(
                "the trace saw no zarr array being read or written; open the arrays on the "
                "traced store (t.store) or inside the traced block."
            )
        if name is None:  # the most reads as the program made them (a Dask computation: one)
            return max(arrays.items(), key=lambda item: self._reads(item[1]))
        if name not in arrays:
            raise SpecError(
                f"array {name!r} is not in the trace; it saw {', '.join(sorted(arrays))}."
            )
        return name, arrays[name]

    def _reads(self, array: TracedArray) -> int:
        joined = merge_batches(self._accesses(array, "read"))
        return sum(1 for a in joined if all(stop > start for start, stop in a.box))

    def _accesses(self, array: TracedArray, kind: str) -> list[Access]:
        return [
            Access(s.box, s.points, s.batch)
            for s in self.selections
            if s.kind == kind and s.store == array.store and s.array == array.path
            and len(s.box) == len(array.shape)
        ]  # fmt: skip

    def workload(
        self, array: str | None = None, *, span_fraction: float | None = None
    ) -> InferredWorkload:
        """The workload inferred from one array's selections.

        Parameters
        ----------
        array
            Its name (see :attr:`arrays`); by default the array read most often.
        span_fraction
            Fraction of a dim (0-1] a read must cover to span it (see
            :mod:`chunkwise.plan.infer`); by default the trace's.

        Returns
        -------
        InferredWorkload
            ``.to_spec()`` is a spec ``advise`` accepts.
        """
        _, traced = self._array(array)
        return infer_workload(
            self._accesses(traced, "read"),
            shape=traced.shape,
            dtype=traced.dtype,
            dims=traced.dims,
            span_fraction=self.span_fraction if span_fraction is None else span_fraction,
            writes=self._accesses(traced, "write"),
        )

    def heatmap(self, array: str | None = None) -> ChunkHeatmap:
        """Chunk reads of one array (default: the most read), projected onto two dims."""
        _, traced = self._array(array)
        return chunk_heatmap(
            self._accesses(traced, "read"), shape=traced.shape, chunks=traced.chunks
        )

    def totals_by_op(self) -> tuple[OpTotals, ...]:
        """Requests, bytes and seconds per store op, most requests first."""
        totals: dict[str, list[float]] = {}
        for event in self.events:
            row = totals.setdefault(event.op, [0, 0, 0.0])
            row[0] += 1
            row[1] += event.nbytes
            row[2] += event.duration_s
        rows = [OpTotals(op, int(r[0]), int(r[1]), r[2]) for op, r in totals.items()]
        return tuple(sorted(rows, key=lambda r: (-r.requests, r.op)))

    def totals_by_array(self) -> tuple[ArrayTotals, ...]:
        """Selections, requests and bytes per array; a request belongs to the array whose
        path is the longest prefix of its key in the same store."""
        arrays = self.arrays
        by_store: dict[str, list[tuple[str, TracedArray]]] = {}
        for name, traced in arrays.items():
            by_store.setdefault(traced.store, []).append((name, traced))
        for members in by_store.values():
            members.sort(key=lambda item: -len(item[1].path))
        counts = {name: [0, 0, 0, 0, 0] for name in arrays}
        for event in self.events:
            for name, traced in by_store.get(event.store, []):
                if (
                    not traced.path
                    or event.key == traced.path
                    or event.key.startswith(traced.path + "/")
                ):
                    row = counts[name]
                    row[2] += 1
                    row[3] += event.nbytes if event.op in _READ_OPS else 0
                    row[4] += event.nbytes if event.op in _WRITE_OPS else 0
                    break
        keys = {(t.store, t.path): name for name, t in arrays.items()}
        for selection in self.selections:
            name = keys[(selection.store, selection.array)]
            counts[name][0 if selection.kind == "read" else 1] += 1
        return tuple(ArrayTotals(name, *row) for name, row in counts.items())

    def to_dict(self) -> dict[str, Any]:
        """The ``trace.json`` document: arrays, totals, events and selections."""
        return {
            "duration_s": self.duration_s,
            "arrays": {name: a.to_dict() for name, a in self.arrays.items()},
            "totals": {
                "by_op": [
                    {"op": t.op, "requests": t.requests, "nbytes": t.nbytes,
                     "duration_s": round(t.duration_s, 6)}
                    for t in self.totals_by_op()
                ],
                "by_array": [
                    {"array": t.name, "reads": t.reads, "writes": t.writes,
                     "requests": t.requests, "bytes_read": t.bytes_read,
                     "bytes_written": t.bytes_written}
                    for t in self.totals_by_array()
                ],
            },
            "unrecorded_selections": self._unrecorded,
            "events": [e.to_dict() for e in self.events],
            "selections": [s.to_dict() for s in self.selections],
        }  # fmt: skip

    def summary(self) -> list[str]:
        """Lines for humans: requests and bytes per op, then per array."""
        lines = [
            f"{len(self.events)} store requests, {format_bytes(self.bytes_read)} read, "
            f"{format_bytes(self.bytes_written)} written"
        ]
        lines += [
            f"  {t.op}: {t.requests} requests, {format_bytes(t.nbytes)}"
            for t in self.totals_by_op()
        ]
        for t in self.totals_by_array():
            lines.append(
                f"array {t.name}: {t.reads} reads, {t.writes} writes, {t.requests} requests, "
                f"{format_bytes(t.bytes_read)} read"
            )
        return lines

    def __repr__(self) -> str:
        return "\n".join(["Trace:", *self.summary()])


# -- selection capture -------------------------------------------------------------------


def _dims_of(metadata: Any, ndim: int) -> tuple[str, ...]:
    names = getattr(metadata, "dimension_names", None)
    if names is None:
        names = (getattr(metadata, "attributes", None) or {}).get("_ARRAY_DIMENSIONS")
    if (
        isinstance(names, list | tuple)
        and len(names) == ndim
        and all(isinstance(n, str) and n for n in names)
        and len(set(names)) == ndim
    ):
        return tuple(names)
    return tuple(f"dim_{i}" for i in range(ndim))


def _traced_array(store: TracingStore, path: str, metadata: Any) -> TracedArray:
    shape = tuple(int(n) for n in metadata.shape)
    try:
        dtype = np.dtype(metadata.dtype.to_native_dtype()).name
    except (AttributeError, TypeError):
        dtype = str(metadata.dtype)
    shards = getattr(metadata, "shards", None)
    return TracedArray(
        store=store.label,
        path=path,
        shape=shape,
        dtype=dtype,
        dims=_dims_of(metadata, len(shape)),
        chunks=tuple(int(c) for c in metadata.chunks),
        shards=tuple(int(s) for s in shards) if shards is not None else None,
        zarr_format=int(metadata.zarr_format),
    )


def _span(values: Any) -> tuple[int, int]:
    flat = np.asarray(values).reshape(-1)
    if flat.dtype == np.bool_:
        flat = np.flatnonzero(flat)
    if flat.size == 0:
        return (0, 0)
    return (int(flat.min()), int(flat.max()) + 1)


def _box(indexer: Any) -> tuple[tuple[tuple[int, int], ...], int] | None:
    """The per-dim box of a zarr indexer and its number of points (0: a box)."""
    dim_indexers = getattr(indexer, "dim_indexers", None)
    if dim_indexers is not None:
        box = []
        for dim in dim_indexers:
            if hasattr(dim, "start") and hasattr(dim, "stop"):  # SliceDimIndexer
                box.append((int(dim.start), max(int(dim.start), int(dim.stop))))
            elif isinstance(getattr(dim, "dim_sel", None), int | np.integer):  # IntDimIndexer
                box.append((int(dim.dim_sel), int(dim.dim_sel) + 1))
            elif getattr(dim, "dim_sel", None) is not None:  # int or bool array
                box.append(_span(dim.dim_sel))
            else:
                return None
        return tuple(box), 0
    selection = getattr(indexer, "selection", None)
    if isinstance(selection, tuple) and selection:  # coordinate and mask selections
        points = int(np.asarray(selection[0]).size)
        return tuple(_span(s) for s in selection), points
    return None


class _Hooks:
    """The zarr functions patched while any trace is active (installed once, restored
    when the last trace ends)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active: list[Trace] = []
        self.capturing: list[Trace] = []
        self.saved: dict[str, Callable[..., Any]] | None = None
        self.saved_dask: list[tuple[Any, Callable[..., Any]]] = []
        self.batches: list[int] = []
        self._batch_ids = itertools.count(1)

    def note(
        self, store_path: Any, metadata: Any, indexer: Any, kind: Literal["read", "write"]
    ) -> None:
        store = getattr(store_path, "store", None)
        if not isinstance(store, TracingStore) or store.trace not in self.active:
            return
        try:
            found = _box(indexer)
            if found is None:
                store.trace._skipped()
                return
            array = _traced_array(store, str(store_path.path), metadata)
            batches = self.batches
            batch = batches[0] if len(batches) == 1 else 0  # several at once: ambiguous
            store.trace._add_selection(array, kind, found[0], found[1], batch)
        except Exception:  # never break the user's read because a box could not be made
            store.trace._skipped()

    def activate(self, trace: Trace, *, capture: bool) -> None:
        import zarr.core.array as zarr_array
        import zarr.storage._common as zarr_common

        with self.lock:
            if self.saved is None:
                saved: dict[str, Callable[..., Any]] = {
                    "get": zarr_array._get_selection,
                    "set": zarr_array._set_selection,
                    "make_store": zarr_common.make_store,
                }
                zarr_array._get_selection = self._selection_hook(saved["get"], "read")
                zarr_array._set_selection = self._selection_hook(saved["set"], "write")
                zarr_common.make_store = self._make_store_hook(saved["make_store"])
                self.saved = saved
                self._hook_dask()
            self.active.append(trace)
            if capture:
                self.capturing.append(trace)

    def deactivate(self, trace: Trace) -> None:
        import zarr.core.array as zarr_array
        import zarr.storage._common as zarr_common

        with self.lock:
            if trace in self.active:
                self.active.remove(trace)
            if trace in self.capturing:
                self.capturing.remove(trace)
            if not self.active and self.saved is not None:
                zarr_array._get_selection = self.saved["get"]
                zarr_array._set_selection = self.saved["set"]
                zarr_common.make_store = self.saved["make_store"]
                self.saved = None
                for module, original in self.saved_dask:
                    setattr(module, "get_async", original)  # noqa: B010
                self.saved_dask = []

    def _selection_hook(
        self, original: Callable[..., Any], kind: Literal["read", "write"]
    ) -> Callable[..., Any]:
        """``original`` recording each call's selection. Its arguments are found by name:
        zarr 3.4 passes the chunk grid before the indexer, zarr 3.1 does not."""
        signature = inspect.signature(original)

        async def hooked(*args: Any, **kwargs: Any) -> Any:
            try:
                named = signature.bind(*args, **kwargs).arguments
            except TypeError:  # a zarr whose arguments are not these: record nothing
                named = {}
            if "indexer" in named:
                self.note(named.get("store_path"), named.get("metadata"), named["indexer"], kind)
            return await original(*args, **kwargs)

        return hooked

    def _hook_dask(self) -> None:
        """Number Dask computations: the local schedulers (threaded and synchronous) all
        run through ``get_async``, called by name from ``dask.local`` and ``dask.threaded``.
        Only a Dask that is already imported is hooked."""
        for name in ("dask.local", "dask.threaded"):
            module = sys.modules.get(name)
            original = getattr(module, "get_async", None)
            if module is None or original is None:
                continue
            setattr(module, "get_async", self._batch_hook(original))  # noqa: B010
            self.saved_dask.append((module, original))

    def _batch_hook(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def hooked(*args: Any, **kwargs: Any) -> Any:
            batch = next(self._batch_ids)
            self.batches.append(batch)
            try:
                return original(*args, **kwargs)
            finally:
                self.batches.remove(batch)

        return hooked

    def _make_store_hook(self, original: Callable[..., Any]) -> Callable[..., Any]:
        async def hooked(*args: Any, **kwargs: Any) -> Any:
            store = await original(*args, **kwargs)
            with self.lock:  # another thread's trace may end meanwhile
                capturing = self.capturing[-1] if self.capturing else None
            if capturing is None or isinstance(store, TracingStore):
                return store
            return capturing.wrap(store)

        return hooked


_HOOKS = _Hooks()


@contextmanager
def tracing(store: Store | None = None, *, span_fraction: float) -> Iterator[Trace]:
    """Trace a block of zarr work.

    Parameters
    ----------
    store
        The store to trace: open arrays on ``t.store``. ``None`` traces every store zarr
        opens inside the block (``zarr.open_array("data.zarr")``, ``xr.open_zarr(...)``).
    span_fraction
        Fraction of a dim (0-1] a read must cover to span it, for :meth:`Trace.workload`.

    Yields
    ------
    Trace
        Filled as the block runs; complete when the block ends.
    """
    trace = Trace(store, span_fraction=span_fraction)
    _HOOKS.activate(trace, capture=store is None)
    try:
        yield trace
    finally:
        _HOOKS.deactivate(trace)
        trace._finish()


# -- running a script ---------------------------------------------------------------------


@dataclass(frozen=True)
class ScriptRun:
    """A script run under :func:`tracing`.

    Parameters
    ----------
    command
        The command as given (``python analysis.py ARGS``).
    exit_code
        What ``python analysis.py`` would have exited with: 0, the ``sys.exit`` code,
        1 after an exception, 130 after Ctrl-C.
    trace
        What it did to its zarr stores.
    error
        The exception it raised, if any (its traceback was printed to stderr).
    """

    command: tuple[str, ...]
    exit_code: int
    trace: Trace
    error: BaseException | None = field(default=None, compare=False)


def _is_python(word: str) -> bool:
    """An interpreter (``python``, ``python3.11``, ``pythonw.exe``), not ``python_x.py``."""
    name = Path(word).name
    return re.fullmatch(r"python[0-9.]*w?(\.exe)?", name) is not None or word == sys.executable


def _script_target(command: Sequence[str]) -> tuple[str, str, list[str]]:
    """``("path"|"module", target, argv)`` of ``python script.py ARGS`` / ``python -m mod``."""
    words = list(command)
    if words and _is_python(words[0]):
        words = words[1:]
    usage = "chunkwise trace -- python analysis.py ARGS (or: -- python -m package.module ARGS)"
    if not words:
        raise SpecError(f"give the script to trace after --, e.g. {usage}.")
    if words[0] == "-m":
        if len(words) < 2:
            raise SpecError(f"python -m needs a module name; use {usage}.")
        return "module", words[1], words[1:]
    if words[0].startswith("-"):
        raise SpecError(
            f"python option {words[0]!r} is not supported: trace runs the script in its own "
            f"Python process; use {usage}."
        )
    script = words[0]
    if not script.endswith((".py", ".pyw")) and not Path(script).is_file():
        raise SpecError(
            f"{script!r} is not a Python script: trace runs Python code with zarr traced; "
            f"use {usage}."
        )
    if not Path(script).is_file():
        raise SpecError(f"script {script!r} does not exist; give the path of a Python file.")
    return "path", script, words


def _find_module(name: str) -> object:
    sys.path.insert(0, os.getcwd())
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    finally:
        sys.path.pop(0)


def _user_traceback(error: BaseException) -> None:
    """Print the traceback from the user's code on (drop runpy's and our frames)."""
    tb = error.__traceback__
    ours = {__file__, runpy.__file__, "<frozen runpy>"}
    while tb is not None and tb.tb_frame.f_code.co_filename in ours:
        tb = tb.tb_next
    traceback.print_exception(type(error), error, tb, file=sys.stderr)


def run_script(command: Sequence[str], *, span_fraction: float) -> ScriptRun:
    """Run ``python script.py ARGS`` (or ``python -m module ARGS``) in this process, with
    every zarr store it opens traced.

    The script runs as ``__main__`` with ``sys.argv`` set to ``[script, *ARGS]`` and its
    directory first on ``sys.path``, like ``python script.py`` would; both, and the
    working directory, are restored afterwards. Its exceptions are printed with their traceback, not raised. In-process,
    so the trace sees zarr objects directly; work the script hands to other processes
    (multiprocessing, Dask distributed workers) is not traced.

    Parameters
    ----------
    command
        ``["python", "analysis.py", ...]``; the leading ``python`` is optional.
    span_fraction
        Fraction of a dim (0-1] a read must cover to span it, for :meth:`Trace.workload`.

    Returns
    -------
    ScriptRun
        The exit code and the trace.

    Raises
    ------
    chunkwise.errors.SpecError
        When the command is not a Python script or module that exists.
    """
    how, target, argv = _script_target(command)
    if how == "module" and _find_module(target) is None:
        raise SpecError(
            f"module {target!r} was not found from {os.getcwd()!r}; check the name given to -m."
        )
    if importlib.util.find_spec("dask") is not None:
        # Imported now so its schedulers are hooked: reads of one Dask computation (an
        # xarray .load()) are then joined into the selection they came from.
        importlib.import_module("dask.threaded")
    saved_argv, saved_path, saved_cwd = sys.argv[:], sys.path[:], os.getcwd()
    error: BaseException | None = None
    exit_code = 0
    with tracing(span_fraction=span_fraction) as trace:
        try:
            sys.argv = list(argv)
            if how == "path":
                sys.path.insert(0, str(Path(target).resolve().parent))
                runpy.run_path(target, run_name="__main__")
            else:
                sys.path.insert(0, os.getcwd())
                runpy.run_module(target, run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            code = exc.code
            if code is None or isinstance(code, int):
                exit_code = code or 0
            else:
                print(code, file=sys.stderr)
                exit_code = 1
        except KeyboardInterrupt as exc:
            error, exit_code = exc, 130
            _user_traceback(exc)
        except Exception as exc:
            error, exit_code = exc, 1
            _user_traceback(exc)
        finally:
            sys.argv, sys.path[:] = saved_argv, saved_path
            os.chdir(saved_cwd)
            sys.stdout.flush()
    return ScriptRun(tuple(command), exit_code, trace, error)
