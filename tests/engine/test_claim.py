"""sgdlab writes only into its own runs: each verb marks a new or empty ``--out`` first,
refuses a directory holding anything else (nothing written into it, not even a lock), locks
it, continues or refuses its own earlier run, and with ``--overwrite`` builds the new run
beside the old one and swaps it in when complete: a failure or a ``kill -9`` before that
leaves the old run whole."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import sgdlab
from sgdlab.cli.main import main
from sgdlab.engine import claim as claim_module
from sgdlab.engine.claim import MARKER, claim_output, exchange, read_marker
from sgdlab.engine.lock import RunLock
from sgdlab.errors import RunDirError

SRC = str(Path(__file__).resolve().parents[2] / "src")
TRAIN = ["train", "--data", "gaussian:n=120,d=4,n_classes=3", "--model", "linear",
         "--epochs", "1", "--quiet", "--checkpoint-every", "end"]
LAB = {
    "sweep": ["sweep", "--data", "gaussian:n=120,d=4,n_classes=3", "--model", "linear",
              "--batch-sizes", "32", "--seeds", "1", "--budget", "1 epochs",
              "--target-accuracy", "0.3", "--no-lr-search", "--no-probe", "--no-noise",
              "--no-confirm", "--compile-cache", "off", "--quiet"],
    "landscape": ["landscape", "--data", "gaussian:n=120,d=4,n_classes=3", "--model",
                  "linear", "--seeds", "2", "--epochs", "1", "--no-slices", "--segments", "3",
                  "--saddle", "none", "--quiet"],
    "compare-methods": ["compare-methods", "--data", "gaussian:n=120,d=4,n_classes=3",
                        "--methods", "minibatch-32", "--budget", "0.05s", "--quiet"],
}


def snapshot(root: Path) -> dict:
    """Every entry under ``root`` with its bytes' digest (a link: its target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
    return out


def hidden_leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


@pytest.fixture
def user_project(tmp_path):
    """A folder of the user's that looks like a run: config, history, checkpoints."""
    mine = tmp_path / "myproject"
    (mine / "checkpoints").mkdir(parents=True)
    (mine / "config.json").write_text('{"mine": true}\n')
    (mine / "history.csv").write_text("step,loss\n0,1.0\n")
    (mine / "report.html").write_text("<p>my report</p>\n")
    (mine / "checkpoints" / "ckpt-000000001.npz").write_bytes(b"my checkpoint")
    return mine


@pytest.mark.parametrize("verb", ["train", *LAB])
def test_a_folder_of_the_users_is_refused_and_untouched(verb, user_project, capsys):
    before = snapshot(user_project)
    argv = (TRAIN if verb == "train" else LAB[verb]) + ["--out", str(user_project)]
    for extra in ([], ["--overwrite"]):
        assert main(argv + extra) == 2
        err = capsys.readouterr().err
        assert "is not an sgdlab run directory (it holds checkpoints, config.json, " \
               "history.csv, report.html)" in err and "choose another --out" in err, err
        assert snapshot(user_project) == before  # not even a lock file was written


def test_another_verbs_run_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(TRAIN + ["--out", str(run)]) == 0
    before = snapshot(run)
    for verb, argv in LAB.items():
        assert main(argv + ["--out", str(run), "--overwrite"]) == 2
        err = capsys.readouterr().err
        assert f"holds an sgdlab train run; '{verb}' writes only its own" in err
    assert snapshot(run) == before
    assert read_marker(run) == "train"


def test_the_marker_is_written_first_and_names_the_verb(tmp_path, monkeypatch):
    order = []
    real = claim_module.write_marker
    monkeypatch.setattr(claim_module, "write_marker",
                        lambda path, verb: (order.append(sorted(os.listdir(path))),
                                            real(path, verb)))
    out = tmp_path / "new"
    assert main(TRAIN + ["--out", str(out)]) == 0
    assert order == [[".lock"]]  # nothing but the lock before the marker
    assert json.loads((out / MARKER).read_text()) == {
        "sgdlab": "run directory", "verb": "train", "format": 1}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(LAB["compare-methods"] + ["--out", str(empty)]) == 0
    assert read_marker(empty) == "compare-methods"


@pytest.mark.parametrize("verb", ["train", "landscape", "compare-methods"])
def test_a_second_run_into_an_own_run_needs_overwrite(verb, tmp_path, capsys):
    out = tmp_path / "run"
    argv = (TRAIN if verb == "train" else LAB[verb]) + ["--out", str(out)]
    assert main(argv) == 0
    before = snapshot(out)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"already holds a {verb} run; pass --overwrite to replace it" in err
    assert snapshot(out) == before
    assert main(argv + ["--overwrite"]) == 0
    assert read_marker(out) == verb and hidden_leftovers(tmp_path, "run") == []
    assert snapshot(out) != before


def test_a_sweep_continues_its_own_run_and_overwrite_starts_afresh(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = LAB["sweep"] + ["--out", str(out)]
    assert main(argv) == 0
    records = sorted(p.name for p in (out / "runs").iterdir())
    stamp = (out / "runs" / records[0]).stat().st_mtime_ns
    assert main([a for a in argv if a != "--quiet"]) == 0
    assert f"reused from {out / 'runs'}" in capsys.readouterr().out
    assert (out / "runs" / records[0]).stat().st_mtime_ns == stamp  # reused, not redone
    (out / "runs" / "b9999-lr1-s0.json").write_text("{}")  # a record of another sweep
    assert main(argv + ["--overwrite"]) == 0
    assert sorted(p.name for p in (out / "runs").iterdir()) == records  # afresh
    assert hidden_leftovers(tmp_path, "sweep") == []


def test_python_api_needs_overwrite_too(tmp_path):
    out = tmp_path / "run"
    sgdlab.fit("gaussian:n=120,d=4,n_classes=3", epochs=1, out=out, plots=False)
    with pytest.raises(RunDirError, match="already holds a train run; pass --overwrite"):
        sgdlab.fit("gaussian:n=120,d=4,n_classes=3", epochs=1, out=out, plots=False)
    r = sgdlab.fit("gaussian:n=120,d=4,n_classes=3", epochs=2, out=out, plots=False,
                   overwrite=True)
    assert json.loads((out / "metrics.json").read_text())["steps"] == r.steps
    with pytest.raises(sgdlab.ConfigError, match="give only one of them"):
        sgdlab.fit(resume=out, overwrite=True)


def test_a_failure_before_the_swap_leaves_the_old_run_whole(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert main(TRAIN + ["--out", str(out)]) == 0
    before = snapshot(out)
    import sgdlab.report.run as report_run
    real = report_run.save_model

    def broken(path, result):  # the new run's files are half written when it fails
        real(path, result)
        raise RunDirError("disk gone (injected)")
    monkeypatch.setattr(report_run, "save_model", broken)
    assert main(TRAIN + ["--epochs", "2", "--out", str(out), "--overwrite"]) == 2
    assert "disk gone (injected)" in capsys.readouterr().err
    assert snapshot(out) == before
    assert hidden_leftovers(tmp_path, "run") == []  # the half-built run is removed


def test_the_exchange_without_renameat2_renames_the_old_run_aside(tmp_path, monkeypatch):
    a, b = tmp_path / ".b.sgdlab-new-x", tmp_path / "b"
    a.mkdir()
    (a / "new").write_text("new")
    b.mkdir()
    (b / "old").write_text("old")
    for fallback in (False, True):
        if fallback:
            monkeypatch.setattr(claim_module.ctypes, "CDLL", lambda *a, **k: object())
        old = Path(exchange(a, b))
        assert (b / "new").exists()
        assert (old / "old").read_text() == "old"
        assert (old == a) != fallback and old.name.startswith(".b.sgdlab-old-") == fallback
        # back for the next round
        if not fallback:
            exchange(a, b)
            assert (b / "old").exists()


def test_an_own_run_in_use_is_refused_naming_the_holder(tmp_path, capsys):
    """One lock per output, for every verb: the holder here is another process."""
    verbs = ["train", *LAB]
    for verb in verbs:
        (tmp_path / verb).mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from sgdlab.engine.lock import RunLock; "
         "from sgdlab.engine.claim import write_marker; "
         f"locks = [RunLock({str(tmp_path)!r} + '/' + v).acquire() for v in {verbs!r}]; "
         f"[write_marker({str(tmp_path)!r} + '/' + v, v) for v in {verbs!r}]; "
         "print('held', flush=True); time.sleep(60)"],
        env={**os.environ, "PYTHONPATH": SRC}, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        for verb in verbs:
            argv = (TRAIN if verb == "train" else LAB[verb]) + ["--out", str(tmp_path / verb)]
            assert main(argv + ["--overwrite"]) == 2
            err = capsys.readouterr().err
            assert f"is in use by process {holder.pid}" in err and f"kill {holder.pid}" in err
    finally:
        holder.kill()
        holder.wait()


def test_out_may_not_be_a_symbolic_link(tmp_path, capsys):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "out").symlink_to(target)
    assert main(TRAIN + ["--out", str(tmp_path / "out")]) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert list(target.iterdir()) == []


def test_a_run_of_an_sgdlab_before_markers_is_resumed_and_marked(tmp_path):
    out = tmp_path / "old"
    assert main(TRAIN + ["--out", str(out), "--checkpoint-every", "5 steps"]) == 0
    (out / MARKER).unlink()
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    assert read_marker(out) == "train"


def test_leftovers_of_a_killed_overwrite_are_removed_by_the_next_claim(tmp_path):
    final = tmp_path / "run"
    final.mkdir()
    claim_module.write_marker(final, "train")
    (final / "history.csv").write_text("step\n0\n")  # a run, not only its marker
    dead = tmp_path / ".run.sgdlab-new-dead0000"
    dead.mkdir()
    claim_module.write_marker(dead, "train")
    live = tmp_path / ".run.sgdlab-new-live0000"
    live.mkdir()
    claim_module.write_marker(live, "train")
    foreign = tmp_path / ".run.sgdlab-new-mine0000"  # not marked: not sgdlab's, kept
    foreign.mkdir()
    with RunLock(live):
        with claim_output(final, "train", overwrite=True) as claim:
            assert claim.path.name.startswith(".run.sgdlab-new-")
            assert not dead.exists() and live.exists() and foreign.exists()
    assert sorted(hidden_leftovers(tmp_path, "run")) == [live.name, foreign.name]


def test_kill_9_during_an_overwrite_leaves_the_old_run_whole(tmp_path):
    """A real ``kill -9`` while the new run trains beside the old one."""
    out = tmp_path / "run"
    assert main(TRAIN + ["--out", str(out)]) == 0
    before = snapshot(out)
    child = subprocess.Popen(
        [sys.executable, "-m", "sgdlab", *TRAIN[:-5], "--epochs", "100000",
         "--batch-size", "1", "--eval-every", "50 steps", "--checkpoint-every", "200 steps",
         "--out", str(out), "--overwrite", "--quiet"],
        env={**os.environ, "PYTHONPATH": SRC, "JAX_PLATFORMS": "cpu"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        staged = []
        while time.monotonic() < deadline and child.poll() is None:
            staged = [p for p in tmp_path.iterdir() if p.name.startswith(".run.sgdlab-new-")]
            if staged and (staged[0] / "history.csv").is_file() and \
                    (staged[0] / "history.csv").read_text().count("\n") >= 3 and \
                    list((staged[0] / "checkpoints").glob("*.json")):
                break
            time.sleep(0.1)
        assert staged and child.poll() is None, child.stderr.read().decode()
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    after = snapshot(out)
    assert after.pop(".lock", None) is not None  # the dead holder's: taken over by the next
    assert after == before  # the old run, whole; the new one is only beside it
    assert sgdlab.load(out).n_features == 4
    assert main(TRAIN + ["--out", str(out), "--overwrite"]) == 0  # and it is cleaned up
    assert hidden_leftovers(tmp_path, "run") == []


def test_the_default_out_is_always_a_new_directory(tmp_path, monkeypatch):
    from sgdlab.cli.common import default_out
    monkeypatch.chdir(tmp_path)
    first = default_out("train")
    Path(first).mkdir(parents=True)
    second = default_out("train")
    assert second != first and not Path(second).exists()
    if Path(second).name.startswith(Path(first).name):  # the same second: numbered
        assert second == first + "-2"


def test_a_directory_holding_only_its_marker_is_taken_afresh(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    claim_module.write_marker(out, "train")  # a run stopped right after marking it
    assert main(TRAIN + ["--out", str(out)]) == 0
    assert (out / "model.json").is_file()
    other = tmp_path / "other"
    other.mkdir()
    claim_module.write_marker(other, "sweep")
    with pytest.raises(RunDirError, match="holds an sgdlab sweep run"):
        sgdlab.fit("gaussian:n=120,d=4,n_classes=3", epochs=1, out=other, plots=False)
