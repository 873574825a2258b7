"""The recommendation search: price many layouts at once, keep the best few.

1. Per dim, candidate chunk sizes (:mod:`chunkwise.plan.candidates`).
2. Unsharded layouts: the cross product of the per-dim lists is priced as one
   vectorized grid. When it exceeds the grid budget (high-dimensional arrays) the
   lists are thinned evenly in log scale and the best points are refined by
   coordinate descent over the full lists.
3. Sharded layouts (zarr format 3): inner chunks from the best unsharded shapes,
   shards as power-of-two multiples (and the whole extent), priced the same way.
4. Constraints are boolean masks over each grid. The answer is the fastest
   feasible layout, with near-ties (within ``tie_tolerance``) broken by fewer
   objects, then fewer stored bytes. Dropping one constraint at a time shows which
   constraints *bound* the answer.

Everything is deterministic: no sampling, stable sorts, ties broken by layout.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from chunkwise.cost.model import CostInputs, Grid, grid_footprint, weighted_seconds
from chunkwise.errors import ConstraintError
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import CodecProfile, CodecSpec
from chunkwise.model.constraints import BLOSC_MAX_BYTES, ByteRange, Constraints
from chunkwise.model.layout import Layout
from chunkwise.model.storage import StorageProfile
from chunkwise.model.workload import Workload
from chunkwise.plan.candidates import chunk_candidates, shard_candidates, thin
from chunkwise.units import format_bytes, format_count

__all__ = ["Binding", "Candidate", "SearchResult", "search"]

Array = np.ndarray[Any, np.dtype[Any]]
Pairs = tuple[tuple[int, int | None], ...]

#: Inner-chunk values per dim carried from the unsharded search into the sharded one.
_INNER_PER_DIM = 4
#: Unsharded layouts whose chunk shapes seed the sharded search.
_INNER_SEEDS = 8
#: Best layouts kept for ranking and the Pareto front.
_POOL_SIZE = 256


@dataclass(frozen=True, slots=True)
class Candidate:
    """One priced layout."""

    layout: Layout
    weighted_s: float
    objects: int
    stored_bytes: float
    chunk_bytes: int
    object_bytes: int
    shape: tuple[int, ...]

    @property
    def key(self) -> tuple[object, ...]:
        """Identity of the layout's geometry and format (codec excluded)."""
        return (self.layout.zarr_format, self.layout.chunks, self.layout.shards)


@dataclass(frozen=True, slots=True)
class Binding:
    """A constraint that kept a faster layout out.

    Attributes
    ----------
    name
        Constraint name (``max_objects``, ``object_bytes``, ``zarr_format``, ...).
    value
        The constraint's value, as the user would write it.
    relaxed
        The best layout without this constraint.
    speedup
        How much faster (predicted weighted time) ``relaxed`` is than the answer.
    """

    name: str
    value: str
    relaxed: Candidate
    speedup: float

    def sentence(self) -> str:
        """Plain-language explanation."""
        r = self.relaxed
        return (
            f"{self.name} ({self.value}) bound this choice: without it, {r.layout.label()} "
            f"would be predicted {self.speedup:.2g}x faster ({format_count(r.objects)} objects, "
            f"{format_bytes(r.object_bytes)} per object)."
        )


@dataclass(frozen=True)
class SearchResult:
    """What the search found."""

    ranked: tuple[Candidate, ...]
    pareto: tuple[Candidate, ...]
    bindings: tuple[Binding, ...]
    evaluated: int


@dataclass(frozen=True)
class _Context:
    array: ArraySpec
    workload: Workload
    storage: StorageProfile
    constraints: Constraints
    object_range: ByteRange
    object_range_source: str
    codecs: tuple[CodecSpec, ...]
    profiles: Mapping[CodecSpec, CodecProfile]
    grid_budget: int

    @property
    def zarr_format(self) -> int:
        return self.constraints.zarr_format or 3


@dataclass(eq=False)
class _Evaluated:
    grid: Grid
    codec: CodecSpec
    weighted: Array
    objects: Array
    stored: Array
    chunk_raw: Array
    object_raw: Array
    masks: dict[str, Array]

    def feasible(self, skip: str | None = None) -> Array:
        ok = np.ones(self.weighted.shape, dtype=bool)
        for name, mask in self.masks.items():
            if name != skip:
                ok = ok & mask
        return ok


def _evaluate(grid: Grid, codec: CodecSpec, ctx: _Context) -> _Evaluated:
    fmt = ctx.zarr_format if not grid.sharded else 3
    inputs = CostInputs(ctx.array, ctx.storage, codec, ctx.profiles[codec])
    weighted = weighted_seconds(grid, ctx.workload.ops, inputs)
    if grid.sharded:
        # A "shard" of one chunk is the unsharded layout (Layout.create drops it), which
        # the unsharded grid prices without index requests: never offer it from here.
        single = np.ones(weighted.shape, dtype=bool)
        for axis in range(len(grid.pairs)):
            single = single & (grid.axis_values(axis, 1) == grid.axis_values(axis, 0))
        weighted = np.where(single, np.inf, weighted)
    metadata = 1 if fmt == 3 else 2
    foot = grid_footprint(grid, inputs, metadata)
    shape = weighted.shape
    objects = np.broadcast_to(foot.data_objects + metadata, shape)
    chunk_raw = np.broadcast_to(foot.chunk_bytes, shape)
    object_raw = np.broadcast_to(foot.object_bytes, shape)
    c = ctx.constraints
    masks: dict[str, Array] = {}

    def within(values: Array, bounds: ByteRange) -> Array:
        ok = np.ones(shape, dtype=bool)
        if bounds.min_bytes is not None:
            ok &= values >= bounds.min_bytes
        if bounds.max_bytes is not None:
            ok &= values <= bounds.max_bytes
        return ok

    masks["chunk_bytes"] = within(chunk_raw, c.chunk_bytes)
    masks["shard_bytes"] = (
        within(object_raw, c.shard_bytes) if grid.sharded else np.ones(shape, bool)
    )
    masks["object_bytes"] = within(object_raw, ctx.object_range)
    masks["max_objects"] = (
        objects <= c.max_objects if c.max_objects is not None else np.ones(shape, dtype=bool)
    )
    if c.memory_bytes is not None:
        held = object_raw * (1.0 + 1.0 / ctx.profiles[codec].ratio)
        masks["memory_per_task"] = held <= c.memory_bytes
    if codec.kind == "blosc":
        masks["blosc_limit"] = chunk_raw <= BLOSC_MAX_BYTES
    return _Evaluated(
        grid,
        codec,
        weighted,
        objects,
        np.broadcast_to(foot.stored_bytes, shape),
        chunk_raw,
        object_raw,
        masks,
    )


def _layout_at(ev: _Evaluated, flat: int, ctx: _Context) -> Candidate:
    index = np.unravel_index(flat, ev.weighted.shape)
    pairs = [ev.grid.pairs[a][int(i)] for a, i in enumerate(index)]
    chunks = tuple(p[0] for p in pairs)
    shards = tuple(int(p[1]) for p in pairs if p[1] is not None) if ev.grid.sharded else None
    layout = Layout.create(
        ctx.array,
        chunks,
        shards=shards,
        codec=ev.codec,
        zarr_format=3 if ev.grid.sharded else ctx.zarr_format,
    )
    return Candidate(
        layout=layout,
        weighted_s=float(ev.weighted.flat[flat]),
        objects=round(float(ev.objects.flat[flat])),
        stored_bytes=float(ev.stored.flat[flat]),
        chunk_bytes=int(ev.chunk_raw.flat[flat]),
        object_bytes=int(ev.object_raw.flat[flat]),
        shape=ctx.array.shape,
    )


def _best_indices(ev: _Evaluated, mask: Array, k: int, by: Array | None = None) -> list[int]:
    score = np.where(mask, ev.weighted if by is None else by, np.inf).ravel()
    finite = int(np.count_nonzero(np.isfinite(score)))
    if finite == 0:
        return []
    k = min(k, finite)
    part = np.argpartition(score, k - 1)[:k] if k < score.size else np.arange(score.size)
    ordered = sorted((float(score[i]), int(i)) for i in part)
    return [i for _, i in ordered if math.isfinite(score[i])]


def _optimize(
    lists: Sequence[Pairs],
    protected: Sequence[set[int]],
    evaluate: Callable[[Grid], _Evaluated],
    budget: int,
) -> list[_Evaluated]:
    """Price the cross product of ``lists``; thin + coordinate descent when too big."""
    if math.prod(len(pl) for pl in lists) <= budget:
        return [evaluate(Grid(tuple(lists)))]
    thinned = [list(pl) for pl in lists]
    while math.prod(len(pl) for pl in thinned) > budget:
        axis = max(range(len(thinned)), key=lambda a: (len(thinned[a]), -a))
        keys = sorted({p[0] * 10**9 + (p[1] or 0) for p in thinned[axis]})
        guard = {k for k in keys if (k // 10**9) in protected[axis]}
        kept = set(thin(keys, len(keys) - 1, guard))
        thinned[axis] = [p for p in thinned[axis] if p[0] * 10**9 + (p[1] or 0) in kept]
    first = evaluate(Grid(tuple(tuple(pl) for pl in thinned)))
    results = [first]
    seeds = _best_indices(first, first.feasible(), 3) or _best_indices(
        first, np.ones_like(first.feasible()), 1
    )
    for flat in seeds:
        where = np.unravel_index(flat, first.weighted.shape)
        chosen = [lists[a].index(thinned[a][int(i)]) for a, i in enumerate(where)]
        results.extend(_descend(lists, chosen, evaluate))
    return results


def _descend(
    lists: Sequence[Pairs], chosen: list[int], evaluate: Callable[[Grid], _Evaluated]
) -> list[_Evaluated]:
    visited: list[_Evaluated] = []
    current = math.inf
    for _ in range(8):
        improved = False
        for axis in range(len(lists)):
            grid = Grid(
                tuple(lists[a] if a == axis else (lists[a][chosen[a]],) for a in range(len(lists)))
            )
            ev = evaluate(grid)
            visited.append(ev)
            score = np.where(ev.feasible(), ev.weighted, np.inf).ravel()
            j = int(np.argmin(score))
            if score[j] < current * (1 - 1e-9):
                current = float(score[j])
                if j != chosen[axis]:
                    chosen[axis] = j
                    improved = True
        if not improved:
            break
    return visited


def _protected(ctx: _Context) -> list[set[int]]:
    out = []
    for axis, n in enumerate(ctx.array.shape):
        keep = {n}
        keep.update(op.extent[axis] for op in ctx.workload.ops if 1 < op.extent[axis] < n)
        out.append(keep)
    return out


def _explore(ctx: _Context) -> list[_Evaluated]:
    array = ctx.array
    protected = _protected(ctx)
    unsharded_lists = [
        tuple((c, None) for c in chunk_candidates(array, ctx.workload, ctx.constraints, axis))
        for axis in range(array.ndim)
    ]
    evaluated: list[_Evaluated] = []
    for codec in ctx.codecs:

        def evaluate(grid: Grid, codec: CodecSpec = codec) -> _Evaluated:
            return _evaluate(grid, codec, ctx)

        plain = _optimize(unsharded_lists, protected, evaluate, ctx.grid_budget)
        evaluated.extend(plain)
        if not ctx.constraints.shards_allowed:
            continue
        inner: list[list[int]] = [[] for _ in range(array.ndim)]
        for ev in plain:
            inner_ok = ev.masks["chunk_bytes"] & ev.masks.get("blosc_limit", True)
            for flat in _best_indices(ev, inner_ok, _INNER_SEEDS):
                where = np.unravel_index(flat, ev.weighted.shape)
                for axis, i in enumerate(where):
                    value = ev.grid.pairs[axis][int(i)][0]
                    if value not in inner[axis] and len(inner[axis]) < _INNER_PER_DIM:
                        inner[axis].append(value)
        if any(not values for values in inner):
            continue
        sharded_lists = [
            tuple(
                (c, s)
                for c in sorted(inner[axis])
                for s in shard_candidates(array.shape[axis], c, ctx.constraints, axis)
            )
            for axis in range(array.ndim)
        ]
        evaluated.extend(_optimize(sharded_lists, protected, evaluate, ctx.grid_budget))
    return evaluated


class _Table:
    """All evaluated layouts, flattened into one table so selections are global."""

    def __init__(self, evaluated: Sequence[_Evaluated], ctx: _Context) -> None:
        self.evaluated = list(evaluated)
        self.ctx = ctx
        self.weighted = np.concatenate([ev.weighted.ravel() for ev in evaluated])
        self.objects = np.concatenate([ev.objects.ravel() for ev in evaluated]).astype(np.float64)
        self.stored = np.concatenate([ev.stored.ravel() for ev in evaluated]).astype(np.float64)
        names = sorted({name for ev in evaluated for name in ev.masks})
        self.masks = {
            name: np.concatenate(
                [
                    (
                        ev.masks[name]
                        if name in ev.masks
                        else np.ones(ev.weighted.shape, dtype=bool)
                    ).ravel()
                    for ev in evaluated
                ]
            )
            for name in names
        }
        self.sharded = np.concatenate(
            [np.full(ev.weighted.size, ev.grid.sharded) for ev in evaluated]
        )
        self.owner = np.concatenate(
            [np.full(ev.weighted.size, i) for i, ev in enumerate(evaluated)]
        )
        self.flat = np.concatenate([np.arange(ev.weighted.size) for ev in evaluated])

    def feasible(self, skip: str | None = None) -> Array:
        ok = np.ones(self.weighted.shape, dtype=bool)
        for name, mask in self.masks.items():
            if name != skip:
                ok &= mask
        return ok

    def _smallest(self, score: Array, k: int) -> Array:
        finite = np.flatnonzero(np.isfinite(score))
        if finite.size <= k:
            return finite
        return finite[np.argpartition(score[finite], k - 1)[:k]]

    def pool(self, skip: str | None = None, k: int = _POOL_SIZE) -> list[Candidate]:
        """Best feasible layouts (by time, plus the fewest-objects and smallest ones)."""
        ok = self.feasible(skip)
        picks = []
        for family in (self.sharded, ~self.sharded):  # both sides of the sharding trade-off
            mask = ok & family
            picks += [
                self._smallest(np.where(mask, self.weighted, np.inf), k),
                self._smallest(np.where(mask, self.objects, np.inf), 16),
                self._smallest(np.where(mask, self.stored, np.inf), 16),
            ]
        rows = np.concatenate(picks)
        seen: dict[tuple[object, ...], Candidate] = {}
        for row in np.unique(rows):
            cand = _layout_at(self.evaluated[int(self.owner[row])], int(self.flat[row]), self.ctx)
            key = (*cand.key, cand.layout.codec.short)
            if key not in seen or cand.weighted_s < seen[key].weighted_s:
                seen[key] = cand
        return sorted(seen.values(), key=_order_key)

    def best_time(self, skip: str | None = None) -> float:
        score = np.where(self.feasible(skip), self.weighted, np.inf)
        return float(score.min()) if score.size else math.inf


def _order_key(c: Candidate) -> tuple[object, ...]:
    return (
        c.weighted_s,
        c.objects,
        c.stored_bytes,
        c.layout.chunks,
        c.layout.shards or (),
        c.layout.codec.short,
    )


def _rank(pool: Sequence[Candidate], tolerance: float) -> list[Candidate]:
    """Fastest first; layouts within ``tolerance`` of the fastest remaining one are
    ordered by fewer objects, then fewer stored bytes."""
    remaining = list(pool)
    ranked = []
    while remaining:
        fastest = min(c.weighted_s for c in remaining)
        near = [c for c in remaining if c.weighted_s <= fastest * (1 + tolerance)]
        pick = min(near, key=_tie_key)
        ranked.append(pick)
        remaining.remove(pick)
    return ranked


def _bucket(value: float) -> int:
    """Log-scale bucket 5% wide: counts within a few percent compare equal."""
    return round(math.log(max(value, 1.0)) / math.log(1.05))


def _imbalance(c: Candidate) -> float:
    """Aspect ratio of the chunk over the dims it splits: 1 for a cube.

    Among equally fast layouts a balanced chunk serves unmodelled accesses better.
    """
    worst = 1.0
    for unit in (c.layout.chunks, c.layout.write_unit):
        split = [size for size, n in zip(unit, c.shape, strict=True) if size < n]
        if split:
            worst = max(worst, max(split) / min(split))
    return worst


def _tie_key(c: Candidate) -> tuple[object, ...]:
    return (_bucket(c.objects), _imbalance(c), _bucket(c.stored_bytes), *_order_key(c))


def _diverse(ranked: Sequence[Candidate], top: int) -> list[Candidate]:
    """Distinct geometries, codec aside; mirror images (the same chunk and shard sizes on
    dims of equal size, swapped) shown once."""
    out: list[Candidate] = []
    seen: set[tuple[object, ...]] = set()
    for cand in ranked:
        shards = cand.layout.shards or cand.layout.chunks
        mirror = (
            cand.layout.zarr_format,
            cand.layout.shards is None,
            *sorted(zip(cand.shape, cand.layout.chunks, shards, strict=True)),
        )
        if cand.key not in seen and mirror not in seen:
            seen.update((cand.key, mirror))
            out.append(cand)
    chosen = out[:top]
    for sharded in (True, False):  # show both sides of the sharding trade-off when both exist
        if not any((c.layout.shards is not None) == sharded for c in chosen):
            alt = next((c for c in out if (c.layout.shards is not None) == sharded), None)
            if alt is not None and len(chosen) >= 2:
                chosen[-1] = alt
            elif alt is not None and top > 1:
                chosen.append(alt)
    return chosen


def _pareto(pool: Sequence[Candidate], limit: int) -> list[Candidate]:
    front: list[Candidate] = []
    for cand in sorted(pool, key=_order_key):
        if not any(
            f.weighted_s <= cand.weighted_s
            and f.objects <= cand.objects
            and f.stored_bytes <= cand.stored_bytes
            for f in front
        ):
            front.append(cand)
    if len(front) <= limit:
        return front
    step = (len(front) - 1) / (limit - 1)
    return [front[round(i * step)] for i in range(limit)]


_MASK_VALUES: dict[str, Callable[[_Context], str | None]] = {
    "max_objects": lambda ctx: None if ctx.constraints.max_objects is None else str(ctx.constraints.max_objects),
    "object_bytes": lambda ctx: f"{ctx.object_range.describe()}, {ctx.object_range_source}",
    "chunk_bytes": lambda ctx: None if ctx.constraints.chunk_bytes == ByteRange() else ctx.constraints.chunk_bytes.describe(),
    "shard_bytes": lambda ctx: None if ctx.constraints.shard_bytes == ByteRange() else ctx.constraints.shard_bytes.describe(),
    "memory_per_task": lambda ctx: None if ctx.constraints.memory_bytes is None else format_bytes(ctx.constraints.memory_bytes),
    "blosc_limit": lambda ctx: "Blosc compresses at most 2 GiB per chunk",
}  # fmt: skip


def _structural_relaxations(ctx: _Context) -> list[tuple[str, str, Constraints]]:
    c = ctx.constraints
    out = []
    if c.zarr_format == 2:
        out.append(("zarr_format", "2: no shards", replace(c, zarr_format=None)))
    elif not c.allow_shards:
        out.append(("shards", "false", replace(c, allow_shards=True)))
    if c.fixed_chunks:
        fixed = ", ".join(f"{ctx.array.dims[a]}={s}" for a, s in c.fixed_chunks)
        out.append(("fixed_chunks", fixed, replace(c, fixed_chunks=())))
    if c.align:
        dims = ", ".join(ctx.array.dims[a] for a, _ in c.align)
        out.append(("align_with", f"Dask chunks on {dims}", replace(c, align=())))
    return out


def _bindings(table: _Table, best: Candidate, ctx: _Context) -> list[Binding]:
    out = []
    threshold = best.weighted_s * 0.98
    for name, describe in _MASK_VALUES.items():
        value = describe(ctx)
        if value is None or name not in table.masks or table.best_time(skip=name) >= threshold:
            continue
        relaxed = table.pool(skip=name, k=1)
        if relaxed and relaxed[0].weighted_s < threshold:
            out.append(Binding(name, value, relaxed[0], best.weighted_s / relaxed[0].weighted_s))
    for name, value, loosened in _structural_relaxations(ctx):
        other = replace(ctx, constraints=loosened)
        relaxed = _Table(_explore(other), other).pool(k=1)
        if relaxed and relaxed[0].weighted_s < threshold:
            out.append(Binding(name, value, relaxed[0], best.weighted_s / relaxed[0].weighted_s))
    return sorted(out, key=lambda b: -b.speedup)


def _infeasible(table: _Table, ctx: _Context) -> ConstraintError:
    """Name the constraint that excludes every layout, and what would satisfy it."""
    names = [n for n in _MASK_VALUES if _MASK_VALUES[n](ctx) is not None and n in table.masks]
    for name in names:
        relaxed = table.pool(skip=name)
        if relaxed:
            value = _MASK_VALUES[name](ctx)
            if name == "max_objects":
                fewest = min(c.objects for c in relaxed)
                extra = (
                    "" if ctx.constraints.shards_allowed else ", or allow shards (zarr_format: 3)"
                )
                return ConstraintError(
                    f"max_objects={value} cannot be met: the fewest objects any layout allowed by the other "
                    f"constraints makes is {format_count(fewest)}; raise max_objects to at least "
                    f"{format_count(fewest)}{extra}, or allow larger objects."
                )
            return ConstraintError(
                f"constraint {name} ({value}) excludes every layout the other constraints allow "
                f"(the closest is {relaxed[0].layout.label()} with {format_bytes(relaxed[0].object_bytes)} "
                f"per object); widen {name}."
            )
    return ConstraintError(
        "no layout satisfies all constraints together ("
        + ", ".join(f"{n}: {_MASK_VALUES[n](ctx)}" for n in names)
        + "); relax max_objects or the byte ranges."
    )


def search(
    array: ArraySpec,
    workload: Workload,
    storage: StorageProfile,
    constraints: Constraints,
    *,
    codecs: Sequence[CodecSpec],
    codec_profiles: Mapping[CodecSpec, CodecProfile],
    top: int,
    grid_budget: int,
    tie_tolerance: float,
) -> SearchResult:
    """Find the fastest layouts for ``workload`` on ``storage`` within ``constraints``.

    Parameters
    ----------
    array, workload, storage, constraints
        The problem.
    codecs
        Codecs to consider; each is priced with its profile.
    codec_profiles
        Profile per codec.
    top
        Number of recommendations to return.
    grid_budget
        Most layouts priced in one vectorized grid.
    tie_tolerance
        Relative time difference under which fewer objects win, e.g. 0.02.

    Returns
    -------
    SearchResult

    Raises
    ------
    ConstraintError
        When no layout satisfies the constraints; the message names the constraint.
    """
    if constraints.object_bytes is not None:
        object_range, source = constraints.object_bytes, "set in constraints"
    else:
        # No preferred size: only what the store can hold at all (an S3 PUT <= 5 GiB).
        # Small objects are priced by the cost model (requests, latency, dollars).
        object_range = ByteRange(
            min(storage.object_bytes_min, array.nbytes), storage.object_bytes_max
        )
        source = f"what {storage.name} can store in one object"
    ctx = _Context(
        array,
        workload,
        storage,
        constraints,
        object_range,
        source,
        tuple(codecs),
        codec_profiles,
        grid_budget,
    )
    table = _Table(_explore(ctx), ctx)
    pool = table.pool()
    if not pool:
        raise _infeasible(table, ctx)
    ranked = _rank(pool, tie_tolerance)
    recommendations = _diverse(ranked, top)
    bindings = _bindings(table, recommendations[0], ctx)
    return SearchResult(
        ranked=tuple(recommendations),
        pareto=tuple(_pareto(pool, 8)),
        bindings=tuple(bindings),
        evaluated=int(table.weighted.size),
    )
