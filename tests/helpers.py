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


def keep_checkpoints_up_to(run_dir, step: int) -> None:
    """Delete the checkpoints of ``run_dir`` after ``step``, as if the run had stopped there."""
    from sgdlab.engine.checkpoint import CheckpointStore
    store = CheckpointStore(run_dir)
    for later in store.steps():
        if later > step:
            for p in store.paths(later):
                p.unlink()


def back_to_a_middle_checkpoint(run_dir, total_steps: int, after: int = 0) -> int:
    """Keep the checkpoints of ``run_dir`` up to the middle one of those strictly between step
    ``after`` and ``total_steps`` (:func:`keep_checkpoints_up_to`); its step."""
    from sgdlab.engine.checkpoint import CheckpointStore
    inner = sorted(s for s in CheckpointStore(run_dir).steps() if after < s < total_steps)
    middle = inner[len(inner) // 2]
    keep_checkpoints_up_to(run_dir, middle)
    return middle


def help_of(*argv) -> str:
    """The ``--help`` text of ``sgdlab *argv``, printed in this process (argparse prints it
    and exits 0)."""
    import io
    from contextlib import redirect_stdout

    from sgdlab.cli.main import main

    out = io.StringIO()
    with redirect_stdout(out):
        try:
            main([*argv, "--help"])
        except SystemExit as stop:
            assert stop.code == 0, stop.code
        else:
            raise AssertionError("--help did not exit")
    return out.getvalue()


@contextlib.contextmanager
def counted_compilations():
    """A list that collects the name of every XLA compilation inside the block; the JAX
    listener that fills it is removed on leaving, so no later test pays for it.

    The session's persistent compilation cache (conftest) is off inside the block: a program
    another test process compiled first would be loaded from it and not counted.
    """
    from jax.experimental.compilation_cache import compilation_cache
    seen = []

    def listener(name, *args, **kwargs):
        if "backend_compile" in name:
            seen.append(name)

    previous = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", None)
    compilation_cache.reset_cache()
    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
        jax.config.update("jax_compilation_cache_dir", previous)
        compilation_cache.reset_cache()
