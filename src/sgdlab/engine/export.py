"""A trained model as a portable forward function: StableHLO serialised with ``jax.export``,
run later by any process with JAX, without sgdlab or the training code.

``export_model(predictor, out)`` writes a new directory ``out``::

    forward.jaxexport   X: float32 (n, d), any n  ->  {"scores": (n, k),
                        "prediction": (n,) class index or real value (original units),
                        "proba": (n, C), softmax and logistic losses only}
    export.json         feature_names (the column order X must have), task, classes
                        (index -> original label), loss, format
    predict.py          a standalone reader: numpy + jax only

The preprocessing (standardisation of X, and for regression the target scale) and the
loss's decision rule are inside the exported function, with the parameters as constants.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import RunDirError
from .predictor import Predictor, plain_labels
from .rundir import current_umask, write_bytes_atomic, write_json_atomic, write_text_atomic

EXPORT_FORMAT = 1
FORWARD_FILE = "forward.jaxexport"

STANDALONE = '''"""Predictions from an exported sgdlab model: needs numpy and jax only.

    python predict.py FEATURES.npy            # prints one prediction per row
    from predict import predict; predict(X)   # X: (n, d) in export.json's feature order
"""
import json
import pathlib
import sys

import numpy as np
from jax import export

HERE = pathlib.Path(__file__).resolve().parent
META = json.loads((HERE / "export.json").read_text())
FORWARD = export.deserialize(bytearray((HERE / "forward.jaxexport").read_bytes()))


def outputs(X):
    """The exported function's outputs for X: (n, d): scores, prediction, proba."""
    return FORWARD.call(np.asarray(X, dtype=np.float32))


def predict(X):
    """Original labels (classification) or real values (regression), shape (n,)."""
    pred = np.asarray(outputs(X)["prediction"])
    if META["task"] == "classification" and META["classes"]:
        return np.asarray(META["classes"], dtype=object)[pred]
    return pred


if __name__ == "__main__":
    for value in predict(np.load(sys.argv[1])):
        print(value)
'''


def forward_function(model: Predictor):
    """``X (n, d) -> {"scores", "prediction"[, "proba"]}`` with the preprocessing inside."""
    params = jax.tree_util.tree_map(jnp.asarray, model.params)
    std = model.standardizer
    shift = jnp.asarray(std.mean, jnp.float32) if std is not None else None
    scale = jnp.asarray(std.scale, jnp.float32) if std is not None else None
    target = model.target_scaler

    def forward(X):
        Z = (X - shift) / scale if std is not None else X
        scores = model.model.apply(params, Z)
        pred = model.loss.predict(scores)
        if target is not None:
            pred = pred * target.scale + target.mean
        out = {"scores": scores, "prediction": pred}
        if model.loss.name == "softmax":
            out["proba"] = jax.nn.softmax(scores, axis=-1)
        elif model.loss.name == "logistic":
            p1 = jax.nn.sigmoid(scores[:, 0])
            out["proba"] = jnp.stack([1 - p1, p1], axis=1)
        return out
    return forward


def export_model(model: Predictor, out) -> Path:
    """Write the export of ``model`` into the new directory ``out`` (see the module
    docstring). The files are written into a temporary directory beside ``out`` and renamed
    into place at the end, so ``out`` is complete or absent; an existing ``out`` is refused."""
    out = Path(out)
    if out.exists() or out.is_symlink():
        raise RunDirError(f"{str(out)!r} exists; give a new directory for the export (nothing "
                          "was overwritten)")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise RunDirError(f"{str(parent)!r} is not a directory; create it first")
    (n,) = jax.export.symbolic_shape("n")
    exported = jax.export.export(jax.jit(forward_function(model)))(
        jax.ShapeDtypeStruct((n, *model.input_shape), jnp.float32))
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=parent))
    try:
        os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes 0700
        write_bytes_atomic(tmp / FORWARD_FILE, bytes(exported.serialize()))
        write_json_atomic(tmp / "export.json", {
            "format": EXPORT_FORMAT, "feature_names": [str(f) for f in model.feature_names],
            "n_features": model.n_features, "example_shape": list(model.input_shape),
            "task": model.task,
            "classes": plain_labels(model.classes), "loss": model.loss.name,
            "outputs": sorted(exported.out_tree.unflatten(range(len(exported.out_avals)))),
            "jax": jax.__version__})
        write_text_atomic(tmp / "predict.py", STANDALONE)
        os.rename(tmp, out)  # refuses to replace a directory that appeared meanwhile
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def check_export(model: Predictor, out, X) -> float:
    """Largest absolute difference between the export's and ``model``'s scores on ``X``
    (a self-check after writing)."""
    exp = jax.export.deserialize(bytearray((Path(out) / FORWARD_FILE).read_bytes()))
    got = np.asarray(exp.call(np.asarray(X, np.float32))["scores"])
    return float(np.max(np.abs(got - model.decision_function(X)))) if len(got) else 0.0
