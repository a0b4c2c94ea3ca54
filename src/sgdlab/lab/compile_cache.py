"""JAX's persistent compilation cache, switched on for a sweep.

With the learning rate a runtime input, a sweep compiles one training program per batch size;
the cache keeps those programs on disk, so a re-run or resumed sweep, and every later sweep of
the same model and data shapes, load them instead of compiling again.

The cache holds compiled machine code that JAX loads and runs. So it lives in the user's own
cache directory (:func:`user_cache_dir`), never in a run directory: a run directory is data
that may come from anyone (docs/run-directories.md), and a program planted in it would run on
the next resume. A cache directory must belong to the user and be writable by no one else.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import Iterator

from ..errors import RunDirError

#: Where the compiled programs go under the user's cache directory (the command line's help
#: names it: this module imports nothing heavy at its top).
CACHE_SUBDIR = ("sgdlab", "compile-cache")


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/sgdlab/compile-cache``, or ``~/.cache/sgdlab/compile-cache`` when
    ``XDG_CACHE_HOME`` is unset or not an absolute path (the XDG base directory rule)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root.joinpath(*CACHE_SUBDIR)


def private_directory(path: str | Path) -> Path:
    """``path`` as a directory only this user can write: created with mode 0700 when missing;
    refused (:class:`RunDirError`) when it is a symbolic link, holds one, belongs to another
    user or is writable by group or others: whoever can write into it can make sgdlab run
    their code."""
    from ..files import make_directory
    p = Path(path)
    make_directory(p.parent, "compile cache's parent")
    try:
        os.mkdir(p, 0o700)
    except OSError:
        pass  # it exists, or make_directory below names why it cannot be made
    p = make_directory(p, "compile cache")
    links = sorted(e.name for e in os.scandir(p) if e.is_symlink())
    if links:  # JAX writes its entries by name: a planted link would be written through
        raise RunDirError(f"the compile cache {str(p)!r} holds symbolic links "
                          f"({', '.join(links[:3])}{' ...' if len(links) > 3 else ''}); sgdlab "
                          "does not write through links: remove them, or give another "
                          "--compile-cache (or 'off')")
    st = os.stat(p)
    if st.st_uid != os.geteuid():
        raise RunDirError(f"the compile cache {str(p)!r} belongs to another user (uid "
                          f"{st.st_uid}); its programs would run as you: give a directory of "
                          "your own with --compile-cache (or 'off')")
    if st.st_mode & 0o022:
        raise RunDirError(f"the compile cache {str(p)!r} is writable by other users (mode "
                          f"{stat.filemode(st.st_mode)}); its programs would run as you: "
                          f"chmod go-w {str(p)!r}, or give another --compile-cache (or 'off')")
    return p


@contextlib.contextmanager
def compile_cache_in(path: str | Path) -> Iterator[Path]:
    """Keep compiled programs on disk under ``path`` inside the block (JAX's persistent
    compilation cache); on leaving, the process's previous cache setting is back.

    A sweep compiles one chunk kernel per batch size; with the cache every resumed or re-run
    sweep loads it instead (about 0.1 s instead of about 1 s each on a 2-core CPU).
    Compilation is never part of the measured training time either way. The setting is
    process-wide (JAX keeps one), hence restored: a sweep called from Python or a test leaves
    the caller's own cache, or none, as it found it.

    ``path`` is checked by :func:`private_directory`: JAX writes the cache's files by name
    and runs the programs it reads back.
    """
    import jax
    path = private_directory(path)
    previous = (jax.config.jax_compilation_cache_dir,
                jax.config.jax_persistent_cache_min_compile_time_secs)
    _use(str(path), 0.0)
    try:
        yield path
    finally:
        _use(*previous)


def _use(directory: str | None, min_compile_seconds: float) -> None:
    import jax
    from jax.experimental.compilation_cache import compilation_cache
    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_seconds)
    # JAX decides once per process whether the cache is in use; make it look again.
    compilation_cache.reset_cache()
