"""Small real datasets that ship with a dependency, so they load without network access."""

from __future__ import annotations

import numpy as np

from .dataset import Dataset


def digits() -> Dataset:
    """The UCI handwritten digits bundled with scikit-learn (``sklearn.datasets.load_digits``).

    ``X: (1797, 64)`` float32, 8x8 grey levels ``0..16`` (not rescaled: standardise with
    :class:`~sgdlab.data.split.Standardizer` if the model needs it); ``y: (1797,)`` int32 digits
    ``0..9``, so ``classes == (0, 1, ..., 9)``. Features are named ``pixel_<row>_<col>``.
    """
    # Imported here: scikit-learn is slow to import and most runs never need it.
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = np.ascontiguousarray(bunch.data, dtype=np.float32)
    y = bunch.target.astype(np.int32)
    return Dataset(
        X, y, "classification", tuple(range(10)), tuple(bunch.feature_names), "digits",
        {"source": "sklearn.datasets.load_digits"},
    )
