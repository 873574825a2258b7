"""Calibration times its reads in a fresh process (``chunkwise.measure.isolated``), so
that what a rechunk left in this one does not change the constants it fits."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from chunkwise.errors import SpecError
from chunkwise.measure.calibrate import calibrate_codec
from chunkwise.measure.isolated import in_fresh_process
from chunkwise.model.codec import parse_codec
from chunkwise.rechunking.executor import tame_allocator
from chunkwise.units import parse_duration

# The child imports what it calls, so these are library functions, not test helpers.


def test_the_call_runs_in_another_process_and_returns_its_result() -> None:
    assert in_fresh_process(os.getpid) != os.getpid()
    values = np.arange(1000, dtype="float64")
    assert in_fresh_process(np.sum, values) == values.sum()


def test_what_the_child_prints_does_not_spoil_the_result() -> None:
    assert in_fresh_process(print, "noise from Python") is None
    assert in_fresh_process(os.write, 1, b"noise on file descriptor 1\n") == 27


def test_the_childs_exception_is_raised_here() -> None:
    with pytest.raises(SpecError, match="'soon'"):
        in_fresh_process(parse_duration, "soon")


def test_a_child_that_dies_is_an_error_not_a_result() -> None:
    with pytest.raises(RuntimeError, match="abort ended with exit code -6 and no result"):
        in_fresh_process(os.abort)


def test_the_child_imports_what_this_process_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A script that put its own folder on sys.path, not an installed package.
    (tmp_path / "user_timing_module.py").write_text("def twice(x):\n    return 2 * x\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("user_timing_module")
    assert in_fresh_process(module.twice, 21) == 42


def test_where_no_process_starts_the_call_runs_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    assert in_fresh_process(os.getpid) == os.getpid()


@pytest.mark.parametrize("reader", ["zarr-python", "tensorstore"])
def test_calibration_after_a_rechunk_tuned_the_allocator(reader: str) -> None:
    """A rechunk fixes glibc's thresholds process-wide (4 MiB mmap, 128 KiB trim at its
    end). Timed in such a process, tensorstore's per-chunk CPU fitted to 0 in three
    calibrations of five; timed in a fresh process it is positive every time."""
    pytest.importorskip(reader.split("-")[0])
    tame_allocator(precise=True)  # what every rechunk run leaves behind
    sample = np.random.default_rng(0).standard_normal((32, 128, 128)).astype("float32")
    for _ in range(3):
        calibration = calibrate_codec(sample, parse_codec("zstd:3"), reader=reader)
        assert calibration is not None
        assert 0 < calibration.per_chunk_read_s < 1e-3
