"""How steps to target fall with the batch size: local exponents and the two-regime fit.

Shallue et al. (2018) measure, for each batch size at its own best learning rate, the steps
``S(B)`` to reach a target: proportional to ``1/B`` for small batches (perfect scaling), then
flat. McCandlish et al. (2018) model the curve as

.. math:: S(B) = S_{\\min} \\left(1 + \\frac{B_{\\mathrm{crit}}}{B}\\right),

i.e. ``S = a + c / B`` with ``S_min = a`` and ``B_crit = c / a``, fitted here by least squares
on the *relative* residuals ``r_i = (a + c / B_i - S_i) / S_i``. Its quality is their root mean
square ``rel_rms``; the fit is called ``good`` when ``rel_rms <= GOOD_FIT_RMS`` on at least
three points with ``0 < B_crit < inf``. A poor fit names no ``B_crit``: the measured steps do
not follow the model, and a number read off it would mislead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: Largest root-mean-square relative residual of a fit still called good (15 %).
GOOD_FIT_RMS = 0.15


@dataclass(frozen=True)
class StepsFit:
    """The fit ``S(B) = S_min (1 + B_crit / B)`` of steps to target against batch size, over
    ``points`` batch sizes, with its relative rms error and whether it is ``good``."""

    s_min: float = math.nan
    b_crit: float = math.nan
    points: int = 0
    rel_rms: float = math.nan
    good: bool = False


def fit_steps_scaling(batch_sizes: Sequence[float], steps: Sequence[float]) -> StepsFit:
    """:class:`StepsFit` of ``S(B) = S_min (1 + B_crit/B)``.

    Only finite, positive steps are used; with fewer than two points ``s_min`` and ``b_crit``
    are NaN. ``b_crit = inf`` means steps were still falling in proportion at the largest batch
    (the fitted floor ``a`` was not positive); ``b_crit = 0`` means no batch size helped.
    """
    b = np.asarray(batch_sizes, float)
    s = np.asarray(steps, float)
    ok = np.isfinite(s) & (s > 0)
    b, s = b[ok], s[ok]
    if len(b) < 2:
        return StepsFit(points=int(len(b)))
    # Rows [1/S, 1/(B S)] . (a, c) = 1: least squares on relative residuals.
    A = np.stack([1.0 / s, 1.0 / (b * s)], axis=1)
    (a, c), *_ = np.linalg.lstsq(A, np.ones_like(s), rcond=None)
    rms = float(np.sqrt(np.mean(np.square(A @ np.array([a, c]) - 1.0))))
    if c <= 1e-6 * abs(a) * b.min():  # B_crit a millionth of the smallest batch: none
        return StepsFit(float(np.median(s)), 0.0, int(len(b)), rms)
    if a <= 0:
        return StepsFit(float(s.min()), math.inf, int(len(b)), rms)
    return StepsFit(float(a), float(c / a), int(len(b)), rms,
                    bool(len(b) >= 3 and rms <= GOOD_FIT_RMS))


def scaling_exponents(batch_sizes: Sequence[float], steps: Sequence[float]) -> list:
    """``[(B_i, B_{i+1}, e_i)]`` with ``e = log(S_i / S_{i+1}) / log(B_{i+1} / B_i)``.

    ``e = 1`` is perfect scaling (twice the batch, half the steps), ``e = 0`` no gain at all.
    Only consecutive batch sizes that both reached the target are paired.
    """
    pts = [(b, s) for b, s in sorted(zip(batch_sizes, steps)) if math.isfinite(s) and s > 0]
    return [(b0, b1, math.log(s0 / s1) / math.log(b1 / b0))
            for (b0, s0), (b1, s1) in zip(pts, pts[1:])]


def scaling_sentence(scaling: StepsFit, batch_sizes: Sequence[float],
                     steps: Sequence[float]) -> str:
    """Where steps to target stop falling in proportion (the first pair with ``e < 1/2``),
    and the fit with its quality, in words. Steps that rose with the batch are said to rise
    (by the inverse factor), and a local exponent is written with one sign (``B^0.027``).
    Steps are said to "stop falling" beyond a batch size only when no larger batch size took
    fewer; otherwise the sentence names where they fell again."""
    ex = scaling_exponents(batch_sizes, steps)
    if not ex:
        return ("Too few batch sizes reached the target to see where steps to target stop "
                "scaling.")
    bc = scaling.b_crit
    if scaling.good:
        fit = (f" (fit of S(B) = S_min (1 + B_crit/B): B_crit = {bc:.3g}, S_min = "
               f"{scaling.s_min:.3g} steps, within {100 * scaling.rel_rms:.0f}% rms of "
               "the measured steps; Shallue et al. 2018, McCandlish et al. 2018)")
    elif scaling.points >= 3 and math.isfinite(scaling.rel_rms):
        fit = (f" (the model S_min (1 + B_crit/B) misses the measured steps by "
               f"{100 * scaling.rel_rms:.0f}% rms, so no critical batch size is read off it)")
    else:
        fit = " (Shallue et al. 2018)"
    stop = next((i for i, (_, _, e) in enumerate(ex) if e < 0.5), None)
    if stop is None:
        return (f"Steps to target kept falling nearly in proportion to the batch size up to "
                f"the largest one that reached it ({ex[-1][1]:g}): larger batches may still "
                f"save steps{fit}.")
    b0, b1, e = ex[stop]
    gain = (b1 / b0) ** e
    change = fell_or_rose(gain)
    if stop == 0:
        best = max(e_ for _, _, e_ in ex)
        head = ("fell less than in proportion to the batch size" if change.startswith("fell")
                else "did not fall with the batch size")
        at_best = ("" if len(ex) == 1 else
                   f", and at best as {power_of_b(-best)} between neighbouring batch sizes"
                   if best > 0 else ", and between no neighbouring batch sizes did they fall "
                   f"(at best they went as {power_of_b(-best)})")
        return (f"Steps to target {head} from the smallest one on: from {b0:g} to {b1:g} they "
                f"{change} for {b1 / b0:g}x the batch (perfect scaling: they would fall "
                f"{b1 / b0:g}x){at_best}{fit}.")
    pts = sorted((b, s) for b, s in zip(batch_sizes, steps) if math.isfinite(s) and s > 0)
    s_b0 = next(s for b, s in pts if b == b0)
    lower = [(b, s) for b, s in pts if b > b1 and s < min(s_b0, next(s for b_, s in pts
                                                                    if b_ == b1))]
    beyond = "stop falling" if change.startswith("rose") and not lower else "flatten"
    if change.startswith("fell "):
        change = "fell only " + change[len("fell "):]
    again = ""
    if lower:
        b_low, s_low = min(lower, key=lambda p: (p[1], p[0]))
        again = (f"; they fell again further out, to {s_low:.0f} at {b_low:g} "
                 f"({s_b0 / s_low:.3g}x fewer than at {b0:g} for {b_low / b0:g}x the batch)")
    return (f"Steps to target fall nearly in proportion to the batch size up to {b0:g} and "
            f"{beyond} beyond: from {b0:g} to {b1:g} they {change} for {b1 / b0:g}x the "
            f"batch{again}{fit}.")


def fell_or_rose(factor: float) -> str:
    """``"fell 2x"`` for a count divided by ``factor > 1``, ``"rose 1.04x"`` (the inverse
    factor) for one below 1, ``"stayed the same"`` when either rounds to 1."""
    if factor > 1 and f"{factor:.3g}" != "1":
        return f"fell {factor:.3g}x"
    if 0 < factor < 1 and f"{1 / factor:.3g}" != "1":
        return f"rose {1 / factor:.3g}x"
    return "stayed the same"


def power_of_b(exponent: float) -> str:
    """``"B^-0.5"``, ``"B^0.027"``, ``"B^0"``: one sign, never two."""
    text = f"{exponent:.2g}"
    return "B^0" if text == "-0" else f"B^{text}"
