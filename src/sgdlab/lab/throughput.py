"""The throughput probe: what one step costs against the batch size, on this hardware.

No training to convergence: for each batch size the engine's own chunk kernel (the program every
run executes) is compiled and called on random batches, and the clock is read after
``block_until_ready``. Reported per batch size ``B``:

* ``step_seconds``: ``t(B)``, the median over ``repeats`` timings of ``time / steps``;
* ``call_seconds``: the fixed cost of one call of the kernel (zero active steps), which a run
  pays once per call: runs evaluated every few steps make many short calls;
* ``example_seconds`` ``t(B) / B`` and ``examples_per_second`` ``B / t(B)``;
* ``step_cost_ratio`` ``t(B) / t(B0)`` against the smallest probed ``B0``: the source text's
  "a batch of 100 may cost 50 times one example, not 100", i.e. a vectorisation gain of
  ``(B / B0) / step_cost_ratio``.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Sequence

import numpy as np

from ..data.dataset import Dataset
from ..data.sampling import steps_per_epoch
from ..engine import TrainConfig, chunk_program, memory_chunk_steps
from .prepare import Prepared, prepare


def probe_one(prepared: Prepared, config: TrainConfig, *, repeats: int = 5,
              min_call_examples: int = 4096, seed: int = 0) -> dict:
    """Time the chunk kernel of ``config`` (its batch size, learning rate, optimiser).

    ``K`` is the chunk length training would use and the program is fetched from the engine's
    program store under training's key, so the probe times the very program a run executes
    (and compiles nothing when a run of this batch size came first). One timing covers
    ``calls`` consecutive calls, enough for ``min_call_examples`` examples, so that short
    calls do not time only the clock.
    """
    b = config.batch_size
    setup = prepared.setup(config)  # as training builds it: same K, optimiser and key
    spe = steps_per_epoch(prepared.n, b, config.drop_last)
    k = memory_chunk_steps(config, spe, setup)  # as training chooses it
    calls = max(1, math.ceil(min_call_examples / (k * b)))
    lr = setup.lr
    state0 = setup.initial_state()
    t0 = time.perf_counter()
    run = chunk_program(setup, state0, prepared.X, prepared.T, k, b)
    compile_seconds = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    times, diverged = [], False
    for r in range(repeats + 1):  # call 0 warms caches and is not counted
        idx = rng.integers(0, prepared.n, size=(calls, k, b)).astype(np.int32)
        w = np.ones((k, b), np.float32)
        # Every timing restarts from the initial parameters, so a large learning rate cannot
        # drift into NaN/inf mid-probe (non-finite arithmetic can run at a different speed;
        # ``diverged`` flags it if it happens anyway).
        state = state0
        t = time.perf_counter()
        for c in range(calls):
            state, losses, ok = run(state, prepared.X, prepared.T, idx[c], w, np.int32(k), lr)
            # Read the losses and ok back after every call, as a run does (TwoTier): the
            # call's fixed cost below is measured the same way, so their difference is the
            # steps' own cost (calls left in flight would hide part of the fixed cost).
            np.asarray(losses), bool(ok)
        elapsed = time.perf_counter() - t
        diverged |= not bool(ok)
        if r > 0:
            times.append(elapsed)
    # The fixed cost of one compiled call (dispatch, reading losses and ok back): the same
    # program with zero active steps. A run cut into short calls by frequent evaluations
    # pays it once per call; the step cost is what a call costs beyond it.
    idle = []
    for _ in range(repeats):
        t = time.perf_counter()
        for c in range(calls):
            out = run(state0, prepared.X, prepared.T, idx[c], w, np.int32(0), lr)
            np.asarray(out[1]), bool(out[2])
        idle.append((time.perf_counter() - t) / calls)
    call = float(np.median(idle))
    per_call = float(np.median(times)) / calls
    # Timing noise can make the fixed part look larger than a whole call: then keep it all.
    step = (per_call - call if per_call > call else per_call) / k
    return {"batch_size": b, "chunk_steps": k, "calls": calls, "step_seconds": step,
            "call_seconds": call, "example_seconds": step / b,
            "examples_per_second": b / step, "compile_seconds": compile_seconds,
            "diverged": diverged}


def probe_throughput(train_data: Dataset, configs: Sequence[TrainConfig], *, repeats: int = 5,
                     min_call_examples: int = 4096, model=None, loss=None,
                     progress: Callable[[dict], None] | None = None) -> list[dict]:
    """Probe every config (one per batch size); rows sorted by batch size, with ratios."""
    prepared = prepare(train_data, configs[0], model, loss)
    rows = []
    for cfg in sorted(configs, key=lambda c: c.batch_size):
        rows.append(probe_one(prepared, cfg, repeats=repeats,
                              min_call_examples=min_call_examples))
        if progress:
            progress({"event": "probe", "batch_size": cfg.batch_size})
    base = rows[0]
    for row in rows:
        row["step_cost_ratio"] = row["step_seconds"] / base["step_seconds"]
        row["vectorisation_gain"] = (row["batch_size"] / base["batch_size"]) / \
            row["step_cost_ratio"]
    return rows
