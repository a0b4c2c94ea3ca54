"""Every training setting in one frozen, validated place, each default with its meaning."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from ..data.sampling import SAMPLINGS
from ..errors import ConfigError, choices_message
from ..grad import GRADIENT_METHODS
from ..optim import OPTIMIZERS, SCHEDULES
from .config_types import check_setting_kinds
from .schedule import EvalSchedule, parse_duration



@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters and stopping rules of one training run.

    A run stops at whichever comes first: ``epochs``, ``max_steps``, ``max_time`` (seconds of
    training time, evaluation and compilation excluded), or the validation metric reaching
    ``target`` (accuracy for classification, R^2 for regression).
    """

    # what is trained
    model: str = "softmax"            # named task: softmax, logistic, svm, perceptron, mlp, ...
    loss: str | None = None           # override the task's loss (e.g. mlp with multiclass_svm)
    hidden: tuple = (128,)            # MLP hidden layer widths
    activation: str = "relu"          # MLP activation
    # how batches are drawn
    batch_size: int = 32              # examples per step; 1 = stochastic, N = full batch
    sampling: str = "shuffle"         # shuffle | replacement | sequential
    drop_last: bool = False           # drop the partial last batch instead of masking it
    # how parameters move
    lr: float = 0.1                   # learning rate alpha in W <- W - alpha * grad
    optimizer: str = "sgd"            # sgd | momentum | nesterov | adam
    momentum: float = 0.9             # used by momentum and nesterov
    schedule: str = "constant"        # learning-rate schedule over the run
    l2: float = 0.0                   # lambda in L = mean loss + lambda/2 * |W|^2 (biases free)
    gradient: str = "autodiff"        # how the gradient is computed: grad.GRADIENT_METHODS
    # when to stop
    epochs: float | None = 10.0       # passes over the training set (fractions allowed)
    max_steps: int | None = None      # optimisation steps
    max_time: float | None = None     # seconds of training time
    target: float | None = None       # validation accuracy (or R^2) that ends the run
    # when to look
    eval_every: str = "1 epoch"       # see EvalSchedule: '500 steps', '2s', '1 epoch', ...
    chunk_steps: int | None = None    # steps per compiled call; None picks from the batch size
    # data handling
    validation_fraction: float = 0.2  # held out of the training data when none is given
    test_fraction: float = 0.0        # held out for a final test score
    standardize: bool = True          # z-score features with training-set statistics
    buffer_mb: float = 64.0           # streamed (shard-set) data: MiB of host read buffers
    seed: int = 0                     # one seed: split, initialisation, batch order
    extra: dict = field(default_factory=dict, compare=False)  # free-form notes for reports

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        for key, value in check_setting_kinds(self).items():  # kinds first, then ranges
            set_(key, value)
        if isinstance(self.hidden, str):
            set_("hidden", parse_hidden(self.hidden))
        set_("hidden", tuple(int(h) for h in self.hidden))
        set_("max_time", parse_duration(self.max_time))
        if not isinstance(self.batch_size, int) or isinstance(self.batch_size, bool) \
                or self.batch_size < 1:
            raise ConfigError(f"batch size must be a whole number >= 1, got {self.batch_size!r}")
        if self.sampling not in SAMPLINGS:
            raise ConfigError(choices_message("sampling", self.sampling, SAMPLINGS))
        if not callable(self.lr) and not (isinstance(self.lr, (int, float)) and
                                          math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"learning rate must be a finite number > 0, got {self.lr!r}")
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


def parse_hidden(text: str) -> tuple:
    """``"256,128"`` -> ``(256, 128)``, with a clear error for anything else."""
    try:
        sizes = tuple(int(p) for p in str(text).replace(" ", "").split(",") if p)
    except ValueError:
        raise ConfigError(f"hidden sizes must be comma-separated whole numbers, got {text!r}") \
            from None
    if not sizes or any(s < 1 for s in sizes):
        raise ConfigError(f"hidden sizes must be whole numbers >= 1, got {text!r}")
    return sizes
