"""``convert --ome-zarr``: OME-Zarr pyramids of real images, checked by the libraries
bioimaging users have (ome-zarr-models validates, ome-zarr-py's Reader and ngff-zarr open,
xarray's coarsen recomputes the means), killed and resumed, on Dask, and rechunked."""

from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import mrcfile
import numpy as np
import pytest
import tifffile
import xarray as xr
import zarr
from click.testing import CliRunner

import chunkwise
from chunkwise.cli.main import cli
from chunkwise.errors import SpecError
from chunkwise.rechunking.convert import ConversionResult


def mni152(kind: str = "t1") -> tuple[np.ndarray, tuple[float, ...]]:
    """The MNI152 template that ships in the nilearn wheel, read with nibabel: its values
    (x, y, z) and voxel size in millimetres."""
    import nibabel
    import nilearn.datasets

    folder = Path(nilearn.datasets.__file__).parent / "data"
    image = nibabel.load(folder / f"mni_icbm152_{kind}_tal_nlin_sym_09a_converted.nii.gz")
    values = np.asarray(image.dataobj)
    zooms = tuple(float(z) for z in image.header.get_zooms())
    return values, zooms


def validated(path: Path) -> Any:
    """The image as ome-zarr-models validates it (raises when it is not valid NGFF)."""
    group = zarr.open_group(path, mode="r")
    if group.metadata.zarr_format == 2:
        from ome_zarr_models.v04.image import Image
    else:
        from ome_zarr_models.v05.image import Image  # type: ignore[assignment]
    return Image.from_zarr(group)


def first_multiscale(path: Path) -> Any:
    """The validated image's first ``multiscales`` entry (NGFF 0.4 or 0.5)."""
    attributes = validated(path).attributes
    return (attributes.ome if hasattr(attributes, "ome") else attributes).multiscales[0]


def ome_zarr_py_levels(path: Path) -> list[np.ndarray]:
    """Every level as ome-zarr-py's Reader gives it, computed."""
    from ome_zarr.io import parse_url
    from ome_zarr.reader import Reader

    nodes = list(Reader(parse_url(str(path)))())
    return [np.asarray(level) for level in nodes[0].data]


def coarsened_mean(values: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """xarray's coarsen, padding short windows (NaN, skipped by the mean): the next level
    of a mean pyramid computed by another library."""
    dims = [f"d{i}" for i in range(values.ndim)]
    array = xr.DataArray(values.astype("float64"), dims=dims)
    windows = {d: f for d, f in zip(dims, factors, strict=True) if f > 1}
    mean = array.coarsen(windows, boundary="pad").mean().values  # type: ignore[arg-type]
    return (np.rint(mean) if values.dtype.kind in "iu" else mean).astype(values.dtype)


def windows_mode(values: np.ndarray, factors: tuple[int, ...]) -> np.ndarray:
    """The most frequent value of each window (ties to the smallest), window by window."""
    shape = tuple(math.ceil(n / f) for n, f in zip(values.shape, factors, strict=True))
    out = np.empty(shape, values.dtype)
    for index in np.ndindex(*shape):
        window = values[
            tuple(slice(i * f, (i + 1) * f) for i, f in zip(index, factors, strict=True))
        ]
        labels, counts = np.unique(window, return_counts=True)
        out[index] = labels[counts == counts.max()].min()
    return out


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_the_mni152_template_becomes_a_valid_pyramid_every_reader_opens(
    tmp_path: Path, zarr_format: int
) -> None:
    values, zooms = mni152()
    target = tmp_path / "mni.ome.zarr"
    result = chunkwise.convert(
        values, target, ome_zarr=True, levels=3, voxel_size=zooms, units="millimeter",
        dims=("x", "y", "z"), zarr_format=zarr_format, chunks=(64, 64, 64),
    )  # fmt: skip
    assert isinstance(result, ConversionResult)
    multiscale = first_multiscale(target)
    assert [d.path for d in multiscale.datasets] == ["0", "1", "2"]
    assert [(a.name, a.type, a.unit) for a in multiscale.axes] == [
        (n, "space", "millimeter") for n in "xyz"
    ]
    scales = [d.coordinateTransformations[0].scale for d in multiscale.datasets]
    assert scales == [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0], [4.0, 4.0, 4.0]]
    version = "0.4" if zarr_format == 2 else "0.5"
    attributes = zarr.open_group(target, mode="r").attrs.asdict()
    assert (attributes["multiscales"][0]["version"] if zarr_format == 2
            else attributes["ome"]["version"]) == version  # fmt: skip

    levels = ome_zarr_py_levels(target)
    assert len(levels) == 3
    assert levels[0].dtype == values.dtype and levels[0].tobytes() == values.tobytes()
    for k in (1, 2):
        below = levels[k - 1]
        assert levels[k].shape == tuple(math.ceil(n / 2) for n in below.shape)
        np.testing.assert_array_equal(levels[k], coarsened_mean(below, (2, 2, 2)))

    import ngff_zarr

    multiscales = ngff_zarr.from_ngff_zarr(str(target))
    assert [tuple(i.data.shape) for i in multiscales.images] == [lv.shape for lv in levels]
    for level, opened in zip(levels, multiscales.images, strict=True):
        np.testing.assert_array_equal(np.asarray(opened.data), level)
    assert result.levels_checked >= 4
    summary = "\n".join(result.summary())
    assert f"OME-Zarr image: NGFF {version}, 3 levels (197x233x189, 99x117x95, 50x59x48)" in summary
    assert "sampled blocks matched an independent recomputation from the level below" in summary


def test_a_label_image_keeps_only_its_labels_at_every_level(tmp_path: Path) -> None:
    t1, zooms = mni152()
    labels = np.digitize(t1, [40, 80]).astype("uint8") * 100  # 0, 100, 200: no blends
    result = chunkwise.convert(
        labels, tmp_path / "labels.zarr", ome_zarr=True, method="mode", levels=4,
        voxel_size=zooms, dims=("x", "y", "z"), chunks=(32, 32, 32),
    )  # fmt: skip
    assert isinstance(result, ConversionResult)
    levels = ome_zarr_py_levels(tmp_path / "labels.zarr")
    for level in levels:
        assert set(np.unique(level)) <= {0, 100, 200}
    # and level 1 is the mode of every window (in the brain's middle, window by window)
    middle = labels[60:100, 80:128, 60:104]
    np.testing.assert_array_equal(levels[1][30:50, 40:64, 30:52], windows_mode(middle, (2, 2, 2)))
    # mean would have blended them: the check above can fail
    blended = coarsened_mean(middle, (2, 2, 2))
    assert not set(np.unique(blended)) <= {0, 100, 200}


def test_a_tiff_stack_keeps_its_pixel_size_and_unit(tmp_path: Path) -> None:
    folder = tmp_path / "stack"
    folder.mkdir()
    rng = np.random.default_rng(3)
    planes = rng.integers(0, 4000, size=(12, 300, 280), dtype="uint16")
    for i, plane in enumerate(planes):
        tifffile.imwrite(
            folder / f"z{i:03d}.tif", plane, imagej=True, resolution=(1 / 0.25, 1 / 0.25),
            metadata={"unit": "um", "spacing": 1.0},
        )  # fmt: skip
    run = CliRunner().invoke(
        cli, ["convert", str(folder), str(tmp_path / "stack.zarr"), "--ome-zarr", "--quiet"]
    )
    assert run.exit_code == 0, run.output
    multiscale = first_multiscale(tmp_path / "stack.zarr")
    assert [(a.name, a.unit) for a in multiscale.axes] == [
        ("z", "micrometer"), ("y", "micrometer"), ("x", "micrometer")
    ]  # fmt: skip
    scales = [d.coordinateTransformations[0].scale for d in multiscale.datasets]
    # z is 4x coarser than y and x: only y and x halve
    assert scales == [[1.0, 0.25, 0.25], [1.0, 0.5, 0.5]]
    levels = ome_zarr_py_levels(tmp_path / "stack.zarr")
    assert [lv.shape for lv in levels] == [(12, 300, 280), (12, 150, 140)]
    assert levels[0].tobytes() == planes.tobytes()
    np.testing.assert_array_equal(levels[1], coarsened_mean(planes, (1, 2, 2)))
    assert "OME-Zarr image: NGFF 0.5, 2 levels" in run.output


def test_an_mrc_tomogram_keeps_its_voxel_size_in_angstrom(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    volume = rng.standard_normal((40, 72, 64)).astype("float32")
    with mrcfile.new(tmp_path / "tomo.mrc") as mrc:
        mrc.set_data(volume)
        mrc.voxel_size = (13.48, 13.48, 13.48)
    run = CliRunner().invoke(
        cli,
        ["convert", str(tmp_path / "tomo.mrc"), str(tmp_path / "tomo.zarr"), "--ome-zarr",
         "--levels", "3", "--zarr-format", "2", "--quiet"],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    multiscale = first_multiscale(tmp_path / "tomo.zarr")
    assert {a.unit for a in multiscale.axes} == {"angstrom"}
    scales = [d.coordinateTransformations[0].scale for d in multiscale.datasets]
    assert scales[2] == pytest.approx([13.48 * 4] * 3)
    translations = [d.coordinateTransformations[1].translation for d in multiscale.datasets[1:]]
    assert translations[0] == pytest.approx([13.48 / 2] * 3)  # centred on its windows
    levels = ome_zarr_py_levels(tmp_path / "tomo.zarr")
    assert levels[0].tobytes() == volume.tobytes()
    for k in (1, 2):
        np.testing.assert_allclose(
            levels[k], coarsened_mean(levels[k - 1], (2, 2, 2)), rtol=2e-7, atol=1e-7
        )
    assert "NGFF 0.4, 3 levels (40x72x64, 20x36x32, 10x18x16)" in run.output


def test_each_level_is_advised_for_its_own_shape_and_says_so(tmp_path: Path) -> None:
    values = np.random.default_rng(1).integers(0, 255, size=(64, 1024, 1024), dtype="uint8")
    plan = chunkwise.convert(values, tmp_path / "p.zarr", ome_zarr=True, dry_run=True)
    assert not isinstance(plan, ConversionResult)
    assert plan.workload == "pyramid-viewer"
    shapes = [job.source.shape for job in plan.jobs]
    assert shapes == [(64, 1024, 1024), (32, 512, 512), (16, 256, 256)]
    for job in plan.jobs:
        assert job.decision["decided_by"] == "advise"
        assert all(c <= n for c, n in zip(job.layout.chunks, job.source.shape, strict=True))
    text = "\n".join(plan.describe())
    assert "OME-Zarr pyramid of 3 levels (zyx), mean of each window" in text
    assert "level 2: 16x256x256, halved z,y,x" in text
    # and the decision of every level is recorded beside the OME metadata
    small = values[:8, :300, :300]
    chunkwise.convert(small, tmp_path / "small.zarr", ome_zarr=True, storage="s3")
    record = zarr.open_group(tmp_path / "small.zarr", mode="r").attrs["chunkwise"]["arrays"]
    assert set(record) == {"0", "1"}
    assert record["1"]["decided_by"] == "advise"
    assert record["1"]["source"] == {"level": "1", "downsampled_from": "level 0", "method": "mean"}
    assert [op["name"] for op in record["1"]["workload"]] == ["viewport"]


def test_explicit_chunks_apply_to_every_level_clipped_to_its_shape(tmp_path: Path) -> None:
    values = np.arange(20 * 40 * 40, dtype="uint16").reshape(20, 40, 40)
    result = chunkwise.convert(
        values, tmp_path / "c.zarr", ome_zarr=True, levels=3, chunks=(16, 32, 32),
        shards=(16, 64, 64), downsample=("y", "x"),
    )  # fmt: skip
    assert isinstance(result, ConversionResult)
    group = zarr.open_group(tmp_path / "c.zarr", mode="r")
    assert [group[k].shape for k in "012"] == [(20, 40, 40), (20, 20, 20), (20, 10, 10)]
    assert [group[k].chunks for k in "012"] == [(16, 32, 32), (16, 20, 20), (16, 10, 10)]
    assert group["0"][...].tobytes() == values.tobytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--levels", "3"], "--levels shapes an OME-Zarr pyramid; add --ome-zarr"),
        (["--ome-zarr", "--method", "mode"], "--method mode picks the most frequent label, and "
         "these values are floating-point numbers; use --method mean"),
        (["--ome-zarr", "--units", "z=parsecs"], "unit 'parsecs' for axis 'z' (space) is not an "
         "OME-Zarr unit"),
        (["--ome-zarr", "--voxel-size", "1,2"], "--voxel-size 1,2 must give 3 sizes"),
        (["--ome-zarr", "--voxel-size", "a,b,c"], "--voxel-size 'a,b,c' must be numbers"),
    ],
)  # fmt: skip
def test_bad_pyramid_requests_get_one_sentence_and_write_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    np.save(tmp_path / "v.npy", np.zeros((4, 8, 8), "float32"))
    run = CliRunner().invoke(
        cli, ["convert", str(tmp_path / "v.npy"), str(tmp_path / "o.zarr"), *args]
    )
    assert run.exit_code == 2, run.output
    assert message in run.output
    assert "Traceback" not in run.output
    assert not (tmp_path / "o.zarr").exists()


def test_a_group_of_several_arrays_names_the_fix(tmp_path: Path) -> None:
    root = zarr.open_group(tmp_path / "g.zarr", mode="w")
    root.create_array("a", data=np.zeros((8, 8), "f4"))
    root.create_array("b", data=np.zeros((8, 8), "f4"))
    with pytest.raises(SpecError, match=r"holds 2 arrays \(a, b\); pick one with SOURCE#path"):
        chunkwise.convert(tmp_path / "g.zarr", tmp_path / "o.zarr", ome_zarr=True)
    four = np.zeros((2, 3, 8, 8), "u1")
    with pytest.raises(
        SpecError, match=re.escape("give --dims, e.g. --dims t,z,y,x or --dims c,z,y,x")
    ):
        chunkwise.convert(four, tmp_path / "o.zarr", ome_zarr=True)
    ok = chunkwise.convert(four, tmp_path / "o.zarr", ome_zarr=True, dims=("c", "z", "y", "x"))
    assert isinstance(ok, ConversionResult)
    assert [a.type for a in first_multiscale(tmp_path / "o.zarr").axes] == [
        "channel", "space", "space", "space"
    ]  # fmt: skip


def _level_markers(target: Path) -> int:
    count = 0
    for level in ("1", "2"):
        for stage in (target / ".chunkwise-rechunk" / "arrays" / level).glob("*"):
            if stage.is_dir() and stage.name != "intermediate":
                count += sum(1 for e in os.scandir(stage) if e.name.isdigit())
    return count


@pytest.mark.slow
def test_a_killed_pyramid_resumes_and_is_verified(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    volume = rng.integers(0, 60000, size=(64, 512, 512), dtype="uint16")
    np.save(tmp_path / "v.npy", volume)
    target = tmp_path / "v.zarr"
    command = [sys.executable, "-m", "chunkwise", "convert", str(tmp_path / "v.npy"), str(target),
               "--ome-zarr", "--levels", "3", "--chunks", "8,64,64", "--threads", "1",
               "--max-mem", "64MiB", "--quiet"]  # fmt: skip
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while first.poll() is None and _level_markers(target) < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert first.poll() is None, "the run finished before it could be killed in level 1"
    os.kill(first.pid, signal.SIGKILL)
    first.communicate()
    assert (target / ".chunkwise-rechunk" / "run.json").is_file()
    assert "ome" not in zarr.open_group(target, mode="r").attrs  # no metadata before the end

    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    found = re.search(r"tasks: ([\d,]+) run, ([\d,]+) already done \(resumed\)", second.stdout)
    assert found, second.stdout
    assert "sampled blocks matched an independent recomputation" in second.stdout
    validated(target)
    levels = ome_zarr_py_levels(target)
    assert levels[0].tobytes() == volume.tobytes()
    for k in (1, 2):
        np.testing.assert_array_equal(levels[k], coarsened_mean(levels[k - 1], (2, 2, 2)))
    assert not (target / ".chunkwise-rechunk").exists()


def theirs(path: Path, values: np.ndarray, version: str, axes: str) -> Path:
    """An OME-Zarr image written by ome-zarr-py (NGFF 0.4 on Zarr v2, 0.5 on v3), its
    pyramid halving y and x."""
    from ome_zarr.format import FormatV04, FormatV05
    from ome_zarr.io import parse_url
    from ome_zarr.writer import write_image

    fmt = FormatV04() if version == "0.4" else FormatV05()
    location = parse_url(str(path), mode="w", fmt=fmt)
    assert location is not None
    group = zarr.open_group(location.store, mode="w", zarr_format=fmt.zarr_format)
    write_image(values, group, axes=axes, fmt=fmt, scale_factors=[2, 4],
                axes_units={a: "micrometer" for a in axes if a in "zyx"})  # fmt: skip
    return path


@pytest.mark.parametrize("version", ["0.4", "0.5"])
def test_rechunking_an_ome_zarr_image_written_by_ome_zarr_py_keeps_it_valid(
    tmp_path: Path, version: str
) -> None:
    rng = np.random.default_rng(2)
    values = rng.integers(0, 255, size=(32, 256, 256), dtype="uint8")
    source = theirs(tmp_path / "theirs.zarr", values, version, "zyx")
    before = ome_zarr_py_levels(source)
    assert len(before) == 3
    out = tmp_path / "ours.zarr"
    run = CliRunner().invoke(
        cli, ["rechunk", str(source), str(out), "--workload", "pyramid-viewer", "--quiet"]
    )
    assert run.exit_code == 0, run.output
    validated(out)
    after = ome_zarr_py_levels(out)
    assert [a.tobytes() for a in after] == [b.tobytes() for b in before]
    ours = zarr.open_group(out, mode="r")
    attrs = {k: v for k, v in ours.attrs.asdict().items() if k != "chunkwise"}
    assert attrs == zarr.open_group(source, mode="r").attrs.asdict()
    assert ours.metadata.zarr_format == (2 if version == "0.4" else 3)
    decided = ours.attrs["chunkwise"]["arrays"]
    # every level advised for its own shape (NGFF 0.4 levels have no dim names of their
    # own: they are named by the image's axes, not taken for coordinates)
    assert {decided[p]["decided_by"] for p in decided} == {"advise"}, decided
    for path, level in zip(sorted(decided), after, strict=True):
        assert ours[path].shape == level.shape
        assert [op["name"] for op in decided[path]["workload"]] == ["viewport"]
        assert decided[path]["layout"]["chunks"][0] < level.shape[0]  # not whole in z


def test_a_pyramid_of_a_4d_ngff_04_image_takes_its_axes_and_units(tmp_path: Path) -> None:
    values = np.random.default_rng(4).integers(0, 255, size=(2, 8, 96, 80), dtype="uint8")
    source = theirs(tmp_path / "theirs.zarr", values, "0.4", "czyx")
    result = chunkwise.convert(source, tmp_path / "ours.zarr", ome_zarr=True, levels=2)
    assert isinstance(result, ConversionResult)
    multiscale = first_multiscale(tmp_path / "ours.zarr")
    assert [(a.name, a.type, a.unit) for a in multiscale.axes] == [
        ("c", "channel", None), ("z", "space", "micrometer"), ("y", "space", "micrometer"),
        ("x", "space", "micrometer"),
    ]  # fmt: skip
    levels = ome_zarr_py_levels(tmp_path / "ours.zarr")
    assert levels[0].tobytes() == values.tobytes()
    assert levels[1].shape == (2, 4, 48, 40)  # channels kept, z, y and x halved


def test_a_rerun_with_other_units_or_dims_is_another_run(tmp_path: Path) -> None:
    """What the metadata says is part of the run's identity: a finished target is not
    "already done" for other units, and a killed one is not resumed with other dims."""
    values = np.zeros((64, 64), "uint8")
    target = tmp_path / "p.zarr"
    chunkwise.convert(values, target, ome_zarr=True, units="micrometer")
    for other in ({"units": "nanometer"}, {"dims": ("row", "col")}):
        with pytest.raises(chunkwise.ChunkwiseError, match="already exists and was not written"):
            chunkwise.convert(values, target, ome_zarr=True, **other)  # type: ignore[arg-type]
    again = chunkwise.convert(values, target, ome_zarr=True, units="micrometer")
    assert isinstance(again, ConversionResult) and again.completed is not None


def test_tiny_images_and_chunks_are_planned_for_what_they_touch(tmp_path: Path) -> None:
    tiny = np.arange(16, dtype="uint8").reshape(4, 4)
    result = chunkwise.convert(tiny, tmp_path / "t.zarr", ome_zarr=True, levels=2)
    assert isinstance(result, ConversionResult)
    assert result.plan.peak_memory < 32 * 2**20
    plan = chunkwise.convert(
        np.zeros((1024, 1024), "uint8"), tmp_path / "c.zarr", ome_zarr=True, chunks=(8, 8),
        dry_run=True,
    )  # fmt: skip
    assert plan.peak_memory < 64 * 2**20


def test_the_check_of_levels_is_in_the_budget_and_verify_full_checks_every_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = np.random.default_rng(9).integers(0, 60000, size=(32, 256, 256), dtype="uint16")
    full = chunkwise.convert(values, tmp_path / "f.zarr", ome_zarr=True, levels=3,
                             chunks=(8, 64, 64), verify="full")  # fmt: skip
    assert isinstance(full, ConversionResult)
    # every block of levels 1 (16x128x128) and 2 (8x64x64), in blocks of their 8x64x64 chunks
    assert full.levels_checked == 2 * 2 * 2 + 1
    assert "9 blocks (all) matched an independent recomputation" in "\n".join(full.summary())
    assert full.plan.check_memory > 0

    # a level damaged after it was written (as another writer could) is caught in full
    import chunkwise.rechunking.convert as convert

    run_plan = convert.run_plan

    def damaging(*args: Any, **kwargs: Any) -> Any:
        done = run_plan(*args, **kwargs)
        if kwargs.get("name") == "1":
            level = zarr.open_array(tmp_path / "d.zarr", path="1", mode="r+")
            level[9:10, 40:72, 0:32] = 0
        return done

    monkeypatch.setattr(convert, "run_plan", damaging)
    with pytest.raises(chunkwise.ChunkwiseError, match="level 1 of the pyramid differs"):
        chunkwise.convert(values, tmp_path / "d.zarr", ome_zarr=True, levels=3,
                          chunks=(8, 64, 64), verify="full")  # fmt: skip


def test_a_kernel_wrong_only_on_bright_voxels_fails_the_full_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chunkwise.rechunking.pyramid as pyramid

    right = pyramid.downsample

    def wrapping(block: np.ndarray, factors: Any, method: str) -> np.ndarray:
        out = right(block, factors, method)
        return np.where(out > 59000, out - 1, out).astype(out.dtype)

    monkeypatch.setattr(pyramid, "downsample", wrapping)
    values = np.full((16, 128, 128), 1000, "uint16")
    values[7, 100, 100:102] = 65000  # a few bright voxels in one window
    values[6, 100, 100:102] = 65000
    values[6:8, 101, 100:102] = 65000
    with pytest.raises(chunkwise.ChunkwiseError, match="differs from an independent"):
        chunkwise.convert(values, tmp_path / "w.zarr", ome_zarr=True, levels=2,
                          chunks=(4, 32, 32), verify="full")  # fmt: skip


@pytest.mark.parametrize(("source_format", "target_format"), [(2, 3), (3, 2)])
def test_rechunking_an_image_into_the_other_zarr_format_moves_its_ngff_version(
    tmp_path: Path, source_format: int, target_format: int
) -> None:
    values = np.random.default_rng(3).integers(0, 255, size=(8, 300, 300), dtype="uint16")
    source = tmp_path / "src.zarr"
    chunkwise.convert(values, source, ome_zarr=True, zarr_format=source_format, units="nanometer")
    out = tmp_path / "out.zarr"
    result = chunkwise.rechunk(source, out, chunks=(1, 64, 64), zarr_format=target_format)
    assert isinstance(result, ConversionResult)
    multiscale = first_multiscale(out)  # valid NGFF 0.5 on v3, 0.4 on v2
    assert {a.unit for a in multiscale.axes} == {"nanometer"}
    attributes = zarr.open_group(out, mode="r").attrs.asdict()
    assert ("ome" in attributes) == (target_format == 3)
    levels = ome_zarr_py_levels(out)
    assert levels[0].tobytes() == values.tobytes()
    if target_format == 3:
        assert zarr.open_array(out / "1").metadata.dimension_names == ("z", "y", "x")


def test_skipping_a_level_of_an_image_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "src.zarr"
    chunkwise.convert(np.zeros((8, 600, 600), "uint16"), source, ome_zarr=True)
    with pytest.raises(SpecError, match=r"--skip '1' would drop a level of an OME-Zarr image"):
        chunkwise.rechunk(source, tmp_path / "out.zarr", chunks=(1, 64, 64), skip=["1"])
    assert not (tmp_path / "out.zarr").exists()


def test_an_mrc_origin_moves_into_the_units_asked_for(tmp_path: Path) -> None:
    with mrcfile.new(tmp_path / "t.mrc") as mrc:
        mrc.set_data(np.zeros((8, 64, 64), "float32"))
        mrc.voxel_size = 10.0
        mrc.header.origin.x, mrc.header.origin.y, mrc.header.origin.z = 100.0, 200.0, 300.0
    chunkwise.convert(tmp_path / "t.mrc", tmp_path / "a.zarr", ome_zarr=True, levels=2)
    chunkwise.convert(tmp_path / "t.mrc", tmp_path / "n.zarr", ome_zarr=True, levels=2,
                      units="nanometer", voxel_size=(1, 1, 1))  # fmt: skip
    in_angstrom = first_multiscale(tmp_path / "a.zarr").datasets[0].coordinateTransformations
    in_nanometer = first_multiscale(tmp_path / "n.zarr").datasets[0].coordinateTransformations
    assert in_angstrom[1].translation == [300.0, 200.0, 100.0]  # z, y, x
    assert in_nanometer[1].translation == [30.0, 20.0, 10.0]


def test_a_pyramid_of_a_label_pyramid_keeps_its_method(tmp_path: Path) -> None:
    labels = np.zeros((4, 600, 600), "uint8")
    labels[:, ::2] = 10
    labels[:, :, ::2] = 200
    chunkwise.convert(labels, tmp_path / "l.zarr", ome_zarr=True, method="mode", levels=2)
    again = chunkwise.convert(tmp_path / "l.zarr", tmp_path / "again.zarr", ome_zarr=True)
    assert isinstance(again, ConversionResult)
    assert again.plan.pyramid is not None and again.plan.pyramid.method == "mode"
    assert set(np.unique(zarr.open_array(tmp_path / "again.zarr" / "1")[...])) <= {0, 10, 200}


def test_an_axis_given_twice_is_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.zeros((4, 8, 8), "float32"))
    for option in (["--units", "z=nanometer,z=micrometer"], ["--voxel-size", "z=1,z=2"]):
        run = CliRunner().invoke(
            cli,
            ["convert", str(tmp_path / "v.npy"), str(tmp_path / "o.zarr"), "--ome-zarr", *option],
        )
        assert run.exit_code == 2 and "gives axis 'z' twice; give it once." in run.output
