"""Carry out a :class:`~chunkwise.plan.rechunk.RechunkPlan` on zarr arrays, locally.

Tasks run on a thread pool (zarr's codecs release the GIL), ``stage.parallel`` at a time.
Each task reads its region and writes it whole into the next array, so every target
shard is written exactly once, by one task, without reading it first.

**Resumable.** When a task's write has completed (and been read back), an empty marker
object ``<state>/<stage>/<task>`` (``<task>-unchecked`` without read-back) is stored *in
the target store* (``state`` defaults to ``.chunkwise-rechunk``; one prefix per array of a
group); a rerun of the same plan skips every marked task, so a run killed at any moment
resumes where it stopped and never rewrites a finished shard. The two-pass intermediate
array lives under the same prefix; it stores every chunk (fill-valued ones too), so a
rerun trusts a first-pass marker only while the intermediate chunks it wrote are all
there. When the whole array is written and verified, ``<state>/done-<verify>`` says so
*before* anything is removed: the markers and the intermediate then go in any order, and
a rerun that finds ``done-*`` skips the array whatever else a kill left behind.

**Executors.** Tasks are plain functions of picklable arguments (the source reader, the
zarr arrays, the task's box), so the same tasks run on a local thread pool or on Dask
workers (:mod:`chunkwise.rechunking.dask_executor`), each writing straight to the target
store: no data passes through the caller or a scheduler.

**Verified.** With ``"readback"`` (the default) every task that writes the target reads
back what it wrote, in batches of whole write units, and compares it bit for bit with the
data it read, *before* marking itself done: a marker therefore means "written and
checked". With two passes the chain is checked link by link (source = intermediate, then
intermediate = target), so the target equals the source without reading the source again
in the target's misaligned order. The first link is checked by checksum where it is used:
a first-pass task records the CRC-32 of every intermediate chunk, computed from the values
it read from the source, in its marker (``<task>-crc``), and the second pass compares them
with the CRC-32 of the values it reads from the intermediate before it writes anything
from them (numbers, dates and booleans; other types are read back). That checks codec,
storage and position of every chunk at the moment it is used, instead of decoding the
intermediate twice. ``"full"`` adds an independent pass at the end comparing every element
of source and target (slow when the grids are misaligned: the source is read once per
target task); ``"none"`` checks nothing. A mismatch names the first differing index.

**Engines and memory.** The arrays are opened with the run's engine
(:mod:`chunkwise.io.engines`: zarrs or zarr-python's own pipeline). glibc keeps freed
buffers on its heap for reuse (:func:`tame_allocator`), trimmed when a stage ends, and
after a task only once the process nears its projected peak (:func:`trim_above`).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from chunkwise.errors import ChunkwiseError
from chunkwise.io.engines import os_error_of
from chunkwise.io.markers import MARKER_PREFIX
from chunkwise.plan.rechunk import READ_CONCURRENCY, RechunkPlan, Stage, batch_shape

__all__ = [
    "MARKER_PREFIX",
    "MMAP_THRESHOLD",
    "PARTIAL_WRITE",
    "PHASES",
    "VERIFY_MODES",
    "Checksums",
    "RechunkEvent",
    "RechunkResult",
    "TaskRunner",
    "TaskTimes",
    "VerificationError",
    "chunk_sums",
    "copy_task",
    "finished",
    "format_box",
    "mmap_threshold_for",
    "parts",
    "peak_rss",
    "precise_allocation",
    "readback_boxes",
    "release_memory",
    "run_plan",
    "start_memory_watch",
    "tame_allocator",
    "task_boxes",
    "thread_runner",
    "tidy_state",
    "trim_above",
    "trim_room",
    "unreadable",
    "warm_up",
]


Verify = Literal["readback", "full", "none"]

#: The verification modes, default first.
VERIFY_MODES: tuple[Verify, ...] = ("readback", "full", "none")


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


#: The timed phases of a task, in order (:class:`TaskTimes`).
PHASES: tuple[str, ...] = ("read", "write", "check", "mark")


@dataclass(frozen=True, slots=True)
class TaskTimes:
    """What one task did, and the wall time of each of its phases, seconds.

    Attributes
    ----------
    nbytes
        Uncompressed bytes written.
    read
        Reading its region from the source: requests, decoding, assembling.
    write
        Writing it: cutting into chunks, encoding, storing.
    check
        Checking what it wrote: reading back and comparing, or taking the checksums of a
        first pass into an intermediate (0 unverified).
    mark
        Storing its marker.
    """

    nbytes: int
    read: float = 0.0
    write: float = 0.0
    check: float = 0.0
    mark: float = 0.0

    def phases(self) -> tuple[float, ...]:
        """The phases' seconds in :data:`PHASES` order."""
        return (self.read, self.write, self.check, self.mark)


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
    busy
        Seconds the tasks run so far spent in each of :data:`PHASES`, summed over tasks
        (so over parallel tasks they exceed ``seconds``); for profiles.
    parallel
        Tasks the stage runs at once (per worker on Dask).
    """

    kind: EventKind
    array: str
    stage: str
    done: int
    total: int
    nbytes: int
    seconds: float
    stage_bytes: int = 0
    busy: tuple[float, ...] = ()
    parallel: int = 0


#: A subscriber to run events.
Events = Callable[[RechunkEvent], None]

#: A task runner: ``runner(fn, argument_tuples, parallel)`` calls ``fn(*args)`` for every
#: tuple, at most ``parallel`` at a time (per worker on Dask), and yields results as they
#: complete (any order).
TaskRunner = Callable[[Callable[..., Any], Iterable[tuple[Any, ...]], int], Iterable[Any]]


def thread_runner(
    fn: Callable[..., Any], items: Iterable[tuple[Any, ...]], parallel: int
) -> Iterator[Any]:
    """Run tasks on a local thread pool, ``parallel`` at a time (codecs release the GIL).

    Tasks are taken from ``items`` as others finish, at most twice ``parallel`` submitted
    at once: a stage of 32,768 tiny tasks submitted whole held a future and an argument
    tuple per task (64 MiB .npy to 1x32x32 chunks: +79 MiB against a projected 15.6)."""
    window = 2 * max(1, parallel)
    pending = iter(items)
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        running = {pool.submit(fn, *args) for args in itertools.islice(pending, window)}
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                yield future.result()
                following = next(pending, None)
                if following is not None:
                    running.add(pool.submit(fn, *following))


def task_boxes(shape: tuple[int, ...], task: tuple[int, ...]) -> Iterator[tuple[slice, ...]]:
    """The regions of a stage's tasks, in C order (edge regions clipped to the array)."""
    ranges = [range(0, n, t) for n, t in zip(shape, task, strict=True)]
    for corner in itertools.product(*ranges):
        yield tuple(slice(c, min(c + t, n)) for c, t, n in zip(corner, task, shape, strict=True))


#: A task's marker: its number, with ``-unchecked`` when it ran without verification and
#: ``-crc`` when it holds the checksums of what it wrote (a first pass into an
#: intermediate, checked when the second pass reads it).
_MARKER = re.compile(r"(\d+)(-unchecked|-crc)?")
#: How much each verification mode checks, to decide whether an earlier run's suffices.
_STRENGTH: dict[str, int] = {"none": 0, "readback": 1, "full": 2}


def _marker(state: str, stage: Stage, task: int, check: bool, sums: bool = False) -> str:
    suffix = "-crc" if check and sums else "" if check else "-unchecked"
    return f"{state}/{stage.name}/{task}{suffix}"


def _names(store: Any, prefix: str) -> list[str]:
    """The last path part of every key under ``prefix``."""
    from zarr.core.sync import sync

    async def listed() -> list[str]:
        return [key.rsplit("/", 1)[1] async for key in store.list_prefix(prefix)]

    return list(sync(listed()))


def _done(store: Any, state: str, stage: Stage, check: bool, sums: bool = False) -> set[int]:
    """Tasks an earlier run completed; when ``check``, only those it also verified, and
    when ``sums``, only those whose markers hold checksums (a first pass the second pass
    checks: a marker of an older release, read back but without checksums, is redone)."""
    names = _names(store, f"{state}/{stage.name}/")
    # Only whole markers count: a write killed midway may leave a temporary file.
    found = [m for m in map(_MARKER.fullmatch, names) if m is not None]
    if not check:
        return {int(m[1]) for m in found}
    wanted = ("-crc",) if sums else (None, "-crc")
    return {int(m[1]) for m in found if m[2] in wanted}


def _with_inputs(done: set[int], boxes: list[tuple[slice, ...]], written: Any) -> set[int]:
    """The first-pass tasks of ``done`` whose intermediate chunks all exist in ``written``
    (the intermediate array): a marker is not trusted once what it stands for is gone."""
    from zarr.core.sync import sync

    if not done:
        return done

    async def listed() -> set[str]:
        return {key async for key in written.store.list_prefix("")}

    present = sync(listed())
    chunks = tuple(written.chunks)
    encode = written.metadata.encode_chunk_key
    kept = set()
    for index in done:
        ranges = [
            range(b.start // c, -(-b.stop // c)) for b, c in zip(boxes[index], chunks, strict=True)
        ]
        if all(encode(coords) in present for coords in itertools.product(*ranges)):
            kept.add(index)
    return kept


def finished(store: Any, state: str) -> Verify | None:
    """How an earlier run verified this array when it finished it (the strongest
    ``<state>/done-<mode>`` marker), or ``None`` when no run finished it."""
    from zarr.core.sync import sync

    for mode in sorted(_STRENGTH, key=_STRENGTH.__getitem__, reverse=True):
        if sync(store.exists(_done_marker(state, mode))):
            return mode  # type: ignore[return-value]
    return None


def _done_marker(state: str, verify: str) -> str:
    return f"{state}/done-{verify}"


def _mark(store: Any, key: str, content: bytes = b"") -> None:
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    sync(store.set(key, default_buffer_prototype().buffer.from_bytes(content)))


#: Kinds of NumPy dtype whose values the intermediate is checked for by checksum (fixed
#: size, no padding): booleans, integers, floats, complex numbers, dates and durations.
_SUMMABLE_KINDS = "biufcmM"


@dataclass(frozen=True, slots=True)
class Checksums:
    """Where a second-pass task finds the CRC-32 of every intermediate chunk it reads, as
    the first pass recorded them in its markers from the values it read from the source.

    Attributes
    ----------
    store
        The store holding the first pass's markers (the intermediate's).
    prefix
        Their key prefix, ``<state>/<first stage>/``.
    shape, task, chunks
        The array's shape, the first pass's task shape and the intermediate's chunks.
    """

    store: Any
    prefix: str
    shape: tuple[int, ...]
    task: tuple[int, ...]
    chunks: tuple[int, ...]

    def tasks_over(self, box: tuple[slice, ...]) -> list[int]:
        """The first-pass tasks whose regions overlap ``box`` (their numbers, C order)."""
        grid = [-(-n // t) for n, t in zip(self.shape, self.task, strict=True)]
        ranges = [range(b.start // t, -(-b.stop // t)) for b, t in zip(box, self.task, strict=True)]
        return [int(np.ravel_multi_index(corner, grid)) for corner in itertools.product(*ranges)]


def _canonical(dtype: Any) -> np.dtype[Any]:
    """``dtype`` in little-endian byte order: the bytes checksums are taken over, so that
    the same values give the same checksum whichever byte order they were read in (a
    big-endian Zarr v2 intermediate reads back native)."""
    canonical: np.dtype[Any] = np.dtype(dtype).newbyteorder("<")
    return canonical


def chunk_sums(
    values: np.ndarray[Any, Any], box: tuple[slice, ...], chunks: tuple[int, ...], dtype: Any
) -> np.ndarray[Any, Any]:
    """CRC-32 of the bytes of each chunk of ``values`` (the region ``box``, which starts
    on the grid of ``chunks``), as ``dtype`` in little-endian C order, on the grid of the
    region's chunks (uint32). ``zlib.crc32`` reads 4 GB/s here, without the GIL."""
    import zlib

    grid = tuple(-(-(b.stop - b.start) // c) for b, c in zip(box, chunks, strict=True))
    sums = np.zeros(grid, dtype=np.uint32)
    canonical = _canonical(dtype)
    for sub, inner in parts(box, chunks):
        # As bytes: a buffer of dates or durations will not cast to bytes itself.
        block = np.ascontiguousarray(values[inner], dtype=canonical).reshape(-1).view(np.uint8)
        at = tuple((s.start - b.start) // c for s, b, c in zip(sub, box, chunks, strict=True))
        sums[at] = zlib.crc32(block.data)
    return sums


def _sums_document(box: tuple[slice, ...], chunks: tuple[int, ...], sums: Any) -> bytes:
    """A first-pass marker's content: where its chunks start in the array's chunk grid,
    and their CRC-32s in C order."""
    origin = [b.start // c for b, c in zip(box, chunks, strict=True)]
    document = {"origin": origin, "shape": list(sums.shape), "crc32": sums.ravel().tolist()}
    return json.dumps(document, separators=(",", ":")).encode()


def _check_sums(expect: Checksums, box: tuple[slice, ...], values: np.ndarray[Any, Any]) -> None:
    """Compare the CRC-32 of every intermediate chunk of ``values`` (read from the
    intermediate for ``box``) with what the first pass recorded from the source; of each
    marker only the chunks inside ``box`` are kept."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    chunks = expect.chunks
    low = [b.start // c for b, c in zip(box, chunks, strict=True)]
    got = chunk_sums(values, box, chunks, values.dtype)
    recorded = np.zeros(got.shape, dtype=np.int64) - 1  # -1: nothing recorded
    for task in expect.tasks_over(box):
        key = f"{expect.prefix}{task}-crc"
        found = sync(expect.store.get(key, prototype=default_buffer_prototype()))
        if found is None:
            continue
        try:
            document = json.loads(found.to_bytes())
            sums = np.asarray(document["crc32"], dtype=np.int64).reshape(document["shape"])
            origin = [int(o) for o in document["origin"]]
        except (ValueError, KeyError, TypeError):  # cut short or overwritten
            raise VerificationError(
                f"this run's record of its first pass is damaged (marker {key!r} does not "
                "hold its checksums); it is not trustworthy: rerun with --overwrite."
            ) from None
        theirs, mine = [], []
        for o, n, lo, size in zip(origin, sums.shape, low, got.shape, strict=True):
            start, stop = max(o, lo), min(o + n, lo + size)
            theirs.append(slice(start - o, max(start, stop) - o))
            mine.append(slice(start - lo, max(start, stop) - lo))
        recorded[tuple(mine)] = sums[tuple(theirs)]
    differ = np.argwhere(recorded != got)
    if len(differ):
        at = tuple(int(i) for i in differ[0])
        where = tuple((lo + i) * c for lo, i, c in zip(low, at, chunks, strict=True))
        missing = recorded[at] < 0
        raise VerificationError(
            f"this run's intermediate copy differs from the source in its chunk at index "
            f"{where} ({'no checksum recorded for it' if missing else 'CRC-32 differs'}); "
            "it is not trustworthy: rerun with --overwrite."
        )


def copy_task(
    source: Any,
    dest: Any,
    marker: str,
    box: tuple[slice, ...],
    check: bool = False,
    read_batch: tuple[int, ...] = (),
    write_batch: tuple[int, ...] = (),
    record: bool = False,
    expect: Checksums | None = None,
) -> TaskTimes:
    """One task: read ``box`` of ``source``, write it whole into ``dest``, read it back and
    compare when ``check``, then store the ``marker`` key in ``dest``'s store.
    Returns the bytes written (uncompressed) and the time of each phase.

    A first pass into the intermediate checks by checksum instead of reading back
    (``record``): its marker holds the CRC-32 of every chunk it wrote, computed from the
    values read from the source, and the second pass (``expect``) compares them with the
    CRC-32 of the values it reads from the intermediate, before writing the target. That
    checks each chunk where it is used, end to end (codec, storage, position), without
    decoding the intermediate twice.

    Reads go in calls of ``read_batch`` (whole source chunks), writes and read-backs in
    calls of ``write_batch`` (whole write units), so zarr's bookkeeping per chunk of a
    call stays bounded however many chunks the task spans (``()``: one call each).

    A top-level function of picklable arguments, so Dask workers can run it.

    Raises
    ------
    VerificationError
        When ``check`` and what ``dest`` returns differs from what was written; the task
        is then not marked done.
    """
    clock = time.perf_counter
    began = clock()
    values = _read(source, box, read_batch)
    _tidy()  # the read's buffers, before the write allocates its own
    read = clock()
    if expect is not None:
        _check_sums(expect, box, values)
    try:
        _write(dest, box, values, write_batch)
    except Exception as exc:
        if os_error_of(exc) is not None:  # the system's (a full disk): not the objects'
            raise
        # An object cut short by a kill (zarrs and zarr-python write files in place)
        # fails to decode where zarr-python 3.1 reads a shard before rewriting it. Every
        # object of the region is this task's alone: remove them and write once more.
        _remove_objects(dest, box)
        _write(dest, box, values, write_batch)
    written = clock()
    content = b""
    if record:
        chunks = tuple(dest.chunks)
        content = _sums_document(box, chunks, chunk_sums(values, box, chunks, dest.dtype))
    if check:
        _tidy()  # the write's buffers, before reading back
        _check_written(dest, box, values, write_batch)
    checked = clock()
    _mark(dest.store, marker, content)
    marked, nbytes = clock(), int(values.nbytes)
    del values
    _tidy()
    return TaskTimes(nbytes, read - began, written - read, checked - written, marked - checked)


def parts(
    box: tuple[slice, ...], batch: tuple[int, ...]
) -> Iterator[tuple[tuple[slice, ...], tuple[slice, ...]]]:
    """``box`` cut into sub-boxes of ``batch`` from its origin (clipped to it), each with
    where it lies inside ``box``; the whole box at once when ``batch`` is ``()``."""
    if not batch:
        yield box, tuple(slice(0, b.stop - b.start) for b in box)
        return
    ranges = [range(b.start, b.stop, max(1, n)) for b, n in zip(box, batch, strict=True)]
    for corner in itertools.product(*ranges):
        sub = tuple(
            slice(c, min(c + n, b.stop)) for c, n, b in zip(corner, batch, box, strict=True)
        )
        yield (
            sub,
            tuple(
                slice(s.start - b.start, s.stop - b.start) for s, b in zip(sub, box, strict=True)
            ),
        )


def _read(source: Any, box: tuple[slice, ...], batch: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """``source[box]``, read in calls of ``batch``; a failure becomes one sentence naming
    the object that cannot be read."""
    try:
        if not batch or all(n >= b.stop - b.start for n, b in zip(batch, box, strict=True)):
            return np.asarray(source[box])
        values = np.empty(tuple(b.stop - b.start for b in box), dtype=source.dtype)
        for sub, inner in parts(box, batch):
            values[inner] = source[sub]
        return values
    except ChunkwiseError:
        raise
    except Exception as exc:  # a codec, a store or a file that fails on these bytes
        raise unreadable(source, box, exc) from None


def _zarr_array_of(source: Any) -> Any:
    """The zarr array behind ``source`` (itself, or a reader's), or ``None``."""
    import zarr

    if isinstance(source, zarr.Array):
        return source
    opened = getattr(source, "zarr_array", None)
    return opened() if callable(opened) else None


def _first_failure(array: Any, box: tuple[slice, ...]) -> tuple[str, BaseException] | None:
    """The first stored object of ``array`` in ``box`` that cannot be read, with why."""
    unit = tuple(array.shards or array.chunks)
    ranges = [range(b.start // u, -(-b.stop // u)) for b, u in zip(box, unit, strict=True)]
    for coords in itertools.product(*ranges):
        cell = tuple(
            slice(max(b.start, c * u), min(b.stop, (c + 1) * u))
            for b, c, u in zip(box, coords, unit, strict=True)
        )
        try:
            array[cell]
        except Exception as exc:
            key = array.metadata.encode_chunk_key(coords)
            return (f"{array.path}/{key}" if array.path else key), exc
    return _truncated_blosc(array, ranges)


def _truncated_blosc(array: Any, ranges: list[range]) -> tuple[str, BaseException] | None:
    """A Blosc-compressed object shorter than its header says. Blosc decodes a truncated
    buffer by reading past its end, so whether that fails depends on the memory behind
    it: the whole region can fail where each object alone happens not to. The header's
    compressed size tells for sure (unsharded arrays compressed with Blosc only). Zarr v3
    sources never get here: they are opened with zarr_compat.checked_reads, which makes
    every read of such an object fail; this is for v2's numcodecs Blosc."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    from chunkwise.io.zarr_compat import blosc_shortfall

    meta = array.metadata.to_dict()
    named = json.dumps(meta.get("codecs") or meta.get("compressor") or "")
    if array.shards is not None or '"blosc"' not in named:
        return None
    for coords in itertools.product(*ranges):
        key = array.metadata.encode_chunk_key(coords)
        path = f"{array.path}/{key}" if array.path else key
        found = sync(array.store.get(path, prototype=default_buffer_prototype()))
        raw = b"" if found is None else found.to_bytes()
        why = blosc_shortfall(len(raw), raw[:16]) if raw else None
        if why is not None:
            return path, ValueError(why)
    return None


def _store_place(store: Any) -> str:
    root = getattr(store, "root", None)
    if root is not None:
        return str(root)
    path = getattr(store, "path", None)
    fs = getattr(store, "fs", None)
    if path is not None and fs is not None:
        protocol = fs.protocol[0] if isinstance(fs.protocol, tuple) else fs.protocol
        return f"{protocol}://{path}"
    return type(store).__name__


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".") or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def unreadable(source: Any, box: tuple[slice, ...], exc: BaseException) -> ChunkwiseError:
    """One sentence for a read of ``box`` from ``source`` that failed with ``exc``: the
    object that cannot be read (found by reading the box's stored objects one by one),
    why, and what to do."""
    from chunkwise.errors import StoreError

    array = _zarr_array_of(source)
    found = _first_failure(array, box) if array is not None else None
    if array is None or found is None:
        where = getattr(source, "path", None) or type(source).__name__
        place = f"{where!s} at {format_box(box)}"
    else:
        key, exc = found
        place = f"stored object {key!r} of {_store_place(array.store)}"
    ours = MARKER_PREFIX in place
    if isinstance(exc, PermissionError):
        fix = "give read access to it and run the same command again to resume"
        why = "permission denied"
    elif ours:
        fix = "this run's intermediate copy is damaged: run the same command with --overwrite"
        why = _reason(exc)
    else:
        fix = (
            "the source is damaged there: restore it from a backup (nothing of it was "
            "written to the target)"
        )
        why = _reason(exc)
    return StoreError(f"{place} cannot be read ({why}); {fix}.")


def format_box(box: tuple[slice, ...]) -> str:
    """``[0:10, 5:8]``."""
    return "[" + ", ".join(f"{b.start}:{b.stop}" for b in box) + "]"


def _write(
    dest: Any, box: tuple[slice, ...], values: np.ndarray[Any, Any], write_batch: tuple[int, ...]
) -> None:
    """Write ``values`` into ``box`` of ``dest`` in calls of ``write_batch``."""
    writer = _writer(dest, values)
    for sub, inner in parts(box, write_batch):
        writer[sub] = values[inner]


def _remove_objects(dest: Any, box: tuple[slice, ...]) -> None:
    """Delete the stored objects (chunks, or shards) of ``dest`` inside ``box``, which
    starts on their grid."""
    from zarr.core.sync import sync

    unit = tuple(getattr(dest, "shards", None) or dest.chunks)
    ranges = [range(b.start // u, -(-b.stop // u)) for b, u in zip(box, unit, strict=True)]
    where = dest.async_array.store_path
    for coords in itertools.product(*ranges):
        sync((where / dest.metadata.encode_chunk_key(coords)).delete())


def _writer(dest: Any, values: np.ndarray[Any, Any]) -> Any:
    """``dest`` as the handle to write ``values`` with: when no chunk of the region is all
    fill value, one that skips zarr's own per-chunk emptiness test (it compares every
    chunk element by element as raw void bytes: 0.8 CPU-s on the 1 GiB benchmark job,
    benchmarks/bench_rechunk_internals.py);
    otherwise ``dest`` itself, so all-fill chunks stay unwritten as zarr would leave them.
    The region starts on the chunk grid (task regions do)."""
    with_config = getattr(dest, "with_config", None)
    if with_config is None or dest.config.write_empty_chunks:
        return dest
    if _has_fill_chunk(values, tuple(dest.chunks), dest.fill_value):
        return dest
    return with_config({"write_empty_chunks": True})


def _has_fill_chunk(values: np.ndarray[Any, Any], chunks: tuple[int, ...], fill: Any) -> bool:
    """Whether some chunk of ``values`` (on a grid of ``chunks`` from its origin) holds
    only ``fill``, bit for bit; ``True`` when unsure (zarr then decides per chunk)."""
    if values.dtype.kind in "OT" or values.dtype.fields is not None:
        return True
    try:
        fill_bits = _as_bits(np.asarray(0 if fill is None else fill, dtype=values.dtype).reshape(1))
    except (TypeError, ValueError):
        return True
    bits = _as_bits(values)
    if bits.ndim != values.ndim or values.ndim == 0 or values.size == 0:
        return True
    step = chunks[0]
    for start in range(0, values.shape[0], step):  # a row of chunks at a time: small temps
        differs = bits[start : start + step] != fill_bits[0]
        for axis, size in enumerate(chunks):
            edges = np.arange(0, differs.shape[axis], size)
            differs = np.logical_or.reduceat(differs, edges, axis=axis)
        if not differs.all():
            return True
    return False


def readback_boxes(
    box: tuple[slice, ...], unit: tuple[int, ...], count: int
) -> Iterator[tuple[slice, ...]]:
    """``box`` cut into batches of at most ``count`` whole write units (the last dims
    first), clipped to ``box``: what one read-back request covers, so reading back holds
    no more objects at once than writing did.

    ``box`` must start on the write-unit grid (task regions do)."""
    extents = tuple(b.stop - b.start for b in box)
    for sub, _ in parts(box, batch_shape(extents, unit, count)):
        yield sub


def _check_written(
    dest: Any, box: tuple[slice, ...], values: np.ndarray[Any, Any], batch: tuple[int, ...]
) -> None:
    """Read ``box`` back from ``dest`` in calls of ``batch`` (whole write units; the
    planner's write batch) and compare it bit for bit with ``values`` (what was written
    there)."""
    if not batch:
        unit = tuple(dest.shards or dest.chunks)
        batch = batch_shape(tuple(b.stop - b.start for b in box), unit, READ_CONCURRENCY)
    for sub, inner in parts(box, batch):
        try:
            got = np.asarray(dest[sub])
        except Exception as exc:
            found = _first_failure(dest, sub)
            what = f"object {found[0]!r}" if found is not None else f"region {format_box(sub)}"
            raise VerificationError(
                f"the target's {what} cannot be read back after writing it "
                f"({_reason(found[1] if found else exc)}); it is not trustworthy: check the "
                "target's storage, then rerun with --overwrite."
            ) from None
        _compare(values[inner], got, sub)


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


def start_memory_watch() -> int:
    """Reset this process's peak resident memory to its current value (Linux: write 5 to
    ``/proc/self/clear_refs``) and return the current resident memory, bytes, so that a
    later :func:`peak_rss` minus this is what the work in between added. Elsewhere the
    peak is the process's lifetime peak and the difference an upper bound."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
    return _resident()


def warm_up() -> None:
    """Load what every task uses (zarr's event loop and thread pool, the codecs) with a
    tiny round trip in memory, so that a run's memory watch, started after this, counts
    the run and not one-time imports. Called on the local process and on each Dask
    worker before the watch starts."""
    import zarr
    from zarr.codecs import BloscCodec
    from zarr.storage import MemoryStore

    tiny = zarr.create_array(
        MemoryStore(), shape=(4, 4), chunks=(2, 2), dtype="float32",
        compressors=BloscCodec(cname="zstd"),
    )  # fmt: skip
    tiny[...] = np.ones((4, 4), "float32")
    np.asarray(tiny[...])


#: Buffers from this size up, bytes, are mapped and unmapped by glibc on their own; smaller
#: ones are taken from and returned to its heap, and reused. 32 MiB is the most glibc's
#: dynamic threshold climbs to; fixed, it does not depend on the allocator's history nor
#: on the environment (Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``,
#: which pins the threshold at 128 KiB: every decoded chunk is then mapped, zeroed by the
#: kernel and unmapped). A 4 MiB threshold and a trim of the heap after every task
#: (chunkwise before 0.16) cost the 1 GiB map -> time-series job 1.5-2.4 million page
#: faults and 9.9-11.2 s of system CPU in a 14 s run (benchmarks/bench_rechunk_profile.py,
#: "allocator as before"). The
#: memory model counts what the heap keeps (``MemoryModel.unmapped_bytes`` = this).
MMAP_THRESHOLD = 32 * 2**20


def tame_allocator(mmap_threshold: int = MMAP_THRESHOLD, precise: bool = False) -> None:
    """Cap glibc at two malloc arenas, so memory freed by one thread's codec buffers is
    reused by the next instead of idling in a per-thread arena, and fix its mmap threshold
    at ``mmap_threshold`` (at most :data:`MMAP_THRESHOLD`; see
    :func:`mmap_threshold_for`) and its trim threshold at twice that; or, when
    ``precise`` (small tasks: :func:`precise_allocation`), map buffers of 4 MiB and up on
    their own and hand the top of the heap back as soon as it is free
    (:data:`PRECISE_TRIM_THRESHOLD`), with tasks trimming the heap between their phases
    (``trim_above`` at the run's start). The heap is trimmed when a stage ends
    (:data:`release_memory`). Process-wide; chunkwise calls it when a rechunk run starts,
    here and on every Dask worker. A no-op off glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8
    threshold = min(MMAP_THRESHOLD, max(1, mmap_threshold))
    if precise:
        threshold = PRECISE_MMAP_THRESHOLD
    mallopt(m_arena_max, 2)
    mallopt(m_mmap_threshold, threshold)
    mallopt(m_trim_threshold, PRECISE_TRIM_THRESHOLD if precise else 2 * threshold)


#: Tasks whose regions are smaller than this, bytes, run with :func:`tame_allocator`'s
#: precise settings (``precise_allocation``): freed buffers are then a large part of what a
#: small task holds, and keeping them overran the projection (a 64 MiB job at a 32 MiB
#: budget in tasks of 2-4 MiB rose 31-33 MiB against 31.2 projected; 22-24 MiB precise,
#: and faster: 2.0-2.5 s against 3.0 s; benchmarks/bench_rechunk_memory.py), while
#: the page faults of re-mapping small buffers cost little.
PRECISE_REGION_BYTES = 4 * 2**20
#: The mmap threshold of the precise settings, bytes.
PRECISE_MMAP_THRESHOLD = 4 * 2**20
#: glibc's default trim threshold, bytes: free memory at the top of the heap beyond this
#: goes back to the system at once (the precise settings). On the 1 GiB map -> time-series
#: job, with the 4 MiB threshold, it is what cost the "allocator as before" profile its page
#: faults (:data:`MMAP_THRESHOLD`).
PRECISE_TRIM_THRESHOLD = 128 * 2**10


def precise_allocation(region_bytes: int) -> bool:
    """Whether a run whose smallest task region is ``region_bytes`` uses the precise
    allocator settings (:data:`PRECISE_REGION_BYTES`)."""
    return region_bytes < PRECISE_REGION_BYTES


#: The mmap threshold never goes below this, bytes.
MIN_MMAP_THRESHOLD = 2**20


def mmap_threshold_for(region_bytes: int) -> int:
    """The mmap threshold for a run whose smallest task region is ``region_bytes``:
    buffers that large (a region, a chunk as large as one) are mapped on their own and
    given back as soon as they are freed, so a task's peak is what it holds; smaller ones
    (the many chunks and codec buffers) stay on the heap for reuse. Kept on the heap too,
    a memory-mapped 8000x8000 ``.npy`` to 12 MiB row blocks rose 96-105 MiB against 99.5
    projected (49 MiB with such buffers mapped;
    benchmarks/bench_rechunk_projection.py)."""
    return max(MIN_MMAP_THRESHOLD, min(MMAP_THRESHOLD, region_bytes))


def _load_trim() -> Callable[[], None]:
    """glibc's ``malloc_trim``: hands freed heap pages back to the OS, so that what one
    stage's buffers left on the heap is not held through the next. Not after every task:
    pages handed back are faulted in and zeroed again by the next task. A no-op
    elsewhere."""
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


#: Trim the heap (:func:`_load_trim`).
release_memory = _load_trim()

#: Resident bytes above which a task that ends trims the heap (:func:`trim_above`).
_trim_above: int | None = None


def trim_room(projected: int, task: int) -> int:
    """How far above its start a run may hold memory before a task that ends trims the
    heap: the projected rise less the largest task's memory, so that one more task,
    however it allocates, still fits under the projection."""
    return max(0, projected - task)


def trim_above(limit: int | None) -> None:
    """Make every task that ends with this process holding more than ``limit`` resident
    bytes hand the heap's free pages back (``None``: only when a stage ends). Freed
    buffers are otherwise kept for reuse, which saves the kernel faulting and zeroing them
    again, but what the heap keeps of one task's buffers need not fit the next task's:
    a memory-mapped 8000x8000 ``.npy`` to row blocks rose 104 MiB against 99.5 projected
    with a trim only past 3/4 of the projection, and a lazy 384 MiB dataset at a 128 MiB
    budget 131 MiB against 117 without any (benchmarks/bench_rechunk_projection.py,
    tests/rechunking/test_dataset_convert.py). :func:`trim_room` sets the limit."""
    global _trim_above
    _trim_above = limit


def _tidy() -> None:
    """Trim the heap when this process holds more than :func:`trim_above` allows (a task
    does between its read, its write and its read-back, and when it ends)."""
    if _trim_above is not None and _resident() > _trim_above:
        release_memory()


def _resident() -> int:
    """This process's resident memory, bytes (0 where ``/proc`` is missing)."""
    import os

    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _beside(store: Any, prefix: str) -> Any:
    """A store over the same storage rooted at ``prefix`` (zarr will not nest an array
    inside another array's hierarchy, so the intermediate gets a root of its own)."""
    from zarr.storage import FsspecStore, LocalStore, MemoryStore

    if isinstance(store, LocalStore):
        return LocalStore(Path(store.root) / prefix)
    if isinstance(store, FsspecStore):
        return FsspecStore(store.fs, path=f"{store.path.rstrip('/')}/{prefix}")
    return MemoryStore()  # in-process targets cannot outlive the process anyway


#: The intermediate's compressor: Blosc lz4 at level 1 (``"none"``: stored raw). Raw was
#: not reliably faster on local disk: the 1 GiB map -> time-series job with zarrs took
#: 8.76 s raw against 8.18 s with lz4 on Python 3.11, 8.06 s against 9.15 s on 3.13 (medians
#: of 3; the page cache copies more bytes what the codec saves), and an object store bills
#: the bytes (benchmarks/bench_rechunk_profile.py).
INTERMEDIATE_COMPRESSOR: Literal["lz4", "none"] = "lz4"


def _intermediate_codec(itemsize: int) -> Any:
    from chunkwise.io.zarr_compat import CheckedBloscCodec

    if INTERMEDIATE_COMPRESSOR == "none":
        return None
    return CheckedBloscCodec(cname=INTERMEDIATE_COMPRESSOR, clevel=1, typesize=itemsize)


def _intermediate(plan: RechunkPlan, target: Any, state: str) -> Any:
    """The two-pass intermediate array: opened when an interrupted run left it, else
    created. It writes every chunk, fill-valued ones too, so that the chunks a first-pass
    marker stands for can be checked to exist (:func:`_with_inputs`)."""
    import zarr

    from chunkwise.io.zarr_compat import checked_reads

    assert plan.intermediate_chunks is not None
    store = _beside(target.store, f"{state}/intermediate")
    config: Any = {"write_empty_chunks": True}
    try:  # an interrupted run left it: resume into it
        with checked_reads():
            return zarr.open_array(store, mode="r+", config=config)
    except FileNotFoundError:  # zarr's ArrayNotFoundError derives from it
        pass
    return zarr.create_array(
        store,
        shape=plan.shape,
        dtype=target.dtype,
        chunks=plan.intermediate_chunks,
        compressors=_intermediate_codec(plan.itemsize),
        zarr_format=3,
        fill_value=target.fill_value,
        config=config,
    )


def _run_stage(
    stage: Stage,
    source: Any,
    dest: Any,
    state: str,
    shape: tuple[int, ...],
    runner: TaskRunner,
    emit: Callable[..., None],
    check: bool,
    to_intermediate: bool,
    sums: bool = False,
    expect: Checksums | None = None,
) -> tuple[int, int, int]:
    """Run the stage's tasks not yet done; ``check``: each is verified (``sums``: by
    recording checksums, the first pass into an intermediate; else by reading back), and
    ``expect``: the checksums the first pass recorded are compared as the intermediate is
    read."""
    size = stage.bytes_written
    boxes = list(task_boxes(shape, stage.task_shape))
    done = _done(dest.store, state, stage, check, sums)
    if to_intermediate:
        done = _with_inputs(done, boxes, dest)
    indices = [i for i in range(len(boxes)) if i not in done]
    todo = (  # made as the runner takes them: a tuple per task only while it is pending
        (
            source, dest, _marker(state, stage, i, check, sums), boxes[i], check and not sums,
            stage.read_batch, stage.write_batch, check and sums, expect,
        )
        for i in indices
    )  # fmt: skip
    moved = 0
    busy = [0.0] * len(PHASES)
    finished = len(boxes) - len(indices)
    start = time.perf_counter()
    emit("stage-start", stage.name, finished, len(boxes), 0, 0.0, size, (), stage.parallel)
    for times in runner(copy_task, todo, stage.parallel):
        moved += times.nbytes
        busy = [b + t for b, t in zip(busy, times.phases(), strict=True)]
        finished += 1
        seconds = time.perf_counter() - start
        emit(
            "task-done", stage.name, finished, len(boxes), moved, seconds, size, tuple(busy),
            stage.parallel,
        )  # fmt: skip
    release_memory()  # what this stage's buffers left on the heap, before the next
    emit(
        "stage-done", stage.name, finished, len(boxes), moved, time.perf_counter() - start, size,
        tuple(busy), stage.parallel,
    )  # fmt: skip
    return len(indices), len(boxes) - len(indices), moved


def _as_bits(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``values``' bytes as unsigned integers, one per element (a trailing axis of bytes
    for item sizes other than 1, 2, 4 and 8), so equality means bit-for-bit equality (NaN
    payloads and -0.0 included). A view, not a copy, for the common item sizes."""
    size = values.dtype.itemsize
    if size in (1, 2, 4, 8) and values.dtype.kind != "O":
        return values.view(f"u{size}")
    contiguous = np.ascontiguousarray(values)
    return contiguous.view(np.uint8).reshape(*contiguous.shape, size)


#: Elements compared at once: bounds the comparison's temporary to 1 MiB of booleans.
_COMPARE_BLOCK = 2**20


def _mismatch(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Where ``a`` and ``b`` (same shape) differ: bit for bit for fixed-size elements (NaN
    payloads and -0.0 included), field by field for records (padding bytes carry nothing),
    by value for variable-length strings."""
    if a.dtype.fields is not None:
        out = np.zeros(a.shape, dtype=bool)
        for name in a.dtype.names or ():
            field = _mismatch(a[name], b[name])
            out |= field.reshape(*a.shape, -1).any(axis=-1) if field.ndim > a.ndim else field
        return out
    if a.dtype.kind in "OT" or b.dtype.kind in "OT":
        return np.asarray(a != b, dtype=bool)
    x, y = _as_bits(a), _as_bits(b)
    differ: np.ndarray[Any, Any] = np.asarray(x != y)
    return np.asarray(differ.any(axis=-1)) if differ.ndim > a.ndim else differ


def _compare(want: np.ndarray[Any, Any], got: np.ndarray[Any, Any], box: tuple[slice, ...]) -> None:
    """Raise :class:`VerificationError` naming the first index of ``box`` (global
    coordinates) where ``got`` differs from ``want`` (see :func:`_mismatch`)."""
    if want.dtype != got.dtype and want.dtype.newbyteorder("=") == got.dtype.newbyteorder("="):
        want = want.astype(got.dtype)  # the same values in another byte order: lossless
    where: tuple[int, ...] | None = tuple(s.start for s in box)
    if want.shape == got.shape:
        where = None
        if want.ndim == 0:
            if _mismatch(want.reshape(1), got.reshape(1)).any():
                where = ()
        else:
            # Slabs along the first axis, so the comparison never holds a full-size mask.
            row = max(1, math.prod(want.shape[1:]))
            step = max(1, _COMPARE_BLOCK // row)
            for start in range(0, want.shape[0], step):
                differ = _mismatch(want[start : start + step], got[start : start + step])
                if differ.any():
                    first = np.argwhere(differ)[0]
                    first[0] += start
                    where = tuple(int(i) + s.start for i, s in zip(first, box, strict=True))
                    break
    if where is None:
        return
    raise VerificationError(
        f"the target differs from the source at index {where}; it is not "
        "trustworthy: rerun with --overwrite."
    )


def _verify_full(source: Any, target: Any, plan: RechunkPlan) -> None:
    """Compare every element of ``source`` and ``target``, one final-stage region at a
    time."""
    for box in task_boxes(plan.shape, plan.stages[-1].task_shape):
        try:
            want = np.asarray(source[box])
        except ChunkwiseError:
            raise
        except Exception as exc:
            raise unreadable(source, box, exc) from None
        _compare(want, np.asarray(target[box]), box)


def run_plan(
    plan: RechunkPlan,
    source: Any,
    target: Any,
    *,
    verify: Verify = "readback",
    state: str = MARKER_PREFIX,
    runner: TaskRunner = thread_runner,
    events: Events | None = None,
    name: str = "",
    keep_done: bool = False,
) -> RechunkResult:
    """Execute ``plan``: copy ``source`` into ``target`` (a zarr array of the target layout).

    Parameters
    ----------
    plan
        From :func:`chunkwise.plan.rechunk.plan_rechunk` for these two arrays.
    source
        Anything with ``shape``, ``dtype`` and NumPy-style slicing (a zarr array, a
        :mod:`chunkwise.io.sources.readers` reader, NumPy). It is only read.
    target
        The target zarr array, already created with the plan's layout. Markers of an
        earlier, interrupted run of the same plan in its store are honoured.
    verify
        ``"readback"`` (default: every task compares what it wrote, read back, with what
        it read), ``"full"`` (also every element of source and target at the end) or
        ``"none"``.
    state
        Key prefix in the target store for this array's markers and intermediate array.
    runner
        Runs the tasks: :func:`thread_runner` (default) or a Dask runner.
    events
        Called with a :class:`RechunkEvent` as stages start, tasks finish and
        verification ends.
    name
        The array's path, reported in events.
    keep_done
        Leave the ``<state>/done-<verify>`` marker when the array is finished, for a
        caller that removes it later (a whole conversion, so that a kill before it ends
        never rewrites a finished array); otherwise remove ``state`` entirely.

    Raises
    ------
    VerificationError
        When the target does not match the source.
    """
    if not state.strip("/"):
        raise ValueError("run_plan needs a state prefix inside the target, not its root")
    start = time.perf_counter()

    def emit(
        kind: EventKind,
        stage: str,
        done: int,
        total: int,
        nbytes: int,
        s: float,
        size: int = 0,
        busy: tuple[float, ...] = (),
        parallel: int = 0,
    ) -> None:
        if events is not None:
            events(RechunkEvent(kind, name, stage, done, total, nbytes, s, size, busy, parallel))

    run = skipped = moved = 0
    earlier = finished(target.store, state)
    if earlier is not None and _STRENGTH[earlier] >= _STRENGTH[verify]:
        for stage in plan.stages:  # an earlier run finished it: report, touch nothing
            emit("stage-start", stage.name, stage.tasks, stage.tasks, 0, 0.0, stage.bytes_written)
            emit("stage-done", stage.name, stage.tasks, stage.tasks, 0, 0.0, stage.bytes_written)
        skipped, verify = sum(stage.tasks for stage in plan.stages), earlier
    elif earlier is not None:  # finished with a weaker check: check now, rewrite nothing
        skipped, verify = sum(stage.tasks for stage in plan.stages), "full"
    else:
        if len(plan.stages) == 1:
            passes = [(plan.stages[0], source, target, False)]
        else:
            inter = _intermediate(plan, target, state)
            first, second = plan.stages
            passes = [(first, source, inter, True), (second, inter, target, False)]
        check = verify != "none"
        sums = check and len(passes) == 2 and np.dtype(target.dtype).kind in _SUMMABLE_KINDS
        for stage, src, dst, to_inter in passes:
            expect = None
            if sums and not to_inter:  # the second pass checks what the first recorded
                first = plan.stages[0]
                expect = Checksums(
                    src.store, f"{state}/{first.name}/", plan.shape, first.task_shape,
                    tuple(src.chunks),
                )  # fmt: skip
            r, s, m = _run_stage(
                stage, src, dst, state, plan.shape, runner, emit, check, to_inter,
                sums=sums and to_inter, expect=expect,
            )  # fmt: skip
            run, skipped, moved = run + r, skipped + s, moved + m
    checked = time.perf_counter()
    if verify == "full" and earlier != "full":
        _verify_full(source, target, plan)
    boxes = plan.stages[-1].tasks
    emit("verify-done", "verify", boxes, boxes, 0, time.perf_counter() - checked)
    # Say the array is finished before removing anything: from here on a kill at any
    # point of the clean-up leaves a state a rerun reads as "finished".
    _mark(target.store, _done_marker(state, verify))
    tidy_state(target.store, state, keep_done=keep_done)
    return RechunkResult(run, skipped, moved, time.perf_counter() - start, verify)


#: A temporary file zarr's LocalStore writes before renaming it into place; a kill in
#: between leaves it behind.
PARTIAL_WRITE = re.compile(r"\.[0-9a-f]{32}\.partial$")


def tidy_state(store: Any, state: str, *, keep_done: bool) -> None:
    """Remove an array's markers and intermediate array (any order: the ``done-*`` marker
    stays until last), then, unless ``keep_done``, the marker and temporary files that
    killed writes left in the target."""
    from chunkwise.io.stores import delete_keys, remove_empty_folders, store_keys

    keys = [k for k in store_keys(store, f"{state}/")]
    done = {_done_marker(state, mode) for mode in _STRENGTH}
    delete_keys(store, [k for k in keys if k not in done])
    if not keep_done:
        delete_keys(store, [k for k in keys if k in done])
        delete_keys(store, [k for k in store_keys(store) if PARTIAL_WRITE.search(k)])
    remove_empty_folders(store, state)
