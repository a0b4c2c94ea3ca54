"""Refuse a compiled program that cannot fit in this machine's memory, before it runs.

A run whose working memory exceeds the machine's (a cnn with ``--channels 1000000``: about
30 GB of activations on 8x8 images at batch 32) used to be killed by the operating system, with
no message. XLA knows the size of a compiled program's temporary buffers before it runs
(``Compiled.memory_analysis()``), so the training and evaluation programs are checked against
the memory the machine has available when they are compiled.
"""

from __future__ import annotations

import jax

from ..data.hostmem import GIB, available_memory
from ..errors import ConfigError

#: re-exported: the figure :func:`check_fits` compares with
__all__ = ["available_memory", "check_fits"]


def check_fits(compiled, what: str):
    """``compiled`` (a ``jax.stages.Compiled``), or a :class:`ConfigError` when its temporary
    buffers alone exceed the available memory. Only on a CPU, whose memory is the host's; a
    backend or system that gives no figure is not checked."""
    if jax.default_backend() != "cpu":
        return compiled
    try:
        need = int(compiled.memory_analysis().temp_size_in_bytes)
    except Exception:  # noqa: BLE001 (no analysis on this backend or version: nothing to say)
        return compiled
    free = available_memory()
    if free is not None and need > free:
        raise ConfigError(
            f"{what} needs {need / GIB:.1f} GiB of working memory (XLA's estimate for the "
            f"compiled program), more than the {free / GIB:.1f} GiB this machine has "
            "available: lower the batch size (--batch-size) or the network's widths "
            "(--channels, --hidden)")
    return compiled
