"""Read a file to predict on, a block of rows at a time: its feature columns matched to a
model's, and its labels if it has them.

A model trained on named columns (a CSV/Parquet header, a DataFrame) takes its features by
name in any order; the one column that is not a feature, if any, is the label (scored, never
used to predict). A model trained on arrays (names ``x0 .. x{d-1}``) takes columns by
position: ``d`` columns are features, ``d + 1`` are features and the label last (NumPy and
LibSVM files always go by position; a LibSVM file is read ``n_features`` wide). Every format
of :data:`~sgdlab.data.formats.FORMATS` works, through its chunked reader and with its located
error messages, and so does a shard directory (``sgdlab data convert``), whose
``feature_names`` are matched the same way.

Examples of more than one axis (an ``.npz`` archive of images, IDX images, a ``.npy`` array
``(N, *example_shape)``) come back in their own shape, ``X (r, *example_shape)``, their
``d = prod(example_shape)`` checked against the model's. An IDX images file needs no labels
file to be predicted on, and an ``.npy`` array of more than two axes holds no labels; a flat
table of ``prod(example_shape)`` columns is reshaped to the model's examples.

Memory: :func:`open_features` hands out blocks of ``block_rows`` rows (see
:func:`block_rows_for`), read a chunk at a time (:mod:`sgdlab.data.readers`), so reading a file
of any size holds one block and one chunk.
"""

from __future__ import annotations

import math
import os
from typing import Callable, Iterator, NamedTuple

import numpy as np

from ..errors import DataError
from .arrays import ArrayRows, npz_keys, numeric_rows
from .checks import (
    as_finite_float32,
    check_unique_columns,
    encode_labels,
    existing_file,
    not_a_shard_set,
    try_float64,
)
from .formats import for_path
from .readers import FeatureNames
from .shards import ShardSet, is_shard_dir

#: Bytes a block holds per feature value while it is predicted on: the reader's chunk and the
#: block (float32 each), the standardised copy and the device's, the model's outputs aside.
BYTES_PER_VALUE = 16


class Features(NamedTuple):
    """``X: (N, d)`` float32 in the model's column order (``(N, *example_shape)`` for
    examples of more axes); ``y: (N,)`` original label values (or real targets) or ``None``;
    ``label``: the label column's name or ``None``."""

    X: np.ndarray
    y: np.ndarray | None
    label: str | None


def block_rows_for(buffer_bytes: float, n_features: int) -> int:
    """Rows per block for a buffer of ``buffer_bytes``: :data:`BYTES_PER_VALUE` per value."""
    return max(1, int(buffer_bytes) // (BYTES_PER_VALUE * max(1, n_features)))


def column_names(path) -> list[str] | None:
    """The column names of a file with named columns (a CSV/TSV header, a Parquet schema);
    ``None`` for the others (NumPy, LibSVM), whose columns go by position."""
    fmt = for_path(path)
    return None if fmt is None else fmt.header(path)


class FeatureBlocks:
    """A file matched to a model's features, to be read a block at a time.

    ``label`` is the label column's name (``None`` without labels), known before reading;
    iterating gives :class:`Features` blocks of at most ``block_rows`` rows, in file order.
    A file without rows is a :class:`DataError` once read.
    """

    def __init__(self, path, chunks: Callable[[], Iterator[tuple]], label: str | None,
                 block_rows: int, example_shape, n_features: int, task: str | None):
        self.path, self.label, self.block_rows = str(path), label, block_rows
        self._chunks, self._shape, self._d, self._task = chunks, example_shape, n_features, task

    def __iter__(self) -> Iterator[Features]:
        xs, ys, held, seen = [], [], 0, 0
        for X, y in self._chunks():
            X = self._shaped(X)
            while len(X):
                take = min(len(X), self.block_rows - held)
                xs.append(X[:take])
                ys.append(None if y is None else y[:take])
                X, y = X[take:], None if y is None else y[take:]
                held += take
                if held == self.block_rows:
                    yield self._block(xs, ys)
                    seen += held
                    xs, ys, held = [], [], 0
        if held:
            seen += held
            yield self._block(xs, ys)
        if not seen:
            raise DataError(f"{self.path}: holds no rows to predict on")

    def _block(self, xs, ys) -> Features:
        X = xs[0] if len(xs) == 1 else np.concatenate(xs)
        y = None if ys[0] is None else (ys[0] if len(ys) == 1 else np.concatenate(ys))
        return Features(np.ascontiguousarray(X, np.float32), y, self.label)

    def _shaped(self, X: np.ndarray) -> np.ndarray:
        if self._shape is None:
            if X.ndim > 1 and math.prod(X.shape[1:]) != self._d:
                raise DataError(f"{self.path}: examples of shape {X.shape[1:]} hold "
                                f"{math.prod(X.shape[1:])} features; the model takes {self._d}")
            return X
        if X.shape[1:] == self._shape:
            return X
        if X.ndim == 2 and X.shape[1] == math.prod(self._shape):
            return X.reshape((len(X),) + self._shape)
        raise DataError(f"{self.path}: holds examples of shape {X.shape[1:]}; the model takes "
                        f"examples of shape {self._shape}")


def open_features(path, feature_names, n_features: int, label_column=None,
                  task: str | None = None, example_shape=None,
                  block_rows: int = 1 << 16) -> FeatureBlocks:
    """The file (or shard directory) ``path`` matched to a model trained on
    ``feature_names`` (``n_features`` of them, flattened) for ``task``, to be read in blocks
    of ``block_rows`` rows. ``label_column`` names the label column when the file has one the
    rule above cannot tell apart. ``example_shape``, when given, is the shape of the model's
    examples: a file of examples of more axes must have that shape, and a table of
    ``prod(example_shape)`` features is reshaped to it. A mismatch of columns is a
    :class:`DataError` raised here, before any row is read; of the examples' size, with the
    first block."""
    src = _readable(path)
    own = [str(f) for f in feature_names]
    check_unique_columns(own, f"{src}: the model's feature names")
    shape = None if example_shape is None else tuple(int(s) for s in example_shape)
    chunks, label = _match(src, own, n_features, label_column, task)
    return FeatureBlocks(src, chunks, label, max(1, int(block_rows)), shape, n_features, task)


def read_features(path, feature_names, n_features: int, label_column=None,
                  task: str | None = None, example_shape=None) -> Features:
    """:func:`open_features`, every row in one block."""
    blocks = list(open_features(path, feature_names, n_features, label_column, task,
                                example_shape, block_rows=1 << 62))
    return blocks[0]


def _readable(path) -> str:
    """``path`` as text, after checking it is a regular file or a shard directory."""
    src = os.fspath(path)
    if os.path.isdir(src):
        if is_shard_dir(src):
            return src
        raise DataError(not_a_shard_set(src))
    return existing_file(src)


def _positional(own: list[str]) -> bool:
    return not own or own == [f"x{i}" for i in range(len(own))]


def _match(src, own, n_features, label_column, task):
    """``(chunks, label)``: a function giving ``(X chunk, y chunk or None)`` in the model's
    column order, and the label's name."""
    if is_shard_dir(src):
        return _shards(src, own, n_features, task)
    fmt = for_path(src)
    if fmt is None:
        from .loaders import EXTENSIONS
        ext = os.path.splitext(src)[1].lower()
        raise DataError(f"{src}: unsupported file type {ext or '(no extension)'!r}; supported "
                        f"extensions: {', '.join(EXTENSIONS)}")
    if fmt.layout == "columns":
        return _columns(src, fmt, own, n_features, label_column, task)
    if label_column is not None:
        raise DataError(f"{src}: --label-column does not apply to {fmt.name} files "
                        f"({fmt.label_hint})")
    if fmt.name == "npy":
        return _npy(src, n_features, task)
    if fmt.name == "npz":
        return _npz(src, task, n_features)
    if fmt.name == "idx":
        from .idx import IdxSource
        source = IdxSource(src, need_labels=False)
        label = None if source.labels is None else fmt.label
        return _labelled(source.chunks, src, label, task), label
    from .libsvm import libsvm_chunks  # LibSVM: n_features wide
    return _labelled(lambda: libsvm_chunks(src, n_features, False, flag="n_features="), src,
                     fmt.label, task), fmt.label


def _labelled(chunks, src, label, task):
    """``chunks`` of a reader (``(X, raw labels, where)``) as ``(X, original labels)``."""
    def run():
        for X, raw, where in chunks():
            yield X, None if label is None else _labels(raw, task, src, label, where)
    return run


def _labels(raw, task, src, column, where) -> np.ndarray:
    """Raw label cells as the file's own values (classes, or reals for regression), encoded
    as the loaders encode them, so a bad label is named by its line or row."""
    y, got, classes = encode_labels(np.asarray(raw), task, source=src, column=column,
                                    where=where)
    if got == "classification" and classes:
        return np.asarray(classes, dtype=object)[y]
    return y


# -- named columns (CSV, TSV, Parquet) ----------------------------------------------------------

def _columns(src, fmt, own, n_features, label_column, task):
    names = fmt.header(src)
    if _positional(own):
        if len(names) == n_features:
            return _table(src, fmt, names, names, None, task), None
        if len(names) == n_features + 1:
            label = label_column if label_column is not None else names[-1]
            if label not in names:
                raise DataError(f"{src}: no label column {label!r}; columns: "
                                f"{', '.join(map(repr, names[:12]))}")
            return _table(src, fmt, names, [n for n in names if n != label], label,
                          task), label
        raise DataError(f"{src}: has {len(names)} columns; the model takes {n_features} "
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
        raise DataError(f"{src}: the columns do not match the model's: {'; '.join(parts)}; "
                        f"it was trained on {', '.join(map(repr, own[:12]))}"
                        + (" ..." if len(own) > 12 else ""))
    return _table(src, fmt, names, own, label, task), label


def _table(src, fmt, names, own, label, task):
    """Chunks of a named-column file: features in the order ``own``, the ``label`` column's
    values (or, without one, the last column read as the reader's label and put back as a
    feature, so every cell is still checked with the reader's located messages)."""
    options = {k: v for k, v in fmt.defaults.items()}
    reader_label = label if label is not None else names[-1]
    order = [n for n in names if n != reader_label]
    if label is None:
        order.append(reader_label)
    pick = None if order == list(own) else [order.index(f) for f in own]

    def run():
        source = fmt.open(src, label_column=reader_label, **options)
        for X, raw, where in source.chunks():
            if label is None:
                X = np.column_stack([X, _real_column(raw, src, reader_label, where)])
            X = X if pick is None else X[:, pick]
            yield X, None if label is None else _labels(raw, task, src, label, where)
    return run


def _real_column(raw, src, name, where) -> np.ndarray:
    """A column read as labels (text or numbers) as float32 features, each cell checked."""
    values = np.asarray(raw)
    numeric = try_float64(values) if values.dtype.kind in "USO" else values
    if numeric is None:
        for i, v in enumerate(values.tolist()):
            try:
                float(v)
            except (TypeError, ValueError):
                raise DataError(f"{src}, {where(i)}, column {name!r}: {v!r} is not a number; "
                                "feature columns must be numeric") from None
    return as_finite_float32(numeric, source=src, columns=[name], where=where)


# -- arrays by position (.npy, .npz) -----------------------------------------------------------

def _rows_of(array: ArrayRows, step: int = 1 << 14):
    """``(row0, rows)`` of ``array`` in steps of at most ``step`` rows."""
    row0 = 0
    while row0 < array.n:
        rows = array.read(step)
        yield row0, rows
        row0 += len(rows)


def _npy(src, n_features, task):
    """A ``.npy`` file: examples of more axes (no labels), or a table of ``n_features``
    columns (no labels) or ``n_features + 1`` (the label last)."""
    with ArrayRows(src) as probe:
        shape = probe.shape
    if len(shape) > 2:
        return _array_chunks(src, None, None, task, shape, n_features), None
    width = shape[1] if len(shape) == 2 else 1
    if width == n_features:
        return _array_chunks(src, None, None, task, shape, n_features), None
    if width == n_features + 1:
        return _array_chunks(src, None, "last column", task, shape, n_features), "last column"
    raise DataError(f"{src}: has {width} columns; the model takes {n_features} features (and "
                    "optionally the label as a last column)")


def _npz(src, task, n_features):
    """An ``.npz`` archive: ``X`` and, when present, its labels ``y``."""
    keys = npz_keys(src)
    if "X" not in keys:
        raise DataError(f"{src}: no array named 'X'; arrays in the file: "
                        f"{', '.join(map(repr, keys)) or '(none)'}: save the features as 'X' "
                        "(and the labels as 'y'): np.savez(path, X=..., y=...)")
    with ArrayRows(src, "X") as probe:
        shape = probe.shape
    label = "y" if "y" in keys else None
    return _array_chunks(src, "X", label, task, shape, n_features), label


def _array_chunks(src, key, label, task, shape, n_features):
    """Chunks of a stored array: features ``(r, ...)`` checked float32, and labels (the
    archive's ``y``, or the table's last column for ``label="last column"``). The example's
    size is checked against the model's ``n_features`` before anything is read."""
    if len(shape) < 2 and label != "last column":
        raise DataError(f"{src}: features must be an array (N, d) or (N, *example_shape), got "
                        f"shape {shape}")
    d = math.prod(shape[1:]) - (1 if label == "last column" else 0)
    if d != n_features:
        raise DataError(f"{src}: examples of shape {tuple(shape[1:])} hold {d} features; the "
                        f"model takes {n_features}")
    names = FeatureNames(d + 1)

    def run():
        with ArrayRows(src, key) as X:
            labels = ArrayRows(src, "y") if label == "y" else None
            try:
                if labels is not None and labels.n != X.n:
                    raise DataError(f"{src}: X has {X.n} rows but y has {labels.n} labels; "
                                    "they must match")
                for row0, rows in _rows_of(X):
                    where = (lambda i, o=row0: f"row index {o + i}")
                    if label == "last column":
                        raw, rows = rows[:, -1], rows[:, :-1]
                    elif labels is not None:
                        raw = labels.read(len(rows))
                    feats = numeric_rows(rows, src, names, row0)
                    yield feats, None if label is None else _labels(raw, task, src, label,
                                                                   where)
            finally:
                if labels is not None:
                    labels.close()
    return run


# -- shard sets --------------------------------------------------------------------------------

def _shards(src, own, n_features, task):
    """A shard set: its ``feature_names`` matched to the model's, its labels scored when it
    was converted for the model's task."""
    shards = ShardSet(src)
    names = [str(n) for n in shards.feature_names]
    if shards.d != n_features:
        raise DataError(f"{src}: holds {shards.d} features per example; the model takes "
                        f"{n_features}")
    pick = None
    if not _positional(own) and names != own and len(names) == shards.d:
        missing = [f for f in own if f not in names]
        if missing:
            raise DataError(f"{src}: the shard set's features do not match the model's: missing "
                            f"{', '.join(map(repr, missing[:8]))}; it was trained on "
                            f"{', '.join(map(repr, own[:12]))}")
        pick = [names.index(f) for f in own]
    label = None
    if task in (None, shards.task):
        label = str(shards.manifest.get("label_column") or "label")

    def run():
        for b in range(shards.n_blocks):
            X, y = shards.read_block(b)
            if pick is not None:
                X = X.reshape(len(X), -1)[:, pick]
            if label is None:
                yield X, None
            elif shards.task == "classification" and shards.classes:
                yield X, np.asarray(shards.classes, dtype=object)[y]
            else:
                yield X, y
        shards.close()
    return run, label
