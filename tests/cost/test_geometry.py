"""Per-dimension access statistics against brute force over every start position.

The oracles below are written plainly from the definitions in the ``DimAccess``
docstring: place a box of ``extent`` elements at each start ``p`` in ``[0, n - extent]``,
list the elements it covers, and count chunks and shards directly. Nothing here uses
the closed forms or the per-period sums of :mod:`chunkwise.cost.geometry`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import astuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chunkwise.cost.geometry import DimAccess, append_access, dim_access, expected_chunks_touched
from chunkwise.testing import dim_cases

FIELDS = DimAccess.__slots__


def counts_for_box(elements: range, chunk: int, shard: int, end: int) -> dict[str, int]:
    """Counts for one box covering ``elements``, from the DimAccess definitions.

    ``end`` is the array's size: like zarr, a chunk counts as complete when the box covers
    it up to the end of the array.
    """
    per_shard = shard // chunk
    touched_chunks = sorted({i // chunk for i in elements})
    covered = set(elements)
    complete = [
        k
        for k in touched_chunks
        if all(j in covered for j in range(k * chunk, min(end, (k + 1) * chunk)))
    ]
    touched_shards = sorted({i // shard for i in elements})
    inner_touched = {s: [k for k in touched_chunks if k // per_shard == s] for s in touched_shards}
    total = [s for s in touched_shards if len(inner_touched[s]) == per_shard]
    return {
        "chunks": len(touched_chunks),
        "complete_chunks": len(complete),
        "shards": len(touched_shards),
        "total_shards": len(total),
        "chunks_in_total": sum(len(inner_touched[s]) for s in total),
        "max_per_shard": max(len(v) for v in inner_touched.values()),
        "elements": sum(min(end, (k + 1) * chunk) - k * chunk for k in touched_chunks),
        "max_if_total": (
            max(len(v) for v in inner_touched.values()) if len(total) == len(touched_shards) else 0
        ),
        "all_total": int(len(total) == len(touched_shards)),
    }


def brute_dim_access(n: int, extent: int, chunk: int, shard: int) -> dict[str, float]:
    """Mean counts over every start position ``p`` in ``[0, n - extent]``."""
    boxes = [range(p, p + extent) for p in range(n - extent + 1)]
    return mean_counts(boxes, chunk, shard, [n] * len(boxes))


def brute_append_access(size: int, chunk: int, shard: int) -> dict[str, float]:
    """Mean counts over every start offset ``0 .. shard - 1`` on an unbounded dim."""
    boxes = [range(o, o + size) for o in range(shard)]
    return mean_counts(boxes, chunk, shard, [box.stop for box in boxes])


def mean_counts(boxes: list[range], chunk: int, shard: int, ends: list[int]) -> dict[str, float]:
    rows = [counts_for_box(box, chunk, shard, end) for box, end in zip(boxes, ends, strict=True)]
    return {f: sum(r[f] for r in rows) / len(rows) for f in FIELDS}


def assert_matches(actual: DimAccess, expected: dict[str, float]) -> None:
    for field in FIELDS:
        assert getattr(actual, field) == pytest.approx(expected[field], rel=1e-12, abs=1e-12), field


# -- one dim against brute force ---------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(dim_cases())
def test_expected_chunks_touched_matches_brute_force(case: tuple[int, int, int, int]) -> None:
    n, extent, chunk, _ = case
    expected = brute_dim_access(n, extent, chunk, chunk)["chunks"]
    assert expected_chunks_touched(n, extent, chunk) == pytest.approx(expected, rel=1e-12)


@settings(max_examples=300, deadline=None)
@given(dim_cases())
def test_dim_access_matches_brute_force(case: tuple[int, int, int, int]) -> None:
    n, extent, chunk, shard = case
    assert_matches(dim_access(n, extent, chunk, shard), brute_dim_access(n, extent, chunk, shard))


@settings(max_examples=150, deadline=None)
@given(dim_cases())
def test_unsharded_dim_access_matches_brute_force(case: tuple[int, int, int, int]) -> None:
    n, extent, chunk, _ = case
    expected = brute_dim_access(n, extent, chunk, chunk)
    actual = dim_access(n, extent, chunk)
    assert_matches(actual, expected)
    # Unsharded, every chunk is its own shard.
    assert actual.shards == pytest.approx(actual.chunks)


@settings(max_examples=200, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=40),
    chunk=st.integers(min_value=1, max_value=12),
    per_shard=st.integers(min_value=1, max_value=6),
)
def test_append_access_matches_brute_force(size: int, chunk: int, per_shard: int) -> None:
    shard = chunk * per_shard
    assert_matches(append_access(size, chunk, shard), brute_append_access(size, chunk, shard))
    assert_matches(append_access(size, chunk), brute_append_access(size, chunk, chunk))


@pytest.mark.parametrize(
    ("n", "extent", "chunk", "shard", "expected"),
    [
        # Hand-checked: 10 elements, chunks of 4 in shards of 8 (2 inner chunks), box of 5.
        # p=0..3 touch chunks {0,1} (shard 0, total; chunk 0 complete at p=0, chunk 1 at
        # p=3); p=4 touches {1,2} (chunk 1 complete), p=5 {1,2} (edge chunk 2 covered to the
        # end of the array, so complete): two partial shards.
        (10, 5, 4, 8, (2.0, 4 / 6, 8 / 6, 4 / 6, 8 / 6, 10 / 6, 44 / 6, 8 / 6, 4 / 6)),
        # A single element: always one chunk, complete only when chunk == 1 or it is the
        # one-element edge chunk at the end of the array (p=6 below).
        (7, 1, 1, 7, (1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0)),
        (7, 1, 3, 3, (1.0, 1 / 7, 1.0, 1.0, 1.0, 1.0, 19 / 7, 1.0, 1.0)),
        # The whole dim: every chunk; only chunks wholly inside [0, n) are complete.
        # (Last three fields: elements of touched chunks, edge chunk at its real length; the
        # longest inner chain where every touched shard is read whole, else 0; the
        # probability that every touched shard is read whole.)
        (12, 12, 4, 4, (3.0, 3.0, 3.0, 3.0, 3.0, 1.0, 12.0, 1.0, 1.0)),
    ],
)
def test_dim_access_hand_checked(
    n: int, extent: int, chunk: int, shard: int, expected: tuple[float, ...]
) -> None:
    assert astuple_access(dim_access(n, extent, chunk, shard)) == pytest.approx(expected)
    assert brute_dim_access(n, extent, chunk, shard) == pytest.approx(
        dict(zip(FIELDS, expected, strict=True))
    )


def astuple_access(access: DimAccess) -> tuple[float, ...]:
    return tuple(getattr(access, f) for f in FIELDS)


def test_dim_access_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="extent"):
        dim_access(10, 11, 2, 2)
    with pytest.raises(ValueError, match="extent"):
        dim_access(10, 0, 2, 2)
    with pytest.raises(ValueError, match="multiple of chunk"):
        dim_access(10, 3, 4, 6)
    with pytest.raises(ValueError, match="extent"):
        expected_chunks_touched(4, 5, 2)
    with pytest.raises(ValueError):
        append_access(3, 4, 6)


# -- bounds and closed forms -------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(dim_cases(max_n=200))
def test_expected_chunks_within_bounds(case: tuple[int, int, int, int]) -> None:
    n, extent, chunk, shard = case
    expected = expected_chunks_touched(n, extent, chunk)
    assert expected <= math.ceil(n / chunk) + 1e-12
    assert expected >= math.ceil(extent / chunk) - 1e-12
    assert expected <= math.ceil(extent / chunk) + 1 + 1e-12
    access = dim_access(n, extent, chunk, shard)
    assert access.shards <= math.ceil(n / shard) + 1e-12
    assert access.shards <= access.chunks + 1e-12
    assert 0 <= access.complete_chunks <= access.chunks + 1e-12
    assert 0 <= access.total_shards <= access.shards + 1e-12
    assert access.chunks_in_total == pytest.approx(access.total_shards * (shard // chunk))
    assert 1 <= access.max_per_shard <= shard // chunk + 1e-12


@settings(max_examples=200, deadline=None)
@given(
    chunk=st.integers(min_value=1, max_value=64),
    extent=st.integers(min_value=1, max_value=300),
    periods=st.integers(min_value=1, max_value=20),
)
def test_expected_chunks_exact_over_full_periods(chunk: int, extent: int, periods: int) -> None:
    # Start positions covering whole periods of the chunk grid: exactly 1 + (extent-1)/chunk.
    n = extent - 1 + periods * chunk
    assert expected_chunks_touched(n, extent, chunk) == pytest.approx(
        1 + (extent - 1) / chunk, rel=1e-12
    )


@settings(max_examples=200, deadline=None)
@given(
    chunk=st.integers(min_value=1, max_value=64),
    chunks_in_dim=st.integers(min_value=1, max_value=40),
    data=st.data(),
)
def test_expected_chunks_close_to_closed_form(
    chunk: int, chunks_in_dim: int, data: st.DataObject
) -> None:
    n = chunk * chunks_in_dim
    extent = data.draw(st.integers(min_value=1, max_value=n), label="extent")
    positions = n - extent + 1
    approx = 1 + (extent - 1) / chunk
    expected = expected_chunks_touched(n, extent, chunk)
    # Whole periods of start positions average exactly; each of the (positions mod chunk)
    # leftover positions is off by less than one chunk.
    assert abs(expected - approx) <= (positions % chunk) / positions + 1e-12
    # With n a multiple of chunk, positions near the end are missing: never above the form.
    assert expected <= approx + 1e-12


# -- several dims: counts multiply ---------------------------------------------------------


@st.composite
def nd_cases(draw: st.DrawFn) -> tuple[tuple[int, ...], ...]:
    """(shape, extent, chunks, shards) for a small 2-D or 3-D box."""
    ndim = draw(st.integers(min_value=2, max_value=3))
    side = 9 if ndim == 2 else 6
    shape, extent, chunks, shards = [], [], [], []
    for _ in range(ndim):
        n, e, c, s = draw(dim_cases(max_n=side))
        shape.append(n)
        extent.append(e)
        chunks.append(c)
        shards.append(s)
    return tuple(shape), tuple(extent), tuple(chunks), tuple(shards)


def brute_nd(
    shape: tuple[int, ...],
    extent: tuple[int, ...],
    chunks: tuple[int, ...],
    shards: tuple[int, ...],
) -> dict[str, float]:
    """Mean N-D counts over every placement of the box, counting elements directly."""
    grid = np.indices(shape)
    chunk_id = np.ravel_multi_index(
        [grid[a] // chunks[a] for a in range(len(shape))],
        [math.ceil(n / c) for n, c in zip(shape, chunks, strict=True)],
    )
    shard_id = np.ravel_multi_index(
        [grid[a] // shards[a] for a in range(len(shape))],
        [math.ceil(n / s) for n, s in zip(shape, shards, strict=True)],
    )
    per_shard = math.prod(s // c for s, c in zip(shards, chunks, strict=True))
    rows = []
    starts = itertools.product(*(range(n - e + 1) for n, e in zip(shape, extent, strict=True)))
    for start in starts:
        box = tuple(slice(p, p + e) for p, e in zip(start, extent, strict=True))
        pairs = set(
            zip(shard_id[box].ravel().tolist(), chunk_id[box].ravel().tolist(), strict=True)
        )
        inner: dict[int, set[int]] = {}
        for s, c in pairs:
            inner.setdefault(s, set()).add(c)
        total = [s for s, cs in inner.items() if len(cs) == per_shard]
        rows.append(
            (
                len({c for _, c in pairs}),
                len(inner),
                len(total),
                sum(len(inner[s]) for s in total),
                max(len(cs) for cs in inner.values()),
            )
        )
    return dict(
        zip(
            ("chunks", "shards", "total_shards", "chunks_in_total", "max_per_shard"),
            np.mean(np.asarray(rows, dtype=np.float64), axis=0).tolist(),
            strict=True,
        )
    )


@settings(max_examples=60, deadline=None)
@given(nd_cases())
def test_products_of_dim_access_match_nd_brute_force(
    case: tuple[tuple[int, ...], ...],
) -> None:
    shape, extent, chunks, shards = case
    per_dim = [
        dim_access(n, e, c, s) for n, e, c, s in zip(shape, extent, chunks, shards, strict=True)
    ]
    expected = brute_nd(shape, extent, chunks, shards)
    for field, value in expected.items():
        product = math.prod(getattr(d, field) for d in per_dim)
        assert product == pytest.approx(value, rel=1e-9), field


def test_nd_brute_force_hand_checked() -> None:
    # 4x4 array, 2x2 chunks, a 3x3 box: 4 placements, each touching all 4 chunks.
    assert brute_nd((4, 4), (3, 3), (2, 2), (2, 2))["chunks"] == 4.0
    # 2x2 box: placements at (0|1|2)^2; chunks touched 1 at even-even starts, 2 or 4 else.
    expected = np.mean([[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    assert brute_nd((4, 4), (2, 2), (2, 2), (2, 2))["chunks"] == pytest.approx(expected)
    assert math.prod(d.chunks for d in [dim_access(4, 2, 2, 2)] * 2) == pytest.approx(expected)


def test_astuple_helper_agrees_with_dataclass() -> None:
    access = dim_access(10, 5, 4, 8)
    assert astuple_access(access) == astuple(access)


def test_edge_chunk_covered_to_the_array_end_is_complete() -> None:
    # zarr.core.indexing.SliceDimIndexer marks chunk k complete when the selection covers
    # [k * chunk, min(n, (k + 1) * chunk)); a whole-array write of 10 elements in chunks of
    # 4 therefore reads no chunk. DimAccess.complete_chunks says 2 of the 3 are complete.
    assert dim_access(10, 10, 4).complete_chunks == 3.0
