"""Inferring a workload from observed selections, and the chunk heatmap, against oracles."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chunkwise.errors import SpecError
from chunkwise.model.array import ArraySpec
from chunkwise.model.workload import Workload
from chunkwise.plan.infer import (
    Access,
    chunk_heatmap,
    classify_read,
    infer_workload,
    merge_batches,
)

SPAN = 0.9
SETTINGS = settings(max_examples=150, deadline=None)

shapes = st.lists(st.integers(1, 12), min_size=1, max_size=4).map(tuple)


@st.composite
def box_in(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    box = []
    for n in shape:
        start = draw(st.integers(0, n - 1))
        box.append((start, draw(st.integers(start + 1, n))))
    return tuple(box)


@st.composite
def shape_and_reads(draw: st.DrawFn) -> tuple[tuple[int, ...], list[Access]]:
    shape = draw(shapes)
    boxes = draw(st.lists(box_in(shape), min_size=1, max_size=25))
    points = draw(st.lists(st.integers(0, 3), min_size=len(boxes), max_size=len(boxes)))
    return shape, [Access(b, p) for b, p in zip(boxes, points, strict=True)]


def oracle_kind(access: Access, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """The classification rule, spelt out on element index sets."""
    covered = [set(range(a, b)) for a, b in access.box]
    if access.points:
        return "point", ()
    big = [i for i, n in enumerate(shape) if n > 1]
    whole = tuple(i for i in big if len(covered[i]) >= math.ceil(SPAN * shape[i]))
    single = [i for i in big if len(covered[i]) == 1]
    if len(whole) == len(big):
        return "scan", ()
    if len(single) == len(big):
        return "point", ()
    if sorted(set(whole) | set(single)) == big:
        return ("series" if len(whole) == 1 else "plane"), whole
    return "region", ()


def dims_of(shape: tuple[int, ...]) -> tuple[str, ...]:
    return tuple(f"d{i}" for i in range(len(shape)))


@SETTINGS
@given(shape_and_reads())
def test_classifier_matches_the_oracle(case: tuple[tuple[int, ...], list[Access]]) -> None:
    shape, reads = case
    for access in reads:
        found = classify_read(access, shape, span_fraction=SPAN)
        assert found is not None
        assert (found.kind, found.axes) == oracle_kind(access, shape)
        assert all(1 <= e <= n for e, n in zip(found.extent, shape, strict=True))


@SETTINGS
@given(shape_and_reads(), st.randoms(use_true_random=False))
def test_inferred_workload_invariants(
    case: tuple[tuple[int, ...], list[Access]], rnd: random.Random
) -> None:
    shape, reads = case
    dims = dims_of(shape)
    inferred = infer_workload(reads, shape=shape, dtype="float32", dims=dims, span_fraction=SPAN)
    # Weights are fractions of reads: they sum to 1 and count every read once.
    assert math.isclose(sum(op.weight for op in inferred.ops), 1.0)
    assert sum(op.observed for op in inferred.ops) == len(reads) == inferred.reads
    for op in inferred.ops:
        assert op.weight == pytest.approx(op.observed / len(reads))
    # Every kind the oracle sees is an op, with the oracle's dims, and nothing else.
    expected = {oracle_kind(a, shape) for a in reads}
    kinds = {(op.kind, tuple(dims.index(d) for d in op.dims)) for op in inferred.ops}
    assert {k for k in expected if k[0] != "region"} == {k for k in kinds if k[0] != "region"}
    assert any(k[0] == "region" for k in expected) == any(k[0] == "region" for k in kinds)
    # The order of the reads does not matter.
    shuffled = reads[:]
    rnd.shuffle(shuffled)
    again = infer_workload(shuffled, shape=shape, dtype="float32", dims=dims, span_fraction=SPAN)
    assert again == inferred
    # advise's spec parser accepts the result as is.
    spec = inferred.to_spec()
    array = ArraySpec.create(**spec["array"])
    workload = Workload.from_spec(spec["workload"], array)
    assert len(workload.ops) == len(inferred.ops)
    assert [op.kind for op in workload.ops] == [op.kind for op in inferred.ops]


@SETTINGS
@given(
    shape=st.lists(st.integers(2, 10), min_size=3, max_size=4).map(tuple),
    data=st.data(),
)
def test_plane_boxes_are_found_as_planes(shape: tuple[int, ...], data: st.DataObject) -> None:
    axes = tuple(sorted(data.draw(st.sets(st.integers(0, len(shape) - 1), min_size=2, max_size=2))))
    reads = []
    for _ in range(data.draw(st.integers(1, 6))):
        box = []
        for i, n in enumerate(shape):
            if i in axes:
                box.append((0, n))
            else:
                index = data.draw(st.integers(0, n - 1))
                box.append((index, index + 1))
        reads.append(Access(tuple(box)))
    inferred = infer_workload(
        reads, shape=shape, dtype="uint16", dims=dims_of(shape), span_fraction=SPAN
    )
    (op,) = inferred.ops
    assert op.kind == "plane" and op.dims == tuple(f"d{i}" for i in axes) and op.weight == 1.0


def test_mixed_reads_give_weights_by_count_and_median_region_extent() -> None:
    shape = (10, 100, 200)
    reads = [Access(((z, z + 1), (0, 100), (0, 200))) for z in range(6)]
    reads += [Access(((0, 10), (5, 6), (7, 8)))] * 2
    reads += [
        Access(((0, 4), (0, 30), (10, 40))),
        Access(((2, 8), (10, 50), (0, 20))),
        Access(((1, 3), (0, 64), (0, 64))),
    ]
    reads += [Access(((1, 3), (2, 9), (4, 5)), points=5)]
    inferred = infer_workload(
        reads, shape=shape, dtype="float32", dims=("t", "y", "x"), span_fraction=SPAN
    )
    spec = inferred.to_spec()["workload"]
    assert spec[0] == {"op": "plane", "dims": ["y", "x"], "weight": 6 / 12}
    assert spec[1] == {"op": "region", "extent": {"t": 4, "y": 40, "x": 30}, "weight": 3 / 12}
    assert spec[2] == {"op": "series", "dim": "t", "weight": 2 / 12}
    assert spec[3] == {"op": "point", "count": 5, "weight": 1 / 12}
    assert inferred.describe()[0] == "50% planes across y, x (6 observed)"


def test_scans_cropped_planes_and_writes() -> None:
    shape = (20, 100, 100)
    reads = [
        Access(((0, 20), (0, 100), (0, 100))),
        Access(((3, 4), (2, 98), (1, 99))),  # 96% of each dim: still a plane
    ]
    writes = [
        Access(((0, 20), (0, 100), (0, 100))),  # the whole array
        Access(((20 - 2, 20), (0, 100), (0, 100))),  # a slab along t
        Access(((0, 5), (0, 5), (0, 100))),  # a partial write no op describes
    ]
    inferred = infer_workload(
        reads, shape=shape, dtype="float32", dims=("t", "y", "x"), span_fraction=SPAN,
        writes=writes,
    )  # fmt: skip
    kinds = {op.kind: op for op in inferred.ops}
    assert set(kinds) == {"scan", "plane", "write", "append"}
    assert kinds["append"].dims == ("t",) and kinds["append"].count == 2
    assert (inferred.reads, inferred.writes, inferred.unmodelled_writes) == (2, 2, 1)
    assert math.isclose(sum(op.weight for op in inferred.ops), 1.0)


def test_nothing_to_infer_is_one_clear_sentence() -> None:
    with pytest.raises(SpecError, match=r"no reads .* \(4, 5\) array were recorded"):
        infer_workload([], shape=(4, 5), dtype="float32", dims=("y", "x"), span_fraction=SPAN)
    empty = Access(((2, 2), (0, 5)))
    with pytest.raises(SpecError, match="trace a program that reads it"):
        infer_workload([empty], shape=(4, 5), dtype="float32", dims=("y", "x"), span_fraction=SPAN)
    with pytest.raises(SpecError, match=r"span_fraction 1.5 must be in \(0, 1\]"):
        infer_workload([], shape=(4,), dtype="float32", dims=("x",), span_fraction=1.5)


# -- heatmap ---------------------------------------------------------------------------------


@st.composite
def heatmap_case(
    draw: st.DrawFn,
) -> tuple[tuple[int, ...], tuple[int, ...], list[Access]]:
    shape = draw(st.lists(st.integers(1, 9), min_size=1, max_size=4).map(tuple))
    chunks = tuple(draw(st.integers(1, n)) for n in shape)
    boxes = draw(st.lists(box_in(shape), min_size=0, max_size=12))
    return shape, chunks, [Access(b) for b in boxes]


def brute_force_counts(
    shape: tuple[int, ...], chunks: tuple[int, ...], reads: list[Access]
) -> np.ndarray:
    """Reads per chunk of the full grid, one chunk at a time."""
    grid = tuple(-(-n // c) for n, c in zip(shape, chunks, strict=True))
    counts = np.zeros(grid, dtype=np.int64)
    for access in reads:
        for index in itertools.product(*(range(g) for g in grid)):
            if all(
                a < min((i + 1) * c, n) and b > i * c
                for (a, b), i, c, n in zip(access.box, index, chunks, shape, strict=True)
            ):
                counts[index] += 1
    return counts


@SETTINGS
@given(heatmap_case())
def test_heatmap_matches_brute_force(
    case: tuple[tuple[int, ...], tuple[int, ...], list[Access]],
) -> None:
    shape, chunks, reads = case
    heatmap = chunk_heatmap(reads, shape=shape, chunks=chunks)
    full = brute_force_counts(shape, chunks, reads)
    others = tuple(a for a in range(len(shape)) if a not in heatmap.axes)
    projected = full.sum(axis=others) if others else full
    if len(shape) == 1:
        projected = projected[np.newaxis, :]
    np.testing.assert_array_equal(heatmap.counts, projected)
    assert heatmap.chunk_reads == int(full.sum())
    # The axes shown are those with the most distinct chunk indices read.
    distinct = [
        int(np.count_nonzero(full.sum(axis=tuple(b for b in range(len(shape)) if b != a))))
        for a in range(len(shape))
    ]
    shown = sorted((distinct[a] for a in heatmap.axes), reverse=True)
    assert shown == sorted(distinct, reverse=True)[: len(heatmap.axes)]


# -- Dask computations: chunk-sized pieces of one selection ----------------------------------


@st.composite
def tiled_box(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[tuple[int, int], ...], list[Access]]:
    """A box of an array, cut into a grid of pieces the way a Dask chunking cuts it."""
    shape = draw(st.lists(st.integers(1, 12), min_size=1, max_size=3).map(tuple))
    box = draw(box_in(shape))
    cuts = []
    for start, stop in box:
        inner = (
            draw(st.sets(st.integers(start + 1, stop - 1), max_size=3))
            if stop - start > 1
            else set()
        )
        edges = [start, *sorted(inner), stop]
        cuts.append(list(itertools.pairwise(edges)))
    pieces = [Access(tuple(cell), batch=7) for cell in itertools.product(*cuts)]
    return shape, box, draw(st.permutations(pieces))


@SETTINGS
@given(tiled_box())
def test_pieces_of_one_dask_computation_join_into_their_box(
    case: tuple[tuple[int, ...], tuple[tuple[int, int], ...], list[Access]],
) -> None:
    _, box, pieces = case
    before = Access(box)  # outside any computation: kept as is
    merged = merge_batches([before, *pieces])
    assert merged == [before, Access(box, batch=7)]
    if len(pieces) >= 3:
        # Without a piece from the middle there is a hole: nothing is joined.
        middle = sorted(pieces, key=lambda p: p.box)[len(pieces) // 2]
        holed = [p for p in pieces if p != middle]
        assert merge_batches(holed) == holed


def test_separate_selections_in_one_computation_stay_separate() -> None:
    # Two time series computed together (xr.concat(...).load()): not one box.
    pieces = [
        Access(((0, 50), (3, 4), (5, 6)), batch=1),
        Access(((50, 100), (3, 4), (5, 6)), batch=1),
        Access(((0, 50), (8, 9), (1, 2)), batch=1),
        Access(((50, 100), (8, 9), (1, 2)), batch=1),
    ]
    assert merge_batches(pieces) == pieces
    one = infer_workload(
        pieces[:2], shape=(100, 10, 10), dtype="float32", dims=("t", "y", "x"), span_fraction=SPAN
    )
    assert one.to_spec()["workload"] == [{"op": "series", "dim": "t", "weight": 1.0}]
