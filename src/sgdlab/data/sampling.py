"""Batch index plans: which examples each optimisation step sees.

Every step sees a fixed-size batch of ``B`` row indices plus a 0/1 weight per slot, so one
compiled program serves every step, including a last partial batch (its empty slots have weight
0 and the mean loss divides by the real count). Three ways to draw a batch:

* ``shuffle``: a fresh permutation of the ``N`` training rows per epoch, cut into consecutive
  batches; every example is seen exactly once per epoch.
* ``replacement``: each slot is an i.i.d. uniform draw from ``0..N-1``.
* ``sequential``: rows ``0..N-1`` in order, cut into consecutive batches.

Accounting: an epoch has ``ceil(N / B)`` steps (``floor`` with ``drop_last``, which drops the
partial batch instead of masking it). For ``replacement`` an epoch is defined as the same number
of steps, i.e. about ``N`` examples drawn.

The order of epoch ``e`` is a pure function of ``(seed, e)``, so a plan can be restarted at any
``(epoch, step_in_epoch)`` position and continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, choices_message

SAMPLINGS = ("shuffle", "replacement", "sequential")


def steps_per_epoch(n: int, batch_size: int, drop_last: bool = False) -> int:
    """Number of optimisation steps in one epoch of ``n`` examples.

    >>> steps_per_epoch(2000, 200), steps_per_epoch(32000, 32), steps_per_epoch(10, 3)
    (10, 1000, 4)
    """
    return n // batch_size if drop_last else math.ceil(n / batch_size)


def seek_position(epoch: int, step_in_epoch: int, spe: int) -> tuple[int, int]:
    """The position ``(epoch, step_in_epoch)`` names, for epochs of ``spe`` steps.

    A step at or past the epoch's end (a checkpoint taken with a larger epoch, resumed after a
    forced batch-size change) means the start of the next epoch.
    """
    if step_in_epoch >= spe:
        return int(epoch) + 1, 0
    return int(epoch), int(step_in_epoch)


@dataclass
class BatchPlan:
    """Draws ``(indices, weights)`` for consecutive steps.

    Attributes:
      n: number of training examples.
      batch_size: ``B``, slots per step.
      sampling: one of :data:`SAMPLINGS`.
      seed: the seed every epoch's order derives from.
      drop_last: drop the last partial batch of an epoch instead of masking it.
      epoch, step_in_epoch: the position of the next step to draw.
    """

    n: int
    batch_size: int
    sampling: str = "shuffle"
    seed: int = 0
    drop_last: bool = False
    epoch: int = 0
    step_in_epoch: int = 0

    def __post_init__(self):
        if self.sampling not in SAMPLINGS:
            raise ConfigError(choices_message("sampling", self.sampling, SAMPLINGS))
        if not 1 <= self.batch_size <= self.n:
            raise ConfigError(
                f"batch size must be between 1 and the number of training examples ({self.n}), "
                f"got {self.batch_size}"
            )
        self.steps_per_epoch = steps_per_epoch(self.n, self.batch_size, self.drop_last)
        self._cached_epoch = -1
        self._idx = self._w = None

    # -- one epoch at a time; the arrays are (steps_per_epoch, B) ---------------------------
    def _epoch_arrays(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        if epoch == self._cached_epoch:
            return self._idx, self._w
        n, b, spe = self.n, self.batch_size, self.steps_per_epoch
        rng = np.random.default_rng([self.seed, epoch])
        if self.sampling == "replacement":
            idx = rng.integers(0, n, size=(spe, b), dtype=np.int64).astype(np.int32)
            w = np.ones((spe, b), np.float32)
        else:
            order = rng.permutation(n) if self.sampling == "shuffle" else np.arange(n)
            used = spe * b
            if used >= n:  # pad the last batch with index 0 at weight 0
                idx = np.zeros(used, np.int32)
                idx[:n] = order
                w = np.zeros(used, np.float32)
                w[:n] = 1.0
            else:  # drop_last: the tail of the order is not used this epoch
                idx = order[:used].astype(np.int32)
                w = np.ones(used, np.float32)
            idx, w = idx.reshape(spe, b), w.reshape(spe, b)
        self._cached_epoch, self._idx, self._w = epoch, idx, w
        return idx, w

    def take(self, k: int, pad_to: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The next ``k`` steps as ``idx: (pad_to, B) int32`` and ``w: (pad_to, B) float32``.

        Rows past ``k`` (up to ``pad_to``, default ``k``) are padding: index 0, weight 0.
        Advances the position by ``k`` steps, crossing epoch boundaries as needed.
        """
        pad_to = k if pad_to is None else pad_to
        out_i = np.zeros((pad_to, self.batch_size), np.int32)
        out_w = np.zeros((pad_to, self.batch_size), np.float32)
        row = 0
        while row < k:
            idx, w = self._epoch_arrays(self.epoch)
            m = min(k - row, self.steps_per_epoch - self.step_in_epoch)
            out_i[row:row + m] = idx[self.step_in_epoch:self.step_in_epoch + m]
            out_w[row:row + m] = w[self.step_in_epoch:self.step_in_epoch + m]
            row += m
            self.step_in_epoch += m
            if self.step_in_epoch == self.steps_per_epoch:
                self.epoch, self.step_in_epoch = self.epoch + 1, 0
        return out_i, out_w

    def seek(self, epoch: int, step_in_epoch: int) -> None:
        """Draw next from step ``step_in_epoch`` of ``epoch`` (see :func:`seek_position`)."""
        self.epoch, self.step_in_epoch = seek_position(epoch, step_in_epoch,
                                                       self.steps_per_epoch)

    @property
    def position(self) -> dict:
        """Where the next step starts, enough to rebuild the plan exactly."""
        return {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch}
