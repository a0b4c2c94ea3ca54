"""When to evaluate: a schedule decoupled from the parameter updates.

The source texts' advice: checking the loss on the whole evaluation set is expensive, so do it
every N steps or every T seconds, never on a subset. A schedule is written as text, parts
joined by commas, any of which triggers an evaluation:

    "500 steps"   every 500 optimisation steps
    "2s", "5 min" every 2 seconds / 5 minutes of *training* time (evaluation time excluded)
    "1 epoch"     every epoch ("0.5 epochs" is allowed)
    "end"         only once, at the end (always included)

>>> EvalSchedule.parse("500 steps, 30s")
EvalSchedule(every_steps=500, every_seconds=30.0, every_epochs=None)
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass

from ..errors import ConfigError

_UNITS = {"s": 1.0, "sec": 1.0, "secs": 1.0, "second": 1.0, "seconds": 1.0,
          "m": 60.0, "min": 60.0, "mins": 60.0, "minute": 60.0, "minutes": 60.0,
          "h": 3600.0, "hour": 3600.0, "hours": 3600.0}
_PART = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[-+]?\d+)?)\s*([a-z]*)\s*$")


def reads_as_duration(text) -> bool:
    """Whether ``text`` has the form of a duration (a number and a known unit), whatever its
    value: ``"0s"`` does (and is refused by :func:`parse_duration` as not > 0), ``"soon"`` not."""
    m = _PART.match(str(text).lower())
    return bool(m) and (not m.group(2) or m.group(2) in _UNITS)


def parse_duration(text: str | float | int | None) -> float | None:
    """Seconds from ``"60s"``, ``"2 min"``, ``"1h"`` or a plain number of seconds."""
    if text is None or isinstance(text, (int, float)):
        if text is not None and not math.isfinite(text):
            raise ConfigError(f"a duration must be finite, got {text}")
        if text is not None and text <= 0:
            raise ConfigError(f"a duration must be > 0 seconds, got {text}")
        return None if text is None else float(text)
    if not reads_as_duration(text):
        raise ConfigError(f"cannot read duration {text!r}; write e.g. '60s', '5 min' or '1h'")
    m = _PART.match(str(text).lower())
    value = float(m.group(1)) * _UNITS.get(m.group(2) or "s", 1.0)
    if not math.isfinite(value):
        raise ConfigError(f"a duration must be finite, got {text!r}")
    if value <= 0:
        raise ConfigError(f"a duration must be > 0, got {text!r}")
    return value


@dataclass(frozen=True)
class ConstantClock:
    """Epochs of a run whose epochs all have ``spe`` steps (one batch size): ``epochs(step) =
    step / spe``. A batch-size schedule's clock
    (:class:`sgdlab.engine.batch_schedule.PhaseClock`) answers the same three questions for
    epochs of varying length.

    >>> c = ConstantClock(10)
    >>> c.epochs(25), c.step_at(2.5), c.marks(25, 1.0)
    (2.5, 25, 2)
    """

    spe: int

    def epochs(self, step: int) -> float:
        """Fractional epochs done after ``step`` steps."""
        return step / self.spe

    def step_at(self, epochs: float) -> int:
        """The first step at which ``epochs`` epochs are done."""
        return math.ceil(epochs * self.spe - 1e-9)

    def marks(self, step: int, every: float) -> int:
        """How many of the marks ``step_at(m * every)``, m >= 1, lie at or before ``step``."""
        return math.floor(step / (every * self.spe) + 1e-9)


def as_clock(spe):
    """``spe`` steps per epoch as a :class:`ConstantClock`; a clock stays itself."""
    return ConstantClock(int(spe)) if isinstance(spe, numbers.Integral) else spe


@dataclass(frozen=True)
class EvalSchedule:
    """Evaluation triggers; ``None`` means the trigger is off. The end always evaluates."""

    every_steps: int | None = None
    every_seconds: float | None = None
    every_epochs: float | None = None

    @classmethod
    def parse(cls, spec: "str | EvalSchedule | None") -> "EvalSchedule":
        if isinstance(spec, EvalSchedule):
            return spec
        if spec is None:
            return cls(every_epochs=1.0)
        steps = seconds = epochs = None
        for part in str(spec).lower().split(","):
            part = part.strip()
            if part in ("", "end"):
                continue
            m = _PART.match(part)
            if not m:
                raise ConfigError(
                    f"cannot read evaluation schedule part {part!r}; write e.g. '500 steps', "
                    "'30s', '1 epoch' or 'end', joined by commas")
            value, unit = float(m.group(1)), m.group(2)
            if not math.isfinite(value):
                raise ConfigError(f"evaluation interval must be finite, got {part!r}")
            if value <= 0:
                raise ConfigError(f"evaluation interval must be > 0, got {part!r}")
            if unit in ("", "step", "steps"):
                if value != int(value):
                    raise ConfigError(f"a number of steps must be whole, got {part!r}")
                steps = int(value)
            elif unit in ("epoch", "epochs", "ep"):
                epochs = value
            elif unit in _UNITS:
                seconds = value * _UNITS[unit]
            else:
                raise ConfigError(f"unknown unit {unit!r} in evaluation schedule {spec!r}; "
                                  "use steps, epochs, s, min or h")
        return cls(steps, seconds, epochs)

    # -- when: shared by the run loop (evaluations) and the session (checkpoints) -------------
    # ``clock`` is the run's epoch clock (:class:`ConstantClock`, or a batch-size schedule's),
    # or a whole number of steps per epoch.
    def epoch_marks(self, step: int, clock) -> int:
        """How many epoch boundaries ``clock.step_at(m * every_epochs)``, m >= 1, lie at or
        before ``step``."""
        return as_clock(clock).marks(step, self.every_epochs)

    def due(self, step: int, seconds: float, last_step: int, last_seconds: float,
            clock) -> bool:
        """Has a step or epoch boundary been crossed since ``last_step``, or have
        ``every_seconds`` passed since ``last_seconds``? Boundaries are absolute (every
        multiple of N steps, of E epochs), so an extra trigger by time does not shift them.
        Steps are steps whatever their batch size; epochs are passes over the data."""
        if self.every_steps and step // self.every_steps > last_step // self.every_steps:
            return True
        if self.every_epochs and \
                self.epoch_marks(step, clock) > self.epoch_marks(last_step, clock):
            return True
        return bool(self.every_seconds and seconds - last_seconds >= self.every_seconds)

    def steps_to_next(self, step: int, clock, cap: int) -> int:
        """Steps from ``step`` to the next step or epoch boundary (at most ``cap``, at least
        1); time triggers are checked after each chunk instead."""
        gaps = [cap]
        if self.every_steps:
            gaps.append((step // self.every_steps + 1) * self.every_steps - step)
        if self.every_epochs:
            clock = as_clock(clock)
            m = clock.marks(step, self.every_epochs) + 1
            gaps.append(clock.step_at(m * self.every_epochs) - step)
        return max(1, min(gaps))

    def describe(self) -> str:
        parts = []
        if self.every_steps:
            parts.append(f"{self.every_steps} steps")
        if self.every_seconds:
            parts.append(f"{self.every_seconds:g}s")
        if self.every_epochs:
            parts.append(f"{self.every_epochs:g} epoch" + ("s" if self.every_epochs != 1 else ""))
        return ", ".join(parts + ["end"])
