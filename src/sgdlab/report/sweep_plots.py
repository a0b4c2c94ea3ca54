"""The sweep's four charts (PNG, matplotlib Agg). Figures only: every number comes from the lab.

* validation metric against training seconds, one line per batch size (the source text's chart:
  wall-clock time, not epochs, decides which batch size improves fastest);
* the same against epochs, for contrast (small batches look best per epoch);
* steps to target against batch size on log-log axes, with the perfect-scaling line
  ``S(B) = S(B_0) B_0 / B``, the fit ``S_min (1 + B_crit / B)`` and the noise scale marked;
* throughput (examples per second) against batch size, and the cost of one step relative to
  the smallest batch.
"""

from __future__ import annotations

import math

import numpy as np

from .plots import plt, save_figure


def _colors(sizes):
    cmap = plt.get_cmap("viridis")
    lo, hi = math.log2(min(sizes)), math.log2(max(sizes))
    return {b: cmap(0.9 * (math.log2(b) - lo) / (hi - lo) if hi > lo else 0.0) for b in sizes}


def _metric_label(metric: str) -> str:
    return "validation R^2" if metric == "val_r2" else "validation accuracy"


def plot_metric_curves(result, x: str, path) -> None:
    """Every run of each batch size's chosen learning rate; ``x`` is a history column."""
    chosen = {g["batch_size"]: g["lr"] for g in result.per_batch}
    colors = _colors(list(chosen))
    fig, ax = plt.subplots(figsize=(8, 4.8))
    labelled = set()
    for rec in result.records:
        b = rec["batch_size"]
        if chosen.get(b) != rec["lr"]:
            continue
        xs = np.array([float(r[x]) for r in rec["history"]])
        ys = np.array([float(r.get(result.metric, math.nan)) for r in rec["history"]])
        keep = xs > 0  # log axis: the row before the first step has x = 0
        ax.plot(xs[keep], ys[keep], color=colors[b], lw=1.2, alpha=0.85,
                label=f"B={b}" if b not in labelled else None)
        labelled.add(b)
    if math.isfinite(result.target):
        ax.axhline(result.target, color="k", ls="--", lw=1, label=f"target {result.target:g}")
    ax.set_xscale("log")
    ax.set_xlabel("training seconds (evaluation and compilation excluded)"
                  if x == "train_seconds" else "epochs")
    ax.set_ylabel(_metric_label(result.metric))
    finals = [g["final_median"] for g in result.per_batch if math.isfinite(g["final_median"])]
    if finals and math.isfinite(result.target):
        lo = min(result.target - 0.15 * max(1e-3, 1 - result.target), min(finals))
        ax.set_ylim(max(lo - 0.1, -1.0 if result.metric == "val_r2" else 0.0), 1.0)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    ax.set_title(f"{_metric_label(result.metric)} against "
                 f"{'training time' if x == 'train_seconds' else 'epochs'}, by batch size")
    save_figure(fig, path)


def plot_steps_to_target(result, path) -> None:
    rows = [g for g in result.per_batch if math.isfinite(g.get("steps_best", math.inf))]
    fig, ax = plt.subplots(figsize=(7, 4.8))
    if rows:
        b = np.array([g["batch_size"] for g in rows], float)
        s = np.array([g["steps_best"] for g in rows], float)
        ax.plot(b, s, "o-", color="C0", label="measured (median over seeds, best lr)")
        ax.plot(b, s[0] * b[0] / b, ":", color="0.4", label="perfect scaling: steps ∝ 1/B")
        sc = result.recommendation.get("scaling", {})
        smin, bc = sc.get("s_min", math.nan), sc.get("b_crit", math.nan)
        if math.isfinite(smin) and math.isfinite(bc) and bc > 0:
            grid = np.geomspace(b.min(), b.max(), 100)
            ax.plot(grid, smin * (1 + bc / grid), "-", color="C1", lw=1,
                    label=f"fit S_min(1 + B_crit/B), B_crit = {bc:.3g}")
            ax.axvline(bc, color="C1", ls="--", lw=1)
        ax.set_ylim(max(s.min() / 3, 0.1), s.max() * 3)
    noise = result.noise
    if noise and math.isfinite(noise.get("b_simple", math.nan)):
        ax.axvline(noise["b_simple"], color="C3", ls="-.", lw=1.2,
                   label=f"noise scale B_simple = {noise['b_simple']:.3g}")
        if math.isfinite(noise["low"]) and math.isfinite(noise["high"]) and noise["low"] > 0:
            ax.axvspan(noise["low"], noise["high"], color="C3", alpha=0.12)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size B")
    ax.set_ylabel(f"steps to {_metric_label(result.metric)} {result.target:g}")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title("Steps to target against batch size")
    save_figure(fig, path)


def plot_throughput(result, path) -> None:
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    runs = [g for g in result.per_batch if math.isfinite(g["throughput"])]
    if runs:
        ax.plot([g["batch_size"] for g in runs], [g["throughput"] for g in runs], "s--",
                color="C2", label="during the sweep's runs")
    probe = result.throughput or []
    if probe:
        b = np.array([p["batch_size"] for p in probe], float)
        ax.plot(b, [p["examples_per_second"] for p in probe], "o-", color="C0",
                label="probe (compiled chunk kernel)")
        ratio = np.array([p["step_cost_ratio"] for p in probe])
        ax2.plot(b, ratio, "o-", color="C0", label="measured")
        ax2.plot(b, b / b[0], ":", color="0.4", label="no vectorisation (cost ∝ B)")
        ax2.plot(b, np.ones_like(b), "--", color="0.6", label="free batching (cost flat)")
        ax2.legend(fontsize=8)
    for a in (ax, ax2):
        a.set_xscale("log", base=2)
        a.set_yscale("log")
        a.set_xlabel("batch size B")
        a.grid(alpha=0.3, which="both")
    ax.set_ylabel("examples per training second")
    ax.set_title("Throughput")
    if runs or probe:
        ax.legend(fontsize=8)
    ax2.set_ylabel("time of one step / time at the smallest B")
    ax2.set_title("Cost of one step")
    save_figure(fig, path)


PLOTS = {
    "accuracy_time.png": lambda r, p: plot_metric_curves(r, "train_seconds", p),
    "accuracy_epochs.png": lambda r, p: plot_metric_curves(r, "epoch", p),
    "steps_to_target.png": plot_steps_to_target,
    "throughput.png": plot_throughput,
}
