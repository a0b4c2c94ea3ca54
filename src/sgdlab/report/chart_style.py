"""Shared look of the sweep's charts: one colour and marker per batch size, the recommended
batch size in gold, plain log-axis labels, and the "not measured" placeholder.

Every chart module of the sweep report draws with these, so a batch size looks the same in
every chart and the recommendation is marked the same way everywhere.
"""

from __future__ import annotations

import math

from matplotlib.ticker import Formatter, FuncFormatter, NullFormatter

from .plots import plt, save_figure

MARKERS = "osD^vP*Xh<>p"
HIGHLIGHT = "gold"


def finite(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def as_float(v) -> float:
    """``v`` as a float; None, non-numbers and infinities as NaN (matplotlib leaves NaN out)."""
    return float(v) if finite(v) else math.nan


def field(result, name: str, default=None):
    """``result.<name>``, or ``default`` when it is absent or None."""
    v = getattr(result, name, None)
    return default if v is None else v


def recommended(result):
    """The recommended batch size of a sweep result (None without one)."""
    rec = field(result, "recommendation")
    return getattr(rec, "batch_size", None)


def batch_styles(sizes) -> dict:
    """Per batch size (ascending) a colour, line style and marker that can be told apart:
    the ten qualitative colours of ``tab10``, then the same colours dashed with other
    markers (12 sizes stay distinct)."""
    cmap = plt.get_cmap("tab10")
    return {b: {"color": cmap(i % 10), "ls": "-" if i < 10 else "--",
                "marker": MARKERS[i % len(MARKERS)]}
            for i, b in enumerate(sorted(set(sizes)))}


def batch_label(b, rec, extra: str = "") -> str:
    return f"B={b}{extra}" + (" (recommended)" if b == rec else "")


def plain(v, _pos=None) -> str:
    return f"{v:g}"


class MinorLabels(Formatter):
    """Labels some minor ticks of a base-10 log axis (``0.02, 0.03, 0.05``) when it spans
    less than a decade and a half, so that a narrow axis is never left without numbers."""

    def __call__(self, x, pos=None):
        lo, hi = sorted(self.axis.get_view_interval())
        if x <= 0 or lo <= 0 or hi / lo > 30:
            return ""
        mantissa = round(x / 10 ** math.floor(math.log10(x) + 1e-9))
        return plain(x) if mantissa in ((2, 5) if hi / lo > 10 else (2, 3, 4, 5, 6, 8)) \
            else ""


def log_axes(ax, x: int | None = None, y: int | None = None) -> None:
    """Log axes (``x``/``y``: the base) labelled ``4, 16, 64`` / ``0.01, 0.1``, not
    ``2^2, 10^-2`` (plain labels read faster and render faster than mathtext)."""
    for base, scale, axis in ((x, ax.set_xscale, ax.xaxis), (y, ax.set_yscale, ax.yaxis)):
        if base:
            scale("log", base=base)
            axis.set_major_formatter(FuncFormatter(plain))
            axis.set_minor_formatter(MinorLabels() if base == 10 else NullFormatter())


def metric_label(metric: str) -> str:
    return "validation R^2" if metric == "val_r2" else "validation accuracy"


def mark_band(ax, b, label: bool = True) -> None:
    """A band around batch size ``b`` on a log batch-size axis."""
    if b:
        ax.axvspan(b / 2 ** 0.3, b * 2 ** 0.3, color=HIGHLIGHT, alpha=0.35, lw=0, zorder=0,
                   label=f"recommended B = {b}" if label else None)


def not_measured(path, title: str, why: str) -> bool:
    """A small PNG saying the chart's data was not measured, and why; returns False."""
    fig, ax = plt.subplots(figsize=(7, 1.8))
    ax.axis("off")
    ax.text(0.5, 0.68, title, ha="center", va="center", fontsize=12, weight="bold",
            transform=ax.transAxes)
    ax.text(0.5, 0.28, f"not measured: {why}", ha="center", va="center", fontsize=10,
            color="0.35", transform=ax.transAxes, wrap=True)
    save_figure(fig, path)
    return False
