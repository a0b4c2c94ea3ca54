"""Losses by scikit-learn name, one-vs-rest training, and scores in scikit-learn's shapes.

Training uses sgdlab's losses (:mod:`sgdlab.losses`). Binary margin losses (hinge, logistic,
perceptron) with ``C > 2`` classes are trained **one-vs-rest**, as scikit-learn's
``SGDClassifier`` does, but in one pass: the model has ``C`` outputs and the per-example loss is

.. math:: \\ell(f, y) = \\sum_{c=1}^{C} \\ell_{bin}(f_c, s_c), \\qquad
          s_c = +1 \\text{ if } y = c \\text{ else } -1 .

For a linear model the gradient of column ``c`` is exactly that of the binary problem "class c
against the rest", so this *is* ``C`` independent binary classifiers, trained on the same
mini-batches. (In an MLP the hidden layers are shared by the ``C`` outputs.)

Prediction runs in NumPy float64 from the fitted arrays, so it needs no compilation per input
shape and a row's score does not depend on which other rows are in ``X``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from scipy.special import erf, expit, softmax

from .._types import Loss
from ..errors import ConfigError
from ..losses import LOSSES

#: scikit-learn or sgdlab spelling -> sgdlab loss, for classifiers.
CLASSIFIER_LOSSES = {
    "hinge": "hinge", "log_loss": "logistic", "log": "logistic", "logistic": "logistic",
    "perceptron": "perceptron", "softmax": "softmax", "multiclass_svm": "multiclass_svm",
    "multiclass_hinge": "multiclass_svm",
}
#: ... and for regressors.
REGRESSOR_LOSSES = {"squared": "squared", "squared_error": "squared"}
#: Losses whose scores are log-odds, so ``predict_proba`` is defined.
PROBABILISTIC = frozenset({"logistic", "softmax"})


def canonical_loss(estimator, table: dict) -> str:
    """The sgdlab name of ``estimator.loss``, or a :class:`ConfigError` listing the options."""
    if isinstance(estimator.loss, str) and estimator.loss in table:
        return table[estimator.loss]
    raise ConfigError(f"{type(estimator).__name__}: loss={estimator.loss!r} is not valid; it "
                      f"must be one of {', '.join(repr(k) for k in table)}")


def training_loss(name: str, n_classes: int) -> Loss:
    """The :class:`Loss` trained for ``name`` on ``n_classes`` classes (0 for regression)."""
    base = LOSSES[name]
    if base.target_kind == "sign" and n_classes > 2:
        return ovr_loss(name, n_classes)
    return base


@functools.lru_cache(maxsize=None)
def ovr_loss(name: str, n_classes: int) -> Loss:
    """One-vs-rest sum of the binary loss ``name`` over ``n_classes`` outputs.

    ``outputs: (B, C)``, ``y: (B,)`` int class indices ``->`` ``(B,)``. Cached so equal calls
    return the same object, which lets the engine reuse its compiled program.
    """
    binary = LOSSES[name].fn

    def fn(outputs, y):
        signs = 2.0 * jax.nn.one_hot(y, n_classes, dtype=outputs.dtype) - 1.0     # (B, C)
        # The binary loss reads column 0 of its outputs; map it over the C columns.
        per_class = jax.vmap(lambda f, s: binary(f[:, None], s), in_axes=1, out_axes=1)(
            outputs, signs)                                                      # (B, C)
        return jnp.sum(per_class, axis=1)

    def predict(outputs):
        return jnp.argmax(outputs, axis=1).astype(jnp.int32)

    return Loss(f"ovr_{name}", fn, "index", lambda n: n_classes, predict)


# --------------------------------------------------------------------------------------------
# from raw model outputs to scikit-learn's conventions


def binary_scores(outputs: np.ndarray) -> np.ndarray:
    """Scores ``(N, k)`` of a 2-class model as scikit-learn's ``(N,)`` decision values.

    One output (margin losses) is the decision value; two outputs (softmax, multiclass SVM)
    give ``f_1 - f_0``, whose sign is the argmax and whose sigmoid is the softmax probability.
    """
    return outputs[:, 0] if outputs.shape[1] == 1 else outputs[:, 1] - outputs[:, 0]


def predict_labels(scores: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Class labels from ``(N,)`` binary decision values or ``(N, C)`` scores."""
    if scores.ndim == 1:
        return classes[(scores > 0).astype(np.intp)]
    return classes[np.argmax(scores, axis=1)]


def probabilities(scores: np.ndarray, loss: str) -> np.ndarray:
    """``(N, C)`` class probabilities from decision values (softmax or logistic losses).

    Binary: ``p_1 = sigmoid(d)``. Softmax: ``softmax(f)``. One-vs-rest logistic: each
    ``sigmoid(f_c)`` normalised to sum 1 (scikit-learn's rule for ``SGDClassifier``).
    """
    if scores.ndim == 1:
        p1 = expit(scores)
        return np.column_stack([1.0 - p1, p1])
    if loss == "softmax":
        return softmax(scores, axis=1)
    p = expit(scores)
    total = p.sum(axis=1, keepdims=True)
    # All C sigmoids can underflow to 0 far from every class; fall back to uniform there.
    return np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[1]), where=total > 0)


_NP_ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "sigmoid": expit,
    "gelu": lambda x: 0.5 * x * (1.0 + erf(x / np.sqrt(2.0))),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.01 * x),
    "identity": lambda x: x,
}


def mlp_forward(X: np.ndarray, coefs: list, intercepts: list, activation: str) -> np.ndarray:
    """``h_l = act(h_{l-1} W_l + b_l)``, last layer affine: the NumPy twin of ``models.mlp``.

    ``X: (N, d)`` float64, ``coefs[l]: (n_{l-1}, n_l)``; returns ``(N, k)`` float64.
    """
    act = _NP_ACTIVATIONS[activation]
    h = X
    for W, b in zip(coefs[:-1], intercepts[:-1]):
        h = act(h @ W + b)
    return h @ coefs[-1] + intercepts[-1]
