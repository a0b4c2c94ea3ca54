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
from typing import Sequence

import numpy as np

#: Largest root-mean-square relative residual of a fit still called good (15 %).
GOOD_FIT_RMS = 0.15


def fit_steps_scaling(batch_sizes: Sequence[float], steps: Sequence[float]) -> dict:
    """``{"s_min", "b_crit", "points", "rel_rms", "good"}`` of ``S(B) = S_min (1 + B_crit/B)``.

    Only finite, positive steps are used; with fewer than two points ``s_min`` and ``b_crit``
    are NaN. ``b_crit = inf`` means steps were still falling in proportion at the largest batch
    (the fitted floor ``a`` was not positive); ``b_crit = 0`` means no batch size helped.
    """
    b = np.asarray(batch_sizes, float)
    s = np.asarray(steps, float)
    ok = np.isfinite(s) & (s > 0)
    b, s = b[ok], s[ok]
    out = {"s_min": math.nan, "b_crit": math.nan, "points": int(len(b)),
           "rel_rms": math.nan, "good": False}
    if len(b) < 2:
        return out
    # Rows [1/S, 1/(B S)] . (a, c) = 1: least squares on relative residuals.
    A = np.stack([1.0 / s, 1.0 / (b * s)], axis=1)
    (a, c), *_ = np.linalg.lstsq(A, np.ones_like(s), rcond=None)
    out["rel_rms"] = float(np.sqrt(np.mean(np.square(A @ np.array([a, c]) - 1.0))))
    if c <= 1e-6 * abs(a) * b.min():  # B_crit a millionth of the smallest batch: none
        out.update(s_min=float(np.median(s)), b_crit=0.0)
    elif a <= 0:
        out.update(s_min=float(s.min()), b_crit=math.inf)
    else:
        out.update(s_min=float(a), b_crit=float(c / a))
        out["good"] = bool(len(b) >= 3 and out["rel_rms"] <= GOOD_FIT_RMS)
    return out


def scaling_exponents(batch_sizes: Sequence[float], steps: Sequence[float]) -> list:
    """``[(B_i, B_{i+1}, e_i)]`` with ``e = log(S_i / S_{i+1}) / log(B_{i+1} / B_i)``.

    ``e = 1`` is perfect scaling (twice the batch, half the steps), ``e = 0`` no gain at all.
    Only consecutive batch sizes that both reached the target are paired.
    """
    pts = [(b, s) for b, s in sorted(zip(batch_sizes, steps)) if math.isfinite(s) and s > 0]
    return [(b0, b1, math.log(s0 / s1) / math.log(b1 / b0))
            for (b0, s0), (b1, s1) in zip(pts, pts[1:])]


def scaling_sentence(scaling: dict, batch_sizes: Sequence[float],
                     steps: Sequence[float]) -> str:
    """Where steps to target stop falling in proportion (the first pair with ``e < 1/2``),
    and the fit with its quality, in words. Steps that rose with the batch are said to rise
    (by the inverse factor), and a local exponent is written with one sign (``B^0.027``)."""
    ex = scaling_exponents(batch_sizes, steps)
    if not ex:
        return ("Too few batch sizes reached the target to see where steps to target stop "
                "scaling.")
    bc = scaling["b_crit"]
    if scaling["good"]:
        fit = (f" (fit of S(B) = S_min (1 + B_crit/B): B_crit = {bc:.3g}, S_min = "
               f"{scaling['s_min']:.3g} steps, within {100 * scaling['rel_rms']:.0f}% rms of "
               "the measured steps; Shallue et al. 2018, McCandlish et al. 2018)")
    elif scaling["points"] >= 3 and math.isfinite(scaling["rel_rms"]):
        fit = (f" (the model S_min (1 + B_crit/B) misses the measured steps by "
               f"{100 * scaling['rel_rms']:.0f}% rms, so no critical batch size is read off it)")
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
    beyond = "stop falling" if change.startswith("rose") else "flatten"
    if change.startswith("fell "):
        change = "fell only " + change[len("fell "):]
    return (f"Steps to target fall nearly in proportion to the batch size up to {b0:g} and "
            f"{beyond} beyond: from {b0:g} to {b1:g} they {change} for {b1 / b0:g}x the "
            f"batch{fit}.")


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
