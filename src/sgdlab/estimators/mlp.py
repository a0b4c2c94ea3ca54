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

from ..models import mlp
from . import _params
from ._base import MiniBatchEstimator
from ._heads import mlp_forward
from ._kinds import ClassifierPart, RegressorPart

_MLP_DOC = """
    hidden_layer_sizes : int or tuple of int, default=(100,)
        Width of each hidden layer.
    activation : {'relu', 'tanh', 'sigmoid', 'gelu', 'leaky_relu', 'identity'}, default='relu'
        Hidden-layer activation (He initialisation for relu-like units, Glorot otherwise).
"""


@functools.lru_cache(maxsize=32)
def _network(hidden: tuple, activation: str):
    # One Model object per architecture, so the engine's compiled programs are reused.
    return mlp(hidden, activation)


class _MLPPart:
    _rules = {**_params.COMMON, **_params.MLP}

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
    """ + _MLP_DOC + _params.COMMON_DOC.format(lr=0.1, max_iter=50, alpha="1e-4") + """
    target_accuracy : float or None, default=None
        With early stopping, stop as soon as the validation accuracy reaches this.

    Attributes
    ----------
    classes_, coefs_, intercepts_, n_features_in_, feature_names_in_, params_, opt_state_,
    history_, n_iter_, t_, status_, batch_size_, learning_rate_ (see MiniBatchSGDClassifier).
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, loss="softmax",
                 batch_size=32, learning_rate=0.1, lr_scaling="none", base_batch=32,
                 max_iter=50, sampling="shuffle", alpha=1e-4, optimizer="sgd", momentum=0.9,
                 eval_every="1 epoch", early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, tol=1e-3, random_state=None, target_accuracy=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lr_scaling = lr_scaling
        self.base_batch = base_batch
        self.max_iter = max_iter
        self.sampling = sampling
        self.alpha = alpha
        self.optimizer = optimizer
        self.momentum = momentum
        self.eval_every = eval_every
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.target_accuracy = target_accuracy


class MiniBatchMLPRegressor(RegressorMixin, _MLPPart, RegressorPart, MiniBatchEstimator):
    __doc__ = """Neural-network regressor (squared error) trained by mini-batch SGD.

    Parameters
    ----------
    loss : {'squared_error', 'squared'}, default='squared_error'
    """ + _MLP_DOC + _params.COMMON_DOC.format(lr=0.01, max_iter=50, alpha="1e-4") + """
    target_r2 : float or None, default=None
        With early stopping, stop as soon as the validation R^2 reaches this.

    Attributes
    ----------
    coefs_, intercepts_, n_features_in_, feature_names_in_, params_, opt_state_, history_,
    n_iter_, t_, status_, batch_size_, learning_rate_ (see MiniBatchSGDClassifier).
    """

    _target_param = "target_r2"
    _score_name = "val_r2"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, loss="squared_error",
                 batch_size=32, learning_rate=0.01, lr_scaling="none", base_batch=32,
                 max_iter=50, sampling="shuffle", alpha=1e-4, optimizer="sgd", momentum=0.9,
                 eval_every="1 epoch", early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, tol=1e-3, random_state=None, target_r2=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lr_scaling = lr_scaling
        self.base_batch = base_batch
        self.max_iter = max_iter
        self.sampling = sampling
        self.alpha = alpha
        self.optimizer = optimizer
        self.momentum = momentum
        self.eval_every = eval_every
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.random_state = random_state
        self.target_r2 = target_r2
