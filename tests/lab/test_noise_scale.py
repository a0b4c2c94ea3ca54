"""Gradient noise scale: unbiased two-batch estimators against a closed-form truth."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from sgdlab.data import Dataset, split
from sgdlab.engine import TrainConfig, train
from sgdlab.errors import ConfigError
from sgdlab.lab.noise import (NoiseScaleMeter, estimate_noise_scale, meter_for_fit,
                              ratio_with_interval, unbiased)
from sgdlab.lab.prepare import prepare, training_part


def _linreg_problem(n=50_000, d=8, sigma=1.0, seed=0):
    """x ~ N(0, I_d), y = x . w* + eps with eps ~ N(0, sigma^2)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    w_star = rng.standard_normal(d).astype(np.float32)
    y = (X @ w_star + sigma * rng.standard_normal(n)).astype(np.float32)
    return Dataset(X, y, "regression", name="linreg-noise"), w_star


def _closed_form(delta: np.ndarray, d: int, sigma: float) -> float:
    """B_simple at W = w* + delta, b = 0, for the loss 0.5 (x.W + b - y)^2.

    Per-example gradient: (x r, r) with residual r = x.delta - eps. Then G = (delta, 0) and,
    by Isserlis' theorem E[x x^T (x.delta)^2] = |delta|^2 I + 2 delta delta^T, so
    tr Sigma_W = (d + 1)|delta|^2 + d sigma^2 and Var(r) = |delta|^2 + sigma^2 for the bias.
    """
    dd = float(delta @ delta)
    return ((d + 2) * dd + (d + 1) * sigma ** 2) / dd


@pytest.mark.parametrize("scale", [0.5, 1.0])
def test_b_simple_matches_closed_form_on_noisy_linear_regression(scale):
    d, sigma = 8, 1.0
    ds, w_star = _linreg_problem(d=d, sigma=sigma)
    prepared = prepare(ds, TrainConfig(model="linreg", standardize=False))
    delta = scale * np.random.default_rng(1).standard_normal(d).astype(np.float32) / math.sqrt(d)
    params = {"W": jnp.asarray((w_star + delta)[None, :]), "b": jnp.zeros(1)}
    est = estimate_noise_scale(params, prepared, b_small=8, b_big=256, draws=512, seed=3)
    truth = _closed_form(delta, d, sigma)
    assert abs(est.b_simple - truth) / truth < 0.2, (est, truth)
    assert est.low < est.b_simple < est.high
    # The interval is honest: the truth lies within a few of its half-widths.
    assert abs(est.b_simple - truth) < 4 * (est.high - est.low)
    assert est.grad_sq == pytest.approx(float(delta @ delta), rel=0.2)


def test_estimators_are_unbiased_on_exact_expectations():
    # Feed E|G_B|^2 = |G|^2 + tr(Sigma)/B exactly: the estimators return |G|^2 and tr(Sigma).
    g2, tr = 2.0, 50.0
    small, big = g2 + tr / 4, g2 + tr / 64
    eg2, es = unbiased([small], [big], 4, 64)
    assert eg2[0] == pytest.approx(g2) and es[0] == pytest.approx(tr)
    est = ratio_with_interval(np.full(10, g2), np.full(10, tr), 4, 64)
    assert est.b_simple == pytest.approx(25.0) and est.low == pytest.approx(25.0)


def test_meter_during_training_puts_estimate_in_result(digits_ds):
    config = TrainConfig(model="softmax", batch_size=32, epochs=1, lr=0.1,
                         eval_every="0.25 epochs")
    meter = meter_for_fit(digits_ds, config, b_small=4, b_big=128, draws=8)
    parts = split(digits_ds, 0.2, 0.0, seed=0)
    result = train(parts.train, parts.validation, config, callback=meter)
    assert training_part(digits_ds, config).n == parts.train.n
    assert len(meter.steps) == len(result.history) == 5
    est = result.extra["noise_scale"]
    assert math.isfinite(est) and est > 0
    assert result.extra["noise_scale_low"] <= est <= result.extra["noise_scale_high"]
    trace = meter.trace()
    assert [t["step"] for t in trace] == [r["step"] for r in result.history]


def test_bad_noise_batches_are_config_errors(digits_ds):
    prepared = prepare(digits_ds, TrainConfig())
    with pytest.raises(ConfigError, match="small < big"):
        NoiseScaleMeter(prepared, b_small=64, b_big=64)
    with pytest.raises(ConfigError, match="--noise-batches"):
        estimate_noise_scale(None, prepared, b_small=0, b_big=8)


def test_the_noise_runs_programs_compiled_ahead_give_the_same_measurement(digits_ds):
    """The sweep compiles the noise run's meter and curvature programs in a thread while its
    searches run, from a run of another batch size and learning rate: they depend on shapes
    only, and the measurement is the one the noise run makes compiling them itself."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    from sgdlab.lab.sweep_noise import (compile_noise_programs, lower_noise_programs,
                                        measure_noise)
    parts = split(digits_ds, validation=0.2, seed=0)
    cfg = TrainConfig(model="softmax", batch_size=32, lr=0.5, target=0.9, max_steps=200,
                      eval_every="10 steps", seed=0)
    sizes = [8, 32, 128]
    lowered = lower_noise_programs(parts.train, cfg.replace(batch_size=8, lr=0.01), sizes,
                                   None, 4)
    with ThreadPoolExecutor(max_workers=1) as pool:
        programs = pool.submit(compile_noise_programs, lowered).result()
    ahead = measure_noise(parts.train, parts.validation, cfg, sizes, None, 4,
                          programs=programs)
    alone = measure_noise(parts.train, parts.validation, cfg, sizes, None, 4)
    assert json.dumps(ahead, sort_keys=True) == json.dumps(alone, sort_keys=True)
    assert ahead["trace"] and ahead["estimate"]["b_small"] == 8
