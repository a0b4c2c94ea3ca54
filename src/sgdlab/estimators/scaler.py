"""``ChannelScaler``: scikit-learn's ``StandardScaler`` for examples of any shape.

``StandardScaler`` refuses images (``dim <= 2 is required``), so a pipeline in front of
:class:`~sgdlab.estimators.MiniBatchNetworkClassifier` had nothing to scale them with. This
transformer standardises as ``sgdlab.fit`` does (:class:`sgdlab.data.Standardizer`): per
feature for rows ``X (N, d)``, per channel (the last axis) for ``X (N, *S, C)``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from ..data import Standardizer


class ChannelScaler(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Standardise rows per feature and images per channel: ``(X - mean_) / scale_``.

    >>> import numpy as np
    >>> X = np.random.default_rng(0).normal(3.0, 2.0, (50, 4, 4, 2))   # 50 images, 2 channels
    >>> scaler = ChannelScaler().fit(X)
    >>> scaler.mean_.shape, np.round(scaler.transform(X).mean(axis=(0, 1, 2)), 6) + 0
    ((2,), array([0., 0.]))

    In a pipeline before a network::

        make_pipeline(ChannelScaler(), MiniBatchNetworkClassifier("cnn")).fit(X_images, y)

    For ``X (N, d)`` this is ``StandardScaler()``: ``mean_`` and ``scale_`` have one entry
    per column. For ``X (N, *S, C)`` (images ``(N, H, W, C)``, sequences ``(N, T, d)``) they
    have one entry per channel ``c`` of the last axis, over every example and position::

        mean_c = mean over i, s of X[i, s, c]     scale_c = std over i, s of X[i, s, c]

    so every pixel of a channel moves alike. A constant feature or channel gets ``scale_ = 1``
    (it maps to 0). Output keeps ``X``'s shape and its float dtype.

    Attributes
    ----------
    mean_, scale_ : ndarray of shape (X.shape[-1],)
    n_features_in_ : int
        ``X.shape[1]``, as scikit-learn counts it (``d`` for rows, ``H`` for images).
    """

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=(np.float64, np.float32), allow_nd=True,
                          ensure_min_samples=1)
        stats = Standardizer().fit(X)
        self.mean_, self.scale_ = stats.mean, stats.scale
        return self

    def transform(self, X):
        X = self._checked(X)
        return ((X - self.mean_) / self.scale_).astype(X.dtype, copy=False)

    def inverse_transform(self, X):
        X = self._checked(X)
        return (X * self.scale_ + self.mean_).astype(X.dtype, copy=False)

    def _checked(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32), allow_nd=True)
        if X.shape[-1] != len(self.mean_):
            raise ValueError(f"ChannelScaler was fitted on {len(self.mean_)} channels (the "
                             f"last axis); X has shape {X.shape}, with {X.shape[-1]}")
        return X
