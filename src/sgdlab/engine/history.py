"""The training history: one row per evaluation, a list of dicts pandas reads directly.

Columns (time is split so that curves against training time compare the updates alone:
evaluation and compilation are counted apart):

=================  ==============================================================
step               optimisation steps applied so far
epoch              fractional epochs: step / steps_per_epoch
examples           training examples seen (real ones; masked padding not counted)
train_seconds      pure update time: excludes evaluation and compilation
wall_seconds       since the run started, everything included
eval_seconds       total time spent evaluating so far
train_loss         mean mini-batch objective over the steps since the previous row
val_loss           objective on the whole validation set (L2 term included)
val_accuracy       classification; ``val_mse`` and ``val_r2`` for regression
=================  ==============================================================

``pandas.DataFrame(result.history)`` gives a frame; ``history.column("val_accuracy")`` an array.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

TIME_COLUMNS = ("train_seconds", "wall_seconds", "eval_seconds")


class History(list):
    """A list of row dicts with a few conveniences."""

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for row in self:
            cols.extend(k for k in row if k not in cols)
        return cols

    def column(self, name: str) -> np.ndarray:
        return np.array([row.get(name, math.nan) for row in self], dtype=float)

    def last(self, name: str, default=math.nan):
        return self[-1].get(name, default) if self else default

    def without_time(self) -> list[dict]:
        """Rows with the time columns removed: what must be identical across equal runs."""
        return [{k: v for k, v in row.items() if k not in TIME_COLUMNS} for row in self]

    def to_csv_text(self) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        for row in self:
            writer.writerow({k: csv_cell(v) for k, v in row.items()})
        return buf.getvalue()

    @classmethod
    def from_csv_text(cls, text: str) -> "History":
        rows = []
        for row in csv.DictReader(io.StringIO(text)):
            rows.append({k: _parse(v) for k, v in row.items()})
        return cls(rows)


def csv_cell(v):
    """A history value as written to history.csv: floats by repr, which round-trips exactly."""
    if isinstance(v, float):
        return repr(v)  # round-trips exactly
    return v


def _parse(v: str):
    if v == "":
        return math.nan
    try:
        f = float(v)
    except ValueError:
        return v
    return int(f) if f.is_integer() and "." not in v and "e" not in v.lower() else f
