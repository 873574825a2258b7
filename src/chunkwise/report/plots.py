"""Figures of a benchmark, as PNG bytes.

matplotlib is optional (``pip install 'chunkwise[plot]'``) and imported only when a
figure is drawn. Figures are drawn on their own Agg canvas, without :mod:`matplotlib.pyplot`:
nothing is registered globally, so nothing is left open and the caller's backend
(a notebook's, say) is never switched.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

from chunkwise.errors import MissingDependencyError
from chunkwise.measure.results import BenchReport, LayoutResult
from chunkwise.report.bench import GOOD_PREDICTION, find_op, op_names, recommended_result
from chunkwise.units import format_count, format_duration

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "figure_png",
    "new_figure",
    "plot_objects_vs_read",
    "plot_op_times",
    "plot_predicted_vs_measured",
]

FIGSIZE_IN = (8.0, 4.5)
DPI = 100
# Use a log axis when the largest value is more than this many times the smallest.
WIDE_RANGE = 30.0
_MARKERS = {
    "plane": "o",
    "series": "D",
    "region": "s",
    "scan": "^",
    "point": "v",
    "append": "P",
    "write": "X",
}


def new_figure() -> Figure:
    """A new figure on its own Agg canvas; a missing matplotlib raises a clear error."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependencyError(
            "Plots need matplotlib, which is not installed; "
            "install it with: pip install 'chunkwise[plot]'"
        ) from None
    figure = Figure(figsize=FIGSIZE_IN, dpi=DPI, layout="constrained", facecolor="white")
    FigureCanvasAgg(figure)
    return figure


def figure_png(figure: Figure) -> bytes:
    """The figure as PNG bytes; the figure is cleared afterwards."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    figure.clear()
    return buffer.getvalue()


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def _wide(values: list[float]) -> bool:
    positive = [v for v in values if _positive(v)]
    return bool(positive) and max(positive) > WIDE_RANGE * min(positive)


def _colour(index: int) -> tuple[float, float, float, float]:
    from matplotlib import colormaps

    rgba = colormaps["tab10"](index % 10)
    return (float(rgba[0]), float(rgba[1]), float(rgba[2]), float(rgba[3]))


def _layout_label(report: BenchReport, result: LayoutResult) -> str:
    return f"{result.name} (recommended)" if result is recommended_result(report) else result.name


def _duration_tick(value: float, minor: bool) -> str:
    """A tick label in readable units; on log axes, minor ticks only at 2x and 5x decades."""
    if value <= 0:
        return "0"
    if minor:
        mantissa = value / 10 ** math.floor(math.log10(value) + 1e-9)
        if not any(math.isclose(mantissa, m, rel_tol=1e-6) for m in (2.0, 5.0)):
            return ""
    return format_duration(value)


def _seconds_axis(ax: Axes, axis: str, log: bool) -> None:
    """Label an axis in readable durations; log scale when asked."""
    from matplotlib.ticker import FuncFormatter

    target = ax.yaxis if axis == "y" else ax.xaxis
    if log:
        (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
        target.set_minor_formatter(FuncFormatter(lambda v, _: _duration_tick(v, True)))
    target.set_major_formatter(FuncFormatter(lambda v, _: _duration_tick(v, False)))


def _nothing(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} to plot", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _op_tick(report: BenchReport, name: str) -> str:
    weights = [op.weight for r in report.results if (op := find_op(r, name)) is not None]
    weight = weights[0] if weights else 0.0
    return f"{name}\n{weight:.0%}" if weight > 0 else f"{name}\n(study)"


def _bars(ax: Axes, report: BenchReport, names: list[str]) -> list[float]:
    """One bar per (operation, layout), whiskers over the spread; returns the heights."""
    width = 0.8 / len(report.results)
    heights: list[float] = []
    for i, result in enumerate(report.results):
        xs, ys, below, above = [], [], [], []
        for j, name in enumerate(names):
            op = find_op(result, name)
            if op is None or not _positive(op.measured_s):
                continue
            lo, hi = op.spread_s
            xs.append(j - 0.4 + width * (i + 0.5))
            ys.append(op.measured_s)
            below.append(max(op.measured_s - lo, 0.0))
            above.append(max(hi - op.measured_s, 0.0))
        recommended = result is recommended_result(report)
        ax.bar(
            xs,
            ys,
            width,
            yerr=[below, above],
            capsize=2,
            color=_colour(i),
            edgecolor="black" if recommended else "none",
            linewidth=1.2 if recommended else 0,
            error_kw={"elinewidth": 0.8, "ecolor": "0.25"},
            label=_layout_label(report, result),
        )
        heights += ys
    return heights


def plot_op_times(report: BenchReport) -> bytes:
    """Grouped bars: median time of each operation on each layout.

    Whiskers span the fastest to the slowest repeat; the time axis is logarithmic when
    the times span more than :data:`WIDE_RANGE` x. The recommended layout's bars are
    outlined.

    Returns
    -------
    bytes
        A PNG image, 800 x 450 pixels.
    """
    figure = new_figure()
    ax = figure.add_subplot()
    names = op_names(report)
    if not names:
        _nothing(ax, "operations")
        return figure_png(figure)
    heights = _bars(ax, report, names)
    ax.set_xticks(range(len(names)), labels=[_op_tick(report, n) for n in names], fontsize=9)
    _seconds_axis(ax, "y", _wide(heights))
    ax.set_ylabel("time per operation")
    ax.set_title("Time per operation (median; whiskers: fastest – slowest repeat)", fontsize=11)
    ax.grid(axis="y", color="0.9")
    ax.set_axisbelow(True)
    figure.legend(loc="outside right upper", fontsize="small", frameon=False)
    return figure_png(figure)


def plot_objects_vs_read(report: BenchReport) -> bytes:
    """Scatter: objects in the store (log scale) vs measured workload time, one labelled
    point per layout; the recommended layout is a star.

    Returns
    -------
    bytes
        A PNG image, 800 x 450 pixels.
    """
    from matplotlib.ticker import FuncFormatter, NullFormatter

    figure = new_figure()
    ax = figure.add_subplot()
    points = [(i, r) for i, r in enumerate(report.results) if _positive(r.measured_weighted_s)]
    if not points:
        _nothing(ax, "measured workload times")
        return figure_png(figure)
    for i, result in points:
        star = result is recommended_result(report)
        x, y = max(result.objects, 1), result.measured_weighted_s
        ax.scatter(
            [x], [y], s=160 if star else 60, marker="*" if star else "o", color=_colour(i),
            edgecolors="black", linewidths=0.6, zorder=3,
        )  # fmt: skip
        label = _layout_label(report, result)
        ax.annotate(label, (x, y), xytext=(7, 5), textcoords="offset points", fontsize=9)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: format_count(v)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    _seconds_axis(ax, "y", _wide([r.measured_weighted_s for _, r in points]))
    ax.margins(x=0.25, y=0.2)
    ax.set_xlabel("objects in the store (log scale)")
    ax.set_ylabel("measured workload time\n(weighted, per operation)")
    ax.set_title("Fewer objects vs faster reads", fontsize=11)
    ax.grid(color="0.92")
    ax.set_axisbelow(True)
    return figure_png(figure)


def _accuracy_points(ax: Axes, report: BenchReport) -> tuple[list[float], set[str]]:
    """Scatter every (layout, operation); returns all plotted values and the kinds seen."""
    values: list[float] = []
    kinds: set[str] = set()
    for i, result in enumerate(report.results):
        for op in result.ops:
            if not (_positive(op.predicted_s) and _positive(op.measured_s)):
                continue
            ax.scatter(
                [op.predicted_s], [op.measured_s], s=42, marker=_MARKERS.get(op.kind, "o"),
                color=_colour(i), edgecolors="white", linewidths=0.5, zorder=3,
            )  # fmt: skip
            values += [op.predicted_s, op.measured_s]
            kinds.add(op.kind)
    return values, kinds


def _accuracy_legend(figure: Figure, report: BenchReport, kinds: set[str]) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Line2D | Patch] = [
        Line2D([], [], ls="", marker="o", color=_colour(i), label=_layout_label(report, r))
        for i, r in enumerate(report.results)
    ]
    handles += [
        Line2D([], [], ls="", marker=_MARKERS.get(k, "o"), color="0.35", label=k)
        for k in sorted(kinds)
    ]
    handles += [
        Line2D([], [], ls="--", color="0.3", lw=1, label="measured = predicted"),
        Patch(color="0.87", label=f"within {GOOD_PREDICTION:g}x"),
    ]
    figure.legend(handles=handles, loc="outside right upper", fontsize="small", frameon=False)


def plot_predicted_vs_measured(report: BenchReport) -> bytes:
    """Log-log scatter of measured against predicted seconds for every (layout, operation),
    with the line measured = predicted and a shaded band within :data:`GOOD_PREDICTION` x.

    Colours are layouts, markers are operation kinds.

    Returns
    -------
    bytes
        A PNG image, 800 x 450 pixels.
    """
    import numpy as np

    figure = new_figure()
    ax = figure.add_subplot()
    values, kinds = _accuracy_points(ax, report)
    if not values:
        _nothing(ax, "predicted and measured times")
        return figure_png(figure)
    lo, hi = min(values) / 2, max(values) * 2
    line = np.geomspace(lo, hi, 50)
    ax.fill_between(line, line / GOOD_PREDICTION, line * GOOD_PREDICTION, color="0.87", zorder=1)
    ax.plot(line, line, ls="--", color="0.3", lw=1, zorder=2)
    _seconds_axis(ax, "x", True)
    _seconds_axis(ax, "y", True)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("predicted")
    ax.set_ylabel("measured (median)")
    ax.set_title("Predicted vs measured, per operation", fontsize=11)
    ax.grid(color="0.92")
    ax.set_axisbelow(True)
    _accuracy_legend(figure, report, kinds)
    return figure_png(figure)
