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
from .dataset import Dataset
from .readers import Chunk, ChunkSource, chunk_rows

#: IDX value type codes and their (big-endian) NumPy dtypes
IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
             0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}

#: what a damaged gzip stream can raise while it is read
_GZIP_ERRORS = (OSError, EOFError, zlib.error)


class IdxHeader:
    """An IDX file's header: ``dtype`` (big-endian), ``shape`` and where the values start
    (``offset``, in the uncompressed stream)."""

    def __init__(self, path: str, dtype: np.dtype, shape: tuple, offset: int):
        self.path, self.dtype, self.shape, self.offset = path, dtype, shape, offset

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _open(path: str):
    """The file as a binary stream, decompressed when it is gzip (by its first two bytes,
    not its name, so a renamed file still reads)."""
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _read_exactly(fh, n: int, path: str, what: str) -> bytes:
    try:
        data = fh.read(n)
    except _GZIP_ERRORS as e:
        raise DataError(f"{path}: cannot read as an IDX file: the gzip data is damaged "
                        f"({e}); download the file again") from None
    if len(data) != n:
        raise DataError(f"{path}: truncated: the file ends after {len(data)} of the "
                        f"{n:,} bytes of {what}; download the file again")
    return data


def _has_more(fh) -> bool:
    """Whether bytes follow the values the header declared."""
    try:
        return bool(fh.read(1))
    except _GZIP_ERRORS:
        return False  # the values are complete; a damaged gzip trailer does not change them


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


def _read_values(path: str) -> np.ndarray:
    """The whole IDX file ``path`` as an array of its header's shape and dtype, its size
    checked against the header (truncated or with bytes left over)."""
    try:
        with _open(path) as fh:
            head = read_header(path, fh)
            data = _read_exactly(fh, head.nbytes, path,
                                 f"values the header declares ({head.shape} of {head.dtype})")
            extra = _has_more(fh)
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    if extra:
        raise DataError(f"{path}: holds more bytes than its header declares ({head.shape} of "
                        f"{head.dtype}, {head.nbytes:,} bytes); the file is damaged or not "
                        "an IDX file")
    return np.frombuffer(data, head.dtype).reshape(head.shape)


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
    raw = _read_values(src)
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
    value per image), the images a chunk of rows at a time (gzip decompressed as it goes)."""

    def __init__(self, src: str):
        self.src = src
        head = read_header(src)
        self.example_shape = _images_shape(src, head.shape)[1:]
        self.head = head
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
                    yield X, self.labels[r0:r0 + r], where
                if _has_more(fh):
                    raise DataError(f"{self.src}: holds more bytes than its header declares "
                                    f"({self.head.shape} of {self.head.dtype}); the file is "
                                    "damaged or not an IDX file")
        except OSError as e:
            raise DataError(f"{self.src}: cannot read: {e.strerror or e}") from None


def open_idx(path) -> IdxSource:
    """An IDX images file and its labels file for ``convert``."""
    return IdxSource(existing_file(path))
