"""In a notebook, every result reads as a report: a plain-text ``repr`` (never a dataclass
dump with object addresses) and an HTML form."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import zarr
from bench_report_samples import sample_report

import chunkwise

DUMP = re.compile(r"object at 0x|\b[A-Z][a-z]+[A-Z]\w*\(\w+=")  # an address, or ClassName(field=...


def _check(obj: object, *expected: str) -> None:
    text = repr(obj)
    assert not DUMP.search(text), text[:400]
    for phrase in expected:
        assert phrase in text, (phrase, text[:400])
    page = obj._repr_html_()  # type: ignore[attr-defined]
    assert page.startswith(("<pre>", "<div>")) and "object at 0x" not in page


def test_advice_plan_result_inspect_and_bench_read_as_reports(tmp_path: Path) -> None:
    advice = chunkwise.advise(
        array={"shape": [64, 256, 256], "dtype": "uint16", "dims": ["z", "y", "x"]},
        workload="slice-viewer",
    )
    _check(advice, "Advice for uint16", "1.")
    np.save(tmp_path / "v.npy", np.zeros((16, 32, 32), "u2"))
    plan = chunkwise.convert(tmp_path / "v.npy", tmp_path / "v.zarr", dry_run=True)
    _check(plan, "ConversionPlan", "source: NumPy", "projected peak")
    result = chunkwise.convert(tmp_path / "v.npy", tmp_path / "v.zarr")
    _check(result, "ConversionResult", "wrote", "verified:")
    zarr.create_array(tmp_path / "i.zarr", shape=(8, 8), chunks=(2, 2), dtype="f4")
    _check(chunkwise.inspect(tmp_path / "i.zarr"), "findings")
    _check(sample_report(), "measured", "predicted", "objects")
