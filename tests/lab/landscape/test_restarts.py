"""Restarts: convex solutions coincide, network solutions differ with equal accuracy."""

import numpy as np
import pytest

from sgdlab.engine import train
from sgdlab.errors import ConfigError
from sgdlab.lab import Problem, flatten, relative_distance, run_restarts
from sgdlab.lab.restarts import distance_matrix, verdict


def test_l2_logistic_restarts_coincide(convex_restarts):
    r = convex_restarts
    assert r.mean_distance < 1e-3, r.distances
    assert r.kind == "convex-like"
    assert r.summary.startswith("convex-like: the solutions coincide")
    assert f"{r.mean_distance:.2e}" in r.summary
    assert r.accuracy_spread_points <= 0.5


def test_mlp_restarts_are_distinct_with_equal_accuracy(mlp_restarts):
    r = mlp_restarts
    assert r.pairwise.min() > 0.1, r.distances
    assert r.accuracy_spread_points <= 2.0, r.val_accuracy
    assert r.kind == "non-convex"
    assert "distinct solutions with equal accuracy" in r.summary
    assert f"{r.mean_distance:.3f}" in r.summary


def test_same_seed_gives_identical_parameters(mlp_problem, mlp_restarts):
    p = mlp_problem
    again = train(p.train, p.validation, p.config.replace(seed=0), model=p.model, loss=p.loss,
                  standardizer=p.standardizer)
    first = mlp_restarts.results[0]
    np.testing.assert_array_equal(flatten(again.params), flatten(first.params))
    assert again.history.without_time() == first.history.without_time()
    assert relative_distance(flatten(again.params), flatten(first.params)) == 0.0


def test_distance_matrix_is_symmetric_and_scale_free():
    a, b = np.array([3.0, 4.0]), np.array([-3.0, -4.0])
    d = distance_matrix([a, b, 2 * a])
    np.testing.assert_array_equal(d, d.T)
    assert d[0, 1] == 1.0                            # opposite vectors: the maximum
    assert d[0, 2] == pytest.approx(5 / 15)          # |a - 2a| / (|a| + |2a|)
    assert relative_distance(10 * a, 20 * a) == pytest.approx(d[0, 2])


@pytest.mark.parametrize("dist, spread, kind", [
    (1e-5, 0.0, "convex-like"), (0.03, 0.5, "unsettled"), (0.7, 1.5, "non-convex"),
    (0.7, 6.0, "unequal"), (0.7, float("nan"), "non-convex")])
def test_verdict_kinds(dist, spread, kind):
    assert verdict(dist, spread)[0] == kind


def test_restart_errors(convex_problem, digits_ds):
    with pytest.raises(ConfigError, match="at least 2 seeds"):
        run_restarts(convex_problem, seeds=[0])
    with pytest.raises(ConfigError, match="seeds must differ"):
        run_restarts(convex_problem, seeds=[1, 1])
    no_val = Problem(convex_problem.train, None, convex_problem.config, convex_problem.model,
                     convex_problem.loss, convex_problem.standardizer)
    with pytest.raises(ConfigError, match="validation fraction"):
        run_restarts(no_val, seeds=[0, 1])
