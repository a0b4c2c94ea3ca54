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
