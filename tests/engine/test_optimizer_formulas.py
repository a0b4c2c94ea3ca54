"""Each learning-rate schedule and each optimiser's update, checked against its formula.

A full-batch linear least-squares problem has the exact gradient

    J(W, b) = mean_i 0.5 (x_i W^T + b - y_i)^2,   dJ/dW = r^T X / N,   dJ/db = mean(r),

with ``r = X W^T + b - y``, so a NumPy re-implementation of the textbook updates, started from
the same parameters, must reproduce the engine's parameters step by step (float32 against a
float64 reference: ~1e-5 relative). Plain SGD with a schedule also gives back the rate it
applied at each step, ``-<dw, g> / <g, g>``, read from the parameters of a history row per step.
"""

import math

import numpy as np
import pytest

from sgdlab.data import Dataset
from sgdlab.engine import TrainConfig, train

N, D, STEPS = 64, 4, 12
EVERY = max(1, STEPS // 3)   # make_schedule's default decay_every: T / 3 steps
DECAY = 0.5                  # ... and its default decay
MU = 0.9                     # TrainConfig's default momentum
B1, B2, EPS = 0.9, 0.999, 1e-8  # optax.adam's defaults
WD = 0.5                     # adamw's weight decay here (large, to be seen)


def _problem():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, D)).astype(np.float32)
    y = (X @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.7 + 0.1 * rng.normal(size=N)).astype(np.float32)
    init = {"W": rng.normal(size=(1, D)).astype(np.float32),
            "b": np.array([0.3], np.float32)}
    return Dataset(X, y, task="regression"), init


DATA, INIT = _problem()


def _grad(w: np.ndarray) -> np.ndarray:
    """Gradient of J at the flat parameters ``w = (W_1..W_d, b)``, float64."""
    X, y = DATA.X.astype(np.float64), DATA.y.astype(np.float64)
    r = X @ w[:D] + w[D] - y
    return np.append(r @ X / N, r.mean())


def _flat(params) -> np.ndarray:
    return np.append(np.asarray(params["W"], np.float64)[0], np.asarray(params["b"], np.float64))


def rate(schedule: str, lr: float, t: int) -> float:
    """``make_schedule``'s documented rate at step ``t`` (0 for the first update)."""
    if schedule == "constant":
        return lr
    if schedule == "step":
        return lr * DECAY ** (t // EVERY)
    if schedule == "inverse-time":
        return lr / (1 + DECAY * t / EVERY)
    if schedule == "exponential":
        return lr * DECAY ** (t / EVERY)
    if schedule == "cosine":
        return lr * (1 + math.cos(math.pi * t / STEPS)) / 2
    raise AssertionError(schedule)


def reference(optimizer: str, schedule: str, lr: float, steps: int = STEPS) -> list[np.ndarray]:
    """The flat parameters after 0, 1, ..., ``steps`` textbook updates."""
    w = _flat(INIT)
    m, v = np.zeros_like(w), np.zeros_like(w)
    out = [w.copy()]
    for t in range(steps):
        g, a = _grad(w), rate(schedule, lr, t)
        if optimizer == "sgd":
            u = g
        elif optimizer == "momentum":    # heavy ball: v <- mu v + g, w <- w - a v
            m = MU * m + g
            u = m
        elif optimizer == "nesterov":    # optax: v <- mu v + g, w <- w - a (g + mu v)
            m = MU * m + g
            u = g + MU * m
        elif optimizer in ("adam", "adamw"):  # bias-corrected moments, eps outside the root
            m = B1 * m + (1 - B1) * g
            v = B2 * v + (1 - B2) * g * g
            u = (m / (1 - B1 ** (t + 1))) / (np.sqrt(v / (1 - B2 ** (t + 1))) + EPS)
            if optimizer == "adamw":       # decoupled: the decay is not in the moments
                u = u + WD * w
        else:
            raise AssertionError(optimizer)
        w = w - a * u
        out.append(w.copy())
    return out


def run(optimizer: str, schedule: str, lr: float) -> list[np.ndarray]:
    """The engine's flat parameters at every step (one history row per step), full batch."""
    options = {"weight_decay": WD} if optimizer == "adamw" else {}
    cfg = TrainConfig(model="linreg", optimizer=optimizer, schedule=schedule, lr=lr, **options,
                      batch_size=N, sampling="sequential", max_steps=STEPS, epochs=None,
                      eval_every="1 steps", chunk_steps=1, standardize=False, seed=0)
    seen = {}
    r = train(DATA, None, cfg, init_params=INIT, callback=lambda e: seen.setdefault(
        e["row"]["step"], _flat(e["params"])) if e["event"] == "row" else None)
    assert r.steps == STEPS and sorted(seen) == list(range(STEPS + 1))
    np.testing.assert_array_equal(_flat(r.params), seen[STEPS])
    return [seen[t] for t in range(STEPS + 1)]


def assert_path(got, ref, rtol=1e-5):
    """Every step's parameters within ``rtol`` of the reference's, relative to their norm
    (float32 rounding: Adam divides by sqrt(v), which magnifies it in a small coordinate)."""
    for t, (a, b) in enumerate(zip(got, ref)):
        assert np.linalg.norm(a - b) <= rtol * np.linalg.norm(b), (t, a, b)


def test_the_reference_problem_is_not_degenerate():
    """Every coordinate of the gradient matters, and the rate formulas really decay."""
    assert np.abs(_grad(_flat(INIT))).min() > 0.1
    for s in ("step", "inverse-time", "exponential"):
        rates = [rate(s, 1.0, t) for t in range(STEPS)]
        assert rates[0] == 1.0 and rates[-1] < 0.6 and all(np.diff(rates) <= 0)


@pytest.mark.parametrize("schedule", ["step", "inverse-time", "exponential", "cosine"])
def test_sgd_applies_the_scheduled_rate_at_every_step(schedule):
    lr = 0.2
    got = run("sgd", schedule, lr)
    applied = []
    for t in range(STEPS):
        g, dw = _grad(got[t]), got[t + 1] - got[t]
        applied.append(-float(dw @ g) / float(g @ g))
    np.testing.assert_allclose(applied, [rate(schedule, lr, t) for t in range(STEPS)],
                               rtol=1e-4)
    assert_path(got, reference("sgd", schedule, lr))


@pytest.mark.parametrize("optimizer,schedule,lr", [
    ("momentum", "constant", 0.05), ("nesterov", "constant", 0.05), ("adam", "constant", 0.1),
    ("nesterov", "exponential", 0.05), ("adam", "step", 0.1), ("adamw", "constant", 0.1)])
def test_optimizer_update_matches_its_formula(optimizer, schedule, lr):
    got = run(optimizer, schedule, lr)
    assert_path(got, reference(optimizer, schedule, lr))
    # ... and differs from plain SGD's path (and adamw's from adam's) by far more than that
    other = reference("adam" if optimizer == "adamw" else "sgd", schedule, lr)
    assert np.abs(got[STEPS] - other[STEPS]).max() > 1e-2
