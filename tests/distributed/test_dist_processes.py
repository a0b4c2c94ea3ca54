"""Data parallelism with real processes on 127.0.0.1: equal to one process, and no hang."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sgdlab.cli.main import main

#: Test support that stops a worker at an exact step from inside it (see its docstring).
HOOK = str(Path(__file__).resolve().with_name("stop_hook"))

COMMON = ["--data", "digits", "--model", "softmax", "--batch-size", "32", "--lr", "0.1",
          "--seed", "0", "--eval-every", "1 epoch"]


def _cli(*args, env=None, timeout=240):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})}
    return subprocess.run([sys.executable, "-m", "sgdlab.cli.main", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def _params(run_dir):
    with np.load(run_dir / "params.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _assert_close(a, b, rel=1e-5):
    for key in a:
        scale = np.abs(a[key]).max()
        assert np.abs(a[key] - b[key]).max() <= rel * scale, key


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    """The reference: one process, one device, the in-memory engine, shuffled order."""
    out = tmp_path_factory.mktemp("one") / "run"
    assert main(["train", *COMMON, "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    return out


def test_two_processes_with_global_batch_reproduce_one_process(one_process, tmp_path):
    out = tmp_path / "two"
    p = _cli("train", *COMMON, "--epochs", "1", "--processes", "2", "--out", str(out), "--quiet")
    assert p.returncode == 0, p.stderr[-2000:]
    assert "process 1 of 2 joined" in p.stderr
    _assert_close(_params(one_process), _params(out))
    import json
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["steps"] == 45  # ceil(1437 / 32)


def test_two_fake_cpu_devices_in_one_process_reproduce_one_device(one_process, tmp_path):
    out = tmp_path / "dev"
    p = _cli("train", *COMMON, "--epochs", "1", "--devices", "all", "--out", str(out),
             "--quiet", env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert p.returncode == 0, p.stderr[-2000:]
    import json
    assert json.loads((out / "metrics.json").read_text())["devices"] == 2
    _assert_close(_params(one_process), _params(out))


def test_two_processes_diverge_at_the_step_one_process_does(tmp_path):
    # Every process must see the same `ok` after a chunk: one re-running the chunk with the
    # checked kernel while the other goes on would wait forever in the gradient all-reduce.
    import json
    diverge = [*COMMON, "--model", "linreg", "--lr", "10", "--epochs", "3", "--quiet"]
    assert main(["train", *diverge, "--out", str(tmp_path / "one")]) == 1
    p = _cli("train", *diverge, "--processes", "2", "--out", str(tmp_path / "two"))
    assert p.returncode == 1, p.stderr[-2000:]
    one, two = (json.loads((tmp_path / k / "metrics.json").read_text()) for k in ("one", "two"))
    assert one["status"] == two["status"] == "diverged"
    assert one["diverged_at_step"] == two["diverged_at_step"] and two["processes"] == 2
    assert p.stderr.count(f"diverged at step {two['diverged_at_step']}") == 2  # both processes


def test_bad_process_settings_are_config_errors(tmp_path, capsys):
    base = ["train", "--data", "digits", "--out", str(tmp_path / "x"), "--quiet"]
    assert main([*base, "--batch-size", "33", "--processes", "2"]) == 2
    assert "batch size 33 must be a multiple of the number of processes (2)" in \
        capsys.readouterr().err
    assert main([*base, "--processes", "2", "--coordinator", "h:1"]) == 2
    assert "use one or the other" in capsys.readouterr().err
    assert main([*base, "--coordinator", "127.0.0.1:1"]) == 2
    assert "--coordinator needs --num-processes and --process-id" in capsys.readouterr().err
    from sgdlab.distributed import parse_coordinator
    from sgdlab.errors import ConfigError
    with pytest.raises(ConfigError, match="coordinator must be HOST:PORT"):
        parse_coordinator("localhost")


def test_killing_one_of_two_processes_ends_the_other_with_a_clear_error(tmp_path):
    from sgdlab.distributed import LOST_PEER, free_port
    port = free_port()
    # worker 1 kills itself (SIGKILL) from inside the training loop, at its first chunk from
    # step 50 on (tests/distributed/stop_hook): no guess of when training has started
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": HOOK + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "SGDLAB_TEST_STOP": "kill:50:1"}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "sgdlab.cli.main", "train", *COMMON, "--epochs", "100000",
         "--out", str(tmp_path / "run"), "--quiet", "--coordinator", f"127.0.0.1:{port}",
         "--num-processes", "2", "--process-id", str(i)],
        stderr=subprocess.PIPE, text=True, env=env) for i in range(2)]
    try:
        _, killed = procs[1].communicate(timeout=240)
        assert procs[1].returncode == -signal.SIGKILL and "stop hook: kill at step" in killed, \
            killed[-3000:]
        _, text = procs[0].communicate(timeout=120)  # a hang would end here, not in CI's limit
        assert procs[0].returncode == LOST_PEER, text[-3000:]
        assert "lost contact with another process of the run" in text
        assert not (tmp_path / "run" / "params.npz").exists()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)


def test_two_processes_train_a_cnn_on_images_like_one_process(tmp_path):
    cnn = ["--data", "digits-images", "--model", "cnn", "--channels", "4,8", "--kernel", "3",
           "--hidden", "32", "--batch-size", "32", "--lr", "0.05", "--seed", "0",
           "--epochs", "1", "--quiet"]
    assert main(["train", *cnn, "--out", str(tmp_path / "one")]) == 0
    p = _cli("train", *cnn, "--processes", "2", "--out", str(tmp_path / "two"))
    assert p.returncode == 0, p.stderr[-2000:]
    _assert_close(_params(tmp_path / "one"), _params(tmp_path / "two"), rel=1e-4)
