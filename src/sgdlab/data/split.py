"""Train/validation/test splits and feature standardisation fitted on training data only."""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from ..errors import ConfigError, DataError
from .dataset import Dataset
from .hostmem import empty_aligned


class Splits(NamedTuple):
    """The parts of a dataset; ``validation``/``test`` are ``None`` when their fraction is 0."""

    train: Dataset
    validation: Dataset | None
    test: Dataset | None


def _fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ConfigError(f"{name} fraction must be a number in [0, 1), got {value!r}")
    return float(value)


def _count(n: int, fraction: float) -> int:
    # Round half up, so the result does not depend on banker's rounding of exact halves.
    return int(np.floor(n * fraction + 0.5))


def _allocate(counts: np.ndarray, total: int, caps: np.ndarray) -> np.ndarray:
    """Split ``total`` over classes in proportion to ``counts``, at most ``caps[c]`` each.

    Largest-remainder rounding: floors first, then one more to the classes with the largest
    fractional parts (ties to the lower class index, so the result is deterministic). If the caps
    leave no room, fewer than ``total`` are allocated.
    """
    ideal = counts * (total / counts.sum())
    alloc = np.minimum(np.floor(ideal).astype(np.int64), caps)
    order = np.argsort(-(ideal - np.floor(ideal)), kind="stable")
    while alloc.sum() < total:
        room = alloc < caps
        if not room.any():
            break
        for c in order:
            if alloc.sum() >= total:
                break
            if room[c]:
                alloc[c] += 1
    return alloc


def split(ds: Dataset, validation: float = 0.2, test: float = 0.0, seed: int = 0,
          stratify: bool = True) -> Splits:
    """Split ``ds`` into train, validation and test parts, deterministically by ``seed``.

    Part sizes are ``round(N * validation)`` and ``round(N * test)``; train gets the rest.
    With ``stratify`` (classification only), each class is split in the same proportions and
    every class with at least 2 examples keeps at least one in train (a class with a single
    example goes to train). Rows keep their original order within each part.

    Raises :class:`ConfigError` for fractions outside ``[0, 1)`` or summing to ``>= 1``, and
    :class:`DataError` when a requested part (or train) would be empty.
    """
    validation = _fraction("validation", validation)
    test = _fraction("test", test)
    if validation + test >= 1:
        raise ConfigError(
            f"validation ({validation}) + test ({test}) = {validation + test:.4g} must be < 1 "
            "so that some data is left for training"
        )
    n = ds.n
    n_val, n_test = _count(n, validation), _count(n, test)
    for part, frac, k in (("validation", validation, n_val), ("test", test, n_test)):
        if frac > 0 and k == 0:
            raise DataError(
                f"{ds.name}: {part} fraction {frac} of {n} examples gives 0 {part} examples; "
                f"use {part} >= {0.5 / n:.3g} or {part}=0 to skip it"
            )
    if n - n_val - n_test < 1:
        raise DataError(
            f"{ds.name}: {n} examples leave none for training after {n_val} validation and "
            f"{n_test} test examples; lower the validation/test fractions"
        )

    rng = np.random.default_rng(seed)
    if stratify and ds.task == "classification":
        parts = _stratified(ds.y, ds.n_classes, n_val, n_test, rng)
    else:
        perm = rng.permutation(n)
        parts = (perm[n_val + n_test:], perm[:n_val], perm[n_val:n_val + n_test])
    train_idx, val_idx, test_idx = (np.sort(p) for p in parts)
    for name, frac, idx in (("validation", validation, val_idx), ("test", test, test_idx)):
        if frac > 0 and len(idx) == 0:
            # Only reachable with stratification, when every class is a singleton kept in train.
            raise DataError(
                f"{ds.name}: the {name} part would be empty because no class has an example to "
                f"spare (class counts: {np.bincount(ds.y, minlength=ds.n_classes).tolist()}); "
                "use stratify=False or more data"
            )

    def part(idx: np.ndarray, which: str, frac: float) -> Dataset | None:
        if which != "train" and frac == 0:
            return None
        sub = ds.subset(idx)
        sub.meta["split"] = which  # subset() gave it a fresh dict
        sub.meta["rows"] = idx     # row numbers in ds (e.g. to split sample weights alike)
        return sub

    return Splits(part(train_idx, "train", 1.0), part(val_idx, "validation", validation),
                  part(test_idx, "test", test))


def _stratified(y: np.ndarray, n_classes: int, n_val: int, n_test: int, rng):
    counts = np.bincount(y, minlength=n_classes).astype(np.int64)
    # Keep one example of every class in train; classes of 1 give nothing away.
    spare = np.maximum(counts - 1, 0)
    test_alloc = _allocate(counts, n_test, spare) if n_test else np.zeros_like(counts)
    val_alloc = _allocate(counts, n_val, spare - test_alloc) if n_val else np.zeros_like(counts)
    train, val, test = [], [], []
    for c in range(n_classes):
        idx = rng.permutation(np.flatnonzero(y == c))
        t, v = test_alloc[c], val_alloc[c]
        test.append(idx[:t])
        val.append(idx[t:t + v])
        train.append(idx[t + v:])
    empty = np.zeros(0, dtype=np.int64)
    return tuple(np.concatenate(p) if p else empty for p in (train, val, test))


class Standardizer:
    """``(x - mean) / scale`` per feature (tabular data) or per channel (N-D data), fitted on
    training data only.

    Tabular ``X (N, d)``: one ``mean_j``/``scale_j`` per column ``j``::

        mean_j = 1/N sum_i X[i, j]        std_j = sqrt(1/N sum_i (X[i, j] - mean_j)^2)

    Examples of more axes, ``X (N, *S, C)`` (images ``(N, H, W, C)``, sequences ``(N, T, d)``):
    one ``mean_c``/``scale_c`` per channel ``c`` of the **last** axis, over the ``M = N
    prod(S)`` values of every other axis (every example, every position)::

        mean_c = 1/M sum_{i, s} X[i, s, c]     std_c = sqrt(1/M sum_{i, s} (X[i, s, c] - mean_c)^2)

    so an image keeps its spatial structure (every pixel of a channel moves alike) and the
    statistics do not depend on the image size. Either way, after :meth:`fit` ``mean`` and
    ``scale`` are float64 arrays of length ``X.shape[-1]`` (the format a saved model stores);
    ``scale`` is the population standard deviation, or 1 for (numerically) constant columns or
    channels so they map to 0 instead of dividing by zero. :meth:`transform` returns float32
    of ``X``'s shape, ``mean``/``scale`` broadcast over the last axis.
    """

    # A column counts as constant when its spread is below float rounding of its mean.
    _REL_TOL = 1e-10
    _CHUNK_ROWS = 8192
    # N-D data: values per block of examples (as many as 8192 rows of 128 features)
    _CHUNK_VALUES = 1 << 20

    def __init__(self, mean=None, scale=None):
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64)

    def fit(self, X) -> "Standardizer":
        """Compute ``mean`` and ``scale`` from ``X: (N, d)`` (per feature) or ``(N, *S, C)``
        (per channel, see the class docstring); returns ``self``."""
        X = self._check(X, fitting=True)
        c = X.shape[-1]
        # Every example's values as rows of c: (N, d) stays as it is; (N, *S, C) is read as
        # (N * prod(S), C), a view when X is contiguous, so per-channel statistics are the
        # per-column statistics of that table.
        step = self._CHUNK_ROWS if X.ndim == 2 else max(1, self._CHUNK_VALUES // (X[0].size))

        def blocks():
            for i in range(0, len(X), step):
                yield X[i:i + step].reshape(-1, c)

        # Two passes over row blocks in float64: exact enough for float32 inputs without a
        # full float64 copy of X.
        total, n = np.zeros(c), 0
        for block in blocks():
            total += block.sum(axis=0, dtype=np.float64)
            n += len(block)
        mean = total / n
        sq = np.zeros(c)
        for block in blocks():
            block = block.astype(np.float64) - mean
            sq += np.einsum("ij,ij->j", block, block)
        std = np.sqrt(sq / n)
        constant = std <= self._REL_TOL * np.abs(mean)  # includes std == 0 at mean 0
        self.mean, self.scale = mean, np.where(constant, 1.0, std)
        return self

    def transform(self, X) -> np.ndarray:
        """``(X - mean) / scale`` as float32 of ``X``'s shape, ``(N, d)`` or ``(N, *S, C)``:
        ``mean`` and ``scale`` broadcast over the last axis, whose length must be the fitted
        one (``d`` features or ``C`` channels)."""
        if self.mean is None:
            raise DataError("Standardizer is not fitted; call fit(X_train) first")
        X = self._check(X, fitting=False)
        out = empty_aligned(X.shape, np.float32)  # aligned: the device can use it in place
        np.copyto(out, X, casting="unsafe")
        out -= self.mean.astype(np.float32)
        out /= self.scale.astype(np.float32)
        return out

    def fit_transform(self, X) -> np.ndarray:
        """:meth:`fit` then :meth:`transform` on the same ``X``."""
        return self.fit(X).transform(X)

    def to_dict(self) -> dict:
        """``{"mean": [...], "scale": [...]}`` as plain floats, for JSON."""
        if self.mean is None:
            raise DataError("Standardizer is not fitted; nothing to save")
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> "Standardizer":
        """Inverse of :meth:`to_dict`; checks lengths match and scales are positive."""
        try:
            mean = np.asarray(data["mean"], dtype=np.float64)
            scale = np.asarray(data["scale"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(
                f"invalid standardizer data (need 'mean' and 'scale' lists): {e}"
            ) from None
        if mean.ndim != 1 or mean.shape != scale.shape:
            raise DataError(
                f"invalid standardizer data: mean shape {mean.shape} and scale shape "
                f"{scale.shape} must be equal 1-D"
            )
        if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise DataError("invalid standardizer data: values must be finite and scales > 0")
        return cls(mean, scale)

    def _check(self, X, fitting: bool) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim < 2:
            raise DataError(f"Standardizer expects 2-D features (N, d) or examples of any "
                            f"shape (N, ..., C), got shape {X.shape}")
        if X.dtype.kind not in "biuf":
            raise DataError(f"Standardizer expects numeric features, got dtype {X.dtype}")
        if fitting and len(X) == 0:
            raise DataError("Standardizer cannot fit on 0 rows")
        if fitting and X[0].size == 0:
            raise DataError(f"Standardizer cannot fit on examples of shape {X.shape[1:]}: "
                            "they hold no values")
        if not fitting and X.ndim == 2 and X.shape[1] != len(self.mean):
            raise DataError(
                f"Standardizer was fitted on {len(self.mean)} features but X has {X.shape[1]}"
            )
        if not fitting and X.ndim > 2 and X.shape[-1] != len(self.mean):
            raise DataError(
                f"Standardizer was fitted on {len(self.mean)} channels (or features) but X's "
                f"examples have shape {X.shape[1:]}, {X.shape[-1]} along the last axis; "
                "standardise examples of the shape it was fitted on"
            )
        return X

    def __repr__(self) -> str:
        d = "unfitted" if self.mean is None else f"d={len(self.mean)}"
        return f"Standardizer({d})"


class TargetScaler:
    """Real-valued targets as ``(y - mean) / scale``, fitted on training targets only.

    A squared loss on raw targets scales its gradient with the targets' size, so one learning
    rate diverges on targets in the hundreds and crawls on targets near 0.01; on standardised
    targets the default rate suits both. :meth:`inverse` maps predictions back to the original
    units. ``mean`` and ``scale`` are floats; ``scale`` is the population standard deviation,
    or 1 for constant targets.
    """

    def __init__(self, mean: float | None = None, scale: float | None = None):
        self.mean = None if mean is None else float(mean)
        self.scale = None if scale is None else float(scale)

    def fit(self, y) -> "TargetScaler":
        """Compute ``mean`` and ``scale`` from ``y: (N,)`` finite reals; returns ``self``."""
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 1 or len(y) == 0 or not np.isfinite(y).all():
            raise DataError(f"TargetScaler needs finite targets of shape (N,) with N > 0, "
                            f"got shape {y.shape}")
        mean, std = float(y.mean()), float(y.std())
        self.mean = mean
        self.scale = std if std > Standardizer._REL_TOL * abs(mean) and std > 0 else 1.0
        return self

    def transform(self, y) -> np.ndarray:
        """``(y - mean) / scale`` as float32 ``(N,)``."""
        self._fitted()
        return ((np.asarray(y, np.float64) - self.mean) / self.scale).astype(np.float32)

    def inverse(self, z) -> np.ndarray:
        """``z * scale + mean``: predictions in the original units (float64)."""
        self._fitted()
        return np.asarray(z, np.float64) * self.scale + self.mean

    def to_dict(self) -> dict:
        """``{"mean": m, "scale": s}``, for JSON."""
        self._fitted()
        return {"mean": self.mean, "scale": self.scale}

    @classmethod
    def from_dict(cls, data: dict) -> "TargetScaler":
        """Inverse of :meth:`to_dict`; checks the values are finite and the scale positive."""
        try:
            mean, scale = float(data["mean"]), float(data["scale"])
        except (KeyError, TypeError, ValueError) as e:
            raise DataError(f"invalid target scaler data (need 'mean' and 'scale'): {e}") \
                from None
        if not (np.isfinite(mean) and np.isfinite(scale) and scale > 0):
            raise DataError("invalid target scaler data: values must be finite, scale > 0")
        return cls(mean, scale)

    def _fitted(self) -> None:
        if self.mean is None:
            raise DataError("TargetScaler is not fitted; call fit(y_train) first")

    def __repr__(self) -> str:
        if self.mean is None:
            return "TargetScaler(unfitted)"
        return f"TargetScaler(mean={self.mean:.6g}, scale={self.scale:.6g})"
