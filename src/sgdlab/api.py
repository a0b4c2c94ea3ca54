"""The one-call Python API: ``sgdlab.fit``."""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np

from .data import Dataset, TargetScaler, from_arrays, load_data, split
# as_shards stays importable from here: the command line and users call sgdlab.api.as_shards
from .data.shards import ShardSet, as_shards, is_shard_dir  # noqa: F401
from .engine import FitResult, TrainConfig, train
from .engine.checkpoint import CheckpointStore
from .engine.lock import RunLock
from .engine.rundir import prepare_dir, write_json_atomic
from .errors import ConfigError, DataError, DivergedWarning, RunDirError, choices_message
from .tasks import default_lr
from .optim.random_search import SEARCH_FIELDS, RandomSearchConfig

#: ``fit(method=...)``: gradient descent (the gradient itself is ``TrainConfig.gradient``), or
#: random search in one of its modes (see :mod:`sgdlab.optim.random_search`).
METHODS = ("sgd", "random-global", "random-local", "random-weighted")

SINGLE_PROCESS_CHECKPOINTS = (
    "checkpoints and resume work on one process or over several processes (--processes, "
    "--coordinator), not over several devices of one process (--devices); drop --devices to "
    "use them")

HALVE_LR_ONE_PROCESS = (
    "on_divergence='halve-lr' (--on-divergence halve-lr) needs a single process; runs over "
    "several processes or devices stop on divergence and can be resumed from a checkpoint "
    "with a lower --lr and --force")


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
        sample_weight=None, **settings) -> FitResult:
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
        checkpoints). It is locked while the run writes it.
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
      sample_weight: ``(N,)`` weights >= 0 of the rows of ``X``: training minimises the
        weighted mean loss (see :func:`sgdlab.engine.train`); validation and test scores stay
        unweighted. In-memory data, one process, ``method="sgd"``; pass them again to resume.
      settings: any :class:`TrainConfig` field, e.g. ``batch_size=32, epochs=30, lr=0.1,
        eval_every="500 steps"``; ``label_column`` and ``task`` for data specs; for random
        search also the :class:`~sgdlab.optim.random_search.RandomSearchConfig` fields
        (``attempts``, ``population``, ``scale``, ``sigma``, ``temperature``).

    >>> r = fit("digits", model="softmax", batch_size=32, epochs=5, lr=0.1)   # doctest: +SKIP
    >>> r.history[-1]["val_accuracy"] > 0.9                                  # doctest: +SKIP
    True
    """
    from .engine.resume import (check_resume, fingerprint, resume_config, shard_files,
                                train_with_recovery)
    from .engine.session import CheckpointPolicy, Session

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
    start = None
    if init is not None:
        start, init_note = _initial_model(init)
        if method != "sgd" or placement is not None or as_shards(X) is not None or \
                resume is not None:
            raise ConfigError("init= (--init) starts in-memory training on one process "
                              "(method='sgd', not resume=); drop it for this run")
        if model is None and "model" not in settings and (config is None or config.model ==
                                                          TrainConfig().model):
            settings.update(_network_settings(start))
    if on_divergence == "halve-lr" and (
            callable(settings.get("lr", getattr(config, "lr", None))) or not isinstance(
                settings.get("optimizer", getattr(config, "optimizer", "sgd")), str)):
        raise ConfigError("on_divergence='halve-lr' halves a numeric lr of a named optimiser; "
                          "with an optax schedule or optimiser object, pass a smaller one")
    if placement is not None and on_divergence == "halve-lr":
        raise ConfigError(HALVE_LR_ONE_PROCESS)
    if placement is not None and getattr(placement, "world", 1) == 1 and \
            getattr(placement, "n_devices", 1) > 1 and any(
                v is not None for v in (resume, checkpoint_every, keep_checkpoints, max_retries)):
        # Resuming over several devices of one process is not exercised by any test yet, so
        # it is refused as on the command line (--devices); its run directory still works.
        raise ConfigError(SINGLE_PROCESS_CHECKPOINTS)
    # Every process must make the same checkpoint decisions, so whether a run keeps a session
    # follows from the arguments all of them share, before `out` is dropped on non-writers.
    shared_dir = resume if resume is not None else out
    writer = placement is None or placement.is_writer
    if not writer:
        out = None  # only the writing process touches the run directory
    if isinstance(model, str):
        settings["model"], model = model, None
    if isinstance(loss, str):
        settings["loss"], loss = loss, None
    label_column, task = settings.pop("label_column", None), settings.pop("task", None)
    given_policy = {k: v for k, v in (("every", checkpoint_every), ("keep", keep_checkpoints),
                                      ("on_divergence", on_divergence),
                                      ("max_retries", max_retries)) if v is not None}
    policy = CheckpointPolicy(**given_policy)
    if resume is not None:
        if out is not None and os.path.realpath(out) != os.path.realpath(resume):
            raise ConfigError(f"resume={str(resume)!r} continues that run directory; out="
                              f"{str(out)!r} names another one: give only one of them")
        out = resume if writer else None
        if not os.path.isdir(resume):
            raise RunDirError(f"cannot resume {str(resume)!r}: no such run directory")
    lock = RunLock(prepare_dir(out)).acquire() if out is not None else None
    session = None
    try:
        snap = forced = None
        if resume is not None:
            snap = CheckpointStore(resume).latest()  # every process reads the same one
            config = resume_config(snap, settings, config)
            lr_given = True  # the checkpoint's configuration holds the rate
            policy = CheckpointPolicy(**{**snap.meta.get("policy", {}), **given_policy})
            if X is None:
                X, y, label_column, task = _recorded_data(snap, resume)
        else:
            lr_given = config is not None or "lr" in settings
            config = config.replace(**settings) if config is not None else \
                TrainConfig(**settings)
        if X is None:
            raise ConfigError("no data: call fit(X, y, ...) or fit('digits', ...)")
        spec = os.fspath(X) if isinstance(X, (str, os.PathLike)) else None
        shards = as_shards(X)
        if shards is not None or (spec is not None and os.path.isfile(spec)):
            # a resume may run from another directory
            spec = os.path.abspath(shards.path if shards is not None else spec)
        if shards is not None:  # streamed: nothing is loaded, validation may stream too
            data, train_part, test_part = shards, shards, None
            target_scaler = train_weight = None  # streamed targets train as stored
            val = _shard_validation(shards, validation, test)
            data_name = str(shards.path)
        else:
            data = as_dataset(X, y, label_column=label_column, task=task)
            data_name = data.name
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
                config = config.replace(extra={**config.extra, "init": init_note})
            train_weight = None
            if sample_weight is not None:
                weights = np.asarray(sample_weight)
                if weights.shape != (data.n,):
                    raise DataError(f"sample_weight has shape {weights.shape}; the data has "
                                    f"{data.n} rows: give one weight per row, shape ({data.n},)")
                train_weight = weights if validation is not None else \
                    weights[train_part.meta["rows"]]
            target_scaler, train_part, val = standardized_targets(
                config, train_part, val, start.target_scaler if start is not None else None)
            if not lr_given and model is None and loss is None:
                config = config.replace(lr=default_lr(config.model, config.loss, data.task))
        if method == "sgd" and (shared_dir is not None if placement is not None else (
                out is not None or policy.on_divergence == "halve-lr")):
            # held-out validation (in memory or whole blocks) follows from data and config
            fp = fingerprint(data, val if validation is not None else None)
            files = shard_files(shards) if shards is not None else None
            world = getattr(placement, "world", 1)
            layout = {"processes": world,
                      "local_devices": getattr(placement, "n_devices", 1) // world}
            if snap is not None:
                forced = check_resume(snap, config, fp, shared_dir, force, files, layout)
                _same_checkpoint(placement, snap)
            meta = {"config": config.to_dict(), "data": {
                "spec": spec, "label_column": label_column, "task": task, "name": data.name,
                "fingerprint": fp, **({"files": files} if files else {})}, "seed": config.seed,
                "forced_changes": forced or [], "resumed_from_step": None, **layout,
                "policy": {k: getattr(policy, k)
                           for k in ("every", "keep", "on_divergence", "max_retries")}}
            if snap is not None:
                meta["divergence_retries"] = snap.meta.get("divergence_retries", [])
                meta["forced_changes"] = snap.meta.get("forced_changes", []) + (forced or [])
                meta["resumed_from_step"] = snap.step
            if out is not None:
                cfg = config.to_dict()
                cfg["data"] = data_name
                write_json_atomic(Path(out) / "config.json", cfg)
            # Every process of a run handles SIGTERM/SIGINT (the launcher forwards them), so
            # all stop at one boundary; only a run without any directory leaves them alone.
            session = Session(out, policy if shared_dir is not None else
                              dataclasses.replace(policy, handle_signals=False), meta, snap,
                              lr=config.lr if policy.on_divergence == "halve-lr" else None)

        def run_once(cfg):
            if method != "sgd":
                from .lab.random_search import random_search
                return random_search(train_part, val, cfg,
                                     RandomSearchConfig(mode=method.split("-", 1)[1], **search),
                                     model=model, loss=loss, callback=callback)
            if shards is not None:
                from .engine.stream_fit import train_shards
                return train_shards(shards, cfg, validation=val, model=model, loss=loss,
                                    callback=callback, placement=placement, session=session)
            if placement is not None:
                from .engine.stream_fit import train_parallel
                return train_parallel(train_part, val, cfg, placement=placement, model=model,
                                      loss=loss, callback=callback, session=session)
            begin = {} if start is None else {"init_params": start.params,
                                               "standardizer": start.standardizer}
            return train(train_part, val, cfg, model=model, loss=loss, callback=callback,
                         session=session, sample_weight=train_weight, **begin)

        result = train_with_recovery(run_once, config, session) if session is not None \
            else run_once(config)
        result.target_scaler = target_scaler
        if shards is not None:
            result.feature_names = tuple(shards.feature_names)
        if session is not None:
            result.extra["checkpoints_written"] = session.checkpoints_written
            if session.signal is not None:
                result.extra["signal"] = int(session.signal)
            for key in ("resumed_from_step", "forced_changes"):
                if session.meta.get(key):
                    result.extra[key] = session.meta[key]
        if result.status == "diverged":
            warnings.warn(f"{result.message[0].upper()}{result.message[1:]}", DivergedWarning,
                          stacklevel=2)
        if test_part is not None:
            with warnings.catch_warnings():  # fit has just said so
                warnings.simplefilter("ignore", DivergedWarning)
                result.extra["test_accuracy" if data.task == "classification" else "test_r2"] = \
                    result.score(test_part.X, _labels(test_part))
        if out is not None:
            from .report.run import write_run  # lazy: plotting is not needed to train
            write_run(out, result, data_name=data_name,
                      plots=plots and result.status != "interrupted")
        return result
    finally:
        if session is not None:
            session.close()
        if lock is not None:
            lock.release()


def _initial_model(init):
    """``(Predictor, note)`` for ``fit(init=...)``: a run directory, a Predictor or a
    FitResult; the note (the directory, or the kind of object) goes into the config."""
    from .engine import Predictor, load
    if isinstance(init, (str, os.PathLike)):
        return load(init), os.path.abspath(os.fspath(init))
    if isinstance(init, FitResult):
        return init.predictor(), "FitResult"
    if isinstance(init, Predictor):
        return init, "Predictor"
    raise ConfigError(f"init must be a run directory, a model from sgdlab.load or a "
                      f"FitResult, got {type(init).__name__}")


def _network_settings(start) -> dict:
    """The model settings of a built-in network, so fine-tuning takes the same one."""
    net = start.spec.get("model", {})
    if net.get("builtin") == "mlp":
        return {"model": "mlp", "hidden": tuple(net["hidden"]),
                "activation": net["activation"], "loss": start.loss.name}
    if net.get("builtin") == "linear":
        return {"model": "linear", "loss": start.loss.name}
    raise ConfigError("init= with a user model needs that model: pass model= (and loss=)")


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


def _same_checkpoint(placement, snap) -> None:
    """Refuse unless every process read the checkpoint of the same step.

    Each process reads the newest valid checkpoint of the shared run directory itself; they
    differ only if the directory is not really shared (say, a local copy per machine).
    """
    if getattr(placement, "world", 1) == 1:
        return
    # float32 is exact below 2**24: send the step as two 20-bit halves.
    parts = placement.gather([float(snap.step >> 20), float(snap.step & 0xFFFFF)])
    steps = [int(hi) << 20 | int(lo) for hi, lo in parts]
    if len(set(steps)) > 1:
        raise ConfigError(
            f"the processes read checkpoints of different steps ({', '.join(map(str, steps))}"
            "); --resume needs the run directory on a filesystem every process shares")


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
    if isinstance(val, ShardSet) and (val.d != shards.d or val.classes != shards.classes):
        raise ConfigError(f"validation shards {val.path} have {val.d} features and classes "
                          f"{list(val.classes)[:5]}, the training shards {shards.d} and "
                          f"{list(shards.classes)[:5]}; convert both with the same --classes")
    return val


def _recorded_data(snap, out):
    """``(X, y, label_column, task)`` to reload the data spec a checkpoint recorded."""
    d = snap.meta.get("data", {})
    if not d.get("spec"):
        raise ConfigError(f"cannot resume {str(out)!r} without data: the run was trained on "
                          "in-memory arrays, which a checkpoint does not hold; pass the same "
                          "X, y (or Dataset) again")
    return d["spec"], None, d.get("label_column"), d.get("task")


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
