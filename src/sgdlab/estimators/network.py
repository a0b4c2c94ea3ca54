"""Your own network (a Flax or Equinox module, an ``(init, apply)`` pair, a :class:`Model`)
or the built-in ``cnn``, trained by mini-batch SGD behind scikit-learn's estimator API.

``X`` may have any example shape: ``(N, d)`` rows or ``(N, H, W, C)`` images. The network is
turned into a :class:`~sgdlab.Model` by :func:`sgdlab.models.get_model` and trained by the
same engine as every estimator; predictions run the network's ``apply`` (compiled once per
input shape), so the fitted parameters ``params_`` are the network's own pytree as NumPy arrays.
"""

from __future__ import annotations

import jax
import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin

from .._types import Model
from ..engine.predictor import build_model, model_spec
from ..errors import DataError
from ..models import MODELS, get_model
from ..tasks import model_options
from . import _params
from ._base import MiniBatchEstimator
from ._kinds import ClassifierPart, RegressorPart

_NETWORK_DOC = f"""
    module : object
        The network: a Flax linen or NNX module, an Equinox module, an ``(init, apply)`` pair,
        a :class:`sgdlab.Model`, an architecture's name ({", ".join(repr(m) for m in MODELS)},
        configured by the options below) or an import path ``'package.module:factory'``. It
        must give one score per class (one for a regressor or a binary ``log_loss``/``hinge``
        classifier).
""" + _params.options_doc(_params.model_option_params())


class _NetworkPart:
    _own_params = _params.model_option_params()
    _allow_nd = True  # images (N, H, W, C) as well as rows

    def _model(self):
        # One Model per estimator, module object and options, so refits reuse the compiled
        # programs; an architecture by name takes the options its factory declares.
        options = {k: getattr(self, k) for k in model_options(self.module)}
        cached = getattr(self, "_network", None)
        if cached is None or cached[0] is not self.module or cached[1] != options:
            cached = (self.module, options, get_model(self.module, **options))
            self._network = cached
        return cached[2]

    def _set_fitted_arrays(self) -> None:
        self._apply = None  # compiled afresh for the new parameters' structure

    def _keep(self, result, history, first_epoch: int) -> None:
        super()._keep(result, history, first_epoch)
        #: the shape of one training example: predictions take that shape (or it flattened)
        self.example_shape_ = tuple(result.example_shape)

    def _validated(self, X) -> np.ndarray:
        """``X`` of the fitted example shape (flattened rows of it are reshaped), else one
        message naming both shapes; scikit-learn's own check follows."""
        from sklearn.utils.validation import check_is_fitted
        check_is_fitted(self)
        arr = X if hasattr(X, "shape") else np.asarray(X)
        shape, n = tuple(self.example_shape_), len(arr) if np.ndim(arr) else 0
        if len(shape) > 1 and np.ndim(arr) == 2 and arr.shape[1] == int(np.prod(shape)):
            arr = np.asarray(arr).reshape((n,) + shape)
        if tuple(np.shape(arr)[1:]) != shape:
            raise DataError(f"{type(self).__name__} was fitted on examples of shape {shape}; "
                            f"X has shape {tuple(np.shape(arr))}: give ({n}, "
                            f"{', '.join(map(str, shape))})"
                            + (f" or the flattened ({n}, {int(np.prod(shape))})"
                               if len(shape) > 1 else ""))
        return super()._validated(arr)

    def _outputs(self, X: np.ndarray) -> np.ndarray:
        if getattr(self, "_apply", None) is None:
            self._apply = jax.jit(self._model().apply)
        return np.asarray(self._apply(self.params_, np.asarray(X, np.float32)), np.float64)

    def __getstate__(self):
        # the Model and its compiled apply hold closures: rebuilt from ``module`` after loading
        state = dict(self.__dict__)
        state.pop("_network", None)
        state.pop("_apply", None)
        if isinstance(self.module, Model):
            spec = model_spec(self.module)  # a configured built-in, get_model("cnn", ...),
            if spec.get("builtin") or isinstance(spec.get("import"), (str, dict)):
                state["module"] = _SavedModel(spec)  # or functions found by import path
        return state

    def __setstate__(self, state):
        if isinstance(state.get("module"), _SavedModel):
            state = {**state, "module": build_model(state["module"].spec)}
        self.__dict__.update(state)


class _SavedModel:
    """A pickled stand-in for a :class:`Model` that :func:`build_model` rebuilds."""

    def __init__(self, spec: dict):
        self.spec = spec



class MiniBatchNetworkClassifier(ClassifierMixin, _NetworkPart, ClassifierPart,
                                 MiniBatchEstimator):
    __doc__ = """A classifier from your own network, trained by mini-batch SGD.

    With a Flax network (``pip install 'sgdlab[user-models]'``)::

        import flax.linen as nn

        class Net(nn.Module):
            @nn.compact
            def __call__(self, x):
                return nn.Dense(10)(nn.relu(nn.Dense(64)(x.reshape(len(x), -1))))

        MiniBatchNetworkClassifier(Net(), batch_size=64).fit(X_images, y).score(X, y)

    Parameters
    ----------""" + _NETWORK_DOC + """
    loss : str, default='softmax'
        'softmax' (cross-entropy), 'multiclass_svm', or a binary loss ('log_loss', 'hinge',
        'perceptron').
    """ + _params.common_doc(lr=0.1, max_iter=20, alpha=0.0) + """
    target_accuracy : float or None, default=None
        With early stopping, stop as soon as the validation accuracy reaches this.

    Attributes
    ----------
    classes_, params_ (the network's parameters), opt_state_, history_, n_iter_, t_, status_,
    batch_size_, learning_rate_ (see MiniBatchSGDClassifier).
    """

    __init__ = _params.estimator_init(
        {"module": "cnn"}, ("loss", *_params.common_params(), *_params.model_option_params(),
                            "target_accuracy"),
        loss="softmax", learning_rate=0.1, max_iter=20, alpha=0.0, target_accuracy=None)



class MiniBatchNetworkRegressor(RegressorMixin, _NetworkPart, RegressorPart, MiniBatchEstimator):
    __doc__ = """A regressor (squared error) from your own network, trained by mini-batch SGD.

    Parameters
    ----------""" + _NETWORK_DOC + """
    loss : {'squared_error', 'squared'}, default='squared_error'
    """ + _params.common_doc(lr=0.01, max_iter=20, alpha=0.0) + """
    target_r2 : float or None, default=None
        With early stopping, stop as soon as the validation R^2 reaches this.

    Attributes
    ----------
    params_, opt_state_, history_, n_iter_, t_, status_, batch_size_, learning_rate_.
    """

    _target_param = "target_r2"
    _score_name = "val_r2"

    __init__ = _params.estimator_init(
        {"module": "mlp"}, ("loss", *_params.common_params(), *_params.model_option_params(),
                            "target_r2"),
        loss="squared_error", learning_rate=0.01, max_iter=20, alpha=0.0, target_r2=None)

