"""The sweep's batch-size warmup (``sgdlab sweep --batch-warmup``): after the fixed-batch
sweep, the critical batch size over training (:mod:`.batch_warmup`), the schedule built from
it against the best fixed batch size (:mod:`.warmup_schedule`), how the curve agrees with the
noise scale and the fixed-batch ``B_crit`` (:func:`agreement_sentence`), and what it cost.

Everything runs on the sweep's data already on the device and with the sweep's run
configurations, so a branch of a swept batch size finds that batch size's compiled program in
the in-memory store; the training programs compiled here are counted apart for the branches
and for the schedule's runs (which call every phase in the first phase's program length, so
each later phase's batch size compiles one program, shared by all of its runs).
"""

from __future__ import annotations

import math
import time
from typing import Callable

from ..engine import cache
from ..engine.config import TrainConfig
from ..errors import ConfigError
from .batch_warmup import BRANCH_SEED_STRIDE, measure_curve, reference_row
from .measure import median
from .next_run import train_command
from .records import stored_result
from .runbook import RunBook
from .sweep_config import BUDGET_EIGHTHS, CHECKPOINT_EIGHTHS, TOLERANCE
from .warmup_records import LadderStep, WarmupCurve, WarmupResult
from .warmup_schedule import (compare_with_fixed, steps_for_examples, verdict_of,
                              verdict_sentences, warmup_schedule)

#: The schedule's runs may take this many times the steps it needs to see the examples the
#: reference batch size needed, before they count as having missed the target.
CAP_FACTOR = 2.0
#: B_simple and the measured critical batch size agree within this factor.
AGREE_FACTOR = 2.0


def check_warmup(sizes, base: TrainConfig, executor) -> None:
    """Refuse ``--batch-warmup`` where it cannot run, one message each: fewer than two batch
    sizes (nothing to branch into), a learning-rate schedule over the run (a branch restarts
    it), or runs made by an executor (the branches need the sweep's data and programs in this
    process)."""
    if len(sizes) < 2:
        raise ConfigError(f"--batch-warmup branches from a small batch size into larger ones, "
                          f"but the sweep has one batch size ({sizes[0]}); give several, e.g. "
                          "--batch-sizes 16,32,64,128")
    if base.schedule != "constant":
        raise ConfigError(f"--batch-warmup measures at a constant learning rate per phase, "
                          f"but --schedule is {base.schedule!r}: a branch would restart it; "
                          "drop --schedule or --batch-warmup")
    if executor is not None:
        refuse_workers()


def refuse_workers() -> None:
    """The one message for ``--batch-warmup`` with ``--workers``."""
    raise ConfigError("--batch-warmup runs in this process, beside the sweep's compiled "
                      "programs and data, not on --workers: drop --workers (the warmup then "
                      "follows a sweep made here) or drop --batch-warmup")


def measure_warmup(book: RunBook, *, batches, pick: int | None, seeds: list, sizes,
                   target: float, metric: str, rule: str, config_for: Callable, replay,
                   rounds: int, order_seed: int, base: TrainConfig, noise, scaling,
                   sweep_seconds: float, data_arg: str, extra: tuple,
                   progress: Callable[[], None] | None = None) -> WarmupResult:
    """The :class:`WarmupResult` of the module docstring. ``batches``: the sweep's batch rows;
    ``pick``: its recommended batch size; ``config_for(B, lr, seed, max_steps, target,
    expected)``: its run configuration; ``replay``: its replayer of fixed batch sizes."""
    t0, built0 = time.perf_counter(), cache.stats()["built"]["chunk"]
    tuned = {r.batch_size: r.lr for r in batches if math.isfinite(r.lr)}
    reached = {r.batch_size: r.lr for r in batches
               if math.isfinite(r.lr) and math.isfinite(r.steps_median)}
    ref = reference_row(batches)

    def done(curve, schedule=None, fixed=None, verdict="not run", reason="", command=None,
             built_curve=None):
        built = cache.stats()["built"]["chunk"] - built0
        branches = built if built_curve is None else built_curve
        sentences = verdict_sentences(verdict, schedule, fixed, reason)
        return WarmupResult(curve, schedule, fixed, verdict, sentences,
                            agreement_sentence(curve, noise, scaling),
                            time.perf_counter() - t0, sweep_seconds,
                            {"branches": branches, "schedule": built - branches}, command)

    if ref is None or pick is None:
        empty = WarmupCurve(0, math.nan, math.nan, tuple(seeds), 0, 0.0,
                            reason="no batch size reached the target")
        return done(empty, reason=empty.reason)
    # stored in out/warmup_curve.json and reused by a resumed sweep while everything it
    # depends on is the same (its runs are deterministic; the timing below is measured again)
    key = {"data": book.fingerprint, "device": book.device, "base": base.to_dict(),
           "reference": [ref.batch_size, ref.lr, ref.steps_median], "seeds": list(seeds),
           "tuned": {str(b): lr for b, lr in sorted(tuned.items())}, "largest": max(sizes),
           "rule": rule, "metric": metric,
           "method": [CHECKPOINT_EIGHTHS, BUDGET_EIGHTHS, TOLERANCE, BRANCH_SEED_STRIDE]}
    curve = stored_result(book.out, "warmup_curve.json", key, lambda: measure_curve(
        book, reference=LadderStep(ref.batch_size, ref.lr, True),
        reference_steps=ref.steps_median, seeds=seeds, tuned=tuned, largest=max(sizes),
        rule=rule, metric=metric, progress=progress,
        config_for=lambda b, lr, seed, steps: config_for(b, lr, seed, steps).replace(
            eval_every="end")).to_dict(), WarmupCurve.from_dict)
    built_curve = cache.stats()["built"]["chunk"] - built0
    schedule = warmup_schedule(curve, reached)
    if schedule is None:
        return done(curve, reason=curve.reason, built_curve=built_curve)
    if len(schedule.phases) == 1:
        b = schedule.phases[0].batch_size
        return done(curve, built_curve=built_curve, reason=(
            f"the measured critical batch size never called for more than batch size {b} "
            "(rounded down to a swept size), so the warmup would be that fixed batch size, "
            "which the sweep already measured"))
    row = next(r for r in batches if r.batch_size == pick)
    seen = ref.steps_median * ref.batch_size
    expected = steps_for_examples(schedule, seen)
    cap = steps_for_examples(schedule, CAP_FACTOR * seen)
    first = schedule.phases[0]

    def schedule_config(seed, steps, evaluated):
        cfg = config_for(first.batch_size, first.lr, seed, steps or cap,
                         target if evaluated else None, expected)
        # every phase calls the first phase's program length: the first phase reuses the
        # sweep's program, each later batch size compiles one, shared by every run and replay
        cfg = cfg.replace(batch_schedule=schedule.text)
        return cfg if evaluated else cfg.replace(eval_every="end")

    def fixed_config(seed, steps, evaluated):
        cfg = config_for(pick, row.lr, seed, steps or math.ceil(CAP_FACTOR * row.steps_median),
                         target if evaluated else None, row.steps_median)
        return cfg if evaluated else cfg.replace(eval_every="end")

    sched, fixed = compare_with_fixed(
        book, schedule=schedule, fixed_batch=pick, fixed_lr=row.lr, seeds=seeds,
        target=target, metric=metric, schedule_config=schedule_config,
        fixed_config=fixed_config, replay=replay, rounds=rounds, order_seed=order_seed,
        progress=progress)
    verdict = verdict_of(sched.times, fixed.times)
    command = train_command(command_config(base, schedule, book.train_part.n), data_arg,
                            extra) if verdict == "faster" else None
    return done(curve, sched, fixed, verdict, command=command, built_curve=built_curve)


def command_config(base: TrainConfig, schedule, n: int) -> TrainConfig:
    """``base`` training ``schedule``, for as many epochs as it had, or (when its last phase
    would start after them, which the run would refuse) twice the epochs to that start."""
    cfg = base.replace(batch_schedule=schedule.text)
    last = schedule.phases[-1].start
    if cfg.epochs is not None and last >= cfg.epochs * n:
        cfg = cfg.replace(epochs=float(math.ceil(2 * last / n)))
    return cfg


def _b_simple_at(noise, examples: float) -> float:
    """The noise run's smoothed ``B_simple`` at the trace row nearest ``examples`` examples
    (its steps x its batch size); NaN outside the trace (beyond 1.25 x its last row)."""
    if noise is None or not noise.trace:
        return math.nan
    rows = [(s * noise.batch_size, v) for s, v in noise.trace if math.isfinite(v) and v > 0]
    if not rows or examples > 1.25 * rows[-1][0]:
        return math.nan
    return min(rows, key=lambda r: abs(r[0] - examples))[1]


def agreement_sentence(curve: WarmupCurve, noise, scaling) -> str:
    """How the measured critical batch size moved over training, and whether the noise
    scale's trace (McCandlish et al. 2018: the critical batch size is near B_simple) and the
    fixed-batch fit's ``B_crit`` agree with it, in words and numbers."""
    if not curve.measured:
        return ""
    pts = curve.points
    first, last = pts[0].b_crit, pts[-1].b_crit
    top = curve.ladder[-1].batch_size
    how = ("rose" if last > first else "fell" if last < first else "stayed")
    path = f"from {first:g} to {last:g}" if how != "stayed" else f"at {first:g}"
    text = (f"The critical batch size measured by branching {how} {path} between the start "
            f"and {pts[-1].fraction:g} of batch size {curve.reference_batch}'s way to the "
            f"target (median of {len(curve.seeds)} seeds; range at the last checkpoint "
            f"{pts[-1].low:g} to {pts[-1].high:g}; a branch of {curve.budget_examples:,} "
            f"examples kept up when its validation loss and metric ended within "
            f"{curve.tolerance:.0%} of batch size {curve.reference_batch}'s)")
    if any(p.high >= top for p in pts):
        text += f"; at {top}, the largest batch size branched, it is a lower bound"
    pairs = [(p.b_crit, _b_simple_at(noise, p.examples)) for p in pts]
    pairs = [(b, s) for b, s in pairs if math.isfinite(s)]
    if pairs:
        agree = sum(1 / AGREE_FACTOR <= s / b <= AGREE_FACTOR for b, s in pairs)
        ratio = median([s / b for b, s in pairs])
        word = ("agrees" if agree * 2 > len(pairs) else "does not agree")
        text += (f". The noise scale's trace {word}: B_simple is within a factor of "
                 f"{AGREE_FACTOR:g} of it at {agree} of {len(pairs)} checkpoints (median "
                 f"ratio B_simple / measured {ratio:.2g})")
    else:
        text += ". The noise scale's trace does not cover these checkpoints, so it is not compared"
    bc = getattr(scaling, "b_crit", math.nan)
    if getattr(scaling, "good", False) and math.isfinite(bc) and bc > 0:
        lo, hi = min(p.b_crit for p in pts), max(p.b_crit for p in pts)
        inside = lo / AGREE_FACTOR <= bc <= hi * AGREE_FACTOR
        text += (f". The fixed-batch B_crit fitted from steps to the target ({bc:.3g}) "
                 f"{'lies within' if inside else 'lies outside'} a factor of {AGREE_FACTOR:g} "
                 f"of the measured range {lo:g} to {hi:g}, so the two "
                 f"{'agree' if inside else 'disagree'}")
    else:
        text += ". No fixed-batch B_crit was fitted from the steps to compare with"
    return text + "."
