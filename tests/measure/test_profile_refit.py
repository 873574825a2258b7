"""``bench --save-profile``: the priced reader's CPU per chunk and time per call re-fitted
to the reads bench measured, written as a profile that advise, bench and inspect take."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

import chunkwise
from chunkwise.cli.main import cli
from chunkwise.measure.calibrate import fit_fixed_costs, refit_profile
from chunkwise.units import parse_duration

SPEC: dict[str, Any] = {
    "array": {"shape": [32, 128, 128], "dtype": "float32", "dims": ["z", "y", "x"]},
    "workload": [
        {"op": "plane", "dims": ["y", "x"], "weight": 0.6},
        {"op": "region", "extent": {"z": 16, "y": 32, "x": 32}, "weight": 0.4},
    ],
    "codec": "zstd:3",
    "candidates": [
        {"name": "16^3", "chunks": [16, 16, 16]},
        {"name": "32x64x64", "chunks": [32, 64, 64]},
        {"name": "8x32x32 in shards", "chunks": [8, 32, 32], "shards": [32, 128, 128]},
    ],
}
STORE = "emulated://?latency=2ms&bandwidth=500MB/s&concurrency=32"


def _objective(
    call: float, chunk: float, measured: np.ndarray[Any, Any], base: np.ndarray[Any, Any],
    slope: np.ndarray[Any, Any],
) -> float:  # fmt: skip
    """Sum of squared relative errors of ``base + call + chunk * slope``."""
    return float(np.sum(((measured - base - call - chunk * slope) / measured) ** 2))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 400), st.floats(1e-4, 0.2), st.floats(0.5, 2.0)),
        min_size=1,
        max_size=12,
    ),
    st.floats(0, 5e-3),
    st.floats(0, 1e-3),
)
def test_the_fit_is_the_best_non_negative_pair(
    rows: list[tuple[float, float, float]], per_call: float, per_chunk: float
) -> None:
    """Against a brute-force search: no non-negative (per call, per chunk) pair on a fine
    grid around the fit explains the measurements better."""
    slope = np.array([r[0] for r in rows])
    base = np.array([r[1] for r in rows])  # the prediction without call and chunk time
    measured = base * np.array([r[2] for r in rows])
    predicted = base + per_call + per_chunk * slope
    call, chunk = fit_fixed_costs(measured - predicted, slope, measured, per_call, per_chunk)
    assert call >= 0 and chunk >= 0
    best = _objective(call, chunk, measured, base, slope)
    calls = np.linspace(0, max(2 * call, 0.05), 41)
    chunks = np.linspace(0, max(2 * chunk, 1e-3), 41)
    if np.ptp(slope) <= 1e-9 * max(float(np.max(np.abs(slope))), 1.0):
        chunks = np.array([per_chunk])  # one distinct slope: only the call time moves
    brute = min(_objective(a, b, measured, base, slope) for a in calls for b in chunks)
    assert best <= brute * (1 + 1e-6) + 1e-12


def test_the_fit_recovers_known_costs() -> None:
    slope = np.array([1.0, 8.0, 64.0, 512.0, 4.0])
    base = np.array([0.02, 0.03, 0.05, 0.2, 0.01])
    measured = base + 2.5e-3 + 0.15e-3 * slope  # the truth: 2.5 ms per call, 0.15 ms/chunk
    predicted = base + 0.3e-3 + 0.2e-3 * slope  # the profile before the fit
    call, chunk = fit_fixed_costs(measured - predicted, slope, measured, 0.3e-3, 0.2e-3)
    assert call == pytest.approx(2.5e-3, rel=1e-6)
    assert chunk == pytest.approx(0.15e-3, rel=1e-6)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("refit")
    spec, out = folder / "spec.yaml", folder / "fitted.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    result = CliRunner().invoke(
        cli,
        ["bench", str(spec), "--data", "synthetic:tomogram", "--store", STORE,
         "--only-candidates", "--repeats", "3", "--no-warm", "--quiet",
         "--save-profile", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out, result.output


def test_bench_writes_a_profile_fitted_to_its_reads(fitted: tuple[Path, str]) -> None:
    out, output = fitted
    doc = yaml.safe_load(out.read_text())
    assert set(doc) == {"reader", "codec_profiles", "calibration"}
    assert doc["calibration"]["source"] == "chunkwise bench"
    # 3 layouts x (plane, region, and the full scan bench adds for the study columns)
    assert doc["calibration"]["operations"] == 9
    assert set(doc["codec_profiles"]) == {"zstd:3"}
    assert parse_duration(doc["reader"]["per_chunk_cpu"]) >= 0
    assert parse_duration(doc["reader"]["per_call"]) >= 0
    line = [text for text in output.splitlines() if text.startswith(f"wrote {out}:")]
    assert line and "fitted to 9 measured reads" in line[0], output
    assert f"Use it with --profile {out}." in line[0]


def test_the_fitted_profile_explains_the_reads_at_least_as_well(tmp_path: Path) -> None:
    """On one benchmark's reads, the fitted constants' squared relative error is no
    larger than that of the constants the benchmark priced with, and advise prices
    exactly the fitted constants."""
    report = chunkwise.bench(
        SPEC, data="synthetic:tomogram", store=STORE, only_candidates=True, repeats=3,
        warm=False,
    )  # fmt: skip
    fit = refit_profile(report)
    reader = report.storage.reader
    call = parse_duration(fit.document["reader"]["per_call"])
    chunk = parse_duration(fit.document["reader"]["per_chunk_cpu"])
    ops = [op for r in report.results for op in r.ops if op.kind not in ("write", "append")]
    measured = np.array([op.mean_s for op in ops])
    slope = np.array([op.cpu_chunks for op in ops])
    base = np.array([op.predicted_s for op in ops]) - reader.per_call_s - reader.per_chunk_cpu_s * slope  # fmt: skip
    before = _objective(reader.per_call_s, reader.per_chunk_cpu_s, measured, base, slope)
    # (The document rounds to 4 significant digits.)
    assert _objective(call, chunk, measured, base, slope) <= before * 1.001 + 1e-12
    out = tmp_path / "fitted.yaml"
    out.write_text(yaml.safe_dump(fit.document))
    advice = chunkwise.advise(SPEC, profile=out)
    assert advice.storage.reader.per_call_s == pytest.approx(call)
    assert advice.storage.reader.per_chunk_cpu_s == pytest.approx(chunk)


def test_the_slope_is_the_models_chunk_count() -> None:
    """cpu_chunks is how often the model charged CPU per chunk: the chunks a plane of the
    unsharded 16^3 layout touches (8 x 8 = 64 of a 128x128 plane)."""
    report = chunkwise.bench(
        {**SPEC, "workload": [{"op": "plane", "dims": ["y", "x"]}],
         "candidates": [SPEC["candidates"][0]]},
        data="synthetic:tomogram", store=STORE, only_candidates=True, repeats=1, warm=False,
    )  # fmt: skip
    (plane,) = [op for op in report.results[0].ops if op.kind == "plane"]
    assert plane.cpu_chunks == pytest.approx(64)


def test_save_profile_into_a_missing_folder_is_one_sentence(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    result = CliRunner().invoke(
        cli,
        ["bench", str(spec), "--data", "synthetic:smooth", "--store", STORE,
         "--save-profile", str(tmp_path / "no" / "p.yaml")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--save-profile" in result.output and "does not exist" in result.output
