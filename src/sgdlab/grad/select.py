"""Pick how the training gradient is computed: ``TrainConfig.gradient`` names one of these."""

from __future__ import annotations

from .._types import Loss, Model
from ..errors import ConfigError, choices_message
from .autodiff import ValueAndGrad, autodiff_value_and_grad

#: name -> factory(model, loss, l2) -> ValueAndGrad
GRADIENT_METHODS = {"autodiff": autodiff_value_and_grad}


def value_and_grad_for(kind: str, model: Model, loss: Loss, l2: float) -> ValueAndGrad:
    """The value-and-gradient function of kind ``kind`` for this model and loss."""
    try:
        factory = GRADIENT_METHODS[kind]
    except KeyError:
        raise ConfigError(choices_message("gradient", kind, GRADIENT_METHODS)) from None
    return factory(model, loss, l2)
