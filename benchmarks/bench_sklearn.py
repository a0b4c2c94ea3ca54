"""sgdlab's MiniBatchSGDClassifier against scikit-learn's SGDClassifier, on the same data.

Both train linear classifiers for the same number of epochs on the same standardised training
rows and are scored on the same held-out rows. ``SGDClassifier`` updates after every example
(batch 1) and trains one-vs-rest; sgdlab takes ``B`` examples per step in one compiled program.
Compared: the same hinge loss (one-vs-rest in both), and sgdlab's softmax.

Each contender is timed ``--repeats`` times, alternating (A B A B ...), and the fastest fit is
reported; sgdlab's first fit, which compiles its program, is reported apart ("first").
Ratios are SGDClassifier's fit time over the contender's: above 1 means faster than
scikit-learn.

    python benchmarks/bench_sklearn.py                 # digits and a 60000 x 784 synthetic set
    python benchmarks/bench_sklearn.py --n 20000 --epochs 5
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np


def machine() -> str:
    import jax
    import sklearn
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, "
            f"jax {jax.__version__} ({jax.default_backend()}), scikit-learn {sklearn.__version__}")


def datasets(n: int):
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from sgdlab.data import GENERATORS

    X, y = load_digits(return_X_y=True)
    big = GENERATORS["mnist-like"](n=n, seed=0)
    for name, X, y in (("digits 1797x64", X, y), (f"mnist-like {n}x784", big.X, big.y)):
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
        scaler = StandardScaler().fit(Xtr)
        yield (name, scaler.transform(Xtr).astype(np.float32), ytr,
               scaler.transform(Xte).astype(np.float32), yte)


def contenders(epochs: int, batches: list[int]):
    """``(label, loss, batch, factory)``; factory() returns an unfitted estimator."""
    from sklearn.linear_model import SGDClassifier

    from sgdlab.estimators import MiniBatchSGDClassifier

    out = [("SGDClassifier", "hinge", 1, lambda: SGDClassifier(
        loss="hinge", alpha=1e-4, max_iter=epochs, tol=None, random_state=0,
        n_jobs=os.cpu_count()))]
    for loss in ("hinge", "softmax"):
        for b in batches:
            # One rate, 0.1 at batch 32, scaled by sqrt(B / 32) for the other batch sizes.
            out.append(("sgdlab", loss, b, lambda loss=loss, b=b: MiniBatchSGDClassifier(
                loss=loss, batch_size=b, learning_rate=0.1, lr_scaling="sqrt", base_batch=32,
                alpha=1e-4, max_iter=epochs, random_state=0)))
    return out


def run(n: int, epochs: int, batches: list[int], repeats: int) -> None:
    print(machine())
    print(f"{epochs} epochs each, fastest of {repeats} alternating fits\n")
    head = (f"{'data':<22} {'contender':<14} {'loss':<8} {'batch':>5} {'first s':>8} "
            f"{'fit s':>8} {'test acc':>8} {'speed-up':>9} {'acc diff':>9}")
    print(head)
    print("-" * len(head))
    for name, Xtr, ytr, Xte, yte in datasets(n):
        entries = contenders(epochs, batches)
        first, best = {}, {}
        acc = {}
        for r in range(repeats):
            for i, (_, _, _, make) in enumerate(entries):
                est = make()
                t = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # SGDClassifier's max_iter warning
                    est.fit(Xtr, ytr)
                dt = time.perf_counter() - t
                first.setdefault(i, dt)
                best[i] = min(best.get(i, np.inf), dt)
                acc[i] = est.score(Xte, yte)
        for i, (label, loss, b, _) in enumerate(entries):
            print(f"{name:<22} {label:<14} {loss:<8} {b:>5} {first[i]:>8.3f} {best[i]:>8.3f} "
                  f"{acc[i]:>8.4f} {best[0] / best[i]:>8.2f}x {acc[i] - acc[0]:>+9.4f}")
        print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=60000, help="rows of the synthetic set")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batches", default="1,32,256", help="sgdlab batch sizes")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    run(args.n, args.epochs, [int(b) for b in args.batches.split(",")], args.repeats)


if __name__ == "__main__":
    main()
