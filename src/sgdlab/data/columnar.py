"""Apache Parquet files read with pyarrow: numeric feature columns, any label column."""

from __future__ import annotations

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


