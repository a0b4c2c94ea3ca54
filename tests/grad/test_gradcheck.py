"""The gradient check: built-in models and losses pass, a wrong backward pass fails, kinks flag."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgdlab._types import Model
from sgdlab.errors import ConfigError
from sgdlab.grad import value_and_grad_for
from sgdlab.grad.check import check_gradient, check_model_gradient
from sgdlab.losses import LOSSES, encode_targets
from sgdlab.models import ACTIVATIONS, linear, mlp

N, D, C = 10, 3, 3
# Margin-type losses have kinks at these values of y*f (binary) or of S_j - S_y + 1 (SVM).
_KINK_AT = {"hinge": 1.0, "perceptron": 0.0}


def _problem(loss_name, model, seed):
    """Small data, targets as the loss wants, and parameters of a sizeable scale."""
    loss = LOSSES[loss_name]
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D))
    n_classes = 2 if loss.target_kind == "sign" else C
    y = rng.integers(0, n_classes, N)
    T = rng.normal(size=N) if loss.target_kind == "real" else \
        np.asarray(encode_targets(loss, y, n_classes))
    params = model.init(jax.random.PRNGKey(seed), D, loss.n_outputs(n_classes))
    # Scale up the small initial weights so margins spread out and gradients are not tiny.
    params = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64) * 1.5 + 0.1, params)
    return loss, params, X, T


def _far_from_kinks(loss, model, params, X, T, gap=1e-3):
    """No hinge margin, SVM margin or ReLU pre-activation lies within ``gap`` of its kink."""
    with jax.enable_x64(True):
        S = np.asarray(model.apply(params, jnp.asarray(X)))
        if model.name == "mlp":
            h = jnp.asarray(X)
            for layer in params["layers"][:-1]:
                z = np.asarray(h @ layer["W"].T + layer["b"])
                if np.min(np.abs(z)) < gap:
                    return False
                h = jnp.tanh(z)  # only the sign pattern matters for the next check's layout
    if loss.name in _KINK_AT:
        return np.min(np.abs(T * S[:, 0] - _KINK_AT[loss.name])) > gap
    if loss.name == "multiclass_svm":
        m = S - S[np.arange(N), T][:, None] + 1.0
        m[np.arange(N), T] = 10.0
        return np.min(np.abs(m)) > gap
    return True


def _smooth_point(loss_name, model):
    for seed in range(50):
        loss, params, X, T = _problem(loss_name, model, seed)
        if _far_from_kinks(loss, model, params, X, T):
            return loss, params, X, T
    raise AssertionError("no kink-free point found")


@pytest.mark.parametrize("loss_name", sorted(LOSSES))
@pytest.mark.parametrize("model", [linear(), mlp((4,), "relu")], ids=["linear", "mlp"])
def test_every_builtin_loss_and_model_passes(loss_name, model):
    loss, params, X, T = _smooth_point(loss_name, model)
    report = check_model_gradient(model, loss, params, X, T, l2=0.1)
    assert report.passed
    assert report.max_rel_error < 1e-6
    # Here even the plain |a - n| / max(|a|, |n|), round-off included, is below 1e-6.
    assert all(t.raw_rel_error < 1e-6 for t in report.tensors)
    assert all(t.kinks == 0 and t.verdict in ("good", "ok") for t in report.tensors)
    assert [t.name for t in report.tensors] == (
        ["W", "b"] if model.name == "linear" else
        ["layers/0/W", "layers/0/b", "layers/1/W", "layers/1/b"])


@pytest.mark.parametrize("activation", sorted(set(ACTIVATIONS) - {"relu"}))
def test_every_mlp_activation_passes(activation):
    model = mlp((4,), activation)
    loss, params, X, T = _smooth_point("softmax", model)
    report = check_model_gradient(model, loss, params, X, T)
    assert report.passed and report.max_rel_error < 1e-6


def _scaled_backward_tanh(factor):
    @jax.custom_vjp
    def act(x):
        return jnp.tanh(x)

    def fwd(x):
        return jnp.tanh(x), x

    def bwd(x, g):
        return (factor * g * (1.0 - jnp.tanh(x) ** 2),)

    act.defvjp(fwd, bwd)
    return act


@pytest.mark.parametrize("factor, verdict", [(2.0, "wrong"), (1.001, "fail")])
def test_wrong_custom_backward_fails(factor, verdict):
    """A user model whose custom_vjp backward pass is off by a factor is reported as failing."""
    act = _scaled_backward_tanh(factor)
    base = mlp((4,), "tanh")

    def apply(params, X):
        h = act(X @ params["layers"][0]["W"].T + params["layers"][0]["b"])
        return h @ params["layers"][1]["W"].T + params["layers"][1]["b"]

    model = Model("user", base.init, apply)
    loss, params, X, T = _problem("softmax", base, 0)
    report = check_model_gradient(model, loss, params, X, T)
    assert not report.passed
    first = {t.name: t for t in report.tensors}["layers/0/W"]
    assert first.verdict == verdict and not first.passed
    assert first.max_rel_error == pytest.approx(abs(factor - 1) / factor, rel=1e-3)
    # The layer after the activation is not affected by its backward pass.
    assert {t.name: t for t in report.tensors}["layers/1/W"].passed


def test_worst_index_and_values_point_at_the_error():
    def grad(p):
        g = {"w": 2 * p["w"]}
        return {"w": g["w"].at[1, 2].multiply(1.5)}

    params = {"w": jnp.arange(1.0, 7.0).reshape(2, 3)}
    report = check_gradient(lambda p: jnp.sum(p["w"] ** 2), params, grad=grad)
    (t,) = report.tensors
    assert t.worst_index == (1, 2) and t.shape == (2, 3) and t.checked == 6
    assert t.analytic == pytest.approx(18.0) and t.numerical == pytest.approx(12.0)
    assert t.verdict == "wrong"


def test_kink_within_h_is_flagged_and_not_held_against_the_gradient():
    params = {"w": jnp.array([0.0, 1.0, -2.0, 3e-6])}   # |w| has kinks at 0 and 3e-6 < h
    report = check_gradient(lambda p: jnp.sum(jnp.abs(p["w"])), params)
    (t,) = report.tensors
    assert t.kinks == 2 and t.kink
    assert t.max_rel_error > 0.1 and t.verdict == "near-kink" and report.passed


def test_hinge_on_its_kink_is_flagged():
    """W = 0, b = 1: every positive example sits exactly on the hinge's kink y f = 1."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(8, D))
    T = np.array([1.0, -1.0] * 4)
    params = {"W": np.zeros((1, D)), "b": np.ones(1)}
    report = check_model_gradient(linear(), "hinge", params, X, T)
    assert all(t.kink for t in report.tensors)


def test_random_coordinate_sample_covers_every_tensor():
    model = mlp((6,), "tanh")
    loss, params, X, T = _problem("softmax", model, 1)
    report = check_model_gradient(model, loss, params, X, T, n_coords=2, seed=3)
    assert [t.checked for t in report.tensors] == [2, 2, 2, 2] and report.passed


def test_closed_form_gradient_passes_the_check():
    loss, params, X, T = _smooth_point("softmax", linear())
    vg = value_and_grad_for("closed-form", linear(), loss, 0.1)
    assert check_model_gradient(linear(), loss, params, X, T, l2=0.1, value_and_grad=vg).passed


def test_bad_options_raise_config_errors():
    params = {"w": jnp.ones(3)}
    with pytest.raises(ConfigError, match=r"step h must be in \(0, 1\)"):
        check_gradient(lambda p: jnp.sum(p["w"]), params, h=0.0)
    with pytest.raises(ConfigError, match="coordinates to check must be >= 1"):
        check_gradient(lambda p: jnp.sum(p["w"]), params, n_coords=0)
    with pytest.raises(ConfigError, match="shaped like params"):
        check_gradient(lambda p: jnp.sum(p["w"]), params, grad=lambda p: {"w": jnp.ones(2)})
