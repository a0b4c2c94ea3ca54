"""The data-format registry: every file format sgdlab reads, in one table.

Each :class:`Format` names its extensions and gives an in-memory loader (``load``, used by
:func:`~sgdlab.data.loaders.load_data`, prediction and every ``--data``) and a chunked reader
(``open``, used by :func:`~sgdlab.data.convert.convert`, whose shard sets are what streamed
training reads). Both take the same options, so every format can be loaded and converted, and
a file gives the same rows and the same located messages either way.

To add a format: a module with ``load_x(path, task=None, **options) -> Dataset`` and
``open_x(path, **options) -> ChunkSource`` (:class:`~sgdlab.data.readers.ChunkSource`), and
one :class:`Format` entry in :data:`FORMATS`.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from typing import Callable, Mapping

from ..errors import DataError
from .arrays import load_npy, load_npz, open_npy, open_npz
from .columnar import load_parquet, open_parquet, parquet_columns
from .idx import load_idx, open_idx
from .libsvm import load_libsvm, open_libsvm
from .readers import ChunkSource
from .text import csv_columns, load_csv, open_csv


@dataclasses.dataclass(frozen=True)
class Format:
    """One file format.

    Attributes:
      name: what ``--format`` takes (``"csv"``).
      extensions: file name endings that mean this format, lower case (``(".csv",)``; IDX
        files, which have none, by the end of their names: ``("idx3-ubyte", ...)``).
      description: a few words for help texts.
      load: ``load(path, task=None, **options) -> Dataset``, the whole file in memory.
      open: ``open(path, **options) -> ChunkSource``, the file a chunk at a time.
      defaults: options this format passes unless given (TSV: ``delimiter="\\t"``).
      layout: ``"columns"`` (named columns; the label chosen by ``label_column``),
        ``"table"`` (one array; the label its last column) or ``"xy"`` (features and labels
        apart, in one file or two): how prediction matches a file's columns to a model's
        features.
      label: the label's name in prediction output, for formats without ``label_column``.
      label_hint: where the label is instead, for messages refusing ``label_column``.
      columns: ``columns(path) -> list[str]``, the header of a ``"columns"`` file.
      guessed_extensions: endings ``convert`` also takes as this format (too generic for
        :func:`~sgdlab.data.loaders.load_data` to assume).
    """

    name: str
    extensions: tuple[str, ...]
    description: str
    load: Callable
    open: Callable[..., ChunkSource]
    defaults: Mapping = dataclasses.field(default_factory=dict)
    layout: str = "columns"
    label: str | None = None
    label_hint: str = ""
    columns: Callable | None = None
    guessed_extensions: tuple[str, ...] = ()

    @property
    def options(self) -> tuple[str, ...]:
        """The options ``load`` and ``open`` take besides the path (and ``task``)."""
        return tuple(p for p in inspect.signature(self.load).parameters
                     if p not in ("path", "task"))

    def header(self, path) -> list[str] | None:
        """The column names of ``path`` (``"columns"`` formats), else ``None``."""
        if self.columns is None:
            return None
        return self.columns(path, **{k: v for k, v in self.defaults.items()
                                     if k in inspect.signature(self.columns).parameters})


#: Every format, by name; the order of help texts and of the extension lists in messages.
FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("csv", (".csv",), "comma-separated text with a header row", load_csv, open_csv,
           columns=csv_columns),
    Format("tsv", (".tsv",), "tab-separated text with a header row", load_csv, open_csv,
           defaults={"delimiter": "\t"}, columns=csv_columns),
    Format("parquet", (".parquet", ".pq"), "Apache Parquet", load_parquet, open_parquet,
           columns=parquet_columns),
    Format("npy", (".npy",), "NumPy array (N, d+1), label in the last column", load_npy,
           open_npy, layout="table", label="last column",
           label_hint="the label is the last column"),
    Format("npz", (".npz",), "NumPy archive with arrays X and y", load_npz, open_npz,
           layout="xy", label="y", label_hint="use y_key="),
    Format("libsvm", (".svm", ".libsvm", ".svmlight"),
           "LibSVM / svmlight text: 'label index:value ...' per line", load_libsvm,
           open_libsvm, layout="xy", label="label",
           label_hint="the label comes first on each line", guessed_extensions=(".txt",)),
    Format("idx", ("idx3-ubyte", "idx3-ubyte.gz"),
           "IDX images (MNIST), labels from the *-labels-idx1-ubyte file beside them",
           load_idx, open_idx, layout="xy", label="label",
           label_hint="the labels are the *-labels-idx1-ubyte file beside the images"),
)}


def extensions() -> list[str]:
    """Every extension :func:`~sgdlab.data.loaders.load_data` reads, in registry order."""
    return [ext for f in FORMATS.values() for ext in f.extensions]


def ending(path, *, guess: bool = False) -> str | None:
    """The registered ending ``path``'s file name ends with (``".csv"``, ``"idx3-ubyte.gz"``),
    or ``None``; ``guess`` also takes the generic endings (``.txt``)."""
    name = os.path.basename(os.fspath(path)).lower()
    ext = os.path.splitext(name)[1]
    for f in FORMATS.values():
        for end in f.extensions + (f.guessed_extensions if guess else ()):
            # a dotted extension is the part after the last dot; an IDX ending, the name's end
            if (ext == end) if end.startswith(".") else name.endswith(end):
                return end
    return None


def for_path(path, *, guess: bool = False) -> Format | None:
    """The format a file name means (``None`` if none); ``guess`` also takes the generic
    endings (``.txt`` as LibSVM), as ``convert`` does."""
    end = ending(path, guess=guess)
    if end is None:
        return None
    return next(f for f in FORMATS.values() if end in f.extensions + f.guessed_extensions)


def get(name: str) -> Format:
    """The format called ``name``; a DataError listing the names if there is none."""
    if name not in FORMATS:
        raise DataError(f"unknown format {name!r}; valid formats: {', '.join(FORMATS)}")
    return FORMATS[name]


def summary() -> str:
    """The extensions for help texts: ``.csv/.tsv/.parquet/.pq/.npy/.npz/.svm/...``, and the
    name endings of IDX files."""
    return "/".join(extensions())
