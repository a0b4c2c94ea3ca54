"""Every training setting, declared once: default, kind, range, role and meaning.

Each :class:`TrainConfig` field is a :func:`setting`. The declaration is the one home of the
setting's facts; the rest is derived from it: the checks a config runs when it is built (with
one message from Python, TOML files and the command line), the command-line flags and their
help (:mod:`sgdlab.cli.common`), the TOML keys, ``config.json``, the compiled program's key
(:func:`sgdlab.engine.cache.program_key`), the estimators' parameters, and the ``sgdlab
train`` command a sweep recommends (:func:`sgdlab.lab.next_run.train_command`).

A model's or an optimiser's option is a setting whose name is a keyword parameter of the
factory (:data:`sgdlab.models.MODELS`, :data:`sgdlab.optim.optimizers.FACTORIES`): a run
passes each factory exactly the options it declares (:func:`factories_taking`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..data.sampling import SAMPLINGS
from ..errors import ConfigError
from ..grad.select import GRADIENT_METHODS
from ..losses import LOSSES
from ..models import ACTIVATIONS, MODELS
from ..optim.optimizers import FACTORIES, OPTIMIZER_OPTIONS, SCHEDULES
from ..optim.scaling import LR_SCALINGS
from ..tasks import TASK_MODELS, check_task_loss, model_options
from .batch_schedule import BatchSchedule
from .config_types import KEY_ROLES, MAX_DIMENSION, Setting
from .schedule import EvalSchedule

__all__ = ["KEY_ROLES", "OBJECT_MARK", "TrainConfig", "factories_taking", "key_fields",
           "setting", "settings"]


def setting(default, role: str, kind: str, help: str, **rules):
    """A :class:`TrainConfig` field: its default and its :class:`Setting` declaration
    (``role``: a :data:`KEY_ROLES` entry; ``kind``: a key of
    :data:`~sgdlab.engine.config_types.KINDS`; ``help``: its meaning; ``rules``: range,
    ``choices``, ``optional``, ``flags``). A default of None makes it optional."""
    rules.setdefault("optional", default is None)
    return field(default=default,
                 metadata={"setting": Setting(role, kind, help, default, **rules)})


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters and stopping rules of one training run.

    A run stops at whichever comes first: ``epochs``, ``max_steps``, ``max_time`` (seconds of
    training time, evaluation and compilation excluded), or the validation metric reaching
    ``target`` (accuracy for classification, R^2 for regression). Every value is checked
    when the config is built (:meth:`~sgdlab.engine.config_types.Setting.check`).
    """

    # what is trained (role "model"); an option reaches the architectures that declare it
    model: str = setting(
        "softmax", "model", "model", "what is trained: {choices}; or your own network as "
        "package.module:factory (a Flax or Equinox module, or an (init, apply) pair)",
        choices=lambda: TASK_MODELS)
    loss: str | None = setting(
        None, "model", "loss", "the loss of an architecture or your own network, instead of "
        "softmax (squared for real-valued labels): {choices}", choices=lambda: LOSSES)
    hidden: tuple = setting((128,), "model", "widths",
                            "widths of the hidden (dense) layers, e.g. 256,128")
    activation: str = setting("relu", "model", "text",
                              "activation of the hidden layers: {choices}",
                              choices=lambda: ACTIVATIONS)
    channels: tuple = setting((6, 16), "model", "widths",
                              "channels of each convolution + pooling stage, e.g. 6,16")
    kernel: int = setting(5, "model", "whole number",
                          "side of the square convolution window", low=1, high=64)
    # how batches are drawn (1 = stochastic, N = full batch)
    batch_size: int = setting(32, "shape", "whole number",
                              "examples per step (1: stochastic, N: full batch)", low=1,
                              group="optimisation")
    sampling: str = setting("shuffle", "host", "text", "how batches are drawn: {choices}",
                            choices=lambda: SAMPLINGS, group="optimisation")
    drop_last: bool = setting(False, "host", "flag",
                              "drop the last partial batch of each epoch (else it is masked)",
                              group="optimisation")
    # how parameters move: W <- W - lr * update; an option reaches the optimisers that
    # declare it
    lr: float = setting(0.1, "optimizer", "rate", "learning rate", low=0.0, low_open=True)
    optimizer: str = setting("sgd", "optimizer", "optimizer", "the update rule: {choices}",
                             choices=lambda: FACTORIES)
    momentum: float = setting(0.9, "optimizer", "real", "momentum coefficient", low=0.0,
                              high=1.0, high_open=True)
    weight_decay: float = setting(1e-4, "optimizer", "real", "decoupled weight decay",
                                  low=0.0)
    schedule: str = setting("constant", "optimizer", "text",
                            "learning-rate schedule over the run: {choices}",
                            choices=lambda: SCHEDULES)
    # the batch size over the run: phases of their own batch size and learning rate
    batch_schedule: str | None = setting(
        None, "host", "batch schedule", "batch size over the run: phases BATCH[@LR]:START, "
        "START in examples seen (2000) or epochs (2e), e.g. '16:0,64:2000,256:8000' or "
        "'16@0.05:0,64@0.2:2e'; one compiled program per batch size, --batch-size (if given) "
        "is the first phase's", group="batch schedule")
    lr_scaling: str = setting("none", "host", "text", "learning rate of a phase that gives "
                              "none, from --lr at the first phase's batch size B0: none (--lr), "
                              "linear (lr B/B0), sqrt (lr sqrt(B/B0)); {choices}",
                              choices=lambda: LR_SCALINGS, group="batch schedule")
    l2: float = setting(0.0, "objective", "real", "L2 strength lambda: mean loss + lambda/2 "
                        "|W|^2 (biases are not penalised)", low=0.0)
    gradient: str = setting("autodiff", "optimizer", "text",
                            "how the gradient is computed: {choices}",
                            choices=lambda: GRADIENT_METHODS)
    # when to stop
    epochs: float | None = setting(10.0, "host", "real", "passes over the training data "
                                   "(fractions allowed)", low=0.0, low_open=True,
                                   optional=True, group="stopping")
    max_steps: int | None = setting(None, "host", "whole number", "stop after this many steps",
                                    low=1, group="stopping")
    max_time: float | None = setting(None, "host", "duration",
                                     "stop after this much training time (evaluation and "
                                     "compilation excluded), e.g. 60s, 5min",
                                     group="stopping")
    target: float | None = setting(None, "host", "real", "stop when the validation accuracy "
                                   "(R^2 for regression) reaches this", high=1.0,
                                   flags=("--target-accuracy", "--target"), group="stopping")
    # when to look, and steps per compiled call
    eval_every: str = setting("1 epoch", "host", "eval schedule", "evaluation schedule: "
                              "'500 steps', '2s', '1 epoch', combined with commas",
                              group="stopping")
    chunk_steps: int | None = setting(None, "shape", "whole number",
                                      "steps per compiled call (none: picked from the batch "
                                      "size and the schedule)", low=1, high=MAX_DIMENSION,
                                      group="stopping")
    # data handling
    validation_fraction: float = setting(0.2, "host", "real", "held-out share for validation",
                                         low=0.0, high=1.0, high_open=True, group="data")
    test_fraction: float = setting(0.0, "host", "real", "share kept for a final test score",
                                   low=0.0, high=1.0, high_open=True, group="data")
    standardize: bool = setting(True, "host", "flag", "z-score the features (and real-valued "
                                "targets) with the training part's statistics", group="data")
    buffer_mb: float = setting(64.0, "host", "real", "streamed shard data: MiB of read "
                               "buffers, which bound memory whatever the data size", low=0.0,
                               low_open=True, group="data")
    seed: int = setting(0, "host", "whole number", "seed for split, initialisation and "
                        "batch order", low=0, high=2 ** 32 - 1, group="optimisation")
    # free-form notes for reports
    extra: dict = field(default_factory=dict, compare=False, metadata={
        "setting": Setting("host", "table", "free-form notes for reports", group="notes")})

    def __post_init__(self):
        for name, declared in settings().items():
            object.__setattr__(self, name, declared.check(name, getattr(self, name)))
        self._check_together()

    def _check_together(self) -> None:
        """The rules that involve several settings."""
        check_task_loss(self.model, self.loss)
        if callable(self.lr) and not isinstance(self.optimizer, str):
            raise ConfigError("an optax optimiser object carries its own learning rate: give "
                              "the schedule to the optax optimiser, not as lr")
        if callable(self.lr) and self.schedule != "constant":
            raise ConfigError(f"lr is an optax schedule already; drop schedule="
                              f"{self.schedule!r} (or give lr as a number)")
        if self.epochs is None and self.max_steps is None and self.max_time is None \
                and self.target is None:
            raise ConfigError("no stopping rule: set epochs, max_steps, max_time or target "
                              "(--epochs, --max-steps, --max-time, --target-accuracy)")
        self._check_batch_schedule()
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise ConfigError("validation and test fractions leave no training data; "
                              f"they sum to {self.validation_fraction + self.test_fraction}")

    def _check_batch_schedule(self) -> None:
        """A schedule's first phase sets ``batch_size``; its learning rates need a number."""
        if self.batch_schedule is None:
            if self.lr_scaling != "none":
                raise ConfigError(f"lr_scaling={self.lr_scaling!r} (--lr-scaling) scales the "
                                  "learning rate of a batch schedule's phases: give "
                                  "batch_schedule (--batch-schedule) or drop it")
            return
        schedule = BatchSchedule.parse(self.batch_schedule)
        first = schedule.phases[0].batch_size
        if self.batch_size not in (first, _SETTINGS["batch_size"].default):
            raise ConfigError(f"batch_size={self.batch_size} (--batch-size) contradicts the "
                              f"batch schedule {self.batch_schedule!r}, whose first phase "
                              f"trains at {first}: drop --batch-size or make it {first}")
        object.__setattr__(self, "batch_size", first)
        numeric = not callable(self.lr) and isinstance(self.optimizer, str)
        if not numeric and (schedule.gives_lr or self.lr_scaling != "none"):
            raise ConfigError("a batch schedule's per-phase learning rates (@LR, --lr-scaling) "
                              "multiply a numeric lr of a named optimiser; with an optax "
                              "schedule or optimiser object, give phases without @LR and "
                              "lr_scaling 'none'")

    def one_batch_size(self, tool: str) -> None:
        """Refuse a batch schedule in ``tool`` (e.g. ``"sgdlab sweep"``), which measures
        fixed batch sizes one at a time."""
        if self.batch_schedule is not None:
            raise ConfigError(f"batch_schedule={self.batch_schedule!r} (--batch-schedule): "
                              f"{tool} measures fixed batch sizes, one at a time; drop it (a "
                              "batch schedule is for training runs: sgdlab train, sgdlab.fit)")

    @property
    def batch_phases(self) -> "BatchSchedule | None":
        """The parsed :class:`~sgdlab.engine.batch_schedule.BatchSchedule` (None without)."""
        return None if self.batch_schedule is None else BatchSchedule.parse(self.batch_schedule)

    @property
    def eval_schedule(self) -> EvalSchedule:
        return EvalSchedule.parse(self.eval_every)

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes``; a new ``batch_schedule`` brings its first phase's batch
        size unless ``batch_size`` is given too."""
        if changes.get("batch_schedule") is not None and "batch_size" not in changes:
            first = BatchSchedule.parse(changes["batch_schedule"]).phases[0]
            changes["batch_size"] = first.batch_size
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain JSON values; a Python object setting (a user model or loss, an optax
        optimiser or schedule) becomes ``"<python object: ...>"`` (see :data:`OBJECT_MARK`):
        a record of what ran, which a resume must be given again."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["extra"] = dict(self.extra)
        for key, value in d.items():
            if isinstance(value, tuple) and all(type(v) is int for v in value):
                d[key] = list(value)  # widths
            elif value is not None and not isinstance(value, (str, int, float, bool, dict)):
                d[key] = f"{OBJECT_MARK}{_object_name(value)}>"
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; valid settings: "
                              f"{', '.join(sorted(names))}")
        return cls(**d)


def settings() -> dict[str, Setting]:
    """Every setting's declaration, by name, in declaration order (one dict, read only)."""
    return _SETTINGS


_SETTINGS = {f.name: f.metadata["setting"] for f in dataclasses.fields(TrainConfig)}


def key_fields(role: str) -> tuple[str, ...]:
    """The :class:`TrainConfig` settings of one :data:`KEY_ROLES` role, in declaration order."""
    return tuple(name for name, s in settings().items() if s.role == role)


def factories_taking(name: str) -> tuple[str, ...]:
    """The models (for a ``"model"`` setting) or optimisers (``"optimizer"``) whose factory
    declares the option ``name``; empty for any other setting."""
    role = settings()[name].role
    if role == "model":
        return tuple(m for m in MODELS if name in model_options(m))
    if role == "optimizer":
        return tuple(o for o, options in OPTIMIZER_OPTIONS.items() if name in options)
    return ()


#: How :meth:`TrainConfig.to_dict` records a Python object setting.
OBJECT_MARK = "<python object: "


def _object_name(value) -> str:
    name = getattr(value, "__name__", None) or getattr(value, "name", None)
    return f"{type(value).__name__} {name}" if isinstance(name, str) else type(value).__name__
