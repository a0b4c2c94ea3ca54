"""A diverged ``sgdlab.fit`` warns, as the estimators do, and so does scoring its model."""

import math

import numpy as np
import pytest

import sgdlab
from sgdlab.errors import DivergedWarning


def test_a_diverged_fit_warns_and_its_score_says_so():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((256, 4)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0, 0.5, 3.0]) + rng.standard_normal(256)).astype(np.float32)
    with pytest.warns(DivergedWarning, match=r"Training diverged at step \d+.*smaller learning"):
        result = sgdlab.fit(X, y, task="regression", model="linreg", lr=50.0, epochs=2)
    assert result.status == "diverged"
    with pytest.warns(DivergedWarning, match="scoring a model whose training diverged"):
        r2 = result.score(X, y)
    assert not math.isnan(r2)  # the last finite parameters' R^2, without an overflow warning


def test_a_healthy_fit_does_not_warn(recwarn):
    X = np.random.default_rng(1).standard_normal((128, 3)).astype(np.float32)
    result = sgdlab.fit(X, (X[:, 0] > 0).astype(int), model="logistic", epochs=2)
    result.score(X, (X[:, 0] > 0).astype(int))
    assert not [w for w in recwarn if issubclass(w.category, DivergedWarning)]


def test_a_non_finite_optimiser_state_is_divergence_not_a_crash(tmp_path):
    """Adam's second moment overflows (g^2 > float32 max) while the parameters and the loss
    stay finite: the run stops as diverged, keeps the last finite state and writes its files."""
    from sgdlab.cli.main import main
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((200, 3)) * 1e20).astype(np.float32)
    y = (X[:, 0] > 0).astype(int)
    with pytest.warns(DivergedWarning, match="optimiser state became NaN/inf"):
        result = sgdlab.fit(X, y, optimizer="adam", lr=0.01, standardize=False, epochs=2,
                            out=tmp_path / "r", plots=False)
    assert result.status == "diverged" and result.diverged_at_step == 1
    assert all(np.isfinite(np.asarray(leaf)).all()
               for leaf in __import__("jax").tree_util.tree_leaves(result.opt_state))
    for name in ("metrics.json", "params.npz", "model.json", "history.csv"):
        assert (tmp_path / "r" / name).is_file()
    np.save(tmp_path / "big.npy", np.column_stack([X, y]))
    assert main(["train", "--data", str(tmp_path / "big.npy"), "--optimizer", "adam",
                 "--no-standardize", "--out", str(tmp_path / "cli"), "--quiet"]) == 1
