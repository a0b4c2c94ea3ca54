"""``sgdlab data convert``: CSV, LibSVM/svmlight and Parquet into a shard set, streaming.

Two passes over the input, each holding one input chunk and one output block in memory:

1. **scan**: count rows, find the width (LibSVM), check every feature cell, and collect the
   distinct labels, so the class set (and so each label's index) is known before any shard is
   written. ``classes=`` declares it instead; a label outside it is then an error.
2. **write**: parse again, encode labels with the class set, and append to the shard files,
   whose shapes are known from pass 1. Per-block feature means and M2 go to ``stats.npy``.

Errors name the file, the 1-based line (text) or 0-based row index (Parquet), and the column,
as the in-memory loaders do; the first bad row stops the conversion before anything is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import DataError
from .checks import _existing_file, _is_missing, check_task, encode_labels
from .readers import csv_reader, libsvm_chunks, parquet_reader
from .shards import FORMAT, MANIFEST, VERSION

FORMATS = ("csv", "tsv", "libsvm", "parquet")
#: distinct labels kept while scanning; more can only be a regression target
MAX_SCANNED_LABELS = 10_000
BLOCK_BYTES = 4 << 20     # default block: ~4 MiB of features, the unit of reading and shuffling
SHARD_BLOCKS = 64         # blocks per shard file (~256 MiB)

Progress = Callable[[str, int, int], None]


def detect_format(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    table = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
             ".svm": "libsvm", ".libsvm": "libsvm", ".svmlight": "libsvm", ".txt": "libsvm"}
    if ext not in table:
        raise DataError(f"{path}: cannot tell the format from the extension {ext or '(none)'!r}; "
                        f"pass --format one of {', '.join(FORMATS)}")
    return table[ext]


# -- labels ----------------------------------------------------------------------------------

class LabelCoder:
    """Maps raw labels to what a shard stores, with the class set fixed in advance."""

    def __init__(self, task: str, classes: tuple, source: str, column: str):
        self.task, self.classes, self.source, self.column = task, tuple(classes), source, column
        self.index = {c: i for i, c in enumerate(self.classes)}
        self.text = any(isinstance(c, str) for c in self.classes)
        self.dtype = np.int32 if task == "classification" else np.float32

    @classmethod
    def discover(cls, distinct: list, overflow: bool, task, declared, source, column):
        if declared is not None:
            return cls("classification", tuple(declared), source, column)
        if task == "regression" or (overflow and task is None):
            return cls("regression", (), source, column)
        if overflow:
            raise DataError(f"{source}, column {column!r}: more than {MAX_SCANNED_LABELS} "
                            "distinct labels for classification; is this a regression target?")
        _, task, classes = encode_labels(np.array(distinct), task, source=source, column=column)
        return cls(task, classes, source, column)

    def encode(self, raw, where) -> np.ndarray:
        if self.task == "regression":
            return encode_labels(np.asarray(raw), "regression", source=self.source,
                                 column=self.column, where=where)[0]
        if self.text:
            keys = [str(v) for v in raw]
            for i, v in enumerate(raw):
                if _is_missing(v):
                    raise DataError(f"{self.source}, {where(i)}, column {self.column!r}: "
                                    "label is missing")
        else:
            local_y, _, local = encode_labels(np.asarray(raw), "classification",
                                              source=self.source, column=self.column, where=where)
            keys = [local[j] for j in local_y]
        out = np.empty(len(keys), np.int32)
        for i, k in enumerate(keys):
            j = self.index.get(k)
            if j is None:
                raise DataError(f"{self.source}, {where(i)}, column {self.column!r}: label {k!r} "
                                f"is not one of the classes {list(self.classes)[:10]}")
            out[i] = j
        return out


# -- the converter ---------------------------------------------------------------------------

def convert(src, out, *, fmt: str | None = None, label_column=None, task: str | None = None,
            classes=None, block_rows: int | None = None, shard_blocks: int = SHARD_BLOCKS,
            n_features: int | None = None, zero_based: bool = False, overwrite: bool = False,
            progress: Progress | None = None) -> Path:
    """Convert ``src`` to a shard set in directory ``out``; returns ``out`` (see module doc)."""
    check_task(task)
    src = _existing_file(src)
    fmt = fmt or detect_format(src)
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    out = Path(out)
    occupied = (out.is_dir() and any(out.iterdir())) or (out.exists() and not out.is_dir())
    if occupied:
        if not overwrite:
            raise DataError(f"{out} exists and is not empty; choose a new directory or pass "
                            "--overwrite")
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    tick = progress or (lambda *a: None)

    if fmt in ("csv", "tsv"):
        names, label_name, make = csv_reader(src, "\t" if fmt == "tsv" else ",", label_column)
        scan_chunks, write_chunks, total = make(), make, None
    elif fmt == "libsvm":
        if label_column is not None:
            raise DataError("LibSVM files have the label first on each line; drop label_column")
        label_name = "label"
        scan_chunks = libsvm_chunks(src, None, zero_based)
        write_chunks, total, names = None, None, None
    else:
        names, label_name, total, make = parquet_reader(src, label_column)
        scan_chunks, write_chunks = make(features=False), lambda: make(features=True)

    # pass 1: rows, width, labels
    n, width, distinct, overflow = 0, 0, {}, False
    for X, labels, where in scan_chunks:
        if fmt != "parquet":  # (Parquet nulls are checked by the reader)
            for i, v in enumerate(labels):
                if _is_missing(v):
                    raise DataError(f"{src}, {where(i)}, column {label_name!r}: label is missing")
        n += len(labels)
        if fmt == "libsvm":
            width = max(width, X)
        if not overflow:
            for v in (np.unique(labels) if fmt == "parquet" else set(labels)):
                distinct.setdefault(v.item() if hasattr(v, "item") else v, None)
            overflow = len(distinct) > MAX_SCANNED_LABELS
        tick("scan", n, total or 0)
    if n == 0:
        raise DataError(f"{src}: has no data rows")
    if fmt == "libsvm":
        d = n_features or width
        if d < width:
            raise DataError(f"{src}: feature index up to {width} but --features is {d}")
        names = [f"x{j}" for j in range(d)]
        write_chunks = lambda: libsvm_chunks(src, d, zero_based)  # noqa: E731
    coder = LabelCoder.discover(list(distinct), overflow, task, classes, src, label_name)

    # pass 2: write
    def encoded():
        done = 0
        for X, labels, where in write_chunks():
            yield X, coder.encode(labels, where)
            done += len(labels)
            tick("write", done, n)

    return write_shards(out, encoded(), n, len(names), task=coder.task, classes=coder.classes,
                        feature_names=names, block_rows=block_rows, shard_blocks=shard_blocks,
                        source=os.path.basename(src), label_column=label_name)


def write_shards(out, chunks, n: int, d: int, *, task: str = "classification",
                 classes=(0, 1), feature_names=None, block_rows: int | None = None,
                 shard_blocks: int = SHARD_BLOCKS, source: str = "arrays",
                 label_column: str = "label") -> Path:
    """Write ``chunks`` of ``(X (r, d) float32, y (r,))``, ``n`` rows in all, as a shard set.

    ``y`` is already encoded: int32 class indices into ``classes``, or float32 regression
    targets (``task="regression"``, ``classes=()``). Used by :func:`convert` and by benchmarks
    that generate data larger than memory chunk by chunk.
    """
    out = Path(out)
    y_dtype = np.int32 if task == "classification" else np.float32
    names = list(feature_names or [f"x{j}" for j in range(d)])
    block_rows = block_rows or max(1, BLOCK_BYTES // (4 * d))
    writer = _ShardWriter(out, n, d, block_rows, shard_blocks, y_dtype)
    written = 0
    try:
        for X, y in chunks:
            writer.append(X, y)
            written += len(y)
        if written != n:
            raise DataError(f"{out}: {written} rows were written but {n} were announced")
        manifest = {"format": FORMAT, "version": VERSION, "rows": n, "features": d,
                    "task": task, "classes": list(classes), "feature_names": names,
                    "x_dtype": "float32", "y_dtype": np.dtype(y_dtype).name,
                    "block_rows": block_rows, "shard_blocks": shard_blocks, "source": source,
                    "label_column": label_column, "shards": writer.close()}
    except BaseException:
        writer.abort()
        raise
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, out / MANIFEST)  # the manifest appears last: its presence means complete
    return out


class _ShardWriter:
    """Appends rows to shard files whose shapes are known; one block is buffered."""

    def __init__(self, out: Path, n, d, block_rows, shard_blocks, y_dtype):
        out.mkdir(parents=True, exist_ok=True)
        self.out, self.n, self.d = out, n, d
        self.block_rows, self.shard_rows = block_rows, block_rows * shard_blocks
        self.y_dtype = np.dtype(y_dtype)
        self.xbuf = np.empty((block_rows, d), np.float32)
        self.ybuf = np.empty(block_rows, self.y_dtype)
        self.fill, self.written, self.shards, self.stats, self.files = 0, 0, [], [], None

    def _start_shard(self):
        s = len(self.shards)
        rows = min(self.shard_rows, self.n - self.written)
        entry = {"x": f"X-{s:05d}.npy", "y": f"y-{s:05d}.npy", "rows": rows}
        self.files = {}
        for key, dtype, shape in (("x", np.float32, (rows, self.d)), ("y", self.y_dtype, (rows,))):
            fh = open(self.out / entry[key], "wb")
            h = _HashingFile(fh)
            np.lib.format.write_array_header_1_0(
                h, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                    "fortran_order": False, "shape": shape})
            self.files[key] = h
        self.shards.append(entry)
        self.shard_left = rows

    def _flush_block(self):
        r = self.fill
        if self.files is None or self.shard_left == 0:
            self._finish_shard()
            self._start_shard()
        x, y = self.xbuf[:r], self.ybuf[:r]
        self.files["x"].write(x.tobytes())
        self.files["y"].write(y.tobytes())
        x64 = x.astype(np.float64)
        mean = x64.mean(axis=0)
        self.stats.append(np.stack([mean, ((x64 - mean) ** 2).sum(axis=0)]))
        self.shard_left -= r
        self.written += r
        self.fill = 0

    def _finish_shard(self):
        if self.files is None:
            return
        for key, h in self.files.items():
            h.fh.close()
            self.shards[-1][f"sha256_{key}"] = h.sha.hexdigest()
        self.files = None

    def append(self, X, y):
        i = 0
        while i < len(y):
            take = min(len(y) - i, self.block_rows - self.fill)
            self.xbuf[self.fill:self.fill + take] = X[i:i + take]
            self.ybuf[self.fill:self.fill + take] = y[i:i + take]
            self.fill += take
            i += take
            if self.fill == self.block_rows:
                self._flush_block()

    def close(self) -> list:
        if self.fill:
            self._flush_block()
        self._finish_shard()
        np.save(self.out / "stats.npy", np.stack(self.stats))
        return self.shards

    def abort(self):
        if self.files:
            for h in self.files.values():
                h.fh.close()


class _HashingFile:
    """A write-only file that hashes what passes through (the checksum costs no second read)."""

    def __init__(self, fh):
        self.fh, self.sha = fh, hashlib.sha256()

    def write(self, data):
        self.sha.update(data)
        return self.fh.write(data)
