"""Fully connected networks trained by mini-batch SGD, with scikit-learn's estimator API.

The network is :func:`sgdlab.models.mlp`: ``h_l = act(h_{l-1} W_l + b_l)`` for each hidden
layer and an affine output layer. Named after scikit-learn's ``MLPClassifier`` /
``MLPRegressor`` (``hidden_layer_sizes``, ``activation``, ``coefs_``, ``intercepts_`` with
``coefs_[l]: (n_{l-1}, n_l)``) but trained by the sgdlab engine with an explicit batch size.
"""

from __future__ import annotations

import functools

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin

from ..models import ACTIVATIONS, mlp
from . import _params
from ._base import MiniBatchEstimator
from ._heads import mlp_forward
from ._kinds import ClassifierPart, RegressorPart

#: scikit-learn's default widths (one hidden layer of 100 units)
HIDDEN_LAYER_SIZES = (100,)

_ACTIVATION = _params.default_of("activation")
_MLP_DOC = f"""
    hidden_layer_sizes : int or tuple of int, default={HIDDEN_LAYER_SIZES}
        Width of each hidden layer.
    activation : {{{", ".join(repr(a) for a in ACTIVATIONS)}}}, default={_ACTIVATION!r}
        Hidden-layer activation (He initialisation for relu-like units, Glorot otherwise).
"""


@functools.lru_cache(maxsize=32)
def _network(hidden: tuple, activation: str):
    # One Model object per architecture, so the engine's compiled programs are reused.
    return mlp(hidden, activation)


class _MLPPart:
    _own_params = ("hidden_layer_sizes", "activation")

    def _model(self):
        return _network(self._hidden(), self.activation)

    def _set_fitted_arrays(self) -> None:
        layers = self.params_["layers"]
        # scikit-learn's coefs_ are input-major (n_{l-1}, n_l); the engine's W is output-major
        self.coefs_ = [np.asarray(layer["W"], np.float64).T.copy() for layer in layers]
        self.intercepts_ = [np.asarray(layer["b"], np.float64) for layer in layers]
        # Prediction must use the activation the weights were trained with, even if
        # set_params changes the parameter afterwards.
        self._fitted_activation = self.activation

    def _outputs(self, X: np.ndarray) -> np.ndarray:
        return mlp_forward(X, self.coefs_, self.intercepts_, self._fitted_activation)


class MiniBatchMLPClassifier(ClassifierMixin, _MLPPart, ClassifierPart, MiniBatchEstimator):
    __doc__ = """Neural-network classifier trained by mini-batch stochastic gradient descent.

    Parameters
    ----------
    loss : str, default='softmax'
        'softmax' (cross-entropy), 'multiclass_svm', or a binary loss ('log_loss', 'hinge',
        'perceptron'), which for more than 2 classes gives one output per class trained
        one-vs-rest on shared hidden layers.
    """ + _MLP_DOC + _params.common_doc(lr=0.1, max_iter=50, alpha="1e-4") + """
    target_accuracy : float or None, default=None
        With early stopping, stop as soon as the validation accuracy reaches this.

    Attributes
    ----------
    classes_, coefs_, intercepts_, n_features_in_, feature_names_in_, params_, opt_state_,
    history_, n_iter_, t_, status_, batch_size_, learning_rate_ (see MiniBatchSGDClassifier).
    """

    __init__ = _params.estimator_init(
        {"hidden_layer_sizes": HIDDEN_LAYER_SIZES, "activation": _ACTIVATION},
        ("loss", *_params.common_params(), "target_accuracy"),
        loss="softmax", learning_rate=0.1, max_iter=50, alpha=1e-4, target_accuracy=None)



class MiniBatchMLPRegressor(RegressorMixin, _MLPPart, RegressorPart, MiniBatchEstimator):
    __doc__ = """Neural-network regressor (squared error) trained by mini-batch SGD.

    Parameters
    ----------
    loss : {'squared_error', 'squared'}, default='squared_error'
    """ + _MLP_DOC + _params.common_doc(lr=0.01, max_iter=50, alpha="1e-4") + """
    target_r2 : float or None, default=None
        With early stopping, stop as soon as the validation R^2 reaches this.

    Attributes
    ----------
    coefs_, intercepts_, n_features_in_, feature_names_in_, params_, opt_state_, history_,
    n_iter_, t_, status_, batch_size_, learning_rate_ (see MiniBatchSGDClassifier).
    """

    _target_param = "target_r2"
    _score_name = "val_r2"

    __init__ = _params.estimator_init(
        {"hidden_layer_sizes": HIDDEN_LAYER_SIZES, "activation": _ACTIVATION},
        ("loss", *_params.common_params(), "target_r2"),
        loss="squared_error", learning_rate=0.01, max_iter=50, alpha=1e-4, target_r2=None)

