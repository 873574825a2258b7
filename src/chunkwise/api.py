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

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chunkwise.plan.advice import Advice, make_advice
from chunkwise.spec import Problem, load_spec, problem_from_spec

if TYPE_CHECKING:
    from chunkwise.engine.results import BenchReport, Progress

__all__ = [
    "DEFAULT_BENCH_TOP",
    "DEFAULT_CODECS",
    "DEFAULT_GRID_BUDGET",
    "DEFAULT_REPEATS",
    "DEFAULT_STORAGE",
    "DEFAULT_TIE_TOLERANCE",
    "DEFAULT_TOP",
    "advise",
    "bench",
    "problem",
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


def advise(
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
    grid_budget: int = DEFAULT_GRID_BUDGET,
    tie_tolerance: float = DEFAULT_TIE_TOLERANCE,
) -> Advice:
    """Recommend chunks, shards and codecs for an array, a workload and a storage.

    Parameters
    ----------
    spec
        A spec file path (YAML/JSON) or mapping; keyword arguments override its entries.
    array
        ``{"shape": [...], "dtype": "float32", "dims": [...]}``.
    workload
        A preset name (``"slice-viewer"``, ``"time-series"``, ...) or a list of operations.
    storage
        A preset name (``"local-ssd"``, ``"s3"``, ...) or custom values
        (``{"latency": "20ms", "bandwidth": "200MB/s", "concurrency": 16}``).
    reader
        ``"zarr-python"`` (default) or ``"tensorstore"``, or custom reader settings.
    constraints
        ``{"zarr_format": 2, "max_objects": 2000, ...}``.
    codec, codecs
        Fix the codec, or list the codecs to choose among.
    top
        Number of recommendations.
    grid_budget
        Most layouts priced at once in one vectorized grid.
    tie_tolerance
        Relative time difference within which fewer objects rank first.

    Returns
    -------
    Advice
        Ranked recommendations with predicted seconds per operation, objects, stored
        bytes and a rationale.

    Raises
    ------
    chunkwise.errors.ChunkwiseError
        For any invalid input or unsatisfiable constraints, with a one-sentence message.
    """
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
) -> BenchReport:
    """Write candidate layouts from real data onto a store and time the workload on each.

    Parameters
    ----------
    spec
        A spec file path or mapping: the workload, optional constraints, codecs and
        ``candidates:``. Its ``array`` gives generators their shape and dtype; for real
        data, shape and dtype come from the data.
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

    Returns
    -------
    BenchReport
        Per layout: objects, stored bytes, write time, and per operation the measured
        median, spread and requests next to the prediction.
    """
    from chunkwise.engine.benchmark import benchmark

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
