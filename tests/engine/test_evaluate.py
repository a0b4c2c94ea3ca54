"""The compiled whole-set evaluation against NumPy, for any set size and block size."""

import jax
import numpy as np
import pytest

from sgdlab.engine.evaluate import compile_evaluator, make_evaluator, metrics_from_stats, to_blocks
from sgdlab.tasks import resolve


@pytest.mark.parametrize("n,block", [(7, 3), (10, 10), (1, 4), (2049, 2048)])
def test_classification_metrics_match_numpy(n, block):
    rng = np.random.default_rng(n)
    model, loss = resolve("softmax")
    params = model.init(jax.random.PRNGKey(0), 5, 3)
    X = rng.normal(size=(n, 5)).astype(np.float32)
    y = rng.integers(0, 3, n).astype(np.int32)
    data = to_blocks(X, y, y, block)
    ev = compile_evaluator(make_evaluator(model, loss, 0.1, False), params, data)
    m = metrics_from_stats(*ev(params, data.X, data.T, data.Y, data.W), regression=False)
    s = X @ np.asarray(params["W"]).T + np.asarray(params["b"])
    lse = np.log(np.exp(s - s.max(1, keepdims=True)).sum(1)) + s.max(1)
    ref_loss = np.mean(lse - s[np.arange(n), y]) + 0.1 * 0.5 * np.sum(np.asarray(params["W"]) ** 2)
    assert m["val_accuracy"] == pytest.approx(np.mean(s.argmax(1) == y))
    assert m["val_loss"] == pytest.approx(ref_loss, rel=1e-5)


def test_r2_survives_a_large_label_mean():
    """Targets around 1e4 with spread 1: uncentred float32 sums would cancel to garbage."""
    rng = np.random.default_rng(0)
    model, loss = resolve("linreg")
    X = rng.normal(size=(500, 2)).astype(np.float32)
    y = (1e4 + X[:, 0]).astype(np.float32)
    params = {"W": np.array([[1.0, 0.0]], np.float32), "b": np.array([1e4], np.float32)}
    data = to_blocks(X, y, y, 128)
    ev = compile_evaluator(make_evaluator(model, loss, 0.0, True, center=1e4), params, data)
    m = metrics_from_stats(*ev(params, data.X, data.T, data.Y, data.W), regression=True)
    assert m["val_r2"] == pytest.approx(1.0, abs=1e-3)
