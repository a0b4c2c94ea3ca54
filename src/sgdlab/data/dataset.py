"""The in-memory dataset every loader returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError
from .hostmem import aligned, empty_aligned

TASKS = ("classification", "regression")


@dataclass(frozen=True)
class Dataset:
    """Features and labels, validated.

    Attributes:
      X: ``(N, *example_shape)`` float32, every value finite: ``(N, d)`` for tabular data,
        ``(N, H, W, C)`` for images (channels last), ``(N, T, d)`` for sequences. A float32
        ``X`` is kept 64-byte aligned (copied once here if it is not), so every fit can hand it
        to the device without a copy (see :mod:`sgdlab.data.hostmem`).
      y: ``(N,)``; int32 class indices ``0..C-1`` for classification, float32 for regression.
      task: ``"classification"`` or ``"regression"``.
      classes: original label values for classification (``classes[i]`` is the label of index
        ``i``), ``()`` for regression.
      feature_names: one name per feature of the flattened example (``d`` names, in C order
        of ``example_shape``).
      name: where the data came from (file name or built-in name), used in reports.
    """

    X: np.ndarray
    y: np.ndarray
    task: str = "classification"
    classes: tuple = ()
    feature_names: tuple = ()
    name: str = "array"
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.task not in TASKS:
            raise DataError(f"task must be one of {TASKS}, got {self.task!r}")
        if isinstance(self.X, np.ndarray) and self.X.dtype == np.float32:
            object.__setattr__(self, "X", aligned(self.X))
        if self.X.ndim < 2:
            raise DataError(f"{self.name}: features must be (N, d) or (N, *example_shape), "
                            f"got shape {self.X.shape}; give X one example per row")
        if self.y.ndim != 1 or len(self.y) != len(self.X):
            raise DataError(
                f"{self.name}: labels must be 1-D with one per row; X has {len(self.X)} rows, "
                f"y has shape {self.y.shape}"
            )
        if self.task == "classification" and self.classes and len(self.y):
            _check_class_indices(self.y, len(self.classes), self.name)
        if not self.feature_names:
            object.__setattr__(self, "feature_names", tuple(f"x{i}" for i in range(self.d)))

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def example_shape(self) -> tuple:
        """The shape of one example, ``X.shape[1:]``: ``(d,)`` for tabular data."""
        return tuple(int(s) for s in self.X.shape[1:])

    @property
    def d(self) -> int:
        """Features per example when flattened: ``prod(example_shape)``."""
        return math.prod(self.example_shape)

    @property
    def n_classes(self) -> int:
        """Number of classes (0 for regression)."""
        return len(self.classes) if self.task == "classification" else 0

    def subset(self, idx: np.ndarray, name: str | None = None) -> "Dataset":
        """Rows ``idx`` as a new dataset with the same classes and names."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        X = np.take(self.X, idx, axis=0, out=empty_aligned((len(idx),) + self.X.shape[1:],
                                                          self.X.dtype))
        return Dataset(X, self.y[idx], self.task, self.classes, self.feature_names,
                       name or self.name, dict(self.meta))


def _check_class_indices(y: np.ndarray, n_classes: int, name: str) -> None:
    """Class labels must be whole indices ``0..n_classes-1`` (a gather with any other index
    would silently read another class's row)."""
    if y.dtype.kind not in "iu":
        if y.dtype.kind != "f" or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise DataError(f"{name}: class indices must be whole numbers 0..{n_classes - 1}, "
                            f"got labels of dtype {y.dtype}; load the data with a loader "
                            "(sgdlab.data.from_arrays) to encode labels")
    bad = (y < 0) | (y >= n_classes)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{name}, row index {i}: class index {y[i]:g} is out of range for "
                        f"{n_classes} classes (0..{n_classes - 1}); load the data with a "
                        "loader (sgdlab.data.from_arrays) to encode labels")
