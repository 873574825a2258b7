"""The command line: real output, JSON contract, and one-sentence errors with status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from chunkwise.cli.main import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "src" / "chunkwise" / "examples"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chunkwise", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_issue_example_spec_json_contract(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "array: {shape: [184, 630, 630], dtype: float32, dims: [z, y, x]}\n"
        "storage: local-ssd\n"
        "workload:\n"
        "  - {op: plane, dims: [y, x], weight: 0.7}\n"
        "  - {op: region, extent: {z: 64, y: 64, x: 64}, weight: 0.2}\n"
        "  - {op: scan, weight: 0.1}\n"
        "constraints: {zarr_format: 2}\n"
    )
    result = run("advise", str(spec), "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    top = doc["recommendations"][0]
    layout = top["layout"]
    assert layout["zarr_format"] == 2
    assert layout["shards"] is None
    assert len(layout["chunks"]) == 3
    assert layout["compressor"]["id"] == "blosc"
    assert set(top["predicted"]) == {"plane[y,x]", "region[64x64x64]", "scan"}
    assert all(seconds > 0 for seconds in top["predicted"].values())
    assert "zarr.create_array(" in top["snippets"]["zarr"]
    assert top["rationale"]


def test_flags_without_spec_file_and_storage_override() -> None:
    result = CliRunner().invoke(
        cli,
        ["advise", "--shape", "8760,721,1440", "--dtype", "float32", "--dims", "time,lat,lon",
         "--workload", "time-series", "--storage", "s3", "--latency", "50ms", "--max-objects", "20000", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["storage"]["latency_s"] == pytest.approx(0.05)
    assert doc["recommendations"][0]["objects"] <= 20000


def test_terminal_output_shows_table_rationale_and_snippets() -> None:
    result = run("advise", str(EXAMPLES / "cryoet-viewer.yaml"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Recommended layouts" in out
    assert "Why #1" in out
    assert "zarr.create_array(" in out
    assert "encoding = {" in out


BAD_SPECS = {
    "unknown op": ("workload: [{op: teleport}]", "workload op 'teleport' is unknown"),
    "unknown dim": ("workload: [{op: series, dim: w}]", "unknown dimension 'w'"),
    "extent too big": (
        "workload: [{op: region, extent: {z: 500}}]",
        "region extent z=500 is larger than the array (z has 184); use at most 184",
    ),
    "shard not multiple": (
        "workload: roi\ncandidates: [{chunks: [32, 32, 32], shards: [48, 64, 64]}]",
        "shard [48, 64, 64] is not a multiple of chunk [32, 32, 32] along z",
    ),
    "impossible constraints": (
        "workload: roi\nconstraints: {max_objects: 3, zarr_format: 2, object_bytes: {max: 1MiB}}",
        "max_objects=3 cannot be met",
    ),
    "bad codec": ("workload: roi\ncodec: blosc:brotli:5", "Blosc compressor 'brotli'"),
    "unknown preset": ("workload: wizardry", "workload preset 'wizardry' is unknown"),
    "unknown key": ("workload: roi\nchunkz: [1, 2, 3]", "unknown key(s) 'chunkz'"),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_invalid_spec_exits_2_with_one_sentence(case: str, tmp_path: Path) -> None:
    body, message = BAD_SPECS[case]
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "array: {shape: [184, 630, 630], dtype: float32, dims: [z, y, x]}\n" + body + "\n"
    )
    result = run("advise", str(spec))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_missing_spec_file_and_yaml_syntax(tmp_path: Path) -> None:
    missing = run("advise", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("array: {shape: [1, 2\n")
    result = run("advise", str(broken))
    assert result.returncode == 2
    assert "is not valid YAML at line" in result.stderr


def test_no_input_explains_what_to_give() -> None:
    result = CliRunner().invoke(cli, ["advise"])
    assert result.exit_code == 2
    assert "give a spec file or --shape and --dtype" in result.output
