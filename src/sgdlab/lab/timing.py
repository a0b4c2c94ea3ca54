"""Time to target, measured fairly: each seed's steps replayed, interleaved, in rounds.

The searches find, per batch size, the learning rate and each seed's whole steps to the target
``S`` (exact: a seed's run is deterministic). Time is measured apart, by **replaying** each
seed's run for exactly ``S`` steps with nothing in between: the same configuration, the same
compiled program, no evaluation until the end, so the run is cut into as few compiled calls as
the program allows (``ceil(S / K)``) and the clock counts the steps themselves. Training is
deterministic, so the replay retraces the evaluated run step for step and its training time
is that run's time to the target, without the evaluations that found the crossing.

Fair in time: the replays of every batch size and seed are run in ``rounds`` rounds, each in
a fresh random order (seeded), and each seed's time is the median of its rounds. A change of
machine load during the measurement then hits every batch size alike instead of the ones
measured last. After the first round only the replays within :data:`CONTENDERS` times the
fastest median are repeated: the others are clearly slower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .measure import median

#: After the first round only batch sizes within this factor of the fastest median repeat.
CONTENDERS = 1.5


@dataclass(frozen=True)
class Replay:
    """One seed's run to replay: ``steps`` whole steps at ``(batch_size, lr, seed)``."""

    batch_size: int
    lr: float
    seed: int
    steps: int

    @property
    def group(self):
        """What the rounds compare (:func:`contenders`): the batch size."""
        return self.batch_size


@dataclass(frozen=True)
class ReplayTimes:
    """``seconds[i]``: the training seconds of ``replays[i]`` in every round it ran (the
    median is its time to target); ``calls[i]``: compiled calls each replay made."""

    replays: tuple
    seconds: tuple
    calls: tuple
    rounds: int

    def time(self, i: int) -> float:
        return median(self.seconds[i])

    def by_batch(self) -> dict:
        """``{B: [(seed, seconds), ...]}`` in the replays' order."""
        out: dict = {}
        for i, r in enumerate(self.replays):
            out.setdefault(r.batch_size, []).append((r.seed, self.time(i)))
        return out

    def spread(self) -> float:
        """The median relative spread (max / min - 1) between a replay's rounds: the timing
        noise of this measurement (NaN with one round)."""
        rel = [max(s) / min(s) - 1 for s in self.seconds if len(s) > 1 and min(s) > 0]
        return float(np.median(rel)) if rel else math.nan


def time_replays(replays: list, replay: Callable[[Replay], tuple], *, rounds: int = 3,
                 seed: int = 0, progress: Callable[[], None] | None = None) -> ReplayTimes:
    """Run every replay ``rounds`` times, each round in a new random order (see the module
    docstring). ``replay(r) -> (training seconds, compiled calls)``."""
    seconds = [[] for _ in replays]
    calls = [0] * len(replays)
    rng = np.random.default_rng([seed, len(replays)])
    active = list(range(len(replays)))
    for k in range(max(1, rounds)):
        for i in rng.permutation(active):
            t, calls[i] = replay(replays[i])
            seconds[i].append(t)
            if progress:
                progress()
        if k == 0:
            active = contenders(replays, seconds)
    return ReplayTimes(tuple(replays), tuple(tuple(s) for s in seconds), tuple(calls),
                       max(1, rounds))


def contenders(replays: list, seconds: list) -> list:
    """Indices of the replays of batch sizes (of groups: a replay's ``group``, e.g. a batch
    schedule beside fixed batch sizes) whose median time is within :data:`CONTENDERS` of the
    fastest one's."""
    per_b: dict = {}
    for r, s in zip(replays, seconds):
        per_b.setdefault(r.group, []).append(median(s))
    medians = {b: median(t) for b, t in per_b.items()}
    best = min(medians.values(), default=math.inf)
    keep = {b for b, m in medians.items() if m <= CONTENDERS * best}
    return [i for i, r in enumerate(replays) if r.group in keep]


def planned(replays: list, rounds: int) -> int:
    """The most replays :func:`time_replays` will run (for a progress bar)."""
    return len(replays) * max(1, rounds)
