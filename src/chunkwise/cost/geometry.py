"""Exact per-dimension access statistics over uniformly random positions.

A box of ``extent`` elements placed at a uniformly random start ``p`` in
``[0, n - extent]`` along one dimension of size ``n``, chunked by ``chunk`` and
grouped into shards of ``shard`` (a multiple of ``chunk``; ``shard == chunk`` when
unsharded), touches some chunks and shards. Everything the cost model needs is an
expectation of a per-position count, and because the access pattern of a box only
depends on ``p mod shard``, each expectation is a sum over one period — exact, and
``O(shard)`` rather than ``O(n)``. Periods longer than a few thousand positions are not
enumerated: within one period every count is a piecewise-linear function of the start
with a handful of pieces (see :func:`_segment_sums`), so their sums are exact in
``O(1)`` whatever the size of the dim, the chunk or the shard.

Across dimensions positions are independent, and the chunks (or shards) a box
touches are the Cartesian product of the per-dimension sets, so expectations of
counts multiply. That is why per-dimension statistics are enough.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import Any

import numpy as np

__all__ = ["DimAccess", "append_access", "dim_access", "expected_chunks_touched"]

#: Periods up to this many start positions are summed position by position (fast in NumPy);
#: longer ones piece by piece (:func:`_segment_sums`), so memory and time stay bounded.
_ENUMERATED_POSITIONS = 4096
#: Beyond this, positions are Python integers: ``start + extent`` or a shard may not fit int64.
_INT64_SAFE = 2**62


@dataclass(frozen=True, slots=True)
class DimAccess:
    """Expected counts along one dimension for a box at a random position.

    Attributes
    ----------
    chunks
        Chunks (inner chunks, when sharded) touched.
    complete_chunks
        Touched chunks that the box covers entirely (no read-modify-write on write).
    shards
        Shards touched (equals ``chunks`` when unsharded).
    total_shards
        Touched shards all of whose inner chunks are touched along this dim; zarr-python
        reads such a shard with one request (when total along every dim).
    chunks_in_total
        Inner chunks that lie in total shards.
    max_per_shard
        The largest number of inner chunks touched in one shard: the length of
        zarr-python's sequential chain of inner-chunk requests.
    elements
        Elements along this dim in the touched chunks, counting a ragged edge chunk at its
        real length. (zarr stores and decodes an edge chunk at the full chunk shape, padded
        with the fill value; compressed, the padding costs next to nothing, so this is what
        a compressed read fetches.)
    max_if_total
        ``max_per_shard`` where every touched shard is total along this dim, else 0: with
        it the model takes the chain of inner-chunk requests only where a shard is partial.
    all_total
        Probability that every touched shard is total along this dim.
    """

    chunks: float
    complete_chunks: float
    shards: float
    total_shards: float
    chunks_in_total: float
    max_per_shard: float
    elements: float
    max_if_total: float
    all_total: float


def _floor_sum(count: int, offset: int, chunk: int) -> int:
    """``sum(floor((q + offset) / chunk) for q in range(count))`` in O(1)."""

    def prefix(m: int) -> int:  # sum of floor(q / chunk) for q in [0, m)
        t, r = divmod(m, chunk)
        return chunk * t * (t - 1) // 2 + r * t

    return prefix(count + offset) - prefix(offset)


def expected_chunks_touched(n: int, extent: int, chunk: int) -> float:
    """Exact expected number of chunks a random box of ``extent`` touches along a dim.

    Parameters
    ----------
    n
        Dimension size, elements.
    extent
        Box size, elements (``1 <= extent <= n``).
    chunk
        Chunk size, elements.

    Returns
    -------
    float
        ``mean over p in [0, n - extent] of (floor((p + extent - 1) / chunk) - floor(p / chunk) + 1)``;
        about ``1 + (extent - 1) / chunk``, and never more than the chunks in the dim.
    """
    _check(n, extent, chunk, chunk)
    positions = n - extent + 1
    total = _floor_sum(positions, extent - 1, chunk) - _floor_sum(positions, 0, chunk) + positions
    return total / positions


def _check(n: int, extent: int, chunk: int, shard: int) -> None:
    if not (1 <= extent <= n):
        raise ValueError(f"extent {extent} must lie in [1, {n}]")
    if chunk < 1 or shard < chunk or shard % chunk:
        raise ValueError(f"shard {shard} must be a positive multiple of chunk {chunk}")


def _per_position(
    starts: np.ndarray[Any, Any],
    extent: int,
    chunk: int,
    shard: int,
    end: int | np.ndarray[Any, Any] | None = None,
) -> np.ndarray[Any, Any]:
    """Counts for boxes starting at ``starts``; rows as in :class:`DimAccess`.

    ``end`` is the array's size: zarr treats an edge chunk covered up to the end of the
    array as complete (no read before writing it). ``starts`` may be an ``int64`` array or,
    for sizes beyond int64, an ``object`` array of Python integers; the result has the same
    kind (exact integers) and one column per start.
    """
    cps = shard // chunk
    last = starts + extent - 1
    first_chunk, last_chunk = starts // chunk, last // chunk
    first_shard, last_shard = starts // shard, last // shard
    n_chunks = last_chunk - first_chunk + 1
    n_shards = last_shard - first_shard + 1
    first_complete = (starts % chunk) == 0
    last_complete = ((last + 1) % chunk) == 0
    if end is not None:
        last_complete = last_complete | (last + 1 == end)
    single = n_chunks == 1
    partial = np.where(
        single,
        (~(first_complete & last_complete)).astype(np.int64),
        (~first_complete).astype(np.int64) + (~last_complete).astype(np.int64),
    )
    complete = n_chunks - partial
    multi = n_shards >= 2
    in_first = np.where(multi, (first_shard + 1) * cps - first_chunk, n_chunks)
    in_last = np.where(multi, last_chunk - last_shard * cps + 1, 0)
    middle = np.maximum(n_shards - 2, 0)
    first_total = in_first == cps
    last_total = multi & (in_last == cps)
    total = first_total.astype(np.int64) + last_total.astype(np.int64) + middle
    in_total = first_total * in_first + last_total * in_last + middle * cps
    max_per = np.maximum(np.maximum(in_first, in_last), np.where(n_shards >= 3, cps, 0))
    elements = n_chunks * chunk  # unclipped: dim_access trims the ragged edge chunk
    all_total = total == n_shards
    max_if_total = max_per * all_total
    return np.stack(
        [n_chunks, complete, n_shards, total, in_total, max_per, elements, max_if_total, all_total]
    )


def _starts(values: list[int], largest: int) -> np.ndarray[Any, Any]:
    """Start positions as an array for :func:`_per_position`: int64 when ``largest``, the
    biggest size or position involved, fits with room to spare; else Python integers."""
    return np.asarray(values, dtype=np.int64 if largest < _INT64_SAFE else object)


def _r_pieces(extent: int, chunk: int, stop: int) -> list[tuple[int, int]]:
    """Ranges of ``r = p mod chunk`` in ``[0, stop)`` over which every count is constant
    (for a fixed chunk index): the chunk the box ends in moves on at one ``r``, and the
    first and last chunk are complete at single values of ``r``."""
    # From r = reaches_on on, the box ends one chunk further; at r = last_complete it ends
    # exactly at a chunk boundary; at r = 0 it starts at one.
    reaches_on = (1 + (extent - 1) // chunk) * chunk - extent + 1
    last_complete = -extent % chunk
    inner = {c for c in (1, last_complete, last_complete + 1, reaches_on) if 0 < c < stop}
    return list(pairwise(sorted({0, stop} | inner)))


def _k_cuts(reach: int, per_shard: int, first: int, stop: int) -> list[int]:
    """Cut points of the chunk index ``k`` in ``[first, stop)`` (``stop - first <= per_shard``)
    between which every count is linear in ``k``, for boxes whose last chunk is ``k + reach``.

    The box's last shard moves on where ``(k + reach) % per_shard == 0``; the last shard is
    read whole only where it is ``per_shard - 1``; the first shard is read whole only at
    ``k == 0``; and the longer of the first and last shard's runs of inner chunks swaps
    where they are equal.
    """
    cuts = {first, stop}

    def add(k: int) -> None:
        if first < k < stop:
            cuts.add(k)

    for residue in (-reach % per_shard, (-reach - 1) % per_shard):
        k = first + (residue - first) % per_shard
        while k < stop:
            add(k)
            add(k + 1)
            k += per_shard
    add(1)
    for last_shard in {(first + reach) // per_shard, (stop - 1 + reach) // per_shard}:
        crossing = (per_shard * (last_shard + 1) - reach - 1) // 2
        add(crossing)
        add(crossing + 1)
    return sorted(cuts)


def _segment_sums(
    extent: int, chunk: int, shard: int, count: int, *, growing: bool = False
) -> list[int]:
    """Exact sums of :func:`_per_position` over starts ``0 .. count - 1`` (``count <= shard``)
    without enumerating them.

    A start is ``p = k * chunk + r``. For ``r`` in one of :func:`_r_pieces` every count
    depends on ``k`` only, linearly between the cuts of :func:`_k_cuts`, so the sum over a
    piece is its length times the mean of its two ends (an integer: the counts are integers
    in arithmetic progression): two evaluations per piece, a few dozen pieces in all.
    ``growing`` treats every box as ending at the array's end (an append).
    """
    per_shard = shard // chunk
    full_rows, rest = divmod(count, chunk)
    points: list[int] = []
    weights: list[tuple[int, int]] = []  # per piece: (starts in the piece, r values)
    for first, stop, r_stop in ((0, full_rows, chunk), (full_rows, full_rows + 1, rest)):
        if stop <= first or r_stop == 0:
            continue
        for r_low, r_high in _r_pieces(extent, chunk, r_stop):
            reach = (r_low + extent - 1) // chunk
            cuts = _k_cuts(reach, per_shard, first, stop)
            for a, b in pairwise(cuts):
                points += [a * chunk + r_low, (b - 1) * chunk + r_low]
                weights.append((b - a, r_high - r_low))
    starts = _starts(points, shard + extent)
    ends = starts + extent if growing else None
    values = _per_position(starts, extent, chunk, shard, ends).tolist()
    sums = []
    for row in values:
        total = 0
        for i, (length, r_values) in enumerate(weights):
            total += (int(row[2 * i]) + int(row[2 * i + 1])) * length // 2 * r_values
        sums.append(total)
    return sums


@lru_cache(maxsize=65536)
def _period_sums(extent: int, chunk: int, shard: int, count: int) -> tuple[float, ...]:
    """Sums of the per-position counts over starts ``0 .. count-1`` (``count <= shard``)."""
    if count > _ENUMERATED_POSITIONS or shard + extent >= _INT64_SAFE:
        return tuple(float(v) for v in _segment_sums(extent, chunk, shard, count))
    counts = _per_position(np.arange(count, dtype=np.int64), extent, chunk, shard)
    return tuple(counts.astype(np.float64).sum(axis=1))


@lru_cache(maxsize=65536)
def dim_access(n: int, extent: int, chunk: int, shard: int | None = None) -> DimAccess:
    """Exact expected access counts along one dim (see :class:`DimAccess`).

    Parameters
    ----------
    n
        Dimension size, elements.
    extent
        Box size, elements, ``1 <= extent <= n``.
    chunk
        Chunk (inner chunk) size, elements.
    shard
        Shard size, elements, a multiple of ``chunk``; ``None`` when unsharded.
    """
    shard = chunk if shard is None else shard
    _check(n, extent, chunk, shard)
    positions = n - extent + 1
    periods, rest = divmod(positions, shard)
    sums = np.zeros(len(DimAccess.__slots__))
    if periods:
        sums += periods * np.asarray(_period_sums(extent, chunk, shard, shard))
    if rest:
        sums += np.asarray(_period_sums(extent, chunk, shard, rest))
    # The last position reaches the array's end, where a ragged edge chunk counts as complete.
    final = _starts([n - extent], max(n, shard) + extent)
    sums += (
        _per_position(final, extent, chunk, shard, n) - _per_position(final, extent, chunk, shard)
    )[:, 0].astype(np.float64)
    # Boxes whose last chunk is the ragged edge chunk fetch it at its real, shorter length.
    edge_start = (n - 1) // chunk * chunk
    pad = edge_start + chunk - n
    if pad:
        reaching = (n - extent) - max(0, edge_start - extent + 1) + 1
        sums[6] -= pad * reaching
    return DimAccess(*(float(v) for v in sums / positions))


@lru_cache(maxsize=65536)
def append_access(size: int, chunk: int, shard: int | None = None) -> DimAccess:
    """Expected counts along the growing dim for an append of ``size`` elements.

    The current length is taken as uniformly distributed relative to the shard grid,
    which is the long-run average over many appends.
    """
    shard = chunk if shard is None else shard
    if size < 1 or chunk < 1 or shard % chunk:
        raise ValueError("append size and chunk must be positive; shard a multiple of chunk")
    if shard > _ENUMERATED_POSITIONS or shard + size >= _INT64_SAFE:
        # An append always reaches the new end of the array, so its last chunk is complete.
        exact = _segment_sums(size, chunk, shard, shard, growing=True)
        # The new last chunk ends at the array's new end: count it at its real length. Its
        # padding, chunk - 1 - (stop - 1) % chunk, takes every value in 0 .. chunk - 1 once
        # per chunk of the period.
        exact[6] -= shard // chunk * (chunk * (chunk - 1) // 2)
        return DimAccess(*(v / shard for v in exact))
    starts = np.arange(shard, dtype=np.int64)
    # An append always reaches the new end of the array, so its last chunk is complete.
    counts = _per_position(starts, size, chunk, shard, end=starts + size)
    sums = counts.astype(np.float64).sum(axis=1)
    # The new last chunk ends at the array's new end: count it at its real length.
    stops = starts + size
    sums[6] -= float(((stops - 1) // chunk * chunk + chunk - stops).sum())
    return DimAccess(*(float(v) for v in sums / shard))
