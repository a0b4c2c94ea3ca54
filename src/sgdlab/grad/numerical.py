"""Numerical gradients by finite differences, vectorised over the perturbed coordinates.

For a scalar function ``f`` of a parameter vector ``w`` (a pytree, flattened to ``(P,)``)::

    forward:  g_i ~ (f(w + h e_i) - f(w)) / h                  error O(h)
    centred:  g_i ~ (f(w + h e_i) - f(w - h e_i)) / (2 h)       error O(h^2)

``e_i`` is the i-th unit vector. Each partial derivative needs one (forward) or two (centred)
extra evaluations of ``f``, so a full gradient costs ``P`` or ``2 P`` evaluations: the "slow and
approximate" method of the source texts. Here the perturbed evaluations are not a Python loop
over coordinates: ``jax.lax.map(..., batch_size=m)`` runs them as ``vmap`` over blocks of ``m``
coordinates inside one compiled program, which bounds memory at ``m x P`` floats.

The step actually taken is ``(w_i + h) - (w_i - h)`` as rounded in floating point, not the
nominal ``2 h``; dividing by the real step removes one source of error for free.

Choosing ``h``: truncation error shrinks with ``h`` and round-off (``eps |f| / h``) grows, so the
best centred step is about ``eps^(1/3)``: :func:`default_step` gives ``4.9e-3`` in float32 and
``6.1e-6`` in float64.
"""

from __future__ import annotations

import numpy as np

from .._lazy import flatten_util, jax, jnp
from .._types import Loss, Model
from ..errors import ConfigError
from ..losses import objective

SCHEMES = ("centred", "forward")
#: coordinates perturbed per vectorised block (memory: BLOCK x P floats per evaluation)
BLOCK = 128


def default_step(dtype) -> float:
    """``eps(dtype) ** (1/3)``: the step balancing truncation and round-off of centred
    differences (``4.9e-3`` for float32, ``6.1e-6`` for float64)."""
    return float(np.finfo(np.dtype(dtype)).eps ** (1.0 / 3.0))


def _check(scheme: str, h) -> None:
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown finite-difference scheme {scheme!r}; valid schemes: "
                          f"{', '.join(SCHEMES)}")
    if h is not None and not (isinstance(h, (int, float)) and 0 < h < 1):
        raise ConfigError(f"finite-difference step h must be a number in (0, 1), got {h!r}; "
                          "1e-5 is a usual choice in float64, 1e-2 .. 1e-3 in float32")


def partials(f, params, coords, *, h: float | None = None, scheme: str = "centred",
             block: int = BLOCK):
    """Partial derivatives of ``f`` at ``params`` along the flat coordinates ``coords``.

    Args:
      f: scalar function of a pytree shaped like ``params`` (traced under ``jit``).
      params: the point, a pytree of floating arrays flattened in ``ravel_pytree`` order.
      coords: ``(m,)`` int array of flat coordinate indices in ``0 .. P-1``.
      h: step (``None``: :func:`default_step` of the parameters' dtype).
      scheme: ``"centred"`` or ``"forward"``.
      block: coordinates evaluated together by ``vmap``.

    Returns ``(m,)`` derivatives in the parameters' dtype.
    """
    _check(scheme, h)
    flat, unravel = flatten_util.ravel_pytree(params)
    step = default_step(flat.dtype) if h is None else h
    coords = jnp.asarray(coords, jnp.int32)

    def one(i):
        # Perturb one coordinate of the flat vector; vmap turns this into (block, P) rows.
        up = flat.at[i].add(step)
        if scheme == "forward":
            return (f(unravel(up)) - f0) / (up[i] - flat[i])
        down = flat.at[i].add(-step)
        return (f(unravel(up)) - f(unravel(down))) / (up[i] - down[i])

    f0 = f(params) if scheme == "forward" else None
    return jax.lax.map(one, coords, batch_size=min(block, max(1, int(coords.shape[0]))))


def numerical_grad(f, params, *, h: float | None = None, scheme: str = "centred",
                   coords=None, block: int = BLOCK):
    """The finite-difference gradient of ``f`` at ``params`` as a pytree like ``params``.

    ``coords=None`` differentiates along every coordinate (``P`` or ``2P`` evaluations);
    an int array of flat indices differentiates only along those and leaves the other entries
    0 (use :func:`sample_coords` for a random sample). Works inside ``jit``.

    >>> import jax.numpy as jnp
    >>> g = numerical_grad(lambda p: jnp.sum(p["w"] ** 2), {"w": jnp.array([1.0, -2.0])})
    >>> [round(float(v), 2) for v in g["w"]]
    [2.0, -4.0]
    """
    flat, unravel = flatten_util.ravel_pytree(params)
    idx = jnp.arange(flat.shape[0], dtype=jnp.int32) if coords is None else \
        jnp.asarray(coords, jnp.int32)
    vals = partials(f, params, idx, h=h, scheme=scheme, block=block)
    return unravel(jnp.zeros_like(flat).at[idx].set(vals.astype(flat.dtype)))


def sample_coords(key, n_params: int, n: int) -> jax.Array:
    """``n`` distinct flat coordinate indices out of ``n_params``, drawn uniformly (sorted)."""
    if n >= n_params:
        return jnp.arange(n_params, dtype=jnp.int32)
    if n < 1:
        raise ConfigError(f"number of sampled coordinates must be >= 1, got {n}")
    return jnp.sort(jax.random.choice(key, n_params, (n,), replace=False)).astype(jnp.int32)


def numerical_value_and_grad(model: Model, loss: Loss, l2: float, *, h: float | None = None,
                             scheme: str = "centred"):
    """The engine's ``value_and_grad`` by finite differences over every parameter.

    ``(params, X_batch (B, d), targets (B,), weights (B,)) -> (J, dJ/dparams)`` with ``J`` the
    masked mean objective plus L2 (``losses.objective``). Each step costs ``2 P`` (centred)
    evaluations of the batch objective, so this is for small models: "numerical-gradient
    descent" to compare with analytic gradients, not for speed.
    """
    _check(scheme, h)

    def f_at(xb, tb, wb):
        return lambda p: objective(model.apply, loss, p, xb, tb, wb, l2)

    def value_and_grad(params, xb, tb, wb):
        f = f_at(xb, tb, wb)
        return f(params), numerical_grad(f, params, h=h, scheme=scheme)

    return value_and_grad
