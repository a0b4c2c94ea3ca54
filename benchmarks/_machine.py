"""Shared benchmark helpers: machine description, physical limits, a timer, a result table."""

from __future__ import annotations

import os
import platform
import time

import numpy as np


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe_machine() -> str:
    import jax
    dev = jax.devices()[0]
    return (f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"jax {jax.__version__} on {dev.platform} ({getattr(dev, 'device_kind', dev)}), "
            f"numpy {np.__version__}")


def best_of(fn, repeats: int = 3) -> float:
    """Minimum wall time of ``fn()`` over ``repeats`` calls (the least disturbed one)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def warm_up(seconds: float = 0.3) -> None:
    """Keep every core busy for ``seconds`` before a timed region.

    On the virtual machines we measure on, work that starts after a core has idled for ~0.1 s
    or more runs up to 2x slower for its first tens of milliseconds (one epoch of softmax at
    batch 512: 33 ms after this warm-up, 60-70 ms after a 0.2 s sleep, with the same program).
    Every contender's timed region starts right after the same warm-up, so none is measured on
    a cold machine and none on a warmer one than the others.
    """
    import jax
    import jax.numpy as jnp
    a = jnp.ones((512, 512), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        f(a).block_until_ready()


def read_bandwidth(nbytes: int = 512 << 20) -> float:
    """Single-thread read bandwidth in bytes/s: a float32 sum streams the array once."""
    a = np.ones(nbytes // 4, np.float32)
    a.sum()  # touch the pages first
    t = best_of(lambda: np.add.reduce(a, dtype=np.float32), 5)
    return nbytes / t


def matmul_rate(n: int = 2048) -> float:
    """float32 matrix-multiply rate in FLOP/s on every core: the faster of XLA (what training
    runs) and NumPy's BLAS, so the limit is the best this machine shows, not sgdlab's own."""
    import jax
    import jax.numpy as jnp
    a = jnp.ones((n, n), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    t_xla = best_of(lambda: f(a).block_until_ready(), 5)
    b = np.ones((n, n), np.float32)
    t_blas = best_of(lambda: b @ b, 5)
    return 2 * n ** 3 / min(t_xla, t_blas)


def table(rows: list[tuple], header: tuple) -> str:
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*(str(c) for c in r)) for r in rows]
    return "\n".join(lines)
