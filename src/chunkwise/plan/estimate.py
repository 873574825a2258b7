"""What a rechunk plan costs on its storage with N workers: requests, bytes, dollars, time.

From a :class:`~chunkwise.plan.rechunk.RechunkPlan`, the storage of the source and the
target (the intermediate array of a two-pass plan lives beside the target), the codecs'
ratios and speeds and the workers that run the tasks, :func:`estimate_rechunk` counts per
stage, exactly as the executor issues them:

* **GET requests**: one per chunk read (every read chunk lies in exactly one task); with
  read-back verification one more per object written (a whole shard is one GET), except
  in the first pass of two, which records checksums in its markers instead, and the
  second pass then reads, per task, the markers of the first-pass tasks its region
  overlaps; and, for a reader that reads a shard before writing it (zarr-python 3.1), one
  per shard.
* **PUT requests**: one per object written (a chunk, or a whole shard), plus the
  marker each task stores when it is done (what makes a run resumable).
* **bytes** read and written as stored (uncompressed bytes over the codec's ratio).

and from those, per *key prefix* (each array's keys, the intermediate's and the markers'
share one), the request rate, to hold against the store's per-prefix limit
(:class:`~chunkwise.model.storage.RequestRateLimit`); the price of the requests; and the
time. A stage takes the longest of three times, each spread over the task slots at work
(``workers`` times the tasks each runs at once, at most the stage's tasks):

* **compute**: decoding what is read, encoding what is written, decoding it again to
  check it, at the codecs' per-core speeds, plus the handling of every byte written
  besides the codecs (:data:`HANDLING_CPU_S_PER_GIB`: copies, the file system, the
  engine), over the slots; plus the reader's CPU per chunk, which holds the
  interpreter's lock, over the workers (processes);
* **transfer**: stored bytes over the bandwidth. Each worker streams at most
  ``stream_bandwidth x requests in flight``, at most the store's ``bandwidth``; workers
  share a filesystem's bandwidth, while each worker is its own client of an object store
  (workers on separate machines), so object-store bandwidth adds up over workers;
* **latency**: requests over the requests in flight, times the store's latency.

Stages run one after the other. Not counted: zarr metadata, listing markers on resume,
deleting the intermediate and markers at the end (DELETEs are free on S3), chunks zarr skips
because they hold only the fill value (counted as written), and the extra pass of
``--verify full``.

This module is pure: numbers in, an :class:`RechunkEstimate` out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from chunkwise.errors import SpecError
from chunkwise.model.codec import CodecProfile
from chunkwise.model.storage import ReaderProfile, RequestRateLimit, StorageProfile
from chunkwise.plan.rechunk import RechunkPlan, Stage
from chunkwise.units import format_bytes, format_count

__all__ = [
    "PrefixLoad",
    "RechunkEstimate",
    "StageEstimate",
    "estimate_rechunk",
    "format_hours",
    "format_usd",
    "marker_reads",
]

#: CPU seconds per GiB a stage writes besides the codecs' own work (assembling regions,
#: copies in and out of the page cache, creating files, the engine's bookkeeping): the
#: 1 GiB map -> time-series job with zarrs on local disk used 13.9 CPU-s, of which its
#: codecs (at the speeds benchmarks/bench_rechunk_scale.py measures on its data) 8.5, over
#: 2 GiB written in two passes (benchmarks/bench_rechunk_profile.py).
HANDLING_CPU_S_PER_GIB = 2.7
_GiB = 2**30

#: What each key prefix holds, for messages.
PREFIX_WORDS = {
    "source": "the source's",
    "intermediate": "the intermediate array's",
    "target": "the target's",
    "markers": "the run markers'",
}


@dataclass(frozen=True, slots=True)
class PrefixLoad:
    """The requests one stage sends to one key prefix, and their rate.

    Attributes
    ----------
    prefix
        ``"source"``, ``"intermediate"``, ``"target"`` or ``"markers"``.
    stage
        The stage's name.
    storage
        Name of the storage profile the prefix lives on.
    get_requests, put_requests
        Requests over the whole stage.
    get_per_s, put_per_s
        Average requests per second over the stage's estimated time.
    limit
        The store's per-prefix limit, or ``None`` when it states none.
    usd
        Price of the requests, US dollars.
    """

    prefix: str
    stage: str
    storage: str
    get_requests: int
    put_requests: int
    get_per_s: float
    put_per_s: float
    limit: RequestRateLimit | None
    usd: float

    @property
    def gets_over(self) -> bool:
        """The GET rate exceeds the store's per-prefix limit."""
        return self.limit is not None and self.get_per_s > self.limit.get_per_s

    @property
    def puts_over(self) -> bool:
        """The PUT rate exceeds the store's per-prefix limit."""
        return self.limit is not None and self.put_per_s > self.limit.put_per_s

    @property
    def over(self) -> bool:
        """Either rate exceeds the limit."""
        return self.gets_over or self.puts_over

    @property
    def worst_fraction(self) -> float:
        """The larger of the GET and PUT rates as a fraction of their limits (0 without
        limits)."""
        if self.limit is None:
            return 0.0
        return max(self.get_per_s / self.limit.get_per_s, self.put_per_s / self.limit.put_per_s)


@dataclass(frozen=True, slots=True)
class StageEstimate:
    """One stage's requests, bytes and time.

    Attributes
    ----------
    name
        The stage's name (``"copy"``, ``"to-intermediate"``, ``"from-intermediate"``).
    tasks
        Tasks of the stage.
    slots
        Tasks running at once over all workers.
    workers
        Workers with tasks to run (fewer than planned for when the stage has fewer tasks
        than task slots).
    get_requests, put_requests
        Requests of the whole stage (PUTs include one marker per task).
    bytes_read, bytes_written
        Stored (encoded) bytes fetched and stored, read-back included in ``bytes_read``.
    compute_s, transfer_s, latency_s
        The three times the stage takes at least, seconds.
    loads
        Requests and rates per key prefix.
    """

    name: str
    tasks: int
    slots: int
    workers: int
    get_requests: int
    put_requests: int
    bytes_read: int
    bytes_written: int
    compute_s: float
    transfer_s: float
    latency_s: float
    loads: tuple[PrefixLoad, ...]

    @property
    def seconds(self) -> float:
        """Estimated wall time of the stage: the longest of its three times."""
        return max(self.compute_s, self.transfer_s, self.latency_s)

    @property
    def bound(self) -> str:
        """What bounds the stage: ``"compute"``, ``"transfer"`` or ``"latency"``."""
        times = {"compute": self.compute_s, "transfer": self.transfer_s, "latency": self.latency_s}
        return max(times, key=lambda k: times[k])

    @property
    def usd(self) -> float:
        """Price of the stage's requests, US dollars."""
        return sum(load.usd for load in self.loads)


@dataclass(frozen=True, slots=True)
class RechunkEstimate:
    """A rechunk plan's requests, bytes, dollars and time on its storage and workers.

    Attributes
    ----------
    stages
        One per stage of the plan, in order.
    workers, threads
        Workers (processes) and tasks each runs at once, as planned for.
    source, target
        Names of the storage profiles priced.
    readback
        Whether every object written is read back (``--verify readback``).
    """

    stages: tuple[StageEstimate, ...]
    workers: int
    threads: int
    source: str
    target: str
    readback: bool

    @property
    def tasks(self) -> int:
        """Tasks over all stages."""
        return sum(s.tasks for s in self.stages)

    @property
    def get_requests(self) -> int:
        """GET requests over all stages."""
        return sum(s.get_requests for s in self.stages)

    @property
    def put_requests(self) -> int:
        """PUT requests over all stages."""
        return sum(s.put_requests for s in self.stages)

    @property
    def bytes_read(self) -> int:
        """Stored bytes fetched over all stages."""
        return sum(s.bytes_read for s in self.stages)

    @property
    def bytes_written(self) -> int:
        """Stored bytes stored over all stages."""
        return sum(s.bytes_written for s in self.stages)

    @property
    def usd(self) -> float:
        """Price of all requests, US dollars."""
        return sum(s.usd for s in self.stages)

    @property
    def seconds(self) -> float:
        """Estimated wall time: the stages one after the other, seconds."""
        return sum(s.seconds for s in self.stages)

    @property
    def loads(self) -> tuple[PrefixLoad, ...]:
        """Every stage's load on every prefix."""
        return tuple(load for s in self.stages for load in s.loads)

    @property
    def over_limit(self) -> tuple[PrefixLoad, ...]:
        """The loads above their store's per-prefix limit."""
        return tuple(load for load in self.loads if load.over)

    def peak(self, kind: str) -> PrefixLoad | None:
        """The load with the highest ``"get"`` or ``"put"`` rate on one prefix (``None``
        when no stage sends any)."""
        loads = [
            load
            for load in self.loads
            if (load.get_requests if kind == "get" else load.put_requests) > 0
        ]
        if not loads:
            return None
        return max(loads, key=lambda a: a.get_per_s if kind == "get" else a.put_per_s)

    def workers_within_limits(self) -> int | None:
        """The most workers whose rates stay within every per-prefix limit, ``None`` when
        they are within already. A stage's rates scale with the workers at work (each term
        of its time is spread over them); exactly so with one thread per worker."""
        fits = [
            math.floor(stage.workers / load.worst_fraction * (1 - 1e-9))
            for stage in self.stages
            for load in stage.loads
            if load.worst_fraction > 1.0
        ]
        return max(1, min(fits)) if fits else None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready values (requests, bytes, US dollars, seconds, requests per second)."""
        return {
            "workers": self.workers,
            "threads_per_worker": self.threads,
            "source_storage": self.source,
            "target_storage": self.target,
            "readback": self.readback,
            "tasks": self.tasks,
            "get_requests": self.get_requests,
            "put_requests": self.put_requests,
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "usd": self.usd,
            "seconds": self.seconds,
            "over_limit": bool(self.over_limit),
            "workers_within_limits": self.workers_within_limits(),
            "stages": [
                {
                    "name": s.name,
                    "tasks": s.tasks,
                    "slots": s.slots,
                    "workers": s.workers,
                    "get_requests": s.get_requests,
                    "put_requests": s.put_requests,
                    "bytes_read": s.bytes_read,
                    "bytes_written": s.bytes_written,
                    "compute_s": s.compute_s,
                    "transfer_s": s.transfer_s,
                    "latency_s": s.latency_s,
                    "seconds": s.seconds,
                    "bound": s.bound,
                    "usd": s.usd,
                    "prefixes": [
                        {
                            "prefix": load.prefix,
                            "storage": load.storage,
                            "get_requests": load.get_requests,
                            "put_requests": load.put_requests,
                            "get_per_s": load.get_per_s,
                            "put_per_s": load.put_per_s,
                            "get_limit_per_s": load.limit.get_per_s if load.limit else None,
                            "put_limit_per_s": load.limit.put_per_s if load.limit else None,
                            "over_limit": load.over,
                        }
                        for load in s.loads
                    ],
                }
                for s in self.stages
            ],
        }

    def describe(self) -> list[str]:
        """The estimate as lines for ``--dry-run``."""
        who = (
            f"{self.workers} worker{'s' * (self.workers != 1)} x {self.threads} "
            f"thread{'s' * (self.threads != 1)}"
        )
        where = self.source if self.source == self.target else f"{self.source} -> {self.target}"
        price = f" (${format_usd(self.usd)})" if self.usd > 0 else ""
        lines = [
            f"estimate for {who} on {where}: {format_count(self.tasks)} tasks, "
            f"{format_count(self.get_requests)} GET and {format_count(self.put_requests)} PUT "
            f"requests{price}; reads {format_bytes(self.bytes_read)} and writes "
            f"{format_bytes(self.bytes_written)} stored"
            + (" (read-back included)" if self.readback else ""),
            "time: about "
            + format_hours(self.seconds)
            + " ("
            + "; ".join(f"{s.name} {format_hours(s.seconds)}, {s.bound}-bound" for s in self.stages)
            + ")",
        ]
        limits = {load.limit for load in self.loads if load.limit is not None}
        if limits:  # object stores that throttle: say how close the run comes
            rates = []
            gets, puts = self.peak("get"), self.peak("put")
            if gets is not None and gets == puts:
                rates.append(
                    f"{format_count(gets.get_per_s)} GET/s and {format_count(gets.put_per_s)} "
                    f"PUT/s on {PREFIX_WORDS[gets.prefix]} prefix ({gets.stage})"
                )
            else:
                for kind, load in (("GET", gets), ("PUT", puts)):
                    if load is not None:
                        rate = load.get_per_s if kind == "GET" else load.put_per_s
                        rates.append(
                            f"{format_count(rate)} {kind}/s on {PREFIX_WORDS[load.prefix]} "
                            f"prefix ({load.stage})"
                        )
            verdict = ""
            if not self.over_limit:
                verdict = "; within " + " and ".join(
                    f"{format_count(limit.get_per_s)} GET/s and {format_count(limit.put_per_s)} "
                    f"PUT/s per {limit.scope}"
                    for limit in sorted(limits, key=lambda limit: limit.scope)
                )
            lines.append("peak request rates: " + ", ".join(rates) + verdict)
        lines.extend(self.warnings())
        return lines

    def warnings(self) -> list[str]:
        """One line when a rate exceeds its store's per-prefix limit: which rates, what the
        store does then, and what to do (empty when within the limits)."""
        over = self.over_limit
        if not over:
            return []
        rates = []
        for load in over:
            kinds = [
                f"{format_count(rate)} {kind}/s"
                for kind, is_over, rate in (
                    ("GET", load.gets_over, load.get_per_s),
                    ("PUT", load.puts_over, load.put_per_s),
                )
                if is_over
            ]
            rates.append(
                f"{' and '.join(kinds)} on {PREFIX_WORDS[load.prefix]} prefix ({load.stage})"
            )
        limits = {(load.storage, load.limit) for load in over if load.limit is not None}
        said = "; ".join(
            f"{name}'s limit is {format_count(limit.get_per_s)} GET/s and "
            f"{format_count(limit.put_per_s)} PUT/s per {limit.scope}: {limit.throttled}"
            for name, limit in sorted(limits, key=lambda item: item[0])
        )
        fewer = self.workers_within_limits()
        remedies = [f"plan for at most {fewer} workers (--workers {fewer})"] if fewer else []
        for load in over:
            for kind in ("GET", "PUT"):
                if load.gets_over if kind == "GET" else load.puts_over:
                    remedy = _LARGER.get((load.prefix, kind))
                    if remedy and remedy not in remedies:
                        remedies.append(remedy)
        return [
            f"warning: {'; '.join(rates)} exceed the per-prefix request limit; {said}; to "
            f"stay within it, {' or '.join(remedies) or 'run fewer workers'}."
        ]


#: What makes fewer requests on a prefix besides fewer workers.
_LARGER = {
    ("intermediate", "GET"): "give a larger --max-mem (larger intermediate chunks)",
    ("intermediate", "PUT"): "give a larger --max-mem (larger intermediate chunks)",
    ("target", "GET"): "write larger objects (larger --chunks, or --shards)",
    ("target", "PUT"): "write larger objects (larger --chunks, or --shards: one PUT a shard)",
}


def format_usd(usd: float) -> str:
    """US dollars with cents, or more digits below a cent: ``0.0042 -> '0.0042'``."""
    if usd == 0 or usd >= 0.01:
        return f"{usd:,.2f}"
    return f"{usd:.2g}"


def format_hours(seconds: float) -> str:
    """A duration for people: ``12.3 s``, ``4 min 5 s``, ``23 min``, ``3 h 12 min``, ``2 d 5 h``."""
    if seconds < 60:
        return f"{seconds:.3g} s"
    whole = round(seconds)
    if whole < 600:
        return f"{whole // 60} min {whole % 60} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60} min"
    hours = round(seconds / 3600)
    return f"{hours // 24} d {hours % 24} h"


def _blocks(shape: Sequence[int], block: Sequence[int]) -> int:
    return math.prod(-(-n // b) for n, b in zip(shape, block, strict=True))


@dataclass(frozen=True, slots=True)
class _Side:
    """Where a stage reads from or writes to."""

    prefix: str
    storage: StorageProfile
    codec: CodecProfile


def _per_worker_in_flight(storage: StorageProfile, reader: ReaderProfile, tasks: int) -> int:
    """Requests one worker keeps in flight: each task's reader concurrency, at most what
    the store serves."""
    return max(1, min(tasks * reader.concurrency, storage.concurrency))


def _bandwidth(storage: StorageProfile, reader: ReaderProfile, workers: int, tasks: int) -> float:
    """Bytes per second the workers move to or from ``storage``, ``tasks`` at a time each."""
    streams = storage.stream_bandwidth_Bps * _per_worker_in_flight(storage, reader, tasks)
    per_worker = min(storage.bandwidth_Bps, streams)
    if storage.kind == "object":  # each worker is a client of its own
        return workers * per_worker
    return min(storage.bandwidth_Bps, workers * per_worker)  # one shared filesystem


def _stage_estimate(
    stage: Stage,
    shape: tuple[int, ...],
    read: _Side,
    write: _Side,
    reader: ReaderProfile,
    workers: int,
    threads: int,
    readback: bool,
    records_sums: bool = False,
    marker_reads: int = 0,
) -> StageEstimate:
    """One stage's estimate; ``records_sums``: a first pass that checks by checksums in
    its markers rather than reading back; ``marker_reads``: the markers a second pass
    reads to compare them."""
    tasks = stage.tasks
    per_worker = max(1, min(stage.parallel, threads))
    slots = max(1, min(workers * per_worker, tasks))
    active = max(1, math.ceil(slots / per_worker))  # workers with a task to run
    per_worker = min(per_worker, slots)
    chunks_read = _blocks(shape, stage.read_chunks) if tasks else 0
    objects = _blocks(shape, stage.write_unit) if tasks else 0
    inner = _blocks(shape, stage.write_chunks) if tasks else 0
    sharded = tuple(stage.write_unit) != tuple(stage.write_chunks)
    pre_reads = objects if sharded and reader.shard_write_reads_existing else 0
    reads_back = readback and not records_sums
    checks = objects if reads_back else 0
    raw = stage.bytes_written
    read_bytes = math.ceil(stage.bytes_read / read.codec.ratio)
    written = math.ceil(raw / write.codec.ratio)
    checked = written if reads_back else 0

    codec_s = (
        stage.bytes_read / read.codec.decode_Bps
        + raw / write.codec.encode_Bps
        + (raw / write.codec.decode_Bps if reads_back else 0.0)
        + raw / _GiB * HANDLING_CPU_S_PER_GIB
    )
    chunk_s = reader.per_chunk_cpu_s * (chunks_read + inner * (2 if reads_back else 1))
    compute_s = codec_s / slots + chunk_s / active
    transfer_s = read_bytes / _bandwidth(read.storage, reader, active, per_worker) + (
        written + checked
    ) / _bandwidth(write.storage, reader, active, per_worker)
    target_requests = objects + pre_reads + checks + tasks  # the markers: one PUT a task

    def waves(requests: int, storage: StorageProfile) -> float:
        in_flight = active * _per_worker_in_flight(storage, reader, per_worker)
        return requests * storage.latency_s / in_flight

    latency_s = (
        waves(chunks_read, read.storage)
        + waves(target_requests, write.storage)
        + waves(marker_reads, write.storage)
    )
    seconds = max(compute_s, transfer_s, latency_s)

    def load(side: _Side, gets: int, puts: int) -> PrefixLoad:
        storage = side.storage
        rate = 1.0 / seconds if seconds > 0 else 0.0
        usd = (gets * storage.get_usd_per_1000 + puts * storage.put_usd_per_1000) / 1000
        return PrefixLoad(
            side.prefix, stage.name, storage.name, gets, puts, gets * rate, puts * rate,
            storage.request_limit, usd,
        )  # fmt: skip

    loads = (
        load(read, chunks_read, 0),
        load(write, pre_reads + checks, objects),
        load(_Side("markers", write.storage, write.codec), marker_reads, tasks),
    )
    return StageEstimate(
        stage.name, tasks, slots if tasks else 0, active if tasks else 0,
        chunks_read + pre_reads + checks + marker_reads,
        objects + tasks, read_bytes + checked, written, compute_s, transfer_s, latency_s, loads,
    )  # fmt: skip


def marker_reads(shape: Sequence[int], first: Sequence[int], second: Sequence[int]) -> int:
    """Markers of first-pass tasks (``first``) the second pass's tasks (``second``) read,
    summed over the second pass's tasks: each reads those its region overlaps. Overlaps
    multiply across dims, so the sum is the product of each dim's sum."""
    total = 1
    for n, a, b in zip(shape, first, second, strict=True):
        total *= sum(-(-min(start + b, n) // a) - start // a for start in range(0, n, b))
    return total


def estimate_rechunk(
    plan: RechunkPlan,
    *,
    source: StorageProfile,
    target: StorageProfile,
    source_codec: CodecProfile,
    target_codec: CodecProfile,
    intermediate_codec: CodecProfile,
    workers: int,
    threads: int,
    readback: bool,
) -> RechunkEstimate:
    """Requests, bytes, dollars and time of ``plan`` (see the module docstring).

    Parameters
    ----------
    plan
        The rechunk plan, made for ``threads`` tasks at once per worker.
    source, target
        Where the source and the target live (the intermediate array lives on
        ``target``); their latency (seconds), bandwidths (bytes per second), concurrency,
        request prices (US dollars per 1000) and per-prefix request limit. The target's
        reader gives the CPU per chunk (seconds) and the requests in flight per task.
    source_codec, target_codec, intermediate_codec
        Ratio (raw over stored bytes) and single-core encode and decode speeds (raw
        bytes per second) of each array's codec.
    workers
        Worker processes running tasks (1 for the local executor).
    threads
        Tasks each worker runs at once, at most (the stage's ``parallel`` may be fewer).
    readback
        Every object written is read back and compared (``--verify readback``).

    Returns
    -------
    RechunkEstimate

    Raises
    ------
    SpecError
        For fewer than one worker or thread.
    """
    for name, value in (("workers", workers), ("threads per worker", threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise SpecError(f"{name} {value!r} must be a whole number of at least 1.")
    src = _Side("source", source, source_codec)
    inter = _Side("intermediate", target, intermediate_codec)
    dst = _Side("target", target, target_codec)
    sides = [(src, dst)] if len(plan.stages) == 1 else [(src, inter), (inter, dst)]
    args = (target.reader, workers, threads, readback)
    if len(plan.stages) == 1 or not readback:
        stages = tuple(
            _stage_estimate(stage, plan.shape, read, write, *args)
            for stage, (read, write) in zip(plan.stages, sides, strict=True)
        )
    else:  # the first pass records checksums; the second reads them from its markers
        first, second = plan.stages
        reads = marker_reads(plan.shape, first.task_shape, second.task_shape)
        stages = (
            _stage_estimate(first, plan.shape, src, inter, *args, records_sums=True),
            _stage_estimate(second, plan.shape, inter, dst, *args, marker_reads=reads),
        )
    return RechunkEstimate(stages, workers, threads, source.name, target.name, readback)
