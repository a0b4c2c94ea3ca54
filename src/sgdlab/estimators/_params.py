"""The estimators' parameters: declared as data, checked by ``fit``, derived from the settings.

scikit-learn's convention: ``__init__`` and ``set_params`` only store values (so ``clone`` and
``GridSearchCV`` can copy them); every value is checked when ``fit`` or the first
``partial_fit`` starts. A bad value raises :class:`~sgdlab.errors.ConfigError` (a
``ValueError``) naming the estimator, the parameter, what was given and what is allowed.

A parameter that is an engine setting under scikit-learn's name (``learning_rate`` is
``lr``, :data:`SETTING_OF`) takes the setting's check, words and default
(:mod:`sgdlab.engine.config`); every optimiser option (``momentum``, ``weight_decay``, ...)
is a parameter of every estimator under its own name, and every architecture option
(``channels``, ``kernel``, ...) one of the network estimators, so a setting added to the
engine is a parameter here at once (:func:`estimator_init`).
"""

from __future__ import annotations

import inspect
import numbers
from typing import Callable, NamedTuple

import numpy as np

from ..engine.config import TrainConfig, factories_taking, settings
from ..errors import ConfigError
from ..optim import LR_SCALINGS


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


def setting_rule(name: str) -> Rule:
    """The rule of the engine setting ``name``: its own check and words (None is refused
    unless the setting takes it)."""
    declared = settings()[name]

    def ok(value) -> bool:
        try:
            declared.check(name, value)
        except ConfigError:
            return False
        return True
    return Rule(ok, declared.allowed())


def _random_state_ok(v) -> bool:
    return v is None or (_is_int(v) and 0 <= v < 2**32) or isinstance(v, np.random.RandomState)


BOOL = Rule(lambda v: isinstance(v, (bool, np.bool_)), "True or False")
NON_NEGATIVE = real_in(0.0, float("inf"), high_open=True)

#: Estimator parameter -> the engine setting it is, under scikit-learn's name.
SETTING_OF = {"batch_size": "batch_size", "learning_rate": "lr", "max_iter": "epochs",
              "sampling": "sampling", "alpha": "l2", "optimizer": "optimizer",
              "eval_every": "eval_every", "hidden_layer_sizes": "hidden",
              "activation": "activation"}

#: The estimators' own parameters (no engine setting): default and rule.
OWN: dict[str, tuple[object, Rule]] = {
    "lr_scaling": ("none", one_of(LR_SCALINGS)),
    "base_batch": (32, int_at_least(1)),
    "early_stopping": (False, BOOL),
    "validation_fraction": (0.1, real_in(0.0, 1.0, low_open=True, high_open=True)),
    "n_iter_no_change": (5, int_at_least(1)),
    "tol": (1e-3, NON_NEGATIVE),
    "random_state": (None, Rule(_random_state_ok, "None, an integer in [0, 2**32) or a "
                                                  "numpy.random.RandomState")),
}


def optimizer_option_params() -> tuple[str, ...]:
    """The settings some optimiser's factory takes (``momentum``, ``weight_decay``, ...)."""
    return tuple(n for n, s in settings().items()
                 if s.role == "optimizer" and factories_taking(n))


def model_option_params() -> tuple[str, ...]:
    """The settings some architecture's factory takes (``hidden``, ``channels``, ...)."""
    return tuple(n for n, s in settings().items()
                 if s.role == "model" and factories_taking(n))


def common_params() -> tuple[str, ...]:
    """The keyword parameters every estimator has, in their order."""
    return ("batch_size", "learning_rate", "lr_scaling", "base_batch", "max_iter", "sampling",
            "alpha", "optimizer", *optimizer_option_params(), "eval_every", "early_stopping",
            "validation_fraction", "n_iter_no_change", "tol", "random_state")


def default_of(param: str):
    """A parameter's default: the estimators' own, else its setting's."""
    if param in OWN:
        return OWN[param][0]
    return getattr(TrainConfig(), SETTING_OF.get(param, param))


def rule_of(param: str) -> Rule:
    """A parameter's rule: the estimators' own, else its setting's."""
    if param in OWN:
        return OWN[param][1]
    if param == "hidden_layer_sizes":  # a whole number is one layer
        widths = setting_rule("hidden")
        return Rule(lambda v: widths.ok(v) and not isinstance(v, str),
                    "a whole number >= 1 or a sequence of them")
    return setting_rule(SETTING_OF.get(param, param))


def estimator_init(first: dict, keyword: tuple[str, ...], **defaults):
    """An ``__init__`` taking the parameters ``first`` (name -> default; may be given by
    position) and then the keyword-only ``keyword``, each defaulting to ``defaults`` or
    :func:`default_of`; it stores every value unchanged, as scikit-learn's ``clone``
    expects, and its signature is what ``get_params`` reads."""
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    params += [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=d)
               for n, d in first.items()]
    params += [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY,
                                 default=defaults[n] if n in defaults else default_of(n))
               for n in keyword]
    signature = inspect.Signature(params)

    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        for name, value in list(bound.arguments.items())[1:]:
            setattr(self, name, value)

    __init__.__signature__ = signature
    return __init__


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


#: The numpydoc type of each setting kind.
_DOC_TYPES = {"real": "float", "whole number": "int", "text": "str", "widths": "tuple of int",
              "flag": "bool"}


def options_doc(names: tuple[str, ...]) -> str:
    """numpydoc lines of the engine options ``names``: type, default, meaning, allowed values
    and the optimisers or architectures that take each."""
    lines = []
    for name in names:
        declared = settings()[name]
        takers = ", ".join(repr(t) for t in factories_taking(name))
        meaning = declared.help.format(choices=", ".join(declared.names()))
        lines.append(f"    {name} : {_DOC_TYPES.get(declared.kind, 'object')}, "
                     f"default={default_of(name)!r}\n        {meaning[0].upper()}"
                     f"{meaning[1:]}: {declared.allowed()}; used by {takers}.")
    return "\n".join(lines) + "\n"


def common_doc(lr: float, max_iter: int, alpha) -> str:
    """The numpydoc of the parameters every estimator shares (``lr``, ``max_iter``,
    ``alpha``: the class's defaults)."""
    optimizers = ", ".join(repr(o) for o in settings()["optimizer"].names())
    scalings = ", ".join(repr(s) for s in LR_SCALINGS)
    samplings = ", ".join(repr(s) for s in settings()["sampling"].names())
    return f"""
    batch_size : int, default={default_of("batch_size")}
        Examples per gradient step. 1 is stochastic gradient descent, ``n_samples`` (or more:
        it is clipped to the number of rows) is full-batch gradient descent. A last partial
        batch of an epoch is masked, never dropped.
    learning_rate : float, default={lr}
        Step size ``eta`` in ``W <- W - eta * grad``, before ``lr_scaling``.
    lr_scaling : {{{scalings}}}, default={default_of("lr_scaling")!r}
        Scale the rate with the batch size B from ``base_batch`` B0: ``eta * B / B0`` or
        ``eta * sqrt(B / B0)``. The rate used is ``learning_rate_``.
    base_batch : int, default={default_of("base_batch")}
        The batch size at which ``learning_rate`` was tuned (B0 above).
    max_iter : float, default={max_iter}
        Epochs (passes over the training rows); fractions allowed. Without early stopping
        exactly this many are run.
    sampling : {{{samplings}}}, default={default_of("sampling")!r}
        A new permutation per epoch; i.i.d. draws; or the rows in order.
    alpha : float, default={alpha}
        L2 penalty: the objective is the mean loss plus ``alpha / 2 * |W|^2`` (biases free).
    optimizer : {{{optimizers}}}, default={default_of("optimizer")!r}
        Plain SGD, or an optax alternative for comparison.
""" + options_doc(optimizer_option_params()) + f"""    eval_every : str, default={default_of("eval_every")!r}
        When a ``history_`` row is written (and, with early stopping, the validation score is
        measured): '1 epoch', '50 steps', '2s' of training time, 'end', or several joined by
        commas.
    early_stopping : bool, default={default_of("early_stopping")}
        Hold out ``validation_fraction`` of the training rows (stratified for classifiers)
        and stop when the validation score has not improved by more than ``tol`` for
        ``n_iter_no_change`` evaluations in a row, or reaches the target score.
    validation_fraction : float, default={default_of("validation_fraction")}
        Share of the rows held out when ``early_stopping`` is on.
    n_iter_no_change : int, default={default_of("n_iter_no_change")}
        Evaluations without improvement before early stopping ends the run.
    tol : float, default={default_of("tol")}
        Smallest validation-score gain that counts as an improvement.
    random_state : int, RandomState or None, default=None
        Seeds the weights, the validation split and the batch order. An int gives the same
        model bit for bit on the same machine; ``None`` a different one per fit.
"""
