"""Constraints on the layouts the search may recommend.

Constraints are data. Each one is checked as a mask over candidate layouts; when the
search finishes it reports which constraints *bound* the answer (dropping them would
have allowed a faster layout), and when nothing is feasible it names the constraint
that excludes everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from chunkwise.errors import ConstraintError, SpecError, shown
from chunkwise.model.array import ArraySpec
from chunkwise.units import format_bytes, parse_bytes, parse_count

__all__ = ["BLOSC_MAX_BYTES", "ByteRange", "Constraints"]

# Blosc cannot compress a buffer larger than 2 GiB minus its overhead (rechunker#75).
BLOSC_MAX_BYTES = 2**31 - 32
#: Most Dask chunks along one dim that ``align_with`` takes: every boundary is kept, and a
#: Dask graph of this many chunks is slow to build already.
MAX_DASK_CHUNKS = 100_000


@dataclass(frozen=True, slots=True)
class ByteRange:
    """An inclusive range of raw (uncompressed) bytes; ``None`` ends are open."""

    min_bytes: int | None = None
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if (
            self.min_bytes is not None
            and self.max_bytes is not None
            and self.min_bytes > self.max_bytes
        ):
            raise SpecError(
                f"byte range min {format_bytes(self.min_bytes)} exceeds max {format_bytes(self.max_bytes)}; "
                "swap them or widen the range."
            )

    @classmethod
    def parse(cls, value: object, what: str) -> ByteRange:
        """``{min: 1MiB, max: 64MiB}`` or ``[1MiB, 64MiB]`` or a single max."""
        if value is None:
            return cls()
        if isinstance(value, Mapping):
            extra = set(value) - {"min", "max"}
            if extra:
                raise SpecError(f"{what} {shown(dict(value))} takes only 'min' and 'max'.")
            low, high = value.get("min"), value.get("max")
        elif isinstance(value, list | tuple) and len(value) == 2:
            low, high = value
        else:
            low, high = None, value
        return cls(
            None if low is None else parse_bytes(low, what=f"{what} min"),
            None if high is None else parse_bytes(high, what=f"{what} max"),
        )

    def contains(self, n_bytes: int) -> bool:
        """Whether ``n_bytes`` lies in the range."""
        return (self.min_bytes is None or n_bytes >= self.min_bytes) and (
            self.max_bytes is None or n_bytes <= self.max_bytes
        )

    def describe(self) -> str:
        """``'1 MiB..64 MiB'``."""
        low = format_bytes(self.min_bytes) if self.min_bytes is not None else "0"
        high = format_bytes(self.max_bytes) if self.max_bytes is not None else "∞"
        return f"{low}..{high}"

    def to_dict(self) -> dict[str, int | None]:
        """JSON form."""
        return {"min": self.min_bytes, "max": self.max_bytes}


@dataclass(frozen=True, slots=True)
class Constraints:
    """What a recommended layout must satisfy.

    Parameters
    ----------
    zarr_format
        Required format (2 for viewers that cannot read v3, which also rules out
        shards); ``None`` lets the search use format 3.
    max_objects
        Upper bound on data objects (files or keys).
    chunk_bytes
        Raw bytes of one chunk (inner chunk when sharded).
    shard_bytes
        Raw bytes of one shard.
    object_bytes
        Raw bytes of one stored object (shard, or chunk when unsharded); ``None`` takes
        the storage profile's efficient range.
    memory_bytes
        Memory one task may use: a chunk or shard is held whole, raw and encoded, when written.
    align
        Per axis, existing Dask chunk boundaries the write unit must align with, so
        parallel writers never share an object.
    fixed_chunks
        Per axis, a chunk size the user has fixed.
    allow_shards
        ``False`` to rule out sharding.
    checksum
        ``True`` to protect every chunk with a crc32c checksum: every candidate codec
        carries ``+crc32c``, which needs zarr format 3.

    Raises
    ------
    ConstraintError
        When ``checksum`` is asked for together with ``zarr_format`` 2.
    """

    zarr_format: int | None = None
    max_objects: int | None = None
    chunk_bytes: ByteRange = field(default_factory=ByteRange)
    shard_bytes: ByteRange = field(default_factory=ByteRange)
    object_bytes: ByteRange | None = None
    memory_bytes: int | None = None
    align: tuple[tuple[int, tuple[int, ...]], ...] = ()
    fixed_chunks: tuple[tuple[int, int], ...] = ()
    allow_shards: bool = True
    checksum: bool = False

    def __post_init__(self) -> None:
        if self.checksum and self.zarr_format == 2:
            raise ConstraintError(
                "constraint checksum: true needs zarr format 3 but zarr_format is 2 (zarr format 2 "
                "has no crc32c codec); drop zarr_format: 2 (--zarr-format 2) or the checksum."
            )

    @property
    def shards_allowed(self) -> bool:
        """Whether sharded layouts may be recommended."""
        return self.allow_shards and self.zarr_format != 2

    @classmethod
    def from_spec(cls, raw: Mapping[str, Any] | None, array: ArraySpec) -> Constraints:
        """Parse the ``constraints:`` mapping of a spec file."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise SpecError(
                f"constraints {shown(raw)} must be a mapping like {{zarr_format: 2, max_objects: 2000}}."
            )
        known = {
            "zarr_format", "max_objects", "chunk_bytes", "shard_bytes", "object_bytes",
            "memory", "memory_per_task", "align_with", "dask_chunks", "fixed", "fixed_chunks",
            "shards", "checksum",
        }  # fmt: skip
        extra = sorted(set(raw) - known, key=str)
        if extra:
            raise SpecError(
                f"unknown constraint(s) {', '.join(map(repr, extra))}; known constraints are "
                f"{', '.join(sorted(known))}."
            )
        fmt = raw.get("zarr_format")
        if fmt is not None and (
            not isinstance(fmt, int) or isinstance(fmt, bool) or fmt not in (2, 3)
        ):
            raise SpecError(f"constraint zarr_format {shown(fmt)} must be 2 or 3.")
        max_objects = raw.get("max_objects")
        if max_objects is not None:
            max_objects = parse_count(max_objects, what="constraint max_objects")
        memory_raw = raw.get("memory_per_task", raw.get("memory"))
        memory = (
            None
            if memory_raw is None
            else parse_bytes(memory_raw, what="constraint memory_per_task")
        )
        align_raw = raw.get("align_with", raw.get("dask_chunks")) or {}
        fixed_raw = raw.get("fixed_chunks", raw.get("fixed")) or {}
        shards = raw.get("shards", True)
        if not isinstance(shards, bool):
            raise SpecError(f"constraint shards {shown(shards)} must be true or false.")
        checksum = raw.get("checksum", False)
        if not isinstance(checksum, bool):
            raise SpecError(f"constraint checksum {shown(checksum)} must be true or false.")
        return cls(
            zarr_format=fmt,
            max_objects=max_objects,
            chunk_bytes=ByteRange.parse(raw.get("chunk_bytes"), "constraint chunk_bytes"),
            shard_bytes=ByteRange.parse(raw.get("shard_bytes"), "constraint shard_bytes"),
            object_bytes=(
                None
                if raw.get("object_bytes") is None
                else ByteRange.parse(raw.get("object_bytes"), "constraint object_bytes")
            ),
            memory_bytes=memory,
            align=_parse_align(align_raw, array),
            fixed_chunks=_parse_fixed(fixed_raw, array),
            allow_shards=shards,
            checksum=checksum,
        )

    def to_dict(self, array: ArraySpec) -> dict[str, Any]:
        """JSON form, with dims named."""
        return {
            "zarr_format": self.zarr_format,
            "max_objects": self.max_objects,
            "chunk_bytes": self.chunk_bytes.to_dict(),
            "shard_bytes": self.shard_bytes.to_dict(),
            "object_bytes": None if self.object_bytes is None else self.object_bytes.to_dict(),
            "memory_per_task": self.memory_bytes,
            "align_with": {array.dims[a]: list(b) for a, b in self.align},
            "fixed_chunks": {array.dims[a]: c for a, c in self.fixed_chunks},
            "shards": self.allow_shards,
            "checksum": self.checksum,
        }


def _mapping_of_dims(raw: object, what: str, array: ArraySpec) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise SpecError(
            f"constraint {what} {shown(raw)} must map dimension names to sizes, like {{{array.dims[0]}: 24}}."
        )
    return raw


def _parse_fixed(raw: object, array: ArraySpec) -> tuple[tuple[int, int], ...]:
    out = []
    for dim, size in _mapping_of_dims(raw, "fixed_chunks", array).items():
        axis = array.axis(str(dim))
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise SpecError(f"fixed chunk size {dim}={shown(size)} must be a positive integer.")
        if size > array.shape[axis]:
            raise SpecError(
                f"fixed chunk size {dim}={shown(size)} is larger than the array ({dim} has {array.shape[axis]}); "
                f"use at most {array.shape[axis]}."
            )
        out.append((axis, size))
    return tuple(sorted(out))


def _parse_align(raw: object, array: ArraySpec) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """Dask chunks per dim (an int for regular chunks, or a list of sizes) -> boundaries."""
    out = []
    for dim, value in _mapping_of_dims(raw, "align_with", array).items():
        axis = array.axis(str(dim))
        n = array.shape[axis]
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            _check_dask_chunks(dim, value, -(-n // value))
            sizes = [min(value, n - start) for start in range(0, n, value)]
        elif (
            isinstance(value, list | tuple)
            and value
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
        ):
            _check_dask_chunks(dim, value, len(value))
            sizes = list(value)
        else:
            raise SpecError(
                f"align_with {dim}={shown(value)} must be a Dask chunk size or a list of chunk sizes."
            )
        if sum(sizes) != n:
            raise SpecError(
                f"align_with {dim} chunks sum to {shown(sum(sizes))} but {dim} has {n} elements; "
                "give the Dask chunks of this array."
            )
        bounds = []
        position = 0
        for size in sizes[:-1]:
            position += size
            bounds.append(position)
        out.append((axis, tuple(bounds)))
    return tuple(sorted(out))


def _check_dask_chunks(dim: object, value: object, count: int) -> None:
    if count > MAX_DASK_CHUNKS:
        raise SpecError(
            f"align_with {dim}={shown(value)} makes {count:,} Dask chunks along {dim}; chunkwise "
            f"aligns with at most {MAX_DASK_CHUNKS:,} per dim: give the chunk size of your Dask array."
        )
