"""The objective's gradient by reverse-mode automatic differentiation (the default)."""

from __future__ import annotations

from typing import Callable

from .._lazy import jax
from .._types import Loss, Model
from ..losses import objective

#: ``(params, X_batch (B, d), targets (B,), weights (B,)) -> (objective, grads)``
ValueAndGrad = Callable


def autodiff_value_and_grad(model: Model, loss: Loss, l2: float) -> ValueAndGrad:
    """``jax.value_and_grad`` of the masked mean objective plus L2 (see ``losses.objective``)."""

    def f(params, xb, tb, wb):
        return objective(model.apply, loss, params, xb, tb, wb, l2)

    return jax.value_and_grad(f)
