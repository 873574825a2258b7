"""Hypothesis strategies for chunkwise's planning model.

These strategies draw small, valid values of the model (arrays, layouts, codecs and
one-dimensional access cases) for property-based tests, in chunkwise's own suite or
in a user's. Sizes stay small so that brute-force oracles over every position stay
fast. Chunk sizes are drawn through the *number of chunks* where that helps
Hypothesis shrink towards simple cases (one chunk per dim, no shards), the way
``zarr.testing.strategies`` does.

Requires the ``hypothesis`` package (a development dependency of chunkwise).
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import BLOSC_CNAMES, CodecSpec
from chunkwise.model.layout import Layout, ceil_div

__all__ = [
    "DTYPES",
    "array_specs",
    "codec_specs",
    "dim_cases",
    "layouts",
]

#: The data types :func:`array_specs` draws from.
DTYPES: tuple[str, ...] = ("float32", "float64", "uint16", "int8", "uint8")

_DIM_NAMES = ("time", "z", "y", "x", "band", "lat", "lon", "t", "step", "depth")
_NAME_STEMS = st.from_regex(r"[a-z][a-z0-9]{0,5}", fullmatch=True)


def _check_positive(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"{name}={value!r} must be a positive integer.")


def _chunk_size(n: int) -> st.SearchStrategy[int]:
    """A chunk size for a dim of ``n`` elements, shrinking towards one chunk (``n``)."""
    by_count = st.integers(min_value=1, max_value=n).map(lambda k: ceil_div(n, k))
    return st.one_of(by_count, st.integers(min_value=1, max_value=n))


def codec_specs(*, checksums: bool = False) -> st.SearchStrategy[CodecSpec]:
    """Draw any codec chunkwise models.

    Parameters
    ----------
    checksums
        Also draw codecs with a crc32c checksum (``+crc32c``, zarr format 3 only).

    Returns
    -------
    SearchStrategy[CodecSpec]
        Blosc (every inner compressor, level 0-9, every shuffle), Zstandard (levels
        -5 to 22), gzip (levels 0-9) or no compression, with or (with ``checksums``)
        without a checksum. Shrinks towards ``blosc:zstd:5:shuffle``.
    """
    plain = _compressor_specs()
    if not checksums:
        return plain
    return st.builds(lambda codec, checksum: codec.with_checksum(checksum), plain, st.booleans())


def _compressor_specs() -> st.SearchStrategy[CodecSpec]:
    blosc = st.builds(
        CodecSpec,
        kind=st.just("blosc"),
        cname=st.sampled_from(("zstd", *(c for c in BLOSC_CNAMES if c != "zstd"))),
        level=st.integers(min_value=0, max_value=9).map(lambda v: (v + 5) % 10),
        shuffle=st.sampled_from(("shuffle", "noshuffle", "bitshuffle")),
    )
    zstd = st.builds(CodecSpec, kind=st.just("zstd"), level=st.integers(min_value=-5, max_value=22))
    gzip = st.builds(CodecSpec, kind=st.just("gzip"), level=st.integers(min_value=0, max_value=9))
    return st.one_of(blosc, zstd, gzip, st.just(CodecSpec("none")))


def array_specs(
    max_ndim: int = 4,
    max_side: int = 24,
    *,
    min_ndim: int = 1,
    dtypes: tuple[str, ...] = DTYPES,
) -> st.SearchStrategy[ArraySpec]:
    """Draw an :class:`~chunkwise.model.array.ArraySpec` through ``ArraySpec.create``.

    Parameters
    ----------
    max_ndim
        Most dimensions.
    max_side
        Largest size of one dimension.
    min_ndim
        Fewest dimensions.
    dtypes
        Data type names to draw from.

    Returns
    -------
    SearchStrategy[ArraySpec]
        Arrays with unique dimension names and sizes in ``[1, max_side]``.
    """
    _check_positive(min_ndim, "min_ndim")
    _check_positive(max_ndim, "max_ndim")
    _check_positive(max_side, "max_side")
    if min_ndim > max_ndim:
        raise InvalidArgument(f"min_ndim={min_ndim} exceeds max_ndim={max_ndim}.")
    if not dtypes:
        raise InvalidArgument("dtypes must name at least one data type.")
    return _array_specs(min_ndim, max_ndim, max_side, tuple(dtypes))


@st.composite
def _array_specs(
    draw: st.DrawFn, min_ndim: int, max_ndim: int, max_side: int, dtypes: tuple[str, ...]
) -> ArraySpec:
    ndim = draw(st.integers(min_value=min_ndim, max_value=max_ndim))
    shape = draw(
        st.lists(st.integers(min_value=1, max_value=max_side), min_size=ndim, max_size=ndim)
    )
    # Common names in a random order (shrinking towards them), or a drawn stem made unique
    # by its axis number; no rejection sampling needed for uniqueness.
    pool = draw(st.permutations(_DIM_NAMES))
    dims = [
        pool[i]
        if i < len(pool) and draw(st.integers(min_value=0, max_value=3)) < 3
        else f"{draw(_NAME_STEMS)}_{i}"
        for i in range(ndim)
    ]
    dtype = draw(st.sampled_from(dtypes))
    return ArraySpec.create(shape, dtype, dims)


def layouts(
    array: ArraySpec,
    zarr_format: int | None = None,
    *,
    codec: CodecSpec | None = None,
) -> st.SearchStrategy[Layout]:
    """Draw a valid :class:`~chunkwise.model.layout.Layout` of ``array`` via ``Layout.create``.

    Parameters
    ----------
    array
        The array the layout is for.
    zarr_format
        2 or 3; ``None`` draws either (shrinking towards 3).
    codec
        The codec of every drawn layout; ``None`` draws one from :func:`codec_specs`.

    Returns
    -------
    SearchStrategy[Layout]
        Layouts with chunks no larger than the array and, for format 3 only, shards
        that are multiples of the chunks and at most ``ceil(n / chunk) * chunk``.
    """
    if zarr_format not in (None, 2, 3):
        raise InvalidArgument(f"zarr_format={zarr_format!r} must be 2, 3 or None.")
    formats: st.SearchStrategy[int] = (
        st.sampled_from((3, 2)) if zarr_format is None else st.just(zarr_format)
    )
    codecs: st.SearchStrategy[CodecSpec] = codec_specs() if codec is None else st.just(codec)
    return _layouts(array, formats, codecs)


@st.composite
def _layouts(
    draw: st.DrawFn,
    array: ArraySpec,
    formats: st.SearchStrategy[int],
    codecs: st.SearchStrategy[CodecSpec],
) -> Layout:
    fmt = draw(formats)
    chunks = tuple(draw(_chunk_size(n)) for n in array.shape)
    shards: tuple[int, ...] | None = None
    if fmt == 3 and draw(st.booleans()):
        shards = tuple(
            c * draw(st.integers(min_value=1, max_value=ceil_div(n, c)))
            for n, c in zip(array.shape, chunks, strict=True)
        )
    return Layout.create(array, chunks, shards=shards, codec=draw(codecs), zarr_format=fmt)


def dim_cases(max_n: int = 48) -> st.SearchStrategy[tuple[int, int, int, int]]:
    """Draw one dimension's access case ``(n, extent, chunk, shard)``.

    Parameters
    ----------
    max_n
        Largest dimension size.

    Returns
    -------
    SearchStrategy[tuple[int, int, int, int]]
        ``1 <= extent <= n``, ``1 <= chunk <= n`` and ``shard`` a multiple of ``chunk``
        no larger than ``ceil(n / chunk) * chunk`` (``shard == chunk`` means unsharded).
    """
    _check_positive(max_n, "max_n")
    return _dim_cases(max_n)


@st.composite
def _dim_cases(draw: st.DrawFn, max_n: int) -> tuple[int, int, int, int]:
    n = draw(st.integers(min_value=1, max_value=max_n))
    extent = draw(st.integers(min_value=1, max_value=n))
    chunk = draw(_chunk_size(n))
    shard = chunk * draw(st.integers(min_value=1, max_value=ceil_div(n, chunk)))
    return n, extent, chunk, shard
