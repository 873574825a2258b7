"""A lint for OME-Zarr image pyramids: what makes a viewer fail, misplace levels or read
far more than it shows.

Pure: it takes plain facts about an image (its :class:`~chunkwise.model.ome.OmeImage`
metadata and each listed level's :class:`~chunkwise.plan.findings.ArrayFacts`) and returns
:class:`~chunkwise.plan.findings.Finding` values; ``chunkwise inspect`` gathers the facts.

=====  ====================  ========  ===================================================
rule   name                  severity  checks
=====  ====================  ========  ===================================================
CW201  ome-missing-level     error     a level the metadata lists has no array
CW202  ome-uneven-levels     warning   a level that is not the one above halved or kept
                                       along each axis, a scale that disagrees with the
                                       shapes, levels not finest first
CW203  ome-no-pyramid        warning   one level, larger than a viewer's first view
CW204  ome-top-level-large   warning   the coarsest level larger than a viewer's first view
CW205  ome-tile-reads        warning   chunks that make one viewport of a plane decode
                                       far more than it shows
CW206  ome-format-viewer     error     Zarr format 3 (NGFF 0.5) for a viewer that reads
                                       format 2 only
CW207  ome-invalid-metadata  warning   metadata that ome-zarr-models rejects
=====  ====================  ========  ===================================================

Levels halve by ``ceil`` or ``floor`` (``convert --ome-zarr`` rounds up, ome-zarr-py's
writer down); "the plane" is the last two space axes (the last two axes when the axes have
no types).
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from chunkwise.model.layout import ceil_div
from chunkwise.model.ome import OmeImage
from chunkwise.plan.findings import (
    SEVERITIES,
    ArrayFacts,
    Finding,
    LintThresholds,
    StoreFacts,
    target_url,
    workload_command,
)
from chunkwise.plan.pyramid import TOP_PIXELS
from chunkwise.units import format_bytes, format_shape

__all__ = [
    "VIEWERS",
    "OmeFacts",
    "OmeLevel",
    "Viewer",
    "drop_viewer_conflicts",
    "lint_ome",
    "plane_axes",
]


#: A finding's numbers and names.
Evidence = dict[str, float | int | str]


@dataclass(frozen=True)
class Viewer:
    """What chunkwise knows about an image viewer.

    Attributes
    ----------
    name
        As the user names it (``--viewer``).
    zarr_formats
        The Zarr formats it reads.
    """

    name: str
    zarr_formats: tuple[int, ...]


#: Viewers by lower-case name. vizarr reads Zarr format 2 only (the CryoET study pinned
#: zarr 2.18 for it); napari (napari-ome-zarr) and neuroglancer read both formats. A name
#: not here is accepted and checked for nothing.
VIEWERS: dict[str, Viewer] = {
    "vizarr": Viewer("vizarr", (2,)),
    "napari": Viewer("napari", (2, 3)),
    "neuroglancer": Viewer("neuroglancer", (2, 3)),
}


@dataclass(frozen=True)
class OmeLevel:
    """One level the image's metadata lists.

    Attributes
    ----------
    path
        The dataset path as listed (relative to the image group).
    array
        The level's array, or ``None`` when the store has no array there.
    scale
        The level's ``scale`` transform (units of the axes per element), or ``None``.
    """

    path: str
    array: ArrayFacts | None
    scale: tuple[float, ...] | None


@dataclass(frozen=True)
class OmeFacts:
    """What the lint needs to know about one OME-Zarr image.

    Attributes
    ----------
    group
        The image group's path in the store (``""`` for the root).
    image
        Its multiscales metadata, read leniently.
    zarr_format
        The group's Zarr format (2 or 3).
    levels
        The listed levels, in the listed order.
    invalid
        What ome-zarr-models rejects in the metadata (one phrase), or ``""``.
    """

    group: str
    image: OmeImage
    zarr_format: int
    levels: tuple[OmeLevel, ...]
    invalid: str = ""

    def level_path(self, level: OmeLevel) -> str:
        """The level's path in the store."""
        inner = level.path.strip("/")
        return f"{self.group}/{inner}" if self.group else inner

    @property
    def present(self) -> tuple[OmeLevel, ...]:
        """The levels whose array exists."""
        return tuple(level for level in self.levels if level.array is not None)


def plane_axes(image: OmeImage, ndim: int) -> tuple[int, int] | None:
    """Indices of the plane a viewer shows: the last two space axes (the last two axes when
    fewer than two are typed ``space`` or the axes do not match ``ndim``); ``None`` for
    fewer than two dims."""
    if ndim < 2:
        return None
    if len(image.axes) == ndim:
        space = [i for i, (_, kind, _) in enumerate(image.axes) if kind == "space"]
        if len(space) >= 2:
            return space[-2], space[-1]
    return ndim - 2, ndim - 1


def _axis(facts: OmeFacts, array: ArrayFacts, i: int) -> str:
    if array.dims is not None:
        return array.dims[i]
    if len(facts.image.axes) == len(array.shape):
        return facts.image.axes[i][0]
    return f"dim {i}"


def _image_source(store: StoreFacts, facts: OmeFacts) -> str:
    return f"{store.url}#{facts.group}" if facts.group else store.url


def _finest(facts: OmeFacts) -> OmeLevel | None:
    """The level with the most elements (level 0 of a well-ordered pyramid)."""
    present = facts.present
    if not present:
        return None
    return max(present, key=lambda level: math.prod(level.array.shape) if level.array else 0)


def _pyramid_source(store: StoreFacts, facts: OmeFacts) -> tuple[str, str] | None:
    """``(source, level)`` to write the pyramid again from: the image group when its first
    listed level is there and the finest (``convert --ome-zarr`` takes that level, with the
    axes, units and voxel size of the metadata), else the finest level's own array."""
    finest = _finest(facts)
    if finest is None:
        return None
    if facts.levels[0] is finest:
        return _image_source(store, facts), finest.path
    return f"{store.url}#{facts.level_path(finest)}", finest.path


def _convert_command(source: str, store: StoreFacts, facts: OmeFacts, zarr_format: int) -> str:
    parts = [
        "chunkwise", "convert", source, target_url(store.url, facts.group, "pyramid"),
        "--ome-zarr", "--zarr-format", str(zarr_format),
        *(["--method", "mode"] if facts.image.blends_nothing else []),  # never blend labels
        *_calibration(source, facts),
    ]  # fmt: skip
    return " ".join(shlex.quote(p) for p in parts)


def _calibration(source: str, facts: OmeFacts) -> list[str]:
    """``--voxel-size`` and ``--units`` of the level a fix starts from when it is not the
    image's first level (a bare level array has no metadata of its own to give them)."""
    path = source.rpartition("#")[2] if "#" in source else None
    level = next(
        (lv for lv in facts.levels if path is not None and facts.level_path(lv) == path), None
    )
    if level is None or level.scale is None or len(level.scale) != len(facts.image.axes):
        return []
    scale = level.scale
    if facts.image.scale is not None and len(facts.image.scale) == len(scale):
        scale = tuple(a * b for a, b in zip(scale, facts.image.scale, strict=True))
    names = facts.image.axis_names
    out = ["--voxel-size", ",".join(f"{n}={s:g}" for n, s in zip(names, scale, strict=True))]
    units = [f"{n}={u}" for n, _, u in facts.image.axes if u]
    return [*out, "--units", ",".join(units)] if units else out


def _rebuild(store: StoreFacts, facts: OmeFacts) -> str:
    """A fix that writes the pyramid again from its finest level."""
    found = _pyramid_source(store, facts)
    if found is None:
        return "restore the level arrays, or remove the image's multiscales metadata."
    source, level = found
    command = _convert_command(source, store, facts, facts.zarr_format)
    return (
        f"write the pyramid again from level {level!r} (levels halving down to "
        f"{TOP_PIXELS} pixels, each laid out for a viewer): {command}"
    )


def _missing(facts: OmeFacts, store: StoreFacts) -> list[Finding]:
    out = []
    for level in facts.levels:
        if level.array is not None:
            continue
        where = facts.level_path(level)
        out.append(
            Finding(
                "CW201",
                "error",
                where,
                f"the multiscales metadata lists level {level.path!r}, but the store has no "
                f"array at {where!r}: a viewer fails, or shows nothing, when it zooms to "
                "that level.",
                {"level": level.path},
                _rebuild(store, facts),
            )
        )
    return out


def _step(facts: OmeFacts, above: OmeLevel, level: OmeLevel) -> tuple[str, Evidence] | None:
    """What is uneven between two consecutive levels (a message and evidence), or ``None``."""
    a, b = above.array, level.array
    assert a is not None and b is not None
    if len(a.shape) != len(b.shape):
        return (
            f"level {level.path!r} has {len(b.shape)} dims and level {above.path!r} above it "
            f"{len(a.shape)}: levels are one image at different resolutions, with the same axes.",
            {"above": above.path, "dims": len(b.shape), "above_dims": len(a.shape)},
        )
    shape_a, shape_b = format_shape(a.shape), format_shape(b.shape)
    for i, (na, nb) in enumerate(zip(a.shape, b.shape, strict=True)):
        if nb > na:
            return (
                f"level {level.path!r} ({shape_b}) is larger than level {above.path!r} "
                f"({shape_a}) above it along {_axis(facts, b, i)}: NGFF lists levels finest "
                "first, and viewers take the first one as full resolution.",
                {"above": above.path, "axis": _axis(facts, b, i), "above_size": na, "size": nb},
            )
    for i, (na, nb) in enumerate(zip(a.shape, b.shape, strict=True)):
        factors = [f for f in (1, 2) if nb in (na // f, ceil_div(na, f))]
        axis = _axis(facts, b, i)
        evidence: Evidence = {"above": above.path, "axis": axis}
        if not factors:
            return (
                f"level {level.path!r} ({shape_b}) is not level {above.path!r} ({shape_a}) "
                f"halved or kept along each axis: along {axis}, {na} becomes {nb} "
                f"({na / max(nb, 1):.3g}x), an uneven zoom step.",
                evidence | {"above_size": na, "size": nb},
            )
        if above.scale is None or level.scale is None:
            continue
        if len(above.scale) != len(a.shape) or len(level.scale) != len(b.shape):
            continue
        sa, sb = above.scale[i], level.scale[i]
        if sa <= 0 or sb <= 0:
            continue
        ratio = sb / sa
        # the factor, or the extent ratio (ome-zarr-py scales a floored level by it)
        if not any(math.isclose(ratio, f, rel_tol=1e-3) for f in (*factors, na / max(nb, 1))):
            return (
                f"level {level.path!r} is scaled {ratio:.3g}x level {above.path!r} along "
                f"{axis} in the metadata, but {na} -> {nb} elements make it "
                f"{na / max(nb, 1):.3g}x: a viewer draws it at the wrong size, out of "
                "register with the other levels.",
                evidence | {"scale_ratio": ratio, "above_size": na, "size": nb},
            )
    return None


def _uneven(facts: OmeFacts, store: StoreFacts) -> list[Finding]:
    out = []
    for above, level in zip(facts.levels, facts.levels[1:], strict=False):
        if above.array is None or level.array is None:
            continue
        found = _step(facts, above, level)
        if found is not None:
            message, evidence = found
            out.append(
                Finding(
                    "CW202", "warning", facts.level_path(level), message, evidence,
                    _rebuild(store, facts),
                )
            )  # fmt: skip
    return out


def _top(facts: OmeFacts, store: StoreFacts, t: LintThresholds) -> Finding | None:
    present = facts.present
    if not present:
        return None
    top = min(present, key=lambda level: math.prod(level.array.shape) if level.array else 0)
    array = top.array
    assert array is not None
    plane = plane_axes(facts.image, len(array.shape))
    if plane is None:
        return None
    sizes = [array.shape[i] for i in plane]
    limit = t.first_view_pixels
    if max(sizes) <= limit:
        return None
    more = 0
    while any(ceil_div(n, 2**more) > limit for n in sizes):
        more += 1
    after = format_shape([ceil_div(n, 2**more) for n in sizes])
    y, x = (_axis(facts, array, i) for i in plane)
    plane_bytes = math.prod(sizes) * array.itemsize
    levels = f"level{'s' * (more != 1)}"
    grow = (
        f"{more} more {levels} halving {y} and {x} ({len(present) + more} in all) would make "
        f"it {after}."
    )
    evidence: Evidence = {
        "top_level": top.path, "top_plane": format_shape(sizes), "plane_bytes": plane_bytes,
        "levels": len(present), "levels_needed": len(present) + more,
    }  # fmt: skip
    if len(facts.levels) == 1:
        return Finding(
            "CW203",
            "warning",
            facts.level_path(top),
            f"the image has one level, {format_shape(array.shape)}: a viewer showing the "
            f"whole image reads a {format_shape(sizes)} plane ({format_bytes(plane_bytes)}) "
            f"at full resolution, more than a {limit}-pixel first view; {grow}",
            evidence,
            _rebuild(store, facts),
        )
    return Finding(
        "CW204",
        "warning",
        facts.level_path(top),
        f"the coarsest of the {len(present)} levels, {top.path!r}, is {format_shape(sizes)} "
        f"in {y}, {x} ({format_bytes(plane_bytes)} a plane): a viewer's first view of the "
        f"whole image reads all of it, more than a {limit}-pixel first view; {grow}",
        evidence,
        _rebuild(store, facts),
    )


@dataclass(frozen=True)
class _Reads:
    """What one viewport of one plane of a level decodes."""

    level: OmeLevel
    viewport: tuple[int, int]
    read: tuple[int, ...]  # elements per dim of the chunks touched (within the array)
    plane: tuple[int, int]

    @property
    def ratio(self) -> float:
        return math.prod(self.read) / math.prod(self.viewport)


def _reads(
    facts: OmeFacts, level: OmeLevel, viewport_pixels: int, chunks: Sequence[int] | None = None
) -> _Reads | None:
    """What one viewport reads at ``level`` in its chunks (or in ``chunks``)."""
    array = level.array
    if array is None or 0 in array.shape:
        return None
    chunks = array.chunks if chunks is None else chunks
    plane = plane_axes(facts.image, len(array.shape))
    if plane is None or len(chunks) != len(array.shape):
        return None
    viewport = tuple(min(array.shape[i], viewport_pixels) for i in plane)
    read = []
    for i, (n, c) in enumerate(zip(array.shape, chunks, strict=True)):
        if i in plane:
            v = viewport[plane.index(i)]
            read.append(min(ceil_div(v, c) * c, n))  # a viewport aligned with the chunks
        else:
            read.append(min(c, n))  # one index of the other axes
    return _Reads(level, (viewport[0], viewport[1]), tuple(read), plane)


def _tile_reads(facts: OmeFacts, store: StoreFacts, t: LintThresholds) -> Finding | None:
    found = [
        r
        for level in facts.present
        if (r := _reads(facts, level, t.viewport_pixels)) is not None
        and r.ratio > t.viewport_read_ratio
    ]
    if not found:
        return None
    first = found[0]
    array = first.level.array
    assert array is not None
    y, x = (_axis(facts, array, i) for i in first.plane)
    itemsize = array.itemsize
    shown_bytes = math.prod(first.viewport) * itemsize
    read_bytes = math.prod(first.read) * itemsize
    deep = [
        f"{c} deep along {_axis(facts, array, i)}"
        for i, c in enumerate(first.read)
        if i not in first.plane and c > 1
    ]
    depth = math.prod(c for i, c in enumerate(first.read) if i not in first.plane)
    if deep and depth >= first.ratio / depth:  # planes read outweigh the in-plane excess
        cause = f"each chunk is {' and '.join(deep)}"
    else:
        in_plane = format_shape([array.chunks[i] for i in first.plane])
        cause = f"chunks of {in_plane} in-plane are far larger than the viewport"
    others = [r.level.path for r in found[1:]]
    also = f" (levels {', '.join(map(repr, others))} likewise)" if others else ""
    command = workload_command(
        _image_source(store, facts), target_url(store.url, facts.group, "viewer"),
        workload="pyramid-viewer", storage=None, zarr_format=facts.zarr_format,
    )  # fmt: skip
    return Finding(
        "CW205",
        "warning",
        facts.level_path(first.level),
        f"chunks {format_shape(array.chunks)} make a viewer showing a "
        f"{format_shape(first.viewport)} viewport of one {y}-{x} plane of level "
        f"{first.level.path!r} decode {format_bytes(read_bytes)} for "
        f"{format_bytes(shown_bytes)} on screen ({first.ratio:.3g}x): {cause}{also}.",
        {
            "level": first.level.path,
            "viewport": format_shape(first.viewport),
            "read_bytes": read_bytes,
            "viewport_bytes": shown_bytes,
            "ratio": first.ratio,
            "levels": ",".join(r.level.path for r in found),
        },
        "lay every level out for a viewer (rechunking the image group rechunks each level "
        f"and keeps the metadata): {command}",
    )


def _format_viewer(facts: OmeFacts, store: StoreFacts, viewer: str | None) -> Finding | None:
    known = VIEWERS.get((viewer or "").strip().lower())
    if known is None or facts.zarr_format in known.zarr_formats:
        return None
    formats = " or ".join(map(str, known.zarr_formats))
    version = f" (NGFF {facts.image.version})" if facts.image.version else ""
    found = _pyramid_source(store, facts)
    target = min(known.zarr_formats)
    if found is None:
        fix = f"write the image in Zarr format {target}."
    else:
        ngff = " (NGFF 0.4)" if target == 2 else ""
        command = _convert_command(found[0], store, facts, target)
        fix = f"write a Zarr format {target} copy{ngff}: {command}"
    return Finding(
        "CW206",
        "error",
        facts.group,
        f"{known.name} reads Zarr format {formats} only, and this image is Zarr format "
        f"{facts.zarr_format}{version}: {known.name} cannot open it.",
        {"viewer": known.name, "zarr_format": facts.zarr_format},
        fix,
    )


def _invalid(facts: OmeFacts, store: StoreFacts) -> Finding | None:
    if not facts.invalid:
        return None
    version = f"NGFF {facts.image.version} " if facts.image.version else ""
    return Finding(
        "CW207",
        "warning",
        facts.group,
        f"the image's {version}metadata is not valid ({facts.invalid}): viewers that "
        "validate it refuse the image, others may misread it.",
        {"problem": facts.invalid},
        _rebuild(store, facts),
    )


def drop_viewer_conflicts(
    found: Sequence[Finding], images: Sequence[OmeFacts], thresholds: LintThresholds
) -> tuple[Finding, ...]:
    """``found`` without the CW101 (small-chunks) findings on image levels whose grown
    chunks would make a viewer read more than CW205 allows: an image is laid out for
    viewers, and the lint should not send the user back and forth between two layouts."""
    levels = {
        facts.level_path(level): (facts, level) for facts in images for level in facts.present
    }
    kept = []
    for finding in found:
        grown = str(finding.evidence.get("grown_chunks", ""))
        if finding.rule == "CW101" and finding.path in levels and grown:
            facts, level = levels[finding.path]
            chunks = [int(c) for c in grown.split(",") if c.strip().isdigit()]
            reads = _reads(facts, level, thresholds.viewport_pixels, chunks)
            if reads is not None and reads.ratio > thresholds.viewport_read_ratio:
                continue
        kept.append(finding)
    return tuple(kept)


def lint_ome(
    images: Sequence[OmeFacts],
    store: StoreFacts,
    *,
    viewer: str | None,
    thresholds: LintThresholds,
) -> tuple[Finding, ...]:
    """Run every OME-Zarr rule on every image.

    Parameters
    ----------
    images
        Facts of each OME-Zarr image in the store.
    store
        Facts of the store (its URL names the sources of the suggested commands).
    viewer
        The viewer the images are for (``--viewer``), or ``None``; names not in
        :data:`VIEWERS` are checked for nothing.
    thresholds
        Where the rules fire (``first_view_pixels``, ``viewport_pixels``,
        ``viewport_read_ratio``).

    Returns
    -------
    tuple of Finding
        Most severe first, then by rule and path.
    """
    found: list[Finding] = []
    for facts in images:
        found += _missing(facts, store)
        found += _uneven(facts, store)
        for result in (
            _top(facts, store, thresholds),
            _tile_reads(facts, store, thresholds),
            _format_viewer(facts, store, viewer),
            _invalid(facts, store),
        ):
            if result is not None:
                found.append(result)
    return tuple(sorted(found, key=lambda f: (-SEVERITIES.index(f.severity), f.rule, f.path)))
