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


def state_bytes(model, key, n_in, n_out, optimizer) -> int | None:
    """Bytes of a run's parameters, their gradient and the optimiser's state, found by
    evaluating ``model.init`` and ``optimizer.init`` abstractly (nothing is allocated), or
    None where the network's ``init`` cannot be traced (its own errors come when it runs)."""
    try:
        params = jax.eval_shape(lambda: model.init(key, n_in, n_out))
        opt = jax.eval_shape(optimizer.init, params)
    except Exception:  # noqa: BLE001 (the real init raises it, with its own message)
        return None
    size = lambda tree: sum(int(leaf.size) * leaf.dtype.itemsize  # noqa: E731
                            for leaf in jax.tree_util.tree_leaves(tree)
                            if hasattr(leaf, "dtype"))
    return 2 * size(params) + size(opt)


def check_state_fits(nbytes: int | None, what: str) -> None:
    """A :class:`ConfigError` when ``nbytes`` of parameters, gradients and optimiser state
    (:func:`state_bytes`) exceed the memory available, before anything is allocated (an
    allocation that large ends the process inside XLA)."""
    free = available_memory()
    if nbytes is not None and free is not None and nbytes > free:
        raise ConfigError(
            f"{what} needs {nbytes / GIB:,.1f} GiB for its parameters, their gradients and the "
            f"optimiser's state, more than the {free / GIB:.1f} GiB this machine has "
            "available: make the network smaller (--hidden, --channels)")
