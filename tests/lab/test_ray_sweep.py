"""Sweeps on a Ray cluster started here on 127.0.0.1 (two single-CPU workers): the records of
the in-process sweep, a worker killed mid-sweep, a driver killed and rerun, a cluster lost
mid-sweep, a missing Ray; and the choices the executor makes without a cluster (workers per
node, one device kind, the --workers forms)."""

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from sgdlab.cli.main import main
from sgdlab.engine import TrainConfig
from sgdlab.engine.claim import write_marker
from sgdlab.errors import ConfigError
from sgdlab.lab.ray_executor import (ClusterError, RayExecutor, one_device_kind, parse_workers,
                                     worker_slots)
from sgdlab.lab.records import Placement, RunRecord
from sgdlab.lab.sweep import SweepConfig, run_sweep

SWEEP = SweepConfig(batch_sizes=(32, 128), seeds=2, target=0.92, noise=False, confirm=False,
                    timing_rounds=1)
FLAGS = ["--data", "digits", "--batch-sizes", "32,128", "--seeds", "2", "--target-accuracy", "0.92", "--no-noise",
         "--no-confirm", "--timing-rounds", "1", "--cpus-per-run", "1", "--quiet",
         "--compile-cache", "off"]
#: the cluster on the loopback address only, no token (Ray Client does not send one)
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled",
           "JAX_PLATFORMS": "cpu"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Head:
    """``ray start --head --block`` on 127.0.0.1 with ``num_cpus`` CPUs, in a session of its
    own: :meth:`stop` kills every process of that session (the head, its raylet, its
    workers), and only those."""

    def __init__(self, num_cpus: int = 2):
        port, client = _free_port(), _free_port()
        self.address, self.client = f"127.0.0.1:{port}", f"ray://127.0.0.1:{client}"
        ray = Path(sys.executable).with_name("ray")
        self.process = subprocess.Popen(
            [str(ray), "start", "--head", "--block", f"--port={port}",
             f"--ray-client-server-port={client}", f"--num-cpus={num_cpus}", "--num-gpus=0",
             "--include-dashboard=false", "--disable-usage-stats"],
            env={**os.environ, **RAY_ENV}, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def session(self) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.getsid(int(entry.name)) == self.process.pid:
                        pids.append(int(entry.name))
                except OSError:
                    pass
        return pids

    def stop(self) -> None:
        for pid in self.session():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self.process.wait(timeout=30)
        t0 = time.monotonic()
        while self.session() and time.monotonic() - t0 < 30:  # until the kernel reaped them
            time.sleep(0.1)
        # 'ray start' names its cluster here for a later ray.init(); a killed one cannot
        # remove the name itself
        current = Path(tempfile.gettempdir(), "ray", "ray_current_cluster")
        try:
            if current.read_text().strip() == self.address:
                current.unlink()
        except OSError:
            pass


def _connect(ray, address: str, seconds: float = 90.0) -> None:
    """``ray.init(address)``, retried while the head starts."""
    t0 = time.monotonic()
    while True:
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
            return
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() - t0 > seconds:
                raise
            time.sleep(1.0)


@pytest.fixture(scope="module")
def cluster():
    """A two-CPU head; this process connected to it (each worker reserves one CPU)."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in RAY_ENV.items():
            mp.setenv(k, v)
        ray = pytest.importorskip("ray", reason="needs the ray extra: pip install -e '.[ray]'")
        # read by Ray at its import: keep this driver on 127.0.0.1 even if Ray came first
        from ray._private import ray_constants
        mp.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)
        head = Head(num_cpus=2)
        try:
            _connect(ray, head.address)
            yield head
        finally:
            ray.shutdown()
            head.stop()


@pytest.fixture(scope="module")
def reference(digits_ds, tmp_path_factory):
    """The sweep in this process, with its probe stored in ``out/throughput.json``."""
    out = tmp_path_factory.mktemp("in-process")
    return run_sweep(digits_ds, SWEEP, TrainConfig(), out=out), out


def _outcome(record: RunRecord) -> tuple:
    """Everything of a record that does not depend on a clock."""
    def value(v):
        return None if v is None or v != v else v   # NaN (no loss before step 1) as None
    rows = tuple((r["step"], value(r.get("val_accuracy")), value(r.get("train_loss")))
                 for r in record.history)
    return (record.key, record.cap, record.status, record.summary["steps"], record.lr,
            record.x, record.data, rows)


def _kept(result) -> tuple:
    """What a sweep decided from steps: the points and their seeds' steps, and the learning
    rate and steps each batch size kept."""
    points = [(p.batch_size, p.lr, p.seed_steps, p.chosen) for p in result.points]
    batches = [(b.batch_size, b.lr, b.steps_median, b.steps_best, b.steps_best_lr, b.reached,
                b.search_end) for b in result.batches]
    return points, batches


def _with_probe(src: Path, dst: Path) -> Path:
    """``dst``: a sweep stopped after its throughput probe, the probe that of ``src`` (so the
    caps, which follow from the probe's times, are those of ``src``'s sweep)."""
    dst.mkdir()
    write_marker(dst, "sweep")
    shutil.copy(src / "throughput.json", dst / "throughput.json")
    return dst


def test_a_sweep_on_ray_makes_the_in_process_records(cluster, reference, digits_ds, tmp_path):
    ref, ref_out = reference
    out = _with_probe(ref_out, tmp_path / "ray")
    with RayExecutor(cpus_per_run=1) as executor:
        result = run_sweep(digits_ds, SWEEP, TrainConfig(), out=out, executor=executor)
        workers = executor.workers
    assert [_outcome(r) for r in result.records] == [_outcome(r) for r in ref.records]
    assert _kept(result) == _kept(ref)
    # which batch size wins is decided by measured time: on the digits both take about a
    # millisecond, so that pick differs between two sweeps in one process too; what the
    # recommendation says of the batch size it picks comes from the same steps
    rec = result.recommendation
    row = next(b for b in ref.batches if b.batch_size == rec.batch_size)
    assert (rec.lr, rec.steps) == (row.lr, row.steps_median)
    # every run was made by a worker (none reused), on this machine's device kind
    assert result.cost.reused == 0 and workers.redone == 0
    assert len(workers.overheads.submit_to_start) == len(result.records)
    assert {r.ran_on for r in result.records} == {ref.records[0].ran_on}
    assert workers.device == ref.records[0].ran_on.device
    stored = json.loads((out / "runs" / f"{result.records[0].key}.json").read_text())
    assert Placement.from_dict(stored["ran_on"]) == result.records[0].ran_on


def test_a_worker_killed_mid_sweep_is_restarted_and_its_run_redone(cluster, reference,
                                                                   digits_ds, tmp_path):
    ref, ref_out = reference
    out = _with_probe(ref_out, tmp_path / "ray")
    killed = []
    with RayExecutor(cpus_per_run=1) as executor:
        def kill_a_worker(event):
            # right after the third run was handed out: every worker holds a run
            if event["event"] == "run_start" and event["index"] == 2 and not killed:
                pid = executor.workers.pids()[0]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        result = run_sweep(digits_ds, SWEEP, TrainConfig(), out=out, executor=executor,
                           callback=kill_a_worker)
        workers = executor.workers
    assert killed and workers.redone >= 1
    assert [_outcome(r) for r in result.records] == [_outcome(r) for r in ref.records]
    assert sorted(p.stem for p in (out / "runs").glob("*.json")) == \
        sorted(r.key for r in result.records)


def _runs(out: Path) -> dict:
    return {p.stem: p.read_text() for p in (out / "runs").glob("*.json")}


def _wait_for_runs(out: Path, count: int, process, seconds: float = 180.0) -> None:
    t0 = time.monotonic()
    while len(list(out.glob("runs/*.json"))) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() - t0 < seconds, "no runs were written"
        time.sleep(0.05)


def test_a_killed_driver_rerun_reuses_every_finished_record(cluster, reference, tmp_path,
                                                           capsys):
    ref, ref_out = reference
    out = _with_probe(ref_out, tmp_path / "sweep")
    command = ["sweep", *FLAGS, "--out", str(out), "--workers", "ray"]
    first = subprocess.Popen([sys.executable, "-m", "sgdlab.cli.main", *command],
                             env={**os.environ, **RAY_ENV, "RAY_ADDRESS": cluster.address},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _wait_for_runs(out, 4, first)
    first.kill()
    first.communicate()
    finished = _runs(out)
    assert all(isinstance(json.loads(text), dict) for text in finished.values())  # whole

    # the same command again (here, on this process's connection to the cluster)
    assert main(command) == 0, capsys.readouterr().err
    after = _runs(out)
    assert {k: after[k] for k in finished} == finished      # reused, not made again
    saved = json.loads((out / "sweep.json").read_text())
    assert saved["cost"]["reused"] == len(finished) < saved["cost"]["runs"]
    # the records are those of the uninterrupted sweep in one process
    made = {k: RunRecord.from_dict(json.loads(t)) for k, t in after.items()}
    assert {k: _outcome(r) for k, r in made.items()} == \
        {r.key: _outcome(r) for r in ref.records}


def test_a_cluster_lost_mid_sweep_ends_with_one_message_and_keeps_the_runs(tmp_path):
    pytest.importorskip("ray", reason="needs the ray extra: pip install -e '.[ray]'")
    head = Head(num_cpus=2)
    try:
        out = tmp_path / "sweep"
        driver = subprocess.Popen(
            [sys.executable, "-m", "sgdlab.cli.main", "sweep", *FLAGS, "--out", str(out),
             "--workers", "ray"], env={**os.environ, **RAY_ENV, "RAY_ADDRESS": head.address},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _wait_for_runs(out, 2, driver)
        head.stop()
        _, err = driver.communicate(timeout=180)
    finally:
        head.stop()
    assert driver.returncode == 1, err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "the Ray cluster at 127.0.0.1" in errors[0] and "rerun the same command" in errors[0]
    kept = _runs(out)
    assert len(kept) >= 2 and all(isinstance(json.loads(t), dict) for t in kept.values())


def test_an_in_process_sweep_never_imports_ray(tmp_path):
    code = ("import sys\nfrom sgdlab.cli.main import main\n"
            f"rc = main(['sweep', '--batch-sizes', '64', '--seeds', '1', '--budget', "
            f"'10 epochs', '--target-accuracy', '0.9', '--no-lr-search', '--no-probe', "
            f"'--no-noise', "
            f"'--no-confirm', '--out', {str(tmp_path / 's')!r}, '--quiet', "
            f"'--compile-cache', 'off'])\n"
            "print(rc, 'ray' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    assert done.stdout.split()[-2:] == ["0", "False"], done.stderr


def test_a_missing_ray_is_one_message_naming_the_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ClusterError, match=r"pip install -e '\.\[ray\]'"):
        RayExecutor()
    code = main(["sweep", "--workers", "ray", "--out", str(tmp_path / "s"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert err.count("error:") == 1 and "pip install -e '.[ray]'" in err
    assert not (tmp_path / "s" / "runs").exists()   # said before any run


@pytest.mark.parametrize("args, message", [
    (["--workers", "spark"], "--workers must be 'ray'"),
    (["--workers", "ray://head"], "'ray://HOST:PORT'"),
    (["--cpus-per-run", "2"], "--cpus-per-run applies to --workers ray only"),
    (["--workers", "ray", "--cpus-per-run", "0"], "--cpus-per-run must be a whole number"),
])
def test_bad_workers_flags_are_one_message(args, message, tmp_path, capsys):
    code = main(["sweep", *args, "--out", str(tmp_path / "s"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_the_workers_forms():
    assert parse_workers(None) is None and parse_workers("") is None
    assert parse_workers("ray") == ""
    assert parse_workers("ray://10.0.0.1:10001") == "ray://10.0.0.1:10001"
    with pytest.raises(ConfigError, match="got 'ray://10.0.0.1:0'"):
        parse_workers("ray://10.0.0.1:0")


def test_one_worker_per_gpu_or_per_cpu_node_by_default():
    nodes = [{"NodeID": "g", "Alive": True, "Resources": {"CPU": 16.0, "GPU": 4.0}},
             {"NodeID": "c", "Alive": True, "Resources": {"CPU": 8.0}},
             {"NodeID": "dead", "Alive": False, "Resources": {"CPU": 8.0}}]
    slots = worker_slots(nodes, None)
    assert slots == [("g", {"num_gpus": 1, "num_cpus": 4})] * 4 + [("c", {"num_cpus": 8})]
    assert worker_slots(nodes, 2)[4:] == [("c", {"num_cpus": 2})] * 4
    assert worker_slots(nodes, 16)[4:] == []    # a run would not fit on the CPU node


def test_workers_of_two_device_kinds_are_refused_with_one_message():
    h100, cpu = "NVIDIA H100 80GB HBM3", "cpu: AMD EPYC (2 cores)"
    assert one_device_kind([Placement("a", h100), Placement("b", h100)], "x") == h100
    with pytest.raises(ClusterError, match=r"2 device kinds \(NVIDIA H100 80GB HBM3: 2 "
                                           r"worker\(s\) on 1 node\(s\); cpu: .*1 node\(s\)\)"
                                           r".*compares times measured on one kind only"):
        one_device_kind([Placement("a", h100), Placement("a", h100), Placement("b", cpu)],
                        "10.0.0.1:6379")
