"""Synthetic generators: seeded, shaped as documented, and true to their meta."""

from __future__ import annotations

import numpy as np
import pytest

from sgdlab.data import GENERATORS
from sgdlab.data.synthetic import (
    blobs, gaussian_classes, linear_regression, mnist_like, parse_spec, xor,
)
from sgdlab.errors import ConfigError, DataError


def test_generator_names():
    assert {"blobs", "gaussian", "linreg", "xor", "mnist-like", "images",
            "digits-augmented"} <= set(GENERATORS)


@pytest.mark.parametrize("name", ["blobs", "gaussian", "linreg", "xor"])
def test_same_seed_same_bits_other_seed_differs(name):
    gen = GENERATORS[name]
    a, b, c = gen(seed=5), gen(seed=5), gen(seed=6)
    assert a.X.dtype == np.float32 and a.X.flags.c_contiguous
    assert a.X.tobytes() == b.X.tobytes() and a.y.tobytes() == b.y.tobytes()
    assert a.X.tobytes() != c.X.tobytes()
    assert np.isfinite(a.X).all()
    assert a.meta["generator"] == name


@pytest.mark.parametrize("d, margin", [(2, 1.0), (20, 0.1), (7, 3.0)])
def test_blobs_separable_by_true_hyperplane_with_margin(d, margin):
    ds = blobs(n=500, d=d, margin=margin, seed=d)
    w, b = ds.meta["w_true"], ds.meta["b_true"]
    dist = ds.X.astype(np.float64) @ w + b
    assert np.all((dist > 0) == (ds.y == 1))
    assert np.abs(dist).min() >= margin - 1e-5
    assert abs(int(ds.y.sum()) - 250) <= 1  # balanced classes


def test_blobs_separable_by_a_learned_linear_model():
    from sklearn.linear_model import Perceptron

    ds = blobs(n=400, d=10, seed=1)
    assert Perceptron(max_iter=1000, tol=None, random_state=0).fit(ds.X, ds.y).score(ds.X, ds.y) == 1.0


def test_gaussian_classes_shape_and_balance():
    ds = gaussian_classes(n=301, d=4, n_classes=3, sep=3.0, seed=2)
    assert ds.X.shape == (301, 4) and ds.classes == (0, 1, 2)
    assert sorted(np.bincount(ds.y).tolist()) == [100, 100, 101]
    np.testing.assert_allclose(np.linalg.norm(ds.meta["means"], axis=1), 3.0)
    # Class means of the sample sit near the true means.
    for c in range(3):
        assert np.linalg.norm(ds.X[ds.y == c].mean(0) - ds.meta["means"][c]) < 0.5


def test_linear_regression_meta_matches_least_squares():
    ds = linear_regression(n=2000, d=5, noise=0.1, seed=3)
    assert ds.task == "regression" and ds.y.dtype == np.float32
    A = np.hstack([ds.X.astype(np.float64), np.ones((ds.n, 1))])
    coef, *_ = np.linalg.lstsq(A, ds.y.astype(np.float64), rcond=None)
    np.testing.assert_allclose(coef[:-1], ds.meta["w_true"], atol=0.01)
    assert abs(coef[-1] - ds.meta["b_true"]) < 0.01
    resid = ds.y - A @ coef
    assert abs(resid.std() - ds.meta["noise"]) < 0.01


def test_xor_not_linearly_separable():
    from sklearn.linear_model import LogisticRegression

    ds = xor(n=800, noise=0.1, seed=0)
    assert ds.X.shape == (800, 2) and ds.n_classes == 2
    assert LogisticRegression().fit(ds.X, ds.y).score(ds.X, ds.y) < 0.8
    # The quadrant rule itself is exact for small noise.
    assert np.mean((ds.X[:, 0] * ds.X[:, 1] > 0) == (ds.y == 1)) > 0.99


def test_mnist_like_small_is_learnable():
    ds = mnist_like(n=3000, d=100, n_classes=10, seed=0)
    assert ds.X.dtype == np.float32 and ds.X.shape == (3000, 100) and ds.n_classes == 10
    again = mnist_like(n=3000, d=100, n_classes=10, seed=0)
    assert ds.X.tobytes() == again.X.tobytes()
    means = ds.meta["means"]
    nearest = ((ds.X[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    assert np.mean(nearest == ds.y) > 0.85


def test_parse_spec():
    assert parse_spec("blobs") == ("blobs", {})
    assert parse_spec("blobs:n=2000,d=20, margin=0.5") == ("blobs", {"n": 2000, "d": 20, "margin": 0.5})
    with pytest.raises(DataError, match="unknown generator 'blob'; valid generators: blobs, "):
        parse_spec("blob:n=3")
    with pytest.raises(ConfigError, match="xor: unknown parameter 'd'; valid parameters: n, noise, seed"):
        parse_spec("xor:d=3")
    with pytest.raises(ConfigError, match=r"expected key=value, got 'n'"):
        parse_spec("xor:n")
    with pytest.raises(ConfigError, match=r"xor: n='ten' is not a number"):
        parse_spec("xor:n=ten")


def test_generator_argument_checks():
    with pytest.raises(ConfigError, match="n must be an integer, got 2.5"):
        blobs(n=2.5)
    with pytest.raises(ConfigError, match="margin must be > 0.0, got 0"):
        blobs(margin=0)
    with pytest.raises(ConfigError, match=r"n \(2\) must be >= n_classes \(3\)"):
        gaussian_classes(n=2, n_classes=3)
    with pytest.raises(ConfigError, match="noise must be >= 0.0"):
        linear_regression(noise=-1)


def test_augmented_digits_are_the_digits_resized_shifted_and_noised():
    from sgdlab.data.builtin import digits
    ds = GENERATORS["digits-augmented"](n=200, side=16, shift=2, noise=0.0, seed=3)
    assert ds.X.shape == (200, 256) and ds.X.dtype == np.float32 and ds.classes == tuple(range(10))
    rows, shifts = ds.meta["source_rows"], ds.meta["shifts"]
    assert np.array_equal(ds.y, digits().y[rows]) and np.abs(shifts).max() <= 2
    unshifted = np.flatnonzero((shifts == 0).all(axis=1))
    assert len(unshifted)        # without noise or shift: the original, resized to [0, 1]
    i = unshifted[0]
    from sgdlab.data.augmented import resize_bilinear
    original = digits().X[rows[i]].reshape(1, 8, 8) / 16
    np.testing.assert_allclose(ds.X[i], resize_bilinear(original, 16).ravel(), atol=1e-6)
    same = GENERATORS["digits-augmented"](n=200, side=16, shift=2, noise=0.0, seed=3)
    assert np.array_equal(ds.X, same.X)
    images = GENERATORS["digits-augmented"](n=10, images=1)
    assert images.X.shape == (10, 28, 28, 1)
    with pytest.raises(ConfigError, match="shift must be smaller than the side"):
        GENERATORS["digits-augmented"](n=10, side=8, shift=8)
    with pytest.raises(ConfigError, match="more than the .* GiB this machine has available"):
        GENERATORS["digits-augmented"](n=10 ** 12, side=28)
