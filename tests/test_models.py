"""Models: shapes, initialisation scales, registry errors, and the MLP forward pass against a
plain-NumPy forward pass."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgdlab._types import Model
from helpers import x64
from sgdlab.errors import ConfigError
from sgdlab.models import (ACTIVATIONS, MODELS, example_shape, get_model, linear, mlp,
                           n_params)


# ---------------------------------------------------------------- NumPy reference


def np_act(name, z):
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "tanh":
        return np.tanh(z)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "gelu":
        erf = np.vectorize(math.erf)
        return 0.5 * z * (1.0 + erf(z / math.sqrt(2.0)))
    if name == "leaky_relu":
        return np.where(z >= 0, z, 0.01 * z)
    if name == "identity":
        return z
    raise AssertionError(name)


def np_mlp_forward(layers, X, act):
    h = X
    for layer in layers[:-1]:
        h = np_act(act, h @ layer["W"].T + layer["b"])
    return h @ layers[-1]["W"].T + layers[-1]["b"]


# ---------------------------------------------------------------- linear


def test_linear_shapes_and_init():
    model = linear()
    assert isinstance(model, Model) and model.name == "linear"
    p = model.init(jax.random.PRNGKey(0), 7, 3)
    assert p["W"].shape == (3, 7) and p["b"].shape == (3,)
    assert p["W"].dtype == jnp.float32 and p["b"].dtype == jnp.float32
    np.testing.assert_array_equal(p["b"], 0.0)
    assert 0 < float(jnp.max(jnp.abs(p["W"]))) < 0.1  # 0.01 * N(0, 1)
    X = jnp.ones((5, 7))
    out = model.apply(p, X)
    assert out.shape == (5, 3)
    np.testing.assert_allclose(out, np.ones((5, 7)) @ np.asarray(p["W"]).T + np.asarray(p["b"]),
                               rtol=1e-6)


def test_linear_init_scale_and_seeding():
    model = linear()
    p = model.init(jax.random.PRNGKey(1), 400, 50)
    assert abs(float(jnp.std(p["W"])) - 0.01) < 0.0005
    same = model.init(jax.random.PRNGKey(1), 400, 50)
    other = model.init(jax.random.PRNGKey(2), 400, 50)
    np.testing.assert_array_equal(p["W"], same["W"])
    assert not np.allclose(p["W"], other["W"])


def shapes(model, n_in, n_out, **kw):
    """Parameter shapes and dtypes without running (or compiling) the initialiser."""
    return jax.eval_shape(lambda key: model.init(key, n_in, n_out, **kw), jax.random.PRNGKey(0))


def test_init_dtype():
    p = shapes(linear(), 3, 2, dtype=jnp.float16)
    assert p["W"].dtype == jnp.float16 and p["b"].dtype == jnp.float16
    q = shapes(mlp((4,)), 3, 2, dtype=jnp.float16)
    assert all(leaf.dtype == jnp.float16 for leaf in jax.tree_util.tree_leaves(q))


@pytest.mark.parametrize("bad", [(0, 3), (3, 0), (2.5, 3), ((4, 0), 3), ((), 3), ("4", 3),
                                 ((2.0, 2), 3), (True, 3)])
def test_init_rejects_bad_sizes(bad):
    with pytest.raises(ConfigError, match="model sizes"):
        linear().init(jax.random.PRNGKey(0), *bad)
    with pytest.raises(ConfigError, match="model sizes"):
        mlp((3,)).init(jax.random.PRNGKey(0), *bad)


def test_example_shape():
    assert example_shape(5) == (5,) and example_shape(np.int64(5)) == (5,)
    assert example_shape((28, 28, 1)) == (28, 28, 1) and example_shape([3, 4]) == (3, 4)
    assert example_shape(np.array([2, 3])) == (2, 3)


@pytest.mark.parametrize("factory", [linear, lambda: mlp((4,), "tanh")])
def test_linear_and_mlp_flatten_nd_examples(factory):
    """A tuple n_in means prod(n_in) inputs; apply flattens (B, *shape) rows in C order, so
    the scores equal those of the flat (B, prod(shape)) batch with the same parameters."""
    model = factory()
    p_nd = model.init(jax.random.PRNGKey(3), (4, 5, 2), 3)
    p_flat = model.init(jax.random.PRNGKey(3), 40, 3)
    jax.tree_util.tree_map(np.testing.assert_array_equal, p_nd, p_flat)
    X = jax.random.normal(jax.random.PRNGKey(4), (6, 4, 5, 2))
    out = model.apply(p_nd, X)
    assert out.shape == (6, 3)
    np.testing.assert_allclose(out, model.apply(p_flat, X.reshape(6, 40)), rtol=1e-6)
    # a 2-D batch takes the same program as before N-D examples existed (no reshape traced)
    jaxpr = jax.make_jaxpr(model.apply)(p_flat, X.reshape(6, 40))
    assert "reshape" not in str(jaxpr)


# ---------------------------------------------------------------- mlp


def test_mlp_structure():
    model = mlp(hidden=(6, 5), activation="tanh")
    assert model.name == "mlp"
    p = model.init(jax.random.PRNGKey(0), 4, 3)
    layers = p["layers"]
    assert isinstance(layers, list) and len(layers) == 3
    assert [lay["W"].shape for lay in layers] == [(6, 4), (5, 6), (3, 5)]
    assert [lay["b"].shape for lay in layers] == [(6,), (5,), (3,)]
    for lay in layers:
        np.testing.assert_array_equal(lay["b"], 0.0)
    assert model.apply(p, jnp.zeros((2, 4))).shape == (2, 3)
    assert n_params(p) == 4 * 6 + 6 + 6 * 5 + 5 + 5 * 3 + 3


def test_mlp_int_hidden_and_empty_hidden():
    assert len(shapes(mlp(hidden=8), 3, 2)["layers"]) == 2
    p = shapes(mlp(hidden=()), 3, 2)
    assert [lay["W"].shape for lay in p["layers"]] == [(2, 3)]


def test_mlp_key_split_per_layer():
    # Layers of equal shape and scale would be identical if one key were reused.
    p = mlp(hidden=(8, 8)).init(jax.random.PRNGKey(3), 8, 8)
    w = [np.asarray(lay["W"]) for lay in p["layers"]]
    assert not np.allclose(w[0], w[1]) and not np.allclose(w[1], w[2])


@pytest.mark.parametrize("act,he", [("relu", True), ("leaky_relu", True), ("gelu", True),
                                    ("tanh", False), ("sigmoid", False)])
def test_mlp_init_scale(act, he):
    fan_in, fan_out = 800, 400
    p = mlp(hidden=(fan_out,), activation=act).init(jax.random.PRNGKey(0), fan_in, 3)
    W = np.asarray(p["layers"][0]["W"])
    expected = math.sqrt(2 / fan_in) if he else math.sqrt(2 / (fan_in + fan_out))
    assert abs(W.std() - expected) / expected < 0.02
    assert abs(W.mean()) < 0.1 * expected


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_mlp_forward_matches_numpy(act):
    with x64():
        model = mlp(hidden=(7, 5), activation=act)
        rng = np.random.default_rng(4)
        # Parameters drawn in NumPy (non-zero biases so their broadcast is exercised too).
        layers = [{"W": rng.normal(size=(b, a)), "b": rng.normal(size=b) * 0.5}
                  for a, b in [(3, 7), (7, 5), (5, 4)]]
        X = rng.normal(size=(11, 3))
        p = {"layers": [{k: jnp.asarray(v) for k, v in lay.items()} for lay in layers]}
        got = np.asarray(jax.jit(model.apply)(p, jnp.asarray(X)))
        want = np_mlp_forward(layers, X, act)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_mlp_gradient_flows_to_every_layer():
    model = mlp(hidden=(6, 5), activation="tanh")
    p = model.init(jax.random.PRNGKey(0), 4, 3)  # same shapes as test_mlp_structure: cached
    X = jnp.asarray(np.random.default_rng(1).normal(size=(2, 4)), jnp.float32)
    g = jax.jit(jax.grad(lambda q: jnp.sum(model.apply(q, X) ** 2)))(p)
    for leaf in jax.tree_util.tree_leaves(g):
        assert float(jnp.max(jnp.abs(leaf))) > 0


@pytest.mark.parametrize("hidden", [(0,), (-3,), (4, 0), ("8",), (2.5,), 1.5, "12,,8", (True,)])
def test_mlp_rejects_bad_hidden(hidden):
    with pytest.raises(ConfigError, match="hidden layer sizes must be"):
        mlp(hidden=hidden)


def test_hidden_widths_are_read_alike_as_text_a_number_or_a_sequence():
    # one reader of layer widths for the models, the settings and the command line
    assert [lay["W"].shape for lay in shapes(mlp(hidden="3, 2"), 2, 2)["layers"]] == \
        [(3, 2), (2, 3), (2, 2)]
    assert [lay["W"].shape for lay in shapes(mlp(hidden=4), 2, 2)["layers"]] == [(4, 2), (2, 4)]


def test_mlp_rejects_bad_activation():
    with pytest.raises(ConfigError, match=r"unknown activation 'relu6'; valid activations: "
                                          r"gelu, identity, leaky_relu, relu, sigmoid, tanh"):
        mlp(activation="relu6")


def test_hidden_accepts_numpy_ints():
    p = shapes(mlp(hidden=np.array([3, 2])), 2, 2)
    assert [lay["W"].shape for lay in p["layers"]] == [(3, 2), (2, 3), (2, 2)]


# ---------------------------------------------------------------- registry


def test_registry():
    assert set(MODELS) >= {"linear", "mlp", "cnn"}  # an architecture may be added
    assert get_model("linear").name == "linear"
    m = get_model("mlp", hidden=(3,), activation="sigmoid")
    assert [lay["W"].shape for lay in shapes(m, 2, 2)["layers"]] == \
        [(3, 2), (2, 3)]


def test_get_model_unknown_name():
    with pytest.raises(ConfigError, match=r"unknown model 'mpl'; valid models: (.*, )?cnn, "
                                          r"(.*, )?linear, (.*, )?mlp\b.* \(or an import path "
                                          r"'package.module:factory'"):
        get_model("mpl")


def test_get_model_bad_option():
    with pytest.raises(ConfigError, match="model 'linear' does not take option"):
        get_model("linear", hidden=(3,))
    with pytest.raises(ConfigError, match="does not take option"):
        get_model("mlp", width=3)


def test_get_model_user_supplied():
    custom = Model("mine", lambda key, n_in, n_out: {"w": jnp.ones((n_in, n_out))},
                   lambda p, X: X @ p["w"])
    assert get_model(custom) is custom

    def init(key, n_in, n_out):
        return {"w": jnp.zeros((n_in, n_out))}

    def apply(p, X):
        return X @ p["w"]

    m = get_model((init, apply))
    assert m == Model("custom", init, apply)


def test_n_params():
    assert n_params({"W": jnp.zeros((3, 4)), "b": jnp.zeros(4)}) == 16
    assert n_params({"layers": [{"W": jnp.zeros((2, 2)), "b": jnp.zeros(2)}]}) == 6
    assert n_params({}) == 0
