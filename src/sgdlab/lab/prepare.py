"""Device arrays and pure functions for a configuration, prepared exactly as the engine does.

The throughput probe and the noise-scale estimator must measure the *same* model, loss,
standardisation and target encoding that :func:`sgdlab.engine.train` uses, so they share this
one preparation step instead of re-deriving it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from .._types import Loss, Model
from ..data.dataset import Dataset
from ..data.split import Standardizer, split
from ..data.sampling import steps_per_epoch
from ..engine import RunSetup, TrainConfig, cache, device_array, setup_run
from ..losses import encode_targets


class Prepared(NamedTuple):
    """``X (N', d)`` float32 and ``T (N',)`` encoded targets on the device, plus the functions.

    ``N' >= n`` rows: the device copy is padded exactly as the engine pads it (see
    :func:`sgdlab.engine.cache.padded_rows`), so a program compiled for training serves the
    probe and the noise scale too; only the first ``n`` rows are data. ``named`` says the
    model and loss came from the configuration's names (part of a program's cache key).
    """

    X: jax.Array
    T: jax.Array
    model: Model
    loss: Loss
    n_out: int
    example_shape: tuple
    n: int
    named: bool = True
    model_arg: object = None  # the user objects, if any, for each batch size's setup
    loss_arg: object = None
    task: str = "classification"
    n_classes: int = 0

    def setup(self, config: TrainConfig) -> RunSetup:
        """The engine's setup of ``config`` on this data (its batch size, lr, optimiser)."""
        return setup_run(config, example_shape=self.example_shape, n_classes=self.n_classes,
                         steps_per_epoch=steps_per_epoch(self.n, config.batch_size,
                                                         config.drop_last),
                         task=self.task, model=self.model_arg, loss=self.loss_arg)


def prepare(train_data: Dataset, config: TrainConfig, model=None, loss=None) -> Prepared:
    """Standardise (training statistics), encode targets and resolve the model like ``train``."""
    setup = setup_run(config, example_shape=train_data.X.shape[1:],
                      n_classes=train_data.n_classes,
                      steps_per_epoch=steps_per_epoch(train_data.n, config.batch_size,
                                                      config.drop_last),
                      task=train_data.task, name=train_data.name, model=model, loss=loss)
    X = np.asarray(train_data.X, np.float32)
    if config.standardize:
        X = Standardizer().fit(train_data.X).transform(train_data.X)
    T = np.asarray(encode_targets(setup.loss, train_data.y, train_data.n_classes))
    rows = cache.padded_rows(train_data.n, train_data.d * 4)
    return Prepared(device_array(cache.pad_rows(X, rows)), device_array(cache.pad_rows(T, rows)),
                    setup.model, setup.loss, setup.n_out, setup.example_shape, train_data.n,
                    setup.named, model, loss, train_data.task, train_data.n_classes)


def training_part(data: Dataset, config: TrainConfig) -> Dataset:
    """The training split :func:`sgdlab.fit` makes from ``data`` (same fractions and seed)."""
    return split(data, validation=config.validation_fraction, test=config.test_fraction,
                 seed=config.seed).train
