"""Random directions in parameter space, filter-normalised (Li et al. 2018).

A plot of ``J(w + a d_1 + b d_2)`` depends on the scale of ``d``: ReLU networks are invariant to
scaling a layer's incoming weights by ``c`` and the next layer's by ``1/c``, so an unscaled
Gaussian direction moves small filters far and large ones hardly at all, and two networks'
plots cannot be compared. Li et al. ("Visualizing the Loss Landscape of Neural Nets", 2018)
rescale each *filter* of the direction to the norm of the same filter in ``w``::

    d_j  <-  d_j / |d_j| * |w_j|

A filter is one output unit's incoming weights: a row ``W[j]`` of sgdlab's output-major dense
weights ``W: (n_out, n_in)``, and one output channel ``K[j]`` of a convolution kernel
``K: (O, kh, kw, I)`` (:func:`sgdlab.models.cnn`; Equinox's ``(O, I, kh, kw)`` too). Flax
stores its ``kernel`` leaves input-major (dense ``(n_in, n_out)``, convolution
``(kh, kw, I, O)``), so there a filter is a slice along the last axis. Bias leaves get
direction 0, as in Li et al., whose plots ignore biases; other 1-D leaves are scaled as one
filter.
"""

from __future__ import annotations

import jax
import numpy as np

from .._types import Params
from ..errors import ConfigError
from ..losses import is_bias

__all__ = ["random_direction", "random_directions", "check_normalize", "NORMALIZATIONS"]

NORMALIZATIONS = ("filter", "layer", "none")


def _filter_axis(path) -> int:
    """The axis that indexes filters: the last for Flax's input-major ``kernel`` leaves, the
    first (output-major) otherwise."""
    names = [getattr(e, "key", None) or getattr(e, "name", None) for e in path]
    names = [n for n in names if n not in (None, "value", "raw_value")]
    return -1 if names and names[-1] == "kernel" else 0


def _scale_leaf(d: np.ndarray, w: np.ndarray, how: str, axis: int = 0) -> np.ndarray:
    if how == "none":
        return d
    if how == "layer" or d.ndim < 2:
        return d / (np.linalg.norm(d) + 1e-12) * np.linalg.norm(w)
    # one norm per filter: over every axis but the one that indexes filters
    axes = tuple(a for a in range(d.ndim) if a != axis % d.ndim)
    dn = np.sqrt(np.sum(d * d, axis=axes, keepdims=True))
    wn = np.sqrt(np.sum(w * w, axis=axes, keepdims=True))
    return d / (dn + 1e-12) * wn


def check_normalize(normalize: str) -> None:
    if normalize not in NORMALIZATIONS:
        raise ConfigError(f"unknown direction normalisation {normalize!r}; valid: "
                          f"{', '.join(NORMALIZATIONS)}")


def random_direction(rng: np.random.Generator, params: Params,
                     normalize: str = "filter") -> np.ndarray:
    """A Gaussian direction shaped like ``params``, scaled per ``normalize``, as a flat
    float64 vector ``(D,)`` in the leaf order of ``jax.flatten_util.ravel_pytree``.

    ``normalize``: ``"filter"`` (per output unit or convolution filter, Li et al.; see the
    module docstring), ``"layer"`` (per leaf) or ``"none"``.
    Drawn on the host with NumPy: a direction is needed a few times per run, and compiling a
    JAX sampler for it would cost more than it saves.
    """
    check_normalize(normalize)
    parts = []
    for path, w in jax.tree_util.tree_flatten_with_path(params)[0]:
        w = np.asarray(w, np.float64)
        if is_bias(path) and normalize != "none":
            parts.append(np.zeros(w.size))
            continue
        parts.append(_scale_leaf(rng.standard_normal(w.shape), w, normalize,
                                 _filter_axis(path)).ravel())
    return np.concatenate(parts)


def random_directions(rng: np.random.Generator, params: Params, n: int,
                      normalize: str = "filter") -> np.ndarray:
    """``n`` independent directions ``(n, D)`` from one generator."""
    return np.stack([random_direction(rng, params, normalize) for _ in range(n)])
