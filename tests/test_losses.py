"""Losses against hand-written NumPy formulas: per-example values, gradients wrt the outputs and
wrt ``W, b`` of a linear model (float64, away from kinks); registry, target encoding, L2,
the masked objective and the block-summable metrics."""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgdlab._types import Loss
from helpers import x64
from sgdlab.errors import ConfigError
from sgdlab.losses import (
    ALIASES, LOSSES, accuracy, accuracy_value, encode_targets, get_loss, l2_penalty, mse,
    mse_value, objective, r2, r2_value, sum_stats,
)
from sgdlab.models import linear


# ------------------------------------------------------------------ NumPy references
# Each returns (value (B,), d value / d F (B, k)) for scores F: (B, k) and targets t: (B,).


def ref_squared(F, y):
    r = F[:, 0] - y
    G = np.zeros_like(F)
    G[:, 0] = r
    return 0.5 * r ** 2, G


def ref_hinge(F, y):
    m = y * F[:, 0]
    G = np.zeros_like(F)
    G[:, 0] = np.where(m < 1, -y, 0.0)
    return np.maximum(0.0, 1.0 - m), G


def ref_perceptron(F, y):
    m = y * F[:, 0]
    G = np.zeros_like(F)
    G[:, 0] = np.where(m < 0, -y, 0.0)
    return np.maximum(0.0, -m), G


def ref_logistic(F, y):
    m = y * F[:, 0]
    G = np.zeros_like(F)
    G[:, 0] = -y / (1.0 + np.exp(m))           # -y * sigmoid(-m)
    return np.log1p(np.exp(-m)), G


def ref_softmax(F, y):
    Z = F - F.max(axis=1, keepdims=True)
    P = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    onehot = np.zeros_like(F)
    onehot[rows, y] = 1.0
    return -np.log(P[rows, y]), P - onehot


def ref_multiclass_svm(F, y):
    rows = np.arange(len(y))
    M = F - F[rows, y][:, None] + 1.0
    M[rows, y] = 0.0
    active = (M > 0).astype(float)
    G = active.copy()
    G[rows, y] = -active.sum(axis=1)             # the true score appears in every violation
    return np.maximum(M, 0.0).sum(axis=1), G


REFS = {
    "squared": ref_squared, "hinge": ref_hinge, "perceptron": ref_perceptron,
    "logistic": ref_logistic, "softmax": ref_softmax, "multiclass_svm": ref_multiclass_svm,
}


def kink_distance(name, F, t):
    """Distance of the scores from the nearest non-differentiable point of the loss."""
    if name == "hinge":
        return np.min(np.abs(t * F[:, 0] - 1.0))
    if name == "perceptron":
        return np.min(np.abs(t * F[:, 0]))
    if name == "multiclass_svm":
        rows = np.arange(len(t))
        M = F - F[rows, t][:, None] + 1.0
        M[rows, t] = np.inf
        return np.min(np.abs(M))
    return np.inf


def make_problem(name, B=40, d=5, C=4, seed=0):
    """Linear-model data (X, W, b, targets, scores) in float64 with every score at least 1e-2
    from a kink and both sides of each kink represented."""
    kind = LOSSES[name].target_kind
    k = C if kind == "index" else 1
    for s in range(seed, seed + 200):
        rng = np.random.default_rng(s)
        X = rng.normal(size=(B, d))
        W = rng.normal(size=(d, k)) * 0.7
        b = rng.normal(size=k) * 0.3
        if kind == "index":
            t = rng.integers(0, C, size=B)
        elif kind == "sign":
            t = rng.choice([-1.0, 1.0], size=B)
        else:
            t = rng.normal(size=B)
        F = X @ W + b
        if kink_distance(name, F, t) > 1e-2:
            return X, W, b, t, F
    raise AssertionError("no kink-free draw")


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_value_and_output_gradient_match_numpy(name):
    X, W, b, t, F = make_problem(name)
    want_val, want_grad = REFS[name](F, t)
    loss = LOSSES[name]
    with x64():
        Fj, tj = jnp.asarray(F), jnp.asarray(t)
        # Each l_i depends only on row i, so the gradient of the sum is the per-row gradient.
        val, grad = jax.jit(lambda G: (loss.fn(G, tj),
                                       jax.grad(lambda H: jnp.sum(loss.fn(H, tj)))(G)))(Fj)
    assert val.dtype == jnp.float64 and val.shape == (len(t),)
    np.testing.assert_allclose(np.asarray(val), want_val, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.asarray(grad), want_grad, rtol=1e-10, atol=1e-10)
    if name in ("hinge", "perceptron", "multiclass_svm"):
        # The draw must exercise both the flat and the sloped part of the loss.
        assert np.any(want_val == 0) and np.any(want_val > 0)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_linear_model_gradient_matches_numpy(name, l2):
    X, W, b, t, F = make_problem(name, seed=10)
    B = len(t)
    _, G = REFS[name](F, t)
    # J = mean_i l_i(X W + b) + l2/2 ||W||^2  =>  dJ/dW = X^T G / B + l2 W,  dJ/db = sum_i G_i / B
    want_W = X.T @ G / B + l2 * W
    want_b = G.sum(axis=0) / B
    model = linear()
    with x64():
        params = {"W": jnp.asarray(W.T), "b": jnp.asarray(b)}  # the model is output-major
        Xj, tj = jnp.asarray(X), jnp.asarray(t)
        g = jax.jit(jax.grad(
            lambda p: objective(model.apply, name, p, Xj, tj, jnp.ones(B), l2)))(params)
    np.testing.assert_allclose(np.asarray(g["W"]).T, want_W, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(np.asarray(g["b"]), want_b, rtol=1e-10, atol=1e-10)


def test_logistic_and_softmax_are_stable_for_large_scores():
    def value_and_grad(name, F, y):
        fn = LOSSES[name].fn
        return jax.jit(lambda G: (fn(G, y), jax.grad(lambda H: jnp.sum(fn(H, y)))(G)))(F)

    val, g = value_and_grad("logistic", jnp.array([[1000.0], [-1000.0], [1000.0]]),
                            jnp.array([-1.0, -1.0, 1.0]))
    np.testing.assert_allclose(val, [1000.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(g, [[1.0], [0.0], [0.0]], atol=1e-6)
    val, g = value_and_grad("softmax", jnp.array([[1000.0, 0.0, -1000.0], [0.0, 800.0, 0.0]]),
                            jnp.array([0, 0]))
    np.testing.assert_allclose(val, [0.0, 800.0], atol=1e-4)
    np.testing.assert_allclose(g, [[0.0, 0.0, 0.0], [-1.0, 1.0, 0.0]], atol=1e-6)


def test_multiclass_svm_small_example():
    # cs231n worked example: scores (3.2, 5.1, -1.7), true class 0 -> max(0, 2.9) + max(0, -3.9)
    val = LOSSES["multiclass_svm"].fn(jnp.array([[3.2, 5.1, -1.7]]), jnp.array([0]))
    np.testing.assert_allclose(val, [2.9], rtol=1e-6)


# ------------------------------------------------------------------ predictions and widths


def test_predict_and_n_outputs():
    F1 = jnp.array([[-0.5], [0.2], [0.0]])
    for name in ("hinge", "perceptron", "logistic"):
        loss = LOSSES[name]
        np.testing.assert_array_equal(loss.predict(F1), [0, 1, 0])
        assert loss.predict(F1).dtype == jnp.int32
        assert loss.n_outputs(2) == 1
        with pytest.raises(ConfigError, match="needs 2 classes"):
            loss.n_outputs(3)
    np.testing.assert_allclose(LOSSES["squared"].predict(F1), [-0.5, 0.2, 0.0])
    assert LOSSES["squared"].n_outputs(0) == 1
    F3 = jnp.array([[0.1, 0.5, 0.2], [3.0, -1.0, 0.0]])
    for name in ("softmax", "multiclass_svm"):
        np.testing.assert_array_equal(LOSSES[name].predict(F3), [1, 0])
        assert LOSSES[name].n_outputs(5) == 5


# ------------------------------------------------------------------ registry


def test_registry_names_and_aliases():
    assert set(LOSSES) == {"squared", "hinge", "perceptron", "logistic", "softmax",
                           "multiclass_svm"}
    for name, loss in LOSSES.items():
        assert loss.name == name and get_loss(name) is loss
    expected = {"log": "logistic", "cross_entropy": "softmax", "ce": "softmax", "svm": "hinge",
                "multiclass_hinge": "multiclass_svm", "mse": "squared"}
    assert ALIASES == expected
    for alias, canonical in expected.items():
        assert get_loss(alias) is LOSSES[canonical]


def test_get_loss_unknown_lists_valid_names():
    with pytest.raises(ConfigError, match=r"unknown loss 'hing'; valid losses: ce, "
                                          r"cross_entropy, hinge, log, logistic, mse, "
                                          r"multiclass_hinge, multiclass_svm, perceptron, "
                                          r"softmax, squared, svm"):
        get_loss("hing")
    with pytest.raises(ConfigError, match="unknown loss"):
        get_loss(3)


def test_get_loss_instance_and_callable():
    mine = Loss("mine", lambda o, t: o[:, 0], "real", lambda c: 1, lambda o: o[:, 0])
    assert get_loss(mine) is mine

    def fn(outputs, targets):
        return jnp.sum(outputs ** 2, axis=1)

    wrapped = get_loss(fn)
    assert wrapped.name == "custom" and wrapped.fn is fn and wrapped.target_kind == "index"
    assert wrapped.n_outputs(4) == 4
    np.testing.assert_array_equal(wrapped.predict(jnp.array([[0.0, 2.0], [1.0, 0.0]])), [1, 0])


# ------------------------------------------------------------------ target encoding


def test_encode_targets():
    y = np.array([0, 1, 1, 0], dtype=np.int32)
    s = encode_targets("hinge", y, 2)
    assert s.dtype == jnp.float32
    np.testing.assert_array_equal(s, [-1.0, 1.0, 1.0, -1.0])
    np.testing.assert_array_equal(encode_targets("logistic", y, 2), [-1.0, 1.0, 1.0, -1.0])
    i = encode_targets("softmax", y.astype(np.int64), 2)
    assert i.dtype == jnp.int32
    np.testing.assert_array_equal(i, y)
    r = encode_targets(LOSSES["squared"], np.array([0.5, -2.0]), 0)
    assert r.dtype == jnp.float32
    np.testing.assert_array_equal(r, [0.5, -2.0])


def test_encode_targets_binary_loss_with_three_classes():
    with pytest.raises(ConfigError, match=r"loss 'hinge' needs 2 classes, the data has 3; "
                                          r"use 'multiclass_svm' or 'softmax'"):
        encode_targets("hinge", np.array([0, 1, 2]), 3)
    with pytest.raises(ConfigError, match="loss 'logistic' needs 2 classes"):
        encode_targets("log", np.array([0, 1, 2]), 3)


def test_encode_targets_classification_loss_on_regression_data():
    with pytest.raises(ConfigError, match="needs class labels"):
        encode_targets("softmax", np.array([0.3, 1.2]), 0)


# ------------------------------------------------------------------ L2 and objective


def test_l2_penalty_excludes_biases():
    p = {"W": jnp.array([[1.0, 2.0], [3.0, 0.0]]), "b": jnp.array([100.0, 100.0])}
    np.testing.assert_allclose(l2_penalty(p), 0.5 * 14.0)
    # The mlp layout (a list of dicts), with non-zero biases that must not count.
    rng = np.random.default_rng(0)
    q = {"layers": [{"W": jnp.asarray(rng.normal(size=(a, c)), jnp.float32),
                     "b": jnp.full((c,), 5.0)} for a, c in [(2, 3), (3, 2)]]}
    want = 0.5 * sum(float(np.sum(np.asarray(lay["W"]) ** 2)) for lay in q["layers"])
    g = jax.jit(jax.grad(l2_penalty))(q)
    np.testing.assert_allclose(l2_penalty(q), want, rtol=1e-6)
    for lay, glay in zip(q["layers"], g["layers"]):
        np.testing.assert_allclose(glay["W"], lay["W"])
        np.testing.assert_array_equal(glay["b"], 0.0)
    assert float(l2_penalty({"b": jnp.ones(3)})) == 0.0


@pytest.mark.parametrize("name", ["softmax", "hinge", "squared", "multiclass_svm"])
def test_objective_ignores_zero_weight_rows(name):
    X, W, b, t, F = make_problem(name, B=9)
    model = linear()
    params = {"W": jnp.asarray(W.T, jnp.float32), "b": jnp.asarray(b, jnp.float32)}
    # Padding row: zeros features, a valid target, weight 0.
    Xp = np.vstack([X, np.zeros((1, X.shape[1]))])
    tp = np.concatenate([t, t[:1]])
    wp = np.concatenate([np.ones(len(t)), [0.0]])

    def J(p, X_, t_, w_):
        return objective(model.apply, name, p, jnp.asarray(X_, jnp.float32),
                         jnp.asarray(t_), jnp.asarray(w_, jnp.float32), 0.1)

    # One compiled value-and-gradient per shape: far cheaper than op-by-op dispatch.
    vg = jax.jit(jax.value_and_grad(J))
    full, g_full = vg(params, X, t, np.ones(len(t)))
    padded, g_pad = vg(params, Xp, tp, wp)
    np.testing.assert_allclose(padded, full, rtol=1e-6)
    for a, c in zip(jax.tree_util.tree_leaves(g_full), jax.tree_util.tree_leaves(g_pad)):
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-7)


def test_objective_formula_and_empty_batch():
    model = linear()
    p = {"W": jnp.array([[2.0]]), "b": jnp.array([0.5])}
    X = jnp.array([[1.0], [0.0], [3.0]])
    y = jnp.array([1.0, 0.0, 0.0])
    w = jnp.array([1.0, 1.0, 0.0])
    # residuals 1.5, 0.5 -> 0.5*(2.25 + 0.25)/2 = 0.625; plus 0.2 * 0.5 * 4 = 0.4
    np.testing.assert_allclose(objective(model.apply, "squared", p, X, y, w, 0.2), 1.025,
                               rtol=1e-6)
    zero = objective(model.apply, "squared", p, X, y, jnp.zeros(3), 0.0)
    assert float(zero) == 0.0
    # l2 may be a traced value (e.g. a swept hyper-parameter under jit).
    jitted = jax.jit(lambda l2: objective(model.apply, "squared", p, X, y, w, l2))
    np.testing.assert_allclose(jitted(0.2), 1.025, rtol=1e-6)


# ------------------------------------------------------------------ metrics


def test_accuracy_accumulates_over_blocks():
    pred = jnp.array([0, 1, 2, 1, 0, 0])
    y = jnp.array([0, 1, 1, 1, 2, 0])
    w = jnp.array([1, 1, 1, 1, 1, 0], dtype=jnp.float32)
    whole = accuracy(pred, y, w)
    assert (float(whole[0]), float(whole[1])) == (3.0, 5.0)
    blocks = sum_stats(accuracy(pred[:4], y[:4], w[:4]), accuracy(pred[4:], y[4:], w[4:]))
    assert blocks == (3.0, 5.0)
    assert accuracy_value(blocks) == pytest.approx(0.6)
    assert np.isnan(accuracy_value((0.0, 0.0)))


def test_mse_and_r2_match_numpy_and_accumulate():
    rng = np.random.default_rng(0)
    y = rng.normal(loc=50.0, size=30)
    pred = y + rng.normal(scale=0.3, size=30)
    w = np.ones(30)
    w[-3:] = 0.0  # padding
    yv, pv = y[:27], pred[:27]
    want_mse = np.mean((pv - yv) ** 2)
    want_r2 = 1 - np.sum((pv - yv) ** 2) / np.sum((yv - yv.mean()) ** 2)
    with x64():
        P, Y, Wt = jnp.asarray(pred), jnp.asarray(y), jnp.asarray(w)
        assert mse_value(mse(P, Y, Wt)) == pytest.approx(want_mse, rel=1e-10)
        parts = [r2(P[i:i + 7], Y[i:i + 7], Wt[i:i + 7], center=50.0) for i in range(0, 30, 7)]
        assert r2_value(sum_stats(*parts)) == pytest.approx(want_r2, rel=1e-10)
        # SS_tot does not depend on the shift.
        assert r2_value(r2(P, Y, Wt)) == pytest.approx(want_r2, rel=1e-8)
    assert r2_value((0.0, 3.0, 3.0, 3.0)) == 1.0   # constant targets, perfect fit
    assert r2_value((1.0, 3.0, 3.0, 3.0)) == 0.0
    assert np.isnan(r2_value((0.0, 0.0, 0.0, 0.0)))
