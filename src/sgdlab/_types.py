"""The vocabulary of sgdlab, named once.

Shapes use ``N`` for examples, ``d`` for features, ``k`` for model outputs, ``B`` for the batch
size and ``K`` for the number of optimisation steps in one compiled chunk.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable, NamedTuple

from .errors import ConfigError

#: A pytree of arrays: the trainable parameters of a model (e.g. ``{"W": (k, d), "b": (k,)}``).
Params = Any
#: Optimiser state, as returned by an optax ``GradientTransformation.init``.
OptState = Any
#: A JAX or NumPy array (``jax.Array``; named here for annotations, so that naming the
#: vocabulary does not import JAX).
Array = Any


class Model(NamedTuple):
    """A model is a pair of pure functions.

    ``init(key, n_in, n_out, *, dtype=jnp.float32) -> params`` draws initial parameters (a
    pytree) for examples of shape ``n_in`` and ``k = n_out`` scores: ``n_in`` is the int ``d``
    for rows of features, or a tuple for N-D examples, e.g. ``(H, W, C)`` for images (channels
    last) or ``(T, d)`` for sequences;
    ``apply(params, X) -> outputs`` maps a batch ``X: (B, d)`` or ``(B, *n_in)`` to scores
    ``(B, k)``.
    ``name`` is used in reports. L2 applies to every leaf except biases, those named ``"b"``
    or ``"bias"`` (a dict key or an attribute), see :func:`sgdlab.losses.l2_penalty`.
    """

    name: str
    init: Callable[..., Params]
    apply: Callable[[Params, Array], Array]


class Loss(NamedTuple):
    """A loss maps ``(outputs: (B, k), targets: (B,)) -> per-example values (B,)``.

    ``targets`` are what :attr:`target_kind` says: ``"index"`` (int class index 0..k-1),
    ``"sign"`` (float -1/+1 for binary margin losses) or ``"real"`` (float regression target).
    ``n_outputs(n_classes)`` gives the model output width the loss expects.
    ``predict(outputs) -> (B,)`` turns scores into class indices or real predictions.
    """

    name: str
    fn: Callable[[Array, Array], Array]
    target_kind: str
    n_outputs: Callable[[int], int]
    predict: Callable[[Array], Array]


class TrainState(NamedTuple):
    """Everything a compiled chunk carries from one step to the next.

    ``step`` is the number of updates applied so far (int32 scalar).
    """

    params: Params
    opt_state: OptState
    step: Array


def example_shape(n_in) -> tuple[int, ...]:
    """The shape of one example from a model's ``n_in``: an int ``d`` is ``(d,)``, a tuple of
    positive ints (``(H, W, C)``, ``(T, d)``) is itself.

    Raises :class:`ConfigError` for anything else (a non-integer or non-positive size).
    """
    def bad(why: str = "") -> ConfigError:
        return ConfigError(f"model sizes must be positive integers, got n_in={n_in!r}{why} "
                           "(an int d for rows of features or a shape like (28, 28, 1))")

    if isinstance(n_in, (bool, str, bytes)):
        raise bad()
    try:
        dims = (operator.index(n_in),)
    except TypeError:
        try:
            dims = tuple(n_in)
        except TypeError:
            raise bad() from None
    if not dims:
        raise bad(": a shape with no axis")
    out = []
    for n in dims:
        try:
            if isinstance(n, bool):
                raise TypeError
            n = operator.index(n)
        except TypeError:
            raise bad() from None
        if n < 1:
            raise bad()
        out.append(n)
    return tuple(out)


def whole_number(value) -> int | None:
    """``value`` as an int when it is one (a Python or NumPy integer, not a bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def output_width(n_out) -> int:
    """A model's ``n_out``, the scores per example: a positive int, else :class:`ConfigError`."""
    width = whole_number(n_out)
    if width is None or width < 1:
        raise ConfigError(f"model sizes must be positive integers, got n_out={n_out!r}")
    return width


#: Largest sizes accepted for settings that become array dimensions (layer widths, batch
#: sizes): far above any real use, low enough that a typo is refused instead of exhausting
#: memory when the program compiles.
MAX_DIMENSION = 1 << 20


def is_finite_number(x) -> bool:
    """Whether the real number ``x`` is finite. Python ints of any size are numbers here:
    ``np.isfinite`` refuses those beyond 64 bits, ``float()`` those beyond 1e308."""
    try:
        return math.isfinite(float(x))
    except OverflowError:  # an int too large for a float
        return False


def layer_widths(value, what: str = "layer widths", *, empty: bool = True,
                 limit: int | None = None) -> tuple[int, ...]:
    """Widths of layers (``hidden``) or channel counts: a whole number (one layer), a sequence
    of them, or text ``"256,128"``, as a tuple of ints ``>= 1`` (and ``<= limit``).

    ``empty``: whether no layer at all is allowed. Anything else is a :class:`ConfigError`
    naming ``what`` and the reason.

    >>> layer_widths("256, 128"), layer_widths(64), layer_widths([6, 16])
    ((256, 128), (64,), (6, 16))
    """
    def bad(reason: str = "") -> ConfigError:
        most = f" and <= {limit:,}" if limit is not None else ""
        return ConfigError(f"{what} must be whole numbers >= 1{most}, such as (128,) or "
                           f"'256,128', got {value!r}{reason}")

    one = whole_number(value)
    if one is not None:
        sizes: tuple = (one,)
    elif isinstance(value, str):
        parts = value.replace(" ", "").split(",")
        if "" in parts and any(parts):  # "6,,16" or "128,": a missing number, not a typo
            raise bad(" (an empty entry between commas)")
        try:
            sizes = tuple(int(p) for p in parts if p)
        except ValueError:
            raise bad(" (not comma-separated whole numbers)") from None
    elif isinstance(value, bytes):
        raise bad()
    else:
        try:
            sizes = tuple(value)
        except TypeError:
            raise bad() from None
        sizes = tuple(whole_number(h) for h in sizes)
        if None in sizes:
            raise bad()
    if not sizes and not empty:
        raise bad(" (no layer)")
    if any(s < 1 for s in sizes) or (limit is not None and any(s > limit for s in sizes)):
        raise bad()
    return sizes
