"""Writing files that are complete or absent, never written through a planted link.

Every write goes to a temporary name created exclusively in the same directory, is flushed and
fsynced, then renamed over the final name, so a killed process leaves each file complete or
absent; a symbolic link at the final name is refused. Failures are one
:class:`~sgdlab.errors.RunDirError` saying what, where and how to fix it. Used by run
directories (:mod:`sgdlab.engine.rundir`), shard sets and exports alike.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shlex
import stat
import tempfile
from pathlib import Path

import numpy as np

from .errors import RunDirError


def current_umask() -> int:
    """The process's file-creation mask (reading it means setting it; set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------------------------
# safe writes: no symlink followed, every OSError one RunDirError
# --------------------------------------------------------------------------------------------

_NO_SPACE = {errno.ENOSPC, errno.EFBIG}
_NOT_WRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS}


def write_error(e: OSError, path, what: str = "write") -> RunDirError:
    """The :class:`RunDirError` for an ``OSError`` met while writing ``path``: what failed,
    where, and how to fix it (by ``errno``)::

        cannot write 'runs/a/metrics.json': No space left on device; free space on the device
        holding 'runs/a' or write elsewhere (--out)

    A symbolic link met on the way (``ELOOP`` from ``O_NOFOLLOW``) is :func:`symlink_error`.
    """
    where = Path(path).parent
    reason = e.strerror or str(e)
    if e.errno in _NO_SPACE:
        fix = f"free space on the device holding {str(where)!r} or write elsewhere (--out)"
    elif e.errno == errno.EDQUOT:
        fix = (f"free space under your quota on the device holding {str(where)!r} (or have the "
               "quota raised) or write elsewhere (--out)")
    elif e.errno in _NOT_WRITABLE:
        fix = f"make {str(where)!r} writable or write elsewhere (--out)"
    elif e.errno == errno.EIO:
        fix = (f"the device holding {str(where)!r} reported an I/O error: check it, or write "
               "elsewhere (--out)")
    elif e.errno == errno.ELOOP:
        return symlink_error(path)
    else:
        fix = f"check {str(where)!r} or write elsewhere (--out)"
    return RunDirError(f"cannot {what} {str(path)!r}: {reason}; {fix}")


def symlink_error(path) -> RunDirError:
    return RunDirError(f"{str(path)!r} is a symbolic link; sgdlab does not write through links: "
                       f"remove it (rm {shlex.quote(str(path))}) and run again")


def refuse_symlink(path) -> None:
    """:class:`RunDirError` if ``path`` is a symbolic link (``lstat``; a missing path is fine)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise write_error(e, path, "inspect") from None
    if stat.S_ISLNK(st.st_mode):
        raise symlink_error(path)


def make_directory(path, what: str = "directory") -> Path:
    """``path`` as a directory sgdlab writes into, created (with its parents) if missing.

    A symbolic link at ``path`` is refused (:func:`symlink_error`), before and after creating
    it: every file written under a planted link (a sweep's ``runs/``, the compile cache, a
    TensorBoard run) would land in whatever it points to. Anything else that is not a
    directory is refused too; an ``OSError`` is one :class:`RunDirError`."""
    p = Path(path)
    refuse_symlink(p)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        pass  # a file: refused below
    except OSError as e:
        raise write_error(e, p, f"create the {what}") from None
    try:
        st = os.lstat(p)
    except OSError as e:
        raise write_error(e, p, f"create the {what}") from None
    if stat.S_ISLNK(st.st_mode):
        raise symlink_error(p)
    if not stat.S_ISDIR(st.st_mode):
        raise RunDirError(f"{what} {str(p)!r} exists and is not a directory; remove it or "
                          "write elsewhere (--out)")
    return p


def open_nofollow(path, flags: int, what: str = "open", mode: int = 0o644) -> int:
    """``os.open(path, flags | O_NOFOLLOW | O_CLOEXEC)`` for a fixed name in a run directory.

    A symbolic link at ``path`` is refused, and so is anything but a regular file with one link
    (a hard link planted there would let a truncate or append reach another file). Every
    ``OSError`` becomes a :class:`RunDirError` (see :func:`write_error`).
    """
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, mode)
    except OSError as e:
        if e.errno == errno.ELOOP or os.path.islink(path):
            raise symlink_error(path) from None
        raise write_error(e, path, what) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
            kind = "not a regular file" if not stat.S_ISREG(st.st_mode) else \
                f"a file with {st.st_nlink} hard links"
            raise RunDirError(f"{str(path)!r} is {kind}; sgdlab only writes files of its own "
                              f"there: remove it (rm {shlex.quote(str(path))}) and run again")
        os.set_blocking(fd, True)
    except OSError as e:
        os.close(fd)
        raise write_error(e, path, what) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def append_whole(fd: int, data: bytes, path) -> None:
    """Append ``data`` to ``fd`` (opened ``O_APPEND``) with one ``os.write``, all or nothing.

    On an error or a short write the file is cut back to its length before, so a reader never
    sees part of ``data`` (a torn line); then :class:`RunDirError` says what happened.
    """
    try:
        start = os.fstat(fd).st_size
    except OSError as e:
        raise write_error(e, path, "append to") from None
    try:
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (wrote {written} of "
                                        f"{len(data)} bytes)")
    except OSError as e:
        try:
            os.ftruncate(fd, start)
        except OSError:
            pass  # the reader still ignores a last line without its newline
        raise write_error(e, path, "append to") from None


def replace_file(path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; raises ``OSError`` (callers word the error).

    The bytes go to a temporary file created exclusively under an unpredictable name beside
    ``path`` (``mkstemp``: ``O_CREAT | O_EXCL``, so no planted file or link is ever opened),
    are fsynced, and the file is renamed over ``path``. A symbolic link at ``path`` is refused
    (:class:`RunDirError`) rather than replaced. On any failure the temporary file is removed
    and ``path`` is as it was: complete or absent.
    """
    path = Path(path)
    refuse_symlink(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; a run file is shared like any other program's output, so it
        # gets the mode open() would give it: 0666 less the umask (0644 under the usual 022).
        os.fchmod(fd, 0o666 & ~current_umask())
        view = memoryview(data)
        while view:  # a short write is continued; a full disk raises ENOSPC
            written = os.write(fd, view)
            if written <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            view = view[written:]
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """:func:`replace_file`, with any ``OSError`` turned into one :class:`RunDirError`."""
    try:
        replace_file(path, data)
    except OSError as e:
        raise write_error(e, path) from None


def write_text_atomic(path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def _clean(o):
    """JSON has no NaN/inf: write them as null."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {str(k): _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    return o


def write_json_atomic(path, obj) -> None:
    write_text_atomic(path, json.dumps(_clean(obj), indent=2, default=_json_default) + "\n")


class AtomicWriter:
    """A file written a piece at a time that appears whole or not at all: the pieces go to a
    temporary file created exclusively under an unpredictable name beside ``path``, which
    :meth:`commit` fsyncs and moves to ``path``; leaving the ``with`` block by an exception
    (or without committing) removes it, and ``path`` is as it was.

    ``replace=False`` never replaces a file that appeared at ``path`` meanwhile (the move is
    a hard link, which fails if the name exists); a symbolic link at ``path`` is refused.
    Every ``OSError`` is one :class:`RunDirError`::

        with AtomicWriter("preds.csv") as out:
            for block in blocks:
                out.write(block)
            out.commit()
    """

    def __init__(self, path, replace: bool = True):
        self.path, self.replace = Path(path), replace
        self.fd, self.tmp = -1, None

    def __enter__(self) -> "AtomicWriter":
        refuse_symlink(self.path)
        try:
            self.fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                                 dir=self.path.parent)
            os.fchmod(self.fd, 0o666 & ~current_umask())
        except OSError as e:
            raise write_error(e, self.path) from None
        return self

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:  # a short write is continued; a full disk raises ENOSPC
                written = os.write(self.fd, view)
                if written <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[written:]
        except OSError as e:
            raise write_error(e, self.path) from None

    def commit(self) -> None:
        try:
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = -1
            refuse_symlink(self.path)
            if self.replace:
                os.replace(self.tmp, self.path)
            else:
                os.link(self.tmp, self.path)  # EEXIST if the name was taken meanwhile
                os.unlink(self.tmp)
            self.tmp = None
        except OSError as e:
            if e.errno == errno.EEXIST:
                raise RunDirError(f"{str(self.path)!r} appeared while it was being written; "
                                  "it was left as it is: write elsewhere") from None
            raise write_error(e, self.path) from None

    def __exit__(self, *exc) -> bool:
        if self.fd >= 0:
            os.close(self.fd)
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except OSError:
                pass
        return False
