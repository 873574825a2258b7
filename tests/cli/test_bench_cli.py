"""``chunkwise bench`` and ``chunkwise codecs`` from the command line: outputs and errors."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
import zarr
from click.testing import CliRunner

from chunkwise.cli.main import cli

SPEC = """\
array: {shape: [24, 64, 64], dtype: float32, dims: [t, y, x]}
workload:
  - {op: series, dim: t, weight: 0.5}
  - {op: region, extent: {t: 8, y: 16, x: 16}, weight: 0.3}
  - {op: point, count: 4, weight: 0.1}
  - {op: append, dim: t, size: 2, weight: 0.1}
codec: blosc:lz4:5:shuffle
candidates:
  - {name: mine, zarr_format: 2, chunks: [24, 8, 8]}
"""


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC)
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_json_contract_and_report_files(spec: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    code, stdout, stderr = invoke(
        "bench", str(spec), "--data", "synthetic:smooth", "--store", str(tmp_path / "store"),
        "--top", "1", "--repeats", "2", "--json", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert code == 0, stderr
    doc = json.loads(stdout)
    names = [r["name"] for r in doc["results"]]
    assert names[0] == "advise #1" and "mine" in names and "zarr auto" in names
    for entry in doc["results"]:
        assert {"layout", "objects", "stored_bytes", "write_s", "ops"} <= set(entry)
        assert set(entry["layout"]) >= {"zarr_format", "chunks", "shards", "codec"}
        for name in ("series[t]", "region[8x16x16]", "point[4]", "append[t+2]"):
            op = entry["ops"][name]
            assert op["measured_s"] > 0 and op["predicted_s"] > 0
    assert sorted(p.name for p in out.iterdir()) == [
        "bench.csv", "bench.html", "bench.json", "bench.md",
    ]  # fmt: skip
    rows = list(csv.DictReader(io.StringIO((out / "bench.csv").read_text())))
    assert {row["layout"] for row in rows} == set(names)
    assert "wrote" in stderr
    # Nothing left behind in the store directory.
    assert not any((tmp_path / "store").rglob("*.zarr"))


def test_bench_on_a_users_zarr_array_region(tmp_path: Path, spec: Path) -> None:
    source = tmp_path / "source.zarr"
    values = np.arange(40 * 64 * 64, dtype="float32").reshape(40, 64, 64)
    zarr.create_array(source, data=values, chunks=(10, 64, 64), dimension_names=["t", "y", "x"])
    before = sorted(p.relative_to(source) for p in source.rglob("*"))
    code, stdout, stderr = invoke(
        "bench", str(spec), "--data", str(source), "--region", "t=0:24",
        "--only-candidates", "--repeats", "1", "--no-warm", "--json", "--quiet",
    )  # fmt: skip
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert doc["array"]["shape"] == [24, 64, 64]
    assert doc["data"]["synthetic"] is False
    assert [r["name"] for r in doc["results"]] == ["mine"]
    assert sorted(p.relative_to(source) for p in source.rglob("*")) == before  # source untouched


def test_terminal_output_has_the_study_table(spec: Path, tmp_path: Path) -> None:
    code, stdout, stderr = invoke(
        "bench", str(spec), "--data", "synthetic:smooth", "--only-candidates",
        "--repeats", "1", "--no-warm", "--quiet",
    )  # fmt: skip
    assert code == 0, stderr
    for column in ("objects", "write", "full read", "slice read", "ROI read", "ratio"):
        assert column in stdout
    assert "SYNTHETIC" in stdout


def test_codecs_writes_profiles_advise_uses(tmp_path: Path) -> None:
    out = tmp_path / "codecs.yaml"
    code, stdout, stderr = invoke(
        "codecs", "--data", "sample:air-temperature", "--codec", "blosc:zstd:5:shuffle",
        "--codec", "zstd:1", "--codec", "none", "--sample", "1MiB", "--out", str(out),
    )  # fmt: skip
    assert code == 0, stderr
    saved = yaml.safe_load(out.read_text())
    assert saved["codecs"] == ["blosc:zstd:5:shuffle", "zstd:1", "none"]
    assert saved["codec_profiles"]["none"]["ratio"] == 1.0
    assert saved["codec_profiles"]["blosc:zstd:5:shuffle"]["ratio"] > 1.2  # real climate data
    code, stdout, stderr = invoke(
        "advise", "--shape", "240,37,49", "--dtype", "float32", "--dims", "time,lat,lon",
        "--workload", "time-series", "--codec-profiles", str(out), "--json",
    )  # fmt: skip
    assert code == 0, stderr
    doc = json.loads(stdout)
    assert doc["recommendations"][0]["layout"]["codec"] in saved["codecs"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "synthetic:nope"], "generator 'nope' is unknown; use one of synthetic:smooth, synthetic:tomogram."),
        (["--data", "missing.npy"], "data file 'missing.npy' does not exist"),
        (["--data", "synthetic:smooth", "--store", "ftp://x"], "store 'ftp://x' is not a store chunkwise can write to"),
        (["--data", "synthetic:smooth", "--store", "emulated://?latency=fast"], "emulated latency 'fast'"),
        (["--data", "synthetic:smooth", "--region", "q=0:4"], "region names dim 'q'"),
        (["--data", "synthetic:smooth", "--repeats", "0"], "repeats 0 must be at least 1."),
    ],
)  # fmt: skip
def test_bad_input_is_one_sentence_and_exit_2(spec: Path, args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chunkwise", "bench", str(spec), "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_only_candidates_without_candidates_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("array: {shape: [8, 8], dtype: uint8}\nworkload: roi\n")
    code, _, stderr = invoke("bench", str(path), "--data", "synthetic:smooth", "--only-candidates")
    assert code == 2
    assert "--only-candidates needs layouts under 'candidates:'" in stderr


def test_zip_store_and_npy_data(spec: Path, tmp_path: Path) -> None:
    data = tmp_path / "cube.npy"
    np.save(data, np.linspace(0, 1, 24 * 64 * 64, dtype="float32").reshape(24, 64, 64))
    code, stdout, stderr = invoke(
        "bench", str(spec), "--data", str(data), "--store", f"zip://{tmp_path / 'zips'}",
        "--only-candidates", "--repeats", "1", "--no-warm", "--keep", "--json", "--quiet",
    )  # fmt: skip
    assert code == 0, stderr
    result = json.loads(stdout)["results"][0]
    # (24, 8, 8) chunks of a (24, 64, 64) array: 64 chunk entries plus .zarray and .zattrs.
    assert (result["data_objects"], result["metadata_objects"]) == (64, 2)
    (archive,) = (tmp_path / "zips").rglob("01-mine.zip")
    arr = zarr.open_array(zarr.storage.ZipStore(archive, mode="r"), mode="r")
    np.testing.assert_array_equal(arr[...], np.load(data)[...])
