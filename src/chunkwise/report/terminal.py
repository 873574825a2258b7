"""Rich terminal rendering of advice."""

from __future__ import annotations

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from chunkwise.plan.advice import Advice, Recommendation
from chunkwise.report.snippets import xarray_snippet, zarr_snippet
from chunkwise.units import format_bytes, format_count, format_duration, format_rate

__all__ = ["print_advice", "recommendations_table"]


def _shape(values: tuple[int, ...] | None) -> str:
    return "—" if values is None else "x".join(map(str, values))


def recommendations_table(advice: Advice) -> Table:
    """One row per recommendation (and the rule-of-thumb reference), one column per op."""
    ops = advice.workload.ops
    table = Table(
        title="Recommended layouts (predicted times per operation)",
        title_justify="left",
        header_style="bold",
    )
    table.add_column("#", justify="right")
    table.add_column("layout", no_wrap=True)
    table.add_column("chunk", justify="right")
    for op in ops:
        table.add_column(f"{op.name}\n{op.weight:.0%}", justify="right")
    table.add_column("weighted", justify="right", style="bold")
    table.add_column("objects", justify="right")
    table.add_column("stored", justify="right")

    def row(rec: Recommendation, label: str, style: str | None = None) -> None:
        layout = rec.layout
        geometry = f"v{layout.zarr_format} {_shape(layout.chunks)}"
        if layout.shards is not None:
            geometry += f"\n in {_shape(layout.shards)}"
        cells = [
            label,
            f"{geometry}\n{layout.codec.short}",
            format_bytes(rec.chunk_bytes),
            *(format_duration(rec.cost.seconds(op.name)) for op in ops),
            format_duration(rec.cost.weighted_s),
            format_count(rec.cost.objects),
            format_bytes(rec.cost.stored_bytes),
        ]
        table.add_row(*cells, style=style)

    for rec in advice.recommendations:
        row(rec, str(rec.rank), "green" if rec.rank == 1 else None)
    row(advice.reference, "ref", "dim")
    for i, cand in enumerate(advice.candidates, start=1):
        row(cand, f"c{i}", "cyan")
    return table


def print_advice(
    advice: Advice, console: Console, *, snippets: bool = True, variable: str = "data"
) -> None:
    """Print the table, the rationale, the trade-off front and ready-to-paste code."""
    array, storage = advice.array, advice.storage
    header = Text.assemble(
        ("chunkwise advise", "bold"),
        f"  {array.dtype} {_shape(array.shape)} ({', '.join(array.dims)}), {format_bytes(array.nbytes)} raw; ",
        f"storage {storage.name} ({format_duration(storage.latency_s)} latency, "
        f"{format_rate(storage.bandwidth_Bps)} in all, {format_rate(storage.stream_bandwidth_Bps)} "
        f"per request), read by {storage.reader.name}; ",
        f"{format_count(advice.evaluated)} layouts priced.",
    )
    console.print(header)
    console.print(recommendations_table(advice))
    console.print(
        "[dim]ref = rule of thumb: near-cubic chunks of the size folklore suggests for this storage.[/dim]"
    )
    if advice.candidates:
        console.print("[dim]c1, c2, ... = the candidates named in the spec.[/dim]")
    best = advice.best
    console.print(
        Panel(
            Group(*(Text("• " + line) for line in best.rationale)),
            title=f"Why #1: {best.layout.label()}",
            title_align="left",
        )
    )
    if len(advice.pareto) > 1:
        front = Table(
            title="Trade-off front (time vs objects vs stored bytes)",
            title_justify="left",
            header_style="bold",
        )
        for name in ("layout", "weighted", "objects", "stored"):
            front.add_column(name, justify="left" if name == "layout" else "right")
        for cand in advice.pareto:
            front.add_row(
                cand.layout.label(),
                format_duration(cand.weighted_s),
                format_count(cand.objects),
                format_bytes(cand.stored_bytes),
            )
        console.print(front)
    if snippets:
        for title, code in (
            ("zarr-python", zarr_snippet(array, best.layout, store=f"{variable}.zarr")),
            ("xarray", xarray_snippet(array, best.layout, variable=variable)),
        ):
            # plain code, neither boxed nor cut at the terminal's width: it copies as it is
            console.print(f"\n# {title}", style="bold", highlight=False, markup=False)
            console.print(code, soft_wrap=True, highlight=False, markup=False)
