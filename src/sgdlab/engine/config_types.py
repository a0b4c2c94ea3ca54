"""The kind of value each :class:`~sgdlab.engine.config.TrainConfig` setting takes.

Settings arrive from Python, TOML files and command lines, so a value can be of any type:
``l2 = "0.1"`` in a TOML file, ``epochs=None`` where a number was meant, ``seed=-1``. Checking
the *kind* first lets the range checks that follow compare numbers with numbers, and gives a
message that names the setting instead of a ``TypeError`` from deep inside:

    setting 'l2' must be a finite number >= 0, got '0.1' (str)

NumPy scalars are accepted and stored as Python ``int``/``float``.
"""

from __future__ import annotations

import numbers

from .._types import is_finite_number
from ..errors import ConfigError

#: Largest sizes accepted for settings that become array dimensions: far above any real use,
#: low enough that a typo is refused instead of exhausting memory when the program compiles.
MAX_DIMENSION = 1 << 20


def _fail(name, value, kind) -> ConfigError:
    return ConfigError(f"setting {name!r} must be {kind}, got {value!r} "
                       f"({type(value).__name__})")


def _integer(name, value, minimum=None, maximum=None, optional=False):
    """A whole number; ``minimum=None`` leaves the lower bound to TrainConfig's own check."""
    if value is None and optional:
        return None
    kind = "a whole number" + (f" >= {minimum}" if minimum is not None else "") + \
        (f" and <= {maximum}" if maximum else "") + (" (or None)" if optional else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _fail(name, value, kind)
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _fail(name, value, kind)
    return value


def _real(name, value, optional=False, finite=True):
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or (finite and not is_finite_number(value)):
        raise _fail(name, value, ("a finite number" if finite else "a number")
                    + (" (or None)" if optional else ""))
    return float(value) if not isinstance(value, int) else value


def _text(name, value, optional=False):
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise _fail(name, value, "text" + (" (or None)" if optional else ""))
    return value


def _optimizer(name, value):
    # A name, or any optax GradientTransformation (anything with init and update).
    if isinstance(value, str) or (hasattr(value, "init") and hasattr(value, "update")):
        return value
    raise _fail(name, value, "an optimiser name or an optax GradientTransformation")


def _rate(name, value):
    # A number (range checked with its own message), or an optax schedule: step -> rate.
    if callable(value):
        return value
    return _real(name, value, finite=False)


def _flag(name, value):
    if not isinstance(value, bool):
        raise _fail(name, value, "true or false")
    return value


def _hidden(name, value):
    if isinstance(value, str):
        return value  # parsed (and checked) by parse_hidden
    if not isinstance(value, (list, tuple)) or not value:
        raise _fail(name, value, "layer widths such as (128,) or '256,128'")
    return tuple(_integer(name, h, 1, MAX_DIMENSION) for h in value)


def _model(name, value):
    # A name or an import path, or a user network: a Model, an (init, apply) pair, a Flax or
    # Equinox module (each checked when the model is built, by sgdlab.models.get_model).
    if value is None or isinstance(value, (numbers.Number, bytes, list, dict)):
        raise _fail(name, value, "a model name, 'package.module:factory', an (init, apply) "
                                 "pair or a Flax/Equinox module")
    return value


def _loss(name, value):
    if value is None or isinstance(value, str) or callable(value) or hasattr(value, "fn"):
        return value
    raise _fail(name, value, "a loss name or a loss function (or None)")


CHECKS = {
    "model": _model,
    "loss": _loss,
    "hidden": _hidden,
    "activation": _text,
    "batch_size": _integer,
    "sampling": _text,
    "drop_last": _flag,
    "lr": _rate,
    "optimizer": _optimizer,
    "momentum": _real,
    "schedule": _text,
    "l2": _real,
    "gradient": _text,
    "epochs": lambda n, v: _real(n, v, optional=True),
    "max_steps": lambda n, v: _integer(n, v, optional=True),
    "max_time": lambda n, v: v if isinstance(v, str) else _real(n, v, optional=True),
    "target": lambda n, v: _real(n, v, optional=True),
    "eval_every": lambda n, v: v if hasattr(v, "every_steps") else _text(n, v, optional=True),
    "chunk_steps": lambda n, v: _integer(n, v, None, MAX_DIMENSION, optional=True),
    "validation_fraction": _real,
    "test_fraction": _real,
    "standardize": _flag,
    "seed": lambda n, v: _integer(n, v, 0, 2 ** 32 - 1),
    "extra": lambda n, v: v if isinstance(v, dict) else _fail(n, v, "a table (dict)"),
}


#: Kinds a new setting may name in its declaration (``kind=`` of ``TrainConfig``'s
#: ``_setting``) instead of an entry in :data:`CHECKS`.
KINDS = {
    "widths": _hidden,
    "real": _real,
    "real or None": lambda n, v: _real(n, v, optional=True),
    "whole number": _integer,
    "whole number or None": lambda n, v: _integer(n, v, optional=True),
    "text": _text,
    "flag": _flag,
}


def check_of(field) -> object:
    """The kind check of a dataclass ``field``: its declared ``kind``, else :data:`CHECKS`'s."""
    kind = field.metadata.get("kind")
    return KINDS[kind] if kind is not None else CHECKS.get(field.name)


def check_setting_kinds(config) -> dict:
    """``{field: normalised value}`` for every field of ``config``, or :class:`ConfigError`."""
    import dataclasses
    out = {}
    for f in dataclasses.fields(config):
        check = check_of(f)
        if check is None:
            raise TypeError(f"setting {f.name!r} declares no kind: give it kind= (one of "
                            f"{', '.join(KINDS)}) or an entry in config_types.CHECKS")
        value = check(f.name, getattr(config, f.name))
        if isinstance(value, ConfigError):
            raise value
        out[f.name] = value
    return out
