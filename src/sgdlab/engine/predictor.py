"""A trained model on its own: parameters, how to rebuild the network, the preprocessing and
the label values. What :func:`sgdlab.load` returns and what a :class:`FitResult` predicts with.

The network is described by a *spec*, a JSON-able dict, never by pickled functions::

    {"model": {"builtin": "mlp", "hidden": [128], "activation": "relu"}   # or "linear",
              | {"import": {"init": "pkg.mod:fn", "apply": "pkg.mod:fn"}, "name": "..."}
              | {"import": "pkg.mod:factory"},     # a Flax/Equinox network or factory
     "loss": "softmax",                    # a built-in loss name
     "n_features": d, "n_outputs": k,
     "example_shape": [H, W, C]}           # only for N-D examples (images, sequences)

so a saved model (``model.json`` + ``params.npz``) and a pickled one rebuild the same
functions in a fresh process. A user model defined inside a function has no import path: it
still trains and predicts, and ``sgdlab.load(RUN_DIR, model=...)`` takes it back.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from .._types import Loss, Model
from ..data.split import Standardizer, TargetScaler
from ..errors import ConfigError, DataError, DivergedWarning
from ..losses import get_loss
from ..models import MODELS, get_model

#: Default feature names of array data (``x0 .. x{d-1}``): such a model matches columns by
#: position, any other by name.
POSITIONAL_PREFIX = "x"


def import_path(fn) -> str | None:
    """``"module:qualname"`` of a module-level function, or None (a closure, a lambda or
    something defined in ``__main__`` cannot be imported by another process)."""
    module, qualname = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        return None
    return f"{module}:{qualname}"


def import_object(path: str):
    """The object ``"module:qualname"`` names, or a :class:`ConfigError` saying why not."""
    module, _, qualname = path.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"cannot import {path!r} for the saved model: {e}; install the "
                          "package that defines it, or pass model= to sgdlab.load") from None
    return obj


def model_spec(model: Model) -> dict:
    """The JSON-able description of ``model`` (see the module docstring): a built-in network
    carries its own (``apply.spec``, set by :mod:`sgdlab.models`), a user model is found by
    the import paths of its functions (``"import": None`` when they have none)."""
    own = getattr(model.apply, "spec", None)
    if isinstance(own, dict) and (own.get("builtin") or isinstance(own.get("import"), str)):
        return dict(own)
    paths = {f: import_path(getattr(model, f)) for f in ("init", "apply")}
    if None in paths.values():
        return {"name": model.name, "import": None}
    return {"name": model.name, "import": paths}


def code_to_import(spec) -> list[str]:
    """The import paths ``"module:attr"`` that :func:`build_model` would import for ``spec``
    (a ``model.json`` "model" entry); ``[]`` for a built-in network or one given as an object.

    What a run directory names is untrusted: :func:`sgdlab.load` imports these only with the
    user's opt-in (``trust_code=True``, ``--trust-code``).
    """
    paths = spec.get("import") if isinstance(spec, dict) else None
    if isinstance(paths, str):
        return [paths]
    if isinstance(paths, dict):
        return [str(paths[k]) for k in ("init", "apply") if k in paths]
    return []


def untrusted_code_message(where, paths: list[str], *,
                           python: str = "sgdlab.load(RUN_DIR, trust_code=True)",
                           own: str = "sgdlab.load(RUN_DIR, model=...)") -> str:
    """The refusal to import the code ``paths`` that the file ``where`` names (see
    :func:`code_to_import`): which modules, and how to allow it (``--trust-code``, or the
    ``python`` call) or avoid it (the ``own`` call, passing the network)."""
    modules = sorted({p.partition(":")[0] for p in paths})
    return (f"{where} names code to run: its network is built by importing the module"
            f"{'s' if len(modules) > 1 else ''} {', '.join(map(repr, modules))} "
            f"({', '.join(map(repr, paths))}); sgdlab imports nothing a run directory names "
            "unless asked. If you trust this run directory and that code, pass --trust-code "
            f"({python}); or give the network yourself: {own}")


def build_model(spec: dict) -> Model:
    """The :class:`Model` a :func:`model_spec` describes (importing the code it names: see
    :func:`code_to_import` for what a caller must have been allowed to import)."""
    if spec.get("builtin"):  # a registered architecture with the options it recorded
        if not isinstance(spec["builtin"], str) or spec["builtin"] not in MODELS:
            # get_model would take "module:attr" as an import path: never from a file
            raise ConfigError(f"the saved model's network {spec['builtin']!r} is not a "
                              f"built-in one ({', '.join(sorted(MODELS))})")
        options = {k: tuple(v) if isinstance(v, list) else v
                   for k, v in spec.items() if k != "builtin"}
        return get_model(spec["builtin"], **options)
    if not spec.get("import"):
        raise ConfigError(f"the saved model {spec.get('name', 'custom')!r} was given as an "
                          "object (a network instance, or functions defined inside a function "
                          "or in __main__), so it cannot be rebuilt by import; pass the same "
                          "model again, sgdlab.load(RUN_DIR, model=...), or train with an "
                          "import path, model='package.module:factory'")
    if isinstance(spec["import"], str):  # a user network by import path (sgdlab.user_models)
        return get_model(spec["import"])
    return Model(spec.get("name", "custom"), import_object(spec["import"]["init"]),
                 import_object(spec["import"]["apply"]))


def build_loss(name: str) -> Loss:
    try:
        return get_loss(name)
    except ConfigError:
        raise ConfigError(f"the saved model's loss {name!r} is not a built-in loss; pass the "
                          "same loss object: sgdlab.load(RUN_DIR, loss=...)") from None


def plain_labels(classes) -> list:
    """Class labels as JSON values (NumPy scalars become Python ones)."""
    return [c.item() if isinstance(c, np.generic) else c for c in classes]


@dataclass
class Predictor:
    """Predictions from trained parameters, with the training's preprocessing.

    ``decision_function(X) -> (N, k)`` scores, ``predict(X) -> (N,)`` labels (original
    values) or real values (original units), ``predict_proba(X) -> (N, C)`` where the loss
    defines probabilities, ``score(X, y)``: accuracy, or R^2 for regression.

    ``X`` is ``(N, d)`` numbers; a pandas DataFrame or pyarrow Table has its columns matched
    to ``feature_names`` by name (any order); missing or unexpected columns are an error
    naming them.
    """

    params: object
    model: Model
    loss: Loss
    task: str
    classes: tuple = ()
    feature_names: tuple = ()
    n_features: int = 0
    example_shape: tuple = ()
    standardizer: Standardizer | None = None
    target_scaler: TargetScaler | None = None
    spec: dict = field(default_factory=dict)
    diverged_message: str = ""

    @property
    def input_shape(self) -> tuple:
        """The shape of one example: ``example_shape`` for N-D examples, else ``(d,)``."""
        shape = tuple(self.example_shape)
        return shape if len(shape) > 1 else (self.n_features,)

    # -- prediction --------------------------------------------------------------------------
    def features(self, X) -> np.ndarray:
        """``X`` as float32 ``(N, d)`` in the training's column order, or ``(N, *shape)`` for
        a model of N-D examples (which also takes them flattened, ``(N, prod(shape))``, as a
        CSV file holds them)."""
        names = _columns(X)
        if names is not None:
            X = self._by_name(X, names)
        X = np.asarray(X, dtype=np.float32)
        shape = tuple(self.example_shape)
        if len(shape) > 1:
            if X.ndim == 2 and X.shape[1] == int(np.prod(shape)):
                X = X.reshape((len(X),) + shape)
            if X.shape[1:] != shape:
                raise DataError(f"the model was trained on examples of shape {shape}, the data "
                                f"has shape {X.shape[1:]} per example (array {X.shape}); give "
                                f"({len(X)}, {', '.join(map(str, shape))}) or the flattened "
                                f"({len(X)}, {int(np.prod(shape))})")
            return X
        if X.ndim != 2:
            raise DataError(f"features must be 2-D (N, d), got shape {X.shape}")
        if self.n_features and X.shape[1] != self.n_features:
            raise DataError(f"the model was trained on {self.n_features} features, the data "
                            f"has {X.shape[1]}")
        return X

    def decision_function(self, X) -> np.ndarray:
        """Raw model outputs ``(N, k)`` for features ``X (N, d)`` (standardised as in training)."""
        X = self.features(X)
        if self.standardizer is not None:
            X = self.standardizer.transform(X)
        return np.asarray(_jitted(self.model.apply)(self.params, jnp.asarray(X)))

    def predict(self, X) -> np.ndarray:
        """Class labels (original values) or real predictions (original units) for ``X``."""
        out = self.decision_function(X)
        pred = np.asarray(self.loss.predict(jnp.asarray(out)))
        if self.task == "classification" and self.classes:
            mixed = len({type(c) for c in self.classes}) > 1
            return np.asarray(self.classes, dtype=object if mixed else None)[pred]
        if self.target_scaler is not None:
            return self.target_scaler.inverse(pred)
        return pred

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities ``(N, C)`` for softmax and logistic losses."""
        if self.loss.name not in ("softmax", "logistic"):
            raise AttributeError(f"loss {self.loss.name!r} gives scores, not probabilities; "
                                 "use 'softmax' or 'logistic' for predict_proba")
        out = self.decision_function(X)
        if self.loss.name == "softmax":
            return np.asarray(jax.nn.softmax(out, axis=-1))
        p1 = np.asarray(jax.nn.sigmoid(out[:, 0]))
        return np.stack([1 - p1, p1], axis=1)

    def score(self, X, y) -> float:
        """Accuracy for classification, R^2 for regression.

        Labels the training never saw are an error naming them. A model whose training
        diverged warns (:class:`~sgdlab.errors.DivergedWarning`): its score is that of the last
        finite parameters, often ``-inf`` for R^2.
        """
        if self.diverged_message:
            warnings.warn(f"scoring a model whose {self.diverged_message[0].lower()}"
                          f"{self.diverged_message[1:]}", DivergedWarning, stacklevel=2)
        y = np.asarray(y)
        if self.task == "classification" and self.classes:
            unseen = sorted({str(v) for v in np.unique(y)} - {str(c) for c in self.classes})
            if unseen:
                raise DataError(f"labels {', '.join(unseen[:5])} were not among the training "
                                f"classes ({', '.join(map(str, self.classes[:10]))}); the "
                                "model cannot predict them")
        pred = self.predict(X)
        if self.task == "classification":
            return float(np.mean(pred.astype(str) == y.astype(str))) if pred.dtype == object \
                else float(np.mean(pred == y))
        with np.errstate(over="ignore", invalid="ignore"):  # huge predictions: R^2 = -inf
            y = y.astype(np.float64)
            sst = float(np.sum((y - y.mean()) ** 2))
            sse = float(np.sum((np.asarray(pred, np.float64) - y) ** 2))
        return 1.0 - sse / sst if sst > 0 else float("nan")

    def __repr__(self) -> str:
        net = self.spec.get("model", {})
        what = net.get("builtin") or self.model.name
        if what == "mlp":
            what += f"{net.get('hidden')} {net.get('activation')}"
        labels = f"{len(self.classes)} classes" if self.task == "classification" else \
            "regression"
        return f"Predictor({what} / {self.loss.name}, {self.n_features} features, {labels})"

    # -- pickling: the spec travels, the functions are rebuilt -------------------------------
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if not self.spec.get("model", {}).get("builtin") and \
                not self.spec.get("model", {}).get("import"):
            raise TypeError(f"cannot pickle the model {self.model.name!r}: it was given as an "
                            "object (a network instance, or functions defined inside a "
                            "function or in __main__) that cannot be rebuilt by import; define "
                            "it at module level and train with model='package.module:factory'")
        state["params"] = jax.tree_util.tree_map(np.asarray, self.params)
        state.pop("model"), state.pop("loss")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.model = build_model(state["spec"]["model"])
        self.loss = build_loss(state["spec"]["loss"])

    # -- column matching ---------------------------------------------------------------------
    def _by_name(self, X, names: list[str]):
        own = [str(f) for f in self.feature_names]
        positional = own == [f"{POSITIONAL_PREFIX}{i}" for i in range(len(own))]
        if not own or positional or names == own:
            return _to_numpy(X)
        missing = [f for f in own if f not in names]
        unexpected = [n for n in names if n not in own]
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"missing column(s) {', '.join(map(repr, missing[:8]))}")
            if unexpected:
                parts.append(f"unexpected column(s) {', '.join(map(repr, unexpected[:8]))}")
            raise DataError(f"the data's columns do not match the model's: {'; '.join(parts)}; "
                            f"it was trained on {', '.join(map(repr, own[:12]))}"
                            + (" ..." if len(own) > 12 else ""))
        table = _to_numpy(X)
        return table[:, [names.index(f) for f in own]]


def _columns(X) -> list[str] | None:
    if hasattr(X, "columns") and hasattr(X, "to_numpy"):  # pandas
        return [str(c) for c in X.columns]
    if hasattr(X, "column_names") and hasattr(X, "to_pandas"):  # pyarrow
        return [str(c) for c in X.column_names]
    return None


def _to_numpy(X) -> np.ndarray:
    if hasattr(X, "to_numpy") and hasattr(X, "columns"):
        return X.to_numpy(dtype=np.float32)
    return np.column_stack([np.asarray(c, dtype=np.float32) for c in X.columns]) \
        if X.num_columns else np.zeros((X.num_rows, 0), np.float32)


_JIT_CACHE: dict = {}


def _jitted(apply):
    if apply not in _JIT_CACHE:
        _JIT_CACHE[apply] = jax.jit(apply)
    return _JIT_CACHE[apply]
