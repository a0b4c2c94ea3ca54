"""The gradient noise scale ``B_simple`` (McCandlish et al. 2018, "An Empirical Model of
Large-Batch Training", Appendix A), measured from gradient norms at two batch sizes.

With per-example gradients of mean ``G`` and covariance ``Sigma`` (over the training set), the
mean gradient of a batch of ``B`` examples drawn uniformly with replacement satisfies

.. math:: \\mathbb{E}\\,|G_B|^2 = |G|^2 + \\frac{\\operatorname{tr}\\Sigma}{B}.

Measuring ``|G_B|^2`` at a small and a big batch size ``b < B`` gives unbiased estimators

.. math::
    |\\mathcal{G}|^2 = \\frac{B |G_B|^2 - b |G_b|^2}{B - b}, \\qquad
    \\mathcal{S} = \\frac{|G_b|^2 - |G_B|^2}{1/b - 1/B},

and ``B_simple = tr(Sigma) / |G|^2`` is estimated by the ratio of their *averages* over many
draws (a ratio of single noisy draws is badly biased). McCandlish et al. show the critical
batch size, beyond which bigger batches stop cutting the number of steps, is close to it.

Uncertainty: the draws are resampled (bootstrap) and the ratio recomputed; ``low``/``high`` are
the 16th and 84th percentiles (a 68 % interval, one standard deviation for a normal).
Everything that touches gradients is one compiled program per ``(draws, b, B)`` shape.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..engine.config import TrainConfig
from ..errors import ConfigError
from ..grad import value_and_grad_for
from .prepare import Prepared, prepare, training_part


class NoiseEstimate(NamedTuple):
    """``b_simple`` with its 68 % interval ``[low, high]`` and the two averaged estimators."""

    b_simple: float
    low: float
    high: float
    grad_sq: float        # estimate of |G|^2
    trace: float          # estimate of tr(Sigma)
    draws: int
    b_small: int
    b_big: int

    def describe(self) -> str:
        return (f"B_simple = {_fmt(self.b_simple)} (68% interval {_fmt(self.low)}-"
                f"{_fmt(self.high)}; {self.draws} draws at batch {self.b_small} and {self.b_big})")

    def to_dict(self) -> dict:
        return dict(self._asdict())


def _fmt(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:,.3g}"


def check_batches(b_small: int, b_big: int) -> None:
    if not (isinstance(b_small, int) and isinstance(b_big, int) and 1 <= b_small < b_big):
        raise ConfigError(f"noise-scale batch sizes must be whole numbers 1 <= small < big, got "
                          f"small={b_small!r}, big={b_big!r}; e.g. --noise-batches 8,256")


def make_sq_norms(model, loss, l2: float = 0.0, gradient: str = "autodiff"):
    """Jitted ``(params, X, T, idx_small (M, b), idx_big (M, B)) -> (|G_b|^2 (M,), |G_B|^2 (M,))``.

    Each row of an index array is one batch; its mean gradient uses the training objective
    (mean loss + L2), the same one the chunk kernel descends.
    """
    vg = value_and_grad_for(gradient, model, loss, l2)

    def sq_norm(params, X, T, idx):
        w = jnp.ones(idx.shape, jnp.float32)
        _, g = vg(params, X[idx], T[idx], w)
        return sum(jnp.sum(jnp.square(leaf.astype(jnp.float32)))
                   for leaf in jax.tree_util.tree_leaves(g))

    def norms(params, X, T, idx_small, idx_big):
        # lax.map: one batch at a time, so memory stays at one big batch, not M of them.
        small = jax.lax.map(lambda i: sq_norm(params, X, T, i), idx_small)
        big = jax.lax.map(lambda i: sq_norm(params, X, T, i), idx_big)
        return small, big

    return jax.jit(norms)


def lower_sq_norms(prepared: Prepared, params, *, l2: float = 0.0, draws: int = 16,
                   b_small: int = 8, b_big: int = 256):
    """:func:`make_sq_norms` lowered for parameters shaped like ``params`` and ``draws``
    batches of each size: its ``compile()`` is the program a :class:`NoiseScaleMeter` of
    these settings runs (``norms=``), which a caller may compile ahead, in a thread."""
    idx = [jax.ShapeDtypeStruct((draws, b), np.int32) for b in (b_small, b_big)]
    return make_sq_norms(prepared.model, prepared.loss, l2).lower(
        params, prepared.X, prepared.T, *idx)


def unbiased(sq_small, sq_big, b_small: int, b_big: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-draw estimates ``(|G|^2, tr Sigma)`` from squared batch-gradient norms (arrays)."""
    sq_small, sq_big = np.asarray(sq_small, float), np.asarray(sq_big, float)
    g2 = (b_big * sq_big - b_small * sq_small) / (b_big - b_small)
    s = (sq_small - sq_big) / (1.0 / b_small - 1.0 / b_big)
    return g2, s


def ratio_with_interval(g2: np.ndarray, s: np.ndarray, b_small: int, b_big: int,
                        resamples: int = 400, seed: int = 0) -> NoiseEstimate:
    """``mean(S) / mean(|G|^2)`` and a bootstrap 68 % interval over the draws."""
    g2, s = np.asarray(g2, float).ravel(), np.asarray(s, float).ravel()
    m = len(g2)
    mg, ms = float(g2.mean()), float(s.mean())
    point = ms / mg if mg > 0 else math.inf
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, m, size=(resamples, m))
    bg, bs = g2[pick].mean(axis=1), s[pick].mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = np.where(bg > 0, bs / bg, np.inf)
    # A resample whose |G|^2 estimate is not positive has no finite ratio: rank it above
    # every finite one (as inf), without letting inf - inf turn a percentile into NaN.
    top = np.finfo(float).max
    low, high = (math.inf if v >= top else float(v)
                 for v in np.percentile(np.where(np.isfinite(boot), boot, top), [16, 84],
                                        method="lower"))
    return NoiseEstimate(point, low, high, mg, ms, m, b_small, b_big)


def draw_indices(rng: np.random.Generator, n: int, draws: int, b: int) -> np.ndarray:
    """``(draws, b)`` int32 indices, uniform with replacement (the estimator's assumption)."""
    return rng.integers(0, n, size=(draws, b), dtype=np.int64).astype(np.int32)


def estimate_noise_scale(params, prepared: Prepared, *, b_small: int = 8, b_big: int = 256,
                         draws: int = 256, l2: float = 0.0, seed: int = 0,
                         norms=None) -> NoiseEstimate:
    """``B_simple`` at fixed ``params`` from ``draws`` independent pairs of batches."""
    check_batches(b_small, b_big)
    norms = norms or make_sq_norms(prepared.model, prepared.loss, l2)
    rng = np.random.default_rng(seed)
    small, big = norms(params, prepared.X, prepared.T,
                       draw_indices(rng, prepared.n, draws, b_small),
                       draw_indices(rng, prepared.n, draws, b_big))
    g2, s = unbiased(small, big, b_small, b_big)
    return ratio_with_interval(g2, s, b_small, b_big, seed=seed)


class NoiseScaleMeter:
    """A :func:`sgdlab.engine.train` callback measuring ``B_simple`` at every history row.

    At each "row" event (which carries the current ``params``) it draws ``draws`` pairs of
    batches and stores the per-draw estimates; the work happens between compiled chunks, so it
    never counts as training time. ``trace`` smooths ``|G|^2`` and ``tr Sigma`` separately with
    an exponential moving average over rows (weight ``smoothing`` on the newest) before taking
    their ratio. At the "end" event the final estimate (over the rows in the last ``window``
    fraction of steps) is put in ``result.extra`` so it reaches ``metrics.json``.
    """

    def __init__(self, prepared: Prepared, *, l2: float = 0.0, b_small: int = 8,
                 b_big: int = 256, draws: int = 16, seed: int = 0, smoothing: float = 0.3,
                 window: float = 0.5, norms=None):
        check_batches(b_small, b_big)
        self.prepared, self.l2 = prepared, l2
        self.b_small, self.b_big, self.draws = b_small, b_big, draws
        self.smoothing, self.window = smoothing, window
        self.rng = np.random.default_rng(seed)
        self.norms = norms  # compiled ahead (lower_sq_norms), else at the first row
        self.steps: list[int] = []
        self.g2: list[np.ndarray] = []
        self.s: list[np.ndarray] = []

    def __call__(self, event: dict) -> None:
        if event["event"] == "row":
            self.measure(event["row"]["step"], event["params"])
        elif event["event"] == "end" and self.steps:
            est = self.estimate()
            extra = event["result"].extra
            extra["noise_scale"] = est.b_simple
            extra["noise_scale_low"], extra["noise_scale_high"] = est.low, est.high

    def measure(self, step: int, params) -> None:
        if self.norms is None:
            self.norms = make_sq_norms(self.prepared.model, self.prepared.loss, self.l2)
        p = self.prepared
        small, big = self.norms(params, p.X, p.T,
                                draw_indices(self.rng, p.n, self.draws, self.b_small),
                                draw_indices(self.rng, p.n, self.draws, self.b_big))
        g2, s = unbiased(small, big, self.b_small, self.b_big)
        self.steps.append(int(step))
        self.g2.append(g2)
        self.s.append(s)

    def estimate(self, up_to_step: float | None = None) -> NoiseEstimate:
        """Estimate over rows with ``step`` in ``[(1 - window) * last, last]``."""
        steps = np.array(self.steps, float)
        last = steps.max() if up_to_step is None else up_to_step
        keep = (steps <= last + 1e-9) & (steps >= (1.0 - self.window) * last - 1e-9)
        if not keep.any():
            keep = steps == steps[steps <= last + 1e-9].max() if (steps <= last).any() \
                else np.ones_like(steps, bool)
        g2 = np.concatenate([g for g, k in zip(self.g2, keep) if k])
        s = np.concatenate([v for v, k in zip(self.s, keep) if k])
        return ratio_with_interval(g2, s, self.b_small, self.b_big)

    def trace(self) -> list[dict]:
        """``[{"step", "b_simple"}]``: the EMA-smoothed estimate after each row."""
        out, mg, ms = [], None, None
        a = self.smoothing
        for step, g2, s in zip(self.steps, self.g2, self.s):
            mg = g2.mean() if mg is None else (1 - a) * mg + a * g2.mean()
            ms = s.mean() if ms is None else (1 - a) * ms + a * s.mean()
            out.append({"step": step, "b_simple": float(ms / mg) if mg > 0 else math.inf})
        return out


def meter_for_fit(data, config: TrainConfig, *, b_small: int = 8, b_big: int | None = None,
                  draws: int = 16, model=None, loss=None) -> NoiseScaleMeter:
    """A meter for ``sgdlab.fit(data, config=config)``: same split, scaling and model.

    ``b_big`` defaults to ``min(256, N)`` with ``N`` the training examples; it must exceed
    ``b_small``.
    """
    train_part = training_part(data, config)
    b_big = b_big if b_big is not None else min(256, train_part.n)
    return NoiseScaleMeter(prepare(train_part, config, model, loss), l2=config.l2,
                           b_small=b_small, b_big=b_big, draws=draws, seed=config.seed)
