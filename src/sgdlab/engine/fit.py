"""The host loop: compile once, then call the chunk kernel and decide between calls.

Between two compiled calls the host decides whether to evaluate (on the schedule), log, or
stop; it never runs Python per optimisation step. Time is read only after
``block_until_ready``, and split into training, evaluation and compilation.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from .._types import Loss, Model, TrainState
from ..data.dataset import Dataset
from ..data.hostmem import aligned
from ..data.sampling import BatchPlan
from ..data.split import Standardizer
from ..errors import ConfigError, DataError
from ..grad import value_and_grad_for
from ..losses import encode_targets
from ..optim import make_unit_optimizer, runtime_rate
from ..tasks import OPEN_LOSS, resolve
from . import cache
from .chunk import TwoTier, compile_chunk, make_checked_chunk_fn, make_chunk_fn
from .config import TrainConfig
from .evaluate import Validator
from .ledger import RunLedger
from .result import FitResult, divergence_message
from .session import still_finished

#: examples per compiled call when nothing else bounds the chunk: big enough that the
#: per-call dispatch (~0.1 ms) is noise, small enough that time-based triggers stay prompt.
CHUNK_EXAMPLES = 16384
MAX_CHUNK_STEPS = 4096

Callback = Callable[[dict], None]


def device_array(a: np.ndarray) -> jax.Array:
    """``a`` on the default device, waited for.

    An aligned array is used in place on CPU (no copy; :mod:`sgdlab.data.hostmem`). The wait
    keeps moving the data out of the first chunk's clock: ``device_put`` returns before a copy
    ends, and the copy is setup (wall time), not training time.
    """
    return jax.block_until_ready(jax.device_put(aligned(a)))


def resolve_model(config: TrainConfig, model=None, loss=None, n_classes: int | None = None):
    """``(Model, Loss)`` from the config's names, or user-supplied objects.

    ``n_classes == 0`` says the labels are real-valued: a named architecture without a loss
    (``mlp``, ``linear``) then takes the squared loss instead of softmax.
    """
    from ..losses import get_loss
    from ..models import get_model
    if model is None and isinstance(config.model, str):
        name = config.loss if loss is None else None
        if name is None and loss is None and n_classes == 0 and config.model in OPEN_LOSS:
            name = "squared"
        named_model, named_loss = resolve(config.model, name,
                                          hidden=config.hidden, activation=config.activation)
        return named_model, (get_loss(loss) if loss is not None else named_loss)
    m = get_model(model if model is not None else config.model)
    return m, get_loss(loss if loss is not None else (config.loss or "softmax"))


def choose_chunk_steps(config: TrainConfig, steps_per_epoch: int, total_steps: int | None) -> int:
    """Steps per compiled call, aligned with the evaluation schedule where possible."""
    if config.chunk_steps:
        return config.chunk_steps
    k = min(MAX_CHUNK_STEPS, max(1, math.ceil(CHUNK_EXAMPLES / config.batch_size)))
    sched = config.eval_schedule
    if sched.every_steps:
        k = min(k, sched.every_steps)
    if sched.every_epochs:
        k = min(k, max(1, math.ceil(sched.every_epochs * steps_per_epoch)))
    if total_steps:
        k = min(k, total_steps)
    return max(1, k)


def train(train_data: Dataset, validation: Dataset | None, config: TrainConfig, *,
          model: Model | None = None, loss: Loss | None = None,
          callback: Callback | None = None, standardizer: Standardizer | None = None,
          start: TrainState | None = None, position: dict | None = None,
          session=None, init_params=None, sample_weight=None) -> FitResult:
    """Train ``config`` on ``train_data``; evaluate on ``validation`` by the schedule.

    ``train_data.X`` is ``(N, d)``; if ``config.standardize`` the features are z-scored with
    statistics of ``train_data`` only (or the given ``standardizer``). ``callback`` receives
    ``{"event": "start"|"chunk"|"row"|"end", ...}`` dicts (for progress displays); a "row"
    event also carries the current ``params``, and a callback that returns ``True`` from it
    stops the run after that row with status ``stopped`` (how patience-based early stopping
    is built on top of the engine).

    ``sample_weight``: ``(N,)`` finite weights >= 0 of ``train_data``'s rows. They are scaled
    to mean 1 over the positive ones and multiply each drawn row's loss, so a step minimises the weighted mean of
    :func:`sgdlab.losses.objective` (a row of weight 0 takes no part).

    Starting from trained parameters (fine-tuning): ``init_params`` replaces the drawn
    initialisation; it must have this configuration's shapes, and the optimiser starts fresh
    at step 0. Pass the trained model's ``standardizer`` too, so inputs keep their scale.

    Continuing a run: ``start`` is a :class:`TrainState` to continue from (its ``step`` counts
    on) and ``position`` the batch plan's ``{"epoch", "step_in_epoch"}``. ``config.epochs`` and
    ``config.max_steps`` are totals counted from step 0, so two calls of one epoch each, the
    second continuing the first, equal one call of two epochs.

    ``session`` (a :class:`sgdlab.engine.session.Session`) links the loop to a run directory:
    it may supply the whole loop state to resume from (state, plan position, history,
    counters, clocks), and is called at chunk boundaries to checkpoint and to stop on a signal
    (status ``interrupted``).
    """
    wall0 = time.perf_counter()
    model_, loss_ = resolve_model(config, model, loss, train_data.n_classes)
    regression = loss_.target_kind == "real"
    _check_task(train_data, loss_, regression)
    if config.batch_size > train_data.n:
        raise ConfigError(f"batch size {config.batch_size} is larger than the number of "
                          f"training examples ({train_data.n}); use --batch-size "
                          f"{train_data.n} for full-batch gradient descent")

    if config.standardize and standardizer is None:
        standardizer = Standardizer().fit(train_data.X)
    prep = (lambda X: standardizer.transform(X)) if standardizer is not None else \
        (lambda X: np.asarray(X, np.float32))
    n_classes = train_data.n_classes
    n_out = loss_.n_outputs(max(n_classes, 1))

    # Padded rows are never drawn; they let sets of similar size share a compiled program.
    n_dev = cache.padded_rows(train_data.n, train_data.d * 4)
    X = device_array(cache.pad_rows(prep(train_data.X), n_dev))
    T = device_array(cache.pad_rows(
        np.asarray(encode_targets(loss_, train_data.y, n_classes)), n_dev))
    plan = BatchPlan(train_data.n, config.batch_size, config.sampling, config.seed,
                     config.drop_last, **(position or {}))
    row_weight = normalized_weights(sample_weight, train_data.n)
    spe = plan.steps_per_epoch
    total = total_steps(config, spe)
    K = choose_chunk_steps(config, spe, total)
    if not config.chunk_steps:
        K = cache.bucket_steps(K)  # only n_active steps run, so a longer shape is free

    params = model_.init(jax.random.PRNGKey(config.seed), train_data.d, n_out)
    if init_params is not None:
        params = same_shapes(init_params, params)
    optimizer = make_unit_optimizer(config.optimizer, lr=config.lr, momentum=config.momentum,
                                    schedule=config.schedule, total_steps=total or 10_000)
    lr = runtime_rate(config.optimizer, config.lr)
    state = TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))
    if start is not None:
        _check_compatible(start, state)
        state = jax.tree_util.tree_map(jnp.asarray, start)
    resumed = session.restore(state) if session is not None else None
    if resumed is not None:
        state = resumed["state"]
        plan.seek(**resumed["position"])

    t0 = time.perf_counter()
    # Programs depend on functions and shapes only, so equal runs reuse them (engine.cache).
    named = model is None and loss is None and isinstance(config.model, str)
    chunk_key = cache.program_key(config, named, model_, loss_, total, K, config.batch_size,
                                  state, X, T)
    vg = value_and_grad_for(config.gradient, model_, loss_, config.l2)
    run = TwoTier(
        cache.get_or_build("chunk", chunk_key, lambda: compile_chunk(
            make_chunk_fn(vg, optimizer), state, X, T, K, config.batch_size)),
        lambda: cache.get_or_build("checked_chunk", chunk_key, lambda: compile_chunk(
            make_checked_chunk_fn(vg, optimizer), state, X, T, K, config.batch_size)))
    validator = None
    if validation is not None:
        center = float(np.mean(train_data.y)) if regression else 0.0
        validator = Validator(model_, loss_, config.l2, validation.X, validation.y, n_classes,
                              params, prep=prep, center=center,
                              cache_key=cache.program_key(config, named, model_, loss_, None,
                                                          training=False))
    compile_seconds = time.perf_counter() - t0

    metric = "val_r2" if regression else "val_accuracy"
    ledger = RunLedger(spe, wall0, lambda: state.params, step=int(state.step),
                       evaluate=validator, callback=callback,
                       on_row=session.on_row if session is not None else None)
    ledger.announce(total, K, compile_seconds, config.max_time)
    finished, status = open_ledger(ledger, resumed, config, total, metric)

    def loop_state(status: str = "running") -> dict:
        return {"state": state, "position": plan.position, **ledger.counters(),
                "status": status}

    def one_chunk(n: int):
        nonlocal state
        idx, w = plan.take(n, pad_to=K)
        if row_weight is not None:
            w = w * row_weight[idx]  # padding keeps weight 0
        state, losses, first_bad = run(state, X, T, idx, w, np.int32(n), lr)
        return losses, w, first_bad

    if session is not None:
        session.begin(loop_state, spe, resumed=resumed is not None)
    status, bad_step, message = chunk_loop(ledger, one_chunk, run, K, total, config, metric,
                                           session, loop_state, finished, status)
    result = FitResult(
        params=state.params, model=model_, loss=loss_, config=config, status=status,
        task=train_data.task, classes=train_data.classes, standardizer=standardizer,
        compile_seconds=compile_seconds + run.compile_seconds, diverged_at_step=bad_step,
        message=message, opt_state=state.opt_state, extra={"chunk_steps": K},
        n_features=train_data.d, feature_names=tuple(train_data.feature_names),
        **ledger.totals())
    if callback:
        callback({"event": "end", "result": result})
    return result


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


def chunk_loop(ledger: RunLedger, one_chunk, kernel, K: int, total: int | None,
               config: TrainConfig, metric: str, session, loop_state, finished: bool,
               status: str) -> tuple[str, int | None, str]:
    """Call ``one_chunk(n) -> (losses (K,), counts (K, ...), first_bad)`` until the run ends.

    Each call runs ``n <= K`` steps, cut at the next step- or epoch-based evaluation and at
    ``total``; its time, less any compilation in it (``kernel.last_compile_seconds``: the
    checked kernel built on a first divergence), is training time. After each chunk the
    ledger accounts for it, :func:`end_of_chunk` decides, and the ``session`` may checkpoint
    or stop on a signal. ``-> (status, diverged_at_step or None, message)``. Shared by the
    in-memory and the fed loops, which differ only in how a chunk gets its batches.
    """
    sched, spe = config.eval_schedule, ledger.spe
    bad_step = None
    while not finished:
        n = K if total is None else min(K, total - ledger.step)
        n = min(n, _steps_to_boundary(ledger.step, sched, spe))
        t = time.perf_counter()
        losses, counts, first_bad = one_chunk(n)
        ledger.add_chunk(time.perf_counter() - t - kernel.last_compile_seconds, losses, counts,
                         n, first_bad)
        ended = end_of_chunk(ledger, first_bad, total, config, sched, metric)
        if ended is not None:
            status = ended
            bad_step = first_bad + 1 if ended == "diverged" else None
            break
        if session is not None and session.at_boundary(loop_state):
            status = "interrupted"
            break
    if session is not None:
        session.finish(loop_state, status)
    message = ""
    if status == "diverged":
        message = divergence_message(bad_step, config.lr)
    elif status == "interrupted":
        message = (f"interrupted by signal {session.signal} at step {ledger.step}; a checkpoint "
                   "was saved, resume with --resume RUN_DIR")
    return status, bad_step, message


def normalized_weights(sample_weight, n: int) -> np.ndarray | None:
    """``sample_weight`` as float32 ``(n,)`` with mean 1 over its positive entries, after
    checking it; None stays None."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,):
        raise DataError(f"sample_weight must have one weight per training row, shape ({n},); "
                        f"got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        bad = int(np.flatnonzero(~np.isfinite(w) | (w < 0))[0])
        raise DataError(f"sample_weight must be finite and >= 0; row {bad} has {w[bad]!r}")
    if w.sum() <= 0:
        raise DataError("sample_weight is zero for every row: nothing to train on")
    # mean 1 over the rows that count: the objective divides by that count (losses.objective)
    return (w / w[w > 0].mean()).astype(np.float32)


def same_shapes(given, fresh):
    """``given`` parameters as device arrays, if their structure and shapes are ``fresh``'s;
    else a :class:`ConfigError` naming both."""
    a = jax.tree_util.tree_map(jnp.shape, given)
    b = jax.tree_util.tree_map(jnp.shape, fresh)
    if jax.tree_util.tree_structure(a) != jax.tree_util.tree_structure(b) or \
            jax.tree_util.tree_leaves(a) != jax.tree_util.tree_leaves(b):
        raise ConfigError(f"the initial parameters have shapes {jax.tree_util.tree_leaves(a)}, "
                          f"this run's network {jax.tree_util.tree_leaves(b)}: use the same "
                          "model settings (--model, --hidden) and data with the same features "
                          "and classes")
    return jax.tree_util.tree_map(lambda x, f: jnp.asarray(x, f.dtype), given, fresh)


def _check_compatible(start: TrainState, fresh: TrainState) -> None:
    a = jax.tree_util.tree_map(jnp.shape, (start.params, start.opt_state))
    b = jax.tree_util.tree_map(jnp.shape, (fresh.params, fresh.opt_state))
    if jax.tree_util.tree_structure(a) != jax.tree_util.tree_structure(b) or \
            jax.tree_util.tree_leaves(a) != jax.tree_util.tree_leaves(b):
        raise ConfigError("cannot continue from the given state: its parameter or optimiser "
                          "shapes differ from this configuration's model and data")


def total_steps(config: TrainConfig, spe: int) -> int | None:
    """Steps a run of ``config`` takes at most (its ``epochs`` or ``max_steps``, the fewer), or
    None when only time or a target ends it; ``spe`` is steps per epoch."""
    totals = []
    if config.epochs is not None:
        totals.append(max(1, math.ceil(config.epochs * spe - 1e-9)))
    if config.max_steps is not None:
        totals.append(config.max_steps)
    return min(totals) if totals else None


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
    if at_end or _due(step, train_seconds, sched, ledger.spe, ledger.last_eval):
        row = ledger.add_row()
        if config.target is not None and row.get(metric, -math.inf) >= config.target:
            return "target_reached"
        if ledger.stop_requested and not at_end:
            return "stopped"
    if at_end:
        return "max_time" if total is None or step < total else "completed"
    return None


def _epoch_marks(step: int, every_epochs: float, spe: int) -> int:
    """How many epoch-schedule boundaries ``ceil(m * E * spe)``, m >= 1, lie at or before step."""
    return math.floor(step / (every_epochs * spe) + 1e-9)


def _steps_to_boundary(step: int, sched, spe: int) -> int:
    """Steps until the next step- or epoch-based evaluation (time triggers are checked after).

    Boundaries are absolute (every multiple of N steps, of E epochs), so an extra evaluation
    triggered by time does not shift them.
    """
    gaps = [MAX_CHUNK_STEPS * 1024]
    if sched.every_steps:
        gaps.append((step // sched.every_steps + 1) * sched.every_steps - step)
    if sched.every_epochs:
        m = _epoch_marks(step, sched.every_epochs, spe) + 1
        gaps.append(math.ceil(m * sched.every_epochs * spe - 1e-9) - step)
    return max(1, min(gaps))


def _due(step: int, train_seconds: float, sched, spe: int, last: dict) -> bool:
    """Has a boundary been crossed since the last evaluation, or has its time come?"""
    if sched.every_steps and step // sched.every_steps > last["step"] // sched.every_steps:
        return True
    if sched.every_epochs and _epoch_marks(step, sched.every_epochs, spe) > \
            _epoch_marks(last["step"], sched.every_epochs, spe):
        return True
    return bool(sched.every_seconds and train_seconds - last["time"] >= sched.every_seconds)


def _check_task(data: Dataset, loss: Loss, regression: bool) -> None:
    if regression and data.task != "regression":
        if data.task == "classification" and data.n_classes:
            return  # class indices used as real targets: allowed (e.g. linear regression on 0/1)
    if not regression and data.task == "regression":
        raise DataError(f"loss {loss.name!r} needs class labels but {data.name!r} has real-valued "
                        "labels; use --model linreg, or --model mlp / --model linear without "
                        "--loss (both then use the squared loss), or pass --task "
                        "classification if the labels are classes")
