"""2-D slices: batched values equal direct evaluation, same seed gives the same bits, paths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgdlab.errors import ConfigError
from sgdlab.lab import flatten, path_slice, random_slice, record_paths
from sgdlab.lab.directions import random_direction
from sgdlab.lab.landscape import path_batch_sizes
from sgdlab.lab.surface import Surface
from sgdlab.losses import encode_targets, objective


def test_plane_matches_direct_objective(mlp_problem, mlp_restarts):
    """Reference oracle: each grid value equals losses.objective at that point."""
    p, params = mlp_problem, mlp_restarts.results[0].params
    s = p.surface(params)
    sl = random_slice(s, params, grid=5, seed=3)
    X = jnp.asarray(p.standardizer.transform(p.train.X))
    T = encode_targets(p.loss, p.train.y, 10)
    w = jnp.ones(len(X))
    _, unravel = jax.flatten_util.ravel_pytree(params)
    for (i, j) in [(0, 0), (2, 2), (4, 1)]:
        a, b = sl.alphas[i], sl.betas[j]
        rng = np.random.default_rng(3)
        d1, d2 = random_direction(rng, params), random_direction(rng, params)
        point = unravel(jnp.asarray(flatten(params) + a * d1 + b * d2, jnp.float32))
        ref = float(objective(p.model.apply, p.loss, point, X, T, w, l2=p.config.l2))
        assert sl.loss[j, i] == pytest.approx(ref, rel=1e-5)
    assert sl.loss[2, 2] == pytest.approx(s.value(flatten(params)), rel=1e-6)  # centre


def test_chunking_does_not_change_values(mlp_problem, mlp_restarts):
    p, params = mlp_problem, mlp_restarts.results[0].params
    X = p.standardizer.transform(p.train.X)
    big = Surface(p.model, p.loss, 0.0, params, X, p.train.y, 10)
    small = Surface(p.model, p.loss, 0.0, params, X, p.train.y, 10, memory_budget=1)
    assert small.chunk == 1 and big.chunk > 7
    pts = flatten(params)[None] * np.linspace(0.5, 1.5, 7)[:, None]   # 7: pads a chunk
    np.testing.assert_allclose(small.points(pts)[0], big.points(pts)[0], rtol=1e-6)


def test_same_seed_same_slice_values_different_seed_differs(convex_problem, convex_restarts):
    params = convex_restarts.results[0].params
    s = convex_problem.surface(params)
    a = random_slice(s, params, grid=7, seed=1)
    b = random_slice(s, params, grid=7, seed=1)
    c = random_slice(s, params, grid=7, seed=2)
    np.testing.assert_array_equal(a.loss, b.loss)
    np.testing.assert_array_equal(a.arrows, b.arrows)
    assert not np.array_equal(a.loss, c.loss)
    # the solution is the minimum of a strictly convex objective: the centre is lowest
    assert a.loss[3, 3] == a.loss.min()


def test_filter_normalised_direction(mlp_restarts):
    params = mlp_restarts.results[0].params
    d = random_direction(np.random.default_rng(0), params)
    _, unravel = jax.flatten_util.ravel_pytree(params)
    tree = unravel(jnp.asarray(d, jnp.float32))
    for dl, wl in zip(tree["layers"], params["layers"]):
        np.testing.assert_allclose(np.linalg.norm(dl["W"], axis=1),
                                   np.linalg.norm(wl["W"], axis=1), rtol=1e-5)
        assert not np.any(dl["b"])  # biases are not moved
    with pytest.raises(ConfigError, match="unknown direction normalisation 'filters'"):
        random_direction(np.random.default_rng(0), params, "filters")


def test_descent_arrows_point_downhill(convex_problem, convex_restarts):
    params = convex_restarts.results[0].params
    sl = random_slice(convex_problem.surface(params), params, grid=5, n_arrows=4)
    # at the minimum of a convex bowl every descent arrow points back toward the centre
    assert np.all(np.sum(sl.arrows * sl.arrows_at, axis=1) < 0)


def test_paths_on_pca_plane(mlp_problem, mlp_restarts):
    sizes = path_batch_sizes(32, mlp_problem.train.n)
    assert list(sizes.values()) == [1, 32, mlp_problem.train.n]
    paths = record_paths(mlp_problem, sizes, steps=30, points=30)
    sl = path_slice(mlp_problem.surface(mlp_restarts.results[0].params), paths, grid=5)
    full, stochastic = sl.paths[list(sizes)[-1]], sl.paths[list(sizes)[0]]
    np.testing.assert_allclose(full["coords"][-1], 0.0, atol=1e-5)   # plane centred on its end
    assert len(full["step"]) == 31 and full["step"][-1] == 30
    assert 0 < sum(sl.explained) <= 1 + 1e-9
    assert stochastic["lr"] == pytest.approx(0.1 / np.sqrt(32))
    # the zig-zag: one-example steps wander more per unit of progress than full-batch ones
    assert stochastic["tortuosity"] > full["tortuosity"] >= 1.0
    # full-batch gradient descent with a small step lowers the objective along its path
    assert full["loss"][-1] < full["loss"][0]


def test_grid_errors(convex_problem, convex_restarts):
    params = convex_restarts.results[0].params
    with pytest.raises(ConfigError, match="grid must be a whole number >= 3"):
        random_slice(convex_problem.surface(params), params, grid=2)
    with pytest.raises(ConfigError, match="span must be > 0"):
        random_slice(convex_problem.surface(params), params, span=0)


def test_pca_plane_equals_svd_directions():
    from sgdlab.lab.slices import pca_plane
    rng = np.random.default_rng(0)
    M = rng.normal(size=(40, 300)) * np.linspace(3.0, 0.1, 300)
    basis, explained = pca_plane({"p": {"params": M}}, np.zeros(300))
    _, s, vt = np.linalg.svd(M, full_matrices=False)
    np.testing.assert_allclose(np.abs(basis @ vt[:2].T), np.eye(2), atol=1e-10)
    np.testing.assert_allclose(explained, s[:2] ** 2 / np.sum(s ** 2), rtol=1e-10)
    with pytest.raises(ConfigError, match="two independent directions"):
        pca_plane({"p": {"params": np.ones((3, 5))}}, np.zeros(5))


def test_arrows_are_minus_the_gradient_of_the_plotted_function(mlp_problem, mlp_restarts):
    """Centred differences of f(a, b) at each arrow's foot: the arrow is -grad f, so it is
    perpendicular to the level curve through that point."""
    params = mlp_restarts.results[0].params
    s = mlp_problem.surface(params, x64=True)
    sl = random_slice(s, params, grid=3, n_arrows=2, seed=5)
    rng = np.random.default_rng(5)
    basis = np.stack([random_direction(rng, params), random_direction(rng, params)])
    h = 1e-6  # small enough (float64) that no ReLU kink lies within +-h of the feet
    steps = np.array([[h, 0], [-h, 0], [0, h], [0, -h]])
    for at, arrow in zip(sl.arrows_at, sl.arrows):
        v = s.plane(flatten(params), basis, at[None] + steps)[0]
        grad = np.array([v[0] - v[1], v[2] - v[3]]) / (2 * h)
        np.testing.assert_allclose(arrow, -grad, rtol=1e-4, atol=1e-8)
        tangent = np.array([-grad[1], grad[0]])          # along the level curve
        assert abs(arrow @ tangent) <= 1e-4 * np.linalg.norm(arrow) * np.linalg.norm(tangent)


def test_filter_normalised_direction_per_convolution_filter_and_flax_kernel():
    """A cnn's kernels (O, kh, kw, I) are normalised per output channel; Flax's input-major
    ``kernel`` leaves (dense (n_in, n_out), convolution (kh, kw, I, O)) per last index."""
    from sgdlab.models import cnn
    params = cnn(channels=(3, 5), kernel=3, hidden=(7,)).init(jax.random.PRNGKey(0), (8, 8, 1),
                                                              4)
    d = random_direction(np.random.default_rng(1), params)
    _, unravel = jax.flatten_util.ravel_pytree(params)
    tree = unravel(jnp.asarray(d, jnp.float32))
    for dl, wl in zip(tree["conv"], params["conv"]):
        per_filter = lambda a: np.sqrt((np.asarray(a) ** 2).sum(axis=(1, 2, 3)))  # noqa: E731
        np.testing.assert_allclose(per_filter(dl["W"]), per_filter(wl["W"]), rtol=1e-5)
        assert not np.any(dl["b"])
    rng = np.random.default_rng(2)
    flax_like = {"Conv_0": {"kernel": rng.normal(size=(3, 3, 1, 4)), "bias": np.ones(4)},
                 "Dense_0": {"kernel": rng.normal(size=(6, 2)), "bias": np.ones(2)}}
    d = random_direction(np.random.default_rng(3), flax_like)
    _, unravel = jax.flatten_util.ravel_pytree(flax_like)
    tree = unravel(jnp.asarray(d))
    for name in flax_like:
        k, dk = flax_like[name]["kernel"], np.asarray(tree[name]["kernel"])
        axes = tuple(range(k.ndim - 1))
        np.testing.assert_allclose(np.sqrt((dk ** 2).sum(axes)), np.sqrt((k ** 2).sum(axes)),
                                   rtol=1e-5)
        assert not np.any(tree[name]["bias"])  # Flax biases are biases too
