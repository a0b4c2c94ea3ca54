"""The sweep's charts (PNG, matplotlib Agg). Figures only: every number comes from the lab.

* validation metric against training seconds: per batch size the *median* over seeds of its
  chosen learning rate (the source text's chart: wall-clock time, not epochs, decides which
  batch size improves fastest); a run's steps are put on the time axis at the replayed time
  per step of its batch size (the table's time to target over its steps), so the curves cross
  the target where the table says, without the evaluations' extra calls;
* the same against epochs, for contrast (small batches look best per epoch);
* predicted time to target (median steps x the probe's cost of a step) against learning rate,
  one line per batch size over every point the search tried (the tuning evidence: within a
  batch size the ranking by steps is the ranking by this time; the chosen learning rate is
  circled, misses and divergences sit on the top edge);
* steps to target against batch size on log-log axes, with the perfect-scaling line
  ``S(B) = S(B_0) B_0 / B``, the fit ``S_min (1 + B_crit / B)`` and the noise scales marked;
* the cost charts of :mod:`.sweep_cost_plots` (the decomposition time = steps x seconds
  per step, throughput, the noise-scale trace) and the batch-size warmup's
  (:mod:`.warmup_plots`); :data:`PLOTS` lists them all.

The recommended batch size is drawn thick or highlighted on every chart. Each batch size keeps
one colour (and marker) in every chart. A chart whose data is missing (no probe, no noise run)
is still written, as a PNG that says "not measured"; its function then returns ``False`` so the
HTML report can leave it out (the others return ``True``).
"""

from __future__ import annotations

import math

import numpy as np

from .chart_style import (HIGHLIGHT, as_float, batch_label, batch_styles, finite, log_axes,
                          mark_band, metric_label, not_measured, recommended)
from .plots import plt, save_figure
from .sweep_cost_plots import plot_decomposition, plot_noise_trace, plot_throughput
from .warmup_plots import plot_batch_warmup


def _chosen_runs(result, b, lr) -> list:
    """The search runs of batch size ``b`` at learning rate ``lr`` (its seeds)."""
    return [r for r in result.records if r.batch_size == b and r.lr == lr
            and r.phase == "search"]


def _seconds_per_step(row) -> float:
    """The replayed time per step of a batch size (NaN when it was not timed)."""
    if finite(row.time_median) and finite(row.steps_median) and row.steps_median > 0:
        return row.time_median / row.steps_median
    return math.nan


def _at_replay_speed(history, per_step: float) -> list:
    """``history`` rows with ``train_seconds`` = step x ``per_step``."""
    return [{**r, "train_seconds": float(r["step"]) * per_step} for r in history]


def median_curve(histories: list, x: str, metric: str, points: int = 160, hold=None):
    """``(grid, median)``: each history's ``metric`` interpolated at a common log-spaced grid
    of column ``x``; the median over the histories where at least half of them have data.

    A run has no data beyond its last row, except where ``hold[i]`` is true (a run that
    stopped *because* it reached the target): its last value is carried on, so that the
    median curve crosses the target near the median time to target instead of dropping when
    the fastest seed stops. Empty arrays without data.
    """
    hold = list(hold) if hold is not None else [False] * len(histories)
    series, held = [], []
    for h, keep_last in zip(histories, hold):
        xs = np.array([as_float(r.get(x)) for r in h])
        ys = np.array([as_float(r.get(metric)) for r in h])
        ok = np.isfinite(xs) & np.isfinite(ys)
        xs, ys = xs[ok], ys[ok]
        order = np.argsort(xs, kind="stable")
        xs, ys = xs[order], ys[order]
        if len(xs) and xs[-1] > 0:
            series.append((xs, ys))
            held.append(bool(keep_last))
    if not series:
        return np.array([]), np.array([])
    lo = min(xs[xs > 0].min() for xs, _ in series)
    hi = max(xs[-1] for xs, _ in series)
    grid = np.geomspace(lo, hi, points) if hi > lo else np.array([lo])
    values = np.full((len(series), len(grid)), np.nan)
    for i, (xs, ys) in enumerate(series):
        inside = (grid >= xs[0]) & ((grid <= xs[-1]) | held[i])
        values[i, inside] = np.interp(grid[inside], xs, ys)  # constant beyond the last row
    count = np.isfinite(values).sum(axis=0)
    keep = (count > 0) & (count >= len(histories) / 2)
    med = np.full(len(grid), np.nan)
    if keep.any():
        med[keep] = np.nanmedian(values[:, keep], axis=0)
    return grid, med


def plot_metric_curves(result, x: str, path) -> bool:
    """Per batch size the median curve over the seeds of its chosen learning rate; ``x`` is a
    history column (``train_seconds``, at the replayed time per step, or ``epoch``)."""
    what = "training time" if x == "train_seconds" else "epochs"
    if not result.batches:
        return not_measured(path, f"{metric_label(result.metric)} against {what}",
                            "no batch size was run")
    rec = recommended(result)
    styles = batch_styles(g.batch_size for g in result.batches)
    fig, ax = plt.subplots(figsize=(8.5, 5))
    seeds, drawn = set(), []  # drawn: lowest and highest median of every curve
    for g in result.batches:
        b = g.batch_size
        runs = _chosen_runs(result, b, g.lr)
        per_step = _seconds_per_step(g)
        if x == "train_seconds" and not finite(per_step):
            continue  # never timed: no place on a time axis
        seeds.add(len(runs))
        histories = [_at_replay_speed(r.history, per_step) if x == "train_seconds"
                     else r.history for r in runs]
        grid, med = median_curve(histories, x, result.metric,
                                 hold=[r.status == "target_reached" for r in runs])
        if not np.isfinite(med).any():
            continue
        drawn += [float(np.nanmin(med)), float(np.nanmax(med))]
        st, best = styles[b], b == rec
        ax.plot(grid, med, color=st["color"], ls=st["ls"], marker=st["marker"],
                markevery=(0.05 + 0.03 * (sorted(styles).index(b) % 4), 0.2),
                markersize=7 if best else 4.5, lw=3.4 if best else 1.5,
                zorder=5 if best else 3, alpha=1.0 if best else 0.9,
                label=batch_label(b, rec, f", lr {g.lr:.3g}"))
        end = np.flatnonzero(np.isfinite(med))[-1]  # mark the end: short curves stay visible
        ax.plot(grid[end], med[end], st["marker"], color=st["color"], ms=9 if best else 6,
                mec="k", mew=0.6, zorder=6)
    if finite(result.target):
        ax.axhline(result.target, color="k", ls="--", lw=1, label=f"target {result.target:g}")
    log_axes(ax, x=10)
    ax.set_xlabel("training seconds (steps x the replayed time per step; evaluation and "
                  "compilation excluded)" if x == "train_seconds" else "epochs")
    ax.set_ylabel(metric_label(result.metric))
    if drawn:
        lo = min(drawn + ([result.target] if finite(result.target) else []))
        hi = max(drawn + ([result.target] if finite(result.target) else []))
        pad = 0.05 * max(hi - lo, 1e-3)
        ax.set_ylim(max(lo - pad, -1.0 if result.metric == "val_r2" else 0.0),
                    min(hi + pad, 1.0))
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, ncol=2 if len(styles) > 6 else 1, loc="lower right")
    n = "/".join(str(s) for s in sorted(seeds)) or "0"
    ax.set_title(f"{metric_label(result.metric)} against {what}: median over {n} seed(s) "
                 "at each batch size's chosen learning rate", fontsize=10)
    save_figure(fig, path)
    return True


def _lr_line(ax, points: list, style: dict, top: float, *, thick: bool,
             context: bool = False, y=None) -> None:
    """One batch size's points: median ``y(point)`` against lr, misses and divergences at
    ``top``; bars span the seeds."""
    points = sorted(points, key=lambda p: p.lr)
    lr = np.array([p.lr for p in points], float)
    t = np.array([y(p) if finite(y(p)) else top for p in points])
    if context:
        ax.plot(lr, t, "-", color="0.82", lw=1, zorder=1)
        return
    color, lw = style["color"], 3.2 if thick else 1.4
    ax.plot(lr, t, ls=style["ls"], color=color, lw=lw, zorder=4 if thick else 3)
    size = 9 if thick else 6.5
    for p, x, v in zip(points, lr, t):
        if p.seeds and p.diverged >= p.seeds:
            ax.plot(x, v, "x", color=color, ms=size + 2, mew=2.5, zorder=6)
        elif not finite(p.steps_median):
            ax.plot(x, v, style["marker"], mfc="white", mec=color, mew=1.8, ms=size, zorder=6)
        else:
            per = y(p) / p.steps_median if p.steps_median > 0 else math.nan
            reached = [k for k in p.seed_steps if finite(k)]
            if reached and finite(per):
                ax.plot([x, x], [min(reached) * per, max(reached) * per], color=color, lw=1,
                        alpha=0.6, zorder=5)
            ax.plot(x, v, style["marker"], color=color, ms=size, zorder=6)
        if p.chosen:
            ax.plot(x, v, "o", mfc="none", mec="k", mew=1.8, ms=size + 10, zorder=7)


def plot_lr_search(result, path) -> bool:
    """Predicted time to target (or steps, without a probe) against learning rate for every
    point tried, per batch size."""
    points = list(result.points)
    if not points:
        return not_measured(path, "Learning-rate search", "no (batch size, lr) point was run")
    timed = any(finite(p.predicted_seconds) for p in points)
    y = (lambda p: p.predicted_seconds) if timed else (lambda p: p.steps_median)
    rec = recommended(result)
    by_b: dict = {}
    for p in points:
        by_b.setdefault(p.batch_size, []).append(p)
    sizes = sorted(by_b)
    styles = batch_styles(sizes)
    values = [y(p) for p in points if finite(y(p)) and y(p) > 0]
    bottom = min(values) / 2 if values else 0.5
    top = max(values) * 3 if values else 1.0
    small = len(sizes) > 6  # small multiples: one panel per batch size, the others grey
    ncol = 4 if small else 1
    nrow = math.ceil(len(sizes) / ncol) if small else 1
    fig, axes = plt.subplots(nrow, ncol, figsize=(12, 2.8 * nrow + 0.6) if small else (8.5, 5),
                             sharex=True, sharey=True, squeeze=False)
    panels = list(axes.flat)
    for i, b in enumerate(sizes if small else [None]):
        ax = panels[i]
        for other in sizes:
            if small and other != b:
                _lr_line(ax, by_b[other], styles[other], top, thick=False, context=True, y=y)
        for s in ([b] if small else sizes):
            _lr_line(ax, by_b[s], styles[s], top, thick=s == rec, y=y)
        if small:
            ax.set_title(batch_label(b, rec), fontsize=9, weight="bold" if b == rec else "normal",
                         color="k" if b == rec else "0.25")
            if b == rec:
                for side in ax.spines.values():
                    side.set_edgecolor(HIGHLIGHT)
                    side.set_linewidth(3)
    for ax in panels[len(sizes) if small else 1:]:
        ax.axis("off")
    for ax in panels:
        log_axes(ax, x=10, y=10)
        ax.set_ylim(bottom, top * 1.8)
        ax.axhline(top, color="0.6", ls=":", lw=1, zorder=0)
        ax.grid(alpha=0.3, which="both")
    handles = [plt.Line2D([], [], color=styles[s]["color"], ls=styles[s]["ls"],
                          marker=styles[s]["marker"], lw=3.2 if s == rec else 1.4,
                          label=batch_label(s, rec)) for s in ([] if small else sizes)]
    handles += [plt.Line2D([], [], ls="", marker="o", mfc="none", mec="k", mew=1.8, ms=14,
                           label="kept learning rate (fewest median steps)"),
                plt.Line2D([], [], ls="", marker="o", mfc="white", mec="0.3", mew=1.8,
                           label="median seed missed or was stopped (top edge)"),
                plt.Line2D([], [], ls="", marker="x", color="0.3", mew=2.5,
                           label="every seed diverged (top edge)")]
    if small:
        fig.legend(handles=handles, fontsize=8, loc="lower center", ncol=3,
                   bbox_to_anchor=(0.5, -0.06))
    else:
        panels[0].legend(handles=handles, fontsize=7, loc="upper left",
                         bbox_to_anchor=(1.01, 1.0))
    ylabel = ("predicted seconds to target (median steps x the probe's s/step)" if timed
              else "steps to target (median over seeds)")
    title = ("Time to target against learning rate, per batch size (the tuning evidence; "
             "within a batch size, ranked by steps)")
    if small:
        fig.supxlabel("learning rate")
        fig.supylabel(ylabel)
        fig.suptitle(title)
    else:
        ax = panels[0]
        ax.set_xlabel("learning rate")
        ax.set_ylabel(ylabel + "; bars: seeds")
        ax.set_title(title, fontsize=10)
    save_figure(fig, path)
    return True


def plot_steps_to_target(result, path) -> bool:
    if not result.batches:
        return not_measured(path, "Steps to target against batch size", "no batch size was run")
    rec = recommended(result)
    # A target met before any step (0 steps) has no place on a log axis.
    rows = [g for g in result.batches if finite(g.steps_best) and g.steps_best > 0]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    mark_band(ax, rec)
    if rows:
        b = np.array([g.batch_size for g in rows], float)
        s = np.array([g.steps_best for g in rows], float)
        ax.plot(b, s, "o-", color="C0", label="measured (median over seeds, best lr)")
        ax.plot(b, s[0] * b[0] / b, ":", color="0.4", label="perfect scaling: steps ∝ 1/B")
        sc = result.recommendation.scaling
        # A poor fit names no critical batch size (lab.scaling_fit), so none is drawn either.
        if sc.good and finite(sc.s_min) and finite(sc.b_crit) and sc.b_crit > 0:
            grid = np.geomspace(b.min(), b.max(), 100)
            ax.plot(grid, sc.s_min * (1 + sc.b_crit / grid), "-", color="C1", lw=1,
                    label=f"fit S_min(1 + B_crit/B), B_crit = {sc.b_crit:.3g}")
            ax.axvline(sc.b_crit, color="C1", ls="--", lw=1)
        best = [g for g in rows if g.batch_size == rec]
        if best:
            ax.plot(rec, best[0].steps_best, "*", color=HIGHLIGHT, mec="k", ms=20, zorder=6,
                    label=f"recommended B = {rec}: {best[0].steps_best:.0f} steps")
        ax.set_ylim(max(s.min() / 3, 0.1), s.max() * 3)
    else:
        ax.text(0.5, 0.5, "no batch size reached the target", ha="center",
                transform=ax.transAxes)
    noise = result.noise
    if noise is not None:
        for v, lo, hi, color, ls, name in (
                (noise.b_simple, noise.low, noise.high, "C3", "-.",
                 "noise scale B_simple (two-batch)"),
                (noise.b_noise, noise.b_noise_low, noise.b_noise_high, "C4", "--",
                 "B_noise (Hessian-weighted)")):
            if finite(v) and v > 0:
                ax.axvline(v, color=color, ls=ls, lw=1.3, label=f"{name} = {v:.3g}")
                if finite(lo) and finite(hi) and lo > 0:
                    ax.axvspan(lo, hi, color=color, alpha=0.11)
    log_axes(ax, x=2, y=10)
    ax.set_xlabel("batch size B")
    ax.set_ylabel(f"steps to {metric_label(result.metric)} {result.target:g}"
                  if finite(result.target) else "steps to target")
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:  # nothing reached and no noise scale: no legend
        ax.legend(fontsize=8)
    ax.set_title("Steps to target against batch size")
    save_figure(fig, path)
    return True


PLOTS = {
    "accuracy_time.png": lambda r, p: plot_metric_curves(r, "train_seconds", p),
    "accuracy_epochs.png": lambda r, p: plot_metric_curves(r, "epoch", p),
    "lr_search.png": plot_lr_search,
    "steps_to_target.png": plot_steps_to_target,
    "decomposition.png": plot_decomposition,
    "throughput.png": plot_throughput,
    "noise_trace.png": plot_noise_trace,
    "batch_warmup.png": plot_batch_warmup,
}
