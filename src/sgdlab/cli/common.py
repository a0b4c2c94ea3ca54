"""Options shared by several verbs, the config-file merge, and terminal output helpers."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import tomllib
from pathlib import Path

from ..data import formats
from ..engine import TrainConfig
from ..errors import ConfigError

Formatter = argparse.RawDescriptionHelpFormatter


def add_data_options(p: argparse.ArgumentParser, shards: bool = False) -> None:
    """The data options of a verb; ``shards``: it also streams shard directories."""
    g = p.add_argument_group("data")
    streamed = (", or a shard directory from 'sgdlab data convert' (streamed)" if shards
                else " (held in memory: shard directories are for 'sgdlab train')")
    g.add_argument("--data",
                   help="built-in name (digits, digits-images, blobs, gaussian, linreg, xor, "
                        "mnist-like, images; 'blobs:n=5000,d=20' sets parameters) or a "
                        f"{formats.summary()} file{streamed}; default: digits")
    g.add_argument("--label-column", help="label column of a CSV/Parquet file, by name or "
                                          "0-based index (default: the last column)")
    g.add_argument("--task", choices=["classification", "regression"],
                   help="override the inferred task")
    g.add_argument("--validation-fraction", type=float, help="held-out share (default 0.2)")
    g.add_argument("--test-fraction", type=float, help="share kept for a final test score")
    g.add_argument("--buffer-mb", type=float,
                   help="streamed shard data: MiB of read buffers, which bound memory "
                        "whatever the data size (default 64)")
    g.add_argument("--no-standardize", dest="standardize", action="store_const", const=False,
                   help="do not z-score the features (nor real-valued targets)")


def add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", help="softmax (default), logistic, svm, perceptron, "
                                   "multiclass_svm, linreg, linear, mlp, cnn (images); or your "
                                   "own network as package.module:factory (a Flax or "
                                   "Equinox module, or an (init, apply) pair)")
    g.add_argument("--loss", help="override the model's loss: squared, hinge, perceptron, "
                                  "logistic, softmax, multiclass_svm")
    g.add_argument("--hidden", help="MLP (and cnn dense) hidden widths, e.g. 256,128 "
                                    "(default 128)")
    g.add_argument("--activation", help="MLP/cnn activation: relu, tanh, sigmoid, gelu, "
                                        "leaky_relu")
    g.add_argument("--channels", help="cnn: channels of each convolution + pooling stage, "
                                      "e.g. 6,16 (default)")
    g.add_argument("--kernel", type=int, help="cnn: side of the square convolution window "
                                              "(default 5)")
    g.add_argument("--l2", type=float, help="L2 strength lambda (biases are not penalised)")


def add_optim_options(p: argparse.ArgumentParser, batch: bool = True) -> None:
    g = p.add_argument_group("optimisation")
    if batch:
        g.add_argument("--batch-size", type=int, help="examples per step (default 32)")
    g.add_argument("--lr", type=float, help="learning rate (default 0.1)")
    g.add_argument("--optimizer", help="sgd (default), momentum, nesterov, adam, adamw")
    g.add_argument("--momentum", type=float, help="momentum coefficient (default 0.9)")
    g.add_argument("--weight-decay", type=float,
                   help="adamw's decoupled weight decay (default 1e-4)")
    g.add_argument("--schedule", help="learning-rate schedule: constant, cosine, step, "
                                      "inverse-time, exponential")
    g.add_argument("--sampling", help="shuffle (default), replacement, sequential")
    g.add_argument("--drop-last", action="store_const", const=True,
                   help="drop the last partial batch of each epoch")
    g.add_argument("--gradient", help="autodiff (default), closed-form (linear models), "
                                      "numerical (finite differences, small models)")
    g.add_argument("--seed", type=int, help="seed for split, init and batch order (default 0)")


def add_stop_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("stopping and evaluation")
    g.add_argument("--epochs", type=float, help="passes over the training data (default 10)")
    g.add_argument("--max-steps", type=int, help="stop after this many steps")
    g.add_argument("--max-time", help="stop after this much training time, e.g. 60s, 5min")
    g.add_argument("--target-accuracy", "--target", dest="target", type=float,
                   help="stop when validation accuracy (R^2 for regression) reaches this")
    g.add_argument("--eval-every", help="evaluation schedule: '500 steps', '2s', '1 epoch', "
                                        "combined with commas (default '1 epoch')")
    g.add_argument("--chunk-steps", type=int, help="steps per compiled call (default: auto)")


#: The settings a command line or config file may give: every TrainConfig field but the
#: free-form notes (derived, so a new setting is accepted everywhere at once).
CONFIG_KEYS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name != "extra")


#: Settings a config file may hold besides :data:`CONFIG_KEYS`: the data it reads, and
#: ``extra`` (free-form notes, which a run's own config.json carries).
DATA_KEYS = ("data", "label_column", "task")
#: Tables of a TOML file: ``[train]`` settings merge with the top level; ``[sweep]`` is the
#: sweep's own (read by ``sgdlab sweep``).
CONFIG_TABLES = ("train", "sweep")


def read_config_file(path: str | None, extra_keys=()) -> dict:
    """Settings from a TOML file (top level and a ``[train]`` table) or a run's own
    ``config.json``, with ``-`` in keys read as ``_``.

    Every key must be a training setting (:data:`CONFIG_KEYS`), a data key
    (:data:`DATA_KEYS`) or one of the verb's ``extra_keys``; anything else, or an unknown
    table, is a :class:`ConfigError` naming the file and the closest valid name.
    """
    if not path:
        return {}
    settings = _raw_settings(path)
    if isinstance(settings.get("sweep"), dict) and "sweep" not in extra_keys:
        del settings["sweep"]  # one file may configure both verbs
    allowed = set(CONFIG_KEYS) | set(DATA_KEYS) | {"extra"} | set(extra_keys)
    for key, value in settings.items():
        if key in allowed:
            continue
        if isinstance(value, dict) and key not in CONFIG_TABLES:
            raise ConfigError(f"{path}: unknown table [{key}]{_closest(key, CONFIG_TABLES)}; "
                              "put settings at the top level or under [train]")
        raise ConfigError(f"{path}: unknown setting {key!r}{_closest(key, allowed)}; valid "
                          f"settings: {', '.join(sorted(allowed - {'extra'}))}")
    return settings


#: A settings file is a few lines: larger or deeper ones are refused before they are parsed or
#: used (a 10 MB file, lists nested 600 deep, a number of 5,000 digits).
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_DEPTH = 8


def _raw_settings(path) -> dict:
    """The top level of ``path`` merged with its ``[train]`` table, keys with ``_``."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {path}")
    kind = "JSON" if p.suffix.lower() == ".json" else "TOML"
    if p.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: {p.stat().st_size:,} bytes, more than a settings file "
                          f"holds (at most {MAX_CONFIG_BYTES:,}); is it the right file?")
    try:
        text = p.read_text(encoding="utf-8")
        data = json.loads(text) if kind == "JSON" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid {kind}: {e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: values nested more deeply than {kind} settings ever are; "
                          "settings are numbers, text and short lists") from None
    except ValueError:  # a whole number of more digits than Python converts
        raise ConfigError(f"{path}: holds a number of more than "
                          f"{sys.get_int_max_str_digits():,} digits; no setting takes one") \
            from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    _check_depth(data, path, kind)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must hold a table of settings, got {type(data).__name__}")
    data = {k.replace("-", "_"): v for k, v in data.items()}
    train = data.pop("train", {})
    if not isinstance(train, dict):
        raise ConfigError(f"{path}: [train] must be a table of settings, got "
                          f"{type(train).__name__}")
    return {**data, **{k.replace("-", "_"): v for k, v in train.items()}}


def _check_depth(value, path, kind: str, depth: int = 0) -> None:
    """Refuse values nested deeper than :data:`MAX_CONFIG_DEPTH` (tables and lists)."""
    if depth > MAX_CONFIG_DEPTH:
        raise ConfigError(f"{path}: values nested more than {MAX_CONFIG_DEPTH} deep; {kind} "
                          "settings are numbers, text and short lists")
    if isinstance(value, dict):
        for v in value.values():
            _check_depth(v, path, kind, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_depth(v, path, kind, depth + 1)


def _closest(name: str, options) -> str:
    import difflib
    near = difflib.get_close_matches(name, sorted(options), n=1)
    return f" (did you mean {near[0]!r}?)" if near else ""


def blame_config(message: str, path: str | None) -> str:
    """``message`` with the config file named when one of its values appears in it quoted:
    an error about a value the user typed in a file should say which file."""
    if not path or str(path) in message:
        return message
    try:
        settings = _raw_settings(path)
    except (ConfigError, OSError):
        return message
    for key, value in settings.items():
        if isinstance(value, (str, int, float)) and not isinstance(value, bool) and \
                repr(value) in message:
            return f"{message} ({key} = {value!r} in {path})"
    return message


def settings_from_args(args, file_settings: dict | None = None, **overrides) -> dict:
    """The settings that were given: config file < command-line flags (no defaults)."""
    settings = dict(file_settings or {})
    data_keys = {"data", "label_column", "task"}
    for k in data_keys:
        settings.pop(k, None)
    for key in CONFIG_KEYS:
        v = getattr(args, key, None)
        if v is not None:
            settings[key] = v
    settings.update(overrides)
    return settings


def config_from_args(args, file_settings: dict | None = None, **overrides) -> TrainConfig:
    """Defaults < config file < command-line flags that were given."""
    settings = settings_from_args(args, file_settings, **overrides)
    try:
        return TrainConfig.from_dict(settings)
    except TypeError as e:
        raise ConfigError(f"bad setting: {e}") from None


def default_out(verb: str) -> str:
    return str(Path("runs") / f"{verb}-{time.strftime('%Y%m%d-%H%M%S')}")


def default_data(model: str | None, loss: str | None = None) -> str:
    """The built-in data a verb uses without ``--data``, fitted to the model's loss: ``linreg``
    for a real-valued loss (squared), ``blobs`` (two separable classes) for a two-class loss
    (logistic, hinge, perceptron), else ``digits`` (10 classes). Unknown names fall back to
    the digits, so the model's own error message is the one the user sees."""
    from ..errors import SgdlabError
    from ..tasks import resolve
    try:
        _, l = resolve(model or "softmax", loss)
        if l.target_kind == "real":
            return "linreg"
        l.n_outputs(10)  # a two-class loss refuses ten classes
        return "digits"
    except SgdlabError:
        try:
            _, l = resolve(model or "softmax", loss)
        except SgdlabError:
            return "digits"
        return "blobs"


def data_spec(args, file_settings: dict | None = None) -> str:
    """``--data``, else the settings file's ``data``, else :func:`default_data` for the model
    (announced on standard error, so the user knows which data was used)."""
    spec = getattr(args, "data", None) or (file_settings or {}).get("data")
    if spec:
        return spec
    model = getattr(args, "model", None) or (file_settings or {}).get("model")
    loss = getattr(args, "loss", None) or (file_settings or {}).get("loss")
    spec = default_data(model, loss)
    if spec != "digits":
        import sys
        print(f"sgdlab: no --data given; using the built-in '{spec}' data, which suits "
              f"--model {model or 'softmax'}", file=sys.stderr)
    return spec
