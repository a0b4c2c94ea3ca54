"""``history.csv`` written as rows are produced: append-only, one flushed line per row.

A reader (a person with ``tail -f``, pandas) sees the history of a running job. Each row is
appended with one ``os.write`` of whole lines to an ``O_APPEND`` descriptor, cut back off
the file if the write fails or is short (disk full), so the file holds whole lines only; a
kill can at most tear the last line, never an earlier one, because lines are only ever
appended. The file is opened without following a symbolic link (one planted there is refused).
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

from .history import History, csv_cell
from .rundir import append_whole, open_nofollow, write_error, write_text_atomic


def _line(row: dict, header: list[str]) -> str:
    """One CSV line, formatted as :meth:`History.to_csv_text` formats it (floats by repr)."""
    buf = io.StringIO()
    csv.DictWriter(buf, fieldnames=header, lineterminator="\n", extrasaction="ignore") \
        .writerow({k: csv_cell(v) for k, v in row.items()})
    return buf.getvalue()


class HistoryLog:
    """Append history rows to ``path`` as they come; see the module docstring."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.header: list[str] | None = None
        self._fd: int | None = None

    def reset(self, rows: list[dict]) -> None:
        """Replace the file by exactly ``rows`` (atomically), then keep appending."""
        self.close()
        history = History(rows)
        write_text_atomic(self.path, history.to_csv_text() if rows else "")
        self.header = history.columns if rows else None

    def append(self, row: dict) -> None:
        """Append ``row`` (after the header, for the first row) in one write of whole lines.

        ``O_APPEND | O_NOFOLLOW``: a link planted at the name is refused. A failed or short
        write is cut back off the file, so the file only ever holds whole lines; the failure
        is a :class:`RunDirError` (disk full: what, where, how to fix).
        """
        if self._fd is None:
            self._fd = open_nofollow(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                                     "append to")
        header = self.header if self.header is not None else list(row)
        text = _line(row, header)
        if self.header is None:
            text = _line(dict(zip(header, header)), header) + text
        # One os.write of whole lines, straight to the kernel (no buffer): a kill -9 loses
        # nothing once it returned; only a power cut could, and resuming rewrites the file from
        # the checkpoint anyway.
        append_whole(self._fd, text.encode("utf-8"), self.path)
        self.header = header

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


def trim_torn_line(path: str | os.PathLike) -> bool:
    """Cut a last line without its newline (a write torn by a kill); True if one was cut."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise write_error(e, p, "read") from None
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
