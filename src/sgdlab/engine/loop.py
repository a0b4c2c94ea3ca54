"""The run loop: one for every source of batches (in memory, streamed, several processes).

:func:`run_loop` takes a :class:`~sgdlab.engine.setup.RunSetup` and a *source* and runs the
host loop: compile once, then call the chunk kernel and decide between calls (evaluate on the
schedule, log, checkpoint, stop). It never runs Python per optimisation step. Time is read
only after the kernel returns, and split into training, evaluation and compilation.

A batch-size schedule (:mod:`.batch_schedule`) runs phase by phase (:class:`PhaseRunner`):
one compiled program per distinct batch size, built the first time a phase needs it (and
kept in the program store for later runs), and a chunk never crosses a phase boundary; at a
boundary the loop switches programs and the source goes on at the new batch size.

A source says only how a chunk gets its batches (see :class:`Source`): the in-memory one
gathers rows of a device-resident array by index (:class:`sgdlab.engine.fit.MemorySource`);
the fed one hands over batches read from shards or each process's slots
(:class:`sgdlab.engine.stream_fit.FedSource`).
"""

from __future__ import annotations

import math
import time
from typing import Callable, Protocol

from .._types import TrainState
from .batch_schedule import PhaseStart
from .config import TrainConfig
from .ledger import RunLedger
from .result import FitResult, divergence_message
from .session import still_finished
from .setup import RunSetup

#: examples per compiled call when nothing else bounds the chunk: big enough that the
#: per-call dispatch (~0.1 ms) is noise, small enough that time-based triggers stay prompt.
CHUNK_EXAMPLES = 16384
MAX_CHUNK_STEPS = 4096

Callback = Callable[[dict], None]


class Source(Protocol):
    """Where a run's batches come from.

    ``steps_per_epoch`` and ``chunk_steps`` (K, steps per compiled call) at the batch size in
    effect; ``position`` (a dict that, with the seed, says where the next batch starts) and
    ``seek(**position)``; ``session_options`` (extra arguments for ``Session.begin``),
    ``agree`` (how processes agree on a stop request, or None) and ``info`` (figures for
    ``FitResult.extra``).
    """

    steps_per_epoch: int
    chunk_steps: int
    position: dict
    session_options: dict
    agree: Callable | None
    info: dict

    def seek(self, epoch: int, step_in_epoch: int, row: int | None = None) -> None: ...

    def build(self, setup: RunSetup, state: TrainState) -> TrainState:
        """Prepare for a run: ``-> state`` placed for the kernels."""

    def evaluator(self, setup: RunSetup, state: TrainState):
        """The validator (or None), built after the first phase's program (so a program too
        large for the machine is named as the training step)."""

    def enter(self, phase: PhaseStart):
        """Draw the next batches at ``phase``'s batch size and learning rate, and return the
        compiled (or stored) :class:`~sgdlab.engine.chunk.TwoTier` kernel of that batch size;
        ``chunk_steps`` is then that program's K."""

    def run_chunk(self, kernel, state: TrainState, n: int):
        """``n`` steps: ``-> (state, losses (K,), counts, first_bad)``."""

    def params(self, state: TrainState):
        """The parameters as the evaluator and the history see them (this process's)."""

    def step(self, state: TrainState) -> int: ...

    def local(self, state: TrainState) -> TrainState:
        """The final state on this host, for the result."""


class PhaseRunner:
    """Runs a loop's chunks phase by phase (see the module docstring).

    ``limit(step)`` enters the phase of ``step`` (its program is built or fetched once per
    batch size, timed apart from training as ``compile_seconds``) and says how many steps the
    next chunk may run: the program's K, cut at the next phase boundary. Calling the runner
    runs ``n`` steps from ``state``: ``-> (losses (K,), counts, first_bad)``.
    """

    def __init__(self, source: Source, setup: RunSetup, state: TrainState):
        self.source, self.phases, self.state = source, setup.phases, state
        self.index: int | None = None
        self.kernel = None
        self.kernels: dict = {}        # batch size -> kernel, for the checked kernels' time
        self.chunk_steps: dict = {}    # batch size -> K
        self.compile_seconds = 0.0     # building programs at phase boundaries

    def enter(self, step: int) -> None:
        index = self.phases.index_at(step)
        if index == self.index:
            return
        phase = self.phases.phases[index]
        t = time.perf_counter()
        self.kernel = self.source.enter(phase)
        if self.index is not None:
            self.compile_seconds += time.perf_counter() - t
        self.index = index
        self.kernels[phase.batch_size] = self.kernel
        self.chunk_steps.setdefault(phase.batch_size, self.source.chunk_steps)

    def limit(self, step: int) -> int:
        self.enter(step)
        boundary = self.phases.next_start(step)
        k = self.source.chunk_steps
        return k if boundary is None else min(k, boundary - step)

    def __call__(self, n: int):
        self.state, losses, counts, first_bad = self.source.run_chunk(self.kernel, self.state, n)
        return losses, counts, first_bad

    @property
    def last_compile_seconds(self) -> float:
        """Compilation inside the latest chunk (its checked kernel, built on a divergence that
        the fast kernel could not locate)."""
        return self.kernel.last_compile_seconds

    def checked_compile_seconds(self) -> float:
        return sum(k.compile_seconds for k in self.kernels.values())


def run_loop(setup: RunSetup, source: Source, state: TrainState, *, callback=None,
             session=None, wall0: float, result_fields: dict) -> FitResult:
    """Run ``setup`` on ``source`` from ``state`` until the configuration says stop.

    ``session`` (a :class:`~sgdlab.engine.session.Session`) links the loop to a run directory:
    it may supply the whole loop state to resume from (state, position, history, counters,
    clocks; the source then seeks), is called per history row, and at chunk boundaries to
    checkpoint and to stop on a signal (status ``interrupted``). ``callback`` receives
    ``{"event": "start"|"chunk"|"row"|"end", ...}``; returning True from a "row" event stops
    the run (status ``stopped``). ``wall0`` is when the run began (wall time includes the
    set-up); ``result_fields`` are the data's own fields of the :class:`FitResult` (task,
    classes, standardizer, n_features, ...).

    ``state`` may be a state to continue from (``state.step`` > 0, the source positioned
    where it stopped): the loop starts in the phase of that step.
    """
    config, phases = setup.config, setup.phases
    resumed = session.restore(state) if session is not None else None
    if resumed is not None:
        state = resumed["state"]
    t0 = time.perf_counter()
    state = source.build(setup, state)
    runner = PhaseRunner(source, setup, state)
    step = source.step(state)
    runner.enter(step)  # the phase of the first step to run, its program
    evaluator = source.evaluator(setup, state)
    if resumed is not None:
        source.seek(**resumed["position"])  # the next batch is the checkpoint's next one
    compile_seconds = time.perf_counter() - t0
    K = source.chunk_steps

    ledger = RunLedger(phases.clock, wall0, lambda: source.params(runner.state), step=step,
                       evaluate=evaluator, callback=callback, agree=source.agree,
                       on_row=session.on_row if session is not None else None,
                       columns=phases.columns if phases.phased else None)
    ledger.announce(setup.total, K, compile_seconds, config.max_time)
    finished, status = open_ledger(ledger, resumed, config, setup.total, setup.metric)

    def loop_state(status: str = "running") -> dict:
        return {"state": runner.state, "position": source.position, **ledger.counters(),
                "status": status}

    if session is not None:
        session.begin(loop_state, phases.clock, resumed=resumed is not None,
                      **source.session_options)
    status, bad_step, message = chunk_loop(ledger, runner, setup.total, config, setup.metric,
                                           session, loop_state, finished, status)
    final = source.local(runner.state)
    extra = {"chunk_steps": K, **source.info}
    if phases.phased:
        extra["batch_phases"] = phases.describe()
    result = FitResult(
        params=final.params, model=setup.model, loss=setup.loss, config=config, status=status,
        compile_seconds=compile_seconds + runner.compile_seconds +
        runner.checked_compile_seconds(), diverged_at_step=bad_step,
        message=message, opt_state=final.opt_state,
        extra=extra, n_outputs=setup.n_out, **result_fields,
        **ledger.totals())
    if callback:
        callback({"event": "end", "result": result})
    return result


def choose_chunk_steps(config: TrainConfig, steps_per_epoch: int, total_steps: int | None,
                       batch_size: int | None = None) -> int:
    """Steps per compiled call at ``batch_size`` (default ``config.batch_size``) with
    ``steps_per_epoch`` steps per epoch, aligned with the evaluation schedule where possible.
    It does not depend on where a phase starts, so phases of one batch size share a
    program."""
    if config.chunk_steps:
        return config.chunk_steps
    batch_size = batch_size or config.batch_size
    k = min(MAX_CHUNK_STEPS, max(1, math.ceil(CHUNK_EXAMPLES / batch_size)))
    sched = config.eval_schedule
    if sched.every_steps:
        k = min(k, sched.every_steps)
    if sched.every_epochs:
        k = min(k, max(1, math.ceil(sched.every_epochs * steps_per_epoch)))
    if total_steps:
        k = min(k, total_steps)
    return max(1, k)


def open_ledger(ledger: RunLedger, resumed: dict | None, config: TrainConfig,
                total: int | None, metric: str) -> tuple[bool, str]:
    """Start the ledger of a loop: ``-> (finished, status)`` before the first chunk.

    A fresh run adds the step-0 row (whose callback may already ask to stop); a resumed one
    continues the checkpoint's counters exactly and may already be finished under ``config``
    (see :func:`~sgdlab.engine.session.still_finished`). Shared by the in-memory and fed loops.
    """
    if resumed is None:
        ledger.add_row()
        return (True, "stopped") if ledger.stop_requested else (False, "completed")
    ledger.resume(resumed)
    if still_finished(resumed, config, total, metric):
        return True, resumed["status"]
    return False, "completed"


def chunk_loop(ledger: RunLedger, runner: PhaseRunner, total: int | None,
               config: TrainConfig, metric: str, session, loop_state, finished: bool,
               status: str) -> tuple[str, int | None, str]:
    """Run chunks through ``runner`` (``runner(n) -> (losses (K,), counts (K, ...),
    first_bad)``) until the run ends.

    Each call runs ``n`` steps, at most ``runner.limit(step)`` (the program's K, cut at the
    next phase boundary; switching programs happens there, before the clock starts), cut at
    the next step- or epoch-based evaluation and at ``total``; its time, less any compilation
    in it (``runner.last_compile_seconds``: a checked kernel built on a divergence),
    is training time. After each chunk the ledger accounts for it, :func:`end_of_chunk`
    decides, and the ``session`` may checkpoint or stop on a signal. ``-> (status,
    diverged_at_step or None, message)``. Shared by the in-memory and the fed loops, which
    differ only in how a chunk gets its batches.
    """
    sched, clock = config.eval_schedule, ledger.clock
    bad_step, validation_only = None, False
    while not finished:
        n = runner.limit(ledger.step)
        if total is not None:
            n = min(n, total - ledger.step)
        n = min(n, sched.steps_to_next(ledger.step, clock, MAX_CHUNK_STEPS * 1024))
        t = time.perf_counter()
        losses, counts, first_bad = runner(n)
        ledger.add_chunk(time.perf_counter() - t - runner.last_compile_seconds, losses, counts,
                         n, first_bad)
        ended = end_of_chunk(ledger, first_bad, total, config, sched, metric)
        if ended is not None:
            status = ended
            if ended == "diverged":  # a bad step, or else a non-finite validation loss now
                bad_step = first_bad + 1 if first_bad >= 0 else ledger.step
                validation_only = first_bad < 0
            break
        if session is not None and session.at_boundary(loop_state):
            status = "interrupted"
            break
    if session is not None:
        session.finish(loop_state, status)
    message = ""
    if status == "diverged":
        phases = runner.phases
        lr = phases.phases[phases.index_at(max(bad_step - 1, 0))].lr
        message = divergence_message(bad_step, lr, validation=validation_only)
    elif status == "interrupted":
        message = (f"interrupted by signal {session.signal} at step {ledger.step}; a checkpoint "
                   "was saved, resume with --resume RUN_DIR")
    return status, bad_step, message


def finite_validation(row: dict) -> bool:
    """Whether a history row's validation loss is finite (or absent: no validation data).

    Training steps can stay finite while the model's outputs overflow (``--lr 1e30``: train
    loss 1e29, validation loss NaN from ``inf - inf`` in the softmax); such a run has
    diverged as surely as one whose step went NaN."""
    value = row.get("val_loss")
    return value is None or math.isfinite(value)


def end_of_chunk(ledger: RunLedger, first_bad: int, total: int | None, config: TrainConfig,
                 sched, metric: str) -> str | None:
    """After a chunk: add a history row if one is due, and say whether the run ends.

    Returns the final status (``diverged``, ``target_reached``, ``stopped``, ``max_time`` or
    ``completed``) or None to go on. ``ledger.stop_requested`` is read after the row, whose
    callback may set it. Shared by the in-memory and the streamed loops.
    """
    step, train_seconds = ledger.step, ledger.train_seconds
    if first_bad >= 0:
        ledger.add_row()
        return "diverged"
    at_end = (total is not None and step >= total) or \
        (config.max_time is not None and train_seconds >= config.max_time)
    if at_end or sched.due(step, train_seconds, ledger.last_eval["step"],
                           ledger.last_eval["time"], ledger.clock):
        row = ledger.add_row()
        if not finite_validation(row):
            return "diverged"
        if config.target is not None and row.get(metric, -math.inf) >= config.target:
            return "target_reached"
        if ledger.stop_requested and not at_end:
            return "stopped"
    if at_end:
        return "max_time" if total is None or step < total else "completed"
    return None
