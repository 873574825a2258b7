"""One error tree for everything a user can get wrong.

Every user-facing error derives from :class:`ChunkwiseError` (itself a ``ValueError``)
and carries one sentence that names the value, the problem and the fix. The CLI
prints that sentence and exits with status 2; it never shows a traceback for these.
"""

from __future__ import annotations

import math
import reprlib

__all__ = [
    "ChunkwiseError",
    "ConstraintError",
    "MissingDependencyError",
    "SpecError",
    "StoreError",
    "shown",
]


class ChunkwiseError(ValueError):
    """Base class of all errors caused by user input."""


class SpecError(ChunkwiseError):
    """A spec (array, workload, storage, codec, layout) is malformed or inconsistent."""


class ConstraintError(ChunkwiseError):
    """The constraints cannot all be satisfied by any layout."""


class MissingDependencyError(ChunkwiseError):
    """An optional dependency needed for this feature is not installed."""


class StoreError(ChunkwiseError):
    """A store cannot be opened or read: missing, not Zarr, unreachable or corrupt."""


class _Shown(reprlib.Repr):
    """``repr`` bounded in depth and length, for any value a user can write."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxtuple = self.maxlist = self.maxset = self.maxfrozenset = 8
        self.maxdict = 8
        self.maxstring = self.maxother = 80

    def repr_int(self, x: int, level: int) -> str:
        if -(10**30) < x < 10**30:
            return repr(x)
        # repr() itself refuses ints of more than 4300 digits: show the magnitude instead.
        exponent = math.floor(math.log10(abs(x)))
        mantissa = f"{abs(x) / 10**exponent:.3g}"
        if mantissa == "10":
            mantissa, exponent = "1", exponent + 1
        return f"{'-' if x < 0 else ''}{mantissa}e+{exponent}"


_SHOWN = _Shown()


def shown(value: object) -> str:
    """A user's value as an error message shows it: its ``repr``, cut short when it is
    long or deeply nested, and a huge integer by its magnitude (``1e+5000``)."""
    return _SHOWN.repr(value)
