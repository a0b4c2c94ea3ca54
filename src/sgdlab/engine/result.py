"""What a training run returns: parameters, history, timing, and a predictor."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from .._types import Loss, Model
from ..data.split import Standardizer, TargetScaler
from ..errors import DivergedWarning
from .config import TrainConfig
from .history import History

STATUSES = ("completed", "target_reached", "max_time", "diverged", "interrupted", "stopped")


def divergence_message(step: int, lr: float) -> str:
    """What a diverged run tells its user: where, why, and what to try."""
    return (f"training diverged at step {step}: the loss or the parameters became NaN/inf with "
            f"learning rate {lr:g}; try a smaller learning rate (e.g. lr {lr / 10:g}). "
            "Parameters are the last finite ones.")


@dataclass
class FitResult:
    """The outcome of :func:`sgdlab.engine.train`.

    ``status`` is ``completed`` (ran its epochs/steps), ``target_reached``, ``max_time``,
    ``stopped`` (a callback asked to stop), ``diverged`` (``diverged_at_step`` says where;
    ``params`` are then the last finite ones) or ``interrupted`` (SIGTERM/SIGINT: stopped at a
    chunk boundary after a checkpoint).
    Timing: ``train_seconds`` (updates only), ``eval_seconds``, ``compile_seconds`` and
    ``wall_seconds`` (everything).
    """

    params: object
    model: Model
    loss: Loss
    config: TrainConfig
    history: History
    status: str
    task: str
    classes: tuple
    standardizer: Standardizer | None
    steps: int
    epochs: float
    examples: int
    steps_per_epoch: int
    train_seconds: float
    eval_seconds: float
    compile_seconds: float
    wall_seconds: float
    diverged_at_step: int | None = None
    message: str = ""
    opt_state: object = None
    #: ``(steps,)`` the mini-batch objective of every step this call ran, in order (history rows
    #: only keep means between evaluations; this keeps the zig-zag of small batches visible)
    step_losses: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    extra: dict = field(default_factory=dict)
    #: real-valued targets were trained as ``(y - mean) / scale``; :meth:`predict` undoes it
    target_scaler: TargetScaler | None = None

    # -- prediction --------------------------------------------------------------------------
    def decision_function(self, X) -> np.ndarray:
        """Raw model outputs ``(N, k)`` for features ``X (N, d)`` (standardised as in training)."""
        X = np.asarray(X, dtype=np.float32)
        if self.standardizer is not None:
            X = self.standardizer.transform(X)
        return np.asarray(_apply(self.model.apply)(self.params, jnp.asarray(X)))

    def predict(self, X) -> np.ndarray:
        """Class labels (original values) or real predictions for ``X (N, d)``."""
        out = self.decision_function(X)
        pred = np.asarray(self.loss.predict(jnp.asarray(out)))
        if self.task == "classification" and self.classes:
            return np.asarray(self.classes, dtype=object if _mixed(self.classes) else None)[pred]
        if self.target_scaler is not None:
            return self.target_scaler.inverse(pred)
        return pred

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(N, C)`` for softmax and logistic losses."""
        out = self.decision_function(X)
        if self.loss.name == "softmax":
            return np.asarray(jax.nn.softmax(out, axis=-1))
        if self.loss.name == "logistic":
            p1 = np.asarray(jax.nn.sigmoid(out[:, 0]))
            return np.stack([1 - p1, p1], axis=1)
        raise AttributeError(f"loss {self.loss.name!r} gives scores, not probabilities; "
                             "use 'softmax' or 'logistic' for predict_proba")

    def score(self, X, y) -> float:
        """Accuracy for classification, R^2 for regression.

        A model whose training diverged warns (:class:`~sgdlab.errors.DivergedWarning`): its
        score is that of the last finite parameters, often ``-inf`` for R^2.
        """
        if self.status == "diverged":
            warnings.warn(f"scoring a model whose {self.message[0].lower()}{self.message[1:]}",
                          DivergedWarning, stacklevel=2)
        pred = self.predict(X)
        y = np.asarray(y)
        if self.task == "classification":
            return float(np.mean(pred == y))
        with np.errstate(over="ignore", invalid="ignore"):  # huge predictions: R^2 = -inf
            sst = float(np.sum((y - y.mean()) ** 2))
            sse = float(np.sum((np.asarray(pred, np.float64) - y) ** 2))
        return 1.0 - sse / sst if sst > 0 else float("nan")

    def summary(self) -> dict:
        """Final figures, for metrics.json and the terminal table."""
        h = self.history
        out = {"status": self.status, "steps": self.steps, "epochs": self.epochs,
               "examples": self.examples, "steps_per_epoch": self.steps_per_epoch,
               "train_seconds": self.train_seconds, "eval_seconds": self.eval_seconds,
               "compile_seconds": self.compile_seconds, "wall_seconds": self.wall_seconds,
               "examples_per_second": self.examples / self.train_seconds
               if self.train_seconds > 0 else float("nan"),
               "diverged_at_step": self.diverged_at_step, "message": self.message}
        for key in ("train_loss", "val_loss", "val_accuracy", "val_mse", "val_r2"):
            if h and key in h[-1]:
                out[key] = h[-1][key]
        out.update(self.extra)
        return out


def _mixed(classes) -> bool:
    return len({type(c) for c in classes}) > 1


_APPLY_CACHE: dict = {}


def _apply(apply):
    if apply not in _APPLY_CACHE:
        _APPLY_CACHE[apply] = jax.jit(apply)
    return _APPLY_CACHE[apply]
