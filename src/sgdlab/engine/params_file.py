"""``params.npz`` read as untrusted input: every size checked before anything is allocated.

A saved model's parameters are an ``.npz`` archive of named float arrays (``"layers/0/W"``,
never pickle). :func:`read_params` reads them into the structure of the network that
``model.json`` describes, whose shapes come from ``jax.eval_shape`` of its ``init`` (nothing
allocated). Before any array is read:

* the file must be a regular file, opened without blocking (a FIFO or device planted in its
  place is refused at once, never waited on);
* the archive must open (an empty or truncated file is ``BadZipFile``/``EOFError`` inside
  ``zipfile``: one message);
* each expected array's header must declare a floating-point dtype and exactly the network's
  shape, and the member must hold that many bytes;
* the parameters together must fit in the memory available.

After reading, every value must be finite: a diverged run keeps its last finite parameters,
so NaN or inf in the file means it was damaged or changed. Each failure is one
:class:`~sgdlab.errors.RunDirError` naming the file, the array and what to do.
"""

from __future__ import annotations

import math
import os
import stat
import zipfile
import zlib

import jax
import numpy as np

from ..errors import RunDirError
from .memory import GIB, available_memory
from .rundir import flatten_params

#: what reading a damaged archive raises (zipfile: NotImplementedError for an unknown
#: compression, RuntimeError for an encrypted member; NumPy: ValueError for a bad header)
ARCHIVE_ERRORS = (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
                  RuntimeError, UnicodeDecodeError, ValueError, SyntaxError)

AGAIN = "train the model again, or restore the run directory from a copy"


def open_regular(path, what: str) -> int:
    """A read-only descriptor of ``path`` if it is a regular file; else :class:`RunDirError`.
    ``what``: the file's part in a run, for the messages (``"parameters"``).

    Opened with ``O_NONBLOCK`` so that a FIFO at ``path`` is refused at once rather than
    waited on (an open for reading blocks until a writer appears)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise RunDirError(f"{path}: no such file, so the run directory has no saved {what}: "
                          f"it is not a finished training run ({AGAIN})") from None
    except OSError as e:
        raise RunDirError(f"{path}: cannot open the {what}: {e.strerror or e}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise RunDirError(f"{path}: is not a regular file (a FIFO, a device or a directory), "
                          f"so it cannot hold the {what}: remove it, then {AGAIN}")
    os.set_blocking(fd, True)
    return fd


def read_params(path, like):
    """The parameters in ``path``, in the structure of ``like`` (a pytree of
    ``jax.ShapeDtypeStruct``, e.g. ``jax.eval_shape`` of the network's ``init``), as float
    NumPy arrays of exactly those shapes; :class:`RunDirError` for anything else (see the
    module docstring)."""
    names = list(flatten_params(like))
    leaves = jax.tree_util.tree_leaves(like)
    shapes = [tuple(leaf.shape) for leaf in leaves]
    need = sum(math.prod(s) for s in shapes) * 4  # at least float32
    free = available_memory()
    if free is not None and need > free:
        raise RunDirError(f"{path}: the network model.json describes has "
                          f"{need // 4:,} parameters ({need / GIB:.1f} GiB), more than the "
                          f"{free / GIB:.1f} GiB of memory available: model.json is damaged "
                          f"or the model is too large for this machine")
    fd = open_regular(path, "parameters")
    with os.fdopen(fd, "rb") as fh:
        try:
            with zipfile.ZipFile(fh) as archive:
                arrays = [_read_array(archive, path, n, s, leaf.dtype)
                          for n, s, leaf in zip(names, shapes, leaves)]
        except RunDirError:
            raise
        except ARCHIVE_ERRORS as e:
            raise RunDirError(f"{path}: the parameters cannot be read, the file is damaged or "
                              f"truncated ({type(e).__name__}: {e}); {AGAIN}") from None
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(like), arrays)


def _read_array(archive: zipfile.ZipFile, path, name: str, shape: tuple,
                dtype_wanted) -> np.ndarray:
    """One array of the archive, its header checked against ``shape`` before its data is
    read; returned in the network's dtype ``dtype_wanted`` (native byte order: a stored
    ``>f2`` or ``float64`` is converted), its values checked finite after conversion (a
    float64 beyond float32's range is as damaged as an inf)."""
    try:
        info = archive.getinfo(f"{name}.npy")
    except KeyError:
        raise RunDirError(f"{path}: has no array {name!r}, which the network model.json "
                          f"describes needs; the parameters do not match the model: "
                          f"{AGAIN}") from None
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        got, fortran, dtype = read(member)
        if dtype.kind != "f":
            raise RunDirError(f"{path}: array {name!r} holds {dtype} values; parameters are "
                              f"floating-point numbers: the file is damaged or was not written "
                              f"by sgdlab ({AGAIN})")
        if tuple(got) != shape:
            raise RunDirError(f"{path}: array {name!r} has shape {tuple(got)}, the network "
                              f"model.json describes needs {shape}: the saved model is damaged "
                              f"or does not match its parameters ({AGAIN})")
        declared = math.prod(shape) * dtype.itemsize
        if info.file_size - member.tell() < declared:
            raise RunDirError(f"{path}: array {name!r} is truncated: its header declares "
                              f"{declared:,} bytes, the archive holds "
                              f"{max(info.file_size - member.tell(), 0):,} ({AGAIN})")
        data = member.read(declared)
    if len(data) != declared:
        raise RunDirError(f"{path}: array {name!r} is truncated ({len(data):,} of {declared:,} "
                          f"bytes; {AGAIN})")
    stored = np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")
    with np.errstate(over="ignore", invalid="ignore"):
        array = np.array(stored, dtype=np.dtype(dtype_wanted).newbyteorder("="))
    bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
    if bad:
        raise RunDirError(f"{path}: array {name!r} holds {bad:,} NaN or infinite value"
                          f"{'s' if bad > 1 else ''} (as {array.dtype}); a run keeps its last "
                          f"finite parameters, so the file was damaged or changed: {AGAIN}")
    return array
