"""Calibrate a reader's CPU costs on this machine, through the reader itself.

The cost model charges every read or write call a fixed time, every chunk a fixed CPU
time (task dispatch, buffer handling, copying into the output) plus codec time per byte.
All depend on the machine, the library and the codec, so :func:`calibrate_codec`
measures them: a sample of the data is written twice, in small and in large chunks, and
each is read and written whole. With ``n`` chunks and ``B`` bytes,
``time = n * per_chunk + B * per_byte``; the two layouts give the two unknowns. A read
of one element (one small chunk) then gives the fixed cost of a call.

Reads go through the reader being calibrated: zarr-python (from memory), or tensorstore
and zarrs (from a local directory in the page cache: both read files themselves). Writes
always go through zarr-python, which writes everything chunkwise stores. Both layouts
are timed in a fresh Python process (:mod:`chunkwise.measure.isolated`), so that what
ran before in this one (a rechunk's allocator settings) does not change the times.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from chunkwise.errors import SpecError
from chunkwise.io.codecs import zarr_compressor
from chunkwise.io.installed import calibration_cache
from chunkwise.measure.isolated import in_fresh_process
from chunkwise.measure.readers import local_reads, reader_family
from chunkwise.measure.results import BenchReport, CodecMeasurement
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import CodecProfile, CodecSpec
from chunkwise.plan.candidates import reference_chunks

__all__ = [
    "FIT_TOLERANCE",
    "Calibration",
    "ProfileFit",
    "calibrate_codec",
    "calibration_cache",
    "calibration_document",
    "fit_reader_costs",
    "measure_codecs",
    "refit_profile",
]

SMALL_CHUNK_BYTES = 16 * 2**10
LARGE_CHUNK_BYTES = 1 * 2**20
SAMPLE_BYTES = 4 * 2**20
#: Chunks the small layout must have beyond the large one for a calibration.
MIN_CHUNK_DIFFERENCE = 16


@dataclass(frozen=True, slots=True)
class Calibration:
    """Per-call, per-chunk and per-byte costs of reading (through the calibrated reader)
    and writing (through zarr-python).

    Attributes
    ----------
    per_chunk_read_s, per_chunk_write_s
        Fixed CPU time per chunk, seconds.
    decode_Bps, encode_Bps
        Effective throughput of the whole read/write path per uncompressed byte, with
        all of the library's threads, bytes/second.
    per_call_read_s
        Fixed time of one read call beyond its chunks (argument checks, indexing plans,
        event-loop round trips, result assembly), seconds.
    """

    per_chunk_read_s: float
    per_chunk_write_s: float
    decode_Bps: float
    encode_Bps: float
    per_call_read_s: float = 0.0


def _best_time(func: Any, repeats: int) -> float:
    """The fastest of ``repeats`` timed calls after a warm-up: other work on the machine
    only ever adds time, so the minimum is the steadiest estimate of the cost itself."""
    func()  # warm-up: the first call pays for imports, thread start-up and allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def _grid(values: np.ndarray[Any, Any], target_bytes: int) -> tuple[tuple[int, ...], int]:
    """Near-cubic chunks of about ``target_bytes`` for ``values``, and how many there are."""
    spec = ArraySpec.create(list(values.shape), str(values.dtype))
    chunks = reference_chunks(spec, target_bytes)
    return chunks, math.prod(-(-n // c) for n, c in zip(values.shape, chunks, strict=True))


def _timings(
    values: np.ndarray[Any, Any],
    codec: CodecSpec,
    chunks: tuple[int, ...],
    repeats: int,
    family: str,
) -> tuple[float, float, float]:
    """Best times of reading ``values`` whole through ``family``, writing it whole through
    zarr-python, and reading its first element through ``family``, chunked by
    ``chunks``, seconds."""
    import zarr

    with contextlib.ExitStack() as stack:
        if family == "zarr-python":
            store: Any = zarr.storage.MemoryStore()
        else:
            folder = Path(tempfile.mkdtemp(prefix="chunkwise-calibrate-"))
            stack.callback(shutil.rmtree, folder, ignore_errors=True)
            store = zarr.storage.LocalStore(folder)
        arr = zarr.create_array(
            store,
            shape=values.shape,
            dtype=values.dtype,
            chunks=chunks,
            compressors=zarr_compressor(codec, values.itemsize, 3),
        )
        write = _best_time(lambda: arr.__setitem__(Ellipsis, values), max(repeats // 2, 1))
        if family == "zarr-python":
            read_all: Any = lambda: arr[...]  # noqa: E731
            read_one: Any = lambda: arr[(0,) * values.ndim]  # noqa: E731
        else:
            reads = local_reads(family, folder, 3)
            read_all = lambda: reads(Ellipsis)  # noqa: E731
            read_one = lambda: reads((0,) * values.ndim)  # noqa: E731
        read = _best_time(read_all, repeats)
        one = _best_time(read_one, repeats * 4)
    return read, write, one


def _layout_timings(
    values: np.ndarray[Any, Any],
    codec: CodecSpec,
    layouts: Sequence[tuple[int, ...]],
    repeats: int,
    family: str,
) -> list[tuple[float, float, float]]:
    """:func:`_timings` of each chunk shape in ``layouts``."""
    return [_timings(values, codec, chunks, repeats, family) for chunks in layouts]


def _solve(
    t_small: float, n_small: int, t_large: float, n_large: int, nbytes: int
) -> tuple[float, float]:
    per_chunk = max((t_small - t_large) / max(n_small - n_large, 1), 0.0)
    per_byte = max(t_large - n_large * per_chunk, 1e-9) / nbytes
    return per_chunk, per_byte


def calibrate_codec(
    sample: np.ndarray[Any, Any],
    codec: CodecSpec,
    *,
    repeats: int = 6,
    reader: str = "zarr-python",
) -> Calibration | None:
    """Measure a reader's per-call, per-chunk and per-byte read costs for ``codec`` here,
    and zarr-python's write costs.

    Returns ``None`` when the sample is too small to tell per-chunk from per-byte costs
    (fewer than :data:`MIN_CHUNK_DIFFERENCE` more chunks in the small layout).

    Parameters
    ----------
    sample
        Representative data of the benchmark's dimensionality (a box of at most
        :data:`SAMPLE_BYTES` is used, chunked near-cubically in 16 KiB and in 1 MiB).
    codec
        The codec to measure.
    repeats
        Timed reads per layout (after one warm-up; half as many writes); the fastest is used.
    reader
        The library that reads: ``"zarr-python"``, ``"tensorstore"`` or ``"zarrs"`` (a
        reader profile's name, such as ``"zarr-python-3.4"``, maps to its library).
    """
    family = reader_family(reader)
    row_bytes = max(sample.nbytes // max(sample.shape[0], 1), 1)
    box = np.ascontiguousarray(sample[: max(SAMPLE_BYTES // row_bytes, 1)])
    small, n_small = _grid(box, SMALL_CHUNK_BYTES)
    large, n_large = _grid(box, LARGE_CHUNK_BYTES)
    if n_small - n_large < MIN_CHUNK_DIFFERENCE:
        return None
    # Timed in a fresh process: what a rechunk left in this one (its allocator settings
    # above all) changes the times (chunkwise.measure.isolated).
    (r_small, w_small, one), (r_large, w_large, _) = in_fresh_process(
        _layout_timings, box, codec, (small, large), repeats, family
    )
    read_chunk, read_byte = _solve(r_small, n_small, r_large, n_large, box.nbytes)
    write_chunk, write_byte = _solve(w_small, n_small, w_large, n_large, box.nbytes)
    small_bytes = box.nbytes / n_small
    per_call = max(one - read_chunk - small_bytes * read_byte, 0.0)
    return Calibration(read_chunk, write_chunk, 1.0 / read_byte, 1.0 / write_byte, per_call)


def measure_codecs(
    sample: np.ndarray[Any, Any],
    codecs: Sequence[CodecSpec],
    *,
    calibrate: bool = True,
    reader: str = "zarr-python",
) -> tuple[dict[CodecSpec, CodecProfile], tuple[CodecMeasurement, ...], list[Calibration]]:
    """Codec ratios from ``sample``, and (with ``calibrate``) the read/write throughputs
    and fixed costs of each codec, calibrated here through ``reader`` (reads) and
    zarr-python (writes).

    Returns the profiles (calibrated speeds where the sample allowed it, single-thread
    codec speeds otherwise), the raw codec measurements, and the calibration of every
    codec that could be calibrated.
    """
    from chunkwise.measure.codecs import profile_codecs

    unique = list(dict.fromkeys(codecs))
    measured = profile_codecs(sample, unique)
    profiles: dict[CodecSpec, CodecProfile] = {}
    calibrations: list[Calibration] = []
    for codec, m in zip(unique, measured, strict=True):
        cal = calibrate_codec(sample, codec, reader=reader) if calibrate else None
        if cal is None:  # not asked, or too little data: single-thread codec speeds
            profiles[codec] = CodecProfile(m.ratio, m.encode_Bps, m.decode_Bps, measured=True)
        else:
            profiles[codec] = CodecProfile(m.ratio, cal.encode_Bps, cal.decode_Bps, measured=True)
            calibrations.append(cal)
    return profiles, measured, calibrations


def _codec_documents(profiles: Mapping[CodecSpec, CodecProfile]) -> dict[str, Any]:
    """A profile file's ``codec_profiles``: ratio and throughputs per codec."""
    from chunkwise.units import spec_rate

    return {
        codec.short: {
            "ratio": float(f"{profile.ratio:.5g}"),
            "encode": spec_rate(profile.encode_Bps),
            "decode": spec_rate(profile.decode_Bps),
            "measured": profile.measured,
        }
        for codec, profile in profiles.items()
    }


def _where() -> dict[str, Any]:
    """Where and when a profile was measured: Python, host, cores, platform, date."""
    import platform
    import sys
    from datetime import UTC, datetime

    return {
        "python": platform.python_version(),
        "machine": platform.node(),
        "cpus": os.cpu_count() or 1,
        "platform": sys.platform,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def calibration_document(
    sample: np.ndarray[Any, Any],
    codecs: Sequence[CodecSpec],
    *,
    description: str,
    reader: str | None = None,
) -> dict[str, Any]:
    """Calibrate a reader on ``sample`` and return a profile document.

    The document is what ``chunkwise calibrate`` writes and ``--profile`` (the spec's
    ``profile:``) reads: the reader's preset with its CPU time per chunk and fixed time
    per call measured here, and per codec the compression ratio and the throughput of
    the whole read path through that reader and write path through zarr-python (all
    their threads; hence ``threads: 1`` in the model), plus where and with what it was
    measured.

    Parameters
    ----------
    sample
        Data to calibrate on (:func:`~chunkwise.measure.codecs.sample_blocks` of the
        user's data, or synthetic data).
    codecs
        The codecs to calibrate.
    description
        What the sample is, for the record.
    reader
        The reader profile to calibrate (``"tensorstore"``, ``"zarrs"``, a
        ``zarr-python-*`` preset); by default the one installed here.

    Raises
    ------
    SpecError
        When the sample is too small to tell per-chunk from per-byte costs, or the
        reader's library is not installed.
    """

    from chunkwise.io.installed import installed_reader
    from chunkwise.spec import parse_reader

    preset = parse_reader(reader).name if reader is not None else installed_reader()
    family = reader_family(preset)
    library = family if family != "zarr-python" else "zarr"
    try:
        version = metadata.version(library)
    except metadata.PackageNotFoundError:
        raise SpecError(
            f"cannot calibrate reader {preset!r}: {library} is not installed here; install "
            f"it (pip install {library}) or calibrate another reader."
        ) from None
    profiles, _, calibrations = measure_codecs(sample, codecs, reader=family)
    if len(calibrations) < len(profiles):
        raise SpecError(
            f"a sample of {sample.nbytes} bytes is too small to calibrate: give at least "
            "1 MiB of data (--data, --sample)."
        )
    per_chunk = statistics.median(c.per_chunk_read_s for c in calibrations)
    per_call = statistics.median(c.per_call_read_s for c in calibrations)
    return {
        "reader": {
            "preset": preset,
            "per_chunk_cpu": f"{per_chunk * 1e3:.4g}ms",
            "per_call": f"{per_call * 1e3:.4g}ms",
            "threads": 1,
        },
        "codec_profiles": _codec_documents(profiles),
        "calibration": {
            "reader": preset,
            "library": f"{library} {version}",
            "zarr": metadata.version("zarr"),
            **_where(),
            "data": description,
        },
    }


@dataclass(frozen=True, slots=True)
class ProfileFit:
    """A reader profile re-fitted to a benchmark's measured reads.

    Attributes
    ----------
    document
        The profile (``reader``, ``codec_profiles``, ``calibration``), as ``chunkwise
        calibrate`` writes it and ``--profile`` reads it.
    operations
        Measured read operations the fit used (every layout's).
    within_before, within_after
        How many of them the model predicted within :data:`FIT_TOLERANCE` of the
        measured mean, with the benchmark's constants and with the fitted ones.
    """

    document: dict[str, Any]
    operations: int
    within_before: int
    within_after: int


#: The agreement counted by :class:`ProfileFit`: measured/predicted within 1/1.25-1.25.
FIT_TOLERANCE = 1.25


def fit_reader_costs(
    measured_s: np.ndarray[Any, Any],
    base_s: np.ndarray[Any, Any],
    slopes: Mapping[str, np.ndarray[Any, Any]],
    current: Mapping[str, float],
) -> dict[str, float]:
    """Non-negative reader times that best explain measured reads, seconds per unit.

    Read ``i`` was measured at ``measured_s[i]``; without the reader's fixed times the
    model predicts ``base_s[i]``, and each time ``k`` adds ``t_k * slopes[k][i]`` (per
    call: 1; per chunk: the chunks charged; per request: the requests). The fit minimizes
    the squared *relative* error ``sum(((measured - base - sum t_k slope_k) / measured)^2)``
    over ``t >= 0``, exactly: every subset of the times is solved by least squares and the
    best feasible one kept. A slope the others already explain (a multiple of them, such
    as the chunks when every read touches as many) keeps its ``current`` time.
    """
    weight = 1.0 / np.maximum(measured_s, 1e-9)
    target = (measured_s - base_s) * weight
    free: list[str] = []
    fixed: dict[str, float] = {}
    for name, slope in slopes.items():
        columns = [slopes[k] * weight for k in free] + [slope * weight]
        if np.linalg.matrix_rank(np.stack(columns, axis=1), tol=1e-9) > len(free):
            free.append(name)
        else:
            fixed[name] = current[name]
            target = target - current[name] * slope * weight

    def solve(names: tuple[str, ...]) -> tuple[float, dict[str, float]] | None:
        values = dict.fromkeys(free, 0.0)
        if names:
            matrix = np.stack([slopes[k] * weight for k in names], axis=1)
            solution = np.linalg.lstsq(matrix, target, rcond=None)[0]
            if np.any(solution < 0):
                return None
            values.update(zip(names, (float(v) for v in solution), strict=True))
        rest = target - sum(values[k] * slopes[k] * weight for k in free)
        return float(np.sum(np.square(rest))), values

    fits = [solve(names) for r in range(len(free) + 1) for names in combinations(free, r)]
    _, best = min((f for f in fits if f is not None), key=lambda f: f[0])
    return {**fixed, **best}


def refit_profile(report: BenchReport) -> ProfileFit:
    """A profile with the priced reader's CPU per chunk, fixed time per call and time per
    request fitted to ``report``'s measured reads (the mean over positions, which the
    model predicts; :func:`fit_reader_costs`).

    What the fit cannot tell apart lands in these constants: a store's own fixed cost per
    call becomes time per call, and a local server's time per request (an emulated link
    served from this machine) time per request. A profile fitted on one store describes
    reads from that store.

    Raises
    ------
    SpecError
        When the benchmark measured no read operation.
    """

    from chunkwise.model.storage import READER_PRESETS

    rows = [
        (op.mean_s, op.predicted_s, op.cpu_chunks, op.predicted_requests)
        for result in report.results
        for op in result.ops
        if op.kind not in ("write", "append")
        and op.times_s
        and op.predicted_s > 0
        and math.isfinite(op.cpu_chunks)
        and math.isfinite(op.predicted_requests)
    ]
    if not rows:
        raise SpecError(
            "bench measured no read operation to fit a profile to; give a workload with "
            "reads (plane, region, series, scan, point)."
        )
    measured, predicted, chunks, requests = (
        np.array(column, dtype=np.float64) for column in zip(*rows, strict=True)
    )
    reader = report.storage.reader
    slopes = {"call": np.ones_like(chunks), "chunk": chunks, "request": requests}
    current = {
        "call": reader.per_call_s, "chunk": reader.per_chunk_cpu_s,
        "request": reader.per_request_s,
    }  # fmt: skip
    base = predicted - sum(current[k] * slopes[k] for k in slopes)
    times = fit_reader_costs(measured, base, slopes, current)
    fitted = base + sum(times[k] * slopes[k] for k in slopes)

    def within(prediction: np.ndarray[Any, Any]) -> int:
        ratio = measured / np.maximum(prediction, 1e-12)
        return int(np.sum((ratio <= FIT_TOLERANCE) & (ratio >= 1 / FIT_TOLERANCE)))

    settings: dict[str, Any] = {"preset": reader.name} if reader.name in READER_PRESETS else {
        "preset": "installed", "name": reader.name,
    }  # fmt: skip
    settings.update(
        per_chunk_cpu=f"{times['chunk'] * 1e3:.4g}ms",
        per_call=f"{times['call'] * 1e3:.4g}ms",
        per_request=f"{times['request'] * 1e3:.4g}ms",
        threads=reader.threads,
    )
    document = {
        "reader": settings,
        "codec_profiles": _codec_documents(report.codec_profiles),
        "calibration": {
            "source": "chunkwise bench",
            "reader": reader.name,
            "measured_through": report.measured_reader,
            "store": report.store,
            "storage": report.storage.name,
            "operations": len(rows),
            f"within_{FIT_TOLERANCE}x": {"before": within(predicted), "after": within(fitted)},
            **_where(),
            "data": report.data.description,
        },
    }
    return ProfileFit(document, len(rows), within(predicted), within(fitted))
