"""Models: pairs of pure functions ``init`` and ``apply`` over dict pytrees.

Every model here is a :class:`sgdlab._types.Model`:

* ``init(key, n_in, n_out, *, dtype=jnp.float32) -> params`` draws the initial parameters from a
  ``jax.random`` key, so two restarts with different keys start from different points;
* ``apply(params, X) -> outputs`` maps a batch ``X: (B, d)`` with ``d == n_in`` to scores
  ``(B, k)`` with ``k == n_out``.

Parameters are plain dicts (and lists of dicts) so that optax, ``jax.tree_util`` and
:func:`sgdlab.losses.l2_penalty` (which skips every leaf stored under the key ``"b"``) can walk
them without knowing which model made them.

Built-in models:

``linear``
    ``f(X) = X W^T + b`` with ``W: (k, d)`` (output-major), ``b: (k,)``.
``mlp``
    ``h_0 = X``, ``h_l = act(h_{l-1} W_l + b_l)`` for each hidden layer, and a final affine layer
    without activation: ``f(X) = h_L W_{L+1} + b_{L+1}``.
"""

from __future__ import annotations

import inspect
import math
import operator
from typing import Callable, Sequence

import jax
import jax.numpy as jnp

from ._types import Array, Model, Params
from .errors import ConfigError, choices_message

__all__ = ["ACTIVATIONS", "MODELS", "get_model", "linear", "mlp", "n_params"]


def _gelu(x: Array) -> Array:
    # The exact (erf) form, 0.5 x (1 + erf(x / sqrt 2)): one definition that a NumPy reference
    # can reproduce without guessing which tanh approximation was used.
    return jax.nn.gelu(x, approximate=False)


def _leaky_relu(x: Array) -> Array:
    # Slope 0.01 for x < 0, the usual default; spelled out so the tests and docs can quote it.
    return jnp.where(x >= 0, x, 0.01 * x)


def _identity(x: Array) -> Array:
    return x


#: Activation name -> elementwise function.
ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "gelu": _gelu,
    "leaky_relu": _leaky_relu,
    "identity": _identity,
}

# He (Kaiming) scaling keeps the forward variance roughly constant through rectifier-like units,
# which zero about half their input; Glorot (Xavier) suits units that are linear near 0.
_HE = frozenset({"relu", "leaky_relu", "gelu"})


def _init_std(activation: str, fan_in: int, fan_out: int) -> float:
    """Standard deviation of the Gaussian initialisation of one weight matrix.

    He: ``sqrt(2 / fan_in)``; Glorot (normal): ``sqrt(2 / (fan_in + fan_out))``.
    """
    if activation in _HE:
        return math.sqrt(2.0 / fan_in)
    return math.sqrt(2.0 / (fan_in + fan_out))


def _check_dims(n_in, n_out) -> tuple[int, int]:
    try:
        n_in, n_out = operator.index(n_in), operator.index(n_out)
    except TypeError:
        raise ConfigError(
            f"model sizes must be integers, got n_in={n_in!r}, n_out={n_out!r}"
        ) from None
    if n_in < 1 or n_out < 1:
        raise ConfigError(f"model sizes must be positive, got n_in={n_in}, n_out={n_out}")
    return n_in, n_out


# --------------------------------------------------------------------------------------------
# linear


#: Batches of up to this many rows contract ``X`` and ``W`` along their shared last axis;
#: larger ones multiply by an explicit ``W^T``. Both compute ``X W^T``; on a 2-core CPU (softmax
#: regression, 60,000 x 784, one epoch) the first is 3x faster at batch 1 and the second 2x
#: faster at batch 512. The choice is static per compiled shape, so runs stay reproducible.
SMALL_BATCH_ROWS = 32


def _linear_init(key: Array, n_in: int, n_out: int, *, dtype=jnp.float32) -> Params:
    """``W ~ 0.01 * N(0, 1)`` of shape ``(n_out, n_in)``, ``b = 0`` of shape ``(n_out,)``.

    ``W`` is stored output-major (one row of ``d`` weights per output, like scikit-learn's
    ``coef_``): a step's update ``W -= lr * g x^T`` then writes contiguous rows, which at batch
    1 is 5x faster than the input-major layout. Zeros would train just as well for a convex
    linear model, but a small seeded draw makes restarts with different keys differ.
    """
    n_in, n_out = _check_dims(n_in, n_out)
    W = 0.01 * jax.random.normal(key, (n_out, n_in), dtype=dtype)
    return {"W": W, "b": jnp.zeros((n_out,), dtype=dtype)}


def linear_scores(W: Array, b: Array, X: Array) -> Array:
    """``X (B, d), W (k, d), b (k,) -> X W^T + b: (B, k)`` (see :data:`SMALL_BATCH_ROWS`)."""
    # a symbolic row count (an exported function for any n) takes the general form
    if isinstance(X.shape[0], int) and X.shape[0] <= SMALL_BATCH_ROWS:
        return jax.lax.dot_general(X, W, (((1,), (1,)), ((), ()))) + b
    return X @ W.T + b


def _linear_apply(params: Params, X: Array) -> Array:
    """``X: (B, d) -> X W^T + b: (B, k)``."""
    return linear_scores(params["W"], params["b"], X)


_linear_apply.spec = {"builtin": "linear"}  # see mlp's apply.spec


def linear() -> Model:
    """The affine model ``f(X) = X W^T + b``; params ``{"W": (k, d), "b": (k,)}``."""
    return Model("linear", _linear_init, _linear_apply)


# --------------------------------------------------------------------------------------------
# mlp


def _check_hidden(hidden) -> tuple[int, ...]:
    """``hidden`` as a tuple of positive ints (a single int means one hidden layer)."""
    if isinstance(hidden, bool):
        raise ConfigError(f"hidden layer sizes must be positive integers, got {hidden!r}")
    try:
        sizes = (operator.index(hidden),)
    except TypeError:
        # Any iterable of ints (tuple, list, NumPy array); a string is iterable but never meant.
        try:
            if isinstance(hidden, (str, bytes)):
                raise TypeError
            sizes = tuple(hidden)
        except TypeError:
            raise ConfigError(
                f"hidden layer sizes must be a positive integer or a sequence of them, "
                f"got {hidden!r}"
            ) from None
    out = []
    for h in sizes:
        # bool is an int subclass; True as a layer width is surely a mistake.
        if isinstance(h, bool):
            raise ConfigError(f"hidden layer sizes must be positive integers, got {h!r}")
        try:
            h = operator.index(h)
        except TypeError:
            raise ConfigError(f"hidden layer sizes must be positive integers, got {h!r}") from None
        if h < 1:
            raise ConfigError(f"hidden layer sizes must be positive integers, got {h}")
        out.append(h)
    return tuple(out)


def _check_activation(activation) -> str:
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ConfigError(choices_message("activation", str(activation), ACTIVATIONS))
    return activation


def mlp(hidden: int | Sequence[int] = (128,), activation: str = "relu") -> Model:
    """A fully connected network with ``len(hidden)`` hidden layers.

    Params ``{"layers": [{"W": (n_l, n_{l-1}), "b": (n_l,)}, ...]}`` (output-major, as in
    :func:`linear`) with ``n_0 = d``, ``n_l = hidden[l-1]`` and a last layer of width ``k``.
    Forward pass for ``X: (B, d)``::

        h_0 = X
        h_l = act(h_{l-1} W_l^T + b_l)        l = 1 .. L   (hidden layers)
        f   = h_L W_{L+1}^T + b_{L+1}         (B, k), no activation on the scores

    Initialisation: ``W_l ~ N(0, 1) * s`` with ``s = sqrt(2 / fan_in)`` (He) for relu,
    leaky_relu and gelu, ``s = sqrt(2 / (fan_in + fan_out))`` (Glorot) for tanh, sigmoid and
    identity; every ``b_l = 0``. The same rule is used for the output layer. The key is split
    into one sub-key per layer.

    ``hidden=()`` is allowed and gives an affine model with the ``mlp`` parameter layout.
    Raises :class:`ConfigError` for a non-positive size or an unknown activation.
    """
    sizes = _check_hidden(hidden)
    act_name = _check_activation(activation)
    act = ACTIVATIONS[act_name]

    def init(key: Array, n_in: int, n_out: int, *, dtype=jnp.float32) -> Params:
        n_in, n_out = _check_dims(n_in, n_out)
        widths = (n_in, *sizes, n_out)
        keys = jax.random.split(key, len(widths) - 1)
        layers = []
        for k, fan_in, fan_out in zip(keys, widths[:-1], widths[1:]):
            std = _init_std(act_name, fan_in, fan_out)
            layers.append({
                "W": std * jax.random.normal(k, (fan_out, fan_in), dtype=dtype),
                "b": jnp.zeros((fan_out,), dtype=dtype),
            })
        return {"layers": layers}

    def apply(params: Params, X: Array) -> Array:
        layers = params["layers"]
        h = X
        for layer in layers[:-1]:
            h = act(linear_scores(layer["W"], layer["b"], h))
        last = layers[-1]
        return linear_scores(last["W"], last["b"], h)

    # how to rebuild this network elsewhere (a saved or pickled model; engine.predictor)
    apply.spec = {"builtin": "mlp", "hidden": list(sizes), "activation": act_name}
    return Model("mlp", init, apply)


# --------------------------------------------------------------------------------------------
# registry

#: Model name -> factory returning a :class:`Model` (factories may take keyword options).
MODELS: dict[str, Callable[..., Model]] = {"linear": linear, "mlp": mlp}


def get_model(name, **kwargs) -> Model:
    """Resolve a model specification to a :class:`Model`.

    ``name`` may be

    * a registered name (``"linear"``, ``"mlp"``); ``kwargs`` go to its factory, e.g.
      ``get_model("mlp", hidden=(64, 64), activation="tanh")``;
    * a :class:`Model` instance, returned unchanged (user-supplied ``init``/``apply``);
    * a pair ``(init, apply)`` of callables, wrapped as ``Model("custom", init, apply)``.

    Raises :class:`ConfigError` for an unknown name or an option the factory does not take.
    """
    if isinstance(name, Model):
        return name
    if isinstance(name, (tuple, list)) and len(name) == 2 and all(map(callable, name)):
        return Model("custom", name[0], name[1])
    if not isinstance(name, str) or name not in MODELS:
        raise ConfigError(choices_message("model", str(name), MODELS))
    factory = MODELS[name]
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError:
        takes = list(inspect.signature(factory).parameters)
        raise ConfigError(
            f"model {name!r} does not take option(s) {', '.join(sorted(kwargs))}; "
            f"it takes: {', '.join(takes) or 'no options'}"
        ) from None
    return factory(**kwargs)


def n_params(params: Params) -> int:
    """Total number of scalars in every leaf of ``params``."""
    return int(sum(math.prod(jnp.shape(leaf)) for leaf in jax.tree_util.tree_leaves(params)))
