"""The compiled kernel every tool times: K optimisation steps in one call.

The host never loops per step (DESIGN decision 1). It calls

    run_chunk(state, X, T, idx: (K, B) int32, w: (K, B) float32, n_active: int32)
        -> (state, losses: (K,), first_bad: int32)

which scans over the K rows of ``idx``. Step ``k < n_active`` gathers the rows ``X[idx[k]]``
(training data stays on the device), computes the masked mean objective and its gradient, and
applies one optax update. Steps ``k >= n_active`` are skipped by ``lax.cond`` (no work is done),
so the host can stop at any boundary (an evaluation, an epoch) without a second compiled shape.

A step whose loss or new parameters are not finite is not applied: the state stays the last
good one, ``first_bad`` records the step count at which it happened (``-1`` when none did) and
the remaining steps of the chunk are skipped. Divergence is caught within one chunk.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from .._types import TrainState
from ..grad import ValueAndGrad

def _all_finite(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def make_step(value_and_grad: ValueAndGrad, optimizer: optax.GradientTransformation):
    """``step(state, xb (B, d), tb (B,), w (B,)) -> (state, loss, ok)``: one update on a batch.

    Shared by the gathering kernel below and the pre-gathered one in :mod:`.batched`, so the
    two run the very same update arithmetic.
    """

    def step(state: TrainState, xb, tb, w_k):
        value, grads = value_and_grad(state.params, xb, tb, w_k)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ok = jnp.isfinite(value) & _all_finite(params)
        new = TrainState(params, opt_state, state.step + 1)
        # Keep the last good state when this step went non-finite.
        new = jax.tree_util.tree_map(lambda a, b: jnp.where(ok, a, b), new, state)
        return new, value, ok

    return step


def scan_steps(step_on, state: TrainState, xs, n_active):
    """Scan ``step_on(state, *xs_k)`` over the leading axis of ``xs``, skipping inactive steps.

    Returns ``(state, losses (K,), first_bad)`` as :func:`make_chunk_fn` documents.
    """

    def body(carry, x_k):
        state, first_bad = carry
        k, rest = x_k[0], x_k[1:]
        active = (k < n_active) & (first_bad < 0)

        def skip(s):
            return s, jnp.zeros((), jnp.float32), jnp.array(True)

        new, value, ok = jax.lax.cond(active, lambda s: step_on(s, *rest), skip, state)
        first_bad = jnp.where(active & ~ok, state.step, first_bad)
        return (new, first_bad), value.astype(jnp.float32)

    ks = jnp.arange(xs[0].shape[0], dtype=jnp.int32)
    (state, first_bad), losses = jax.lax.scan(
        body, (state, jnp.array(-1, jnp.int32)), (ks, *xs))
    return state, losses, first_bad


def make_chunk_fn(value_and_grad: ValueAndGrad, optimizer: optax.GradientTransformation):
    """The un-jitted chunk function for the given gradient and optimiser."""
    update = make_step(value_and_grad, optimizer)

    def run_chunk(state: TrainState, X, T, idx, w, n_active):
        def step(s, idx_k, w_k):
            # promise_in_bounds: indices come from the batch plan, always in 0..N-1; skipping
            # the bounds check matters at batch 1, where the gather is most of the step.
            xb = X.at[idx_k].get(mode="promise_in_bounds")
            tb = T.at[idx_k].get(mode="promise_in_bounds")
            return update(s, xb, tb, w_k)

        return scan_steps(step, state, (idx, w), n_active)

    return run_chunk


def compile_chunk(run_chunk, state, X, T, chunk_steps: int, batch_size: int):
    """Ahead-of-time compile for one ``(K, B)`` shape; a compiled call can never recompile."""
    idx = jax.ShapeDtypeStruct((chunk_steps, batch_size), jnp.int32)
    w = jax.ShapeDtypeStruct((chunk_steps, batch_size), jnp.float32)
    n = jax.ShapeDtypeStruct((), jnp.int32)
    return jax.jit(run_chunk, donate_argnums=(0,)).lower(state, X, T, idx, w, n).compile()
