"""Write candidate layouts from real data onto a store, and time the workload on each.

For every candidate the runner creates a fresh array in its own location, writes the
data once (timed, then the objects and bytes in the store are counted), then times every
operation at ``repeats`` random positions drawn with a fixed seed (the same positions for
every layout), reading each position a second time right away when ``warm`` is on.
Appends grow a second copy of the layout (written untimed first), so the copy that was
read stays the data. GET requests are counted at the store for every repeat, so the
model's request counts are checked too, not only its seconds.

Reads go through the library the benchmark prices when it is installed (tensorstore,
zarrs; see :mod:`chunkwise.measure.readers`), else through zarr-python; writes and
appends always go through zarr-python. The values of each operation's first position
are compared with the data written, so a wrong read stops the benchmark.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np

from chunkwise.cost.model import CostInputs, estimate_layout
from chunkwise.errors import MissingDependencyError
from chunkwise.io.codecs import create_array
from chunkwise.io.stores import EmulatedStore, StoreTarget, list_objects
from chunkwise.measure.readers import (
    ArrayReads,
    ReaderChoice,
    open_reads,
    same_values,
    zarr_python_label,
)
from chunkwise.measure.results import LayoutResult, OpMeasurement, Progress
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import CodecProfile, CodecSpec
from chunkwise.model.layout import Layout
from chunkwise.model.storage import StorageProfile
from chunkwise.model.workload import Operation, Workload

__all__ = [
    "Candidate",
    "dask_auto_chunks",
    "draw_selections",
    "run_candidates",
    "study_operations",
    "zarr_auto_chunks",
]

#: The step in CPU per chunk that measures a prediction's slope in it, seconds.
_NUDGE_S = 1e-3
_METADATA_KEYS = re.compile(r"(^|/)(zarr\.json|\.zarray|\.zattrs|\.zgroup|\.zmetadata)$")


@dataclass(frozen=True, slots=True)
class Candidate:
    """A layout to benchmark, with where it came from.

    Attributes
    ----------
    name
        Short label (``advise #1``, ``zarr auto``, ``candidate 1``, ...).
    source
        ``"advise"``, ``"baseline"`` or ``"candidate"``.
    layout
        The layout.
    """

    name: str
    source: str
    layout: Layout


def zarr_auto_chunks(array: ArraySpec, zarr_format: int) -> tuple[int, ...]:
    """The chunks zarr-python picks for ``chunks="auto"`` (asked of zarr itself)."""
    import zarr

    probe = zarr.create_array(
        zarr.storage.MemoryStore(),
        shape=array.shape,
        dtype=array.dtype,
        chunks="auto",
        zarr_format=zarr_format,  # type: ignore[arg-type]
    )
    return tuple(int(c) for c in probe.chunks)


def dask_auto_chunks(array: ArraySpec, limit: str = "128MiB") -> tuple[int, ...]:
    """The chunks Dask picks for ``chunks="auto"`` with its default 128 MiB limit.

    Raises
    ------
    MissingDependencyError
        When Dask is not installed (``pip install 'chunkwise[dask]'``).
    """
    try:
        from dask.array.core import normalize_chunks
    except ImportError:
        raise MissingDependencyError(
            "the Dask baseline needs dask; install it with: pip install 'chunkwise[dask]'."
        ) from None
    chunks = normalize_chunks(  # type: ignore[no-untyped-call]
        "auto", array.shape, limit=limit, dtype=np.dtype(array.dtype)
    )
    return tuple(int(max(c)) for c in chunks)


def study_operations(workload: Workload, array: ArraySpec) -> tuple[Operation, ...]:
    """The workload's operations plus, at weight 0, the columns chunking studies report.

    Studies compare layouts by full read, slice read and ROI read; when the workload has
    no scan, plane or region, one is added (a full scan; a plane across the last two dims;
    a box of up to 64 per dim) so every report has the same columns.
    """
    kinds = {op.kind for op in workload.ops}
    names = {op.name for op in workload.ops}
    extra: list[Operation] = []
    shape = array.shape
    if "scan" not in kinds:
        extra.append(Operation("scan", "scan", 0.0, shape))
    if "plane" not in kinds and array.ndim >= 2:
        dims = array.dims[-2:]
        extent = tuple(n if d in dims else 1 for n, d in zip(shape, array.dims, strict=True))
        extra.append(Operation("plane", f"plane[{','.join(dims)}]", 0.0, extent, dims))
    if "region" not in kinds:
        extent = tuple(min(n, 64) for n in shape)
        extra.append(Operation("region", f"region[{'x'.join(map(str, extent))}]", 0.0, extent))
    return workload.ops + tuple(op for op in extra if op.name not in names)


Selection = tuple[slice | int, ...] | tuple[np.ndarray[Any, Any], ...]


def draw_selections(
    op: Operation, shape: tuple[int, ...], repeats: int, rng: np.random.Generator
) -> list[Selection]:
    """Random positions for ``repeats`` runs of a read operation.

    Boxes (plane, series, region, scan) are slices of ``op.extent`` at uniformly random,
    not chunk-aligned starts; points are ``op.count`` random coordinates read in one call.
    """
    out: list[Selection] = []
    for _ in range(repeats):
        if op.kind == "point":
            out.append(tuple(rng.integers(0, n, size=op.count) for n in shape))
            continue
        box: list[slice | int] = []
        for n, e in zip(shape, op.extent, strict=True):
            start = int(rng.integers(0, n - e + 1))
            box.append(slice(start, start + e))
        out.append(tuple(box))
    return out


def _timed(func: Callable[[], Any]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def _footprint(store: EmulatedStore) -> tuple[int, int, int]:
    keys_sizes = list_objects(store)
    data = sum(1 for key, _ in keys_sizes if not _METADATA_KEYS.search(key))
    return data, len(keys_sizes) - data, sum(size for _, size in keys_sizes)


def _check_values(
    got: Any, values: np.ndarray[Any, Any], op: Operation, selection: Selection, label: str
) -> None:
    """Fail when a read returned other values than the data written: timing a wrong read
    would measure nothing."""
    if not same_values(got, values[selection]):
        raise RuntimeError(
            f"{label} read {op.name} at {selection!r} and returned values that differ from "
            "the data written; the benchmark stops rather than time a wrong read."
        )


def _measure_reads(
    reads: ArrayReads,
    op: Operation,
    selections: Sequence[Selection],
    warm: bool,
    values: np.ndarray[Any, Any],
) -> tuple[tuple[float, ...], tuple[float, ...], float]:
    """Time each position (and its immediate re-read when ``warm``); the first position's
    values are checked against the data."""
    times, warm_times, gets = [], [], []
    count = reads.requests
    for i, selection in enumerate(selections):
        before = count() if count is not None else 0
        start = time.perf_counter()
        got = reads.read(op, selection)
        times.append(time.perf_counter() - start)
        if count is not None:
            gets.append(count() - before)
        if i == 0:
            _check_values(got, values, op, selection, reads.label)
        if warm:
            warm_times.append(_timed(partial(reads.read, op, selection)))
    return tuple(times), tuple(warm_times), float(np.mean(gets)) if gets else float("nan")


def _measure_appends(
    target: StoreTarget,
    name: str,
    array: ArraySpec,
    layout: Layout,
    values: np.ndarray[Any, Any],
    op: Operation,
    repeats: int,
    seed: int,
) -> tuple[tuple[float, ...], float]:
    """Time ``repeats`` appends on a copy of the layout, so the measured array stays intact."""
    store = target.open(f"{name}-{_slug(op.name)}", rewritable=True)
    arr = create_array(store, array, layout)
    arr[...] = values
    axis = array.axis(op.dims[0])
    rng = np.random.default_rng(seed)
    slab_shape = tuple(op.count if i == axis else n for i, n in enumerate(array.shape))
    slab = rng.standard_normal(slab_shape).astype(array.dtype)
    times, gets = [], []
    for _ in range(repeats):
        before = store.counts.gets
        times.append(_timed(partial(arr.append, slab, axis=axis)))
        gets.append(store.counts.gets - before)
    return tuple(times), float(np.mean(gets))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "layout"


def run_candidates(
    values: np.ndarray[Any, Any],
    array: ArraySpec,
    ops: Sequence[Operation],
    storage: StorageProfile,
    target: StoreTarget,
    candidates: Sequence[Candidate],
    codec_profiles: dict[CodecSpec, CodecProfile],
    *,
    repeats: int = 5,
    seed: int = 0,
    warm: bool = True,
    progress: Progress | None = None,
    reader: ReaderChoice | None = None,
) -> tuple[LayoutResult, ...]:
    """Write and time every candidate; see the module docstring for the protocol.

    Parameters
    ----------
    values
        The data to write, of ``array``'s shape and dtype.
    array
        The benchmarked array.
    ops
        Operations to time (read ops at random positions; ``write`` is the initial full
        write; ``append`` grows a second copy of the layout, written untimed first).
    storage
        Profile used for the predictions (the store's own, when known).
    target
        Where to write (one fresh location per candidate, removed by the caller).
    candidates
        The layouts.
    codec_profiles
        Codec ratio and throughput for the predictions (measured on the data when possible).
    repeats
        Random positions per operation.
    seed
        Seed of the positions (the same for every layout).
    warm
        Also time an immediate second read of each position.
    progress
        Called as work advances.
    reader
        The library the reads go through (default: the zarr-python installed here);
        writes and appends always go through zarr-python.

    Returns
    -------
    tuple of LayoutResult
        In the order of ``candidates``.
    """
    choice = reader or ReaderChoice("zarr-python", zarr_python_label())
    reads = [op for op in ops if op.is_read]
    rng = np.random.default_rng(seed)
    positions = {op.name: draw_selections(op, array.shape, repeats, rng) for op in reads}
    total = len(candidates) * (1 + len(ops))
    done = 0
    results = []
    for index, cand in enumerate(candidates, start=1):
        layout = cand.layout
        inputs = CostInputs(array, storage, layout.codec, codec_profiles[layout.codec])
        predicted = estimate_layout(layout, ops, inputs)
        # The prediction's slope in CPU per chunk (linear: cpu_s = n * per_chunk + ...).
        nudged = storage.with_reader(
            replace(storage.reader, per_chunk_cpu_s=storage.reader.per_chunk_cpu_s + _NUDGE_S)
        )
        slope = estimate_layout(layout, ops, replace(inputs, storage=nudged)).ops
        # The initial write, priced on its own: a workload op may be named "write" too.
        whole = Operation("write", "write", 0.0, array.shape)
        predicted_write = estimate_layout(layout, [whole], inputs).ops["write"]["seconds"]
        location = f"{index:02d}-{_slug(cand.name)}"  # unique even when names slug alike
        store = target.open(location)

        def step(what: str, name: str = cand.name) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(f"{name}: {what}", done, total)

        arr = create_array(store, array, layout)
        write_s = _timed(partial(arr.__setitem__, Ellipsis, values))
        data_objects, meta_objects, stored = _footprint(store)
        step("write")
        measured: list[OpMeasurement] = []
        with _opened(choice, arr, store, layout, target) as (opened, notes):
            for op in ops:
                if op.kind == "write":
                    times: tuple[float, ...] = (write_s,)
                    warm_times: tuple[float, ...] = ()
                    gets = float("nan")
                elif op.kind == "append":
                    continue  # on a copy, after the reads
                else:
                    times, warm_times, gets = _measure_reads(
                        opened, op, positions[op.name], warm, values
                    )
                measured.append(
                    _measurement(op, predicted.ops[op.name], times, warm_times, gets, slope)
                )
                step(op.name)
            if opened.fallbacks:
                notes.append(
                    f"{cand.name}: {opened.label} handed {', '.join(sorted(opened.fallbacks))} "
                    f"back to zarr-python's codec pipeline (selections it cannot index)."
                )
        for op in ops:
            if op.kind == "append":
                times, gets = _measure_appends(
                    target, location, array, layout, values, op, repeats, seed
                )
                measured.append(_measurement(op, predicted.ops[op.name], times, (), gets, slope))
                step(op.name)
        order = {op.name: i for i, op in enumerate(ops)}
        measured.sort(key=lambda m: order[m.name])
        results.append(
            LayoutResult(
                name=cand.name,
                source=cand.source,
                layout=layout,
                data_objects=data_objects,
                metadata_objects=meta_objects,
                stored_bytes=stored,
                raw_bytes=array.nbytes,
                write_s=write_s,
                predicted_write_s=predicted_write,
                ops=tuple(measured),
                predicted_weighted_s=sum(
                    op.weight * predicted.ops[op.name]["seconds"] for op in ops
                ),
                reader=opened.label,
                reader_notes=tuple(notes),
            )
        )
    return tuple(results)


@contextlib.contextmanager
def _opened(
    choice: ReaderChoice, arr: Any, store: EmulatedStore, layout: Layout, target: StoreTarget
) -> Iterator[tuple[ArrayReads, list[str]]]:
    """The layout opened for reads by ``choice``; when that library cannot open it, by
    zarr-python, with a note saying why."""
    notes: list[str] = []
    with contextlib.ExitStack() as stack:
        try:
            opened = stack.enter_context(open_reads(choice, arr, store, layout, target))
        except Exception as exc:  # tensorstore/zarrs raise their own types for unsupported data
            if choice.family == "zarr-python":
                raise
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            notes.append(
                f"{choice.label} could not open {layout.label()} ({reason}); its reads were "
                f"measured through {zarr_python_label()}."
            )
            arr, store = _reopened(arr, store)
            opened = stack.enter_context(
                open_reads(ReaderChoice("zarr-python", zarr_python_label()), arr, store, layout,
                           target)
            )  # fmt: skip
        yield opened, notes


def _reopened(arr: Any, store: EmulatedStore) -> tuple[Any, EmulatedStore]:
    """``arr`` again, readable: a zip file closed for another reader is reopened read-only."""
    import zarr
    from zarr.storage import ZipStore

    inner = store._store
    if isinstance(inner, ZipStore) and not inner._is_open:
        store = store._with_store(ZipStore(inner.path, mode="r"))
        return zarr.open_array(store, mode="r"), store
    return arr, store


def _measurement(
    op: Operation,
    predicted: dict[str, float],
    times: tuple[float, ...],
    warm_times: tuple[float, ...],
    gets: float,
    nudged: Mapping[str, dict[str, float]],
) -> OpMeasurement:
    return OpMeasurement(
        name=op.name,
        kind=op.kind,
        weight=op.weight,
        predicted_s=predicted["seconds"],
        times_s=times,
        warm_times_s=warm_times,
        requests=gets,
        predicted_requests=predicted.get("get_requests", predicted.get("requests", float("nan"))),
        cpu_chunks=(nudged[op.name]["cpu_s"] - predicted["cpu_s"]) / _NUDGE_S,
    )
