"""A run directory holds a self-contained model: ``sgdlab.load`` predicts as the run did,
without the training data; models and results pickle; DataFrame columns match by name."""

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest

import sgdlab
from sgdlab.errors import DataError, RunDirError


@pytest.fixture(scope="module")
def iris_like(tmp_path_factory):
    """A named-column classification file with string labels, and the run trained on it."""
    import pandas as pd
    rng = np.random.default_rng(0)
    centers = np.array([[0, 0, 0], [3, 0, 1], [0, 3, -1]], float)
    y = rng.integers(0, 3, 300)
    X = centers[y] + rng.standard_normal((300, 3))
    df = pd.DataFrame(X, columns=["width", "height", "depth"])
    df["species"] = np.array(["setosa", "versicolor", "virginica"])[y]
    root = tmp_path_factory.mktemp("saved")
    df.to_csv(root / "train.csv", index=False)
    result = sgdlab.fit(str(root / "train.csv"), model="mlp", hidden=(16,), epochs=5,
                        out=root / "run", plots=False)
    return root, df, result


def test_load_predicts_like_the_run_without_the_data(iris_like):
    root, df, result = iris_like
    (root / "train.csv").rename(root / "moved.csv")  # the training file is gone
    try:
        model = sgdlab.load(root / "run")
    finally:
        (root / "moved.csv").rename(root / "train.csv")
    X = df[["width", "height", "depth"]]
    np.testing.assert_array_equal(model.predict(X), result.predict(X))
    np.testing.assert_allclose(model.predict_proba(X), result.predict_proba(X), rtol=1e-6)
    np.testing.assert_allclose(model.decision_function(X), result.decision_function(X))
    assert set(model.predict(X)) <= {"setosa", "versicolor", "virginica"}
    assert model.score(X, df["species"]) == result.score(X, df["species"]) > 0.8
    assert "mlp[16] relu / softmax, 3 features, 3 classes" in repr(model)
    saved = json.loads((root / "run" / "model.json").read_text())
    assert saved["format"] == 1 and saved["classes"] == ["setosa", "versicolor", "virginica"]
    assert saved["feature_names"] == ["width", "height", "depth"]


def test_dataframe_columns_are_matched_by_name(iris_like):
    _, df, result = iris_like
    X = df[["width", "height", "depth"]]
    shuffled = df[["depth", "width", "height"]]
    np.testing.assert_array_equal(result.predict(shuffled), result.predict(X))
    with pytest.raises(DataError, match="missing column.*'height'"):
        result.predict(df[["width", "depth"]])
    with pytest.raises(DataError, match="unexpected column.*'species'"):
        result.predict(df)


def test_models_and_results_pickle_to_the_same_predictions(iris_like):
    root, df, result = iris_like
    X = df[["width", "height", "depth"]].to_numpy()
    model = sgdlab.load(root / "run")
    for obj in (model, result):
        again = pickle.loads(pickle.dumps(obj))
        np.testing.assert_array_equal(again.predict(X), obj.predict(X))
    # and in a fresh process, which has none of this process's functions
    blob = root / "model.pkl"
    blob.write_bytes(pickle.dumps(result))
    code = ("import pickle, numpy as np, sys; r = pickle.load(open(sys.argv[1], 'rb')); "
            "print(list(r.predict(np.load(sys.argv[2]))))")
    np.save(root / "X.npy", X[:5])
    out = subprocess.run([sys.executable, "-c", code, str(blob), str(root / "X.npy")],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(list(result.predict(X[:5])))


def test_metrics_and_model_files_give_the_classes_with_their_types(tmp_path):
    """Integer labels stay integers in metrics.json, as in model.json (not '0', '1')."""
    X = np.random.default_rng(0).standard_normal((60, 2))
    y = np.array([3, 7, 9])[np.arange(60) % 3]
    sgdlab.fit(X, y, epochs=1, out=tmp_path / "run", plots=False)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    saved = json.loads((tmp_path / "run" / "model.json").read_text())
    assert metrics["classes"] == saved["classes"] == [3, 7, 9]


def test_a_regression_model_predicts_in_original_units(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((200, 3)).astype(np.float32)
    y = (1000 + 300 * X[:, 0] - 100 * X[:, 1]).astype(np.float32)
    result = sgdlab.fit(X, y, task="regression", model="linreg", epochs=20, out=tmp_path / "r",
                        plots=False)
    model = sgdlab.load(tmp_path / "r")
    np.testing.assert_allclose(model.predict(X), result.predict(X), rtol=1e-6)
    assert abs(float(np.mean(model.predict(X))) - 1000) < 20
    assert model.score(X, y) > 0.99


def test_bad_run_directories_are_one_clear_message(tmp_path, iris_like):
    root, df, _ = iris_like
    with pytest.raises(RunDirError, match="holds no model.json"):
        sgdlab.load(tmp_path)
    with pytest.raises(RunDirError, match="not a directory"):
        sgdlab.load(tmp_path / "nothing")
    newer = tmp_path / "newer"
    newer.mkdir()
    meta = json.loads((root / "run" / "model.json").read_text())
    (newer / "model.json").write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(RunDirError, match="format 99 is newer"):
        sgdlab.load(newer)
    model = sgdlab.load(root / "run")
    X = df[["width", "height", "depth"]]
    with pytest.raises(DataError, match="labels daisy were not among the training classes"):
        model.score(X, np.array(["daisy"] * len(X)))


def test_a_user_model_defined_in_a_function_loads_when_given_back(tmp_path):
    import jax.numpy as jnp

    def init(key, d, k):
        return {"W": jnp.zeros((k, d)), "b": jnp.zeros(k)}

    def apply(p, X):
        return X @ p["W"].T + p["b"]

    net = sgdlab.Model("tiny", init, apply)
    X = np.random.default_rng(2).standard_normal((120, 2)).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    result = sgdlab.fit(X, y, model=net, loss="softmax", epochs=3, out=tmp_path / "u",
                        plots=False)
    with pytest.raises(sgdlab.ConfigError, match=r"pass the same model again, sgdlab.load\("
                                                 r"RUN_DIR, model=...\), or train with an "
                                                 r"import path"):
        sgdlab.load(tmp_path / "u")
    model = sgdlab.load(tmp_path / "u", model=net)
    np.testing.assert_array_equal(model.predict(X), result.predict(X))
    with pytest.raises(TypeError, match="define it at module level and train with model="):
        pickle.dumps(result)


def test_fine_tuning_starts_from_the_trained_parameters(iris_like, tmp_path):
    root, df, first = iris_like
    # zero further steps' worth of change: the same data, lr so small nothing moves
    tuned = sgdlab.fit(str(root / "train.csv"), init=root / "run", epochs=1, lr=1e-12)
    assert tuned.config.model == "mlp" and tuned.config.hidden == (16,)
    assert tuned.config.extra["init"] == str((root / "run").resolve())
    X = df[["width", "height", "depth"]]
    np.testing.assert_allclose(tuned.predict_proba(X), first.predict_proba(X), atol=1e-6)
    # from a FitResult or a loaded model alike, and the run records it
    again = sgdlab.fit(str(root / "train.csv"), init=sgdlab.load(root / "run"), epochs=1,
                       out=tmp_path / "tuned", plots=False)
    assert json.loads((tmp_path / "tuned" / "config.json").read_text())["extra"]["init"] == \
        "Predictor"
    assert again.score(X, df["species"]) > 0.8
    # a different network or other classes are refused with the reason
    with pytest.raises(sgdlab.ConfigError, match="use the same model settings"):
        sgdlab.fit(str(root / "train.csv"), init=first, model="mlp", hidden=(8,), epochs=1)
    two = df[df["species"] != "virginica"]
    with pytest.raises(sgdlab.ConfigError, match="classes must be the same"):
        sgdlab.fit(two[["width", "height", "depth"]], two["species"].to_numpy(), init=first,
                   epochs=1)
