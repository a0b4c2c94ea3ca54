"""Closed-form gradients of the linear model: equal to autodiff in float64, usable for training."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgdlab import TrainConfig
from sgdlab.data import Dataset
from sgdlab.engine import train
from sgdlab.errors import ConfigError
from sgdlab.grad import value_and_grad_for
from sgdlab.grad.closed_form import CLOSED_FORM_LOSSES
from sgdlab.losses import LOSSES, encode_targets
from sgdlab.models import linear, mlp


def _batch(loss, seed=0, n=24, d=5):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    n_classes = 2 if loss.target_kind == "sign" else 4
    y = rng.integers(0, n_classes, n)
    T = rng.normal(size=n) if loss.target_kind == "real" else \
        np.asarray(encode_targets(loss, y, n_classes))
    k = loss.n_outputs(n_classes)
    params = {"W": rng.normal(size=(k, d)), "b": rng.normal(size=k)}  # output-major
    w = np.ones(n)
    w[-5:] = 0.0   # a padded last batch: masked rows must not count
    return params, X, T, w


@pytest.mark.parametrize("l2", [0.0, 0.3])
@pytest.mark.parametrize("name", sorted(CLOSED_FORM_LOSSES))
def test_closed_form_equals_autodiff_in_float64(name, l2):
    loss = LOSSES[name]
    with jax.enable_x64(True):
        params, X, T, w = (jax.tree_util.tree_map(jnp.asarray, a) for a in _batch(loss))
        T = T.astype(jnp.int32) if loss.target_kind == "index" else T
        v_cf, g_cf = jax.jit(value_and_grad_for("closed-form", linear(), loss, l2))(
            params, X, T, w)
        v_ad, g_ad = jax.jit(value_and_grad_for("autodiff", linear(), loss, l2))(
            params, X, T, w)
        assert g_cf["W"].dtype == jnp.float64
    assert abs(float(v_cf) - float(v_ad)) <= 1e-10 * max(1.0, abs(float(v_ad)))
    for key in ("W", "b"):
        np.testing.assert_allclose(np.asarray(g_cf[key]), np.asarray(g_ad[key]),
                                   rtol=1e-10, atol=1e-12)


def test_training_with_closed_form_matches_autodiff():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 4)).astype(np.float32)
    y = rng.integers(0, 3, 60).astype(np.int32)
    ds = Dataset(X, y, classes=(0, 1, 2))
    cfg = TrainConfig(model="softmax", batch_size=16, epochs=3, lr=0.3, l2=0.01)
    a = train(ds, None, cfg)
    b = train(ds, None, cfg.replace(gradient="closed-form"))
    assert b.steps == a.steps == 12
    for u, v in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), atol=1e-5)


def test_closed_form_trains_on_images_as_the_linear_model_reads_them():
    """Examples of more axes are flattened, as the linear model flattens them (4-D data with
    --gradient closed-form was a dot_general TypeError)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(48, 4, 3, 2)).astype(np.float32)
    y = rng.integers(0, 3, 48).astype(np.int32)
    cfg = TrainConfig(model="softmax", batch_size=16, epochs=2, lr=0.3, gradient="closed-form",
                      standardize=False)  # images: per channel, rows: per feature
    images = train(Dataset(X, y, classes=(0, 1, 2)), None, cfg)
    rows = train(Dataset(X.reshape(48, -1), y, classes=(0, 1, 2)), None, cfg)
    assert images.steps == rows.steps == 6
    for u, v in zip(jax.tree_util.tree_leaves(images.params),
                    jax.tree_util.tree_leaves(rows.params)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), atol=1e-6)
    auto = train(Dataset(X, y, classes=(0, 1, 2)), None, cfg.replace(gradient="autodiff"))
    for u, v in zip(jax.tree_util.tree_leaves(images.params),
                    jax.tree_util.tree_leaves(auto.params)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), atol=1e-5)


def test_closed_form_refuses_other_models_and_losses():
    with pytest.raises(ConfigError, match="closed-form gradients exist for the built-in linear"):
        value_and_grad_for("closed-form", mlp((4,)), LOSSES["softmax"], 0.0)
    with pytest.raises(ConfigError, match="Use gradient='autodiff'"):
        value_and_grad_for("closed-form", linear(), lambda out, y: out[:, 0], 0.0)
    with pytest.raises(ConfigError, match="unknown gradient 'symbolic'"):
        TrainConfig(gradient="symbolic")
