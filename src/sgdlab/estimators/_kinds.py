"""Classifier and regressor behaviour: label encoding, losses, and the prediction methods.

Each part expects the estimator to define ``_outputs(X: (N, d) float64) -> (N, k)``, the raw
model scores computed in NumPy from its fitted arrays.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets

from ..data.dataset import Dataset
from ..errors import DataError
from ..losses import LOSSES
from ._base import labels_dataset
from ._heads import (CLASSIFIER_LOSSES, PROBABILISTIC, REGRESSOR_LOSSES, binary_scores,
                     canonical_loss, predict_labels, probabilities, training_loss)


def _has_proba(estimator) -> bool:
    return CLASSIFIER_LOSSES.get(estimator.loss) in PROBABILISTIC


class ClassifierPart:
    """Classes, class-index targets, ``predict``, ``decision_function``, probabilities."""

    def _loss_name(self) -> str:
        return canonical_loss(self, CLASSIFIER_LOSSES)

    def _loss(self):
        return training_loss(self._loss_name(), len(self.classes_))

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch of mini-batch steps over ``(X, y)``, continuing the current weights.

        ``classes`` (every label the data can have) is required on the first call, since a
        later batch may hold labels this one does not. ``sample_weight`` weighs this call's
        rows against each other. Returns ``self``.
        """
        return self._partial_fit(X, y, classes=classes, sample_weight=sample_weight)

    def _targets(self, y, first: bool, classes, partial: bool) -> np.ndarray:
        """Class indices ``(N,)`` into ``classes_`` (set here on the first call)."""
        check_classification_targets(y)
        if first:
            if partial and classes is None:
                raise DataError(f"{type(self).__name__}: classes must be passed on the first "
                                "call to partial_fit (every label the data can have)")
            found = np.unique(y if classes is None else np.asarray(classes))
            if len(found) < 2:
                raise DataError(f"{type(self).__name__} needs at least 2 classes, but the data "
                                f"has only 1 class: {found[0]!r}")
            self.classes_ = found
        elif classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            raise DataError(f"classes={np.unique(classes).tolist()} differs from the classes "
                            f"of the first call {self.classes_.tolist()}; pass the same classes")
        known = np.isin(y, self.classes_)
        if not known.all():
            unknown = np.unique(np.asarray(y)[~known])[:5].tolist()
            raise DataError(f"y has labels {unknown} that are not among the classes "
                            f"{self.classes_.tolist()} given on the first call to partial_fit")
        return np.searchsorted(self.classes_, y)

    def _dataset(self, X32: np.ndarray, targets: np.ndarray) -> Dataset:
        return labels_dataset(type(self).__name__, X32, targets, len(self.classes_))

    def decision_function(self, X) -> np.ndarray:
        """Scores: ``(N,)`` for 2 classes (positive favours ``classes_[1]``), else ``(N, C)``."""
        out = self._outputs(self._validated(X))
        return binary_scores(out) if len(self.classes_) == 2 else out

    def predict(self, X) -> np.ndarray:
        """Predicted labels ``(N,)``, values from ``classes_``."""
        return predict_labels(self.decision_function(X), self.classes_)

    @available_if(_has_proba)
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(N, C)`` (losses ``softmax`` and ``log_loss`` only)."""
        return probabilities(self.decision_function(X), self._loss_name())

    @available_if(_has_proba)
    def predict_log_proba(self, X) -> np.ndarray:
        """``log(predict_proba(X))``."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


class RegressorPart:
    """Real-valued targets and ``predict``."""

    def _loss_name(self) -> str:
        return canonical_loss(self, REGRESSOR_LOSSES)

    def _loss(self):
        return LOSSES[self._loss_name()]

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch of mini-batch steps over ``(X, y)``, continuing the current weights;
        ``sample_weight`` weighs this call's rows against each other."""
        return self._partial_fit(X, y, sample_weight=sample_weight)

    def _targets(self, y, first: bool, classes, partial: bool) -> np.ndarray:
        with np.errstate(over="ignore"):
            y32 = np.asarray(y, dtype=np.float32)
        if not np.isfinite(y32).all():
            raise DataError("y has values too large for float32 (|y| > 3.4e38); rescale it")
        return y32

    def _dataset(self, X32: np.ndarray, targets: np.ndarray) -> Dataset:
        return Dataset(X32, targets, "regression", (), name=type(self).__name__)

    def predict(self, X) -> np.ndarray:
        """Predictions ``(N,)``."""
        return self._outputs(self._validated(X))[:, 0]
