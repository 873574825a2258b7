"""chunkwise: which chunks, shards and codecs should this Zarr array use?

Measure first, model the cost, recommend with reasons. The public API:

* :func:`advise` — ranked layouts with predicted costs and a rationale.
* :func:`bench` — those layouts (and the usual baselines) written and timed on your data and store.
"""

from chunkwise._version import __version__
from chunkwise.api import advise, bench, convert, inspect, problem, rechunk, trace
from chunkwise.errors import (
    ChunkwiseError,
    ConstraintError,
    MissingDependencyError,
    SpecError,
    StoreError,
)
from chunkwise.plan.advice import Advice, Recommendation

__all__ = [
    "Advice",
    "ChunkwiseError",
    "ConstraintError",
    "MissingDependencyError",
    "Recommendation",
    "SpecError",
    "StoreError",
    "__version__",
    "advise",
    "bench",
    "convert",
    "inspect",
    "problem",
    "rechunk",
    "trace",
]
