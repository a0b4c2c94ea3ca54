"""Which batch size to recommend: the fastest, the ones tied with it, and a rule among them.

Each batch size ``B`` has one time to target per seed, ``t_B = (t_1 .. t_s)`` (``inf`` when a
seed missed the target). The *fastest* ``W`` has the lowest median.

**Tied** (the measurements cannot tell them apart): for every other batch size the seeds of
both are resampled with replacement ``R`` times and

.. math:: p_B = \\Pr^*\\left[\\operatorname{median}(t_B^*) > \\operatorname{median}(t_W^*)
          \\right]

is the share of resamples in which ``B`` stays slower; ``B`` is tied with ``W`` when
``p_B < LEVEL`` (0.95), or when its median is within :data:`PICK_MARGIN` of the fastest
(equal for every practical purpose). A test needs :data:`MIN_SEEDS` seeds on both sides: with fewer, no
significance is claimed, and only batch sizes within :data:`PICK_MARGIN` of the fastest count
as tied.

**The pick** follows :data:`RULE`, which does not depend on which of several near-equal times
came out lowest in this measurement: among the batch sizes whose median is within
:data:`PICK_MARGIN` of the fastest and whose every seed reached the target, the one with the
fewest median steps to the target. Fewer steps is the larger batch, which parallelises best
(more devices, data parallelism); it is as fast as the fastest within the margin, so the
choice costs at most that much time. Steps are exact for the given seeds, so repeated sweeps
on the same data and seeds pick the same batch size unless a batch size's time sits right at
the margin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .measure import median

#: Bootstrap share above which a batch size counts as slower than the fastest.
LEVEL = 0.95
#: A significance test needs at least this many seeds per batch size.
MIN_SEEDS = 3
#: Batch sizes within this fraction of the fastest median are candidates of the pick. It sits
#: above the timing noise *between* batch sizes: on a 2-core CPU the per-step cost of batch
#: 128 over batch 64, measured in ten repeated demo sweeps, ranged 1.44 to 1.71 (+-9 % about
#: its middle), so a 5 % margin let that noise choose between two batch sizes whose times were
#: about 10 % apart (docs/sweep.md, "Repeated sweeps").
PICK_MARGIN = 0.10
#: Stand-in for the time of a seed that missed the target (``inf``) inside medians.
MISSED = 1e300
#: The stated rule of the pick.
RULE = (f"the fewest steps to the target among the batch sizes within {100 * PICK_MARGIN:.0f}% "
        "of the fastest median time whose every seed reached it (the largest such batch: it "
        "parallelises best and costs at most that much time)")


@dataclass(frozen=True)
class Decision:
    """``fastest`` (lowest median), ``pick`` (:data:`RULE`), ``near`` (the pick's candidates),
    ``tied`` (not distinguishable from the fastest, the fastest included), ``p_slower``
    (``{B: p_B}``) and ``tested`` (every batch size had :data:`MIN_SEEDS` seeds, so the tie
    is a test, not a margin)."""

    fastest: int | None = None
    pick: int | None = None
    near: tuple = ()
    tied: tuple = ()
    p_slower: dict = field(default_factory=dict)
    tested: bool = False

    @property
    def distinguishable(self) -> bool:
        """The fastest is faster than every other batch size beyond the noise."""
        return self.tested and len(self.tied) == 1


def p_slower(times: Sequence[float], winner: Sequence[float], resamples: int = 2000,
             seed: int = 0) -> float:
    """``p_B`` of the module docstring: how often ``times`` has the higher resampled median.

    ``inf`` entries (seeds that missed) are kept: a median that is ``inf`` is slower than any
    finite one; two ``inf`` medians count as not slower.
    """
    a = np.minimum(np.asarray(times, float), MISSED)
    w = np.minimum(np.asarray(winner, float), MISSED)
    rng = np.random.default_rng(seed)
    med_a = np.median(a[rng.integers(0, len(a), (resamples, len(a)))], axis=1)
    med_w = np.median(w[rng.integers(0, len(w), (resamples, len(w)))], axis=1)
    return float(np.mean(med_a > med_w))


def decide(times: dict, steps: dict, reached_all: dict) -> Decision:
    """The :class:`Decision` from ``times`` (``{B: per-seed times}``), ``steps`` (``{B:
    median steps}``) and ``reached_all`` (``{B: every seed reached}``). Batch sizes whose
    median missed the target are neither fastest, tied nor picked."""
    medians = {b: median(t) for b, t in times.items() if len(t)}
    finite = {b: m for b, m in medians.items() if math.isfinite(m)}
    if not finite:
        return Decision()
    fastest = min(finite, key=lambda b: (finite[b], b))
    tested = all(len(times[b]) >= MIN_SEEDS for b in finite)
    p = {b: p_slower(times[b], times[fastest], seed=int(b))
         for b in finite if b != fastest} if tested else {}
    near = tuple(sorted(b for b, m in finite.items()
                        if m <= (1 + PICK_MARGIN) * finite[fastest]))
    if tested:
        tied = tuple(sorted({fastest, *near, *(b for b, v in p.items() if v < LEVEL)}))
    else:
        tied = near
    eligible = [b for b in near if reached_all.get(b, False)] or [fastest]
    pick = min(eligible, key=lambda b: (steps.get(b, math.inf), -b))
    return Decision(fastest, pick, near, tied, p, tested)
