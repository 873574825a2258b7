"""Predicted seconds, requests and bytes per operation, following how readers really behave.

The model follows zarr-python 3.1's request pattern rather than an idealized reader:

* requests go out through ``concurrent_map`` limited to ``async.concurrency`` (10), so
  ``N`` requests cost about ``max(1, N / concurrency)`` round trips;
* a partial read of a shard costs one index request and then one request per inner
  chunk, awaited one after another; shards are read concurrently with each other;
* a read that touches every inner chunk of a shard fetches the whole shard at once;
* every shard write first reads the existing shard (a GET, even when it does not exist);
* each chunk costs a fixed slice of interpreter CPU on top of decoding;
* a crc32c checksum runs on the event-loop thread, one chunk after another, while the
  compressor runs on worker threads.

A reader that fetches inner chunks concurrently (zarr-python 3.4, tensorstore, zarrs)
pays two rounds for a partial shard read: the indexes, then all inner chunks. zarr-python
3.4 merges a shard's inner-chunk byte ranges that lie at most 1 MiB apart into one ranged
request of at most 16 MiB, fetching the gaps too; and it writes a whole shard without
reading it first (only shards the write covers in part are read).

Everything here is vectorized: per-dimension statistics are arrays that broadcast
against each other, so the same code prices one layout or a grid of thousands.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from chunkwise.cost.geometry import DimAccess, append_access, dim_access
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import (
    CRC32C_BYTES,
    CodecProfile,
    CodecSpec,
    CRC32C_DECODE_Bps,
    CRC32C_ENCODE_Bps,
)
from chunkwise.model.layout import SHARD_INDEX_CHECKSUM_BYTES, SHARD_INDEX_ENTRY_BYTES, Layout
from chunkwise.model.storage import StorageProfile
from chunkwise.model.workload import Operation, Workload

__all__ = [
    "CostInputs",
    "Grid",
    "LayoutCost",
    "OpCost",
    "estimate_layout",
    "grid_footprint",
    "op_cost",
    "weighted_seconds",
]

Array = np.ndarray[Any, np.dtype[np.float64]]
_HEADER_BYTES = {"blosc": 16, "zstd": 12, "gzip": 18, "none": 0}


def _chunk_overhead_bytes(codec: CodecSpec) -> int:
    """Bytes a stored chunk carries besides its compressed data: the compressor's header
    and, with a checksum, the 4-byte CRC."""
    return _HEADER_BYTES[codec.kind] + (CRC32C_BYTES if codec.checksum else 0)


@dataclass(frozen=True, slots=True)
class CostInputs:
    """Everything the cost model needs besides the layout and the operation."""

    array: ArraySpec
    storage: StorageProfile
    codec: CodecSpec
    codec_profile: CodecProfile


@dataclass(frozen=True, eq=False)
class Grid:
    """A family of layouts: per dim, a list of ``(chunk, shard)`` pairs, crossed.

    ``shard`` is ``None`` for every pair of an unsharded grid. The grid's shape is the
    number of pairs per dim; each cost array has that shape.
    """

    pairs: tuple[tuple[tuple[int, int | None], ...], ...]

    @classmethod
    def single(cls, layout: Layout) -> Grid:
        """The one-element grid of ``layout``."""
        shards = layout.shards or (None,) * len(layout.chunks)
        return cls(tuple(((c, s),) for c, s in zip(layout.chunks, shards, strict=True)))

    @property
    def sharded(self) -> bool:
        """Whether the layouts are sharded."""
        return self.pairs[0][0][1] is not None

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of candidate pairs per dim."""
        return tuple(len(p) for p in self.pairs)

    def axis_values(self, axis: int, which: int) -> Array:
        """Chunk (``which=0``) or shard (``which=1``; chunk when unsharded) sizes of one
        dim, shaped to broadcast along ``axis``."""
        values = [pair[which] if pair[which] is not None else pair[0] for pair in self.pairs[axis]]
        shape = [1] * len(self.pairs)
        shape[axis] = len(values)
        return np.asarray(values, dtype=np.float64).reshape(shape)

    def chunk_elements(self) -> Array:
        """Elements per (inner) chunk."""
        return _product(self.axis_values(a, 0) for a in range(len(self.pairs)))


def _product(arrays: Any) -> Array:
    out: Array = np.asarray(1.0)
    for a in arrays:
        out = out * a
    return out


def _stats(grid: Grid, axis: int, access: Any) -> tuple[Array, ...]:
    """Per-dim DimAccess fields as arrays broadcast along ``axis``."""
    rows = [access(chunk, shard) for chunk, shard in grid.pairs[axis]]
    shape = [1] * len(grid.pairs)
    shape[axis] = len(rows)
    return tuple(
        np.asarray([getattr(r, f) for r in rows], dtype=np.float64).reshape(shape)
        for f in DimAccess.__slots__
    )


@dataclass(frozen=True, eq=False)
class OpCost:
    """Predicted cost of one operation (arrays over a grid, or 0-d for one layout).

    All times in seconds, bytes in bytes.
    """

    chunks: Array
    requests: Array
    get_requests: Array
    put_requests: Array
    bytes_fetched: Array
    bytes_written: Array
    bytes_decoded: Array
    bytes_encoded: Array
    latency_s: Array
    transfer_s: Array
    codec_s: Array
    cpu_s: Array

    @property
    def seconds(self) -> Array:
        """Predicted wall time of one operation."""
        return self.latency_s + self.transfer_s + self.codec_s + self.cpu_s

    def item(self) -> dict[str, float]:
        """Scalar form (for a one-layout grid), including ``seconds``."""
        out = {
            name: float(np.asarray(getattr(self, name)).reshape(-1)[0]) for name in _OPCOST_FIELDS
        }
        out["seconds"] = float(np.asarray(self.seconds).reshape(-1)[0])
        return out


_OPCOST_FIELDS = (
    "chunks", "requests", "get_requests", "put_requests", "bytes_fetched", "bytes_written",
    "bytes_decoded", "bytes_encoded", "latency_s", "transfer_s", "codec_s", "cpu_s",
)  # fmt: skip


def _waves(requests: Array, concurrency: int) -> Array:
    """Round trips for ``requests`` sent through a concurrency limit (>= 1).

    A request waits for a free slot, so 11 requests through 10 slots take two full
    round trips, not 1.1 (measured: 16 requests at 20 ms took 51-55 ms through
    zarr-python). ``requests`` is an expected count over positions; between whole
    rounds the count is interpolated over the last ``concurrency`` requests, so that
    a mean of 10.5 (half the positions need 10, half 11) costs 1.5 rounds.
    """
    rounds = np.asarray(requests, dtype=np.float64) / concurrency
    whole = np.floor(rounds)
    part = rounds - whole
    # Within one slot's worth of a round boundary the mean mixes counts either side.
    step = np.minimum(part * concurrency, 1.0)
    out: Array = np.maximum(1.0, whole + step)
    return out


class _Terms:
    """Shared per-grid quantities for one (grid, inputs) pair."""

    def __init__(self, grid: Grid, inputs: CostInputs) -> None:
        self.grid = grid
        self.inputs = inputs
        array, profile = inputs.array, inputs.codec_profile
        self.ndim = array.ndim
        self.chunk_raw = grid.chunk_elements() * array.itemsize
        header = _chunk_overhead_bytes(inputs.codec)
        self.header = header
        self.ratio = profile.ratio
        self.chunk_stored = self.chunk_raw / profile.ratio + header
        if grid.sharded:
            self.cps = _product(
                grid.axis_values(a, 1) / grid.axis_values(a, 0) for a in range(self.ndim)
            )
            self.index_bytes = self.cps * SHARD_INDEX_ENTRY_BYTES + SHARD_INDEX_CHECKSUM_BYTES
            self.shard_stored = self.cps * self.chunk_stored + self.index_bytes
        storage = inputs.storage
        self.latency = storage.latency_s
        self.stream = storage.stream_bandwidth_Bps
        self.bandwidth = storage.bandwidth_Bps
        self.conc = storage.effective_concurrency
        self.reader = storage.reader

    def edge_stored(self, stats: list[tuple[Array, ...]], chunks: Array) -> tuple[Array, Array]:
        """Mean stored bytes and mean real (unpadded) raw bytes of the touched chunks.

        zarr stores a ragged edge chunk at the full chunk shape, padded with the fill
        value. Uncompressed, the padding costs its full size; compressed, it costs next
        to nothing to store, fetch and decode (measured: decode time follows the real
        data), so a compressed edge chunk costs about its real size.
        """
        elements = _product(s[6] for s in stats)
        nominal = np.maximum(chunks * self.grid.chunk_elements(), 1e-12)
        real = self.chunk_raw * np.minimum(elements / nominal, 1.0)
        if self.inputs.codec.kind == "none":
            return self.chunk_stored, self.chunk_raw
        return real / self.ratio + self.header, real

    def io_floor(self, seconds: Array, n_bytes: Array) -> Array:
        """No pattern beats the aggregate bandwidth."""
        return np.maximum(seconds, self.latency + n_bytes / self.bandwidth)

    def decode_s(self, n_bytes: Array, chunks: Array) -> Array:
        threads = np.minimum(self.reader.threads, np.maximum(chunks, 1.0))
        return n_bytes / (self.inputs.codec_profile.decode_Bps * threads)

    def encode_s(self, n_bytes: Array, chunks: Array) -> Array:
        threads = np.minimum(self.reader.threads, np.maximum(chunks, 1.0))
        return n_bytes / (self.inputs.codec_profile.encode_Bps * threads)

    def serial_checksum_s(self, stored_bytes: Array, chunks: Array, *, encode: bool) -> Array:
        """Seconds a reader that checksums on one thread adds to the codec time.

        The codec profile spreads the crc32c over the decode threads like the compressor;
        zarr-python runs it on its event-loop thread, in series, so all but
        ``1 / threads`` of it comes on top. ``stored_bytes`` are the bytes checksummed.
        """
        if not (self.inputs.codec.checksum and self.reader.serial_checksum):
            return np.zeros_like(np.asarray(stored_bytes, dtype=np.float64))
        threads = np.minimum(self.reader.threads, np.maximum(chunks, 1.0))
        rate = CRC32C_ENCODE_Bps if encode else CRC32C_DECODE_Bps
        return stored_bytes / rate * (1.0 - 1.0 / threads)


#: Share of the gaps between a box's inner chunks that a coalescing reader fetches: the
#: rest lie in gaps wider than its limit and split the request. Fitted to one scratch
#: run of zarr-python 3.4.2 (2.17 MiB per 32^3 region of 32^3 chunks in 128^3 shards);
#: benchmarks/bench_reader_model.py measures 1.52 MiB at other positions against the
#: model's 2.15 MiB: it overprices the gaps there.
GAP_SHARE_FETCHED = 0.5


def _inner_fetch(
    t: _Terms, per_shard: Array, chunk_stored: Array, *, clustered: bool
) -> tuple[Array, Array]:
    """Requests and bytes for ``per_shard`` inner chunks read from one shard in part.

    Without coalescing: one request per inner chunk. A coalescing reader merges byte
    ranges at most ``coalesce_gap_bytes`` apart into requests of at most
    ``coalesce_max_bytes``, and fetches the gaps. Where the touched chunks lie in the
    shard's byte order decides both. zarr-python writes inner chunks in Morton order;
    a simulation of random boxes in Morton order (3-D shards of 2^3 to 8^3 chunks, 2-D
    of 4^2 to 16^2) gives, for ``k`` chunks of a box (``clustered``) in a shard of ``n``:

    * they span about ``sqrt(k * n)`` chunks (within 15% in 3-D; it overestimates 2-D);
    * they form about ``k ** (1 - 1/d)`` contiguous runs (``d``: dims along which the
      shard holds several chunks; within 25%), which merge even when the gaps between
      runs are too wide (tensorstore merges gaps of at most 4 KiB).

    Scattered points spread over the whole shard, each its own run.
    """
    reader = t.reader
    plain_bytes = per_shard * chunk_stored
    if reader.coalesce_gap_bytes <= 0 or not t.grid.sharded:
        return per_shard, plain_bytes
    k = np.maximum(per_shard, 1.0)
    dims = sum(
        (t.grid.axis_values(a, 1) > t.grid.axis_values(a, 0)).astype(np.float64)
        for a in range(t.ndim)
    )
    runs = k ** (1.0 - 1.0 / np.maximum(dims, 1.0)) if clustered else k
    spread = k + np.maximum(t.cps - k, 0.0) * (k - 1.0) / k  # evenly over the shard
    span = np.clip(np.sqrt(k * t.cps) if clustered else spread, k, np.maximum(t.cps, k))
    gap = (span - k) / np.maximum(runs - 1.0, 1.0) * chunk_stored
    merged = (gap <= reader.coalesce_gap_bytes) & (per_shard > 1.0)
    fetched = (k + GAP_SHARE_FETCHED * (span - k)) * chunk_stored
    limit = max(reader.coalesce_max_bytes, 1)
    merged_requests = np.minimum(np.maximum(np.ceil(fetched / limit), 1.0), k)
    separate = np.where(per_shard > 1.0, np.minimum(runs, per_shard), per_shard)
    requests = np.where(merged, merged_requests, separate)
    return requests, np.where(merged, fetched, plain_bytes)


def _read_box(t: _Terms, op: Operation) -> OpCost:
    """plane / series / region / scan: one box of ``op.extent`` at a random position."""
    shape = t.inputs.array.shape
    stats = [
        _stats(t.grid, a, lambda c, s, n=shape[a], e=op.extent[a]: dim_access(n, e, c, s))
        for a in range(t.ndim)
    ]
    chunks = _product(s[0] for s in stats)
    zero = np.zeros_like(chunks)
    chunk_stored, chunk_real = t.edge_stored(stats, chunks)
    if not t.grid.sharded:
        requests = chunks
        fetched = chunks * chunk_stored
        per_request = t.latency + chunk_stored / t.stream
        waves = _waves(requests, t.conc)
        latency_s = waves * t.latency
        transfer_s = t.io_floor(waves * per_request, fetched) - latency_s
        cpu = chunks * t.reader.per_chunk_cpu_s
    else:
        shards = _product(s[2] for s in stats)
        total = _product(s[3] for s in stats)
        in_total = _product(s[4] for s in stats)
        longest = _product(s[5] for s in stats)
        partial = np.maximum(shards - total, 0.0)
        inner = np.maximum(chunks - in_total, 0.0)
        per_partial, bytes_partial = _inner_fetch(
            t, inner / np.maximum(partial, 1e-12), chunk_stored, clustered=True
        )
        # (Expected counts: a few inner chunks may remain where partial shards average 0.)
        inner_requests = np.where(partial > 0, partial * per_partial, inner)
        inner_bytes = np.where(partial > 0, partial * bytes_partial, inner * chunk_stored)
        requests = total + partial + inner_requests
        shard_stored = t.cps * chunk_stored + t.index_bytes
        fetched = total * shard_stored + partial * t.index_bytes + inner_bytes
        # Probability that some touched shard is read in part (then index requests come
        # first), from the per-dim probability that every touched shard is read whole.
        p_partial = 1.0 - _product(s[8] for s in stats)
        # zarr-python 3.1: index, then inner chunks one after another; shards concurrently.
        # Expected chain: 1 + E[longest] - E[longest where the shard is read whole].
        inner_chain = np.maximum(longest - _product(s[7] for s in stats), 0.0)
        chain_requests = 1.0 + inner_chain
        chain_bytes = (
            p_partial * t.index_bytes
            + inner_chain * chunk_stored
            + (1.0 - p_partial) * shard_stored
        )
        waves = _waves(shards, t.conc)
        latency_s = waves * chain_requests * t.latency
        io = latency_s + waves * chain_bytes / t.stream
        if not t.reader.sequential_inner_reads:
            # zarr-python 3.4, tensorstore, zarrs: all indexes concurrently, then all inner
            # chunks (or merged ranges of them) concurrently; never slower than the chain.
            partial_given = partial / np.maximum(p_partial, 1e-12)
            first = p_partial * _waves(partial_given, t.conc)
            second_n = total + inner_requests
            second = _waves(second_n, t.conc)
            mean_bytes = (total * shard_stored + inner_bytes) / np.maximum(second_n, 1e-12)
            rounds = (first + second) * t.latency
            concurrent_io = (
                rounds + first * t.index_bytes / t.stream + second * mean_bytes / t.stream
            )
            faster = concurrent_io <= io
            latency_s = np.where(faster, rounds, latency_s)
            io = np.minimum(concurrent_io, io)
        transfer_s = t.io_floor(io, fetched) - latency_s
        cpu = (chunks + shards) * t.reader.per_chunk_cpu_s
    cpu = cpu + t.serial_checksum_s(chunks * chunk_stored, chunks, encode=False)
    decoded = chunks * t.chunk_raw  # edge chunks decode at the full chunk shape
    return OpCost(
        chunks=chunks, requests=requests, get_requests=requests, put_requests=zero,
        bytes_fetched=fetched, bytes_written=zero, bytes_decoded=decoded, bytes_encoded=zero,
        latency_s=latency_s, transfer_s=transfer_s, codec_s=t.decode_s(chunks * chunk_real, chunks), cpu_s=cpu,
    )  # fmt: skip


def _grid_counts(t: _Terms) -> tuple[Array, Array]:
    """Chunks and objects in the whole array."""
    shape = t.inputs.array.shape
    chunks = _product(np.ceil(shape[a] / t.grid.axis_values(a, 0)) for a in range(t.ndim))
    objects = _product(np.ceil(shape[a] / t.grid.axis_values(a, 1)) for a in range(t.ndim))
    return chunks, objects


def _read_points(t: _Terms, op: Operation) -> OpCost:
    """``count`` random elements in one call: distinct chunks (and shards) fetched."""
    n_chunks, n_objects = _grid_counts(t)
    distinct = n_chunks * -np.expm1(op.count * np.log1p(-1.0 / np.maximum(n_chunks, 1.0 + 1e-12)))
    distinct = np.where(n_chunks <= 1, 1.0, distinct)
    zero = np.zeros_like(distinct)
    if not t.grid.sharded:
        requests = distinct
        fetched = distinct * t.chunk_stored
        waves = _waves(requests, t.conc)
        latency_s = waves * t.latency
        transfer_s = (
            t.io_floor(waves * (t.latency + t.chunk_stored / t.stream), fetched) - latency_s
        )
        cpu = distinct * t.reader.per_chunk_cpu_s
    else:
        shards = n_objects * -np.expm1(
            op.count * np.log1p(-1.0 / np.maximum(n_objects, 1.0 + 1e-12))
        )
        shards = np.where(n_objects <= 1, 1.0, shards)
        per_shard = distinct / shards
        shard_requests, shard_bytes = _inner_fetch(t, per_shard, t.chunk_stored, clustered=False)
        inner_requests = shards * shard_requests
        requests = shards + inner_requests
        fetched = shards * t.index_bytes + shards * shard_bytes
        waves = _waves(shards, t.conc)
        if t.reader.sequential_inner_reads:
            latency_s = waves * (1.0 + per_shard) * t.latency
            io = latency_s + waves * (t.index_bytes + per_shard * t.chunk_stored) / t.stream
        else:
            second = _waves(inner_requests, t.conc)
            latency_s = (waves + second) * t.latency
            mean_bytes = shard_bytes / np.maximum(shard_requests, 1e-12)
            io = latency_s + waves * t.index_bytes / t.stream + second * mean_bytes / t.stream
        transfer_s = t.io_floor(io, fetched) - latency_s
        cpu = (distinct + shards) * t.reader.per_chunk_cpu_s
    cpu = cpu + t.serial_checksum_s(distinct * t.chunk_stored, distinct, encode=False)
    decoded = distinct * t.chunk_raw
    return OpCost(
        chunks=distinct, requests=requests, get_requests=requests, put_requests=zero,
        bytes_fetched=fetched, bytes_written=zero, bytes_decoded=decoded, bytes_encoded=zero,
        latency_s=latency_s, transfer_s=transfer_s, codec_s=t.decode_s(decoded, distinct), cpu_s=cpu,
    )  # fmt: skip


def _write_box(t: _Terms, op: Operation) -> OpCost:
    """write (whole array) and append (a slab at the end of one dim)."""
    shape = t.inputs.array.shape
    axis = t.inputs.array.axis(op.dims[0]) if op.kind == "append" else -1

    def access(a: int) -> Any:
        if a == axis:
            return lambda c, s: append_access(op.extent[a], c, s)
        return lambda c, s, n=shape[a]: dim_access(n, n, c, s)

    stats = [_stats(t.grid, a, access(a)) for a in range(t.ndim)]
    chunks = _product(s[0] for s in stats)
    complete = _product(s[1] for s in stats)
    partial = np.maximum(chunks - complete, 0.0)
    # Appends also rewrite the array metadata (shape): one GET and one PUT, in sequence.
    meta_requests = 2.0 if op.kind == "append" else 0.0
    if not t.grid.sharded:
        gets = partial
        puts = chunks
        fetched = partial * t.chunk_stored
        written = chunks * t.chunk_stored
        waves = _waves(chunks, t.conc)
        share = partial / np.maximum(chunks, 1e-12)
        latency_s = waves * (1.0 + share) * t.latency + meta_requests * t.latency
        io = latency_s + waves * (1.0 + share) * t.chunk_stored / t.stream
        decoded = partial * t.chunk_raw
        cpu = chunks * t.reader.per_chunk_cpu_s
    else:
        shards = _product(s[2] for s in stats)
        if t.reader.shard_write_reads_existing:
            # Every shard write reads the existing shard whole first (zarr-python 3.1).
            gets = shards
        elif op.kind == "write":
            # Only shards the write covers in part are read first: those at the array's
            # far edge, whose inner chunks past the end are not written (zarr-python 3.4).
            interior = _product(
                np.floor(shape[a] / t.grid.axis_values(a, 1)) for a in range(t.ndim)
            )
            gets = np.maximum(shards - interior, 0.0)
        else:
            gets = shards  # an append covers its first shard in part
        puts = shards
        # A write of the whole array finds no shard to read: the GETs come back empty.
        existing = 0.0 if op.kind == "write" else 1.0
        fetched = existing * gets * t.shard_stored
        written = shards * t.shard_stored
        waves = _waves(shards, t.conc)
        share = gets / np.maximum(shards, 1e-12)
        latency_s = waves * (1.0 + share) * t.latency + meta_requests * t.latency
        io = latency_s + waves * (1.0 + existing * share) * t.shard_stored / t.stream
        decoded = partial * t.chunk_raw
        cpu = (chunks + shards) * t.reader.per_chunk_cpu_s
    cpu = cpu + t.serial_checksum_s(chunks * t.chunk_stored, chunks, encode=True)
    cpu = cpu + t.serial_checksum_s(
        partial * t.chunk_stored, np.maximum(partial, 1.0), encode=False
    )
    requests = gets + puts + meta_requests
    transfer_s = t.io_floor(io, fetched + written) - latency_s
    encoded = chunks * t.chunk_raw
    codec_s = t.encode_s(encoded, chunks) + t.decode_s(decoded, np.maximum(partial, 1.0))
    return OpCost(
        chunks=chunks, requests=requests, get_requests=gets + meta_requests / 2, put_requests=puts + meta_requests / 2,
        bytes_fetched=fetched, bytes_written=written, bytes_decoded=decoded, bytes_encoded=encoded,
        latency_s=latency_s, transfer_s=transfer_s, codec_s=codec_s, cpu_s=cpu,
    )  # fmt: skip


def op_cost(op: Operation, grid: Grid, inputs: CostInputs) -> OpCost:
    """Predicted cost of one operation for every layout of ``grid``.

    Parameters
    ----------
    op
        The operation, resolved against ``inputs.array``.
    grid
        The layouts to price.
    inputs
        Array, storage (with reader) and codec.

    Returns
    -------
    OpCost
        Arrays of the grid's shape.
    """
    return _op_cost(op, _Terms(grid, inputs))


def _op_cost(op: Operation, terms: _Terms) -> OpCost:
    if op.kind == "point":
        cost = _read_points(terms, op)
    elif op.kind in ("write", "append"):
        cost = _write_box(terms, op)
    else:
        cost = _read_box(terms, op)
    reader = terms.reader
    if not (reader.per_call_s or reader.per_request_s):
        return cost
    fixed = reader.per_call_s + reader.per_request_s * cost.requests
    return replace(cost, cpu_s=cost.cpu_s + fixed)


@dataclass(frozen=True, eq=False)
class Footprint:
    """Objects and bytes a layout leaves in the store (arrays over a grid)."""

    data_objects: Array
    stored_bytes: Array
    chunk_bytes: Array
    object_bytes: Array


def grid_footprint(grid: Grid, inputs: CostInputs, metadata_objects: int) -> Footprint:
    """Objects, stored bytes (block-rounded) and raw chunk / object sizes for ``grid``."""
    t = _Terms(grid, inputs)
    n_chunks, n_objects = _grid_counts(t)
    array = inputs.array
    header = t.header
    if inputs.codec.kind == "none":  # edge chunks are stored padded to the full chunk
        data = n_chunks * (t.chunk_raw + header)
    else:
        data = array.nbytes / inputs.codec_profile.ratio + n_chunks * header
    if grid.sharded:
        data = data + n_objects * t.index_bytes
    block = inputs.storage.block_bytes
    if block > 0:
        mean_object = data / n_objects
        data = n_objects * np.ceil(mean_object / block) * block
    data = data + metadata_objects * max(block, 512)
    object_elements = _product(grid.axis_values(a, 1) for a in range(t.ndim))
    return Footprint(n_objects, data, t.chunk_raw, object_elements * array.itemsize)


@dataclass(frozen=True)
class LayoutCost:
    """Predicted costs of one layout for one workload.

    Attributes
    ----------
    ops
        Per operation name, the scalar breakdown (``seconds``, ``requests``, bytes, terms).
    weighted_s
        Sum of operation seconds times weights.
    objects
        Data objects plus metadata objects.
    stored_bytes
        Bytes in the store, with filesystem block rounding.
    monthly_storage_usd
        Storage price per month (object stores).
    usd_per_1000_ops
        Request price of 1000 operations drawn from the workload.
    """

    ops: dict[str, dict[str, float]]
    weighted_s: float
    objects: int
    stored_bytes: float
    monthly_storage_usd: float
    usd_per_1000_ops: float

    def seconds(self, op_name: str) -> float:
        """Predicted seconds of the named operation."""
        return self.ops[op_name]["seconds"]


def request_usd(cost: OpCost, storage: StorageProfile) -> Array:
    """Request price of one operation, US dollars."""
    return (
        cost.get_requests * storage.get_usd_per_1000 + cost.put_requests * storage.put_usd_per_1000
    ) / 1000


def estimate_layout(
    layout: Layout, workload: Workload | Sequence[Operation], inputs: CostInputs
) -> LayoutCost:
    """Predict the cost of ``layout`` for every operation of ``workload``.

    Parameters
    ----------
    layout
        The layout to price; ``inputs.codec`` and ``inputs.codec_profile`` must describe
        ``layout.codec``.
    workload
        The weighted operations.
    inputs
        Array, storage and codec profile.

    Returns
    -------
    LayoutCost
    """
    ops = workload.ops if isinstance(workload, Workload) else tuple(workload)
    grid = Grid.single(layout)
    terms = _Terms(grid, inputs)
    per_op: dict[str, dict[str, float]] = {}
    weighted = 0.0
    usd = 0.0
    for op in ops:
        cost = _op_cost(op, terms)
        scalar = cost.item()
        scalar["usd"] = float(np.asarray(request_usd(cost, inputs.storage)).reshape(-1)[0])
        per_op[op.name] = scalar
        weighted += op.weight * scalar["seconds"]
        usd += op.weight * scalar["usd"] * 1000
    foot = grid_footprint(grid, inputs, layout.metadata_objects())
    objects = round(float(np.asarray(foot.data_objects).reshape(-1)[0])) + layout.metadata_objects()
    stored = float(np.asarray(foot.stored_bytes).reshape(-1)[0])
    monthly = stored / 1e9 * inputs.storage.storage_usd_per_gb_month
    if not math.isfinite(weighted):  # pragma: no cover - guards against profile mistakes
        raise ValueError("cost model produced a non-finite time")
    return LayoutCost(per_op, weighted, objects, stored, monthly, usd)


def weighted_seconds(grid: Grid, ops: Sequence[Operation], inputs: CostInputs) -> Array:
    """Workload time (sum of weight x seconds) for every layout of ``grid``."""
    terms = _Terms(grid, inputs)
    total: Array = np.zeros(grid.shape)
    for op in ops:
        total = total + op.weight * _op_cost(op, terms).seconds
    return total
