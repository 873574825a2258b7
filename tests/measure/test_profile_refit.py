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
from chunkwise.measure.calibrate import fit_reader_costs, refit_profile
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
    times: np.ndarray[Any, Any], measured: np.ndarray[Any, Any], base: np.ndarray[Any, Any],
    slopes: np.ndarray[Any, Any],
) -> np.ndarray[Any, Any]:  # fmt: skip
    """Sum of squared relative errors of ``base + times . slopes`` for each row of
    ``times`` (``(n, 3)``; ``slopes`` is ``(3, reads)``)."""
    predicted = base[None, :] + times @ slopes
    return np.sum(((measured[None, :] - predicted) / measured[None, :]) ** 2, axis=1)


NAMES = ("call", "chunk", "request")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 400), st.floats(0, 128), st.floats(1e-4, 0.2), st.floats(0.5, 2.0)),
        min_size=1,
        max_size=12,
    ),
    st.tuples(st.floats(0, 5e-3), st.floats(0, 1e-3), st.floats(0, 1e-3)),
)
def test_the_fit_is_the_best_non_negative_triple(
    rows: list[tuple[float, float, float, float]], current: tuple[float, float, float]
) -> None:
    """Against a brute-force search: no non-negative (call, chunk, request) triple on a
    grid around the fit explains the measurements better (slopes the others explain keep
    their current time in both)."""
    chunks = np.array([r[0] for r in rows])
    requests = np.array([r[1] for r in rows])
    base = np.array([r[2] for r in rows])
    measured = base * np.array([r[3] for r in rows])
    slopes = dict(zip(NAMES, (np.ones_like(chunks), chunks, requests), strict=True))
    fit = fit_reader_costs(measured, base, slopes, dict(zip(NAMES, current, strict=True)))
    assert all(fit[k] >= 0 for k in NAMES)
    matrix = np.stack([slopes[k] for k in NAMES])
    best = _objective(np.array([[fit[k] for k in NAMES]]), measured, base, matrix)[0]
    axes = [np.unique(np.r_[np.linspace(0, max(2 * fit[k], 1e-3), 15), fit[k]]) for k in NAMES]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    # A slope the others explain keeps its current time: the brute force moves the rest.
    for index, name in enumerate(NAMES):
        others = [slopes[k] for k in NAMES[:index]]
        if others and np.linalg.matrix_rank(
            np.stack([*others, slopes[name]], axis=1) / measured[:, None], tol=1e-9
        ) <= np.linalg.matrix_rank(np.stack(others, axis=1) / measured[:, None], tol=1e-9):
            grid[:, index] = fit[name]
    brute = _objective(grid, measured, base, matrix).min()
    assert best <= brute * (1 + 1e-6) + 1e-12


def test_the_fit_recovers_known_costs() -> None:
    chunks = np.array([1.0, 8.0, 64.0, 512.0, 4.0, 16.0])
    requests = np.array([1.0, 8.0, 2.0, 64.0, 4.0, 1.0])
    base = np.array([0.02, 0.03, 0.05, 0.2, 0.01, 0.04])
    # The truth: 2.5 ms per call, 0.15 ms per chunk, 0.7 ms per request.
    measured = base + 2.5e-3 + 0.15e-3 * chunks + 0.7e-3 * requests
    slopes = {"call": np.ones_like(chunks), "chunk": chunks, "request": requests}
    fit = fit_reader_costs(
        measured, base, slopes, {"call": 0.3e-3, "chunk": 0.2e-3, "request": 0.0}
    )
    assert fit["call"] == pytest.approx(2.5e-3, rel=1e-6)
    assert fit["chunk"] == pytest.approx(0.15e-3, rel=1e-6)
    assert fit["request"] == pytest.approx(0.7e-3, rel=1e-6)


def test_a_slope_the_others_explain_keeps_its_time() -> None:
    """Every read touched one chunk per request: chunks and requests cannot be told apart,
    so the time per request stays where it was."""
    chunks = np.array([1.0, 4.0, 16.0])
    base = np.array([0.02, 0.03, 0.05])
    measured = base + 1e-3 + 0.5e-3 * chunks
    slopes = {"call": np.ones_like(chunks), "chunk": chunks, "request": chunks.copy()}
    fit = fit_reader_costs(measured, base, slopes, {"call": 0.0, "chunk": 0.0, "request": 0.2e-3})
    assert fit["request"] == 0.2e-3
    assert fit["chunk"] == pytest.approx(0.3e-3, rel=1e-6)
    assert fit["call"] == pytest.approx(1e-3, rel=1e-6)


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
    assert parse_duration(doc["reader"]["per_request"]) >= 0
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
    doc = fit.document["reader"]
    fitted = np.array([[parse_duration(doc[k]) for k in ("per_call", "per_chunk_cpu", "per_request")]])  # fmt: skip
    old = np.array([[reader.per_call_s, reader.per_chunk_cpu_s, reader.per_request_s]])
    ops = [op for r in report.results for op in r.ops if op.kind not in ("write", "append")]
    measured = np.array([op.mean_s for op in ops])
    slopes = np.array(
        [[1.0] * len(ops), [op.cpu_chunks for op in ops], [op.predicted_requests for op in ops]]
    )
    base = np.array([op.predicted_s for op in ops]) - (old @ slopes)[0]
    # (The document rounds to 4 significant digits.)
    before = _objective(old, measured, base, slopes)[0]
    assert _objective(fitted, measured, base, slopes)[0] <= before * 1.001 + 1e-12
    out = tmp_path / "fitted.yaml"
    out.write_text(yaml.safe_dump(fit.document))
    advice = chunkwise.advise(SPEC, profile=out)
    assert advice.storage.reader.per_call_s == pytest.approx(fitted[0, 0])
    assert advice.storage.reader.per_chunk_cpu_s == pytest.approx(fitted[0, 1])
    assert advice.storage.reader.per_request_s == pytest.approx(fitted[0, 2])


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
