"""Who may write a run directory: one process at a time, and only under a safe name.

The lock is a file ``RUN_DIR/.lock`` holding the holder's PID, locked with ``flock``. The
kernel drops an ``flock`` when its process dies, even by ``kill -9``, so a lock left behind by a
dead process is simply taken over by the next one; no PID liveness guessing (and no PID reuse
problem) is involved. The lock file is opened without following a symbolic link and must be
a regular file with one link: anything planted at ``.lock`` is refused with a message, never
truncated through. The PID written in the file is only there so the error can name the
holder:

    run directory 'runs/a' is in use by process 4242 (lock file runs/a/.lock); wait for it to
    finish or stop it (kill 4242), or write to another directory

Run names (``--name``) become one directory under a runs root, so a name may not contain a
path separator, be ``.``/``..`` or start with a dot; such names are refused rather than
silently escaping the root.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
from pathlib import Path

from ..errors import RunDirError
from .rundir import open_nofollow, write_error

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
            # O_NOFOLLOW, one link, a regular file: a link planted at .lock is refused, never
            # truncated through (open_nofollow's RunDirError names it and says to remove it).
            fd = open_nofollow(self.path, os.O_RDWR | os.O_CREAT, "lock")
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
            except OSError as e:
                os.close(fd)
                raise write_error(e, self.path, "lock") from None
            # A releasing holder unlinks the file after we opened it: our lock is then on an
            # orphaned inode that a third process could re-create. Retry on the live file.
            try:
                same = os.fstat(fd).st_ino == os.lstat(self.path).st_ino
            except FileNotFoundError:
                same = False
            except OSError as e:
                os.close(fd)
                raise write_error(e, self.path, "lock") from None
            if same:
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            data = f"{os.getpid()}\n".encode()
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(fd)
        except OSError as e:
            # Nothing of ours may stay behind: drop the (empty or partial) file while locked.
            try:
                os.unlink(self.path)
            except OSError:
                pass
            os.close(fd)
            raise write_error(e, self.path, "write the lock file") from None
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
