"""The training engine: config, compiled chunk kernel, evaluation schedule, history, run dirs."""

from .config import TrainConfig as TrainConfig
from .fit import train as train
from .history import History as History
from .result import FitResult as FitResult
from .schedule import EvalSchedule as EvalSchedule
from .schedule import parse_duration as parse_duration
