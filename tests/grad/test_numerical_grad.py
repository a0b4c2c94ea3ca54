"""Finite-difference gradients: accuracy of each scheme, sampling, and numerical-gradient descent."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgdlab import TrainConfig
from sgdlab.data import Dataset
from sgdlab.engine import train
from sgdlab.errors import ConfigError
from sgdlab.grad.numerical import default_step, numerical_grad, sample_coords


def _f(p):
    return jnp.sum(jnp.sin(p["W"])) + jnp.sum(p["b"] ** 3)


def _params():
    return {"W": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "b": jnp.array([0.5, -1.5])}


def test_centred_is_more_accurate_than_forward_in_float64():
    with jax.enable_x64(True):
        p = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), _params())
        exact = jax.grad(_f)(p)
        errs = {}
        for scheme in ("forward", "centred"):
            g = jax.jit(lambda q, s=scheme: numerical_grad(_f, q, h=1e-4, scheme=s))(p)
            errs[scheme] = max(float(jnp.max(jnp.abs(g[k] - exact[k]))) for k in exact)
    assert errs["centred"] < 1e-7 < errs["forward"] < 1e-3   # O(h^2) against O(h)


def test_sampled_coordinates_only_are_differentiated():
    p = _params()
    idx = sample_coords(jax.random.PRNGKey(0), 8, 3)
    assert idx.shape == (3,) and len(set(np.asarray(idx).tolist())) == 3
    g = jax.jit(lambda q, c: numerical_grad(_f, q, coords=c))(p, idx)
    flat_g = np.concatenate([np.ravel(g["W"]), np.ravel(g["b"])])
    exact = jax.grad(_f)(p)
    flat_e = np.concatenate([np.ravel(exact["W"]), np.ravel(exact["b"])])
    others = np.setdiff1d(np.arange(8), np.asarray(idx))
    assert np.all(flat_g[others] == 0)
    np.testing.assert_allclose(flat_g[np.asarray(idx)], flat_e[np.asarray(idx)], atol=2e-4)


def test_default_step_balances_truncation_and_round_off():
    assert default_step(np.float32) == pytest.approx(4.9e-3, rel=0.01)
    assert default_step(np.float64) == pytest.approx(6.06e-6, rel=0.01)


def test_numerical_gradient_descent_reaches_the_analytic_parameters():
    """Same problem, same seed: numerical-gradient and autodiff descent end within 1e-4."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 4)).astype(np.float32)
    y = rng.integers(0, 3, 40).astype(np.int32)
    ds = Dataset(X, y, classes=(0, 1, 2))
    cfg = TrainConfig(model="softmax", batch_size=8, max_steps=30, epochs=None, lr=0.5,
                      l2=0.01, standardize=False)
    analytic = train(ds, None, cfg)
    numerical = train(ds, None, cfg.replace(gradient="numerical"))
    assert numerical.steps == analytic.steps == 30
    moved = max(float(jnp.max(jnp.abs(a))) for a in jax.tree_util.tree_leaves(analytic.params))
    assert moved > 0.1   # the parameters travelled far from their 0.01-scale start
    for a, n in zip(jax.tree_util.tree_leaves(analytic.params),
                    jax.tree_util.tree_leaves(numerical.params)):
        np.testing.assert_allclose(np.asarray(n), np.asarray(a), atol=1e-4, rtol=0)


def test_bad_scheme_and_step_raise():
    with pytest.raises(ConfigError, match="unknown finite-difference scheme 'backward'"):
        numerical_grad(_f, _params(), scheme="backward")
    with pytest.raises(ConfigError, match=r"step h must be a number in \(0, 1\)"):
        numerical_grad(_f, _params(), h=2.0)
    with pytest.raises(ConfigError, match="sampled coordinates must be >= 1"):
        sample_coords(jax.random.PRNGKey(0), 8, 0)
