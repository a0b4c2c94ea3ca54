"""scikit-learn compatible estimators: true mini-batch SGD in the API users already know.

Importing this package imports scikit-learn (slow); ``import sgdlab`` alone does not, and
``sgdlab.MiniBatchSGDClassifier`` loads it on first use.
"""

from .linear import MiniBatchSGDClassifier as MiniBatchSGDClassifier
from .linear import MiniBatchSGDRegressor as MiniBatchSGDRegressor
from .mlp import MiniBatchMLPClassifier as MiniBatchMLPClassifier
from .mlp import MiniBatchMLPRegressor as MiniBatchMLPRegressor
from .network import MiniBatchNetworkClassifier as MiniBatchNetworkClassifier
from .network import MiniBatchNetworkRegressor as MiniBatchNetworkRegressor
from .scaler import ChannelScaler as ChannelScaler

__all__ = ["MiniBatchSGDClassifier", "MiniBatchSGDRegressor", "MiniBatchMLPClassifier",
           "MiniBatchMLPRegressor", "MiniBatchNetworkClassifier", "MiniBatchNetworkRegressor",
           "ChannelScaler"]
