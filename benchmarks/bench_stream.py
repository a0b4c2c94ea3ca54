"""Streaming from disk vs training in memory: peak RSS and throughput, warm and cold cache.

    python benchmarks/bench_stream.py                       # 50M x 100 float32 (~20 GB)
    python benchmarks/bench_stream.py --rows 2000000        # a small run (~0.8 GB)

Steps, each in its own process so each peak RSS (``ru_maxrss``) is its own:

1. ``write``: generate a logistic-regression problem chunk by chunk (``x ~ N(0, I)``,
   ``y = [x . w* + noise > 0]``) straight into a shard set: never more than a chunk in memory.
2. ``stream`` (warm): one epoch of logistic regression streamed through ``--buffer-mb``, after
   a read of every shard so the files sit in the page cache as far as memory allows.
3. ``stream`` (cold): the same after evicting the files from the page cache
   (``/proc/sys/vm/drop_caches`` if writable, else ``posix_fadvise(DONTNEED)`` per file).
4. ``memory``: the in-memory engine on the first ``--memory-rows`` rows (a slice that fits),
   one epoch, same model, batch size and sampling.

Throughput is examples per second of training time (reading and waiting for the read-ahead
included for the streamed runs; compilation and evaluation excluded for both). Targets from
the issue: peak RSS <= 2 GB streamed; warm throughput >= 70 % of in-memory.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time

import numpy as np


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def phase_write(a) -> dict:
    from sgdlab.data.convert import write_shards
    d, chunk = a.features, 500_000
    w_true = np.random.default_rng(1).normal(size=d).astype(np.float32)

    def chunks():
        for i, start in enumerate(range(0, a.rows, chunk)):
            rng = np.random.default_rng([a.seed, i])
            X = rng.standard_normal((min(chunk, a.rows - start), d), dtype=np.float32)
            noise = rng.standard_normal(len(X), dtype=np.float32)
            yield X, (X @ w_true + noise > 0).astype(np.int32)

    t = time.perf_counter()
    write_shards(a.dir, chunks(), a.rows, d, source="bench_stream synthetic")
    secs = time.perf_counter() - t
    size = sum(os.path.getsize(os.path.join(a.dir, f)) for f in os.listdir(a.dir))
    return {"bytes": size, "seconds": secs, "peak_rss_mb": peak_rss_mb()}


def _shard_files(a):
    return [os.path.join(a.dir, f) for f in sorted(os.listdir(a.dir)) if f.endswith(".npy")]


def warm_cache(a) -> None:
    for f in _shard_files(a):
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass


def drop_cache(a) -> str:
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as fh:
            fh.write("1\n")
        return "drop_caches"
    except OSError:
        for f in _shard_files(a):
            fd = os.open(f, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
        return "posix_fadvise(DONTNEED)"


def _config(a) -> dict:
    return dict(model="logistic", batch_size=a.batch_size, epochs=1, lr=0.1,
                sampling=a.sampling, eval_every="end", seed=0)


def phase_stream(a) -> dict:
    import sgdlab
    from sgdlab.data.shards import ShardSet
    shards = ShardSet(a.dir)
    # a small in-memory validation set: the last block, so evaluation stays a footnote
    Xv, yv = shards.read_block(shards.n_blocks - 1)
    blocks = np.arange(shards.n_blocks - 1)
    from sgdlab.engine.stream_fit import train_shards
    from sgdlab.data import Dataset
    config = sgdlab.TrainConfig(**_config(a), buffer_mb=a.buffer_mb)
    r = train_shards(shards, config, blocks=blocks,
                     validation=Dataset(Xv, yv, classes=shards.classes))
    return {"examples": r.examples, "train_seconds": r.train_seconds,
            "examples_per_second": r.examples / r.train_seconds,
            "val_accuracy": r.history[-1]["val_accuracy"], "load_rows": r.extra["load_rows"],
            "peak_rss_mb": peak_rss_mb()}


def phase_memory(a) -> dict:
    import sgdlab
    from sgdlab.data import Dataset
    from sgdlab.data.shards import ShardSet
    from sgdlab.engine import train
    shards = ShardSet(a.dir)
    rows, parts = 0, []
    for b in range(shards.n_blocks - 1):
        if rows >= a.memory_rows:
            break
        parts.append(shards.read_block(b))
        rows += len(parts[-1][1])
    X = np.concatenate([p[0] for p in parts])[:a.memory_rows]
    y = np.concatenate([p[1] for p in parts])[:a.memory_rows]
    del parts
    Xv, yv = shards.read_block(shards.n_blocks - 1)
    r = train(Dataset(X, y, classes=shards.classes), Dataset(Xv, yv, classes=shards.classes),
              sgdlab.TrainConfig(**_config(a)))
    return {"examples": r.examples, "train_seconds": r.train_seconds,
            "examples_per_second": r.examples / r.train_seconds,
            "val_accuracy": r.history[-1]["val_accuracy"], "peak_rss_mb": peak_rss_mb()}


def run_phase(name: str, a) -> dict:
    argv = [sys.executable, __file__, "--phase", name, "--dir", a.dir, "--rows", str(a.rows),
            "--features", str(a.features), "--batch-size", str(a.batch_size),
            "--buffer-mb", str(a.buffer_mb), "--memory-rows", str(a.memory_rows),
            "--sampling", a.sampling]
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    if out.returncode:
        sys.exit(f"phase {name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> str:
    import jax
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; python "
            f"{platform.python_version()}, jax {jax.__version__}, numpy {np.__version__}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rows", type=int, default=50_000_000)
    p.add_argument("--features", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--sampling", default="shuffle")
    p.add_argument("--buffer-mb", type=float, default=64.0)
    p.add_argument("--memory-rows", type=int, default=2_000_000,
                   help="rows of the in-memory slice (must fit in RAM)")
    p.add_argument("--dir", default="/tmp/sgdlab-bench-stream")
    p.add_argument("--keep", action="store_true", help="keep the shard set afterwards")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--phase", choices=["write", "stream", "memory"], help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.phase:
        print(json.dumps({"write": phase_write, "stream": phase_stream,
                          "memory": phase_memory}[a.phase](a)))
        return

    print(f"machine: {machine()}")
    a.memory_rows = min(a.memory_rows, a.rows // 2)
    if os.path.exists(a.dir):
        shutil.rmtree(a.dir)
    try:
        w = run_phase("write", a)
        print(f"wrote {a.rows:,} x {a.features} float32: {w['bytes'] / 1e9:.2f} GB in "
              f"{w['seconds']:.0f} s (peak RSS {w['peak_rss_mb']:.0f} MB)")
        warm_cache(a)
        warm = run_phase("stream", a)
        how = drop_cache(a)
        cold = run_phase("stream", a)
        mem = run_phase("memory", a)
    finally:
        if not a.keep:
            shutil.rmtree(a.dir, ignore_errors=True)
    print(f"batch {a.batch_size}, sampling {a.sampling}, buffer {a.buffer_mb:g} MB "
          f"({warm['load_rows']:,} rows per load), one epoch of logistic regression")
    print(f"{'run':<34}{'examples':>14}{'ex/s':>14}{'vs memory':>11}{'peak RSS MB':>13}"
          f"{'val acc':>9}")
    for label, r in ((f"in memory ({a.memory_rows:,} rows)", mem),
                     ("streamed, warm page cache", warm), (f"streamed, cold ({how})", cold)):
        print(f"{label:<34}{r['examples']:>14,}{r['examples_per_second']:>14,.0f}"
              f"{r['examples_per_second'] / mem['examples_per_second']:>10.0%} "
              f"{r['peak_rss_mb']:>12,.0f}{r['val_accuracy']:>9.4f}")


if __name__ == "__main__":
    main()
