"""The estimate of a rechunk plan against brute force: every task's box is enumerated, with
the chunk and shard keys it reads and writes, and the GETs, PUTs and bytes must match
exactly; rates, dollars, the time and the per-prefix limit follow from them."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chunkwise.errors import ConstraintError, SpecError
from chunkwise.model.codec import CodecProfile
from chunkwise.model.storage import (
    READER_PRESETS,
    S3_REQUEST_LIMIT,
    STORAGE_PRESETS,
    StorageProfile,
)
from chunkwise.plan.estimate import (
    HANDLING_CPU_S_PER_GIB,
    RechunkEstimate,
    estimate_rechunk,
    format_hours,
    format_usd,
)
from chunkwise.plan.rechunk import RechunkPlan, plan_rechunk

SOURCE_CODEC = CodecProfile(1.5, 200e6, 800e6)
TARGET_CODEC = CodecProfile(1.3, 100e6, 700e6)
INTER_CODEC = CodecProfile(1.2, 900e6, 2000e6)


@st.composite
def problems(draw: st.DrawFn) -> dict[str, object]:
    ndim = draw(st.integers(1, 3))
    shape = [draw(st.integers(1, 24)) for _ in range(ndim)]
    source = [draw(st.integers(1, n)) for n in shape]
    chunks = [draw(st.integers(1, n)) for n in shape]
    sharded = draw(st.booleans())
    return {
        "shape": shape,
        "itemsize": draw(st.sampled_from([1, 4, 8])),
        "source_chunks": source,
        "target_chunks": chunks,
        "target_shards": [c * draw(st.integers(1, 3)) for c in chunks] if sharded else None,
        "max_mem": draw(st.integers(200, 200_000)),
        "threads": draw(st.integers(1, 4)),
    }


def plan_of(problem: dict[str, object]) -> RechunkPlan | None:
    try:
        return plan_rechunk(**problem)  # type: ignore[arg-type]
    except ConstraintError:
        return None


def grid(shape: tuple[int, ...], block: tuple[int, ...]) -> list[tuple[range, ...]]:
    """Every block of a regular grid over ``shape`` (clipped at the edge), C order."""
    starts = [range(0, n, b) for n, b in zip(shape, block, strict=True)]
    return [
        tuple(range(s, min(s + b, n)) for s, b, n in zip(corner, block, shape, strict=True))
        for corner in itertools.product(*starts)
    ]


def keys_touched(box: tuple[range, ...], block: tuple[int, ...]) -> set[tuple[int, ...]]:
    """The keys (block indices) of the blocks a box touches."""
    return set(
        itertools.product(
            *(range(r.start // b, (r.stop - 1) // b + 1) for r, b in zip(box, block, strict=True))
        )
    )


def size(box: tuple[range, ...]) -> int:
    return math.prod(len(r) for r in box)


def oracle(plan: RechunkPlan, *, readback: bool, pre_read: bool) -> list[dict[str, int]]:
    """Per stage, by enumerating tasks: GETs, PUTs, raw bytes read, raw bytes written."""
    out = []
    two = len(plan.stages) == 2
    for index, stage in enumerate(plan.stages):
        gets = puts = raw_read = raw_written = 0
        read_seen: set[tuple[int, ...]] = set()
        unit_seen: set[tuple[int, ...]] = set()
        sharded = stage.write_unit != stage.write_chunks
        # Two passes verified: the first records checksums (no read-back), the second
        # reads the markers of the first-pass tasks its region overlaps.
        reads_back = readback and not (two and index == 0)
        for box in grid(plan.shape, stage.task_shape):
            reads = keys_touched(box, stage.read_chunks)
            units = keys_touched(box, stage.write_unit)
            assert not reads & read_seen and not units & unit_seen  # one task per key
            read_seen |= reads
            unit_seen |= units
            gets += len(reads) + len(units) * (reads_back + (pre_read and sharded))
            if readback and two and index == 1:
                gets += len(keys_touched(box, plan.stages[0].task_shape))
            puts += len(units) + 1  # every object, then the task's marker
            raw_read += size(box) * plan.itemsize
            raw_written += size(box) * plan.itemsize
        out.append({"gets": gets, "puts": puts, "read": raw_read, "written": raw_written,
                    "units": len(unit_seen), "reads": len(read_seen)})  # fmt: skip
    return out


def estimate(plan: RechunkPlan, **kw: object) -> RechunkEstimate:
    args: dict[str, object] = {
        "source": STORAGE_PRESETS["s3"],
        "target": STORAGE_PRESETS["s3"],
        "source_codec": SOURCE_CODEC,
        "target_codec": TARGET_CODEC,
        "intermediate_codec": INTER_CODEC,
        "workers": 4,
        "threads": 1,
        "readback": True,
    }
    args.update(kw)
    return estimate_rechunk(plan, **args)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(
    problems(),
    st.booleans(),
    st.sampled_from(["zarr-python-3.1", "zarr-python-3.4"]),
    st.integers(1, 9),
)
def test_requests_and_bytes_match_brute_force(
    problem: dict[str, object], readback: bool, reader: str, workers: int
) -> None:
    plan = plan_of(problem)
    if plan is None:
        return
    profile = STORAGE_PRESETS["s3"].with_reader(READER_PRESETS[reader])
    threads = int(problem["threads"])  # type: ignore[call-overload]
    got = estimate(plan, target=profile, readback=readback, workers=workers, threads=threads)
    pre_read = READER_PRESETS[reader].shard_write_reads_existing
    expected = oracle(plan, readback=readback, pre_read=pre_read)
    assert [s.name for s in got.stages] == [s.name for s in plan.stages]
    for index, (stage, want) in enumerate(zip(got.stages, expected, strict=True)):
        assert stage.tasks == plan.stages[index].tasks
        assert stage.get_requests == want["gets"]
        assert stage.put_requests == want["puts"]
        read_codec = SOURCE_CODEC if index == 0 else INTER_CODEC
        write_codec = TARGET_CODEC if index == len(plan.stages) - 1 else INTER_CODEC
        written = math.ceil(want["written"] / write_codec.ratio)
        assert stage.bytes_written == written
        reads_back = readback and not (len(plan.stages) == 2 and index == 0)
        assert stage.bytes_read == math.ceil(want["read"] / read_codec.ratio) + written * reads_back
        # The loads split the same requests over the prefixes, and price them.
        assert sum(load.get_requests for load in stage.loads) == want["gets"]
        assert sum(load.put_requests for load in stage.loads) == want["puts"]
        assert stage.loads[0].get_requests == want["reads"]  # the reads: the read prefix
        assert stage.loads[1].put_requests == want["units"]  # the objects: the write prefix
        assert stage.usd == pytest.approx((want["gets"] * 0.0004 + want["puts"] * 0.005) / 1000)
        for load in stage.loads:  # rates are the requests over the stage's time
            assert load.get_per_s * stage.seconds == pytest.approx(load.get_requests)
            assert load.put_per_s * stage.seconds == pytest.approx(load.put_requests)
            assert load.over == (
                load.get_per_s > S3_REQUEST_LIMIT.get_per_s
                or load.put_per_s > S3_REQUEST_LIMIT.put_per_s
            )
        assert stage.seconds == max(stage.compute_s, stage.transfer_s, stage.latency_s)
    assert got.get_requests == sum(w["gets"] for w in expected)
    assert got.put_requests == sum(w["puts"] for w in expected)
    assert got.seconds == pytest.approx(sum(s.seconds for s in got.stages))


@settings(max_examples=100, deadline=None)
@given(problems(), st.integers(1, 64), st.sampled_from(["s3", "local-ssd", "hpc"]))
def test_more_workers_never_take_longer_and_never_change_the_counts(
    problem: dict[str, object], workers: int, storage: str
) -> None:
    plan = plan_of(problem)
    if plan is None:
        return
    profile = STORAGE_PRESETS[storage]
    fewer = estimate(plan, source=profile, target=profile, workers=workers)
    more = estimate(plan, source=profile, target=profile, workers=workers + 1)
    assert more.seconds <= fewer.seconds * (1 + 1e-12)
    assert (more.get_requests, more.put_requests, more.bytes_read, more.bytes_written) == (
        fewer.get_requests, fewer.put_requests, fewer.bytes_read, fewer.bytes_written,
    )  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(problems(), st.integers(2, 400))
def test_the_suggested_workers_stay_within_the_limit(
    problem: dict[str, object], workers: int
) -> None:
    plan = plan_of({**problem, "threads": 1})
    if plan is None:
        return
    # A store that throttles early, so that small plans reach the limit.
    tight = replace(
        STORAGE_PRESETS["s3"],
        request_limit=replace(S3_REQUEST_LIMIT, get_per_s=1100, put_per_s=700),
    )
    got = estimate(plan, source=tight, target=tight, workers=workers)
    fewer = got.workers_within_limits()
    if not got.over_limit:
        assert fewer is None
        return
    assert fewer is not None and fewer < workers
    again = estimate(plan, source=tight, target=tight, workers=fewer)
    assert not again.over_limit or fewer == 1


def test_a_known_plan_in_numbers() -> None:
    """Maps (1, 64, 64) -> series (64, 8, 8), one pass, on S3 with 2 workers."""
    plan = plan_rechunk((64, 64, 64), 4, (1, 64, 64), (64, 8, 8), max_mem=64 * 2**20, threads=1)
    assert len(plan.stages) == 1 and plan.stages[0].tasks == 1
    got = estimate(plan, workers=2)
    stage = got.stages[0]
    # 64 maps read, 64 series written and read back; one marker.
    assert (stage.get_requests, stage.put_requests) == (128, 65)
    assert stage.slots == 1 and stage.workers == 1  # one task: one worker at work
    raw = 64**3 * 4
    assert stage.bytes_written == math.ceil(raw / 1.3)
    # compute: decode 1 MiB at 800 MB/s + encode at 100 MB/s + decode at 700 MB/s, and the
    # handling of 1 MiB written, one slot, plus 0.2 ms for each of 64 + 2 x 64 chunks.
    handling = raw / 2**30 * HANDLING_CPU_S_PER_GIB
    cpu = raw / 800e6 + raw / 100e6 + raw / 700e6 + handling + 0.2e-3 * 192
    assert stage.compute_s == pytest.approx(cpu)
    # latency: 64 GETs of the source, 10 in flight; 64 + 64 + 1 target requests, 10 in flight.
    assert stage.latency_s == pytest.approx(64 * 0.02 / 10 + 129 * 0.02 / 10)
    assert stage.bound == "latency"
    lines = got.describe()
    assert lines[0] == (
        "estimate for 2 workers x 1 thread on s3: 1 tasks, 128 GET and 65 PUT requests "
        "($0.00038); reads 1.44 MiB and writes 788 KiB stored (read-back included)"
    )
    assert lines[1] == "time: about 0.386 s (copy 0.386 s, latency-bound)"


def test_bad_workers_are_one_sentence() -> None:
    plan = plan_rechunk((8, 8), 4, (1, 8), (8, 1), max_mem=2**20)
    for workers, threads, message in (
        (0, 1, r"^workers 0 must be a whole number of at least 1\.$"),
        (2, 0, r"^threads per worker 0 must be a whole number of at least 1\.$"),
        (True, 1, r"^workers True must be a whole number of at least 1\.$"),
    ):
        with pytest.raises(SpecError, match=message):
            estimate(plan, workers=workers, threads=threads)


def test_filesystems_share_their_bandwidth_and_object_stores_add_it_up() -> None:
    plan = plan_rechunk((256, 64, 64), 4, (1, 64, 64), (256, 8, 8), max_mem=2**30, threads=1)
    slow = StorageProfile("disk", "filesystem", 0.0, 100e6, 100e6, 64, 0, 0, 2**62)
    fast = CodecProfile(1.0, 1e15, 1e15)
    codecs = {"source_codec": fast, "target_codec": fast, "intermediate_codec": fast}
    one = estimate(plan, source=slow, target=slow, workers=1, **codecs)
    many = estimate(plan, source=slow, target=slow, workers=8, **codecs)
    assert many.stages[0].transfer_s == pytest.approx(one.stages[0].transfer_s)
    store = replace(slow, kind="object")
    one = estimate(plan, source=store, target=store, workers=1, **codecs)
    many = estimate(plan, source=store, target=store, workers=8, **codecs)
    active = many.stages[0].workers
    assert many.stages[0].transfer_s == pytest.approx(one.stages[0].transfer_s / active)


def test_formats() -> None:
    assert format_hours(12.34) == "12.3 s"
    assert format_hours(245) == "4 min 5 s"
    assert format_hours(23 * 60 + 10) == "23 min"
    assert format_hours(3 * 3600 + 12 * 60) == "3 h 12 min"
    assert format_hours(53 * 3600) == "2 d 5 h"
    assert format_usd(7.126) == "7.13" and format_usd(0.00038) == "0.00038"
    assert format_usd(0) == "0.00" and format_usd(1234.5) == "1,234.50"
