"""Delimited text (CSV, TSV) with a header row: parsed by ``pyarrow.csv``, errors located by a
per-cell parser.

The header is read with Python's :mod:`csv` module (it is one line, and its checks name the
problem). The rows are parsed by ``pyarrow.csv`` with fixed column types (features float64,
the label text), no null values and no type inference; the float64 values are those Python's
``float`` gives (pyarrow accepts a subset of what ``float`` accepts, and rounds correctly).
Whenever pyarrow refuses a cell, a row or the file (a cell ``float`` accepts but pyarrow does
not, such as ``1_000``; an empty or non-numeric cell; a ragged row; a whitespace-only line;
bytes that are not UTF-8) or a value is not finite, the file is parsed again cell by cell in
Python: that parser gives today's result or its located message (file, 1-based line, column).
:data:`~sgdlab.data.readers.SLOW_PATH_RUNS` counts those runs under ``"csv"``.
"""

from __future__ import annotations

import csv
import mmap
import os
from typing import Iterator

import numpy as np

from ..errors import DataError
from . import readers
from .checks import (
    as_finite_float32,
    check_task,
    check_unique_columns,
    encode_labels,
    existing_file,
    resolve_label,
)
from .dataset import Dataset
from .readers import (
    CSV_CELL_BYTES,
    TEXT_CHUNK_ROWS,
    ChunkSource,
    arrow_to_numpy,
    chunk_rows,
    lines_where,
    not_utf8,
)

#: delimiters the fast reader is used with (others, and quote or newline characters, are
#: parsed in Python only)
FAST_DELIMITERS = ",;\t|:"


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
    src = existing_file(path)
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise DataError(f"delimiter must be a single character, got {delimiter!r}")
    ds = _load_csv_fast(src, label_column, task, delimiter)
    if ds is None:
        readers.SLOW_PATH_RUNS["csv"] += 1
        ds = _load_csv_slow(src, label_column, task, delimiter)
    return ds


# -- the header, shared by both parsers ------------------------------------------------------

class CsvHeader:
    """The header row: ``header`` (every column's name, unnamed ones ``column_<j>``), ``li``
    (the label column), ``names`` (the features, in file order), ``line`` (where it starts)
    and ``lines`` (the physical lines up to and including it, blank ones before it too)."""

    def __init__(self, header, li, names, line, lines):
        self.header, self.li, self.names, self.line, self.lines = header, li, names, line, lines


def read_header(src, delimiter, label_column) -> CsvHeader | None:
    """The first non-blank row, checked (``None`` when there is none). Raises DataError for a
    bad header, and :class:`UnicodeDecodeError` / :class:`csv.Error` as the reader does."""
    with open(src, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        found = first_row(reader)
        if found is None:
            return None
        header, line = found
        names, li = _csv_header(header, line, src, delimiter, label_column)
        return CsvHeader(header, li, names, line, reader.line_num)


def first_row(reader) -> tuple[list[str], int] | None:
    """The first non-blank row of a :func:`csv.reader`, its cells stripped, and the line it
    starts on; ``None`` when every row is blank."""
    prev = 0
    for row in reader:
        line, prev = prev + 1, reader.line_num
        if row and not (len(row) == 1 and not row[0].strip()):
            return [c.strip() for c in row], line
    return None


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
    check_unique_columns(header, f"{src}, line {line}")
    li = resolve_label(header, label_column, src)
    return [h for j, h in enumerate(header) if j != li], li


# -- the fast reader (pyarrow.csv) -----------------------------------------------------------

def _arrow_options(head: CsvHeader, delimiter: str, quotes: bool = True):
    """pyarrow.csv options that read the rows after the header: features float64, the label
    text, nothing null, nothing inferred; quoted newlines as Python's csv module reads them
    (``quotes=False``: the file has no quote character, so no value holds a newline, and the
    reader may cut the file into blocks at any newline: about 30% faster)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    cols = [f"c{j}" for j in range(len(head.header))]
    types = {c: pa.float64() for c in cols}
    types[cols[head.li]] = pa.string()
    read = pacsv.ReadOptions(column_names=cols, skip_rows=head.lines)
    parse = pacsv.ParseOptions(delimiter=delimiter, quote_char='"', double_quote=True,
                               escape_char=False, newlines_in_values=quotes,
                               ignore_empty_lines=True)
    convert = pacsv.ConvertOptions(column_types=types, null_values=[], true_values=[],
                                   false_values=[], strings_can_be_null=False,
                                   quoted_strings_can_be_null=False, check_utf8=True)
    return read, parse, convert


def _fast_header(src, delimiter, label_column) -> CsvHeader | None:
    """The header for the fast reader, or ``None`` to leave the file to the slow one (which
    then raises the header's error, if it has one)."""
    if delimiter not in FAST_DELIMITERS or not readers.USE_FAST_READERS:
        return None
    try:
        return read_header(src, delimiter, label_column)
    except (DataError, UnicodeDecodeError, csv.Error, OSError):
        return None


def _fill_features(X, batch, head: CsvHeader, start: int, take: int, at: int) -> None:
    """Rows ``start .. start + take`` of ``batch``'s feature columns into ``X[at:]``."""
    k = 0
    with np.errstate(over="ignore", invalid="ignore"):
        for j in range(len(head.header)):
            if j != head.li:
                X[at:at + take, k] = arrow_to_numpy(batch.column(j).slice(start, take))
                k += 1


def _has_quotes(src) -> bool:
    """Whether the file holds a ``"`` (one pass at memory speed over the mapped file)."""
    try:
        with open(src, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return m.find(b'"') >= 0
    except (OSError, ValueError):  # ValueError: an empty file cannot be mapped
        return True


def _text_labels(col) -> list[str] | None:
    """The label cells, stripped as the slow parser strips them (``None`` if one is longer
    than the csv module's field limit: that parser refuses such a file)."""
    labels = col.to_pylist()
    limit = csv.field_size_limit()
    if any(len(s) > limit for s in labels):
        return None
    return [s.strip() for s in labels]


def _load_csv_fast(src, label_column, task, delimiter) -> Dataset | None:
    head = _fast_header(src, delimiter, label_column)
    if head is None:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    read, parse, convert = _arrow_options(head, delimiter, _has_quotes(src))
    try:
        with pa.input_stream(src, compression=None) as stream:
            table = pacsv.read_csv(stream, read_options=read, parse_options=parse,
                                   convert_options=convert)
    except (pa.ArrowException, OSError):
        return None
    n = table.num_rows
    if n == 0:
        return None
    X = np.empty((n, len(head.names)), np.float32)
    at = 0
    for batch in table.to_batches():
        _fill_features(X, batch, head, 0, batch.num_rows, at)
        at += batch.num_rows
    if not np.isfinite(X).all():
        return None  # the slow parser names the cell (NaN, inf, too large for float32)
    col = table.column(head.li)
    try:  # numeric labels: the same float64 values the slow parser's labels would give
        labels = arrow_to_numpy(pc.cast(col, pa.float64()).combine_chunks())
    except pa.ArrowException:
        text = _text_labels(col)
        if text is None:
            return None
        labels = np.array(text)
    try:
        y, task, classes = encode_labels(labels, task, source=src,
                                         column=head.header[head.li])
    except DataError:
        return None  # a missing or non-numeric label: the slow parser names its line
    return Dataset(X, y, task, classes, tuple(head.names), os.path.basename(src))


class RowLines:
    """The 1-based line where each data row starts, found (when an error needs it) by reading
    the file again with the csv module, as the slow parser counts lines."""

    def __init__(self, src, delimiter, head: CsvHeader):
        self.src, self.delimiter, self.head = src, delimiter, head

    def __call__(self, row: int) -> int:
        with open(self.src, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=self.delimiter)
            prev, k = 0, -1
            for cells in reader:
                line, prev = prev + 1, reader.line_num
                if line <= self.head.line or not cells or (
                        len(cells) == 1 and not cells[0].strip()):
                    continue
                k += 1
                if k == row:
                    return line
        raise AssertionError(f"row {row} is not in {self.src}")


# -- the slow reader (csv module, cell by cell) ----------------------------------------------

def _load_csv_slow(src, label_column, task, delimiter) -> Dataset:
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
                if len(rows) >= TEXT_CHUNK_ROWS:
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


# -- chunks for convert ----------------------------------------------------------------------

class CsvSource(ChunkSource):
    """A CSV/TSV file read in chunks of ``chunk_rows(d, CSV_CELL_BYTES)`` rows: by
    ``pyarrow.csv.open_csv`` (1 MiB blocks), or, from the chunk where that reader refuses the
    file or meets a non-finite value on, cell by cell. Labels are the stripped cell texts."""

    def __init__(self, src, label_column=None, delimiter: str = ","):
        if not isinstance(delimiter, str) or len(delimiter) != 1:
            raise DataError(f"delimiter must be a single character, got {delimiter!r}")
        self.src, self.delimiter = src, delimiter
        reader = None
        try:
            with open(src, newline="", encoding="utf-8-sig") as fh:
                reader = csv.reader(fh, delimiter=delimiter)
                found = first_row(reader)
                if found is None:
                    raise DataError(f"{src}: file is empty; expected a header row and data rows")
                header, line = found
                names, li = _csv_header(header, reader.line_num, src, delimiter, label_column)
                self.head = CsvHeader(header, li, names, line, reader.line_num)
        except UnicodeDecodeError as e:
            raise not_utf8(src, e) from None
        except csv.Error as e:
            raise DataError(f"{src}, line {reader.line_num}: malformed CSV: {e}") from None
        self.names, self.label_name = names, header[li]

    def chunks(self) -> Iterator[readers.Chunk]:
        per_chunk = chunk_rows(len(self.names), CSV_CELL_BYTES)
        done = 0
        if self.delimiter in FAST_DELIMITERS and readers.USE_FAST_READERS:
            fast = self._fast_chunks(per_chunk)
            for chunk in fast:
                if chunk is None:  # the fast reader stopped before this chunk
                    break
                done += len(chunk[1])
                yield chunk
            else:
                return
            readers.SLOW_PATH_RUNS["csv"] += 1
        yield from _csv_chunks(self.src, self.delimiter, self.head, per_chunk, skip=done)

    def _fast_chunks(self, per_chunk) -> Iterator[readers.Chunk | None]:
        """Chunks from pyarrow; ``None`` (and the end) where the slow reader must take over."""
        import pyarrow as pa
        import pyarrow.csv as pacsv

        head, d = self.head, len(self.names)
        read, parse, convert = _arrow_options(head, self.delimiter)
        locate = RowLines(self.src, self.delimiter, head)
        try:
            stream = pa.input_stream(self.src, compression=None)
        except (pa.ArrowException, OSError):
            yield None
            return
        with stream:
            try:
                batches = pacsv.open_csv(stream, read_options=read, parse_options=parse,
                                         convert_options=convert)
            except (pa.ArrowException, OSError):
                yield None
                return
            X, labels, row0 = np.empty((per_chunk, d), np.float32), [], 0
            while True:
                try:
                    batch = batches.read_next_batch()
                except StopIteration:
                    break
                except (pa.ArrowException, OSError):
                    yield None
                    return
                start = 0
                while start < batch.num_rows:
                    take = min(per_chunk - len(labels), batch.num_rows - start)
                    _fill_features(X, batch, head, start, take, len(labels))
                    text = _text_labels(batch.column(head.li).slice(start, take))
                    if text is None:
                        yield None
                        return
                    labels += text
                    start += take
                    if len(labels) == per_chunk:
                        if not np.isfinite(X).all():
                            yield None
                            return
                        yield X, labels, (lambda i, r=row0: f"line {locate(r + i)}")
                        row0 += per_chunk
                        X, labels = np.empty((per_chunk, d), np.float32), []
            if labels:
                X = X[:len(labels)]
                if not np.isfinite(X).all():
                    yield None
                    return
                yield X, labels, (lambda i, r=row0: f"line {locate(r + i)}")


def _csv_chunks(src, delimiter, head: CsvHeader, per_chunk: int,
                skip: int = 0) -> Iterator[readers.Chunk]:
    """The slow reader's chunks, from data row ``skip`` on (rows before it are not parsed)."""
    header, names, li = head.header, head.names, head.li
    try:
        with open(src, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh, delimiter=delimiter)
            prev, seen_header, k = 0, False, 0
            rows, labels, lines = [], [], []
            for row in reader:
                line, prev = prev + 1, reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if not seen_header:
                    seen_header = True
                    continue
                k += 1
                if k <= skip:
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
                    yield _csv_block(rows, lines, src, names), labels, lines_where(lines)
                    rows, labels, lines = [], [], []
            if rows:
                yield _csv_block(rows, lines, src, names), labels, lines_where(lines)
    except UnicodeDecodeError as e:
        raise not_utf8(src, e) from None
    except csv.Error as e:
        raise DataError(f"{src}: malformed CSV: {e}") from None


def csv_columns(path, delimiter: str = ",") -> list[str]:
    """The column names of a CSV/TSV header (its first non-empty row), for prediction."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            for row in csv.reader(fh, delimiter=delimiter):
                if row:
                    names = [c.strip() or f"column_{j + 1}" for j, c in enumerate(row)]
                    check_unique_columns(names, str(path))
                    return names
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read the header: {e}") from None
    raise DataError(f"{path}: is empty; a header row and data rows are needed")


def open_csv(path, label_column=None, delimiter: str = ",") -> CsvSource:
    """A CSV/TSV file (options as :func:`load_csv`) for ``convert``."""
    return CsvSource(existing_file(path), label_column, delimiter)
