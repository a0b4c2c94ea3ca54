"""Small real datasets that ship with a dependency, so they load without network access.

:data:`BUILTINS` maps the names :func:`~sgdlab.data.loaders.load_data` takes (``"digits"``,
``"digits-images"``) to functions of no arguments returning a :class:`Dataset`.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib.util
from pathlib import Path

import numpy as np

from ..errors import DataError
from .dataset import Dataset

#: The digits' rows, and 64 pixels then the digit per row.
DIGITS_SHAPE = (1797, 65)


def digits() -> Dataset:
    """The UCI handwritten digits bundled with scikit-learn (``sklearn.datasets.load_digits``,
    read from its file).

    ``X: (1797, 64)`` float32, 8x8 grey levels ``0..16`` (not rescaled: standardise with
    :class:`~sgdlab.data.split.Standardizer` if the model needs it); ``y: (1797,)`` int32 digits
    ``0..9``, so ``classes == (0, 1, ..., 9)``. Features are named ``pixel_<row>_<col>``.
    """
    path = digits_file()
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.float32)
    except (OSError, EOFError, ValueError) as e:
        raise DataError(f"the digits file {str(path)!r} of scikit-learn could not be read "
                        f"({e}); reinstall scikit-learn (pip install --force-reinstall "
                        "scikit-learn)") from None
    if table.shape != DIGITS_SHAPE or not np.isin(table, np.arange(17)).all() \
            or not np.isin(table[:, -1], np.arange(10)).all():
        raise DataError(f"the digits file {str(path)!r} of scikit-learn holds a table of shape "
                        f"{table.shape}, not {DIGITS_SHAPE} grey levels 0..16 and digits "
                        "0..9; reinstall scikit-learn (pip install --force-reinstall "
                        "scikit-learn)")
    X = np.ascontiguousarray(table[:, :-1])
    y = table[:, -1].astype(np.int32)
    names = tuple(f"pixel_{r}_{c}" for r in range(8) for c in range(8))
    return Dataset(X, y, "classification", tuple(range(10)), names, "digits",
                   {"source": "sklearn.datasets.load_digits"})


def digits_file() -> Path:
    """Where scikit-learn keeps the digits (``datasets/data/digits.csv.gz``), found without
    importing scikit-learn: the import (with SciPy's) costs about 2 s of CPU at every start of
    a process that trains on the digits, and the file is all that is needed."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the built-in digits ship with scikit-learn, which is not installed: "
                        "pip install scikit-learn")
    return Path(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")


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
