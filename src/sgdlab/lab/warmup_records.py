"""What a sweep's batch-size warmup measured, as typed records: the critical batch size over
training (:mod:`.batch_warmup`) and the warmup schedule built from it, against the best fixed
batch size (:mod:`.warmup_schedule`).

Every record is frozen; ``to_dict()`` is what ``sweep.json`` holds under ``"warmup"`` and
``from_dict`` reads it back (JSON's ``null`` figures as NaN), raising ``KeyError``,
``TypeError`` or ``ValueError`` on a value of another shape.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass


def _num(v) -> float:
    """A figure read from JSON: ``null`` is NaN; anything but a number is refused."""
    if v is None:
        return math.nan
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"expected a number, got {v!r}")
    return float(v)


def _int(v) -> int:
    """A count or batch size read from JSON: a whole number (``3`` or ``3.0``); ``Infinity``,
    NaN, fractions and anything but a number are refused."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or \
            (isinstance(v, float) and not v.is_integer()):
        raise ValueError(f"expected a whole number, got {v!r}")
    return int(v)


def _plain(v):
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return v.to_dict()
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else v
    return v


class _Record:
    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class BranchRow(_Record):
    """One short continuation: from checkpoint ``point`` of the reference run of ``seed``,
    ``steps`` steps at ``batch_size`` and learning rate ``lr`` (``examples`` = the budget),
    ending at validation loss ``val_loss`` and target metric ``metric``; ``keeps_up``: within
    the tolerance of the reference batch size's branch (:func:`.batch_warmup.keeps_up`)."""

    point: int
    seed: int
    batch_size: int
    lr: float
    steps: int
    examples: int
    val_loss: float
    metric: float
    keeps_up: bool

    @classmethod
    def from_dict(cls, d: dict) -> "BranchRow":
        return cls(_int(d["point"]), _int(d["seed"]), _int(d["batch_size"]), _num(d["lr"]),
                   _int(d["steps"]), _int(d["examples"]), _num(d["val_loss"]),
                   _num(d["metric"]), bool(d["keeps_up"]))


@dataclass(frozen=True)
class CriticalPoint(_Record):
    """The critical batch size at one checkpoint of the reference run: ``fraction`` of its
    steps to the target (``step``, ``examples`` seen there), the validation loss and metric
    there (median over seeds), and the critical batch size per seed (``per_seed``, in seed
    order), its median ``b_crit`` and range ``low``-``high``."""

    fraction: float
    step: int
    examples: int
    start_loss: float
    start_metric: float
    per_seed: tuple
    b_crit: float
    low: float
    high: float

    @classmethod
    def from_dict(cls, d: dict) -> "CriticalPoint":
        return cls(_num(d["fraction"]), _int(d["step"]), _int(d["examples"]),
                   _num(d["start_loss"]), _num(d["start_metric"]),
                   tuple(_int(b) for b in d["per_seed"]), _num(d["b_crit"]), _num(d["low"]),
                   _num(d["high"]))


@dataclass(frozen=True)
class LadderStep(_Record):
    """A batch size of the branches and its learning rate: the sweep's tuned one
    (``tuned``), else the scaling rule's from the reference batch size's."""

    batch_size: int
    lr: float
    tuned: bool

    @classmethod
    def from_dict(cls, d: dict) -> "LadderStep":
        return cls(_int(d["batch_size"]), _num(d["lr"]), bool(d["tuned"]))


@dataclass(frozen=True)
class WarmupCurve(_Record):
    """The critical batch size over training, measured by branching (:mod:`.batch_warmup`).

    ``reference_batch`` (B0) at ``reference_lr`` needed ``reference_steps`` (median) to the
    target; its runs (one per seed of ``seeds``) were branched at ``points`` into the batch
    sizes of ``ladder``, each for ``budget_examples`` examples; ``tolerance``: how far
    (relative) a branch's loss and metric may end from B0's, on the worse side, and still keep
    up. ``reason``: why nothing was measured (then ``points`` is empty)."""

    reference_batch: int
    reference_lr: float
    reference_steps: float
    seeds: tuple
    budget_examples: int
    tolerance: float
    ladder: tuple = ()
    points: tuple = ()
    branches: tuple = ()
    reason: str = ""

    @property
    def measured(self) -> bool:
        return bool(self.points)

    @classmethod
    def from_dict(cls, d: dict) -> "WarmupCurve":
        return cls(_int(d["reference_batch"]), _num(d["reference_lr"]),
                   _num(d["reference_steps"]), tuple(_int(s) for s in d["seeds"]),
                   _int(d["budget_examples"]), _num(d["tolerance"]),
                   tuple(LadderStep.from_dict(x) for x in d["ladder"]),
                   tuple(CriticalPoint.from_dict(x) for x in d["points"]),
                   tuple(BranchRow.from_dict(x) for x in d["branches"]), str(d["reason"]))


@dataclass(frozen=True)
class Contender(_Record):
    """One side of the comparison: a fixed batch size (``schedule`` empty) or a warmup
    schedule (its text), trained with ``seeds`` (the sweep's, then fresh ones), with per seed
    the steps and examples to the target and the replayed training seconds to it (``inf``:
    missed)."""

    label: str
    schedule: str
    batch_size: int
    lr: float
    seeds: tuple
    steps: tuple
    examples: tuple
    times: tuple

    @classmethod
    def from_dict(cls, d: dict) -> "Contender":
        return cls(str(d["label"]), str(d["schedule"]), _int(d["batch_size"]), _num(d["lr"]),
                   tuple(_int(s) for s in d["seeds"]), tuple(_inf(x) for x in d["steps"]),
                   tuple(_inf(x) for x in d["examples"]), tuple(_inf(x) for x in d["times"]))


def _inf(v) -> float:
    """Steps, examples or seconds to the target from JSON: ``null`` (a miss written as NaN by
    a foreign writer) and ``Infinity`` both read as ``inf``."""
    x = _num(v)
    return math.inf if math.isnan(x) else x


#: The verdicts of the comparison: the schedule was faster beyond the noise, tied, slower
#: beyond the noise, or not run (no schedule other than a fixed batch size came out).
VERDICTS = ("faster", "tied", "slower", "not run")


@dataclass(frozen=True)
class WarmupResult(_Record):
    """The batch-size warmup of a sweep: the ``curve``, the schedule built from it and the
    best fixed batch size (``schedule``, ``fixed``: None when not run), the ``verdict``
    (:data:`VERDICTS`) and its ``sentences``, the sentence on how the curve agrees with the
    noise scale and the fixed-batch ``B_crit`` (``agreement``), what it cost (``wall_seconds``,
    beside the fixed-batch sweep's ``sweep_seconds``; ``compilations``: training programs
    compiled by the branches and by the schedule's runs) and the ``command`` that trains the
    schedule (None unless it is recommended)."""

    curve: WarmupCurve
    schedule: Contender | None
    fixed: Contender | None
    verdict: str
    sentences: tuple
    agreement: str
    wall_seconds: float
    sweep_seconds: float
    compilations: dict
    command: str | None = None

    @property
    def recommended(self) -> bool:
        return self.verdict == "faster"

    @classmethod
    def from_dict(cls, d: dict) -> "WarmupResult":
        if d["verdict"] not in VERDICTS:
            raise ValueError(f"unknown verdict {d['verdict']!r}")
        side = lambda x: None if x is None else Contender.from_dict(x)  # noqa: E731
        return cls(WarmupCurve.from_dict(d["curve"]), side(d["schedule"]), side(d["fixed"]),
                   str(d["verdict"]), tuple(str(s) for s in d["sentences"]),
                   str(d["agreement"]), _num(d["wall_seconds"]), _num(d["sweep_seconds"]),
                   {str(k): _int(v) for k, v in dict(d["compilations"]).items()},
                   None if d.get("command") is None else str(d["command"]))
