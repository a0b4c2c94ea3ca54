"""Batch size over the course of a run: a schedule of phases, each a batch size (and learning
rate) from a number of examples or epochs on.

The text form (``--batch-schedule``, ``batch_schedule=``) joins phases ``B[@LR]:START`` with
commas:

    16:0,64:2000,256:8000       batch 16 from the start, 64 from 2,000 examples, 256 from 8,000
    16:0,64:2e,256:8e           ... from 2 and from 8 epochs (passes over the training data)
    16@0.05:0,64@0.2:2000       each phase with its own learning rate

``START`` counts the examples seen before the phase (a whole number, ``2000`` or ``2e3``) or
the epochs (a number followed by ``e``: ``2e``, ``0.5e``); the first phase starts at 0, and
the starts increase, all in one unit. A phase's learning rate is its own ``@LR``, else the
run's ``lr`` scaled from the first phase's batch size ``B0`` by ``lr_scaling``
(:func:`sgdlab.optim.scaled_lr`): ``none`` by default, every phase at ``lr`` (raising the
batch size at a fixed rate is what replaces a learning-rate decay in Smith et al. 2017);
``linear``, ``lr * B / B0``; ``sqrt``, ``lr * sqrt(B / B0)``. From Python a schedule may also
be a sequence of ``(batch_size, start)`` or ``(batch_size, start, lr)``, ``start`` a whole
number of examples or a text such as ``"2e"``.

Where a phase starts (:class:`PhaseTable`): at the first step boundary at which the examples
seen reach ``START`` (a boundary falls between steps, so a phase may start a little after its
count), or at which ``START`` epochs are done (a whole number of epochs: exactly at the start
of that epoch; a fraction counts the rows of the epoch drawn so far). The epochs are cut as
:class:`sgdlab.data.sampling.EpochRows` says: a boundary inside an epoch continues the same
order in batches of the new size (``shuffle``: the rest of the epoch's permutation;
``sequential``: the next rows; ``replacement``: the epoch's stream of draws, which does not
depend on the batch size), and with ``drop_last`` an epoch ends as soon as fewer rows than the
batch size in effect remain. An epoch crossed by a boundary has as many steps as both batch
sizes cut it into; the history's ``epoch`` is the completed epochs plus the share of the
current epoch's steps done (:class:`PhaseClock`), as for one batch size.

Which schedules are refused, each with one message: unreadable text, a batch size below 1, a
non-positive learning rate, a first phase that does not start at 0, starts that do not
increase or mix units (:meth:`BatchSchedule.parse`); with the data known, a batch size above
the training examples (or not a multiple of the processes), and a phase that never runs, or
never starts before the run ends (:meth:`PhaseTable.build`, :meth:`PhaseTable.check_reached`).
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, replace

from .._types import MAX_DIMENSION
from ..data.sampling import EpochRows
from ..errors import ConfigError
from .schedule import ConstantClock

#: How a schedule is written, for messages.
SYNTAX = ("write BATCH:START or BATCH@LR:START joined by commas, START a number of examples "
          "(2000) or of epochs (2e), e.g. '16:0,64:2000' or '16@0.05:0,64@0.2:2e'")

_PHASE = re.compile(r"^\s*(?P<b>[^@:\s]+)\s*(?:@\s*(?P<lr>[^:\s]+)\s*)?:\s*(?P<start>\S.*?)\s*$")
_EPOCHS = re.compile(r"^(?P<x>.+?)\s*(?:e|ep|epoch|epochs)$")


@dataclass(frozen=True)
class Phase:
    """One phase as written: ``batch_size`` from ``start`` examples (``unit="examples"``, a
    whole number) or epochs (``unit="epochs"``), at learning rate ``lr`` (None: the run's,
    scaled by ``lr_scaling``)."""

    batch_size: int
    start: float
    unit: str = "examples"
    lr: float | None = None

    @property
    def start_text(self) -> str:
        """``2000`` or ``2e``: the start as the text form writes it."""
        return f"{self.start}" if self.unit == "examples" else f"{_number(self.start)}e"

    @property
    def text(self) -> str:
        lr = "" if self.lr is None else f"@{_number(self.lr)}"
        return f"{self.batch_size}{lr}:{self.start_text}"

    def describe(self) -> str:
        """``batch 64 from 2000 examples`` / ``batch 64 from 2 epochs``, for messages."""
        unit = "examples" if self.unit == "examples" else \
            ("epoch" if self.start == 1 else "epochs")
        return f"batch {self.batch_size} from {_number(self.start)} {unit}"


def _whole(x: float) -> int | None:
    """``x`` as an int when it is a whole finite number, else None."""
    return int(x) if math.isfinite(x) and float(x).is_integer() else None


def _number(x) -> str:
    """A number as short exact text: ``2`` for 2.0, else ``repr`` (which reads back exactly)."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


@dataclass(frozen=True)
class BatchSchedule:
    """The phases of a batch-size schedule (see the module docstring), checked when parsed.

    >>> s = BatchSchedule.parse("16:0, 64@0.2:2000,256:8e3")
    >>> s.text, s.batch_sizes
    ('16:0,64@0.2:2000,256:8000', (16, 64, 256))
    >>> BatchSchedule.parse("16:0,64:2e").phases[1]
    Phase(batch_size=64, start=2.0, unit='epochs', lr=None)
    """

    phases: tuple

    @classmethod
    def parse(cls, value) -> "BatchSchedule":
        """A schedule from its text, a sequence of ``(batch_size, start[, lr])`` or a
        schedule; a :class:`ConfigError` naming what is wrong otherwise."""
        if isinstance(value, BatchSchedule):
            return value
        if isinstance(value, str):
            text = value
            if not text.strip():
                raise ConfigError(f"the batch schedule {text!r} has no phase; {SYNTAX}")
            parts = [_read_phase(part, i, text) for i, part in enumerate(text.split(","), 1)]
        elif isinstance(value, (list, tuple)):
            text = repr(value)
            parts = [_phase_of(item, i, text) for i, item in enumerate(value, 1)]
        else:
            raise ConfigError(f"a batch schedule is text such as '16:0,64:2000' or a list of "
                              f"(batch_size, start) pairs, got {type(value).__name__}")
        if not parts:
            raise ConfigError(f"the batch schedule {text!r} has no phase; {SYNTAX}")
        _check_order(parts, text)
        return cls(tuple(parts))

    @property
    def text(self) -> str:
        """The text form, which :meth:`parse` reads back to this schedule."""
        return ",".join(p.text for p in self.phases)

    @property
    def batch_sizes(self) -> tuple:
        """The distinct batch sizes, in the order the phases first use them."""
        return tuple(dict.fromkeys(p.batch_size for p in self.phases))

    @property
    def gives_lr(self) -> bool:
        """Whether some phase names its own learning rate."""
        return any(p.lr is not None for p in self.phases)

    def with_lr_factor(self, factor: float) -> "BatchSchedule":
        """The schedule with every learning rate a phase gives multiplied by ``factor`` (a
        divergence retry halves them with the run's ``lr``)."""
        return BatchSchedule(tuple(p if p.lr is None else replace(p, lr=p.lr * factor)
                                   for p in self.phases))


def _bad(i: int, part: str, text: str, why: str) -> ConfigError:
    return ConfigError(f"phase {i} ({part.strip()!r}) of the batch schedule {text!r}: {why}")


def _read_phase(part: str, i: int, text: str) -> Phase:
    m = _PHASE.match(part)
    if not m:
        raise ConfigError(f"cannot read phase {i} ({part.strip()!r}) of the batch schedule "
                          f"{text!r}; {SYNTAX}")
    try:
        b = float(m.group("b"))
    except ValueError:
        raise _bad(i, part, text, f"the batch size {m.group('b')!r} is not a number; "
                                  f"{SYNTAX}") from None
    lr = None
    if m.group("lr") is not None:
        try:
            lr = float(m.group("lr"))
        except ValueError:
            raise _bad(i, part, text, f"the learning rate {m.group('lr')!r} is not a "
                                      "number") from None
    start = m.group("start")
    epochs = _EPOCHS.match(start)
    try:
        number = float(epochs.group("x") if epochs else start)
    except ValueError:
        raise _bad(i, part, text, f"the start {start!r} is neither a number of examples "
                                  f"(2000) nor of epochs (2e); {SYNTAX}") from None
    return _phase(b, number, "epochs" if epochs else "examples", lr, i, part, text)


def _phase_of(item, i: int, text: str) -> Phase:
    """A phase from a ``(batch_size, start[, lr])`` tuple (``start`` a whole number of
    examples or a text start such as ``"2e"``)."""
    if not isinstance(item, (list, tuple)) or len(item) not in (2, 3):
        raise ConfigError(f"phase {i} of the batch schedule {text}: give (batch_size, start) "
                          f"or (batch_size, start, lr), got {item!r}")
    b, start, lr = (*item, None)[:3]
    if isinstance(start, str):
        phase = _read_phase(f"1:{start}", i, text)
        number, unit = phase.start, phase.unit
    else:
        number, unit = start, "examples"
    for value in (b, number) + (() if lr is None else (lr,)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ConfigError(f"phase {i} of the batch schedule {text}: batch size, start and "
                              f"learning rate are numbers, got {item!r}")
    return _phase(float(b), float(number), unit, None if lr is None else float(lr), i,
                  repr(item), text)


def _phase(b: float, start: float, unit: str, lr, i: int, part: str, text: str) -> Phase:
    size = _whole(b)
    if size is None or not 1 <= size <= MAX_DIMENSION:
        raise _bad(i, part, text, f"the batch size must be a whole number in [1, "
                                  f"{MAX_DIMENSION}], got {_number(b)}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise _bad(i, part, text, f"the learning rate must be a finite number > 0, got "
                                  f"{_number(lr)}")
    if not math.isfinite(start) or start < 0:
        raise _bad(i, part, text, f"the start must be a finite number >= 0, got "
                                  f"{_number(start)}")
    if unit == "examples":
        count = _whole(start)
        if count is None:
            raise _bad(i, part, text, f"a number of examples is whole, got {_number(start)} "
                                      "(write epochs with an e: 2.5e)")
        return Phase(size, count, unit, lr)
    return Phase(size, float(start), unit, lr)


def _check_order(parts: list, text: str) -> None:
    if parts[0].start != 0:
        raise ConfigError(f"the first phase of the batch schedule {text!r} must start at 0 "
                          f"(the start of the run), not at {parts[0].start_text}: add a phase "
                          f"'B:0' before it")
    units = {p.unit for p in parts[1:]}
    if len(units) > 1:
        raise ConfigError(f"the batch schedule {text!r} mixes starts in examples and in epochs: "
                          "give every start in one unit (2000 or 2e)")
    for i, (a, b) in enumerate(zip(parts, parts[1:]), 2):
        if b.start <= a.start:
            raise ConfigError(f"the batch schedule {text!r} must start its phases at "
                              f"increasing counts: phase {i} starts at {b.start_text}, not "
                              f"after phase {i - 1}'s {a.start_text}")


# -- a schedule on the data: the step each phase starts at -----------------------------------


@dataclass(frozen=True)
class PhaseStart:
    """Where a phase of a run starts: its ``batch_size`` and learning rate ``lr`` from
    ``step`` on, the epoch and the slot of the epoch its first step starts at
    (:class:`~sgdlab.data.sampling.EpochRows`), and the ``examples`` seen before it."""

    batch_size: int
    lr: object
    step: int
    epoch: int
    slot: int
    examples: int


def _after(rows: EpochRows, batch_size: int, e: int, a: int, k: int) -> tuple[int, int, int]:
    """``(epoch, slot, examples)`` after ``k`` steps of ``batch_size`` from slot ``a`` of epoch
    ``e`` (``examples``: those the ``k`` steps saw). Arithmetic per epoch, not per step."""
    x = 0
    if a:
        head = rows.steps_left(a, batch_size)
        if k < head:
            return e, a + k * rows.local(batch_size), rows.examples(a, batch_size, k)
        x, k, e, a = rows.examples(a, batch_size, head), k - head, e + 1, 0
    spe = rows.steps_left(0, batch_size)
    q, r = divmod(k, spe)
    x += q * rows.examples(0, batch_size, spe) + rows.examples(0, batch_size, r)
    return e + q, r * rows.local(batch_size), x


def _first(lo: int, hi: int, ok) -> int:
    """The smallest ``k`` in ``[lo, hi]`` with ``ok(k)``, for ``ok`` false then true
    (``ok(hi)`` holds)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _reach(rows: EpochRows, batch_size: int, at: tuple, done) -> tuple:
    """The first step boundary at or after ``at = (step, epoch, slot, examples)`` at which
    ``done(epoch, slot, examples)`` holds, training at ``batch_size``; ``done`` must turn true
    and stay true as training goes on. Arithmetic per epoch (searches), not per step."""
    t, e, a, x = at
    if done(e, a, x):
        return at

    def moved(k):
        e2, a2, dx = _after(rows, batch_size, e, a, k)
        return t + k, e2, a2, x + dx

    head = rows.steps_left(a, batch_size)
    if a and not done(*moved(head)[1:]):  # not within the current epoch: skip to its end
        t, e, a, x = moved(head)
    if a == 0:
        spe = rows.steps_left(0, batch_size)
        hi = 1
        while not done(*moved(hi * spe)[1:]):  # whole epochs, doubling, then halving
            hi *= 2
        j = _first(1, hi, lambda j: done(*moved(j * spe)[1:]))
        t, e, a, x = moved((j - 1) * spe)
        head = spe
    return moved(_first(1, head, lambda k: done(*moved(k)[1:])))


class PhaseTable:
    """A run's phases on its data: the step each starts at, conversions between steps,
    examples and epochs, and the checks that need the data.

    A run with one batch size has a table of one phase (:meth:`fixed`), so every run goes
    through the same loop. ``clock`` is the run's epoch clock: :class:`ConstantClock` for one
    phase, else a :class:`PhaseClock`.
    """

    def __init__(self, phases: tuple, clock, rows: EpochRows | None = None, written=None):
        self.phases, self.clock, self.rows, self.written = tuple(phases), clock, rows, written

    @classmethod
    def fixed(cls, batch_size: int, lr, steps_per_epoch: int,
              rows: EpochRows | None = None) -> "PhaseTable":
        """One batch size for the whole run."""
        return cls((PhaseStart(batch_size, lr, 0, 0, 0, 0),), ConstantClock(steps_per_epoch),
                   rows)

    @classmethod
    def build(cls, schedule: BatchSchedule, rows: EpochRows, *, lr, lr_scaling: str = "none",
              data: str = "the training data", processes: int = 1) -> "PhaseTable":
        """The table of ``schedule`` on epochs cut as ``rows`` says (``data`` names them in
        messages); each phase's learning rate is its own or ``lr`` scaled by ``lr_scaling``
        from the first phase's batch size. ``processes`` share every batch equally."""
        from ..optim import scaled_lr
        b0 = schedule.phases[0].batch_size
        for i, p in enumerate(schedule.phases, 1):
            _check_fits(p, i, rows, data, processes)
        starts, at = [], (0, 0, 0, 0)
        for i, p in enumerate(schedule.phases):
            if i:
                before = schedule.phases[i - 1]
                if p.unit == "examples":
                    def done(e, a, x, need=p.start):
                        return x >= need
                else:
                    def done(e, a, x, need=p.start):
                        return e + a / rows.slots >= need - 1e-12
                reached = _reach(rows, before.batch_size, at, done)
                if reached[0] == at[0]:
                    raise ConfigError(
                        f"phase {i} of the batch schedule ({before.describe()}) never runs: "
                        f"phase {i + 1} ({p.describe()}) starts at the same step {at[0]}, "
                        f"since a step of {before.batch_size} ends after {at[3]} examples of "
                        f"{data}; drop phase {i} or move phase {i + 1}'s start later")
                at = reached
            t, e, a, x = at
            if a and rows.ends(a, p.batch_size):  # drop_last: too few rows left for B
                e, a = e + 1, 0
            at = (t, e, a, x)
            rate = p.lr if p.lr is not None else (
                lr if callable(lr) else scaled_lr(lr, p.batch_size, b0, lr_scaling))
            starts.append(PhaseStart(p.batch_size, rate, t, e, a, x))
        if len(starts) == 1:
            return cls(starts, ConstantClock(rows.steps_left(0, b0)), rows, schedule)
        return cls(starts, PhaseClock(tuple(starts), rows), rows, schedule)

    # -- which phase ------------------------------------------------------------------------------
    @property
    def phased(self) -> bool:
        """Whether the batch size changes during the run."""
        return len(self.phases) > 1

    @property
    def batch_sizes(self) -> tuple:
        """The distinct batch sizes, in the order the run first uses them."""
        return tuple(dict.fromkeys(p.batch_size for p in self.phases))

    def index_at(self, step: int) -> int:
        """The phase the step after ``step`` steps belongs to."""
        return max(i for i, p in enumerate(self.phases) if p.step <= step)

    def next_start(self, step: int) -> int | None:
        """The step the phase after ``step``'s starts at (None in the last phase)."""
        later = [p.step for p in self.phases if p.step > step]
        return later[0] if later else None

    def columns(self, step: int) -> dict:
        """A history row's ``batch_size`` and ``lr``: those of the step that led to ``step``
        (step 0: the first phase's). A learning rate given as an optax schedule has no
        column."""
        p = self.phases[self.index_at(max(step - 1, 0))]
        return {"batch_size": p.batch_size} if callable(p.lr) else \
            {"batch_size": p.batch_size, "lr": float(p.lr)}

    # -- conversions ------------------------------------------------------------------------------
    def _rows(self) -> EpochRows:
        if self.rows is None:
            raise ValueError("this table was built without the data's epochs")
        return self.rows

    def where(self, step: int) -> tuple[int, int, int]:
        """``(epoch, slot, examples seen)`` after ``step`` steps."""
        p = self.phases[self.index_at(step)]
        e, a, x = _after(self._rows(), p.batch_size, p.epoch, p.slot, step - p.step)
        return e, a, p.examples + x

    def examples_at(self, step: int) -> int:
        """Examples seen after ``step`` steps (real rows; masked slots do not count)."""
        return self.where(step)[2]

    def step_reaching(self, examples: int) -> int:
        """The first step boundary at which ``examples`` examples have been seen: the number
        of steps a run needs for an example budget."""
        i = max(j for j, p in enumerate(self.phases) if p.examples <= examples)
        p = self.phases[i]
        return _reach(self._rows(), p.batch_size, (p.step, p.epoch, p.slot, p.examples),
                      lambda e, a, x: x >= examples)[0]

    # -- checks and records -----------------------------------------------------------------------
    def check_reached(self, total: int | None) -> None:
        """Refuse a phase that starts at or after the run's last step ``total`` (None: the
        run ends by time or target, so any phase may start)."""
        if total is None or self.written is None:
            return
        for i, (p, w) in enumerate(zip(self.phases, self.written.phases), 1):
            if i > 1 and p.step >= total:
                seen = self.examples_at(total)
                raise ConfigError(
                    f"phase {i} of the batch schedule ({w.describe()}) never starts: the run "
                    f"ends after {total} steps ({seen} examples, "
                    f"{self.clock.epochs(total):.4g} epochs), and that phase would start at "
                    f"step {p.step}; train longer (--epochs, --max-steps) or start it earlier")

    def describe(self) -> list[dict]:
        """Each phase as ``{"batch_size", "lr", "start_step", "start_examples",
        "start_epoch"}`` (``result.extra["batch_phases"]``, ``metrics.json``)."""
        return [{"batch_size": p.batch_size,
                 "lr": None if callable(p.lr) else float(p.lr), "start_step": p.step,
                 "start_examples": p.examples, "start_epoch": self.clock.epochs(p.step)}
                for p in self.phases]


def _check_fits(p: Phase, i: int, rows: EpochRows, data: str, world: int) -> None:
    """A phase's batch size against the data: at most its rows, an equal share for each of
    ``world`` processes, and (with drop_last over several processes) at least one whole
    local batch."""
    if p.batch_size > rows.n:
        raise ConfigError(f"phase {i} of the batch schedule ({p.describe()}) is larger than "
                          f"the {rows.n} training examples of {data}; use batch sizes up to "
                          f"{rows.n} ({rows.n}: full-batch gradient descent)")
    if p.batch_size % world:
        raise ConfigError(f"phase {i} of the batch schedule ({p.describe()}): batch size "
                          f"{p.batch_size} must be a multiple of the number of processes "
                          f"({world}): each process takes an equal share")
    if rows.steps_left(0, p.batch_size) == 0:
        raise ConfigError(f"phase {i} of the batch schedule ({p.describe()}): with drop_last "
                          "a process gets fewer rows than its share of one batch; use a "
                          "smaller batch size or fewer processes")


class PhaseClock:
    """Epochs of a run whose batch size changes: epoch ``e`` has as many steps as its phases
    cut it into, and ``epochs(step) = e + (step - start(e)) / (start(e + 1) - start(e))``, as
    :class:`ConstantClock` does for one batch size (``start(e)``: the step epoch ``e`` starts
    at). ``spe``: steps per epoch at the first phase's batch size (the run's record)."""

    def __init__(self, phases: tuple, rows: EpochRows):
        self.phases, self.rows = phases, rows
        self.spe = rows.steps_left(0, phases[0].batch_size)

    def _epoch_start(self, e: int) -> int:
        rows = self.rows
        p = max((q for q in self.phases if (q.epoch, q.slot) <= (e, 0)),
                key=lambda q: q.step)
        if (p.epoch, p.slot) == (e, 0):
            return p.step
        head = rows.steps_left(p.slot, p.batch_size) if p.slot else 0
        first = p.epoch + (1 if p.slot else 0)
        return p.step + head + (e - first) * rows.steps_left(0, p.batch_size)

    def _epoch_of(self, step: int) -> int:
        p = max((q for q in self.phases if q.step <= step), key=lambda q: q.step)
        head = self.rows.steps_left(p.slot, p.batch_size) if p.slot else 0
        if p.slot and step - p.step < head:
            return p.epoch
        first = p.epoch + (1 if p.slot else 0)
        return first + (step - p.step - head) // self.rows.steps_left(0, p.batch_size)

    def epochs(self, step: int) -> float:
        """Fractional epochs done after ``step`` steps."""
        e = self._epoch_of(step)
        s0, s1 = self._epoch_start(e), self._epoch_start(e + 1)
        return e + (step - s0) / (s1 - s0)

    def step_at(self, epochs: float) -> int:
        """The first step at which ``epochs`` epochs are done."""
        e = math.floor(epochs + 1e-12)
        frac = max(0.0, epochs - e)
        s0 = self._epoch_start(e)
        if frac < 1e-12:
            return s0
        return s0 + math.ceil(frac * (self._epoch_start(e + 1) - s0) - 1e-9)

    def marks(self, step: int, every: float) -> int:
        """How many of the marks ``step_at(m * every)``, m >= 1, lie at or before ``step``."""
        m = max(0, math.floor(self.epochs(step) / every + 1e-9))
        while self.step_at((m + 1) * every) <= step:
            m += 1
        while m > 0 and self.step_at(m * every) > step:
            m -= 1
        return m
