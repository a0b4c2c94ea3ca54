"""JAX's persistent compilation cache, switched on for a sweep's directory.

With the learning rate a runtime input, a sweep compiles one training program per batch size;
the cache keeps those programs on disk, so a re-run or resumed sweep (and the seeds of a test
suite's repeated settings) load them instead of compiling again.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from ..errors import RunDirError
from ..files import make_directory


@contextlib.contextmanager
def compile_cache_in(path: str | Path) -> Iterator[Path]:
    """Keep compiled programs on disk under ``path`` inside the block (JAX's persistent
    compilation cache); on leaving, the process's previous cache setting is back.

    A sweep compiles one chunk kernel per batch size; with the cache every resumed or re-run
    sweep loads it instead (about 0.1 s instead of about 1 s each on a 2-core CPU).
    Compilation is never part of the measured training time either way. The setting is
    process-wide (JAX keeps one), hence restored: a sweep called from Python or a test leaves
    the caller's own cache, or none, as it found it.

    ``path`` must not be a symbolic link, nor hold one (:class:`RunDirError`): JAX writes the
    cache's files by name.
    """
    import jax
    path = make_directory(path, "compile cache")
    links = sorted(e.name for e in os.scandir(path) if e.is_symlink())
    if links:  # JAX writes its entries by name: a planted link would be written through
        raise RunDirError(f"the compile cache {str(path)!r} holds symbolic links "
                          f"({', '.join(links[:3])}{' ...' if len(links) > 3 else ''}); sgdlab "
                          "does not write through links: remove them, or give another "
                          "--compile-cache (or 'off')")
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
