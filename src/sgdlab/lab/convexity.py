"""Convexity probe: test the chord inequality on sampled segments of parameter space.

``J`` is convex exactly when, for every pair of points ``u, v`` and every ``t in [0, 1]``::

    J((1 - t) u + t v)  <=  (1 - t) J(u) + t J(v)            (the chord inequality)

A probe cannot prove convexity, but one violated segment disproves it. Segments are drawn
around a solution ``w*``: ``u = w* + r_u d_u``, ``v = w* + r_v d_v`` with filter-normalised
random directions ``d`` (see :mod:`sgdlab.lab.directions`) and radii ``r`` uniform in
``[0, radius]``; segments between independently trained solutions are added, since that is
where networks' non-convexity shows most.

Rounding is not a violation: a gap counts only above ``rtol * max(|J(u)|, |J(v)|) + atol``.
The probe evaluates in float64 by default, where that tolerance can be tight (1e-9).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .._types import Params
from ..errors import ConfigError
from .directions import random_directions
from .surface import Surface, flatten

__all__ = ["ConvexityReport", "probe_convexity", "INTERIOR_TS"]

#: interior points tested on each segment (the end points give the chord).
INTERIOR_TS = (0.25, 0.5, 0.75)
RTOL = {True: 1e-9, False: 1e-5}   # keyed by x64: float64 and float32 rounding levels
ATOL = 1e-12


@dataclass
class ConvexityReport:
    """Outcome of the probe. ``violations`` holds one dict per violated segment (its worst t)."""

    n_segments: int
    n_random: int
    n_between: int
    violations: list = field(default_factory=list)
    max_gap: float = 0.0            # largest J(t) - chord(t) seen, violating or not
    max_relative_gap: float = 0.0
    tolerance_rtol: float = 0.0
    summary: str = ""

    def to_dict(self) -> dict:
        return {"n_segments": self.n_segments, "n_random": self.n_random,
                "n_between_solutions": self.n_between, "n_violations": len(self.violations),
                "violations": self.violations, "max_gap": self.max_gap,
                "max_relative_gap": self.max_relative_gap, "rtol": self.tolerance_rtol,
                "summary": self.summary}


def _random_segments(rng: np.random.Generator, params: Params, n: int, radius: float,
                     normalize: str):
    """``(n, 2, D)`` endpoints around ``params``."""
    center = flatten(params).astype(np.float64)
    radii = rng.uniform(0.0, radius, (n, 2))
    dirs = random_directions(rng, params, 2 * n, normalize).reshape(n, 2, -1)
    return center[None, None] + radii[:, :, None] * dirs


def probe_convexity(surface: Surface, params: Params, *, n_random: int = 100,
                    solutions: Sequence[np.ndarray] = (), labels: Sequence = (),
                    radius: float = 1.0, normalize: str = "filter", seed: int = 0,
                    ts: Sequence[float] = INTERIOR_TS) -> ConvexityReport:
    """Test the chord inequality on ``n_random`` random segments around ``params`` and on
    every pair of flat ``solutions`` (``labels`` name them, e.g. their seeds).

    Every point of every segment is evaluated in one batched call.
    """
    if n_random < 0 or radius <= 0:
        raise ConfigError(f"convexity probe needs n_random >= 0 and radius > 0, got "
                          f"{n_random} and {radius}")
    ts = np.asarray(ts, float)
    if np.any((ts <= 0) | (ts >= 1)):
        raise ConfigError(f"interior points must lie strictly between 0 and 1, got {ts}")
    segs, names = [], []
    if n_random:
        segs.append(_random_segments(np.random.default_rng(seed), params, n_random, radius,
                                     normalize))
        names += [f"random segment {i}" for i in range(n_random)]
    sols = [np.asarray(s, np.float64) for s in solutions]
    labels = list(labels) or list(range(len(sols)))
    pairs = [(a, b) for a in range(len(sols)) for b in range(a + 1, len(sols))]
    if pairs:
        segs.append(np.stack([np.stack([sols[a], sols[b]]) for a, b in pairs]))
        names += [f"solutions {labels[a]} and {labels[b]}" for a, b in pairs]
    if not segs:
        raise ConfigError("nothing to probe: ask for random segments or give >= 2 solutions")
    ends = np.concatenate(segs)                                      # (S, 2, D)
    S = len(ends)
    all_t = np.concatenate([[0.0, 1.0], ts])                         # (T,)
    pts = (1 - all_t)[None, :, None] * ends[:, :1] + all_t[None, :, None] * ends[:, 1:]
    values = surface.points(pts.reshape(-1, ends.shape[-1]))[0].reshape(S, len(all_t))
    ju, jv = values[:, :1], values[:, 1:2]
    chord = (1 - ts) * ju + ts * jv                                  # (S, len(ts))
    gap = values[:, 2:] - chord
    scale = np.maximum(np.abs(ju), np.abs(jv))
    rtol = RTOL[surface.x64]
    bad = gap > rtol * scale + ATOL
    violations = []
    for s in np.flatnonzero(bad.any(axis=1)):
        k = int(np.argmax(gap[s]))
        violations.append({"segment": names[s], "t": float(ts[k]),
                           "value": float(values[s, 2 + k]), "chord": float(chord[s, k]),
                           "gap": float(gap[s, k]),
                           "relative_gap": float(gap[s, k] / max(scale[s, 0], ATOL))})
    violations.sort(key=lambda v: -v["relative_gap"])
    rel = gap / np.maximum(scale, ATOL)
    report = ConvexityReport(S, n_random, len(pairs), violations, float(gap.max()),
                             float(rel.max()), rtol)
    report.summary = _summary(report)
    return report


def _summary(r: ConvexityReport) -> str:
    where = f"{r.n_segments} segments ({r.n_random} random, {r.n_between} between solutions)"
    if not r.violations:
        return (f"no violation in {where}; largest J(t) - chord(t) = {r.max_gap:.3g} "
                f"(relative {r.max_relative_gap:.2g}, tolerance {r.tolerance_rtol:g})")
    v = r.violations[0]
    return (f"{len(r.violations)} violations in {where}: the objective is not convex. Largest: "
            f"on {v['segment']} at t = {v['t']:g}, J = {v['value']:.4g} exceeds the chord "
            f"{v['chord']:.4g} by {v['gap']:.3g} ({100 * v['relative_gap']:.2f}%)")
