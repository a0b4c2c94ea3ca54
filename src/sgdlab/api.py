"""The one-call Python API: ``sgdlab.fit``."""

from __future__ import annotations

import dataclasses
import os
import warnings

import numpy as np

from .data import Dataset, TargetScaler, from_arrays, load_data, split
# as_shards stays importable from here: the command line and users call sgdlab.api.as_shards
from .data.shards import ShardSet, as_shards, is_shard_dir  # noqa: F401
from .engine import FitResult, TrainConfig
from .engine.config import settings as config_settings
from .engine.fit import sample_weights
from .engine.job import Job
from .engine.resume import fingerprint, shard_files
from .errors import ConfigError, DivergedWarning, choices_message
from .losses import LOSSES
from .optim.random_search import SEARCH_FIELDS, RandomSearchConfig
# the two messages stay importable from here, where they were first defined
from .run_directory import HALVE_LR_ONE_PROCESS, SINGLE_PROCESS_CHECKPOINTS  # noqa: F401
from .run_directory import RunDirectory, same_checkpoint
from .tasks import default_lr

#: ``fit(method=...)``: gradient descent (the gradient itself is ``TrainConfig.gradient``), or
#: random search in one of its modes (see :mod:`sgdlab.optim.random_search`).
METHODS = ("sgd", "random-global", "random-local", "random-weighted")

#: kept under its former name for callers of the old private helper
_same_checkpoint = same_checkpoint


def as_dataset(X, y=None, *, label_column=None, task=None, name="array") -> Dataset:
    """A :class:`Dataset` from a Dataset, a data spec/path string, or arrays ``X (N, d)``, ``y``."""
    if isinstance(X, Dataset):
        return X
    if isinstance(X, (str, os.PathLike)):
        if is_shard_dir(X):
            raise ConfigError(f"{str(X)!r} is a shard directory, which only 'sgdlab train' "
                              "(and sgdlab.fit) stream; this tool holds its data in memory: "
                              "pass the original .csv/.parquet/.npy file instead")
        return load_data(str(X), label_column=label_column, task=task)
    if y is None:
        raise ConfigError("labels missing: call fit(X, y, ...) with one label per row of X")
    return from_arrays(X, y, task=task, name=name)


def fit(X=None, y=None, *, validation=None, test=None, out: str | os.PathLike | None = None,
        model=None, loss=None, callback=None, config: TrainConfig | None = None,
        resume: str | os.PathLike | None = None, force: bool = False,
        checkpoint_every: str | None = None, keep_checkpoints: int | None = None,
        on_divergence: str | None = None, max_retries: int | None = None,
        plots: bool = True, method: str = "sgd", placement=None, init=None,
        sample_weight=None, trust_code: bool = False, overwrite: bool = False,
        lr_from_sweep=None, **settings) -> FitResult:
    """Train a model with mini-batch gradient descent (or random search: ``method=``).

    Args:
      X, y: features ``(N, d)`` and labels ``(N,)``; or a :class:`Dataset`; or a data spec
        (``"digits"``, ``"blobs"``, a ``.csv``/``.parquet``/``.npy``/``.npz`` path) with ``y=None``;
        or a shard directory (``sgdlab data convert``) / :class:`~sgdlab.data.shards.ShardSet`,
        which is streamed through a ``buffer_mb`` buffer instead of loaded.
      validation: ``(X_val, y_val)``, a Dataset, or (for streamed data) a shard directory; if
        None, ``validation_fraction`` of the data is held out (stratified, seeded; whole blocks
        for streamed data).
      out: a run directory to write (config, history, metrics, parameters, plots,
        checkpoints): a new or empty directory (marked as a train run first) or, with
        ``overwrite=True``, an existing train run, replaced whole when the new run has
        finished (it is built beside it). Any other existing directory is refused. It is
        locked while the run writes it.
      model, loss: a model name (``"softmax"``, ``"mlp"``, ...) goes in ``settings``; a custom
        :class:`~sgdlab.Model` / :class:`~sgdlab.Loss` (or ``(init, apply)`` pair, loss callable)
        goes here.
      resume: a run directory to continue from its newest valid checkpoint, bit-exactly
        (implies ``out=resume``). Settings not given come from the checkpoint; ``X`` may be
        left out when the run was trained on a data spec or a shard directory. Changed
        settings or data (for shards: the manifest's checksums) are refused unless
        ``force=True`` (see :mod:`sgdlab.engine.resume`).
      checkpoint_every, keep_checkpoints: checkpoint schedule (``"200 steps"``, ``"30s"``,
        ``"1 epoch"`` (default), ``"end"``) and how many to keep (default 3), when ``out`` is
        given.
      on_divergence, max_retries: ``"stop"`` (default), or ``"halve-lr"`` to restart from the
        last checkpoint with half the learning rate, at most ``max_retries`` (default 3) times.
        A resume keeps the run's recorded checkpoint and divergence settings unless given.
      plots: write the PNG curves into ``out`` (matplotlib; about a second).
      method: ``"sgd"`` (mini-batch gradient descent) or ``"random-global"``,
        ``"random-local"``, ``"random-weighted"`` (random search, same history and result;
        no checkpoints).
      placement: a :class:`~sgdlab.engine.batched.MeshPlacement` for data parallelism over
        several devices or processes (see :mod:`sgdlab.distributed`); only the process with
        ``placement.is_writer`` writes ``out``. Such runs checkpoint and resume like one
        process: every process reads the same checkpoint of ``resume`` (a directory all of
        them see) and continues at the same global batch; a changed number of processes or
        devices is refused unless ``force`` (see :mod:`sgdlab.engine.resume`).
        ``on_divergence="halve-lr"`` is refused.
      init: start from a trained model's parameters (fine-tuning): a run directory, a
        :class:`~sgdlab.engine.predictor.Predictor` (:func:`sgdlab.load`) or a
        :class:`FitResult`. Its network, preprocessing and (for classification) classes are
        kept; without ``model=`` the run takes its network. Recorded in the config's
        ``extra["init"]``. In-memory data, one process, ``method="sgd"``.
      trust_code: allow importing a user network that ``resume``'s checkpoint or ``init``'s
        ``model.json`` names by import path (``"module:factory"``); without it such a run
        is refused with a message naming the module, unless ``model=`` is given (see
        :func:`sgdlab.load`).
      sample_weight: ``(N,)`` weights >= 0 of the rows of ``X``: training minimises the
        weighted mean loss (see :func:`sgdlab.engine.train`); validation and test scores stay
        unweighted. In-memory data, one process, ``method="sgd"``; pass them again to resume.
      lr_from_sweep: a finished sweep (its ``--out`` directory, or a
        :class:`~sgdlab.lab.summary.SweepResult`): train at the learning rate it tuned for
        ``batch_size``, or give every phase of ``batch_schedule`` without ``@LR`` its batch
        size's tuned rate (:mod:`sgdlab.lab.sweep_rates`); instead of ``lr``.
      settings: any :class:`TrainConfig` field, e.g. ``batch_size=32, epochs=30, lr=0.1,
        eval_every="500 steps"``; ``label_column`` and ``task`` for data specs; for random
        search also the :class:`~sgdlab.optim.random_search.RandomSearchConfig` fields
        (``attempts``, ``population``, ``scale``, ``sigma``, ``temperature``).

    >>> r = fit("digits", model="softmax", batch_size=32, epochs=5, lr=0.1)
    >>> r.history[-1]["val_accuracy"] > 0.9
    True
    """
    search, start, init_note = _check_arguments(
        X, method, settings, config, model=model, resume=resume, on_divergence=on_divergence,
        placement=placement, init=init, sample_weight=sample_weight,
        trust_code=trust_code)
    if start is not None and model is None and "model" not in settings and (
            config is None or config.model == TrainConfig().model):
        model, loss = _init_network(start, init_note, settings, loss)
    if lr_from_sweep is not None:
        _take_sweep_rates(settings, config, lr_from_sweep)
    if isinstance(model, str):
        settings["model"], model = model, None
    if isinstance(loss, str):
        settings["loss"], loss = loss, None
    label_column, task = settings.pop("label_column", None), settings.pop("task", None)
    with RunDirectory(out, resume=resume, force=force, placement=placement,
                      checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints,
                      on_divergence=on_divergence, max_retries=max_retries,
                      trust_code=trust_code or model is not None,
                      overwrite=overwrite) as run_dir:
        # a resume's rate is the checkpoint's; otherwise a rate not given depends on the data
        lr_given = run_dir.resuming or config is not None or "lr" in settings
        config = run_dir.config(settings, config)
        if X is None and run_dir.resuming:
            X, y, label_column, task = run_dir.recorded_data()
        parts = _prepare_data(X, y, validation, test, config, label_column=label_column,
                              task=task, start=start, sample_weight=sample_weight)
        if start is not None:
            config = config.replace(extra={**config.extra, "init": init_note})
        lr = None if parts.shards is not None or lr_given or model is not None \
            or loss is not None else default_lr(config.model, config.loss, parts.data.task)
        if lr is not None:
            config = config.replace(lr=lr)
        if method != "sgd":  # random search: no checkpoints, no recovery
            from .lab.random_search import random_search
            result = random_search(parts.train, parts.validation, config,
                                   RandomSearchConfig(mode=method.split("-", 1)[1], **search),
                                   model=model, loss=loss, callback=callback)
        else:
            if run_dir.needs_session:
                run_dir.open_session(config, parts.fingerprint(), data=parts.record(),
                                     data_name=parts.name, files=parts.shard_files())
            result = run_dir.run(parts.job(model=model, loss=loss, callback=callback,
                                           placement=placement, start=start,
                                           session=run_dir.session), config)
        result.target_scaler = parts.target_scaler
        if parts.shards is not None:
            result.feature_names = tuple(parts.shards.feature_names)
        if result.status == "diverged":
            warnings.warn(f"{result.message[0].upper()}{result.message[1:]}", DivergedWarning,
                          stacklevel=2)
        _score_test(result, parts)
        run_dir.finish(result, data_name=parts.name, plots=plots)
        return result


def _take_sweep_rates(settings: dict, config: TrainConfig | None, source) -> None:
    """``lr_from_sweep=``: :func:`~sgdlab.lab.sweep_rates.settings_from_sweep`, written into
    ``settings``."""
    from .lab.sweep_rates import settings_from_sweep
    if "lr" in settings:
        raise ConfigError("lr= and lr_from_sweep= both set the learning rate: drop one (a "
                          "batch schedule's phases may still give their own @LR)")
    where = str(source) if isinstance(source, (str, os.PathLike)) else "the sweep result"
    settings.update(settings_from_sweep(
        source, where,
        batch_size=settings.get("batch_size", config.batch_size if config else None),
        batch_schedule=settings.get("batch_schedule",
                                    config.batch_schedule if config else None),
        option="lr_from_sweep=", batch_names="batch_size= (or batch_schedule=)"))


def _check_arguments(X, method, settings, config, *, model, resume, on_divergence, placement,
                     init, sample_weight, trust_code=False):
    """Refuse arguments that do not go together, before anything is read or written.

    Returns ``(search, start, init_note)``: the random-search settings (taken out of
    ``settings``), and the initial model of ``init=`` with the note the config records (else
    ``None, None``).
    """
    if method not in METHODS:
        raise ConfigError(choices_message("method", method, METHODS))
    search = {k: settings.pop(k) for k in SEARCH_FIELDS if k in settings}
    if search and method == "sgd":
        raise ConfigError(f"setting(s) {', '.join(sorted(search))} only apply to random search; "
                          f"pass method='random-local' (or random-global, random-weighted)")
    if method != "sgd" and (resume is not None or on_divergence is not None):
        raise ConfigError("random search keeps no checkpoints: resume and on_divergence apply "
                          "to method='sgd' only")
    if (as_shards(X) is not None or placement is not None) and method != "sgd":
        raise ConfigError("streamed (shard) data and several processes train with "
                          "method='sgd' only")
    if sample_weight is not None and (method != "sgd" or placement is not None or
                                      as_shards(X) is not None):
        raise ConfigError("sample_weight applies to in-memory training on one process with "
                          "method='sgd'")
    start = init_note = None
    if init is not None:
        start, init_note = _initial_model(init, trust_code=trust_code, model=model)
        if method != "sgd" or placement is not None or as_shards(X) is not None or \
                resume is not None:
            raise ConfigError("init= (--init) starts in-memory training on one process "
                              "(method='sgd', not resume=); drop it for this run")
    if on_divergence == "halve-lr" and (
            callable(settings.get("lr", getattr(config, "lr", None))) or not isinstance(
                settings.get("optimizer", getattr(config, "optimizer", "sgd")), str)):
        raise ConfigError("on_divergence='halve-lr' halves a numeric lr of a named optimiser; "
                          "with an optax schedule or optimiser object, pass a smaller one")
    return search, start, init_note


@dataclasses.dataclass
class _PreparedData:
    """The data of one fit, split and ready to train on.

    ``data`` is everything given (a Dataset or, streamed, the ShardSet); ``train``,
    ``validation`` and ``test`` its parts (``test`` may be None; for streamed data ``train``
    is the ShardSet); ``shards`` the ShardSet of a streamed run, else None. ``spec`` is the
    data spec or absolute file path a resume reloads (None for arrays), ``name`` the data's
    name in config.json and metrics.json. ``validation_given``: validation came from the
    caller rather than being held out of ``data`` (then it enters the fingerprint).
    """

    data: object
    train: object
    validation: object
    test: Dataset | None
    shards: ShardSet | None
    spec: str | None
    name: str
    label_column: str | None
    task: str | None
    validation_given: bool
    target_scaler: TargetScaler | None = None
    train_weight: np.ndarray | None = None

    def fingerprint(self) -> str:
        """What a resume compares: the data, and validation data the caller gave (held-out
        validation follows from the data and the configuration)."""
        return fingerprint(self.data, self.validation if self.validation_given else None)

    def shard_files(self) -> dict | None:
        """The shard files' checksums of a streamed run (to name changed ones), else None."""
        return shard_files(self.shards) if self.shards is not None else None

    def record(self) -> dict:
        """What a checkpoint records to reload the data on resume."""
        return {"spec": self.spec, "label_column": self.label_column, "task": self.task,
                "name": self.data.name}

    def job(self, *, model, loss, callback, placement, start, session) -> Job:
        """The :class:`~sgdlab.engine.job.Job` that trains on this data (from ``start``'s
        parameters and preprocessing when fine-tuning)."""
        return Job(self.train, self.validation, streamed=self.shards is not None, model=model,
                   loss=loss, callback=callback, placement=placement, session=session,
                   init_params=start.params if start is not None else None,
                   standardizer=start.standardizer if start is not None else None,
                   sample_weight=self.train_weight)


def _prepare_data(X, y, validation, test, config: TrainConfig, *, label_column=None,
                  task=None, start=None, sample_weight=None) -> _PreparedData:
    """Load or wrap the data and split it: held-out validation (stratified, seeded) and test
    parts unless given, validation labels on the training classes, per-row training weights,
    standardised regression targets; an initial model (``start``) must fit the data."""
    if X is None:
        raise ConfigError("no data: call fit(X, y, ...) or fit('digits', ...)")
    spec = os.fspath(X) if isinstance(X, (str, os.PathLike)) else None
    shards = as_shards(X)
    if shards is not None or (spec is not None and os.path.isfile(spec)):
        # a resume may run from another directory
        spec = os.path.abspath(shards.path if shards is not None else spec)
    given = dict(spec=spec, label_column=label_column, task=task,
                 validation_given=validation is not None)
    if shards is not None:  # streamed: nothing is loaded, validation may stream too
        # streamed targets train as stored: no scaler, no weights
        return _PreparedData(shards, shards, _shard_validation(shards, validation, test),
                             None, shards, name=str(shards.path), **given)
    data = as_dataset(X, y, label_column=label_column, task=task)
    if validation is not None:
        if as_shards(validation) is not None:
            raise ConfigError(
                f"validation data {str(getattr(validation, 'path', validation))!r} is a "
                "shard set, which is streamed: it goes with streamed training data (a "
                "shard set too); for in-memory training give a data file or arrays")
        val = validation if isinstance(validation, Dataset) else from_arrays(
            *validation, task=data.task, name="validation")
        val = _align_classes(val, data)
        train_part, test_part = data, (as_dataset(*test) if test is not None else None)
    else:
        parts = split(data, validation=config.validation_fraction,
                      test=config.test_fraction, seed=config.seed)
        train_part, val, test_part = parts.train, parts.validation, parts.test
    if start is not None:
        _check_init(start, data)
    train_weight = None
    if sample_weight is not None:
        weights = sample_weights(sample_weight, data.n, "the data")
        train_weight = weights if validation is not None else weights[train_part.meta["rows"]]
    target_scaler, train_part, val = standardized_targets(
        config, train_part, val, start.target_scaler if start is not None else None)
    return _PreparedData(data, train_part, val, test_part, None, name=data.name,
                         target_scaler=target_scaler, train_weight=train_weight, **given)


def _score_test(result: FitResult, parts: _PreparedData) -> None:
    """The test part's accuracy (or R^2) into ``result.extra``, when there is a test part."""
    if parts.test is None:
        return
    with warnings.catch_warnings():  # fit has just said so
        warnings.simplefilter("ignore", DivergedWarning)
        key = "test_accuracy" if parts.data.task == "classification" else "test_r2"
        result.extra[key] = result.score(parts.test.X, _labels(parts.test))


def _initial_model(init, trust_code: bool = False, model=None):
    """``(Predictor, note)`` for ``fit(init=...)``: a run directory (its network imported
    only with ``trust_code``, unless ``model`` is given), a Predictor or a FitResult; the
    note (the directory, or the kind of object) goes into the config."""
    from .engine import Predictor, load
    if isinstance(init, (str, os.PathLike)):
        # a network of the user's own (an object or an import path) replaces the saved one's
        own = model if model is not None and (not isinstance(model, str) or ":" in model) \
            else None
        return load(init, model=own, trust_code=trust_code), \
            os.path.abspath(os.fspath(init))
    if isinstance(init, FitResult):
        return init.predictor(), "FitResult"
    if isinstance(init, Predictor):
        return init, "Predictor"
    raise ConfigError(f"init must be a run directory, a model from sgdlab.load or a "
                      f"FitResult, got {type(init).__name__}")


def _init_network(start, where: str, settings: dict, loss):
    """The network of the initial model, so fine-tuning trains the same one: ``(model,
    loss)`` to train with, and the settings that name it put into ``settings``.

    An architecture by name takes its recorded options (``--model cnn --channels 6,16``), a
    user network the import path it was trained with; a network given as functions or as an
    object (or a loss that is no built-in one) is passed on as the initial model's own
    objects. A given setting that contradicts the network is refused.
    """
    named = _network_settings(start)
    if named is None:
        return start.model, start.loss if loss is None else loss
    declared = config_settings()
    for key, value in named.items():
        if key in settings and declared[key].check(key, settings[key]) != \
                declared[key].check(key, value):
            flag = declared[key].flag(key)
            raise ConfigError(f"init= (--init) trains the network of {where}, whose {key} is "
                              f"{value!r}, not {settings[key]!r}: drop {key}= ({flag}), or "
                              "give model= (--model) to train another network from scratch")
    settings.update(named)
    return None, loss


def _network_settings(start) -> dict | None:
    """The settings that name the initial model's network and loss (see
    :func:`_init_network`), or None where only its objects can."""
    net = start.spec.get("model", {})
    if net.get("builtin"):
        named = {"model": net["builtin"], **{k: tuple(v) if isinstance(v, list) else v
                                             for k, v in net.items() if k != "builtin"}}
    elif isinstance(net.get("import"), str):
        named = {"model": net["import"]}
    else:
        return None
    if start.loss.name not in LOSSES or LOSSES[start.loss.name] is not start.loss:
        return None  # a loss of the user's own
    return {**named, "loss": start.loss.name}


def _check_init(start, data: Dataset) -> None:
    """The new data must feed the initial model's inputs and outputs the same way."""
    own = [str(f) for f in start.feature_names]
    positional = own == [f"x{i}" for i in range(len(own))]
    if own and not positional and list(map(str, data.feature_names)) != own:
        raise ConfigError(f"the initial model was trained on columns {own[:8]}, the data has "
                          f"{list(data.feature_names)[:8]}: give the same columns in the same "
                          "order")
    if start.task == "classification" and tuple(start.classes) != tuple(data.classes):
        raise ConfigError(f"the initial model's classes are {list(start.classes)[:10]}, the "
                          f"data's {list(data.classes)[:10]}: fine-tuning keeps the output "
                          "layer, so the classes must be the same")


def standardized_targets(config: TrainConfig, train_part: Dataset, val, scaler=None):
    """``(scaler, train, validation)``: real-valued targets z-scored with the training part's
    mean and deviation when ``config.standardize``, else ``(None, train, validation)``.

    Validation targets take the training statistics, so R^2 is unchanged and the validation
    loss reads in standardised units; :meth:`FitResult.predict` maps back to original units.
    """
    if not config.standardize or train_part.task != "regression":
        return None, train_part, val
    scaler = scaler or TargetScaler().fit(train_part.y)  # an initial model keeps its own

    def scaled(ds):
        return dataclasses.replace(ds, y=scaler.transform(ds.y)) if ds is not None else None
    return scaler, scaled(train_part), scaled(val)


def _shard_validation(shards, validation, test):
    """The validation data of a streamed run: shards, an in-memory Dataset, or None."""
    if test is not None:
        raise ConfigError("test data is not supported with streamed training data; score the "
                          "test set with result.score(X_test, y_test) after training")
    val = as_shards(validation)
    if val is None and validation is not None:
        val = validation if isinstance(validation, Dataset) else from_arrays(
            *validation, task=shards.task, name="validation")
        val = _align_classes(val, shards)
    if isinstance(val, ShardSet) and (val.example_shape != shards.example_shape or
                                      val.classes != shards.classes):
        def each(s):
            return f"{s.d} features" if len(s.example_shape) == 1 else \
                f"examples of shape {s.example_shape}"
        raise ConfigError(f"validation shards {val.path} have {each(val)} and classes "
                          f"{list(val.classes)[:5]}, the training shards {each(shards)} and "
                          f"{list(shards.classes)[:5]}; convert both with the same --classes")
    return val


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
