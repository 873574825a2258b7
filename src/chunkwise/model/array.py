"""The array being planned for: shape, dtype, dimension names."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from chunkwise.errors import SpecError

__all__ = ["ArraySpec"]


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
        dtype: str,
        dims: tuple[str, ...] | list[str] | None = None,
    ) -> ArraySpec:
        """Validate and normalize user input into an :class:`ArraySpec`."""
        if not isinstance(shape, list | tuple) or len(shape) == 0:
            raise SpecError(
                f"array shape {shape!r} must be a non-empty list of sizes, like [184, 630, 630]."
            )
        sizes: list[int] = []
        for size in shape:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise SpecError(
                    f"array shape {list(shape)!r} has size {size!r}; every size must be a positive integer."
                )
            sizes.append(int(size))
        try:
            np_dtype = np.dtype(dtype)
        except TypeError as exc:
            raise SpecError(
                f"dtype {dtype!r} is not a NumPy data type; use a name like 'float32' or 'uint16'."
            ) from exc
        if np_dtype.kind not in "biufc" or np_dtype.itemsize == 0:
            raise SpecError(
                f"dtype {dtype!r} is not a fixed-size numeric type; chunkwise plans numeric arrays "
                "(bool, int, uint, float, complex)."
            )
        if dims is None:
            names = tuple(f"dim_{i}" for i in range(len(sizes)))
        else:
            names = tuple(str(d) for d in dims)
            if len(names) != len(sizes):
                raise SpecError(
                    f"dims {list(names)!r} name {len(names)} dimensions but shape {sizes!r} has {len(sizes)}; "
                    "give one name per dimension."
                )
            if len(set(names)) != len(names):
                raise SpecError(
                    f"dims {list(names)!r} repeat a name; dimension names must be unique."
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
