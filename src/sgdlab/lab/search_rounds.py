"""The learning-rate searches of every batch size, run together in rounds.

Each batch size has its own search (:class:`~.lr_search.LrSearch`, or fixed points for
``--lr-grid`` and the rule alone). A *round* asks every search for the points it needs next,
fixes each point's step cap (:mod:`.caps`) from what the earlier rounds found, and runs the
first seed of every new point, and the other seeds of the points whose first seed reached the
target (a first seed that missed its cap or diverged condemns its point: the other seeds are
not run, so a bad learning rate costs one run, not one per seed). The runs of one round do
not depend on each other, so they could run in any order or in parallel, and the records are
the same. Between rounds the searches learn
their points' outcomes and the best predicted time to target ``T*`` over all batch sizes is
updated: it caps the next rounds' runs (a batch size more than :data:`~.caps.BEHIND` times
slower stops) and decides which batch sizes are still worth refining.

Round 0 runs the centre of the batch size nearest the base batch alone, so that every other
batch size's first runs already have a time to beat.

Steps to target decide everything here (exact for the given seeds); time enters only through
the throughput probe's cost of a step (:class:`~.caps.StepCost`), to turn steps into a
predicted time for the caps. The final comparison of batch sizes by measured time is
:mod:`.timing`'s.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

from ..engine.config import TrainConfig
from .caps import BEHIND, FIRST_EPOCHS, StepCost, budget_steps, run_cap
from .lr_search import Outcome
from .measure import final_metric, median, metric_name, steps_to_target, whole_median
from .records import RunRecord
from .runbook import RunBook, RunRequest

#: A batch size is refined only while its predicted time is within this factor of the best
#: times the largest gain the refinement could bring (sqrt of the current spacing).
REFINE_SLACK = 1.1


def outcome_of(records: list[RunRecord], target: float | None, cap: int | None) -> Outcome:
    """One learning rate's :class:`~.lr_search.Outcome` over its seeds' records."""
    metric = metric_name(records[0].history)
    steps = tuple(steps_to_target(r.history, target, metric) for r in records)
    finals = [final_metric(r.history, metric) for r in records]
    finite = [f for f in finals if math.isfinite(f)]
    return Outcome(lr=records[0].lr, seeds=len(records),
                   reached=sum(math.isfinite(s) for s in steps),
                   diverged=sum(r.status == "diverged" for r in records),
                   steps_median=whole_median(steps),
                   final_median=median(finite) if finite else math.nan,
                   steps=steps, cap=cap)


class SearchRounds:
    """Run the searches of every batch size (module docstring); :meth:`run` returns them.

    ``config_for(B, lr, seed, max_steps, expected_steps)`` is the :class:`TrainConfig` of one
    run (``expected_steps`` sets how often it evaluates, None when nothing is known yet);
    ``costs`` maps a batch size to its :class:`~.caps.StepCost` (probe), or is empty (then
    each batch size's cost is estimated from its own runs); ``budget`` is the parsed
    ``--budget`` (``{}`` for none); ``make_search(B)`` builds a batch size's search.
    ``known_steps`` (``{B: steps}``): steps to the target known before the rounds (the
    pilot's), which set how often the runs evaluate until a point of a search reaches it.
    """

    def __init__(self, book: RunBook, sizes: tuple, *, seeds: list, target: float | None,
                 config_for: Callable[..., TrainConfig], make_search: Callable,
                 costs: dict, budget: dict, steps_per_epoch: dict, first_batch: int,
                 lr_multiplier: Callable[[int, float], float],
                 known_steps: dict | None = None):
        self.book, self.sizes, self.seeds, self.target = book, sizes, seeds, target
        self.config_for, self.costs, self.budget = config_for, dict(costs), budget
        self.spe, self.first_batch, self.lr_multiplier = steps_per_epoch, first_batch, \
            lr_multiplier
        self.known_steps = dict(known_steps or {})
        self.searches = {b: make_search(b) for b in sizes}
        self.reasons: dict = {}      # (B, x) -> cap reason of that point's runs
        self.first: dict = {}        # (B, x) -> (request, record) of a first seed that reached
        self.rounds = 0

    # -- what the rounds know ---------------------------------------------------------------
    def cost(self, b: int) -> StepCost | None:
        return self.costs.get(b)

    def predicted(self, b: int) -> float:
        """Predicted training seconds to the target of batch size ``b``'s best point so far
        (``inf`` when it has none that reached)."""
        s = self.searches[b]
        cost = self.cost(b)
        if not s.tried or cost is None:
            return math.inf
        return cost.seconds(s.tried[s.best()].steps_median)

    def best_seconds(self) -> float | None:
        """``T*``: the lowest predicted time to target over batch sizes, None before any."""
        t = min((self.predicted(b) for b in self.sizes), default=math.inf)
        return t if math.isfinite(t) else None

    def worth_refining(self, b: int, spacing_factor: float) -> bool:
        best = self.best_seconds()
        if best is None:
            return True
        return self.predicted(b) <= best * REFINE_SLACK * math.sqrt(spacing_factor)

    def behind(self, b: int) -> bool:
        """Whether batch size ``b`` cannot win: its best point is more than
        :data:`~.caps.BEHIND` times slower than the best batch size (reached, in a predicted
        time over that; or, when none reached, stopped at the behind-cap), and the bracket
        around it is complete. (While the best is at the edge of the points tried, the
        search widens on: the scaling rule's centre may be far off.)"""
        s = self.searches[b]
        best_seconds, cost = self.best_seconds(), self.cost(b)
        if not s.tried or best_seconds is None or cost is None or not s.bracketed():
            return False
        x = s.best()
        o = s.tried[x]
        if not math.isfinite(o.steps_median):
            return self.reasons.get((b, x)) == "behind"
        return cost.seconds(o.steps_median) > BEHIND * best_seconds

    def expected_steps(self, b: int) -> float | None:
        """The steps batch size ``b`` may be expected to need: its best point's so far, else
        the nearest batch size's that reached, scaled to the same examples (perfect scaling),
        else the same from ``known_steps``; None when nothing reached. Sets how often its
        next runs evaluate."""
        s = self.searches[b]
        if s.tried and math.isfinite(s.tried[s.best()].steps_median):
            return s.tried[s.best()].steps_median
        known = [(o, s.tried[s.best()].steps_median) for o, s in self.searches.items()
                 if s.tried and math.isfinite(s.tried[s.best()].steps_median)]
        known = known or list(self.known_steps.items())
        if not known:
            return None
        other, steps = min(known, key=lambda k: (abs(math.log(k[0] / b)), k[0]))
        return steps * other / b

    # -- the rounds -------------------------------------------------------------------------
    def order(self) -> list:
        """Batch sizes nearest (in ratio) the best one so far first (the first batch before
        any reached), so a round's caps are tight early."""
        best = min(self.sizes, key=lambda b: (self.predicted(b), b))
        if not math.isfinite(self.predicted(best)):
            best = self.first_batch
        return sorted(self.sizes, key=lambda b: (abs(math.log(b / best)), b))

    def requests(self) -> list[RunRequest]:
        """Every run of the next round (empty when every search is done): the other seeds of
        the points whose first seed promised well, and the first seed of each new point."""
        best_seconds = self.best_seconds()
        out = []
        for b in self.order():
            s = self.searches[b]
            waiting = [key for key in self.first if key[0] == b]
            for key in waiting:
                first_req, _ = self.first[key]
                for seed in self.seeds[1:]:
                    out.append(dataclasses.replace(first_req, config=first_req.config.replace(
                        seed=seed)))
            if waiting or s.done or (self.rounds == 0 and b != self.first_batch):
                continue
            if self.behind(b):
                s.stopped = "behind"
                continue
            xs = s.propose(lambda f, b=b: self.worth_refining(b, f))
            if not xs:
                continue
            within = s.tried[s.best()].steps_median if s.tried else None
            cap, reason = run_cap(budget=budget_steps(self.budget, self.spe[b], self.cost(b)),
                                  first=math.ceil(FIRST_EPOCHS * self.spe[b]),
                                  best_seconds=best_seconds, cost=self.cost(b), within=within)
            expected = self.expected_steps(b)
            for x in xs:
                self.reasons[(b, x)] = reason
                lr = s.lr(x)
                out.append(RunRequest(self.config_for(b, lr, self.seeds[0], cap, expected),
                                      "search", self.lr_multiplier(b, lr), x, reason))
        return out

    def run(self, on_round: Callable[[int], None] | None = None) -> dict:
        """Run rounds until every search is done; ``-> {B: search}``."""
        while self.first or not all(s.done for s in self.searches.values()):
            requests = self.requests()
            self.rounds += 1
            if not requests:
                continue
            records = self.book.run_all(requests)
            self.tell(requests, records)
            if on_round:
                on_round(self.rounds)
        return self.searches

    def tell(self, requests: list[RunRequest], records: list[RunRecord]) -> None:
        """Give each search the outcomes of its points whose seeds are all in: a point's
        first seed alone when it failed (missed its cap, or diverged: the others would fail
        too, so they are not run), else every seed once the others come back."""
        groups: dict = {}
        for req, rec in zip(requests, records):
            groups.setdefault((req.config.batch_size, req.x), []).append((req, rec))
        for key, pairs in groups.items():
            b, x = key
            if key in self.first:                       # the other seeds are in
                pairs = [self.first.pop(key)] + pairs
            elif len(self.seeds) > 1:                   # a first seed
                _, rec = pairs[0]
                if rec.status != "diverged" and math.isfinite(
                        steps_to_target(rec.history, self.target)):
                    self.first[key] = pairs[0]
                    continue
            cap = pairs[0][0].config.max_steps
            self.searches[b].tell(x, outcome_of([rec for _, rec in pairs], self.target, cap))
            if not self.costs.get(b):
                self.costs[b] = measured_cost(b, [rec for _, rec in pairs])


def measured_cost(b: int, records: list[RunRecord]) -> StepCost | None:
    """A batch size's step cost from its runs' own training seconds per step (when no
    throughput probe ran); None when no run made a step."""
    per_step = [r.summary["train_seconds"] / r.summary["steps"] for r in records
                if r.summary.get("steps") and r.summary.get("train_seconds")]
    if not per_step:
        return None
    return StepCost(b, median(per_step), 0.0, 1)


def rescore(searches: dict, records: list[RunRecord], target: float) -> None:
    """Every point's outcome again against ``target`` (runs trained for their whole budget,
    whose target was chosen after them)."""
    for b, s in searches.items():
        for x, o in list(s.tried.items()):
            mine = [r for r in records if r.phase == "search" and r.batch_size == b
                    and r.x == x]
            if mine:
                s.tried[x] = outcome_of(mine, target, o.cap)
