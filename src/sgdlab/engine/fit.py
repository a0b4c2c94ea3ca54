"""In-memory training: the data on the device, batches gathered by index inside the kernel.

:func:`train` builds the run's :class:`~sgdlab.engine.setup.RunSetup` and a
:class:`MemorySource`, and hands both to :func:`~sgdlab.engine.loop.run_loop`, the loop every
kind of run shares.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .._types import Loss, Model, TrainState
from ..data.dataset import Dataset
from ..data.hostmem import aligned
from ..data.sampling import BatchPlan, EpochRows, steps_per_epoch
from ..data.split import Standardizer
from ..errors import ConfigError, DataError
from ..losses import encode_targets
from ..optim import runtime_rate
from . import cache
from .chunk import ACTIVE_ARG, compile_chunk, make_checked_chunk_fn, make_chunk_fn
from .config import TrainConfig
from .evaluate import EvalData, Validator, eval_blocks
from .loop import Callback, choose_chunk_steps, run_loop
from .result import FitResult
from .setup import RunSetup, setup_run
from .two_tier import TwoTier, locating


def device_array(a: np.ndarray) -> jax.Array:
    """``a`` on the default device, waited for.

    An aligned array is used in place on CPU (no copy; :mod:`sgdlab.data.hostmem`). The wait
    keeps moving the data out of the first chunk's clock: ``device_put`` returns before a copy
    ends, and the copy is setup (wall time), not training time.
    """
    return jax.block_until_ready(jax.device_put(aligned(a)))


def chunk_program(setup: RunSetup, state: TrainState, X, T, K: int, B: int, *,
                  checked: bool = False):
    """The compiled in-memory chunk kernel of ``setup`` for these shapes, from the program
    store when an equal run built it: the fast one, or with ``checked`` the one that stops at
    the first non-finite step (see :mod:`sgdlab.engine.chunk`). The throughput probe times
    this very program."""
    key = setup.program_key(K, B, state, X, T)
    if checked:
        name, fn = "checked_chunk", make_checked_chunk_fn(setup.value_and_grad, setup.optimizer)
    else:
        # unrolled or not follows from the model in the key (and the one backend)
        name, fn = "chunk", make_chunk_fn(setup.value_and_grad, setup.optimizer,
                                          setup.unrolled)
    return cache.get_or_build(name, key, lambda: compile_chunk(fn, state, X, T, K, B))


def memory_chunk_steps(config: TrainConfig, steps_per_epoch: int, setup: RunSetup,
                       batch_size: int | None = None) -> int:
    """Steps per call of in-memory training at ``batch_size`` (default the config's) with
    ``steps_per_epoch`` steps per epoch (the throughput probe times the same ``K``)."""
    K = choose_chunk_steps(config, steps_per_epoch, setup.total, batch_size)
    if config.chunk_steps or setup.unrolled:  # an unrolled kernel computes all of its steps
        return setup.chunk_cap(K)
    return cache.bucket_steps(K)  # only n_active steps run: a longer (bucketed) shape is free


@dataclass(frozen=True)
class PlacedData:
    """A training set and its validation set prepared once, as every run of one kind would
    prepare them, for many runs (a sweep's hundreds of short runs would otherwise each
    standardise, pad and copy the same data to the device).

    ``X (N', *example_shape)`` float32 and ``T (N',)`` encoded targets on the device (``N'``
    rows: padded as :func:`sgdlab.engine.cache.padded_rows` says), ``validation`` the blocks a
    :class:`~sgdlab.engine.evaluate.Validator` evaluates, ``standardizer`` the training
    statistics (None without standardisation). ``made_for`` names what they depend on (the
    standardisation flag, the loss and its target kind, the classes); :func:`train` refuses
    them for a configuration that would prepare the data differently.
    """

    standardizer: Standardizer | None
    X: jax.Array
    T: jax.Array
    validation: EvalData | None
    made_for: tuple

    def prep(self, X):
        return self.standardizer.transform(X) if self.standardizer is not None else \
            np.asarray(X, np.float32)


def _made_for(config: TrainConfig, setup: RunSetup) -> tuple:
    return (bool(config.standardize), setup.loss.name, setup.loss.target_kind,
            setup.n_classes)


def place_data(train_data: Dataset, validation: Dataset | None, config: TrainConfig, *,
               model: Model | None = None, loss: Loss | None = None) -> PlacedData:
    """:class:`PlacedData` of ``train_data`` and ``validation`` for runs like ``config``
    (any batch size, learning rate or seed; the same model, loss and standardisation)."""
    setup = setup_run(config, example_shape=train_data.X.shape[1:],
                      n_classes=train_data.n_classes, steps_per_epoch=1,
                      task=train_data.task, name=train_data.name, model=model, loss=loss)
    standardizer = Standardizer().fit(train_data.X) if config.standardize else None
    placed = PlacedData(standardizer, None, None, None, _made_for(config, setup))
    n_dev = cache.padded_rows(train_data.n, train_data.d * 4)
    X = device_array(cache.pad_rows(placed.prep(train_data.X), n_dev))
    T = device_array(cache.pad_rows(
        np.asarray(encode_targets(setup.loss, train_data.y, setup.n_classes)), n_dev))
    blocks = None if validation is None else eval_blocks(
        setup.loss, validation.X, validation.y, setup.n_classes, placed.prep)
    return PlacedData(standardizer, X, T, blocks, placed.made_for)


class MemorySource:
    """Batches of a training set held on the device: each step gathers its rows by index.

    The host draws the indices (:class:`~sgdlab.data.sampling.BatchPlan`, ``(K, B)`` per
    call) and, with sample weights, multiplies each drawn row's weight in; the features and
    encoded targets stay on the device, padded so that sets of similar size share a program.
    ``validation`` is evaluated whole on the schedule, preprocessed like the training rows.
    Each phase of a batch schedule draws from the same plan at its own batch size, with the
    compiled program of that batch size (from the program store when a run built it).
    """

    session_options: dict = {}
    agree = None

    def __init__(self, train_data: Dataset, validation: Dataset | None, config: TrainConfig,
                 setup: RunSetup, prep, position: dict | None = None, sample_weight=None,
                 placed: PlacedData | None = None):
        self.data, self.validation, self.prep = train_data, validation, prep
        self.placed, self.setup = placed, setup
        self.plan = BatchPlan(train_data.n, config.batch_size, config.sampling, config.seed,
                              config.drop_last)
        if position:
            self.plan.seek(**position)
        self.row_weight = normalized_weights(sample_weight, train_data.n)
        self.steps_per_epoch = self.plan.steps_per_epoch
        self.chunk_steps = memory_chunk_steps(config, self.steps_per_epoch, setup)
        if placed is not None:
            self.X, self.T = placed.X, placed.T
        else:
            # Padded rows are never drawn; they let sets of similar size share a program.
            n_dev = cache.padded_rows(train_data.n, train_data.d * 4)
            self.X = device_array(cache.pad_rows(prep(train_data.X), n_dev))
            self.T = device_array(cache.pad_rows(
                np.asarray(encode_targets(setup.loss, train_data.y, setup.n_classes)), n_dev))
        self.info: dict = {}
        self.lr = setup.lr
        self.kernels: dict = {}

    @property
    def position(self) -> dict:
        return self.plan.position

    def seek(self, epoch: int, step_in_epoch: int, row: int | None = None) -> None:
        self.plan.seek(epoch, step_in_epoch, row)

    def build(self, setup: RunSetup, state: TrainState) -> TrainState:
        """The state stays where it is (the kernels take it as it is)."""
        self.state_like = state
        return state

    def evaluator(self, setup: RunSetup, state: TrainState):
        """The whole-set validator (from the program store when an equal run built it)."""
        validator = None
        if self.validation is not None:
            center = float(np.mean(self.data.y)) if setup.regression else 0.0
            validator = Validator(setup.model, setup.loss, setup.config.l2, self.validation.X,
                                  self.validation.y, setup.n_classes, state.params,
                                  prep=self.prep, center=center,
                                  cache_key=setup.program_key(training=False),
                                  data=self.placed.validation if self.placed else None)
        return validator

    def enter(self, phase):
        """Draw at ``phase``'s batch size and rate; its two-tier kernel (fetched from the
        program store when an equal run built it)."""
        setup, b = self.setup, phase.batch_size
        self.plan.set_batch_size(b)
        self.steps_per_epoch = self.plan.steps_per_epoch
        self.chunk_steps = memory_chunk_steps(setup.config, self.steps_per_epoch, setup, b)
        self.lr = runtime_rate(setup.config.optimizer, phase.lr)
        if b not in self.kernels:
            shapes = (self.state_like, self.X, self.T, self.chunk_steps, b)
            self.kernels[b] = TwoTier(chunk_program(setup, *shapes),
                                      lambda: chunk_program(setup, *shapes, checked=True),
                                      active=locating(setup.config.optimizer, ACTIVE_ARG))
        return self.kernels[b]

    def run_chunk(self, kernel, state: TrainState, n: int):
        idx, w = self.plan.take(n, pad_to=self.chunk_steps)
        if self.row_weight is not None:
            w = w * self.row_weight[idx]  # padding keeps weight 0
        state, losses, first_bad = kernel(state, self.X, self.T, idx, w, np.int32(n), self.lr)
        return state, losses, w, first_bad

    def params(self, state: TrainState):
        return state.params

    def step(self, state: TrainState) -> int:
        return int(state.step)

    def local(self, state: TrainState) -> TrainState:
        return state


def train(train_data: Dataset, validation: Dataset | None, config: TrainConfig, *,
          model: Model | None = None, loss: Loss | None = None,
          callback: Callback | None = None, standardizer: Standardizer | None = None,
          start: TrainState | None = None, position: dict | None = None,
          session=None, init_params=None, sample_weight=None,
          placed: PlacedData | None = None) -> FitResult:
    """Train ``config`` on ``train_data``; evaluate on ``validation`` by the schedule.

    ``train_data.X`` is ``(N, d)``, or ``(N, *example_shape)`` (images ``(N, H, W, C)``); if
    ``config.standardize`` the features (channels of N-D examples) are z-scored with
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
    on) and ``position`` the batch plan's ``{"epoch", "step_in_epoch", "row"}`` (``row``
    may be left out while the batch size never changed). ``config.epochs`` and
    ``config.max_steps`` are totals counted from step 0, so two calls of one epoch each, the
    second continuing the first, equal one call of two epochs.

    ``session`` (a :class:`sgdlab.engine.session.Session`) links the loop to a run directory:
    it may supply the whole loop state to resume from (state, plan position, history,
    counters, clocks), and is called at chunk boundaries to checkpoint and to stop on a signal
    (status ``interrupted``).

    ``placed``: the same ``train_data`` and ``validation`` already prepared on the device by
    :func:`place_data` (for many runs of one sweep); a run prepares them identically itself
    without it.
    """
    wall0 = time.perf_counter()
    if config.batch_size > train_data.n and config.batch_schedule is None:
        raise ConfigError(f"batch size {config.batch_size} is larger than the number of "
                          f"training examples ({train_data.n}); use --batch-size "
                          f"{train_data.n} for full-batch gradient descent")
    setup = setup_run(config, example_shape=train_data.X.shape[1:],
                      n_classes=train_data.n_classes,
                      steps_per_epoch=steps_per_epoch(train_data.n, config.batch_size,
                                                      config.drop_last),
                      task=train_data.task, name=train_data.name, model=model, loss=loss,
                      epoch_rows=memory_epochs(train_data.n, config))
    if placed is not None:
        if placed.made_for != _made_for(config, setup):
            raise ConfigError(f"the placed data were prepared for {placed.made_for} "
                              "(standardize, loss, target kind, classes), not for this run's "
                              f"{_made_for(config, setup)}: prepare them with this "
                              "configuration (place_data)")
        standardizer = placed.standardizer
    elif config.standardize and standardizer is None:
        standardizer = Standardizer().fit(train_data.X)
    prep = (lambda X: standardizer.transform(X)) if standardizer is not None else \
        (lambda X: np.asarray(X, np.float32))
    source = MemorySource(train_data, validation, config, setup, prep, position, sample_weight,
                          placed)
    state = setup.initial_state(setup.init_params(init_params), start=start)
    result = run_loop(setup, source, state, callback=callback, session=session, wall0=wall0,
                      result_fields={"task": train_data.task, "classes": train_data.classes,
                                     "standardizer": standardizer,
                                     "n_features": train_data.d,
                                     "example_shape": tuple(train_data.X.shape[1:]),
                                     "feature_names": tuple(train_data.feature_names)})
    if result.status == "diverged" and result.diverged_at_step == 1 and \
            not outputs_finite(setup.model, state.params, prep(train_data.X[:FIRST_ROWS])):
        result.message = broken_network_message(setup.model.name)
    return result


#: Training rows a network's outputs are checked on when a run diverges at its first step.
FIRST_ROWS = 16


def outputs_finite(model: Model, params, X) -> bool:
    """Whether ``model``'s outputs on the rows ``X`` are all finite at ``params``."""
    return bool(np.isfinite(np.asarray(jax.jit(model.apply)(params, jnp.asarray(X)))).all())


def broken_network_message(name: str) -> str:
    """What a run whose network outputs NaN/inf before any update tells its user: no learning
    rate can fix that."""
    return (f"training diverged at step 1: the network {name!r} outputs NaN/inf at its initial "
            "parameters, before any update, so no learning rate can help; check its init and "
            "apply (a log or a division by 0, an overflow)")


def memory_epochs(n: int, config: TrainConfig) -> EpochRows:
    """How a plan over ``n`` rows cuts its epochs (:class:`~sgdlab.data.sampling.EpochRows`):
    with replacement every slot is a draw."""
    return EpochRows((n,), config.drop_last, config.sampling == "replacement")


def sample_weights(sample_weight, n: int, rows: str = "the training data") -> np.ndarray:
    """``sample_weight`` as a float64 ``(n,)`` array: one finite weight >= 0 per row of
    ``rows`` (named in the message: ``X``, the data), else a :class:`DataError`. The one
    check of given weights (``sgdlab.fit``, the estimators, the engine)."""
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"sample_weight must be numbers, one per row of {rows}") from None
    if w.shape != (n,):
        raise DataError(f"sample_weight has shape {w.shape}; {rows} has {n} rows: give one "
                        f"weight per row, shape ({n},)")
    if not np.isfinite(w).all() or (w < 0).any():
        bad = int(np.flatnonzero(~np.isfinite(w) | (w < 0))[0])
        raise DataError(f"sample_weight must be finite and >= 0; row {bad} has {w[bad]!r}")
    return w


def normalized_weights(sample_weight, n: int) -> np.ndarray | None:
    """``sample_weight`` (checked by :func:`sample_weights`) as float32 ``(n,)`` with mean 1
    over its positive entries; None stays None."""
    if sample_weight is None:
        return None
    w = sample_weights(sample_weight, n)
    if w.sum() <= 0:
        raise DataError("sample_weight is zero for every row: nothing to train on")
    # mean 1 over the rows that count: the objective divides by that count (losses.objective)
    return (w / w[w > 0].mean()).astype(np.float32)
