"""The confirmation: the recommendation trained again with seeds the search never saw.

The fresh seeds (``seed + CONFIRM_SEED_OFFSET + i``) are evaluated to find their steps to the
target, then replayed in one timing window *together with the sweep's own seeds at the same
point* (:mod:`.timing`), so the two are compared under the same machine load. A fresh median
outside the range of the sweep's seeds says the sweep's seeds were not typical (or the load
changed): the sweep then trains :data:`EXTRA_SEED_OFFSET` seeds more for every tied batch size,
times all their seeds in one window, and decides again with twice the seeds.
"""

from __future__ import annotations

import dataclasses
import math

from .caps import FIRST_EPOCHS, budget_steps, run_cap
from .measure import median, steps_to_target, whole_median
from .recommend import seconds_text as _t
from .runbook import RunBook, RunRequest
from .summary import Confirmation
from .tables import BatchRow, run_rows, status_text
from .ties import Decision, decide
from .timing import Replay, time_replays

#: Confirmation runs use seeds ``base.seed + CONFIRM_SEED_OFFSET + i``: fresh, never searched.
CONFIRM_SEED_OFFSET = 1000
#: Extra seeds of the tied batch sizes, when the confirmation contradicts the sweep.
EXTRA_SEED_OFFSET = 2000
#: At most this many tied batch sizes (nearest the pick) get extra seeds.
MAX_EXTENDED = 6


def confirm_pick(book: RunBook, batches: list[BatchRow], decision: Decision, *, seeds: list,
                 target: float | None, metric: str, config_for, costs: dict, budget: dict,
                 spe: dict, replay, rounds: int, order_seed: int, rebuild, emit):
    """``-> (Confirmation, batches, decision, ReplayTimes of the extra window or None)``.

    ``seeds`` are the sweep's seeds; ``rebuild(extra_runs, times)`` returns the batch rows
    again with ``extra_runs`` (:class:`~.tables.RunRow`) joining their points and ``times``
    the replays of the extended batch sizes.
    """
    pick = next(r for r in batches if r.batch_size == decision.pick)
    b, lr = pick.batch_size, pick.lr
    fresh = [s + CONFIRM_SEED_OFFSET for s in seeds]
    cost = costs.get(b)
    cap, reason = run_cap(budget=budget_steps(budget, spe[b], cost),
                          first=math.ceil(FIRST_EPOCHS * spe[b]),
                          best_seconds=cost.seconds(pick.steps_median) if cost else None,
                          cost=cost, within=None)
    book.expect(len(seeds), 0)
    confirm = book.run_all([RunRequest(config_for(b, lr, s, cap, target, pick.steps_median),
                                       "confirm",
                                       pick.lr_multiplier, None, reason) for s in fresh])
    own = _own_steps(book, b, lr, seeds, target, metric)
    fresh_steps = [steps_to_target(r.history, target, metric) for r in confirm]
    replays = [Replay(b, lr, s, int(k)) for s, k in [*own, *zip(fresh, fresh_steps)]
               if math.isfinite(k)]
    emit({"event": "replan", "runs": len(book.records), "extra": len(replays) * rounds})
    window = time_replays(replays, replay, rounds=rounds, seed=order_seed + 1,
                          progress=lambda: emit({"event": "replay"}))
    t = {r.seed: window.time(i) for i, r in enumerate(window.replays)}
    mine = [t[s] for s, _ in own if s in t]
    times = tuple(t.get(s, math.inf) for s in fresh)
    lo, hi = (min(mine), max(mine)) if mine else (math.inf, math.inf)
    t_med = median(times)
    outside = bool(mine) and (not math.isfinite(t_med) or t_med < lo or t_med > hi)
    result = Confirmation(
        batch_size=b, lr=lr, seeds=tuple(fresh), reached=sum(math.isfinite(k)
                                                              for k in fresh_steps),
        diverged=sum(r.status == "diverged" for r in confirm), times=times,
        steps=tuple(fresh_steps), time_median=t_med, steps_median=whole_median(fresh_steps),
        sweep_low=lo, sweep_high=hi, outside=outside)
    if not outside:
        return result, batches, decision, None
    return _extend(book, batches, decision, result, seeds=seeds, target=target, metric=metric,
                   config_for=config_for, costs=costs, budget=budget, spe=spe, replay=replay,
                   rounds=rounds, order_seed=order_seed, rebuild=rebuild, emit=emit)


def _own_steps(book: RunBook, b: int, lr: float, seeds: list, target, metric) -> list:
    """``[(seed, steps to target)]`` of the sweep's own runs at ``(b, lr)``."""
    out = []
    for r in book.records:
        if r.phase == "search" and r.batch_size == b and r.lr == lr and r.seed in seeds:
            out.append((r.seed, steps_to_target(r.history, target, metric)))
    return out


def _extend(book, batches, decision, result: Confirmation, *, seeds, target, metric,
            config_for, costs, budget, spe, replay, rounds, order_seed, rebuild, emit):
    """More seeds for the tied batch sizes, one timing window over all their seeds, and the
    decision taken again (see the module docstring)."""
    tied = sorted(decision.tied, key=lambda b: (abs(math.log(b / decision.pick)), b))
    tied = sorted(tied[:MAX_EXTENDED])
    extra = [s + EXTRA_SEED_OFFSET for s in seeds]
    by_b = {r.batch_size: r for r in batches}
    requests = []
    for b in tied:
        row, cost = by_b[b], costs.get(b)
        cap, reason = run_cap(budget=budget_steps(budget, spe[b], cost),
                              first=math.ceil(FIRST_EPOCHS * spe[b]),
                              best_seconds=cost.seconds(row.steps_median) if cost else None,
                              cost=cost, within=None)
        requests += [RunRequest(config_for(b, row.lr, s, cap, target, row.steps_median),
                                "extra",
                                row.lr_multiplier, None, reason) for s in extra]
    book.expect(len(requests), 0)
    records = book.run_all(requests)
    extra_rows = run_rows(records, target, metric)
    replays = []
    for b in tied:
        row = by_b[b]
        steps = _own_steps(book, b, row.lr, seeds, target, metric)
        steps += [(r.seed, r.steps_to_target) for r in extra_rows if r.batch_size == b]
        replays += [Replay(b, row.lr, s, int(k)) for s, k in steps if math.isfinite(k)]
    emit({"event": "replan", "runs": len(book.records), "extra": len(replays) * rounds})
    window = time_replays(replays, replay, rounds=rounds, seed=order_seed + 2,
                          progress=lambda: emit({"event": "replay"}))
    batches = rebuild(extra_rows, window)
    decision = decide({r.batch_size: r.seed_times for r in batches},
                      {r.batch_size: r.steps_median for r in batches},
                      {r.batch_size: r.every_seed_reached for r in batches})
    result = dataclasses.replace(result, extra_seeds=tuple(extra), extended=tuple(tied),
                                 pick_after=decision.pick)
    return result, batches, decision, window


def confirmation_sentence(c: Confirmation) -> str:
    """One sentence on the confirmation runs, and what the sweep did when they fell outside
    the range of its own seeds."""
    seeds = ", ".join(str(s) for s in c.seeds)
    head = (f"Confirmation with fresh seeds ({seeds}) at batch size {c.batch_size}, learning "
            f"rate {c.lr:.4g}: {status_text(c.reached, c.diverged, len(c.seeds))}")
    when = _t(c.time_median)
    own = (f"the sweep's own seeds timed beside them ({_t(c.sweep_low)} to "
           f"{_t(c.sweep_high)})")
    if not math.isfinite(c.time_median):
        text = f"{head}; the median fresh seed did not reach the target, unlike {own}"
    elif not c.outside:
        return (f"{head}, median time to target {when} in {c.steps_median:.0f} steps, within "
                f"the range of {own}.")
    else:
        text = (f"{head}, median time to target {when} in {c.steps_median:.0f} steps, outside "
                f"the range of {own}")
    if not c.extended:
        return text + ": treat the recommendation with caution."
    names = ", ".join(str(b) for b in c.extended)
    after = ("the pick stands" if c.pick_after == c.batch_size else
             f"the pick is now batch size {c.pick_after}" if c.pick_after is not None else
             "no batch size reached the target in the median")
    return (f"{text}. So the sweep ran {len(c.extra_seeds)} more seeds for each tied batch "
            f"size ({names}) and decided again with {2 * len(c.seeds)} seeds each: {after}.")

