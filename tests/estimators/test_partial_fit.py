"""partial_fit: one epoch per call, continuing the weights, the optimiser and the batch order."""

import numpy as np
import pytest

from sgdlab.errors import DataError
from sgdlab.estimators import (MiniBatchMLPClassifier, MiniBatchSGDClassifier,
                               MiniBatchSGDRegressor)


def _classes(n=90, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.array(["a", "b", "c"])[np.argmax(X[:, :3], axis=1)]
    return X, y


def _leaves(est):
    import jax
    return [np.asarray(v) for v in jax.tree_util.tree_leaves((est.params_, est.opt_state_))]


@pytest.mark.parametrize("make,sampling", [
    (lambda s: MiniBatchSGDClassifier(loss="softmax", batch_size=16, sampling=s,
                                      random_state=3), "shuffle"),
    (lambda s: MiniBatchSGDClassifier(loss="hinge", batch_size=7, sampling=s, alpha=0.01,
                                      optimizer="momentum", random_state=3), "sequential"),
    (lambda s: MiniBatchMLPClassifier((8,), batch_size=16, sampling=s, random_state=3),
     "replacement"),
])
def test_two_partial_fits_equal_fit_for_two_epochs(make, sampling):
    X, y = _classes()
    full = make(sampling).set_params(max_iter=2).fit(X, y)
    inc = make(sampling)
    inc.partial_fit(X, y, classes=["a", "b", "c"])
    assert inc.n_iter_ == 1 and inc.t_ == -(-90 // inc.batch_size_)
    inc.partial_fit(X, y)
    for a, b in zip(_leaves(full), _leaves(inc)):
        assert np.array_equal(a, b)  # the same steps in the same order: the same bits
    assert (inc.n_iter_, inc.t_) == (full.n_iter_, full.t_)
    np.testing.assert_array_equal(inc.predict(X), full.predict(X))


def test_regressor_partial_fits_equal_fit():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(50, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3
    full = MiniBatchSGDRegressor(batch_size=8, max_iter=2, random_state=0).fit(X, y)
    inc = MiniBatchSGDRegressor(batch_size=8, random_state=0)
    inc.partial_fit(X, y).partial_fit(X, y)
    assert np.array_equal(full.coef_, inc.coef_)
    assert np.array_equal(full.intercept_, inc.intercept_)


def test_partial_fit_on_streamed_chunks_learns_and_keeps_history():
    X, y = _classes(n=600)
    clf = MiniBatchSGDClassifier(loss="softmax", batch_size=32, random_state=0)
    for start in range(0, 600, 100):
        clf.partial_fit(X[start:start + 100], y[start:start + 100], classes=["a", "b", "c"])
    assert clf.t_ == 6 * 4 and clf.n_iter_ == 6
    steps = [row["step"] for row in clf.history_]
    assert steps == [0, 4, 8, 12, 16, 20, 24]
    assert np.all(np.diff([row["train_seconds"] for row in clf.history_]) >= 0)
    assert clf.score(X, y) > 0.9


def test_partial_fit_continues_after_fit():
    X, y = _classes()
    clf = MiniBatchSGDClassifier(batch_size=16, max_iter=3, random_state=0).fit(X, y)
    t = clf.t_
    clf.partial_fit(X, y)
    assert clf.t_ == t + 6 and clf.n_iter_ == 4


def test_partial_fit_errors():
    X, y = _classes()
    with pytest.raises(DataError, match="classes must be passed on the first call"):
        MiniBatchSGDClassifier().partial_fit(X, y)
    with pytest.raises(DataError, match=r"labels \['c'\] that are not among the classes"):
        MiniBatchSGDClassifier().partial_fit(X, y, classes=["a", "b"])
    clf = MiniBatchSGDClassifier().partial_fit(X, y, classes=["a", "b", "c"])
    with pytest.raises(DataError, match="differs from the classes of the first call"):
        clf.partial_fit(X, y, classes=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="X has 3 features, but MiniBatchSGDClassifier is "
                                         "expecting 4 features"):
        clf.partial_fit(X[:, :3], y)
