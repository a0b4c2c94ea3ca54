"""sgdlab: mini-batch gradient descent, measured.

The public API at a glance::

    result = sgdlab.fit(X, y, model="softmax", batch_size=32, epochs=30, lr=0.1)
    result.history, result.predict(X), result.score(X, y)
    model = sgdlab.load("runs/train-...")     # a run directory's model, to predict later

scikit-learn estimators (loaded on first use)::

    sgdlab.MiniBatchSGDClassifier(loss="softmax", batch_size=32).fit(X, y).score(X, y)
"""

from ._lazy import lazy_exports

__version__ = "0.1.0"

# Public names are imported on first use: ``import sgdlab`` (and ``sgdlab --help``) does not
# import JAX, nor scikit-learn for the estimators.
__getattr__, __dir__ = lazy_exports(__name__, {
    "Loss": "._types",
    "Model": "._types",
    "TrainState": "._types",
    "fit": ".api",
    "Dataset": ".data",
    "load_data": ".data",
    "EvalSchedule": ".engine",
    "FitResult": ".engine",
    "History": ".engine",
    "Predictor": ".engine",
    "TrainConfig": ".engine",
    "load": ".engine",
    "train": ".engine",
    "ConfigError": ".errors",
    "DataError": ".errors",
    "SgdlabError": ".errors",
    **{name: ".estimators" for name in (
        "MiniBatchSGDClassifier", "MiniBatchSGDRegressor", "MiniBatchMLPClassifier",
        "MiniBatchMLPRegressor", "MiniBatchNetworkClassifier", "MiniBatchNetworkRegressor",
        "ChannelScaler")},
})
