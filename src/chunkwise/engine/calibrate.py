"""Calibrate the reader's CPU costs on this machine, through zarr-python itself.

The cost model charges every chunk a fixed CPU time (task dispatch, buffer handling,
copying into the output) plus codec time per byte. Both depend on the machine and the
codec, so :func:`calibrate_codec` measures them: a sample of the data is written to an
in-memory store twice, in small and in large chunks, and each is read and written whole.
With ``n`` chunks and ``B`` bytes, ``time = n * per_chunk + B * per_byte``; the two
layouts give the two unknowns.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from chunkwise.adapters.zarr_codecs import zarr_compressor
from chunkwise.engine.results import CodecMeasurement
from chunkwise.errors import SpecError
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import CodecProfile, CodecSpec
from chunkwise.plan.candidates import reference_chunks

__all__ = [
    "Calibration",
    "calibrate_codec",
    "calibration_cache",
    "calibration_document",
    "measure_codecs",
]

SMALL_CHUNK_BYTES = 16 * 2**10
LARGE_CHUNK_BYTES = 1 * 2**20
SAMPLE_BYTES = 4 * 2**20
#: Chunks the small layout must have beyond the large one for a calibration.
MIN_CHUNK_DIFFERENCE = 16


@dataclass(frozen=True, slots=True)
class Calibration:
    """Per-chunk and per-byte costs of reading and writing through zarr-python.

    Attributes
    ----------
    per_chunk_read_s, per_chunk_write_s
        Fixed CPU time per chunk, seconds.
    decode_Bps, encode_Bps
        Effective throughput of the whole read/write path per uncompressed byte, with
        all of zarr's threads, bytes/second.
    """

    per_chunk_read_s: float
    per_chunk_write_s: float
    decode_Bps: float
    encode_Bps: float


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
    values: np.ndarray[Any, Any], codec: CodecSpec, chunks: tuple[int, ...], repeats: int
) -> tuple[float, float]:
    """Best read and write times of ``values`` chunked by ``chunks``, in memory, seconds."""
    import zarr

    arr = zarr.create_array(
        zarr.storage.MemoryStore(),
        shape=values.shape,
        dtype=values.dtype,
        chunks=chunks,
        compressors=zarr_compressor(codec, values.itemsize, 3),
    )
    write = _best_time(lambda: arr.__setitem__(Ellipsis, values), max(repeats // 2, 1))
    read = _best_time(lambda: arr[...], repeats)
    return read, write


def _solve(
    t_small: float, n_small: int, t_large: float, n_large: int, nbytes: int
) -> tuple[float, float]:
    per_chunk = max((t_small - t_large) / max(n_small - n_large, 1), 0.0)
    per_byte = max(t_large - n_large * per_chunk, 1e-9) / nbytes
    return per_chunk, per_byte


def calibrate_codec(
    sample: np.ndarray[Any, Any], codec: CodecSpec, *, repeats: int = 6
) -> Calibration | None:
    """Measure zarr-python's per-chunk and per-byte read/write costs for ``codec`` here.

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
    """
    row_bytes = max(sample.nbytes // max(sample.shape[0], 1), 1)
    box = np.ascontiguousarray(sample[: max(SAMPLE_BYTES // row_bytes, 1)])
    small, n_small = _grid(box, SMALL_CHUNK_BYTES)
    large, n_large = _grid(box, LARGE_CHUNK_BYTES)
    if n_small - n_large < MIN_CHUNK_DIFFERENCE:
        return None
    r_small, w_small = _timings(box, codec, small, repeats)
    r_large, w_large = _timings(box, codec, large, repeats)
    read_chunk, read_byte = _solve(r_small, n_small, r_large, n_large, box.nbytes)
    write_chunk, write_byte = _solve(w_small, n_small, w_large, n_large, box.nbytes)
    return Calibration(read_chunk, write_chunk, 1.0 / read_byte, 1.0 / write_byte)


def measure_codecs(
    sample: np.ndarray[Any, Any], codecs: Sequence[CodecSpec], *, calibrate: bool = True
) -> tuple[dict[CodecSpec, CodecProfile], tuple[CodecMeasurement, ...], list[float]]:
    """Codec ratios from ``sample``, and (with ``calibrate``) the zarr-python read/write
    throughputs and CPU per chunk of each codec, calibrated through zarr here.

    Returns the profiles (calibrated speeds where the sample allowed it, single-thread
    codec speeds otherwise), the raw codec measurements, and the per-chunk read CPU of
    every codec that could be calibrated, seconds.
    """
    from chunkwise.engine.codecs import profile_codecs

    unique = list(dict.fromkeys(codecs))
    measured = profile_codecs(sample, unique)
    profiles: dict[CodecSpec, CodecProfile] = {}
    per_chunk: list[float] = []
    for codec, m in zip(unique, measured, strict=True):
        cal = calibrate_codec(sample, codec) if calibrate else None
        if cal is None:  # not asked, or too little data: single-thread codec speeds
            profiles[codec] = CodecProfile(m.ratio, m.encode_Bps, m.decode_Bps, measured=True)
        else:
            profiles[codec] = CodecProfile(m.ratio, cal.encode_Bps, cal.decode_Bps, measured=True)
            per_chunk.append(cal.per_chunk_read_s)
    return profiles, measured, per_chunk


def calibration_document(
    sample: np.ndarray[Any, Any], codecs: Sequence[CodecSpec], *, description: str
) -> dict[str, Any]:
    """Calibrate the installed reader on ``sample`` and return a profile document.

    The document is what ``chunkwise calibrate`` writes and ``--profile`` (the spec's
    ``profile:``) reads: the installed reader's preset with its per-chunk CPU time
    measured here, and per codec the compression ratio and the throughput of the whole
    read and write path through zarr-python (all its threads; hence ``threads: 1`` in the
    model), plus where and with what it was measured.

    Parameters
    ----------
    sample
        Data to calibrate on (:func:`~chunkwise.engine.codecs.sample_blocks` of the
        user's data, or synthetic data).
    codecs
        The codecs to calibrate.
    description
        What the sample is, for the record.

    Raises
    ------
    SpecError
        When the sample is too small to tell per-chunk from per-byte costs.
    """
    import platform
    import sys
    from datetime import UTC, datetime

    from chunkwise.engine.installed import installed_reader
    from chunkwise.units import spec_rate

    profiles, _, per_chunk = measure_codecs(sample, codecs)
    if len(per_chunk) < len(profiles):
        raise SpecError(
            f"a sample of {sample.nbytes} bytes is too small to calibrate: give at least "
            "1 MiB of data (--data, --sample)."
        )
    reader = installed_reader()
    return {
        "reader": {
            "preset": reader,
            "per_chunk_cpu": f"{statistics.median(per_chunk) * 1e3:.4g}ms",
            "threads": 1,
        },
        "codec_profiles": {
            codec.short: {
                "ratio": float(f"{profile.ratio:.5g}"),
                "encode": spec_rate(profile.encode_Bps),
                "decode": spec_rate(profile.decode_Bps),
                "measured": True,
            }
            for codec, profile in profiles.items()
        },
        "calibration": {
            "reader": reader,
            "zarr": metadata.version("zarr"),
            "python": platform.python_version(),
            "machine": platform.node(),
            "cpus": os.cpu_count() or 1,
            "platform": sys.platform,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "data": description,
        },
    }


def calibration_cache(reader: str) -> Path:
    """Where ``chunkwise calibrate`` keeps the profile of ``reader`` on this machine:
    ``$XDG_CACHE_HOME/chunkwise/`` (``~/.cache/chunkwise/``), one file per reader."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "chunkwise" / f"calibration-{reader}.yaml"
