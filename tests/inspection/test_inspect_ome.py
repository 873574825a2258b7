"""``inspect`` on OME-Zarr images: images written by ome-zarr-py's own writer (NGFF 0.4 on
Zarr v2, 0.5 on v3) are recognized with their axes, units and levels; hand-broken copies
fire each pyramid rule (CW201 ...) with its message; the fixes the rules print, run, clear
them; the JSON and the CLI carry it all."""

from __future__ import annotations

import json
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

import chunkwise
from chunkwise.cli.main import cli
from chunkwise.inspection.store import InspectReport
from chunkwise.model.ome import OmeDataset, OmeImage
from chunkwise.plan.findings import OME_RULES, ArrayFacts, Finding, LintThresholds, StoreFacts
from chunkwise.plan.ome_lint import (
    OmeFacts,
    OmeLevel,
    drop_viewer_conflicts,
    lint_ome,
    plane_axes,
)

pytestmark = [  # ome-zarr-py's writer and zarr warn about defaults and deprecations
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

VERSIONS = ["0.4", "0.5"]
UNITS = {"z": "micrometer", "y": "micrometer", "x": "micrometer"}


def write_ome(
    path: Path,
    data: np.ndarray,
    *,
    version: str,
    axes: str,
    chunks: tuple[int, ...],
    scale_factors: list[int],
    **options: Any,
) -> Path:
    """An OME-Zarr image written by ome-zarr-py (NGFF 0.4 on Zarr v2, 0.5 on v3)."""
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.io import parse_url
    from ome_zarr.writer import write_image

    fmt = FormatV04() if version == "0.4" else FormatV05()
    location = parse_url(str(path), mode="w", fmt=fmt)
    assert location is not None
    group = zarr.open_group(location.store, mode="w", zarr_format=fmt.zarr_format)
    write_image(
        data, group, axes=axes, fmt=fmt, scale_factors=scale_factors,
        storage_options={"chunks": chunks}, **options,
    )  # fmt: skip
    return path


def good_image(path: Path, version: str) -> Path:
    """Two channels of a 4x300x260 stack in micrometers, three levels halving y and x,
    chunks of 128x128 pixels of one plane."""
    data = np.random.default_rng(0).integers(0, 255, (2, 4, 300, 260), dtype="uint8")
    return write_ome(
        path, data, version=version, axes="czyx", chunks=(1, 1, 128, 128),
        scale_factors=[2, 4], axes_units=UNITS, scale={"z": 2.0, "y": 0.5, "x": 0.5},
        name="cells",
    )  # fmt: skip


def edit_metadata(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``change`` to the first ``multiscales`` entry, as stored."""
    v3 = (path / "zarr.json").is_file()
    key = path / ("zarr.json" if v3 else ".zattrs")
    doc = json.loads(key.read_text())
    attributes = doc["attributes"]["ome"] if v3 else doc
    change(attributes["multiscales"][0])
    key.write_text(json.dumps(doc))


def set_shape(array: Path, shape: tuple[int, ...]) -> None:
    """Rewrite an array's stored shape (its chunks stay as they are)."""
    key = array / "zarr.json" if (array / "zarr.json").is_file() else array / ".zarray"
    doc = json.loads(key.read_text())
    doc["shape"] = list(shape)
    key.write_text(json.dumps(doc))


def ome(report: InspectReport, rule: str) -> list[Finding]:
    return [f for f in report.all_findings if f.rule == rule]


def ome_rules(report: InspectReport) -> set[str]:
    return {f.rule for f in report.all_findings if f.rule in OME_RULES}


def q(value: object) -> str:
    return shlex.quote(str(value))


# --- recognition ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_an_image_written_by_ome_zarr_py_shows_its_axes_and_levels_and_lints_clean(
    tmp_path: Path, version: str
) -> None:
    path = good_image(tmp_path / "cells.zarr", version)
    fmt = 2 if version == "0.4" else 3
    report = chunkwise.inspect(path)
    (image,) = report.images
    assert (image.path, image.version, image.name, image.zarr_format) == ("", version, "cells", fmt)
    assert image.axes == (
        ("c", "channel", ""),
        ("z", "space", "micrometer"),
        ("y", "space", "micrometer"),
        ("x", "space", "micrometer"),
    )
    # ome-zarr-py halves y and x rounding down, and scales the levels to match
    assert [(lv.path, lv.shape, lv.scale) for lv in image.levels] == [
        ("s0", (2, 4, 300, 260), (1.0, 2.0, 0.5, 0.5)),
        ("s1", (2, 4, 150, 130), (1.0, 2.0, 1.0, 1.0)),
        ("s2", (2, 4, 75, 65), (1.0, 2.0, 2.0, 2.0)),
    ]
    for level in image.levels:
        assert level.shape == zarr.open_array(path / level.path, mode="r").shape
    # NGFF 0.4 arrays on Zarr v2 have no dimension names: the axes name them
    assert {a.path: a.dims for a in report.arrays} == {
        p: ("c", "z", "y", "x") for p in ("s0", "s1", "s2")
    }
    assert ome_rules(report) == set()
    assert ome_rules(chunkwise.inspect(path, viewer="vizarr" if fmt == 2 else "napari")) == set()
    lines = report.lines()
    assert (
        f"OME-Zarr image 'cells' (NGFF {version}, Zarr v{fmt}): axes c (channel), "
        "z (space, micrometer), y (space, micrometer), x (space, micrometer)"
    ) in lines
    assert "  level s1: 2x4x150x130, scale 1x2x1x1" in lines
    assert f"s0: v{fmt} uint8 2x4x300x260 (c, z, y, x)" in lines
    assert "OME-Zarr image &#x27;cells&#x27;" in report._repr_html_()


def test_an_image_in_a_subgroup_is_found_with_its_level_paths(tmp_path: Path) -> None:
    store = tmp_path / "plate.zarr"
    zarr.open_group(store, mode="w", zarr_format=2).create_group("A")
    good_image(store / "A" / "1", "0.4")
    shutil.rmtree(store / "A" / "1" / "s2")
    report = chunkwise.inspect(store)
    (image,) = report.images
    assert image.path == "A/1"
    assert [lv.array for lv in image.levels] == ["A/1/s0", "A/1/s1", "A/1/s2"]
    assert any(
        line.startswith("OME-Zarr image 'cells' at A/1/ (NGFF 0.4, Zarr v2): axes c (channel)")
        for line in report.lines()
    )
    (missing,) = ome(report, "CW201")
    assert missing.path == "A/1/s2"
    assert f"chunkwise convert {q(f'{store}#A/1')} " in missing.fix


def test_the_workload_comparison_prices_image_levels_with_their_axes_and_format(
    tmp_path: Path,
) -> None:
    path = good_image(tmp_path / "cells.zarr", "0.4")
    report = chunkwise.inspect(path, workload="pyramid-viewer")
    assert {c.path for c in report.comparisons} == {"s0", "s1", "s2"}
    for comp in report.comparisons:
        # a level of an NGFF 0.4 image stays on Zarr v2, and the whole image is rechunked
        assert comp.best_layout["zarr_format"] == 2
        if comp.command:
            assert comp.command.startswith(f"chunkwise rechunk {q(path)} ")
            assert comp.command.endswith(
                "--workload pyramid-viewer --storage local-ssd --zarr-format 2"
            )


# --- each rule on a broken copy ----------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_a_deleted_level_is_a_missing_level(tmp_path: Path, version: str) -> None:
    path = good_image(tmp_path / "cells.zarr", version)
    shutil.rmtree(path / "s1")
    report = chunkwise.inspect(path)
    (missing,) = ome(report, "CW201")
    assert (missing.severity, missing.path) == ("error", "s1")
    assert missing.message == (
        "the multiscales metadata lists level 's1', but the store has no array at 's1': "
        "a viewer fails, or shows nothing, when it zooms to that level."
    )
    fmt = 2 if version == "0.4" else 3
    assert missing.fix == (
        "write the pyramid again from level 's0' (levels halving down to 256 pixels, each "
        f"laid out for a viewer): chunkwise convert {q(path)} {q(tmp_path / 'cells-pyramid.zarr')} "
        f"--ome-zarr --zarr-format {fmt}"
    )
    assert ome_rules(report) == {"CW201"}  # s0 and s2 are not compared across the gap
    assert "  level s1: MISSING (no array at 's1')" in report.lines()


@pytest.mark.parametrize("version", VERSIONS)
def test_a_level_of_another_shape_is_an_uneven_level(tmp_path: Path, version: str) -> None:
    path = good_image(tmp_path / "cells.zarr", version)
    set_shape(path / "s1", (2, 4, 100, 130))
    report = chunkwise.inspect(path)
    uneven = ome(report, "CW202")
    assert [f.path for f in uneven] == ["s1", "s2"]  # s1 -> s2 is uneven too
    assert uneven[0].message == (
        "level 's1' (2x4x100x130) is not level 's0' (2x4x300x260) halved or kept along each "
        "axis: along y, 300 becomes 100 (3x), an uneven zoom step."
    )
    assert uneven[0].severity == "warning"
    assert uneven[0].fix.startswith("write the pyramid again from level 's0'")


def test_a_scale_that_disagrees_with_the_shapes_is_an_uneven_level(tmp_path: Path) -> None:
    path = good_image(tmp_path / "cells.zarr", "0.4")

    def unscaled(multiscale: dict[str, Any]) -> None:
        multiscale["datasets"][1]["coordinateTransformations"][0]["scale"] = [1, 2, 0.5, 0.5]

    edit_metadata(path, unscaled)
    report = chunkwise.inspect(path)
    first = ome(report, "CW202")[0]
    assert first.path == "s1"
    assert first.message == (
        "level 's1' is scaled 1x level 's0' along y in the metadata, but 300 -> 150 elements "
        "make it 2x: a viewer draws it at the wrong size, out of register with the other levels."
    )


def test_levels_listed_coarsest_first_are_uneven_and_the_fix_starts_from_the_finest(
    tmp_path: Path,
) -> None:
    path = good_image(tmp_path / "cells.zarr", "0.5")
    edit_metadata(path, lambda multiscale: multiscale["datasets"].reverse())
    report = chunkwise.inspect(path)
    uneven = ome(report, "CW202")
    assert [f.path for f in uneven] == ["s0", "s1"]
    assert uneven[1].message == (
        "level 's1' (2x4x150x130) is larger than level 's2' (2x4x75x65) above it along y: "
        "NGFF lists levels finest first, and viewers take the first one as full resolution."
    )
    # convert takes an image group's first level: here the finest level is named instead
    assert f"chunkwise convert {q(f'{path}#s0')} " in uneven[1].fix


@pytest.mark.parametrize("version", VERSIONS)
def test_one_level_of_2048_pixels_is_no_pyramid(tmp_path: Path, version: str) -> None:
    data = np.zeros((2048, 2048), dtype="uint8")
    path = write_ome(
        tmp_path / "flat.zarr", data, version=version, axes="yx", chunks=(256, 256),
        scale_factors=[],
    )  # fmt: skip
    report = chunkwise.inspect(path)
    assert [lv.path for lv in report.images[0].levels] == ["s0"]
    (flat,) = ome(report, "CW203")
    assert (flat.severity, flat.path) == ("warning", "s0")
    assert flat.message == (
        "the image has one level, 2048x2048: a viewer showing the whole image reads a "
        "2048x2048 plane (4 MiB) at full resolution, more than a 1024-pixel first view; 1 more "
        "level halving y and x (2 in all) would make it 1024x1024."
    )
    assert flat.evidence["levels_needed"] == 2
    assert ome_rules(report) == {"CW203"}
    # the fix, run, writes the pyramid down to a first view
    target = tmp_path / "flat-pyramid.zarr"
    fmt = 2 if version == "0.4" else 3
    assert flat.fix.endswith(
        f"chunkwise convert {q(path)} {q(target)} --ome-zarr --zarr-format {fmt}"
    )
    run = CliRunner().invoke(cli, [*shlex.split(flat.fix.partition(": ")[2])[1:], "--quiet"])
    assert run.exit_code == 0, run.output
    fixed = chunkwise.inspect(target)
    assert ome_rules(fixed) == set()
    assert fixed.images[0].levels[-1].shape == (256, 256)


@pytest.mark.parametrize("version", VERSIONS)
def test_chunks_64_planes_deep_make_a_viewport_read_64_planes(tmp_path: Path, version: str) -> None:
    data = np.zeros((64, 256, 256), dtype="uint8")
    path = write_ome(
        tmp_path / "deep.zarr", data, version=version, axes="zyx", chunks=(64, 256, 256),
        scale_factors=[2],
    )  # fmt: skip
    report = chunkwise.inspect(path)
    (deep,) = ome(report, "CW205")
    assert (deep.severity, deep.path) == ("warning", "s0")
    assert deep.message == (
        "chunks 64x256x256 make a viewer showing a 256x256 viewport of one y-x plane of level "
        "'s0' decode 4 MiB for 64 KiB on screen (64x): each chunk is 64 deep along z (levels "
        "'s1' likewise)."
    )
    fmt = 2 if version == "0.4" else 3
    command = (
        f"chunkwise rechunk {q(path)} {q(tmp_path / 'deep-viewer.zarr')} --workload "
        f"pyramid-viewer --zarr-format {fmt}"
    )
    assert deep.fix == (
        "lay every level out for a viewer (rechunking the image group rechunks each level and "
        f"keeps the metadata): {command}"
    )
    assert deep.evidence["levels"] == "s0,s1"
    if fmt == 3:  # on v2, rechunk keeps NGFF 0.4 levels whole (see the report to the owner)
        run = CliRunner().invoke(cli, [*shlex.split(command)[1:], "--quiet"])
        assert run.exit_code == 0, run.output
        fixed = chunkwise.inspect(tmp_path / "deep-viewer.zarr")
        assert ome_rules(fixed) == set()
        assert [lv.shape for lv in fixed.images[0].levels] == [(64, 256, 256), (64, 128, 128)]


def test_format_3_for_vizarr_is_a_format_viewer_finding_and_its_fix_clears_it(
    tmp_path: Path,
) -> None:
    path = good_image(tmp_path / "cells.zarr", "0.5")
    report = chunkwise.inspect(path, viewer="vizarr")
    (wrong,) = ome(report, "CW206")
    assert (wrong.severity, wrong.path) == ("error", "")
    assert wrong.message == (
        "vizarr reads Zarr format 2 only, and this image is Zarr format 3 (NGFF 0.5): vizarr "
        "cannot open it."
    )
    target = tmp_path / "cells-pyramid.zarr"
    command = f"chunkwise convert {q(path)} {q(target)} --ome-zarr --zarr-format 2"
    assert wrong.fix == f"write a Zarr format 2 copy (NGFF 0.4): {command}"
    for other in (None, "napari", "neuroglancer", "a-viewer-chunkwise-does-not-know"):
        assert ome_rules(chunkwise.inspect(path, viewer=other)) == set()
    assert ome(chunkwise.inspect(path, viewer=" VizArr "), "CW206")
    run = CliRunner().invoke(cli, [*shlex.split(command)[1:], "--quiet"])
    assert run.exit_code == 0, run.output
    fixed = chunkwise.inspect(target, viewer="vizarr")
    assert ome_rules(fixed) == set()
    (image,) = fixed.images
    assert (image.version, image.zarr_format) == ("0.4", 2)
    assert image.axes[1:] == tuple((a, "space", "micrometer") for a in "zyx")


@pytest.mark.parametrize("version", VERSIONS)
def test_metadata_ome_zarr_models_rejects_is_invalid_metadata(tmp_path: Path, version: str) -> None:
    path = good_image(tmp_path / "cells.zarr", version)

    def short_scale(multiscale: dict[str, Any]) -> None:
        multiscale["datasets"][1]["coordinateTransformations"][0]["scale"] = [2, 1, 1]

    edit_metadata(path, short_scale)
    (bad,) = ome(chunkwise.inspect(path), "CW207")
    assert (bad.severity, bad.path) == ("warning", "")
    assert bad.message.startswith(
        f"the image's NGFF {version} metadata is not valid (multiscales.0.datasets.1."
        "coordinateTransformations: The transforms have inconsistent dimensionality"
    )
    assert bad.message.endswith(
        "): viewers that validate it refuse the image, others may misread it."
    )


def test_ngff_0_4_metadata_in_a_zarr_v3_group_is_invalid_metadata(tmp_path: Path) -> None:
    source = good_image(tmp_path / "cells.zarr", "0.4")
    attributes = json.loads((source / ".zattrs").read_text())
    group = zarr.open_group(tmp_path / "mixed.zarr", mode="w", zarr_format=3)
    for level in ("s0", "s1", "s2"):
        group.create_array(level, data=zarr.open_array(source / level, mode="r")[:])
    group.attrs.update(attributes)
    report = chunkwise.inspect(tmp_path / "mixed.zarr")
    (bad,) = ome(report, "CW207")
    assert bad.message == (
        "the image's NGFF 0.4 metadata is not valid (NGFF 0.4 goes with Zarr format 2, not 3): "
        "viewers that validate it refuse the image, others may misread it."
    )
    assert report.images[0].version == "0.4"


# --- JSON and the CLI ------------------------------------------------------------------------


def test_json_carries_the_image_its_levels_and_its_findings(tmp_path: Path) -> None:
    path = good_image(tmp_path / "cells.zarr", "0.4")
    shutil.rmtree(path / "s2")
    doc = json.loads(json.dumps(chunkwise.inspect(path).to_json()))
    (image,) = doc["images"]
    assert image["ngff_version"] == "0.4" and image["name"] == "cells"
    assert image["axes"][0] == {"name": "c", "type": "channel", "unit": ""}
    assert image["axes"][3] == {"name": "x", "type": "space", "unit": "micrometer"}
    assert [(lv["path"], lv["exists"], lv["shape"]) for lv in image["levels"]] == [
        ("s0", True, [2, 4, 300, 260]),
        ("s1", True, [2, 4, 150, 130]),
        ("s2", False, None),
    ]
    assert image["levels"][1]["scale"] == [1.0, 2.0, 1.0, 1.0]
    assert image["levels"][1]["chunks"] == [1, 1, 128, 128]
    (finding,) = image["findings"]
    assert (finding["rule"], finding["name"], finding["path"]) == (
        "CW201",
        "ome-missing-level",
        "s2",
    )
    assert doc["arrays"][0]["dims"] == ["c", "z", "y", "x"]


def test_cli_inspect_viewer_vizarr_prints_the_finding_and_exits_0(tmp_path: Path) -> None:
    path = good_image(tmp_path / "cells.zarr", "0.5")
    runner = CliRunner()
    result = runner.invoke(cli, ["inspect", str(path), "--viewer", "vizarr"])
    assert result.exit_code == 0, result.output
    assert (
        "  error CW206: vizarr reads Zarr format 2 only, and this image is Zarr format 3 "
        "(NGFF 0.5): vizarr cannot open it."
    ) in result.output
    assert "OME-Zarr image 'cells' (NGFF 0.5, Zarr v3)" in result.output
    as_json = runner.invoke(cli, ["inspect", str(path), "--viewer", "vizarr", "--json"])
    doc = json.loads(as_json.output)
    assert doc["viewer"] == "vizarr"
    assert [f["name"] for f in doc["images"][0]["findings"]] == ["ome-format-viewer"]
    failing = runner.invoke(cli, ["inspect", str(path), "--viewer", "vizarr", "--fail-on", "error"])
    assert failing.exit_code == 1
    unknown = runner.invoke(cli, ["inspect", str(path), "--viewer", "my-viewer"])
    assert unknown.exit_code == 0 and "CW206" not in unknown.output


# --- the rules on plain values -------------------------------------------------------------

STORE = StoreFacts(url="img.zarr", remote=False, is_group=True, members=2, consolidated=False)
YX = OmeImage("0.4", (("y", "space", "micrometer"), ("x", "space", "micrometer")), (), "")


def level(path: str, shape: tuple[int, ...], chunks: tuple[int, ...], scale: float) -> OmeLevel:
    facts = ArrayFacts(path=path, zarr_format=2, shape=shape, chunks=chunks, shards=None,
                       itemsize=2, dims=("y", "x"))  # fmt: skip
    return OmeLevel(path, facts, (scale, scale))


def image(*levels: OmeLevel) -> OmeFacts:
    datasets = tuple(OmeDataset(lv.path, lv.scale, None) for lv in levels)
    meta = OmeImage(YX.version, YX.axes, datasets, "")
    return OmeFacts("", meta, 2, levels)


def rules(facts: OmeFacts, viewer: str | None = None) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in lint_ome([facts], STORE, viewer=viewer, thresholds=LintThresholds()):
        out.setdefault(f.rule, []).append(f)
    return out


def test_a_top_level_larger_than_a_first_view_names_the_levels_that_fix_it() -> None:
    big = image(
        level("0", (8192, 6000), (512, 512), 1.0), level("1", (4096, 3000), (512, 512), 2.0)
    )
    (top,) = rules(big)["CW204"]
    assert top.path == "1"
    assert top.message == (
        "the coarsest of the 2 levels, '1', is 4096x3000 in y, x (23.4 MiB a plane): a viewer's "
        "first view of the whole image reads all of it, more than a 1024-pixel first view; 2 "
        "more levels halving y and x (4 in all) would make it 1024x750."
    )
    assert "CW203" not in rules(big)
    enough = image(*big.levels, level("2", (2048, 1500), (512, 512), 4.0),
                   level("3", (1024, 750), (512, 512), 8.0))  # fmt: skip
    assert rules(enough) == {}


def test_levels_may_halve_rounding_up_or_down_but_not_by_three() -> None:
    odd = (601, 501)
    for halved in ((301, 251), (300, 250), (301, 250)):
        assert "CW202" not in rules(
            image(level("0", odd, (256, 256), 1), level("1", halved, (256, 256), 2))
        )
    (third,) = rules(image(level("0", odd, (256, 256), 1), level("1", (201, 167), (256, 256), 3)))[
        "CW202"
    ]
    assert "along y, 601 becomes 201 (2.99x)" in third.message
    kept = image(level("0", (1, 512), (1, 256), 1), level("1", (1, 256), (1, 256), 2))
    assert rules(kept) == {}  # an axis of 1 may keep its size whatever its scale says


def test_the_plane_is_the_last_two_space_axes() -> None:
    typed = OmeImage("0.4", (("t", "time", ""), ("y", "space", ""), ("x", "space", ""),
                             ("c", "channel", "")), (), "")  # fmt: skip
    assert plane_axes(typed, 4) == (1, 2)
    untyped = OmeImage("0.3", (("a", "", ""), ("b", "", ""), ("c", "", "")), (), "")
    assert plane_axes(untyped, 3) == (1, 2)
    assert plane_axes(untyped, 1) is None


def test_small_chunk_advice_that_a_viewer_would_pay_for_is_dropped_on_image_levels() -> None:
    zyx = OmeImage("0.4", (("z", "space", ""), *YX.axes), (OmeDataset("0", None, None),), "")
    array = ArrayFacts(path="0", zarr_format=2, shape=(64, 256, 256), chunks=(1, 256, 256),
                       shards=None, itemsize=1)  # fmt: skip
    thin = OmeFacts("", zyx, 2, (OmeLevel("0", array, None),))
    small = Finding("CW101", "warning", "0", "m", {"grown_chunks": "16,256,256"})
    fine = Finding("CW101", "warning", "0", "m", {"grown_chunks": "2,256,256"})
    elsewhere = Finding("CW101", "warning", "labels", "m", {"grown_chunks": "16,256,256"})
    kept = drop_viewer_conflicts([small, fine, elsewhere], [thin], LintThresholds())
    assert kept == (fine, elsewhere)


def test_only_a_viewer_known_to_read_v2_only_flags_format_3() -> None:
    v3 = OmeFacts("", OmeImage("0.5", YX.axes, (OmeDataset("0", (1.0, 1.0), None),), ""), 3,
                  (level("0", (512, 512), (512, 512), 1.0),))  # fmt: skip
    assert set(rules(v3, "vizarr")) == {"CW206"}
    assert rules(v3, "napari") == rules(v3, "unknown") == rules(v3) == {}


@pytest.mark.parametrize("version", VERSIONS)
def test_a_label_image_is_rebuilt_with_the_mode_of_its_windows(
    tmp_path: Path, version: str
) -> None:
    labels = np.zeros((2048, 2048), dtype="uint8")
    labels[::2] = 10
    labels[:, ::2] = 200
    path = write_ome(
        tmp_path / "labels.zarr", labels, version=version, axes="yx", chunks=(256, 256),
        scale_factors=[],
    )  # fmt: skip
    v3 = version == "0.5"
    key = path / ("zarr.json" if v3 else ".zattrs")
    doc = json.loads(key.read_text())
    (doc["attributes"]["ome"] if v3 else doc)["image-label"] = (
        {"colors": []} if v3 else {"version": "0.4", "colors": []}
    )
    key.write_text(json.dumps(doc))
    (flat,) = ome(chunkwise.inspect(path), "CW203")
    assert flat.fix.endswith("--ome-zarr --zarr-format " + ("3" if v3 else "2") + " --method mode")
    run = CliRunner().invoke(cli, [*shlex.split(flat.fix.partition(": ")[2])[1:], "--quiet"])
    assert run.exit_code == 0, run.output
    rebuilt = zarr.open_group(tmp_path / "labels-pyramid.zarr", mode="r")
    assert set(np.unique(rebuilt["1"][...])) <= {0, 10, 200}


def test_a_pyramid_that_rounds_down_and_scales_by_extent_is_even(tmp_path: Path) -> None:
    """ome-zarr-py floors odd sizes (75 -> 37) and scales the level by the extent ratio
    (600 / 37 = 16.2162): that is an even pyramid."""
    path = write_ome(
        tmp_path / "floor.zarr", np.zeros((600, 600), "uint8"), version="0.4", axes="yx",
        chunks=(256, 256), scale_factors=[2, 4, 8, 16],
    )  # fmt: skip
    report = chunkwise.inspect(path)
    assert report.images[0].levels[-1].shape == (37, 37)
    assert "CW202" not in ome_rules(report)


def test_a_fix_from_a_later_level_carries_its_voxel_size_and_units(tmp_path: Path) -> None:
    import shutil

    path = tmp_path / "img.zarr"
    chunkwise.convert(np.zeros((8, 600, 600), "uint16"), path, ome_zarr=True,
                      units="nanometer", voxel_size=(4, 4, 4))  # fmt: skip
    shutil.rmtree(path / "0")
    (missing,) = ome(chunkwise.inspect(path), "CW201")
    assert missing.fix.endswith(
        "--voxel-size z=8,y=8,x=8 --units z=nanometer,y=nanometer,x=nanometer"
    )
