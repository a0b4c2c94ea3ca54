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
=================  ==========  ==========================

The first six fix their loss (the loss *is* the method); ``linear`` and ``mlp`` are plain
architectures and take any loss.
"""

from __future__ import annotations

from typing import Callable, Sequence

from ._types import Loss, Model
from .errors import ConfigError, choices_message
from .losses import get_loss
from .models import get_model, linear, mlp

__all__ = ["TASK_MODELS", "OPEN_LOSS", "resolve", "is_regression"]

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
}

#: Tasks whose loss is only a default that ``loss_name`` may replace.
OPEN_LOSS = frozenset({"mlp", "linear"})


def resolve(model_name, loss_name=None, hidden: int | Sequence[int] = (128,),
            activation: str = "relu") -> tuple[Model, Loss]:
    """``(Model, Loss)`` for a task name and an optional loss.

    * ``model_name`` is a key of :data:`TASK_MODELS`, or anything
      :func:`sgdlab.models.get_model` accepts that is not a string (a :class:`Model` or an
      ``(init, apply)`` pair), which then takes ``loss_name`` or ``"softmax"``.
    * ``loss_name`` (anything :func:`sgdlab.losses.get_loss` accepts) replaces the default
      loss of ``linear``, ``mlp`` and user models. For a task that names its loss
      (``logistic``, ``svm``, ...) it must be that loss or an alias of it.
    * ``hidden`` and ``activation`` configure ``mlp`` and are ignored otherwise.

    Raises :class:`ConfigError` for an unknown name or a loss that contradicts the task.
    """
    if not isinstance(model_name, str):
        model = get_model(model_name)
        return model, get_loss("softmax" if loss_name is None else loss_name)

    if model_name not in TASK_MODELS:
        raise ConfigError(choices_message("model", model_name, TASK_MODELS))
    factory, default_loss = TASK_MODELS[model_name]
    model = factory(hidden=hidden, activation=activation) if factory is mlp else factory()

    if loss_name is None:
        return model, get_loss(default_loss)
    loss = get_loss(loss_name)
    if model_name not in OPEN_LOSS and loss.name != default_loss:
        raise ConfigError(
            f"model {model_name!r} always uses loss {default_loss!r}, got loss {loss.name!r}; "
            f"use --model linear --loss {loss.name} (or mlp) to pick the loss yourself"
        )
    return model, loss


def is_regression(loss) -> bool:
    """Whether ``loss`` fits real-valued targets (``target_kind == "real"``)."""
    return get_loss(loss).target_kind == "real"
