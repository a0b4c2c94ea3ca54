"""Real-valued labels: an MLP takes the squared loss, targets are standardised by default and
predictions come back in the original units."""

import json

import numpy as np
import pytest

import sgdlab
from sgdlab.data import TargetScaler
from sgdlab.errors import DataError, DivergedWarning
from sgdlab.engine import TrainConfig
from sgdlab.tasks import REGRESSION_MLP_LR, default_lr


def _regression(n=400, d=6, offset=150.0, spread=80.0, seed=0):
    """Targets in the hundreds, like a house price or a disease score."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    signal = np.tanh(X[:, 0]) + 0.5 * X[:, 1] * X[:, 2] - 0.3 * X[:, 3]
    y = offset + spread * (signal + 0.1 * rng.standard_normal(n))
    return X, y.astype(np.float32)


def test_target_scaler_round_trips_and_keeps_constant_targets_finite():
    y = np.array([100.0, 150.0, 200.0, 250.0])
    ts = TargetScaler().fit(y)
    z = ts.transform(y)
    assert z.dtype == np.float32
    assert abs(float(z.mean())) < 1e-6 and abs(float(z.std()) - 1) < 1e-6
    np.testing.assert_allclose(ts.inverse(z), y, rtol=1e-6)
    assert TargetScaler.from_dict(json.loads(json.dumps(ts.to_dict()))).to_dict() == ts.to_dict()
    assert TargetScaler().fit(np.full(5, 7.0)).scale == 1.0
    with pytest.raises(DataError, match="finite targets"):
        TargetScaler().fit(np.array([1.0, np.nan]))
    with pytest.raises(DataError, match="scale > 0"):
        TargetScaler.from_dict({"mean": 0.0, "scale": 0.0})


def test_an_mlp_on_real_labels_trains_with_the_squared_loss_and_default_settings(tmp_path):
    X, y = _regression()
    result = sgdlab.fit(X, y, task="regression", model="mlp", epochs=20, out=tmp_path / "run",
                        plots=False)
    assert result.status == "completed"
    assert result.loss.name == "squared"
    assert result.config.lr == REGRESSION_MLP_LR
    ts = result.target_scaler
    # fitted on the training part (80% of the rows): near, not equal to, the mean of all
    assert ts is not None and abs(ts.mean - float(y.mean())) < 0.1 * float(y.std())
    # Predictions are in the original units: their mean is near the targets' mean, and the
    # R^2 of those predictions is the validation R^2 the run recorded (same split and data).
    pred = result.predict(X)
    assert abs(float(pred.mean()) - float(y.mean())) < 0.1 * float(y.std())
    assert result.score(X, y) > 0.5
    assert result.history[-1]["val_r2"] > 0.5
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["target_scaler"] == ts.to_dict()


def test_the_raw_targets_diverge_where_standardised_ones_train():
    X, y = _regression()
    with pytest.warns(DivergedWarning):
        raw = sgdlab.fit(X, y, task="regression", model="mlp", epochs=5, lr=0.02,
                         standardize=False)
    assert raw.status == "diverged" and raw.target_scaler is None
    scaled = sgdlab.fit(X, y, task="regression", model="mlp", epochs=5, lr=0.02)
    assert scaled.status == "completed" and scaled.history[-1]["val_r2"] > 0.5


def test_a_given_learning_rate_is_kept():
    X, y = _regression()
    result = sgdlab.fit(X, y, task="regression", model="mlp", epochs=1, lr=0.02)
    assert result.config.lr == 0.02
    linear = sgdlab.fit(X, y, task="regression", model="linear", epochs=1)
    assert linear.loss.name == "squared" and linear.config.lr == TrainConfig().lr


def test_default_lr_follows_the_model_and_the_targets():
    assert default_lr("mlp", None, "regression") == REGRESSION_MLP_LR
    assert default_lr("mlp", "squared", "classification") == REGRESSION_MLP_LR
    assert default_lr("mlp", None, "classification") is None  # the config's default
    assert default_lr("linreg", None, "regression") is None
