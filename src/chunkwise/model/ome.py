"""OME-Zarr (NGFF) image metadata read leniently from a group's attributes: what
``inspect`` shows and lints, and what rechunking or re-pyramiding an existing image keeps.

Pure: dicts in, frozen values out (writing and validating go through ome-zarr-models, in
:mod:`chunkwise.io.ome`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["OmeDataset", "OmeImage", "read_ome"]


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
    """

    version: str
    axes: tuple[tuple[str, str, str], ...]
    datasets: tuple[OmeDataset, ...]
    name: str
    labels: bool = False
    scale: tuple[float, ...] | None = None
    translation: tuple[float, ...] | None = None

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
    if isinstance(value, Sequence) and all(isinstance(v, int | float) for v in value):
        return tuple(float(v) for v in value)
    return None


def _transform(transforms: Any, kind: str) -> tuple[float, ...] | None:
    for item in transforms if isinstance(transforms, list) else []:
        if isinstance(item, Mapping) and item.get("type") == kind:
            return _floats(item.get(kind))
    return None


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
    for i, axis in enumerate(first.get("axes") or []):
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
        for d in first.get("datasets") or []
        if isinstance(d, Mapping) and d.get("path") is not None
    )
    transforms = first.get("coordinateTransformations")
    return OmeImage(
        version, tuple(axes), datasets, str(first.get("name") or ""),
        labels=isinstance(block.get("image-label"), Mapping),
        scale=_transform(transforms, "scale"), translation=_transform(transforms, "translation"),
    )  # fmt: skip
