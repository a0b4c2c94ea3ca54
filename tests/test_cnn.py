"""The built-in cnn: shapes on any image size, the forward pass against a NumPy loop, its
gradient against float64 differences, initialisation, options and the rebuild from its spec."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import x64

from sgdlab.engine.predictor import build_model, model_spec
from sgdlab.errors import ConfigError
from sgdlab.grad import check_model_gradient
from sgdlab.losses import l2_penalty
from sgdlab.models import MODELS, cnn, get_model, n_params


def np_conv_same(h, W, b):
    """Cross-correlation, stride 1, zero padding (k-1)//2 before and the rest after:
    ``h (B, H, W, I)``, ``W (O, k, k, I)`` -> ``(B, H, W, O)``."""
    k = W.shape[1]
    lo = (k - 1) // 2
    padded = np.pad(h, ((0, 0), (lo, k - 1 - lo), (lo, k - 1 - lo), (0, 0)))
    B, H, Wd, _ = h.shape
    out = np.zeros((B, H, Wd, W.shape[0]))
    for i in range(H):
        for j in range(Wd):
            patch = padded[:, i:i + k, j:j + k, :]                  # (B, k, k, I)
            out[:, i, j, :] = np.einsum("bxyi,oxyi->bo", patch, W)
    return out + b


def np_pool(h):
    """2x2 max, stride 2, an odd side padded at its end."""
    B, H, W, C = h.shape
    padded = np.pad(h, ((0, 0), (0, H % 2), (0, W % 2), (0, 0)), constant_values=-np.inf)
    return padded.reshape(B, (H + 1) // 2, 2, (W + 1) // 2, 2, C).max(axis=(2, 4))


def np_cnn(params, X, act):
    h = np.asarray(X, np.float64)
    for layer in params["conv"]:
        h = np_pool(act(np_conv_same(h, np.asarray(layer["W"]), np.asarray(layer["b"]))))
    h = h.reshape(h.shape[0], -1)
    layers = params["layers"]
    for layer in layers[:-1]:
        h = act(h @ np.asarray(layer["W"]).T + np.asarray(layer["b"]))
    return h @ np.asarray(layers[-1]["W"]).T + np.asarray(layers[-1]["b"])


def _with_random_biases(params, key):
    """Biases start at 0; a forward-pass test needs them to count."""
    leaves, tree = jax.tree_util.tree_flatten_with_path(params)
    keys = jax.random.split(key, len(leaves))
    return jax.tree_util.tree_unflatten(tree, [
        0.3 * jax.random.normal(k, leaf.shape, leaf.dtype) if path[-1].key == "b" else leaf
        for k, (path, leaf) in zip(keys, leaves)])


@pytest.mark.parametrize("shape, flat", [((8, 8, 1), 2 * 2 * 16), ((28, 28, 1), 7 * 7 * 16),
                                         ((5, 7, 3), 2 * 2 * 16), ((1, 1, 1), 16)])
def test_shapes_on_any_image_size(shape, flat):
    model = cnn()
    assert model.name == "cnn" and MODELS["cnn"] is cnn
    p = model.init(jax.random.PRNGKey(0), shape, 10)
    C = shape[2]
    assert [(c["W"].shape, c["b"].shape) for c in p["conv"]] == \
        [((6, 5, 5, C), (6,)), ((16, 5, 5, 6), (16,))]
    assert [(lay["W"].shape, lay["b"].shape) for lay in p["layers"]] == \
        [((128, flat), (128,)), ((10, 128), (10,))]
    out = jax.jit(model.apply)(p, jnp.ones((3, *shape)))
    assert out.shape == (3, 10) and out.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(out)))


@pytest.mark.parametrize("shape, act", [((6, 6, 2), "relu"), ((5, 7, 3), "tanh"),
                                        ((4, 3, 1), "identity")])
def test_forward_matches_numpy_loops(shape, act):
    """Even sides and odd ones (padded with -inf), kernel layout (O, k, k, I)
    and the flatten order (h, w, c) all agree with a plain NumPy forward pass."""
    np_act = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
              "identity": lambda z: z}[act]
    model = cnn(channels=(3, 4), kernel=3, hidden=(5,), activation=act)
    with x64():
        p = model.init(jax.random.PRNGKey(1), shape, 2, dtype=jnp.float64)
        p = _with_random_biases(p, jax.random.PRNGKey(2))
        X = jax.random.normal(jax.random.PRNGKey(3), (4, *shape), jnp.float64)
        np.testing.assert_allclose(model.apply(p, X), np_cnn(p, X, np_act), rtol=1e-10,
                                   atol=1e-12)


def test_gradient_matches_float64_differences():
    model = cnn(channels=(2, 3), kernel=3, hidden=(4,), activation="tanh")
    with x64():
        p = model.init(jax.random.PRNGKey(0), (6, 5, 2), 3, dtype=jnp.float64)
        p = _with_random_biases(p, jax.random.PRNGKey(1))
        X = jax.random.normal(jax.random.PRNGKey(2), (8, 6, 5, 2), jnp.float64)
    y = np.arange(8) % 3
    report = check_model_gradient(model, "softmax", p, X, y, l2=1e-2)
    assert report.passed, report.rows()
    assert len(report.tensors) == 8  # W and b of two convolutions and two dense layers


def test_relu_gradient_passes_the_kink_aware_check():
    model = cnn(channels=(2,), kernel=3, hidden=(4,))
    with x64():
        p = model.init(jax.random.PRNGKey(5), (4, 4, 1), 2, dtype=jnp.float64)
        X = jax.random.normal(jax.random.PRNGKey(6), (6, 4, 4, 1), jnp.float64)
    report = check_model_gradient(model, "softmax", p, X, np.arange(6) % 2)
    assert report.passed, report.rows()


@pytest.mark.parametrize("n_in", [784, (28, 28), (4, 28, 28, 1)])
def test_refuses_examples_that_are_not_images(n_in):
    shape = (n_in,) if isinstance(n_in, int) else n_in
    with pytest.raises(ConfigError, match=r"cnn needs image examples \(N, H, W, C\), channels "
                                          rf"last; got examples of shape {re_shape(shape)}"):
        cnn().init(jax.random.PRNGKey(0), n_in, 10)


def test_grey_images_without_a_channel_axis_are_told_to_add_one():
    with pytest.raises(ConfigError, match=r"images without a channel axis: add one, "
                                          r"X\[\.\.\., None\] \(grey images, \(N, 8, 8, 1\)\)"):
        cnn().init(jax.random.PRNGKey(0), (8, 8), 10)


def re_shape(shape):
    return str(tuple(shape)).replace("(", r"\(").replace(")", r"\)")


def test_apply_refuses_a_flat_batch():
    model = cnn(channels=(2,), kernel=3, hidden=())
    p = model.init(jax.random.PRNGKey(0), (4, 4, 1), 2)
    with pytest.raises(ConfigError, match=r"cnn takes a batch of images \(B, H, W, C\)"):
        model.apply(p, jnp.ones((3, 16)))


def test_he_initialisation_per_convolution():
    """std sqrt(2 / fan_in) with fan_in = k * k * I; biases 0."""
    p = cnn(channels=(64, 32), kernel=5).init(jax.random.PRNGKey(0), (8, 8, 3), 4)
    for layer, fan_in in zip(p["conv"], (5 * 5 * 3, 5 * 5 * 64)):
        std = float(jnp.std(layer["W"]))
        assert abs(std / math.sqrt(2.0 / fan_in) - 1) < 0.05, (std, fan_in)
        np.testing.assert_array_equal(layer["b"], 0.0)
    # Glorot for tanh: sqrt(2 / (fan_in + fan_out)), fan_out = k * k * O
    q = cnn(channels=(64,), kernel=5, activation="tanh").init(jax.random.PRNGKey(0), (8, 8, 3), 4)
    std = float(jnp.std(q["conv"][0]["W"]))
    assert abs(std / math.sqrt(2.0 / (75 + 1600)) - 1) < 0.05
    # different keys, different points; float64 on request
    r = cnn().init(jax.random.PRNGKey(1), (8, 8, 3), 4)
    assert not np.allclose(p["conv"][0]["W"][:6], r["conv"][0]["W"])
    with x64():
        d = cnn().init(jax.random.PRNGKey(0), (8, 8, 1), 2, dtype=jnp.float64)
        assert all(leaf.dtype == jnp.float64 for leaf in jax.tree_util.tree_leaves(d))


def test_l2_penalises_kernels_not_biases():
    p = cnn(channels=(2,), kernel=3, hidden=(3,)).init(jax.random.PRNGKey(0), (4, 4, 1), 2)
    p = _with_random_biases(p, jax.random.PRNGKey(1))
    want = 0.5 * sum(float(jnp.sum(lay["W"] ** 2)) for lay in [*p["conv"], *p["layers"]])
    np.testing.assert_allclose(float(l2_penalty(p)), want, rtol=1e-5)


def test_options_are_checked():
    for bad, match in [({"channels": ()}, "at least one convolution"),
                       ({"channels": (0,)}, "cnn channels must be whole numbers >= 1"),
                       ({"kernel": 0}, "cnn kernel size"),
                       ({"kernel": True}, "cnn kernel size"),
                       ({"kernel": 2.5}, "cnn kernel size"),
                       ({"hidden": (-1,)}, "hidden layer sizes"),
                       ({"activation": "relu6"}, "unknown activation")]:
        with pytest.raises(ConfigError, match=match):
            cnn(**bad)
    assert cnn(channels=4).apply.spec["channels"] == [4]
    with pytest.raises(ConfigError, match="does not take option"):
        get_model("cnn", width=3)


def test_spec_rebuilds_the_same_network():
    model = get_model("cnn", channels=(3,), kernel=3, hidden=[7], activation="gelu")
    spec = model_spec(model)
    assert spec == {"builtin": "cnn", "channels": [3], "kernel": 3, "hidden": [7],
                    "activation": "gelu"}
    again = build_model(spec)
    p = model.init(jax.random.PRNGKey(0), (5, 5, 2), 3)
    X = jax.random.normal(jax.random.PRNGKey(1), (2, 5, 5, 2))
    np.testing.assert_array_equal(again.apply(p, X), model.apply(p, X))
    assert n_params(p) == 3 * 3 * 3 * 2 + 3 + (3 * 3 * 3) * 7 + 7 + 7 * 3 + 3
