"""The pyramid plan (levels, halved axes, voxel sizes) and the downsampling kernels,
against brute-force oracles written window by window."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chunkwise.errors import SpecError
from chunkwise.plan.pyramid import (
    TOP_PIXELS,
    PyramidRequest,
    plan_pyramid,
    source_geometry,
)
from chunkwise.rechunking.downsample import downsample, recompute, same_values, window_magnitude

# ---------------------------------------------------------------------------- the plan


@settings(max_examples=200, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5000), min_size=2, max_size=3).map(tuple),
    voxel=st.lists(st.floats(0.1, 10), min_size=3, max_size=3),
)
def test_every_level_halves_space_axes_of_the_one_below_until_the_top_is_small(
    shape: tuple[int, ...], voxel: list[float]
) -> None:
    dims = ("z", "y", "x")[-len(shape) :]
    sizes = dict(zip(dims, voxel, strict=False))
    pyramid = plan_pyramid(shape, dims, PyramidRequest(voxel_size=sizes), dtype="uint8")
    assert pyramid.shapes[0] == shape
    for k in range(1, pyramid.levels):
        step = pyramid.factors[k - 1]
        assert set(step) <= {1, 2} and 2 in step
        assert pyramid.shapes[k] == tuple(
            math.ceil(n / f) for n, f in zip(pyramid.shapes[k - 1], step, strict=True)
        )
        assert all(f == 1 or n > 1 for f, n in zip(step, pyramid.shapes[k - 1], strict=True))
        assert pyramid.scale(k) == pytest.approx(
            [s * f for s, f in zip(pyramid.scale(k - 1), step, strict=True)]
        )
        # y and x always halve while they can
        assert all(
            f == 2 for f, n in zip(step[-2:], pyramid.shapes[k - 1][-2:], strict=True) if n > 1
        )
    top = pyramid.shapes[-1]
    assert max(top[-2:]) <= TOP_PIXELS  # y and x halve whenever a level is added
    # every level but the top is still larger than a first view along a halved axis
    for k in range(pyramid.levels - 1):
        halved = [n for n, f in zip(pyramid.shapes[k], pyramid.factors[k], strict=True) if f > 1]
        assert max(halved) > TOP_PIXELS


def test_an_anisotropic_stack_halves_in_plane_until_voxels_are_near_isotropic() -> None:
    pyramid = plan_pyramid(
        (64, 4096, 4096), ("z", "y", "x"), PyramidRequest(voxel_size=(4.0, 1.0, 1.0)),
        dtype="uint8",
    )  # fmt: skip
    assert pyramid.factors[:3] == ((1, 2, 2), (1, 2, 2), (2, 2, 2))
    assert pyramid.scale(3) == (8.0, 8.0, 8.0)
    # the plane is y and x by name, wherever they are (NIfTI's order is x, y, z)
    xyz = plan_pyramid(
        (4096, 4096, 64), ("x", "y", "z"), PyramidRequest(voxel_size=(1.0, 1.0, 4.0)),
        dtype="uint8",
    )  # fmt: skip
    assert xyz.factors[:3] == ((2, 2, 1), (2, 2, 1), (2, 2, 2))
    iso = plan_pyramid((512, 512, 512), ("z", "y", "x"), PyramidRequest(), dtype="float32")
    assert iso.factors == ((2, 2, 2),)


def test_translations_centre_each_level_on_its_windows_except_nearest() -> None:
    mean = plan_pyramid((8, 8), ("y", "x"), PyramidRequest(levels=3, voxel_size=(2.0, 1.0)),
                        dtype="float32")  # fmt: skip
    assert mean.translation(0) is None
    assert mean.translation(1) == (1.0, 0.5)  # half a window less half a voxel
    assert mean.translation(2) == (3.0, 1.5)
    nearest = plan_pyramid(
        (8, 8), ("y", "x"), PyramidRequest(levels=3, method="nearest"), dtype="float32"
    )
    assert nearest.translation(2) is None


@pytest.mark.parametrize(
    ("shape", "dims", "request_", "kind", "message"),
    [
        ((8, 8), ("y", "x"), PyramidRequest(method="mean"), "bool",
         "--method mean averages numbers, and these values are booleans; use --method mode"),
        ((8, 8), ("y", "x"), PyramidRequest(method="mode"), "float32",
         "--method mode picks the most frequent label, and these values are floating-point"),
        ((8, 8), ("y", "x"), PyramidRequest(levels=5), "uint8",
         "--levels 5 is more than this image allows: level 3 (1x1) is one voxel across every "
         "halved axis; give at most --levels 4."),
        ((8, 8), ("y", "x"), PyramidRequest(levels=0), "uint8", "--levels 0 must be at least 1"),
        ((8, 8), ("y", "x"), PyramidRequest(), "int64",
         "a mean of 64-bit integers (int64) cannot be exact, as float64 holds 53 bits; give "
         "--method nearest"),
        ((4, 8, 8), ("t", "y", "x"), PyramidRequest(downsample=("t",)), "uint8",
         "--downsample t is a time axis; pyramids halve space axes only"),
        ((4, 8, 8), ("z", "y", "x"), PyramidRequest(downsample=("q",)), "uint8",
         "--downsample names axis 'q', which the image does not have (z, y, x)."),
        ((8, 8), ("y", "x"), PyramidRequest(units={"": "furlong"}), "uint8",
         "unit 'furlong' for axis 'y' (space) is not an OME-Zarr unit"),
        ((8, 8), ("y", "x"), PyramidRequest(voxel_size=(1.0,)), "uint8",
         "--voxel-size 1 must give 2 sizes, one per axis (y,x)."),
        ((8, 8), ("y", "x"), PyramidRequest(voxel_size={"y": -1.0}), "uint8",
         "voxel size -1.0 of axis 'y' must be a positive number."),
        ((2, 8, 8), ("c", "t", "x"), PyramidRequest(), "uint8", "cannot be an OME-Zarr image"),
        ((2, 3, 8, 8), ("c", "t", "y", "x"), PyramidRequest(), "uint8",
         "axes c,t,y,x are read as c channel, t time, y space, x space (t/time: time; "
         "c/ch/channel: channel; any other name: space), out of OME-Zarr's order"),
    ],
)  # fmt: skip
def test_requests_that_do_not_fit_the_image_are_refused_in_one_sentence(
    shape: tuple[int, ...], dims: tuple[str, ...], request_: PyramidRequest, kind: str, message: str
) -> None:
    with pytest.raises(SpecError) as refused:
        plan_pyramid(shape, dims, request_, dtype=kind)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_units_and_voxel_sizes_come_from_mrc_tiff_and_ome_attributes() -> None:
    mrc = {"voxel_size": [2.5, 2.5, 3.0], "origin": [0.0, 0.0, 120.0]}
    assert source_geometry(mrc, ("z", "y", "x")) == (
        {"x": "angstrom", "y": "angstrom", "z": "angstrom"},
        {"x": 2.5, "y": 2.5, "z": 3.0},
        {"x": 0.0, "y": 0.0, "z": 120.0},
    )
    unset = {"voxel_size": [0.0, 0.0, 0.0], "origin": [0.0, 0.0, 0.0]}
    assert source_geometry(unset, ("z", "y", "x")) == ({}, {}, {})
    imagej = {"resolution": [4.0, 4.0], "resolution_unit": "none", "unit": "micron",
              "spacing": 0.5}  # fmt: skip
    assert source_geometry(imagej, ("z", "y", "x")) == (
        {"x": "micrometer", "y": "micrometer", "z": "micrometer"},
        {"x": 0.25, "y": 0.25, "z": 0.5},
        {},
    )
    tiff = {"resolution": [10000.0, 5000.0], "resolution_unit": "centimeter"}
    assert source_geometry(tiff, ("y", "x")) == (
        {"x": "micrometer", "y": "micrometer"}, {"x": 1.0, "y": 2.0}, {}
    )  # fmt: skip
    ome = {"ome": {"version": "0.5", "multiscales": [{
        "axes": [{"name": "z", "type": "space", "unit": "nanometer"},
                 {"name": "y", "type": "space", "unit": "nanometer"},
                 {"name": "x", "type": "space", "unit": "nanometer"}],
        "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [3.0, 1.5, 1.5]},
            {"type": "translation", "translation": [1.0, 0.0, 0.0]}]}],
        "coordinateTransformations": [{"type": "scale", "scale": [1.0, 10.0, 10.0]},
                                      {"type": "translation", "translation": [100.0, 0, 0]}],
    }]}}  # fmt: skip
    # the level's transforms, then the multiscale's: voxel 3 x 15 x 15, origin z = 101
    assert source_geometry(ome, ("z", "y", "x")) == (
        {"z": "nanometer", "y": "nanometer", "x": "nanometer"},
        {"z": 3.0, "y": 15.0, "x": 15.0},
        {"z": 101.0, "y": 0.0, "x": 0.0},
    )  # fmt: skip
    shifted = plan_pyramid(
        (8, 8, 8), ("z", "y", "x"), PyramidRequest(levels=2), dtype="uint8",
        found_voxel={"z": 3.0, "y": 15.0, "x": 15.0}, found_origin={"z": 101.0},
    )  # fmt: skip
    assert shifted.translation(0) == (101.0, 0.0, 0.0)
    assert shifted.translation(1) == (102.5, 7.5, 7.5)


# ---------------------------------------------------------------------------- kernels


def _brute(block: np.ndarray, factors: tuple[int, ...], method: str) -> np.ndarray:
    """Window by window, in plain Python."""
    out_shape = tuple(math.ceil(n / f) for n, f in zip(block.shape, factors, strict=True))
    out = np.empty(out_shape, dtype=block.dtype)
    for index in np.ndindex(*out_shape):
        window = block[
            tuple(slice(i * f, (i + 1) * f) for i, f in zip(index, factors, strict=True))
        ]
        flat = [window[k] for k in np.ndindex(*window.shape)]
        if method == "nearest":
            out[index] = flat[0]
        elif method == "mode":
            counts: dict[object, int] = {}
            for v in flat:
                counts[v] = counts.get(v, 0) + 1
            top = max(counts.values())
            out[index] = min(v for v, c in counts.items() if c == top)
        else:
            mean = sum(float(v) for v in flat) / len(flat)
            out[index] = np.rint(mean) if block.dtype.kind in "iu" else mean
    return out


blocks = st.tuples(
    st.lists(st.integers(1, 7), min_size=1, max_size=3),
    st.sampled_from(["uint8", "int16", "uint16", "int32"]),
    st.integers(0, 2**16),
)


@settings(max_examples=150, deadline=None)
@given(spec=blocks, method=st.sampled_from(["mean", "nearest", "mode"]), data=st.data())
def test_kernels_and_their_independent_twins_match_a_window_by_window_oracle(
    spec: tuple[list[int], str, int], method: str, data: st.DataObject
) -> None:
    shape, dtype, seed = spec
    factors = tuple(data.draw(st.sampled_from([1, 2])) for _ in shape)
    high = data.draw(st.sampled_from([3, 200]))  # few labels (ties) or many
    block = np.random.default_rng(seed).integers(0, high, size=shape).astype(dtype)
    want = _brute(block, factors, method)
    for got in (downsample(block, factors, method), recompute(block, factors, method)):
        assert got.dtype == block.dtype
        np.testing.assert_array_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(1, 9), min_size=1, max_size=3),
    seed=st.integers(0, 999),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_float_means_agree_within_summation_order(shape: list[int], seed: int, dtype: str) -> None:
    rng = np.random.default_rng(seed)
    block = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, size=shape)).astype(dtype)
    if seed % 5 == 0 and block.size > 1:
        block.flat[0] = np.nan
    factors = (2,) * len(shape)
    want = _brute(block, factors, "mean")
    got = downsample(block, factors, "mean")
    magnitude = window_magnitude(block, factors)
    assert same_values(want, got, "mean", magnitude).all()
    assert same_values(want, recompute(block, factors, "mean"), "mean", magnitude).all()
    # and the comparison can fail: one element off by much more than rounding
    if got.size and np.isfinite(got.flat[-1]):
        wrong = got.copy()
        wrong.flat[-1] += max(1.0, abs(float(wrong.flat[-1])))
        assert not same_values(want, wrong, "mean", magnitude).all()


def test_means_of_the_largest_floats_do_not_overflow() -> None:
    block = np.full((4, 4), 1.5e308)
    assert downsample(block, (2, 2), "mean").tolist() == [[1.5e308] * 2] * 2
    assert recompute(block, (2, 2), "mean").tolist() == [[1.5e308] * 2] * 2


def test_one_huge_value_does_not_hide_a_wrong_mean_elsewhere() -> None:
    """The tolerance for summation order is per window: a fill value of 9.97e36 in one
    window says nothing about the others."""
    block = np.ones((4, 8), "float32")
    block[0, 0] = 9.96921e36
    want = recompute(block, (2, 2), "mean")
    wrong = want + np.float32(0.5)
    agree = same_values(want, wrong, "mean", window_magnitude(block, (2, 2)))
    assert not agree[:, 1:].any()


def test_mode_never_blends_labels_where_mean_would() -> None:
    labels = np.array([[0, 200], [200, 10]], dtype="uint8")
    assert downsample(labels, (2, 2), "mode").tolist() == [[200]]
    assert downsample(labels, (2, 2), "mean").tolist() == [[102]]  # a label nobody drew
    tie = np.array([[7, 3], [3, 7]], dtype="uint8")
    assert downsample(tie, (2, 2), "mode").tolist() == [[3]]  # ties to the smallest


def test_a_section_one_voxel_thick_halves_its_other_two_axes() -> None:
    section = plan_pyramid((2000, 1, 2000), ("z", "y", "x"), PyramidRequest(), dtype="uint8")
    assert set(section.factors) == {(2, 1, 2)}
    assert section.shapes[-1] == (250, 1, 250)


def test_malformed_ome_metadata_reads_as_missing_not_as_a_crash() -> None:
    from chunkwise.model.ome import read_ome

    axes = [{"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    for broken in (
        {"version": "0.4", "axes": 5, "datasets": [{"path": "0"}]},
        {"version": "0.4", "axes": axes, "datasets": 7},
        {"version": "0.4", "axes": axes, "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": [10**400, 1]}]}]},
        {"version": "0.4", "axes": axes, "datasets": [{"path": "0", "coordinateTransformations": [
            {"type": "scale", "scale": ["1", 1]}]}]},
    ):  # fmt: skip
        image = read_ome({"multiscales": [broken]})
        assert image is not None
        assert all(d.scale is None for d in image.datasets)


def test_ome_metadata_moves_between_ngff_04_and_05() -> None:
    from chunkwise.model.ome import ome_for_format

    v04 = {"multiscales": [{"version": "0.4", "axes": [], "datasets": []}],
           "omero": {"channels": []}, "other": 1}  # fmt: skip
    v05 = ome_for_format(v04, 3)
    assert v05 == {"other": 1, "ome": {"version": "0.5", "omero": {"channels": []},
                                       "multiscales": [{"axes": [], "datasets": []}]}}  # fmt: skip
    assert ome_for_format(v05, 2) == v04
    assert ome_for_format(v04, 2) == v04 and ome_for_format(v05, 3) == v05
    assert ome_for_format({"a": 1}, 3) == {"a": 1}


def test_units_asked_for_convert_the_sources_lengths_or_name_unitless_ones() -> None:
    mrc = plan_pyramid(
        (8, 64, 64), ("z", "y", "x"), PyramidRequest(levels=2, units={"": "nanometer"}),
        dtype="float32", found_units=dict.fromkeys("zyx", "angstrom"),
        found_voxel=dict.fromkeys("zyx", 10.0), found_origin={"z": 300.0},
    )  # fmt: skip
    assert [a.scale for a in mrc.axes] == [1.0, 1.0, 1.0]  # 10 angstrom = 1 nanometer
    assert mrc.translation(0) == (30.0, 0.0, 0.0)
    unitless = plan_pyramid(
        (8, 64, 64), ("z", "y", "x"), PyramidRequest(levels=2, units={"": "micrometer"}),
        dtype="float32", found_voxel=dict.fromkeys("zyx", 0.5), found_origin={"z": 100.0},
    )  # fmt: skip
    assert [a.scale for a in unitless.axes] == [0.5, 0.5, 0.5]  # the unit only names them
    assert unitless.translation(0) == (100.0, 0.0, 0.0)
