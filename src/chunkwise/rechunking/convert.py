"""``rechunk`` and ``convert``: decide each array's target layout, plan, write, verify.

The flow, for a source of one array or a whole group (:mod:`chunkwise.io.sources.readers`):

1. **Decide** every array's layout: explicit ``--chunks/--shards/--codec``, ``advise``'s best
   for a workload, or (``convert`` without either) the source's own chunks. The decision and
   its reasons are recorded in the array's ``chunkwise`` attribute.
2. **Plan** every array within the memory budget (:func:`~chunkwise.plan.rechunk.plan_rechunk`).
   Every check happens here, before anything is written: bad input writes nothing.
3. **Claim** the target: a run record ``.chunkwise-rechunk/run.json`` is written first. A
   target that exists without a record of the *same* run is refused unless ``overwrite``.
   A record of the same run means an earlier run was killed: this run resumes it.
4. **Write** each array (local threads or Dask), **verify** it against the source, then
   consolidate the metadata of a group and remove the run record.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import math
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from chunkwise.errors import ConstraintError, SpecError, StoreError
from chunkwise.io.engines import os_error_of
from chunkwise.io.locations import resolve_location, source_paths
from chunkwise.io.sources.objects import image_levels, level_axes, source_dataset
from chunkwise.io.sources.readers import Source, SourceArray, SourceGroup, json_value, open_source
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import CodecSpec, default_codec_profile, parse_codec
from chunkwise.model.dataset import VARIABLE_ITEM_BYTES, DatasetSpec, model_dtype
from chunkwise.model.layout import Layout
from chunkwise.model.ome import ome_for_format
from chunkwise.model.storage import SCHEME_STORAGE, StorageProfile
from chunkwise.plan.advice import Adviser
from chunkwise.plan.dataset import DatasetAdvice, VariableAdvice, advise_dataset
from chunkwise.plan.estimate import RechunkEstimate, estimate_rechunk, format_hours, format_usd
from chunkwise.plan.pyramid import Pyramid, PyramidRequest
from chunkwise.plan.rechunk import (
    READ_CONCURRENCY,
    MemoryModel,
    RechunkPlan,
    plan_rechunk,
    plan_whole_copy,
)
from chunkwise.rechunking.executor import (
    INTERMEDIATE_COMPRESSOR,
    MARKER_PREFIX,
    MMAP_THRESHOLD,
    Events,
    RechunkEvent,
    RechunkResult,
    Verify,
    mmap_threshold_for,
    peak_rss,
    precise_allocation,
    run_plan,
    start_memory_watch,
    tame_allocator,
    thread_runner,
    trim_above,
    trim_room,
    warm_up,
)
from chunkwise.rechunking.pyramid import (
    bind_levels,
    check_bytes,
    finish_pyramid,
    pyramid_source,
    relink_levels,
)
from chunkwise.rechunking.target import (
    LEASE_KEY,
    RUN_RECORD,
    Claim,
    clear_store,
    inspect_target,
    write_record,
)
from chunkwise.units import (
    format_bytes,
    format_count,
    format_duration,
    format_shape,
    html_lines,
)

__all__ = [
    "RUN_RECORD",
    "ArrayJob",
    "ConversionPlan",
    "ConversionResult",
    "LayoutRequest",
    "MemoryBudgetWarning",
    "default_threads",
    "open_source",
    "open_target_store",
    "plan_conversion",
    "run_conversion",
]

#: Arrays up to this size in a group whose layout was not asked for are stored as one chunk
#: (coordinates, masks): one object instead of many tiny ones.
SMALL_ARRAY_BYTES = 16 * 2**20
#: Memory a run holds besides its tasks (codec contexts, zarr's pools, the lease's thread),
#: bytes: runs of a few tasks of under 1 MiB rose 3.2-8.5 MiB in all
#: (benchmarks/bench_rechunk_projection.py).
RUN_OVERHEAD = 6 * 2**20
#: What the zarrs engine holds besides the tasks, per thread of its pool (one per core),
#: bytes: writing 64 chunks of 256 KiB read from HDF5 and NetCDF-4 at a 48 MiB budget rose
#: up to 13 MiB above zarr-python's projection on 2 cores (4.9-13.0 over 6 runs;
#: tests/rechunking/test_rechunk_memory.py), 7.3 MiB in all with one thread. Measured on
#: 2 cores only; counted per core so that larger machines are not under-counted.
ZARRS_THREAD_BYTES = 8 * 2**20


def smallest_region(plan: ConversionPlan) -> int:
    """The fewest bytes a task of ``plan`` reads into its region (over every array and
    stage; arrays copied whole count their whole size)."""
    return min(
        (
            math.prod(stage.task_shape) * job.plan.itemsize
            for job in plan.jobs
            for stage in job.plan.stages
        ),
        default=MMAP_THRESHOLD,
    )


def largest_task(plan: ConversionPlan) -> int:
    """The most memory one task of ``plan`` holds, bytes (over every array and stage)."""
    return max((stage.memory_per_task for job in plan.jobs for stage in job.plan.stages), default=0)


def engine_overhead(engine: str) -> int:
    """Bytes the engine named ``engine`` (``"zarrs 0.2.3"``, ``"zarr 3.1.6"``) holds
    besides the tasks (:data:`ZARRS_THREAD_BYTES` per core for zarrs)."""
    return ZARRS_THREAD_BYTES * (os.cpu_count() or 1) if engine.startswith("zarrs") else 0


#: Freed buffers below the mmap threshold that glibc keeps for reuse, as a fraction of what
#: the tasks hold (arenas capped at 2, buffers from 4 MiB up mapped on their own): with it,
#: every case of benchmarks/bench_rechunk_projection.py measures at or below its projection.
ALLOCATOR_SLACK = 0.15
#: What a task holds besides its region on zarr-python 3.1.6: 10 chunks in flight, two
#: copies of each chunk read and three of each object written, and about 2.5 KB of
#: zarr's bookkeeping per chunk of a call (10,000 to 40,000 one-byte chunks: 2,450-2,560
#: bytes per chunk written, 1,750-2,300 per chunk read;
#: benchmarks/bench_rechunk_projection.py), so calls are cut into batches of at most 1,024
#: chunks.
TASK_MEMORY = MemoryModel(
    concurrency=READ_CONCURRENCY,
    read_copies=2.0,
    write_copies=3.0,
    per_chunk_bytes=2560,
    per_object_bytes=2**18,
    small_chunk_bytes=2**12,
    batch_chunks=1024,
    unmapped_bytes=MMAP_THRESHOLD,
)
#: Working memory of one zstd encode (alone or inside Blosc) by level, bytes: the worst
#: measured over 256 KiB and 4 MiB chunks of float32 noise, the extra peak of writing 12
#: chunks over Blosc lz4's divided by the encodes running at once (six on 2 cores):
#: Blosc zstd 5 +8.7 MiB at 256 KiB; Blosc zstd 9 +29 MiB at 256 KiB, +88 MiB at 4 MiB;
#: zstd 9 +45 MiB at 4 MiB (benchmarks/bench_rechunk_projection.py, "codec working
#: memory"). Other codecs need no more than their buffers. Past level 9: not measured.
ZSTD_SCRATCH: tuple[tuple[int, int], ...] = (
    (3, 2**19),
    (6, 3 * 2**19),
    (9, 15 * 2**20),
    (22, 64 * 2**20),
)


def encode_scratch(codec: CodecSpec) -> int:
    """Working memory of one encode with ``codec``, bytes (:data:`ZSTD_SCRATCH`)."""
    if codec.kind == "zstd" or (codec.kind == "blosc" and codec.cname == "zstd"):
        level = codec.level if codec.level > 0 else 3  # zstd's level 0 means its default
        return next((scratch for top, scratch in ZSTD_SCRATCH if level <= top), ZSTD_SCRATCH[-1][1])
    return 0


#: Encodes zarr-python runs at once, whatever the number of tasks: on asyncio's default
#: executor (cores + 4 threads), at most its ``async.concurrency`` (10).
ENCODE_THREADS = min(READ_CONCURRENCY, (os.cpu_count() or 1) + 4)
#: Codec used when neither the user nor the source gives one chunkwise can keep.
DEFAULT_CODEC = "blosc:zstd:5:shuffle"

Decided = Literal["chunks", "source", "small"]


#: How ``--dry-run`` says what a run would do with its target.
_STATE_WORDS = {
    "new": "new",
    "resume": "resumes an interrupted run of this command",
    "finishing": "an interrupted run of this command has only its clean-up left",
    "complete": "already holds the finished result of this command: nothing to do",
    "replace": "replaces the Zarr store there (--overwrite)",
    "replacing": "an interrupted run of this command was replacing the store there: goes on",
}


class MemoryBudgetWarning(UserWarning):
    """A run finished and verified its target but measured itself above its budget."""


@dataclass(frozen=True)
class LayoutRequest:
    """What the user asked for (all optional).

    Attributes
    ----------
    chunks, shards
        Explicit shapes (``-1`` means the whole dim); applied to arrays with as many dims.
    codec
        A codec (``"blosc:zstd:5:shuffle"``, ``"zstd:3"``, ``"none"``).
    zarr_format
        2 or 3; default: the source's format (zarr sources), else 3; 3 when shards are given.
    workload, storage
        Let ``advise`` choose chunks, shards and codec: a workload preset or spec file, and a
        storage preset or mapping.
    require_layout
        ``rechunk`` demands ``chunks`` or ``workload``; ``convert`` keeps the source chunks.
    checksum
        Store a crc32c checksum with every chunk (zarr v3), so that a damaged chunk fails
        to read instead of decoding to wrong values.
    skip
        Paths of arrays to leave out (listed in the summary as skipped).
    pyramid
        Write an OME-Zarr image pyramid of the source's one image (``--ome-zarr``).
    """

    chunks: tuple[int, ...] | None = None
    shards: tuple[int, ...] | None = None
    codec: str | None = None
    zarr_format: int | None = None
    workload: str | None = None
    storage: str | Mapping[str, Any] | None = None
    require_layout: bool = False
    checksum: bool = False
    skip: tuple[str, ...] = ()
    pyramid: PyramidRequest | None = None


@dataclass(frozen=True)
class ArrayJob:
    """One array to write.

    Attributes
    ----------
    path
        Path in the target (``""`` when the target is one array).
    source
        The source array.
    layout
        The target layout.
    plan
        How it is moved within the budget.
    decision
        Recorded in the target's ``chunkwise`` attribute: how the layout was decided, the
        workload, storage, predicted costs and rationale when ``advise`` chose it.
    estimate
        Requests, bytes, dollars and time of the plan on its storage and workers
        (:func:`~chunkwise.plan.estimate.estimate_rechunk`), or ``None``.
    """

    path: str
    source: SourceArray
    layout: Layout
    plan: RechunkPlan
    decision: dict[str, Any]
    estimate: RechunkEstimate | None = None

    @property
    def nbytes(self) -> int:
        """Uncompressed size of the array, bytes."""
        return math.prod(self.source.shape) * self.source.dtype.itemsize

    def describe(self) -> list[str]:
        """Lines for ``--dry-run``."""
        layout = self.layout
        name = self.path or "(array)"
        head = (
            f"{name}: {format_shape(self.source.shape)} {self.source.dtype} "
            f"({format_bytes(self.nbytes)}), chunks {format_shape(self.source.chunks)} -> "
            f"{format_shape(layout.chunks)}"
            + (f" in shards of {format_shape(layout.shards)}" if layout.shards else "")
            + f", {layout.codec}, zarr v{layout.zarr_format} [{self.decision['decided_by']}]"
        )
        lines = [*self.plan.describe(), *(self.estimate.describe() if self.estimate else [])]
        return [head, *(f"  {line}" for line in lines)]


def source_place(url: str) -> str | list[str]:
    """Where the source ``url`` is, as a run's fingerprint names it: each local file or
    folder it occupies (a glob's every match) by its real path, absolute with symlinks
    followed, and its ``#inner`` part as given; anything that is not a local path that
    exists (URLs, ``memory://``, samples, data objects) as given."""
    text, inner = url.strip(), ""
    if "#" in text and not Path(text.removeprefix("file://")).expanduser().exists():
        text, _, rest = text.rpartition("#")
        inner = f"#{rest}"
    places = []
    for place in source_paths(text):
        local = place.removeprefix("file://")
        path = Path(local).expanduser()
        if "://" in local or not path.exists():
            return url
        places.append(f"{path.resolve()}{inner}")
    return places[0] if len(places) == 1 else places


@dataclass(frozen=True)
class ConversionPlan:
    """Everything a run will do, decided before it writes a byte (``--dry-run`` prints it).

    Attributes
    ----------
    source_url, target_url
        As given.
    source_description
        What the source is.
    is_group
        The target is a group (the source was a group or a multi-array file).
    zarr_format
        Format of the target.
    groups
        Groups to create, with their attributes.
    jobs
        One per array.
    skipped
        Source arrays not written, with the reason.
    max_mem
        The memory budget, bytes (per worker on Dask).
    executor
        ``"threads"`` or the Dask address.
    target_state
        What the run would do with the target, when looked at (``--dry-run``): ``"new"``,
        ``"resume"``, ``"finishing"``, ``"complete"`` or ``"replace"``; ``""`` when not
        looked at.
    workload
        The ``--workload`` the layouts were advised for, if any.
    pyramid
        The OME-Zarr pyramid the arrays are levels of (``--ome-zarr``), else ``None``.
    check_memory
        Projected peak bytes of checking the pyramid's levels after they are written.
    engine
        The library that encodes, decodes and stores the chunks, with its version
        (:mod:`chunkwise.io.engines`); ``""`` when not said.
    """

    def not_advised(self) -> list[str]:
        """With a workload: one line per reason, naming the arrays ``advise`` did not lay
        out (coordinates and scalars stored whole, text, explicit chunks)."""
        if self.workload is None:
            return []
        reasons: dict[str, list[str]] = {}
        for job in self.jobs:
            if job.decision["decided_by"] != "advise":
                reason = job.decision.get("note") or job.decision["decided_by"]
                reasons.setdefault(reason, []).append(job.path or "(array)")
        return [
            f"not advised for {self.workload}: {', '.join(paths[:8])}"
            + (f" and {len(paths) - 8} more" if len(paths) > 8 else "")
            + f" ({reason})"
            for reason, paths in reasons.items()
        ]

    source_url: str
    target_url: str
    source_description: str
    is_group: bool
    zarr_format: int
    groups: tuple[SourceGroup, ...]
    jobs: tuple[ArrayJob, ...]
    skipped: tuple[str, ...]
    max_mem: int
    executor: str
    target_state: str = ""
    workload: str | None = None
    pyramid: Pyramid | None = None
    check_memory: int = 0
    engine: str = ""

    @property
    def peak_memory(self) -> int:
        """Projected peak bytes: the largest array's plan (arrays run one after another),
        or the pyramid's check of its levels when that holds more."""
        return max([self.check_memory, *(job.plan.peak_memory for job in self.jobs)])

    @property
    def bytes_written(self) -> int:
        """Uncompressed bytes written over every stage of every array."""
        return sum(job.plan.bytes_written for job in self.jobs)

    def fingerprint(self) -> str:
        """Identifies the run: the same command on the same source gives the same value
        (a local source by its real path: the same relative path typed in another folder
        is another source)."""
        content: dict[str, Any] = {
            "source": source_place(self.source_url),
            "format": self.zarr_format,
            "arrays": [
                [job.path, list(job.source.shape), str(job.source.dtype), list(job.layout.chunks),
                 list(job.layout.shards or ()), str(job.layout.codec),
                 [list(stage.task_shape) for stage in job.plan.stages],
                 list(job.plan.intermediate_chunks or ()),
                 # how values are read back (packing, fill): other attributes, other data
                 json_value(job.source.attributes), json_value(job.source.fill_value),
                 list(job.source.dims or ())]
                for job in self.jobs
            ],
        }  # fmt: skip
        if self.pyramid is not None:  # how levels are made is part of what they hold
            content["pyramid"] = self.pyramid.to_dict()
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]

    def describe(self) -> list[str]:
        """The plan as lines."""
        lines = [
            f"source: {self.source_description}",
            f"target: {self.target_url} (zarr v{self.zarr_format} "
            f"{'group' if self.is_group else 'array'}"
            + (f"; {_STATE_WORDS[self.target_state]}" if self.target_state else "")
            + ")",
            f"memory: projected peak {format_bytes(self.peak_memory)} of a "
            f"{format_bytes(self.max_mem)} budget"
            + (" per worker" if self.executor != "threads" else "")
            + f"; executor: {self.executor}"
            + (f"; engine: {self.engine}" if self.engine else ""),
            f"writes {format_bytes(self.bytes_written)} (uncompressed, all passes) in "
            f"{format_count(sum(s.tasks for j in self.jobs for s in j.plan.stages))} tasks",
        ]
        if self.pyramid is not None:
            lines.extend(self.pyramid.describe())
        for job in self.jobs:
            lines.extend(job.describe())
        lines.extend(self._estimate_total())
        lines.extend(f"skipped: {reason}" for reason in self.skipped)
        lines.extend(self.not_advised())
        return lines

    def _estimate_total(self) -> list[str]:
        """With several arrays, one line summing their estimates (arrays run one after
        another)."""
        estimates = [job.estimate for job in self.jobs if job.estimate is not None]
        if len(estimates) < 2:
            return []
        return [
            f"all {len(estimates)} arrays: {format_count(sum(e.get_requests for e in estimates))} "
            f"GET and {format_count(sum(e.put_requests for e in estimates))} PUT requests "
            f"(${format_usd(sum(e.usd for e in estimates))}), about "
            f"{format_hours(sum(e.seconds for e in estimates))}"
        ]

    def __repr__(self) -> str:
        return "\n".join(["ConversionPlan", *(f"  {line}" for line in self.describe())])

    def _repr_html_(self) -> str:
        return html_lines(self.describe())


@dataclass(frozen=True)
class ConversionResult:
    """What a run did.

    Attributes
    ----------
    plan
        The plan that ran.
    results
        Per array path, the executor's result.
    seconds
        Wall time of the whole run.
    resumed
        An earlier, interrupted run of the same plan was continued.
    peak_rss
        Peak resident memory during the run, bytes: of this process (threads), or the
        largest worker's (Dask).
    peak_added
        How far that peak rose above the resident memory when the run started, bytes (on
        Dask, the largest rise of any worker): what the budget bounds.
    completed
        When an earlier run of the same plan had already finished the target (ISO 8601;
        this run then wrote nothing), else ``None``.
    levels_checked
        Blocks of the pyramid's further levels compared with an independent
        recomputation (``--ome-zarr``).
    """

    plan: ConversionPlan
    results: dict[str, RechunkResult]
    seconds: float
    resumed: bool
    peak_rss: int | None = None
    peak_added: int | None = None
    completed: str | None = None
    levels_checked: int = 0

    @property
    def over_budget(self) -> bool:
        """Whether the measured rise of memory exceeded the budget."""
        return self.peak_added is not None and self.peak_added > self.plan.max_mem

    def budget_warning(self) -> str:
        """One sentence saying by how much the run went over its budget."""
        who = "a worker's" if self.plan.executor != "threads" else "this run's"
        return (
            f"{who} memory rose {format_bytes(self.peak_added or 0)} above its start, over "
            f"the {format_bytes(self.plan.max_mem)} budget (projected "
            f"{format_bytes(self.plan.peak_memory)}); the target is complete and verified, "
            "but the bound was not kept: give a larger --max-mem, and please report this "
            "with the output of --dry-run --json."
        )

    def summary(self) -> list[str]:
        """Lines for the terminal."""
        plan = self.plan
        source_bytes = sum(job.nbytes for job in plan.jobs)
        run = sum(r.tasks_run for r in self.results.values())
        skipped = sum(r.tasks_skipped for r in self.results.values())
        verified = {r.verified for r in self.results.values()}
        rate = source_bytes / self.seconds if self.seconds > 0 else 0.0
        arrays = f"{len(plan.jobs)} array{'s' * (len(plan.jobs) != 1)}"
        if self.completed is not None:
            head = [
                f"{plan.target_url} already holds the finished result of this command "
                f"({arrays}, completed {self.completed}); nothing to do",
            ]
        else:
            head = [
                f"wrote {plan.target_url}: {arrays}, "
                f"{format_bytes(source_bytes)} in {format_duration(self.seconds)} "
                f"({format_bytes(rate)}/s)",
                f"tasks: {format_count(run)} run"
                + (f", {format_count(skipped)} already done (resumed)" if skipped else "")
                + (f"; engine: {plan.engine}" if plan.engine else ""),
            ]
        lines = [
            *head,
            ("verified when written: " if self.completed is not None else "verified: ")
            + (
                "skipped (--verify none)"
                if verified == {"none"}
                else "every element compared bit for bit, after every region was read back"
                if verified == {"full"}
                else "every region read back after writing and matched the source bit for bit"
            ),
        ]
        if self.peak_rss is not None:
            who = "largest worker" if plan.executor != "threads" else "this process"
            added = (
                ""
                if self.peak_added is None
                else f", {format_bytes(self.peak_added)} above the start of the run"
            )
            lines.append(
                f"memory: peak RSS {format_bytes(self.peak_rss)} ({who}){added}; projected "
                f"peak {format_bytes(plan.peak_memory)} of a {format_bytes(plan.max_mem)} budget"
            )
        if plan.pyramid is not None:
            pyramid = plan.pyramid
            lines.append(
                f"OME-Zarr image: NGFF {'0.4' if plan.zarr_format == 2 else '0.5'}, "
                f"{pyramid.levels} level{'s' * (pyramid.levels != 1)} ("
                + ", ".join("x".join(map(str, s)) for s in pyramid.shapes)
                + f"), {pyramid.method} of each window; metadata validated by ome-zarr-models"
            )
            if self.levels_checked:
                every = {r.verified for r in self.results.values()} == {"full"}
                blocks = f"{self.levels_checked} {'blocks (all)' if every else 'sampled blocks'}"
                lines.append(
                    f"levels 1-{pyramid.levels - 1}: {blocks} matched an independent "
                    "recomputation from the level below"
                    if pyramid.levels > 2
                    else f"level 1: {blocks} matched an independent recomputation from level 0"
                )
        lines.extend(f"not copied: {reason}" for reason in plan.skipped)
        lines.extend(plan.not_advised())
        return lines

    def __repr__(self) -> str:
        return "\n".join(["ConversionResult", *(f"  {line}" for line in self.summary())])

    def _repr_html_(self) -> str:
        return html_lines(self.summary())


# ----------------------------------------------------------------------------- deciding


def _resolve(shape: Sequence[int], values: Sequence[int], what: str) -> tuple[int, ...]:
    """``-1`` means the whole dim; sizes above the dim are clipped to it."""
    out = []
    for v, n in zip(values, shape, strict=True):
        if v == -1:
            out.append(n)
        elif v < 1:
            raise SpecError(
                f"{what} {list(values)!r} must be positive sizes (or -1 for a whole dim)."
            )
        else:
            out.append(min(v, n))
    return tuple(out)


def _source_codec(array: SourceArray) -> tuple[CodecSpec, str | None]:
    """The compressor of a Zarr source when chunkwise can keep it, else the default and a
    note saying why."""
    meta = array.zarr_array.metadata.to_dict()
    codecs: Any = meta["compressor"] if "compressor" in meta else meta.get("codecs")
    if isinstance(codecs, list):  # v3: a sharded array's compressor is inside the shard
        sharding = [
            c for c in codecs if isinstance(c, dict) and c.get("name") == "sharding_indexed"
        ]
        if sharding:
            codecs = sharding[0].get("configuration", {}).get("codecs", [])
    if not meta.get("filters"):
        with contextlib.suppress(SpecError):
            return parse_codec(codecs), None
    note = f"the source's codecs are not ones chunkwise writes; using {DEFAULT_CODEC}"
    return parse_codec(DEFAULT_CODEC), note


def _check_dtype(array: SourceArray, codec: CodecSpec, zarr_format: int = 3) -> str | None:
    """Why chunkwise cannot write this dtype with this codec and format, or ``None``."""
    dtype = array.dtype
    if (
        zarr_format == 3
        and dtype.kind in "SUT"
        and array.fill_value not in (None, "", b"")
        and array.zarr_array is None
    ):
        return (
            f"array {array.path or '(array)'!r} is text with a missing value "
            f"({array.fill_value!r}), which xarray cannot read back from Zarr format 3; use "
            "--zarr-format 2"
        )
    if dtype.kind == "O" or (dtype.hasobject and not _variable(dtype)):
        return (
            f"array {array.path or '(array)'!r} holds Python objects ({dtype}), which Zarr "
            "cannot store as they are; convert it to numbers or strings first"
        )
    if codec.kind == "blosc" and dtype.itemsize > 255 and not _variable(dtype):
        return (
            f"array {array.path or '(array)'!r} has {dtype.itemsize}-byte elements, more than "
            "Blosc's shuffle handles (255); use --codec zstd:3"
        )
    return None


def _variable(dtype: np.dtype[Any]) -> bool:
    """Variable-length elements (NumPy's StringDType): no fixed bytes per element."""
    return dtype.kind == "T"


def _copied_whole(array: SourceArray) -> bool:
    """Arrays the chunked planner cannot cut: 0-d, no elements, variable-length."""
    return len(array.shape) == 0 or 0 in array.shape or _variable(array.dtype)


def _spec(array: SourceArray) -> ArraySpec:
    dims = array.dims or tuple(f"dim_{i}" for i in range(len(array.shape)))
    return ArraySpec.create(array.shape, model_dtype(array.dtype), dims)


#: Names inside a target store that belong to Zarr or to a run, never to an array.
_RESERVED = frozenset(
    {MARKER_PREFIX, "zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata", ".", ".."}
)


def _check_path(path: str) -> None:
    """An array path that would clash with Zarr's metadata keys or the run's own state."""
    parts = path.split("/") if path else []
    if any(not part or part in _RESERVED for part in parts):
        raise SpecError(
            f"array {path!r} has a name Zarr or chunkwise uses inside a store "
            f"({', '.join(sorted(_RESERVED))}, or an empty part); rename it, or leave it out "
            f"with --skip {path}."
        )


def _without_skipped(
    source: Source, skip: tuple[str, ...]
) -> tuple[tuple[SourceArray, ...], list[str]]:
    """The arrays to write and what ``--skip`` left out (every name must exist; those the
    reader already left out, being what Zarr cannot store, are listed by the source)."""
    paths = {a.path for a in source.arrays}
    dropped = {entry.split(" ", 1)[0] for entry in source.skipped}
    unknown = [name for name in skip if name not in paths | dropped]
    if unknown:
        raise SpecError(
            f"--skip {', '.join(map(repr, unknown))}: the source has no such array; it has "
            f"{', '.join(repr(p) for p in sorted(paths)[:8])}{', ...' if len(paths) > 8 else ''}."
        )
    levels = sorted(image_levels(source) & set(skip))
    if levels:
        raise SpecError(
            f"--skip {', '.join(map(repr, levels))} would drop a level of an OME-Zarr image, "
            "whose metadata lists it (viewers then fail to open the image); keep every level."
        )
    kept = tuple(a for a in source.arrays if a.path not in skip)
    if not kept:
        raise SpecError("--skip leaves no array to write; skip fewer.")
    return kept, [f"{name} (--skip)" for name in skip if name not in dropped]


def _workload_spec(request: LayoutRequest) -> tuple[str | list[Any], dict[str, Any]]:
    """The workload of ``--workload`` and the rest of its spec file (storage, reader,
    constraints, codecs): a preset name alone, or a spec file's entries."""
    assert request.workload is not None
    if Path(request.workload).suffix.lower() not in (".yaml", ".yml", ".json"):
        return request.workload, {}
    from chunkwise.spec import load_spec

    if not Path(request.workload).is_file():
        raise SpecError(
            f"workload file {request.workload!r} does not exist; give a preset name or a spec file."
        )
    spec = load_spec(request.workload)
    workload = spec.pop("workload", None)
    if workload is None:
        raise SpecError(
            f"spec file {request.workload!r} has no workload; add one (a preset name or a list "
            "of operations) or give --workload a preset."
        )
    spec.pop("array", None)  # the source is the array
    return workload, spec


def _spec_format(spec: Mapping[str, Any]) -> int | None:
    """The ``zarr_format`` constraint of a ``--workload`` spec file, if any."""
    constraints = spec.get("constraints")
    fmt = constraints.get("zarr_format") if isinstance(constraints, Mapping) else None
    return fmt if fmt in (2, 3) else None


def _advise_all(
    source: Source,
    request: LayoutRequest,
    workload: str | list[Any],
    spec: Mapping[str, Any],
    zarr_format: int,
    advise: Adviser,
) -> DatasetAdvice:
    """``advise`` for every array the workload applies to, in one go (see
    :func:`~chunkwise.plan.dataset.advise_dataset`); ``spec`` is the rest of a workload
    spec file (its constraints are merged, never replaced)."""
    spec = dict(spec)
    constraints = dict(spec.pop("constraints", None) or {})
    constraints["zarr_format"] = zarr_format
    if request.checksum:
        constraints["checksum"] = True
    dataset = source_dataset(source)
    plannable = {a.path for a in source.arrays if _modelled(a)}
    return advise_dataset(
        DatasetSpec(tuple(v for v in dataset.variables if v.name in plannable)),
        workload, advise, whole_codec=parse_codec(request.codec or DEFAULT_CODEC),
        constraints=constraints, small_bytes=SMALL_ARRAY_BYTES, spec=spec or None,
        storage=request.storage, codec=request.codec,
    )  # fmt: skip


def _modelled(array: SourceArray) -> bool:
    """Arrays the layout model plans: numbers and dates with at least one element."""
    return array.dtype.kind in "biufcmM" and not _copied_whole(array)


def _advised_decision(chosen: VariableAdvice) -> dict[str, Any]:
    if chosen.advice is None:
        return {"decided_by": chosen.reason}
    advice, best = chosen.advice, chosen.advice.best
    return {
        "decided_by": "advise",
        "reason": chosen.reason,
        "workload": advice.workload.to_list(),
        "storage": advice.to_dict().get("storage"),
        "predicted_s": {name: op["seconds"] for name, op in best.cost.ops.items()},
        "rationale": list(best.rationale),
    }


def _decide(
    array: SourceArray,
    request: LayoutRequest,
    zarr_format: int,
    lone: bool,
    advised: DatasetAdvice | None,
) -> tuple[Layout, dict[str, Any]]:
    """The target layout of one array and how it was decided."""
    ndim = len(array.shape)
    explicit = request.chunks is not None and len(request.chunks) == ndim
    nbytes = math.prod(array.shape) * array.dtype.itemsize
    if request.codec is not None:
        codec, note = parse_codec(request.codec), None
    elif array.zarr_array is not None and _zarr_format_of(array) == zarr_format:
        codec, note = _source_codec(array)
    else:
        codec, note = parse_codec(DEFAULT_CODEC), None
    if request.checksum:
        codec = codec.with_checksum()
    if advised is not None and _modelled(array):
        chosen = advised[array.path]
        return chosen.layout, _advised_decision(chosen)
    if request.workload is not None and not _modelled(array):
        kept = "keeps its chunks" if lone or nbytes > SMALL_ARRAY_BYTES else "stored whole"
        if ndim == 0:
            note = "a scalar: one chunk"
        elif 0 in array.shape:
            note = "no elements: one chunk"
        else:
            note = f"{array.dtype} values: {kept} (advise plans arrays of numbers and dates)"
    shards: tuple[int, ...] | None = None
    decided: Decided
    if explicit:
        assert request.chunks is not None
        chunks = _resolve(array.shape, request.chunks, "--chunks")
        if request.shards is not None:
            shards = tuple(
                -(-n // c) * c if s == -1 or s > n else s
                for s, c, n in zip(request.shards, chunks, array.shape, strict=True)
            )
        decided = "chunks"
    elif not lone and nbytes <= SMALL_ARRAY_BYTES:
        chunks, decided = array.shape, "small"
    else:
        chunks = tuple(min(c, n) for c, n in zip(array.chunks, array.shape, strict=True))
        shards = getattr(array.zarr_array, "shards", None) if zarr_format == 3 else None
        decided = "source"
    if ndim == 0 or 0 in array.shape:  # nothing to validate against: zarr's own rules
        chunks = tuple(max(1, c) for c in chunks)
        layout = Layout(zarr_format, chunks, None, codec, "/" if zarr_format == 3 else ".")  # type: ignore[arg-type]
    else:
        layout = Layout.create(
            _spec(array), chunks, shards=shards, codec=codec, zarr_format=zarr_format
        )
    reasons = {
        "chunks": "explicit --chunks",
        "source": "kept the source's chunks",
        "small": f"one chunk: a small array (at most {format_bytes(SMALL_ARRAY_BYTES)})",
    }
    decision: dict[str, Any] = {"decided_by": reasons[decided]}
    if note:
        decision["note"] = note
    return layout, decision


def _zarr_format_of(array: SourceArray) -> int | None:
    meta = getattr(array.zarr_array, "metadata", None)
    return int(meta.zarr_format) if meta is not None else None


def plan_conversion(
    source: Source,
    target_url: str,
    request: LayoutRequest,
    *,
    max_mem: int,
    threads: int,
    executor: str = "threads",
    advise: Adviser,
    check_levels: bool = True,
    engine: str = "",
    workers: int = 1,
    readback: bool | None = None,
) -> ConversionPlan:
    """Decide and plan every array of ``source``; raises before anything is written.

    ``advise`` decides the layouts a ``--workload`` asks for (``chunkwise.advise``, which
    the façade passes in: this layer does not reach back up to it). ``check_levels``: a
    pyramid's levels will be checked after writing (``--verify`` other than ``none``), so
    the check's memory is part of the plan. ``engine`` (``"zarrs 0.2.3"``): the library
    that will run the tasks, whose own memory is part of the plan (:func:`engine_overhead`).

    Every array's plan is estimated (:func:`~chunkwise.plan.estimate.estimate_rechunk`) for
    ``workers`` processes running ``threads`` tasks each, on the target's storage (the
    request's ``storage`` when given, else the preset of the target's kind: ``s3://`` ->
    ``s3``, local paths -> ``local-ssd``) and the source's; ``readback`` (default:
    ``check_levels``) says whether every object written is read back.

    Raises
    ------
    SpecError
        For a layout that does not fit an array, a dtype chunkwise cannot write, or a
        request that names no layout where one is required.
    ConstraintError
        When an array cannot be moved within ``max_mem`` (names the smallest budget).
    """
    if request.require_layout and request.chunks is None and request.workload is None:
        raise SpecError(
            "rechunk needs a target layout: give --chunks (e.g. --chunks 1024,32,32) or "
            "--workload (e.g. --workload time-series); use convert to keep the source's chunks."
        )
    if request.shards is not None and request.chunks is None:
        raise SpecError(
            f"--shards {','.join(map(str, request.shards))} needs --chunks, the chunks inside "
            "each shard (e.g. --chunks 1,256,256 --shards 16,1024,1024); or give --workload and "
            "let advise choose both."
        )
    pyramid = None
    if request.pyramid is not None:
        source, pyramid, request = _pyramid_levels(source, request, max_mem)
    workload, spec = _workload_spec(request) if request.workload is not None else ("", {})
    spec_format = _spec_format(spec)
    if request.zarr_format and spec_format and request.zarr_format != spec_format:
        raise SpecError(
            f"--zarr-format {request.zarr_format} contradicts the constraint zarr_format: "
            f"{spec_format} of {request.workload!r}; drop one of them."
        )
    zarr_format = (
        request.zarr_format
        or spec_format
        or (3 if request.shards is not None or request.checksum else (source.zarr_format or 3))
    )
    if zarr_format not in (2, 3):
        raise SpecError(f"--zarr-format {zarr_format!r} must be 2 or 3.")
    if request.shards is not None and zarr_format == 2:
        raise SpecError(
            "--shards needs zarr format 3 (format 2 has no sharding); drop --zarr-format 2 or "
            "--shards."
        )
    if request.checksum and zarr_format == 2:
        raise SpecError(
            "--checksum needs zarr format 3 (format 2 has no crc32c codec); drop "
            "--zarr-format 2 or --checksum."
        )
    if source.is_group and pyramid is None:
        source = _ome_in_format(source, zarr_format)
    lone = not source.is_group
    if request.chunks is not None:
        ndims = {len(a.shape) for a in source.arrays}
        if len(request.chunks) not in ndims:
            have = ", ".join(
                f"{a.path or '(array)'} has {len(a.shape)} ({', '.join(a.dims or ())})".replace(
                    " ()", ""
                )
                for a in source.arrays[:4]
            )
            raise SpecError(
                f"--chunks {','.join(map(str, request.chunks))} has {len(request.chunks)} sizes "
                f"but no array of the source has {len(request.chunks)} dims ({have}); give one "
                "size per dim."
            )
        if request.shards is not None and len(request.shards) != len(request.chunks):
            raise SpecError(
                f"--shards {','.join(map(str, request.shards))} must have as many sizes as "
                f"--chunks ({len(request.chunks)})."
            )
    arrays, skipped = _without_skipped(source, request.skip)
    run_overhead = RUN_OVERHEAD + engine_overhead(engine)
    for array in arrays:
        _check_path(array.path)
    jobs: list[ArrayJob] = []
    requested_codec = parse_codec(request.codec or DEFAULT_CODEC)
    for array in arrays:
        problem = _check_dtype(array, requested_codec, zarr_format)
        if problem is not None:
            raise SpecError(
                problem + ("." if lone else f", or leave it out with --skip {array.path}.")
            )
    advised = None
    if request.workload is not None and any(_modelled(a) for a in arrays):
        advised = _advise_all(
            replace(source, arrays=arrays), request, workload, spec, zarr_format, advise
        )
    decided = [_decide(array, request, zarr_format, lone, advised) for array in arrays]
    if pyramid is not None:  # a level reads the level below with the chunks it will have
        arrays = tuple(relink_levels(arrays, [layout.chunks for layout, _ in decided]))
    for array, (layout, decision) in zip(arrays, decided, strict=True):
        if _copied_whole(array):
            itemsize = VARIABLE_ITEM_BYTES if _variable(array.dtype) else array.dtype.itemsize
            plan = plan_whole_copy(
                array.shape, itemsize, max_mem=max_mem, overhead=run_overhead,
                slack=ALLOCATOR_SLACK,
            )  # fmt: skip
        else:
            plan = _plan_array(
                array, layout, max_mem=max_mem, threads=threads, overhead=run_overhead
            )
        jobs.append(ArrayJob(array.path, array, layout, plan, decision))
    jobs = _estimated(
        jobs, source.url, target_url, request.storage, workers=workers, threads=threads,
        readback=check_levels if readback is None else readback,
    )  # fmt: skip
    skipped.extend(source.skipped)
    check = 0
    if pyramid is not None and check_levels:
        check = _check_memory(pyramid, jobs, max_mem, run_overhead)
    return ConversionPlan(
        source.url, target_url, source.description, source.is_group, zarr_format,
        source.groups if source.is_group else (), tuple(jobs), tuple(skipped), max_mem, executor,
        workload=request.workload, pyramid=pyramid, check_memory=check, engine=engine,
    )  # fmt: skip


#: The intermediate array's codec (as :mod:`chunkwise.rechunking.executor` writes it).
INTERMEDIATE_CODEC = CodecSpec("blosc", INTERMEDIATE_COMPRESSOR, 1, "shuffle")


def storage_at(url: str) -> StorageProfile:
    """The storage preset a source or target is priced as, by its kind: ``s3://`` is
    ``s3``, ``gs://`` ``gcs``, ``https://`` ``http``, everything else (local paths,
    ``memory://``, data objects) ``local-ssd``; with the reader installed here."""
    from chunkwise.spec import parse_storage

    try:
        scheme = resolve_location(url).scheme
    except (SpecError, OSError, ValueError):
        scheme = "file"
    return parse_storage(SCHEME_STORAGE.get(scheme, "local-ssd"))


def _estimated(
    jobs: Sequence[ArrayJob],
    source_url: str,
    target_url: str,
    storage: str | Mapping[str, Any] | None,
    *,
    workers: int,
    threads: int,
    readback: bool,
) -> list[ArrayJob]:
    """``jobs`` with their plans' estimates on the source's and the target's storage."""
    from chunkwise.spec import parse_storage

    source = storage_at(source_url)
    target = parse_storage(storage) if storage is not None else storage_at(target_url)
    intermediate = default_codec_profile(INTERMEDIATE_CODEC)
    out = []
    for job in jobs:
        codec = _source_codec(job.source)[0] if job.source.zarr_array is not None else None
        estimate = estimate_rechunk(
            job.plan, source=source, target=target,
            source_codec=default_codec_profile(codec or CodecSpec("none")),
            target_codec=default_codec_profile(job.layout.codec),
            intermediate_codec=intermediate, workers=workers, threads=threads,
            readback=readback,
        )  # fmt: skip
        out.append(replace(job, estimate=estimate))
    return out


def _check_memory(
    pyramid: Pyramid, jobs: Sequence[ArrayJob], max_mem: int, overhead: int = RUN_OVERHEAD
) -> int:
    """Projected peak of checking the levels, within ``max_mem``.

    Raises
    ------
    ConstraintError
        When the check of a level cannot fit the budget.
    """
    itemsize = jobs[0].source.dtype.itemsize
    tasks = check_bytes(pyramid, [job.layout.chunks for job in jobs], itemsize)
    peak = overhead + math.ceil(tasks * (1 + ALLOCATOR_SLACK))
    if peak > max_mem:
        raise ConstraintError(
            f"max_mem {format_bytes(max_mem)} is too small to check this pyramid's levels: "
            f"reading a sampled block and its windows needs {format_bytes(peak)}; give at "
            f"least --max-mem {format_bytes(peak)}, or smaller --chunks."
        )
    return peak


def _ome_in_format(source: Source, zarr_format: int) -> Source:
    """The source with its OME-Zarr metadata in the NGFF version of the target's format
    (0.4 on v2, 0.5 on v3), and, on v3, its image levels named by their axes (NGFF 0.5
    levels carry dimension names)."""
    groups = tuple(
        replace(g, attributes=ome_for_format(g.attributes, zarr_format)) for g in source.groups
    )
    arrays = source.arrays
    if zarr_format == 3:
        axes = level_axes(source)
        arrays = tuple(
            replace(a, dims=axes[a.path]) if a.dims is None and a.path in axes else a
            for a in arrays
        )
    return replace(source, groups=groups, arrays=arrays)


def _pyramid_levels(
    source: Source, request: LayoutRequest, max_mem: int
) -> tuple[Source, Pyramid, LayoutRequest]:
    """The source's image as pyramid levels, the pyramid, and the request to lay them out
    with: ``--chunks`` for every level (clipped to its shape), a ``--workload``, or by
    default the ``pyramid-viewer`` workload."""
    assert request.pyramid is not None
    chunks = None
    if request.chunks is not None:
        image = source.arrays[0].shape if len(source.arrays) == 1 else None
        if image is not None and len(image) == len(request.chunks):
            chunks = _resolve(image, request.chunks, "--chunks")
    levels, pyramid = pyramid_source(source, request.pyramid, chunks=chunks, max_mem=max_mem)
    if request.chunks is None and request.workload is None:
        request = replace(request, workload="pyramid-viewer")
    return levels, pyramid, request


def _read_grids(array: SourceArray, unit: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Read grids to plan with, best first. A chunked source has its chunks. A source
    whose every box reads alike (memory-mapped, contiguous) is read in slabs of whole
    trailing dims, whole write units thick (contiguous reads, aligned tasks), or, when
    those do not fit in one pass, in the target's own write units (the least memory:
    one write unit per task)."""
    if not array.flexible:
        return [array.chunks]
    lead = min(array.shape[0], max(unit[0], array.chunks[0] // unit[0] * unit[0]))
    return [(lead, *array.shape[1:]), (1,) * len(array.shape)]


def _plan_array(
    array: SourceArray, layout: Layout, *, max_mem: int, threads: int, overhead: int = RUN_OVERHEAD
) -> RechunkPlan:
    """The rechunk plan of one array: one pass on the first read grid that allows it,
    else two passes on the first that fits (see :func:`_read_grids`)."""
    memory = TASK_MEMORY
    if array.flexible:  # read straight into the task's region: no chunks to decode
        memory = replace(
            memory, chunked_reads=False, read_span_bytes=array.read_span_bytes,
            read_working_bytes=array.read_working_bytes,
        )  # fmt: skip
    # The run's own: pools, the reading library's buffers, the codec's working memory.
    overhead += array.library_bytes + ENCODE_THREADS * encode_scratch(layout.codec)
    fallback: RechunkPlan | None = None
    refusal: ConstraintError | None = None
    for grid in _read_grids(array, layout.shards or layout.chunks):
        try:
            plan = plan_rechunk(
                array.shape, array.dtype.itemsize, grid, layout.chunks, layout.shards,
                max_mem=max_mem, threads=threads, memory=memory, overhead=overhead,
                slack=ALLOCATOR_SLACK,
            )  # fmt: skip
        except ConstraintError as exc:
            refusal = exc  # the last grid needs the least: name its budget
            continue
        if len(plan.stages) == 1:
            return plan
        fallback = fallback or plan
    if fallback is not None:
        return fallback
    assert refusal is not None
    raise refusal


# ----------------------------------------------------------------------------- the target


def open_target_store(url: str, storage_options: Mapping[str, Any] | None = None) -> Any:
    """A writable zarr store for ``url``: a directory, ``s3://bucket/prefix`` or ``memory://``.

    Raises
    ------
    SpecError
        For a zip file or another form chunkwise cannot write resumably.
    """
    from zarr.storage import LocalStore, MemoryStore

    text = url.strip()
    if text.startswith("memory://"):
        return MemoryStore()
    if text.lower().endswith(".zip") or text.startswith("zip://"):
        raise SpecError(
            f"target {url!r} is a zip file, which cannot be written resumably; write to a "
            "directory and zip it afterwards."
        )
    if text.startswith("s3://"):
        from chunkwise.io.stores import _fsspec_store, check_s3_access

        bucket = text.removeprefix("s3://").split("/", 1)[0]
        check_s3_access(url, bucket, storage_options or {})
        return _fsspec_store(text, storage_options or {})
    if "://" in text and not text.startswith("file://"):
        raise SpecError(
            f"target {url!r} is not a place chunkwise can write to; use a directory, "
            "s3://bucket/prefix or memory://."
        )
    path = Path(text.removeprefix("file://")).expanduser()
    if path.exists() and not path.is_dir():
        raise SpecError(f"target {url!r} is a file, not a directory; choose a new directory name.")
    return LocalStore(path)


def _record(job: ArrayJob, plan: ConversionPlan) -> dict[str, Any]:
    from chunkwise._version import __version__

    source = job.source
    dims = source.dims or tuple(f"dim_{i}" for i in range(len(source.shape)))
    a = ArraySpec(source.shape, model_dtype(source.dtype), dims)  # describes; never plans
    return {
        "tool": f"chunkwise {__version__}",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "source": (
            {
                "level": job.path,
                "downsampled_from": f"level {int(job.path) - 1}",
                "method": plan.pyramid.method,
            }
            if plan.pyramid is not None and job.path != "0"
            else {
                "url": plan.source_url,
                "path": job.source.path,
                "chunks": list(job.source.chunks),
            }
        ),
        "layout": job.layout.to_dict(a),
        **json_value(job.decision),
    }


def _create_array(store: Any, job: ArrayJob, plan: ConversionPlan) -> Any:
    """The target array: opened when a resumed run already created it, else created."""
    import zarr

    from chunkwise.io.codecs import zarr_compressor

    with contextlib.suppress(FileNotFoundError):
        return zarr.open_array(store, path=job.path, mode="r+")
    source, layout = job.source, job.layout
    attributes = dict(source.attributes)  # JSON already: the readers' contract
    if not plan.is_group:  # a group records every array's decision on its root
        attributes["chunkwise"] = _record(job, plan)
    dtype = source.dtype
    if layout.zarr_format == 3 and dtype.byteorder == ">":
        dtype = dtype.newbyteorder("=")  # zarr v3 stores native order; values are unchanged
    options: dict[str, Any] = {
        "store": store,
        "name": job.path or None,
        "shape": source.shape,
        "dtype": dtype,
        "chunks": layout.chunks,
        "compressors": zarr_compressor(layout.codec, dtype.itemsize, layout.zarr_format),
        "zarr_format": layout.zarr_format,
        "attributes": attributes,
    }
    options.update(_fill_options(source, layout.zarr_format, attributes))
    if layout.shards is not None:
        options["shards"] = layout.shards
    if source.dims is not None:
        if layout.zarr_format == 3:
            options["dimension_names"] = list(source.dims)
        else:
            attributes["_ARRAY_DIMENSIONS"] = list(source.dims)
    if layout.zarr_format == 2:
        options["chunk_key_encoding"] = {"name": "v2", "separator": layout.separator}
    return zarr.create_array(**options)


def _missing_value(source: SourceArray) -> tuple[bool, Any]:
    """Whether the source's fill value means "missing" to xarray, and the value.

    A Zarr v2 ``fill_value`` and a NetCDF/HDF5 ``_FillValue`` do; a Zarr v3 ``fill_value``
    is only the value of unwritten chunks (xarray reads the missing value of v3 from a
    ``_FillValue`` attribute, which travels with the attributes)."""
    if source.zarr_array is not None and _zarr_format_of(source) == 3:
        return False, None
    return source.fill_value is not None, source.fill_value


def _encode_fill(value: Any, dtype: np.dtype[Any]) -> Any:
    """A ``_FillValue`` attribute as xarray writes it for Zarr v3 (floats as base64 of a
    little-endian float64)."""
    import base64
    import struct

    if dtype.kind == "f":
        return base64.standard_b64encode(struct.pack("<d", float(value))).decode()
    if dtype.kind in "iu":
        return int(value)
    if dtype.kind == "b":
        return bool(value)
    if dtype.kind == "S":  # bytes, as xarray's FillValueCoder writes them
        raw = value if isinstance(value, bytes) else str(value).encode()
        return base64.standard_b64encode(raw).decode()
    return value


def _fill_options(
    source: SourceArray, zarr_format: int, attributes: dict[str, Any]
) -> dict[str, Any]:
    """``fill_value`` for the target, so xarray masks exactly what it masked in the source:
    v2 stores the missing value (or ``null``) as ``fill_value``; v3 keeps the storage fill
    and records a missing value in a ``_FillValue`` attribute."""
    is_missing, missing = _missing_value(source)
    if zarr_format == 2:
        return {"fill_value": missing if is_missing else None}
    if is_missing and missing is not None and "_FillValue" not in attributes:
        attributes["_FillValue"] = _encode_fill(missing, source.dtype)
    fill = source.fill_value
    return {"fill_value": fill} if fill is not None else {}


def _create_groups(store: Any, plan: ConversionPlan) -> None:
    """The groups, with their attributes; the root also records how every array's layout
    was decided (``attributes["chunkwise"]["arrays"][path]``), so the arrays keep exactly
    their source attributes."""
    import zarr

    for group in sorted(plan.groups, key=lambda g: g.path.count("/") + bool(g.path)):
        attributes = dict(group.attributes)
        if not group.path:
            attributes["chunkwise"] = {
                "source": plan.source_url,
                "arrays": {job.path: _record(job, plan) for job in plan.jobs},
            }
        zarr.open_group(
            store,
            path=group.path or None,
            mode="a",
            zarr_format=plan.zarr_format,  # type: ignore[arg-type]
            attributes=attributes,
        )


def _consolidate(store: Any, plan: ConversionPlan) -> None:
    import zarr

    if not plan.is_group:
        return
    with warnings.catch_warnings():
        # zarr-python warns that consolidated metadata is not yet in the v3 specification.
        warnings.simplefilter("ignore")
        zarr.consolidate_metadata(store, zarr_format=plan.zarr_format)  # type: ignore[arg-type]


def _mark_complete(store: Any, plan: ConversionPlan, verified: str) -> None:
    """Record in the root node's ``chunkwise`` attribute that this plan's run finished
    (the mark :func:`~chunkwise.rechunking.target.completed_fingerprint` reads)."""
    import zarr

    node = zarr.open(store, mode="r+")
    found = node.attrs.get("chunkwise")
    record = dict(found) if isinstance(found, dict) else {}
    record["run"] = {
        "fingerprint": plan.fingerprint(),
        "completed": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "verified": verified,
    }
    node.update_attributes({"chunkwise": record})


def _completed(store: Any) -> dict[str, Any]:
    import zarr

    record = zarr.open(store, mode="r").attrs.get("chunkwise") or {}
    run = record.get("run") if isinstance(record, dict) else None
    return run if isinstance(run, dict) else {}


def _weakest(results: Mapping[str, RechunkResult]) -> str:
    order = {mode: i for i, mode in enumerate(reversed(VERIFY_MODES_BY_STRENGTH))}
    return min((r.verified for r in results.values()), key=order.__getitem__, default="none")


#: Verification modes, weakest first.
VERIFY_MODES_BY_STRENGTH = ("none", "readback", "full")


def _skipped_results(plan: ConversionPlan, verified: str) -> dict[str, RechunkResult]:
    return {
        job.path: RechunkResult(0, sum(s.tasks for s in job.plan.stages), 0, 0.0, verified)
        for job in plan.jobs
    }


def _write_arrays(
    plan: ConversionPlan, store: Any, verify: Verify, runner: Any, events: Events | None
) -> dict[str, RechunkResult]:
    if plan.is_group:
        _create_groups(store, plan)
    results: dict[str, RechunkResult] = {}
    for job in plan.jobs:
        target = _create_array(store, job, plan)
        results[job.path] = run_plan(
            job.plan, bind_levels(job.source.data, store), target, verify=verify,
            state=array_state(job.path),
            runner=runner, events=events, name=job.path, keep_done=True,
        )  # fmt: skip
    return results


def array_state(path: str) -> str:
    """Where an array's markers and intermediate live in the target store."""
    return f"{MARKER_PREFIX}/arrays/{path or '_'}"


def _finish(store: Any) -> None:
    """Remove the run's state, the run record last but for the lease (which the caller
    releases): every prefix of these deletions leaves a "finishing" run record or none."""
    from chunkwise.io.stores import delete_keys, store_keys
    from chunkwise.rechunking.executor import PARTIAL_WRITE

    state = [k for k in store_keys(store, f"{MARKER_PREFIX}/") if k not in (RUN_RECORD, LEASE_KEY)]
    delete_keys(store, state)
    delete_keys(store, [k for k in store_keys(store) if PARTIAL_WRITE.search(k)])
    delete_keys(store, [RUN_RECORD])


def run_conversion(
    plan: ConversionPlan,
    store: Any,
    *,
    overwrite: bool = False,
    verify: Verify = "readback",
    runner: Any = thread_runner,
    events: Events | None = None,
) -> ConversionResult:
    """Write every array of ``plan`` into ``store`` (see the module docstring).

    Takes the target's lease first (a second run on the same target is refused), then
    claims, writes, verifies and finishes the target as
    :mod:`chunkwise.rechunking.target` describes; a rerun of the same plan after a kill at
    any point resumes, and one after the run finished reports it complete.

    Raises
    ------
    chunkwise.errors.ChunkwiseError
        For a busy target, a target not provably Zarr (``overwrite``), a mismatch found
        by verification, an unreadable source object, or a target that cannot be
        written (full disk, read-only, permission), each in one sentence.
    """
    from chunkwise.io.stores import remove_empty_folders
    from chunkwise.rechunking.lease import acquire_lease

    start = time.perf_counter()
    region = smallest_region(plan)
    precise = precise_allocation(region)
    tame_allocator(mmap_threshold_for(region), precise=precise)
    warm_up()
    if plan.pyramid is not None:
        from chunkwise.io.ome import load_models

        load_models()  # before the memory watch: imports are not the run's memory
    rss_at_start = start_memory_watch()
    room = 0 if precise else trim_room(plan.peak_memory, largest_task(plan))
    trim_above(rss_at_start + room)
    root = getattr(store, "root", None)
    existed = root is None or Path(root).exists()
    try:
        lease = acquire_lease(store, plan.target_url, LEASE_KEY)
        try:
            results, resumed, completed, checked = _claim_and_write(
                plan, store, overwrite, verify, runner, events
            )
        finally:
            lease.release()
            remove_empty_folders(store, MARKER_PREFIX)
            if not existed and root is not None:
                with contextlib.suppress(OSError):
                    Path(root).rmdir()  # only when empty: a run that wrote nothing
    except (OSError, RuntimeError) as exc:  # zarrs raises the system's errors as RuntimeError
        found = os_error_of(exc)
        if found is None:
            raise
        raise target_io_error(plan.target_url, found) from None
    finally:
        trim_above(None)
        # The precise settings after the run, whatever its plan: the heap's free top goes
        # back to the system, rather than up to 64 MiB of it staying with a process that
        # goes on to other work (a notebook, a server).
        tame_allocator(precise=True)
    peak = peak_rss()
    return ConversionResult(
        plan, results, time.perf_counter() - start, resumed, peak, max(0, peak - rss_at_start),
        completed=completed, levels_checked=checked,
    )  # fmt: skip


def _claim_and_write(
    plan: ConversionPlan,
    store: Any,
    overwrite: bool,
    verify: Verify,
    runner: Any,
    events: Events | None,
) -> tuple[dict[str, RechunkResult], bool, str | None, int]:
    """Claim the target (under the lease) and take it to the end: results per array,
    whether an earlier run was resumed, when an earlier run finished it (if so), and the
    pyramid blocks checked against a recomputation."""
    fingerprint = plan.fingerprint()
    claim, keys = inspect_target(store, plan.target_url, fingerprint, overwrite=overwrite)
    if claim is Claim.COMPLETE:
        done = _completed(store)
        return (
            _skipped_results(plan, str(done.get("verified", verify))),
            True,
            str(done.get("completed", "?")),
            0,
        )
    if claim in (Claim.REPLACE, Claim.REPLACING):
        clear_store(
            store, plan.target_url, keys, fingerprint, plan.source_url,
            proven=claim is Claim.REPLACE,
        )  # fmt: skip
    if claim in (Claim.NEW, Claim.REPLACE, Claim.REPLACING):
        write_record(store, fingerprint, plan.source_url, "writing")
    if events is not None:
        events(RechunkEvent("run-start", "", "", 0, len(plan.jobs), plan.bytes_written, 0.0))
    checked = 0
    if claim is Claim.FINISHING:
        results = _skipped_results(plan, str(_completed(store).get("verified", verify)))
    else:
        results = _write_arrays(plan, store, verify, runner, events)
        if plan.pyramid is not None:
            checked = finish_pyramid(
                store, plan.pyramid, check=verify != "none", every=verify == "full",
                seed=fingerprint,
            )  # fmt: skip
        _mark_complete(store, plan, _weakest(results))
        _consolidate(store, plan)
        write_record(store, fingerprint, plan.source_url, "finishing")
    _finish(store)
    return results, claim in (Claim.RESUME, Claim.FINISHING, Claim.REPLACING), None, checked


def target_io_error(url: str, exc: OSError) -> StoreError:
    """One sentence for a target that cannot be written: a full disk, a read-only
    filesystem, denied permission, or another error of the operating system."""
    import errno

    where = f" ({exc.filename})" if exc.filename else ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StoreError(
            f"writing target {url!r} failed: no space left on the disk{where}; free some "
            "space, then run the same command again to resume."
        )
    if exc.errno == errno.EROFS:
        return StoreError(
            f"target {url!r} is on a read-only filesystem{where}; choose a target on a "
            "writable disk."
        )
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM):
        return StoreError(
            f"target {url!r} cannot be written: permission denied{where}; choose a target "
            "you may write to, or fix its permissions."
        )
    reason = exc.strerror or str(exc) or type(exc).__name__
    return StoreError(
        f"writing target {url!r} failed: {reason}{where}; fix that, then run the same "
        "command again to resume."
    )


def default_threads() -> int:
    """Tasks at once on the local executor: the cores, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))
