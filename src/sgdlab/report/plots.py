"""Training curves as PNG files (matplotlib, headless Agg backend).

Imported lazily: training never needs matplotlib.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..engine.rundir import write_bytes_atomic, write_error  # noqa: E402


def save_figure(fig, path: str | Path, dpi: int = 110) -> None:
    """Render to PNG in memory, then write atomically (no half-written image on a kill).

    matplotlib never opens ``path``: the image goes through :func:`write_bytes_atomic` (a
    temporary file created exclusively, renamed; a link at ``path`` refused). Any ``OSError``
    is one :class:`~sgdlab.errors.RunDirError` naming ``path``.
    """
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    except OSError as e:
        raise write_error(e, path, "draw") from None
    finally:
        plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())


def plot_curves(history, x: str, path, title: str = "") -> None:
    """Loss (train and validation) and the validation metric against column ``x``."""
    xs = history.column(x)
    metric = next((m for m in ("val_accuracy", "val_r2") if m in history.columns), None)
    fig, axes = plt.subplots(1, 2 if metric else 1, figsize=(10 if metric else 5.5, 3.8))
    ax = axes[0] if metric else axes
    ax.plot(xs[1:], history.column("train_loss")[1:], label="train (mini-batch mean)")
    if "val_loss" in history.columns:
        ax.plot(xs, history.column("val_loss"), label="validation (whole set)")
    ax.set_xlabel(_label(x))
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    if metric:
        ax2 = axes[1]
        ax2.plot(xs, history.column(metric), color="C2")
        ax2.set_xlabel(_label(x))
        ax2.set_ylabel(metric.replace("_", " "))
        ax2.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    save_figure(fig, path)


def _label(col: str) -> str:
    return {"train_seconds": "training time (s, evaluation and compilation excluded)",
            "epoch": "epoch", "step": "step", "examples": "examples seen"}.get(col, col)


def plot_metric_vs_time(histories: dict, labels: dict, metric: str, path, title: str = "",
                        target: float | None = None) -> None:
    """One line per method: ``metric`` (e.g. validation accuracy) against training seconds."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for method, history in histories.items():
        ax.plot(history.column("train_seconds"), history.column(metric), marker=".",
                markersize=3, label=labels.get(method, method))
    if target is not None:
        ax.axhline(target, color="grey", linestyle=":", linewidth=1, label=f"target {target:g}")
    ax.set_xlabel(_label("train_seconds"))
    ax.set_ylabel(metric.replace("_", " "))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    save_figure(fig, path)


def plot_loss_traces(traces: dict, labels: dict, path, title: str = "") -> None:
    """Per-step mini-batch loss against step, one line per method (log scale).

    Lines are drawn in the order given, each a little thicker, so a smooth curve given last
    stays visible on top of a noisy one.
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for i, (method, losses) in enumerate(traces.items()):
        ax.plot(range(1, len(losses) + 1), losses, linewidth=0.8 + 0.4 * i,
                label=labels.get(method, method))
    ax.set_xlabel("step")
    ax.set_ylabel("mini-batch loss")
    ax.grid(alpha=0.3)
    if traces:
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no gradient method was traced", ha="center", transform=ax.transAxes)
    if title:
        ax.set_title(title)
    save_figure(fig, path)
