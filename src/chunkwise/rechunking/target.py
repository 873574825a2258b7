"""The target of a run: claim it, replace only what is provably a Zarr store, finish it in
an order that survives a kill at any instant.

**What a target holds during a run** (``S`` is :data:`~chunkwise.io.markers.MARKER_PREFIX`)::

    S/lock                     the lease (chunkwise.rechunking.lease)
    S/run.json                 the run record: fingerprint of the plan, phase
    S/arrays/<path>/...        per array: task markers, the intermediate array, and
    S/arrays/<path>/done-<v>   "written and verified (v)": the array is finished
    zarr.json, c/...           the target itself

**States, as a rerun of the same command finds them, and what it does**

=====================================  ==================================================
run record of this plan, ``replacing`` a replacement was interrupted: go on deleting what
                                       was there (every key but the record and the lease)
run record of this plan, ``writing``   resume: finished arrays are skipped, others resume
                                       from their task markers
run record of this plan, ``finishing`` every array is written, verified, marked complete
                                       and consolidated: only the clean-up is left
no run record, root attribute          the run had finished: nothing to do
``chunkwise.run`` of this plan
no run record, nothing else            new target
anything else                          refused, or with ``overwrite`` replaced when every
                                       key is Zarr metadata, a chunk of one of its arrays,
                                       or chunkwise's own state
=====================================  ==================================================

Deletions are ordered so that every prefix of them leaves one of these states: replacing
first writes this run's record (phase ``replacing``: it stands for the proof that what was
there is Zarr, which the deletions themselves destroy), then removes the root metadata,
then the rest; finishing removes the markers and intermediates, then the run record, then
the lease. Temporary files a killed write left (``*.<hex>.partial``) never count as
content.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from chunkwise.errors import SpecError, StoreError
from chunkwise.io.markers import MARKER_PREFIX, RUN_RECORD
from chunkwise.io.stores import delete_keys, remove_empty_folders, store_keys
from chunkwise.rechunking.executor import PARTIAL_WRITE
from chunkwise.rechunking.lease import LEASE_NAME

__all__ = [
    "LEASE_KEY",
    "RUN_RECORD",
    "Claim",
    "check_zarr_only",
    "clear_store",
    "completed_fingerprint",
    "foreign_key",
    "inspect_target",
    "read_record",
    "write_record",
]

#: The lease.
LEASE_KEY = f"{MARKER_PREFIX}/{LEASE_NAME}"
#: Names of Zarr metadata documents (v3, and v2 with consolidated metadata).
METADATA_NAMES = frozenset({"zarr.json", ".zarray", ".zgroup", ".zattrs", ".zmetadata"})


class Claim(Enum):
    """What a run does with its target (see the module docstring)."""

    NEW = "new"
    RESUME = "resume"
    FINISHING = "finishing"
    COMPLETE = "complete"
    REPLACE = "replace"
    REPLACING = "replacing"


# ----------------------------------------------------------------------------- reading


def _get(store: Any, key: str) -> bytes | None:
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    buffer = sync(store.get(key, prototype=default_buffer_prototype()))
    return None if buffer is None else bytes(buffer.to_bytes())


# ----------------------------------------------------------------------------- proof


@dataclass(frozen=True, slots=True)
class _Node:
    kind: str  # "group" or "array"
    chunk_key: re.Pattern[str] | None  # arrays: the pattern of their chunk keys


def _chunk_pattern(meta: Mapping[str, Any], zarr_format: int) -> re.Pattern[str] | None:
    shape = meta.get("shape")
    if not isinstance(shape, list):
        return None
    ndim = len(shape)
    if zarr_format == 2:
        encoding, separator = "v2", meta.get("dimension_separator") or "."
    else:
        cke = meta.get("chunk_key_encoding")
        if not isinstance(cke, dict):
            cke = {}
        encoding = cke.get("name", "default")
        config = cke.get("configuration")
        if not isinstance(config, dict):
            config = {}
        separator = config.get("separator", "/" if encoding == "default" else ".")
    if separator not in ("/", "."):
        return None
    sep = re.escape(separator)
    if encoding == "default":
        body = "c" + f"(?:{sep}\\d+)" * ndim
    elif encoding == "v2":
        body = "0" if ndim == 0 else "\\d+" + f"(?:{sep}\\d+)" * (ndim - 1)
    else:
        return None
    return re.compile(body)


def _node(store: Any, path: str, names: set[str]) -> _Node | None:
    """The node at ``path`` from its metadata documents, or ``None`` if they do not make
    one (unreadable, not JSON, not Zarr)."""
    prefix = f"{path}/" if path else ""
    try:
        if "zarr.json" in names:
            meta = json.loads(_get(store, prefix + "zarr.json") or b"")
            kind = meta.get("node_type")
            if meta.get("zarr_format") != 3 or kind not in ("group", "array"):
                return None
            return _Node(kind, _chunk_pattern(meta, 3) if kind == "array" else None)
        if ".zarray" in names:
            meta = json.loads(_get(store, prefix + ".zarray") or b"")
            if meta.get("zarr_format") != 2:
                return None
            pattern = _chunk_pattern(meta, 2)
            return None if pattern is None else _Node("array", pattern)
        if ".zgroup" in names:
            meta = json.loads(_get(store, prefix + ".zgroup") or b"")
            return _Node("group", None) if meta.get("zarr_format") == 2 else None
    except (ValueError, AttributeError):
        return None
    return None  # only .zattrs / .zmetadata: not a node by itself


def foreign_key(store: Any, keys: Iterable[str]) -> str | None:
    """The first key of ``keys`` that is not part of a Zarr store, or ``None`` when every
    key is chunkwise's own state, a temporary file zarr left, Zarr metadata of a node, or
    a chunk key of an array (by its chunk key encoding)."""
    documents: dict[str, set[str]] = {}
    others = []
    for key in sorted(keys):
        if key.startswith(f"{MARKER_PREFIX}/") or PARTIAL_WRITE.search(key):
            continue
        folder, _, name = key.rpartition("/")
        if name in METADATA_NAMES:
            documents.setdefault(folder, set()).add(name)
        else:
            others.append(key)
    nodes: dict[str, _Node] = {}
    for path in sorted(documents, key=lambda p: (p.count("/"), p)):
        node = _node(store, path, documents[path])
        if node is None or _inside_array(path, nodes):
            names = sorted(documents[path])
            return f"{path}/{names[0]}" if path else names[0]
        nodes[path] = node
    arrays = {path: node for path, node in nodes.items() if node.kind == "array"}
    for key in others:
        owner = _owning_array(key, arrays)
        if owner is None:
            return key
        rest = key[len(owner) + 1 :] if owner else key
        pattern = arrays[owner].chunk_key
        if pattern is None or not pattern.fullmatch(rest):
            return key
    return None


def _ancestors(path: str) -> list[str]:
    parts = path.split("/") if path else []
    return ["/".join(parts[:i]) for i in range(len(parts))]


def _inside_array(path: str, nodes: Mapping[str, _Node]) -> bool:
    return any(nodes.get(a, _Node("group", None)).kind == "array" for a in _ancestors(path))


def _owning_array(key: str, arrays: Mapping[str, _Node]) -> str | None:
    for folder in reversed(_ancestors(key)):
        if folder in arrays:
            return folder
    return None


# ----------------------------------------------------------------------------- replacing


def check_zarr_only(store: Any, url: str, keys: Iterable[str]) -> None:
    """Refuse to replace a target that is not provably a Zarr store (see :func:`foreign_key`).

    Raises
    ------
    StoreError
        Naming the first key that is not part of a Zarr store.
    """
    foreign = foreign_key(store, keys)
    if foreign is not None:
        raise StoreError(
            f"target {url!r} holds {foreign!r}, which is not part of a Zarr store; "
            "--overwrite only replaces Zarr stores: choose another target or remove it "
            "yourself."
        )


#: A key Zarr could have written: a metadata document, or a chunk key (``c/0/1``,
#: ``0.1``, ``0/1``, ``c``) below any node folder.
_ZARR_SHAPED = re.compile(
    r"(?:[^/]+/)*(?:zarr\.json|\.zarray|\.zgroup|\.zattrs|\.zmetadata|c(?:[/.]\d+)*|\d+(?:[/.]\d+)*)"
)


def clear_store(
    store: Any, url: str, keys: list[str], fingerprint: str, source: str, *, proven: bool
) -> None:
    """Replace a target: record this run as replacing it, then delete ``keys`` (every key
    but the record and the lease), the root metadata first.

    ``proven`` says the keys were shown to be a Zarr store (:func:`check_zarr_only`);
    a rerun that finds a replacement half done cannot prove it any more (its metadata may
    be gone), so it deletes only keys shaped like Zarr's, and refuses anything else.

    Raises
    ------
    StoreError
        Naming the first key that is not part of a Zarr store; nothing is deleted then.
    """
    if proven:
        check_zarr_only(store, url, keys)
    else:
        for key in keys:
            ours = key.startswith(f"{MARKER_PREFIX}/") or PARTIAL_WRITE.search(key)
            if not ours and not _ZARR_SHAPED.fullmatch(key):
                raise StoreError(
                    f"target {url!r} holds {key!r}, which is not part of a Zarr store and "
                    "was not there when this run began replacing it; remove it yourself "
                    "or choose another target."
                )
    write_record(store, fingerprint, source, "replacing")
    doomed = [k for k in keys if k not in (RUN_RECORD, LEASE_KEY)]
    root_metadata = [k for k in doomed if k in METADATA_NAMES]  # the completion mark
    delete_keys(store, root_metadata)
    delete_keys(store, [k for k in doomed if k not in root_metadata])
    remove_empty_folders(store)


# ----------------------------------------------------------------------------- records


def read_record(store: Any) -> dict[str, Any] | None:
    """The run record, or ``None`` when there is none (or it is unreadable)."""
    data = _get(store, RUN_RECORD)
    if data is None:
        return None
    try:
        record = json.loads(data)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def write_record(store: Any, fingerprint: str, source: str, phase: str) -> None:
    """Write the run record (one atomic object)."""
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    record = {
        "fingerprint": fingerprint,
        "source": source,
        "phase": phase,
        "updated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    data = json.dumps(record, indent=1).encode()
    sync(store.set(RUN_RECORD, default_buffer_prototype().buffer.from_bytes(data)))


def completed_fingerprint(store: Any) -> str | None:
    """The fingerprint a finished run recorded in the root node's ``chunkwise``
    attribute (``{"run": {"fingerprint": ...}}``), or ``None``."""
    import zarr

    try:
        node = zarr.open(store, mode="r")
        record = node.attrs.get("chunkwise")
    except Exception:  # no root node, unreadable metadata: not a finished run
        return None
    run = record.get("run") if isinstance(record, dict) else None
    found = run.get("fingerprint") if isinstance(run, dict) else None
    return found if isinstance(found, str) else None


def inspect_target(
    store: Any, url: str, fingerprint: str, *, overwrite: bool
) -> tuple[Claim, list[str]]:
    """What a run of the plan ``fingerprint`` does with the target, and the target's keys
    (without the lease). Writes nothing.

    Raises
    ------
    SpecError
        When the target holds data not written by this plan and ``overwrite`` is false.
    StoreError
        With ``overwrite``, when the target is not provably a Zarr store.
    """
    keys = [k for k in store_keys(store) if k != LEASE_KEY]
    record = read_record(store) if RUN_RECORD in keys else None
    if record is not None and record.get("fingerprint") == fingerprint:
        phase = record.get("phase")
        claims = {"finishing": Claim.FINISHING, "replacing": Claim.REPLACING}
        return claims.get(str(phase), Claim.RESUME), keys
    if not [k for k in keys if not PARTIAL_WRITE.search(k)]:  # a kill's temporary files
        return Claim.NEW, keys
    if record is None and not overwrite and completed_fingerprint(store) == fingerprint:
        return Claim.COMPLETE, keys  # (with --overwrite a finished target is replaced)
    if overwrite:
        check_zarr_only(store, url, keys)
        return Claim.REPLACE, keys
    if record is not None:
        raise SpecError(
            f"target {url!r} holds an unfinished chunkwise run with other options; rerun "
            "that command to resume it, or add --overwrite to replace it."
        )
    raise SpecError(
        f"target {url!r} already exists and was not written by this run; choose a new "
        "target or add --overwrite to replace it."
    )
