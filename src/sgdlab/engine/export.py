"""A trained model as a portable forward function: StableHLO serialised with ``jax.export``,
run later by any process with JAX, without sgdlab or the training code.

``export_model(predictor, out)`` writes a new directory ``out``::

    forward.jaxexport   X: float32 (n, *example_shape), any n  ->  {"scores": (n, k),
                        "prediction": (n,) class index or real value (original units),
                        "proba": (n, C), softmax and logistic losses only}
    export.json         feature_names (the column order X must have), example_shape, task,
                        classes (index -> original label), loss, format
    predict.py          a standalone reader (numpy + jax only) of .npy, .npz and text tables;
                        its docstring and --help name the shape X must have

The preprocessing (standardisation of X, and for regression the target scale) and the
loss's decision rule are inside the exported function, with the parameters as constants.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import RunDirError
from .predictor import Predictor, plain_labels
from .rundir import current_umask, write_bytes_atomic, write_json_atomic, write_text_atomic

EXPORT_FORMAT = 1
FORWARD_FILE = "forward.jaxexport"

#: predict.py, standalone (numpy and jax only); @DOC@ becomes the model's input in words
STANDALONE = r'''"""Predictions from an exported sgdlab model: needs numpy and jax only, not sgdlab.

    python predict.py FEATURES                # prints one prediction per example
    from predict import predict; predict(X)   # the predictions as an array (n,)

@DOC@

FEATURES is a .npy array, an .npz archive (its array 'X', or its only array) or a
.csv/.tsv/.txt table of numbers, one example per row, flattened, with an optional header
row naming the features. Exit code 0, or 2 with one message for input that does not fit.
"""
import argparse
import csv
import json
import math
import pathlib
import sys
import zipfile

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
META = json.loads((HERE / "export.json").read_text())
#: the shape of one example (X is (n, *EXAMPLE_SHAPE)) and its number of values
EXAMPLE_SHAPE = tuple(META.get("example_shape") or (META["n_features"],))
SIZE = math.prod(EXAMPLE_SHAPE)
#: text tables and their delimiters (None: any whitespace)
TEXT = {".csv": ",", ".tsv": "\t", ".txt": None}
_FORWARD = []


class InputError(ValueError):
    """Input that does not fit the model: one message, exit code 2 on the command line."""


def shape_text(shape):
    return "(n, " + ", ".join(str(s) for s in shape) + ")"


def examples(X):
    """X as float32 of shape (n, *EXAMPLE_SHAPE); a flat (n, SIZE) array is reshaped."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise InputError(f"holds values of dtype {X.dtype}; the model takes real numbers")
    if X.ndim >= 2 and tuple(X.shape[1:]) == EXAMPLE_SHAPE:
        pass
    elif X.ndim == 2 and X.shape[1] == SIZE:
        X = X.reshape((len(X),) + EXAMPLE_SHAPE)
    else:
        flat = f" (or flat {shape_text((SIZE,))})" if len(EXAMPLE_SHAPE) > 1 else ""
        raise InputError(f"holds an array of shape {X.shape}; the model takes "
                         f"{shape_text(EXAMPLE_SHAPE)}{flat}")
    with np.errstate(over="ignore"):
        X = X.astype(np.float32)
    if not np.isfinite(X).all():
        raise InputError("holds NaN or infinite values (or values too large for float32); "
                         "remove or fill them in first")
    return X


def outputs(X):
    """The exported function's outputs for X (see examples()): scores, prediction, proba."""
    X = examples(X)
    if not _FORWARD:
        from jax import export
        data = bytearray((HERE / "forward.jaxexport").read_bytes())
        _FORWARD.append(export.deserialize(data))
    return _FORWARD[0].call(X)


def predict(X):
    """Original labels (classification) or real values (regression), shape (n,)."""
    pred = np.asarray(outputs(X)["prediction"])
    if META["task"] == "classification" and META["classes"]:
        return np.asarray(META["classes"], dtype=object)[pred]
    return pred


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_text(path, delimiter):
    """A table of numbers, one example per row. A first row that is not all numbers is a
    header; when it names every feature, the columns are taken by name."""
    with open(path, newline="") as fh:
        lines = csv.reader(fh, delimiter=delimiter) if delimiter else (r.split() for r in fh)
        rows = [(i, [c.strip() for c in row]) for i, row in enumerate(lines, 1)
                if any(c.strip() for c in row)]
    if rows and not all(_is_number(c) for c in rows[0][1]):
        (_, header), rows = rows[0], rows[1:]
        names = [str(f) for f in META["feature_names"]]
        if all(n in header for n in names):
            for i, row in rows:
                if len(row) != len(header):
                    raise InputError(f"line {i} has {len(row)} values; the header has "
                                     f"{len(header)}")
            rows = [(i, [row[header.index(n)] for n in names]) for i, row in rows]
        elif names != [f"x{j}" for j in range(len(names))]:
            missing = [n for n in names if n not in header]
            shown = ", ".join(map(repr, missing[:6])) + (", ..." if len(missing) > 6 else "")
            raise InputError(f"the header lacks {len(missing)} of the {len(names)} feature "
                             f"columns ({shown}); export.json's feature_names lists them")
    if not rows:
        raise InputError("holds no rows")
    width = len(rows[0][1])
    for i, row in rows:
        if len(row) != width:
            raise InputError(f"line {i} has {len(row)} values; the first row has {width}")
        for cell in row:
            if not _is_number(cell):
                raise InputError(f"line {i}: {cell!r} is not a number")
    return np.array([row for _, row in rows], dtype=np.float64)


def read(path):
    """The array a FEATURES file holds (see the module docstring)."""
    path = pathlib.Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError("no such file")
    if suffix in TEXT:
        try:
            return read_text(path, TEXT[suffix])
        except UnicodeDecodeError:
            raise InputError("is not a text file") from None
    if suffix not in (".npy", ".npz"):
        raise InputError("is not a .npy, .npz, .csv, .tsv or .txt file")
    with open(path, "rb") as fh:
        magic = fh.read(6 if suffix == ".npy" else 4)
    if magic != (b"\x93NUMPY" if suffix == ".npy" else b"PK\x03\x04"):
        raise InputError(f"is not in {suffix} format")
    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.ndarray):
            return data
        with data:
            keys = list(data.files)
            if "X" in keys or len(keys) == 1:
                return data["X" if "X" in keys else keys[0]]
        raise InputError("holds no array 'X' (nor a single array); arrays in it: "
                         + (", ".join(map(repr, keys)) or "(none)"))
    except InputError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, RuntimeError,
            NotImplementedError, MemoryError) as e:
        reason = "an object array, which needs pickle" if "pickle" in str(e) else str(e)
        raise InputError(f"cannot read as a NumPy file: {reason}") from None


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="predict.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("features", metavar="FEATURES",
                        help=f"a .npy, .npz, .csv, .tsv or .txt file of examples "
                             f"{shape_text(EXAMPLE_SHAPE)}")
    args = parser.parse_args(argv)
    try:
        predictions = predict(read(args.features))
    except InputError as e:
        print(f"predict.py: error: {args.features}: {e}", file=sys.stderr)
        return 2
    sys.stdout.write("".join(f"{value}\n" for value in predictions))
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''


def standalone(example_shape) -> str:
    """The text of predict.py for a model of examples ``example_shape``: its docstring (and
    so its ``--help``) names the shape X must have."""
    shape = tuple(int(s) for s in example_shape)
    ex = "(n, " + ", ".join(map(str, shape)) + ")"
    if len(shape) > 1:
        doc = (f"X: numbers of shape {ex}, any n: n examples of shape {shape} (a flat "
               f"(n, {math.prod(shape)}) array is reshaped to that, row-major).")
    else:  # the names stay in export.json: any text could be one
        doc = (f"X: numbers of shape {ex}, any n, its {shape[0]} columns in the order of "
               "export.json's feature_names.")
    return STANDALONE.replace("@DOC@", textwrap.fill(doc, 92))


def forward_function(model: Predictor):
    """``X (n, *example_shape) -> {"scores", "prediction"[, "proba"]}`` with the
    preprocessing inside."""
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
        write_text_atomic(tmp / "predict.py",
                          standalone(model.input_shape))
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
