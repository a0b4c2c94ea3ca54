"""What every estimator shares: checking input, calling the engine, keeping the fitted state.

``fit`` is one engine run of ``max_iter`` epochs from fresh parameters. ``partial_fit`` is one
epoch over the rows it is given, continuing the engine's :class:`~sgdlab.TrainState` (weights,
optimiser state, step count) and its batch plan: call ``e`` (counting from 0) draws its batch
order as epoch ``e`` of a plan with the estimator's seed. So ``partial_fit`` twice on ``(X, y)``
takes exactly the steps of ``fit`` with ``max_iter=2`` on ``(X, y)`` and gives the same weights.

The fitted state is kept as NumPy arrays (``params_``, ``opt_state_``), so an estimator pickles
without JAX device buffers and predicts in NumPy (see :mod:`._heads`).
"""

from __future__ import annotations

import math
import warnings

import jax
import numpy as np
from sklearn.base import BaseEstimator, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import validate_data

from .._types import TrainState, layer_widths
from ..data.dataset import Dataset
from ..data.split import split
from ..engine import History, TrainConfig, cache, choose_chunk_steps, train
from ..engine.fit import sample_weights
from ..engine.history import TIME_COLUMNS
from ..errors import ConfigError, DataError
from ..optim import scaled_lr
from . import _params


class MiniBatchEstimator(BaseEstimator):
    """Base of the sgdlab estimators; subclasses supply the model, the loss and the targets.

    Hooks: ``_params`` (the parameters besides :func:`._params.common_params`, checked by
    their rules), ``_model()`` -> :class:`~sgdlab.Model`,
    ``_loss_name()`` (checked sgdlab name), ``_loss()`` -> :class:`~sgdlab.Loss`,
    ``_targets(y, first, classes, partial)`` -> encoded labels,
    ``_dataset(X32, targets)``, ``_score_name`` (the validation metric early stopping watches)
    and ``_set_fitted_arrays()`` (``coef_`` and friends from ``params_``).
    """

    #: the class's parameters besides the common ones (checked by their rules)
    _own_params: tuple = ()
    #: whether ``X`` may hold examples of any shape ``(N, ...)`` (networks), or rows ``(N, d)``
    _allow_nd = False
    _target_param = "target_accuracy"
    _score_name = "val_accuracy"

    # -- training ---------------------------------------------------------------------------
    def fit(self, X, y=None, sample_weight=None):
        """Train for ``max_iter`` epochs (fewer with early stopping) from fresh weights.

        ``X``: ``(n_samples, n_features)`` array or DataFrame; ``y``: ``(n_samples,)``. Or ``X``
        a shard directory / :class:`~sgdlab.data.shards.ShardSet` (``sgdlab data convert``)
        with ``y=None``: streamed through a bounded buffer instead of loaded.
        ``sample_weight``: ``(n_samples,)`` weights >= 0; training minimises the weighted mean
        loss (weights are relative: scaling them all changes nothing). Returns ``self``.
        """
        self._check_hyperparams()
        from ..data.shards import as_shards
        shards = as_shards(X)
        if shards is not None:
            if sample_weight is not None:
                raise DataError(f"{type(self).__name__}.fit: sample_weight applies to "
                                "in-memory data, not to a shard set")
            return self._fit_stream(shards, y)
        _refuse_path(X, f"{type(self).__name__}.fit")
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), reset=True,
                             y_numeric=not is_classifier(self), allow_nd=self._allow_nd)
        targets = self._targets(y, first=True, classes=None, partial=False)
        self._seed = _params.draw_seed(self.random_state)
        data = self._dataset(_as_float32(X), targets)
        validation, callback = None, None
        target = getattr(self, self._target_param)
        weights = _row_weights(sample_weight, data.n)
        if self.early_stopping:
            parts = split(data, validation=self.validation_fraction, seed=self._seed)
            data, validation = parts.train, parts.validation
            weights = weights[data.meta["rows"]] if weights is not None else None
            callback = _Patience(self._score_name, self.n_iter_no_change, self.tol)
        elif target is not None:
            raise ConfigError(f"{type(self).__name__}: {self._target_param}={target!r} needs a "
                              "validation set to be measured on; set early_stopping=True "
                              "(validation_fraction of the data is held out for it)")
        config = self._config(data.n, epochs=float(self.max_iter), eval_every=self.eval_every,
                              target=target)
        result = train(data, validation, config, model=self._model(), loss=self._loss(),
                       callback=callback, sample_weight=weights)
        self._keep(result, History(), first_epoch=0)
        return self

    def _fit_stream(self, shards, y):
        """``fit`` on a shard set: labels come from the shards, early stopping holds out whole
        blocks (see :func:`sgdlab.engine.stream_fit.train_shards`)."""
        from ..engine.stream_fit import train_shards
        if y is not None:
            raise DataError(f"{type(self).__name__}.fit: a shard set holds its own labels; "
                            "call fit(shards) without y")
        if is_classifier(self) != (shards.task == "classification"):
            raise DataError(f"{type(self).__name__} cannot train on {shards.path}: its labels are "
                            f"for {shards.task}")
        if is_classifier(self):
            self.classes_ = np.asarray(shards.classes)
        self.n_features_in_ = shards.d
        self._seed = _params.draw_seed(self.random_state)
        target = getattr(self, self._target_param)
        callback = None
        if self.early_stopping:
            callback = _Patience(self._score_name, self.n_iter_no_change, self.tol)
        elif target is not None:
            raise ConfigError(f"{type(self).__name__}: {self._target_param}={target!r} needs a "
                              "validation set; set early_stopping=True")
        config = self._config(shards.n, epochs=float(self.max_iter), eval_every=self.eval_every,
                              target=target).replace(
            validation_fraction=self.validation_fraction if self.early_stopping else 0.0)
        result = train_shards(shards, config, model=self._model(), loss=self._loss(),
                              callback=callback)
        self._keep(result, History(), first_epoch=0)
        return self

    def _partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over ``(X, y)`` in mini-batches, continuing from the current weights;
        ``sample_weight`` weighs the rows of this call against each other."""
        self._check_hyperparams()
        first = not hasattr(self, "params_")
        _refuse_path(X, f"{type(self).__name__}.partial_fit")
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), reset=first,
                             y_numeric=not is_classifier(self), allow_nd=self._allow_nd)
        targets = self._targets(y, first=first, classes=classes, partial=True)
        if first:
            self._seed = _params.draw_seed(self.random_state)
            start, epoch, history = None, 0, History()
        else:
            start = TrainState(self.params_, self.opt_state_, np.int32(self.t_))
            epoch, history = self.n_iter_, self.history_
        data = self._dataset(_as_float32(X), targets)
        spe = -(-data.n // self._batch(data.n))  # steps in one pass over these rows
        config = self._config(data.n, epochs=None, eval_every="end",
                              max_steps=(0 if first else self.t_) + spe)
        # The chunk length fit uses, so partial_fit and fit run the same compiled program.
        config = config.replace(chunk_steps=cache.bucket_steps(choose_chunk_steps(
            config.replace(eval_every="1 epoch"), spe, None)))
        result = train(data, None, config, model=self._model(), loss=self._loss(),
                       start=start, position={"epoch": epoch, "step_in_epoch": 0},
                       sample_weight=_row_weights(sample_weight, data.n))
        self._keep(result, history, first_epoch=epoch)
        return self

    def _config(self, n: int, **settings) -> TrainConfig:
        """Engine settings: no standardisation (use a Pipeline), no engine-side split; the
        model is this estimator's (given to the engine as an object)."""
        batch = self._batch(n)
        lr = scaled_lr(float(self.learning_rate), batch, int(self.base_batch), self.lr_scaling)
        return TrainConfig(model=self._model(), batch_size=batch, sampling=self.sampling,
                           lr=lr, optimizer=self.optimizer, l2=float(self.alpha),
                           validation_fraction=0.0, standardize=False, seed=self._seed,
                           **{k: getattr(self, k) for k in _params.optimizer_option_params()},
                           **settings)

    def _batch(self, n: int) -> int:
        """The batch size used on ``n`` rows: more than ``n`` per batch means full batch."""
        return min(int(self.batch_size), n)

    def _keep(self, result, history: History, first_epoch: int) -> None:
        """Store the run's outcome as NumPy fitted attributes."""
        self.params_ = _to_numpy(result.params)
        self.opt_state_ = _to_numpy(result.opt_state)
        self.t_ = int(result.steps)
        self.n_iter_ = first_epoch + math.ceil(
            (result.steps - result.history[0]["step"]) / result.steps_per_epoch - 1e-9)
        self.history_ = _join(history, result.history)
        self.status_ = result.status
        self.batch_size_ = result.config.batch_size
        self.learning_rate_ = result.config.lr
        self._set_fitted_arrays()
        if result.status == "diverged":
            lr = result.config.lr
            warnings.warn(
                f"{type(self).__name__} diverged at step {result.diverged_at_step}: the loss or "
                f"the weights became NaN/inf with learning rate {lr:g}; scale the features "
                f"(StandardScaler; ChannelScaler for images) or lower learning_rate (e.g. "
                f"{lr / 10:g}). The weights are "
                "the last finite ones.", ConvergenceWarning, stacklevel=3)

    def _check_hyperparams(self) -> None:
        names = (*_params.common_params(), *self._own_params)
        _params.check_params(self, {p: _params.rule_of(p) for p in names})
        _params.check_params(self, {self._target_param: _params.target_rule(
            "accuracy" if is_classifier(self) else "R^2")})
        self._loss_name()  # raises for an unknown loss

    def _hidden(self) -> tuple:
        return layer_widths(self.hidden_layer_sizes, "hidden_layer_sizes")

    def _validated(self, X) -> np.ndarray:
        """``X`` checked against the fitted features, as float64 for prediction."""
        from sklearn.utils.validation import check_is_fitted
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=np.float64, allow_nd=self._allow_nd)


class _Patience:
    """Engine callback: stop when the validation score has not improved by more than ``tol``
    for ``n`` evaluations in a row (scikit-learn's ``n_iter_no_change`` rule)."""

    def __init__(self, metric: str, n: int, tol: float):
        self.metric, self.n, self.tol = metric, n, tol
        self.best, self.bad, self.rows = -math.inf, 0, 0

    def __call__(self, event: dict):
        if event["event"] != "row":
            return None
        self.rows += 1
        score = event["row"].get(self.metric, math.nan)
        if self.rows == 1 or not math.isfinite(score):
            return None  # the row before any step is a baseline, not an epoch
        if score > self.best + self.tol:
            self.best, self.bad = score, 0
        else:
            self.bad += 1
        return self.bad >= self.n


def _as_float32(X: np.ndarray) -> np.ndarray:
    """Features as the engine's float32, refusing values float32 cannot hold."""
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(X, dtype=np.float32)
    if not np.isfinite(out).all():
        raise DataError("X has values too large for float32 (|x| > 3.4e38); rescale the "
                        "features, e.g. with sklearn.preprocessing.StandardScaler")
    return out


def _to_numpy(tree):
    return jax.tree_util.tree_map(np.asarray, jax.device_get(tree))


def _join(before: History, rows: History) -> History:
    """``before`` then ``rows``, dropping the start row of a continued run (it repeats the
    last row of ``before``) and shifting time columns so they keep counting up."""
    if not before:
        return History(rows)
    last = before[-1]
    shifted = [{k: v + last[k] if k in TIME_COLUMNS and k in last else v
                for k, v in row.items()} for row in rows[1:]]
    return History([*before, *shifted])


def labels_dataset(name: str, X32: np.ndarray, targets: np.ndarray, n_classes: int) -> Dataset:
    """A classification :class:`Dataset` of int32 class indices ``0..n_classes-1``."""
    return Dataset(X32, targets.astype(np.int32), "classification", tuple(range(n_classes)),
                   name=name)


def _row_weights(sample_weight, n: int):
    """``sample_weight`` as a float64 ``(n,)`` array (one weight per row of ``X``), or None."""
    return None if sample_weight is None else sample_weights(sample_weight, n, "X")


def _refuse_path(X, where: str) -> None:
    """A :class:`DataError` for ``X`` given as a path that is not a shard set: the estimators
    take arrays or a shard directory, never a data file by name (scikit-learn would report a
    missing ``y`` instead)."""
    import os
    if not isinstance(X, (str, bytes, os.PathLike)):
        return
    path = os.fsdecode(X)
    if not os.path.exists(path):
        why = "no such file or directory"
    elif os.path.isdir(path):
        why = "a directory without a manifest.json, not a shard set"
    else:
        why = "a file; the estimators take arrays, or a shard directory"
    raise DataError(f"{where}: X is the path {path!r}: {why}. Give arrays (load a file with "
                    "sgdlab.data.load_data(path), then fit(ds.X, ds.y)) or a shard directory "
                    "made by 'sgdlab data convert'")
