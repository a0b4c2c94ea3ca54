"""Learning rate as a function of batch size.

A larger batch averages more per-example gradients, so its gradient estimate has less noise and
can take a larger step. The rules, from a base learning rate ``lr0`` tuned at base batch ``B0``:

* ``none``:   ``lr(B) = lr0``
* ``linear``: ``lr(B) = lr0 * B / B0``   (Goyal et al. 2017)
* ``sqrt``:   ``lr(B) = lr0 * sqrt(B / B0)``  (keeps the update's noise variance constant)

>>> scaled_lr(0.1, 128, base_batch=32, rule="linear"), scaled_lr(0.1, 128, 32, "sqrt")
(0.4, 0.2)
"""

from __future__ import annotations

import math

from ..errors import ConfigError, choices_message

LR_SCALINGS = ("none", "linear", "sqrt")


def scaled_lr(lr0: float, batch_size: int, base_batch: int = 32, rule: str = "none") -> float:
    """The learning rate for ``batch_size`` under ``rule`` (see the module docstring)."""
    if lr0 <= 0:
        raise ConfigError(f"learning rate must be > 0, got {lr0}")
    if base_batch < 1 or batch_size < 1:
        raise ConfigError(f"batch sizes must be >= 1, got base {base_batch}, batch {batch_size}")
    ratio = batch_size / base_batch
    if rule == "none":
        return lr0
    if rule == "linear":
        return lr0 * ratio
    if rule == "sqrt":
        return lr0 * math.sqrt(ratio)
    raise ConfigError(choices_message("learning-rate scaling", rule, LR_SCALINGS))
