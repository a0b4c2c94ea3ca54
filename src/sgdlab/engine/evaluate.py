"""Evaluation on the whole validation set, compiled once, in fixed-size blocks.

Never a subset (DESIGN decision 4): the set is padded to a multiple of the block size with
weight-0 rows and scanned block by block, accumulating weighted sums, so any set size has one
compiled shape. The host turns the sums into metrics:

* classification: loss, accuracy = correct / n
* regression: loss, MSE = SSE / n, R^2 = 1 - SSE / SST with SST = sum y^2 - (sum y)^2 / n
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._types import Loss, Model
from ..losses import l2_penalty

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
        return np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)]).reshape(
            (nb, blk) + a.shape[1:])

    w = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)]).reshape(nb, blk)
    return EvalData(*(jax.device_put(padded(a)) for a in (X, T, Y)), jax.device_put(w), n)


def make_evaluator(model: Model, loss: Loss, l2: float, regression: bool):
    """``evaluate(params, data) -> sums (5,)``: loss, count, correct|SSE, sum y, sum y^2."""

    def evaluate(params, X, T, Y, W):
        def body(acc, xs):
            xb, tb, yb, wb = xs
            out = model.apply(params, xb)
            per = loss.fn(out, tb)
            pred = loss.predict(out)
            if regression:
                hit = (pred - yb) ** 2
            else:
                hit = (pred == yb).astype(jnp.float32)
            yf = yb.astype(jnp.float32)
            sums = jnp.stack([jnp.sum(wb * per), jnp.sum(wb), jnp.sum(wb * hit),
                              jnp.sum(wb * yf), jnp.sum(wb * yf * yf)])
            return acc + sums.astype(acc.dtype), None

        acc, _ = jax.lax.scan(body, jnp.zeros(5, jnp.float32), (X, T, Y, W))
        return acc, l2 * l2_penalty(params)

    return evaluate


def compile_evaluator(evaluate, params, data: EvalData):
    return jax.jit(evaluate).lower(params, data.X, data.T, data.Y, data.W).compile()


def metrics_from_sums(sums: np.ndarray, penalty: float, regression: bool,
                      prefix: str = "val_") -> dict:
    """Turn accumulated sums into named metrics (loss includes the L2 term)."""
    loss_sum, n, hit, sy, syy = (float(v) for v in sums)
    out = {f"{prefix}loss": loss_sum / n + float(penalty)}
    if regression:
        sst = syy - sy * sy / n
        out[f"{prefix}mse"] = hit / n
        out[f"{prefix}r2"] = 1.0 - hit / sst if sst > 0 else float("nan")
    else:
        out[f"{prefix}accuracy"] = hit / n
    return out
