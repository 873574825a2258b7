"""Candidate chunk and shard sizes per dimension.

Per dim: powers of two, the full extent, even splits of the extent (no ragged edge
chunk), and sizes aligned with the workload's extents. Constraints that fix a size
or require alignment with existing Dask chunks restrict the lists here, before any
pricing.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable

from chunkwise.errors import ConstraintError
from chunkwise.model.array import ArraySpec
from chunkwise.model.constraints import Constraints
from chunkwise.model.layout import ceil_div
from chunkwise.model.workload import Workload
from chunkwise.units import MAX_INT64

__all__ = ["chunk_candidates", "reference_chunks", "shard_candidates", "thin"]


#: Trial divisions when listing the divisors of a Dask chunk boundary: exact up to 2**32,
#: bounded time beyond.
_DIVISOR_TRIALS = 2**16
#: Most divisors kept per dim; more are thinned to about one per octave.
_MOST_DIVISORS = 256


def _divisors(n: int) -> list[int]:
    """Divisors of ``n``: all of them up to ``n = 2**32``; beyond, those up to 2**16 with
    their cofactors (powers of two that divide ``n`` come from the power-of-two ladder)."""
    small = [d for d in range(1, min(math.isqrt(n), _DIVISOR_TRIALS) + 1) if n % d == 0]
    found = sorted(set(small + [n // d for d in small]))
    if len(found) <= _MOST_DIVISORS:
        return found
    # Highly composite n: the divisors nearest each power of two, from below and above.
    kept = {found[0], found[-1]}
    for exponent in range(n.bit_length() + 1):
        i = bisect.bisect_left(found, 2**exponent)
        kept.update(found[j] for j in (i - 1, i) if 0 <= j < len(found))
    return sorted(kept)


def _alignment_gcd(constraints: Constraints, axis: int) -> int | None:
    for a, bounds in constraints.align:
        if a == axis and bounds:
            return math.gcd(*bounds)
    return None


def _aligned(value: int, n: int, g: int | None) -> bool:
    return g is None or g % value == 0 or value >= n


def chunk_candidates(
    array: ArraySpec, workload: Workload, constraints: Constraints, axis: int
) -> list[int]:
    """Sorted candidate chunk sizes for ``axis`` (already respecting fixed sizes)."""
    n = array.shape[axis]
    g = _alignment_gcd(constraints, axis)
    for a, size in constraints.fixed_chunks:
        if a == axis:
            if not _aligned(size, n, g):
                raise ConstraintError(
                    f"fixed chunk size {array.dims[axis]}={size} does not align with the Dask chunks in "
                    f"align_with (boundaries at multiples of {g}); fix a size that divides {g}, or drop one constraint."
                )
            return [size]
    values = {n}
    power = 1
    while power < n:
        values.add(power)
        power *= 2
    for parts in range(2, 9):
        values.add(ceil_div(n, parts))
    for op in workload.ops:
        extent = op.extent[axis]
        if 1 < extent < n:
            for size in (extent, extent // 2, extent // 4, 2 * extent, 4 * extent):
                if 1 <= size <= n:
                    values.add(size)
    if g is not None:
        # Unsharded chunks are the write unit: they must divide every Dask boundary.
        values = {v for v in values if _aligned(v, n, g)} | {d for d in _divisors(g) if d <= n}
    return sorted(values)


def shard_candidates(n: int, chunk: int, constraints: Constraints, axis: int) -> list[int]:
    """Sorted candidate shard sizes (multiples of ``chunk``) for a dim of size ``n``."""
    most = ceil_div(n, chunk)
    multiples = {most}
    m = 1
    while m < most:
        multiples.add(m)
        m *= 2
    g = _alignment_gcd(constraints, axis)
    # A shard may pass the array's end up to the next chunk, but not past int64.
    return sorted(
        m * chunk for m in multiples if _aligned(m * chunk, n, g) and m * chunk <= MAX_INT64
    )


def thin(values: list[int], keep: int, protected: Iterable[int] = ()) -> list[int]:
    """Drop values from a sorted list until ``keep`` remain, evenly in log scale.

    Values in ``protected`` (full extent, workload-aligned sizes) are dropped last.
    """
    out = sorted(values)
    guard = set(protected)
    while len(out) > max(keep, 1):
        candidates = [i for i in range(len(out)) if out[i] not in guard] or list(range(len(out)))

        # The value closest (in log scale) to its lower neighbour is the least informative.
        def gap(i: int) -> float:
            low = math.log(out[i - 1]) if i > 0 else -math.inf
            high = math.log(out[i + 1]) if i + 1 < len(out) else math.inf
            here = math.log(out[i])
            return min(here - low, high - here)

        out.pop(min(candidates, key=lambda i: (gap(i), out[i])))
    return out


def reference_chunks(array: ArraySpec, target_bytes: int) -> tuple[int, ...]:
    """The rule-of-thumb layout: near-cubic chunks of about ``target_bytes``.

    Dims smaller than the cube edge are taken whole and the budget moves to the others.
    """
    budget = max(target_bytes / array.itemsize, 1.0)
    chunks = [0] * array.ndim
    order = sorted(range(array.ndim), key=lambda a: array.shape[a])
    for i, axis in enumerate(order):
        edge = budget ** (1.0 / (array.ndim - i))
        size = max(1, min(array.shape[axis], round(edge)))
        chunks[axis] = size
        budget /= size
    return tuple(chunks)
