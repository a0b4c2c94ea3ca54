"""CNN benchmark: one epoch of a LeNet-style network on 60,000 x 28 x 28 x 1 float32 images.

The network (every contender builds exactly this one)::

    conv 5x5 SAME 1->6, relu, maxpool 2x2      (28x28x6 -> 14x14x6)
    conv 5x5 SAME 6->16, relu, maxpool 2x2     (14x14x16 -> 7x7x16)
    flatten 784, dense 128, relu, dense 10
    mean softmax cross-entropy, plain SGD at lr 0.05, shuffled batches

sgdlab (``model="cnn"``) against a PyTorch eager loop and the same loop with the model passed
through ``torch.compile``, all in this one process on the same images (channels-last for
sgdlab and JAX, channels-first for PyTorch, its own layout; the copy is made before timing).
Every contender trains every example once per epoch: a last partial batch is a smaller step
(sgdlab masks it, PyTorch runs the shorter batch), none is dropped.

The FLOP limit: the network's multiply-adds per example, x2 for FLOPs, x3 for forward and
backward (the backward pass costs about twice the forward: the gradients with respect to
the weights and to the activations), divided by this machine's measured float32 rates: the
matmul rate (the faster of XLA and BLAS on a large square product, as bench_engine) and a
conv rate (the faster of XLA and PyTorch running this network's two convolutions forward on
a large batch; XLA's rate for the same convolutions inside a compiled loop is printed too,
as a training loop runs them; sgdlab's own form of them, banded matrix products, is one of
the contenders for the conv rate). "% matmul limit" is the epoch time at the
matmul rate over the contender's time; "% conv limit" counts the conv FLOPs at the conv
rate and the dense ones at the matmul rate, the limit for convolutions as fast as this
machine runs them. Both rates are measured before and after the contenders, best of both.

    python benchmarks/bench_cnn.py               # full run (several minutes on 2 cores)
    python benchmarks/bench_cnn.py --quick       # 4,096 images, one repeat: a smoke test
    python benchmarks/bench_cnn.py --skip torch-compile --batch-sizes 128

Needs PyTorch for its rows: pip install torch==2.13.0 (a C++ compiler for torch.compile).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from _machine import best_of, describe_machine, matmul_rate, table, warm_up  # noqa: E402

H = W = 28
CHANNELS = (6, 16)
KERNEL = 5
HIDDEN = 128
CLASSES = 10
LR = 0.05


# --- data ----------------------------------------------------------------------------------

def make_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``X (n, 28, 28, 1)`` float32 in [0, 1] and ``y (n,)`` int32: each class is a smooth
    random template, each image its class's template shifted by up to 2 pixels plus noise, so
    the task is learnable (a CNN gets well above chance in one epoch) and nothing is sparse."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((CLASSES, 7, 7)).astype(np.float32)
    templates = np.kron(coarse, np.ones((4, 4), np.float32))  # (10, 28, 28) blocky shapes
    y = rng.integers(0, CLASSES, n).astype(np.int32)
    X = np.empty((n, H, W, 1), np.float32)
    shifts = rng.integers(-2, 3, (n, 2))
    for start in range(0, n, 8192):
        stop = min(start + 8192, n)
        block = templates[y[start:stop]]
        for i in range(stop - start):
            block[i] = np.roll(block[i], tuple(shifts[start + i]), axis=(0, 1))
        noise = rng.normal(0, 0.3, block.shape).astype(np.float32)
        X[start:stop, :, :, 0] = np.clip(block + noise, 0, 1)
    return X, y


# --- FLOPs and the machine's rates ---------------------------------------------------------

def layer_macs() -> dict[str, int]:
    """Multiply-adds of one example's forward pass, per layer (SAME padding: every output
    position does the full kernel; the pools and relus add no multiply-adds)."""
    c1, c2 = CHANNELS
    k2 = KERNEL * KERNEL
    return {
        "conv1": H * W * c1 * k2 * 1,                    # 28*28*6*25    = 117,600
        "conv2": (H // 2) * (W // 2) * c2 * k2 * c1,     # 14*14*16*150  = 470,400
        "dense1": (H // 4) * (W // 4) * c2 * HIDDEN,     # 784*128       = 100,352
        "dense2": HIDDEN * CLASSES,                      # 128*10        = 1,280
    }


def train_flops_per_example() -> tuple[float, float]:
    """(conv FLOPs, dense FLOPs) of one training example: 2 FLOPs per multiply-add, x3 for
    the forward pass and a backward pass of about twice its cost."""
    m = layer_macs()
    return 3 * 2 * (m["conv1"] + m["conv2"]), 3 * 2 * (m["dense1"] + m["dense2"])


def conv_rate(batch: int = 512, repeats: int = 5) -> tuple[float, dict]:
    """FLOP/s of this network's two convolutions run forward on ``batch`` images: the fastest
    of XLA's convolution (channels-last), the form sgdlab runs them in
    (:func:`sgdlab.convolution.conv2d_same`: banded matrix products on a CPU for so few input
    channels, counted at the convolution's FLOPs) and PyTorch (channels-first) when
    installed. Returns the best rate and each one's rate."""
    import jax
    import jax.numpy as jnp
    m = layer_macs()
    flops = 2 * batch * (m["conv1"] + m["conv2"])
    c1, c2 = CHANNELS
    rng = np.random.default_rng(0)
    x1 = rng.random((batch, H, W, 1), np.float32)
    x2 = rng.random((batch, H // 2, W // 2, c1), np.float32)
    w1 = rng.random((KERNEL, KERNEL, 1, c1), np.float32)
    w2 = rng.random((KERNEL, KERNEL, c1, c2), np.float32)
    dn = ("NHWC", "HWIO", "NHWC")

    @jax.jit
    def convs(x1, x2, w1, w2):
        a = jax.lax.conv_general_dilated(x1, w1, (1, 1), "SAME", dimension_numbers=dn)
        b = jax.lax.conv_general_dilated(x2, w2, (1, 1), "SAME", dimension_numbers=dn)
        return a, b

    @jax.jit
    def convs_in_loop(x1, x2, w1, w2):
        # the same two convolutions as the body of a 4-trip loop (scaled by the trip index so
        # nothing is hoisted out): a compiled training loop runs its steps this way
        def body(i, acc):
            s = (i + 1).astype(jnp.float32)
            a, b = convs.__wrapped__(x1 * s, x2 * s, w1, w2)
            return acc + a[0, 0, 0, 0] + b[0, 0, 0, 0]
        return jax.lax.fori_loop(0, 4, body, jnp.float32(0))

    args = [jnp.asarray(a) for a in (x1, x2, w1, w2)]
    jax.block_until_ready(convs(*args))
    jax.block_until_ready(convs_in_loop(*args))
    rates = {"xla": flops / best_of(lambda: jax.block_until_ready(convs(*args)), repeats)}
    loop = 4 * flops / best_of(lambda: jax.block_until_ready(convs_in_loop(*args)), 2)
    try:
        from sgdlab.convolution import conv2d_same
    except ImportError:  # an sgdlab without it
        pass
    else:
        own = jax.jit(lambda x1, x2, w1, w2: (conv2d_same(x1, w1.transpose(3, 0, 1, 2)),
                                              conv2d_same(x2, w2.transpose(3, 0, 1, 2))))
        jax.block_until_ready(own(*args))
        rates["sgdlab"] = flops / best_of(lambda: jax.block_until_ready(own(*args)), repeats)
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return max(rates.values()), {**rates, "xla in a loop": loop}
    torch.set_num_threads(os.cpu_count())
    t1 = torch.from_numpy(x1.transpose(0, 3, 1, 2).copy())
    t2 = torch.from_numpy(x2.transpose(0, 3, 1, 2).copy())
    tw1 = torch.from_numpy(w1.transpose(3, 2, 0, 1).copy())
    tw2 = torch.from_numpy(w2.transpose(3, 2, 0, 1).copy())

    def tconvs():
        with torch.no_grad():
            F.conv2d(t1, tw1, padding=KERNEL // 2)
            F.conv2d(t2, tw2, padding=KERNEL // 2)

    tconvs()
    rates["torch"] = flops / best_of(tconvs, repeats)
    return max(rates.values()), {**rates, "xla in a loop": loop}


# --- PyTorch -------------------------------------------------------------------------------

def torch_model():
    import torch.nn as nn
    c1, c2 = CHANNELS
    pad = KERNEL // 2
    return nn.Sequential(
        nn.Conv2d(1, c1, KERNEL, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, KERNEL, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear((H // 4) * (W // 4) * c2, HIDDEN), nn.ReLU(),
        nn.Linear(HIDDEN, CLASSES))


def torch_epoch(X_nchw, y, batch_size, compiled=False, repeats=2):
    """Best-of-``repeats`` seconds of one PyTorch epoch and the seconds spent before timing
    (for ``torch.compile``, compiling the full and the partial last batch's shapes).

    An index permutation per epoch (no DataLoader), ``F.cross_entropy``, ``torch.optim.SGD``;
    a last partial batch is a shorter step. Each timed epoch follows ``warm_up()``.
    """
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)
    Xt, yt = torch.from_numpy(X_nchw), torch.from_numpy(y.astype(np.int64))
    model = torch_model()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    if compiled:
        # one static graph per batch shape (full and partial last), the fastest kind, rather
        # than a dynamic-batch graph serving both after the second shape is seen
        torch._dynamo.config.automatic_dynamic_shapes = False
    net = torch.compile(model) if compiled else model
    n = len(Xt)

    def step(idx):
        loss = F.cross_entropy(net(Xt[idx]), yt[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    # warm-up steps at both batch shapes: compilation (and the allocator's first growth) is
    # excluded for every contender, as sgdlab's compile is
    t0 = time.perf_counter()
    for size in sorted({batch_size, n % batch_size} - {0}, reverse=True):
        for _ in range(3):
            step(torch.arange(size))
    setup = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        perm = torch.randperm(n)
        warm_up()
        t = time.perf_counter()
        for i in range(0, n, batch_size):
            step(perm[i:i + batch_size])
        times.append(time.perf_counter() - t)
    return min(times), setup


# --- sgdlab --------------------------------------------------------------------------------

def sgdlab_epoch(ds, batch_size, repeats=2):
    """Best-of-``repeats`` training seconds of one sgdlab epoch (``FitResult.train_seconds``:
    updates only, no compile, no evaluation) and the first run's compile seconds.

    The engine's ``train`` with no validation set (``validation_fraction=0``, evaluation only
    at the end, outside ``train_seconds``), as bench_engine times softmax and the MLP."""
    from sgdlab import TrainConfig
    from sgdlab.engine import train
    settings = dict(model="cnn", batch_size=batch_size, epochs=1, lr=LR, standardize=False,
                    eval_every="end", validation_fraction=0.0)
    # the network's options, where the configuration names them (their defaults otherwise)
    options = {"channels": CHANNELS, "kernel": KERNEL, "hidden": (HIDDEN,),
               "activation": "relu"}
    fields = getattr(TrainConfig, "__dataclass_fields__", {})
    settings.update({k: v for k, v in options.items() if k in fields})
    cfg = TrainConfig(**settings)
    runs = []
    for _ in range(repeats):
        warm_up()  # the same warm-up as every peer
        runs.append(train(ds, None, cfg))
    for r in runs:
        if r.status != "completed":
            print(f"  note: sgdlab run status {r.status!r}")
            break
    return min(r.train_seconds for r in runs), runs[0].compile_seconds


def sgdlab_dataset(X, y):
    from sgdlab.data import from_arrays
    return from_arrays(X, y)


# --- main ----------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=60_000, help="images (default 60,000)")
    ap.add_argument("--batch-sizes", default="32,128", help="comma list (default 32,128)")
    ap.add_argument("--repeats", type=int, default=2, help="timed epochs per contender; the "
                    "best is reported (default 2)")
    ap.add_argument("--quick", action="store_true",
                    help="4,096 images and one repeat, for a smoke test")
    ap.add_argument("--skip", default="",
                    help="comma list of contenders to skip: sgdlab,torch,torch-compile")
    args = ap.parse_args(argv)
    n = 4096 if args.quick else args.n
    repeats = 1 if args.quick else args.repeats
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    skip = set(filter(None, args.skip.split(",")))

    print(f"machine: {describe_machine()}")
    X, y = make_images(n)
    conv_flops, dense_flops = train_flops_per_example()
    # the rates are measured before the contenders and again after them (best of both), so
    # a busy moment on a shared machine does not lower the limit
    mm = matmul_rate()
    cv_rates = conv_rate()[1]
    print(f"data: {n:,} x 28 x 28 x 1 float32 ({X.nbytes / 1e6:.0f} MB), {CLASSES} classes, "
          f"one epoch each, best of {repeats}\n")

    X_nchw = np.ascontiguousarray(X.transpose(0, 3, 1, 2))
    ds = None
    rows, extra = [], []
    for b in batch_sizes:
        t_sg = None
        if "sgdlab" not in skip:
            try:
                if ds is None:
                    ds = sgdlab_dataset(X, y)
                t_sg, c_sg = sgdlab_epoch(ds, b, repeats)
                extra.append(f"sgdlab batch {b}: compile {c_sg:.2f} s")
            except Exception as e:  # the cnn model or N-D data not available in this sgdlab
                extra.append(f"sgdlab batch {b}: not run ({type(e).__name__}: {e})")
        results = [("sgdlab", t_sg)] if t_sg is not None else []
        if "torch" not in skip:
            results.append(("PyTorch eager", torch_epoch(X_nchw, y, b, repeats=repeats)[0]))
        if "torch-compile" not in skip:
            try:
                t, setup = torch_epoch(X_nchw, y, b, compiled=True, repeats=repeats)
                results.append(("PyTorch torch.compile", t))
                extra.append(f"torch.compile batch {b}: {setup:.1f} s compiling and warm-up")
            except Exception as e:  # e.g. no C++ compiler for inductor
                extra.append(f"torch.compile batch {b}: not run ({type(e).__name__}: {e})")
        for name, t in results:
            ratio = "" if t_sg is None or name == "sgdlab" else f"{t / t_sg:.2f}x"
            rows.append((name, b, t, ratio))

    mm = max(mm, matmul_rate())
    cv_rates = {k: max(v, cv_rates[k]) for k, v in conv_rate()[1].items()}
    cv = max(v for k, v in cv_rates.items() if k != "xla in a loop")
    limit_mm = n * (conv_flops + dense_flops) / mm
    limit_cv = n * conv_flops / cv + n * dense_flops / mm
    print(f"measured rates (best of before and after): float32 matmul {mm / 1e9:.0f} GFLOP/s; "
          "this network's two convs forward " +
          ", ".join(f"{k} {v / 1e9:.1f}" for k, v in cv_rates.items()) + " GFLOP/s")
    print(f"network: {sum(layer_macs().values()) * 2 / 1e6:.2f} MFLOP forward per image, "
          f"{(conv_flops + dense_flops) / 1e6:.2f} MFLOP per training image (x3), "
          f"{n * (conv_flops + dense_flops) / 1e9:.0f} GFLOP per epoch")
    print(f"FLOP limit per epoch: {limit_mm:.2f} s at the matmul rate, {limit_cv:.2f} s with "
          f"the convs at the conv rate\n")
    rows = [(name, b, f"{t:.3f}", f"{n / t:,.0f}", ratio, f"{100 * limit_mm / t:.0f}%",
             f"{100 * limit_cv / t:.0f}%") for name, b, t, ratio in rows]
    for b in batch_sizes:
        rows.append(("FLOP limit (matmul rate)", b, f"{limit_mm:.3f}", f"{n / limit_mm:,.0f}",
                     "", "100%", ""))
    rows.sort(key=lambda r: r[1])  # each batch size's rows together, its limit last
    print(table(rows, ("contender", "batch", "s/epoch", "images/s", "peer/sgdlab",
                       "% matmul limit", "% conv limit")))
    for line in extra:
        print(line)
    print("peer/sgdlab above 1 means sgdlab is faster; % limit = limit time / contender time")


if __name__ == "__main__":
    main()
