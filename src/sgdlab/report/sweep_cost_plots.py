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


import numpy as np

from .chart_style import (HIGHLIGHT, as_float, field, finite,
                          log_axes, mark_band, not_measured, recommended)
from .plots import plt, save_figure


def _column(rows: list, key: str) -> np.ndarray:
    """``key`` of every row, positive finite values only (others NaN: left out)."""
    v = np.array([as_float(r.get(key)) for r in rows])
    v[~(v > 0)] = np.nan
    return v


def plot_decomposition(result, path) -> bool:
    """Time to target = steps x seconds per step, per batch size: measured against predicted,
    then the two factors."""
    rows = sorted(field(result, "decomposition", []), key=lambda r: r["batch_size"])
    if not rows:
        return not_measured(path, "Time to target = steps x seconds per step",
                            "needs the throughput probe (run without --no-probe)")
    if not any(finite(r.get("measured_seconds")) and r["measured_seconds"] > 0
               and finite(r.get("steps")) and r["steps"] > 0 for r in rows):
        return not_measured(path, "Time to target = steps x seconds per step",
                            "no batch size reached the target after at least one step")
    rec = recommended(result)
    b = np.array([r["batch_size"] for r in rows], float)
    fig, (a1, a2, a3) = plt.subplots(1, 3, figsize=(14, 4.4), sharex=True)
    for ax in (a1, a2, a3):
        mark_band(ax, rec, label=ax is a1)
    measured, predicted = _column(rows, "measured_seconds"), _column(rows, "predicted_seconds")
    a1.plot(b, measured, "o-", color="C0", label="measured (median over seeds)")
    a1.plot(b, predicted, "s--", color="C1", mfc="none",
            label="predicted: steps x s/step + calls x s/call (probe)")
    for r, x, y in zip(rows, b, measured):
        if finite(r.get("ratio")) and np.isfinite(y):
            a1.annotate(f"×{r['ratio']:.2g}", (x, y), textcoords="offset points", xytext=(0, 7),
                        ha="center", fontsize=7, color="C0")
    a1.margins(y=0.12)  # room for the ratios
    a1.set_ylabel("training seconds to target")
    a1.set_title("time to target: measured vs predicted", fontsize=10)
    a2.plot(b, _column(rows, "steps"), "o-", color="C2", label="steps to target (median)")
    a2.set_ylabel("steps to target")
    a2.set_title("factor 1: steps", fontsize=10)
    a3.plot(b, _column(rows, "probe_step_seconds"), "o-", color="C4", label="throughput probe")
    a3.plot(b, _column(rows, "run_step_seconds"), "s--", color="C5", mfc="none",
            label="during the runs")
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
    runs = [g for g in result.per_batch if finite(g.get("throughput"))]
    probe = field(result, "throughput", [])
    if not runs and not probe:
        return not_measured(path, "Throughput", "no run finished a step")
    rec = recommended(result)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    mark_band(ax, rec)
    mark_band(ax2, rec, label=False)
    if runs:
        ax.plot([g["batch_size"] for g in runs], [g["throughput"] for g in runs], "s--",
                color="C2", label="during the sweep's runs")
    if probe:
        b = np.array([p["batch_size"] for p in probe], float)
        ax.plot(b, _column(probe, "examples_per_second"), "o-", color="C0",
                label="probe (compiled chunk kernel)")
        ratio = _column(probe, "step_cost_ratio")
        ax2.plot(b, ratio, "o-", color="C0", label="measured")
        ax2.plot(b, b / b[0], ":", color="0.4", label="no vectorisation (cost ∝ B)")
        ax2.plot(b, np.ones_like(b), "--", color="0.6", label="free batching (cost flat)")
        ax2.legend(fontsize=8)
    else:
        ax2.text(0.5, 0.5, "not measured: the throughput probe did not run", ha="center",
                 transform=ax2.transAxes, color="0.35")
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
    trace = field(result, "noise_trace", [])
    noise = field(result, "noise", {}) or {}
    steps = np.array([as_float(r.get("step")) for r in trace])
    values = np.array([as_float(r.get("b_simple")) for r in trace])
    ok = np.isfinite(steps) & np.isfinite(values)
    if not ok.any():
        why = noise.get("reason") or ("the noise run recorded no estimate" if noise
                                      else "the noise scale was not run (--no-noise)")
        return not_measured(path, "Gradient noise scale during training", why)
    positive = ok & (values > 0)
    log = positive.sum() >= max(2, ok.sum() // 2)
    keep = positive if log else ok
    fig, ax = plt.subplots(figsize=(8, 4.4))
    ax.plot(steps[keep], values[keep], ".-", color="0.3", lw=1, ms=4,
            label="B_simple = tr(Σ)/|G|² (running estimate)")
    sc = (field(result, "recommendation", {}) or {}).get("scaling") or {}
    lines = [(noise.get("b_simple"), "C3", "-.", "B_simple (final estimate)"),
             (noise.get("b_noise"), "C4", "--", "B_noise (Hessian-weighted)"),
             (sc.get("b_crit") if sc.get("good") else None, "C1", ":",
              "B_crit (fit of steps to target)"),
             (recommended(result), HIGHLIGHT, "-", "recommended B")]
    for v, color, ls, name in lines:
        if finite(v) and (v > 0 or not log):
            ax.axhline(v, color=color, ls=ls, lw=3 if color == HIGHLIGHT else 1.5,
                       zorder=0 if color == HIGHLIGHT else 2, label=f"{name} = {v:.3g}")
    if log:
        log_axes(ax, y=10)
    ax.set_xlabel("step")
    ax.set_ylabel("batch size")
    where = f" (run at batch size {noise['batch_size']})" if noise.get("batch_size") else ""
    ax.set_title(f"Gradient noise scale during training{where}", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save_figure(fig, path)
    return True
