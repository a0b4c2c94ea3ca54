"""The estimators where users already are: Pipeline, GridSearchCV, cross_val_score, digits."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sgdlab.estimators import MiniBatchSGDClassifier


@pytest.fixture(scope="module")
def digits():
    return load_digits(return_X_y=True)


def test_digits_softmax_batch32_reaches_95_percent(digits):
    X, y = digits
    scores = []
    for seed in range(3):  # one 450-row test split moves by about 1%; use the mean of three
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, stratify=y,
                                              random_state=seed)
        model = make_pipeline(StandardScaler(), MiniBatchSGDClassifier(
            loss="softmax", batch_size=32, random_state=seed))
        scores.append(model.fit(Xtr, ytr).score(Xte, yte))
    assert np.mean(scores) >= 0.95, scores
    assert min(scores) >= 0.93, scores


def test_grid_search_over_batch_size_runs_and_reports(digits):
    X, y = digits
    search = GridSearchCV(
        make_pipeline(StandardScaler(), MiniBatchSGDClassifier(
            loss="softmax", max_iter=5, random_state=0)),
        {"minibatchsgdclassifier__batch_size": [8, 32, 128]}, cv=3)
    search.fit(X, y)
    results = search.cv_results_
    assert list(results["param_minibatchsgdclassifier__batch_size"]) == [8, 32, 128]
    assert np.all(results["mean_test_score"] > 0.85)
    assert search.best_params_["minibatchsgdclassifier__batch_size"] in (8, 32, 128)
    best = search.best_estimator_[-1]
    assert best.batch_size_ == best.batch_size and best.n_iter_ == 5
    # refit on all 1797 rows: ceil(1797 / B) steps per epoch, 5 epochs.
    assert best.t_ == 5 * -(-len(X) // best.batch_size)


def test_cross_val_score_with_lr_scaling(digits):
    X, y = digits
    model = make_pipeline(StandardScaler(), MiniBatchSGDClassifier(
        loss="log_loss", batch_size=64, learning_rate=0.05, lr_scaling="linear",
        base_batch=32, max_iter=5, random_state=0))
    scores = cross_val_score(model, X, y, cv=4)
    assert scores.shape == (4,) and scores.mean() > 0.85
    assert model.fit(X, y)[-1].learning_rate_ == pytest.approx(0.1)
