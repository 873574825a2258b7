"""From search results to advice: recommendations with predicted costs and reasons.

The rationale compares each recommendation with the *rule of thumb* a user would
otherwise reach for: near-cubic chunks of the size folklore suggests for the
storage (about 1 MiB on local disks, 16 MiB on object stores), same codec, no shards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from chunkwise.cost.geometry import dim_access
from chunkwise.cost.model import CostInputs, LayoutCost, estimate_layout
from chunkwise.errors import SpecError
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import (
    CRC32C_BYTES,
    CodecProfile,
    CodecSpec,
    checksum_profile,
    default_codec_profile,
    v2_checksum_message,
)
from chunkwise.model.constraints import Constraints
from chunkwise.model.layout import Layout, ceil_div
from chunkwise.model.storage import StorageProfile
from chunkwise.model.workload import Operation, Workload
from chunkwise.plan.candidates import reference_chunks
from chunkwise.plan.search import Binding, Candidate, search
from chunkwise.units import (
    compare_speed,
    format_bytes,
    format_count,
    format_duration,
    format_rate,
    html_lines,
)

__all__ = ["Advice", "Adviser", "Recommendation", "make_advice", "reference_layout"]

#: Folklore chunk sizes per storage kind, used only as the comparison baseline.
_RULE_OF_THUMB_BYTES = {"filesystem": 1 << 20, "object": 16 << 20}


@dataclass(frozen=True)
class Recommendation:
    """One recommended layout with its predicted costs and the reasons for it."""

    rank: int
    layout: Layout
    cost: LayoutCost
    chunk_bytes: int
    object_bytes: int
    codec_profile: CodecProfile
    rationale: tuple[str, ...]

    def to_dict(self, array: ArraySpec) -> dict[str, Any]:
        """JSON form: ``layout``, ``predicted`` seconds per op, counts, bytes, reasons."""
        return {
            "rank": self.rank,
            "layout": self.layout.to_dict(array),
            "predicted": {name: op["seconds"] for name, op in self.cost.ops.items()},
            "weighted_s": self.cost.weighted_s,
            "objects": self.cost.objects,
            "stored_bytes": round(self.cost.stored_bytes),
            "chunk_bytes": self.chunk_bytes,
            "object_bytes": self.object_bytes,
            "monthly_storage_usd": self.cost.monthly_storage_usd,
            "usd_per_1000_ops": self.cost.usd_per_1000_ops,
            "codec_profile": {
                "ratio": self.codec_profile.ratio,
                "encode_Bps": self.codec_profile.encode_Bps,
                "decode_Bps": self.codec_profile.decode_Bps,
                "measured": self.codec_profile.measured,
            },
            "details": self.cost.ops,
            "rationale": list(self.rationale),
        }


@dataclass(frozen=True)
class Advice:
    """The answer of ``advise``: ranked layouts, the trade-off front, what bound the choice.

    The object is the report: ``repr`` prints a plain-text summary, ``to_dict`` the
    machine-readable form; renderers in :mod:`chunkwise.report` only format it.
    """

    array: ArraySpec
    workload: Workload
    storage: StorageProfile
    constraints: Constraints
    recommendations: tuple[Recommendation, ...]
    reference: Recommendation
    pareto: tuple[Candidate, ...]
    bindings: tuple[Binding, ...]
    evaluated: int
    candidates: tuple[Recommendation, ...] = ()

    @property
    def best(self) -> Recommendation:
        """The top recommendation."""
        return self.recommendations[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready document (see ``chunkwise advise --json``)."""
        array = self.array
        return {
            "array": {"shape": list(array.shape), "dtype": array.dtype, "dims": list(array.dims)},
            "storage": _storage_dict(self.storage),
            "workload": {"preset": self.workload.preset, "ops": self.workload.to_list()},
            "constraints": self.constraints.to_dict(array),
            "recommendations": [r.to_dict(array) for r in self.recommendations],
            "reference": {"name": "rule-of-thumb", **self.reference.to_dict(array)},
            "candidates": [c.to_dict(array) for c in self.candidates],
            "pareto": [
                {
                    "layout": c.layout.to_dict(array),
                    "weighted_s": c.weighted_s,
                    "objects": c.objects,
                    "stored_bytes": round(c.stored_bytes),
                }
                for c in self.pareto
            ],
            "bound_by": [
                {
                    "constraint": b.name,
                    "value": b.value,
                    "speedup_without": b.speedup,
                    "message": b.sentence(),
                }
                for b in self.bindings
            ],
            "layouts_evaluated": self.evaluated,
        }

    def __repr__(self) -> str:
        lines = [
            f"Advice for {self.array.dtype} {self.array.shape} on {self.storage.name} "
            f"(read by {self.storage.reader.name}):"
        ]
        for rec in self.recommendations:
            lines.append(
                f"  {rec.rank}. {rec.layout.label()}: {format_duration(rec.cost.weighted_s)} per op, "
                f"{format_count(rec.cost.objects)} objects, {format_bytes(rec.cost.stored_bytes)} stored"
            )
        lines.extend(f"  - {line}" for line in self.best.rationale)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return html_lines(repr(self).splitlines())


def _storage_dict(storage: StorageProfile) -> dict[str, Any]:
    reader = storage.reader
    return {
        "name": storage.name,
        "kind": storage.kind,
        "latency_s": storage.latency_s,
        "bandwidth_Bps": storage.bandwidth_Bps,
        "stream_bandwidth_Bps": storage.stream_bandwidth_Bps,
        "concurrency": storage.concurrency,
        "block_bytes": storage.block_bytes,
        "object_bytes": {"min": storage.object_bytes_min, "max": storage.object_bytes_max},
        "get_usd_per_1000": storage.get_usd_per_1000,
        "put_usd_per_1000": storage.put_usd_per_1000,
        "storage_usd_per_gb_month": storage.storage_usd_per_gb_month,
        "reader": {
            "name": reader.name,
            "concurrency": reader.concurrency,
            "per_chunk_cpu_s": reader.per_chunk_cpu_s,
            "per_call_s": reader.per_call_s,
            "per_request_s": reader.per_request_s,
            "sequential_inner_reads": reader.sequential_inner_reads,
            "threads": reader.threads,
            "serial_checksum": reader.serial_checksum,
            "coalesce_gap_bytes": reader.coalesce_gap_bytes,
            "coalesce_max_bytes": reader.coalesce_max_bytes,
            "shard_write_reads_existing": reader.shard_write_reads_existing,
        },
    }


def reference_layout(
    array: ArraySpec, storage: StorageProfile, codec: CodecSpec, zarr_format: int
) -> Layout:
    """The rule-of-thumb layout used as the comparison baseline."""
    chunks = reference_chunks(array, _RULE_OF_THUMB_BYTES[storage.kind])
    return Layout.create(array, chunks, codec=codec, zarr_format=zarr_format)


def _touched(op: Operation, array: ArraySpec, layout: Layout) -> list[float]:
    shards = layout.shards or (None,) * array.ndim
    return [
        dim_access(n, e, c, s).chunks
        for n, e, c, s in zip(array.shape, op.extent, layout.chunks, shards, strict=True)
    ]


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


def _op_sentence(
    op: Operation,
    array: ArraySpec,
    rec: Layout,
    rec_cost: LayoutCost,
    ref: Layout,
    ref_cost: LayoutCost,
) -> str:
    mine, theirs = rec_cost.ops[op.name], ref_cost.ops[op.name]
    detail = ""
    if op.kind in ("plane", "series", "region", "scan"):
        diffs = []
        for dim, a, b in zip(
            array.dims, _touched(op, array, rec), _touched(op, array, ref), strict=True
        ):
            if max(a, b) / max(min(a, b), 1e-12) >= 1.5:
                diffs.append(
                    f"{a:.3g} chunk{'s' if round(a, 3) != 1 else ''} along {dim} instead of {b:.3g}"
                )
        if diffs:
            detail = "touch " + ", ".join(diffs) + "; "
    plural = "" if f"{mine['requests']:.3g}" == "1" else "s"
    requests = f"{mine['requests']:.3g} request{plural} instead of {theirs['requests']:.3g}"
    speed = compare_speed(mine["seconds"], theirs["seconds"])
    return (
        f"{_capitalized(op.describe())} ({op.weight:.0%} of the work): {detail}{requests}, "
        f"predicted {format_duration(mine['seconds'])}, {speed} the rule of thumb "
        f"({format_duration(theirs['seconds'])})."
    )


def _rationale(
    rank: int,
    cand: Candidate,
    cost: LayoutCost,
    profile: CodecProfile,
    advice_parts: tuple[ArraySpec, Workload, StorageProfile, Constraints],
    reference: tuple[Layout, LayoutCost],
    bindings: Sequence[Binding],
) -> tuple[str, ...]:
    array, workload, storage, constraints = advice_parts
    ref_layout, ref_cost = reference
    layout = cand.layout
    ref_label = "x".join(map(str, ref_layout.chunks))
    lines = [
        f"Predicted {format_duration(cost.weighted_s)} per operation (weighted), "
        f"{compare_speed(cost.weighted_s, ref_cost.weighted_s)} the rule-of-thumb chunks {ref_label} "
        f"({format_duration(ref_cost.weighted_s)}, {format_count(ref_cost.objects)} objects)."
    ]
    heaviest = sorted(workload.ops, key=lambda op: (-op.weight, op.name))[:3]
    lines.extend(_op_sentence(op, array, layout, cost, ref_layout, ref_cost) for op in heaviest)
    if layout.shards is not None:
        unsharded = Layout.create(array, layout.chunks, codec=layout.codec).data_objects(array)
        reader = storage.reader
        if reader.sequential_inner_reads:
            pattern = "one index request, then one request per inner chunk, in sequence"
        elif reader.coalesce_gap_bytes > 0:
            pattern = (
                "one index request, then the inner chunks concurrently, in ranged requests "
                f"merged across gaps of up to {format_bytes(reader.coalesce_gap_bytes)}"
            )
        else:
            pattern = "one index request, then all inner chunks concurrently"
        lines.append(
            f"Shards of {'x'.join(map(str, layout.shards))} hold {format_count(layout.chunks_per_shard)} chunks "
            f"each: {format_count(cost.objects)} objects instead of {format_count(unsharded)} unsharded; "
            f"{storage.reader.name} reads part of a shard as {pattern}."
        )
    else:
        lines.append(
            f"Each {format_bytes(cand.chunk_bytes)} chunk is one object: {format_count(cost.objects)} objects, "
            f"{format_bytes(cost.stored_bytes)} stored."
        )
    if constraints.zarr_format == 2:
        lines.append(
            "zarr_format 2 as required: no sharding (readers such as vizarr cannot read format 3)."
        )
    source = (
        "measured on your data"
        if profile.measured
        else "assumed defaults; `chunkwise bench` measures your data"
    )
    lines.append(
        f"{layout.codec.short}: compression ratio {profile.ratio:.2f}x, decode {format_rate(profile.decode_Bps)} "
        f"per core ({source})."
    )
    if storage.kind == "object" and storage.storage_usd_per_gb_month:
        lines.append(
            f"Storage about ${cost.monthly_storage_usd:,.2f}/month; requests about "
            f"${cost.usd_per_1000_ops:,.4f} per 1000 operations."
        )
    if rank == 1:
        lines.extend(b.sentence() for b in bindings)
        if not layout.codec.checksum and layout.zarr_format == 3:
            lines.append(_checksum_offer(layout, cost, profile, advice_parts))
    return tuple(lines)


def _percent_more(after: float, before: float) -> str:
    """``+0.38%``, ``+4.1%``, ``+12%``, ``+140%``: two significant digits, never exponents."""
    percent = 100.0 * (after / before - 1.0) if before > 0 else 0.0
    return f"+{percent:.2g}%" if percent < 100 else f"+{percent:.0f}%"


def _checksum_offer(
    layout: Layout,
    cost: LayoutCost,
    profile: CodecProfile,
    advice_parts: tuple[ArraySpec, Workload, StorageProfile, Constraints],
) -> str:
    """One line offering ``--checksum``, with what it is predicted to cost ``layout``."""
    array, workload, storage, _ = advice_parts
    codec = layout.codec.with_checksum()
    checked = estimate_layout(
        replace(layout, codec=codec),
        workload,
        CostInputs(array, storage, codec, checksum_profile(profile)),
    )
    costs = []
    for what, writes in (("read", False), ("write", True)):
        ops = [op for op in workload.ops if (op.kind in ("write", "append")) == writes]
        if ops:
            before = sum(op.weight * cost.seconds(op.name) for op in ops)
            after = sum(op.weight * checked.seconds(op.name) for op in ops)
            costs.append(f"{_percent_more(after, before)} {what} time")
    return (
        f"Add --checksum (constraints: {{checksum: true}}) for a crc32c per chunk that detects "
        f"corrupted chunks on read ({codec.short}): predicted {', '.join(costs)}, "
        f"+{CRC32C_BYTES} bytes per chunk."
    )


def _with_checksums(
    codecs: Sequence[CodecSpec],
    profiles: Mapping[CodecSpec, CodecProfile],
    constraints: Constraints,
    candidates: Sequence[Layout],
) -> tuple[tuple[CodecSpec, ...], dict[CodecSpec, CodecProfile]]:
    """The codecs to search (all with ``+crc32c`` when ``constraints.checksum``) and a
    profile for each, candidates' codecs included.

    A checksummed codec without a measured profile of its own takes its compressor's
    (measured when there is one) through :func:`checksum_profile`.
    """
    if constraints.zarr_format == 2:
        named = [c for c in codecs if c.checksum]
        if named:
            raise SpecError(v2_checksum_message(named[0]))
    if constraints.checksum:
        codecs = tuple(dict.fromkeys(c.with_checksum() for c in codecs))
    out = dict(profiles)
    for codec in (*codecs, *(layout.codec for layout in candidates)):
        if not codec.checksum or (codec in out and out[codec].measured):
            continue
        base = codec.with_checksum(False)
        measured_base = base in out and out[base].measured
        if codec not in out or measured_base:
            out[codec] = checksum_profile(out[base] if base in out else default_codec_profile(base))
    return tuple(codecs), out


def make_advice(
    array: ArraySpec,
    workload: Workload,
    storage: StorageProfile,
    constraints: Constraints,
    *,
    codecs: Sequence[CodecSpec],
    codec_profiles: Mapping[CodecSpec, CodecProfile],
    top: int,
    grid_budget: int,
    tie_tolerance: float,
    candidates: Sequence[Layout] = (),
) -> Advice:
    """Search, then price and explain the recommendations (pure; see ``chunkwise.advise``).

    With ``constraints.checksum`` every codec gets a crc32c checksum (``+crc32c``).
    """
    codecs, codec_profiles = _with_checksums(codecs, codec_profiles, constraints, candidates)
    result = search(
        array,
        workload,
        storage,
        constraints,
        codecs=codecs,
        codec_profiles=codec_profiles,
        top=top,
        grid_budget=grid_budget,
        tie_tolerance=tie_tolerance,
    )

    def inputs(codec: CodecSpec) -> CostInputs:
        return CostInputs(array, storage, codec, codec_profiles[codec])

    best_codec = result.ranked[0].layout.codec
    ref_layout = reference_layout(array, storage, best_codec, constraints.zarr_format or 3)
    ref_cost = estimate_layout(ref_layout, workload, inputs(best_codec))
    parts = (array, workload, storage, constraints)
    recs = []
    for rank, cand in enumerate(result.ranked, start=1):
        codec = cand.layout.codec
        cost = estimate_layout(cand.layout, workload, inputs(codec))
        recs.append(
            Recommendation(
                rank=rank,
                layout=cand.layout,
                cost=cost,
                chunk_bytes=cand.chunk_bytes,
                object_bytes=cand.object_bytes,
                codec_profile=codec_profiles[codec],
                rationale=_rationale(
                    rank,
                    cand,
                    cost,
                    codec_profiles[codec],
                    parts,
                    (ref_layout, ref_cost),
                    result.bindings,
                ),
            )
        )
    ref_objects_bytes = ref_layout.object_bytes(array)
    reference = Recommendation(
        rank=0,
        layout=ref_layout,
        cost=ref_cost,
        chunk_bytes=ref_layout.chunk_bytes(array),
        object_bytes=ref_objects_bytes,
        codec_profile=codec_profiles[best_codec],
        rationale=(
            f"Rule of thumb: near-cubic chunks of about {format_bytes(_RULE_OF_THUMB_BYTES[storage.kind])} "
            f"({format_count(ceil_div(array.nbytes, max(ref_objects_bytes, 1)))} objects).",
        ),
    )
    named = []
    for layout in candidates:
        cost = estimate_layout(layout, workload, inputs(layout.codec))
        speed = compare_speed(cost.weighted_s, recs[0].cost.weighted_s)
        named.append(
            Recommendation(
                rank=0,
                layout=layout,
                cost=cost,
                chunk_bytes=layout.chunk_bytes(array),
                object_bytes=layout.object_bytes(array),
                codec_profile=codec_profiles[layout.codec],
                rationale=(
                    f"Your candidate is {speed} recommendation #1 ({format_duration(recs[0].cost.weighted_s)}).",
                ),
            )
        )
    return Advice(
        array, workload, storage, constraints, tuple(recs), reference, result.pareto, result.bindings,
        result.evaluated, tuple(named),
    )  # fmt: skip


#: ``chunkwise.advise`` as the layers below the façade receive it (convert's
#: ``--workload``, inspect's comparisons): ``advise(spec, *, array=..., workload=...,
#: storage=..., constraints=..., codec=..., top=..., profile=...) -> Advice``. The façade
#: passes itself in, so nothing below it imports ``chunkwise.api``.
Adviser = Callable[..., Advice]
