"""Predicting on data of any size a block at a time: how many rows a block may hold within a
memory budget, and the score (accuracy or R^2) summed over blocks.

A block of ``r`` examples costs its features several times (read, standardised, on the
device: :data:`~sgdlab.data.features.BYTES_PER_VALUE` bytes per value) plus the network's own
working memory, which XLA reports for the compiled program (``memory_analysis()``: its
temporary buffers and its outputs). :func:`block_rows` halves ``r`` until both fit in the
budget together, so ``sgdlab predict --buffer-mb`` bounds the memory whatever the file's size
(with the reader's chunk, :data:`~sgdlab.data.readers.CHUNK_BYTES`, and the program itself
on top).

:class:`RunningScore` adds blocks exactly: accuracy is a count of correct predictions;
R^2 = 1 - SSE / SST with SST from the blocks' means and sums of squared deviations merged by
Chan et al.'s update (no cancellation when ``|mean| >> std``), equal to the score of all rows
at once to float64 rounding.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from ..data.features import BYTES_PER_VALUE, block_rows_for
from ..errors import DataError


def network_bytes(predictor, rows: int) -> int | None:
    """XLA's estimate of the working memory (temporary buffers and outputs) of ``predictor``'s
    network on a block of ``rows`` examples, or None where the backend gives none."""
    shape = jax.ShapeDtypeStruct((rows,) + tuple(predictor.input_shape), np.float32)
    try:
        analysis = jax.jit(predictor.model.apply).lower(predictor.params, shape).compile() \
            .memory_analysis()
        return int(analysis.temp_size_in_bytes) + int(analysis.output_size_in_bytes)
    except Exception:  # noqa: BLE001 (no analysis on this backend or version: nothing to say)
        return None


def block_rows(predictor, buffer_bytes: float) -> int:
    """Rows per block so that a block's features (:func:`block_rows_for`) and the network's
    working memory on it together fit in ``buffer_bytes`` (at least one row)."""
    d = math.prod(predictor.input_shape)
    rows = block_rows_for(buffer_bytes, d)
    while rows > 1:
        need = network_bytes(predictor, rows)
        if need is None or need + rows * BYTES_PER_VALUE * d <= buffer_bytes:
            break
        rows //= 2
    return rows


class RunningScore:
    """Accuracy (classification) or R^2 (regression) of predictions added a block at a time.

    ``add(predicted, y)`` takes a block's predictions and true labels, both in the original
    values (or units); labels the model's ``classes`` do not hold are a :class:`DataError`
    naming them, as :meth:`~sgdlab.engine.predictor.Predictor.score` does.
    """

    def __init__(self, task: str, classes=()):
        self.task, self.classes = task, tuple(classes)
        self._known = {str(c) for c in self.classes}
        self.n, self.correct = 0, 0
        self._mean, self._m2, self._sse = 0.0, 0.0, 0.0

    def add(self, predicted, y) -> None:
        predicted, y = np.asarray(predicted), np.asarray(y)
        if self.task == "classification":
            if self._known:
                unseen = sorted({str(v) for v in y.tolist()} - self._known)
                if unseen:
                    raise DataError(f"labels {', '.join(unseen[:5])} were not among the "
                                    f"training classes ({', '.join(map(str, self.classes[:10]))}); "
                                    "the model cannot predict them")
            same = predicted.astype(str) == y.astype(str) if object in (predicted.dtype, y.dtype) \
                else predicted == y
            self.correct += int(np.sum(same))
            self.n += len(y)
            return
        y64 = y.astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):  # huge predictions: R^2 = -inf
            self._sse += float(np.sum((predicted.astype(np.float64) - y64) ** 2))
        n_b, mean_b = len(y64), float(np.mean(y64)) if len(y64) else 0.0
        m2_b = float(np.sum((y64 - mean_b) ** 2))
        total = self.n + n_b
        if total:
            delta = mean_b - self._mean
            self._m2 += m2_b + delta ** 2 * self.n * n_b / total
            self._mean += delta * n_b / total
        self.n = total

    @property
    def value(self) -> float:
        """The score of every row added so far (NaN before any, or for R^2 of constant
        targets)."""
        if self.n == 0:
            return float("nan")
        if self.task == "classification":
            return self.correct / self.n
        return 1.0 - self._sse / self._m2 if self._m2 > 0 else float("nan")
