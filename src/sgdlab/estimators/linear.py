"""Linear models trained by true mini-batch SGD, with scikit-learn's estimator API.

scikit-learn's ``SGDClassifier``/``SGDRegressor`` update the weights after every single example
(``partial_fit`` too). These take ``batch_size`` examples per step in one compiled program
(:mod:`sgdlab.engine`), so a batch size can be chosen, scaled, searched and timed.

The score function is affine, ``f(x) = W x + b`` with ``W: (k, d)``; the fitted arrays follow
scikit-learn's shapes: ``coef_: (1, d)`` and ``intercept_: (1,)`` for two classes (a positive
score favours ``classes_[1]``), ``(C, d)``/``(C,)`` for ``C > 2``, ``(d,)``/``(1,)`` for
regression. Features are used as given: put a ``StandardScaler`` in a ``Pipeline`` first.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin

from ..models import linear
from . import _params
from ._base import MiniBatchEstimator
from ._kinds import ClassifierPart, RegressorPart


class MiniBatchSGDClassifier(ClassifierMixin, ClassifierPart, MiniBatchEstimator):
    __doc__ = """Linear classifier trained by mini-batch stochastic gradient descent.

    Parameters
    ----------
    loss : str, default='hinge'
        'hinge' (linear SVM), 'log_loss' (alias 'log', 'logistic': logistic regression),
        'perceptron', 'softmax' (multinomial logistic regression) or 'multiclass_svm'
        (Weston-Watkins hinge; alias 'multiclass_hinge'). The binary losses are trained
        one-vs-rest for more than 2 classes. ``predict_proba`` exists for 'log_loss' and
        'softmax'.
    """ + _params.common_doc(lr=0.1, max_iter=20, alpha="1e-4") + """
    target_accuracy : float or None, default=None
        With early stopping, stop as soon as the validation accuracy reaches this.

    Attributes
    ----------
    classes_ : (C,) the labels. coef_, intercept_ : see the module docstring.
    n_features_in_, feature_names_in_ (DataFrame input only).
    params_, opt_state_ : the engine's parameter pytree (``{"W": (k, d), "b": (k,)}``) and
        optimiser state, as NumPy arrays; ``partial_fit`` continues from them.
    history_ : list of row dicts (``step``, ``epoch``, ``train_loss``, ``val_accuracy``, ...).
    n_iter_ : epochs run; t_ : gradient steps taken; status_ : how the last run ended.
    batch_size_, learning_rate_ : the batch size and rate actually used.

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> clf = make_pipeline(StandardScaler(),
    ...                     MiniBatchSGDClassifier(loss="softmax", batch_size=32))
    """

    __init__ = _params.estimator_init(
        {"loss": "hinge"}, (*_params.common_params(), "target_accuracy"),
        learning_rate=0.1, max_iter=20, alpha=1e-4, target_accuracy=None)


    def _model(self):
        return linear()

    def _set_fitted_arrays(self) -> None:
        W = np.asarray(self.params_["W"], np.float64)   # (k, d), scikit-learn's coef_ layout
        b = np.asarray(self.params_["b"], np.float64)   # (k,)
        if len(self.classes_) == 2 and W.shape[0] == 2:
            # Two softmax / multiclass-SVM scores decide by their difference (binary_scores).
            W, b = W[1:] - W[:1], b[1:] - b[:1]
        self.coef_, self.intercept_ = W.copy(), b.copy()

    def _outputs(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef_.T + self.intercept_


class MiniBatchSGDRegressor(RegressorMixin, RegressorPart, MiniBatchEstimator):
    __doc__ = """Linear least-squares regression trained by mini-batch stochastic gradient descent.

    Minimises ``mean(0.5 * (x w + b - y)^2) + alpha / 2 * |w|^2``. Scale the features (and,
    for large targets, ``y``) first, or lower ``learning_rate``: a rate too large for the data
    makes the run diverge, which warns and keeps the last finite weights.

    Parameters
    ----------
    loss : {'squared_error', 'squared'}, default='squared_error'
    """ + _params.common_doc(lr=0.01, max_iter=20, alpha="1e-4") + """
    target_r2 : float or None, default=None
        With early stopping, stop as soon as the validation R^2 reaches this.

    Attributes
    ----------
    coef_ : (d,), intercept_ : (1,); n_features_in_, feature_names_in_; params_, opt_state_,
    history_, n_iter_, t_, status_, batch_size_, learning_rate_ as for the classifier.
    """

    _target_param = "target_r2"
    _score_name = "val_r2"

    __init__ = _params.estimator_init(
        {"loss": "squared_error"}, (*_params.common_params(), "target_r2"),
        learning_rate=0.01, max_iter=20, alpha=1e-4, target_r2=None)


    def _model(self):
        return linear()

    def _set_fitted_arrays(self) -> None:
        self.coef_ = np.asarray(self.params_["W"], np.float64)[0].copy()
        self.intercept_ = np.asarray(self.params_["b"], np.float64).copy()

    def _outputs(self, X: np.ndarray) -> np.ndarray:
        return (X @ self.coef_ + self.intercept_)[:, None]
