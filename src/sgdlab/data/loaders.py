"""Read user data into a validated :class:`~sgdlab.data.dataset.Dataset`.

Every loader returns ``X: (N, d)`` float32 (all finite) and ``y: (N,)`` (int32 class indices
``0..C-1`` for classification, float32 for regression). Every mistake in the input raises
:class:`~sgdlab.errors.DataError` whose message names the file and, where it applies, the
1-based line (text files) or 0-based ``row index`` (binary files and arrays) and the column.

Supported sources (see :func:`load_data`):

* ``.csv`` / ``.tsv``: header row required, label column by name or index (default: last).
* ``.parquet`` / ``.pq``: numeric feature columns, any numeric/string/bool label column.
* ``.npy``: one 2-D numeric array ``(N, d + 1)`` whose **last column is the label**.
* ``.npz``: arrays ``X: (N, d)`` and ``y: (N,)`` (keys configurable).
* Built-in names: ``digits`` and the synthetic generators in
  :data:`sgdlab.data.synthetic.GENERATORS`, e.g. ``"blobs:n=2000,d=20"``.

NumPy files are always opened with ``allow_pickle=False``: an object array would need pickle,
and unpickling a file can run arbitrary code, so such files are refused.
"""

from __future__ import annotations

import csv
import dataclasses
import inspect
import math
import os
import zipfile
import zlib
from typing import Callable, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .dataset import TASKS, Dataset

#: With ``task=None``, integer-valued labels with at most this many distinct values are
#: taken as class labels; more distinct values (or non-integers) mean regression.
MAX_INFERRED_CLASSES = 50

#: File extensions :func:`load_data` understands, mapped to a short description.
EXTENSIONS = {
    ".csv": "comma-separated text with a header row",
    ".tsv": "tab-separated text with a header row",
    ".parquet": "Apache Parquet",
    ".pq": "Apache Parquet",
    ".npy": "NumPy array (N, d+1), label in the last column",
    ".npz": "NumPy archive with arrays X and y",
}

_F32_MAX = float(np.finfo(np.float32).max)
# What reading a damaged .npz (a zip archive) can raise: zipfile uses NotImplementedError for
# unknown versions or compression methods and RuntimeError for encrypted members.
_ARCHIVE_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
                   RuntimeError)
# Rows parsed before they are turned into one float array: bounds the memory held as Python
# floats while streaming a large CSV, and is large enough that the per-chunk cost is negligible.
_CSV_CHUNK_ROWS = 4096


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
    """``values`` (``(N, d)`` or ``(N,)``, any real dtype) as C-contiguous float32, all finite.

    The check runs on the float32 result, so a finite float64 value too large for float32
    (which would silently become ``inf``) is caught as well. The error names the first bad
    cell in row-major order: ``"{source}, {where(row)}, column {name!r}: value is NaN"``.
    ``where`` turns a 0-based row into words (``"line 17"`` for text files), ``columns`` names
    the columns (default ``x0, x1, ...``).
    """
    arr = np.asarray(values)
    # The cast overflows to inf for |v| > float32 max; that is reported below, not warned.
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(out)
    if finite.all():
        return out
    flat = int(np.argmin(finite.reshape(-1)))  # first False in row-major order
    if out.ndim == 1:
        row, col = flat, 0
    else:
        row, col = divmod(flat, out.shape[1])
    original = arr.reshape(-1)[flat] if arr.ndim else arr
    name = columns[col] if columns is not None and col < len(columns) else f"x{col}"
    if isinstance(original, (float, np.floating)) and math.isnan(original):
        what = "value is NaN (missing values must be removed or filled in first)"
    elif isinstance(original, (float, np.floating)) and math.isinf(original):
        what = f"value is {float(original)} (infinite values are not allowed)"
    else:
        what = (f"value {float(original):g} is too large for float32 "
                f"(|value| must be <= {_F32_MAX:.3g})")
    raise DataError(f"{source}, {where(row)}, column {name!r}: {what}")


def _try_float64(values: np.ndarray) -> np.ndarray | None:
    """Text or object labels as float64, or ``None`` if any of them is not a number."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        return None


def _is_missing(v) -> bool:
    if v is None:
        return True
    if isinstance(v, (float, np.floating)) and math.isnan(v):
        return True
    return isinstance(v, (str, np.str_)) and not v.strip()


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
        numeric = _try_float64(values)
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
        if _is_missing(v):
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


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _existing_file(path) -> str:
    """``path`` as a string, after checking it names a readable regular file."""
    try:
        p = os.fspath(path)
    except TypeError:
        raise DataError(f"expected a file path, got {type(path).__name__}") from None
    if not os.path.exists(p):
        raise DataError(f"file not found: {p}")
    if os.path.isdir(p):
        raise DataError(f"{p} is a directory, not a data file")
    return p


def _resolve_label(names: Sequence[str], label_column, source: str) -> int:
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


def _looks_numeric(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def load_csv(path, label_column=None, task: str | None = None, delimiter: str = ",") -> Dataset:
    """Load a delimited text file with a header row.

    Args:
      path: the file; text is read as UTF-8 (a byte-order mark is ignored).
      label_column: label column name, or 0-based index; default the last column. A digit
        string that is not a column name is used as an index.
      task: ``"classification"``, ``"regression"`` or ``None`` to infer (see
        :func:`encode_labels`).
      delimiter: one character, ``","`` by default (``"\\t"`` for TSV).

    Returns:
      A :class:`Dataset` with ``X: (N, d)`` float32 from every other column, in file order,
      ``feature_names`` from the header and ``name`` the file's base name.

    Blank lines are skipped. Every other line must have as many cells as the header; feature
    cells must be finite numbers (surrounding spaces are fine). Errors name the file, the
    1-based line number and the column, e.g.
    ``my.csv, line 17, column 'sepal_width': 'abc' is not a number``.
    """
    check_task(task)
    src = _existing_file(path)
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise DataError(f"delimiter must be a single character, got {delimiter!r}")

    chunks: list[np.ndarray] = []  # float32 feature blocks, checked finite
    labels: list[str] = []
    lines: list[int] = []  # 1-based line where each data row starts, for error messages
    reader = None
    try:
        # newline="" lets the csv module handle quoted fields with embedded newlines.
        with open(src, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            header = None
            prev_line = 0
            rows: list[list[float]] = []
            row_lines: list[int] = []
            for row in reader:
                line, prev_line = prev_line + 1, reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue  # blank line
                if header is None:
                    header, header_line = [c.strip() for c in row], line
                    names, li = _csv_header(header, header_line, src, delimiter, label_column)
                    continue
                if len(row) != len(header):
                    raise DataError(_ragged_message(src, line, header, row))
                label = row[li].strip()
                del row[li]  # what is left are the feature cells, in `names` order
                try:
                    vals = list(map(float, row))
                except ValueError:
                    _raise_bad_cell(src, line, row, names)
                rows.append(vals)
                row_lines.append(line)
                labels.append(label)
                if len(rows) >= _CSV_CHUNK_ROWS:
                    chunks.append(_csv_block(rows, row_lines, src, names))
                    lines.extend(row_lines)
                    rows, row_lines = [], []
            if rows:
                chunks.append(_csv_block(rows, row_lines, src, names))
                lines.extend(row_lines)
    except UnicodeDecodeError as e:
        near = f", near line {reader.line_num + 1}" if reader is not None else ""
        raise DataError(
            f"{src}{near}: not UTF-8 text ({e.reason}); save the file as UTF-8 CSV"
        ) from None
    except csv.Error as e:
        near = f", line {reader.line_num}" if reader is not None else ""
        raise DataError(f"{src}{near}: malformed CSV: {e}") from None

    if header is None:
        raise DataError(f"{src}: file is empty; expected a header row and at least one data row")
    if not chunks:
        raise DataError(
            f"{src}: has a header (line {header_line}) but no data rows; add at least one row"
        )
    label_name = header[li]
    y, task, classes = encode_labels(
        np.array(labels), task, source=src, column=label_name, where=lambda i: f"line {lines[i]}"
    )
    X = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
    return Dataset(X, y, task, classes, tuple(names), os.path.basename(src))


def _csv_header(header, line, src, delimiter, label_column):
    """Validate the header; return (feature names in file order, label column index)."""
    if len(header) < 2:
        hint = ""
        for alt, word in ((";", "';'"), ("\t", "'\\t' (tab)"), (",", "','"), ("|", "'|'")):
            if alt != delimiter and alt in header[0]:
                hint = f"; the header contains {word}: is that the delimiter?"
                break
        raise DataError(
            f"{src}, line {line}: the header has 1 column ({header[0]!r}) with delimiter "
            f"{delimiter!r}; need at least one feature column and a label column{hint}"
        )
    if all(_looks_numeric(c) for c in header):
        raise DataError(
            f"{src}, line {line}: the first line holds only numbers, so it looks like data; "
            "a header row with column names is required"
        )
    # Unnamed columns still need a name for messages and feature_names.
    header[:] = [c if c else f"column_{j + 1}" for j, c in enumerate(header)]
    li = _resolve_label(header, label_column, src)
    return [h for j, h in enumerate(header) if j != li], li


def _ragged_message(src, line, header, row) -> str:
    n, m = len(row), len(header)
    if n < m:
        detail = f"missing {', '.join(repr(h) for h in header[n:])}"
    else:
        detail = f"{n - m} extra cell(s) after column {header[-1]!r}"
    return (
        f"{src}, line {line}: found {n} cells but the header has {m} ({detail}); "
        "every row needs one cell per column"
    )


def _raise_bad_cell(src, line, cells, names):
    for cell, name in zip(cells, names):
        try:
            float(cell)
        except ValueError:
            shown = "empty cell" if not cell.strip() else f"{cell.strip()!r} is not a number"
            raise DataError(
                f"{src}, line {line}, column {name!r}: {shown}; feature columns must be numeric "
                "(choose the label with label_column)"
            ) from None
    raise AssertionError("unreachable: a cell failed to parse but none fails alone")


def _csv_block(rows, row_lines, src, names) -> np.ndarray:
    return as_finite_float32(
        np.array(rows, dtype=np.float64), source=src, columns=names,
        where=lambda i: f"line {row_lines[i]}",
    )


def load_parquet(path, label_column=None, task: str | None = None) -> Dataset:
    """Load a Parquet file with pyarrow.

    Feature columns (all but the label) must be integer, float or bool without nulls; the
    label column may be numeric, bool or text (dictionary-encoded text is fine). ``label_column``
    and ``task`` work as in :func:`load_csv`. Errors name the file, the column and the 0-based
    ``row index``. Returns ``X: (N, d)`` float32 and ``y: (N,)``.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    check_task(task)
    src = _existing_file(path)
    try:
        table = pq.read_table(src)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{src}: cannot read as Parquet: {e}") from None
    header = [str(n) for n in table.column_names]
    if len(header) < 2:
        raise DataError(
            f"{src}: has {len(header)} column(s) {header}; need at least one feature column "
            "and a label column"
        )
    if table.num_rows == 0:
        raise DataError(f"{src}: has columns but no rows")
    li = _resolve_label(header, label_column, src)
    feat_cols = [j for j in range(len(header)) if j != li]
    names = [header[j] for j in feat_cols]

    X64 = np.empty((table.num_rows, len(feat_cols)), dtype=np.float64)
    for k, j in enumerate(feat_cols):
        col = table.column(j)
        t = col.type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
            raise DataError(
                f"{src}, column {header[j]!r}: type {t} is not numeric; feature columns must be "
                "int, float or bool (choose the label with label_column)"
            )
        _check_no_nulls(col, src, header[j], "feature")
        X64[:, k] = col.to_numpy()
    X = as_finite_float32(X64, source=src, columns=names)
    del X64

    lab = table.column(li)
    if pa.types.is_dictionary(lab.type):
        lab = lab.cast(lab.type.value_type)
    t = lab.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
            or pa.types.is_string(t) or pa.types.is_large_string(t)):
        raise DataError(
            f"{src}, column {header[li]!r}: label type {t} is not supported; use numbers or text"
        )
    _check_no_nulls(lab, src, header[li], "label")
    y, task, classes = encode_labels(
        lab.to_numpy(zero_copy_only=False), task, source=src, column=header[li]
    )
    return Dataset(X, y, task, classes, tuple(names), os.path.basename(src))


def _check_no_nulls(col, src, name, what):
    if col.null_count:
        first = int(np.argmax(col.is_null().to_numpy(zero_copy_only=False)))
        raise DataError(
            f"{src}, row index {first}, column {name!r}: {col.null_count} null {what} value(s), "
            "the first in this row; remove or fill in missing values"
        )


def _np_load(src: str):
    # np.load treats anything without the .npy/.npz signature as a pickle (and would then
    # blame allow_pickle); check the signature first so such files get an accurate message.
    with open(src, "rb") as fh:
        magic = fh.read(6)
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK\x03\x04"):
        raise DataError(f"{src}: cannot read as a NumPy file: it is not in .npy or .npz format")
    if magic == b"\x93NUMPY":
        with open(src, "rb") as fh:
            _check_npy_header(fh, os.path.getsize(src), src)
    try:
        return np.load(src, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e) or "pickle" in str(e).lower():
            raise DataError(_object_refused(src)) from None
        raise DataError(f"{src}: cannot read as a NumPy file: {e}") from None
    except _ARCHIVE_ERRORS as e:
        raise DataError(f"{src}: cannot read as a NumPy file: {e}") from None


def _check_npy_header(fh, size: int, src: str, key: str | None = None) -> None:
    """Read a ``.npy`` header and check it before any data is read.

    Refuses object dtypes at once (their data is a pickle) and a header declaring more data
    than the ``size`` bytes the file holds: a truncated file, or a damaged header whose shape
    would make NumPy allocate an absurd amount of memory before noticing.
    """
    what = f"array {key!r}" if key else "the array"
    try:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, _, dtype = read(fh)
    except Exception as e:  # noqa: BLE001
        # The header is a Python literal parsed by NumPy; damaged bytes surface as ValueError,
        # SyntaxError, tokenize errors, ... none of which NumPy documents. All mean the same.
        raise DataError(f"{src}: cannot read as a NumPy file: the header of {what} is damaged "
                        f"({type(e).__name__}: {e})") from None
    if dtype.hasobject:
        raise DataError(_object_refused(src, key))
    declared = math.prod(shape) * dtype.itemsize
    available = size - fh.tell()
    if declared > available:
        raise DataError(
            f"{src}: {what} is truncated or damaged: its header declares shape {shape} of "
            f"{dtype} ({declared:,} bytes) but only {max(available, 0):,} bytes follow")


def _object_refused(src: str, key: str | None = None) -> str:
    what = f"array {key!r}" if key else "the array"
    return (
        f"{src}: {what} has dtype=object; object arrays are refused because loading them needs "
        "pickle, which can run arbitrary code. Save a numeric array instead (e.g. X.astype(float))"
    )


def load_npy(path, task: str | None = None) -> Dataset:
    """Load a ``.npy`` file holding one 2-D numeric array of shape ``(N, d + 1)``.

    The **last column is the label**; the other ``d`` columns are the features. Labels are
    encoded as in :func:`encode_labels` (e.g. integer-valued floats with few distinct values
    become class indices). Opened with ``allow_pickle=False``; object arrays are refused.
    """
    check_task(task)
    src = _existing_file(path)
    arr = _np_load(src)
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise DataError(f"{src}: is an .npz archive, not a single array; load it with load_npz")
    if arr.ndim != 2:
        raise DataError(
            f"{src}: expected a 2-D array (N, d+1) with the label in the last column, got a "
            f"{arr.ndim}-D array of shape {arr.shape}"
        )
    if arr.shape[1] < 2:
        raise DataError(
            f"{src}: has {arr.shape[1]} column(s); need at least one feature column and the "
            "label in the last column"
        )
    return _from_arrays(arr[:, :-1], arr[:, -1], task, os.path.basename(src), None, src)


def load_npz(path, x_key: str = "X", y_key: str = "y", task: str | None = None) -> Dataset:
    """Load a ``.npz`` archive holding features ``x_key: (N, d)`` and labels ``y_key: (N,)``.

    Opened with ``allow_pickle=False``; object arrays are refused. A missing key lists the keys
    that are there.
    """
    check_task(task)
    src = _existing_file(path)
    archive = _np_load(src)
    if isinstance(archive, np.ndarray):
        raise DataError(f"{src}: holds a single array, not an .npz archive; load it with load_npy")
    with archive:
        keys = list(archive.files)
        arrays = []
        for key in (x_key, y_key):
            if key not in keys:
                raise DataError(
                    f"{src}: no array named {key!r}; arrays in the file: "
                    f"{', '.join(repr(k) for k in keys) or '(none)'} (pass x_key=/y_key=)"
                )
            member = key + ".npy" if key + ".npy" in archive.zip.namelist() else key
            try:
                with archive.zip.open(member) as fh:
                    _check_npy_header(fh, archive.zip.getinfo(member).file_size, src, key)
            except _ARCHIVE_ERRORS as e:
                raise DataError(f"{src}: cannot read array {key!r} (damaged archive?): "
                                f"{e}") from None
            try:
                arrays.append(archive[key])
            except ValueError as e:
                if "pickle" in str(e).lower():
                    raise DataError(_object_refused(src, key)) from None
                raise DataError(f"{src}: cannot read array {key!r}: {e}") from None
            except _ARCHIVE_ERRORS as e:
                raise DataError(f"{src}: cannot read array {key!r} (damaged archive?): "
                                f"{e}") from None
    X, y = arrays
    return _from_arrays(X, y, task, os.path.basename(src), None, src)


# --------------------------------------------------------------------------------------------
# In-memory arrays
# --------------------------------------------------------------------------------------------


def _to_numpy(obj, source: str = "array", what: str = "features"):
    # pandas (and polars, ...) objects convert themselves; checked by attribute so pandas is
    # never imported here.
    if not isinstance(obj, np.ndarray) and hasattr(obj, "to_numpy"):
        return obj.to_numpy()
    try:
        return np.asarray(obj)
    except (ValueError, TypeError):
        # NumPy refuses nested sequences of unequal lengths ("inhomogeneous shape").
        raise DataError(_ragged_rows(obj, source, what)) from None


def _ragged_rows(obj, source: str, what: str) -> str:
    """Locate the first row whose length differs from row 0's, for a ragged nested list."""
    try:
        rows = list(obj)
        width = len(rows[0])
        for i, row in enumerate(rows):
            if len(row) != width:
                return (f"{source}, row index {i}: {what} row has {len(row)} value(s) but row "
                        f"index 0 has {width}; every row needs the same number of columns "
                        "(ragged rows)")
    except TypeError:
        pass
    return f"{source}: {what} cannot be read as a rectangular numeric array (ragged rows?)"


def from_arrays(X, y, task: str | None = None, name: str = "array", feature_names=None) -> Dataset:
    """Validate in-memory arrays and wrap them as a :class:`Dataset`.

    Args:
      X: ``(N, d)`` numbers: a NumPy array, nested lists, or a pandas DataFrame (whose column
        names become ``feature_names`` unless given). Bool and integer columns become float32.
      y: ``(N,)`` labels (``(N, 1)`` is flattened): numbers, bools or text, or a pandas Series.
      task: ``"classification"``, ``"regression"`` or ``None`` to infer (see
        :func:`encode_labels`).
      name: used as ``Dataset.name`` and in error messages.
      feature_names: ``d`` names; default ``x0..x{d-1}`` (or the DataFrame's columns).

    Raises :class:`DataError` for wrong shapes, mismatched lengths, non-numeric features and
    NaN/inf values (naming the first bad ``row index`` and column).
    """
    if feature_names is None and hasattr(X, "columns") and hasattr(X, "to_numpy"):
        feature_names = [str(c) for c in X.columns]
    return _from_arrays(X, y, task, name, feature_names, name)


def _from_arrays(X, y, task, name, feature_names, source) -> Dataset:
    check_task(task)
    X = _to_numpy(X, source, "features")
    y = _to_numpy(y, source, "labels")
    if X.ndim == 1:
        raise DataError(
            f"{source}: features must be 2-D (N, d), got 1-D shape {X.shape}; "
            "for a single feature use X.reshape(-1, 1)"
        )
    if X.ndim != 2:
        raise DataError(
            f"{source}: features must be 2-D (N, d), got a {X.ndim}-D array of shape {X.shape}"
            + ("; flatten each example first, e.g. X.reshape(len(X), -1)" if X.ndim > 2 else "")
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(
            f"{source}: labels must be 1-D (N,), got shape {y.shape}"
            + ("; for one-hot labels pass y.argmax(axis=1)" if y.ndim == 2 else "")
        )
    if len(X) != len(y):
        raise DataError(f"{source}: X has {len(X)} rows but y has {len(y)} labels; they must match")
    n, d = X.shape
    if n == 0:
        raise DataError(f"{source}: there are no rows (N = 0)")
    if d == 0:
        raise DataError(f"{source}: there are no feature columns (d = 0)")
    if feature_names is None:
        names = tuple(f"x{j}" for j in range(d))
    else:
        names = tuple(str(f) for f in feature_names)
        if len(names) != d:
            raise DataError(f"{source}: {len(names)} feature names for {d} feature columns")
    X = _numeric_features(X, source, names)
    X = as_finite_float32(X, source=source, columns=names)
    y, task, classes = encode_labels(y, task, source=source)
    return Dataset(X, y, task, classes, names, name)


def _numeric_features(X: np.ndarray, source: str, names) -> np.ndarray:
    """``X`` with a real numeric dtype, or a DataError naming the first non-numeric cell."""
    kind = X.dtype.kind
    if kind in "biuf":
        return X
    if kind in "USO":
        converted = _try_float64(X)
        if converted is not None:
            return converted
        for i, row in enumerate(X.tolist()):
            for j, v in enumerate(row):
                try:
                    float(v)
                except (TypeError, ValueError):
                    raise DataError(
                        f"{source}, row index {i}, column {names[j]!r}: {v!r} is not a number; "
                        "features must be numeric"
                    ) from None
    raise DataError(f"{source}: features of dtype {X.dtype} are not supported; use real numbers")


# --------------------------------------------------------------------------------------------
# One entry point for every source
# --------------------------------------------------------------------------------------------


def builtin_names() -> list[str]:
    """Names :func:`load_data` accepts besides file paths."""
    from .synthetic import GENERATORS

    return ["digits", *GENERATORS]


def load_data(spec, label_column=None, task: str | None = None, seed: int = 0, **kwargs) -> Dataset:
    """Load data from a built-in name or a file path.

    Args:
      spec: ``"digits"``, a synthetic generator with optional parameters
        (``"blobs"``, ``"blobs:n=2000,d=20"``, see :data:`sgdlab.data.synthetic.GENERATORS`),
        or a path ending in ``.csv``, ``.tsv``, ``.parquet``/``.pq``, ``.npy`` or ``.npz``.
      label_column: for CSV/TSV/Parquet only (see :func:`load_csv`).
      task: force ``"classification"``/``"regression"``; for built-ins it must match theirs.
      seed: seed for synthetic generators (a ``seed=`` in the spec wins).
      **kwargs: passed to the loader (``delimiter`` for text, ``x_key``/``y_key`` for ``.npz``)
        or to the generator as extra parameters.

    Raises :class:`DataError` for a missing file (``file not found: ...``) or an unknown spec
    (listing the built-in names and supported extensions).
    """
    check_task(task)
    try:
        spec = os.fspath(spec)
    except TypeError:
        raise DataError(f"data spec must be a name or a path, got {type(spec).__name__}") from None
    ext = os.path.splitext(spec)[1].lower()
    if ext in EXTENSIONS:
        return _load_file(spec, ext, label_column, task, kwargs)

    from .synthetic import GENERATORS, parse_spec

    base = spec.split(":", 1)[0].strip()
    if base == "digits" or base in GENERATORS:
        if label_column is not None:
            raise ConfigError(
                f"label_column applies to CSV and Parquet files, not to built-in data {base!r}"
            )
        if base == "digits":
            if spec.strip() != "digits" or kwargs:
                raise DataError("built-in 'digits' takes no parameters")
            from .builtin import digits

            ds = digits()
        else:
            name, params = parse_spec(spec)
            gen = GENERATORS[name]
            for key, value in kwargs.items():
                if key in params:
                    raise ConfigError(
                        f"{name}: parameter {key!r} given twice (in the spec and as an argument)"
                    )
                params[key] = value
            _check_params(name, gen, params)
            params.setdefault("seed", seed)
            ds = gen(**params)
            ds = dataclasses.replace(ds, name=spec.strip())
        if task is not None and task != ds.task:
            raise DataError(f"built-in data {base!r} is a {ds.task} task, not {task}")
        return ds

    if os.path.exists(spec):
        raise DataError(
            f"{spec}: unsupported file type {ext or '(no extension)'!r}; supported extensions: "
            f"{', '.join(EXTENSIONS)}"
        )
    raise DataError(
        f"unknown data {spec!r}: not a built-in name ({', '.join(builtin_names())}) and not a "
        f"path ending in a supported extension ({', '.join(EXTENSIONS)})"
    )


def _check_params(name: str, fn, params: dict) -> None:
    valid = [p for p in inspect.signature(fn).parameters]
    for key in params:
        if key not in valid:
            raise ConfigError(
                f"{name}: unknown parameter {key!r}; valid parameters: {', '.join(valid)}"
            )


def _load_file(path: str, ext: str, label_column, task, kwargs) -> Dataset:
    if ext in (".csv", ".tsv"):
        loader = load_csv
        kwargs = {"delimiter": "\t" if ext == ".tsv" else ",", **kwargs}
        kwargs.update(label_column=label_column)
    elif ext in (".parquet", ".pq"):
        loader = load_parquet
        kwargs = {**kwargs, "label_column": label_column}
    else:
        if label_column is not None:
            raise ConfigError(
                f"{path}: label_column does not apply to {ext} files "
                + ("(the label is the last column)" if ext == ".npy" else "(use y_key=)")
            )
        loader = load_npy if ext == ".npy" else load_npz
    allowed = set(inspect.signature(loader).parameters) - {"path", "task"}
    for key in kwargs:
        if key not in allowed:
            raise ConfigError(
                f"{path}: option {key!r} does not apply to {ext} files; valid options: "
                f"{', '.join(sorted(allowed)) or '(none)'}"
            )
    return loader(path, task=task, **kwargs)
