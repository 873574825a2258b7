"""Codec profiling: ratios and throughputs measured on real bytes, and spec-ready output."""

from __future__ import annotations

import math
from typing import Any

import numcodecs
import numcodecs.blosc
import numpy as np
import pytest
import yaml
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

from chunkwise.errors import ChunkwiseError, SpecError
from chunkwise.measure.codecs import (
    DEFAULT_PROFILE_CODECS,
    codec_profiles_spec,
    measure_compressor,
    profile_codecs,
    sample_blocks,
    split_pieces,
    verify_roundtrip,
)
from chunkwise.model.codec import CodecProfile, parse_codec
from chunkwise.spec import problem_from_spec

KiB, MiB = 2**10, 2**20


def smooth_float32(n: int = 256 * KiB, seed: int = 0) -> np.ndarray:
    """A smooth field plus small noise, like most measured scientific data."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0.0, 40.0, n)
    return (100.0 * np.sin(x) + 20.0 * np.cos(3.1 * x) + rng.normal(0.0, 0.05, n)).astype(
        np.float32
    )


def by_codec(measurements: tuple[Any, ...]) -> dict[str, Any]:
    return {m.codec: m for m in measurements}


@pytest.fixture(scope="module")
def smooth_profile() -> dict[str, Any]:
    codecs = [
        "blosc:zstd:5:noshuffle",
        "blosc:zstd:5:shuffle",
        "blosc:zstd:5:bitshuffle",
        "blosc:lz4:5:noshuffle",
        "blosc:lz4:5:shuffle",
        "zstd:3",
        "gzip:6",
        "none",
    ]
    return by_codec(profile_codecs(smooth_float32(), codecs, repeats=2, chunk_bytes=256 * KiB))


def test_smooth_float32_compresses(smooth_profile: dict[str, Any]) -> None:
    for name in ("blosc:zstd:5:shuffle", "blosc:zstd:5:bitshuffle", "zstd:3", "gzip:6"):
        assert smooth_profile[name].ratio > 1.05, name


def test_shuffle_beats_noshuffle_on_smooth_float32(smooth_profile: dict[str, Any]) -> None:
    # Byte-shuffle groups the slowly varying sign/exponent/high-mantissa bytes of neighbouring
    # floats; that only happens with Blosc's typesize = 4 (typesize 1 makes shuffle a no-op).
    for cname in ("zstd", "lz4"):
        shuffled = smooth_profile[f"blosc:{cname}:5:shuffle"].ratio
        plain = smooth_profile[f"blosc:{cname}:5:noshuffle"].ratio
        assert shuffled > 1.1 * plain, cname


def test_none_is_ratio_one_and_every_throughput_positive(smooth_profile: dict[str, Any]) -> None:
    assert smooth_profile["none"].ratio == 1.0
    for m in smooth_profile.values():
        assert m.encode_Bps > 0 and m.decode_Bps > 0 and math.isfinite(m.encode_Bps)
        assert m.sample_bytes == 256 * KiB * 4


def test_random_bytes_do_not_compress() -> None:
    data = np.random.default_rng(1).integers(0, 256, size=512 * KiB, dtype=np.uint8)
    codecs = ["blosc:zstd:5:shuffle", "blosc:lz4:1:bitshuffle", "zstd:3", "gzip:6", "none"]
    for m in profile_codecs(data, codecs, repeats=1, chunk_bytes=128 * KiB):
        # At most the codec's headers larger, never meaningfully smaller.
        assert 0.99 <= m.ratio <= 1.0 + 1e-9, m.codec


def test_constant_data_compresses_a_lot() -> None:
    (m,) = profile_codecs(np.zeros(256 * KiB, np.float64), ["blosc:lz4:1:shuffle"], repeats=1)
    assert m.ratio > 50


def test_default_codecs_all_measure() -> None:
    assert len(DEFAULT_PROFILE_CODECS) == len(set(DEFAULT_PROFILE_CODECS)) == 18
    assert all(parse_codec(c).short == c for c in DEFAULT_PROFILE_CODECS)
    sample = smooth_float32(16 * KiB)
    measured = profile_codecs(sample, repeats=1, chunk_bytes=16 * KiB)
    assert [m.codec for m in measured] == list(DEFAULT_PROFILE_CODECS)
    assert all(m.ratio > 0 and m.encode_Bps > 0 and m.decode_Bps > 0 for m in measured)


def test_codec_specs_and_duplicates() -> None:
    spec = parse_codec("blosc:zstd:5:shuffle")
    measured = profile_codecs(
        smooth_float32(4 * KiB), [spec, "blosc:zstd:5", "zlib:6", "gzip:6"], repeats=1
    )
    # blosc:zstd:5 is blosc:zstd:5:shuffle; zlib:6 is gzip:6.
    assert [m.codec for m in measured] == ["blosc:zstd:5:shuffle", "gzip:6"]


@pytest.mark.parametrize("codec", ["blosc:brotli:5:shuffle", "brotli:3", "zstd:x", "", "gzip:99"])
def test_unknown_codecs_are_spec_errors(codec: str) -> None:
    with pytest.raises(SpecError):
        profile_codecs(smooth_float32(1024), [codec])


@pytest.mark.parametrize(
    ("sample", "codecs"),
    [
        (np.zeros(0, np.float32), ["none"]),
        (np.array([object(), object()]), ["none"]),
        (np.zeros(4, np.float32), []),
    ],
)
def test_unprofilable_inputs_are_spec_errors(sample: np.ndarray, codecs: list[str]) -> None:
    with pytest.raises(SpecError):
        profile_codecs(sample, codecs)


def test_odd_dtypes_round_trip() -> None:
    samples = [
        np.arange(0, 5000, dtype="M8[s]"),
        np.arange(3000, dtype=np.complex64) * (1 + 2j),
        np.array(["alpha", "beta", "gamma"] * 100),
        np.arange(2000, dtype=">i4"),
        np.arange(3000) % 3 == 0,
    ]
    for sample in samples:
        for m in profile_codecs(sample, ["blosc:lz4:5:bitshuffle", "zstd:1", "none"], repeats=1):
            assert m.ratio > 0 and m.sample_bytes == sample.nbytes


class FlipOneByte:
    """A deliberately broken codec: decodes to the input with one bit flipped in one piece."""

    def __init__(self, bad_piece: int) -> None:
        self.bad_piece, self.calls = bad_piece, 0

    def encode(self, buf: Any) -> bytes:
        return np.ascontiguousarray(buf).tobytes()

    def decode(self, buf: Any) -> bytes:
        out = bytearray(buf)
        if self.calls == self.bad_piece:
            out[len(out) // 2] ^= 0x01
        self.calls += 1
        return bytes(out)


class Truncate:
    """A deliberately broken codec: decodes to one byte short."""

    def encode(self, buf: Any) -> bytes:
        return np.ascontiguousarray(buf).tobytes()

    def decode(self, buf: Any) -> bytes:
        return bytes(buf)[:-1]


class Identity:
    def encode(self, buf: Any) -> bytes:
        return np.ascontiguousarray(buf).tobytes()

    def decode(self, buf: Any) -> bytes:
        return bytes(buf)


def test_verification_catches_a_flipped_bit() -> None:
    pieces = split_pieces(smooth_float32(4 * KiB), chunk_bytes=4 * KiB)
    assert len(pieces) == 4
    with pytest.raises(ChunkwiseError, match=r"flip-2.*piece 2"):
        measure_compressor(FlipOneByte(bad_piece=2), pieces, label="flip-2", repeats=1)


def test_verification_catches_a_short_decode() -> None:
    pieces = split_pieces(np.arange(100, dtype=np.int16))
    with pytest.raises(ChunkwiseError, match="short"):
        measure_compressor(Truncate(), pieces, label="short")


def test_verification_compares_bits_not_values() -> None:
    # -0.0 == 0.0 and NaN != NaN as floats; the check is on bytes, so neither fools it.
    piece = np.array([0.0, np.nan], np.float64)
    verify_roundtrip([piece], [piece.tobytes()], label="same")
    with pytest.raises(ChunkwiseError):
        verify_roundtrip([piece], [np.array([-0.0, np.nan]).tobytes()], label="sign")
    measured = measure_compressor(Identity(), [piece], label="identity", repeats=2)
    assert measured.ratio == 1.0 and measured.sample_bytes == 16


def test_blosc_threads_are_restored() -> None:
    previous_threads = numcodecs.blosc.set_nthreads(3)
    previous_use = numcodecs.blosc.use_threads
    numcodecs.blosc.use_threads = True
    try:
        profile_codecs(smooth_float32(8 * KiB), ["blosc:lz4:1:shuffle"], repeats=1)
        assert numcodecs.blosc.get_nthreads() == 3
        assert numcodecs.blosc.use_threads is True
    finally:
        numcodecs.blosc.set_nthreads(previous_threads)
        numcodecs.blosc.use_threads = previous_use


def test_split_pieces_cuts_at_chunk_bytes() -> None:
    sample = np.arange(1000, dtype=np.float64).reshape(10, 100)
    pieces = split_pieces(sample, chunk_bytes=3000)
    assert [p.size for p in pieces] == [375, 375, 250]
    assert np.array_equal(np.concatenate(pieces), sample.reshape(-1))
    assert all(p.flags.c_contiguous and p.dtype == np.float64 for p in pieces)
    assert len(split_pieces(sample, chunk_bytes=1)) == 1000  # at least one element each


def test_profiles_spec_is_accepted_by_the_spec_parser() -> None:
    measured = profile_codecs(
        smooth_float32(32 * KiB), ["blosc:zstd:5:shuffle", "zstd:3", "none"], repeats=1
    )
    profiles = codec_profiles_spec(measured)
    text = yaml.safe_dump({"codec_profiles": profiles})
    spec = {
        "array": {"shape": [64, 64], "dtype": "float32"},
        "workload": [{"op": "scan", "weight": 1}],
        **yaml.safe_load(text),
    }
    problem = problem_from_spec(
        spec, default_storage="s3", default_codecs=list(profiles), default_top=3
    )
    for m in measured:
        profile = problem.codec_profiles[parse_codec(m.codec)]
        assert isinstance(profile, CodecProfile) and profile.measured
        assert profile.ratio == pytest.approx(m.ratio, rel=1e-4)
        assert profile.encode_Bps == pytest.approx(m.encode_Bps, rel=1e-3)
        assert profile.decode_Bps == pytest.approx(m.decode_Bps, rel=1e-3)


def test_sample_is_the_whole_array_when_small() -> None:
    data = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    sample = sample_blocks(data, max_bytes=data.nbytes)
    assert sample.shape == data.shape and np.array_equal(sample, data)


def test_sample_of_a_large_array_is_four_spread_slabs() -> None:
    data = np.arange(64 * 50 * 40, dtype=np.int64).reshape(64, 50, 40)
    sample = sample_blocks(data, max_bytes=64 * KiB, seed=3)
    assert sample.nbytes <= 64 * KiB and sample.dtype == data.dtype
    assert sample.shape[1:] == (50, 40)  # whole 50x40 planes fit a quarter of 64 KiB
    quarters = np.split(sample, 4)
    firsts = [int(q.flat[0]) // (50 * 40) for q in quarters]
    # One slab in each quarter of the first axis, each a run of consecutive elements.
    assert [f * 4 // 64 for f in firsts] == [0, 1, 2, 3]
    assert all(np.all(np.diff(q.reshape(-1)) == 1) for q in quarters)
    assert not np.array_equal(sample, sample_blocks(data, max_bytes=64 * KiB, seed=4))
    assert np.array_equal(sample, sample_blocks(data, max_bytes=64 * KiB, seed=3))


def test_sample_of_a_zarr_array_reads_the_same_slabs() -> None:
    data = smooth_float32(120 * 90 * 10).reshape(120, 90, 10)
    array = zarr.create_array(store={}, shape=data.shape, dtype=data.dtype, chunks=(16, 30, 10))
    array[:] = data
    expected = sample_blocks(data, max_bytes=32 * KiB, seed=7)
    got = sample_blocks(array, max_bytes=32 * KiB, seed=7)
    assert got.dtype == np.float32 and np.array_equal(got, expected)


def test_sample_of_long_rows_slices_an_inner_axis() -> None:
    data = np.arange(3 * 100_000, dtype=np.uint16).reshape(3, 100_000)
    sample = sample_blocks(data, max_bytes=40_000)
    assert sample.ndim == 1 and sample.nbytes <= 40_000 and sample.size == 4 * 5_000


def test_sample_settings_must_be_positive() -> None:
    with pytest.raises(SpecError):
        sample_blocks(np.zeros(10), max_bytes=0)


shapes = st.lists(st.integers(1, 30), min_size=1, max_size=4).map(tuple)
dtypes = st.sampled_from(["u1", "i2", "f4", "f8", "c16"])


@settings(max_examples=150, deadline=None)
@given(shape=shapes, dtype=dtypes, max_bytes=st.integers(1, 40_000), seed=st.integers(0, 9))
def test_sample_never_exceeds_max_bytes_and_keeps_dtype(
    shape: tuple[int, ...], dtype: str, max_bytes: int, seed: int
) -> None:
    data = np.ones(shape, dtype=dtype)
    sample = sample_blocks(data, max_bytes=max_bytes, seed=seed)
    assert sample.dtype == data.dtype and sample.size >= 1
    assert sample.nbytes <= max(max_bytes, data.itemsize)
    if data.nbytes <= max_bytes:
        assert sample.shape == shape


@settings(max_examples=150, deadline=None)
@given(shape=shapes, max_bytes=st.integers(8, 40_000), seed=st.integers(0, 9))
def test_sample_is_few_disjoint_contiguous_runs_in_order(
    shape: tuple[int, ...], max_bytes: int, seed: int
) -> None:
    data = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
    flat = sample_blocks(data, max_bytes=max_bytes, seed=seed).reshape(-1)
    steps = np.diff(flat)
    # Strictly increasing: slabs never overlap and come in array order; at most 3 jumps.
    assert np.all(steps >= 1)
    assert np.count_nonzero(steps > 1) <= 3
    if data.nbytes > max_bytes:
        assert flat.nbytes >= (max_bytes // 4) // 2  # at least half of one slab's share
