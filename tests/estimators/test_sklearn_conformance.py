"""scikit-learn's own estimator checks, run on every sgdlab estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sgdlab.estimators import (MiniBatchMLPClassifier, MiniBatchMLPRegressor,
                               MiniBatchSGDClassifier, MiniBatchSGDRegressor)

# Few epochs keep the suite quick (each check fits); small data needs no more. log_loss
# (one-vs-rest for 3+ classes) and the MLP's softmax give both predict_proba rules.
ESTIMATORS = [
    MiniBatchSGDClassifier(loss="log_loss", max_iter=5),
    MiniBatchSGDRegressor(learning_rate=0.1, max_iter=5),
    MiniBatchMLPClassifier(hidden_layer_sizes=(16,), max_iter=5),
    MiniBatchMLPRegressor(hidden_layer_sizes=(16,), learning_rate=0.1, max_iter=5),
]


#: Checks that cannot pass, with the reason. Integer sample weights equal repeated rows in
#: expectation over the batches, and exactly in full-batch descent (a test in
#: tests/engine/test_sample_weight.py proves it), but not for one seeded stream of shuffled
#: mini-batches: repeating rows changes the batches themselves. scikit-learn marks its own
#: SGDClassifier's check the same way. The linear regressor passes it: its 5 epochs reach the
#: least-squares solution within the check's tolerance whatever the batches.
EXPECTED_FAILURES: dict = {
    "check_sample_weight_equivalence_on_dense_data":
        "stochastic mini-batches: weights equal repeated rows in expectation, not per stream",
}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: (
    {} if isinstance(est, MiniBatchSGDRegressor) else EXPECTED_FAILURES))
def test_sklearn_estimator_checks(estimator, check, monkeypatch):
    # check_array_api_input (NumPy namespace: dispatch on, results unchanged) skips itself
    # unless this is set; set only while a check runs, so nothing else sees it.
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)
