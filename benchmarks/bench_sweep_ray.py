"""Benchmark: one sweep made in this process and on a local Ray cluster of 1 and 2 workers.

Every contender makes the same sweep (the same data, settings and seeds, and the throughput
probe of the first in-process sweep, copied into each output directory so that every run's
cap, and so every record, is the same): in this process, then on a Ray cluster started here
(``ray.init(num_cpus=N)``) with ``N`` workers of one CPU each (``--cpus-per-run 1``). For each
the script prints:

- the wall time of the whole sweep and the runs it made per second;
- the start-up: seconds from the call to the first run handed to a worker (Ray: starting the
  worker processes, importing JAX there, placing the data);
- the scheduling overhead per run: seconds from a run's submission (``actor.make.remote``)
  to its start in the worker, and from its end there to its record here (median and 90th
  percentile, wall clocks of one machine);
- whether the records (keys, caps, statuses, steps, histories) equal the in-process ones.

On a machine with fewer free cores than workers, the workers share cores and the times say
little; the figures to report come from a machine with nothing else running.

    python benchmarks/bench_sweep_ray.py                              # digits, 1 and 2 workers
    python benchmarks/bench_sweep_ray.py --data "digits-augmented:n=4000,side=16" \\
        --batch-sizes 16,64,256 --seeds 3 --workers 1,2,4

Ray is an optional dependency: ``pip install -e '.[ray]'``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _machine import describe_machine

from sgdlab.api import as_dataset
from sgdlab.engine import TrainConfig
from sgdlab.engine.claim import write_marker
from sgdlab.lab.ray_executor import RayExecutor, import_ray
from sgdlab.lab.sweep import SweepConfig, run_sweep


def outcome(record) -> tuple:
    """What a record holds that no clock sets (NaN as None, so that equal means equal)."""
    def value(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v
    rows = tuple((r["step"], value(r.get("val_accuracy")), value(r.get("train_loss")))
                 for r in record.history)
    return record.key, record.cap, record.status, record.summary["steps"], rows


def with_probe(src: Path, dst: Path) -> Path:
    """``dst``: a sweep directory holding ``src``'s throughput probe and nothing else."""
    dst.mkdir()
    write_marker(dst, "sweep")
    shutil.copy(src / "throughput.json", dst / "throughput.json")
    return dst


def quantiles(values: list) -> str:
    if not values:
        return "-"
    values = sorted(values)
    p90 = values[min(len(values) - 1, math.ceil(0.9 * len(values)) - 1)]
    return f"{statistics.median(values) * 1e3:.1f} / {p90 * 1e3:.1f}"


def one_sweep(data, sweep, out: Path, executor=None) -> dict:
    """Run the sweep; ``-> {seconds, runs, startup, result}``."""
    first = []

    def callback(event):
        if event.get("event") == "run_start" and not first:
            first.append(time.perf_counter())

    t0 = time.perf_counter()
    result = run_sweep(data, sweep, TrainConfig(), out=out, callback=callback,
                       executor=executor)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "runs": len(result.records),
            "startup": (first[0] - t0) if first else math.nan, "result": result}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="digits")
    p.add_argument("--batch-sizes", default="32,128")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--target", type=float, default=0.92)
    p.add_argument("--workers", default="1,2", help="worker counts of the Ray clusters")
    args = p.parse_args(argv)
    ray = import_ray()
    data = as_dataset(args.data)
    sweep = SweepConfig(batch_sizes=tuple(int(b) for b in args.batch_sizes.split(",")),
                        seeds=args.seeds, target=args.target, noise=False, confirm=False,
                        timing_rounds=1)
    print(describe_machine())
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; data "
          f"{args.data}, batch sizes {args.batch_sizes}, {args.seeds} seeds, target "
          f"{args.target}")
    root = Path(tempfile.mkdtemp(prefix="bench-sweep-ray-"))
    try:
        probe = root / "probe"
        one_sweep(data, sweep, probe)              # the probe every contender reuses
        rows = [("in-process", one_sweep(data, sweep, with_probe(probe, root / "here")),
                 None)]
        for n in (int(w) for w in args.workers.split(",")):
            ray.init(address="local", num_cpus=n, include_dashboard=False,
                     log_to_driver=False, logging_level=logging.ERROR)
            try:
                with RayExecutor(cpus_per_run=1) as executor:
                    row = one_sweep(data, sweep, with_probe(probe, root / f"ray{n}"),
                                    executor)
                    rows.append((f"Ray, {n} worker(s)", row, executor.workers.overheads))
            finally:
                ray.shutdown()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    reference = [outcome(r) for r in rows[0][1]["result"].records]
    print(f"\n{'':20} {'wall s':>8} {'runs':>5} {'runs/s':>7} {'start-up s':>10} "
          f"{'submit->start ms':>17} {'end->record ms':>15} {'same records':>12}")
    for name, row, overheads in rows:
        same = [outcome(r) for r in row["result"].records] == reference
        print(f"{name:20} {row['seconds']:8.2f} {row['runs']:5d} "
              f"{row['runs'] / row['seconds']:7.1f} {row['startup']:10.2f} "
              f"{quantiles(overheads.submit_to_start) if overheads else '-':>17} "
              f"{quantiles(overheads.end_to_driver) if overheads else '-':>15} "
              f"{'yes' if same else 'NO':>12}")
    print("(overheads: median / 90th percentile per run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
