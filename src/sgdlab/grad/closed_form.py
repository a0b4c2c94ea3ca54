"""Hand-written gradients of the linear model's objective, formula by formula.

For the affine model ``S = X W^T + b`` (``X: (B, d)``, ``W: (k, d)``, ``b: (k,)``), 0/1 weights
``w: (B,)`` with ``n = max(sum_i w_i, 1)``, and per-example losses ``l_i(S_i)``::

    J = (1/n) sum_i w_i l_i(S_i) + (lambda/2) ||W||^2

the chain rule through the scores gives, with ``G_i = (w_i / n) dl_i/dS_i`` (a ``(B, k)``
matrix)::

    dJ/dW = G^T X + lambda W          (k, d)
    dJ/db = sum_i G_i                 (k,)

so only ``dl/dS`` differs between losses. Writing ``f = S_i[0]`` for single-output losses,
``y`` the target, ``p = softmax(S_i)`` and ``[.]`` an indicator:

==============  ===================================  =============================================
loss            l(S)                                 dl/dS
==============  ===================================  =============================================
squared         ``(f - y)^2 / 2``                    ``f - y``
hinge           ``max(0, 1 - y f)``                  ``-y [y f < 1]``
perceptron      ``max(0, -y f)``                     ``-y [y f < 0]``
logistic        ``log(1 + exp(-y f))``               ``-y sigmoid(-y f)``
softmax         ``logsumexp(S) - S_y``               ``p - onehot(y)``
multiclass_svm  ``sum_{j!=y} max(0, S_j - S_y + 1)``  ``m_j = [S_j - S_y + 1 > 0]`` for ``j != y``,
                                                     ``-sum_{j != y} m_j`` at ``j = y``
==============  ===================================  =============================================

At a kink (``y f = 1`` for the hinge, a margin of exactly 0 for the SVM) these take the
one-sided value 0, a valid subgradient; autodiff's ``max`` splits ties 1/2 : 1/2, so the two
agree everywhere except exactly on a kink, a set of measure zero.
"""

from __future__ import annotations

from .._lazy import jax, jnp
from .._types import Loss, Model
from ..errors import ConfigError
from ..losses import LOSSES, get_loss
from ..models import linear, linear_scores

__all__ = ["CLOSED_FORM_LOSSES", "closed_form_value_and_grad", "score_gradients"]


def _squared(S, y):
    r = S[:, 0] - y
    return 0.5 * r * r, r[:, None]


def _hinge(S, y):
    margin = y * S[:, 0]
    return jnp.maximum(0.0, 1.0 - margin), (-y * (margin < 1.0))[:, None]


def _perceptron(S, y):
    margin = y * S[:, 0]
    return jnp.maximum(0.0, -margin), (-y * (margin < 0.0))[:, None]


def _logistic(S, y):
    z = -y * S[:, 0]
    return jnp.logaddexp(0.0, z), (-y * jax.nn.sigmoid(z))[:, None]


def _softmax(S, y):
    lse = jax.nn.logsumexp(S, axis=1)
    onehot = jax.nn.one_hot(y, S.shape[1], dtype=S.dtype)
    # p = exp(S - logsumexp S): the same shift that keeps the value finite keeps p finite.
    p = jnp.exp(S - lse[:, None])
    return lse - jnp.sum(onehot * S, axis=1), p - onehot


def _multiclass_svm(S, y):
    onehot = jax.nn.one_hot(y, S.shape[1], dtype=S.dtype)
    s_true = jnp.sum(onehot * S, axis=1)
    margins = S - s_true[:, None] + 1.0
    violated = jnp.where(onehot > 0, 0.0, (margins > 0).astype(S.dtype))   # (B, k)
    value = jnp.sum(violated * margins, axis=1)
    # The true class's score appears (negated) in every violated term.
    return value, violated - onehot * jnp.sum(violated, axis=1, keepdims=True)


#: loss name -> ``(S (B, k), targets (B,)) -> (per-example values (B,), dl/dS (B, k))``
CLOSED_FORM_LOSSES = {
    "squared": _squared,
    "hinge": _hinge,
    "perceptron": _perceptron,
    "logistic": _logistic,
    "softmax": _softmax,
    "multiclass_svm": _multiclass_svm,
}


def score_gradients(loss_name: str, S, targets):
    """Per-example losses ``(B,)`` and their derivatives with respect to the scores ``(B, k)``."""
    return CLOSED_FORM_LOSSES[loss_name](S, targets)


def _supported(model: Model, loss: Loss) -> bool:
    # Identity, not names: a user model called "linear" may compute something else entirely.
    return model.apply is linear().apply and LOSSES.get(loss.name) is loss \
        and loss.name in CLOSED_FORM_LOSSES


def closed_form_value_and_grad(model: Model, loss: Loss, l2: float):
    """The engine's ``value_and_grad`` for the linear model, by the formulas above.

    ``(params {"W": (k, d), "b": (k,)}, X (B, d), targets (B,), weights (B,)) -> (J, grads)``;
    examples of more axes ``X (B, *example_shape)`` are flattened to ``(B, d)`` first, as the
    linear model flattens them. Raises :class:`ConfigError` for any other model or a custom
    loss.
    """
    loss = get_loss(loss)
    if not _supported(model, loss):
        raise ConfigError(
            f"closed-form gradients exist for the built-in linear model with the losses "
            f"{', '.join(sorted(CLOSED_FORM_LOSSES))}; got model {model.name!r} with loss "
            f"{loss.name!r}. Use gradient='autodiff' (--gradient autodiff) for this model")
    per_example = CLOSED_FORM_LOSSES[loss.name]

    def value_and_grad(params, X, targets, weights):
        W, b = params["W"], params["b"]
        X = X.reshape(X.shape[0], -1)                               # (B, d)
        S = linear_scores(W, b, X)                                  # (B, k)
        values, dS = per_example(S, targets)
        w = weights.astype(S.dtype)
        n = jnp.maximum(jnp.sum(w > 0).astype(S.dtype), 1.0)  # real rows: losses.objective
        G = (w / n)[:, None] * dS                                   # (B, k)
        J = jnp.sum(w * values) / n
        # G^T X (k, d) as one contraction over the batch axis; spelling it with explicit
        # transposes made XLA on the CPU copy the transposed X every step.
        gW = jax.lax.dot_general(G, X, (((0,), (0,)), ((), ())))
        if not (isinstance(l2, (int, float)) and l2 == 0):
            J = J + l2 * 0.5 * jnp.sum(W * W)
            gW = gW + l2 * W
        return J, {"W": gW, "b": jnp.sum(G, axis=0)}

    return value_and_grad
