"""Delimited text (CSV, TSV) with a header row, parsed in chunks with located errors."""

from __future__ import annotations

import csv
import os

import numpy as np

from ..errors import DataError
from .checks import (
    _existing_file,
    _resolve_label,
    as_finite_float32,
    check_task,
    encode_labels,
)
from .dataset import Dataset

# Rows parsed before they are turned into one float array: bounds the memory held as Python
# floats while streaming a large CSV, and is large enough that the per-chunk cost is negligible.
_CSV_CHUNK_ROWS = 4096


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


