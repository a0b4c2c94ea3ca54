"""Pick the batch size that reaches the target fastest, and say why in plain sentences.

The choice is the data's, nothing else: the batch size (with its learning rate) whose *median*
training time to the target, over seeds, is lowest. The evidence sentences report

1. its time and spread;
2. the runner-up and how much slower it was;
3. where steps-to-target stops scaling with the batch size (Shallue et al. 2018): the first
   pair of neighbouring batch sizes whose local exponent ``e = log(S_i/S_j) / log(B_j/B_i)``
   falls below 1/2 (1 is perfect scaling, 0 none). The measured medians are also fitted by the
   model of McCandlish et al. (2018),

   .. math:: S(B) = S_{\\min} \\left(1 + \\frac{B_{\\mathrm{crit}}}{B}\\right),

   i.e. ``S = a + c / B`` with ``S_min = a`` and ``B_crit = c / a``, by least squares on the
   *relative* residuals ``(a + c / B_i - S_i) / S_i``. Below ``B_crit`` doubling the batch
   nearly halves the steps; above it the steps flatten at ``S_min``;
4. how the gradient noise scale ``B_simple`` compares with that critical batch size.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np


class Recommendation(NamedTuple):
    batch_size: int | None
    lr: float | None
    seconds: float
    sentences: list
    scaling: dict

    def to_dict(self) -> dict:
        return dict(self._asdict())


def fit_steps_scaling(batch_sizes: Sequence[float], steps: Sequence[float]) -> dict:
    """``{"s_min", "b_crit", "points"}`` of ``S(B) = S_min (1 + B_crit / B)``.

    Only finite, positive steps are used; with fewer than two points both are NaN.
    ``b_crit = inf`` means steps were still falling in proportion at the largest batch (the
    fitted floor ``a`` was not positive); ``b_crit = 0`` means no batch size helped at all.
    """
    b = np.asarray(batch_sizes, float)
    s = np.asarray(steps, float)
    ok = np.isfinite(s) & (s > 0)
    b, s = b[ok], s[ok]
    if len(b) < 2:
        return {"s_min": math.nan, "b_crit": math.nan, "points": int(len(b))}
    # Rows [1/S, 1/(B S)] . (a, c) = 1: least squares on relative residuals.
    A = np.stack([1.0 / s, 1.0 / (b * s)], axis=1)
    (a, c), *_ = np.linalg.lstsq(A, np.ones_like(s), rcond=None)
    if c <= 0:
        return {"s_min": float(np.median(s)), "b_crit": 0.0, "points": int(len(b))}
    if a <= 0:
        return {"s_min": float(s.min()), "b_crit": math.inf, "points": int(len(b))}
    return {"s_min": float(a), "b_crit": float(c / a), "points": int(len(b))}


def _t(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "never"
    return f"{seconds * 1000:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _what(metric: str, target: float) -> str:
    name = "validation R^2" if metric == "val_r2" else "validation accuracy"
    return f"{name} {target:g}"


def recommend(per_batch: Sequence[dict], *, target: float, metric: str = "val_accuracy",
              noise: dict | None = None, seeds: int = 1) -> Recommendation:
    """The recommendation from per-batch-size rows.

    Each row needs ``batch_size``, ``lr``, ``time_median``, ``time_low``, ``time_high`` and
    ``steps_median`` (infinite when the median run missed the target) and ``final_median``;
    the scaling fit uses ``steps_best`` (fewest steps over the learning-rate grid) if present.
    ``noise`` is a :class:`~sgdlab.lab.noise.NoiseEstimate` as a dict, or None.
    """
    rows = sorted(per_batch, key=lambda r: r["batch_size"])
    scaling = fit_steps_scaling([r["batch_size"] for r in rows],
                                [r.get("steps_best", r["steps_median"]) for r in rows])
    reached = [r for r in rows if math.isfinite(r["time_median"])]
    what = _what(metric, target)
    if not reached:
        best = max(rows, key=lambda r: _nan_low(r["final_median"]), default=None)
        tail = (f" The best final value, {best['final_median']:.4g}, was at batch size "
                f"{best['batch_size']}." if best else "")
        return Recommendation(None, None, math.inf, [
            f"No batch size reached {what} within its budget in the median of {seeds} "
            f"seed(s).{tail} Lower the target (--target-accuracy) or raise the budget "
            "(--budget)."], scaling)

    ranked = sorted(reached, key=lambda r: (r["time_median"], r["batch_size"]))
    best = ranked[0]
    sentences = [
        f"Batch size {best['batch_size']} (learning rate {best['lr']:.4g}) reached {what} "
        f"fastest: a median {_t(best['time_median'])} of training time over {seeds} seed(s) "
        f"(range {_t(best['time_low'])} to {_t(best['time_high'])}), in "
        f"{best['steps_median']:.4g} steps."]
    if len(ranked) > 1:
        second = ranked[1]
        ratio = second["time_median"] / best["time_median"] if best["time_median"] > 0 \
            else math.inf
        sentences.append(
            f"The runner-up, batch size {second['batch_size']}, took {_t(second['time_median'])}"
            f" ({ratio:.2f}x as long); {len(rows) - len(reached)} of {len(rows)} batch sizes "
            "did not reach the target.")
    else:
        sentences.append(f"No other batch size reached the target (of {len(rows)} tried).")
    sentences.append(_scaling_sentence(scaling, rows))
    if noise:
        sentences.append(_noise_sentence(noise, scaling, best["batch_size"]))
    return Recommendation(int(best["batch_size"]), float(best["lr"]), best["time_median"],
                          sentences, scaling)


def _nan_low(v: float) -> float:
    return -math.inf if v is None or math.isnan(v) else v


def scaling_exponents(batch_sizes: Sequence[float], steps: Sequence[float]) -> list:
    """``[(B_i, B_{i+1}, e_i)]`` with ``e = log(S_i / S_{i+1}) / log(B_{i+1} / B_i)``.

    ``e = 1`` is perfect scaling (twice the batch, half the steps), ``e = 0`` no gain at all.
    Only consecutive batch sizes that both reached the target are paired.
    """
    pts = [(b, s) for b, s in sorted(zip(batch_sizes, steps)) if math.isfinite(s) and s > 0]
    return [(b0, b1, math.log(s0 / s1) / math.log(b1 / b0))
            for (b0, s0), (b1, s1) in zip(pts, pts[1:])]


def _scaling_sentence(scaling: dict, rows: Sequence[dict]) -> str:
    """Where steps-to-target stop falling in proportion: the first pair with ``e < 1/2``."""
    ex = scaling_exponents([r["batch_size"] for r in rows],
                           [r.get("steps_best", r["steps_median"]) for r in rows])
    if not ex:
        return ("Too few batch sizes reached the target to see where steps-to-target stops "
                "scaling.")
    bc = scaling["b_crit"]
    fit = (f" (fit of S(B) = S_min (1 + B_crit/B): B_crit = {bc:.3g}, S_min = "
           f"{scaling['s_min']:.3g} steps; Shallue et al. 2018, McCandlish et al. 2018)"
           if math.isfinite(bc) and bc > 0 and scaling["points"] >= 3
           else " (Shallue et al. 2018)")
    stop = next((i for i, (_, _, e) in enumerate(ex) if e < 0.5), None)
    if stop is None:
        return (f"Steps to target kept falling nearly in proportion to the batch size up to "
                f"the largest one that reached it ({ex[-1][1]:g}): larger batches may still "
                f"help{fit}.")
    b0, b1, e = ex[stop]
    gain = (b1 / b0) ** e
    if stop == 0:
        best = max(e_ for _, _, e_ in ex)
        return (f"Steps to target fell less than in proportion to the batch size from the "
                f"smallest one on: from {b0:g} to {b1:g} they fell {gain:.3g}x for "
                f"{b1 / b0:g}x the batch (perfect scaling: {b1 / b0:g}x), and at best as "
                f"B^-{best:.2g} between neighbouring batch sizes{fit}.")
    return (f"Steps to target fall nearly in proportion to the batch size up to {b0:g} and "
            f"flatten beyond: from {b0:g} to {b1:g} they fell only {gain:.3g}x for "
            f"{b1 / b0:g}x the batch{fit}.")


def _noise_sentence(noise: dict, scaling: dict, best_b: int) -> str:
    b, low, high = noise["b_simple"], noise["low"], noise["high"]
    if not (isinstance(b, (int, float)) and math.isfinite(b) and b > 0):
        return ("The gradient noise scale could not be estimated: the mean gradient was "
                "indistinguishable from zero at the target (|G|^2 estimate <= 0).")
    head = (f"The gradient noise scale near the target is B_simple = {b:.3g} "
            f"(68% interval {low:.3g} to {high:.3g})")
    bc = scaling["b_crit"]
    if math.isfinite(bc) and bc > 0 and scaling["points"] >= 3:  # two points fit any curve
        f = b / bc
        rel = ("within a factor of 2 of" if 0.5 <= f <= 2 else
               f"{f:.2g}x" if f > 2 else f"{1 / f:.2g}x smaller than")
        return (f"{head}, {rel} the critical batch size fitted from the steps "
                f"({bc:.3g}); McCandlish et al. (2018) predict the two agree.")
    side = "above" if best_b > b else "at or below"
    return (f"{head}; the recommended batch size {best_b} is {side} it, and McCandlish "
            "et al. (2018) predict that batches beyond it stop saving steps.")
