"""OME-Zarr pyramids in bounded memory: every level is one more array of a conversion.

:func:`pyramid_source` turns an opened source of one image into a source of levels: level
``0`` is the image; level ``k`` is a :class:`LevelReader` that reads the target's level
``k - 1``, already written and verified (a conversion writes its arrays in order), and
downsamples it piece by piece. So every level is planned, written, resumed and read back
like any array; the memory a level's reads need besides their result (the pieces of the
level below and the downsampling's scratch) is charged to its tasks
(``read_working_bytes``).

After the levels are written, :func:`finish_pyramid` checks a sample of every further
level's blocks against an independent recomputation from the stored level below
(:func:`chunkwise.rechunking.downsample.recompute`), then writes the ``multiscales``
metadata through ome-zarr-models and validates it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from chunkwise.errors import SpecError
from chunkwise.io.ome import require_ome_models, write_image_metadata
from chunkwise.io.sources.readers import Source, SourceArray, SourceGroup
from chunkwise.model.ome import read_ome
from chunkwise.plan.pyramid import (
    Pyramid,
    PyramidRequest,
    default_axes,
    plan_pyramid,
    source_geometry,
)
from chunkwise.plan.rechunk import READ_CONCURRENCY, batch_shape
from chunkwise.rechunking.downsample import (
    downsample,
    recompute,
    same_values,
    window_magnitude,
)
from chunkwise.rechunking.executor import VerificationError, format_box, parts

__all__ = [
    "LevelReader",
    "finish_pyramid",
    "pyramid_source",
]

#: Input bytes one piece of a level read covers (at least one chunk of the level below):
#: a level's reads hold one piece at a time, so this bounds their working memory.
PIECE_BYTES = 2 * 2**20
#: Chunks of the level below one piece covers, at most: zarr keeps about 2.5 KB of
#: bookkeeping per chunk of a call (as the executor's batches, 1,024 chunks).
PIECE_CHUNKS = 1024
#: Blocks of every further level checked against an independent recomputation, besides
#: its first and last blocks (the last holds the short windows of odd sizes).
SAMPLED_BLOCKS = 14
#: Largest block checked, elements.
SAMPLE_ELEMENTS = 32**3


@dataclass(frozen=True)
class LevelReader:
    """Reads boxes of a pyramid level by downsampling the level below it in the target.

    Attributes
    ----------
    shape, dtype
        The level.
    below
        Path of the level below in the target store.
    factors
        How much each axis shrinks from the level below.
    method
        ``"mean"``, ``"nearest"`` or ``"mode"``.
    below_chunks
        Chunks (inner chunks) of the level below: pieces are whole ones.
    piece_bytes
        Input bytes of one piece, at most (at least one chunk of the level below).
    store
        The target store, bound when the run starts (:meth:`with_target`).
    """

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    below: str
    factors: tuple[int, ...]
    method: str
    below_chunks: tuple[int, ...]
    piece_bytes: int
    store: Any = None
    _opened: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def ndim(self) -> int:
        """Number of dims."""
        return len(self.shape)

    def with_target(self, store: Any) -> LevelReader:
        """This reader, reading from ``store``."""
        return replace(self, store=store)

    def zarr_array(self) -> Any:
        """The level below, opened read-only (named in errors about unreadable chunks)."""
        import zarr

        if self.store is None:
            raise RuntimeError("a level reader reads the target: bind it with with_target()")
        if "below" not in self._opened:  # once per reader (and worker): one metadata read
            self._opened["below"] = zarr.open_array(self.store, path=self.below, mode="r")
        return self._opened["below"]

    def piece(self, box: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one piece of a read of ``box``, in this level's elements: whole chunks
        of the level below, up to :attr:`piece_bytes` of them."""
        return batch_shape(box, self._unit(), self._count())

    def _unit(self) -> tuple[int, ...]:
        """One chunk of the level below, in this level's elements."""
        return tuple(-(-c // f) for c, f in zip(self.below_chunks, self.factors, strict=True))

    def _count(self) -> int:
        """Chunks of the level below in a piece."""
        one = math.prod(self.below_chunks) * self.dtype.itemsize
        return max(1, min(PIECE_CHUNKS, self.piece_bytes // max(1, one)))

    def __getitem__(self, index: Any) -> np.ndarray[Any, Any]:
        box = tuple(
            slice(*s.indices(n)) for s, n in zip(_as_box(index, self.ndim), self.shape, strict=True)
        )
        below = self.zarr_array()
        out = np.empty(tuple(s.stop - s.start for s in box), dtype=self.dtype)
        for sub, inner in parts(box, self.piece(out.shape)):
            source = tuple(
                slice(s.start * f, min(s.stop * f, n))
                for s, f, n in zip(sub, self.factors, below.shape, strict=True)
            )
            out[inner] = downsample(np.asarray(below[source]), self.factors, self.method)
        return out


def _as_box(index: Any, ndim: int) -> tuple[slice, ...]:
    box = index if isinstance(index, tuple) else (index,)
    if len(box) != ndim or not all(isinstance(s, slice) and s.step in (None, 1) for s in box):
        raise TypeError(f"a level reader reads boxes of {ndim} slices, not {index!r}")
    return box


def working_bytes(reader: LevelReader) -> int:
    """Bytes one read of ``reader`` holds besides its result, at most: the largest piece of
    the level below as read (its values; the chunks in flight, up to zarr's concurrency,
    two copies each; zarr's bookkeeping per chunk), and the downsampling's scratch for it
    (float64 sums and counts for ``mean``; every window's values, masks and counts for
    ``mode``). A piece need not start on a chunk of the level below, so it may touch up
    to twice as many chunks along every axis."""
    one = math.prod(reader.below_chunks) * reader.dtype.itemsize
    piece = batch_shape(reader.shape, reader._unit(), reader._count())
    out = math.prod(piece)
    below = tuple(n * f for n, f in zip(reader.shape, reader.factors, strict=True))
    spans = zip(piece, reader.factors, reader.below_chunks, below, strict=True)
    chunks = math.prod(min(-(-n // c), 1 + -(-(p * f) // c)) for p, f, c, n in spans)
    piece_in = out * math.prod(reader.factors) * reader.dtype.itemsize
    in_flight = min(READ_CONCURRENCY, chunks) * 2 * one
    reading = piece_in + in_flight + 2560 * chunks
    width = math.prod(reader.factors)  # values per window
    scratch = (
        width * out * (reader.dtype.itemsize + 1) + 48 * out
        if reader.method == "mode"
        else 24 * out
        if reader.method == "mean"
        else out * reader.dtype.itemsize
    )
    return reading + scratch


def _image_array(source: Source) -> tuple[SourceArray, Mapping[str, Any]]:
    """The one image of ``source``: its only array, or level 0 of an OME-Zarr image (named
    by its axes when its array has no dim names: NGFF 0.4 on Zarr v2), with the
    attributes its axes and voxel size come from."""
    if not source.is_group and len(source.arrays) == 1:
        return source.arrays[0], source.arrays[0].attributes
    root = next((g for g in source.groups if g.path == ""), None)
    image = read_ome(root.attributes) if root is not None else None
    if image is not None and image.datasets:
        first = image.datasets[0].path
        for array in source.arrays:
            if array.path == first:
                if array.dims is None and len(image.axes) == len(array.shape):
                    array = replace(array, dims=image.axis_names)
                return array, root.attributes if root is not None else {}
    if len(source.arrays) == 1:
        return source.arrays[0], source.arrays[0].attributes
    names = ", ".join(a.path for a in source.arrays[:4])
    raise SpecError(
        f"--ome-zarr makes a pyramid of one image, and {source.url!r} holds "
        f"{len(source.arrays)} arrays ({names}{', ...' if len(source.arrays) > 4 else ''}); "
        "pick one with SOURCE#path."
    )


def pyramid_source(
    source: Source,
    request: PyramidRequest,
    *,
    chunks: Sequence[int] | None,
    max_mem: int,
) -> tuple[Source, Pyramid]:
    """The levels of ``source``'s image as a source of arrays ``"0"``, ``"1"``, ...
    (see the module docstring), and the planned pyramid.

    Raises
    ------
    SpecError
        For a source of several arrays, axes OME-Zarr does not allow, or a request that
        does not fit the image (see :func:`~chunkwise.plan.pyramid.plan_pyramid`).
    MissingDependencyError
        When ome-zarr-models is not installed.
    """
    require_ome_models()
    array, attributes = _image_array(source)
    named = array.dims is not None and not all(
        d == f"dim_{i}" for i, d in enumerate(array.dims)
    )  # NumPy and Dask arrays come as dim_0, dim_1, ...: not names
    dims = array.dims if named and array.dims is not None else default_axes(len(array.shape))
    units, voxel, origin = source_geometry(attributes, dims)
    image = read_ome(attributes)
    if request.method is None and image is not None and image.blends_nothing:
        # a label image, or levels made by mode or nearest: keep its way, never average
        kept = image.method if image.method in ("mode", "nearest") else "mode"
        request = replace(request, method=kept)  # type: ignore[arg-type]
    pyramid = plan_pyramid(
        array.shape, dims, request, dtype=array.dtype, chunks=chunks,
        found_units=units, found_voxel=voxel, found_origin=origin,
    )  # fmt: skip
    level0 = replace(array, path="0", dims=dims, attributes=_level_attributes(array))
    levels = [level0]
    piece = max(2**16, min(PIECE_BYTES, max_mem // 32))
    for k in range(1, pyramid.levels):
        shape, factors = pyramid.shapes[k], pyramid.factors[k - 1]
        reader = LevelReader(
            shape, array.dtype, str(k - 1), factors, pyramid.method, array.chunks, piece
        )
        level = SourceArray(
            str(k), reader, shape, array.dtype, shape, dims, {}, array.fill_value, flexible=True
        )
        levels.append(level)
    # until the layouts are decided, every level is read in the chunks given or the source's
    levels = relink_levels(levels, [chunks or array.chunks] * len(levels))
    described = (
        f"{source.description}, as an OME-Zarr pyramid of {pyramid.levels} "
        f"level{'s' * (pyramid.levels != 1)}"
    )
    as_levels = replace(
        source, arrays=tuple(levels), groups=(SourceGroup("", {}),), is_group=True,
        description=described, levels=tuple(a.path for a in levels),
    )  # fmt: skip
    return as_levels, pyramid


def _level_attributes(array: SourceArray) -> dict[str, Any]:
    """Level 0 keeps the source array's own attributes, but not an OME image's group
    metadata (which the pyramid writes anew)."""
    return {k: v for k, v in array.attributes.items() if k not in ("multiscales", "ome")}


def bind_levels(data: Any, store: Any) -> Any:
    """``data`` reading from the target ``store`` when it is a :class:`LevelReader`."""
    return data.with_target(store) if isinstance(data, LevelReader) else data


def _sample_boxes(
    shape: tuple[int, ...], block: tuple[int, ...], seed: str, every: bool = False
) -> list[tuple[slice, ...]]:
    """The first and last blocks of a grid of ``block`` over ``shape`` and
    :data:`SAMPLED_BLOCKS` others drawn with ``seed``; or, with ``every``, all of them."""
    grid = [-(-n // b) for n, b in zip(shape, block, strict=True)]
    total = math.prod(grid)
    rng = np.random.default_rng(int(hashlib.sha256(seed.encode()).hexdigest()[:12], 16))
    picks = set(range(total)) if every else {0, total - 1}
    picks.update(int(i) for i in rng.integers(0, total, size=min(SAMPLED_BLOCKS, total)))
    boxes = []
    for flat in sorted(picks):
        corner = np.unravel_index(flat, grid)
        boxes.append(
            tuple(
                slice(int(c) * b, min((int(c) + 1) * b, n))
                for c, b, n in zip(corner, block, shape, strict=True)
            )
        )
    return boxes


def _sample_block(shape: tuple[int, ...], chunks: tuple[int, ...]) -> tuple[int, ...]:
    """A checked block: the level's chunk, halved along its longest axes until it has at
    most :data:`SAMPLE_ELEMENTS` elements."""
    block = [min(c, n) for c, n in zip(chunks, shape, strict=True)]
    while math.prod(block) > SAMPLE_ELEMENTS:
        axis = int(np.argmax(block))
        block[axis] = -(-block[axis] // 2)
    return tuple(block)


def check_levels(store: Any, pyramid: Pyramid, seed: str, *, every: bool = False) -> int:
    """Compare sampled blocks (``every``: all blocks) of every level after the first with
    an independent recomputation from the stored level below; returns the blocks checked.

    Raises
    ------
    VerificationError
        Naming the level and box that differ.
    """
    import zarr

    checked = 0
    for k in range(1, pyramid.levels):
        level = zarr.open_array(store, path=str(k), mode="r")
        below = zarr.open_array(store, path=str(k - 1), mode="r")
        factors = pyramid.factors[k - 1]
        block = _sample_block(level.shape, tuple(level.chunks))
        for box in _sample_boxes(level.shape, block, f"{seed}/{k}", every):
            source = tuple(
                slice(s.start * f, min(s.stop * f, n))
                for s, f, n in zip(box, factors, below.shape, strict=True)
            )
            values = np.asarray(below[source])
            want = recompute(values, factors, pyramid.method)
            got = np.asarray(level[box])
            magnitude = window_magnitude(values, factors) if values.dtype.kind == "f" else 0.0
            agree = same_values(want, got, pyramid.method, magnitude)
            if not agree.all():
                where = tuple(int(i[0]) for i in np.nonzero(~agree))
                raise VerificationError(
                    f"level {k} of the pyramid differs from an independent recomputation "
                    f"from level {k - 1} in box {format_box(box)} (first at offset {where}: "
                    f"stored {got[where]!r}, recomputed {want[where]!r}); the target is not "
                    "verified: remove it and run again, and please report this."
                )
            checked += 1
    return checked


def finish_pyramid(
    store: Any, pyramid: Pyramid, *, check: bool, every: bool = False, seed: str
) -> int:
    """Check the levels (when ``check``; ``every`` block, or a sample), then write and
    validate the OME metadata on the target's root group; returns the blocks checked."""
    import zarr

    checked = check_levels(store, pyramid, seed, every=every) if check else 0
    group = zarr.open_group(store, mode="r+")
    write_image_metadata(group, pyramid, {})
    return checked


def relink_levels(
    arrays: Sequence[SourceArray], chunk_shapes: Sequence[Sequence[int]]
) -> list[SourceArray]:
    """The levels with each reader reading the level below in the chunks that level will
    have (``chunk_shapes``, in the order of ``arrays``; clipped to each level), and
    charged the memory that takes."""
    chunks = {a.path: tuple(c) for a, c in zip(arrays, chunk_shapes, strict=True)}
    out = []
    for array in arrays:
        reader = array.data
        if isinstance(reader, LevelReader):
            below = tuple(
                min(c, n)
                for c, n in zip(chunks[reader.below], _shape_of(arrays, reader.below), strict=True)
            )
            reader = replace(reader, below_chunks=below)
            array = replace(
                array, data=reader,
                chunks=tuple(-(-c // f) for c, f in zip(below, reader.factors, strict=True)),
                read_working_bytes=working_bytes(reader),
            )  # fmt: skip
        out.append(array)
    return out


def _shape_of(arrays: Sequence[SourceArray], path: str) -> tuple[int, ...]:
    return next(a.shape for a in arrays if a.path == path)


def check_bytes(pyramid: Pyramid, chunks: Sequence[tuple[int, ...]], itemsize: int) -> int:
    """Bytes :func:`check_levels` holds at most, for levels of these (inner) ``chunks``:
    reading one sampled block of a level and its windows in the level below (the chunks
    in flight, two copies each, and the values), and recomputing it (float64 copies of
    the windows, the window sums or sorted windows, the comparison)."""
    worst = 0
    for k in range(1, pyramid.levels):
        shape, below_shape = pyramid.shapes[k], pyramid.shapes[k - 1]
        factors, own, below = pyramid.factors[k - 1], chunks[k], chunks[k - 1]
        block = _sample_block(shape, own)
        n_out = math.prod(block)
        n_in = n_out * math.prod(factors)
        touched_below = math.prod(
            min(-(-n // c), 1 + -(-(b * f) // c))
            for n, c, b, f in zip(below_shape, below, block, factors, strict=True)
        )
        touched_own = math.prod(
            min(-(-n // c), 1 + -(-b // c)) for n, c, b in zip(shape, own, block, strict=True)
        )
        reading = (
            (n_in + n_out) * itemsize
            + min(READ_CONCURRENCY, touched_below) * 2 * math.prod(below) * itemsize
            + min(READ_CONCURRENCY, touched_own) * 2 * math.prod(own) * itemsize
        )
        worst = max(worst, reading + 4 * 8 * n_in + 64 * n_out)
    return worst
