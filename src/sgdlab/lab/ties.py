"""Is the fastest batch size really faster? A bootstrap over seeds, and the rule for ties.

Each batch size ``B`` has one time to target per seed, ``t_B = (t_1 .. t_s)`` (``inf`` when a
seed missed the target). The winner ``W`` has the lowest median. For every other batch size
the seeds of both are resampled with replacement ``R`` times and

.. math:: p_B = \\Pr^*\\left[\\operatorname{median}(t_B^*) > \\operatorname{median}(t_W^*)
          \\right]

is the share of resamples in which ``B`` stays slower. ``B`` is *distinguishable* from the
winner when ``p_B >= LEVEL`` (0.95); otherwise the two are *tied*: the measurements cannot
tell them apart. With three seeds a batch size is distinguishable only when its seeds' times
barely overlap the winner's, so a tie is an honest "within the noise", not a failure.

Among tied batch sizes whose every seed reached the target, the recommendation is the one with
the lowest median (:data:`RULE`; then the larger batch): the measurements cannot rank them, so
the best point estimate stands, and the report names the others as equally good within the
noise. (A rule that preferred the fastest slowest seed was tried and measured worse: with three
seeds it often picked a batch size whose median was much slower.)
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .measure import median

#: Bootstrap share above which a batch size counts as slower than the winner.
LEVEL = 0.95
#: Stand-in for the time of a seed that missed the target (``inf``) inside medians.
MISSED = 1e300
#: The stated rule among tied batch sizes.
RULE = ("the lowest median among the tied batch sizes whose every seed reached the target "
        "(the best point estimate; the others are as good within the noise)")


def p_slower(times: Sequence[float], winner: Sequence[float], resamples: int = 2000,
             seed: int = 0) -> float:
    """``p_B`` of the module docstring: how often ``times`` has the higher resampled median.

    ``inf`` entries (seeds that missed) are kept: a median that is ``inf`` is slower than any
    finite one; two ``inf`` medians count as not slower.
    """
    # A huge finite stand-in for inf: medians of two misses stay "missed", not NaN.
    a = np.minimum(np.asarray(times, float), MISSED)
    w = np.minimum(np.asarray(winner, float), MISSED)
    rng = np.random.default_rng(seed)
    med_a = np.median(a[rng.integers(0, len(a), (resamples, len(a)))], axis=1)
    med_w = np.median(w[rng.integers(0, len(w), (resamples, len(w)))], axis=1)
    return float(np.mean(med_a > med_w))


def tie_analysis(times_by_batch: dict, reached_all: dict) -> dict:
    """``{"fastest", "pick", "tied", "p_slower", "distinguishable"}`` from per-seed times.

    ``times_by_batch`` maps a batch size to its per-seed times to target (the chosen learning
    rate's); ``reached_all`` maps it to whether every seed reached. ``fastest`` has the lowest
    median (ties in the median: the smaller batch); ``tied`` lists every batch size that is
    not distinguishable from it (the fastest included), ``pick`` is :data:`RULE` applied to
    them. Batch sizes whose median missed the target are neither fastest nor tied.
    """
    medians = {b: median(t) for b, t in times_by_batch.items() if len(t)}
    finite = {b: m for b, m in medians.items() if math.isfinite(m)}
    if not finite:
        return {"fastest": None, "pick": None, "tied": [], "p_slower": {},
                "distinguishable": False}
    fastest = min(finite, key=lambda b: (finite[b], b))
    p = {b: p_slower(times_by_batch[b], times_by_batch[fastest], seed=int(b))
         for b in finite if b != fastest}
    tied = sorted([fastest] + [b for b, v in p.items() if v < LEVEL])
    eligible = [b for b in tied if reached_all.get(b, False)] or [fastest]
    pick = min(eligible, key=lambda b: (finite[b], -b))
    return {"fastest": fastest, "pick": pick, "tied": tied, "p_slower": p,
            "distinguishable": len(tied) == 1}
