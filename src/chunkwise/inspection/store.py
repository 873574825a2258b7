"""Look at an existing Zarr store: its tree, every array's layout, and what the layout costs.

:func:`inspect_store` reads metadata documents only, unless ``complete=True``:

* a root with consolidated metadata is read from it, and each member's own metadata is
  fetched (one GET per member; three in v2: ``.zarray``, ``.zgroup``, ``.zattrs``) to
  tell whether the consolidated copy is stale; nothing is listed;
* a group without consolidated metadata is walked with one delimited listing per group
  (``list_dir``), never inside an array;
* ``complete=True`` lists every key once, with sizes (one paginated listing on S3), for
  the objects, stored bytes, initialized chunks and compression ratio of each array, and
  the members the consolidated metadata misses.

A group whose attributes hold OME-Zarr ``multiscales`` is an image: its axes name its
levels' dims (NGFF 0.4 arrays on Zarr v2 have no names of their own), and
:func:`chunkwise.plan.ome_lint.lint_ome` lints its pyramid. ome-zarr-models, when
installed, checks its metadata (no I/O: the attributes are already read).

The findings come from :func:`chunkwise.plan.findings.lint`, which is pure; with a
workload the current layout is priced with the cost model and compared with ``advise``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import warnings
import zipfile
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from zarr.abc.store import Store

from chunkwise.errors import ChunkwiseError, SpecError, StoreError
from chunkwise.io.stores import _fsspec_store, close_sessions, list_sizes
from chunkwise.model.layout import Layout
from chunkwise.model.ome import OmeImage, read_ome
from chunkwise.model.storage import SCHEME_STORAGE, STORAGE_PRESETS, StorageProfile
from chunkwise.plan.advice import Adviser
from chunkwise.plan.findings import (
    SEVERITIES,
    ArrayFacts,
    Finding,
    LintThresholds,
    StoreFacts,
    at_or_above,
    lint,
    rechunk_command,
    target_url,
    workload_command,
)
from chunkwise.plan.ome_lint import OmeFacts, OmeLevel, drop_viewer_conflicts, lint_ome
from chunkwise.units import (
    compare_speed,
    format_bytes,
    format_count,
    format_duration,
    format_shape,
    html_lines,
)

__all__ = [
    "ArrayReport",
    "Comparison",
    "GroupReport",
    "ImageReport",
    "InspectReport",
    "LevelReport",
    "OpComparison",
    "inspect_store",
]

T = TypeVar("T")
#: botocore settings for reading metadata unless the user gives their own: small GETs, so a
#: dead endpoint is reported in seconds (one retry).
S3_METADATA_CONFIG = {"connect_timeout": 3, "read_timeout": 30, "retries": {"max_attempts": 2}}
_META_KEYS = ("zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata")


@dataclass(frozen=True)
class GroupReport:
    """A group of the tree: its path (``""`` for the root), format and attribute count."""

    path: str
    zarr_format: int
    attributes: int


@dataclass(frozen=True)
class ArrayReport:
    """One array as stored.

    Attributes
    ----------
    path
        Path inside the store (``""`` when the store is one array).
    zarr_format
        2 or 3.
    shape, dtype, dims
        Elements per dimension, the NumPy dtype string, the dimension names (v3
        ``dimension_names`` or xarray's ``_ARRAY_DIMENSIONS``) or ``None``.
    chunks
        Elements per dimension of one chunk (the inner chunk of a sharded array).
    shards
        Elements per dimension of one shard, or ``None``.
    codecs
        The codec pipeline for people, e.g. ``"bytes > zstd(level=3)"``.
    codec
        The compressor as a ``chunkwise`` codec string, or ``None`` when chunkwise cannot
        write it (other codecs, filters).
    itemsize
        Bytes per element (of the in-memory type for variable-length strings).
    numeric
        Booleans, integers, floats or complex numbers: the arrays ``advise`` plans for.
    chunk_bytes, object_bytes
        Uncompressed bytes of one chunk and of one stored object (shard or chunk).
    nchunks
        Chunks in the grid (inner chunks when sharded; zarr's ``Array.nchunks``).
    grid_objects
        Chunk or shard objects when every one is written.
    nchunks_initialized
        Chunks with data stored (zarr's ``nchunks_initialized``); ``None`` unless complete.
    data_objects, objects
        Chunk/shard objects stored; all objects under the array's prefix (metadata too).
        ``None`` unless complete.
    stored_bytes, data_bytes
        Bytes of all those objects; of the chunk/shard objects only. ``None`` unless complete.
    findings
        The lint's findings about this array.
    """

    path: str
    zarr_format: int
    shape: tuple[int, ...]
    dtype: str
    dims: tuple[str, ...] | None
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    codecs: str
    codec: str | None
    itemsize: int
    numeric: bool
    chunk_bytes: int
    object_bytes: int
    nchunks: int
    grid_objects: int
    nchunks_initialized: int | None = None
    data_objects: int | None = None
    objects: int | None = None
    stored_bytes: int | None = None
    data_bytes: int | None = None
    findings: tuple[Finding, ...] = ()

    @property
    def ratio(self) -> float | None:
        """Compression ratio of the stored chunks (raw bytes / stored bytes), if known."""
        if not self.data_objects or not self.data_bytes:
            return None
        return self.data_objects * self.object_bytes / self.data_bytes

    def to_dict(self) -> dict[str, Any]:
        """JSON form (one entry of ``arrays`` in ``inspect --json``)."""
        return {
            "path": self.path,
            "zarr_format": self.zarr_format,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "dims": list(self.dims) if self.dims is not None else None,
            "chunks": list(self.chunks),
            "shards": list(self.shards) if self.shards is not None else None,
            "codecs": self.codecs,
            "codec": self.codec,
            "chunk_bytes": self.chunk_bytes,
            "object_bytes": self.object_bytes,
            "nchunks": self.nchunks,
            "grid_objects": self.grid_objects,
            "nchunks_initialized": self.nchunks_initialized,
            "data_objects": self.data_objects,
            "objects": self.objects,
            "stored_bytes": self.stored_bytes,
            "compression_ratio": self.ratio,
            "findings": [f.to_dict() for f in self.findings],
        }

    def lines(self) -> list[str]:
        """The array's part of the human report."""
        name = self.path or "(array)"
        dims = f" ({', '.join(self.dims)})" if self.dims else ""
        out = [
            f"{name}: v{self.zarr_format} {self.dtype} {format_shape(self.shape, empty='scalar')}{dims}"
        ]
        layout = f"chunks {format_shape(self.chunks, empty='scalar')} ({format_bytes(self.chunk_bytes)} raw)"
        if self.shards is not None:
            layout += f" in shards {format_shape(self.shards, empty='scalar')} ({format_bytes(self.object_bytes)} raw)"
        out.append(f"  {layout}; codecs {self.codecs}")
        grid = f"  {_count(self.nchunks, 'chunk')}"
        if self.shards is not None:
            grid += f" in {_count(self.grid_objects, 'shard')}"
        if self.nchunks_initialized is not None:
            grid += f", {format_count(self.nchunks_initialized)} initialized"
        out.append(grid)
        if self.objects is not None and self.stored_bytes is not None:
            stored = f"  {_count(self.objects, 'object')}, {format_bytes(self.stored_bytes)} stored"
            if self.ratio is not None:
                stored += f", compression ratio {self.ratio:.3g}"
            out.append(stored)
        return out


def _numbers(values: Sequence[float] | None) -> str:
    return "x".join(f"{v:g}" for v in values) if values else ""


@dataclass(frozen=True)
class LevelReport:
    """One level of an OME-Zarr image.

    Attributes
    ----------
    path
        The dataset path as the metadata lists it (relative to the image group).
    array
        The level's path in the store.
    shape, chunks
        Elements per dimension of the level's array and of one (inner) chunk; ``None``
        when the store has no array there.
    scale, translation
        The level's coordinate transformations (units of the axes per element, and the
        offset of its first element in those units), or ``None``.
    """

    path: str
    array: str
    shape: tuple[int, ...] | None
    chunks: tuple[int, ...] | None
    scale: tuple[float, ...] | None
    translation: tuple[float, ...] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON form (one entry of an image's ``levels``)."""
        return {
            "path": self.path,
            "array": self.array,
            "exists": self.shape is not None,
            "shape": list(self.shape) if self.shape is not None else None,
            "chunks": list(self.chunks) if self.chunks is not None else None,
            "scale": list(self.scale) if self.scale is not None else None,
            "translation": list(self.translation) if self.translation is not None else None,
        }

    def line(self) -> str:
        """The level's line of the human report."""
        if self.shape is None:
            return f"  level {self.path}: MISSING (no array at {self.array!r})"
        scale = f", scale {_numbers(self.scale)}" if self.scale else ""
        return f"  level {self.path}: {format_shape(self.shape, empty='scalar')}{scale}"


@dataclass(frozen=True)
class ImageReport:
    """An OME-Zarr image: a group whose attributes hold NGFF ``multiscales``.

    Attributes
    ----------
    path
        The image group's path (``""`` for the root).
    zarr_format
        The group's Zarr format.
    version
        NGFF version (``"0.4"``, ``"0.5"``; ``""`` when the metadata does not say).
    name
        The image's name, or ``""``.
    labels
        It is a label image (``image-label`` metadata).
    axes
        ``(name, type, unit)`` per axis; type and unit are ``""`` when not given.
    levels
        The levels as listed, finest first in a well-formed image.
    findings
        The OME-Zarr lint's findings about the image (rules CW201 ...).
    """

    path: str
    zarr_format: int
    version: str
    name: str
    labels: bool
    axes: tuple[tuple[str, str, str], ...]
    levels: tuple[LevelReport, ...]
    findings: tuple[Finding, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form (one entry of ``images`` in ``inspect --json``)."""
        return {
            "path": self.path,
            "zarr_format": self.zarr_format,
            "ngff_version": self.version,
            "name": self.name,
            "labels": self.labels,
            "axes": [{"name": n, "type": t, "unit": u} for n, t, u in self.axes],
            "levels": [level.to_dict() for level in self.levels],
            "findings": [f.to_dict() for f in self.findings],
        }

    def lines(self) -> list[str]:
        """The image's part of the human report."""
        kind = "OME-Zarr label image" if self.labels else "OME-Zarr image"
        name = f" {self.name!r}" if self.name else ""
        where = f" at {self.path}/" if self.path else ""
        version = f"NGFF {self.version}" if self.version else "NGFF version not given"
        axes = ", ".join(
            f"{n} ({', '.join(p for p in (t, u) if p)})" if t or u else n for n, t, u in self.axes
        )
        out = [
            f"{kind}{name}{where} ({version}, Zarr v{self.zarr_format}): axes {axes or 'not given'}"
        ]
        out += [level.line() for level in self.levels]
        return out


@dataclass(frozen=True)
class OpComparison:
    """One operation's predicted seconds in the current and the best layout."""

    name: str
    current_s: float
    best_s: float


@dataclass(frozen=True)
class Comparison:
    """The current layout of an array against ``advise``'s best for a workload.

    Attributes
    ----------
    path
        The array.
    workload, storage
        The workload (preset name or file) and the storage profile's name.
    current, best
        Layout labels (``v3 chunks 16x16x16, zstd:3``).
    current_s, best_s
        Predicted seconds per operation, weighted over the workload.
    ops
        Per operation.
    command
        The ``chunkwise rechunk`` command that writes the best layout; ``""`` when the
        data should stay as it is (it has that layout, or the best is predicted less
        than :data:`MIN_MOVE_SPEEDUP` times faster; ``note`` says which).
    best_layout
        The best layout as in ``advise --json`` (``zarr_format``, ``chunks``, ``shards``,
        ``codec``, ...).
    note
        Caveats of the comparison (e.g. a codec chunkwise cannot model), or ``""``.
    """

    path: str
    workload: str
    storage: str
    current: str
    best: str
    current_s: float
    best_s: float
    ops: tuple[OpComparison, ...]
    command: str
    best_layout: Mapping[str, Any]
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "path": self.path,
            "workload": self.workload,
            "storage": self.storage,
            "current": {"layout": self.current, "weighted_s": self.current_s},
            "best": {"layout": self.best, "weighted_s": self.best_s, **self.best_layout},
            "speedup": self.current_s / self.best_s if self.best_s > 0 else None,
            "ops": [
                {"name": o.name, "current_s": o.current_s, "best_s": o.best_s} for o in self.ops
            ],
            "command": self.command,
            "note": self.note,
        }

    def lines(self) -> list[str]:
        """The comparison's part of the human report."""
        name = self.path or "(array)"
        out = [f"{name} for workload {self.workload} on {self.storage}:"]
        out.append(f"  current: {self.current}: {format_duration(self.current_s)} per operation")
        speed = compare_speed(self.best_s, self.current_s)
        out.append(f"  best:    {self.best}: {format_duration(self.best_s)} ({speed} current)")
        for op in self.ops:
            ratio = op.current_s / op.best_s if op.best_s > 0 else math.inf
            out.append(
                f"    {op.name}: current {format_duration(op.current_s)}; best "
                f"{format_duration(op.best_s)} ({ratio:.3g}x)"
            )
        if self.note:
            out.append(f"  note: {self.note}")
        if self.command:
            out.append(f"  move the data: {self.command}")
        return out


@dataclass(frozen=True)
class InspectReport:
    """What ``chunkwise inspect`` found. ``repr`` is the human report; ``to_json`` for machines.

    Attributes
    ----------
    url
        The store as given.
    kind
        ``"directory"``, ``"zip"``, ``"s3"``, ``"http"``, ... or ``"store"`` for a store object.
    storage
        The storage profile the findings and predictions assume.
    complete
        Keys were listed (objects, stored bytes, initialized chunks are known).
    root
        ``"group"`` or ``"array"``.
    zarr_format
        The root's format.
    consolidated
        The root carries consolidated metadata.
    stale
        How consolidated metadata disagrees with the members' own, one phrase each.
    groups, arrays
        The tree, sorted by path.
    findings
        Findings about the store as a whole (metadata); array findings are in ``arrays``,
        OME-Zarr image findings in ``images``.
    comparisons
        With a workload: each data array's current layout against ``advise``'s best.
    workload
        The workload asked for, or ``None``.
    images
        The OME-Zarr images (groups with NGFF ``multiscales``), sorted by path.
    viewer
        The viewer named for the images (``--viewer``), or ``None``.
    """

    url: str
    kind: str
    storage: StorageProfile
    complete: bool
    root: str
    zarr_format: int
    consolidated: bool
    stale: tuple[str, ...]
    groups: tuple[GroupReport, ...]
    arrays: tuple[ArrayReport, ...]
    findings: tuple[Finding, ...] = ()
    comparisons: tuple[Comparison, ...] = ()
    workload: str | None = None
    images: tuple[ImageReport, ...] = ()
    viewer: str | None = None

    @property
    def all_findings(self) -> tuple[Finding, ...]:
        """Store findings, every array's and every image's, most severe first."""
        found = list(self.findings) + [f for a in self.arrays for f in a.findings]
        found += [f for image in self.images for f in image.findings]
        return tuple(sorted(found, key=lambda f: (-SEVERITIES.index(f.severity), f.rule, f.path)))

    def fails(self, severity: str) -> bool:
        """Any finding at or above ``severity`` (``"info"``, ``"warning"``, ``"error"``)."""
        return any(at_or_above(f.severity, severity) for f in self.all_findings)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready document (``chunkwise inspect --json``)."""
        return {
            "url": self.url,
            "kind": self.kind,
            "storage": self.storage.name,
            "complete": self.complete,
            "root": self.root,
            "zarr_format": self.zarr_format,
            "metadata": {"consolidated": self.consolidated, "stale": list(self.stale)},
            "groups": [
                {"path": g.path, "zarr_format": g.zarr_format, "attributes": g.attributes}
                for g in self.groups
            ],
            "arrays": [a.to_dict() for a in self.arrays],
            "images": [image.to_dict() for image in self.images],
            "viewer": self.viewer,
            "findings": [f.to_dict() for f in self.findings],
            "comparisons": [c.to_dict() for c in self.comparisons],
        }

    def lines(self) -> list[str]:
        """The human report, line by line."""
        what = f"Zarr v{self.zarr_format} {self.root}"
        out = [f"{what} {self.url} ({self.kind}; findings assume {self.storage.name})"]
        if self.root == "group":
            state = "consolidated" if self.consolidated else "not consolidated"
            if self.stale:
                state += f", STALE ({len(self.stale)} difference{'s' * (len(self.stale) != 1)})"
            subgroups = len(self.groups) - 1
            out.append(
                f"metadata: {state}; {_count(len(self.arrays), 'array')}"
                + (f", {_count(subgroups, 'subgroup')}" if subgroups else "")
            )
        if not self.complete:
            out.append("(metadata only; --complete lists keys for objects and stored bytes)")
        for image in self.images:
            out.extend(image.lines())
        nodes: list[tuple[str, GroupReport | ArrayReport]] = [(g.path, g) for g in self.groups]
        nodes += [(a.path, a) for a in self.arrays]
        for _, node in sorted(nodes, key=lambda item: item[0]):
            if isinstance(node, ArrayReport):
                out.extend(node.lines())
            elif node.path:
                out.append(f"{node.path}/: group (v{node.zarr_format})")
        found = self.all_findings
        if found:
            out.append(f"findings ({len(found)}):")
            for f in found:
                where = f" {f.path}" if f.path else ""
                out.append(f"  {f.severity} {f.rule}{where}: {f.message}")
                if f.fix:
                    out.append(f"    fix: {f.fix}")
        else:
            out.append("findings: none")
        if self.comparisons:
            out.append("workload:")
            for comp in self.comparisons:
                out.extend(comp.lines())
        elif self.workload is not None:
            out.append(f"workload {self.workload}: no numeric array with dimensions to price.")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return html_lines(self.lines())


def _count(n: int, noun: str) -> str:
    return f"{format_count(n)} {noun}{'' if n == 1 else 's'}"


# --- opening ---------------------------------------------------------------------------


@dataclass
class _Opened:
    store: Store
    kind: str
    remote: bool
    storage: str  # preset assumed by default
    close: bool = True


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def _open(url: str, options: Mapping[str, Any]) -> _Opened:
    from zarr.storage import FsspecStore, LocalStore, ZipStore

    scheme = _scheme(url)
    if scheme in ("", "file", "zip"):
        path = Path(url.split("://", 1)[-1] if scheme else url).expanduser()
        if not path.exists():
            raise StoreError(
                f"store {url!r} does not exist; give the path of a Zarr array or group "
                "(a directory, .zip, s3:// or https:// URL)."
            )
        if path.is_file():
            if not zipfile.is_zipfile(path):
                raise StoreError(
                    f"{url!r} is a plain file, not a Zarr store; give a Zarr directory, a .zip "
                    "of one, or an s3:// or https:// URL."
                )
            return _Opened(ZipStore(path, mode="r", read_only=True), "zip", False, "local-ssd")
        return _Opened(LocalStore(path, read_only=True), "directory", False, "local-ssd")
    if scheme == "s3":
        settings = {
            **options,
            "config_kwargs": {**S3_METADATA_CONFIG, **options.get("config_kwargs", {})},
        }
        return _Opened(_fsspec_store(url, settings), "s3", True, "s3")
    try:
        store = FsspecStore.from_url(url, storage_options=dict(options), read_only=True)
    except ImportError as exc:
        from chunkwise.errors import MissingDependencyError

        raise MissingDependencyError(
            f"reading {url!r} needs a package that is not installed ({exc})."
        ) from None
    except Exception as exc:  # unknown protocol, bad options
        raise StoreError(f"store {url!r} could not be opened ({_reason(exc)}).") from None
    return _Opened(store, scheme, True, SCHEME_STORAGE.get(scheme, "s3"))


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _close(opened: _Opened) -> None:
    if not opened.close:
        return
    close_sessions([opened.store])
    if opened.store._is_open:
        opened.store.close()


# --- reading metadata ------------------------------------------------------------------


class _Reader:
    """Reads and parses metadata documents, naming the key in every error."""

    def __init__(self, store: Store, url: str) -> None:
        self.store = store
        self.url = url

    async def json(self, key: str) -> dict[str, Any] | None:
        from zarr.core.buffer import default_buffer_prototype

        try:
            buf = await self.store.get(key, prototype=default_buffer_prototype())
        except ChunkwiseError:
            raise
        except Exception as exc:  # botocore, aiohttp and fsspec raise many types
            raise StoreError(
                f"store {self.url!r} cannot be reached ({_reason(exc)}); check the URL, "
                "--endpoint-url and the credentials."
            ) from None
        if buf is None:
            return None
        try:
            doc = json.loads(buf.to_bytes())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(
                f"metadata {key!r} in store {self.url!r} is not valid JSON ({exc}); restore it "
                "from a backup or rewrite the array's metadata."
            ) from None
        if not isinstance(doc, dict):
            raise StoreError(
                f"metadata {key!r} in store {self.url!r} holds a JSON {type(doc).__name__}, "
                "not an object; restore it from a backup or rewrite the array's metadata."
            )
        return doc

    async def node(
        self, path: str, *, root: bool = False, zarr_format: int | None = None
    ) -> tuple[Any, dict[str, Any]] | None:
        """``(metadata, raw documents)`` of the node at ``path``, or ``None`` if there is none
        (of ``zarr_format``: the members of a group have its format, as in zarr-python)."""
        if zarr_format != 2:
            v3 = await self.json(_join(path, "zarr.json"))
            if v3 is not None:
                return self.parse(_join(path, "zarr.json"), v3), {"zarr.json": v3}
            if zarr_format == 3:
                return None
        keys = [".zarray", ".zgroup", ".zattrs"] + ([".zmetadata"] if root else [])
        docs = await _all(self.json(_join(path, k)) for k in keys)
        raw = {k: d for k, d in zip(keys, docs, strict=True) if d is not None}
        for key in (".zarray", ".zgroup"):
            if key in raw:
                doc = raw[key] | {"attributes": raw.get(".zattrs", {})}
                return self.parse(_join(path, key), doc), raw
        return None

    def parse(self, key: str, doc: dict[str, Any]) -> Any:

        try:
            with warnings.catch_warnings():  # unstable dtypes etc.: inspect only reads them
                warnings.simplefilter("ignore")
                return self._parse(key, doc)
        except Exception as exc:  # zarr raises ValueError, TypeError, KeyError, its own errors
            raise StoreError(
                f"metadata {key!r} in store {self.url!r} is not valid Zarr metadata "
                f"({_reason(exc)}); restore it from a backup or rewrite the array's metadata."
            ) from None

    @staticmethod
    def _parse(key: str, doc: dict[str, Any]) -> Any:
        from zarr.core.group import GroupMetadata
        from zarr.core.metadata import ArrayV2Metadata, ArrayV3Metadata

        if key.endswith("zarr.json"):
            node_type = doc.get("node_type")
            if node_type == "array":
                return _positive_chunks(ArrayV3Metadata.from_dict(dict(doc)), doc)
            if node_type == "group":
                return GroupMetadata.from_dict(
                    {k: v for k, v in doc.items() if k != "consolidated_metadata"}
                )
            raise ValueError(f"node_type {node_type!r} is neither 'array' nor 'group'")
        if "shape" in doc:
            return _positive_chunks(ArrayV2Metadata.from_dict(dict(doc)), doc)
        return GroupMetadata.from_dict(dict(doc) | {"zarr_format": 2})


def _positive_chunks(metadata: Any, doc: dict[str, Any]) -> Any:
    """The metadata, if every chunk and shard size is positive (the grid maths divides),
    as stored in ``doc``: zarr 3.4 reads a stored size of 0 as 1 (with a warning), where
    zarr 3.1 kept the 0."""
    for name, stored in _stored_grids(metadata, doc):
        if any(isinstance(n, int) and n <= 0 for n in stored):
            raise ValueError(f"{name} {stored} has a size below 1")
    for name in ("chunks", "shards"):
        sizes = getattr(metadata, name, None)
        if sizes is not None and any(int(n) <= 0 for n in sizes):
            raise ValueError(f"{name} {list(sizes)} has a size below 1")
    return metadata


def _stored_grids(metadata: Any, doc: dict[str, Any]) -> list[tuple[str, list[Any]]]:
    """The chunk shapes written in ``doc``, named as the metadata names them: v2's
    ``chunks``; v3's chunk grid (``shards`` when sharded) and sharding's inner chunks."""
    if "chunks" in doc:  # v2
        return [("chunks", doc["chunks"])] if isinstance(doc["chunks"], list) else []
    outer = "shards" if getattr(metadata, "shards", None) is not None else "chunks"
    named: list[tuple[str, Any]] = [(outer, doc.get("chunk_grid"))]
    named += [("chunks", codec) for codec in doc.get("codecs") or []
              if isinstance(codec, dict) and codec.get("name") == "sharding_indexed"]  # fmt: skip
    found = []
    for name, part in named:
        config = part.get("configuration") if isinstance(part, dict) else None
        sizes = config.get("chunk_shape") if isinstance(config, dict) else None
        if isinstance(sizes, list):
            found.append((name, sizes))
    return found


async def _listing(url: str, awaitable: Awaitable[T]) -> T:
    """``awaitable``'s result; a failed listing (no permission, no index page) as one
    sentence."""
    try:
        return await awaitable
    except ChunkwiseError:
        raise
    except Exception as exc:  # botocore, aiohttp and fsspec raise many types
        raise StoreError(
            f"store {url!r} cannot be listed ({_reason(exc)}); check the URL and that the "
            "credentials may list it (inspect lists groups without consolidated metadata, "
            "and every key with --complete)."
        ) from None


async def _all(coroutines: Iterable[Awaitable[T]]) -> list[T]:
    """Await all, then raise the first error: no request is left running on failure."""
    results = await asyncio.gather(*coroutines, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


def _join(path: str, key: str) -> str:
    return f"{path}/{key}" if path else key


def _consolidated(raw: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]] | None:
    """Path -> metadata document (v2: ``.zarray``/``.zgroup`` plus ``attributes``)."""
    if "zarr.json" in raw:
        cons = raw["zarr.json"].get("consolidated_metadata")
        if not isinstance(cons, dict) or not isinstance(cons.get("metadata"), dict):
            return None
        return {str(k): v for k, v in cons["metadata"].items() if isinstance(v, dict)}
    zmeta = raw.get(".zmetadata")
    if zmeta is None or not isinstance(zmeta.get("metadata"), dict):
        return None
    out: dict[str, dict[str, Any]] = {}
    entries = zmeta["metadata"]
    for key, doc in entries.items():
        path, _, name = str(key).rpartition("/")
        if name in (".zarray", ".zgroup") and path and isinstance(doc, dict):
            attrs = entries.get(_join(path, ".zattrs"), {})
            out[path] = doc | {"attributes": attrs}
    return out


def _comparable(metadata: Any) -> dict[str, Any]:
    doc = dict(metadata.to_dict())
    doc.pop("consolidated_metadata", None)
    same: dict[str, Any] = json.loads(json.dumps(doc, default=str))  # tuples -> lists
    return same


def _difference(path: str, consolidated: Any, own: Any) -> str | None:
    a, b = _comparable(consolidated), _comparable(own)
    if a == b:
        return None
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    first = keys[0]
    return (
        f"{path!r} {first} is {json.dumps(a.get(first))} in the consolidated metadata but "
        f"{json.dumps(b.get(first))} in its own"
        + (f" (and {len(keys) - 1} more field{'s' * (len(keys) > 2)})" if len(keys) > 1 else "")
    )


async def _walk(reader: _Reader, path: str, zarr_format: int, found: dict[str, Any]) -> None:
    """Every member below the group at ``path``: one delimited listing per group."""
    listed = [name.rstrip("/") async for name in reader.store.list_dir(path)]
    names = sorted(name for name in listed if name not in _META_KEYS)
    children = [_join(path, name) for name in names]
    nodes = await _all(reader.node(child, zarr_format=zarr_format) for child in children)
    groups = []
    for child, node in zip(children, nodes, strict=True):
        if node is None:
            continue  # not a Zarr node: a stray folder or file
        found[child] = node[0]
        if _is_group(node[0]):
            groups.append(child)
    await _all(_walk(reader, g, zarr_format, found) for g in groups)


def _is_group(metadata: Any) -> bool:
    from zarr.core.group import GroupMetadata

    return isinstance(metadata, GroupMetadata)


# --- arrays ----------------------------------------------------------------------------


def _codec_text(codec: Mapping[str, Any]) -> str:
    name = codec.get("name") or codec.get("id") or "?"
    conf = codec.get("configuration", codec)
    items = [
        f"{k}={v}"
        for k, v in conf.items()
        if k not in ("id", "name", "typesize", "blocksize", "checksum", "endian")
    ]
    return f"{name}({', '.join(items)})" if items else str(name)


def _codecs(meta: dict[str, Any]) -> tuple[str, str | None]:
    """``(text for people, chunkwise codec string or None)``."""
    from chunkwise.model.codec import parse_codec

    if meta.get("zarr_format") == 2:
        chain = list(meta.get("filters") or [])
        compressor = meta.get("compressor")
        parts = [_codec_text(c) for c in chain] + ([_codec_text(compressor)] if compressor else [])
        text = " > ".join(parts) or "none"
        try:
            return text, None if chain else parse_codec(compressor).short
        except SpecError:
            return text, None
    codecs = list(meta.get("codecs") or [])
    if codecs and codecs[0].get("name") == "sharding_indexed":
        codecs = list(codecs[0].get("configuration", {}).get("codecs") or [])
    text = " > ".join(_codec_text(c) for c in codecs) or "none"
    try:
        return text, parse_codec(codecs).short
    except SpecError:
        return text, None


def _dims(metadata: Any, shape: tuple[int, ...]) -> tuple[str, ...] | None:
    names = getattr(metadata, "dimension_names", None)
    if names is not None and None not in names:
        return tuple(str(n) for n in names)
    legacy = dict(metadata.attributes).get("_ARRAY_DIMENSIONS")
    if isinstance(legacy, list) and len(legacy) == len(shape):
        return tuple(str(n) for n in legacy)
    return None


def _chunk_coords(key: str, metadata: Any, ndim: int) -> tuple[int, ...] | None:
    """The grid position a relative key names, or ``None`` if it is no chunk key."""
    if metadata.zarr_format == 2:
        sep, prefix = metadata.dimension_separator, ""
    else:
        enc = metadata.chunk_key_encoding
        sep = enc.separator
        prefix = "c" if enc.name == "default" else ""
    if prefix:
        if key == prefix and ndim == 0:
            return ()
        if not key.startswith(prefix + sep):
            return None
        key = key[len(prefix) + 1 :]
    parts = key.split(sep)
    if ndim == 0:
        return () if key == "0" else None
    if len(parts) != ndim or not all(p.isdigit() for p in parts):
        return None
    return tuple(int(p) for p in parts)


def _array_report(
    path: str, metadata: Any, listing: Sequence[tuple[str, int]] | None
) -> ArrayReport:
    import zarr
    from zarr.core.array import AsyncArray
    from zarr.storage import MemoryStore, StorePath

    array = zarr.Array(AsyncArray(metadata, store_path=StorePath(MemoryStore(), path)))
    shape = tuple(int(n) for n in array.shape)
    chunks = tuple(int(c) for c in array.chunks)
    shards = tuple(int(s) for s in array.shards) if array.shards is not None else None
    itemsize = array.dtype.itemsize
    unit = shards if shards is not None else chunks
    text, short = _codecs(metadata.to_dict())
    report = ArrayReport(
        path=path,
        zarr_format=int(metadata.zarr_format),
        shape=shape,
        dtype=str(array.dtype),
        dims=_dims(metadata, shape),
        chunks=chunks,
        shards=shards,
        codecs=text,
        codec=short,
        itemsize=itemsize,
        numeric=array.dtype.kind in "biufc",
        chunk_bytes=math.prod(chunks) * itemsize,
        object_bytes=math.prod(unit) * itemsize,
        nchunks=int(array.nchunks),
        grid_objects=math.prod(-(-n // u) for n, u in zip(shape, unit, strict=True)),
    )
    if listing is None:
        return report
    prefix = f"{path}/" if path else ""
    grid = [-(-n // u) for n, u in zip(shape, unit, strict=True)]
    objects = data_objects = stored = data_bytes = 0
    for key, size in listing:
        if not key.startswith(prefix):
            continue
        objects += 1
        stored += size
        coords = _chunk_coords(key[len(prefix) :], metadata, len(shape))
        if coords is not None and all(c < g for c, g in zip(coords, grid, strict=True)):
            data_objects += 1
            data_bytes += size
    per_object = math.prod(u // c for u, c in zip(unit, chunks, strict=True))
    return replace(
        report,
        nchunks_initialized=data_objects * per_object,
        data_objects=data_objects,
        objects=objects,
        stored_bytes=stored,
        data_bytes=data_bytes,
    )


def _facts(a: ArrayReport) -> ArrayFacts:
    return ArrayFacts(
        path=a.path, zarr_format=a.zarr_format, shape=a.shape, chunks=a.chunks,
        shards=a.shards, itemsize=a.itemsize, dims=a.dims, codec=a.codec,
        data_objects=a.data_objects,
    )  # fmt: skip


# --- OME-Zarr images ----------------------------------------------------------------------


@dataclass(frozen=True)
class _FoundImage:
    """A group whose attributes describe an OME-Zarr image."""

    path: str
    zarr_format: int
    image: OmeImage
    invalid: str  # what is wrong with its NGFF metadata, or ""


def _images(
    attributes: Mapping[str, Mapping[str, Any]], groups: Sequence[GroupReport]
) -> list[_FoundImage]:
    """Every group whose attributes describe an OME-Zarr image, by path."""
    formats = {g.path: g.zarr_format for g in groups}
    found = []
    for path in sorted(attributes):
        image = read_ome(attributes[path])
        if image is not None and path in formats:
            fmt = formats[path]
            found.append(_FoundImage(path, fmt, image, _ngff_problem(attributes[path], image, fmt)))
    return found


def _level_path(group: str, dataset: str) -> str:
    inner = dataset.strip("/")
    return f"{group}/{inner}" if group else inner


def _name_levels(arrays: Sequence[ArrayReport], images: Sequence[_FoundImage]) -> list[ArrayReport]:
    """The arrays, the levels of each image named with its axes where they have no
    dimension names of their own (NGFF 0.4 on Zarr v2)."""
    names: dict[str, tuple[str, ...]] = {}
    for found in images:
        for dataset in found.image.datasets:
            names.setdefault(_level_path(found.path, dataset.path), found.image.axis_names)
    return [
        replace(a, dims=names[a.path])
        if a.dims is None and a.path in names and len(names[a.path]) == len(a.shape)
        else a
        for a in arrays
    ]


def _ngff_problem(attributes: Mapping[str, Any], image: OmeImage, zarr_format: int) -> str:
    """What is wrong with the image's NGFF metadata, in one phrase, or ``""``: the Zarr
    format its version requires, then ome-zarr-models' validation (NGFF 0.4 and 0.5; when
    ome-zarr-models is installed). Never raises."""
    needs = {"0.4": 2, "0.5": 3}.get(image.version)
    if needs is not None and needs != zarr_format:
        return f"NGFF {image.version} goes with Zarr format {needs}, not {zarr_format}"
    try:
        if image.version == "0.4":
            from ome_zarr_models.v04.image import ImageAttrs as ImageAttrs04

            validate: Any = ImageAttrs04.model_validate
            document: Any = dict(attributes)
        elif image.version == "0.5":
            from ome_zarr_models.v05.image import ImageAttrs as ImageAttrs05

            validate, document = ImageAttrs05.model_validate, attributes.get("ome")
        else:
            return ""
    except ImportError:
        return ""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            validate(document)
    except Exception as exc:  # pydantic's ValidationError, or whatever a model raises
        return _validation_text(exc)
    return ""


def _validation_text(exc: Exception) -> str:
    """The first problem pydantic reports, as ``where: what``."""
    errors = getattr(exc, "errors", None)
    try:
        first = errors()[0] if callable(errors) else None
    except Exception:  # not pydantic's errors()
        first = None
    if isinstance(first, Mapping) and "msg" in first:
        where = ".".join(str(p) for p in first.get("loc") or ())
        count = len(errors()) if callable(errors) else 1
        more = f" (and {count - 1} more)" if count > 1 else ""
        what = str(first["msg"]).removeprefix("Value error, ").rstrip(".")
        return f"{where}: {what}{more}" if where else f"{what}{more}"
    return _reason(exc)


def _ome_facts(found: _FoundImage, arrays: Mapping[str, ArrayFacts]) -> OmeFacts:
    levels = tuple(
        OmeLevel(d.path, arrays.get(_level_path(found.path, d.path)), d.scale)
        for d in found.image.datasets
    )
    return OmeFacts(found.path, found.image, found.zarr_format, levels, found.invalid)


def _image_report(facts: OmeFacts, found: Sequence[Finding]) -> ImageReport:
    """The image as the report shows it, with the OME-Zarr lint's findings."""
    image = facts.image
    reports = []
    for dataset, level in zip(image.datasets, facts.levels, strict=True):
        array = level.array
        reports.append(
            LevelReport(
                path=dataset.path, array=facts.level_path(level),
                shape=array.shape if array is not None else None,
                chunks=array.chunks if array is not None else None,
                scale=dataset.scale, translation=dataset.translation,
            )
        )  # fmt: skip
    return ImageReport(
        path=facts.group, zarr_format=facts.zarr_format, version=image.version,
        name=image.name, labels=image.labels, axes=image.axes, levels=tuple(reports),
        findings=tuple(found),
    )  # fmt: skip


# --- the workload comparison -------------------------------------------------------------


def _data_arrays(arrays: Sequence[ArrayReport]) -> list[ArrayReport]:
    """The arrays a workload is about: numeric, with the most dims, not coordinates."""

    numeric = [a for a in arrays if a.numeric and a.shape and math.prod(a.shape) > 0]
    if len(numeric) <= 1:
        return numeric
    most = max(len(a.shape) for a in numeric)
    return [a for a in numeric if len(a.shape) == most]


def _compare(
    array: ArrayReport,
    url: str,
    workload: str,
    storage: StorageProfile,
    calibration: Mapping[str, Any],
    advise: Adviser,
    names: Sequence[str],
    image_format: int | None = None,
) -> Comparison | None:
    """The array's layout against advise's best for the workload; ``None`` when no op of a
    spec's workload reads it (ops may name their ``variables``). A level of an OME-Zarr
    image (``image_format``) keeps its image's Zarr format: its NGFF metadata goes with it."""
    from chunkwise.cost.model import CostInputs, estimate_layout
    from chunkwise.model.array import ArraySpec
    from chunkwise.model.codec import DEFAULT_CODEC, default_codec_profile, parse_codec

    dims = array.dims or tuple(f"dim_{i}" for i in range(len(array.shape)))
    spec = ArraySpec.create(array.shape, array.dtype, dims)
    is_file = Path(workload).suffix.lower() in (".yaml", ".yml", ".json")
    if is_file and not Path(workload).is_file():
        raise SpecError(
            f"workload file {workload!r} does not exist; give a preset name or a spec file."
        )
    storage_arg: Any = storage  # a StorageProfile keeps its custom values and reader
    document: Any = None
    ops: Any = workload
    if is_file:
        from chunkwise.model.dataset import workload_for
        from chunkwise.spec import load_spec

        document = load_spec(workload)
        ops = workload_for(document.pop("workload", None) or [], array.path, names)
        if not ops:
            return None
    constraints = None
    if image_format is not None:
        given = document.get("constraints") if document is not None else None
        constraints = {**(given if isinstance(given, Mapping) else {}), "zarr_format": image_format}
    advice = advise(
        document,
        array={"shape": list(spec.shape), "dtype": spec.dtype, "dims": list(spec.dims)},
        workload=ops,
        storage=storage_arg,
        constraints=constraints,
        top=1,
        profile=dict(calibration) or None,
    )
    best = advice.best
    note = ""
    codec = parse_codec(array.codec) if array.codec is not None else DEFAULT_CODEC
    if array.codec is None:
        note = f"its codecs ({array.codecs}) are priced as {DEFAULT_CODEC.short}"
    profile = best.codec_profile if codec == best.layout.codec else default_codec_profile(codec)
    chunks = tuple(min(c, n) for c, n in zip(array.chunks, array.shape, strict=True))
    shards = None
    if array.shards is not None:
        shards = tuple(
            min(s, -(-n // c) * c)
            for s, c, n in zip(array.shards, chunks, array.shape, strict=True)
        )
    current_layout = Layout.create(
        spec, chunks, shards=shards, codec=codec, zarr_format=array.zarr_format
    )
    current = estimate_layout(
        current_layout, advice.workload, CostInputs(spec, advice.storage, codec, profile)
    )
    ops = tuple(
        OpComparison(op.name, current.seconds(op.name), best.cost.seconds(op.name))
        for op in advice.workload.ops
    )
    layout = best.layout
    label = Path(workload).stem if is_file else workload
    if array.path and array.dims is not None:  # a dataset: every variable, for the workload
        command = workload_command(
            url, target_url(url, "", label), workload=workload,
            storage=advice.storage.name if advice.storage.name in STORAGE_PRESETS else None,
            zarr_format=layout.zarr_format,
        )  # fmt: skip
    else:
        source = f"{url}#{array.path}" if array.path else url
        command = rechunk_command(
            source, target_url(url, array.path, label), chunks=layout.chunks,
            shards=layout.shards, codec=layout.codec.short, zarr_format=layout.zarr_format,
        )  # fmt: skip
    keep = _keep_reason(current_layout, current.weighted_s, layout, best.cost.weighted_s)
    if keep:
        command = ""
        note = f"{note}; {keep}" if note else keep
    return Comparison(
        path=array.path,
        workload=label,
        storage=advice.storage.name,
        current=current_layout.label(),
        best=layout.label(),
        current_s=current.weighted_s,
        best_s=best.cost.weighted_s,
        ops=ops,
        command=command,
        best_layout=layout.to_dict(spec),
        note=note,
    )


#: Predicted speed-up below which inspect does not propose rewriting the data: a
#: rechunk costs a full read and write, and smaller gains are within the model's error.
MIN_MOVE_SPEEDUP = 1.1


def _keep_reason(current: Layout, current_s: float, best: Layout, best_s: float) -> str:
    """Why the data should stay as it is, or ``""`` when moving it pays."""
    if (current.chunks, current.shards, current.codec, current.zarr_format) == (
        best.chunks, best.shards, best.codec, best.zarr_format,
    ):  # fmt: skip
        return "the data already has advise's best layout: nothing to move"
    if best_s * MIN_MOVE_SPEEDUP > current_s:
        return (
            f"advise's best is predicted at {format_duration(best_s)} against the current "
            f"{format_duration(current_s)}, less than {MIN_MOVE_SPEEDUP:.2g}x faster: keep "
            "the data as it is"
        )
    return ""


def _spec_storage(workload: str | None) -> str | Mapping[str, Any] | None:
    """The storage a workload spec file names, if any."""
    from chunkwise.spec import load_spec

    if workload is None or Path(workload).suffix.lower() not in (".yaml", ".yml", ".json"):
        return None
    if not Path(workload).is_file():
        return None  # _compare says the file is missing
    value = load_spec(workload).get("storage")
    return value if isinstance(value, str | Mapping) else None


# --- the entry point -------------------------------------------------------------------


def inspect_store(
    url: str | os.PathLike[str] | Store,
    *,
    complete: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    workload: str | None = None,
    storage: str | Mapping[str, Any] | StorageProfile | None = None,
    thresholds: LintThresholds | None = None,
    profile: str | Mapping[str, Any] | None = None,
    viewer: str | None = None,
    advise: Adviser,
) -> InspectReport:
    """Report the tree, every array's layout and its findings.

    Parameters
    ----------
    url
        A local directory, a ``.zip``, ``s3://bucket/prefix``, ``https://...``, or an open
        zarr ``Store``.
    complete
        List every key with its size: objects, stored bytes, initialized chunks and
        compression ratio per array. Off by default: then only metadata is read.
    storage_options
        fsspec options for remote stores (``endpoint_url``, ``key``, ``anon``, ...).
    workload
        A workload preset or spec file: price the current layout and compare it with
        ``advise``'s best.
    storage
        The storage the findings and predictions assume (a preset, a mapping, a
        :class:`StorageProfile`); by default guessed from the URL (``s3`` for ``s3://``,
        ``http`` for ``https://``, ``local-ssd`` for local paths).
    thresholds
        Where the lint's rules fire (default: :class:`LintThresholds`'s values).
    profile
        A calibration profile (``chunkwise calibrate``: a file, ``"cached"`` or a
        mapping): findings and comparisons price its reader and codec speeds.
    viewer
        The viewer the OME-Zarr images are for (``"vizarr"``, ``"napari"``, ...): a Zarr
        format it cannot read is a finding. A name chunkwise does not know is checked for
        nothing.
    advise
        ``chunkwise.advise``, for the comparisons a ``workload`` asks for (the façade
        passes it in: this layer does not reach back up to it).

    Returns
    -------
    InspectReport

    Raises
    ------
    StoreError
        For a path that does not exist or is not a Zarr store, an unreachable server, a
        corrupt metadata document, in one sentence.
    """
    from zarr.core.sync import sync

    from chunkwise.spec import load_profile, parse_storage

    if isinstance(url, Store):
        opened = _Opened(url, "store", False, "local-ssd", close=False)
        text = repr(url)
    else:
        text = os.fspath(url)
        opened = _open(text, storage_options or {})
    try:
        if storage is None:
            storage = _spec_storage(workload) or opened.storage
        calibration = load_profile(profile)
        priced = (
            storage
            if isinstance(storage, StorageProfile)
            else parse_storage(storage, calibration.get("reader"))
        )
        reader = _Reader(opened.store, text)
        report = sync(_inspect(reader, opened, complete))
    finally:
        _close(opened)
    arrays, groups, cons, stale, root_meta, attributes = report
    images = _images(attributes, groups)
    arrays = _name_levels(arrays, images)
    facts = [_facts(a) for a in arrays]
    store_facts = StoreFacts(
        url=text,
        remote=opened.remote,
        is_group=_is_group(root_meta),
        members=len(arrays) + len(groups) - 1 if _is_group(root_meta) else 0,
        consolidated=cons,
        stale=stale,
        dataset=_is_group(root_meta) and any(a.dims is not None for a in arrays),
    )
    thresholds = thresholds or LintThresholds()
    by_array = {f.path: f for f in facts}
    ome = [_ome_facts(found, by_array) for found in images]
    found = drop_viewer_conflicts(lint(facts, store_facts, priced, thresholds), ome, thresholds)
    image_reports = tuple(
        _image_report(image, lint_ome([image], store_facts, viewer=viewer, thresholds=thresholds))
        for image in ome
    )
    by_path: dict[str, list[Finding]] = {}
    for f in found:
        by_path.setdefault(f.path, []).append(f)
    paths = {a.path for a in arrays}
    arrays = [replace(a, findings=tuple(by_path.get(a.path, ()))) for a in arrays]
    comparisons: tuple[Comparison, ...] = ()
    if workload is not None:
        formats = {image.level_path(lv): image.zarr_format for image in ome for lv in image.levels}
        compared = (
            _compare(
                a, text, workload, priced, calibration, advise, sorted(paths), formats.get(a.path)
            )
            for a in _data_arrays(arrays)
        )
        comparisons = tuple(c for c in compared if c is not None)
    return InspectReport(
        url=text,
        kind=opened.kind,
        storage=priced,
        complete=complete,
        root="group" if _is_group(root_meta) else "array",
        zarr_format=int(root_meta.zarr_format),
        consolidated=cons,
        stale=stale,
        groups=tuple(groups),
        arrays=tuple(arrays),
        findings=tuple(f for f in found if f.path not in paths),
        comparisons=comparisons,
        workload=workload,
        images=image_reports,
        viewer=viewer,
    )


async def _inspect(
    reader: _Reader, opened: _Opened, complete: bool
) -> tuple[
    list[ArrayReport], list[GroupReport], bool, tuple[str, ...], Any, dict[str, Mapping[str, Any]]
]:
    """The arrays, groups, consolidation, staleness, root metadata and each group's
    attributes (by path)."""
    if not opened.store._is_open:
        await opened.store._open()
    root = await reader.node("", root=True)
    if root is None:
        raise StoreError(
            f"store {reader.url!r} is not a Zarr store: its root has no zarr.json, .zarray or "
            ".zgroup; give the path of a Zarr array or group."
        )
    root_meta, raw = root
    listing = await _listing(reader.url, list_sizes(opened.store)) if complete else None
    if not _is_group(root_meta):
        return [_array_report("", root_meta, listing)], [], False, (), root_meta, {}
    consolidated = _consolidated(raw)
    members: dict[str, Any] = {}
    stale: list[str] = []
    if consolidated is not None and listing is None:
        paths = sorted(consolidated)
        nodes = await _all(reader.node(p, zarr_format=int(root_meta.zarr_format)) for p in paths)
        for path, node in zip(paths, nodes, strict=True):
            if node is None:
                stale.append(f"{path!r} is listed but does not exist")
            else:
                members[path] = node[0]
    elif listing is not None:
        found = sorted(
            {key.rpartition("/")[0] for key, _ in listing if key.rpartition("/")[2] in _META_KEYS}
            - {""}
        )
        fmt = int(root_meta.zarr_format)
        nodes = await _all(reader.node(p, zarr_format=fmt) for p in found)
        members = {p: n[0] for p, n in zip(found, nodes, strict=True) if n is not None}
        # a stray metadata key below an array is no member of the tree
        arrays_at = [p for p, m in members.items() if not _is_group(m)]
        members = {
            p: m for p, m in members.items() if not any(p.startswith(a + "/") for a in arrays_at)
        }
        if consolidated is not None:
            for path in sorted(set(consolidated) - set(members)):
                stale.append(f"{path!r} is listed but does not exist")
            for path in sorted(set(members) - set(consolidated)):
                stale.append(f"{path!r} exists but is not listed")
    else:
        await _listing(reader.url, _walk(reader, "", int(root_meta.zarr_format), members))
    if consolidated is not None:
        for path in sorted(set(consolidated) & set(members)):
            cons_meta = reader.parse(_join(path, "zarr.json" if "node_type" in consolidated[path]
                                           else ".zarray"), consolidated[path])  # fmt: skip
            if _is_group(cons_meta) != _is_group(members[path]):
                stale.append(f"{path!r} is a different kind of node than listed")
                continue
            diff = _difference(path, cons_meta, members[path])
            if diff is not None:
                stale.append(diff)
    arrays = [_array_report(p, m, listing) for p, m in sorted(members.items()) if not _is_group(m)]
    groups = [GroupReport("", int(root_meta.zarr_format), len(root_meta.attributes))] + [
        GroupReport(p, int(m.zarr_format), len(m.attributes))
        for p, m in sorted(members.items())
        if _is_group(m)
    ]
    attributes: dict[str, Mapping[str, Any]] = {"": dict(root_meta.attributes)}
    attributes.update((p, dict(m.attributes)) for p, m in members.items() if _is_group(m))
    return arrays, groups, consolidated is not None, tuple(stale), root_meta, attributes
