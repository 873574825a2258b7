"""OME-Zarr (NGFF) image metadata read leniently from a group's attributes: what
``inspect`` shows and lints, and what rechunking or re-pyramiding an existing image keeps.

Pure: dicts in, frozen values out (writing and validating go through ome-zarr-models, in
:mod:`chunkwise.io.ome`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["OmeDataset", "OmeImage", "ome_for_format", "read_ome"]


@dataclass(frozen=True, slots=True)
class OmeDataset:
    """One level of an OME-Zarr image, as its metadata describes it."""

    path: str
    scale: tuple[float, ...] | None
    translation: tuple[float, ...] | None


@dataclass(frozen=True, slots=True)
class OmeImage:
    """The first ``multiscales`` entry of a group's attributes.

    Attributes
    ----------
    version
        NGFF version (``"0.4"``, ``"0.5"``; ``""`` when not said).
    axes
        ``(name, type, unit)`` per axis (type and unit ``""`` when not given).
    datasets
        The levels, finest first as listed.
    name
        The image's name, or ``""``.
    labels
        It is a label image (``image-label`` metadata).
    scale, translation
        The multiscale's own ``coordinateTransformations`` (applied after each level's),
        or ``None``.
    method
        The multiscale's ``type`` (how its levels were downsampled), or ``""``.
    """

    version: str
    axes: tuple[tuple[str, str, str], ...]
    datasets: tuple[OmeDataset, ...]
    name: str
    labels: bool = False
    scale: tuple[float, ...] | None = None
    translation: tuple[float, ...] | None = None
    method: str = ""

    @property
    def blends_nothing(self) -> bool:
        """A label image, or levels made without blending values (``mode``, ``nearest``):
        a pyramid of it must not average."""
        return self.labels or self.method in ("mode", "nearest")

    def level0(self) -> tuple[tuple[float, ...], tuple[float, ...]] | None:
        """Voxel size and origin of the first level in physical units (its own transforms,
        then the multiscale's), or ``None`` when its scale is not given."""
        first = self.datasets[0] if self.datasets else None
        if first is None or first.scale is None:
            return None
        n = len(first.scale)
        scale = first.scale
        origin = (
            first.translation if first.translation and len(first.translation) == n else (0.0,) * n
        )
        if self.scale is not None and len(self.scale) == n:
            scale = tuple(a * b for a, b in zip(scale, self.scale, strict=True))
            origin = tuple(a * b for a, b in zip(origin, self.scale, strict=True))
        if self.translation is not None and len(self.translation) == n:
            origin = tuple(a + b for a, b in zip(origin, self.translation, strict=True))
        return scale, origin

    @property
    def axis_names(self) -> tuple[str, ...]:
        """The axes' names."""
        return tuple(a[0] for a in self.axes)


def _floats(value: Any) -> tuple[float, ...] | None:
    """Finite numbers, or ``None`` (strings, huge integers, NaN are malformed)."""
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in value
    ):
        return None
    try:
        out = tuple(float(v) for v in value)
    except OverflowError:
        return None
    return out if all(math.isfinite(v) for v in out) else None


def _transform(transforms: Any, kind: str) -> tuple[float, ...] | None:
    for item in transforms if isinstance(transforms, list) else []:
        if isinstance(item, Mapping) and item.get("type") == kind:
            return _floats(item.get(kind))
    return None


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def read_ome(attributes: Mapping[str, Any]) -> OmeImage | None:
    """The OME-Zarr image a group's attributes describe, or ``None`` when they describe
    none. Lenient: what is malformed is read as missing, for ``inspect`` to point out."""
    ome = attributes.get("ome")
    block = ome if isinstance(ome, Mapping) else attributes
    multiscales = block.get("multiscales")
    if not isinstance(multiscales, list) or not multiscales:
        return None
    first = multiscales[0]
    if not isinstance(first, Mapping):
        return None
    version = str((block.get("version") if block is ome else None) or first.get("version") or "")
    axes: list[tuple[str, str, str]] = []
    for i, axis in enumerate(_list(first.get("axes"))):
        if isinstance(axis, Mapping):
            axes.append(
                (str(axis.get("name", f"dim_{i}")), str(axis.get("type") or ""),
                 str(axis.get("unit") or ""))
            )  # fmt: skip
        elif isinstance(axis, str):  # NGFF 0.3 listed names only
            axes.append((axis, "", ""))
    datasets = tuple(
        OmeDataset(
            str(d.get("path")),
            _transform(d.get("coordinateTransformations"), "scale"),
            _transform(d.get("coordinateTransformations"), "translation"),
        )
        for d in _list(first.get("datasets"))
        if isinstance(d, Mapping) and isinstance(d.get("path"), str | int)
    )
    transforms = first.get("coordinateTransformations")
    return OmeImage(
        version, tuple(axes), datasets, str(first.get("name") or ""),
        labels=isinstance(block.get("image-label"), Mapping),
        scale=_transform(transforms, "scale"), translation=_transform(transforms, "translation"),
        method=str(first.get("type") or "") if isinstance(first.get("type"), str) else "",
    )  # fmt: skip


#: OME keys beside ``multiscales`` that NGFF 0.5 keeps under ``ome`` (0.4: at the top).
_OME_KEYS = (
    "multiscales",
    "omero",
    "image-label",
    "labels",
    "plate",
    "well",
    "bioformats2raw.layout",
)


def ome_for_format(attributes: Mapping[str, Any], zarr_format: int) -> dict[str, Any]:
    """A group's attributes with its OME metadata in the NGFF version of ``zarr_format``:
    0.4 (at the top, each ``multiscales`` entry with its ``version``) on Zarr v2, 0.5
    (under ``ome``, with one ``version``) on v3. Attributes without OME metadata are
    returned as they are."""
    out = dict(attributes)
    ome = out.get("ome")
    if zarr_format == 3 and not isinstance(ome, Mapping):
        moved = {key: out.pop(key) for key in _OME_KEYS if key in out}
        if not moved:
            return out
        for key in ("multiscales", "plate", "well"):
            if isinstance(moved.get(key), list):
                moved[key] = [_without_version(entry) for entry in moved[key]]
            elif isinstance(moved.get(key), Mapping):
                moved[key] = _without_version(moved[key])
        if isinstance(moved.get("image-label"), Mapping):
            moved["image-label"] = _without_version(moved["image-label"])
        out["ome"] = {"version": "0.5", **moved}
        return out
    if zarr_format == 2 and isinstance(ome, Mapping):
        del out["ome"]
        for key, value in ome.items():
            if key == "version":
                continue
            if key == "multiscales" and isinstance(value, list):
                value = [
                    {**entry, "version": "0.4"} if isinstance(entry, Mapping) else entry
                    for entry in value
                ]
            elif key in ("image-label", "plate", "well") and isinstance(value, Mapping):
                value = {**value, "version": "0.4"}
            out[key] = value
    return out


def _without_version(entry: Any) -> Any:
    if isinstance(entry, Mapping):
        return {k: v for k, v in entry.items() if k != "version"}
    return entry
