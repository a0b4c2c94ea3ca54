"""Read a file to predict on: its feature columns matched to a model's, and its labels if it
has them.

A model trained on named columns (a CSV/Parquet header, a DataFrame) takes its features by
name in any order; the one column that is not a feature, if any, is the label (scored, never
used to predict). A model trained on arrays (names ``x0 .. x{d-1}``) takes columns by
position: ``d`` columns are features, ``d + 1`` are features and the label last (NumPy and
LibSVM files always go by position; a LibSVM file is read ``n_features`` wide). Every format
of :data:`~sgdlab.data.formats.FORMATS` works, with its located error messages.

Examples of more than one axis (an ``.npz`` archive of images, IDX images, a ``.npy`` array
``(N, *example_shape)``) come back in their own shape, ``X (N, *example_shape)``, their
``d = prod(example_shape)`` checked against the model's. An IDX images file needs no labels
file to be predicted on, and an ``.npy`` array of more than two axes holds no labels; a flat
``.npy`` table ``(N, d)`` (or ``(N, d + 1)``, the label last) is reshaped to the model's
examples.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import numpy as np

from ..errors import DataError
from .arrays import read_npy_examples
from .checks import check_unique_columns
from .formats import for_path
from .idx import labels_path, read_images
from .loaders import load_data


class Features(NamedTuple):
    """``X: (N, d)`` float32 in the model's column order (``(N, *example_shape)`` for
    examples of more axes); ``y: (N,)`` original label values (or real targets) or ``None``;
    ``label``: the label column's name or ``None``."""

    X: np.ndarray
    y: np.ndarray | None
    label: str | None


def column_names(path) -> list[str] | None:
    """The column names of a file with named columns (a CSV/TSV header, a Parquet schema);
    ``None`` for the others (NumPy, LibSVM), whose columns go by position."""
    fmt = for_path(path)
    return None if fmt is None else fmt.header(path)


def read_features(path, feature_names, n_features: int, label_column=None,
                  task: str | None = None, example_shape=None) -> Features:
    """The features (and labels, if present) of the file ``path`` for a model trained on
    ``feature_names`` (``n_features`` of them, flattened) for ``task``. ``label_column`` names
    the label column when the file has one the rule above cannot tell apart.
    ``example_shape``, when given, is the shape of the model's examples: a file of examples of
    more axes must have that shape, and a table of ``prod(example_shape)`` features is
    reshaped to it."""
    got = _read_features(path, feature_names, n_features, label_column, task)
    if example_shape is None:
        return got
    shape = tuple(int(s) for s in example_shape)
    if got.X.shape[1:] == shape:
        return got
    if got.X.ndim == 2 and got.X.shape[1] == math.prod(shape):
        return got._replace(X=got.X.reshape((len(got.X),) + shape))
    raise DataError(f"{path}: holds examples of shape {got.X.shape[1:]}; the model takes "
                    f"examples of shape {shape}")


def _read_features(path, feature_names, n_features, label_column, task) -> Features:
    if not os.path.isfile(path):
        raise DataError(f"{path}: file not found")
    own = [str(f) for f in feature_names]
    check_unique_columns(own, f"{path}: the model's feature names")
    positional = not own or own == [f"x{i}" for i in range(len(own))]
    names = column_names(path)
    if names is None:  # NumPy, LibSVM: by position
        return _by_position_arrays(path, n_features, task)
    if positional:
        if len(names) == n_features:
            return _without_label(path, names, names)
        if len(names) == n_features + 1:
            label = label_column if label_column is not None else names[-1]
            return _with_label(path, names, [n for n in names if n != label], label, task)
        raise DataError(f"{path}: has {len(names)} columns; the model takes {n_features} "
                        f"features (and optionally the label as a last column)")
    missing = [f for f in own if f not in names]
    extra = [n for n in names if n not in own]
    label = label_column if label_column is not None else (extra[0] if len(extra) == 1
                                                           else None)
    unexpected = [n for n in extra if n != label]
    if missing or unexpected or (label is not None and label not in names):
        parts = []
        if missing:
            parts.append(f"missing feature column(s) {', '.join(map(repr, missing[:8]))}")
        if label is not None and label not in names:
            parts.append(f"no label column {label!r}")
        if unexpected:
            parts.append(f"unexpected column(s) {', '.join(map(repr, unexpected[:8]))} (give "
                         "the label column with --label-column, drop the others)")
        raise DataError(f"{path}: the columns do not match the model's: {'; '.join(parts)}; "
                        f"it was trained on {', '.join(map(repr, own[:12]))}"
                        + (" ..." if len(own) > 12 else ""))
    if label is None:
        return _without_label(path, names, own)
    return _with_label(path, names, own, label, task)


def _with_label(path, names, own, label, task) -> Features:
    ds = load_data(str(path), label_column=label, task=task)
    X = _reorder(ds.X, [n for n in names if n != label], own)
    return Features(X, _original_labels(ds), label)


def _without_label(path, names, own) -> Features:
    # The loaders split off a label column; load the last column as a real "label" and put
    # it back, so every cell is still checked with the loaders' located messages.
    ds = load_data(str(path), label_column=names[-1], task="regression")
    X = np.column_stack([ds.X, ds.y.astype(np.float32)])
    return Features(_reorder(X, names, own), None, None)


def _reorder(X, names, own) -> np.ndarray:
    if list(names) == list(own):
        return np.ascontiguousarray(X, dtype=np.float32)
    return np.ascontiguousarray(X[:, [list(names).index(f) for f in own]], dtype=np.float32)


def _by_position_arrays(path, n_features: int, task) -> Features:
    fmt = for_path(path)
    if fmt is not None and fmt.name == "idx" and labels_path(path) is None:
        X = read_images(path)  # images to predict on need no labels
        if X[0].size != n_features:
            raise DataError(f"{path}: images of shape {X.shape[1:]} hold {X[0].size} "
                            f"features; the model takes {n_features}")
        return Features(X, None, None)
    if fmt is not None and fmt.name == "npz":
        with np.load(path, allow_pickle=False) as z:
            if "y" not in z.files and "X" in z.files:  # features to predict on need no labels
                X = np.asarray(z["X"], np.float32)
                if X.ndim < 2 or X[0].size != n_features:
                    raise DataError(f"{path}: X of shape {X.shape} holds "
                                    f"{X[0].size if X.ndim >= 2 else 1} features per example; "
                                    f"the model takes {n_features}")
                if not np.isfinite(X).all():
                    raise DataError(f"{path}: X holds NaN or infinite values; remove or fill "
                                    "them in first")
                return Features(X, None, None)
    if fmt is not None and fmt.layout == "xy":  # features and labels apart (.npz, LibSVM, IDX)
        options = {"n_features": n_features} if "n_features" in fmt.options else {}
        ds = load_data(str(path), task=task, **options)
        if ds.d != n_features:
            raise DataError(f"{path}: X has {ds.d} features; the model takes {n_features}")
        return Features(ds.X, _original_labels(ds), fmt.label)
    if fmt is not None and fmt.name == "npy":
        X = read_npy_examples(path)  # examples of more axes to predict on need no labels
        if X is not None:
            if X[0].size != n_features:
                raise DataError(f"{path}: examples of shape {X.shape[1:]} hold {X[0].size} "
                                f"features; the model takes {n_features}")
            return Features(X, None, None)
    # one table (.npy), the label perhaps its last column (an unknown type: load_data says so)
    ds = load_data(str(path), task="regression")
    if ds.d + 1 == n_features:
        return Features(np.column_stack([ds.X, ds.y.astype(np.float32)]), None, None)
    if ds.d == n_features:
        return Features(ds.X, _original_labels(load_data(str(path), task=task)), "last column")
    raise DataError(f"{path}: has {ds.d + 1} columns; the model takes {n_features} features "
                    "(and optionally the label as a last column)")


def _original_labels(ds) -> np.ndarray:
    """``ds.y`` as the file's own values: class labels for classification, reals otherwise."""
    if ds.task == "classification" and ds.classes:
        return np.asarray(ds.classes, dtype=object)[ds.y]
    return ds.y
