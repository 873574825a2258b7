"""How the array will be used: weighted operations, and presets for common patterns.

Every operation is normalized against the array into a per-dimension *extent* (how
many elements along each dim one operation touches), so the cost model sees one
shape of thing:

=========  =======================================================================
op         meaning
=========  =======================================================================
plane      a full plane across ``dims``, at a random index of the other dims
series     the full extent of one dim (``dim``), at a random index of the others
region     a box of ``extent`` at a random position (dims not named: full extent)
scan       the whole array
point      ``count`` random single elements
append     write ``size`` new slabs at the end of ``dim``
write      write the whole array
=========  =======================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from chunkwise.errors import SpecError, shown
from chunkwise.model.array import ArraySpec
from chunkwise.units import finite_float, parse_count

__all__ = [
    "OP_KINDS",
    "WORKLOAD_PRESETS",
    "Operation",
    "Workload",
    "op_variables",
    "preset_workload",
]

OpKind = Literal["plane", "series", "region", "scan", "point", "append", "write"]
OP_KINDS: tuple[OpKind, ...] = ("plane", "series", "region", "scan", "point", "append", "write")
_READ_KINDS = frozenset({"plane", "series", "region", "scan", "point"})

_KEYS: dict[str, set[str]] = {
    "plane": {"dims"},
    "series": {"dim", "dims"},
    "region": {"extent"},
    "scan": set(),
    "point": {"count"},
    "append": {"dim", "size"},
    "write": set(),
}


@dataclass(frozen=True, slots=True)
class Operation:
    """One weighted operation, resolved against an array.

    Parameters
    ----------
    kind
        One of :data:`OP_KINDS`.
    name
        A short unique label, e.g. ``plane[y,x]``.
    weight
        Share of the work, normalized so a workload's weights sum to 1.
    extent
        Elements touched along each array dim by one operation (for ``append``, the
        slab written; for ``point``, ones).
    dims
        The dims the op is defined by (plane dims, series dim, append dim).
    count
        Number of points for ``point``, slabs per ``append``; 1 otherwise.
    variables
        The variables of a dataset the op reads or writes (``variables: [tas, pr]``); empty
        means every data variable.
    """

    kind: OpKind
    name: str
    weight: float
    extent: tuple[int, ...]
    dims: tuple[str, ...] = ()
    count: int = 1
    variables: tuple[str, ...] = ()

    @property
    def is_read(self) -> bool:
        """True for operations that read rather than write."""
        return self.kind in _READ_KINDS

    def describe(self) -> str:
        """A phrase for humans: 'XY planes (dims y, x)'."""
        if self.kind == "plane":
            return f"planes across {', '.join(self.dims)}"
        if self.kind == "series":
            return f"series along {self.dims[0]}"
        if self.kind == "region":
            return f"{'x'.join(str(e) for e in self.extent)} regions"
        if self.kind == "scan":
            return "full scans"
        if self.kind == "point":
            return f"{self.count}-point reads"
        if self.kind == "append":
            return f"appends of {self.count} along {self.dims[0]}"
        return "full writes"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description."""
        out: dict[str, Any] = {
            "op": self.kind,
            "name": self.name,
            "weight": self.weight,
            "extent": list(self.extent),
        }
        if self.dims:
            out["dims"] = list(self.dims)
        if self.kind in ("point", "append"):
            out["count" if self.kind == "point" else "size"] = self.count
        if self.variables:
            out["variables"] = list(self.variables)
        return out


@dataclass(frozen=True, slots=True)
class Workload:
    """A set of weighted operations on one array (weights sum to 1)."""

    ops: tuple[Operation, ...]
    preset: str | None = None

    @classmethod
    def from_spec(cls, entries: Sequence[Mapping[str, Any]], array: ArraySpec) -> Workload:
        """Normalize a list of op mappings (as written in a spec file)."""
        if not isinstance(entries, Sequence) or isinstance(entries, str) or len(entries) == 0:
            raise SpecError(
                f"workload {shown(entries)} must be a preset name ({', '.join(WORKLOAD_PRESETS)}) "
                "or a non-empty list of operations like {op: plane, dims: [y, x], weight: 1}."
            )
        parsed = [_parse_op(entry, array) for entry in entries]
        return cls.normalized(parsed)

    @classmethod
    def normalized(cls, ops: Sequence[Operation], preset: str | None = None) -> Workload:
        """Normalize weights to sum to 1 and make names unique."""
        total = sum(op.weight for op in ops)
        if total <= 0:
            raise SpecError(
                "workload weights sum to 0; give at least one operation a positive weight."
            )
        if not math.isfinite(total):
            raise SpecError(
                f"workload weights sum to {total}; weights are shares of the work, give "
                "numbers like 0.7 and 0.3."
            )
        taken: set[str] = set()
        out: list[Operation] = []
        for op in ops:
            name, suffix = op.name, 1
            while name in taken:
                suffix += 1
                name = f"{op.name}#{suffix}"
            taken.add(name)
            out.append(replace(op, name=name, weight=op.weight / total))
        return cls(tuple(out), preset)

    def to_list(self) -> list[dict[str, Any]]:
        """A JSON-ready description."""
        return [op.to_dict() for op in self.ops]


def _dims_list(value: object, key: str, kind: str, array: ArraySpec) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Sequence) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in items
    ):
        raise SpecError(
            f"{kind} op: {key} {shown(value)} must be a dimension name or a list of names."
        )
    names = tuple(v if isinstance(v, str) else shown(v) for v in items)
    for name in names:
        array.axis(name)
    if len(set(names)) != len(names):
        raise SpecError(f"{kind} op: {key} {list(names)!r} repeats a dimension.")
    return names


def _positive_int(value: object, what: str) -> int:
    return parse_count(value, what=what)


def _parse_op(entry: Mapping[str, Any], array: ArraySpec) -> Operation:
    if not isinstance(entry, Mapping):
        raise SpecError(
            f"workload entry {shown(entry)} must be a mapping like {{op: plane, dims: [y, x], weight: 1}}."
        )
    kind = entry.get("op")
    if not isinstance(kind, str) or kind not in OP_KINDS:
        raise SpecError(f"workload op {shown(kind)} is unknown; use one of {', '.join(OP_KINDS)}.")
    allowed = _KEYS[kind] | {"op", "weight", "name", "variables"}
    extra = sorted(set(entry) - allowed, key=str)
    if extra:
        raise SpecError(
            f"{kind} op has unknown key(s) {', '.join(map(shown, extra))}; "
            f"it takes {', '.join(sorted(allowed))}."
        )
    weight = finite_float(entry.get("weight", 1.0))
    if weight is None or weight < 0:
        raise SpecError(
            f"{kind} op weight {shown(entry.get('weight'))} must be a non-negative number."
        )
    shape = array.shape
    name = entry.get("name")
    if name is not None and not isinstance(name, str):
        raise SpecError(f"{kind} op name {shown(name)} must be text, like 'viewport'.")
    count = 1
    dims: tuple[str, ...] = ()
    if kind == "plane":
        if "dims" not in entry:
            raise SpecError(
                f"plane op needs dims, the plane's dimensions, e.g. dims: {list(array.dims[-2:])}."
            )
        dims = _dims_list(entry["dims"], "dims", kind, array)
        extent = tuple(n if d in dims else 1 for n, d in zip(shape, array.dims, strict=True))
        label = f"plane[{','.join(dims)}]"
    elif kind == "series":
        raw = entry.get("dim", entry.get("dims"))
        if raw is None:
            raise SpecError(
                f"series op needs dim, the dimension it runs along, e.g. dim: {array.dims[0]}."
            )
        dims = _dims_list(raw, "dim", kind, array)
        if len(dims) != 1:
            raise SpecError(
                f"series op runs along one dim; got {list(dims)!r}. Use a plane op for several."
            )
        extent = tuple(n if d == dims[0] else 1 for n, d in zip(shape, array.dims, strict=True))
        label = f"series[{dims[0]}]"
    elif kind == "region":
        box = entry.get("extent")
        if not isinstance(box, Mapping) or not box:
            raise SpecError(
                "region op needs extent, a mapping of dim to size, e.g. "
                f"extent: {{{', '.join(f'{d}: 64' for d in array.dims)}}}."
            )
        sizes = {}
        for dim, size in box.items():
            axis = array.axis(str(dim))
            size = _positive_int(size, f"region extent for {dim!r}")
            if size > shape[axis]:
                raise SpecError(
                    f"region extent {dim}={shown(size)} is larger than the array ({dim} has {shape[axis]}); "
                    f"use at most {shape[axis]}."
                )
            sizes[axis] = size
        extent = tuple(sizes.get(i, n) for i, n in enumerate(shape))
        label = f"region[{'x'.join(str(e) for e in extent)}]"
    elif kind == "scan":
        extent = shape
        label = "scan"
    elif kind == "point":
        count = _positive_int(entry.get("count", 1), "point op count")
        extent = tuple(1 for _ in shape)
        label = f"point[{count}]" if count > 1 else "point"
    elif kind == "append":
        raw = entry.get("dim")
        if raw is None:
            raise SpecError(
                f"append op needs dim, the dimension that grows, e.g. dim: {array.dims[array.time_axis()]}."
            )
        dims = _dims_list(raw, "dim", kind, array)
        if len(dims) != 1:
            raise SpecError(f"append op grows one dim; got {list(dims)!r}.")
        size = _positive_int(entry.get("size", 1), "append op size")
        axis = array.axis(dims[0])
        extent = tuple(size if i == axis else n for i, n in enumerate(shape))
        count = size
        label = f"append[{dims[0]}+{size}]"
    else:  # write
        extent = shape
        label = "write"
    variables = op_variables(entry)
    return Operation(
        kind, str(name) if name else label, float(weight), extent, dims, count, variables
    )


def op_variables(entry: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``variables:`` an op entry names (a name or a list of names); ``()`` for none."""
    raw = entry.get("variables")
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, str) else raw
    if (
        not isinstance(items, Sequence)
        or not items
        or not all(isinstance(v, str) and v for v in items)
    ):
        raise SpecError(
            f"{entry.get('op')} op: variables {shown(raw)} must be a variable name or a list of "
            "names, like variables: [tas, pr]."
        )
    return tuple(items)


def _plane_dims(array: ArraySpec) -> list[str]:
    return list(array.dims[-2:]) if array.ndim >= 2 else list(array.dims)


def _preset_entries(name: str, array: ArraySpec) -> list[dict[str, Any]]:
    dims = array.dims
    time = dims[array.time_axis()]
    plane = _plane_dims(array)
    spatial = [d for d in dims if d != time]
    if name == "time-series":
        return [{"op": "series", "dim": time, "weight": 1.0}]
    if name == "spatial":
        return [{"op": "plane", "dims": spatial or plane, "weight": 1.0}]
    if name == "point-extraction":
        # A station: a short window of time at one location.
        window = min(array.shape[array.time_axis()], 24)
        return [
            {"op": "region", "extent": {time: window, **{d: 1 for d in spatial}}, "weight": 1.0}
        ]
    if name == "slice-viewer":
        # Scroll through planes of the last two dims; zoomed-in viewport tiles now and then.
        tile = {d: min(array.shape[array.axis(d)], 512) for d in plane}
        tile.update({d: 1 for d in dims if d not in plane})
        return [
            {"op": "plane", "dims": plane, "weight": 0.85},
            {"op": "region", "extent": tile, "weight": 0.15, "name": "viewport"},
        ]
    if name == "pyramid-viewer":
        # One level of a pyramid on screen: a viewport of the last two dims at one index
        # of the others (napari, neuroglancer and vizarr load what the canvas shows).
        tile = {d: min(array.shape[array.axis(d)], VIEWPORT_PIXELS) for d in plane}
        tile.update({d: 1 for d in dims if d not in plane})
        return [{"op": "region", "extent": tile, "weight": 1.0, "name": "viewport"}]
    if name == "roi":
        box = {d: min(n, 64) for d, n in zip(dims, array.shape, strict=True)}
        return [{"op": "region", "extent": box, "weight": 1.0}]
    if name == "ml-batch":
        # One training sample per read: dim 0 indexes samples, the rest is cropped to 256.
        box = {
            dims[0]: 1,
            **{d: min(n, 256) for d, n in zip(dims[1:], array.shape[1:], strict=True)},
        }
        return [{"op": "region", "extent": box, "weight": 1.0, "name": "sample"}]
    if name == "full-volume":
        return [{"op": "scan", "weight": 0.8}, {"op": "write", "weight": 0.2}]
    if name == "archival":
        return [{"op": "write", "weight": 0.5}, {"op": "scan", "weight": 0.5}]
    raise SpecError(
        f"workload preset {name!r} is unknown; use one of {', '.join(WORKLOAD_PRESETS)}."
    )


#: Pixels across a viewer's viewport (``pyramid-viewer``): a canvas of about 1000 pixels.
VIEWPORT_PIXELS = 1024

WORKLOAD_PRESETS: dict[str, str] = {
    "time-series": "pixel/station time series: the full time dim at one location",
    "spatial": "map analysis: full planes across all non-time dims at one time",
    "point-extraction": "station extraction: 24 time steps at one location",
    "slice-viewer": "viewer scrolling planes of the last two dims, plus 512x512 viewport tiles",
    "pyramid-viewer": "a viewer at one level of a pyramid: 1024x1024 viewports of the last two dims",
    "roi": "regions of interest: random 64-wide boxes in every dim",
    "ml-batch": "ML sampling: one sample (dim 0) cropped to 256 per other dim",
    "full-volume": "pipelines: read everything, write everything",
    "archival": "write once, read back whole",
}
_ALIASES = {
    "timeseries": "time-series",
    "time-series-analysis": "time-series",
    "map": "spatial",
    "maps": "spatial",
    "spatial-analysis": "spatial",
    "points": "point-extraction",
    "viewer": "slice-viewer",
    "pyramid": "pyramid-viewer",
    "ome-zarr": "pyramid-viewer",
    "roi-analysis": "roi",
    "ml": "ml-batch",
    "ml-batch-sampling": "ml-batch",
    "full-volume-processing": "full-volume",
    "processing": "full-volume",
    "archive": "archival",
}


def preset_workload(name: str, array: ArraySpec) -> Workload:
    """The named workload preset, resolved for ``array``."""
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    ops = [_parse_op(entry, array) for entry in _preset_entries(key, array)]
    return Workload.normalized(ops, preset=key)
