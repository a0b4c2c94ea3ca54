"""The critical batch size measured by branching: against the closed-form noise scale of noisy
linear regression, its rules (keeping up, the largest unbroken size), the reference and the
ladder, and one compiled program per batch size across every branch."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from sgdlab.data import Dataset
from sgdlab.engine import TrainConfig, cache
from sgdlab.lab.batch_warmup import (BRANCH_SEED_STRIDE, CHECKPOINT_EIGHTHS, branch_point,
                                     critical_of, keeps_up, ladder_for, measure_curve,
                                     reference_row)
from sgdlab.lab.runbook import RunBook
from sgdlab.lab.sweep import chunk_steps_for
from sgdlab.lab.warmup_records import BranchRow, LadderStep, WarmupCurve

D, SIGMA = 8, 1.0


@pytest.fixture(scope="module")
def linreg():
    """x ~ N(0, I_d), y = x . w* + eps, eps ~ N(0, sigma^2): a training and a validation set."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal(D).astype(np.float32)

    def part(n, name):
        X = rng.standard_normal((n, D)).astype(np.float32)
        return Dataset(X, (X @ w + SIGMA * rng.standard_normal(n)).astype(np.float32),
                       "regression", name=name)

    return part(40_000, "train"), part(20_000, "validation"), w


def linreg_config(b, lr, seed, steps):
    """Plain SGD on 0.5 (x.W + b - y)^2, batches drawn with replacement (as the theory
    assumes), evaluated at the end."""
    return TrainConfig(model="linreg", standardize=False, sampling="replacement",
                       batch_size=b, lr=lr, seed=seed, epochs=None, max_steps=steps,
                       eval_every="end", chunk_steps=chunk_steps_for(b))


def b_noise(dd: float) -> float:
    """B_noise = B_simple = tr(Sigma)/|G|^2 at W = w* + delta, b = 0, |delta|^2 = dd: the
    Hessian is the identity (isotropic x), so the two scales coincide (see
    test_noise_scale._closed_form)."""
    return ((D + 2) * dd + (D + 1) * SIGMA ** 2) / dd


@pytest.mark.parametrize("dd", [8.0, 0.1])
def test_branches_keep_up_as_the_closed_form_noise_scale_predicts(linreg, dd):
    # McCandlish et al. (2018): at the learning rate alpha * eps_opt(B), eps_opt(B) =
    # 1 / (1 + B_noise / B) for a unit Hessian, a step gains alpha (1 - alpha/2) |G|^2 /
    # (1 + B_noise / B); while the budget's progress is small, the gain of E examples is then
    # proportional to E / (B + B_noise): B makes r_B = (B0 + B_noise) / (B + B_noise) of B0's
    # progress g from the start loss L0. B's loss L0 - r_B g is within tau of B0's, L0 - g,
    # while (1 - r_B) g <= tau (L0 - g): the critical batch size grows with B_noise.
    train, validation, w = linreg
    bn, b0, budget, tau = b_noise(dd), 2, 2 ** 12, 0.05
    alpha = 0.2 * (1 + bn / b0) / (budget // b0)  # B0's budget moves 20% of the way, not more
    ladder = tuple(LadderStep(b, alpha / (1 + bn / b), True) for b in (2, 4, 8, 16, 32, 64, 128))
    delta = np.random.default_rng(1).standard_normal(D)
    delta *= math.sqrt(dd) / np.linalg.norm(delta)
    params = {"W": jnp.asarray((w + delta)[None, :], jnp.float32), "b": jnp.zeros(1)}
    book = RunBook(train, validation, fingerprint="linreg")
    start = book.train(linreg_config(b0, alpha, 0, 1), init_params=params).history[0]
    for seed in (0, 1):
        rows = branch_point(book, params, ladder=ladder, budget_examples=budget, seed=seed,
                            point=0, config_for=linreg_config, metric="val_r2", tolerance=tau)
        assert [r.examples for r in rows] == [budget] * len(ladder)
        assert [r.steps for r in rows] == [budget // r.batch_size for r in rows]
        l0, gain = start["val_loss"], start["val_loss"] - rows[0].val_loss
        for r in rows:
            assert (l0 - r.val_loss) / gain == pytest.approx((b0 + bn) / (r.batch_size + bn),
                                                             abs=0.06), r
        predicted = max(s.batch_size for s in ladder
                        if (1 - (b0 + bn) / (s.batch_size + bn)) * gain <= tau * (l0 - gain))
        assert predicted / 2 <= critical_of(rows) <= 2 * predicted, (rows, predicted, bn)
    # far from the optimum (B_noise 11) the loss falls fast and only B0 keeps up; near it
    # (B_noise 100) the budget's progress is small next to the noise floor and every batch
    # size of the ladder does
    assert predicted == {8.0: 2, 0.1: 128}[dd]


def test_keeping_up_reads_a_loss_down_and_a_metric_up():
    assert keeps_up(0.5, 0.525, 0.05, False) and not keeps_up(0.5, 0.53, 0.05, False)
    assert keeps_up(0.5, 0.1, 0.05, False)               # better always keeps up
    assert keeps_up(0.9, 0.856, 0.05, True) and not keeps_up(0.9, 0.85, 0.05, True)
    assert keeps_up(-0.2, -0.209, 0.05, True)            # an R^2 below 0: |reference|
    assert not keeps_up(0.5, math.nan, 0.05, False)


def _row(b, up):
    return BranchRow(0, 0, b, 0.1, 10, 100, 0.5, 0.9, up)


def test_the_critical_batch_size_is_the_largest_unbroken_one():
    assert critical_of([_row(64, True), _row(16, True), _row(32, True), _row(128, False)]) == 64
    assert critical_of([_row(16, True), _row(32, False), _row(64, True)]) == 32 // 2
    assert critical_of([_row(16, False), _row(32, False)]) == 16  # B0 always keeps up


def test_the_ladder_doubles_from_b0_with_tuned_or_scaled_rates():
    ladder = ladder_for(4, 0.1, {4: 0.1, 16: 0.5}, largest=64, budget_examples=128,
                        rule="sqrt")
    assert [s.batch_size for s in ladder] == [4, 8, 16, 32]  # 64 would make 2 steps
    assert ladder[2] == LadderStep(16, 0.5, True)
    assert ladder[1].lr == pytest.approx(0.1 * math.sqrt(2)) and not ladder[1].tuned


def test_reference_is_the_smallest_batch_size_that_reached():
    class R:
        def __init__(self, b, steps):
            self.batch_size, self.steps_median, self.lr = b, steps, 0.1
    assert reference_row([R(4, math.inf), R(8, 300.0), R(16, 120.0)]).batch_size == 8
    assert reference_row([R(4, math.inf)]) is None


def test_branches_compile_one_program_per_batch_size(linreg):
    train, validation, _ = linreg
    book = RunBook(train, validation, fingerprint="linreg")
    sizes = (4, 8, 16, 32)
    tuned = {b: 0.02 * b / 4 for b in sizes}
    cache.clear()
    curve = measure_curve(book, reference=LadderStep(4, tuned[4], True), reference_steps=128,
                          seeds=[0, 1], tuned=tuned, largest=32, rule="linear",
                          metric="val_r2", config_for=linreg_config)
    assert isinstance(curve, WarmupCurve) and curve.reason == ""
    assert [s.batch_size for s in curve.ladder] == list(sizes)
    assert len(curve.points) == len(CHECKPOINT_EIGHTHS)
    assert [p.step for p in curve.points] == [16 * e for e in CHECKPOINT_EIGHTHS]
    assert len(curve.branches) == len(CHECKPOINT_EIGHTHS) * 2 * len(sizes)
    assert curve.budget_examples == 2 * 16 * 4  # two eighths of B0's way
    # the reference runs and 40 branches: one compiled training program per batch size
    assert cache.stats()["built"]["chunk"] == len(sizes)
    for p in curve.points:
        assert p.low <= p.b_crit <= p.high and set(p.per_seed) <= set(sizes)
    assert WarmupCurve.from_dict(curve.to_dict()) == curve


def test_too_short_a_reference_is_said_not_measured(linreg):
    train, validation, _ = linreg
    curve = measure_curve(RunBook(train, validation, fingerprint="x"),
                          reference=LadderStep(4, 0.1, True), reference_steps=5, seeds=[0],
                          tuned={4: 0.1, 8: 0.1}, largest=8, rule="none", metric="val_r2",
                          config_for=linreg_config)
    assert not curve.measured and "too few to place" in curve.reason
