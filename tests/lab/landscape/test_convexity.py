"""The chord-inequality probe and the 1-D interpolation barrier."""

import numpy as np
import pytest

from sgdlab.errors import ConfigError
from sgdlab.lab import flatten, interpolate, probe_convexity
from sgdlab.lab.interpolate import barrier_height


def _solutions(rep):
    return [flatten(r.params) for r in rep.results]


def test_no_violation_for_l2_logistic(convex_problem, convex_restarts):
    params = convex_restarts.results[0].params
    rep = probe_convexity(convex_problem.surface(params, x64=True), params, n_random=20,
                          solutions=_solutions(convex_restarts), labels=convex_restarts.seeds)
    assert rep.n_segments == 20 + 10
    assert rep.violations == []
    assert rep.summary.startswith("no violation in 30 segments")


def test_violations_for_mlp(mlp_problem, mlp_restarts):
    params = mlp_restarts.results[0].params
    rep = probe_convexity(mlp_problem.surface(params, x64=True), params, n_random=5,
                          solutions=_solutions(mlp_restarts), labels=mlp_restarts.seeds)
    assert len(rep.violations) >= 1
    worst = rep.violations[0]
    assert worst["segment"].startswith("solutions")
    assert worst["value"] > worst["chord"] and worst["relative_gap"] > 0.1
    assert "violations in 8 segments" in rep.summary and "not convex" in rep.summary


def test_interpolation_barrier_mlp_vs_convex(convex_problem, convex_restarts, mlp_problem,
                                             mlp_restarts):
    for problem, rep, has_barrier in ((convex_problem, convex_restarts, False),
                                      (mlp_problem, mlp_restarts, True)):
        like = rep.results[0].params
        wa, wb = _solutions(rep)[:2]
        it = interpolate(wa, wb, problem.surface(like), problem.surface(like, "validation"))
        assert it.t[0] == -0.25 and it.t[-1] == 1.25
        # the end points are the trained solutions: their validation accuracy is reproduced
        assert it.val_accuracy[np.isclose(it.t, 0)][0] == pytest.approx(rep.val_accuracy[0])
        assert (it.barrier_relative > 0.5) == has_barrier, it.barrier_relative
        if not has_barrier:
            assert it.barrier_relative < 1e-4


def test_barrier_height_of_known_curves():
    t = np.linspace(-0.25, 1.25, 61)
    assert barrier_height(t, (t - 0.5) ** 2) == pytest.approx(0.0, abs=1e-12)
    bump = 1.0 + 2.0 * np.exp(-((t - 0.5) / 0.1) ** 2)
    assert barrier_height(t, bump) == pytest.approx(2.0, rel=1e-6)
    with pytest.raises(ConfigError, match="must include t = 0 and t = 1"):
        barrier_height(np.array([0.1, 0.5]), np.array([1.0, 2.0]))


def test_probe_errors(convex_problem, convex_restarts):
    params = convex_restarts.results[0].params
    s = convex_problem.surface(params)
    with pytest.raises(ConfigError, match="radius > 0"):
        probe_convexity(s, params, radius=0.0)
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        probe_convexity(s, params, n_random=2, ts=(0.5, 1.0))
    with pytest.raises(ConfigError, match="nothing to probe"):
        probe_convexity(s, params, n_random=0, solutions=[flatten(params)])
