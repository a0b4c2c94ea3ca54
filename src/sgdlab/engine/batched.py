"""The chunk kernel fed with the batches themselves, and where those batches live.

When the training data is not on the device (streaming from disk), or is spread over several
devices and processes, the host hands the kernel the rows of each step instead of indices:

    run_batches(state, XB: (K, B, *example) float32, TB: (K, B), w: (K, B) float32,
                n_active: int32, shift: (c,) float32, scale: (c,) float32, lr: ())

(``example`` is ``(d,)`` for rows of features, ``c = d``; for N-D examples ``c`` is the last
axis, the channels of an image.)
        -> (state, losses: (K,), ok: bool)                      fast kernel
        -> (state, losses: (K,), first_bad: int32)              checked kernel

Each step first standardises its batch, ``x <- (x - shift) / scale`` (the float32 arithmetic
of ``Standardizer.transform``; ``shift = 0, scale = 1`` leaves ``x`` bit for bit as it is), so
streamed rows need no host pass, then runs the same :func:`~sgdlab.engine.chunk.make_step`
update as the gathering kernel: a step sees identical arithmetic whichever kernel runs it (a
test compares parameters bit for bit). Divergence is handled in the same two tiers as in
memory (:mod:`.chunk`): the fast kernel checks nothing per step and reports ``ok`` = every loss
and final parameter finite; only after a chunk with ``ok`` false does the host locate its
first non-finite step, re-running that chunk from the state before it (its batches are still
on the device) with the fast kernel for fewer steps, or with the checked kernel, built then,
when that cannot tell. One compiled shape per ``(K, B)``.

A *placement* decides where the arrays live:

* :class:`LocalPlacement`: one device, ``jax.device_put``.
* :class:`MeshPlacement`: a one-axis mesh ``("data",)`` over several devices, possibly in
  several processes. The batch axis ``B`` is sharded over the mesh; each process supplies only
  its own ``B / processes`` slots (its local batch) and the parameters are replicated. The
  objective ``sum_i w_i l_i / sum_i w_i`` then sums over the whole global batch, so XLA inserts
  the all-reduce of the partial sums and gradients into the compiled step (gloo on CPU, NCCL on
  GPU): synchronous data parallelism with no Python in the loop. The losses and parameters
  after that all-reduce are replicated, and ``ok`` (like ``first_bad``) is computed from them
  inside the same program, so every process reads the same value and takes the same branch
  with no extra collective (a branch taken by some processes only would hang the others).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..grad import ValueAndGrad
from .chunk import checked_steps, fast_steps, lr_shape, make_step, unrolled_steps
from .memory import check_fits


def _fed(value_and_grad: ValueAndGrad, optimizer: optax.GradientTransformation, steps):
    update = make_step(value_and_grad, optimizer)

    def run_batches(state, XB, TB, w, n_active, shift, scale, lr):
        def step(s, xb, tb, w_k):
            return update(s, (xb - shift) / scale, tb, w_k, lr)

        return steps(step, state, (XB, TB, w), n_active)

    return run_batches


def make_batch_chunk_fn(value_and_grad: ValueAndGrad, optimizer: optax.GradientTransformation,
                        unrolled: bool = False):
    """The un-jitted fast kernel over pre-gathered batches: ``-> (state, losses (K,), ok)``;
    ``unrolled`` as for :func:`~sgdlab.engine.chunk.make_chunk_fn`."""
    return _fed(value_and_grad, optimizer, unrolled_steps if unrolled else fast_steps)


#: Where ``n_active`` sits in the fed kernel's arguments after the state:
#: ``(XB, TB, w, n_active, shift, scale, lr)`` (:class:`~.two_tier.TwoTier` re-runs a bad
#: chunk with fewer).
FED_ACTIVE_ARG = 3


def make_checked_batch_chunk_fn(value_and_grad: ValueAndGrad,
                                optimizer: optax.GradientTransformation):
    """The un-jitted checked kernel: ``-> (state, losses (K,), first_bad)``, ``-1`` if none."""
    return _fed(value_and_grad, optimizer, checked_steps)


class LocalPlacement:
    """Everything on the default device of this process."""

    world, rank, is_writer = 1, 0, True

    def put_state(self, state):
        return jax.device_put(state)

    def put_replicated(self, a):
        return jax.device_put(a)

    def put_batches(self, XB, TB, w):
        # from_dlpack lets XLA on CPU use an aligned host buffer in place: the features of a
        # chunk are the one large transfer, and copying them again would cost as much as the
        # update itself for a linear model. (On GPU it is a host-to-device copy as usual.)
        on_cpu = jax.default_backend() == "cpu"
        XB = jnp.from_dlpack(XB) if on_cpu and XB.flags.c_contiguous else jax.device_put(XB)
        return XB, jax.device_put(TB), jax.device_put(w)

    def compile(self, fn, state, k: int, b_local: int, example_shape: tuple, t_dtype):
        """``fn`` compiled for ``(K, B, *example_shape)`` batches. The state is not donated: after a
        diverged chunk the host re-runs it from the state it passed in."""
        shapes = _shapes(k, b_local, example_shape, t_dtype)
        return check_fits(jax.jit(fn).lower(state, *shapes).compile(), "one training step")

    def to_host(self, x) -> np.ndarray:
        return np.asarray(x)

    def local_tree(self, tree):
        return tree

    def agree(self, value: float) -> float:
        """A host decision input (a clock) all processes must share; here, itself."""
        return value

    def gather(self, values) -> np.ndarray:
        """``(world, len(values))`` float32: row ``r`` holds process ``r``'s ``values``."""
        return np.asarray(values, np.float32)[None]


class MeshPlacement(LocalPlacement):
    """Data parallelism over ``devices`` (default: every device of every process)."""

    def __init__(self, devices=None):
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
        devs = sorted(devices or jax.devices(), key=lambda d: (d.process_index, d.id))
        self.mesh = Mesh(np.array(devs), ("data",))
        self.world, self.rank = jax.process_count(), jax.process_index()
        self.is_writer = self.rank == 0
        self.n_devices = len(devs)
        self.replicated = NamedSharding(self.mesh, P())
        # steps x batch x the example's axes: only the batch axis is split (unnamed trailing
        # axes are replicated, so one spec serves rows and N-D examples alike)
        self.by_batch3 = NamedSharding(self.mesh, P(None, "data"))
        self.by_batch2 = NamedSharding(self.mesh, P(None, "data"))

    def put_state(self, state):
        host = jax.tree_util.tree_map(np.asarray, state)
        return jax.tree_util.tree_map(
            lambda a: jax.make_array_from_callback(a.shape, self.replicated, lambda i: a[i]), host)

    def put_replicated(self, a):
        a = np.asarray(a)
        return jax.make_array_from_callback(a.shape, self.replicated, lambda i: a[i])

    def put_batches(self, XB, TB, w):
        make = jax.make_array_from_process_local_data
        return make(self.by_batch3, XB), make(self.by_batch2, TB), make(self.by_batch2, w)

    def compile(self, fn, state, k: int, b_local: int, example_shape: tuple, t_dtype):
        b = b_local * self.world
        if b % self.n_devices:
            from ..errors import ConfigError
            raise ConfigError(f"batch size {b} must be a multiple of the number of devices "
                              f"({self.n_devices}): the batch is split equally among them")
        shapes = _shapes(k, b, example_shape, t_dtype)
        state_sh = jax.tree_util.tree_map(lambda _: self.replicated, state)
        jitted = jax.jit(fn, in_shardings=(state_sh, self.by_batch3, self.by_batch2,
                                           self.by_batch2, self.replicated, self.replicated,
                                           self.replicated, self.replicated),
                         out_shardings=(state_sh, self.replicated, self.replicated))
        return check_fits(jitted.lower(state, *shapes).compile(), "one training step")

    def to_host(self, x) -> np.ndarray:
        # replicated: this process's first copy is the whole value
        return np.asarray(x.addressable_data(0))

    def local_tree(self, tree):
        """A replicated pytree as single-device arrays, for local evaluation and saving."""
        return jax.tree_util.tree_map(lambda a: a.addressable_data(0), tree)

    def agree(self, value: float) -> float:
        if self.world == 1:
            return value
        from jax.experimental import multihost_utils
        return float(multihost_utils.broadcast_one_to_all(np.float32(value)))

    def gather(self, values) -> np.ndarray:
        if self.world == 1:
            return super().gather(values)
        from jax.experimental import multihost_utils
        return np.asarray(multihost_utils.process_allgather(np.asarray(values, np.float32)))


def _shapes(k, b, example_shape, t_dtype):
    shape = tuple(example_shape)
    return (jax.ShapeDtypeStruct((k, b) + shape, jnp.float32),
            jax.ShapeDtypeStruct((k, b), t_dtype),
            jax.ShapeDtypeStruct((k, b), jnp.float32), jax.ShapeDtypeStruct((), jnp.int32),
            # standardisation per feature, or per channel (last axis) of N-D examples
            jax.ShapeDtypeStruct(shape[-1:], jnp.float32),
            jax.ShapeDtypeStruct(shape[-1:], jnp.float32), lr_shape())
