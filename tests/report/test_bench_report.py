"""Benchmark reports: study columns, CSV, Markdown, terminal, figures, JSON and HTML."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from bench_report_samples import sample_report, without_kinds
from matplotlib.image import imread
from rich.console import Console

from chunkwise.errors import MissingDependencyError
from chunkwise.measure.results import BenchReport
from chunkwise.report.bench import (
    CSV_COLUMNS,
    SYNTHETIC_LABEL,
    bench_csv,
    bench_markdown,
    print_bench,
    study_columns,
)
from chunkwise.report.html import bench_html, write_report_files
from chunkwise.report.plots import plot_objects_vs_read, plot_op_times, plot_predicted_vs_measured

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PLOTS: list[Callable[[BenchReport], bytes]] = [
    plot_op_times,
    plot_objects_vs_read,
    plot_predicted_vs_measured,
]


@pytest.fixture(scope="module")
def report() -> BenchReport:
    return sample_report()


def terminal_text(report: BenchReport) -> str:
    console = Console(record=True, width=160)
    print_bench(report, console)
    return console.export_text()


# ---------------------------------------------------------------------------- study columns


def test_study_columns_map_to_first_op_of_each_kind(report: BenchReport) -> None:
    assert study_columns(report) == [
        ("full read", "scan"),
        ("slice read", "plane[y,x]"),
        ("ROI read", "region[32x32x32]"),
    ]


def test_study_columns_are_none_when_absent(report: BenchReport) -> None:
    planes_only = without_kinds(report, "scan", "region")
    assert study_columns(planes_only) == [
        ("full read", None),
        ("slice read", "plane[y,x]"),
        ("ROI read", None),
    ]
    assert "ROI read" in bench_markdown(planes_only)  # the column stays, with "—"


# ---------------------------------------------------------------------------- CSV


def test_csv_parses_back_with_one_row_per_layout_and_op(report: BenchReport) -> None:
    rows = list(csv.DictReader(io.StringIO(bench_csv(report))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == sum(len(r.ops) for r in report.results) == 15
    by_key = {(row["layout"], row["op"]): row for row in rows}
    for result in report.results:
        for op in result.ops:
            row = by_key[(result.name, op.name)]
            assert row["label"] == result.layout.label()
            assert int(row["objects"]) == result.objects
            assert int(row["stored_bytes"]) == result.stored_bytes
            assert float(row["measured_s"]) == op.measured_s  # full precision round trip
            assert float(row["min_s"]) == min(op.times_s)
            assert float(row["max_s"]) == max(op.times_s)
            assert float(row["predicted_s"]) == op.predicted_s
            assert float(row["weight"]) == op.weight
            assert row["kind"] == op.kind
    advise = by_key[("advise #1", "plane[y,x]")]
    assert (advise["zarr_format"], advise["chunks"], advise["shards"]) == (
        "3",
        "8x128x128",
        "64x256x256",
    )
    assert by_key[("dask auto", "scan")]["shards"] == ""
    assert by_key[("rule of thumb", "scan")]["requests"] == ""  # not counted: NaN -> empty


# ---------------------------------------------------------------------------- Markdown


def markdown_tables(text: str) -> list[list[str]]:
    tables: list[list[str]] = []
    current: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    return tables


def cell_count(line: str) -> int:
    assert line.startswith("|") and line.endswith("|"), line
    return len(re.split(r"(?<!\\)\|", line)) - 2


def test_markdown_tables_are_consistent(report: BenchReport) -> None:
    text = bench_markdown(report)
    tables = markdown_tables(text)
    assert len(tables) == 3  # results, predicted vs measured, codecs
    for table in tables:
        columns = cell_count(table[0])
        assert re.fullmatch(r"\|(-{3,}:?\|)+", table[1]), table[1]
        assert all(cell_count(line) == columns for line in table), table
    results, accuracy, _ = tables
    assert len(results) == 2 + len(report.results)
    assert len(accuracy) == 2 + sum(len(r.ops) + 1 for r in report.results)  # + write rows
    assert text.startswith(f"# {report.title}\n")
    assert "**advise #1** (recommended)" in text
    assert "**dask auto** (fastest)" in text
    assert "```csv\nlayout,label," in text


def test_markdown_escapes_pipes_in_cells(report: BenchReport) -> None:
    text = bench_markdown(sample_report(names={"zarr auto": "a|b"}))
    assert all(cell_count(t[0]) == cell_count(t[2]) for t in markdown_tables(text))
    assert "a\\|b" in text


# ---------------------------------------------------------------------------- terminal


@pytest.mark.parametrize("synthetic", [False, True])
def test_terminal_names_every_layout_and_labels_synthetic_data(synthetic: bool) -> None:
    report = sample_report(synthetic=synthetic)
    text = terminal_text(report)
    for result in report.results:
        assert result.name in text
    assert "plane[y,x]" in text  # not eaten as rich markup
    assert report.recommendation is not None and report.recommendation in text
    assert (SYNTHETIC_LABEL in text) is synthetic
    assert (SYNTHETIC_LABEL in bench_markdown(report)) is synthetic
    assert (SYNTHETIC_LABEL in bench_html(report)) is synthetic


def test_renderers_survive_missing_measurements(report: BenchReport) -> None:
    first = report.results[0]
    empty = replace(first.ops[0], times_s=(), requests=math.nan)
    broken = replace(first, ops=(empty, *first.ops[1:]), write_s=math.nan)
    damaged = replace(report, results=(broken, *report.results[1:]), recommendation=None)
    text = terminal_text(damaged)
    assert "advise was not run" in text
    assert "—" in bench_markdown(damaged)
    for plot in PLOTS:
        assert plot(damaged).startswith(PNG_SIGNATURE)


# ---------------------------------------------------------------------------- figures


@pytest.mark.parametrize("plot", PLOTS, ids=lambda p: p.__name__)
def test_plot_is_a_real_png(plot: Callable[[BenchReport], bytes], report: BenchReport) -> None:
    data = plot(report)
    assert data.startswith(PNG_SIGNATURE)
    pixels = imread(io.BytesIO(data), format="png")
    height, width = pixels.shape[:2]
    assert width > 300 and height > 300
    assert np.ptp(pixels[..., :3]) > 0.5  # drawn on, not blank
    assert len(np.unique(pixels[..., :3].reshape(-1, 3), axis=0)) > 20


def test_plots_without_matplotlib_name_the_extra(
    report: BenchReport, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'chunkwise\[plot\]'"):
        plot_op_times(report)
    assert "chunkwise[plot]" in bench_html(report)  # the page still renders, with a note


# ---------------------------------------------------------------------------- files


def reject_constant(name: str) -> float:
    raise ValueError(f"non-standard JSON constant {name}")


def test_report_files_are_written_and_json_is_strict(report: BenchReport, tmp_path: Path) -> None:
    paths = write_report_files(report, tmp_path / "out")
    assert {k: p.name for k, p in paths.items()} == {
        "html": "bench.html",
        "md": "bench.md",
        "csv": "bench.csv",
        "json": "bench.json",
    }
    assert all(p.stat().st_size > 0 for p in paths.values())
    doc = json.loads(paths["json"].read_text(encoding="utf-8"), parse_constant=reject_constant)
    assert doc["recommendation"] == report.recommendation
    assert doc["fastest_measured"] == "dask auto"
    rule = next(r for r in doc["results"] if r["name"] == "rule of thumb")
    assert rule["ops"]["scan"]["requests"] is None  # NaN became null
    assert len(doc["results"]) == len(report.results)
    assert paths["md"].read_text(encoding="utf-8") == bench_markdown(report)


# ---------------------------------------------------------------------------- HTML


class _Collect(HTMLParser):
    """Tag names with attributes, and every `src`/`href` value."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_html_escapes_text_and_is_self_contained() -> None:
    evil = "<script>alert('x')</script>"
    report = sample_report(names={"candidate 1": evil})
    page = bench_html(report)
    assert "<script" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    parser = _Collect()
    parser.feed(page)
    links = [a[k] for _, a in parser.tags for k in ("src", "href") if a.get(k)]
    assert links and all(str(v).startswith("data:image/png;base64,") for v in links)
    assert not [t for t, _ in parser.tags if t in ("script", "link", "iframe")]
    recommended = [a for t, a in parser.tags if t == "tr" and a.get("class") == "recommended"]
    assert len(recommended) == 1
    assert {a.get("id") for t, a in parser.tags if t == "table"} >= {
        "results",
        "predicted-vs-measured",
    }
