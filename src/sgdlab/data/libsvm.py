"""LibSVM / svmlight text: ``label index:value ...`` per line, parsed vectorised.

Lines are ``label idx:value idx:value ...``; ``# comments`` and ``qid:`` tokens are ignored,
blank lines skipped; indices are 1-based unless ``zero_based``. Rows are stored dense, so the
width is ``n_features`` when given, otherwise the largest index (at most
:data:`~sgdlab.data.readers.MAX_FEATURES`: one stray huge index would otherwise make every row
gigabytes).

The file is read in blocks of whole lines (:data:`BLOCK_BYTES`). A block made only of digits,
signs, dots, ``e``/``E``, colons, spaces, tabs and newlines is tokenised with NumPy on its
bytes and its numbers parsed by pyarrow's casts (which accept a subset of what Python's
``int``/``float`` accept, with the same values). Any other block (comments, ``qid:``, text
labels, non-ASCII bytes, lone carriage returns), and any block in which that parser finds
something wrong (a malformed token, an index out of range, a repeated index), is parsed again
line by line in Python, which gives the same rows or the located message
(``file, line N, token 'i:v': ...``). :data:`~sgdlab.data.readers.SLOW_PATH_RUNS` counts those
blocks under ``"libsvm"``.
"""

from __future__ import annotations

import os
from typing import Iterator, NamedTuple

import numpy as np

from ..errors import ConfigError, DataError
from . import readers
from .checks import as_finite_float32, check_task, encode_labels, existing_file
from .dataset import Dataset
from .readers import (
    TEXT_CHUNK_ROWS,
    ChunkSource,
    FeatureNames,
    arrow_to_numpy,
    chunk_rows,
    lines_where,
    not_utf8,
)

#: bytes of the file tokenised at a time (whole lines; a longer line is one block)
BLOCK_BYTES = 1 << 20

#: the bytes a block parsed vectorised may hold; of them, those inside tokens (1) or not (0)
_FAST_BYTES = b"0123456789+-.eE: \t\n"
_IN_WORD = bytes(int(c in b"0123456789+-.eE:") for c in range(256))


class Rows(NamedTuple):
    """Parsed lines, in file order: one label and line number per row, and the row's
    nonzero entries as ``(row, col, val)`` (rows ascending; no ``(row, col)`` twice)."""

    labels: list
    lines: np.ndarray
    row: np.ndarray
    col: np.ndarray
    val: np.ndarray


def load_libsvm(path, n_features: int | None = None, zero_based: bool = False,
                task: str | None = None) -> Dataset:
    """Load a LibSVM / svmlight file into memory (see the module doc for the format).

    Args:
      path: the file (UTF-8).
      n_features: the width ``d``; default the largest index seen (at most 1,000,000).
      zero_based: indices start at 0 (default: at 1, as LibSVM writes them).
      task: ``"classification"``, ``"regression"`` or ``None`` to infer from the labels.

    Returns a :class:`Dataset` with ``X: (N, d)`` float32 (absent entries 0), feature names
    ``x0 .. x{d-1}``, the labels encoded as for every loader, and the same rows
    ``sgdlab data convert`` writes. Errors name the file, the line and the token or column.
    """
    check_task(task)
    src = existing_file(path)
    if n_features is not None and (isinstance(n_features, bool) or not isinstance(
            n_features, (int, np.integer)) or n_features < 1):
        raise ConfigError(f"n_features must be a whole number >= 1, got {n_features!r}")
    limit = int(n_features) if n_features is not None else readers.MAX_FEATURES
    labels, lines, rows, cols, vals, n = [], [], [], [], [], 0
    for part in parse_rows(src, zero_based, limit, n_features, flag="n_features="):
        labels += part.labels
        lines.append(part.lines)
        rows.append(part.row + n)
        cols.append(part.col)
        vals.append(part.val)
        n += len(part.labels)
    if n == 0:
        raise DataError(f"{src}: has no data rows")
    lines, rows = np.concatenate(lines), np.concatenate(rows)
    cols, vals = np.concatenate(cols), np.concatenate(vals)
    width = int(cols.max()) + 1 if len(cols) else 0
    if n_features is None and width == 0:
        raise DataError(no_features_message(src, n, "n_features="))
    d = int(n_features) if n_features is not None else width
    X = np.zeros((n, d), np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        v32 = vals.astype(np.float32)
    bad = ~np.isfinite(v32)
    if bad.any():  # the first bad cell in row-major order, named as every loader names it
        first = np.flatnonzero(bad)[np.lexsort((cols[bad], rows[bad]))[0]]
        r = rows[first]
        dense = np.zeros(d)
        dense[cols[rows == r]] = vals[rows == r]
        as_finite_float32(dense[None, :], source=src, columns=FeatureNames(d),
                          where=lambda i: f"line {lines[r]}")
    X[rows, cols] = v32
    y, task, classes = encode_labels(np.array(labels), task, source=src, column="label",
                                     where=lines_where(lines))
    return Dataset(X, y, task, classes, tuple(f"x{j}" for j in range(d)),
                   os.path.basename(src))


def no_features_message(src, n, flag="--features ") -> str:
    return (f"{src}: no line has a feature: {n} line(s) hold a label only; a LibSVM line is "
            f"'label index:value ...' (pass {flag}N if the rows really are all zeros)")


def _beyond(src, lineno, tok, idx, col, declared, flag) -> str:
    where = f"{src}, line {lineno}, token {tok!r}"
    given = flag.rstrip("= ")
    if declared is not None:
        return (f"{where}: index {idx} is beyond the {declared:,} features given with "
                f"{given}; pass a larger {given} or fix the index")
    return (f"{where}: index {idx} means at least {col + 1:,} features, more than the "
            f"{readers.MAX_FEATURES:,} convert takes from the indices alone (rows are stored "
            f"dense: {4 * (col + 1) / 2 ** 20:,.0f} MiB each); if the file really has that "
            f"many, pass {flag}N, otherwise fix the index")


# -- the row parser: vectorised blocks, per-line fallback ------------------------------------

def parse_rows(src, zero_based: bool, limit: int, declared: int | None,
               flag: str = "--features ") -> Iterator[Rows]:
    """The file's rows, a block at a time (one line at a time where a block is parsed in
    Python, so that an error is raised only once the rows before it have been used).
    ``limit``: columns allowed (``declared``, the given width, or the cap)."""
    try:
        for block, first_line in _blocks(src):
            rows = (_parse_fast(block, first_line, zero_based, limit)
                    if readers.USE_FAST_READERS else None)
            if rows is not None:
                yield rows
            else:
                readers.SLOW_PATH_RUNS["libsvm"] += 1
                yield from _parse_slow(block, first_line, zero_based, limit, declared, src,
                                       flag)
    except UnicodeDecodeError as e:
        raise not_utf8(src, e) from None


def _blocks(src) -> Iterator[tuple[bytes, int]]:
    """Whole lines, about :data:`BLOCK_BYTES` at a time, each with the 1-based number of its
    first line (lines end at ``\\n``, ``\\r\\n`` or ``\\r``, as Python's text files read)."""
    with open(src, "rb") as fh:
        line, rest = 1, b""
        while True:
            data = fh.read(BLOCK_BYTES)
            if not data:
                if rest:
                    yield rest, line
                return
            data = rest + data if rest else data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                rest = data
                continue
            block, rest = data[:cut], data[cut:]
            yield block, line
            line += block.count(b"\n")
            if b"\r" in block:
                line += block.count(b"\r") - block.count(b"\r\n")


def _strings(b: np.ndarray, start: np.ndarray, end: np.ndarray):
    """The byte ranges ``[start, end)`` of ``b`` as a pyarrow string array (one copy)."""
    import pyarrow as pa

    lens = end - start
    offsets = np.zeros(len(start) + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    gather = np.repeat(start - offsets[:-1], lens) + np.arange(offsets[-1])
    return pa.LargeStringArray.from_buffers(len(start), pa.py_buffer(offsets),
                                            pa.py_buffer(b[gather]))


def _parse_fast(block: bytes, first_line: int, zero_based: bool, limit: int) -> Rows | None:
    """``block``'s rows, or ``None`` when it needs the per-line parser."""
    if b"\r" in block:
        block = block.replace(b"\r\n", b"\n")
        if b"\r" in block:
            return None
    if not block.endswith(b"\n"):
        block += b"\n"
    if block.translate(None, _FAST_BYTES):
        return None  # some other byte
    b = np.frombuffer(block, np.uint8)
    edge = np.diff(np.frombuffer(block.translate(_IN_WORD), np.int8), prepend=np.int8(0),
                   append=np.int8(0))
    bounds = np.flatnonzero(edge)  # token starts and ends, alternating
    start, end = bounds[0::2], bounds[1::2]
    if len(start) == 0:
        e = np.zeros(0, np.int64)
        return Rows([], e, e, e, np.zeros(0))
    newlines = np.flatnonzero(b == 10)
    first = np.zeros(len(start), bool)  # the first token of a line: its label
    first[0] = True
    after = np.searchsorted(start, newlines)
    first[after[after < len(start)]] = True
    pair = ~first
    ps, pe = start[pair], end[pair]
    colons = np.flatnonzero(b == 58)
    # colon k strictly inside pair token k, for every k: one colon each, none in a label
    if len(colons) != len(ps) or not ((colons > ps) & (colons < pe - 1)).all():
        return None
    import pyarrow as pa
    import pyarrow.compute as pc
    try:
        idx = arrow_to_numpy(pc.cast(_strings(b, ps, colons), pa.int64()))
        val = arrow_to_numpy(pc.cast(_strings(b, colons + 1, pe), pa.float64()))
    except pa.ArrowException:
        return None
    col = idx if zero_based else idx - 1
    if len(col) and (col.min() < 0 or col.max() >= limit):
        return None
    row = (np.cumsum(first) - 1)[pair]
    same = row[1:] == row[:-1]
    if (same & (col[1:] <= col[:-1])).any():  # not ascending within a row: any repeats?
        order = np.lexsort((col, row))
        r, c = row[order], col[order]
        if ((r[1:] == r[:-1]) & (c[1:] == c[:-1])).any():
            return None
    labels = _strings(b, start[first], end[first]).to_pylist()
    lines = first_line + np.searchsorted(newlines, start[first])
    return Rows(labels, lines, row, col, val)


def _parse_slow(block: bytes, first_line: int, zero_based: bool, limit: int,
                declared: int | None, src, flag: str) -> Iterator[Rows]:
    """``block`` line by line in Python: one :class:`Rows` per data line, or the error."""
    try:
        text = block.decode("utf-8")
    except UnicodeDecodeError as e:
        raise not_utf8(src, e) from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for lineno, line in enumerate(lines, first_line):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        entries = {}
        for tok in parts[1:]:
            i, _, v = tok.partition(":")
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
                raise DataError(_beyond(src, lineno, tok, idx, col, declared, flag))
            entries[col] = val
        cols = np.fromiter(entries.keys(), np.int64, len(entries))
        yield Rows([parts[0]], np.array([lineno]), np.zeros(len(cols), np.int64), cols,
                   np.fromiter(entries.values(), np.float64, len(entries)))


# -- chunks for convert ----------------------------------------------------------------------

def libsvm_chunks(src, d: int | None, zero_based: bool, *, declared: int | None = None,
                  flag: str = "--features ") -> Iterator[readers.Chunk]:
    """Chunks of the file's rows.

    With ``d=None`` (the scan) the X slot of each chunk is its width (largest column + 1, 0
    for none), and an index beyond ``declared`` features (or beyond
    :data:`~sgdlab.data.readers.MAX_FEATURES` when none are declared) stops the scan at its
    line. With ``d`` the chunks are dense ``(r, d)`` float32, ``r`` from :func:`chunk_rows`.
    """
    scan = d is None
    if not scan:
        declared = d
    limit = declared if declared is not None else readers.MAX_FEATURES
    per_chunk = TEXT_CHUNK_ROWS if scan else chunk_rows(d)
    X = None if scan else np.zeros((per_chunk, d), np.float64)
    width, labels, lines = 0, [], []
    for part in parse_rows(src, zero_based, limit, declared, flag=flag):
        r, start = len(part.labels), 0
        while start < r:
            take = min(per_chunk - len(labels), r - start)
            lo, hi = np.searchsorted(part.row, [start, start + take])
            if hi > lo:
                if scan:
                    width = max(width, int(part.col[lo:hi].max()) + 1)
                else:
                    X[part.row[lo:hi] - start + len(labels), part.col[lo:hi]] = part.val[lo:hi]
            labels += part.labels[start:start + take]
            lines += part.lines[start:start + take].tolist()
            start += take
            if len(labels) == per_chunk:
                yield _block(X, width, labels, lines, src), labels, lines_where(lines)
                width, labels, lines = 0, [], []
                if X is not None:
                    X[:] = 0
    if labels:
        yield _block(X, width, labels, lines, src), labels, lines_where(lines)


def _block(X, width, labels, lines, src):
    if X is None:  # scan: report the width only
        return width
    return as_finite_float32(X[:len(labels)], source=src, columns=FeatureNames(X.shape[1]),
                             where=lines_where(lines))


class LibsvmSource(ChunkSource):
    """A LibSVM file for ``convert``: the scan finds the width (unless ``n_features``)."""

    def __init__(self, src, n_features: int | None = None, zero_based: bool = False):
        self.src, self.n_features, self.zero_based = src, n_features, zero_based
        self.width = 0

    def scan(self):
        self.width = 0
        for width, labels, where in libsvm_chunks(self.src, None, self.zero_based,
                                                  declared=self.n_features):
            self.width = max(self.width, width)
            yield labels, where

    def finish_scan(self, n: int) -> None:
        if self.n_features is None and self.width == 0:
            raise DataError(no_features_message(self.src, n))
        d = int(self.n_features) if self.n_features is not None else self.width
        self.names = [f"x{j}" for j in range(d)]

    def chunks(self):
        return libsvm_chunks(self.src, len(self.names), self.zero_based)


def open_libsvm(path, n_features: int | None = None, zero_based: bool = False) -> LibsvmSource:
    """A LibSVM file (options as :func:`load_libsvm`) for ``convert``."""
    return LibsvmSource(existing_file(path), n_features, zero_based)
