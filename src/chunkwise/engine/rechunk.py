"""Carry out a :class:`~chunkwise.plan.rechunk.RechunkPlan` on zarr arrays, locally.

Tasks run on a thread pool (zarr's codecs release the GIL), ``stage.parallel`` at a time.
Each task reads its region and writes it whole into the next array, so every target
shard is written exactly once, by one task, without reading it first.

**Resumable.** When a task's write has completed, an empty marker object
``.chunkwise-rechunk/<stage>/<task>`` is stored *in the target store*; a rerun of the same
plan skips every marked task, so a run killed at any moment resumes where it stopped and
never rewrites a finished shard. The two-pass intermediate array lives under the same
prefix. Both are removed once the run has verified what it wrote, with any temporary
file a killed write left behind.

**Verified.** Each task region of the source is compared with the target, bit for bit,
by digest (``"checksum"``) or element by element (``"full"``, which also names the first
differing index); ``"none"`` skips it.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from chunkwise.engine.results import Progress
from chunkwise.errors import ChunkwiseError
from chunkwise.plan.rechunk import RechunkPlan, Stage

__all__ = ["MARKER_PREFIX", "RechunkResult", "VerificationError", "run_plan", "task_boxes"]

#: Where progress markers and the intermediate array live in the target store.
MARKER_PREFIX = ".chunkwise-rechunk"

Verify = Literal["checksum", "full", "none"]


class VerificationError(ChunkwiseError):
    """The target differs from the source."""


@dataclass(frozen=True, slots=True)
class RechunkResult:
    """What a run did.

    Attributes
    ----------
    tasks_run, tasks_skipped
        Tasks executed now, and tasks found complete from an earlier run.
    bytes_moved
        Uncompressed bytes written by the tasks executed now.
    seconds
        Wall time of the run, including verification.
    verified
        The verification mode used.
    """

    tasks_run: int
    tasks_skipped: int
    bytes_moved: int
    seconds: float
    verified: str


def task_boxes(shape: tuple[int, ...], task: tuple[int, ...]) -> Iterator[tuple[slice, ...]]:
    """The regions of a stage's tasks, in C order (edge regions clipped to the array)."""
    ranges = [range(0, n, t) for n, t in zip(shape, task, strict=True)]
    for corner in itertools.product(*ranges):
        yield tuple(slice(c, min(c + t, n)) for c, t, n in zip(corner, task, shape, strict=True))


def _marker(stage: Stage, index: int) -> str:
    return f"{MARKER_PREFIX}/{stage.name}/{index}"


def _done(store: Any, stage: Stage) -> set[int]:
    from zarr.core.sync import sync

    async def listed() -> set[int]:
        prefix = f"{MARKER_PREFIX}/{stage.name}/"
        # Only whole markers count: a write killed midway may leave a temporary file.
        names = [key.rsplit("/", 1)[1] async for key in store.list_prefix(prefix)]
        return {int(name) for name in names if name.isdigit()}

    return sync(listed())


def _mark(store: Any, stage: Stage, index: int) -> None:
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    sync(store.set(_marker(stage, index), default_buffer_prototype().buffer.from_bytes(b"")))


def _beside(store: Any, prefix: str) -> Any:
    """A store over the same storage rooted at ``prefix`` (zarr will not nest an array
    inside another array's hierarchy, so the intermediate gets a root of its own)."""
    from zarr.storage import FsspecStore, LocalStore, MemoryStore

    if isinstance(store, LocalStore):
        return LocalStore(Path(store.root) / prefix)
    if isinstance(store, FsspecStore):
        return FsspecStore(store.fs, path=f"{store.path.rstrip('/')}/{prefix}")
    return MemoryStore()  # in-process targets cannot outlive the process anyway


def _intermediate(plan: RechunkPlan, target: Any) -> Any:
    import zarr
    from zarr.codecs import BloscCodec

    assert plan.intermediate_chunks is not None
    store = _beside(target.store, f"{MARKER_PREFIX}/intermediate")
    try:  # an interrupted run left it: resume into it
        return zarr.open_array(store, mode="r+")
    except FileNotFoundError:  # zarr's ArrayNotFoundError derives from it
        pass
    return zarr.create_array(
        store,
        shape=plan.shape,
        dtype=target.dtype,
        chunks=plan.intermediate_chunks,
        compressors=BloscCodec(cname="lz4", clevel=1, typesize=plan.itemsize),
        zarr_format=3,
        fill_value=target.fill_value,
    )


def _run_stage(
    stage: Stage,
    source: Any,
    dest: Any,
    marker_store: Any,
    shape: tuple[int, ...],
    progress: Progress | None,
) -> tuple[int, int, int]:
    boxes = list(task_boxes(shape, stage.task_shape))
    done = _done(marker_store, stage)
    todo = [(i, box) for i, box in enumerate(boxes) if i not in done]
    moved = 0
    finished = len(boxes) - len(todo)
    if progress is not None:
        progress(stage.name, finished, len(boxes))

    def work(item: tuple[int, tuple[slice, ...]]) -> int:
        index, box = item
        values = np.asarray(source[box])
        dest[box] = values
        _mark(marker_store, stage, index)
        return int(values.nbytes)

    with ThreadPoolExecutor(max_workers=stage.parallel) as pool:
        for nbytes in pool.map(work, todo):
            moved += nbytes
            finished += 1
            if progress is not None:
                progress(stage.name, finished, len(boxes))
    return len(todo), len(boxes) - len(todo), moved


def _digest(values: np.ndarray[Any, Any]) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.ascontiguousarray(values).data.cast("B"))  # no copy
    return digest.digest()


def _bitwise_equal(want: np.ndarray[Any, Any], got: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Per element, whether the bytes agree (NaN payloads and -0.0 included)."""
    size = want.dtype.itemsize
    a = np.ascontiguousarray(want).view(np.uint8).reshape(*want.shape, size)
    b = np.ascontiguousarray(got).view(np.uint8).reshape(*got.shape, size)
    same: np.ndarray[Any, Any] = np.all(a == b, axis=-1)
    return same


def _verify(source: Any, target: Any, plan: RechunkPlan, mode: Verify) -> None:
    if mode == "none":
        return
    for box in task_boxes(plan.shape, plan.stages[-1].task_shape):
        want, got = np.asarray(source[box]), np.asarray(target[box])
        if mode == "checksum":
            if _digest(want) != _digest(got):
                region = ", ".join(f"{b.start}:{b.stop}" for b in box)
                raise VerificationError(
                    f"the target differs from the source in region [{region}]; it is not "
                    "trustworthy: rerun with --overwrite."
                )
            continue
        same = _bitwise_equal(want, got)
        if not bool(same.all()):
            first = np.argwhere(~same)[0]
            where = tuple(int(i) + b.start for i, b in zip(first, box, strict=True))
            raise VerificationError(
                f"the target differs from the source at index {where}; it is not "
                "trustworthy: rerun with --overwrite."
            )


def run_plan(
    plan: RechunkPlan,
    source: Any,
    target: Any,
    *,
    verify: Verify = "checksum",
    progress: Progress | None = None,
) -> RechunkResult:
    """Execute ``plan``: copy ``source`` into ``target`` (a zarr array of the target layout).

    Parameters
    ----------
    plan
        From :func:`chunkwise.plan.rechunk.plan_rechunk` for these two arrays.
    source
        Anything with ``shape``, ``dtype`` and NumPy-style slicing (a zarr array, NumPy).
        It is only read.
    target
        The target zarr array, already created with the plan's layout. Markers of an
        earlier, interrupted run of the same plan in its store are honoured.
    verify
        ``"checksum"`` (default), ``"full"`` or ``"none"``.
    progress
        Called as tasks complete.

    Raises
    ------
    VerificationError
        When the target does not match the source.
    """
    start = time.perf_counter()
    store = target.store
    run = skipped = moved = 0
    if len(plan.stages) == 1:
        run, skipped, moved = _run_stage(
            plan.stages[0], source, target, store, plan.shape, progress
        )
    else:
        inter = _intermediate(plan, target)
        first, second = plan.stages
        for stage, src, dst in ((first, source, inter), (second, inter, target)):
            r, s, m = _run_stage(stage, src, dst, store, plan.shape, progress)
            run, skipped, moved = run + r, skipped + s, moved + m
    _verify(source, target, plan, verify)
    _tidy(store)
    return RechunkResult(run, skipped, moved, time.perf_counter() - start, verify)


#: A temporary file zarr's LocalStore writes before renaming it into place; a kill in
#: between leaves it behind.
_PARTIAL_WRITE = re.compile(r"\.[0-9a-f]{32}\.partial$")


def _tidy(store: Any) -> None:
    """Remove the markers, the intermediate array and writes a kill left half-done."""
    from zarr.core.sync import sync

    async def tidy() -> None:
        await store.delete_dir(MARKER_PREFIX)
        leftovers = [key async for key in store.list() if _PARTIAL_WRITE.search(key)]
        for key in leftovers:
            await store.delete(key)

    sync(tidy())
