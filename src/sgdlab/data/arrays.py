"""NumPy files (.npy, .npz; never unpickled) and in-memory arrays or DataFrames.

NumPy files are always opened with ``allow_pickle=False``: an object array would need pickle,
and unpickling a file can run arbitrary code, so such files are refused.
"""

from __future__ import annotations

import math
import os
import zipfile
import zlib
from typing import Iterator

import numpy as np

from ..errors import DataError
from .checks import (
    as_finite_float32,
    check_task,
    check_unique_columns,
    encode_labels,
    existing_file,
    try_float64,
)
from .dataset import Dataset
from .hostmem import check_allocation
from .readers import PARQUET_BATCH_ROWS, Chunk, ChunkSource, chunk_rows

# What reading a damaged .npz (a zip archive) can raise: zipfile uses NotImplementedError for
# unknown versions or compression methods and RuntimeError for encrypted members.
# UnicodeDecodeError: a member name flagged UTF-8 that is not (zipfile decodes it)
_ARCHIVE_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
                   RuntimeError, UnicodeDecodeError)


def _np_load(src: str, mmap: bool = False):
    # np.load treats anything without the .npy/.npz signature as a pickle (and would then
    # blame allow_pickle); check the signature first so such files get an accurate message.
    with open(src, "rb") as fh:
        magic = fh.read(6)
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK\x03\x04"):
        raise DataError(f"{src}: cannot read as a NumPy file: it is not in .npy or .npz format")
    if magic == b"\x93NUMPY":
        with open(src, "rb") as fh:
            _check_npy_header(fh, os.path.getsize(src), src, in_memory=not mmap)
    try:
        return np.load(src, mmap_mode="r" if mmap else None, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e) or "pickle" in str(e).lower():
            raise DataError(_object_refused(src)) from None
        raise DataError(f"{src}: cannot read as a NumPy file: {e}") from None
    except _ARCHIVE_ERRORS as e:
        raise DataError(f"{src}: cannot read as a NumPy file: {e}") from None


def _check_npy_header(fh, size: int, src: str, key: str | None = None,
                      in_memory: bool = True) -> tuple:
    """Read a ``.npy`` header and check it before any data is read; returns ``(shape,
    dtype, fortran_order)``.

    Refuses object dtypes at once (their data is a pickle) and a header declaring more data
    than the ``size`` bytes the file holds: a truncated file, or a damaged header whose shape
    would make NumPy allocate an absurd amount of memory before noticing. With ``in_memory``
    (the array is read, not memory-mapped) the array and its float32 copy must also fit in
    the memory available.
    """
    what = f"array {key!r}" if key else "the array"
    try:
        version = np.lib.format.read_magic(fh)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(fh)
    except Exception as e:  # noqa: BLE001
        # The header is a Python literal parsed by NumPy; damaged bytes surface as ValueError,
        # SyntaxError, tokenize errors, ... none of which NumPy documents. All mean the same.
        raise DataError(f"{src}: cannot read as a NumPy file: the header of {what} is damaged "
                        f"({type(e).__name__}: {e})") from None
    if dtype.hasobject:
        raise DataError(_object_refused(src, key))
    if any(not isinstance(n, int) or n < 0 for n in shape) or \
            math.prod(n for n in shape if n) > np.iinfo(np.intp).max:
        raise DataError(f"{src}: cannot read as a NumPy file: the header of {what} is damaged "
                        f"(shape {shape} is no array's: a negative or too large length)")
    declared = math.prod(shape) * dtype.itemsize
    available = size - fh.tell()
    if declared > available:
        raise DataError(
            f"{src}: {what} is truncated or damaged: its header declares shape {shape} of "
            f"{dtype} ({declared:,} bytes) but only {max(available, 0):,} bytes follow")
    if in_memory:
        check_allocation(declared + 4 * math.prod(shape), src,
                         f"{what} (shape {shape} of {dtype}) as read and as float32",
                         "convert the file to a shard set and stream it (sgdlab data convert "
                         f"{os.path.basename(src)} shards/, then --data shards/)")
    return shape, dtype, fortran


def read_npz_arrays(file, src: str, fix: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive ``file`` (a path or a binary file object) by name,
    never unpickled, each header checked (:func:`_check_npy_header`: its declared size against
    its member's, object dtypes refused) and their sum against the memory available before
    any is read. ``src`` names the archive in messages, ``fix`` says what to do when the arrays
do not fit in memory. Raises :class:`DataError`."""
    try:
        with zipfile.ZipFile(file) as archive:
            members, total = {}, 0
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise DataError(f"{src}: holds {info.filename!r}, which is not an array "
                                    "(.npy); not an .npz archive written by NumPy")
                key = info.filename[:-4]
                with archive.open(info) as fh:
                    shape, dtype, _ = _check_npy_header(fh, info.file_size, src, key,
                                                        in_memory=False)
                members[key] = info
                total += math.prod(shape) * dtype.itemsize
            check_allocation(total, src, f"its {len(members)} arrays", fix)
            out = {}
            for key, info in members.items():
                with archive.open(info) as fh:
                    out[key] = np.lib.format.read_array(fh, allow_pickle=False)
            return out
    except DataError:
        raise
    except (_ARCHIVE_ERRORS + (ValueError,)) as e:
        raise DataError(f"{src}: cannot read as an .npz archive (damaged?): {e}") from None


def _object_refused(src: str, key: str | None = None) -> str:
    what = f"array {key!r}" if key else "the array"
    return (
        f"{src}: {what} has dtype=object; object arrays are refused because loading them needs "
        "pickle, which can run arbitrary code. Save a numeric array instead (e.g. X.astype(float))"
    )


def load_npy(path, task: str | None = None) -> Dataset:
    """Load a ``.npy`` file holding one 2-D numeric array of shape ``(N, d + 1)``.

    The **last column is the label**; the other ``d`` columns are the features. Labels are
    encoded as in :func:`encode_labels` (e.g. integer-valued floats with few distinct values
    become class indices). Opened with ``allow_pickle=False``; object arrays are refused.

    A ``.npy`` file is always such a table: an array of more axes is refused (its label has
    no natural place); save examples of any shape as an ``.npz`` archive with ``X (N, ...)``
    and ``y (N,)`` instead (:func:`load_npz`).
    """
    check_task(task)
    src = existing_file(path)
    X, y = _read_npy(src)
    return _from_arrays(X, y, task, os.path.basename(src), None, src)


def _read_npy(src: str, mmap: bool = False):
    """The features and labels of a ``.npy`` file (views of one array, memory-mapped with
    ``mmap``), its header and shape checked."""
    arr = _np_load(src, mmap)
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise DataError(f"{src}: is an .npz archive, not a single array; load it with load_npz")
    if arr.ndim != 2:
        raise DataError(
            f"{src}: expected a 2-D array (N, d+1) with the label in the last column, got a "
            f"{arr.ndim}-D array of shape {arr.shape}"
            + ("; for examples of shape (N, ...) save X and y apart in an .npz archive: "
               "np.savez(path, X=X, y=y)" if arr.ndim > 2 else "")
        )
    if arr.shape[1] < 2:
        raise DataError(
            f"{src}: has {arr.shape[1]} column(s); need at least one feature column and the "
            "label in the last column"
        )
    return arr[:, :-1], arr[:, -1]


def read_npy_examples(path) -> np.ndarray | None:
    """The features of a ``.npy`` file of examples of more than one axis, ``(N,
    *example_shape)``, as checked float32, with no labels: what a model of such examples
    predicts on. ``None`` for an array of at most two axes, a table that :func:`load_npy`
    reads (its label perhaps in the last column). Training never reads a ``.npy`` file so."""
    src = existing_file(path)
    arr = _np_load(src, mmap=True)
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise DataError(f"{src}: is an .npz archive, not a single array; load it with load_npz")
    if arr.ndim <= 2:
        return None
    check_allocation(4 * arr.size, src, f"its {arr.shape} examples as float32",
                     "predict on fewer examples at a time")
    X, _ = _check_shapes(arr, np.zeros(len(arr)), src)
    names = tuple(f"x{j}" for j in range(math.prod(X.shape[1:])))
    return as_finite_float32(_numeric_features(np.asarray(X), src, names), source=src,
                             columns=names)


def load_npz(path, x_key: str = "X", y_key: str = "y", task: str | None = None) -> Dataset:
    """Load a ``.npz`` archive holding features ``x_key: (N, d)`` or ``(N, *example_shape)``
    (images ``(N, H, W, C)``, sequences ``(N, T, d)``) and labels ``y_key: (N,)``.

    Opened with ``allow_pickle=False``; object arrays are refused. A missing key lists the keys
    that are there.
    """
    check_task(task)
    src = existing_file(path)
    X, y = _read_npz(src, x_key, y_key)
    return _from_arrays(X, y, task, os.path.basename(src), None, src)


def _read_npz(src: str, x_key: str, y_key: str):
    """Arrays ``x_key`` and ``y_key`` of a ``.npz`` archive, both headers checked (and their
    size against the memory available) before either is read."""
    archive = _np_load(src)
    if isinstance(archive, np.ndarray):
        raise DataError(f"{src}: holds a single array, not an .npz archive; load it with load_npy")
    with archive:
        keys = list(archive.files)
        need = 0
        for key in (x_key, y_key):
            if key not in keys:
                raise DataError(
                    f"{src}: no array named {key!r}; arrays in the file: "
                    f"{', '.join(repr(k) for k in keys) or '(none)'}: save the features as "
                    "'X' and the labels as 'y' (np.savez(path, X=..., y=...)), or in Python "
                    "name them: sgdlab.data.load_npz(path, x_key=..., y_key=...)"
                )
            member = key + ".npy" if key + ".npy" in archive.zip.namelist() else key
            try:
                with archive.zip.open(member) as fh:
                    shape, dtype, _ = _check_npy_header(
                        fh, archive.zip.getinfo(member).file_size, src, key, in_memory=False)
            except _ARCHIVE_ERRORS as e:
                raise DataError(f"{src}: cannot read array {key!r} (damaged archive?): "
                                f"{e}") from None
            need += math.prod(shape) * (dtype.itemsize + 4)
        check_allocation(need, src, f"arrays {x_key!r} and {y_key!r} as read and as float32",
                         "convert the file to a shard set and stream it (sgdlab data convert "
                         f"{os.path.basename(src)} shards/, then --data shards/)")
        arrays = []
        for key in (x_key, y_key):
            try:
                arrays.append(archive[key])
            except ValueError as e:
                if "pickle" in str(e).lower():
                    raise DataError(_object_refused(src, key)) from None
                raise DataError(f"{src}: cannot read array {key!r}: {e}") from None
            except _ARCHIVE_ERRORS as e:
                raise DataError(f"{src}: cannot read array {key!r} (damaged archive?): "
                                f"{e}") from None
    return arrays[0], arrays[1]


class ArrayRows:
    """The rows of one stored array, a ``.npy`` file or the array ``key`` of an ``.npz``
    archive (compressed or not), read in order a block at a time: memory is the block's,
    whatever the array's size (no memory map, whose pages would count as the process's).

    The header is checked before anything is read (:func:`_check_npy_header`); ``shape`` and
    ``dtype`` are the array's. An array stored in Fortran order has no contiguous rows and is
    read whole, its size checked against the memory available first.
    """

    def __init__(self, src: str, key: str | None = None):
        self.src, self.key, self._whole, self._done = src, key, None, 0
        self._archive = None
        what = src if key is None else f"{src}, array {key!r}"
        try:
            if key is None:
                self._fh = open(src, "rb")
                size = os.fstat(self._fh.fileno()).st_size
            else:
                self._archive = zipfile.ZipFile(src)
                info = self._archive.getinfo(key + ".npy")
                self._fh, size = self._archive.open(info), info.file_size
            shape, dtype, fortran = _check_npy_header(self._fh, size, src, key, in_memory=False)
            if len(shape) == 0:
                raise DataError(f"{what}: holds a single value, not rows of an array")
            if shape[0] and not math.prod(shape[1:]):
                raise DataError(f"{what}: its {shape[0]:,} rows of shape {tuple(shape[1:])} "
                                "hold no values")
            self.shape, self.dtype = tuple(shape), dtype
            if fortran and len(shape) > 1:
                check_allocation(math.prod(shape) * dtype.itemsize, src,
                                 f"{what} (stored in Fortran order, read whole)",
                                 "save it in C order (np.ascontiguousarray)")
                self._whole = self._read_bytes_whole()
        except DataError:
            self.close()
            raise
        except (_ARCHIVE_ERRORS + (KeyError, ValueError)) as e:
            self.close()
            raise DataError(f"{what}: cannot read (damaged file?): {e}") from None

    def _read_bytes_whole(self) -> np.ndarray:
        n = math.prod(self.shape) * self.dtype.itemsize
        data = self._fh.read(n)
        if len(data) != n:
            raise DataError(f"{self.src}: truncated: the array ends after {len(data):,} of its "
                            f"{n:,} bytes")
        return np.frombuffer(data, self.dtype).reshape(self.shape, order="F")

    @property
    def n(self) -> int:
        return self.shape[0]

    def read(self, rows: int) -> np.ndarray:
        """The next ``rows`` rows (fewer at the end), ``(r, *shape[1:])`` of ``dtype``."""
        r = max(0, min(rows, self.n - self._done))
        if self._whole is not None:
            out = self._whole[self._done:self._done + r]
        else:
            row_bytes = math.prod(self.shape[1:]) * self.dtype.itemsize
            try:
                data = self._fh.read(r * row_bytes)
            except _ARCHIVE_ERRORS as e:
                raise DataError(f"{self.src}: cannot read (damaged file?): {e}") from None
            if len(data) != r * row_bytes:
                raise DataError(f"{self.src}: truncated: rows {self._done:,} to "
                                f"{self._done + r - 1:,} end after {len(data):,} of their "
                                f"{r * row_bytes:,} bytes")
            out = np.frombuffer(data, self.dtype).reshape((r,) + self.shape[1:])
        self._done += r
        return out

    def close(self) -> None:
        for f in (getattr(self, "_fh", None), self._archive):
            if f is not None:
                f.close()

    def __enter__(self) -> "ArrayRows":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


def npz_keys(src: str) -> list[str]:
    """The names of the arrays of the ``.npz`` archive ``src``."""
    try:
        with zipfile.ZipFile(src) as archive:
            return [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
    except _ARCHIVE_ERRORS as e:
        raise DataError(f"{src}: cannot read as an .npz archive (damaged?): {e}") from None


def numeric_rows(X: np.ndarray, src: str, names, row0: int = 0) -> np.ndarray:
    """Rows ``row0 ..`` of ``X`` (``(r, ...)``, any numeric dtype) as checked float32: real
    numbers, all finite, a bad cell named by its row index and column."""
    X = _numeric_features(X, src, names, row0)
    return as_finite_float32(X, source=src, columns=names,
                             where=lambda i: f"row index {row0 + i}")


class ArraySource(ChunkSource):
    """A ``.npy`` (memory-mapped) or ``.npz`` (read whole: its members are compressed or
    not seekable) file for ``convert``: row slices, checked as :func:`from_arrays` checks."""

    def __init__(self, src, X, y):
        X, y = _check_shapes(_to_numpy(X, src, "features"), _to_numpy(y, src, "labels"), src)
        self.src, self.X, self.y = src, X, y
        self.example_shape = tuple(int(s) for s in X.shape[1:])
        self.names = [f"x{j}" for j in range(math.prod(self.example_shape))]
        self.total = len(X)

    def scan(self):
        per = chunk_rows(1, 8, PARQUET_BATCH_ROWS)
        for r0 in range(0, self.total, per):
            yield np.asarray(self.y[r0:r0 + per]), (lambda i, o=r0: f"row index {o + i}")

    def chunks(self) -> Iterator[Chunk]:
        per = chunk_rows(len(self.names))
        for r0 in range(0, self.total, per):
            where = (lambda i, o=r0: f"row index {o + i}")
            X = _numeric_features(np.asarray(self.X[r0:r0 + per]), self.src, self.names, r0)
            X = as_finite_float32(X, source=self.src, columns=self.names, where=where)
            yield X, np.asarray(self.y[r0:r0 + per]), where


def open_npy(path) -> ArraySource:
    """A ``.npy`` file (label in the last column) for ``convert``."""
    src = existing_file(path)
    return ArraySource(src, *_read_npy(src, mmap=True))


def open_npz(path, x_key: str = "X", y_key: str = "y") -> ArraySource:
    """A ``.npz`` archive (features ``x_key``, labels ``y_key``) for ``convert``."""
    src = existing_file(path)
    return ArraySource(src, *_read_npz(src, x_key, y_key))


# --------------------------------------------------------------------------------------------
# In-memory arrays
# --------------------------------------------------------------------------------------------


def _to_numpy(obj, source: str = "array", what: str = "features"):
    # pandas (and polars, ...) objects convert themselves; checked by attribute so pandas is
    # never imported here.
    if not isinstance(obj, np.ndarray) and hasattr(obj, "to_numpy"):
        return obj.to_numpy()
    try:
        return np.asarray(obj)
    except (ValueError, TypeError):
        # NumPy refuses nested sequences of unequal lengths ("inhomogeneous shape").
        raise DataError(_ragged_rows(obj, source, what)) from None


def _ragged_rows(obj, source: str, what: str) -> str:
    """Locate the first row whose length differs from row 0's, for a ragged nested list."""
    try:
        rows = list(obj)
        width = len(rows[0])
        for i, row in enumerate(rows):
            if len(row) != width:
                return (f"{source}, row index {i}: {what} row has {len(row)} value(s) but row "
                        f"index 0 has {width}; every row needs the same number of columns "
                        "(ragged rows)")
    except TypeError:
        pass
    return f"{source}: {what} cannot be read as a rectangular numeric array (ragged rows?)"


def from_arrays(X, y, task: str | None = None, name: str = "array", feature_names=None) -> Dataset:
    """Validate in-memory arrays and wrap them as a :class:`Dataset`.

    Args:
      X: ``(N, d)`` numbers: a NumPy array, nested lists, or a pandas DataFrame (whose column
        names become ``feature_names`` unless given); or ``(N, *example_shape)`` for examples
        of any shape (images ``(N, H, W, C)``, channels last; sequences ``(N, T, d)``). Bool
        and integer values become float32.
      y: ``(N,)`` labels (``(N, 1)`` is flattened): numbers, bools or text, or a pandas Series.
      task: ``"classification"``, ``"regression"`` or ``None`` to infer (see
        :func:`encode_labels`).
      name: used as ``Dataset.name`` and in error messages.
      feature_names: ``d`` names, one per feature of the flattened example
        (``d = prod(example_shape)``); default ``x0..x{d-1}`` (or the DataFrame's columns).

    Raises :class:`DataError` for wrong shapes, mismatched lengths, non-numeric features and
    NaN/inf values (naming the first bad ``row index`` and column).
    """
    if feature_names is None and hasattr(X, "columns") and hasattr(X, "to_numpy"):
        feature_names = [str(c) for c in X.columns]
    return _from_arrays(X, y, task, name, feature_names, name)


def _from_arrays(X, y, task, name, feature_names, source) -> Dataset:
    check_task(task)
    X, y = _check_shapes(_to_numpy(X, source, "features"), _to_numpy(y, source, "labels"),
                         source)
    d = math.prod(X.shape[1:])
    if feature_names is None:
        names = tuple(f"x{j}" for j in range(d))
    else:
        names = tuple(str(f) for f in feature_names)
        if len(names) != d:
            raise DataError(f"{source}: {len(names)} feature names for {d} feature columns")
        check_unique_columns(names, source)
    X = _numeric_features(X, source, names)
    X = as_finite_float32(X, source=source, columns=names)
    y, task, classes = encode_labels(y, task, source=source)
    return Dataset(X, y, task, classes, names, name)


def _check_shapes(X: np.ndarray, y: np.ndarray, source: str):
    """``X (N, *example_shape)`` (``(N, d)`` for tabular data) and ``y (N,)`` (an ``(N, 1)``
    ``y`` flattened), N and every example axis at least 1."""
    if X.ndim == 1:
        raise DataError(
            f"{source}: features must be 2-D (N, d), got 1-D shape {X.shape}; "
            "for a single feature use X.reshape(-1, 1)"
        )
    if X.ndim == 0:
        raise DataError(
            f"{source}: features must be an array (N, d) or (N, *example_shape), got a single "
            "value; give one example per row"
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(
            f"{source}: labels must be 1-D (N,), got shape {y.shape}"
            + ("; for one-hot labels pass y.argmax(axis=1)" if y.ndim == 2 else "")
        )
    if len(X) != len(y):
        raise DataError(f"{source}: X has {len(X)} rows but y has {len(y)} labels; they must match")
    n, d = len(X), math.prod(X.shape[1:])
    if n == 0:
        raise DataError(f"{source}: there are no rows (N = 0)")
    if d == 0:
        if X.ndim == 2:
            raise DataError(f"{source}: there are no feature columns (d = 0)")
        raise DataError(f"{source}: examples of shape {X.shape[1:]} hold no values; every "
                        "example axis needs a length of at least 1")
    return X, y


def _numeric_features(X: np.ndarray, source: str, names, row0: int = 0) -> np.ndarray:
    """``X`` with a real numeric dtype, or a DataError naming the first non-numeric cell
    (``X``'s first row being row index ``row0``; ``names`` one per flattened feature)."""
    kind = X.dtype.kind
    if kind in "biuf":
        return X
    if kind in "USO":
        converted = try_float64(X)
        if converted is not None:
            return converted
        for i, row in enumerate(X.reshape(len(X), -1).tolist()):
            for j, v in enumerate(row):
                try:
                    float(v)
                except (TypeError, ValueError):
                    raise DataError(
                        f"{source}, row index {row0 + i}, column {names[j]!r}: {v!r} is not a "
                        "number; features must be numeric"
                    ) from None
    raise DataError(f"{source}: features of dtype {X.dtype} are not supported; use real numbers")


