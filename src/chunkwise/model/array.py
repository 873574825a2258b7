"""The array being planned for: shape, dtype, dimension names."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from chunkwise.errors import SpecError, shown
from chunkwise.units import MAX_INT64

__all__ = ["MAX_DIMS", "ZARR_DTYPES", "ArraySpec"]

#: Most dimensions an array may have. NumPy allows 64 (32 before NumPy 2, and some of its
#: functions still stop at 32); zarr arrays of more than a handful of dims are rare.
MAX_DIMS = 32
#: The numeric data types zarr stores (zarr format 2 and 3 alike); float128 and friends
#: have no zarr data type.
ZARR_DTYPES = frozenset(
    {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
     "float16", "float32", "float64", "complex64", "complex128"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ArraySpec:
    """Shape, data type and dimension names of an N-dimensional array.

    Parameters
    ----------
    shape
        Number of elements along each dimension.
    dtype
        A NumPy data type name (``"float32"``, ``"uint16"``, ...).
    dims
        One unique name per dimension. Defaults to ``dim_0, dim_1, ...``.
    """

    shape: tuple[int, ...]
    dtype: str
    dims: tuple[str, ...]

    @classmethod
    def create(
        cls,
        shape: tuple[int, ...] | list[int],
        dtype: object,
        dims: tuple[str, ...] | list[str] | None = None,
    ) -> ArraySpec:
        """Validate and normalize user input into an :class:`ArraySpec`.

        Raises
        ------
        SpecError
            For a shape that is not 1 to 32 positive sizes, an array of more than
            2**63 - 1 bytes, a missing or non-numeric dtype, or dims that do not name
            every dimension once.
        """
        if not isinstance(shape, list | tuple) or len(shape) == 0:
            raise SpecError(
                f"array shape {shown(shape)} must be a non-empty list of sizes, like [184, 630, 630]."
            )
        if len(shape) > MAX_DIMS:
            raise SpecError(
                f"array shape has {len(shape)} dims; chunkwise handles at most {MAX_DIMS} "
                "(zarr and NumPy arrays of more dims are rare): drop or merge dims."
            )
        sizes: list[int] = []
        for size in shape:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise SpecError(
                    f"array shape {shown(list(shape))} has size {shown(size)}; every size must be a positive integer."
                )
            sizes.append(int(size))
        np_dtype = _numeric_dtype(dtype)
        nbytes = math.prod(sizes) * np_dtype.itemsize
        if nbytes > MAX_INT64:
            raise SpecError(
                f"array shape {shown(sizes)} of {np_dtype.name} holds 2**{_log2(nbytes)} "
                "bytes, more than the 2**63 - 1 that NumPy and zarr can address; describe an "
                "array of fewer elements, such as a representative part of it."
            )
        if dims is None:
            names = tuple(f"dim_{i}" for i in range(len(sizes)))
        else:
            if not isinstance(dims, list | tuple) or not all(
                isinstance(d, str | int) and not isinstance(d, bool) for d in dims
            ):
                raise SpecError(
                    f"dims {shown(dims)} must be a list of dimension names, like [z, y, x]."
                )
            names = tuple(d if isinstance(d, str) else shown(d) for d in dims)
            if len(names) != len(sizes):
                raise SpecError(
                    f"dims {shown(list(names))} name {len(names)} dimensions but shape {shown(sizes)} has {len(sizes)}; "
                    "give one name per dimension."
                )
            if len(set(names)) != len(names):
                raise SpecError(
                    f"dims {shown(list(names))} repeat a name; dimension names must be unique."
                )
        return cls(shape=tuple(sizes), dtype=np_dtype.name, dims=names)

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def itemsize(self) -> int:
        """Bytes per element."""
        return int(np.dtype(self.dtype).itemsize)

    @property
    def nbytes(self) -> int:
        """Uncompressed size of the whole array, in bytes."""
        return math.prod(self.shape) * self.itemsize

    def axis(self, dim: str) -> int:
        """Index of the dimension called ``dim``; raises :class:`SpecError` naming the known dims."""
        try:
            return self.dims.index(dim)
        except ValueError:
            raise SpecError(
                f"unknown dimension {dim!r}; this array's dimensions are {list(self.dims)!r}."
            ) from None

    def time_axis(self) -> int:
        """The axis a time-series preset runs along: a dim named like time, else the first."""
        for i, name in enumerate(self.dims):
            if name.lower() in {"time", "t", "date", "valid_time", "step"}:
                return i
        return 0


def _log2(n: int) -> str:
    """``log2(n)`` to one decimal, without a trailing ``.0``: ``'82'``, ``'63.2'``."""
    return f"{math.log2(n):.1f}".removesuffix(".0")


def _numeric_dtype(dtype: object) -> np.dtype[Any]:
    """The NumPy dtype of a user's dtype name, if zarr stores it as a number."""
    if dtype is None:
        raise SpecError(
            "array dtype is missing (null); give a NumPy data type name like 'float32' or 'uint16'."
        )
    try:
        np_dtype: np.dtype[Any] = np.dtype(dtype)  # type: ignore[call-overload]
    except (TypeError, ValueError, SyntaxError, RecursionError):
        raise SpecError(
            f"dtype {shown(dtype)} is not a NumPy data type; use a name like 'float32' or 'uint16'."
        ) from None
    if np_dtype.kind not in "biufc" or np_dtype.itemsize == 0:
        raise SpecError(
            f"dtype {shown(dtype)} is not a fixed-size numeric type; chunkwise plans numeric arrays "
            "(bool, int, uint, float, complex)."
        )
    if np_dtype.name not in ZARR_DTYPES:
        raise SpecError(
            f"dtype {shown(dtype)} ({np_dtype.name}) has no zarr data type; use one of "
            "float16/32/64, complex64/128, (u)int8/16/32/64 or bool."
        )
    return np_dtype
