"""Named model + loss combinations: what a user types as ``--model``.

=================  ==========  ==========================
name               model       loss
=================  ==========  ==========================
linreg             linear      squared
perceptron         linear      perceptron
logistic           linear      logistic
svm                linear      hinge
softmax            linear      softmax
multiclass_svm     linear      multiclass_svm
linear             linear      softmax unless ``--loss``
mlp                mlp         softmax unless ``--loss``
cnn                cnn         softmax unless ``--loss``
=================  ==========  ==========================

The first six fix their loss (the loss *is* the method); ``linear``, ``mlp`` and ``cnn`` are
plain architectures and take any loss, as does a user network (a ``"package.module:attr"``
import path, a Flax or Equinox module, a :class:`Model`).
"""

from __future__ import annotations

import inspect
from typing import Callable, Sequence

from ._types import Loss, Model
from .errors import ConfigError, choices_message
from .losses import get_loss
from .models import cnn, get_model, linear, mlp

__all__ = ["TASK_MODELS", "OPEN_LOSS", "DEFAULT_LR", "resolve", "is_regression", "default_lr"]

#: Task name -> (model factory, default loss name).
TASK_MODELS: dict[str, tuple[Callable[..., Model], str]] = {
    "linreg": (linear, "squared"),
    "perceptron": (linear, "perceptron"),
    "logistic": (linear, "logistic"),
    "svm": (linear, "hinge"),
    "softmax": (linear, "softmax"),
    "multiclass_svm": (linear, "multiclass_svm"),
    "mlp": (mlp, "softmax"),
    "linear": (linear, "softmax"),
    "cnn": (cnn, "softmax"),
}

#: Tasks whose loss is only a default that ``loss_name`` may replace.
OPEN_LOSS = frozenset({"mlp", "linear", "cnn"})

#: The learning rate when none is given (``TrainConfig.lr``'s default) ...
DEFAULT_LR = 0.1
#: ... except for an MLP on real-valued targets. Its squared loss has curvature along the
#: output layer of about ``width * E[h^2]`` (the ReLU features' second moment, ~0.5 at the
#: default initialisation), so ~64 for 128 units: plain gradient descent is stable only
#: below 2/64 ~ 0.03. Measured on the diabetes data (442 x 10, standardised targets):
#: lr 0.1 diverges in 9 steps, 0.05 oscillates, 0.01 reaches the linear model's R^2.
REGRESSION_MLP_LR = 0.01


def resolve(model_name, loss_name=None, hidden: int | Sequence[int] = (128,),
            activation: str = "relu", channels: int | Sequence[int] = (6, 16),
            kernel: int = 5) -> tuple[Model, Loss]:
    """``(Model, Loss)`` for a task name and an optional loss.

    * ``model_name`` is a key of :data:`TASK_MODELS`, or anything
      :func:`sgdlab.models.get_model` accepts that is not a task name (a :class:`Model`, an
      ``(init, apply)`` pair, a Flax or Equinox module, an import path
      ``"package.module:factory"``), which then takes ``loss_name`` or ``"softmax"``.
    * ``loss_name`` (anything :func:`sgdlab.losses.get_loss` accepts) replaces the default
      loss of ``linear``, ``mlp``, ``cnn`` and user models. For a task that names its loss
      (``logistic``, ``svm``, ...) it must be that loss or an alias of it.
    * ``hidden`` and ``activation`` configure ``mlp`` and ``cnn``, ``channels`` and
      ``kernel`` configure ``cnn``; each factory takes those it declares.

    Raises :class:`ConfigError` for an unknown name or a loss that contradicts the task.
    """
    if not isinstance(model_name, str) or ":" in model_name:
        model = get_model(model_name)
        return model, get_loss("softmax" if loss_name is None else loss_name)

    if model_name not in TASK_MODELS:
        raise ConfigError(choices_message("model", model_name, TASK_MODELS) +
                          " (or an import path 'package.module:factory' of your own network)")
    factory, default_loss = TASK_MODELS[model_name]
    # each architecture takes the options it declares (mlp: hidden, activation; linear: none)
    options = {"hidden": hidden, "activation": activation, "channels": channels,
               "kernel": kernel}
    model = factory(**{k: v for k, v in options.items()
                       if k in inspect.signature(factory).parameters})

    if loss_name is None:
        return model, get_loss(default_loss)
    loss = get_loss(loss_name)
    if model_name not in OPEN_LOSS and loss.name != default_loss:
        raise ConfigError(
            f"model {model_name!r} always uses loss {default_loss!r}, got loss {loss.name!r}; "
            f"use --model linear --loss {loss.name} (or mlp, cnn) to pick the loss yourself"
        )
    return model, loss


def is_regression(loss) -> bool:
    """Whether ``loss`` fits real-valued targets (``target_kind == "real"``)."""
    return get_loss(loss).target_kind == "real"


def default_lr(model_name, loss_name, task: str) -> float:
    """The learning rate a run takes when none is given: :data:`REGRESSION_MLP_LR` for the
    ``mlp`` architecture with a real-valued loss (given, or the squared loss picked for
    ``task == "regression"``), else :data:`DEFAULT_LR`."""
    if model_name != "mlp":
        return DEFAULT_LR
    if loss_name is None:
        return REGRESSION_MLP_LR if task == "regression" else DEFAULT_LR
    return REGRESSION_MLP_LR if is_regression(loss_name) else DEFAULT_LR
