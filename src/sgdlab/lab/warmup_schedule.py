"""A batch-size warmup built from the measured critical batch size, and whether it pays.

**The schedule** (:func:`warmup_schedule`): from each checkpoint of the reference run on
(:mod:`.batch_warmup`), train at the measured critical batch size there (the median over
seeds), rounded down to a swept batch size that has a tuned learning rate, never below the
reference batch size B0 and never smaller than the phase before it (batch sizes only grow);
each phase at the sweep's tuned learning rate of its batch size. Phases start at the examples
the reference run had seen at the checkpoint; equal neighbours merge.
:func:`doubling_schedule` is the plain alternative a user might write by hand: B0 doubled at
every checkpoint.

**The comparison** (:func:`compare_with_fixed`): the schedule and the best fixed batch size
(the sweep's pick, at its tuned learning rate), each trained with the sweep's seeds and with
fresh ones (``seed + CONFIRM_SEED_OFFSET``, the confirmation's: its runs are reused), stopped
at the target; then every seed's run is replayed for exactly its steps to the target, both
contenders in the same rounds of random order (:mod:`.timing`), so machine load hits both
alike. :func:`verdict_of` applies the sweep's tie rules (:mod:`.ties`): the schedule is
*faster* only when its median time is more than :data:`~.ties.PICK_MARGIN` lower and the
fixed batch size is slower in at least :data:`~.ties.LEVEL` of bootstrap resamples (with
:data:`~.ties.MIN_SEEDS` seeds a side); *slower* in the mirror case; else *tied*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from ..engine.batch_schedule import BatchSchedule, PhaseTable
from ..engine.config import TrainConfig
from ..engine.fit import memory_epochs
from .confirm import CONFIRM_SEED_OFFSET
from .measure import crossing, median, steps_to_target
from .recommend import seconds_text
from .runbook import RunBook
from .ties import LEVEL, MIN_SEEDS, PICK_MARGIN, p_slower
from .timing import Replay, time_replays
from .warmup_records import Contender, WarmupCurve


def warmup_schedule(curve: WarmupCurve, tuned: dict) -> BatchSchedule | None:
    """The schedule of the module docstring from ``curve`` and ``tuned`` (``{B: tuned lr}``
    of the swept batch sizes); None when the curve was not measured."""
    if not curve.measured:
        return None
    sizes = sorted(b for b, lr in tuned.items() if b >= curve.reference_batch and
                   lr is not None and math.isfinite(lr))
    phases: list = []
    for p in curve.points:
        b = max((s for s in sizes if s <= p.b_crit), default=curve.reference_batch)
        if phases and b <= phases[-1][0]:
            continue
        phases.append((b, 0 if not phases else p.examples))
    return BatchSchedule.parse([(b, x, tuned[b]) for b, x in phases])


def doubling_schedule(curve: WarmupCurve, tuned: dict) -> BatchSchedule | None:
    """B0 doubled at every checkpoint after the first, up to the largest swept batch size
    with a tuned learning rate (whose rate each phase takes; the ladder's rate otherwise)."""
    if not curve.measured:
        return None
    rates = {s.batch_size: s.lr for s in curve.ladder}
    rates.update({b: lr for b, lr in tuned.items() if lr is not None and math.isfinite(lr)})
    largest = max(b for b, lr in tuned.items() if lr is not None and math.isfinite(lr))
    phases, b = [], curve.reference_batch
    for i, p in enumerate(curve.points):
        if b > largest or b not in rates:
            break
        phases.append((b, 0 if i == 0 else p.examples, rates[b]))
        b *= 2
    return BatchSchedule.parse(phases)


def steps_for_examples(schedule: BatchSchedule, examples: float) -> int:
    """About how many steps ``schedule`` takes to see ``examples`` examples (each phase
    ``ceil(its examples / B)``; partial batches ignored): for the evaluation schedule and the
    step cap of its runs."""
    starts = [p.start for p in schedule.phases] + [math.inf]
    steps = 0
    for p, end in zip(schedule.phases, starts[1:]):
        if examples <= p.start:
            break
        steps += math.ceil((min(examples, end) - p.start) / p.batch_size)
    return max(1, steps)


def without_unstarted_phases(cfg: TrainConfig, steps: int, rows: int) -> TrainConfig:
    """``cfg`` (a batch schedule's run of ``steps`` steps on ``rows`` training rows) without
    the phases it never starts: a replay runs for the steps its seed took to the target,
    which may come before the schedule's last phases, and a run refuses a phase that never
    starts."""
    schedule = BatchSchedule.parse(cfg.batch_schedule)
    table = PhaseTable.build(schedule, memory_epochs(rows, cfg), lr=cfg.lr,
                             lr_scaling=cfg.lr_scaling)
    kept = [p for i, (p, start) in enumerate(zip(schedule.phases, table.phases))
            if i == 0 or start.step < steps]
    return cfg.replace(batch_schedule=BatchSchedule(tuple(kept)).text)


@dataclass(frozen=True)
class ScheduleReplay:
    """One seed's run of a batch schedule to replay for ``steps`` whole steps; ``group``
    keeps it apart from the fixed batch sizes in the timing rounds."""

    schedule: str
    seed: int
    steps: int
    group: str = "schedule"


def compare_with_fixed(book: RunBook, *, schedule: BatchSchedule, fixed_batch: int,
                       fixed_lr: float, seeds: list, target: float, metric: str,
                       schedule_config: Callable, fixed_config: Callable, replay: Callable,
                       rounds: int, order_seed: int,
                       progress: Callable[[], None] | None = None) -> tuple:
    """``-> (schedule Contender, fixed Contender)`` (module docstring).

    ``schedule_config(seed, max_steps, evaluated)`` and ``fixed_config(seed, max_steps,
    evaluated)`` are the two contenders' configurations (evaluated: stopping at the target
    with evaluations on the way; else a replay, evaluated at its end only); ``replay`` times a
    fixed :class:`~.timing.Replay` (the sweep's :class:`~.sweep.Replayer`). The fixed batch
    size's evaluated runs already in ``book`` (the search's, the confirmation's) are reused.
    """
    all_seeds = list(seeds) + [s + CONFIRM_SEED_OFFSET for s in seeds]

    def evaluated(config_of, seed, stored=None):
        history = stored if stored is not None else book.train(
            config_of(seed, None, True)).history
        if progress:
            progress()
        c = crossing(history, target, metric)
        return steps_to_target(history, target, metric), \
            math.ceil(c["examples"] - 1e-9) if c["reached"] else math.inf

    def stored(seed):
        return next((r.history for r in book.records
                     if (r.batch_size, r.lr, r.seed) == (fixed_batch, fixed_lr, seed)
                     and r.phase in ("search", "confirm") and r.status != "diverged"), None)

    sched = [evaluated(schedule_config, s) for s in all_seeds]
    fixed = [evaluated(fixed_config, s, stored(s)) for s in all_seeds]
    replays = [ScheduleReplay(schedule.text, s, int(k)) for s, (k, _) in zip(all_seeds, sched)
               if math.isfinite(k)]
    replays += [Replay(fixed_batch, fixed_lr, s, int(k)) for s, (k, _) in zip(all_seeds, fixed)
                if math.isfinite(k)]

    def replay_either(r):
        if not isinstance(r, ScheduleReplay):
            return replay(r)
        result = book.train(without_unstarted_phases(schedule_config(r.seed, r.steps, False),
                                                     r.steps, book.train_part.n))
        if result.status != "completed" or result.steps != r.steps:
            return math.inf, 0
        return result.train_seconds, 0

    timed = time_replays(replays, replay_either, rounds=rounds, seed=order_seed,
                         progress=progress)
    seconds = {(isinstance(r, ScheduleReplay), r.seed): timed.time(i)
               for i, r in enumerate(timed.replays)}

    def contender(is_schedule, outcomes, label, batch, lr):
        return Contender(label, schedule.text if is_schedule else "", batch, lr,
                         tuple(all_seeds), tuple(float(k) for k, _ in outcomes),
                         tuple(float(x) for _, x in outcomes),
                         tuple(seconds.get((is_schedule, s), math.inf) for s in all_seeds))

    first = schedule.phases[0]
    return (contender(True, sched, "warmup schedule", first.batch_size, first.lr),
            contender(False, fixed, f"batch size {fixed_batch}", fixed_batch, fixed_lr))


def verdict_of(schedule_times, fixed_times) -> str:
    """``faster``, ``slower`` or ``tied`` (module docstring) for per-seed times (``inf``:
    missed)."""
    ms, mf = median(schedule_times), median(fixed_times)
    if not math.isfinite(ms):
        return "slower" if math.isfinite(mf) else "tied"
    tested = len(schedule_times) >= MIN_SEEDS and len(fixed_times) >= MIN_SEEDS
    if ms < (1 - PICK_MARGIN) * mf and tested and \
            p_slower(fixed_times, schedule_times) >= LEVEL:
        return "faster"
    if ms > (1 + PICK_MARGIN) * mf and tested and \
            p_slower(schedule_times, fixed_times) >= LEVEL:
        return "slower"
    return "tied"


def _count(values) -> str:
    m = median(values)
    return "never" if not math.isfinite(m) else f"{m:,.0f}"


def verdict_sentences(verdict: str, schedule: Contender | None, fixed: Contender | None,
                      reason: str = "") -> tuple:
    """The verdict in words: what was measured, by how much it won, tied or lost, and the
    steps and examples to the target of both; the fresh seeds alone too."""
    if verdict == "not run" or schedule is None or fixed is None:
        return (f"No batch-size warmup was measured: {reason}.",)
    ts, tf = median(schedule.times), median(fixed.times)
    n = len(schedule.seeds)
    if math.isfinite(ts) and math.isfinite(tf) and tf > 0:
        rel = ts / tf - 1
        by = f"{abs(rel) * 100:.0f}% {'less' if rel < 0 else 'more'} time"
    else:
        by = "no comparable time (a median seed missed the target)"
    reached = f"reached the target in {seconds_text(ts)}" if math.isfinite(ts) else \
        "missed the target"
    head = (f"the batch-size warmup {schedule.schedule} {reached} (median of {n} seeds: the "
            f"sweep's and as many fresh ones) against "
            f"{seconds_text(tf) if math.isfinite(tf) else 'a miss'} for {fixed.label} at lr "
            f"{fixed.lr:.3g}, {by}")
    counts = (f"; steps to the target {_count(schedule.steps)} against "
              f"{_count(fixed.steps)}, examples {_count(schedule.examples)} against "
              f"{_count(fixed.examples)}")
    if verdict == "faster":
        first = f"Recommended instead: {head}, beyond the noise{counts}."
    elif verdict == "slower":
        first = (f"Not recommended: {head}; it lost beyond the noise, so the fixed batch size "
                 f"stays the recommendation{counts}.")
    else:
        first = (f"Not recommended: {head}, within the noise of each other (a tie), so the "
                 f"simpler fixed batch size stays the recommendation{counts}.")
    half = n // 2
    fresh_s, fresh_f = median(schedule.times[half:]), median(fixed.times[half:])
    return (first, f"With the fresh seeds alone: {seconds_text(fresh_s)} against "
                   f"{seconds_text(fresh_f)}.")
