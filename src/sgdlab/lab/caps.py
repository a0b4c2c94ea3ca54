"""How many steps a sweep run may take: the per-run budget, and "behind the best" stops.

Every cap is a whole number of **steps**, fixed before the run starts, so whether a run
reached the target depends only on its settings and seed, never on how fast the machine was
at that moment (a time cap would make a slow seed miss in one sweep and not in the next). A
budget given as time is turned into steps with the throughput probe's cost of a step
(:class:`StepCost`), measured once per sweep (and reused when the sweep resumes).

Two caps, the smaller wins:

* the **budget** (``--budget``: ``"5 epochs"``, ``"2000 steps"`` or ``"30s"``); without one, only
  a batch size's first runs, before any batch size has reached the target, are capped, at
  :data:`FIRST_EPOCHS` epochs;
* **behind**: once some batch size reached the target in a predicted time ``T*``, a run of
  batch size ``B`` stops after ``BEHIND * T*`` of its own predicted time: a batch size that
  needs longer is more than :data:`BEHIND` times slower than the best and cannot win.
  Within one batch size a learning rate stops after :data:`WITHIN` times the steps of the
  batch size's best learning rate so far (the same program, so more steps is slower), and
  never before those steps, so that it can still be ranked against that best.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..engine.schedule import parse_duration, reads_as_duration
from ..errors import ConfigError

#: A batch size's runs stop at this many times the best predicted time to target so far.
BEHIND = 3.0
#: A learning rate's runs stop at this many times the steps of its batch size's best so far.
WITHIN = 2.0
#: Without a --budget, the cap of runs made before any batch size reached the target.
FIRST_EPOCHS = 20


_COUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[-+]?\d+)?)\s*(epochs?|ep|steps?)\s*$")


def parse_budget(text: str | None) -> dict:
    """Per-run stopping rule as TrainConfig fields: ``"30s"``, ``"2 min"``, ``"5 epochs"``,
    ``"2000 steps"``; None (no budget) gives no field set.

    >>> parse_budget("5 epochs")
    {'epochs': 5.0, 'max_steps': None, 'max_time': None}
    """
    if text is None:
        return {"epochs": None, "max_steps": None, "max_time": None}
    m = _COUNT.match(str(text).lower())
    if m:
        value = float(m.group(1))
        if not value > 0 or not math.isfinite(value):
            raise ConfigError(f"budget must be > 0, got {text!r}")
        if m.group(2).startswith("step"):
            if value != int(value):
                raise ConfigError(f"a budget in steps must be whole, got {text!r}")
            return {"epochs": None, "max_steps": int(value), "max_time": None}
        return {"epochs": value, "max_steps": None, "max_time": None}
    if not reads_as_duration(text):
        raise ConfigError(f"cannot read budget {text!r}; write a training time ('30s', "
                          "'2 min'), epochs ('5 epochs') or steps ('2000 steps')")
    try:
        seconds = parse_duration(text)
    except ConfigError:  # read, but not a finite time > 0
        raise ConfigError(f"budget must be a finite time > 0, got {text!r}") from None
    return {"epochs": None, "max_steps": None, "max_time": seconds}


def budget_hint(budget: str | None) -> str:
    """The ``--budget`` that gives capped runs four times the room."""
    if budget is None:
        return f"e.g. --budget '{4 * FIRST_EPOCHS} epochs'"
    b = parse_budget(budget)
    if b["max_steps"]:
        return f"e.g. --budget '{4 * b['max_steps']} steps'"
    if b["epochs"]:
        return f"e.g. --budget '{4 * b['epochs']:g} epochs'"
    return f"e.g. --budget {4 * b['max_time']:g}s"


@dataclass(frozen=True)
class StepCost:
    """What training costs at one batch size, from the throughput probe: ``step_seconds``
    per step and ``call_seconds`` per compiled call of ``chunk_steps`` steps."""

    batch_size: int
    step_seconds: float
    call_seconds: float
    chunk_steps: int

    def seconds(self, steps: float) -> float:
        """Predicted training seconds of ``steps`` steps run in calls of ``chunk_steps``:
        ``steps * step_seconds + ceil(steps / chunk_steps) * call_seconds``."""
        if not math.isfinite(steps):
            return math.inf
        return steps * self.step_seconds + math.ceil(steps / self.chunk_steps) * \
            self.call_seconds

    def steps_within(self, seconds: float) -> int:
        """The most whole steps whose predicted time fits in ``seconds`` (at least 1)."""
        per_step = self.step_seconds + self.call_seconds / self.chunk_steps
        return max(1, int(seconds / per_step)) if per_step > 0 else 1


def budget_steps(budget: dict, steps_per_epoch: int, cost: StepCost | None) -> int | None:
    """The budget (:func:`sgdlab.lab.sweep.parse_budget`'s fields) of one batch size in
    steps; None when there is no budget (or a time budget and no probe)."""
    if budget.get("max_steps"):
        return int(budget["max_steps"])
    if budget.get("epochs"):
        return max(1, math.ceil(budget["epochs"] * steps_per_epoch))
    if budget.get("max_time") and cost is not None:
        return cost.steps_within(budget["max_time"])
    return None


def run_cap(*, budget: int | None, first: int, best_seconds: float | None,
            cost: StepCost | None, within: float | None) -> tuple[int, str]:
    """``(max_steps, reason)`` of a run.

    The budget (``first`` steps before any batch size reached the target when there is no
    budget) and, once some batch size reached it, :data:`BEHIND` times the best predicted
    time ``best_seconds`` at this batch size's ``cost``. ``within``, the steps of the batch
    size's best learning rate so far, bounds the cap by :data:`WITHIN` times itself, and the
    behind-cap is never below it: a run stopped earlier than its batch size's best could not
    be ranked against it. ``reason`` is ``"budget"``, ``"behind"`` or ``""`` (see
    :data:`~.records.CAP_REASONS`)."""
    caps = []
    if budget is not None:
        caps.append((budget, "budget"))
    elif best_seconds is None:
        caps.append((first, "budget"))
    known = within is not None and math.isfinite(within)
    if best_seconds is not None and cost is not None:
        behind = cost.steps_within(BEHIND * best_seconds)
        caps.append((max(behind, math.ceil(within)) if known else behind, "behind"))
    if known:
        caps.append((max(1, math.ceil(WITHIN * within)), "behind"))
    if not caps:
        return first, "budget"
    steps, reason = min(caps, key=lambda c: (c[0], c[1] != "budget"))
    return steps, reason


def monotone_costs(costs: dict) -> dict:
    """``{B: StepCost}`` with step costs made non-decreasing in ``B``: a step over more
    examples cannot be cheaper, so a probe that found one cheaper timed noise. The costs are
    replaced by their least-squares non-decreasing fit in log space (pool adjacent
    violators), which keeps a noisy probe from stopping a batch size, or sparing one, that it
    should not. The report shows the measured costs; only the caps use these."""
    sizes = sorted(costs)
    blocks = []  # [sum of log costs, count] per pooled block
    for b in sizes:
        blocks.append([math.log(costs[b].step_seconds), 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    fitted = [math.exp(total / count) for total, count in blocks for _ in range(count)]
    return {b: StepCost(b, step, costs[b].call_seconds, costs[b].chunk_steps)
            for b, step in zip(sizes, fitted)}
