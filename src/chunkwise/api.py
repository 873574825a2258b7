"""The public façade. Defaults live here, once.

>>> import chunkwise
>>> advice = chunkwise.advise(
...     array={"shape": [184, 630, 630], "dtype": "float32", "dims": ["z", "y", "x"]},
...     workload="slice-viewer",
...     storage="local-ssd",
...     constraints={"zarr_format": 2},
... )
>>> advice.best.layout.chunks[0] <= 16
True
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from chunkwise.errors import SpecError
from chunkwise.plan.advice import Advice, make_advice
from chunkwise.plan.dataset import DatasetAdvice
from chunkwise.spec import Problem, load_spec, problem_from_spec

if TYPE_CHECKING:
    from zarr.abc.store import Store

    from chunkwise.inspection.store import InspectReport
    from chunkwise.measure.results import BenchReport, Progress
    from chunkwise.plan.pyramid import PyramidRequest
    from chunkwise.rechunking.convert import ConversionPlan, ConversionResult
    from chunkwise.rechunking.executor import Events
    from chunkwise.tracing.trace import ScriptRun, Trace

__all__ = [
    "DEFAULT_BENCH_TOP",
    "DEFAULT_CODECS",
    "DEFAULT_GRID_BUDGET",
    "DEFAULT_MAX_MEM",
    "DEFAULT_REPEATS",
    "DEFAULT_SPAN_FRACTION",
    "DEFAULT_STORAGE",
    "DEFAULT_TIE_TOLERANCE",
    "DEFAULT_TOP",
    "advise",
    "bench",
    "convert",
    "inspect",
    "problem",
    "rechunk",
    "trace",
    "trace_script",
]

#: Storage assumed when a spec names none.
DEFAULT_STORAGE = "local-ssd"
#: Codecs ``advise`` chooses among unless the spec fixes one.
DEFAULT_CODECS: tuple[str, ...] = ("blosc:zstd:5:shuffle", "blosc:lz4:5:shuffle", "zstd:3")
#: Recommendations returned.
DEFAULT_TOP = 5
#: Most layouts priced in one vectorized grid (bounds memory and time of the search).
DEFAULT_GRID_BUDGET = 100_000
#: Layouts predicted within this fraction of the fastest are ranked by fewer objects.
DEFAULT_TIE_TOLERANCE = 0.02


def _with_profile(
    spec: str | Path | Mapping[str, Any], profile: str | Path | Mapping[str, Any] | None
) -> str | Path | Mapping[str, Any]:
    """The spec with a calibration profile's reader, unless the spec names a reader."""
    from chunkwise.spec import load_profile

    data = load_spec(spec) if isinstance(spec, str | Path) else dict(spec)
    given = profile if profile is not None else data.get("profile")
    if given is None:
        return spec
    loaded = load_profile(
        os.fspath(given) if isinstance(given, Path) else given, data.get("reader")
    )
    data["profile"] = loaded
    if "reader" not in data and "reader" in loaded:
        data["reader"] = loaded["reader"]
    return data


def problem(spec: str | Path | Mapping[str, Any] | None = None, **overrides: Any) -> Problem:
    """Validate a spec (path or mapping) plus keyword overrides into a :class:`~chunkwise.spec.Problem`."""
    if spec is None:
        data: dict[str, Any] = {}
    elif isinstance(spec, str | Path):
        data = load_spec(spec)
    else:
        data = dict(spec)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return problem_from_spec(
        data,
        default_storage=DEFAULT_STORAGE,
        default_codecs=DEFAULT_CODECS,
        default_top=DEFAULT_TOP,
    )


@overload
def advise(  # type: ignore[overload-overlap]
    spec: str | Path | Mapping[str, Any] | None = None,
    *,
    array: Mapping[str, Any] | None = None,
    workload: str | Sequence[Mapping[str, Any]] | None = None,
    storage: str | Mapping[str, Any] | None = None,
    reader: str | Mapping[str, Any] | None = None,
    constraints: Mapping[str, Any] | None = None,
    codec: str | Mapping[str, Any] | None = None,
    codecs: Sequence[str] | None = None,
    top: int | None = None,
    profile: str | Path | Mapping[str, Any] | None = None,
    grid_budget: int = DEFAULT_GRID_BUDGET,
    tie_tolerance: float = DEFAULT_TIE_TOLERANCE,
    dims: Sequence[str] | None = None,
) -> Advice: ...


@overload
def advise(
    spec: object,
    *,
    array: Mapping[str, Any] | None = None,
    workload: str | Sequence[Mapping[str, Any]] | None = None,
    storage: str | Mapping[str, Any] | None = None,
    reader: str | Mapping[str, Any] | None = None,
    constraints: Mapping[str, Any] | None = None,
    codec: str | Mapping[str, Any] | None = None,
    codecs: Sequence[str] | None = None,
    top: int | None = None,
    profile: str | Path | Mapping[str, Any] | None = None,
    grid_budget: int = DEFAULT_GRID_BUDGET,
    tie_tolerance: float = DEFAULT_TIE_TOLERANCE,
    dims: Sequence[str] | None = None,
) -> DatasetAdvice: ...


def advise(
    spec: Any = None,
    *,
    array: Mapping[str, Any] | None = None,
    workload: str | Sequence[Mapping[str, Any]] | None = None,
    storage: str | Mapping[str, Any] | None = None,
    reader: str | Mapping[str, Any] | None = None,
    constraints: Mapping[str, Any] | None = None,
    codec: str | Mapping[str, Any] | None = None,
    codecs: Sequence[str] | None = None,
    top: int | None = None,
    profile: str | Path | Mapping[str, Any] | None = None,
    grid_budget: int = DEFAULT_GRID_BUDGET,
    tie_tolerance: float = DEFAULT_TIE_TOLERANCE,
    dims: Sequence[str] | None = None,
) -> Advice | DatasetAdvice:
    """Recommend chunks, shards and codecs for an array, a workload and a storage.

    Parameters
    ----------
    spec
        A spec file path (YAML/JSON) or mapping; keyword arguments override its entries.
        Or the data itself: an ``xarray.Dataset`` or ``DataArray``, a Dask array or a NumPy
        array (shape, dtype and dims come from it); then the answer is a
        :class:`~chunkwise.plan.dataset.DatasetAdvice`, a layout per variable, whose
        ``to_encoding()`` ``Dataset.to_zarr`` takes as it is.
    array
        ``{"shape": [...], "dtype": "float32", "dims": [...]}``.
    workload
        A preset name (``"slice-viewer"``, ``"time-series"``, ...) or a list of operations.
    storage
        A preset name (``"local-ssd"``, ``"s3"``, ...) or custom values
        (``{"latency": "20ms", "bandwidth": "200MB/s", "concurrency": 16}``).
    reader
        Whose requests and CPU to price: ``"zarr-python-3.1"``, ``"zarr-python-3.4"``,
        ``"tensorstore"``, ``"zarrs"``, or custom reader settings. Default: the reader
        installed here (the zarr-python line, or zarrs when zarr-python is configured
        with its codec pipeline); ``"zarr-python"`` means the same.
    constraints
        ``{"zarr_format": 2, "max_objects": 2000, ...}``; ``{"checksum": True}`` puts a
        crc32c checksum on every chunk (every codec gets ``+crc32c``; zarr format 3).
    codec, codecs
        Fix the codec, or list the codecs to choose among (``"zstd:3+crc32c"`` adds a
        checksum per chunk).
    top
        Number of recommendations.
    profile
        A calibration profile: a file written by ``chunkwise calibrate``, ``"cached"``
        (the one it keeps for the installed reader), or the same as a mapping. Its
        reader (with the per-chunk CPU measured here) applies unless ``reader`` is
        given; its codec profiles apply under the spec's own.
    grid_budget
        Most layouts priced at once in one vectorized grid.
    tie_tolerance
        Relative time difference within which fewer objects rank first.
    dims
        Names for the dims of a NumPy or Dask array (default ``dim_0, dim_1, ...``).

    Returns
    -------
    Advice or DatasetAdvice
        Ranked recommendations with predicted seconds per operation, objects, stored
        bytes and a rationale; for data, a layout per variable with its reason.

    Raises
    ------
    chunkwise.errors.ChunkwiseError
        For any invalid input or unsatisfiable constraints, with a one-sentence message.
    """
    from chunkwise.io.sources.objects import data_object_kind

    if data_object_kind(spec) is not None:
        if array is not None:
            raise SpecError(
                "advise(data, array=...) gives the array twice; the data has its shape and dtype: "
                "drop array=."
            )
        return _advise_data(
            spec, dims=dims, workload=workload, storage=storage, reader=reader,
            constraints=constraints, codec=codec, codecs=codecs, profile=profile,
            grid_budget=grid_budget, tie_tolerance=tie_tolerance,
        )  # fmt: skip
    if dims is not None:
        raise SpecError(
            "dims names the dims of a NumPy or Dask array given to advise; for a spec, give "
            "array={'dims': [...]} instead."
        )
    prob = problem(
        spec,
        array=array,
        workload=workload,
        storage=storage,
        reader=reader,
        constraints=constraints,
        codec=codec,
        codecs=list(codecs) if codecs is not None else None,
        top=top,
        profile=os.fspath(profile) if isinstance(profile, Path) else profile,
    )
    return make_advice(
        prob.array,
        prob.workload,
        prob.storage,
        prob.constraints,
        codecs=prob.codecs,
        codec_profiles=prob.codec_profiles,
        top=prob.top,
        grid_budget=grid_budget,
        tie_tolerance=tie_tolerance,
        candidates=prob.candidates,
    )


def _advise_data(
    data: Any,
    *,
    dims: Sequence[str] | None,
    workload: str | Sequence[Mapping[str, Any]] | None,
    **options: Any,
) -> DatasetAdvice:
    """:func:`advise` for a data object: a layout per variable."""
    from chunkwise.io.sources.objects import dataset_spec
    from chunkwise.model.codec import DEFAULT_CODEC, parse_codec
    from chunkwise.plan.dataset import advise_dataset

    if workload is None:
        raise SpecError(
            "advise(data) needs workload=..., how the data will be read: a preset such as "
            "'time-series' or 'slice-viewer', or a list of operations."
        )
    codec = options.get("codec")
    whole = parse_codec(codec) if codec is not None else DEFAULT_CODEC
    return advise_dataset(
        dataset_spec(data, dims), workload, advise, whole_codec=whole,
        constraints=options.pop("constraints"), **options,
    )  # fmt: skip


#: Recommendations from ``advise`` that ``bench`` measures (plus baselines and candidates).
DEFAULT_BENCH_TOP = 3
#: Random positions per operation in ``bench``.
DEFAULT_REPEATS = 5


def bench(
    spec: str | Path | Mapping[str, Any],
    *,
    data: str,
    store: str = "memory://",
    storage: str | Mapping[str, Any] | None = None,
    region: str | None = None,
    top: int = DEFAULT_BENCH_TOP,
    baselines: bool = True,
    only_candidates: bool = False,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
    warm: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    keep: bool = False,
    progress: Progress | None = None,
    profile: str | Path | Mapping[str, Any] | None = None,
) -> BenchReport:
    """Write candidate layouts from real data onto a store and time the workload on each.

    Parameters
    ----------
    spec
        A spec file path or mapping: the workload, optional constraints, codecs and
        ``candidates:``. Its ``array`` gives generators their shape and dtype; for real
        data, shape and dtype come from the data, and a spec shape that is neither the
        data's nor its ``region``'s is an error.
    data
        ``path.npy``, a Zarr array path/URL (``store.zarr#array`` inside a group),
        ``sample:air-temperature``, or a generator ``synthetic:smooth`` /
        ``synthetic:tomogram``.
    store
        Where layouts are written: a directory, ``memory://``, ``zip:///dir``,
        ``s3://bucket/prefix`` or ``emulated://?latency=20ms&bandwidth=200MB/s``.
    storage
        The storage profile behind the predictions (a preset, mapping, or a ``probe``
        result); by default the benchmarked store's own.
    region
        ``"dim=start:stop,..."``: benchmark a box of a big source.
    top
        How many of ``advise``'s recommendations to measure.
    baselines
        Also measure zarr's ``chunks="auto"``, Dask's 128 MiB auto chunks and the
        rule-of-thumb cubic chunks.
    only_candidates
        Measure only the spec's ``candidates:``.
    repeats
        Random positions per operation (fixed ``seed``; the same for every layout).
    warm
        Also time an immediate re-read of each position.
    storage_options
        fsspec options for ``s3://`` stores and sources (``endpoint_url``, ``key``, ...).
    keep
        Keep the written layouts instead of removing them.
    progress
        Called as ``progress(message, done, total)``.
    profile
        A calibration profile (``chunkwise calibrate``: a file, ``"cached"`` or a
        mapping), or the spec's ``profile:``: its reader is the one priced unless the
        spec names one. (Codec speeds and CPU per chunk are measured by the benchmark
        itself on the data.)

    Returns
    -------
    BenchReport
        Per layout: objects, stored bytes, write time, and per operation the measured
        median, spread and requests next to the prediction.
    """
    from chunkwise.measure.benchmark import benchmark

    spec = _with_profile(spec, profile)
    return benchmark(
        spec, data=data, store=store, storage=storage, region=region, top=top,
        baselines=baselines, only_candidates=only_candidates, repeats=repeats, seed=seed,
        warm=warm, storage_options=storage_options, keep=keep, progress=progress,
        defaults={
            "default_storage": DEFAULT_STORAGE,
            "default_codecs": DEFAULT_CODECS,
            "default_top": DEFAULT_TOP,
        },
        search={"grid_budget": DEFAULT_GRID_BUDGET, "tie_tolerance": DEFAULT_TIE_TOLERANCE},
    )  # fmt: skip


#: Memory budget of rechunk and convert (per worker on Dask).
DEFAULT_MAX_MEM = "256MiB"


def rechunk(
    source: str | Path | Any,
    target: str | Path,
    *,
    chunks: Sequence[int] | None = None,
    shards: Sequence[int] | None = None,
    codec: str | None = None,
    zarr_format: int | None = None,
    workload: str | None = None,
    storage: str | Mapping[str, Any] | None = None,
    max_mem: int | str = DEFAULT_MAX_MEM,
    threads: int | None = None,
    dask: str | None = None,
    overwrite: bool = False,
    verify: Literal["readback", "full", "none"] = "readback",
    engine: str = "auto",
    dry_run: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    events: Events | None = None,
    require_layout: bool = True,
    checksum: bool = False,
    dims: Sequence[str] | None = None,
    skip: Sequence[str] = (),
    ome_zarr: bool = False,
    levels: int | None = None,
    downsample: Sequence[str] | None = None,
    method: Literal["mean", "nearest", "mode"] | None = None,
    units: str | Mapping[str, str] | None = None,
    voxel_size: Sequence[float] | Mapping[str, float] | None = None,
    workers: int | None = None,
) -> ConversionPlan | ConversionResult:
    """Copy an array (or every array of a group) into a new Zarr layout, within a memory
    budget, resumably, and verify the result.

    Parameters
    ----------
    source
        A Zarr array or group (a directory, ``.zip``, ``s3://``, ``https://``; ``#path``
        picks a member), a ``.npy`` file, an HDF5 / NetCDF file (``#path`` picks a
        dataset), a TIFF file, folder or glob, or an MRC tomogram. Or data: an
        ``xarray.Dataset`` or ``DataArray`` (in memory or lazy), a Dask or NumPy array.
    target
        A new directory, ``s3://bucket/prefix`` or ``memory://``.
    chunks, shards
        The target's chunk and shard shapes (``-1``: the whole dim). In a group they apply
        to the arrays with as many dims; small arrays of other shapes become one chunk.
    codec
        ``"blosc:zstd:5:shuffle"``, ``"zstd:3"``, ``"none"``, ...; default: the source's when
        it is Zarr of the same format, else Blosc zstd level 5 with shuffle.
    zarr_format
        2 or 3; default: the source's format (3 for non-Zarr sources, and whenever
        ``shards`` are given).
    workload, storage
        Let ``advise`` choose the layout for a workload preset or spec file on a storage
        preset; the decision is recorded in the target's ``chunkwise`` attribute.
    max_mem
        Memory budget, bytes or ``"256MiB"``: projected peak of the run (per worker on Dask).
    threads
        Tasks at once on the local executor (default: the cores, at most 4).
    dask
        ``"tcp://host:8786"`` or ``"local:N"``: run the tasks on Dask workers instead.
    overwrite
        Replace a target that exists and was not written by this same run.
    verify
        ``"readback"`` (the default: every written region is read back from the target
        and compared bit for bit with the data read for it), ``"full"`` (also compares
        every element of source and target once more at the end; slow when the grids are
        misaligned) or ``"none"``.
    engine
        Who encodes, decodes and stores the chunks: ``"zarrs"`` (the zarrs codec pipeline,
        Rust, for local directories; ``pip install 'chunkwise[zarrs]'``), ``"zarr"``
        (zarr-python's own) or ``"auto"`` (the default: zarrs when installed and the
        target is a local directory, unless its own memory would cost the plan a pass or
        parallel tasks). Every engine writes the same standard Zarr.
    dry_run
        Return the plan without writing anything.
    storage_options
        fsspec options for ``s3://`` sources and targets.
    events
        Called with each :class:`~chunkwise.rechunking.executor.RechunkEvent`.
    require_layout
        Demand ``chunks`` or ``workload`` (``rechunk``); ``convert`` keeps source chunks.
    checksum
        Store a crc32c checksum after the codec of every chunk (zarr v3), so that a chunk
        damaged later fails to read instead of decoding to wrong values (its cost:
        ``chunkwise advise --checksum``).
    dims
        Names for the dims of a source that has none (``.npy``, TIFF, MRC, NumPy, Dask).
    skip
        Paths of arrays (variables) to leave out; the summary lists them.
    ome_zarr
        Write an OME-Zarr image pyramid of the source's one image: NGFF 0.4 on Zarr format
        2 (for v2-only viewers such as vizarr), NGFF 0.5 on format 3. Every level is laid
        out for its own shape (``chunks`` clipped to it, or ``workload``; by default the
        ``pyramid-viewer`` workload), computed from the level below within ``max_mem``,
        resumable, and checked (level 0 bit for bit; sampled blocks of the others against
        an independent recomputation).
    levels
        Levels of the pyramid, level 0 included; default: until the top level is at most
        256 pixels across or fits in one chunk.
    downsample
        Axes that halve at every level, e.g. ``("y", "x")``; default: y and x, and z where
        the voxels are near-isotropic.
    method
        ``"mean"`` (intensity images; the default for numbers), ``"mode"`` (label images:
        the most frequent label of each window; the default for booleans) or
        ``"nearest"`` (the first voxel of each window).
    units
        Units of the axes: one for every space axis (``"nanometer"``), or per axis
        (``{"z": "nanometer", "t": "second"}``); default: from the source (MRC: ångström,
        TIFF resolution tags, an OME-Zarr source's axes), else none.
    voxel_size
        Size of a level-0 voxel per axis, in its unit (one per dim, or per axis name);
        default: from the source, else 1.
    workers
        With ``dry_run``: plan (and estimate requests, dollars and time) for this many
        Dask workers, each running ``threads`` tasks at once (default 1), without starting
        or connecting to a cluster. ``dask="local:N"`` in a dry run plans for N workers
        the same way; ``dask="tcp://..."`` without ``workers`` connects to count them.

    Returns
    -------
    ConversionPlan or ConversionResult
        The plan (``dry_run``), else what the run did: per array tasks run and skipped,
        bytes moved, time, verification and peak memory.

    Raises
    ------
    chunkwise.errors.ChunkwiseError
        For bad input, before anything is written: one sentence naming the problem.
    """
    from chunkwise.errors import ConstraintError
    from chunkwise.io.engines import Engine, choose_engine, using_engine
    from chunkwise.io.locations import check_target_name
    from chunkwise.rechunking.convert import (
        LayoutRequest,
        default_threads,
        largest_task,
        open_target_store,
        plan_conversion,
        run_conversion,
        smallest_region,
    )
    from chunkwise.rechunking.executor import thread_runner
    from chunkwise.units import parse_bytes

    budget = parse_bytes(max_mem, what="max_mem") if isinstance(max_mem, str) else int(max_mem)
    pyramid = _pyramid_request(ome_zarr, levels, downsample, method, units, voxel_size)
    request = LayoutRequest(
        chunks=tuple(chunks) if chunks is not None else None,
        shards=tuple(shards) if shards is not None else None,
        codec=codec,
        zarr_format=zarr_format,
        workload=workload,
        storage=storage,
        require_layout=require_layout,
        checksum=checksum,
        skip=tuple(skip),
        pyramid=pyramid,
    )
    check_target_name(str(target))
    if threads is not None and threads < 1:
        raise SpecError(f"--threads {threads} must be at least 1; omit it to use the cores.")
    planned = _planned_workers(workers, dask, threads, dry_run=dry_run)

    def attempt(chosen: Engine) -> ConversionPlan | ConversionResult:
        """The run with ``chosen`` (its codec pipeline opens every array)."""
        executor = None
        opening = _opened_source(
            source, str(target), storage_options, dims, skip, overwrite=overwrite,
            zarr_format=2 if zarr_format == 2 else 3,
        )  # fmt: skip
        with using_engine(chosen), opening as src:
            if dask is not None and str(target).startswith("memory://"):
                raise SpecError(
                    "--dask workers cannot write to memory://, which lives in this process only; "
                    "give a directory or s3:// target."
                )
            store = None
            try:
                sizing: dict[str, Any]
                if planned is not None:  # a dry run for workers it neither starts nor asks
                    count, per_worker, label = planned
                    sizing = {"threads": per_worker, "executor": label, "workers": count}
                elif dask is not None:
                    from chunkwise.rechunking.dask_executor import connect

                    executor = connect(dask)
                    executor.prepare()
                    executor.check_engine(chosen)
                    sizing = {
                        "threads": executor.threads_per_worker,
                        "executor": executor.describe(),
                        "workers": len(executor.workers),
                    }
                else:
                    sizing = {"threads": threads or default_threads()}

                def planned_with(engine: Engine) -> ConversionPlan:
                    return plan_conversion(
                        src, str(target), request, max_mem=budget, advise=advising,
                        check_levels=verify != "none", engine=engine.describe(), **sizing,
                    )  # fmt: skip

                plan = planned_with(chosen)
                if auto and chosen.name == "zarrs" and _slower_plan(plan, planned_with(plain)):
                    raise _PreferZarr  # zarrs' own memory would cost passes or parallel tasks
                if executor is not None:
                    executor.limit_memory(
                        plan.peak_memory, largest_task(plan), smallest_region(plan)
                    )
                store = open_target_store(str(target), storage_options)
                if dry_run:
                    from chunkwise.rechunking.target import inspect_target

                    claim, _ = inspect_target(
                        store, str(target), plan.fingerprint(), overwrite=overwrite
                    )
                    return replace(plan, target_state=claim.value)
                result = run_conversion(
                    plan, store, overwrite=overwrite, verify=verify,
                    runner=executor.runner if executor is not None else thread_runner,
                    events=events,
                )  # fmt: skip
                if executor is not None:
                    peak, added = executor.memory_peak()
                    result = replace(result, peak_rss=peak, peak_added=added)
                if result.over_budget:
                    import warnings

                    from chunkwise.rechunking.convert import MemoryBudgetWarning

                    warnings.warn(MemoryBudgetWarning(result.budget_warning()), stacklevel=2)
                return result
            finally:
                if executor is not None:
                    executor.close()
                if store is not None:
                    from chunkwise.io.stores import close_sessions

                    close_sessions([store])

    # Planning for two engines (and re-planning after a switch) advises the same arrays
    # for the same workload: once is enough.
    advising = _remembered(advise)
    chosen = choose_engine(engine, str(target), dask)
    plain = choose_engine("zarr", str(target), dask)
    auto = engine.strip().lower() == "auto"
    try:
        return attempt(chosen)
    except (ConstraintError, _PreferZarr):
        if not auto or chosen.name == "zarr":
            raise
        # zarrs' pool holds memory of its own (engine_overhead): under a budget too small
        # for it, or one where it would cost a pass or parallel tasks, auto runs with
        # zarr-python's pipeline instead. Nothing was written yet.
        return attempt(plain)


def _remembered(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` answering a call equal to an earlier one with the earlier answer (arguments
    compared with ``==``: specs need not be hashable)."""
    seen: list[tuple[tuple[Any, ...], dict[str, Any], Any]] = []

    def call(*args: Any, **kwargs: Any) -> Any:
        for before, named, answer in seen:
            with contextlib.suppress(Exception):  # an argument that cannot compare
                if before == args and named == kwargs:
                    return answer
        answer = fn(*args, **kwargs)
        seen.append((args, kwargs, answer))
        return answer

    return call


class _PreferZarr(Exception):
    """``--engine auto``: zarr-python's pipeline makes the better plan under this budget."""


def _slower_plan(plan: ConversionPlan, other: ConversionPlan) -> bool:
    """Whether ``plan`` takes more passes, or runs fewer tasks at once, than ``other``
    (the same arrays planned for another engine) for some array."""
    for mine, theirs in zip(plan.jobs, other.jobs, strict=True):
        if len(mine.plan.stages) > len(theirs.plan.stages):
            return True
        if len(mine.plan.stages) == len(theirs.plan.stages) and any(
            a.parallel < b.parallel
            for a, b in zip(mine.plan.stages, theirs.plan.stages, strict=True)
        ):
            return True
    return False


# -- planning for Dask workers without them (rechunk --workers) ---------------------------


def _local_workers(address: str) -> int | None:
    """N of ``local:N``, or ``None`` for a scheduler's address."""
    text = address.strip()
    if not text.startswith("local:"):
        return None
    count = text.removeprefix("local:")
    if not count.isdigit() or int(count) < 1:
        raise SpecError(f"--dask {address!r} must name a positive number of workers, like local:2.")
    return int(count)


def _planned_workers(
    workers: int | None, dask: str | None, threads: int | None, *, dry_run: bool
) -> tuple[int, int, str] | None:
    """The workers a dry run plans for without starting or asking a cluster, as (workers,
    tasks at once per worker, the executor's description); ``None`` when the plan is
    made for the local threads or for a scheduler's own workers.

    Raises
    ------
    SpecError
        For ``workers`` below 1, given to a run that is not a dry run (unless it is the N
        of ``dask="local:N"``), or contradicting ``local:N``.
    """
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise SpecError(
            f"--workers {workers!r} must be a whole number of Dask workers, at least 1."
        )
    local = _local_workers(dask) if dask is not None else None
    if workers is not None and local is not None and workers != local:
        raise SpecError(
            f"--workers {workers} contradicts --dask {dask}, which means {local} workers; "
            "drop one of them."
        )
    if workers is not None and not dry_run:
        if dask is None:
            raise SpecError(
                f"--workers {workers} plans for Dask workers and needs --dry-run (to see the "
                f"plan) or --dask (e.g. --dask local:{workers}, to run on them)."
            )
        if local is None:
            raise SpecError(
                f"--workers {workers} only plans a --dry-run; a run on --dask {dask} uses the "
                "workers its scheduler has, so drop --workers."
            )
    if not dry_run or (workers is None and local is None):
        return None
    count = workers if workers is not None else local
    assert count is not None
    per_worker = threads or 1
    noun = f"{count} worker{'s' * (count != 1)} x {per_worker} thread{'s' * (per_worker != 1)}"
    if local is not None:
        return count, per_worker, f"a local Dask cluster ({noun}; planned, not started)"
    if dask is not None:
        return count, per_worker, f"Dask at {dask.strip()} ({noun}; planned, not connected)"
    return count, per_worker, f"Dask ({noun}; planned, none started)"


def _pyramid_request(
    ome_zarr: bool,
    levels: int | None,
    downsample: Sequence[str] | None,
    method: str | None,
    units: str | Mapping[str, str] | None,
    voxel_size: Sequence[float] | Mapping[str, float] | None,
) -> PyramidRequest | None:
    """The pyramid asked for, or ``None``; pyramid options without ``ome_zarr`` are an
    error."""
    from chunkwise.plan.pyramid import PyramidRequest

    given = {
        "levels": levels, "downsample": downsample, "method": method, "units": units,
        "voxel_size": voxel_size,
    }  # fmt: skip
    if not ome_zarr:
        named = [name for name, value in given.items() if value is not None]
        if named:
            flags = ", ".join(f"--{n.replace('_', '-')}" for n in named)
            raise SpecError(
                f"{flags} {'shapes' if len(named) == 1 else 'shape'} an OME-Zarr pyramid; add "
                "--ome-zarr (ome_zarr=True), or drop " + ("it." if len(named) == 1 else "them.")
            )
        return None
    if isinstance(units, str) and not units.strip():
        raise SpecError("--units '' names no unit; give one, e.g. --units micrometer, or drop it.")
    if method is not None and method not in ("mean", "nearest", "mode"):
        raise SpecError(f"--method {method!r} is unknown; use mean, nearest or mode.")
    return PyramidRequest(
        levels=levels,
        downsample=tuple(downsample) if downsample is not None else None,
        method=method,  # type: ignore[arg-type]
        units={"": units} if isinstance(units, str) else dict(units or {}),
        voxel_size=(
            dict(voxel_size)
            if isinstance(voxel_size, Mapping)
            else tuple(float(v) for v in voxel_size)
            if voxel_size is not None
            else None
        ),
    )


def _opened_source(
    source: Any,
    target: str,
    storage_options: Mapping[str, Any] | None,
    dims: Sequence[str] | None,
    skip: Sequence[str],
    *,
    overwrite: bool,
    zarr_format: Literal[2, 3],
) -> Any:
    """The source to read, opened: a path or URL, or a data object; never one the target
    overlaps (a Dataset's files included)."""
    from chunkwise.io.locations import check_apart
    from chunkwise.io.sources.objects import (
        data_object_kind,
        lazy_without_source,
        object_paths,
        object_source,
    )
    from chunkwise.io.sources.readers import open_source, with_dims

    if data_object_kind(source) is not None:
        for path in object_paths(source):
            check_apart(path, target)
        if overwrite and lazy_without_source(source):
            raise SpecError(
                "overwrite=True with lazy data whose files chunkwise cannot name (a Dask graph, "
                "or a store opened without encoding['source']): it might be reading the target "
                "it would replace; write to a new target, or load the data first."
            )
        return object_source(source, dims, zarr_format)
    check_apart(str(source), target)
    opened = open_source(str(source), storage_options=storage_options, skip=skip)
    if dims is None:
        return opened
    try:
        return with_dims(opened, tuple(dims))
    except BaseException:
        opened.close()
        raise


def convert(
    source: str | Path | Any, target: str | Path, **options: Any
) -> ConversionPlan | ConversionResult:
    """:func:`rechunk` that keeps the source's chunks unless ``chunks`` or ``workload`` is
    given: convert HDF5, NetCDF, TIFF, MRC or ``.npy`` (or Zarr of another format) to Zarr."""
    options.setdefault("require_layout", False)
    return rechunk(source, target, **options)


def inspect(
    url: str | Path,
    *,
    complete: bool = False,
    workload: str | None = None,
    storage: str | Mapping[str, Any] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    profile: str | Path | Mapping[str, Any] | None = None,
    viewer: str | None = None,
) -> InspectReport:
    """Look at an existing Zarr store: its tree, each array's layout, and performance findings.

    A group whose attributes hold OME-Zarr (NGFF 0.4 or 0.5) ``multiscales`` is reported
    as an image (its axes with types and units, one line per level) and its pyramid is
    linted (rules CW201 ...: missing or uneven levels, a top level too large for a
    viewer's first view, chunks that make a viewer read far more than it shows).

    Parameters
    ----------
    url
        A Zarr array or group: a directory, a ``.zip``, ``s3://bucket/prefix`` or
        ``https://...``.
    complete
        Also list every key with its size (objects, stored bytes, initialized chunks,
        compression ratio per array). By default only metadata documents are read: one
        GET per member (three in Zarr v2), plus one delimited listing per group when the
        metadata is not consolidated.
    workload
        A workload preset (``"slice-viewer"``, ``"time-series"``, ...) or spec file: also
        predict the current layout's seconds per operation, compare them with
        ``advise``'s best layout, and give the ``chunkwise rechunk`` command to get there.
    storage
        The storage the findings and predictions assume: a preset (``"s3"``,
        ``"local-ssd"``, ...) or custom values; default: guessed from the URL.
    storage_options
        fsspec options for remote stores (``endpoint_url``, ``key``, ``anon``, ...).
    profile
        A calibration profile (``chunkwise calibrate``: a file, ``"cached"`` or a
        mapping): findings and comparisons price its reader and codec speeds.
    viewer
        The viewer the OME-Zarr images are for (``"vizarr"``, ``"napari"``,
        ``"neuroglancer"``): a Zarr format it cannot read is a finding (vizarr reads
        format 2 only). Other names are accepted and checked for nothing.

    Returns
    -------
    InspectReport
        Its ``repr`` is the report; ``to_json()`` the machine-readable form, with one entry
        per array under ``arrays`` and per OME-Zarr image under ``images`` (``findings``
        as ``{rule, name, severity, message, fix}``).

    Raises
    ------
    chunkwise.errors.StoreError
        For a path that is not a Zarr store, an unreachable server or corrupt metadata,
        with a one-sentence message.
    """
    from chunkwise.inspection.store import inspect_store

    return inspect_store(
        url, complete=complete, workload=workload, storage=storage,
        storage_options=storage_options, advise=advise, viewer=viewer,
        profile=os.fspath(profile) if isinstance(profile, Path) else profile,
    )  # fmt: skip


#: A traced read covering at least this fraction of a dim spans it (plane, series, scan).
DEFAULT_SPAN_FRACTION = 0.9


@contextmanager
def trace(
    store: Store | None = None, *, span_fraction: float = DEFAULT_SPAN_FRACTION
) -> Iterator[Trace]:
    """Record every store request and array selection of a block of zarr work.

    >>> import zarr, chunkwise
    >>> from zarr.storage import MemoryStore
    >>> store = MemoryStore()
    >>> _ = zarr.create_array(store, shape=(4, 8, 8), chunks=(1, 8, 8), dtype="f4")
    >>> with chunkwise.trace(store) as t:
    ...     arr = zarr.open_array(t.store, mode="r")
    ...     _ = arr[2]
    >>> t.workload().to_spec()["workload"]
    [{'op': 'plane', 'dims': ['dim_1', 'dim_2'], 'weight': 1.0}]

    Parameters
    ----------
    store
        The zarr store to trace; open arrays on ``t.store`` inside the block. ``None``
        traces every store zarr opens inside the block (``zarr.open_array(path)``,
        ``xarray.open_zarr(url)``, ...).
    span_fraction
        A read covering at least this fraction (0-1] of a dim spans it, when the workload
        is inferred: a plane cropped by a few percent is still a plane.

    Yields
    ------
    chunkwise.tracing.trace.Trace
        Filled as the block runs: ``.events`` (store requests with key, byte range, bytes,
        start and duration in seconds), ``.selections`` (per-dim boxes read and written),
        ``.totals_by_op()``, ``.totals_by_array()``, ``.workload()`` (a spec ``advise``
        accepts via ``.to_spec()``) and ``.heatmap()``.

    Notes
    -----
    While a trace is active, zarr's selection functions (and, without a store, its store
    factory) are wrapped; they are restored when the block ends, even on error.
    """
    from chunkwise.tracing.trace import tracing

    with tracing(store, span_fraction=span_fraction) as recorded:
        yield recorded


def trace_script(
    command: Sequence[str], *, span_fraction: float = DEFAULT_SPAN_FRACTION
) -> ScriptRun:
    """Run ``python script.py ARGS`` in this process with every zarr store it opens traced.

    Parameters
    ----------
    command
        ``["python", "analysis.py", "--flag"]`` or ``["python", "-m", "package.module"]``
        (the leading ``python`` is optional). The script runs as ``__main__`` with
        ``sys.argv`` set to its arguments, in this interpreter.
    span_fraction
        A read covering at least this fraction (0-1] of a dim spans it (see :func:`trace`).

    Returns
    -------
    chunkwise.tracing.trace.ScriptRun
        The script's exit code (0, its ``sys.exit`` code, or 1 after an uncaught
        exception, whose traceback is printed to stderr) and the trace.

    Raises
    ------
    chunkwise.errors.ChunkwiseError
        When the command is not a Python script or module that exists.
    """
    from chunkwise.tracing.trace import run_script

    return run_script(command, span_fraction=span_fraction)
