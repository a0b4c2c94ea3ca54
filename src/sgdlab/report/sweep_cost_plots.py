"""The sweep's cost charts (PNG): what a step costs, and the noise scale over training.

* the decomposition time to target = steps x seconds per step (+ calls x seconds per call):
  measured against predicted, and the two factors;
* throughput (examples per second) against batch size, and the cost of one step relative to
  the smallest batch;
* the noise scale ``B_simple`` during the noise run, against step, with ``B_noise`` and the
  fitted ``B_crit``.

Figures only: every number comes from the lab. Each returns ``False`` (and writes a "not
measured" PNG) when its data is missing.
"""

from __future__ import annotations

import math

import numpy as np

from .chart_style import (HIGHLIGHT, as_float, finite, log_axes, mark_band, not_measured,
                          recommended)
from .plots import plt, save_figure


def _column(rows: list, get) -> np.ndarray:
    """``get(row)`` of every row, positive finite values only (others NaN: left out)."""
    v = np.array([as_float(get(r)) for r in rows])
    v[~(v > 0)] = np.nan
    return v


def plot_decomposition(result, path) -> bool:
    """Time to target = steps x seconds per step, per batch size: measured (replayed) against
    predicted, then the two factors."""
    rows = sorted(result.batches, key=lambda r: r.batch_size)
    if not result.probe:
        return not_measured(path, "Time to target = steps x seconds per step",
                            "needs the throughput probe (run without --no-probe)")
    if not any(finite(r.time_median) and r.time_median > 0 and finite(r.steps_median)
               and r.steps_median > 0 for r in rows):
        return not_measured(path, "Time to target = steps x seconds per step",
                            "no batch size reached the target after at least one step")
    rec = recommended(result)
    b = np.array([r.batch_size for r in rows], float)
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(15, 4.6), sharex=True,
                                     layout="constrained")
    for ax in (a1, a2, a3):
        mark_band(ax, rec, label=ax is a1)
    measured = _column(rows, lambda r: r.time_median)
    predicted = _column(rows, lambda r: r.predicted_seconds)
    a1.plot(b, measured, "o-", color="C0", label="measured (replays, median over seeds)")
    a1.plot(b, predicted, "s--", color="C1", mfc="none",
            label="predicted: steps x s/step + calls x s/call (probe)")
    for r, x, y in zip(rows, b, measured):
        if finite(r.ratio) and np.isfinite(y):
            a1.annotate(f"×{r.ratio:.2g}", (x, y), textcoords="offset points", xytext=(0, 7),
                        ha="center", fontsize=7, color="C0")
    a1.margins(y=0.12)  # room for the ratios
    a1.set_ylabel("training seconds to target")
    a1.set_title("time to target: measured vs predicted", fontsize=10)
    a2.plot(b, _column(rows, lambda r: r.steps_median), "o-", color="C2",
            label="steps to target (median)")
    a2.set_ylabel("steps to target")
    a2.set_title("factor 1: steps", fontsize=10)
    a3.plot(b, _column(rows, lambda r: r.step_seconds), "o-", color="C4",
            label="throughput probe")
    a3.plot(b, _column(rows, lambda r: r.time_median / r.steps_median
                       if r.steps_median else math.nan), "s--", color="C5", mfc="none",
            label="replays (time / steps)")
    a3.set_ylabel("seconds per step")
    a3.set_title("factor 2: seconds per step", fontsize=10)
    for ax in (a1, a2, a3):
        log_axes(ax, x=2, y=10)
        ax.set_xlabel("batch size B")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.suptitle("Time to target = steps x seconds per step", fontsize=11)
    save_figure(fig, path)
    return True


def plot_throughput(result, path) -> bool:
    probe = list(result.probe)
    if not probe:
        return not_measured(path, "Throughput", "the throughput probe did not run")
    rec = recommended(result)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    mark_band(ax, rec)
    mark_band(ax2, rec, label=False)
    b = np.array([p.batch_size for p in probe], float)
    ax.plot(b, _column(probe, lambda p: p.examples_per_second), "o-", color="C0",
            label="probe (compiled chunk kernel)")
    ratio = _column(probe, lambda p: p.step_cost_ratio)
    ax2.plot(b, ratio, "o-", color="C0", label="measured")
    ax2.plot(b, b / b[0], ":", color="0.4", label="no vectorisation (cost ∝ B)")
    ax2.plot(b, np.ones_like(b), "--", color="0.6", label="free batching (cost flat)")
    ax2.legend(fontsize=8)
    for a in (ax, ax2):
        log_axes(a, x=2, y=10)
        a.set_xlabel("batch size B")
        a.grid(alpha=0.3, which="both")
    ax.set_ylabel("examples per training second")
    ax.set_title("Throughput")
    ax.legend(fontsize=8)
    ax2.set_ylabel("time of one step / time at the smallest B")
    ax2.set_title("Cost of one step")
    save_figure(fig, path)
    return True


def plot_noise_trace(result, path) -> bool:
    """``B_simple`` during the noise run against step, with the final estimates as lines."""
    noise = result.noise
    trace = noise.trace if noise is not None else ()
    steps = np.array([as_float(s) for s, _ in trace])
    values = np.array([as_float(v) for _, v in trace])
    ok = np.isfinite(steps) & np.isfinite(values)
    if not ok.any():
        why = (noise.reason or "the noise run recorded no estimate") if noise is not None \
            else "the noise scale was not run (--no-noise)"
        return not_measured(path, "Gradient noise scale during training", why)
    positive = ok & (values > 0)
    log = positive.sum() >= max(2, ok.sum() // 2)
    keep = positive if log else ok
    fig, ax = plt.subplots(figsize=(8, 4.4), layout="constrained")
    ax.plot(steps[keep], values[keep], ".-", color="0.3", lw=1, ms=4,
            label="B_simple = tr(Σ)/|G|² (running two-batch estimate)")
    sc = result.recommendation.scaling if result.recommendation is not None else None
    lines = [(noise.b_simple, "C3", "-.", "B_simple (two-batch estimate near the target)"),
             (noise.b_noise, "C4", "--", "B_noise (Hessian-weighted)"),
             (sc.b_crit if sc is not None and sc.good else None, "C1", ":",
              "B_crit (fit of steps to target)"),
             (recommended(result), HIGHLIGHT, "-", "recommended B")]
    drawn = list(values[keep])
    for v, color, ls, name in lines:
        if finite(v) and (v > 0 or not log):
            drawn.append(float(v))
            ax.axhline(v, color=color, ls=ls, lw=3 if color == HIGHLIGHT else 1.5,
                       zorder=0 if color == HIGHLIGHT else 2, label=f"{name} = {v:.3g}")
    if log:
        log_axes(ax, y=10)
        lo, hi = min(drawn), max(drawn)
        if hi / lo < 10:  # less than a decade: pad it to one so the axis has labelled ticks
            mid = math.sqrt(lo * hi)
            ax.set_ylim(mid / 10 ** 0.5, mid * 10 ** 0.5)
    ax.set_xlabel("step")
    ax.set_ylabel("batch size")
    ax.set_title(f"Gradient noise scale during training (run at batch size "
                 f"{noise.batch_size})", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return True
