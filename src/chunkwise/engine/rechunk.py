"""Carry out a :class:`~chunkwise.plan.rechunk.RechunkPlan` on zarr arrays, locally.

Tasks run on a thread pool (zarr's codecs release the GIL), ``stage.parallel`` at a time.
Each task reads its region and writes it whole into the next array, so every target
shard is written exactly once, by one task, without reading it first.

**Resumable.** When a task's write has completed, an empty marker object
``<state>/<stage>/<task>`` is stored *in the target store* (``state`` defaults to
``.chunkwise-rechunk``; one prefix per array of a group); a rerun of the same plan skips
every marked task, so a run killed at any moment resumes where it stopped and never
rewrites a finished shard. The two-pass intermediate array lives under the same prefix.
Both are removed once the run has verified what it wrote, with any temporary file a
killed write left behind.

**Executors.** Tasks are plain functions of picklable arguments (the source reader, the
zarr arrays, the task's box), so the same tasks run on a local thread pool or on Dask
workers (:mod:`chunkwise.engine.rechunk_dask`), each writing straight to the target
store: no data passes through the caller or a scheduler.

**Verified.** Each task region of the source is compared with the target, bit for bit,
by digest (``"checksum"``) or element by element (``"full"``, which also names the first
differing index); ``"none"`` skips it.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import re
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from chunkwise.errors import ChunkwiseError
from chunkwise.plan.rechunk import RechunkPlan, Stage

__all__ = [
    "MARKER_PREFIX",
    "RechunkEvent",
    "RechunkResult",
    "TaskRunner",
    "VerificationError",
    "copy_task",
    "peak_rss",
    "run_plan",
    "tame_allocator",
    "task_boxes",
    "thread_runner",
]

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


EventKind = Literal["run-start", "stage-start", "task-done", "stage-done", "verify-done"]


@dataclass(frozen=True, slots=True)
class RechunkEvent:
    """Something that happened during a run, for progress bars and logs.

    Attributes
    ----------
    kind
        ``"run-start"`` (once per run; ``nbytes`` is everything it will write),
        ``"stage-start"``, ``"task-done"``, ``"stage-done"`` or ``"verify-done"``.
    array
        The array's path in the target (``""`` for a lone array).
    stage
        The stage's name (``"copy"``, ``"to-intermediate"``, ``"from-intermediate"``;
        ``"verify"`` for verification).
    done, total
        Tasks of the stage finished (including those skipped as already done) and in all.
    nbytes
        Uncompressed bytes written by the tasks run so far in this stage (not counting
        skipped ones), for throughput.
    seconds
        Wall time since the stage started.
    stage_bytes
        Uncompressed bytes the whole stage writes.
    """

    kind: EventKind
    array: str
    stage: str
    done: int
    total: int
    nbytes: int
    seconds: float
    stage_bytes: int = 0


#: A subscriber to run events.
Events = Callable[[RechunkEvent], None]

#: A task runner: ``runner(fn, argument_tuples, parallel)`` calls ``fn(*args)`` for every
#: tuple, at most ``parallel`` at a time (per worker on Dask), and yields results as they
#: complete (any order).
TaskRunner = Callable[[Callable[..., int], list[tuple[Any, ...]], int], Iterable[int]]


def thread_runner(
    fn: Callable[..., int], items: list[tuple[Any, ...]], parallel: int
) -> Iterator[int]:
    """Run tasks on a local thread pool, ``parallel`` at a time (codecs release the GIL)."""
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        yield from pool.map(lambda args: fn(*args), items)


def task_boxes(shape: tuple[int, ...], task: tuple[int, ...]) -> Iterator[tuple[slice, ...]]:
    """The regions of a stage's tasks, in C order (edge regions clipped to the array)."""
    ranges = [range(0, n, t) for n, t in zip(shape, task, strict=True)]
    for corner in itertools.product(*ranges):
        yield tuple(slice(c, min(c + t, n)) for c, t, n in zip(corner, task, shape, strict=True))


def _done(store: Any, state: str, stage: Stage) -> set[int]:
    from zarr.core.sync import sync

    async def listed() -> set[int]:
        prefix = f"{state}/{stage.name}/"
        # Only whole markers count: a write killed midway may leave a temporary file.
        names = [key.rsplit("/", 1)[1] async for key in store.list_prefix(prefix)]
        return {int(name) for name in names if name.isdigit()}

    return sync(listed())


def _mark(store: Any, key: str) -> None:
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    sync(store.set(key, default_buffer_prototype().buffer.from_bytes(b"")))


def copy_task(source: Any, dest: Any, marker: str, box: tuple[slice, ...]) -> int:
    """One task: read ``box`` of ``source``, write it whole into ``dest``, then store the
    empty ``marker`` key in ``dest``'s store. Returns the bytes written (uncompressed).

    A top-level function of picklable arguments, so Dask workers can run it."""
    values = np.asarray(source[box])
    dest[box] = values
    _mark(dest.store, marker)
    nbytes = int(values.nbytes)
    del values
    _release_memory()
    return nbytes


def peak_rss() -> int:
    """This process's peak resident memory, bytes.

    Linux's ``VmHWM`` (reset when a program is executed), else ``ru_maxrss``, which a
    process started by ``fork`` + ``exec`` inherits from its parent's peak."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource
    import sys

    scale = 1 if sys.platform == "darwin" else 1024  # macOS reports bytes, Linux KiB
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * scale


def tame_allocator() -> None:
    """Make glibc return large buffers to the OS at once, so resident memory follows what
    the tasks hold: buffers from 256 KiB up are mapped and unmapped (fixing the threshold
    also stops glibc raising it after each large free), and at most two malloc arenas
    keep freed memory. Process-wide; chunkwise calls it when a rechunk run starts. A no-op
    off glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_mmap_threshold, m_arena_max = -3, -8
    mallopt(m_mmap_threshold, 256 * 1024)
    mallopt(m_arena_max, 2)


def _load_trim() -> Callable[[], None]:
    """glibc's ``malloc_trim``: hands freed heap pages back to the OS. Without it, the
    allocator keeps each thread arena's high-water mark of decoded and encoded chunks, and
    resident memory drifts above what the tasks hold. A no-op elsewhere."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]

    def release() -> None:
        trim(0)

    return release


_release_memory = _load_trim()


def _beside(store: Any, prefix: str) -> Any:
    """A store over the same storage rooted at ``prefix`` (zarr will not nest an array
    inside another array's hierarchy, so the intermediate gets a root of its own)."""
    from zarr.storage import FsspecStore, LocalStore, MemoryStore

    if isinstance(store, LocalStore):
        return LocalStore(Path(store.root) / prefix)
    if isinstance(store, FsspecStore):
        return FsspecStore(store.fs, path=f"{store.path.rstrip('/')}/{prefix}")
    return MemoryStore()  # in-process targets cannot outlive the process anyway


def _intermediate(plan: RechunkPlan, target: Any, state: str) -> Any:
    import zarr
    from zarr.codecs import BloscCodec

    assert plan.intermediate_chunks is not None
    store = _beside(target.store, f"{state}/intermediate")
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
    state: str,
    shape: tuple[int, ...],
    runner: TaskRunner,
    emit: Callable[..., None],
) -> tuple[int, int, int]:
    size = stage.bytes_written
    boxes = list(task_boxes(shape, stage.task_shape))
    done = _done(dest.store, state, stage)
    todo = [
        (source, dest, f"{state}/{stage.name}/{i}", box)
        for i, box in enumerate(boxes)
        if i not in done
    ]
    moved = 0
    finished = len(boxes) - len(todo)
    start = time.perf_counter()
    emit("stage-start", stage.name, finished, len(boxes), 0, 0.0, size)
    for nbytes in runner(copy_task, todo, stage.parallel):
        moved += nbytes
        finished += 1
        seconds = time.perf_counter() - start
        emit("task-done", stage.name, finished, len(boxes), moved, seconds, size)
    emit("stage-done", stage.name, finished, len(boxes), moved, time.perf_counter() - start, size)
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
        if want.dtype != got.dtype and want.dtype.newbyteorder("=") == got.dtype:
            want = want.astype(got.dtype)  # a v3 target stores native byte order: lossless
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
    state: str = MARKER_PREFIX,
    runner: TaskRunner = thread_runner,
    events: Events | None = None,
    name: str = "",
) -> RechunkResult:
    """Execute ``plan``: copy ``source`` into ``target`` (a zarr array of the target layout).

    Parameters
    ----------
    plan
        From :func:`chunkwise.plan.rechunk.plan_rechunk` for these two arrays.
    source
        Anything with ``shape``, ``dtype`` and NumPy-style slicing (a zarr array, a
        :mod:`chunkwise.engine.readers` reader, NumPy). It is only read.
    target
        The target zarr array, already created with the plan's layout. Markers of an
        earlier, interrupted run of the same plan in its store are honoured.
    verify
        ``"checksum"`` (default), ``"full"`` or ``"none"``.
    state
        Key prefix in the target store for this array's markers and intermediate array.
    runner
        Runs the tasks: :func:`thread_runner` (default) or a Dask runner.
    events
        Called with a :class:`RechunkEvent` as stages start, tasks finish and
        verification ends.
    name
        The array's path, reported in events.

    Raises
    ------
    VerificationError
        When the target does not match the source.
    """
    start = time.perf_counter()

    def emit(
        kind: EventKind, stage: str, done: int, total: int, nbytes: int, s: float, size: int = 0
    ) -> None:
        if events is not None:
            events(RechunkEvent(kind, name, stage, done, total, nbytes, s, size))

    run = skipped = moved = 0
    if len(plan.stages) == 1:
        passes = [(plan.stages[0], source, target)]
    else:
        inter = _intermediate(plan, target, state)
        first, second = plan.stages
        passes = [(first, source, inter), (second, inter, target)]
    for stage, src, dst in passes:
        r, s, m = _run_stage(stage, src, dst, state, plan.shape, runner, emit)
        run, skipped, moved = run + r, skipped + s, moved + m
    checked = time.perf_counter()
    _verify(source, target, plan, verify)
    boxes = plan.stages[-1].tasks
    emit("verify-done", "verify", boxes, boxes, 0, time.perf_counter() - checked)
    _tidy(target.store, state)
    return RechunkResult(run, skipped, moved, time.perf_counter() - start, verify)


#: A temporary file zarr's LocalStore writes before renaming it into place; a kill in
#: between leaves it behind.
_PARTIAL_WRITE = re.compile(r"\.[0-9a-f]{32}\.partial$")


def _tidy(store: Any, state: str = MARKER_PREFIX) -> None:
    """Remove the markers, the intermediate array and writes a kill left half-done."""
    from zarr.core.sync import sync

    async def tidy() -> None:
        await store.delete_dir(state)
        leftovers = [key async for key in store.list() if _PARTIAL_WRITE.search(key)]
        for key in leftovers:
            await store.delete(key)

    sync(tidy())
