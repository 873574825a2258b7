"""Ready-to-paste code for a layout: ``zarr.create_array(...)`` and an xarray ``encoding``."""

from __future__ import annotations

from chunkwise.errors import SpecError
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import CodecSpec, v2_checksum_message
from chunkwise.model.layout import Layout

__all__ = ["xarray_snippet", "zarr_snippet"]


def _v3_compressors(codec: CodecSpec, itemsize: int) -> tuple[str, str]:
    """(import line, expression) for zarr v3 codec objects: the compressor, or with a
    checksum a tuple of the compressor (if any) and ``Crc32cCodec()``."""
    compressor = _v3_compressor(codec, itemsize)
    if not codec.checksum:
        if compressor is None:
            return "", "None"
        return f"from zarr.codecs import {compressor[0]}", compressor[1]
    names = [*([compressor[0]] if compressor else []), "Crc32cCodec"]
    parts = [*([compressor[1]] if compressor else []), "Crc32cCodec()"]
    expression = f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"
    return f"from zarr.codecs import {', '.join(names)}", expression


def _v3_compressor(codec: CodecSpec, itemsize: int) -> tuple[str, str] | None:
    """(class name, expression) of one zarr v3 compressor; ``None`` for no compression."""
    if codec.kind == "blosc":
        return (
            "BloscCodec",
            f'BloscCodec(cname="{codec.cname}", clevel={codec.level}, shuffle="{codec.shuffle}", typesize={itemsize})',
        )
    if codec.kind == "zstd":
        return "ZstdCodec", f"ZstdCodec(level={codec.level})"
    if codec.kind == "gzip":
        return "GzipCodec", f"GzipCodec(level={codec.level})"
    return None


def _v2_compressor(codec: CodecSpec) -> tuple[str, str]:
    """(import line, expression) for numcodecs compressors (zarr format 2)."""
    if codec.checksum:
        raise SpecError(v2_checksum_message(codec))
    if codec.kind == "blosc":
        shuffle = {"noshuffle": "NOSHUFFLE", "shuffle": "SHUFFLE", "bitshuffle": "BITSHUFFLE"}[
            codec.shuffle or "shuffle"
        ]
        return (
            "from numcodecs import Blosc",
            f'Blosc(cname="{codec.cname}", clevel={codec.level}, shuffle=Blosc.{shuffle})',
        )
    if codec.kind == "zstd":
        return "from numcodecs import Zstd", f"Zstd(level={codec.level})"
    if codec.kind == "gzip":
        return "from numcodecs import GZip", f"GZip(level={codec.level})"
    return "", "None"


def _compressor(layout: Layout, array: ArraySpec) -> tuple[str, str]:
    if layout.zarr_format == 3:
        return _v3_compressors(layout.codec, array.itemsize)
    return _v2_compressor(layout.codec)


def zarr_snippet(array: ArraySpec, layout: Layout, store: str = "data.zarr") -> str:
    """Python code creating an empty array with ``layout`` via ``zarr.create_array``."""
    imports, compressor = _compressor(layout, array)
    lines = ["import zarr"] + ([imports] if imports else []) + [""]
    lines.append("array = zarr.create_array(")
    lines.append(f'    store="{store}",')
    lines.append(f"    shape={tuple(array.shape)!r},")
    lines.append(f'    dtype="{array.dtype}",')
    lines.append(f"    chunks={tuple(layout.chunks)!r},")
    if layout.shards is not None:
        lines.append(f"    shards={tuple(layout.shards)!r},")
    lines.append(f"    compressors={compressor},")
    lines.append(f"    zarr_format={layout.zarr_format},")
    if layout.zarr_format == 3:
        lines.append(f"    dimension_names={list(array.dims)!r},")
    if layout.zarr_format == 2 and layout.separator != ".":
        lines.append(f'    chunk_key_encoding={{"name": "v2", "separator": "{layout.separator}"}},')
    lines.append(")")
    return "\n".join(lines)


def xarray_snippet(array: ArraySpec, layout: Layout, variable: str = "data") -> str:
    """Python code writing an xarray Dataset variable with ``layout`` (``encoding=``)."""
    imports, compressor = _compressor(layout, array)
    lines = ([imports, ""] if imports else []) + ["encoding = {"]
    lines.append(f'    "{variable}": {{')
    lines.append(f'        "chunks": {tuple(layout.chunks)!r},')
    if layout.shards is not None:
        lines.append(f'        "shards": {tuple(layout.shards)!r},')
    lines.append(f'        "compressors": {compressor},')
    lines.append("    },")
    lines.append("}")
    lines.append(f'ds.to_zarr("data.zarr", encoding=encoding, zarr_format={layout.zarr_format})')
    return "\n".join(lines)
