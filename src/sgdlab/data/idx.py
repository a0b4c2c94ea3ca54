"""IDX files, the format of MNIST (and Fashion-MNIST, EMNIST, KMNIST): images and their labels.

An IDX file is a header and then the values, C order::

    bytes 0-1   0x00 0x00
    byte  2     the value type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                0x0D float32, 0x0E float64 (multi-byte types big-endian)
    byte  3     the number of axes k
    4 * k bytes the length of each axis, big-endian uint32
    then        the values

so MNIST's ``train-images-idx3-ubyte`` starts with the magic number ``0x00000803`` (uint8, 3
axes) and the lengths ``60000, 28, 28``; ``train-labels-idx1-ubyte`` with ``0x00000801`` and
``60000``. Either may be gzip-compressed (``.gz``, as distributed).

:func:`load_idx` takes the **images** file and finds its labels beside it: the file of the
same name with ``images`` replaced by ``labels`` and ``idx3`` by ``idx1``
(``train-images-idx3-ubyte.gz`` -> ``train-labels-idx1-ubyte.gz``, compressed or not). Images
``(N, H, W)`` become ``X (N, H, W, 1)`` float32 (channels last, one grey channel; a 4-axis
file ``(N, H, W, C)`` keeps its channels), values as stored (MNIST: grey levels ``0..255``,
not rescaled: standardise, which is per channel for images).
"""

from __future__ import annotations

import gzip
import math
import os
import re
import zlib
from typing import Iterator

import numpy as np

from ..errors import DataError
from .arrays import from_arrays
from .checks import as_finite_float32, check_task, existing_file
from .hostmem import check_allocation
from .dataset import Dataset
from .readers import Chunk, ChunkSource, chunk_rows

#: IDX value type codes and their (big-endian) NumPy dtypes
IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

#: what a damaged gzip stream can raise while it is read (a bad CRC-32 or length at its end:
#: gzip.BadGzipFile, an OSError)
_GZIP_ERRORS = (OSError, EOFError, zlib.error)
#: the most uncompressed bytes one compressed byte of a deflate stream can give (a 258-byte
#: match coded in about two bits: RFC 1951's limit is 1032:1)
DEFLATE_MAX_RATIO = 1032
#: bytes read per call while the values are read
READ_BLOCK = 1 << 24


class IdxHeader:
    """An IDX file's header: ``dtype`` (big-endian), ``shape`` and where the values start
    (``offset``, in the uncompressed stream)."""

    def __init__(self, path: str, dtype: np.dtype, shape: tuple, offset: int):
        self.path, self.dtype, self.shape, self.offset = path, dtype, shape, offset

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _is_gzip(path: str) -> bool:
    """Whether ``path`` is gzip-compressed (by its first two bytes, not its name, so a renamed
    file still reads)."""
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _open(path: str):
    """The file as a binary stream, decompressed when it is gzip. A gzip stream checks its
    CRC-32 and length when its end is read (:func:`_check_end`)."""
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")


def _damaged_gzip(path: str, e: Exception) -> DataError:
    return DataError(f"{path}: cannot read as an IDX file: the gzip data is damaged ({e}); "
                     "download the file again")


def _read_exactly(fh, n: int, path: str, what: str) -> bytes:
    try:
        data = fh.read(n)
    except _GZIP_ERRORS as e:
        raise _damaged_gzip(path, e) from None
    if len(data) != n:
        raise DataError(f"{path}: truncated: the file ends after {len(data)} of the "
                        f"{n:,} bytes of {what}; download the file again")
    return data


def _read_into(fh, out: np.ndarray, path: str, what: str) -> None:
    """Fill the byte array ``out`` from ``fh`` a block at a time (no second copy of the data,
    as ``fh.read(n)`` would make while it joins its pieces)."""
    view, done = memoryview(out), 0
    try:
        while done < len(out):
            got = fh.readinto(view[done:done + READ_BLOCK])
            if not got:
                break
            done += got
    except _GZIP_ERRORS as e:
        raise _damaged_gzip(path, e) from None
    if done != len(out):
        raise DataError(f"{path}: truncated: the file ends after {done:,} of the "
                        f"{len(out):,} bytes of {what}; download the file again")


def _check_end(fh, head: "IdxHeader") -> None:
    """Refuse bytes after the values the header declares, and a gzip stream whose CRC-32 or
    length (checked by :mod:`gzip` when the end is read) does not match its data: damaged
    values must never be trained on."""
    try:
        extra = bool(fh.read(1))
    except _GZIP_ERRORS as e:
        raise _damaged_gzip(head.path, e) from None
    if extra:
        raise DataError(f"{head.path}: holds more bytes than its header declares ({head.shape} "
                        f"of {head.dtype}, {head.nbytes:,} bytes); the file is damaged or not "
                        "an IDX file")


def read_header(path: str, fh=None) -> IdxHeader:
    """The header of the IDX file ``path`` (read from ``fh`` when given, left just past it)."""
    own = fh is None
    fh = _open(path) if own else fh
    try:
        magic = _read_exactly(fh, 4, path, "the magic number")
        code, ndim = magic[2], magic[3]
        if magic[:2] != b"\x00\x00" or code not in IDX_TYPES or ndim == 0:
            raise DataError(
                f"{path}: not an IDX file: magic number 0x{magic.hex()} (an IDX file starts "
                "with 0x0000, a type byte 08/09/0B/0C/0D/0E and the number of axes, e.g. "
                "0x00000803 for MNIST images, 0x00000801 for labels)")
        dims = _read_exactly(fh, 4 * ndim, path, f"the {ndim} axis lengths")
        shape = tuple(int(v) for v in np.frombuffer(dims, ">u4"))
        return IdxHeader(path, IDX_TYPES[code], shape, 4 + 4 * ndim)
    finally:
        if own:
            fh.close()


def check_length(head: IdxHeader) -> None:
    """Check the size ``head`` declares against the file's length before anything of that size
    is allocated: a plain file must hold it, and a gzip file of ``n`` bytes cannot hold more
    than ``DEFLATE_MAX_RATIO * n`` (a header claiming 2^31 images in a small file)."""
    path, size = head.path, os.path.getsize(head.path)
    declared = f"its header declares {_shape_text(head.shape)} values of {head.dtype.name}"
    if 0 in head.shape:
        raise DataError(f"{path}: {declared}: no values (an axis of length 0)")
    if _is_gzip(path):
        if head.nbytes > DEFLATE_MAX_RATIO * size:
            raise DataError(f"{path}: {declared} ({head.nbytes:,} bytes), more than a gzip file "
                            f"of {size:,} bytes can hold (deflate compresses at most "
                            f"{DEFLATE_MAX_RATIO}:1); the file is damaged or not an IDX file, "
                            "download it again")
    elif head.nbytes > size - head.offset:
        raise DataError(f"{path}: truncated: {declared} ({head.nbytes:,} bytes) but only "
                        f"{max(size - head.offset, 0):,} bytes follow the header; download the "
                        "file again")


def check_memory(head: IdxHeader, float32_copy: bool) -> None:
    """Check that the values ``head`` declares (and, with ``float32_copy``, their float32
    copy) fit in the memory available, before they are allocated."""
    need = head.nbytes + (4 * math.prod(head.shape) if float32_copy else 0)
    check_allocation(need, head.path, f"its {_shape_text(head.shape)} values"
                     + (" as read and as float32" if float32_copy else ""),
                     "convert it to a shard set and stream it (sgdlab data convert "
                     f"{os.path.basename(head.path)} shards/, then --data shards/)")


def _shape_text(shape: tuple) -> str:
    return " x ".join(f"{s:,}" for s in shape)


def _read_values(path: str, float32_copy: bool = False) -> np.ndarray:
    """The whole IDX file ``path`` as an array of its header's shape and dtype, its size
    checked against the file and the memory before it is allocated (:func:`check_length`,
    :func:`check_memory`), and after reading (truncated, bytes left over, a damaged gzip
    stream)."""
    try:
        with _open(path) as fh:
            head = read_header(path, fh)
            check_length(head)
            check_memory(head, float32_copy)
            data = np.empty(head.nbytes, np.uint8)
            _read_into(fh, data, path,
                       f"values the header declares ({head.shape} of {head.dtype})")
            _check_end(fh, head)
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    return data.view(head.dtype).reshape(head.shape)


def labels_path(images_path) -> str | None:
    """The labels file beside the images file ``images_path``, or ``None`` if there is none.

    Its name is the images file's with ``images`` -> ``labels`` and ``idx3``/``idx4`` ->
    ``idx1`` in the file name; with or without ``.gz`` (same compression tried first).
    """
    folder, name = os.path.split(os.fspath(images_path))
    for want in _label_names(name):
        candidate = os.path.join(folder, want)
        if os.path.isfile(candidate):
            return candidate
    return None


def _label_names(name: str) -> list[str]:
    """Candidate label file names for the images file ``name`` (first the same compression)."""
    base = name[:-3] if name.lower().endswith(".gz") else name
    stem = re.sub("images", "labels", base, flags=re.IGNORECASE)
    stem = re.sub(r"idx[34]", "idx1", stem, flags=re.IGNORECASE)
    if stem == base:
        return []
    first, second = (stem + ".gz", stem) if name.lower().endswith(".gz") else (stem, stem + ".gz")
    return [first, second]


def _images_shape(src: str, shape: tuple) -> tuple:
    """``(N, H, W, C)`` for an IDX images file of ``shape`` (``(N, H, W)`` gains ``C = 1``)."""
    if len(shape) not in (3, 4):
        raise DataError(f"{src}: an images file holds (N, H, W) or (N, H, W, C) values, this one "
                        f"{shape} ({len(shape)} axes); is it a labels file (idx1)? Load the "
                        "images file (idx3), whose labels are read from the labels file beside "
                        "it")
    if 0 in shape:
        raise DataError(f"{src}: holds no images: its header declares shape {shape}")
    return shape if len(shape) == 4 else shape + (1,)


def read_images(path) -> np.ndarray:
    """The images of the IDX file ``path`` as float32 ``(N, H, W, C)`` (``C = 1`` for a
    3-axis file), every value checked finite (float files)."""
    src = existing_file(path)
    raw = _read_values(src, float32_copy=True)
    shape = _images_shape(src, raw.shape)
    return as_finite_float32(raw.reshape(shape), source=src)


def read_labels(images_src: str) -> tuple[str, np.ndarray]:
    """``(labels file, labels (N,))`` for the images file ``images_src`` (see
    :func:`labels_path`)."""
    found = labels_path(images_src)
    if found is None:
        looked = _label_names(os.path.basename(images_src))
        hint = (f"looked for {' and '.join(looked)} beside it" if looked else
                "its name has no 'images' to replace by 'labels' (as in "
                "train-images-idx3-ubyte -> train-labels-idx1-ubyte)")
        raise DataError(f"{images_src}: no labels file: {hint}; put the labels file (IDX, "
                        "one axis) next to the images under that name")
    labels = _read_values(found)
    if labels.ndim != 1:
        raise DataError(f"{found}: a labels file holds one value per image (N,), this one "
                        f"{labels.shape}; is it an images file?")
    return found, labels


def _check_counts(images_src: str, n_images: int, labels_src: str, n_labels: int) -> None:
    if n_images != n_labels:
        raise DataError(f"{images_src} holds {n_images:,} images but {labels_src} holds "
                        f"{n_labels:,} labels; they must be a matching pair (train with train, "
                        "t10k with t10k)")


def load_idx(path, task: str | None = None) -> Dataset:
    """Load an IDX images file and its labels file (found beside it, see :func:`labels_path`).

    Returns ``X (N, H, W, 1)`` (or ``(N, H, W, C)`` for a 4-axis file) float32, values as
    stored, and ``y (N,)`` encoded as every loader encodes labels (MNIST: the classes
    ``0..9``). Errors name the file: not IDX (the magic number), truncated or too long for its
    header, no labels file, or a labels file of another length.
    """
    check_task(task)
    src = existing_file(path)
    X = read_images(src)
    labels_src, y = read_labels(src)
    _check_counts(src, len(X), labels_src, len(y))
    return from_arrays(X, y, task=task, name=os.path.basename(src))


class IdxSource(ChunkSource):
    """An IDX images file (and its labels) for ``convert``: the labels are read whole (one
    value per image), the images a chunk of rows at a time (gzip decompressed as it goes).
    With ``need_labels=False`` (images to predict on) a missing labels file leaves
    ``labels`` None, and the chunks' labels None."""

    def __init__(self, src: str, need_labels: bool = True):
        self.src = src
        head = read_header(src)
        check_length(head)  # read a chunk at a time: the memory is the chunk's
        self.example_shape = _images_shape(src, head.shape)[1:]
        self.head = head
        self.labels_src = self.labels = None
        if need_labels or labels_path(src) is not None:
            self.labels_src, self.labels = read_labels(src)
            _check_counts(src, head.shape[0], self.labels_src, len(self.labels))
        self.total = head.shape[0]
        self.names = [f"x{j}" for j in range(math.prod(self.example_shape))]

    def scan(self):
        per = chunk_rows(1, 8, 65536)
        for r0 in range(0, self.total, per):
            yield self.labels[r0:r0 + per], (lambda i, o=r0: f"row index {o + i}")

    def chunks(self) -> Iterator[Chunk]:
        per = chunk_rows(len(self.names))
        row_bytes = len(self.names) * self.head.dtype.itemsize
        try:
            with _open(self.src) as fh:
                read_header(self.src, fh)
                for r0 in range(0, self.total, per):
                    r = min(per, self.total - r0)
                    data = _read_exactly(fh, r * row_bytes, self.src,
                                         f"images {r0:,} to {r0 + r - 1:,}")
                    where = (lambda i, o=r0: f"row index {o + i}")
                    X = np.frombuffer(data, self.head.dtype).reshape((r,) + self.example_shape)
                    X = as_finite_float32(X, source=self.src, columns=self.names, where=where)
                    yield X, None if self.labels is None else self.labels[r0:r0 + r], where
                _check_end(fh, self.head)
        except OSError as e:
            raise DataError(f"{self.src}: cannot read: {e.strerror or e}") from None


def open_idx(path) -> IdxSource:
    """An IDX images file and its labels file for ``convert``."""
    return IdxSource(existing_file(path))
