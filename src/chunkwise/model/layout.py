"""A storage layout: zarr format, chunk grid, shards, codec, chunk key encoding."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from chunkwise.errors import SpecError, shown
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import CodecSpec, v2_checksum_message
from chunkwise.units import MAX_INT64

__all__ = ["SHARD_INDEX_ENTRY_BYTES", "Layout", "ceil_div"]

# Each inner chunk has an (offset, nbytes) pair of uint64 in the shard index, plus a crc32c.
SHARD_INDEX_ENTRY_BYTES = 16
SHARD_INDEX_CHECKSUM_BYTES = 4


def ceil_div(a: int, b: int) -> int:
    """Integer ceiling of ``a / b``."""
    return -(-a // b)


@dataclass(frozen=True, slots=True)
class Layout:
    """How an array is laid out in a Zarr store.

    Parameters
    ----------
    zarr_format
        2 or 3.
    chunks
        Chunk shape (the read granularity; inner chunks when sharded).
    shards
        Shard shape (the object / write granularity), a multiple of ``chunks``; ``None``
        when every chunk is its own object. Zarr format 3 only.
    codec
        The compressor, and whether a crc32c checksum follows it (zarr format 3 only).
    separator
        Chunk key separator: ``"/"`` (v3 default) or ``"."`` (v2 default).
    """

    zarr_format: Literal[2, 3]
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    codec: CodecSpec
    separator: Literal["/", "."]

    @classmethod
    def create(
        cls,
        array: ArraySpec,
        chunks: tuple[int, ...] | list[int],
        *,
        shards: tuple[int, ...] | list[int] | None = None,
        codec: CodecSpec,
        zarr_format: int = 3,
        separator: str | None = None,
    ) -> Layout:
        """Validate a layout against ``array``; every problem raises :class:`SpecError`."""
        if zarr_format not in (2, 3):
            raise SpecError(f"zarr_format {shown(zarr_format)} must be 2 or 3.")
        if codec.checksum and zarr_format == 2:
            raise SpecError(v2_checksum_message(codec))
        chunk_t = _check_shape(chunks, array, "chunks")
        for c, n, d in zip(chunk_t, array.shape, array.dims, strict=True):
            if c > n:
                raise SpecError(
                    f"chunks {list(chunk_t)!r}: {d}={c} is larger than the array ({n}); use at most {n}."
                )
        shard_t: tuple[int, ...] | None = None
        if shards is not None:
            if zarr_format == 2:
                raise SpecError(
                    f"shards {shown(shards)} need zarr_format 3; zarr format 2 has no sharding. "
                    "Drop the shards or use zarr_format: 3."
                )
            shard_t = _check_shape(shards, array, "shards")
            for s, c, n, d in zip(shard_t, chunk_t, array.shape, array.dims, strict=True):
                if s % c:
                    fits = sorted(
                        {m * c for m in (s // c, ceil_div(s, c)) if 1 <= m <= ceil_div(n, c)}
                    )
                    raise SpecError(
                        f"shard {list(shard_t)!r} is not a multiple of chunk {list(chunk_t)!r} along {d} "
                        f"({s} is not divisible by {c}); use a shard of {' or '.join(map(str, fits))}."
                    )
                if s > ceil_div(n, c) * c:
                    raise SpecError(
                        f"shards {list(shard_t)!r}: {d}={s} is larger than the array needs "
                        f"({n} rounded up to the chunk is {ceil_div(n, c) * c})."
                    )
            if shard_t == chunk_t:
                shard_t = None
        sep = separator or ("/" if zarr_format == 3 else ".")
        if sep not in ("/", "."):
            raise SpecError(f"chunk key separator {shown(sep)} must be '/' or '.'.")
        return cls(zarr_format, chunk_t, shard_t, codec, sep)  # type: ignore[arg-type]

    @property
    def write_unit(self) -> tuple[int, ...]:
        """The shape of one stored object: the shard, or the chunk when unsharded."""
        return self.shards if self.shards is not None else self.chunks

    @property
    def chunks_per_shard(self) -> int:
        """Inner chunks per shard (1 when unsharded)."""
        if self.shards is None:
            return 1
        return math.prod(s // c for s, c in zip(self.shards, self.chunks, strict=True))

    def chunk_bytes(self, array: ArraySpec) -> int:
        """Uncompressed bytes of one (inner) chunk."""
        return math.prod(self.chunks) * array.itemsize

    def object_bytes(self, array: ArraySpec) -> int:
        """Uncompressed bytes of one stored object (shard, or chunk when unsharded)."""
        return math.prod(self.write_unit) * array.itemsize

    def data_objects(self, array: ArraySpec) -> int:
        """Number of chunk or shard objects when every one is written."""
        return math.prod(ceil_div(n, u) for n, u in zip(array.shape, self.write_unit, strict=True))

    def metadata_objects(self) -> int:
        """Metadata objects of one array: ``zarr.json`` (v3); ``.zarray`` and ``.zattrs`` (v2,
        as zarr-python 3 writes them)."""
        return 1 if self.zarr_format == 3 else 2

    def to_dict(self, array: ArraySpec) -> dict[str, Any]:
        """The JSON form used in ``advise --json`` (``recommendations[i].layout``)."""
        out: dict[str, Any] = {
            "zarr_format": self.zarr_format,
            "chunks": list(self.chunks),
            "shards": list(self.shards) if self.shards is not None else None,
            "codec": self.codec.short,
        }
        if self.zarr_format == 3:
            inner: list[dict[str, Any]] = [
                {"name": "bytes", "configuration": {"endian": "little"}},
                *self.codec.v3_codecs_json(array.itemsize),
            ]
            if self.shards is None:
                out["codecs"] = inner
            else:
                out["codecs"] = [
                    {
                        "name": "sharding_indexed",
                        "configuration": {
                            "chunk_shape": list(self.chunks),
                            "codecs": inner,
                            "index_codecs": [
                                {"name": "bytes", "configuration": {"endian": "little"}},
                                {"name": "crc32c"},
                            ],
                            "index_location": "end",
                        },
                    }
                ]
            out["chunk_key_encoding"] = {
                "name": "default" if self.separator == "/" else "v2",
                "configuration": {"separator": self.separator},
            }
        else:
            out["compressor"] = self.codec.v2_compressor_json()
            out["filters"] = None
            out["dimension_separator"] = self.separator
        return out

    def label(self) -> str:
        """A compact human label: ``v3 chunks 32x32x32 in shards 256x256x256, blosc:zstd:5:shuffle``."""
        text = f"v{self.zarr_format} chunks {'x'.join(map(str, self.chunks))}"
        if self.shards is not None:
            text += f" in shards {'x'.join(map(str, self.shards))}"
        return f"{text}, {self.codec.short}"


def _check_shape(value: object, array: ArraySpec, what: str) -> tuple[int, ...]:
    if not isinstance(value, list | tuple):
        raise SpecError(
            f"{what} {shown(value)} must be a list with one size per dimension {list(array.dims)!r}."
        )
    if len(value) != array.ndim:
        raise SpecError(
            f"{what} {shown(list(value))} has {len(value)} sizes but the array has {array.ndim} dims "
            f"{list(array.dims)!r}; give one size per dimension."
        )
    out = []
    for size in value:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise SpecError(
                f"{what} {shown(list(value))} has size {shown(size)}; every size must be a positive integer."
            )
        if size > MAX_INT64:
            raise SpecError(
                f"{what} {shown(list(value))} has size {shown(size)}, more than 2**63 - 1; "
                "no array is that large: use at most the array's size."
            )
        out.append(int(size))
    return tuple(out)
