"""The contenders sgdlab is measured against, each training one epoch on the same arrays.

Every function takes ``X (N, d) float32``, ``y (N,) int`` and returns seconds of training
(data already in memory, model built, nothing compiled or parsed inside the timed region
unless the peer cannot separate it, which is noted). Each timed region starts after the same
``warm_up()`` as sgdlab's (see ``_machine.warm_up``).
"""

from __future__ import annotations

import os
import time
import warnings
from functools import partial

import numpy as np

from _machine import warm_up


def torch_epoch(X, y, batch_size, hidden=None, lr=0.1, max_steps=None, threads=None):
    """PyTorch eager loop with an index permutation (no DataLoader), ``torch.optim.SGD``."""
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads or os.cpu_count())
    torch.manual_seed(0)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y.astype(np.int64))
    d, k = X.shape[1], int(y.max()) + 1
    if hidden:
        model = torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.ReLU(),
                                    torch.nn.Linear(hidden, k))
    else:
        model = torch.nn.Linear(d, k)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    n = len(X)
    perm = torch.randperm(n)
    starts = range(0, n, batch_size)
    if max_steps:
        starts = list(starts)[:max_steps]
    warm_up()
    t = time.perf_counter()
    for i in starts:
        idx = perm[i:i + batch_size]
        loss = F.cross_entropy(model(Xt[idx]), yt[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def numpy_epoch(X, y, batch_size, lr=0.1):
    """Hand-written NumPy softmax regression: gather, scores, softmax, gradient, update."""
    n, d = X.shape
    k = int(y.max()) + 1
    W, b = np.zeros((d, k), np.float32), np.zeros(k, np.float32)
    onehot = np.eye(k, dtype=np.float32)
    perm = np.random.default_rng(0).permutation(n)
    warm_up()
    t = time.perf_counter()
    for i in range(0, n, batch_size):
        idx = perm[i:i + batch_size]
        xb = X[idx]
        s = xb @ W + b
        s -= s.max(1, keepdims=True)
        p = np.exp(s)
        p /= p.sum(1, keepdims=True)
        g = (p - onehot[y[idx]]) / len(idx)
        W -= lr * (xb.T @ g)
        b -= lr * g.sum(0)
    return time.perf_counter() - t


def sklearn_epoch(X, y):
    """scikit-learn ``SGDClassifier`` (per-sample SGD, one-vs-rest), ``max_iter=1``: one epoch."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDClassifier
    clf = SGDClassifier(loss="log_loss", max_iter=1, tol=None, learning_rate="constant",
                        eta0=0.01, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm_up()
        t = time.perf_counter()
        clf.fit(X, y)
        return time.perf_counter() - t


def write_vw(X, y, path):
    """Vowpal Wabbit text format, labels 1..k, features by index."""
    with open(path, "w") as f:
        for row, label in zip(X, y):
            f.write(f"{int(label) + 1} |f " +
                    " ".join(f"{j}:{v:.5g}" for j, v in enumerate(row.tolist())) + "\n")


def vw_epoch(X, y, workdir):
    """Vowpal Wabbit ``--sgd --oaa k``, one pass read from its binary cache.

    The text file and cache are made first (untimed); the timed run reads the cache only.
    """
    import vowpalwabbit
    k = int(y.max()) + 1
    text, cache = os.path.join(workdir, "data.vw"), os.path.join(workdir, "data.vw.cache")
    if not os.path.exists(cache):
        if not os.path.exists(text):
            write_vw(X, y, text)
        vowpalwabbit.Workspace(arg_list=["--sgd", "--oaa", str(k), "-d", text,
                                         "--cache_file", cache, "--quiet"]).finish()
    warm_up()
    t = time.perf_counter()
    ws = vowpalwabbit.Workspace(arg_list=["--sgd", "--oaa", str(k), "-d", text,
                                          "--cache_file", cache, "--quiet", "--passes", "1"])
    ws.finish()
    return time.perf_counter() - t


def jax_optax_epoch(X, y, batch_size, hidden=None, lr=0.1, repeats=3):
    """What a JAX user writes: a ``jax.jit``-ed ``optax.sgd`` step called once per batch from
    a Python loop, best of ``repeats`` epochs.

    The same model (softmax regression ``X W + b``, or ``d-hidden-k`` with relu and He
    initialisation) and loss (mean softmax cross-entropy) as sgdlab. ``X``, ``y`` and the
    parameters are on the device before the clock starts; each step receives its batch's
    indices (a host slice of one shuffled permutation per epoch, as sgdlab draws them) and
    gathers the rows inside the jitted step; the params and optimiser state are donated.
    The last partial batch is a step of its own with the rows left (mean over those rows, as
    sgdlab's masked last batch); its shape is compiled once, before timing, like the full one.
    ``block_until_ready`` is called once, at the end of the epoch. Returns seconds per epoch.
    """
    import jax
    import jax.numpy as jnp
    import optax

    n, d = X.shape
    k = int(y.max()) + 1
    widths = (d, hidden, k) if hidden else (d, k)
    keys = jax.random.split(jax.random.PRNGKey(0), len(widths) - 1)
    params = [{"W": jax.random.normal(kk, (a, b), jnp.float32) * (np.sqrt(2 / a) if hidden
                                                                  else 0.0),
               "b": jnp.zeros(b, jnp.float32)} for kk, a, b in zip(keys, widths[:-1], widths[1:])]

    def apply(params, x):
        for layer in params[:-1]:
            x = jax.nn.relu(x @ layer["W"] + layer["b"])
        return x @ params[-1]["W"] + params[-1]["b"]

    def loss_fn(params, x, t):
        return optax.softmax_cross_entropy_with_integer_labels(apply(params, x), t).mean()

    opt = optax.sgd(lr)

    # donating params and state lets XLA update them in place (10-15% faster at batch 32 here
    # than without; gathering the rows inside the step beats slicing a device permutation
    # outside it, which costs one more dispatch per step)
    @partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, X, y, idx):
        loss, grads = jax.value_and_grad(loss_fn)(params, X[idx], y[idx])
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss
    Xd = jax.block_until_ready(jax.device_put(X))
    yd = jax.block_until_ready(jax.device_put(y.astype(np.int32)))
    opt_state = opt.init(params)
    rng = np.random.default_rng(0)

    def epoch(params, opt_state):
        perm = rng.permutation(n).astype(np.int32)
        for i in range(0, n, batch_size):
            params, opt_state, _ = step(params, opt_state, Xd, yd, perm[i:i + batch_size])
        return jax.block_until_ready((params, opt_state))

    # compile both batch shapes (full and the partial last one) outside the clock
    for size in {batch_size, n % batch_size} - {0}:
        params, opt_state, _ = step(params, opt_state, Xd, yd, np.arange(size, dtype=np.int32))
    jax.block_until_ready(params)
    times = []
    for _ in range(repeats):
        warm_up()
        t = time.perf_counter()
        params, opt_state = epoch(params, opt_state)
        times.append(time.perf_counter() - t)
    return min(times)
