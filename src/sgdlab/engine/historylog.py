"""``history.csv`` written as rows are produced: append-only, one flushed line per row.

A reader (a person with ``tail -f``, pandas) sees the history of a running job. A kill can
only tear the last line, never an earlier one, because lines are only ever appended.
On resume the file is cut back to the rows of the checkpoint being resumed from (rewritten
atomically): that drops a torn last line, and rows produced after the checkpoint, which the
resumed run will produce again. The header is fixed by the first row; every later row has
the same columns (the fit loop writes the same keys each time).
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from .history import History, _fmt
from .rundir import write_text_atomic


def _line(row: dict, header: list[str]) -> str:
    """One CSV line, formatted as :meth:`History.to_csv_text` formats it (floats by repr)."""
    buf = io.StringIO()
    csv.DictWriter(buf, fieldnames=header, lineterminator="\n", extrasaction="ignore") \
        .writerow({k: _fmt(v) for k, v in row.items()})
    return buf.getvalue()


class HistoryLog:
    """Append history rows to ``path`` as they come; see the module docstring."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.header: list[str] | None = None
        self._fh = None

    def reset(self, rows: list[dict]) -> None:
        """Replace the file by exactly ``rows`` (atomically), then keep appending."""
        self.close()
        history = History(rows)
        write_text_atomic(self.path, history.to_csv_text() if rows else "")
        self.header = history.columns if rows else None

    def append(self, row: dict) -> None:
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8", newline="")
        if self.header is None:
            self.header = list(row)
            self._fh.write(_line(dict(zip(self.header, self.header)), self.header))
        self._fh.write(_line(row, self.header))
        # flush, not fsync: a kill -9 loses nothing once write() returned; only a power cut
        # could, and resuming rewrites the file from the checkpoint anyway.
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def trim_torn_line(path: str | os.PathLike) -> bool:
    """Cut a last line without its newline (a write torn by a kill); True if one was cut."""
    p = Path(path)
    data = p.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    keep = data[:data.rfind(b"\n") + 1]
    write_text_atomic(p, keep.decode("utf-8", "replace"))
    return True


def read_history(path: str | os.PathLike) -> History:
    """The rows of a (possibly still growing, possibly killed) ``history.csv``.

    A torn last line is ignored (the file itself is left as it is).
    """
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    if text and not text.endswith("\n"):
        text = text[:text.rfind("\n") + 1]
    return History.from_csv_text(text)
