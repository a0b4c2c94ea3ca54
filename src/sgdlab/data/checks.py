"""Checks every loader shares: finite float32 features, label encoding, files, columns.

Messages name the source and, where it applies, the 1-based line (text files) or 0-based
``row index`` (binary files and arrays) and the column.
"""

from __future__ import annotations

import math
import numbers
import os
import stat
from typing import Callable, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .dataset import TASKS
from .hostmem import available_memory

#: With ``task=None``, integer-valued labels with at most this many distinct values are
#: taken as class labels; more distinct values (or non-integers) mean regression.
MAX_INFERRED_CLASSES = 50

_F32_MAX = float(np.finfo(np.float32).max)


def _row_index(i: int) -> str:
    return f"row index {i}"


# --------------------------------------------------------------------------------------------
# Shared checks
# --------------------------------------------------------------------------------------------


def check_task(task: str | None) -> None:
    """Raise :class:`DataError` unless ``task`` is ``None`` or one of :data:`TASKS`."""
    if task is not None and task not in TASKS:
        raise DataError(f"task must be one of {', '.join(TASKS)} (or None to infer), got {task!r}")


def as_finite_float32(
    values: np.ndarray,
    *,
    source: str = "array",
    columns: Sequence[str] | None = None,
    where: Callable[[int], str] = _row_index,
) -> np.ndarray:
    """``values`` (``(N,)``, ``(N, d)`` or ``(N, *example_shape)``, any real dtype) as
    C-contiguous float32, all finite.

    The check runs on the float32 result, so a finite float64 value too large for float32
    (which would silently become ``inf``) is caught as well. The error names the first bad
    cell in row-major order: ``"{source}, {where(row)}, column {name!r}: value is NaN"``.
    ``where`` turns a 0-based row into words (``"line 17"`` for text files), ``columns`` names
    the features of the flattened example (default ``x0, x1, ...``); for examples of more than
    one axis the message also gives the cell's index within the example.
    """
    arr = np.asarray(values)
    # The cast overflows to inf for |v| > float32 max; that is reported below, not warned.
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(out)
    if finite.all():
        return out
    flat = int(np.argmin(finite.reshape(-1)))  # first False in row-major order
    at = ""
    if out.ndim == 1:
        row, col = flat, 0
    else:
        row, col = divmod(flat, math.prod(out.shape[1:]))
        if out.ndim > 2:
            index = tuple(int(i) for i in np.unravel_index(col, out.shape[1:]))
            at = f" (index {index} of each example of shape {tuple(out.shape[1:])})"
    original = arr.reshape(-1)[flat] if arr.ndim else arr
    name = columns[col] if columns is not None and col < len(columns) else f"x{col}"
    if isinstance(original, (float, np.floating)) and math.isnan(original):
        what = "value is NaN (missing values must be removed or filled in first)"
    elif isinstance(original, (float, np.floating)) and math.isinf(original):
        what = f"value is {float(original)} (infinite values are not allowed)"
    else:
        what = (f"value {float(original):g} is too large for float32 "
                f"(|value| must be <= {_F32_MAX:.3g})")
    raise DataError(f"{source}, {where(row)}, column {name!r}{at}: {what}")


def try_float64(values: np.ndarray) -> np.ndarray | None:
    """Text or object labels as float64, or ``None`` if any of them is not a number."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        return None


def is_missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, (float, np.floating)) and math.isnan(v):
        return True
    return isinstance(v, (str, np.str_)) and not v.strip()


def first_missing(values) -> int | None:
    """Index of the first missing label (see :func:`is_missing`) in ``values``, or ``None``;
    vectorised for numeric arrays (only NaN can be missing there)."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "biufc":
        if values.dtype.kind != "f":
            return None
        bad = np.isnan(values)
        return int(np.argmax(bad)) if bad.any() else None
    for i, v in enumerate(values):
        if is_missing(v):
            return i
    return None


def encode_labels(
    values,
    task: str | None = None,
    *,
    source: str = "array",
    column: str = "label",
    where: Callable[[int], str] = _row_index,
) -> tuple[np.ndarray, str, tuple]:
    """Turn raw labels ``(N,)`` into ``(y, task, classes)`` for :class:`Dataset`.

    * ``task=None`` infers it: non-numeric labels, or integer-valued labels with at most
      :data:`MAX_INFERRED_CLASSES` distinct values, mean classification; anything else regression.
      Text that parses as numbers (``"1"``, ``"2.0"``) counts as numeric, so a CSV and a NumPy
      file with the same values give the same result.
    * Classification: ``y`` int32 indices into ``classes``, which holds the distinct original
      values sorted ascending, as Python ``int`` (integer-valued numbers), ``float`` or ``str``.
      Booleans become ``0``/``1``.
    * Regression: ``y`` float32, every value finite; ``classes == ()``.

    Missing labels (``None``, NaN, empty text) and non-finite numbers raise :class:`DataError`
    naming ``source``, ``where(row)`` and ``column``.
    """
    check_task(task)
    values = np.asarray(values)
    if values.ndim != 1:
        raise DataError(f"{source}: labels must be 1-D (N,), got shape {values.shape}")
    if len(values) == 0:
        raise DataError(f"{source}: there are no labels (0 rows)")
    kind = values.dtype.kind
    if kind == "b":
        values, kind = values.astype(np.int64), "i"
    elif kind in "USO":
        numeric = try_float64(values)
        if numeric is None:
            return _encode_text_labels(values, task, source, column, where)
        values, kind = numeric, "f"
    elif kind not in "iuf":
        raise DataError(
            f"{source}, column {column!r}: labels of dtype {values.dtype} are not supported; "
            "use numbers or text"
        )

    if kind == "f":
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.argmax(bad))
            what = "missing (NaN)" if np.isnan(values[i]) else f"{values[i]} (not finite)"
            raise DataError(f"{source}, {where(i)}, column {column!r}: label is {what}")

    integral = kind in "iu" or bool(np.all(values == np.round(values)))
    if task is None or task == "classification":
        uniq = np.unique(values)
        if task is None:
            few = len(uniq) <= MAX_INFERRED_CLASSES
            task = "classification" if integral and few else "regression"
    if task == "regression":
        y = as_finite_float32(values, source=source, columns=[column], where=where)
        return y, "regression", ()
    y = np.searchsorted(uniq, values).astype(np.int32)
    if integral:
        classes = tuple(int(v) for v in uniq)
    else:
        classes = tuple(float(v) for v in uniq)
    return y, "classification", classes


def _encode_text_labels(values, task, source, column, where):
    items = values.tolist()
    for i, v in enumerate(items):
        if is_missing(v):
            raise DataError(f"{source}, {where(i)}, column {column!r}: label is missing")
    if task == "regression":
        for i, v in enumerate(items):
            try:
                float(v)
            except (TypeError, ValueError):
                raise DataError(
                    f"{source}, {where(i)}, column {column!r}: label {v!r} is not a number; "
                    "regression needs numeric labels (use task 'classification' for categories)"
                ) from None
    # Mixed objects (e.g. 3 and "cat" in one pandas column) compare only as text.
    text = np.array([str(v) for v in items])
    uniq = np.unique(text)
    y = np.searchsorted(uniq, text).astype(np.int32)
    return y, "classification", tuple(str(v) for v in uniq)



def existing_file(path) -> str:
    """``path`` as a string, after checking it names a regular file (a FIFO or a device is
    refused: a loader reads a file more than once, and reading one may never end)."""
    try:
        p = os.fspath(path)
    except TypeError:
        raise DataError(f"expected a file path, got {type(path).__name__}") from None
    try:
        mode = os.stat(p).st_mode
    except FileNotFoundError:
        raise DataError(f"file not found: {p}") from None
    except OSError as e:
        raise DataError(f"{p}: cannot read: {e.strerror or e}") from None
    if stat.S_ISDIR(mode):
        raise DataError(f"{p} is a directory, not a data file")
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "not a regular file"
        raise DataError(f"{p}: is {kind}; sgdlab reads a data file more than once (its header, "
                        "then its rows): save the data to a file first")
    return p


def check_unique_columns(names: Sequence[str], source: str) -> None:
    """A :class:`DataError` naming the first column name that appears more than once (and
    where): columns are matched by name (the label, a model's features in prediction), so a
    repeated name would silently pick one of them."""
    seen: dict = {}
    for j, name in enumerate(names):
        seen.setdefault(name, []).append(j)
    for name, at in seen.items():
        if len(at) > 1:
            where = ", ".join(str(j + 1) for j in at)
            raise DataError(f"{source}: the column name {name!r} appears {len(at)} times (columns "
                            f"{where}, counting from 1); every column needs its own name: "
                            "rename the repeated ones")


def not_a_shard_set(path: str) -> str:
    """The message for a directory given as data that holds no shard set's manifest.json."""
    try:
        inside = sorted(os.listdir(path))
    except OSError:
        inside = []
    files = [n for n in inside if os.path.splitext(n)[1]]
    held = (f" (it holds {len(files)} file(s), e.g. {files[0]!r})" if files else "")
    return (f"{path}: is a directory without a manifest.json, not a shard set{held}; give one "
            "data file, or convert one into a shard set (sgdlab data convert FILE DIR) and give "
            "that directory")


def resolve_label(names: Sequence[str], label_column, source: str) -> int:
    """Index of the label column: ``None`` -> last, ``int`` -> position, ``str`` -> name.

    A string that is not a column name but is all digits (as typed on a command line) is taken
    as a position.
    """
    available = ", ".join(repr(n) for n in names)
    if label_column is None:
        return len(names) - 1
    if isinstance(label_column, bool) or not isinstance(label_column, (int, np.integer, str)):
        raise DataError(
            f"label_column must be a column name or a 0-based index, got {label_column!r}"
        )
    if isinstance(label_column, str):
        hits = [j for j, n in enumerate(names) if n == label_column]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise DataError(
                f"{source}: label column {label_column!r} is ambiguous: it names columns "
                f"{', '.join(str(h) for h in hits)} (0-based); pass its index instead"
            )
        if not label_column.strip().isdigit():
            raise DataError(
                f"{source}: label column {label_column!r} not found; available columns: {available}"
            )
        label_column = int(label_column)
    j = int(label_column)
    if not -len(names) <= j < len(names):
        raise DataError(
            f"{source}: label column index {j} is out of range for {len(names)} columns "
            f"(0..{len(names) - 1}); available columns: {available}"
        )
    return j % len(names)


def check_int(name: str, value, minimum: int) -> int:
    """``value`` as an int of at least ``minimum`` (a whole float is taken), or a
    :class:`ConfigError` naming ``name``."""
    # bool is an int subclass but "n=True" is surely a mistake.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer():
            value = int(value)
        else:
            raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_real(name: str, value, minimum: float, strict: bool = False) -> float:
    """``value`` as a finite float of at least (``strict``: above) ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    if value < minimum or (strict and value == minimum):
        raise ConfigError(f"{name} must be {'>' if strict else '>='} {minimum}, got {value}")
    return float(value)


def check_rows_fit(n: int, d: int, name: str) -> None:
    """Refuse to generate ``n x d`` float32 values that do not fit in the memory available."""
    need = 4 * n * d
    free = available_memory()
    if free is not None and need > free:
        raise ConfigError(f"{name}: {n} x {d} values take {need / 2 ** 30:.1f} GiB, more than the "
                          f"{free / 2 ** 30:.1f} GiB this machine has available; ask for fewer "
                          "rows (n=)")
