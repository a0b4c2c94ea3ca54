"""Saddle demos: Hessian eigenvalues at the critical point and the gradient-norm plateau."""

import numpy as np
import pytest

from sgdlab.errors import ConfigError
from sgdlab.lab import saddle_demo
from sgdlab.lab.saddle import classify, find_critical_point


def test_x2_minus_y2_is_a_saddle_with_opposite_eigenvalues():
    d = saddle_demo("saddle")
    assert d.critical_point == (0.0, 0.0)
    np.testing.assert_allclose(sorted(d.eigenvalues), [-2.0, 2.0], atol=1e-12)
    assert d.eigenvalues.min() < 0 < d.eigenvalues.max()
    assert d.kind == "saddle"
    assert "eigenvalues [-2, +2] -> saddle" in d.summary


def test_monkey_saddle_is_degenerate():
    d = saddle_demo("monkey")
    np.testing.assert_allclose(d.critical_point, (0.0, 0.0), atol=1e-9)
    np.testing.assert_allclose(d.eigenvalues, 0.0, atol=1e-9)
    assert d.kind == "degenerate"


def test_descent_stalls_near_the_saddle_then_escapes():
    d = saddle_demo("saddle", starts=[(1.0, 1e-3)], lr=0.1, steps=200)
    g = d.grad_norms[0]
    low = int(np.argmin(g))
    assert 0 < low < len(g) - 1                  # the plateau lies inside the run
    assert g[low] < 0.05 * g[0] and g[-1] > 10 * g[low]
    assert np.abs(d.paths[0][-1, 1]) > 1.0       # escaped along the descending y axis


def test_newton_finds_an_off_origin_critical_point():
    def f(p):
        return (p[0] - 1.0) ** 2 - (p[1] + 0.5) ** 2
    np.testing.assert_allclose(find_critical_point(f, (0.0, 0.0)), (1.0, -0.5), atol=1e-12)


@pytest.mark.parametrize("eig, kind", [((1.0, 2.0), "minimum"), ((-1.0, -3.0), "maximum"),
                                       ((-2.0, 2.0), "saddle"), ((0.0, 1.0), "degenerate"),
                                       ((-1.0, 0.0, 1.0), "saddle")])
def test_classify(eig, kind):
    assert classify(eig) == kind


def test_unknown_demo_and_bad_settings():
    with pytest.raises(ConfigError, match="unknown saddle demo 'horse'.*monkey, saddle"):
        saddle_demo("horse")
    with pytest.raises(ConfigError, match="lr > 0"):
        saddle_demo("saddle", lr=0.0)
