"""Running a rechunk plan on real zarr stores: bit-identical, resumable after SIGKILL, verified."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st
from zarr.core.buffer import Buffer, default_buffer_prototype
from zarr.storage import LocalStore

from chunkwise.plan.rechunk import plan_rechunk
from chunkwise.rechunking.executor import (
    MARKER_PREFIX,
    RechunkEvent,
    VerificationError,
    readback_boxes,
    run_plan,
    task_boxes,
)
from chunkwise.rechunking.executor import _verify_full as verify_full

SHAPE = (64, 64, 64)
SOURCE_CHUNKS = (1, 64, 64)  # "maps"
TARGET_CHUNKS, TARGET_SHARDS = (64, 8, 8), (64, 32, 32)  # "time series" in shards
#: A budget that takes these maps to time series in two passes, with several tasks each.
TWO_PASSES = 1400 * 2**10


def make_source(path: Path, chunks: tuple[int, ...] = SOURCE_CHUNKS) -> zarr.Array:
    rng = np.random.default_rng(0)
    values = rng.standard_normal(SHAPE).astype("float32")
    values[0, 0, :4] = [np.nan, -0.0, np.inf, -np.inf]
    return zarr.create_array(path, data=values, chunks=chunks, zarr_format=2)


def make_target(path: Path) -> zarr.Array:
    return zarr.create_array(
        path, shape=SHAPE, dtype="float32", chunks=TARGET_CHUNKS, shards=TARGET_SHARDS
    )


def snapshot(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def bitwise_equal(a: np.ndarray, b: np.ndarray) -> bool:
    return a.tobytes() == b.tobytes()


@pytest.mark.parametrize(("max_mem", "passes"), [(64 * 2**20, 1), (TWO_PASSES, 2)])
def test_rechunk_is_bit_identical_and_leaves_the_source_alone(
    tmp_path: Path, max_mem: int, passes: int
) -> None:
    source = make_source(tmp_path / "src.zarr")
    before = snapshot(tmp_path / "src.zarr")
    target = make_target(tmp_path / "dst.zarr")
    plan = plan_rechunk(SHAPE, 4, SOURCE_CHUNKS, TARGET_CHUNKS, TARGET_SHARDS, max_mem=max_mem)
    assert len(plan.stages) == passes
    result = run_plan(plan, source, target, verify="full")
    assert result.tasks_skipped == 0 and result.tasks_run == sum(s.tasks for s in plan.stages)
    assert bitwise_equal(zarr.open_array(tmp_path / "dst.zarr")[...], source[...])
    assert snapshot(tmp_path / "src.zarr") == before
    assert not (tmp_path / "dst.zarr" / MARKER_PREFIX).exists()
    # One object per shard plus zarr.json: 4 x 4 shards of 64x32x32 (shards are 2 per dim).
    shards = [p for p in (tmp_path / "dst.zarr" / "c").rglob("*") if p.is_file()]
    assert len(shards) == 4


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import zarr
    from chunkwise.rechunking.executor import run_plan
    from chunkwise.plan.rechunk import plan_rechunk

    src, dst, stage, after, max_mem = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    source = zarr.open_array(src, mode="r")
    target = zarr.open_array(dst, mode="r+")
    plan = plan_rechunk(source.shape, 4, source.chunks, (64, 8, 8), (64, 32, 32), max_mem=max_mem)

    def events(event):
        if event.kind == "task-done" and event.stage == stage and event.done >= after:
            os.kill(os.getpid(), signal.SIGKILL)

    run_plan(plan, source, target, events=events)
    """
)


@pytest.mark.parametrize(
    ("max_mem", "stage", "after"),
    [(64 * 2**20, "copy", 2), (TWO_PASSES, "to-intermediate", 3), (TWO_PASSES, "from-intermediate", 2)],
)  # fmt: skip
def test_killed_runs_resume_without_rewriting_finished_shards(
    tmp_path: Path, max_mem: int, stage: str, after: int
) -> None:
    # Aligned source chunks give the one-pass case several tasks to be killed between.
    chunks = (16, 32, 32) if stage == "copy" else SOURCE_CHUNKS
    source = make_source(tmp_path / "src.zarr", chunks)
    make_target(tmp_path / "dst.zarr")
    script = tmp_path / "run.py"
    script.write_text(KILL_SCRIPT)
    killed = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "src.zarr"), str(tmp_path / "dst.zarr"),
         stage, str(after), str(max_mem)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # The shards of tasks marked complete before the kill (the last stage writes the target).
    plan = plan_rechunk(SHAPE, 4, chunks, TARGET_CHUNKS, TARGET_SHARDS, max_mem=max_mem)
    last = plan.stages[-1]
    marked = tmp_path / "dst.zarr" / MARKER_PREFIX / last.name
    done = {int(p.name) for p in marked.iterdir() if p.name.isdigit()} if marked.exists() else set()
    boxes = list(task_boxes(SHAPE, last.task_shape))
    written = {}
    for index in done:
        key = "/".join(str(b.start // s) for b, s in zip(boxes[index], TARGET_SHARDS, strict=True))
        path = tmp_path / "dst.zarr" / "c" / key
        written[path] = path.stat().st_mtime_ns
    if stage != "to-intermediate":
        assert len(done) >= after  # markers of finished shards survive the kill
    target = zarr.open_array(tmp_path / "dst.zarr", mode="r+")
    result = run_plan(plan, source, target, verify="full")
    assert result.tasks_skipped >= after
    assert bitwise_equal(target[...], source[...])
    for path, mtime in written.items():
        assert path.stat().st_mtime_ns == mtime  # completed shards were not rewritten
    assert not list((tmp_path / "dst.zarr").rglob("*.partial"))
    assert not (tmp_path / "dst.zarr" / MARKER_PREFIX).exists()


def test_verification_names_the_first_difference(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src.zarr")
    target = make_target(tmp_path / "dst.zarr")
    plan = plan_rechunk(SHAPE, 4, SOURCE_CHUNKS, TARGET_CHUNKS, TARGET_SHARDS, max_mem=2**26)
    run_plan(plan, source, target)
    verify_full(source, target, plan)
    target[5, 6, 7] = 42.0
    with pytest.raises(VerificationError, match=r"at index \(5, 6, 7\)"):
        verify_full(source, target, plan)
    # -0.0 and 0.0 compare equal as numbers but not as bits: verification is bitwise.
    target[5, 6, 7] = source[5, 6, 7]
    target[0, 0, 1] = 0.0
    with pytest.raises(VerificationError, match=r"at index \(0, 0, 1\)"):
        verify_full(source, target, plan)


class FlippingStore(LocalStore):
    """A local store whose disk "flips" the first byte of one object as it is written."""

    def __init__(self, root: Path, key: str) -> None:
        super().__init__(root)
        self.bad_key = key

    async def set(self, key: str, value: Buffer) -> None:
        if key == self.bad_key:
            raw = bytearray(value.to_bytes())
            raw[0] ^= 0xFF
            value = default_buffer_prototype().buffer.from_bytes(bytes(raw))
        await super().set(key, value)


@pytest.mark.parametrize(("max_mem", "passes"), [(64 * 2**20, 1), (TWO_PASSES, 2)])
def test_reading_back_catches_a_write_that_did_not_stick(
    tmp_path: Path, max_mem: int, passes: int
) -> None:
    """Every task reads back what it wrote: a corrupted object fails the run at the element
    it hit, and its task is not marked done, so a rerun on a good disk rewrites it."""
    source = make_source(tmp_path / "src.zarr")
    bad = FlippingStore(tmp_path / "dst.zarr", "c/0/1/2")  # the chunk at (0:64, 8:16, 16:24)
    target = zarr.create_array(
        bad, shape=SHAPE, dtype="float32", chunks=TARGET_CHUNKS, compressors=None
    )
    plan = plan_rechunk(SHAPE, 4, SOURCE_CHUNKS, TARGET_CHUNKS, max_mem=max_mem)
    assert len(plan.stages) == passes
    with pytest.raises(VerificationError, match=r"at index \(0, 8, 16\)"):
        run_plan(plan, source, target, verify="readback")
    last = tmp_path / "dst.zarr" / MARKER_PREFIX / plan.stages[-1].name
    boxes = list(task_boxes(SHAPE, plan.stages[-1].task_shape))
    bad_task = next(
        i
        for i, b in enumerate(boxes)
        if b[1].start <= 8 < b[1].stop and b[2].start <= 16 < b[2].stop
    )
    assert not (last / str(bad_task)).exists()
    # Without read-back the same corruption goes unnoticed, as documented.
    target = zarr.create_array(
        FlippingStore(tmp_path / "dst2.zarr", "c/0/1/2"),
        shape=SHAPE, dtype="float32", chunks=TARGET_CHUNKS, compressors=None,
    )  # fmt: skip
    run_plan(plan, source, target, verify="none")
    assert not bitwise_equal(target[...], source[...])
    # The same store on a good disk: the rerun rewrites the bad chunk and passes.
    good = zarr.open_array(tmp_path / "dst.zarr", mode="r+")
    result = run_plan(plan, source, good, verify="readback")
    assert result.tasks_run >= 1
    assert bitwise_equal(good[...], source[...])


def test_unchecked_tasks_are_redone_when_the_rerun_checks(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src.zarr")
    plan = plan_rechunk(SHAPE, 4, SOURCE_CHUNKS, TARGET_CHUNKS, TARGET_SHARDS, max_mem=TWO_PASSES)
    total = sum(stage.tasks for stage in plan.stages)

    def stop_after(n: int) -> Callable[[RechunkEvent], None]:
        def events(event: RechunkEvent) -> None:
            if event.kind == "task-done" and event.done >= n:
                raise KeyboardInterrupt

        return events

    target = make_target(tmp_path / "dst.zarr")
    with pytest.raises(KeyboardInterrupt):
        run_plan(plan, source, target, verify="none", events=stop_after(3))
    checked = run_plan(plan, source, target, verify="readback")
    assert checked.tasks_skipped == 0 and checked.tasks_run == total

    target = make_target(tmp_path / "dst2.zarr")
    with pytest.raises(KeyboardInterrupt):
        run_plan(plan, source, target, verify="readback", events=stop_after(3))
    unchecked = run_plan(plan, source, target, verify="none")
    assert unchecked.tasks_skipped >= 3  # checked markers satisfy any rerun


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(1, 4), st.integers(1, 9)), min_size=1, max_size=3
    ),
    st.integers(1, 12),
)
def test_readback_batches_tile_the_task_in_whole_units(
    dims: list[tuple[int, int, int]], count: int
) -> None:
    """Brute force: every element of the box is covered once, every batch starts on the
    unit grid and holds at most ``count`` units."""
    unit = tuple(u for _, u, _ in dims)
    box = tuple(slice(k * u, k * u + n) for (k, u, n) in dims)
    covered = np.zeros([b.stop for b in box], dtype=int)
    for sub in readback_boxes(box, unit, count):
        assert all(s.start % u == 0 and b.start <= s.start < s.stop <= b.stop
                   for s, u, b in zip(sub, unit, box, strict=True))  # fmt: skip
        units = 1
        for s, u in zip(sub, unit, strict=True):
            units *= -(-(s.stop - s.start) // u)
        assert units <= count
        covered[sub] += 1
    assert (covered[box] == 1).all()
    assert covered.sum() == np.prod([b.stop - b.start for b in box])


def test_markers_live_only_in_the_target_store(tmp_path: Path) -> None:
    source = make_source(tmp_path / "src.zarr")
    target = make_target(tmp_path / "dst.zarr")
    plan = plan_rechunk(SHAPE, 4, SOURCE_CHUNKS, TARGET_CHUNKS, TARGET_SHARDS, max_mem=TWO_PASSES)
    seen: list[bool] = []

    def events(event: RechunkEvent) -> None:
        seen.append((tmp_path / "dst.zarr" / MARKER_PREFIX).exists())

    run_plan(plan, source, target, events=events)
    assert any(seen)
    assert not any(MARKER_PREFIX in str(p) for p in (tmp_path / "src.zarr").rglob("*"))
    assert os.listdir(tmp_path / "dst.zarr") == ["zarr.json", "c"] or sorted(
        os.listdir(tmp_path / "dst.zarr")
    ) == ["c", "zarr.json"]


def test_a_write_cut_short_leaves_no_temporary_file(tmp_path: Path) -> None:
    """A SIGKILL between LocalStore's temporary write and its rename leaves ``*.partial``."""
    source = make_source(tmp_path / "src.zarr")
    target = make_target(tmp_path / "dst.zarr")
    leftover = tmp_path / "dst.zarr" / "c" / "0" / "1" / f"1.{'ab' * 16}.partial"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"half a shard")
    mine = tmp_path / "dst.zarr" / "notes.partial"  # not zarr's pattern: not ours to remove
    mine.write_bytes(b"user file")
    plan = plan_rechunk(SHAPE, 4, SOURCE_CHUNKS, TARGET_CHUNKS, TARGET_SHARDS, max_mem=2**26)
    run_plan(plan, source, target)
    assert not leftover.exists() and mine.exists()
