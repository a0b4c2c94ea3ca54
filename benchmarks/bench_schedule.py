"""Benchmark: does a batch-size warmup built from the measured critical batch size beat the best
fixed batch size?

For each workload (the generated ones of ``bench_sweep.py``, no download) this script runs, in
one process:

1. ``sgdlab sweep --batch-warmup`` at the workload's target: the best fixed batch size (the
   sweep's pick at its tuned learning rate), the critical batch size over training measured
   by branching (printed per checkpoint: median and range over the sweep's seeds), the warmup
   schedule built from it and the sweep's own verdict; the fixed-batch sweep's wall time and
   the warmup's beside it, and the training programs the warmup compiled;
2. a **plain doubling schedule**: the reference batch size B0 doubled at every checkpoint of
   the same curve (each phase at its tuned learning rate), what a user might write by hand.

Every contender (best fixed, measured schedule, doubling schedule) is then **re-measured with
fresh seeds** that none of them used: each seed's run is evaluated to find its steps and
examples to the target, then replayed for exactly its steps, every contender's replays
interleaved in rounds of random order (sgdlab's own timing, identical for all). The script
prints, per contender, the median steps, examples and seconds to the target, the seconds'
range and the ratio to the fastest.

    python benchmarks/bench_schedule.py                         # demo and mnist-mlp (minutes)
    python benchmarks/bench_schedule.py --workloads cnn          # a CNN on images
    python benchmarks/bench_schedule.py --quick                  # a smoke run: 4 batch sizes
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass

from _machine import describe_machine
from bench_sweep import WORKLOADS

from sgdlab.data import load_data
from sgdlab.data.split import split
from sgdlab.engine import TrainConfig, cache
from sgdlab.lab.measure import crossing, median, steps_to_target
from sgdlab.lab.runbook import RunBook
from sgdlab.lab.sweep import SweepConfig, run_config, run_sweep
from sgdlab.lab.timing import time_replays
from sgdlab.lab.warmup_schedule import (doubling_schedule, steps_for_examples,
                                        without_unstarted_phases)

FRESH_SEED = 7000   # re-measurement seeds start here: neither the sweep nor the warmup used them


@dataclass(frozen=True)
class Item:
    """One fresh seed's run of one contender to replay for ``steps`` steps."""

    group: str
    seed: int
    steps: int


def ms(s: float) -> str:
    return f"{s * 1000:.3g} ms" if math.isfinite(s) else "never"


def count(values) -> str:
    m = median(values)
    return f"{m:,.0f}" if math.isfinite(m) else "never"


def contender_configs(result, base: TrainConfig, n: int, target: float, doubling) -> dict:
    """``{label: config_of(seed, max_steps, evaluated)}`` of the best fixed batch size, the
    measured schedule (if the curve gave one) and the doubling schedule."""
    sweep = SweepConfig(target=target)
    pick = result.recommendation
    row = result.batch(pick.batch_size)
    curve = result.warmup.curve
    seen = curve.reference_steps * curve.reference_batch

    def fixed(seed, steps, evaluated):
        cfg = run_config(sweep, base, n, pick.batch_size, pick.lr, seed,
                         target if evaluated else None, steps or math.ceil(3 * row.steps_median),
                         row.steps_median)
        return cfg if evaluated else cfg.replace(eval_every="end")

    def scheduled(text):
        from sgdlab.engine.batch_schedule import BatchSchedule
        schedule = BatchSchedule.parse(text)
        first = schedule.phases[0]
        expected = steps_for_examples(schedule, seen)

        def config_of(seed, steps, evaluated):
            cfg = run_config(sweep, base, n, first.batch_size, first.lr, seed,
                             target if evaluated else None,
                             steps or steps_for_examples(schedule, 3 * seen), expected)
            cfg = cfg.replace(batch_schedule=text)  # every phase in the first one's K
            return cfg if evaluated else cfg.replace(eval_every="end")
        return config_of

    out = {f"best fixed B={pick.batch_size} lr={pick.lr:.3g}": fixed}
    if result.warmup.schedule is not None:
        out[f"measured {result.warmup.schedule.schedule}"] = scheduled(
            result.warmup.schedule.schedule)
    if doubling is not None and len(doubling.phases) > 1:
        out[f"doubling {doubling.text}"] = scheduled(doubling.text)
    return out


def remeasure(book: RunBook, configs: dict, target: float, seeds: int, rounds: int) -> dict:
    """``{label: (steps, examples, seconds)}`` per fresh seed (``inf``: missed)."""
    outcomes, items = {}, []
    for label, config_of in configs.items():
        rows = []
        for s in range(seeds):
            history = book.train(config_of(FRESH_SEED + s, None, True)).history
            c = crossing(history, target)
            k = steps_to_target(history, target)
            rows.append((k, math.ceil(c["examples"] - 1e-9) if c["reached"] else math.inf))
            if math.isfinite(k):
                items.append(Item(label, FRESH_SEED + s, int(k)))
        outcomes[label] = rows

    def replay(item: Item):
        cfg = configs[item.group](item.seed, item.steps, False)
        if cfg.batch_schedule:
            cfg = without_unstarted_phases(cfg, item.steps, book.train_part.n)
        result = book.train(cfg)
        if result.status != "completed" or result.steps != item.steps:
            return math.inf, 0
        return result.train_seconds, 0

    timed = time_replays(items, replay, rounds=rounds, seed=11)
    seconds = {(r.group, r.seed): timed.time(i) for i, r in enumerate(timed.replays)}
    return {label: [(k, x, seconds.get((label, FRESH_SEED + s), math.inf))
                    for s, (k, x) in enumerate(rows)] for label, rows in outcomes.items()}


def bench(name: str, args) -> list:
    spec, model, target = WORKLOADS[name]
    data = load_data(spec)
    base = TrainConfig(**model)
    parts = split(data, validation=base.validation_fraction, test=base.test_fraction,
                  seed=base.seed)
    sizes = (16, 32, 64, 128) if args.quick else None
    print(f"\n== {name}: {spec}, {model}, target validation accuracy {target}, "
          f"{parts.train.n} training rows")
    cache.clear()
    t = time.perf_counter()
    result = run_sweep(data, SweepConfig(target=target, batch_sizes=sizes, batch_warmup=True),
                       base)
    wall = time.perf_counter() - t
    w = result.warmup
    print(f"  sweep + warmup: {wall:.1f} s wall; the fixed-batch sweep {w.sweep_seconds:.1f} s, "
          f"the warmup {w.wall_seconds:.1f} s; programs compiled by the warmup: "
          f"{w.compilations}")
    print(f"  {result.recommendation.headline}")
    curve = w.curve
    if not curve.measured:
        print(f"  no curve: {curve.reason}")
        return []
    print(f"  critical batch size by branching (B0 = {curve.reference_batch}, budget "
          f"{curve.budget_examples:,} examples, tolerance {curve.tolerance:g}):")
    for p in curve.points:
        print(f"    {p.fraction:5.3f} of the way, {p.examples:>9,} examples: {p.b_crit:g} "
              f"(range {p.low:g}-{p.high:g}; per seed {p.per_seed})")
    print(f"  {w.agreement}")
    for sentence in w.sentences:
        print(f"  sweep's verdict: {sentence}")
    tuned = {r.batch_size: r.lr for r in result.batches
             if math.isfinite(r.lr) and math.isfinite(r.steps_median)}
    configs = contender_configs(result, base, parts.train.n, target,
                                doubling_schedule(curve, tuned))
    book = RunBook(parts.train, parts.validation, fingerprint="bench")
    measured = remeasure(book, configs, target, args.fresh_seeds, args.rounds)
    best = min(median([s for _, _, s in rows]) for rows in measured.values())
    print(f"  re-measured with {args.fresh_seeds} fresh seeds, {args.rounds} rounds:")
    print(f"  {'contender':60s} {'steps':>8s} {'examples':>10s} {'seconds':>10s} "
          f"{'range':>20s} {'/best':>6s}")
    out = []
    for label, rows in measured.items():
        sec = [s for _, _, s in rows]
        m = median(sec)
        fin = [x for x in sec if math.isfinite(x)]
        rng = f"{ms(min(fin))}-{ms(max(sec))}" if fin else "-"
        print(f"  {label[:60]:60s} {count([k for k, _, _ in rows]):>8s} "
              f"{count([x for _, x, _ in rows]):>10s} {ms(m):>10s} {rng:>20s} "
              f"{m / best:6.2f}")
        out.append((name, label, m / best))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workloads", default="demo,mnist-mlp",
                   help=f"comma-separated, from {', '.join(WORKLOADS)}")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run: batch sizes 16 to 128 and the demo only, unless "
                        "--workloads says otherwise")
    p.add_argument("--fresh-seeds", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3, help="timing rounds of the re-measure")
    args = p.parse_args(argv)
    if args.quick and "--workloads" not in (argv if argv is not None else sys.argv):
        args.workloads, args.fresh_seeds, args.rounds = "demo", 3, 1
    print(describe_machine())
    rows = [r for name in args.workloads.split(",") for r in bench(name, args)]
    print("\nsummary (fresh-seed median seconds to the target / the fastest contender):")
    for name, label, ratio in rows:
        print(f"  {name:10s} {label[:60]:60s} {ratio:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
