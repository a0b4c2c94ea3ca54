"""Restarts: train one configuration with K seeds and measure how far apart the solutions are.

A convex objective (a linear model with a convex loss and an L2 term, which makes it strictly
convex) has exactly one minimiser, so K restarts that converge land on the same point whatever
their initialisation and batch order. A neural network has many minima of (nearly) equal
predictive power, so restarts land far apart while their accuracies agree. The distance
between two solutions ``w_a, w_b`` (flattened parameter vectors) is the relative distance::

    dist(a, b) = |w_a - w_b| / (|w_a| + |w_b|)         in [0, 1]

which is 0 for identical solutions and does not depend on the overall scale of the weights.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ..engine import train
from ..engine.result import FitResult
from ..errors import ConfigError
from .surface import Problem, flatten, relative_distance

__all__ = ["RestartReport", "run_restarts", "verdict", "SAME_BELOW", "EQUAL_ACCURACY_POINTS"]

#: mean relative distance below which restarts count as one solution. Converged convex runs
#: reach ~1e-4 or less; constant-step SGD stops at a noise floor of order 1e-2; distinct minima
#: of a network sit at 0.3 and more.
SAME_BELOW = 0.01
#: largest spread of validation accuracy, in percentage points, still called "equal".
EQUAL_ACCURACY_POINTS = 2.0


@dataclass
class RestartReport:
    """K solutions of one configuration and how they compare.

    ``distances: (K, K)`` pairwise relative distances, ``val_accuracy``, ``val_loss``: ``(K,)``.
    """

    seeds: list
    results: list = field(repr=False)
    distances: np.ndarray
    val_accuracy: np.ndarray
    val_loss: np.ndarray
    kind: str
    summary: str

    @property
    def pairwise(self) -> np.ndarray:
        """The K (K - 1) / 2 distinct pairwise distances."""
        return self.distances[np.triu_indices(len(self.seeds), 1)]

    @property
    def mean_distance(self) -> float:
        return float(self.pairwise.mean())

    @property
    def accuracy_spread_points(self) -> float:
        """``(max - min)`` validation accuracy in percentage points (NaN for regression)."""
        return float(100.0 * (np.max(self.val_accuracy) - np.min(self.val_accuracy)))

    def to_dict(self) -> dict:
        return {"seeds": list(self.seeds), "kind": self.kind, "summary": self.summary,
                "mean_distance": self.mean_distance,
                "max_distance": float(self.pairwise.max()),
                "min_distance": float(self.pairwise.min()),
                "distances": self.distances.tolist(),
                "val_accuracy": self.val_accuracy.tolist(),
                "val_loss": self.val_loss.tolist(),
                "accuracy_spread_points": self.accuracy_spread_points,
                "val_loss_spread": float(np.ptp(self.val_loss)),
                "thresholds": {"same_below": SAME_BELOW,
                               "equal_accuracy_points": EQUAL_ACCURACY_POINTS}}


def distance_matrix(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """``(K, K)`` symmetric matrix of :func:`relative_distance`, zero diagonal."""
    k = len(vectors)
    out = np.zeros((k, k))
    for a, b in itertools.combinations(range(k), 2):
        out[a, b] = out[b, a] = relative_distance(vectors[a], vectors[b])
    return out


def verdict(mean_distance: float, accuracy_spread_points: float) -> tuple[str, str]:
    """``(kind, sentence)`` saying which case the restarts are in, with the numbers.

    kinds: ``convex-like`` (solutions coincide), ``non-convex`` (distinct solutions, equal
    accuracy), ``unsettled`` (in between: close but not equal, e.g. a convex objective not yet
    converged, or SGD noise), ``unequal`` (distinct solutions whose accuracies differ).
    """
    d, s = mean_distance, accuracy_spread_points
    acc = "n/a" if np.isnan(s) else f"{s:.2f} points"
    if d < SAME_BELOW:
        return "convex-like", (f"convex-like: the solutions coincide (mean pairwise relative "
                               f"distance {d:.2e} < {SAME_BELOW:g}; validation accuracy spread "
                               f"{acc})")
    equal = np.isnan(s) or s <= EQUAL_ACCURACY_POINTS
    if d < 10 * SAME_BELOW:
        return "unsettled", (f"unsettled: the solutions are close but not equal (mean distance "
                             f"{d:.3f}); a convex objective that has not converged, or the noise "
                             f"floor of constant-step SGD, looks like this: train longer, lower "
                             f"the learning rate or raise the batch size (accuracy spread {acc})")
    if equal:
        return "non-convex", (f"non-convex: distinct solutions with equal accuracy (mean "
                              f"distance {d:.3f}, validation accuracy spread {acc} <= "
                              f"{EQUAL_ACCURACY_POINTS:g})")
    return "unequal", (f"distinct solutions of unequal quality (mean distance {d:.3f}, "
                       f"validation accuracy spread {acc} > {EQUAL_ACCURACY_POINTS:g}): some "
                       f"restarts ended in worse minima or have not converged")


def run_restarts(problem: Problem, seeds: Sequence[int] = (0, 1, 2, 3, 4),
                 on_result: Callable[[int, FitResult], None] | None = None,
                 callback_for: Callable[[int], Callable | None] | None = None) -> RestartReport:
    """Train ``problem.config`` once per seed on the problem's fixed split.

    The seed sets the initial parameters and the batch order; the split and standardisation
    are shared. ``on_result(seed, result)`` is called after each run (progress displays);
    ``callback_for(seed)`` may give a training callback per run.
    """
    seeds = [int(s) for s in seeds]
    if len(seeds) < 2:
        raise ConfigError(f"restarts need at least 2 seeds to compare, got {len(seeds)}; "
                          "use --seeds 5 (the default)")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"restart seeds must differ, got {seeds}")
    if problem.validation is None:
        raise ConfigError("restarts compare validation accuracy: set a validation fraction "
                          "> 0 (e.g. --validation-fraction 0.2)")
    results = []
    for s in seeds:
        cb = callback_for(s) if callback_for else None
        r = train(problem.train, problem.validation, problem.config.replace(seed=s),
                  model=problem.model, loss=problem.loss, standardizer=problem.standardizer,
                  callback=cb)
        results.append(r)
        if on_result:
            on_result(s, r)
    dist = distance_matrix([flatten(r.params) for r in results])
    metric = "val_accuracy" if problem.loss.target_kind != "real" else "val_r2"
    acc = np.array([r.history.last(metric) for r in results], float)
    loss = np.array([r.history.last("val_loss") for r in results], float)
    pair = dist[np.triu_indices(len(seeds), 1)]
    spread = 100.0 * float(np.ptp(acc))
    kind, summary = verdict(float(pair.mean()), spread)
    return RestartReport(seeds, results, dist, acc, loss, kind, summary)
