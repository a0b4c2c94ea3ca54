"""The full gradient noise scale ``B_noise`` of McCandlish et al. (2018, "An Empirical Model of
Large-Batch Training"), beside the simple one ``B_simple`` (:mod:`sgdlab.lab.noise`).

With ``P`` parameters flattened to ``w: (P,)`` (``ravel_pytree`` order), per-example gradients
``g_i: (P,)`` of mean ``G`` and covariance ``Sigma: (P, P)``, and ``H: (P, P)`` the Hessian of
the training objective (mean loss + L2)::

    B_simple = tr(Sigma) / |G|^2           B_noise = tr(H Sigma) / (G^T H G)

``B_noise`` is the batch size at which one step along the batch gradient, at its best step
size, lowers the loss half as much as a noiseless step could; ``B_simple`` equals it when ``H``
is a multiple of the identity.

Estimators (``n`` real rows; padding rows ``>= n`` are never read):

* ``G`` and ``H`` use ``N_h = min(n, hessian_examples)`` rows; ``H`` is only ever applied to a
  vector, ``H v = jvp(grad J, w; v)`` (forward-over-reverse), so no ``(P, P)`` array exists.
* ``Sigma`` uses its own sample of ``m = min(n, examples)`` rows; with the deviations
  ``d_i = g_i - mean_i g_i``, ``tr Sigma = m/(m-1) mean_i |d_i|^2`` and
  ``tr(H Sigma) = m/(m-1) mean_i d_i^T H d_i``, by ``lax.map`` over blocks of ``vmap``-ped
  per-example work (memory: a block of ``(c, P)`` vectors, never ``(m, P)``).
* A mean over sampled rows is noisy: ``E |G_hat|^2 = |G|^2 + f tr(Sigma)/N_h`` and, to leading
  order, ``E G_hat^T H G_hat = G^T H G + f tr(H Sigma)/N_h``, with ``f = (n - N_h)/(n - 1)``
  (0 when every row is used). Both denominators subtract that term, else ``B`` would be capped
  near ``N_h`` as ``|G| -> 0``. (The ``O(|G|/N_h)`` cross term between ``G_hat`` and ``H_hat``
  is left: it vanishes faster than the corrected one as ``G -> 0``.)

68 % intervals: a bootstrap over the sampled examples (numerators) and, linearised through
per-row influences, over the ``N_h`` rows (denominators), each scaled by its finite-population
factor; the 16th and 84th percentiles of the recomputed ratios. A quantity computed from every
training row has no sampling error, so with ``n`` below both sample sizes the interval is a point.

No estimate (NaN, with a ``reason``) when ``|G|`` is within float rounding of zero or the
corrected ``|G|^2`` is within two standard errors, ``f sqrt(2 tr Sigma^2) / N_h``, of its
sampling noise (an optimum), or for ``B_noise`` when ``G^T H G`` or ``tr(H Sigma)`` is not > 0.
"""

from __future__ import annotations

import math
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from ..errors import ConfigError
from ..losses import objective
from .prepare import Prepared

_BLOCK_FLOATS = 1 << 24  # floats of per-example work in one vmapped block (64 MiB in float32)
_ROUNDING_ULPS = 32.0    # |G| below this many ulps of the gradient scale is rounding noise
_SIGNIFICANCE = 2.0      # corrected |G|^2 must exceed this many standard errors of its noise


class NoiseScales(NamedTuple):
    """``B_simple`` and ``B_noise`` with 68 % intervals and the four traces behind them."""

    b_simple: float
    b_simple_low: float
    b_simple_high: float
    b_noise: float
    b_noise_low: float
    b_noise_high: float
    grad_sq: float          # |G|^2 (sampling-corrected), so b_simple = trace_sigma / grad_sq
    trace_sigma: float      # tr(Sigma)
    trace_h_sigma: float    # tr(H Sigma)
    g_h_g: float            # G^T H G (sampling-corrected), so b_noise = trace_h_sigma / g_h_g
    examples: int           # per-example gradients behind Sigma
    reason: str             # "" when both are finite, else why one could not be formed

    def to_dict(self) -> dict:
        """JSON-safe: every non-finite float becomes ``None``."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in self._asdict().items()}

    def describe(self) -> str:
        def one(name, v, lo, hi):
            return f"{name} = {_fmt(v)} (68% {_fmt(lo)}-{_fmt(hi)})"
        text = (f"{one('B_simple', self.b_simple, self.b_simple_low, self.b_simple_high)}, "
                f"{one('B_noise', self.b_noise, self.b_noise_low, self.b_noise_high)} "
                f"from {self.examples} per-example gradients")
        return f"{text}; {self.reason}" if self.reason else text


def _fmt(v: float) -> str:
    return f"{v:,.3g}" if math.isfinite(v) else "n/a"


@partial(jax.jit, static_argnames=("model", "loss", "l2", "block"))
def _moments(params, X, T, rows, sample, *, model, loss, l2, block):
    """Every gradient and Hessian-vector product, in one program; see the module docstring."""
    w, unravel = ravel_pytree(params)
    dt = w.dtype

    def rows_of(idx):
        x, t = X[idx].astype(dt), T[idx]
        return x, (t.astype(dt) if jnp.issubdtype(t.dtype, jnp.floating) else t)

    def mean_objective(w, x, t):
        return objective(model.apply, loss, unravel(w), x, t, jnp.ones(x.shape[0], dt), l2)

    Xh, Th = rows_of(rows)
    grad_h = jax.grad(lambda w: mean_objective(w, Xh, Th))
    hvp = lambda v: jax.jvp(grad_h, (w,), (v,))[1]  # noqa: E731
    G = grad_h(w)
    HG, Hw = hvp(G), hvp(w)
    # Centre on the sample's own mean: that is what makes m/(m-1) unbiased.
    gbar = jax.grad(mean_objective)(w, *rows_of(sample))

    def per_example(i, j):
        # d_j (j = the next sampled row) only pairs with d_i to estimate tr(Sigma^2).
        (xi, ti), (xj, tj) = rows_of(i[None]), rows_of(j[None])
        di = jax.grad(mean_objective)(w, xi, ti) - gbar
        dj = jax.grad(mean_objective)(w, xj, tj) - gbar
        return di @ di, di @ hvp(di), di @ dj

    s, q, p = jax.lax.map(lambda ij: per_example(*ij), (sample, jnp.roll(sample, -1)),
                          batch_size=block)

    # Per-row influences on the two denominators (data term only: the L2 part is the same for
    # every row and cancels once centred): |G|^2 moves by 2 g_j.G, G^T H G by
    # 2 g_j.HG + G^T H_j G. jvps of the (N_h,) loss vector give all rows at once.
    per_row = lambda v: loss.fn(model.apply(unravel(v), Xh), Th)  # noqa: E731
    slope = lambda v, u: jax.jvp(per_row, (v,), (u,))[1]  # (N_h,): g_j . u  # noqa: E731
    curv = jax.jvp(lambda v: slope(v, G), (w,), (G,))[1]  # (N_h,): G^T H_j G
    return dict(g2=G @ G, ghg=G @ HG, hw=jnp.linalg.norm(Hw), gbar2=gbar @ gbar, s=s, q=q, p=p,
                infl_g2=2 * slope(w, G), infl_ghg=2 * slope(w, HG) + curv)


def _pick(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Every row when ``n <= k``, else ``k`` distinct uniform rows (sorted, for locality)."""
    if n <= k:
        return np.arange(n, dtype=np.int32)
    return np.sort(rng.choice(n, size=k, replace=False)).astype(np.int32)


def lower_moments(params, prepared: Prepared, *, l2: float = 0.0, examples: int = 1024,
                  hessian_examples: int = 4096):
    """The program :func:`noise_scales` runs, lowered for parameters shaped like ``params``
    (their values do not enter) and the same settings; its ``compile()`` gives
    ``program(params, X, T, rows (N_h,), sample (m,)) -> moments``. Compiling takes seconds
    and releases the interpreter lock: a caller may compile it in a thread while the
    parameters train, and pass it to :func:`noise_scales`."""
    n = prepared.n
    nh, m = min(n, hessian_examples), min(n, examples)
    size = ravel_pytree(params)[0].size
    block = int(np.clip(_BLOCK_FLOATS // (size + nh * prepared.n_out), 1, min(m, 256)))
    rows = jax.ShapeDtypeStruct((nh,), np.int32)
    sample = jax.ShapeDtypeStruct((m,), np.int32)
    return _moments.lower(params, prepared.X, prepared.T, rows, sample, model=prepared.model,
                          loss=prepared.loss, l2=float(l2), block=block)


def noise_scales(params, prepared: Prepared, *, l2: float = 0.0, examples: int = 1024,
                 hessian_examples: int = 4096, seed: int = 0,
                 resamples: int = 400, program=None) -> NoiseScales:
    """``B_simple`` and ``B_noise`` at ``params`` on the training rows of ``prepared``.

    ``l2`` must be the run's: it is part of the objective, hence of ``G`` and ``H``. Rows are
    drawn with ``seed``; ``resamples`` bootstrap replicates give the intervals. Cost: about
    ``min(n, examples) * min(n, hessian_examples)`` per-row forward-and-backward passes.
    ``program``: :func:`lower_moments` of the same settings, compiled ahead (default: now).
    """
    n = prepared.n
    if n < 2 or examples < 2 or hessian_examples < 1 or resamples < 1:
        raise ConfigError(f"noise scales need >= 2 training rows and examples >= 2, "
                          f"hessian_examples >= 1, resamples >= 1; got n={n}, "
                          f"examples={examples}, hessian_examples={hessian_examples}, "
                          f"resamples={resamples}")
    rng = np.random.default_rng(seed)
    rows, sample = _pick(rng, n, hessian_examples), _pick(rng, n, examples)
    nh, m = len(rows), len(sample)
    flat = ravel_pytree(params)[0]
    program = program or lower_moments(params, prepared, l2=l2, examples=examples,
                                       hessian_examples=hessian_examples).compile()
    out = jax.device_get(program(params, prepared.X, prepared.T, rows, sample))
    out = {k: np.asarray(v, np.float64) for k, v in out.items()}  # ratios on the host in f64
    eps = float(jnp.finfo(flat.dtype).eps)

    fh, fm = (n - nh) / (n - 1), (n - m) / (n - 1)  # finite-population factors
    s, q = out["s"] * m / (m - 1), out["q"] * m / (m - 1)
    tr_s, tr_hs = s.mean(), q.mean()
    g2, ghg = out["g2"] - fh * tr_s / nh, out["ghg"] - fh * tr_hs / nh
    # sd of |G_hat - G|^2 is sqrt(2 tr Sigma^2) f / N_h; E[(d_i.d_j)^2] = tr(Sigma^2).
    g2_noise = fh * math.sqrt(2.0 * np.mean(out["p"] ** 2)) / nh
    rounding = _ROUNDING_ULPS * eps * (out["hw"] + math.sqrt(max(tr_s, 0.0) + out["gbar2"]))

    reason = ""
    if not all(np.all(np.isfinite(v)) for v in out.values()):
        reason = "the gradients are not finite (NaN or inf) at these parameters"
    elif math.sqrt(out["g2"]) <= rounding:
        reason = (f"the mean gradient is indistinguishable from zero: |G| is at the rounding "
                  f"level of {flat.dtype} arithmetic (the parameters sit at an optimum)")
    elif g2 <= _SIGNIFICANCE * g2_noise:
        reason = (f"the mean gradient is indistinguishable from zero: |G|^2 is within the "
                  f"sampling noise of the {nh} rows used for G (more rows narrow it: the "
                  "sweep's sample is fixed, the Python call "
                  "sgdlab.lab.noise_scales(..., hessian_examples=...) takes more)")
    simple_ok = not reason
    if simple_ok and out["ghg"] <= 0:
        reason = "G^T H G <= 0: the loss is not locally convex along the gradient"
    elif simple_ok and ghg <= 0:
        reason = (f"G^T H G is within the sampling noise of the {nh} rows used for G and H "
                  "(more rows narrow it: the sweep's sample is fixed, the Python call "
                  "sgdlab.lab.noise_scales(..., hessian_examples=...) takes more)")
    elif simple_ok and tr_hs <= 0:
        reason = "tr(H Sigma) <= 0: the loss curves downward along the gradient noise"
    noise_ok = not reason

    # Bootstrap: paired resamples of the examples (numerators) and of the rows (denominators).
    def shift(values, f):
        if f == 0:  # every row was used: no sampling error to resample
            return [np.zeros(resamples)] * len(values)
        pick = rng.integers(0, len(values[0]), size=(resamples, len(values[0])))
        return [math.sqrt(f) * (v[pick].mean(axis=1) - v.mean()) for v in values]

    ds, dq = shift([s, q], fm)
    dg2, dghg = shift([out["infl_g2"], out["infl_ghg"]], fh)
    b_s = _ratio(tr_s + ds, out["g2"] + dg2 - fh * (tr_s + ds) / nh)
    b_n = _ratio(tr_hs + dq, out["ghg"] + dghg - fh * (tr_hs + dq) / nh)
    nan3 = (math.nan,) * 3
    floats = (*((tr_s / g2, *_interval(b_s)) if simple_ok else nan3),
              *((tr_hs / ghg, *_interval(b_n)) if noise_ok else nan3), g2, tr_s, tr_hs, ghg)
    return NoiseScales(*(float(v) for v in floats), m, reason)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den``, ``inf`` where the resampled denominator is not positive."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.inf)


def _interval(boot: np.ndarray) -> tuple[float, float]:
    """16th and 84th percentiles (``nearest``: no arithmetic on ``inf``); NaN if unbounded."""
    low, high = (float(v) for v in np.quantile(boot, [0.16, 0.84], method="nearest"))
    return (low if math.isfinite(low) else math.nan, high if math.isfinite(high) else math.nan)
