"""The rechunk plan against brute force: memory bound, one writer per shard, no re-reads."""

from __future__ import annotations

import itertools
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chunkwise.errors import ConstraintError, SpecError
from chunkwise.plan.rechunk import RechunkPlan, Stage, plan_rechunk
from chunkwise.units import parse_bytes

MiB = 2**20


@st.composite
def problems(draw: st.DrawFn) -> dict[str, object]:
    ndim = draw(st.integers(1, 3))
    shape = [draw(st.integers(1, 40)) for _ in range(ndim)]
    source = [draw(st.integers(1, n)) for n in shape]
    chunks = [draw(st.integers(1, n)) for n in shape]
    sharded = draw(st.booleans())
    shards = [c * draw(st.integers(1, 3)) for c in chunks] if sharded else None
    return {
        "shape": shape,
        "itemsize": draw(st.sampled_from([1, 2, 4, 8])),
        "source_chunks": source,
        "target_chunks": chunks,
        "target_shards": shards,
        "max_mem": draw(st.integers(64, 2 * 10**6)),
        "threads": draw(st.integers(1, 4)),
        "overhead": draw(st.sampled_from([0, 0, 1000, 50_000])),
        "slack": draw(st.sampled_from([0.0, 0.0, 0.25])),
    }


def boxes(shape: list[int], block: tuple[int, ...]) -> list[tuple[range, ...]]:
    """Every block of a regular grid over ``shape``, as index ranges (clipped at the edge)."""
    starts = [range(0, n, b) for n, b in zip(shape, block, strict=True)]
    return [
        tuple(range(s, min(s + b, n)) for s, b, n in zip(corner, block, shape, strict=True))
        for corner in itertools.product(*starts)
    ]


def inside(small: tuple[range, ...], big: tuple[range, ...]) -> bool:
    return all(s.start >= b.start and s.stop <= b.stop for s, b in zip(small, big, strict=True))


def check_stage(stage: Stage, shape: list[int]) -> None:
    tasks = boxes(shape, stage.task_shape)
    assert len(tasks) == stage.tasks
    # Every element is in exactly one task.
    assert sum(math.prod(len(r) for r in t) for t in tasks) == math.prod(shape)
    # Every object written lies wholly in exactly one task: one writer per shard.
    for unit in boxes(shape, stage.write_unit):
        assert sum(inside(unit, t) for t in tasks) == 1
    # Every chunk read lies wholly in one task: nothing is read twice.
    for chunk in boxes(shape, stage.read_chunks):
        assert sum(inside(chunk, t) for t in tasks) == 1


@settings(max_examples=150, deadline=None)
@given(problems())
def test_plans_keep_the_budget_and_the_grids(problem: dict[str, object]) -> None:
    try:
        plan = plan_rechunk(**problem)  # type: ignore[arg-type]
    except ConstraintError as exc:
        suggested = re.search(r"--max-mem (\S+)\.$", str(exc))
        assert suggested, str(exc)
        budget = parse_bytes(suggested.group(1))
        assert budget > problem["max_mem"]  # type: ignore[operator]
        plan = plan_rechunk(**{**problem, "max_mem": budget})  # type: ignore[arg-type]
    assert plan.peak_memory <= plan.max_mem
    shape = list(plan.shape)
    for stage in plan.stages:
        check_stage(stage, shape)
        region = math.prod(min(t, n) for t, n in zip(stage.task_shape, shape, strict=True))
        unit = math.prod(min(u, n) for u, n in zip(stage.write_unit, shape, strict=True))
        # The region, plus one object written: its copy, the compressor's buffer, its bytes.
        assert stage.memory_per_task >= (region + 3 * unit) * plan.itemsize
    last = plan.stages[-1]
    assert last.write_unit == (plan.target_shards or plan.target_chunks)
    if plan.intermediate_chunks is not None:
        for i, s, u, n in zip(
            plan.intermediate_chunks, plan.source_chunks, last.write_unit, shape, strict=True
        ):
            assert min(s, u) <= i <= max(s, u, n)


@settings(max_examples=100, deadline=None)
@given(problems())
def test_one_pass_whenever_it_fits(problem: dict[str, object]) -> None:
    roomy = plan_rechunk(**{**problem, "max_mem": 2**40})  # type: ignore[arg-type]
    assert len(roomy.stages) == 1  # with room, never through an intermediate
    need = math.ceil(roomy.stages[0].memory_per_task * (1 + roomy.slack)) + roomy.overhead
    exact = plan_rechunk(**{**problem, "max_mem": need})  # type: ignore[arg-type]
    assert len(exact.stages) == 1


def test_map_to_time_series_goes_through_an_intermediate() -> None:
    plan = plan_rechunk(
        (1024, 512, 512), 4, (1, 512, 512), (1024, 32, 32), max_mem=256 * MiB, threads=2
    )
    assert [s.name for s in plan.stages] == ["to-intermediate", "from-intermediate"]
    assert plan.peak_memory <= 256 * MiB
    assert all(stage.parallel == 2 for stage in plan.stages)
    assert plan.intermediate_chunks is not None
    assert plan.bytes_read == plan.bytes_written == 2 * 2**30
    text = "\n".join(plan.describe())
    assert "two passes through an intermediate array" in text and "of a 256 MiB budget" in text


def test_aligned_grids_take_one_pass() -> None:
    plan = plan_rechunk((256, 256), 4, (64, 64), (32, 32), (128, 128), max_mem=64 * MiB)
    (stage,) = plan.stages
    assert stage.task_shape == (128, 128) and stage.tasks == 4


def test_too_small_a_budget_names_the_smallest_that_works() -> None:
    with pytest.raises(ConstraintError) as info:
        plan_rechunk((1024, 512, 512), 4, (1, 512, 512), (1024, 32, 32), max_mem=MiB)
    message = str(info.value)
    assert message.startswith("max_mem 1 MiB is too small to rechunk this array")
    named = re.fullmatch(r".*give at least --max-mem (\d+)MiB\.", message)
    assert named, message
    # The budget named is the smallest whole MiB that plans: one less does not.
    plan_rechunk((1024, 512, 512), 4, (1, 512, 512), (1024, 32, 32), max_mem=int(named[1]) * MiB)
    with pytest.raises(ConstraintError):
        plan_rechunk(
            (1024, 512, 512), 4, (1, 512, 512), (1024, 32, 32), max_mem=(int(named[1]) - 1) * MiB
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_shards": (100, 100)}, "target shard [100, 100] is not a multiple of chunk [32, 32]"),
        ({"target_chunks": (32,)}, "target chunks [32] must have 2 positive sizes"),
        ({"source_chunks": (0, 4)}, "source chunks [0, 4] must have 2 positive sizes"),
        ({"max_mem": 0}, "max_mem 0 must be a positive number of bytes."),
    ],
)  # fmt: skip
def test_bad_input(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {
        "shape": (256, 256), "itemsize": 4, "source_chunks": (64, 64),
        "target_chunks": (32, 32), "max_mem": MiB,
    }  # fmt: skip
    with pytest.raises(SpecError, match=re.escape(message)):
        plan_rechunk(**{**base, **kwargs})  # type: ignore[arg-type]


def test_plan_is_a_value() -> None:
    plan = plan_rechunk((64, 64), 8, (8, 64), (64, 8), max_mem=MiB)
    assert isinstance(plan, RechunkPlan)
    with pytest.raises(AttributeError):
        plan.max_mem = 1  # type: ignore[misc]
