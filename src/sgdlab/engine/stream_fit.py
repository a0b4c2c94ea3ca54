"""Training on fed batches: streamed from disk, or split over devices and processes.

The same loop as in-memory training (:func:`~sgdlab.engine.loop.run_loop`: evaluation
schedule, stopping rules, divergence, honest clocks) with another source of batches, a
:class:`FedSource`: each compiled call receives the rows of its K steps (from a feeder, see
:mod:`.feed`) placed by a placement (see :mod:`.batched`), instead of indices into data held
on the device.

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

import numpy as np

from .._types import TrainState
from ..data.dataset import Dataset
from ..data.sampling import BatchPlan
from ..data.shards import ShardSet
from ..data.split import Standardizer
from ..errors import ConfigError
from ..losses import encode_targets
from ..optim import runtime_rate
from .batched import (FED_ACTIVE_ARG, LocalPlacement, make_batch_chunk_fn,
                      make_checked_batch_chunk_fn)
from .config import TrainConfig
from .evaluate import make_evaluator
from .evaluate import Validator
from .feed import MemoryFeeder, StreamEvaluator, host_targets
from .loop import MAX_CHUNK_STEPS, choose_chunk_steps, run_loop
from .result import FitResult
from .setup import RunSetup, setup_run
from .two_tier import TwoTier, locating


def split_blocks(shards: ShardSet, fraction: float, seed: int):
    """Hold out ``fraction`` of the blocks (whole blocks, seeded): ``(train, validation)``."""
    if fraction <= 0:
        return np.arange(shards.n_blocks), None
    if shards.n_blocks < 2:
        raise ConfigError(
            f"{shards.path} has 1 block, so no block can be held out for validation; convert "
            "with a smaller --block-rows, give separate validation data (--validation-data), "
            "or set the validation fraction to 0 (--validation-fraction 0)")
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

    def evaluator(setup: RunSetup, params):
        if val_blocks is not None or isinstance(validation, ShardSet):
            source, blocks = (shards, val_blocks) if val_blocks is not None else \
                (validation, np.arange(validation.n_blocks))
            return StreamEvaluator(
                make_evaluator(setup.model, setup.loss, config.l2, setup.regression), params,
                source, blocks, load_rows_for(source, config.buffer_mb), standardizer,
                setup.loss, setup.regression)
        return memory_validator(setup, params, validation, standardizer)

    try:
        return train_fed(feeder, evaluator, config, example_shape=shards.example_shape,
                         task=shards.task,
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

    def evaluator(setup: RunSetup, params):
        return memory_validator(setup, params, validation, standardizer)

    return train_fed(feeder, evaluator, config, example_shape=train_data.X.shape[1:],
                     task=train_data.task,
                     classes=train_data.classes, standardizer=standardizer, model=model,
                     loss=loss, callback=callback, placement=placement,
                     n_classes=train_data.n_classes, name=train_data.name, session=session)


def memory_validator(setup: RunSetup, params, validation: Dataset | None, standardizer):
    """The in-memory :class:`Validator` of a fed run (None without validation data): the
    same evaluation as in-memory training, centred at 0 as every process computes it."""
    if validation is None:
        return None
    prep = standardizer.transform if standardizer is not None else None
    return Validator(setup.model, setup.loss, setup.config.l2, validation.X, validation.y,
                     setup.n_classes, params, prep=prep)


def _fed_chunk_steps(config: TrainConfig, spe: int, total: int | None, load_rows: int,
                     batch_size: int) -> int:
    """Steps per call at ``batch_size``: as in memory, but up to a load's worth of rows when
    streaming.

    A fed call pays a fixed cost (about a millisecond: handing over the rows, dispatch), so a
    streamed chunk may hold as many rows as one load of the buffer (the chunk is then within
    the memory already budgeted). The evaluation schedule and the run's end still bound it.
    """
    k = choose_chunk_steps(config, spe, total, batch_size)
    if config.chunk_steps or not load_rows:
        return k
    k = max(k, min(MAX_CHUNK_STEPS, load_rows // batch_size))
    sched = config.eval_schedule
    for cap in (sched.every_steps,
                sched.every_epochs and max(1, math.ceil(sched.every_epochs * spe)), total):
        if cap:
            k = min(k, cap)
    return max(1, k)


class FedSource:
    """Batches handed to the kernel by a feeder (see :mod:`.feed`), placed by a placement.

    The feeder gives the rows of K steps (read from shards, or this process's slots of every
    global batch); the placement puts them on the devices; the kernel standardises each batch
    with ``kernel_transform`` (a fitted Standardizer; None when rows come standardised).
    Reading, or waiting for the read-ahead, is part of training time: it is the cost of not
    holding the data in memory, and hiding it would flatter streaming. Each phase of a batch
    schedule has the program of its batch size (compiled once per run) and the feeder goes
    on at that batch size.
    """

    def __init__(self, feeder, make_eval, config: TrainConfig, setup: RunSetup, *, placement,
                 kernel_transform=None, extra: dict | None = None):
        self.feeder, self.make_eval, self.placement = feeder, make_eval, placement
        self.setup = setup
        self.steps_per_epoch = feeder.steps_per_epoch
        self.chunk_steps = self._chunk_steps(config.batch_size)
        self.kernel_transform = kernel_transform
        self.session_options = {"placement": placement}
        # A callback returning True from a row asks to stop (early stopping); every process
        # evaluates the same whole validation set, so they all decide alike.
        self.agree = placement.agree
        self.info = {"processes": placement.world,
                     "devices": getattr(placement, "n_devices", 1), **(extra or {})}
        self.kernels: dict = {}

    def _chunk_steps(self, batch_size: int) -> int:
        setup, feeder = self.setup, self.feeder
        return setup.chunk_cap(_fed_chunk_steps(
            setup.config, feeder.steps_per_epoch, setup.total,
            getattr(feeder, "load_rows", 0), batch_size))

    @property
    def position(self) -> dict:
        # The feeder's position is the next batch's: with the seed it is the whole stream state.
        return self.feeder.position

    def seek(self, epoch: int, step_in_epoch: int, row: int | None = None) -> None:
        self.feeder.seek(epoch=epoch, step_in_epoch=step_in_epoch, row=row)

    def build(self, setup: RunSetup, state: TrainState):
        placement, shape = self.placement, setup.example_shape
        state = placement.put_state(state)
        self.state_like = state
        self.loss = setup.loss
        if self.kernel_transform is not None:
            shift = self.kernel_transform.mean.astype(np.float32)
            scale = self.kernel_transform.scale.astype(np.float32)
        else:
            # per feature, or per channel of N-D examples (the last axis)
            shift, scale = np.zeros(shape[-1], np.float32), np.ones(shape[-1], np.float32)
        self.shift, self.scale = placement.put_replicated(shift), placement.put_replicated(scale)
        return state

    def evaluator(self, setup: RunSetup, state: TrainState):
        return self.make_eval(setup, self.placement.local_tree(state.params))

    def enter(self, phase):
        """Feed at ``phase``'s batch size and rate; the two-tier kernel of that batch size
        (compiled the first time this run needs it)."""
        setup, placement, b = self.setup, self.placement, phase.batch_size
        self.feeder.set_batch_size(b)
        self.steps_per_epoch = self.feeder.steps_per_epoch
        self.chunk_steps = self._chunk_steps(b)
        self.lr = placement.put_replicated(runtime_rate(setup.config.optimizer, phase.lr))
        if b not in self.kernels:
            vg, opt = setup.value_and_grad, setup.optimizer
            t_dtype = host_targets(setup.loss, np.zeros(1, np.int32)).dtype
            args = (self.state_like, self.chunk_steps, self.feeder.local_batch,
                    setup.example_shape, t_dtype)
            self.kernels[b] = TwoTier(
                placement.compile(make_batch_chunk_fn(vg, opt, setup.unrolled), *args),
                lambda: placement.compile(make_checked_batch_chunk_fn(vg, opt), *args),
                to_host=placement.to_host,
                active=locating(setup.config.optimizer, FED_ACTIVE_ARG))
        return self.kernels[b]

    def run_chunk(self, kernel, state: TrainState, n: int):
        X, y, w, count = self.feeder.take(n, pad_to=self.chunk_steps)
        XB, TB, W = self.placement.put_batches(X, host_targets(self.loss, y), w)
        state, losses, first_bad = kernel(state, XB, TB, W, np.int32(n), self.shift,
                                          self.scale, self.lr)
        return state, losses, count, first_bad

    def params(self, state: TrainState):
        return self.placement.local_tree(state.params)

    def step(self, state: TrainState) -> int:
        return int(self.placement.to_host(state.step))

    def local(self, state: TrainState) -> TrainState:
        return self.placement.local_tree(state)


def train_fed(feeder, make_eval, config: TrainConfig, *, example_shape: tuple, task: str,
              classes: tuple,
              standardizer, model=None, loss=None, callback=None, placement=None,
              n_classes: int | None = None, name: str = "shards", start=None,
              kernel_transform=None, extra: dict | None = None, session=None) -> FitResult:
    """Train on batches a ``feeder`` hands over: :func:`train_shards` and
    :func:`train_parallel` end here (a :class:`FedSource` in the shared
    :func:`~sgdlab.engine.loop.run_loop`).

    ``make_eval(setup, params)`` builds the validator (or None).
    ``kernel_transform``: a fitted Standardizer the kernel applies to every fed batch (the
    feeder hands over raw rows); None when the rows come standardised already. ``session``
    (with several processes every process has one, and only process 0's writes the run
    directory) checkpoints and resumes as in :func:`sgdlab.engine.fit.train`; the position it
    checkpoints is ``feeder.position``.
    """
    wall0 = time.perf_counter()
    placement = placement or LocalPlacement()
    n_classes = len(classes) if n_classes is None and task == "classification" else \
        (n_classes or 0)
    setup = setup_run(config, example_shape=example_shape, n_classes=n_classes,
                      steps_per_epoch=feeder.steps_per_epoch,
                      task=task, name=name, model=model, loss=loss,
                      epoch_rows=feeder.epoch_rows, processes=placement.world)
    encode_targets(setup.loss, np.zeros(1, np.int32), n_classes)  # a loss/label mismatch
    source = FedSource(feeder, make_eval, config, setup, placement=placement,
                       kernel_transform=kernel_transform, extra=extra)
    return run_loop(setup, source, setup.initial_state(start=start), callback=callback,
                    session=session, wall0=wall0,
                    result_fields={"task": task, "classes": classes,
                                   "standardizer": standardizer,
                                   "n_features": math.prod(example_shape),
                                   "example_shape": tuple(example_shape)})
