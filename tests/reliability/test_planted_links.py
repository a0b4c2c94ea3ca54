"""No write follows a link, in the folders sgdlab creates and fills over time too: a sweep's
``runs/`` records and the compile cache, TensorBoard run folders, event files and the
history file (whose temporary name used to be fixed). A link planted there is refused with
one message (exit code 2), its target untouched; a link at a former fixed temporary name is
never opened."""

import json
from pathlib import Path

import pytest

from sgdlab.cli.main import main
from sgdlab.errors import RunDirError
from sgdlab.report import tensorboard as tb

SWEEP = ["sweep", "--data", "gaussian:n=120,d=4,n_classes=3", "--model", "linear",
         "--batch-sizes", "32", "--seeds", "1", "--budget", "1 epochs",
         "--target-accuracy", "0.3", "--no-lr-search", "--no-probe", "--no-noise",
         "--no-confirm", "--quiet"]
VICTIM = b"somebody else's file\n"


def victim_dir(tmp_path) -> Path:
    v = tmp_path / "victim"
    v.mkdir()
    (v / "notes.txt").write_bytes(VICTIM)
    return v


def untouched(v: Path) -> bool:
    return [p.name for p in v.iterdir()] == ["notes.txt"] and \
        (v / "notes.txt").read_bytes() == VICTIM


def one_message(capsys, link) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(link) in lines[0] and "symbolic link" in lines[0] and "remove" in lines[0]
    return lines[0]


@pytest.fixture
def sweep_dir(tmp_path):
    out = tmp_path / "sweep"
    assert main(SWEEP + ["--out", str(out), "--compile-cache", "off"]) == 0
    return out


def test_a_link_at_the_records_folder_is_refused(sweep_dir, tmp_path, capsys):
    v = victim_dir(tmp_path)
    (sweep_dir / "runs").rename(tmp_path / "runs-old")
    (sweep_dir / "runs").symlink_to(v)
    assert main(SWEEP + ["--out", str(sweep_dir), "--compile-cache", "off"]) == 2
    one_message(capsys, sweep_dir / "runs")
    assert untouched(v)


def test_a_link_at_a_record_is_refused(sweep_dir, tmp_path, capsys):
    v = victim_dir(tmp_path)
    record = next((sweep_dir / "runs").iterdir())
    record.unlink()  # the run is redone: its record written again, not through the link
    record.symlink_to(v / "notes.txt")
    assert main(SWEEP + ["--out", str(sweep_dir), "--compile-cache", "off"]) == 2
    one_message(capsys, record)
    assert untouched(v)


@pytest.mark.parametrize("where", ["folder", "inside"])
def test_a_link_in_the_compile_cache_is_refused(where, sweep_dir, tmp_path, capsys):
    v = victim_dir(tmp_path)
    cache = tmp_path / "my-cache"
    if where == "folder":
        cache.symlink_to(v)
    else:
        cache.mkdir(mode=0o700)
        (cache / "jit_chunk-0123abcd-cache").symlink_to(v / "notes.txt")
    assert main(SWEEP + ["--out", str(sweep_dir), "--compile-cache", str(cache)]) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and str(cache) in err and "Traceback" not in err
    assert untouched(v)


@pytest.mark.parametrize("where", ["folder", "inside"])
def test_a_compile_cache_planted_in_the_sweep_directory_is_never_read(where, sweep_dir,
                                                                      tmp_path):
    """Compiled programs run when loaded: the sweep's cache is the user's own
    (``~/.cache/sgdlab``), so whatever a sweep directory holds under ``compile-cache/`` is
    neither read nor written, and the sweep goes on."""
    v = victim_dir(tmp_path)
    planted = sweep_dir / "compile-cache"
    if where == "folder":
        planted.symlink_to(v)
    else:
        planted.mkdir()
        (planted / "jit_chunk-0123abcd-cache").symlink_to(v / "notes.txt")
    assert main(SWEEP + ["--out", str(sweep_dir)]) == 0
    assert untouched(v)
    if where == "inside":
        assert [p.name for p in planted.iterdir()] == ["jit_chunk-0123abcd-cache"]


def test_tensorboard_history_never_opens_the_old_fixed_temporary_name(tmp_path):
    v = victim_dir(tmp_path)
    run = tmp_path / "logs" / "run"
    run.mkdir(parents=True)
    (run / ".sgdlab-history.partial").symlink_to(v / "notes.txt")
    rows = [{"step": 0, "val_loss": 1.0}, {"step": 5, "val_loss": 0.5, "train_seconds": 0.1}]
    tb.write_history(rows, tmp_path / "logs", "run")
    assert untouched(v) and (run / tb.HISTORY_FILE).stat().st_size > 0
    assert [p.name for p in run.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("planted", ["run folder", "history file"])
def test_tensorboard_history_refuses_a_link(planted, tmp_path):
    v = victim_dir(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    link = logs / "run" if planted == "run folder" else logs / "run" / tb.HISTORY_FILE
    if planted == "run folder":
        link.symlink_to(v)
    else:
        link.parent.mkdir()
        link.symlink_to(v / "notes.txt")
    with pytest.raises(RunDirError, match="symbolic link.*remove"):
        tb.write_history([{"step": 0, "val_loss": 1.0}], logs, "run")
    assert untouched(v)


def test_the_live_writer_creates_its_event_files_exclusively(tmp_path, monkeypatch):
    v = victim_dir(tmp_path)
    monkeypatch.setattr(tb, "_event_file_name", lambda: "events.out.tfevents.fixed")
    (tmp_path / "logs" / "run").mkdir(parents=True)
    link = tmp_path / "logs" / "run" / "events.out.tfevents.fixed"
    link.symlink_to(v / "notes.txt")
    with pytest.raises(RunDirError, match="is a symbolic link; sgdlab writes its event files "
                                          "only as new files"):
        tb.TensorBoardWriter(tmp_path / "logs", "run")
    link.unlink()
    link.write_bytes(b"someone's")
    with pytest.raises(RunDirError, match="is a file sgdlab did not create"):
        tb.TensorBoardWriter(tmp_path / "logs", "run")
    assert untouched(v) and link.read_bytes() == b"someone's"


def test_a_sweep_with_tensorboard_refuses_a_planted_run_folder(tmp_path, capsys):
    v = victim_dir(tmp_path)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "B=32 lr=0.1 seed=0").symlink_to(v)
    code = main(SWEEP + ["--out", str(tmp_path / "s"), "--compile-cache", "off",
                         "--tensorboard", str(logs), "--lr", "0.1"])
    assert code == 2
    one_message(capsys, logs / "B=32 lr=0.1 seed=0")
    assert untouched(v)
    assert json.loads((tmp_path / "s" / ".sgdlab-run").read_text())["verb"] == "sweep"
