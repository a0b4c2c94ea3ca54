"""Fitted attributes, shapes, losses, early stopping, pickling, DataFrames and errors."""

import pickle
import subprocess
import sys
import warnings

import jax
import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import ConvergenceWarning

import sgdlab
from sgdlab.errors import ConfigError, DataError
from sgdlab.estimators import (MiniBatchMLPClassifier, MiniBatchMLPRegressor,
                               MiniBatchSGDClassifier, MiniBatchSGDRegressor)
from sgdlab.models import linear


def _blobs(n=120, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = 5.0 * rng.normal(size=(k, d))
    y = rng.integers(0, k, n)
    return centers[y] + rng.normal(size=(n, d)), y


@pytest.mark.parametrize("loss,proba", [("hinge", False), ("log_loss", True),
                                        ("perceptron", False), ("softmax", True),
                                        ("multiclass_svm", False)])
@pytest.mark.parametrize("k", [2, 3])
def test_shapes_follow_scikit_learn(loss, proba, k):
    X, y = _blobs(k=k)
    clf = MiniBatchSGDClassifier(loss=loss, max_iter=3, random_state=0).fit(X, y)
    rows = 1 if k == 2 else k
    assert clf.coef_.shape == (rows, 4) and clf.intercept_.shape == (rows,)
    scores = clf.decision_function(X)
    assert scores.shape == ((120,) if k == 2 else (120, k))
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[
        (scores > 0).astype(int) if k == 2 else scores.argmax(1)])
    assert hasattr(clf, "predict_proba") == proba
    if proba:
        p = clf.predict_proba(X)
        assert p.shape == (120, k) and np.allclose(p.sum(1), 1.0)
        np.testing.assert_array_equal(clf.classes_[p.argmax(1)], clf.predict(X))
    assert clf.score(X, y) > 0.8


def test_one_vs_rest_hinge_matches_a_numpy_reference():
    """C binary hinge problems on the same batches: plain NumPy SGD, column by column."""
    X, y = _blobs(n=50, d=3)
    lr, alpha, B = 0.1, 0.01, 10
    clf = MiniBatchSGDClassifier(loss="hinge", batch_size=B, learning_rate=lr, alpha=alpha,
                                 max_iter=3, sampling="sequential", random_state=5).fit(X, y)
    p0 = linear().init(jax.random.PRNGKey(5), 3, 3)
    W, b = np.asarray(p0["W"], np.float64).T, np.zeros(3)  # input-major for the reference
    S = np.where(y[:, None] == np.arange(3), 1.0, -1.0)  # (N, C) one-vs-rest signs
    X32 = X.astype(np.float32).astype(np.float64)
    for _ in range(3):
        for i in range(0, 50, B):
            xb, sb = X32[i:i + B], S[i:i + B]
            G = np.where(sb * (xb @ W + b) < 1, -sb, 0.0) / len(xb)   # d loss / d f, (B, C)
            W, b = W - lr * (xb.T @ G + alpha * W), b - lr * G.sum(0)
    np.testing.assert_allclose(clf.coef_, W.T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(clf.intercept_, b, rtol=1e-4, atol=1e-5)


def test_binary_softmax_is_a_difference_of_scores():
    X, y = _blobs(k=2)
    clf = MiniBatchSGDClassifier(loss="softmax", max_iter=3, random_state=0).fit(X, y)
    W, b = clf.params_["W"].astype(np.float64), clf.params_["b"].astype(np.float64)
    full = X @ W.T + b
    np.testing.assert_allclose(clf.decision_function(X), full[:, 1] - full[:, 0], rtol=1e-10)
    e = np.exp(full - full.max(1, keepdims=True))
    np.testing.assert_allclose(clf.predict_proba(X), e / e.sum(1, keepdims=True), rtol=1e-9)


def test_early_stopping_holds_out_validation_and_stops():
    X, y = _blobs(n=400, seed=1)
    clf = MiniBatchSGDClassifier(loss="softmax", early_stopping=True, n_iter_no_change=2,
                                 tol=0.5, max_iter=50, random_state=0).fit(X, y)
    # tol=0.5 means no later epoch can count as an improvement: 1 + 2 epochs, then stop.
    assert clf.status_ == "stopped" and clf.n_iter_ == 3
    assert [row["epoch"] for row in clf.history_] == [0.0, 1.0, 2.0, 3.0]
    assert "val_accuracy" in clf.history_[-1]
    assert clf.t_ == 3 * -(-360 // 32)  # 10% of 400 rows held out


def test_target_accuracy_ends_the_run_early():
    X, y = _blobs(n=400, seed=2)
    clf = MiniBatchSGDClassifier(loss="softmax", early_stopping=True, target_accuracy=0.5,
                                 max_iter=50, random_state=0).fit(X, y)
    assert clf.status_ == "target_reached" and clf.history_[-1]["val_accuracy"] >= 0.5
    assert clf.n_iter_ < 50
    reg = MiniBatchSGDRegressor(early_stopping=True, target_r2=0.5, learning_rate=0.1,
                                max_iter=50, random_state=0)
    Xr = np.random.default_rng(3).normal(size=(400, 4))
    reg.fit(Xr, Xr @ np.array([1.0, 2.0, 0.0, -1.0]))
    assert reg.status_ == "target_reached" and reg.history_[-1]["val_r2"] >= 0.5


def test_regressors_fit_a_line_and_a_curve():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = X @ np.array([2.0, -1.0, 0.5]) + 4.0
    reg = MiniBatchSGDRegressor(learning_rate=0.05, max_iter=30, alpha=0.0,
                                random_state=0).fit(X, y)
    np.testing.assert_allclose(reg.coef_, [2.0, -1.0, 0.5], atol=0.02)
    np.testing.assert_allclose(reg.intercept_, [4.0], atol=0.02)
    curve = np.sin(2 * X[:, 0])
    mlp = MiniBatchMLPRegressor((32,), activation="tanh", learning_rate=0.05, max_iter=100,
                                random_state=0).fit(X, curve)
    assert mlp.score(X, curve) > 0.9
    assert [c.shape for c in mlp.coefs_] == [(3, 32), (32, 1)]


def test_mlp_classifier_learns_xor():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(400, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    clf = MiniBatchMLPClassifier((16,), max_iter=60, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9
    assert MiniBatchSGDClassifier(loss="softmax", random_state=0).fit(X, y).score(X, y) < 0.7


def test_pickle_round_trip_gives_identical_predictions():
    X, y = _blobs()
    for est in (MiniBatchSGDClassifier(loss="softmax", max_iter=2, random_state=0),
                MiniBatchMLPClassifier((8,), max_iter=2, random_state=0)):
        est.fit(X, y)
        back = pickle.loads(pickle.dumps(est))
        np.testing.assert_array_equal(back.decision_function(X), est.decision_function(X))
        assert all(isinstance(v, np.ndarray) for v in jax.tree_util.tree_leaves(back.params_))
        back.partial_fit(X, y)  # the optimiser state came along too
        assert back.t_ == est.t_ + 4


def test_dataframes_give_feature_names_and_are_checked():
    X, y = _blobs()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = MiniBatchSGDClassifier(max_iter=2, random_state=0).fit(frame, pd.Series(y))
    assert list(clf.feature_names_in_) == ["a", "b", "c", "d"] and clf.n_features_in_ == 4
    np.testing.assert_array_equal(clf.predict(frame), clf.predict(X))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame[["b", "a", "c", "d"]])
    assert not hasattr(MiniBatchSGDClassifier(max_iter=1).fit(X, y), "feature_names_in_")


def test_same_seed_same_model_and_none_differs():
    X, y = _blobs()
    a = MiniBatchSGDClassifier(max_iter=2, random_state=7).fit(X, y)
    b = MiniBatchSGDClassifier(max_iter=2, random_state=7).fit(X, y)
    assert np.array_equal(a.coef_, b.coef_)
    c = MiniBatchSGDClassifier(max_iter=2, random_state=None).fit(X, y)
    d = MiniBatchSGDClassifier(max_iter=2, random_state=None).fit(X, y)
    assert not np.array_equal(c.coef_, d.coef_)


def test_batch_larger_than_the_data_is_full_batch():
    X, y = _blobs(n=20)
    clf = MiniBatchSGDClassifier(batch_size=512, lr_scaling="linear", max_iter=3,
                                 random_state=0).fit(X, y)
    assert clf.batch_size_ == 20 and clf.t_ == 3
    assert clf.learning_rate_ == pytest.approx(0.1 * 20 / 32)


def test_divergence_warns_and_keeps_finite_weights():
    rng = np.random.default_rng(0)
    X = 1e3 * rng.normal(size=(64, 2))
    with pytest.warns(ConvergenceWarning, match=r"MiniBatchSGDRegressor diverged at step \d+.*"
                      r"lower learning_rate \(e.g. 0.1\)"):
        reg = MiniBatchSGDRegressor(learning_rate=1.0, random_state=0).fit(X, X[:, 0])
    assert reg.status_ == "diverged" and np.isfinite(reg.coef_).all()


@pytest.mark.parametrize("params,message", [
    ({"batch_size": 0}, r"batch_size=0 is not valid; it must be a whole number >= 1"),
    ({"learning_rate": -1.0}, r"learning_rate=-1.0 is not valid"),
    ({"loss": "huber"}, r"loss='huber' is not valid; it must be one of 'hinge'"),
    ({"sampling": "random"}, r"sampling='random' is not valid; it must be one of shuffle"),
    ({"eval_every": "often"}, r"eval_every='often' is not valid"),
    ({"validation_fraction": 1.0}, r"validation_fraction=1.0 is not valid"),
    ({"target_accuracy": 1.5}, r"target_accuracy=1.5 is not valid"),
    ({"target_accuracy": 0.9}, r"target_accuracy=0.9 needs a validation set.*"
                               r"early_stopping=True"),
])
def test_bad_parameters_raise_config_errors_at_fit(params, message):
    X, y = _blobs()
    clf = MiniBatchSGDClassifier(**params)  # storing never raises (scikit-learn's rule)
    with pytest.raises(ConfigError, match=message):
        clf.fit(X, y)


def test_bad_data_raise_clear_errors():
    X, y = _blobs()
    with pytest.raises(DataError, match="needs at least 2 classes, but the data has only 1"):
        MiniBatchSGDClassifier().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="Unknown label type"):
        MiniBatchSGDClassifier().fit(X, np.linspace(0, 1, len(X)))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        MiniBatchSGDClassifier().fit(np.full_like(X, np.nan), y)
    with pytest.raises(DataError, match="too large for float32"):
        MiniBatchSGDClassifier().fit(np.full_like(X, 1e300), y)
    with pytest.raises(ConfigError, match="hidden_layer_sizes=0 is not valid"):
        MiniBatchMLPClassifier(hidden_layer_sizes=0).fit(X, y)
    with pytest.raises(ConfigError, match="activation='swish' is not valid"):
        MiniBatchMLPClassifier(activation="swish").fit(X, y)


def test_import_sgdlab_loads_scikit_learn_only_when_an_estimator_is_used():
    code = ("import sys, sgdlab; assert 'sklearn' not in sys.modules; "
            "sgdlab.MiniBatchMLPRegressor; assert 'sklearn' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert sgdlab.MiniBatchSGDClassifier is MiniBatchSGDClassifier
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        sgdlab.Nope  # noqa: B018
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "MiniBatchSGDRegressor" in dir(sgdlab)
