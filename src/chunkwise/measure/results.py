"""What a benchmark measured: plain values, shared by the bench runner and the reports.

Nothing here touches bytes; :mod:`chunkwise.measure.runner` fills these in and
:mod:`chunkwise.report` renders them.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chunkwise.io.sources.data import DataInfo
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import CodecProfile, CodecSpec
from chunkwise.model.layout import Layout
from chunkwise.model.storage import StorageProfile
from chunkwise.model.workload import Workload
from chunkwise.units import format_bytes, format_count, format_duration, format_shape, html_lines

__all__ = [
    "BenchReport",
    "CodecMeasurement",
    "DataInfo",
    "LayoutResult",
    "OpMeasurement",
    "Progress",
]


#: Called as ``progress(what is happening, steps done, steps in all)`` as long work advances.
Progress = Callable[[str, int, int], None]


def _median(values: tuple[float, ...]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass(frozen=True, slots=True)
class OpMeasurement:
    """One workload operation timed on one layout.

    Attributes
    ----------
    name, kind
        The operation's unique name (``plane[y,x]``) and kind (``plane``).
    weight
        Its share of the workload (0 for the study columns added for comparison).
    predicted_s
        The cost model's prediction, seconds.
    times_s
        Wall time of each repeat at a random position (first read), seconds.
    warm_times_s
        Wall time of reading the same positions again right away, seconds (empty when
        not measured).
    requests
        Mean GET requests per repeat as counted at the store.
    predicted_requests
        The model's expected requests per operation.
    cpu_chunks
        How many times the model charged the reader's CPU time per chunk in
        :attr:`predicted_s` (chunks, plus shard indexes where sharded): the slope of the
        prediction in ``per_chunk_cpu_s``, used to re-fit a profile from measurements.
    """

    name: str
    kind: str
    weight: float
    predicted_s: float
    times_s: tuple[float, ...]
    warm_times_s: tuple[float, ...] = ()
    requests: float = float("nan")
    predicted_requests: float = float("nan")
    cpu_chunks: float = float("nan")

    @property
    def measured_s(self) -> float:
        """Median of :attr:`times_s`, seconds."""
        return _median(self.times_s)

    @property
    def mean_s(self) -> float:
        """Mean of :attr:`times_s`, seconds: the statistic the model's expectation predicts."""
        return statistics.fmean(self.times_s) if self.times_s else float("nan")

    @property
    def warm_s(self) -> float:
        """Median of :attr:`warm_times_s`, seconds (NaN when not measured)."""
        return _median(self.warm_times_s)

    @property
    def spread_s(self) -> tuple[float, float]:
        """Fastest and slowest repeat, seconds."""
        return (min(self.times_s), max(self.times_s)) if self.times_s else (float("nan"),) * 2

    @property
    def ratio(self) -> float:
        """Measured mean over predicted (1.0 is a perfect prediction).

        The model predicts the expectation over random positions, so the mean is compared;
        where positions differ a lot (a box that sometimes fits one shard and sometimes
        straddles two), the median can sit far from either.
        """
        return self.mean_s / self.predicted_s if self.predicted_s > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (seconds)."""
        lo, hi = self.spread_s
        out: dict[str, Any] = {
            "kind": self.kind,
            "weight": self.weight,
            "measured_s": self.measured_s,
            "mean_s": self.mean_s,
            "predicted_s": self.predicted_s,
            "min_s": lo,
            "max_s": hi,
            "times_s": list(self.times_s),
            "requests": self.requests,
            "predicted_requests": self.predicted_requests,
            "cpu_chunks": self.cpu_chunks,
        }
        if self.warm_times_s:
            out["warm_s"] = self.warm_s
            out["warm_times_s"] = list(self.warm_times_s)
        return out


@dataclass(frozen=True, slots=True)
class LayoutResult:
    """Everything measured for one candidate layout.

    Attributes
    ----------
    name
        Short label: ``advise #1``, ``zarr auto``, ``dask auto``, ``rule of thumb``,
        ``candidate 1``, or the user's name.
    source
        ``"advise"``, ``"baseline"`` or ``"candidate"``.
    layout
        The layout written.
    data_objects, metadata_objects
        Objects (files/keys) holding chunks or shards, and metadata documents.
    stored_bytes
        Bytes in the store, all objects.
    raw_bytes
        Uncompressed bytes of the array.
    write_s
        Wall time of writing the whole array once, seconds.
    predicted_write_s
        The model's prediction for that write, seconds.
    ops
        One entry per operation (workload operations first, then study columns).
    predicted_weighted_s
        The model's workload time (sum of weight x seconds).
    reader
        The library the reads went through, with its version (``tensorstore 0.1.86``,
        ``zarr-python 3.1.6``); writes and appends always go through zarr-python.
    reader_notes
        Where reads did not go through the benchmark's reader, and why.
    """

    name: str
    source: str
    layout: Layout
    data_objects: int
    metadata_objects: int
    stored_bytes: int
    raw_bytes: int
    write_s: float
    predicted_write_s: float
    ops: tuple[OpMeasurement, ...]
    predicted_weighted_s: float
    reader: str = ""
    reader_notes: tuple[str, ...] = ()

    @property
    def objects(self) -> int:
        """All objects, data and metadata."""
        return self.data_objects + self.metadata_objects

    @property
    def ratio(self) -> float:
        """Compression ratio: raw bytes over stored bytes."""
        return self.raw_bytes / self.stored_bytes if self.stored_bytes else float("nan")

    @property
    def measured_weighted_s(self) -> float:
        """Measured workload time: sum of weight x median seconds."""
        return sum(op.weight * op.measured_s for op in self.ops if op.weight > 0)

    def op(self, name: str) -> OpMeasurement:
        """The measurement of the named operation."""
        for op in self.ops:
            if op.name == name:
                return op
        raise KeyError(name)

    def to_dict(self, array: ArraySpec) -> dict[str, Any]:
        """The JSON form: ``results[i]`` of ``chunkwise bench --json``."""
        return {
            "name": self.name,
            "source": self.source,
            "layout": self.layout.to_dict(array),
            "label": self.layout.label(),
            "objects": self.objects,
            "data_objects": self.data_objects,
            "metadata_objects": self.metadata_objects,
            "stored_bytes": self.stored_bytes,
            "raw_bytes": self.raw_bytes,
            "ratio": self.ratio,
            "write_s": self.write_s,
            "predicted_write_s": self.predicted_write_s,
            "weighted_s": self.measured_weighted_s,
            "predicted_weighted_s": self.predicted_weighted_s,
            "reader": self.reader,
            "reader_notes": list(self.reader_notes),
            "ops": {op.name: op.to_dict() for op in self.ops},
        }


@dataclass(frozen=True, slots=True)
class CodecMeasurement:
    """A codec measured on a sample of the user's data.

    Attributes
    ----------
    codec
        Short codec string, e.g. ``blosc:zstd:5:shuffle``.
    ratio
        Uncompressed / compressed bytes on the sample.
    encode_Bps, decode_Bps
        Single-thread throughput, uncompressed bytes per second.
    sample_bytes
        Uncompressed bytes of the sample.
    """

    codec: str
    ratio: float
    encode_Bps: float
    decode_Bps: float
    sample_bytes: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "codec": self.codec,
            "ratio": self.ratio,
            "encode_Bps": self.encode_Bps,
            "decode_Bps": self.decode_Bps,
            "sample_bytes": self.sample_bytes,
        }


@dataclass(frozen=True)
class BenchReport:
    """A whole benchmark: data, store, workload, per-layout results and the advice.

    Attributes
    ----------
    title
        A heading for reports.
    data
        Where the data came from.
    array
        The benchmarked array (shape/dtype of the data actually written).
    workload
        The workload whose operations were timed (weights as in the spec).
    storage
        The storage profile used for predictions.
    store
        Human description of the store the layouts were written to.
    results
        One entry per layout, in the order benchmarked.
    recommendation
        The label of ``advise``'s top layout, or ``None`` when advise was not run.
    rationale
        ``advise``'s reasons for its top layout.
    codecs
        Codec measurements on a sample of the data (may be empty).
    repeats, seed
        Random positions per operation, and the seed that drew them.
    machine
        Host description (CPU count, platform, library versions).
    notes
        Things the reader should know (baselines skipped, clipped extents, ...).
    measured_reader
        The library the reads were measured through, with its version
        (``tensorstore 0.1.86``); ``storage.reader`` is the reader that was priced.
    written_by
        The library that wrote the layouts (and timed writes and appends), with its
        version (``zarr-python 3.1.6``).
    codec_profiles
        The codec ratios and throughputs behind the predictions (calibrated on the data
        where it allowed), by codec.
    """

    title: str
    data: DataInfo
    array: ArraySpec
    workload: Workload
    storage: StorageProfile
    store: str
    results: tuple[LayoutResult, ...]
    recommendation: str | None = None
    rationale: tuple[str, ...] = ()
    codecs: tuple[CodecMeasurement, ...] = ()
    repeats: int = 0
    seed: int = 0
    machine: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    measured_reader: str = ""
    written_by: str = ""
    codec_profiles: Mapping[CodecSpec, CodecProfile] = field(default_factory=dict)

    def fastest(self) -> LayoutResult:
        """The layout with the smallest measured workload time."""
        return min(self.results, key=lambda r: r.measured_weighted_s)

    def predicted_fastest(self) -> LayoutResult:
        """The layout with the smallest predicted workload time."""
        return min(self.results, key=lambda r: r.predicted_weighted_s)

    def lines(self) -> list[str]:
        """The report in brief: per layout, measured and predicted time per operation."""
        array = self.array
        reader = self.measured_reader or self.storage.reader.name
        out = [
            f"{self.title}: {array.dtype} {format_shape(array.shape)} on {self.storage.name}, "
            f"read by {reader}"
        ]
        for r in self.results:
            out.append(
                f"  {r.name}: {r.layout.label()}: measured {format_duration(r.measured_weighted_s)}"
                f" per op (predicted {format_duration(r.predicted_weighted_s)}), "
                f"{format_count(r.objects)} objects, {format_bytes(r.stored_bytes)} stored"
            )
        if self.recommendation is not None:
            out.append(f"recommended: {self.recommendation}")
        return out

    def __repr__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        return html_lines(self.lines())

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``chunkwise bench --json``."""
        array = self.array
        return {
            "title": self.title,
            "data": self.data.to_dict(),
            "array": {"shape": list(array.shape), "dtype": array.dtype, "dims": list(array.dims)},
            "workload": self.workload.to_list(),
            "storage": {
                "name": self.storage.name,
                "latency_s": self.storage.latency_s,
                "bandwidth_Bps": self.storage.bandwidth_Bps,
                "concurrency": self.storage.concurrency,
                "reader": self.storage.reader.name,
            },
            "measured_reader": self.measured_reader,
            "written_by": self.written_by,
            "store": self.store,
            "repeats": self.repeats,
            "seed": self.seed,
            "recommendation": self.recommendation,
            "rationale": list(self.rationale),
            "codecs": [c.to_dict() for c in self.codecs],
            "machine": self.machine,
            "notes": list(self.notes),
            "results": [r.to_dict(array) for r in self.results],
            "fastest_measured": self.fastest().name,
            "fastest_predicted": self.predicted_fastest().name,
        }
