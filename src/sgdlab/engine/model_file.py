"""A run directory's model: ``model.json`` (what the network is, the preprocessing, the labels)
beside ``params.npz`` (the parameters), enough to predict without the training data.

``model.json``::

    {"format": 1,                      # FORMAT; a newer file is refused with a clear message
     "model": {...}, "loss": "softmax", "n_features": d, "n_outputs": k,   # engine.predictor
     "task": "classification", "classes": [0, 1, ...], "feature_names": ["a", ...],
     "standardizer": {"mean": [...], "scale": [...]} | null,
     "target_scaler": {"mean": m, "scale": s} | null,
     "status": "completed", "message": ""}
"""

from __future__ import annotations

import os
from pathlib import Path

from ..data.split import Standardizer, TargetScaler
from ..errors import ConfigError, RunDirError
from ..user_models import working_directory_last
from .predictor import (Predictor, build_loss, build_model, code_to_import, plain_labels,
                        untrusted_code_message)
from .model_description import check_description, network_shapes, read_description
from .params_file import read_params
from .rundir import save_params, write_json_atomic

FORMAT = 1
MODEL_FILE = "model.json"
PARAMS_FILE = "params.npz"


def save_model(out, result) -> None:
    """Write ``params.npz`` then ``model.json`` of a :class:`FitResult` into ``out`` (each
    atomically; ``model.json`` last, so its presence means the model is complete)."""
    out = Path(out)
    save_params(out / PARAMS_FILE, result.params)
    spec = result.spec()
    write_json_atomic(out / MODEL_FILE, {
        "format": FORMAT, **spec, "task": result.task,
        "classes": plain_labels(result.classes),
        "feature_names": [str(f) for f in result.feature_names],
        "standardizer": result.standardizer.to_dict() if result.standardizer else None,
        "target_scaler": result.target_scaler.to_dict() if result.target_scaler else None,
        "status": result.status, "message": result.message})


def load(run_dir, model=None, loss=None, *, trust_code: bool = False) -> Predictor:
    """The trained model of ``run_dir`` (a directory written by ``sgdlab train`` or
    ``sgdlab.fit(out=...)``), ready to predict; it needs neither the training data nor code
    beyond sgdlab (and, for a user model, the module that defines it).

    A run directory is data, not code: a built-in network is rebuilt from its description,
    and a user network whose ``model.json`` names an import path (``"module:factory"``) is
    imported only with ``trust_code=True`` (like ``torch.load(weights_only=True)`` and
    ``trust_remote_code``); the working directory is then searched after the installed
    packages, never first. Without it the import is refused with a :class:`ConfigError`
    naming the module, unless ``model`` is given.

    ``model``/``loss``: the objects a run trained with, for a user model or loss that cannot
    be rebuilt by import (defined inside a function or in ``__main__``), or to avoid the
    import altogether.

    Raises :class:`~sgdlab.errors.RunDirError` when the directory has no model (not a run, an
    unfinished run, or one from before models were saved), or one of a newer format.
    """
    path = Path(run_dir)
    meta_file = path / MODEL_FILE
    if not path.is_dir():
        raise RunDirError(f"{str(run_dir)!r} is not a directory; give a run directory written "
                          "by 'sgdlab train' (e.g. runs/train-...)")
    if not os.path.lexists(meta_file):
        raise RunDirError(f"{str(run_dir)!r} holds no {MODEL_FILE}: it is not a finished "
                          "training run (or it was written by an sgdlab without saved models; "
                          "train it again)")
    meta = read_description(meta_file)
    version = meta.get("format")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise RunDirError(f"{meta_file}: not an sgdlab model description")
    if version > FORMAT:
        raise RunDirError(f"{meta_file}: model format {version} is newer than this sgdlab "
                          f"reads ({FORMAT}); upgrade sgdlab (pip install -U sgdlab)")
    missing = [k for k in ("model", "loss", "n_features", "n_outputs", "task") if k not in meta]
    if missing:
        raise RunDirError(f"{meta_file}: incomplete model description (no "
                          f"{', '.join(missing)}); train it again")
    shape = check_description(meta, meta_file, None if loss is None else _as_loss(loss))
    # a model or loss that cannot be rebuilt is its own message (ConfigError), not damage
    net = _network(meta["model"], meta_file, trust_code) if model is None else _as_model(model)
    objective = build_loss(meta["loss"]) if loss is None else _as_loss(loss)
    like = network_shapes(net, shape, meta["n_outputs"], meta_file)
    params = read_params(path / PARAMS_FILE, like)
    try:
        standardizer = Standardizer.from_dict(meta["standardizer"]) \
            if meta.get("standardizer") else None
        target_scaler = TargetScaler.from_dict(meta["target_scaler"]) \
            if meta.get("target_scaler") else None
    except (KeyError, TypeError, ValueError) as e:
        raise RunDirError(f"{meta_file}: the saved preprocessing is damaged ({e}); "
                          "train it again") from None
    spec = {k: meta[k] for k in ("model", "loss", "n_features", "n_outputs", "example_shape")
            if k in meta}
    return Predictor(params=params, model=net, loss=objective, task=meta["task"],
                     classes=tuple(meta.get("classes") or ()),
                     feature_names=tuple(meta.get("feature_names") or ()),
                     n_features=int(meta["n_features"]),
                     example_shape=tuple(meta.get("example_shape") or ()),
                     standardizer=standardizer,
                     target_scaler=target_scaler, spec=spec,
                     diverged_message=meta.get("message", "")
                     if meta.get("status") == "diverged" else "")


def _network(spec: dict, meta_file, trust_code: bool):
    """The network ``model.json`` describes; an import it names only with ``trust_code``."""
    named = spec.get("import")
    if not spec.get("builtin") and named is not None and not isinstance(named, str) and not (
            isinstance(named, dict) and all(isinstance(named.get(k), str)
                                            for k in ("init", "apply"))):
        raise RunDirError(f"{meta_file}: the network's import entry must be 'module:attr' or "
                          f"{{'init': 'module:attr', 'apply': 'module:attr'}}, got "
                          f"{str(named)[:60]!r}; the model description is damaged")
    paths = code_to_import(spec)
    if not paths:
        if not spec.get("builtin"):
            return build_model(spec)  # a network given as an object: its own message
        try:
            return build_model(spec)
        except (TypeError, ValueError) as e:  # ConfigError too: an option the file holds
            raise RunDirError(f"{meta_file}: the network it describes cannot be built ({e}); "
                              "the model description is damaged: train the model again, or "
                              "restore the run directory from a copy") from None
    if not trust_code:
        raise ConfigError(untrusted_code_message(meta_file, paths))
    with working_directory_last():
        return build_model(spec)


def _as_model(model):
    from ..models import get_model
    return get_model(model)


def _as_loss(loss):
    from ..losses import get_loss
    return get_loss(loss)
