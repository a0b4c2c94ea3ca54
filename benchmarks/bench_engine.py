"""Engine benchmark: one epoch of softmax regression and of an MLP on 60,000 x 784 float32.

sgdlab against scikit-learn's SGDClassifier, Vowpal Wabbit, a PyTorch eager loop,
hand-written NumPy and the loop a JAX user writes (a ``jax.jit``-ed ``optax.sgd`` step called
once per batch from Python, see ``peers.jax_optax_epoch``), all in this one process on the
same arrays; ratios are peer time / sgdlab time (above 1 means sgdlab is faster). Physical
limits are measured here, not assumed.

    python benchmarks/bench_engine.py            # full run (a few minutes on 2 cores)
    python benchmarks/bench_engine.py --quick    # smaller, for a smoke test

Needs the bench extras: pip install -e '.[bench]' torch==2.13.0
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile


sys.path.insert(0, os.path.dirname(__file__))
from _machine import describe_machine, matmul_rate, read_bandwidth, table, warm_up  # noqa: E402
from peers import (jax_optax_epoch, numpy_epoch, sklearn_epoch, torch_epoch,  # noqa: E402
                   vw_epoch)


def sgdlab_epoch(ds, batch_size, hidden=None, repeats=5, gradient="autodiff"):
    """Best-of-``repeats`` training seconds of one epoch, and the first run's compile seconds
    (later runs reuse the compiled program from the engine's cache)."""
    from sgdlab import TrainConfig
    from sgdlab.engine import train
    cfg = TrainConfig(model="mlp" if hidden else "softmax", hidden=(hidden or 1,),
                      batch_size=batch_size, epochs=1, lr=0.1, standardize=False,
                      eval_every="end", validation_fraction=0.0, gradient=gradient)
    runs = []
    for _ in range(repeats):
        warm_up()  # the same warm-up as every peer; train()'s setup before its clock is ~1 ms
        runs.append(train(ds, None, cfg))
    return min(r.train_seconds for r in runs), runs[0].compile_seconds


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=60_000)
    ap.add_argument("--quick", action="store_true", help="10,000 rows, fewer repeats")
    ap.add_argument("--torch-b1-steps", type=int, default=10_000,
                    help="PyTorch batch-1 steps actually run; the epoch is extrapolated")
    ap.add_argument("--skip", default="",
                    help="comma list of peers to skip: vw,sklearn,torch,jax")
    args = ap.parse_args(argv)
    rows = 10_000 if args.quick else args.rows
    skip = set(filter(None, args.skip.split(",")))

    from sgdlab.data import GENERATORS
    ds = GENERATORS["mnist-like"](n=rows, d=784, n_classes=10, seed=0)
    X, y = ds.X, ds.y
    print(f"machine: {describe_machine()}")
    bw, mm = read_bandwidth(), matmul_rate()
    read2 = 2 * X.nbytes / bw
    print(f"measured limits: read bandwidth {bw / 1e9:.1f} GB/s (one thread), float32 matmul "
          f"{mm / 1e9:.0f} GFLOP/s; reading the data twice takes {read2 * 1e3:.1f} ms")
    print(f"data: {rows:,} x 784 float32 ({X.nbytes / 1e6:.0f} MB), 10 classes, one epoch each\n")

    rows_out = []

    def add(name, b, t_sg, peer, t_peer, target=None):
        ratio = t_peer / t_sg
        verdict = "" if target is None else ("ok" if ratio >= target else f"below {target}x")
        rows_out.append((name, b, f"{t_sg:.3f}", peer, f"{t_peer:.3f}", f"{ratio:.1f}x",
                         verdict))

    # --- softmax regression ---------------------------------------------------------------
    t1, c1 = sgdlab_epoch(ds, 1, repeats=2)
    if "vw" not in skip:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = os.environ.get("SGDLAB_BENCH_DIR", tmp)
            os.makedirs(workdir, exist_ok=True)
            add("softmax", 1, t1, "Vowpal Wabbit --sgd --oaa 10", vw_epoch(X, y, workdir), 3)
    if "sklearn" not in skip:
        add("softmax", 1, t1, "sklearn SGDClassifier", sklearn_epoch(X, y), 3)
    if "torch" not in skip:
        steps = min(args.torch_b1_steps, rows)
        t_torch = torch_epoch(X, y, 1, max_steps=steps) * rows / steps
        add("softmax", 1, t1, f"PyTorch eager (x{rows / steps:.0f} of {steps} steps)",
            t_torch, 20)
    add("softmax", 1, t1, "NumPy by hand", numpy_epoch(X, y, 1) if rows <= 20_000 else
        numpy_epoch(X[:10_000], y[:10_000], 1) * rows / 10_000)
    compile_times = {1: c1}
    for b, target in ((32, 4), (512, 2)):
        t, compile_times[b] = sgdlab_epoch(ds, b)
        if "torch" not in skip:
            add("softmax", b, t, "PyTorch eager", min(torch_epoch(X, y, b) for _ in range(2)),
                target)
        add("softmax", b, t, "NumPy by hand", numpy_epoch(X, y, b))
        if "jax" not in skip:
            add("softmax", b, t, "JAX jit optax.sgd step per batch",
                jax_optax_epoch(X, y, b), 3 if b == 32 else None)
        if b == 512:
            add("softmax", b, t, "read data twice (limit)", read2, 1 / 2.5)
        t_cf, _ = sgdlab_epoch(ds, b, gradient="closed-form")
        add("softmax", b, t, "sgdlab closed-form gradient", t_cf)

    # --- MLP 784-256-10 -------------------------------------------------------------------
    # The FLOPs one epoch cannot avoid: the forward pass 2N(784*256 + 256*10), the weight
    # gradients of both layers (as many again) and the hidden-layer gradient 2N*256*10; no
    # gradient with respect to the input is needed.
    flops = 2 * rows * (2 * 784 * 256 + 3 * 256 * 10)
    limit = flops / mm
    notes = []
    for b, target in ((32, 2), (128, 2), (512, None)):
        t, c = sgdlab_epoch(ds, b, hidden=256)
        compile_times[f"mlp {b}"] = c
        if "torch" not in skip:
            t_torch = min(torch_epoch(X, y, b, hidden=256) for _ in range(3))
            add("mlp 256", b, t, "PyTorch eager", t_torch, target)
            if target and t_torch / t < target:
                notes.append(f"MLP batch {b}: {target}x PyTorch would be {t_torch / target:.3f} s, "
                             f"{t_torch / target / limit:.2f}x the matmul limit; sgdlab takes "
                             f"{t / limit:.2f}x it")
        if "jax" not in skip:
            add("mlp 256", b, t, "JAX jit optax.sgd step per batch",
                jax_optax_epoch(X, y, b, hidden=256))
        add("mlp 256", b, t, f"matmul limit ({flops / 1e9:.0f} GFLOP)", limit,
            1 / 1.5 if b == 512 else None)

    print(table(rows_out, ("model", "batch", "sgdlab s", "peer", "peer s", "peer/sgdlab",
                           "target")))
    print("\ncompile seconds per batch size: " +
          ", ".join(f"{k}: {v:.2f}" for k, v in compile_times.items()))
    for note in notes:
        print(note)
    print("ratios for limits: above 1/2.5 (0.4x) means sgdlab is within 2.5x of reading the "
          "data twice; above 1/1.5 (0.7x) within 1.5x of the matmul limit")


if __name__ == "__main__":
    main()
