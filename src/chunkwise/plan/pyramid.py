"""OME-Zarr image pyramids: how many levels, which axes halve, and where each level sits.

Level 0 is the image at full resolution; every further level halves some spatial axes of
the one before it (an odd size rounds up: the last window is short). Which axes halve:

* the axes given (``downsample``), at every level while they are longer than one element;
* by default y and x (by name, else the last two spatial axes) at every level, and a third
  spatial axis (z) at a level where its voxels are no longer than 1.5 times the in-plane
  ones: a near-isotropic volume halves in 3D from the start, an anisotropic stack (z 4x
  coarser) first halves in-plane until the voxels are near-isotropic, then in 3D.

Levels are added until the image is at most :data:`TOP_PIXELS` across every halved axis
(a viewer's first view) or fits in one chunk, unless ``levels`` says how many.

Where a level sits (NGFF ``coordinateTransformations``): its voxel size is level 0's times
the cumulative factor; a level of window means (``mean``, ``mode``) is centred on its
windows, so it is shifted by half a window less half a voxel, ``(f - 1) / 2`` level-0
voxels; a level of ``nearest`` (the first voxel of each window) is not shifted.

Pure: no I/O; values in, frozen values out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from chunkwise.errors import SpecError, shown
from chunkwise.model.ome import read_ome

__all__ = [
    "METHODS",
    "SPACE_UNITS",
    "TIME_UNITS",
    "TOP_PIXELS",
    "Axis",
    "Pyramid",
    "PyramidRequest",
    "axis_type",
    "default_axes",
    "plan_pyramid",
    "source_geometry",
]

Method = Literal["mean", "nearest", "mode"]
#: How a window of voxels becomes one: the mean (intensity images), the first voxel, or
#: the most frequent value with ties to the smallest (label images: never a blend).
METHODS: tuple[Method, ...] = ("mean", "nearest", "mode")
#: Levels are added until the top one is at most this many pixels across every halved
#: axis (about a viewer's first view), unless it fits in one chunk first.
TOP_PIXELS = 256
#: A third spatial axis halves with the in-plane ones where its voxels are at most this
#: many times as long.
NEAR_ISOTROPIC = 1.5
#: NGFF's units (UDUNITS-2 names) for space and time axes.
SPACE_UNITS = frozenset(
    [
        "angstrom",
        "attometer",
        "centimeter",
        "decimeter",
        "exameter",
        "femtometer",
        "foot",
        "gigameter",
        "hectometer",
        "inch",
        "kilometer",
        "megameter",
        "meter",
        "micrometer",
        "mile",
        "millimeter",
        "nanometer",
        "parsec",
        "petameter",
        "picometer",
        "terameter",
        "yard",
        "yoctometer",
        "yottameter",
        "zeptometer",
        "zettameter",
    ]
)
TIME_UNITS = frozenset(
    [
        "attosecond",
        "centisecond",
        "day",
        "decisecond",
        "exasecond",
        "femtosecond",
        "gigasecond",
        "hectosecond",
        "hour",
        "kilosecond",
        "megasecond",
        "microsecond",
        "millisecond",
        "minute",
        "nanosecond",
        "petasecond",
        "picosecond",
        "second",
        "terasecond",
        "yoctosecond",
        "yottasecond",
        "zeptosecond",
        "zettasecond",
    ]
)
#: Spellings of units that are not NGFF's names.
UNIT_ALIASES = {
    "a": "angstrom", "å": "angstrom", "ångström": "angstrom", "nm": "nanometer",
    "um": "micrometer", "µm": "micrometer", "μm": "micrometer", "micron": "micrometer",
    "microns": "micrometer", "mm": "millimeter", "cm": "centimeter", "m": "meter",
    "s": "second", "sec": "second", "ms": "millisecond", "min": "minute", "h": "hour",
}  # fmt: skip
_TIME_NAMES = frozenset({"t", "time"})
_CHANNEL_NAMES = frozenset({"c", "ch", "channel", "channels"})


def axis_type(name: str) -> str:
    """NGFF axis type from a dim name: ``"time"``, ``"channel"`` or ``"space"``."""
    key = name.lower()
    if key in _TIME_NAMES:
        return "time"
    if key in _CHANNEL_NAMES:
        return "channel"
    return "space"


def default_axes(ndim: int) -> tuple[str, ...]:
    """Axis names for an image without dim names: ``y, x`` or ``z, y, x``.

    Raises
    ------
    SpecError
        For other numbers of dims, which could be time or channels: name them.
    """
    if ndim == 2:
        return ("y", "x")
    if ndim == 3:
        return ("z", "y", "x")
    if ndim not in (4, 5):
        raise SpecError(
            f"an image of {ndim} dims cannot be an OME-Zarr image, which has 2 to 5 axes."
        )
    example = "--dims t,z,y,x or --dims c,z,y,x" if ndim == 4 else "--dims t,c,z,y,x"
    raise SpecError(
        f"an image of {ndim} dims needs its axes named for OME-Zarr: give --dims, e.g. {example}."
    )


def normalize_unit(unit: str, kind: str, name: str) -> str:
    """An NGFF unit name for axis ``name`` of type ``kind``.

    Raises
    ------
    SpecError
        For a unit NGFF does not know for that kind of axis.
    """
    text = unit.strip()
    found = UNIT_ALIASES.get(text.lower(), text.lower())
    allowed = SPACE_UNITS if kind == "space" else TIME_UNITS if kind == "time" else frozenset()
    if found not in allowed:
        known = ", ".join(sorted(allowed)[:6]) if allowed else "none (channels have no unit)"
        raise SpecError(
            f"unit {shown(unit)} for axis {name!r} ({kind}) is not an OME-Zarr unit; use one of "
            f"{known}{', ...' if allowed else ''} (e.g. --units {name}=micrometer)."
        )
    return found


@dataclass(frozen=True, slots=True)
class Axis:
    """One axis of an OME-Zarr image.

    Attributes
    ----------
    name
        Its name (a dim name).
    type
        ``"space"``, ``"time"`` or ``"channel"``.
    unit
        An NGFF unit name, or ``None``.
    scale
        Physical size of one level-0 voxel along it, in ``unit`` (1.0 when unknown).
    origin
        Where level 0's first voxel centre lies along it, in ``unit`` (0.0 when unknown).
    """

    name: str
    type: str
    unit: str | None
    scale: float
    origin: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """NGFF's axis mapping (no scale: that goes with each level)."""
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.unit is not None:
            out["unit"] = self.unit
        return out


@dataclass(frozen=True, slots=True)
class PyramidRequest:
    """What the user asked of a pyramid (all optional).

    Attributes
    ----------
    levels
        How many levels, level 0 included; ``None``: until the top level is small.
    downsample
        Names of the axes that halve at every level; ``None``: y and x, and z where the
        voxels are near-isotropic.
    method
        ``"mean"``, ``"nearest"`` or ``"mode"``; ``None``: ``mean`` for numbers, ``mode``
        for booleans.
    units
        Unit per axis name (``""`` as a key: every space axis).
    voxel_size
        Physical size of a level-0 voxel per axis name, in its unit (or one per dim, in
        order).
    name
        The image's name in the metadata.
    """

    levels: int | None = None
    downsample: tuple[str, ...] | None = None
    method: Method | None = None
    units: Mapping[str, str] | None = None
    voxel_size: Mapping[str, float] | tuple[float, ...] | None = None
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The request as JSON (for the run's identity)."""
        return {
            "levels": self.levels,
            "downsample": list(self.downsample) if self.downsample is not None else None,
            "method": self.method,
            "units": dict(self.units or {}),
            "voxel_size": (
                dict(self.voxel_size)
                if isinstance(self.voxel_size, Mapping)
                else list(self.voxel_size or ())
            ),
            "name": self.name,
        }


@dataclass(frozen=True, slots=True)
class Pyramid:
    """A planned pyramid.

    Attributes
    ----------
    axes
        One per dim, with level 0's voxel size.
    shapes
        Shape of every level, level 0 first.
    factors
        Per level after the first, how much each axis shrinks from the level before (1 or
        2); ``factors[k - 1]`` makes level ``k``.
    method
        How windows become voxels.
    name
        The image's name, or ``None``.
    """

    axes: tuple[Axis, ...]
    shapes: tuple[tuple[int, ...], ...]
    factors: tuple[tuple[int, ...], ...]
    method: Method
    name: str | None = None

    @property
    def levels(self) -> int:
        """Number of levels, level 0 included."""
        return len(self.shapes)

    def cumulative(self, level: int) -> tuple[int, ...]:
        """How much level ``level`` shrank from level 0 along each axis."""
        out = [1] * len(self.axes)
        for step in self.factors[:level]:
            out = [a * b for a, b in zip(out, step, strict=True)]
        return tuple(out)

    def scale(self, level: int) -> tuple[float, ...]:
        """Voxel size of ``level`` per axis, in each axis's unit."""
        return tuple(a.scale * f for a, f in zip(self.axes, self.cumulative(level), strict=True))

    def translation(self, level: int) -> tuple[float, ...] | None:
        """Where ``level``'s first voxel centre lies: level 0's origin, plus (for window
        means and modes) half a window less half a voxel; ``None`` when that is 0."""
        centred = self.method != "nearest"
        shift = tuple(
            a.origin + (a.scale * (f - 1) / 2 if centred else 0.0)
            for a, f in zip(self.axes, self.cumulative(level), strict=True)
        )
        return shift if any(shift) else None

    def to_dict(self) -> dict[str, Any]:
        """The pyramid as JSON (recorded beside the OME metadata)."""
        return {
            "method": self.method,
            "axes": [axis.to_dict() for axis in self.axes],
            "origin": [axis.origin for axis in self.axes],
            "levels": [
                {
                    "path": str(k),
                    "shape": list(shape),
                    "factors": list(self.factors[k - 1]) if k else [1] * len(shape),
                    "scale": list(self.scale(k)),
                }
                for k, shape in enumerate(self.shapes)
            ],
        }

    def describe(self) -> list[str]:
        """One line per level, for ``--dry-run`` and summaries."""
        names = "".join(a.name if len(a.name) == 1 else f"[{a.name}]" for a in self.axes)
        halved = [
            ",".join(a.name for a, f in zip(self.axes, step, strict=True) if f > 1)
            for step in self.factors
        ]
        units = {a.unit for a in self.axes if a.type == "space"}
        unit = f" {next(iter(units))}" if len(units) == 1 and None not in units else ""
        return [
            f"OME-Zarr pyramid of {self.levels} level{'s' * (self.levels != 1)} ({names}), "
            f"{self.method} of each window",
            *(
                f"level {k}: {'x'.join(map(str, shape))}"
                + (f", halved {halved[k - 1]}" if k else "")
                + f", voxel {'x'.join(f'{s:g}' for s in self.scale(k))}{unit}"
                for k, shape in enumerate(self.shapes)
            ),
        ]


def _halved(shape: Sequence[int], factors: Sequence[int]) -> tuple[int, ...]:
    return tuple(-(-n // f) for n, f in zip(shape, factors, strict=True))


def _check_axes(names: Sequence[str]) -> tuple[str, ...]:
    """NGFF's rules for axes: 2 to 5 of them, unique, at most one time and one channel
    axis, 2 or 3 space axes, ordered time, channel, space."""
    kinds = [axis_type(n) for n in names]
    given = ",".join(names)
    if len(set(names)) != len(names):
        raise SpecError(f"axes {given} name an axis twice; give each dim its own name.")
    order = {"time": 0, "channel": 1, "space": 2}
    if not 2 <= len(names) <= 5 or not 2 <= kinds.count("space") <= 3:
        raise SpecError(
            f"axes {given} cannot be an OME-Zarr image: it needs 2 or 3 space axes (any name "
            "but t/time and c/channel) and at most one time and one channel axis."
        )
    if kinds.count("time") > 1 or kinds.count("channel") > 1:
        raise SpecError(
            f"axes {given} have more than one time or channel axis; OME-Zarr allows one."
        )
    if [order[k] for k in kinds] != sorted(order[k] for k in kinds):
        read = ", ".join(f"{n} {k}" for n, k in zip(names, kinds, strict=True))
        raise SpecError(
            f"axes {given} are read as {read} (t/time: time; c/ch/channel: channel; any "
            "other name: space), out of OME-Zarr's order of time, channel, then space; "
            "transpose the source first, or give --dims names of these kinds."
        )
    return tuple(kinds)


def _units(
    names: Sequence[str], kinds: Sequence[str], given: Mapping[str, str], found: Mapping[str, str]
) -> list[str | None]:
    for key in given:
        if key and key not in names:
            raise SpecError(
                f"--units names axis {key!r}, which the image does not have ({', '.join(names)})."
            )
    units: list[str | None] = []
    for name, kind in zip(names, kinds, strict=True):
        unit = given.get(name) or (given.get("") if kind == "space" else None) or found.get(name)
        units.append(normalize_unit(unit, kind, name) if unit else None)
    return units


def _voxel(
    names: Sequence[str],
    given: Mapping[str, float] | tuple[float, ...],
    found: Mapping[str, float],
) -> list[float]:
    if not isinstance(given, Mapping):
        if len(given) != len(names):
            raise SpecError(
                f"--voxel-size {','.join(f'{v:g}' for v in given)} must give {len(names)} sizes, "
                f"one per axis ({','.join(names)})."
            )
        given = dict(zip(names, given, strict=True))
    sizes = []
    for key in given:
        if key not in names:
            raise SpecError(
                f"--voxel-size names axis {key!r}, which the image does not have "
                f"({', '.join(names)})."
            )
    for name in names:
        size = given.get(name, found.get(name, 1.0))
        if not (isinstance(size, int | float) and math.isfinite(size) and size > 0):
            raise SpecError(f"voxel size {shown(size)} of axis {name!r} must be a positive number.")
        sizes.append(float(size))
    return sizes


def _default_step(
    shape: Sequence[int], axes: Sequence[Axis], scale: Sequence[float]
) -> tuple[int, ...]:
    """Factors of the next level by default: the in-plane axes (y and x by name, else the
    last two space axes) halve; a third space axis halves where its voxels are
    near-isotropic with theirs."""
    space = [i for i, a in enumerate(axes) if a.type == "space"]
    named = [i for i in space if axes[i].name.lower() in ("y", "x")]
    plane = named if len(named) == 2 else space[-2:]
    rest = [i for i in space if i not in plane]
    step = [1] * len(axes)
    for i in plane:
        step[i] = 2
    halving = [i for i in plane if shape[i] > 1] or plane  # a 1-thick section keeps its size
    finest = min(scale[i] for i in halving)
    for i in rest:
        if scale[i] <= NEAR_ISOTROPIC * finest:
            step[i] = 2
    return tuple(f if n > 1 else 1 for f, n in zip(step, shape, strict=True))


def plan_pyramid(
    shape: Sequence[int],
    dims: Sequence[str],
    request: PyramidRequest,
    *,
    dtype: str | Any,
    chunks: Sequence[int] | None = None,
    found_units: Mapping[str, str] | None = None,
    found_voxel: Mapping[str, float] | None = None,
    found_origin: Mapping[str, float] | None = None,
) -> Pyramid:
    """Plan the levels of a pyramid of an image of ``shape`` (see the module docstring).

    Parameters
    ----------
    shape, dims
        The image at full resolution and its axis names.
    request
        What the user asked for.
    dtype
        The values' NumPy dtype (or its name): ``mean`` needs numbers whose sums float64
        holds exactly.
    chunks
        Chunks every level will have, when the user gave them: levels stop once the top
        fits in one.
    found_units, found_voxel, found_origin
        Units, voxel sizes and origins per axis name read from the source (MRC, TIFF,
        OME-Zarr); the request overrides units and voxel sizes.

    Raises
    ------
    SpecError
        For axes OME-Zarr does not allow, unknown units, a method that does not suit the
        values, downsampled axes the image does not have or that are not spatial, or more
        levels than halving can make.
    """
    names = tuple(dims)
    if len(names) != len(shape):
        raise SpecError(f"axes {','.join(names)} must name each of the image's {len(shape)} dims.")
    kinds = _check_axes(names)
    values = np.dtype(dtype)
    dtype_kind = values.kind
    if any(n < 1 for n in shape):
        raise SpecError(f"an image of shape {list(shape)} has no voxels; a pyramid needs some.")
    method: Method = request.method or ("mode" if dtype_kind == "b" else "mean")
    if method not in METHODS:
        raise SpecError(f"--method {shown(method)} is unknown; use mean, nearest or mode.")
    if method == "mean" and dtype_kind not in "iuf":
        raise SpecError(
            f"--method mean averages numbers, and these values are {_kind_word(dtype_kind)}; use "
            "--method mode (labels, masks) or --method nearest."
        )
    if method == "mean" and dtype_kind in "iu" and values.itemsize >= 8:
        raise SpecError(
            f"a mean of 64-bit integers ({values}) cannot be exact, as float64 holds 53 bits; "
            "give --method nearest or --method mode, or store the values as float64 first."
        )
    if method == "mode" and dtype_kind not in "biu":
        raise SpecError(
            f"--method mode picks the most frequent label, and these values are "
            f"{_kind_word(dtype_kind)}; use --method mean (intensities) or --method nearest."
        )
    if method == "nearest" and dtype_kind not in "biuf":
        raise SpecError(
            f"a pyramid downsamples numbers, and these values are {_kind_word(dtype_kind)}."
        )
    units = _units(names, kinds, request.units or {}, found_units or {})
    found_in_units = {  # the source's sizes, in the units asked for (given sizes are as given)
        n: _in_unit(float(v), (found_units or {}).get(n), u)
        for n, u in zip(names, units, strict=True)
        if (v := (found_voxel or {}).get(n)) is not None
    }
    voxel = _voxel(names, request.voxel_size or {}, found_in_units)
    origins = {
        n: _in_unit(float((found_origin or {}).get(n, 0.0)), (found_units or {}).get(n), u)
        for n, u in zip(names, units, strict=True)
    }
    axes = tuple(
        Axis(n, k, u, s, origins[n]) for n, k, u, s in zip(names, kinds, units, voxel, strict=True)
    )
    fixed: tuple[int, ...] | None = None
    if request.downsample is not None:
        for name in request.downsample:
            if name not in names:
                raise SpecError(
                    f"--downsample names axis {name!r}, which the image does not have "
                    f"({', '.join(names)})."
                )
            if axis_type(name) != "space":
                raise SpecError(
                    f"--downsample {name} is a {axis_type(name)} axis; pyramids halve space "
                    "axes only (e.g. --downsample y,x)."
                )
        if not request.downsample:
            raise SpecError("--downsample needs at least one axis, e.g. --downsample y,x.")
        fixed = tuple(2 if n in request.downsample else 1 for n in names)
    if request.levels is not None and request.levels < 1:
        raise SpecError(f"--levels {request.levels} must be at least 1 (level 0 alone).")
    shapes = [tuple(int(n) for n in shape)]
    factors: list[tuple[int, ...]] = []
    scale = list(voxel)
    while True:
        current = shapes[-1]
        if request.levels is not None and len(shapes) == request.levels:
            break
        step = fixed if fixed is not None else _default_step(current, axes, scale)
        step = tuple(f if n > 1 else 1 for f, n in zip(step, current, strict=True))
        if all(f == 1 for f in step):
            if request.levels is not None:
                raise SpecError(
                    f"--levels {request.levels} is more than this image allows: level "
                    f"{len(shapes) - 1} ({'x'.join(map(str, current))}) is one voxel across "
                    f"every halved axis; give at most --levels {len(shapes)}."
                )
            break
        if request.levels is None and _small_enough(current, step, chunks):
            break
        factors.append(step)
        shapes.append(_halved(current, step))
        scale = [s * f for s, f in zip(scale, step, strict=True)]
    return Pyramid(axes, tuple(shapes), tuple(factors), method, request.name)


def _small_enough(shape: Sequence[int], step: Sequence[int], chunks: Sequence[int] | None) -> bool:
    """Whether a level is small enough to be the top: at most :data:`TOP_PIXELS` across
    every axis that would halve next, or inside one chunk."""
    if all(n <= TOP_PIXELS for n, f in zip(shape, step, strict=True) if f > 1):
        return True
    return chunks is not None and all(n <= c for n, c in zip(shape, chunks, strict=True))


def _kind_word(kind: str) -> str:
    return {
        "b": "booleans", "c": "complex numbers", "M": "dates", "m": "time spans",
        "S": "bytes", "U": "text", "O": "Python objects", "V": "records",
        "f": "floating-point numbers", "i": "integers", "u": "integers",
    }.get(kind, f"of kind {kind!r}")  # fmt: skip


#: TIFF resolution units to micrometers per unit.
_TIFF_UNITS = {"centimeter": 1e4, "inch": 25400.0, "millimeter": 1e3, "micrometer": 1.0}


def source_geometry(
    attributes: Mapping[str, Any], dims: Sequence[str]
) -> tuple[dict[str, str], dict[str, float], dict[str, float]]:
    """Units, level-0 voxel sizes and origins per axis name that a source's attributes
    record: an OME-Zarr image's axes and first level (its transforms, then the
    multiscale's), an MRC header's voxel size and origin (x, y, z, ångström; a voxel size
    of 0 means unset), a TIFF's resolution tags (pixels per unit) and ImageJ's ``unit``
    and ``spacing`` (z)."""
    units: dict[str, str] = {}
    voxel: dict[str, float] = {}
    origin: dict[str, float] = {}
    image = read_ome(attributes)
    if image is not None:
        found = image.level0()
        for i, (name, _, unit) in enumerate(image.axes):
            if name not in dims:
                continue
            if unit:
                units[name] = unit
            if found is not None and i < len(found[0]) and found[0][i] > 0:
                voxel[name], origin[name] = found[0][i], found[1][i]
        return units, voxel, origin
    size = attributes.get("voxel_size")
    if isinstance(size, list) and len(size) == 3 and "origin" in attributes:  # MRC
        start = attributes.get("origin")
        starts = start if isinstance(start, list) and len(start) == 3 else [0.0] * 3
        for name, value, at in zip("xyz", size, starts, strict=True):
            if name in dims and isinstance(value, int | float) and value > 0:
                voxel[name], units[name] = float(value), "angstrom"
                if isinstance(at, int | float) and math.isfinite(at):
                    origin[name] = float(at)
        return units, voxel, origin
    resolution = attributes.get("resolution")
    unit = str(attributes.get("unit") or "")
    per_unit = _TIFF_UNITS.get(str(attributes.get("resolution_unit")))
    if isinstance(resolution, list) and len(resolution) == 2:
        named = bool(unit.strip()) and unit.strip().lower() != "pixel"
        for name, value in zip("xy", resolution, strict=True):
            if name not in dims or not isinstance(value, int | float) or value <= 0:
                continue
            if named:
                voxel[name], units[name] = 1 / value, unit.strip()
            elif per_unit is not None:
                voxel[name], units[name] = per_unit / value, "micrometer"
        spacing = attributes.get("spacing")
        if "z" in dims and isinstance(spacing, int | float) and spacing > 0 and named:
            voxel["z"], units["z"] = float(spacing), unit.strip()
    known = {k: _known_unit(v) for k, v in units.items()}
    return (
        {k: v for k, v in known.items() if v},
        {k: v for k, v in voxel.items() if k not in units or known[k]},
        origin,
    )


#: Metres per space unit, to move an origin into the unit the user asked for.
_METRES = {
    "angstrom": 1e-10, "attometer": 1e-18, "centimeter": 1e-2, "decimeter": 1e-1,
    "exameter": 1e18, "femtometer": 1e-15, "foot": 0.3048, "gigameter": 1e9,
    "hectometer": 1e2, "inch": 0.0254, "kilometer": 1e3, "megameter": 1e6, "meter": 1.0,
    "micrometer": 1e-6, "mile": 1609.344, "millimeter": 1e-3, "nanometer": 1e-9,
    "parsec": 3.0856775814913673e16, "petameter": 1e15, "picometer": 1e-12,
    "terameter": 1e12, "yard": 0.9144, "yoctometer": 1e-24, "yottameter": 1e24,
    "zeptometer": 1e-21, "zettameter": 1e21,
}  # fmt: skip


def _in_unit(value: float, found: str | None, unit: str | None) -> float:
    """A length of ``value`` in the source's unit ``found``, in ``unit``: converted between
    length units; kept as it is when either unit is unknown (the unit only names it)."""
    source = _known_unit(found) if found else ""
    if value and source != unit and source in _METRES and unit in _METRES:
        return float(f"{value * _METRES[source] / _METRES[unit]:.12g}")  # no 30.000000000000004
    return value


def _known_unit(unit: str) -> str:
    """``unit`` as an NGFF space unit, or ``""`` when it is none (ImageJ writes
    ``\\u00B5m`` and ``micron``)."""
    text = unit.replace("\\u00B5", "µ").strip().lower()
    found = UNIT_ALIASES.get(text, text)
    return found if found in SPACE_UNITS else ""
