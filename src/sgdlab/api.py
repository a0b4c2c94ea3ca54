"""The one-call Python API: ``sgdlab.fit``."""

from __future__ import annotations

import os

from .data import Dataset, from_arrays, load_data, split
from .data.shards import ShardSet, is_shard_dir
from .engine import FitResult, TrainConfig, train
from .errors import ConfigError


def as_dataset(X, y=None, *, label_column=None, task=None, name="array") -> Dataset:
    """A :class:`Dataset` from a Dataset, a data spec/path string, or arrays ``X (N, d)``, ``y``."""
    if isinstance(X, Dataset):
        return X
    if isinstance(X, (str, os.PathLike)):
        return load_data(str(X), label_column=label_column, task=task)
    if y is None:
        raise ConfigError("labels missing: call fit(X, y, ...) with one label per row of X")
    return from_arrays(X, y, task=task, name=name)


def as_shards(X) -> ShardSet | None:
    """A :class:`ShardSet` for a ShardSet or a directory holding ``manifest.json``, else None."""
    if isinstance(X, ShardSet):
        return X
    if isinstance(X, (str, os.PathLike)) and is_shard_dir(X):
        return ShardSet(X)
    return None


def fit(X, y=None, *, validation=None, test=None, out: str | os.PathLike | None = None,
        model=None, loss=None, callback=None, config: TrainConfig | None = None,
        placement=None, **settings) -> FitResult:
    """Train a model with mini-batch gradient descent.

    Args:
      X, y: features ``(N, d)`` and labels ``(N,)``; or a :class:`Dataset`; or a data spec
        (``"digits"``, ``"blobs"``, a ``.csv``/``.parquet``/``.npy``/``.npz`` path) with ``y=None``;
        or a shard directory (``sgdlab data convert``) / :class:`~sgdlab.data.shards.ShardSet`,
        which is streamed through a ``buffer_mb`` buffer instead of loaded.
      validation: ``(X_val, y_val)``, a Dataset, or (for streamed data) a shard directory; if
        None, ``validation_fraction`` of the data is held out (stratified, seeded; whole blocks
        for streamed data).
      out: a run directory to write (config, history, metrics, parameters, plots).
      model, loss: a model name (``"softmax"``, ``"mlp"``, ...) goes in ``settings``; a custom
        :class:`~sgdlab.Model` / :class:`~sgdlab.Loss` (or ``(init, apply)`` pair, loss callable)
        goes here.
      placement: a :class:`~sgdlab.engine.batched.MeshPlacement` for data parallelism over
        several devices or processes (see :mod:`sgdlab.distributed`); only the process with
        ``placement.is_writer`` writes ``out``.
      settings: any :class:`TrainConfig` field, e.g. ``batch_size=32, epochs=30, lr=0.1,
        eval_every="500 steps"``.

    >>> r = fit("digits", model="softmax", batch_size=32, epochs=5, lr=0.1)   # doctest: +SKIP
    >>> r.history[-1]["val_accuracy"] > 0.9                                  # doctest: +SKIP
    True
    """
    if isinstance(model, str):
        settings["model"], model = model, None
    if isinstance(loss, str):
        settings["loss"], loss = loss, None
    config = config.replace(**settings) if config is not None else TrainConfig(**settings)
    shards = as_shards(X)
    if shards is not None:
        return _fit_shards(shards, validation, test, out, model, loss, callback, config,
                           placement)
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
    if placement is None:
        result = train(train_part, val, config, model=model, loss=loss, callback=callback)
    else:
        from .engine.stream_fit import train_parallel
        result = train_parallel(train_part, val, config, placement=placement, model=model,
                                loss=loss, callback=callback)
    if test_part is not None:
        result.extra["test_accuracy" if data.task == "classification" else "test_r2"] = \
            result.score(test_part.X, _labels(test_part))
    _write(out, result, data.name, placement)
    return result


def _fit_shards(shards, validation, test, out, model, loss, callback, config, placement):
    from .engine.stream_fit import train_shards
    if test is not None:
        raise ConfigError("test data is not supported with streamed training data; score the "
                          "test set with result.score(X_test, y_test) after training")
    val = as_shards(validation)
    if val is None and validation is not None:
        val = validation if isinstance(validation, Dataset) else from_arrays(
            *validation, task=shards.task, name="validation")
        val = _align_classes(val, shards)
    if isinstance(val, ShardSet) and (val.d != shards.d or val.classes != shards.classes):
        raise ConfigError(f"validation shards {val.path} have {val.d} features and classes "
                          f"{list(val.classes)[:5]}, the training shards {shards.d} and "
                          f"{list(shards.classes)[:5]}; convert both with the same --classes")
    result = train_shards(shards, config, validation=val, model=model, loss=loss,
                          callback=callback, placement=placement)
    _write(out, result, str(shards.path), placement)
    return result


def _write(out, result, data_name, placement) -> None:
    if out is not None and (placement is None or placement.is_writer):
        from .report.run import write_run  # lazy: plotting is not needed to train
        write_run(out, result, data_name=data_name)


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
