"""The critical batch size over the course of training, measured directly by branching.

The sweep's fixed-batch comparison gives one critical batch size for the whole way to the
target; McCandlish et al. (2018) and Merrill et al. (2025, "Critical Batch Size Revisited")
find it near zero at initialisation and growing as the loss falls. Merrill et al. measure it
without the noise-scale model, and so does this module:

1. **The reference run.** ``B0`` is the smallest swept batch size whose median seed reached
   the target (:func:`reference_row`), at the learning rate its search kept; it needs ``S0``
   steps (median) to the target. One run per sweep seed trains it and keeps its parameters
   at :data:`CHECKPOINT_EIGHTHS` eighths of ``S0`` (evaluated there: one history row each,
   a callback copies the parameters; no Python loop per step).
2. **The branches.** From each checkpoint a short continuation runs at each batch size of
   the *ladder* ``B0, 2 B0, 4 B0, ...`` (up to the largest swept batch size, and no larger
   than leaves :data:`MIN_BRANCH_STEPS` steps in the budget), each at the sweep's tuned
   learning rate of that batch size (the scaling rule's from B0's when it was not swept),
   all for the same budget of ``E`` examples: the examples B0 sees in
   :data:`BUDGET_EIGHTHS` eighths of its way, rounded down to a multiple of the ladder's
   largest batch. A branch starts from the checkpoint's parameters with a fresh optimiser
   state (exact for plain SGD; momentum refills its buffer within ``1/(1-beta)`` steps) and
   draws its batches in an order of its own (seed ``seed + BRANCH_SEED_STRIDE x (point +
   1)``). Each branch compiles nothing new when its batch size was swept: it is a sweep run
   of that batch size with other initial parameters (:func:`sgdlab.engine.train`'s
   ``init_params``), so it finds the sweep's program in the in-memory store.
3. **The critical batch size at a checkpoint** (:func:`keeps_up`): with ``L_B`` the
   validation loss after batch size ``B``'s branch, ``B`` *keeps up* when

   .. math:: L_B \\le (1 + \\tau)\\, L_{B_0}

   (:data:`~.sweep_config.TOLERANCE` ``tau = 0.05``), and its target metric (accuracy,
   R^2) ``M_B >= M_{B0} - tau |M_{B0}|``: the same examples took it (nearly) as far as B0,
   Merrill et al.'s criterion. The critical batch size of one seed is the largest ladder size
   up to which every size keeps up (B0 itself always does); over the seeds, the median and
   the range. At the top of the ladder it is a lower bound. It depends on the learning rates
   the branches take (the sweep's, tuned for the whole way to the target), and a branch that
   ends noisier than ``tau`` (small validation sets, late checkpoints where little progress is
   left) makes a seed's value noisy: the range says how much.

   On noisy linear regression (:mod:`tests.lab.test_batch_warmup`) the branches' losses
   follow McCandlish et al.'s model: at ``alpha`` times the greedy rate ``1 / (1 + B_noise /
   B)`` and a budget that moves a small part of the way, ``B`` makes ``(B0 + B_noise) / (B +
   B_noise)`` of B0's progress, so the critical batch size grows with the noise scale.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from ..optim import scaled_lr
from .measure import median
from .runbook import RunBook
from .sweep_config import BUDGET_EIGHTHS, CHECKPOINT_EIGHTHS, TOLERANCE
from .warmup_records import BranchRow, CriticalPoint, LadderStep, WarmupCurve

#: A ladder batch size must make at least this many steps within the budget.
MIN_BRANCH_STEPS = 4
#: Branches of checkpoint ``i`` draw their batches with seed ``seed + STRIDE x (i + 1)``.
BRANCH_SEED_STRIDE = 7919
#: The reference run needs at least this many steps to the target (one per eighth).
MIN_REFERENCE_STEPS = 8


def reference_row(batches) -> object | None:
    """The batch row (:class:`~.tables.BatchRow`) of the reference batch size B0: the
    smallest swept batch size whose median steps to the target are finite; None if none."""
    reached = [r for r in batches if math.isfinite(r.steps_median) and math.isfinite(r.lr)]
    return min(reached, key=lambda r: r.batch_size, default=None)


def ladder_for(b0: int, lr0: float, tuned: dict, largest: int, budget_examples: int,
               rule: str) -> tuple:
    """The branches' batch sizes ``B0 x 2^k`` up to ``largest`` with at least
    :data:`MIN_BRANCH_STEPS` steps in ``budget_examples``, each with its :class:`LadderStep`
    learning rate: ``tuned[B]`` (the sweep's), else ``lr0`` scaled from B0 by ``rule``."""
    out, b = [], b0
    while b <= largest and budget_examples // b >= MIN_BRANCH_STEPS:
        lr = tuned.get(b)
        out.append(LadderStep(b, lr, True) if lr is not None and math.isfinite(lr) else
                   LadderStep(b, scaled_lr(lr0, b, b0, rule), False))
        b *= 2
    return tuple(out)


def keeps_up(reference: float, value: float, tolerance: float,
             higher_is_better: bool) -> bool:
    """Whether ``value`` (after a branch) is within ``tolerance`` of ``reference`` (B0's
    branch), relative to it, on the worse side: a loss (``higher_is_better`` False) at most
    ``(1 + tolerance) x reference``, a metric at least ``reference - tolerance x
    |reference|``; better always keeps up. NaN never keeps up."""
    if not (math.isfinite(value) and math.isfinite(reference)):
        return False
    slack = tolerance * abs(reference)
    return value >= reference - slack if higher_is_better else value <= reference + slack


def critical_of(rows: list) -> int:
    """The largest batch size up to which every row (one seed's branches from one checkpoint,
    :class:`BranchRow`, any order) keeps up."""
    best = None
    for r in sorted(rows, key=lambda r: r.batch_size):
        if not r.keeps_up and best is not None:
            break
        best = r.batch_size
    return best


class _Snapshots:
    """A run callback keeping host copies of the parameters (and the row) at ``steps``."""

    def __init__(self, steps):
        self.steps, self.kept = set(steps), {}

    def __call__(self, event: dict):
        if event["event"] == "row" and event["row"]["step"] in self.steps:
            import jax
            # a copy: the next compiled call may reuse the state's buffers
            self.kept[event["row"]["step"]] = (jax.tree_util.tree_map(np.array,
                                                                      event["params"]),
                                               dict(event["row"]))


def checkpoint_steps(reference_steps: float) -> tuple:
    """``(eighth, steps at that eighth)`` of :data:`CHECKPOINT_EIGHTHS`: multiples of
    ``floor(S0 / 8)``."""
    g = max(1, int(reference_steps) // 8)
    return g, tuple(e * g for e in CHECKPOINT_EIGHTHS)


def measure_curve(book: RunBook, *, reference: LadderStep, reference_steps: float,
                  seeds: list, tuned: dict, largest: int, rule: str, metric: str,
                  config_for: Callable, tolerance: float = TOLERANCE,
                  progress: Callable[[], None] | None = None) -> WarmupCurve:
    """The :class:`WarmupCurve` of the module docstring.

    ``reference``: B0 and its tuned rate; ``reference_steps``: its median steps to the target
    ``S0``; ``tuned``: ``{B: tuned lr}`` of the swept batch sizes, ``largest`` the largest
    swept; ``rule``: the scaling rule for a ladder size not swept; ``metric``: the history
    column of the target metric; ``config_for(B, lr, seed, max_steps)``: the sweep's
    configuration of a run with no target (evaluated at its end); ``progress()`` is called
    after each run.
    """
    b0, lr0 = reference.batch_size, reference.lr
    empty = WarmupCurve(b0, lr0, reference_steps, tuple(seeds), 0, tolerance)
    if not reference_steps >= MIN_REFERENCE_STEPS:
        return _with_reason(empty, f"batch size {b0} reached the target in "
                                   f"{reference_steps:g} steps, too few to place "
                                   f"{len(CHECKPOINT_EIGHTHS)} checkpoints on its way "
                                   f"(at least {MIN_REFERENCE_STEPS})")
    g, steps = checkpoint_steps(reference_steps)
    raw = BUDGET_EIGHTHS * g * b0
    ladder = ladder_for(b0, lr0, tuned, largest, raw, rule)
    if len(ladder) < 2:
        return _with_reason(empty, f"a branch budget of {raw} examples leaves no batch size "
                                   f"above {b0} at least {MIN_BRANCH_STEPS} steps, up to the "
                                   f"largest swept ({largest})")
    budget = raw // ladder[-1].batch_size * ladder[-1].batch_size
    branches, points = [], []
    snaps = {}
    for seed in seeds:
        keep = _Snapshots(steps)
        cfg = config_for(b0, lr0, seed, steps[-1]).replace(eval_every=f"{g} steps")
        book.train(cfg, callback=keep)
        snaps[seed] = keep.kept
        if progress:
            progress()
    for i, (eighth, step) in enumerate(zip(CHECKPOINT_EIGHTHS, steps)):
        per_seed, starts = [], []
        for seed in seeds:
            if step not in snaps[seed]:  # the reference run diverged before this point
                continue
            params, row = snaps[seed][step]
            starts.append((_get(row, "val_loss"), _get(row, metric), _get(row, "examples")))
            rows = branch_point(book, params, ladder=ladder, budget_examples=budget,
                                seed=seed, point=i, config_for=config_for, metric=metric,
                                tolerance=tolerance, progress=progress)
            branches += rows
            per_seed.append(critical_of(rows))
        if per_seed:
            points.append(CriticalPoint(eighth / 8, step, int(median([s[2] for s in starts])),
                                        median([s[0] for s in starts]),
                                        median([s[1] for s in starts]), tuple(per_seed),
                                        median(per_seed), min(per_seed), max(per_seed)))
    return WarmupCurve(b0, lr0, reference_steps, tuple(seeds), budget, tolerance, ladder,
                       tuple(points), tuple(branches),
                       "" if points else f"every reference run at batch size {b0} diverged")


def branch_point(book: RunBook, params, *, ladder: tuple, budget_examples: int,
                 seed: int, point: int, config_for: Callable, metric: str,
                 tolerance: float = TOLERANCE, progress: Callable[[], None] | None = None
                 ) -> list:
    """The branches of one seed from one checkpoint (its ``params``): one
    :class:`BranchRow` per ``ladder`` step, B0's first, each ``budget_examples // B`` steps
    from ``params`` with batches drawn by seed ``seed + BRANCH_SEED_STRIDE x (point + 1)``,
    judged against B0's branch by :func:`keeps_up` on the validation loss and on ``metric``
    (``val_loss`` alone when the metric is the loss)."""
    ends = []
    for rung in ladder:
        cfg = config_for(rung.batch_size, rung.lr, seed + BRANCH_SEED_STRIDE * (point + 1),
                         budget_examples // rung.batch_size)
        ends.append((rung, book.train(cfg, init_params=params).history[-1]))
        if progress:
            progress()
    ref = ends[0][1]

    def up(last):
        return keeps_up(_get(ref, "val_loss"), _get(last, "val_loss"), tolerance, False) and \
            keeps_up(_get(ref, metric), _get(last, metric), tolerance, metric != "val_loss")

    return [BranchRow(point, seed, rung.batch_size, rung.lr, int(last["step"]),
                      int(last["examples"]), _get(last, "val_loss"), _get(last, metric),
                      up(last)) for rung, last in ends]


def _get(row: dict, key: str) -> float:
    v = row.get(key)
    return math.nan if v is None else float(v)


def _with_reason(curve: WarmupCurve, reason: str) -> WarmupCurve:
    import dataclasses
    return dataclasses.replace(curve, reason=reason)
