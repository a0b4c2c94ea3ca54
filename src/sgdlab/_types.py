"""The vocabulary of sgdlab, named once.

Shapes use ``N`` for examples, ``d`` for features, ``k`` for model outputs, ``B`` for the batch
size and ``K`` for the number of optimisation steps in one compiled chunk.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax

#: A pytree of arrays: the trainable parameters of a model (e.g. ``{"W": (k, d), "b": (k,)}``).
Params = Any
#: Optimiser state, as returned by an optax ``GradientTransformation.init``.
OptState = Any
#: A JAX or NumPy array.
Array = jax.Array


class Model(NamedTuple):
    """A model is a pair of pure functions.

    ``init(key, n_in, n_out) -> params`` draws initial parameters;
    ``apply(params, X) -> outputs`` maps a batch ``X: (B, d)`` to scores ``(B, k)``.
    ``name`` is used in reports. L2 applies to every leaf except those under a dict key ``"b"``
    (biases), see :func:`sgdlab.losses.l2_penalty`.
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
