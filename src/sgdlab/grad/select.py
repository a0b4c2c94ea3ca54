"""Pick how the training gradient is computed: ``TrainConfig.gradient`` names one of these.

* ``autodiff``: reverse-mode automatic differentiation (default, any model and loss);
* ``closed-form``: the hand-written formulas of :mod:`sgdlab.grad.closed_form` (built-in linear
  model and losses only);
* ``numerical``: centred finite differences over every parameter, ``2 P`` objective evaluations
  per step (:mod:`sgdlab.grad.numerical`; small models only).
"""

from __future__ import annotations

from .._types import Loss, Model
from ..errors import ConfigError, choices_message
from .autodiff import ValueAndGrad, autodiff_value_and_grad
from .closed_form import closed_form_value_and_grad
from .numerical import numerical_value_and_grad

#: name -> factory(model, loss, l2) -> ValueAndGrad
GRADIENT_METHODS = {
    "autodiff": autodiff_value_and_grad,
    "closed-form": closed_form_value_and_grad,
    "numerical": numerical_value_and_grad,
}


def value_and_grad_for(kind: str, model: Model, loss: Loss, l2: float) -> ValueAndGrad:
    """The value-and-gradient function of kind ``kind`` for this model and loss."""
    try:
        factory = GRADIENT_METHODS[kind]
    except KeyError:
        raise ConfigError(choices_message("gradient", kind, GRADIENT_METHODS)) from None
    return factory(model, loss, l2)
