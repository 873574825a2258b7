"""A self-contained HTML page of a benchmark, and writing all report files at once.

The page has inline CSS, the figures as ``data:image/png;base64`` images, no script
and no external URL: it can be mailed, archived or opened offline as one file.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from pathlib import Path

from chunkwise._version import __version__
from chunkwise.errors import MissingDependencyError
from chunkwise.measure.results import BenchReport
from chunkwise.report.bench import (
    SYNTHETIC_LABEL,
    TextTable,
    accuracy_table,
    bench_csv,
    bench_json,
    bench_markdown,
    codec_table,
    context_items,
    fastest_result,
    good_prediction,
    machine_items,
    reproduce_line,
    row_marks,
    study_caption,
    study_table,
    summary_lines,
    synthetic_warning,
)
from chunkwise.report.plots import plot_objects_vs_read, plot_op_times, plot_predicted_vs_measured

__all__ = [
    "bench_html",
    "escape",
    "figure_html",
    "html_page",
    "section_html",
    "write_report_files",
]

_CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa;
        --accent: #0b6e4f; --accent-soft: #e6f4ea; --warn: #8a1c1c; --warn-soft: #fdecec; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
             sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 32px 40px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 16px 0 6px; }
.subtitle { color: var(--muted); margin: 0 0 18px; }
code { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
       background: var(--soft); padding: 1px 5px; border-radius: 4px; }
.banner { border: 2px solid var(--warn); background: var(--warn-soft); color: var(--warn);
          padding: 10px 14px; border-radius: 6px; margin: 12px 0 18px; }
dl.context { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.context dt { color: var(--muted); }
dl.context dd { margin: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-size: 13.5px; margin: 6px 0; }
th, td { padding: 5px 10px; border-bottom: 1px solid var(--line); text-align: left;
         vertical-align: top; }
th { background: var(--soft); font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.label { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
tr.recommended td { background: var(--accent-soft); }
tr[data-fastest] td { font-weight: 600; }
tr.group-start td { border-top: 2px solid var(--line); }
#predicted-vs-measured td:nth-child(-n+2) { white-space: nowrap; }
footer code { white-space: normal; }
td.good { color: var(--accent); }
td.off { color: #9a6700; }
.badge { display: inline-block; font-size: 11px; font-weight: 600; padding: 0 6px;
         margin-left: 6px; border-radius: 10px; border: 1px solid currentColor; }
.badge.recommended { color: var(--accent); }
.badge.fastest { color: #0550ae; }
.caption, .legend { color: var(--muted); font-size: 13px; margin: 4px 0; }
#recommendation { border: 1px solid var(--accent); border-radius: 8px; padding: 2px 18px 10px;
                  background: #fbfefc; margin-top: 26px; }
#recommendation h2 { border: none; margin-top: 14px; }
#recommendation .label { font-size: 16px; }
figure { margin: 14px 0 22px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 13px; }
footer { margin-top: 36px; padding-top: 10px; border-top: 1px solid var(--line);
         color: var(--muted); font-size: 13px; }
"""

_PLOTS: tuple[tuple[Callable[[BenchReport], bytes], str, str], ...] = (
    (
        plot_op_times,
        "Time per operation and layout",
        "Median time of each operation on each layout; whiskers span the fastest to the "
        "slowest repeat.",
    ),
    (
        plot_objects_vs_read,
        "Objects vs measured workload time",
        "Each layout's number of stored objects against its measured workload time.",
    ),
    (
        plot_predicted_vs_measured,
        "Predicted vs measured",
        "Every (layout, operation): points in the shaded band are within 1.5x of the prediction.",
    ),
)


def escape(text: object) -> str:
    """``text`` escaped for HTML, quotes included."""
    return html.escape(str(text), quote=True)


def _cell(text: str, numeric: bool, extra: str = "") -> str:
    classes = " ".join(c for c in ("num" if numeric else "", extra) if c)
    attr = f' class="{classes}"' if classes else ""
    return f"<td{attr}>{escape(text)}</td>"


def _head(table: TextTable) -> str:
    numeric = ' class="num"'
    cells = "".join(
        f'<th{numeric if n else ""} scope="col">{escape(h)}</th>'
        for h, n in zip(table.headers, table.numeric, strict=True)
    )
    return f"<thead><tr>{cells}</tr></thead>"


def _badges(marks: tuple[str, ...]) -> str:
    return "".join(f'<span class="badge {escape(m)}">{escape(m)}</span>' for m in marks)


def _study_html(report: BenchReport) -> str:
    table = study_table(report)
    fastest = fastest_result(report)
    body = []
    for row in table.rows:
        marks = row_marks(report, row.result)
        attrs = ' class="recommended"' if "recommended" in marks else ""
        attrs += ' data-fastest="true"' if row.result is fastest else ""
        name = f"<td><strong>{escape(row.cells[0])}</strong>{_badges(marks)}</td>"
        rest = [
            _cell(c, n, "label" if i == 1 else "")
            for i, (c, n) in enumerate(zip(row.cells, table.numeric, strict=True))
            if i > 0
        ]
        body.append(f"<tr{attrs}>{name}{''.join(rest)}</tr>")
    return f'<table id="results">{_head(table)}<tbody>{"".join(body)}</tbody></table>'


def _accuracy_html(report: BenchReport) -> str:
    table = accuracy_table(report)
    ratio_column = table.headers.index("measured / predicted")
    body = []
    for row in table.rows:
        cells = []
        for i, (text, numeric) in enumerate(zip(row.cells, table.numeric, strict=True)):
            if i == 0 and not row.first_in_group:
                text = ""
            tone = ""
            if i == ratio_column and text != "—":
                tone = "good" if good_prediction(row.ratio) else "off"
            cells.append(_cell(text, numeric, tone))
        attrs = ' class="group-start"' if row.first_in_group else ""
        body.append(f"<tr{attrs}>{''.join(cells)}</tr>")
    return f'<table id="predicted-vs-measured">{_head(table)}<tbody>{"".join(body)}</tbody></table>'


def _plain_table(table: TextTable, table_id: str) -> str:
    body = "".join(
        "<tr>" + "".join(_cell(c, n) for c, n in zip(r.cells, table.numeric, strict=True)) + "</tr>"
        for r in table.rows
    )
    return f'<table id="{escape(table_id)}">{_head(table)}<tbody>{body}</tbody></table>'


def figure_html(png: bytes, title: str, caption: str) -> str:
    """A ``<figure>`` with ``png`` inlined as base64 (800x450 px), a title and a caption."""
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{escape(title)}" width="800" '
        f'height="450"><figcaption><strong>{escape(title)}.</strong> {escape(caption)}</figcaption></figure>'
    )


def _plots_html(report: BenchReport) -> str:
    try:
        figures = [figure_html(plot(report), title, caption) for plot, title, caption in _PLOTS]
    except MissingDependencyError as error:
        return f'<p class="caption">{escape(error)}</p>'
    return "".join(figures)


def _list(items: list[str] | tuple[str, ...], css: str) -> str:
    return f'<ul class="{css}">' + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


def _recommendation_html(report: BenchReport) -> str:
    label = report.recommendation or "none (advise was not run)"
    parts = [
        '<section id="recommendation"><h2>Recommendation</h2>',
        f'<p class="label"><code>{escape(label)}</code></p>',
        _list(summary_lines(report), "summary"),
    ]
    if report.rationale:
        parts += ["<h3>Why</h3>", _list(report.rationale, "rationale")]
    return "".join(parts) + "</section>"


def _header_html(report: BenchReport) -> str:
    parts = [
        f"<header><h1>{escape(report.title)}</h1>",
        '<p class="subtitle">chunkwise bench: candidate Zarr layouts written and timed</p>',
        "</header>",
    ]
    warning = synthetic_warning(report)
    if warning:
        parts.append(
            f'<div class="banner" id="synthetic" role="alert"><strong>{SYNTHETIC_LABEL}:</strong>'
            f" {escape(warning)}</div>"
        )
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in context_items(report))
    parts.append(f'<dl class="context">{items}</dl>')
    return "".join(parts)


def section_html(section_id: str, title: str, body: str) -> str:
    """A ``<section id=...>`` with an ``<h2>`` title around the HTML ``body``."""
    return f'<section id="{escape(section_id)}"><h2>{escape(title)}</h2>{body}</section>'


def _details_html(report: BenchReport) -> str:
    parts = []
    codecs = codec_table(report)
    if codecs is not None:
        table = _plain_table(codecs, "codecs")
        parts.append(section_html("codecs", "Codecs on a sample of the data", table))
    if report.notes:
        parts.append(section_html("notes", "Notes", _list(report.notes, "notes")))
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in machine_items(report))
    parts.append(section_html("machine", "Machine", f'<dl class="context">{items}</dl>'))
    return "".join(parts)


def _footer_html(report: BenchReport) -> str:
    line = reproduce_line(report)
    prefix = "Reproduce with: "
    reproduce = (
        f"{prefix}<code>{escape(line.removeprefix(prefix))}</code>"
        if line.startswith(prefix)
        else escape(line)
    )
    return (
        f"<footer><p>Generated by chunkwise {escape(__version__)} (chunkwise bench). {reproduce}</p>"
        "<p>The exact numbers are in the CSV (one row per layout and operation) and JSON "
        "files written with this page.</p></footer>"
    )


def bench_html(report: BenchReport) -> str:
    """The benchmark as one self-contained HTML page.

    Parameters
    ----------
    report
        The benchmark.

    Returns
    -------
    str
        An HTML5 document: the study table ``<table id="results">`` (the recommended
        layout's row has ``class="recommended"``, the fastest's ``data-fastest``), the
        table ``<table id="predicted-vs-measured">``, the figures as inline PNG images
        (a note instead when matplotlib is missing), ``<section id="recommendation">``,
        notes, machine and how to reproduce. All text is HTML-escaped.
    """
    results = (
        f'<div class="scroll">{_study_html(report)}</div>'
        f'<p class="legend">{escape(study_caption(report))}</p>'
    )
    accuracy = (
        '<p class="caption">Times per operation; measured/predicted in green when within '
        f'1.5x.</p><div class="scroll">{_accuracy_html(report)}</div>'
    )
    body = "".join(
        (
            _header_html(report),
            _recommendation_html(report),
            section_html("results-section", "Results", results),
            section_html("plots", "Figures", _plots_html(report)),
            section_html("accuracy", "Predicted vs measured", accuracy),
            _details_html(report),
            _footer_html(report),
        )
    )
    return html_page(report.title, body)


def html_page(title: str, body: str) -> str:
    """A self-contained HTML5 page: ``body`` inside ``<main>``, the reports' inline CSS.

    Parameters
    ----------
    title
        The page title (escaped here).
    body
        HTML already escaped by the caller.
    """
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def write_report_files(
    report: BenchReport, out_dir: Path, *, stem: str = "bench"
) -> dict[str, Path]:
    """Write the HTML, Markdown, CSV and JSON reports into ``out_dir``.

    Parameters
    ----------
    report
        The benchmark.
    out_dir
        Directory to write into (created if missing).
    stem
        File name stem: ``<stem>.html``, ``<stem>.md``, ``<stem>.csv``, ``<stem>.json``.

    Returns
    -------
    dict of str to Path
        The written files by format: ``"html"``, ``"md"``, ``"csv"``, ``"json"``.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    contents = {
        "html": bench_html(report),
        "md": bench_markdown(report),
        "csv": bench_csv(report),
        "json": bench_json(report),
    }
    paths = {}
    for suffix, text in contents.items():
        path = out_dir / f"{stem}.{suffix}"
        path.write_text(text, encoding="utf-8", newline="\n")
        paths[suffix] = path
    return paths
