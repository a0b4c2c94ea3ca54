"""The training engine: config, compiled chunk kernel, evaluation schedule, history, run dirs."""

from .config import TrainConfig as TrainConfig
from .fit import chunk_program as chunk_program
from .fit import memory_chunk_steps as memory_chunk_steps
from .fit import device_array as device_array
from .fit import train as train
from .fit import PlacedData as PlacedData
from .fit import place_data as place_data
from .loop import choose_chunk_steps as choose_chunk_steps
from .loop import run_loop as run_loop
from .history import History as History
from .model_file import load as load
from .predictor import Predictor as Predictor
from .result import FitResult as FitResult
from .schedule import EvalSchedule as EvalSchedule
from .schedule import parse_duration as parse_duration
from .setup import RunSetup as RunSetup
from .setup import resolve_model as resolve_model
from .setup import setup_run as setup_run
from .setup import total_steps as total_steps
