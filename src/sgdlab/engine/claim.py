"""Which directories sgdlab writes into: its own runs, each marked, locked and replaced whole.

Every verb that writes a run directory (``train``, ``sweep``, ``landscape``,
``compare-methods``) claims its ``--out`` first with :func:`claim_output`:

* **a marker written first.** A new or empty directory gets ``.sgdlab-run`` (JSON naming the
  verb) before anything else, so a directory is an sgdlab run of a verb exactly when it holds
  that marker. An existing directory that holds anything else (a user's project, another
  verb's run) is refused, and nothing is written into it, not even a lock file;
* **one writer.** The directory is locked (:class:`~sgdlab.engine.lock.RunLock`) for as long
  as the claim is held; a second process is refused with the holder's PID;
* **continue or replace, never mix.** An existing run of the same verb is continued in place
  when the verb continues runs (``train --resume``; a sweep re-run reusing its finished runs)
  and otherwise refused unless ``overwrite``. Overwriting builds the new run in a fresh
  hidden directory beside the old one (``.NAME.sgdlab-new-XXXXXXXX``, also marked and
  locked) and, when the run has finished, exchanges the two in one ``renameat2(...,
  RENAME_EXCHANGE)`` (two renames where the filesystem cannot: see :func:`exchange`) and
  removes the old one. A
  process killed at any moment leaves ``--out`` holding the old run whole or the new one
  complete; the hidden leftover of a killed build is removed by the next claim of the same
  ``--out`` (only a directory with the marker that no live process holds).

``--out`` itself must not be a symbolic link (its parents may be).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

from ..errors import RunDirError
from ..files import symlink_error, write_error, write_json_atomic
from .lock import LOCK_NAME, RunLock

MARKER = ".sgdlab-run"
FORMAT = 1
#: the verbs that write run directories
VERBS = ("train", "sweep", "landscape", "compare-methods")
STAGING = ".sgdlab-new-"


def read_marker(path) -> str | None:
    """The verb whose run ``path`` holds (its marker), or None (no marker, or not one of
    sgdlab's: another file planted under the name counts as none)."""
    marker = Path(path) / MARKER
    try:
        if not stat.S_ISREG(os.lstat(marker).st_mode):
            return None
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    verb = data.get("verb") if isinstance(data, dict) else None
    return verb if verb in VERBS else None


def write_marker(path, verb: str) -> None:
    write_json_atomic(Path(path) / MARKER, {"sgdlab": "run directory", "verb": verb,
                                           "format": FORMAT})


def _entries(path: Path) -> list[str]:
    try:
        return sorted(n for n in os.listdir(path) if n != LOCK_NAME)
    except OSError as e:
        raise write_error(e, path, "read") from None


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:4])
    return shown + (f" and {len(names) - 4} more" if len(names) > 4 else "")


class OutputClaim:
    """The claim of one ``--out`` (see the module docstring); a context manager.

    ``path``: where to write (``--out`` itself, or the hidden directory beside it while an
    overwrite is built); ``final``: ``--out``. Leaving the ``with`` block normally commits
    (:meth:`commit`: an overwrite is swapped in); leaving it by an exception discards what
    an overwrite built and leaves the old run as it was. The locks are released either way.
    """

    def __init__(self, final, verb: str, *, overwrite: bool = False, resume: bool = False,
                 adopt=None):
        if verb not in VERBS:
            raise ValueError(f"unknown verb {verb!r}")
        self.final = Path(final)
        self.verb, self.overwrite, self.resume, self.adopt = verb, overwrite, resume, adopt
        self.path = self.final
        self.staged = False
        self.created = False  # whether this claim made --out
        self.fresh = False    # whether it started --out afresh (wrote its marker)
        self._locks: list[RunLock] = []

    @property
    def held(self) -> bool:
        """Whether this claim holds ``--out``'s lock now."""
        return bool(self._locks)

    # -- taking it ------------------------------------------------------------------------
    def acquire(self) -> "OutputClaim":
        final = self.final
        self._check_kind()
        existed = os.path.lexists(final)
        if existed:
            self._check_contents(locked=False)  # refuse a foreign folder before writing in it
        else:
            try:
                final.mkdir(parents=True)
            except FileExistsError:
                self._check_kind()  # made meanwhile: taken below under the lock, or refused
            except OSError as e:
                raise write_error(e, final, "create run directory") from None
            else:
                self.created = True
        try:
            self._locks.append(RunLock(final).acquire())
            fresh = self._check_contents(locked=True)
            if fresh:
                write_marker(final, self.verb)
                self.fresh = True
            elif self.overwrite:
                self._stage()
            self._remove_leftovers()
        except BaseException:
            self.discard()
            self.release()
            if self.created:
                with contextlib.suppress(OSError):
                    final.rmdir()  # holds nothing (the lock file is gone with the lock)
            raise
        return self

    def _check_kind(self) -> None:
        try:
            st = os.lstat(self.final)
        except FileNotFoundError:
            return
        except OSError as e:
            raise write_error(e, self.final, "inspect") from None
        if stat.S_ISLNK(st.st_mode):
            raise symlink_error(self.final)
        if not stat.S_ISDIR(st.st_mode):
            raise RunDirError(f"{str(self.final)!r} exists and is not a directory; choose "
                              "another --out")

    def _check_contents(self, locked: bool) -> bool:
        """Whether ``--out`` is to be started afresh (empty); refuses what it may not take.
        Without the lock a foreign directory or another verb's run is refused (nothing is
        written into them); under it every decision is made."""
        final, names = self.final, _entries(self.final)
        if not names:
            return True
        verb = read_marker(final)
        if names == [MARKER] and verb == self.verb:
            return True  # marked, then stopped before it wrote anything: nothing to keep
        if verb is None and self.resume and self.adopt is not None and self.adopt(final):
            verb = self.verb  # a run of an sgdlab from before markers, being continued
            if locked:
                write_marker(final, self.verb)
        if verb is None:
            raise RunDirError(
                f"{str(final)!r} exists and is not an sgdlab run directory (it holds "
                f"{_listing(names)}); sgdlab writes only into new or empty directories and "
                f"its own runs: choose another --out (a new or empty directory)")
        if verb != self.verb:
            raise RunDirError(
                f"{str(final)!r} holds an sgdlab {verb} run; '{self.verb}' writes only its own "
                "run directories: choose another --out")
        if self.overwrite or self.resume or not locked:
            return False  # (unlocked: decided under the lock, which may name a live holder)
        raise RunDirError(
            f"{str(final)!r} already holds a {verb} run; pass --overwrite to replace it (the "
            "new run is built beside it and replaces it only when complete; overwrite=True in "
            "Python), or choose another --out" +
            (", or continue it with --resume" if verb == "train" else ""))

    def _stage(self) -> None:
        """Make, mark and lock the hidden directory the replacement is built in."""
        try:
            stage = Path(tempfile.mkdtemp(prefix=f".{self.final.name}{STAGING}",
                                          dir=self.final.parent))
        except OSError as e:
            raise write_error(e, self.final.parent, "create a directory in") from None
        self.path, self.staged = stage, True
        self._locks.append(RunLock(stage).acquire())
        write_marker(stage, self.verb)

    def _remove_leftovers(self) -> None:
        """Remove the hidden build directories of killed overwrites of ``--out``: marked as
        sgdlab's and held by no live process (their lock is free)."""
        parent, prefix = self.final.parent, f".{self.final.name}{STAGING}"
        try:
            names = [n for n in os.listdir(parent) if n.startswith(prefix)]
        except OSError:
            return
        for name in names:
            path = parent / name
            if path == self.path or not path.is_dir() or path.is_symlink() or \
                    read_marker(path) is None:
                continue
            try:
                lock = RunLock(path).acquire()
            except RunDirError:
                continue  # being built by a live process
            try:
                shutil.rmtree(path)
            except OSError:
                pass  # kept: nothing is lost by leaving it
            finally:
                lock.release()

    # -- finishing ------------------------------------------------------------------------
    def commit(self) -> Path:
        """Make the run at ``path`` the run at ``--out`` (an overwrite: swap, then remove the
        old run); ``-> --out``."""
        if not self.staged:
            return self.final
        try:
            old = exchange(self.path, self.final)  # where the old run lies now
        except OSError as e:
            raise write_error(e, self.final, "replace") from None
        self.staged = False
        # the locks moved with their directories: the new run's is now under --out
        old_lock, new_lock = self._locks
        old_lock.path, new_lock.path = Path(old) / LOCK_NAME, self.final / LOCK_NAME
        with contextlib.suppress(OSError):
            shutil.rmtree(old)
        old_lock.release()
        self._locks = [new_lock]
        self.path = self.final
        return self.final

    def discard(self) -> None:
        """Remove what an overwrite built so far (``--out`` keeps the old run)."""
        if self.staged:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.path)
            self.staged = False
            self.path = self.final

    def release(self) -> None:
        for lock in reversed(self._locks):
            lock.release()
        self._locks = []

    def __enter__(self) -> "OutputClaim":
        return self.acquire()

    def abandon(self) -> None:
        """After a failure: :meth:`discard`; and if this claim started ``--out`` afresh and
        nothing but the marker was written, remove the marker (and ``--out`` if this claim
        made it): a command refused before it wrote anything leaves nothing behind."""
        self.discard()
        if self.fresh and set(_entries(self.final)) <= {MARKER}:
            with contextlib.suppress(OSError):
                (self.final / MARKER).unlink(missing_ok=True)
                self.release()  # the lock file goes with the lock
                if self.created:
                    self.final.rmdir()

    def __exit__(self, exc_type, *exc) -> None:
        try:
            if exc_type is None:
                self.commit()
            else:
                self.abandon()
        finally:
            self.release()


def claim_output(final, verb: str, *, overwrite: bool = False, resume: bool = False,
                 adopt=None) -> OutputClaim:
    """An :class:`OutputClaim` of ``final`` for ``verb`` (use it with ``with``).

    ``resume``: an existing run of ``verb`` is continued in place; ``overwrite``: it is
    replaced by a run built beside it; neither: it is refused. ``adopt(path) -> bool`` may
    accept, when continuing, an unmarked directory as a run of ``verb`` (a run written before
    markers existed); the marker is then added.
    """
    return OutputClaim(final, verb, overwrite=overwrite, resume=resume, adopt=adopt)


# --------------------------------------------------------------------------------------------
# the swap

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a, b) -> str:
    """Put the directory ``a`` at ``b`` and the directory at ``b`` aside, atomically where the
    system can; ``->`` where the former ``b`` now lies.

    Linux ``renameat2`` with ``RENAME_EXCHANGE`` swaps the two entries in one step (the former
    ``b`` then lies at ``a``). Where the call or the filesystem does not support it, ``b`` is
    renamed to ``b.sgdlab-old-XXXXXXXX`` and then ``a`` to ``b``: a kill between the two
    renames leaves ``b`` absent and both runs whole under their hidden names (the old one is
    never taken for a leftover and removed)."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        renameat2 = None
    if renameat2 is not None:
        if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b),
                     _RENAME_EXCHANGE) == 0:
            return os.fspath(a)
        err = ctypes.get_errno()
        if err not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise OSError(err, os.strerror(err), os.fspath(b))
    b = Path(b)
    aside = b.parent / f".{b.name}.sgdlab-old-{os.urandom(4).hex()}"
    os.rename(b, aside)
    os.rename(a, b)
    return os.fspath(aside)
