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
(an architecture)  itself      softmax unless ``--loss``
=================  ==========  ==========================

The first six fix their loss (the loss *is* the method). Every architecture of
:data:`sgdlab.models.MODELS` (``linear``, ``mlp``, ``cnn``, and any registered there) is a task
of its own name that takes any loss, as does a user network (a ``"package.module:attr"``
import path, a Flax or Equinox module, a :class:`Model`).
"""

from __future__ import annotations

import functools
import inspect
from typing import Callable

from ._types import Loss, Model
from .errors import ConfigError, choices_message
from .losses import get_loss
from .models import MODELS, get_model, linear

__all__ = ["FIXED_LOSS", "TASK_MODELS", "OPEN_LOSS", "resolve", "model_options",
           "check_task_loss", "is_regression", "default_lr"]

#: Tasks that fix their loss: task name -> loss name, each on the ``linear`` architecture
#: (the table of the module docstring).
FIXED_LOSS: dict[str, str] = {
    "linreg": "squared",
    "perceptron": "perceptron",
    "logistic": "logistic",
    "svm": "hinge",
    "softmax": "softmax",
    "multiclass_svm": "multiclass_svm",
}


#: Task name -> ``(model factory, default loss name)``: the fixed-loss tasks, then every
#: architecture of :data:`sgdlab.models.MODELS`, softmax unless ``--loss``.
TASK_MODELS: dict[str, tuple[Callable[..., Model], str]] = {
    **{name: (linear, loss) for name, loss in FIXED_LOSS.items()},
    **{name: (factory, "softmax") for name, factory in MODELS.items()},
}

#: Tasks whose loss is only a default that ``loss_name`` may replace: the architectures.
OPEN_LOSS = frozenset(MODELS)

#: The learning rate of an MLP on real-valued targets when none is given. Its squared loss has
#: curvature along the output layer of about ``width * E[h^2]`` (the ReLU features' second
#: moment, ~0.5 at the default initialisation), so ~64 for 128 units: plain gradient descent
#: is stable only below 2/64 ~ 0.03. Measured on the diabetes data (442 x 10, standardised
#: targets): lr 0.1 diverges in 9 steps, 0.05 oscillates, 0.01 reaches the linear model's R^2.
REGRESSION_MLP_LR = 0.01


def model_options(model_name) -> tuple[str, ...]:
    """The options (settings) the factory of task ``model_name`` declares, in its order;
    none for a user network or an unknown name."""
    if not isinstance(model_name, str) or model_name not in TASK_MODELS:
        return ()
    return _parameters(TASK_MODELS[model_name][0])


@functools.lru_cache(maxsize=None)
def _parameters(factory) -> tuple[str, ...]:
    # read once per factory: compiled-program keys ask for every chunk
    return tuple(inspect.signature(factory).parameters)


def check_task_loss(model_name, loss_name) -> None:
    """Refuse a loss that contradicts a task fixing its own (``logistic`` with ``hinge``); an
    alias of the task's loss is that loss."""
    if not isinstance(model_name, str) or model_name not in FIXED_LOSS or loss_name is None:
        return
    loss = get_loss(loss_name)
    if loss.name != FIXED_LOSS[model_name]:
        raise ConfigError(
            f"model {model_name!r} always uses loss {FIXED_LOSS[model_name]!r}, got loss "
            f"{loss.name!r}; use --model linear --loss {loss.name} (or another architecture: "
            f"{', '.join(m for m in MODELS if m != 'linear')}) to pick the loss yourself")


def resolve(model_name, loss_name=None, **options) -> tuple[Model, Loss]:
    """``(Model, Loss)`` for a task name and an optional loss.

    * ``model_name`` is a key of :data:`TASK_MODELS`, or anything
      :func:`sgdlab.models.get_model` accepts that is not a task name (a :class:`Model`, an
      ``(init, apply)`` pair, a Flax or Equinox module, an import path
      ``"package.module:factory"``), which then takes ``loss_name`` or ``"softmax"``.
    * ``loss_name`` (anything :func:`sgdlab.losses.get_loss` accepts) replaces the default
      loss of an architecture or a user model. For a task that names its loss (``logistic``,
      ``svm``, ...) it must be that loss or an alias of it.
    * ``options`` are model settings by name (``hidden``, ``activation``, ``channels``,
      ...); the factory receives exactly those its signature declares
      (:func:`model_options`) and the others are ignored.

    Raises :class:`ConfigError` for an unknown name or a loss that contradicts the task.
    """
    if not isinstance(model_name, str) or ":" in model_name:
        model = get_model(model_name)
        return model, get_loss("softmax" if loss_name is None else loss_name)

    if model_name not in TASK_MODELS:
        raise ConfigError(choices_message("model", model_name, TASK_MODELS) +
                          " (or an import path 'package.module:factory' of your own network)")
    _, default_loss = TASK_MODELS[model_name]
    takes = model_options(model_name)
    architecture = "linear" if model_name in FIXED_LOSS else model_name
    model = get_model(architecture, **{k: v for k, v in options.items() if k in takes})
    check_task_loss(model_name, loss_name)
    return model, get_loss(default_loss if loss_name is None else loss_name)


def is_regression(loss) -> bool:
    """Whether ``loss`` fits real-valued targets (``target_kind == "real"``)."""
    return get_loss(loss).target_kind == "real"


def default_lr(model_name, loss_name, task: str) -> float | None:
    """The learning rate a run takes when none is given, where it differs from
    :class:`~sgdlab.engine.TrainConfig`'s default: :data:`REGRESSION_MLP_LR` for the ``mlp``
    architecture with a real-valued loss (given, or the squared loss picked for
    ``task == "regression"``); None where the default holds."""
    if model_name != "mlp":
        return None
    regression = task == "regression" if loss_name is None else is_regression(loss_name)
    return REGRESSION_MLP_LR if regression else None
