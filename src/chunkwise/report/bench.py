"""Render a :class:`~chunkwise.measure.results.BenchReport`: terminal, CSV, Markdown, JSON.

The tables are built once, as strings, by :func:`study_table` and :func:`accuracy_table`;
the terminal, Markdown and HTML (:mod:`chunkwise.report.html`) renderers only lay them
out. Missing values (an operation a layout was not timed on, requests a store did not
count) are NaN in the results and ``—`` in every table.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from chunkwise.measure.results import BenchReport, LayoutResult, OpMeasurement
from chunkwise.units import (
    compare_speed,
    format_bytes,
    format_count,
    format_duration,
    format_rate,
)

__all__ = [
    "CSV_COLUMNS",
    "GOOD_PREDICTION",
    "MISSING",
    "SYNTHETIC_LABEL",
    "TableRow",
    "TextTable",
    "accuracy_table",
    "bench_csv",
    "bench_json",
    "bench_markdown",
    "codec_table",
    "context_items",
    "fastest_result",
    "find_op",
    "good_prediction",
    "machine_items",
    "markdown_table",
    "op_names",
    "print_bench",
    "readers_line",
    "recommended_result",
    "reproduce_line",
    "row_marks",
    "study_caption",
    "study_columns",
    "study_table",
    "summary_lines",
    "synthetic_warning",
]

SYNTHETIC_LABEL = "SYNTHETIC DATA"
MISSING = "—"
# Measured/predicted within this factor counts as a good prediction (the plots' shaded band).
GOOD_PREDICTION = 1.5

CSV_COLUMNS: tuple[str, ...] = (
    "layout",
    "label",
    "zarr_format",
    "chunks",
    "shards",
    "codec",
    "objects",
    "stored_bytes",
    "ratio",
    "write_s",
    "op",
    "kind",
    "weight",
    "measured_s",
    "min_s",
    "max_s",
    "predicted_s",
    "ratio_measured_predicted",
    "requests",
    "predicted_requests",
)

# The columns of published chunking studies, and the operation kind each one times.
_STUDY_KINDS: tuple[tuple[str, str], ...] = (
    ("full read", "scan"),
    ("slice read", "plane"),
    ("ROI read", "region"),
)


@dataclass(frozen=True, slots=True)
class TableRow:
    """One formatted table row.

    Attributes
    ----------
    cells
        One string per column.
    result
        The layout the row belongs to.
    first_in_group
        ``True`` on the first row of a layout (tables with several rows per layout).
    ratio
        Measured over predicted seconds of the row's operation (NaN when not applicable).
    """

    cells: tuple[str, ...]
    result: LayoutResult
    first_in_group: bool = True
    ratio: float = math.nan


@dataclass(frozen=True, slots=True)
class TextTable:
    """A table whose every cell is already formatted.

    Attributes
    ----------
    headers
        Column headings.
    numeric
        ``True`` for right-aligned (numeric) columns, one per heading.
    rows
        The rows, each with as many cells as there are headings.
    """

    headers: tuple[str, ...]
    numeric: tuple[bool, ...]
    rows: tuple[TableRow, ...]


# ---------------------------------------------------------------------------- values


def _finite(value: float) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _seconds(value: float) -> str:
    return format_duration(value) if _finite(value) else MISSING


def _factor(value: float) -> str:
    return f"{value:.2f}x" if _finite(value) else MISSING


def _requests(value: float) -> str:
    if not _finite(value):
        return MISSING
    return format_count(value) if abs(value) >= 100 else f"{value:.3g}"


def _shape(values: tuple[int, ...] | None) -> str:
    return "" if values is None else "x".join(map(str, values))


def _all_ops(report: BenchReport) -> Iterator[OpMeasurement]:
    for result in report.results:
        yield from result.ops


def op_names(report: BenchReport) -> list[str]:
    """Every operation name, in order of first appearance over all layouts."""
    return list(dict.fromkeys(op.name for op in _all_ops(report)))


def find_op(result: LayoutResult, name: str | None) -> OpMeasurement | None:
    """The layout's measurement of the named operation, or ``None``."""
    return next((op for op in result.ops if op.name == name), None)


def study_columns(report: BenchReport) -> list[tuple[str, str | None]]:
    """Map the columns of chunking studies to this report's operations.

    Parameters
    ----------
    report
        The benchmark.

    Returns
    -------
    list of (str, str or None)
        ``("full read", <first scan op>)``, ``("slice read", <first plane op>)`` and
        ``("ROI read", <first region op>)``; the op name is ``None`` when no layout was
        timed on an operation of that kind.
    """
    ops = list(_all_ops(report))
    return [
        (column, next((op.name for op in ops if op.kind == kind), None))
        for column, kind in _STUDY_KINDS
    ]


def recommended_result(report: BenchReport) -> LayoutResult | None:
    """The layout whose label is the recommendation (an ``advise`` row first), or ``None``."""
    if report.recommendation is None:
        return None
    matches = [r for r in report.results if r.layout.label() == report.recommendation]
    return next((r for r in matches if r.source == "advise"), matches[0] if matches else None)


def fastest_result(report: BenchReport) -> LayoutResult | None:
    """The layout with the smallest finite measured workload time, or ``None``."""
    timed = [r for r in report.results if _finite(r.measured_weighted_s)]
    return min(timed, key=lambda r: r.measured_weighted_s) if timed else None


def row_marks(report: BenchReport, result: LayoutResult) -> tuple[str, ...]:
    """The marks a layout's study row carries: ``"recommended"`` and/or ``"fastest"``."""
    marks = []
    if result is recommended_result(report):
        marks.append("recommended")
    if result is fastest_result(report):
        marks.append("fastest")
    return tuple(marks)


# ---------------------------------------------------------------------------- tables


def study_table(report: BenchReport) -> TextTable:
    """The chunking-study table: one row per layout.

    Columns: layout, its label, objects, write, full read, slice read, ROI read, the
    measured workload time (weighted median per operation), stored bytes and
    compression ratio. Times are medians over the repeats.
    """
    columns = study_columns(report)
    headers: tuple[str, ...] = (
        "layout",
        "chunks, shards, codec",
        "objects",
        "write",
        *(column for column, _ in columns),
        "workload",
        "stored",
        "ratio",
    )
    rows = []
    for result in report.results:
        study = []
        for _, name in columns:
            op = find_op(result, name)
            study.append(_seconds(op.measured_s) if op is not None else MISSING)
        cells = (
            result.name,
            result.layout.label(),
            format_count(result.objects),
            _seconds(result.write_s),
            *study,
            _seconds(result.measured_weighted_s),
            format_bytes(result.stored_bytes),
            _factor(result.ratio),
        )
        rows.append(TableRow(cells, result))
    numeric = (False, False) + (True,) * (len(headers) - 2)
    return TextTable(headers, numeric, tuple(rows))


def study_caption(report: BenchReport) -> str:
    """Which operation each study column times, and what the marks mean."""
    mapping = ", ".join(f"{column} = {name}" for column, name in study_columns(report) if name)
    parts = [mapping] if mapping else []
    parts.append(
        "workload = measured time per operation, weighted as in the workload; "
        "times are medians over the repeats"
    )
    parts.append("recommended = advise's top layout; fastest = smallest measured workload time")
    return "; ".join(parts) + "."


def good_prediction(ratio: float) -> bool:
    """``True`` when measured/predicted is within :data:`GOOD_PREDICTION` of 1."""
    return _finite(ratio) and 1 / GOOD_PREDICTION <= ratio <= GOOD_PREDICTION


def _weight(op: OpMeasurement) -> str:
    return f"{op.weight:.0%}" if op.weight > 0 else "study"


def _accuracy_cells(result: LayoutResult, op: OpMeasurement) -> tuple[str, ...]:
    lo, hi = op.spread_s
    spread = f"{_seconds(lo)} – {_seconds(hi)}" if _finite(lo) else MISSING
    return (
        result.name,
        op.name,
        _weight(op),
        _seconds(op.predicted_s),
        _seconds(op.measured_s),
        spread,
        _factor(op.ratio),
        _requests(op.requests),
        _requests(op.predicted_requests),
    )


def _write_ratio(result: LayoutResult) -> float:
    return result.write_s / result.predicted_write_s if result.predicted_write_s > 0 else math.nan


def _write_cells(result: LayoutResult) -> tuple[str, ...]:
    return (
        result.name,
        "write (whole array, once)",
        MISSING,
        _seconds(result.predicted_write_s),
        _seconds(result.write_s),
        MISSING,
        _factor(_write_ratio(result)),
        MISSING,
        MISSING,
    )


def accuracy_table(report: BenchReport) -> TextTable:
    """Predicted vs measured: one row per layout and operation, then the layout's write.

    Columns: layout, operation, weight (``study`` for comparison-only columns),
    predicted, measured median, spread (fastest – slowest repeat), measured/predicted,
    and requests per operation as counted at the store and as predicted.
    """
    headers = (
        "layout",
        "operation",
        "weight",
        "predicted",
        "measured",
        "spread (min – max)",
        "measured / predicted",
        "requests",
        "predicted requests",
    )
    rows: list[TableRow] = []
    for result in report.results:
        entries = [(_accuracy_cells(result, op), op.ratio) for op in result.ops]
        if _finite(result.write_s) and result.write_s > 0:
            entries.append((_write_cells(result), _write_ratio(result)))
        rows.extend(
            TableRow(cells, result, i == 0, ratio) for i, (cells, ratio) in enumerate(entries)
        )
    numeric = (False, False) + (True,) * (len(headers) - 2)
    return TextTable(headers, numeric, tuple(rows))


def codec_table(report: BenchReport) -> TextTable | None:
    """Codecs measured on a sample of the data, or ``None`` when none were."""
    if not report.codecs or not report.results:
        return None
    rows = tuple(
        TableRow(
            (
                c.codec,
                _factor(c.ratio),
                format_rate(c.encode_Bps) if _finite(c.encode_Bps) else MISSING,
                format_rate(c.decode_Bps) if _finite(c.decode_Bps) else MISSING,
                format_bytes(c.sample_bytes),
            ),
            report.results[0],
        )
        for c in report.codecs
    )
    headers = ("codec", "ratio", "encode (1 thread)", "decode (1 thread)", "sample")
    return TextTable(headers, (False, True, True, True, True), rows)


# ---------------------------------------------------------------------------- prose


def synthetic_warning(report: BenchReport) -> str | None:
    """What generated data means for the numbers (shown after :data:`SYNTHETIC_LABEL`), or
    ``None`` for real data."""
    if not report.data.synthetic:
        return None
    return (
        "these layouts were written with generated values, not real data. "
        "Compression ratios, stored sizes and decode times may differ on real data."
    )


def _data_line(report: BenchReport) -> str:
    data = report.data
    text = f"{data.description} ({data.source})" if data.description else data.source
    return f"{text} [{SYNTHETIC_LABEL}]" if data.synthetic else text


def _workload_line(report: BenchReport) -> str:
    ops = ", ".join(f"{op.name} {op.weight:.0%}" for op in report.workload.ops)
    return f"{ops} (preset {report.workload.preset})" if report.workload.preset else ops


def _storage_line(report: BenchReport) -> str:
    s = report.storage
    return (
        f"{s.name}: {format_duration(s.latency_s)} latency, {format_rate(s.bandwidth_Bps)}, "
        f"{s.concurrency} concurrent requests, read by {s.reader.name} "
        f"(concurrency {s.reader.concurrency})"
    )


def readers_line(report: BenchReport) -> str | None:
    """``priced tensorstore; measured through tensorstore 0.1.86 (reads; writes through
    zarr-python 3.1.6)``, or ``None`` for a report that does not say what measured."""
    if not report.measured_reader:
        return None
    writes = f"; writes through {report.written_by}" if report.written_by else ""
    others = sorted({r.reader for r in report.results if r.reader} - {report.measured_reader})
    some = f"; some layouts through {', '.join(others)}" if others else ""
    return (
        f"priced {report.storage.reader.name}; measured through {report.measured_reader} "
        f"(reads{writes}{some})"
    )


def context_items(report: BenchReport) -> list[tuple[str, str]]:
    """What was benchmarked, as (heading, text) pairs: data, array, workload, storage,
    readers (priced and measured), store."""
    a = report.array
    array = (
        f"{a.dtype} {_shape(a.shape)} ({', '.join(a.dims)}), {format_bytes(a.nbytes)} uncompressed"
    )
    readers = readers_line(report)
    return [
        ("Data", _data_line(report)),
        ("Array", array),
        ("Workload", _workload_line(report)),
        ("Storage profile", _storage_line(report)),
        *([("Readers", readers)] if readers else []),
        ("Store", report.store),
        ("Repeats", f"{report.repeats} random positions per operation, seed {report.seed}"),
    ]


def _machine_value(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {_machine_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(map(_machine_value, value))
    return str(value)


def machine_items(report: BenchReport) -> list[tuple[str, str]]:
    """The host description as (key, text) pairs, without the reproduce ``command``."""
    return [(str(k), _machine_value(v)) for k, v in report.machine.items() if k != "command"]


def reproduce_line(report: BenchReport) -> str:
    """How to reproduce the benchmark: the recorded command, or the seed and repeats."""
    command = report.machine.get("command")
    if command:
        return f"Reproduce with: {_machine_value(command)}"
    return (
        "Reproduce by running chunkwise bench on the same spec and store with "
        f"seed {report.seed} and {report.repeats} repeats."
    )


def _versus(best: LayoutResult, others: Iterable[LayoutResult]) -> str | None:
    parts = []
    for other in others:
        a, b = best.measured_weighted_s, other.measured_weighted_s
        if other is best or not (_finite(a) and _finite(b)) or a <= 0 or b <= 0:
            continue
        parts.append(f"{compare_speed(a, b)} {other.name}")
    return f"{best.name} measured {', '.join(parts)}." if parts else None


def summary_lines(report: BenchReport) -> list[str]:
    """The outcome in a few sentences: recommendation, fastest layouts, baselines compared."""
    rec, fastest = recommended_result(report), fastest_result(report)
    lines = []
    if report.recommendation is None:
        lines.append("advise was not run: no recommendation.")
    elif rec is None:
        lines.append(f"advise recommends {report.recommendation} (not among the layouts timed).")
    else:
        lines.append(f"advise recommends {report.recommendation} (row {rec.name!r}).")
    if fastest is not None:
        predicted = min(report.results, key=lambda r: r.predicted_weighted_s)
        lines.append(
            f"Fastest measured: {fastest.name} ({fastest.layout.label()}), "
            f"{_seconds(fastest.measured_weighted_s)} per operation of the workload; "
            f"predicted fastest: {predicted.name}."
        )
    if rec is not None:
        versus = _versus(rec, (r for r in report.results if r.source == "baseline"))
        if versus:
            lines.append(versus)
    return lines


# ---------------------------------------------------------------------------- terminal


def _rich_table(table: TextTable, title: str) -> Table:
    out = Table(title=title, title_justify="left", header_style="bold")
    for header, numeric in zip(table.headers, table.numeric, strict=True):
        out.add_column(header, justify="right" if numeric else "left")
    return out


def _study_rich(report: BenchReport) -> Table:
    table = study_table(report)
    out = _rich_table(table, "Measured layouts (medians of the repeats)")
    for row in table.rows:
        marks = row_marks(report, row.result)
        name = Text(row.cells[0])
        if marks:
            name.append("\n" + " ".join(f"[{m}]" for m in marks), style="italic")
        style = " ".join(
            s for m, s in (("recommended", "green"), ("fastest", "bold")) if m in marks
        )
        out.add_row(name, *map(Text, row.cells[1:]), style=style or None)
    return out


def _accuracy_rich(report: BenchReport) -> Table:
    table = accuracy_table(report)
    out = _rich_table(table, "Predicted vs measured (per operation)")
    rows = table.rows
    for i, row in enumerate(rows):
        cells = [Text(row.cells[0] if row.first_in_group else ""), *map(Text, row.cells[1:])]
        if _finite(row.ratio):
            cells[6] = Text(row.cells[6], style="green" if good_prediction(row.ratio) else "yellow")
        last = i + 1 == len(rows) or rows[i + 1].first_in_group
        out.add_row(*cells, end_section=last)
    return out


def print_bench(report: BenchReport, console: Console) -> None:
    """Print a benchmark: context, study table, predicted vs measured, recommendation, notes.

    Parameters
    ----------
    report
        The benchmark.
    console
        Where to print.
    """
    warning = synthetic_warning(report)
    console.print(Text.assemble(("chunkwise bench", "bold"), f"  {report.title}"))
    if warning:
        text = Text(f"{SYNTHETIC_LABEL}: {warning}", style="bold")
        console.print(Panel(text, style="red", title=SYNTHETIC_LABEL))
    for key, value in context_items(report):
        console.print(Text.assemble((f"{key}: ", "dim"), value))
    console.print(_study_rich(report))
    console.print(Text(study_caption(report), style="dim"))
    console.print(_accuracy_rich(report))
    codecs = codec_table(report)
    if codecs is not None:
        out = _rich_table(codecs, "Codecs on a sample of the data")
        for row in codecs.rows:
            out.add_row(*map(Text, row.cells))
        console.print(out)
    lines = [Text("• " + line) for line in summary_lines(report)]
    lines += [Text("• " + line, style="dim") for line in report.rationale]
    title = Text(f"Recommendation: {report.recommendation or 'none'}")
    console.print(Panel(Group(*lines), title=title, title_align="left"))
    for note in report.notes:
        console.print(Text("Note: " + note, style="yellow"))
    machine = "; ".join(f"{k} {v}" for k, v in machine_items(report))
    if machine:
        console.print(Text("Machine: " + machine, style="dim"))
    console.print(Text(reproduce_line(report), style="dim"))


# ---------------------------------------------------------------------------- CSV, JSON


def _csv_number(value: float) -> str:
    return repr(float(value)) if _finite(value) else ""


def _csv_layout(result: LayoutResult) -> list[str]:
    layout = result.layout
    return [
        result.name,
        layout.label(),
        str(layout.zarr_format),
        _shape(layout.chunks),
        _shape(layout.shards),
        layout.codec.short,
        str(result.objects),
        str(result.stored_bytes),
        _csv_number(result.ratio),
        _csv_number(result.write_s),
    ]


def _csv_op(op: OpMeasurement) -> list[str]:
    lo, hi = op.spread_s
    numbers = (op.weight, op.measured_s, lo, hi, op.predicted_s, op.ratio)
    return [
        op.name,
        op.kind,
        *map(_csv_number, numbers),
        _csv_number(op.requests),
        _csv_number(op.predicted_requests),
    ]


def bench_csv(report: BenchReport) -> str:
    """One CSV row per (layout, operation), columns :data:`CSV_COLUMNS`.

    Times are seconds, sizes bytes, written with full precision; missing values are
    empty. A layout without operations gets one row with empty operation columns.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for result in report.results:
        head = _csv_layout(result)
        ops = [_csv_op(op) for op in result.ops] or [[""] * (len(CSV_COLUMNS) - len(head))]
        writer.writerows(head + op for op in ops)
    return buffer.getvalue()


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def bench_json(report: BenchReport) -> str:
    """``report.to_dict()`` as strict JSON: NaN and infinities become ``null``."""
    document = _json_safe(report.to_dict())
    return json.dumps(document, indent=2, allow_nan=False, default=str) + "\n"


# ---------------------------------------------------------------------------- Markdown


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell or line (no pipes, tags or line breaks)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def markdown_table(table: TextTable, marks: dict[int, tuple[str, ...]] | None = None) -> list[str]:
    """A GitHub Markdown table; ``marks`` maps row index to marks appended to its first cell."""
    lines = [
        "| " + " | ".join(map(_md, table.headers)) + " |",
        "|" + "|".join("---:" if n else "---" for n in table.numeric) + "|",
    ]
    for i, row in enumerate(table.rows):
        cells = [_md(c) for c in row.cells]
        extra = (marks or {}).get(i, ())
        if extra:
            cells[0] = f"**{cells[0]}** ({', '.join(extra)})"
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _md_section(title: str, body: list[str]) -> list[str]:
    return [f"## {title}", "", *body, ""]


def bench_markdown(report: BenchReport) -> str:
    """The benchmark as a Markdown document (GitHub flavour).

    Sections: context, results (study table), recommendation, predicted vs measured,
    codecs, notes, machine, and the exact numbers (the CSV).
    """
    lines = [f"# {_md(report.title)}", ""]
    warning = synthetic_warning(report)
    if warning:
        lines += [f"> **{SYNTHETIC_LABEL}:** {_md(warning)}", ""]
    lines += [f"- **{key}:** {_md(value)}" for key, value in context_items(report)] + [""]
    study = study_table(report)
    marks = {i: row_marks(report, row.result) for i, row in enumerate(study.rows)}
    lines += _md_section("Results", [*markdown_table(study, marks), "", _md(study_caption(report))])
    recommendation = [f"- {_md(line)}" for line in summary_lines(report)]
    if report.rationale:
        recommendation += ["", "Why:", ""] + [f"- {_md(line)}" for line in report.rationale]
    lines += _md_section("Recommendation", recommendation)
    lines += _md_section("Predicted vs measured", markdown_table(accuracy_table(report)))
    codecs = codec_table(report)
    if codecs is not None:
        lines += _md_section("Codecs on a sample of the data", markdown_table(codecs))
    if report.notes:
        lines += _md_section("Notes", [f"- {_md(note)}" for note in report.notes])
    machine = [f"- **{_md(k)}:** {_md(v)}" for k, v in machine_items(report)]
    lines += _md_section("Machine", [*machine, "", _md(reproduce_line(report))])
    exact = "Seconds and bytes at full precision, one row per layout and operation:"
    lines += _md_section("Exact numbers", [exact, "", "```csv", bench_csv(report).rstrip(), "```"])
    return "\n".join(lines).rstrip() + "\n"
