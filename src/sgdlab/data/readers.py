"""Streaming readers for ``sgdlab data convert``: CSV/TSV, LibSVM/svmlight, Parquet.

Each yields *chunks* ``(X (r, d) float32 | None, raw labels (r,), where)``, where
``where(i)`` names row ``i`` of the chunk for messages (``"line 17"`` for text files,
``"row index 70000"`` for Parquet). Feature cells are parsed and checked (finite, numeric) with
the in-memory loaders' helpers, so a file gives the same rows and the same error messages
whether it is loaded or converted.

Memory: one chunk, sized by :data:`CHUNK_BYTES` of parsed features whatever the file:
``CHUNK_BYTES / (8 d)`` rows of a dense float64 chunk (at most 4,096 text rows or 65,536
Parquet rows), and for text files the Python objects of those rows. Parquet is read with
``pre_buffer=False`` and a bounded ``buffer_size`` per column, so a row group of any size is
decoded a page and a batch at a time instead of being read whole. LibSVM feature counts are
capped at :data:`MAX_FEATURES` unless given (``--features``), because every row is stored
dense: one stray index of 10^9 would otherwise make each row 4 GB.
"""

from __future__ import annotations

import csv
from typing import Iterator

import numpy as np

from ..errors import DataError
from .checks import _resolve_label, as_finite_float32
from .text import (
    _CSV_CHUNK_ROWS,
    _csv_block,
    _csv_header,
    _ragged_message,
    _raise_bad_cell,
)

#: ``(X (r, d) float32 | None, raw labels (r,), where(i) -> "line 17")`` per input chunk
Chunk = tuple

#: bytes of parsed float64 features one input chunk holds at most (one row when wider)
CHUNK_BYTES = 8 << 20
#: Python objects per text cell while a CSV chunk is parsed (a float and its list slot, and
#: the float64 copy): CSV chunks hold ``CHUNK_BYTES / (CSV_CELL_BYTES d)`` rows
CSV_CELL_BYTES = 40
#: LibSVM feature count taken from the indices alone; more must be given with ``--features``
MAX_FEATURES = 1_000_000
#: Parquet read buffer per column: ``CHUNK_BYTES / columns`` within these bounds
PARQUET_BUFFER = (64 << 10, 1 << 20)
PARQUET_BATCH_ROWS = 65536


def chunk_rows(d: int, cell_bytes: int = 8, most: int = _CSV_CHUNK_ROWS) -> int:
    """Rows per chunk so that ``rows * d * cell_bytes <= CHUNK_BYTES`` (at least 1)."""
    return max(1, min(most, CHUNK_BYTES // (cell_bytes * max(1, d))))


def _not_utf8(src, e) -> DataError:
    """The error for a file that is not UTF-8, naming the first line that does not decode
    (found again in binary: the decoder fails a whole read buffer ahead of the parser)."""
    line = None
    try:
        with open(src, "rb") as fh:
            for k, raw in enumerate(fh, 1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError:
                    line = k
                    break
    except OSError:
        pass
    near = f", line {line}" if line else ""
    return DataError(f"{src}{near}: not UTF-8 text ({e.reason}); save the file as UTF-8")


# -- CSV / TSV -------------------------------------------------------------------------------

def csv_reader(src, delimiter, label_column):
    try:
        with open(src, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            for row in reader:
                if row and not (len(row) == 1 and not row[0].strip()):
                    header = [c.strip() for c in row]
                    names, li = _csv_header(header, reader.line_num, src, delimiter,
                                            label_column)
                    break
            else:
                raise DataError(f"{src}: file is empty; expected a header row and data rows")
    except UnicodeDecodeError as e:
        raise _not_utf8(src, e) from None
    except csv.Error as e:
        raise DataError(f"{src}, line {reader.line_num}: malformed CSV: {e}") from None
    return names, header[li], lambda: _csv_chunks(src, delimiter, header, names, li)


def _csv_chunks(src, delimiter, header, names, li) -> Iterator[Chunk]:
    per_chunk = chunk_rows(len(names), CSV_CELL_BYTES)
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
                if len(rows) >= per_chunk:
                    yield _csv_block(rows, lines, src, names), labels, _lines(lines)
                    rows, labels, lines = [], [], []
            if rows:
                yield _csv_block(rows, lines, src, names), labels, _lines(lines)
    except UnicodeDecodeError as e:
        raise _not_utf8(src, e) from None
    except csv.Error as e:
        raise DataError(f"{src}: malformed CSV: {e}") from None


def _lines(lines):
    return lambda i: f"line {lines[i]}"


# -- LibSVM ----------------------------------------------------------------------------------

class _Names:
    """``x0, x1, ...`` for messages, without building ``d`` strings per chunk."""

    def __init__(self, d):
        self.d = d

    def __len__(self):
        return self.d

    def __getitem__(self, j):
        return f"x{j}"


def libsvm_chunks(src, d: int | None, zero_based: bool, *,
                  declared: int | None = None) -> Iterator[Chunk]:
    """``label idx:value ...`` lines; ``# comments`` and ``qid:`` are ignored.

    With ``d=None`` (the scan) only indices are checked: the X slot of each chunk is its
    width (largest column + 1, 0 for none), and an index beyond ``declared`` features (or
    beyond :data:`MAX_FEATURES` when none are declared) stops the scan at its line. With ``d``
    the chunks are dense ``(r, d)`` float32, ``r`` from :func:`chunk_rows`.
    """
    scan = d is None
    if not scan:
        declared = d
    limit = declared if declared is not None else MAX_FEATURES
    per_chunk = _CSV_CHUNK_ROWS if scan else chunk_rows(d)
    X = None if scan else np.zeros((per_chunk, d), np.float64)
    width, labels, lines = 0, [], []
    try:
        with open(src, encoding="utf-8") as fh:
            for lineno, text in enumerate(fh, 1):
                text = text.split("#", 1)[0].strip()
                if not text:
                    continue
                parts = text.split()
                r = len(labels)
                labels.append(parts[0])
                lines.append(lineno)
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
                        raise DataError(f"{src}, line {lineno}, token {tok!r}: index {idx} is "
                                        f"below {0 if zero_based else 1}; pass --zero-based for "
                                        "0-based indices")
                    if col >= limit:
                        raise DataError(_beyond(src, lineno, tok, idx, col, declared))
                    if scan:
                        width = max(width, col + 1)
                    else:
                        X[r, col] = val
                if len(labels) >= per_chunk:
                    yield _libsvm_block(X, width, labels, lines, src), labels, _lines(lines)
                    labels, lines, width = [], [], 0
                    if X is not None:
                        X[:] = 0
    except UnicodeDecodeError as e:
        raise _not_utf8(src, e) from None
    if labels:
        yield _libsvm_block(X, width, labels, lines, src), labels, _lines(lines)


def _beyond(src, lineno, tok, idx, col, declared) -> str:
    where = f"{src}, line {lineno}, token {tok!r}"
    if declared is not None:
        return (f"{where}: index {idx} is beyond the {declared:,} features given with "
                "--features; pass a larger --features or fix the index")
    return (f"{where}: index {idx} means at least {col + 1:,} features, more than the "
            f"{MAX_FEATURES:,} convert takes from the indices alone (rows are stored dense: "
            f"{4 * (col + 1) / 2 ** 20:,.0f} MiB each); if the file really has that many, "
            "pass --features N, otherwise fix the index")


def _libsvm_block(X, width, labels, lines, src):
    if X is None:  # scan: report the width only
        return width
    return as_finite_float32(X[:len(labels)], source=src, columns=_Names(X.shape[1]),
                             where=lambda i: f"line {lines[i]}")


# -- Parquet ---------------------------------------------------------------------------------

def parquet_reader(src, label_column):
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        meta = pq.ParquetFile(src, pre_buffer=False)
        ncols = max(1, len(meta.schema_arrow.names))
        lo, hi = PARQUET_BUFFER
        # pre_buffer (pyarrow's default) reads every column chunk of the row groups being
        # iterated before decoding; a bounded buffer decodes a page at a time instead.
        pf = pq.ParquetFile(src, metadata=meta.metadata, pre_buffer=False,
                            buffer_size=min(hi, max(lo, CHUNK_BYTES // ncols)))
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
        rows = chunk_rows(len(header) if features else 1, 8, PARQUET_BATCH_ROWS)
        batches = pf.iter_batches(batch_size=rows, columns=cols)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as e:
                raise DataError(f"{src}: cannot read as Parquet near row index {row0}: "
                                f"{e}") from None
            lab = batch.column(header[li])
            if pa.types.is_dictionary(lab.type):
                lab = lab.cast(lab.type.value_type)
            _no_nulls(lab, src, header[li], "label", row0)
            X = None
            if features:
                X64 = np.empty((batch.num_rows, len(names)), np.float64)
                for k, name in enumerate(names):
                    col = batch.column(name)
                    _no_nulls(col, src, name, "feature", row0)
                    X64[:, k] = _to_numpy(col)
                X = as_finite_float32(X64, source=src, columns=names,
                                      where=lambda i, o=row0: f"row index {o + i}")
            yield X, _to_numpy(lab), (lambda i, o=row0: f"row index {o + i}")
            row0 += batch.num_rows

    return names, header[li], pf.metadata.num_rows, chunks


#: NumPy dtypes of the Arrow number types, by their Arrow names
_NUMPY_OF = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
             "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64,
             "halffloat": np.float16, "float": np.float32, "double": np.float64}


def _to_numpy(col) -> np.ndarray:
    """A null-free pyarrow array as NumPy, read from its buffers: pyarrow's own ``to_numpy``
    imports pandas (~60 MB resident and 0.3 s, a third of converting a 30 MB file)."""
    name = str(col.type)
    if name in _NUMPY_OF:
        dtype = np.dtype(_NUMPY_OF[name])
        return np.frombuffer(col.buffers()[1], dtype, len(col), col.offset * dtype.itemsize)
    if name == "bool":
        bits = np.unpackbits(np.frombuffer(col.buffers()[1], np.uint8), bitorder="little")
        return bits[col.offset:col.offset + len(col)].astype(bool)
    return np.array(col.to_pylist(), dtype=object)


def _no_nulls(col, src, name, what, row0):
    if col.null_count:
        first = row0 + col.to_pylist().index(None)
        raise DataError(f"{src}, row index {first}, column {name!r}: null {what} value; remove "
                        "or fill in missing values")
