"""Helpers shared by the reliability tests: a small training job, and exact comparisons."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SRC = str(Path(__file__).resolve().parents[2] / "src")
TIME_COLUMNS = ("train_seconds", "wall_seconds", "eval_seconds")

#: A job small enough to run in about a second, with every moving part: momentum state,
#: several epochs, evaluation rows and checkpoints between chunk boundaries.
JOB = ["--data", "gaussian:n=600,d=8,n_classes=3", "--model", "mlp", "--hidden", "16",
       "--optimizer", "momentum", "--lr", "0.05", "--batch-size", "16", "--epochs", "4",
       "--chunk-steps", "4", "--eval-every", "10 steps", "--seed", "3",
       "--checkpoint-every", "6 steps", "--keep-checkpoints", "3", "--quiet"]
N_TRAIN = 480          # 600 examples, 20% held out for validation
STEPS_PER_EPOCH = 30   # ceil(480 / 16)
TOTAL_STEPS = 120


#: The same job streamed from a shard set (``REL_SHARDS`` in the child's environment names it):
#: 65-row loads, so a checkpoint mid-epoch falls inside a partly consumed load.
STREAM_JOB = ["--model", "mlp", "--hidden", "8", "--optimizer", "momentum", "--lr", "0.05",
              "--batch-size", "16", "--epochs", "3", "--chunk-steps", "4", "--eval-every",
              "10 steps", "--seed", "3", "--checkpoint-every", "6 steps",
              "--keep-checkpoints", "3", "--buffer-mb", "0.002", "--quiet"]


def child_env(cache_dir=None) -> dict:
    """The environment of a child process: this checkout's sources, the CPU backend, and
    optionally a shared JAX compilation cache (the same program is compiled by every child;
    loading it is what keeps ten kill trials fast, and is the same executable bit for bit)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("JAX_PLATFORMS", "cpu")
    if cache_dir is not None:
        env.update(JAX_COMPILATION_CACHE_DIR=str(cache_dir),
                   JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    return env


def start_child(*args, cache_dir=None, **popen) -> subprocess.Popen:
    """``rel_child.py`` in a fresh Python process (see its docstring)."""
    script = str(Path(__file__).with_name("rel_child.py"))
    return subprocess.Popen([sys.executable, script, *map(str, args)],
                            env=child_env(cache_dir), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def run_child(*args, cache_dir=None, timeout=300) -> subprocess.CompletedProcess:
    """Run ``rel_child.py`` to completion; returns the finished process (stdout, stderr)."""
    p = start_child(*args, cache_dir=cache_dir)
    out, err = p.communicate(timeout=timeout)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def resume_here(run_dir, trace) -> int:
    """``sgdlab train --resume RUN_DIR --quiet`` in this process, every batch traced to
    ``trace`` as ``rel_child.py RUN_DIR TRACE resume 0`` does (the streamed batches with
    ``REL_SHARDS`` set); ``-> exit code``, its messages on this process's stderr. The kill needs
    a process of its own; the resume does not, and here it pays for no JAX import."""
    from sgdlab.cli.main import main
    undo = (install_stream_trace if os.environ.get("REL_SHARDS") else install_trace)(trace)
    try:
        return main(["train", "--resume", str(run_dir), "--quiet"])
    finally:
        undo()


def history_without_time(path) -> list[dict]:
    """history.csv rows as text cells (floats are written by repr, so text equality is bit
    equality, NaN included), time columns removed."""
    rows = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    return [{k: v for k, v in r.items() if k not in TIME_COLUMNS} for r in rows]


def npz_arrays(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def final_checkpoint_arrays(run_dir) -> dict:
    from sgdlab.engine.checkpoint import CheckpointStore
    return CheckpointStore(run_dir).latest().arrays


def assert_same_arrays(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


def assert_same_run(run_dir, reference) -> None:
    """Two run directories hold the same run: history (time columns aside), final parameters
    and the final checkpoint's arrays (parameters, optimiser state, step), bit for bit."""
    assert history_without_time(Path(run_dir) / "history.csv") == \
        history_without_time(Path(reference) / "history.csv")
    assert_same_arrays(npz_arrays(Path(run_dir) / "params.npz"),
                       npz_arrays(Path(reference) / "params.npz"))
    assert_same_arrays(final_checkpoint_arrays(run_dir), final_checkpoint_arrays(reference))


def metrics(run_dir) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def file_digest(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_trace(path) -> list[dict]:
    """Trace lines ``{"g": global step, "idx": [...]}``; a torn last line is ignored."""
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for line in p.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def install_trace(path):
    """Wrap ``BatchPlan.take`` so every step's real example indices go to ``path``.

    Returns a function that undoes the wrapping. Each line is flushed before the chunk runs,
    so after a kill the file holds every batch that was handed to the device.
    """
    from sgdlab.data.sampling import BatchPlan
    return _trace(BatchPlan, path, lambda out: out)


def install_stream_trace(path):
    """:func:`install_trace` for ``ShardStream.take``; the "idx" are the first feature of the
    real rows (the row numbers, for a shard set of row ids)."""
    from sgdlab.data.stream import ShardStream
    return _trace(ShardStream, path, lambda out: (out[0][..., 0].astype(np.int64), out[2]))


def _trace(cls, path, ids_and_weights):
    """Wrap ``cls.take``: ``ids_and_weights(its result) -> (idx (k, B), w (k, B))`` to trace."""
    original = cls.take

    def take(self, k, pad_to=None):
        g0 = self.epoch * self.steps_per_epoch + self.step_in_epoch
        out = original(self, k, pad_to)
        idx, w = ids_and_weights(out)
        with open(path, "a") as f:
            for r in range(k):
                f.write(json.dumps({"g": g0 + r, "idx": idx[r][w[r] > 0].tolist()}) + "\n")
            f.flush()
        print(f"take {g0}", flush=True)
        return out

    cls.take = take
    return lambda: setattr(cls, "take", original)


def rewrite_checkpoint(run_dir, arrays=None, body=None, raw=None) -> None:
    """Edit the newest checkpoint of ``run_dir`` as a person with an editor could, checksums
    recomputed so that only the content is wrong; older checkpoints are removed (nothing to
    fall back to). ``arrays(dict) -> dict`` edits the arrays, ``body(dict)`` the manifest's
    body in place, ``raw(bytes) -> bytes`` the .npz file's bytes."""
    from sgdlab.engine.checkpoint import CheckpointStore
    store = CheckpointStore(run_dir)
    newest, *older = store.steps()
    for step in older:
        for p in store.paths(step):
            p.unlink()
    npz_path, json_path = store.paths(newest)
    manifest = json.loads(json_path.read_text())
    new = npz_arrays(npz_path)
    if arrays is not None:
        new = arrays(new)
    buf = io.BytesIO()
    np.savez(buf, **new)
    data = buf.getvalue() if raw is None else raw(buf.getvalue())
    npz_path.write_bytes(data)
    b = manifest["body"]
    b.update(arrays_size=len(data), arrays_sha256=hashlib.sha256(data).hexdigest())
    if body is not None:
        body(b)
    digest = hashlib.sha256(json.dumps(b, sort_keys=True).encode()).hexdigest()
    json_path.write_text(json.dumps({"body": b, "body_sha256": digest}))
