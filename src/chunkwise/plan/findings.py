"""A performance lint for existing Zarr arrays: findings with stable rule ids.

Pure: it takes plain facts about arrays and their store (shape, chunks, shards, object
counts, metadata state) plus a :class:`~chunkwise.model.storage.StorageProfile` and
returns :class:`Finding` values. ``chunkwise inspect`` gathers the facts; nothing here
reads a byte.

=====  =========  =============================================================
rule   severity   checks
=====  =========  =============================================================
CW101  warning    chunks far below the storage's efficient request size
CW102  warn/err   chunks (or shards) too big for memory
CW103  warn/err   too many objects for a filesystem or an object store (v3)
CW104  info/warn  coordinate arrays chunked by 1 or in tiny pieces
CW105  info-err   Zarr v2 arrays with object counts that v3 sharding would fix
CW106  warning    unconsolidated metadata on a remote store
CW107  error      stale consolidated metadata
CW108  warn/err   Dask task graphs: too many chunks for one full pass
CW109  info       very uneven chunking: a last chunk holding a sliver of the dim
=====  =========  =============================================================

OME-Zarr image pyramids have their own rules (CW201 ..., :data:`OME_RULES`), in
:mod:`chunkwise.plan.ome_lint`.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from chunkwise.cost.model import CostInputs, estimate_layout
from chunkwise.errors import SpecError
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import default_codec_profile, parse_codec
from chunkwise.model.layout import Layout, ceil_div
from chunkwise.model.storage import StorageProfile
from chunkwise.model.workload import VIEWPORT_PIXELS, Workload
from chunkwise.plan.pyramid import TOP_PIXELS
from chunkwise.units import format_bytes, format_count, format_duration, format_shape

__all__ = [
    "OME_RULES",
    "RULES",
    "SEVERITIES",
    "ArrayFacts",
    "Finding",
    "LintThresholds",
    "Severity",
    "StoreFacts",
    "at_or_above",
    "lint",
    "rechunk_command",
    "rule_name",
    "target_url",
]

Severity = Literal["info", "warning", "error"]
#: Severities from least to most severe.
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error")

#: Rule id -> short name.
RULES: dict[str, str] = {
    "CW101": "small-chunks",
    "CW102": "chunks-too-big",
    "CW103": "too-many-objects",
    "CW104": "coordinate-chunking",
    "CW105": "v2-needs-sharding",
    "CW106": "unconsolidated-remote",
    "CW107": "stale-consolidated",
    "CW108": "dask-task-graph",
    "CW109": "uneven-chunks",
}
#: Rule id -> short name, for the rules about OME-Zarr image pyramids
#: (:mod:`chunkwise.plan.ome_lint`).
OME_RULES: dict[str, str] = {
    "CW201": "ome-missing-level",
    "CW202": "ome-uneven-levels",
    "CW203": "ome-no-pyramid",
    "CW204": "ome-top-level-large",
    "CW205": "ome-tile-reads",
    "CW206": "ome-format-viewer",
    "CW207": "ome-invalid-metadata",
}


def rule_name(rule: str) -> str:
    """The short name of a rule id (``"CW101"`` -> ``"small-chunks"``), or ``""``."""
    return RULES.get(rule) or OME_RULES.get(rule, "")


MiB = 2**20


@dataclass(frozen=True)
class Finding:
    """One lint result.

    Attributes
    ----------
    rule
        Stable id, ``CW101`` ... (see :data:`RULES` and :data:`OME_RULES`).
    severity
        ``"info"``, ``"warning"`` or ``"error"``.
    path
        The array the finding is about; ``""`` for the store as a whole.
    message
        One sentence with the evidence in numbers.
    evidence
        The numbers behind the message (bytes, counts, seconds).
    fix
        What to do, ideally an exact ``chunkwise`` command.
    """

    rule: str
    severity: Severity
    path: str
    message: str
    evidence: Mapping[str, float | int | str] = field(default_factory=dict)
    fix: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON form: ``rule``, ``name``, ``severity``, ``path``, ``message``, ``evidence``, ``fix``."""
        return {
            "rule": self.rule,
            "name": rule_name(self.rule),
            "severity": self.severity,
            "path": self.path,
            "message": self.message,
            "evidence": dict(self.evidence),
            "fix": self.fix,
        }


def at_or_above(severity: str, threshold: str) -> bool:
    """``severity`` is at least as severe as ``threshold`` (``info < warning < error``)."""
    return SEVERITIES.index(severity) >= SEVERITIES.index(threshold)


@dataclass(frozen=True)
class ArrayFacts:
    """What the lint needs to know about one array (all plain values).

    Attributes
    ----------
    path
        Path inside the store (``""`` when the store is one array).
    zarr_format
        2 or 3.
    shape, chunks
        Elements per dimension of the array and of one (inner) chunk.
    shards
        Elements per dimension of one shard, or ``None``.
    itemsize
        Bytes per element.
    dims
        Dimension names when the array has them.
    codec
        The compressor as a ``chunkwise`` codec string (``"zstd:3"``), or ``None`` when
        chunkwise cannot write it.
    data_objects
        Chunk or shard objects actually stored (``None`` unless keys were listed).
    """

    path: str
    zarr_format: int
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    itemsize: int
    dims: tuple[str, ...] | None = None
    codec: str | None = None
    data_objects: int | None = None

    @property
    def name(self) -> str:
        """The last path component."""
        return self.path.rsplit("/", 1)[-1]

    @property
    def parent(self) -> str:
        """The path of the group holding the array."""
        return self.path.rpartition("/")[0]

    @property
    def nbytes(self) -> int:
        """Uncompressed bytes of the whole array."""
        return math.prod(self.shape) * self.itemsize

    @property
    def chunk_bytes(self) -> int:
        """Uncompressed bytes of one (inner) chunk."""
        return math.prod(self.chunks) * self.itemsize

    @property
    def write_unit(self) -> tuple[int, ...]:
        """Shape of one stored object: the shard, else the chunk."""
        return self.shards if self.shards is not None else self.chunks

    @property
    def object_bytes(self) -> int:
        """Uncompressed bytes of one stored object."""
        return math.prod(self.write_unit) * self.itemsize

    @property
    def nchunks(self) -> int:
        """(Inner) chunks in the grid."""
        return math.prod(ceil_div(n, c) for n, c in zip(self.shape, self.chunks, strict=True))

    @property
    def grid_objects(self) -> int:
        """Stored objects when every chunk (or shard) is written."""
        return math.prod(ceil_div(n, c) for n, c in zip(self.shape, self.write_unit, strict=True))


@dataclass(frozen=True)
class StoreFacts:
    """What the lint needs to know about the store.

    Attributes
    ----------
    url
        The store as the user named it (used in the suggested commands).
    remote
        Read over a network (``s3://``, ``https://``, ...).
    is_group
        The root is a group.
    members
        Arrays and groups below the root.
    consolidated
        The root carries consolidated metadata.
    stale
        How the consolidated metadata disagrees with the members' own (one phrase each).
    dataset
        The root is a group of arrays with named dims (as xarray writes a Dataset): a fix
        rewrites the whole group, which stays a dataset, never one member into a bare array.
    """

    url: str
    remote: bool
    is_group: bool
    members: int
    consolidated: bool
    stale: tuple[str, ...] = ()
    dataset: bool = False


@dataclass(frozen=True)
class LintThresholds:
    """Where the rules fire. The defaults are the lint's definition.

    Attributes
    ----------
    small_slowdown
        CW101 fires when a whole read of the array is predicted this many times slower
        than with its chunks grown (same orientation) to the fastest predicted size.
    chunk_warn_bytes, chunk_error_bytes
        CW102: decoded chunk size a reader must hold at once (2 GiB is also Blosc's
        buffer limit).
    shard_warn_bytes
        CW102: a shard that a writer assembles in memory.
    objects_filesystem, objects_object_store
        CW103/CW105 warn above these object counts per array (ten times more: error).
    v2_objects_info
        CW105 notes v2 arrays with more objects than this.
    coordinate_max_bytes
        CW104: a chunked 1-D coordinate this small belongs in one chunk.
    dask_tasks_warn, dask_tasks_error
        CW108: Dask tasks of one full pass (~1 ms of scheduler time each).
    sliver_fraction
        CW109: a last chunk holding less than this fraction of a full chunk.
    first_view_pixels
        CW203/CW204: the coarsest level of an OME-Zarr pyramid may be this many pixels
        across each of its last two space axes (a viewer's first view of the whole image:
        four times the top level ``convert --ome-zarr`` builds).
    viewport_pixels
        CW205: a viewer's viewport, pixels across (of one plane of the last two space axes).
    viewport_read_ratio
        CW205: fires when the chunks one viewport touches hold more than this many times
        the viewport's own bytes (uncompressed).
    """

    small_slowdown: float = 4.0
    chunk_warn_bytes: int = 256 * MiB
    chunk_error_bytes: int = 2048 * MiB
    shard_warn_bytes: int = 2048 * MiB
    objects_filesystem: int = 100_000
    objects_object_store: int = 1_000_000
    v2_objects_info: int = 10_000
    coordinate_max_bytes: int = 64 * MiB
    dask_tasks_warn: int = 100_000
    dask_tasks_error: int = 1_000_000
    sliver_fraction: float = 0.1
    first_view_pixels: int = 4 * TOP_PIXELS
    viewport_pixels: int = VIEWPORT_PIXELS
    viewport_read_ratio: float = 8.0


#: Seconds of Dask scheduler overhead per task (the Dask docs' rule of thumb: ~1 ms).
DASK_TASK_OVERHEAD_S = 1e-3
#: The largest chunks CW101 considers growing to (bytes): beyond this a chunk is large
#: for a reader to hold (CW102 warns from 256 MiB).
_GROW_LIMIT = 64 * MiB
_ITEMSIZE_DTYPES = {1: "uint8", 2: "uint16", 4: "float32", 8: "float64", 16: "complex128"}
#: Shard size suggested when a fix adds shards, bytes.
_SHARD_TARGET = 64 * MiB


def _csv(values: Sequence[int]) -> str:
    return ",".join(map(str, values))


def _source(store: StoreFacts, array: ArrayFacts) -> str:
    if store.dataset:
        return store.url
    return f"{store.url}#{array.path}" if array.path else store.url


def target_url(url: str, path: str, label: str) -> str:
    """A new store next to ``url`` for the rechunked array: ``data.zarr`` + ``"tomo"`` +
    ``"roi"`` -> ``data-tomo-roi.zarr`` (a directory store also for a ``.zip``, which
    ``rechunk`` cannot write)."""
    base = url.rstrip("/")
    stem, dot, ext = base.rpartition(".")
    if not dot or "/" in ext:
        stem, ext = base, "zarr"
    elif ext.lower() == "zip":
        ext = "zarr"
    name = f"-{path.replace('/', '-')}" if path else ""
    return f"{stem}{name}-{label}.{ext}"


def _target(store: StoreFacts, array: ArrayFacts, label: str) -> str:
    return target_url(store.url, "" if store.dataset else array.path, label)


def workload_command(
    source: str, target: str, *, workload: str, storage: str | None, zarr_format: int
) -> str:
    """The ``chunkwise rechunk`` command that lays out every variable of a dataset for a
    workload (``advise`` per variable, as ``convert --workload`` does)."""
    parts = ["chunkwise", "rechunk", source, target, "--workload", workload]
    if storage is not None:
        parts += ["--storage", storage]
    parts += ["--zarr-format", str(zarr_format)]
    return " ".join(shlex.quote(p) for p in parts)


def rechunk_command(
    source: str,
    target: str,
    *,
    chunks: Sequence[int],
    shards: Sequence[int] | None,
    codec: str | None,
    zarr_format: int,
) -> str:
    """The ``chunkwise rechunk`` command line that writes this layout."""
    parts = ["chunkwise", "rechunk", source, target, "--chunks", _csv(chunks)]
    if shards is not None:
        parts += ["--shards", _csv(shards)]
    if codec is not None:
        parts += ["--codec", codec]
    parts += ["--zarr-format", str(zarr_format)]
    return " ".join(shlex.quote(p) for p in parts)


def grow_chunks(
    shape: Sequence[int], chunks: Sequence[int], itemsize: int, target_bytes: int
) -> tuple[int, ...]:
    """Double the smallest chunk dims (never past the array) until a chunk reaches
    ``target_bytes``: near-cubic growth that keeps the chunk's orientation."""
    out = [min(c, n) for c, n in zip(chunks, shape, strict=True)]
    while math.prod(out) * itemsize < target_bytes:
        growable = [i for i, (c, n) in enumerate(zip(out, shape, strict=True)) if c < n]
        if not growable:
            break
        i = min(growable, key=lambda j: out[j])
        out[i] = min(out[i] * 2, shape[i])
    return tuple(out)


def grow_shards(
    shape: Sequence[int], chunks: Sequence[int], itemsize: int, target_bytes: int
) -> tuple[int, ...]:
    """A shard of whole chunks (a multiple of ``chunks`` per dim, at most the array
    rounded up to the chunk) of about ``target_bytes``."""
    out = list(chunks)
    limit = [ceil_div(n, c) * c for n, c in zip(shape, chunks, strict=True)]
    while math.prod(out) * itemsize * 2 <= target_bytes:
        growable = [i for i in range(len(out)) if out[i] * 2 <= limit[i]]
        if not growable:
            break
        i = min(growable, key=lambda j: out[j])
        out[i] *= 2
    return tuple(out)


def _objects(array: ArrayFacts) -> int:
    return array.data_objects if array.data_objects is not None else array.grid_objects


def _object_limit(storage: StorageProfile, t: LintThresholds) -> int:
    return t.objects_filesystem if storage.kind == "filesystem" else t.objects_object_store


def _scan_cost(
    array: ArrayFacts, storage: StorageProfile, chunks: Sequence[int], shards: Sequence[int] | None
) -> tuple[float, float]:
    """Predicted seconds and requests of one whole read of ``array`` laid out in
    ``chunks`` (and ``shards``), through the storage's reader."""
    dtype = _ITEMSIZE_DTYPES.get(array.itemsize, f"V{array.itemsize}")
    spec = ArraySpec.create(list(array.shape), dtype)
    codec = parse_codec(array.codec)
    layout = Layout.create(
        spec,
        list(chunks),
        shards=None if shards is None else list(shards),
        codec=codec,
        zarr_format=3 if shards is not None else array.zarr_format,
    )
    scan = Workload.from_spec([{"op": "scan"}], spec)
    cost = estimate_layout(
        layout, scan, CostInputs(spec, storage, codec, default_codec_profile(codec))
    )
    (op,) = cost.ops.values()
    return op["seconds"], op["requests"]


def _grown_layouts(array: ArrayFacts) -> list[tuple[int, ...]]:
    """Chunks grown from the array's own (same orientation) to 4, 16, ... times their
    size, up to 64 MiB, within shards when sharded."""
    limit = list(array.shards or array.shape)
    out: list[tuple[int, ...]] = []
    target = array.chunk_bytes * 4
    while target <= _GROW_LIMIT:
        grown = grow_chunks(limit, array.chunks, array.itemsize, target)
        fits = array.shards is None or all(s % c == 0 for s, c in zip(limit, grown, strict=True))
        if grown != tuple(array.chunks) and fits and grown not in out:
            out.append(grown)
        if math.prod(grown) >= math.prod(limit):
            break
        target *= 4
    return out


def _small_chunks(
    array: ArrayFacts, store: StoreFacts, storage: StorageProfile, t: LintThresholds
) -> Finding | None:
    if array.nchunks < 2:
        return None
    try:
        now_s, requests = _scan_cost(array, storage, array.chunks, array.shards)
        options = [
            (_scan_cost(array, storage, grown, array.shards)[0], grown)
            for grown in _grown_layouts(array)
        ]
    except SpecError:  # a dtype or shape the model cannot price: no judgement
        return None
    if not options:
        return None
    best_s, grown = min(options)
    if now_s < t.small_slowdown * best_s:
        return None
    command = rechunk_command(
        _source(store, array), _target(store, array, "rechunked"), chunks=grown,
        shards=array.shards, codec=array.codec, zarr_format=array.zarr_format,
    )  # fmt: skip
    sharded = array.shards is not None
    reader = storage.reader.name
    return Finding(
        "CW101",
        "info" if sharded else "warning",
        array.path,
        f"chunks {format_shape(array.chunks)} hold {format_bytes(array.chunk_bytes)}"
        + (" inside shards" if sharded else "")
        + f": a full read takes {format_count(requests)} requests and is predicted at "
        f"{format_duration(now_s)} on {storage.name} through {reader}, {now_s / best_s:.3g}x "
        f"the {format_duration(best_s)} of chunks {format_shape(grown)}.",
        {
            "chunk_bytes": array.chunk_bytes,
            "requests_per_full_read": requests,
            "full_read_s": now_s,
            "grown_chunks": ",".join(map(str, grown)),
            "grown_full_read_s": best_s,
            "reader": reader,
        },
        f"rechunk to bigger chunks, e.g. {command}; or let advise choose for how the data "
        f"is read: chunkwise inspect {shlex.quote(store.url)} --workload <preset> "
        f"--storage {storage.name}",
    )


def _big_chunks(array: ArrayFacts, store: StoreFacts, t: LintThresholds) -> Finding | None:
    chunk, shard = array.chunk_bytes, array.object_bytes
    if chunk >= t.chunk_warn_bytes:
        severity: Severity = "error" if chunk >= t.chunk_error_bytes else "warning"
        what = f"chunks {format_shape(array.chunks)} decode to {format_bytes(chunk)} each"
    elif array.shards is not None and shard >= t.shard_warn_bytes:
        severity = "warning"
        what = f"shards {format_shape(array.write_unit)} are {format_bytes(shard)} each, all held by a writer"
    else:
        return None
    if chunk >= t.chunk_warn_bytes:
        chunks = _shrink(array.chunks, array.itemsize, max(t.chunk_warn_bytes // 16, 1))
        shards = None
        advice = "use smaller chunks"
    else:
        chunks = array.chunks
        grown = grow_shards(array.shape, chunks, array.itemsize, _SHARD_TARGET)
        shards = grown if grown != chunks else None
        advice = "keep the chunks in smaller shards" if shards else "keep the chunks, unsharded"
    command = rechunk_command(
        _source(store, array), _target(store, array, "rechunked"), chunks=chunks,
        shards=shards, codec=array.codec, zarr_format=array.zarr_format,
    )  # fmt: skip
    return Finding(
        "CW102",
        severity,
        array.path,
        f"{what}: every reader (and every Dask task) holds that much memory at once, "
        f"several copies while decoding"
        + (", and Blosc cannot compress buffers over 2 GiB" if chunk >= t.chunk_error_bytes else "")
        + ".",
        {"chunk_bytes": chunk, "object_bytes": shard},
        f"{advice}, e.g. {command}",
    )


def _shrink(chunks: Sequence[int], itemsize: int, target_bytes: int) -> tuple[int, ...]:
    out = list(chunks)
    while math.prod(out) * itemsize > target_bytes and max(out) > 1:
        i = max(range(len(out)), key=lambda j: out[j])
        out[i] = ceil_div(out[i], 2)
    return tuple(out)


def _many_objects(
    array: ArrayFacts, store: StoreFacts, storage: StorageProfile, t: LintThresholds
) -> Finding | None:
    objects = _objects(array)
    limit = _object_limit(storage, t)
    if array.zarr_format == 2:
        if objects <= t.v2_objects_info:
            return None
        severity: Severity = (
            "error" if objects > 10 * limit else "warning" if objects > limit else "info"
        )
        rule, verb = "CW105", "Zarr v2 has no sharding: "
    else:
        if objects <= limit:
            return None
        severity = "error" if objects > 10 * limit else "warning"
        rule, verb = "CW103", ""
    shards = grow_shards(array.shape, array.chunks, array.itemsize, _SHARD_TARGET)
    after = math.prod(ceil_div(n, s) for n, s in zip(array.shape, shards, strict=True))
    kind = "filesystem" if storage.kind == "filesystem" else "object store"
    command = rechunk_command(
        _source(store, array), _target(store, array, "sharded"), chunks=array.chunks,
        shards=shards, codec=array.codec, zarr_format=3,
    )  # fmt: skip
    counted = "stored" if array.data_objects is not None else "in its grid"
    return Finding(
        rule,
        severity,
        array.path,
        f"{verb}{format_count(objects)} objects {counted} ({format_bytes(array.object_bytes)} "
        + (
            f"each), more than {'a' if kind == 'filesystem' else 'an'} {kind} ({storage.name}) "
            f"handles well ({format_count(limit)}): "
            if objects > limit
            else "each): "
        )
        + "every copy, listing and delete pays per object.",
        {"objects": objects, "limit": limit, "objects_with_shards": after},
        f"keep the chunks and pack them into v3 shards {format_shape(shards)} "
        f"({format_count(after)} objects): {command}",
    )


def _coordinates(
    arrays: Sequence[ArrayFacts], store: StoreFacts, t: LintThresholds
) -> list[Finding]:
    dims_by_group: dict[str, set[str]] = {}
    for a in arrays:
        if a.dims is not None and len(a.shape) > 1:
            dims_by_group.setdefault(a.parent, set()).update(a.dims)
    out = []
    for a in arrays:
        if len(a.shape) != 1 or a.nchunks < 2 or a.nbytes > t.coordinate_max_bytes:
            continue
        if a.name not in dims_by_group.get(a.parent, set()) and a.dims != (a.name,):
            continue
        severity: Severity = "warning" if a.chunks[0] == 1 or a.nchunks > 100 else "info"
        command = rechunk_command(
            _source(store, a), _target(store, a, "one-chunk"), chunks=a.shape, shards=None,
            codec=a.codec, zarr_format=a.zarr_format,
        )  # fmt: skip
        out.append(
            Finding(
                "CW104",
                severity,
                a.path,
                f"coordinate {a.name!r} ({format_count(a.shape[0])} values, "
                f"{format_bytes(a.nbytes)}) is split into {format_count(a.nchunks)} chunks of "
                f"{a.chunks[0]}: xarray reads it whole when opening, one request per chunk.",
                {"nchunks": a.nchunks, "chunk": a.chunks[0], "nbytes": a.nbytes},
                f"store it as one chunk: {command}",
            )
        )
    return out


def _dask(array: ArrayFacts, t: LintThresholds) -> Finding | None:
    tasks = array.grid_objects
    if tasks <= t.dask_tasks_warn:
        return None
    seconds = tasks * DASK_TASK_OVERHEAD_S
    severity: Severity = "error" if tasks > t.dask_tasks_error else "warning"
    return Finding(
        "CW108",
        severity,
        array.path,
        f"Dask (and xarray with chunks={{}}) makes one task per "
        f"{'shard' if array.shards is not None else 'chunk'}: {format_count(tasks)} tasks per "
        f"full pass, about {format_duration(seconds)} of scheduler overhead before any data moves.",
        {"tasks": tasks, "scheduler_s": seconds},
        "open it with bigger Dask chunks (a multiple of the stored chunks, e.g. "
        "xr.open_zarr(url, chunks={...}) of ~100 MiB each) or rechunk to bigger chunks.",
    )


def _uneven(array: ArrayFacts, t: LintThresholds) -> Finding | None:
    for n, c, i in zip(array.shape, array.chunks, range(len(array.shape)), strict=True):
        rest = n % c
        if n > c and 0 < rest < c * t.sliver_fraction:
            dim = array.dims[i] if array.dims else f"dim {i}"
            even = ceil_div(n, ceil_div(n, c))
            return Finding(
                "CW109",
                "info",
                array.path,
                f"along {dim}, {n} is split into chunks of {c}, leaving a last chunk of {rest}: "
                "a request and a Dask task for a sliver, and chunks that do not line up with "
                "even splits.",
                {"dim": dim, "size": n, "chunk": c, "last_chunk": rest},
                f"a chunk of {even} along {dim} splits it into {ceil_div(n, even)} chunks of "
                "(nearly) equal size.",
            )
    return None


def _store_findings(store: StoreFacts) -> list[Finding]:
    out = []
    fix_consolidate = (
        f"python -c \"import zarr; zarr.consolidate_metadata('{store.url}')\" "
        "(with storage_options for remote stores)"
    )
    if store.remote and store.is_group and store.members > 0 and not store.consolidated:
        out.append(
            Finding(
                "CW106",
                "warning",
                "",
                f"the group has {format_count(store.members)} "
                f"member{'s' * (store.members != 1)} and no consolidated "
                "metadata: opening it remotely costs a listing per group and a request per "
                "member instead of one.",
                {"members": store.members},
                f"consolidate the metadata once: {fix_consolidate}",
            )
        )
    if store.stale:
        shown = "; ".join(store.stale[:3]) + ("; ..." if len(store.stale) > 3 else "")
        out.append(
            Finding(
                "CW107",
                "error",
                "",
                f"consolidated metadata is stale ({len(store.stale)} "
                f"difference{'s' if len(store.stale) != 1 else ''}: {shown}): readers that "
                "trust it see the wrong arrays.",
                {"differences": len(store.stale)},
                f"consolidate the metadata again: {fix_consolidate}",
            )
        )
    return out


def lint(
    arrays: Sequence[ArrayFacts],
    store: StoreFacts,
    storage: StorageProfile,
    thresholds: LintThresholds,
) -> tuple[Finding, ...]:
    """Run every rule.

    Parameters
    ----------
    arrays
        Facts of every array in the store.
    store
        Facts of the store (remote or not, consolidated metadata and its staleness).
    storage
        The storage the arrays are read from (its kind, latency, efficient object sizes).
    thresholds
        Where the rules fire.

    Returns
    -------
    tuple of Finding
        Most severe first, then by rule and path.
    """
    found: list[Finding] = list(_store_findings(store))
    coordinates = list(_coordinates(arrays, store, thresholds))
    found.extend(coordinates)
    # A coordinate in too small chunks has its own rule (CW104) and fix: say it once.
    in_cw104 = {f.path for f in coordinates}
    for array in arrays:
        for result in (
            None if array.path in in_cw104 else _small_chunks(array, store, storage, thresholds),
            _big_chunks(array, store, thresholds),
            _many_objects(array, store, storage, thresholds),
            _dask(array, thresholds),
            _uneven(array, thresholds),
        ):
            if result is not None:
                found.append(result)
    return tuple(sorted(found, key=lambda f: (-SEVERITIES.index(f.severity), f.rule, f.path)))
