"""Kink detection is relative to the function's local scale, not to its value (issue 14)."""

import jax.numpy as jnp
import numpy as np
import pytest

from sgdlab.grad.check import check_gradient

W7 = jnp.linspace(-1.0, 1.0, 7)


@pytest.mark.parametrize("offset", [0.0, 1.0, -3.0, 1e6])
def test_smooth_function_has_no_kinks_whatever_its_value(offset):
    """sum(sin(w) w^2) at seven points of [-1, 1] is 0 by symmetry: no kink, and it passes."""
    report = check_gradient(lambda w: jnp.sum(jnp.sin(w) * w ** 2) + offset, W7)
    (t,) = report.tensors
    assert t.kinks == 0 and t.verdict in ("good", "ok") and report.passed


def test_w_cubed_at_zero_passes():
    """The centred difference of w^3 at 0 is h^2, not 0: that is truncation, not an error."""
    report = check_gradient(lambda w: jnp.sum(w ** 3), jnp.array([0.0, 0.5, -0.25]))
    (t,) = report.tensors
    assert t.kinks == 0 and t.verdict in ("good", "ok")


@pytest.mark.parametrize("offset", [0.0, 1.0])
def test_relu_kinks_within_h_are_found_near_zero_value(offset):
    w = jnp.array([0.0, 1.0, -2.0, 3e-6, -5e-6, 9e-6, 2e-5])  # kinks within h = 1e-5: 0, 3e-6,
    report = check_gradient(                                   # -5e-6 and 9e-6
        lambda w: jnp.sum(3.0 * jnp.maximum(w, 0.0)) - 3 * 2e-5 + offset, w)
    (t,) = report.tensors
    assert t.kinks == 4 and report.passed


def test_small_relu_kink_beside_a_large_slope_is_found():
    """A slope jump of 1e-4 of the largest slope is still a kink."""
    w = jnp.array([0.0, 0.3])
    report = check_gradient(lambda w: 1e-4 * jnp.maximum(w[0], 0.0) + jnp.sin(w[1]) - 0.3, w)
    (t,) = report.tensors
    assert t.kinks == 1


def test_wrong_gradient_of_a_function_near_zero_still_fails():
    def grad(w):
        g = jnp.cos(w) * w ** 2 + 2 * w * jnp.sin(w)
        return g.at[1].multiply(1.01)

    report = check_gradient(lambda w: jnp.sum(jnp.sin(w) * w ** 2), W7, grad=grad)
    (t,) = report.tensors
    assert t.kinks == 0 and t.verdict == "fail" and t.worst_index == (1,)
    assert t.max_rel_error == pytest.approx(0.01 / 1.01, rel=1e-3)


def test_hinge_objective_near_zero_keeps_its_kinks():
    """Hinge terms summing to nearly 0 at the point: the kinks are found from slopes."""
    x = np.array([1.0, -2.0, 0.5])
    w = jnp.array([1.0, -0.5, 2.0])   # margins x*w = 1, 1, 1: each term on its kink
    report = check_gradient(lambda w: jnp.sum(jnp.maximum(0.0, 1.0 - x * w)), w)
    (t,) = report.tensors
    assert t.kinks == 3 and report.passed  # jax's derivative at a tie is the mean slope
