"""Properties of the recommendation search over small random problems.

Each recommended layout is checked independently of the search: it is rebuilt with
``Layout.create``, every constraint is re-checked from the layout's own geometry, and
its predicted time is recomputed with the single-layout pricing ``estimate_layout``
(the search prices whole grids at once, vectorized).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from chunkwise.cost.geometry import dim_access
from chunkwise.cost.model import CostInputs, Grid, estimate_layout, op_cost
from chunkwise.errors import ConstraintError
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import default_codec_profile, parse_codec
from chunkwise.model.constraints import ByteRange, Constraints
from chunkwise.model.layout import Layout, ceil_div
from chunkwise.model.storage import READER_PRESETS, STORAGE_PRESETS, StorageProfile
from chunkwise.model.workload import Workload
from chunkwise.plan.candidates import chunk_candidates
from chunkwise.plan.search import SearchResult, search
from chunkwise.spec import parse_storage
from chunkwise.testing import array_specs, layouts

CODEC = parse_codec("blosc:zstd:5:shuffle")
PROFILE = default_codec_profile(CODEC)
TOP = 5
TOLERANCE = 0.02
SEARCH_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def run_search(
    array: ArraySpec, workload: Workload, storage: StorageProfile, constraints: Constraints
) -> SearchResult:
    return search(
        array,
        workload,
        storage,
        constraints,
        codecs=[CODEC],
        codec_profiles={CODEC: PROFILE},
        top=TOP,
        grid_budget=20_000,
        tie_tolerance=TOLERANCE,
    )


# -- random problems ------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    array: ArraySpec
    workload: Workload
    storage: StorageProfile
    raw_constraints: dict[str, Any]
    constraints: Constraints


ALL_KINDS = ("region", "plane", "series", "scan", "point", "append", "write")
READ_KINDS = ("region", "plane", "series", "scan", "point")


@st.composite
def workload_entries(
    draw: st.DrawFn, array: ArraySpec, kinds: tuple[str, ...] = ALL_KINDS
) -> list[dict[str, Any]]:
    dims = list(array.dims)
    entries: list[dict[str, Any]] = []
    for i in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(kinds))
        # The first operation always carries weight, so the weights never sum to 0.
        weight = draw(st.integers(min_value=1 if i == 0 else 0, max_value=4))
        entry: dict[str, Any] = {"op": kind, "weight": weight}
        if kind == "region":
            chosen = draw(st.lists(st.sampled_from(dims), min_size=1, unique=True))
            entry["extent"] = {
                d: draw(st.integers(min_value=1, max_value=array.shape[array.axis(d)]))
                for d in chosen
            }
        elif kind == "plane":
            entry["dims"] = draw(
                st.lists(st.sampled_from(dims), min_size=1, max_size=2, unique=True)
            )
        elif kind == "series":
            entry["dim"] = draw(st.sampled_from(dims))
        elif kind == "point":
            entry["count"] = draw(st.integers(min_value=1, max_value=50))
        elif kind == "append":
            entry["dim"] = draw(st.sampled_from(dims))
            entry["size"] = draw(st.integers(min_value=1, max_value=10))
        entries.append(entry)
    return entries


def byte_ranges(low: int, high: int) -> st.SearchStrategy[dict[str, int]]:
    bounds = st.integers(min_value=low, max_value=high)
    return st.one_of(
        st.tuples(bounds, bounds).map(lambda b: {"min": min(b), "max": max(b)}),
        bounds.map(lambda b: {"min": b}),
        bounds.map(lambda b: {"max": b}),
    )


@st.composite
def problems(draw: st.DrawFn, max_ndim: int = 4, max_side: int = 24) -> Problem:
    array = draw(array_specs(max_ndim=max_ndim, max_side=max_side))
    workload = Workload.from_spec(draw(workload_entries(array)), array)
    storage = STORAGE_PRESETS[draw(st.sampled_from(sorted(STORAGE_PRESETS)))]
    storage = storage.with_reader(READER_PRESETS[draw(st.sampled_from(sorted(READER_PRESETS)))])
    nbytes = array.nbytes
    raw: dict[str, Any] = {}
    fmt = draw(st.sampled_from([None, 3, 2]))
    if fmt is not None:
        raw["zarr_format"] = fmt
    if draw(st.booleans()):
        raw["shards"] = draw(st.booleans())
    # Each optional constraint is present about a quarter of the time, so that most
    # problems stay feasible. Without object_bytes the storage default applies.
    optional = {
        "object_bytes": st.one_of(st.just({"min": 0}), byte_ranges(0, nbytes)),
        "max_objects": st.integers(min_value=1, max_value=300),
        "chunk_bytes": byte_ranges(0, nbytes),
        "shard_bytes": byte_ranges(0, nbytes),
        "memory": st.integers(min_value=1, max_value=2 * nbytes),
    }
    for key, values in optional.items():
        if draw(st.integers(min_value=0, max_value=3)) == 1:
            raw[key] = draw(values)
    fixed = []
    if draw(st.integers(min_value=0, max_value=2)) == 1:
        fixed = draw(st.lists(st.sampled_from(array.dims), unique=True, min_size=1, max_size=2))
        raw["fixed_chunks"] = {
            d: draw(st.integers(min_value=1, max_value=array.shape[array.axis(d)])) for d in fixed
        }
    shards_allowed = raw.get("shards", True) and fmt != 2
    free = [d for d in array.dims if d not in fixed]
    if not shards_allowed and free and draw(st.booleans()):
        # Alignment with Dask chunks, on a dim whose chunk is not fixed (see the known-bug
        # tests at the end for alignment with shards allowed, and against a fixed chunk).
        d = draw(st.sampled_from(free))
        raw["align_with"] = {
            d: draw(st.integers(min_value=1, max_value=array.shape[array.axis(d)]))
        }
    constraints = Constraints.from_spec(raw, array)
    return Problem(array, workload, storage, raw, constraints)


# -- independent checks --------------------------------------------------------------------


def object_range(problem: Problem) -> ByteRange:
    """The object size range in force: the constraint, else the storage's efficient range
    (whose minimum never exceeds the whole array, which always fits in one object)."""
    if problem.constraints.object_bytes is not None:
        return problem.constraints.object_bytes
    storage = problem.storage
    return ByteRange(min(storage.object_bytes_min, problem.array.nbytes), storage.object_bytes_max)


def check_layout(problem: Problem, layout: Layout) -> None:
    """The layout is valid and satisfies every constraint, checked from its geometry."""
    array, c = problem.array, problem.constraints
    rebuilt = Layout.create(
        array,
        list(layout.chunks),
        shards=None if layout.shards is None else list(layout.shards),
        codec=layout.codec,
        zarr_format=layout.zarr_format,
    )
    assert rebuilt == layout
    for axis, (chunk, n) in enumerate(zip(layout.chunks, array.shape, strict=True)):
        assert 1 <= chunk <= n
        if layout.shards is not None:
            shard = layout.shards[axis]
            assert shard % chunk == 0
            assert chunk <= shard <= ceil_div(n, chunk) * chunk
    assert layout.zarr_format == (c.zarr_format or 3)
    if layout.zarr_format == 2 or not c.allow_shards:
        assert layout.shards is None
    # max_objects counts data objects plus metadata objects.
    unit = layout.write_unit
    data_objects = math.prod(ceil_div(n, u) for n, u in zip(array.shape, unit, strict=True))
    assert layout.data_objects(array) == data_objects
    if c.max_objects is not None:
        assert data_objects + layout.metadata_objects() <= c.max_objects
    chunk_bytes = math.prod(layout.chunks) * array.itemsize
    object_bytes = math.prod(unit) * array.itemsize
    assert c.chunk_bytes.contains(chunk_bytes), (chunk_bytes, c.chunk_bytes)
    assert object_range(problem).contains(object_bytes), (object_bytes, object_range(problem))
    if layout.shards is not None:
        assert c.shard_bytes.contains(object_bytes), (object_bytes, c.shard_bytes)
    if c.memory_bytes is not None:
        assert object_bytes * (1 + 1 / PROFILE.ratio) <= c.memory_bytes
    for axis, size in c.fixed_chunks:
        assert layout.chunks[axis] == size
    for axis, bounds in c.align:
        # Every Dask boundary is a boundary of the write unit (or one object spans the dim).
        u = unit[axis]
        assert u >= array.shape[axis] or all(b % u == 0 for b in bounds), (unit, bounds)


def check_result(problem: Problem, result: SearchResult) -> None:
    ranked = result.ranked
    assert 1 <= len(ranked) <= TOP
    assert len({cand.key for cand in ranked}) == len(ranked)
    inputs = CostInputs(problem.array, problem.storage, CODEC, PROFILE)
    for cand in ranked:
        layout = cand.layout
        check_layout(problem, layout)
        assert cand.chunk_bytes == layout.chunk_bytes(problem.array)
        assert cand.object_bytes == layout.object_bytes(problem.array)
        assert cand.objects == layout.data_objects(problem.array) + layout.metadata_objects()
        # The vectorized grid pricing agrees with single-layout pricing.
        single = estimate_layout(layout, problem.workload, inputs)
        assert cand.weighted_s == pytest.approx(single.weighted_s, rel=1e-9)
        assert cand.objects == single.objects
        assert cand.stored_bytes == pytest.approx(single.stored_bytes, rel=1e-9)
        assert single.weighted_s > 0
    # The first recommendation is within the tie tolerance of the fastest one shown.
    assert ranked[0].weighted_s <= min(c.weighted_s for c in ranked) * (1 + TOLERANCE) * (1 + 1e-12)
    for binding in result.bindings:
        assert binding.relaxed.weighted_s < ranked[0].weighted_s
        assert binding.speedup == pytest.approx(ranked[0].weighted_s / binding.relaxed.weighted_s)
    for cand in result.pareto:
        check_layout(problem, cand.layout)


KNOWN_CONSTRAINT_WORDS = (
    "max_objects",
    "chunk_bytes",
    "shard_bytes",
    "object_bytes",
    "memory_per_task",
    "blosc_limit",
    "no layout satisfies all constraints",
)


@SEARCH_SETTINGS
@given(problems())
def test_recommendations_are_valid_feasible_and_priced_consistently(problem: Problem) -> None:
    try:
        result = run_search(problem.array, problem.workload, problem.storage, problem.constraints)
    except ConstraintError as exc:
        event("infeasible")
        event(f"infeasible: {str(exc).split(' ')[0:2]}")
        assert any(word in str(exc) for word in KNOWN_CONSTRAINT_WORDS), str(exc)
        return
    event("feasible")
    event(f"sharded first: {result.ranked[0].layout.shards is not None}")
    check_result(problem, result)


@SEARCH_SETTINGS
@given(problems(max_ndim=3))
def test_search_is_deterministic(problem: Problem) -> None:
    try:
        first = run_search(problem.array, problem.workload, problem.storage, problem.constraints)
    except ConstraintError as exc:
        dim_access.cache_clear()
        with pytest.raises(ConstraintError) as again:
            run_search(problem.array, problem.workload, problem.storage, problem.constraints)
        assert str(again.value) == str(exc)
        return
    dim_access.cache_clear()  # recompute the geometry rather than reuse cached values
    second = run_search(problem.array, problem.workload, problem.storage, problem.constraints)
    assert second.ranked == first.ranked
    assert second.pareto == first.pareto
    assert second.bindings == first.bindings
    assert second.evaluated == first.evaluated


@SEARCH_SETTINGS
@given(problems(max_ndim=2, max_side=16))
def test_first_recommendation_is_near_the_best_candidate_layout(problem: Problem) -> None:
    """Brute force over every unsharded layout of the candidate chunk sizes."""
    array, c = problem.array, problem.constraints
    lists = [chunk_candidates(array, problem.workload, c, axis) for axis in range(array.ndim)]
    inputs = CostInputs(array, problem.storage, CODEC, PROFILE)
    best = math.inf
    for chunks in itertools.product(*lists):
        layout = Layout.create(array, chunks, codec=CODEC, zarr_format=c.zarr_format or 3)
        try:
            check_layout(problem, layout)
        except AssertionError:
            continue
        best = min(best, estimate_layout(layout, problem.workload, inputs).weighted_s)
    try:
        result = run_search(array, problem.workload, problem.storage, c)
    except ConstraintError:
        # Nothing the search could build fits; neither may any unsharded candidate.
        assert best == math.inf
        return
    if best < math.inf:
        assert result.ranked[0].weighted_s <= best * (1 + TOLERANCE) * (1 + 1e-9)


REALISTIC = [
    ([256, 256], [{"op": "region", "extent": {"dim_0": 16, "dim_1": 16}}], "s3"),
    (
        [256, 256],
        [{"op": "plane", "dims": ["dim_1"]}, {"op": "series", "dim": "dim_0"}],
        "local-ssd",
    ),
    (
        [1000, 200],
        [{"op": "series", "dim": "dim_0"}, {"op": "plane", "dims": ["dim_1"], "weight": 3}],
        "s3",
    ),
    ([512, 512], [{"op": "point", "count": 20}], "hpc"),
    (
        [365, 720],
        [{"op": "region", "extent": {"dim_0": 30, "dim_1": 50}}, {"op": "scan", "weight": 0.1}],
        "gcs",
    ),
    ([4096], [{"op": "region", "extent": {"dim_0": 100}}], "http"),
]


@pytest.mark.parametrize(("shape", "entries", "storage_name"), REALISTIC)
def test_first_recommendation_is_near_the_best_on_realistic_problems(
    shape: list[int], entries: list[dict[str, Any]], storage_name: str
) -> None:
    """Unsharded (format 2): the answer is within the tie tolerance of the brute-force best."""
    array = ArraySpec.create(shape, "float32")
    workload = Workload.from_spec(entries, array)
    constraints = Constraints.from_spec({"object_bytes": {"min": 0}, "zarr_format": 2}, array)
    storage = STORAGE_PRESETS[storage_name]
    inputs = CostInputs(array, storage, CODEC, PROFILE)
    lists = [chunk_candidates(array, workload, constraints, a) for a in range(array.ndim)]
    best = min(
        estimate_layout(
            Layout.create(array, chunks, codec=CODEC, zarr_format=2), workload, inputs
        ).weighted_s
        for chunks in itertools.product(*lists)
    )
    result = run_search(array, workload, storage, constraints)
    assert best <= result.ranked[0].weighted_s <= best * (1 + TOLERANCE) * (1 + 1e-9)


SQUARE = ArraySpec.create([256, 256], "float32", ["y", "x"])


def test_small_chunks_in_large_objects_need_shards() -> None:
    # Chunks of at most 4 KiB, objects of at least 64 KiB: only sharded layouts qualify.
    raw = {"chunk_bytes": {"max": "4KiB"}, "object_bytes": {"min": "64KiB"}}
    constraints = Constraints.from_spec(raw, SQUARE)
    workload = Workload.from_spec([{"op": "region", "extent": {"y": 10, "x": 10}}], SQUARE)
    storage = STORAGE_PRESETS["s3"]
    result = run_search(SQUARE, workload, storage, constraints)
    problem = Problem(SQUARE, workload, storage, raw, constraints)
    for cand in result.ranked:
        assert cand.layout.shards is not None
        check_layout(problem, cand.layout)


@pytest.mark.parametrize("storage_name", ["s3", "local-ssd", "hpc"])
def test_object_bytes_bounds_the_shard_not_the_chunk(storage_name: str) -> None:
    raw = {"object_bytes": {"min": 0, "max": "16KiB"}, "zarr_format": 3}
    constraints = Constraints.from_spec(raw, SQUARE)
    workload = Workload.from_spec([{"op": "scan"}, {"op": "plane", "dims": ["x"]}], SQUARE)
    storage = STORAGE_PRESETS[storage_name]
    result = run_search(SQUARE, workload, storage, constraints)
    problem = Problem(SQUARE, workload, storage, raw, constraints)
    # Sharded layouts are in the running (format 3); none may exceed 16 KiB per shard.
    for cand in result.ranked + result.pareto:
        check_layout(problem, cand.layout)


# -- infeasible constraints ------------------------------------------------------------------

CUBE = ArraySpec.create([100, 100], "float32", ["y", "x"])
CUBE_WORK = Workload.from_spec([{"op": "plane", "dims": ["y", "x"]}], CUBE)
SSD = STORAGE_PRESETS["local-ssd"]


def test_max_objects_infeasible_names_max_objects() -> None:
    constraints = Constraints.from_spec(
        {"max_objects": 1, "object_bytes": {"min": 0, "max": "1KiB"}}, CUBE
    )
    with pytest.raises(
        ConstraintError,
        match=r"max_objects=1 cannot be met: the fewest objects .* raise max_objects to at least",
    ):
        run_search(CUBE, CUBE_WORK, SSD, constraints)


def test_max_objects_infeasible_suggests_shards_when_they_are_off() -> None:
    constraints = Constraints.from_spec(
        {"max_objects": 3, "object_bytes": {"max": "4KiB"}, "zarr_format": 2}, CUBE
    )
    with pytest.raises(ConstraintError, match=r"max_objects=3 .* or allow shards"):
        run_search(CUBE, CUBE_WORK, SSD, constraints)


def test_chunk_bytes_infeasible_names_chunk_bytes() -> None:
    # The whole array is 40 000 bytes: no chunk can reach 1 MiB.
    constraints = Constraints.from_spec({"chunk_bytes": {"min": "1MiB"}}, CUBE)
    with pytest.raises(ConstraintError, match=r"constraint chunk_bytes \(1 MiB\.\.∞\)"):
        run_search(CUBE, CUBE_WORK, SSD, constraints)


def test_storage_object_range_infeasible_says_where_it_came_from() -> None:
    # The user says this S3 endpoint holds objects of 1 MiB and more (here: the whole
    # 40 kB array); unsharded chunks of at most 1 KiB cannot make one.
    storage = parse_storage({"preset": "s3", "object_bytes": {"min": "1MiB"}})
    constraints = Constraints.from_spec({"chunk_bytes": {"max": "1KiB"}, "shards": False}, CUBE)
    with pytest.raises(
        ConstraintError, match=r"object_bytes .*what s3 can store in one object.*widen object_bytes"
    ):
        run_search(CUBE, CUBE_WORK, storage, constraints)


def test_tiny_array_is_one_object_by_the_model_alone() -> None:
    """No size floor puts a tiny array in one object on S3: every extra object is one
    more request, which the model prices."""
    tiny = ArraySpec.create([10, 10], "uint8", ["y", "x"])
    work = Workload.from_spec([{"op": "scan"}], tiny)
    result = run_search(tiny, work, STORAGE_PRESETS["s3"], Constraints())
    assert STORAGE_PRESETS["s3"].object_bytes_min == 0
    assert result.ranked[0].layout.data_objects(tiny) == 1


# -- the cost model ---------------------------------------------------------------------------


def mean_longest_chain(n: int, extent: int, chunk: int, shard: int) -> float:
    """Mean over start positions of the most inner chunks touched in one shard (brute force)."""
    longest = []
    for p in range(n - extent + 1):
        per_shard: dict[int, set[int]] = {}
        for i in range(p, p + extent):
            per_shard.setdefault(i // shard, set()).add(i // chunk)
        longest.append(max(len(v) for v in per_shard.values()))
    return sum(longest) / len(longest)


def region_op(array: ArraySpec, extent: dict[str, int]) -> Any:
    return Workload.from_spec([{"op": "region", "extent": extent}], array).ops[0]


def test_zarr_python_partial_shard_latency_grows_with_inner_chunks_touched() -> None:
    array = ArraySpec.create([1024], "float32", ["x"])
    layout = Layout.create(array, [16], shards=[1024], codec=CODEC)
    storage = STORAGE_PRESETS["s3"]  # reader: zarr-python, sequential inner reads
    assert storage.reader.sequential_inner_reads
    inputs = CostInputs(array, storage, CODEC, PROFILE)
    latencies = []
    for extent in (1, 16, 17, 40, 100, 250, 500, 900):
        cost = op_cost(region_op(array, {"x": extent}), Grid.single(layout), inputs).item()
        # One shard, never read whole: the index, then the inner chunks one after another.
        chain = mean_longest_chain(1024, extent, 16, 1024)
        assert cost["latency_s"] == pytest.approx(storage.latency_s * (1 + chain), rel=1e-9)
        latencies.append(cost["latency_s"])
    assert latencies == sorted(latencies)
    assert all(b > a for a, b in itertools.pairwise(latencies[1:]))
    # A read that touches every inner chunk fetches the whole shard in one request.
    whole = op_cost(region_op(array, {"x": 1024}), Grid.single(layout), inputs).item()
    assert whole["latency_s"] == pytest.approx(storage.latency_s)
    assert whole["requests"] == pytest.approx(1.0)


def test_tensorstore_partial_shard_read_is_no_slower_than_zarr_python() -> None:
    array = ArraySpec.create([1024, 512], "uint16", ["y", "x"])
    layout = Layout.create(array, [32, 32], shards=[512, 512], codec=CODEC)
    op = region_op(array, {"y": 200, "x": 100})
    for name in ("s3", "local-ssd", "hpc", "http"):
        zp = STORAGE_PRESETS[name].with_reader(READER_PRESETS["zarr-python-3.1"])
        ts = zp.with_reader(READER_PRESETS["tensorstore"])
        zp_cost = op_cost(op, Grid.single(layout), CostInputs(array, zp, CODEC, PROFILE)).item()
        ts_cost = op_cost(op, Grid.single(layout), CostInputs(array, ts, CODEC, PROFILE)).item()
        assert ts_cost["seconds"] <= zp_cost["seconds"]
        assert ts_cost["latency_s"] < zp_cost["latency_s"]
        # The same bytes; tensorstore merges the contiguous runs of inner chunks (gaps
        # of at most 4 KiB), so fewer requests.
        assert ts_cost["requests"] < zp_cost["requests"]
        assert ts_cost["bytes_fetched"] == pytest.approx(zp_cost["bytes_fetched"])


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_tensorstore_never_predicted_slower_on_sharded_reads(data: st.DataObject) -> None:
    array = data.draw(array_specs(max_ndim=3, max_side=64), label="array")
    layout = data.draw(layouts(array, zarr_format=3, codec=CODEC), label="layout")
    if layout.shards is None:  # shard the whole array instead
        shards = [ceil_div(n, c) * c for n, c in zip(array.shape, layout.chunks, strict=True)]
        layout = Layout.create(array, shards=shards, chunks=layout.chunks, codec=CODEC)
    assume(layout.shards is not None)
    entries = data.draw(workload_entries(array, READ_KINDS), label="workload")
    workload = Workload.from_spec(entries, array)
    zp = STORAGE_PRESETS[data.draw(st.sampled_from(sorted(STORAGE_PRESETS)), label="storage")]
    zp = zp.with_reader(READER_PRESETS["zarr-python-3.1"])
    ts = zp.with_reader(READER_PRESETS["tensorstore"])
    zp_cost = estimate_layout(layout, workload, CostInputs(array, zp, CODEC, PROFILE))
    ts_cost = estimate_layout(layout, workload, CostInputs(array, ts, CODEC, PROFILE))
    for name, zp_op in zp_cost.ops.items():
        assert ts_cost.ops[name]["seconds"] <= zp_op["seconds"] * (1 + 1e-9), name
    assert ts_cost.weighted_s <= zp_cost.weighted_s * (1 + 1e-9)


# -- known bugs ---------------------------------------------------------------------------------


def test_align_with_binds_unsharded_layouts_too() -> None:
    array = ArraySpec.create([1000, 64], "float32", ["t", "x"])
    workload = Workload.from_spec([{"op": "region", "extent": {"t": 16}}], array)
    raw = {"align_with": {"t": 30}, "object_bytes": {"min": 0}}
    constraints = Constraints.from_spec(raw, array)
    result = run_search(array, workload, SSD, constraints)
    problem = Problem(array, workload, SSD, raw, constraints)
    for cand in result.ranked:
        check_layout(problem, cand.layout)


def test_whole_array_write_reads_nothing() -> None:
    array = ArraySpec.create([10, 10], "float32", ["y", "x"])
    workload = Workload.from_spec([{"op": "write"}], array)
    layout = Layout.create(array, [4, 4], codec=CODEC)
    cost = estimate_layout(layout, workload, CostInputs(array, SSD, CODEC, PROFILE))
    assert cost.ops["write"]["get_requests"] == 0.0
    assert cost.ops["write"]["bytes_fetched"] == 0.0


def test_fixed_chunk_contradicting_align_with_is_not_silently_accepted() -> None:
    array = ArraySpec.create([30, 8], "float32", ["t", "x"])
    workload = Workload.from_spec([{"op": "scan"}], array)
    raw = {"fixed_chunks": {"t": 4}, "align_with": {"t": 10}, "zarr_format": 2,
           "object_bytes": {"min": 0}}  # fmt: skip
    constraints = Constraints.from_spec(raw, array)
    try:
        result = run_search(array, workload, SSD, constraints)
    except ConstraintError:
        return
    problem = Problem(array, workload, SSD, raw, constraints)
    for cand in result.ranked:
        check_layout(problem, cand.layout)


def test_whole_array_write_without_edge_chunks_reads_nothing() -> None:
    array = ArraySpec.create([12, 8], "float32", ["y", "x"])
    workload = Workload.from_spec([{"op": "write"}], array)
    layout = Layout.create(array, [4, 4], codec=CODEC)
    cost = estimate_layout(layout, workload, CostInputs(array, SSD, CODEC, PROFILE))
    assert cost.ops["write"]["get_requests"] == 0.0
    assert cost.ops["write"]["put_requests"] == 6.0
    assert cost.objects == 6 + 1


def test_a_one_chunk_shard_is_priced_as_the_unsharded_layout_it_becomes() -> None:
    """Found by the property above: the sharded grid held (10, 4, 3, 3) chunks in shards
    of the same size, which Layout.create turns into the unsharded layout; it was ranked
    at the sharded price (one index request and CPU per shard more)."""
    array = ArraySpec.create([10, 10, 10, 17], "float64", ["time", "z", "y", "x"])
    workload = Workload.from_spec([{"op": "series", "dims": ["time"]}], array)
    storage = parse_storage("azure").with_reader(READER_PRESETS["tensorstore"])
    result = run_search(array, workload, storage, Constraints())
    inputs = CostInputs(array, storage, CODEC, PROFILE)
    for cand in result.ranked:
        single = estimate_layout(cand.layout, workload, inputs)
        assert cand.weighted_s == pytest.approx(single.weighted_s, rel=1e-9), cand.layout.label()
