"""How a training setting is declared and checked: its kind, range and choices, in one place.

Every :class:`~sgdlab.engine.config.TrainConfig` field is declared with a :class:`Setting`
(``setting(default, role, kind, help, ...)``). From that one declaration follow the checks a
value passes when a config is built, the command-line flag and its help text
(:mod:`sgdlab.cli.common`), the text a flag takes and gives back (``sgdlab sweep``'s ``next:``
command), and the estimators' parameter checks.

Settings arrive from Python, TOML files, command lines and estimators, so a value can be of
any type: ``l2 = "0.1"`` in a TOML file, ``epochs=None`` where a number was meant,
``seed=-1``. The *kind* is checked first, so the range check that follows compares numbers with
numbers, and every failure is one message naming the setting, its flag, what it takes and what
it got, the same from every entry point:

    setting 'l2' (--l2) must be a finite number >= 0, got '0.1' (str)

NumPy scalars are accepted and stored as Python ``int``/``float``.

>>> s = Setting("objective", "real", "L2 strength", 0.0, low=0.0)
>>> s.check("l2", 0.5)
0.5
>>> s.check("l2", -1)
Traceback (most recent call last):
...
sgdlab.errors.ConfigError: setting 'l2' (--l2) must be a finite number >= 0, got -1
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Callable, Iterable, NamedTuple

from .._types import MAX_DIMENSION, is_finite_number, layer_widths, whole_number
from ..errors import ConfigError, choices_message

#: What each setting changes in a compiled program, so the program store's key is derived
#: from the settings instead of listed by hand (:func:`sgdlab.engine.cache.program_key`):
#:
#: * ``model``: the network and loss (keyed by value when they come from names; a model's
#:   option only for a model whose factory takes it);
#: * ``objective``: the minimised function itself (``l2``), for training and evaluation;
#: * ``optimizer``: how a training step moves the parameters (an optimiser's option only for
#:   an optimiser whose factory takes it);
#: * ``shape``: enters as an array shape the caller passes (``batch_size``, ``chunk_steps``);
#: * ``host``: decided on the host between compiled calls, never compiled in.
KEY_ROLES = ("model", "objective", "optimizer", "shape", "host")


#: The help sections of the command line's setting flags, in the order ``--help`` shows them.
GROUPS = ("data", "model", "optimisation", "batch schedule", "stopping", "notes")
_ROLE_GROUPS = {"model": "model", "objective": "model", "optimizer": "optimisation"}


class _NotOfKind(Exception):
    """A value is not of a setting's kind: turned into the setting's message, or the one it
    carries, prefixed with the setting."""


class Kind(NamedTuple):
    """A kind of value: ``noun`` for messages, ``accept(value)`` the normalised value (or
    :class:`_NotOfKind`), ``parse(text)`` from command-line text (or ``ValueError``) and
    ``show(value)`` as command-line text that ``parse`` reads back (None: no text form);
    ``also``: what it takes besides, said after the range."""

    noun: str
    accept: Callable[[object], object]
    parse: Callable[[str], object]
    show: Callable[[object], str | None]
    also: str = ""


def _real(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not is_finite_number(value):
        raise _NotOfKind
    return value if isinstance(value, int) else float(value)


def _whole(value):
    n = whole_number(value)
    if n is None:
        raise _NotOfKind
    return n


def _text(value):
    if not isinstance(value, str):
        raise _NotOfKind
    return value


def _flag(value):
    if not isinstance(value, bool):
        raise _NotOfKind
    return value


def _widths(value):
    try:
        return layer_widths(value, empty=False, limit=MAX_DIMENSION)
    except ConfigError as e:
        raise _NotOfKind(str(e)) from None


def _rate(value):
    return value if callable(value) else _real(value)  # an optax schedule: step -> rate


def _duration(value):
    from .schedule import parse_duration
    if isinstance(value, bool) or not isinstance(value, (str, numbers.Real)):
        raise _NotOfKind
    try:
        return parse_duration(value if isinstance(value, str) else float(value))
    except (ConfigError, OverflowError):
        raise _NotOfKind from None


def _eval_schedule(value):
    from .schedule import EvalSchedule
    if isinstance(value, EvalSchedule):
        return value
    if not isinstance(value, str):
        raise _NotOfKind
    try:
        EvalSchedule.parse(value)
    except ConfigError:
        raise _NotOfKind from None
    return value


def _batch_schedule(value):
    # text, a sequence of (batch_size, start[, lr]) or a BatchSchedule: kept as its text form
    from .batch_schedule import BatchSchedule
    if isinstance(value, (bytes, dict)) or not isinstance(value, (str, list, tuple)) and \
            not isinstance(value, BatchSchedule):
        raise _NotOfKind
    try:
        return BatchSchedule.parse(value).text
    except ConfigError as e:
        raise _NotOfKind(str(e)) from None


def _model(value):
    # A name or an import path, or a user network: a Model, an (init, apply) pair, a Flax or
    # Equinox module (each checked when the model is built, by sgdlab.models.get_model).
    if value is None or isinstance(value, (numbers.Number, bytes, list, dict)):
        raise _NotOfKind
    return value


def _loss(value):
    if isinstance(value, str) or callable(value) or hasattr(value, "fn"):
        return value
    raise _NotOfKind


def _optimizer(value):
    # A name, or any optax GradientTransformation (anything with init and update).
    if isinstance(value, str) or (hasattr(value, "init") and hasattr(value, "update")):
        return value
    raise _NotOfKind


def _table(value):
    if not isinstance(value, dict):
        raise _NotOfKind
    return value


def _number_text(value) -> str | None:
    return repr(value) if isinstance(value, (int, float)) else None  # repr: exact


def _plain_text(value) -> str | None:
    return value if isinstance(value, str) else None


def _widths_text(value) -> str:
    return ",".join(str(w) for w in value)


def _no_text(text):
    raise ValueError("no text form")


#: The kinds a setting may declare.
KINDS: dict[str, Kind] = {
    "real": Kind("a finite number", _real, float, _number_text),
    "whole number": Kind("a whole number", _whole, int, _number_text),
    "text": Kind("text", _text, str, _plain_text),
    "flag": Kind("true or false", _flag, _no_text, lambda v: None),
    "widths": Kind("layer widths such as (128,) or '256,128'", _widths, str, _widths_text),
    "rate": Kind("a finite number", _rate, float, _number_text, " or an optax schedule"),
    "duration": Kind("a duration such as 60, '60s', '5 min' or '1h'", _duration, str,
                     _number_text),
    "eval schedule": Kind("an evaluation schedule such as '1 epoch', '500 steps', '2s' or "
                          "'end'", _eval_schedule, str, _plain_text),
    "batch schedule": Kind("a batch schedule such as '16:0,64:2000' or '16@0.05:0,64@0.2:2e'",
                           _batch_schedule, str, _plain_text),
    "model": Kind("a model name", _model, str, _plain_text, ", an import path "
                  "'package.module:factory', an (init, apply) pair or a Flax/Equinox module"),
    "loss": Kind("a loss name", _loss, str, _plain_text, " or a loss function"),
    "optimizer": Kind("an optimiser name", _optimizer, str, _plain_text,
                      " or an optax GradientTransformation"),
    "table": Kind("a table (dict)", _table, _no_text, lambda v: None),
}


def _interval(low, high, low_open, high_open) -> str:
    def num(x):
        return f"{x:g}" if isinstance(x, float) else str(x)
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{num(low)}, {num(high)}{')' if high_open else ']'}"
    if low is not None:
        return f" {'>' if low_open else '>='} {num(low)}"
    if high is not None:
        return f" {'<' if high_open else '<='} {num(high)}"
    return ""


@dataclass(frozen=True)
class Setting:
    """The declaration of one setting, what :func:`setting` puts in a field's metadata.

    ``role`` is its :data:`KEY_ROLES` entry; ``kind`` a key of :data:`KINDS`; ``help`` what it
    means, in a phrase (the flag's help; ``{choices}`` there lists ``choices``). Numbers may
    have a range (``low``/``high``, each closed unless ``low_open``/``high_open``); names a
    registry, ``choices()`` returning the names accepted (the registry is read at each check,
    so a name registered later is taken). ``optional``: None is accepted too (written
    ``none`` on the command line). ``flags``: the command-line spellings when not
    ``--name-with-dashes``. ``default``: the field's default, which names a true-or-false
    setting's flag (``--drop-last`` turns on what is off by default, ``--no-standardize``
    turns off what is on).
    """

    role: str
    kind: str
    help: str
    default: object = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: Callable[[], Iterable[str]] | None = None
    optional: bool = False
    flags: tuple[str, ...] = ()
    group: str | None = None

    def __post_init__(self):
        if self.role not in KEY_ROLES:
            raise TypeError(f"role {self.role!r} is not one of {', '.join(KEY_ROLES)}")
        if self.kind not in KINDS:
            raise TypeError(f"kind {self.kind!r} is not one of {', '.join(KINDS)}")
        group = self.group or _ROLE_GROUPS.get(self.role)
        if group not in GROUPS:
            raise TypeError(f"a {self.role!r} setting names its help group: group= one of "
                            f"{', '.join(GROUPS)}")
        object.__setattr__(self, "group", group)

    def flag(self, name: str) -> str:
        """The command-line flag that sets it (a true-or-false setting: the flag that turns
        it away from its default)."""
        if self.flags:
            return self.flags[0]
        dashed = name.replace("_", "-")
        return f"--no-{dashed}" if self.kind == "flag" and self.default else f"--{dashed}"

    def allowed(self) -> str:
        """What it takes, in words: ``a finite number in [0, 1)``, ``a whole number >= 1 (or
        None)``."""
        kind = KINDS[self.kind]
        noun = f"one of {', '.join(self.names())}" if self.choices is not None else kind.noun
        words = noun + _interval(self.low, self.high, self.low_open, self.high_open) + kind.also
        return words + (" (or None)" if self.optional else "")

    def names(self) -> tuple[str, ...]:
        """The registry's names, for messages and help (empty without ``choices``)."""
        return tuple(self.choices()) if self.choices is not None else ()

    def check(self, name: str, value):
        """``value`` normalised (a NumPy scalar as a Python number, widths as a tuple, a
        duration in seconds), or a :class:`ConfigError` naming ``name`` and its flag."""
        if value is None and self.optional:
            return None
        try:
            value = KINDS[self.kind].accept(value)
        except _NotOfKind as e:
            if e.args:
                raise ConfigError(f"{self._what(name)}: {e.args[0]}") from None
            raise ConfigError(f"{self._what(name)} must be {self.allowed()}, got {value!r} "
                              f"({type(value).__name__})") from None
        if isinstance(value, numbers.Real) and not self._in_range(value):
            raise ConfigError(f"{self._what(name)} must be {self.allowed()}, got {value!r}")
        if isinstance(value, str) and self.choices is not None and not self._known(value):
            raise ConfigError(f"{self._what(name)}: "
                              + choices_message(name, value, self.names()) + self._other())
        return value

    def from_text(self, name: str, text: str):
        """The value of the command-line text ``text``, checked (``none`` for an optional
        setting is None); the same :class:`ConfigError` as :meth:`check` otherwise."""
        if self.optional and text.strip().lower() == "none":
            return None
        try:
            value = KINDS[self.kind].parse(text)
        except (ValueError, OverflowError):
            raise ConfigError(f"{self._what(name)} must be {self.allowed()}, got "
                              f"{text!r}") from None
        return self.check(name, value)

    def to_text(self, value) -> str | None:
        """``value`` as command-line text that :meth:`from_text` reads back, or None when it
        has no text form (a Python object, a flag)."""
        if value is None:
            return "none" if self.optional else None
        return KINDS[self.kind].show(value)

    def _what(self, name: str) -> str:
        return f"setting {name!r} ({self.flag(name)})"

    def _in_range(self, x) -> bool:
        if self.low is not None and (x <= self.low if self.low_open else x < self.low):
            return False
        return self.high is None or (x < self.high if self.high_open else x <= self.high)

    def _known(self, value: str) -> bool:
        if self.kind == "model" and ":" in value:
            return True  # an import path: imported when the model is built
        if self.kind == "loss":
            from ..losses import ALIASES
            value = ALIASES.get(value, value)
        return value in self.names()

    def _other(self) -> str:
        return {"model": " (or an import path 'package.module:factory' of your own network)",
                "optimizer": " (or an optax GradientTransformation)"}.get(self.kind, "")

