"""``chunkwise bench`` end to end: spec + data + store -> candidates -> measurements -> report.

The storage profile behind the predictions describes the store being benchmarked, not
the one named in the spec: an explicit ``storage`` wins; an emulated store knows its
own; memory, local and zip stores use ``local-ssd``; S3 uses the spec's storage when it
is an object store, else ``s3``. ``advise`` runs with that same profile and with codec
profiles measured on a sample of the data, so its recommendations and the predictions
next to each measurement answer to the store and data at hand.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

from chunkwise.errors import ChunkwiseError, SpecError
from chunkwise.io.sources.data import MAX_GENERATED_BYTES, BenchData, load_data
from chunkwise.io.stores import StoreTarget, open_target
from chunkwise.measure.calibrate import measure_codecs
from chunkwise.measure.codecs import sample_blocks
from chunkwise.measure.readers import choose_reader, zarr_python_label
from chunkwise.measure.results import BenchReport, CodecMeasurement, Progress
from chunkwise.measure.runner import (
    Candidate,
    dask_auto_chunks,
    run_candidates,
    study_operations,
    zarr_auto_chunks,
)
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import CodecProfile, CodecSpec
from chunkwise.model.layout import Layout
from chunkwise.model.storage import ReaderProfile, StorageProfile
from chunkwise.plan.advice import Advice, make_advice
from chunkwise.spec import Problem, load_spec, parse_storage, problem_from_spec
from chunkwise.units import format_bytes

__all__ = ["benchmark", "choose_candidates", "machine_info"]


def _spec_for_data(spec: Mapping[str, Any], data: BenchData) -> tuple[dict[str, Any], list[str]]:
    """The spec re-aimed at the data actually written: its shape and dtype; region extents,
    candidate chunks and shards clipped to it (with a note for each clipped candidate)."""
    out = dict(spec)
    values = data.values
    declared = dict(spec.get("array") or {})
    rank = len(declared.get("dims") or declared.get("shape") or ())
    if rank and rank != values.ndim:
        raise SpecError(
            f"the spec's array has {rank} dims but the data from {data.info.source!r} has "
            f"{values.ndim} (shape {tuple(values.shape)}); make the spec's array match the data."
        )
    dims = declared.get("dims") or list(data.dims or [f"dim_{i}" for i in range(values.ndim)])
    out["array"] = {"shape": list(values.shape), "dtype": str(values.dtype), "dims": list(dims)}
    sizes = dict(zip(dims, values.shape, strict=True))
    workload = spec.get("workload")
    if isinstance(workload, list):
        clipped = []
        for entry in workload:
            if isinstance(entry, Mapping) and isinstance(entry.get("extent"), Mapping):
                extent = {
                    d: min(int(e), sizes.get(str(d), int(e))) for d, e in entry["extent"].items()
                }
                entry = {**entry, "extent": extent}
            clipped.append(entry)
        out["workload"] = clipped
    notes = []
    candidates = []
    for i, cand in enumerate(spec.get("candidates") or [], start=1):
        if isinstance(cand, Mapping):
            fitted = dict(cand)
            chunks = cand.get("chunks")
            if isinstance(chunks, list) and len(chunks) == values.ndim:
                chunks = fitted["chunks"] = [min(c, n) if isinstance(c, int) else c
                                             for c, n in zip(chunks, values.shape, strict=True)]  # fmt: skip
            shards = cand.get("shards")
            if isinstance(shards, list) and len(shards) == values.ndim:
                # A shard may reach past the array's end to the next multiple of the chunk
                # (8x52x52 chunks in 128x260x260 shards of a 128x256x256 array): cut it there.
                inner = chunks if isinstance(chunks, list) and len(chunks) == len(shards) else shards  # fmt: skip
                fitted["shards"] = [
                    min(s, -(-n // c) * c) if isinstance(s, int) and isinstance(c, int) and c > 0 else s
                    for s, c, n in zip(shards, inner, values.shape, strict=True)
                ]  # fmt: skip
            if fitted != dict(cand):
                notes.append(
                    f"{cand.get('name') or f'candidate {i}'}: chunks/shards cut to the data's "
                    f"shape {tuple(values.shape)}."
                )
            cand = fitted
        candidates.append(cand)
    if candidates:
        out["candidates"] = candidates
    return out, notes


def _check_in_memory(prob: Problem) -> None:
    """Points are drawn and appended slabs made in memory, once per repeat: refuse an op
    that would need more than a benchmark holds."""
    array = prob.array
    for op in prob.workload.ops:
        if op.kind == "point":  # one int64 coordinate per dim and the value, per point
            need = op.count * (8 * array.ndim + array.itemsize)
        elif op.kind == "append":
            need = math.prod(op.extent) * array.itemsize
        else:
            continue
        if need > MAX_GENERATED_BYTES:
            raise SpecError(
                f"workload op {op.name} needs {format_bytes(need)} in memory to benchmark, more "
                f"than the {format_bytes(MAX_GENERATED_BYTES)} bench holds; give it a smaller "
                "count or size (advise prices the full one)."
            )


def _bench_storage(
    target: StoreTarget, spec: Mapping[str, Any], storage: object | None
) -> StorageProfile:
    reader = spec.get("reader")
    if storage is not None:
        return parse_storage(storage, reader)
    known = target.known_profile()
    if known is not None:  # the emulation's own numbers, read by the installed reader
        return parse_storage(known, reader if reader is not None else "installed")
    if target.kind == "s3":
        declared = parse_storage(spec.get("storage", "s3"), reader)
        return declared if declared.kind == "object" else parse_storage("s3", reader)
    return parse_storage("local-ssd", reader)


def _measured_profiles(
    data: BenchData, codecs: Sequence[CodecSpec], reader: ReaderProfile, measuring: str
) -> tuple[dict[CodecSpec, CodecProfile], tuple[CodecMeasurement, ...], ReaderProfile, bool]:
    """Codec ratios from the data; CPU costs per call, per chunk and per byte calibrated
    through ``measuring``, the library that reads (``"zarr-python"``, ``"tensorstore"``,
    ``"zarrs"``); the reader's own costs and single-thread codec speeds on every core
    when the data is too small to calibrate."""
    profiles, measured, calibrations = measure_codecs(
        sample_blocks(data.values), codecs, reader=measuring
    )
    if not calibrations:
        return profiles, measured, replace(reader, threads=os.cpu_count() or 1), False
    # Calibrated throughputs already use all of the library's threads: one "thread".
    calibrated = replace(
        reader,
        per_chunk_cpu_s=statistics.median(c.per_chunk_read_s for c in calibrations),
        per_call_s=statistics.median(c.per_call_read_s for c in calibrations),
        threads=1,
    )
    return profiles, measured, calibrated, True


def _baselines(
    array: ArraySpec, codec: CodecSpec, zarr_format: int, reference: Layout
) -> tuple[list[Candidate], list[str]]:
    notes: list[str] = []
    out = [
        Candidate(
            "zarr auto",
            "baseline",
            Layout.create(
                array, zarr_auto_chunks(array, zarr_format), codec=codec, zarr_format=zarr_format
            ),
        )
    ]
    try:
        chunks = dask_auto_chunks(array)
    except ChunkwiseError as exc:
        notes.append(f"Dask baseline skipped: {exc}")
    else:
        out.append(
            Candidate(
                "dask auto",
                "baseline",
                Layout.create(array, chunks, codec=codec, zarr_format=zarr_format),
            )
        )
    out.append(Candidate("rule of thumb", "baseline", reference))
    return out, notes


def choose_candidates(
    advice: Advice | None,
    prob: Problem,
    names: Sequence[str | None],
    *,
    baselines: bool,
) -> tuple[list[Candidate], list[str]]:
    """advise's top layouts, the baselines, and the spec's named layouts, without repeats.

    A layout reached by several routes is benchmarked once, under its first name.
    """
    found: list[Candidate] = []
    notes: list[str] = []
    if advice is not None:
        found += [
            Candidate(f"advise #{r.rank}", "advise", r.layout) for r in advice.recommendations
        ]
        if baselines:
            codec = advice.best.layout.codec
            fmt = prob.constraints.zarr_format or 3
            more, notes = _baselines(prob.array, codec, fmt, advice.reference.layout)
            found += more
    for i, (layout, name) in enumerate(zip(prob.candidates, names, strict=True), start=1):
        found.append(Candidate(name or f"candidate {i}", "candidate", layout))
    unique: dict[Layout, Candidate] = {}
    for cand in found:
        if cand.layout in unique:
            notes.append(f"{cand.name} is the same layout as {unique[cand.layout].name}.")
        else:
            unique[cand.layout] = cand
    return list(unique.values()), notes


def machine_info() -> dict[str, Any]:
    """CPU count, platform and library versions, for reports."""
    versions = {}
    for package in ("chunkwise", "zarr", "numcodecs", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "versions": versions,
    }


def benchmark(
    spec: str | Path | Mapping[str, Any],
    *,
    data: str,
    store: str,
    storage: object | None = None,
    region: str | None = None,
    top: int = 3,
    baselines: bool = True,
    only_candidates: bool = False,
    repeats: int = 5,
    seed: int = 0,
    warm: bool = True,
    storage_options: Mapping[str, Any] | None = None,
    keep: bool = False,
    progress: Progress | None = None,
    defaults: Mapping[str, Any],
    search: Mapping[str, Any],
) -> BenchReport:
    """Run a benchmark; see :func:`chunkwise.bench` for the parameters."""
    raw = dict(load_spec(spec) if isinstance(spec, str | Path) else spec)
    declared = None
    if isinstance(raw.get("array"), Mapping):
        a = raw["array"]
        declared = ArraySpec.create(a.get("shape", []), a.get("dtype"), a.get("dims"))
    # Cheap checks first: a wrong store or flag fails before any data is read or generated.
    if repeats < 1:
        raise SpecError(f"repeats {repeats!r} must be at least 1.")
    if seed < 0:
        raise SpecError(f"seed {seed!r} must be a non-negative integer, like 0.")
    if only_candidates and not raw.get("candidates"):
        raise SpecError(
            "--only-candidates needs layouts under 'candidates:' in the spec, like "
            "{zarr_format: 3, chunks: [...], shards: [...], codec: blosc:zstd:5:shuffle}."
        )
    target = open_target(store, storage_options)
    loaded = load_data(
        data, array=declared, region=region, seed=seed, storage_options=storage_options
    )
    bench_spec, fit_notes = _spec_for_data(raw, loaded)
    bench_spec["top"] = top
    prob = problem_from_spec(bench_spec, **defaults)
    _check_in_memory(prob)
    storage_profile = _bench_storage(target, bench_spec, storage)
    measuring = choose_reader(storage_profile.reader.name, target)
    codecs = list(prob.codecs) + [c.codec for c in prob.candidates]
    profiles, measurements, reader, calibrated = _measured_profiles(
        loaded, codecs, storage_profile.reader, measuring.family
    )
    prob = replace(
        prob,
        storage=storage_profile.with_reader(reader),
        codec_profiles={**prob.codec_profiles, **profiles},
    )
    advice = None
    if not only_candidates:
        advice = make_advice(
            prob.array, prob.workload, prob.storage, prob.constraints,
            codecs=prob.codecs, codec_profiles=prob.codec_profiles, top=prob.top,
            candidates=prob.candidates, **search,
        )  # fmt: skip
    raw_candidates = bench_spec.get("candidates") or []
    names = [c.get("name") if isinstance(c, Mapping) else None for c in raw_candidates]
    candidates, notes = choose_candidates(advice, prob, names, baselines=baselines)
    notes = fit_notes + notes
    ops = study_operations(prob.workload, prob.array)
    try:
        results = run_candidates(
            loaded.values, prob.array, ops, prob.storage, target, candidates,
            dict(prob.codec_profiles), repeats=repeats, seed=seed, warm=warm, progress=progress,
            reader=measuring,
        )  # fmt: skip
    except BaseException:
        if not keep:
            with contextlib.suppress(Exception):  # never hide the error that stopped the run
                target.cleanup()
        raise
    if not keep:
        target.cleanup()
    if keep and target.root:
        notes.append(f"Layouts kept under {target.root}/{target.run_id}.")
    cpu = (
        f"CPU costs calibrated through {measuring.label} on this machine "
        f"({prob.storage.reader.per_chunk_cpu_s * 1e3:.2f} ms per chunk, "
        f"{prob.storage.reader.per_call_s * 1e3:.2f} ms per call)"
        if calibrated
        else "the reader's default CPU costs and single-thread codec speeds on "
        f"{prob.storage.reader.threads} cores (too little data to calibrate)"
    )
    if measuring.note:
        notes.append(measuring.note)
    for result in results:
        notes.extend(result.reader_notes)
    notes.append(
        f"Predictions use the storage profile '{prob.storage.name}' read by "
        f"{prob.storage.reader.name}, with compression ratios measured on a sample of the "
        f"data and {cpu}."
    )
    if declared is not None and declared.shape != prob.array.shape:
        notes.append(
            f"The spec describes a {declared.shape} array; the benchmark ran on the data's "
            f"{prob.array.shape}."
        )
    return BenchReport(
        title=str(raw.get("name") or f"chunkwise bench: {loaded.info.description}"),
        data=loaded.info,
        array=prob.array,
        workload=prob.workload,
        storage=prob.storage,
        store=target.describe(),
        results=results,
        recommendation=advice.best.layout.label() if advice is not None else None,
        rationale=advice.best.rationale if advice is not None else (),
        codecs=measurements,
        repeats=repeats,
        seed=seed,
        machine=machine_info(),
        notes=tuple(notes),
        measured_reader=measuring.label,
        written_by=zarr_python_label(),
        codec_profiles=dict(prob.codec_profiles),
    )
