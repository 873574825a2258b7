"""Edge cases of ``bench`` found in review: locations, names, small data, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner
from s3server import S3Server

import chunkwise
from chunkwise.cli.main import cli
from chunkwise.cost.model import CostInputs, estimate_layout
from chunkwise.errors import SpecError
from chunkwise.model.array import ArraySpec
from chunkwise.model.codec import default_codec_profile, parse_codec
from chunkwise.model.layout import Layout
from chunkwise.model.storage import STORAGE_PRESETS
from chunkwise.model.workload import Operation


def small_spec(**extra: object) -> dict[str, object]:
    spec: dict[str, object] = {
        "array": {"shape": [16, 32, 32], "dtype": "float32", "dims": ["z", "y", "x"]},
        "workload": [{"op": "plane", "dims": ["y", "x"]}],
        "codec": "zstd:1",
    }
    spec.update(extra)
    return spec


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_zip_url_with_a_relative_folder_writes_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = small_spec(candidates=[{"name": "one", "zarr_format": 2, "chunks": [4, 32, 32]}])
    chunkwise.bench(
        spec, data="synthetic:smooth", store="zip://zips", only_candidates=True, repeats=1,
        keep=True,
    )  # fmt: skip
    assert len(list((tmp_path / "zips").rglob("*.zip"))) == 1


def test_names_that_slug_alike_get_their_own_locations(tmp_path: Path) -> None:
    spec = small_spec(
        candidates=[
            {"name": "Small", "zarr_format": 3, "chunks": [4, 32, 32]},
            {"name": "small", "zarr_format": 3, "chunks": [8, 32, 32]},
        ]
    )
    report = chunkwise.bench(
        spec, data="synthetic:smooth", store=str(tmp_path / "s"), only_candidates=True, repeats=1
    )
    assert [r.data_objects for r in report.results] == [4, 2]


def test_created_folders_are_removed_and_existing_files_kept(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("user data")
    spec = small_spec(candidates=[{"zarr_format": 3, "chunks": [16, 32, 32]}])
    chunkwise.bench(
        spec, data="synthetic:smooth", store=str(tmp_path / "new" / "sub"), only_candidates=True,
        repeats=1,
    )  # fmt: skip
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]
    assert (tmp_path / "mine.txt").read_text() == "user data"


def test_an_operation_named_write_keeps_its_own_prediction() -> None:
    spec = small_spec(
        workload=[{"op": "region", "extent": {"z": 2, "y": 4, "x": 4}, "name": "write"}],
        candidates=[{"zarr_format": 3, "chunks": [2, 8, 8]}],
    )
    report = chunkwise.bench(spec, data="synthetic:smooth", only_candidates=True, repeats=2)
    (result,) = report.results
    op = result.op("write")
    assert op.kind == "region"
    assert op.predicted_requests < 5 and op.requests < 5  # 1-4 chunks, not the whole array
    assert result.predicted_write_s > op.predicted_s


def test_tiny_data_uses_default_cpu_costs_and_says_so() -> None:
    spec = {
        "array": {"shape": [32, 32], "dtype": "float32"},
        "workload": "roi",
        "codec": "none",
        "candidates": [{"zarr_format": 3, "chunks": [8, 8]}],
    }
    report = chunkwise.bench(spec, data="synthetic:smooth", only_candidates=True, repeats=1)
    assert any("too little data to calibrate" in note for note in report.notes)


def test_uncompressed_edge_chunks_are_fetched_and_decoded_whole() -> None:
    array = ArraySpec.create([1025, 256], "float32", ["t", "x"])
    scan = Operation("scan", "scan", 1.0, array.shape)
    full_chunk = 512 * 256 * 4
    for name, fetched_at_most in (("none", None), ("zstd:3", 2.5 * full_chunk)):
        codec = parse_codec(name)
        layout = Layout.create(array, [512, 256], codec=codec)
        inputs = CostInputs(array, STORAGE_PRESETS["s3"], codec, default_codec_profile(codec))
        cost = estimate_layout(layout, [scan], inputs).ops["scan"]
        assert cost["bytes_decoded"] == 3 * full_chunk  # zarr decodes the padded edge chunk
        if fetched_at_most is None:
            assert cost["bytes_fetched"] >= 3 * full_chunk
        else:
            assert cost["bytes_fetched"] < fetched_at_most  # padding compresses to ~nothing


def test_a_region_makes_a_big_generated_array_benchable() -> None:
    spec = small_spec(
        array={"shape": [4096, 4096, 4096], "dtype": "float32", "dims": ["z", "y", "x"]}
    )
    spec["candidates"] = [{"zarr_format": 3, "chunks": [8, 32, 32]}]
    report = chunkwise.bench(
        spec, data="synthetic:smooth", region="z=0:16,y=0:32,x=0:32", only_candidates=True,
        repeats=1,
    )  # fmt: skip
    assert report.array.shape == (16, 32, 32)
    assert report.data.synthetic and "region" in report.data.description


def test_candidate_chunks_are_cut_to_a_smaller_region(tmp_path: Path) -> None:
    spec = small_spec(candidates=[{"name": "big", "zarr_format": 2, "chunks": [64, 64, 64]}])
    report = chunkwise.bench(spec, data="synthetic:smooth", only_candidates=True, repeats=1)
    assert report.results[0].layout.chunks == (16, 32, 32)
    assert any("big: chunks/shards cut" in note for note in report.notes)


def test_unreachable_bucket_is_one_sentence(s3_server: S3Server) -> None:
    with pytest.raises(SpecError, match=r"store 's3://no-such-bucket-x/p' cannot be reached"):
        chunkwise.bench(
            small_spec(), data="synthetic:smooth", store="s3://no-such-bucket-x/p",
            storage_options=s3_server.storage_options(),
        )  # fmt: skip


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (lambda d: np.save(d / "flat.npy", np.zeros((4, 4), "f4")), ["--data", "{d}/flat.npy"],
         "the spec's array has 3 dims but the data from"),
        (lambda d: np.save(d / "empty.npy", np.zeros((0, 4, 4), "f4")), ["--data", "{d}/empty.npy"],
         "is empty (shape (0, 4, 4)); give an array with values."),
        (lambda d: zarr.create_array(str(d / "g.zarr"), shape=(4, 4, 4), dtype="f4", chunks=(2, 2, 2),
                                     name="sub/arr") and None,
         ["--data", "{d}/g.zarr"], "is a Zarr group; pick one of its arrays: "),
        (lambda d: None, ["--data", "synthetic:smooth", "--csv", "{d}/nodir/x.csv"],
         "--csv '{d}/nodir/x.csv': folder"),
        (lambda d: None, ["--data", "synthetic:smooth", "--storage", "{d}/nofile.yaml"],
         "storage file '{d}/nofile.yaml' does not exist"),
    ],
)  # fmt: skip
def test_more_bad_input_messages(
    tmp_path: Path, make: object, args: list[str], message: str
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("array: {shape: [4, 4, 4], dtype: float32, dims: [z, y, x]}\nworkload: roi\n")
    make(tmp_path)  # type: ignore[operator]
    filled = [a.format(d=tmp_path) for a in args]
    code, output = invoke("bench", str(spec), "--quiet", *filled)
    assert code == 2, output
    assert message.format(d=tmp_path) in output
    if "group" in message:
        assert f"{tmp_path}/g.zarr#sub/arr" in output


def test_codecs_sample_must_be_positive() -> None:
    code, output = invoke("codecs", "--data", "sample:air-temperature", "--sample", "0")
    assert code == 2
    assert "--sample '0' must be a positive size, like 16MiB." in output


def test_a_shard_reaching_past_the_array_end_is_kept(tmp_path: Path) -> None:
    """advise may pick shards that end past the array (8x52x52 chunks in 128x260x260
    shards of a 128x256x256 array: zarr pads the last shard); bench clipped them to the
    array's shape and then refused its own candidate (found by bench_regret)."""
    spec = small_spec(
        candidates=[{"name": "padded", "chunks": [8, 12, 12], "shards": [16, 36, 36]}]
    )
    report = chunkwise.bench(
        spec, data="synthetic:smooth", store=str(tmp_path / "s"), only_candidates=True, repeats=1
    )
    (result,) = report.results
    assert result.layout.shards == (16, 36, 36)
    assert not any("cut to the data's shape" in note for note in report.notes)


def test_a_shard_is_cut_to_the_chunk_multiple_when_the_data_is_smaller(tmp_path: Path) -> None:
    spec = small_spec(candidates=[{"name": "big", "chunks": [8, 12, 12], "shards": [16, 48, 48]}])
    del spec["array"]  # taken from the data, dims dim_0, dim_1, dim_2
    spec["workload"] = [{"op": "plane", "dims": ["dim_1", "dim_2"]}]
    data = tmp_path / "data.npy"
    np.save(data, np.ones((16, 32, 32), dtype="float32"))
    report = chunkwise.bench(
        spec, data=str(data), store=str(tmp_path / "s"), only_candidates=True, repeats=1
    )
    (result,) = report.results
    assert result.layout.shards == (16, 36, 36)  # 32 rounded up to the 12-chunk: 36
    assert any("cut to the data's shape" in note for note in report.notes)
