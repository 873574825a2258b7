"""What a trace shows: chunk-access heatmaps, request and byte totals, the inferred workload.

Renders a :class:`~chunkwise.tracing.trace.Trace`; computes nothing itself (the counts
come from :func:`chunkwise.plan.infer.chunk_heatmap`, the workload from
:func:`chunkwise.plan.infer.infer_workload`). Files written by :func:`write_trace_files`:

* ``trace.json``: arrays, totals, every store event and selection;
* ``workload.yaml``: the workload inferred for the most-read array, a spec ``advise``
  accepts (and ``workload-<array>.yaml`` for each array when several were read);
* ``heatmap-<array>.png``: chunk reads per array (needs matplotlib);
* ``report.html``: one self-contained page with all of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from chunkwise._version import __version__
from chunkwise.errors import MissingDependencyError, SpecError
from chunkwise.plan.infer import ChunkHeatmap, InferredWorkload
from chunkwise.report.html import escape, figure_html, html_page, section_html
from chunkwise.report.plots import figure_png, new_figure
from chunkwise.tracing.trace import Trace, TracedArray
from chunkwise.units import format_bytes, format_duration

__all__ = [
    "TraceFiles",
    "array_slug",
    "plot_heatmap",
    "trace_document",
    "trace_html",
    "workload_yaml",
    "write_trace_files",
]

# Counts are written into the cells of heatmaps with at most this many cells.
_ANNOTATE_CELLS = 64


def array_slug(name: str) -> str:
    """A file-name-safe form of an array name: ``group/temp`` -> ``group-temp``."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")
    return slug or "root"


def plot_heatmap(name: str, array: TracedArray, heatmap: ChunkHeatmap) -> bytes:
    """The chunk-read counts of one array as a PNG.

    Parameters
    ----------
    name
        The array's name in the trace (the title).
    array
        Its shape, dims and chunks (the axis labels).
    heatmap
        The counts, projected onto two dims.

    Returns
    -------
    bytes
        An 800 x 450 px PNG.

    Raises
    ------
    chunkwise.errors.MissingDependencyError
        When matplotlib is not installed (the ``plot`` extra).
    """
    figure = new_figure()
    axes = figure.add_subplot()
    counts = heatmap.counts
    image = axes.imshow(counts, aspect="auto", interpolation="nearest", cmap="viridis")
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    colorbar = figure.colorbar(image, ax=axes)
    colorbar.set_label("chunk reads")
    col = heatmap.axes[-1]
    axes.set_xlabel(f"{array.dims[col]} chunk index (chunks of {array.chunks[col]})")
    if len(heatmap.axes) == 2:
        row = heatmap.axes[0]
        axes.set_ylabel(f"{array.dims[row]} chunk index (chunks of {array.chunks[row]})")
    else:
        axes.set_yticks([])
    others = [array.dims[a] for a in range(len(array.shape)) if a not in heatmap.axes]
    summed = f", summed over {', '.join(others)}" if others else ""
    axes.set_title(f"{name}: chunk reads{summed}", fontsize=11)
    if counts.size <= _ANNOTATE_CELLS:
        top = counts.max() if counts.size else 0
        for (i, j), value in np.ndenumerate(counts):
            count = int(value)
            axes.text(
                j, i, str(count), ha="center", va="center", fontsize=8,
                color="black" if top and count > top * 0.6 else "white",
            )  # fmt: skip
    return figure_png(figure)


def workload_yaml(
    workload: InferredWorkload, *, name: str, command: str | None, filename: str = "workload.yaml"
) -> str:
    """The inferred workload as a spec file ``chunkwise advise FILE`` accepts.

    Parameters
    ----------
    workload
        The inferred workload.
    name
        The array it was inferred for (in the header comment).
    command
        The traced command, if any (in the header comment).
    filename
        The file's name (in the ``chunkwise advise`` line of the header comment).
    """
    spec = workload.to_spec()
    for entry in spec["workload"]:
        entry["weight"] = round(entry["weight"], 4)
    writes = f" and {workload.writes} writes" if workload.writes else ""
    origin = f"inferred by chunkwise trace from {workload.reads} reads{writes} of {name}"
    spec = {"description": origin + (f" ({command})" if command else ""), **spec}
    header = [
        f"# Workload of array {name!r}, inferred from a trace by chunkwise {__version__}.",
        "# Weights are the fraction of the observed reads (and modelled writes) of each kind.",
        "# Add the storage and ask for layouts:",
        f"#   chunkwise advise {filename} --storage s3",
    ]
    if workload.unmodelled_writes:
        header.append(
            f"# {workload.unmodelled_writes} partial writes fit no workload op and are left out."
        )
    body = yaml.safe_dump(spec, sort_keys=False, default_flow_style=None, width=100)
    return "\n".join(header) + "\n" + body


@dataclass(frozen=True)
class TraceFiles:
    """What :func:`write_trace_files` wrote.

    Parameters
    ----------
    json
        ``trace.json``.
    workload
        ``workload.yaml`` (the most-read array), or ``None`` when nothing was read.
    workloads
        Per array name, its spec file (``workload.yaml`` or ``workload-<array>.yaml``).
    heatmaps
        Per array name, its ``heatmap-<array>.png``.
    html
        ``report.html``.
    notes
        Why something is missing (no matplotlib, an array with no reads).
    """

    json: Path
    workload: Path | None
    workloads: dict[str, Path]
    heatmaps: dict[str, Path]
    html: Path
    notes: tuple[str, ...] = field(default=())

    def paths(self) -> list[Path]:
        """Every file written."""
        found = [self.json, *self.workloads.values(), *self.heatmaps.values(), self.html]
        return list(dict.fromkeys(found))


def _workloads(trace: Trace, span_fraction: float | None) -> dict[str, InferredWorkload]:
    found = {}
    for name in trace.arrays:
        try:
            found[name] = trace.workload(name, span_fraction=span_fraction)
        except SpecError:
            continue
    return found


def _busiest(workloads: dict[str, InferredWorkload]) -> str | None:
    if not workloads:
        return None
    return max(workloads, key=lambda name: workloads[name].reads)


def _totals_html(trace: Trace) -> str:
    rows = "".join(
        f"<tr><td>{escape(t.op)}</td><td class='num'>{t.requests}</td>"
        f"<td class='num'>{escape(format_bytes(t.nbytes))}</td>"
        f"<td class='num'>{escape(format_duration(t.duration_s))}</td></tr>"
        for t in trace.totals_by_op()
    )
    by_op = (
        '<table id="requests"><thead><tr><th>store op</th><th class="num">requests</th>'
        '<th class="num">bytes</th><th class="num">time in store</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )
    rows = "".join(
        f"<tr><td class='label'>{escape(t.name)}</td><td class='num'>{t.reads}</td>"
        f"<td class='num'>{t.writes}</td><td class='num'>{t.requests}</td>"
        f"<td class='num'>{escape(format_bytes(t.bytes_read))}</td>"
        f"<td class='num'>{escape(format_bytes(t.bytes_written))}</td></tr>"
        for t in trace.totals_by_array()
    )
    by_array = (
        '<table id="arrays"><thead><tr><th>array</th><th class="num">reads</th>'
        '<th class="num">writes</th><th class="num">requests</th><th class="num">read</th>'
        f'<th class="num">written</th></tr></thead><tbody>{rows}</tbody></table>'
    )
    return f'<div class="scroll">{by_op}</div><div class="scroll">{by_array}</div>'


def _array_html(
    name: str,
    array: TracedArray,
    workload: InferredWorkload | None,
    heatmap_png: bytes | None,
    heatmap_note: str | None,
    command: str | None,
) -> str:
    items = [
        ("store", array.store),
        ("shape", " x ".join(map(str, array.shape))),
        ("dims", ", ".join(array.dims)),
        ("dtype", array.dtype),
        ("chunks", " x ".join(map(str, array.chunks))),
        ("shards", " x ".join(map(str, array.shards)) if array.shards else "none"),
        ("zarr format", str(array.zarr_format)),
    ]
    parts = [
        '<dl class="context">'
        + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items)
        + "</dl>"
    ]
    if workload is not None:
        lines = "".join(f"<li>{escape(line)}</li>" for line in workload.describe())
        spec = workload_yaml(workload, name=name, command=command)
        parts.append(
            f'<h3>Inferred workload</h3><ul class="workload">{lines}</ul>'
            f'<pre class="spec">{escape(spec)}</pre>'
        )
    else:
        parts.append('<p class="caption">No reads of this array: no workload to infer.</p>')
    if heatmap_png is not None:
        parts.append(
            figure_html(
                heatmap_png,
                f"Chunk reads of {name}",
                "How often each chunk was read (from the selections mapped onto the chunk "
                "grid), for the two dims whose chunk indices varied most.",
            )
        )
    elif heatmap_note:
        parts.append(f'<p class="caption">{escape(heatmap_note)}</p>')
    return section_html(f"array-{array_slug(name)}", f"Array {name}", "".join(parts))


def trace_html(
    trace: Trace,
    *,
    command: str | None = None,
    exit_code: int | None = None,
    span_fraction: float | None = None,
    heatmaps: dict[str, bytes] | None = None,
    workloads: dict[str, InferredWorkload] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The trace as one self-contained HTML page.

    Parameters
    ----------
    trace
        The trace.
    command, exit_code
        The traced command and how it exited (shown in the header).
    span_fraction
        See :func:`chunkwise.plan.infer.infer_workload`; by default the trace's.
    heatmaps
        PNG per array name; drawn here when ``None`` (a note replaces them when
        matplotlib is missing).
    workloads
        Inferred workload per array name; inferred here when ``None``.
    notes
        Extra lines for the header.

    Returns
    -------
    str
        An HTML5 document: ``<table id="requests">`` (per store op) and
        ``<table id="arrays">``, then per array a ``<section id="array-<name>">`` with its
        layout, inferred workload and heatmap ``<img>``. All text is HTML-escaped.
    """
    events = trace.events
    if workloads is None:
        workloads = _workloads(trace, span_fraction)
    note = None
    if heatmaps is None:
        heatmaps, missing = _draw_heatmaps(trace)
        note = missing
    items = [
        ("command", command or "(library call)"),
        ("exit code", "" if exit_code is None else str(exit_code)),
        ("traced for", format_duration(trace.duration_s or 0.0)),
        ("store requests", str(len(events))),
        ("bytes read", format_bytes(trace.bytes_read)),
        ("bytes written", format_bytes(trace.bytes_written)),
        ("selections", str(len(trace.selections))),
    ]  # fmt: skip
    header = (
        "<header><h1>chunkwise trace</h1>"
        '<p class="subtitle">how a program really read its Zarr arrays</p></header>'
        '<dl class="context">'
        + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in items if v)
        + "</dl>"
        + "".join(f'<p class="caption">{escape(n)}</p>' for n in notes)
    )
    arrays = "".join(
        _array_html(name, array, workloads.get(name), heatmaps.get(name), note, command)
        for name, array in trace.arrays.items()
    )
    footer = (
        f"<footer><p>Generated by chunkwise {escape(__version__)} (chunkwise trace). Every "
        "request and selection is in trace.json next to this page.</p></footer>"
    )
    body = header + section_html("totals", "Requests and bytes", _totals_html(trace))
    return html_page("chunkwise trace", body + arrays + footer)


def _draw_heatmaps(trace: Trace) -> tuple[dict[str, bytes], str | None]:
    drawn: dict[str, bytes] = {}
    for name, array in trace.arrays.items():
        if not array.shape:
            continue
        heatmap = trace.heatmap(name)
        if heatmap.chunk_reads == 0:
            continue
        try:
            drawn[name] = plot_heatmap(name, array, heatmap)
        except MissingDependencyError as error:
            return {}, str(error)
    return drawn, None


def trace_document(
    trace: Trace,
    *,
    command: Sequence[str] | None,
    exit_code: int | None,
    workloads: dict[str, InferredWorkload],
) -> dict[str, Any]:
    """``trace.json``: the command, the trace (arrays, totals, events, selections) and the
    inferred workload per array."""
    return {
        "chunkwise": __version__,
        "command": list(command) if command is not None else None,
        "exit_code": exit_code,
        **trace.to_dict(),
        "workloads": {name: w.to_spec() for name, w in workloads.items()},
    }


def write_trace_files(
    trace: Trace,
    out_dir: Path,
    *,
    span_fraction: float | None = None,
    command: Sequence[str] | None = None,
    exit_code: int | None = None,
) -> TraceFiles:
    """Write ``trace.json``, ``workload.yaml``, ``heatmap-<array>.png`` and ``report.html``.

    Parameters
    ----------
    trace
        The trace.
    out_dir
        Directory to write into (created if missing).
    span_fraction
        See :func:`chunkwise.plan.infer.infer_workload`; by default the trace's.
    command, exit_code
        The traced command and its exit code, when a script was traced.

    Returns
    -------
    TraceFiles
        The paths written, and notes on what could not be (no matplotlib, no reads).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    shown = " ".join(command) if command else None
    notes: list[str] = []
    workloads = _workloads(trace, span_fraction)
    json_path = out_dir / "trace.json"
    document = trace_document(trace, command=command, exit_code=exit_code, workloads=workloads)
    json_path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    busiest = _busiest(workloads)
    written: dict[str, Path] = {}
    for name, workload in workloads.items():
        if name == busiest:
            path = out_dir / "workload.yaml"
        else:
            path = out_dir / f"workload-{array_slug(name)}.yaml"
        text = workload_yaml(workload, name=name, command=shown, filename=path.name)
        path.write_text(text, encoding="utf-8")
        written[name] = path
    if busiest is None:
        notes.append("no array reads were traced, so no workload was inferred")
    if len(workloads) > 1:
        notes.append(f"workload.yaml is for {busiest!r}, the most-read array")
    heatmaps, missing = _draw_heatmaps(trace)
    if missing:
        notes.append(missing)
    pngs = {}
    for name, png in heatmaps.items():
        path = out_dir / f"heatmap-{array_slug(name)}.png"
        path.write_bytes(png)
        pngs[name] = path
    html_path = out_dir / "report.html"
    html_path.write_text(
        trace_html(
            trace, command=shown, exit_code=exit_code, span_fraction=span_fraction,
            heatmaps=heatmaps, workloads=workloads, notes=notes,
        ),
        encoding="utf-8",
    )  # fmt: skip
    return TraceFiles(
        json=json_path,
        workload=written.get(busiest) if busiest is not None else None,
        workloads=written,
        heatmaps=pngs,
        html=html_path,
        notes=tuple(notes),
    )
