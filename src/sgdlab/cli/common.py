"""Options shared by several verbs, the config-file merge, and terminal output helpers."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib
from pathlib import Path

from ..data import formats
from ..data.loaders import builtin_names
from ..engine.config import TrainConfig, factories_taking, settings
from ..errors import ConfigError

Formatter = argparse.RawDescriptionHelpFormatter


def add_data_options(p: argparse.ArgumentParser, shards: bool = False,
                     default: str = "digits") -> None:
    """The data options of a verb; ``shards``: it also streams shard directories; ``default``:
    what the help says the verb uses without ``--data``."""
    g = p.add_argument_group("data")
    streamed = (", or a shard directory from 'sgdlab data convert' (streamed)" if shards
                else " (held in memory: shard directories are for 'sgdlab train')")
    g.add_argument("--data",
                   help=f"built-in name ({', '.join(builtin_names())}; 'blobs:n=5000,d=20' "
                        f"sets parameters) or a {formats.summary()} file{streamed}; default: "
                        f"{default}")
    g.add_argument("--label-column", help="label column of a CSV/Parquet file, by name or "
                                          "0-based index (default: the last column)")
    g.add_argument("--task", choices=["classification", "regression"],
                   help="override the inferred task")
    add_settings(g, "data")


def add_model_options(p: argparse.ArgumentParser) -> None:
    """A flag for every model setting: the model, its loss, each architecture's options, L2."""
    add_settings(p.add_argument_group("model"), "model")


def add_optim_options(p: argparse.ArgumentParser, batch: bool = True) -> None:
    """A flag for every optimisation setting (``batch``: with ``--batch-size``)."""
    add_settings(p.add_argument_group("optimisation"), "optimisation",
                 skip=() if batch else ("batch_size",))


def add_stop_options(p: argparse.ArgumentParser) -> None:
    """A flag for every stopping and evaluation setting."""
    add_settings(p.add_argument_group("stopping and evaluation"), "stopping")


def add_settings(group, section: str, skip=()) -> None:
    """A flag for each setting of the help ``section`` (``Setting.group``), its help from the
    declaration; the text given is read and checked by :func:`read_setting_flags`."""
    for name, declared in settings().items():
        if declared.group != section or name in skip:
            continue
        flags = declared.flags or (declared.flag(name),)
        if declared.kind == "flag":
            group.add_argument(*flags, dest=name, action="store_const",
                               const=not declared.default, help=flag_help(name, declared))
        else:
            group.add_argument(*flags, dest=name, action=_SettingText,
                               help=flag_help(name, declared))


def flag_help(name: str, declared) -> str:
    """A setting's help text: its meaning with the registry's names, the models or optimisers
    that take it, and its default."""
    text = declared.help.format(choices=", ".join(declared.names()))
    takers = factories_taking(name)
    if takers:
        text += f"; for {', '.join(takers)}"
    if declared.kind == "flag":
        text = ("turns off: " if declared.default else "") + text
    elif declared.default is not None:
        text += f" (default {declared.to_text(declared.default)})"
    return text.replace("%", "%%")  # argparse formats help with %


class _Text(str):
    """A setting's command-line text, not read yet (see :func:`read_setting_flags`)."""


class _SettingText(argparse.Action):
    """Keeps a setting flag's text for :func:`read_setting_flags` (argparse's own type
    conversion would say another message than a TOML file or Python gets)."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, _Text(values))


def given_settings(args, section: str) -> dict:
    """The settings of the help ``section`` that were given on the command line."""
    return {name: getattr(args, name) for name, declared in settings().items()
            if declared.group == section and getattr(args, name, None) is not None}


def read_setting_flags(args) -> None:
    """Replace the text of every setting flag given in ``args`` by its value, checked as the
    setting's declaration says: the same :class:`ConfigError` as from Python or a TOML file.
    ``args.setting_values`` keeps what was given, ``none`` (None) included."""
    declared = settings()
    given = {name: declared[name].from_text(name, str(value))
             for name, value in vars(args).items() if isinstance(value, _Text)}
    for name, value in given.items():
        setattr(args, name, value)
    args.setting_values = given


#: The settings a command line or config file may give: every TrainConfig field but the
#: free-form notes (derived, so a new setting is accepted everywhere at once).
CONFIG_KEYS = tuple(name for name, declared in settings().items() if declared.kind != "table")


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
        # the parser's own limit: the same refusal as _check_depth's, whatever the
        # interpreter's recursion limit lets through
        raise ConfigError(_too_deep(path, kind)) from None
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


def _too_deep(path, kind: str) -> str:
    return (f"{path}: values nested more than {MAX_CONFIG_DEPTH} deep; {kind} settings are "
            "numbers, text and short lists")


def _check_depth(value, path, kind: str, depth: int = 0) -> None:
    """Refuse values nested deeper than :data:`MAX_CONFIG_DEPTH` (tables and lists)."""
    if depth > MAX_CONFIG_DEPTH:
        raise ConfigError(_too_deep(path, kind))
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
    out = {k: v for k, v in (file_settings or {}).items() if k not in DATA_KEYS}
    given = getattr(args, "setting_values", {})  # "--epochs none" is given as None
    for key in CONFIG_KEYS:
        v = given[key] if key in given else getattr(args, key, None)
        if v is not None or key in given:
            out[key] = v
    out.update(overrides)
    return out


def config_from_args(args, file_settings: dict | None = None, **overrides) -> TrainConfig:
    """Defaults < config file < command-line flags that were given."""
    return TrainConfig.from_dict(settings_from_args(args, file_settings, **overrides))


def default_out(verb: str) -> str:
    """``runs/<verb>-<time>``, with ``-2``, ``-3``, ... where that exists already (two runs in
    one second): a default is always a new directory, never an earlier run."""
    base = Path("runs") / f"{verb}-{time.strftime('%Y%m%d-%H%M%S')}"
    out, n = base, 1
    while os.path.lexists(out):
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return str(out)


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
