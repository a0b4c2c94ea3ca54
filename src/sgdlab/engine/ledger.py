"""A run's bookkeeping between compiled chunks, shared by the in-memory and the fed loops.

:class:`RunLedger` counts what the host loop has done so far and writes the history rows
(columns in :mod:`.history`):

* ``step`` (optimisation steps applied) and ``examples`` (real examples seen: masked padding
  slots are not counted);
* two clocks: ``train_seconds``, pure update time, to which the loop adds each chunk's time
  *minus* any compilation in it, and ``eval_seconds``, measured here around each evaluation.
  Neither includes the other nor compilation, so curves against training time compare the
  updates alone; ``wall_seconds`` counts everything since ``wall0``;
* ``since_row = [sum of step losses, steps]`` since the previous row, whose mean is the next
  row's ``train_loss``; every step's loss is also kept in order (``step_losses``);
* ``last_eval = {"step", "time"}``: step and training time of the latest row, from which the
  evaluation schedule measures its next boundary;
* ``stop_requested``: a callback returned ``True`` from a ``"row"`` event.

Rows are appended in step order, each carrying the counters as they stood at that step. With
several processes, ``agree`` makes every process use process 0's training clock, so
time-based decisions (evaluate every T seconds, ``max_time``) fall on the same step in all.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import numpy as np

from .history import History
from .schedule import as_clock


class RunLedger:
    """Counters, clocks and history of one training call (see the module docstring).

    ``params()`` returns the current parameters (read only when a row is added),
    ``evaluate(params) -> dict`` the validation columns (``None``: no validation),
    ``on_row(row)`` sees each row after it is appended (a run directory's live log),
    ``callback`` receives the ``"start"``, ``"chunk"`` and ``"row"`` events.
    ``clock``: the run's epoch clock (or steps per epoch, for one batch size), which turns
    steps into the ``epoch`` column; ``columns(step)``: more columns of a row (a batch
    schedule's ``batch_size`` and ``lr``), or None.
    """

    def __init__(self, clock, wall0: float, params: Callable, *, step: int,
                 evaluate: Callable | None = None, callback: Callable | None = None,
                 on_row: Callable | None = None, agree: Callable[[float], float] | None = None,
                 columns: Callable[[int], dict] | None = None):
        self.clock = as_clock(clock)
        self._columns = columns
        self.wall0 = wall0
        self.step = step
        self.examples = 0
        self.train_seconds = 0.0
        self.eval_seconds = 0.0
        self.since_row = [0.0, 0]
        self.last_eval = {"step": step, "time": 0.0}
        self.stop_requested = False
        self.history = History()
        self.step_losses: list[np.ndarray] = []
        self._params, self._evaluate = params, evaluate
        self._callback, self._on_row = callback, on_row
        self._agree = agree or (lambda seconds: seconds)

    def announce(self, total_steps: int | None, chunk_steps: int, compile_seconds: float,
                 max_time: float | None) -> None:
        """The callback's ``"start"`` event: the run's shape, before the first chunk."""
        if self._callback:
            self._callback({"event": "start", "steps_per_epoch": self.spe,
                            "total_steps": total_steps, "chunk_steps": chunk_steps,
                            "compile_seconds": compile_seconds, "max_time": max_time})

    def add_row(self) -> dict:
        """Evaluate at the current step and append the history row; ``-> row``."""
        t = time.perf_counter()
        row = {"step": self.step, "epoch": self.clock.epochs(self.step),
               "examples": self.examples}
        if self._columns is not None:
            row.update(self._columns(self.step))
        row["train_seconds"] = self.train_seconds
        total, count = self.since_row
        row["train_loss"] = total / count if count else math.nan
        params = self._params()
        if self._evaluate is not None:
            row.update(self._evaluate(params))
        self.eval_seconds += time.perf_counter() - t
        row["eval_seconds"] = self.eval_seconds
        row["wall_seconds"] = time.perf_counter() - self.wall0
        self.since_row = [0.0, 0]
        self.last_eval = {"step": self.step, "time": self.train_seconds}
        self.history.append(row)
        if self._on_row is not None:
            self._on_row(row)
        if self._callback and \
                self._callback({"event": "row", "row": row, "params": params}) is True:
            self.stop_requested = True
        return row

    def add_chunk(self, seconds: float, losses: np.ndarray, counts: np.ndarray, n: int,
                  first_bad: int) -> int:
        """Account for one kernel call of ``n`` steps that took ``seconds`` of training time.

        ``losses: (K,)`` per-step objectives; ``counts: (K, ...)`` real examples per step (a 0/1
        mask or counts, summed); ``first_bad``: the step count of the first non-finite step, or
        ``-1``. Only the steps before it count. ``-> done``, the number of steps applied.
        """
        self.train_seconds = self._agree(self.train_seconds + seconds)
        done = n if first_bad < 0 else first_bad - self.step
        self.step_losses.append(losses[:done].copy())
        # float64 sums: float32 losses near 3e38 (a run about to diverge) overflow float32.
        self.since_row[0] += float(losses[:done].sum(dtype=np.float64))
        self.since_row[1] += done
        self.examples += int(counts[:done].sum())
        self.step += done
        if self._callback:
            self._callback({"event": "chunk", "step": self.step,
                            "epoch": self.clock.epochs(self.step),
                            "train_seconds": self.train_seconds, "examples": self.examples,
                            "loss": float(losses[:done].mean(dtype=np.float64)) if done
                            else math.nan})
        return done

    @property
    def spe(self) -> int:
        """Steps per epoch at the batch size of the run's first phase (for its record)."""
        return self.clock.spe

    def counters(self) -> dict:
        """The loop-state entries a checkpoint stores (see :meth:`Session.snapshot`)."""
        return {"history": self.history, "examples": self.examples,
                "train_seconds": self.train_seconds, "eval_seconds": self.eval_seconds,
                "wall_seconds": time.perf_counter() - self.wall0,
                "since_row": list(self.since_row), "last_eval": dict(self.last_eval)}

    def resume(self, loop: dict) -> None:
        """Continue the counters of a checkpoint's loop state (the keys of :meth:`counters`)."""
        self.history.extend(loop["history"])
        self.train_seconds, self.eval_seconds = loop["train_seconds"], loop["eval_seconds"]
        self.wall0 -= loop["wall_seconds"]
        self.examples, self.since_row = loop["examples"], list(loop["since_row"])
        self.last_eval = dict(loop["last_eval"])

    def totals(self) -> dict:
        """The :class:`FitResult` fields this ledger knows."""
        losses = np.concatenate(self.step_losses) if self.step_losses else \
            np.zeros(0, np.float32)
        return {"history": self.history, "steps": self.step,
                "epochs": self.clock.epochs(self.step),
                "examples": self.examples, "steps_per_epoch": self.spe,
                "train_seconds": self.train_seconds, "eval_seconds": self.eval_seconds,
                "wall_seconds": time.perf_counter() - self.wall0, "step_losses": losses}
