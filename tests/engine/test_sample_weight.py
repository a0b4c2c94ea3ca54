"""Sample weights: the objective is the weighted mean loss, in expectation over batches of any
size (batch 1 included), and scaling every weight changes nothing."""

import numpy as np
import pytest

import sgdlab
from sgdlab.errors import ConfigError, DataError


def _data(n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)).astype(np.float32)
    y = (X[:, 0] + 0.8 * rng.standard_normal(n) > 0).astype(int)
    return X, y


def test_integer_weights_equal_repeated_rows_in_full_batch_descent():
    X, y = _data()
    w = np.random.default_rng(1).integers(0, 4, len(X))
    Xv, yv = _data(100, seed=2)
    settings = dict(model="logistic", epochs=20, lr=0.5, standardize=False,
                    validation=(Xv, yv), eval_every="end")
    weighted = sgdlab.fit(X, y, batch_size=len(X), sample_weight=w, **settings)
    repeated = sgdlab.fit(np.repeat(X, w, axis=0), np.repeat(y, w),
                          batch_size=int(w.sum()), **settings)
    for a, b in zip((weighted.params["W"], weighted.params["b"]),
                    (repeated.params["W"], repeated.params["b"])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("batch_size", [1, 32])
def test_weights_move_the_decision_at_every_batch_size(batch_size):
    X, y = _data(2000)
    heavy = np.where(y == 1, 5.0, 1.0)
    plain = sgdlab.fit(X, y, model="logistic", batch_size=batch_size, epochs=3, lr=0.05)
    weighted = sgdlab.fit(X, y, model="logistic", batch_size=batch_size, epochs=3, lr=0.05,
                          sample_weight=heavy)
    # class 1 weighs 5x: far more rows are called 1 than without weights
    assert np.mean(weighted.predict(X)) > np.mean(plain.predict(X)) + 0.15


def test_scaling_all_weights_changes_nothing_and_ones_are_no_weights():
    X, y = _data()
    base = sgdlab.fit(X, y, model="logistic", epochs=2)
    for w in (np.ones(len(X)), np.full(len(X), 3.0)):
        again = sgdlab.fit(X, y, model="logistic", epochs=2, sample_weight=w)
        np.testing.assert_array_equal(np.asarray(again.params["W"]), np.asarray(base.params["W"]))


def test_bad_weights_are_one_message():
    X, y = _data()
    with pytest.raises(DataError, match=r"sample_weight has shape \(3,\); the data has .* "
                                        "rows: give one weight per row"):
        sgdlab.fit(X, y, sample_weight=np.ones(3), epochs=1)
    # the estimators check weights with the same function and words
    with pytest.raises(DataError, match=r"sample_weight has shape \(3,\); X has .* rows: give "
                                        "one weight per row"):
        sgdlab.MiniBatchSGDClassifier().fit(X, y, sample_weight=np.ones(3))
    with pytest.raises(DataError, match="finite and >= 0; row 2"):
        sgdlab.MiniBatchSGDClassifier().fit(X, y, sample_weight=np.where(
            np.arange(len(X)) == 2, np.nan, 1.0))
    with pytest.raises(DataError, match="finite and >= 0; row 5"):
        sgdlab.fit(X, y, sample_weight=np.where(np.arange(len(X)) == 5, -1.0, 1.0), epochs=1,
                   validation=(X, y))
    with pytest.raises(ConfigError, match="method='sgd'"):
        sgdlab.fit(X, y, sample_weight=np.ones(len(X)), method="random-local", attempts=10)


def test_estimators_take_sample_weight_in_fit_and_partial_fit():
    X, y = _data(2000)
    heavy = np.where(y == 1, 5.0, 1.0)
    plain = sgdlab.MiniBatchSGDClassifier(loss="logistic", max_iter=3, random_state=0).fit(X, y)
    weighted = sgdlab.MiniBatchSGDClassifier(loss="logistic", max_iter=3, random_state=0).fit(
        X, y, sample_weight=heavy)
    assert np.mean(weighted.predict(X)) > np.mean(plain.predict(X)) + 0.15
    part = sgdlab.MiniBatchSGDClassifier(loss="logistic", random_state=0)
    for _ in range(3):
        part.partial_fit(X, y, classes=[0, 1], sample_weight=heavy)
    assert np.mean(part.predict(X)) > np.mean(plain.predict(X)) + 0.15
    early = sgdlab.MiniBatchSGDClassifier(loss="logistic", max_iter=3, early_stopping=True,
                                          random_state=0).fit(X, y, sample_weight=heavy)
    assert np.mean(early.predict(X)) > np.mean(plain.predict(X)) + 0.15
