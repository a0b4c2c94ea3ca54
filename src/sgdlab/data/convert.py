"""``sgdlab data convert``: a file of any format in :data:`~sgdlab.data.formats.FORMATS` (CSV,
TSV, Parquet, NumPy .npy/.npz, LibSVM/svmlight) into a shard set, streaming.

Two passes over the input, each holding one input chunk and one output block in memory:

1. **scan**: count rows, find the width (LibSVM), check every feature cell (text formats;
   binary ones are checked in pass 2, still before anything is swapped in), and collect the
   distinct labels, so the class set (and so each label's index) is known before any shard is
   written. ``classes=`` declares it instead; a label outside it is then an error.
2. **write**: parse again, encode labels with the class set, and append to the shard files,
   whose shapes are known from pass 1. Per-block feature means and M2 go to ``stats.npy``.

Errors name the file, the 1-based line (text) or 0-based row index (binary), and the column,
as the in-memory loaders do; the first bad row stops the conversion before anything is written.

Nothing the user owns is touched before the new shard set is complete: it is written into a
temporary directory beside OUT (``.OUT.xxxx.tmp``, same parent, so a rename moves it), every
file fsynced, and only then swapped in: an empty or missing OUT is replaced by one rename; a
shard set being replaced (``overwrite=True``) is renamed aside, the new one renamed into place,
and the old one deleted last. On any failure the temporary directory is removed and OUT is as
it was. ``overwrite`` replaces only a shard set: a directory holding a manifest and nothing but
shard-set files, and never one that holds the input file.

Memory is bounded whatever the input: one input chunk (see :mod:`sgdlab.data.readers`), one
output block, and one block's statistics, which go to ``stats.npy`` as they are computed
(except for ``.npz`` archives, whose arrays are read whole; ``.npy`` files are memory-mapped).
"""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import shutil
import stat
import tempfile
import warnings
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from ..files import current_umask, write_text_atomic
from ..errors import ConfigError, DataError
from .checks import check_task, encode_labels, existing_file, first_missing, is_missing
from .formats import FORMATS, Format, for_path
from .formats import get as get_format
from .shards import FORMAT, MANIFEST, VERSION, is_shard_dir
#: distinct labels kept while scanning; more can only be a regression target
MAX_SCANNED_LABELS = 10_000
BLOCK_BYTES = 4 << 20     # default block: ~4 MiB of features, the unit of reading and shuffling
SHARD_BLOCKS = 64         # blocks per shard file (~256 MiB)

Progress = Callable[[str, int, int], None]


def detect_format(path: str) -> str:
    """The name of the format ``path``'s extension means (``.txt``: LibSVM)."""
    found = for_path(path, guess=True)
    if found is None:
        ext = os.path.splitext(path)[1].lower()
        raise DataError(f"{path}: cannot tell the format from the extension {ext or '(none)'!r}; "
                        f"pass --format one of {', '.join(FORMATS)}")
    return found.name


def _options(src, fmt: Format, **given) -> dict:
    """The options for ``fmt.open``: its defaults and those of ``given`` that were set;
    setting one the format does not take is an error."""
    options = dict(fmt.defaults)
    for key, value in given.items():
        if value is None or value is False:
            continue
        if key not in fmt.options:
            if key == "label_column":
                raise DataError(f"{src}: {fmt.name} files take no label column "
                                f"({fmt.label_hint}); drop label_column")
            takers = [f.name for f in FORMATS.values() if key in f.options]
            if not takers:
                raise ConfigError(f"{src}: unknown option {key!r}; {fmt.name} files take "
                                  f"{', '.join(fmt.options) or 'none'}")
            flag = {"n_features": "--features", "zero_based": "--zero-based"}.get(key, key)
            raise ConfigError(f"{src}: {flag} applies to {', '.join(takers)} files, not to "
                              f"{fmt.name}")
        options[key] = value
    return options


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
                if is_missing(v):
                    raise DataError(f"{self.source}, {where(i)}, column {self.column!r}: "
                                    "label is missing")
        else:
            local_y, _, local = encode_labels(np.asarray(raw), "classification",
                                              source=self.source, column=self.column, where=where)
            lut = np.array([self.index.get(k, -1) for k in local], np.int32)
            out = lut[local_y]
            if (out >= 0).all():
                return out
            keys = [local[j] for j in local_y]
        out = np.empty(len(keys), np.int32)
        for i, k in enumerate(keys):
            j = self.index.get(k)
            if j is None:
                raise DataError(f"{self.source}, {where(i)}, column {self.column!r}: label {k!r} "
                                f"is not one of the classes {list(self.classes)[:10]}")
            out[i] = j
        return out


# -- the output directory --------------------------------------------------------------------

#: the names a shard set's directory holds (and temporary names of its manifest)
_SHARD_FILE = re.compile(r"[Xy]-\d{5,}\.npy|stats\.npy|manifest\.json(\.tmp)?"
                         r"|\.manifest\.json\.[^/]+\.tmp")


class _Output:
    """Where a new shard set is built (a temporary directory beside OUT) and how it takes
    OUT's place. Construct it to check OUT (refusals raise :class:`DataError`); use it as a
    context manager around the writing: it yields the temporary directory, swaps it in when the
    block ends normally, and removes it (and any parent it created) otherwise."""

    def __init__(self, out, *, overwrite: bool, src: str | None = None):
        self.given = str(out)
        self.out = Path(os.path.abspath(out))
        self.overwrite, self.src = overwrite, src
        self.tmp: Path | None = None
        self.created: list[Path] = []
        self.replace = self._check()

    def _refuse(self, what: str) -> DataError:
        return DataError(f"{self.given}: {what}")

    def _check(self) -> bool:
        """Whether OUT is a shard set to replace (``False``: it is missing or empty)."""
        out = self.out
        if out.parent == out:
            raise self._refuse("is the root directory; give a directory for the shard set")
        if os.path.islink(out):
            raise self._refuse(f"is a symbolic link (to {os.path.realpath(out)}); give the "
                               "directory itself, or a new path")
        if not os.path.lexists(out):
            up = out.parent
            while not os.path.lexists(up):
                up = up.parent
            if not up.is_dir():
                raise self._refuse(f"{up} is a file, not a directory; choose another path")
            return False
        if not out.is_dir():
            raise self._refuse("exists and is a file, not a directory; choose a new directory "
                               "(--overwrite replaces only a shard set)")
        if self.src is not None:
            real_src, real_out = os.path.realpath(self.src), os.path.realpath(out)
            if os.path.commonpath([real_src, real_out]) == real_out:
                raise self._refuse(f"holds the input file {self.src}; write the shard set to "
                                   "a directory outside the input's")
        try:
            entries = sorted(os.listdir(out))
        except OSError as e:
            raise self._refuse(f"cannot list the directory: {e.strerror}") from None
        if not entries:
            return False
        if not is_shard_dir(out):
            raise self._refuse("exists and is not empty, and is not a shard set (no "
                               f"{MANIFEST}); --overwrite replaces only a shard set: choose a "
                               "new directory, or move its contents away yourself")
        other = [e for e in entries if not (_SHARD_FILE.fullmatch(e) and _regular(out / e))]
        if other:
            shown = ", ".join(other[:3]) + (f" and {len(other) - 3} more" if len(other) > 3
                                            else "")
            raise self._refuse(f"exists and is not empty: a shard set that also holds {shown}; "
                               "--overwrite replaces only a shard set's own files: move "
                               "those away, or choose a new directory")
        if not self.overwrite:
            raise self._refuse("exists and is not empty: it holds a shard set; pass --overwrite "
                               "to replace it, or choose a new directory")
        return True

    def __enter__(self) -> Path:
        parent = self.out.parent
        missing, up = [], parent
        while not os.path.lexists(up):
            missing.append(up)
            up = up.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.created = missing
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=".tmp",
                                             dir=parent))
            os.chmod(self.tmp, 0o777 & ~current_umask())  # mkdtemp makes it 0700
        except OSError as e:
            self._cleanup()
            raise self._os_error(e) from None
        return self.tmp

    def __exit__(self, kind, error, tb) -> bool:
        if kind is None:
            try:
                self._swap()
                return False
            except BaseException as e:
                self._cleanup()
                if isinstance(e, OSError):
                    raise self._os_error(e) from None
                raise
        self._cleanup()
        if isinstance(error, OSError):
            raise self._os_error(error) from None
        return False

    def _swap(self) -> None:
        out, parent = self.out, self.out.parent
        fsync_dir(self.tmp)
        if not self.replace:
            try:
                os.rename(self.tmp, out)  # onto nothing or an empty directory: atomic
            except OSError as e:
                if e.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                    raise self._refuse("appeared while converting and is not empty; nothing "
                                       "was replaced: choose a new directory") from None
                raise
        else:
            self._check()  # still a shard set, still ours to replace
            aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=parent))
            try:
                os.rename(out, aside)  # onto the empty directory just made
            except BaseException:
                os.rmdir(aside)
                raise
            try:
                os.rename(self.tmp, out)
            except BaseException:
                os.rename(aside, out)
                raise
            shutil.rmtree(aside, ignore_errors=True)
            if os.path.lexists(aside):
                warnings.warn(f"the replaced shard set could not be removed entirely: {aside}; "
                              "delete it yourself", RuntimeWarning, stacklevel=2)
        self.tmp = None
        fsync_dir(parent)

    def _cleanup(self) -> None:
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None
        for d in self.created:  # deepest first; stop at the first that is not empty
            try:
                os.rmdir(d)
            except OSError:
                break
        self.created = []

    def _os_error(self, e: OSError) -> DataError:
        where = e.filename or self.given
        hint = {errno.ENOSPC: "free some space or write the shard set to another disk",
                errno.EDQUOT: "free some space or write the shard set to another disk",
                errno.EACCES: "check the permissions or choose another directory",
                errno.EPERM: "check the permissions or choose another directory",
                errno.EROFS: "the file system is read-only: choose another directory"}.get(
                    e.errno, "fix that and convert again")
        return DataError(f"{where}: {e.strerror or e}; the conversion stopped and "
                         f"{self.given} was left as it was: {hint}")


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def fsync_dir(path) -> None:
    """Make a directory's entries (renames, new files) durable; a no-op where unsupported."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- the converter ---------------------------------------------------------------------------

def convert(src, out, *, fmt: str | None = None, label_column=None, task: str | None = None,
            classes=None, block_rows: int | None = None, shard_blocks: int = SHARD_BLOCKS,
            n_features: int | None = None, zero_based: bool = False, overwrite: bool = False,
            progress: Progress | None = None, **options) -> Path:
    """Convert ``src`` to a shard set in directory ``out``; returns ``out`` (see module doc).

    ``out`` must be new or empty, or (with ``overwrite``) a shard set; it is replaced only once
    the new shard set is complete. ``fmt`` is a name in :data:`~sgdlab.data.formats.FORMATS`
    (default: from the extension). ``label_column`` (CSV/TSV/Parquet) and ``**options`` (the
    format's other loading options: ``delimiter``, ``x_key``/``y_key``) are as for
    :func:`~sgdlab.data.loaders.load_data`. ``n_features`` (LibSVM) fixes the width; without
    it the width is the largest index, at most :data:`~sgdlab.data.readers.MAX_FEATURES`.
    """
    check_task(task)
    src = existing_file(src)
    fmt = get_format(fmt or detect_format(src))
    if n_features is not None and (isinstance(n_features, bool) or int(n_features) != n_features
                                   or n_features < 1):
        raise ConfigError(f"--features must be a whole number >= 1, got {n_features!r}")
    if block_rows is not None and block_rows < 1:
        raise ConfigError(f"--block-rows must be >= 1, got {block_rows}")
    options = _options(src, fmt, label_column=label_column, n_features=n_features,
                       zero_based=zero_based, **options)
    output = _Output(out, overwrite=overwrite, src=src)  # refuse before reading anything
    tick = progress or (lambda *a: None)

    try:
        source = fmt.open(src, **options)
        label_name = source.label_name

        # pass 1: rows, labels (and the width, for LibSVM)
        n, distinct, overflow = 0, {}, False
        for labels, where in source.scan():
            if not source.labels_checked:
                i = first_missing(labels)
                if i is not None:
                    raise DataError(f"{src}, {where(i)}, column {label_name!r}: label is "
                                    "missing")
            n += len(labels)
            if not overflow:
                for v in (np.unique(labels) if isinstance(labels, np.ndarray) else set(labels)):
                    distinct.setdefault(v.item() if hasattr(v, "item") else v, None)
                overflow = len(distinct) > MAX_SCANNED_LABELS
            tick("scan", n, source.total or 0)
        if n == 0:
            raise DataError(f"{src}: has no data rows")
        source.finish_scan(n)
        names = source.names
    except OSError as e:  # the input went away or cannot be read
        raise DataError(f"{e.filename or src}: cannot read: {e.strerror or e}") from None
    coder = LabelCoder.discover(list(distinct), overflow, task, classes, src, label_name)

    # pass 2: write
    def encoded():
        done = 0
        for X, labels, where in source.chunks():
            yield X, coder.encode(labels, where)
            done += len(labels)
            tick("write", done, n)

    with output as tmp:
        _write_set(tmp, encoded(), n, len(names), task=coder.task, classes=coder.classes,
                   feature_names=names, block_rows=block_rows, shard_blocks=shard_blocks,
                   source=os.path.basename(src), label_column=label_name,
                   example_shape=source.example_shape)
    return Path(out)


def write_shards(out, chunks, n: int, d: int, *, task: str = "classification",
                 classes=(0, 1), feature_names=None, block_rows: int | None = None,
                 shard_blocks: int = SHARD_BLOCKS, source: str = "arrays",
                 label_column: str = "label", overwrite: bool = False,
                 example_shape=None) -> Path:
    """Write ``chunks`` of ``(X (r, d) float32, y (r,))``, ``n`` rows in all, as a shard set.

    ``y`` is already encoded: int32 class indices into ``classes``, or float32 regression
    targets (``task="regression"``, ``classes=()``). Used by :func:`convert` and by benchmarks
    that generate data larger than memory chunk by chunk. ``out`` is treated as in
    :func:`convert`: new or empty, or a shard set replaced (``overwrite``) once the new one is
    complete. ``example_shape`` (``prod(example_shape) == d``; default ``(d,)``) is the shape
    of one example, recorded in the manifest; ``X`` may then come as ``(r, *example_shape)``.
    """
    with _Output(out, overwrite=overwrite) as tmp:
        _write_set(tmp, chunks, n, d, task=task, classes=classes, feature_names=feature_names,
                   block_rows=block_rows, shard_blocks=shard_blocks, source=source,
                   label_column=label_column, example_shape=example_shape)
    return Path(out)


def _write_set(out: Path, chunks, n: int, d: int, *, task, classes, feature_names, block_rows,
               shard_blocks, source, label_column, example_shape=None) -> None:
    """The shard files, stats.npy and (last) the manifest, into the existing directory ``out``.

    Rows are stored flat, ``(rows, d)``, whatever ``example_shape`` is: the manifest's
    ``example_shape`` tells readers how to reshape them.
    """
    if d < 1:
        raise DataError(f"{source}: no feature columns; a shard set needs at least one")
    shape = (d,) if example_shape is None else tuple(int(s) for s in example_shape)
    if not shape or math.prod(shape) != d or min(shape) < 1:
        raise DataError(f"{source}: example shape {shape} does not hold the {d} features of "
                        "each row; give a shape whose product is the number of features")
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
            raise DataError(f"{source}: {written} rows were written but {n} were announced")
        shards = writer.close()
    finally:
        writer.abort()
    manifest = {"format": FORMAT, "version": VERSION, "rows": n, "features": d,
                "example_shape": list(shape), "task": task, "classes": list(classes),
                "feature_names": names,
                "x_dtype": "float32", "y_dtype": np.dtype(y_dtype).name,
                "block_rows": block_rows, "shard_blocks": shard_blocks, "source": source,
                "label_column": label_column, "shards": shards}
    # the manifest appears last: its presence means complete
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")


class _ShardWriter:
    """Appends rows to shard files whose shapes are known; one block is buffered, and each
    block's statistics go straight to ``stats.npy`` (whose shape is known too)."""

    def __init__(self, out: Path, n, d, block_rows, shard_blocks, y_dtype):
        self.out, self.n, self.d = out, n, d
        self.block_rows, self.shard_rows = block_rows, block_rows * shard_blocks
        self.y_dtype = np.dtype(y_dtype)
        self.xbuf = np.empty((block_rows, d), np.float32)
        self.ybuf = np.empty(block_rows, self.y_dtype)
        self.fill, self.written, self.shards, self.files = 0, 0, [], None
        self.n_blocks, self.blocks = -(-n // block_rows), 0
        self.stats = open(out / "stats.npy", "wb")  # noqa: SIM115 (closed in close/abort)
        np.lib.format.write_array_header_1_0(
            self.stats, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float64)),
                         "fortran_order": False, "shape": (self.n_blocks, 2, d)})

    def _start_shard(self):
        s = len(self.shards)
        rows = min(self.shard_rows, self.n - self.written)
        entry = {"x": f"X-{s:05d}.npy", "y": f"y-{s:05d}.npy", "rows": rows}
        self.files = {}
        for key, dtype, shape in (("x", np.float32, (rows, self.d)), ("y", self.y_dtype, (rows,))):
            fh = open(self.out / entry[key], "wb")
            h = _HashingFile(fh)
            self.files[key] = h
            np.lib.format.write_array_header_1_0(
                h, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                    "fortran_order": False, "shape": shape})
        self.shards.append(entry)
        self.shard_left = rows

    def _flush_block(self):
        r = self.fill
        if self.files is None or self.shard_left == 0:
            self._finish_shard()
            self._start_shard()
        x, y = self.xbuf[:r], self.ybuf[:r]
        for key, data in (("x", x.tobytes()), ("y", y.tobytes())):
            self.files[key].write(data)
            # per-block checksums: a reader verifies each block it reads (ShardSet.read_block)
            self.shards[-1].setdefault(f"crc32_{key}", []).append(zlib.crc32(data))
        x64 = x.astype(np.float64)
        mean = x64.mean(axis=0)
        self.stats.write(np.stack([mean, ((x64 - mean) ** 2).sum(axis=0)]).tobytes())
        self.blocks += 1
        self.shard_left -= r
        self.written += r
        self.fill = 0

    def _finish_shard(self):
        if self.files is None:
            return
        for key, h in self.files.items():
            _close_synced(h.fh)
            self.shards[-1][f"sha256_{key}"] = h.sha.hexdigest()
        self.files = None

    def append(self, X, y):
        X = X.reshape(len(X), self.d)  # rows of any example shape, stored flat
        if self.written + self.fill + len(y) > self.n:
            raise DataError(f"{self.out}: more rows than the {self.n} announced")
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
        assert self.blocks == self.n_blocks, (self.blocks, self.n_blocks)
        _close_synced(self.stats)
        return self.shards

    def abort(self):
        """Close whatever is still open (after :meth:`close`, nothing is)."""
        for h in (self.files or {}).values():
            h.fh.close()
        self.files = None
        self.stats.close()


def _close_synced(fh) -> None:
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()


class _HashingFile:
    """A write-only file that hashes what passes through (the checksum costs no second read)."""

    def __init__(self, fh):
        self.fh, self.sha = fh, hashlib.sha256()

    def write(self, data):
        self.sha.update(data)
        return self.fh.write(data)
