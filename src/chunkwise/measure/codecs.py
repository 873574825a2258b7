"""Measure codecs on the user's own data: compression ratio and single-core throughput.

:func:`sample_blocks` takes a representative sample of an array, :func:`profile_codecs`
compresses it chunk by chunk with every codec and times encoding and decoding on one
core, and :func:`codec_profiles_spec` writes the numbers as the ``codec_profiles:``
mapping of a spec file, where they replace the assumed defaults of
:func:`chunkwise.model.codec.default_codec_profile`.

The codecs are the numcodecs objects zarr itself calls for both formats (zarr 3's
``blosc``, ``zstd`` and ``gzip`` codecs wrap numcodecs), with Blosc's ``typesize`` set
to the element size so that byte- and bit-shuffle act on whole elements.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import pairwise
from typing import Any, Protocol

import numcodecs
import numcodecs.blosc
import numpy as np
import numpy.typing as npt

from chunkwise.errors import ChunkwiseError, SpecError
from chunkwise.measure.results import CodecMeasurement
from chunkwise.model.codec import CodecSpec, parse_codec
from chunkwise.units import spec_rate

__all__ = [
    "DEFAULT_PROFILE_CODECS",
    "Compressor",
    "SliceableArray",
    "codec_profiles_spec",
    "measure_compressor",
    "profile_codecs",
    "sample_blocks",
    "split_pieces",
    "verify_roundtrip",
]

MiB = 2**20

DEFAULT_PROFILE_CODECS: tuple[str, ...] = (
    *(
        f"blosc:{cname}:{level}:{shuffle}"
        for cname in ("lz4", "zstd")
        for level in (1, 5, 9)
        for shuffle in ("shuffle", "bitshuffle")
    ),
    "zstd:1",
    "zstd:3",
    "zstd:9",
    "gzip:1",
    "gzip:6",
    "none",
)


class SliceableArray(Protocol):
    """An array with a shape, a dtype and numpy-style basic slicing (numpy, zarr, ...)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> Any: ...

    def __getitem__(self, key: Any) -> Any: ...


class Compressor(Protocol):
    """What :func:`measure_compressor` calls: a numcodecs-style codec."""

    def encode(self, buf: Any) -> Any: ...

    def decode(self, buf: Any) -> Any: ...


def sample_blocks(
    data: SliceableArray, max_bytes: int = 16 * MiB, *, seed: int = 0, blocks: int = 4
) -> npt.NDArray[Any]:
    """A representative sample of ``data`` of at most ``max_bytes``, for profiling codecs.

    When ``data`` fits in ``max_bytes`` the sample is all of it (same shape). Otherwise
    it is up to ``blocks`` slabs, one at a seeded random position in each of ``blocks``
    equal parts of the array (in C order), stacked along the first axis. A slab is a range of
    whole rows ``data[i, j, a:b, :, :]`` (leading indices fixed, one axis sliced, the
    trailing axes complete), so it is contiguous in the array's C order and keeps the
    neighbour-to-neighbour correlation along the fast axes that shuffle and the
    compressors exploit; spreading the slabs over the array keeps one region (a land
    mask, a fill-value margin) from standing for all of it. The sliced axis is the
    outermost one whose rows still fit a slab's share of ``max_bytes``. A chunk narrower
    than the array along the fast axes breaks those runs more often than a slab does, so
    its ratio can be slightly lower than the sample's.

    Parameters
    ----------
    data
        A numpy array, a zarr array, or anything with ``.shape``, ``.dtype`` and
        numpy-style basic indexing; only the sampled slabs are read.
    max_bytes
        Upper bound on the sample, bytes (exceeded only when one element is larger).
    seed
        Seeds the slab positions.
    blocks
        Number of slabs when ``data`` is larger than ``max_bytes``.

    Returns
    -------
    numpy.ndarray
        ``data`` itself (as an array) when small; else an array of shape
        ``(blocks x rows, *trailing shape)`` with ``data``'s dtype.
    """
    if max_bytes < 1 or blocks < 1:
        raise SpecError(
            f"sample max_bytes {max_bytes!r} and blocks {blocks!r} must be positive integers."
        )
    shape = tuple(int(n) for n in data.shape)
    itemsize = np.dtype(data.dtype).itemsize
    if math.prod(shape) * itemsize <= max_bytes or not shape:
        return np.asarray(data[...])
    axis, rows = _slab_geometry(shape, itemsize, max(max_bytes // blocks, itemsize))
    slab_bytes = rows * math.prod(shape[axis + 1 :]) * itemsize
    slots_per_lead = shape[axis] // rows
    slots = math.prod(shape[:axis]) * slots_per_lead
    count = min(blocks, slots, max(1, max_bytes // slab_bytes))
    rng = np.random.default_rng(seed)
    parts = []
    for slot in _stratified(slots, count, rng):
        lead = np.unravel_index(slot // slots_per_lead, shape[:axis])
        start = (slot % slots_per_lead) * rows
        index = (*(int(i) for i in lead), slice(start, start + rows))
        parts.append(np.asarray(data[index]))
    return np.concatenate(parts, axis=0)


def _slab_geometry(shape: tuple[int, ...], itemsize: int, budget: int) -> tuple[int, int]:
    """The axis to slice and the rows per slab: the outermost axis whose rows fit ``budget``."""
    for axis in range(len(shape)):
        row_bytes = math.prod(shape[axis + 1 :]) * itemsize
        if row_bytes <= budget:
            return axis, max(1, min(shape[axis], budget // row_bytes))
    raise AssertionError("unreachable: the last axis' rows are single elements")


def _stratified(slots: int, count: int, rng: np.random.Generator) -> list[int]:
    """One random slot in each of ``count`` equal, disjoint ranges of ``range(slots)``."""
    edges = [slots * i // count for i in range(count + 1)]
    return [int(lo + rng.integers(0, hi - lo)) for lo, hi in pairwise(edges)]


def split_pieces(sample: npt.ArrayLike, chunk_bytes: int = 1 * MiB) -> list[npt.NDArray[Any]]:
    """``sample`` flattened in C order and cut into pieces of about ``chunk_bytes``.

    Codecs compress each chunk separately in Zarr, so they are measured per piece; every
    piece but the last holds ``chunk_bytes // itemsize`` elements (at least one).

    Returns
    -------
    list of numpy.ndarray
        One-dimensional, C-contiguous pieces with ``sample``'s dtype.
    """
    flat = np.ascontiguousarray(sample).reshape(-1)
    if flat.dtype.hasobject:
        raise SpecError(
            f"cannot profile codecs on a sample of dtype {flat.dtype}; Python objects "
            "have no fixed byte layout to compress."
        )
    if flat.size == 0:
        raise SpecError("cannot profile codecs on an empty sample; give data with some elements.")
    if chunk_bytes < 1:
        raise SpecError(f"codec profile chunk_bytes {chunk_bytes!r} must be a positive integer.")
    step = max(1, chunk_bytes // flat.dtype.itemsize)
    return [flat[i : i + step] for i in range(0, flat.size, step)]


def profile_codecs(
    sample: npt.ArrayLike,
    codecs: Sequence[str | CodecSpec] = DEFAULT_PROFILE_CODECS,
    *,
    repeats: int = 3,
    chunk_bytes: int = 1 * MiB,
    time_limit_s: float = 2.0,
) -> tuple[CodecMeasurement, ...]:
    """Measure each codec's ratio and single-core throughput on ``sample``.

    The sample is cut into pieces of about ``chunk_bytes`` (see :func:`split_pieces`);
    each codec encodes and then decodes every piece, ``repeats`` times, with Blosc held
    to one thread (its thread count and ``use_threads`` are restored afterwards). The
    fastest repeat counts: noise only ever adds time. A codec stops repeating once it has
    spent ``time_limit_s`` (slow ones such as ``blosc:zstd:9`` run at a few MB/s, and
    one long pass is already a steady measurement). Every decoded piece is checked to be
    bit-identical to the original.

    Parameters
    ----------
    sample
        The data, e.g. from :func:`sample_blocks`.
    codecs
        Short codec strings (``blosc:zstd:5:shuffle``, ``zstd:3``, ``none``, ...) or
        :class:`~chunkwise.model.codec.CodecSpec` values; duplicates are measured once.
    repeats
        Timed passes over the sample per codec.
    chunk_bytes
        Size of the pieces each codec call gets, bytes.
    time_limit_s
        Seconds after which a codec runs no further repeat (one always runs).

    Returns
    -------
    tuple of CodecMeasurement
        One per distinct codec, in the order given; ``ratio`` is raw over compressed
        bytes, throughputs are uncompressed bytes per second on one core.

    Raises
    ------
    SpecError
        For a codec string that does not parse, an empty or object-dtype sample, or a
        non-positive setting.
    ChunkwiseError
        When a codec does not decode a piece back to the same bytes.
    """
    specs = tuple(dict.fromkeys(parse_codec(c) for c in codecs))
    if not specs:
        raise SpecError("no codecs to profile; give at least one, like ['blosc:zstd:5:shuffle'].")
    pieces = split_pieces(sample, chunk_bytes)
    itemsize = pieces[0].dtype.itemsize
    with _single_threaded_blosc():
        return tuple(
            measure_compressor(
                _compressor(spec, itemsize),
                pieces,
                label=spec.short,
                repeats=repeats,
                time_limit_s=time_limit_s,
            )
            for spec in specs
        )


def measure_compressor(
    compressor: Compressor,
    pieces: Sequence[npt.NDArray[Any]],
    *,
    label: str,
    repeats: int = 3,
    time_limit_s: float = math.inf,
) -> CodecMeasurement:
    """Time one compressor on ``pieces`` and check that it round-trips them.

    Parameters
    ----------
    compressor
        Anything with numcodecs' ``encode(buf)`` and ``decode(buf)``.
    pieces
        C-contiguous arrays, each compressed on its own (like Zarr chunks).
    label
        The codec's name in the result and in errors.
    repeats
        Timed passes; the fastest counts.
    time_limit_s
        Seconds after which no further pass starts (one always runs).

    Returns
    -------
    CodecMeasurement

    Raises
    ------
    ChunkwiseError
        When a decoded piece differs from the original in any bit.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise SpecError(f"codec profile repeats {repeats!r} must be a positive integer.")
    raw_bytes = sum(p.nbytes for p in pieces)
    encode_s = decode_s = math.inf
    compressed_bytes = 0
    began = time.perf_counter()
    for _ in range(repeats):
        start = time.perf_counter()
        encoded = [compressor.encode(p) for p in pieces]
        middle = time.perf_counter()
        decoded = [compressor.decode(e) for e in encoded]
        end = time.perf_counter()
        encode_s, decode_s = min(encode_s, middle - start), min(decode_s, end - middle)
        compressed_bytes = sum(_nbytes(e) for e in encoded)
        verify_roundtrip(pieces, decoded, label=label)
        if time.perf_counter() - began >= time_limit_s:
            break
    return CodecMeasurement(
        codec=label,
        ratio=raw_bytes / max(compressed_bytes, 1),
        encode_Bps=raw_bytes / max(encode_s, 1e-9),
        decode_Bps=raw_bytes / max(decode_s, 1e-9),
        sample_bytes=raw_bytes,
    )


def verify_roundtrip(
    pieces: Sequence[npt.NDArray[Any]], decoded: Sequence[Any], *, label: str
) -> None:
    """Raise unless every ``decoded[i]`` holds exactly the bytes of ``pieces[i]``.

    Raises
    ------
    ChunkwiseError
        Naming the codec and the first piece that differs.
    """
    for i, (piece, out) in enumerate(zip(pieces, decoded, strict=True)):
        got = _byte_view(out)
        if not np.array_equal(got, piece.view(np.uint8)):
            raise ChunkwiseError(
                f"codec {label} did not decode piece {i} of the sample ({piece.nbytes} bytes) "
                f"back to the same bytes (got {got.nbytes} bytes that differ); its measurements "
                "cannot be trusted, so leave it out and check the numcodecs installation."
            )


def codec_profiles_spec(measurements: Sequence[CodecMeasurement]) -> dict[str, dict[str, Any]]:
    """The ``codec_profiles:`` mapping of a spec file for these measurements.

    Parameters
    ----------
    measurements
        From :func:`profile_codecs`.

    Returns
    -------
    dict
        ``{codec: {"ratio": 1.234, "encode": "230.5MB/s", "decode": "901.2MB/s",
        "measured": True}}``; ratios to five and rates to four significant digits, codecs
        under their canonical short strings.
    """
    return {
        parse_codec(m.codec).short: {
            "ratio": float(f"{m.ratio:.5g}"),
            "encode": spec_rate(m.encode_Bps),
            "decode": spec_rate(m.decode_Bps),
            "measured": True,
        }
        for m in measurements
    }


class _Copy:
    """``none``: the bytes as they are; encoding and decoding are one memory copy each."""

    def encode(self, buf: Any) -> bytes:
        return _byte_view(buf).tobytes()

    def decode(self, buf: Any) -> bytes:
        return _byte_view(buf).tobytes()


class _Checksummed:
    """A compressor followed by a crc32c of its output, appended (zarr v3's ``crc32c``)."""

    def __init__(self, compressor: Compressor) -> None:
        self.compressor = compressor
        self.crc32c = numcodecs.CRC32C(location="end")

    def encode(self, buf: Any) -> Any:
        return self.crc32c.encode(self.compressor.encode(buf))

    def decode(self, buf: Any) -> Any:
        return self.compressor.decode(self.crc32c.decode(buf))


def _compressor(codec: CodecSpec, itemsize: int) -> Compressor:
    """The numcodecs compressor zarr uses for ``codec``; Blosc shuffles ``itemsize``-byte
    elements. A checksum is numcodecs' ``CRC32C``, which writes the bytes zarr v3's
    ``crc32c`` codec writes (the CRC, little-endian, after the data)."""
    if codec.checksum:
        return _Checksummed(_compressor(codec.with_checksum(False), itemsize))
    config = codec.v2_compressor_json()
    if config is None:
        return _Copy()
    if codec.kind == "blosc":
        config["typesize"] = itemsize
    compressor: Compressor = numcodecs.get_codec(config)
    return compressor


@contextmanager
def _single_threaded_blosc() -> Iterator[None]:
    """Hold Blosc to one thread in this block; restore its settings afterwards."""
    use_threads = numcodecs.blosc.use_threads
    previous = numcodecs.blosc.set_nthreads(1)
    numcodecs.blosc.use_threads = False
    try:
        yield
    finally:
        numcodecs.blosc.set_nthreads(previous)
        numcodecs.blosc.use_threads = use_threads


def _byte_view(buf: Any) -> npt.NDArray[np.uint8]:
    """The bytes of a buffer or array (any dtype, datetimes included) as a flat uint8 view."""
    if isinstance(buf, np.ndarray):
        return np.ascontiguousarray(buf).reshape(-1).view(np.uint8)
    return np.frombuffer(buf, dtype=np.uint8)


def _nbytes(buf: Any) -> int:
    return int(buf.nbytes) if isinstance(buf, np.ndarray) else memoryview(buf).nbytes
