"""The rechunk plan: stages, tasks and projected memory, decided before any byte moves.

A rechunk reads a source grid and writes a target grid. The unit of writing is a whole
target *write unit* (a shard, or a chunk when unsharded), and every write unit belongs to
exactly one task, so no two writers ever touch the same shard.

**One pass** when it fits: a task covers a region aligned to both grids (per dim, the least
common multiple of the source chunk and the target write unit), so every source chunk is
read once and every write unit written once. **Two passes** otherwise, through an
intermediate array (the rechunker algorithm, adapted to shards): pass 1 reads slabs of
whole source chunks and writes complete intermediate chunks, pass 2 reads regions of whole
intermediate chunks and writes complete target write units. Per dim the intermediate
chunk lies between the source chunk and the target write unit: it grows toward the
target along dims where the source is thinner (pass 1 reads more source chunks per task)
and toward the source where the target is thinner (pass 2 reads more), as far as the
budget allows, so the intermediate has as few, as large chunks as memory permits.

Projected memory of a task counts every copy it holds at once, in bytes, with the
constants of a :class:`MemoryModel` (the engine gives them, measured on the zarr-python
that runs the tasks):

* the task's region, assembled (raw), held from the first read to the last write;
* while reading: up to ``concurrency`` source chunks in flight, each encoded and decoded
  (``read_copies``), plus the span a memory-mapped source maps at once;
* while writing: up to ``concurrency`` objects in flight, each as a contiguous copy, the
  compressor's output buffer and the stored bytes (``write_copies``; a shard is assembled
  whole);
* while reading back what it wrote: the values read back, on top of what the allocator
  kept of the write's freed buffers (those below ``unmapped_bytes``, which it keeps for
  reuse; larger ones go back to the system at once);
* in every phase, zarr's bookkeeping for each chunk of one call (``per_chunk_bytes``: its
  coroutine, buffers, index entries). A task reads, writes and reads back in *batches* of
  at most ``batch_chunks`` chunks (at least one whole write unit), so this term is bounded
  whatever the task's size; only a shard of more inner chunks than that costs more.

Tasks run ``parallel`` at a time; the plan's peak is ``parallel`` times the largest task,
plus a ``slack`` fraction of that (freed buffers the memory allocator keeps for reuse), plus
a fixed ``overhead`` for the whole run (pools, and the codecs' working memory: encodes run
on one process-wide pool of threads, whatever the number of tasks); the engine gives both
from measurements.
This module is pure: shapes in, a :class:`RechunkPlan` out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from chunkwise.errors import ConstraintError, SpecError
from chunkwise.units import format_bytes, format_count, format_shape

__all__ = [
    "WHOLE_COPY_FACTOR",
    "MemoryModel",
    "RechunkPlan",
    "Stage",
    "batch_shape",
    "plan_rechunk",
    "plan_whole_copy",
]

#: Requests zarr-python keeps in flight per read or write (``async.concurrency``).
READ_CONCURRENCY = 10
#: Intermediate chunks smaller than this, bytes, are grown even at the cost of running
#: fewer tasks at once: on the 1 GiB map -> time-series job at a 96 MiB budget, 32 KiB
#: intermediate chunks took 62 s against 19 s (benchmarks/bench_rechunk_internals.py).
MIN_INTERMEDIATE_BYTES = 2**18


@dataclass(frozen=True, slots=True)
class MemoryModel:
    """What a task holds besides its region, per the library that runs it.

    Attributes
    ----------
    concurrency
        Chunks or objects one read or write keeps in flight (zarr's ``async.concurrency``).
    read_copies
        Copies of each chunk in flight while reading (encoded bytes, decoded values).
    write_copies
        Copies of each object in flight while writing (contiguous values, the
        compressor's output, the stored bytes).
    per_chunk_bytes
        Bookkeeping per chunk of one read or write call, bytes.
    per_object_bytes
        Scratch per chunk or object in flight besides its copies (allocator rounding,
        codec contexts), bytes, at most one more copy of a small one.
    small_chunk_bytes
        Below this size, bytes, a chunk's own buffers count per chunk of a call (they
        are held until the call ends), beside ``per_chunk_bytes``.
    batch_chunks
        Chunks per read, write or read-back call; at least one whole write unit.
    read_span_bytes
        A source read straight into the region (``chunked_reads`` false): the most bytes
        it maps at once, of which a read touches what the box's pages in a C-order file
        add up to.
    page_bytes
        The size of a memory page, bytes.
    unmapped_bytes
        Buffers from this size up are returned to the system as soon as they are freed
        (mapped on their own); smaller ones stay with the allocator for reuse, so what a
        write held of them is still held while reading back. ``0``: none are returned.
    read_working_bytes
        Bytes one read call holds besides the values it returns (a pyramid level's
        pieces of the level below and their downsampling scratch).
    chunked_reads
        The source is read chunk by chunk (zarr, chunked HDF5): reads are cut into
        batches and pay ``read_copies`` and ``per_chunk_bytes``. ``False`` for a source
        read straight into the task's region (memory-mapped, contiguous), in one call.
    """

    concurrency: int = READ_CONCURRENCY
    read_copies: float = 2.0
    write_copies: float = 3.0
    per_chunk_bytes: int = 0
    per_object_bytes: int = 0
    small_chunk_bytes: int = 0
    batch_chunks: int = 1024
    read_span_bytes: int = 0
    page_bytes: int = 4096
    unmapped_bytes: int = 0
    read_working_bytes: int = 0
    chunked_reads: bool = True

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.batch_chunks < 1:
            raise SpecError("a memory model needs a concurrency and batch size of at least 1.")


def batch_shape(task: Sequence[int], unit: Sequence[int], count: int) -> tuple[int, ...]:
    """A sub-box of ``task`` holding at most ``count`` whole ``unit`` blocks (at least one),
    filled along the last dims first: the extent of one call when a task is cut into
    calls of bounded size. ``task`` is cut on ``unit``'s grid from its own origin."""
    batch = list(unit)
    left = max(1, count)
    for axis in reversed(range(len(task))):
        units = -(-task[axis] // unit[axis])
        take = max(1, min(units, left))
        batch[axis] = min(unit[axis] * take, max(task[axis], 1))
        left //= take
    return tuple(batch)


@dataclass(frozen=True, slots=True)
class Stage:
    """One pass over the array.

    Attributes
    ----------
    name
        ``"copy"`` (one pass), ``"to-intermediate"`` or ``"from-intermediate"``.
    read_chunks
        Chunk shape of the array read (source or intermediate).
    write_unit
        Shape of one object written (target shard or chunk, or intermediate chunk).
    write_chunks
        Chunk shape written (inner chunks when sharded).
    task_shape
        The region one task reads and writes (edge tasks are clipped to the array).
    tasks
        Number of tasks.
    memory_per_task
        Projected bytes held by one full-size task.
    parallel
        Tasks run at once.
    bytes_read, bytes_written
        Uncompressed bytes moved by the whole stage.
    read_batch, write_batch
        The sub-box one read call, and one write or read-back call, covers (whole read
        chunks; whole write units).
    """

    name: str
    read_chunks: tuple[int, ...]
    write_unit: tuple[int, ...]
    write_chunks: tuple[int, ...]
    task_shape: tuple[int, ...]
    tasks: int
    memory_per_task: int
    parallel: int
    bytes_read: int
    bytes_written: int
    read_batch: tuple[int, ...] = ()
    write_batch: tuple[int, ...] = ()

    @property
    def peak_memory(self) -> int:
        """Projected peak bytes of the stage: ``parallel`` full-size tasks."""
        return self.parallel * self.memory_per_task


@dataclass(frozen=True, slots=True)
class RechunkPlan:
    """How to move an array from one chunk grid to another within a memory budget.

    Attributes
    ----------
    shape, itemsize
        The array.
    source_chunks
        Chunk (inner chunk) shape of the source.
    target_chunks, target_shards
        The target layout (``target_shards`` ``None`` when unsharded).
    max_mem
        The budget, bytes.
    stages
        One stage (single pass) or two (through an intermediate array).
    intermediate_chunks
        Chunk shape of the intermediate array, or ``None`` for a single pass.
    overhead
        Fixed bytes on top of the tasks (codec contexts, pools).
    slack
        Fraction of the tasks' memory the allocator may hold on top of it.
    """

    shape: tuple[int, ...]
    itemsize: int
    source_chunks: tuple[int, ...]
    target_chunks: tuple[int, ...]
    target_shards: tuple[int, ...] | None
    max_mem: int
    stages: tuple[Stage, ...]
    intermediate_chunks: tuple[int, ...] | None
    overhead: int = 0
    slack: float = 0.0

    @property
    def peak_memory(self) -> int:
        """Projected peak bytes over all stages, with allocator slack and fixed overhead."""
        tasks = max(stage.peak_memory for stage in self.stages)
        return _with_slack(tasks, self.slack) + self.overhead

    @property
    def bytes_read(self) -> int:
        """Uncompressed bytes read over all stages."""
        return sum(stage.bytes_read for stage in self.stages)

    @property
    def bytes_written(self) -> int:
        """Uncompressed bytes written over all stages."""
        return sum(stage.bytes_written for stage in self.stages)

    def describe(self) -> list[str]:
        """The plan as lines for ``--dry-run``."""
        lines = [
            f"{'one pass' if len(self.stages) == 1 else 'two passes through an intermediate array'}"
            f", projected peak {format_bytes(self.peak_memory)} of a {format_bytes(self.max_mem)} budget"
        ]
        for stage in self.stages:
            lines.append(
                f"{stage.name}: {format_count(stage.tasks)} tasks of "
                f"{format_shape(stage.task_shape)}, {stage.parallel} at a time, "
                f"{format_bytes(stage.memory_per_task)} each; reads "
                f"{format_bytes(stage.bytes_read)}, writes {format_bytes(stage.bytes_written)}"
            )
        if self.intermediate_chunks is not None:
            lines.append(f"intermediate chunks {format_shape(self.intermediate_chunks)}")
        return lines


def _with_slack(n_bytes: int, slack: float) -> int:
    return math.ceil(n_bytes * (1 + slack))


def _check_shape(name: str, value: Sequence[int], ndim: int) -> tuple[int, ...]:
    out = tuple(int(v) for v in value)
    if len(out) != ndim or any(v < 1 for v in out):
        raise SpecError(
            f"{name} {list(value)!r} must have {ndim} positive sizes, one per dimension."
        )
    return out


def touched_bytes(box: Sequence[int], shape: Sequence[int], itemsize: int, page_bytes: int) -> int:
    """Bytes of memory pages a read of a ``box``-sized region touches in a C-order file of
    ``shape``: each contiguous run of the box starts a page and fills whole ones."""
    partial = [i for i, (b, n) in enumerate(zip(box, shape, strict=True)) if b < n]
    if not partial:
        return math.prod(box) * itemsize + page_bytes
    k = partial[-1]
    run = box[k] * math.prod(shape[k + 1 :]) * itemsize
    runs = math.prod(box[:k])
    return runs * (-(-run // page_bytes) + 1) * page_bytes


def _blocks(extent: Sequence[int], block: Sequence[int]) -> int:
    return math.prod(-(-e // b) for e, b in zip(extent, block, strict=True))


def _batches(
    task: tuple[int, ...],
    read_chunks: tuple[int, ...],
    write_unit: tuple[int, ...],
    write_chunks: tuple[int, ...],
    model: MemoryModel,
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The read batch and the write (and read-back) batch of a task."""
    read_batch = batch_shape(task, read_chunks, model.batch_chunks) if model.chunked_reads else task
    inner = _blocks(write_unit, write_chunks)
    units = max(1, min(model.concurrency, model.batch_chunks // inner))
    return read_batch, batch_shape(task, write_unit, units)


def _task_memory(
    task: tuple[int, ...],
    read_chunks: tuple[int, ...],
    write_unit: tuple[int, ...],
    write_chunks: tuple[int, ...],
    shape: tuple[int, ...],
    itemsize: int,
    model: MemoryModel,
) -> int:
    """Bytes one task holds at its peak (see the module docstring)."""
    region = math.prod(task) * itemsize
    read_batch, write_batch = _batches(task, read_chunks, write_unit, write_chunks, model)
    read_chunk = math.prod(min(c, t) for c, t in zip(read_chunks, task, strict=True)) * itemsize
    write_obj = math.prod(min(u, t) for u, t in zip(write_unit, task, strict=True)) * itemsize
    inner_bytes = math.prod(min(c, t) for c, t in zip(write_chunks, task, strict=True)) * itemsize
    reads = _blocks(read_batch, read_chunks)
    units = _blocks(write_batch, write_unit)
    inner = units * _blocks(write_unit, write_chunks)
    if model.chunked_reads:
        reading = (
            min(model.concurrency, reads)
            * (model.read_copies * read_chunk + min(model.per_object_bytes, read_chunk))
            + model.per_chunk_bytes * reads
        )
    else:  # straight into the region; a mapped file's pages count while mapped
        span = touched_bytes(read_batch, shape, itemsize, model.page_bytes)
        reading = min(model.read_span_bytes, span)
    reading += model.read_working_bytes
    buffers = min(model.concurrency, units) * (
        model.write_copies * write_obj + min(model.per_object_bytes, write_obj)
    )
    # Per chunk of a call: zarr's objects, and a small chunk's own buffers (one each).
    bookkeeping = inner * (model.per_chunk_bytes + min(inner_bytes, model.small_chunk_bytes))
    kept = 0 if 0 < model.unmapped_bytes <= write_obj else buffers  # still held after writing
    reading_back = (
        kept
        + max(
            math.prod(write_batch) * itemsize,
            min(model.concurrency, inner) * model.read_copies * inner_bytes,
        )
        + bookkeeping
    )
    return region + math.ceil(max(reading, buffers + bookkeeping, reading_back))


def _stage(
    name: str,
    shape: tuple[int, ...],
    itemsize: int,
    read_chunks: tuple[int, ...],
    write_unit: tuple[int, ...],
    write_chunks: tuple[int, ...],
    task: tuple[int, ...],
    max_mem: int,
    threads: int,
    model: MemoryModel,
) -> Stage:
    task = tuple(min(t, n) for t, n in zip(task, shape, strict=True))
    memory = _task_memory(task, read_chunks, write_unit, write_chunks, shape, itemsize, model)
    tasks = _blocks(shape, task)
    parallel = max(1, min(threads, tasks, max_mem // max(memory, 1)))
    nbytes = math.prod(shape) * itemsize
    read_batch, write_batch = _batches(task, read_chunks, write_unit, write_chunks, model)
    return Stage(
        name, read_chunks, write_unit, write_chunks, task, tasks, memory, parallel, nbytes,
        nbytes, read_batch, write_batch,
    )  # fmt: skip


def _aligned(a: int, b: int, n: int) -> int:
    """The smallest region along a dim holding whole ``a`` and whole ``b`` blocks (capped at
    the dim, rounded up to ``b``, the write unit)."""
    size = math.lcm(a, b)
    return min(size, -(-n // b) * b)


def _between(low: int, high: int) -> list[int]:
    """Sizes from ``low`` up to ``high``: multiples of ``low`` that divide ``high``, then
    ``high`` (when ``low`` divides ``high``, exactly its in-between multiples)."""
    sizes = [m * low for m in range(1, high // low + 1) if high % (m * low) == 0]
    if not sizes or sizes[-1] != high:
        sizes.append(high)
    return sizes


def plan_rechunk(
    shape: Sequence[int],
    itemsize: int,
    source_chunks: Sequence[int],
    target_chunks: Sequence[int],
    target_shards: Sequence[int] | None = None,
    *,
    max_mem: int,
    threads: int = 4,
    memory: MemoryModel | None = None,
    overhead: int = 0,
    slack: float = 0.0,
) -> RechunkPlan:
    """Plan a rechunk within ``max_mem`` bytes (see the module docstring).

    Parameters
    ----------
    shape, itemsize
        The array: sizes per dim, bytes per element.
    source_chunks
        The source's chunk shape (inner chunks when sharded: the read granularity).
    target_chunks, target_shards
        The target layout; ``target_shards`` must be multiples of ``target_chunks``.
    max_mem
        The memory budget, bytes.
    threads
        Tasks that may run at once.
    memory
        What tasks hold besides their regions (default: :class:`MemoryModel`'s defaults,
        which count no per-chunk bookkeeping).
    overhead
        Fixed bytes the run holds besides its tasks.
    slack
        Fraction of the tasks' memory the allocator may hold on top of it (freed buffers
        kept for reuse); the tasks get ``(max_mem - overhead) / (1 + slack)``.

    Raises
    ------
    SpecError
        For shapes that do not fit the array or shards that are not multiples of chunks.
    ConstraintError
        When no plan fits ``max_mem``; the message names the smallest budget that works.
    """
    shape_t = tuple(int(n) for n in shape)
    ndim = len(shape_t)
    if ndim == 0 or any(n < 1 for n in shape_t):
        raise SpecError(f"array shape {list(shape)!r} must be a non-empty list of positive sizes.")
    if itemsize < 1:
        raise SpecError(f"itemsize {itemsize!r} must be a positive number of bytes.")
    if max_mem < 1:
        raise SpecError(f"max_mem {max_mem!r} must be a positive number of bytes.")
    if slack < 0:
        raise SpecError(f"slack {slack!r} must be a fraction of at least 0.")
    src = _check_shape("source chunks", source_chunks, ndim)
    chunks = _check_shape("target chunks", target_chunks, ndim)
    unit = chunks if target_shards is None else _check_shape("target shards", target_shards, ndim)
    for s, c, d in zip(unit, chunks, range(ndim), strict=True):
        if s % c:
            raise SpecError(
                f"target shard {list(unit)!r} is not a multiple of chunk {list(chunks)!r} along "
                f"dim {d}; use a shard of {(s // c or 1) * c} or {(s // c + 1) * c} there."
            )
    shards_t = unit if target_shards is not None else None
    # Clip to the array: a chunk larger than the array behaves like the array's extent.
    src = tuple(min(c, n) for c, n in zip(src, shape_t, strict=True))
    budget = math.floor((max_mem - overhead) / (1 + slack))
    args = (budget, threads, memory or MemoryModel())
    single = _stage(
        "copy", shape_t, itemsize, src, unit, chunks,
        tuple(_aligned(s, u, n) for s, u, n in zip(src, unit, shape_t, strict=True)), *args,
    )  # fmt: skip
    if single.memory_per_task <= budget:
        return RechunkPlan(
            shape_t, itemsize, src, chunks, shards_t, max_mem, (single,), None, overhead, slack
        )
    two = _two_passes(shape_t, itemsize, src, unit, chunks, args) if budget > 0 else None
    if two is None:
        smallest = overhead + _with_slack(
            _smallest_budget(shape_t, itemsize, src, unit, chunks, threads, args[2]),
            slack,
        )
        raise ConstraintError(
            f"max_mem {format_bytes(max_mem)} is too small to rechunk this array: even one task "
            f"needs {format_bytes(smallest)}; give at least --max-mem {_round_up(smallest)}."
        )
    first, second, inter = two
    return RechunkPlan(
        shape_t, itemsize, src, chunks, shards_t, max_mem, (first, second), inter, overhead, slack
    )


def _intermediate_stages(
    shape: tuple[int, ...],
    itemsize: int,
    src: tuple[int, ...],
    unit: tuple[int, ...],
    chunks: tuple[int, ...],
    inter: tuple[int, ...],
    args: tuple[int, int, MemoryModel],
) -> tuple[Stage, Stage]:
    first_task = tuple(_aligned(s, i, n) for s, i, n in zip(src, inter, shape, strict=True))
    second_task = tuple(_aligned(i, u, n) for i, u, n in zip(inter, unit, shape, strict=True))
    budget, threads, model = args
    first = _stage("to-intermediate", shape, itemsize, src, inter, inter, first_task, *args)
    chunked = (budget, threads, replace(model, chunked_reads=True))  # reads the intermediate
    second = _stage(
        "from-intermediate", shape, itemsize, inter, unit, chunks, second_task, *chunked
    )
    return first, second


def _two_passes(
    shape: tuple[int, ...],
    itemsize: int,
    src: tuple[int, ...],
    unit: tuple[int, ...],
    chunks: tuple[int, ...],
    args: tuple[int, int, MemoryModel],
) -> tuple[Stage, Stage, tuple[int, ...]] | None:
    max_mem, threads = args[0], args[1]
    inter = [min(s, u) for s, u in zip(src, unit, strict=True)]
    limit = max_mem

    def fits(candidate: list[int]) -> bool:
        first, second = _intermediate_stages(
            shape, itemsize, src, unit, chunks, tuple(candidate), args
        )
        return max(first.memory_per_task, second.memory_per_task) <= limit

    if not fits(inter):
        return None
    # Keep every thread busy when the budget allows: grow only while `threads` tasks fit.
    limit = max_mem // threads
    if not fits(inter):
        limit = max_mem
    # Grow one dim at a time to its next larger size while both passes still fit: fewer,
    # larger intermediate chunks mean fewer requests in both passes.
    options = [
        _between(min(s, u), min(max(s, u), n)) for s, u, n in zip(src, unit, shape, strict=True)
    ]

    def grow(until: int) -> None:
        nonlocal inter
        grew = True
        while grew and math.prod(inter) * itemsize < until:
            grew = False
            for axis in sorted(range(len(shape)), key=lambda a: inter[a]):
                bigger = [v for v in options[axis] if v > inter[axis]]
                if bigger:
                    trial = inter.copy()
                    trial[axis] = bigger[0]
                    if fits(trial):
                        inter = trial
                        grew = True

    grow(until=2**62)
    if limit < max_mem and math.prod(inter) * itemsize < MIN_INTERMEDIATE_BYTES:
        # Tiny intermediate chunks cost more per byte (a request and a file each, in both
        # passes) than running fewer tasks at once: let tasks use the whole budget.
        limit = max_mem
        grow(until=MIN_INTERMEDIATE_BYTES)
    first, second = _intermediate_stages(shape, itemsize, src, unit, chunks, tuple(inter), args)
    return first, second, tuple(inter)


def _smallest_budget(
    shape: tuple[int, ...],
    itemsize: int,
    src: tuple[int, ...],
    unit: tuple[int, ...],
    chunks: tuple[int, ...],
    threads: int,
    model: MemoryModel,
) -> int:
    """The smallest budget with any plan: the larger pass at the smallest intermediate."""
    inter = tuple(min(s, u) for s, u in zip(src, unit, strict=True))
    args = (2**62, threads, model)
    first, second = _intermediate_stages(shape, itemsize, src, unit, chunks, inter, args)
    single = _stage(
        "copy", shape, itemsize, src, unit, chunks,
        tuple(_aligned(s, u, n) for s, u, n in zip(src, unit, shape, strict=True)), *args,
    )  # fmt: skip
    return min(single.memory_per_task, max(first.memory_per_task, second.memory_per_task))


#: Copies of an array a whole-array copy holds at once: the values read, the buffers
#: encoded, the values read back, and the codec's scratch.
WHOLE_COPY_FACTOR = 4


def plan_whole_copy(
    shape: Sequence[int],
    itemsize: int,
    *,
    max_mem: int,
    overhead: int = 0,
    slack: float = 0.0,
) -> RechunkPlan:
    """A plan of one task that copies the whole array at once: for arrays the chunked
    planner cannot cut (0-d arrays, arrays with no elements, variable-length elements
    such as strings, where ``itemsize`` is an estimate of bytes per element).

    Raises
    ------
    ConstraintError
        When the whole array does not fit ``max_mem`` (names the budget it needs).
    """
    shape_t = tuple(int(n) for n in shape)
    if any(n < 0 for n in shape_t):
        raise SpecError(f"array shape {list(shape)!r} has a negative size.")
    elements = math.prod(shape_t)
    nbytes = elements * itemsize
    task = tuple(max(1, n) for n in shape_t)
    memory = WHOLE_COPY_FACTOR * nbytes
    stage = Stage("copy", task, task, task, task, int(elements > 0), memory, 1, nbytes, nbytes)
    plan = RechunkPlan(
        shape_t, itemsize, task, task, None, max_mem, (stage,), None, overhead, slack
    )
    if plan.peak_memory > max_mem:
        raise ConstraintError(
            f"max_mem {format_bytes(max_mem)} is too small to copy this array, which is copied "
            f"whole (about {format_bytes(nbytes)}); give at least --max-mem "
            f"{_round_up(plan.peak_memory)}."
        )
    return plan


def _round_up(n_bytes: int) -> str:
    """A budget to suggest: the next whole MiB (or KiB below 1 MiB)."""
    if n_bytes >= 2**20:
        return f"{-(-n_bytes // 2**20)}MiB"
    return f"{-(-n_bytes // 2**10)}KiB"
