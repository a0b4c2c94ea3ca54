"""Random directions in parameter space, filter-normalised (Li et al. 2018).

A plot of ``J(w + a d_1 + b d_2)`` depends on the scale of ``d``: ReLU networks are invariant to
scaling a layer's incoming weights by ``c`` and the next layer's by ``1/c``, so an unscaled
Gaussian direction moves small filters far and large ones hardly at all, and two networks'
plots cannot be compared. Li et al. ("Visualizing the Loss Landscape of Neural Nets", 2018)
rescale each *filter* of the direction to the norm of the same filter in ``w``::

    d_j  <-  d_j / |d_j| * |w_j|

For a dense layer ``W: (n_in, n_out)`` a filter is one unit's incoming weights, a column
``W[:, j]``. Bias leaves (dict key ``"b"``) get direction 0, as in Li et al., whose plots
ignore biases; other 1-D leaves are scaled as one filter.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .._types import Params
from ..errors import ConfigError
from ..losses import _is_bias

__all__ = ["random_direction", "random_directions", "NORMALIZATIONS"]

NORMALIZATIONS = ("filter", "layer", "none")


def _scale_leaf(d: jax.Array, w: jax.Array, how: str) -> jax.Array:
    if how == "none":
        return d
    if how == "layer" or d.ndim < 2:
        return d / (jnp.linalg.norm(d) + 1e-12) * jnp.linalg.norm(w)
    # Columns are filters: norms over every axis but the last (the output unit).
    axes = tuple(range(d.ndim - 1))
    dn = jnp.sqrt(jnp.sum(d * d, axis=axes, keepdims=True))
    wn = jnp.sqrt(jnp.sum(w * w, axis=axes, keepdims=True))
    return d / (dn + 1e-12) * wn


def _check(normalize: str) -> None:
    if normalize not in NORMALIZATIONS:
        raise ConfigError(f"unknown direction normalisation {normalize!r}; valid: "
                          f"{', '.join(NORMALIZATIONS)}")


def _direction(key: jax.Array, params: Params, normalize: str) -> jax.Array:
    leaves, tree = jax.tree_util.tree_flatten_with_path(params)
    keys = jax.random.split(key, len(leaves))
    out = []
    for k, (path, w) in zip(keys, leaves):
        w = jnp.asarray(w)
        if _is_bias(path) and normalize != "none":
            out.append(jnp.zeros_like(w))
            continue
        d = jax.random.normal(k, w.shape, w.dtype)
        out.append(_scale_leaf(d, w, normalize))
    return ravel_pytree(jax.tree_util.tree_unflatten(tree, out))[0]


def random_direction(key: jax.Array, params: Params, normalize: str = "filter") -> np.ndarray:
    """A Gaussian direction shaped like ``params``, scaled per ``normalize``, as a flat ``(D,)``.

    ``normalize``: ``"filter"`` (per column, Li et al.), ``"layer"`` (per leaf) or ``"none"``.
    """
    _check(normalize)
    return np.asarray(_direction(key, params, normalize))


def random_directions(key: jax.Array, params: Params, n: int,
                      normalize: str = "filter") -> np.ndarray:
    """``n`` independent directions ``(n, D)`` in one compiled call (vmap over split keys)."""
    _check(normalize)
    keys = jax.random.split(key, n)
    fn = jax.jit(jax.vmap(lambda k, p: _direction(k, p, normalize), in_axes=(0, None)))
    return np.asarray(fn(keys, params))
