"""Steps to target fall in proportion to the batch size at small batches, then flatten
(Shallue et al. 2018), on a problem built to show it.

Linear regression with an ill-conditioned input covariance (eigenvalues from 0.05 to 1) and
little label noise. For SGD on a quadratic, the best learning rate grows like
``B / (B + B_noise)``: small batches must take small steps (more steps), while beyond the
critical batch size even full-batch gradient descent needs about ``kappa * log(1/eps)`` steps
because of the conditioning, however large the batch.
"""

import math

import numpy as np
import pytest

from sgdlab.data import Dataset
from sgdlab.engine import TrainConfig
from sgdlab.lab.scaling_fit import fit_steps_scaling
from sgdlab.lab.sweep import SweepConfig, run_sweep


@pytest.fixture(scope="module")
def scaling_sweep():
    rng = np.random.default_rng(0)
    n, d = 5120, 16
    X = (rng.standard_normal((n, d)) * np.sqrt(np.geomspace(0.05, 1.0, d))).astype(np.float32)
    y = (X @ rng.standard_normal(d) + 0.1 * rng.standard_normal(n)).astype(np.float32)
    ds = Dataset(X, y, "regression", name="ill-conditioned linreg")
    sweep = SweepConfig(batch_sizes=(1, 16, 256), lr=1.0, lr_scaling="none",
                        lr_grid=(0.25, 1.0), seeds=1, target=0.9, budget="200 steps",
                        eval_every="2 steps", probe=False, noise=False)
    return run_sweep(ds, sweep, TrainConfig(model="linreg", standardize=False))


def test_steps_fall_then_flatten(scaling_sweep):
    steps = {g.batch_size: g.steps_best for g in scaling_sweep.batches}
    assert all(math.isfinite(s) for s in steps.values()), steps
    small_gain = steps[1] / steps[16]    # 16x the batch at the small end
    large_gain = steps[16] / steps[256]  # 16x the batch at the large end
    assert small_gain > 4, steps         # close to proportional: many fewer steps
    assert large_gain < 4, steps         # far from the 16x of perfect scaling
    assert small_gain > 2 * large_gain, steps


def test_best_lr_per_batch_size_grows_and_small_batches_diverge_at_large_lr(scaling_sweep):
    best = {g.batch_size: g.steps_best_lr for g in scaling_sweep.batches}
    assert best == {1: 0.25, 16: 1.0, 256: 1.0}
    status = {(r.batch_size, r.lr): r.status for r in scaling_sweep.runs}
    assert status[(1, 1.0)] == "diverged"      # marked, and the sweep went on


def test_scaling_fit_places_the_critical_batch_inside_the_range(scaling_sweep):
    fit = scaling_sweep.recommendation.scaling
    assert 1 < fit.b_crit < 256
    assert any("flatten beyond" in s for s in scaling_sweep.recommendation.sentences)


def test_fit_recovers_a_known_curve():
    b = np.array([1, 2, 4, 8, 16, 32, 64, 128.0])
    steps = 50 * (1 + 20 / b)
    fit = fit_steps_scaling(b, steps)
    assert fit.s_min == pytest.approx(50, rel=1e-6)
    assert fit.b_crit == pytest.approx(20, rel=1e-6)
    assert math.isinf(fit_steps_scaling(b, 1000 / b).b_crit) or \
        fit_steps_scaling(b, 1000 / b).b_crit > 1e6
    assert fit_steps_scaling(b, np.full(8, 30.0)).b_crit == 0.0
    assert math.isnan(fit_steps_scaling([4], [10]).b_crit)


def test_fit_reports_its_quality_and_a_poor_fit_names_no_critical_batch():
    b = np.array([1, 2, 4, 8, 16, 32, 64, 128.0])
    good = fit_steps_scaling(b, 50 * (1 + 20 / b))
    assert good.good and good.rel_rms < 1e-9
    # Steps that fall like B^-0.4 all the way: the two-regime model does not describe them.
    poor = fit_steps_scaling(b, 2000 * b ** -0.4 * (1 + 0.3 * np.sin(b)))
    assert not poor.good and poor.rel_rms > 0.15
    from sgdlab.lab.scaling_fit import scaling_sentence
    text = scaling_sentence(poor, b, 2000 * b ** -0.4 * (1 + 0.3 * np.sin(b)))
    assert "no critical batch size is read off it" in text and "B_crit =" not in text
