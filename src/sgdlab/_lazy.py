"""Heavy modules imported when first used.

The registries that name sgdlab's models, losses, optimisers and gradient methods live in the
modules that implement them, and the command line's parser reads those names (and the
factories' signatures) for its flags and help texts. Importing JAX takes seconds, so these
modules name JAX through a :class:`LazyModule`: ``sgdlab --help`` builds its parser without
importing JAX, and the first attribute read (tracing a model, building an optimiser) imports
it. Modules that always compute with JAX (the engine) import it directly.

>>> m = LazyModule("json")
>>> m.dumps([1, 2])
'[1, 2]'
"""

from __future__ import annotations

import importlib


class LazyModule:
    """Stands for the module ``name``; reading an attribute imports it (once) and reads it
    there, so ``jnp.zeros(3)`` works as with ``import jax.numpy as jnp``."""

    __slots__ = ("_name", "_module")

    def __init__(self, name: str):
        self._name = name
        self._module = None

    def __getattr__(self, attr: str):
        module = self._module
        if module is None:
            module = self._module = importlib.import_module(self._name)
        return getattr(module, attr)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"


jax = LazyModule("jax")
jnp = LazyModule("jax.numpy")
lax = LazyModule("jax.lax")
flatten_util = LazyModule("jax.flatten_util")
optax = LazyModule("optax")


def lazy_exports(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__)`` for a package whose public names are imported on first use.

    ``exports`` maps each public name to the submodule (relative to ``package``) that defines
    it; reading ``package.name`` (or ``from package import name``) imports that submodule and
    keeps the value in the package, so later reads are plain look-ups.
    """
    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__():
        return sorted({*vars(importlib.import_module(package)), *exports})

    return __getattr__, __dir__
