"""Benchmark: is the default ``sgdlab sweep`` answer right, and what does it cost?

For each problem (the digits with softmax, the digits with an MLP, a synthetic 60,000 x 784
softmax problem) this script

1. runs the default sweep (learning-rate search per batch size, runs stop at the target) and
   prints its wall time, the training programs it compiled, and its recommendation;
2. runs, in the same process, an exhaustive grid at the same target: every batch size at every
   learning rate ``lr_0(B) * 2^k`` for ``k = -4 .. 8`` (the search's points lie on this
   lattice), the same seeds, and finds the grid's best (B, lr) by median time to target;
3. prints the ratio of the recommendation's median time to target to the grid's best, both
   read from the grid (the same conditions), and the ratio with the search's own measurement.

The target of the issue is a ratio <= 1.2. Times are training seconds (evaluation and
compilation excluded), medians over 3 seeds.

    python benchmarks/bench_sweep.py [--quick] [--problems digits-softmax,digits-mlp,synthetic]
"""

from __future__ import annotations

import argparse
import math
import sys
import time


from _machine import describe_machine, warm_up

from sgdlab.api import as_dataset
from sgdlab.data.synthetic import mnist_like
from sgdlab.engine import TrainConfig, cache
from sgdlab.lab.sweep import SweepConfig, run_sweep

GRID = tuple(2.0 ** k for k in range(-4, 9))


PROBLEMS = {
    "digits-softmax": lambda: (as_dataset("digits"), TrainConfig(model="softmax")),
    "digits-mlp": lambda: (as_dataset("digits"), TrainConfig(model="mlp", hidden=(64,))),
    # The engine benchmark's 60,000 x 784 problem (sgdlab.data.synthetic.mnist_like).
    "synthetic": lambda: (mnist_like(), TrainConfig(model="softmax")),
}


def _ms(s: float) -> str:
    return f"{s * 1000:.3g} ms" if math.isfinite(s) else "never"


def bench(name: str, quick: bool) -> dict:
    data, base = PROBLEMS[name]()
    sizes = (1, 4, 16, 64, 256, 1024) if quick else None
    cache.clear()
    warm_up()
    t = time.perf_counter()
    found = run_sweep(data, SweepConfig(batch_sizes=sizes), base)
    wall = time.perf_counter() - t
    built = cache.stats()["built"]
    rec = found.recommendation
    print(f"\n== {name}: {found.n_train} training examples, target {found.target:g} "
          f"({found.target_source or 'given'})")
    print(f"default sweep: {wall:.1f} s wall, {len(found.records)} runs, "
          f"{built['chunk']} training programs compiled for {len(found.per_batch)} batch "
          f"sizes ({built['evaluate']} evaluators)")
    if rec["batch_size"] is None:
        print("  no recommendation: " + " ".join(rec["sentences"]))
        return {"name": name, "ratio": math.nan}
    print(f"  recommends batch {rec['batch_size']} at lr {rec['lr']:.4g}: median "
          f"{_ms(rec['seconds'])} (fastest median: batch {rec['fastest']}; tied "
          f"{rec['tied']})")

    warm_up()
    t = time.perf_counter()
    grid = run_sweep(data, SweepConfig(batch_sizes=sizes, lr_grid=GRID, target=found.target,
                                       probe=False, noise=False, confirm=False), base)
    grid_wall = time.perf_counter() - t
    points = {(g["batch_size"], round(g["lr"], 12)): g for g in grid.groups}
    best = min(grid.groups, key=lambda g: (g["time_median"], g["batch_size"]))
    mine = points.get((rec["batch_size"], round(rec["lr"], 12)))
    print(f"exhaustive grid ({len(GRID)} lrs per batch size, {len(grid.records)} runs, "
          f"{grid_wall:.1f} s): best batch {best['batch_size']} at lr {best['lr']:.4g}, median "
          f"{_ms(best['time_median'])} in {best['steps_median']:.0f} steps")
    ratio = mine["time_median"] / best["time_median"] if mine else math.nan
    own = rec["seconds"] / best["time_median"]
    steps_best = min((g["steps_median"] for g in grid.groups
                      if g["batch_size"] == rec["batch_size"]), default=math.nan)
    if mine:
        print(f"  the recommendation in the grid: median {_ms(mine['time_median'])}, "
              f"{mine['steps_median']:.0f} steps (fewest steps at that batch size in the "
              f"grid: {steps_best:.0f})")
    print(f"RATIO recommendation / grid best = {ratio:.2f} (both from the grid); "
          f"{own:.2f} with the search's own measurement (target <= 1.2)")
    return {"name": name, "wall": wall, "ratio": ratio, "own": own,
            "compiled": built["chunk"], "sizes": len(found.per_batch)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="6 batch sizes instead of 11")
    p.add_argument("--problems", default=",".join(PROBLEMS),
                   help=f"comma-separated, from {', '.join(PROBLEMS)}")
    args = p.parse_args(argv)
    print(describe_machine())
    rows = [bench(name, args.quick) for name in args.problems.split(",")]
    print("\nsummary:")
    for r in rows:
        if math.isfinite(r.get("ratio", math.nan)):
            print(f"  {r['name']:15s} sweep {r['wall']:6.1f} s, {r['compiled']} programs for "
                  f"{r['sizes']} batch sizes, ratio {r['ratio']:.2f} (search's own "
                  f"{r['own']:.2f})")
        else:
            print(f"  {r['name']:15s} no ratio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
