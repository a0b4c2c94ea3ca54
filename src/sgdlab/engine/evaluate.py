"""Evaluation on the whole validation set, compiled once, in fixed-size blocks.

Never a subset, so a score is never sampled noise: the set is padded to a multiple of the block size with
weight-0 rows and scanned block by block, so any set size has one compiled shape. Each block
yields the sufficient statistics of :mod:`sgdlab.losses` (``accuracy`` or ``r2``) plus the
weighted loss sum; the host adds the blocks exactly (``sum_stats``) and turns them into metrics:

* classification: loss = sum w l / n (+ L2 term), accuracy = correct / n
* regression: loss, MSE = SSE / n, R^2 = 1 - SSE / SS_tot
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._types import Loss, Model
from ..losses import accuracy, accuracy_value, l2_penalty, mse_value, r2, r2_value, sum_stats
from . import cache
from .memory import check_fits

BLOCK = 2048


class EvalData(NamedTuple):
    """Device arrays: ``X (nb, blk, d)``, ``T`` loss targets, ``Y`` labels, ``W`` 0/1 weights."""

    X: jax.Array
    T: jax.Array
    Y: jax.Array
    W: jax.Array
    n: int


def to_blocks(X: np.ndarray, T: np.ndarray, Y: np.ndarray, block: int = BLOCK) -> EvalData:
    """Pad to whole blocks (weight 0) and move to the device."""
    n = len(X)
    blk = max(1, min(block, n))
    nb = -(-n // blk)
    pad = nb * blk - n

    def padded(a):
        a = np.asarray(a)
        return np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)]).reshape(
            (nb, blk) + a.shape[1:])

    w = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)]).reshape(nb, blk)
    return EvalData(*(jax.device_put(padded(a)) for a in (X, T, Y)), jax.device_put(w), n)


def eval_blocks(loss: Loss, X, y, n_classes: int, prep=None) -> EvalData:
    """A validation set as a :class:`Validator` evaluates it: features through ``prep`` (raw
    float32 without), targets encoded for ``loss``, in blocks on the device. Runs that share
    the data, the loss and the preprocessing can share these blocks (``Validator(data=)``)."""
    from ..losses import encode_targets
    X = prep(X) if prep is not None else np.asarray(X, np.float32)
    return to_blocks(X, np.asarray(encode_targets(loss, y, n_classes)), np.asarray(y))


def make_evaluator(model: Model, loss: Loss, l2: float, regression: bool, center: float = 0.0):
    """``evaluate(params, X, T, Y, W) -> (stats (nb, m), penalty)``, one stats row per block.

    Row layout: ``[loss_sum, *accuracy(...)]`` or ``[loss_sum, *r2(..., center)]``; ``center``
    (the training-label mean) keeps the R^2 sums from cancelling in float32.
    """

    def evaluate(params, X, T, Y, W):
        def block(xb, tb, yb, wb):
            out = model.apply(params, xb)
            loss_sum = jnp.sum(wb * loss.fn(out, tb))
            pred = loss.predict(out)
            stats = r2(pred, yb, wb, center) if regression else accuracy(pred, yb, wb)
            return jnp.stack([loss_sum, *(s.astype(jnp.float32) for s in stats)])

        return jax.lax.map(lambda b: block(*b), (X, T, Y, W)), l2 * l2_penalty(params)

    return evaluate


def compile_evaluator(evaluate, params, data: EvalData):
    return check_fits(jax.jit(evaluate).lower(params, data.X, data.T, data.Y, data.W).compile(),
                      "evaluating on the whole validation set")


def metrics_from_stats(stats: np.ndarray, penalty: float, regression: bool,
                       prefix: str = "val_") -> dict:
    """Add the per-block rows exactly and name the metrics (loss includes the L2 term)."""
    total = sum_stats(*np.asarray(stats, np.float64))
    loss_sum, rest = total[0], total[1:]
    n = rest[1]
    out = {f"{prefix}loss": loss_sum / n + float(penalty)}
    if regression:
        out[f"{prefix}mse"] = mse_value(rest[:2])
        out[f"{prefix}r2"] = r2_value(rest)
    else:
        out[f"{prefix}accuracy"] = accuracy_value(rest)
    return out


class Validator:
    """The whole-set evaluation of one model and loss on one dataset, compiled once.

    ``prep`` maps raw features to what the model sees (e.g. a standardiser's ``transform``);
    ``center`` is the training-label mean for regression (see :func:`make_evaluator`).
    ``validator(params) -> {"val_loss": ..., "val_accuracy" | "val_mse", "val_r2": ...}``.
    ``cache_key`` (from :func:`sgdlab.engine.cache.program_key`) lets equal validators share
    one compiled program.
    """

    def __init__(self, model: Model, loss: Loss, l2: float, X, y, n_classes: int, params,
                 prep=None, center: float = 0.0, prefix: str = "val_",
                 cache_key: tuple | None = None, data: EvalData | None = None):
        self.regression, self.prefix = loss.target_kind == "real", prefix
        self.data = data if data is not None else eval_blocks(loss, X, y, n_classes, prep)
        fn = make_evaluator(model, loss, l2, self.regression, center)
        if cache_key is None:
            self._compiled = compile_evaluator(fn, params, self.data)
        else:  # reuse a program compiled for the same model, loss, l2, centre and shapes
            key = cache_key + (self.regression, center,
                               cache.tree_signature((params, tuple(self.data[:4]))))
            self._compiled = cache.get_or_build(
                "evaluate", key, lambda: compile_evaluator(fn, params, self.data))

    def __call__(self, params) -> dict:
        d = self.data
        stats, penalty = self._compiled(params, d.X, d.T, d.Y, d.W)
        return metrics_from_stats(np.asarray(stats), float(penalty), self.regression,
                                  self.prefix)
