"""Who may write a run directory: one process at a time, and only under a safe name.

The lock is a file ``RUN_DIR/.lock`` holding the holder's PID, locked with ``flock``. The
kernel drops an ``flock`` when its process dies, even by ``kill -9``, so a lock left behind by a
dead process is simply taken over by the next one; no PID liveness guessing (and no PID reuse
problem) is involved. The PID written in the file is only there so the error can name the
holder:

    run directory 'runs/a' is in use by process 4242 (lock file runs/a/.lock); wait for it to
    finish or stop it (kill 4242), or write to another directory

Run names (``--name``) become one directory under a runs root, so a name may not contain a
path separator, be ``.``/``..`` or start with a dot; such names are refused rather than
silently escaping the root.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path

from ..errors import RunDirError

LOCK_NAME = ".lock"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.=+-]*$")


class RunLock:
    """An exclusive lock on a run directory, held from :meth:`acquire` to :meth:`release`.

    Usable as a context manager. Locks conflict between processes and between two
    :class:`RunLock` objects of one process (``flock`` locks belong to the open file).
    """

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> "RunLock":
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise RunDirError(f"cannot lock run directory {str(self.path.parent)!r}: "
                                  f"{e.strerror}; check that it is writable") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_pid(fd)
                os.close(fd)
                who = f"process {holder}" if holder else "another process"
                stop = f" (kill {holder})" if holder else ""
                raise RunDirError(
                    f"run directory {str(self.path.parent)!r} is in use by {who} (lock file "
                    f"{self.path}); wait for it to finish or stop it{stop}, or write to "
                    "another directory") from None
            # A releasing holder unlinks the file after we opened it: our lock is then on an
            # orphaned inode that a third process could re-create. Retry on the live file.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and drop the lock (unlink first, while still holding it)."""
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def check_run_name(name: str) -> str:
    """``name`` if it is safe as one directory under a runs root, else :class:`RunDirError`.

    Allowed: letters, digits and ``_ . = + -``, not starting with a dot (so ``..``, ``.``
    and hidden names are out) and at most 128 characters.

    >>> check_run_name("softmax-b32")
    'softmax-b32'
    """
    if not isinstance(name, str) or not name:
        raise RunDirError("run name is empty; give a name such as 'softmax-b32'")
    if "/" in name or "\\" in name or os.sep in name or (os.altsep and os.altsep in name):
        raise RunDirError(f"run name {name!r} contains a path separator; a run name is one "
                          "directory name (use --out for an explicit path)")
    if name == "." or ".." in name:
        raise RunDirError(f"run name {name!r} refers to a parent or current directory; "
                          "choose a plain name such as 'softmax-b32'")
    if len(name) > 128 or not _SAFE_NAME.match(name):
        raise RunDirError(f"run name {name!r} is not allowed: use at most 128 letters, digits "
                          "and _ . = + -, not starting with a dot")
    return name


def run_dir_for_name(name: str, root: str | os.PathLike = "runs") -> Path:
    """``root/name`` after :func:`check_run_name`."""
    return Path(root) / check_run_name(name)
