"""The learning-rate search of one batch size: a bracket on a log grid, widened until the best
point is interior, then refined once.

Batch sizes must be compared each at its own best learning rate (Shallue et al. 2018: neither
linear nor square-root scaling holds everywhere), so the scaling rule only gives the search its
centre ``lr_0(B)``. The points lie on the grid

.. math:: \\mathrm{lr}_j = \\mathrm{lr}_0(B) \\, f^{\\,j}, \\qquad j \\in \\tfrac12 \\mathbb{Z},

with ``f`` the search factor (4 by default). The search

1. tries ``j = 0, 1, -1``;
2. while the best point is the highest one tried, tries one higher (unless that point already
   had a seed diverge: divergence closes the upper side); while it is the lowest, one lower;
3. refines once between the best point and the neighbour where the optimum more likely lies
   (``j +- 1/2``): toward a higher neighbour that diverged or missed the target (steps to
   target fall with the learning rate up to the stability edge), else toward the better
   neighbour;

at most ``max_points`` points in all. Each point is every seed at that learning rate, and
points are ranked by :func:`rank` on their outcome over the seeds. Within one batch size every
learning rate runs the same compiled program, so time to target is steps to target times one
step cost: the ranking uses median *steps* (exact, free of timing noise), and the comparison
*between* batch sizes uses time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..errors import ConfigError

#: Learning rates outside this range are never tried.
LR_RANGE = (1e-8, 1e8)


@dataclass(frozen=True)
class Outcome:
    """One learning rate's result over its seeds."""

    lr: float
    seeds: int
    reached: int            # seeds that reached the target
    diverged: int           # seeds that diverged
    steps_median: float     # median steps to target over seeds (inf when the median missed)
    final_median: float     # median final validation metric (NaN when none is finite)


def rank(o: Outcome) -> tuple:
    """Sort key, lower is better: every seed reached, by median steps; then a majority
    reached (some seeds missed or diverged), by median steps; then no divergence, by final
    metric; then some divergence; then every seed diverged (lower learning rates first).
    Equal keys are broken by :func:`closeness` to the scaling rule's learning rate.
    """
    final = o.final_median if math.isfinite(o.final_median) else -math.inf
    if o.reached == o.seeds:
        return (0, o.steps_median)
    if math.isfinite(o.steps_median):
        return (1, o.steps_median, o.diverged)
    if o.diverged == 0:
        return (2, -final)
    if o.diverged < o.seeds:
        return (3, o.diverged, -final)
    return (4, o.lr)


def closeness(lr: float, lr0: float) -> float:
    """``|log(lr / lr0)|``: among points of equal :func:`rank` (a plateau of equal steps, a
    target every learning rate meets alike) the one nearest the rule's is kept, so a plateau
    neither pulls the search outward nor leaves the kept point at its edge."""
    return abs(math.log(lr / lr0))


def search_lr(evaluate: Callable[[float], Outcome], lr0: float, *, factor: float = 4.0,
              max_points: int = 8, refine: bool = True) -> dict:
    """Run the search of the module docstring; ``-> {j: Outcome}`` of every point tried.

    ``evaluate(lr)`` trains every seed at ``lr`` and summarises them. Points are evaluated in
    the order this function asks for them, so a deterministic ``evaluate`` gives a
    deterministic search.
    """
    if factor <= 1:
        raise ConfigError(f"search factor must be > 1, got {factor}; e.g. --search-factor 4")
    tried: dict = {}

    def lr_at(j: float) -> float:
        return lr0 * factor ** j

    def try_(j: float) -> bool:
        if j in tried or len(tried) >= max_points:
            return False
        lr = lr_at(j)
        if not LR_RANGE[0] <= lr <= LR_RANGE[1]:
            return False
        tried[j] = evaluate(lr)
        return True

    for j in (0, 1, -1):
        try_(j)
    if not tried:
        raise ConfigError(f"the learning rates around {lr0:g} lie outside {LR_RANGE[0]:g} to "
                          f"{LR_RANGE[1]:g}; choose --lr (and --lr-scaling) so that the "
                          "scaled learning rate is in that range")
    # Keep one point for the refinement: widening alone must not use up the budget.
    def key(j: float) -> tuple:
        return rank(tried[j]) + (abs(j),)

    while len(tried) < max_points - int(refine):
        best = min(tried, key=key)
        whole = [j for j in tried if j == int(j)]
        if best == max(whole) and tried[best].diverged == 0 and try_(best + 1):
            continue
        if best == min(whole) and try_(best - 1):
            continue
        break
    if refine:
        best = min(tried, key=key)
        up, down = tried.get(best + 1), tried.get(best - 1)
        # Steps to target fall with the learning rate up to the edge of stability, so a
        # higher neighbour that failed (diverged, or its median missed) puts the optimum
        # between it and the best: refine upward.
        failed_up = up is not None and (up.diverged > 0 or not math.isfinite(up.steps_median))
        if up is not None and (failed_up or down is None or rank(up) < rank(down)):
            try_(best + 0.5)
        elif down is not None:
            try_(best - 0.5)
    return tried


def best_point(tried: dict) -> float:
    """The exponent ``j`` of the best point tried (see :func:`rank`; ties: nearest ``j = 0``)."""
    return min(tried, key=lambda j: rank(tried[j]) + (abs(j),))


def at_edge(points: list, chosen_lr: float) -> str | None:
    """``"lowest"`` or ``"highest"`` when the kept learning rate is the lowest or highest of
    three or more tried (the optimum may lie beyond: raise ``--search-points``), else None.
    ``points`` are the :class:`Outcome` of every learning rate tried at one batch size."""
    lrs = sorted(o.lr for o in points)
    if len(lrs) < 3:
        return None
    if chosen_lr == lrs[0]:
        return "lowest"
    if chosen_lr == lrs[-1]:
        return "highest"
    return None
