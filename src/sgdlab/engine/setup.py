"""Everything a run needs that follows from its configuration and the data's shape, built once.

:func:`setup_run` resolves the model and loss, checks them against the labels, counts the
run's steps, builds the optimiser (at rate 1, see :func:`sgdlab.optim.make_unit_optimizer`)
with its runtime rate, the value-and-gradient function, the initial :class:`TrainState` and
the compiled-program keys. Every kind of run starts here: in-memory training
(:func:`sgdlab.engine.fit.train`), streamed and multi-process training
(:mod:`sgdlab.engine.stream_fit`), random search, the throughput probe and the noise scale
(:mod:`sgdlab.lab`), so a model, an optimiser or a key is built in exactly one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .._types import Loss, Model, TrainState
from ..errors import ConfigError, DataError
from ..grad import value_and_grad_for
from ..losses import get_loss
from ..models import get_model
from ..optim import make_unit_optimizer, optimizer_options, runtime_rate
from ..tasks import OPEN_LOSS, model_options, resolve
from . import cache
from .chunk import UNROLLED_STEPS, uses_convolution
from .batch_schedule import PhaseTable
from .config import TrainConfig
from .memory import check_state_fits, state_bytes
from .schedule import ConstantClock, as_clock

#: Steps a schedule is spread over when only time or a target ends the run.
OPEN_ENDED_STEPS = 10_000


def resolve_model(config: TrainConfig, model=None, loss=None, n_classes: int | None = None):
    """``(Model, Loss)`` from the config's names, or user-supplied objects.

    ``n_classes == 0`` says the labels are real-valued: an architecture that takes any loss
    (``mlp``, ``linear``, ``cnn``, a user network) then defaults to the squared loss instead of
    softmax.
    """
    regression = n_classes == 0
    if model is None and isinstance(config.model, str):
        name = config.loss if loss is None else None
        open_loss = config.model in OPEN_LOSS or ":" in config.model  # ":": an import path
        if name is None and loss is None and regression and open_loss:
            name = "squared"
        named_model, named_loss = resolve(config.model, name, **model_settings(config))
        return named_model, (get_loss(loss) if loss is not None else named_loss)
    m = get_model(model if model is not None else config.model)
    default = "squared" if regression else "softmax"
    return m, get_loss(loss if loss is not None else (config.loss or default))


def model_settings(config: TrainConfig) -> dict:
    """The options the config's model factory declares (:func:`sgdlab.tasks.model_options`:
    ``hidden`` and ``activation`` for ``mlp``, none for ``linear``), with the config's values."""
    return {k: getattr(config, k) for k in model_options(config.model)}


def optimizer_settings(config: TrainConfig) -> dict:
    """The options the config's optimiser factory declares, with the config's values."""
    return {k: getattr(config, k) for k in optimizer_options(config.optimizer)}


#: The most steps a run can count: the step counter is an int32 (TrainState.step).
MAX_STEPS = 2 ** 31 - 1


def total_steps(config: TrainConfig, spe) -> int | None:
    """Steps a run of ``config`` takes at most (its ``epochs`` or ``max_steps``, the fewer), or
    None when only time or a target ends it; ``spe`` is steps per epoch, or the run's epoch
    clock (a batch schedule's epochs vary in length). More than :data:`MAX_STEPS` is a
    :class:`ConfigError` (the counter would wrap around)."""
    totals = []
    if config.epochs is not None:
        clock = as_clock(spe)
        if isinstance(clock, ConstantClock):
            steps, per = config.epochs * clock.spe, f"at {clock.spe:,} steps per epoch"
        else:  # a batch schedule: as many steps as its phases cut the epochs into
            # (every epoch has a step at least, so more epochs than MAX_STEPS are too many)
            steps = clock.step_at(config.epochs) if config.epochs <= MAX_STEPS else math.inf
            per = "of the batch schedule's phases"
        if not steps <= MAX_STEPS:  # also inf: --epochs 1e308
            fewer = (f"give at most {MAX_STEPS // clock.spe:,} epochs"
                     if isinstance(clock, ConstantClock) else "give fewer epochs")
            raise ConfigError(
                f"epochs {config.epochs:g} {per} are {steps:.3g} steps, more than the "
                f"{MAX_STEPS:,} a run can count; {fewer} (a run limited by --max-time alone "
                "may give that many)")
        totals.append(max(1, math.ceil(steps - 1e-9)))
    if config.max_steps is not None:
        if config.max_steps > MAX_STEPS:
            raise ConfigError(f"max steps {config.max_steps:,} is more than the {MAX_STEPS:,} a "
                              "run can count; give at most that many")
        totals.append(config.max_steps)
    return min(totals) if totals else None


@dataclass(frozen=True)
class RunSetup:
    """A run's model, loss, optimiser and counts; see :func:`setup_run`.

    ``example_shape`` of one input example (``(d,)`` for a row of features, ``(H, W, C)`` for
    an image), ``n_out`` scores out; ``n_classes`` (0 for real-valued labels);
    ``total`` steps (None: time or a target ends the run); ``lr`` the runtime rate the
    compiled step multiplies the unit optimiser's update by; ``named`` says model and loss
    came from the configuration's names (part of the program keys).
    """

    config: TrainConfig
    model: Model
    loss: Loss
    named: bool
    example_shape: tuple
    n_classes: int
    n_out: int
    total: int | None
    optimizer: object
    lr: np.ndarray
    value_and_grad: object
    #: the fast kernel writes its steps out instead of looping (CPU and a convolutional
    #: network: :func:`sgdlab.engine.chunk.unrolled_steps`), at most ``UNROLLED_STEPS`` a call
    unrolled: bool = False
    #: the batch size and learning rate of each phase, the step it starts at and the run's
    #: epoch clock (one phase without a batch schedule)
    phases: PhaseTable | None = None

    @property
    def clock(self):
        """The run's epoch clock (:class:`~sgdlab.engine.schedule.ConstantClock` for one
        batch size)."""
        return self.phases.clock

    def chunk_cap(self, k: int) -> int:
        """``k`` steps per call, or fewer for an unrolled kernel."""
        return min(k, UNROLLED_STEPS) if self.unrolled else k

    @property
    def n_in(self):
        """What the model's ``init`` takes as ``n_in`` (:func:`model_input`)."""
        return model_input(self.example_shape)

    @property
    def regression(self) -> bool:
        return self.loss.target_kind == "real"

    @property
    def metric(self) -> str:
        """The history column a target is read from."""
        return "val_r2" if self.regression else "val_accuracy"

    def init_params(self, given=None):
        """The seeded initialisation, or ``given`` parameters (fine-tuning) checked against
        its structure and shapes."""
        key = jax.random.PRNGKey(self.config.seed)
        check_state_fits(state_bytes(self.model, key, self.n_in, self.n_out, self.optimizer),
                         f"the network {self.model.name!r}")
        params = self.model.init(key, self.n_in, self.n_out)
        check_initial_params(params, self.model.name)
        return params if given is None else same_shapes(given, params)

    def initial_state(self, params=None, start: TrainState | None = None) -> TrainState:
        """Step 0 from ``params`` (default :meth:`init_params`), or ``start`` (a state to
        continue from, checked against this setup's shapes)."""
        params = self.init_params() if params is None else params
        state = TrainState(params, self.optimizer.init(params), jnp.zeros((), jnp.int32))
        if start is None:
            return state
        check_compatible(start, state)
        return jax.tree_util.tree_map(jnp.asarray, start)

    def program_key(self, *shapes, training: bool = True) -> tuple:
        """The compiled-program key of this setup with these shapes (:func:`cache.program_key`)."""
        return cache.program_key(self.config, self.named, self.model, self.loss,
                                 self.total if training else None, *shapes, training=training)


def setup_run(config: TrainConfig, *, example_shape, n_classes: int, steps_per_epoch: int,
              task: str | None = None, name: str = "the data", model=None,
              loss=None, epoch_rows=None, processes: int = 1) -> RunSetup:
    """The :class:`RunSetup` of ``config`` for examples of ``example_shape`` (``X.shape[1:]``:
    ``(d,)`` for tabular data) and ``n_classes`` classes (0: real-valued labels),
    ``steps_per_epoch`` steps per pass over the training data at ``config.batch_size``.

    ``epoch_rows`` (:class:`~sgdlab.data.sampling.EpochRows`): how the run's source cuts
    epochs, which places a batch schedule's phases (:class:`~sgdlab.engine.batch_schedule.
    PhaseTable`); a caller without it trains one batch size and refuses a schedule.
    ``processes``: how many share each batch (every phase's batch size must divide).

    ``task`` (``"classification"``/``"regression"``) is checked against the loss: a loss that
    needs classes refuses real-valued labels with the flags that fix it; ``name`` names the
    data in that message. ``model``/``loss``: user objects instead of the config's names.
    """
    model_, loss_ = resolve_model(config, model, loss, n_classes)
    if loss_.target_kind != "real" and task == "regression":
        raise DataError(f"loss {loss_.name!r} needs class labels but {name!r} has real-valued "
                        "labels; use --model linreg, or --model mlp / --model linear without "
                        "--loss (both then use the squared loss), or pass --task "
                        "classification if the labels are classes")
    n_out = loss_.n_outputs(max(n_classes, 1))  # raises for a loss that cannot take n_classes
    phases = phase_table(config, steps_per_epoch, epoch_rows, name, processes)
    total = total_steps(config, phases.clock)
    phases.check_reached(total)
    optimizer = make_unit_optimizer(
        config.optimizer, lr=config.lr, schedule=config.schedule,
        total_steps=total or OPEN_ENDED_STEPS,
        **optimizer_settings(config))
    return RunSetup(
        config=config, model=model_, loss=loss_,
        named=model is None and loss is None and isinstance(config.model, str),
        example_shape=tuple(int(s) for s in example_shape),
        n_classes=n_classes, n_out=n_out, total=total, optimizer=optimizer,
        lr=runtime_rate(config.optimizer, config.lr),
        value_and_grad=value_and_grad_for(config.gradient, model_, loss_, config.l2),
        unrolled=jax.default_backend() == "cpu" and uses_convolution(
            model_, model_input(example_shape), n_out), phases=phases)


def phase_table(config: TrainConfig, steps_per_epoch: int, epoch_rows=None,
                data: str = "the data", processes: int = 1) -> PhaseTable:
    """The phases of ``config`` on epochs cut as ``epoch_rows`` says: its batch schedule's,
    or one phase at ``batch_size`` and ``lr``. A lab reads a schedule's steps from it (e.g.
    ``step_reaching(examples)``, the steps of an example budget)."""
    schedule = config.batch_phases
    if schedule is None:
        return PhaseTable.fixed(config.batch_size, config.lr, steps_per_epoch, epoch_rows)
    if epoch_rows is None:
        raise ConfigError(f"batch_schedule={config.batch_schedule!r} (--batch-schedule) "
                          "applies to training runs (sgdlab train, sgdlab.fit); this tool "
                          "trains one batch size at a time: drop it")
    return PhaseTable.build(schedule, epoch_rows, lr=config.lr, lr_scaling=config.lr_scaling,
                            data=repr(data), processes=processes)


def model_input(example_shape):
    """A model's ``n_in`` for examples of ``example_shape``: the int ``d`` for a row of
    features ``(d,)`` (what every model took before N-D data, so user ``(init, apply)`` pairs
    written for rows keep working), else the shape itself, e.g. ``(H, W, C)``."""
    shape = tuple(int(s) for s in example_shape)
    return shape[0] if len(shape) == 1 else shape


def check_initial_params(params, name: str) -> None:
    """Refuse a network whose ``init`` gives parameters gradient descent cannot move: a leaf
    that is not a floating-point array (Python or NumPy integers: autodiff has no gradient for
    them) or that holds NaN or infinite values. ``name`` names the network."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    if not leaves:
        raise ConfigError(f"the network {name!r} has no parameters (its init returned "
                          f"{params!r}); return a dict of float arrays")
    wheres = [jax.tree_util.keystr(path) or "(the only leaf)" for path, _ in leaves]
    for where, (_, leaf) in zip(wheres, leaves):
        dtype = getattr(leaf, "dtype", None)
        if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
            kind = dtype if dtype is not None else type(leaf).__name__
            raise ConfigError(
                f"the network {name!r} initialises parameter {where} as {kind}; parameters "
                "must be floating-point arrays (integers have no gradient): create it with "
                "a float dtype, e.g. jnp.zeros(shape, jnp.float32)")
    finite = np.asarray(leaves_finite(params))
    if not finite.all():
        where = wheres[int(np.argmin(finite))]
        raise ConfigError(f"the network {name!r} initialises parameter {where} with NaN or "
                          "infinite values; gradient descent needs finite starting values")


@jax.jit
def leaves_finite(params) -> jax.Array:
    """``(L,)`` bools: whether leaf ``l`` of ``params`` (in ``tree_leaves`` order) is all
    finite. One compiled program per tree of shapes, where a check per leaf in eager mode
    compiles two (about 0.1 s each on a CPU, at every start of a run)."""
    return jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(params)])


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


def check_compatible(start: TrainState, fresh: TrainState) -> None:
    """Refuse a state to continue from whose parameter or optimiser shapes differ."""
    a = jax.tree_util.tree_map(jnp.shape, (start.params, start.opt_state))
    b = jax.tree_util.tree_map(jnp.shape, (fresh.params, fresh.opt_state))
    if jax.tree_util.tree_structure(a) != jax.tree_util.tree_structure(b) or \
            jax.tree_util.tree_leaves(a) != jax.tree_util.tree_leaves(b):
        raise ConfigError("cannot continue from the given state: its parameter or optimiser "
                          "shapes differ from this configuration's model and data")
