"""Hand-built, realistic :class:`BenchReport` values for the report renderers' tests.

A 256³ float32 tomogram read as y-x planes (60%) and 32³ regions (40%) on S3, five
layouts (advise's pick, three baselines, one user candidate), five repeats per
operation, plus a full-scan study column. Numbers are plausible, not measured.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace

from chunkwise.measure.results import (
    BenchReport,
    CodecMeasurement,
    DataInfo,
    LayoutResult,
    OpMeasurement,
)
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import parse_codec
from chunkwise.model.layout import Layout
from chunkwise.model.storage import STORAGE_PRESETS
from chunkwise.model.workload import Workload

ARRAY = ArraySpec.create((256, 256, 256), "float32", ("z", "y", "x"))
CODEC = parse_codec("blosc:zstd:5:shuffle")
REPEATS = 5

# name, source, zarr_format, chunks, shards, compression ratio, measured/predicted bias,
# predicted (seconds, requests) for plane[y,x], region[32x32x32], scan; predicted write.
_LAYOUTS: tuple[tuple[object, ...], ...] = (
    ("advise #1", "advise", 3, (8, 128, 128), (64, 256, 256), 1.27, 1.08,
     (0.046, 5.0), (0.118, 6.3), (1.95, 4.0), 2.4),
    ("zarr auto", "baseline", 3, (32, 32, 64), None, 1.24, 1.3,
     (0.142, 32.0), (0.071, 13.2), (2.9, 512.0), 3.1),
    ("dask auto", "baseline", 2, (128, 128, 128), None, 1.31, 0.75,
     (0.118, 8.0), (0.064, 1.7), (0.98, 8.0), 1.6),
    ("rule of thumb", "baseline", 3, (64, 64, 64), None, 1.29, 0.95,
     (0.095, 16.0), (0.083, 3.4), (1.2, 64.0), 1.9),
    ("candidate 1", "candidate", 3, (32, 32, 32), (128, 128, 128), 1.22, 0.7,
     (0.21, 33.0), (0.11, 9.0), (1.6, 8.0), 2.2),
)  # fmt: skip

WORKLOAD = Workload.from_spec(
    [
        {"op": "plane", "dims": ["y", "x"], "weight": 0.6},
        {"op": "region", "extent": {"z": 32, "y": 32, "x": 32}, "weight": 0.4},
    ],
    ARRAY,
)


def _times(rng: random.Random, predicted_s: float, bias: float) -> tuple[float, ...]:
    return tuple(predicted_s * bias * math.exp(rng.gauss(0.0, 0.12)) for _ in range(REPEATS))


def _ops(
    rng: random.Random, bias: float, predictions: list[tuple[float, float]], count_scan: bool
) -> tuple[OpMeasurement, ...]:
    kinds = [(op.name, op.kind, op.weight) for op in WORKLOAD.ops] + [("scan", "scan", 0.0)]
    out = []
    for (name, kind, weight), (seconds, requests) in zip(kinds, predictions, strict=True):
        counted = (
            requests * (1.0 + 0.05 * rng.random()) if count_scan or kind != "scan" else math.nan
        )
        out.append(
            OpMeasurement(
                name=name,
                kind=kind,
                weight=weight,
                predicted_s=seconds,
                times_s=_times(rng, seconds, bias),
                warm_times_s=_times(rng, seconds * 0.6, bias),
                requests=counted,
                predicted_requests=requests,
            )
        )
    return tuple(out)


def _result(index: int, row: tuple[object, ...], name: str) -> LayoutResult:
    _, source, fmt, chunks, shards, ratio, bias, plane, region, scan, write = row
    assert isinstance(ratio, float) and isinstance(bias, float) and isinstance(write, float)
    layout = Layout.create(
        ARRAY,
        chunks,  # type: ignore[arg-type]
        shards=shards,  # type: ignore[arg-type]
        codec=CODEC,
        zarr_format=fmt,  # type: ignore[arg-type]
    )
    rng = random.Random(index)
    predictions = [plane, region, scan]
    ops = _ops(rng, bias, predictions, count_scan=name != "rule of thumb")  # type: ignore[arg-type]
    predicted_weighted = sum(op.weight * op.predicted_s for op in ops)
    return LayoutResult(
        name=name,
        source=str(source),
        layout=layout,
        data_objects=layout.data_objects(ARRAY),
        metadata_objects=layout.metadata_objects(),
        stored_bytes=round(ARRAY.nbytes / ratio),
        raw_bytes=ARRAY.nbytes,
        write_s=write * bias * 1.1,
        predicted_write_s=write,
        ops=ops,
        predicted_weighted_s=predicted_weighted,
    )


def sample_report(*, synthetic: bool = False, names: dict[str, str] | None = None) -> BenchReport:
    """A realistic benchmark of five layouts.

    Parameters
    ----------
    synthetic
        Whether the data is marked as generated.
    names
        Renames of layouts (``{"candidate 1": "<script>..."}``), to test escaping.
    """
    renames = names or {}
    results = tuple(
        _result(i, row, renames.get(str(row[0]), str(row[0]))) for i, row in enumerate(_LAYOUTS)
    )
    data = (
        DataInfo("random:gaussian-blobs", "smooth random blobs with noise", True)
        if synthetic
        else DataInfo("tomo_0042.mrc", "cryo-ET tomogram of a yeast cell, binned 4x", False)
    )
    return BenchReport(
        title="Chunking benchmark: 256³ tomogram on S3",
        data=data,
        array=ARRAY,
        workload=WORKLOAD,
        storage=STORAGE_PRESETS["s3"],
        store="s3://chunkwise-bench/tomo_0042 (us-east-1, from an m6i.xlarge in the same region)",
        results=results,
        recommendation=results[0].layout.label(),
        rationale=(
            "Predicted 74.7 ms per operation (weighted), 1.21x faster than the rule-of-thumb "
            "chunks 64x64x64 (90.6 ms, 65 objects).",
            "Planes across y, x (60% of the work): touch 2 chunks along y instead of 4; "
            "5 requests instead of 16, predicted 46 ms.",
            "32x32x32 regions (40% of the work): predicted 118 ms, 1.42x slower than the rule "
            "of thumb (83 ms): the price of the planes.",
            "Shards of 64x256x256 hold 32 chunks each: 5 objects instead of 128 unsharded.",
        ),
        codecs=(
            CodecMeasurement("blosc:zstd:5:shuffle", 1.27, 310e6, 1.45e9, 16 * 2**20),
            CodecMeasurement("blosc:lz4:5:shuffle", 1.18, 1.2e9, 2.9e9, 16 * 2**20),
        ),
        repeats=REPEATS,
        seed=42,
        machine={
            "platform": "Linux-6.1.0-18-cloud-amd64-x86_64",
            "cpus": 4,
            "python": "3.11.2",
            "versions": {"chunkwise": "0.1.0", "zarr": "3.1.3", "numcodecs": "0.16.1"},
            "command": "chunkwise bench tomo.yaml --data tomo_0042.mrc "
            "--store s3://chunkwise-bench/tomo_0042 --repeats 5 --seed 42",
        },
        notes=(
            "The full scan is a study column (weight 0): timed for comparison with "
            "published chunking studies, not part of the workload.",
            "rule of thumb: the store did not count requests of full scans.",
        ),
    )


def without_kinds(report: BenchReport, *kinds: str) -> BenchReport:
    """The same report with every operation of the given kinds removed."""
    results = tuple(
        replace(r, ops=tuple(op for op in r.ops if op.kind not in kinds)) for r in report.results
    )
    return replace(report, results=results)
