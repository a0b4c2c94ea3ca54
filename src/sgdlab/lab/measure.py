"""Reading a history: when did a run first reach its target?

A history has one row per evaluation, so the exact crossing lies between two rows. Taking the
first row at or above the target would make the answer depend on how often one evaluates; instead
the crossing is interpolated linearly between the last row below the target ``(x_a, m_a)`` and
the first row at or above it ``(x_b, m_b)``:

.. math:: f = \\frac{\\text{target} - m_a}{m_b - m_a}, \\qquad x^* = x_a + f\\,(x_b - x_a)

for each clock ``x`` in ``train_seconds`` (training time only: evaluation and compilation are
excluded by the engine), ``step``, ``epoch`` and ``examples``. A run that never gets there has
``inf`` for every clock.
"""

from __future__ import annotations

import math

CLOCKS = ("train_seconds", "step", "epoch", "examples")


def metric_name(history) -> str:
    """``val_accuracy`` for classification, ``val_r2`` for regression."""
    for row in history:
        if "val_r2" in row:
            return "val_r2"
    return "val_accuracy"


def _value(row, metric) -> float:
    v = row.get(metric, math.nan)
    try:
        v = float(v)
    except (TypeError, ValueError):
        return math.nan
    return v


def crossing(history, target: float, metric: str | None = None) -> dict:
    """``{"reached", "train_seconds", "step", "epoch", "examples"}`` at the first crossing.

    Rows whose metric is NaN (e.g. after a divergence) are ignored.
    """
    metric = metric or metric_name(history)
    prev = None
    for row in history:
        m = _value(row, metric)
        if math.isnan(m):
            continue
        if m >= target:
            if prev is None:
                f, prev = 0.0, row
            else:
                m_a = _value(prev, metric)
                f = (target - m_a) / (m - m_a) if m > m_a else 1.0
            out = {c: float(prev[c]) + f * (float(row[c]) - float(prev[c])) for c in CLOCKS}
            out["reached"] = True
            return out
        prev = row
    out = {c: math.inf for c in CLOCKS}
    out["reached"] = False
    return out


def best_metric(history, metric: str | None = None) -> float:
    """Highest finite value of the metric over the rows (NaN when there is none)."""
    metric = metric or metric_name(history)
    vals = [v for v in (_value(r, metric) for r in history) if math.isfinite(v)]
    return max(vals) if vals else math.nan


def final_metric(history, metric: str | None = None) -> float:
    """The last finite value of the metric (NaN when there is none)."""
    metric = metric or metric_name(history)
    for row in reversed(history):
        v = _value(row, metric)
        if math.isfinite(v):
            return v
    return math.nan


def median(values) -> float:
    """The median, keeping ``inf`` (a seed that missed the target) without NaN: the median of
    ``[t, inf]`` is ``inf``, as a majority that missed should be; NaN for no values."""
    v = sorted(float(x) for x in values)
    if not v:
        return math.nan
    mid = len(v) // 2
    return v[mid] if len(v) % 2 else v[mid - 1] / 2 + v[mid] / 2


def target_from(best: float) -> float:
    """An automatic target from the best final value: 0.99 x it, floored to 0.01 (a
    non-positive R^2 is kept as it is)."""
    return math.floor(100 * 0.99 * best) / 100 if best > 0 else best


def steps_to_target(history, target: float | None, metric: str | None = None) -> float:
    """Whole steps to the first crossing of ``target`` (the interpolated crossing rounded
    up), ``inf`` when the run never got there."""
    if target is None:
        return math.inf
    c = crossing(history, target, metric)
    return float(math.ceil(c["step"] - 1e-9)) if c["reached"] else math.inf


def whole_median(values) -> float:
    """:func:`median` of step counts as whole steps (rounded up; with an even number of
    values, the upper middle one), ``inf`` kept."""
    m = median(values)
    return float(math.ceil(m - 1e-9)) if math.isfinite(m) else m
