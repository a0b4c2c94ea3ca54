"""The training engine: config, compiled chunk kernel, evaluation schedule, history, run dirs."""

from .config import TrainConfig as TrainConfig
from .fit import train as train
from .history import History as History
from .model_file import load as load
from .predictor import Predictor as Predictor
from .result import FitResult as FitResult
from .schedule import EvalSchedule as EvalSchedule
from .schedule import parse_duration as parse_duration
