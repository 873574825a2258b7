"""Layouts to real zarr-python 3 arrays."""

from __future__ import annotations

from typing import Any, cast

import numcodecs
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec, GzipCodec, ZstdCodec

from chunkwise.errors import SpecError
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import CodecSpec, v2_checksum_message
from chunkwise.model.layout import Layout

__all__ = ["create_array", "zarr_compressor"]


def zarr_compressor(codec: CodecSpec, itemsize: int, zarr_format: int) -> Any:
    """What ``zarr.create_array(compressors=...)`` takes for ``codec``.

    Format 3 gets zarr's own codecs with Blosc's ``typesize`` set to the element size
    (so byte-shuffle works); with a checksum, a tuple of the compressor (if any) and
    ``Crc32cCodec()``, in that order. Format 2 gets a numcodecs compressor (or ``None``).

    Parameters
    ----------
    codec
        The codec.
    itemsize
        Bytes per array element.
    zarr_format
        2 or 3.

    Raises
    ------
    SpecError
        For a checksum in zarr format 2, which has no crc32c codec.
    """
    if zarr_format == 3 and codec.checksum:
        compressor = zarr_compressor(codec.with_checksum(False), itemsize, 3)
        return (*([] if compressor is None else [compressor]), Crc32cCodec())
    if codec.checksum:
        raise SpecError(v2_checksum_message(codec))
    if codec.kind == "none":
        return None
    if zarr_format == 3:
        if codec.kind == "blosc":
            cname = cast(Any, codec.cname)  # one of BLOSC_CNAMES, validated by parse_codec
            return BloscCodec(
                cname=cname, clevel=codec.level, shuffle=codec.shuffle, typesize=itemsize
            )
        if codec.kind == "zstd":
            return ZstdCodec(level=codec.level)
        return GzipCodec(level=codec.level)
    if codec.kind == "blosc":
        shuffle = {"noshuffle": numcodecs.Blosc.NOSHUFFLE, "shuffle": numcodecs.Blosc.SHUFFLE}.get(
            codec.shuffle or "shuffle", numcodecs.Blosc.BITSHUFFLE
        )
        return numcodecs.Blosc(cname=codec.cname, clevel=codec.level, shuffle=shuffle)
    if codec.kind == "zstd":
        return numcodecs.Zstd(level=codec.level)
    return numcodecs.GZip(level=codec.level)


def create_array(store: Any, array: ArraySpec, layout: Layout, **kwargs: Any) -> zarr.Array[Any]:
    """Create an empty zarr array with ``layout`` in ``store`` (any zarr StoreLike).

    Extra keyword arguments go to :func:`zarr.create_array` (``overwrite``, ``attributes``, ...).
    """
    options: dict[str, Any] = {
        "store": store,
        "shape": array.shape,
        "dtype": array.dtype,
        "chunks": layout.chunks,
        "compressors": zarr_compressor(layout.codec, array.itemsize, layout.zarr_format),
        "zarr_format": layout.zarr_format,
    }
    if layout.shards is not None:
        options["shards"] = layout.shards
    if layout.zarr_format == 3:
        options["dimension_names"] = list(array.dims)
        options["chunk_key_encoding"] = {
            "name": "default" if layout.separator == "/" else "v2",
            "separator": layout.separator,
        }
    else:
        options["chunk_key_encoding"] = {"name": "v2", "separator": layout.separator}
    options.update(kwargs)
    return zarr.create_array(**options)
