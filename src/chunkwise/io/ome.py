"""OME-Zarr (NGFF) image metadata: written and validated through ome-zarr-models, read
leniently for ``inspect`` and for rechunking images that already exist.

NGFF 0.4 goes with Zarr format 2 (``multiscales`` in the group's attributes, for v2-only
viewers such as vizarr), NGFF 0.5 with Zarr format 3 (``ome.multiscales``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from chunkwise._version import __version__
from chunkwise.errors import MissingDependencyError, StoreError
from chunkwise.plan.pyramid import Pyramid

__all__ = [
    "require_ome_models",
    "validate_image",
    "write_image_metadata",
]


def require_ome_models() -> None:
    """Raise when ome-zarr-models is not installed.

    Raises
    ------
    MissingDependencyError
        Naming the extra that installs it.
    """
    if importlib.util.find_spec("ome_zarr_models") is None:
        raise MissingDependencyError(
            "writing OME-Zarr needs the ome-zarr-models package, which builds and validates "
            "the metadata; install it with: pip install 'chunkwise[ome]'."
        )


def load_models() -> None:
    """Import ome-zarr-models for both NGFF versions (pydantic's models are built on
    import: about 14 MB, which a run should not count as its own)."""
    _models(2)
    _models(3)


def _models(zarr_format: int) -> tuple[Any, Any, Any]:
    """``Image``, ``Axis`` and pydantic-zarr's ``ArraySpec`` for a zarr format."""
    require_ome_models()
    if zarr_format == 2:
        from ome_zarr_models.v04.axes import Axis as Axis04
        from ome_zarr_models.v04.image import Image as Image04
        from pydantic_zarr.v2 import ArraySpec as ArraySpec2

        return Image04, Axis04, ArraySpec2
    from ome_zarr_models.v05.axes import Axis as Axis05
    from ome_zarr_models.v05.image import Image as Image05
    from pydantic_zarr.v3 import ArraySpec as ArraySpec3

    return Image05, Axis05, ArraySpec3


#: What each level's voxels are, for the ``metadata`` of ``multiscales``.
_DESCRIPTIONS = {
    "mean": "each voxel is the mean of a window of the level below (2 along halved axes)",
    "mode": "each voxel is the most frequent value of a window of the level below (ties to "
    "the smallest)",
    "nearest": "each voxel is the first voxel of a window of the level below",
}


def write_image_metadata(group: Any, pyramid: Pyramid, extra: Mapping[str, Any]) -> None:
    """Write ``pyramid``'s ``multiscales`` into ``group``'s attributes (built by
    ome-zarr-models from the level arrays as stored), with ``extra`` beside them, then
    validate the result.

    Raises
    ------
    StoreError
        When ome-zarr-models finds the written image invalid.
    """
    zarr_format = group.metadata.zarr_format
    image_cls, axis_cls, spec_cls = _models(zarr_format)
    paths = [str(k) for k in range(pyramid.levels)]
    try:
        image = _new_image(image_cls, axis_cls, spec_cls, group, pyramid, paths)
    except Exception as exc:  # pydantic's ValidationError: the arrays disagree with the axes
        raise StoreError(
            f"the OME-Zarr metadata of {group.store_path} cannot be built from its levels "
            f"({_first_lines(exc)}); the target is not complete: remove it and run again."
        ) from None
    attributes = image.attributes.model_dump(exclude_none=True, by_alias=True, mode="json")
    group.update_attributes({**attributes, **extra})
    validate_image(group)


def _first_lines(exc: BaseException) -> str:
    return " ".join(str(exc).strip().splitlines()[:3])


def _new_image(
    image_cls: Any, axis_cls: Any, spec_cls: Any, group: Any, pyramid: Pyramid, paths: list[str]
) -> Any:
    return image_cls.new(
        array_specs=[spec_cls.from_zarr(group[p]) for p in paths],
        paths=paths,
        axes=[axis_cls(**axis.to_dict()) for axis in pyramid.axes],
        scales=[list(pyramid.scale(k)) for k in range(pyramid.levels)],
        translations=[
            list(t) if (t := pyramid.translation(k)) is not None else None
            for k in range(pyramid.levels)
        ],
        name=pyramid.name,
        multiscale_type=pyramid.method,
        metadata={
            "description": _DESCRIPTIONS[pyramid.method],
            "method": "chunkwise.rechunking.downsample.downsample",
            "version": __version__,
            "kwargs": {"method": pyramid.method},
        },
    )


def validate_image(group: Any) -> None:
    """Check an OME-Zarr image group with ome-zarr-models.

    Raises
    ------
    StoreError
        Naming what ome-zarr-models found wrong.
    """
    image_cls, _, _ = _models(group.metadata.zarr_format)
    try:
        image_cls.from_zarr(group)
    except Exception as exc:  # pydantic's ValidationError and zarr's errors alike
        raise StoreError(
            f"the OME-Zarr image at {group.store_path} is not valid NGFF: {_first_lines(exc)}"
        ) from None
