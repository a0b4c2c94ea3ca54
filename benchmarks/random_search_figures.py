"""The random-search figures quoted in docs/gradients-and-search.md.

Softmax regression on the built-in digits (default settings and seed: 80 % / 20 % split,
standardised features), final validation accuracy of

* ``random-global``, ``random-local`` and ``random-weighted`` search, ``ATTEMPTS`` attempts
  each (evaluations of the objective on the whole training set);
* mini-batch SGD, batch 32, 5 epochs (lr 0.1).

Results are deterministic by seed on a CPU (see docs/reproducibility.md); times are not, and
are printed for information only. ``tests/test_docs.py`` runs this script with ``--json`` and
checks that the page quotes the accuracies rounded to 2 decimals.

    python benchmarks/random_search_figures.py [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import sgdlab

ATTEMPTS = 1000
SGD_BATCH = 32
SGD_EPOCHS = 5
METHODS = ("random-global", "random-local", "random-weighted")


def final_accuracy(result) -> float:
    """The last evaluation's validation accuracy (every run evaluates at its end)."""
    return float(result.history.column("val_accuracy")[-1])


def figures(attempts: int = ATTEMPTS) -> dict[str, tuple[float, float]]:
    """``{name: (validation accuracy, train seconds)}`` for the three searches and SGD."""
    out = {}
    for method in METHODS:
        r = sgdlab.fit("digits", model="softmax", method=method, attempts=attempts, plots=False)
        out[method] = (final_accuracy(r), r.train_seconds)
    r = sgdlab.fit("digits", model="softmax", batch_size=SGD_BATCH, epochs=SGD_EPOCHS,
                   plots=False)
    out[f"sgd-batch{SGD_BATCH}-{SGD_EPOCHS}epochs"] = (final_accuracy(r), r.train_seconds)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true",
                    help="print {name: validation accuracy} as JSON instead of a table")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = figures()
    if args.json:
        print(json.dumps({name: acc for name, (acc, _) in rows.items()}))
        return
    print(f"digits, softmax, default seed; {ATTEMPTS} attempts per search, "
          f"SGD batch {SGD_BATCH} for {SGD_EPOCHS} epochs")
    print(f"{'method':<26} {'val accuracy':>12} {'(2 dp)':>7} {'train s':>8}")
    for name, (acc, secs) in rows.items():
        print(f"{name:<26} {acc:>12.4f} {acc:>7.2f} {secs:>8.3f}")
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
