"""Every training setting in one frozen, validated place, each default with its meaning."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..data.sampling import SAMPLINGS
from ..errors import ConfigError, choices_message
from ..grad import GRADIENT_METHODS
from ..optim import OPTIMIZERS, SCHEDULES, check_rate
from .config_types import MAX_DIMENSION, check_setting_kinds
from .schedule import EvalSchedule, parse_duration


#: What each setting changes in a compiled program (``field(metadata={"key": ...})``), so the
#: program store's key is derived from the settings instead of listed by hand
#: (:func:`sgdlab.engine.cache.program_key`):
#:
#: * ``model``: the network and loss (keyed by value when they come from names);
#: * ``objective``: the minimised function itself (``l2``), for training and evaluation;
#: * ``optimizer``: how a training step moves the parameters (the update rule);
#: * ``shape``: enters as an array shape the caller passes (``batch_size``, ``chunk_steps``);
#: * ``host``: decided on the host between compiled calls, never compiled in.
#:
#: A new setting must say which it is; a test fails for one that does not.
KEY_ROLES = ("model", "objective", "optimizer", "shape", "host")


def _setting(default, role: str, kind: str | None = None):
    """A setting: its default, its program-key role (:data:`KEY_ROLES`) and, for a new one,
    its kind (a key of :data:`sgdlab.engine.config_types.KINDS`; the older settings' kinds
    are in ``config_types.CHECKS``)."""
    return field(default=default, metadata={"key": role, "kind": kind})


def key_fields(role: str) -> tuple[str, ...]:
    """The :class:`TrainConfig` settings of one :data:`KEY_ROLES` role, in declaration order."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig)
                 if f.metadata.get("key") == role)


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters and stopping rules of one training run.

    A run stops at whichever comes first: ``epochs``, ``max_steps``, ``max_time`` (seconds of
    training time, evaluation and compilation excluded), or the validation metric reaching
    ``target`` (accuracy for classification, R^2 for regression).
    """

    # what is trained (role "model")
    #   named task: softmax, logistic, svm, perceptron, mlp, ...; loss overrides the task's
    #   (e.g. mlp with multiclass_svm); hidden and activation configure mlp and cnn's dense
    #   layers; channels (one convolution + pooling per entry) and kernel (side of the square
    #   convolution window) configure cnn. A model takes the options its factory declares.
    model: str = _setting("softmax", "model")
    loss: str | None = _setting(None, "model")
    hidden: tuple = _setting((128,), "model")
    activation: str = _setting("relu", "model")
    channels: tuple = _setting((6, 16), "model", "widths")
    kernel: int = _setting(5, "model", "whole number")
    # how batches are drawn: B examples per step (1 = stochastic, N = full batch); sampling is
    # shuffle | replacement | sequential; drop_last drops the partial last batch (else masked)
    batch_size: int = _setting(32, "shape")
    sampling: str = _setting("shuffle", "host")
    drop_last: bool = _setting(False, "host")
    # how parameters move: W <- W - lr * update; optimizer sgd | momentum | nesterov | adam |
    # adamw (or an optax object), momentum for momentum/nesterov, adamw's decoupled weight
    # decay, the lr schedule over the run, the gradient method (grad.GRADIENT_METHODS); l2 is
    # lambda in mean loss + lambda/2 |W|^2
    lr: float = _setting(0.1, "optimizer")
    optimizer: str = _setting("sgd", "optimizer")
    momentum: float = _setting(0.9, "optimizer")
    weight_decay: float = _setting(1e-4, "optimizer", "real")
    schedule: str = _setting("constant", "optimizer")
    l2: float = _setting(0.0, "objective")
    gradient: str = _setting("autodiff", "optimizer")
    # when to stop: passes over the training set (fractions allowed), steps, seconds of
    # training time, or a validation accuracy (R^2) to reach
    epochs: float | None = _setting(10.0, "host")
    max_steps: int | None = _setting(None, "host")
    max_time: float | None = _setting(None, "host")
    target: float | None = _setting(None, "host")
    # when to look: see EvalSchedule ('500 steps', '2s', '1 epoch', ...); steps per compiled
    # call (None picks one from the batch size and the schedule)
    eval_every: str = _setting("1 epoch", "host")
    chunk_steps: int | None = _setting(None, "shape")
    # data handling: held-out shares, z-scoring with training statistics, MiB of read buffers
    # for streamed shard sets, and one seed for split, initialisation and batch order
    validation_fraction: float = _setting(0.2, "host")
    test_fraction: float = _setting(0.0, "host")
    standardize: bool = _setting(True, "host")
    buffer_mb: float = _setting(64.0, "host", "real")
    seed: int = _setting(0, "host")
    # free-form notes for reports
    extra: dict = field(default_factory=dict, compare=False, metadata={"key": "host"})

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        for key, value in check_setting_kinds(self).items():  # kinds first, then ranges
            set_(key, value)
        if isinstance(self.hidden, str):
            set_("hidden", parse_hidden(self.hidden))
        set_("hidden", tuple(int(h) for h in self.hidden))
        if isinstance(self.channels, str):
            set_("channels", parse_hidden(self.channels, "channel counts"))
        set_("channels", tuple(int(c) for c in self.channels))
        if not 1 <= self.kernel <= 64:
            raise ConfigError(f"kernel must be a window side from 1 to 64, got {self.kernel}")
        set_("max_time", parse_duration(self.max_time))
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) \
                or self.batch_size < 1:
            raise ConfigError(f"batch size must be a whole number >= 1, got {self.batch_size!r}")
        if self.sampling not in SAMPLINGS:
            raise ConfigError(choices_message("sampling", self.sampling, SAMPLINGS))
        if not callable(self.lr):
            check_rate(self.lr)
        if isinstance(self.optimizer, str) and self.optimizer not in OPTIMIZERS:
            raise ConfigError(choices_message("optimizer", self.optimizer, OPTIMIZERS))
        if callable(self.lr) and not isinstance(self.optimizer, str):
            raise ConfigError("an optax optimiser object carries its own learning rate: give "
                              "the schedule to the optax optimiser, not as lr")
        if callable(self.lr) and self.schedule != "constant":
            raise ConfigError(f"lr is an optax schedule already; drop schedule="
                              f"{self.schedule!r} (or give lr as a number)")
        if self.schedule not in SCHEDULES:
            raise ConfigError(choices_message("schedule", self.schedule, SCHEDULES))
        if self.gradient not in GRADIENT_METHODS:
            raise ConfigError(choices_message("gradient", self.gradient, GRADIENT_METHODS))
        if self.l2 < 0:
            raise ConfigError(f"l2 must be >= 0, got {self.l2}")
        if self.epochs is not None and self.epochs <= 0:
            raise ConfigError(f"epochs must be > 0, got {self.epochs}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError(f"max steps must be >= 1, got {self.max_steps}")
        if self.epochs is None and self.max_steps is None and self.max_time is None \
                and self.target is None:
            raise ConfigError("no stopping rule: set epochs, max_steps, max_time or target")
        if self.target is not None and not self.target <= 1.0:
            raise ConfigError(f"target must be at most 1 (an accuracy or R^2), got {self.target}")
        if self.chunk_steps is not None and self.chunk_steps < 1:
            raise ConfigError(f"chunk steps must be >= 1, got {self.chunk_steps}")
        for name in ("validation_fraction", "test_fraction"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ConfigError(f"{name.replace('_', ' ')} must be in [0, 1), got {v}")
        if self.validation_fraction + self.test_fraction >= 1.0:
            raise ConfigError("validation and test fractions leave no training data; "
                              f"they sum to {self.validation_fraction + self.test_fraction}")
        if not (isinstance(self.buffer_mb, (int, float)) and self.buffer_mb > 0):
            raise ConfigError(f"buffer size must be > 0 MB, got {self.buffer_mb!r}")
        EvalSchedule.parse(self.eval_every)  # raises on a bad schedule

    @property
    def eval_schedule(self) -> EvalSchedule:
        return EvalSchedule.parse(self.eval_every)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain JSON values; a Python object setting (a user model or loss, an optax
        optimiser or schedule) becomes ``"<python object: ...>"`` (see :data:`OBJECT_MARK`):
        a record of what ran, which a resume must be given again."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["hidden"] = list(self.hidden)
        d["channels"] = list(self.channels)
        d["extra"] = dict(self.extra)
        for key in ("model", "loss", "optimizer", "lr"):
            value = d[key]
            if value is not None and not isinstance(value, (str, int, float)):
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


#: How :meth:`TrainConfig.to_dict` records a Python object setting.
OBJECT_MARK = "<python object: "


def _object_name(value) -> str:
    name = getattr(value, "__name__", None) or getattr(value, "name", None)
    return f"{type(value).__name__} {name}" if isinstance(name, str) else type(value).__name__


def parse_hidden(text: str, what: str = "hidden sizes") -> tuple:
    """``"256,128"`` -> ``(256, 128)``, with a clear error (naming ``what``) for anything else."""
    parts = str(text).replace(" ", "").split(",")
    if "" in parts and any(parts):  # "6,,16" or "128,": a missing number, not a typo to skip
        raise ConfigError(f"{what} must be comma-separated whole numbers, got {text!r} (an "
                          "empty entry between commas)")
    try:
        sizes = tuple(int(p) for p in parts if p)
    except ValueError:
        raise ConfigError(f"{what} must be comma-separated whole numbers, got {text!r}") \
            from None
    if not sizes or any(s < 1 for s in sizes):
        raise ConfigError(f"{what} must be whole numbers >= 1, got {text!r}")
    if any(s > MAX_DIMENSION for s in sizes):  # as for a tuple (config_types)
        raise ConfigError(f"{what} must be at most {MAX_DIMENSION:,}, got {text!r}")
    return sizes
