"""The compiled kernel every tool times: up to K optimisation steps in one call.

The host never loops per step: per-step Python overhead would make small batches look slow
for the interpreter's sake, not the hardware's or the statistics'. It calls

    run_chunk(state, X, T, idx: (K, B) int32, w: (K, B) float32, n_active: int32, lr: ())
        -> (state, losses: (K,), ok: bool)

which runs steps ``k = 0 .. n_active-1`` in a compiled loop. Step ``k`` gathers the rows
``X[idx[k]]`` (training data stays on the device), computes the masked mean objective and its
gradient, and applies one optax update scaled by the learning rate ``lr``. ``n_active`` is a
traced bound, so the host can stop at any boundary (an evaluation, an epoch) with one compiled
shape, and no work is spent on the unused rows of ``idx``. ``lr`` is a traced scalar too (the
optimiser is built at rate 1, see :mod:`sgdlab.optim.optimizers`), so one compiled program per
batch size serves every learning rate and every seed (the seed only decides the initial
parameters and the batch plan, both made on the host).

Divergence is handled in two tiers so the common path pays nothing per step:

* the *fast* kernel checks nothing per step; it returns ``ok`` = every loss and every final
  parameter finite (one reduction per chunk);
* when ``ok`` is false the host finds the first step whose loss or new parameters are not
  finite, keeps the last good state, and returns that step's count as ``first_bad``: from
  the chunk's losses and one or two re-runs of the fast kernel for fewer active steps
  (:meth:`.two_tier.TwoTier.locate`), or, when those cannot tell, by re-running the chunk with the
  *checked* kernel (compiled only then), which stops at that step. Every kernel does the same
  arithmetic, so the good steps are bit-identical.

:class:`.two_tier.TwoTier` is that host side, shared by the in-memory loop and the fed-batch
loop (whose kernels, in :mod:`.batched`, take the same two forms).
"""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._types import TrainState
from ..grad import ValueAndGrad
from .memory import check_fits


def _all_finite(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def make_step(value_and_grad: ValueAndGrad, optimizer: optax.GradientTransformation):
    """``step(state, xb (B, d), tb (B,), w (B,), lr ()) -> (state, loss)``: one update.

    ``optimizer`` is built at learning rate 1 (:func:`sgdlab.optim.make_unit_optimizer`); its
    update is multiplied by the runtime ``lr``. Every kernel (gathering, pre-gathered, fast,
    checked) runs this very function, so a step's arithmetic does not depend on which kernel
    runs it.
    """

    def step(state: TrainState, xb, tb, w_k, lr):
        value, grads = value_and_grad(state.params, xb, tb, w_k)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        updates = jax.tree_util.tree_map(lambda u: u * lr.astype(u.dtype), updates)
        params = optax.apply_updates(state.params, updates)
        return TrainState(params, opt_state, state.step + 1), value.astype(jnp.float32)

    return step


def fast_steps(step_on, state: TrainState, xs: tuple, n_active):
    """Run ``step_on(state, *xs_k)`` for ``k < n_active``; ``-> (state, losses (K,), ok)``.

    No per-step checks: ``ok`` says whether every loss and every final parameter is finite.
    """

    def body(k, carry):
        state, losses = carry
        state, value = step_on(state, *(x[k] for x in xs))
        return state, losses.at[k].set(value)

    losses = jnp.zeros(xs[0].shape[0], jnp.float32)
    state, losses = jax.lax.fori_loop(0, n_active, body, (state, losses))
    # the optimiser state too: Adam's second moment can overflow while params stay finite
    return state, losses, jnp.all(jnp.isfinite(losses)) & _all_finite(state[:2])


#: Steps per compiled call of an unrolled kernel (:func:`unrolled_steps`): long enough that a
#: call's fixed cost (about a millisecond) is small next to its steps, short enough to compile
#: in seconds (the program grows with every step written out).
UNROLLED_STEPS = 8


def unrolled_steps(step_on, state: TrainState, xs: tuple, n_active):
    """:func:`fast_steps` with its ``K`` steps written out one after another instead of as a
    loop; steps ``k >= n_active`` are computed and discarded (the state keeps its value), so
    callers keep ``K`` short (:data:`UNROLLED_STEPS`).

    Why: XLA's CPU backend runs a convolution inside a loop body several times slower than the
    same convolution outside one (jax-ml/jax#12868). One SGD step of the built-in cnn on 28x28
    images at batch 32 took 40 ms inside the loop and 8 ms unrolled (2 cores, 8 or 16 steps per
    call; a Python loop of jitted steps: 8.6 ms), when it convolved with XLA. CPU runs of
    networks with XLA convolutions take this form (:func:`uses_convolution`): user networks
    such as Flax's ``nn.Conv``, and cnn layers with many input channels. Everything else keeps
    the loop, which compiles once for any ``K``; the built-in cnn's banded matrix products
    (:mod:`sgdlab.convolution`) run as fast in the loop as unrolled.
    """
    losses = []
    for k in range(xs[0].shape[0]):
        new, value = step_on(state, *(x[k] for x in xs))
        active = k < n_active
        state = jax.tree_util.tree_map(lambda a, b: jnp.where(active, a, b), new, state)
        losses.append(jnp.where(active, value, 0.0))
    losses = jnp.stack(losses)
    return state, losses, jnp.all(jnp.isfinite(losses)) & _all_finite(state[:2])


#: :func:`uses_convolution` of built-in models, by their spec and shapes (tracing one costs
#: ~10 ms, which a sweep's hundreds of short runs would each pay).
_CONVOLUTION: dict = {}


def uses_convolution(model, n_in, n_out: int) -> bool:
    """Whether ``model.apply`` runs an XLA convolution (traced on abstract values: nothing is
    computed). The built-in cnn's banded products (:func:`sgdlab.convolution.conv2d_same` on a
    CPU, few input channels) are matrix products, not convolutions, here.

    A network that cannot be traced this way is taken to have no convolution: it then runs in
    the loop kernel, which is correct for any network and only slower for convolutions."""
    shape = (n_in,) if isinstance(n_in, int) else tuple(n_in)
    spec = getattr(model.apply, "spec", None)
    key = (repr(sorted(spec.items())), shape, n_out) \
        if isinstance(spec, dict) and "builtin" in spec else None
    if key is not None and key in _CONVOLUTION:
        return _CONVOLUTION[key]
    found = _traces_convolution(model, n_in, shape, n_out)
    if key is not None:
        _CONVOLUTION[key] = found
    return found


def _traces_convolution(model, n_in, shape: tuple, n_out: int) -> bool:
    try:
        params = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), n_in, n_out))
        jaxpr = jax.make_jaxpr(model.apply)(params, jax.ShapeDtypeStruct((2, *shape),
                                                                          jnp.float32))
    except Exception:  # noqa: BLE001 (a user's network: any failure means "use the loop")
        return False
    return "conv_general_dilated" in str(jaxpr)  # the printed program includes nested ones


def checked_steps(step_on, state: TrainState, xs: tuple, n_active):
    """Like :func:`fast_steps` but stops before applying the first non-finite step.

    ``-> (state, losses (K,), first_bad)``: the last good state, and the step count at which
    the loss, the new parameters or the new optimiser state went non-finite (``-1`` if none
    did).
    """

    def cond(carry):
        k, _, _, first_bad = carry
        return (k < n_active) & (first_bad < 0)

    def body(carry):
        k, state, losses, first_bad = carry
        new, value = step_on(state, *(x[k] for x in xs))
        good = jnp.isfinite(value) & _all_finite(new[:2])  # params and optimiser state
        state_out = jax.tree_util.tree_map(lambda a, b: jnp.where(good, a, b), new, state)
        first_bad = jnp.where(good, first_bad, state.step)
        return k + 1, state_out, losses.at[k].set(jnp.where(good, value, 0.0)), first_bad

    init = (jnp.int32(0), state, jnp.zeros(xs[0].shape[0], jnp.float32), jnp.int32(-1))
    _, state, losses, first_bad = jax.lax.while_loop(cond, body, init)
    return state, losses, first_bad


def _gathering(value_and_grad, optimizer, steps):
    update = make_step(value_and_grad, optimizer)

    def run_chunk(state: TrainState, X, T, idx, w, n_active, lr):
        def step_on(s, idx_k, w_k):
            # promise_in_bounds: indices come from the batch plan, always in 0..N-1; skipping
            # the bounds check matters at batch 1, where the gather is most of the step.
            xb = X.at[idx_k].get(mode="promise_in_bounds")
            tb = T.at[idx_k].get(mode="promise_in_bounds")
            return update(s, xb, tb, w_k, lr)

        return steps(step_on, state, (idx, w), n_active)

    return run_chunk


#: Where ``n_active`` sits in the gathering kernel's arguments after the state:
#: ``(X, T, idx, w, n_active, lr)`` (:class:`~.two_tier.TwoTier` re-runs a bad chunk with
#: fewer).
ACTIVE_ARG = 4


def make_chunk_fn(value_and_grad: ValueAndGrad, optimizer: optax.GradientTransformation,
                  unrolled: bool = False):
    """The fast kernel: ``(state, X, T, idx, w, n_active, lr) -> (state, losses (K,), ok)``;
    ``unrolled``: its steps written out (:func:`unrolled_steps`) instead of a loop."""
    return _gathering(value_and_grad, optimizer, unrolled_steps if unrolled else fast_steps)


def make_checked_chunk_fn(value_and_grad: ValueAndGrad,
                          optimizer: optax.GradientTransformation):
    """The checked kernel: ``-> (state, losses (K,), first_bad)``, ``first_bad = -1`` if none."""
    return _gathering(value_and_grad, optimizer, checked_steps)


#: Tracing and lowering take the interpreter lock throughout; only XLA's compilation runs
#: beside other threads. One thread lowers at a time, so programs built concurrently
#: (:func:`sgdlab.engine.cache.get_or_build` from several threads) overlap only where they can.
_LOWERING = threading.Lock()


def compile_chunk(run_chunk, state, X, T, chunk_steps: int, batch_size: int):
    """Ahead-of-time compile for one ``(K, B)`` shape; a compiled call can never recompile.
    Safe to call from several threads at once (their compilations run concurrently)."""
    idx = jax.ShapeDtypeStruct((chunk_steps, batch_size), jnp.int32)
    w = jax.ShapeDtypeStruct((chunk_steps, batch_size), jnp.float32)
    n = jax.ShapeDtypeStruct((), jnp.int32)
    with _LOWERING:
        lowered = jax.jit(run_chunk).lower(state, X, T, idx, w, n, lr_shape())
    return check_fits(lowered.compile(), "one training step")


def lr_shape() -> jax.ShapeDtypeStruct:
    """The runtime learning rate's shape: a scalar of JAX's default float type."""
    return jax.ShapeDtypeStruct((), jax.dtypes.canonicalize_dtype(np.float64))
