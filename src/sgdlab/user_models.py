"""A user's own network as an sgdlab :class:`~sgdlab._types.Model`.

sgdlab trains pure functions ``init(key, n_in, n_out) -> params`` and ``apply(params, X) ->
scores (B, n_out)``. This module builds that pair from

* a **Flax linen** ``nn.Module`` (unbound): ``init`` is ``module.init(key, x)["params"]`` on
  one zero example ``x: (1, *example_shape)``, ``apply(params, X) =
  module.apply({"params": params}, X)``. Every ``init`` draws from its key.
* a **Flax NNX** ``nnx.Module`` instance (built with its ``rngs``): the parameters are its
  ``nnx.Param`` state as a plain nested dict (``nnx.to_pure_dict``; the keys a linen model
  has, so checkpoints, L2 and landscape directions see ``.../kernel`` and ``.../bias``), and
  ``apply(params, X) = nnx.merge(graphdef, params, rest)(X)``.
* an **Equinox** ``eqx.Module`` instance: ``params, static = eqx.partition(module,
  eqx.is_inexact_array)`` and ``apply(params, X) = vmap(eqx.combine(params, static))(X)``:
  Equinox layers (``eqx.nn.Linear``, ``eqx.nn.MLP``, ``eqx.nn.Conv2d``) take *one* example,
  so the module is mapped over the batch axis. A module that already takes batches would get
  one example at a time too; write it per example.
* a **factory**: a class or function called with no argument that returns one of the above,
  a :class:`Model` or an ``(init, apply)`` pair; or a function of one argument, a
  ``jax.random`` key, returning an NNX or Equinox module (e.g. ``lambda key:
  eqx.nn.MLP(784, 10, 128, 2, key=key)`` or ``lambda key: Net(rngs=nnx.Rngs(key))``).
* an **import path** ``"package.module:attr"`` naming any of these (:func:`load_import_path`).

An NNX or Equinox *instance* already holds its parameters, so its ``init`` returns them
whatever the key: restarts (``--restarts``, sweeps) of an instance all start from the same
point. A factory taking a key is called by every ``init`` and draws new parameters each time.

The checks happen in ``init``, where the example shape and the output width are known: the
network is evaluated abstractly (``jax.eval_shape``) on ``(1, *example_shape)`` and must give
``(1, n_out)`` scores; state that is not a parameter (Flax ``batch_stats``, NNX ``BatchStat``,
RNG streams) is refused, because sgdlab's ``apply`` is a pure function of the parameters.

Flax and Equinox stay optional: nothing here imports them at module import time. An object can
only be a Flax or Equinox module if that library is already in ``sys.modules``, so detection
looks there, and each conversion imports its library when it runs.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import os
import sys

import jax
import jax.numpy as jnp

from ._types import Array, Model, Params, example_shape, output_width
from .errors import ConfigError

__all__ = ["from_equinox", "from_linen", "from_nnx", "is_equinox_module", "is_linen_module",
           "is_nnx_module", "load_import_path", "to_model", "working_directory_last"]


# --------------------------------------------------------------------------------------------
# detection (no import of Flax or Equinox)


def _module_class(module_name: str):
    module = sys.modules.get(module_name)
    return getattr(module, "Module", None) if module is not None else None


def is_linen_module(obj) -> bool:
    """Whether ``obj`` is a Flax linen ``nn.Module`` instance (imports nothing)."""
    cls = _module_class("flax.linen")
    return cls is not None and isinstance(obj, cls)


def is_nnx_module(obj) -> bool:
    """Whether ``obj`` is a Flax NNX ``nnx.Module`` instance (imports nothing)."""
    cls = _module_class("flax.nnx")
    return cls is not None and isinstance(obj, cls)


def is_equinox_module(obj) -> bool:
    """Whether ``obj`` is an Equinox ``eqx.Module`` instance (imports nothing)."""
    cls = _module_class("equinox")
    return cls is not None and isinstance(obj, cls)


# --------------------------------------------------------------------------------------------
# shared checks


#: What the user's code (a module, a factory, a network) may raise that becomes one message:
#: any error, and ``sys.exit()`` (which would otherwise end sgdlab silently with its code).
USER_CODE_ERRORS = (Exception, SystemExit)


def _raised(e: BaseException) -> str:
    """``"raised ValueError: ..."``, or ``"called sys.exit(3)"`` for a :class:`SystemExit`."""
    if isinstance(e, SystemExit):
        return (f"called sys.exit({e.code!r}) (a factory or network must return, or raise an "
                "exception)")
    return f"raised {type(e).__name__}: {e}"


def _shape_and_width(n_in, n_out) -> tuple[tuple[int, ...], int]:
    return example_shape(n_in), output_width(n_out)


def _check_outputs(name: str, apply, params: Params, shape: tuple[int, ...], n_out: int,
                   how: str) -> None:
    """Evaluate ``apply`` abstractly on ``(1, *shape)`` and demand scores ``(1, n_out)``."""
    x = jax.ShapeDtypeStruct((1, *shape), jnp.float32)
    try:
        out = jax.eval_shape(apply, params, x)
    except ConfigError:
        raise
    except USER_CODE_ERRORS as e:  # the user's network, any error: say where it happened
        raise ConfigError(
            f"the model {name!r} fails on examples of shape {shape} ({how}): it "
            f"{_raised(e)}") from e
    out_shape = getattr(out, "shape", None)
    if out_shape is None or len(out_shape) != 2 or out_shape[0] != 1:
        got = "a " + type(out).__name__ if out_shape is None else f"shape {tuple(out_shape)}"
        raise ConfigError(
            f"the model {name!r} must give a vector of scores per example, (B, {n_out}) for a "
            f"batch of B; for one example it gives {got}")
    if out_shape[1] != n_out:
        raise ConfigError(
            f"the model {name!r} gives {out_shape[1]} scores per example, but the data and "
            f"loss need {n_out} (one per class of the data, or 1 for regression and binary "
            f"margin losses); make its last layer {n_out} wide")


def _cast(params: Params, dtype) -> Params:
    """Floating leaves as ``dtype`` (the ``init`` contract); other leaves unchanged."""
    return jax.tree_util.tree_map(
        lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.inexact) else a, params)


def _same_structure(name: str, params: Params, like: Params) -> None:
    if jax.tree_util.tree_structure(params) != jax.tree_util.tree_structure(like):
        raise ConfigError(f"the model factory {name!r} built networks of different structure "
                          "for two keys; it must build the same layers for every key")


# --------------------------------------------------------------------------------------------
# Flax linen


def from_linen(module, name: str | None = None) -> Model:
    """A Flax linen module (unbound) as a :class:`Model`; params ``variables["params"]``.

    ``init(key, n_in, n_out)`` runs ``module.init_with_output(key, zeros((1, *shape)))`` and
    checks the output width; a module with collections besides ``"params"``
    (``batch_stats``, ...) is refused. ``apply(params, X: (B, *shape)) -> (B, n_out)``.
    """
    name = name or type(module).__name__

    def init(key: Array, n_in, n_out: int, *, dtype=jnp.float32) -> Params:
        shape, n_out = _shape_and_width(n_in, n_out)
        try:
            out, variables = module.init_with_output(key, jnp.zeros((1, *shape), jnp.float32))
        except USER_CODE_ERRORS as e:  # the user's module
            raise ConfigError(
                f"initialising the Flax module {name!r} on examples of shape {shape} failed: "
                f"it {_raised(e)}") from e
        other = sorted(k for k in variables if k != "params")
        if other:
            raise ConfigError(
                f"the Flax module {name!r} keeps state besides its parameters (collections: "
                f"{', '.join(other)}); sgdlab trains a pure function of the parameters, so "
                "use layers without it (e.g. LayerNorm instead of BatchNorm)")
        params = variables.get("params", {})
        _check_outputs(name, apply, params, shape, n_out, "Flax apply")
        del out  # checked abstractly, like the other kinds of network
        return _cast(params, dtype)

    def apply(params: Params, X: Array) -> Array:
        return module.apply({"params": params}, X)

    return Model(name, init, apply)


# --------------------------------------------------------------------------------------------
# Flax NNX


def _nnx_parts(module, name: str):
    """``(graphdef, params as a pure dict, rest)`` of an NNX module; other state refused."""
    from flax import nnx

    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    extra = jax.tree_util.tree_flatten_with_path(
        rest, is_leaf=lambda v: isinstance(v, nnx.Variable))[0]
    if extra:
        names = [".".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path
                          if getattr(k, "name", None) != "value") + f" ({type(v).__name__})"
                 for path, v in extra[:5]]
        raise ConfigError(
            f"the NNX module {name!r} holds state besides its nnx.Param parameters: "
            f"{', '.join(names)}{' ...' if len(extra) > 5 else ''}; sgdlab trains a pure "
            "function of the parameters, so use layers without it (e.g. LayerNorm instead of "
            "BatchNorm, no Dropout rngs)")
    # nnx.to_pure_dict is the current spelling; flax 0.11 has only the State method
    to_pure = getattr(nnx, "to_pure_dict", None)
    return graphdef, (to_pure(params) if to_pure else params.to_pure_dict()), rest


def from_nnx(module, name: str | None = None, factory=None) -> Model:
    """A Flax NNX module instance as a :class:`Model`.

    Params: the module's ``nnx.Param`` state as a nested dict (``{"linear1": {"kernel": ...,
    "bias": ...}, ...}``). ``init`` returns the module's own parameters (the key is unused,
    see the module docstring) unless ``factory(key) -> module`` is given, which draws new
    ones. ``apply(params, X) = nnx.merge(graphdef, params, rest)(X)`` on the whole batch.
    """
    from flax import nnx

    name = name or type(module).__name__
    graphdef, params0, rest = _nnx_parts(module, name)

    def init(key: Array, n_in, n_out: int, *, dtype=jnp.float32) -> Params:
        shape, n_out = _shape_and_width(n_in, n_out)
        params = params0
        if factory is not None:
            params = _nnx_parts(_call_keyed(factory, key, name), name)[1]
            _same_structure(name, params, params0)
        _check_outputs(name, apply, params, shape, n_out, "NNX module call")
        return _cast(params, dtype)

    def apply(params: Params, X: Array) -> Array:
        return nnx.merge(graphdef, params, rest)(X)

    return Model(name, init, apply)


# --------------------------------------------------------------------------------------------
# Equinox


def from_equinox(module, name: str | None = None, factory=None) -> Model:
    """An Equinox module instance as a :class:`Model`.

    Params: the module's floating-point arrays (``eqx.partition(module,
    eqx.is_inexact_array)[0]``, a module of the same type with ``None`` elsewhere). ``init``
    returns them (the key is unused) unless ``factory(key) -> module`` is given.
    ``apply(params, X) = jax.vmap(eqx.combine(params, static))(X)``: the module is called on
    one example at a time, as ``eqx.nn`` layers expect.
    """
    import equinox as eqx

    name = name or type(module).__name__
    params0, static = eqx.partition(module, eqx.is_inexact_array)

    def init(key: Array, n_in, n_out: int, *, dtype=jnp.float32) -> Params:
        shape, n_out = _shape_and_width(n_in, n_out)
        params = params0
        if factory is not None:
            params = eqx.partition(_call_keyed(factory, key, name), eqx.is_inexact_array)[0]
            _same_structure(name, params, params0)
        _check_outputs(name, apply, params, shape, n_out,
                       "Equinox module called per example, vmapped over the batch")
        return _cast(params, dtype)

    def apply(params: Params, X: Array) -> Array:
        return jax.vmap(eqx.combine(params, static))(X)

    return Model(name, init, apply)


# --------------------------------------------------------------------------------------------
# factories and dispatch


def _call_keyed(factory, key, name: str):
    try:
        return factory(key)
    except USER_CODE_ERRORS as e:  # the user's factory
        raise ConfigError(f"the model factory {name!r} {_raised(e)}") from e


def _required_args(fn) -> int | None:
    """How many positional arguments ``fn`` requires (None when it cannot be inspected)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    return sum(1 for p in sig.parameters.values()
               if p.default is p.empty
               and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _network(obj, name: str, factory=None) -> Model | None:
    """The :class:`Model` of a network object, or None when ``obj`` is none of the kinds."""
    if isinstance(obj, Model):
        return obj._replace(name=name)
    if isinstance(obj, (tuple, list)) and len(obj) == 2 and all(map(callable, obj)):
        return Model(name, obj[0], obj[1])
    if is_linen_module(obj):
        return from_linen(obj, name)
    if is_nnx_module(obj):
        return from_nnx(obj, name, factory)
    if is_equinox_module(obj):
        return from_equinox(obj, name, factory)
    return None


_KINDS = ("a Flax linen or NNX module, an Equinox module, a sgdlab Model, an (init, apply) "
          "pair, or a factory returning one")


def to_model(obj, name: str | None = None) -> Model:
    """Any user network as a :class:`Model` (see the module docstring for the kinds).

    A string is an import path (:func:`load_import_path`). A class, or a function of no
    argument, is called and its result converted; a function of one argument is called with
    a key (``jax.random.PRNGKey(0)`` here, the run's key in every ``init``).
    Raises :class:`ConfigError` naming the object when it is none of these.
    """
    if isinstance(obj, str):
        return load_import_path(obj)
    label = name or getattr(obj, "__name__", None) or type(obj).__name__
    model = _network(obj, label)
    if model is not None:
        return model
    if not callable(obj):
        raise ConfigError(f"model {obj!r} is not a model name or {_KINDS}")

    n_args = 0 if isinstance(obj, type) else _required_args(obj)
    if n_args not in (0, 1):
        raise ConfigError(
            f"the model factory {label!r} must take no argument or one (a jax.random key), "
            f"it requires {n_args if n_args is not None else 'unknown'}")
    keyed = n_args == 1
    if keyed:
        made = _call_keyed(obj, jax.random.PRNGKey(0), label)
    else:
        try:
            made = obj()
        except USER_CODE_ERRORS as e:  # the user's factory
            hint = ("; a class is called with no argument: pass an instance, or a function of "
                    "a key that builds one") if isinstance(obj, type) else ""
            raise ConfigError(f"the model factory {label!r} {_raised(e)}{hint}") from e
    model = _network(made, label, factory=obj if keyed else None)
    if model is None:
        raise ConfigError(f"the model factory {label!r} returned {type(made).__name__}, not "
                          f"{_KINDS.rsplit(', or', 1)[0]}")
    path = _own_import_path(obj)
    if path is not None and not isinstance(getattr(model.apply, "spec", None), dict):
        # a factory defined at the top level of a module rebuilds by its import path, as if
        # it had been given as "module:factory" (a saved or pickled model, a resume)
        model.apply.spec = {"import": path}
    return model


def _own_import_path(obj) -> str | None:
    """``"module:qualname"`` of a function or class importable from its module, else None."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", "")
    if not module or module == "__main__" or "<" in qualname:
        return None
    return f"{module}:{qualname}"


# --------------------------------------------------------------------------------------------
# import paths


def _split_path(path: str) -> tuple[str, str]:
    module, sep, attr = path.partition(":")
    ok = sep and ":" not in attr and all(
        part.isidentifier() for text in (module, attr) for part in text.split("."))
    if not ok:
        raise ConfigError(f"a model import path has the form 'package.module:factory' (a "
                          f"module, a colon, an attribute), got {path!r}")
    return module, attr


@contextlib.contextmanager
def working_directory_last():
    """Within: imports look in the working directory only after the installed packages.

    For an import path named by a file (a run directory's ``model.json`` or checkpoint, with
    the user's opt-in): a file planted in the working directory (``./numpy.py``, ``./evil.py``
    beside a downloaded run) must not shadow an installed module. The working directory
    (``""`` or its path, as ``python -m`` puts it first) moves to the end of ``sys.path``
    while inside, and back afterwards; :func:`load_import_path` then does not put it first.
    """
    cwd = os.getcwd()
    here = {"", ".", cwd}
    saved = list(sys.path)
    sys.path[:] = [p for p in saved if p not in here] + [cwd]
    try:
        yield
    finally:
        sys.path[:] = saved


def _import_module(module: str, path: str):
    """Import ``module`` with the working directory first on ``sys.path``, as ``python -m``
    does, so a file ``./mynets.py`` is found without installing it."""
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        importlib.invalidate_caches()  # a file written since the last import is seen
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            raise ConfigError(
                f"cannot import the model {path!r}: no module named {e.name!r} in the working "
                f"directory ({cwd}) or the installed packages; run from the directory that "
                f"holds {module.replace('.', '/')}.py, or install its package") from None
        raise ConfigError(f"importing the module {module!r} of the model {path!r} failed: "
                          f"{e}; install what it needs") from e
    except USER_CODE_ERRORS as e:  # the user's module, while it is imported
        raise ConfigError(f"importing the module {module!r} of the model {path!r} "
                          f"{_raised(e)}") from e
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)


def load_import_path(path: str) -> Model:
    """The network ``"package.module:attr"`` names, as a :class:`Model`.

    Imports the module (the working directory first on ``sys.path``), gets the attribute
    (dotted attributes work: ``"mod:Class.make"``) and converts it with :func:`to_model`:
    a factory is called. The model's name is ``path`` and ``apply.spec = {"import": path}``,
    so a saved model, a pickled predictor and a resumed run rebuild it by importing again.

    Raises one :class:`ConfigError` each for a path not of the form ``"module:attr"``, a
    module that cannot be found or imported, a missing attribute (naming the closest
    names), a factory that raises, or an object that is no network.
    """
    if not isinstance(path, str):
        raise ConfigError(f"a model import path is a string 'package.module:factory', "
                          f"got {path!r}")
    module_name, attr = _split_path(path)
    obj = _import_module(module_name, path)
    where = module_name
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=3, cutoff=0.5)
            hint = f"closest: {', '.join(close)}" if close else \
                f"it defines: {', '.join(names[:12]) or 'nothing public'}"
            raise ConfigError(f"{where!r} has no attribute {part!r} (model {path!r}); {hint}")
        obj = getattr(obj, part)
        where = f"{where}.{part}"
    model = to_model(obj, name=path)
    inner = model.apply

    def apply(params: Params, X: Array) -> Array:
        return inner(params, X)

    # how to rebuild this network elsewhere (engine.predictor.build_model imports it again)
    apply.spec = {"import": path}
    return Model(path, model.init, apply)
