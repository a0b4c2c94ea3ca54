"""Small real datasets that ship with a dependency, so they load without network access.

:data:`BUILTINS` maps the names :func:`~sgdlab.data.loaders.load_data` takes (``"digits"``,
``"digits-images"``) to functions of no arguments returning a :class:`Dataset`.
"""

from __future__ import annotations

import dataclasses

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


def digits_images() -> Dataset:
    """The same digits as :func:`digits`, as images: ``X: (1797, 8, 8, 1)`` float32 (row,
    column, one grey channel; the same values, grey levels ``0..16``), the same ``y`` and
    ``classes``. ``feature_names`` are those of :func:`digits` (``pixel_<row>_<col>``), one per
    pixel of the flattened image."""
    flat = digits()
    return dataclasses.replace(flat, X=flat.X.reshape(len(flat.X), 8, 8, 1),
                               name="digits-images", meta=dict(flat.meta))


#: Built-in dataset name -> function returning it.
BUILTINS = {"digits": digits, "digits-images": digits_images}
