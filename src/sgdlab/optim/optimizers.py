"""Optimisers are optax gradient transformations; sgdlab only names and builds them.

Vanilla SGD is the default, the update of the source texts:

.. math:: W \\leftarrow W - \\alpha \\, \\nabla_W L

The others of :data:`FACTORIES` (heavy-ball and Nesterov momentum, Adam, AdamW, ...) are
optax's. Any other ``optax.GradientTransformation`` can be passed as is.

The learning rate is a *runtime* input of the compiled step, not a constant compiled into it:
every named optimiser ends in ``scale_by_learning_rate(schedule)`` with a schedule proportional
to ``lr``, so its update is linear in ``lr``,

.. math:: u_t(\\alpha) = \\alpha \\, u_t(1),

and the engine builds it at rate 1 (:func:`make_unit_optimizer`) and multiplies the update by
:func:`runtime_rate` inside the step. One compiled program then serves every learning rate
(a learning-rate search costs runs, not compilations). A user's own transformation carries its
rate inside it; its runtime rate is 1.
"""

from __future__ import annotations

import inspect

import numpy as np

from .._lazy import optax
from .._types import is_finite_number
from ..errors import ConfigError, choices_message

#: Named optimiser -> ``factory(rate, **options)`` returning an optax transformation. The
#: factory's keyword parameters are its options, each a :class:`~sgdlab.engine.TrainConfig`
#: setting of the same name, which declares its default, range and help text; a run passes a
#: factory exactly the options it declares. This table is the one place a new optimiser is
#: added (see CONTRIBUTING.md).
FACTORIES = {
    "sgd": lambda rate: optax.sgd(rate),
    "momentum": lambda rate, momentum: optax.sgd(rate, momentum=momentum),
    "nesterov": lambda rate, momentum: optax.sgd(rate, momentum=momentum, nesterov=True),
    "adam": lambda rate: optax.adam(rate),
    # decoupled: w <- w - rate * (adam update + weight_decay * w), linear in the rate
    "adamw": lambda rate, weight_decay: optax.adamw(rate, weight_decay=weight_decay),
}
#: Named optimiser -> the settings it takes besides the learning rate (its factory's).
OPTIMIZER_OPTIONS: dict[str, tuple[str, ...]] = {
    name: tuple(inspect.signature(f).parameters)[1:] for name, f in FACTORIES.items()}
OPTIMIZERS = tuple(FACTORIES)
SCHEDULES = ("constant", "cosine", "step", "inverse-time", "exponential")


def check_rate(lr) -> None:
    """The one check of a numeric learning rate (a config's, a sweep's, a schedule's): a
    finite number > 0, else a :class:`ConfigError` saying so."""
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.floating, np.integer)) or \
            not is_finite_number(lr) or lr <= 0:
        raise ConfigError(f"learning rate must be a finite number > 0, got {lr!r}")


def make_schedule(lr: float, schedule: str = "constant", total_steps: int = 1,
                  decay: float = 0.5, decay_every: int | None = None):
    """Learning rate as a function of the step.

    * ``constant``: ``lr``.
    * ``cosine``: ``lr * (1 + cos(pi * t / T)) / 2`` over ``total_steps`` T.
    * ``step``: multiply by ``decay`` every ``decay_every`` steps (default ``T / 3``).
    * ``inverse-time``: ``lr / (1 + decay * t / decay_every)``.
    * ``exponential``: ``lr * decay ** (t / decay_every)``, smooth.
    """
    check_rate(lr)
    every = decay_every or max(1, total_steps // 3)
    if schedule == "constant":
        return optax.constant_schedule(lr)
    if schedule == "cosine":
        return optax.cosine_decay_schedule(lr, max(1, total_steps))
    if schedule == "step":
        return optax.exponential_decay(lr, every, decay, staircase=True)
    if schedule == "inverse-time":
        return lambda t: lr / (1.0 + decay * t / every)
    if schedule == "exponential":
        return optax.exponential_decay(lr, every, decay)
    raise ConfigError(choices_message("schedule", schedule, SCHEDULES))


def optimizer_options(name) -> tuple[str, ...]:
    """The settings the optimiser ``name`` takes (none for an optax object)."""
    return OPTIMIZER_OPTIONS.get(name, ()) if isinstance(name, str) else ()


def make_optimizer(name: str | optax.GradientTransformation = "sgd", lr: float = 0.1, *,
                   schedule: str = "constant", total_steps: int = 1, decay: float = 0.5,
                   decay_every: int | None = None, **options) -> optax.GradientTransformation:
    """An optax transformation for ``name`` with a learning-rate schedule.

    ``options`` are optimiser settings by name (``momentum=0.9``, ``weight_decay=1e-4``,
    checked by :class:`~sgdlab.engine.TrainConfig`, which holds their defaults); each
    optimiser takes the ones :data:`OPTIMIZER_OPTIONS` lists and ignores the others.
    """
    if not isinstance(name, str):
        return name  # a user's optax GradientTransformation, its rate inside it
    if name not in FACTORIES:
        raise ConfigError(choices_message("optimizer", name, OPTIMIZERS))
    missing = [k for k in OPTIMIZER_OPTIONS[name] if k not in options]
    if missing:
        raise ConfigError(f"optimizer {name!r} takes option(s) {', '.join(missing)}: pass "
                          f"{', '.join(f'{k}=...' for k in missing)} (a TrainConfig holds "
                          "their defaults)")
    rate = lr if callable(lr) else make_schedule(lr, schedule, total_steps, decay, decay_every)
    return FACTORIES[name](rate, **{k: options[k] for k in OPTIMIZER_OPTIONS[name]})


def describe_rate(lr) -> str:
    """``lr`` for messages: the number, or the schedule function's name."""
    if callable(lr):
        return f"schedule {getattr(lr, '__name__', type(lr).__name__)}"
    return f"{lr:g}"


def is_named(name) -> bool:
    """True for a built-in optimiser name (its learning rate is a runtime input)."""
    return isinstance(name, str)


def make_unit_optimizer(name: str | optax.GradientTransformation = "sgd", *,
                        schedule: str = "constant", total_steps: int = 1, lr=None,
                        **options) -> optax.GradientTransformation:
    """:func:`make_optimizer` at learning rate 1: the update the step scales by the runtime rate.

    An optax schedule as ``lr`` (a callable ``step -> rate``) is built into the optimiser
    instead (its runtime rate is 1, see :func:`runtime_rate`).

    >>> import jax.numpy as jnp
    >>> opt = make_unit_optimizer("sgd")
    >>> u, _ = opt.update(jnp.array([2.0]), opt.init(jnp.zeros(1)))
    >>> float(u[0] * runtime_rate("sgd", 0.25))
    -0.5
    """
    return make_optimizer(name, lr if callable(lr) else 1.0, schedule=schedule,
                          total_steps=total_steps, **options)


def runtime_rate(name, lr: float) -> np.ndarray:
    """The scalar the compiled step multiplies a :func:`make_unit_optimizer` update by.

    ``lr`` for a named optimiser, 1 for a user's transformation or a schedule given as ``lr``
    (the rate is inside the optimiser); a 0-d float array of JAX's default float type, the
    dtype the compiled step was built for.
    """
    import jax
    return np.asarray(lr if is_named(name) and not callable(lr) else 1.0,
                      dtype=jax.dtypes.canonicalize_dtype(np.float64))
