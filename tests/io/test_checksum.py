"""crc32c checksums per chunk: parsed, refused in zarr v2, written for real, priced, offered.

The central claim is checked on real bytes: with ``+crc32c`` a flipped byte in a stored
chunk makes zarr-python raise on read, while without it the same flip decodes silently
into different values.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
import pytest
import tensorstore as ts
import xarray as xr
import zarr
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

import chunkwise
from chunkwise.cost.model import CostInputs, estimate_layout
from chunkwise.errors import ConstraintError, SpecError
from chunkwise.io.codecs import create_array, zarr_compressor
from chunkwise.measure.codecs import codec_profiles_spec, profile_codecs
from chunkwise.model import ArraySpec, Layout, parse_codec
from chunkwise.model.codec import (
    CodecProfile,
    CodecSpec,
    CRC32C_DECODE_Bps,
    CRC32C_ENCODE_Bps,
    checksum_profile,
    default_codec_profile,
)
from chunkwise.model.constraints import Constraints
from chunkwise.model.workload import Workload
from chunkwise.plan.advice import Advice
from chunkwise.report.json import advice_document
from chunkwise.report.snippets import xarray_snippet, zarr_snippet
from chunkwise.spec import parse_storage
from chunkwise.testing.strategies import codec_specs

V2_REFUSAL = (
    "codec 'blosc:zstd:5:shuffle+crc32c' needs zarr format 3: zarr format 2 has no crc32c "
    "checksum codec; use --zarr-format 3 (zarr_format: 3 in a spec), or drop '+crc32c'."
)
CONSTRAINT_REFUSAL = (
    "constraint checksum: true needs zarr format 3 but zarr_format is 2 (zarr format 2 has no "
    "crc32c codec); drop zarr_format: 2 (--zarr-format 2) or the checksum."
)
ARRAY = ArraySpec.create([32, 64, 64], "float32", ["z", "y", "x"])
ARRAY_ARG = {"shape": [32, 64, 64], "dtype": "float32", "dims": ["z", "y", "x"]}
BYTES_CODEC = {"name": "bytes", "configuration": {"endian": "little"}}


def smooth(shape: tuple[int, ...]) -> np.ndarray:
    grids = np.meshgrid(*[np.linspace(0, 3, n) for n in shape], indexing="ij")
    noise = np.random.default_rng(0).normal(0, 0.01, shape)
    return (np.sin(grids[0]) * np.cos(grids[1]) + 0.1 * grids[-1] + noise).astype("float32")


# --- parsing and formatting -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("blosc:zstd:5:shuffle+crc32c", CodecSpec("blosc", "zstd", 5, "shuffle", checksum=True)),
        ("zstd:3+crc32c", CodecSpec("zstd", None, 3, None, checksum=True)),
        ("none+crc32c", CodecSpec("none", checksum=True)),
        (" ZSTD:3 + CRC32C ", CodecSpec("zstd", None, 3, None, checksum=True)),
        ("blosc+crc32c", CodecSpec("blosc", "zstd", 5, "shuffle", checksum=True)),
        (
            [BYTES_CODEC, {"name": "zstd", "configuration": {"level": 3}}, {"name": "crc32c"}],
            CodecSpec("zstd", None, 3, None, checksum=True),
        ),
        ([BYTES_CODEC, {"name": "crc32c"}], CodecSpec("none", checksum=True)),
        ({"name": "crc32c"}, CodecSpec("none", checksum=True)),
        ('[{"name": "gzip", "configuration": {"level": 6}}, {"name": "crc32c"}]',
         CodecSpec("gzip", None, 6, None, checksum=True)),
    ],
)  # fmt: skip
def test_checksum_parses_from_short_strings_and_v3_json(text: Any, expected: CodecSpec) -> None:
    assert parse_codec(text) == expected
    assert expected.short.endswith("+crc32c")
    assert str(expected) == expected.short


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("zstd:3+md5", re.escape("codec 'zstd:3+md5' has suffix '+md5'; the only suffix is '+crc32c'")),
        ("zstd:3+crc32c+crc32c", re.escape("has suffix '+crc32c+crc32c'; the only suffix is")),
        ("zstd:3+", re.escape("has suffix '+';")),
        ([{"name": "crc32c"}, {"name": "zstd", "configuration": {"level": 3}}],
         r"checksums before compressing \(zstd:3 after crc32c\); .* put crc32c last"),
        ([{"name": "crc32c"}, {"name": "crc32c"}], "has crc32c twice"),
        ({"id": "crc32c"}, "numcodecs' crc32c, a zarr format 2 checksum .* use zarr format 3"),
        ([{"name": "adler32"}], "use blosc, zstd or gzip, optionally followed by crc32c"),
    ],
)  # fmt: skip
def test_bad_checksum_spellings_get_one_sentence(text: Any, message: str) -> None:
    with pytest.raises(SpecError, match=message) as info:
        parse_codec(text)
    assert str(info.value).count(". ") == 0 and str(info.value).endswith(".")


@given(codec=codec_specs(checksums=True), itemsize=st.sampled_from([1, 2, 4, 8]))
def test_short_form_and_v3_json_round_trip(codec: CodecSpec, itemsize: int) -> None:
    assert parse_codec(codec.short) == codec
    assert parse_codec(str(codec)) == codec
    codecs = codec.v3_codecs_json(itemsize)
    assert parse_codec(codecs) == codec
    assert parse_codec(json.dumps([BYTES_CODEC, *codecs])) == codec
    assert ({"name": "crc32c"} in codecs) == codec.checksum
    if codec.checksum:  # the checksum is always the last codec, after the compressor
        assert codecs[-1] == {"name": "crc32c"}
    assert codec.with_checksum().with_checksum(False) == codec.with_checksum(False)


def test_layout_json_lists_crc32c_after_the_compressor() -> None:
    codec = parse_codec("blosc:zstd:5:shuffle+crc32c")
    plain = Layout.create(ARRAY, [8, 16, 16], codec=codec).to_dict(ARRAY)
    assert plain["codec"] == "blosc:zstd:5:shuffle+crc32c"
    assert [c["name"] for c in plain["codecs"]] == ["bytes", "blosc", "crc32c"]
    sharded = Layout.create(ARRAY, [8, 16, 16], shards=[16, 32, 32], codec=codec).to_dict(ARRAY)
    inner = sharded["codecs"][0]["configuration"]["codecs"]
    assert [c["name"] for c in inner] == ["bytes", "blosc", "crc32c"]


# --- zarr format 2 has no crc32c --------------------------------------------------------


def test_checksum_in_zarr_v2_is_refused_in_one_sentence() -> None:
    codec = parse_codec("blosc:zstd:5:shuffle+crc32c")
    with pytest.raises(SpecError) as info:
        Layout.create(ARRAY, [8, 16, 16], codec=codec, zarr_format=2)
    assert str(info.value) == V2_REFUSAL
    with pytest.raises(SpecError, match="needs zarr format 3"):
        codec.v2_compressor_json()
    with pytest.raises(SpecError, match="needs zarr format 3"):
        zarr_compressor(codec, 4, 2)
    with pytest.raises(SpecError) as info:
        chunkwise.advise(
            array=ARRAY_ARG,
            workload="slice-viewer",
            codec="blosc:zstd:5:shuffle+crc32c",
            constraints={"zarr_format": 2},
        )
    assert str(info.value) == V2_REFUSAL


def test_checksum_constraint_with_zarr_v2_is_a_constraint_error() -> None:
    with pytest.raises(ConstraintError) as info:
        chunkwise.advise(
            array=ARRAY_ARG,
            workload="slice-viewer",
            constraints={"checksum": True, "zarr_format": 2},
        )
    assert str(info.value) == CONSTRAINT_REFUSAL
    with pytest.raises(ConstraintError):
        Constraints(zarr_format=2, checksum=True)
    with pytest.raises(SpecError, match="constraint checksum 'yes' must be true or false"):
        Constraints.from_spec({"checksum": "yes"}, ARRAY)
    assert Constraints.from_spec({"checksum": True}, ARRAY).to_dict(ARRAY)["checksum"] is True


# --- real arrays: the checksum is written, checked, and read by other readers ------------


def _chunk_file(root: Path) -> Path:
    return root / "c" / "0" / "0" / "0"


@pytest.mark.parametrize("base", ["none", "blosc:lz4:5:shuffle", "zstd:3"])
def test_flipped_byte_raises_with_crc32c_and_decodes_silently_without(
    base: str, tmp_path: Path
) -> None:
    data = smooth(ARRAY.shape)
    first = (slice(0, 16), slice(0, 32), slice(0, 32))
    results = {}
    for codec in (base, f"{base}+crc32c"):
        root = tmp_path / codec.replace(":", "_")
        layout = Layout.create(ARRAY, (16, 32, 32), codec=parse_codec(codec))
        create_array(zarr.storage.LocalStore(root), ARRAY, layout)[...] = data
        meta = json.loads((root / "zarr.json").read_text())
        assert (meta["codecs"][-1] == {"name": "crc32c"}) == codec.endswith("+crc32c")
        stored = _chunk_file(root).read_bytes()
        if codec.endswith("+crc32c"):
            body, crc = stored[:-4], stored[-4:]
            assert crc == np.uint32(google_crc32c.value(body)).tobytes()
        corrupted = bytearray(stored)
        corrupted[len(stored) // 2] ^= 0x10
        _chunk_file(root).write_bytes(bytes(corrupted))
        arr = zarr.open_array(root, mode="r")
        try:
            results[codec] = arr[first]
        except ValueError as exc:
            results[codec] = exc
    silent = results[base]
    assert isinstance(silent, np.ndarray), f"{base} without crc32c raised: {silent}"
    assert not np.array_equal(silent, data[first]), "the flip should change the values"
    caught = results[f"{base}+crc32c"]
    assert isinstance(caught, ValueError) and "checksum" in str(caught)


@pytest.mark.parametrize("shards", [None, (16, 64, 64)])
def test_tensorstore_and_zarr_read_a_crc32c_array_bit_identical(
    shards: tuple[int, ...] | None, tmp_path: Path
) -> None:
    data = smooth(ARRAY.shape)
    layout = Layout.create(
        ARRAY, (8, 32, 32), shards=shards, codec=parse_codec("blosc:zstd:5:shuffle+crc32c")
    )
    create_array(zarr.storage.LocalStore(tmp_path / "a.zarr"), ARRAY, layout)[...] = data
    spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(tmp_path / "a.zarr")}}
    by_tensorstore = ts.open(spec, read=True).result().read().result()
    assert by_tensorstore.dtype == data.dtype
    assert by_tensorstore.tobytes() == data.tobytes()
    assert zarr.open_array(tmp_path / "a.zarr", mode="r")[...].tobytes() == data.tobytes()


def test_profile_codecs_measures_the_checksum_too() -> None:
    sample = smooth((16, 64, 64))
    plain, checked = profile_codecs(sample, ["zstd:3", "zstd:3+crc32c"], repeats=1)
    assert checked.codec == "zstd:3+crc32c"
    assert checked.ratio < plain.ratio  # 4 more bytes per piece
    assert parse_codec(next(iter(codec_profiles_spec([checked])))) == parse_codec("zstd:3+crc32c")


# --- the cost model prices it -----------------------------------------------------------


def test_checksum_profile_adds_crc_time_per_compressed_byte() -> None:
    base = CodecProfile(2.0, 200e6, 800e6, measured=True)
    checked = checksum_profile(base)
    assert checked.ratio == base.ratio and checked.measured
    # seconds per raw byte: the compressor's, plus the CRC over 1/ratio of the bytes
    assert 1 / checked.encode_Bps == pytest.approx(1 / 200e6 + 1 / (2.0 * CRC32C_ENCODE_Bps))
    assert 1 / checked.decode_Bps == pytest.approx(1 / 800e6 + 1 / (2.0 * CRC32C_DECODE_Bps))
    codec = parse_codec("zstd:3")
    assert default_codec_profile(codec.with_checksum()) == checksum_profile(
        default_codec_profile(codec)
    )


def _costs(codec: str, storage: str = "local-ssd") -> tuple[Any, Any]:
    array = ArraySpec.create([64, 256, 256], "float32", ["z", "y", "x"])
    workload = Workload.from_spec(
        [{"op": "scan", "weight": 0.5}, {"op": "write", "weight": 0.5}], array
    )
    spec = parse_codec(codec)
    layout = Layout.create(array, (16, 64, 64), codec=spec)
    inputs = CostInputs(array, parse_storage(storage), spec, default_codec_profile(spec))
    return estimate_layout(layout, workload, inputs), layout


@pytest.mark.parametrize("base", ["blosc:zstd:5:shuffle", "none"])
def test_predicted_cost_grows_by_the_crc_time_and_four_bytes_per_chunk(base: str) -> None:
    plain, _ = _costs(base, "s3")
    checked, _ = _costs(f"{base}+crc32c", "s3")
    chunks = 4 * 4 * 4
    assert checked.stored_bytes - plain.stored_bytes == pytest.approx(4 * chunks)
    profile = default_codec_profile(parse_codec(base))
    threads = min(parse_storage("s3").reader.threads, chunks)
    scan_plain, scan_checked = plain.ops["scan"], checked.ops["scan"]
    crc_s = scan_plain["bytes_decoded"] / (profile.ratio * CRC32C_DECODE_Bps * threads)
    assert scan_checked["codec_s"] - scan_plain["codec_s"] == pytest.approx(crc_s, rel=1e-9)
    write_plain, write_checked = plain.ops["write"], checked.ops["write"]
    crc_write_s = write_plain["bytes_encoded"] / (profile.ratio * CRC32C_ENCODE_Bps * threads)
    assert write_checked["codec_s"] - write_plain["codec_s"] == pytest.approx(crc_write_s)
    assert checked.weighted_s > plain.weighted_s


@pytest.mark.parametrize(("reader", "serial"), [("zarr-python", True), ("tensorstore", False)])
def test_zarr_python_checksums_in_series_on_its_event_loop(reader: str, serial: bool) -> None:
    """zarr-python 3.1 runs crc32c on the event-loop thread: the part the profile spread
    over the decode threads comes back as serial CPU time; tensorstore spreads it."""
    array = ArraySpec.create([64, 256, 256], "float32", ["z", "y", "x"])
    workload = Workload.from_spec([{"op": "scan"}, {"op": "write"}], array)
    storage = parse_storage("local-ssd", reader)
    costs = {}
    for name in ("zstd:3", "zstd:3+crc32c"):
        codec = parse_codec(name)
        layout = Layout.create(array, (16, 64, 64), codec=codec)
        inputs = CostInputs(array, storage, codec, default_codec_profile(codec))
        costs[name] = estimate_layout(layout, workload, inputs)
    plain, checked = costs["zstd:3"], costs["zstd:3+crc32c"]
    threads = min(storage.reader.threads, 64)
    ratio = default_codec_profile(parse_codec("zstd:3")).ratio
    for op, rate in (("scan", CRC32C_DECODE_Bps), ("write", CRC32C_ENCODE_Bps)):
        checksummed = plain.ops[op]["bytes_decoded" if op == "scan" else "bytes_encoded"] / ratio
        extra_cpu = checked.ops[op]["cpu_s"] - plain.ops[op]["cpu_s"]
        expected = checksummed / rate * (1 - 1 / threads) if serial else 0.0
        assert extra_cpu == pytest.approx(expected, rel=1e-3, abs=1e-12)
        # in all: the whole checksum once in series (zarr-python), or spread (tensorstore)
        extra = checked.ops[op]["codec_s"] + extra_cpu - plain.ops[op]["codec_s"]
        whole = checksummed / rate
        assert extra == pytest.approx(whole if serial else whole / threads, rel=1e-3)


# --- advise: --checksum, fixed codecs, the offer in the rationale ------------------------


def _advise(**kwargs: Any) -> Advice:
    return chunkwise.advise(array=ARRAY_ARG, workload="slice-viewer", **kwargs)


def _offer(advice: Advice) -> list[str]:
    return [line for line in advice.best.rationale if line.startswith("Add --checksum")]


def test_checksum_constraint_puts_crc32c_on_every_codec_at_its_modelled_cost() -> None:
    plain = _advise()
    checked = _advise(constraints={"checksum": True})
    assert checked.constraints.checksum
    assert all(r.layout.codec.checksum for r in checked.recommendations)
    assert all(r.layout.zarr_format == 3 for r in checked.recommendations)
    assert checked.reference.layout.codec.checksum
    assert checked.best.cost.weighted_s > plain.best.cost.weighted_s
    # The same layout, priced without the checksum: the difference is the crc32c time.
    best = checked.best
    bare = Layout.create(
        checked.array, best.layout.chunks, shards=best.layout.shards,
        codec=best.layout.codec.with_checksum(False),
    )  # fmt: skip
    profile = default_codec_profile(bare.codec)
    inputs = CostInputs(checked.array, checked.storage, bare.codec, profile)
    without = estimate_layout(bare, checked.workload, inputs)
    assert best.codec_profile == checksum_profile(profile)
    assert best.cost.weighted_s > without.weighted_s
    for name, op in best.cost.ops.items():
        threads = min(checked.storage.reader.threads, max(op["chunks"], 1.0))
        crc_s = without.ops[name]["bytes_decoded"] / (profile.ratio * CRC32C_DECODE_Bps * threads)
        # edge chunks decode their real size, not the padded one: at most the full chunk
        extra = op["codec_s"] - without.ops[name]["codec_s"]
        assert 0 < extra <= crc_s * (1 + 1e-9)
    assert not _offer(checked)


def test_measured_profile_of_the_compressor_carries_over_to_its_checksummed_twin() -> None:
    profiles = {"zstd:3": {"ratio": 2.0, "encode": "100MB/s", "decode": "500MB/s"}}
    advice = chunkwise.advise(
        {"codec_profiles": profiles},
        array=ARRAY_ARG,
        workload="slice-viewer",
        codec="zstd:3",
        constraints={"checksum": True},
    )
    assert advice.best.layout.codec == parse_codec("zstd:3+crc32c")
    expected = checksum_profile(CodecProfile(2.0, 100e6, 500e6, measured=True))
    assert advice.best.codec_profile == expected


def test_fixed_codec_with_checksum_is_kept_and_not_offered_again() -> None:
    advice = _advise(codec="blosc:zstd:5:shuffle+crc32c")
    assert {r.layout.codec.short for r in advice.recommendations} == {"blosc:zstd:5:shuffle+crc32c"}
    assert not _offer(advice)
    many = _advise(codecs=["zstd:3+crc32c", "blosc:lz4:5:shuffle+crc32c"])
    assert all(r.layout.codec.checksum for r in many.recommendations)


def test_rationale_offers_the_checksum_with_its_predicted_cost() -> None:
    advice = _advise()
    (line,) = _offer(advice)
    best = advice.best
    codec = best.layout.codec.with_checksum()
    checked = estimate_layout(
        Layout.create(advice.array, best.layout.chunks, shards=best.layout.shards, codec=codec),
        advice.workload,
        CostInputs(advice.array, advice.storage, codec, checksum_profile(best.codec_profile)),
    )
    percent = 100 * (checked.weighted_s / best.cost.weighted_s - 1)  # slice-viewer only reads
    assert f"predicted +{percent:.2g}% read time, +4 bytes per chunk" in line
    assert codec.short in line
    assert "write time" not in line
    assert math.isfinite(percent) and percent > 0
    assert line in repr(advice)
    # Nothing to offer when format 2 is required: it has no crc32c.
    assert not _offer(_advise(constraints={"zarr_format": 2}))


def test_offer_names_write_time_when_the_workload_writes() -> None:
    advice = chunkwise.advise(
        array=ARRAY_ARG,
        workload=[{"op": "scan", "weight": 0.5}, {"op": "write", "weight": 0.5}],
    )
    (line,) = _offer(advice)
    assert "% read time, +" in line and "% write time, +4 bytes per chunk." in line


def test_json_document_carries_the_checksum() -> None:
    doc = advice_document(_advise(constraints={"checksum": True}))
    assert doc["constraints"]["checksum"] is True
    for rec in doc["recommendations"]:
        layout = rec["layout"]
        assert layout["codec"].endswith("+crc32c")
        codecs = layout["codecs"]
        if codecs[0]["name"] == "sharding_indexed":
            codecs = codecs[0]["configuration"]["codecs"]
        assert codecs[-1] == {"name": "crc32c"}
        assert "Crc32cCodec()" in rec["snippets"]["zarr"]
        assert "Crc32cCodec()" in rec["snippets"]["xarray"]


def test_cli_checksum_flag_and_its_refusal() -> None:
    from chunkwise.cli.main import cli

    args = ["advise", "--shape", "32,64,64", "--dtype", "float32", "--workload", "slice-viewer"]
    result = CliRunner().invoke(cli, [*args, "--checksum", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert all(r["layout"]["codec"].endswith("+crc32c") for r in doc["recommendations"])
    refused = CliRunner().invoke(cli, [*args, "--checksum", "--zarr-format", "2"])
    assert refused.exit_code == 2
    assert CONSTRAINT_REFUSAL in " ".join(refused.output.split())
    fixed = CliRunner().invoke(cli, [*args, "--codec", "zstd:3+crc32c", "--json"])
    assert fixed.exit_code == 0, fixed.output
    assert json.loads(fixed.output)["recommendations"][0]["layout"]["codec"] == "zstd:3+crc32c"


# --- the printed snippets run and write the checksum --------------------------------------

SNIPPET_LAYOUTS = [
    Layout.create(ARRAY, chunks, shards=shards, codec=parse_codec(codec))
    for codec, chunks, shards in [
        ("blosc:zstd:5:shuffle+crc32c", (8, 16, 16), None),
        ("zstd:3+crc32c", (8, 16, 16), (16, 32, 32)),
        ("none+crc32c", (16, 32, 32), None),
    ]
]


def _bytes_codecs(arr: zarr.Array) -> list[str]:
    return [c.to_dict()["name"] for c in arr.compressors]


@pytest.mark.parametrize("layout", SNIPPET_LAYOUTS, ids=Layout.label)
def test_zarr_snippet_with_checksum_runs(layout: Layout, tmp_path: Path) -> None:
    namespace: dict[str, Any] = {}
    exec(zarr_snippet(ARRAY, layout, store=str(tmp_path / "s.zarr")), namespace)
    arr = namespace["array"]
    reference = create_array(tmp_path / "adapter.zarr", ARRAY, layout)
    assert _bytes_codecs(arr) == _bytes_codecs(reference)
    assert _bytes_codecs(arr)[-1] == "crc32c"
    assert arr.chunks == layout.chunks and arr.shards == layout.shards
    data = smooth(ARRAY.shape)
    arr[...] = data
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "s.zarr", mode="r")[...], data)


@pytest.mark.parametrize("layout", SNIPPET_LAYOUTS, ids=Layout.label)
def test_xarray_snippet_with_checksum_runs(layout: Layout, tmp_path: Path) -> None:
    data = smooth(ARRAY.shape)
    ds = xr.Dataset({"data": (("z", "y", "x"), data)})
    snippet = xarray_snippet(ARRAY, layout).replace('"data.zarr"', repr(str(tmp_path / "x.zarr")))
    with pytest.warns():  # xarray warns about zarr format 3 encodings
        exec(snippet, {"ds": ds})
    arr = zarr.open_array(tmp_path / "x.zarr" / "data", mode="r")
    assert _bytes_codecs(arr)[-1] == "crc32c"
    assert arr.chunks == layout.chunks and arr.shards == layout.shards
    np.testing.assert_array_equal(arr[...], data)
    np.testing.assert_array_equal(xr.open_zarr(tmp_path / "x.zarr")["data"].values, data)
