"""Training curves as PNG files (matplotlib, headless Agg backend).

Imported lazily: training never needs matplotlib.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..engine.rundir import write_bytes_atomic  # noqa: E402


def save_figure(fig, path: str | Path, dpi: int = 110) -> None:
    """Render to PNG in memory, then write atomically (no half-written image on a kill)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
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
