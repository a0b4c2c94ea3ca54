"""Checkpoints and --resume of runs over two real processes on 127.0.0.1.

A two-process run is interrupted (SIGTERM to the ``--processes`` launcher; kill -9 of one
worker) and resumed with ``sgdlab train --resume RUN``, which relaunches two processes; it must
end bit-identical to an uninterrupted two-process run (parameters, optimiser state, history
without its time columns). Resuming with another number of processes is refused unless --force.

The interruptions land at an exact step: the workers run with ``stop_hook/sitecustomize.py``
on their path, whose training callback sends the SIGTERM to the launcher (or kills its own
process) at the first chunk that reaches a given step, and waits for the signal to arrive
before the chunk boundary (see that file). No race against the run's speed.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "reliability"))
sys.path.insert(0, str(TESTS))
from rel_helpers import assert_same_run, child_env, metrics  # noqa: E402

#: 45 steps per epoch, 270 in all: a few seconds of training, checkpoints every 10 steps, and
#: momentum so the optimiser state matters.
JOB = ["--data", "digits", "--model", "softmax", "--optimizer", "momentum", "--batch-size",
       "32", "--lr", "0.1", "--seed", "0", "--eval-every", "1 epoch", "--epochs", "6",
       "--chunk-steps", "5", "--checkpoint-every", "10 steps", "--quiet"]
TOTAL = 270


#: Where the SIGTERM lands: mid-epoch (45 steps each), between two scheduled checkpoints
#: (every 10 steps), at a chunk boundary (chunks of 5 steps).
STOP = 125
HOOK = str(Path(__file__).resolve().with_name("stop_hook"))


def _argv(*args):
    return [sys.executable, "-m", "sgdlab.cli.main", "train", *map(str, args)]


def _env(cache, stop: str | None = None) -> dict:
    """The children's environment; with ``stop`` (``"sigterm:STEP"`` or ``"kill:STEP:I"``),
    the stop hook acts in every worker."""
    env = child_env(cache)
    env.pop("SGDLAB_TEST_STOP", None)
    if stop is not None:
        env["PYTHONPATH"] = HOOK + os.pathsep + env["PYTHONPATH"]
        env["SGDLAB_TEST_STOP"] = stop
    return env


def _cli(*args, cache, timeout=240):
    return subprocess.run(_argv(*args), capture_output=True, text=True, timeout=timeout,
                          env=_env(cache))


def _checkpoint_steps(run_dir):
    return [int(p.name[5:14]) for p in (Path(run_dir) / "checkpoints").glob("ckpt-*.json")]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jax-cache")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("ref") / "run"
    done = _cli(*JOB, "--processes", "2", "--out", out, cache=cache)
    assert done.returncode == 0, done.stderr[-3000:]
    assert metrics(out)["processes"] == 2 and metrics(out)["steps"] == TOTAL
    return out


def _resume_and_compare(run_dir, reference, cache, from_step):
    done = _cli("--resume", run_dir, "--quiet", cache=cache)  # relaunches 2 processes
    assert done.returncode == 0, done.stderr[-3000:]
    assert "process 1 of 2 joined" in done.stderr and "Traceback" not in done.stderr
    m = metrics(run_dir)
    assert m["status"] == "completed" and m["processes"] == 2
    assert m["resumed_from_step"] == from_step
    assert_same_run(run_dir, reference)


def _interrupt_launcher(argv, cache, stop: int):
    """Run ``argv`` (a ``--processes 2`` launcher) with SIGTERM at step ``stop``; ``-> stderr``."""
    launcher = subprocess.Popen(argv, env=_env(cache, f"sigterm:{stop}"),
                                stderr=subprocess.PIPE, text=True)
    try:
        err = launcher.communicate(timeout=240)[1]
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    assert launcher.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert f"stop hook: sigterm at step {stop} (process 0)" in err, err[-3000:]
    assert "lost contact" not in err  # both stopped at the same boundary
    return err


def test_sigterm_to_the_launcher_checkpoints_both_processes_then_resume_is_exact(
        reference, cache, tmp_path):
    run_dir = tmp_path / "run"
    _interrupt_launcher(_argv(*JOB, "--processes", "2", "--out", run_dir), cache, STOP)
    m = metrics(run_dir)
    assert m["status"] == "interrupted" and m["steps"] == STOP
    assert max(_checkpoint_steps(run_dir)) == STOP  # the stop's own checkpoint
    _resume_and_compare(run_dir, reference, cache, from_step=STOP)


def test_kill_9_of_one_worker_then_resume_is_exact(reference, cache, tmp_path):
    from sgdlab.distributed import LOST_PEER, free_port
    run_dir, port = tmp_path / "run", free_port()
    env = _env(cache, f"kill:{STOP}:1")  # worker 1 dies by SIGKILL once step STOP is done
    procs = [subprocess.Popen(_argv(*JOB, "--out", run_dir, "--coordinator",
                                    f"127.0.0.1:{port}", "--num-processes", 2,
                                    "--process-id", i),
                              env=env, stderr=subprocess.DEVNULL)
             for i in range(2)]
    try:
        assert procs[1].wait(timeout=240) == -signal.SIGKILL
        assert procs[0].wait(timeout=60) == LOST_PEER
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
    assert not (run_dir / "metrics.json").exists()
    # Worker 1 finished the chunk to STOP, so worker 0 had committed the scheduled checkpoint
    # before it (its save precedes the chunk's collectives); none after it could be written.
    assert max(_checkpoint_steps(run_dir)) == STOP // 10 * 10
    _resume_and_compare(run_dir, reference, cache, from_step=STOP // 10 * 10)


def _train_here(*args) -> int:
    """``sgdlab train ARGS`` in this process (a refusal, or a one-process run, needs no process
    of its own); ``-> exit code``."""
    from sgdlab.cli.main import main
    return main(["train", *map(str, args)])


def test_resuming_with_another_number_of_processes_needs_force(reference, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    assert _train_here("--resume", run_dir, "--epochs", "7", "--processes", "4") == 2
    err = capsys.readouterr().err
    assert "processes changed (was 2, now 4)" in err and "--force" in err
    assert _train_here("--resume", run_dir, "--epochs", "7", "--processes", "1") == 2
    assert "processes changed (was 2, now 1)" in capsys.readouterr().err
    import sgdlab  # the API refuses it too (a run joined with --coordinator has no launcher)
    from sgdlab.errors import ConfigError
    with pytest.raises(ConfigError, match="processes changed .*processes was 2, now 1.*force"):
        sgdlab.fit(resume=run_dir, epochs=7, plots=False)
    code = _train_here("--resume", run_dir, "--epochs", "7", "--processes", "1", "--force",
                       "--quiet")
    assert code == 0, capsys.readouterr().err[-3000:]
    m = metrics(run_dir)
    assert m["status"] == "completed" and m["steps"] == TOTAL + 45
    assert [c["field"] for c in m["forced_changes"]] == ["processes"]
    assert json.loads((run_dir / "config.json").read_text())["epochs"] == 7


#: The same over a streamed shard set of row ids: 51 steps per epoch with two processes, each
#: streaming its own blocks through a 65-row buffer; chunks end at multiples of 5 steps.
STREAM_JOB = ["--model", "mlp", "--hidden", "8", "--optimizer", "momentum", "--lr", "0.05",
              "--batch-size", "16", "--epochs", "6", "--chunk-steps", "5", "--eval-every",
              "10 steps", "--seed", "3", "--checkpoint-every", "10 steps", "--buffer-mb",
              "0.002", "--quiet"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    from stream.stream_helpers import row_id_shards
    return row_id_shards(tmp_path_factory.mktemp("ids")).path


@pytest.fixture(scope="module")
def stream_reference(tmp_path_factory, cache, shards):
    out = tmp_path_factory.mktemp("sref") / "run"
    done = _cli("--data", shards, *STREAM_JOB, "--processes", "2", "--out", out, cache=cache)
    assert done.returncode == 0, done.stderr[-3000:]
    assert metrics(out)["processes"] == 2
    return out


def test_sigterm_of_a_streamed_two_process_run_then_resume_is_exact(stream_reference, shards,
                                                                      cache, tmp_path, capsys):
    run_dir = tmp_path / "run"
    total, stopped = metrics(stream_reference)["steps"], 155  # mid-epoch 4
    assert total == 6 * 51
    _interrupt_launcher(_argv("--data", shards, *STREAM_JOB, "--processes", "2", "--out",
                              run_dir), cache, stopped)
    assert metrics(run_dir)["status"] == "interrupted" and metrics(run_dir)["steps"] == stopped
    assert max(_checkpoint_steps(run_dir)) == stopped

    # a streamed run's batches depend on the number of processes: refused even with --force
    assert _train_here("--resume", run_dir, "--processes", "1", "--force") == 2
    assert "cannot resume a streamed run with another layout (processes was 2, now 1)" in \
        capsys.readouterr().err

    done = _cli("--resume", run_dir, "--quiet", cache=cache)
    assert done.returncode == 0, done.stderr[-3000:]
    m = metrics(run_dir)
    assert m["status"] == "completed" and m["resumed_from_step"] == stopped
    assert_same_run(run_dir, stream_reference)


def test_processes_that_read_checkpoints_of_different_steps_are_told_to_share_the_directory():
    import types

    import numpy as np

    from sgdlab.api import _same_checkpoint
    from sgdlab.errors import ConfigError
    big = (1 << 24) + 1  # not representable in float32: the steps travel in two halves
    rows = {0: [big >> 20, big & 0xFFFFF], 1: [(big + 1) >> 20, (big + 1) & 0xFFFFF]}
    placement = types.SimpleNamespace(world=2, gather=lambda values: np.array(
        [rows[0], rows[1]], np.float32))
    with pytest.raises(ConfigError, match=rf"different steps \({big}, {big + 1}\).*shares"):
        _same_checkpoint(placement, types.SimpleNamespace(step=big))
    same = types.SimpleNamespace(world=2, gather=lambda values: np.array([rows[0]] * 2,
                                                                         np.float32))
    _same_checkpoint(same, types.SimpleNamespace(step=big))  # agreeing processes pass
