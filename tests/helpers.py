"""Helpers shared by tests: float64 scopes and tolerances in one place."""

import contextlib

import jax


@contextlib.contextmanager
def x64():
    """float64 inside the block only, so other tests keep JAX's float32 default."""
    ctx = getattr(jax, "enable_x64", None)
    if ctx is None:  # older JAX
        from jax.experimental import enable_x64 as ctx
    with ctx(True):
        yield


def back_to_a_middle_checkpoint(run_dir, total_steps: int) -> int:
    """Delete the checkpoints of ``run_dir`` after the middle one of those strictly between
    step 0 and ``total_steps``, as if the run had stopped there; its step."""
    from sgdlab.engine.checkpoint import CheckpointStore
    store = CheckpointStore(run_dir)
    inner = [s for s in store.steps() if 0 < s < total_steps]
    middle = inner[len(inner) // 2]
    for step in store.steps():
        if step > middle:
            for p in store.paths(step):
                p.unlink()
    return middle
