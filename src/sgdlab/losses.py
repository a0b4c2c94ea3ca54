"""Per-example losses, the training objective, L2 and evaluation metrics.

Every loss is a :class:`sgdlab._types.Loss`; ``fn(outputs: (B, k), targets: (B,)) -> (B,)``
returns one value per example, so the caller can mask a padded last batch with weights.
Notation: ``f`` is the score ``outputs[:, 0]`` of single-output losses, ``f_j`` the ``j``-th
column of multi-output ones.

================  =======================================  ===========  =====  ===============
name              per-example value                        targets      k      predict
================  =======================================  ===========  =====  ===============
squared           ``0.5 (f - y)^2``                        real         1      ``f``
hinge             ``max(0, 1 - y f)``                      sign (+-1)   1      ``f > 0``
perceptron        ``max(0, -y f)``                         sign (+-1)   1      ``f > 0``
logistic          ``log(1 + exp(-y f))``                   sign (+-1)   1      ``f > 0``
softmax           ``logsumexp_j f_j - f_y``                index        C      ``argmax_j f_j``
multiclass_svm    ``sum_{j != y} max(0, f_j - f_y + 1)``   index        C      ``argmax_j f_j``
================  =======================================  ===========  =====  ===============

Binary margin losses ("sign" targets) use class index 1 as the positive class (``y = +1``) and
index 0 as ``y = -1``; their prediction ``(f > 0)`` is therefore again a class index.
"""

from __future__ import annotations

import math
from typing import Callable

from ._lazy import jax, jnp
from ._types import Array, Loss, Params
from .errors import ConfigError

__all__ = [
    "LOSSES", "ALIASES", "get_loss", "encode_targets", "l2_penalty", "objective",
    "accuracy", "mse", "r2", "accuracy_value", "mse_value", "r2_value", "sum_stats",
]

TARGET_KINDS = ("index", "sign", "real")


# --------------------------------------------------------------------------------------------
# per-example functions (outputs: (B, k), targets: (B,)) -> (B,)


def _squared(outputs: Array, y: Array) -> Array:
    """``0.5 (f - y)^2``; the 1/2 makes the gradient wrt ``f`` simply the residual ``f - y``."""
    return 0.5 * jnp.square(outputs[:, 0] - y)


def _hinge(outputs: Array, y: Array) -> Array:
    """``max(0, 1 - y f)``; d/df = ``-y`` where the margin ``y f < 1``, else 0."""
    return jnp.maximum(0.0, 1.0 - y * outputs[:, 0])


def _perceptron(outputs: Array, y: Array) -> Array:
    """``max(0, -y f)``: the hinge with margin 0; d/df = ``-y`` on mistakes (``y f < 0``)."""
    return jnp.maximum(0.0, -y * outputs[:, 0])


def _logistic(outputs: Array, y: Array) -> Array:
    """``log(1 + exp(-y f))``; d/df = ``-y sigmoid(-y f)``.

    ``logaddexp(0, z)`` never forms ``exp(z)`` for large ``z``, so it neither overflows for
    badly misclassified points nor loses the small value for well-classified ones.
    """
    return jnp.logaddexp(0.0, -y * outputs[:, 0])


def _take(outputs: Array, y: Array) -> Array:
    """``outputs[i, y_i]`` for every row: ``(B, k), (B,) -> (B,)``."""
    return jnp.take_along_axis(outputs, y[:, None].astype(jnp.int32), axis=1)[:, 0]


def _softmax(outputs: Array, y: Array) -> Array:
    """Cross-entropy ``-log softmax(f)_y = logsumexp_j f_j - f_y``; d/df = ``p - onehot(y)``.

    Written with logsumexp (which subtracts the max internally) rather than ``log(softmax)`` so
    large scores do not overflow and tiny probabilities do not underflow to ``log 0``.
    """
    return jax.nn.logsumexp(outputs, axis=1) - _take(outputs, y)


def _multiclass_svm(outputs: Array, y: Array) -> Array:
    """Weston-Watkins multiclass hinge ``sum_{j != y} max(0, f_j - f_y + 1)``.

    d/df_j = ``[f_j - f_y + 1 > 0]`` for ``j != y`` and d/df_y = minus the number of such
    violating classes.
    """
    k = outputs.shape[1]
    margins = outputs - _take(outputs, y)[:, None] + 1.0            # (B, k)
    is_true = jax.nn.one_hot(y, k, dtype=bool)                      # (B, k)
    # The true class would contribute max(0, 1) = 1 to every example; it is not a violation,
    # so mask it (``where`` also stops any gradient through that entry).
    return jnp.sum(jnp.where(is_true, 0.0, jnp.maximum(0.0, margins)), axis=1)


# --------------------------------------------------------------------------------------------
# predictions and output widths


def _predict_real(outputs: Array) -> Array:
    return outputs[:, 0]


def _predict_sign(outputs: Array) -> Array:
    # Class index 1 is the positive class (y = +1), so "f > 0" is already an index.
    return (outputs[:, 0] > 0).astype(jnp.int32)


def _predict_argmax(outputs: Array) -> Array:
    return jnp.argmax(outputs, axis=1).astype(jnp.int32)


def _one_output(n_classes: int | None = None) -> int:
    return 1


def _n_classes_outputs(n_classes: int) -> int:
    return int(n_classes)


def _sign_outputs(name: str) -> Callable[[int], int]:
    def n_outputs(n_classes: int) -> int:
        _check_binary(name, n_classes)
        return 1
    return n_outputs


def _check_binary(name: str, n_classes) -> None:
    if n_classes != 2:
        raise ConfigError(
            f"loss {name!r} needs 2 classes, the data has {n_classes}; "
            f"use 'multiclass_svm' or 'softmax'"
        )


def _make(name: str, fn, kind: str) -> Loss:
    if kind == "real":
        return Loss(name, fn, kind, _one_output, _predict_real)
    if kind == "sign":
        return Loss(name, fn, kind, _sign_outputs(name), _predict_sign)
    return Loss(name, fn, kind, _n_classes_outputs, _predict_argmax)


# --------------------------------------------------------------------------------------------
# registry

#: Canonical loss name -> :class:`Loss`.
LOSSES: dict[str, Loss] = {
    "squared": _make("squared", _squared, "real"),
    "hinge": _make("hinge", _hinge, "sign"),
    "perceptron": _make("perceptron", _perceptron, "sign"),
    "logistic": _make("logistic", _logistic, "sign"),
    "softmax": _make("softmax", _softmax, "index"),
    "multiclass_svm": _make("multiclass_svm", _multiclass_svm, "index"),
}

#: Other accepted spellings -> canonical name.
ALIASES: dict[str, str] = {
    "log": "logistic",
    "cross_entropy": "softmax",
    "ce": "softmax",
    "svm": "hinge",
    "multiclass_hinge": "multiclass_svm",
    "mse": "squared",
}


def get_loss(name) -> Loss:
    """Resolve a loss specification to a :class:`Loss`.

    ``name`` may be

    * a registered name or alias (see :data:`LOSSES`, :data:`ALIASES`);
    * a :class:`Loss` instance, returned unchanged;
    * any other callable ``(outputs: (B, k), targets: (B,)) -> (B,)`` of per-example values.
      It is wrapped as ``Loss("custom", fn, "index", n_outputs=n_classes, predict=argmax)``:
      a custom loss receives int32 class indices and the model gets one output per class. For
      other target kinds build a :class:`Loss` yourself.

    Raises :class:`ConfigError` listing every accepted name for an unknown one.
    """
    if isinstance(name, Loss):
        return name
    if isinstance(name, str):
        canonical = ALIASES.get(name, name)
        if canonical in LOSSES:
            return LOSSES[canonical]
        raise ConfigError(_unknown_loss(name))
    if callable(name):
        return _make("custom", name, "index")
    raise ConfigError(_unknown_loss(repr(name)))


def _unknown_loss(given: str) -> str:
    # Same shape as errors.choices_message, spelled out because "loss" + "s" is not a plural.
    return f"unknown loss {given!r}; valid losses: {', '.join(sorted([*LOSSES, *ALIASES]))}"


def encode_targets(loss, y, n_classes: int, *, dtype="float32") -> Array:
    """Labels ``y: (N,)`` in the form ``loss`` wants.

    * ``"sign"``: class index 0 -> ``-1.0``, 1 -> ``+1.0`` (``2 y - 1``) as ``dtype``; the data
      must have exactly 2 classes;
    * ``"index"``: int32 class indices;
    * ``"real"``: ``dtype`` (float32 by default) regression targets.

    ``n_classes`` is the number of classes of the data (0 for regression). Raises
    :class:`ConfigError` when a classification loss meets regression data or a binary loss
    meets more than 2 classes.
    """
    loss = get_loss(loss)
    if loss.target_kind in ("sign", "index") and not n_classes:
        raise ConfigError(
            f"loss {loss.name!r} needs class labels, but the data is a regression task; "
            f"use 'squared'"
        )
    if loss.target_kind == "sign":
        _check_binary(loss.name, n_classes)
        return 2.0 * jnp.asarray(y).astype(dtype) - 1.0
    if loss.target_kind == "index":
        return jnp.asarray(y).astype(jnp.int32)
    if loss.target_kind == "real":
        return jnp.asarray(y).astype(dtype)
    raise ConfigError(
        f"loss {loss.name!r} has target_kind {loss.target_kind!r}; "
        f"valid: {', '.join(TARGET_KINDS)}"
    )


# --------------------------------------------------------------------------------------------
# objective


#: Names of bias leaves: ``"b"`` (sgdlab's models), ``"bias"`` (Flax linen and NNX, Equinox).
BIAS_NAMES = frozenset({"b", "bias"})


def _entry_name(entry):
    """The name in one path entry: a dict key (``DictKey``) or an attribute (``GetAttrKey``,
    Equinox modules and NNX variables); None for a list index."""
    if isinstance(entry, jax.tree_util.DictKey):
        return entry.key
    if isinstance(entry, jax.tree_util.GetAttrKey):
        return entry.name
    return None


def is_bias(path) -> bool:
    """A leaf is a bias when the name that holds it is ``"b"`` or ``"bias"``.

    Paths as ``jax.tree_util.tree_flatten_with_path`` gives them: ``(..., DictKey("b"))``
    (sgdlab), ``(..., DictKey("bias"))`` (Flax linen params, and NNX parameters as a pure
    dict), ``(..., GetAttrKey("bias"))`` (Equinox) and ``(..., DictKey("bias"),
    GetAttrKey("value"))`` (an NNX ``State`` of ``nnx.Param`` variables).
    """
    if not path:
        return False
    last = path[-1]
    if isinstance(last, jax.tree_util.GetAttrKey) and last.name == "value" and len(path) > 1:
        last = path[-2]  # the variable's own value: its name is the entry before
    name = _entry_name(last)
    return isinstance(name, str) and name in BIAS_NAMES


def l2_penalty(params: Params) -> Array:
    """``0.5 * sum_w ||w||^2`` over every weight leaf; leaves named ``"b"`` or ``"bias"`` are
    biases (:func:`is_bias`) and are not penalised (shrinking an offset toward 0 only adds bias
    to the fit).

    The 1/2 makes the gradient of ``l2 * l2_penalty`` simply ``l2 * w``.
    """
    leaves, _ = jax.tree_util.tree_flatten_with_path(params)
    terms = [jnp.sum(jnp.square(leaf)) for path, leaf in leaves if not is_bias(path)]
    if not terms:
        return jnp.zeros(())
    return 0.5 * sum(terms[1:], terms[0])


def objective(model_apply, loss, params: Params, X: Array, targets: Array, weights: Array,
              l2=0.0) -> Array:
    """The scalar minimised by one SGD step.

    With per-example losses ``l_i = loss.fn(apply(params, X), targets)_i``, ``X: (B, d)`` and
    weights ``w: (B,)``: 0 marks padding rows of a short last batch, a real row carries its
    sample weight (1 without sample weights; with them, normalised to mean 1 over the rows of
    positive weight, so a row of weight 0 takes no part, like padding)::

        J(params) = sum_i w_i l_i / max(n, 1)  +  l2 * 0.5 * sum_{weights W} ||W||^2,
        n = #{i : w_i > 0}  (the real rows)

    i.e. the mean loss over the real rows plus the L2 term (a weighted mean whose expectation
    over uniform batches is the weighted objective of the whole set: dividing by the batch's
    weight sum instead would make weights a no-op at batch size 1). With 0/1 weights ``n`` is
    ``sum_i w_i``. The ``max(., 1)`` only matters for an all-padding batch, where it gives 0
    instead of 0/0. Padded rows must hold finite values (zeros): ``0 * inf`` is still NaN.
    """
    loss = get_loss(loss)
    per_example = loss.fn(model_apply(params, X), targets)
    weights = weights.astype(per_example.dtype)
    real_rows = jnp.sum(weights > 0).astype(per_example.dtype)
    data_term = jnp.sum(weights * per_example) / jnp.maximum(real_rows, 1.0)
    # Skip tracing the penalty when it is switched off by a Python constant.
    if isinstance(l2, (int, float)) and l2 == 0:
        return data_term
    return data_term + l2 * l2_penalty(params)


# --------------------------------------------------------------------------------------------
# metrics
#
# Each returns weighted sums, not a ratio, so an evaluation split into blocks (to bound memory)
# adds the tuples elementwise and calls the matching ``*_value`` once at the end. Accumulate in
# Python floats / float64 on the host: float32 sums over millions of rows drift.


def accuracy(pred: Array, y_index: Array, weights: Array) -> tuple[Array, Array]:
    """``(sum_i w_i [pred_i == y_i], sum_i w_i)``; accuracy is their ratio."""
    w = weights.astype(jnp.float32)
    return jnp.sum(w * (pred == y_index)), jnp.sum(w)


def mse(pred: Array, y: Array, weights: Array) -> tuple[Array, Array]:
    """``(sum_i w_i (pred_i - y_i)^2, sum_i w_i)``; the mean squared error is their ratio."""
    w = weights.astype(pred.dtype)
    return jnp.sum(w * jnp.square(pred - y)), jnp.sum(w)


def r2(pred: Array, y: Array, weights: Array, center=0.0) -> tuple[Array, Array, Array, Array]:
    """Sufficient statistics of the coefficient of determination.

    Returns ``(SSE, n, S1, S2)`` with ``SSE = sum w (pred - y)^2``, ``n = sum w``,
    ``S1 = sum w (y - c)``, ``S2 = sum w (y - c)^2``. Then (see :func:`r2_value`)::

        SS_tot = S2 - S1^2 / n        R^2 = 1 - SSE / SS_tot

    ``SS_tot`` does not depend on the shift ``c``; pass ``center`` close to the mean of ``y``
    (e.g. the training mean) so ``S2 - S1^2/n`` does not cancel catastrophically.
    """
    w = weights.astype(pred.dtype)
    yc = y - center
    return (jnp.sum(w * jnp.square(pred - y)), jnp.sum(w), jnp.sum(w * yc),
            jnp.sum(w * jnp.square(yc)))


def accuracy_value(stats) -> float:
    """Accuracy from accumulated :func:`accuracy` sums (NaN when no rows were seen)."""
    correct, count = (float(s) for s in stats)
    return correct / count if count > 0 else float("nan")


def mse_value(stats) -> float:
    """Mean squared error from accumulated :func:`mse` sums (NaN when no rows were seen)."""
    sse, count = (float(s) for s in stats)
    return sse / count if count > 0 else float("nan")


def r2_value(stats) -> float:
    """``R^2`` from accumulated :func:`r2` sums.

    For constant targets (``SS_tot == 0``) it is 1.0 for a perfect fit and 0.0 otherwise, the
    scikit-learn convention; NaN when no rows were seen.
    """
    sse, n, s1, s2 = (float(s) for s in stats)
    if n <= 0:
        return float("nan")
    ss_tot = max(s2 - s1 * s1 / n, 0.0)
    if ss_tot == 0.0:
        return 1.0 if sse == 0.0 else 0.0
    return 1.0 - sse / ss_tot


def sum_stats(*stats) -> tuple[float, ...]:
    """Elementwise sum of metric tuples from several evaluation blocks, as Python floats."""
    # fsum: exact summation, so the order in which blocks arrive does not change the result.
    return tuple(math.fsum(float(s[i]) for s in stats) for i in range(len(stats[0])))
