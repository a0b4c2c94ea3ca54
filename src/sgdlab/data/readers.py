"""What every format's chunked reader shares: the chunk, its size budget, and the source protocol.

``sgdlab data convert`` reads a file through a :class:`ChunkSource` (one per format, made by
:attr:`sgdlab.data.formats.Format.open`). Its chunks are
``(X (r, d) float32 | None, raw labels (r,), where)``, where ``where(i)`` names row ``i`` of the
chunk for messages (``"line 17"`` for text files, ``"row index 70000"`` for binary files).
Feature cells are parsed and checked (finite, numeric) with the in-memory loaders' helpers, so
a file gives the same rows and the same error messages whether it is loaded or converted.

Memory: one chunk, sized by :data:`CHUNK_BYTES` of parsed features whatever the file:
``CHUNK_BYTES / (8 d)`` rows of a dense float64 chunk (at most 4,096 text rows or 65,536
Parquet rows), plus what the format's parser holds (see each reader). LibSVM feature counts
are capped at :data:`MAX_FEATURES` unless given (``--features``), because every row is stored
dense: one stray index of 10^9 would otherwise make each row 4 GB.

Text formats are parsed by a fast reader (``pyarrow.csv``; a vectorised LibSVM tokenizer) and
fall back to a per-cell Python parser wherever the fast one refuses the input or finds a bad
value: that parser names the first bad cell by file, line and column.
:data:`SLOW_PATH_RUNS` counts the fallbacks.
"""

from __future__ import annotations

import collections
from typing import Callable, Iterator

import numpy as np

from ..errors import DataError

#: ``(X (r, d) or (r, *example_shape) float32 | None, raw labels (r,), where(i) -> "line 17")``
#: per input chunk
Chunk = tuple
#: ``(raw labels (r,), where)`` per chunk of the first pass of ``convert``
LabelChunk = tuple

#: bytes of parsed float64 features one input chunk holds at most (one row when wider)
CHUNK_BYTES = 8 << 20
#: Python objects per text cell while a CSV chunk is parsed cell by cell (a float and its list
#: slot, and the float64 copy): CSV chunks hold ``CHUNK_BYTES / (CSV_CELL_BYTES d)`` rows
CSV_CELL_BYTES = 40
#: rows of a text chunk at most
TEXT_CHUNK_ROWS = 4096
#: LibSVM feature count taken from the indices alone; more must be given with ``--features``
MAX_FEATURES = 1_000_000
#: Parquet read buffer per column: ``CHUNK_BYTES / columns`` within these bounds
PARQUET_BUFFER = (64 << 10, 1 << 20)
PARQUET_BATCH_ROWS = 65536

#: ``False`` parses every text file cell by cell (what the fast readers fall back to), for
#: comparing the two
USE_FAST_READERS = True
#: times a per-cell (slow) text parser ran, by format (``"csv"``: a whole load, or a convert
#: pass from the chunk where the fast reader stopped; ``"libsvm"``: one block of lines). A
#: clean file never adds to it; tests read it to see the fast path taken.
SLOW_PATH_RUNS: collections.Counter = collections.Counter()


def chunk_rows(d: int, cell_bytes: int = 8, most: int = TEXT_CHUNK_ROWS) -> int:
    """Rows per chunk so that ``rows * d * cell_bytes <= CHUNK_BYTES`` (at least 1)."""
    return max(1, min(most, CHUNK_BYTES // (cell_bytes * max(1, d))))


def not_utf8(src, e) -> DataError:
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


def lines_where(lines) -> Callable[[int], str]:
    """``where`` for rows whose 1-based line numbers are ``lines``."""
    return lambda i: f"line {lines[i]}"


class FeatureNames:
    """``x0, x1, ...`` for messages, without building ``d`` strings per chunk."""

    def __init__(self, d):
        self.d = d

    def __len__(self):
        return self.d

    def __getitem__(self, j):
        return f"x{j}"


#: NumPy dtypes of the Arrow number types, by their Arrow names
_NUMPY_OF = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
             "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64,
             "halffloat": np.float16, "float": np.float32, "double": np.float64}


def arrow_to_numpy(col) -> np.ndarray:
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


class ChunkSource:
    """One input file as ``convert`` reads it: once for the labels (and checks), once to write.

    Attributes, set by each format's reader:

    * ``label_name``: the label column's name (``"label"`` where the file has none);
    * ``names``: the feature names, or ``None`` until :meth:`finish_scan` (LibSVM: the width
      is known only once every line has been read);
    * ``total``: the number of rows when known before reading (for progress), else ``None``;
    * ``labels_checked``: the reader refuses missing labels itself (Parquet nulls);
    * ``example_shape``: the shape of one example when it has more than one axis (``.npz``
      images, IDX), else ``None`` (a row of ``len(names)`` features).
    """

    label_name: str = "label"
    names: list | None = None
    example_shape: tuple | None = None
    total: int | None = None
    labels_checked: bool = False

    def scan(self) -> Iterator[LabelChunk]:
        """Pass 1: ``(raw labels, where)`` per chunk, every cell the reader checks checked."""
        for _, labels, where in self.chunks():
            yield labels, where

    def finish_scan(self, n: int) -> None:
        """Called after :meth:`scan` read ``n > 0`` rows: settle ``names``."""

    def chunks(self) -> Iterator[Chunk]:
        """Pass 2: the file's :data:`Chunk` s in order."""
        raise NotImplementedError
