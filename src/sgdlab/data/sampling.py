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

The batch size may change between steps (a batch-size schedule, :meth:`BatchPlan.set_batch_size`).
A plan then reads an epoch as a stream of *slots* (:class:`EpochRows`): the epoch's order for
``shuffle`` and ``sequential`` (``N`` slots, then padding), its stream of i.i.d. draws for
``replacement``. Each step takes the next ``B`` slots of the stream at the batch size in effect,
so a change inside an epoch continues the same permutation (or the same draws) in batches of the
new size, and the position is ``(epoch, slot)``. The epoch ends when its ``N`` slots are used
(``replacement``: when ``N`` draws or more were taken), or with ``drop_last`` as soon as fewer
than the batch size in effect remain (the rest of the order is dropped), checked after every
step and again when the batch size changes.
"""

from __future__ import annotations

import math
from dataclasses import InitVar, dataclass

import numpy as np

from ..errors import ConfigError, choices_message

SAMPLINGS = ("shuffle", "replacement", "sequential")


def steps_per_epoch(n: int, batch_size: int, drop_last: bool = False) -> int:
    """Number of optimisation steps in one epoch of ``n`` examples.

    >>> steps_per_epoch(2000, 200), steps_per_epoch(32000, 32), steps_per_epoch(10, 3)
    (10, 1000, 4)
    """
    return n // batch_size if drop_last else math.ceil(n / batch_size)


@dataclass(frozen=True)
class EpochRows:
    """How epochs are cut into steps at any batch size: the arithmetic a batch plan, a shard
    stream and a batch-size schedule share.

    ``rows``: the rows each process draws per epoch (one entry for one process, or for a
    global plan that processes slice); a step at (global) batch size ``B`` takes ``b = B /
    len(rows)`` slots of every process's stream, from slot ``slot`` of the epoch. Process
    ``r``'s step holds ``clip(rows[r] - slot, 0, b)`` real rows (the rest is masked), unless
    ``every_slot`` (in-memory sampling with replacement: every slot is a draw). An epoch has
    ``M = max(rows)`` slots; it ends once ``slot >= M``, or with ``drop_last`` once fewer than
    ``b`` slots remain (:meth:`ends`).

    >>> rows = EpochRows((10,))
    >>> rows.steps_left(0, 3), rows.examples(0, 3, 4), rows.examples(6, 3, 2)
    (4, 10, 4)
    >>> EpochRows((10,), drop_last=True).steps_left(0, 3)
    3
    """

    rows: tuple
    drop_last: bool = False
    every_slot: bool = False

    @property
    def slots(self) -> int:
        """``M``: slots per epoch (the largest process's rows)."""
        return max(self.rows)

    @property
    def n(self) -> int:
        """Training rows in all (every process's)."""
        return sum(self.rows)

    def local(self, batch_size: int) -> int:
        """Slots per step of each process at global batch size ``batch_size``."""
        return batch_size // len(self.rows)

    def ends(self, slot: int, batch_size: int) -> bool:
        """Whether the epoch is over at ``slot`` for a step of ``batch_size``."""
        left = self.slots - slot
        return left <= 0 or (self.drop_last and left < self.local(batch_size))

    def steps_left(self, slot: int, batch_size: int) -> int:
        """Steps of ``batch_size`` from ``slot`` to the end of the epoch."""
        left, b = self.slots - slot, self.local(batch_size)
        if left <= 0:
            return 0
        return left // b if self.drop_last else -(-left // b)

    def examples(self, slot: int, batch_size: int, k: int) -> int:
        """Real examples (all processes) in ``k <= steps_left`` steps from ``slot``."""
        if self.every_slot:
            return k * batch_size
        b = self.local(batch_size)
        return sum(min(max(r - slot, 0), k * b) for r in self.rows)


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
      batch_size: ``B``, slots per step (:meth:`set_batch_size` changes it between steps).
      sampling: one of :data:`SAMPLINGS`.
      seed: the seed every epoch's order derives from.
      drop_last: drop the last partial batch of an epoch instead of masking it.
      epoch, step_in_epoch: the position of the next step to draw.
      row: the slot of the epoch's stream the next step starts at (see the module docstring);
        None: ``step_in_epoch * batch_size``, which holds while the batch size never changed.
    """

    n: int
    batch_size: int
    sampling: str = "shuffle"
    seed: int = 0
    drop_last: bool = False
    epoch: int = 0
    step_in_epoch: int = 0
    row: InitVar[int | None] = None

    def __post_init__(self, row):
        if self.sampling not in SAMPLINGS:
            raise ConfigError(choices_message("sampling", self.sampling, SAMPLINGS))
        self.epoch_rows = EpochRows((self.n,), self.drop_last, self.sampling == "replacement")
        self._check(self.batch_size)
        self.steps_per_epoch = steps_per_epoch(self.n, self.batch_size, self.drop_last)
        self._cached = (-1, 0)  # (epoch, slots drawn) of the stream below
        self._idx = self._w = None
        self.seek(self.epoch, self.step_in_epoch, row)

    def _check(self, batch_size: int) -> None:
        if not 1 <= batch_size <= self.n:
            raise ConfigError(
                f"batch size must be between 1 and the number of training examples ({self.n}), "
                f"got {batch_size}"
            )

    # -- one epoch's stream of slots: indices (L,) int32 and weights (L,) float32 -----------
    def _stream(self, epoch: int, length: int) -> tuple[np.ndarray, np.ndarray]:
        """At least ``length`` slots of ``epoch``'s stream; slots past the ``N`` rows of an
        order are padding (index 0, weight 0). A longer draw of the same ``(seed, epoch)``
        starts with the same numbers, so the stream does not depend on the batch sizes."""
        if self._cached[0] == epoch and self._cached[1] >= length:
            return self._idx, self._w
        n = self.n
        size = max(length, n + self.batch_size)
        rng = np.random.default_rng([self.seed, epoch])
        if self.sampling == "replacement":
            idx = rng.integers(0, n, size=size, dtype=np.int64).astype(np.int32)
            w = np.ones(size, np.float32)
        else:
            order = rng.permutation(n) if self.sampling == "shuffle" else np.arange(n)
            idx = np.zeros(size, np.int32)
            idx[:n] = order
            w = np.zeros(size, np.float32)
            w[:n] = 1.0
        self._cached, self._idx, self._w = (epoch, size), idx, w
        return idx, w

    def take(self, k: int, pad_to: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The next ``k`` steps as ``idx: (pad_to, B) int32`` and ``w: (pad_to, B) float32``.

        Rows past ``k`` (up to ``pad_to``, default ``k``) are padding: index 0, weight 0.
        Advances the position by ``k`` steps, crossing epoch boundaries as needed.
        """
        pad_to = k if pad_to is None else pad_to
        b = self.batch_size
        out_i = np.zeros((pad_to, b), np.int32)
        out_w = np.zeros((pad_to, b), np.float32)
        self._roll_over()  # a position sought before the batch size was set
        row = 0
        while row < k:
            m = min(k - row, self.epoch_rows.steps_left(self.slot, b))
            end = self.slot + m * b
            idx, w = self._stream(self.epoch, end)
            out_i[row:row + m] = idx[self.slot:end].reshape(m, b)
            out_w[row:row + m] = w[self.slot:end].reshape(m, b)
            row += m
            self.slot, self.step_in_epoch = end, self.step_in_epoch + m
            self._roll_over()
        return out_i, out_w

    def _roll_over(self) -> None:
        """Start the next epoch if this one is over for the batch size in effect."""
        if self.epoch_rows.ends(self.slot, self.batch_size):
            self.epoch, self.slot, self.step_in_epoch = self.epoch + 1, 0, 0

    def set_batch_size(self, batch_size: int) -> None:
        """Draw the next steps at ``batch_size``, continuing the epoch's stream where it is
        (with ``drop_last`` the epoch ends here if fewer slots than ``batch_size`` remain)."""
        self._check(batch_size)
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch(self.n, batch_size, self.drop_last)
        self._roll_over()

    def seek(self, epoch: int, step_in_epoch: int, row: int | None = None) -> None:
        """Draw next from step ``step_in_epoch`` of ``epoch`` (see :func:`seek_position`), at
        slot ``row`` of its stream when given (as :attr:`position` records it; whether
        the epoch is over there is decided at the next step, by the batch size then in
        effect)."""
        if row is None:
            self.epoch, self.step_in_epoch = seek_position(epoch, step_in_epoch,
                                                           self.steps_per_epoch)
            self.slot = self.step_in_epoch * self.batch_size
        else:
            self.epoch, self.step_in_epoch, self.slot = int(epoch), int(step_in_epoch), int(row)

    @property
    def position(self) -> dict:
        """Where the next step starts, enough to rebuild the plan exactly at any batch size
        (``row``: the slot of the epoch's stream)."""
        return {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "row": self.slot}
