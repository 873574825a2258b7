"""``chunkwise trace -- python analysis.py ARGS``: learn the workload from a real run."""

from __future__ import annotations

from pathlib import Path

import click

from chunkwise import api
from chunkwise.cli.common import user_errors
from chunkwise.report.trace import write_trace_files
from chunkwise.units import format_bytes

__all__ = ["trace"]

DEFAULT_OUTPUT = "chunkwise-trace"


@click.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option(
    "--output",
    "-o",
    default=DEFAULT_OUTPUT,
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory for trace.json, workload.yaml, heatmap-<array>.png and report.html.",
)
@click.option(
    "--span-fraction",
    type=click.FloatRange(0, 1, min_open=True),
    default=api.DEFAULT_SPAN_FRACTION,
    show_default=True,
    help="A read covering this fraction of a dim spans it (counts as a plane, series or scan).",
)
@user_errors
def trace(command: tuple[str, ...], output: str, span_fraction: float) -> None:
    """Run a Python script with every zarr store it opens traced, then write what it read.

    \b
    chunkwise trace -- python analysis.py --year 2020
    chunkwise trace --output run1 -- python -m mypackage.analysis

    The script runs in this Python process as __main__ with its own arguments; its output
    and exit code are its own. Written into --output: trace.json (every store request
    with key, byte range, bytes and duration, and every array selection), workload.yaml
    (the inferred workload: give it to chunkwise advise), heatmap-<array>.png (chunk
    reads) and report.html.
    """
    run = api.trace_script(command, span_fraction=span_fraction)
    files = write_trace_files(run.trace, Path(output), command=command, exit_code=run.exit_code)
    recorded = run.trace
    ops = ", ".join(f"{t.op} {t.requests}" for t in recorded.totals_by_op())
    lines = [
        f"chunkwise trace: {' '.join(command)} exited with {run.exit_code}",
        f"  {len(recorded.events)} store requests ({ops or 'none'}), "
        f"{format_bytes(recorded.bytes_read)} read, {format_bytes(recorded.bytes_written)} written",
    ]
    for totals in recorded.totals_by_array():
        lines.append(
            f"  array {totals.name}: {totals.reads} reads, {totals.writes} writes, "
            f"{totals.requests} requests, {format_bytes(totals.bytes_read)} read"
        )
        if totals.name in files.workloads:
            for line in recorded.workload(totals.name).describe():
                lines.append(f"    {line}")
    lines += [f"  note: {note}" for note in files.notes]
    lines.append(f"wrote {', '.join(str(p) for p in files.paths())}")
    if files.workload is not None:
        lines.append(f"next: chunkwise advise {files.workload} --storage s3")
    click.echo("\n".join(lines), err=True)
    if run.exit_code:
        raise SystemExit(run.exit_code)
