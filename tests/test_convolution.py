"""sgdlab.convolution: the banded matrix-product convolution against XLA's convolution (values
and both gradients, any tile, kernel and image size), which form each layer takes, and the
2x2 max pooling against reduce_window (values, gradients, ties, second derivatives)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import x64

from sgdlab.convolution import (BANDED_MAX_CHANNELS, band_tile, banded_conv2d, conv2d_same,
                                max_pool_2x2)
from sgdlab.engine.setup import setup_run
from sgdlab.models import cnn
from sgdlab import TrainConfig


def xla_conv(h, W):
    return jax.lax.conv_general_dilated(h, W, (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "OHWI", "NHWC"))


def xla_pool(h):
    return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "SAME")


@pytest.mark.parametrize("shape, out_channels, k, tile", [
    ((2, 28, 28, 1), 6, 5, None), ((3, 14, 14, 6), 16, 5, None),
    ((2, 14, 14, 3), 4, 5, 3),     # a last partial tile (14 = 4 x 3 + 2)
    ((2, 3, 31, 2), 3, 3, 3),      # 11 tiles: strided column slices, a partial last tile
    ((2, 5, 7, 3), 4, 3, 40),      # a tile wider than the image
    ((2, 6, 9, 2), 3, 4, None),    # an even kernel: one more zero after than before
    ((2, 8, 8, 2), 3, 1, None),    # 1x1: a plain matrix product
    ((2, 1, 1, 1), 2, 5, 1)])      # one pixel, a kernel larger than the image, im2col
def test_banded_equals_xla_convolution_with_both_gradients(shape, out_channels, k, tile):
    with x64():
        keys = jax.random.split(jax.random.PRNGKey(0), 3)
        h = jax.random.normal(keys[0], shape, jnp.float64)
        W = jax.random.normal(keys[1], (out_channels, k, k, shape[-1]), jnp.float64)
        g = jax.random.normal(keys[2], (*shape[:3], out_channels), jnp.float64)

        @jax.jit
        def both(h, W, g):
            (want, want_vjp), (got, got_vjp) = (
                jax.vjp(xla_conv, h, W), jax.vjp(lambda h, W: banded_conv2d(h, W, tile), h, W))
            return want, got, want_vjp(g), got_vjp(g)

        want, got, want_grads, got_grads = both(h, W, g)
        assert got.shape == want.shape == (*shape[:3], out_channels)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        for a, b in zip(got_grads, want_grads):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-11)


def test_tile_must_be_positive():
    h, W = jnp.ones((1, 4, 4, 1)), jnp.ones((2, 3, 3, 1))
    with pytest.raises(ValueError, match="tile must be a positive number of output columns"):
        banded_conv2d(h, W, 0)


def test_band_tile():
    assert band_tile(5, 28) == 7 and band_tile(3, 28) == 5
    assert band_tile(5, 4) == 4  # never wider than the image
    assert band_tile(1, 28) == 1


@pytest.mark.parametrize("channels", [1, BANDED_MAX_CHANNELS, BANDED_MAX_CHANNELS + 1, 32])
def test_few_input_channels_take_the_banded_form_on_a_cpu(channels):
    h = jax.ShapeDtypeStruct((2, 10, 10, channels), jnp.float32)
    W = jax.ShapeDtypeStruct((4, 3, 3, channels), jnp.float32)
    program = str(jax.make_jaxpr(conv2d_same)(h, W))
    banded = jax.default_backend() == "cpu" and channels <= BANDED_MAX_CHANNELS
    assert ("conv_general_dilated" in program) is not banded
    assert ("dot_general" in program) is banded


def test_the_cnn_on_grey_images_runs_in_the_compiled_loop_and_wide_input_unrolled():
    """On a CPU the cnn's banded products run as fast in the loop kernel as written out, so
    only a network with an XLA convolution (here: 8 input channels) is unrolled."""
    cfg = TrainConfig(model="cnn", batch_size=16)
    grey = setup_run(cfg, example_shape=(28, 28, 1), n_classes=10, steps_per_epoch=10)
    wide = setup_run(cfg, example_shape=(12, 12, 8), n_classes=10, steps_per_epoch=10)
    if jax.default_backend() == "cpu":
        assert not grey.unrolled and wide.unrolled
        assert grey.chunk_cap(100) == 100 and wide.chunk_cap(100) == 8


@pytest.mark.parametrize("shape", [(3, 28, 28, 6), (2, 5, 7, 3), (2, 1, 1, 2), (2, 6, 9, 2)])
def test_pool_equals_reduce_window_with_its_gradient(shape):
    with x64():
        h = jax.random.normal(jax.random.PRNGKey(1), shape, jnp.float64)
        want, want_vjp = jax.vjp(xla_pool, h)
        got, got_vjp = jax.vjp(max_pool_2x2, h)
        np.testing.assert_array_equal(got, want)
        g = jax.random.normal(jax.random.PRNGKey(2), want.shape, jnp.float64)
        np.testing.assert_array_equal(got_vjp(g)[0], want_vjp(g)[0])


@pytest.mark.parametrize("window, winner", [
    ([[1.0, 1.0], [1.0, 1.0]], (0, 0)),   # all tied: the top row, then the left column
    ([[0.0, 2.0], [2.0, 2.0]], (1, 0)),   # top row loses its left column: bottom-left first
    ([[0.0, 2.0], [1.0, 2.0]], (0, 1)),   # the right column, top row
    ([[0.0, 1.0], [1.0, 3.0]], (1, 1))])
def test_pool_gradient_goes_to_one_winner_at_a_tie(window, winner):
    h = jnp.asarray(window, jnp.float32)[None, :, :, None]
    grad = jax.grad(lambda h: max_pool_2x2(h).sum())(h)[0, :, :, 0]
    want = np.zeros((2, 2), np.float32)
    want[winner] = 1
    np.testing.assert_array_equal(grad, want)


def test_second_derivatives_of_the_cnn_match_differences_of_its_gradient():
    """The noise scale's Hessian-vector products differentiate the gradient forward: the pool
    is written with a JVP rule so that this works, and gives the right values."""
    model = cnn(channels=(2, 3), kernel=3, hidden=(4,), activation="tanh")
    with x64():
        p = model.init(jax.random.PRNGKey(0), (6, 6, 1), 3, dtype=jnp.float64)
        X = jax.random.normal(jax.random.PRNGKey(1), (5, 6, 6, 1), jnp.float64)
        flat, unravel = jax.flatten_util.ravel_pytree(p)
        v = jax.random.normal(jax.random.PRNGKey(2), flat.shape, jnp.float64)

        @jax.jit
        def grad_at(theta):
            loss = lambda q: jnp.sum(jnp.sin(model.apply(unravel(q), X)))  # noqa: E731
            return jax.grad(loss)(theta)

        hvp = jax.jit(lambda t, v: jax.jvp(grad_at, (t,), (v,))[1])(flat, v)
        eps = 1e-6
        diff = (grad_at(flat + eps * v) - grad_at(flat - eps * v)) / (2 * eps)
        np.testing.assert_allclose(hvp, diff, rtol=1e-5, atol=1e-7)
