"""Gradients: autodiff (default), and the registry the engine picks from."""

from .autodiff import ValueAndGrad as ValueAndGrad
from .autodiff import autodiff_value_and_grad as autodiff_value_and_grad
from .select import GRADIENT_METHODS as GRADIENT_METHODS
from .select import value_and_grad_for as value_and_grad_for
