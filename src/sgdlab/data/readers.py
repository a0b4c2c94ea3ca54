"""Streaming readers for ``sgdlab data convert``: CSV/TSV, LibSVM/svmlight, Parquet.

Each yields *chunks* ``(X (r, d) float32 | None, raw labels (r,), where)``, where
``where(i)`` names row ``i`` of the chunk for messages (``"line 17"`` for text files,
``"row index 70000"`` for Parquet). Feature cells are parsed and checked (finite, numeric) with
the in-memory loaders' helpers, so a file gives the same rows and the same error messages
whether it is loaded or converted. Memory: one chunk (about 4,096 text rows, or one 65,536-row
Parquet batch).
"""

from __future__ import annotations

import csv
from typing import Iterator

import numpy as np

from ..errors import DataError
from .checks import _resolve_label, as_finite_float32
from .columnar import _check_no_nulls
from .text import (
    _CSV_CHUNK_ROWS,
    _csv_block,
    _csv_header,
    _ragged_message,
    _raise_bad_cell,
)

#: ``(X (r, d) float32 | None, raw labels (r,), where(i) -> "line 17")`` per input chunk
Chunk = tuple


def csv_reader(src, delimiter, label_column):
    with open(src, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        for row in reader:
            if row and not (len(row) == 1 and not row[0].strip()):
                header = [c.strip() for c in row]
                names, li = _csv_header(header, reader.line_num, src, delimiter, label_column)
                break
        else:
            raise DataError(f"{src}: file is empty; expected a header row and data rows")
    return names, header[li], lambda: _csv_chunks(src, delimiter, header, names, li)


def _csv_chunks(src, delimiter, header, names, li) -> Iterator[Chunk]:
    try:
        with open(src, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            prev, seen_header = 0, False
            rows, labels, lines = [], [], []
            for row in reader:
                line, prev = prev + 1, reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if not seen_header:
                    seen_header = True
                    continue
                if len(row) != len(header):
                    raise DataError(_ragged_message(src, line, header, row))
                labels.append(row.pop(li).strip())
                try:
                    rows.append(list(map(float, row)))
                except ValueError:
                    _raise_bad_cell(src, line, row, names)
                lines.append(line)
                if len(rows) >= _CSV_CHUNK_ROWS:
                    yield _csv_block(rows, lines, src, names), labels, _lines(lines)
                    rows, labels, lines = [], [], []
            if rows:
                yield _csv_block(rows, lines, src, names), labels, _lines(lines)
    except UnicodeDecodeError as e:
        raise DataError(f"{src}: not UTF-8 text ({e.reason}); save the file as UTF-8") from None
    except csv.Error as e:
        raise DataError(f"{src}: malformed CSV: {e}") from None


def _lines(lines):
    return lambda i: f"line {lines[i]}"


def libsvm_chunks(src, d: int | None, zero_based: bool) -> Iterator[Chunk]:
    """``label idx:value ...`` lines; ``# comments`` and ``qid:`` are ignored.

    With ``d=None`` (the scan) only indices are checked; the yielded X is ``None`` and the
    chunk's largest/smallest index are returned in the third slot's attributes.
    """
    rows, labels, lines = [], [], []
    with open(src, encoding="utf-8") as fh:
        for lineno, text in enumerate(fh, 1):
            text = text.split("#", 1)[0].strip()
            if not text:
                continue
            parts = text.split()
            labels.append(parts[0])
            feats = []
            for tok in parts[1:]:
                i, sep, v = tok.partition(":")
                if i == "qid":
                    continue
                try:
                    idx, val = int(i), float(v)
                except ValueError:
                    raise DataError(f"{src}, line {lineno}, token {tok!r}: expected "
                                    "index:value with a whole index and a number") from None
                col = idx if zero_based else idx - 1
                if col < 0:
                    raise DataError(f"{src}, line {lineno}, token {tok!r}: index {idx} is below "
                                    f"{0 if zero_based else 1}; pass --zero-based for 0-based "
                                    "indices")
                if d is not None and col >= d:
                    raise DataError(f"{src}, line {lineno}, column 'x{col}': index {idx} is "
                                    f"beyond the {d} features")
                feats.append((col, val))
            rows.append(feats)
            lines.append(lineno)
            if len(rows) >= _CSV_CHUNK_ROWS:
                yield _libsvm_block(rows, lines, src, d), labels, _lines(lines)
                rows, labels, lines = [], [], []
    if rows:
        yield _libsvm_block(rows, lines, src, d), labels, _lines(lines)


def _libsvm_block(rows, lines, src, d):
    if d is None:  # scan: report the width only
        return max((c for feats in rows for c, _ in feats), default=-1) + 1
    X = np.zeros((len(rows), d), np.float64)
    for r, feats in enumerate(rows):
        for c, v in feats:
            X[r, c] = v
    return as_finite_float32(X, source=src, columns=[f"x{j}" for j in range(d)],
                             where=lambda i: f"line {lines[i]}")


def parquet_reader(src, label_column):
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        pf = pq.ParquetFile(src)
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{src}: cannot read as Parquet: {e}") from None
    header = [str(n) for n in pf.schema_arrow.names]
    if len(header) < 2:
        raise DataError(f"{src}: needs at least one feature column and a label column")
    li = _resolve_label(header, label_column, src)
    names = [h for j, h in enumerate(header) if j != li]
    for j, field in enumerate(pf.schema_arrow):
        t = field.type
        if j != li and not (pa.types.is_integer(t) or pa.types.is_floating(t)
                            or pa.types.is_boolean(t)):
            raise DataError(f"{src}, column {header[j]!r}: type {t} is not numeric; feature "
                            "columns must be int, float or bool")

    def chunks(features=True) -> Iterator[Chunk]:
        row0 = 0
        cols = None if features else [header[li]]
        for batch in pf.iter_batches(batch_size=65536, columns=cols):
            lab = batch.column(header[li])
            if pa.types.is_dictionary(lab.type):
                lab = lab.cast(lab.type.value_type)
            _check_no_nulls(lab, src, header[li], "label")
            X = None
            if features:
                X64 = np.empty((batch.num_rows, len(names)), np.float64)
                for k, name in enumerate(names):
                    col = batch.column(name)
                    if col.null_count:
                        first = row0 + int(np.argmax(col.is_null().to_numpy(zero_copy_only=False)))
                        raise DataError(f"{src}, row index {first}, column {name!r}: null "
                                        "feature value; remove or fill in missing values")
                    X64[:, k] = col.to_numpy(zero_copy_only=False)
                X = as_finite_float32(X64, source=src, columns=names,
                                      where=lambda i, o=row0: f"row index {o + i}")
            yield X, lab.to_numpy(zero_copy_only=False), (lambda i, o=row0: f"row index {o + i}")
            row0 += batch.num_rows

    return names, header[li], pf.metadata.num_rows, chunks
