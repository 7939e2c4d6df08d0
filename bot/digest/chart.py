"""The trend chart of a digest: pass rate and estimated cost over the last runs, as PNG bytes.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no global figure state), so it is safe to call
from any thread and needs no display.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from bot.digest.data import TREND_RUNS, TrendPoint

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.5, 100
PASS_COLOR, COST_COLOR = "#2e7d32", "#1565c0"


def trend_png(points: Sequence[TrendPoint], *, title: str | None = None) -> bytes:
    """A PNG of pass rate (top) and cost (bottom) for the last TREND_RUNS of `points` (oldest first)."""
    points = list(points)[-TREND_RUNS:]
    figure = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    rate_axes, cost_axes = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    xs = list(range(len(points)))
    rates = [p.pass_rate * 100 if p.pass_rate is not None else float("nan") for p in points]
    rate_axes.plot(xs, rates, marker="o", color=PASS_COLOR, linewidth=2)
    rate_axes.set_ylim(-5, 105)
    rate_axes.yaxis.set_major_formatter(PercentFormatter())
    rate_axes.set_ylabel("pass rate")
    rate_axes.grid(alpha=0.3)
    if points:
        last = points[-1]
        if last.pass_rate is not None:
            rate_axes.annotate(f"{last.pass_rate:.0%}", (xs[-1], rates[-1]), textcoords="offset points",
                               xytext=(0, 8), ha="center", color=PASS_COLOR)
    cost_axes.bar(xs, [p.cost_usd for p in points], color=COST_COLOR, alpha=0.8)
    cost_axes.set_ylabel("cost (USD)")
    cost_axes.yaxis.set_major_formatter("${x:,.2f}")
    cost_axes.grid(axis="y", alpha=0.3)
    cost_axes.xaxis.set_major_locator(MaxNLocator(nbins=10, integer=True))
    labels = {i: f"#{p.run_id}\n{p.when:%m-%d}" for i, p in enumerate(points)}
    cost_axes.xaxis.set_major_formatter(lambda x, _pos: labels.get(int(x), "") if float(x).is_integer() else "")
    cost_axes.set_xlim(-0.6, max(len(points), 1) - 0.4)
    figure.suptitle(title or f"evalbot: last {len(points)} run{'s' if len(points) != 1 else ''}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
