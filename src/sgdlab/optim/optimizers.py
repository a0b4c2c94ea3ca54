"""Optimisers are optax gradient transformations; sgdlab only names and builds them.

Vanilla SGD is the default, the update of the source texts:

.. math:: W \\leftarrow W - \\alpha \\, \\nabla_W L

``momentum`` and ``nesterov`` add heavy-ball / Nesterov momentum (optax ``sgd``), ``adam`` is
optax ``adam``. Any other ``optax.GradientTransformation`` can be passed as is.
"""

from __future__ import annotations

import optax

from ..errors import ConfigError, choices_message

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")
SCHEDULES = ("constant", "cosine", "step", "inverse-time", "exponential")


def make_schedule(lr: float, schedule: str = "constant", total_steps: int = 1,
                  decay: float = 0.5, decay_every: int | None = None) -> optax.Schedule:
    """Learning rate as a function of the step.

    * ``constant``: ``lr``.
    * ``cosine``: ``lr * (1 + cos(pi * t / T)) / 2`` over ``total_steps`` T.
    * ``step``: multiply by ``decay`` every ``decay_every`` steps (default ``T / 3``).
    * ``inverse-time``: ``lr / (1 + decay * t / decay_every)``.
    * ``exponential``: ``lr * decay ** (t / decay_every)``, smooth.
    """
    if lr <= 0:
        raise ConfigError(f"learning rate must be > 0, got {lr}")
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


def make_optimizer(name: str | optax.GradientTransformation = "sgd", lr: float = 0.1, *,
                   momentum: float = 0.9, schedule: str = "constant", total_steps: int = 1,
                   decay: float = 0.5, decay_every: int | None = None
                   ) -> optax.GradientTransformation:
    """An optax transformation for ``name`` with a learning-rate schedule.

    ``momentum`` is used by ``momentum`` and ``nesterov`` only.
    """
    if isinstance(name, optax.GradientTransformation):
        return name
    rate = make_schedule(lr, schedule, total_steps, decay, decay_every)
    if name == "sgd":
        return optax.sgd(rate)
    if name in ("momentum", "nesterov"):
        if not 0.0 <= momentum < 1.0:
            raise ConfigError(f"momentum must be in [0, 1), got {momentum}")
        return optax.sgd(rate, momentum=momentum, nesterov=name == "nesterov")
    if name == "adam":
        return optax.adam(rate)
    raise ConfigError(choices_message("optimizer", name, OPTIMIZERS))
