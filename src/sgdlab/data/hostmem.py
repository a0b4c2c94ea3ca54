"""Host arrays a CPU device can use in place, without a copy.

On the CPU backend ``jax.device_put`` aliases a NumPy array instead of copying it when the array
is C-contiguous, of a dtype XLA takes as is, and its data starts on a 64-byte boundary. NumPy's
own allocator only promises 16 bytes, so most arrays are copied; on a virtual machine, where
every freshly touched page is slow to fault in, copying a 188 MB training set costs ~90 ms per
fit (more than training one epoch of it at batch 512). Arrays made here are aligned, so each
fit on the same data starts without moving it.

The device then reads the NumPy memory directly: such an array must not be written while a fit
that uses it runs (sgdlab never does; the arrays made here are private to a Dataset or a fit).

Sizes read from a file (an IDX or ``.npy`` header, a checkpoint, a shard manifest) are checked
with :func:`check_allocation` before anything of that size is allocated: a header that lies
(an IDX file claiming 2^31 images) or data larger than this machine is one message naming the
file, never a ``MemoryError`` or the process being killed.
"""

from __future__ import annotations

import numpy as np

from ..errors import DataError

#: Byte alignment at which the CPU backend aliases instead of copying.
ALIGN = 64
GIB = 2 ** 30


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's ``MemAvailable``), or None where
    the system does not say."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def size_text(nbytes: int) -> str:
    """``nbytes`` for a person: ``"3.2 GiB"``, ``"512.0 MiB"``, ``"20.0 KiB"``, ``"7 bytes"``."""
    for unit, size in (("TiB", 2 ** 40), ("GiB", GIB), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if nbytes >= size:
            return f"{nbytes / size:,.1f} {unit}"
    return f"{nbytes:,} bytes"


def check_allocation(nbytes: int, source: str, what: str, fix: str) -> None:
    """A :class:`DataError` when ``nbytes`` (read from ``source``, e.g. a header's shape times
    its item size) exceed the memory this machine has available; nothing is allocated here.

    ``what`` says what would be held (``"its 60,000 images as float32"``), ``fix`` how to do
    without (stream the file, lower a setting). A system that gives no figure is not checked.
    """
    free = available_memory()
    if free is not None and nbytes > free:
        raise DataError(f"{source}: {what} need {size_text(nbytes)} of memory, more than the "
                        f"{size_text(free)} this machine has available; {fix}")


def is_aligned(a: np.ndarray) -> bool:
    """Whether ``a`` is C-contiguous and starts on an :data:`ALIGN`-byte boundary."""
    return a.flags.c_contiguous and a.ctypes.data % ALIGN == 0


def empty_aligned(shape, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` whose data is :data:`ALIGN`-aligned.

    Over-allocates ``ALIGN`` bytes and views the aligned part; the view keeps the buffer alive.
    """
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in np.atleast_1d(shape))
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + ALIGN, np.uint8)
    start = (-raw.ctypes.data) % ALIGN
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def aligned(a, dtype=None) -> np.ndarray:
    """``a`` as an aligned C-contiguous array of ``dtype`` (default: its own).

    Returns ``a`` itself when it already qualifies, so calling this again costs nothing.
    """
    a = np.asarray(a)
    dtype = a.dtype if dtype is None else np.dtype(dtype)
    if a.dtype == dtype and is_aligned(a):
        return a
    out = empty_aligned(a.shape, dtype)
    np.copyto(out, a, casting="unsafe")
    return out
