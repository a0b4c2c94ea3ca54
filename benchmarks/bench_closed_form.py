"""Closed-form against autodiff gradients: time per SGD step through the engine's chunk kernel.

Both contenders run the same compiled chunk (``engine.chunk``), differing only in the
``value_and_grad`` function, on the same data and batch indices, alternately (A B A B ...), and
the best (minimum) time per step of each is compared, as ``timeit`` does: on a shared machine
the minimum is the run least disturbed by other processes; the ratio of medians is printed
beside it. Prints the machine and the ratios per loss and batch size; a ratio of at most 1.10
means "closed-form no slower than autodiff by more than 10 %".

    python benchmarks/bench_closed_form.py [--n 20000] [--d 784] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sgdlab._types import TrainState
from sgdlab.engine.chunk import compile_chunk, make_chunk_fn
from sgdlab.grad import value_and_grad_for
from sgdlab.losses import LOSSES, encode_targets
from sgdlab.models import linear


def machine() -> str:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} CPUs, {jax.devices()[0].platform}; jax {jax.__version__}, "
            f"optax {optax.__version__}, numpy {np.__version__}")


def bench(loss_name: str, X, y, batch: int, steps: int, repeats: int) -> tuple[float, float]:
    loss = LOSSES[loss_name]
    n_classes = 2 if loss.target_kind == "sign" else 10
    T = jnp.asarray(encode_targets(loss, y % n_classes, n_classes))
    model = linear()
    params = model.init(jax.random.PRNGKey(0), X.shape[1], loss.n_outputs(n_classes))
    opt = optax.sgd(1.0)  # rate 1: the kernel scales the update by its runtime lr
    rng = np.random.default_rng(0)
    idx = rng.integers(0, X.shape[0], (steps, batch)).astype(np.int32)
    w = np.ones((steps, batch), np.float32)
    runs = {}
    for kind in ("autodiff", "closed-form"):
        state = TrainState(params, opt.init(params), jnp.zeros((), jnp.int32))  # shapes only
        runs[kind] = compile_chunk(make_chunk_fn(value_and_grad_for(kind, model, loss, 1e-4),
                                                 opt), state, X, T, steps, batch)
    times = {k: [] for k in runs}
    for _ in range(repeats):
        for kind, run in runs.items():   # alternate, so drifts in machine load hit both
            # Each call starts from fresh copies of the same parameters.
            p = jax.tree_util.tree_map(jnp.copy, params)
            state = jax.block_until_ready(TrainState(p, opt.init(p), jnp.zeros((), jnp.int32)))
            t = time.perf_counter()
            out = run(state, X, T, idx, w, np.int32(steps), np.float32(0.01))
            jax.block_until_ready(out)
            times[kind].append((time.perf_counter() - t) / steps)
    return ((min(times["autodiff"]), min(times["closed-form"])),
            (statistics.median(times["autodiff"]), statistics.median(times["closed-form"])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--d", type=int, default=784)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.normal(size=(args.n, args.d)).astype(np.float32))
    y = rng.integers(0, 10, args.n)
    print(machine())
    print(f"data {args.n} x {args.d}, linear model, l2 1e-4, best and median of {args.repeats}")
    print(f"{'loss':<16}{'batch':>6}{'autodiff us/step':>18}{'closed-form us/step':>21}"
          f"{'ratio (best)':>14}{'ratio (median)':>16}")
    for loss_name in ("softmax", "multiclass_svm", "logistic", "hinge", "squared"):
        for batch, steps in ((32, 1000), (512, 200)):
            (ad, cf), (ad_med, cf_med) = bench(loss_name, X, y, batch, steps, args.repeats)
            print(f"{loss_name:<16}{batch:>6}{ad * 1e6:>18.1f}{cf * 1e6:>21.1f}"
                  f"{cf / ad:>14.3f}{cf_med / ad_med:>16.3f}")


if __name__ == "__main__":
    main()
