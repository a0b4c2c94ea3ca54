"""The host loop for fed batches: streamed from disk, or split over devices and processes.

Same decisions as :func:`sgdlab.engine.fit.train` (evaluation schedule, stopping rules,
divergence, honest clocks), reusing its helpers: the same run ledger (:mod:`.ledger`) and the
same two-tier divergence handling (:class:`~sgdlab.engine.chunk.TwoTier`). The difference is
what each compiled call receives: the rows of its K steps (from a feeder, see :mod:`.feed`)
placed by a placement (see :mod:`.batched`), instead of indices into data held on the device.

* :func:`train_shards`: a shard set streamed through a bounded buffer (``config.buffer_mb``).
* :func:`train_parallel`: an in-memory dataset, data-parallel over a :class:`MeshPlacement`.

With several processes, every process runs this loop on the same config and seed; each feeds
its own slots of every global batch. Clock-based decisions (``max_time``, evaluation every T
seconds) use process 0's clock, shared through a tiny collective, so all processes stop and
evaluate at the same step.
"""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from .._types import TrainState
from ..data.dataset import Dataset
from ..data.sampling import BatchPlan
from ..data.shards import ShardSet
from ..data.split import Standardizer
from ..errors import ConfigError, DataError
from ..grad import value_and_grad_for
from ..losses import encode_targets
from ..optim import make_unit_optimizer, runtime_rate
from .batched import LocalPlacement, make_batch_chunk_fn, make_checked_batch_chunk_fn
from .chunk import TwoTier
from .config import TrainConfig
from .evaluate import make_evaluator
from .feed import MemoryEvaluator, MemoryFeeder, StreamEvaluator, host_targets
from .fit import (MAX_CHUNK_STEPS, _check_compatible, total_steps, choose_chunk_steps,
                  chunk_loop, open_ledger, resolve_model)
from .ledger import RunLedger
from .result import FitResult


def split_blocks(shards: ShardSet, fraction: float, seed: int):
    """Hold out ``fraction`` of the blocks (whole blocks, seeded): ``(train, validation)``."""
    if fraction <= 0:
        return np.arange(shards.n_blocks), None
    if shards.n_blocks < 2:
        raise ConfigError(
            f"{shards.path} has 1 block, so no block can be held out for validation; convert "
            "with a smaller --block-rows, give separate validation data, or set "
            "validation_fraction to 0")
    order = np.random.default_rng([seed, 99]).permutation(shards.n_blocks)
    n_val = min(shards.n_blocks - 1, max(1, round(fraction * shards.n_blocks)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def train_shards(shards: ShardSet, config: TrainConfig, *, validation=None, model=None,
                 loss=None, callback=None, placement=None, blocks=None,
                 session=None) -> FitResult:
    """Stream ``shards`` (or its ``blocks``) through a ``config.buffer_mb`` buffer and train.

    ``validation``: a :class:`Dataset` (in memory), a :class:`ShardSet` (streamed), or None to
    hold out ``config.validation_fraction`` of the blocks (streamed). Standardisation uses the
    training blocks' statistics from ``stats.npy``: no extra pass over the data. ``session``:
    checkpoints and resume, as for :func:`train_fed`.
    """
    placement = placement or LocalPlacement()
    if config.test_fraction:
        raise ConfigError("test_fraction is not supported for streamed data; convert a separate "
                          "test set and score it after training")
    val_blocks = None
    if blocks is None:
        fraction = config.validation_fraction if validation is None else 0.0
        blocks, val_blocks = split_blocks(shards, fraction, config.seed)
    standardizer = shards.standardizer(blocks) if config.standardize else None
    from ..data.stream import ShardStream, load_rows_for
    # the kernel standardises each batch on the device (see engine.batched)
    feeder = ShardStream(shards, blocks, config.batch_size, config.sampling, config.seed,
                         config.drop_last, config.buffer_mb, standardizer,
                         placement.rank, placement.world)

    def evaluator(evaluate_fn, params, loss_, regression):
        if val_blocks is not None:
            return StreamEvaluator(evaluate_fn, params, shards, val_blocks,
                                   load_rows_for(shards, config.buffer_mb), standardizer,
                                   loss_, regression)
        if isinstance(validation, ShardSet):
            return StreamEvaluator(evaluate_fn, params, validation,
                                   np.arange(validation.n_blocks),
                                   load_rows_for(validation, config.buffer_mb), standardizer,
                                   loss_, regression)
        if validation is not None:
            X = standardizer.transform(validation.X) if standardizer else validation.X
            return MemoryEvaluator(evaluate_fn, params, X, host_targets(loss_, validation.y),
                                   validation.y, regression)
        return None

    try:
        return train_fed(feeder, evaluator, config, d=shards.d, task=shards.task,
                         classes=shards.classes, standardizer=standardizer, model=model,
                         loss=loss, callback=callback, placement=placement,
                         name=shards.name, kernel_transform=standardizer,
                         extra={"buffer_mb": config.buffer_mb, "load_rows": feeder.load_rows,
                                "streamed": True}, session=session)
    finally:
        feeder.close()


def train_parallel(train_data: Dataset, validation: Dataset | None, config: TrainConfig, *,
                   placement, model=None, loss=None, callback=None, session=None) -> FitResult:
    """Data-parallel training of in-memory data: each process feeds its slots of each batch.

    ``session``: checkpoints and resume, as for :func:`train_fed`; the checkpointed position is
    the global batch plan's, so a resume seeks every process to the same global batch.
    """
    standardizer = Standardizer().fit(train_data.X) if config.standardize else None
    X = standardizer.transform(train_data.X) if standardizer else train_data.X
    plan = BatchPlan(train_data.n, config.batch_size, config.sampling, config.seed,
                     config.drop_last)
    feeder = MemoryFeeder(X, train_data.y, plan, placement.rank, placement.world)

    def evaluator(evaluate_fn, params, loss_, regression):
        if validation is None:
            return None
        Xv = standardizer.transform(validation.X) if standardizer else validation.X
        return MemoryEvaluator(evaluate_fn, params, Xv, host_targets(loss_, validation.y),
                               validation.y, regression)

    return train_fed(feeder, evaluator, config, d=train_data.d, task=train_data.task,
                     classes=train_data.classes, standardizer=standardizer, model=model,
                     loss=loss, callback=callback, placement=placement,
                     n_classes=train_data.n_classes, name=train_data.name, session=session)


def _fed_chunk_steps(config: TrainConfig, spe: int, total: int | None, load_rows: int) -> int:
    """Steps per call: as in memory, but up to a load's worth of rows when streaming.

    A fed call pays a fixed cost (about a millisecond: handing over the rows, dispatch), so a
    streamed chunk may hold as many rows as one load of the buffer (the chunk is then within
    the memory already budgeted). The evaluation schedule and the run's end still bound it.
    """
    k = choose_chunk_steps(config, spe, total)
    if config.chunk_steps or not load_rows:
        return k
    k = max(k, min(MAX_CHUNK_STEPS, load_rows // config.batch_size))
    sched = config.eval_schedule
    for cap in (sched.every_steps,
                sched.every_epochs and max(1, math.ceil(sched.every_epochs * spe)), total):
        if cap:
            k = min(k, cap)
    return max(1, k)


def train_fed(feeder, make_eval, config: TrainConfig, *, d: int, task: str, classes: tuple,
              standardizer, model=None, loss=None, callback=None, placement=None,
              n_classes: int | None = None, name: str = "shards", start=None,
              kernel_transform=None, extra: dict | None = None, session=None) -> FitResult:
    """The loop shared by :func:`train_shards` and :func:`train_parallel`.

    ``kernel_transform``: a fitted Standardizer the kernel applies to every fed batch (the
    feeder hands over raw rows); None when the rows come standardised already.

    ``session`` (a :class:`~sgdlab.engine.session.Session`; with several processes every
    process has one, and only process 0's writes the run directory) is called at the
    same points as in :func:`sgdlab.engine.fit.train`: ``restore`` before the first chunk (the
    feeder is then positioned with ``feeder.seek(epoch, step_in_epoch)``), ``on_row`` per row,
    ``begin``, ``at_boundary`` after each chunk (a signal stops the run, status
    ``interrupted``) and ``finish``. The position it checkpoints is ``feeder.position``.
    """
    wall0 = time.perf_counter()
    placement = placement or LocalPlacement()
    n_classes = len(classes) if n_classes is None and task == "classification" else \
        (n_classes or 0)
    model_, loss_ = resolve_model(config, model, loss, n_classes)
    regression = loss_.target_kind == "real"
    if not regression and task == "regression":
        raise DataError(f"loss {loss_.name!r} needs class labels but {name!r} has real-valued "
                        "labels; use --model linreg (squared loss)")
    encode_targets(loss_, np.zeros(1, np.int32), n_classes)  # raises on a loss/label mismatch
    spe = feeder.steps_per_epoch
    total = total_steps(config, spe)
    K = _fed_chunk_steps(config, spe, total, getattr(feeder, "load_rows", 0))

    params = model_.init(jax.random.PRNGKey(config.seed), d, loss_.n_outputs(max(n_classes, 1)))
    optimizer = make_unit_optimizer(config.optimizer, lr=config.lr, momentum=config.momentum,
                                    schedule=config.schedule, total_steps=total or 10_000)
    state = TrainState(params, optimizer.init(params), jnp.zeros((), jnp.int32))
    if start is not None:
        _check_compatible(start, state)
        state = start
    resumed = session.restore(state) if session is not None else None
    if resumed is not None:
        state = resumed["state"]
        feeder.seek(**resumed["position"])  # the feeder continues with the next batch
    state = placement.put_state(state)

    t0 = time.perf_counter()
    vg = value_and_grad_for(config.gradient, model_, loss_, config.l2)
    t_dtype = host_targets(loss_, np.zeros(1, np.int32)).dtype
    run = TwoTier(
        placement.compile(make_batch_chunk_fn(vg, optimizer), state, K, feeder.local_batch, d,
                          t_dtype),
        lambda: placement.compile(make_checked_batch_chunk_fn(vg, optimizer), state, K,
                                  feeder.local_batch, d, t_dtype),
        to_host=placement.to_host)
    if kernel_transform is not None:
        shift = kernel_transform.mean.astype(np.float32)
        scale = kernel_transform.scale.astype(np.float32)
    else:
        shift, scale = np.zeros(d, np.float32), np.ones(d, np.float32)
    shift, scale = placement.put_replicated(shift), placement.put_replicated(scale)
    lr = placement.put_replicated(runtime_rate(config.optimizer, config.lr))
    local_params = placement.local_tree(state.params)
    evaluator = make_eval(make_evaluator(model_, loss_, config.l2, regression), local_params,
                          loss_, regression)
    compile_seconds = time.perf_counter() - t0

    metric = "val_r2" if regression else "val_accuracy"
    # A callback returning True from a row asks to stop (early stopping); every process
    # evaluates the same whole validation set, so they all decide alike.
    ledger = RunLedger(spe, wall0, lambda: placement.local_tree(state.params),
                       step=int(placement.to_host(state.step)), evaluate=evaluator,
                       callback=callback, agree=placement.agree,
                       on_row=session.on_row if session is not None else None)
    ledger.announce(total, K, compile_seconds, config.max_time)
    finished, status = open_ledger(ledger, resumed, config, total, metric)

    def loop_state(status: str = "running") -> dict:
        # The feeder's position is the next batch's: with the seed it is the whole stream state.
        return {"state": state, "position": feeder.position, **ledger.counters(),
                "status": status}

    def one_chunk(n: int):
        nonlocal state
        # Reading (or waiting for the read-ahead) is part of training time: it is the cost of
        # not holding the data in memory, and hiding it would flatter streaming.
        X, y, w, count = feeder.take(n, pad_to=K)
        XB, TB, W = placement.put_batches(X, host_targets(loss_, y), w)
        state, losses, first_bad = run(state, XB, TB, W, np.int32(n), shift, scale, lr)
        return losses, count, first_bad

    if session is not None:
        session.begin(loop_state, spe, resumed=resumed is not None, placement=placement)
    status, bad_step, message = chunk_loop(ledger, one_chunk, run, K, total, config, metric,
                                           session, loop_state, finished, status)
    local = placement.local_tree(state)
    info = {"chunk_steps": K, "processes": placement.world,
            "devices": getattr(placement, "n_devices", 1)}
    info.update(extra or {})
    result = FitResult(
        params=local.params, model=model_, loss=loss_, config=config, status=status,
        task=task, classes=classes, standardizer=standardizer,
        compile_seconds=compile_seconds + run.compile_seconds, diverged_at_step=bad_step,
        message=message, opt_state=local.opt_state, extra=info, n_features=d,
        **ledger.totals())
    if callback:
        callback({"event": "end", "result": result})
    return result
