"""The one-call Python API: ``sgdlab.fit``."""

from __future__ import annotations

import os

from .data import Dataset, from_arrays, load_data, split
from .engine import FitResult, TrainConfig, train
from .errors import ConfigError, choices_message
from .optim.random_search import SEARCH_FIELDS, RandomSearchConfig

#: ``fit(method=...)``: gradient descent (the gradient itself is ``TrainConfig.gradient``), or
#: random search in one of its modes (see :mod:`sgdlab.optim.random_search`).
METHODS = ("sgd", "random-global", "random-local", "random-weighted")


def as_dataset(X, y=None, *, label_column=None, task=None, name="array") -> Dataset:
    """A :class:`Dataset` from a Dataset, a data spec/path string, or arrays ``X (N, d)``, ``y``."""
    if isinstance(X, Dataset):
        return X
    if isinstance(X, (str, os.PathLike)):
        return load_data(str(X), label_column=label_column, task=task)
    if y is None:
        raise ConfigError("labels missing: call fit(X, y, ...) with one label per row of X")
    return from_arrays(X, y, task=task, name=name)


def fit(X, y=None, *, validation=None, test=None, out: str | os.PathLike | None = None,
        model=None, loss=None, callback=None, config: TrainConfig | None = None,
        method: str = "sgd", **settings) -> FitResult:
    """Train a model with mini-batch gradient descent (or random search: ``method=``).

    Args:
      X, y: features ``(N, d)`` and labels ``(N,)``; or a :class:`Dataset`; or a data spec
        (``"digits"``, ``"blobs"``, a ``.csv``/``.parquet``/``.npy``/``.npz`` path) with ``y=None``.
      validation: ``(X_val, y_val)`` or a Dataset; if None, ``validation_fraction`` of the data
        is held out (stratified, seeded).
      out: a run directory to write (config, history, metrics, parameters, plots).
      model, loss: a model name (``"softmax"``, ``"mlp"``, ...) goes in ``settings``; a custom
        :class:`~sgdlab.Model` / :class:`~sgdlab.Loss` (or ``(init, apply)`` pair, loss callable)
        goes here.
      method: ``"sgd"`` (mini-batch gradient descent) or ``"random-global"``,
        ``"random-local"``, ``"random-weighted"`` (random search, same history and result).
      settings: any :class:`TrainConfig` field, e.g. ``batch_size=32, epochs=30, lr=0.1,
        eval_every="500 steps"``; for random search also the
        :class:`~sgdlab.optim.random_search.RandomSearchConfig` fields (``attempts``,
        ``population``, ``scale``, ``sigma``, ``temperature``).

    >>> r = fit("digits", model="softmax", batch_size=32, epochs=5, lr=0.1)   # doctest: +SKIP
    >>> r.history[-1]["val_accuracy"] > 0.9                                  # doctest: +SKIP
    True
    """
    if method not in METHODS:
        raise ConfigError(choices_message("method", method, METHODS))
    search = {k: settings.pop(k) for k in SEARCH_FIELDS if k in settings}
    if search and method == "sgd":
        raise ConfigError(f"setting(s) {', '.join(sorted(search))} only apply to random search; "
                          f"pass method='random-local' (or random-global, random-weighted)")
    if isinstance(model, str):
        settings["model"], model = model, None
    if isinstance(loss, str):
        settings["loss"], loss = loss, None
    config = config.replace(**settings) if config is not None else TrainConfig(**settings)
    data = as_dataset(X, y, label_column=settings.get("label_column"))
    if validation is not None:
        val = validation if isinstance(validation, Dataset) else from_arrays(
            *validation, task=data.task, name="validation")
        val = _align_classes(val, data)
        train_part, test_part = data, (as_dataset(*test) if test is not None else None)
    else:
        parts = split(data, validation=config.validation_fraction,
                      test=config.test_fraction, seed=config.seed)
        train_part, val, test_part = parts.train, parts.validation, parts.test
    if method == "sgd":
        result = train(train_part, val, config, model=model, loss=loss, callback=callback)
    else:
        from .lab.random_search import random_search
        result = random_search(train_part, val, config,
                               RandomSearchConfig(mode=method.split("-", 1)[1], **search),
                               model=model, loss=loss, callback=callback)
    if test_part is not None:
        result.extra["test_accuracy" if data.task == "classification" else "test_r2"] = \
            result.score(test_part.X, _labels(test_part))
    if out is not None:
        from .report.run import write_run  # lazy: plotting is not needed to train
        write_run(out, result, data_name=data.name)
    return result


def _labels(ds: Dataset):
    """Original label values of a dataset (what ``predict`` returns)."""
    import numpy as np
    if ds.task == "classification" and ds.classes:
        return np.asarray(ds.classes)[ds.y]
    return ds.y


def _align_classes(val: Dataset, train_ds: Dataset) -> Dataset:
    """Re-index validation labels onto the training classes (they were encoded separately)."""
    import numpy as np
    if train_ds.task != "classification" or val.classes == train_ds.classes:
        return val
    lookup = {c: i for i, c in enumerate(train_ds.classes)}
    unknown = [c for c in val.classes if c not in lookup]
    if unknown:
        raise ConfigError(f"validation labels {unknown[:5]} do not occur in the training labels")
    y = np.array([lookup[val.classes[i]] for i in val.y], np.int32)
    return Dataset(val.X, y, train_ds.task, train_ds.classes, val.feature_names, val.name)
