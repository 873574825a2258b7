"""One error tree for everything a user can get wrong.

Every user-facing error derives from :class:`ChunkwiseError` (itself a ``ValueError``)
and carries one sentence that names the value, the problem and the fix. The CLI
prints that sentence and exits with status 2; it never shows a traceback for these.
"""

from __future__ import annotations

__all__ = [
    "ChunkwiseError",
    "ConstraintError",
    "MissingDependencyError",
    "SpecError",
    "StoreError",
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
