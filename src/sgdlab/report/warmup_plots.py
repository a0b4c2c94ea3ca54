"""The batch-size warmup's chart: the critical batch size measured over training against
examples seen, beside the noise scale's trace and the fixed-batch ``B_crit``.

* the measured critical batch size at each checkpoint of the reference run: the median over
  seeds (points) and the seeds' range (bars); the top of the ladder (a lower bound there);
* ``B_simple``'s smoothed trace from the noise run, its steps turned into examples (steps x
  its batch size), so both share the x axis;
* the fixed-batch ``B_crit`` fitted from steps to the target, and the recommended batch size;
* the warmup schedule built from the curve (a step line), when one was measured.

Figures only: every number comes from :class:`~sgdlab.lab.warmup_records.WarmupResult`.
"""

from __future__ import annotations

import numpy as np

from ..engine.batch_schedule import BatchSchedule
from .chart_style import HIGHLIGHT, as_float, finite, log_axes, not_measured, recommended
from .plots import plt, save_figure

TITLE = "Critical batch size over training"


def plot_batch_warmup(result, path) -> bool:
    """The chart of the module docstring; a "not measured" PNG (returning False) without a
    warmup or a curve."""
    w = getattr(result, "warmup", None)
    if w is None:
        return not_measured(path, TITLE, "the batch-size warmup was not run (--batch-warmup)")
    curve = w.curve
    if not curve.measured:
        return not_measured(path, TITLE, curve.reason or "nothing measured")
    # examples on a log axis: the first checkpoint (0 examples) sits at half the second's
    xs = np.array([float(p.examples) for p in curve.points])
    first = xs[xs > 0].min() / 2 if (xs > 0).any() else 1.0
    xs = np.where(xs > 0, xs, first)
    mid = np.array([as_float(p.b_crit) for p in curve.points])
    lo = np.array([as_float(p.low) for p in curve.points])
    hi = np.array([as_float(p.high) for p in curve.points])
    fig, ax = plt.subplots(figsize=(8, 4.4), layout="constrained")
    ax.errorbar(xs, mid, yerr=[mid - lo, hi - mid], fmt="o-", color="C0", capsize=3,
                label=f"measured by branching (median, range over {len(curve.seeds)} seeds)")
    top = curve.ladder[-1].batch_size
    ax.axhline(top, color="0.6", ls=":", lw=1,
               label=f"largest batch size branched ({top}): a lower bound there")
    noise = result.noise
    if noise is not None and noise.trace:
        tx = np.array([as_float(s) * noise.batch_size for s, _ in noise.trace])
        ty = np.array([as_float(v) for _, v in noise.trace])
        ok = np.isfinite(tx) & np.isfinite(ty) & (ty > 0) & (tx > 0)
        if ok.any():
            ax.plot(tx[ok], ty[ok], ".-", color="0.3", lw=1, ms=3,
                    label=f"B_simple (noise run at batch size {noise.batch_size})")
    sc = getattr(result.recommendation, "scaling", None)
    if sc is not None and sc.good and finite(sc.b_crit) and sc.b_crit > 0:
        ax.axhline(sc.b_crit, color="C1", ls="--", lw=1.5,
                   label=f"B_crit of the fixed-batch sweep = {sc.b_crit:.3g}")
    pick = recommended(result)
    if pick:
        ax.axhline(pick, color=HIGHLIGHT, lw=3, zorder=0, label=f"recommended B = {pick}")
    if w.schedule is not None:
        phases = BatchSchedule.parse(w.schedule.schedule).phases
        sx = [max(float(p.start), first) for p in phases] + [float(xs.max()) * 1.5]
        sy = [p.batch_size for p in phases] + [phases[-1].batch_size]
        ax.step(sx, sy, where="post", color="C2", lw=2,
                label=f"warmup schedule ({w.verdict} than B={w.fixed.batch_size})"
                if w.verdict != "tied" else f"warmup schedule (tied with B="
                                            f"{w.fixed.batch_size})")
    log_axes(ax, x=10, y=2)
    ax.set_xlabel("examples seen by the reference batch size "
                  f"{curve.reference_batch} (first checkpoint: 0)")
    ax.set_ylabel("batch size")
    ax.set_title(f"{TITLE} (branches of {curve.budget_examples:,} examples, tolerance "
                 f"{curve.tolerance:g})", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    save_figure(fig, path)
    return True
