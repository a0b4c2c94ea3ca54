"""The throughput probe: what one step costs against the batch size, on this hardware.

No training to convergence: for each batch size the engine's own chunk kernel (the program every
run executes) is compiled and called on random batches, and the clock is read after
``block_until_ready``. Reported per batch size ``B``:

* ``step_seconds``: ``t(B)``, the median over ``repeats`` timings of ``time / steps``, the
  batch sizes timed in interleaved rounds;
* ``call_seconds``: the fixed cost of one call of the kernel (zero active steps), which a run
  pays once per call: runs evaluated every few steps make many short calls;
* ``example_seconds`` ``t(B) / B`` and ``examples_per_second`` ``B / t(B)``;
* ``step_cost_ratio`` ``t(B) / t(B0)`` against the smallest probed ``B0``: the source text's
  "a batch of 100 may cost 50 times one example, not 100", i.e. a vectorisation gain of
  ``(B / B0) / step_cost_ratio``.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

import numpy as np

from ..data.dataset import Dataset
from ..data.sampling import steps_per_epoch
from ..engine import TrainConfig, chunk_program, memory_chunk_steps
from .prepare import Prepared, prepare


class _Probe:
    """One batch size's compiled program, its random batches and its timings."""

    def __init__(self, prepared: Prepared, config: TrainConfig, min_call_examples: int,
                 seed: int):
        b = self.batch_size = config.batch_size
        setup = prepared.setup(config)  # as training builds it: same K, optimiser and key
        spe = steps_per_epoch(prepared.n, b, config.drop_last)
        self.k = memory_chunk_steps(config, spe, setup)  # as training chooses it
        self.active = min(self.k, TIMED_STEPS)  # steps each timed call runs
        self.calls = max(1, math.ceil(min_call_examples / (self.active * b)))
        self.lr, self.prepared, self.setup = setup.lr, prepared, setup
        self.state0 = setup.initial_state()
        self.run, self.compile_seconds = None, 0.0
        self.rng = np.random.default_rng(seed)
        self.w = np.ones((self.k, b), np.float32)
        self.times, self.idle, self.diverged = [], [], False

    def build(self) -> None:
        """Compile the program (or fetch it from the program store); may run in a thread of
        its own, beside the builds of other batch sizes."""
        t0 = time.perf_counter()
        self.run = chunk_program(self.setup, self.state0, self.prepared.X, self.prepared.T,
                                 self.k, self.batch_size)
        self.compile_seconds = time.perf_counter() - t0

    def time_steps(self) -> float:
        """One timing of ``calls`` consecutive calls of ``active`` steps (the chunk's ``k``, at
        most :data:`TIMED_STEPS`: the kernel runs only its active steps)."""
        idx = self.rng.integers(0, self.prepared.n, size=(self.calls, self.k,
                                                          self.batch_size)).astype(np.int32)
        # Every timing restarts from the initial parameters, so a large learning rate cannot
        # drift into NaN/inf mid-probe (non-finite arithmetic can run at a different speed;
        # ``diverged`` flags it if it happens anyway).
        state, ok = self.state0, True
        t = time.perf_counter()
        for c in range(self.calls):
            state, losses, ok = self.run(state, self.prepared.X, self.prepared.T, idx[c],
                                         self.w, np.int32(self.active), self.lr)
            # Read the losses and ok back after every call, as a run does (TwoTier): the
            # call's fixed cost below is measured the same way, so their difference is the
            # steps' own cost (calls left in flight would hide part of the fixed cost).
            np.asarray(losses), bool(ok)
        elapsed = time.perf_counter() - t
        self.diverged |= not bool(ok)
        return elapsed

    def time_idle(self) -> float:
        """The fixed cost of one compiled call: the same program with zero active steps."""
        idx = np.zeros((self.k, self.batch_size), np.int32)
        t = time.perf_counter()
        for _ in range(self.calls):
            out = self.run(self.state0, self.prepared.X, self.prepared.T, idx, self.w,
                           np.int32(0), self.lr)
            np.asarray(out[1]), bool(out[2])
        return (time.perf_counter() - t) / self.calls

    def row(self) -> dict:
        call = float(np.median(self.idle))
        per_call = float(np.median(self.times)) / self.calls
        # Timing noise can make the fixed part look larger than a whole call: then keep it all.
        step = (per_call - call if per_call > call else per_call) / self.active
        return {"batch_size": self.batch_size, "chunk_steps": self.k, "calls": self.calls,
                "step_seconds": step, "call_seconds": call, "example_seconds": step /
                self.batch_size, "examples_per_second": self.batch_size / step,
                "compile_seconds": self.compile_seconds, "diverged": self.diverged}


#: Most active steps of one timed call: a small batch size's chunk holds thousands of steps
#: (4096 at batch 1 to 4), and a thousand already time tens of milliseconds, far above the
#: clock's resolution and the call's fixed cost, at a quarter of the probe's time.
TIMED_STEPS = 1024
#: CPUs one compilation keeps busy: XLA's CPU compiler already spreads each program over
#: several threads (on a 2-core machine about 3 threads had work during one compilation), so
#: the probe compiles programs side by side only on machines with CPUs to spare: two at once
#: on 2 cores took longer than one after another.
CPUS_PER_COMPILATION = 3


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity where the system tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def probe_throughput(train_data: Dataset, configs: Sequence[TrainConfig], *, repeats: int = 5,
                     min_call_examples: int = 4096, model=None, loss=None,
                     progress: Callable[[dict], None] | None = None,
                     seed: int = 0, compile_workers: int | None = None) -> list[dict]:
    """Probe every config (one per batch size); rows sorted by batch size, with ratios.

    Every program is compiled (or fetched from the program store) first, ``compile_workers``
    at a time (default: one per :data:`CPUS_PER_COMPILATION` usable CPUs, at least one; each
    row's ``compile_seconds`` is the wall time of its own compilation); then ``repeats``
    rounds each time every batch size once, in a new random order, after one untimed round
    that warms the caches: a change of machine load during the probe hits every batch size
    alike. ``K`` is the chunk length training would use and the program is training's own,
    so the probe times the very program a run executes. One timing covers ``calls``
    consecutive calls, enough for ``min_call_examples`` examples, so that short calls do not
    time only the clock.
    """
    prepared = prepare(train_data, configs[0], model, loss)
    ordered = sorted(configs, key=lambda c: c.batch_size)
    workers = min(len(ordered), compile_workers or usable_cpus() // CPUS_PER_COMPILATION)
    # The programs may compile concurrently (XLA releases the interpreter lock while it
    # compiles); nothing is timed until every one is built.
    probes = [_Probe(prepared, cfg, min_call_examples, seed) for cfg in ordered]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for probe, _ in zip(probes, pool.map(_Probe.build, probes)):
            if progress:
                progress({"event": "probe", "batch_size": probe.batch_size})
    rng = np.random.default_rng(seed)
    for r in range(repeats + 1):  # round 0 warms caches and is not counted
        for i in rng.permutation(len(probes)):
            t = probes[i].time_steps()
            if r > 0:
                probes[i].times.append(t)
                probes[i].idle.append(probes[i].time_idle())
    rows = [p.row() for p in probes]
    base = rows[0]
    for row in rows:
        row["step_cost_ratio"] = row["step_seconds"] / base["step_seconds"]
        row["vectorisation_gain"] = (row["batch_size"] / base["batch_size"]) / \
            row["step_cost_ratio"]
    return rows
