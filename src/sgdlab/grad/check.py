"""Gradient check: analytic gradient against centred finite differences, in float64.

For every parameter tensor, at every checked coordinate ``i``::

    n_i   = (f(w + h e_i) - f(w - h e_i)) / (2 h)              numerical (centred, O(h^2))
    rel_i = |a_i - n_i| / max(|a_i|, |n_i|, tiny)              relative error

where ``a`` is the analytic gradient (autodiff by default, or any gradient function to be
tested). The reported error discounts ``noise_i = 16 eps max|f| / (2 h)``, the round-off that
the difference quotient itself cannot avoid::

    err_i = max(|a_i - n_i| - noise_i, 0) / max(|a_i|, |n_i|, tiny)

Without it a coordinate whose true derivative is ``1e-10`` would show a relative error near
``1e-2`` that says nothing about the analytic code, only about float64. Per tensor the report
gives the largest ``err_i`` (``max_rel_error``), the index where it occurs, both derivatives
there, and the largest plain ``rel_i`` (``raw_rel_error``) for comparison.

Thresholds (the usual reading of relative errors, documented once here):

=================  ===========================================================================
``rel < 1e-7``     good: the analytic gradient is right
``rel < 1e-6``     passes (default ``tolerance``) for smooth functions in float64
``rel < 1e-2``     fail: suspicious (above tolerance, below "wrong")
``rel >= 1e-2``    wrong: the analytic gradient is almost surely incorrect
=================  ===========================================================================

Coordinates with a kink within ``+-h`` cannot be checked by differences at all (the quotient
averages two slopes, the error can reach 1): they are counted and excluded from the verdict, and
a tensor that fails only there is ``near-kink``, which passes.

Kink detection (hinge, ReLU, max, abs): along each coordinate the check also evaluates
``f(w +- h/2)`` and compares the right and left second differences
``R = f(w+h) - 2 f(w+h/2) + f(w)`` and ``L = f(w-h) - 2 f(w-h/2) + f(w)`` and the full one
``f(w+h) - 2 f(w) + f(w-h)`` with ``2 (R + L)``: for a smooth function they agree to
``O(h^3 f''')``; a slope jump ``J`` at distance ``t`` inside ``(-h, h)`` breaks one of them by
about ``J t`` (or ``J h`` at ``t = 0``). Coordinates where they disagree by more than both

* the round-off of the values, ``1000 eps max|f|``, and
* ``1e-7 h G``, where ``G`` is the largest one-sided slope ``|f(w +- h e_i) - f(w)| / h`` over
  the checked coordinates (a slope jump of ``1e-7 G``)

are counted as ``kinks``. The second bound makes the test relative to the function's local
scale, how fast it changes near ``w``, not to its value: a smooth function whose value is near
0 (where the first bound is near 0 too, while the round-off of a sum of terms is not) has no
kinks, and a hinge or ReLU kink within ``+-h`` is still found.

Away from kinks the error also discounts the truncation error of the centred difference,
``h^2 f''' / 6``, estimated from the half step as ``2 |n_i - n_i(h/2)|`` (Richardson's estimate is
``4/3`` of that difference; the margin covers its own round-off). It matters only where the
derivative is tiny against ``h^2 f'''``: at ``w = 0`` the centred difference of ``w^3`` is
``h^2``, not 0.

Everything is computed in float64 inside ``jax.enable_x64(True)``; the function should not
cast back to float32, or round-off will dominate (the report then shows large errors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._lazy import flatten_util, jax, jnp
from .._types import Model
from ..errors import ConfigError
from ..losses import get_loss, objective

GOOD = 1e-7
TOLERANCE = 1e-6
WRONG = 1e-2
DEFAULT_H = 1e-5
TINY = 1e-30
_NOISE = 16.0
_KINK = 1000.0
_LOCAL = 1e-7  # a slope jump below 1e-7 of the largest one-sided slope is no kink
_TRUNC = 2.0
_EPS64 = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class TensorCheck:
    """The check of one parameter tensor.

    ``max_rel_error`` is the largest error beyond round-off (module docstring), ``raw_rel_error``
    the largest plain ``|a - n| / max(|a|, |n|, tiny)``; ``worst_index`` is the index (a tuple
    into ``shape``) of the largest error, ``analytic`` and ``numerical`` the two derivatives
    there; ``kinks`` counts checked
    coordinates with a kink within ``+-h``. ``verdict``: ``good``, ``ok``, ``near-kink``
    (above tolerance but explained by a kink), ``fail`` or ``wrong`` (see module docstring).
    """

    name: str
    shape: tuple
    checked: int
    max_rel_error: float
    worst_index: tuple
    analytic: float
    numerical: float
    kinks: int
    verdict: str
    raw_rel_error: float = 0.0

    @property
    def kink(self) -> bool:
        return self.kinks > 0

    @property
    def passed(self) -> bool:
        return self.verdict in ("good", "ok", "near-kink")


@dataclass(frozen=True)
class GradCheckReport:
    """Result of :func:`check_gradient`; ``passed`` when every tensor passed."""

    tensors: tuple
    h: float
    tolerance: float
    value: float

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.tensors)

    @property
    def max_rel_error(self) -> float:
        return max((t.max_rel_error for t in self.tensors), default=0.0)

    def rows(self) -> list[dict]:
        """One dict per tensor (for tables and JSON)."""
        return [{"tensor": t.name, "shape": list(t.shape), "checked": t.checked,
                 "max_rel_error": t.max_rel_error, "worst_index": list(t.worst_index),
                 "analytic": t.analytic, "numerical": t.numerical, "kinks": t.kinks,
                 "verdict": t.verdict, "raw_rel_error": t.raw_rel_error}
                for t in self.tensors]


def _verdict(err: float, tolerance: float) -> str:
    if err < GOOD and err < tolerance:
        return "good"
    if err < tolerance:
        return "ok"
    return "wrong" if err >= WRONG else "fail"


def _leaf_names(params) -> list[str]:
    paths, _ = jax.tree_util.tree_flatten_with_path(params)
    return ["/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in p) or "param"
            for p, _ in paths]


def _to64(tree):
    return jax.tree_util.tree_map(
        lambda a: jnp.asarray(a, jnp.float64) if jnp.issubdtype(jnp.result_type(a), jnp.floating)
        else jnp.asarray(a), tree)


def _choose_coords(sizes, n_coords, seed):
    """Flat indices to check: all, or ``n_coords`` drawn per tensor (every tensor is checked)."""
    rng = np.random.default_rng(seed)
    out, start = [], 0
    for size in sizes:
        if n_coords is None or n_coords >= size:
            idx = np.arange(size)
        else:
            idx = np.sort(rng.choice(size, n_coords, replace=False))
        out.append(start + idx)
        start += size
    return out


def _probe(f, flat, unravel, coords, h):
    """``f`` at ``w + s e_i`` for ``s`` in ``(h, -h, h/2, -h/2)``, each coordinate: ``(m, 4)``.

    One ``lax.map`` over all ``4 m`` perturbations, so ``f`` is traced and compiled once.
    """
    steps = jnp.asarray([h, -h, h / 2, -h / 2], flat.dtype)
    ii = jnp.repeat(coords, 4)
    ss = jnp.tile(steps, coords.shape[0])

    def one(i_s):
        i, s = i_s
        return f(unravel(flat.at[i].add(s)))

    vals = jax.jit(lambda a, b: jax.lax.map(one, (a, b), batch_size=256))(ii, ss)
    return vals.reshape(-1, 4)


def _kinks(f0, fp, fm, fp2, fm2, scale, h):
    """Which coordinates have a kink within ``+-h`` (module docstring), from the four probes.

    The threshold is the larger of the values' round-off and ``_LOCAL * h * G``, ``G`` the
    largest one-sided slope along any checked coordinate (how fast ``f`` changes near the
    point). A smooth function disagrees by ``O(h^3 f''')``, a slope jump ``J`` by about ``J h``.
    """
    right, left = fp - 2 * fp2 + f0, fm - 2 * fm2 + f0
    disagree = np.maximum(np.abs(right - left),
                          np.abs((fp - 2 * f0 + fm) - 2 * (right + left)))
    slopes = np.maximum(np.abs(fp - f0), np.abs(fm - f0)) / h
    slopes = slopes[np.isfinite(slopes)]
    local = _LOCAL * h * (float(slopes.max()) if slopes.size else 0.0)
    return disagree > np.maximum(_KINK * _EPS64 * np.maximum(scale, 1e-300), local)


def check_gradient(f, params, *, grad=None, h: float = DEFAULT_H, n_coords: int | None = None,
                   seed: int = 0, tolerance: float = TOLERANCE,
                   tiny: float = TINY) -> GradCheckReport:
    """Compare ``grad(params)`` with centred differences of the scalar function ``f``.

    Args:
      f: ``params -> scalar``, any JAX function (a user model and loss closed over data).
      params: the point to check at (a pytree; converted to float64).
      grad: ``params -> gradient pytree`` to test; ``None`` means ``jax.grad(f)``. Pass e.g. a
        hand-written gradient or a function using ``jax.custom_vjp`` to test its backward pass.
      h: finite-difference step (float64; ``1e-5`` balances truncation and round-off).
      n_coords: check this many random coordinates per tensor (``None``: all of them).
      seed: seed of the coordinate sample.
      tolerance: largest relative error that passes away from kinks.
      tiny: floor of the denominator, so two zero derivatives compare as equal.

    Returns a :class:`GradCheckReport`; it never prints.
    """
    if not (isinstance(h, (int, float)) and 0 < h < 1):
        raise ConfigError(f"gradient check step h must be in (0, 1), got {h!r}; try 1e-5")
    if n_coords is not None and n_coords < 1:
        raise ConfigError(f"number of coordinates to check must be >= 1, got {n_coords}")
    with jax.enable_x64(True):
        p64 = _to64(params)
        leaves = jax.tree_util.tree_leaves(p64)
        if not leaves:
            raise ConfigError("gradient check: the parameters are empty, nothing to check")
        flat, unravel = flatten_util.ravel_pytree(p64)
        # One jit for value and gradient: op by op, every primitive would compile separately.
        value_and_grad = jax.value_and_grad(f) if grad is None else \
            (lambda p: (f(p), grad(p)))
        f0, g = jax.jit(value_and_grad)(p64)
        f0 = float(f0)
        a_flat = np.asarray(flatten_util.ravel_pytree(_to64(g))[0], np.float64)
        if a_flat.shape != flat.shape:
            raise ConfigError(f"the gradient has {a_flat.size} entries but the parameters have "
                              f"{flat.size}; grad must return a pytree shaped like params")
        sizes = [int(np.prod(leaf.shape)) for leaf in leaves]
        per_leaf = _choose_coords(sizes, n_coords, seed)
        coords = np.concatenate(per_leaf)
        vals = np.asarray(_probe(f, flat, unravel, jnp.asarray(coords), h), np.float64)
        x = flat[coords]
        step = np.asarray(x + h - (x - h), np.float64)
        half_step = np.asarray(x + h / 2 - (x - h / 2), np.float64)

    fp, fm, fp2, fm2 = vals.T
    numerical = (fp - fm) / step
    scale = np.maximum.reduce([np.abs(fp), np.abs(fm), np.full_like(fp, abs(f0))])
    noise = _NOISE * _EPS64 * scale / step
    analytic = a_flat[coords]
    diff = np.abs(analytic - numerical)
    denom = np.maximum.reduce([np.abs(analytic), np.abs(numerical), np.full_like(fp, tiny)])
    rel = diff / denom
    kink = _kinks(f0, fp, fm, fp2, fm2, scale, h)
    # Truncation error of the centred difference (module docstring); meaningless at a kink.
    trunc = np.where(kink, 0.0, _TRUNC * np.abs(numerical - (fp2 - fm2) / half_step))
    # What the verdict uses: the error beyond round-off and truncation of the quotient itself.
    rel_beyond_noise = np.maximum(diff - noise - trunc, 0.0) / denom

    tensors, pos, start = [], 0, 0
    for name, leaf, idx, size in zip(_leaf_names(p64), leaves, per_leaf, sizes):
        sl = slice(pos, pos + len(idx))
        pos += len(idx)
        r = rel_beyond_noise[sl]
        w = int(np.lexsort((rel[sl], r))[-1])   # largest error; ties (0) by the raw error
        # Coordinates with a kink inside +-h cannot be checked by differences: judge the rest,
        # and call the tensor near-kink when only those coordinates exceed the tolerance.
        smooth = rel_beyond_noise[sl][~kink[sl]]
        judged = float(smooth.max()) if smooth.size else 0.0
        verdict = _verdict(judged, tolerance)
        if verdict in ("good", "ok") and float(r.max()) >= tolerance:
            verdict = "near-kink"
        tensors.append(TensorCheck(
            name=name, shape=tuple(leaf.shape), checked=len(idx), max_rel_error=float(r[w]),
            worst_index=tuple(int(i) for i in np.unravel_index(int(idx[w]) - start, leaf.shape)),
            analytic=float(analytic[sl][w]), numerical=float(numerical[sl][w]),
            kinks=int(kink[sl].sum()), verdict=verdict, raw_rel_error=float(rel[sl].max())))
        start += size
    return GradCheckReport(tuple(tensors), float(h), float(tolerance), f0)


def check_model_gradient(model: Model, loss, params, X, targets, weights=None, *, l2=0.0,
                         value_and_grad=None, **options) -> GradCheckReport:
    """Gradient check of the training objective ``J(params)`` of a model and loss.

    ``J`` is :func:`sgdlab.losses.objective` on ``X (B, d)``, ``targets (B,)`` (encoded as the
    loss expects, see :func:`sgdlab.losses.encode_targets`) and 0/1 ``weights (B,)`` (default
    all ones). ``value_and_grad`` (the engine's ``(params, X, T, W) -> (J, grads)``, e.g. from
    :func:`sgdlab.grad.value_and_grad_for`) is the gradient under test; default autodiff.
    ``options`` go to :func:`check_gradient`. Use few examples (8..64): the cost is four
    evaluations of ``J`` per checked coordinate.
    """
    loss = get_loss(loss)
    with jax.enable_x64(True):
        X64 = jnp.asarray(X, jnp.float64)
        T = _to64(jnp.asarray(targets))
        W = jnp.ones(X64.shape[0], jnp.float64) if weights is None else \
            jnp.asarray(weights, jnp.float64)

        def f(p):
            return objective(model.apply, loss, p, X64, T, W, l2)

        grad = None if value_and_grad is None else (lambda p: value_and_grad(p, X64, T, W)[1])
        return check_gradient(f, params, grad=grad, **options)
