"""A layout for every variable of a dataset, from one workload.

Data variables are advised for the operations that read them (an op's ``variables:``
names them; an op naming none reads every data variable). Data variables over the same
dims are read together (xarray aligns them, Dask maps over them side by side), so the
second and later of them keep the first one's chunks and only choose their own shards and
codec. Coordinates, scalars and text that fit in one modest object are stored whole: xarray
reads coordinates when it opens a dataset, and one object is one request. Every variable's
layout comes with the reason for it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chunkwise.errors import ConstraintError, SpecError
from chunkwise.model.codec import CodecSpec
from chunkwise.model.dataset import DatasetSpec, VariableSpec, workload_for
from chunkwise.model.layout import Layout
from chunkwise.plan.advice import Advice, Adviser, Recommendation
from chunkwise.units import format_bytes, format_duration, format_shape

__all__ = ["SMALL_VARIABLE_BYTES", "DatasetAdvice", "VariableAdvice", "advise_dataset"]

#: Coordinates, scalars and text up to this size are stored whole, in one chunk, bytes.
SMALL_VARIABLE_BYTES = 16 * 2**20


@dataclass(frozen=True)
class VariableAdvice:
    """The layout of one variable and why.

    Attributes
    ----------
    variable
        The variable.
    layout
        Its layout.
    reason
        Why, in a phrase.
    advice
        ``advise``'s full answer when it chose the layout, else ``None``.
    """

    variable: VariableSpec
    layout: Layout
    reason: str
    advice: Advice | None = None

    @property
    def name(self) -> str:
        """The variable's name."""
        return self.variable.name

    def encoding(self) -> dict[str, Any]:
        """The variable's ``encoding=`` entry for ``xarray.Dataset.to_zarr``."""
        layout = self.layout
        out: dict[str, Any] = {}
        if self.variable.shape:
            out["chunks"] = layout.chunks
        if layout.shards is not None:
            out["shards"] = layout.shards
        if layout.zarr_format == 3:
            out["compressors"] = layout.codec.v3_codecs_json(self.variable.itemsize) or None
        else:
            compressor = layout.codec.v2_compressor_json()
            out["compressors"] = [compressor] if compressor is not None else None
        return out

    def describe(self) -> str:
        """One line: name, shape, layout and reason."""
        layout = self.layout
        where = (
            f"chunks {format_shape(layout.chunks)}"
            + (f" in shards of {format_shape(layout.shards)}" if layout.shards else "")
            if self.variable.shape
            else "one chunk"
        )
        return (
            f"{self.name} {format_shape(self.variable.shape, empty='scalar')} "
            f"{self.variable.dtype}: {where}, {layout.codec} ({self.reason})"
        )


@dataclass(frozen=True)
class DatasetAdvice:
    """``advise`` for a dataset: a layout per variable, all in one zarr format.

    ``repr`` is a plain-text table; ``to_encoding()`` is what ``Dataset.to_zarr`` takes.
    """

    dataset: DatasetSpec
    variables: tuple[VariableAdvice, ...]
    zarr_format: int

    @property
    def layouts(self) -> dict[str, Layout]:
        """Variable name -> recommended layout."""
        return {v.name: v.layout for v in self.variables}

    @property
    def best(self) -> Recommendation:
        """The top recommendation of the largest advised data variable.

        Raises
        ------
        SpecError
            When no variable was advised (every one is a coordinate or scalar).
        """
        advised = [v for v in self.variables if v.advice is not None]
        if not advised:
            raise SpecError(
                "no variable of this dataset was advised (all are coordinates, scalars or "
                "text); see .variables for their layouts."
            )
        largest = max(advised, key=lambda v: v.variable.nbytes)
        assert largest.advice is not None
        return largest.advice.best

    def __getitem__(self, name: str) -> VariableAdvice:
        for variable in self.variables:
            if variable.name == name:
                return variable
        raise KeyError(name)

    def to_encoding(self) -> dict[str, dict[str, Any]]:
        """``encoding=`` for ``ds.to_zarr(path, encoding=..., zarr_format=advice.zarr_format)``:
        chunks, shards and compressors of every variable, as JSON that zarr-python parses."""
        return {v.name: v.encoding() for v in self.variables}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready document."""
        out: dict[str, Any] = {"zarr_format": self.zarr_format, "variables": {}}
        for v in self.variables:
            entry: dict[str, Any] = {
                "shape": list(v.variable.shape),
                "dtype": v.variable.dtype,
                "dims": list(v.variable.dims),
                "role": v.variable.role,
                "chunks": list(v.layout.chunks),
                "shards": list(v.layout.shards) if v.layout.shards else None,
                "codec": str(v.layout.codec),
                "reason": v.reason,
            }
            if v.advice is not None:
                best = v.advice.best
                entry["predicted_s"] = {n: op["seconds"] for n, op in best.cost.ops.items()}
                entry["rationale"] = list(best.rationale)
            out["variables"][v.name] = entry
        return out

    def _lines(self) -> list[str]:
        total = sum(v.variable.nbytes for v in self.variables)
        advised = next((v.advice for v in self.variables if v.advice is not None), None)
        where = (
            f" on {advised.storage.name} (read by {advised.storage.reader.name})"
            if advised is not None
            else ""
        )
        return [
            f"Advice for a dataset of {len(self.variables)} variable{'s' * (len(self.variables) != 1)} "
            f"({format_bytes(total)}){where}, zarr v{self.zarr_format}:",
            *(f"  {v.describe()}" for v in self.variables),
        ]

    def __repr__(self) -> str:
        return "\n".join(self._lines())

    def _repr_html_(self) -> str:
        rows = []
        for v in self.variables:
            layout = v.layout
            predicted = (
                format_duration(v.advice.best.cost.weighted_s) if v.advice is not None else ""
            )
            cells = [
                v.name, format_shape(v.variable.shape, empty="scalar"), v.variable.dtype,
                format_shape(layout.chunks) if v.variable.shape else "one chunk",
                format_shape(layout.shards) if layout.shards else "", str(layout.codec),
                predicted, v.reason,
            ]  # fmt: skip
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        head = "".join(
            f"<th>{h}</th>"
            for h in ("variable", "shape", "dtype", "chunks", "shards", "codec", "per op", "why")
        )
        title = html.escape(self._lines()[0])
        return (
            f"<div><p>{title}</p><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )


def _whole(variable: VariableSpec, codec: CodecSpec, zarr_format: int) -> Layout:
    """One chunk holding the whole variable (``()`` for a scalar)."""
    separator = "/" if zarr_format == 3 else "."
    chunks = tuple(max(1, n) for n in variable.shape)
    return Layout(zarr_format, chunks, None, codec, separator)  # type: ignore[arg-type]


def _stored_whole(variable: VariableSpec, small: int) -> str | None:
    """Why a variable is stored in one chunk without asking ``advise``, or ``None``."""
    if not variable.shape:
        return "a scalar: one chunk"
    if 0 in variable.shape:
        return "no elements: one chunk"
    if variable.nbytes > small:
        return None
    if variable.role == "coordinate":
        return "a coordinate: stored whole, as xarray reads coordinates when it opens the data"
    if not variable.numeric:
        return "text or records: stored whole (advise plans numbers and dates)"
    return None


def _advise_one(
    advise: Adviser,
    request: Mapping[str, Any],
    ops: str | list[Mapping[str, Any]],
    constraints: Mapping[str, Any] | None,
    earlier: VariableAdvice | None,
    reason: str,
    options: Mapping[str, Any],
) -> tuple[Advice, str]:
    """``advise`` for one variable, with an earlier variable's chunks when it has the same
    dims (without them when they break a constraint here), and the reason."""
    if earlier is not None:
        fixed = dict(zip(earlier.variable.dims, earlier.layout.chunks, strict=True))
        try:
            advice = advise(
                array=request, workload=ops,
                constraints={**(constraints or {}), "fixed_chunks": fixed}, top=1, **options,
            )  # fmt: skip
            return advice, f"{reason}, with {earlier.name}'s chunks (same dims, read together)"
        except ConstraintError:
            reason = f"{reason}; not {earlier.name}'s chunks, which break a constraint here"
    return advise(array=request, workload=ops, constraints=constraints, top=1, **options), reason


def advise_dataset(
    dataset: DatasetSpec,
    workload: str | Sequence[Mapping[str, Any]],
    advise: Adviser,
    *,
    whole_codec: CodecSpec,
    constraints: Mapping[str, Any] | None = None,
    small_bytes: int = SMALL_VARIABLE_BYTES,
    **options: Any,
) -> DatasetAdvice:
    """A layout for every variable of ``dataset`` (see the module docstring).

    Parameters
    ----------
    dataset
        The variables.
    workload
        A preset name or a list of op mappings (``variables:`` picks who each op reads).
    advise
        ``chunkwise.advise`` (passed in: this layer does not reach up to the façade).
    whole_codec
        The codec of variables stored whole.
    constraints
        Constraints for every advised variable (``zarr_format`` fixes the dataset's).
    small_bytes
        Coordinates, scalars and text up to this size are stored whole, bytes.
    **options
        Passed to ``advise``: ``spec`` (a mapping of the rest), ``storage``, ``reader``,
        ``codec``, ``codecs``, ``profile``.

    Raises
    ------
    SpecError
        For an op naming a variable the dataset does not have, or a large variable that
        ``advise`` cannot plan (text, records), naming it.
    """
    fixed_format = (constraints or {}).get("zarr_format")
    zarr_format = int(fixed_format) if fixed_format in (2, 3) else 3
    names = [v.name for v in dataset.variables]
    decided: dict[str, VariableAdvice] = {}
    for variable in dataset.variables:
        why = _stored_whole(variable, small_bytes)
        if why is not None:
            decided[variable.name] = VariableAdvice(
                variable, _whole(variable, whole_codec, zarr_format), why
            )
    chosen: dict[tuple[str, tuple[str, ...], tuple[int, ...], str], VariableAdvice] = {}
    pending = [v for v in dataset.variables if v.name not in decided]
    for variable in sorted(pending, key=lambda v: -v.nbytes):
        if not variable.numeric:
            raise SpecError(
                f"variable {variable.name!r} ({variable.dtype}, {format_bytes(variable.nbytes)}) "
                "is text or records too large to store whole, and advise plans numbers and "
                "dates; give its chunks with --chunks or convert it on its own."
            )
        ops: str | list[Mapping[str, Any]] = workload_for(workload, variable.name, names)
        reason = "advised for the workload"
        if not ops:
            ops, reason = "archival", "no operation of the workload reads it: advised for archival"
        # read together: same group (dims are shared in a group), same dims and shape (the
        # levels of an image share names, not sizes), same ops
        key = (variable.name.rpartition("/")[0], variable.dims, variable.shape, repr(ops))
        earlier = chosen.get(key) if variable.role == "data" else None
        array = variable.array_spec()
        request = {"shape": list(array.shape), "dtype": array.dtype, "dims": list(array.dims)}
        try:
            advice, reason = _advise_one(
                advise, request, ops, constraints, earlier, reason, options
            )
        except (SpecError, ConstraintError) as exc:
            if len(dataset.variables) == 1 or variable.nbytes > small_bytes:
                raise
            text = str(exc).rstrip(".")
            decided[variable.name] = VariableAdvice(
                variable, _whole(variable, whole_codec, zarr_format),
                f"stored whole: the workload does not fit this small variable ({text})",
            )  # fmt: skip
            continue
        layout = advice.best.layout
        if fixed_format is None and layout.zarr_format != zarr_format:
            layout = Layout.create(
                array, layout.chunks, shards=layout.shards, codec=layout.codec,
                zarr_format=zarr_format,
            )  # fmt: skip
        result = VariableAdvice(variable, layout, reason, advice)
        decided[variable.name] = result
        if variable.role == "data":
            chosen.setdefault(key, result)
    return DatasetAdvice(dataset, tuple(decided[v.name] for v in dataset.variables), zarr_format)
