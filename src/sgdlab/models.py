"""Models: pairs of pure functions ``init`` and ``apply`` over dict pytrees.

Every model here is a :class:`sgdlab._types.Model`:

* ``init(key, n_in, n_out, *, dtype="float32") -> params`` draws the initial parameters from a
  ``jax.random`` key, so two restarts with different keys start from different points;
* ``apply(params, X) -> outputs`` maps a batch ``X: (B, *example_shape)`` to scores ``(B, k)``
  with ``k == n_out``.

``n_in`` is the shape of one example: an int ``d`` for rows of features (``X: (B, d)``), or a
tuple such as ``(H, W, C)`` for images (channels last) or ``(T, d)`` for sequences
(:func:`example_shape` reads both).

Parameters are plain dicts (and lists of dicts) so that optax, ``jax.tree_util`` and
:func:`sgdlab.losses.l2_penalty` (which skips biases, leaves under the key ``"b"``) can walk
them without knowing which model made them.

Built-in models:

``linear``
    ``f(X) = X W^T + b`` with ``W: (k, d)`` (output-major), ``b: (k,)``.
``mlp``
    ``h_0 = X``, ``h_l = act(h_{l-1} W_l + b_l)`` for each hidden layer, and a final affine layer
    without activation: ``f(X) = h_L W_{L+1} + b_{L+1}``.
``cnn``
    LeNet-style: (convolution, activation, 2x2 max pooling) per entry of ``channels``, then
    flatten and the layers of an ``mlp``. Examples are images ``(H, W, C)``.

``linear`` and ``mlp`` flatten N-D examples (``X.reshape(B, -1)``, ``prod(example_shape)``
inputs). User networks (Flax linen, Flax NNX, Equinox, ``"module:attr"`` import paths) become
models through :mod:`sgdlab.user_models`, which :func:`get_model` calls.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Callable, Sequence

from ._lazy import jax, jnp
from ._types import (Array, Model, Params, example_shape, layer_widths, output_width,
                     whole_number)
from .errors import ConfigError, choices_message

__all__ = ["ACTIVATIONS", "MODELS", "cnn", "example_shape", "get_model", "linear", "mlp",
           "n_params"]


def _gelu(x: Array) -> Array:
    # The exact (erf) form, 0.5 x (1 + erf(x / sqrt 2)): one definition that a NumPy reference
    # can reproduce without guessing which tanh approximation was used.
    return jax.nn.gelu(x, approximate=False)


def _leaky_relu(x: Array) -> Array:
    # Slope 0.01 for x < 0, the usual default; spelled out so the tests and docs can quote it.
    return jnp.where(x >= 0, x, 0.01 * x)


def _identity(x: Array) -> Array:
    return x


def _relu(x: Array) -> Array:
    return jax.nn.relu(x)


def _tanh(x: Array) -> Array:
    return jnp.tanh(x)


def _sigmoid(x: Array) -> Array:
    return jax.nn.sigmoid(x)


#: Activation name -> elementwise function.
ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": _relu,
    "tanh": _tanh,
    "sigmoid": _sigmoid,
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


#: ``((shape, std), ...)``: one parameter array per entry, ``std * N(0, 1)`` entries, or zeros
#: where ``std == 0`` (biases).
Layout = tuple[tuple[tuple[int, ...], float], ...]


def _draw(key: Array, layout: Layout, dtype) -> list[Array]:
    """The arrays of ``layout`` in order, every Gaussian entry cut from one ``N(0, 1)`` vector
    drawn from ``key``.

    One compiled program per layout, reused by every seed: drawing layer by layer compiles a
    random draw, a scaling and a zero fill per distinct shape (about 0.5 s each on a CPU,
    seconds at the start of every new network), one vector compiles a single draw.
    """
    return _compiled_draw()(key, layout, dtype)


@functools.cache
def _compiled_draw():
    def draw(key, layout, dtype):
        sizes = [math.prod(shape) if std else 0 for shape, std in layout]
        z = jax.random.normal(key, (sum(sizes),), dtype=dtype)
        out, at = [], 0
        for (shape, std), n in zip(layout, sizes):
            out.append(std * z[at:at + n].reshape(shape) if std
                       else jnp.zeros(shape, dtype=dtype))
            at += n
        return out
    return jax.jit(draw, static_argnums=(1, 2))


def _check_dims(n_in, n_out) -> tuple[int, int]:
    """``(number of inputs, n_out)``: ``n_in`` is an int or an example shape (flattened)."""
    return math.prod(example_shape(n_in)), output_width(n_out)


def _rows(X: Array) -> Array:
    """``X: (B, *example_shape) -> (B, prod(example_shape))``; a 2-D batch is returned as is
    (a static check at trace time, so vector examples keep their exact program)."""
    # math.prod, not -1: a batch of 0 rows cannot infer a -1 dimension
    return X if X.ndim == 2 else X.reshape(X.shape[0], math.prod(X.shape[1:]))


# --------------------------------------------------------------------------------------------
# linear


#: Batches of up to this many rows contract ``X`` and ``W`` along their shared last axis;
#: larger ones multiply by an explicit ``W^T``. Both compute ``X W^T``; on a 2-core CPU (softmax
#: regression, 60,000 x 784, one epoch) the first is 3x faster at batch 1 and the second 2x
#: faster at batch 512. The choice is static per compiled shape, so runs stay reproducible.
SMALL_BATCH_ROWS = 32


def _linear_init(key: Array, n_in: int, n_out: int, *, dtype="float32") -> Params:
    """``W ~ 0.01 * N(0, 1)`` of shape ``(n_out, n_in)``, ``b = 0`` of shape ``(n_out,)``
    (``n_in`` an example shape: ``W`` has ``prod(n_in)`` columns).

    ``W`` is stored output-major (one row of ``d`` weights per output, like scikit-learn's
    ``coef_``): a step's update ``W -= lr * g x^T`` then writes contiguous rows, which at batch
    1 is 5x faster than the input-major layout. Zeros would train just as well for a convex
    linear model, but a small seeded draw makes restarts with different keys differ.
    """
    n_in, n_out = _check_dims(n_in, n_out)
    W, b = _draw(key, (((n_out, n_in), 0.01), ((n_out,), 0.0)), dtype)
    return {"W": W, "b": b}


def linear_scores(W: Array, b: Array, X: Array) -> Array:
    """``X (B, d), W (k, d), b (k,) -> X W^T + b: (B, k)`` (see :data:`SMALL_BATCH_ROWS`)."""
    # a symbolic row count (an exported function for any n) takes the general form
    if isinstance(X.shape[0], int) and X.shape[0] <= SMALL_BATCH_ROWS:
        return jax.lax.dot_general(X, W, (((1,), (1,)), ((), ()))) + b
    return X @ W.T + b


def _linear_apply(params: Params, X: Array) -> Array:
    """``X: (B, d) -> X W^T + b: (B, k)``; N-D examples are flattened first."""
    return linear_scores(params["W"], params["b"], _rows(X))


_linear_apply.spec = {"builtin": "linear"}  # see mlp's apply.spec


def linear() -> Model:
    """The affine model ``f(X) = X W^T + b``; params ``{"W": (k, d), "b": (k,)}``."""
    return Model("linear", _linear_init, _linear_apply)


# --------------------------------------------------------------------------------------------
# mlp


def _check_activation(activation) -> str:
    if not isinstance(activation, str) or activation not in ACTIVATIONS:
        raise ConfigError(choices_message("activation", str(activation), ACTIVATIONS))
    return activation


def mlp(hidden: int | Sequence[int] = (128,), activation: str = "relu") -> Model:
    """A fully connected network with ``len(hidden)`` hidden layers.

    Params ``{"layers": [{"W": (n_l, n_{l-1}), "b": (n_l,)}, ...]}`` (output-major, as in
    :func:`linear`) with ``n_0 = d`` (``prod(example_shape)`` for N-D examples, flattened),
    ``n_l = hidden[l-1]`` and a last layer of width ``k``.
    Forward pass for ``X: (B, d)``::

        h_0 = X
        h_l = act(h_{l-1} W_l^T + b_l)        l = 1 .. L   (hidden layers)
        f   = h_L W_{L+1}^T + b_{L+1}         (B, k), no activation on the scores

    Initialisation: ``W_l ~ N(0, 1) * s`` with ``s = sqrt(2 / fan_in)`` (He) for relu,
    leaky_relu and gelu, ``s = sqrt(2 / (fan_in + fan_out))`` (Glorot) for tanh, sigmoid and
    identity; every ``b_l = 0``. The same rule is used for the output layer. The weights are
    cut in order from one Gaussian vector drawn from the key.

    ``hidden=()`` is allowed and gives an affine model with the ``mlp`` parameter layout.
    Raises :class:`ConfigError` for a non-positive size or an unknown activation.
    """
    sizes = layer_widths(hidden, "hidden layer sizes")
    act_name = _check_activation(activation)
    act = ACTIVATIONS[act_name]

    def init(key: Array, n_in, n_out: int, *, dtype="float32") -> Params:
        n_in, n_out = _check_dims(n_in, n_out)
        layout = _dense_layout((n_in, *sizes, n_out), act_name)
        return {"layers": _pairs(_draw(key, layout, dtype))}

    def apply(params: Params, X: Array) -> Array:
        return _dense_apply(params["layers"], _rows(X), act)

    # how to rebuild this network elsewhere (a saved or pickled model; engine.predictor)
    apply.spec = {"builtin": "mlp", "hidden": list(sizes), "activation": act_name}
    return Model("mlp", init, apply)


def _dense_layout(widths: Sequence[int], act_name: str) -> Layout:
    """Output-major layers ``W: (widths[l+1], widths[l])`` with std :func:`_init_std` and
    ``b: (widths[l+1],)`` zeros, in order ``W_1, b_1, W_2, ...``."""
    return tuple(entry for fan_in, fan_out in zip(widths[:-1], widths[1:])
                 for entry in (((fan_out, fan_in), _init_std(act_name, fan_in, fan_out)),
                               ((fan_out,), 0.0)))


def _pairs(arrays: list[Array]) -> list[Params]:
    """``[W_1, b_1, W_2, b_2, ...]`` -> ``[{"W": W_1, "b": b_1}, ...]``."""
    return [{"W": W, "b": b} for W, b in zip(arrays[0::2], arrays[1::2])]


def _dense_apply(layers: list[Params], h: Array, act: Callable[[Array], Array]) -> Array:
    """``h (B, n_0)`` through the layers, ``act`` after every layer but the last: ``(B, k)``."""
    for layer in layers[:-1]:
        h = act(linear_scores(layer["W"], layer["b"], h))
    last = layers[-1]
    return linear_scores(last["W"], last["b"], h)


# --------------------------------------------------------------------------------------------
# cnn


def _check_kernel(kernel) -> int:
    k = whole_number(kernel)
    if k is None or k < 1:
        raise ConfigError(f"cnn kernel size must be a positive integer (5 for 5x5), "
                          f"got {kernel!r}")
    return k


def image_shape(n_in, model: str = "cnn") -> tuple[int, int, int]:
    """``(H, W, C)`` from a model's ``n_in``; a :class:`ConfigError` unless it is 3-D."""
    shape = example_shape(n_in)
    if len(shape) == 2:
        raise ConfigError(
            f"{model} needs image examples (N, H, W, C), channels last; got examples of shape "
            f"{shape}, images without a channel axis: add one, X[..., None] (grey images, "
            f"(N, {shape[0]}, {shape[1]}, 1))")
    if len(shape) != 3:
        raise ConfigError(
            f"{model} needs image examples (N, H, W, C), channels last; got examples of shape "
            f"{shape}. Give the data as images (arrays: X.reshape(-1, 28, 28, 1) for 784 grey "
            "pixels per row; the built-in digits as images: digits-images) or use the mlp "
            "model for flat rows")
    return shape


def cnn(channels: int | Sequence[int] = (6, 16), kernel: int = 5,
        hidden: int | Sequence[int] = (128,), activation: str = "relu") -> Model:
    """A LeNet-style convolutional network for images ``X: (B, H, W, C)`` (channels last).

    Params::

        {"conv":   [{"W": (c_l, kernel, kernel, c_{l-1}), "b": (c_l,)}, ...],   c_0 = C
         "layers": [{"W": (n_l, n_{l-1}), "b": (n_l,)}, ...]}                 as in mlp

    Conv kernels are output-channel first (one filter ``W[o]`` per leading index), dense
    layers output-major. Forward pass::

        h_0 = X                                              (B, H, W, C)
        h_l = maxpool2x2(act(conv(h_{l-1}, W_l) + b_l))      l = 1 .. len(channels)
        f   = mlp layers on h_L.reshape(B, -1)              hidden widths, then (B, k)

    where ``conv`` is a ``kernel x kernel`` cross-correlation, stride 1, SAME (zero) padding,
    and ``maxpool2x2`` takes the max of 2x2 windows at stride 2 (SAME: an odd side is padded
    at its end), so any image size works: each block maps ``H -> ceil(H / 2)``, and the dense
    part has ``ceil(H / 2^L) * ceil(W / 2^L) * channels[-1]`` inputs (flattened in
    ``(h, w, c)`` order). Both come from :mod:`sgdlab.convolution`, which writes a
    convolution with few input channels as a banded matrix product on a CPU (several times
    faster there than XLA's convolution).

    Initialisation as :func:`mlp`, with ``fan_in = kernel^2 * c_{l-1}`` (and
    ``fan_out = kernel^2 * c_l`` for Glorot) for a convolution: He ``sqrt(2 / fan_in)`` for
    relu, leaky_relu, gelu; every bias 0.

    Raises :class:`ConfigError` for a bad option, and from ``init`` for examples that are not
    3-D ``(H, W, C)``.
    """
    chans = layer_widths(channels, "cnn channels")
    if not chans:
        raise ConfigError("cnn channels must name at least one convolution, e.g. (6, 16); "
                          "use --model mlp for none")
    k = _check_kernel(kernel)
    sizes = layer_widths(hidden, "hidden layer sizes")
    act_name = _check_activation(activation)
    act = ACTIVATIONS[act_name]

    def init(key: Array, n_in, n_out: int, *, dtype="float32") -> Params:
        H, W, C = image_shape(n_in)
        conv = []
        for c_in, c_out in zip((C, *chans), chans):
            conv += [((c_out, k, k, c_in), _init_std(act_name, k * k * c_in, k * k * c_out)),
                     ((c_out,), 0.0)]
            H, W = -(-H // 2), -(-W // 2)
        dense = _dense_layout((H * W * chans[-1], *sizes, output_width(n_out)), act_name)
        arrays = _draw(key, (*conv, *dense), dtype)
        return {"conv": _pairs(arrays[:len(conv)]), "layers": _pairs(arrays[len(conv):])}

    def apply(params: Params, X: Array) -> Array:
        from .convolution import conv2d_same, max_pool_2x2  # JAX, imported when traced
        if X.ndim != 4:
            raise ConfigError(f"cnn takes a batch of images (B, H, W, C), got shape {X.shape}")
        h = X
        for layer in params["conv"]:
            h = max_pool_2x2(act(conv2d_same(h, layer["W"]) + layer["b"]))
        return _dense_apply(params["layers"], _rows(h), act)

    apply.spec = {"builtin": "cnn", "channels": list(chans), "kernel": k, "hidden": list(sizes),
                  "activation": act_name}
    return Model("cnn", init, apply)


# --------------------------------------------------------------------------------------------
# registry

#: Model name -> factory returning a :class:`Model` (factories may take keyword options).
MODELS: dict[str, Callable[..., Model]] = {"linear": linear, "mlp": mlp, "cnn": cnn}


def get_model(name, **kwargs) -> Model:
    """Resolve a model specification to a :class:`Model`.

    ``name`` may be

    * a name of :data:`MODELS`; ``kwargs`` go to its factory, e.g. ``get_model("mlp",
      hidden=(64, 64), activation="tanh")``. A factory's model that does not say how to
      rebuild it (``apply.spec``) is given ``{"builtin": name, **options}``, so a saved run
      of a new architecture loads without more code;
    * a :class:`Model` instance, returned unchanged (user-supplied ``init``/``apply``);
    * a pair ``(init, apply)`` of callables, wrapped as ``Model("custom", init, apply)``;
    * an import path ``"package.module:attr"`` (a string with a colon) or a network object:
      a Flax linen or NNX module, an Equinox module, or a factory returning one; see
      :mod:`sgdlab.user_models` (Flax and Equinox are imported only then).

    Raises :class:`ConfigError` for an unknown name or an option the factory does not take.
    """
    if isinstance(name, Model):
        return name
    if isinstance(name, (tuple, list)) and len(name) == 2 and all(map(callable, name)):
        return Model("custom", name[0], name[1])
    if not isinstance(name, str) or ":" in name:
        # imported here: user_models imports JAX, which naming the built-in models (the
        # command line's help) does not
        from .user_models import to_model

        if kwargs:
            raise ConfigError(f"options {', '.join(sorted(kwargs))} configure the built-in "
                              f"models ({', '.join(sorted(MODELS))}), not a user network")
        return to_model(name)
    if name not in MODELS:
        raise ConfigError(choices_message("model", name, MODELS) +
                          " (or an import path 'package.module:factory' of your own network)")
    factory = MODELS[name]
    try:
        options = inspect.signature(factory).bind(**kwargs)
    except TypeError:
        takes = list(inspect.signature(factory).parameters)
        raise ConfigError(
            f"model {name!r} does not take option(s) {', '.join(sorted(kwargs))}; "
            f"it takes: {', '.join(takes) or 'no options'}"
        ) from None
    model = factory(**kwargs)
    if not isinstance(getattr(model.apply, "spec", None), dict):
        # how a saved or pickled model rebuilds it (engine.predictor): its name and options
        options.apply_defaults()
        model.apply.spec = {"builtin": name,
                            **{k: _plain(v) for k, v in options.arguments.items()}}
    return model


def _plain(value):
    """An option as a JSON value: sequences and arrays as lists, NumPy scalars as numbers."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def n_params(params: Params) -> int:
    """Total number of scalars in every leaf of ``params``."""
    return int(sum(math.prod(jnp.shape(leaf)) for leaf in jax.tree_util.tree_leaves(params)))
