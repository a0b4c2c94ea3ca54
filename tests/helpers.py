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
