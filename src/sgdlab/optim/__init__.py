"""Optimisers (optax transformations) and learning-rate scaling with batch size."""

from .optimizers import OPTIMIZERS as OPTIMIZERS
from .optimizers import SCHEDULES as SCHEDULES
from .optimizers import check_rate as check_rate
from .optimizers import describe_rate as describe_rate
from .optimizers import make_optimizer as make_optimizer
from .optimizers import is_named as is_named
from .optimizers import make_schedule as make_schedule
from .optimizers import make_unit_optimizer as make_unit_optimizer
from .optimizers import OPTIMIZER_OPTIONS as OPTIMIZER_OPTIONS
from .optimizers import optimizer_options as optimizer_options
from .optimizers import runtime_rate as runtime_rate
from .scaling import LR_SCALINGS as LR_SCALINGS
from .scaling import scaled_lr as scaled_lr
