"""Apache Parquet files read with pyarrow: numeric feature columns, any label column."""

from __future__ import annotations

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
from .readers import PARQUET_BATCH_ROWS, PARQUET_BUFFER, ChunkSource, arrow_to_numpy, chunk_rows


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
    src = existing_file(path)
    parquet_columns(src)  # a repeated name is refused by name, before pyarrow lists the schema
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
    li = resolve_label(header, label_column, src)
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


def parquet_columns(path) -> list[str]:
    """The column names of a Parquet schema, for prediction."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        names = [str(n) for n in pq.read_schema(path).names]
    except (pa.ArrowException, OSError) as e:
        raise DataError(f"{path}: cannot read as Parquet: {e}") from None
    check_unique_columns(names, str(path))
    return names


# -- chunks for convert ----------------------------------------------------------------------

class ParquetSource(ChunkSource):
    """A Parquet file for ``convert``, read with ``pre_buffer=False`` and a bounded
    ``buffer_size`` per column, so a row group of any size is decoded a page and a batch at a
    time instead of being read whole. The scan reads the label column only."""

    labels_checked = True  # nulls are refused by the reader, naming their row

    def __init__(self, src, label_column=None):
        import pyarrow as pa
        import pyarrow.parquet as pq
        try:
            meta = pq.ParquetFile(src, pre_buffer=False)
            ncols = max(1, len(meta.schema_arrow.names))
            lo, hi = PARQUET_BUFFER
            # pre_buffer (pyarrow's default) reads every column chunk of the row groups being
            # iterated before decoding; a bounded buffer decodes a page at a time instead.
            self.pf = pq.ParquetFile(src, metadata=meta.metadata, pre_buffer=False,
                                     buffer_size=min(hi, max(lo, readers.CHUNK_BYTES // ncols)))
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"{src}: cannot read as Parquet: {e}") from None
        header = [str(n) for n in self.pf.schema_arrow.names]
        check_unique_columns(header, src)
        if len(header) < 2:
            raise DataError(f"{src}: needs at least one feature column and a label column")
        li = resolve_label(header, label_column, src)
        for j, field in enumerate(self.pf.schema_arrow):
            t = field.type
            if j != li and not (pa.types.is_integer(t) or pa.types.is_floating(t)
                                or pa.types.is_boolean(t)):
                raise DataError(f"{src}, column {header[j]!r}: type {t} is not numeric; "
                                "feature columns must be int, float or bool")
        self.src, self.header = src, header
        self.names = [h for j, h in enumerate(header) if j != li]
        self.label_name = header[li]
        self.total = self.pf.metadata.num_rows

    def scan(self):
        for _, labels, where in self._batches(features=False):
            yield labels, where

    def chunks(self):
        return self._batches(features=True)

    def _batches(self, features: bool) -> Iterator[readers.Chunk]:
        import pyarrow as pa
        src, label, names = self.src, self.label_name, self.names
        row0 = 0
        cols = None if features else [label]
        rows = chunk_rows(len(self.header) if features else 1, 8, PARQUET_BATCH_ROWS)
        batches = self.pf.iter_batches(batch_size=rows, columns=cols)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as e:
                raise DataError(f"{src}: cannot read as Parquet near row index {row0}: "
                                f"{e}") from None
            lab = batch.column(label)
            if pa.types.is_dictionary(lab.type):
                lab = lab.cast(lab.type.value_type)
            _no_nulls(lab, src, label, "label", row0)
            X = None
            if features:
                X64 = np.empty((batch.num_rows, len(names)), np.float64)
                for k, name in enumerate(names):
                    col = batch.column(name)
                    _no_nulls(col, src, name, "feature", row0)
                    X64[:, k] = arrow_to_numpy(col)
                X = as_finite_float32(X64, source=src, columns=names,
                                      where=lambda i, o=row0: f"row index {o + i}")
            yield X, arrow_to_numpy(lab), (lambda i, o=row0: f"row index {o + i}")
            row0 += batch.num_rows


def _no_nulls(col, src, name, what, row0):
    if col.null_count:
        first = row0 + col.to_pylist().index(None)
        raise DataError(f"{src}, row index {first}, column {name!r}: null {what} value; remove "
                        "or fill in missing values")


def open_parquet(path, label_column=None) -> ParquetSource:
    """A Parquet file (options as :func:`load_parquet`) for ``convert``."""
    return ParquetSource(existing_file(path), label_column)
