"""Learn a workload from observed accesses: what each read spans, typical extents, weights.

Pure: the input is the boxes a traced program read and wrote (per dim ``(start, stop)``,
element indices), the output a workload spec that ``advise`` accepts, and a chunk-access
count projected onto two dims for a heatmap. No I/O and no zarr here; the tracing store
that records the boxes lives in :mod:`chunkwise.tracing.trace`.

Classifying one read (dims of length 1 are ignored: they are both "one element" and
"the whole dim"). A dim is *spanned* when the read covers at least ``span_fraction`` of
it, *thin* when the read takes one element of it:

=========================================  ====================================
the read                                   op
=========================================  ====================================
a coordinate selection of N points         ``point`` (count N)
spans every dim                            ``scan``
one element of every dim                   ``point`` (count 1)
spans one dim, thin on all others          ``series`` along the spanned dim
spans 2+ dims, thin on all others          ``plane`` across the spanned dims
anything else                              ``region``
=========================================  ====================================

Reads made by one Dask computation (xarray's ``.load()``, ``.values``) are first joined
into the box they tile, if they tile one (:func:`merge_batches`): Dask reads a selection
chunk by chunk, and the workload is the selection. Reads of the same kind and dims form
one operation; regions group by which dims are thin, partial or spanned, and take the
median extent per dim of their group (the lower median, so it is an extent that was
really read). A whole-array write becomes ``write`` and a write spanning all dims but
one becomes ``append`` along that dim (size: the median extent); other partial writes
are not modelled and are counted in :attr:`InferredWorkload.unmodelled_writes`.
**Weights are the fraction of the modelled operations** (reads and modelled writes,
each counted once, whatever its size), so they sum to 1.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median_low
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from chunkwise.errors import SpecError
from chunkwise.units import format_shape

__all__ = [
    "Access",
    "ChunkHeatmap",
    "InferredOp",
    "InferredWorkload",
    "ReadClass",
    "chunk_heatmap",
    "classify_read",
    "infer_workload",
    "merge_batches",
]

InferredKind = Literal["plane", "series", "region", "scan", "point", "append", "write"]
_KIND_ORDER: tuple[InferredKind, ...] = (
    "plane", "series", "region", "scan", "point", "append", "write",
)  # fmt: skip

Box = tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Access:
    """One observed selection of an array.

    Parameters
    ----------
    box
        Per dim ``(start, stop)``, element indices (stop exclusive): the selection, or the
        bounding box of a coordinate selection.
    points
        For a coordinate (point-wise) selection, the number of points; 0 for a box.
    batch
        The Dask computation it was part of (0: none). A computation splits one user
        selection into chunk-sized pieces; :func:`merge_batches` joins them again.
    """

    box: Box
    points: int = 0
    batch: int = 0


@dataclass(frozen=True, slots=True)
class ReadClass:
    """What one read was.

    Parameters
    ----------
    kind
        ``plane``, ``series``, ``region``, ``scan`` or ``point``.
    axes
        The plane's axes, the series' axis; empty otherwise.
    extent
        Elements read along each dim (clipped to the array).
    count
        Points of a ``point`` read; 1 otherwise.
    """

    kind: InferredKind
    axes: tuple[int, ...]
    extent: tuple[int, ...]
    count: int = 1


@dataclass(frozen=True, slots=True)
class InferredOp:
    """One operation of an inferred workload.

    Parameters
    ----------
    kind
        The workload op.
    weight
        Fraction of the modelled operations that were this one (0-1).
    observed
        How many observed reads (or writes) it stands for.
    dims
        Plane dims, series or append dim; empty otherwise.
    extent
        Typical (median) elements per dim of one operation.
    count
        Points per ``point`` read, slabs per ``append``; 1 otherwise.
    """

    kind: InferredKind
    weight: float
    observed: int
    dims: tuple[str, ...]
    extent: tuple[int, ...]
    count: int = 1

    def to_spec(self, dims: Sequence[str]) -> dict[str, Any]:
        """The spec entry ``advise`` reads, e.g. ``{op: plane, dims: [y, x], weight: 0.8}``."""
        entry: dict[str, Any] = {"op": self.kind}
        if self.kind == "plane":
            entry["dims"] = list(self.dims)
        elif self.kind in ("series", "append"):
            entry["dim"] = self.dims[0]
        elif self.kind == "region":
            entry["extent"] = {d: e for d, e in zip(dims, self.extent, strict=True)}
        if self.kind == "point":
            entry["count"] = self.count
        elif self.kind == "append":
            entry["size"] = self.count
        entry["weight"] = self.weight
        return entry


@dataclass(frozen=True, slots=True)
class InferredWorkload:
    """A workload learnt from a trace, for one array.

    Parameters
    ----------
    shape, dtype, dims
        The array.
    ops
        Operations, heaviest first; weights sum to 1.
    reads
        Reads observed (empty selections excluded; a Dask computation's pieces joined).
    writes
        Writes modelled (as ``write`` or ``append``).
    unmodelled_writes
        Partial writes no workload op describes (neither whole-array nor a slab).
    """

    shape: tuple[int, ...]
    dtype: str
    dims: tuple[str, ...]
    ops: tuple[InferredOp, ...]
    reads: int
    writes: int = 0
    unmodelled_writes: int = 0

    def to_spec(self) -> dict[str, Any]:
        """``{"array": {...}, "workload": [...]}``: a spec ``advise`` accepts."""
        return {
            "array": {"shape": list(self.shape), "dtype": self.dtype, "dims": list(self.dims)},
            "workload": [op.to_spec(self.dims) for op in self.ops],
        }

    def describe(self) -> list[str]:
        """One line per op: ``85% plane across y, x (170 reads)``."""
        lines = []
        for op in self.ops:
            if op.kind == "plane":
                what = f"planes across {', '.join(op.dims)}"
            elif op.kind == "series":
                what = f"series along {op.dims[0]}"
            elif op.kind == "region":
                what = f"{format_shape(op.extent)} regions"
            elif op.kind == "point":
                what = f"{op.count}-point reads"
            elif op.kind == "append":
                what = f"appends of {op.count} along {op.dims[0]}"
            else:
                what = "full scans" if op.kind == "scan" else "full writes"
            lines.append(f"{op.weight:.0%} {what} ({op.observed} observed)")
        return lines


def _extent(box: Box, shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(
        max(0, min(stop, n) - max(start, 0)) for (start, stop), n in zip(box, shape, strict=True)
    )


def _spanned(extent: int, n: int, span_fraction: float) -> bool:
    return extent >= math.ceil(span_fraction * n)


def classify_read(
    access: Access, shape: Sequence[int], *, span_fraction: float
) -> ReadClass | None:
    """Classify one read (see the module docstring); ``None`` for an empty selection.

    Parameters
    ----------
    access
        The read.
    shape
        The array's shape, elements per dim.
    span_fraction
        Fraction of a dim (0-1] a read must cover to *span* it.
    """
    if len(access.box) != len(shape):
        raise SpecError(
            f"selection {access.box!r} has {len(access.box)} dims but the array has shape "
            f"{tuple(shape)!r}; record one (start, stop) per dim."
        )
    extent = _extent(access.box, shape)
    if any(e == 0 for e in extent):
        return None
    if access.points > 0:
        return ReadClass("point", (), tuple(1 for _ in shape), access.points)
    relevant = [i for i, n in enumerate(shape) if n > 1]
    spanned = tuple(i for i in relevant if _spanned(extent[i], shape[i], span_fraction))
    thin = {i for i in relevant if extent[i] == 1}
    if len(spanned) == len(relevant):
        return ReadClass("scan", (), extent)
    if len(thin) == len(relevant):
        return ReadClass("point", (), extent)
    if set(spanned) | thin == set(relevant):
        return ReadClass("series" if len(spanned) == 1 else "plane", spanned, extent)
    return ReadClass("region", (), extent)


def _partition(intervals: set[tuple[int, int]]) -> bool:
    """Whether the intervals are disjoint and leave no gap between the first and last."""
    ordered = sorted(intervals)
    return all(a[1] == b[0] for a, b in itertools.pairwise(ordered))


def _tiled_box(boxes: Sequence[Box]) -> Box | None:
    """The box that ``boxes`` tile exactly as a grid (a Dask chunking), or ``None``."""
    distinct = set(boxes)
    ndim = len(boxes[0])
    cells = 1
    for axis in range(ndim):
        intervals = {box[axis] for box in distinct}
        if not _partition(intervals):
            return None
        cells *= len(intervals)
    if cells != len(distinct):
        return None
    return tuple(
        (min(b[axis][0] for b in distinct), max(b[axis][1] for b in distinct))
        for axis in range(ndim)
    )


def merge_batches(reads: Sequence[Access]) -> list[Access]:
    """Join the reads of each Dask computation into the one box they tile.

    Parameters
    ----------
    reads
        Reads of one array, in the order they were made.

    Returns
    -------
    list of Access
        Reads outside a computation, coordinate reads, and the reads of computations
        whose boxes do not tile one box (several separate selections), unchanged; each
        other computation as one read of its box, where its first read was. A repeated
        read of the same box within one computation counts once.
    """
    batches: dict[int, list[Access]] = {}
    for access in reads:
        if access.batch and not access.points:
            batches.setdefault(access.batch, []).append(access)
    merged: dict[int, Access | None] = {}
    for batch, members in batches.items():
        box = _tiled_box([m.box for m in members]) if len(members) > 1 else None
        merged[batch] = None if box is None else Access(box, 0, batch)
    out: list[Access] = []
    emitted: set[int] = set()
    for access in reads:
        joined = merged.get(access.batch) if access.batch and not access.points else None
        if joined is None:
            out.append(access)
        elif access.batch not in emitted:
            emitted.add(access.batch)
            out.append(joined)
    return out


def _region_signature(
    extent: tuple[int, ...], shape: Sequence[int], span_fraction: float
) -> tuple[str, ...]:
    return tuple(
        "thin" if e == 1 else "spanned" if _spanned(e, n, span_fraction) else "partial"
        for e, n in zip(extent, shape, strict=True)
    )


def _classify_write(
    access: Access, shape: Sequence[int], span_fraction: float
) -> tuple[InferredKind, tuple[int, ...], tuple[int, ...]] | None:
    extent = _extent(access.box, shape)
    if any(e == 0 for e in extent):
        return None
    partial = [
        i for i, n in enumerate(shape) if n > 1 and not _spanned(extent[i], n, span_fraction)
    ]
    if not partial:
        return "write", (), extent
    if len(partial) == 1:
        return "append", (partial[0],), extent
    return None


def infer_workload(
    reads: Sequence[Access],
    *,
    shape: Sequence[int],
    dtype: str,
    dims: Sequence[str],
    span_fraction: float,
    writes: Sequence[Access] = (),
) -> InferredWorkload:
    """Infer the workload of one array from its observed reads (and writes).

    Parameters
    ----------
    reads
        The reads of the array, in any order.
    shape
        The array's shape, elements per dim.
    dtype
        Its NumPy data type name.
    dims
        Its dimension names.
    span_fraction
        Fraction of a dim (0-1] a read must cover to *span* it (a plane or series cropped
        by a few percent still counts).
    writes
        The writes of the array.

    Returns
    -------
    InferredWorkload
        Ops with weights = fraction of modelled operations, heaviest first.

    Raises
    ------
    chunkwise.errors.SpecError
        When no read or write could be modelled (nothing to infer from).
    """
    if not 0 < span_fraction <= 1:
        raise SpecError(f"span_fraction {span_fraction!r} must be in (0, 1], e.g. 0.9.")
    if len(dims) != len(shape):
        raise SpecError(
            f"dims {list(dims)!r} must name each of the {len(shape)} dims of the array."
        )
    groups: dict[tuple[object, ...], list[ReadClass]] = {}
    for access in merge_batches(reads):
        read = classify_read(access, shape, span_fraction=span_fraction)
        if read is None:
            continue
        key: tuple[object, ...]
        if read.kind == "region":
            key = ("region", _region_signature(read.extent, shape, span_fraction))
        else:
            key = (read.kind, read.axes)
        groups.setdefault(key, []).append(read)
    unmodelled = 0
    for access in writes:
        write = _classify_write(access, shape, span_fraction)
        if write is None:
            unmodelled += int(all(e > 0 for e in _extent(access.box, shape)))
            continue
        kind, axes, extent = write
        count = extent[axes[0]] if axes else 1
        groups.setdefault((kind, axes), []).append(ReadClass(kind, axes, extent, count))
    total = sum(len(members) for members in groups.values())
    if total == 0:
        raise SpecError(
            f"no reads or whole-array/slab writes of the {tuple(shape)!r} array were recorded, "
            "so there is no workload to infer; trace a program that reads it."
        )
    ops = []
    for members in groups.values():
        first = members[0]
        extent = tuple(median_low(m.extent[i] for m in members) for i in range(len(shape)))
        ops.append(
            InferredOp(
                kind=first.kind,
                weight=len(members) / total,
                observed=len(members),
                dims=tuple(dims[i] for i in first.axes),
                extent=extent,
                count=median_low(m.count for m in members),
            )
        )
    ops.sort(key=lambda op: (-op.observed, _KIND_ORDER.index(op.kind), op.dims, op.extent))
    n_writes = sum(len(m) for k, m in groups.items() if k[0] in ("append", "write"))
    return InferredWorkload(
        shape=tuple(shape),
        dtype=dtype,
        dims=tuple(dims),
        ops=tuple(ops),
        reads=total - n_writes,
        writes=n_writes,
        unmodelled_writes=unmodelled,
    )


@dataclass(frozen=True, slots=True)
class ChunkHeatmap:
    """How often each chunk was read, summed over all but two dims.

    Parameters
    ----------
    axes
        The two array axes shown (rows, columns); one axis for a 1-D array.
    counts
        Reads per chunk, shape ``(chunks along axes[0], chunks along axes[1])`` (``(1, n)``
        for a 1-D array); each read adds the number of its chunks along the other dims.
    chunk_reads
        Chunk reads in total (the sum of ``counts``).
    """

    axes: tuple[int, ...]
    counts: npt.NDArray[np.int64]
    chunk_reads: int


def _chunk_ranges(
    boxes: Sequence[Box], shape: Sequence[int], chunks: Sequence[int]
) -> npt.NDArray[np.int64]:
    """Per box and dim, the chunk index range ``[lo, hi)``: shape (boxes, dims, 2)."""
    arr = np.asarray(boxes, dtype=np.int64).reshape(len(boxes), len(shape), 2)
    size = np.asarray(shape, dtype=np.int64)
    chunk = np.asarray(chunks, dtype=np.int64)
    start = np.clip(arr[:, :, 0], 0, size)
    stop = np.clip(arr[:, :, 1], 0, size)
    lo = start // chunk
    hi = np.where(stop > start, -(-stop // chunk), lo)
    return np.stack([lo, hi], axis=2)


def chunk_heatmap(
    accesses: Sequence[Access], *, shape: Sequence[int], chunks: Sequence[int]
) -> ChunkHeatmap:
    """Count chunk reads and project them onto the two most varied dims.

    Parameters
    ----------
    accesses
        The reads (a coordinate selection counts the chunks of its bounding box).
    shape
        The array's shape, elements per dim.
    chunks
        The chunk shape reads are served in (inner chunks of a sharded array).

    Returns
    -------
    ChunkHeatmap
        The two axes with the most distinct chunk indices read (ties: the axis whose
        chunk indices are read most unevenly, as a dim every read spans whole shows
        nothing; then the later axis), and per pair of their chunk indices the number
        of chunk reads, summed over the other dims.
    """
    ndim = len(shape)
    if ndim == 0 or len(chunks) != ndim:
        raise SpecError(
            f"a chunk heatmap needs a chunk size per dim of the {tuple(shape)!r} array; "
            f"got chunks {tuple(chunks)!r}."
        )
    grid = [-(-n // c) for n, c in zip(shape, chunks, strict=True)]
    boxes = [a.box for a in accesses if len(a.box) == ndim]
    ranges = (
        _chunk_ranges(boxes, shape, chunks) if boxes else np.zeros((0, ndim, 2), dtype=np.int64)
    )
    ranges = ranges[np.all(ranges[:, :, 1] > ranges[:, :, 0], axis=1)]
    distinct, spread = [], []
    for axis in range(ndim):
        # How many reads cover each chunk index along this axis.
        covering = np.zeros(grid[axis] + 1, dtype=np.int64)
        np.add.at(covering, ranges[:, axis, 0], 1)
        np.add.at(covering, ranges[:, axis, 1], -1)
        per_index = np.cumsum(covering)[:-1]
        distinct.append(int(np.count_nonzero(per_index)))
        mean = float(per_index.mean()) if per_index.size else 0.0
        spread.append(float(per_index.std()) / mean if mean else 0.0)
    order = sorted(range(ndim), key=lambda a: (distinct[a], spread[a], a), reverse=True)
    axes = tuple(sorted(order[:2]))
    widths = ranges[:, :, 1] - ranges[:, :, 0]
    if ndim == 1:
        rows_lo = np.zeros(len(ranges), dtype=np.int64)
        rows_hi = np.ones(len(ranges), dtype=np.int64)
        n_rows, (col,) = 1, axes
    else:
        row, col = axes
        rows_lo, rows_hi, n_rows = ranges[:, row, 0], ranges[:, row, 1], grid[row]
    others = [a for a in range(ndim) if a not in axes]
    weight = np.prod(widths[:, others], axis=1) if others else np.ones(len(ranges), np.int64)
    cols_lo, cols_hi = ranges[:, col, 0], ranges[:, col, 1]
    diff = np.zeros((n_rows + 1, grid[col] + 1), dtype=np.int64)
    np.add.at(diff, (rows_lo, cols_lo), weight)
    np.add.at(diff, (rows_hi, cols_lo), -weight)
    np.add.at(diff, (rows_lo, cols_hi), -weight)
    np.add.at(diff, (rows_hi, cols_hi), weight)
    counts = np.cumsum(np.cumsum(diff, axis=0), axis=1)[:n_rows, : grid[col]]
    return ChunkHeatmap(axes=axes, counts=counts, chunk_reads=int(counts.sum()))
