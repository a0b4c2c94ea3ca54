"""What a training run returns: parameters, history, timing, and a predictor."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import jax
import numpy as np

from .._types import Loss, Model
from ..data.split import Standardizer, TargetScaler
from ..errors import DivergedWarning
from ..optim import describe_rate
from .predictor import Predictor, build_loss, build_model, model_spec
from .config import TrainConfig
from .history import History

STATUSES = ("completed", "target_reached", "max_time", "diverged", "interrupted", "stopped")


def divergence_message(step: int, lr, validation: bool = False) -> str:
    """What a diverged run tells its user: where, why, and what to try. ``validation``: the
    steps stayed finite but the validation loss did not (the model's outputs overflowed)."""
    advice = f"e.g. lr {lr / 10:g}" if not callable(lr) else "scale the schedule down"
    what = "the validation loss became NaN/inf (the model's outputs overflow)" if validation \
        else "the loss, the parameters or the optimiser state became NaN/inf"
    return (f"training diverged at step {step}: {what} with "
            f"learning rate {describe_rate(lr)}; try a smaller learning rate ({advice}). "
            + ("Parameters are those of that step." if validation
               else "Parameters are the last finite ones."))


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

    #: features the model takes, and their names (matched by name when predicting from a
    #: DataFrame; ``x0..`` for array data, matched by position)
    n_features: int = 0
    feature_names: tuple = ()
    #: the shape of one example, ``(d,)`` for rows or e.g. ``(H, W, C)`` for images, and the
    #: scores per example (taken from the run, not guessed from the parameter layout, which a
    #: user network orders its own way)
    example_shape: tuple = ()
    n_outputs: int = 0

    # -- prediction: a Predictor does it, so a loaded model predicts exactly the same --------
    def predictor(self) -> Predictor:
        """The trained model on its own (what :func:`sgdlab.load` returns for a run)."""
        return Predictor(
            params=self.params, model=self.model, loss=self.loss, task=self.task,
            classes=tuple(self.classes), feature_names=tuple(self.feature_names),
            n_features=self.n_features, example_shape=tuple(self.example_shape),
            standardizer=self.standardizer,
            target_scaler=self.target_scaler, spec=self.spec(),
            diverged_message=self.message if self.status == "diverged" else "")

    def spec(self) -> dict:
        """How to rebuild the network: see :mod:`sgdlab.engine.predictor`."""
        n_out = self.n_outputs or (int(np.shape(jax.tree_util.tree_leaves(self.params)[-1])[0])
                                   if jax.tree_util.tree_leaves(self.params) else 0)
        spec = {"model": model_spec(self.model), "loss": self.loss.name,
                "n_features": self.n_features, "n_outputs": n_out}
        if len(self.example_shape) > 1:  # N-D examples; rows need no more than n_features
            spec["example_shape"] = [int(s) for s in self.example_shape]
        return spec

    def decision_function(self, X) -> np.ndarray:
        """Raw model outputs ``(N, k)`` for features ``X (N, d)`` (standardised as in training)."""
        return self.predictor().decision_function(X)

    def predict(self, X) -> np.ndarray:
        """Class labels (original values) or real predictions for ``X (N, d)``; a DataFrame's
        columns are matched by name."""
        return self.predictor().predict(X)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(N, C)`` for softmax and logistic losses."""
        return self.predictor().predict_proba(X)

    def score(self, X, y) -> float:
        """Accuracy for classification, R^2 for regression.

        A model whose training diverged warns (:class:`~sgdlab.errors.DivergedWarning`): its
        score is that of the last finite parameters, often ``-inf`` for R^2.
        """
        if self.status == "diverged":  # warned here, so the warning points at the caller
            warnings.warn(f"scoring a model whose {self.message[0].lower()}{self.message[1:]}",
                          DivergedWarning, stacklevel=2)
        predictor = self.predictor()
        predictor.diverged_message = ""
        return predictor.score(X, y)

    # -- pickling: the network travels as its spec, not as functions --------------------------
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        spec = self.spec()
        if not spec["model"].get("builtin") and not spec["model"].get("import"):
            raise TypeError(f"cannot pickle the result of the model {self.model.name!r}: it "
                            "was given as an object (a network instance, or functions defined "
                            "inside a function or in __main__) that cannot be rebuilt by "
                            "import; define it at module level and train with "
                            "model='package.module:factory'")
        state["model"], state["loss"] = spec["model"], spec["loss"]
        to_host = lambda tree: jax.tree_util.tree_map(np.asarray, tree)  # noqa: E731
        state["params"], state["opt_state"] = to_host(self.params), to_host(self.opt_state)
        return state

    def __setstate__(self, state: dict) -> None:
        state = dict(state)
        state["model"], state["loss"] = build_model(state["model"]), build_loss(state["loss"])
        self.__dict__.update(state)

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
