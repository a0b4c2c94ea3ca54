"""sgdlab: mini-batch gradient descent, measured.

The public API at a glance::

    result = sgdlab.fit(X, y, model="softmax", batch_size=32, epochs=30, lr=0.1)
    result.history, result.predict(X), result.score(X, y)
    model = sgdlab.load("runs/train-...")     # a run directory's model, to predict later

scikit-learn estimators (loaded on first use)::

    sgdlab.MiniBatchSGDClassifier(loss="softmax", batch_size=32).fit(X, y).score(X, y)
"""

from ._types import Loss as Loss
from ._types import Model as Model
from ._types import TrainState as TrainState
from .api import fit as fit
from .data import Dataset as Dataset
from .data import load_data as load_data
from .engine import EvalSchedule as EvalSchedule
from .engine import FitResult as FitResult
from .engine import History as History
from .engine import Predictor as Predictor
from .engine import TrainConfig as TrainConfig
from .engine import load as load
from .engine import train as train
from .errors import ConfigError as ConfigError
from .errors import DataError as DataError
from .errors import SgdlabError as SgdlabError

__version__ = "0.1.0"

#: Public names loaded on first use, because their module imports scikit-learn (seconds).
_LAZY = {name: "sgdlab.estimators" for name in (
    "MiniBatchSGDClassifier", "MiniBatchSGDRegressor", "MiniBatchMLPClassifier",
    "MiniBatchMLPRegressor", "MiniBatchNetworkClassifier", "MiniBatchNetworkRegressor",
    "ChannelScaler")}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'sgdlab' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
