"""Compare optimisation methods on one problem under the same training-time budget.

Every method trains the same model on the same split for ``budget`` seconds of training time
(evaluation and compilation excluded, as everywhere in sgdlab), evaluated on the whole
validation set every ``budget / 25`` seconds. The methods (keys of :data:`METHODS`):

====================  ======================================================================
random-global         random search, fresh Gaussian parameters each attempt, keep the best
random-local          random search, perturb the best-so-far by sigma, keep improvements
numerical             gradient descent with centred finite-difference gradients, batch 32
full-batch            gradient descent on the whole training set each step (batch N)
sgd-1                 stochastic gradient descent, batch 1
minibatch-32          mini-batch gradient descent, batch 32
minibatch-256         mini-batch gradient descent, batch 256
====================  ======================================================================

Gradient methods share one learning rate. For each gradient method except the numerical one,
the first ``trace_steps`` per-step mini-batch losses of its timed run (``FitResult.step_losses``;
history rows only keep means between evaluations) feed the loss-against-steps plot, where
batch 1 zig-zags and the full batch descends smoothly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..data.dataset import Dataset
from ..engine.config import TrainConfig
from ..engine import train
from ..engine.history import History
from ..errors import ConfigError, choices_message
from ..optim.random_search import RandomSearchConfig
from .random_search import random_search

#: method key -> (label, what it is); the order is the table's order
METHODS = {
    "random-global": "random search (global)",
    "random-local": "random search (local)",
    "numerical": "numerical gradient, batch 32",
    "full-batch": "full-batch gradient descent",
    "sgd-1": "stochastic, batch 1",
    "minibatch-32": "mini-batch 32",
    "minibatch-256": "mini-batch 256",
}
NUMERICAL_BATCH = 32
#: numerical gradients cost 2P objective evaluations per step: few steps per compiled call, so
#: the host notices the end of the time budget promptly
NUMERICAL_CHUNK = 8
#: numerical-gradient descent is refused above this many parameters (2P evaluations per step)
NUMERICAL_MAX_PARAMS = 5000


@dataclass
class Comparison:
    """What :func:`compare_methods` measured.

    ``rows``: one dict per method (``method``, ``label``, ``val_accuracy`` (or ``val_r2``),
    ``time_to_target`` seconds or NaN, ``steps``, ``examples``, ``train_seconds``, ``status``);
    ``histories``: method -> :class:`History`; ``traces``: method -> per-step mini-batch losses
    ``(trace_steps,)``; ``settings``: the comparison's own settings.
    """

    rows: list
    histories: dict
    traces: dict
    settings: dict = field(default_factory=dict)


def batch_of(method: str, n_train: int) -> int | None:
    """The batch size a gradient method uses (``None`` for random search)."""
    return {"numerical": NUMERICAL_BATCH, "full-batch": n_train, "sgd-1": 1,
            "minibatch-32": 32, "minibatch-256": 256}.get(method)


def time_to_target(history: History, metric: str, target: float) -> float:
    """Training seconds at the first row whose ``metric`` reaches ``target`` (NaN if never)."""
    for row in history:
        if row.get(metric, -math.inf) >= target:
            return float(row["train_seconds"])
    return math.nan


def _check_methods(methods) -> list[str]:
    methods = list(METHODS) if methods is None else list(methods)
    for m in methods:
        if m not in METHODS:
            raise ConfigError(choices_message("method", m, METHODS))
    if not methods:
        raise ConfigError(f"no methods to compare; choose from {', '.join(METHODS)}")
    return methods


def _linear_params(train_data: Dataset) -> int:
    """Parameters of a linear model on this data: ``(d + 1) k``."""
    return (train_data.d + 1) * max(train_data.n_classes, 1)


def compare_methods(train_data: Dataset, validation: Dataset, *, budget: float = 2.0,
                    base: TrainConfig | None = None, methods=None, target: float = 0.9,
                    trace_steps: int = 150, search: RandomSearchConfig | None = None,
                    callback=None) -> Comparison:
    """Run each method for ``budget`` seconds of training time and tabulate the outcome.

    ``base`` gives the model, loss, learning rate, l2 and seed shared by every method (default:
    softmax regression, lr 0.1). ``target`` is the validation accuracy (R^2) whose first
    crossing time is reported. ``callback(method, result)`` is called after each timed run.
    """
    if not (isinstance(budget, (int, float)) and budget > 0):
        raise ConfigError(f"time budget must be > 0 seconds, got {budget!r}")
    if base is not None:
        base.one_batch_size("sgdlab compare")
    if trace_steps < 2:
        raise ConfigError(f"trace steps must be >= 2, got {trace_steps}")
    methods = _check_methods(methods)
    base = base or TrainConfig(model="softmax", lr=0.1)
    if "numerical" in methods and (base.model not in ("softmax", "linear", "logistic", "svm",
                                                      "multiclass_svm", "linreg", "perceptron")
                                   or _linear_params(train_data) > NUMERICAL_MAX_PARAMS):
        raise ConfigError(
            f"numerical-gradient descent needs a small linear model (at most "
            f"{NUMERICAL_MAX_PARAMS} parameters, 2 objective evaluations each per step); "
            f"drop 'numerical' from --methods for model {base.model!r} on this data")
    timed = base.replace(max_time=budget, epochs=None, max_steps=None, target=None,
                         eval_every=f"{budget / 25:g}s")
    regression = train_data.task == "regression"
    metric = "val_r2" if regression else "val_accuracy"

    rows, histories, traces = [], {}, {}
    for m in methods:
        if m.startswith("random-"):
            cfg = RandomSearchConfig(**{**(search.to_dict() if search else {}),
                                        "mode": m.split("-", 1)[1], "attempts": None})
            r = random_search(train_data, validation, timed, cfg)
        else:
            cfg = timed.replace(batch_size=min(batch_of(m, train_data.n), train_data.n))
            if m == "numerical":
                cfg = cfg.replace(gradient="numerical", chunk_steps=NUMERICAL_CHUNK)
            r = train(train_data, validation, cfg)
            if m != "numerical":  # the timed run's own per-step losses: no second run
                traces[m] = np.asarray(r.step_losses[:trace_steps], np.float64)
        histories[m] = r.history
        rows.append({"method": m, "label": METHODS[m], metric: r.history.last(metric),
                     "time_to_target": time_to_target(r.history, metric, target),
                     "steps": r.steps, "examples": r.examples,
                     "train_seconds": r.train_seconds, "status": r.status})
        if callback:
            callback(m, r)
    # Draw order of the loss plot: the noisiest (batch 1) first, the full batch last, on top.
    order = ("sgd-1", "minibatch-32", "minibatch-256", "full-batch")
    traces = {m: traces[m] for m in order if m in traces}
    settings = {"budget_seconds": float(budget), "target": target, "metric": metric,
                "trace_steps": trace_steps, "model": base.model, "lr": base.lr,
                "l2": base.l2, "seed": base.seed, "n_train": train_data.n,
                "n_validation": validation.n, "methods": methods}
    return Comparison(rows, histories, traces, settings)

