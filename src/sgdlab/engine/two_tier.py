"""Divergence on the host: run a chunk with the fast kernel, and find its first bad step only
when the chunk's losses or final state are not finite (see :mod:`.chunk` for the kernels)."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from ..optim import is_named


def locating(optimizer, position: int) -> int | None:
    """:class:`TwoTier`'s ``active`` for a run of ``optimizer``: the kernel's ``n_active``
    ``position`` for a named optimiser, None (the checked kernel locates) for an optax object,
    whose state may turn NaN back into numbers (see :meth:`TwoTier.locate`)."""
    return position if is_named(optimizer) else None


class TwoTier:
    """Run a chunk with the fast kernel; find its first bad step only if it diverged.

    ``fast(state, *args) -> (state, losses (K,), ok)`` and ``build_checked()``, which returns
    ``checked(state, *args) -> (state, losses (K,), first_bad)``. Calling the runner,
    ``-> (state, losses (K,) NumPy, first_bad int)``, waits for the chunk (``to_host`` reads a
    device value into NumPy). The fast kernel must leave the state it was given intact (no
    donation): a chunk whose ``ok`` is false is re-run from it.

    ``active``: the position in ``args`` of the kernel's ``n_active`` (``chunk.ACTIVE_ARG`` for
    the gathering kernel, ``batched.FED_ACTIVE_ARG`` for the fed one; None for an optax
    object's optimiser, see :meth:`locate`). With it, a bad chunk is
    first located by the fast kernel itself (:meth:`locate`): one or two re-runs of its first
    steps, far cheaper than compiling a second program. The checked kernel is built (once, on
    the first chunk that needs it) and re-runs the chunk only when those re-runs do not
    confirm the step, or without ``active``. ``compile_seconds`` totals its build time and
    ``last_compile_seconds`` is the part spent in the latest call, so the host can keep
    compilation out of training time.
    """

    def __init__(self, fast, build_checked: Callable, to_host: Callable = np.asarray,
                 active: int | None = None):
        self.fast, self._build_checked, self._to_host = fast, build_checked, to_host
        self.active = active
        self.checked = None
        self.compile_seconds = self.last_compile_seconds = 0.0

    def __call__(self, state, *args):
        self.last_compile_seconds = 0.0
        new, losses, ok = self.fast(state, *args)
        losses = self._to_host(losses)  # waits for the chunk: a clock then reads a finished one
        if bool(self._to_host(ok)):
            return new, losses, -1
        found = self.locate(state, args, losses) if self.active is not None else None
        if found is not None:
            return found
        if self.checked is None:
            t = time.perf_counter()
            self.checked = self._build_checked()
            self.last_compile_seconds = time.perf_counter() - t
            self.compile_seconds += self.last_compile_seconds
        # redo this chunk step by step from the state before it, to stop at the bad step
        new, losses, first_bad = self.checked(state, *args)
        return new, self._to_host(losses), int(self._to_host(first_bad))

    def locate(self, state, args: tuple, losses: np.ndarray):
        """The checked kernel's answer from the fast kernel: ``-> (state, losses (K,) NumPy,
        first_bad int)``, or None when it cannot tell.

        The checked kernel stops at the first step ``k`` whose loss is not finite or whose new
        state is not (``state_{k+1}``). Let ``j`` be the first non-finite loss of the chunk
        (``n``, the active steps, if none). Then the bad step is ``j`` if ``state_j`` is
        finite, else ``j - 1`` (the state went bad one step before a loss did); the fast
        kernel run for exactly ``k`` steps says which (its ``ok``), and returns the last good
        state and losses bit for bit as the checked kernel would (the same steps, zeros after
        them). When no re-run is ok (e.g. the optimiser state went NaN/inf while every loss
        stayed finite), None sends the chunk to the checked kernel.

        A re-run checks the losses before ``k`` and the state after it, not the states in
        between, so it relies on a state that went non-finite staying so: updates are added
        to the parameters, and the named optimisers' state accumulates (sums and moving
        averages keep a NaN). An optax object's state may instead be overwritten (a stored
        last gradient), which could turn NaN back into numbers: callers pass ``active`` only
        for named optimisers. ``args[active]`` must be a host integer (``np.int32``).
        """
        n = int(args[self.active])
        bad = np.flatnonzero(~np.isfinite(losses[:n]))
        j = int(bad[0]) if bad.size else n
        for k in (j, j - 1):
            if k < 0 or k == n:  # k == n is the chunk that just failed
                continue
            rerun = args[:self.active] + (np.int32(k),) + args[self.active + 1:]
            new, part, ok = self.fast(state, *rerun)
            if bool(self._to_host(ok)):
                return new, self._to_host(part), int(self._to_host(state.step)) + k
        return None
