"""The loss surface of one problem: many parameter vectors evaluated per compiled call.

Every landscape tool (slices, interpolation, convexity probe) asks the same question, "what is
the objective at these P points of parameter space?", for P from a handful to a 51 x 51 grid.
Answering point by point from Python would cost one dispatch per point; here one compiled
program takes all P points, maps over chunks of C points (``lax.map``) and ``vmap``\\ s within a
chunk, so memory is bounded by C (not P) and the host makes one call.

Parameters travel as flat vectors ``w: (D,)`` (``jax.flatten_util.ravel_pytree`` order), so a
point on a line or a plane is plain arithmetic: ``w = c + coefs @ basis`` with a centre
``c: (D,)``, directions ``basis: (m, D)`` and coordinates ``coefs: (P, m)``.

The value at ``w`` is the training objective on the *whole* dataset given::

    J(w) = (1/N) sum_i loss(f(w, x_i), t_i)  +  l2/2 * sum_{weights W} ||W||^2
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .._types import Loss, Model, Params
from ..data.dataset import Dataset
from ..data.split import Standardizer, split
from ..engine.config import TrainConfig
from ..engine import resolve_model
from ..errors import ConfigError
from ..losses import encode_targets, l2_penalty

__all__ = ["Problem", "Surface", "flatten", "relative_distance", "MEMORY_BUDGET"]

#: bytes of activations one chunk of points may hold; bounds memory whatever the grid size.
MEMORY_BUDGET = 256 * 2**20


def flatten(params: Params) -> np.ndarray:
    """A parameter pytree as one float vector ``(D,)`` in ``ravel_pytree`` order."""
    return np.asarray(ravel_pytree(params)[0])


@dataclass(frozen=True)
class Problem:
    """One configuration on one fixed split: what every restart and slice shares.

    The split and the standardisation depend only on ``split_seed``, never on the training
    seed, so restarts differ in their initialisation and batch order and in nothing else.
    """

    train: Dataset
    validation: Dataset | None
    config: TrainConfig
    model: Model
    loss: Loss
    standardizer: Standardizer | None

    @classmethod
    def from_data(cls, data: Dataset, config: TrainConfig, split_seed: int = 0) -> "Problem":
        parts = split(data, validation=config.validation_fraction, test=0.0, seed=split_seed)
        model, loss = resolve_model(config, n_classes=data.n_classes)
        std = Standardizer().fit(parts.train.X) if config.standardize else None
        return cls(parts.train, parts.validation, config, model, loss, std)

    def surface(self, like: Params, part: str = "train", x64: bool = False) -> "Surface":
        """The objective on the ``"train"`` or ``"validation"`` part, for params shaped ``like``."""
        if part not in ("train", "validation"):
            raise ConfigError(f"surface part must be 'train' or 'validation', got {part!r}")
        ds = self.train if part == "train" else self.validation
        if ds is None:
            raise ConfigError("no validation data: set a validation fraction > 0")
        X = ds.X if self.standardizer is None else self.standardizer.transform(ds.X)
        return Surface(self.model, self.loss, self.config.l2, like, X, ds.y,
                       self.train.n_classes, x64=x64)


class Surface:
    """Objective and accuracy of flat parameter vectors on a fixed dataset ``X: (N, d)``.

    ``x64=True`` evaluates in float64 (inside ``jax.enable_x64``), for tests of inequalities
    that float32 rounding could blur. Accuracy is NaN for regression losses.
    """

    def __init__(self, model: Model, loss: Loss, l2: float, like: Params, X, y,
                 n_classes: int, x64: bool = False, memory_budget: int = MEMORY_BUDGET):
        self.x64 = bool(x64)
        self.l2 = float(l2)
        self.model, self.loss = model, loss
        with jax.enable_x64(self.x64):
            dtype = jnp.float64 if self.x64 else jnp.float32
            flat, self._unravel = ravel_pytree(jax.tree_util.tree_map(
                lambda a: jnp.asarray(a, dtype), like))
            self.dim = int(flat.shape[0])
            self.dtype = dtype
            self.X = jnp.asarray(np.asarray(X), dtype)
            self.T = encode_targets(loss, y, n_classes, dtype=dtype)
            self.Y = jnp.asarray(np.asarray(y))
        self.n = int(self.X.shape[0])
        self.classification = loss.target_kind != "real"
        leaves = [np.shape(a) for a in jax.tree_util.tree_leaves(like) if np.ndim(a)]
        # a convolution's activations are the example's pixels times its filters
        filters = max([max(s[0], s[-1]) for s in leaves if len(s) == 4] or [1])
        widest = max([math.prod(self.X.shape[1:]) * filters] + [int(s[-1]) for s in leaves])
        per_point = self.n * widest * (8 if self.x64 else 4) * 4  # a few live activations
        self.chunk = int(min(256, max(1, memory_budget // per_point)))
        self._fns: dict = {}
        self.compile_seconds = 0.0   # total time spent compiling evaluation programs

    # -- one point ---------------------------------------------------------------------------
    def _stats(self, w):
        """``w: (D,) -> (J(w), accuracy)`` on the whole dataset."""
        params = self._unravel(w)
        out = self.model.apply(params, self.X)
        value = jnp.mean(self.loss.fn(out, self.T))
        if self.l2:
            value = value + self.l2 * l2_penalty(params)
        if self.classification:
            acc = jnp.mean((self.loss.predict(out) == self.Y).astype(value.dtype))
        else:
            acc = jnp.full((), jnp.nan, value.dtype)
        return value, acc

    def _objective(self, w):
        return self._stats(w)[0]

    # -- many points -------------------------------------------------------------------------
    def _chunked(self, per_point, rows):
        """Apply ``per_point`` to every row of ``rows: (P, ...)``, C rows per vmapped call."""
        P = rows.shape[0]
        C = min(self.chunk, P)
        n_chunks = -(-P // C)
        pad = n_chunks * C - P
        # Padding repeats the first row: a finite point, whose results are dropped below.
        padded = jnp.concatenate([rows, jnp.repeat(rows[:1], pad, axis=0)]) if pad else rows
        out = jax.lax.map(jax.vmap(per_point), padded.reshape((n_chunks, C) + rows.shape[1:]))
        return jax.tree_util.tree_map(lambda a: a.reshape((n_chunks * C,) + a.shape[2:])[:P], out)

    def _function(self, name):
        if name == "plane":
            def fn(center, basis, coefs):
                return self._chunked(lambda c: self._stats(center + c @ basis), coefs)
        elif name == "plane_grad":
            g = jax.grad(self._objective)

            def fn(center, basis, coefs):
                return self._chunked(lambda c: basis @ g(center + c @ basis), coefs)
        else:  # "points"
            def fn(points):
                return self._chunked(self._stats, points)
        return fn

    def _run(self, name, *args):
        """Call the compiled ``name`` on ``args``; compile once per shape, timing it apart
        (``compile_seconds``) so evaluation times stay honest."""
        key = (name,) + tuple(a.shape for a in args)
        if key not in self._fns:
            t = time.perf_counter()
            self._fns[key] = jax.jit(self._function(name)).lower(*args).compile()
            self.compile_seconds += time.perf_counter() - t
        return self._fns[key](*args)

    def _arr(self, a):
        return jnp.asarray(np.asarray(a), self.dtype)

    def plane(self, center, basis, coefs) -> tuple[np.ndarray, np.ndarray]:
        """Objective and accuracy at ``center + coefs @ basis``.

        ``center: (D,)``, ``basis: (m, D)``, ``coefs: (P, m)`` -> two arrays ``(P,)``.
        """
        with jax.enable_x64(self.x64):
            v, a = self._run("plane", self._arr(center), self._arr(basis), self._arr(coefs))
            return np.asarray(v, np.float64), np.asarray(a, np.float64)

    def plane_gradient(self, center, basis, coefs) -> np.ndarray:
        """Gradient of ``J(center + c @ basis)`` with respect to ``c``: ``(P, m)``.

        It equals ``basis @ grad J`` and is perpendicular to the level curves of the restricted
        function drawn in the ``c`` coordinates.
        """
        with jax.enable_x64(self.x64):
            g = self._run("plane_grad", self._arr(center), self._arr(basis), self._arr(coefs))
            return np.asarray(g, np.float64)

    def points(self, points) -> tuple[np.ndarray, np.ndarray]:
        """Objective and accuracy at each row of ``points: (P, D)`` -> ``(P,)``, ``(P,)``."""
        with jax.enable_x64(self.x64):
            v, a = self._run("points", self._arr(points))
            return np.asarray(v, np.float64), np.asarray(a, np.float64)

    def value(self, w) -> float:
        """``J(w)`` at one flat vector."""
        return float(self.points(np.asarray(w)[None])[0][0])


def relative_distance(wa, wb) -> float:
    """``|wa - wb| / (|wa| + |wb|)``: 0 for equal vectors, at most 1 (opposite ones)."""
    wa, wb = np.asarray(wa, np.float64), np.asarray(wb, np.float64)
    denom = np.linalg.norm(wa) + np.linalg.norm(wb)
    return float(np.linalg.norm(wa - wb) / denom) if denom > 0 else 0.0
