"""Gradients: autodiff (default), closed-form formulas, finite differences, and the check.

The registry :data:`GRADIENT_METHODS` is what ``TrainConfig.gradient`` picks from.
"""

from .autodiff import ValueAndGrad as ValueAndGrad
from .autodiff import autodiff_value_and_grad as autodiff_value_and_grad
from .check import GradCheckReport as GradCheckReport
from .check import TensorCheck as TensorCheck
from .check import check_gradient as check_gradient
from .check import check_model_gradient as check_model_gradient
from .closed_form import closed_form_value_and_grad as closed_form_value_and_grad
from .numerical import numerical_grad as numerical_grad
from .numerical import numerical_value_and_grad as numerical_value_and_grad
from .select import GRADIENT_METHODS as GRADIENT_METHODS
from .select import value_and_grad_for as value_and_grad_for
