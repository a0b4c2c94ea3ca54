"""Streaming batches from a shard set through a bounded buffer, read ahead on a thread.

The training rows are a list of blocks (see :mod:`sgdlab.data.shards`). Each epoch
``e`` the stream

1. orders the blocks: a permutation drawn from ``(seed, e)`` for ``shuffle`` and
   ``replacement``, file order for ``sequential``;
2. groups consecutive blocks into **loads** of at most ``load_rows`` rows, the most that fits
   in a quarter of ``buffer_mb`` (a load is read, permuted into a second array, waits in the
   read-ahead slot, then is consumed: four load-sized arrays at most);
3. reorders rows inside each load: a permutation from ``(seed, e, load)`` for ``shuffle`` (so
   every row is seen exactly once per epoch), ``r`` i.i.d. draws from the load's ``r`` rows for
   ``replacement`` (i.i.d. within the buffer, not over the whole set), none for ``sequential``;
4. cuts the row stream into batches of ``B``, exactly as :class:`~sgdlab.data.sampling.
   BatchPlan` does: ``ceil(N / B)`` steps per epoch, the last batch masked with weight 0
   (``floor`` and no partial batch with ``drop_last``).

In ``sequential`` mode the batches are therefore the same rows in the same order as an
in-memory ``BatchPlan(sampling="sequential")``. A background thread reads and permutes the
next load while the device trains on the current one. Standardisation is *not* applied here:
the training kernel applies ``(x - mean) / scale`` on the device (see ``ShardStream.transform``),
which costs nothing next to a pass over every row on the host.

Several processes (``world > 1``): rank ``r`` owns blocks ``r, r + world, ...`` (in file
order) and cuts local batches of ``B / world``; every rank runs the largest rank's number of
steps, a rank that runs out pads with weight 0. The global batch is the sum of local batches.

The batch size may change between steps (a batch-size schedule): the stream goes on from the
row it reached, in local batches of the new size, with the epoch arithmetic of
:class:`~sgdlab.data.sampling.EpochRows` (the same as an in-memory plan's).
"""

from __future__ import annotations

import math
import queue
import threading
from typing import Callable, Iterator

import numpy as np

from ..errors import ConfigError, choices_message
from .sampling import SAMPLINGS, EpochRows, seek_position
from .shards import ShardSet

#: marks the end of an epoch's loads in the read-ahead queue
_END = object()


def load_rows_for(shards: ShardSet, buffer_mb: float) -> int:
    """Rows per load for a buffer of ``buffer_mb`` MiB (four loads' worth in memory at most)."""
    row_bytes = 4 * shards.d + shards.y_dtype.itemsize
    rows = int(buffer_mb * 2 ** 20) // (4 * row_bytes)
    biggest = int(shards.block_sizes.max())
    if rows < biggest:
        need = math.ceil(4 * biggest * row_bytes / 2 ** 20)
        raise ConfigError(
            f"buffer of {buffer_mb:g} MB holds {rows} rows per load but {shards.path} has blocks "
            f"of {biggest} rows; use --buffer-mb {need} or more, or convert with a smaller "
            "--block-rows")
    return rows


def group_loads(blocks: np.ndarray, sizes: np.ndarray, load_rows: int) -> list[np.ndarray]:
    """Consecutive blocks grouped greedily so each group has at most ``load_rows`` rows."""
    loads, cur, rows = [], [], 0
    for b in blocks:
        r = int(sizes[b])
        if cur and rows + r > load_rows:
            loads.append(np.array(cur))
            cur, rows = [], 0
        cur.append(int(b))
        rows += r
    if cur:
        loads.append(np.array(cur))
    return loads


def read_load(shards: ShardSet, blocks: np.ndarray):
    """The rows of ``blocks`` as one ``X (r, *example_shape) float32`` (``(r, d)`` for
    tabular data), ``y (r,)``."""
    r = int(shards.block_sizes[blocks].sum())
    X = np.empty((r,) + shards.example_shape, np.float32)
    y = np.empty(r, shards.y_dtype)
    at = 0
    for b in blocks:
        n = int(shards.block_sizes[b])
        shards.read_block(int(b), X[at:at + n], y[at:at + n])
        at += n
    return X, y


def aligned_empty(shape, dtype=np.float32, align: int = 64) -> np.ndarray:
    """An uninitialised array whose data starts on an ``align``-byte boundary.

    XLA on CPU can then use the host buffer in place (``jnp.from_dlpack`` without a copy);
    an unaligned one would be copied once more per chunk.
    """
    dtype = np.dtype(dtype)
    n = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(n + align, np.uint8)
    start = (-raw.ctypes.data) % align
    return raw[start:start + n].view(dtype).reshape(shape)


class Prefetch:
    """Runs an iterator on a daemon thread, ``depth`` items ahead; errors re-raise here."""

    def __init__(self, it: Iterator, depth: int = 1):
        self._q: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(it,), daemon=True)
        self._thread.start()

    def _run(self, it):
        try:
            for item in it:
                while not self._stop.is_set():
                    try:
                        self._q.put(("item", item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if self._stop.is_set():
                    return
            self._q.put(("done", None))
        except BaseException as e:  # handed to the consumer, raised there
            self._q.put(("error", e))

    def __iter__(self):
        return self

    def __next__(self):
        kind, item = self._q.get()
        if kind == "item":
            return item
        if kind == "error":
            raise item
        raise StopIteration

    def close(self):
        """Stop the thread and wait for it: it finishes at most the item it is reading, so no
        read happens after close (draining meanwhile, so a pending put cannot block it)."""
        self._stop.set()
        while True:
            try:
                while True:
                    self._q.get_nowait()
            except queue.Empty:
                pass
            if not self._thread.is_alive():
                return
            self._thread.join(timeout=0.05)


def standardize_inplace(transform) -> Callable | None:
    """``X -> (X - mean) / scale`` in place, the float32 arithmetic of Standardizer.transform
    (``mean``/``scale`` broadcast over the last axis: per feature, or per channel)."""
    if transform is None:
        return None
    mean, scale = transform.mean.astype(np.float32), transform.scale.astype(np.float32)

    def apply(X):
        X -= mean
        X /= scale
        return X

    return apply


class ShardStream:
    """Fixed-size batches from ``blocks`` of a shard set (see the module docstring).

    Rows come out as stored; ``transform`` (a fitted Standardizer or None) is kept for the
    consumer to apply.

    :meth:`take` mirrors ``BatchPlan.take`` but returns the rows themselves:
    ``X (pad_to, B_local, *example_shape) float32`` (``(pad_to, B_local, d)`` for tabular
    data), ``y (pad_to, B_local)``, ``w (pad_to, B_local)`` and the global number of real
    examples per step ``(pad_to,)``.

    Positioning (resume): :meth:`seek` ``(epoch, s)`` continues exactly as an uninterrupted
    stream would from step ``s`` of ``epoch``. The block order and every in-load permutation
    are pure functions of ``(seed, epoch, rank, load index)``, and the loads of an epoch are
    fixed by its block order, so the first ``c = min(s * B_local, rows of the epoch)`` rows of
    the epoch's stream are known without reading anything: loads that end at or before row
    ``c`` are skipped unread, the load holding row ``c`` is read and permuted as usual and its
    rows before ``c`` are dropped, and the stream goes on from there.
    """

    def __init__(self, shards: ShardSet, blocks, batch_size: int, sampling: str = "shuffle",
                 seed: int = 0, drop_last: bool = False, buffer_mb: float = 64.0,
                 transform=None, rank: int = 0, world: int = 1):
        if sampling not in SAMPLINGS:
            raise ConfigError(choices_message("sampling", sampling, SAMPLINGS))
        if batch_size % world:
            raise ConfigError(f"batch size {batch_size} must be a multiple of the number of "
                              f"processes ({world}): each process takes an equal share")
        self.shards, self.sampling, self.seed, self.drop_last = shards, sampling, seed, drop_last
        self.rank, self.world = rank, world
        blocks = np.asarray(blocks, np.int64)
        self.blocks = blocks[rank::world]
        rank_rows = [int(shards.block_sizes[blocks[r::world]].sum()) for r in range(world)]
        self.n = int(sum(rank_rows))
        self.rank_rows = np.array(rank_rows)
        self.epoch_rows = EpochRows(tuple(rank_rows), drop_last)
        self._set_local(batch_size)
        self.load_rows = load_rows_for(shards, buffer_mb)
        self.transform = transform  # applied by the kernel, not here
        self.epoch, self.step_in_epoch, self.slot = 0, 0, 0
        self._loads: Prefetch | None = None
        self._cur = None     # (X, y) of the load being consumed
        self._at = 0         # next unread row of the current load

    def _set_local(self, batch_size: int) -> None:
        if batch_size % self.world:
            raise ConfigError(f"batch size {batch_size} must be a multiple of the number of "
                              f"processes ({self.world}): each process takes an equal share")
        if not 1 <= batch_size <= self.n:
            raise ConfigError(f"batch size must be between 1 and the number of training "
                              f"examples ({self.n}), got {batch_size}")
        spe = self.epoch_rows.steps_left(0, batch_size)
        if spe == 0:
            raise ConfigError("with drop_last a process gets fewer rows than its share of one "
                              "batch; use a smaller batch size or fewer processes")
        self.batch_size, self.local_batch = batch_size, batch_size // self.world
        self.steps_per_epoch = spe

    # -- the producer side (background thread) --------------------------------------------------
    def _epoch_loads(self, epoch: int, skip: int = 0):
        """The loads of ``epoch`` as ``(X, y)``, without its first ``skip`` rows."""
        order = self.blocks
        if self.sampling != "sequential":
            order = np.random.default_rng([self.seed, epoch, 1, self.rank]).permutation(order)
        end = 0  # rows of the epoch's stream up to the end of load i
        for i, group in enumerate(group_loads(order, self.shards.block_sizes, self.load_rows)):
            start, end = end, end + int(self.shards.block_sizes[group].sum())
            if end <= skip:
                continue  # consumed before the seek: its rows are known, so it is not read
            X, y = read_load(self.shards, group)
            if self.sampling != "sequential":
                rng = np.random.default_rng([self.seed, epoch, 2, self.rank, i])
                r = len(y)
                pick = rng.permutation(r) if self.sampling == "shuffle" else rng.integers(0, r, r)
                # The gather runs here, on the read-ahead thread, so the training thread only
                # copies contiguous rows (a random gather is ~10x slower than a memcpy).
                X, y = X[pick], y[pick]
            if skip > start:  # the load the seek lands in: drop its consumed rows
                X, y = X[skip - start:], y[skip - start:]
            yield X, y

    def _all_loads(self, epoch: int, skip: int = 0):
        while True:
            yield from self._epoch_loads(epoch, skip)
            yield _END
            epoch, skip = epoch + 1, 0

    # -- the consumer side ------------------------------------------------------------------------
    def _rows_before(self, slot: int) -> int:
        """Rows of this epoch this rank handed out before ``slot``."""
        return min(slot, int(self.rank_rows[self.rank]))

    def seek(self, epoch: int, step_in_epoch: int, row: int | None = None) -> None:
        """Continue from step ``step_in_epoch`` of ``epoch`` (the rule in the class docstring),
        at slot ``row`` of the epoch when given (as :attr:`position` records it; else
        ``step_in_epoch`` local batches, which holds while the batch size never changed).

        A position at or past the epoch's end means the start of the next epoch
        (:func:`~sgdlab.data.sampling.seek_position`).
        """
        self.close()
        if row is None:
            self.epoch, self.step_in_epoch = seek_position(epoch, step_in_epoch,
                                                           self.steps_per_epoch)
            self.slot = self.step_in_epoch * self.local_batch
        else:
            self.epoch, self.step_in_epoch, self.slot = int(epoch), int(step_in_epoch), int(row)
            if self.epoch_rows.ends(self.slot, self.batch_size):
                self.epoch, self.step_in_epoch, self.slot = self.epoch + 1, 0, 0
        self._cur, self._at = None, 0
        if self.slot:
            self._loads = Prefetch(self._all_loads(self.epoch, self._rows_before(self.slot)))

    def set_batch_size(self, batch_size: int) -> None:
        """Hand out the next steps at ``batch_size`` (local batches of ``batch_size / world``),
        going on from the row the stream reached; with ``drop_last`` the epoch ends here if
        fewer rows than a local batch remain."""
        self._set_local(batch_size)
        if self.slot and self.epoch_rows.ends(self.slot, batch_size):
            self._finish_epoch()

    def _finish_epoch(self):
        """Skip what this epoch did not use (a dropped tail) up to the epoch marker."""
        if self._cur is not _END:
            for item in self._loads:
                if item is _END:
                    break
        self._cur, self._at = None, 0
        self.epoch, self.step_in_epoch, self.slot = self.epoch + 1, 0, 0

    def _fill(self, X_out: np.ndarray, y_out: np.ndarray, count: int) -> None:
        """Copy the next ``count`` rows of this epoch's stream into the outputs."""
        done = 0
        while done < count:
            if self._cur is None or self._at == len(self._cur[1]):
                self._cur, self._at = next(self._loads), 0
            X, y = self._cur
            m = min(count - done, len(y) - self._at)
            X_out[done:done + m] = X[self._at:self._at + m]
            y_out[done:done + m] = y[self._at:self._at + m]
            self._at += m
            done += m

    def take(self, k: int, pad_to: int | None = None):
        pad_to = k if pad_to is None else pad_to
        bl, shape = self.local_batch, self.shards.example_shape
        # every slot is written below: rows or zeros
        X = aligned_empty((pad_to, bl) + shape)
        y = np.zeros((pad_to, bl), self.shards.y_dtype)
        w = np.zeros((pad_to, bl), np.float32)
        count = np.zeros(pad_to, np.int64)
        Xf, yf, wf = X.reshape((-1,) + shape), y.reshape(-1), w.reshape(-1)
        mine = int(self.rank_rows[self.rank])
        row = 0
        while row < k:
            if self._loads is None:
                self._loads = Prefetch(self._all_loads(self.epoch))
            m = min(k - row, self.epoch_rows.steps_left(self.slot, self.batch_size))
            real = min(max(mine - self.slot, 0), m * bl)  # this rank's real rows in m steps
            self._fill(Xf[row * bl:row * bl + real], yf[row * bl:row * bl + real], real)
            Xf[row * bl + real:(row + m) * bl] = 0.0  # masked slots of a last partial batch
            wf[row * bl:row * bl + real] = 1.0
            starts = self.slot + bl * np.arange(m)
            for rows in self.rank_rows:  # every rank's real rows per step
                count[row:row + m] += np.clip(int(rows) - starts, 0, bl)
            row += m
            self.slot += m * bl
            self.step_in_epoch += m
            if self.epoch_rows.ends(self.slot, self.batch_size):
                self._finish_epoch()
        Xf[k * bl:] = 0.0  # padding steps (not run, but must be finite)
        return X, y, w, count

    @property
    def position(self) -> dict:
        return {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "row": self.slot}

    def close(self) -> None:
        if self._loads is not None:
            self._loads.close()
            self._loads = None


def eval_loads(shards: ShardSet, blocks, load_rows: int, transform=None):
    """Validation rows in file order, ``(X (r, *example_shape), y)`` loads of at most
    ``load_rows``, read ahead."""
    apply = standardize_inplace(transform)

    def loads():
        for group in group_loads(np.asarray(blocks), shards.block_sizes, load_rows):
            X, y = read_load(shards, group)
            yield (apply(X) if apply else X), y

    return Prefetch(loads())
