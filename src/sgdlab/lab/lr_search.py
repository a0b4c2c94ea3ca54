"""The learning-rate search of one batch size: a bracket on a log grid, widened until the best
point is interior, then refined by halving the spacing down to a resolution.

Batch sizes must be compared each at its own best learning rate (Shallue et al. 2018: neither
linear nor square-root scaling holds everywhere), so the scaling rule only gives the search its
centre ``lr_0(B)``. A point is an exponent ``x``:

.. math:: \\mathrm{lr}(x) = \\mathrm{lr}_0(B) \\, f^{\\,x},

with ``f`` the search factor (4 by default). The search is a small state machine driven from
outside (:meth:`LrSearch.propose` says which points it needs next, :meth:`LrSearch.tell` gives
it their outcomes), so the sweep can run the points of every batch size interleaved, or in
parallel, and the search stays deterministic: the same outcomes give the same points.

1. **Centre**: ``x = 0`` alone (its steps to target cap the runs of the next points).
2. **Bracket**: ``x = +1`` and ``x = -1``; then, while the best point is the highest tried, one
   higher (unless a seed diverged above the best: divergence closes the upper side), while it
   is the lowest, one lower.
3. **Refinement**: the spacing halves (``f^{1/2}``, ``f^{1/4}``, ...) down to the resolution
   (``2^{1/4}`` by default, finer than a factor-sqrt(2) grid), each level trying the best
   point's two neighbours at that spacing. Between levels the sweep may stop a batch size
   whose time cannot come near the best one (``worth_refining``): refining by a spacing ``s``
   gains at most about ``sqrt(s)`` when steps go as ``1 / lr``.

Points are ranked by :func:`rank` on their outcome over the seeds: within one batch size every
learning rate runs the same compiled program, so time to target is steps to target times one
step cost, and the ranking uses median *steps* (exact for the given seeds, free of timing
noise); batch sizes are compared by time elsewhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from ..errors import ConfigError

#: Learning rates outside this range are never tried.
LR_RANGE = (1e-8, 1e8)
#: Default ratio of neighbouring learning rates at the finest level (finer than sqrt(2)).
RESOLUTION = 2 ** 0.25


@dataclass(frozen=True)
class Outcome:
    """One learning rate's result over its seeds.

    ``steps`` holds each seed's whole steps to the target (``inf`` for a seed that missed
    it: diverged, or stopped at its cap first); ``cap`` is the most steps a seed was allowed
    (None: no cap besides the run's own budget); ``final_median`` the median validation
    value at the end of the seeds' runs (NaN when none is finite).
    """

    lr: float
    seeds: int
    reached: int
    diverged: int
    steps_median: float
    final_median: float
    steps: tuple = ()
    cap: int | None = None

    @property
    def failed(self) -> bool:
        """Diverged for some seed, or missed the target in the median."""
        return self.diverged > 0 or not math.isfinite(self.steps_median)


def rank(o: Outcome) -> tuple:
    """Sort key, lower is better.

    1. The median seed reached the target and no seed diverged: by median steps. A point
       whose median seed was stopped at a cap of ``c`` steps without diverging ranks here too,
       as ``c + 1/2`` steps: it is slower than every point that reached within ``c`` steps,
       but may be faster than one that needed more (a cap set after the best learning rate
       so far proved slow), so the search keeps exploring beyond it instead of settling on a
       slow point. Ties: the better final metric.
    2. Reached with some divergence, by median steps.
    3. Missed without a cap and without divergence, by final metric; then some divergence;
       then every seed diverged (lower learning rates first).
    """
    final = o.final_median if math.isfinite(o.final_median) else -math.inf
    if math.isfinite(o.steps_median):
        return (0, o.steps_median, -final) if o.diverged == 0 else (1, o.steps_median,
                                                                     o.diverged)
    if o.diverged == 0 and o.cap is not None:
        return (0, o.cap + 0.5, -final)
    if o.diverged == 0:
        return (2, -final)
    if o.diverged < o.seeds:
        return (3, o.diverged, -final)
    return (4, o.lr)


def best_of(tried: dict) -> float:
    """The exponent of the best of ``tried`` (``{x: Outcome}``) by :func:`rank` (ties: nearest
    the centre, then lower), among the points whose median seed reached the target when any
    did: a point stopped at a cap is ranked optimistically only to steer the search, never
    kept over one that reached (its cap may have been set before any point reached)."""
    reached = [x for x, o in tried.items() if math.isfinite(o.steps_median)]
    return min(reached or tried, key=lambda x: rank(tried[x]) + (abs(x), x))


#: A point is "at a cliff" when the next learning rate up takes this many times its steps.
CLIFF = 1.5


def kept_of(tried: dict, spacing: float) -> float:
    """The exponent of the learning rate to keep: the best point (:func:`best_of`) among
    those that are not at a cliff, i.e. whose next learning rate up, at the finest spacing
    (``0 < y - x <= spacing``), reached the target without divergence in at most
    :data:`CLIFF` times their median steps (a point whose next one up was not tried counts as
    safe); the best point when every one is at a cliff.

    Steps fall with the learning rate up to an edge of stability and then rise steeply, so the
    point with the fewest steps over three seeds is often the last one before the edge, kept
    because its seeds were lucky: fresh seeds there take much longer, or diverge. The point
    below it has nearly as few steps and a safe margin, which fresh seeds confirm."""
    def at_cliff(x: float) -> bool:
        o = tried[x]
        up = [tried[y] for y in tried if 0 < y - x <= spacing * (1 + 1e-9)]
        return any(u.diverged or not u.steps_median <= CLIFF * o.steps_median for u in up)

    safe = {x: o for x, o in tried.items() if math.isfinite(o.steps_median) and
            not at_cliff(x)}
    return best_of(safe) if safe else best_of(tried)


@dataclass
class LrSearch:
    """The search of the module docstring for one batch size; ``tried`` maps ``x`` to its
    :class:`Outcome` in the order they were told."""

    centre: float
    factor: float = 4.0
    resolution: float = RESOLUTION
    max_points: int = 12
    tried: dict = field(default_factory=dict)
    spacing: float = 1.0
    pending: tuple = ()
    stopped: str = ""

    def __post_init__(self):
        if not self.factor > 1:
            raise ConfigError(f"search factor must be > 1, got {self.factor}; e.g. "
                              "--search-factor 4")
        if not 1 < self.resolution <= self.factor:
            raise ConfigError(f"learning-rate resolution must be > 1 and at most the search "
                              f"factor ({self.factor:g}), got {self.resolution}")
        if not LR_RANGE[0] <= self.centre <= LR_RANGE[1]:
            raise ConfigError(f"the learning rate {self.centre:g} lies outside "
                              f"{LR_RANGE[0]:g} to {LR_RANGE[1]:g}; choose --lr (and "
                              "--lr-scaling) so that the scaled learning rate is in that range")

    def lr(self, x: float) -> float:
        return self.centre * self.factor ** x

    @property
    def done(self) -> bool:
        return bool(self.stopped)

    def best(self) -> float:
        """The exponent of the best point told so far (:func:`best_of`)."""
        return best_of(self.tried)

    def kept(self) -> float:
        """The exponent of the learning rate the search keeps: :func:`kept_of` at the finest
        spacing once the search refined down to it, else the best point (a search stopped
        earlier has only coarse neighbours, too far apart to judge a cliff by)."""
        if self.stopped != "resolution":
            return best_of(self.tried)
        return kept_of(self.tried, self.spacing)

    def bracketed(self) -> bool:
        """Whether the best point has been tried on both sides at the coarse spacing (or a
        side is closed by divergence or the range): widening is over."""
        best = self.best()
        return not any(self._open(best, x) for x in (best + 1, best - 1))

    def tell(self, x: float, outcome: Outcome) -> None:
        self.tried[x] = outcome
        self.pending = tuple(p for p in self.pending if p != x)

    def propose(self, worth_refining: Callable[[float], bool] | None = None) -> list:
        """The exponents to run next (every seed of each), ``[]`` when the search waits for
        pending points or is done. ``worth_refining(spacing_factor)`` is asked before each
        refinement level: False ends the search there."""
        if self.pending or self.stopped:
            return []
        if not self.tried:
            return self._ask([0.0])
        if len(self.tried) >= self.max_points:
            return self._stop("points")
        best = self.best()
        if self.spacing == 1.0:
            wanted = [x for x in (best + 1, best - 1) if self._open(best, x)]
            if wanted:
                return self._ask(wanted)
        if self.factor ** (self.spacing / 2) < self.resolution * (1 - 1e-9):
            return self._stop("resolution")
        if worth_refining is not None and not worth_refining(self.factor ** self.spacing):
            return self._stop("behind")
        while self.factor ** (self.spacing / 2) >= self.resolution * (1 - 1e-9):
            self.spacing /= 2
            wanted = [x for x in (best + self.spacing, best - self.spacing)
                      if x not in self.tried and self._in_range(x)]
            if wanted:
                return self._ask(wanted[: self.max_points - len(self.tried)])
        return self._stop("resolution")

    # -- helpers ------------------------------------------------------------------------------
    def _ask(self, xs: list) -> list:
        xs = [x for x in xs if x not in self.tried and self._in_range(x)]
        if not xs:
            return self._stop("range")
        self.pending = tuple(xs)
        return list(xs)

    def _stop(self, why: str) -> list:
        self.stopped = why
        return []

    def _in_range(self, x: float) -> bool:
        return LR_RANGE[0] <= self.lr(x) <= LR_RANGE[1]

    def _open(self, best: float, x: float) -> bool:
        """Whether the bracket stage still needs point ``x`` (a neighbour of the best at the
        coarse spacing): untried, in range, and above the best only when no seed diverged at
        or below ``x`` above the best (divergence closes the upper side)."""
        if x in self.tried or not self._in_range(x):
            return False
        if x > best:
            return not any(o.diverged for y, o in self.tried.items() if best <= y <= x)
        return True


@dataclass
class FixedPoints(LrSearch):
    """The search's interface over fixed exponents ``xs`` (``--lr-grid``, or the scaling
    rule's learning rate alone): every point in the first round, then done."""

    xs: tuple = ()

    def kept(self) -> float:
        """A grid keeps its best point as it is (every point was tried alike)."""
        return best_of(self.tried)

    def bracketed(self) -> bool:
        return True

    def propose(self, worth_refining=None) -> list:
        if self.stopped:
            return []
        self.stopped = "fixed"
        return list(self.xs)


def at_edge(lrs: list, chosen_lr: float) -> str | None:
    """``"lowest"`` or ``"highest"`` when the kept learning rate is the lowest or highest of
    three or more tried (the optimum may lie beyond), else None."""
    lrs = sorted(lrs)
    if len(lrs) < 3:
        return None
    if chosen_lr == lrs[0]:
        return "lowest"
    if chosen_lr == lrs[-1]:
        return "highest"
    return None
