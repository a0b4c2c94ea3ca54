"""Hyperparameter checks for the estimators, declared as data and run by ``fit``.

scikit-learn's convention: ``__init__`` and ``set_params`` only store values (so ``clone`` and
``GridSearchCV`` can copy them); every value is checked when ``fit`` or the first
``partial_fit`` starts. A bad value raises :class:`~sgdlab.errors.ConfigError` (a
``ValueError``) naming the estimator, the parameter, what was given and what is allowed.
"""

from __future__ import annotations

import numbers
from typing import Callable, NamedTuple

import numpy as np

from ..data.sampling import SAMPLINGS
from ..engine.schedule import EvalSchedule
from ..errors import ConfigError
from ..models import ACTIVATIONS
from ..optim import LR_SCALINGS, OPTIMIZERS


class Rule(NamedTuple):
    """``ok(value) -> bool`` and the words for what is allowed."""

    ok: Callable[[object], bool]
    allowed: str


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) \
        and bool(np.isfinite(v))


def int_at_least(low: int) -> Rule:
    return Rule(lambda v: _is_int(v) and v >= low, f"a whole number >= {low}")


def real_in(low: float, high: float, *, low_open=False, high_open=False) -> Rule:
    def ok(v):
        if not _is_real(v):
            return False
        return (v > low if low_open else v >= low) and (v < high if high_open else v <= high)

    left, right = "(" if low_open else "[", ")" if high_open else "]"
    return Rule(ok, f"a number in {left}{low:g}, {high:g}{right}")


def one_of(options) -> Rule:
    options = tuple(options)
    return Rule(lambda v: isinstance(v, str) and v in options,
                "one of " + ", ".join(repr(o) for o in options))


def _schedule_ok(v) -> bool:
    if not isinstance(v, str):
        return False
    try:
        EvalSchedule.parse(v)
    except ConfigError:
        return False
    return True


def _hidden_ok(v) -> bool:
    if _is_int(v):
        return v >= 1
    if isinstance(v, (str, bytes)):
        return False
    try:
        sizes = list(v)
    except TypeError:
        return False
    return all(_is_int(h) and h >= 1 for h in sizes)


def _random_state_ok(v) -> bool:
    return v is None or (_is_int(v) and 0 <= v < 2**32) or isinstance(v, np.random.RandomState)


BOOL = Rule(lambda v: isinstance(v, (bool, np.bool_)), "True or False")
POSITIVE = real_in(0.0, float("inf"), low_open=True, high_open=True)
NON_NEGATIVE = real_in(0.0, float("inf"), high_open=True)

#: Parameters every estimator has, with their rules.
COMMON: dict[str, Rule] = {
    "batch_size": int_at_least(1),
    "learning_rate": POSITIVE,
    "lr_scaling": one_of(LR_SCALINGS),
    "base_batch": int_at_least(1),
    "max_iter": POSITIVE,
    "sampling": one_of(SAMPLINGS),
    "alpha": NON_NEGATIVE,
    "optimizer": one_of(OPTIMIZERS),
    "momentum": real_in(0.0, 1.0, high_open=True),
    "eval_every": Rule(_schedule_ok, "an evaluation schedule such as '1 epoch', '50 steps', "
                                     "'2s' or 'end'"),
    "early_stopping": BOOL,
    "validation_fraction": real_in(0.0, 1.0, low_open=True, high_open=True),
    "n_iter_no_change": int_at_least(1),
    "tol": NON_NEGATIVE,
    "random_state": Rule(_random_state_ok, "None, an integer in [0, 2**32) or a "
                                           "numpy.random.RandomState"),
}

#: Extra parameters of the MLP estimators.
MLP: dict[str, Rule] = {
    "hidden_layer_sizes": Rule(_hidden_ok, "a whole number >= 1 or a sequence of them"),
    "activation": one_of(ACTIVATIONS),
}


def check_params(estimator, rules: dict[str, Rule]) -> None:
    """Raise :class:`ConfigError` for the first parameter of ``estimator`` breaking its rule."""
    name = type(estimator).__name__
    for param, rule in rules.items():
        value = getattr(estimator, param)
        if not rule.ok(value):
            raise ConfigError(f"{name}: {param}={value!r} is not valid; it must be "
                              f"{rule.allowed}")


def target_rule(name: str) -> Rule:
    """``None`` or a score in ``(0, 1]`` (accuracy or R^2 can reach at most 1)."""
    inner = real_in(0.0, 1.0, low_open=True)
    return Rule(lambda v: v is None or inner.ok(v), f"None or {inner.allowed} ({name})")


def draw_seed(random_state) -> int:
    """The engine's integer seed for ``random_state`` (scikit-learn's meanings).

    An int in ``[0, 2**31)`` is used as it is, so ``random_state=0`` equals ``sgdlab.fit(...,
    seed=0)``; ``None`` draws from NumPy's global generator (a different run every call); a
    ``RandomState`` or a larger int draws from that generator.
    """
    if _is_int(random_state) and 0 <= random_state < 2**31:
        return int(random_state)
    from sklearn.utils import check_random_state
    return int(check_random_state(random_state).randint(2**31 - 1))


#: The parameters every estimator shares, for the class docstrings.
COMMON_DOC = """
    batch_size : int, default=32
        Examples per gradient step. 1 is stochastic gradient descent, ``n_samples`` (or more:
        it is clipped to the number of rows) is full-batch gradient descent. A last partial
        batch of an epoch is masked, never dropped.
    learning_rate : float, default={lr}
        Step size ``eta`` in ``W <- W - eta * grad``, before ``lr_scaling``.
    lr_scaling : {{'none', 'linear', 'sqrt'}}, default='none'
        Scale the rate with the batch size B from ``base_batch`` B0: ``eta * B / B0`` or
        ``eta * sqrt(B / B0)``. The rate used is ``learning_rate_``.
    base_batch : int, default=32
        The batch size at which ``learning_rate`` was tuned (B0 above).
    max_iter : float, default={max_iter}
        Epochs (passes over the training rows); fractions allowed. Without early stopping
        exactly this many are run.
    sampling : {{'shuffle', 'replacement', 'sequential'}}, default='shuffle'
        A new permutation per epoch; i.i.d. draws; or the rows in order.
    alpha : float, default={alpha}
        L2 penalty: the objective is the mean loss plus ``alpha / 2 * |W|^2`` (biases free).
    optimizer : {{'sgd', 'momentum', 'nesterov', 'adam'}}, default='sgd'
        Plain SGD, or an optax alternative for comparison.
    momentum : float, default=0.9
        Momentum coefficient of 'momentum' and 'nesterov'.
    eval_every : str, default='1 epoch'
        When a ``history_`` row is written (and, with early stopping, the validation score is
        measured): '1 epoch', '50 steps', '2s' of training time, 'end', or several joined by
        commas.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training rows (stratified for classifiers)
        and stop when the validation score has not improved by more than ``tol`` for
        ``n_iter_no_change`` evaluations in a row, or reaches the target score.
    validation_fraction : float, default=0.1
        Share of the rows held out when ``early_stopping`` is on.
    n_iter_no_change : int, default=5
        Evaluations without improvement before early stopping ends the run.
    tol : float, default=1e-3
        Smallest validation-score gain that counts as an improvement.
    random_state : int, RandomState or None, default=None
        Seeds the weights, the validation split and the batch order. An int gives the same
        model bit for bit on the same machine; ``None`` a different one per fit.
"""
