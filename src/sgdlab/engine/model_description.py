"""``model.json`` read as untrusted input: every field checked before anything is built.

A hand-edited or damaged description must not become a traceback, a hang or an allocation
the file chose: :func:`read_description` parses it (a regular file of bounded size; deep
nesting and integers of thousands of digits are refused by the parser, not a crash), and
:func:`check_description` checks each field's type and range, one message each:

* ``format`` a whole number this sgdlab reads; ``model`` an object; ``loss`` a built-in
  loss name; ``task`` ``classification`` or ``regression``;
* ``n_features``, ``n_outputs`` whole numbers in ``1 .. MAX_SIZE``; ``example_shape``
  (N-D examples) whole numbers whose product is ``n_features``;
* ``classes`` (classification) distinct plain values, as many as the loss's outputs say
  (``n_outputs`` for softmax, 2 for a one-output binary loss); ``feature_names`` strings,
  one per feature; the standardiser's statistics one per feature (or channel);
* ``status`` and ``message`` text.

:func:`network_shapes` then evaluates the network's ``init`` abstractly (``jax.eval_shape``:
shapes only, nothing allocated), so the parameter file is checked against the shapes the
description implies (:mod:`sgdlab.engine.params_file`) and a description that claims a
network of 10^12 inputs or a hidden layer of 10^9 units is refused before any memory is
touched.
"""

from __future__ import annotations

import json
import os

import jax

from ..errors import ConfigError, RunDirError
from ..losses import ALIASES, LOSSES
from .params_file import AGAIN, open_regular
from .setup import model_input

#: the largest model.json read (a description with a million feature names is ~20 MB)
MAX_DESCRIPTION_BYTES = 256 * 2 ** 20
#: the largest input or output size a description may claim (sizes are then bounded by the
#: parameter file and the memory available: see network_shapes)
MAX_SIZE = 2 ** 31 - 1
TASKS = ("classification", "regression")


def read_description(path) -> dict:
    """The parsed ``model.json`` at ``path`` (a JSON object), or :class:`RunDirError`."""
    fd = open_regular(path, "model description")
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > MAX_DESCRIPTION_BYTES:
            raise RunDirError(f"{path}: {size:,} bytes, more than any model description "
                              f"sgdlab writes ({MAX_DESCRIPTION_BYTES:,}); it is damaged: "
                              f"{AGAIN}")
        raw = fh.read(MAX_DESCRIPTION_BYTES + 1)
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        # ValueError: bad JSON, or an integer of more digits than Python converts
        what = "it is nested too deeply" if isinstance(e, RecursionError) else str(e)
        raise RunDirError(f"{path}: cannot read the model description: {what}; "
                          f"{AGAIN}") from None
    if not isinstance(meta, dict):
        raise RunDirError(f"{path}: not an sgdlab model description (a JSON object is "
                          f"expected, the file holds {type(meta).__name__})")
    return meta


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _whole(meta: dict, key: str, where, least: int = 1, most: int = MAX_SIZE) -> int:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise RunDirError(f"{where}: {key} must be a whole number from {least} to {most:,}, "
                          f"got {_show(value)}; the model description is damaged: {AGAIN}")
    return value


def _plain(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def check_description(meta: dict, where, loss=None) -> tuple:
    """Check every field of a parsed ``model.json`` (see the module docstring); ``-> the
    example shape``: ``(d,)`` for rows of features, else ``example_shape``. ``loss``: the
    :class:`~sgdlab.Loss` the caller gives instead of the named one (not checked then)."""
    def bad(what: str) -> RunDirError:
        return RunDirError(f"{where}: {what}; the model description is damaged: {AGAIN}")

    if not isinstance(meta.get("model"), dict):
        raise bad(f"model must be an object describing the network, got "
                  f"{_show(meta.get('model'))}")
    name = meta.get("loss")
    if loss is None and (not isinstance(name, str) or ALIASES.get(name, name) not in LOSSES):
        raise bad(f"loss must name a built-in loss ({', '.join(sorted(LOSSES))}), got "
                  f"{_show(name)}")
    if meta.get("task") not in TASKS:
        raise bad(f"task must be 'classification' or 'regression', got "
                  f"{_show(meta.get('task'))}")
    d = _whole(meta, "n_features", where)
    k = _whole(meta, "n_outputs", where)
    shape = meta.get("example_shape") or None
    if shape is None:
        shape = (d,)
    elif not isinstance(shape, list) or not 1 <= len(shape) <= 8 or not all(
            isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= MAX_SIZE
            for s in shape):
        raise bad(f"example_shape must be a list of at most 8 whole numbers >= 1, got "
                  f"{_show(shape)}")
    else:
        shape = tuple(shape)
        product = 1
        for s in shape:
            product *= s
        if product != d:
            raise bad(f"example_shape {list(shape)} holds {product:,} values per example, "
                      f"n_features says {d:,}")
    _check_labels(meta, bad, k, loss)
    names = meta.get("feature_names") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or \
            (names and len(names) != d):
        raise bad(f"feature_names must be {d:,} strings (one per feature), got "
                  f"{_show(names) if not isinstance(names, list) else f'{len(names):,} entries'}")
    scaler = meta.get("standardizer")
    if scaler is not None:
        stats = [scaler.get(key) for key in ("mean", "scale")] if isinstance(scaler, dict) \
            else [None]
        if not all(isinstance(v, list) and len(v) == shape[-1] for v in stats):
            raise bad(f"standardizer must hold 'mean' and 'scale', {shape[-1]:,} numbers each "
                      "(one per feature or channel)")
    for key in ("status", "message"):
        if not isinstance(meta.get(key, ""), str):
            raise bad(f"{key} must be text, got {_show(meta[key])}")
    return shape


def _check_labels(meta: dict, bad, n_outputs: int, loss) -> None:
    """``classes`` of a classification model: distinct plain values, as many as the loss
    reads from ``n_outputs`` scores (``predict`` indexes them)."""
    classes = meta.get("classes") or []
    if not isinstance(classes, list) or not all(_plain(c) for c in classes):
        raise bad(f"classes must be a list of plain values (text or numbers), got "
                  f"{_show(classes)}")
    if meta["task"] == "regression":
        return
    if len({(type(c), c) for c in classes}) != len(classes):
        raise bad("classes holds a value twice")
    if loss is None:
        from ..losses import get_loss
        loss = get_loss(meta["loss"])
    if loss.target_kind == "real":
        raise bad(f"a classification model cannot have the regression loss {loss.name!r}")
    try:
        need = loss.n_outputs(len(classes))
    except ConfigError:
        need = None
    if need != n_outputs:
        raise bad(f"classes holds {len(classes)} label(s), but the {loss.name} loss with "
                  f"{n_outputs} output(s) predicts "
                  f"{2 if loss.target_kind == 'sign' else n_outputs} classes")


def network_shapes(net, shape: tuple, n_outputs: int, where):
    """The shapes of ``net``'s parameters for examples of ``shape`` and ``n_outputs``
    outputs, as a pytree of ``jax.ShapeDtypeStruct``: ``init`` evaluated abstractly, so
    nothing is allocated whatever sizes the description claims."""
    try:
        return jax.eval_shape(lambda key: net.init(key, model_input(shape), n_outputs),
                              jax.random.PRNGKey(0))
    except ConfigError as e:
        raise RunDirError(f"{where}: the network it describes cannot be built: {e}") from None
    except Exception as e:  # noqa: BLE001 (a user network or absurd sizes: any error)
        raise RunDirError(f"{where}: the network it describes cannot be built for examples "
                          f"of shape {shape} with {n_outputs} outputs ({type(e).__name__}: "
                          f"{str(e)[:200]}); {AGAIN}") from None
