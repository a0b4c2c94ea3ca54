"""Feeders and evaluators for the fed-batch loop (:mod:`.stream_fit`).

A *feeder* hands the host loop the rows of the next steps, already in step order:

    take(k, pad_to) -> X (pad_to, B_local, d) float32, y (pad_to, B_local) labels,
                       w (pad_to, B_local) float32, count (pad_to,) real examples per global step

* :class:`~sgdlab.data.stream.ShardStream` streams them from disk.
* :class:`MemoryFeeder` gathers them from an in-memory training set with the same
  :class:`~sgdlab.data.sampling.BatchPlan` an in-memory run uses; with several processes each
  takes its slice ``[rank * B / P, (rank + 1) * B / P)`` of every global batch, so the global
  batches and their order equal a one-process run's.

An *evaluator* maps parameters to validation metrics over the whole validation set, either in
memory (compiled once, as :mod:`.evaluate` does) or streamed load by load through one compiled
shape, summing the per-load sums.
"""

from __future__ import annotations

import numpy as np

from ..data.sampling import BatchPlan
from ..errors import ConfigError
from .evaluate import BLOCK, metrics_from_stats


def host_targets(loss, y: np.ndarray) -> np.ndarray:
    """Labels as the loss wants them, in NumPy (``encode_targets`` without a device trip)."""
    if loss.target_kind == "sign":
        return 2.0 * y.astype(np.float32) - 1.0
    if loss.target_kind == "index":
        return y.astype(np.int32)
    return y.astype(np.float32)


class MemoryFeeder:
    """Global batches from a ``BatchPlan`` over in-memory rows; this rank's slice of each."""

    def __init__(self, X: np.ndarray, y: np.ndarray, plan: BatchPlan, rank: int = 0,
                 world: int = 1):
        self.X, self.y, self.plan = X, y, plan
        self.rank, self.world = rank, world
        self.n, self.epoch_rows = plan.n, plan.epoch_rows  # the global plan's epochs
        self._share(plan.batch_size)

    def _share(self, batch_size: int) -> None:
        if batch_size % self.world:
            raise ConfigError(f"batch size {batch_size} must be a multiple of the number "
                              f"of processes ({self.world}): each process takes an equal share")
        self.local_batch = batch_size // self.world
        self.lo = self.rank * self.local_batch
        self.steps_per_epoch = self.plan.steps_per_epoch

    def set_batch_size(self, batch_size: int) -> None:
        """Global batches of ``batch_size`` from the next step on (the plan goes on where it
        is; this process takes its new share of each)."""
        if batch_size % self.world:
            self._share(batch_size)  # refuses
        self.plan.set_batch_size(batch_size)
        self._share(batch_size)

    def take(self, k: int, pad_to: int | None = None):
        idx, w = self.plan.take(k, pad_to)
        mine = idx[:, self.lo:self.lo + self.local_batch]
        return (self.X[mine], self.y[mine], np.ascontiguousarray(w[:, self.lo:self.lo +
                                                                   self.local_batch]),
                w.sum(axis=1).astype(np.int64))

    def seek(self, epoch: int, step_in_epoch: int, row: int | None = None) -> None:
        self.plan.seek(epoch, step_in_epoch, row)

    @property
    def position(self) -> dict:
        return self.plan.position

    def close(self) -> None:
        pass


class StreamEvaluator:
    """Whole-set evaluation of validation blocks streamed from a shard set.

    Each load is cut into pieces of ``nb * blk`` rows (the last one padded with weight 0), so
    one compiled shape serves every piece; the per-block statistics are added exactly on the host.
    """

    def __init__(self, evaluate_fn, params, shards, blocks, load_rows: int, transform, loss,
                 regression: bool):
        import jax
        from ..data.stream import eval_loads
        self.shards, self.blocks, self.load_rows = shards, blocks, load_rows
        self.transform, self.loss, self.regression = transform, loss, regression
        self._eval_loads = eval_loads
        n_val = int(shards.block_sizes[blocks].sum())
        self.blk = min(BLOCK, n_val)
        self.piece = self.blk * max(1, min(load_rows, n_val) // self.blk)
        shape = tuple(shards.example_shape)
        x = jax.ShapeDtypeStruct((self.piece // self.blk, self.blk) + shape, np.float32)
        t_dtype = host_targets(loss, np.zeros(1, shards.y_dtype)).dtype
        t = jax.ShapeDtypeStruct(x.shape[:2], t_dtype)
        yy = jax.ShapeDtypeStruct(x.shape[:2], shards.y_dtype)
        wt = jax.ShapeDtypeStruct(x.shape[:2], np.float32)
        self.run = jax.jit(evaluate_fn).lower(params, x, t, yy, wt).compile()

    def __call__(self, params) -> dict:
        blocks, pen = [], 0.0
        loads = self._eval_loads(self.shards, self.blocks, self.load_rows, self.transform)
        try:
            for X, y in loads:
                for a in range(0, len(y), self.piece):
                    xs, ys = X[a:a + self.piece], y[a:a + self.piece]
                    r = len(ys)
                    Xp = np.zeros((self.piece,) + X.shape[1:], np.float32)
                    yp = np.zeros(self.piece, y.dtype)
                    wp = np.zeros(self.piece, np.float32)
                    Xp[:r], yp[:r], wp[:r] = xs, ys, 1.0
                    shape = (self.piece // self.blk, self.blk)
                    stats, pen = self.run(params, Xp.reshape(shape + X.shape[1:]),
                                         host_targets(self.loss, yp).reshape(shape),
                                         yp.reshape(shape), wp.reshape(shape))
                    blocks.append(np.asarray(stats, np.float64))
        finally:
            loads.close()
        return metrics_from_stats(np.concatenate(blocks), float(pen), self.regression)
