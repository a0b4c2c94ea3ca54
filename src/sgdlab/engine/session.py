"""The fit loop's link to its run directory: checkpoints, live history, signals, resume.

:func:`sgdlab.engine.train` takes an optional ``session`` and calls it at a few points, all
between compiled chunks (a checkpoint is only ever taken at a chunk boundary):

==================  ===========================================================================
``restore(like)``   before the first chunk: the loop state to continue from, or ``None``
``on_row(row)``     each history row, appended to ``history.csv`` at once
``begin(snap)``     the loop starts: install SIGTERM/SIGINT handlers; checkpoint step 0
``at_boundary``     after each chunk: checkpoint if the schedule says so or a signal came;
                    ``True`` means stop now (a signal: the checkpoint is already committed)
``finish``          the loop ended: final checkpoint unless the run diverged
==================  ===========================================================================

``snap`` is a callable returning the loop state dict (see :meth:`Session.snapshot`), so nothing
is copied off the device unless a checkpoint is actually taken.

Several processes (``begin(..., placement=)`` with ``placement.world > 1``): every process has
a session and takes every decision at the same chunk boundary, because each checkpoint and each
stop must cut the same global step. Step and epoch triggers are the same everywhere by
construction; the two inputs that are not (a signal that reached some processes only, the wall
clock) are shared in one small gather per boundary: any process's signal stops all, and process
0's clock decides a ``"30s"`` trigger. Only the session with a ``run_dir`` (process 0's) writes.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, choices_message
from .checkpoint import CheckpointStore, Snapshot, state_from_arrays, state_to_arrays
from .history import History
from .historylog import HistoryLog
from .schedule import EvalSchedule

DIVERGENCE_POLICIES = ("stop", "halve-lr")


@dataclass(frozen=True)
class CheckpointPolicy:
    """When to checkpoint and what to do on divergence.

    ``every`` uses the evaluation-schedule grammar (``"200 steps"``, ``"30s"`` of wall time,
    ``"1 epoch"``, combined with commas; ``"end"`` for only the start and the end). A
    checkpoint is taken at the first chunk boundary at or after each trigger, at step 0 and at
    the end. ``keep`` newest checkpoints are kept. ``on_divergence="halve-lr"`` restarts from
    the last checkpoint with half the learning rate, at most ``max_retries`` times.
    """

    every: str = "1 epoch"
    keep: int = 3
    on_divergence: str = "stop"
    max_retries: int = 3
    handle_signals: bool = True

    def __post_init__(self):
        EvalSchedule.parse(self.every)  # raises ConfigError on a bad schedule
        if not isinstance(self.keep, int) or isinstance(self.keep, bool) or self.keep < 1:
            raise ConfigError(f"keep_checkpoints must be a whole number >= 1, got {self.keep!r}")
        if self.on_divergence not in DIVERGENCE_POLICIES:
            raise ConfigError(choices_message("divergence policy", str(self.on_divergence),
                                              DIVERGENCE_POLICIES))
        if not isinstance(self.max_retries, int) or isinstance(self.max_retries, bool) \
                or not 0 <= self.max_retries <= 20:
            raise ConfigError(f"max_retries must be a whole number in 0..20, "
                              f"got {self.max_retries!r}")


class Session:
    """See the module docstring. ``run_dir=None`` keeps checkpoints in memory only (enough
    for divergence recovery)."""

    def __init__(self, run_dir, policy: CheckpointPolicy, meta: dict | None = None,
                 resume: Snapshot | None = None, lr: float | None = None):
        self.policy = policy
        self.schedule = EvalSchedule.parse(policy.every)
        self.store = CheckpointStore(run_dir, policy.keep) if run_dir is not None else None
        self.log = HistoryLog(Path(run_dir) / "history.csv") if run_dir is not None else None
        self.meta = dict(meta or {})
        self.pending = resume           # the snapshot the next train() call continues from
        self.last_good: Snapshot | None = None
        self.lr = lr                    # when set, every history row records it as "lr"
        self.signal: int | None = None
        self.checkpoints_written = 0
        self._mark = {"step": 0, "time": 0.0}
        self._clock = 1
        self._old_handlers: dict = {}

    # -- called by the fit loop ---------------------------------------------------------------
    def restore(self, like) -> dict | None:
        """The loop state to continue from (state shaped like ``like``), or ``None``."""
        snap, self.pending = self.pending, None
        if snap is None:
            if self.store is not None:
                self.store.discard_after(-1)  # a fresh run replaces an earlier run's checkpoints
            if self.log is not None:
                self.log.reset([])
            return None
        state = state_from_arrays(snap.arrays, like)  # may refuse: touch no file before it
        if self.store is not None:
            self.store.discard_after(snap.step)
        if self.log is not None:
            self.log.reset(snap.meta["history"])
        self.last_good = snap
        m = snap.meta
        self._mark = {"step": snap.step, "time": 0.0}
        return {"state": state, "position": m["position"],
                "history": History(dict(r) for r in m["history"]), "examples": m["examples"],
                "train_seconds": m["train_seconds"], "eval_seconds": m["eval_seconds"],
                "wall_seconds": m["wall_seconds"], "since_row": m["since_row"],
                "last_eval": m["last_eval"], "status": m["status"]}

    def on_row(self, row: dict) -> None:
        if self.lr is not None and "lr" not in row:  # a batch schedule's rows carry theirs
            row["lr"] = self.lr
        if self.log is not None:
            self.log.append(row)

    def begin(self, snap, clock, resumed: bool, placement=None) -> None:
        """``clock``: the run's epoch clock (or steps per epoch), for an epoch schedule."""
        self._clock = clock
        self._placement = placement if getattr(placement, "world", 1) > 1 else None
        self._t0 = time.monotonic()
        if self.policy.handle_signals:
            self._install_signals()
        if not resumed:
            self._save(snap())

    def at_boundary(self, snap) -> bool:
        elapsed = self._agree(time.monotonic() - self._t0)
        if self.signal is not None:
            self._save(snap())
            return True
        s, loop = self.schedule, snap()
        step = int(loop["state"].step)
        if s.due(step, elapsed, self._mark["step"], self._mark["time"], self._clock):
            self._save(loop)
        return False

    def finish(self, snap, status: str) -> None:
        self._restore_signals()
        if status not in ("diverged", "interrupted"):
            self._save(snap(status))
        if self.log is not None:
            self.log.close()

    def close(self) -> None:
        """Undo what :meth:`begin` set up even if training raised (signal handlers, files)."""
        self._restore_signals()
        if self.log is not None:
            self.log.close()

    # -- helpers -----------------------------------------------------------------------------
    def _agree(self, elapsed: float) -> float:
        """Process 0's ``elapsed`` seconds; sets ``self.signal`` if any process got one.

        One gather of ``(signal number or 0, elapsed)`` per boundary, identical on every
        process, so all of them stop (or checkpoint) at this boundary or none does.
        """
        if getattr(self, "_placement", None) is None:
            return elapsed
        rows = self._placement.gather([float(self.signal or 0), elapsed])  # (world, 2)
        signum = int(rows[:, 0].max())
        if signum and self.signal is None:
            self.signal = signum
            self._restore_signals()  # as if it had come here: a second one acts at once
        return float(rows[0, 1])

    def snapshot(self, loop: dict) -> Snapshot:
        """A :class:`Snapshot` of the loop state dict the fit loop hands over."""
        meta = {"step": int(loop["state"].step), "position": dict(loop["position"]),
                "examples": int(loop["examples"]),
                "train_seconds": loop["train_seconds"], "eval_seconds": loop["eval_seconds"],
                "wall_seconds": loop["wall_seconds"],
                "since_row": [float(loop["since_row"][0]), int(loop["since_row"][1])],
                "last_eval": dict(loop["last_eval"]), "status": loop.get("status", "running"),
                "history": [dict(r) for r in loop["history"]], **self.meta}
        return Snapshot(state_to_arrays(loop["state"]), meta)

    def _save(self, loop: dict) -> None:
        snap = self.snapshot(loop)
        if self.store is not None:
            self.store.save(snap)
        self.last_good = snap
        self.checkpoints_written += 1
        self._mark = {"step": snap.step,
                      "time": time.monotonic() - getattr(self, "_t0", time.monotonic())}

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread

        def handler(signum, frame):
            self.signal = signum
            # A second signal acts at once (default behaviour) instead of waiting for a chunk.
            self._restore_signals()

        for sig in (signal.SIGTERM, signal.SIGINT):
            self._old_handlers[sig] = signal.signal(sig, handler)

    def _restore_signals(self) -> None:
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
        self._old_handlers = {}


def still_finished(loop: dict, config, total: int | None, metric: str) -> bool:
    """Whether a resumed run whose checkpoint says it ended is still done under ``config``.

    A resume may change the stopping rules (train longer, a higher target), which reopens a
    completed run; with unchanged rules resuming a finished run only rewrites its files.
    """
    status, step = loop["status"], int(loop["state"].step)
    if status == "running":
        return False
    if total is not None and step < total and status == "completed":
        return False
    if status == "max_time" and (config.max_time is None
                                 or loop["train_seconds"] < config.max_time):
        return False
    if status == "target_reached":
        last = loop["history"][-1].get(metric, -math.inf) if loop["history"] else -math.inf
        return config.target is not None and last >= config.target
    return True
